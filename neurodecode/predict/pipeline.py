"""The checkpoint's preprocessing replayed on one stretch of a recording, in bounded memory.

A long recording is processed in spans of whole windows. Each span is read with a margin on
both sides (at least half the FIR kernel), run through
:func:`neurodecode.data.preprocess.preprocess_recording` (channel types, harmonisation,
artifact checks, resampling, band-pass and notch, bad channels, reference), cropped back to
the span, scaled and clipped as :func:`neurodecode.data.cache.process_recording` does, and
cut into the model's windows. Inside the recording the margins make the filtered span equal
to filtering the whole recording; at its ends the reflection padding of the offline filter
applies, as in training.

Robust z-score statistics (``scaling.method: robust_zscore``) are those of the span
(``chunk_s`` seconds, default 10 minutes; the whole recording when it is shorter), not of
the whole recording as in training: the price of flat memory. Channel QC decisions (bad,
flat, line noise) are likewise taken per span.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Protocol

import numpy as np
import pandas as pd

from neurodecode.data import artifacts, preprocess
from neurodecode.data.recording import Recording
from neurodecode.errors import PreprocessingError
from neurodecode.predict.detector import Detector

MARGIN_SLACK_S = 1.0


class SampleSource(Protocol):
    """Where samples come from: a file (:class:`~neurodecode.data.io.RecordingReader`) or a
    stream buffer."""

    header: Recording
    n_times: int

    def read(self, start: int, stop: int) -> np.ndarray: ...


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
    preprocess.check_band(header, config.bandpass.l_freq, config.bandpass.h_freq, detector.sfreq)
    duration = n_raw / header.sfreq
    if duration < detector.window_s:
        raise PreprocessingError(
            f"recording lasts {duration:.2f} s, shorter than one {detector.window_s:g}-s "
            "window of the model",
            path=header.source,
            hint="the model needs at least one whole window; nothing to predict on",
        )


def process_span(
    detector: Detector,
    source: SampleSource,
    grid: Grid,
    out_start: int,
    out_stop: int,
    starts: np.ndarray,
) -> Span:
    """Preprocess output samples ``[out_start, out_stop)`` and cut the windows ``starts``.

    ``starts`` (output samples) must lie in the span with their whole window. The raw
    samples read reach ``grid.margin_raw`` beyond both ends where the source has them.
    """
    header = source.header
    raw_start, raw_stop = grid.raw_index(out_start), grid.raw_index(out_stop)
    read_start = max(0, raw_start - grid.margin_raw)
    read_stop = min(source.n_times, raw_stop + grid.margin_raw)
    recording = dataclasses.replace(
        header, signal=source.read(read_start, read_stop), annotations=header.annotations[:0]
    )
    qc = artifacts.RecordingQC(recording=str(header.source), source=str(header.source))
    prepared = preprocess.preprocess_recording(recording, detector.preprocess, qc, detector.target)
    rec = prepared.recording
    offset = int(round((raw_start - read_start) * grid.sfreq / grid.raw_sfreq))
    signal = rec.signal[:, offset : offset + (out_stop - out_start)]
    config = detector.preprocess
    scaled = preprocess.scale_signal(
        np.ascontiguousarray(signal),
        prepared.ch_mask,
        config.scaling.method,
        config.scaling.per,
        config.scaling.scale_uv,
    )
    if config.clip is not None:
        np.clip(scaled, -config.clip, config.clip, out=scaled)
    from neurodecode.data.windows import extract_windows

    local = np.asarray(starts, np.int64) - out_start
    x = extract_windows(scaled, local, grid.window)
    return Span(x=x, start_s=np.asarray(starts) / grid.sfreq, mask=prepared.ch_mask, qc=qc)


def filtered_segment(
    detector: Detector, source: SampleSource, grid: Grid, out_start: int, out_stop: int
) -> tuple[np.ndarray, list[str]]:
    """Harmonised, filtered, re-referenced µV samples of ``[out_start, out_stop)`` (for
    review figures): ``(signal, channel names)``."""
    raw_start, raw_stop = grid.raw_index(out_start), grid.raw_index(out_stop)
    read_start = max(0, raw_start - grid.margin_raw)
    read_stop = min(source.n_times, raw_stop + grid.margin_raw)
    recording = dataclasses.replace(
        source.header,
        signal=source.read(read_start, read_stop),
        annotations=source.header.annotations[:0],
    )
    qc = artifacts.RecordingQC(recording="", source=str(source.header.source))
    prepared = preprocess.preprocess_recording(recording, detector.preprocess, qc, detector.target)
    offset = int(round((raw_start - read_start) * grid.sfreq / grid.raw_sfreq))
    signal = prepared.recording.signal[:, offset : offset + (out_stop - out_start)]
    return signal, list(prepared.recording.ch_names)


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
