"""PatchConformer: a montage-agnostic encoder over per-channel patch tokens.

:class:`PatchConformer` (registered model ``patch_conformer``) applies the dual-branch
idea to the token grid ``(channel, time patch)`` of :mod:`neurodecode.models.tokens`:
every layer runs a *temporal* transformer layer (each channel attends across its time
patches) and a *spatial* one (each time patch attends across channels), both built from
:class:`~neurodecode.models.blocks.TransformerEncoderLayer` (fused attention with a key
mask). Unlike :class:`~neurodecode.models.conformer.DualBranchConformer`, which mixes a
fixed channel list with a 1x1 convolution, nothing here depends on the channel count or
order, so one encoder takes any montage, rate-matched length and padding. It is the
encoder that masked pretraining (:mod:`neurodecode.models.masked_autoencoder`) trains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from neurodecode.errors import ConfigError, ContractError
from neurodecode.models.base import EncoderBase
from neurodecode.models.blocks import TransformerEncoderLayer
from neurodecode.models.heads import MLPHead
from neurodecode.models.spiking import SpikingTransformerEncoder
from neurodecode.models.tokens import PatchTokenizer, n_patches, token_mask
from neurodecode.registry import MODELS


def _attendable(key_mask: Tensor) -> Tensor:
    """``key_mask`` with fully masked rows opened up (their outputs are never used).

    Attention over no key at all would give NaN, which would leak through later layers.
    """
    return key_mask | ~key_mask.any(dim=-1, keepdim=True)


class _SpikingResidual(nn.Module):
    """``x + firing rates of a one-layer spiking transformer over x`` (same interface)."""

    def __init__(self, dim: int, mlp_ratio: float, time_steps: int) -> None:
        super().__init__()
        self.encoder = SpikingTransformerEncoder(dim, 1, time_steps, mlp_ratio, {})

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        return x + self.encoder(x, key_mask).to(x.dtype)


class FactorisedLayer(nn.Module):
    """Temporal attention within each channel, then spatial attention within each patch.

    ``(batch, n_chans, n_patches, dim)`` tokens and a ``(batch, n_chans, n_patches)`` bool
    mask of real tokens (keys outside it are not attended to). With ``spiking_time_steps``
    > 0 both sub-layers are spike-driven transformer layers of
    :mod:`neurodecode.models.spiking` (LIF neurons over that many time steps) added to the
    token stream. ``attention_kernel`` is :class:`~neurodecode.models.blocks.MultiHeadSelfAttention`'s.
    """

    def __init__(
        self,
        dim: int,
        n_heads: int,
        mlp_ratio: float,
        dropout: float,
        spiking_time_steps: int = 0,
        attention_kernel: str = "auto",
    ) -> None:
        super().__init__()
        if spiking_time_steps:
            self.temporal = _SpikingResidual(dim, mlp_ratio, spiking_time_steps)
            self.spatial = _SpikingResidual(dim, mlp_ratio, spiking_time_steps)
        else:
            self.temporal = TransformerEncoderLayer(
                dim, n_heads, mlp_ratio, dropout, attention_kernel
            )
            self.spatial = TransformerEncoderLayer(
                dim, n_heads, mlp_ratio, dropout, attention_kernel
            )

    def forward(self, tokens: Tensor, valid: Tensor | None) -> Tensor:
        """``valid`` None: every token is real, so attention runs without a key mask."""
        batch, n_chans, count, dim = tokens.shape
        along_time = tokens.reshape(batch * n_chans, count, dim)
        keys = None if valid is None else _attendable(valid.reshape(batch * n_chans, count))
        tokens = self.temporal(along_time, keys).reshape(batch, n_chans, count, dim)
        across = tokens.transpose(1, 2).reshape(batch * count, n_chans, dim)
        keys = (
            None
            if valid is None
            else _attendable(valid.transpose(1, 2).reshape(batch * count, n_chans))
        )
        across = self.spatial(across, keys).reshape(batch, count, n_chans, dim)
        return across.transpose(1, 2)


@MODELS.register("patch_conformer", aliases=("neurodecode.models.pretraining.PatchConformer",))
class PatchConformer(EncoderBase):
    """Montage-agnostic encoder over per-channel patch tokens (factorised attention).

    Parameters
    ----------
    n_chans, n_outputs, n_times : int
        Signal contract of the data it is built for; any channel count and any length of at
        least one patch work at run time (``n_chans`` only fixes the default positions from
        ``chs_info``).
    sfreq : float
        Sampling rate (Hz). Patches are ``patch_s`` seconds, so the rate fixes the patch
        embedding's input size: pretraining and fine-tuning data must share it.
    chs_info : list of dict, optional
        MNE ``info["chs"]``; their ``loc`` are the default electrode positions.
    patch_s : float
        Patch duration in seconds.
    dim, depth, n_heads, mlp_ratio : int, int, int, float
        Token size, factorised layers, attention heads, MLP hidden ratio.
    dropout : float
        Dropout in the transformer layers and the head.
    position_freqs : int
        Frequencies of the electrode-position Fourier features.
    head_hidden : int
        Hidden size of the output head.
    spiking_time_steps : int
        0: analog attention layers; > 0: spike-driven layers (LIF neurons, this many
        simulation time steps) from :mod:`neurodecode.models.spiking`.
    attention_kernel : {"auto", "sdpa"}
        ``auto``: the short-sequence Triton kernel of :mod:`neurodecode.models.attention` on
        CUDA where it applies; ``sdpa``: always PyTorch's fused attention. Same function.
    check_inputs_finite : bool
        Reject NaN/inf input in eager mode.

    Notes
    -----
    Channel positions are metres, ``(batch, n_chans, 3)``. Rows that are NaN, or exactly
    zero (the window cache writes unknown positions as 0; no electrode sits at the head's
    centre), are "unknown" and get a learned embedding. ``ch_mask`` false marks absent or
    padded channels: they are neither attended to nor pooled.
    """

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float,
        chs_info: Sequence[Mapping[str, Any]] | None = None,
        *,
        patch_s: float = 0.5,
        dim: int = 64,
        depth: int = 4,
        n_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        position_freqs: int = 8,
        head_hidden: int = 64,
        spiking_time_steps: int = 0,
        attention_kernel: str = "auto",
        check_inputs_finite: bool = True,
    ) -> None:
        super().__init__(n_chans, n_outputs, n_times, sfreq, chs_info)
        if spiking_time_steps < 0:
            raise ConfigError(f"spiking_time_steps must be >= 0, got {spiking_time_steps}")
        self.patch_len = max(1, round(patch_s * sfreq))
        if n_patches(n_times, self.patch_len) < 1:
            raise ContractError(
                f"n_times={n_times} is shorter than one patch ({self.patch_len} samples = "
                f"{patch_s} s at {sfreq} Hz)",
                hint="use longer windows or a shorter patch_s",
            )
        self.depth = depth
        self.check_inputs_finite = check_inputs_finite
        self.tokenizer = PatchTokenizer(self.patch_len, dim, position_freqs)
        self.attention_kernel = attention_kernel
        self.layers = nn.ModuleList(
            FactorisedLayer(dim, n_heads, mlp_ratio, dropout, spiking_time_steps, attention_kernel)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.n_features = dim
        self.final_layer = MLPHead(dim, n_outputs, head_hidden, dropout)

    def layer_of(self, name: str) -> int:
        """Depth of parameter ``name``: 0 tokenizer, 1..depth layers, depth + 1 norm and head.

        Read by fine-tuning for layer-wise learning-rate decay.
        """
        if name.startswith("tokenizer."):
            return 0
        if name.startswith("layers."):
            return int(name.split(".")[1]) + 1
        return self.depth + 1

    def _positions(self, x: Tensor, ch_pos: Tensor | None) -> Tensor:
        if ch_pos is None:
            if self.default_positions is not None and x.shape[1] == self.n_chans:
                ch_pos = self.default_positions[None]
            else:
                ch_pos = torch.full((1, x.shape[1], 3), math.nan, device=x.device)
        ch_pos = ch_pos.to(x.device).expand(x.shape[0], -1, -1)
        at_origin = (ch_pos == 0).all(dim=-1, keepdim=True)
        return torch.where(at_origin, torch.full_like(ch_pos, math.nan), ch_pos)

    def encode(
        self,
        x: Tensor,
        ch_pos: Tensor | None = None,
        ch_mask: Tensor | None = None,
        n_valid_times: Tensor | None = None,
        hide: Tensor | None = None,
        mask_token: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Token features of ``x``.

        Parameters
        ----------
        x : Tensor
            ``(batch, n_chans, n_times)`` at the encoder's rate.
        ch_pos, ch_mask : Tensor, optional
            Positions (metres) and the channel mask (see the class notes).
        n_valid_times : Tensor, optional
            ``(batch,)`` real samples per example when windows were padded in time.
        hide : Tensor, optional
            ``(batch, n_chans, n_patches)`` bool: patches replaced by ``mask_token``.
        mask_token : Tensor, optional
            ``(dim,)`` the embedding that stands in for hidden patches (pretraining's).

        Returns
        -------
        tokens : Tensor
            ``(batch, n_chans, n_patches, dim)`` encoded tokens.
        valid : Tensor
            ``(batch, n_chans, n_patches)`` bool, tokens holding real signal.
        patches : Tensor
            ``(batch, n_chans, n_patches, patch_len)`` the input patches (targets).
        """
        x, ch_pos, ch_mask = self.prepare_input(
            x, ch_pos, ch_mask, fixed_montage=False, check_finite_input=self.check_inputs_finite
        )
        patches = self.tokenizer.patches(x)
        valid = token_mask(
            patches.shape[:3],
            ch_mask=ch_mask,
            n_valid_times=n_valid_times,
            patch_len=self.patch_len,
            device=x.device,
        )
        content = self.tokenizer.embed_patches(patches)
        if hide is not None:
            if mask_token is None:
                raise ValueError("hide needs the mask_token that replaces hidden patches")
            content = torch.where(hide[..., None], mask_token.to(content.dtype), content)
        encodings = self.tokenizer.encodings(self._positions(x, ch_pos), patches.shape[2])
        tokens = stream_dtype(content + encodings.to(content.dtype))
        attend = attention_mask(valid, ch_mask, n_valid_times)
        for layer in self.layers:
            tokens = layer(tokens, attend)
        return self.norm(tokens), valid, patches

    def embed(
        self,
        x: Tensor,
        ch_pos: Tensor | None = None,
        ch_mask: Tensor | None = None,
        n_valid_times: Tensor | None = None,
    ) -> Tensor:
        """The mean of real tokens ``(batch, dim)``; ``forward`` also takes ``n_valid_times``."""
        tokens, valid, _ = self.encode(x, ch_pos, ch_mask, n_valid_times)
        weights = valid.to(tokens.dtype)[..., None]
        return (tokens * weights).sum(dim=(1, 2)) / weights.sum(dim=(1, 2)).clamp_min(1.0)


def stream_dtype(tokens: Tensor) -> Tensor:
    """``tokens`` in bf16 under bf16 autocast, else unchanged.

    Autocast computes the layers in bf16 but would carry the residual stream between them
    in float32; carrying it in bf16 (as large-model trainers do by default) halves the
    bytes of every residual add, layer norm and layout change, which bound the step on
    GPU. Norms and the loss still compute in float32.
    """
    device = tokens.device.type
    if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.bfloat16:
        return tokens.to(torch.bfloat16)
    return tokens


def attention_mask(
    valid: Tensor, ch_mask: Tensor | None, n_valid_times: Tensor | None
) -> Tensor | None:
    """``valid``, or None when nothing is padded (attention then needs no key mask).

    Without a mask, ``scaled_dot_product_attention`` can take its flash kernel; the result
    is the same as with an all-true mask.
    """
    return None if ch_mask is None and n_valid_times is None else valid
