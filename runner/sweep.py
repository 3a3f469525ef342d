"""Sweeps: every run of an experiment file, one worker process per run, up to N at a time.

A sweep holds an exclusive lock on its output folder, so a second sweep there refuses instead of
writing the same runs twice. It skips runs that are done, resumes interrupted ones from their last
checkpoint, re-runs failed ones only when asked, and rewrites the comparison table after every
finished run. A run that fails never stops the others.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from runner.checkpoints import Checkpoints, write_json_atomic
from runner.config import Experiment, RunSpec, evaluates_on_inference_engine
from runner.cpu import usable_cores
from runner.distributed import launch_command
from runner.errors import RunnerError
from runner.faults import fault_point
from runner.layout import SweepLayout
from runner.processes import die_with_parent
from runner.registry import RunRegistry
from runner.report import write_outputs
from runner.train import read_result
from runner.worker import EXIT_INTERRUPTED

Event = Callable[..., None]  # on_event(kind, **details)
RESULT_FIELDS = ("final", "best", "best_epoch", "epochs_run", "stopped_early", "train_seconds", "eval_seconds",
                 "images_per_second", "parameters", "flops", "train_images", "val_images")


@dataclass
class PlannedRun:
    spec: RunSpec
    status: str  # in the registry before this sweep: new, queued, running, done, failed, interrupted
    action: str  # run, resume, skip (done), hold (failed, without --retry-failed)
    epochs_done: int = 0  # by a resumed run's newest checkpoint

    @property
    def to_do(self) -> bool:
        return self.action in ("run", "resume")


def plan_sweep(experiment: Experiment, registry: RunRegistry | None, retry_failed: bool = False) -> list[PlannedRun]:
    layout = SweepLayout.for_experiment(experiment.name)
    planned = []
    for spec in experiment.runs:
        run = layout.run(spec.run_id)
        row = registry.get(spec.run_id) if registry else None
        status = row["status"] if row else "new"
        epochs_done = 0
        if status == "done" or read_result(run):
            action = "skip"
        elif status == "failed" and not retry_failed:
            action = "hold"
        else:
            epochs_done = Checkpoints(run.checkpoints).newest_epoch()
            action = "resume" if epochs_done else "run"
        planned.append(PlannedRun(spec, status, action, epochs_done))
    return planned


class SweepLock:
    """An exclusive flock on outputs/<name>/.sweep.lock; the kernel drops it if the process dies."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise RunnerError(f"another sweep is already running in {self.path.parent} (pid {holder}); "
                              "wait for it to finish or stop it, then run again — finished runs are kept") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def default_jobs() -> int:
    # paddle computes in one thread per process on CPU unless a run asks for more: a run per core
    # (or fewer, wider runs) uses the machine.
    return usable_cores()


def slots_needed(config: dict, on_gpus: bool) -> int:
    """Cores a run keeps busy: its math threads in each of its processes; a GPU run counts one."""
    return 1 if on_gpus else max(1, config.get("threads", 1)) * max(1, config.get("nproc", 1))


def next_to_start(pending: list[PlannedRun], free_slots: int, idle: bool, on_gpus: bool) -> int | None:
    """Index of the first pending run that fits in the free slots, so that short single-core runs
    fill a core that a wide run cannot use yet; a run wider than the whole budget starts alone."""
    for i, planned in enumerate(pending):
        need = slots_needed(planned.spec.config, on_gpus)
        if need <= free_slots or idle:
            return i
    return None


@contextmanager
def open_sweep(experiment: Experiment):
    """Lock the sweep's folder, open its registry with every run of the file in it, recover from
    any crash; on the way out, rewrite the tables."""
    layout = SweepLayout.for_experiment(experiment.name)
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        probe = layout.root / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise RunnerError(f"cannot write to the output folder {layout.root} ({err.strerror}); "
                          "set RUNNER_OUTPUT_ROOT to a writable folder") from None
    with SweepLock(layout.lock):
        registry = RunRegistry(layout.registry)
        try:
            for position, spec in enumerate(experiment.runs):
                registry.add(spec.run_id, spec.display_name, spec.config, position)
            recover(registry, layout)
            yield layout, registry
        finally:
            write_outputs(layout, registry)
            registry.close()


def run_sweep(experiment: Experiment, jobs: int | None = None, retry_failed: bool = False, data_root=None,
              on_event: Event | None = None, devices: list[int] | None = None) -> list[dict]:
    """Run what the plan says, each run in a worker process; return the registry rows at the end."""
    on_event = on_event or (lambda kind, **details: None)
    with open_sweep(experiment) as (layout, registry):
        planned = plan_sweep(experiment, registry, retry_failed)
        on_event("plan", planned=planned)
        preflight_data([p.spec for p in planned if p.to_do], data_root)
        Scheduler(layout, registry, jobs or default_jobs(), data_root, on_event, devices).run(
            [p for p in planned if p.to_do])
        return registry.rows()


def train_one(experiment: Experiment, spec: RunSpec, data_root=None, report=None) -> dict:
    """`runner train`: one run in this process (or, with nproc > 1, in processes started by
    paddle.distributed.launch), recorded in the same registry as a sweep's."""
    from runner.train import train_run

    with open_sweep(experiment) as (layout, registry):
        preflight_data([spec], data_root)
        registry.mark_running(spec.run_id)
        try:
            if spec.config["nproc"] > 1:
                result = launch_and_wait(layout, spec, data_root, report)
            else:
                result = train_run(spec, layout.run(spec.run_id), data_root, layout.cache, report)
        except KeyboardInterrupt:
            registry.mark_interrupted(spec.run_id, "interrupted (Ctrl-C); run again to resume")
            raise
        except RunnerError as err:
            registry.mark_failed(spec.run_id, str(err))
            raise
        registry.mark_done(spec.run_id, result_metrics(result))
        return result


def write_job(layout: SweepLayout, spec: RunSpec, data_root, config: dict | None = None) -> Path:
    """runs/<id>/job.json: what a worker process needs to run `spec`."""
    run = layout.run(spec.run_id)
    run.folder.mkdir(parents=True, exist_ok=True)
    job = run.folder / "job.json"
    write_json_atomic(job, {"experiment": spec.experiment, "config": config or spec.config,
                            "sweep_root": str(layout.root), "cache_dir": str(layout.cache),
                            "data_root": str(data_root) if data_root else None})
    return job


def worker_command(layout: SweepLayout, spec: RunSpec, job: Path, device: str) -> list[str]:
    if spec.config["nproc"] > 1:
        return launch_command(job, spec.config["nproc"], layout.run(spec.run_id).folder / "launch", device)
    return [sys.executable, "-m", "runner.worker", str(job)]


def launch_and_wait(layout: SweepLayout, spec: RunSpec, data_root, report) -> dict:
    """Run `spec` on nproc processes through paddle.distributed.launch and return its result."""
    run = layout.run(spec.run_id)
    job = write_job(layout, spec, data_root)
    (run.folder / "error.txt").unlink(missing_ok=True)
    if report:
        report("note", message=f"launching {spec.config['nproc']} processes with paddle.distributed.launch; "
                               f"their logs are in {run.folder / 'launch'}")
    with open(run.log, "a") as log:
        code = subprocess.call(worker_command(layout, spec, job, spec.config["device"]), stdout=log,
                               stderr=subprocess.STDOUT, env={**os.environ, "RUNNER_WORKER": "1"})
    result = read_result(run)
    if code != 0 or not result:
        raise RunnerError(read_error(run, code))
    return result


def recover(registry: RunRegistry, layout: SweepLayout) -> None:
    """After a crash: a run whose worker finished is done; one left 'running' was interrupted."""
    for row in registry.rows():
        if row["status"] == "done":
            continue
        result = read_result(layout.run(row["id"]))
        if result:
            registry.mark_done(row["id"], result_metrics(result))
        elif row["status"] == "running":
            registry.mark_interrupted(row["id"], "the sweep stopped while this run was training")


def preflight_data(specs: list[RunSpec], data_root) -> None:
    """Refuse before anything trains if a dataset's files or labels are missing or inconsistent."""
    from runner.data import open_dataset
    from runner.data.source import DataSource

    for dataset in dict.fromkeys(s.config["dataset"] for s in specs):
        source = open_dataset(dataset, data_root)
        if type(source).files is DataSource.files:
            continue  # not a dataset of image files (Cifar10 reads one archive)
        problems = [p for split in source.split_names for p in source.files(split)[2]]
        source.refuse_if(problems)


def result_metrics(result: dict) -> dict:
    return {k: result.get(k) for k in RESULT_FIELDS}


class Scheduler:
    def __init__(self, layout: SweepLayout, registry: RunRegistry, jobs: int, data_root, on_event: Event,
                 devices: list[int] | None = None):
        self.layout, self.registry, self.data_root, self.on_event = layout, registry, data_root, on_event
        self.devices = devices or []
        # Slots: one per GPU with --devices; otherwise --jobs cores, each run taking threads x nproc
        # of them, so that wide runs never oversubscribe the CPU.
        self.slots = len(self.devices) if self.devices else max(1, jobs)
        self.running: dict[str, tuple[subprocess.Popen, PlannedRun, str]] = {}

    def free_slots(self) -> int:
        used = sum(slots_needed(planned.spec.config, bool(self.devices)) for _, planned, _ in self.running.values())
        return self.slots - used

    def run(self, todo: list[PlannedRun]) -> None:
        pending = list(todo)
        try:
            while pending or self.running:
                self.start_what_fits(pending)
                time.sleep(0.2)
                finished = False
                for run_id, (proc, planned, _) in list(self.running.items()):
                    code = proc.poll()
                    if code is None:
                        self.on_event("progress", run_id=run_id, progress=self.progress(run_id))
                    else:
                        del self.running[run_id]
                        finished = self.finish(planned, code) or finished
                if finished and (pending or self.running):
                    # the freed cores start the next runs first: the tables and report (1-2 s of
                    # matplotlib) are rewritten while those load. After the last run, open_sweep does it.
                    self.start_what_fits(pending)
                    write_outputs(self.layout, self.registry)
        except KeyboardInterrupt:
            self.stop_all()
            raise

    def start_what_fits(self, pending: list[PlannedRun]) -> None:
        while pending and (i := next_to_start(pending, self.free_slots(), not self.running,
                                              bool(self.devices))) is not None:
            self.start(pending.pop(i))

    def start(self, planned: PlannedRun) -> None:
        spec, run = planned.spec, self.layout.run(planned.spec.run_id)
        run.folder.mkdir(parents=True, exist_ok=True)
        run.progress.unlink(missing_ok=True)
        config, device = spec.config, spec.config["device"]
        if self.devices:  # --devices: this run gets a GPU no other running run has
            busy = {d for _, _, d in self.running.values()}
            device = next(f"gpu:{d}" for d in self.devices if f"gpu:{d}" not in busy)
            config = {**config, "device": device}
        job = write_job(self.layout, spec, self.data_root, config)
        self.registry.mark_running(spec.run_id)
        with open(run.log, "a") as log:
            proc = subprocess.Popen(worker_command(self.layout, spec, job, device), stdout=log,
                                    stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
                                    env={**os.environ, "RUNNER_WORKER": "1"})
        self.running[spec.run_id] = (proc, planned, device)
        self.on_event("started", planned=planned)

    def progress(self, run_id: str) -> dict:
        try:
            return json.loads(self.layout.run(run_id).progress.read_text())
        except (OSError, ValueError):
            return {}

    def finish(self, planned: PlannedRun, code: int) -> bool:
        """Record how a worker ended; True if its run is done."""
        run_id, run = planned.spec.run_id, self.layout.run(planned.spec.run_id)
        result = read_result(run) if code == 0 else None
        if result:
            fault_point("registry-update")
            self.registry.mark_done(run_id, result_metrics(result))
            self.on_event("finished", planned=planned, status="done", result=result)
            return True
        error = read_error(run, code)
        if code == EXIT_INTERRUPTED or code == -signal.SIGINT:
            self.registry.mark_interrupted(run_id, error)
            self.on_event("finished", planned=planned, status="interrupted", error=error)
        else:
            self.registry.mark_failed(run_id, error)
            self.on_event("finished", planned=planned, status="failed", error=error)
        return False

    def stop_all(self) -> None:
        """Ctrl-C: let every worker stop, then record them as interrupted. From a terminal the workers
        got the same SIGINT; a `kill -INT` of the sweep alone is passed on to them."""
        for proc, _, _ in self.running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for run_id, (proc, planned, _) in self.running.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.registry.mark_interrupted(run_id, "interrupted (Ctrl-C); run the sweep again to resume")
        self.running.clear()


def read_error(run, code: int) -> str:
    try:
        text = (run.folder / "error.txt").read_text().strip()
        if text:
            return text
    except OSError:
        pass
    if code < 0:
        return f"worker killed by signal {signal.Signals(-code).name} (out of memory?); see {run.log}"
    return f"worker exited with code {code} without a result; see {run.log}"


# ---- cost estimate for the plan ------------------------------------------------------------------

KNOWN_SIZES = {"ichallenge-pm": (400, 400), "cifar10": (50000, 10000)}
# Sustained throughput of one training process, in GFLOP/s (2 x multiply-accumulates): the median
# over 21 finished iChallenge-PM runs of experiments/all.toml (LeNet left out, whose runs are
# mostly start-up and data loading), two one-thread runs sharing a
# 2-core AMD EPYC (MKL_DEBUG_CPU_TYPE=5), training plus evaluation. It is 34-46 for AlexNet and
# the course ResNet-50, 60-72 for VGG-16: a rough guide, here and elsewhere.
GFLOPS_PER_PROCESS = 48.0
# What each further core of a run (threads or nproc) adds: 2 cores ran 1.5-1.8x one here.
EXTRA_CORE_GAIN = 0.6
# How much faster paddle's inference engine evaluates than the dynamic graph (bench/eval_engine.py:
# 1.6-2.2x on trained course networks).
INFERENCE_EVAL_GAIN = 1.8


@lru_cache(maxsize=None)
def forward_macs(model: str, image_size: int, model_args_json: str = "{}") -> int | None:
    """Multiply-accumulates of one forward pass, computed once per network and size for the plan."""
    from runner.models import build_network, count_flops

    try:
        return count_flops(build_network(model, 2, image_size, **json.loads(model_args_json)), image_size)
    except Exception:  # a model that cannot take this size: the run itself will say why
        return None


def estimate_minutes(config: dict, epochs_done: int = 0) -> float | None:
    """Rough wall minutes of one run: forward+backward (3 x forward) on the training images, one
    forward on the validation images, every epoch still to train."""
    macs = forward_macs(config["model"], config["image_size"], json.dumps(config["model_args"], sort_keys=True))
    if not macs:
        return None
    n_train, n_val = KNOWN_SIZES.get(config["dataset"], (1000, 200))
    n_train = min(n_train, config["train_limit"] or n_train)
    n_val = min(n_val, config["val_limit"] or n_val)
    if config["validation"].startswith("holdout:"):  # the held-out share of the training images
        held_out = round(n_train * float(config["validation"].split(":")[1]))
        n_train, n_val = n_train - held_out, held_out
    if evaluates_on_inference_engine(config):
        n_val /= INFERENCE_EVAL_GAIN
    flop = 2 * macs * (3 * n_train + n_val) * (config["epochs"] - epochs_done)
    cores = slots_needed(config, on_gpus=False)
    return flop / (GFLOPS_PER_PROCESS * 1e9 * (1 + EXTRA_CORE_GAIN * (cores - 1))) / 60
