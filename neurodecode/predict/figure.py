"""Review figures of one recording, drawn at fixed clinical scales.

The probability over the whole recording (threshold, detected events, reference
annotations), and EEG pages around detections. Every EEG page has the same sensitivity
(:data:`SENSITIVITY_UV_PER_MM` µV per mm of trace), channel spacing and time base
(:data:`TIMEBASE_MM_PER_S`), whatever the amplitude of the recording: the axes are placed in
millimetres, so a page printed, or shown in the HTML report at 100 % zoom, has the stated
scales. Times are seconds from the start of the recording and clock time (the start in the
file's header plus that offset).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator
from PIL import Image

from neurodecode.files import write_atomic
from neurodecode.hub.card import provenance_lines, simulated_warning
from neurodecode.predict.pipeline import filtered_segment

MAX_EVENTS_SHOWN = 4  # EEG pages in the review figure
BEFORE_S, AFTER_S = 10.0, 20.0  # EEG shown around an event onset
SENSITIVITY_UV_PER_MM = 20.0  # trace deflection (paediatric scalp EEG reads well at 15-30)
CHANNEL_MM = 8.0  # between channel baselines: 160 µV at 20 µV/mm
TIMEBASE_MM_PER_S = 8.0  # a 30-s page is 240 mm wide
SCALE_BAR_UV, SCALE_BAR_S = 100.0, 1.0
DPI = 100
PNG_COLOURS = 64  # greys of the antialiased traces, the marking colours: a third of RGBA
MM = 1 / 25.4  # inches
# page margins (mm): channel names on the left, scale bar on the right, title and time axis
LEFT_MM, RIGHT_MM, TOP_MM, BOTTOM_MM = 20.0, 22.0, 12.0, 14.0
TIMELINE_MM = 42.0
REFERENCE_COLOUR, EVENT_COLOUR = "tab:blue", "tab:red"


@dataclass(frozen=True)
class Shown:
    """A stretch shown on an EEG page: a detected event, or the best window of a recording
    without one."""

    number: int | None  # the event's number in the events table (1-based); None: no event
    onset_s: float
    offset_s: float
    confidence: float

    @property
    def label(self) -> str:
        return f"event {self.number}" if self.number else "no event: highest-probability window"


def shown_events(result: Any, window_s: float, limit: int) -> list[Shown]:
    """Up to ``limit`` events, the most confident, in time order; with no event, the window
    of highest probability."""
    order = np.argsort(result.confidence, kind="stable")[::-1][:limit]
    shown = [
        Shown(int(i) + 1, *result.events[i], float(result.confidence[i])) for i in sorted(order)
    ]
    if not shown and np.isfinite(result.probabilities).any():
        best = int(np.nanargmax(result.probabilities))
        onset = float(result.start_s[best])
        shown = [Shown(None, onset, onset + window_s, float(result.probabilities[best]))]
    return shown


def reference_events(annotations: pd.DataFrame | None) -> list[tuple[float, float, str]]:
    """``(onset_s, offset_s, description)`` of the recording's own annotations (the file's,
    or a BIDS events file beside it)."""
    if annotations is None or annotations.empty:
        return []
    return [
        (float(a), float(a) + float(d), str(text))
        for a, d, text in zip(
            annotations["onset"], annotations["duration"], annotations["description"], strict=True
        )
    ]


def clock(start: dt.datetime | None, offset_s: float, seconds: bool = True) -> str:
    """Clock time ``HH:MM:SS`` of ``offset_s`` into a recording that started at ``start``;
    ``""`` when the start is unknown."""
    if start is None:
        return ""
    moment = start + dt.timedelta(seconds=float(offset_s))
    return moment.strftime("%H:%M:%S" if seconds else "%H:%M")


def probability_figure(result: Any, threshold: float, reference: Sequence[tuple]) -> Figure:
    """The probability over the whole recording, ``TIMELINE_MM`` high."""
    width = _page_mm(BEFORE_S + AFTER_S, 0)[0]
    figure = Figure(figsize=(width * MM, (TIMELINE_MM + TOP_MM + BOTTOM_MM + 6) * MM), dpi=DPI)
    ax = _place(figure, LEFT_MM, BOTTOM_MM + 2, width - LEFT_MM - RIGHT_MM, TIMELINE_MM)
    _timeline(ax, result, threshold, reference)
    return figure


def eeg_page(
    signal: np.ndarray,
    names: list[str],
    start_s: float,
    sfreq: float,
    shown: Shown,
    context: dict[str, Any],
) -> Figure:
    """One EEG page at the fixed scales (µV signal, ``(n_chans, n_times)`` from ``start_s``).

    ``context``: ``meas_date`` (recording start or None), ``reference`` (annotations) and
    ``bad`` (``(start_s, stop_s)`` of NaN/inf samples bridged in the file).
    """
    width, height = _page_mm(signal.shape[1] / sfreq, len(names))
    figure = Figure(figsize=(width * MM, height * MM), dpi=DPI)
    _draw_page(figure, (LEFT_MM, BOTTOM_MM), (signal, names, start_s), sfreq, shown, context)
    return figure


def _draw_page(
    figure: Figure,
    corner: tuple[float, float],
    segment: tuple[np.ndarray, list[str], float],
    sfreq: float,
    shown: Shown,
    context: dict[str, Any],
) -> Any:
    """An EEG page's axes with its lower-left corner at ``corner`` (mm)."""
    signal, names, start_s = segment
    width = signal.shape[1] / sfreq * TIMEBASE_MM_PER_S
    ax = _place(figure, *corner, width, len(names) * CHANNEL_MM)
    _traces(ax, signal, names, start_s, sfreq, context["meas_date"])
    _marks(ax, shown, context)
    when = clock(context["meas_date"], shown.onset_s)
    ax.set_title(
        f"{shown.label}: {shown.onset_s:.1f}–{shown.offset_s:.1f} s"
        f"{f' (onset {when})' if when else ''}, max p = {probability_text(shown.confidence)}"
        f"  ·  {SENSITIVITY_UV_PER_MM:g} µV/mm, {TIMEBASE_MM_PER_S:g} mm/s",
        fontsize=7,
        loc="left",
    )
    return ax


def probability_text(p: float) -> str:
    """Three decimals, never rounded up to a certainty the model did not give."""
    if not np.isfinite(p):
        return "n/a"
    return "> 0.999" if 0.9995 <= p < 1.0 else f"{p:.3f}"


def review_figure(result: Any, detector: Any, reader: Any, grid: Any, path: Path) -> Path:
    """Write the review figure (:func:`overview_figure`) of a
    :class:`~neurodecode.predict.offline.Prediction` to ``path`` (PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, png_bytes(overview_figure(result, detector, reader, grid)))


def overview_figure(result: Any, detector: Any, reader: Any, grid: Any) -> Figure:
    """The probability over the recording, then up to :data:`MAX_EVENTS_SHOWN` EEG pages,
    two per row, at the fixed scales."""
    reference = reference_events(reader.header.annotations)
    shown = shown_events(result, detector.window_s, MAX_EVENTS_SHOWN)
    pages = [page_segment(result, detector, reader, grid, s) for s in shown]
    page_w, page_h = _page_mm(BEFORE_S + AFTER_S, len(detector.ch_names))
    columns = min(2, max(1, len(pages)))
    rows = -(-len(pages) // columns)
    top = TIMELINE_MM + TOP_MM + BOTTOM_MM + 16  # three title lines
    width, height = columns * page_w, top + rows * page_h
    figure = Figure(figsize=(width * MM, height * MM), dpi=DPI)
    timeline = _place(figure, LEFT_MM, height - top + BOTTOM_MM + 2,
                      width - LEFT_MM - RIGHT_MM, TIMELINE_MM)  # fmt: skip
    _timeline(timeline, result, detector.post.threshold, reference)
    context = page_context(result, reference)
    for k, (item, segment) in enumerate(zip(shown, pages, strict=True)):
        row, column = divmod(k, columns)
        corner = (column * page_w + LEFT_MM, height - top - (row + 1) * page_h + BOTTOM_MM)
        _draw_page(figure, corner, segment, grid.sfreq, item, context)
    simulated = bool(simulated_warning(detector.provenance))
    figure.suptitle(
        f"{result.source.name} · {_start_text(result.meas_date)} · {result.duration_s:.0f} s · "
        f"{len(result.events)} event(s) · EEG {SENSITIVITY_UV_PER_MM:g} µV/mm, "
        f"{TIMEBASE_MM_PER_S:g} mm/s\nmodel {detector.info.get('model')} from "
        f"{Path(str(detector.source)).name}\n" + provenance_lines(detector.provenance)[0]
        + (" WARNING: this model never saw real EEG." if simulated else ""),
        fontsize=9,
        color="darkred" if simulated else "black",
    )
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as a PNG of :data:`PNG_COLOURS` colours (EEG traces compress badly)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    image = (
        Image.open(io.BytesIO(buffer.getvalue()))
        .convert("RGB")
        .quantize(PNG_COLOURS, method=Image.Quantize.FASTOCTREE)
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def page_segment(
    result: Any, detector: Any, reader: Any, grid: Any, shown: Shown
) -> tuple[np.ndarray, list[str], float]:
    """The filtered µV EEG of the page around ``shown``: ``(signal, names, start_s)``."""
    start = max(0.0, shown.onset_s - BEFORE_S)
    stop = min(result.duration_s, shown.onset_s + AFTER_S)
    lo = int(start * grid.sfreq)
    hi = max(lo + 1, min(grid.n_out, int(stop * grid.sfreq)))
    signal, names = filtered_segment(detector, reader, grid, lo, hi)
    return signal, names, lo / grid.sfreq


def page_context(result: Any, reference: Sequence[tuple]) -> dict[str, Any]:
    """What every page of a recording marks: its start, reference annotations, bad samples."""
    bad = [(d["start_s"], d["stop_s"]) for d in result.qc.get("bad_samples", [])]
    return {"meas_date": result.meas_date, "reference": list(reference), "bad": bad}


def _start_text(meas_date: dt.datetime | None) -> str:
    if meas_date is None:
        return "recording start unknown (times from the start of the file)"
    return f"started {meas_date:%Y-%m-%d %H:%M:%S}"


def _page_mm(duration_s: float, n_chans: int) -> tuple[float, float]:
    """Width and height (mm) of an EEG page of ``duration_s`` and ``n_chans``, margins included."""
    width = LEFT_MM + duration_s * TIMEBASE_MM_PER_S + RIGHT_MM
    return width, TOP_MM + n_chans * CHANNEL_MM + BOTTOM_MM


def _place(figure: Figure, left: float, bottom: float, width: float, height: float) -> Any:
    """Axes at ``left, bottom`` (mm from the figure's lower-left corner), ``width`` x
    ``height`` mm: the scales hold in the saved image."""
    fig_w, fig_h = figure.get_size_inches() / MM
    return figure.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))


def _timeline(ax: Any, result: Any, threshold: float, reference: Sequence[tuple]) -> None:
    table = result.per_second
    hours = result.duration_s > 2 * 3600
    scale = 3600.0 if hours else 1.0
    t = (table["second"].to_numpy() + 0.5) / scale
    ax.plot(t, table["p_seizure"].to_numpy(), lw=0.7, color="black", label="p(seizure) per second")
    ax.axhline(threshold, ls="--", lw=0.8, color="grey", label=f"threshold {threshold:g}")
    for k, (onset, offset, _) in enumerate(reference):
        ax.axvspan(onset / scale, max(offset, onset + 0.5) / scale, ymax=0.08, lw=0,
                   color=REFERENCE_COLOUR, label="reference annotation" if k == 0 else None)  # fmt: skip
    for k, (onset, offset) in enumerate(result.events):
        ax.axvspan(onset / scale, offset / scale, color=EVENT_COLOUR, alpha=0.3, lw=0,
                   label="detected event" if k == 0 else None)  # fmt: skip
        # a marker and the event's number, visible even when the span is below a pixel
        ax.plot(onset / scale, 1.0, marker="v", color=EVENT_COLOUR, ms=6, clip_on=False)
        ax.annotate(str(k + 1), (onset / scale, 1.0), xytext=(0, 5), textcoords="offset points",
                    ha="center", fontsize=8, color=EVENT_COLOUR, annotation_clip=False)  # fmt: skip
    ax.set_xlim(0, result.duration_s / scale)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("p(seizure)", fontsize=8)
    unit = "h" if hours else "s"
    start = (
        ""
        if result.meas_date is None
        else f"; clock time above (start {result.meas_date:%H:%M:%S})"
    )
    ax.set_xlabel(f"time from the start of the recording ({unit}){start}", fontsize=8)
    ax.tick_params(labelsize=7)
    if result.meas_date is not None:
        top = ax.secondary_xaxis("top")
        top.xaxis.set_major_formatter(
            FuncFormatter(lambda x, _: clock(result.meas_date, x * scale, seconds=not hours))
        )
        top.tick_params(labelsize=7)
    ax.legend(loc="upper left", fontsize=6, framealpha=0.8, ncols=2)


def _traces(
    ax: Any,
    signal: np.ndarray,
    names: list[str],
    start_s: float,
    sfreq: float,
    meas_date: dt.datetime | None,
) -> None:
    """Stacked channels at the fixed spacing and sensitivity, ticks in seconds and clock
    time, a scale bar in the right margin."""
    spacing = CHANNEL_MM * SENSITIVITY_UV_PER_MM
    t = start_s + np.arange(signal.shape[1]) / sfreq
    for i, row in enumerate(signal):
        ax.plot(t, row - i * spacing, lw=0.4, color="black")
    ax.set_yticks([-i * spacing for i in range(len(names))], names, fontsize=6)
    ax.set_ylim(-(len(names) - 0.5) * spacing, 0.5 * spacing)
    end = start_s + signal.shape[1] / sfreq
    ax.set_xlim(start_s, end)
    ax.xaxis.set_major_locator(MultipleLocator(5.0))
    ax.xaxis.set_minor_locator(MultipleLocator(1.0))
    ax.grid(axis="x", which="both", lw=0.3, color="0.85")
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda x, _: f"{x:.0f} s" + (f"\n{clock(meas_date, x)}" if meas_date else ""))
    )
    ax.tick_params(axis="x", labelsize=6)
    # scale bar: SCALE_BAR_UV up, SCALE_BAR_S across, in the right margin
    x0, y0 = end + 0.4, -(len(names) - 0.5) * spacing + 0.2 * spacing
    ax.plot([x0, x0, x0 + SCALE_BAR_S], [y0 + SCALE_BAR_UV, y0, y0], color="black", lw=1.2,
            clip_on=False, solid_capstyle="butt")  # fmt: skip
    ax.text(x0 + 0.15, y0 + SCALE_BAR_UV / 2, f"{SCALE_BAR_UV:g} µV", fontsize=6, va="center")
    ax.text(x0, y0 - 0.25 * spacing, f"{SCALE_BAR_S:g} s", fontsize=6, va="top")


def _marks(ax: Any, shown: Shown, context: dict[str, Any]) -> None:
    """Bands along the top edge, so the traces stay unshaded: the detection (red, its onset
    a solid line) and reference annotations (blue, onset dotted); bridged bad samples grey."""
    lo, hi = ax.get_xlim()
    for onset, offset, _ in context["reference"]:
        if offset >= lo and onset <= hi:
            ax.axvspan(max(onset, lo), min(max(offset, onset + 0.1), hi), ymin=0.985,
                       color=REFERENCE_COLOUR, lw=0)  # fmt: skip
            ax.axvline(onset, color=REFERENCE_COLOUR, lw=0.8, ls=":")
    for a, b in context["bad"]:
        if b >= lo and a <= hi:
            ax.axvspan(a, max(b, a + 0.05), color="0.5", alpha=0.5, lw=0)
    ax.axvspan(max(shown.onset_s, lo), min(shown.offset_s, hi), ymin=0.97, ymax=0.985,
               color=EVENT_COLOUR, lw=0)  # fmt: skip
    ax.axvline(shown.onset_s, color=EVENT_COLOUR, lw=0.8)
