"""Masked-pretraining throughput: tokens/s, model FLOPs utilisation, loader rate, DDP scaling.

One step is the masked autoencoder's forward (masking, patch_conformer encoder, decoder,
loss on hidden patches), backward and a fused AdamW update, on random windows of
``--chans`` channels × ``--seconds`` s at 128 Hz, in bf16 autocast with neurodecode's
attention (``--attention auto``: the short-sequence Triton kernel on CUDA) and, with
``--compile``, ``torch.compile``. ``--baseline-attention sdpa`` times the same step with
PyTorch's fused ``scaled_dot_product_attention`` in the same job and prints the ratio.
FLOPs per step are counted once with ``torch.utils.flop_counter.FlopCounterMode`` (matrix
products and attention, forward and backward); MFU is achieved FLOP/s over ``--peak-tflops``
(989: H100 SXM / H200 dense bf16). The loader figure is windows/s that ``--workers``
processes deliver through ``collate_mixture`` from an in-memory two-montage mixture, against
the windows/s the training step consumes.

Under ``torchrun --nproc_per_node=N`` the model is wrapped in DDP (NCCL) and each GPU runs
``--batch`` windows; the figures are global. Prints one JSON line per figure: name, value,
unit, baseline, ratio, machine.

    python benchmarks/pretraining.py --compile --baseline-attention sdpa
    torchrun --nproc_per_node=2 benchmarks/pretraining.py --compile --baseline-tokens-s <1-GPU>
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

from neurodecode.models.attention import KERNELS

SFREQ = 128.0


def machine() -> str:
    """The GPU and torch version (or CPU)."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    return f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def emit(name: str, value: float, unit: str, baseline: str | None = None, ratio=None) -> None:
    """One JSON line per figure (rank 0 only)."""
    if int(os.environ.get("RANK", "0")) == 0:
        line = {"name": name, "value": round(value, 4), "unit": unit, "baseline": baseline,
                "ratio": None if ratio is None else round(ratio, 4), "machine": machine()}  # fmt: skip
        print(json.dumps(line), flush=True)


def build(args: argparse.Namespace, device: torch.device, attention: str):
    """The masked autoencoder of the benchmark's size, on ``device``."""
    from neurodecode.models.masked_autoencoder import MaskedAutoencoder
    from neurodecode.models.patch_conformer import PatchConformer

    n_times = int(args.seconds * SFREQ)
    encoder = PatchConformer(
        args.chans, 1, n_times, SFREQ, patch_s=args.patch_s, dim=args.dim, depth=args.depth,
        n_heads=args.heads, mlp_ratio=args.mlp_ratio, dropout=0.0, attention_kernel=attention,
        check_inputs_finite=False,
    )  # fmt: skip
    model = MaskedAutoencoder(
        encoder, decoder_dim=args.dim // 2, decoder_heads=max(1, args.heads // 2)
    )
    return model.to(device)


def inputs(args: argparse.Namespace, device: torch.device):
    """A random batch with positions on a sphere, every channel present."""
    n_times = int(args.seconds * SFREQ)
    x = torch.randn(args.batch, args.chans, n_times, device=device)
    ch_pos = torch.nn.functional.normalize(torch.randn(args.chans, 3, device=device), dim=1) * 0.09
    return x, ch_pos[None].expand(args.batch, -1, -1).contiguous()


def flops_per_step(model, x, ch_pos) -> int:
    """Forward + backward FLOPs of one step (matrix products and attention).

    Counted eagerly on an eighth of the batch and scaled (every counted operation is per
    window), so that counting fits in memory next to the compiled step.
    """
    from torch.utils.flop_counter import FlopCounterMode

    part = x.shape[0] // 8 if x.shape[0] % 8 == 0 else x.shape[0]
    counter = FlopCounterMode(display=False)
    with counter, torch.autocast(x.device.type, dtype=torch.bfloat16):
        model(x[:part], ch_pos[:part])["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() * x.shape[0] // part


def profile(step, sync) -> None:
    """Print the kernels that take the most time over 5 steps."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    gpu = torch.cuda.is_available()
    activity = ProfilerActivity.CUDA if gpu else ProfilerActivity.CPU
    with profiler(activities=[activity]) as prof:
        for _ in range(5):
            step()
        sync()
    sort_by = "cuda_time_total" if gpu else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort_by, row_limit=15, max_name_column_width=60))


def loader_rate(args: argparse.Namespace) -> float:
    """Windows/s delivered by ``--workers`` loader processes through ``collate_mixture``."""
    from torch.utils.data import DataLoader

    from neurodecode.data.mixture import collate_mixture

    n_times = int(args.seconds * SFREQ)

    class Windows(torch.utils.data.Dataset):
        def __len__(self):
            return 1 << 20

        def __getitem__(self, i):
            n_chans = args.chans if i % 2 else max(1, args.chans // 3)
            return {"x": torch.randn(n_chans, n_times), "y": -1,
                    "ch_pos": torch.zeros(n_chans, 3), "ch_mask": torch.ones(n_chans, dtype=bool),
                    "dataset": "a", "subject": "1", "session": "", "recording": "r",
                    "start_s": 0.0}  # fmt: skip

    loader = DataLoader(Windows(), batch_size=args.batch, num_workers=args.workers,
                        collate_fn=collate_mixture, pin_memory=torch.cuda.is_available())  # fmt: skip
    batches = iter(loader)
    for _ in range(3):
        next(batches)
    start, n = time.perf_counter(), 20
    for _ in range(n):
        next(batches)
    return n * args.batch / (time.perf_counter() - start)


def time_steps(args: argparse.Namespace, device: torch.device, attention: str) -> dict:
    """Seconds per training step (and FLOPs, parameters, memory) with ``attention`` kernels."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    model = build(args, device, attention)
    x, ch_pos = inputs(args, device)
    flops = flops_per_step(model, x, ch_pos)
    step_model = model
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        step_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local])
    if args.compile:
        step_model = torch.compile(step_model, mode=args.compile_mode)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = step_model(x, ch_pos)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args.warmup):
        step()
    sync()
    if world > 1:
        torch.distributed.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    if args.profile and world == 1:
        profile(step, sync)
    return {
        "seconds": seconds,
        "flops": flops,
        "parameters": sum(p.numel() for p in model.parameters()),
        "memory": torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="windows per GPU")
    parser.add_argument("--chans", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--patch-s", type=float, default=0.25)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--mlp-ratio", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--compile-mode", default=None,
                        help="torch.compile mode, e.g. max-autotune-no-cudagraphs")  # fmt: skip
    parser.add_argument("--attention", choices=KERNELS, default="auto",
                        help="attention kernels of the model (see neurodecode.models.attention)")  # fmt: skip
    parser.add_argument("--baseline-attention", choices=KERNELS, default=None,
                        help="also time the step with these kernels and print the ratio")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="print the 15 GPU kernels that take the most time")  # fmt: skip
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--baseline-tokens-s", type=float, default=None,
                        help="1-GPU tokens/s, for the scaling efficiency under torchrun")  # fmt: skip
    args = parser.parse_args()

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        torch.distributed.init_process_group("nccl")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(local)
    run = time_steps(args, device, args.attention)
    seconds = run["seconds"]

    n_patches = int(args.seconds * SFREQ) // max(1, round(args.patch_s * SFREQ))
    tokens = args.batch * args.chans * n_patches * world
    size = (
        f"dim{args.dim}-depth{args.depth}, {args.chans}ch x {args.seconds:g}s, batch {args.batch}"
    )
    tag = f"pretrain[{size}, attention {args.attention}, {world} GPU{'s' if world > 1 else ''}]"
    emit(f"{tag} tokens/s", tokens / seconds, "tokens/s")
    emit(f"{tag} step time", seconds * 1e3, "ms")
    mfu = run["flops"] / seconds / (args.peak_tflops * 1e12)
    emit(f"{tag} MFU", 100 * mfu, "%", baseline=f"{args.peak_tflops:g} TFLOP/s bf16 dense")
    emit(f"{tag} parameters", run["parameters"] / 1e6, "M")
    emit(f"{tag} TFLOP per step", run["flops"] / 1e12, "TFLOP")
    if run["memory"] is not None:
        emit(f"{tag} peak GPU memory", run["memory"] / 2**30, "GiB")
    if args.baseline_attention:
        baseline = time_steps(args, device, args.baseline_attention)["seconds"]
        emit(f"{tag} speed-up over attention {args.baseline_attention}", baseline / seconds, "x",
             baseline=f"same step with attention {args.baseline_attention}: "
             f"{baseline * 1e3:.1f} ms, MFU {100 * run['flops'] / baseline / (args.peak_tflops * 1e12):.1f} %",
             ratio=baseline / seconds)  # fmt: skip
    if world > 1 and args.baseline_tokens_s:
        efficiency = tokens / seconds / (world * args.baseline_tokens_s)
        emit(f"{tag} scaling efficiency", 100 * efficiency, "%", baseline="1 GPU tokens/s")
    if world == 1 and args.workers > 0:
        needed = args.batch / seconds
        rate = loader_rate(args)
        emit(f"{tag} loader windows/s ({args.workers} workers)", rate, "windows/s",
             baseline="windows/s the step consumes", ratio=rate / needed)  # fmt: skip
    if world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
