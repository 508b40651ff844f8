"""What a run leaves behind: ``results.json`` (metrics, data, config and its hash, seed,
versions), the task's artefacts and the data QC report, and the summary lines it logs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import shutil
import time
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from neurodecode.evaluation.comparison import mcnemar_exact
from neurodecode.evaluation.seizure import summary_lines as szcore_summary_lines
from neurodecode.jsonio import jsonable, write_json
from neurodecode.tasks.base import DecodingTask, RunData

RESULTS_NAME = "results.json"
#: Columns of a task's test predictions that identify a trial or window.
TRIAL_KEYS = ("subject", "session", "recording", "start_s")


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on."""
    out = {"python": platform.python_version()}
    for package in ("neurodecode", "torch", "lightning", "numpy", "mne", "timescoring",
                    "scikit-learn", "hydra-core"):  # fmt: skip
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of the resolved config, keys sorted."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_results(run_dir: Path, results: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``run_dir / "results.json"`` as strict JSON, atomically; return what was written.

    NaN and infinities become ``null`` (:mod:`neurodecode.jsonio`); the file is renamed
    into place, so a reader never sees half of it.
    """
    content = jsonable(results)
    write_json(run_dir / RESULTS_NAME, content)
    return content


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """The ``results.json`` of a run folder (metrics, split, config, hashes, versions)."""
    return json.loads((Path(run_dir) / RESULTS_NAME).read_text())


def _relative(path: str | Path | None, run_dir: Path) -> str | None:
    return str(Path(path).relative_to(run_dir)) if path else None


def artifacts(task: DecodingTask, data: RunData, run_dir: Path) -> dict[str, Any]:
    """The task's plots and files, and the data QC report copied into ``run_dir``; paths
    relative to ``run_dir``."""
    found: dict[str, Any] = {"plots": [], **task.artifacts(run_dir, data)}
    if data.qc_report is not None:
        found["qc_report"] = shutil.copyfile(data.qc_report, run_dir / "qc.json")
    return {
        key: [_relative(p, run_dir) for p in value] if isinstance(value, list)
        else _relative(value, run_dir)
        for key, value in found.items()
    }  # fmt: skip


def write_outputs(cfg: DictConfig, task: DecodingTask, data: RunData, trainer: L.Trainer,
                  started: float, recipe: str | None, encoder: Path | None = None,
                  baselines: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Write the artefacts and ``results.json`` of a finished run into ``cfg.paths.run_dir``
    (``encoder``: the folder the trained encoder was exported to, if it was; ``baselines``:
    the test metrics of each classical baseline fitted on the same split)."""
    run_dir = Path(cfg.paths.run_dir)
    checkpoint = trainer.checkpoint_callback
    config = OmegaConf.to_container(cfg, resolve=True)
    results = {
        "recipe": recipe,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "seed": cfg.seed,
        "metrics": task.run_metrics(trainer, cfg.task.monitor),
        "steps": trainer.global_step,
        "checkpoints": {
            "best": _relative(checkpoint and checkpoint.best_model_path, run_dir),
            "last": _relative(checkpoint and checkpoint.last_model_path, run_dir),
        },
        "data": {**data.record, "split": data.datamodule.summary()},
        "config": config,
        # where this run wrote is not part of what it ran
        "config_hash": config_hash({k: v for k, v in config.items() if k != "paths"}),
        "data_hash": data.data_hash,
        "versions": versions(),
        "artifacts": artifacts(task, data, run_dir),
    }
    if encoder is not None:
        results["encoder"] = _relative(encoder, run_dir)
    if baselines:
        results["baselines"] = dict(baselines)
    return write_results(run_dir, results)


def paired_trials(model: DecodingTask, baseline: DecodingTask) -> dict[str, Any] | None:
    """McNemar's exact test of ``model`` against ``baseline`` on their identical test trials.

    Returns None when either task keeps no per-trial test predictions (retrieval,
    pretraining). The trials are matched by their identifiers (:data:`TRIAL_KEYS`), so the
    order of the two test passes does not matter.

    Raises
    ------
    ValueError
        If the two tasks were not tested on the same trials.
    """
    frames = [getattr(task, "test_predictions", None) for task in (model, baseline)]
    if any(frame is None or frame.empty for frame in frames):
        return None
    correct = [
        _correct_by_trial(task, frame)
        for task, frame in zip((model, baseline), frames, strict=True)
    ]
    if len(correct[0]) != len(correct[1]) or not correct[0].index.equals(correct[1].index):
        raise ValueError(
            f"the model was tested on {len(correct[0])} trials and the baseline on "
            f"{len(correct[1])} different ones; a paired test needs the identical trials"
        )
    return mcnemar_exact(correct[0].to_numpy(), correct[1].to_numpy())


def _correct_by_trial(task: DecodingTask, frame: pd.DataFrame) -> pd.Series:
    """Whether each test trial was classified right (arg-max), indexed and sorted by trial."""
    keys = [key for key in TRIAL_KEYS if key in frame]
    predicted = task.probabilities_of(frame).argmax(axis=1)
    correct = pd.Series(predicted == frame["y"].to_numpy(), name="correct")
    if keys:
        correct.index = pd.MultiIndex.from_frame(frame[keys].astype(str))
    return correct.sort_index()


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """A few human-readable lines with the headline test metrics, the model's and then each
    baseline's, with its paired test against the model on the same trials; figures on
    neurodecode's simulated EEG say so on every line."""
    simulated = (results.get("data") or {}).get("dataset") == "simulated"
    suffix = " (simulated EEG)" if simulated else ""
    lines = test_lines(results["metrics"]["test"], "test" + suffix)
    for name, metrics in (results.get("baselines") or {}).items():
        label = f"baseline {name}{suffix}"
        lines += test_lines(metrics, label)
        paired = metrics.get("paired_with_model")
        if paired:
            lines.append(
                f"{label}: paired with the model on {paired['n_trials']} test trials: "
                f"only the model right {paired['model_only']}, only the baseline right "
                f"{paired['baseline_only']}, McNemar exact p {paired['p_value']:.3g}"
            )
    return lines


def test_lines(test: Mapping[str, Any] | None, label: str) -> list[str]:
    """The lines of one set of test metrics (SzCORE scores first where there are any)."""
    test = test or {}
    lines = []
    if "szcore" in test:  # each number in words, with what it rests on and its interval
        lines += [f"{label}: {line}" for line in szcore_summary_lines(test["szcore"])]
        test = test["window"]
    keys = ("accuracy", "balanced_accuracy", "kappa", "roc_auc", "top1", "top5")
    shown = [f"{k} {_fmt(test[k])}" for k in keys if k in test]
    if shown:
        lines.append(f"{label}: " + "  ".join(shown))
    whole = test.get("per_recording")
    if whole:  # windows of one recording pooled (e.g. Bonn's segments)
        lines.append(f"{label}, per recording ({whole['n']} recordings, window probabilities "
                     f"averaged): accuracy {_fmt(whole['accuracy'])}  balanced_accuracy "
                     f"{_fmt(whole['balanced_accuracy'])}")  # fmt: skip
    return lines


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"
