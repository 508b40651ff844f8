"""The review report of one recording: one HTML page a reviewer opens in any browser.

``<stem>_report.html`` holds, with inline CSS and no script: the recording and the model
(with the checkpoint's provenance when given), what could not be predicted, the events
table, the reference annotations, the probability trace with the threshold, an EEG page
around each detection (the most confident :data:`MAX_PAGES`) at the fixed scales of
:mod:`neurodecode.predict.figure`, and the channel QC. Its images are embedded, so the page
travels as one file; the same PNGs are written beside it in ``<stem>_report/``. Each EEG
image is sized in CSS millimetres, so at 100 % zoom (and printed at 100 %) its stated
µV/mm and mm/s hold.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurodecode import __version__
from neurodecode.files import write_atomic
from neurodecode.predict import figure
from neurodecode.predict.figure import MM, Shown, clock, probability_text

MAX_PAGES = 20  # EEG pages per report, the most confident events first

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #111; max-width: 1200px; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.4em 0; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.warning { border: 2px solid #b00; background: #fee; padding: 0.5em 1em; }
.note { color: #444; font-size: 0.9em; }
figure { margin: 1em 0; } figure img { display: block; }
figcaption { font-size: 0.85em; color: #333; }
"""


def write_report(
    result: Any,
    detector: Any,
    reader: Any,
    grid: Any,
    base: Path,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<base>_report.html`` and its PNGs (``<base>_report/``); return the page.

    Parameters
    ----------
    result : neurodecode.predict.offline.Prediction
    detector : neurodecode.predict.detector.Detector
    reader : SampleSource
        The recording (its header's annotations are the reference shown).
    grid : neurodecode.predict.pipeline.Grid
    base : Path
        Output path stem (``<output>/<stem>``).
    provenance : mapping, optional
        What the checkpoint was trained and selected on, shown as given.
    """
    folder = base.with_name(base.name + "_report")
    folder.mkdir(parents=True, exist_ok=True)
    reference = figure.reference_events(reader.header.annotations)
    context = figure.page_context(result, reference)
    trace = figure.png_bytes(figure.probability_figure(result, detector.post.threshold, reference))
    write_atomic(folder / "probability.png", trace)
    pages = []
    for item in figure.shown_events(result, detector.window_s, MAX_PAGES):
        signal, names, start_s = figure.page_segment(result, detector, reader, grid, item)
        page = figure.eeg_page(signal, names, start_s, grid.sfreq, item, context)
        name = f"event-{item.number:03d}.png" if item.number else "highest-probability.png"
        data = figure.png_bytes(page)
        write_atomic(folder / name, data)
        pages.append((item, data, float(page.get_size_inches()[0] / MM)))
    body = [
        _heading(result, detector),
        _unscored(result.qc),
        _provenance(provenance),
        _events(result, {item.number for item, _, _ in pages}),
        _reference(reference, result.meas_date),
        _trace(trace, detector),
        _pages(pages, len(result.events)),
        _quality(result.qc),
    ]
    path = base.with_name(base.name + "_report.html")
    title = html.escape(f"Seizure detection review: {result.source.name}")
    write_atomic(
        path,
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{''.join(body)}</body></html>\n",
    )
    return path


def unscored_text(qc: Mapping[str, Any]) -> str:
    """``100-102 s, 600-1202 s`` with the NaN/inf samples and failed spans behind them."""
    spans = ", ".join(f"{a:g}-{b:g} s" for a, b in qc["unscored"])
    causes = [
        f"{d['n_samples']} NaN/inf sample(s) at {d['start_s']:.3f} s in {', '.join(d['channels'])}"
        for d in qc.get("bad_samples", [])
    ] + [f"{f['start_s']:g}-{f['stop_s']:g} s failed: {f['error']}" for f in qc["failed_spans"]]
    return f"{spans} ({'; '.join(causes)})" if causes else spans


def _image(data: bytes, alt: str, width_mm: float | None = None) -> str:
    size = f' style="width: {width_mm:.1f}mm"' if width_mm else ' style="max-width: 100%"'
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}"{size}>'


class Link(str):
    """A table cell that links to an anchor of the page."""


def _cell(value: Any) -> str:
    if isinstance(value, Link):
        return f'<td><a href="#{html.escape(value)}">{html.escape(value)}</a></td>'
    if isinstance(value, int | float):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[Any]], row_class: str = "") -> str:
    """An HTML table (``header`` None: key and value rows); numbers right-aligned, text
    escaped."""
    attribute = f' class="{row_class}"' if row_class else ""
    body = "".join(f"<tr{attribute}>{''.join(map(_cell, row))}</tr>" for row in rows)
    head = "" if header is None else "".join(f"<th>{html.escape(h)}</th>" for h in header)
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>\n"


def _heading(result: Any, detector: Any) -> str:
    start = result.meas_date
    started = (
        f"{start:%Y-%m-%d %H:%M:%S}" if start else "unknown (times are from the start of the file)"
    )
    rows = [
        ("recording", str(result.source)),
        ("recording start (file header)", started),
        ("duration", f"{result.duration_s:.1f} s ({result.duration_s / 3600:.2f} h)"),
        ("model", f"{detector.info.get('model')} from {detector.source}"),
        ("channels", f"{len(detector.ch_names)}: {', '.join(detector.ch_names)}"),
        ("status", result.status),
        ("written", f"{dt.datetime.now():%Y-%m-%d %H:%M} by neurodecode {__version__}"),
    ]
    return (
        f"<h1>Seizure detection review: {html.escape(result.source.name)}</h1>\n"
        '<p class="note">Research software: detections are suggestions for a trained '
        "reviewer, not a diagnosis.</p>\n" + _table(None, rows)
    )


def _unscored(qc: Mapping[str, Any]) -> str:
    if not qc.get("unscored"):
        return ""
    return (
        '<div class="warning" id="unscored"><strong>Not predicted:</strong> '
        f"{html.escape(unscored_text(qc))}. No event can be detected there; the probability "
        "trace has a gap.</div>\n"
    )


def _provenance(provenance: Mapping[str, Any] | None) -> str:
    if not provenance:
        return ""
    rows = [(key, value) for key, value in _flatten(provenance)]
    return "<h2>What the model was trained and selected on</h2>\n" + _table(None, rows)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _flatten(value, name + ".")
        else:
            out.append(
                (name, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
            )
    return out


def _events(result: Any, paged: set[int | None]) -> str:
    n = len(result.events)
    heading = f"<h2>Detected events ({n})</h2>\n"
    if not n:
        return heading + '<p id="no-events">No seizure detected.</p>\n'
    rows = [
        (k, f"{a:.1f}", clock(result.meas_date, a) or "n/a", f"{b - a:.1f}",
         probability_text(c), Link(f"event-{k}") if k in paged else "not drawn")
        for k, ((a, b), c) in enumerate(zip(result.events, result.confidence, strict=True), 1)
    ]  # fmt: skip
    table = _table(["#", "onset (s)", "onset (clock)", "duration (s)", "max p", "EEG page"],
                   rows, row_class="event")  # fmt: skip
    return heading + table


def _reference(reference: Sequence[tuple[float, float, str]], start: dt.datetime | None) -> str:
    if not reference:
        return (
            "<h2>Reference annotations</h2>\n<p>None: the file has no annotations and no "
            "events file lies beside it.</p>\n"
        )
    rows = [
        (f"{a:.1f}", clock(start, a) or "n/a", f"{b - a:.1f}", text) for a, b, text in reference
    ]
    return f"<h2>Reference annotations ({len(reference)})</h2>\n" + _table(
        ["onset (s)", "onset (clock)", "duration (s)", "description"], rows, row_class="reference"
    )


def _trace(data: bytes, detector: Any) -> str:
    post = detector.post
    return (
        "<h2>Seizure probability</h2>\n<figure>"
        + _image(data, "seizure probability over the recording")
        + f"<figcaption>Per second, the mean probability of the {detector.window_s:g}-s "
        f"windows (one every {detector.stride_s:g} s) covering it. An event starts where the "
        f"probability, smoothed over {post.smoothing_windows} windows, rises above the "
        f"threshold {post.threshold:g}, ends below {post.off_threshold or post.threshold:g}, "
        f"is kept when it lasts at least {post.min_duration_s:g} s, and events closer than "
        f"{post.merge_gap_s:g} s merge. Red: detected events (numbered); blue: reference "
        "annotations.</figcaption></figure>\n"
    )


def _pages(pages: Sequence[tuple[Shown, bytes, float]], n_events: int) -> str:
    if not pages:
        return ""
    note = f" (the {len(pages)} most confident of {n_events})" if len(pages) < n_events else ""
    out = [
        f'<h2>EEG around each detection{note}</h2>\n<p class="note">Filtered, in the '
        f"model's montage, at {figure.SENSITIVITY_UV_PER_MM:g} µV/mm (channels "
        f"{figure.CHANNEL_MM * figure.SENSITIVITY_UV_PER_MM:g} µV apart) and "
        f"{figure.TIMEBASE_MM_PER_S:g} mm/s: true on paper and on screen at 100 % zoom. "
        "Scale bar: 100 µV and 1 s. Ticks: seconds from the start and clock time. Red: the "
        "detection (band along the top, solid line at its onset); blue: reference "
        "annotations (band, dotted line at the onset); grey: samples that were NaN/inf in "
        "the file (bridged by a straight line, their windows not scored).</p>\n"
    ]
    for item, data, width_mm in pages:
        anchor = f"event-{item.number}" if item.number else "highest-probability"
        out.append(
            f'<figure id="{anchor}">{_image(data, item.label, width_mm)}<figcaption>'
            f"{html.escape(item.label)}: {item.onset_s:.1f}–{item.offset_s:.1f} s, max p "
            f"{probability_text(item.confidence)}</figcaption></figure>\n"
        )
    return "".join(out)


def _quality(qc: Mapping[str, Any]) -> str:
    bad = qc.get("bad_channel_spans", {})
    rows = [
        ("spans processed", qc.get("spans", "n/a")),
        ("channels missing (zeroed and masked)", ", ".join(qc.get("missing_channels", [])) or "none"),
        ("channels found bad (in how many spans)",
         ", ".join(f"{c} ({n})" for c, n in bad.items()) or "none"),
        ("line-noise notch (Hz)", ", ".join(map(str, qc.get("notch_hz", []))) or "none"),
        ("NaN/inf samples", len(qc.get("bad_samples", []))),
        ("spans that failed", len(qc.get("failed_spans", []))),
    ]  # fmt: skip
    return "<h2>Channel quality</h2>\n" + _table(None, rows)
