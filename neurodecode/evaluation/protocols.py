"""Evaluation protocols with MOABB's semantics, as fold generators over a window index.

The index is the ``WindowCache.index`` DataFrame (one row per trial or window, with at least
``subject``, ``session`` and ``label`` columns). Each protocol yields :class:`Fold` objects
holding integer positions into that index:

- ``within_session``: for every (subject, session), stratified k-fold over its trials
  (MOABB ``WithinSessionEvaluation``: 5 folds, shuffled with a fixed seed);
- ``cross_session``: for every subject with at least two sessions, leave one session out
  (MOABB ``CrossSessionEvaluation``);
- ``cross_subject``: leave one subject out over all subjects (MOABB
  ``CrossSubjectEvaluation``).

A fold whose training part lacks a class present in its test part is refused, with the
subject/session named, rather than silently scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from neurodecode.errors import ConfigError, UnknownNameError

REQUIRED_COLUMNS = ("subject", "session", "label")


@dataclass(frozen=True)
class Fold:
    """One train/test split: integer positions into the index."""

    name: str
    train: np.ndarray
    test: np.ndarray


def _check(index: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in index.columns]
    if missing:
        raise ConfigError(f"the window index lacks column(s) {missing} needed for evaluation")
    if index["label"].nunique() < 2:
        raise ConfigError(
            f"the data hold a single class ({index['label'].iloc[0]!r}); "
            "classification needs at least two"
        )


def _checked_fold(index: pd.DataFrame, name: str, train: np.ndarray, test: np.ndarray) -> Fold:
    absent = set(index["label"].iloc[test]) - set(index["label"].iloc[train])
    if absent:
        raise ConfigError(f"fold {name}: class(es) {sorted(absent)} are absent from training")
    return Fold(name, np.sort(train), np.sort(test))


def within_session(index: pd.DataFrame, n_folds: int = 5, seed: int = 42) -> Iterator[Fold]:
    """Stratified ``n_folds``-fold cross-validation inside each (subject, session)."""
    _check(index)
    for (subject, session), group in index.groupby(["subject", "session"], sort=True):
        positions = index.index.get_indexer(group.index)
        counts = group["label"].value_counts()
        if counts.min() < n_folds:
            raise ConfigError(
                f"subject {subject} session {session}: class {counts.idxmin()!r} has "
                f"{counts.min()} trials, fewer than the {n_folds} folds asked for"
            )
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for k, (train, test) in enumerate(splitter.split(positions, group["label"])):
            name = f"sub-{subject}_ses-{session}_fold-{k}"
            yield _checked_fold(index, name, positions[train], positions[test])


def cross_session(index: pd.DataFrame) -> Iterator[Fold]:
    """Leave one session out, separately for each subject with at least two sessions."""
    _check(index)
    yielded = False
    for subject, group in index.groupby("subject", sort=True):
        sessions = sorted(group["session"].unique())
        if len(sessions) < 2:
            continue
        positions = index.index.get_indexer(group.index)
        for session in sessions:
            in_session = (group["session"] == session).to_numpy()
            name = f"sub-{subject}_test-ses-{session}"
            yield _checked_fold(index, name, positions[~in_session], positions[in_session])
            yielded = True
    if not yielded:
        raise ConfigError("cross-session evaluation needs a subject with at least two sessions")


def cross_subject(index: pd.DataFrame) -> Iterator[Fold]:
    """Leave one subject out."""
    _check(index)
    subjects = sorted(index["subject"].unique())
    if len(subjects) < 2:
        raise ConfigError("cross-subject evaluation needs at least two subjects")
    for subject in subjects:
        is_test = (index["subject"] == subject).to_numpy()
        positions = np.arange(len(index))
        yield _checked_fold(index, f"test-sub-{subject}", positions[~is_test], positions[is_test])


PROTOCOLS: dict[str, Callable[..., Iterator[Fold]]] = {
    "within_session": within_session,
    "cross_session": cross_session,
    "cross_subject": cross_subject,
}


def folds(index: pd.DataFrame, protocol: str, **kwargs) -> Iterator[Fold]:
    """Folds of the protocol named ``protocol`` (one of :data:`PROTOCOLS`)."""
    if protocol not in PROTOCOLS:
        raise UnknownNameError(
            f"unknown evaluation protocol {protocol!r}; valid protocols are: "
            + ", ".join(sorted(PROTOCOLS))
        )
    return PROTOCOLS[protocol](index, **kwargs)


def zero_shot_split(
    index: pd.DataFrame,
    *,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hold out whole concepts (labels): THINGS-EEG2's zero-shot protocol.

    Test concepts are never seen in training; validation concepts (for model selection) are
    carved from the training concepts, never from the test ones. Every trial of a concept,
    from every subject and session, lands in the same part.

    Returns
    -------
    train, valid, test : numpy.ndarray
        Sorted positions into ``index``.
    """
    labels = index["label"].to_numpy()
    concepts = np.unique(labels[labels >= 0])
    n_test = max(1, round(test_fraction * concepts.size))
    n_valid = max(1, round(valid_fraction * concepts.size)) if valid_fraction else 0
    if n_test + n_valid >= concepts.size:
        raise ConfigError(
            f"{concepts.size} concept(s) cannot be split into training, validation "
            f"({valid_fraction:g}) and test ({test_fraction:g}) concepts"
        )
    order = np.random.default_rng(seed).permutation(concepts)
    test, valid = order[:n_test], order[n_test : n_test + n_valid]
    part = np.where(np.isin(labels, test), 2, np.where(np.isin(labels, valid), 1, 0))
    part[labels < 0] = -1
    return tuple(np.flatnonzero(part == p) for p in (0, 1, 2))
