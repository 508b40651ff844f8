"""The task base class: gradient clipping under FSDP goes through the sharded module."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from neurodecode.tasks.classification import ClassificationTask


class FakeFSDP:
    """Stands in for torch's FullyShardedDataParallel (no process group on CPU)."""

    def __init__(self) -> None:
        self.clipped: list[float] = []

    def clip_grad_norm_(self, max_norm: float) -> None:
        self.clipped.append(max_norm)


@pytest.mark.parametrize("algorithm", [None, "norm"])
def test_fsdp_clips_by_norm_through_the_sharded_module(tiny_model, monkeypatch, algorithm):
    """Lightning's FSDP precision plugin refuses clipping by norm; the task does it through
    FSDP's own clip_grad_norm_, which reduces the norm over every shard."""
    import torch.distributed.fsdp

    monkeypatch.setattr(torch.distributed.fsdp, "FullyShardedDataParallel", FakeFSDP)
    task = ClassificationTask(tiny_model, n_chans=4, n_outputs=2, n_times=32, sfreq=32.0)
    fsdp = FakeFSDP()
    task._trainer = SimpleNamespace(model=fsdp)
    optimizer = torch.optim.SGD(task.parameters(), lr=0.1)
    task.configure_gradient_clipping(optimizer, 0.5, algorithm)
    assert fsdp.clipped == [0.5]


def test_other_strategies_clip_the_lightning_way(tiny_model, monkeypatch):
    task = ClassificationTask(tiny_model, n_chans=4, n_outputs=2, n_times=32, sfreq=32.0)
    task._trainer = SimpleNamespace(model=task)
    calls = []
    monkeypatch.setattr(task, "clip_gradients", lambda *a, **kw: calls.append((a, kw)))
    optimizer = torch.optim.SGD(task.parameters(), lr=0.1)
    task.configure_gradient_clipping(optimizer, 0.5, "norm")
    assert calls == [((optimizer,), {"gradient_clip_val": 0.5, "gradient_clip_algorithm": "norm"})]
