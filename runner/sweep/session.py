"""A sweep's hold on its output folder: an exclusive lock, so a second sweep there refuses instead
of writing the same runs twice; the registry with every run of the file in it; recovery from a
crash; and the report rewritten on the way out, whatever happened.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager

from runner.config import Experiment
from runner.errors import RunnerError
from runner.processes import process_age
from runner.report.files import write_outputs
from runner.store.layout import SweepPaths, folder_problem
from runner.store.registry import RunRegistry
from runner.store.runfiles import read_result


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
def open_sweep(experiment: Experiment, timed: bool = True):
    """Lock the sweep's folder, open its registry with every run of the file in it, recover from
    any crash; on the way out, rewrite the tables and (if `timed`: a sweep's, not `runner train`'s)
    record what the sweep spent outside its runs."""
    paths = SweepPaths.for_experiment(experiment.name)
    problem = folder_problem(paths.root)
    if problem:
        raise RunnerError(problem)
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.write_probe.write_text("")
        paths.write_probe.unlink()
    except OSError as err:
        raise RunnerError(f"cannot write to the output folder {paths.root} ({err.strerror}); "
                          "set RUNNER_OUTPUT_ROOT to a writable folder") from None
    with held(paths, timed=timed) as registry:
        for position, spec in enumerate(experiment.runs):
            registry.add(spec.run_id, spec.display_name, spec.config, position)
        record_the_files_runs(registry, experiment)
        recover(registry, paths)
        yield paths, registry


@contextmanager
def held(paths: SweepPaths, create: bool = True, timed: bool = False):
    """Lock a sweep's folder and open its registry (`create`: a new one if there is none); on the
    way out, rewrite the tables, record (if `timed`) what the sweep spent outside its runs, and close
    it. open_sweep, and `runner robustness` on a folder."""
    opened = time.time()
    with SweepLock(paths.lock):
        registry = RunRegistry(paths.registry, create=create)
        try:
            yield registry
        finally:
            report_started = time.monotonic()
            write_outputs(paths, registry)
            if timed:
                record_timing(registry, opened, time.monotonic() - report_started)
            registry.close()


def record_timing(registry: RunRegistry, opened: float, report_seconds: float) -> None:
    """What this sweep spent outside its runs, for the next estimate (runner/sweep/estimate.py): from
    the process's start to its first run, and its closing report. Nothing if no run started."""
    started = [row["started_at"] for row in registry.rows() if (row["started_at"] or 0) >= opened]
    if started:
        process_started = time.time() - (process_age() or time.time() - opened)
        registry.record_sweep_timing(min(started) - process_started, report_seconds, len(registry.rows()))


def record_the_files_runs(registry: RunRegistry, experiment: Experiment) -> None:
    """Which runs the file holds on its own, for the table to tell them from runs gone from the file;
    runs a --set made from them are recorded with that --set instead, never as the file's."""
    ids = experiment.file_run_ids
    if ids is not None:
        registry.set_current(ids, str(experiment.path))
    made = [spec.run_id for spec in experiment.runs if spec.run_id not in (ids or ())]
    if experiment.overrides and made:
        registry.record_overrides(made, list(experiment.overrides))


def recover(registry: RunRegistry, paths: SweepPaths) -> None:
    """After a crash: a run whose worker finished is done; one left 'running' was interrupted."""
    for row in registry.rows():
        if row["status"] == "done":
            continue
        result = read_result(paths.run_paths(row["id"]))
        if result:
            registry.mark_done(row["id"], result)
        elif row["status"] == "running":
            registry.mark_interrupted(row["id"], "the sweep stopped while this run was training")
