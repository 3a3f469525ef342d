"""The files a run leaves in runs/<id>/, read and written in one place, without paddle.

    job.json          what a worker is asked to run (written by the sweep)
    progress.json     where a worker is (epoch, step), rewritten as it trains
    result.json       the finished run's metrics and history, written last
    predictions.npz   validation probabilities and labels (final and best epoch)
    gradcam.npz       Grad-CAM heat maps on a fixed set of validation images
    error.txt         why a worker stopped without a result

Every write goes through `atomic_write`: a temporary file in the same folder, flushed to disk, then
renamed over the target, so a reader (or a kill -9) never sees half a file.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np


def atomic_write(path: Path, data: bytes | str | Callable[[io.BufferedWriter], None]) -> None:
    """Write bytes, text, or whatever `data(file)` writes, to `path` all at once."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data) -> None:
    atomic_write(path, json.dumps(data, indent=1, default=str))


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None if it is missing or not readable JSON."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def read_result(run) -> dict | None:
    """A finished run's result.json (run: a RunLayout), or None."""
    result = read_json(run.result)
    return result if result and "final" in result and "config" in result else None


def result_problem(run) -> str | None:
    """Why a run's result cannot be read: missing, or there but damaged."""
    if not run.result.exists():
        return f"no {run.result}" + ("" if run.folder.exists() else f" (its folder {run.folder} is gone)")
    if read_result(run) is None:
        return f"{run.result} is damaged (not a complete result)"
    return None


def save_predictions(run, predictions: dict) -> None:
    save_arrays(run.predictions, {k: v for k, v in predictions.items() if v is not None})


def load_predictions(run) -> dict:
    return load_arrays(run.predictions)


def save_arrays(path: Path, arrays: dict) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_arrays(path: Path) -> dict:
    """The arrays of an .npz run file ({} if it is missing or damaged)."""
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return {}


def read_progress(run) -> dict:
    return read_json(run.progress) or {}


def write_error(run, text: str) -> None:
    atomic_write(run.folder / "error.txt", text)


def read_error(run) -> str | None:
    try:
        return (run.folder / "error.txt").read_text().strip() or None
    except OSError:
        return None
