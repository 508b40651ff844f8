"""Seizure detection on a live stream of samples, with a stated latency.

:class:`StreamDetector` takes chunks of samples (volts, ``(n_chans, n)``) as they arrive,
from any Python iterable, from an LSL outlet (:func:`lsl_chunks`, through ``mne-lsl``
where installed) or from a file replayed in real time or faster (:func:`replay_chunks`),
and returns events as soon as they are certain:

- a window is scored once the samples half an FIR kernel past its end have arrived (the
  filter is zero-phase, as in training), through the same span pipeline as offline
  prediction (:mod:`neurodecode.predict.pipeline`) run on the trailing ``context_s``
  seconds, whose statistics scale the signal (a live stream has no whole recording whose
  statistics could be used, as offline prediction does);
- an event **onset** is emitted when the event has lasted ``min_duration_s`` and the
  centred smoothing has its look-ahead windows; its **offset** once no window within the
  merge gap can extend it.

:attr:`StreamDetector.latency_s` bounds the delay from a seizure's detected onset to its
emission, for chunks no longer than one window stride.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from neurodecode.data.io import VOLTS_PER_UNIT, RecordingReader
from neurodecode.data.montage import channel_positions
from neurodecode.data.recording import Recording
from neurodecode.errors import ConfigError, NeurodecodeError, RecordingError
from neurodecode.evaluation.seizure import probabilities_to_events
from neurodecode.predict import pipeline
from neurodecode.predict.detector import Detector
from neurodecode.predict.offline import check_channels


@dataclasses.dataclass(frozen=True)
class StreamEvent:
    """An event onset or offset, as emitted.

    Attributes
    ----------
    kind : {"onset", "offset"}
    onset_s, offset_s : float
        Event bounds in seconds from the stream start (``offset_s`` so far, for an onset).
    confidence : float
        Highest window probability within the event so far.
    emitted_s : float
        Stream time (seconds of samples received) at which it was emitted.
    """

    kind: str
    onset_s: float
    offset_s: float
    confidence: float
    emitted_s: float

    @property
    def delay_s(self) -> float:
        """Seconds between the time the event marks and its emission."""
        return self.emitted_s - (self.onset_s if self.kind == "onset" else self.offset_s)


class _Buffer:
    """The last samples of the stream, addressed by absolute sample index."""

    def __init__(self, header: Recording, capacity: int) -> None:
        self.header = header
        self.capacity = capacity
        self.data = np.zeros((header.n_chans, 0), np.float32)
        self.first = 0  # absolute index of data[:, 0]

    @property
    def n_times(self) -> int:
        return self.first + self.data.shape[1]

    def append(self, samples: np.ndarray) -> None:
        self.data = np.concatenate([self.data, samples.astype(np.float32, copy=False)], axis=1)
        excess = self.data.shape[1] - self.capacity
        if excess > 0:
            self.data = self.data[:, excess:]
            self.first += excess

    def read(self, start: int, stop: int) -> np.ndarray:
        if start < self.first:
            raise RecordingError(
                f"samples from {start} were already dropped from the stream buffer",
                path=self.header.source,
            )
        return self.data[:, start - self.first : stop - self.first]


class StreamDetector:
    """Score a live stream window by window and emit seizure events.

    Parameters
    ----------
    detector : Detector
        From :func:`~neurodecode.predict.detector.load_detector`.
    ch_names : sequence of str
        The stream's channels, in the order of the rows pushed.
    sfreq : float
        The stream's sampling rate (Hz).
    ch_types : sequence of str, optional
        MNE channel types (default all ``"eeg"``).
    context_s : float
        Trailing seconds preprocessed with each new window (robust-scaling statistics).
    allow_missing_channels : bool
        As in :func:`~neurodecode.predict.offline.predict_recording`.
    """

    def __init__(
        self,
        detector: Detector,
        ch_names: Sequence[str],
        sfreq: float,
        *,
        ch_types: Sequence[str] | None = None,
        context_s: float = 300.0,
        allow_missing_channels: bool = False,
    ) -> None:
        names = [str(n) for n in ch_names]
        self.header = Recording(
            signal=np.zeros((len(names), 0), np.float32),
            sfreq=float(sfreq),
            ch_names=names,
            ch_types=list(ch_types) if ch_types is not None else ["eeg"] * len(names),
            source=Path("<stream>"),
            ch_pos=channel_positions(names),
        )
        pipeline.preprocess.check_band(
            self.header,
            detector.preprocess.bandpass.l_freq,
            detector.preprocess.bandpass.h_freq,
            detector.sfreq,
        )
        self.missing_channels = check_channels(detector, self.header, allow_missing_channels)
        self.detector = detector
        self.grid = pipeline.make_grid(detector, float(sfreq), 0)
        self.context = max(self.grid.chunk(context_s), detector.n_times)
        capacity = int(math.ceil((self.context + detector.n_times) / self._ratio)) + 4 * (
            self.grid.margin_raw
        )
        self.buffer = _Buffer(self.header, capacity)
        self.starts: list[int] = []  # output samples of the scored windows
        self.probabilities: list[float] = []
        self._next = 0  # start (output samples) of the next window to score
        self._anchor = 0  # first window index that may still belong to a new event
        self._open: tuple[float, float] | None = None
        self._closed_until = -math.inf
        self.events: list[StreamEvent] = []

    @property
    def _ratio(self) -> float:
        return self.grid.sfreq / self.grid.raw_sfreq

    @property
    def latency_s(self) -> float:
        """Upper bound on the delay from a detected onset to its emission (seconds)."""
        d, post = self.detector, self.detector.post
        return (
            max(post.min_duration_s, d.window_s)
            + (post.smoothing_windows // 2) * d.stride_s
            + self.grid.margin_raw / self.grid.raw_sfreq
            + d.stride_s
        )

    @property
    def received_s(self) -> float:
        """Seconds of samples received."""
        return self.buffer.n_times / self.grid.raw_sfreq

    def push(self, samples: np.ndarray) -> list[StreamEvent]:
        """Add ``(n_chans, n)`` samples in volts; return the events they complete."""
        samples = np.asarray(samples)
        if samples.ndim != 2 or samples.shape[0] != self.header.n_chans:
            raise ConfigError(
                f"expected chunks of shape ({self.header.n_chans}, n), got {samples.shape}"
            )
        self.buffer.append(samples)
        settled = int(math.floor((self.buffer.n_times - self.grid.margin_raw) * self._ratio))
        self._score(settled, final=False)
        return self._update_events(final=False)

    def run(self, chunks: Iterable[np.ndarray]) -> Iterator[StreamEvent]:
        """Push every chunk (volts), then close: the events in the order they are emitted."""
        for chunk in chunks:
            yield from self.push(chunk)
        yield from self.close()

    def close(self) -> list[StreamEvent]:
        """End of stream: score the remaining windows and close an open event."""
        grid = dataclasses.replace(self.grid, n_raw=self.buffer.n_times)
        self._score(grid.n_out, final=True)
        return self._update_events(final=True)

    def _score(self, out_end: int, final: bool) -> None:
        d, grid = self.detector, dataclasses.replace(self.grid, n_raw=self.buffer.n_times)
        last = out_end - d.n_times
        if last < self._next:
            return
        starts = np.arange(self._next, last + 1, d.stride, dtype=np.int64)
        hi = int(starts[-1]) + d.n_times
        step = grid.ratio.numerator
        lo = max(0, min(int(starts[0]), hi - self.context))
        lo -= lo % step
        if self.buffer.first:  # the span and its margin must still be in the buffer
            oldest = int(math.ceil((self.buffer.first + grid.margin_raw) * self._ratio))
            lo = max(lo, oldest + (-oldest % step))
        span = pipeline.process_span(d, self.buffer, grid, lo, hi, starts)
        p = d.probabilities(span.x, span.mask)
        self.starts.extend(int(s) for s in starts)
        self.probabilities.extend(float(v) for v in p)
        self._next = int(starts[-1]) + d.stride

    def _update_events(self, final: bool) -> list[StreamEvent]:
        d, post = self.detector, self.detector.post
        n = len(self.probabilities)
        settled = n if final else n - post.smoothing_windows // 2
        if settled <= self._anchor:
            return []
        lead = post.smoothing_windows // 2
        a0 = max(0, self._anchor - lead)
        starts_s = np.asarray(self.starts[a0:settled], float) / d.sfreq
        probs = np.asarray(self.probabilities[a0:settled])
        found = [
            (a, b)
            for a, b in probabilities_to_events(probs, starts_s, d.window_s, post)
            if a >= self._closed_until
        ]
        now = self.received_s
        emitted = []
        settled_end_s = starts_s[-1] + d.window_s
        for a, b in found:
            confidence = float(probs[(starts_s < b) & (starts_s + d.window_s > a)].max())
            if self._open is None:
                self._open = (a, b)
                emitted.append(StreamEvent("onset", a, b, confidence, now))
            if final or settled_end_s > b + post.merge_gap_s + d.window_s:
                emitted.append(StreamEvent("offset", self._open[0], b, confidence, now))
                self._open = None
                self._closed_until = b
                self._anchor = int(np.searchsorted(self.starts, b * d.sfreq))
            else:
                self._open = (self._open[0], b)
                break
        if self._open is None:
            # windows that an event still forming (shorter than min_duration_s) may cover
            reach = post.merge_gap_s + post.min_duration_s + d.window_s
            keep = post.smoothing_windows + int(math.ceil(reach / d.stride_s)) + 2
            self._anchor = max(self._anchor, settled - keep)
        self.events.extend(emitted)
        return emitted


def stream_events(
    detector: Detector,
    chunks: Iterable[np.ndarray],
    ch_names: Sequence[str],
    sfreq: float,
    **options: object,
) -> Iterator[StreamEvent]:
    """Run a :class:`StreamDetector` over ``chunks`` (volts), yielding events as emitted."""
    stream = StreamDetector(detector, ch_names, sfreq, **options)  # type: ignore[arg-type]
    yield from stream.run(chunks)


#: Powers of ten accepted as units (mne-lsl stores a unit given as a number as its exponent).
_POWERS = range(-15, 4)
_KNOWN_UNITS = (
    "known units (any case): "
    + ", ".join(VOLTS_PER_UNIT)
    + ", or a power of ten of volts such as '-6'"
)


def _volts_per_unit(unit: object) -> float | None:
    text = "" if unit is None else str(unit).strip().lower()
    try:
        power = int(text)
    except ValueError:
        return VOLTS_PER_UNIT.get(text)
    return 10.0**power if power in _POWERS else None


def channel_scales(
    stream: str,
    ch_names: Sequence[str],
    declared: Sequence[str | None] | None,
    units: str | Mapping[str, str] | None = None,
) -> np.ndarray:
    """Volts per sample unit of each channel of a stream, from its declared units.

    A unit is one of :data:`neurodecode.data.io.VOLTS_PER_UNIT` (any case: ``"uV"``,
    ``"µV"``, ``"microvolts"``, ...) or a power of ten of volts written as an integer (``"-6"``,
    as mne-lsl stores units given as numbers).

    Parameters
    ----------
    stream : str
        The stream's name, for error messages.
    ch_names : sequence of str
        The stream's channels, in order.
    declared : sequence of str or None, or None
        The units the stream declares per channel (``None`` or ``""`` where it declares none).
    units : str or mapping of str to str, optional
        Overrides: one unit for every channel (``"uV"``) or ``{channel: unit}`` for some.

    Returns
    -------
    numpy.ndarray
        ``(n_chans,)`` float32 factors: multiply the samples by them to get volts.

    Raises
    ------
    ConfigError
        If an override names an unknown unit or a channel the stream does not have.
    RecordingError
        If a channel's unit is unknown or missing (and not overridden); the message names the
        stream, the channels and their units.
    """
    names = [str(n) for n in ch_names]
    given = list(declared or [])[: len(names)]
    given += [None] * (len(names) - len(given))
    overrides = dict.fromkeys(names, units) if isinstance(units, str) else dict(units or {})
    strangers = sorted(set(overrides) - set(names))
    if strangers:
        raise ConfigError(
            f"units= names channel(s) {strangers} that stream {stream!r} does not have",
            hint=f"its channels: {', '.join(names)}",
        )
    bad_overrides = {unit for unit in overrides.values() if _volts_per_unit(unit) is None}
    if bad_overrides:
        raise ConfigError(
            f"units= gives unknown voltage unit(s) {sorted(map(str, bad_overrides))}",
            hint=_KNOWN_UNITS,
        )
    effective = [overrides.get(n, unit) for n, unit in zip(names, given, strict=True)]
    scales = [_volts_per_unit(unit) for unit in effective]
    unknown: dict[str, list[str]] = {}
    for name, unit, scale in zip(names, effective, scales, strict=True):
        if scale is None:
            unknown.setdefault(repr(unit) if str(unit or "").strip() else "none", []).append(name)
    if unknown:
        listed = "; ".join(
            f"{_preview(chans)} declare{'s' if len(chans) == 1 else ''} {unit}"
            for unit, chans in unknown.items()
        )
        example = next(iter(unknown.values()))[0]
        raise RecordingError(
            f"the units of {sum(map(len, unknown.values()))} channel(s) are unknown or missing, "
            f"so their samples cannot be converted to volts: {listed}",
            path=f"LSL stream {stream!r}",
            hint=f"declare them: lsl_chunks({stream!r}, units='uV') for every channel, or "
            f"units={{{example!r}: 'uV'}} for some; {_KNOWN_UNITS}",
        )
    return np.asarray(scales, np.float32)


def _preview(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def lsl_chunks(
    name: str,
    *,
    timeout: float = 5.0,
    max_samples: int = 1024,
    units: str | Mapping[str, str] | None = None,
) -> tuple[list[str], float, Iterator[np.ndarray]]:
    """Connect to the LSL stream ``name`` (``mne-lsl``); return channels, rate and chunks.

    Samples are converted to volts from the stream's declared units (see
    :func:`channel_scales`); a stream whose units are unknown or missing is refused unless
    ``units=`` declares them (``"uV"`` for every channel, or ``{channel: unit}``).

    Raises
    ------
    ConfigError
        If ``mne-lsl`` is not installed, or ``units=`` is invalid.
    RecordingError
        If no stream of that name answers within ``timeout`` seconds, or the units of some
        channels are unknown or missing.
    """
    try:
        from mne_lsl.lsl import StreamInlet, resolve_streams
    except ImportError as err:
        raise ConfigError("streaming from LSL needs mne-lsl", hint="pip install mne-lsl") from err
    found = resolve_streams(timeout=timeout, name=name)
    if not found:
        raise RecordingError(f"no LSL stream named {name!r} found within {timeout:g} s")
    inlet = StreamInlet(found[0])
    inlet.open_stream(timeout=timeout)
    info = inlet.get_sinfo()
    labels = info.get_channel_names() or [None] * info.n_channels
    names = [str(label) if label else f"ch{i}" for i, label in enumerate(labels)]
    try:
        scale = channel_scales(name, names, info.get_channel_units(), units)
    except NeurodecodeError:
        inlet.close_stream()
        raise

    def chunks() -> Iterator[np.ndarray]:
        while True:
            data, _ = inlet.pull_chunk(timeout=timeout, max_samples=max_samples)
            if len(data):
                yield np.asarray(data, np.float32).T * scale[:, None]

    return names, float(info.sfreq), chunks()


def replay_chunks(
    reader: RecordingReader,
    *,
    chunk_s: float = 1.0,
    speed: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[np.ndarray]:
    """A recording file sent as a live stream: chunks of ``chunk_s`` seconds (volts),
    each released when ``speed`` times real time has reached its end (``speed`` 0: as
    fast as they can be read)."""
    if chunk_s <= 0 or speed < 0:
        raise ConfigError(f"replay needs chunk_s > 0 and speed >= 0, got {chunk_s}, {speed}")
    step = max(1, round(chunk_s * reader.header.sfreq))
    started = clock()
    for start in range(0, reader.n_times, step):
        stop = min(start + step, reader.n_times)
        if speed:
            sleep(max(0.0, stop / reader.header.sfreq / speed - (clock() - started)))
        yield reader.read(start, stop)
