"""Metrics as pure functions of predicted probabilities and labels (numpy in, numbers out).

Binary tasks: the positive class is label 1 (pathologic myopia on iChallenge-PM) and a case is
called positive when its probability is at least 0.5.
"""
from __future__ import annotations

import math

import numpy as np


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probs.argmax(1) == labels)) if len(labels) else float("nan")


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    top = np.argsort(-probs, axis=1)[:, :k]
    return float(np.mean((top == labels[:, None]).any(1))) if len(labels) else float("nan")


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative
    (ties count one half), computed from average ranks (Mann-Whitney U)."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # 1-based ranks, tied scores sharing the mean of their ranks (vectorised: paddle asks for the
    # metric after every batch, so this runs on the hot path)
    _, tie_group, counts = np.unique(np.asarray(scores), return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)
    ranks = (last_rank - (counts - 1) / 2)[tie_group.reshape(-1)]
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) at every threshold, from (0, 0) to (1, 1)."""
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    scores, labels = np.asarray(scores)[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tps, fps = np.cumsum(labels)[distinct], np.cumsum(~labels)[distinct]
    tpr = np.r_[0, tps] / max(labels.sum(), 1)
    fpr = np.r_[0, fps] / max((~labels).sum(), 1)
    return fpr, tpr


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    return np.bincount(labels * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def binary_scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    predicted = probs.argmax(1)
    (tn, fp), (fn, tp) = confusion_matrix(predicted, labels, 2)
    sensitivity = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * sensitivity / (precision + sensitivity) if precision + sensitivity else 0.0
    return {"auc": roc_auc(probs[:, 1], labels), "sensitivity": float(sensitivity),
            "specificity": float(specificity), "f1": float(f1)}


def summarize(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Every metric the table reports for this kind of task, by name."""
    num_classes = probs.shape[1]
    out = {"acc": accuracy(probs, labels)}
    if num_classes == 2:
        out.update(binary_scores(probs, labels))
    elif num_classes > 5:
        out["top5"] = topk_accuracy(probs, labels, 5)
    return out


# ---- statistics for the comparison table -------------------------------------------------------

def wilson_interval(correct: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion: honest near 0 and 1, unlike the normal one."""
    if total == 0:
        return float("nan"), float("nan")
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """Exact McNemar test of two classifiers on the same images: (only A right, only B right, p).
    Under the null the discordant images split 50/50, so p is a two-sided binomial tail."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    n = b + c
    if n == 0:
        return b, c, 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(b, c) + 1)) / 2 ** n
    return b, c, float(min(1.0, 2 * tail))


T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def mean_std_interval(values) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high) with a 95% t-interval of the mean; std and interval are nan for one value."""
    values = np.asarray([v for v in values if v is not None and not math.isnan(v)], float)
    if len(values) == 0:
        return (float("nan"),) * 4
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan"), float("nan")
    std = float(values.std(ddof=1))
    half = T_95.get(len(values) - 1, 1.96) * std / math.sqrt(len(values))
    return mean, std, mean - half, mean + half
