"""`runner sweep`: every run of an experiment file, or the trials of its [search], each in a worker
process started by an executor, from one entry. Both lock the folder, check the data, the devices
and (on a cluster) that every node sees the files, then run the loop; a sweep's loop runs the plan,
a search's asks Optuna for its trials as it goes; then the runs whose file asks for their robustness
are scored on corrupted images by the same kind of loop (runner/sweep/robustness.py).
"""
from __future__ import annotations

from runner.config import Experiment, RunSpec
from runner.store.layout import SweepPaths, data_folders
from runner.store.registry import RunRegistry
from runner.sweep.executors import build_executor
from runner.sweep.loop import OnEvent, SweepLoop
from runner.sweep.plan import DataNow, PlannedRun, data_change, plan_sweep, preflight_data, preflight_devices
from runner.sweep.robustness import asked_for, require_package, score_runs
from runner.sweep.search import SearchLoop, make_study, trial_specs
from runner.sweep.session import open_sweep
from runner.sweep.stale import refuse_stale, set_aside


def run_sweep(experiment: Experiment, jobs: int | None = None, retry_failed: bool = False, data_root=None,
              on_event: OnEvent | None = None, devices: list[int] | None = None, cluster: str | None = None,
              retries: int | None = None, retrain_stale: bool = False) -> list[dict]:
    """Run what the plan says, or the search's trials and then its final seeds, on this machine or
    on the Ray cluster at `cluster`, then score the robustness of the finished runs whose file asks
    for it (runner/sweep/robustness.py); return the registry rows of the file's runs, and a failed
    row per run whose robustness could not be scored. `retry_failed` is a sweep's: a search's failed
    trials are Optuna's to replace. Runs recorded on other data than there is now are refused
    (runner/sweep/stale.py), or with `retrain_stale` a sweep's are set aside and trained afresh."""
    on_event = on_event or (lambda kind, **details: None)
    wanted = asked_for(experiment)
    if wanted:
        require_package()  # without imagecorruptions: one line, before anything trains
    ray_options = {"retries": retries} if retries is not None else {}
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
        run_ids = [spec.run_id for spec in experiment.runs]
        if specs:
            study = make_study(experiment, paths.study, specs[0].config["epochs"]) if experiment.search else None
            executor = build_executor(cluster, jobs, devices, **ray_options)
            try:
                executor.check_storage(paths.root.resolve(),
                                       [str(f) for f in data_folders({s.config["dataset"] for s in specs}, data_root)])
                if study is None:
                    SweepLoop(paths, registry, executor, data_root, on_event).run(todo)
                else:
                    loop = SearchLoop(paths, registry, executor, data_root, on_event, experiment, study)
                    loop.run(loop.resume_trials())
                    run_ids = loop.current
            finally:
                executor.close()
        _, failures, notes = score_runs(paths, registry, wanted, lambda: build_executor(cluster, jobs, devices,
                                                                                        **ray_options),
                                        data_root, on_event)
        for note in notes:
            on_event("note", message=note)
        return [registry.get(run_id) for run_id in run_ids] + \
            [{"id": f"{run_id} (robustness)", "status": "failed", "error": error} for run_id, error in failures]


def stale_records(experiment: Experiment, sweep: SweepPaths, registry: RunRegistry, data: DataNow) -> list[PlannedRun]:
    """Every run in the registry (a search's trials and final seeds) whose record is of other data
    than there is now, as stale plans."""
    return [PlannedRun(RunSpec(experiment.name, row["config"]), row["status"], "stale", 0, change)
            for row in registry.rows()
            for change in [data_change(sweep.run_paths(row["id"]), row["config"], row["status"], data)] if change]
