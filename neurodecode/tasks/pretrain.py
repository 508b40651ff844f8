"""Masked-reconstruction pretraining across montages (task ``pretrain``) and its run.

``python -m neurodecode.train recipe=pretrain`` composes ``configs/data/mixture.yaml``
(datasets and weights), ``configs/model/patch_conformer.yaml`` and
``configs/task/pretrain.yaml``; :func:`run_pretraining` prepares every dataset's window
cache at the common rate, trains :class:`PretrainTask` on their weighted mixture and
exports the encoder (``<run>/encoder/``: ``model.safetensors`` + ``config.json`` +
``README.md``), which any recipe can start from with ``init_from=<run>``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from neurodecode.models.pretraining import MaskedAutoencoder
from neurodecode.registry import TASKS
from neurodecode.runs import (
    config_hash,
    resume_checkpoint,
    trainer_arguments,
    versions,
    write_results,
)
from neurodecode.tasks.base import DecodingTask, build_encoder

logger = logging.getLogger(__name__)


@TASKS.register("pretrain")
class PretrainTask(DecodingTask):
    """Masked reconstruction of (channel, time) patches with a montage-agnostic encoder.

    Parameters
    ----------
    model : mapping
        Encoder config, ``{"_target_": "patch_conformer", **architecture}``.
    n_chans, n_times, sfreq : int, int, float
        Signal contract recorded with the encoder: the union of the mixture's channels,
        the longest window and the common rate.
    ch_names, ch_pos : optional
        Channel names and positions (metres, NaN unknown) of that union.
    mask_ratio, masking, block_len, decoder_dim, decoder_depth, decoder_heads, loss,
    target_norm, spectral_weight
        See :class:`~neurodecode.models.pretraining.MaskedAutoencoder`.
    **optim
        ``lr``, ``weight_decay``, ``warmup_fraction``, ``min_lr_ratio``.

    Notes
    -----
    Batches are dicts as :func:`neurodecode.data.mixture.collate_mixture` writes them
    (``n_times`` marks padding in time; absent with fixed-length windows). Validation uses
    a fixed mask per batch (seeded by the batch index), so ``val/loss`` is comparable
    between epochs.
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        n_chans: int,
        n_times: int,
        sfreq: float,
        ch_names: Sequence[str] | None = None,
        ch_pos: Sequence[Sequence[float]] | None = None,
        mask_ratio: float = 0.5,
        masking: str = "random",
        block_len: int = 4,
        decoder_dim: int = 32,
        decoder_depth: int = 1,
        decoder_heads: int = 2,
        loss: str = "mse",
        target_norm: str = "none",
        spectral_weight: float = 1.0,
        **optim: float,
    ) -> None:
        super().__init__(**optim)
        self.save_hyperparameters()
        encoder = build_encoder(
            model,
            n_chans=n_chans,
            n_outputs=1,
            n_times=n_times,
            sfreq=sfreq,
            ch_names=ch_names,
            ch_pos=ch_pos,
        )
        self.model = MaskedAutoencoder(
            encoder,
            mask_ratio=mask_ratio,
            masking=masking,
            block_len=block_len,
            decoder_dim=decoder_dim,
            decoder_depth=decoder_depth,
            decoder_heads=decoder_heads,
            loss=loss,
            target_norm=target_norm,
            spectral_weight=spectral_weight,
        )

    @property
    def encoder(self) -> torch.nn.Module:
        """The encoder being pretrained (what is exported)."""
        return self.model.encoder

    def forward(
        self, batch: Mapping[str, Any], generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Losses and reconstructions of one batch (see ``MaskedAutoencoder.forward``)."""
        return self.model(
            batch["x"],
            batch.get("ch_pos"),
            batch.get("ch_mask"),
            batch.get("n_times"),
            generator=generator,
        )

    def _log(self, stage: str, out: Mapping[str, torch.Tensor], batch_size: int) -> None:
        self.log(f"{stage}/loss", out["loss"], prog_bar=True, batch_size=batch_size)
        self.log(f"{stage}/signal_loss", out["signal_loss"], batch_size=batch_size)
        if self.model.spectrum_head is not None:
            self.log(f"{stage}/spectral_loss", out["spectral_loss"], batch_size=batch_size)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        out = self(batch)
        self._log("train", out, len(batch["x"]))
        return out["loss"]

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        out = self(batch, generator=torch.Generator().manual_seed(batch_idx))
        self._log("val", out, len(batch["x"]))


def run_pretraining(cfg: Any, run_dir: Path) -> dict[str, Any]:
    """Pretrain on the mixture of ``cfg.data``, export the encoder, write ``results.json``.

    Parameters
    ----------
    cfg : DictConfig
        The composed config of ``recipe=pretrain`` (``data`` is a mixture config).
    run_dir : pathlib.Path
        The run folder; the encoder is exported to ``run_dir / "encoder"``.
    """

    import lightning as L
    from omegaconf import OmegaConf

    from neurodecode.data.mixture import MixtureDataModule, prepare_mixture
    from neurodecode.hub import export_model

    started = time.time()
    checkpoint = resume_checkpoint(cfg, run_dir)
    if checkpoint is not None:
        run_dir = checkpoint.parent.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    data = OmegaConf.to_container(cfg.data, resolve=True)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    sfreq = float(data["sfreq"])
    patch_len = max(1, round(float(model.get("patch_s", 0.5)) * sfreq))
    mixture = prepare_mixture(
        data["datasets"],
        sfreq=sfreq,
        window_s=float(data["window_s"]),
        stride_s=data.get("stride_s"),
        min_times=patch_len,
        require_positions=bool(data.get("require_positions", False)),
    )
    datamodule = MixtureDataModule(mixture, seed=cfg.seed, **data["datamodule"])
    ch_names, ch_pos = mixture.channels()
    n_times = max(int(d.n_times) for d in mixture.datasets)
    module = OmegaConf.to_container(cfg.task.module, resolve=True)
    task = TASKS.get(module.pop("_target_"))(
        **module,
        model=model,
        n_chans=len(ch_names),
        n_times=n_times,
        sfreq=sfreq,
        ch_names=ch_names,
        ch_pos=ch_pos.tolist(),
    )
    trainer = pretraining_trainer(cfg, run_dir)
    trainer.fit(task, datamodule=datamodule, ckpt_path=checkpoint)
    encoder = trained_encoder(trainer, task)
    if not trainer.is_global_zero:  # one process writes the run's outputs
        return {}

    metrics = {
        key: float(value)
        for key, value in trainer.callback_metrics.items()
        if key.startswith(("train/", "val/")) and value.numel() == 1
    }
    export_dir = export_model(
        encoder,
        run_dir / "encoder",
        ch_names=ch_names,
        ch_pos=ch_pos,
        preprocessing={name: d.meta.get("config") for name, d in _caches(mixture)},
        task="pretrain",
        dataset="+".join(mixture.names),
        metrics=metrics,
        card={
            "description": "Encoder pretrained by masked reconstruction of (channel, time) "
            "patches with neurodecode; start a task from it with init_from=<this folder>.",
            "datasets": list(mixture.names),
        },
    )
    config = OmegaConf.to_container(cfg, resolve=True)
    results = write_results(
        run_dir,
        {
            "recipe": "pretrain",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.time() - started, 1),
            "seed": cfg.seed,
            "metrics": {"test": None, "final": metrics},
            "steps": trainer.global_step,
            "encoder": str(export_dir.relative_to(run_dir)),
            "checkpoints": {"last": trainer.checkpoint_callback.last_model_path or None},
            "data": {
                "datasets": {
                    name: {
                        "n_windows": len(d),
                        "cache": str(getattr(d, "path", "")),
                        "channels": len(d.ch_names),
                        "weight": float(w),
                    }
                    for name, d, w in zip(
                        mixture.names, mixture.datasets, mixture.weights, strict=True
                    )
                },
                "sfreq": sfreq,
                "split": datamodule.summary(),
            },
            "config": config,
            "config_hash": config_hash(config),
            "data_hash": "+".join(str(getattr(d, "key", "")) for d in mixture.datasets),
            "versions": versions(),
        },
    )
    logger.info("encoder exported to %s", export_dir)
    return results


def pretraining_trainer(cfg: Any, run_dir: Path) -> Any:
    """A Lightning trainer for pretraining: last and best (``val/loss``) checkpoints, logs.

    No early stopping: a step budget (``trainer.max_steps``) may end an epoch before its
    validation, and pretraining runs for its budget.
    """
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    callbacks = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best-{step:06d}",
            monitor=cfg.task.monitor,
            mode=cfg.task.mode,
            save_top_k=1,
            save_last=True,
        ),
        LearningRateMonitor(logging_interval="step"),
    ]
    loggers = [
        CSVLogger(run_dir, name="logs", version="csv"),
        TensorBoardLogger(run_dir, name="logs", version="tensorboard", default_hp_metric=False),
    ]
    return L.Trainer(
        default_root_dir=run_dir, callbacks=callbacks, logger=loggers, **trainer_arguments(cfg)
    )


def trained_encoder(trainer: Any, task: PretrainTask) -> torch.nn.Module | None:
    """The encoder with all its weights after ``trainer.fit`` (None on ranks other than 0).

    Under FSDP (``trainer=fsdp``) the task's own tensors are this process's shards, so the
    full state is gathered on rank 0 (every rank takes part) and loaded into a fresh copy.
    """
    from lightning.pytorch.strategies import FSDPStrategy

    if not isinstance(trainer.strategy, FSDPStrategy):
        return task.encoder
    state = trainer.strategy.lightning_module_state_dict()
    if not trainer.is_global_zero:
        return None
    full = type(task)(**task.hparams)
    full.load_state_dict(state)
    return full.encoder


def _caches(mixture: Any) -> list[tuple[str, Any]]:
    return [
        (name, d)
        for name, d in zip(mixture.names, mixture.datasets, strict=True)
        if hasattr(d, "meta")
    ]
