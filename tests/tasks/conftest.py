"""A tiny registered encoder and batch factories, so task tests do not depend on real models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurodecode.registry import MODELS


class TinyEncoder(nn.Module):
    """Log-variance per channel → linear head: trains in a few steps on variance differences."""

    def __init__(self, n_chans, n_outputs, n_times, sfreq, chs_info=None, hidden=8):
        super().__init__()
        self.n_features = hidden
        self.features = nn.Sequential(nn.Linear(n_chans, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_outputs)
        self.chs_info = chs_info

    def forward(self, x, ch_pos=None, ch_mask=None, return_features=False):
        features = self.features(torch.log(x.var(dim=2) + 1e-6))
        return features if return_features else self.head(features)


@pytest.fixture()
def tiny_model(monkeypatch):
    """Register ``TinyEncoder`` as model ``tiny`` for the duration of one test."""
    MODELS.names()  # import the registered models first, so "tiny" is added, not replaced
    monkeypatch.setitem(MODELS._entries, "tiny", TinyEncoder)
    return {"_target_": "tiny", "hidden": 8}


@pytest.fixture()
def make_variance_dataset():
    """Factory of window dicts where class 1 has twice the amplitude of class 0 on channel 0."""
    return variance_dataset


def variance_dataset(n: int, n_chans: int = 4, n_times: int = 32, seed: int = 0) -> list[dict]:
    """Class 1 has twice the amplitude of class 0 on channel 0."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        y = i % 2
        x = rng.standard_normal((n_chans, n_times)).astype(np.float32)
        x[0] *= 1 + y
        items.append(
            {
                "x": torch.from_numpy(x),
                "y": y,
                "subject": f"{i % 3}",
                "recording": f"r{i % 5}",
                "start_s": float(i),
            }
        )
    return items
