"""Supervised classification of trials or windows (motor imagery, Bonn segments, ...)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from neurodecode import plots
from neurodecode.data.datamodule import EEGDataModule
from neurodecode.errors import ConfigError
from neurodecode.evaluation.classification import classification_metrics, per_recording_metrics
from neurodecode.registry import TASKS
from neurodecode.tasks.base import DecodingTask, RunData, build_encoder
from neurodecode.tasks.datasets import cache_run_data, prepare_data

_IDENTIFIERS = ("subject", "session", "recording", "start_s")
_LOGGED = ("accuracy", "balanced_accuracy", "kappa", "roc_auc", "accuracy_lower_bound", "p_value")


def class_weights(labels: np.ndarray, n_classes: int) -> list[float]:
    """Inverse-frequency weights ``n / (n_classes * n_c)`` (scikit-learn's "balanced")."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    if (counts == 0).any():
        missing = np.flatnonzero(counts == 0).tolist()
        raise ConfigError(f"class(es) {missing} have no training windows")
    return (counts.sum() / (n_classes * counts)).tolist()


def labelled_classes(
    cfg: DictConfig, classes: Sequence[str], train_labels: np.ndarray
) -> dict[str, Any]:
    """The class arguments of a classifier: ``n_outputs``, ``class_names`` and the
    ``class_weights`` that ``cfg.task.class_weights`` asks for (``balanced``: from
    ``train_labels``)."""
    n_classes = len(classes)
    if n_classes < 2 or np.unique(train_labels).size < 2:
        raise ConfigError(
            f"the data hold a single class ({list(classes)}); classification needs two or more",
            hint="check preprocess.windows.label_map against the dataset's event names",
        )
    weights = cfg.task.class_weights
    if weights == "balanced":
        weights = class_weights(train_labels, n_classes)
    elif weights is not None:
        weights = list(weights)
    return {"n_outputs": n_classes, "class_weights": weights, "class_names": list(classes)}


@TASKS.register("classification")
class ClassificationTask(DecodingTask):
    """Cross-entropy classifier on top of a registered encoder.

    Parameters
    ----------
    model : mapping
        Encoder config, ``{"_target_": <registered model>, **architecture}``.
    n_chans, n_outputs, n_times, sfreq : int, int, int, float
        Signal contract of the data; ``n_outputs`` is the number of classes.
    ch_names, ch_pos : optional
        Channel names and ``(n_chans, 3)`` positions in metres of the data.
    class_names : sequence of str, optional
        Names of the classes, for reports.
    class_weights : sequence of float, optional
        Cross-entropy weight of each class (e.g. inverse frequencies for imbalanced data).
    label_smoothing : float
        Cross-entropy label smoothing.
    **optim
        ``lr``, ``weight_decay``, ``warmup_fraction``, ``min_lr_ratio`` of
        :class:`~neurodecode.tasks.base.DecodingTask`.

    Notes
    -----
    Validation and test metrics are computed over the whole epoch (accuracy, balanced
    accuracy, Cohen's kappa, ROC-AUC for two classes, binomial test against chance) and
    logged as ``val/<metric>`` / ``test/<metric>``. After testing, :attr:`test_metrics` holds
    the full dict and :attr:`test_predictions` a DataFrame with one row per example.
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float,
        ch_names: Sequence[str] | None = None,
        ch_pos: Sequence[Sequence[float]] | None = None,
        class_names: Sequence[str] | None = None,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        **optim: float,
    ) -> None:
        super().__init__(**optim)
        if n_outputs < 2:
            raise ValueError(f"classification needs at least two classes, got {n_outputs}")
        if class_weights is not None and len(class_weights) != n_outputs:
            raise ValueError(
                f"class_weights has {len(class_weights)} entries for {n_outputs} classes"
            )
        self.save_hyperparameters()
        self.n_outputs = n_outputs
        self.class_names = list(class_names) if class_names else [str(i) for i in range(n_outputs)]
        self.label_smoothing = label_smoothing
        self.encoder = build_encoder(
            model,
            n_chans=n_chans,
            n_outputs=n_outputs,
            n_times=n_times,
            sfreq=sfreq,
            ch_names=ch_names,
            ch_pos=ch_pos,
        )
        weights = torch.as_tensor(class_weights or [1.0] * n_outputs, dtype=torch.float32)
        self.register_buffer("class_weights", weights)
        self._outputs: dict[str, list[dict[str, Any]]] = {"val": [], "test": []}
        self.test_metrics: dict[str, Any] = {}
        self.test_predictions: pd.DataFrame | None = None

    @classmethod
    def prepare(cls, cfg: DictConfig, run_dir: Path) -> RunData:
        """The window cache of ``cfg.data``, every window labelled, split as
        ``cfg.data.datamodule`` says."""
        cache = prepare_data(cfg, run_dir)
        if (cache.labels < 0).any():
            raise ConfigError(
                f"{int((cache.labels < 0).sum())} windows have no label",
                path=cache.path,
                hint="set preprocess.windows.background or a label_map covering every window",
            )
        loaders = OmegaConf.to_container(cfg.data.datamodule, resolve=True)
        datamodule = EEGDataModule(cache, seed=cfg.seed, **loaders)
        classes = labelled_classes(cfg, cache.classes, cache.labels[datamodule.split.train])
        return cache_run_data(cfg, cache, datamodule, **classes)

    def artifacts(self, run_dir: Path, data: RunData) -> dict[str, Path | list[Path]]:
        """The confusion matrix of the test part, ``plots/confusion_matrix.png``."""
        if not self.test_metrics:
            return {}
        matrix = (self.test_metrics.get("window") or self.test_metrics)["confusion_matrix"]
        path = run_dir / "plots" / "confusion_matrix.png"
        return {"plots": [plots.confusion_matrix(matrix, self.class_names, path)]}

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Class logits ``(batch, n_outputs)``."""
        return self.encode(batch)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits, y.long(), weight=self.class_weights, label_smoothing=self.label_smoothing
        )

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self(batch), batch["y"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["y"]))
        return loss

    def _evaluation_step(self, stage: str, batch: Mapping[str, Any]) -> None:
        logits = self(batch)
        loss = self._loss(logits, batch["y"])
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(batch["y"]))
        record = {
            "y": batch["y"].detach().cpu().numpy(),
            "probabilities": logits.detach().float().softmax(dim=1).cpu().numpy(),
        }
        for key in _IDENTIFIERS:
            if key in batch:
                value = batch[key]
                record[key] = value.cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
        self._outputs[stage].append(record)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluation_step("val", batch)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluation_step("test", batch)

    def _collect(self, stage: str) -> pd.DataFrame:
        records, self._outputs[stage] = self._outputs[stage], []
        if not records:
            return pd.DataFrame()
        columns = {k: np.concatenate([r[k] for r in records]) for k in records[0]}
        probabilities = columns.pop("probabilities")
        frame = pd.DataFrame(columns)
        for i, name in enumerate(self.class_names):
            frame[f"p_{name}"] = probabilities[:, i]
        return frame

    def probabilities_of(self, frame: pd.DataFrame) -> np.ndarray:
        """The ``(n, n_outputs)`` probability columns of a predictions DataFrame."""
        return frame[[f"p_{name}" for name in self.class_names]].to_numpy()

    def _epoch_metrics(self, stage: str) -> tuple[pd.DataFrame, dict[str, Any]]:
        frame = self._collect(stage)
        if frame.empty:
            return frame, {}
        metrics = classification_metrics(
            frame["y"].to_numpy(), self.probabilities_of(frame), n_classes=self.n_outputs
        )
        loggable = {
            f"{stage}/{k}": float(v)
            for k, v in metrics.items()
            if k in _LOGGED and not math.isnan(float(v))
        }
        self.log_dict(loggable)
        return frame, metrics

    def on_validation_epoch_end(self) -> None:
        self._epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self.test_predictions, self.test_metrics = self._epoch_metrics("test")
        frame = self.test_predictions
        if frame is not None and "recording" in frame:
            per_recording = per_recording_metrics(
                frame["y"].to_numpy(), self.probabilities_of(frame), frame["recording"].to_numpy(),
                n_classes=self.n_outputs,
            )  # fmt: skip
            if per_recording is not None:
                self.test_metrics["per_recording"] = per_recording
