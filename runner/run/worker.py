"""One run in its own process, as a sweep starts it: `python -m runner.run.worker runs/<id>/job.json`.

Paddle keeps global state and memory per process and computes in one thread on CPU, so a sweep
runs each run in a worker of its own and several workers side by side, on this machine or on the
nodes of a Ray cluster. A worker reports through files only (runner/store/runfiles.py): progress.json
while it trains, result.json when it has finished, error.txt if it failed. The sweep process is the
registry's only writer. The job, the command and the exit codes are runner/store/jobs.py's. A
job with a robustness protocol (runs/<id>/robustness-job.json) scores the finished run on corrupted
images instead of training it (runner/run/robustness.py).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from runner.processes import process_started
from runner.store.jobs import EXIT_FAILED, EXIT_INTERRUPTED, read_job
from runner.store.layout import SweepPaths
from runner.store.runfiles import read_json, write_error, write_json_atomic


class ProgressFiles:
    """A worker's events, written where the sweep and a reader look: one line per note, start and
    epoch in train.log (flushed, so a tail shows it at once), and progress.json: where the worker is
    (at most twice a second) and every epoch it has finished, so that the sweep tells each one even
    when it polls less often than they end."""

    def __init__(self, paths, awaits_verdicts: bool = False):
        self.paths, self.last_write, self.epochs = paths, 0.0, []
        self.awaits_verdicts = awaits_verdicts

    def __call__(self, event, **details):
        record = details.pop("record", None)
        if event in ("note", "start", "epoch"):
            line = details | ({"epoch": record["epoch"], "val": record["val"]} if record else {})
            print(event, json.dumps(line, default=str), flush=True)
        if record:
            self.epochs.append({"epoch": record["epoch"], "val": record["val"],
                                "seconds": record["train_seconds"] + record.get("eval_seconds", 0.0),
                                **{k: record.get(k) for k in ("train_seconds", "train_cpu_seconds", "eval_seconds")}})
        if event == "epoch" or (event in ("step", "start") and time.monotonic() - self.last_write > 0.5):
            self.last_write = time.monotonic()
            progress = {"event": event, "time": time.time(), "epochs_done": self.epochs}
            progress.update({k: v for k, v in details.items() if k in ("epoch", "step", "steps", "loss", "epochs")})
            write_json_atomic(self.paths.progress, progress)
        if event == "epoch" and self.awaits_verdicts and record["epoch"] < details.get("epochs", 0):
            self.wait_for_verdict(record["epoch"])

    def wait_for_verdict(self, epoch: int) -> None:
        """Hold the next epoch until the sweep has judged this one, as a search's pruner must: else
        a short epoch ends before the sweep reads it and a trial it would stop trains on, or
        finishes, depending on how busy the machine is. The sweep stops a pruned run with a signal
        while it waits here (after its checkpoint); if the sweep is gone, the run goes on."""
        sweep = os.getppid()
        while (read_json(self.paths.verdict) or {}).get("epoch", 0) < epoch and os.getppid() == sweep:
            time.sleep(0.05)


def main(job_file: str) -> int:
    started = process_started()
    job = read_job(Path(job_file))
    from runner.config import RunSpec, with_defaults
    from runner.errors import RunnerError

    spec = RunSpec(job["experiment"], with_defaults(job["config"]), tuple(job.get("varies", ())))
    paths = SweepPaths(Path(job["sweep_root"])).run_paths(job.get("run_id") or spec.run_id)
    paths.error.unlink(missing_ok=True)
    if job.get("run_id") and spec.run_id != job["run_id"]:
        # the sweep and the worker must agree on the id, or the worker writes another run's folder
        write_error(paths, f"this worker computes run id {spec.run_id} for the job of {job['run_id']}: the sweep and "
                           "the worker run different versions of runner; install one version everywhere")
        return EXIT_FAILED
    try:
        if job.get("robustness"):  # a finished run scored on corrupted images (runner/sweep/robustness.py)
            from runner.run.robustness import evaluate_robustness

            evaluate_robustness(spec, paths, job["robustness"], job.get("data_root"), Path(job["cache_dir"]),
                                ProgressFiles(paths))
        else:
            from runner.run.train import train_run

            train_run(spec, paths, job.get("data_root"), Path(job["cache_dir"]),
                      ProgressFiles(paths, job.get("awaits_verdicts", False)), started)
        return 0
    except KeyboardInterrupt:
        write_error(paths, "interrupted (Ctrl-C); run the sweep again to resume from the last finished epoch")
        return EXIT_INTERRUPTED
    except RunnerError as err:
        write_error(paths, str(err))
        return EXIT_FAILED
    except Exception as err:  # anything else: one line for the table, the traceback in train.log
        traceback.print_exc()
        write_error(paths, f"{type(err).__name__}: {err} (traceback in {paths.log})")
        return EXIT_FAILED


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a terminated worker stops like Ctrl-C
    from runner.run.distributed import rank_and_world

    if rank_and_world()[1] > 1:  # one of paddle.distributed.launch's processes
        from runner.processes import die_with_launcher

        die_with_launcher()
    sys.exit(main(sys.argv[1]))
