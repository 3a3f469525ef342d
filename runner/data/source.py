"""What every dataset provides: its classes, its splits as files and labels, and a health check."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runner.data.images import content_digest, decode, load_resized, read_file
from runner.errors import DataError
from runner.store.fingerprint import digest_strings


@dataclass
class SplitCheck:
    count: int
    per_class: dict[str, int]
    sizes: Counter = field(default_factory=Counter)  # (width, height) -> number of images


@dataclass
class DataCheck:
    dataset: str
    location: str
    splits: dict[str, SplitCheck]
    problems: list[str]
    unused: list[str] = field(default_factory=list)  # entries of the dataset's folder not used, and why

    @property
    def ok(self) -> bool:
        return not self.problems


class DataSource:
    """A dataset read from image files; subclasses say where the files are and what their labels are."""

    name = "?"
    class_names: list[str] = []
    split_names = ("train", "val")
    # Images in each split as the dataset is published, for the sweep's estimates before any file
    # is read (memory for the decoded images, time to train); {} where they depend on the files.
    split_sizes: dict[str, int] = {}

    def __init__(self, location: Path):
        self.location = Path(location)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def files(self, split: str) -> tuple[list[Path], list[int], list[str]]:
        """(image paths, labels, problems) of a split; problems name the file and what is wrong."""
        raise NotImplementedError

    def unused(self) -> list[str]:
        """Entries of the dataset's folder that no split uses, each with why (folder: data names them)."""
        return []

    def listed(self, split: str) -> tuple[list[Path], list[int], list[str]]:
        """files(split), with a problem for a split or a class of it that has no image."""
        paths, labels, problems = self.files(split)
        return paths, labels, problems + self.split_problems(split, labels)

    def split_problems(self, split: str, labels) -> list[str]:
        """An empty split, or a class with no image in it: its accuracy, AUC or sensitivity would be
        computed from nothing."""
        if len(labels) == 0:
            return [f"{self.location}: the {split} split has no images"]
        counts = Counter(int(x) for x in labels)
        return [f"{self.location}: the {split} split has no images of class {name!r}"
                for i, name in enumerate(self.class_names) if not counts.get(i)]

    def labels(self, split: str, cache_dir: Path | None = None) -> np.ndarray:
        """The split's labels in file order; refuses a split with any problem in its listing."""
        _, labels, problems = self.listed(split)
        self.refuse_if(problems)
        return np.asarray(labels, np.int64)

    def images(self, split: str, indices: np.ndarray, image_size: int, cache_dir: Path | None) -> np.ndarray:
        """uint8 images (N x size x size x 3) of the split's files at `indices`: only those are decoded,
        so a run on a slice of a dataset reads the slice."""
        return self.images_and_digest(split, indices, image_size, cache_dir)[0]

    def images_and_digest(self, split: str, indices: np.ndarray, image_size: int,
                          cache_dir: Path | None) -> tuple[np.ndarray, str]:
        """images(), and the digest of their content (`content_digest`) as it was read."""
        paths = self.listed(split)[0]
        images, problems, digests = load_resized([paths[i] for i in indices], image_size, cache_dir)
        self.refuse_if(problems)
        return images, digest_strings(digests)

    def ids(self, split: str) -> list[str]:
        """The split's images in file order, each by its path under the dataset's folder: what a data
        fingerprint lists (the same wherever the folder is moved)."""
        return [path.relative_to(self.location).as_posix() if path.is_relative_to(self.location) else str(path)
                for path in self.listed(split)[0]]

    def content_digest(self, split: str, indices: np.ndarray, cache_dir: Path | None = None) -> str:
        """The digest of the bytes of the split's files at `indices`, in that order, without decoding
        them: what `images_and_digest` returns beside the images."""
        paths = self.listed(split)[0]
        digests = []
        for i in indices:
            raw, problem = read_file(paths[i])
            self.refuse_if([problem] if problem else [])
            digests.append(content_digest(raw))
        return digest_strings(digests)

    def image_names(self, split: str, indices: np.ndarray) -> list[str]:
        """What a person calls the split's images at `indices`: their file names."""
        paths = self.listed(split)[0]
        return [paths[i].name for i in indices]

    def refuse_if(self, problems: list[str]) -> None:
        # Silently dropping images would change the evaluation set, so any problem stops the run.
        if problems:
            raise DataError(
                f"dataset {self.name!r} at {self.location} has {len(problems)} problem(s); fix or remove "
                f"these files, then check with `runner data check {self.name}`:", problems)

    def check(self) -> DataCheck:
        splits, problems = {}, []
        for split in self.split_names:
            paths, labels, split_problems = self.listed(split)
            problems += split_problems
            sizes = Counter()
            for path in paths:
                image, problem = decode(path)
                if problem:
                    problems.append(problem)
                else:
                    sizes[(image.shape[1], image.shape[0])] += 1
            splits[split] = SplitCheck(len(paths), self.count_classes(labels), sizes)
        return DataCheck(self.name, str(self.location), splits, problems, self.unused())

    def count_classes(self, labels) -> dict[str, int]:
        counts = Counter(int(x) for x in labels)
        return {f"{i} {n}": counts.get(i, 0) for i, n in enumerate(self.class_names)}


def require_folder(path: Path, what: str, fix: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{what} not found: {path} does not exist or is not a folder; {fix}")
    return path
