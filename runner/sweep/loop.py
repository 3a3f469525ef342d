"""The loop of a sweep: start what fits, record what ended, resume what a signal killed, and tell
`on_event` as it goes. A run that fails never stops the others, and the report is rewritten after
every finished run. Where the workers run is the executor's business (runner/sweep/executors/); what
to run is the plan's (runner/sweep/plan.py); a search is this loop making its own work
(runner/sweep/search.py).
"""
from __future__ import annotations

import signal
import time
from typing import Callable

from runner.faults import fault_point
from runner.report.files import write_outputs
from runner.store.jobs import EXIT_INTERRUPTED, why_it_ended, write_job
from runner.store.layout import SweepPaths
from runner.store.registry import RunRegistry
from runner.store.runfiles import read_progress, read_result, write_json_atomic
from runner.sweep.executors import Ended, Executor
from runner.sweep.plan import PlannedRun

OnEvent = Callable[..., None]  # on_event(kind, **details); the kinds are SweepProgress's on_<kind> methods
# A worker killed by a signal (the OOM killer, kill -9, a lost node) is resumed from its last
# checkpoint this many times within one sweep before its run is recorded failed.
SIGNAL_RESUMES = 2


class SweepLoop:
    def __init__(self, paths: SweepPaths, registry: RunRegistry, executor: Executor, data_root, on_event: OnEvent):
        self.paths, self.registry, self.executor = paths, registry, executor
        self.data_root, self.on_event = data_root, on_event
        self.resumes: dict[str, int] = {}
        self.seen_epoch: dict[str, int] = {}

    def run(self, todo: list[PlannedRun]) -> None:
        pending = list(todo)
        try:
            while self.top_up(pending) or pending or self.executor.running():
                self.start_what_fits(pending)
                time.sleep(0.2)
                self.poll_progress()
                finished = False
                for ended in self.executor.ended():
                    finished = self.finish(ended, pending) or finished
                if finished and (pending or self.executor.running()):
                    # the freed cores start the next runs first: the tables and report are
                    # rewritten while those load. After the last run, open_sweep does it.
                    self.start_what_fits(pending)
                    write_outputs(self.paths, self.registry)
        except KeyboardInterrupt:
            for planned in self.executor.stop_all():
                self.interrupted(planned)
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
        spec, paths = planned.spec, self.paths.run_paths(planned.spec.run_id)
        paths.folder.mkdir(parents=True, exist_ok=True)
        paths.progress.unlink(missing_ok=True)
        paths.verdict.unlink(missing_ok=True)
        config = self.executor.place(planned)
        write_job(self.paths, spec, self.data_root, config, awaits_verdicts=self.judges_epochs(planned))
        self.registry.mark_running(spec.run_id)
        self.executor.start(planned, paths, config)
        self.on_event("started", planned=planned)

    def poll_progress(self) -> None:
        """A "progress" event per running run; an "epoch" event once per epoch a worker finishes."""
        for planned in self.executor.running():
            run_id = planned.spec.run_id
            progress = read_progress(self.paths.run_paths(run_id))
            self.on_event("progress", run_id=run_id, progress=progress)
            for record in progress.get("epochs_done", []):
                if record["epoch"] > self.seen_epoch.get(run_id, 0):
                    self.seen_epoch[run_id] = record["epoch"]
                    self.on_event("epoch", planned=planned, record=record)
                    self.epoch_done(planned, record)
                    if self.judges_epochs(planned) and not self.stopping(run_id):
                        write_json_atomic(self.paths.run_paths(run_id).verdict, {"epoch": record["epoch"]})

    def interrupted(self, planned: PlannedRun) -> None:
        self.registry.mark_interrupted(planned.spec.run_id, "interrupted (Ctrl-C); run the sweep again to resume")

    # ---- hooks for a loop that makes its own work (runner/sweep/search.py) --------------------------

    def top_up(self, pending: list[PlannedRun]) -> bool:
        """Add runs to `pending` as room frees up; True while more may come."""
        return False

    def epoch_done(self, planned: PlannedRun, record: dict) -> None:
        pass

    def judges_epochs(self, planned: PlannedRun) -> bool:
        """True if epoch_done may stop this run: its worker then waits for each epoch's verdict."""
        return False

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
        run_id, paths = planned.spec.run_id, self.paths.run_paths(planned.spec.run_id)
        result = read_result(paths) if code == 0 else None
        if result:
            fault_point("registry-update")
            self.registry.mark_done(run_id, result)
            self.on_event("finished", planned=planned, status="done", result=result)
            return "done"
        error = ended.lost or why_it_ended(paths, code)
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
