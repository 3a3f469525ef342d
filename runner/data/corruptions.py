"""Corrupted copies of images, as ImageNet-C makes them (Hendrycks & Dietterich, ICLR 2019): the 15
corruptions of runner.options.CORRUPTIONS at severities 1-5, by the `imagecorruptions` package
(the extra `robustness`), on the uint8 images a run is evaluated on, at its own image size.

imagecorruptions draws its noise, blur angles, frost crops and fog from numpy's global generator.
Each image is therefore corrupted with that generator seeded from (dataset, image size, corruption,
severity, seed, the image's pixels) and put back as it was afterwards: the same image gets the
same corrupted pixels in every run, every process and every order, whatever else drew numbers
before. Severity 0 is the image itself.

A whole set (one corruption at one severity over a run's validation images) is kept in the cache
folder, keyed by all of the above and the package's version, because making it costs more than
evaluating a network on it (docs/performance.md): every network of a sweep at the same size reads
the same copy. Processes evaluating side by side make each set once, the others taking sets no one
is making in the meantime.
"""
from __future__ import annotations

import fcntl
import hashlib
import types
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from runner.store.runfiles import atomic_write
from runner.errors import RunnerError
from runner.options import CORRUPTION_MIN_SIZE as MIN_SIZE

CACHE_VERSION = "1"


def import_corruptions():
    """The imagecorruptions package, made to run on numpy 2 and scikit-image >= 0.19 (see `_compatible`),
    or one line saying how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its imports of deprecated scipy and pkg_resources names
            import imagecorruptions
            from imagecorruptions import corruptions
    except ImportError as err:
        missing = getattr(err, "name", None) or "imagecorruptions"
        what = "which is not installed" if missing == "imagecorruptions" else f"which cannot import {missing}"
        raise RunnerError(f"robustness needs the imagecorruptions package, {what}: "
                          "pip install -e '.[robustness]'") from None
    _compatible(corruptions)
    return imagecorruptions


def package_version() -> str:
    from importlib.metadata import version

    return f"imagecorruptions {version('imagecorruptions')}"


def _compatible(module) -> None:
    """imagecorruptions 1.1.2 (its last release) predates numpy 2 and scikit-image 0.19; three names it
    uses are replaced in its own module only, doing what they did when it was written:
    - `np.float_` (fog), removed in numpy 2: numpy as it was, with float_ = float64;
    - `gaussian(..., multichannel=True)` (glass blur), renamed channel_axis=-1 in scikit-image;
    - `sk.util.random_noise` (impulse noise) now draws from a fresh unseeded generator unless given
      one: it is given one seeded from numpy's global generator, as the other corruptions draw."""
    if getattr(module, "_runner_compatible", False):
        return
    numpy, skimage, gaussian = module.np, module.sk, module.gaussian

    class OldNumpy(types.ModuleType):
        def __getattr__(self, name):
            return numpy.float64 if name == "float_" else getattr(numpy, name)

    def old_gaussian(image, *args, multichannel=None, **kwargs):
        if multichannel:
            kwargs["channel_axis"] = -1
        return gaussian(image, *args, **kwargs)

    def seeded_random_noise(image, *args, **kwargs):
        kwargs.setdefault("rng", numpy.random.randint(2 ** 31))
        return skimage.util.random_noise(image, *args, **kwargs)

    module.np = OldNumpy("numpy")
    module.gaussian = old_gaussian
    module.sk = types.SimpleNamespace(util=types.SimpleNamespace(random_noise=seeded_random_noise),
                                      color=skimage.color)
    module._runner_compatible = True


def image_seed(image: np.ndarray, dataset: str, corruption: str, severity: int, seed: int) -> int:
    digest = hashlib.sha256(f"{dataset}|{image.shape[0]}|{corruption}|{severity}|{seed}|".encode()
                            + np.ascontiguousarray(image).tobytes()).digest()
    return int.from_bytes(digest[:4], "little")


def corrupt_image(image: np.ndarray, corruption: str, severity: int, seed: int = 0, dataset: str = "") -> np.ndarray:
    """`image` (uint8 H x W x 3) under `corruption` at `severity` (0: unchanged), the same for the same
    arguments; numpy's global generator is left as it was."""
    if severity == 0:
        return image.copy()
    if min(image.shape[:2]) < MIN_SIZE:
        raise RunnerError(f"corruptions need images of at least {MIN_SIZE} x {MIN_SIZE} pixels (imagecorruptions' "
                          f"minimum); these are {image.shape[1]} x {image.shape[0]}: use image_size >= {MIN_SIZE}")
    package = import_corruptions()
    state = np.random.get_state()
    try:
        np.random.seed(image_seed(image, dataset, corruption, severity, seed))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            out = package.corrupt(image, severity=severity, corruption_name=corruption)
    finally:
        np.random.set_state(state)
    return np.ascontiguousarray(out[: image.shape[0], : image.shape[1]], dtype=np.uint8)


def corrupt_images(images: np.ndarray, corruption: str, severity: int, seed: int = 0, dataset: str = "") -> np.ndarray:
    return np.stack([corrupt_image(image, corruption, severity, seed, dataset) for image in images]) \
        if len(images) else images.copy()


def set_path(cache_dir: Path, images: np.ndarray, dataset: str, corruption: str, severity: int, seed: int) -> Path:
    """Where the cache keeps one corrupted set: its name hashes everything its pixels depend on."""
    pixels = hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()
    key = f"{CACHE_VERSION}|{package_version()}|{dataset}|{images.shape}|{corruption}|{severity}|{seed}|{pixels}"
    digest = hashlib.sha1(key.encode()).hexdigest()
    return Path(cache_dir) / "corrupted" / digest[:2] / f"{corruption}-{severity}-{digest}.npy"


def read_set(path: Path, shape) -> np.ndarray | None:
    try:
        array = np.load(path)
    except (OSError, ValueError, EOFError):  # missing, or damaged: made again
        return None
    return array if array.shape == tuple(shape) and array.dtype == np.uint8 else None


def corrupted_sets(images: np.ndarray, dataset: str, sets: list[tuple[str, int]], seed: int = 0,
                   cache_dir: Path | None = None) -> Iterator[tuple[str, int, np.ndarray]]:
    """(corruption, severity, corrupted images) for each of `sets`, not necessarily in their order: a
    set in the cache first, else one that no other process is making, else the next one to wait for."""
    if cache_dir is None:
        for corruption, severity in sets:
            yield corruption, severity, corrupt_images(images, corruption, severity, seed, dataset)
        return
    pending = list(sets)
    while pending:
        for index, (corruption, severity) in enumerate(pending):
            if severity == 0:
                break
            path = set_path(cache_dir, images, dataset, corruption, severity, seed)
            if path.exists() or _free(path):
                break
        else:
            index = 0  # every set left is being made elsewhere: wait for the first
        corruption, severity = pending.pop(index)
        if severity == 0:
            yield corruption, severity, images.copy()
            continue
        yield corruption, severity, _cached(cache_dir, images, dataset, corruption, severity, seed)


def _lock_path(path: Path) -> Path:
    return path.with_suffix(".lock")


def _free(path: Path) -> bool:
    """Whether no process is making the set at `path` now."""
    lock = _lock_path(path)
    if not lock.exists():
        return True
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def _cached(cache_dir: Path, images: np.ndarray, dataset: str, corruption: str, severity: int, seed: int) -> np.ndarray:
    path = set_path(cache_dir, images, dataset, corruption, severity, seed)
    found = read_set(path, images.shape)
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(_lock_path(path), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process making it: wait, then read its copy
        try:
            found = read_set(path, images.shape)
            if found is not None:
                return found
            made = corrupt_images(images, corruption, severity, seed, dataset)
            try:
                atomic_write(path, lambda f: np.save(f, made), durable=False)  # a cache: rebuilt if lost
                # a process waiting on this lock reads the copy once it has the lock; later ones find the copy first
                _lock_path(path).unlink(missing_ok=True)
            except OSError:
                pass  # a full or read-only cache only costs time
            return made
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
