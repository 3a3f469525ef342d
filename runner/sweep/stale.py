"""Runs recorded on other data than there is now (runner/sweep/plan.py calls them stale): refused in
one line that names them, what changed and how to go on; or, with --retrain-stale, their files moved
to outputs/<name>/stale/<run-id>-<n>/ and the run queued to train afresh on the data now. A search
refuses and takes no --retrain-stale: its study holds the scores its trials were told.
"""
from __future__ import annotations

import os
from pathlib import Path

from runner.errors import RunnerError
from runner.store.fingerprint import RETRAIN_HINT
from runner.store.layout import SweepPaths
from runner.store.registry import RunRegistry
from runner.store.runfiles import damaged_message
from runner.sweep.plan import PlannedRun


def refuse_stale(planned: list[PlannedRun], sweep: SweepPaths, search: bool = False) -> None:
    message = stale_message(planned, sweep, search)
    if message:
        raise RunnerError(message)


def stale_message(planned: list[PlannedRun], sweep: SweepPaths, search: bool = False) -> str | None:
    """The one line that refuses the stale runs of a plan, naming each, what changed and how to go on."""
    stale = [p for p in planned if p.action == "stale"]
    if not stale:
        return None
    by_change: dict[str, list[str]] = {}
    for p in stale:
        by_change.setdefault(p.stale[1], []).append(f"{p.spec.run_id} {p.stale[0]}")
    runs = "; ".join(", ".join(names) + f" ({change})" for change, names in by_change.items())
    what = (f"{len(stale)} run{'s' if len(stale) > 1 else ''} of {sweep.root} {'were' if len(stale) > 1 else 'was'} "
            f"trained or scored on other data than there is now, so two datasets would mix: {runs}")
    if search:
        return (f"{what}. The search's study holds the scores of those runs, so it cannot go on with the data now: "
                f"move {sweep.root} aside (or give the search another name) to start a new study on the data now, "
                "or restore the data")
    hint = RETRAIN_HINT.format(them="them" if len(stale) > 1 else "it", stale=sweep.stale)
    return f"{what}. {hint[0].upper()}{hint[1:]}"


def damaged_notes(planned: list[PlannedRun], sweep: SweepPaths, experiment_file) -> list[str]:
    """A line per finished run kept though its predictions.npz disagrees with its result.json."""
    return [damaged_message(sweep.run_paths(p.spec.run_id), p.damaged, experiment_file)
            for p in planned if p.damaged and p.action == "skip"]


def set_aside(sweep: SweepPaths, registry: RunRegistry, planned: PlannedRun, on_event) -> Path:
    """Move a stale run's files (its result, checkpoints and VisualDL log) to stale/<run-id>-<n>/ and
    queue it: it trains afresh on the data now, and what it computed on the old data is kept."""
    run_id = planned.spec.run_id
    paths = sweep.run_paths(run_id)
    number = 1
    while (sweep.stale / f"{run_id}-{number}").exists():
        number += 1
    target = sweep.stale / f"{run_id}-{number}"
    target.mkdir(parents=True)
    for name, folder in (("run", paths.folder), ("checkpoints", paths.checkpoints), ("vdl", paths.vdl)):
        if folder.exists():
            os.replace(folder, target / name)
    registry.mark_queued(run_id, f"{planned.why_retrained}; trained afresh, the old files are in {target}")
    on_event("note", message=f"{run_id} {planned.why_retrained}: training it afresh; its old files are in {target}")
    return target
