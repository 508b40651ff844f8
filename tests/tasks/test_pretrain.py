"""The pretraining mixture, the pretrain task and the recipe's run down to the exported encoder."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from neurodecode.data.mixture import MixtureDataModule, WindowMixture, collate_mixture
from neurodecode.errors import ChannelError, ConfigError, ContractError
from neurodecode.registry import TASKS


class FakeWindows(torch.utils.data.Dataset):
    """A window dataset with a cache's attributes (random signals, no disk)."""

    def __init__(self, ch_names, n_times=64, sfreq=32.0, n_recordings=4, per_recording=3, seed=0):
        from neurodecode.data.montage import channel_positions

        self.ch_names = list(ch_names)
        self.ch_pos = channel_positions(self.ch_names).astype(np.float32)  # NaN unknown, as caches
        self.sfreq, self.n_times = sfreq, n_times
        n = n_recordings * per_recording
        self.index = pd.DataFrame(
            {
                "subject": [f"s{i // per_recording}" for i in range(n)],
                "session": [""] * n,
                "recording": [f"r{i // per_recording}" for i in range(n)],
                "start_s": [float(i % per_recording) for i in range(n)],
            }
        )
        self.x = torch.randn(
            n, len(self.ch_names), n_times, generator=torch.Generator().manual_seed(seed)
        )

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": -1, "ch_mask": torch.ones(len(self.ch_names), dtype=bool),
                "start_s": float(self.index.start_s[i])}  # fmt: skip


def two_montages() -> dict[str, FakeWindows]:
    return {
        "ten_twenty": FakeWindows(["Fp1", "Fp2", "C3", "C4", "O1"], n_times=64),
        "bipolar": FakeWindows(["Fp1-F7", "F7-T7", "T7-P7"], n_times=48, seed=1),
    }


def test_mixture_weights_rates_lengths_and_positions():
    datasets = two_montages()
    mixture = WindowMixture(datasets, {"ten_twenty": 3.0, "bipolar": 1.0})
    probabilities = mixture.sample_weights()
    assert probabilities.sum() == pytest.approx(1.0)
    assert probabilities[:12].sum() == pytest.approx(0.75)
    names, positions = mixture.channels()
    assert names[:5] == ["Fp1", "Fp2", "C3", "C4", "O1"] and len(names) == 8
    item = mixture[13]
    assert item["dataset"] == "bipolar" and item["x"].shape == (3, 48)
    assert item["recording"] == "bipolar/r0"

    with pytest.raises(ContractError, match="resample=64"):
        WindowMixture(datasets, sfreq=64.0)
    with pytest.raises(ContractError, match="shorter than one patch"):
        WindowMixture(datasets, min_times=50)
    with pytest.raises(ConfigError, match="positive"):
        WindowMixture(datasets, {"bipolar": 0.0})
    unknown = {"bonn": FakeWindows(["EEG"])}
    assert torch.isnan(WindowMixture(unknown).positions[0]).all()  # fallback: unknown position
    with pytest.raises(ChannelError, match="no channel"):
        WindowMixture(unknown, require_positions=True)


def test_pretrain_task_trains_on_a_mixed_montage_batch():
    import lightning as L

    mixture = WindowMixture(two_montages())
    datamodule = MixtureDataModule(mixture, valid_fraction=0.25, samples_per_epoch=8, batch_size=4)
    assert set(datamodule.summary()["valid"]) <= {"ten_twenty", "bipolar"}
    names, positions = mixture.channels()
    model = {"_target_": "patch_conformer", "patch_s": 0.25, "dim": 16, "depth": 1, "n_heads": 2}
    task = TASKS.get("pretrain")(
        model=model, n_chans=len(names), n_times=64, sfreq=32.0, ch_names=names,
        ch_pos=positions.tolist(), masking="block", block_len=2, spectral_weight=0.5,
    )  # fmt: skip
    batch = collate_mixture([mixture[0], mixture[13]])
    assert torch.isfinite(task(batch)["loss"])
    before = task.encoder.tokenizer.embed[0].weight.detach().clone()
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(task, datamodule=datamodule)
    assert not torch.equal(before, task.encoder.tokenizer.embed[0].weight)
    assert math.isfinite(trainer.callback_metrics["val/loss"].item())


def test_pretrain_recipe_runs_and_exports_an_encoder(tmp_path, monkeypatch):
    import neurodecode.tasks.pretrain as pretrain_module
    from neurodecode import train

    monkeypatch.setattr(
        pretrain_module, "prepare_mixture", lambda datasets, **kw: WindowMixture(two_montages())
    )
    overrides = [
        "recipe=pretrain", "trainer.max_steps=2", "trainer.enable_progress_bar=false",
        "model.dim=16", "model.depth=1", "model.n_heads=2", "model.patch_s=0.25",
        "data.sfreq=32.0", "data.datamodule.batch_size=4", "data.datamodule.samples_per_epoch=8",
        "data.datamodule.valid_fraction=0.25",
    ]  # fmt: skip
    results = train.run(train.compose(overrides), tmp_path)
    assert results["steps"] == 2
    exported = json.loads((tmp_path / "encoder" / "config.json").read_text())
    assert exported["model"]["_target_"] == "patch_conformer"
    assert exported["task"] == "pretrain" and len(exported["signal"]["ch_names"]) == 8
    assert json.loads((tmp_path / "results.json").read_text())["encoder"] == "encoder"

    # init_from accepts the run folder, its export and its Lightning checkpoint alike
    from neurodecode.finetune import read_init_source

    exported = read_init_source(tmp_path)
    checkpoint = read_init_source(tmp_path / "checkpoints" / "last.ckpt")
    assert checkpoint.model["_target_"] == "patch_conformer" and checkpoint.sfreq == 32.0
    assert exported.state.keys() == checkpoint.state.keys()
    assert all(torch.equal(exported.state[k], checkpoint.state[k]) for k in exported.state)
