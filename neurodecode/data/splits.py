"""Leakage-free train/validation/test splits as pure functions over a window index.

The index is ``WindowCache.index``: one row per window with at least ``subject``,
``session``, ``recording`` and ``label`` columns. A split assigns whole *groups* to one part
only, so that no subject (or session, or recording) contributes windows to two parts:

- ``subject`` / ``session`` / ``recording``: random groups (seeded) or the explicit members
  a manifest publishes (:func:`split_by_group`); ``label`` holds out whole classes (e.g.
  unseen concepts for zero-shot retrieval);
- ``cross_subject`` (leave one subject out), ``cross_session`` and ``within_session``:
  MOABB's protocols as fold generators (:func:`folds`), one split per fold, with validation
  groups carved out of each fold's training part (:func:`protocol_splits`);
- whole concepts held out for zero-shot retrieval (:func:`zero_shot_split`, THINGS-EEG2).

Every split is checked (:func:`check_split`): parts disjoint at the group level, no two
windows of different parts overlapping in time, and every labelled class present in
training; otherwise it is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from neurodecode.data.windows import UNLABELLED
from neurodecode.errors import ConfigError, UnknownNameError, did_you_mean

GROUP_UNITS = ("subject", "session", "recording", "label")
PARTS = ("train", "valid", "test")

# Columns that identify a group at each unit, coarsest first. A session is only unique
# within its subject and a recording within its session, hence the prefixes.
_GROUP_COLUMNS = {
    "subject": ("subject",),
    "session": ("subject", "session"),
    "recording": ("subject", "session", "recording"),
    "label": ("label",),
}


@dataclass(frozen=True)
class Split:
    """Integer positions into the index for each part.

    Attributes
    ----------
    name : str
        What the split is, e.g. ``"subject"`` or ``"cross_subject/test-sub-03"``.
    train, valid, test : numpy.ndarray
        Sorted row positions (``valid`` or ``test`` may be empty).
    """

    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray

    def part(self, name: str) -> np.ndarray:
        """Positions of the part called ``name`` (``train``, ``valid`` or ``test``)."""
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]


def is_labelled(labels: pd.Series) -> pd.Series:
    """Which windows carry a class (not NaN, not ``windows.UNLABELLED``)."""
    return labels.notna() & (labels != UNLABELLED)


def group_keys(index: pd.DataFrame, by: str) -> pd.Series:
    """One string per row naming its group at unit ``by`` (e.g. ``subject/session``).

    Missing sessions (datasets without sessions) count as one session per subject.
    """
    if by not in _GROUP_COLUMNS:
        raise ConfigError(f"unknown split unit {by!r}; expected one of {GROUP_UNITS}")
    columns = _GROUP_COLUMNS[by]
    missing = [c for c in columns if c not in index.columns]
    if missing:
        raise ConfigError(f"the window index lacks column(s) {missing} needed to split by {by}")
    parts = [index[c].astype(object).where(index[c].notna(), "").astype(str) for c in columns]
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + "/" + part
    return keys


def split_by_group(
    index: pd.DataFrame,
    by: str = "subject",
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    train: Sequence[str] | None = None,
    valid: Sequence[str] | None = None,
    test: Sequence[str] | None = None,
    require_all_classes: bool = True,
) -> Split:
    """Assign whole groups to train/valid/test, at random (seeded) or as listed.

    Parameters
    ----------
    index : pandas.DataFrame
        The window index.
    by : {"subject", "session", "recording", "label"}
        Grouping unit; no group spans two parts. ``label`` holds out whole classes, so
        ``require_all_classes`` does not apply to it.
    valid_fraction, test_fraction : float
        Fractions of the groups (rounded, at least one group when the fraction is positive)
        used when no explicit members are given.
    seed : int
        Seed of the random assignment.
    train, valid, test : sequence of str, optional
        Explicit members (group keys as :func:`group_keys` writes them, e.g. subject
        ``"001"``); groups not listed anywhere go to ``train`` when ``train`` is not given.
    require_all_classes : bool
        Refuse a split whose training part lacks a labelled class.
    """
    keys = group_keys(index, by)
    groups = sorted(keys.unique())
    if any(members is not None for members in (train, valid, test)):
        assignment = _explicit_assignment(groups, by, train, valid, test)
    else:
        assignment = _random_assignment(groups, by, valid_fraction, test_fraction, seed)
    part_of_row = keys.map(assignment).to_numpy()
    positions = {p: np.flatnonzero(part_of_row == p) for p in PARTS}
    split = Split(by, positions["train"], positions["valid"], positions["test"])
    check_split(index, split, by, require_all_classes=require_all_classes and by != "label")
    return split


#: The next finer unit of a group split, tried when a dataset has too few groups of a unit
#: to fill training, validation and test (one subject: its sessions, then its recordings).
FINER_UNIT = {"subject": "session", "session": "recording"}


def fillable_unit(
    index: pd.DataFrame, by: str, *, valid_fraction: float, test_fraction: float
) -> str | None:
    """``by``, or the first finer unit whose groups can fill the three parts, or None.

    Parameters
    ----------
    index : pandas.DataFrame
        The window index.
    by : str
        The unit asked for (``label`` is never replaced: holding out classes has no finer
        unit).
    valid_fraction, test_fraction : float
        As for :func:`split_by_group`.

    Returns
    -------
    str or None
        ``by`` when it has enough groups (or when the fractions leave no room for training
        whatever the data, which :func:`split_by_group` then refuses), else ``session`` or ``recording`` (a split within
        subjects), else None: even single recordings cannot fill the parts, so only a split
        of the trials themselves (``within_session``) is left.
    """
    if valid_fraction + test_fraction >= 1:
        return by  # no data fill these fractions: split_by_group refuses them
    unit: str | None = by
    while unit is not None:
        n_groups = group_keys(index, unit).nunique()
        if _count(n_groups, valid_fraction) + _count(n_groups, test_fraction) < n_groups:
            return unit
        if unit == "label":
            return unit  # split_by_group refuses it with the counts
        unit = FINER_UNIT.get(unit)
    return None


def _random_assignment(
    groups: list[str], by: str, valid_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1):
        raise ConfigError("valid_fraction and test_fraction must each lie in [0, 1)")
    n_valid = _count(len(groups), valid_fraction)
    n_test = _count(len(groups), test_fraction)
    if n_valid + n_test >= len(groups):
        raise ConfigError(
            f"cannot split {len(groups)} {by} group(s) into train, validation "
            f"({valid_fraction:g}) and test ({test_fraction:g}) without leakage: training "
            "would be empty",
            hint=f"use a finer unit than {by!r}, lower the fractions, or set them to 0",
        )
    order = np.random.default_rng(seed).permutation(len(groups))
    assignment = {}
    for rank, g in enumerate(order):
        assignment[groups[g]] = (
            "test" if rank < n_test else "valid" if rank < n_test + n_valid else "train"
        )
    return assignment


def _count(n_groups: int, fraction: float) -> int:
    return 0 if fraction == 0 else max(1, int(round(fraction * n_groups)))


def _explicit_assignment(
    groups: list[str],
    by: str,
    train: Sequence[str] | None,
    valid: Sequence[str] | None,
    test: Sequence[str] | None,
) -> dict[str, str]:
    assignment: dict[str, str] = {}
    for part, members in (("train", train), ("valid", valid), ("test", test)):
        for member in members or ():
            member = str(member)
            if member not in groups:
                raise ConfigError(
                    f"split lists {by} {member!r} under {part}, but the data have no such {by}",
                    hint=f"{by}s present: {', '.join(groups[:20])}",
                )
            if member in assignment:
                raise ConfigError(
                    f"{by} {member!r} is listed under both {assignment[member]} and {part}"
                )
            assignment[member] = part
    default = "train" if train is None else None
    return {g: assignment.get(g, default) for g in groups}


def check_split(
    index: pd.DataFrame,
    split: Split,
    by: str | None,
    *,
    valid_by: str | None = None,
    require_all_classes: bool = True,
) -> None:
    """Refuse a split that leaks groups or samples across parts or leaves a class untrained.

    Parameters
    ----------
    index : pandas.DataFrame
        The window index.
    split : Split
        The split to check.
    by : str or None
        Unit that must not span two parts (``None``: only rows must not repeat).
    valid_by : str, optional
        A finer unit that separates validation from training only, where ``by`` cannot
        (a cross-session fold may train on a single session: validation is one of its
        recordings). Test stays separated by ``by``.
    require_all_classes : bool
        Whether every labelled class of ``index`` must have a training window.

    Raises
    ------
    ConfigError
        With the offending group or class named.
    """
    if len(split.train) == 0:
        raise ConfigError(f"split {split.name!r} leaves no training windows")
    positions = np.concatenate([split.part(p) for p in PARTS])
    if len(np.unique(positions)) != len(positions):
        raise ConfigError(f"split {split.name!r} puts some windows in two parts")
    pairs = [("train", "test", by), ("valid", "test", by), ("train", "valid", valid_by or by)]
    for first, second, unit in pairs:
        if unit is None:
            continue
        keys = group_keys(index, unit).to_numpy()
        shared = sorted(set(keys[split.part(first)]) & set(keys[split.part(second)]))
        if shared:
            raise ConfigError(
                f"split {split.name!r} leaks {unit} {shared[0]!r} into both {first} and {second}"
            )
    _check_time_overlap(index, split)
    if require_all_classes and "label" in index.columns:
        labels = index["label"][is_labelled(index["label"])]
        in_train = index["label"].iloc[split.train]
        absent = sorted(set(labels) - set(in_train[is_labelled(in_train)]), key=str)
        if absent:
            raise ConfigError(
                f"split {split.name!r} leaves class(es) {absent} without any training window",
                hint="choose another seed, fold or split unit, or collect more groups with "
                "that class",
            )


def _check_time_overlap(index: pd.DataFrame, split: Split) -> None:
    """Refuse windows of one recording that overlap in time but sit in different parts.

    Windows are sorted by start within each recording; for windows of equal length, two of
    different parts overlap only if some neighbouring pair does, which is what is checked.
    """
    if not {"start_s", "end_s"} <= set(index.columns):
        return
    part = np.full(len(index), -1)
    for k, name in enumerate(PARTS):
        part[split.part(name)] = k
    used = np.flatnonzero(part >= 0)
    recording = group_keys(index, "recording").to_numpy()[used]
    start = index["start_s"].to_numpy(float)[used]
    end = index["end_s"].to_numpy(float)[used]
    order = np.lexsort((start, recording))
    recording, start, end, part = recording[order], start[order], end[order], part[used][order]
    clash = (
        (recording[1:] == recording[:-1]) & (part[1:] != part[:-1]) & (start[1:] < end[:-1] - 1e-9)
    )
    if clash.any():
        k = int(np.argmax(clash))
        raise ConfigError(
            f"split {split.name!r}: in recording {recording[k]!r} the window at "
            f"{start[k]:g} s ({PARTS[part[k]]}) overlaps the window at {start[k + 1]:g} s "
            f"({PARTS[part[k + 1]]}), so the same samples would be in both",
            hint="split by recording, session or subject, or cut non-overlapping windows",
        )


# ----------------------------------------------------------------- MOABB protocols as folds
# The index needs ``subject``, ``session`` and ``label`` columns. MOABB's semantics:
# ``within_session`` is stratified k-fold inside each (subject, session)
# (WithinSessionEvaluation: 5 folds, shuffled with a fixed seed); ``cross_session`` leaves one
# session out for every subject with at least two (CrossSessionEvaluation); ``cross_subject``
# leaves one subject out over all subjects (CrossSubjectEvaluation). A fold whose training part
# lacks a class present in its test part is refused, with the subject/session named.

FOLD_COLUMNS = ("subject", "session", "label")


@dataclass(frozen=True)
class Fold:
    """One train/test split of a protocol: integer positions into the index."""

    name: str
    train: np.ndarray
    test: np.ndarray


def _check_fold_index(index: pd.DataFrame) -> None:
    missing = [c for c in FOLD_COLUMNS if c not in index.columns]
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


def within_session_folds(index: pd.DataFrame, n_folds: int = 5, seed: int = 42) -> Iterator[Fold]:
    """Stratified ``n_folds``-fold cross-validation inside each (subject, session)."""
    _check_fold_index(index)
    for (subject, session), group in index.groupby(["subject", "session"], sort=True, dropna=False):
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


def cross_session_folds(index: pd.DataFrame) -> Iterator[Fold]:
    """Leave one session out, separately for each subject with at least two sessions."""
    _check_fold_index(index)
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


def cross_subject_folds(index: pd.DataFrame) -> Iterator[Fold]:
    """Leave one subject out."""
    _check_fold_index(index)
    subjects = sorted(index["subject"].unique())
    if len(subjects) < 2:
        raise ConfigError("cross-subject evaluation needs at least two subjects")
    for subject in subjects:
        is_test = (index["subject"] == subject).to_numpy()
        positions = np.arange(len(index))
        yield _checked_fold(index, f"test-sub-{subject}", positions[~is_test], positions[is_test])


_FOLDS: dict[str, Callable[..., Iterator[Fold]]] = {
    "cross_subject": cross_subject_folds,
    "cross_session": cross_session_folds,
    "within_session": within_session_folds,
}
PROTOCOLS = tuple(_FOLDS)


def folds(index: pd.DataFrame, protocol: str, **kwargs) -> Iterator[Fold]:
    """Folds of the protocol named ``protocol`` (one of :data:`PROTOCOLS`)."""
    if protocol not in _FOLDS:
        raise UnknownNameError(
            f"unknown evaluation protocol {protocol!r}", hint=did_you_mean(protocol, _FOLDS)
        )
    return _FOLDS[protocol](index, **kwargs)


def protocol_splits(
    index: pd.DataFrame,
    protocol: str,
    *,
    valid_fraction: float = 0.1,
    valid_by: str | None = None,
    seed: int = 0,
    n_folds: int = 5,
    require_all_classes: bool = True,
) -> list[Split]:
    """One :class:`Split` per fold of a MOABB-style protocol, with validation carved out.

    Parameters
    ----------
    index : pandas.DataFrame
        The window index.
    protocol : {"cross_subject", "cross_session", "within_session"}
        ``cross_subject`` is leave-one-subject-out over all subjects; ``cross_session``
        leaves one session of one subject out; ``within_session`` is stratified
        ``n_folds``-fold inside each session of each subject (one split per fold).
    valid_fraction : float
        Fraction of each fold's training groups moved to validation (0: none).
    valid_by : str, optional
        Unit of the validation groups; default ``subject`` for ``cross_subject``,
        ``recording`` for ``cross_session``, and single windows (trials) for
        ``within_session``.
    seed, n_folds : int
        Seed of the fold shuffling and of the validation draw; folds per session.
    require_all_classes : bool
        Refuse folds whose training part lacks a labelled class.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown split protocol {protocol!r}; expected one of {PROTOCOLS}")
    kwargs = {"n_folds": n_folds, "seed": seed} if protocol == "within_session" else {}
    # The unit that must not leak into the test part, and the default validation unit:
    # a cross-session fold trains on one subject's other sessions, often just one, so its
    # validation set is a recording of those.
    leak_unit = {"cross_subject": "subject", "cross_session": "session"}.get(protocol)
    default_valid = {"cross_subject": "subject", "cross_session": "recording"}.get(protocol)
    unit = valid_by if valid_by is not None else default_valid
    index = index.reset_index(drop=True)  # the folds are positions
    splits = []
    for fold in folds(index, protocol, **kwargs):
        train, valid = _carve_validation(index, fold.train, unit, valid_fraction, seed)
        split = Split(f"{protocol}/{fold.name}", train, valid, np.sort(fold.test))
        check_split(index, split, leak_unit, valid_by=unit, require_all_classes=require_all_classes)
        splits.append(split)
    return splits


def _carve_validation(
    index: pd.DataFrame, train: np.ndarray, unit: str | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Move ``fraction`` of the groups of ``train`` (rows when ``unit`` is None) to validation."""
    if fraction == 0:
        return np.sort(train), np.array([], dtype=int)
    keys = (
        pd.Series(train.astype(str), index=train)
        if unit is None
        else group_keys(index, unit).iloc[train].set_axis(train)
    )
    groups = sorted(keys.unique())
    n_valid = _count(len(groups), fraction)
    if n_valid >= len(groups):
        raise ConfigError(
            f"cannot carve a validation set out of {len(groups)} training "
            f"{unit or 'window'} group(s) without leaving training empty",
            hint="set valid_fraction=0 or choose a finer valid_by unit",
        )
    rng = np.random.default_rng(seed)
    chosen = {groups[i] for i in rng.choice(len(groups), size=n_valid, replace=False)}
    is_valid = keys.isin(chosen).to_numpy()
    return np.sort(train[~is_valid]), np.sort(train[is_valid])


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


ZERO_SHOT_PROTOCOLS = ("intra_subject", "inter_subject")
"""Splits of a dataset with a published test session (THINGS-EEG2): ``intra_subject``
trains and tests on one subject; ``inter_subject`` tests on one subject and trains on all
the others."""


def published_test_splits(
    index: pd.DataFrame,
    protocol: str,
    *,
    test_session: str,
    valid_fraction: float = 0.1,
    seed: int = 0,
) -> list[Split]:
    """One split per subject, whose test part is that subject's published test session.

    The test session holds the concepts the dataset's authors set aside (THINGS-EEG2: 200
    images of concepts absent from training), so every figure is on the published test set.
    Validation concepts are carved from the training session's concepts (never from the
    test ones), with the same concepts for every subject.

    Parameters
    ----------
    index : pandas.DataFrame
        The window index (``subject``, ``session``, ``label``).
    protocol : {"intra_subject", "inter_subject"}
        Train on the test subject's own training session, or on every other subject's.
    test_session : str
        The session holding the published test set.
    valid_fraction : float
        Share of the training concepts held out for validation.
    seed : int
        Seed of the validation concepts' draw.

    Returns
    -------
    list of Split
        One per subject, in sorted subject order (``fold`` picks one).
    """
    if protocol not in ZERO_SHOT_PROTOCOLS:
        raise ConfigError(
            f"unknown zero-shot protocol {protocol!r}",
            hint=f"choose {' or '.join(ZERO_SHOT_PROTOCOLS)}",
        )
    is_test = (index["session"].astype(str) == test_session).to_numpy()
    if not is_test.any():
        raise ConfigError(
            f"no window comes from the test session {test_session!r}; sessions found: "
            f"{sorted(index['session'].astype(str).unique())}"
        )
    labels = index["label"].to_numpy()
    training_concepts = np.unique(labels[~is_test & (labels >= 0)])
    n_valid = round(valid_fraction * training_concepts.size) if valid_fraction else 0
    if n_valid >= training_concepts.size:
        raise ConfigError(
            f"{training_concepts.size} training concept(s) cannot spare "
            f"{valid_fraction:g} for validation"
        )
    valid_concepts = np.random.default_rng(seed).permutation(training_concepts)[:n_valid]
    is_valid = ~is_test & np.isin(labels, valid_concepts)
    subjects = index["subject"].astype(str).to_numpy()
    splits = []
    for subject in sorted(set(subjects)):
        own = subjects == subject
        training_side = own if protocol == "intra_subject" else ~own
        train = ~is_test & ~is_valid & training_side & (labels >= 0)
        splits.append(
            Split(
                f"{protocol}/test-sub-{subject}",
                np.flatnonzero(train),
                np.flatnonzero(is_valid & training_side),
                np.flatnonzero(is_test & own),
            )
        )
    return splits
