"""Robustness of finished runs, scored by workers the way a sweep trains its runs: which runs lack
which (corruption, severity) sets, and the sweep's loop (runner/sweep/loop.py) scoring them on the
sweep's executors, each run in a worker of its own (runner/run/worker.py -> runner/run/robustness.py).

`runner sweep` scores the runs whose `robustness` asks for it once the file's runs have trained
(runner/sweep/driver.py); `runner robustness OUTPUT_DIR` scores every finished run of a folder. Both
skip the sets a run's robustness.json already holds, so a stopped evaluation resumes where it was.
Imports no paddle.
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Callable

from runner.config import Experiment, RunSpec, unknown_corruption, with_defaults
from runner.errors import RunnerError, UsageError
from runner.options import CORRUPTIONS
from runner.store.jobs import EXIT_INTERRUPTED, why_it_ended, write_job
from runner.store.layout import RobustnessPaths, SweepPaths, data_folders
from runner.store.registry import RunRegistry
from runner.store.runfiles import read_result
from runner.sweep.corrupted_sets import missing_sets, protocol_of, protocol_sets, scored_sets, too_small
from runner.sweep.executors import Ended, Executor, build_executor
from runner.sweep.loop import SIGNAL_RESUMES, OnEvent, SweepLoop
from runner.sweep.plan import PlannedRun
from runner.sweep.session import held

Wanted = list[tuple[RunSpec, dict]]  # (run, the protocol it is to be scored under)


def asked_for(experiment: Experiment) -> Wanted:
    """The file's runs whose `robustness` asks for it, each under its own protocol."""
    return [(spec, protocol_of(spec.config)) for spec in experiment.runs if spec.config.get("robustness")]


def plan_robustness(sweep: SweepPaths, wanted: Wanted) -> tuple[list[PlannedRun], list[str]]:
    """The finished runs of `wanted` that lack a set, and a note per run that cannot be scored."""
    planned, notes = [], []
    for spec, protocol in wanted:
        paths = sweep.run_paths(spec.run_id)
        if read_result(paths) is None:
            continue  # not finished: a sweep scores it once it has trained
        if why := too_small(spec.config):
            notes.append(f"{spec.run_id}: not scored, {why}")
            continue
        if missing_sets(paths, protocol):
            planned.append(PlannedRun(spec, "done", "robustness"))
    return planned, notes


class RobustnessLoop(SweepLoop):
    """The sweep's loop, starting robustness workers for finished runs: the registry, where those runs
    stay done, is not touched; robustness.json says what is scored."""

    def __init__(self, paths: SweepPaths, registry: RunRegistry, executor: Executor, data_root, on_event: OnEvent,
                 protocols: dict[str, dict]):
        super().__init__(paths, registry, executor, data_root, on_event)
        self.protocols = protocols
        self.scored: dict[str, int] = {}
        self.failures: list[tuple[str, str]] = []

    def say(self, planned: PlannedRun, message: str, phase: str = "progress") -> None:
        """`phase`: started, progress, requeued or ended (done, failed or interrupted), for the estimate."""
        self.on_event("robustness", run_id=planned.spec.run_id, message=message, phase=phase)

    def total(self, run_id: str) -> int:
        return protocol_sets(self.protocols[run_id])

    def start(self, planned: PlannedRun) -> None:
        spec, protocol = planned.spec, self.protocols[planned.spec.run_id]
        config = self.executor.place(planned)
        write_job(self.paths, spec, self.data_root, config, robustness=protocol)
        # one process scores a run, whatever nproc it trained with (the job keeps its config, and so its id)
        self.executor.start(planned, RobustnessPaths(self.paths, spec.run_id), {**config, "nproc": 1})
        missing = len(missing_sets(self.paths.run_paths(spec.run_id), protocol))
        self.say(planned, f"scoring {missing} of {self.total(spec.run_id)} corrupted sets", "started")

    def poll_progress(self) -> None:
        for planned in self.executor.running():
            run_id = planned.spec.run_id
            protocol = self.protocols[run_id]
            sets = scored_sets(self.paths.run_paths(run_id), protocol["seed"])
            done = sum(str(s) in sets.get(c, {}) for c in protocol["corruptions"] for s in protocol["severities"])
            if done > self.scored.get(run_id, done):
                self.say(planned, f"{done} of {self.total(run_id)} sets scored")
            self.scored[run_id] = done

    def interrupted(self, planned: PlannedRun) -> None:
        self.say(planned, "interrupted; run the same command again to score the sets it lacks", "ended")

    def finish(self, ended: Ended, pending: list[PlannedRun]) -> bool:
        planned, code, run_id = ended.planned, ended.code, ended.planned.spec.run_id
        paths = self.paths.run_paths(run_id)
        if code == 0 and not missing_sets(paths, self.protocols[run_id]):
            self.say(planned, f"done: {paths.robustness}", "ended")
            return True
        error = ended.lost or why_it_ended(paths, code)
        if code not in (EXIT_INTERRUPTED, -signal.SIGINT) and (code < 0 or ended.lost) \
                and self.resumes.get(run_id, 0) < SIGNAL_RESUMES:
            self.resumes[run_id] = self.resumes.get(run_id, 0) + 1
            pending.insert(0, planned)
            self.say(planned, f"{error}; resuming with the sets it lacks", "requeued")
            return False
        self.failures.append((run_id, error))
        self.say(planned, f"failed: {error}", "ended")
        return False


def require_package() -> None:
    """Without imagecorruptions: one line naming the extra, before any run trains or worker starts."""
    from runner.data.corruptions import import_corruptions

    import_corruptions()


def score_runs(sweep: SweepPaths, registry: RunRegistry, wanted: Wanted, make_executor: Callable[[], Executor],
               data_root=None, on_event: OnEvent | None = None) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """In a folder the caller holds (runner/sweep/session.py), score what the finished runs of
    `wanted` lack, on the executor `make_executor()` builds if there is anything to score: (the runs
    scored, the runs that failed with why, notes on runs that cannot be scored)."""
    planned, notes = plan_robustness(sweep, wanted)
    if not planned:
        return [], [], notes
    require_package()
    loop = RobustnessLoop(sweep, registry, make_executor(), data_root, on_event or (lambda kind, **details: None),
                          {spec.run_id: protocol for spec, protocol in wanted})
    try:
        loop.executor.check_storage(sweep.root.resolve(), [str(f) for f in data_folders(
            {p.spec.config["dataset"] for p in planned}, data_root)])
        loop.run(planned)
    finally:
        loop.executor.close()
    return [p.spec.run_id for p in planned], loop.failures, notes


def finished_specs(sweep: SweepPaths, registry: RunRegistry, corruptions=(), severities=()) -> tuple[Wanted, list[str]]:
    """Every finished run of a folder with its protocol (see protocol_of), and notes on those left out."""
    wanted, notes = [], []
    for row in registry.rows("done"):
        result = read_result(sweep.run_paths(row["id"]))
        if not result:
            continue  # the report names it
        spec = RunSpec(result["experiment"], with_defaults(result["config"]))
        if spec.run_id != row["id"]:
            notes.append(f"{row['id']}: not scored, this runner computes id {spec.run_id} for its settings "
                         "(it was trained by another version of runner)")
            continue
        wanted.append((spec, protocol_of(spec.config, corruptions, severities)))
    return wanted, notes


def run_robustness(output_dir: Path, jobs: int | None = None, data_root=None, on_event: OnEvent | None = None,
                   corruptions=(), severities=()):
    """`runner robustness`: score every finished run of a sweep's folder under `corruptions` x
    `severities` (default: each run's own robustness table, else all 15 x 5), `jobs` at a time."""
    for name in corruptions:
        if name not in CORRUPTIONS:
            raise UsageError(f"--corruption {name}: {unknown_corruption(name)}")
    sweep = SweepPaths(Path(output_dir))
    if not sweep.registry.exists():
        raise RunnerError(f"no run registry at {sweep.registry}: give the folder a sweep wrote, e.g. outputs/zoo_pm")
    with held(sweep, create=False) as registry:
        wanted, notes = finished_specs(sweep, registry, corruptions, severities)
        scored, failures, more = score_runs(sweep, registry, wanted, lambda: build_executor(None, jobs), data_root,
                                            on_event)
    return scored, failures, notes + more
