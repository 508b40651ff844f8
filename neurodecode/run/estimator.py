"""A neurodecode model as a scikit-learn classifier, for MOABB pipelines and other
scikit-learn tools.

:class:`NeurodecodeClassifier` trains any registered neurodecode model with the
classification task of the recipes (the registered ``classification`` task:
AdamW, warm-up and cosine decay) on arrays ``(n_trials, n_chans, n_times)`` in volts or on
MNE epochs, scaled with statistics of the training trials only, and picks the epoch of
lowest loss on a validation share of them. It is what MOABB calls a pipeline step::

    from sklearn.pipeline import make_pipeline
    from moabb.evaluations import WithinSessionEvaluation
    pipelines = {"dbc": make_pipeline(NeurodecodeClassifier(sfreq=128.0, max_epochs=30))}
    WithinSessionEvaluation(paradigm=paradigm, datasets=[dataset]).process(pipelines)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted
from torch.utils.data import DataLoader

from neurodecode.data import scaling
from neurodecode.data.datamodule import collate_windows
from neurodecode.data.montage import channel_positions
from neurodecode.errors import ConfigError
from neurodecode.registry import TASKS
from neurodecode.run.trainer import quiet_lightning


class _BestWeights(L.Callback):
    """Keep the weights of the epoch with the lowest validation loss (in memory)."""

    def __init__(self) -> None:
        self.best = (float("inf"), None)

    def on_validation_epoch_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get("val/loss")
        if loss is not None and float(loss) < self.best[0]:
            self.best = (float(loss), copy.deepcopy(task.state_dict()))


class NeurodecodeClassifier(ClassifierMixin, BaseEstimator):
    """A registered neurodecode model trained as a scikit-learn classifier.

    Parameters
    ----------
    model : str
        A registered model name (``dual_branch_conformer``, ``spiking_dual_branch_conformer``,
        ``patch_conformer``, ...).
    model_options : mapping, optional
        The model's architecture arguments (e.g. ``{"size": "tiny"}``).
    sfreq : float, optional
        Sampling rate of arrays (taken from MNE epochs when those are given).
    ch_names : sequence of str, optional
        Channel names of arrays (positions for models that use them).
    max_epochs, batch_size, lr, weight_decay : int, int, float, float
        Training settings of the classification task.
    valid_fraction : float
        Share of the training trials (stratified) held out to pick the best epoch; 0 keeps
        the last epoch.
    clip : float
        Scaled samples are clipped to ``±clip`` (as the window cache does).
    seed : int
        Seeds the split, the weights and the batches.
    """

    def __init__(
        self,
        model: str = "dual_branch_conformer",
        model_options: Mapping[str, Any] | None = None,
        sfreq: float | None = None,
        ch_names: Sequence[str] | None = None,
        max_epochs: int = 30,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        valid_fraction: float = 0.2,
        clip: float = 20.0,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.model_options = model_options
        self.sfreq = sfreq
        self.ch_names = ch_names
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.valid_fraction = valid_fraction
        self.clip = clip
        self.seed = seed

    def _signal(self, X: Any) -> tuple[np.ndarray, float, list[str]]:
        """``(n, n_chans, n_times)`` float32 volts, the rate and the channel names."""
        if hasattr(X, "get_data") and hasattr(X, "info"):  # MNE epochs
            return X.get_data().astype(np.float32), float(X.info["sfreq"]), list(X.ch_names)
        data = np.asarray(X, dtype=np.float32)
        if data.ndim != 3:
            raise ConfigError(f"expected trials as (n_trials, n_chans, n_times), got {data.shape}")
        if self.sfreq is None:
            raise ConfigError("arrays carry no sampling rate: give sfreq=")
        names = list(self.ch_names or [f"EEG{i:03d}" for i in range(data.shape[1])])
        if len(names) != data.shape[1]:
            raise ConfigError(f"{len(names)} channel names for {data.shape[1]} channels")
        return data, float(self.sfreq), names

    @property
    def center_(self) -> np.ndarray:
        """Per-channel median of the training trials, ``(n_chans, 1)``, in their units."""
        return self.scaling_.centre

    def _scaled(self, data: np.ndarray) -> np.ndarray:
        return self.scaling_.apply(data, np.ones(data.shape[1], bool))

    def _batches(self, data: np.ndarray, y: np.ndarray, shuffle: bool) -> DataLoader:
        positions = torch.as_tensor(self.ch_pos_, dtype=torch.float32)
        mask = torch.ones(data.shape[1], dtype=torch.bool)
        items = [{"x": torch.from_numpy(np.ascontiguousarray(x)), "y": int(label),
                  "ch_pos": positions, "ch_mask": mask} for x, label in zip(data, y, strict=True)]  # fmt: skip
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(items, batch_size=self.batch_size, shuffle=shuffle,
                          collate_fn=collate_windows, generator=generator)  # fmt: skip

    def fit(self, X: Any, y: Sequence[Any]) -> NeurodecodeClassifier:
        """Train on trials ``X`` (volts) with labels ``y``."""
        data, sfreq, names = self._signal(X)
        self.classes_ = unique_labels(y)
        codes = np.searchsorted(self.classes_, np.asarray(y))
        # the data module's training-split statistics (median, IQR / 1.349 per channel);
        # they are unit-free, so the trials stay in volts
        trials = [{"x": x, "ch_mask": np.ones(len(x), bool)} for x in data]
        self.scaling_ = scaling.fit_statistics(trials, range(len(trials)), "channel", self.clip)
        self.ch_pos_ = channel_positions(names)
        L.seed_everything(self.seed, workers=True, verbose=False)  # before the model
        fit, valid = np.arange(len(codes)), np.array([], dtype=int)
        if self.valid_fraction:
            fit, valid = train_test_split(fit, test_size=self.valid_fraction, stratify=codes,
                                          random_state=self.seed)  # fmt: skip
        self.task_ = TASKS.get("classification")(
            {"_target_": self.model, **dict(self.model_options or {})},
            n_chans=data.shape[1], n_outputs=len(self.classes_), n_times=data.shape[2],
            sfreq=sfreq, ch_names=names, ch_pos=self.ch_pos_.tolist(),
            class_names=[str(c) for c in self.classes_], lr=self.lr,
            weight_decay=self.weight_decay,
        )  # fmt: skip
        best = _BestWeights()
        quiet_lightning()
        trainer = L.Trainer(max_epochs=self.max_epochs, accelerator="cpu", logger=False,
                            enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=[best],
                            deterministic=True)  # fmt: skip
        scaled = self._scaled(data)
        initialise = getattr(self.task_.encoder, "initialise_from_data", None)
        if initialise is not None:  # e.g. log_variance_net's CSP + LDA start
            initialise(scaled[fit], codes[fit])
        trainer.fit(
            self.task_,
            self._batches(scaled[fit], codes[fit], shuffle=True),
            self._batches(scaled[valid], codes[valid], shuffle=False) if valid.size else None,
        )
        if best.best[1] is not None:
            self.task_.load_state_dict(best.best[1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_trials, n_classes)``, columns in ``classes_`` order."""
        check_is_fitted(self, "task_")
        data, _, _ = self._signal(X)
        loader = self._batches(self._scaled(data), np.zeros(len(data), int), shuffle=False)
        self.task_.eval()
        with torch.no_grad():
            return np.concatenate(
                [self.task_(batch).float().softmax(dim=1).numpy() for batch in loader]
            )

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each trial."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
