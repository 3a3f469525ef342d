"""`runner train`: one run in this process (or, with nproc > 1, in processes started by
paddle.distributed.launch), recorded in the same registry as a sweep's. The one module of the
sweep's room that trains, and so imports runner.run.
"""
from __future__ import annotations

import subprocess

from runner.config import Experiment, RunSpec
from runner.errors import RunnerError
from runner.processes import die_with_parent, process_started
from runner.store.jobs import why_it_ended, worker_command, worker_environment, write_job
from runner.store.layout import SweepPaths
from runner.store.runfiles import read_result
from runner.sweep.plan import DataNow, plan_run, preflight_data
from runner.sweep.corrupted_sets import protocol_of
from runner.sweep.robustness import require_package
from runner.sweep.session import open_sweep
from runner.sweep.stale import damaged_notes, refuse_stale, set_aside


def train_one(experiment: Experiment, spec: RunSpec, data_root=None, on_event=None, retrain_stale: bool = False) -> dict:
    """Train `spec` here and, if its file asks for its robustness, score that here too once trained."""
    from runner.run.train import train_run

    if spec.config["robustness"]:
        require_package()  # without imagecorruptions: one line, before it trains
    with open_sweep(experiment, timed=False) as (paths, registry):
        planned = plan_run(spec, registry.get(spec.run_id), paths.run_paths(spec.run_id), True,
                           DataNow(data_root, paths.cache), retrain_stale)
        refuse_stale([planned], paths)
        if planned.damaged and planned.action != "retrain":  # finishing it again would rewrite its result from them
            raise RunnerError(damaged_notes([planned], paths, experiment.path)[0])
        preflight_data([spec], data_root)
        if planned.action == "retrain":
            set_aside(paths, registry, planned, on_event or (lambda kind, **details: None))
        registry.mark_running(spec.run_id)
        try:
            if spec.config["nproc"] > 1:
                result = launch_and_wait(paths, spec, data_root, on_event)
            else:
                result = train_run(spec, paths.run_paths(spec.run_id), data_root, paths.cache, on_event,
                                   process_started())  # `runner train`: a process for this run
        except KeyboardInterrupt:
            registry.mark_interrupted(spec.run_id, "interrupted (Ctrl-C); run again to resume")
            raise
        except RunnerError as err:
            registry.mark_failed(spec.run_id, str(err))
            raise
        registry.mark_done(spec.run_id, result)
        if spec.config["robustness"]:
            from runner.run.robustness import evaluate_robustness

            evaluate_robustness(spec, paths.run_paths(spec.run_id), protocol_of(spec.config), data_root, paths.cache,
                                on_event)
        return result


def launch_and_wait(sweep: SweepPaths, spec: RunSpec, data_root, on_event) -> dict:
    """Run `spec` on nproc processes through paddle.distributed.launch and return its result."""
    paths = sweep.run_paths(spec.run_id)
    write_job(sweep, spec, data_root)
    paths.error.unlink(missing_ok=True)
    if on_event:
        on_event("note", message=f"launching {spec.config['nproc']} processes with paddle.distributed.launch; "
                                 f"their logs are in {paths.launch_logs}")
    with open(paths.log, "a") as log:
        # the launcher dies with this process, even by kill -9, and its workers with it (die_with_launcher)
        code = subprocess.call(worker_command(paths, spec.config), stdout=log, stderr=subprocess.STDOUT,
                               env=worker_environment(), preexec_fn=die_with_parent)
    result = read_result(paths)
    if code != 0 or not result:
        raise RunnerError(why_it_ended(paths, code))
    return result
