import csv
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(os.environ.get("RUNNER_DATA_ROOT", REPO.parent / "shared" / "data")).resolve()
PM = DATA_ROOT / "ichallenge-pm"
# The one bound on any wait in the tests: a test waits for what it needs (a line, a file, a page's
# content), and only a hung process takes this long; a machine busy with other work never should.
# No test asserts how long anything took.
HANG_SECONDS = float(os.environ.get("RUNNER_TEST_HANG_SECONDS", 1800))


def pytest_configure(config):
    os.environ["RUNNER_DATA_ROOT"] = str(DATA_ROOT)


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    """A private output root, so tests never touch ./outputs."""
    root = tmp_path / "outputs"
    monkeypatch.setenv("RUNNER_OUTPUT_ROOT", str(root))
    return root


@pytest.fixture
def artifacts(tmp_path_factory) -> Path:
    """Where the browser tests keep their screenshots for a person to look at: $RUNNER_TEST_ARTIFACTS,
    else the folder `artifacts` of pytest's temporary folder."""
    folder = Path(os.environ.get("RUNNER_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_toml(folder: Path, text: str, name: str = "exp.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


TINY = """
name = "{name}"
[defaults]
dataset = "ichallenge-pm"
image_size = 32
epochs = {epochs}
batch_size = 16
train_limit = 48
val_limit = 32
optimizer = {{ name = "adam", learning_rate = 0.001 }}
"""


def tiny_experiment(folder: Path, runs: str, name: str = "tiny", epochs: int = 2, extra: str = "") -> Path:
    return write_toml(folder, TINY.format(name=name, epochs=epochs) + extra + textwrap.dedent(runs), f"{name}.toml")


def cli(*args, env=None, timeout=HANG_SECONDS, check=False, **kwargs) -> subprocess.CompletedProcess:
    """Run `runner ...` as a user would, in a fresh process."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"runner {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def one_line_error(proc, *expected, code: int = 1):
    """The user sees exit `code` and one `error:` line holding every expected piece, no traceback."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for piece in expected:
        assert piece in proc.stderr, (piece, proc.stderr)


def small_copy(root, n_train=12, n_val=10):
    """A small flat-layout copy of iChallenge-PM that tests may damage."""
    pm = root / "ichallenge-pm"
    (pm / "PALM-Training400").mkdir(parents=True)
    (pm / "PALM-Validation400").mkdir()
    train = sorted((PM / "PALM-Training400").glob("*.jpg"))
    for image in train[:: len(train) // n_train][:n_train]:
        shutil.copy(image, pm / "PALM-Training400" / image.name)
    with open(PM / "labels.csv") as f:
        rows = list(csv.DictReader(f))[:n_val]
    with open(pm / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        shutil.copy(PM / "PALM-Validation400" / row["imgName"], pm / "PALM-Validation400" / row["imgName"])
    return pm




def resumed_at(log_path) -> list[int]:
    """From a run's train.log: the epoch each process of the run started after (0: from scratch)."""
    import json

    return [json.loads(line.split(" ", 1)[1])["resumed_at"] for line in open(log_path).read().splitlines()
            if line.startswith("start ")]


def epochs_logged_before_each_start(log_path) -> list[int]:
    """From a run's train.log: how many epochs had been logged when each process started."""
    counts, seen = [], 0
    for line in open(log_path).read().splitlines():
        if line.startswith("start "):
            counts.append(seen)
        elif line.startswith("epoch "):
            seen += 1
    return counts


def workers_writing_to(root) -> list[int]:
    """pids of runner worker processes whose job lies under `root`."""
    from runner.processes import runner_workers

    return runner_workers(str(root))


def wait_until(condition, what: str, proc=None):
    """Poll `condition` until it holds and return its value; fail if `proc` (a Popen) ended first
    or, as a guard against a hang only, after HANG_SECONDS."""
    import time as _time

    deadline = _time.monotonic() + HANG_SECONDS
    while True:
        value = condition()
        if value:
            return value
        assert proc is None or proc.poll() is None, f"the process ended ({proc.returncode}) before {what}"
        assert _time.monotonic() < deadline, f"waited {HANG_SECONDS:.0f} s for {what}"
        _time.sleep(0.05)


def wait_until_no_worker(root) -> None:
    """Wait until every worker of a killed sweep under `root` has died with it."""
    wait_until(lambda: not workers_writing_to(root), f"the workers under {root} to end")


# Fields of a result that measure the machine rather than the run: left out where two sweeps' tables
# are compared.
TIMINGS = ("train_seconds", "train_cpu_seconds", "images_per_second", "peak_memory_mb", "latency_ms", "throughput_ips", "latency_ms_slowest",
           "throughput_ips_slowest", "cost_load_average", "cost_other_runs")


def first_table(markdown: str) -> list[str]:
    """The rows of the first table of a results.md or `runner report` (one line per run)."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|---"):
            continue
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return rows[1:]  # without the header
