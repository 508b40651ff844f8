"""Classification scores and the binomial test against chance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurodecode.evaluation.classification import (
    above_chance,
    classification_metrics,
    per_recording_metrics,
)


def test_metrics_on_a_hand_worked_two_class_example():
    y = np.array([0, 0, 0, 1, 1, 1])
    p1 = np.array([0.1, 0.4, 0.6, 0.7, 0.8, 0.3])  # predictions 0 0 1 1 1 0
    m = classification_metrics(y, np.stack([1 - p1, p1], axis=1))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx(4 / 6)
    # kappa = (po - pe) / (1 - pe) with po = 4/6, pe = 0.5
    assert m["kappa"] == pytest.approx((4 / 6 - 0.5) / 0.5)
    # AUC: (neg, pos) pairs ranked right: 0.1 < all 3 positives, 0.4 and 0.6 < 0.7, 0.8 → 7/9
    assert m["roc_auc"] == pytest.approx(7 / 9)
    assert m["confusion_matrix"] == [[2, 1], [1, 2]]
    assert m["chance"] == 0.5 and not m["above_chance"]


def test_roc_auc_is_nan_with_a_single_true_class():
    m = classification_metrics([1, 1], np.array([[0.2, 0.8], [0.6, 0.4]]))
    assert math.isnan(m["roc_auc"])


def test_four_classes_have_no_auc_and_a_majority_chance():
    y = np.array([0, 0, 1, 2, 3, 0])
    probs = np.eye(4)[y]
    m = classification_metrics(y, probs)
    assert "roc_auc" not in m and m["accuracy"] == 1.0 and m["kappa"] == 1.0
    assert m["chance"] == pytest.approx(0.5)


def test_binomial_bound():
    strong = above_chance(80, 100, 0.5)
    assert strong["above_chance"] and 0.5 < strong["accuracy_lower_bound"] < 0.8
    assert strong["p_value"] < 1e-6
    weak = above_chance(55, 100, 0.5)
    assert not weak["above_chance"] and weak["p_value"] > 0.05


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="n_classes"):
        classification_metrics([0, 1, 1], np.ones((2, 2)))


def test_whole_recordings_are_scored_on_their_mean_window_probabilities():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    recordings = np.array(["S001", "S001", "S001", "Z001", "Z001", "Z002", "Z002", "Z002"])
    # S001: one window of three wrong, the mean right; Z002: two of three wrong, the mean too
    p1 = np.array([0.9, 0.8, 0.4, 0.2, 0.1, 0.7, 0.6, 0.3])
    proba = np.column_stack([1 - p1, p1])
    whole = per_recording_metrics(y, proba, recordings)
    assert whole["n"] == 3 and whole["confusion_matrix"] == [[1, 1], [0, 1]]
    assert whole["accuracy"] == pytest.approx(2 / 3)
    assert classification_metrics(y, proba)["accuracy"] == pytest.approx(5 / 8)
    # meaningless: one window per recording, or a recording with windows of two classes
    assert per_recording_metrics(y[:3], proba[:3], ["a", "b", "c"]) is None
    assert per_recording_metrics(y, proba, ["a"] * 8) is None
