"""Zero-shot EEG → image retrieval scored as in THINGS-EEG2 work (n-way top-k).

The test set holds concepts never seen in training. The EEG embeddings of each test concept's
repetitions are averaged into one query; the gallery holds one image embedding per test
concept (200 in THINGS-EEG2, hence "200-way"); a query is correct at ``k`` when its own
concept's image is among the ``k`` most cosine-similar gallery images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def average_repetitions(
    embeddings: np.ndarray, concepts: Sequence | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Average the embeddings of repeated presentations of each concept.

    Parameters
    ----------
    embeddings : array of shape (n_trials, dim)
        One embedding per trial.
    concepts : array of shape (n_trials,)
        The concept (image) identifier of each trial.

    Returns
    -------
    concepts : array of shape (n_concepts,)
        Sorted unique identifiers.
    averaged : array of shape (n_concepts, dim)
        Mean embedding per concept, in the same order.
    """
    embeddings = np.asarray(embeddings, dtype=float)
    concepts = np.asarray(concepts)
    if embeddings.ndim != 2 or embeddings.shape[0] != concepts.shape[0]:
        raise ValueError(
            f"embeddings must be (n_trials, dim) with n_trials = {concepts.shape[0]}, "
            f"got {embeddings.shape}"
        )
    unique, inverse = np.unique(concepts, return_inverse=True)
    sums = np.zeros((unique.size, embeddings.shape[1]))
    np.add.at(sums, inverse, embeddings)
    return unique, sums / np.bincount(inverse)[:, None]


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def top_k_accuracy(
    queries: np.ndarray,
    gallery: np.ndarray,
    targets: Sequence[int] | np.ndarray,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """Fraction of queries whose target gallery item is among the ``k`` most cosine-similar.

    Parameters
    ----------
    queries : array of shape (n_queries, dim)
    gallery : array of shape (n_gallery, dim)
    targets : array of shape (n_queries,)
        Index into ``gallery`` of each query's correct item.
    ks : sequence of int
        Ranks at which to score.

    Returns
    -------
    dict
        ``top{k}`` for each ``k``, plus ``n_way`` (gallery size) and ``chance_top{k}``.
    """
    queries, gallery = np.asarray(queries, dtype=float), np.asarray(gallery, dtype=float)
    targets = np.asarray(targets, dtype=int)
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"queries ({queries.shape[1]}) and gallery ({gallery.shape[1]}) differ in dimension"
        )
    similarity = _normalise(queries) @ _normalise(gallery).T
    target_similarity = similarity[np.arange(len(targets)), targets]
    # rank = number of other gallery items at least as similar as the target: ties count
    # against it, so a collapsed embedding (all similarities equal) scores as the worst rank
    at_least = (similarity >= target_similarity[:, None]).sum(axis=1)
    rank = at_least - 1
    n_way = gallery.shape[0]
    result: dict[str, float] = {"n_way": n_way}
    for k in ks:
        result[f"top{k}"] = float((rank < k).mean())
        result[f"chance_top{k}"] = min(k, n_way) / n_way
    return result


def zero_shot_retrieval(
    eeg_embeddings: np.ndarray,
    eeg_concepts: Sequence | np.ndarray,
    image_embeddings: np.ndarray,
    image_concepts: Sequence | np.ndarray,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """n-way zero-shot top-k: averaged test repetitions against the test concepts' images.

    Parameters
    ----------
    eeg_embeddings : array of shape (n_trials, dim)
        Projected EEG embeddings of the test trials.
    eeg_concepts : array of shape (n_trials,)
        Concept of each trial.
    image_embeddings : array of shape (n_images, dim)
        One embedding per candidate concept; the gallery is restricted to the concepts that
        occur in ``eeg_concepts``.
    image_concepts : array of shape (n_images,)
        Concept of each image embedding.
    ks : sequence of int
        Ranks at which to score.
    """
    concepts, queries = average_repetitions(eeg_embeddings, eeg_concepts)
    image_concepts = np.asarray(image_concepts)
    position = {c: i for i, c in enumerate(image_concepts.tolist())}
    missing = [c for c in concepts.tolist() if c not in position]
    if missing:
        raise ValueError(f"no image embedding for test concepts {missing[:5]}")
    gallery = np.asarray(image_embeddings)[[position[c] for c in concepts.tolist()]]
    return top_k_accuracy(queries, gallery, np.arange(concepts.size), ks)
