"""Helpers shared by the Hub tests: a tiny model class, endpoint switching, subprocess env."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

TINY = "hub_test_tiny"
CH_NAMES = ["Fp1", "Fp2", "C3", "C4"]


class TinyNet(nn.Module):
    """A registered-for-the-test model: conv → mean → linear, plus a persistent buffer."""

    def __init__(self, n_chans, n_outputs, n_times, sfreq, chs_info=None, hidden=6):
        super().__init__()
        self.conv = nn.Conv1d(n_chans, hidden, 5)
        self.head = nn.Linear(hidden, n_outputs)
        self.register_buffer("offset", torch.randn(n_chans, 1))

    def forward(self, x, ch_pos=None, ch_mask=None, return_features=False):
        features = self.conv(x + self.offset).mean(-1)
        return features if return_features else self.head(features)


def use_endpoint(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Point the already-imported huggingface_hub at ``url`` (it reads HF_ENDPOINT at import)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
    )


def subprocess_env(**extra: str) -> dict[str, str]:
    """The current environment (HF_* settings of the test included) plus ``extra``."""
    return {**os.environ, **extra}
