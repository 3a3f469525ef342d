"""Cifar10, read from <data root>/cifar10/cifar-10-python.tar.gz by runner/data/cifar10_archive.py.

Where the archive is missing, paddle's own download is tried (it works online); offline that fails
and the error names the path to put the archive at. The decoded arrays are cached as one .npz per
split, keyed by the content of the archive members the split is read from (their SHA-256, one pass
over the archive: docs/performance.md), which is also the split's part of a run's data fingerprint.
"""
from __future__ import annotations

import hashlib
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np

from runner.data.cifar10_archive import MEMBERS, read_split
from runner.data.registry import register_dataset
from runner.data.source import DataCheck, DataSource, SplitCheck
from runner.errors import DataError
from runner.store.fingerprint import digest_strings
from runner.store.runfiles import atomic_write

ARCHIVE = "cifar-10-python.tar.gz"
ID_PREFIX = {"train": "train", "val": "test"}  # `train/17` in a data fingerprint


@register_dataset("cifar10")
class Cifar10(DataSource):
    name = "cifar10"
    class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    native_size = 32
    split_sizes = {"train": 50000, "val": 10000}

    def __init__(self, location: Path):
        super().__init__(location)
        self._loaded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._labels: dict[str, np.ndarray] = {}
        self._members: dict[str, str] | None = None

    @property
    def archive(self) -> Path:
        return self.location / ARCHIVE

    def labels(self, split: str, cache_dir: Path | None = None) -> np.ndarray:
        """From the cache, where it holds the split, without reading its images."""
        if split not in self._labels:
            cached, labels = self._cache_file(split, cache_dir), None
            if cached is not None and cached.exists():
                try:
                    with np.load(cached) as z:
                        labels = z["labels"]
                except (OSError, ValueError, KeyError):
                    pass  # rebuilt by load
            self._labels[split] = labels if labels is not None else self.load(split, self.native_size, cache_dir)[1]
        return self._labels[split]

    def images_and_digest(self, split: str, indices: np.ndarray, image_size: int,
                          cache_dir: Path | None) -> tuple[np.ndarray, str]:
        return self.load(split, image_size, cache_dir)[0][indices], self.content_digest(split, indices)

    def ids(self, split: str) -> list[str]:
        """`train/17`: the 18th image of the training batches, in the order they are read."""
        return [f"{ID_PREFIX[split]}/{i}" for i in range(len(self.labels(split)))]

    def content_digest(self, split: str, indices: np.ndarray = None, cache_dir: Path | None = None) -> str:
        """The digest of the archive members `split` is read from (the ids say which of their images)."""
        members = self.member_digests()
        return digest_strings(f"{name}:{members.get(name, 'missing')}" for name in MEMBERS[split])

    def member_digests(self) -> dict[str, str]:
        """SHA-256 of every file in the archive, by name, read in one pass."""
        if self._members is None:
            archive = self.locate_archive()
            try:
                with tarfile.open(archive, "r:*") as tar:
                    members = {}
                    for member in tar:
                        if member.isfile():
                            digest, stream = hashlib.sha256(), tar.extractfile(member)
                            while chunk := stream.read(1 << 20):
                                digest.update(chunk)
                            members[member.name] = digest.hexdigest()
            except (OSError, tarfile.TarError, EOFError) as err:
                raise unreadable(archive, err) from None
            self._members = dict(sorted(members.items()))
        return self._members

    def _cache_file(self, split: str, cache_dir: Path | None) -> Path | None:
        if cache_dir is None:
            return None
        key = hashlib.sha1(f"{self.content_digest(split)}|{split}".encode()).hexdigest()
        return Path(cache_dir) / f"cifar10-{key[:16]}.npz"

    def image_names(self, split: str, indices: np.ndarray) -> list[str]:
        """The archive has no file names: an image is its split and position in it."""
        return [f"{split} #{int(i)}" for i in indices]

    def load(self, split: str, image_size: int, cache_dir: Path | None):
        """Native 32x32 images; the input pipeline resizes if the run asks for another size."""
        if split not in self._loaded:
            self._loaded[split] = self._read(split, cache_dir)
        return self._loaded[split]

    def _read(self, split: str, cache_dir: Path | None):
        archive = self.locate_archive()
        cached = self._cache_file(split, cache_dir)
        if cached is not None:
            if cached.exists():
                try:
                    with np.load(cached) as z:
                        return z["images"], z["labels"]
                except (OSError, ValueError, KeyError):
                    pass
        images, labels = self.read_archive(archive, split)
        if cached is not None:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(cached, lambda f: np.savez(f, images=images, labels=labels), durable=False)
            except OSError:
                pass  # a read-only cache only costs speed
        return images, labels

    def locate_archive(self) -> Path:
        if self.archive.is_file():
            return self.archive
        return Path(download_archive(self.archive))

    def read_archive(self, archive: Path, split: str):
        return read_split(archive, split, f"replace it with the standard {ARCHIVE}")  # runs no code it holds

    def check(self) -> DataCheck:
        splits, problems = {}, []
        try:
            for split in self.split_names:
                images, labels = self.read_archive(self.locate_archive(), split)
                sizes = Counter({(images.shape[2], images.shape[1]): len(images)})
                splits[split] = SplitCheck(len(labels), self.count_classes(labels), sizes)
        except DataError as err:
            problems.append(str(err))
        return DataCheck(self.name, str(self.location), splits, problems)


def unreadable(archive: Path, err: Exception) -> DataError:
    first_line = (str(err).splitlines() or [""])[0].rstrip(":")  # tarfile lists each method it tried
    return DataError(f"{archive}: not a readable Cifar10 archive ({type(err).__name__}: {first_line}); "
                     f"replace it with the standard {ARCHIVE}")


def download_archive(target: Path) -> str:
    """paddle's own Cifar10 download (into paddle's cache); a clear error when offline."""
    import paddle.dataset.common as common
    from paddle.vision.datasets import cifar

    try:
        return common.download(cifar.CIFAR10_URL, "cifar", cifar.CIFAR10_MD5)
    except Exception as err:  # requests' connection errors, or paddle's RuntimeError after retries
        raise DataError(
            f"Cifar10 archive not found at {target}, and downloading it from {cifar.CIFAR10_URL} failed "
            f"({type(err).__name__}); this machine may be offline. Put {ARCHIVE} at {target} "
            "(or set --data-root / RUNNER_DATA_ROOT to the folder holding cifar10/)") from None
