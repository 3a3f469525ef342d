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
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from runner import metrics
from runner.store.fingerprint import digest_labels, digest_predictions


def atomic_write(path: Path, data: bytes | str | Callable[[io.BufferedWriter], None], durable: bool = True,
                 replace: bool = True) -> None:
    """Write bytes, text, or whatever `data(file)` writes, to `path` all at once; `durable`: on disk
    before the rename, so it survives a power cut too. `replace=False`: FileExistsError where `path`
    exists, which is left as it is."""
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
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            tmp.unlink()
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


# How far a row of a run's softmax probabilities may sum from 1 (float32 rounds at about 1e-7; a
# half-precision softmax, cast up, at about 1e-3).
SUM_TOLERANCE = 1e-2


class CheckedPredictions(NamedTuple):
    """A finished run's predictions.npz as the report may use it: `arrays` ({} where they cannot be
    used), `problem` (why not, in words, or None) and `not_finite` (its outputs are NaN or infinite:
    what a runner that did not check its evaluations recorded, and then result.json's numbers,
    computed from them, are as meaningless)."""
    arrays: dict
    problem: str | None = None
    not_finite: bool = False


def checked_predictions(paths, result: dict) -> CheckedPredictions:
    """The run's validation predictions, checked against its result.json: one table of class
    probabilities and one label per validation image, the labels its data fingerprint records, and
    the final accuracy (AUC, confusion matrix) result.json holds. Any other file (edited, cut short,
    another run's, an older runner's) would put numbers beside the run that are not its own."""
    name = paths.predictions.name
    arrays, problem = read_arrays(paths.predictions)
    problem = problem or shape_problem(arrays, result, name)
    if problem:
        return CheckedPredictions({}, problem)
    probs, labels = arrays["final"], arrays["labels"]
    bad = ~np.isfinite(probs).all(axis=1)
    if bad.any():
        return CheckedPredictions({}, f"its final validation outputs are not finite for {int(bad.sum())} of "
                                      f"{len(probs)} images (the run diverged)", not_finite=True)
    bad = ((probs < 0) | (probs > 1)).any(axis=1) | (np.abs(probs.sum(axis=1) - 1) > SUM_TOLERANCE)
    if bad.any():
        return CheckedPredictions({}, f"{name}'s 'final' are not probabilities (each row in [0, 1], summing to 1) "
                                      f"for {int(bad.sum())} of {len(probs)} images")
    problem = disagreement(probs, labels, result)
    if problem:
        return CheckedPredictions({}, f"{name} disagrees with result.json: {problem}")
    recorded = result.get("predictions_digest")  # absent from older runs: the checks above are all they get
    if recorded and digest_predictions(probs) != recorded:
        return CheckedPredictions({}, f"{name}'s final probabilities are not the ones the run recorded (their "
                                      "digest differs from result.json's predictions_digest)")
    return CheckedPredictions(arrays)


LEFT_OUT = "the report leaves out its interval, paired tests, calibration and ensemble (—)"


def damaged_message(paths, problem: str, experiment_file=None, consequence: str = LEFT_OUT) -> str:
    """The one line, for the report, the sweep and robustness alike, that names a finished run whose
    predictions cannot stand beside its result.json, the file, what is left out, and how to mend it."""
    return (f"{paths.run_id}: {problem} ({paths.predictions}), so {consequence}. Restore the run's own "
            f"predictions.npz (and result.json), or train it afresh with "
            f"`runner sweep {experiment_file or '<its experiment file>'} --retrain-stale` (its old files are moved to "
            f"{paths.sweep.stale}/, nothing is deleted)")


def shape_problem(arrays: dict, result: dict, name: str) -> str | None:
    """Why the arrays are not a final probability per class and a label for each validation image."""
    missing = [k for k in ("final", "labels") if k not in arrays]
    if missing:
        return f"{name} has no {' and no '.join(repr(k) for k in missing)} array"
    probs, labels = arrays["final"], arrays["labels"]
    classes = len(result.get("class_names") or ()) or None
    if probs.ndim != 2 or probs.dtype.kind != "f" or (classes and probs.shape[1] != classes):
        return (f"{name}'s 'final' is not a table of probabilities for {classes or 'each'} classes "
                f"(shape {probs.shape}, dtype {probs.dtype})")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (len(labels) and not 0 <= labels.min() <= labels.max()
                                                              < probs.shape[1]):
        return f"{name}'s 'labels' are not class numbers (shape {labels.shape}, dtype {labels.dtype})"
    images = result.get("val_images") or ((result.get("data") or {}).get("val") or {}).get("images")
    for what, count in (("final probabilities", len(probs)), ("labels", len(labels))):
        if images is not None and count != images:
            return f"{name} holds {what} for {count} images, result.json {images} validation images"
    recorded = ((result.get("data") or {}).get("val") or {}).get("labels_digest")
    if recorded and digest_labels(labels) != recorded:
        return f"{name}'s labels are not the validation labels its data fingerprint in result.json records"
    return None


def disagreement(probs: np.ndarray, labels: np.ndarray, result: dict) -> str | None:
    """How the final probabilities disagree with the final numbers result.json holds (computed from
    the same arrays when the run finished), or None. Accuracy to its rounding, AUC to 1e-6, the
    confusion matrix exactly."""
    final = result.get("final") or {}
    acc, recorded = metrics.accuracy(probs, labels), final.get("acc")
    if is_number(recorded) and not abs(acc - recorded) <= 0.5 / max(len(labels), 1):
        return f"its final probabilities give an accuracy of {100 * acc:.2f} %, result.json {100 * recorded:.2f} %"
    recorded = final.get("auc")
    if probs.shape[1] == 2 and is_number(recorded):
        auc = metrics.roc_auc(probs[:, 1], labels)
        if not abs(auc - recorded) <= 1e-6:
            return f"its final probabilities give an AUC of {auc:.4f}, result.json {recorded:.4f}"
    matrix = (result.get("confusion_matrix") or {}).get("final")
    if matrix is not None:
        ours = metrics.confusion_matrix(probs.argmax(1), labels, probs.shape[1])
        if np.shape(matrix) != ours.shape or not np.array_equal(ours, matrix):
            differ = int(np.sum(ours != np.asarray(matrix))) if np.shape(matrix) == ours.shape else ours.size
            return f"its final confusion matrix differs from result.json's in {differ} of {ours.size} cells"
    return None


def is_number(value) -> bool:
    """A finite number recorded in result.json (an older runner wrote NaN where it had none)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def save_arrays(path: Path, arrays: dict) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_arrays(path: Path) -> dict:
    """The arrays of an .npz run file ({} if it is missing or damaged)."""
    return read_arrays(path)[0]


def read_arrays(path: Path) -> tuple[dict, str | None]:
    """(the arrays of an .npz run file, None), or ({}, why they cannot be read: missing, damaged, not
    an archive of arrays). Never unpickles: nothing in the file can run."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return {}, f"{path.name} is missing"
    except ValueError:  # numpy's answer to a file that is neither .npz nor .npy: a pickle, never loaded
        return {}, f"{path.name} is not an .npz archive of arrays"
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        return {}, f"{path.name} is not a readable .npz archive ({type(err).__name__}: {err})"
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return {}, f"{path.name} is one array, not an .npz archive of arrays"
    try:
        with loaded as z:
            return {k: z[k] for k in z.files}, None
    except ValueError:
        return {}, f"{path.name} holds objects, not arrays of numbers (objects are never unpickled)"
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        return {}, f"{path.name} is not a readable .npz archive ({type(err).__name__}: {err})"


def read_progress(paths) -> dict:
    return read_json(paths.progress) or {}


def write_error(paths, text: str) -> None:
    """Say why the run failed, unless one of its processes has said so already: in a run of several
    processes the first to fail says why, and the others fail because of it (a peer gone in the
    middle of an exchange, the launcher's SIGTERM taken for an interrupt). The worker removes the
    last attempt's at its start."""
    try:
        atomic_write(paths.error, text, replace=False)
    except FileExistsError:
        pass


def read_error(paths) -> str | None:
    try:
        return paths.error.read_text().strip() or None
    except OSError:
        return None
