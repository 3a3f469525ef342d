"""The worker's side of its contract with the sweep (runner/run/worker.py)."""
import threading
import time

from runner.run.worker import ProgressFiles
from runner.store.layout import SweepPaths
from runner.store.runfiles import read_json, write_json_atomic


def epoch(n: int) -> dict:
    return {"epoch": n, "val": {"acc": 0.5, "loss": 0.7}, "train_seconds": 1.0}


def test_a_trial_that_may_be_pruned_starts_its_next_epoch_only_after_the_sweep_judged_this_one(tmp_path):
    """Before, how far a pruned trial trained depended on how soon the sweep polled: a short epoch,
    or a busy machine, and the trial trained on or finished before the pruner's word reached it."""
    paths = SweepPaths(tmp_path).run_paths("trial")
    paths.folder.mkdir(parents=True)
    order = []

    def sweep():  # reads the epoch, judges it, says so
        while not (read_json(paths.progress) or {}).get("epochs_done"):
            time.sleep(0.01)
        order.append("judged epoch 1")
        write_json_atomic(paths.verdict, {"epoch": 1})

    judge = threading.Thread(target=sweep)
    judge.start()
    progress = ProgressFiles(paths, awaits_verdicts=True)
    progress("epoch", record=epoch(1), epochs=3)
    order.append("epoch 2 starts")
    judge.join()
    assert order == ["judged epoch 1", "epoch 2 starts"]
    progress("epoch", record=epoch(3), epochs=3)  # the last epoch has no next one to hold
    assert read_json(paths.progress)["epochs_done"][-1]["epoch"] == 3


def test_a_run_no_pruner_judges_never_waits(tmp_path):
    paths = SweepPaths(tmp_path).run_paths("run")
    paths.folder.mkdir(parents=True)
    ProgressFiles(paths)("epoch", record=epoch(1), epochs=3)
    assert not paths.verdict.exists() and read_json(paths.progress)["epochs_done"][0]["epoch"] == 1
