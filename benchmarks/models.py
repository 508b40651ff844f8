"""Training-step throughput and peak memory: dual-branch conformers vs braindecode EEGConformer.

One training step is forward, cross-entropy, backward and an AdamW update on random data of
the given shape. Each (model, input) pair runs in a fresh subprocess so that peak memory is
that model's alone. Prints one JSON line per figure: name, value, unit, baseline, ratio
(value / the EEGConformer figure on the same input), machine.

    python benchmarks/models.py                                   # CPU, 2 threads
    python benchmarks/models.py --device cuda --bf16 --compile --compile-mode reduce-overhead

On CPU, ``cpu_throughput`` (samples per CPU-second of the process, all threads) is also
printed: unlike wall-clock throughput it does not drop when other processes share the cores.
Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA, and on CPU the rise of the
process's peak resident set size over warm-up and timed steps (``ru_maxrss`` minus the RSS
before the first step).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import resource
import subprocess
import sys
import time

from machine import current_rss_kib, machine  # benchmarks/machine.py (scripts run from this folder)

# (name, n_chans, n_times, sfreq)
INPUTS = (("22x1000", 22, 1000, 250.0), ("19x2560", 19, 2560, 256.0))
BASELINE = "braindecode:EEGConformer"
# Model → class, imported directly rather than through the registry, so that the benchmark
# needs only torch (and braindecode for the baseline), not the task modules' dependencies.
MODEL_CLASSES = {
    "dual_branch_conformer": "neurodecode.models.conformer:DualBranchConformer",
    "spiking_dual_branch_conformer": "neurodecode.models.spiking:SpikingDualBranchConformer",
    BASELINE: "neurodecode.models.baselines:BraindecodeModel",
}
N_OUTPUTS = 4


def model_class(model: str) -> type:
    """The class benchmarked as ``model`` (raises ImportError if it cannot be imported)."""
    module, name = MODEL_CLASSES[model].split(":")
    return getattr(importlib.import_module(module), name)


def build(model: str, n_chans: int, n_times: int, sfreq: float):
    """Build ``model`` for the given input (``braindecode:<Name>`` for a baseline)."""
    signal = dict(n_chans=n_chans, n_outputs=N_OUTPUTS, n_times=n_times, sfreq=sfreq)
    if model.startswith("braindecode:"):
        signal["name"] = model.split(":", 1)[1]
    return model_class(model)(**signal)


def measure(args: argparse.Namespace) -> dict:
    """Time ``args.steps`` training steps of one model on one input; return the figures."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    _, n_chans, n_times, sfreq = next(i for i in INPUTS if i[0] == args.input)
    model = build(args.model, n_chans, n_times, sfreq).to(device).train()
    if hasattr(model, "check_inputs_finite"):
        model.check_inputs_finite = False  # a device sync per step; not what is measured
    forward = torch.compile(model, mode=args.compile_mode) if args.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    x = torch.randn(args.batch, n_chans, n_times, device=device)
    y = torch.randint(0, N_OUTPUTS, (args.batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = torch.nn.functional.cross_entropy(forward(x).float(), y)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    rss_before = current_rss_kib()
    for _ in range(args.warmup):
        step()
    sync()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    sync()
    elapsed, cpu_elapsed = time.perf_counter() - start, time.process_time() - cpu_start
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return {
        "throughput": args.batch * args.steps / elapsed,
        "cpu_throughput": args.batch * args.steps / cpu_elapsed,
        "peak_memory": peak_mib,
        "parameters": sum(p.numel() for p in model.parameters()),
        "machine": machine(args.device),
    }


def available(model: str) -> bool:
    """Whether ``model`` can be built here (the spiking model may not exist yet)."""
    if model.startswith("braindecode:") and importlib.util.find_spec("braindecode") is None:
        return False
    try:
        model_class(model)
    except (ImportError, AttributeError):
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument(
        "--compile-mode", default="default", help="torch.compile mode, e.g. reduce-overhead"
    )
    parser.add_argument("--batch", type=int, default=None, help="default 16 (CPU), 256 (GPU)")
    parser.add_argument("--steps", type=int, default=None, help="default 5 (CPU), 50 (GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="default 2 (CPU), 10 (GPU)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--inputs", nargs="*", default=[i[0] for i in INPUTS])
    parser.add_argument("--models", nargs="*", default=list(MODEL_CLASSES))
    parser.add_argument("--model", help=argparse.SUPPRESS)  # set in the subprocess
    parser.add_argument("--input", help=argparse.SUPPRESS)
    args = parser.parse_args()
    gpu = args.device != "cpu"
    args.batch = args.batch or (256 if gpu else 16)
    args.steps = args.steps or (50 if gpu else 5)
    args.warmup = args.warmup or (10 if gpu else 2)

    if args.model:  # subprocess: one model on one input
        print(json.dumps(measure(args)))
        return

    settings = f"batch {args.batch}" + ", bf16" * args.bf16
    settings += f", compiled ({args.compile_mode})" * args.compile
    for input_name in args.inputs:
        results = {}
        for model in args.models:
            if not available(model):
                print(f"# {model}: not available here, skipped", file=sys.stderr)
                continue
            command = [sys.executable, __file__, "--model", model, "--input", input_name]
            command += [f"--{k}={getattr(args, k)}" for k in ("device", "batch", "steps")]
            command += [f"--{k}={getattr(args, k)}" for k in ("warmup", "threads")]
            command += [f"--compile-mode={args.compile_mode}"]
            command += ["--bf16"] * args.bf16 + ["--compile"] * args.compile
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                print(f"# {model} on {input_name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            results[model] = json.loads(done.stdout.strip().splitlines()[-1])
        reference = results.get(BASELINE)
        for model, figures in results.items():
            figures_units = [("throughput", "samples/s"), ("peak_memory", "MiB")]
            if not gpu:  # robust to other processes sharing the cores
                figures_units.append(("cpu_throughput", "samples/CPU-s"))
            for key, unit in figures_units:
                ratio = figures[key] / reference[key] if reference and reference[key] else None
                line = {
                    "name": f"{model} train step {key} {input_name} ({settings})",
                    "value": round(figures[key], 2),
                    "unit": unit,
                    "baseline": f"{BASELINE} {key} {input_name}",
                    "ratio": None if ratio is None else round(ratio, 3),
                    "machine": figures["machine"],
                    "parameters": figures["parameters"],
                }
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
