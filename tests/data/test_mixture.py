"""Bonn (one channel named ``EEG``, no known position) in the pretraining mixture."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from neurodecode.data.mixture import collate_mixture, prepare_mixture
from neurodecode.errors import ChannelError
from neurodecode.models.masked_autoencoder import MaskedAutoencoder
from neurodecode.models.patch_conformer import PatchConformer
from neurodecode.resources import resource_dir

BONN = {"subjects": ["Z001", "S001"], "num_workers": 0}


def bonn_spec() -> dict:
    """The mixture config's entry for bonn, with a weight and two segments."""
    mixture = OmegaConf.load(resource_dir("configs") / "data" / "mixture.yaml")
    spec = OmegaConf.to_container(mixture.datasets.bonn, resolve=True)
    spec["weight"] = 1.0
    spec["prepare"] = {**(spec.get("prepare") or {}), **BONN}
    return spec


@pytest.mark.slow
@pytest.mark.network
def test_bonn_joins_the_mixture_with_the_unknown_position(
    neurodecode_home, mirror_url, monkeypatch
):
    monkeypatch.setenv("NEURODECODE_MIRROR", mirror_url)
    mixture = prepare_mixture({"bonn": bonn_spec()}, sfreq=128.0, window_s=4.0, min_times=64)
    assert len(mixture) == 2 * 5  # 23.6 s → 5 windows of 4 s each
    batch = collate_mixture([mixture[0], mixture[len(mixture) - 1]])
    assert batch["x"].shape == (2, 1, 512)
    assert torch.isnan(batch["ch_pos"]).all() and batch["ch_mask"].all()

    encoder = PatchConformer(1, 1, 512, 128.0, dim=16, depth=1, n_heads=2, head_hidden=8)
    model = MaskedAutoencoder(encoder, decoder_dim=8, decoder_heads=1)
    out = model(batch["x"], batch["ch_pos"], batch["ch_mask"], batch["n_times"])
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    unknown = encoder.tokenizer.position.unknown
    assert unknown.grad is not None and unknown.grad.abs().sum() > 0

    with pytest.raises(ChannelError, match="bonn"):
        prepare_mixture({"bonn": bonn_spec()}, sfreq=128.0, window_s=4.0, require_positions=True)
