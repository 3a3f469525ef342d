"""Cifar10, read from <data root>/cifar10/cifar-10-python.tar.gz by runner/data/cifar10_archive.py.

Where the archive is missing, paddle's own download is tried (it works online); offline that fails
and the error names the path to put the archive at. The decoded arrays are cached as one .npy per
split, keyed by the archive's size and modification time.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from runner.data.cifar10_archive import read_split
from runner.data.registry import register_dataset
from runner.data.source import DataCheck, DataSource, SplitCheck
from runner.errors import DataError
from runner.store.runfiles import atomic_write

ARCHIVE = "cifar-10-python.tar.gz"


@register_dataset("cifar10")
class Cifar10(DataSource):
    name = "cifar10"
    class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    native_size = 32
    split_sizes = {"train": 50000, "val": 10000}

    def __init__(self, location: Path):
        super().__init__(location)
        self._loaded: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def archive(self) -> Path:
        return self.location / ARCHIVE

    def labels(self, split: str, cache_dir: Path | None = None) -> np.ndarray:
        return self.load(split, self.native_size, cache_dir)[1]

    def images(self, split: str, indices: np.ndarray, image_size: int, cache_dir: Path | None) -> np.ndarray:
        return self.load(split, image_size, cache_dir)[0][indices]

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
        cached = None
        if cache_dir is not None:
            st = archive.stat()
            key = hashlib.sha1(f"{archive.resolve()}|{st.st_size}|{st.st_mtime_ns}|{split}".encode()).hexdigest()
            cached = cache_dir / f"cifar10-{key[:16]}.npz"
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
