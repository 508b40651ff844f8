"""Masked-autoencoder pretraining objective for :class:`~neurodecode.models.patch_conformer.PatchConformer`.

* :func:`sample_mask` -- random or block masking of (channel, time) patches.
* :class:`MaskedAutoencoder` -- hides patches behind a learned mask token, encodes, decodes
  with a light factorised decoder and scores only hidden, real patches
  (:func:`masked_loss`): normalised signal (MSE or L1) and optionally the log-amplitude
  spectrum.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from neurodecode.errors import ConfigError
from neurodecode.models.patch_conformer import FactorisedLayer, PatchConformer, attention_mask
from neurodecode.models.tokens import token_mask

MASKING_MODES = ("random", "block")
LOSSES = ("mse", "l1")
TARGET_NORMS = ("patch", "none")


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
        encoder.final_layer.requires_grad_(False)
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
