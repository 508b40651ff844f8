"""Resuming from a checkpoint ends exactly where an uninterrupted run ends (epoch seeding)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from neurodecode.run import EpochSeeding
from neurodecode.tasks.classification import ClassificationTask


class Killed(RuntimeError):
    pass


class KillAtEpoch(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise Killed


class Data(L.LightningDataModule):
    """Shuffled training data whose order depends on ``seed``, like EEGDataModule."""

    def __init__(self, make_dataset) -> None:
        super().__init__()
        self.seed = 0
        self.make_dataset = make_dataset

    def train_dataloader(self):
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.make_dataset(64), batch_size=8, shuffle=True, generator=generator)

    def val_dataloader(self):
        return DataLoader(self.make_dataset(16, seed=3), batch_size=8)


def _fit(model, make_dataset, directory, *callbacks, ckpt_path=None):
    L.seed_everything(0, verbose=False)
    task = ClassificationTask(model, 4, 2, 32, 32.0, lr=0.05)
    task.encoder.features.insert(1, torch.nn.Dropout(0.5))  # randomness inside the model too
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=3, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[ModelCheckpoint(dirpath=directory, monitor="val/loss", save_last=True),
                   EpochSeeding(0), *callbacks],
    )  # fmt: skip
    trainer.fit(task, datamodule=Data(make_dataset), ckpt_path=ckpt_path, weights_only=False)
    return task


def test_resumed_training_ends_with_the_same_weights(tiny_model, make_variance_dataset, tmp_path):
    data = make_variance_dataset
    reference = _fit(tiny_model, data, tmp_path / "a")
    with pytest.raises(Killed):
        _fit(tiny_model, data, tmp_path / "b", KillAtEpoch(1))
    resumed = _fit(tiny_model, data, tmp_path / "b", ckpt_path=tmp_path / "b" / "last.ckpt")
    for ours, theirs in zip(resumed.parameters(), reference.parameters(), strict=True):
        assert torch.equal(ours, theirs)
