"""scaling.method=train_split: statistics of the training windows only, applied to every part."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from neurodecode.data import scaling, transform
from neurodecode.data.datamodule import EEGDataModule
from neurodecode.data.preprocess import load_preprocess_config
from neurodecode.errors import CheckpointError, ConfigError

N_CHANS, N_TIMES, PER_RECORDING = 3, 16, 4
TRAIN = [f"rec-{r}" for r in range(6)]
VALID, TEST = ["rec-6", "rec-7"], ["rec-8", "rec-9"]


def members(names: list[str]) -> list[str]:
    """Split members of recordings (``subject//recording``; subject r holds rec-r)."""
    return [f"{name[4:]}//{name}" for name in names]


class MicrovoltWindows(torch.utils.data.Dataset):
    """Stands in for a train_split cache: windows in µV and the cache's config in ``meta``.

    Training recordings are small (about ±20 µV around 10 µV); validation and test ones are
    large (±300 µV around 500 µV), so statistics that read them are visibly wrong. Channel 2
    of rec-1 is masked and holds 10 mV, which per-channel statistics must not see either.
    """

    def __init__(self, per: str = "channel", clip: float | None = 5.0) -> None:
        self.meta = {"config": {"scaling": {"method": "train_split", "per": per}, "clip": clip}}
        rows = [
            {"subject": str(r), "session": None, "recording": f"rec-{r}", "start_s": 4.0 * w,
             "label": w % 2}
            for r in range(10)
            for w in range(PER_RECORDING)
        ]  # fmt: skip
        self.index = pd.DataFrame(rows)
        rng = np.random.default_rng(0)
        small = rng.normal(10.0, 20.0, (60, N_CHANS, N_TIMES))
        self.x = rng.normal(500.0, 300.0, (len(rows), N_CHANS, N_TIMES))
        self.x[:24] = small[:24] * np.array([1.0, 2.0, 4.0])[:, None]  # 6 training recordings
        self.x[4:8, 2] = 1e4
        self.x = self.x.astype(np.float32)
        self.masks = np.ones((10, N_CHANS), bool)
        self.masks[1, 2] = False

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        recording = i // PER_RECORDING
        return {
            "x": torch.from_numpy(self.x[i]),
            "y": int(self.index["label"].iloc[i]),
            "ch_pos": torch.zeros(N_CHANS, 3),
            "ch_mask": torch.from_numpy(self.masks[recording]),
            "subject": str(recording),
            "session": None,
            "recording": f"rec-{recording}",
            "start_s": float(self.index["start_s"].iloc[i]),
        }


def datamodule(dataset: MicrovoltWindows) -> EEGDataModule:
    dm = EEGDataModule(dataset, split="recording", train=members(TRAIN), valid=members(VALID),
                       test=members(TEST), batch_size=5)  # fmt: skip
    dm.setup("fit")
    return dm


def expected_statistics(dataset: MicrovoltWindows, per: str) -> tuple[np.ndarray, np.ndarray]:
    """Median and IQR / 1.349 of the good samples of the training recordings alone."""
    rows = np.arange(len(TRAIN) * PER_RECORDING)
    x = dataset.x[rows]
    good = dataset.masks[rows // PER_RECORDING]
    if per == "recording":
        values = [x[good].ravel()]
    else:
        values = [x[:, c][good[:, c]].ravel() for c in range(N_CHANS)]
    q25, median, q75 = np.array([np.percentile(v, [25, 50, 75]) for v in values]).T
    return median, (q75 - q25) / transform.IQR_TO_STD


@pytest.mark.parametrize("per", ["channel", "recording"])
def test_statistics_come_from_the_training_windows_only(per):
    dataset = MicrovoltWindows(per)
    dm = datamodule(dataset)
    centre, spread = expected_statistics(dataset, per)
    np.testing.assert_allclose(dm.scaling.centre[:, 0], centre, rtol=1e-12)
    np.testing.assert_allclose(dm.scaling.spread[:, 0], spread, rtol=1e-12)
    assert dm.scaling.centre.shape == ((N_CHANS, 1) if per == "channel" else (1, 1))
    # a leak of validation/test windows (or of the masked channel) would move the median far
    assert np.all(np.abs(dm.scaling.centre) < 100)


def test_every_part_is_scaled_with_the_training_statistics():
    dataset = MicrovoltWindows()
    dm = datamodule(dataset)
    stats = dm.scaling
    for loader, names in ((dm.val_dataloader(), VALID), (dm.test_dataloader(), TEST)):
        batch = torch.cat([b["x"] for b in loader]).numpy()
        rows = np.flatnonzero(dataset.index["recording"].isin(names))
        expected = ((dataset.x[rows] - stats.centre) / stats.spread).astype(np.float32)
        np.testing.assert_array_equal(batch, np.clip(expected, -5.0, 5.0))
        assert np.abs(batch).max() == 5.0  # large validation/test windows are clipped
    train = next(iter(dm.train_dataloader()))
    masked = [i for i, r in enumerate(train["recording"]) if r == "rec-1"]
    assert all(not train["x"][i, 2].any() for i in masked)  # masked channel stays zero


def test_other_methods_leave_the_windows_as_cached():
    dataset = MicrovoltWindows()
    dataset.meta = {"config": {"scaling": {"method": "robust_zscore", "per": "channel"}}}
    dm = datamodule(dataset)
    assert dm.scaling is None
    batch = next(iter(dm.val_dataloader()))
    np.testing.assert_array_equal(batch["x"].numpy(), dataset.x[24:29])


def test_the_statistics_travel_in_the_config_and_in_the_checkpoint_state():
    dm = datamodule(MicrovoltWindows())
    config = scaling.with_statistics({"scaling": {"method": "train_split"}, "clip": 5.0},
                                     dm.scaling)  # fmt: skip
    back = scaling.recorded_statistics(config, N_CHANS, where="config.json")
    np.testing.assert_array_equal(back.centre, dm.scaling.centre)
    np.testing.assert_array_equal(back.spread, dm.scaling.spread)
    assert back.clip == 5.0
    state = dm.state_dict()
    fresh = datamodule(MicrovoltWindows())
    fresh.scaling = scaling.SplitStatistics(np.zeros((3, 1)), np.ones((3, 1)), 5.0)
    fresh.load_state_dict(state)  # the checkpoint's statistics win
    np.testing.assert_array_equal(fresh.scaling.centre, dm.scaling.centre)


def test_train_split_without_statistics_is_refused_not_re_estimated():
    config = {"scaling": {"method": "train_split", "per": "channel", "statistics": None}}
    with pytest.raises(CheckpointError, match="does not record the training split") as err:
        scaling.recorded_statistics(config, N_CHANS, where="model/config.json")
    assert "model/config.json" in str(err.value)
    config["scaling"]["statistics"] = {"centre": [0.0, 1.0], "spread": [1.0, 1.0]}
    with pytest.raises(CheckpointError, match="for a model of 3 channel"):
        scaling.recorded_statistics(config, N_CHANS, where="model/config.json")
    dm = datamodule(MicrovoltWindows())
    with pytest.raises(CheckpointError, match="checkpoint does not store them"):
        dm.load_state_dict({"scaling_statistics": None})


def test_train_split_is_a_valid_method_whose_transform_keeps_microvolts():
    config = load_preprocess_config("default", ["scaling.method=train_split"])
    signal = np.random.default_rng(2).normal(0, 300, (2, 500)).astype(np.float32)
    good = np.array([True, False])
    scaled = transform.recording_scaling(config, signal, good).apply(signal, good)
    np.testing.assert_array_equal(scaled[0], signal[0])  # µV, unclipped (clip is 20)
    assert not scaled[1].any()
    with pytest.raises(ConfigError, match="robust_zscore, fixed or train_split"):
        load_preprocess_config("default", ["scaling.method=per_split"])
