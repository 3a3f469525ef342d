"""What the benchmark scripts share: an experiment file in the course's setting."""
from __future__ import annotations

import textwrap
from pathlib import Path


def course_experiment(path: Path, name: str, runs: list[tuple], epochs: int, train_limit: int,
                      threads: int = 1, val_limit: int = 0) -> Path:
    """iChallenge-PM at 224x224, batch 10, seed 0; `runs` are (model, optimizer table[, extra TOML
    lines for that run]) tuples."""
    body = "".join(f'\n[[runs]]\nmodel = "{model}"\noptimizer = {optimizer}\n{extra[0] + chr(10) if extra else ""}'
                   for model, optimizer, *extra in runs)
    path.write_text(textwrap.dedent(f"""
        name = "{name}"
        [defaults]
        dataset = "ichallenge-pm"
        image_size = 224
        epochs = {epochs}
        batch_size = 10
        seed = 0
        train_limit = {train_limit}
        val_limit = {val_limit}
        threads = {threads}
    """) + body)
    return path
