"""EEGDataModule: batch dicts, leakage-free parts, balanced sampling, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from neurodecode.data.datamodule import EEGDataModule, balanced_weights, collate_windows
from neurodecode.data.splits import group_keys
from neurodecode.errors import ConfigError

N_CHANS, N_TIMES = 3, 8


class TinyWindows(torch.utils.data.Dataset):
    """Stands in for a WindowCache: an ``index`` and window dicts (x encodes the row)."""

    def __init__(self, index: pd.DataFrame) -> None:
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        row = self.index.iloc[i]
        return {
            "x": torch.full((N_CHANS, N_TIMES), float(i)),
            "y": int(row["label"]),
            "ch_pos": torch.zeros(N_CHANS, 3),
            "ch_mask": torch.ones(N_CHANS, dtype=torch.bool),
            "subject": row["subject"],
            "session": row["session"],
            "recording": row["recording"],
            "start_s": float(row["start_s"]),
        }


def windows(n_subjects: int = 6, per_recording: int = 20, seizure_rate: float = 0.1):
    rng = np.random.default_rng(0)
    rows = [
        {
            "subject": f"{s:02d}",
            "session": None,
            "recording": f"sub-{s:02d}_run-{r}",
            "start_s": 2.0 * w,
            "label": int(rng.random() < seizure_rate or w == 0),
        }
        for s in range(n_subjects)
        for r in range(2)
        for w in range(per_recording)
    ]
    return TinyWindows(pd.DataFrame(rows))


def rows_seen(loader) -> np.ndarray:
    return np.concatenate([b["x"][:, 0, 0].numpy().astype(int) for b in loader])


def test_batches_are_the_design_dict() -> None:
    dm = EEGDataModule(windows(), split="subject", batch_size=7)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (7, N_CHANS, N_TIMES) and batch["x"].dtype == torch.float32
    assert batch["y"].shape == (7,) and batch["y"].dtype == torch.int64
    assert batch["ch_pos"].shape == (7, N_CHANS, 3)
    assert batch["ch_mask"].dtype == torch.bool
    assert isinstance(batch["subject"], list) and isinstance(batch["subject"][0], str)
    assert batch["session"] == [None] * 7  # missing identifiers stay visible as None
    assert batch["start_s"].dtype == torch.float64


@pytest.mark.parametrize("balanced", [False, True])
def test_no_training_batch_of_a_single_window(balanced: bool) -> None:
    dm = EEGDataModule(
        windows(), split="subject", batch_size=7, balanced=balanced, min_steps_per_epoch=0
    )
    dm.setup("fit")
    n_train = len(dm.split.train)
    dm.batch_size = n_train - 1  # leaves exactly one window for a last batch
    sizes = [len(b["y"]) for b in dm.train_dataloader()]
    assert sizes == [n_train - 1]
    dm.batch_size = n_train - 2  # a last batch of two windows is kept
    assert [len(b["y"]) for b in dm.train_dataloader()] == [n_train - 2, 2]


def test_collate_mixes_tensors_numbers_and_strings() -> None:
    batch = collate_windows(
        [{"a": np.zeros(2), "b": 1.5, "c": "x"}, {"a": np.ones(2), "b": 2.0, "c": "y"}]
    )
    assert batch["a"].shape == (2, 2) and batch["b"].tolist() == [1.5, 2.0]
    assert batch["c"] == ["x", "y"]


@pytest.mark.parametrize("split", ["subject", "recording", "cross_subject"])
def test_loaders_see_disjoint_groups(split: str) -> None:
    data = windows()
    fold = 2 if split == "cross_subject" else 0
    dm = EEGDataModule(data, split=split, fold=fold, valid_fraction=0.2, batch_size=16)
    dm.setup("fit")
    unit = "subject" if split == "cross_subject" else split
    keys = group_keys(data.index, unit).to_numpy()
    seen = {
        part: set(keys[rows_seen(loader)])
        for part, loader in [
            ("train", dm.train_dataloader()),
            ("valid", dm.val_dataloader()),
            ("test", dm.test_dataloader()),
        ]
    }
    assert seen["train"] and seen["valid"] and seen["test"]
    assert not seen["train"] & seen["valid"] and not seen["train"] & seen["test"]
    assert not seen["valid"] & seen["test"]


def test_leave_one_subject_out_folds() -> None:
    dm = EEGDataModule(windows(n_subjects=4), split="cross_subject", valid_fraction=0.0)
    assert dm.n_folds == 4
    tested = [sorted(dm.index["subject"].iloc[s.test].unique()) for s in dm.splits]
    assert tested == [["00"], ["01"], ["02"], ["03"]]
    dm.fold = 4
    with pytest.raises(ConfigError, match="fold 4 does not exist"):
        dm.setup("fit")


def test_balanced_sampler_draws_classes_roughly_evenly() -> None:
    data = windows(n_subjects=10, per_recording=50, seizure_rate=0.03)
    dm = EEGDataModule(data, split="subject", balanced=True, batch_size=100, seed=1)
    train_labels = data.index["label"].iloc[dm.split.train]
    assert train_labels.mean() < 0.1  # seizures are rare in the data ...
    drawn = np.concatenate([b["y"].numpy() for b in dm.train_dataloader()])
    assert len(drawn) == len(dm.split.train)
    assert 0.42 < drawn.mean() < 0.58  # ... but half of what the model sees


def test_balanced_weights_ignore_unlabelled_windows() -> None:
    weights = balanced_weights(pd.Series([0, 0, 0, 1, None, -1]))
    assert weights.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0, 0.0, 0.0])


def test_order_is_deterministic_by_seed() -> None:
    def first_epoch(seed: int) -> np.ndarray:
        dm = EEGDataModule(windows(), split="subject", seed=seed, batch_size=32)
        return rows_seen(dm.train_dataloader())

    np.testing.assert_array_equal(first_epoch(5), first_epoch(5))
    assert not np.array_equal(first_epoch(5), first_epoch(6))


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown split"):
        EEGDataModule(windows(), split="random_windows")
    with pytest.raises(ConfigError, match="no 'index'"):
        EEGDataModule(torch.utils.data.TensorDataset(torch.zeros(2)))
    dm = EEGDataModule(
        windows(n_subjects=2), split="subject", valid_fraction=0.5, test_fraction=0.5
    )
    with pytest.raises(ConfigError, match="training would be empty"):
        dm.setup("fit")


def test_summary_names_subjects_and_classes_per_part() -> None:
    dm = EEGDataModule(windows(), split="subject", test=["05"], valid=["04"])
    summary = dm.summary()
    assert summary["test"]["subjects"] == ["05"] and summary["valid"]["subjects"] == ["04"]
    assert sum(summary["train"]["classes"].values()) == summary["train"]["n_windows"]


def test_on_a_window_cache_built_from_simulated_edf(tmp_path) -> None:
    from neurodecode.data.build import build_cache
    from neurodecode.data.fetch import RecordingEntry
    from neurodecode.data.preprocess import load_preprocess_config
    from neurodecode.data.simulated import generate_dataset

    root = tmp_path / "simulated"
    generate_dataset(
        root,
        {
            "task": "seizure",
            "n_subjects": 2,
            "n_runs": 2,
            "duration_s": 120.0,
            "seizures_per_run": [1, 1],
            "seizure_duration_s": [20.0, 30.0],
        },
    )
    entries = [
        RecordingEntry(
            path=edf,
            subject=edf.name[4:6],
            session="01",
            run=edf.name.split("run-")[1][:2],
            annotation_path=edf.with_name(edf.name.replace("_eeg.edf", "_events.tsv")),
        )
        for edf in sorted(root.rglob("*_eeg.edf"))
    ]
    config = load_preprocess_config(
        "seizure", {"windows": {"label_map": {"bckg": 0, "sz": 1}, "background": "bckg"}}
    )
    cache = build_cache(
        entries,
        config,
        tmp_path / "cache",
        dataset="simulated",
        annotation_format="szcore_tsv",
        num_workers=0,
        progress=False,
    )
    dm = EEGDataModule(
        cache,
        split="recording",
        valid_fraction=0.25,
        test_fraction=0.25,
        balanced=True,
        batch_size=8,
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (dm.train_batch_size, len(cache.ch_names), cache.n_times)
    assert batch["ch_mask"].shape == (dm.train_batch_size, len(cache.ch_names))
    recordings = {
        part: {r for b in loader for r in b["recording"]}
        for part, loader in [
            ("train", dm.train_dataloader()),
            ("valid", dm.val_dataloader()),
            ("test", dm.test_dataloader()),
        ]
    }
    assert [len(recordings[p]) for p in ("train", "valid", "test")] == [2, 1, 1]
    assert not recordings["train"] & (recordings["valid"] | recordings["test"])
    assert dm.summary()["train"]["classes"]["1"] > 0  # seizure windows reach training
