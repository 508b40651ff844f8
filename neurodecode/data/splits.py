"""Leakage-free train/validation/test splits as pure functions over a window index.

The index is ``WindowCache.index``: one row per window with at least ``subject``,
``session``, ``recording`` and ``label`` columns. A split assigns whole *groups* to one part
only, so that no subject (or session, or recording) contributes windows to two parts:

- ``subject`` / ``session`` / ``recording``: random groups (seeded) or the explicit members
  a manifest publishes (:func:`split_by_group`); ``label`` holds out whole classes (e.g.
  unseen concepts for zero-shot retrieval);
- ``cross_subject`` (leave one subject out), ``cross_session`` and ``within_session``:
  MOABB's protocols from :mod:`neurodecode.evaluation.protocols`, one split per fold, with
  validation groups carved out of each fold's training part (:func:`protocol_splits`).

Every split is checked (:func:`check_split`): parts disjoint at the group level, no two
windows of different parts overlapping in time, and every labelled class present in
training; otherwise it is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from neurodecode.data.windows import UNLABELLED
from neurodecode.errors import ConfigError

GROUP_UNITS = ("subject", "session", "recording", "label")
PROTOCOLS = ("cross_subject", "cross_session", "within_session")
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
    from neurodecode.evaluation import protocols

    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown split protocol {protocol!r}; expected one of {PROTOCOLS}")
    kwargs = {"n_folds": n_folds, "seed": seed} if protocol == "within_session" else {}
    # The unit that must not leak into the test part, and the default validation unit:
    # a cross-session fold trains on one subject's other sessions, often just one, so its
    # validation set is a recording of those.
    leak_unit = {"cross_subject": "subject", "cross_session": "session"}.get(protocol)
    default_valid = {"cross_subject": "subject", "cross_session": "recording"}.get(protocol)
    unit = valid_by if valid_by is not None else default_valid
    index = index.reset_index(drop=True)  # the protocols return positions
    splits = []
    for fold in protocols.folds(index, protocol, **kwargs):
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
