"""Leaky integrate-and-fire neurons, surrogate gradients and spike encodings.

Every spiking tensor here is *time-major*: ``(T, batch, ...)`` with ``T`` simulation time
steps. The neuron loops over the (few) time steps in Python; ``torch.compile`` unrolls that
loop, so a compiled :class:`LIFNeuron` has no graph break and its steps fuse into one kernel.

* :class:`SigmoidSpike`, :class:`ArctanSpike` -- Heaviside step forward, surrogate
  derivative backward (custom autograd functions);
* :class:`LIFNeuron` -- multi-step LIF with threshold, decay (fixed or learnable), hard or
  soft reset, and an optional firing-rate record;
* :func:`record_firing_rates` -- context manager collecting each neuron layer's rate;
* :func:`repeat_encoding`, :func:`delta_encoding` -- input encodings (direct repetition over
  time steps; threshold crossings of the signal).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

_HALF_PI = math.pi / 2.0


class _SpikeFunction(torch.autograd.Function):
    """Heaviside step ``x >= 0`` forward; subclasses give the surrogate backward.

    ``alpha`` is a 0-d tensor, not a float: dynamo turns a float that changes between
    compiled calls into a graph input, which a custom backward cannot capture.
    """

    @staticmethod
    def forward(x: Tensor, alpha: Tensor) -> Tensor:
        return (x >= 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        ctx.save_for_backward(*inputs)


class SigmoidSpike(_SpikeFunction):
    """Step forward; backward ``alpha * s * (1 - s)`` with ``s = sigmoid(alpha * x)``."""

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        x, alpha = ctx.saved_tensors
        s = torch.sigmoid(alpha * x)
        return grad_output * (alpha * s * (1.0 - s)), None


class ArctanSpike(_SpikeFunction):
    """Step forward; backward ``alpha / 2 / (1 + (pi / 2 * alpha * x) ** 2)``."""

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        x, alpha = ctx.saved_tensors
        return grad_output * ((0.5 * alpha) / (1.0 + (x * (alpha * _HALF_PI)).square())), None


SURROGATES: dict[str, type[_SpikeFunction]] = {"sigmoid": SigmoidSpike, "arctan": ArctanSpike}


def spike(x: Tensor, alpha: Tensor | float = 4.0, surrogate: str = "sigmoid") -> Tensor:
    """Spikes where ``x >= 0`` (``x`` is membrane minus threshold), surrogate gradient.

    Both surrogates integrate to a step of height one, so ``alpha`` sets only the width of
    the gradient window, not its total.
    """
    alpha = torch.as_tensor(alpha, dtype=x.dtype, device=x.device)
    return SURROGATES[surrogate].apply(x, alpha)


class LIFNeuron(nn.Module):
    """Multi-step leaky integrate-and-fire neurons: ``(T, ...)`` input currents → spikes.

    Per step, with decay ``d = 1 / tau``::

        h[t] = v[t-1] + d * (x[t] - (v[t-1] - v_reset))     # decay_input=True
        h[t] = v[t-1] - d * (v[t-1] - v_reset) + x[t]       # decay_input=False
        s[t] = H(h[t] - v_threshold)                        # surrogate gradient backward
        v[t] = s[t] ? v_reset : h[t]                        # hard reset
        v[t] = h[t] - s[t] * v_threshold                    # soft reset (reset="soft")

    The membrane starts at ``v_init`` of the way from ``v_reset`` (0 for soft reset) to the
    threshold for every input, so the module keeps no state between calls. With the defaults it matches spikingjelly's multi-step
    ``LIFNode(tau=2.0)`` (sigmoid surrogate, alpha 4, hard reset to 0).

    Parameters
    ----------
    tau : float
        Membrane time constant in time steps (> 1).
    v_threshold : float
        Firing threshold.
    v_reset : float
        Potential after a spike for ``reset="hard"``; the resting potential.
    reset : {"hard", "soft"}
        Hard reset to ``v_reset`` or soft reset (subtract the threshold).
    decay_input : bool
        Whether the input current is scaled by the decay as well.
    learnable_decay : bool
        Learn the decay (parametrised as ``sigmoid(w)``, initialised at ``1 / tau``), one
        value shared by the layer.
    surrogate : {"sigmoid", "arctan"}
        Surrogate derivative of the step function.
    alpha : float
        Sharpness of the surrogate.
    detach_reset : bool
        Stop gradients through the reset path.
    v_init : float
        Initial membrane potential, as a share of the way from ``v_reset`` to
        ``v_threshold`` (0: at rest; 0.5: half-way, so a first-step input of half the
        threshold already fires).
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        reset: str = "hard",
        decay_input: bool = True,
        learnable_decay: bool = False,
        surrogate: str = "sigmoid",
        alpha: float = 4.0,
        detach_reset: bool = False,
        v_init: float = 0.0,
    ):
        super().__init__()
        if tau <= 1.0:
            raise ValueError(f"tau must be > 1 time step, got {tau}")
        if reset not in ("hard", "soft"):
            raise ValueError(f"reset must be 'hard' or 'soft', got {reset!r}")
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, got {surrogate!r}")
        if not 0.0 <= v_init < 1.0:
            raise ValueError(f"v_init must be in [0, 1) (a share of the threshold), got {v_init}")
        self.tau = tau
        self.v_threshold = v_threshold
        self.v_reset = v_reset if reset == "hard" else 0.0
        self.reset = reset
        self.decay_input = decay_input
        self.surrogate = surrogate
        self.register_buffer("alpha", torch.tensor(float(alpha)), persistent=False)
        self.detach_reset = detach_reset
        self.v_init = v_init
        if learnable_decay:
            self.decay_logit = nn.Parameter(torch.tensor(-math.log(tau - 1.0)))
        else:
            self.decay_logit = None
        # Firing-rate record (not saved with the weights): spikes and neuron-steps seen
        # while ``recording`` is true; see :func:`record_firing_rates`.
        self.recording = False
        # Integer counters: under torch.compile (2.13) in-place updates of 0-d float64
        # buffers were silently dropped, int64 ones are kept.
        self.register_buffer("spike_count", torch.zeros((), dtype=torch.int64), persistent=False)
        self.register_buffer("neuron_steps", torch.zeros((), dtype=torch.int64), persistent=False)

    def extra_repr(self) -> str:
        decay = "learnable" if self.decay_logit is not None else "fixed"
        return (
            f"tau={self.tau}, v_threshold={self.v_threshold}, v_init={self.v_init}, "
            f"reset={self.reset}, "
            f"decay={decay}, surrogate={self.surrogate}(alpha={float(self.alpha):g})"
        )

    def decay(self) -> Tensor | float:
        """The per-step decay ``1 / tau`` (a tensor when learnable)."""
        if self.decay_logit is None:
            return 1.0 / self.tau
        return torch.sigmoid(self.decay_logit)

    def forward(self, x: Tensor) -> Tensor:
        decay = self.decay()
        v_reset = self.v_reset
        v = torch.full_like(x[0], v_reset + self.v_init * (self.v_threshold - v_reset))
        spikes = []
        for x_t in x.unbind(0):
            if self.decay_input:
                h = v + (x_t - (v - v_reset)) * decay
            else:
                h = v - (v - v_reset) * decay + x_t
            s = spike(h - self.v_threshold, self.alpha, self.surrogate)
            s_reset = s.detach() if self.detach_reset else s
            if self.reset == "hard":
                v = h * (1.0 - s_reset) + v_reset * s_reset
            else:
                v = h - s_reset * self.v_threshold
            spikes.append(s)
        out = torch.stack(spikes)
        if self.recording:
            self.spike_count.add_(out.detach().sum(dtype=torch.int64))
            self.neuron_steps.add_(out.numel())
        return out

    def firing_rate(self) -> float:
        """Mean spikes per neuron per time step recorded so far (NaN if nothing recorded)."""
        steps = int(self.neuron_steps)
        return int(self.spike_count) / steps if steps else math.nan

    def reset_firing_rate(self) -> None:
        """Forget the recorded spikes."""
        self.spike_count.zero_()
        self.neuron_steps.zero_()


@contextmanager
def record_firing_rates(model: nn.Module) -> Iterator[dict[str, float]]:
    """Record the firing rate of every :class:`LIFNeuron` in ``model`` while inside.

    Yields a dict that, on exit, maps each neuron layer's qualified name to its mean
    spikes per neuron per time step over all forward passes made inside the block.
    Recording only adds two in-place buffer updates per layer, which compile (switching
    it on or off recompiles once).

    Examples
    --------
    >>> with record_firing_rates(model) as rates:
    ...     model(x)
    >>> rates["temporal.blocks.0.attn.q_neuron"]  # doctest: +SKIP
    """
    model = getattr(model, "_orig_mod", model)  # the module inside a torch.compile wrapper
    neurons = {name: m for name, m in model.named_modules() if isinstance(m, LIFNeuron)}
    rates: dict[str, float] = {}
    for neuron in neurons.values():
        neuron.reset_firing_rate()
        neuron.recording = True
    try:
        yield rates
    finally:
        for name, neuron in neurons.items():
            neuron.recording = False
            rates[name] = neuron.firing_rate()


def repeat_encoding(x: Tensor, time_steps: int) -> Tensor:
    """Direct encoding: the same analog input at every time step, ``(T, *x.shape)``.

    A view (no copy); the first layer after it sees real values and does MACs.
    """
    return x.unsqueeze(0).expand(time_steps, *x.shape)


def delta_encoding(x: Tensor, threshold: float = 0.5) -> Tensor:
    """Threshold-crossing (level-crossing) encoding of ``(batch, n_chans, n_times)`` signals.

    Each channel's signal is divided by its standard deviation over the window and
    quantised into levels ``threshold`` apart; an "up" spike marks a sample where the level
    rises and a "down" spike one where it falls (a delta modulator without the sequential
    scan). Returns binary spikes ``(batch, 2 * n_chans, n_times)``: up channels first, then
    down channels; the first sample never spikes.

    Parameters
    ----------
    x : Tensor
        Signals in any unit (each channel is normalised by its own spread).
    threshold : float
        Level spacing in standard deviations; smaller gives more spikes.
    """
    scale = x.std(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    level = torch.floor(x / (scale * threshold))
    step = torch.diff(level, dim=-1, prepend=level[..., :1])
    up = (step > 0).to(x.dtype)
    down = (step < 0).to(x.dtype)
    return torch.cat([up, down], dim=1)
