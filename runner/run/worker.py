"""One run in its own process, as a sweep starts it: `python -m runner.run.worker runs/<id>/job.json`.

Paddle keeps global state and memory per process and computes in one thread on CPU, so a sweep
runs each run in a worker of its own and several workers side by side, on this machine or on the
nodes of a Ray cluster. A worker reports through files only (runner/store/runfiles.py): progress.json
while it trains, result.json when it has finished, error.txt if it failed. The sweep process is the
registry's only writer.
"""
from __future__ import annotations

import signal
import sys
import time
import traceback
from pathlib import Path

from runner.run.distributed import launch_command
from runner.store.layout import SweepLayout, resolve_data_root
from runner.store.runfiles import read_json, write_error, write_json_atomic

EXIT_FAILED, EXIT_INTERRUPTED = 3, 4


def write_job(layout: SweepLayout, spec, data_root, config: dict | None = None) -> Path:
    """runs/<id>/job.json: what a worker needs to run `spec` (with `config` as the sweep placed it,
    say on one GPU of several)."""
    run = layout.run(spec.run_id)
    run.folder.mkdir(parents=True, exist_ok=True)
    job = run.folder / "job.json"
    write_json_atomic(job, {"experiment": spec.experiment, "run_id": spec.run_id, "config": config or spec.config,
                            "sweep_root": str(layout.root.resolve()), "cache_dir": str(layout.cache.resolve()),
                            "data_root": str(resolve_data_root(data_root).resolve())})
    return job


def command(job: Path, config: dict, python: str = sys.executable) -> list[str]:
    """The command that runs a job: this module, or paddle's launcher around it for nproc > 1."""
    if config["nproc"] > 1:
        return launch_command(job, config["nproc"], job.parent / "launch", config["device"])
    return [python, "-m", "runner.run.worker", str(job)]


class ProgressReport:
    """One line per note, start and epoch in train.log (flushed, so a tail shows it at once), and
    progress.json for the sweep: where the worker is (at most twice a second) and every epoch it
    has finished, so that the sweep reports each one even when it polls less often than they end."""

    def __init__(self, run):
        self.run, self.last_write, self.epochs = run, 0.0, []

    def __call__(self, event, **details):
        import json

        record = details.pop("record", None)
        if event in ("note", "start", "epoch"):
            line = details | ({"epoch": record["epoch"], "val": record["val"]} if record else {})
            print(event, json.dumps(line, default=str), flush=True)
        if record:
            self.epochs.append({"epoch": record["epoch"], "val": record["val"],
                                "seconds": record["train_seconds"] + record.get("eval_seconds", 0.0)})
        if event == "epoch" or (event in ("step", "start") and time.monotonic() - self.last_write > 0.5):
            self.last_write = time.monotonic()
            progress = {"event": event, "time": time.time(), "epochs_done": self.epochs}
            progress.update({k: v for k, v in details.items() if k in ("epoch", "step", "steps", "loss", "epochs")})
            write_json_atomic(self.run.progress, progress)


def main(job_file: str) -> int:
    job = read_json(Path(job_file))
    from runner.config import RunSpec, with_defaults
    from runner.errors import RunnerError

    spec = RunSpec(job["experiment"], with_defaults(job["config"]))
    run = SweepLayout(Path(job["sweep_root"])).run(job.get("run_id") or spec.run_id)
    (run.folder / "error.txt").unlink(missing_ok=True)
    if job.get("run_id") and spec.run_id != job["run_id"]:
        # the sweep and the worker must agree on the id, or the worker writes another run's folder
        write_error(run, f"this worker computes run id {spec.run_id} for the job of {job['run_id']}: the sweep and "
                         "the worker run different versions of runner; install one version everywhere")
        return EXIT_FAILED
    from runner.run.train import train_run

    try:
        train_run(spec, run, job.get("data_root"), Path(job["cache_dir"]), ProgressReport(run))
        return 0
    except KeyboardInterrupt:
        write_error(run, "interrupted (Ctrl-C); run the sweep again to resume from the last finished epoch")
        return EXIT_INTERRUPTED
    except RunnerError as err:
        write_error(run, str(err))
        return EXIT_FAILED
    except Exception as err:  # anything else: one line for the table, the traceback in train.log
        traceback.print_exc()
        write_error(run, f"{type(err).__name__}: {err} (traceback in {run.log})")
        return EXIT_FAILED


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a terminated worker stops like Ctrl-C
    sys.exit(main(sys.argv[1]))
