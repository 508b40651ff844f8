"""Splits never leak a subject, session or recording across parts (property-style)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodecode.data.splits import (
    Split,
    check_split,
    group_keys,
    protocol_splits,
    split_by_group,
)
from neurodecode.errors import ConfigError


def make_index(seed: int, *, n_subjects: int | None = None, rare: float = 0.3) -> pd.DataFrame:
    """A random window index: subjects × sessions × recordings × windows, two classes."""
    rng = np.random.default_rng(seed)
    n_subjects = n_subjects or int(rng.integers(2, 9))
    rows = []
    for s in range(n_subjects):
        for ses in range(int(rng.integers(1, 4))):
            for rec in range(int(rng.integers(1, 4))):
                for w in range(int(rng.integers(5, 20))):
                    rows.append(
                        {
                            "subject": f"{s:02d}",
                            "session": f"{ses:02d}",
                            "recording": f"run-{rec:02d}",
                            "start_s": 2.0 * w,
                            "label": int(rng.random() < rare),
                        }
                    )
    return pd.DataFrame(rows)


def parts_of(split: Split) -> dict[str, np.ndarray]:
    return {"train": split.train, "valid": split.valid, "test": split.test}


def assert_no_leak(index: pd.DataFrame, split: Split, by: str) -> None:
    keys = group_keys(index, by).to_numpy()
    owners: dict[str, str] = {}
    for part, positions in parts_of(split).items():
        for key in set(keys[positions]):
            assert owners.setdefault(key, part) == part, f"{by} {key} in {owners[key]} and {part}"


@pytest.mark.parametrize("by", ["subject", "session", "recording"])
def test_group_splits_never_leak_and_cover_every_window(by: str) -> None:
    made = 0
    for seed in range(100):
        index = make_index(seed)
        try:
            split = split_by_group(index, by, valid_fraction=0.2, test_fraction=0.25, seed=seed)
        except ConfigError as err:  # too few groups or a class lost: refused, with a reason
            assert "training" in str(err)
            continue
        made += 1
        assert_no_leak(index, split, by)
        every = np.sort(np.concatenate(list(parts_of(split).values())))
        np.testing.assert_array_equal(every, np.arange(len(index)))
        assert set(index["label"].iloc[split.train]) == set(index["label"])
    assert made > 70


def test_session_and_recording_keys_are_qualified_by_their_parents() -> None:
    index = pd.DataFrame(
        {"subject": ["1", "2"], "session": ["01", "01"], "recording": ["r", "r"], "label": [0, 1]}
    )
    assert group_keys(index, "session").nunique() == 2
    assert group_keys(index, "recording").nunique() == 2
    assert group_keys(index.assign(session=[None, None]), "session").tolist() == ["1/", "2/"]


def test_group_split_is_deterministic_by_seed() -> None:
    index = make_index(0, n_subjects=8)
    first = split_by_group(index, "subject", seed=3)
    again = split_by_group(index, "subject", seed=3)
    np.testing.assert_array_equal(first.test, again.test)
    others = [split_by_group(index, "subject", seed=s).test for s in range(4, 10)]
    assert any(not np.array_equal(first.test, o) for o in others)


def test_leave_one_subject_out_tests_each_subject_exactly_once() -> None:
    for seed in range(20):
        index = make_index(seed, n_subjects=int(np.random.default_rng(seed).integers(3, 8)))
        splits = protocol_splits(index, "cross_subject", valid_fraction=0.2, seed=seed)
        tested = [set(index["subject"].iloc[s.test]) for s in splits]
        assert all(len(t) == 1 for t in tested)
        assert sorted(t.pop() for t in tested) == sorted(index["subject"].unique())
        for split in splits:
            assert_no_leak(index, split, "subject")
            assert len(split.valid) > 0
            subject = index["subject"].iloc[split.test[0]]
            np.testing.assert_array_equal(split.test, np.flatnonzero(index["subject"] == subject))


def test_cross_session_holds_out_one_session_of_one_subject() -> None:
    index = make_index(1, n_subjects=3)
    index["session"] = index["recording"].str[-1]  # 1-3 sessions per subject
    splits = protocol_splits(index, "cross_session", valid_fraction=0.0)
    for split in splits:
        test_rows = index.iloc[split.test]
        assert test_rows[["subject", "session"]].drop_duplicates().shape[0] == 1
        assert_no_leak(index, split, "session")
        assert set(index["subject"].iloc[split.train]) == set(test_rows["subject"])


def test_within_session_folds_partition_each_session() -> None:
    rng = np.random.default_rng(0)
    index = pd.DataFrame(
        {
            "subject": np.repeat(["1", "2"], 40),
            "session": np.tile(np.repeat(["a", "b"], 20), 2),
            "recording": "r",
            "start_s": np.arange(80.0),
            "label": rng.permutation(80) % 2,
        }
    )
    splits = protocol_splits(index, "within_session", n_folds=4, valid_fraction=0.25, seed=1)
    assert len(splits) == 2 * 2 * 4  # one per fold of each session of each subject
    tested = np.concatenate([s.test for s in splits])
    np.testing.assert_array_equal(np.sort(tested), np.arange(80))  # each trial tested once
    for split in splits:
        rows = index.iloc[np.concatenate([split.train, split.valid, split.test])]
        assert rows[["subject", "session"]].drop_duplicates().shape[0] == 1
        assert not set(split.train) & set(split.valid) | set(split.train) & set(split.test)


def test_explicit_members_are_honoured_and_checked() -> None:
    index = make_index(2, n_subjects=5, rare=0.5)
    split = split_by_group(index, "subject", valid=["01"], test=["03", "04"])
    assert set(index["subject"].iloc[split.test]) == {"03", "04"}
    assert set(index["subject"].iloc[split.train]) == {"00", "02"}
    with pytest.raises(ConfigError, match="no such subject"):
        split_by_group(index, "subject", test=["99"])
    with pytest.raises(ConfigError, match="both valid and test"):
        split_by_group(index, "subject", valid=["01"], test=["01"])


def test_split_that_empties_a_class_in_train_is_refused_with_the_reason() -> None:
    index = make_index(3, n_subjects=4, rare=0.0)
    index.loc[index["subject"] == "02", "label"] = 1  # only subject 02 has class 1
    with pytest.raises(ConfigError, match=r"class\(es\) \[1\] without any training window"):
        split_by_group(index, "subject", valid_fraction=0.0, test=["02"])
    with pytest.raises(ConfigError, match="absent from training|without any training window"):
        protocol_splits(index, "cross_subject", valid_fraction=0.0)
    assert split_by_group(index, "subject", test=["02"], require_all_classes=False)
    index.loc[index["subject"] == "02", "label"] = -1  # unlabelled windows are no class
    assert split_by_group(index, "subject", valid_fraction=0.0, test=["02"])


def test_too_few_groups_is_refused() -> None:
    index = make_index(4, n_subjects=2)
    with pytest.raises(ConfigError, match="training would be empty"):
        split_by_group(index, "subject", valid_fraction=0.3, test_fraction=0.3)


def test_check_split_catches_a_leak() -> None:
    index = make_index(5, n_subjects=3)
    rows = np.arange(len(index))
    leaky = Split("handmade", rows[: len(rows) // 2], np.array([], int), rows[len(rows) // 2 :])
    with pytest.raises(ConfigError, match="leaks subject"):
        check_split(index, leaky, "subject")


def test_overlapping_windows_in_different_parts_are_refused() -> None:
    # Sliding 4-s windows every 2 s: a within-session k-fold would put shared samples
    # in training and test.
    index = pd.DataFrame(
        {
            "subject": "1",
            "session": "a",
            "recording": "r",
            "start_s": np.arange(0.0, 80, 2),
            "label": np.arange(40) % 2,
        }
    ).assign(end_s=lambda t: t["start_s"] + 4)
    with pytest.raises(ConfigError, match="overlaps the window at"):
        protocol_splits(index, "within_session", n_folds=4, valid_fraction=0.0)
    trials = index.assign(end_s=index["start_s"] + 1.5)  # event-locked, no overlap: fine
    assert len(protocol_splits(trials, "within_session", n_folds=4, valid_fraction=0.0)) == 4


def test_label_split_holds_out_whole_classes_for_zero_shot() -> None:
    rng = np.random.default_rng(0)
    index = pd.DataFrame(
        {"subject": "1", "session": "a", "recording": "r", "label": rng.integers(0, 50, 500)}
    )
    split = split_by_group(index, "label", valid_fraction=0.1, test_fraction=0.2, seed=0)
    train, test = (set(index["label"].iloc[p]) for p in (split.train, split.test))
    assert len(test) == 10 and not train & test


def test_cross_session_validation_is_a_recording_of_the_training_sessions() -> None:
    index = pd.DataFrame(
        [
            {"subject": s, "session": ses, "recording": f"run-{r}", "label": w % 2}
            for s in ("1", "2")
            for ses in ("a", "b")
            for r in (1, 2)
            for w in range(10)
        ]
    )
    sessions, recordings = group_keys(index, "session"), group_keys(index, "recording")
    for split in protocol_splits(index, "cross_session", valid_fraction=0.5):
        (tested,) = set(sessions.iloc[split.test])
        assert tested not in set(sessions.iloc[np.concatenate([split.train, split.valid])])
        assert not set(recordings.iloc[split.train]) & set(recordings.iloc[split.valid])
        valid = index.iloc[split.valid]
        assert valid[["subject", "session", "recording"]].drop_duplicates().shape[0] == 1
        assert len(split.train) == len(split.valid) == len(split.test) // 2
