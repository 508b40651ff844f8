"""The review figure of one recording: probability over the whole recording, then the EEG
around each detected event (the most confident first), so a reviewer can accept or reject
each detection at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from neurodecode.predict.pipeline import filtered_segment

MAX_EVENTS_SHOWN = 4
BEFORE_S, AFTER_S = 10.0, 20.0  # EEG shown around an event onset


def review_figure(result: Any, detector: Any, reader: Any, grid: Any, path: Path) -> Path:
    """Write the review figure of a :class:`~neurodecode.predict.offline.Prediction`."""
    order = np.argsort(result.confidence)[::-1][:MAX_EVENTS_SHOWN]
    shown = [(result.events[i], result.confidence[i], f"event {i + 1}") for i in sorted(order)]
    if not shown and np.isfinite(result.probabilities).any():
        best = int(np.nanargmax(result.probabilities))
        onset = float(result.start_s[best])
        label = "no event: highest-probability window"
        shown = [((onset, onset + detector.window_s), float(result.probabilities[best]), label)]
    n_cols = max(1, len(shown))
    figure = Figure(figsize=(max(11.0, 5.5 * min(n_cols, 2)), 9.5), layout="constrained")
    grid_spec = figure.add_gridspec(2, n_cols, height_ratios=[1, 3.2])
    timeline = figure.add_subplot(grid_spec[0, :])
    _timeline(timeline, result, detector)
    for k, ((onset, offset), confidence, label) in enumerate(shown):
        ax = figure.add_subplot(grid_spec[1, k])
        start = max(0.0, onset - BEFORE_S)
        stop = min(result.duration_s, onset + AFTER_S)
        lo = int(start * grid.sfreq)
        hi = max(lo + 1, min(grid.n_out, int(stop * grid.sfreq)))
        signal, names = filtered_segment(detector, reader, grid, lo, hi)
        _traces(ax, signal, names, lo / grid.sfreq, grid.sfreq, onset, offset)
        ax.set_title(
            f"{label}: {onset:.0f}–{offset:.0f} s, max p = {confidence:.2f}", fontsize=9,
            loc="left",
        )  # fmt: skip
        if k:
            ax.set_yticklabels([])
    figure.suptitle(
        f"{result.source.name} · {result.duration_s / 3600:.2f} h · {len(result.events)} "
        f"event(s) · model {detector.info.get('model')} from {detector.source}",
        fontsize=10,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def _timeline(ax: Any, result: Any, detector: Any) -> None:
    table = result.per_second
    hours = result.duration_s > 2 * 3600
    scale = 3600.0 if hours else 1.0
    t = (table["second"].to_numpy() + 0.5) / scale
    ax.plot(t, table["p_seizure"].to_numpy(), lw=0.7, color="black", label="p(seizure) per second")
    ax.axhline(detector.post.threshold, ls="--", lw=0.8, color="grey", label="threshold")
    for k, (onset, offset) in enumerate(result.events):
        ax.axvspan(onset / scale, offset / scale, color="tab:red", alpha=0.3, lw=0,
                   label="detected event" if k == 0 else None)  # fmt: skip
        # a marker and the event's number, visible even when the span is below a pixel
        ax.plot(onset / scale, 1.0, marker="v", color="tab:red", ms=6, clip_on=False)
        ax.annotate(str(k + 1), (onset / scale, 1.0), xytext=(0, 5), textcoords="offset points",
                    ha="center", fontsize=8, color="tab:red", annotation_clip=False)  # fmt: skip
    ax.set_xlim(0, result.duration_s / scale)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("p(seizure)")
    ax.set_xlabel("time (h)" if hours else "time (s)")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, ncols=3, frameon=False)


def _traces(
    ax: Any,
    signal: np.ndarray,
    names: list[str],
    t0: float,
    sfreq: float,
    onset: float,
    offset: float,
) -> None:
    """Stacked channels (µV), one robust spacing for all, event shaded."""
    t = t0 + np.arange(signal.shape[1]) / sfreq
    spread = np.nanpercentile(np.abs(signal), 99) if signal.size else 1.0
    spacing = float(max(spread, 1.0)) * 1.2
    for i, row in enumerate(signal):
        ax.plot(t, row - i * spacing, lw=0.5, color="black")
    ax.axvspan(max(onset, t[0]), min(offset, t[-1]), color="tab:red", alpha=0.08, lw=0)
    ax.axvline(onset, color="tab:red", lw=0.8)
    ax.set_yticks([-i * spacing for i in range(len(names))], names, fontsize=7)
    ax.set_ylim(-(len(names) - 0.3) * spacing, 1.2 * spacing)
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel(f"time (s) · spacing {spacing:.0f} µV")
