"""One recording → model windows: the transform the cache stores and prediction scores.

:func:`transform_recording` chains, for one recording: channel types and harmonisation,
filters and channel QC (:func:`neurodecode.data.preprocess.preprocess_recording`), the
window grid and its labels (:mod:`neurodecode.data.windows`), window rejection
(:func:`neurodecode.data.artifacts.reject_windows`), scaling with the statistics of the
whole recording (µV for ``train_split``, whose statistics come from the training split:
:mod:`neurodecode.data.scaling`), clipping and window cutting. The cache build calls it once per recording;
``neurodecode.predict`` calls it on a recording that fits in one span, so the windows it
scores are the cached ones bit for bit.

A recording too long to hold in memory is preprocessed span by span (filters with margins,
channel QC per span); :func:`streamed_scaling` then computes the same recording-level
scaling statistics from the spans in bounded memory (exact order statistics from two
passes of histograms over the values' bits), and :func:`scaled_windows` cuts each span's windows with
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
_HALF = 1 << 16  # bins of a histogram of 16 of the 32 bits of a float32 sort key


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
        ``fixed`` (µV / ``scale_uv``; also ``train_split``'s µV, with ``scale_uv`` 1) or
        ``robust_zscore`` (``(x - centre) / spread``).
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
    """A :class:`Scaling` from ``(3, groups, 1)`` quartiles (None for ``fixed``).

    ``train_split`` keeps the signal in µV, unclipped: the statistics of a training split
    are applied when the windows are read (:mod:`neurodecode.data.scaling`).
    """
    if config.scaling.method == "train_split":
        return Scaling("fixed", None, None, 1.0, None)
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
    if config.scaling.method != "robust_zscore":
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
    if config.scaling.method != "robust_zscore":
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
    """``np.percentile`` (linear method) of each group's float32 values, in two passes.

    ``groups()`` yields, on every call, the same sequence of blocks, each a list of
    ``n_groups`` 1-D arrays. The values are mapped to 32-bit keys that sort as they do; a
    first pass counts the keys' upper 16 bits, which locates each wanted order statistic
    in one bin, and a second pass counts the lower 16 bits inside those bins, which gives
    its exact value. Memory: a few 65536-bin histograms per group, whatever the data.
    Returns ``(n_groups, len(q))`` (NaN for an empty group).
    """
    q = np.asarray(list(q), dtype=float)
    upper = np.zeros((n_groups, _HALF), dtype=np.int64)
    for block in groups():
        for g, values in enumerate(block):
            upper[g] += np.bincount(_sort_keys(values) >> 16, minlength=_HALF)
    counts = upper.sum(axis=1)
    last = np.maximum(counts - 1, 0)[:, None]
    position = q[None, :] / 100 * last
    below = np.floor(position).astype(np.int64)
    ranks = np.stack([below, np.minimum(below + 1, last)], axis=-1).reshape(n_groups, -1)
    cumulative = np.cumsum(upper, axis=1)
    bins = np.stack(
        [np.searchsorted(c, r, side="right") for c, r in zip(cumulative, ranks, strict=True)]
    )
    offsets = ranks - np.where(bins > 0, np.take_along_axis(cumulative, bins - 1, 1), 0)
    lower = {(g, int(b)): np.zeros(_HALF, np.int64) for g in range(n_groups) for b in bins[g]}
    for block in groups():
        for g, values in enumerate(block):
            keys = _sort_keys(values)
            for b in np.unique(bins[g]):
                inside = keys[(keys >> 16) == b]
                lower[g, int(b)] += np.bincount(inside & 0xFFFF, minlength=_HALF)
    keys = np.zeros(ranks.shape, dtype=np.uint32)
    for g, r in np.ndindex(ranks.shape):
        if counts[g]:
            low = np.searchsorted(np.cumsum(lower[g, int(bins[g, r])]), offsets[g, r], "right")
            keys[g, r] = (int(bins[g, r]) << 16) | int(low)
    values = _from_keys(keys).astype(float).reshape(n_groups, len(q), 2)
    a, b, t = values[..., 0], values[..., 1], position - below
    out = np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)
    out[counts == 0] = np.nan
    return out


def _sort_keys(values: np.ndarray) -> np.ndarray:
    """uint32 keys that sort as the float32 ``values`` do (sign bit flipped, or all bits)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))


def _from_keys(keys: np.ndarray) -> np.ndarray:
    """The float32 values of :func:`_sort_keys` keys."""
    keys = np.asarray(keys, dtype=np.uint32)
    return np.where(keys >> 31 == 1, keys & np.uint32(0x7FFFFFFF), ~keys).view(np.float32)


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
    qc.count_by_label(table["label"].to_numpy(), reasons != "")
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
