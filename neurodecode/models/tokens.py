"""Tokens for any montage: per-channel time patches with electrode-position encodings.

A window ``(batch, n_chans, n_times)`` sampled at the encoder's common rate becomes a grid
of tokens ``(batch, n_chans, n_patches, dim)``: each channel is cut into non-overlapping
patches of ``patch_len`` samples, each patch is embedded by a linear map shared by all
channels, and two encodings are added:

* **where** -- :class:`FourierPositionEncoding` of the electrode's 3-D coordinates (metres):
  sine/cosine features at log-spaced frequencies along fixed directions, then an MLP (in the
  spirit of REVE's 4-D encoding). Electrodes whose position is unknown (NaN) get a learned
  "unknown position" vector instead, so a channel without coordinates still takes part
  (documented fallback; the mixture can refuse such datasets instead).
* **when** -- the fixed sinusoidal encoding of the patch index
  (:func:`neurodecode.models.blocks.sinusoidal_positions`).

Because nothing depends on the channel count or order, one encoder takes recordings with
different montages and lengths; padding is described by masks (:func:`token_mask`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from neurodecode.errors import ContractError
from neurodecode.models.blocks import sinusoidal_positions


def n_patches(n_times: int, patch_len: int) -> int:
    """Whole patches in ``n_times`` samples (a trailing partial patch is dropped)."""
    return n_times // patch_len


def patchify(x: Tensor, patch_len: int) -> Tensor:
    """Cut ``(batch, n_chans, n_times)`` into ``(batch, n_chans, n_patches, patch_len)``.

    Raises :class:`ContractError` when the window is shorter than one patch.
    """
    if x.ndim != 3:
        raise ContractError(
            f"expected (batch, n_chans, n_times), got shape {tuple(x.shape)}",
        )
    count = n_patches(x.shape[-1], patch_len)
    if count < 1:
        raise ContractError(
            f"a window of {x.shape[-1]} samples is shorter than one patch ({patch_len} samples)",
            hint="use longer windows or a shorter patch_s",
        )
    return x[..., : count * patch_len].reshape(x.shape[0], x.shape[1], count, patch_len)


def token_mask(
    shape: tuple[int, int, int],
    *,
    ch_mask: Tensor | None = None,
    n_valid_times: Tensor | None = None,
    patch_len: int,
    device: torch.device | None = None,
) -> Tensor:
    """Which tokens hold real signal: ``(batch, n_chans, n_patches)`` bool.

    Parameters
    ----------
    shape : (batch, n_chans, n_patches)
        The token grid.
    ch_mask : Tensor, optional
        ``(batch, n_chans)``, false for absent or padded channels.
    n_valid_times : Tensor, optional
        ``(batch,)`` samples of real signal per example (the rest is padding).
    patch_len : int
        Samples per patch.
    """
    batch, n_chans, count = shape
    valid = torch.ones(shape, dtype=torch.bool, device=device)
    if ch_mask is not None:
        valid = valid & ch_mask.to(device=device, dtype=torch.bool)[:, :, None]
    if n_valid_times is not None:
        patches = n_valid_times.to(device) // patch_len
        valid = valid & (torch.arange(count, device=device)[None, :] < patches[:, None])[:, None]
    return valid


class FourierPositionEncoding(nn.Module):
    """Electrode coordinates → ``dim``-sized vectors: Fourier features, then an MLP.

    The position (scaled by ``scale``, so a head's ~0.1 m becomes ~1) is projected onto
    ``n_directions`` fixed unit directions (the three axes plus evenly spread ones); each
    projection is encoded by sine and cosine at ``n_freqs`` log-spaced frequencies from 1 to
    ``max_freq``. NaN rows (unknown positions) get a learned vector.

    Parameters
    ----------
    dim : int
        Output size.
    n_freqs : int
        Frequencies per direction.
    n_directions : int
        Projection directions (at least 3).
    max_freq : float
        Highest frequency, in cycles per scaled unit.
    scale : float
        Factor applied to coordinates in metres.
    """

    def __init__(
        self,
        dim: int,
        n_freqs: int = 8,
        n_directions: int = 8,
        max_freq: float = 16.0,
        scale: float = 10.0,
    ) -> None:
        super().__init__()
        if n_directions < 3:
            raise ValueError(f"n_directions must be at least 3, got {n_directions}")
        self.scale = scale
        self.register_buffer("directions", _spread_directions(n_directions), persistent=False)
        frequencies = torch.logspace(0.0, math.log10(max_freq), n_freqs) * math.pi
        self.register_buffer("frequencies", frequencies, persistent=False)
        n_features = 2 * n_directions * n_freqs + 3
        self.mlp = nn.Sequential(nn.Linear(n_features, dim), nn.GELU(), nn.Linear(dim, dim))
        self.unknown = nn.Parameter(torch.zeros(dim))
        nn.init.trunc_normal_(self.unknown, std=0.02)

    def forward(self, positions: Tensor) -> Tensor:
        """``(..., 3)`` metres (NaN unknown) → ``(..., dim)``."""
        known = torch.isfinite(positions).all(dim=-1, keepdim=True)
        xyz = torch.nan_to_num(positions.float(), nan=0.0) * self.scale
        projected = xyz @ self.directions.T  # (..., n_directions)
        angles = projected[..., :, None] * self.frequencies  # (..., n_dir, n_freqs)
        features = torch.cat(
            [torch.sin(angles).flatten(-2), torch.cos(angles).flatten(-2), xyz], dim=-1
        )
        encoding = self.mlp(features)
        return torch.where(known, encoding, self.unknown.to(encoding.dtype))


def _spread_directions(count: int) -> Tensor:
    """The three axes, then points of a Fibonacci sphere: ``(count, 3)`` unit vectors."""
    axes = torch.eye(3)
    extra = count - 3
    if extra == 0:
        return axes
    i = torch.arange(extra, dtype=torch.float32) + 0.5
    z = 1.0 - 2.0 * i / extra
    radius = torch.sqrt(1.0 - z**2)
    angle = i * math.pi * (3.0 - math.sqrt(5.0))
    sphere = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle), z], dim=1)
    return torch.cat([axes, sphere])


class PatchTokenizer(nn.Module):
    """Per-channel patches → tokens with position ("where") and patch-index ("when") codes.

    ``(batch, n_chans, n_times)`` → patches ``(batch, n_chans, n_patches, patch_len)`` and
    tokens ``(batch, n_chans, n_patches, dim)``.

    Parameters
    ----------
    patch_len : int
        Samples per patch at the encoder's rate.
    dim : int
        Token size.
    position_freqs : int
        Frequencies of the electrode-position Fourier features.
    """

    def __init__(self, patch_len: int, dim: int, position_freqs: int = 8) -> None:
        super().__init__()
        self.patch_len = patch_len
        self.embed = nn.Sequential(nn.Linear(patch_len, dim), nn.LayerNorm(dim))
        self.position = FourierPositionEncoding(dim, n_freqs=position_freqs)

    def patches(self, x: Tensor) -> Tensor:
        """``x`` cut into patches (see :func:`patchify`)."""
        return patchify(x, self.patch_len)

    def embed_patches(self, patches: Tensor) -> Tensor:
        """Content embedding of ``(batch, n_chans, n_patches, patch_len)`` patches."""
        return self.embed(patches)

    def encodings(self, ch_pos: Tensor, n_patches: int) -> Tensor:
        """Position + time encodings, ``(batch, n_chans, n_patches, dim)`` (broadcastable).

        ``ch_pos`` is ``(batch, n_chans, 3)`` in metres, NaN where unknown.
        """
        where = self.position(ch_pos)[:, :, None, :]
        dim = where.shape[-1]
        when = sinusoidal_positions(n_patches, dim, device=ch_pos.device, dtype=where.dtype)
        return where + when[None, None]
