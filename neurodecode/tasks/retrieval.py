"""EEG → image retrieval: contrastive alignment of EEG embeddings with image embeddings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from neurodecode.data.datamodule import EEGDataModule
from neurodecode.data.fetch import fetch_dataset
from neurodecode.data.splits import Split, published_test_splits, zero_shot_split
from neurodecode.errors import ConfigError
from neurodecode.evaluation.retrieval import zero_shot_retrieval
from neurodecode.registry import TASKS
from neurodecode.tasks.base import DecodingTask, RunData, build_encoder
from neurodecode.tasks.datasets import cache_run_data, dataset_source, prepare_data


def image_embeddings(cfg: DictConfig, dataset: str) -> np.ndarray:
    """Image embeddings for retrieval: ``data.image_embeddings`` or the dataset's own
    ``stimuli/image_embeddings.npy`` (row ``i`` = concept ``i``; a ``(n, 1, dim)`` feature
    map is read as ``(n, dim)``)."""
    if cfg.data.image_embeddings:
        return _table(cfg.data.image_embeddings)
    for entry in fetch_dataset(dataset)[:1]:
        for parent in Path(entry.path).parents:
            candidate = parent / "stimuli" / "image_embeddings.npy"
            if candidate.is_file():
                return _table(candidate)
    raise ConfigError(
        "no image embeddings found next to the dataset",
        path=dataset,
        hint="set data.image_embeddings=<file.npy>",
    )


def _table(path: str | Path) -> np.ndarray:
    table = np.load(path)  # plain arrays only: numpy refuses pickles by default
    return table.reshape(len(table), -1)


def concept_label_map(cfg: DictConfig, n_concepts: int) -> dict[str, Any]:
    """Preprocessing changes labelling each window by its concept (``data.concepts``)."""
    if not cfg.data.concepts or cfg.preprocess.windows.label_map is not None:
        return {}
    label_map = {cfg.data.concepts.format(i): i for i in range(n_concepts)}
    return {"windows": {"label_map": label_map}}


class ZeroShotDataModule(EEGDataModule):
    """A data module whose test concepts are never trained on.

    With ``test_session`` (THINGS-EEG2: ``test``), the test set is the dataset's published
    one and ``split`` is ``intra_subject`` or ``inter_subject``, one fold per subject
    (:func:`~neurodecode.data.splits.published_test_splits`); without it (simulated data),
    a ``test_fraction`` of the concepts is drawn at random.
    """

    def __init__(self, dataset: Any, test_session: str | None = None, **kwargs: Any) -> None:
        self.protocol = str(kwargs.get("split"))
        self.test_session = test_session
        kwargs.update(split="subject", require_all_classes=False)
        super().__init__(dataset, **kwargs)

    def _make_splits(self) -> list[Split]:
        if self.test_session is not None:
            return published_test_splits(
                self.index,
                self.protocol,
                test_session=self.test_session,
                valid_fraction=self.valid_fraction,
                seed=self.seed,
            )
        parts = zero_shot_split(
            self.index,
            test_fraction=self.test_fraction,
            valid_fraction=self.valid_fraction,
            seed=self.seed,
        )
        return [Split("zero_shot_concepts", *parts)]


def multi_positive_info_nce(
    eeg: torch.Tensor, images: torch.Tensor, concepts: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE between EEG trials and the distinct images of their concepts.

    Several trials of one batch may show the same concept; the image side therefore holds
    each distinct concept once, and in the image → EEG direction all trials of that concept
    are positives (their probabilities are summed), so repeated concepts are never pushed
    apart as negatives.

    Parameters
    ----------
    eeg : tensor of shape (batch, dim)
        EEG embeddings.
    images : tensor of shape (n_concepts, dim)
        Image embedding of every concept (the table).
    concepts : tensor of shape (batch,)
        Concept index of each trial.
    logit_scale : tensor
        Multiplier of the cosine similarities (inverse temperature).
    """
    unique, inverse = torch.unique(concepts, return_inverse=True)
    logits = logit_scale * F.normalize(eeg, dim=1) @ F.normalize(images[unique], dim=1).T
    eeg_to_image = F.cross_entropy(logits, inverse)
    log_p = logits.T.log_softmax(dim=1)  # (n_unique, batch): each image over all trials
    positive = inverse[None, :] == torch.arange(len(unique), device=eeg.device)[:, None]
    image_to_eeg = -torch.logsumexp(log_p.masked_fill(~positive, -torch.inf), dim=1).mean()
    return 0.5 * (eeg_to_image + image_to_eeg)


@TASKS.register("retrieval")
class RetrievalTask(DecodingTask):
    """EEG encoder + projection head trained with symmetric InfoNCE against image embeddings.

    Parameters
    ----------
    model : mapping
        Encoder config, ``{"_target_": <registered model>, **architecture}``; its
        ``return_features=True`` embedding is projected.
    n_chans, n_times, sfreq : int, int, float
        Signal contract of the data.
    image_embeddings : array of shape (n_concepts, dim), optional
        Precomputed image embeddings; row ``i`` belongs to concept ``i`` (the batch's ``y``).
        Stored as a buffer, so checkpoints carry them.
    n_concepts, embedding_dim : int, optional
        Shape of the table when ``image_embeddings`` is not given (loading a checkpoint).
    ch_names, ch_pos : optional
        Channel names and ``(n_chans, 3)`` positions in metres of the data.
    projection_hidden : int
        Width of the projection MLP's hidden layer.
    temperature : float
        Initial softmax temperature; the learnable parameter is its log-inverse, used
        exponentiated and clamped to at most ``max_logit_scale``.
    max_logit_scale : float
        Upper clamp of the inverse temperature (CLIP uses 100).
    ks : sequence of int
        Ranks for top-k accuracy.
    dropout : float
        Dropout in the projection head.
    **optim
        ``lr``, ``weight_decay``, ``warmup_fraction``, ``min_lr_ratio``.
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        n_chans: int,
        n_times: int,
        sfreq: float,
        image_embeddings: np.ndarray | torch.Tensor | None = None,
        n_concepts: int | None = None,
        embedding_dim: int | None = None,
        ch_names: Sequence[str] | None = None,
        ch_pos: Sequence[Sequence[float]] | None = None,
        projection_hidden: int = 256,
        temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        ks: Sequence[int] = (1, 5),
        dropout: float = 0.1,
        **optim: float,
    ) -> None:
        super().__init__(**optim)
        if image_embeddings is None:
            if n_concepts is None or embedding_dim is None:
                raise ValueError("give image_embeddings, or n_concepts and embedding_dim")
            image_embeddings = np.zeros((n_concepts, embedding_dim))  # filled by a checkpoint
        table = torch.as_tensor(np.asarray(image_embeddings), dtype=torch.float32)
        if table.ndim != 2:
            raise ValueError(
                f"image_embeddings must be (n_concepts, dim), got {tuple(table.shape)}"
            )
        self.save_hyperparameters(ignore=["image_embeddings"])
        self.hparams["n_concepts"], self.hparams["embedding_dim"] = table.shape
        self.register_buffer("image_embeddings", table)
        self.encoder = build_encoder(
            model,
            n_chans=n_chans,
            n_outputs=table.shape[1],
            n_times=n_times,
            sfreq=sfreq,
            ch_names=ch_names,
            ch_pos=ch_pos,
        )
        n_features = int(self.encoder.n_features)
        self.projection = nn.Sequential(
            nn.Linear(n_features, projection_hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(projection_hidden, table.shape[1]),
        )
        # one element, not a 0-d scalar: FSDP (trainer=fsdp) refuses scalar parameters
        self.logit_scale = nn.Parameter(torch.tensor([math.log(1.0 / temperature)]))
        self.max_logit_scale = max_logit_scale
        self.ks = tuple(ks)
        self._outputs: dict[str, list[tuple[np.ndarray, np.ndarray, list]]] = {
            "val": [],
            "test": [],
        }
        self.test_metrics: dict[str, Any] = {}

    @classmethod
    def prepare(cls, cfg: DictConfig, run_dir: Path) -> RunData:
        """The image embeddings, the window cache labelled by concept, and a split that
        holds out whole concepts."""
        embeddings = image_embeddings(cfg, dataset_source(cfg, run_dir))
        cache = prepare_data(cfg, run_dir, concept_label_map(cfg, len(embeddings)))
        loaders = OmegaConf.to_container(cfg.data.datamodule, resolve=True)
        datamodule = ZeroShotDataModule(cache, seed=cfg.seed, **loaders)
        return cache_run_data(cfg, cache, datamodule, image_embeddings=embeddings)

    def scale(self) -> torch.Tensor:
        """The inverse temperature, ``exp(logit_scale)`` clamped to ``max_logit_scale``."""
        return self.logit_scale[0].exp().clamp(max=self.max_logit_scale)

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Projected EEG embeddings ``(batch, embedding_dim)``."""
        return self.projection(self.encode(batch, return_features=True))

    def _loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self(batch)
        loss = multi_positive_info_nce(
            embedding, self.image_embeddings, batch["y"].long(), self.scale()
        )
        return loss, embedding

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss(batch)
        n = len(batch["y"])
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/temperature", 1.0 / self.scale(), batch_size=n)
        return loss

    def _evaluation_step(self, stage: str, batch: Mapping[str, Any]) -> None:
        loss, embedding = self._loss(batch)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=len(batch["y"]))
        self._outputs[stage].append(
            (
                embedding.detach().float().cpu().numpy(),
                batch["y"].detach().cpu().numpy(),
                list(batch.get("subject") or [None] * len(batch["y"])),
            )
        )

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluation_step("val", batch)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluation_step("test", batch)

    def _epoch_metrics(self, stage: str) -> dict[str, Any]:
        outputs, self._outputs[stage] = self._outputs[stage], []
        if not outputs:
            return {}
        embeddings = np.concatenate([e for e, _, _ in outputs])
        concepts = np.concatenate([c for _, c, _ in outputs])
        subjects = [s for _, _, batch in outputs for s in batch]
        table = self.image_embeddings.float().cpu().numpy()
        metrics: dict[str, Any] = zero_shot_retrieval(
            embeddings, concepts, table, np.arange(len(table)), ks=self.ks
        )
        self.log_dict({f"{stage}/{k}": float(v) for k, v in metrics.items()})
        if None in subjects:  # batches without identifiers: no per-subject figures
            return metrics
        subjects = np.asarray(subjects, dtype=str)
        metrics["per_subject"] = {
            subject: zero_shot_retrieval(
                embeddings[subjects == subject],
                concepts[subjects == subject],
                table,
                np.arange(len(table)),
                ks=self.ks,
            )
            for subject in sorted(set(subjects))
        }
        return metrics

    def on_validation_epoch_end(self) -> None:
        self._epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self.test_metrics = self._epoch_metrics("test")
