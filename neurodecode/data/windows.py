"""Cut a preprocessed recording into labelled windows.

Two ways: event-locked epochs (``tmin``/``tmax`` around each annotated event whose
description is in the label map; motor imagery, evoked responses) and sliding windows
(``length``/``stride``), each labelled from the annotated interval covering at least a given
fraction of it (seizures). Every window keeps its start and end, and the onset and offset of
the annotated event it overlaps, so that window predictions can be scored as events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from neurodecode.errors import ConfigError, PreprocessingError

UNLABELLED = -1
WINDOW_COLUMNS = (
    "start_s",
    "end_s",
    "label",
    "description",
    "overlap",
    "event_onset_s",
    "event_offset_s",
)


def normalise_label_map(label_map: Mapping | Sequence | None) -> dict[str, int]:
    """``{description: int}`` from a mapping of integers or a list of descriptions.

    Raises
    ------
    ConfigError
        If the values are not integers.
    """
    if label_map is None:
        return {}
    if isinstance(label_map, Mapping):
        out = {}
        for key, value in label_map.items():
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(
                    f"label map values must be integers, got {key!r}: {value!r}",
                    hint="write e.g. {left_hand: 0, right_hand: 1}",
                )
            out[str(key)] = int(value)
        return out
    return {str(name): i for i, name in enumerate(label_map)}


def labelled_events(annotations: pd.DataFrame, label_map: Mapping[str, int]) -> pd.DataFrame:
    """Annotations whose description is in ``label_map``, sorted by onset, with ``label``."""
    description = np.asarray(annotations["description"], dtype=str)
    keep = np.isin(description, list(label_map))
    onset = np.asarray(annotations["onset"], dtype=float)[keep]
    order = np.argsort(onset, kind="stable")
    description = description[keep][order]
    return pd.DataFrame(
        {
            "onset": onset[order],
            "duration": np.asarray(annotations["duration"], dtype=float)[keep][order],
            "description": description,
            "label": np.array([label_map[d] for d in description], dtype=np.int64),
        }
    )


def n_window_samples(seconds: float, sfreq: float) -> int:
    """Samples in a window of ``seconds`` at ``sfreq`` (at least 1)."""
    return max(1, int(round(seconds * sfreq)))


def event_windows(
    annotations: pd.DataFrame,
    sfreq: float,
    n_samples: int,
    label_map: Mapping[str, int],
    tmin: float,
    tmax: float,
    source: str | Path | None = None,
) -> tuple[pd.DataFrame, int]:
    """Windows from ``onset + tmin`` to ``onset + tmax`` of every labelled event.

    Returns
    -------
    windows : pandas.DataFrame
        :data:`WINDOW_COLUMNS` plus ``start_sample``.
    n_outside : int
        Labelled events whose window falls (partly) outside the recording, dropped.

    Raises
    ------
    PreprocessingError
        If no annotation matches the label map (the message lists both), or the recording
        is shorter than one window.
    """
    length = n_window_samples(tmax - tmin, sfreq)
    _check_length(n_samples, length, sfreq, source)
    events = labelled_events(annotations, label_map)
    if events.empty:
        found = sorted(set(annotations["description"].astype(str)))
        raise PreprocessingError(
            f"no event matches the label map {sorted(label_map)}; the recording's annotations "
            f"are {found if found else 'empty'}",
            path=source,
            hint="check windows.label_map (or the manifest's label_map) and annotation_format",
        )
    starts = np.round((events["onset"].to_numpy(float) + tmin) * sfreq).astype(np.int64)
    inside = (starts >= 0) & (starts + length <= n_samples)
    events, starts = events[inside], starts[inside]
    windows = pd.DataFrame(
        {
            "start_sample": starts,
            "start_s": starts / sfreq,
            "end_s": (starts + length) / sfreq,
            "label": events["label"].to_numpy(int),
            "description": events["description"].to_numpy(str),
            "overlap": 1.0,
            "event_onset_s": events["onset"].to_numpy(float),
            "event_offset_s": (events["onset"] + events["duration"]).to_numpy(float),
        }
    )
    return windows, int((~inside).sum())


def sliding_windows(
    annotations: pd.DataFrame,
    sfreq: float,
    n_samples: int,
    length_s: float,
    stride_s: float,
    label_map: Mapping[str, int],
    overlap_threshold: float,
    background: str | None = None,
    source: str | Path | None = None,
) -> pd.DataFrame:
    """Windows of ``length_s`` every ``stride_s``, labelled from annotated intervals.

    A window takes the label of the labelled interval covering the largest fraction of it
    when that fraction reaches ``overlap_threshold``; otherwise the label of ``background``
    (a description in ``label_map``), or :data:`UNLABELLED` when ``background`` is None.
    ``overlap``, ``event_onset_s`` and ``event_offset_s`` describe the most-overlapping
    interval (NaN when none overlaps).

    Raises
    ------
    PreprocessingError
        If the recording is shorter than one window.
    ConfigError
        If ``background`` is not in the label map, or ``overlap_threshold`` is not in (0, 1].
    """
    if not 0 < overlap_threshold <= 1:
        raise ConfigError(
            f"windows.overlap_threshold={overlap_threshold} must be in (0, 1]: the fraction of "
            "a window an annotated interval must cover for the window to take its label"
        )
    length = n_window_samples(length_s, sfreq)
    stride = n_window_samples(stride_s, sfreq)
    _check_length(n_samples, length, sfreq, source)
    if background is not None and background not in label_map:
        raise ConfigError(
            f"windows.background={background!r} is not in the label map {sorted(label_map)}"
        )
    starts = np.arange(0, n_samples - length + 1, stride, dtype=np.int64)
    start_s, end_s = starts / sfreq, (starts + length) / sfreq
    events = labelled_events(annotations, label_map)
    if background is not None:
        events = events[events["description"] != background]
    n = len(starts)
    label = np.full(n, label_map[background] if background is not None else UNLABELLED)
    description = np.full(n, background or "", dtype=object)
    overlap = np.zeros(n)
    onset = np.full(n, np.nan)
    offset = np.full(n, np.nan)
    if not events.empty:
        ev_on = events["onset"].to_numpy(float)
        ev_off = ev_on + events["duration"].to_numpy(float)
        covered = np.clip(
            np.minimum(end_s[:, None], ev_off) - np.maximum(start_s[:, None], ev_on), 0, None
        ) / (length / sfreq)
        best = covered.argmax(axis=1)
        overlap = covered[np.arange(n), best]
        touched = overlap > 0
        onset[touched] = ev_on[best[touched]]
        offset[touched] = ev_off[best[touched]]
        hit = touched & (overlap >= overlap_threshold)
        label[hit] = events["label"].to_numpy(int)[best[hit]]
        description[hit] = events["description"].to_numpy(str)[best[hit]]
    return pd.DataFrame(
        {
            "start_sample": starts,
            "start_s": start_s,
            "end_s": end_s,
            "label": label,
            "description": description.astype(str),
            "overlap": overlap,
            "event_onset_s": onset,
            "event_offset_s": offset,
        }
    )


def _check_length(n_samples: int, length: int, sfreq: float, source: str | Path | None) -> None:
    if n_samples < length:
        raise PreprocessingError(
            f"recording lasts {n_samples / sfreq:.2f} s, shorter than one window of "
            f"{length / sfreq:.2f} s",
            path=source,
            hint="shorten the window (windows.length_s or windows.tmin/tmax)",
        )


def extract_windows(signal: np.ndarray, starts: np.ndarray, n_times: int) -> np.ndarray:
    """Copy windows out of ``signal``: a C-contiguous ``(n_windows, n_chans, n_times)`` array.

    One gather over a strided view of every window position (no index array, no transposed
    intermediate), ready to be written to disk as it is.
    """
    views = np.lib.stride_tricks.sliding_window_view(signal, n_times, axis=1)
    return views.transpose(1, 0, 2)[np.asarray(starts, dtype=np.intp)]
