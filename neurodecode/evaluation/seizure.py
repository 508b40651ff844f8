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

Every aggregate states what it rests on (seizures, subjects, recordings, hours) and gives
95 % intervals: for sensitivity, precision and F1 a bootstrap over subjects where there are
several (an exact Clopper-Pearson interval over events for one subject), for false
positives per 24 h the exact Poisson interval of the count; a rate from under one hour of
data is flagged as extrapolated. :func:`summary_lines` says in words what each number is.

Model selection on validation (:func:`fit_temperature`, :func:`choose_threshold`): a
temperature calibrates the seizure log-odds, and the event threshold is the one whose
SzCORE event score is best (F1, or sensitivity within a false-alarm budget per 24 h).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from timescoring.annotations import Annotation
from timescoring.scoring import EventScoring, SampleScoring

from neurodecode.data.annotations import read_szcore_events
from neurodecode.errors import AnnotationError, ConfigError

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
#: Confidence level of every interval, draws of the bootstrap over subjects, and its seed.
CONFIDENCE_LEVEL = 0.95
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 0
#: Below this much scored data (hours) a false-positive rate per 24 h is extrapolated.
MIN_HOURS_FOR_RATE = 1.0

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
        "n_seizures", "hours", "convention"}``. Per-subject entries hold the mean and
        ``*_std`` of each metric (``None`` from a single subject: there is no spread to
        state) and how many subjects entered each mean (``n_<metric>``). Pooled entries
        hold the summed counts, what they rest on (``n_seizures``, ``n_subjects``,
        ``hours``), a 95 % interval ``<metric>_ci`` with its method ``ci_method``, and
        ``fp_per_24h_extrapolated`` when under :data:`MIN_HOURS_FOR_RATE` hours were scored.
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
        counts = [entry[kind] for entry in by_subject.values()]
        pooled = sum(counts, Counts())
        result[kind] = {
            "per_subject": _per_subject_average(counts),
            "pooled": pooled.scores()
            | {"tp": pooled.tp, "fp": pooled.fp, "ref_true": pooled.ref_true}
            | _basis(pooled, len(counts))
            | intervals(counts),
        }
    result["subjects"] = {
        subject: {kind: counts[kind].scores() | vars(counts[kind]) for kind in counts}
        for subject, counts in by_subject.items()
    }
    result["n_subjects"] = len(by_subject)
    result["n_recordings"] = len(scores)
    result["n_seizures"] = result["event"]["pooled"]["n_seizures"]
    result["hours"] = result["event"]["pooled"]["hours"]
    result["convention"] = CONVENTION
    return result


def _per_subject_average(counts: Sequence[Counts]) -> dict[str, float | int | None]:
    """SzCORE's nanmean of per-subject scores, with the spread where there is one."""
    per_subject = [c.scores() for c in counts]
    averaged: dict[str, float | int | None] = {}
    for metric in METRICS:
        values = np.array([s[metric] for s in per_subject], dtype=float)
        defined = values[~np.isnan(values)]
        averaged[metric] = float(defined.mean()) if defined.size else math.nan
        averaged[f"{metric}_std"] = float(defined.std()) if defined.size > 1 else None
        averaged[f"n_{metric}"] = int(defined.size)
    return averaged


def _basis(pooled: Counts, n_subjects: int) -> dict[str, Any]:
    """What pooled scores rest on: seizures, subjects, hours, and whether the false-alarm
    rate is extrapolated from under :data:`MIN_HOURS_FOR_RATE` hours."""
    hours = pooled.duration_s / 3600.0
    return {
        "n_seizures": pooled.ref_true,
        "n_subjects": n_subjects,
        "hours": hours,
        "duration_h": hours,
        "fp_per_24h_extrapolated": hours < MIN_HOURS_FOR_RATE,
    }


def poisson_rate_interval(
    count: int, duration_s: float, level: float = CONFIDENCE_LEVEL
) -> tuple[float, float]:
    """Exact (Garwood) interval of a rate per 24 h from ``count`` events in ``duration_s``."""
    if duration_s <= 0:
        return math.nan, math.nan
    alpha = 1.0 - level
    low = 0.0 if count == 0 else stats.chi2.ppf(alpha / 2, 2 * count) / 2
    high = stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    scale = 86400.0 / duration_s
    return float(low * scale), float(high * scale)


def binomial_interval(
    successes: int, trials: int, level: float = CONFIDENCE_LEVEL
) -> tuple[float, float]:
    """Exact Clopper-Pearson interval of a proportion (NaN without trials)."""
    if trials == 0:
        return math.nan, math.nan
    ci = stats.binomtest(successes, trials).proportion_ci(level, method="exact")
    return float(ci.low), float(ci.high)


def intervals(counts: Sequence[Counts], level: float = CONFIDENCE_LEVEL) -> dict[str, Any]:
    """95 % intervals of the pooled scores of per-subject ``counts``.

    Sensitivity, precision and F1: percentile bootstrap over subjects (subjects drawn with
    replacement, counts pooled, :data:`BOOTSTRAP_DRAWS` draws, fixed seed) when there are
    several; with one subject, exact binomial intervals over its events for sensitivity and
    precision and none for F1. False positives per 24 h: the exact Poisson interval of the
    pooled count, whatever the number of subjects.
    """
    pooled = sum(counts, Counts())
    out: dict[str, Any] = {"confidence_level": level}
    out["fp_per_24h_ci"] = poisson_rate_interval(pooled.fp, pooled.duration_s, level)
    if len(counts) > 1:
        draws = _bootstrap_subjects(counts)
        for metric in ("sensitivity", "precision", "f1"):
            values = draws[metric][~np.isnan(draws[metric])]
            out[f"{metric}_ci"] = (
                tuple(float(v) for v in np.quantile(values, [(1 - level) / 2, (1 + level) / 2]))
                if values.size
                else (math.nan, math.nan)
            )
        out["ci_method"] = (
            f"bootstrap over {len(counts)} subjects ({BOOTSTRAP_DRAWS} draws); "
            "FP/24h: exact Poisson"
        )
        return out
    out["sensitivity_ci"] = binomial_interval(pooled.tp, pooled.ref_true, level)
    out["precision_ci"] = binomial_interval(pooled.tp, pooled.tp + pooled.fp, level)
    out["f1_ci"] = (math.nan, math.nan)
    out["ci_method"] = (
        "one subject: exact binomial over its events (no between-subject spread); "
        "FP/24h: exact Poisson"
    )
    return out


def _bootstrap_subjects(counts: Sequence[Counts]) -> dict[str, np.ndarray]:
    """Pooled sensitivity, precision and F1 over subjects drawn with replacement."""
    table = np.array([[c.tp, c.fp, c.ref_true] for c in counts], dtype=float)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(len(counts), size=(BOOTSTRAP_DRAWS, len(counts)))
    tp, fp, ref = (table[picks, column].sum(axis=1) for column in range(3))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "sensitivity": np.where(ref > 0, tp / ref, np.nan),
            "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
            "f1": np.where(ref + fp > 0, 2 * tp / (tp + fp + ref), np.nan),
        }


def summary_lines(szcore: Mapping[str, Any]) -> list[str]:
    """Plain-words lines of an :func:`aggregate` result: what each number is and rests on."""
    lines = []
    for kind, unit in (("event", "seizure(s)"), ("sample", "seizure second(s)")):
        pooled = szcore[kind]["pooled"]
        rate_flag = (
            f" (EXTRAPOLATED from {pooled['hours'] * 60:.0f} min of data)"
            if pooled.get("fp_per_24h_extrapolated")
            else ""
        )
        lines.append(
            f"SzCORE {kind}-based, pooled over {pooled['n_seizures']} {unit} of "
            f"{pooled['n_subjects']} subject(s) in {pooled['hours']:.2f} h; "
            f"{CONFIDENCE_LEVEL:.0%} intervals by {pooled.get('ci_method', 'n/a')}:"
        )
        lines.append(
            f"  {kind}: sensitivity (share of {unit} found) {_with_ci(pooled, 'sensitivity')}; "
            f"precision (share of detected {unit[:-3]}s that are real) "
            f"{_with_ci(pooled, 'precision')}"
        )
        lines.append(
            f"  {kind}: F1 {_with_ci(pooled, 'f1')}; false positives per 24 h "
            f"{_with_ci(pooled, 'fp_per_24h')}{rate_flag}"
        )
        average = szcore[kind]["per_subject"]
        spread = "" if average.get("f1_std") is not None else " (one subject: no spread)"
        lines.append(
            f"  {kind}: per-subject average (mean over {average['n_f1']} subject(s)): F1 "
            f"{_number(average['f1'])}{spread}"
        )
    return lines


def _with_ci(pooled: Mapping[str, Any], metric: str) -> str:
    low, high = pooled.get(f"{metric}_ci") or (math.nan, math.nan)
    return f"{_number(pooled[metric])} [{_number(low)}, {_number(high)}]"


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


# ---------------------------------------------------------------------------------------
# Calibration and event-level selection on validation data

#: How a threshold (and a checkpoint) is chosen on validation: SzCORE event F1, or event
#: sensitivity among thresholds whose false alarms stay within a budget per 24 h.
SELECTION_CRITERIA = ("event_f1", "sensitivity_at_fa")
#: Thresholds tried on the calibrated probability.
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.05))
_LOGIT_FLOOR = 1e-30  # probabilities are clipped here before taking log-odds
#: Weight of the window log-loss that breaks ties between equal event scores.
TIE_BREAK_WEIGHT = 1e-3


def log_odds(probabilities: Sequence[float] | np.ndarray) -> np.ndarray:
    """Seizure log-odds ``log p - log(1 - p)`` of probabilities, clipped away from 0 and 1."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _LOGIT_FLOOR, 1.0)
    q = np.clip(1.0 - p, _LOGIT_FLOOR, 1.0)
    return np.log(p) - np.log(q)


def calibrate(logits: Sequence[float] | np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated seizure probability ``sigmoid(logit / temperature)``, float64."""
    return special.expit(np.asarray(logits, dtype=np.float64) / temperature)


def log_loss(
    probabilities: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray
) -> float:
    """Mean binary log-loss of seizure ``probabilities`` against 0/1 ``labels``."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _LOGIT_FLOOR, 1 - 1e-16)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))) if y.size else math.nan


def fit_temperature(
    logits: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray
) -> float:
    """The temperature that minimises the log-loss of ``labels`` (0/1) on ``logits``.

    Returns 1.0 (no change) when only one class is present: a temperature fitted on one
    class would only push every probability to the extremes.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if labels.size == 0 or labels.min() == labels.max():
        return 1.0

    def loss(log_t: float) -> float:
        z = logits / math.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, z) - labels * z))

    fit = optimize.minimize_scalar(loss, bounds=(math.log(0.05), math.log(50.0)), method="bounded")
    return float(math.exp(fit.x))


@dataclass(frozen=True)
class Selection:
    """How the event threshold and the checkpoint are chosen on validation.

    Parameters
    ----------
    criterion : {"event_f1", "sensitivity_at_fa"}
        Pooled SzCORE event F1, or pooled event sensitivity where the false positives per
        24 h stay within ``fa_per_24h`` (a threshold over budget scores 0).
    fa_per_24h : float
        The false-alarm budget of ``sensitivity_at_fa``.
    """

    criterion: str = "event_f1"
    fa_per_24h: float = 1.0

    def __post_init__(self) -> None:
        if self.criterion not in SELECTION_CRITERIA:
            raise ConfigError(
                f"task.selection={self.criterion!r} is not a selection criterion",
                hint=f"use one of {', '.join(SELECTION_CRITERIA)}",
            )
        if self.fa_per_24h < 0:
            raise ConfigError(f"the false-alarm budget must be ≥ 0, got {self.fa_per_24h}")

    def score(self, pooled: Mapping[str, float]) -> float:
        """The selection score of pooled event scores (undefined counts as 0)."""
        value = pooled["f1"] if self.criterion == "event_f1" else pooled["sensitivity"]
        if self.criterion == "sensitivity_at_fa" and not pooled["fp_per_24h"] <= self.fa_per_24h:
            return 0.0
        return 0.0 if math.isnan(value) else float(value)

    def rank(self, pooled: Mapping[str, float], log_loss: float) -> float:
        """What a checkpoint is selected on: :meth:`score`, ties broken by the window
        log-loss of the calibrated probabilities (weighted :data:`TIE_BREAK_WEIGHT`, capped
        at 1, so it orders epochs of equal event score and never outranks one event).

        With a few validation seizures event F1 saturates early (every epoch finds the 2
        seizures of the simulated validation subject); without the tie-break the first
        such epoch would be kept, however poor its probabilities."""
        return self.score(pooled) - TIE_BREAK_WEIGHT * min(float(log_loss), 1.0)


@dataclass
class ValidationRecording:
    """One validation recording: window starts, calibrated probabilities, reference."""

    subject: str
    recording: str
    start_s: np.ndarray
    probabilities: np.ndarray
    reference: Events
    duration_s: float


def choose_threshold(
    recordings: Sequence[ValidationRecording],
    window_s: float,
    post: PostProcessing,
    selection: Selection,
    thresholds: Sequence[float] = THRESHOLD_GRID,
) -> dict[str, Any]:
    """The threshold whose pooled SzCORE event score on ``recordings`` is best.

    Ties go to fewer false positives, then to the threshold nearest 0.5. An
    ``off_threshold`` above a candidate is lowered to it.

    Returns
    -------
    dict
        ``threshold``, ``score``, ``criterion``, ``fa_per_24h`` and the pooled event
        scores (``event``) at that threshold.
    """
    best: tuple[tuple[float, float, float], float, dict[str, float]] | None = None
    for threshold in thresholds:
        off = None if post.off_threshold is None else min(post.off_threshold, threshold)
        candidate = dataclasses.replace(post, threshold=float(threshold), off_threshold=off)
        counts = Counts()
        for rec in recordings:
            detected = probabilities_to_events(rec.probabilities, rec.start_s, window_s, candidate)
            counts = counts + score_recording(rec.reference, detected, rec.duration_s).event
        pooled = counts.scores() | {"tp": counts.tp, "fp": counts.fp, "ref_true": counts.ref_true}
        key = (selection.score(pooled), -counts.fp, -abs(threshold - 0.5))
        if best is None or key > best[0]:
            best = (key, float(threshold), pooled)
    if best is None:
        raise ValueError("no thresholds to choose from")
    return {
        "threshold": best[1],
        "score": best[0][0],
        "criterion": selection.criterion,
        "fa_per_24h": selection.fa_per_24h,
        "event": best[2],
    }


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
