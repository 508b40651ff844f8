"""What every task shares: an encoder built through the registry, AdamW with a linear
warm-up and cosine decay, the conversion of batch dicts into model inputs, and the hooks
through which the run layer (:mod:`neurodecode.run`) prepares a task's data, builds the
task and collects its outputs without asking for the task's type.

The hooks, in the order a run calls them:

1. :meth:`DecodingTask.prepare` (class method): the data of ``cfg.data`` as this task needs
   them, returned as a :class:`RunData`;
2. :meth:`DecodingTask.from_data` (class method): the task sized by those data;
3. ``fit``, or for an encoder fitted in closed form (:attr:`DecodingTask.closed_form`, the
   classical models of :mod:`neurodecode.models.classical`)
   :meth:`DecodingTask.fit_closed_form` on the training windows;
4. after that (and ``test`` where the task defines ``test_step``):
   :meth:`DecodingTask.run_metrics` and :meth:`DecodingTask.artifacts`.

``DecodingTask.distributed`` says whether the task may train in several processes and
``DecodingTask.export_description``, when set, asks the run layer to export the trained
encoder with that model-card description.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from neurodecode.models.adapters import model_arguments
from neurodecode.registry import instantiate

logger = logging.getLogger(__name__)


@dataclass
class RunData:
    """The data of one run, as a task's :meth:`DecodingTask.prepare` made them.

    Attributes
    ----------
    datamodule : lightning.LightningDataModule
        The batches for ``fit`` and ``test``.
    arguments : dict
        Task constructor arguments the data decide (signal contract ``n_chans``,
        ``n_times``, ``sfreq``, ``ch_names``, ``ch_pos``, and e.g. classes or image
        embeddings).
    record : dict
        The ``data`` section of ``results.json`` (the run layer adds the split summary).
    data_hash : str
        Identifies the data (the cache key, or the keys of a mixture's caches).
    provenance : dict
        ``preprocessing``, ``dataset`` and ``datasets`` as an exported model records them.
    source : object, optional
        The window cache (or mixture) the task's own hooks read again.
    qc_report : pathlib.Path, optional
        The data QC report, copied into the run folder.
    """

    datamodule: Any
    arguments: dict[str, Any]
    record: dict[str, Any]
    data_hash: str
    provenance: dict[str, Any] = field(default_factory=dict)
    source: Any = None
    qc_report: Path | None = None


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then cosine decay to ``min_ratio``.

    Parameters
    ----------
    step : int
        Optimiser steps taken so far.
    warmup_steps, total_steps : int
        Length of the warm-up and of the whole schedule, in optimiser steps.
    min_ratio : float
        Multiplier reached at ``total_steps`` (and kept afterwards).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_encoder(
    model: Mapping[str, Any],
    *,
    n_chans: int,
    n_outputs: int,
    n_times: int,
    sfreq: float,
    ch_names: Sequence[str] | None = None,
    ch_pos: Sequence[Sequence[float]] | None = None,
) -> nn.Module:
    """Instantiate a registered model with the signal contract of the data.

    Parameters
    ----------
    model : mapping
        ``{"_target_": <registered model name>, **architecture}`` (a ``peft_targets`` key,
        read by fine-tuning, is not an argument and is left out).
    n_chans, n_outputs, n_times, sfreq : int, int, int, float
        The signal contract (braindecode's argument names).
    ch_names : sequence of str, optional
        Channel names, passed on as MNE/braindecode-style ``chs_info``.
    ch_pos : sequence of (x, y, z), optional
        Channel positions in metres (NaN where unknown), stored as ``chs_info[i]["loc"]``.
    """
    chs_info = None
    if ch_names:
        positions = ch_pos if ch_pos is not None else [[math.nan] * 3] * len(ch_names)
        if len(positions) != len(ch_names):
            raise ValueError(f"{len(ch_names)} channel names but {len(positions)} positions")
        chs_info = [
            {"ch_name": name, "loc": [float(v) for v in xyz] + [0.0] * 9}
            for name, xyz in zip(ch_names, positions, strict=True)
        ]
    return instantiate(
        model_arguments(model),
        n_chans=n_chans,
        n_outputs=n_outputs,
        n_times=n_times,
        sfreq=sfreq,
        chs_info=chs_info,
    )


def training_arrays(datamodule: L.LightningDataModule) -> tuple[np.ndarray, np.ndarray]:
    """Every window ``x`` and label ``y`` of ``datamodule``'s training loader, as arrays (a
    ``balanced`` loader gives its class-balanced draw)."""
    datamodule.setup("fit")
    batches = list(datamodule.train_dataloader())
    x = torch.cat([batch["x"] for batch in batches]).numpy()
    y = torch.cat([torch.as_tensor(batch["y"]) for batch in batches]).numpy()
    return x, y


def final_metrics(trainer: L.Trainer) -> dict[str, float]:
    """The last logged scalar ``train/*`` and ``val/*`` metrics of ``trainer``."""
    return {
        key: float(value)
        for key, value in trainer.callback_metrics.items()
        if key.startswith(("train/", "val/")) and value.numel() == 1
    }


class DecodingTask(L.LightningModule):
    """Base class: optimiser, schedule and the call of the encoder on a batch dict.

    Parameters
    ----------
    lr : float
        Peak learning rate of AdamW.
    weight_decay : float
        AdamW weight decay.
    warmup_fraction : float
        Share of all optimiser steps spent warming up linearly.
    min_lr_ratio : float
        Final learning rate as a fraction of ``lr`` (cosine decay).
    """

    encoder: nn.Module
    # May train in several processes (DDP, FSDP); one process then writes the outputs.
    distributed: ClassVar[bool] = False
    # Set: the run layer exports the trained encoder with this model-card description.
    export_description: ClassVar[str | None] = None
    # AdamW parameter groups (e.g. layer-wise lr decay set by neurodecode.finetune);
    # None: every trainable parameter at ``lr``.
    param_groups: list[dict[str, Any]] | None = None
    # Set by the fine-tuning strategy (neurodecode.finetune): callbacks it brings to the
    # trainer, and a closed-form fit of the head that replaces training (ridge).
    callbacks: Sequence[L.Callback] = ()
    head_fit: Callable[[L.LightningDataModule], Any] | None = None

    def __init__(
        self,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        warmup_fraction: float = 0.1,
        min_lr_ratio: float = 0.01,
    ) -> None:
        super().__init__()
        if not 0.0 <= warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must lie in [0, 1), got {warmup_fraction}")
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.min_lr_ratio = min_lr_ratio

    @classmethod
    def prepare(cls, cfg: DictConfig, run_dir: Path) -> RunData:
        """The data of ``cfg.data`` as this task trains on them (see :class:`RunData`)."""
        raise NotImplementedError(f"{cls.__name__} does not say how its data are prepared")

    @classmethod
    def from_data(cls, cfg: DictConfig, data: RunData, model: Mapping[str, Any]) -> Self:
        """The task of ``cfg.task.module`` around the encoder ``model``, sized by ``data``."""
        module = OmegaConf.to_container(cfg.task.module, resolve=True)
        module.pop("_target_")
        return cls(**module, **data.arguments, model=dict(model))

    @property
    def closed_form(self) -> bool:
        """Whether the encoder is fitted once on the training windows (a classical model)
        rather than trained by gradient descent, or only its head is (:attr:`head_fit`)."""
        return self.head_fit is not None or bool(getattr(self.encoder, "closed_form", False))

    def fit_closed_form(self, datamodule: L.LightningDataModule) -> None:
        """Fit a closed-form encoder on every window of the training loader, once.

        Validation selects nothing (there is no epoch to choose); ``balanced`` loaders
        give their class-balanced draw of the training windows. With :attr:`head_fit`,
        that fits the head instead.
        """
        if self.head_fit is not None:
            self.head_fit(datamodule)
            return
        self.encoder.fit(*training_arrays(datamodule))

    def initialise_from_data(self, datamodule: L.LightningDataModule) -> None:
        """Let an encoder that starts from the training data (``initialise_from_data``,
        e.g. :class:`~neurodecode.models.log_variance.LogVarianceNet`'s CSP + LDA start)
        see every window of the training loader before gradient training; others are
        left as built."""
        initialise = getattr(self.encoder, "initialise_from_data", None)
        if initialise is not None:
            initialise(*training_arrays(datamodule))
            logger.info("%s initialised from the training windows", type(self.encoder).__name__)

    def run_metrics(self, trainer: L.Trainer, monitor: str) -> dict[str, Any]:
        """The ``metrics`` section of ``results.json`` after ``fit`` and ``test``."""
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_score if checkpoint is not None else None
        return {
            "test": getattr(self, "test_metrics", None),
            "best_validation": {monitor: None if best is None else best.item()},
            "epochs_trained": trainer.current_epoch,
        }

    def artifacts(self, run_dir: Path, data: RunData) -> dict[str, Path | list[Path]]:
        """Plots and other files the task writes into ``run_dir`` after testing."""
        return {}

    def encode(self, batch: Mapping[str, Any], return_features: bool = False) -> torch.Tensor:
        """Run the encoder on ``batch["x"]`` with channel positions and mask when present."""
        return self.encoder(
            batch["x"],
            ch_pos=batch.get("ch_pos"),
            ch_mask=batch.get("ch_mask"),
            return_features=return_features,
        )

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip as ``trainer.gradient_clip_*`` say; under FSDP (``trainer=fsdp``) by norm
        through the sharded module, which Lightning's FSDP precision plugin refuses to do
        (Lightning issue #19235: the norm needs the FSDP module, not the optimiser)."""
        model = self.trainer.model
        clip_by_norm = gradient_clip_algorithm is None or gradient_clip_algorithm == "norm"
        if torch.distributed.is_available() and gradient_clip_val and clip_by_norm:
            from torch.distributed.fsdp import FullyShardedDataParallel

            if isinstance(model, FullyShardedDataParallel):
                model.clip_grad_norm_(gradient_clip_val)
                return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_callbacks(self) -> list[L.Callback]:
        """The fine-tuning strategy's callbacks (:attr:`callbacks`), added to the trainer's."""
        return list(self.callbacks)

    def configure_optimizers(self) -> dict[str, Any]:
        parameters = self.param_groups or [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=self.lr, weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, round(self.warmup_fraction * total)) if self.warmup_fraction else 0
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, total, self.min_lr_ratio)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
