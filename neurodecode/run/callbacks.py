"""Callbacks of neurodecode's own: those ``configs/callbacks/*.yaml`` can name (epoch
seeding; model selection and early stopping that wait ``min_epochs`` epochs), and the
progress bar the run layer adds (:func:`progress_bar`)."""

from __future__ import annotations

import logging
import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    ProgressBar,
    RichProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.utilities.imports import _RICH_AVAILABLE

logger = logging.getLogger(__name__)


class EpochSeeding(Callback):
    """Make each epoch's randomness a function of ``(seed, epoch)`` only.

    When an epoch starts, torch, NumPy and Python are reseeded with ``seed + epoch``
    (dropout and other draws), and so is the generator that orders (or, with balanced
    sampling, draws) the training windows; after a restart, the data module's ``seed`` is
    set for the first resumed epoch. An epoch after ``resume=true`` therefore draws exactly
    what it would have drawn in an uninterrupted run, so both end with the same metrics.

    Parameters
    ----------
    seed : int
        The run's seed (``cfg.seed``).
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.first_epoch = True

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # The first epoch after a restart is drawn by a loader Lightning builds before any
        # epoch hook runs: seed the data module for that epoch already.
        datamodule = trainer.datamodule
        if datamodule is not None and hasattr(datamodule, "seed"):
            datamodule.seed = self.seed + int(checkpoint["epoch"]) + 1

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.first_epoch = True

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch_seed = self.seed + trainer.current_epoch
        torch.manual_seed(epoch_seed)
        np.random.seed(epoch_seed % 2**32)  # noqa: NPY002 (the global RNG others draw from)
        random.seed(epoch_seed)
        if self.first_epoch:  # its loader was just built, seeded for this epoch
            self.first_epoch = False
            return
        loader = trainer.train_dataloader
        for owner in (loader, getattr(loader, "sampler", None)):
            generator = getattr(owner, "generator", None)
            if isinstance(generator, torch.Generator):
                generator.manual_seed(epoch_seed)


def first_selectable_epoch(trainer: L.Trainer, min_epochs: int) -> int:
    """The first epoch whose validation score may select the model or stop training:
    ``min_epochs``, but never past the last epoch of ``trainer.max_epochs``."""
    max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
    return min_epochs if max_epochs is None else max(0, min(min_epochs, max_epochs - 1))


def _log_warmup(trainer: L.Trainer, min_epochs: int, what: str) -> None:
    first = first_selectable_epoch(trainer, min_epochs)
    if first > 0:
        logger.info(
            "%s considers validation from epoch %d on (early_stopping.min_epochs=%d): on a "
            "small validation set an untrained model's score can look best",
            what,
            first,
            min_epochs,
        )


class SelectAfterWarmup(ModelCheckpoint):
    """Lightning's :class:`~lightning.pytorch.callbacks.ModelCheckpoint` whose best
    checkpoint is chosen among epochs ``min_epochs`` and later only.

    On a validation set of a few trials, the near-uniform predictions of epoch 0 often have
    the lowest loss; selected, they predict one class for every test trial. Warm-up epochs
    are not candidates, so (as in Lightning, which writes ``last.ckpt`` after a top-k
    save) no checkpoint is written before the first selectable epoch: a run killed during
    its warm-up starts again. (Writing ``last.ckpt`` during the warm-up made a resumed run
    end with slightly different test probabilities than an uninterrupted one, in
    tests/test_train.py; the cause is not found.)

    Parameters
    ----------
    min_epochs : int
        Validation scores of earlier epochs are not candidates (clamped to the last epoch of
        ``trainer.max_epochs``, so a short run still selects).
    **kwargs
        Arguments of ModelCheckpoint.
    """

    def __init__(self, *args: Any, min_epochs: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.min_epochs = int(min_epochs)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _log_warmup(trainer, self.min_epochs, "model selection")

    def _warming_up(self, trainer: L.Trainer) -> bool:
        return trainer.current_epoch < first_selectable_epoch(trainer, self.min_epochs)

    def check_monitor_top_k(self, trainer: L.Trainer, current: Any = None) -> bool:
        return not self._warming_up(trainer) and super().check_monitor_top_k(trainer, current)


class StopAfterWarmup(EarlyStopping):
    """Lightning's :class:`~lightning.pytorch.callbacks.EarlyStopping` that neither counts
    nor stops before epoch ``min_epochs`` (as :class:`SelectAfterWarmup`): patience starts
    from the first selectable epoch.

    Parameters
    ----------
    min_epochs : int
        Epochs before which validation is not looked at.
    **kwargs
        Arguments of EarlyStopping.
    """

    def __init__(self, *args: Any, min_epochs: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.min_epochs = int(min_epochs)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _log_warmup(trainer, self.min_epochs, "early stopping")

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        if trainer.current_epoch < first_selectable_epoch(trainer, self.min_epochs):
            return
        super()._run_early_stopping_check(trainer)


class _NoVersionField:
    """A progress bar without Lightning's ``v_num`` field.

    ``v_num`` shows the last four characters of the logger's version, which for the run's
    log folders (``csv``, ``tensorboard``) is the meaningless ``oard``.
    """

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class RichBar(_NoVersionField, RichProgressBar):
    """Lightning's rich progress bar, without ``v_num``."""


class TQDMBar(_NoVersionField, TQDMProgressBar):
    """Lightning's tqdm progress bar, without ``v_num``."""


def progress_bar() -> ProgressBar:
    """The progress bar Lightning would choose (rich where installed), without ``v_num``."""
    return RichBar() if _RICH_AVAILABLE else TQDMBar()
