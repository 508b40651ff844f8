"""MOABB-style protocols (data.splits.folds): folds never mix what they must keep apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodecode.data.splits import folds, zero_shot_split
from neurodecode.errors import ConfigError, UnknownNameError


def _index(subjects=("1", "2", "3"), sessions=("0", "1"), trials=10) -> pd.DataFrame:
    rows = [
        {"subject": s, "session": ses, "label": t % 2}
        for s in subjects
        for ses in sessions
        for t in range(trials)
    ]
    return pd.DataFrame(rows)


def test_within_session_folds_stay_in_one_session_and_cover_it():
    index = _index()
    all_folds = list(folds(index, "within_session", n_folds=5))
    assert len(all_folds) == 3 * 2 * 5
    tested = np.concatenate([f.test for f in all_folds])
    assert sorted(tested) == list(range(len(index)))  # every trial tested exactly once
    for f in all_folds:
        both = index.iloc[np.concatenate([f.train, f.test])]
        assert both[["subject", "session"]].drop_duplicates().shape[0] == 1
        assert not set(f.train) & set(f.test)


def test_cross_session_leaves_one_session_out_per_subject():
    index = _index()
    all_folds = list(folds(index, "cross_session"))
    assert len(all_folds) == 3 * 2
    for f in all_folds:
        train, test = index.iloc[f.train], index.iloc[f.test]
        assert train["subject"].nunique() == 1 and test["subject"].nunique() == 1
        assert set(train["session"]).isdisjoint(test["session"])


def test_cross_subject_is_leave_one_subject_out():
    index = _index()
    all_folds = list(folds(index, "cross_subject"))
    assert [f.name for f in all_folds] == ["test-sub-1", "test-sub-2", "test-sub-3"]
    for f in all_folds:
        assert set(index.iloc[f.train]["subject"]).isdisjoint(index.iloc[f.test]["subject"])


def test_refusals_name_the_reason():
    with pytest.raises(ConfigError, match="single class"):
        list(folds(_index().assign(label=0), "cross_subject"))
    with pytest.raises(ConfigError, match="fewer than the 5 folds"):
        list(folds(_index(trials=6), "within_session"))
    with pytest.raises(ConfigError, match="two sessions"):
        list(folds(_index(sessions=("0",)), "cross_session"))
    lopsided = _index(subjects=("1", "2")).assign(label=lambda d: (d["subject"] == "2") * 1)
    with pytest.raises(ConfigError, match="absent from training"):
        list(folds(lopsided, "cross_subject"))
    with pytest.raises(UnknownNameError, match="within_session"):
        folds(_index(), "loso")


def test_zero_shot_split_holds_out_whole_concepts():
    index = pd.DataFrame({"subject": "1", "session": "0", "label": np.repeat(np.arange(50), 4)})
    train, valid, test = zero_shot_split(index, test_fraction=0.2, valid_fraction=0.1, seed=0)
    concepts = [set(index["label"].iloc[p]) for p in (train, valid, test)]
    assert [len(c) for c in concepts] == [35, 5, 10]
    assert not (concepts[0] & concepts[2]) and not (concepts[0] & concepts[1])
    assert len(train) + len(valid) + len(test) == len(index)
    with pytest.raises(ConfigError, match="cannot be split"):
        zero_shot_split(index.iloc[:8], test_fraction=0.5, valid_fraction=0.5)
