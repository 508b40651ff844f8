"""Splits and batches that adapt to small data, or refuse with the counts (issue 12, item 4).

One subject cannot be split by subject: the data module falls back to whole recordings of
that subject, then to within_session folds of the trials, and says so in the log. A training
part of 29 trials in batches of 64 made one optimiser step per epoch: the training batch
size is capped so that an epoch has at least ``min_steps_per_epoch`` steps.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from neurodecode.data.datamodule import MIN_BATCH_SIZE, EEGDataModule
from neurodecode.data.splits import Split, fillable_unit, group_keys
from neurodecode.errors import ConfigError
from tests.data.test_datamodule import TinyWindows


def trials(n_subjects: int = 1, n_runs: int = 6, per_run: int = 15) -> TinyWindows:
    """Cue-locked trials (two classes alternating) of ``n_runs`` runs per subject."""
    rows = [
        {
            "subject": f"{s:03d}",
            "session": "",
            "recording": f"{s:03d}//S{s:03d}R{r:02d}",
            "start_s": 10.0 * t,
            "end_s": 10.0 * t + 4.0,
            "label": t % 2,
        }
        for s in range(1, n_subjects + 1)
        for r in range(n_runs)
        for t in range(per_run)
    ]
    return TinyWindows(pd.DataFrame(rows))


def test_one_subject_falls_back_to_whole_recordings_and_says_so(caplog):
    data = trials()
    assert fillable_unit(data.index, "subject", valid_fraction=0.15, test_fraction=0.2) == (
        "recording"
    )
    dm = EEGDataModule(data, split="subject", valid_fraction=0.15, test_fraction=0.2)
    with caplog.at_level(logging.WARNING, logger="neurodecode.data.datamodule"):
        dm.setup("fit")
    assert dm.split.name == "recording"
    recordings = group_keys(data.index, "recording").to_numpy()
    parts = [set(recordings[dm.split.part(p)]) for p in ("train", "valid", "test")]
    assert [len(p) for p in parts] == [4, 1, 1]  # whole runs, none in two parts
    assert not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert any("too few subject groups" in r.getMessage() for r in caplog.records)


def test_enough_subjects_keep_the_subject_split():
    data = trials(n_subjects=8, n_runs=1)
    dm = EEGDataModule(data, split="subject", valid_fraction=0.15, test_fraction=0.2)
    assert dm.split.name == "subject"


def test_one_recording_falls_back_to_folds_of_its_trials(caplog):
    data = trials(n_runs=1, per_run=40)
    dm = EEGDataModule(data, split="recording", valid_fraction=0.2, fold=1)
    with caplog.at_level(logging.WARNING, logger="neurodecode.data.datamodule"):
        split = dm.split
    assert split.name.startswith("within_session/") and split.name.endswith("fold-1")
    assert len(split.test) == 8 and len(split.train) + len(split.valid) == 32
    assert any("within_session 5-fold" in r.getMessage() for r in caplog.records)


def test_too_few_trials_for_any_split_are_refused_with_the_counts():
    data = trials(n_runs=1, per_run=6)  # 3 trials per class, 5 folds asked for
    with pytest.raises(ConfigError, match="has 3 trials, fewer than the 5 folds"):
        EEGDataModule(data, split="subject").setup("fit")


def test_explicit_members_are_never_replaced():
    data = trials()
    dm = EEGDataModule(data, split="subject", test=["001"])
    with pytest.raises(ConfigError, match="no training windows"):
        dm.setup("fit")


class GivenSplit(EEGDataModule):
    """A data module whose one split trains on the first ``n_train`` rows."""

    def __init__(self, n_train: int, **kwargs) -> None:
        super().__init__(trials(n_runs=1, per_run=n_train + 1), **kwargs)
        self.n_train = n_train

    def _make_splits(self) -> list[Split]:
        return [Split("given", np.arange(self.n_train), np.array([self.n_train]), np.array([]))]


@pytest.mark.parametrize(
    ("n_train", "batch_size", "expected"),
    [(30, 64, MIN_BATCH_SIZE), (200, 64, 25), (2000, 64, 64), (30, 2, 2)],
)
def test_training_batch_is_capped_for_enough_steps_per_epoch(n_train, batch_size, expected):
    dm = GivenSplit(n_train, batch_size=batch_size)
    assert dm.train_batch_size == expected
    sizes = [len(b["y"]) for b in dm.train_dataloader()]
    assert sum(sizes) == n_train and max(sizes) == expected
    assert [len(b["y"]) for b in dm.val_dataloader()] == [1]  # evaluation keeps batch_size


def test_the_cap_is_logged_with_the_numbers(caplog):
    dm = EEGDataModule(trials(n_subjects=8, n_runs=1, per_run=10), split="subject")
    with caplog.at_level(logging.WARNING, logger="neurodecode.data.datamodule"):
        dm.setup("fit")
    n_train = len(dm.split.train)
    message = next(
        r.getMessage() for r in caplog.records if "training batch size" in r.getMessage()
    )
    assert f"{n_train // 8} instead of 64: {n_train} training windows" in message
    assert "1 optimiser step(s) per epoch" in message
    assert GivenSplit(30, min_steps_per_epoch=0).train_batch_size == 64
