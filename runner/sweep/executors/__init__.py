"""Where a sweep's runs execute: on this machine's cores or GPUs (local, the default) or as tasks of a
Ray cluster. Each starts the same worker process for a run (runner/run/worker.py), tells the sweep when
it has ended, and stops what runs on Ctrl-C; the plan, the registry, resuming, the tables and the
events are the sweep's own (runner/sweep/loop.py), written once for both.
"""
from __future__ import annotations

from runner.sweep.executors.base import Ended, Executor
from runner.sweep.executors.local import LocalExecutor

__all__ = ["Ended", "Executor", "LocalExecutor", "build_executor"]


def build_executor(cluster: str | None = None, jobs: int | None = None, devices: list[int] | None = None,
                   **ray_options) -> Executor:
    if cluster:
        from runner.sweep.executors.ray import RayExecutor

        return RayExecutor(cluster, **ray_options)
    return LocalExecutor(jobs, devices)
