"""One recording → model windows: the transform the cache stores and prediction scores.

:func:`transform_recording` chains, for one recording: channel types and harmonisation,
filters and channel QC (:func:`neurodecode.data.preprocess.preprocess_recording`), the
window grid and its labels (:mod:`neurodecode.data.windows`), window rejection
(:func:`neurodecode.data.artifacts.reject_windows`), scaling with the statistics of the
whole recording, clipping and window cutting. The cache build calls it once per recording;
``neurodecode.predict`` calls it on a recording that fits in one span, so the windows it
scores are the cached ones bit for bit.

A recording too long to hold in memory is preprocessed span by span (filters with margins,
channel QC per span); :func:`streamed_scaling` then computes the same recording-level
scaling statistics from the spans in bounded memory (exact order statistics by histogram
refinement over repeated passes), and :func:`scaled_windows` cuts each span's windows with
them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from neurodecode.data import artifacts, preprocess, windows
from neurodecode.data.recording import Recording

QUANTILES = (25.0, 50.0, 75.0)  # robust z-score: median and interquartile range
IQR_TO_STD = 1.349  # interquartile range of a standard normal
_BINS = 4096  # histogram bins per refinement pass of the streamed order statistics
_COLLECT = 1 << 20  # values kept in memory to finish a streamed order statistic by sorting


@dataclasses.dataclass
class Shard:
    """The windows of one recording.

    Attributes
    ----------
    x : numpy.ndarray
        ``(n_windows, n_chans, n_times)`` windows, scaled and clipped, in ``config.dtype``.
    table : pandas.DataFrame
        One row per window (:data:`neurodecode.data.windows.WINDOW_COLUMNS`; a ``rejected``
        column with the reason, ``""`` when kept, when rejected windows are kept).
    ch_mask : numpy.ndarray
        Bool per channel: True where the channel carries data.
    events : pandas.DataFrame
        The recording's labelled events (onset, duration, description, label).
    ch_names : list of str
    sfreq : float
    n_times : int
    """

    x: np.ndarray
    table: pd.DataFrame
    ch_mask: np.ndarray
    events: pd.DataFrame
    ch_names: list[str]
    sfreq: float
    n_times: int


@dataclasses.dataclass(frozen=True)
class Scaling:
    """How a preprocessed µV signal becomes model input.

    Attributes
    ----------
    method : str
        ``fixed`` (µV / ``scale_uv``) or ``robust_zscore`` (``(x - centre) / spread``).
    centre, spread : numpy.ndarray or None
        Robust z-score statistics, float64: ``(n_chans, 1)`` per channel (NaN for channels
        without good samples) or ``(1, 1)`` for the whole recording; None for ``fixed``.
    scale_uv : float
    clip : float or None
        The scaled signal is clipped to ``±clip``.
    """

    method: str
    centre: np.ndarray | None
    spread: np.ndarray | None
    scale_uv: float
    clip: float | None

    def apply(self, signal_uv: np.ndarray, good: np.ndarray) -> np.ndarray:
        """Scaled, clipped float32 copy of ``signal_uv``; channels not ``good`` are zero."""
        if self.method == "fixed":
            out = signal_uv / np.float32(self.scale_uv)
        else:
            per_channel = self.centre.shape[0] > 1
            centre = self.centre[good] if per_channel else self.centre
            spread = self.spread[good] if per_channel else self.spread
            out = np.zeros_like(signal_uv)
            out[good] = (signal_uv[good] - centre) / spread
        out[~good] = 0.0
        out = out.astype(np.float32, copy=False)
        if self.clip is not None:
            np.clip(out, -self.clip, self.clip, out=out)
        return out


def _scaling(config: DictConfig, quantiles: np.ndarray | None, n_chans: int) -> Scaling:
    """A :class:`Scaling` from ``(3, groups, 1)`` quartiles (None for ``fixed``)."""
    centre = spread = None
    if quantiles is not None:
        q25, median, q75 = quantiles
        spread = (q75 - q25) / IQR_TO_STD
        spread = np.where(spread > 0, spread, 1.0)
        centre = median
    return Scaling(
        config.scaling.method, centre, spread, float(config.scaling.scale_uv), config.clip
    )


def recording_scaling(config: DictConfig, signal_uv: np.ndarray, good: np.ndarray) -> Scaling:
    """The scaling of ``config`` with the statistics of ``signal_uv`` (good channels only)."""
    n_chans = signal_uv.shape[0]
    if config.scaling.method == "fixed":
        return _scaling(config, None, n_chans)
    if config.scaling.per == "channel":
        quantiles = np.full((3, n_chans, 1), np.nan)
        quantiles[:, good] = np.percentile(signal_uv[good], QUANTILES, axis=1, keepdims=True)
    else:
        quantiles = np.percentile(signal_uv[good], QUANTILES, keepdims=True)
    return _scaling(config, quantiles, n_chans)


def streamed_scaling(
    config: DictConfig,
    blocks: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]],
    n_chans: int,
) -> Scaling:
    """The scaling of ``config`` with statistics over many blocks, in bounded memory.

    Parameters
    ----------
    config : DictConfig
        A preprocessing config.
    blocks : callable
        Returns a fresh iterable of ``(signal_uv, good)`` blocks (each ``(n_chans, n)`` µV
        and a bool per channel) each time it is called; it is called a few times.
    n_chans : int

    Returns
    -------
    Scaling
        Equal (to rounding) to :func:`recording_scaling` of the blocks concatenated.
    """
    if config.scaling.method == "fixed":
        return _scaling(config, None, n_chans)
    per_channel = config.scaling.per == "channel"

    def groups() -> Iterable[list[np.ndarray]]:
        for signal, good in blocks():
            if per_channel:
                yield [row if ok else row[:0] for row, ok in zip(signal, good, strict=True)]
            else:
                yield [signal[good].ravel()]

    quantiles = streamed_percentiles(groups, n_chans if per_channel else 1, QUANTILES)
    return _scaling(config, quantiles.T[:, :, None], n_chans)


def streamed_percentiles(
    groups: Callable[[], Iterable[list[np.ndarray]]], n_groups: int, q: Iterable[float]
) -> np.ndarray:
    """``np.percentile`` (linear method) of each group's values, over repeated passes.

    ``groups()`` yields, on every call, the same sequence of blocks, each a list of
    ``n_groups`` 1-D arrays. Returns ``(n_groups, len(q))`` (NaN for an empty group).
    """
    q = np.asarray(list(q), dtype=float)
    counts = np.zeros(n_groups, dtype=np.int64)
    low, high = np.full(n_groups, np.inf), np.full(n_groups, -np.inf)
    for block in groups():
        for g, values in enumerate(block):
            if values.size:
                counts[g] += values.size
                low[g], high[g] = min(low[g], values.min()), max(high[g], values.max())
    position = q[None, :] / 100 * np.maximum(counts - 1, 0)[:, None]
    below = np.floor(position).astype(np.int64)
    ranks = np.stack([below, np.minimum(below + 1, np.maximum(counts - 1, 0)[:, None])], -1)
    values = _order_statistics(groups, ranks.reshape(n_groups, -1), counts, low, high)
    values = values.reshape(ranks.shape)
    a, b, t = values[..., 0], values[..., 1], position - below
    out = np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)
    out[counts == 0] = np.nan
    return out


def _order_statistics(
    groups: Callable[[], Iterable[list[np.ndarray]]],
    ranks: np.ndarray,
    counts: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """The values of 0-based ``ranks`` ``(n_groups, k)`` in each group's sorted values.

    Each rank keeps an interval ``[lo, hi)`` known to hold it and the count of values below
    it; a pass counts the values in the interval on a histogram and narrows it to one bin,
    until the interval holds few enough values to sort, or only one distinct value.
    """
    lo = np.repeat(low[:, None], ranks.shape[1], 1)
    hi = np.repeat(np.nextafter(high, np.inf)[:, None], ranks.shape[1], 1)
    inside = np.repeat(counts[:, None], ranks.shape[1], 1)
    offset = ranks.copy()  # rank among the values in [lo, hi)
    result = np.full(ranks.shape, np.nan)
    todo = counts[:, None].repeat(ranks.shape[1], 1) > 0
    while todo.any():
        collect = todo & (inside <= _COLLECT)
        hist = np.zeros((*ranks.shape, _BINS), dtype=np.int64)
        extent = np.stack([np.full(ranks.shape, np.inf), np.full(ranks.shape, -np.inf)])
        kept: dict[tuple[int, int], list[np.ndarray]] = {}
        for block in groups():
            for g, k in zip(*np.nonzero(todo), strict=True):
                values = block[g]
                values = values[(values >= lo[g, k]) & (values < hi[g, k])]
                if collect[g, k]:
                    kept.setdefault((g, k), []).append(values)
                elif values.size:
                    bins = np.searchsorted(_edges(lo[g, k], hi[g, k]), values, side="right") - 1
                    hist[g, k] += np.bincount(bins, minlength=_BINS)
                    extent[0, g, k] = min(extent[0, g, k], values.min())
                    extent[1, g, k] = max(extent[1, g, k], values.max())
        for g, k in zip(*np.nonzero(todo), strict=True):
            if collect[g, k]:
                result[g, k] = np.sort(np.concatenate(kept[(g, k)]))[offset[g, k]]
            elif extent[0, g, k] == extent[1, g, k]:
                result[g, k] = extent[0, g, k]
            else:
                cumulative = np.cumsum(hist[g, k])
                b = int(np.searchsorted(cumulative, offset[g, k], side="right"))
                offset[g, k] -= cumulative[b - 1] if b else 0
                inside[g, k] = hist[g, k, b]
                lo[g, k], hi[g, k] = _edges(lo[g, k], hi[g, k])[b : b + 2]
                continue
            todo[g, k] = False
    return result


def _edges(lo: float, hi: float) -> np.ndarray:
    """``_BINS + 1`` histogram edges from ``lo`` to exactly ``hi``."""
    edges = np.linspace(lo, hi, _BINS + 1)
    edges[-1] = hi
    return edges


def window_grid(
    rec: Recording, config: DictConfig, label_map: dict[str, int], qc: artifacts.RecordingQC
) -> tuple[pd.DataFrame, int]:
    """The window table of ``config.windows`` (with ``start_sample``) and samples per window."""
    win = config.windows
    if win.mode == "events":
        table, outside = windows.event_windows(
            rec.annotations, rec.sfreq, rec.n_times, label_map, win.tmin, win.tmax, rec.source
        )
        if outside:
            qc.notes.append(f"{outside} event window(s) fall outside the recording; dropped")
            qc.windows_rejected["outside_recording"] = outside
        return table, windows.n_window_samples(win.tmax - win.tmin, rec.sfreq)
    table = windows.sliding_windows(
        rec.annotations,
        rec.sfreq,
        rec.n_times,
        win.length_s,
        win.stride_s,
        label_map,
        win.overlap_threshold,
        win.background,
        source=rec.source,
    )
    return table, windows.n_window_samples(win.length_s, rec.sfreq)


def rejected_windows(
    prepared: preprocess.Prepared,
    starts: np.ndarray,
    n_times: int,
    config: DictConfig,
    qc: artifacts.RecordingQC,
) -> np.ndarray:
    """Why each window is rejected (``""``: kept), counted per reason in ``qc``."""
    if not config.artifacts.enabled:
        return np.full(len(starts), "", dtype=object)
    rec = prepared.recording
    reasons = artifacts.reject_windows(
        rec.signal,
        starts,
        n_times,
        rec.sfreq,
        prepared.ch_mask,
        config.artifacts.windows,
        prepared.plateau_cumsum,
        prepared.raw_sfreq,
        prepared.raw_good,
    )
    for reason, count in pd.Series(reasons[reasons != ""]).value_counts().items():
        qc.windows_rejected[str(reason)] = int(count)
    return reasons


def scaled_windows(
    signal_uv: np.ndarray,
    good: np.ndarray,
    starts: np.ndarray,
    n_times: int,
    scaling: Scaling,
    dtype: str,
) -> np.ndarray:
    """Scale and clip ``signal_uv``, cut ``(len(starts), n_chans, n_times)`` windows."""
    scaled = scaling.apply(signal_uv, good)
    return windows.extract_windows(scaled, starts, n_times).astype(dtype, copy=False)


def transform_recording(
    recording: Recording,
    config: DictConfig,
    label_map: dict[str, int],
    qc: artifacts.RecordingQC,
    target: list[str] | str | None = None,
    *,
    drop_rejected: bool | None = None,
) -> Shard:
    """One recording, as read (volts) → its windows, table, channel mask and labelled events.

    Parameters
    ----------
    recording : Recording
    config : DictConfig
        A preprocessing config.
    label_map : dict
        ``{event description: label}``.
    qc : artifacts.RecordingQC
        Filled in with every decision.
    target : list of str or str, optional
        Channels to harmonise to (default ``config.channels.target``).
    drop_rejected : bool, optional
        Drop the windows rejected by the artifact checks (default
        ``config.artifacts.windows.reject``); otherwise keep them with their reason in a
        ``rejected`` column.

    Raises
    ------
    PreprocessingError
        See :func:`neurodecode.data.preprocess.preprocess_recording`.
    """
    _note_unmatched(recording, label_map, qc)
    prepared = preprocess.preprocess_recording(recording, config, qc, target)
    rec, mask = prepared.recording, prepared.ch_mask
    table, n_times = window_grid(rec, config, label_map, qc)
    starts = table["start_sample"].to_numpy(np.int64)
    qc.windows_total = len(table) + qc.windows_rejected.get("outside_recording", 0)
    reasons = rejected_windows(prepared, starts, n_times, config, qc)
    if drop_rejected is None:
        drop_rejected = config.artifacts.windows.reject
    if drop_rejected:
        keep = reasons == ""
        table, starts = table[keep], starts[keep]
    elif config.artifacts.enabled:
        table = table.assign(rejected=reasons)
    qc.windows_kept = len(table)
    scaling = recording_scaling(config, rec.signal, mask)
    x = scaled_windows(rec.signal, mask, starts, n_times, scaling, config.dtype)
    return Shard(
        x=x,
        table=table.drop(columns="start_sample").reset_index(drop=True),
        ch_mask=mask,
        events=windows.labelled_events(rec.annotations, label_map),
        ch_names=list(rec.ch_names),
        sfreq=float(rec.sfreq),
        n_times=n_times,
    )


def _note_unmatched(recording: Recording, label_map: dict[str, int], qc: artifacts.RecordingQC):
    """Note in ``qc`` the annotated events the label map does not name."""
    descriptions = np.asarray(recording.annotations["description"], dtype=str)
    unmatched = Counter(d for d in descriptions if d not in label_map)
    if unmatched and label_map:
        qc.notes.append(
            "events not in the label map, ignored: "
            + ", ".join(f"{name} ×{count}" for name, count in unmatched.items())
        )
