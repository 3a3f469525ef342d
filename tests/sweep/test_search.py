"""Hyper-parameter search: trials are runs, the pruner stops bad ones, a kill -9 loses and doubles
nothing, and selection never sees the official validation images."""
import json
import os
import signal
import subprocess
import sys

import optuna
import pytest

from conftest import HANG_SECONDS, cli, epochs_logged_before_each_start, resumed_at, wait_until_no_worker, write_toml
from runner.store.registry import RunRegistry

pytestmark = pytest.mark.slow

SEARCH = """
name = "srch"
[defaults]
dataset = "ichallenge-pm"
image_size = 32
epochs = {epochs}
batch_size = 16
train_limit = 64
val_limit = 32
validation = "{validation}"
optimizer = {{ name = "adam", learning_rate = 0.001 }}
[[runs]]
model = "lenet"
[search]
trials = {trials}
sampler = "tpe"
pruner = "{pruner}"
objective = "auc"
final_seeds = [0]
{extra}
[search.space]
{space}
"""
SPACE = '"optimizer.learning_rate" = { log = [1e-4, 1e-2] }\nlabel_smoothing = { range = [0.0, 0.2] }'


def search_file(tmp_path, epochs=2, trials=4, pruner="median", validation="holdout:0.25", space=SPACE, extra=""):
    return write_toml(tmp_path, SEARCH.format(epochs=epochs, trials=trials, pruner=pruner, validation=validation,
                                              space=space, extra=extra), "srch.toml")


def study(outputs):
    return optuna.load_study(study_name="srch", storage=f"sqlite:///{outputs / 'srch' / 'study.sqlite'}")


def states(outputs):
    return [t.state.name for t in study(outputs).trials]


def test_time_left_counts_the_trials_not_asked_for_yet_and_the_final_seeds(tmp_path):
    """A running search's "left" is not only its running trials: the trials still to ask for and
    the final seeds are counted at the base run's estimate, laid out on the cores."""
    from runner.config import load_experiment
    from runner.sweep.estimate import MachineTimings, makespan
    from runner.sweep.progress import SweepProgress, clock
    from runner.sweep.search import runs_to_come

    experiment = load_experiment(search_file(tmp_path, trials=4))
    to_come = runs_to_come(experiment, 3)
    assert len(to_come) == 4  # 3 trials and 1 final seed
    timings = MachineTimings()
    timings.add_sweep(start_seconds=0.0, report_seconds=0.0, runs=1)
    seconds = [timings.cost(spec.config).seconds for spec in to_come]
    progress = SweepProgress(parallel=2, timings=timings)
    progress.on_event("plan", planned=[])
    line = progress.on_event("expected", specs=to_come)
    assert progress.seconds_left() == pytest.approx(makespan([], [(s, 1) for s in seconds], 2))
    assert max(seconds) < progress.seconds_left() < sum(seconds)  # two at a time
    assert line == f"plan: 0 runs queued and 4 to come; about {clock(progress.seconds_left())} at 2 at a time"
    progress.on_event("expected", specs=[])
    assert progress.seconds_left() == 0


def test_a_tiny_search_completes_and_trains_the_best_settings_on_the_official_images(tmp_path, outputs):
    proc = cli("sweep", search_file(tmp_path), "--jobs", "2", check=True)
    counted = [s for s in states(outputs) if s in ("COMPLETE", "PRUNED")]
    assert len(counted) == 4 and "search done: trial" in proc.stdout
    rows = RunRegistry(outputs / "srch" / "runs.sqlite", create=False).rows()
    trials = [r for r in rows if r["config"]["validation"] == "holdout:0.25"]
    finals = [r for r in rows if r["config"]["validation"] == "official"]
    assert len(finals) == 1 and finals[0]["status"] == "done" and "selected by search" in finals[0]["config"]["label"]
    best = study(outputs).best_trial
    assert finals[0]["config"]["optimizer"]["learning_rate"] == pytest.approx(best.params["optimizer.learning_rate"])
    assert {r["status"] for r in trials} <= {"done", "pruned"} and len(trials) == 4
    table = (outputs / "srch" / "results.md").read_text()
    assert "(selected by search)" in table
    html = (outputs / "srch" / "report.html").read_text()
    assert "<h2>Search</h2>" in html and "search_history.png" in html
    # `runner report` shows the search itself too: every trial with its state and settings
    printed = cli("report", outputs / "srch", check=True).stdout
    assert "Search srch: its trials" in printed
    as_json = json.loads(cli("report", outputs / "srch", "--format", "json", check=True).stdout)
    listed = as_json["searches"]["srch"]
    assert sorted(t["trial"] for t in listed) == [t.number for t in study(outputs).trials]
    assert {t["state"] for t in listed} <= {"complete", "pruned"} and all("optimizer.learning_rate" in t for t in listed)


@pytest.mark.parametrize("prune_after", [1, 2])
def test_the_pruner_stops_a_bad_trial_before_its_last_epoch(tmp_path, outputs, prune_after):
    path = search_file(tmp_path, epochs=4, trials=3, extra=f"prune_after = {prune_after}",
                       space='"optimizer.name" = { choice = ["adam", "sgd"] }\n'
                             '"optimizer.learning_rate" = { choice = [0.001, 0.002, 10.0] }')
    cli("sweep", path, "--dry-run", check=True)  # the study does not exist yet: queue the trials in their order
    (outputs / "srch").mkdir(parents=True, exist_ok=True)
    queued = optuna.create_study(study_name="srch", storage=f"sqlite:///{outputs / 'srch' / 'study.sqlite'}",
                                 direction="maximize")
    for params in ({"optimizer.name": "adam", "optimizer.learning_rate": 0.001},
                   {"optimizer.name": "adam", "optimizer.learning_rate": 0.002},
                   {"optimizer.name": "sgd", "optimizer.learning_rate": 10.0}):
        queued.enqueue_trial(params)
    proc = cli("sweep", path, "--jobs", "1", check=True)
    bad = study(outputs).trials[2]
    assert bad.params["optimizer.learning_rate"] == 10.0 and bad.state.name == "PRUNED", proc.stdout
    assert prune_after <= max(bad.intermediate_values) < 4  # stopped before its last epoch, not before prune_after
    rows = {r["id"]: r for r in RunRegistry(outputs / "srch" / "runs.sqlite", create=False).rows()}
    pruned = [r for r in rows.values() if r["config"]["optimizer"]["learning_rate"] == 10.0]
    assert len(pruned) == 1 and pruned[0]["status"] == "pruned" and "pruned by the search after epoch" in pruned[0]["error"]


def test_kill_9_mid_search_then_the_same_command_finishes_exactly_the_trials(tmp_path, outputs):
    path = search_file(tmp_path, trials=4, pruner="none")
    env = {**os.environ, "RUNNER_OUTPUT_ROOT": str(outputs)}
    for fault in ("registry-update:2", "train-step:3"):  # after a run ended, before it was recorded; mid-run
        proc = subprocess.run([sys.executable, "-m", "runner", "sweep", str(path), "--jobs", "1"],
                              env={**env, "RUNNER_FAULT": fault}, capture_output=True, timeout=HANG_SECONDS)
        assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:]
        wait_until_no_worker(outputs)
    cli("sweep", path, "--jobs", "1", check=True)
    trials = study(outputs).trials
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 4
    assert len({t.number for t in trials}) == len(trials)
    runs = RunRegistry(outputs / "srch" / "runs.sqlite", create=False).rows()
    done = [r for r in runs if r["status"] == "done"]
    assert len(done) == 4 + 1  # every counted trial's run, and the final seed
    for row in done:  # nothing finished was trained again; a restart resumed
        log = outputs / "srch" / "runs" / row["id"] / "train.log"
        for started, logged in zip(resumed_at(log), epochs_logged_before_each_start(log)):
            assert started >= logged
    again = cli("sweep", path, "--jobs", "1", check=True)  # a finished search trains nothing more
    assert "started" not in again.stdout and len(study(outputs).trials) == len(trials)


@pytest.mark.parametrize("change, expected", [
    ({"validation": "official"}, "a search must not be scored on the official validation images"),
    ({"space": '"optimiser.learning_rate" = { log = [1e-4, 1e-2] }'}, "unknown key optimiser"),
    ({"space": '"optimizer.learning_rate" = { log = [0.0, 1e-2] }'}, "a log scale needs low > 0"),
    ({"space": 'label_smoothing = { range = [0.2, 0.1] }'}, "is empty: low must be below high"),
    ({"space": 'batch_size = { int = [0, 8] }'}, "batch_size = 0 is out of range"),
    ({"space": 'model = { choice = ["lenet", "resnet5O"] }'}, "unknown model 'resnet5O'"),
    ({"space": 'image_size = { between = [1, 2] }'}, "give one of"),
    ({"pruner": "asha"}, "search.pruner = 'asha'; allowed: hyperband, median, none"),
    ({"extra": "prune_after = 2"}, "search.prune_after = 2 must be at least 1 and below epochs = 2"),
])
def test_a_bad_search_is_one_line_before_anything_trains(tmp_path, outputs, change, expected):
    proc = cli("sweep", search_file(tmp_path, **change), "--dry-run")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in proc.stderr, proc.stderr
    assert not (outputs / "srch").exists()


FAKE_RAY = '''"""A stand-in for Ray with two nodes, the second of which does not see the sweep's folder: each
task runs at once in the sweep's process; a run's task "exits 1" without training."""
import types


class RayError(Exception):
    pass


class TaskCancelledError(RayError):
    pass


exceptions = types.SimpleNamespace(RayError=RayError, TaskCancelledError=TaskCancelledError)
NODES = [{"NodeID": "seeing" + "0" * 50, "Alive": True}, {"NodeID": "blind" + "0" * 51, "Alive": True}]


class Ref:
    def __init__(self, value):
        self.value = value


class Remote:
    def __init__(self, fn, options=None):
        self.fn, self.opts = fn, options or {}

    def options(self, **options):
        return Remote(self.fn, options)

    def remote(self, *args):
        if self.fn.__name__ != "probe_node":
            return Ref(1)
        if self.opts["scheduling_strategy"].node_id.startswith("blind"):
            args = ("/nonexistent/.cluster-check",) + args[1:]
        return Ref(self.fn(*args))


def init(**options): pass
def shutdown(): pass
def nodes(): return NODES
def cluster_resources(): return {"CPU": 2}
def remote(fn): return Remote(fn)
def get(refs, timeout=None): return [r.value for r in refs] if isinstance(refs, list) else refs.value
def wait(refs, num_returns=1, timeout=None): return list(refs), []
def cancel(ref, force=False): pass
'''


@pytest.mark.parametrize("kind", ["sweep", "search"])
def test_a_sweep_and_a_search_on_a_cluster_refuse_a_node_that_cannot_see_the_files(tmp_path, outputs, kind):
    """One entry for both: a search through --cluster checks, as a sweep does, that every node sees
    the output folder and the data before anything trains."""
    fake = tmp_path / "fake_ray"
    (fake / "ray" / "util").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text(FAKE_RAY)
    (fake / "ray" / "util" / "__init__.py").write_text("")
    (fake / "ray" / "util" / "scheduling_strategies.py").write_text(
        "class NodeAffinitySchedulingStrategy:\n    def __init__(self, node_id, soft=False):\n        self.node_id = node_id\n")
    path = (search_file(tmp_path, epochs=2, trials=1) if kind == "search" else
            write_toml(tmp_path, SEARCH.split("[search]")[0].format(epochs=1, validation="official"), "srch.toml"))
    pythonpath = os.pathsep.join(p for p in (str(fake), os.environ.get("PYTHONPATH")) if p)
    proc = cli("sweep", path, "--cluster", "auto", env={"PYTHONPATH": pythonpath})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "error: Ray node blind000 (" in proc.stderr
    assert "cannot use this sweep's files: it cannot read /nonexistent/.cluster-check" in proc.stderr
    assert not list((outputs / "srch").glob("runs/*/job.json"))  # nothing was started


def test_results_md_is_what_runner_report_prints_with_the_search_table(tmp_path, outputs):
    cli("sweep", search_file(tmp_path, epochs=2, trials=2, pruner="none"), "--jobs", "2", check=True)
    written = (outputs / "srch" / "results.md").read_text()
    assert "Search srch: its trials" in written and written.count("| complete |") == 2
    assert cli("report", outputs / "srch", check=True).stdout == written
