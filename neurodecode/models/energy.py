"""Operation counts and energy estimates of analog and spiking models, from real batches.

The count follows the convention of the Spike-driven Transformer (Yao et al., NeurIPS 2023)
and of Horowitz's 45 nm figures: only synaptic operations are counted -- matrix products,
convolutions and attention products -- not element-wise work (activations, normalisation,
which folds into weights at inference, or neuron updates). Each counted operation is
classified from the operands it actually received:

* **MAC** (multiply-accumulate): both operands real-valued. A matrix
  product ``(m, k) @ (k, n)`` is ``m k n`` MACs; a convolution ``outputs x fan-in``;
  attention ``2 L S E`` per head.
* **AC** (accumulate): one operand is spikes (only 0 and 1). A spike adds
  its fan-out weights, so the count is exact: ``nnz(spikes) x n`` for a product, and for a
  convolution the sum over outputs of the spikes in their receptive field. The column sum of
  spike-driven attention adds one AC per spike; masking spikes by spikes (AND) is free.

Memory traffic is counted in words, in three kinds: **activations** (each counted operation
reads its activation inputs -- for spikes, only the spikes, as addresses -- and writes its
output once), **weights** (read once per sample) and **membrane state** (each neuron reads and
writes its potential once per time step). Firing rates come from
:func:`~neurodecode.models.lif.record_firing_rates` during the same forward passes.

The counts are turned into energy by named **cost models** (:data:`COST_MODELS`), side by side:

* ``fp32``, ``fp16``, ``int8``: compute only, 45 nm figures of Horowitz (ISSCC 2014, "Computing's
  energy problem"): a MAC is a multiply plus an add -- FP32 3.7 + 0.9 = 4.6 pJ, FP16
  1.1 + 0.4 = 1.5 pJ, INT8 0.2 + 0.03 = 0.23 pJ -- and an AC is the add alone (0.9, 0.4,
  0.03 pJ). These are the ``fp32()``, ``fp16()`` and ``int8()`` presets of spikingjelly's
  compute-energy cost table (``spikingjelly.activation_based.op_counter``).
* ``fp32+sram``, ``fp16+sram``, ``int8+sram``: the same plus every word moved to or from an
  8 kB on-chip SRAM at 45 nm, 5 pJ per 32-bit word (Horowitz 2014 as tabulated by Han et al.,
  ISCA 2016), scaled to the word size of the precision (4, 2 or 1 bytes: 1.25 pJ per byte).
  Off-chip DRAM (about 640 pJ per 32-bit word) is left out: the models here fit on chip.
* ``lemaire``: the analytical model of Lemaire et al. (ICONIP 2022, "An analytical estimation
  of spiking neural networks energy efficiency") as spikingjelly 2.0 implements it
  (``LemaireEnergyCostConfig``): E_add = 0.1 pJ, E_mul = 3.1 pJ (a MAC is 3.2 pJ, an AC
  0.1 pJ), 32-bit words, and a memory cost per byte that grows with the buffer holding the
  data, linear between (0 B, 0), (8 kB, 2.5), (32 kB, 5) and (1 MB, 25 pJ per byte): 10, 20
  and 100 pJ per 4-byte access of an 8 kB, 32 kB and 1 MB memory. Each kind of traffic has
  its own buffer; neurodecode sizes it as the largest per-sample traffic of that kind in any
  one layer. Unlike spikingjelly, neurodecode leaves out addressing and neuron-update
  operations (as under every cost model here), so its ``lemaire`` figure is a lower bound.

**INT8 layers.** A model quantized by :func:`neurodecode.models.quantize.quantize_int8` runs
some layers in INT8 (PyTorch's ``quantized::conv1d``, ``quantized::linear_dynamic``); the
counter counts their MACs apart (``int8_macs``). Under every cost model an INT8 MAC costs
the 45 nm INT8 figure (0.23 pJ; the same Horowitz table gives Lemaire's 32-bit integer
figures) unless the cost model is already cheaper, its weights move as 1-byte words, and so
do the activations of statically quantized layers (INT8 in, INT8 out); a dynamically
quantized layer reads and writes activations at the cost model's word size. The other
layers stay at the cost model's own precision, so under ``int8`` and ``int8+sram`` a
quantized model costs what its float model costs, and less under every other model.
:attr:`EnergyReport.int8_layers` and :attr:`EnergyReport.float_layers` name both kinds.

:func:`compare` measures a model next to its counterpart (analog ↔ spiking) with the same
size on the same windows; ``neurodecode benchmark energy`` (:mod:`neurodecode.cli.benchmark`)
runs it on the windows of a recording file or of a prepared dataset.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, astuple, dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from neurodecode.errors import UnknownNameError
from neurodecode.models import attention
from neurodecode.models.lif import LIFNeuron, record_firing_rates
from neurodecode.registry import MODELS

INT8_MULT_PJ, INT8_ADD_PJ = 0.2, 0.03
"""45 nm 8-bit integer multiply and add (Horowitz 2014), pJ."""
SRAM_PJ_PER_BYTE = 5.0 / 4
"""One 32-bit access to an 8 kB SRAM at 45 nm is 5 pJ (Horowitz 2014; Han et al. 2016)."""
LEMAIRE_PJ_PER_BYTE = ((0.0, 0.0), (8 * 1024.0, 2.5), (32 * 1024.0, 5.0), (1024.0**2, 25.0))
"""(buffer bytes, pJ per byte) points of the Lemaire memory cost, as in spikingjelly 2.0."""
TRAFFIC_KINDS = ("activation_words", "weight_words", "state_words")
INT8_TRAFFIC = {"activation_words": "int8_activation_words", "weight_words": "int8_weight_words"}
"""The INT8 (1-byte) part of each traffic kind's words; membrane state is never INT8."""


@dataclass(frozen=True)
class CostModel:
    """Energy per operation and per memory access; the module docstring gives the sources.

    Attributes
    ----------
    name : str
        The name every figure computed with it carries (``cost_model``).
    mac_pj, ac_pj : float
        Energy of a multiply-accumulate and of an accumulate, pJ.
    word_bytes : int
        Bytes per memory word (activation, weight or membrane potential).
    memory : {"none", "sram", "lemaire"}
        Memory traffic left out, at a flat SRAM cost per byte, or at the Lemaire cost per byte
        that grows with the size of the buffer.
    """

    name: str
    mac_pj: float
    ac_pj: float
    word_bytes: int
    memory: Literal["none", "sram", "lemaire"] = "none"

    def pj_per_byte(self, buffer_bytes: float) -> float:
        """Energy of one byte moved to or from a buffer of ``buffer_bytes``, pJ."""
        if self.memory == "none":
            return 0.0
        if self.memory == "sram":
            return SRAM_PJ_PER_BYTE
        points = LEMAIRE_PJ_PER_BYTE
        size = min(max(buffer_bytes, points[0][0]), points[-1][0])
        (x0, y0), (x1, y1) = next(
            (start, end) for start, end in itertools.pairwise(points) if size <= end[0]
        )
        return y0 + (y1 - y0) * (size - x0) / (x1 - x0)

    @property
    def int8_mac_pj(self) -> float:
        """Energy of a MAC of an INT8 layer: the INT8 figure, or this model's if cheaper."""
        return min(self.mac_pj, INT8_MULT_PJ + INT8_ADD_PJ)


def _precision(name: str, mult_pj: float, add_pj: float, word_bytes: int) -> list[CostModel]:
    """Compute-only and compute-plus-SRAM models of one precision (a MAC: multiply + add)."""
    return [
        CostModel(name, mult_pj + add_pj, add_pj, word_bytes),
        CostModel(f"{name}+sram", mult_pj + add_pj, add_pj, word_bytes, "sram"),
    ]


COST_MODELS: dict[str, CostModel] = {
    model.name: model
    for model in (
        *_precision("fp32", 3.7, 0.9, 4),
        *_precision("fp16", 1.1, 0.4, 2),
        *_precision("int8", INT8_MULT_PJ, INT8_ADD_PJ, 1),
        CostModel("lemaire", 3.1 + 0.1, 0.1, 4, "lemaire"),
    )
}
"""The named cost models (Horowitz 2014 at 45 nm; Lemaire et al. 2022), in display order."""


@dataclass(frozen=True)
class Energy:
    """Per-sample energy of one model under one cost model, µJ."""

    cost_model: str
    compute_uj: float
    memory_uj: float

    @property
    def total_uj(self) -> float:
        """Compute plus memory, µJ."""
        return self.compute_uj + self.memory_uj

    def to_dict(self) -> dict[str, Any]:
        """JSON row: the cost model's name and its figures."""
        return asdict(self) | {"total_uj": self.total_uj}


MODEL_ALIASES = {"spiking": "spiking_dual_branch_conformer", "analog": "dual_branch_conformer"}
COUNTERPARTS = {
    "spiking_dual_branch_conformer": "dual_branch_conformer",
    "dual_branch_conformer": "spiking_dual_branch_conformer",
}

SPIKING_ONLY = ("time_steps", "encoding")  # options the analog counterpart does not take

_aten = torch.ops.aten
_quantized = torch.ops.quantized
_INT8_CONVOLUTIONS = (_quantized.conv1d, _quantized.conv2d)
_ATTENTION_OPS = tuple(
    getattr(_aten, name)
    for name in (
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    )
    if hasattr(_aten, name)
)


@dataclass
class LayerCount:
    """Operations of one module (the innermost module that issued them), summed over samples.

    Attributes
    ----------
    name : str
        Qualified module name (``""`` for the model itself).
    macs, acs : float
        Multiply-accumulates and accumulates.
    activation_words, weight_words, state_words : float
        Words read or written, by kind (see the module docstring).
    spikes, spike_slots : float
        Spikes and spike-or-silence positions in the spike inputs of AC operations; their
        ratio is the layer's input firing rate.
    int8_macs, int8_activation_words, int8_weight_words : float
        The parts of ``macs``, ``activation_words`` and ``weight_words`` that are INT8
        (operations of quantized layers, moved as 1-byte words).
    """

    name: str
    macs: float = 0.0
    acs: float = 0.0
    activation_words: float = 0.0
    weight_words: float = 0.0
    state_words: float = 0.0
    spikes: float = 0.0
    spike_slots: float = 0.0
    int8_macs: float = 0.0
    int8_activation_words: float = 0.0
    int8_weight_words: float = 0.0

    @property
    def memory_words(self) -> float:
        """Words of all kinds."""
        return self.activation_words + self.weight_words + self.state_words

    @property
    def input_rate(self) -> float:
        """Share of spike-input positions holding a spike (NaN for MAC-only layers)."""
        return self.spikes / self.spike_slots if self.spike_slots else math.nan

    @property
    def precision(self) -> str:
        """``"int8"``, ``"float"`` (the cost model's precision) or ``"int8+float"``; ``""``
        for a layer without counted operations."""
        int8 = self.int8_macs > 0
        other = self.macs > self.int8_macs or self.acs > 0
        return "+".join(kind for kind, present in (("int8", int8), ("float", other)) if present)

    def traffic_bytes(self, kind: str, word_bytes: int) -> float:
        """Bytes of one traffic kind: INT8 words in one byte, the others in ``word_bytes``."""
        int8 = getattr(self, INT8_TRAFFIC[kind]) if kind in INT8_TRAFFIC else 0.0
        return (getattr(self, kind) - int8) * word_bytes + int8


@dataclass
class EnergyReport:
    """Per-sample operation counts, firing rates and energy of one model.

    Attributes
    ----------
    model : str
        Registered model name.
    n_samples : int
        Windows the counts were averaged over.
    time_steps : int
        Simulation time steps (1 for analog models).
    layers : list of LayerCount
        Per-sample counts by module.
    firing_rates : dict
        Mean spikes per neuron per time step, by neuron layer (empty for analog models).
    n_parameters : int
        Trainable parameters.
    """

    model: str
    n_samples: int
    time_steps: int
    layers: list[LayerCount]
    firing_rates: dict[str, float] = field(default_factory=dict)
    n_parameters: int = 0

    @property
    def macs(self) -> float:
        """Multiply-accumulates per sample."""
        return sum(layer.macs for layer in self.layers)

    @property
    def acs(self) -> float:
        """Accumulates per sample."""
        return sum(layer.acs for layer in self.layers)

    @property
    def memory_words(self) -> float:
        """Memory words per sample."""
        return sum(layer.memory_words for layer in self.layers)

    @property
    def int8_layers(self) -> list[str]:
        """Layers whose counted operations run in INT8."""
        return [layer.name for layer in self.layers if layer.precision == "int8"]

    @property
    def float_layers(self) -> list[str]:
        """Layers whose counted operations (some or all) stay at the cost model's precision."""
        return [layer.name for layer in self.layers if "float" in layer.precision]

    @property
    def mean_firing_rate(self) -> float:
        """Mean of the neuron layers' firing rates (NaN without neurons)."""
        rates = [r for r in self.firing_rates.values() if not math.isnan(r)]
        return sum(rates) / len(rates) if rates else math.nan

    def energy(self, cost_model: str | CostModel = "fp32+sram") -> Energy:
        """Per-sample energy under one cost model (a :data:`COST_MODELS` name or a model)."""
        cost = _cost_model(cost_model)
        int8_macs = sum(layer.int8_macs for layer in self.layers)
        compute_pj = (
            cost.mac_pj * (self.macs - int8_macs) + cost.int8_mac_pj * int8_macs
            + cost.ac_pj * self.acs
        )  # fmt: skip
        memory_pj = 0.0
        for kind in TRAFFIC_KINDS:
            sizes = [layer.traffic_bytes(kind, cost.word_bytes) for layer in self.layers]
            memory_pj += sum(sizes) * cost.pj_per_byte(max(sizes, default=0.0))
        return Energy(cost.name, compute_pj * 1e-6, memory_pj * 1e-6)

    def energies(self, cost_models: Iterable[str | CostModel] = tuple(COST_MODELS)) -> list[Energy]:
        """Per-sample energy under each cost model (default: all of :data:`COST_MODELS`)."""
        return [self.energy(cost) for cost in cost_models]

    def to_dict(self, cost_models: Sequence[str] = tuple(COST_MODELS)) -> dict[str, Any]:
        """Plain JSON-ready dict: totals, energy under each cost model, layers, firing rates."""
        return {
            "model": self.model,
            "n_samples": self.n_samples,
            "time_steps": self.time_steps,
            "n_parameters": self.n_parameters,
            "macs": self.macs,
            "acs": self.acs,
            "memory_words": self.memory_words,
            "mean_firing_rate": _json_float(self.mean_firing_rate),
            "int8_layers": self.int8_layers,
            "float_layers": self.float_layers,
            "energy": [energy.to_dict() for energy in self.energies(cost_models)],
            "layers": [
                asdict(layer)
                | {
                    "memory_words": layer.memory_words,
                    "input_rate": _json_float(layer.input_rate),
                    "precision": layer.precision,
                }
                for layer in self.layers
            ],
            "firing_rates": {k: _json_float(v) for k, v in self.firing_rates.items()},
        }


def _cost_model(cost_model: str | CostModel) -> CostModel:
    if isinstance(cost_model, CostModel):
        return cost_model
    if cost_model not in COST_MODELS:
        raise UnknownNameError(
            f"unknown cost model {cost_model!r}; known: {', '.join(COST_MODELS)}"
        )
    return COST_MODELS[cost_model]


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def is_spikes(t: Tensor) -> bool:
    """Whether ``t`` is a floating tensor holding only zeros and ones."""
    return t.is_floating_point() and t.numel() > 0 and bool(((t == 0) | (t == 1)).all())


class OperationCounter(TorchDispatchMode):
    """Counts MACs, ACs and memory words of every aten operation run inside it.

    Operations are attributed to the innermost module running (tracked with forward hooks
    on ``model``); operations inside :class:`LIFNeuron` modules are neuron dynamics and are
    not counted, except their membrane-state memory traffic.

    Parameters
    ----------
    model : nn.Module
        The model whose forward passes run inside the mode.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.layers: dict[str, LayerCount] = {}
        self.n_samples = 0
        self._batch = 1
        self._stack: list[str] = []
        self._in_neuron = 0
        self._names = {module: name for name, module in model.named_modules()}
        self._weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self._handles: list[Any] = []

    def __enter__(self) -> OperationCounter:
        for module in self._names:
            self._handles.append(module.register_forward_pre_hook(self._enter_module))
            self._handles.append(module.register_forward_hook(self._leave_module))
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        super().__exit__(*exc)

    def start_batch(self, batch_size: int) -> None:
        """Declare the number of samples of the next forward pass."""
        self._batch = batch_size
        self.n_samples += batch_size

    def _enter_module(self, module: nn.Module, args: Any) -> None:
        self._stack.append(self._names[module])
        if isinstance(module, LIFNeuron):
            self._in_neuron += 1
            inputs = args[0]
            self._layer().state_words += 2 * inputs.numel()  # membrane read + write per step

    def _leave_module(self, module: nn.Module, args: Any, output: Any) -> None:
        self._stack.pop()
        if isinstance(module, LIFNeuron):
            self._in_neuron -= 1

    def _layer(self) -> LayerCount:
        name = self._stack[-1] if self._stack else ""
        if name not in self.layers:
            self.layers[name] = LayerCount(name)
        return self.layers[name]

    def _is_weight(self, t: Tensor) -> bool:
        return t.untyped_storage().data_ptr() in self._weights

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self._in_neuron:
            return out
        packet = func.overloadpacket
        if packet in (_aten.mm, _aten.bmm):
            self._product(args[0], args[1], out)
        elif packet in (_aten.addmm, _aten.baddbmm):
            self._product(args[1], args[2], out)
        elif packet is _aten.convolution:
            self._convolution(*args[:9], out)
        elif packet in _ATTENTION_OPS:
            self._attention(args[0], args[1], args[2], out[0])
        elif packet is attention.SHORT_ATTENTION:
            self._packed_attention(args[0], out[0])
        elif packet is _aten._native_multi_head_attention:
            self._fused_multi_head_attention(args[0], args[1], args[3], args[5], out[0])
        elif packet in _INT8_CONVOLUTIONS:
            self._int8_convolution(args[0], args[1].unpack()[0], out)
        elif packet is _quantized.linear_dynamic:
            self._int8_linear(args[0], args[1].unpack()[0], out)
        elif packet is _aten.sum and args[0].ndim > 0 and is_spikes(args[0]):
            spikes = float(args[0].count_nonzero())
            self._count(acs=spikes, spikes=spikes, slots=args[0].numel(), activations=spikes)
        return out

    def _count(self, *, macs: float = 0.0, acs: float = 0.0, activations: float = 0.0,
               weights: float = 0.0, spikes: float = 0.0, slots: float = 0.0,
               int8: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:  # fmt: skip
        """Add to the current layer; ``int8``: the INT8 parts (MACs, activations, weights)."""
        layer = self._layer()
        layer.int8_macs += int8[0]
        layer.int8_activation_words += int8[1]
        layer.int8_weight_words += int8[2]
        layer.macs += macs
        layer.acs += acs
        layer.activation_words += activations
        layer.weight_words += weights
        layer.spikes += spikes
        layer.spike_slots += slots

    def _traffic(self, out: Tensor, *operands: tuple[Tensor, float | None]) -> dict[str, float]:
        """Words moved by one operation: its ``(tensor, spikes or None)`` operands and output."""
        traffic = {"activations": float(out.numel()), "weights": 0.0}
        for t, spikes in operands:
            if self._is_weight(t):
                traffic["weights"] += t.numel() * self._batch  # weights: once per sample
            else:
                traffic["activations"] += t.numel() if spikes is None else spikes  # spikes: events
        return traffic

    def _product(self, a: Tensor, b: Tensor, out: Tensor) -> None:
        # a: (..., m, k), b: (..., k, n)
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        batch = out.numel() // (m * n)
        spikes_a = float(a.count_nonzero()) if is_spikes(a) else None
        spikes_b = float(b.count_nonzero()) if spikes_a is None and is_spikes(b) else None
        traffic = self._traffic(out, (a, spikes_a), (b, spikes_b))
        if spikes_a is not None:
            self._count(acs=spikes_a * n, spikes=spikes_a, slots=a.numel(), **traffic)
        elif spikes_b is not None:
            self._count(acs=spikes_b * m, spikes=spikes_b, slots=b.numel(), **traffic)
        else:
            self._count(macs=float(batch * m * k * n), **traffic)

    def _convolution(self, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Sequence[int],
                     padding: Sequence[int], dilation: Sequence[int], transposed: bool,
                     output_padding: Sequence[int], groups: int, out: Tensor) -> None:  # fmt: skip
        fan_in = weight.shape[1] * math.prod(weight.shape[2:])
        out_per_group = weight.shape[0] // groups
        spiking = not transposed and is_spikes(x)
        spikes = float(x.count_nonzero()) if spiking else None
        traffic = self._traffic(out, (x, spikes), (weight, None))
        if not spiking:
            self._count(macs=float(out.numel() * fan_in), **traffic)
            return
        # Exact: spikes inside each output's receptive field, per group, times the outputs
        # of the group.
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[weight.ndim - 2]
        ones = torch.ones(groups, *weight.shape[1:], dtype=x.dtype, device=x.device)
        in_field = conv(x, ones, None, stride, padding, dilation, groups)
        acs = float(in_field.sum()) * out_per_group
        self._count(acs=acs, spikes=spikes, slots=x.numel(), **traffic)

    def _int8_convolution(self, x: Tensor, weight: Tensor, out: Tensor) -> None:
        # static INT8: UINT8 activations in and out, INT8 weights (conv1d packs as 2-d)
        macs = float(out.numel() * weight.shape[1] * math.prod(weight.shape[2:]))
        activations = float(x.numel() + out.numel())
        weights = float(weight.numel() * self._batch)
        self._count(macs=macs, activations=activations, weights=weights,
                    int8=(macs, activations, weights))  # fmt: skip

    def _int8_linear(self, x: Tensor, weight: Tensor, out: Tensor) -> None:
        # dynamic INT8: FP32 activations in and out (quantized inside), INT8 weights (n, k)
        macs = float(out.numel() * weight.shape[1])
        weights = float(weight.numel() * self._batch)
        self._count(macs=macs, activations=float(x.numel() + out.numel()), weights=weights,
                    int8=(macs, 0.0, weights))  # fmt: skip

    def _attention(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor) -> None:
        # q (..., L, E), k (..., S, E), v (..., S, Ev): Q K^T then weights @ V
        heads = q.numel() // (q.shape[-2] * q.shape[-1])
        macs = heads * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])
        words = q.numel() + k.numel() + v.numel() + out.numel()
        self._count(macs=float(macs), activations=float(words))

    def _packed_attention(self, qkv: Tensor, out: Tensor) -> None:
        # neurodecode's short-sequence kernel: qkv (batch, L, 3 * dim) → out (batch, L, dim)
        batch, n_tokens, dim = out.shape
        macs = 2 * batch * n_tokens * n_tokens * dim  # Q K^T and weights @ V, all heads
        self._count(macs=float(macs), activations=float(qkv.numel() + out.numel()))

    def _fused_multi_head_attention(self, query: Tensor, key: Tensor, dim: int,
                                    qkv_weight: Tensor, out: Tensor) -> None:  # fmt: skip
        # nn.MultiheadAttention's inference fast path: projections, Q K^T, weights @ V, output
        batch = query.numel() // (query.shape[-2] * dim)
        n_query, n_key = query.shape[-2], key.shape[-2]
        macs = batch * ((2 * n_query + 2 * n_key) * dim * dim + 2 * n_query * n_key * dim)
        activations = query.numel() + key.numel() + out.numel()
        weights = qkv_weight.numel() * self._batch
        self._count(macs=float(macs), activations=float(activations), weights=float(weights))


def batch_inputs(batch: Tensor | dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
    """The model inputs of a window tensor or of a batch dict: ``x`` and the keyword inputs
    (``ch_pos``, ``ch_mask``) it holds."""
    if isinstance(batch, Tensor):
        return batch, {}
    extra = {key: batch[key] for key in ("ch_pos", "ch_mask") if batch.get(key) is not None}
    return batch["x"], extra


def calibrate_batchnorm(model: nn.Module, batches: Iterable[Tensor | dict[str, Any]]) -> None:
    """Set BatchNorm running statistics to the averages over ``batches`` (no weight change).

    An untrained model's BatchNorm layers hold their initial statistics (mean 0, variance
    1), under which its neurons would hardly fire in eval mode; a trained model should be
    measured as it is.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for batch in batches:
            x, extra = batch_inputs(batch)
            model(x, **extra)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()


def measure(model: nn.Module, batches: Iterable[Tensor | dict[str, Any]],
            name: str | None = None) -> EnergyReport:  # fmt: skip
    """Count operations and record firing rates of ``model`` (eval mode) over ``batches``.

    Parameters
    ----------
    model : nn.Module
        A neurodecode model (analog or spiking).
    batches : iterable of Tensor or dict
        Input windows ``(batch, n_chans, n_times)``, or batch dicts with ``x`` and optional
        ``ch_pos`` / ``ch_mask``.
    name : str, optional
        Name for the report (default: the registered name, else the class name).

    Returns
    -------
    EnergyReport
        Per-sample counts and energy.
    """
    if name is None:
        try:
            name = MODELS.name_of(model)
        except KeyError:
            name = type(model).__name__
    model.eval()
    counter = OperationCounter(model)
    with torch.no_grad(), record_firing_rates(model) as rates, counter:
        for batch in batches:
            x, extra = batch_inputs(batch)
            counter.start_batch(x.shape[0])
            model(x, **extra)
    if not counter.n_samples:
        raise ValueError("no batches to measure")
    per_sample = [
        LayerCount(layer.name, *(value / counter.n_samples for value in astuple(layer)[1:]))
        for layer in counter.layers.values()
    ]
    return EnergyReport(
        model=name,
        n_samples=counter.n_samples,
        time_steps=int(getattr(model, "time_steps", 1)),
        layers=per_sample,
        firing_rates=dict(rates),
        n_parameters=n_parameters(model),
    )


def n_parameters(model: nn.Module) -> int:
    """Trainable parameters, plus the weights and biases that quantized layers hold packed."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for module in model.modules():
        # torch.ao quantized layers hold packed weights behind weight() and bias() methods
        # (a submodule called ``weight``, as in braindecode's EEGPT, is not one)
        if inspect.ismethod(getattr(module, "weight", None)):
            bias = module.bias()
            total += module.weight().numel() + (0 if bias is None else bias.numel())
    return total


def format_table(reports: Sequence[EnergyReport]) -> str:
    """Side-by-side totals of several reports as a Markdown table."""
    rows = [
        ("time steps", lambda r: f"{r.time_steps}"),
        ("parameters", lambda r: f"{r.n_parameters:,}"),
        ("MACs / sample (M)", lambda r: f"{r.macs / 1e6:.3f}"),
        ("of which INT8 (M)", lambda r: f"{sum(x.int8_macs for x in r.layers) / 1e6:.3f}"),
        ("ACs / sample (M)", lambda r: f"{r.acs / 1e6:.3f}"),
        ("memory words / sample (M)", lambda r: f"{r.memory_words / 1e6:.3f}"),
        ("mean firing rate", lambda r: _rate(r.mean_firing_rate)),
    ]
    lines = [
        "| | " + " | ".join(r.model for r in reports) + " |",
        "| --- |" + " --- |" * len(reports),
    ]
    lines += [f"| {label} | " + " | ".join(cell(r) for r in reports) + " |" for label, cell in rows]
    return "\n".join(lines)


def format_energy_table(reports: Sequence[EnergyReport],
                        cost_models: Sequence[str] = tuple(COST_MODELS)) -> str:  # fmt: skip
    """Per-sample energy of several reports under each cost model, as a Markdown table.

    A cell is the total in µJ, written ``compute + memory = total`` under models that count
    memory. With two reports, a last column gives the second's total over the first's.
    """
    header = ["cost model", *(f"{r.model} (µJ)" for r in reports)]
    if len(reports) == 2:
        header.append(f"{reports[1].model} / {reports[0].model}")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name in cost_models:
        energies = [report.energy(name) for report in reports]
        cells = [name, *(_energy_cell(energy) for energy in energies)]
        if len(reports) == 2:
            cells.append(f"{energies[1].total_uj / energies[0].total_uj:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _energy_cell(energy: Energy) -> str:
    if _cost_model(energy.cost_model).memory == "none":
        return f"{energy.total_uj:.2f}"
    return f"{energy.compute_uj:.2f} + {energy.memory_uj:.2f} = {energy.total_uj:.2f}"


def format_firing_rates(report: EnergyReport) -> str:
    """Per-layer firing rates of a spiking report as a Markdown table."""
    lines = ["| neuron layer | firing rate |", "| --- | --- |"]
    lines += [f"| {name} | {_rate(rate)} |" for name, rate in report.firing_rates.items()]
    return "\n".join(lines)


def format_precisions(report: EnergyReport) -> str:
    """Per-layer precision of a report's counted operations as a Markdown table.

    ``int8`` layers run quantized; ``float`` layers at the precision of the cost model.
    """
    lines = ["| layer | MACs (M) | ACs (M) | precision |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {layer.name or '(model)'} | {layer.macs / 1e6:.4f} | {layer.acs / 1e6:.4f} | "
        f"{layer.precision} |"
        for layer in report.layers
        if layer.precision
    ]
    return "\n".join(lines)


def _rate(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def model_names(model: str) -> list[str]:
    """Registered names of ``model`` (a name or an alias of :data:`MODEL_ALIASES`) and of its
    analog/spiking counterpart where it has one, the analog first."""
    name = MODEL_ALIASES.get(model, model)
    names = [name] + ([COUNTERPARTS[name]] if name in COUNTERPARTS else [])
    return sorted(names, key=lambda n: n.startswith("spiking"))


def build_calibrated(name: str, batches: Sequence[Tensor | dict[str, Any]],
                     signal: dict[str, Any], n_outputs: int = 2, **arch: Any) -> nn.Module:  # fmt: skip
    """Build registered model ``name`` from seed 0, its BatchNorm statistics from ``batches``.

    Options that only the spiking model takes (:data:`SPIKING_ONLY`) are left out of the
    others, so one set of options builds a model and its counterpart at the same size.
    """
    spiking = name.startswith("spiking")
    own = {k: v for k, v in arch.items() if k not in SPIKING_ONLY or spiking}
    torch.manual_seed(0)
    built = MODELS.build(name, n_outputs=n_outputs, **signal, **own)
    calibrate_batchnorm(built, batches)
    return built


def compare(model: str, batches: Sequence[Tensor | dict[str, Any]], signal: dict[str, Any],
            n_outputs: int = 2, **arch: Any) -> list[EnergyReport]:  # fmt: skip
    """Build ``model`` and its analog/spiking counterpart, calibrate, measure both.

    Returns the analog report first when both exist.
    """
    return [
        measure(build_calibrated(name, batches, signal, n_outputs, **arch), batches, name)
        for name in model_names(model)
    ]
