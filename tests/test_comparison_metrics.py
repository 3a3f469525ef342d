"""Calibration, operating points and DeLong's test against values computed by hand or by the
definition itself (every positive-negative pair compared), independently of the fast formulas."""
import math

import numpy as np
import pytest

from runner import metrics


def test_ece_and_brier_by_hand():
    probs = np.array([[0.1, 0.9], [0.17, 0.83], [0.62, 0.38], [0.44, 0.56]])
    labels = np.array([1, 0, 0, 1])
    # top probabilities .90 (right), .83 (wrong), .62 (right), .56 (right); 15 bins of width 1/15:
    # .90 -> bin 13, .83 -> bin 12, .62 -> bin 9, .56 -> bin 8, one image each
    gaps = [abs(1 - 0.90), abs(0 - 0.83), abs(1 - 0.62), abs(1 - 0.56)]
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(sum(gaps) / 4)
    # two images in one bin: the gap of their mean confidence and their accuracy
    probs2 = np.array([[0.1, 0.9], [0.08, 0.92]])
    assert metrics.expected_calibration_error(probs2, np.array([1, 0])) == pytest.approx(abs(0.5 - 0.91))
    assert metrics.brier_score(probs, labels) == pytest.approx(((0.9 - 1) ** 2 + 0.83 ** 2 + 0.38 ** 2 + (0.56 - 1) ** 2) / 4)
    three = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert metrics.brier_score(three, np.array([0, 1])) == pytest.approx(((0.09 + 0.04 + 0.01) + (0.01 + 0.81 + 0.64)) / 2)
    confidence, accuracy, counts = metrics.reliability_bins(probs, labels)
    assert counts.sum() == 4 and counts[13] == 1 and accuracy[12] == 0 and confidence[9] == pytest.approx(0.62)


def test_operating_points_on_a_constructed_roc():
    # 20 negatives scored 0.00..0.19, 10 positives: four above every negative, the rest among them
    negatives = np.arange(20) / 100
    positives = np.array([0.9, 0.8, 0.7, 0.6, 0.185, 0.175, 0.165, 0.155, 0.05, 0.01])
    scores = np.concatenate([negatives, positives])
    labels = np.concatenate([np.zeros(20, int), np.ones(10, int)])
    # specificity >= 95 % allows one false positive (0.19): the positives above 0.18 are found, 5 of 10
    assert metrics.sensitivity_at_specificity(scores, labels, 0.95) == pytest.approx(0.5)
    # with 100 %: no false positive, only the four above 0.19
    assert metrics.sensitivity_at_specificity(scores, labels, 1.0) == pytest.approx(0.4)
    # sensitivity >= 95 % needs every positive down to 0.01: negatives above it are false positives
    assert metrics.specificity_at_sensitivity(scores, labels, 0.95) == pytest.approx(1 / 20)
    # sensitivity >= 80 %: down to 0.155, above which lie four negatives (0.16-0.19)
    assert metrics.specificity_at_sensitivity(scores, labels, 0.80) == pytest.approx(16 / 20)


def placements(scores, labels):
    """Definition of DeLong's components: every positive against every negative."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(1), psi.mean(0)


def test_delong_variance_by_hand():
    scores = np.array([0.9, 0.8, 0.4, 0.7, 0.3])
    labels = np.array([1, 1, 1, 0, 0])
    # V10 = (1, 1, 1/2), V01 = (2/3, 1): AUC 5/6, variance var(V10)/3 + var(V01)/2 = 1/36 + 1/36
    auc, var = metrics.delong_variance(scores, labels)
    assert auc == pytest.approx(5 / 6) and var == pytest.approx(1 / 18)
    low, high = metrics.delong_interval(scores, labels)
    assert low == pytest.approx(5 / 6 - 1.959964 * math.sqrt(1 / 18)) and high == 1.0


def test_delong_paired_test_against_the_definition_with_ties():
    rng = np.random.default_rng(3)
    labels = (rng.random(120) < 0.45).astype(int)
    a = np.round(labels * 0.8 + rng.normal(0, 0.6, 120), 1)  # rounded: many ties
    b = np.round(labels * 0.4 + rng.normal(0, 0.6, 120), 1)
    a10, a01 = placements(a, labels)
    b10, b01 = placements(b, labels)
    assert metrics.delong_components(a, labels)[0] == pytest.approx(a10.mean())
    assert metrics.delong_components(a, labels)[0] == pytest.approx(metrics.roc_auc(a, labels))
    np.testing.assert_allclose(metrics.delong_components(a, labels)[1], a10)
    np.testing.assert_allclose(metrics.delong_components(a, labels)[2], a01)
    var = (np.var(a10, ddof=1) + np.var(b10, ddof=1) - 2 * np.cov(a10, b10)[0, 1]) / len(a10) + \
          (np.var(a01, ddof=1) + np.var(b01, ddof=1) - 2 * np.cov(a01, b01)[0, 1]) / len(a01)
    z = (a10.mean() - b10.mean()) / math.sqrt(var)
    got_z, got_p = metrics.delong_test(a, b, labels)
    assert got_z == pytest.approx(z) and got_p == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    assert metrics.delong_test(a, a, labels) == (0.0, 1.0)


def test_t_intervals_beyond_ten_degrees_of_freedom_and_welch():
    values = np.arange(15, dtype=float)
    mean, std, low, high = metrics.mean_std_interval(values)
    # t(0.975, 14) = 2.1448 (tables); the old lookup fell back to 1.96 beyond 10 degrees of freedom
    assert high - mean == pytest.approx(2.144787 * std / math.sqrt(15), rel=1e-5)
    # Welch's t on two groups of three seeds, by hand: t = -2.4495, df = 4, p = 0.0705
    assert metrics.welch_p([0.90, 0.92, 0.94], [0.94, 0.96, 0.98]) == pytest.approx(0.0705, abs=5e-4)
    assert metrics.welch_p([0.9], [0.8, 0.7]) is None
