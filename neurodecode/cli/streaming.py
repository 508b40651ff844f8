"""``neurodecode predict stream=...``: seizure events from a live stream, printed as they
are decided.

``stream=lsl:<name>`` reads an LSL outlet (``mne-lsl``); ``stream=file:<recording>``
replays a recording file as a live stream, ``speed`` times real time (0: as fast as it
can be read). Each event onset and offset is printed once it is certain, with the stream
time at which it was decided; the first line states the latency bound.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from omegaconf import DictConfig

from neurodecode.data.io import open_recording
from neurodecode.errors import ConfigError
from neurodecode.predict.detector import Detector
from neurodecode.predict.stream import StreamDetector, StreamEvent, lsl_chunks, replay_chunks

SOURCES = ("lsl", "file")


def parse_source(spec: str) -> tuple[str, str]:
    """``"lsl:<name>"`` or ``"file:<path>"`` → (kind, name); anything else is refused."""
    kind, _, name = str(spec).partition(":")
    if kind not in SOURCES or not name:
        raise ConfigError(
            f"stream={spec!r} names no source",
            hint="stream=lsl:<LSL stream name> or stream=file:<recording file>",
        )
    return kind, name


def open_stream(cfg: DictConfig) -> tuple[list[str], list[str] | None, float, Iterator[np.ndarray]]:
    """Channels, channel types, rate and chunks (volts) of ``cfg.stream``."""
    kind, name = parse_source(cfg.stream)
    if kind == "lsl":
        names, sfreq, chunks = lsl_chunks(name)
        return names, None, sfreq, chunks
    reader = open_recording(name)
    chunks = replay_chunks(reader, speed=float(cfg.speed))
    return list(reader.header.ch_names), list(reader.header.ch_types), reader.header.sfreq, chunks


def describe(event: StreamEvent) -> str:
    """One printed line per event."""
    at = f"{event.onset_s:8.1f} s" if event.kind == "onset" else f"{event.offset_s:8.1f} s"
    extent = (
        "" if event.kind == "onset" else f"  (event {event.onset_s:.1f}-{event.offset_s:.1f} s)"
    )
    return (f"{event.kind:<6} at {at}  decided at {event.emitted_s:8.1f} s "
            f"(+{event.delay_s:.1f} s)  confidence {event.confidence:.3f}{extent}")  # fmt: skip


def run_stream(detector: Detector, cfg: DictConfig) -> int:
    """Detect events on ``cfg.stream`` and print each as it is decided; return 0."""
    names, types, sfreq, chunks = open_stream(cfg)
    stream = StreamDetector(detector, names, sfreq, ch_types=types,
                            allow_missing_channels=bool(cfg.allow_missing_channels))  # fmt: skip
    print(f"streaming {cfg.stream}: {len(names)} channels at {sfreq:g} Hz; an event is "
          f"decided at most {stream.latency_s:.1f} s after it starts", flush=True)  # fmt: skip
    n_events = 0
    for event in stream.run(chunks):
        print(describe(event), flush=True)
        n_events += event.kind == "onset"
    print(f"end of stream after {stream.received_s:.1f} s: {n_events} event(s)")
    return 0
