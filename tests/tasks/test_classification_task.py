"""Classification task: schedule, training on separable data, refusals."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurodecode.errors import ForeignTargetError
from neurodecode.tasks.base import warmup_cosine
from neurodecode.tasks.classification import ClassificationTask


def quiet_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


def test_warmup_then_cosine():
    assert warmup_cosine(0, 10, 100) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(55, 10, 100) == pytest.approx(0.5)
    assert warmup_cosine(100, 10, 100, min_ratio=0.1) == pytest.approx(0.1)
    assert warmup_cosine(500, 10, 100, min_ratio=0.1) == pytest.approx(0.1)


def test_trains_and_scores_held_out_data(tiny_model, make_variance_dataset):
    L.seed_everything(0, verbose=False)
    task = ClassificationTask(
        tiny_model,
        n_chans=4,
        n_outputs=2,
        n_times=32,
        sfreq=32.0,
        lr=0.05,
        class_names=["low", "high"],
        ch_names=["C3", "Cz", "C4", "Pz"],
    )
    train = DataLoader(make_variance_dataset(128), batch_size=16, shuffle=True)
    test = DataLoader(make_variance_dataset(64, seed=1), batch_size=16)
    trainer = quiet_trainer(max_epochs=6)
    trainer.fit(task, train, test)
    assert "val/balanced_accuracy" in trainer.callback_metrics
    trainer.test(task, test, verbose=False)
    metrics = task.test_metrics
    assert metrics["n"] == 64
    assert metrics["accuracy"] > 0.8 and metrics["above_chance"]
    assert {"kappa", "roc_auc", "accuracy_lower_bound"} <= set(metrics)
    predictions = task.test_predictions
    assert list(predictions.columns[:5]) == ["y", "subject", "recording", "start_s", "p_low"]
    assert np.allclose(task.probabilities_of(predictions).sum(axis=1), 1.0, atol=1e-5)
    # the learning rate followed warm-up + cosine down to min_lr_ratio
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.05 * 0.01, rel=0.05)


def test_class_weights_are_checked_and_used(tiny_model):
    with pytest.raises(ValueError, match="class_weights"):
        ClassificationTask(tiny_model, 4, 2, 32, 32.0, class_weights=[1.0])
    task = ClassificationTask(tiny_model, 4, 2, 32, 32.0, class_weights=[1.0, 3.0])
    assert task.class_weights.tolist() == [1.0, 3.0]


def test_checkpoint_round_trip(tiny_model, tmp_path, make_variance_dataset):
    task = ClassificationTask(tiny_model, 4, 3, 32, 32.0)
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=1)
    trainer.fit(task, DataLoader(make_variance_dataset(8), batch_size=8))
    trainer.save_checkpoint(tmp_path / "t.ckpt")
    loaded = ClassificationTask.load_from_checkpoint(tmp_path / "t.ckpt")
    batch = {"x": torch.randn(2, 4, 32)}
    task.eval()
    assert torch.allclose(loaded(batch), task(batch))


def test_unregistered_model_is_refused():
    with pytest.raises(ForeignTargetError, match="registered"):
        ClassificationTask({"_target_": "os.system"}, 4, 2, 32, 32.0)


def test_tasks_are_registered():
    from neurodecode.registry import TASKS

    assert {"classification", "seizure", "retrieval"} <= set(TASKS.names())
