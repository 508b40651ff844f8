"""The training transform replayed on a recording, in bounded memory.

A recording that fits in one span (``chunk_s`` seconds, default 10 minutes) is read whole and
run through :func:`neurodecode.data.transform.transform_recording`, exactly as the cache
build runs it: the windows prediction scores are the cached ones, bit for bit.

A longer recording is processed in spans of whole windows. Each span is read with a margin on
both sides (at least half the FIR kernel), run through
:func:`neurodecode.data.preprocess.preprocess_recording` (channel types, harmonisation,
artifact checks, resampling, band-pass and notch, bad channels, reference) and cropped back
to the span. Inside the recording the margins make the filtered span equal (to rounding) to
filtering the whole recording; at its ends the reflection padding of the offline filter
applies, as in training. A first pass writes the preprocessed spans to a temporary file
(float32 at the model's rate: about 0.8 GB for 24 h of 18 channels at 128 Hz);
the robust z-score statistics of the whole recording are computed from it
(:func:`neurodecode.data.transform.streamed_scaling`, as training computes them on the
recording), and a second pass scales and cuts each span's windows with them. Channel QC
decisions (bad, flat, line noise) are taken per span in this case: the price of flat memory.

A live stream (:mod:`neurodecode.predict.stream`) has no recording yet: its spans are scaled
with their own statistics.

A model trained with ``scaling.method: train_split`` is given its training split's statistics
instead, from the preprocessing config it was exported with (:func:`model_input`): the
transform keeps µV, and the statistics are applied to the cut windows exactly as the data
module applies them to the cached ones. A config without them is refused.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from neurodecode.data import artifacts, preprocess, scaling, transform
from neurodecode.data.recording import Recording, empty_annotations
from neurodecode.errors import PreprocessingError, RecordingError
from neurodecode.predict.detector import Detector

MARGIN_SLACK_S = 1.0


class SampleSource(Protocol):
    """Where samples come from: a file (:class:`~neurodecode.data.io.RecordingReader`) or a
    stream buffer."""

    header: Recording
    n_times: int

    def read(self, start: int, stop: int) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class BadRun:
    """Consecutive raw samples ``[start, stop)`` holding NaN/inf in ``channels``."""

    start: int
    stop: int
    channels: tuple[str, ...]


class BridgedSource:
    """A file reader whose NaN/inf samples are bridged and remembered.

    Each channel's bad samples are replaced by a straight line between its neighbouring
    good samples (zeros when a read holds none), so the filters run, and the raw runs they
    occupied are kept (:meth:`bad_runs`) so that the windows holding them are left
    unscored: one bad sample costs the windows that contain it, not its span.

    Parameters
    ----------
    reader : neurodecode.data.io.RecordingReader
        Anything with ``header``, ``n_times`` and ``read(start, stop, finite=False)``.
    """

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.header: Recording = reader.header
        self.n_times: int = reader.n_times
        self._runs: list[BadRun] = []

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` (float32 volts) with NaN/inf bridged."""
        data = self.reader.read(start, stop, finite=False)
        bad = ~np.isfinite(data)
        if not bad.any():
            return data
        columns = bad.any(axis=0)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], columns.view(np.int8), [0]])))
        names = self.header.ch_names
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            rows = np.flatnonzero(bad[:, a:b].any(axis=1))
            self._runs.append(BadRun(start + int(a), start + int(b),
                                     tuple(names[i] for i in rows)))  # fmt: skip
        data = np.array(data, copy=True)
        for i in np.flatnonzero(bad.any(axis=1)):
            good = np.flatnonzero(~bad[i])
            fill = np.interp(np.flatnonzero(bad[i]), good, data[i, good]) if good.size else 0.0
            data[i, bad[i]] = fill
        return data

    def bad_runs(self) -> list[BadRun]:
        """The runs found so far, merged where reads overlapped, in file order."""
        merged: list[BadRun] = []
        for run in sorted(self._runs, key=lambda r: (r.start, r.stop)):
            if merged and run.start <= merged[-1].stop:
                last = merged[-1]
                channels = tuple(dict.fromkeys(last.channels + run.channels))
                merged[-1] = BadRun(last.start, max(last.stop, run.stop), channels)
            else:
                merged.append(run)
        return merged


@dataclasses.dataclass
class Span:
    """Windows of one span, ready for the model.

    Attributes
    ----------
    x : numpy.ndarray
        ``(n_windows, n_chans, n_times)`` scaled, clipped float32.
    start_s : numpy.ndarray
        Window starts in seconds from the recording start.
    mask : numpy.ndarray
        Bool per model channel: True where it carries data.
    qc : artifacts.RecordingQC
        Decisions taken on the span.
    """

    x: np.ndarray
    start_s: np.ndarray
    mask: np.ndarray
    qc: artifacts.RecordingQC


@dataclasses.dataclass(frozen=True)
class Grid:
    """Sample arithmetic between the recording's rate and the model's.

    ``ratio = model rate / recording rate = num / den``; output sample ``o`` sits at raw
    sample ``o * den / num``, an integer when ``o`` is a multiple of ``num``.
    """

    raw_sfreq: float
    sfreq: float
    n_raw: int
    window: int
    stride: int
    margin_raw: int

    @property
    def ratio(self) -> Fraction:
        return Fraction(self.sfreq / self.raw_sfreq).limit_denominator(1000)

    @property
    def n_out(self) -> int:
        """Samples of the whole recording at the model's rate."""
        return int(round(self.n_raw * self.sfreq / self.raw_sfreq))

    def raw_index(self, out: int) -> int:
        """Raw sample of output sample ``out``."""
        return int(round(out * self.raw_sfreq / self.sfreq))

    def window_starts(self, n_out: int | None = None) -> np.ndarray:
        """Starts (output samples) of every whole window in the first ``n_out`` samples."""
        n_out = self.n_out if n_out is None else n_out
        return np.arange(0, n_out - self.window + 1, self.stride, dtype=np.int64)

    def chunk(self, chunk_s: float) -> int:
        """Output samples per span: about ``chunk_s``, a multiple of the stride and of the
        resampling numerator (so that spans start on raw samples)."""
        step = math.lcm(self.stride, self.ratio.numerator)
        return max(step, int(round(chunk_s * self.sfreq / step)) * step)


def make_grid(detector: Detector, raw_sfreq: float, n_raw: int) -> Grid:
    """The :class:`Grid` of a recording for ``detector``, with the filter margin."""
    config = detector.preprocess
    notch = [50.0] if config.notch.line_freq else []
    kernel = preprocess.design_filter(
        detector.sfreq,
        config.bandpass.l_freq,
        config.bandpass.h_freq,
        tuple(preprocess.line_frequencies(notch[0], detector.sfreq, False, 1.0) if notch else ()),
        config.notch.width,
    )
    half_s = 0.0 if kernel is None else (len(kernel) // 2) / detector.sfreq
    margin = int(math.ceil((half_s + MARGIN_SLACK_S) * raw_sfreq))
    step = Fraction(detector.sfreq / raw_sfreq).limit_denominator(1000).denominator
    margin += -margin % step  # a whole number of output samples
    return Grid(raw_sfreq, detector.sfreq, n_raw, detector.n_times, detector.stride, margin)


def check_recording(detector: Detector, header: Recording, n_raw: int) -> None:
    """Refuse, before reading samples, a rate the filters cannot use or a too-short file.

    Raises
    ------
    PreprocessingError
        With the file, the problem and what to do.
    """
    config = detector.preprocess
    split_statistics(detector)  # refused here, before any sample is read, if missing
    preprocess.check_band(header, config.bandpass.l_freq, config.bandpass.h_freq, detector.sfreq)
    duration = n_raw / header.sfreq
    if duration < detector.window_s:
        raise PreprocessingError(
            f"recording lasts {duration:.2f} s, shorter than one {detector.window_s:g}-s "
            "window of the model",
            path=header.source,
            hint="the model needs at least one whole window; nothing to predict on",
        )


def serving_config(detector: Detector) -> DictConfig:
    """The checkpoint's preprocessing (sliding windows of the model) without labels."""
    return OmegaConf.merge(
        detector.preprocess, {"windows": {"background": None, "label_map": None}}
    )


def plan_spans(grid: Grid, chunk_s: float) -> list[tuple[int, int, np.ndarray]]:
    """Spans ``(out_start, out_stop, window indices)`` of about ``chunk_s`` seconds.

    Each span reaches to the end of its last window; a short tail is folded into the
    previous span; a recording of one span is the whole recording.
    """
    starts = grid.window_starts()
    chunk = grid.chunk(chunk_s)
    bounds = list(range(0, grid.n_out, chunk))
    if len(bounds) > 1 and grid.n_out - bounds[-1] < chunk // 2:
        bounds.pop()  # fold a short tail into the previous span
    bounds.append(grid.n_out)
    if len(bounds) == 2:
        return [(0, grid.n_out, np.arange(len(starts)))]
    spans = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        inside = np.flatnonzero((starts >= lo) & (starts < hi))
        if inside.size:
            spans.append((lo, int(starts[inside[-1]]) + grid.window, inside))
    return spans


def whole_recording(detector: Detector, source: SampleSource) -> Span:
    """Every window of the recording through the training transform (all kept, scored)."""
    header = source.header
    recording = dataclasses.replace(
        header, signal=source.read(0, source.n_times), annotations=empty_annotations()
    )
    qc = artifacts.RecordingQC(recording=str(header.source), source=str(header.source))
    shard = transform.transform_recording(
        recording, serving_config(detector), {}, qc, detector.target, drop_rejected=False
    )
    x = model_input(detector, shard.x, shard.ch_mask)
    return Span(x=x, start_s=shard.table["start_s"].to_numpy(), mask=shard.ch_mask, qc=qc)


def split_statistics(detector: Detector) -> scaling.SplitStatistics | None:
    """The training-split scaling statistics of the detector's preprocessing, if it uses
    them (:func:`neurodecode.data.scaling.recorded_statistics`: refused when missing)."""
    config = OmegaConf.to_container(detector.preprocess, resolve=True)
    return scaling.recorded_statistics(config, len(detector.ch_names), where=detector.source)


def model_input(detector: Detector, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Windows ``x`` from the transform as the model takes them: unchanged, or scaled with
    the training-split statistics (as :class:`~neurodecode.data.scaling.ScaledWindows`)."""
    statistics = split_statistics(detector)
    return x if statistics is None else statistics.apply(x, mask)


@dataclasses.dataclass
class Preprocessed:
    """One span preprocessed: µV ``signal`` of the span (None once stored on disk), channel
    ``mask``, names, QC."""

    signal: np.ndarray | None
    mask: np.ndarray
    ch_names: list[str]
    qc: artifacts.RecordingQC


def preprocess_span(
    detector: Detector, source: SampleSource, grid: Grid, out_start: int, out_stop: int
) -> Preprocessed:
    """Harmonised, filtered, re-referenced µV samples of ``[out_start, out_stop)``.

    The raw samples read reach ``grid.margin_raw`` beyond both ends where the source has them.
    """
    header = source.header
    raw_start, raw_stop = grid.raw_index(out_start), grid.raw_index(out_stop)
    read_start = max(0, raw_start - grid.margin_raw)
    read_stop = min(source.n_times, raw_stop + grid.margin_raw)
    recording = dataclasses.replace(
        header, signal=source.read(read_start, read_stop), annotations=empty_annotations()
    )
    qc = artifacts.RecordingQC(recording=str(header.source), source=str(header.source))
    prepared = preprocess.preprocess_recording(recording, detector.preprocess, qc, detector.target)
    offset = int(round((raw_start - read_start) * grid.sfreq / grid.raw_sfreq))
    signal = prepared.recording.signal[:, offset : offset + (out_stop - out_start)]
    return Preprocessed(
        np.ascontiguousarray(signal), prepared.ch_mask, list(prepared.recording.ch_names), qc
    )


def process_span(
    detector: Detector,
    source: SampleSource,
    grid: Grid,
    out_start: int,
    out_stop: int,
    starts: np.ndarray,
) -> Span:
    """Windows ``starts`` (output samples, whole windows inside ``[out_start, out_stop)``),
    scaled with the statistics of the span itself (for live streams)."""
    span = preprocess_span(detector, source, grid, out_start, out_stop)
    config = detector.preprocess
    scaled = transform.recording_scaling(config, span.signal, span.mask)
    local = np.asarray(starts, np.int64) - out_start
    x = transform.scaled_windows(span.signal, span.mask, local, grid.window, scaled, config.dtype)
    x = model_input(detector, x, span.mask)
    return Span(x=x, start_s=np.asarray(starts) / grid.sfreq, mask=span.mask, qc=span.qc)


def filtered_segment(
    detector: Detector, source: SampleSource, grid: Grid, out_start: int, out_stop: int
) -> tuple[np.ndarray, list[str]]:
    """Harmonised, filtered, re-referenced µV samples of ``[out_start, out_stop)`` (for
    review figures): ``(signal, channel names)``."""
    span = preprocess_span(detector, source, grid, out_start, out_stop)
    return span.signal, span.ch_names


def in_order(function: Callable[..., Any], items: Iterable[tuple], overlap: bool) -> Iterator[Any]:
    """``function(*item)`` for each item, in order, or the data error that stopped it.

    With ``overlap`` the next item is computed in one background thread while the caller
    works on the current one (filtering, FFTs and the model release the GIL, so on two
    cores both run side by side). At most two results are held.
    """

    def guarded(*item: Any) -> Any:
        try:
            return function(*item)
        except (PreprocessingError, RecordingError) as err:
            return err

    items = list(items)
    if not overlap:
        yield from (guarded(*item) for item in items)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict-span") as pool:
        pending = pool.submit(guarded, *items[0]) if items else None
        for k in range(len(items)):
            current = pending.result()
            pending = pool.submit(guarded, *items[k + 1]) if k + 1 < len(items) else None
            yield current


SpanResult = Span | PreprocessingError | RecordingError


def recording_windows(
    detector: Detector,
    source: SampleSource,
    grid: Grid,
    spans: list[tuple[int, int, np.ndarray]],
    overlap: bool = False,
) -> Iterator[SpanResult]:
    """The windows of each span of :func:`plan_spans` (or the error that stopped it), in
    order, scaled with the statistics of the whole recording as in training."""
    if len(spans) == 1 and spans[0][1] == grid.n_out:
        yield from in_order(whole_recording, [(detector, source)], False)
        return
    with tempfile.TemporaryDirectory(prefix="neurodecode-predict-") as folder:
        store = _SpanStore(Path(folder) / "spans.f32")
        work = ((detector, source, grid, lo, hi) for lo, hi, _ in spans)
        preprocessed = []
        for k, span in enumerate(in_order(preprocess_span, work, overlap)):
            if isinstance(span, Preprocessed):
                store.write(k, span.signal)
                span = dataclasses.replace(span, signal=None)
            preprocessed.append(span)
        ok = [(k, p) for k, p in enumerate(preprocessed) if isinstance(p, Preprocessed)]
        owned = [_owned_samples(spans, k) for k, _ in ok]

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for (k, span), n in zip(ok, owned, strict=True):
                yield store.read(k)[:, :n], span.mask

        scaled = transform.streamed_scaling(detector.preprocess, blocks, len(detector.ch_names))

        def windows(k: int) -> SpanResult:
            span, (lo, _, inside) = preprocessed[k], spans[k]
            if not isinstance(span, Preprocessed):
                return span
            starts = grid.window_starts()[inside]
            x = transform.scaled_windows(store.read(k), span.mask, starts - lo, grid.window,
                                         scaled, detector.preprocess.dtype)  # fmt: skip
            x = model_input(detector, x, span.mask)
            return Span(x=x, start_s=starts / grid.sfreq, mask=span.mask, qc=span.qc)

        yield from in_order(windows, [(k,) for k in range(len(spans))], overlap)


def _owned_samples(spans: list[tuple[int, int, np.ndarray]], k: int) -> int:
    """Samples of span ``k`` not also in span ``k + 1`` (each sample counts once)."""
    lo, hi, _ = spans[k]
    return (min(hi, spans[k + 1][0]) if k + 1 < len(spans) else hi) - lo


class _SpanStore:
    """Preprocessed spans in a temporary file, read back one at a time (flat memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.layout: dict[int, tuple[int, tuple[int, int]]] = {}  # span → (offset, shape)
        self._end = 0

    def write(self, k: int, signal: np.ndarray) -> None:
        with open(self.path, "ab") as file:
            signal.astype(np.float32, copy=False).tofile(file)
        self.layout[k] = (self._end, signal.shape)
        self._end += signal.size * 4

    def read(self, k: int) -> np.ndarray:
        offset, shape = self.layout[k]
        data = np.fromfile(self.path, np.float32, count=shape[0] * shape[1], offset=offset)
        return data.reshape(shape)


def qc_summary(qcs: list[artifacts.RecordingQC]) -> dict:
    """Channel decisions over all spans: how many spans marked each channel bad or missing."""
    bad: dict[str, int] = {}
    for qc in qcs:
        for name in qc.bad_channels:
            bad[name] = bad.get(name, 0) + 1
    notches = sorted({qc.notch_freq for qc in qcs if qc.notch_freq}, key=float)
    return {
        "spans": len(qcs),
        "missing_channels": sorted({c for qc in qcs for c in qc.missing_channels}),
        "bad_channel_spans": bad,
        "notch_hz": notches,
    }


def per_second(
    probabilities: np.ndarray, start_s: np.ndarray, window_s: float, duration_s: float
) -> pd.DataFrame:
    """Probability for each whole second: the mean over the windows covering that second.

    Seconds covered by no window (the tail after the last whole window) take the nearest
    window's value; seconds whose windows all failed are NaN.
    """
    n = int(math.ceil(duration_s - 1e-9))
    seconds = np.arange(n, dtype=float)
    total = np.zeros(n)
    count = np.zeros(n)
    valid = np.isfinite(probabilities)
    for p, s in zip(probabilities[valid], start_s[valid], strict=True):
        first, last = int(math.floor(s)), min(n, int(math.ceil(s + window_s)))
        total[first:last] += p
        count[first:last] += 1
    out = np.divide(total, count, out=np.full(n, np.nan), where=count > 0)
    uncovered = count == 0
    if uncovered.any() and len(start_s):
        centres = np.asarray(start_s) + window_s / 2
        nearest = np.abs(seconds[uncovered, None] + 0.5 - centres[None, :]).argmin(axis=1)
        out[uncovered] = np.asarray(probabilities)[nearest]
    return pd.DataFrame({"second": seconds.astype(int), "p_seizure": out})


def windows_holding(grid: Grid, runs: Iterable[BadRun]) -> np.ndarray:
    """Bool per window of ``grid``: True where the window contains a sample of ``runs``."""
    starts = grid.window_starts() / grid.sfreq
    window_s = grid.window / grid.sfreq
    hit = np.zeros(len(starts), dtype=bool)
    for run in runs:
        a, b = run.start / grid.raw_sfreq, run.stop / grid.raw_sfreq
        hit |= (starts < b) & (starts + window_s > a)
    return hit


def unscored_spans(
    probabilities: np.ndarray, start_s: np.ndarray, window_s: float, duration_s: float
) -> list[tuple[float, float]]:
    """``(start_s, stop_s)`` of the recording time covered by no scored window.

    The tail after the last whole window counts as covered when that window was scored
    (:func:`per_second` gives it that window's value).
    """
    gaps, covered = [], 0.0
    for start, p in zip(start_s, probabilities, strict=True):
        if not np.isfinite(p):
            continue
        if start > covered:
            gaps.append((covered, float(start)))
        covered = max(covered, float(start) + window_s)
    last_end = float(start_s[-1]) + window_s if len(start_s) else 0.0
    if covered < last_end:
        gaps.append((covered, duration_s))
    return gaps
