"""Scaling with statistics of the training split (``scaling.method: train_split``).

With ``robust_zscore`` each recording is scaled by its own statistics and with ``fixed`` by a
constant, both inside the per-recording transform (:mod:`neurodecode.data.transform`), so
the cache stores model input. Per-recording statistics remove amplitude, which is what
tells an ictal segment from a quiet one; ``train_split`` keeps it: the cache stores the
windows in µV (unclipped), one cache serves any split, and the robust statistics (median
and interquartile range / 1.349, per channel or over all channels) are computed on the
**training** windows of a split only (:func:`fit_statistics`). The data module applies them
to the windows of every part (:class:`ScaledWindows`), the run layer records them in the
preprocessing config (``scaling.statistics``) that ``results.json`` and the exported
``config.json`` carry, and prediction replays them from there (:func:`recorded_statistics`).
A config that says ``train_split`` without its statistics is refused, never re-estimated on
the data at hand.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from neurodecode.data.transform import IQR_TO_STD, QUANTILES, streamed_percentiles
from neurodecode.errors import CheckpointError

TRAIN_SPLIT = "train_split"
#: Windows read at a time when the statistics are computed (bounded memory).
CHUNK_WINDOWS = 256


@dataclasses.dataclass(frozen=True)
class SplitStatistics:
    """Robust scaling statistics of a training split, applied to µV windows.

    Attributes
    ----------
    centre, spread : numpy.ndarray
        float64 ``(n_chans, 1)`` (per channel) or ``(1, 1)`` (all channels together), in µV.
    clip : float or None
        The scaled windows are clipped to ``±clip``.
    """

    centre: np.ndarray
    spread: np.ndarray
    clip: float | None

    def apply(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(x - centre) / spread``, clipped, as float32; channels not in ``mask`` are zero.

        Parameters
        ----------
        x : numpy.ndarray
            ``(..., n_chans, n_times)`` windows in µV.
        mask : numpy.ndarray
            Bool per channel: True where the channel carries data.
        """
        out = ((x - self.centre) / self.spread).astype(np.float32)
        out[..., ~np.asarray(mask, bool), :] = 0.0
        if self.clip is not None:
            np.clip(out, -self.clip, self.clip, out=out)
        return out

    def as_config(self) -> dict[str, list[float]]:
        """The ``scaling.statistics`` section: centre and spread per channel (or one each)."""
        return {
            "centre": [float(v) for v in self.centre[:, 0]],
            "spread": [float(v) for v in self.spread[:, 0]],
        }


def uses_train_split(preprocessing: Mapping[str, Any] | None) -> bool:
    """Whether a preprocessing config scales with training-split statistics."""
    return ((preprocessing or {}).get("scaling") or {}).get("method") == TRAIN_SPLIT


def recorded_statistics(
    preprocessing: Mapping[str, Any] | None, n_chans: int, *, where: str | Path
) -> SplitStatistics | None:
    """The training-split statistics a checkpoint's preprocessing config carries.

    Parameters
    ----------
    preprocessing : mapping or None
        A preprocessing config as recorded with a model (``config.json``, ``results.json``).
    n_chans : int
        The model's channels (per-channel statistics must have one value each).
    where : str or Path
        The file the config comes from, named in errors.

    Returns
    -------
    SplitStatistics or None
        None when the config does not use ``train_split``.

    Raises
    ------
    CheckpointError
        The config says ``train_split`` but the statistics are missing or malformed.
    """
    if not uses_train_split(preprocessing):
        return None
    recorded = preprocessing["scaling"].get("statistics") or {}
    try:
        centre = np.asarray(recorded["centre"], dtype=np.float64).reshape(-1, 1)
        spread = np.asarray(recorded["spread"], dtype=np.float64).reshape(-1, 1)
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            "the preprocessing config says scaling.method=train_split but does not record the "
            "training split's scaling statistics (scaling.statistics centre and spread); they "
            "are not re-estimated on other data",
            path=where,
            hint="export the model again from its training run, which records them",
        ) from None
    if len(centre) not in (1, n_chans) or spread.shape != centre.shape:
        raise CheckpointError(
            f"scaling.statistics hold {len(centre)} centre(s) and {len(spread)} spread(s) "
            f"for a model of {n_chans} channel(s)",
            path=where,
        )
    if not (np.isfinite(centre).all() and np.isfinite(spread).all() and (spread > 0).all()):
        raise CheckpointError(
            "scaling.statistics hold a non-finite centre or a spread that is not positive",
            path=where,
        )
    clip = preprocessing.get("clip")
    return SplitStatistics(centre, spread, None if clip is None else float(clip))


def with_statistics(
    preprocessing: Mapping[str, Any], statistics: SplitStatistics
) -> dict[str, Any]:
    """A copy of ``preprocessing`` that records ``statistics`` (``scaling.statistics``)."""
    out = copy.deepcopy(dict(preprocessing))
    out["scaling"] = {**out["scaling"], "statistics": statistics.as_config()}
    return out


def fit_statistics(
    dataset: Any, positions: Sequence[int], per: str, clip: float | None
) -> SplitStatistics:
    """Robust statistics of the windows ``positions`` of ``dataset`` (the training split).

    Parameters
    ----------
    dataset : WindowCache or Dataset
        Items are window dicts with ``x`` (µV, ``(n_chans, n_times)``) and ``ch_mask``.
    positions : sequence of int
        The training windows; no other window is read.
    per : str
        ``channel`` (statistics per channel, over the windows where it carries data) or
        ``recording`` (one centre and spread over every good channel of every window).
    clip : float or None

    Returns
    -------
    SplitStatistics
        Median and interquartile range / 1.349, exact (:func:`streamed_percentiles`); a
        channel without data gets centre 0 and spread 1 (it is zeroed anyway).
    """
    positions = list(positions)
    if not positions:
        raise ValueError("no training windows to compute scaling statistics from")
    n_chans = dataset[positions[0]]["x"].shape[0]
    per_channel = per == "channel"

    def groups() -> Iterable[list[np.ndarray]]:
        for start in range(0, len(positions), CHUNK_WINDOWS):
            items = [dataset[i] for i in positions[start : start + CHUNK_WINDOWS]]
            x = np.stack([np.asarray(item["x"], np.float32) for item in items])
            mask = np.stack([np.asarray(item["ch_mask"], bool) for item in items])
            if per_channel:
                yield [x[:, c][mask[:, c]].ravel() for c in range(n_chans)]
            else:
                yield [x[mask].ravel()]

    q25, median, q75 = streamed_percentiles(groups, n_chans if per_channel else 1, QUANTILES).T
    spread = (q75 - q25) / IQR_TO_STD
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)
    centre = np.where(np.isfinite(median), median, 0.0)
    return SplitStatistics(centre[:, None], spread[:, None], clip)


def fit_for(dataset: Any, train: Sequence[int]) -> SplitStatistics | None:
    """The training-split statistics ``dataset`` asks for, or None.

    A window cache whose preprocessing config (``meta["config"]``) says ``train_split``
    gets statistics from its ``train`` windows; any other dataset none.
    """
    config = (getattr(dataset, "meta", None) or {}).get("config")
    if not uses_train_split(config):
        return None
    return fit_statistics(dataset, train, config["scaling"]["per"], config.get("clip"))


class ScaledWindows(torch.utils.data.Dataset):
    """The windows of ``dataset`` scaled with training-split ``statistics``.

    Parameters
    ----------
    dataset : WindowCache or Dataset
        Window dicts in µV, with an ``index``.
    statistics : SplitStatistics
    """

    def __init__(self, dataset: Any, statistics: SplitStatistics) -> None:
        self.dataset = dataset
        self.statistics = statistics

    @property
    def index(self) -> pd.DataFrame:
        """The wrapped dataset's window index."""
        return self.dataset.index

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.dataset[i])
        x = self.statistics.apply(np.asarray(item["x"]), np.asarray(item["ch_mask"]))
        item["x"] = torch.from_numpy(x)
        return item


def scaled(dataset: Any, statistics: SplitStatistics | None) -> Any:
    """``dataset`` as the model sees it: wrapped in :class:`ScaledWindows` when there are
    training-split ``statistics``, else unchanged."""
    return dataset if statistics is None else ScaledWindows(dataset, statistics)


def statistics_state(statistics: SplitStatistics | None) -> dict[str, Any]:
    """What a checkpoint stores of ``statistics`` (plain lists, read weights-only); never
    empty, so that Lightning stores it and a resumed run checks it."""
    if statistics is None:
        return {"scaling_statistics": None}
    return {"scaling_statistics": {**statistics.as_config(), "clip": statistics.clip}}


def statistics_from_state(
    state: Mapping[str, Any], fitted: SplitStatistics | None, *, where: str | Path
) -> SplitStatistics | None:
    """The statistics a checkpoint's data-module ``state`` stored (see
    :func:`statistics_state`), for a data module that ``fitted`` its own.

    Raises
    ------
    CheckpointError
        The data module uses training-split statistics but the checkpoint has none.
    """
    stored = state.get("scaling_statistics")
    if fitted is None:
        return None
    if stored is None:
        raise CheckpointError(
            "the data are scaled with training-split statistics (scaling.method=train_split) "
            "but the checkpoint does not store them; they are not re-estimated",
            path=where,
            hint="resume from a checkpoint of a train_split run, or start a new run",
        )
    preprocessing = {
        "scaling": {"method": TRAIN_SPLIT, "statistics": stored},
        "clip": stored["clip"],
    }
    return recorded_statistics(preprocessing, len(fitted.centre), where=where)
