"""Paired comparisons of two models scored on the same data.

Two questions, two tests:

- across folds or seeds (:func:`paired_comparison`): one score per split for each model,
  paired by split; the mean difference, with an exact sign-flip permutation test (every
  one of the ``2**n`` sign patterns) for up to :data:`EXACT_SIGN_FLIP_MAX` pairs, and
  Wilcoxon's signed-rank test beyond;
- on the identical test trials of one split (:func:`mcnemar_exact`): which trials one model
  gets right and the other wrong, with McNemar's exact (binomial) test on those discordant
  trials.

Both are two-sided and return plain dicts that go into ``results.json`` as they are.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest, wilcoxon

#: Up to this many pairs the sign-flip test enumerates every sign pattern (2**20 ≈ 1e6).
EXACT_SIGN_FLIP_MAX = 20


def paired_comparison(
    model_scores: Sequence[float] | np.ndarray, baseline_scores: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    """Compare two models' scores paired by split (fold or seed), model minus baseline.

    Parameters
    ----------
    model_scores, baseline_scores : sequence of float
        One score per split (e.g. test accuracy), in the same order of splits.

    Returns
    -------
    dict
        ``n_pairs``; ``mean_difference`` and ``sd_difference`` (model − baseline);
        ``wins``, ``ties``, ``losses`` of the model; ``p_value`` (two-sided) and ``test``
        (``"sign-flip exact"`` or ``"wilcoxon"``). With one pair there is no test:
        ``p_value`` is None.

    Raises
    ------
    ValueError
        If the two sequences differ in length, are empty, or hold a non-finite score.
    """
    a = np.asarray(model_scores, dtype=float)
    b = np.asarray(baseline_scores, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not a.size:
        raise ValueError(
            f"paired scores need two equal, non-empty lists; got {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired scores must be finite numbers (a split without a score?)")
    diff = a - b
    result: dict[str, Any] = {
        "n_pairs": int(diff.size),
        "mean_difference": float(diff.mean()),
        "sd_difference": float(diff.std(ddof=1)) if diff.size > 1 else None,
        "wins": int((diff > 0).sum()),
        "ties": int((diff == 0).sum()),
        "losses": int((diff < 0).sum()),
        "p_value": None,
        "test": None,
    }
    if diff.size < 2:
        return result
    if diff.size <= EXACT_SIGN_FLIP_MAX:
        result.update(p_value=sign_flip_p_value(diff), test="sign-flip exact")
    else:
        nonzero = diff[diff != 0]
        p = float(wilcoxon(nonzero).pvalue) if nonzero.size else 1.0
        result.update(p_value=p, test="wilcoxon")
    return result


def sign_flip_p_value(differences: np.ndarray) -> float:
    """Two-sided exact p-value of a paired sign-flip permutation test on the mean.

    Under the null hypothesis each difference is as likely positive as negative; the
    p-value is the share of all ``2**n`` sign patterns whose mean is at least as far from
    zero as the observed one.
    """
    d = np.asarray(differences, dtype=float)
    if d.size > EXACT_SIGN_FLIP_MAX:
        raise ValueError(f"{d.size} pairs: the exact test enumerates at most {EXACT_SIGN_FLIP_MAX}")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    means = np.abs(signs @ d) / d.size
    observed = abs(d.mean())
    # a relative tolerance keeps the observed pattern itself counted despite rounding
    return float(np.mean(means >= observed - 1e-12 * max(1.0, observed)))


def mcnemar_exact(
    model_correct: Sequence[bool] | np.ndarray, baseline_correct: Sequence[bool] | np.ndarray
) -> dict[str, Any]:
    """McNemar's exact test of two models on the identical test trials.

    Parameters
    ----------
    model_correct, baseline_correct : sequence of bool
        Whether each model classified each trial correctly, the trials in the same order.

    Returns
    -------
    dict
        ``n_trials``; ``model_only`` (trials the model gets right and the baseline wrong)
        and ``baseline_only`` (the reverse); ``accuracy_difference`` (model − baseline);
        ``p_value``, the two-sided exact binomial test of the discordant trials against
        one half (1.0 when there are none); ``test``: ``"mcnemar exact"``.
    """
    a = np.asarray(model_correct, dtype=bool)
    b = np.asarray(baseline_correct, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or not a.size:
        raise ValueError(
            f"McNemar's test needs the same, non-empty trials; got {a.shape} and {b.shape}"
        )
    model_only = int((a & ~b).sum())
    baseline_only = int((~a & b).sum())
    discordant = model_only + baseline_only
    p = binomtest(model_only, discordant, 0.5).pvalue if discordant else 1.0
    return {
        "n_trials": int(a.size),
        "model_only": model_only,
        "baseline_only": baseline_only,
        "accuracy_difference": (model_only - baseline_only) / a.size,
        "p_value": float(p),
        "test": "mcnemar exact",
    }
