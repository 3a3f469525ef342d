"""A search's [search] table: its settings and its space, checked before anything trains. The
loop that runs it is runner/sweep/search.py; this part imports neither the configuration nor Optuna, so
the configuration can check a file's [search] table itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from runner.errors import ConfigError
from runner.validation import parse_validation

SAMPLERS = ("tpe", "random")
PRUNERS = ("hyperband", "median", "none")
OBJECTIVES = {"acc": "maximize", "auc": "maximize", "loss": "minimize"}
KINDS = ("log", "range", "int", "choice")
SEARCH_KEYS = {"trials": int, "sampler": str, "pruner": str, "prune_after": int, "objective": str, "final_seeds": list,
               "space": dict}


@dataclass(frozen=True)
class Dimension:
    key: str  # a run key, dotted for a field of a table
    kind: str  # log, range, int or choice
    values: tuple  # (low, high) or the choices


@dataclass
class SearchSpec:
    trials: int
    sampler: str
    pruner: str
    prune_after: int  # epochs every trial trains before the pruner may stop it
    objective: str
    final_seeds: list[int]
    space: list[Dimension]
    base: dict = field(repr=False)  # the run searched around, before the space's settings
    overrides: list = field(default_factory=list, repr=False)  # --set, applied to every trial

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]


def parse_search(table: dict, base: dict, overrides: list, where: str, check_setting, resolved_base) -> SearchSpec:
    """Check the [search] table, every key of its space as a run key, and the selection rule.
    `check_setting(key, value)` raises ConfigError for a setting no run could take (the config's own
    checks); `resolved_base()` is the base run's resolved configuration."""
    def fail(message):
        raise ConfigError(f"{where}: search.{message}")

    for key, value in table.items():
        if key not in SEARCH_KEYS:
            fail(f"{key}: unknown key; allowed: {', '.join(SEARCH_KEYS)}")
        if not isinstance(value, SEARCH_KEYS[key]) or isinstance(value, bool):
            fail(f"{key} = {value!r} is a {type(value).__name__}; expected {SEARCH_KEYS[key].__name__}")
    spec = SearchSpec(trials=table.get("trials", 20), sampler=table.get("sampler", "tpe"),
                      pruner=table.get("pruner", "hyperband"), prune_after=table.get("prune_after", 1),
                      objective=table.get("objective", "acc"),
                      final_seeds=table.get("final_seeds", [0]), space=[], base=base, overrides=list(overrides))
    if spec.trials < 1:
        fail(f"trials = {spec.trials} must be at least 1")
    for key, allowed in (("sampler", SAMPLERS), ("pruner", PRUNERS), ("objective", tuple(OBJECTIVES))):
        if getattr(spec, key) not in allowed:
            fail(f"{key} = {getattr(spec, key)!r}; allowed: {', '.join(allowed)}")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in spec.final_seeds):
        fail(f"final_seeds = {spec.final_seeds!r}: give whole numbers >= 0, e.g. [0, 1, 2]")
    space = table.get("space", {})
    if not space:
        fail("space is empty; give at least one setting to search, e.g. \"optimizer.learning_rate\" = { log = [1e-4, 1e-2] }")
    for key, rule in space.items():
        spec.space.append(dimension(key, rule, lambda message, key=key: fail(f"space.{key}: {message}")))
    for dim in spec.space:  # each end of each range, each choice, as a run would be resolved with it
        for value in (dim.values if dim.kind == "choice" else dim.values[:2]):
            check_setting(dim.key, value)
    resolved = resolved_base()
    if not 1 <= spec.prune_after < resolved["epochs"]:
        fail(f"prune_after = {spec.prune_after} must be at least 1 and below epochs = {resolved['epochs']} (the "
             "pruner may stop a trial after that many epochs)")
    scheme = parse_validation(resolved["validation"])
    if scheme.official:
        raise ConfigError(f"{where}: a search must not be scored on the official validation images, or the table "
                          "would report the very images the settings were chosen on; set validation = "
                          "\"holdout:0.2\" or \"kfold:5\" (the final seeds are then scored on the official images once)")
    return spec


def dimension(key: str, rule, fail) -> Dimension:
    if not isinstance(rule, dict) or len(rule) != 1 or next(iter(rule)) not in KINDS:
        fail("give one of { log = [lo, hi] }, { range = [lo, hi] }, { int = [lo, hi] }, { choice = [...] }")
    kind, values = next(iter(rule.items()))
    if not isinstance(values, list) or not values:
        fail(f"{kind} needs a non-empty list")
    if kind == "choice":
        return Dimension(key, kind, tuple(values))
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        fail(f"{kind} = {values!r}: give [low, high]")
    low, high = values
    if kind == "int" and not all(isinstance(v, int) for v in values):
        fail(f"int = {values!r}: give whole numbers")
    if not low < high:
        fail(f"{kind} = {values!r} is empty: low must be below high")
    if kind == "log" and low <= 0:
        fail(f"log = {values!r}: a log scale needs low > 0")
    if not all(math.isfinite(v) for v in values):
        fail(f"{kind} = {values!r}: bounds must be finite")
    return Dimension(key, kind, (low, high))


