"""Model selection and early stopping wait ``early_stopping.min_epochs`` epochs (issue 12,
item 4): on a validation set of five trials the untrained epoch 0 often scores best and,
selected, predicts one class for every test trial."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from neurodecode import train
from neurodecode.run.callbacks import SelectAfterWarmup, StopAfterWarmup, first_selectable_epoch


class ScriptedLoss(L.LightningModule):
    """Logs ``val/loss`` = ``losses[epoch]``: the validation curve is given."""

    def __init__(self, losses: list[float]) -> None:
        super().__init__()
        self.losses = losses
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.weight - batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.losses[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(tmp_path, losses: list[float], max_epochs: int, min_epochs: int, patience: int = 2):
    """Fit with both callbacks: (checkpoint callback, epochs run)."""
    checkpoint = SelectAfterWarmup(
        dirpath=tmp_path,
        filename="best-{epoch:03d}",
        monitor="val/loss",
        save_last=True,
        min_epochs=min_epochs,
    )
    stopping = StopAfterWarmup(monitor="val/loss", patience=patience, min_epochs=min_epochs)
    trainer = L.Trainer(max_epochs=max_epochs, callbacks=[checkpoint, stopping], logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, accelerator="cpu")  # fmt: skip
    loader = DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=2)
    trainer.fit(ScriptedLoss(losses), loader, loader)
    return checkpoint, trainer.current_epoch


def test_the_best_epoch_is_chosen_after_the_warm_up(tmp_path):
    losses = [0.1, 0.9, 0.8, 0.5, 0.4, 0.6, 0.7]  # epoch 0 is the lowest
    checkpoint, _ = fit(tmp_path, losses, max_epochs=7, min_epochs=3, patience=5)
    assert checkpoint.best_model_path.endswith("best-epoch=004.ckpt")
    assert (tmp_path / "last.ckpt").is_file()
    plain, _ = fit(tmp_path / "plain", losses, max_epochs=7, min_epochs=0, patience=5)
    assert plain.best_model_path.endswith("best-epoch=000.ckpt")  # what it guards against


def test_early_stopping_counts_patience_from_the_warm_up(tmp_path):
    losses = [0.1, 0.9, 0.8, 0.7, 0.75, 0.8, 0.9, 0.95, 1.0, 1.1]
    # without the warm-up, epochs 1 and 2 fail to beat epoch 0: stopped after epoch 2
    _, epochs = fit(tmp_path / "plain", losses, max_epochs=10, min_epochs=0)
    assert epochs == 3
    # with it: epoch 3 (0.7) is the first candidate, 4 and 5 are worse, stopped after 5
    checkpoint, epochs = fit(tmp_path, losses, max_epochs=10, min_epochs=3)
    assert epochs == 6 and checkpoint.best_model_path.endswith("best-epoch=003.ckpt")


def test_a_run_shorter_than_the_warm_up_selects_its_last_epoch(tmp_path):
    checkpoint, _ = fit(tmp_path, [0.1, 0.5], max_epochs=2, min_epochs=3)
    assert checkpoint.best_model_path.endswith("best-epoch=001.ckpt")
    assert first_selectable_epoch(L.Trainer(max_epochs=-1, logger=False), 3) == 3


@pytest.mark.parametrize("recipe", ["seizure", "motor_imagery"])
def test_recipes_select_with_the_warm_up(recipe):
    callbacks = train.compose([f"recipe={recipe}"]).callbacks
    assert callbacks.model_checkpoint.min_epochs == callbacks.early_stopping.min_epochs == 3
    assert train.compose(["recipe=pretrain"]).callbacks.model_checkpoint.min_epochs == 0
