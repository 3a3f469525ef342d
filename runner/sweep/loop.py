"""Sweeps: every run of an experiment file, each in a worker process, through an executor.

A sweep holds an exclusive lock on its output folder, so a second sweep there refuses instead of
writing the same runs twice. It skips runs that are done, resumes interrupted ones from their last
checkpoint, re-runs failed ones only when asked, and rewrites the comparison table after every
finished run. A run that fails never stops the others. Where the workers run is the executor's
business (runner/sweep/executors/); what to run is the plan's (runner/sweep/plan.py).
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Callable

from runner.config import Experiment, RunSpec
from runner.errors import RunnerError
from runner.sweep.executors import Ended, Executor, build_executor
from runner.faults import fault_point
from runner.store.layout import SweepLayout, data_folders
from runner.sweep.plan import (DataNow, PlannedRun, plan_run, plan_sweep, preflight_data, preflight_devices,
                               stale_refusal)
from runner.store.registry import RunRegistry
from runner.report.files import write_outputs
from runner.store.runfiles import read_error, read_progress, read_result
from runner.run.worker import EXIT_INTERRUPTED, command, write_job

Event = Callable[..., None]  # on_event(kind, **details)
RESULT_FIELDS = ("final", "best", "best_epoch", "epochs_run", "stopped_early", "train_seconds", "eval_seconds",
                 "images_per_second", "parameters", "flops", "train_images", "val_images", "peak_memory_mb",
                 "host", "node")
# A worker killed by a signal (the OOM killer, kill -9, a lost node) is resumed from its last
# checkpoint this many times within one sweep before its run is recorded failed.
SIGNAL_RESUMES = 2


class SweepLock:
    """An exclusive flock on outputs/<name>/.sweep.lock; the kernel drops it if the process dies."""

    def __init__(self, path):
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
            registry.set_current([spec.run_id for spec in experiment.runs], str(experiment.path))
            recover(registry, layout)
            yield layout, registry
        finally:
            write_outputs(layout, registry)
            registry.close()


def run_sweep(experiment: Experiment, jobs: int | None = None, retry_failed: bool = False, data_root=None,
              on_event: Event | None = None, devices: list[int] | None = None, cluster: str | None = None,
              retries: int | None = None, executor: Executor | None = None, retrain_stale: bool = False) -> list[dict]:
    """Run what the plan says, each run in a worker process (on this machine, or on the Ray cluster at
    `cluster`); return the registry rows of the file's runs. Runs recorded on other data than there is
    now are refused, or with `retrain_stale` set aside and trained afresh (runner/sweep/plan.py)."""
    on_event = on_event or (lambda kind, **details: None)
    with open_sweep(experiment) as (layout, registry):
        planned = plan_sweep(experiment, registry, retry_failed, data_root, retrain_stale)
        refuse_stale(planned, layout)
        on_event("plan", planned=planned)
        todo = [p for p in planned if p.to_do]
        preflight_data([p.spec for p in todo], data_root)
        preflight_devices([p.spec for p in todo])
        for p in todo:
            if p.action == "retrain":
                set_aside(layout, registry, p, on_event)
        if not todo:
            return [registry.get(spec.run_id) for spec in experiment.runs]
        executor = executor or build_executor(cluster, jobs, devices,
                                              **({"retries": retries} if retries is not None else {}))
        if hasattr(executor, "check_storage"):
            executor.check_storage(layout.root.resolve(),
                                   [str(f) for f in data_folders({p.spec.config["dataset"] for p in todo}, data_root)])
        try:
            SweepLoop(layout, registry, executor, data_root, on_event).run(todo)
        finally:
            executor.close()
        return [registry.get(spec.run_id) for spec in experiment.runs]


def train_one(experiment: Experiment, spec: RunSpec, data_root=None, report=None, retrain_stale: bool = False) -> dict:
    """`runner train`: one run in this process (or, with nproc > 1, in processes started by
    paddle.distributed.launch), recorded in the same registry as a sweep's."""
    from runner.run.train import train_run

    with open_sweep(experiment) as (layout, registry):
        planned = plan_run(spec, layout, registry, DataNow(data_root, layout.cache), True, retrain_stale)
        refuse_stale([planned], layout)
        preflight_data([spec], data_root)
        if planned.action == "retrain":
            set_aside(layout, registry, planned, report or (lambda kind, **details: None))
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


def refuse_stale(planned: list[PlannedRun], layout: SweepLayout) -> None:
    refusal = stale_refusal(planned, layout)
    if refusal:
        raise RunnerError(refusal)


def set_aside(layout: SweepLayout, registry: RunRegistry, planned: PlannedRun, on_event: Event) -> Path:
    """Move a stale run's files (its result, checkpoints and VisualDL log) to stale/<run-id>-<n>/ and
    queue it: it trains afresh on the data now, and what it computed on the old data is kept."""
    run_id = planned.spec.run_id
    run = layout.run(run_id)
    number = 1
    while (layout.stale / f"{run_id}-{number}").exists():
        number += 1
    target = layout.stale / f"{run_id}-{number}"
    target.mkdir(parents=True)
    for name, folder in (("run", run.folder), ("checkpoints", run.checkpoints), ("vdl", run.vdl)):
        if folder.exists():
            os.replace(folder, target / name)
    what, change = planned.stale
    registry.mark_queued(run_id, f"{what} on other data ({change}); trained afresh, the old files are in {target}")
    on_event("note", message=f"{run_id} {what} on other data than there is now ({change}): training it afresh; "
                             f"its old files are in {target}")
    return target


def launch_and_wait(layout: SweepLayout, spec: RunSpec, data_root, report) -> dict:
    """Run `spec` on nproc processes through paddle.distributed.launch and return its result."""
    run = layout.run(spec.run_id)
    job = write_job(layout, spec, data_root)
    (run.folder / "error.txt").unlink(missing_ok=True)
    if report:
        report("note", message=f"launching {spec.config['nproc']} processes with paddle.distributed.launch; "
                               f"their logs are in {run.folder / 'launch'}")
    with open(run.log, "a") as log:
        code = subprocess.call(command(job, spec.config), stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "RUNNER_WORKER": "1"})
    result = read_result(run)
    if code != 0 or not result:
        raise RunnerError(why_it_ended(run, code))
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


def result_metrics(result: dict) -> dict:
    return {k: result.get(k) for k in RESULT_FIELDS}


def why_it_ended(run, code: int) -> str:
    text = read_error(run)
    if text:
        return text
    if code < 0:
        return f"worker killed by signal {signal.Signals(-code).name} (out of memory?); see {run.log}"
    return f"worker exited with code {code} without a result; see {run.log}"


class SweepLoop:
    """Start what fits, record what ended, resume what a signal killed, and tell `on_event` as it goes."""

    def __init__(self, layout: SweepLayout, registry: RunRegistry, executor: Executor, data_root, on_event: Event):
        self.layout, self.registry, self.executor = layout, registry, executor
        self.data_root, self.on_event = data_root, on_event
        self.resumes: dict[str, int] = {}
        self.seen_epoch: dict[str, int] = {}

    def run(self, todo: list[PlannedRun]) -> None:
        pending = list(todo)
        try:
            while self.top_up(pending) or pending or self.executor.running():
                self.start_what_fits(pending)
                time.sleep(0.2)
                self.report_progress()
                finished = False
                for ended in self.executor.ended():
                    finished = self.finish(ended, pending) or finished
                if finished and (pending or self.executor.running()):
                    # the freed cores start the next runs first: the tables and report are
                    # rewritten while those load. After the last run, open_sweep does it.
                    self.start_what_fits(pending)
                    write_outputs(self.layout, self.registry)
        except KeyboardInterrupt:
            for planned in self.executor.stop_all():
                self.registry.mark_interrupted(planned.spec.run_id,
                                               "interrupted (Ctrl-C); run the sweep again to resume")
                self.on_event("finished", planned=planned, status="interrupted", error="interrupted")
            raise

    def start_what_fits(self, pending: list[PlannedRun]) -> None:
        while pending:
            idle = not self.executor.running()
            index = next((i for i, p in enumerate(pending) if self.executor.fits(p, idle)), None)
            if index is None:
                return
            self.start(pending.pop(index))

    def start(self, planned: PlannedRun) -> None:
        spec, run = planned.spec, self.layout.run(planned.spec.run_id)
        run.folder.mkdir(parents=True, exist_ok=True)
        run.progress.unlink(missing_ok=True)
        config = self.executor.place(planned)
        job = write_job(self.layout, spec, self.data_root, config)
        self.registry.mark_running(spec.run_id)
        self.executor.start(planned, job, config)
        self.on_event("started", planned=planned)

    def report_progress(self) -> None:
        """A "progress" event per running run; an "epoch" event once per epoch a worker finishes."""
        for planned in self.executor.running():
            run_id = planned.spec.run_id
            progress = read_progress(self.layout.run(run_id))
            self.on_event("progress", run_id=run_id, progress=progress)
            for record in progress.get("epochs_done", []):
                if record["epoch"] > self.seen_epoch.get(run_id, 0):
                    self.seen_epoch[run_id] = record["epoch"]
                    self.on_event("epoch", planned=planned, record=record)
                    self.epoch_done(planned, record)

    # ---- hooks for a loop that makes its own work (runner/sweep/search.py) ------------------------------

    def top_up(self, pending: list[PlannedRun]) -> bool:
        """Add runs to `pending` as room frees up; True while more may come."""
        return False

    def epoch_done(self, planned: PlannedRun, record: dict) -> None:
        pass

    def run_ended(self, planned: PlannedRun, status: str) -> None:
        pass

    def stopping(self, run_id: str) -> str | None:
        """Why the loop itself stopped this run (a pruner), if it did."""
        return None

    def finish(self, ended: Ended, pending: list[PlannedRun]) -> bool:
        """Record how a worker ended; True if its run is done."""
        status = self.record_end(ended, pending)
        self.run_ended(ended.planned, status)
        return status == "done"

    def record_end(self, ended: Ended, pending: list[PlannedRun]) -> str:
        planned, code = ended.planned, ended.code
        run_id, run = planned.spec.run_id, self.layout.run(planned.spec.run_id)
        result = read_result(run) if code == 0 else None
        if result:
            fault_point("registry-update")
            self.registry.mark_done(run_id, result_metrics(result))
            self.on_event("finished", planned=planned, status="done", result=result)
            return "done"
        error = ended.lost or why_it_ended(run, code)
        why = self.stopping(run_id)
        if why:
            self.registry.mark_pruned(run_id, why)
            self.on_event("finished", planned=planned, status="pruned", error=why)
            return "pruned"
        if code == EXIT_INTERRUPTED or code == -signal.SIGINT:
            self.registry.mark_interrupted(run_id, error)
            self.on_event("finished", planned=planned, status="interrupted", error=error)
            return "interrupted"
        if (code < 0 or ended.lost) and self.resumes.get(run_id, 0) < SIGNAL_RESUMES:
            # killed from outside, not failed on its own: resume it from its last checkpoint
            self.resumes[run_id] = self.resumes.get(run_id, 0) + 1
            error = f"{error}; resuming from its last checkpoint ({self.resumes[run_id]} of {SIGNAL_RESUMES})"
            self.registry.mark_interrupted(run_id, error)
            self.on_event("finished", planned=planned, status="interrupted", error=error)
            pending.insert(0, planned)
            return "resuming"
        if code < 0 or ended.lost:
            error = f"{error}; it was resumed {SIGNAL_RESUMES} times in this sweep and killed again"
        self.registry.mark_failed(run_id, error)
        self.on_event("finished", planned=planned, status="failed", error=error)
        return "failed"
