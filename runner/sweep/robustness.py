"""Robustness of finished runs, scored by workers the way a sweep trains its runs: which runs lack
which (corruption, severity) sets, and a sweep loop (runner/sweep/loop.py) that scores them on the
sweep's executors, each run in a worker of its own (runner/run/worker.py -> runner/run/robustness.py).

`runner sweep` scores the runs whose `robustness` asks for it once the file's runs have trained;
`runner robustness OUTPUT_DIR` scores every finished run of a folder. Both skip the sets a run's
robustness.json already holds, so a stopped evaluation resumes where it was. Imports no paddle.
"""
from __future__ import annotations

import signal
from pathlib import Path

from runner.config import Experiment, RunSpec, unknown_corruption, with_defaults
from runner.errors import ConfigError, RunnerError
from runner.sweep.executors import Ended, build_executor
from runner.store.layout import SweepLayout, data_folders
from runner.options import CORRUPTION_MIN_SIZE as MIN_SIZE
from runner.options import CORRUPTIONS, SEVERITIES
from runner.sweep.plan import PlannedRun
from runner.store.registry import RunRegistry
from runner.store.runfiles import read_json, read_result
from runner.sweep.loop import SIGNAL_RESUMES, Event, SweepLock, SweepLoop, run_sweep, why_it_ended
from runner.run.worker import EXIT_INTERRUPTED, write_job

def protocol_of(config: dict, corruptions=(), severities=()) -> dict:
    """The sets a run is scored on: those given, else its own `robustness` table's, else all 15 x 5."""
    table = config.get("robustness") or {}
    return {"corruptions": list(corruptions or table.get("corruptions") or CORRUPTIONS),
            "severities": list(severities or table.get("severities") or SEVERITIES), "seed": table.get("seed", 0)}


def scored_sets(run, seed: int) -> dict:
    """{corruption: {severity (str): scores}} of a run's robustness.json, if scored with `seed`."""
    stored = read_json(run.robustness) or {}
    return stored.get("sets", {}) if stored.get("seed") == seed else {}


def missing_sets(run, protocol: dict) -> list[tuple[str, int]]:
    sets = scored_sets(run, protocol["seed"])
    return [(name, severity) for name in protocol["corruptions"] for severity in protocol["severities"]
            if str(severity) not in sets.get(name, {})]


def plan_robustness(layout: SweepLayout, wanted: list[tuple[RunSpec, dict]]) -> tuple[list[PlannedRun], list[str]]:
    """The finished runs of `wanted` (spec, protocol) that lack a set, and a note per run that cannot be scored."""
    planned, notes = [], []
    for spec, protocol in wanted:
        run = layout.run(spec.run_id)
        if read_result(run) is None:
            continue  # not finished: a sweep scores it once it has trained
        if spec.config["image_size"] < MIN_SIZE:
            notes.append(f"{spec.run_id}: not scored, its images are {spec.config['image_size']} px and "
                         f"imagecorruptions takes {MIN_SIZE} px or more")
            continue
        if missing_sets(run, protocol):
            planned.append(PlannedRun(spec, "done", "robustness"))
    return planned, notes


class RobustnessLoop(SweepLoop):
    """The sweep's loop, starting robustness workers for finished runs: the registry, where those runs
    stay done, is not touched; robustness.json says what is scored."""

    def __init__(self, layout: SweepLayout, registry: RunRegistry, executor, data_root, on_event: Event,
                 protocols: dict[str, dict]):
        super().__init__(layout, registry, executor, data_root, on_event)
        self.protocols = protocols
        self.scored: dict[str, int] = {}
        self.failures: list[tuple[str, str]] = []

    def say(self, planned: PlannedRun, message: str) -> None:
        self.on_event("robustness", run_id=planned.spec.run_id, message=message)

    def start(self, planned: PlannedRun) -> None:
        spec, protocol = planned.spec, self.protocols[planned.spec.run_id]
        config = self.executor.place(planned)
        job = write_job(self.layout, spec, self.data_root, config, robustness=protocol)
        # one process scores a run, whatever nproc it trained with (the job keeps its config, and so its id)
        self.executor.start(planned, job, {**config, "nproc": 1})
        total = len(protocol["corruptions"]) * len(protocol["severities"])
        self.say(planned, f"scoring {len(missing_sets(self.layout.run(spec.run_id), protocol))} of {total} "
                          "corrupted sets")

    def report_progress(self) -> None:
        for planned in self.executor.running():
            run_id = planned.spec.run_id
            protocol = self.protocols[run_id]
            sets = scored_sets(self.layout.run(run_id), protocol["seed"])
            done = sum(str(s) in sets.get(c, {}) for c in protocol["corruptions"] for s in protocol["severities"])
            if done > self.scored.get(run_id, done):
                self.say(planned, f"{done} of {len(protocol['corruptions']) * len(protocol['severities'])} sets scored")
            self.scored[run_id] = done

    def interrupted(self, planned: PlannedRun) -> None:
        self.say(planned, "interrupted; run the same command again to score the sets it lacks")

    def finish(self, ended: Ended, pending: list[PlannedRun]) -> bool:
        planned, code = ended.planned, ended.code
        run = self.layout.run(planned.spec.run_id)
        if code == 0 and not missing_sets(run, self.protocols[planned.spec.run_id]):
            self.say(planned, f"done: {run.robustness}")
            return True
        error = ended.lost or why_it_ended(run, code)
        if code not in (EXIT_INTERRUPTED, -signal.SIGINT) and (code < 0 or ended.lost) \
                and self.resumes.get(planned.spec.run_id, 0) < SIGNAL_RESUMES:
            self.resumes[planned.spec.run_id] = self.resumes.get(planned.spec.run_id, 0) + 1
            pending.insert(0, planned)
            self.say(planned, f"{error}; resuming with the sets it lacks")
            return False
        self.failures.append((planned.spec.run_id, error))
        self.say(planned, f"failed: {error}")
        return False


def require_package() -> None:
    """Without imagecorruptions: one line naming the extra, before any run trains or worker starts."""
    from runner.data.corruptions import import_corruptions

    import_corruptions()


def score_folder(layout: SweepLayout, select, make_executor, data_root=None,
                 on_event: Event | None = None) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Lock a sweep's folder as a sweep does, score what the runs `select(registry)` gives as (spec,
    protocol) pairs (with notes) lack, on the executor `make_executor()` builds, and rewrite the
    report; (the runs scored, the runs that failed with why, notes on runs that cannot be scored)."""
    from runner.report.files import write_outputs

    if not layout.registry.exists():
        raise RunnerError(f"no run registry at {layout.registry}: give the folder a sweep wrote, e.g. outputs/zoo_pm")
    with SweepLock(layout.lock):
        registry = RunRegistry(layout.registry, create=False)
        try:
            wanted, notes = select(registry)
            planned, more = plan_robustness(layout, wanted)
            loop = None
            if planned:
                require_package()
                loop = RobustnessLoop(layout, registry, make_executor(), data_root,
                                      on_event or (lambda kind, **details: None),
                                      {spec.run_id: protocol for spec, protocol in wanted})
                try:
                    if hasattr(loop.executor, "check_storage"):  # a Ray cluster's nodes see the files
                        loop.executor.check_storage(layout.root.resolve(), [str(f) for f in data_folders(
                            {p.spec.config["dataset"] for p in planned}, data_root)])
                    loop.run(planned)
                finally:
                    loop.executor.close()
        finally:
            write_outputs(layout, registry)
            registry.close()
    return [p.spec.run_id for p in planned], loop.failures if loop else [], notes + more


def finished_runs(layout: SweepLayout, registry: RunRegistry, corruptions=(), severities=()):
    """Every finished run of a folder with its protocol (see protocol_of), and notes on those left out."""
    wanted, notes = [], []
    for row in registry.rows("done"):
        result = read_result(layout.run(row["id"]))
        if not result:
            continue  # the report names it
        spec = RunSpec(result["experiment"], with_defaults(result["config"]))
        if spec.run_id != row["id"]:
            notes.append(f"{row['id']}: not scored, this runner computes id {spec.run_id} for its settings "
                         "(it was trained by another version of runner)")
            continue
        wanted.append((spec, protocol_of(spec.config, corruptions, severities)))
    return wanted, notes


def run_robustness(output_dir: Path, jobs: int | None = None, data_root=None, on_event: Event | None = None,
                   corruptions=(), severities=()):
    """`runner robustness`: score every finished run of a sweep's folder under `corruptions` x
    `severities` (default: each run's own robustness table, else all 15 x 5), `jobs` at a time."""
    for name in corruptions:
        if name not in CORRUPTIONS:
            raise ConfigError(f"--corruption {name}: {unknown_corruption(name)}")
    layout = SweepLayout(Path(output_dir))
    return score_folder(layout, lambda registry: finished_runs(layout, registry, corruptions, severities),
                        lambda: build_executor(None, jobs), data_root, on_event)


def sweep_and_score(experiment: Experiment, jobs: int | None = None, retry_failed: bool = False, data_root=None,
                    on_event: Event | None = None, devices: list[int] | None = None, cluster: str | None = None,
                    retries: int | None = None) -> list[dict]:
    """`runner sweep`: the file's runs trained as runner.sweep.run_sweep trains them, then the
    robustness of those whose `robustness` asks for it; the registry rows, and a failed row per run
    whose robustness could not be scored."""
    wanted = [(spec, protocol_of(spec.config)) for spec in experiment.runs if spec.config.get("robustness")]
    if wanted:
        require_package()
    rows = run_sweep(experiment, jobs, retry_failed=retry_failed, data_root=data_root, on_event=on_event,
                     devices=devices, cluster=cluster, retries=retries)
    if not wanted:
        return rows
    ray_options = {"retries": retries} if retries is not None else {}
    _, failures, _ = score_folder(SweepLayout.for_experiment(experiment.name), lambda registry: (wanted, []),
                                  lambda: build_executor(cluster, jobs, devices, **ray_options), data_root, on_event)
    return rows + [{"id": f"{run_id} (robustness)", "status": "failed", "error": error} for run_id, error in failures]
