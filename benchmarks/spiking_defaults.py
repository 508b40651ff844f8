"""Choose the spiking conformer's defaults on validation data: a small one-at-a-time sweep.

Data: eegmmidb subject S001, the three *executed* left/right fist runs (R03, R07, R11;
15 cued trials each), so the imagined-movement runs that the real-data table tests on are
never seen here. Each of the three folds trains on two runs and scores the third (the
validation run); every setting is trained with 2 seeds, so its figure is the mean over 6
validation runs (90 trial predictions). No test data is read.

Each setting of the first stage changes one option of the former defaults (T = 4,
threshold 1, membrane starting at rest, hard reset, sigmoid surrogate, direct encoding); the
second stage combines the changes that helped. The analog dual-branch conformer, trained by
the same loop, is the reference. The model is ``size=tiny``, trained full-batch for a fixed number of AdamW steps on random 2-s crops
(8-30 Hz, average reference, the 21 sensorimotor channels, 80 Hz, each channel divided by
its training-set standard deviation) and scores whole 4-s trials.

Usage (the shared recordings in ../shared/data)::

    python benchmarks/spiking_defaults.py [--steps 100] [--out spiking_defaults.json]
    python benchmarks/spiking_defaults.py --only "T=2" "T=2, v_threshold=0.5"
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

from neurodecode.data.io import read_recording
from neurodecode.data.montage import average_reference, canonical_name
from neurodecode.data.preprocess import bandpass_notch, resample
from neurodecode.data.windows import event_windows, extract_windows
from neurodecode.jsonio import write_json
from neurodecode.registry import MODELS

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mirror/eegmmidb/S001"
RUNS = ("03", "07", "11")  # executed left vs right fist
LABELS = {"left_fist": 0, "right_fist": 1}
MOTOR_CHANNELS = ["FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz",
                  "C2", "C4", "C6", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6"]  # fmt: skip
SFREQ = 80.0
SEEDS = (0, 1)

FORMER = {"time_steps": 4, "v_threshold": 1.0, "v_init": 0.0, "reset": "hard",
           "surrogate": "sigmoid", "alpha": 4.0, "encoding": "direct"}  # fmt: skip
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "analog (reference)": ("dual_branch_conformer", {}),
    "former defaults": ("spiking_dual_branch_conformer", FORMER),
    "T=1": ("spiking_dual_branch_conformer", FORMER | {"time_steps": 1}),
    "T=2": ("spiking_dual_branch_conformer", FORMER | {"time_steps": 2}),
    "v_threshold=0.5": ("spiking_dual_branch_conformer", FORMER | {"v_threshold": 0.5}),
    "v_init=0.5": ("spiking_dual_branch_conformer", FORMER | {"v_init": 0.5}),
    "reset=soft": ("spiking_dual_branch_conformer", FORMER | {"reset": "soft"}),
    "surrogate=arctan, alpha=2": (
        "spiking_dual_branch_conformer", FORMER | {"surrogate": "arctan", "alpha": 2.0}
    ),
    "encoding=delta": ("spiking_dual_branch_conformer", FORMER | {"encoding": "delta"}),
    # second stage: the single changes that helped, together
    "v_threshold=0.5, v_init=0.5": (
        "spiking_dual_branch_conformer", FORMER | {"v_threshold": 0.5, "v_init": 0.5}
    ),
    "T=2, v_threshold=0.5": (
        "spiking_dual_branch_conformer", FORMER | {"time_steps": 2, "v_threshold": 0.5}
    ),
    "T=2, v_threshold=0.5, v_init=0.5": (
        "spiking_dual_branch_conformer",
        FORMER | {"time_steps": 2, "v_threshold": 0.5, "v_init": 0.5},
    ),
}  # fmt: skip
CHOSEN = "T=2, v_threshold=0.5"
"""The setting configs/model/spiking.yaml holds (tests/models/test_spiking.py checks it)."""


def run_trials(run: str) -> tuple[np.ndarray, np.ndarray]:
    """Cue-locked 0-4 s trials of one run: 8-30 Hz, average reference, motor channels."""
    recording = read_recording(ROOT / f"S001R{run}.edf")
    recording = average_reference(resample(bandpass_notch(recording, 8.0, 30.0, []), SFREQ))
    names = [canonical_name(name) for name in recording.ch_names]
    rows = [names.index(name) for name in MOTOR_CHANNELS]
    windows, _ = event_windows(recording.annotations, SFREQ, recording.n_times, LABELS, 0.0, 4.0)
    x = extract_windows(recording.signal[rows], windows["start_sample"].to_numpy(), int(4 * SFREQ))
    return x, windows["label"].to_numpy()


def validation_accuracy(model_name: str, options: Mapping[str, Any], train: list, valid: tuple,
                        seed: int, steps: int) -> float:  # fmt: skip
    """Train a fresh tiny model on ``train`` trials; accuracy on the ``valid`` trials."""
    x_train = np.concatenate([x for x, _ in train])
    y_train = torch.as_tensor(np.concatenate([y for _, y in train]))
    scale = x_train.std(axis=(0, 2), keepdims=True)  # per channel, training trials only
    x_train = torch.as_tensor(x_train / scale, dtype=torch.float32)
    crop = int(2 * SFREQ)
    torch.manual_seed(seed)
    model = MODELS.build(model_name, n_chans=x_train.shape[1], n_outputs=2, n_times=crop,
                         sfreq=SFREQ, size="tiny", dropout=0.5, **options)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):  # full-batch steps, one random crop each
        start = int(torch.randint(0, x_train.shape[-1] - crop + 1, (1,), generator=generator))
        loss = F.cross_entropy(model(x_train[..., start : start + crop]), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x_valid, y_valid = valid
    with torch.no_grad():
        predicted = model(torch.as_tensor(x_valid / scale, dtype=torch.float32)).argmax(dim=1)
    return float((predicted.numpy() == y_valid).mean())


def sweep(labels: list[str], steps: int) -> list[dict[str, Any]]:
    """The settings named ``labels``, every fold and seed: mean and sd of the validation
    accuracies."""
    trials = {run: run_trials(run) for run in RUNS}
    rows = []
    for label in labels:
        model_name, options = SETTINGS[label]
        started = time.perf_counter()
        scores = [
            validation_accuracy(
                model_name,
                options,
                [trials[r] for r in RUNS if r != held_out],
                trials[held_out],
                seed,
                steps,
            )  # fmt: skip
            for held_out in RUNS
            for seed in SEEDS
        ]
        rows.append({"setting": label, "model": model_name, "options": dict(options),
                     "accuracies": scores, "mean": statistics.mean(scores),
                     "sd": statistics.stdev(scores), "seconds": time.perf_counter() - started})  # fmt: skip
        print(f"| {label} | {rows[-1]['mean']:.3f} ± {rows[-1]['sd']:.3f} | "
              f"{rows[-1]['seconds']:.0f} s |", flush=True)  # fmt: skip
    return rows


def main() -> None:
    """Run the sweep, print a Markdown table, optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="full-batch training steps")
    parser.add_argument("--out", type=Path, help="JSON file for every score")
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), default=list(SETTINGS),
                        metavar="SETTING", help="run these settings only (default: all)")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny tensors: threads only add contention
    print(cpu_name())
    print("| setting | validation accuracy (mean ± sd, 3 folds x 2 seeds) | time |")
    print("| --- | --- | --- |")
    rows = sweep(args.only, args.steps)
    if args.out:
        write_json(args.out, {"machine": cpu_name(), "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()
