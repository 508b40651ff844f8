"""Paired comparisons: sign-flip and Wilcoxon across splits, McNemar on identical trials."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binomtest, wilcoxon

from neurodecode.evaluation.comparison import (
    mcnemar_exact,
    paired_comparison,
    sign_flip_p_value,
)


def test_sign_flip_p_value_by_hand():
    # 3 positive differences: of the 8 sign patterns only all-plus and all-minus reach the
    # observed |mean| → p = 2/8
    assert sign_flip_p_value(np.array([0.1, 0.2, 0.3])) == pytest.approx(0.25)
    # one negative difference: count the sign patterns by brute force
    d = np.array([0.3, 0.2, -0.1])
    means = [abs(np.mean(np.array(s) * d)) for s in itertools.product((1, -1), repeat=3)]
    count = sum(m >= abs(d.mean()) - 1e-12 for m in means)
    assert count == 4  # (+,+,±) and (-,-,±)
    assert sign_flip_p_value(d) == pytest.approx(count / 8)


def test_paired_comparison_across_splits():
    model = [0.90, 0.92, 0.95, 0.91, 0.93]
    baseline = [0.85, 0.86, 0.90, 0.88, 0.90]
    result = paired_comparison(model, baseline)
    assert result["n_pairs"] == 5 and result["test"] == "sign-flip exact"
    assert result["mean_difference"] == pytest.approx(0.044)
    assert (result["wins"], result["ties"], result["losses"]) == (5, 0, 0)
    assert result["p_value"] == pytest.approx(2 / 32)  # the smallest possible with 5 pairs
    # swapped: the same p, the opposite difference
    swapped = paired_comparison(baseline, model)
    assert swapped["p_value"] == result["p_value"]
    assert swapped["mean_difference"] == pytest.approx(-0.044)
    # identical scores: no evidence at all
    assert paired_comparison(model, model)["p_value"] == 1.0


def test_paired_comparison_many_pairs_uses_wilcoxon():
    rng = np.random.default_rng(0)
    a = rng.normal(size=30)
    b = a - 0.5 + rng.normal(scale=0.1, size=30)
    result = paired_comparison(a, b)
    assert result["test"] == "wilcoxon"
    assert result["p_value"] == pytest.approx(wilcoxon(a - b).pvalue)


def test_paired_comparison_one_pair_has_no_test_and_bad_input_is_refused():
    single = paired_comparison([0.9], [0.8])
    assert single["p_value"] is None and single["sd_difference"] is None
    with pytest.raises(ValueError, match="equal"):
        paired_comparison([0.9, 0.8], [0.8])
    with pytest.raises(ValueError, match="finite"):
        paired_comparison([0.9, float("nan")], [0.8, 0.7])


def test_mcnemar_exact_counts_discordant_trials():
    model = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1, 1], bool)
    baseline = np.array([1, 0, 0, 0, 0, 1, 1, 0, 1, 1], bool)
    result = mcnemar_exact(model, baseline)
    assert (result["model_only"], result["baseline_only"]) == (4, 1)
    assert result["n_trials"] == 10
    assert result["accuracy_difference"] == pytest.approx(0.3)
    assert result["p_value"] == pytest.approx(binomtest(4, 5, 0.5).pvalue)  # 0.375
    agree = mcnemar_exact(model, model)
    assert agree["p_value"] == 1.0 and agree["model_only"] == agree["baseline_only"] == 0
    with pytest.raises(ValueError, match="same"):
        mcnemar_exact(model, baseline[:5])
