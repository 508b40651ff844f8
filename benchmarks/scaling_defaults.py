"""Which ``preprocess.scaling.method`` each dataset's default should be, measured on
VALIDATION data only (issue 12 item 2).

For each dataset and each scaling method (``robust_zscore`` per recording, ``fixed`` µV /
100, ``train_split`` statistics of the training windows) the recipe runs with a few seeds;
the model is selected on validation loss, as in every run, and the score is the validation
accuracy (and loss) of the selected epoch (from the run's CSV log), pooled over folds. Test data are
never read for this choice. The numbers are written next to each default in
``configs/preprocess/*.yaml``.

    PYTHONPATH=$PWD python benchmarks/scaling_defaults.py [bonn eegmmidb graz] [--seeds 0 1 2]

Needs the real recordings in ``../shared/data`` (Bonn and eegmmidb through the mirror
folder, the Graz sample through ``excerpts/biosig``); CPU, minutes per dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import pandas as pd
import torch

from neurodecode import train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
METHODS = ("robust_zscore", "fixed", "train_split")
COMMON = ["trainer.enable_progress_bar=false", "model.size=tiny", "data.datamodule.num_workers=0"]

IMAGERY_RUNS = ["001//S001R04", "001//S001R08", "001//S001R12"]
FIST_RUNS = ["001//S001R03", "001//S001R07", "001//S001R11", *IMAGERY_RUNS]
MOTOR_CHANNELS = "[FC5,FC3,FC1,FCz,FC2,FC4,FC6,C5,C3,C1,Cz,C2,C4,C6,CP5,CP3,CP1,CPz,CP2,CP4,CP6]"


def _members(name: str, recordings: list[str]) -> str:
    return f"+data.datamodule.{name}=[{','.join(repr(r) for r in recordings)}]"


def bonn_folds() -> list[list[str]]:
    """Bonn set S against the other four, 4-s windows, split by segment (the seed draws it);
    no window rejection (ictal segments exceed the amplitude limits)."""
    return [[
        "recipe=seizure", "data=bonn", "preprocess=bonn", "task=classification",
        "task.class_weights=balanced", "~preprocess.windows.label_map",
        "+preprocess.windows.label_map={S: 1, Z: 0, O: 0, N: 0, F: 0}",
        "preprocess.windows.stride_s=4.0", "preprocess.artifacts.windows.reject=false",
        "trainer.max_epochs=10", "data.datamodule.batch_size=48",
    ]]  # fmt: skip


def eegmmidb_folds() -> list[list[str]]:
    """eegmmidb S001 left/right fist: each imagery run is the validation run once (15
    trials), trained on the executed runs and one other imagery run; the third is not read."""
    folds = []
    for i, valid in enumerate(IMAGERY_RUNS):
        test = IMAGERY_RUNS[(i + 1) % len(IMAGERY_RUNS)]
        folds.append([
            "recipe=motor_imagery", "data=eegmmidb", "+data.prepare.subjects=[1]",
            "+data.prepare.runs=[3,4,7,8,11,12]", f"preprocess.channels.target={MOTOR_CHANNELS}",
            "preprocess.bandpass.l_freq=8.0", "preprocess.bandpass.h_freq=30.0",
            "preprocess.windows.tmin=0.0", "preprocess.windows.tmax=4.0",
            "data.datamodule.split=recording",
            _members("train", [r for r in FIST_RUNS if r not in (test, valid)]),
            _members("valid", [valid]), _members("test", [test]),
            "trainer.max_epochs=40", "early_stopping.patience=10", "data.datamodule.batch_size=8",
        ])  # fmt: skip
    return folds


def graz_folds() -> list[list[str]]:
    """The Graz sample (40 trials), the recipe's within-session folds (validation inside
    each fold's training part)."""
    return [[
        "recipe=motor_imagery", "data=graz_gdf", "preprocess.reference=null",
        "preprocess.bandpass.l_freq=8.0", "preprocess.bandpass.h_freq=30.0",
        f"data.datamodule.fold={k}", "trainer.max_epochs=40", "early_stopping.patience=10",
    ] for k in range(5)]  # fmt: skip


DATASETS = {"bonn": bonn_folds, "eegmmidb": eegmmidb_folds, "graz": graz_folds}


def selected_validation(run_dir: Path) -> tuple[float, float]:
    """Validation accuracy and loss of the epoch with the lowest validation loss (the one
    selected)."""
    log = pd.read_csv(next(run_dir.glob("logs/csv*/metrics.csv")))
    best = log.dropna(subset=["val/loss"]).sort_values("val/loss").iloc[0]
    return float(best["val/accuracy"]), float(best["val/loss"])


def measure(dataset: str, method: str, seed: int, root: Path) -> dict:
    """Pooled validation accuracy of one dataset, method and seed over its folds."""
    correct = total = loss = 0.0
    for k, fold in enumerate(DATASETS[dataset]()):
        run_dir = root / f"{dataset}-{method}-{seed}-{k}"
        cfg = train.compose([*fold, *COMMON, f"preprocess.scaling.method={method}", f"seed={seed}"])
        results = train.run(cfg, run_dir)
        n_valid = results["data"]["split"]["valid"]["n_windows"]
        accuracy, fold_loss = selected_validation(run_dir)
        correct += accuracy * n_valid
        loss += fold_loss * n_valid
        total += n_valid
    return {"dataset": dataset, "method": method, "seed": seed,
            "valid_accuracy": correct / total, "valid_loss": loss / total,
            "n_valid": int(total)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--out", type=Path, default=Path("scaling_defaults.jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("NEURODECODE_MIRROR", str(SHARED / "mirror"))
    os.environ.setdefault("NEURODECODE_GDF_ROOT", str(SHARED / "excerpts" / "biosig"))
    # caches kept between calls (one per dataset and method), apart from anyone else's
    os.environ.setdefault("NEURODECODE_HOME", str(Path(tempfile.gettempdir()) / "nd-scaling"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="scaling-defaults-") as folder:
        for dataset in args.datasets:
            for seed in args.seeds:
                for method in args.methods:
                    row = measure(dataset, method, seed, Path(folder))
                    rows.append(row)
                    with args.out.open("a") as file:
                        file.write(json.dumps(row) + "\n")
    table = pd.DataFrame(rows).groupby(["dataset", "method"])["valid_accuracy"]
    for (dataset, method), values in table:
        values = list(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{dataset:9s} {method:14s} validation accuracy {statistics.mean(values):.3f} "
              f"± {sd:.3f} (seeds: {', '.join(f'{v:.3f}' for v in values)})")  # fmt: skip


if __name__ == "__main__":
    main()
