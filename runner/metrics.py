"""Metrics as pure functions of predicted probabilities and labels (numpy in, numbers out).

Binary tasks: the positive class is label 1 (pathologic myopia on iChallenge-PM) and a case is
called positive when its probability is at least 0.5.
"""
from __future__ import annotations

import math
import warnings

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


def mean_std_interval(values) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high) with a 95% t-interval of the mean; std and interval are nan for one value."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None and not math.isnan(v)], float)
    if len(values) == 0:
        return (float("nan"),) * 4
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan"), float("nan")
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(values) - 1)) * std / math.sqrt(len(values))
    return mean, std, mean - half, mean + half


def welch_p(a, b) -> float | None:
    """Two-sided p of Welch's t-test (unequal variances) between two groups of per-seed values;
    None when either group has fewer than two values."""
    from scipy import stats

    a = np.asarray([v for v in a if v is not None], float)
    b = np.asarray([v for v in b if v is not None], float)
    if len(a) < 2 or len(b) < 2:
        return None
    if a.std() == 0 and b.std() == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    with warnings.catch_warnings():
        # seeds alike to the last digits make scipy warn of precision loss on the terminal; the p it
        # gives then is still the test's answer (near 1 for near-equal groups)
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


# ---- calibration and operating points --------------------------------------------------------------

def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): images binned by their top probability into `bins` equal-width bins
    of [0, 1]; the gap between each bin's accuracy and mean confidence, weighted by its share."""
    confidence, correct, counts = reliability_bins(probs, labels, bins)
    present = counts > 0
    return float(np.sum(counts[present] * np.abs(correct[present] - confidence[present])) / counts.sum()) \
        if counts.sum() else float("nan")


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = 15):
    """Per bin of top probability: (mean confidence, accuracy, count); empty bins hold nan, nan, 0."""
    top = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(float)
    # bin k holds (k/bins, (k+1)/bins]; a confidence of exactly 0 goes to the first bin
    index = np.clip(np.ceil(top * bins).astype(int) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore"):
        confidence = np.bincount(index, weights=top, minlength=bins) / counts
        accuracy = np.bincount(index, weights=correct, minlength=bins) / counts
    return confidence, accuracy, counts


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared error of the probabilities: for two classes, of the positive class's
    probability against 0/1 (Brier 1950, as clinical papers report it); for more, summed over classes."""
    if probs.shape[1] == 2:
        return float(np.mean((probs[:, 1] - labels) ** 2))
    onehot = np.eye(probs.shape[1])[labels]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def sensitivity_at_specificity(scores: np.ndarray, labels: np.ndarray, target: float = 0.95) -> float:
    """The highest sensitivity among thresholds whose specificity is at least `target`, read off
    the empirical ROC curve (its points, no interpolation)."""
    fpr, tpr = roc_curve(scores, labels)
    ok = (1 - fpr) >= target - 1e-12
    return float(tpr[ok].max()) if ok.any() else float("nan")


def specificity_at_sensitivity(scores: np.ndarray, labels: np.ndarray, target: float = 0.95) -> float:
    """The highest specificity among thresholds whose sensitivity is at least `target`."""
    fpr, tpr = roc_curve(scores, labels)
    ok = tpr >= target - 1e-12
    return float((1 - fpr[ok]).max()) if ok.any() else float("nan")


# ---- DeLong's test for AUCs ----------------------------------------------------------------------

def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2)[inverse.reshape(-1)]


def delong_components(scores: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's structural components (placement values): V10 for each positive (the share
    of negatives it outscores, ties half) and V01 for each negative (the share of positives that
    outscore it), by midranks (Sun & Xu 2014) rather than the m x n comparisons."""
    labels = np.asarray(labels).astype(bool)
    pos, neg = np.asarray(scores, float)[labels], np.asarray(scores, float)[~labels]
    m, n = len(pos), len(neg)
    both = _midranks(np.concatenate([pos, neg]))
    v10 = (both[:m] - _midranks(pos)) / n
    v01 = 1.0 - (both[m:] - _midranks(neg)) / m
    return float(v10.mean()), v10, v01


def delong_variance(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(AUC, its variance by DeLong et al. 1988)."""
    auc, v10, v01 = delong_components(scores, labels)
    return auc, float(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01))


def delong_interval(scores: np.ndarray, labels: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of an AUC from DeLong's variance (normal), clipped to [0, 1]."""
    from scipy import stats

    auc, var = delong_variance(scores, labels)
    half = float(stats.norm.ppf(0.5 + level / 2)) * math.sqrt(var)
    return max(0.0, auc - half), min(1.0, auc + half)


def delong_test(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """DeLong's paired test of two AUCs on the same images: (z, two-sided p)."""
    from scipy import stats

    auc_a, a10, a01 = delong_components(scores_a, labels)
    auc_b, b10, b01 = delong_components(scores_b, labels)
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    cov = s10 / len(a10) + s01 / len(a01)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    if var <= 0:
        return 0.0, 1.0 if auc_a == auc_b else 0.0
    z = (auc_a - auc_b) / math.sqrt(var)
    return float(z), float(2 * stats.norm.sf(abs(z)))


# ---- beyond accuracy: corruptions, time to accuracy, per class -----------------------------------

def corruption_errors(accuracies: dict[str, dict[int, float]]) -> dict[str, float]:
    """Per corruption, the top-1 error summed over its severities 1-5 (severity 0, the clean image,
    left out): the E of Hendrycks & Dietterich's CE, before normalising."""
    return {name: float(sum(1.0 - acc for severity, acc in by_severity.items() if int(severity) > 0))
            for name, by_severity in accuracies.items()}


def mean_corruption_error(accuracies: dict[str, dict[int, float]],
                          baseline: dict[str, dict[int, float]] | None = None) -> tuple[float, dict[str, float]]:
    """(mCE, CE per corruption) in %, Hendrycks & Dietterich (ICLR 2019): CE_c = sum_s E_s,c / sum_s
    E_s,c(baseline), mCE their mean over corruptions; without a baseline, unnormalised: the mean
    error over the severities 1-5 of each corruption, then over corruptions. The baseline must have
    been scored on every corruption and severity given."""
    errors = corruption_errors(accuracies)
    if baseline is None:
        per = {name: 100 * total / sum(int(s) > 0 for s in accuracies[name]) for name, total in errors.items()}
    else:
        missing = [(name, s) for name, by in accuracies.items() for s in by if int(s) > 0
                   and s not in baseline.get(name, {})]
        if missing:
            raise ValueError(f"the baseline has no score for {missing[0][0]} at severity {missing[0][1]}")
        base = corruption_errors({name: {s: baseline[name][s] for s in by if int(s) > 0}
                                  for name, by in accuracies.items()})
        per = {name: 100 * total / base[name] if base[name] else float("nan") for name, total in errors.items()}
    return (float(np.mean(list(per.values()))) if per else float("nan")), per


def time_to_accuracy(history: list[dict], target: float) -> dict | None:
    """The first epoch whose validation accuracy reaches `target`, as DAWNBench reports it:
    {epoch, train_seconds (training only, summed to that epoch), train_cpu_seconds (its CPU time, None
    if an epoch up to it has none), wall_seconds (with evaluation)}; None if no epoch does. Reads the
    validation accuracy of every epoch."""
    train = wall = 0.0
    cpu: float | None = 0.0
    for record in history:
        train += record.get("train_seconds", 0.0)
        cpu = None if cpu is None or record.get("train_cpu_seconds") is None else cpu + record["train_cpu_seconds"]
        wall += record.get("train_seconds", 0.0) + record.get("eval_seconds", 0.0)
        acc = record["val"].get("acc")
        if acc is not None and acc >= target - 1e-12:  # an epoch with no accuracy reaches nothing
            return {"epoch": record["epoch"], "train_seconds": train, "train_cpu_seconds": cpu, "wall_seconds": wall}
    return None


def per_class_scores(matrix) -> list[dict[str, float]]:
    """Recall, precision and F1 of each class from a confusion matrix (rows: true class, columns:
    predicted), with its number of images; nan where a ratio has nothing to count."""
    matrix = np.asarray(matrix, float)
    out = []
    for c in range(len(matrix)):
        tp, actual, predicted = matrix[c, c], matrix[c].sum(), matrix[:, c].sum()
        recall = tp / actual if actual else float("nan")
        precision = tp / predicted if predicted else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else \
            (0.0 if actual else float("nan"))
        out.append({"recall": float(recall), "precision": float(precision), "f1": float(f1), "images": int(actual)})
    return out
