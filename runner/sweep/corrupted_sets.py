"""Which corrupted sets a run is scored on, and which its robustness.json still lacks: for the sweep
that scores them (runner/sweep/robustness.py) and for the plan that estimates how long that takes
(runner/sweep/plan.py). Imports no paddle."""
from __future__ import annotations

from runner.options import CORRUPTION_MIN_SIZE, CORRUPTIONS, SEVERITIES
from runner.store.layout import RunPaths
from runner.store.runfiles import read_json


def protocol_of(config: dict, corruptions=(), severities=()) -> dict:
    """The sets a run is scored on: those given, else its own `robustness` table's, else all 15 x 5."""
    table = config.get("robustness") or {}
    return {"corruptions": list(corruptions or table.get("corruptions") or CORRUPTIONS),
            "severities": list(severities or table.get("severities") or SEVERITIES), "seed": table.get("seed", 0)}


def protocol_sets(protocol: dict) -> int:
    """How many sets a protocol scores a run on: each corruption at each severity."""
    return len(protocol["corruptions"]) * len(protocol["severities"])


def too_small(config: dict) -> str | None:
    """Why a run cannot be scored on corrupted images, or None if it can."""
    if config["image_size"] < CORRUPTION_MIN_SIZE:
        return f"its images are {config['image_size']} px and imagecorruptions takes {CORRUPTION_MIN_SIZE} px or more"
    return None


def scored_sets(paths: RunPaths, seed: int) -> dict:
    """{corruption: {severity (str): scores}} of a run's robustness.json, if scored with `seed`."""
    stored = read_json(paths.robustness) or {}
    return stored.get("sets", {}) if stored.get("seed") == seed else {}


def missing_sets(paths: RunPaths, protocol: dict) -> list[tuple[str, int]]:
    sets = scored_sets(paths, protocol["seed"])
    return [(name, severity) for name in protocol["corruptions"] for severity in protocol["severities"]
            if str(severity) not in sets.get(name, {})]
