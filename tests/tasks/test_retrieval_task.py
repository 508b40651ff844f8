"""Retrieval task: the contrastive loss and learning a linear EEG ↔ image map."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from neurodecode.tasks.retrieval import RetrievalTask, multi_positive_info_nce


def test_loss_equals_clip_loss_without_repeated_concepts():
    torch.manual_seed(0)
    eeg, images = torch.randn(6, 5), torch.randn(6, 5)
    scale = torch.tensor(10.0)
    ours = multi_positive_info_nce(eeg, images, torch.arange(6), scale)
    logits = scale * F.normalize(eeg, dim=1) @ F.normalize(images, dim=1).T
    target = torch.arange(6)
    clip = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    assert torch.allclose(ours, clip)


def test_repeated_concepts_are_not_negatives():
    images = torch.eye(3)
    eeg = torch.eye(3)[[0, 0, 1]]  # two trials of concept 0, both perfectly aligned
    loss = multi_positive_info_nce(eeg, images, torch.tensor([0, 0, 1]), torch.tensor(100.0))
    assert loss.item() < 1e-3


def test_temperature_is_clamped(tiny_model):
    task = RetrievalTask(tiny_model, 4, 32, 32.0, image_embeddings=np.eye(3), temperature=1e-4)
    assert task.scale().item() == pytest.approx(100.0)
    assert task.scale().ndim == 0
    # FSDP (trainer=fsdp) refuses 0-d parameters: the learnable temperature has one element
    assert all(p.ndim > 0 for p in task.parameters())


def retrieval_items(images: np.ndarray, reps: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    n_concepts, n_chans = images.shape[0], 8
    mixing = np.random.default_rng(99).standard_normal((n_chans, images.shape[1]))
    items = []
    for c in range(n_concepts):
        for _ in range(reps):
            gain = np.exp(mixing @ images[c] * 0.5)  # log-variance is linear in the embedding
            x = rng.standard_normal((n_chans, 32)) * gain[:, None]
            items.append({"x": torch.tensor(x, dtype=torch.float32), "y": c})
    return items


def test_learns_to_retrieve_held_out_trials(tiny_model):
    L.seed_everything(0, verbose=False)
    images = np.random.default_rng(0).standard_normal((20, 6))
    task = RetrievalTask(
        dict(tiny_model, hidden=32),
        8,
        32,
        32.0,
        image_embeddings=images,
        lr=0.01,
        projection_hidden=32,
        dropout=0.0,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=15,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, DataLoader(retrieval_items(images, 8, 1), batch_size=32, shuffle=True))
    trainer.test(task, DataLoader(retrieval_items(images, 4, 2), batch_size=32), verbose=False)
    assert task.test_metrics["n_way"] == 20
    assert task.test_metrics["top1"] > 4 * task.test_metrics["chance_top1"]
