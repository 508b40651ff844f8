"""Operation counts and energy estimates of analog and spiking models, from real batches.

The count follows the convention of the Spike-driven Transformer (Yao et al., NeurIPS 2023)
and of Horowitz's 45 nm figures: only synaptic operations are counted -- matrix products,
convolutions and attention products -- not element-wise work (activations, normalisation,
which folds into weights at inference, or neuron updates). Each counted operation is
classified from the operands it actually received:

* **MAC** (multiply-accumulate, ``E_MAC = 4.6 pJ``): both operands real-valued. A matrix
  product ``(m, k) @ (k, n)`` is ``m k n`` MACs; a convolution ``outputs x fan-in``;
  attention ``2 L S E`` per head.
* **AC** (accumulate, ``E_AC = 0.9 pJ``): one operand is spikes (only 0 and 1). A spike adds
  its fan-out weights, so the count is exact: ``nnz(spikes) x n`` for a product, and for a
  convolution the sum over outputs of the spikes in their receptive field. The column sum of
  spike-driven attention adds one AC per spike; masking spikes by spikes (AND) is free.

Energy also has a **memory term**, at ``E_MEM = 5 pJ`` per 32-bit word moved to or from an
8 kB on-chip SRAM at 45 nm (Horowitz, ISSCC 2014, as tabulated by Han et al., ISCA 2016):
each counted operation reads its activation inputs (for spikes, only the spikes, as
addresses) and writes its output once; its weights are read once per sample; each neuron
reads and writes its membrane potential once per time step. Off-chip DRAM (about 640 pJ
per word) is left out: the models here fit on chip. Firing rates come from
:func:`~neurodecode.models.lif.record_firing_rates` during the same forward passes.

:func:`compare` measures a model next to its counterpart (analog ↔ spiking) with the same
size on the same windows; ``neurodecode benchmark energy`` (:mod:`neurodecode.cli.benchmark`)
runs it on the windows of a recording file or of a prepared dataset.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from neurodecode.models import attention
from neurodecode.models.lif import LIFNeuron, record_firing_rates
from neurodecode.registry import MODELS

E_MAC_PJ = 4.6
"""Energy of a 32-bit float multiply-accumulate at 45 nm, pJ (Horowitz 2014)."""
E_AC_PJ = 0.9
"""Energy of a 32-bit float accumulate (addition) at 45 nm, pJ (Horowitz 2014)."""
E_MEM_PJ_PER_WORD = 5.0
"""Energy of one 32-bit access to an 8 kB SRAM at 45 nm, pJ (Horowitz 2014; Han et al. 2016)."""

MODEL_ALIASES = {"spiking": "spiking_dual_branch_conformer", "analog": "dual_branch_conformer"}
COUNTERPARTS = {
    "spiking_dual_branch_conformer": "dual_branch_conformer",
    "dual_branch_conformer": "spiking_dual_branch_conformer",
}

SPIKING_ONLY = ("time_steps", "encoding")  # options the analog counterpart does not take

_aten = torch.ops.aten
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
    memory_words : float
        32-bit words read or written (see the module docstring).
    spikes, spike_slots : float
        Spikes and spike-or-silence positions in the spike inputs of AC operations; their
        ratio is the layer's input firing rate.
    """

    name: str
    macs: float = 0.0
    acs: float = 0.0
    memory_words: float = 0.0
    spikes: float = 0.0
    spike_slots: float = 0.0

    @property
    def input_rate(self) -> float:
        """Share of spike-input positions holding a spike (NaN for MAC-only layers)."""
        return self.spikes / self.spike_slots if self.spike_slots else math.nan


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
        """32-bit memory accesses per sample."""
        return sum(layer.memory_words for layer in self.layers)

    @property
    def mean_firing_rate(self) -> float:
        """Mean of the neuron layers' firing rates (NaN without neurons)."""
        rates = [r for r in self.firing_rates.values() if not math.isnan(r)]
        return sum(rates) / len(rates) if rates else math.nan

    @property
    def compute_energy_uj(self) -> float:
        """``E_MAC * MACs + E_AC * ACs`` per sample, µJ."""
        return (E_MAC_PJ * self.macs + E_AC_PJ * self.acs) * 1e-6

    @property
    def memory_energy_uj(self) -> float:
        """``E_MEM * words`` per sample, µJ."""
        return E_MEM_PJ_PER_WORD * self.memory_words * 1e-6

    @property
    def energy_uj(self) -> float:
        """Compute plus memory energy per sample, µJ."""
        return self.compute_energy_uj + self.memory_energy_uj

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: totals, constants, per-layer counts and firing rates."""
        return {
            "model": self.model,
            "n_samples": self.n_samples,
            "time_steps": self.time_steps,
            "n_parameters": self.n_parameters,
            "macs": self.macs,
            "acs": self.acs,
            "memory_words": self.memory_words,
            "mean_firing_rate": _json_float(self.mean_firing_rate),
            "compute_energy_uj": self.compute_energy_uj,
            "memory_energy_uj": self.memory_energy_uj,
            "energy_uj": self.energy_uj,
            "constants_pj": {"mac": E_MAC_PJ, "ac": E_AC_PJ, "memory_word": E_MEM_PJ_PER_WORD},
            "layers": [
                asdict(layer) | {"input_rate": _json_float(layer.input_rate)}
                for layer in self.layers
            ],
            "firing_rates": {k: _json_float(v) for k, v in self.firing_rates.items()},
        }


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
            self._layer().memory_words += 2 * inputs.numel()  # membrane read + write per step

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
        elif packet is _aten.sum and args[0].ndim > 0 and is_spikes(args[0]):
            spikes = float(args[0].count_nonzero())
            self._count(acs=spikes, spikes=spikes, slots=args[0].numel(), words=spikes)
        return out

    def _count(self, *, macs: float = 0.0, acs: float = 0.0, words: float = 0.0,
               spikes: float = 0.0, slots: float = 0.0) -> None:  # fmt: skip
        layer = self._layer()
        layer.macs += macs
        layer.acs += acs
        layer.memory_words += words
        layer.spikes += spikes
        layer.spike_slots += slots

    def _operand_words(self, t: Tensor, spikes: float | None) -> float:
        if self._is_weight(t):
            return float(t.numel() * self._batch)  # weights: once per sample
        return float(t.numel()) if spikes is None else spikes  # spikes: only the events

    def _product(self, a: Tensor, b: Tensor, out: Tensor) -> None:
        # a: (..., m, k), b: (..., k, n)
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        batch = out.numel() // (m * n)
        spikes_a = float(a.count_nonzero()) if is_spikes(a) else None
        spikes_b = float(b.count_nonzero()) if spikes_a is None and is_spikes(b) else None
        words = (self._operand_words(a, spikes_a) + self._operand_words(b, spikes_b)
                 + out.numel())  # fmt: skip
        if spikes_a is not None:
            self._count(acs=spikes_a * n, spikes=spikes_a, slots=a.numel(), words=words)
        elif spikes_b is not None:
            self._count(acs=spikes_b * m, spikes=spikes_b, slots=b.numel(), words=words)
        else:
            self._count(macs=float(batch * m * k * n), words=words)

    def _convolution(self, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Sequence[int],
                     padding: Sequence[int], dilation: Sequence[int], transposed: bool,
                     output_padding: Sequence[int], groups: int, out: Tensor) -> None:  # fmt: skip
        fan_in = weight.shape[1] * math.prod(weight.shape[2:])
        out_per_group = weight.shape[0] // groups
        spiking = not transposed and is_spikes(x)
        spikes = float(x.count_nonzero()) if spiking else None
        words = self._operand_words(x, spikes) + self._operand_words(weight, None) + out.numel()
        if not spiking:
            self._count(macs=float(out.numel() * fan_in), words=words)
            return
        # Exact: spikes inside each output's receptive field, per group, times the outputs
        # of the group.
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[weight.ndim - 2]
        ones = torch.ones(groups, *weight.shape[1:], dtype=x.dtype, device=x.device)
        in_field = conv(x, ones, None, stride, padding, dilation, groups)
        acs = float(in_field.sum()) * out_per_group
        self._count(acs=acs, spikes=spikes, slots=x.numel(), words=words)

    def _attention(self, q: Tensor, k: Tensor, v: Tensor, out: Tensor) -> None:
        # q (..., L, E), k (..., S, E), v (..., S, Ev): Q K^T then weights @ V
        heads = q.numel() // (q.shape[-2] * q.shape[-1])
        macs = heads * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])
        words = q.numel() + k.numel() + v.numel() + out.numel()
        self._count(macs=float(macs), words=float(words))

    def _packed_attention(self, qkv: Tensor, out: Tensor) -> None:
        # neurodecode's short-sequence kernel: qkv (batch, L, 3 * dim) → out (batch, L, dim)
        batch, n_tokens, dim = out.shape
        macs = 2 * batch * n_tokens * n_tokens * dim  # Q K^T and weights @ V, all heads
        self._count(macs=float(macs), words=float(qkv.numel() + out.numel()))

    def _fused_multi_head_attention(self, query: Tensor, key: Tensor, dim: int,
                                    qkv_weight: Tensor, out: Tensor) -> None:  # fmt: skip
        # nn.MultiheadAttention's inference fast path: projections, Q K^T, weights @ V, output
        batch = query.numel() // (query.shape[-2] * dim)
        n_query, n_key = query.shape[-2], key.shape[-2]
        macs = batch * ((2 * n_query + 2 * n_key) * dim * dim + 2 * n_query * n_key * dim)
        words = query.numel() + key.numel() + qkv_weight.numel() * self._batch + out.numel()
        self._count(macs=float(macs), words=float(words))


def _batch_inputs(batch: Tensor | dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
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
            x, extra = _batch_inputs(batch)
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
            x, extra = _batch_inputs(batch)
            counter.start_batch(x.shape[0])
            model(x, **extra)
    if not counter.n_samples:
        raise ValueError("no batches to measure")
    per_sample = [
        LayerCount(
            layer.name,
            layer.macs / counter.n_samples,
            layer.acs / counter.n_samples,
            layer.memory_words / counter.n_samples,
            layer.spikes / counter.n_samples,
            layer.spike_slots / counter.n_samples,
        )
        for layer in counter.layers.values()
    ]
    return EnergyReport(
        model=name,
        n_samples=counter.n_samples,
        time_steps=int(getattr(model, "time_steps", 1)),
        layers=per_sample,
        firing_rates=dict(rates),
        n_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )


def format_table(reports: Sequence[EnergyReport]) -> str:
    """Side-by-side totals of several reports as a Markdown table."""
    rows = [
        ("time steps", lambda r: f"{r.time_steps}"),
        ("parameters", lambda r: f"{r.n_parameters:,}"),
        ("MACs / sample (M)", lambda r: f"{r.macs / 1e6:.3f}"),
        ("ACs / sample (M)", lambda r: f"{r.acs / 1e6:.3f}"),
        ("memory words / sample (M)", lambda r: f"{r.memory_words / 1e6:.3f}"),
        ("mean firing rate", lambda r: _rate(r.mean_firing_rate)),
        ("compute energy (µJ)", lambda r: f"{r.compute_energy_uj:.3f}"),
        ("memory energy (µJ)", lambda r: f"{r.memory_energy_uj:.3f}"),
        ("total energy (µJ)", lambda r: f"{r.energy_uj:.3f}"),
    ]
    lines = [
        "| | " + " | ".join(r.model for r in reports) + " |",
        "| --- |" + " --- |" * len(reports),
    ]
    lines += [f"| {label} | " + " | ".join(cell(r) for r in reports) + " |" for label, cell in rows]
    return "\n".join(lines)


def format_firing_rates(report: EnergyReport) -> str:
    """Per-layer firing rates of a spiking report as a Markdown table."""
    lines = ["| neuron layer | firing rate |", "| --- | --- |"]
    lines += [f"| {name} | {_rate(rate)} |" for name, rate in report.firing_rates.items()]
    return "\n".join(lines)


def _rate(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def compare(model: str, batches: Sequence[Tensor | dict[str, Any]], signal: dict[str, Any],
            n_outputs: int = 2, **arch: Any) -> list[EnergyReport]:  # fmt: skip
    """Build ``model`` and its analog/spiking counterpart, calibrate, measure both.

    Returns the analog report first when both exist.
    """
    name = MODEL_ALIASES.get(model, model)
    names = [name] + ([COUNTERPARTS[name]] if name in COUNTERPARTS else [])
    names.sort(key=lambda n: n.startswith("spiking"))
    reports = []
    for each in names:
        own = {k: v for k, v in arch.items() if k not in SPIKING_ONLY or each.startswith("spiking")}
        torch.manual_seed(0)
        built = MODELS.build(each, n_outputs=n_outputs, **signal, **own)
        calibrate_batchnorm(built, batches)
        reports.append(measure(built, batches, each))
    return reports
