"""Figures written into run folders (matplotlib's object API: no display, no global state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

MAX_TIMELINES = 8


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def confusion_matrix(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path
) -> Path:
    """Confusion matrix (rows true class, columns predicted), counts and row percentages."""
    counts = np.asarray(matrix, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    n = len(class_names)
    figure = Figure(figsize=(1.2 * n + 2.5, 1.0 * n + 2.0), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(counts[i, j])}\n{share[i, j]:.0%}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=9)  # fmt: skip
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    figure.colorbar(image, ax=ax, label="share of the true class")
    return _save(figure, path)


def seizure_timeline(
    predictions: pd.DataFrame,
    references: Mapping[str, Mapping[str, Any]],
    detections: Mapping[str, Sequence[tuple[float, float]]],
    threshold: float,
    window_s: float,
    path: str | Path,
) -> Path:
    """Seizure probability over time for each test recording (up to :data:`MAX_TIMELINES`).

    Each window's probability is drawn at the window's centre; annotated seizures are
    shaded red, detected events drawn as bars under the curve, the threshold dashed.
    """
    recordings = sorted(predictions["recording"].astype(str).unique())[:MAX_TIMELINES]
    figure = Figure(figsize=(11, 1.7 * len(recordings) + 0.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(len(recordings), 1, squeeze=False)[:, 0])
    for ax, recording in zip(axes, recordings, strict=True):
        windows = predictions[predictions["recording"].astype(str) == recording]
        windows = windows.sort_values("start_s")
        centre = windows["start_s"] + window_s / 2
        ax.plot(centre, windows["p_seizure"], lw=0.8, color="black")
        ax.axhline(threshold, ls="--", lw=0.8, color="grey")
        for onset, offset in references.get(recording, {}).get("events", []):
            ax.axvspan(onset, offset, color="tab:red", alpha=0.25, lw=0)
        for onset, offset in detections.get(recording, []):
            ax.plot([onset, offset], [-0.08, -0.08], lw=4, color="tab:blue", solid_capstyle="butt")
        ax.set_ylim(-0.15, 1.05)
        ax.set_ylabel("p(seizure)")
        ax.set_title(recording, fontsize=9, loc="left")
    axes[-1].set_xlabel("time (s)")
    figure.suptitle("red: annotated seizures · blue: detected events · dashed: threshold",
                    fontsize=9)  # fmt: skip
    return _save(figure, path)
