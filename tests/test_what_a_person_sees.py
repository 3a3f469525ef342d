"""What a person sees on the screen, through the command line as they run it: usage errors, the
words the report uses for a folder's runs, the compact table a terminal gets, where the results are,
and the figures' own legends, colour bars and names."""
import fcntl
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import termios

import numpy as np
import pytest

from conftest import HANG_SECONDS, REPO, cli, first_table, tiny_experiment

ONE = '[[runs]]\nmodel = "lenet"\n'


def on_a_terminal(*args, columns: int = 120, env=None) -> tuple[int, str]:
    """`runner ...` with stdout and stderr on one pseudo-terminal `columns` wide, as a person sees it:
    (exit code, the screen's text)."""
    import pty
    import select

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "runner", *map(str, args)], stdin=child, stdout=child,
                            stderr=child, env={**os.environ, **(env or {})}, close_fds=True)
    os.close(child)
    screen = b""
    while True:
        ready, _, _ = select.select([main], [], [], HANG_SECONDS)
        assert ready, f"runner {' '.join(map(str, args))} printed nothing for {HANG_SECONDS:.0f} s"
        try:
            chunk = os.read(main, 1 << 16)
        except OSError:  # the terminal's far end closed: the process has ended
            break
        if not chunk:
            break
        screen += chunk
    os.close(main)
    return proc.wait(timeout=HANG_SECONDS), screen.decode(errors="replace").replace("\r\n", "\n")


# ---- usage errors: exit 2, one line, one wording ---------------------------------------------------

def usage_errors(experiment):
    return [
        (["report", "--format", "xml"], "invalid value for '--format': 'xml' is not one of 'md', 'csv', 'json'",
         "runner report"),
        (["frobnicate"], "no such command 'frobnicate'", "runner"),
        (["data", "frob"], "no such command 'frob'", "runner data"),
        (["sweep", experiment, "--frob"], "no such option --frob", "runner sweep"),
        (["sweep"], "missing argument 'file'", "runner sweep"),
        (["report", "--format"], "option '--format' requires an argument", "runner report"),
        (["sweep", experiment, "--jobs", "0"], "invalid value for '--jobs'", "runner sweep"),
        (["train", experiment, "--set", "epochs"], "--set 'epochs': expected key=value", "runner train"),
        (["train", experiment, "--set", "=1"], "--set '=1': expected key=value", "runner train"),
        (["sweep", experiment, "--set", "optimiser.learning_rate=1"], "--set: unknown key optimiser", "runner sweep"),
        (["sweep", experiment, "--set", "epochs=0"], "--set epochs=0: ", "runner sweep"),
        (["train", experiment, "--run", "nosuch"], "--run 'nosuch':", "runner train"),
        (["sweep", experiment, "--devices", "a,b"], "--devices 'a,b': give GPU numbers", "runner sweep"),
        (["sweep", experiment, "--cluster", "auto", "--jobs", "2"], "--cluster runs each run where Ray places it",
         "runner sweep"),
    ]


def test_every_usage_error_exits_2_with_one_line_in_one_wording(tmp_path, outputs):
    experiment = tiny_experiment(tmp_path, ONE)
    for argv, message, command in usage_errors(experiment):
        proc = cli(*argv)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (argv, proc.returncode, proc.stderr)
        assert len(lines) == 1 and "Traceback" not in proc.stderr, (argv, proc.stderr)
        assert lines[0].startswith(f"error: {message}"), (argv, lines[0])
        assert lines[0].endswith(f"(see `{command} --help`)"), (argv, lines[0])
    assert not outputs.exists()  # nothing was started


def test_help_names_the_extra_to_install_and_a_group_alone_prints_its_help():
    sweep = cli("sweep", "-h", check=True, env={"COLUMNS": "200"})
    assert "pip install -e '.[cluster]'" in " ".join(sweep.stdout.split())
    group = cli("data")
    assert group.returncode == 0 and "check" in group.stdout and "Usage:" in group.stdout and not group.stderr


# ---- the file's runs, a one-off run beside them ------------------------------------------------------

def test_a_one_off_run_with_set_does_not_change_what_the_report_calls_the_files_runs(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE + '[[runs]]\nmodel = "lenet"\nseed = 1\n', epochs=1)
    cli("sweep", path, check=True)
    cli("train", path, "--run", "lenet", "--set", "seed=5", check=True)  # as in the README's Quick start
    cli("sweep", path, "--set", "epochs=2", check=True)  # and a whole sweep under a --set
    runs = {r["run_id"]: r for r in json.loads(cli("report", outputs / "tiny", "--format", "json",
                                                   check=True).stdout)["runs"]}
    by_seed_and_epochs = {(r["seed"], r["epochs_run"]): r for r in runs.values()}
    assert len(runs) == 5
    for key in ((0, 1), (1, 1)):  # the file's own runs stay the file's
        assert by_seed_and_epochs[key]["in_file"] and by_seed_and_epochs[key]["overrides"] is None, key
    assert by_seed_and_epochs[(5, 1)]["overrides"] == ["seed=5"] and not by_seed_and_epochs[(5, 1)]["in_file"]
    assert by_seed_and_epochs[(0, 2)]["overrides"] == ["epochs=2"]
    table = (outputs / "tiny" / "results.md").read_text()
    assert "not in the file" not in table
    rows = first_table(table)
    assert sum("(--set seed=5)" in r for r in rows) == 1 and sum("(--set epochs=2)" in r for r in rows) == 2
    assert "trained with those settings changed on the command line" in table


# ---- two folders holding the same runs ---------------------------------------------------------------

def test_a_folder_whose_runs_are_all_in_another_is_one_true_line(tmp_path, outputs):
    cli("sweep", tiny_experiment(tmp_path, ONE, epochs=1), check=True)
    first, copy = outputs / "tiny", tmp_path / "copy"
    shutil.copytree(first, copy)
    code, screen = on_a_terminal("report", first, copy, "--format", "md")
    about_copy = [line for line in screen.splitlines() if str(copy) in line]
    assert code == 0, screen  # nothing is missing from the table: each run is shown once
    assert about_copy == [f"- {copy}: all 1 finished run(s) are the same runs (same settings and seed) as in "
                          f"{first.resolve()}: each is shown once"], screen
    assert "no finished run yet" not in screen
    assert sum(line.startswith("| lenet-") for line in first_table(screen)) == 1
    piped = cli("report", first, copy)  # piped: the table to stdout, the note once to stderr
    assert piped.returncode == 0 and piped.stderr.count(str(copy)) == 1 and piped.stdout.count(str(copy)) == 1


# ---- the terminal's compact table ----------------------------------------------------------------------

def test_report_on_a_terminal_is_a_verdict_and_a_table_that_fit_120_columns(tmp_path, outputs):
    runs = ONE + ('[[runs]]\nmodel = "alexnet"\n'
                  'optimizer = { name = "momentum", learning_rate = 0.01, momentum = 0.9 }\n')
    cli("sweep", tiny_experiment(tmp_path, runs, epochs=1), check=True)
    report = json.loads(cli("report", outputs / "tiny", "--format", "json", check=True).stdout)
    best = next(r for r in report["runs"] if r["is_best"])
    other = next(r for r in report["runs"] if not r["is_best"])
    code, screen = on_a_terminal("report", outputs / "tiny", columns=200)
    lines = screen.rstrip("\n").splitlines()
    assert code == 0 and all(len(line) <= 120 for line in lines), [len(line) for line in lines]
    verdict = lines[0]
    assert verdict.startswith(f"best: {best['model']} ({100 * best['final_acc']:.2f}%)"), verdict
    if other["mcnemar_p"] >= 0.05:
        assert verdict.endswith(f"not distinguishable from {other['model']} on these images (McNemar p ≥ 0.05)")
    else:
        assert "every other run differs from it" in verdict
    header = lines[2].split()
    # the runs differ in optimizer and learning rate, not in batch size, tta, dataset or size
    assert header[:5] == ["run", "model", "seed", "optimizer", "lr"] and "batch" not in header and "tta" not in header
    assert "final acc (95% CI)" in lines[2] and "AUC" in header and "p vs best" in lines[2] and "latency ms" in lines[2]
    row = next(line for line in lines[3:] if line.split()[0].lstrip("…") in other["run_id"])
    assert f"{100 * other['final_acc']:.2f}%" in row and "momentum" in row and "0.01" in row
    footnote = next(line for line in lines if line.startswith("latency:"))
    assert re.search(r"fastest round; measured at load [\d.–]+ with [\d–]+ other run\(s\) training", footnote), footnote
    assert "| run |" not in screen  # not the markdown
    markdown = on_a_terminal("report", outputs / "tiny", "--format", "md")[1]
    assert markdown.startswith("| run | model |")  # asked for, the full markdown


def test_the_compact_table_gives_way_in_names_never_in_numbers():
    from runner.report.comparison import Comparison
    from runner.report.terminal import compact_report

    def row(model, seed, acc, p):
        config = {"model": model, "seed": seed, "dataset": "ichallenge-pm", "image_size": 224, "epochs": 5,
                  "batch_size": 10, "optimizer": {"name": "adam", "learning_rate": 0.001}, "tta": 0}
        result = {"run_id": f"{model.replace('/', '-')}-s{seed}-0123abcd", "name": model, "config": config,
                  "final": {"acc": acc, "auc": 0.99}, "best": {"acc": acc}, "epochs_run": 5, "parameters": 1,
                  "class_names": ["a", "b"], "latency_ms": 12.3456}
        return {"result": result, "ci": (acc - 0.02, acc + 0.01), "mcnemar": p, "probability": {},
                "in_file": True, "overrides": None}

    rows = [row("paddle.vision/mobilenet_v3_large", 0, 0.9775, "best")] + \
        [row(f"paddle.vision/shufflenet_v2_x1_0_variant_{i}", i, 0.95, 0.3) for i in range(12)]
    lines = compact_report(Comparison(rows)).splitlines()
    assert all(len(line) <= 120 for line in lines), max(map(len, lines))
    assert re.search(r"(and \d+ more|12 others) on these images \(McNemar p ≥ 0\.05\)$", lines[0]), lines[0]
    table = lines[3:16]
    assert all("95.00% (93.0–96.0)" in line and "12.3" in line for line in table[1:])
    assert all(line.split()[0].endswith("-s" + line.split()[2] + "-0123abcd") for line in table)  # id tails stay


# ---- where to look -----------------------------------------------------------------------------------

def test_the_closing_line_and_the_quick_start_say_where_to_look(tmp_path, outputs):
    path = tiny_experiment(tmp_path, ONE, epochs=1)
    done = cli("sweep", path, check=True).stdout.strip().splitlines()[-1]
    folder = outputs / "tiny"
    for word in (str(folder), "results.md", "report.html", f"runner board {folder}"):
        assert word in done, done
    quick_start = re.search(r"## Quick start(.*?)\n## ", (REPO / "README.md").read_text(), re.S).group(1)
    for word in ("outputs/quick/report.html", "runner board outputs/quick", "outputs/quick/results.md"):
        assert word in quick_start, word


# ---- the figures' own data: legends, the colour bar, the file names --------------------------------------

def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def history(values):
    return [{"epoch": e + 1, "train": {"acc": v, "loss": 1 - v}, "val": {"acc": v, "loss": 1 - v}}
            for e, v in enumerate(values)]


def test_every_figure_with_several_lines_has_a_legend():
    from runner import plots

    seeds = [{"history": history([0.5, 0.6 + s / 10]), "config": {"seed": s}, "train_seconds": 60,
              "final": {"acc": 0.7}} for s in range(2)]
    bins = (np.array([0.55, 0.75]), np.array([0.5, 0.8]), np.array([3, 5]))
    figures = {
        "run curves": plots.run_curves_figure(seeds[0]),
        "small multiples": plots.small_multiples_figure([("lenet", seeds), ("alexnet", seeds[:1])]),
        "reliability": plots.reliability_figure([("lenet", [("seed 0", bins), ("seed 1", bins)])]),
        "curves": plots.curves_figure([("lenet", seeds)]),
        "interval dots": plots.interval_dot_figure([("lenet", 70.0, 65.0, 75.0, "t"), ("vgg", 60.0, 50, 70, "wilson")]),
    }
    for name, fig in figures.items():
        for ax in fig.axes:
            lines = [line for line in ax.get_lines() if len(line.get_xdata()) > 1]
            if len(lines) > 1:
                assert ax.get_legend() is not None, (name, ax.get_title())
    assert {"training", "validation"} <= set(texts(figures["run curves"]))
    assert {"seed 0", "seed 1", "mean of 2 seeds"} <= set(texts(figures["small multiples"]))


def test_grad_cam_cells_name_the_file_the_prediction_and_the_colour_bar_its_scale():
    from runner import plots

    rng = np.random.default_rng(0)
    cam = {"indices": np.array([3, 0]), "names": np.array(["V0004.jpg", "V0001.jpg"]), "labels": np.array([1, 0]),
           "classes": np.array([1, 1]), "images": rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8),
           "heat": rng.uniform(0, 1, (2, 8, 8)).astype(np.float16)}
    probs = np.array([[0.3, 0.7], [0.5, 0.5], [0.5, 0.5], [0.2, 0.8]])  # image 0 said PM: wrong; image 3: right
    fig = plots.gradcam_figure([("lenet", cam, probs)], ["normal", "PM"])
    words = texts(fig)
    assert "V0004.jpg\ntrue PM" in words and "V0001.jpg\ntrue normal" in words
    assert "PM 0.80\nright" in words and "PM 0.70\nwrong" in words
    bar = [ax for ax in fig.axes if "scaled to its own peak" in ax.get_ylabel()]
    assert len(bar) == 1  # a colour bar that says each map has its own scale


def test_the_pareto_plot_shows_each_interval_on_an_axis_that_does_not_blow_up_a_small_gap():
    from runner import plots

    points = [{"group": g, "latency": lat, "latency_slowest": lat * 1.3, "acc": acc, "acc_low": acc - 0.02,
               "acc_high": acc + 0.015, "auc": 0.99, "auc_low": 0.98, "auc_high": 0.995}
              for g, lat, acc in (("vgg11", 32.9, 0.9775), ("squeezenet", 1.7, 0.9725))]
    fig = plots.pareto_figure(points, ["vgg11", "squeezenet"])
    accuracy = fig.axes[0]
    low, high = accuracy.get_ylim()
    assert high - low >= 10 and low <= 95.25 and high <= 100  # holds every interval, spans 10 points or more
    bars = [c for c in accuracy.collections if c.__class__.__name__ == "LineCollection"]
    assert len(bars) >= 4  # each run's accuracy interval and its latency spread
    assert "Pareto front (no run better on both)" in texts(fig)


def test_accuracy_against_training_time_uses_cpu_minutes_only_where_every_run_has_them():
    from runner import plots

    loaded = {"train_seconds": 2400.0, "train_cpu_seconds": 1200.0, "final": {"acc": 0.68}}
    idle = {"train_seconds": 600.0, "train_cpu_seconds": 590.0, "final": {"acc": 0.78}}
    ax = plots.cost_figure([("alexnet", [loaded]), ("resnet20", [idle])]).axes[0]
    assert ax.get_xlabel() == "training CPU time (min)"
    assert sorted(x for c in ax.collections for x, _ in c.get_offsets()) == pytest.approx([590 / 60, 20.0])
    # one run without CPU time (an older runner's): every point at wall time, and the axis says so
    older = {"train_seconds": 900.0, "final": {"acc": 0.8}}
    ax = plots.cost_figure([("alexnet", [loaded]), ("vgg", [older])]).axes[0]
    assert ax.get_xlabel() == "training wall time (min)"
    assert sorted(x for c in ax.collections for x, _ in c.get_offsets()) == pytest.approx([15.0, 40.0])


def test_machine_load_counts_the_runs_training_here():
    from runner.processes import machine_load

    # Popen returns once exec has begun, but Linux fills /proc/<pid>/cmdline a moment later (CI once
    # read it empty under load): the stand-in says when it runs, and only then is it looked for.
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)",
                                 "runner.run.worker"], stdout=subprocess.PIPE, text=True)
    try:
        assert stand_in.stdout.readline() == "up\n"
        load = machine_load()
    finally:
        stand_in.kill()
        stand_in.wait()
    assert load["cost_other_runs"] >= 1 and load["cost_load_average"] >= 0


def test_a_run_of_several_processes_counts_once_and_not_as_another_run_to_itself(tmp_path):
    from runner.processes import other_runs, runner_jobs

    # paddle's launcher names the worker file and the job as its workers do: a two-process run is
    # three processes of one job, and the latency its rank 0 times is not "under 1 other run"
    mine, theirs = str(tmp_path / "mine" / "job.json"), str(tmp_path / "theirs" / "job.json")
    wait = "import time; print('up', flush=True); time.sleep(600)"
    argvs = [["paddle.distributed.launch", "--nproc_per_node", "2", "runner/run/worker.py", mine],
             ["runner/run/worker.py", mine], ["runner/run/worker.py", mine], ["runner.run.worker", theirs]]
    stand_ins = [subprocess.Popen([sys.executable, "-c", wait, *argv], stdout=subprocess.PIPE, text=True)
                 for argv in argvs]
    try:
        assert all(p.stdout.readline() == "up\n" for p in stand_ins)
        jobs = runner_jobs()  # one look: other tests' workers may start and end beside this one
    finally:
        for p in stand_ins:
            p.kill()
            p.wait()
    assert [jobs.get(p.pid) for p in stand_ins] == [mine, mine, mine, theirs]
    assert other_runs(mine, jobs) == other_runs(None, jobs) - 1 == other_runs(theirs, jobs)
