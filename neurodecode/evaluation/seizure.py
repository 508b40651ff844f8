"""Seizure detection scored the SzCORE way: probabilities → events → ``timescoring``.

Post-processing turns per-window seizure probabilities into events (optional smoothing, a
threshold with optional hysteresis, a merge gap and a minimum duration). Scoring follows the
SzCORE framework (Dan et al., 2024, *Epilepsia*) and its reference implementation
``szcore-evaluation``:

- every recording is scored with ``timescoring`` on annotations sampled at 1 Hz, both
  event-based (:class:`timescoring.scoring.EventScoring` with 30 s tolerance before and 60 s
  after an event, any overlap, events longer than 300 s split, events closer than 90 s
  merged) and sample-based (:class:`timescoring.scoring.SampleScoring`);
- per subject, true positives, false positives, reference events and duration are summed over
  the subject's recordings before sensitivity, precision, F1 and false positives per 24 h are
  computed;
- **per-subject average**: the mean (and standard deviation) of the per-subject scores, ignoring
  undefined values (NaN), as SzCORE's ``np.nanmean``. A subject without any seizure has an
  undefined sensitivity and is left out of the sensitivity average; a subject without any
  detection has an undefined precision and is left out of the precision average; F1 is
  undefined (left out) only when a subject has neither seizures nor false detections, so a
  subject whose seizures were all missed counts with F1 = 0, and a seizure-free subject with
  false detections counts with F1 = 0. False positives per 24 h are always defined;
- **pooled**: counts summed over all recordings of all subjects, then the same formulas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from timescoring.annotations import Annotation
from timescoring.scoring import EventScoring, SampleScoring

from neurodecode.data.annotations import read_szcore_events
from neurodecode.errors import AnnotationError

Events = list[tuple[float, float]]

#: Event-scoring parameters of SzCORE (seconds; ``minOverlap`` is relative).
SZCORE_EVENT_PARAMETERS = {
    "toleranceStart": 30.0,
    "toleranceEnd": 60.0,
    "minOverlap": 0.0,
    "maxEventDuration": 300.0,
    "minDurationBetweenEvents": 90.0,
}
#: Rate (Hz) at which SzCORE samples annotations before scoring.
SZCORE_SCORING_FS = 1
METRICS = ("sensitivity", "precision", "f1", "fp_per_24h")

CONVENTION = (
    "SzCORE: counts summed per subject over its recordings; per-subject average = nanmean of "
    "per-subject scores (sensitivity undefined and skipped for subjects without seizures, "
    "precision undefined and skipped for subjects without detections, F1 undefined only "
    "without seizures and without false detections, so missed seizures give F1 = 0); "
    "pooled = counts summed over all recordings."
)


@dataclass(frozen=True)
class PostProcessing:
    """How window probabilities become events.

    Parameters
    ----------
    threshold : float
        A window is seizure when its (smoothed) probability reaches this value.
    off_threshold : float or None
        Hysteresis: once an event has started, it goes on while the probability stays at or
        above this lower value. ``None`` means no hysteresis (same as ``threshold``).
    smoothing_windows : int
        Width of a centred moving average applied to the probabilities first (1 = none);
        odd, so the average stays centred on each window.
    merge_gap_s : float
        Events separated by less than this many seconds are joined.
    min_duration_s : float
        Events shorter than this (after merging) are dropped.
    """

    threshold: float = 0.5
    off_threshold: float | None = None
    smoothing_windows: int = 1
    merge_gap_s: float = 0.0
    min_duration_s: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold}")
        if self.off_threshold is not None and not 0.0 <= self.off_threshold <= self.threshold:
            raise ValueError(
                f"off_threshold must lie in [0, threshold={self.threshold}], "
                f"got {self.off_threshold}"
            )
        if self.smoothing_windows < 1 or self.smoothing_windows % 2 == 0:
            raise ValueError(
                f"smoothing_windows must be an odd number ≥ 1 (a centred average), "
                f"got {self.smoothing_windows}"
            )
        if self.merge_gap_s < 0 or self.min_duration_s < 0:
            raise ValueError("merge_gap_s and min_duration_s must be ≥ 0")


def probabilities_to_events(
    probabilities: Sequence[float] | np.ndarray,
    start_s: Sequence[float] | np.ndarray,
    window_s: float,
    post: PostProcessing = PostProcessing(),
) -> Events:
    """Turn per-window seizure probabilities of one recording into ``(onset, offset)`` events.

    Parameters
    ----------
    probabilities : array of shape (n_windows,)
        Seizure probability of each window.
    start_s : array of shape (n_windows,)
        Start of each window in seconds from the beginning of the recording.
    window_s : float
        Window length in seconds; a positive window covers ``[start, start + window_s)``.
    post : PostProcessing
        Smoothing, threshold(s), merge gap and minimum duration.

    Returns
    -------
    list of (float, float)
        Sorted, non-overlapping events in seconds.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    start_s = np.asarray(start_s, dtype=float)
    if probabilities.shape != start_s.shape or probabilities.ndim != 1:
        raise ValueError(
            f"probabilities {probabilities.shape} and start_s {start_s.shape} must be two "
            "1-D arrays of the same length"
        )
    order = np.argsort(start_s, kind="stable")
    probabilities, start_s = probabilities[order], start_s[order]
    if post.smoothing_windows > 1 and probabilities.size:
        kernel = np.ones(post.smoothing_windows) / post.smoothing_windows
        padded = np.pad(probabilities, post.smoothing_windows // 2, mode="edge")
        probabilities = np.convolve(padded, kernel, mode="valid")[: start_s.size]

    positive = _hysteresis(probabilities, post.threshold, post.off_threshold)
    events: Events = []
    for onset, is_positive in zip(start_s, positive, strict=True):
        if not is_positive:
            continue
        offset = onset + window_s
        if events and onset <= events[-1][1] + post.merge_gap_s:
            events[-1] = (events[-1][0], max(events[-1][1], offset))
        else:
            events.append((float(onset), float(offset)))
    return [(a, b) for a, b in events if b - a >= post.min_duration_s]


def _hysteresis(probabilities: np.ndarray, on: float, off: float | None) -> np.ndarray:
    if off is None:
        return probabilities >= on
    positive = np.zeros(probabilities.shape, dtype=bool)
    active = False
    for i, p in enumerate(probabilities):
        active = p >= off if active else p >= on
        positive[i] = active
    return positive


@dataclass
class Counts:
    """Counts from which SzCORE's scores are computed (summable over recordings)."""

    tp: int = 0
    fp: int = 0
    ref_true: int = 0
    duration_s: float = 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.tp + other.tp,
            self.fp + other.fp,
            self.ref_true + other.ref_true,
            self.duration_s + other.duration_s,
        )

    def scores(self) -> dict[str, float]:
        """Sensitivity, precision, F1 and false positives per 24 h (NaN where undefined)."""
        nan = float("nan")
        sensitivity = self.tp / self.ref_true if self.ref_true else nan
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else nan
        denominator = 2 * self.tp + self.fp + (self.ref_true - self.tp)
        f1 = 2 * self.tp / denominator if self.ref_true + self.fp else nan
        fp_per_24h = self.fp / (self.duration_s / 86400.0) if self.duration_s else nan
        return {
            "sensitivity": sensitivity,
            "precision": precision,
            "f1": f1,
            "fp_per_24h": fp_per_24h,
        }


@dataclass
class RecordingScore:
    """Event-based and sample-based counts of one recording."""

    subject: str
    recording: str
    event: Counts
    sample: Counts
    reference: Events = field(default_factory=list)
    hypothesis: Events = field(default_factory=list)


def _annotation(
    events: Events, duration_s: float, recording: str, fs: float = SZCORE_SCORING_FS
) -> Annotation:
    """Events sampled the way szcore-evaluation samples an events file (epilepsy2bids'
    ``Annotations.getMask``): ``int(duration_s * fs)`` samples, an event covering samples
    ``int(onset * fs)`` up to ``int(offset * fs)``, clipped to the recording."""
    n_samples = int(duration_s * fs)
    if n_samples < 1:
        raise AnnotationError(f"recording shorter than one scoring sample ({duration_s} s)",
                              path=recording)  # fmt: skip
    mask = np.zeros(n_samples, dtype=bool)
    for onset, offset in events:
        if offset < onset:
            raise AnnotationError(
                f"event ({onset}, {offset}) ends before it starts", path=recording
            )
        mask[max(0, int(onset * fs)) : max(0, int(offset * fs))] = True
    return Annotation(mask, fs)


def score_recording(
    reference: Events,
    hypothesis: Events,
    duration_s: float,
    *,
    subject: str = "",
    recording: str = "",
    fs: float = SZCORE_SCORING_FS,
    event_parameters: Mapping[str, float] | None = None,
) -> RecordingScore:
    """Score one recording's detected events against its reference events with ``timescoring``.

    Parameters
    ----------
    reference, hypothesis : list of (onset_s, offset_s)
        Annotated seizures and detected events, in seconds; clipped to the recording.
    duration_s : float
        Length of the recording in seconds (sets the false-positive rate denominator).
    subject, recording : str
        Identifiers carried into the result.
    fs : float
        Rate at which events are sampled for event scoring (SzCORE: 1 Hz); sample scoring is
        always at SzCORE's 1 Hz.
    event_parameters : mapping, optional
        ``timescoring`` event-scoring parameters; SzCORE's
        (:data:`SZCORE_EVENT_PARAMETERS`) by default.

    Returns
    -------
    RecordingScore
        Event-based and sample-based (1 Hz) counts.
    """
    if duration_s <= 0:
        raise AnnotationError(f"recording duration must be positive, got {duration_s}", recording)
    ref = _annotation(reference, duration_s, recording, fs)
    hyp = _annotation(hypothesis, duration_s, recording, fs)
    parameters = EventScoring.Parameters(**(event_parameters or SZCORE_EVENT_PARAMETERS))
    event = EventScoring(ref, hyp, parameters)
    sample = SampleScoring(ref, hyp, fs=SZCORE_SCORING_FS)
    event_duration = event.numSamples / event.fs
    sample_duration = sample.numSamples / sample.fs
    return RecordingScore(
        subject=subject,
        recording=recording,
        event=Counts(int(event.tp), int(event.fp), int(event.refTrue), event_duration),
        sample=Counts(int(sample.tp), int(sample.fp), int(sample.refTrue), sample_duration),
        reference=list(ref.events),
        hypothesis=list(hyp.events),
    )


def aggregate(scores: Iterable[RecordingScore]) -> dict:
    """Combine recording scores into SzCORE's per-subject average and pooled scores.

    Parameters
    ----------
    scores : iterable of RecordingScore
        One entry per recording, each with its subject.

    Returns
    -------
    dict
        ``{"event": {"per_subject": {...}, "pooled": {...}}, "sample": {...}, "subjects":
        {subject: {"event": {...}, "sample": {...}}}, "n_subjects", "n_recordings",
        "convention"}``. Per-subject entries hold the mean and ``*_std`` of each metric and
        how many subjects entered each mean (``n_<metric>``); pooled entries also hold the
        summed counts.
    """
    scores = list(scores)
    if not scores:
        raise ValueError("no recordings to score")
    by_subject: dict[str, dict[str, Counts]] = {}
    for score in scores:
        entry = by_subject.setdefault(score.subject, {"event": Counts(), "sample": Counts()})
        entry["event"] = entry["event"] + score.event
        entry["sample"] = entry["sample"] + score.sample

    result: dict = {}
    for kind in ("event", "sample"):
        per_subject = [counts[kind].scores() for counts in by_subject.values()]
        averaged: dict[str, float | int] = {}
        for metric in METRICS:
            values = np.array([s[metric] for s in per_subject], dtype=float)
            defined = values[~np.isnan(values)]
            averaged[metric] = float(defined.mean()) if defined.size else math.nan
            averaged[f"{metric}_std"] = float(defined.std()) if defined.size else math.nan
            averaged[f"n_{metric}"] = int(defined.size)
        pooled_counts = sum((counts[kind] for counts in by_subject.values()), Counts())
        pooled = pooled_counts.scores() | {
            "tp": pooled_counts.tp,
            "fp": pooled_counts.fp,
            "ref_true": pooled_counts.ref_true,
            "duration_h": pooled_counts.duration_s / 3600.0,
        }
        result[kind] = {"per_subject": averaged, "pooled": pooled}
    result["subjects"] = {
        subject: {kind: counts[kind].scores() | vars(counts[kind]) for kind in counts}
        for subject, counts in by_subject.items()
    }
    result["n_subjects"] = len(by_subject)
    result["n_recordings"] = len(scores)
    result["convention"] = CONVENTION
    return result


def _seizures(table: pd.DataFrame) -> Events:
    """The seizure rows of an SzCORE events table (event types starting with ``sz``)."""
    rows = table[table["eventType"].astype(str).str.startswith("sz")]
    return [(float(o), float(o + d)) for o, d in zip(rows["onset"], rows["duration"], strict=True)]


def score_event_files(reference: str | Path, hypothesis: str | Path) -> dict:
    """Score a folder of detections against a folder of reference annotations, both SzCORE
    BIDS ``*_events.tsv`` files, as ``szcore-evaluation``'s ``evaluate_dataset`` does.

    Every reference file below a ``sub-*`` folder of ``reference`` is scored against the
    file at the same relative path below ``hypothesis`` (none there: no detections), over
    the reference file's ``recordingDuration``; recordings are grouped by their ``sub-*``
    folder.

    Returns
    -------
    dict
        :func:`aggregate`'s result.

    Raises
    ------
    AnnotationError
        No reference file, or a reference file without ``recordingDuration``.
    """
    reference, hypothesis = Path(reference), Path(hypothesis)
    scores = []
    for path in sorted(reference.glob("sub-*/**/*.tsv")):
        table = read_szcore_events(path)
        duration = table["recordingDuration"].dropna()
        if duration.empty:
            raise AnnotationError("no recordingDuration: cannot score the file", path=path)
        relative = path.relative_to(reference)
        detected = hypothesis / relative
        found = _seizures(read_szcore_events(detected)) if detected.is_file() else []
        scores.append(
            score_recording(
                _seizures(table),
                found,
                float(duration.iloc[0]),
                subject=relative.parts[0],
                recording=str(relative),
            )
        )
    if not scores:
        raise AnnotationError("no sub-*/**/*.tsv reference file found", path=reference)
    return aggregate(scores)
