"""The files a run leaves in runs/<id>/, read and written in one place, without paddle.

    job.json          what a worker is asked to run (written by the sweep)
    progress.json     where a worker is (epoch, step), rewritten as it trains
    result.json       the finished run's metrics and history, written last
    predictions.npz   validation probabilities and labels (final and best epoch)
    gradcam.npz       Grad-CAM heat maps on a fixed set of validation images
    error.txt         why a worker stopped without a result

Every file the runner writes goes through `atomic_write`: a temporary file in the same folder,
flushed to disk, then renamed over the target, so a reader (or a kill -9) never sees half a file.
The image caches use it too, without the flush (a cache lost to a power cut is only decoded again).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np


def atomic_write(path: Path, data: bytes | str | Callable[[io.BufferedWriter], None], durable: bool = True) -> None:
    """Write bytes, text, or whatever `data(file)` writes, to `path` all at once; `durable`: on disk
    before the rename, so it survives a power cut too."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            if durable:
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


def read_result(paths) -> dict | None:
    """A finished run's result.json (paths: its RunPaths), or None."""
    result = read_json(paths.result)
    return result if result and "final" in result and "config" in result else None


def result_problem(paths) -> str | None:
    """Why a run's result cannot be read: missing, or there but damaged."""
    if not paths.result.exists():
        return f"no {paths.result}" + ("" if paths.folder.exists() else f" (its folder {paths.folder} is gone)")
    if read_result(paths) is None:
        return f"{paths.result} is damaged (not a complete result)"
    return None


def save_predictions(paths, predictions: dict) -> None:
    save_arrays(paths.predictions, {k: v for k, v in predictions.items() if v is not None})


def load_predictions(paths) -> dict:
    return load_arrays(paths.predictions)


def save_arrays(path: Path, arrays: dict) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_arrays(path: Path) -> dict:
    """The arrays of an .npz run file ({} if it is missing or damaged)."""
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return {}


def read_progress(paths) -> dict:
    return read_json(paths.progress) or {}


def write_error(paths, text: str) -> None:
    atomic_write(paths.error, text)


def read_error(paths) -> str | None:
    try:
        return paths.error.read_text().strip() or None
    except OSError:
        return None
