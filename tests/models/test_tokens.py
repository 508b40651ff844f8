"""Patch tokens for any montage: patches, token masks, electrode-position encoding."""

from __future__ import annotations

import math

import pytest
import torch

from neurodecode.errors import ContractError
from neurodecode.models.patch_conformer import PatchConformer
from neurodecode.models.tokens import FourierPositionEncoding, patchify, token_mask


def test_patchify_cuts_whole_patches_and_refuses_short_windows():
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).reshape(2, 3, 10)
    patches = patchify(x, 4)
    assert patches.shape == (2, 3, 2, 4)
    assert torch.equal(patches[1, 2, 1], x[1, 2, 4:8])
    with pytest.raises(ContractError, match="shorter than one patch"):
        patchify(x[..., :3], 4)


def test_token_mask_combines_channel_mask_and_padding_in_time():
    ch_mask = torch.tensor([[True, False, True], [True, True, True]])
    valid = token_mask((2, 3, 4), ch_mask=ch_mask, n_valid_times=torch.tensor([16, 9]), patch_len=4)
    assert valid[0].tolist() == [[True] * 4, [False] * 4, [True] * 4]
    assert valid[1].tolist() == [[True, True, False, False]] * 3


def test_position_encoding_separates_positions_and_marks_unknown_ones():
    torch.manual_seed(0)
    encode = FourierPositionEncoding(16)
    positions = torch.tensor(
        [[0.05, 0.0, 0.06], [-0.05, 0.0, 0.06], [math.nan] * 3, [math.nan] * 3]
    )
    out = encode(positions)
    assert out.shape == (4, 16) and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])
    assert torch.equal(out[2], out[3]) and torch.equal(out[2], encode.unknown)


def test_encoder_takes_any_channel_count_and_treats_zero_positions_as_unknown():
    torch.manual_seed(0)
    model = PatchConformer(4, 2, 128, 64.0, patch_s=0.25, dim=16, depth=1, n_heads=2).eval()
    for n_chans in (1, 3, 7):
        assert model(torch.randn(2, n_chans, 128)).shape == (2, 2)
    x = torch.randn(1, 3, 128)
    zeros = model(x, ch_pos=torch.zeros(1, 3, 3), return_features=True)
    nans = model(x, ch_pos=torch.full((1, 3, 3), math.nan), return_features=True)
    assert torch.allclose(zeros, nans)


def test_encoder_refuses_windows_shorter_than_a_patch():
    with pytest.raises(ContractError, match="shorter than one patch"):
        PatchConformer(4, 2, 10, 64.0, patch_s=0.25)
    model = PatchConformer(4, 2, 64, 64.0, patch_s=0.25, dim=16, depth=1, n_heads=2)
    with pytest.raises(ContractError, match="shorter than one patch"):
        model(torch.randn(1, 4, 8))
