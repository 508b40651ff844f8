"""Fine-tuning throughput and peak memory: braindecode's Labram and CBraMod through
neurodecode's training path against braindecode's own ``EEGClassifier`` (skorch) loop.

Both sides train the same braindecode model class (``braindecode.models.Labram`` /
``CBraMod``, built from ``configs/model/<name>.yaml``: the architecture of the pretrained
checkpoints) on the same random windows (SzCORE's 19 channels, ``--seconds`` at the models'
200 Hz, so neurodecode neither resamples nor maps channels), the same batch size, AdamW
(lr 1e-3, weight decay 0.01), two classes, on the same device, one variant per fresh
subprocess (peak memory is that variant's alone), all in one command:

* ``braindecode``: ``braindecode.EEGClassifier(module=<class>, module__...)`` fitted on
  NumPy arrays, float32, eager, ``train_split=None``, its default callbacks (the baseline);
* ``full``: neurodecode's ``SeizureTask`` (the seizure recipe's task, ``configs/task/
  seizure.yaml``) around ``model=<name>`` built by the task itself (``build_encoder``),
  set up by ``neurodecode.finetune.apply_strategy`` (``finetune.strategy=full``), trained
  by a ``lightning.Trainer`` with the run layer's arguments (``configs/trainer/default.yaml``
  through ``neurodecode.run.trainer_arguments``: ``precision: auto`` = bf16-mixed on a
  bf16 GPU, gradient clipping 1.0) on ``EEGDataModule`` batches (window dicts as the window
  cache gives them), the encoder ``torch.compile``d (``--compile-mode``);
* ``lora``: the same with ``finetune.strategy=lora`` (rank 8, alpha 16, on ``--lora-targets``);
* ``full_fp32_eager`` (optional): the ``full`` path in float32 without compile, to separate
  the training loop from precision and compilation.

Time counts from the end of the ``--warmup``-th training batch to the end of the last one
(a CUDA synchronisation at both ends), data loading included; peak memory is
``torch.cuda.max_memory_allocated`` over the whole fit (on CPU: the rise of the peak RSS).
Prints one JSON line per figure (name, value, unit, baseline, ratio, machine): ``ratio`` is
the figure over braindecode's on the same model; for ``lora`` it is over neurodecode ``full``.

    python benchmarks/finetune.py --device cpu --steps 2 --warmup 1 --batch 4 --compile-mode none
    python benchmarks/finetune.py --device cuda                     # batch 128, 10 + 50 steps
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from machine import current_rss_kib, machine  # benchmarks/machine.py (scripts run from this folder)

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("labram", "cbramod")
VARIANTS = ("braindecode", "full", "lora", "full_fp32_eager")
DEFAULT_VARIANTS = ("braindecode", "full", "lora")
BASELINE = "braindecode"
#: Layers that receive LoRA adapters. CBraMod's attention is torch's nn.MultiheadAttention,
#: whose forward reads ``out_proj.weight`` directly (an adapter there would never run), so
#: its adapters go on the feed-forward layers.
LORA_TARGETS = {"labram": ["qkv", "proj"], "cbramod": ["linear1", "linear2"]}
#: Keys of a neurodecode model config that are not braindecode arguments.
WRAPPER_KEYS = ("_target_", "model_sfreq", "on_other_sfreq", "input_units", "channels",
                "allow_missing_channels", "check_inputs_finite", "peft_targets")  # fmt: skip
SFREQ = 200.0
N_OUTPUTS = 2
LR, WEIGHT_DECAY = 1e-3, 1e-2


def model_config(model: str) -> dict[str, Any]:
    """``configs/model/<model>.yaml``'s ``model`` node, resolved (no missing channels)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(ROOT / "configs" / "model" / f"{model}.yaml")
    cfg.allow_missing_channels = False
    return OmegaConf.to_container(cfg.model, resolve=True)


def channels() -> tuple[list[str], list[list[float]]]:
    """SzCORE's 19 channel names and their positions (metres)."""
    from neurodecode.data.montage import SZCORE_19, channel_positions

    names = list(SZCORE_19)
    return names, channel_positions(names).tolist()


def synthetic(n: int, n_times: int, seed: int = 0):
    """``n`` random windows ``(n, 19, n_times)`` float32 (units of 100 µV) and 0/1 labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 19, n_times), dtype=np.float32)
    y = (np.arange(n) % N_OUTPUTS).astype(np.int64)  # every part holds both classes
    return x, y


class Timer:
    """Wall time from the end of training batch ``warmup`` to the end of the last one."""

    def __init__(self, warmup: int, steps: int, device: str) -> None:
        self.warmup, self.steps, self.device = warmup, steps, device
        self.batches = 0
        self.start = self.stop = None

    def batch_end(self) -> None:
        self.batches += 1
        if self.batches in (self.warmup, self.warmup + self.steps):
            if self.device == "cuda":
                import torch

                torch.cuda.synchronize()
            if self.batches == self.warmup:
                self.start = time.perf_counter()
            else:
                self.stop = time.perf_counter()

    @property
    def elapsed(self) -> float:
        if self.start is None or self.stop is None:
            raise RuntimeError(f"only {self.batches} training batches ran")
        return self.stop - self.start


def run_braindecode(args: argparse.Namespace, x, y, timer: Timer) -> tuple[Any, int]:
    """braindecode's EEGClassifier (skorch) fitted on the arrays for one epoch."""
    import torch
    from skorch.callbacks import Callback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import braindecode.models as zoo
        from braindecode import EEGClassifier

    class TimeBatches(Callback):
        def on_batch_end(self, net, batch=None, training=None, **kwargs):  # noqa: ARG002
            if training:
                timer.batch_end()

    names, positions = channels()
    chs_info = [
        {"ch_name": n, "loc": [*p, *[0.0] * 9]} for n, p in zip(names, positions, strict=True)
    ]
    architecture = {k: v for k, v in model_config(args.model).items() if k not in WRAPPER_KEYS}
    cls = {"labram": zoo.Labram, "cbramod": zoo.CBraMod}[args.model]
    module = {f"module__{k}": v for k, v in architecture.items()}
    net = EEGClassifier(
        cls,
        module__n_chans=19,
        module__n_outputs=N_OUTPUTS,
        module__n_times=x.shape[-1],
        module__sfreq=SFREQ,
        module__chs_info=chs_info,
        **module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=WEIGHT_DECAY,
        lr=LR,
        batch_size=args.batch,
        max_epochs=1,
        train_split=None,
        iterator_train__num_workers=args.workers,
        callbacks=[("time_batches", TimeBatches())],
        classes=list(range(N_OUTPUTS)),
        device=args.device,
        verbose=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Labram embeds channels by name: its forward needs them (skorch passes fit
        # parameters on to the module's forward), as neurodecode's wrapper passes them
        net.fit(x, y, **({"ch_names": names} if args.model == "labram" else {}))
    module = net.module_
    return module, sum(p.numel() for p in module.parameters() if p.requires_grad)


class Windows:
    """Random windows as the window cache gives them (dicts with identifiers), with the
    ``index`` DataFrame that ``EEGDataModule`` splits on."""

    def __init__(self, x, y, n_valid: int) -> None:
        import pandas as pd
        import torch

        _, positions = channels()
        self.x, self.y = x, y
        n = len(y)
        subjects = ["train"] * (n - 2 * n_valid) + ["valid"] * n_valid + ["test"] * n_valid
        self.index = pd.DataFrame(
            {
                "subject": subjects,
                "session": "0",
                "recording": [f"{s}_rec" for s in subjects],
                "start_s": [4.0 * i for i in range(n)],
                "label": y,
            }
        )
        self.pos = torch.tensor(positions, dtype=torch.float32)
        self.mask = torch.ones(19, dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import numpy as np
        import torch

        row = self.index.iloc[i]
        return {
            "x": torch.from_numpy(np.array(self.x[i], dtype=np.float32)),
            "y": int(self.y[i]),
            "ch_pos": self.pos,
            "ch_mask": self.mask,
            "subject": row["subject"],
            "session": row["session"],
            "recording": row["recording"],
            "start_s": float(row["start_s"]),
        }


def run_neurodecode(args: argparse.Namespace, x, y, timer: Timer) -> tuple[Any, int]:
    """neurodecode's SeizureTask under Lightning, set up by a fine-tuning strategy."""
    import lightning as L
    import torch
    from omegaconf import OmegaConf

    from neurodecode.data.datamodule import EEGDataModule
    from neurodecode.finetune import Strategy, apply_strategy
    from neurodecode.run import trainer_arguments
    from neurodecode.tasks.seizure import SeizureTask

    class TimeBatches(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # noqa: ARG002
            timer.batch_end()

    names, positions = channels()
    task_cfg = OmegaConf.load(ROOT / "configs" / "task" / "seizure.yaml")
    module = OmegaConf.to_container(task_cfg.module, resolve=True)
    module.pop("_target_")
    module.update(lr=LR, weight_decay=WEIGHT_DECAY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = SeizureTask(
            model=model_config(args.model),
            n_chans=19,
            n_times=x.shape[-1],
            sfreq=SFREQ,
            ch_names=names,
            ch_pos=positions,
            class_weights=[1.0, 1.0],
            **module,
        )
    strategy = "lora" if args.variant == "lora" else "full"
    targets = args.lora_targets or LORA_TARGETS[args.model]
    apply_strategy(task, Strategy(strategy=strategy, targets=targets), pretrained=True)
    trainable = sum(p.numel() for p in task.encoder.parameters() if p.requires_grad)
    eager = args.variant == "full_fp32_eager" or args.compile_mode == "none"
    if not eager:
        mode = None if args.compile_mode == "default" else args.compile_mode
        task.encoder = torch.compile(task.encoder, mode=mode)

    trainer_cfg = OmegaConf.load(ROOT / "configs" / "trainer" / "default.yaml")
    trainer_cfg.merge_with(
        {
            "accelerator": "gpu" if args.device == "cuda" else "cpu",
            "max_epochs": 1,
            "max_steps": args.warmup + args.steps,
            "limit_val_batches": 0,
            "enable_progress_bar": False,
            "enable_checkpointing": False,
            "enable_model_summary": False,
            "logger": False,
        }
    )
    if args.variant == "full_fp32_eager":
        trainer_cfg.precision = "32-true"
    arguments = trainer_arguments(OmegaConf.create({"trainer": trainer_cfg}))
    n_valid = 2 * N_OUTPUTS
    datamodule = EEGDataModule(
        Windows(x, y, n_valid),
        split="subject",
        train=["train"],
        valid=["valid"],
        test=["test"],
        batch_size=args.batch,
        num_workers=args.workers,
        seed=0,
    )
    trainer = L.Trainer(**arguments, callbacks=[TimeBatches()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(task, datamodule=datamodule)
    print(f"# {args.model} {args.variant}: precision {arguments['precision']}, "
          f"{'eager' if eager else f'compiled ({args.compile_mode})'}", file=sys.stderr)  # fmt: skip
    return task, trainable


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One variant on one model in this process; the figures as a dict."""
    import torch

    torch.manual_seed(0)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    n_train = (args.warmup + args.steps) * args.batch
    n_times = round(args.seconds * SFREQ)
    x, y = synthetic(n_train + (4 * N_OUTPUTS if args.variant != BASELINE else 0), n_times)
    timer = Timer(args.warmup, args.steps, args.device)
    rss_before = current_rss_kib()
    runner = run_braindecode if args.variant == BASELINE else run_neurodecode
    module, trainable = runner(args, x, y, timer)
    if args.device == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return {
        "throughput": args.batch * args.steps / timer.elapsed,
        "peak_memory": peak_mib,
        "step_ms": 1000 * timer.elapsed / args.steps,
        "parameters": sum(p.numel() for p in module.parameters()),
        "trainable": trainable,
        "machine": machine(args.device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--variants", nargs="*", default=list(DEFAULT_VARIANTS), choices=VARIANTS)
    parser.add_argument("--batch", type=int, default=None, help="default 8 (CPU), 128 (GPU)")
    parser.add_argument("--steps", type=int, default=None, help="default 3 (CPU), 50 (GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="default 1 (CPU), 10 (GPU)")
    parser.add_argument("--seconds", type=float, default=4.0, help="window length at 200 Hz")
    parser.add_argument("--workers", type=int, default=None, help="loader workers, both sides")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode of neurodecode's encoder; none: eager")  # fmt: skip
    parser.add_argument("--lora-targets", nargs="*", default=None)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per variant")
    parser.add_argument("--model", help=argparse.SUPPRESS)  # set in the subprocess
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    gpu = args.device != "cpu"
    args.batch = args.batch or (128 if gpu else 8)
    args.steps = args.steps or (50 if gpu else 3)
    args.warmup = args.warmup or (10 if gpu else 1)
    args.workers = (4 if gpu else 0) if args.workers is None else args.workers

    if args.model:  # subprocess: one variant of one model
        print(json.dumps(measure(args)))
        return

    n_times = round(args.seconds * SFREQ)
    shape = f"19x{n_times}"
    settings = f"batch {args.batch}, {args.warmup}+{args.steps} steps, {args.workers} workers"
    results: dict[str, dict[str, dict[str, Any]]] = {model: {} for model in args.models}
    for variant in args.variants:  # each variant on every model before the next variant
        for model in args.models:
            command = [sys.executable, __file__, "--model", model, "--variant", variant]
            for key in ("device", "batch", "steps", "warmup", "seconds", "workers", "threads"):
                command.append(f"--{key}={getattr(args, key)}")
            command.append(f"--compile-mode={args.compile_mode}")
            if args.lora_targets:
                command += ["--lora-targets", *args.lora_targets]
            began = time.perf_counter()
            try:
                done = subprocess.run(command, capture_output=True, text=True, check=False,
                                      timeout=args.timeout)  # fmt: skip
            except subprocess.TimeoutExpired:
                print(f"# {model} {variant}: over {args.timeout:.0f} s, skipped", file=sys.stderr)
                continue
            took = time.perf_counter() - began
            if done.returncode:
                print(f"# {model} {variant} failed:\n{done.stderr[-4000:]}", file=sys.stderr)
                continue
            for line in done.stderr.splitlines():
                if line.startswith("# "):
                    print(line, file=sys.stderr)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            results[model][variant] = figures
            print(f"# {model} {variant}: {took:.0f} s in all (imports, compile, steps): "
                  f"{json.dumps(figures)}", file=sys.stderr, flush=True)  # fmt: skip
    for model in args.models:
        for variant, figures in results[model].items():
            reference_name = "full" if variant == "lora" else BASELINE
            reference = results[model].get(reference_name)
            for key, unit in (("throughput", "samples/s"), ("peak_memory", "MiB")):
                ratio = figures[key] / reference[key] if reference and reference[key] else None
                line = {
                    "name": f"{model} {variant} fine-tuning {key} {shape} ({settings})",
                    "value": round(figures[key], 2),
                    "unit": unit,
                    "baseline": f"{model} {reference_name} {key} {shape}",
                    "ratio": None if ratio is None else round(ratio, 3),
                    "machine": figures["machine"],
                    "parameters": figures["parameters"],
                    "trainable": figures["trainable"],
                    "step_ms": round(figures["step_ms"], 2),
                }
                if variant == "lora" and results[model].get(BASELINE):
                    base = results[model][BASELINE][key]
                    line["ratio_vs_braindecode"] = round(figures[key] / base, 3) if base else None
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
