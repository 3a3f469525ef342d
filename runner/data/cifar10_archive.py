"""Reading cifar-10-python.tar.gz with our own code: tarfile, and pickles read by runner.store.safe_pickle.

Its batches are Python 2 pickles, and paddle.vision.datasets.Cifar10 reads them with pickle.load,
which runs any code an archive from elsewhere holds. Here each batch is read without running any,
checked to be what the standard archive holds (uint8 rows of 3x32x32 pixels, one label in 0..9
each), and the archive is read in one pass: paddle's reader lists the members, then seeks back
into the compressed stream for each one, decompressing it again and again.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from runner.errors import DataError
from runner.store.safe_pickle import UnsafeFileError, unpickle

FOLDER = "cifar-10-batches-py"
MEMBERS = {"train": [f"{FOLDER}/data_batch_{i}" for i in range(1, 6)], "val": [f"{FOLDER}/test_batch"]}
NUM_CLASSES, PIXELS = 10, 3 * 32 * 32


def read_split(archive: Path, split: str, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images N x 32 x 32 x 3, int64 labels) of a split, in the order of its batches; any
    problem is a DataError naming the archive and ending with `fix`."""
    wanted = MEMBERS[split]
    batches = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    where = f"{archive}: member {member.name}"
                    data = io.BytesIO(tar.extractfile(member).read())  # an archive cut short fails here
                    batches[member.name] = batch_arrays(unpickle(data, where, "Cifar10 batch", encoding="bytes"), where, fix)
                    if len(batches) == len(wanted):
                        break
    except UnsafeFileError as err:
        raise DataError(f"{err}; {fix}") from None
    except (tarfile.TarError, OSError, EOFError) as err:  # not a tar, not gzip, cut short
        first_line = (str(err).splitlines() or [""])[0].rstrip(":")  # tarfile lists each method it tried
        raise DataError(f"{archive}: not a readable Cifar10 archive ({type(err).__name__}: {first_line}); {fix}") from None
    missing = [name for name in wanted if name not in batches]
    if missing:
        raise DataError(f"{archive}: not the Cifar10 archive: it lacks {', '.join(missing)}; {fix}")
    images = np.concatenate([batches[name][0] for name in wanted])
    labels = np.concatenate([batches[name][1] for name in wanted])
    return np.ascontiguousarray(images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), labels


def batch_arrays(batch, where: str, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """(data N x 3072 uint8, labels N int64) of one batch, or DataError saying how it differs."""
    def fail(problem):
        raise DataError(f"{where} is not a Cifar10 batch: {problem}; {fix}")

    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        fail("expected a dict with data and labels" + (f", found keys {sorted(batch)[:6]}" if isinstance(batch, dict)
                                                      else f", found a {type(batch).__name__}"))
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS \
            or not len(data):
        fail(f"its data is {describe(data)}; expected uint8 rows of {PIXELS} pixels (3 x 32 x 32)")
    if not isinstance(labels, (list, np.ndarray)) or not all(isinstance(y, (int, np.integer))
                                                             and not isinstance(y, bool) for y in labels):
        fail(f"its labels are {describe(labels)}; expected a list of whole numbers")
    labels = np.asarray(labels, np.int64).reshape(-1)
    if len(labels) != len(data):
        fail(f"it holds {len(data)} images and {len(labels)} labels")
    if len(labels) and not (0 <= labels.min() and labels.max() < NUM_CLASSES):
        bad = labels[(labels < 0) | (labels >= NUM_CLASSES)]
        fail(f"{len(bad)} of its labels lie outside 0..{NUM_CLASSES - 1} (e.g. {bad[0]})")
    return data, labels


def describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of {value.dtype} of shape {value.shape}"
    return f"a {type(value).__name__}"
