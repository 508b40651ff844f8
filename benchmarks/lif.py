"""LIF layer forward + backward: neurodecode's compiled ``LIFNeuron`` vs spikingjelly.

Both neurons get the same time-major tensor (default ``T=4``, shape ``[4, 64, 128, 384]``)
and the same dynamics (tau 2, threshold 1, hard reset to 0, sigmoid surrogate with alpha
4); the script first checks that spikes and input gradients agree, then times a forward
plus backward pass of each. spikingjelly's multi-step ``LIFNode`` picks its own fused
CUDA/Triton kernels on a GPU.

Prints one JSON line per figure (name, value, unit, baseline, ratio, machine); ``ratio`` is
spikingjelly's time over ours (above 1: ours is faster).

Usage::

    python benchmarks/lif.py                       # GPU if present, else CPU
    python benchmarks/lif.py --shape 4 8 64 128    # a smaller tensor (CPU)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

from neurodecode.models.lif import LIFNeuron


def machine(device: torch.device) -> str:
    """A short description of the device the figures were taken on."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"{cpu_name()} x{torch.get_num_threads()} threads, torch {torch.__version__}"


def time_ms(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> float:
    """Median wall time of ``step`` in milliseconds (CUDA-synchronised)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shape",
        type=int,
        nargs="+",
        default=[4, 64, 128, 384],
        help="time-major tensor shape, first entry is T",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    from spikingjelly.activation_based import functional, neuron

    device = torch.device(args.device)
    torch.manual_seed(0)
    x = (torch.randn(args.shape, device=device) * 1.5).requires_grad_()
    grad = torch.randn(args.shape, device=device)

    ours = torch.compile(LIFNeuron(tau=2.0).to(device), fullgraph=True)
    theirs = neuron.LIFNode(tau=2.0, step_mode="m").to(device)

    def run_ours() -> torch.Tensor:
        x.grad = None
        y = ours(x)
        y.backward(grad)
        return y

    def run_theirs() -> torch.Tensor:
        x.grad = None
        functional.reset_net(theirs)
        y = theirs(x)
        y.backward(grad)
        return y

    spikes_ours = run_ours().detach()
    grad_ours = x.grad.clone()
    spikes_theirs = run_theirs().detach()
    grad_theirs = x.grad.clone()
    agree = {
        "spikes_equal": bool(torch.equal(spikes_ours, spikes_theirs)),
        "grad_max_abs_diff": float((grad_ours - grad_theirs).abs().max()),
    }

    ms_ours = time_ms(run_ours, device, args.warmup, args.repeats)
    ms_theirs = time_ms(run_theirs, device, args.warmup, args.repeats)
    where = machine(device)
    shape = "x".join(map(str, args.shape))
    for name, value in (
        ("spikingjelly_lif_fwd_bwd", ms_theirs),
        ("neurodecode_lif_fwd_bwd", ms_ours),
    ):
        print(
            json.dumps(
                {
                    "name": f"{name}_{shape}",
                    "value": round(value, 4),
                    "unit": "ms",
                    "baseline": f"spikingjelly {_version('spikingjelly')} LIFNode(step_mode='m')",
                    "ratio": round(ms_theirs / value, 3),
                    "machine": where,
                    **agree,
                }
            )
        )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
