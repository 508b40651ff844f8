"""Trial- or segment-level classification scores, with a binomial test against chance."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    roc_auc_score,
)


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    *,
    n_classes: int | None = None,
    confidence_level: float = 0.95,
) -> dict:
    """Accuracy, balanced accuracy, Cohen's kappa, two-class ROC-AUC and a test against chance.

    Parameters
    ----------
    y_true : array of shape (n,)
        True class indices.
    probabilities : array of shape (n, n_classes)
        Predicted class probabilities (or any scores monotonic in them); the prediction is
        their arg-max.
    n_classes : int, optional
        Number of classes (default: ``probabilities.shape[1]``).
    confidence_level : float
        Level of the one-sided binomial lower confidence bound on accuracy.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``kappa``, ``roc_auc`` (two classes only, NaN
        when ``y_true`` holds a single class), ``confusion_matrix`` (rows true, columns
        predicted) and the fields of :func:`above_chance`.
    """
    y_true = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"probabilities must be (n, n_classes) with n = {y_true.shape[0]}, "
            f"got {probabilities.shape}"
        )
    n_classes = n_classes or probabilities.shape[1]
    labels = np.arange(n_classes)
    y_pred = probabilities.argmax(axis=1)
    metrics: dict = {
        "n": int(y_true.size),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(_balanced_accuracy(y_true, y_pred)),
        "kappa": float(cohen_kappa_score(y_true, y_pred, labels=labels)),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    if n_classes == 2:
        two_classes = np.unique(y_true).size == 2
        metrics["roc_auc"] = (
            float(roc_auc_score(y_true, probabilities[:, 1])) if two_classes else float("nan")
        )
    n_correct = int((y_true == y_pred).sum())
    chance = chance_level(y_true, n_classes)
    metrics |= above_chance(n_correct, int(y_true.size), chance, confidence_level)
    return metrics


def per_recording_metrics(
    y_true: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    recordings: Sequence[str] | np.ndarray,
    *,
    n_classes: int | None = None,
) -> dict | None:
    """:func:`classification_metrics` of whole recordings: each recording's class
    probabilities are the mean over its windows (e.g. Bonn's 23.6-s segments, which the
    literature classifies whole).

    Returns ``None`` where that means nothing: every recording has one window, or some
    recording holds windows of several classes.
    """
    y_true = np.asarray(y_true, dtype=int)
    recordings = np.asarray(recordings).astype(str)
    names, index = np.unique(recordings, return_inverse=True)
    if names.size == recordings.size:
        return None
    labels = np.full(names.size, -1)
    for group, label in zip(index, y_true, strict=True):
        if labels[group] not in (-1, label):
            return None
        labels[group] = label
    probabilities = np.asarray(probabilities, dtype=float)
    totals = np.zeros((names.size, probabilities.shape[1]))
    np.add.at(totals, index, probabilities)
    means = totals / np.bincount(index, minlength=names.size)[:, None]
    return classification_metrics(labels, means, n_classes=n_classes)


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    # scikit-learn warns when a predicted class is absent from y_true; the score is still right
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return balanced_accuracy_score(y_true, y_pred)


def chance_level(y_true: Sequence[int] | np.ndarray, n_classes: int) -> float:
    """Accuracy of always guessing the most frequent true class (1 / n_classes if balanced)."""
    counts = np.bincount(np.asarray(y_true, dtype=int), minlength=n_classes)
    return float(counts.max() / counts.sum()) if counts.sum() else 1.0 / n_classes


def above_chance(
    n_correct: int, n_trials: int, chance: float, confidence_level: float = 0.95
) -> dict:
    """One-sided exact binomial test of accuracy against a chance level.

    Parameters
    ----------
    n_correct, n_trials : int
        Correct predictions and number of predictions.
    chance : float
        Accuracy expected by chance.
    confidence_level : float
        Level of the lower (Clopper-Pearson) confidence bound.

    Returns
    -------
    dict
        ``chance``, ``accuracy_lower_bound`` (the accuracy is at least this with the given
        confidence), ``p_value`` (H0: accuracy ≤ chance) and ``above_chance`` (lower bound
        strictly above chance).
    """
    if n_trials == 0:
        raise ValueError("no predictions to test against chance")
    test = binomtest(n_correct, n_trials, p=chance, alternative="greater")
    lower = float(test.proportion_ci(confidence_level=confidence_level, method="exact").low)
    return {
        "chance": float(chance),
        "accuracy_lower_bound": lower,
        "confidence_level": float(confidence_level),
        "p_value": float(test.pvalue),
        "above_chance": bool(lower > chance),
    }
