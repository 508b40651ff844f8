"""A weighted mixture of window datasets with different montages, for pretraining.

Each dataset is a window cache (:class:`~neurodecode.data.cache.WindowCache`, or any
map-style dataset with its attributes ``index``, ``ch_names``, ``ch_pos``, ``sfreq``,
``n_times``) built at one common sampling rate. Windows are drawn with probability
proportional to their dataset's weight (divided evenly among its windows), and a batch is
padded to the largest channel count and length in it:

``x`` ``(batch, max_chans, max_times)`` float32 (zeros in the padding), ``ch_pos``
``(batch, max_chans, 3)`` metres (NaN where unknown or padded), ``ch_mask``
``(batch, max_chans)`` bool (false for channels a recording lacks and for padding),
``n_times`` ``(batch,)`` real samples per window, ``y``, ``dataset`` and the identifiers
``subject``, ``session``, ``recording`` (prefixed ``<dataset>/``) and ``start_s``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset, Subset, WeightedRandomSampler

from neurodecode.data.prepare import prepare_dataset
from neurodecode.data.splits import split_by_group
from neurodecode.errors import ChannelError, ConfigError, ContractError

logger = logging.getLogger(__name__)

_IDENTIFIERS = ("subject", "session", "recording")


class WindowMixture(Dataset):
    """Several window datasets as one, with per-dataset sampling weights.

    Parameters
    ----------
    datasets : mapping of str to Dataset
        Name → window dataset (see the module docstring for what it must provide).
    weights : mapping of str to float, optional
        Relative share of draws from each dataset (default 1 each); must be positive.
    sfreq : float, optional
        The common sampling rate; every dataset must have it (default: the first one's).
    min_times : int
        Fewest samples a window may have (one patch of the encoder).
    require_positions : bool
        Refuse a dataset none of whose channels has a known position. By default such a
        dataset is accepted with a warning, and the encoder gives its channels the learned
        "unknown position" embedding.

    Raises
    ------
    ContractError
        A dataset at another rate, or with windows shorter than ``min_times``.
    ChannelError
        With ``require_positions``, a dataset without any known channel position.
    """

    def __init__(
        self,
        datasets: Mapping[str, Dataset],
        weights: Mapping[str, float] | None = None,
        *,
        sfreq: float | None = None,
        min_times: int = 1,
        require_positions: bool = False,
    ) -> None:
        if not datasets:
            raise ConfigError("a mixture needs at least one dataset")
        weights = dict(weights or {})
        unknown = set(weights) - set(datasets)
        if unknown:
            raise ConfigError(f"weights given for datasets not in the mixture: {sorted(unknown)}")
        self.names = list(datasets)
        self.datasets = [datasets[name] for name in self.names]
        self.weights = np.array([float(weights.get(n, 1.0)) for n in self.names])
        if (self.weights <= 0).any() or not np.isfinite(self.weights).all():
            raise ConfigError(f"mixture weights must be positive, got {dict(weights)}")
        self.sfreq = float(sfreq if sfreq is not None else self.datasets[0].sfreq)
        self.positions = []
        for name, dataset in zip(self.names, self.datasets, strict=True):
            where = getattr(dataset, "path", name)
            if not math.isclose(float(dataset.sfreq), self.sfreq, rel_tol=1e-6):
                raise ContractError(
                    f"dataset {name!r} is sampled at {dataset.sfreq:g} Hz, the mixture at "
                    f"{self.sfreq:g} Hz",
                    path=where,
                    hint=f"prepare it with resample={self.sfreq:g}",
                )
            if int(dataset.n_times) < min_times:
                raise ContractError(
                    f"dataset {name!r} has windows of {dataset.n_times} samples, shorter than "
                    f"one patch ({min_times} samples)",
                    path=where,
                    hint="use longer windows (windows.length_s) or a shorter patch",
                )
            positions = np.asarray(dataset.ch_pos, dtype=np.float32).reshape(-1, 3)
            if np.isnan(positions).any(axis=1).all():
                message = f"no channel of dataset {name!r} ({list(dataset.ch_names)}) has a known position"
                if require_positions:
                    raise ChannelError(
                        message,
                        path=where,
                        hint="use canonical 10-05 names, or set require_positions=false to "
                        "pretrain with the learned 'unknown position' embedding",
                    )
                logger.warning("%s; its channels use the 'unknown position' embedding", message)
            self.positions.append(torch.from_numpy(positions))
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])
        self.index = self._build_index()

    def _build_index(self) -> pd.DataFrame:
        frames = []
        for name, dataset in zip(self.names, self.datasets, strict=True):
            frame = pd.DataFrame({c: dataset.index[c].astype(str).to_numpy() for c in _IDENTIFIERS})
            for column in _IDENTIFIERS:
                frame[column] = name + "/" + frame[column]
            frame["start_s"] = dataset.index["start_s"].to_numpy(float)
            frame["label"] = -1
            frame["dataset"] = name
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def sample_weights(self) -> np.ndarray:
        """Draw probability of every window (dataset weight spread evenly over its windows)."""
        sizes = np.diff(self.offsets)
        per_window = self.weights / self.weights.sum() / np.maximum(sizes, 1)
        return np.repeat(per_window, sizes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        item = self.datasets[k][i - int(self.offsets[k])]
        ch_mask = item.get("ch_mask")
        if ch_mask is None:
            ch_mask = torch.ones(item["x"].shape[0], dtype=torch.bool)
        return {
            "x": torch.as_tensor(item["x"], dtype=torch.float32),
            "y": int(item.get("y", -1)),
            "ch_pos": self.positions[k],
            "ch_mask": torch.as_tensor(ch_mask, dtype=torch.bool),
            "dataset": self.names[k],
            **{c: str(self.index.at[i, c]) for c in _IDENTIFIERS},
            "start_s": float(item.get("start_s", 0.0)),
        }

    def channels(self) -> tuple[list[str], np.ndarray]:
        """The union of channel names (first-seen order) and their positions (NaN unknown)."""
        names: list[str] = []
        rows = []
        for dataset, positions in zip(self.datasets, self.positions, strict=True):
            for name, xyz in zip(dataset.ch_names, positions.numpy(), strict=True):
                if name not in names:
                    names.append(str(name))
                    rows.append(xyz)
        return names, np.asarray(rows, dtype=float).reshape(-1, 3)


def collate_mixture(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Pad windows of different channel counts and lengths into one batch (module docstring)."""
    batch = len(samples)
    max_chans = max(s["x"].shape[0] for s in samples)
    max_times = max(s["x"].shape[1] for s in samples)
    x = torch.zeros(batch, max_chans, max_times)
    ch_pos = torch.full((batch, max_chans, 3), math.nan)
    ch_mask = torch.zeros(batch, max_chans, dtype=torch.bool)
    n_times = torch.zeros(batch, dtype=torch.long)
    for b, sample in enumerate(samples):
        n_chans, length = sample["x"].shape
        x[b, :n_chans, :length] = sample["x"]
        ch_pos[b, :n_chans] = sample["ch_pos"]
        ch_mask[b, :n_chans] = sample["ch_mask"]
        n_times[b] = length
    out: dict[str, Any] = {
        "x": x,
        "y": torch.tensor([int(s["y"]) for s in samples]),
        "ch_pos": ch_pos,
        "ch_mask": ch_mask,
        "n_times": n_times,
        "start_s": torch.tensor([float(s["start_s"]) for s in samples], dtype=torch.float64),
    }
    for key in ("dataset", *_IDENTIFIERS):
        out[key] = [s[key] for s in samples]
    return out


class MixtureDataModule(L.LightningDataModule):
    """Training and validation loaders over a :class:`WindowMixture`.

    Validation holds out whole recordings (``valid_fraction`` of each mixture's recordings,
    seeded); training windows are drawn with replacement by dataset weight.

    Parameters
    ----------
    mixture : WindowMixture
    valid_fraction : float
        Share of recordings held out for validation (0: no validation).
    samples_per_epoch : int, optional
        Windows drawn per training epoch (default: the number of training windows).
    batch_size, num_workers : int
    seed : int
    """

    def __init__(
        self,
        mixture: WindowMixture,
        *,
        valid_fraction: float = 0.1,
        samples_per_epoch: int | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.mixture = mixture
        split = split_by_group(
            mixture.index,
            "recording",
            valid_fraction=valid_fraction,
            test_fraction=0.0,
            seed=seed,
            require_all_classes=False,
        )
        self.train_positions = np.concatenate([split.train, split.test])
        self.valid_positions = split.valid
        self.samples_per_epoch = samples_per_epoch or len(self.train_positions)
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed

    def summary(self) -> dict[str, Any]:
        """Windows per dataset in each part (for ``results.json``)."""
        index = self.mixture.index
        return {
            part: index.iloc[positions]["dataset"].value_counts().sort_index().to_dict()
            for part, positions in (
                ("train", self.train_positions),
                ("valid", self.valid_positions),
            )
        }

    def train_dataloader(self) -> DataLoader:
        weights = self.mixture.sample_weights()[self.train_positions]
        sampler = WeightedRandomSampler(
            torch.as_tensor(weights, dtype=torch.double),
            num_samples=self.samples_per_epoch,
            replacement=True,
            generator=torch.Generator().manual_seed(self.seed),
        )
        return self._loader(self.train_positions, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.valid_positions, shuffle=False)

    def _loader(self, positions: np.ndarray, **kwargs: Any) -> DataLoader:
        return DataLoader(
            Subset(self.mixture, positions.tolist()),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_mixture,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )


def prepare_mixture(
    datasets: Mapping[str, Mapping[str, Any]],
    *,
    sfreq: float,
    window_s: float,
    stride_s: float | None = None,
    min_times: int = 1,
    require_positions: bool = False,
) -> WindowMixture:
    """Build (or reuse) each dataset's window cache at a common rate and mix them.

    Parameters
    ----------
    datasets : mapping
        ``{name: {"weight": float, "prepare": {prepare_dataset overrides}}}``; datasets with
        weight 0 are skipped. Each is preprocessed with its own config
        (``configs/preprocess/<name>.yaml`` or ``default``), resampled to ``sfreq`` and cut
        into sliding windows of ``window_s`` seconds every ``stride_s`` (default
        ``window_s``); ``prepare`` changes anything else.
    sfreq, window_s, stride_s : float
    min_times, require_positions
        See :class:`WindowMixture`.
    """
    caches, weights = {}, {}
    for name, spec in datasets.items():
        spec = dict(spec or {})
        weight = float(spec.get("weight", 1.0))
        if weight == 0:
            continue
        overrides = {
            "resample": sfreq,
            "windows": {
                "mode": "sliding",
                "length_s": window_s,
                "stride_s": stride_s or window_s,
                "background": None,
            },
        }
        overrides = OmegaConf.to_container(
            OmegaConf.merge(overrides, dict(spec.get("prepare") or {})), resolve=True
        )
        logger.info("preparing %s for the pretraining mixture", name)
        caches[name] = prepare_dataset(name, overrides)
        weights[name] = weight
    if not caches:
        raise ConfigError("every dataset of the mixture has weight 0")
    return WindowMixture(
        caches, weights, sfreq=sfreq, min_times=min_times, require_positions=require_positions
    )
