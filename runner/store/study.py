"""A search's study on disk (outputs/<name>/study.sqlite, Optuna's storage) and whether it is the
study of the file's [search] table.

A study records what it searched for: its objective and direction, its space and the run it searched
around, in Optuna's user attributes (`runner`). A rerun whose [search] changed any of those is
refused with one line saying what changed: its trials were scored on another question, and the best
of them would be the answer to that one (a study made to maximise accuracy would maximise a loss).
What a rerun may change is how much and how it searches: trials, sampler, pruner, prune_after,
final_seeds. A study written before the attributes existed is checked against what Optuna records
itself (the direction, each trial's distributions), then given them.

The file is looked at read-only first, as runs.sqlite is (runner/store/registry.py): a damaged or foreign
file is named and left untouched; Optuna would write its tables into any sqlite file it is given.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from runner.errors import RunnerError
from runner.search_space import Dimension

RECORD = "runner"  # the user attribute holding what the study searched for
OPTUNA_TABLES = {"studies", "trials", "version_info"}


def study_file_problem(path: Path, name: str | None = None) -> str | None:
    """Why `path` cannot hold the study `name` (any study when None), judged read-only, or None."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return None
    aside = "it was left untouched. Move it aside to start the search afresh"
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not OPTUNA_TABLES <= tables:
                return f"{path} is an sqlite file but not an Optuna study; {aside}"
            names = [r[0] for r in db.execute("SELECT study_name FROM studies")]
        finally:
            db.close()
    except sqlite3.DatabaseError as err:
        return f"{path} is not a readable Optuna study ({err}); {aside}"
    if name is not None and names and name not in names:
        return (f"{path} holds the study {', '.join(map(repr, names))}, not {name!r} (copied from another "
                f"search?); {aside}, or set name = {names[0]!r} in the file if it is that search")
    return None


def open_study(path: Path, name: str, open_with):
    """`open_with(storage_url)` (Optuna's load_study or create_study) on a file that passed
    `study_file_problem`, with Optuna's refusals (a schema of another Optuna version, a file damaged
    past its header) as one line."""
    problem = study_file_problem(path, name)
    if problem:
        raise RunnerError(problem)
    try:
        return open_with(f"sqlite:///{path}")
    except KeyError:
        raise
    except Exception as err:  # sqlalchemy's errors, and Optuna's RuntimeError for another schema version
        first_line = (str(err).strip().splitlines() or [""])[0][:300]
        raise RunnerError(f"{path} is not a readable Optuna study ({type(err).__name__}: {first_line}); it was left "
                          "untouched. Move it aside to start the search afresh") from None


def record(objective: str, direction: str, space: list[Dimension], base: dict) -> dict:
    """What a study searched for, as JSON: its objective and direction, its space, and the settings
    of the run it searched around that its space does not set."""
    return json.loads(json.dumps({"objective": objective, "direction": direction,
                                  "space": {d.key: {d.kind: list(d.values)} for d in space},
                                  "base": {k: v for k, v in base.items() if k not in {d.key for d in space}}}))


def check_study(study, wanted: dict, path: Path, name: str) -> None:
    """Refuse a study that searched for something else than `wanted` (a `record`); give a study
    written before the record existed the record, once what Optuna keeps of it agrees."""
    recorded = study.user_attrs.get(RECORD) or recorded_by_optuna(study)
    change = first_change(recorded, wanted)
    if change:
        raise RunnerError(f"{path} is the study of another search: {change}. Its trials answer the old question; to "
                          f"search anew, set name = \"{name}-2\" (a study of its own in outputs/{name}-2), or move "
                          f"{path.name} aside")
    if RECORD not in study.user_attrs:
        study.set_user_attr(RECORD, wanted)


def recorded_by_optuna(study) -> dict:
    """What an older runner's study says of itself: Optuna's direction and its trials' distributions."""
    space = {}
    for trial in study.get_trials(deepcopy=False):
        for key, dist in trial.distributions.items():
            space.setdefault(key, dimension_of(dist))
    return {"direction": study.direction.name.lower(), "space": space}


def dimension_of(dist) -> dict:
    """An Optuna distribution as a [search.space] rule ({log = [lo, hi]}, {int = ...}, ...)."""
    import optuna

    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return {"choice": list(dist.choices)}
    if isinstance(dist, optuna.distributions.IntDistribution):
        return {"int": [dist.low, dist.high]}
    return {"log" if dist.log else "range": [dist.low, dist.high]}


def first_change(recorded: dict, wanted: dict) -> str | None:
    """The first way `wanted` differs from what the study recorded (fields it did not record pass)."""
    for key in ("objective", "direction"):
        if key in recorded and recorded[key] != wanted[key]:
            return f"it searched for {key} = {recorded[key]!r}, the file now asks for {wanted[key]!r}"
    old, new = recorded.get("space", {}), wanted["space"]
    for key in sorted(set(old) | set(new)):
        if key not in new:
            return f"its space has search.space.{key} = {rule(old[key])}, the file's has no {key}"
        if key not in old and "base" in recorded:  # an older study's trials may not have drawn every key
            return f"the file's space has search.space.{key} = {rule(new[key])}, its space had none"
        if key in old and not same_rule(old[key], new[key]):
            return f"search.space.{key} was {rule(old[key])} and is now {rule(new[key])}"
    if "base" in recorded:
        for key in sorted(set(recorded["base"]) | set(wanted["base"])):
            before, now = recorded["base"].get(key), wanted["base"].get(key)
            if before != now:
                return f"the run it searches around had {key} = {before!r} and now has {key} = {now!r}"
    return None


def same_rule(a: dict, b: dict) -> bool:
    (kind_a, values_a), (kind_b, values_b) = next(iter(a.items())), next(iter(b.items()))
    if kind_a != kind_b or len(values_a) != len(values_b):
        return False
    if kind_a == "choice":
        return values_a == values_b
    return all(float(x) == float(y) for x, y in zip(values_a, values_b))  # 1 and 1.0 are one bound


def rule(value: dict) -> str:
    kind, values = next(iter(value.items()))
    return f"{{ {kind} = {json.dumps(values)} }}"
