"""Dual-branch conformer: a temporal and a spatial transformer over one EEG window.

Written from the description in the DBConformer paper (Wang et al., 2025): a temporal
branch sees the window as a sequence of time patches of spatially mixed channels, a spatial
branch sees it as a set of electrodes, and the two pooled embeddings are concatenated and
classified by an MLP. Compared with braindecode's ``EEGConformer`` it has about a tenth of
the parameters and does far less convolution work per sample.

Channel count and montage
    The temporal branch mixes electrodes with a 1x1 convolution, so the channel count is
    fixed at construction (``n_chans``); a different count raises :class:`ContractError`.
    Data from other montages are harmonised to the model's channel list first, with
    ``ch_mask`` marking the channels a recording lacks: masked channels are zeroed for the
    temporal branch and are neither attended to nor pooled in the spatial branch. The
    spatial branch itself is agnostic of the channel count (shared tokenizer, position
    encoding from coordinates), which pretraining code can reuse.

Length
    Any number of samples at least the receptive field (one temporal patch) works; the
    temporal branch averages over however many patches there are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from neurodecode.errors import ConfigError, ContractError
from neurodecode.models.base import EncoderBase
from neurodecode.models.blocks import (
    ChannelAttentionPool,
    ChannelPositionEncoding,
    ElectrodeTokenizer,
    TemporalPatchEmbedding,
    TransformerEncoder,
    sinusoidal_positions,
)
from neurodecode.models.heads import MLPHead
from neurodecode.registry import MODELS


@dataclass(frozen=True)
class ConformerSize:
    """Architecture sizes of a dual-branch conformer (analog or spiking).

    Attributes
    ----------
    dim : int
        Token size of both branches.
    n_heads : int
        Attention heads.
    temporal_depth, spatial_depth : int
        Transformer layers in each branch.
    n_filters : int
        Shared temporal filters of the electrode tokenizer.
    mlp_ratio : float
        Hidden size of the transformer MLPs relative to ``dim``.
    head_hidden : int
        Hidden size of the classification head.
    """

    dim: int
    n_heads: int
    temporal_depth: int
    spatial_depth: int
    n_filters: int
    mlp_ratio: float
    head_hidden: int


SIZES: dict[str, ConformerSize] = {
    "tiny": ConformerSize(32, 2, 1, 1, 8, 2.0, 32),
    "small": ConformerSize(48, 3, 2, 1, 16, 2.0, 48),
    "base": ConformerSize(64, 4, 4, 2, 32, 2.0, 64),
}


def resolve_size(size: str, overrides: Mapping[str, Any]) -> ConformerSize:
    """The named size with explicit overrides (``None`` values are ignored).

    Raises :class:`ConfigError` for an unknown size name or field.
    """
    if size not in SIZES:
        raise ConfigError(f"unknown model size {size!r}; valid sizes are: {', '.join(SIZES)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - set(ConformerSize.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown size fields {sorted(unknown)}")
    return replace(SIZES[size], **given)


def samples(seconds: float, sfreq: float) -> int:
    """``seconds`` at ``sfreq`` as a whole number of samples, at least 1."""
    return max(1, round(seconds * sfreq))


@MODELS.register("dual_branch_conformer")
class DualBranchConformer(EncoderBase):
    """Temporal + spatial transformer branches, fused by concatenation, MLP head.

    Parameters
    ----------
    n_chans, n_outputs, n_times : int
        Electrodes, outputs and samples per window (``n_times`` is checked against the
        receptive field; other lengths work at run time).
    sfreq : float
        Sampling rate in Hz; kernel and patch lengths are given in seconds.
    chs_info : list of dict, optional
        MNE ``info["chs"]``; their ``loc`` gives the electrode positions used when
        ``forward`` receives no ``ch_pos``.
    size : {"tiny", "small", "base"}
        Preset sizes (:data:`SIZES`); ``dim``, ``n_heads``, ... override single fields.
    kernel_s : float
        Temporal convolution length in seconds (both branches).
    patch_s : float
        Duration of one temporal token in seconds.
    dropout : float
        Dropout in the transformers and the head.
    check_inputs_finite : bool
        Reject NaN/inf input in eager mode (a device sync; skipped under ``torch.compile``).
    """

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float,
        chs_info: Sequence[Mapping[str, Any]] | None = None,
        *,
        size: str = "small",
        dim: int | None = None,
        n_heads: int | None = None,
        temporal_depth: int | None = None,
        spatial_depth: int | None = None,
        n_filters: int | None = None,
        mlp_ratio: float | None = None,
        head_hidden: int | None = None,
        kernel_s: float = 0.1,
        patch_s: float = 0.25,
        dropout: float = 0.25,
        check_inputs_finite: bool = True,
    ) -> None:
        super().__init__(n_chans, n_outputs, n_times, sfreq, chs_info)
        arch = resolve_size(
            size,
            dict(
                dim=dim,
                n_heads=n_heads,
                temporal_depth=temporal_depth,
                spatial_depth=spatial_depth,
                n_filters=n_filters,
                mlp_ratio=mlp_ratio,
                head_hidden=head_hidden,
            ),
        )
        self.arch = arch
        self.check_inputs_finite = check_inputs_finite
        kernel = samples(kernel_s, sfreq)

        self.temporal_embedding = TemporalPatchEmbedding(
            n_chans, arch.dim, kernel, samples(patch_s, sfreq), dropout
        )
        self.temporal_encoder = TransformerEncoder(
            arch.dim, arch.temporal_depth, arch.n_heads, arch.mlp_ratio, dropout
        )
        self.electrode_tokens = ElectrodeTokenizer(
            arch.dim, arch.n_filters, kernel, stride=max(1, kernel // 4)
        )
        self.channel_embedding = nn.Parameter(torch.zeros(n_chans, arch.dim))
        self.position_encoding = ChannelPositionEncoding(arch.dim)
        self.spatial_encoder = TransformerEncoder(
            arch.dim, arch.spatial_depth, arch.n_heads, arch.mlp_ratio, dropout
        )
        self.channel_pool = ChannelAttentionPool(arch.dim)
        self.n_features = 2 * arch.dim
        self.final_layer = MLPHead(self.n_features, n_outputs, arch.head_hidden, dropout)
        nn.init.trunc_normal_(self.channel_embedding, std=0.02)

        self.min_times = max(
            self.temporal_embedding.receptive_field, self.electrode_tokens.receptive_field
        )
        if n_times < self.min_times:
            raise ContractError(
                f"n_times={n_times} is shorter than the model's receptive field "
                f"({self.min_times} samples at {sfreq} Hz)",
                hint="use longer windows or smaller kernel_s / patch_s",
            )

    def resolved_arguments(self) -> dict[str, Any]:
        """The size fields with the preset resolved, so an export rebuilds this architecture."""
        return asdict(self.arch)

    def embed(
        self, x: Tensor, ch_pos: Tensor | None = None, ch_mask: Tensor | None = None
    ) -> Tensor:
        """The fused embedding ``(batch, 2 * dim)``; see :meth:`EncoderBase.forward`."""
        x, ch_pos, ch_mask = self.prepare_input(
            x,
            ch_pos,
            ch_mask,
            min_times=self.min_times,
            check_finite_input=self.check_inputs_finite,
        )
        if ch_pos is None:
            ch_pos = self.default_positions
        return torch.cat(
            [self._temporal_branch(x), self._spatial_branch(x, ch_pos, ch_mask)], dim=-1
        )

    def _temporal_branch(self, x: Tensor) -> Tensor:
        tokens = self.temporal_embedding(x)
        tokens = tokens + sinusoidal_positions(
            tokens.shape[1], tokens.shape[2], device=tokens.device, dtype=tokens.dtype
        )
        return self.temporal_encoder(tokens).mean(dim=1)

    def _spatial_branch(self, x: Tensor, ch_pos: Tensor | None, ch_mask: Tensor | None) -> Tensor:
        tokens = self.electrode_tokens(x, ch_mask) + self.channel_embedding
        if ch_pos is not None:
            tokens = tokens + self.position_encoding(ch_pos.to(tokens.device)).to(tokens.dtype)
        return self.channel_pool(self.spatial_encoder(tokens, ch_mask), ch_mask)
