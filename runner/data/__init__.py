"""Datasets: iChallenge-PM, Cifar10 and folders of your own, as paddle datasets ready to train on.
Importing the package needs no paddle: only `load_splits` does (runner/data/arrays.py).

    splits = load_splits("ichallenge-pm", image_size=224)
    splits.train[0]  # (float32 CHW in [-1, 1], int64 [label])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from runner.data import cifar10, ichallenge_pm  # noqa: F401  (registers the datasets)
from runner.data.registry import (is_known_dataset, list_datasets, open_dataset, published_sizes, register_dataset,
                                  unknown_dataset_message)
from runner.data.source import DataCheck, DataSource
from runner.data.transforms import Augment
from runner.errors import DataError
from runner.store.fingerprint import data_fingerprint, split_fingerprint
from runner.validation import nested_subset, parse_validation, split_indices

if TYPE_CHECKING:  # paddle: imported by load_splits, when a run loads its data
    from runner.data.arrays import ArrayDataset

__all__ = ["Augment", "DataCheck", "DataSource", "Splits", "check_dataset", "default_augment", "fingerprint_of",
           "is_known_dataset", "list_datasets", "load_splits", "open_dataset", "published_sizes", "register_dataset",
           "unknown_dataset_message"]

# What `augment = true` means for each dataset: the course's list for fundus photographs
# (flips, small rotations, crops, brightness/contrast); pad-and-crop plus flips for 32x32 Cifar10.
DEFAULT_AUGMENT = {
    "cifar10": Augment(hflip=True, pad_crop=4),
    "*": Augment(hflip=True, vflip=True, rotate=10.0, crop_scale=0.8, brightness=0.2, contrast=0.2),
}


def default_augment(dataset: str) -> Augment:
    return DEFAULT_AUGMENT.get(dataset, DEFAULT_AUGMENT["*"])


@dataclass
class Splits:
    train: ArrayDataset
    val: ArrayDataset
    class_names: list[str]
    validation: str  # "official", "holdout:<fraction>" or "kfold:<K> fold <i>": which images the val split holds
    unused: list[str] = field(default_factory=list)  # what the dataset's folder holds that no split uses, and why
    val_names: list[str] = field(default_factory=list)  # the val images' file names, in the val split's order
    fingerprint: dict = field(default_factory=dict)  # what the run trains and is scored on (runner/store/fingerprint.py)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class Selection:
    """Which images of a dataset a run trains and is scored on: indices into the listed splits."""
    train_idx: np.ndarray
    val_idx: np.ndarray
    train_y: np.ndarray
    val_y: np.ndarray
    val_split: str  # the listed split the validation images come from: "val", or "train" for a holdout or fold
    validation: str


def check_dataset(name: str, data_root=None) -> DataCheck:
    return open_dataset(name, data_root).check()


def select_images(source: DataSource, validation: str = "official", train_limit: int = 0, val_limit: int = 0,
                  cache_dir: Path | None = None, fold: int = 0, train_fraction: float = 1.0) -> Selection:
    train_y = source.labels("train", cache_dir)
    scheme = parse_validation(validation)
    if scheme.official:
        val_split, val_y = "val", source.labels("val", cache_dir)
        train_idx, val_idx = np.arange(len(train_y)), np.arange(len(val_y))
    else:  # the validation images are a held-out share, or a fold, of the training images
        val_split, val_y = "train", train_y
        train_idx, val_idx = split_indices(train_y, scheme, fold)
    train_idx, val_idx = evenly_spaced(train_idx, train_limit), evenly_spaced(val_idx, val_limit)
    train_idx = train_idx[nested_subset(train_y[train_idx], train_fraction)]
    train_y, val_y = train_y[train_idx], val_y[val_idx]
    for split, labels, limit in (("train", train_y, train_limit), ("val", val_y, val_limit)):
        where = validation + (f", fold {fold}" if fold else "")
        problems = source.split_problems(split if scheme.official else f"{split} ({where})", labels)
        if problems:
            fix = f"; raise {split}_limit (now {limit})" if limit else ""
            raise DataError(problems[0] + fix)
    return Selection(train_idx, val_idx, train_y, val_y, val_split, validation + (f" fold {fold}" if fold else ""))


def selection_fingerprint(source: DataSource, selection: Selection, train_content: str, val_content: str) -> dict:
    train_ids, val_ids = source.ids("train"), source.ids(selection.val_split)
    return data_fingerprint(
        source.name, source.class_names, selection.validation,
        split_fingerprint([train_ids[i] for i in selection.train_idx], selection.train_y, train_content),
        split_fingerprint([val_ids[i] for i in selection.val_idx], selection.val_y, val_content))


def fingerprint_of(name: str, data_root=None, validation: str = "official", train_limit: int = 0,
                   val_limit: int = 0, cache_dir: Path | None = None, fold: int = 0,
                   train_fraction: float = 1.0) -> dict:
    """The fingerprint of the data a run with these settings would train on now, without decoding
    an image: what a sweep checks a finished or interrupted run's record against."""
    source = open_dataset(name, data_root)
    selection = select_images(source, validation, train_limit, val_limit, cache_dir, fold, train_fraction)
    return selection_fingerprint(source, selection, source.content_digest("train", selection.train_idx, cache_dir),
                                 source.content_digest(selection.val_split, selection.val_idx, cache_dir))


def load_splits(name: str, image_size: int, data_root=None, augment: Augment | None = None,
                validation: str = "official", train_limit: int = 0, val_limit: int = 0,
                cache_dir: Path | None = None, fold: int = 0, train_fraction: float = 1.0) -> Splits:
    from runner.data.arrays import ArrayDataset

    source = open_dataset(name, data_root)
    selection = select_images(source, validation, train_limit, val_limit, cache_dir, fold, train_fraction)
    train_x, train_content = source.images_and_digest("train", selection.train_idx, image_size, cache_dir)
    val_x, val_content = source.images_and_digest(selection.val_split, selection.val_idx, image_size, cache_dir)
    return Splits(ArrayDataset(train_x, selection.train_y, image_size, augment),
                  ArrayDataset(val_x, selection.val_y, image_size), list(source.class_names), selection.validation,
                  source.unused(), source.image_names(selection.val_split, selection.val_idx),
                  selection_fingerprint(source, selection, train_content, val_content))


def evenly_spaced(indices: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` of `indices`, spread over the whole split (files are sorted by class, so a
    plain prefix would hold one class only)."""
    if not limit or limit >= len(indices):
        return indices
    return indices[np.linspace(0, len(indices) - 1, limit).round().astype(int)]
