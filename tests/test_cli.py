"""The command line as a person meets it: help, version, and a sweep that keeps talking when its
output goes to a file."""
import subprocess
import sys

import runner
from conftest import HANG_SECONDS, cli, tiny_experiment, wait_until


def test_runner_alone_and_h_print_help_and_version_prints_the_version():
    alone = cli()
    assert alone.returncode == 0 and "Usage:" in alone.stdout and "sweep" in alone.stdout
    assert "error" not in alone.stdout + alone.stderr
    assert cli("-h").stdout == alone.stdout
    assert "--cluster" in cli("sweep", "-h", check=True).stdout
    version = cli("--version", check=True)
    assert version.stdout.strip() == f"runner {runner.__version__}"


def test_a_sweep_sent_to_a_file_writes_each_line_as_it_happens(tmp_path, outputs):
    path = tiny_experiment(tmp_path, '[[runs]]\nmodel = "lenet"\ntrain_limit = 160\n', epochs=8)
    log = tmp_path / "sweep.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "runner", "sweep", str(path)], stdout=out,
                                stderr=subprocess.STDOUT)
    wait_until(lambda: "epoch 1/8" in log.read_text(), "the first epoch's line", proc)
    seen_before_end = not list(outputs.glob("tiny/runs/*/result.json"))
    proc.wait(timeout=HANG_SECONDS)
    text = log.read_text()
    assert seen_before_end, text  # the first epoch's line was in the file while the run trained
    lines = text.splitlines()
    assert lines[0].startswith("plan: 1 runs, 1 to train; about ")
    assert lines[1].startswith("started lenet-s0-") and "elapsed" in lines[1] and "left" in lines[1]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == [f"{e}/8" for e in range(1, 9)]
    assert all("val acc" in line and "left" in line for line in epochs)
    assert any(line.startswith("done lenet-s0-") for line in lines) and lines[-1].startswith("1 done;")
