"""A tiny registered encoder and batch factories, so task tests do not depend on real models."""

from __future__ import annotations

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
    import neurodecode.registry as registry

    registry._load_registering_modules()
    monkeypatch.setitem(MODELS._entries, "tiny", TinyEncoder)
    return {"_target_": "tiny", "hidden": 8}
