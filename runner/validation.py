"""Which images a run is scored on: the official validation images, a fixed share of the training
images (`holdout:F`), or one of K folds of the training images (`kfold:K`, one run per fold).

Holdouts and folds are stratified by class and fixed by a seed of their own, the same for every
run and every model, so that models selected on them are compared on the same images; selection
done this way never sees the official validation images. So is the share of the training images a
run trains on (`train_fraction`), and the shares are nested: a smaller one is inside every larger.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from runner.errors import ConfigError

SPLIT_SEED = 12345  # fixes every holdout and every set of folds, whatever the run's own seed
SUBSET_SEED = 54321  # fixes the training images of every train_fraction, whatever the run's own seed
MAX_FOLDS = 20


@dataclass(frozen=True)
class Validation:
    kind: str  # official, holdout or kfold
    fraction: float = 0.0  # holdout
    folds: int = 0  # kfold

    @property
    def official(self) -> bool:
        return self.kind == "official"


def parse_validation(text: str) -> Validation:
    """'official', 'holdout:0.2' or 'kfold:5'; anything else is one line saying what is accepted."""
    if text == "official":
        return Validation("official")
    kind, _, value = text.partition(":")
    # ASCII digits only: float() and int() also take '０.２', '1_0' and ' 5 ', which would name
    # the same images as another spelling under another run id
    if kind == "holdout" and re.fullmatch(r"[0-9]*\.[0-9]+", value) and 0.0 < float(value) < 1.0:
        return Validation("holdout", fraction=float(value))
    if kind == "kfold" and re.fullmatch(r"[0-9]+", value) and 2 <= int(value) <= MAX_FOLDS:
        return Validation("kfold", folds=int(value))
    raise ConfigError(f"validation = {text!r}: expected \"official\", \"holdout:F\" with 0 < F < 1, or "
                      f"\"kfold:K\" with 2 <= K <= {MAX_FOLDS}")


def holdout_mask(labels: np.ndarray, fraction: float) -> np.ndarray:
    """A fixed, class-stratified choice of `fraction` of the images."""
    rng = np.random.RandomState(SPLIT_SEED)
    mask = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        mask[rng.permutation(idx)[: int(round(len(idx) * fraction))]] = True
    return mask


def fold_numbers(labels: np.ndarray, folds: int) -> np.ndarray:
    """For each image, its fold (1..folds): each class is shuffled once, by SPLIT_SEED, and dealt
    out in turn, so the folds are disjoint, cover every image, and hold each class in shares that
    differ by at most one image."""
    rng = np.random.RandomState(SPLIT_SEED)
    out = np.zeros(len(labels), int)
    dealt = 0
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        # continue the deal where the last class stopped, so that fold sizes stay within one image
        out[idx] = (np.arange(len(idx)) + dealt) % folds + 1
        dealt += len(idx)
    return out


def split_indices(train_labels: np.ndarray, validation: Validation, fold: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices) into the training images, for a holdout or a fold."""
    if validation.kind == "holdout":
        keep = holdout_mask(train_labels, validation.fraction)
    elif validation.kind == "kfold":
        keep = fold_numbers(train_labels, validation.folds) == fold
    else:
        raise ValueError("the official validation images are not drawn from the training images")
    return np.flatnonzero(~keep), np.flatnonzero(keep)


def nested_subset(labels: np.ndarray, fraction: float) -> np.ndarray:
    """Sorted indices of a class-stratified `fraction` of the images (at least one of each class).
    Each class is shuffled once by SUBSET_SEED and the first round(n x fraction) of it taken, so for
    the same images a smaller fraction is always a subset of a larger one."""
    if fraction >= 1.0:
        return np.arange(len(labels))
    rng = np.random.RandomState(SUBSET_SEED)
    chosen = []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        chosen.append(idx[: max(1, int(round(len(idx) * fraction)))])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, int)
