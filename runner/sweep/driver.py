"""`runner sweep`: every run of an experiment file, or the trials of its [search], each in a worker
process started by an executor, from one entry. Both lock the folder, check the data, the devices
and (on a cluster) that every node sees the files, then run the loop; a sweep's loop runs the plan,
a search's asks Optuna for its trials as it goes.
"""
from __future__ import annotations

from runner.config import Experiment, RunSpec
from runner.store.layout import SweepPaths, data_folders
from runner.store.registry import RunRegistry
from runner.sweep.executors import build_executor
from runner.sweep.loop import OnEvent, SweepLoop
from runner.sweep.plan import DataNow, PlannedRun, data_change, plan_sweep, preflight_data, preflight_devices
from runner.sweep.search import SearchLoop, make_study, trial_specs
from runner.sweep.session import open_sweep
from runner.sweep.stale import refuse_stale, set_aside


def run_sweep(experiment: Experiment, jobs: int | None = None, retry_failed: bool = False, data_root=None,
              on_event: OnEvent | None = None, devices: list[int] | None = None, cluster: str | None = None,
              retries: int | None = None, retrain_stale: bool = False) -> list[dict]:
    """Run what the plan says, or the search's trials and then its final seeds, on this machine or
    on the Ray cluster at `cluster`; return the registry rows of the file's runs. `retry_failed` is
    a sweep's: a search's failed trials are Optuna's to replace. Runs recorded on other data than
    there is now are refused (runner/sweep/stale.py), or with `retrain_stale` a sweep's are set aside
    and trained afresh."""
    on_event = on_event or (lambda kind, **details: None)
    with open_sweep(experiment) as (paths, registry):
        if experiment.search:
            refuse_stale(stale_records(experiment, paths, registry, DataNow(data_root, paths.cache)), paths, search=True)
            todo, specs = None, trial_specs(experiment, {})  # the base run stands in for the trials
            on_event("plan", planned=[])
        else:
            planned = plan_sweep(experiment, registry, retry_failed, data_root, retrain_stale)
            refuse_stale(planned, paths)
            on_event("plan", planned=planned)
            todo = [p for p in planned if p.to_do]
            specs = [p.spec for p in todo]
        preflight_data(specs, data_root)
        preflight_devices(specs)
        for p in todo or []:
            if p.action == "retrain":
                set_aside(paths, registry, p, on_event)
        if not specs:
            return [registry.get(spec.run_id) for spec in experiment.runs]
        study = make_study(experiment, paths.study, specs[0].config["epochs"]) if experiment.search else None
        executor = build_executor(cluster, jobs, devices, **({"retries": retries} if retries is not None else {}))
        try:
            executor.check_storage(paths.root.resolve(),
                                   [str(f) for f in data_folders({s.config["dataset"] for s in specs}, data_root)])
            if study is None:
                SweepLoop(paths, registry, executor, data_root, on_event).run(todo)
                run_ids = [spec.run_id for spec in experiment.runs]
            else:
                loop = SearchLoop(paths, registry, executor, data_root, on_event, experiment, study)
                loop.run(loop.resume_trials())
                run_ids = loop.current
        finally:
            executor.close()
        return [registry.get(run_id) for run_id in run_ids]


def stale_records(experiment: Experiment, sweep: SweepPaths, registry: RunRegistry, data: DataNow) -> list[PlannedRun]:
    """Every run in the registry (a search's trials and final seeds) whose record is of other data
    than there is now, as stale plans."""
    return [PlannedRun(RunSpec(experiment.name, row["config"]), row["status"], "stale", 0, change)
            for row in registry.rows()
            for change in [data_change(sweep.run_paths(row["id"]), row["config"], row["status"], data)] if change]
