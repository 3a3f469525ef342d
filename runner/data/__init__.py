"""Datasets: iChallenge-PM, Cifar10 and folders of your own, as paddle datasets ready to train on.

    splits = load_splits("ichallenge-pm", image_size=224)
    splits.train[0]  # (float32 CHW in [-1, 1], int64 [label])
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runner.data import cifar10, ichallenge_pm  # noqa: F401  (registers the datasets)
from runner.data.registry import (is_known_dataset, list_datasets, open_dataset, register_dataset,
                                  resolve_data_root, unknown_dataset_message)
from runner.data.source import DataReport, DataSource
from runner.data.transforms import Augment, ArrayDataset
from runner.errors import DataError
from runner.validation import nested_subset, parse_validation, split_indices

__all__ = ["Augment", "ArrayDataset", "DataReport", "DataSource", "Splits", "check_dataset", "default_augment",
           "is_known_dataset", "list_datasets", "load_splits", "open_dataset", "register_dataset",
           "resolve_data_root", "unknown_dataset_message"]

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

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def check_dataset(name: str, data_root=None) -> DataReport:
    return open_dataset(name, data_root).check()


def load_splits(name: str, image_size: int, data_root=None, augment: Augment | None = None,
                validation: str = "official", train_limit: int = 0, val_limit: int = 0,
                cache_dir: Path | None = None, fold: int = 0, train_fraction: float = 1.0) -> Splits:
    source = open_dataset(name, data_root)
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
    train_x = source.images("train", train_idx, image_size, cache_dir)
    val_x = source.images(val_split, val_idx, image_size, cache_dir)
    return Splits(ArrayDataset(train_x, train_y, image_size, augment), ArrayDataset(val_x, val_y, image_size),
                  list(source.class_names), validation + (f" fold {fold}" if fold else ""))


def evenly_spaced(indices: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` of `indices`, spread over the whole split (files are sorted by class, so a
    plain prefix would hold one class only)."""
    if not limit or limit >= len(indices):
        return indices
    return indices[np.linspace(0, len(indices) - 1, limit).round().astype(int)]
