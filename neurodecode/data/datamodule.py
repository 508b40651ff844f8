"""Lightning data module over a window cache: leakage-free splits and batch dicts.

Batches follow DESIGN.md: a dict with ``x`` (``(batch, n_chans, n_times)`` float32),
``y``, ``ch_pos``, ``ch_mask`` and the identifiers ``subject``, ``session``, ``recording``
(lists of str) and ``start_s`` (float64 tensor), so every prediction traces back to a file
and a second. The split logic lives in :mod:`neurodecode.data.splits` (pure functions over
``dataset.index``); this module only turns a split into data loaders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Subset, WeightedRandomSampler

from neurodecode.data import scaling
from neurodecode.data.splits import (
    GROUP_UNITS,
    PROTOCOLS,
    Split,
    fillable_unit,
    is_labelled,
    protocol_splits,
    split_by_group,
)
from neurodecode.errors import ConfigError

logger = logging.getLogger(__name__)

SPLITS = GROUP_UNITS + PROTOCOLS
#: The smallest training batch the cap of ``min_steps_per_epoch`` goes down to.
MIN_BATCH_SIZE = 4


def collate_windows(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack window dicts into a batch dict: tensors and numbers stacked, strings listed.

    Python floats (``start_s``) become float64, so seconds stay exact in long recordings.

    ``None`` identifiers (e.g. a dataset without sessions) stay ``None`` in the list.
    """
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        first = values[0]
        if isinstance(first, torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(first, np.ndarray):
            batch[key] = torch.from_numpy(np.stack(values))
        elif isinstance(first, bool | int | float | np.number) and not any(
            v is None for v in values
        ):
            batch[key] = torch.from_numpy(np.asarray(values))  # floats stay float64
        else:
            batch[key] = list(values)
    return batch


class EEGDataModule(L.LightningDataModule):
    """Train/validation/test loaders over a window dataset, split without leakage.

    Parameters
    ----------
    dataset : WindowCache or Dataset
        Any map-style dataset with an ``index`` DataFrame (one row per item: ``subject``,
        ``session``, ``recording``, ``start_s``, ``label``) whose items are window dicts.
    split : str
        ``subject``, ``session``, ``recording`` or ``label`` (random whole groups, or the
        explicit ``train``/``valid``/``test`` members; ``label`` holds out whole classes,
        as zero-shot retrieval needs); ``cross_subject`` (leave one subject out),
        ``cross_session`` or ``within_session`` (MOABB protocols; pick one with ``fold``).
        Random groups of a unit too few to fill the three parts (one subject) fall back to
        a finer unit, then to ``within_session`` folds of the trials, with a log line
        (:func:`~.splits.fillable_unit`).
    fold : int
        Which fold of a protocol (see :attr:`n_folds`).
    valid_fraction, test_fraction : float
        Fractions of groups for validation and test (``test_fraction`` unused by protocols,
        whose folds define the test part).
    valid_by : str, optional
        Validation grouping unit for protocols (see :func:`~.splits.protocol_splits`).
    n_folds : int
        Folds per session for ``within_session``.
    train, valid, test : sequence of str, optional
        Explicit group members (e.g. a dataset's published split).
    balanced : bool
        Draw training windows with probability inversely proportional to their class
        frequency (seeded :class:`~torch.utils.data.WeightedRandomSampler`, with
        replacement), so rare seizure windows are seen as often as background ones.
    require_all_classes : bool
        Refuse splits that leave a labelled class out of training (turn off for zero-shot
        retrieval over held-out concepts).
    batch_size, num_workers : int
        Loader settings (the same for every part).
    min_steps_per_epoch : int
        Cap the training batch size so that an epoch has at least this many optimiser
        steps (down to a batch of :data:`MIN_BATCH_SIZE`; 0: never cap): 29 training
        trials in batches of 64 would make one step per epoch. Logged when it applies.
    seed : int
        Seeds the split, the shuffling and the balanced sampler.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        split: str = "subject",
        fold: int = 0,
        valid_fraction: float = 0.1,
        test_fraction: float = 0.2,
        valid_by: str | None = None,
        n_folds: int = 5,
        train: Sequence[str] | None = None,
        valid: Sequence[str] | None = None,
        test: Sequence[str] | None = None,
        balanced: bool = False,
        require_all_classes: bool = True,
        batch_size: int = 64,
        num_workers: int = 0,
        min_steps_per_epoch: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; expected one of {SPLITS}")
        if not isinstance(getattr(dataset, "index", None), pd.DataFrame):
            raise ConfigError("the dataset has no 'index' DataFrame to split on")
        self.dataset = dataset
        self.split_name = split
        self.fold = fold
        self.valid_fraction = valid_fraction
        self.test_fraction = test_fraction
        self.valid_by = valid_by
        self.n_folds_per_session = n_folds
        self.members = {"train": train, "valid": valid, "test": test}
        self.balanced = balanced
        self.require_all_classes = require_all_classes
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.min_steps_per_epoch = min_steps_per_epoch
        self.seed = seed
        self._splits: list[Split] | None = None
        self._described: Split | None = None  # the split setup() last logged
        # statistics of the training split when the cache asks for them (data.scaling)
        self.scaling: scaling.SplitStatistics | None = None

    @property
    def index(self) -> pd.DataFrame:
        """The dataset's window index."""
        return self.dataset.index

    @property
    def splits(self) -> list[Split]:
        """All splits this configuration defines (one per fold; one for group splits)."""
        if self._splits is None:
            self._splits = self._make_splits()
        return self._splits

    @property
    def n_folds(self) -> int:
        """How many folds ``fold`` can choose from."""
        return len(self.splits)

    @property
    def split(self) -> Split:
        """The split in use (fold ``fold``)."""
        if not 0 <= self.fold < self.n_folds:
            raise ConfigError(
                f"fold {self.fold} does not exist: split {self.split_name!r} has "
                f"{self.n_folds} fold(s) (0 to {self.n_folds - 1})"
            )
        return self.splits[self.fold]

    def _make_splits(self) -> list[Split]:
        explicit = any(m is not None for m in self.members.values())
        protocol = self.split_name
        if protocol in GROUP_UNITS:
            unit = self.split_name if explicit else self._fillable_unit()
            if unit is not None:
                return [
                    split_by_group(
                        self.index,
                        unit,
                        valid_fraction=self.valid_fraction,
                        test_fraction=self.test_fraction,
                        seed=self.seed,
                        require_all_classes=self.require_all_classes,
                        **self.members,
                    )
                ]
            protocol = "within_session"
        elif explicit:
            raise ConfigError(
                f"explicit train/valid/test members do not apply to {self.split_name!r}"
            )
        return protocol_splits(
            self.index,
            protocol,
            valid_fraction=self.valid_fraction,
            valid_by=self.valid_by,
            seed=self.seed,
            n_folds=self.n_folds_per_session,
            require_all_classes=self.require_all_classes,
        )

    def _fillable_unit(self) -> str | None:
        """The unit to split by: ``split``, or a finer one where the data have too few
        groups (logged; None: ``within_session`` folds of the trials)."""
        unit = fillable_unit(
            self.index,
            self.split_name,
            valid_fraction=self.valid_fraction,
            test_fraction=self.test_fraction,
        )
        if unit != self.split_name:
            n_groups = self.index["subject"].nunique() if "subject" in self.index else 0
            instead = (
                f"whole {unit}s within the subject(s)"
                if unit
                else f"within_session {self.n_folds_per_session}-fold cross-validation of "
                f"the trials (fold {self.fold})"
            )
            logger.warning(
                "split=%s: the data (%d subject(s)) have too few %s groups to fill training, "
                "validation (%g) and test (%g) without leakage; splitting by %s instead",
                self.split_name,
                n_groups,
                self.split_name,
                self.valid_fraction,
                self.test_fraction,
                instead,
            )
        return unit

    def setup(self, stage: str | None = None) -> None:
        """Compute the split (once) and log what each part holds (once per split: Lightning
        calls setup again for each stage)."""
        split = self.split
        if split is self._described:
            return
        self._described = split
        self.scaling = scaling.fit_for(self.dataset, split.train)
        if self.train_batch_size != self.batch_size:
            logger.warning(
                "training batch size %d instead of %d: %d training windows would make %d "
                "optimiser step(s) per epoch (data.datamodule.min_steps_per_epoch=%d)",
                self.train_batch_size,
                self.batch_size,
                len(split.train),
                -(-len(split.train) // self.batch_size),
                self.min_steps_per_epoch,
            )
        for part in ("train", "valid", "test"):
            rows = self.index.iloc[split.part(part)]
            logger.info(
                "%s %s: %d windows from %d subject(s)%s",
                split.name,
                part,
                len(rows),
                rows["subject"].nunique(),
                _class_counts(rows),
            )

    def summary(self) -> dict[str, Any]:
        """Per part: number of windows, the subjects, and windows per class (for reports)."""
        out: dict[str, Any] = {"split": self.split.name}
        for part in ("train", "valid", "test"):
            rows = self.index.iloc[self.split.part(part)]
            out[part] = {
                "n_windows": len(rows),
                "subjects": sorted(map(str, rows["subject"].unique())),
                "classes": {str(k): int(v) for k, v in rows["label"].value_counts().items()},
            }
        return out

    @property
    def train_batch_size(self) -> int:
        """The training batch size: ``batch_size``, capped so that an epoch of the training
        part has at least ``min_steps_per_epoch`` steps (not below :data:`MIN_BATCH_SIZE`)."""
        n_train = len(self.split.train)
        if -(-n_train // self.batch_size) >= self.min_steps_per_epoch:  # 0: never capped
            return self.batch_size
        return min(self.batch_size, max(MIN_BATCH_SIZE, n_train // self.min_steps_per_epoch))

    def train_dataloader(self) -> DataLoader:
        positions = self.split.train
        generator = torch.Generator().manual_seed(self.seed)
        batch_size = self.train_batch_size
        # a last training batch of one window breaks batch normalisation: drop it only then
        drop_last = len(positions) > batch_size and len(positions) % batch_size == 1
        if self.balanced:
            sampler = WeightedRandomSampler(
                balanced_weights(self.index["label"].iloc[positions]),
                num_samples=len(positions),
                replacement=True,
                generator=generator,
            )
            return self._loader(positions, batch_size, sampler=sampler, drop_last=drop_last)
        return self._loader(
            positions, batch_size, shuffle=True, generator=generator, drop_last=drop_last
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.split.valid, self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.split.test, self.batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.split.test, self.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data: the training-split scaling statistics."""
        return scaling.statistics_state(self.scaling)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the scaling statistics of a checkpoint (refused when it lacks them)."""
        self.scaling = scaling.statistics_from_state(state_dict, self.scaling, where="checkpoint")

    def _loader(self, positions: np.ndarray, batch_size: int, **kwargs: Any) -> DataLoader:
        return DataLoader(
            Subset(scaling.scaled(self.dataset, self.scaling), positions.tolist()),
            batch_size=batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_windows,
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )


def balanced_weights(labels: pd.Series) -> torch.Tensor:
    """Sampling weight per window, ``1 / (windows of its class)``; unlabelled windows get 0."""
    labelled = is_labelled(labels)
    counts = labels[labelled].value_counts()
    weights = np.zeros(len(labels))
    weights[labelled.to_numpy()] = 1.0 / labels[labelled].map(counts).to_numpy(float)
    if not weights.any():
        raise ConfigError("balanced sampling needs labelled training windows; none are labelled")
    return torch.from_numpy(weights)


def _class_counts(rows: pd.DataFrame) -> str:
    if "label" not in rows.columns or rows["label"].isna().all():
        return ""
    counts = rows["label"].value_counts().sort_index()
    return ", per class " + ", ".join(f"{k}: {v}" for k, v in counts.items())
