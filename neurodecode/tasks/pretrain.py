"""Masked-reconstruction pretraining across montages (task ``pretrain``).

``python -m neurodecode.train recipe=pretrain`` composes ``configs/data/mixture.yaml``
(datasets and weights), ``configs/model/patch_conformer.yaml`` and
``configs/task/pretrain.yaml``; :meth:`PretrainTask.prepare` prepares every dataset's
window cache at the common rate, the run layer trains :class:`PretrainTask` on their
weighted mixture and exports the encoder (``<run>/encoder/``: ``model.safetensors`` +
``config.json`` + ``README.md``), which any recipe can start from with ``init_from=<run>``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from neurodecode.data.mixture import MixtureDataModule, prepare_mixture
from neurodecode.models.masked_autoencoder import MaskedAutoencoder
from neurodecode.registry import TASKS
from neurodecode.tasks.base import DecodingTask, RunData, build_encoder, final_metrics

# the keywords of the masked-autoencoder objective (everything after its encoder)
OBJECTIVE_KEYWORDS = tuple(inspect.signature(MaskedAutoencoder).parameters)[1:]


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
    **options
        The objective's keywords (``mask_ratio``, ``masking``, ``block_len``,
        ``decoder_*``, ``loss``, ``target_norm``, ``spectral_weight``: see
        :class:`~neurodecode.models.masked_autoencoder.MaskedAutoencoder`, which holds their
        defaults) and the optimiser's (``lr``, ``weight_decay``, ``warmup_fraction``,
        ``min_lr_ratio``).

    Notes
    -----
    Batches are dicts as :func:`neurodecode.data.mixture.collate_mixture` writes them
    (``n_times`` marks padding in time; absent with fixed-length windows). Validation uses
    a fixed mask per batch (seeded by the batch index), so ``val/loss`` is comparable
    between epochs.
    """

    distributed = True
    export_description = (
        "Encoder pretrained by masked reconstruction of (channel, time) patches with "
        "neurodecode; start a task from it with init_from=<this folder>."
    )

    def __init__(
        self,
        model: Mapping[str, Any],
        n_chans: int,
        n_times: int,
        sfreq: float,
        ch_names: Sequence[str] | None = None,
        ch_pos: Sequence[Sequence[float]] | None = None,
        **options: Any,
    ) -> None:
        objective = {k: options.pop(k) for k in OBJECTIVE_KEYWORDS if k in options}
        super().__init__(**options)
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
        self.model = MaskedAutoencoder(encoder, **objective)

    @classmethod
    def prepare(cls, cfg: DictConfig, run_dir: Path) -> RunData:
        """The window caches of the mixture ``cfg.data`` at its common rate, sampled by
        weight; the signal contract is the union of their channels and the longest window."""
        data = OmegaConf.to_container(cfg.data, resolve=True)
        sfreq = float(data["sfreq"])
        patch_len = max(1, round(float(cfg.model.get("patch_s", 0.5)) * sfreq))
        mixture = prepare_mixture(
            data["datasets"],
            sfreq=sfreq,
            window_s=float(data["window_s"]),
            stride_s=data.get("stride_s"),
            min_times=patch_len,
            require_positions=bool(data.get("require_positions", False)),
        )
        ch_names, ch_pos = mixture.channels()
        members = list(zip(mixture.names, mixture.datasets, mixture.weights, strict=True))
        return RunData(
            datamodule=MixtureDataModule(mixture, seed=cfg.seed, **data["datamodule"]),
            arguments={
                "n_chans": len(ch_names),
                "n_times": max(int(d.n_times) for d in mixture.datasets),
                "sfreq": sfreq,
                "ch_names": ch_names,
                "ch_pos": ch_pos.tolist(),
            },
            record={
                "datasets": {
                    name: {
                        "n_windows": len(d),
                        "cache": str(getattr(d, "path", "")),
                        "channels": len(d.ch_names),
                        "weight": float(w),
                    }
                    for name, d, w in members
                },  # fmt: skip
                "sfreq": sfreq,
            },
            data_hash="+".join(str(getattr(d, "key", "")) for d in mixture.datasets),
            provenance={
                "preprocessing": {
                    n: d.meta.get("config") for n, d, _ in members if hasattr(d, "meta")
                },  # fmt: skip
                "dataset": "+".join(mixture.names),
                "datasets": list(mixture.names),
            },
            source=mixture,
        )

    def run_metrics(self, trainer: L.Trainer, monitor: str) -> dict[str, Any]:
        """No test part: the final training and validation losses."""
        return {"test": None, "final": final_metrics(trainer)}

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
