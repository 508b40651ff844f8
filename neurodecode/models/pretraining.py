"""Masked-reconstruction pretraining over patch tokens of any montage.

* :class:`PatchConformer` (registered model ``patch_conformer``) -- the dual-branch idea
  applied to the token grid ``(channel, time patch)`` of :mod:`neurodecode.models.tokens`:
  every layer runs a *temporal* transformer layer (each channel attends across its time
  patches) and a *spatial* one (each time patch attends across channels), both built from
  :class:`~neurodecode.models.blocks.TransformerEncoderLayer` (fused attention with a key
  mask). Unlike :class:`~neurodecode.models.conformer.DualBranchConformer`, which mixes a
  fixed channel list with a 1x1 convolution, nothing here depends on the channel count or
  order, so one encoder takes any montage, rate-matched length and padding.
* :func:`sample_mask` -- random or block masking of (channel, time) patches.
* :class:`MaskedAutoencoder` -- hides patches behind a learned mask token, encodes, decodes
  with a light factorised decoder and scores only hidden, real patches
  (:func:`masked_loss`): normalised signal (MSE or L1) and optionally the log-amplitude
  spectrum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from neurodecode.errors import ConfigError, ContractError
from neurodecode.models.blocks import (
    TransformerEncoderLayer,
    check_channel_inputs,
    check_finite,
    positions_from_chs_info,
)
from neurodecode.models.heads import MLPHead
from neurodecode.models.tokens import PatchTokenizer, n_patches, token_mask
from neurodecode.registry import MODELS

MASKING_MODES = ("random", "block")
LOSSES = ("mse", "l1")
TARGET_NORMS = ("patch", "none")


def _attendable(key_mask: Tensor) -> Tensor:
    """``key_mask`` with fully masked rows opened up (their outputs are never used).

    Attention over no key at all would give NaN, which would leak through later layers.
    """
    return key_mask | ~key_mask.any(dim=-1, keepdim=True)


class _SpikingResidual(nn.Module):
    """``x + firing rates of a one-layer spiking transformer over x`` (same interface)."""

    def __init__(self, dim: int, mlp_ratio: float, time_steps: int) -> None:
        super().__init__()
        from neurodecode.models.spiking import SpikingTransformerEncoder

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


@MODELS.register("patch_conformer")
class PatchConformer(nn.Module):
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
        super().__init__()
        if spiking_time_steps < 0:
            raise ConfigError(f"spiking_time_steps must be >= 0, got {spiking_time_steps}")
        self._arguments = dict(
            n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=float(sfreq),
            chs_info=None if chs_info is None else [dict(ch) for ch in chs_info],
            patch_s=patch_s, dim=dim, depth=depth, n_heads=n_heads, mlp_ratio=mlp_ratio,
            dropout=dropout, position_freqs=position_freqs, head_hidden=head_hidden,
            spiking_time_steps=spiking_time_steps, attention_kernel=attention_kernel,
            check_inputs_finite=check_inputs_finite,
        )  # fmt: skip
        self.n_chans, self.n_outputs, self.n_times, self.sfreq = n_chans, n_outputs, n_times, sfreq
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
        self.head = MLPHead(dim, n_outputs, head_hidden, dropout)
        positions = positions_from_chs_info(chs_info)
        if positions is not None and positions.shape[0] != n_chans:
            raise ContractError(f"chs_info lists {positions.shape[0]} channels; n_chans={n_chans}")
        self.register_buffer("default_positions", positions, persistent=False)

    def config_dict(self) -> dict[str, Any]:
        """Constructor arguments, for :func:`neurodecode.hub.export_model`."""
        return {"_target_": "patch_conformer", **self._arguments}

    def layer_of(self, name: str) -> int:
        """Depth of parameter ``name``: 0 tokenizer, 1..depth layers, depth + 1 norm and head."""
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
        name = type(self).__name__
        if x.ndim != 3:
            raise ContractError(f"{name} expects (batch, n_chans, n_times); got {tuple(x.shape)}")
        ch_pos, ch_mask = check_channel_inputs(x, ch_pos, ch_mask, model=name)
        if ch_mask is not None:
            x = torch.where(ch_mask[:, :, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        if self.check_inputs_finite:
            check_finite(x, model=name)
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

    def forward(
        self,
        x: Tensor,
        ch_pos: Tensor | None = None,
        ch_mask: Tensor | None = None,
        return_features: bool = False,
        n_valid_times: Tensor | None = None,
    ) -> Tensor:
        """``(batch, n_outputs)``, or the mean of real tokens ``(batch, dim)``."""
        tokens, valid, _ = self.encode(x, ch_pos, ch_mask, n_valid_times)
        weights = valid.to(tokens.dtype)[..., None]
        features = (tokens * weights).sum(dim=(1, 2)) / weights.sum(dim=(1, 2)).clamp_min(1.0)
        return features if return_features else self.head(features)


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


def check_mask_ratio(ratio: float) -> float:
    """Return ``ratio`` if it lies strictly between 0 and 1, else raise :class:`ConfigError`."""
    if not 0.0 < float(ratio) < 1.0:
        raise ConfigError(
            f"mask_ratio must lie strictly between 0 and 1, got {ratio}",
            hint="0 hides nothing (no loss) and 1 hides everything (nothing to reconstruct "
            "from); 0.5-0.55 is usual",
        )
    return float(ratio)


def sample_mask(
    valid: Tensor,
    ratio: float,
    *,
    mode: str = "random",
    block_len: int = 4,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Choose the patches to hide: ``(batch, n_chans, n_patches)`` bool.

    Of each example's real tokens (``valid``), ``round(ratio * n_real)`` are hidden, at
    least one and (when there are two or more) never all. ``random`` draws tokens
    independently; ``block`` hides runs of ``block_len`` consecutive patches of a channel
    (whole runs first, so the count stays exact). Padding is never hidden.

    Raises
    ------
    ConfigError
        For a ratio outside (0, 1), an unknown mode or a block length below 1.
    """
    check_mask_ratio(ratio)
    if mode not in MASKING_MODES:
        raise ConfigError(f"unknown masking mode {mode!r}; expected one of {MASKING_MODES}")
    batch, n_chans, count = valid.shape
    device = valid.device
    # Draw where the generator lives (reproducible CPU masks), else on the data's device.
    draw_on = device if generator is None else generator.device
    if mode == "random":
        scores = torch.rand(valid.shape, generator=generator, device=draw_on).to(device)
    else:
        if block_len < 1:
            raise ConfigError(f"block_len must be at least 1, got {block_len}")
        n_blocks = -(-count // block_len)
        per_block = torch.rand((batch, n_chans, n_blocks), generator=generator, device=draw_on)
        per_block = per_block.to(device)
        scores = per_block.repeat_interleave(block_len, dim=-1)[..., :count]
    scores = scores.masked_fill(~valid, math.inf).reshape(batch, -1)
    order = torch.argsort(scores, dim=1, stable=True)
    positions = torch.arange(order.shape[1], device=device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, positions)
    n_real = valid.reshape(batch, -1).sum(dim=1)
    n_hidden = torch.round(n_real * ratio).long()
    n_hidden = torch.minimum(n_hidden.clamp_min(1), (n_real - 1).clamp_min(1))
    hidden = rank < n_hidden[:, None]
    return hidden.reshape(valid.shape) & valid


def masked_loss(prediction: Tensor, target: Tensor, scored: Tensor, kind: str = "mse") -> Tensor:
    """Mean error over the tokens in ``scored`` only.

    Parameters
    ----------
    prediction, target : Tensor
        ``(batch, n_chans, n_patches, features)``.
    scored : Tensor
        ``(batch, n_chans, n_patches)`` bool: hidden tokens holding real signal.
    kind : {"mse", "l1"}
    """
    if kind not in LOSSES:
        raise ConfigError(f"unknown loss {kind!r}; expected one of {LOSSES}")
    error = (
        (prediction.float() - target.float()).square()
        if kind == "mse"
        else (prediction.float() - target.float()).abs()
    )
    per_token = error.mean(dim=-1)
    weights = scored.to(per_token.dtype)
    return (per_token * weights).sum() / weights.sum().clamp_min(1.0)


def normalise_patches(patches: Tensor, mode: str, eps: float = 1e-6) -> Tensor:
    """Reconstruction targets: each patch z-scored (``patch``) or left as is (``none``)."""
    if mode not in TARGET_NORMS:
        raise ConfigError(f"unknown target_norm {mode!r}; expected one of {TARGET_NORMS}")
    if mode == "none":
        return patches
    mean = patches.mean(dim=-1, keepdim=True)
    std = patches.std(dim=-1, keepdim=True, unbiased=False)
    return (patches - mean) / (std + eps)


def log_amplitude_spectrum(patches: Tensor) -> Tensor:
    """``log(1 + |rfft(patch)|)`` along the last axis (float32)."""
    return torch.log1p(torch.fft.rfft(patches.float(), dim=-1).abs())


class MaskedAutoencoder(nn.Module):
    """Hide patches, encode with a :class:`PatchConformer`, reconstruct the hidden ones.

    Parameters
    ----------
    encoder : PatchConformer
        The encoder being pretrained (exported alone afterwards).
    mask_ratio : float
        Share of real patches hidden per example, strictly between 0 and 1.
    masking : {"random", "block"}
        See :func:`sample_mask`.
    block_len : int
        Patches per block for ``block`` masking.
    decoder_dim, decoder_depth, decoder_heads : int
        Size of the light decoder (factorised layers, like the encoder's).
    loss : {"mse", "l1"}
        Error on the normalised signal.
    target_norm : {"patch", "none"}
        Z-score each target patch, or reconstruct the cached units.
    spectral_weight : float
        Weight of an extra log-amplitude-spectrum loss (0: off).
    """

    def __init__(
        self,
        encoder: PatchConformer,
        *,
        mask_ratio: float = 0.5,
        masking: str = "random",
        block_len: int = 4,
        decoder_dim: int = 32,
        decoder_depth: int = 1,
        decoder_heads: int = 2,
        loss: str = "mse",
        target_norm: str = "none",
        spectral_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, PatchConformer):
            raise ConfigError(
                f"masked pretraining needs a patch_conformer encoder, got {type(encoder).__name__}",
                hint="set model=patch_conformer",
            )
        self.mask_ratio = check_mask_ratio(mask_ratio)
        if masking not in MASKING_MODES:
            raise ConfigError(f"unknown masking mode {masking!r}; expected one of {MASKING_MODES}")
        if loss not in LOSSES:
            raise ConfigError(f"unknown loss {loss!r}; expected one of {LOSSES}")
        normalise_patches(torch.zeros(1, 1), target_norm)  # validates the name
        if spectral_weight < 0:
            raise ConfigError(f"spectral_weight must be >= 0, got {spectral_weight}")
        self.masking, self.block_len = masking, block_len
        self.loss_kind, self.target_norm, self.spectral_weight = loss, target_norm, spectral_weight
        self.encoder = encoder
        # The encoder's output head plays no part in reconstruction: frozen, so that data
        # parallel training (DDP) finds no parameter without a gradient.
        encoder.head.requires_grad_(False)
        self.mask_token = nn.Parameter(torch.zeros(encoder.n_features))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        patch_len = encoder.patch_len
        self.decoder_in = nn.Linear(encoder.n_features, decoder_dim)
        self.decoder = nn.ModuleList(
            FactorisedLayer(
                decoder_dim, decoder_heads, 2.0, 0.0, attention_kernel=encoder.attention_kernel
            )
            for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.signal_head = nn.Linear(decoder_dim, patch_len)
        self.spectrum_head = (
            nn.Linear(decoder_dim, patch_len // 2 + 1) if spectral_weight > 0 else None
        )

    def forward(
        self,
        x: Tensor,
        ch_pos: Tensor | None = None,
        ch_mask: Tensor | None = None,
        n_valid_times: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Mask, encode, decode and score one batch.

        Returns a dict with ``loss`` (total), ``signal_loss``, ``spectral_loss`` (0 when
        off), ``prediction`` and ``target`` (``(batch, n_chans, n_patches, patch_len)``),
        ``hidden`` and ``valid`` masks.
        """
        patches = self.encoder.tokenizer.patches(x)
        valid = token_mask(
            patches.shape[:3],
            ch_mask=ch_mask,
            n_valid_times=n_valid_times,
            patch_len=self.encoder.patch_len,
            device=x.device,
        )
        hidden = sample_mask(
            valid, self.mask_ratio, mode=self.masking, block_len=self.block_len,
            generator=generator,
        )  # fmt: skip
        tokens, valid, patches = self.encoder.encode(
            x, ch_pos, ch_mask, n_valid_times, hidden, self.mask_token
        )
        decoded = self.decoder_in(tokens)
        attend = attention_mask(valid, ch_mask, n_valid_times)
        for layer in self.decoder:
            decoded = layer(decoded, attend)
        decoded = self.decoder_norm(decoded)
        return self.score(decoded, patches, hidden & valid, valid)

    def score(
        self, decoded: Tensor, patches: Tensor, scored: Tensor, valid: Tensor
    ) -> dict[str, Tensor]:
        """Losses of decoder features ``decoded`` against ``patches`` on ``scored`` tokens."""
        prediction = self.signal_head(decoded)
        target = normalise_patches(patches, self.target_norm)
        signal_loss = masked_loss(prediction, target, scored, self.loss_kind)
        spectral_loss = torch.zeros((), device=signal_loss.device)
        if self.spectrum_head is not None:
            spectral_loss = masked_loss(
                self.spectrum_head(decoded), log_amplitude_spectrum(patches), scored, "mse"
            )
        return {
            "loss": signal_loss + self.spectral_weight * spectral_loss,
            "signal_loss": signal_loss,
            "spectral_loss": spectral_loss,
            "prediction": prediction,
            "target": target,
            "hidden": scored,
            "valid": valid,
        }
