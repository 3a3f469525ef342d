"""What passes between a sweep and the worker process it starts for a run: the job (runs/<id>/job.json),
the command and environment that start the worker, and what the worker's exit code means. Both sides
import this module; neither imports the other.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import runner
from runner.store.layout import RobustnessPaths, RunPaths, SweepPaths, resolve_data_root
from runner.store.runfiles import read_error, read_json, write_json_atomic

EXIT_FAILED, EXIT_INTERRUPTED = 3, 4
WORKER_VARIABLE = "RUNNER_WORKER"  # set in every worker's environment (the fault points read it)
# Set by the Ray executor for the worker it starts: the Ray node a run trained on, for result.json.
NODE_VARIABLE = "RUNNER_RAY_NODE"
WORKER_FILE = Path(runner.__file__).parent / "run" / "worker.py"


def write_job(sweep: SweepPaths, spec, data_root, config: dict | None = None, robustness: dict | None = None,
              awaits_verdicts: bool = False) -> Path:
    """runs/<id>/job.json: what a worker needs to run `spec` (with `config` as the sweep placed it,
    say on one GPU of several); with a `robustness` protocol, runs/<id>/robustness-job.json, for a
    worker that scores the finished run under it (runner/run/robustness.py) instead. A worker that
    `awaits_verdicts` waits after each epoch but the last until the sweep has judged it (a pruner)."""
    paths = RobustnessPaths(sweep, spec.run_id) if robustness else sweep.run_paths(spec.run_id)
    paths.folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(paths.job, {"experiment": spec.experiment, "run_id": spec.run_id, "config": config or spec.config,
                                  "varies": list(spec.varies),
                                  "sweep_root": str(sweep.root.resolve()), "cache_dir": str(sweep.cache.resolve()),
                                  "data_root": str(resolve_data_root(data_root).resolve()),
                                  **({"robustness": robustness} if robustness else {}),
                                  **({"awaits_verdicts": True} if awaits_verdicts else {})})
    return paths.job


def read_job(job: Path) -> dict | None:
    return read_json(job)


def worker_command(paths: RunPaths, config: dict, python: str = sys.executable) -> list[str]:
    """The command that runs a run's job: the worker module, or paddle's launcher around it for nproc > 1."""
    if config["nproc"] > 1:
        return launch_command(paths.job, config["nproc"], paths.launch_logs, config["device"])
    return [python, "-m", "runner.run.worker", str(paths.job)]


def launch_command(job: Path, nproc: int, log_dir: Path, device: str) -> list[str]:
    """`python -m paddle.distributed.launch` running the worker on `nproc` processes."""
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir", str(log_dir)]
    if device.startswith("gpu"):
        cmd += ["--devices", ",".join(str(i) for i in range(nproc))]
    return cmd + [str(WORKER_FILE), str(job)]


def worker_environment(**extra: str) -> dict:
    """The environment a worker starts with: this process's, marked as a worker's, plus `extra`."""
    return {**os.environ, WORKER_VARIABLE: "1", **extra}


def why_it_ended(paths: RunPaths, code: int) -> str:
    """Why a worker ended without a result: its error.txt, else what its exit code says."""
    text = read_error(paths)
    if text:
        return text
    if code < 0:
        return f"worker killed by signal {signal.Signals(-code).name} (out of memory?); see {paths.log}"
    return f"worker exited with code {code} without a result; see {paths.log}"
