"""Building blocks shared by neurodecode's encoders.

Everything here works on batch-first tensors and has no Python loop over tokens, channels
or time, so the encoders built from it compile with ``torch.compile`` without graph breaks:

* :func:`check_signal`, :func:`check_finite`, :func:`check_channel_inputs` -- the signal
  contract checks (rank, channels, length, NaN, positions and mask shapes);
* :class:`TemporalPatchEmbedding` -- 1x1 conv mixing electrodes, depthwise temporal conv,
  pooling into time patches (the temporal branch's tokens);
* :class:`ElectrodeTokenizer` -- one token per electrode from a temporal conv shared by all
  electrodes (the spatial branch's tokens), normalised by :class:`MaskedBatchNorm1d`
  (statistics of the channels a recording has);
* :class:`ChannelPositionEncoding` -- an embedding of 3-D electrode positions (metres);
* :class:`TransformerEncoder` -- pre-norm encoder layers over fused attention
  (:mod:`neurodecode.models.attention`) with an optional key mask;
* :class:`ChannelAttentionPool` -- attention-weighted mean over (unmasked) tokens;
* :func:`sinusoidal_positions` -- the fixed positional encoding of token order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from neurodecode.errors import ContractError
from neurodecode.models.attention import check_kernel, self_attention


def check_signal(x: Tensor, *, n_chans: int | None, min_times: int, model: str) -> None:
    """Check the shape of ``x`` against a model's signal contract.

    These checks read only shapes, so under ``torch.compile`` they become guards (no graph
    break). Raises :class:`ContractError` saying what was expected and what came.

    Parameters
    ----------
    x : Tensor
        The input, expected ``(batch, n_chans, n_times)``.
    n_chans : int or None
        Channel count the model was built for (``None``: any count).
    min_times : int
        Fewest samples the model can use (its receptive field).
    model : str
        Model name, used in messages.
    """
    if x.ndim != 3:
        raise ContractError(
            f"{model} expects input of shape (batch, n_chans, n_times), a rank-3 tensor; "
            f"got rank {x.ndim} with shape {tuple(x.shape)}",
            hint="add a batch dimension with x.unsqueeze(0)" if x.ndim == 2 else None,
        )
    if n_chans is not None and x.shape[1] != n_chans:
        raise ContractError(
            f"{model} was built for {n_chans} channels; got {x.shape[1]} "
            f"(input shape {tuple(x.shape)})",
            hint="harmonise the montage to the model's channel list and pass ch_mask "
            "for channels that are missing",
        )
    if x.shape[2] < min_times:
        raise ContractError(
            f"{model} needs at least {min_times} samples (its receptive field); "
            f"got {x.shape[2]} (input shape {tuple(x.shape)})",
            hint="use longer windows",
        )


def check_finite(x: Tensor, *, model: str) -> None:
    """Reject NaN or infinite values in ``x`` with a :class:`ContractError`.

    This reads the data (a device sync on GPU) and would break a compiled graph, so it is
    skipped while ``torch.compile`` traces: compiled models leave the check to the data
    pipeline.
    """
    if torch.compiler.is_compiling():
        return
    if not bool(torch.isfinite(x).all()):
        raise ContractError(
            f"{model} got NaN or infinite values in its input of shape {tuple(x.shape)}",
            hint="interpolate bad channels, or zero them and mark them missing in ch_mask",
        )


def check_channel_inputs(
    x: Tensor, ch_pos: Tensor | None, ch_mask: Tensor | None, *, model: str
) -> tuple[Tensor | None, Tensor | None]:
    """Check ``ch_pos`` ``(batch | 1, n_chans, 3)`` and ``ch_mask`` ``(batch, n_chans)``.

    A ``(n_chans, 3)`` position table is broadcast over the batch. Returns both, with
    positions as ``x``'s float dtype and the mask as bool.
    """
    batch, n_chans = x.shape[0], x.shape[1]
    if ch_pos is not None:
        if ch_pos.ndim == 2:
            ch_pos = ch_pos[None]
        if (
            ch_pos.ndim != 3
            or ch_pos.shape[1:] != (n_chans, 3)
            or ch_pos.shape[0] not in (1, batch)
        ):
            raise ContractError(
                f"{model} expects ch_pos of shape ({batch}, {n_chans}, 3) for input "
                f"{tuple(x.shape)}; got {tuple(ch_pos.shape)}"
            )
        ch_pos = ch_pos.to(dtype=torch.float32)
    if ch_mask is not None:
        if ch_mask.shape != (batch, n_chans):
            raise ContractError(
                f"{model} expects ch_mask of shape ({batch}, {n_chans}) for input "
                f"{tuple(x.shape)}; got {tuple(ch_mask.shape)}"
            )
        ch_mask = ch_mask.bool()
    return ch_pos, ch_mask


def positions_from_chs_info(chs_info: Sequence[Mapping[str, Any]] | None) -> Tensor | None:
    """3-D positions (metres) of MNE ``info["chs"]`` entries, NaN where unknown.

    Returns ``None`` when ``chs_info`` is ``None`` or no entry carries a usable location.
    """
    if not chs_info:
        return None
    rows = []
    for ch in chs_info:
        loc = ch.get("loc")
        xyz = torch.full((3,), math.nan)
        if loc is not None and len(loc) >= 3:
            candidate = torch.as_tensor([float(v) for v in loc[:3]])
            if torch.isfinite(candidate).all() and candidate.abs().sum() > 0:
                xyz = candidate
        rows.append(xyz)
    positions = torch.stack(rows).float()
    if torch.isnan(positions).all():
        return None
    return positions


def sinusoidal_positions(n_tokens: int, dim: int, *, device: torch.device, dtype: torch.dtype):
    """Fixed sine/cosine encoding of token order, shape ``(n_tokens, dim)``."""
    position = torch.arange(n_tokens, device=device, dtype=torch.float32)[:, None]
    half = (dim + 1) // 2
    frequency = torch.exp(
        torch.arange(half, device=device, dtype=torch.float32) * (-math.log(10000.0) / half)
    )
    angles = position * frequency
    encoding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)[:, :dim]
    return encoding.to(dtype)


def log_power(z: Tensor, dim: int = -1) -> Tensor:
    """``log(mean(z**2) + LOG_EPS)`` along ``dim``, computed in float32.

    Works for any signal scale (volts, microvolts, normalised units): the log turns a gain
    into an offset that the following normalisation removes.
    """
    return torch.log(z.float().square().mean(dim=dim) + LOG_EPS)


LOG_EPS = 1e-20  # below the power of any real recording, in volts² too


class TemporalPatchEmbedding(nn.Module):
    """Electrodes mixed by a 1x1 conv, a depthwise temporal conv, pooled into time patches.

    Each patch of each virtual channel is summarised by its mean (slow, phase-locked
    activity such as ERPs) and its log power (oscillations, as in ShallowFBCSPNet); both
    are normalised (BatchNorm over the few pooled values, not over every sample, which is
    what keeps it fast on GPU) and projected to ``dim``.
    ``(batch, n_chans, n_times)`` → ``(batch, n_patches, dim)`` with
    ``n_patches = (n_times - kernel + 1) // patch``.

    Parameters
    ----------
    n_chans : int
        Input electrodes.
    dim : int
        Token size (virtual channels after mixing).
    kernel : int
        Depthwise temporal kernel length in samples.
    patch : int
        Pooling window and stride in samples (samples per token).
    dropout : float
        Dropout on the tokens.
    """

    def __init__(self, n_chans: int, dim: int, kernel: int, patch: int, dropout: float = 0.0):
        super().__init__()
        self.kernel = kernel
        self.patch = patch
        self.mix = nn.Conv1d(n_chans, dim, 1, bias=False)
        self.temporal = nn.Conv1d(dim, dim, kernel, groups=dim, bias=False)
        self.norm = nn.BatchNorm1d(2 * dim)
        self.proj = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(dropout)

    @property
    def receptive_field(self) -> int:
        """Samples needed for one token."""
        return self.kernel + self.patch - 1

    def forward(self, x: Tensor) -> Tensor:
        z = self.temporal(self.mix(x))
        n_patches = z.shape[-1] // self.patch
        patches = z[..., : n_patches * self.patch].unflatten(-1, (n_patches, self.patch))
        summary = torch.cat([patches.float().mean(dim=-1), log_power(patches)], dim=1)
        tokens = self.norm(summary.to(z.dtype)).transpose(1, 2)
        return self.dropout(self.proj(tokens))


class ElectrodeTokenizer(nn.Module):
    """One token per electrode: a temporal conv shared by all electrodes, then log power.

    Each electrode's signal goes through the same ``n_filters`` temporal filters; the token
    is a linear map of the normalised log mean power of each filter's output (a learned
    band-power feature), so it does not depend on the number of samples or of electrodes.
    Power is estimated from a strided filter output, which is unbiased and cheap.
    ``(batch, n_chans, n_times)`` → ``(batch, n_chans, dim)``.

    Parameters
    ----------
    dim : int
        Token size.
    n_filters : int
        Shared temporal filters.
    kernel : int
        Filter length in samples.
    stride : int
        Filter stride in samples.
    """

    def __init__(self, dim: int, n_filters: int, kernel: int, stride: int = 1):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(1, n_filters, kernel, stride=stride, bias=False)
        self.norm = MaskedBatchNorm1d(n_filters)
        self.proj = nn.Linear(n_filters, dim)

    @property
    def receptive_field(self) -> int:
        """Samples needed for one token."""
        return self.kernel

    def forward(self, x: Tensor, ch_mask: Tensor | None = None) -> Tensor:
        """Tokens of ``x``; channels where ``ch_mask`` is false stay out of the norm's
        batch statistics (their zeroed signal would count as a very low power)."""
        batch, n_chans, n_times = x.shape
        z = self.conv(x.reshape(batch * n_chans, 1, n_times))
        features = log_power(z).to(z.dtype)
        if ch_mask is not None and isinstance(self.norm, MaskedBatchNorm1d):
            features = self.norm(features, ch_mask.reshape(-1))
        else:  # no mask, or converted to SyncBatchNorm (trainer=ddp): plain statistics
            features = self.norm(features)
        return self.proj(features).reshape(batch, n_chans, -1)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` over ``(n_rows, features)`` whose training statistics (batch and
    running) come from the rows that ``present`` marks; the same parameters, buffers and
    evaluation behaviour as ``BatchNorm1d``, so checkpoints are interchangeable. Statistics
    are computed in float32 whatever the input dtype (mixed precision); with fewer than two
    present rows the batch gives no statistics and the running ones normalise it."""

    def forward(self, x: Tensor, present: Tensor | None = None) -> Tensor:
        if present is None or not self.training:
            return super().forward(x)
        weights = present.float()[:, None]
        count = weights.sum()
        values = x.float()
        mean = (values * weights).sum(dim=0) / count.clamp_min(1.0)
        var = ((values - mean).square() * weights).sum(dim=0) / count.clamp_min(1.0)
        enough = count >= 2
        with torch.no_grad():
            dtype = self.running_mean.dtype  # bf16 when FSDP keeps buffers in bf16
            step = torch.where(enough, self.momentum, 0.0).to(dtype)
            self.running_mean.lerp_(mean.to(dtype), step)
            self.running_var.lerp_((var * count / (count - 1).clamp_min(1.0)).to(dtype), step)
            self.num_batches_tracked.add_(enough.long())
        mean = torch.where(enough, mean, self.running_mean)
        var = torch.where(enough, var, self.running_var)
        normed = (values - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
        return normed.to(x.dtype)


class ChannelPositionEncoding(nn.Module):
    """Embedding of 3-D electrode positions (metres); zero for unknown (NaN) positions.

    ``(batch, n_chans, 3)`` → ``(batch, n_chans, dim)``.

    Parameters
    ----------
    dim : int
        Embedding size.
    scale : float
        Factor applied to positions before the MLP (10 maps a head's ~0.1 m to ~1).
    """

    def __init__(self, dim: int, scale: float = 10.0):
        super().__init__()
        self.scale = scale
        self.mlp = nn.Sequential(nn.Linear(3, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, positions: Tensor) -> Tensor:
        known = torch.isfinite(positions).all(dim=-1, keepdim=True)
        encoding = self.mlp(torch.nan_to_num(positions, nan=0.0) * self.scale)
        return encoding * known.to(encoding.dtype)


class MultiHeadSelfAttention(nn.Module):
    """Self-attention through :func:`neurodecode.models.attention.self_attention`.

    ``key_mask`` (batch, n_tokens), true for tokens that may be attended to. ``kernel``
    ``auto`` takes the short-sequence Triton kernel on CUDA where it applies, ``sdpa``
    always PyTorch's fused ``scaled_dot_product_attention``; both compute the same function.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0, kernel: str = "auto"):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim ({dim}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.dropout = dropout
        self.kernel = check_kernel(kernel)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        dropout_p = self.dropout if self.training else 0.0
        y = self_attention(self.qkv(x), self.n_heads, key_mask, dropout_p, self.kernel)
        return self.out(y)


class TransformerEncoderLayer(nn.Module):
    """Pre-norm transformer layer: attention and a GELU MLP, each with a residual."""

    def __init__(
        self,
        dim: int,
        n_heads: int,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        attention_kernel: str = "auto",
    ):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, n_heads, dropout, attention_kernel)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        x = x + self.dropout(self.attn(self.norm1(x), key_mask))
        return x + self.dropout(self.mlp(self.norm2(x)))


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerEncoderLayer` followed by a final LayerNorm."""

    def __init__(
        self, dim: int, depth: int, n_heads: int, mlp_ratio: float = 2.0, dropout: float = 0.0
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(dim, n_heads, mlp_ratio, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, key_mask)
        return self.norm(x)


class ChannelAttentionPool(nn.Module):
    """Attention-weighted mean of tokens: ``(batch, n_tokens, dim)`` → ``(batch, dim)``.

    A learned score per token, softmax over the tokens that ``mask`` keeps (true = keep).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        scores = self.score(tokens).squeeze(-1).float()
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1).to(tokens.dtype)
        return torch.einsum("bn,bnd->bd", weights, tokens)
