"""Post-training INT8 quantization of trained analog models, with PyTorch's own tooling.

:func:`quantize_int8` returns an INT8 copy of a trained model for CPU inference
(``torch.ao.quantization``, eager mode, the ``x86``/``fbgemm`` engine):

* **Convolutions** (``Conv1d``, ``Conv2d``) are quantized *statically*: weights to INT8 per
  output channel, activations to UINT8 with one scale per tensor observed (histogram
  observer) on calibration batches. Each convolution is wrapped alone
  (``QuantWrapper``: quantize its input, convolve in INT8, dequantize its output), so the
  rest of the model needs no change and no graph tracing.
* **Linear layers** are quantized *dynamically*: INT8 weights per tensor, each input
  quantized at run time with its own range, output in FP32; this is PyTorch's recommended
  mode for transformers, whose activation ranges vary from window to window.
* Everything else stays FP32: normalisation, GELU, softmax, pooling and the attention
  products (``Q K^T`` and ``weights @ V`` run in FP32 on dynamically quantized projections).

FX graph mode, which would also fold BatchNorm into the convolutions, cannot trace the
conformers (data-dependent masks and shapes); torch 2.13 warns that ``torch.ao.quantization``
is deprecated in favour of torchao but it works, and those warnings are silenced here.

:func:`agreement` compares the INT8 copy's predicted classes with the FP32 model's;
:func:`int8_layers` names the layers that run in INT8. The energy counter
(:mod:`neurodecode.models.energy`) counts the INT8 operations the copy actually executes.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.ao import quantization as tq
from torch.ao.nn import quantized as nnq
from torch.ao.nn.quantized import dynamic as nnqd

from neurodecode.errors import ContractError
from neurodecode.models.energy import batch_inputs
from neurodecode.models.lif import LIFNeuron

STATIC_TYPES = (nn.Conv1d, nn.Conv2d)
"""Layer types quantized statically (calibrated activation scales)."""
DYNAMIC_TYPES = (nn.Linear,)
"""Layer types quantized dynamically (activation range per input at run time)."""
INT8_TYPES = (nnq.Conv1d, nnq.Conv2d, nnqd.Linear)
"""The INT8 layer types a quantized copy holds."""


@contextmanager
def _quiet_quantization() -> Iterator[None]:
    """Silence torch.ao's deprecation notice and its observers' reduce_range advice."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.ao.quantization is deprecated")
        warnings.filterwarnings("ignore", "Please use quant_min and quant_max")
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor, torch.quantize_per_channel")
        warnings.filterwarnings("ignore", "None of the submodule got qconfig applied")
        yield


def _wrap_static(module: nn.Module, qconfig: Any) -> int:
    """Wrap every static-type layer below ``module`` in a ``QuantWrapper``; return how many."""
    wrapped = 0
    for name, child in module.named_children():
        if isinstance(child, STATIC_TYPES):
            wrapper = tq.QuantWrapper(child)
            wrapper.qconfig = qconfig
            setattr(module, name, wrapper)
            wrapped += 1
        else:
            wrapped += _wrap_static(child, qconfig)
    return wrapped


def quantize_int8(model: nn.Module, calibration_batches: Iterable[Tensor | dict[str, Any]]
                  ) -> nn.Module:  # fmt: skip
    """INT8 copy of a trained model: convolutions static, linear layers dynamic.

    Parameters
    ----------
    model : nn.Module
        A trained analog model; it is not changed.
    calibration_batches : iterable of Tensor or dict
        Windows ``(batch, n_chans, n_times)`` or batch dicts with ``x`` and optional
        ``ch_pos`` / ``ch_mask``, drawn from the training or validation split (never the
        test split): they set the activation scales of the convolutions.

    Returns
    -------
    nn.Module
        The quantized copy, on the CPU, in eval mode. Call it like ``model``.

    Raises
    ------
    ContractError
        When the model has spiking neurons (their layers do accumulates, which the cost
        models already price at every precision) or no layer to quantize, or no
        calibration batch is given.
    """
    if any(isinstance(module, LIFNeuron) for module in model.modules()):
        raise ContractError(
            f"{type(model).__name__} has spiking neurons; INT8 post-training quantization "
            "is for analog models (a spiking model's energy is compared at INT8 by the "
            "int8 cost models)"
        )
    engine = torch.backends.quantized.engine
    quantized = copy.deepcopy(model).cpu().eval()
    with _quiet_quantization():
        qconfig = tq.get_default_qconfig(engine)
        n_static = _wrap_static(quantized, qconfig)
        n_dynamic = sum(isinstance(m, DYNAMIC_TYPES) for m in quantized.modules())
        if not n_static + n_dynamic:
            raise ContractError(
                f"{type(model).__name__} has no convolution or linear layer to quantize to INT8"
            )
        tq.prepare(quantized, inplace=True)
        n_batches = 0
        with torch.no_grad():
            for batch in calibration_batches:
                x, extra = batch_inputs(batch)
                quantized(x.cpu(), **{k: v.cpu() for k, v in extra.items()})
                n_batches += 1
        if not n_batches:
            raise ContractError("INT8 quantization needs at least one calibration batch")
        tq.convert(quantized, inplace=True)
        tq.quantize_dynamic(quantized, set(DYNAMIC_TYPES), dtype=torch.qint8, inplace=True)
    return quantized


def int8_layers(model: nn.Module) -> list[str]:
    """Qualified names of the layers of ``model`` that run in INT8."""
    return [name for name, module in model.named_modules() if isinstance(module, INT8_TYPES)]


def agreement(reference: nn.Module, quantized: nn.Module,
              batches: Iterable[Tensor | dict[str, Any]]) -> float:  # fmt: skip
    """Share of windows on which ``quantized`` predicts the class ``reference`` predicts."""
    same = total = 0
    reference.eval()
    quantized.eval()
    with torch.no_grad(), _quiet_quantization():
        for batch in batches:
            x, extra = batch_inputs(batch)
            expected = reference(x, **extra).argmax(dim=-1)
            extra = {k: v.cpu() for k, v in extra.items()}
            got = quantized(x.cpu(), **extra).argmax(dim=-1)
            same += int((expected.cpu() == got).sum())
            total += expected.numel()
    if not total:
        raise ContractError("no windows to compare the INT8 model with its reference on")
    return same / total
