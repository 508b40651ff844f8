"""Spiking dual-branch conformer: the analog model's branches with spike-driven transformers.

:class:`SpikingDualBranchConformer` keeps :class:`~neurodecode.models.conformer.DualBranchConformer`'s
signal contract, input checks, tokenizers, pooling and head, and replaces both transformer
encoders by :class:`SpikingTransformerEncoder`: the tokens are repeated over ``T`` time
steps (direct encoding), pass through spike-driven transformer layers whose residual stream
is the membrane potential (membrane shortcut), and leave as firing rates. Inside the
encoders every synaptic layer receives spikes (0/1), so its products are accumulates, and
attention is spike-driven: a Hadamard mask of spiking keys and values summed over tokens,
then a mask on spiking queries -- no softmax, linear in the number of tokens (Yao et al.,
"Spike-driven Transformer", NeurIPS 2023).

``encoding="delta"`` also turns the temporal branch's input into spikes: threshold
crossings of each channel (:func:`~neurodecode.models.lif.delta_encoding`) feed the
channel-mixing convolution, which then does accumulates too. The spatial branch's
electrode tokens are band-power summaries and stay analog in both encodings.

Normalisation is BatchNorm, which folds into weights and thresholds at inference (no
multiplications at run time); LayerNorm would not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from neurodecode.errors import ConfigError
from neurodecode.models.blocks import TemporalPatchEmbedding
from neurodecode.models.conformer import DualBranchConformer
from neurodecode.models.lif import LIFNeuron, delta_encoding, repeat_encoding
from neurodecode.registry import MODELS

ENCODINGS = ("direct", "delta")


class SynapticLinear(nn.Module):
    """Linear map without bias, then BatchNorm over features, for ``(..., in_features)``.

    With spike input each output is a sum of selected weights (accumulates only); the
    BatchNorm folds into the weights and the next neuron's threshold at inference.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.norm = nn.BatchNorm1d(out_features)

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(x)
        return self.norm(y.reshape(-1, y.shape[-1])).reshape(y.shape)


class SpikeDrivenSelfAttention(nn.Module):
    """Spike-driven self-attention over ``(T, batch, n_tokens, dim)`` spikes.

    ``Q, K, V`` are spikes of linear maps of the input spikes. For each channel, the share
    of (unmasked) tokens where ``K`` and ``V`` fire together (Hadamard product = AND, then a
    column sum) drives a neuron; its spikes mask ``Q`` (another AND), and a linear map
    returns the result to the membrane stream. Cost is linear in tokens; no softmax, no
    multiplications between activations.

    Parameters
    ----------
    dim : int
        Token size.
    neuron : dict
        Keyword arguments of every :class:`LIFNeuron`.
    """

    def __init__(self, dim: int, neuron: Mapping[str, Any]):
        super().__init__()
        self.q = SynapticLinear(dim, dim)
        self.k = SynapticLinear(dim, dim)
        self.v = SynapticLinear(dim, dim)
        self.q_neuron = LIFNeuron(**neuron)
        self.k_neuron = LIFNeuron(**neuron)
        self.v_neuron = LIFNeuron(**neuron)
        self.kv_norm = nn.BatchNorm1d(dim)
        self.kv_neuron = LIFNeuron(**neuron)
        self.out = SynapticLinear(dim, dim)

    def forward(self, spikes: Tensor, key_mask: Tensor | None = None) -> Tensor:
        q = self.q_neuron(self.q(spikes))
        k = self.k_neuron(self.k(spikes))
        v = self.v_neuron(self.v(spikes))
        coincident = k * v  # AND of spikes
        if key_mask is None:
            count = coincident.shape[2]
        else:
            keep = key_mask[None, :, :, None].to(spikes.dtype)
            coincident = coincident * keep
            count = keep.sum(dim=2, keepdim=True).clamp_min(1.0)
        share = coincident.sum(dim=2, keepdim=True) / count  # column sum, scaled per channel
        steps, batch, _, dim = share.shape
        share = self.kv_norm(share.reshape(steps * batch, dim)).reshape(share.shape)
        return self.out(q * self.kv_neuron(share))


class SpikingMLP(nn.Module):
    """Spikes → linear → neurons → linear, back to the membrane stream."""

    def __init__(self, dim: int, hidden: int, neuron: Mapping[str, Any]):
        super().__init__()
        self.fc1 = SynapticLinear(dim, hidden)
        self.hidden_neuron = LIFNeuron(**neuron)
        self.fc2 = SynapticLinear(hidden, dim)

    def forward(self, spikes: Tensor) -> Tensor:
        return self.fc2(self.hidden_neuron(self.fc1(spikes)))


class SpikingTransformerLayer(nn.Module):
    """Membrane-shortcut layer: ``u += attn(LIF(u)); u += mlp(LIF(u))``.

    The residual stream ``u`` holds membrane inputs (real values); each branch starts with
    neurons, so every synaptic layer inside sees spikes.
    """

    def __init__(self, dim: int, mlp_ratio: float, neuron: Mapping[str, Any]):
        super().__init__()
        self.attn_neuron = LIFNeuron(**neuron)
        self.attn = SpikeDrivenSelfAttention(dim, neuron)
        self.mlp_neuron = LIFNeuron(**neuron)
        self.mlp = SpikingMLP(dim, int(dim * mlp_ratio), neuron)

    def forward(self, u: Tensor, key_mask: Tensor | None = None) -> Tensor:
        u = u + self.attn(self.attn_neuron(u), key_mask)
        return u + self.mlp(self.mlp_neuron(u))


class SpikingTransformerEncoder(nn.Module):
    """Drop-in for :class:`~neurodecode.models.blocks.TransformerEncoder` that spikes.

    ``(batch, n_tokens, dim)`` analog tokens are batch-normalised (so that the first
    neurons see inputs on the scale of their threshold), repeated over ``time_steps``
    (direct encoding), pass ``depth`` :class:`SpikingTransformerLayer`, fire through output neurons,
    and come back as firing rates ``(batch, n_tokens, dim)`` in [0, 1].

    Parameters
    ----------
    dim, depth : int
        Token size and number of layers.
    time_steps : int
        Simulation time steps ``T``.
    mlp_ratio : float
        Hidden size of the MLPs relative to ``dim``.
    neuron : dict
        Keyword arguments of every :class:`LIFNeuron`.
    """

    def __init__(
        self, dim: int, depth: int, time_steps: int, mlp_ratio: float, neuron: Mapping[str, Any]
    ):
        super().__init__()
        self.time_steps = time_steps
        self.input_norm = nn.BatchNorm1d(dim)
        self.layers = nn.ModuleList(
            SpikingTransformerLayer(dim, mlp_ratio, neuron) for _ in range(depth)
        )
        self.out_neuron = LIFNeuron(**neuron)

    def forward(self, tokens: Tensor, key_mask: Tensor | None = None) -> Tensor:
        tokens = self.input_norm(tokens.reshape(-1, tokens.shape[-1])).reshape(tokens.shape)
        u = repeat_encoding(tokens, self.time_steps)
        for layer in self.layers:
            u = layer(u, key_mask)
        return self.out_neuron(u).mean(dim=0)


class DeltaPatchEmbedding(TemporalPatchEmbedding):
    """:class:`TemporalPatchEmbedding` over threshold-crossing spikes of the signal.

    Each channel becomes an "up" and a "down" spike train (:func:`delta_encoding`), so the
    channel-mixing convolution sees ``2 * n_chans`` binary inputs.
    """

    def __init__(self, n_chans: int, dim: int, kernel: int, patch: int, dropout: float,
                 threshold: float):  # fmt: skip
        super().__init__(2 * n_chans, dim, kernel, patch, dropout)
        self.threshold = threshold

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(delta_encoding(x, self.threshold))


@MODELS.register("spiking_dual_branch_conformer")
class SpikingDualBranchConformer(DualBranchConformer):
    """:class:`DualBranchConformer` whose transformers are spike-driven (LIF neurons).

    Same constructor arguments and ``forward(x, ch_pos=None, ch_mask=None,
    return_features=False)`` as the analog model (``n_features`` = 2 × ``dim``: the firing
    rates pooled from both branches), plus the spiking options below. Firing rates per
    neuron layer can be read with :func:`~neurodecode.models.lif.record_firing_rates`;
    operation counts and energy with :mod:`neurodecode.models.energy`.

    Parameters
    ----------
    n_chans, n_outputs, n_times, sfreq, chs_info, size, dim, n_heads, temporal_depth,
    spatial_depth, n_filters, mlp_ratio, head_hidden, kernel_s, patch_s, dropout,
    check_inputs_finite
        As in :class:`DualBranchConformer`. Spike-driven attention acts per channel, so
        ``n_heads`` only has to divide ``dim``.
    time_steps : int
        Simulation time steps ``T``.
    encoding : {"direct", "delta"}
        Temporal-branch input: the analog signal (direct encoding, repeated over time
        steps after the patch embedding) or its threshold crossings.
    delta_threshold : float
        Level spacing of the delta encoding, in standard deviations of each channel.
    tau, v_threshold, v_init, reset, surrogate, alpha, learnable_decay
        Neuron options, see :class:`~neurodecode.models.lif.LIFNeuron`.
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
        time_steps: int = 4,
        encoding: str = "direct",
        delta_threshold: float = 0.5,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_init: float = 0.0,
        reset: str = "hard",
        surrogate: str = "sigmoid",
        alpha: float = 4.0,
        learnable_decay: bool = False,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ConfigError(f"unknown encoding {encoding!r}; valid encodings are: "
                              f"{', '.join(ENCODINGS)}")  # fmt: skip
        if time_steps < 1:
            raise ConfigError(f"time_steps must be at least 1, got {time_steps}")
        # The analog model builds the contract checks, tokenizers, pooling and head; its two
        # transformer encoders are replaced below.
        super().__init__(
            n_chans, n_outputs, n_times, sfreq, chs_info, size=size, dim=dim, n_heads=n_heads,
            temporal_depth=temporal_depth, spatial_depth=spatial_depth, n_filters=n_filters,
            mlp_ratio=mlp_ratio, head_hidden=head_hidden, kernel_s=kernel_s, patch_s=patch_s,
            dropout=dropout, check_inputs_finite=check_inputs_finite,
        )  # fmt: skip
        arch = self.arch
        self.time_steps = time_steps
        self.encoding = encoding
        neuron = dict(tau=tau, v_threshold=v_threshold, v_init=v_init, reset=reset,
                      surrogate=surrogate, alpha=alpha, learnable_decay=learnable_decay)  # fmt: skip
        if encoding == "delta":
            embedding = self.temporal_embedding
            self.temporal_embedding = DeltaPatchEmbedding(
                n_chans, arch.dim, embedding.kernel, embedding.patch, dropout, delta_threshold
            )
        self.temporal_encoder = SpikingTransformerEncoder(
            arch.dim, arch.temporal_depth, time_steps, arch.mlp_ratio, neuron
        )
        self.spatial_encoder = SpikingTransformerEncoder(
            arch.dim, arch.spatial_depth, time_steps, arch.mlp_ratio, neuron
        )


__all__ = [
    "SpikingDualBranchConformer",
    "SpikingTransformerEncoder",
    "SpikingTransformerLayer",
    "SpikeDrivenSelfAttention",
    "SpikingMLP",
    "SynapticLinear",
    "DeltaPatchEmbedding",
]
