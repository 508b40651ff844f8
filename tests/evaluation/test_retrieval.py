"""Zero-shot top-k retrieval on constructed embeddings whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from neurodecode.evaluation.retrieval import (
    average_repetitions,
    top_k_accuracy,
    zero_shot_retrieval,
)


def test_average_repetitions_groups_by_concept():
    concepts, avg = average_repetitions(np.array([[1.0, 0], [3.0, 2], [5.0, 5]]), ["b", "b", "a"])
    assert concepts.tolist() == ["a", "b"]
    assert avg.tolist() == [[5.0, 5.0], [2.0, 1.0]]


def test_top_k_counts_ranks():
    gallery = np.eye(4)
    # query 0 points at item 0; query 1 is closest to item 2, then item 1
    queries = np.array([[1.0, 0, 0, 0], [0, 0.5, 0.9, 0]])
    result = top_k_accuracy(queries, gallery, [0, 1], ks=(1, 2))
    assert result["top1"] == 0.5 and result["top2"] == 1.0
    assert result["n_way"] == 4 and result["chance_top1"] == 0.25


def test_200_way_with_averaged_noisy_repetitions_beats_single_trials():
    rng = np.random.default_rng(0)
    n_concepts, dim, reps = 200, 32, 4
    images = rng.standard_normal((n_concepts, dim))
    concepts = np.repeat(np.arange(n_concepts), reps)
    eeg = images[concepts] + 2.0 * rng.standard_normal((concepts.size, dim))
    averaged = zero_shot_retrieval(eeg, concepts, images, np.arange(n_concepts))
    single = top_k_accuracy(eeg[::reps], images, np.arange(n_concepts))
    assert averaged["n_way"] == 200
    assert averaged["top1"] > single["top1"] > 1 / 200
    assert averaged["top5"] >= averaged["top1"]


def test_missing_image_embedding_is_reported():
    with pytest.raises(ValueError, match="no image embedding"):
        zero_shot_retrieval(np.ones((2, 3)), [0, 7], np.ones((2, 3)), [0, 1])


def test_collapsed_embeddings_score_as_worst_not_best():
    """All-zero EEG embeddings tie with every image: that must not count as a hit."""
    gallery = np.random.default_rng(0).normal(size=(50, 8))
    result = top_k_accuracy(np.zeros((50, 8)), gallery, np.arange(50), ks=(1, 5))
    assert result["top1"] == 0.0 and result["top5"] == 0.0


def test_identical_embeddings_hit_at_most_one_concept():
    """One embedding for every trial can be nearest to one image only (chance or worse)."""
    gallery = np.random.default_rng(0).normal(size=(50, 8))
    result = top_k_accuracy(np.ones((50, 8)), gallery, np.arange(50), ks=(1,))
    assert result["top1"] <= 1 / 50
