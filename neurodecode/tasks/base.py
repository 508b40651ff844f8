"""What every fine-tuning task shares: an encoder built through the registry, AdamW with a
linear warm-up and cosine decay, and the conversion of batch dicts into model inputs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from neurodecode.registry import instantiate


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
        ``{"_target_": <registered model name>, **architecture}``.
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
        dict(model),
        n_chans=n_chans,
        n_outputs=n_outputs,
        n_times=n_times,
        sfreq=sfreq,
        chs_info=chs_info,
    )


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
    # AdamW parameter groups (e.g. layer-wise lr decay set by neurodecode.finetune);
    # None: every trainable parameter at ``lr``.
    param_groups: list[dict[str, Any]] | None = None

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
