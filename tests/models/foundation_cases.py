"""Tiny configurations of the braindecode foundation models, for tests (shared by the
registry-driven tests and tests/models/test_foundation.py)."""

from __future__ import annotations

from typing import Any

from neurodecode.data.montage import SZCORE_19, channel_positions

#: Small versions of each model (one layer, few heads); the rate they were "pretrained" at
#: differs from the test data's, so every case resamples inside the model.
TINY: dict[str, dict[str, Any]] = {
    "labram": {"model_sfreq": 200.0, "num_layers": 1, "num_heads": 2},
    "cbramod": {"model_sfreq": 200.0, "n_layer": 1, "nhead": 2, "dim_feedforward": 32},
    "eegpt": {"model_sfreq": 256.0, "embed_dim": 16, "depth": 1, "num_heads": 2},
    "biot": {"model_sfreq": 200.0, "embed_dim": 16, "num_heads": 2, "num_layers": 1},
    "signal_jepa": {
        "model_sfreq": 128.0,
        "transformer__num_encoder_layers": 1,
        "transformer__num_decoder_layers": 0,  # the pretraining decoder: unused here
    },
}
#: REVE needs its position bank (a download); tests write a stand-in (test_foundation.py).
REVE_TINY = {"model_sfreq": 200.0, "embed_dim": 16, "depth": 1, "heads": 2, "head_dim": 8}

#: 10-20 names for up to 22 channels (SzCORE's 19, then three more).
NAMES = (*SZCORE_19, "FC3", "FC4", "CPz")


def named_chs(n_chans: int, names: tuple[str, ...] = NAMES) -> list[dict[str, Any]]:
    """``chs_info`` for the first ``n_chans`` of ``names``, with 10-05 positions."""
    chosen = list(names[:n_chans])
    positions = channel_positions(chosen)
    return [
        {"ch_name": n, "loc": [*map(float, p), *[0.0] * 9]}
        for n, p in zip(chosen, positions, strict=True)
    ]
