"""Callbacks of neurodecode's own: those ``configs/callbacks/*.yaml`` can name, and the
progress bar the run layer adds (:func:`progress_bar`)."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ProgressBar, RichProgressBar, TQDMProgressBar
from lightning.pytorch.utilities.imports import _RICH_AVAILABLE


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
