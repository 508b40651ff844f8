"""Seizure detection on recorded files: events TSV, per-second probabilities, review figure.

:func:`predict_recording` runs a :class:`~neurodecode.predict.detector.Detector` over one
file in spans (see :mod:`neurodecode.predict.pipeline`), so memory stays flat however long
the recording; :func:`predict` does it for a file or every recording in a folder (a BIDS
dataset), goes on past recordings that fail, writes each input's own files (events, their
JSON sidecar with the model's provenance and calibration, ``<stem>_summary.json``) and keeps
the folder's index of every input predicted into it (``summary.json``, ``index.tsv``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from neurodecode import jsonio
from neurodecode.data import artifacts, io, montage, preprocess
from neurodecode.data.annotations import write_szcore_events
from neurodecode.errors import (
    ChannelError,
    ContractError,
    NeurodecodeError,
    PreprocessingError,
    RecordingError,
)
from neurodecode.evaluation.seizure import probabilities_to_events
from neurodecode.files import write_atomic
from neurodecode.hub.card import boxed, provenance_lines, simulated_warning
from neurodecode.predict import pipeline
from neurodecode.predict.detector import Detector, load_detector
from neurodecode.predict.figure import review_figure
from neurodecode.predict.report import write_report

logger = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"  # the folder's index of inputs, merged over calls
INDEX_NAME = "index.tsv"  # the same index as a table
INDEX_COLUMNS = ("input", "status", "n_events", "duration_s", "checkpoint", "predicted_at",
                 "summary", "message")  # fmt: skip
FOLDER_SKIP_SUFFIXES = {".txt"}  # README.txt and the like, not Bonn segments, in a folder


@dataclasses.dataclass
class Prediction:
    """What :func:`predict_recording` found in one recording.

    Attributes
    ----------
    source : Path
        The recording file.
    duration_s : float
    start_s, probabilities : numpy.ndarray
        Window starts (s) and seizure probabilities (NaN where a span failed).
    per_second : pandas.DataFrame
        ``second``, ``p_seizure`` and ``in_event`` for every second.
    events : list of (onset_s, offset_s)
    confidence : list of float
        Highest window probability within each event.
    qc : dict
        Channel decisions over the spans (:func:`pipeline.qc_summary`), failed spans,
        NaN/inf samples (``bad_samples``) and the time no scored window covers
        (``unscored``, ``[start_s, stop_s]`` pairs).
    outputs : dict
        Written files by kind (``events``, ``probabilities``, ``figure``, ``report``).
    elapsed_s : float
        Wall time of the prediction (reading to events, figure excluded).
    """

    source: Path
    duration_s: float
    start_s: np.ndarray
    probabilities: np.ndarray
    per_second: pd.DataFrame
    events: list[tuple[float, float]]
    confidence: list[float]
    qc: dict[str, Any]
    meas_date: Any = None
    outputs: dict[str, Path] = dataclasses.field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def status(self) -> str:
        """``"ok"``, or ``"partial"`` when some of the recording has no scored window."""
        return "partial" if self.qc.get("unscored") else "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays)."""
        return {
            "input": str(self.source),
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "n_windows": int(self.probabilities.size),
            "n_events": len(self.events),
            "events": [
                {"onset_s": round(a, 3), "duration_s": round(b - a, 3), "confidence": c}
                for (a, b), c in zip(self.events, self.confidence, strict=True)
            ],
            "max_probability": None
            if not np.isfinite(self.probabilities).any()
            else float(np.nanmax(self.probabilities)),
            "qc": self.qc,
            "elapsed_s": round(self.elapsed_s, 3),
            "realtime_factor": round(self.duration_s / self.elapsed_s, 1)
            if self.elapsed_s > 0
            else None,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
        }


def check_channels(detector: Detector, header: Any, allow_missing: bool = False) -> list[str]:
    """Check that the recording yields the model's channels; return the missing ones.

    Raises
    ------
    ChannelError
        When channels are missing (and ``allow_missing`` is false) or none can be derived:
        the message lists the missing channels, the recorded ones and how they were read.
    ContractError
        When the harmonised channels are not the model's (a checkpoint inconsistency).
    """
    empty = dataclasses.replace(header, signal=np.zeros((header.n_chans, 0), np.float32))
    kept = preprocess.pick_types(empty, list(detector.preprocess.channels.types))
    readings = [f"{n} → {montage.try_canonical_name(n) or '?'}" for n in kept.ch_names]
    target = detector.target if isinstance(detector.target, str) else "the model's channels"
    mapping = (
        f"tried: harmonise to {target} (pairs derived from chains of recorded channels, "
        f"referential targets need referential recordings); recorded channels read as "
        f"{', '.join(readings)}"
    )
    try:
        harmonised, mask = preprocess.harmonise_channels(kept, detector.target)
    except ChannelError as err:
        raise ChannelError(
            f"none of the model's {len(detector.ch_names)} channels can be derived; {mapping}",
            path=header.source,
            hint="rename the channels in the file (10-05 names) or use a model trained "
            "on this montage",
        ) from err
    if list(harmonised.ch_names) != detector.ch_names:
        raise ContractError(
            f"harmonising to {target} gives {harmonised.ch_names}, the model expects "
            f"{detector.ch_names}",
            path=detector.source,
        )
    missing = [n for n, ok in zip(harmonised.ch_names, mask, strict=True) if not ok]
    if missing and not allow_missing:
        raise ChannelError(
            f"{len(missing)} of the model's {len(mask)} channels are missing: "
            f"{', '.join(missing)}; {mapping}",
            path=header.source,
            hint="allow_missing_channels=true predicts with them zeroed and masked (less "
            "reliable), or rename the channels in the file",
        )
    return missing


def predict_recording(
    path: str | Path,
    detector: Detector | str | Path,
    output: str | Path | None = None,
    *,
    stem: str | Path | None = None,
    chunk_s: float = 600.0,
    batch_size: int = 64,
    allow_missing_channels: bool = False,
    figure: bool = True,
    annotation_format: str | None = None,
    progress: bool | None = None,
    overlap: bool = True,
) -> Prediction:
    """Detect seizures in one recording, in bounded memory.

    Parameters
    ----------
    path : str or Path
        An EDF/BDF/GDF/FIF/BrainVision/EEGLAB file or a BIDS recording folder.
    detector : Detector or str or Path
        A loaded detector, or a checkpoint for :func:`load_detector`.
    output : str or Path, optional
        Folder for the outputs; None writes nothing.
    stem : str or Path, optional
        Output path stem relative to ``output`` (default: the file name without suffix
        and without BIDS's ``_eeg``); files are ``<stem>_events.tsv`` (SzCORE BIDS),
        ``<stem>_probabilities.csv`` (one row per second), ``<stem>_review.png`` and
        ``<stem>_report.html`` (with its PNGs in ``<stem>_report/``).
    chunk_s : float
        Seconds preprocessed at once. A recording no longer than that is processed whole,
        exactly as the cache build does; a longer one in spans, scaled with statistics of
        the whole recording from a first pass (see :mod:`neurodecode.predict.pipeline`).
    batch_size : int
        Windows per model call.
    allow_missing_channels : bool
        Predict even if some model channels cannot be derived (zeroed and masked).
    figure : bool
        Write the review figure and the HTML review report.
    annotation_format : str, optional
        Passed to the reader (the recording's own annotations are not used for prediction).
    progress : bool, optional
        Progress bar; None shows it on a terminal only.
    overlap : bool
        Prepare the next span in a background thread while the current one is stored or
        scored (the same results as one after the other; one more span in memory); torch
        then runs with one thread fewer, leaving a core to the preprocessing.

    Returns
    -------
    Prediction

    Raises
    ------
    RecordingError, ChannelError, PreprocessingError, ContractError
        Unreadable file, missing channels, unusable sampling rate, shorter than a window.
    """
    if not isinstance(detector, Detector):
        detector = load_detector(detector)
    started = time.perf_counter()
    reader = pipeline.BridgedSource(io.open_recording(path, annotation_format=annotation_format))
    header = reader.header
    pipeline.check_recording(detector, header, reader.n_times)
    missing = check_channels(detector, header, allow_missing_channels)
    grid = pipeline.make_grid(detector, header.sfreq, reader.n_times)
    spans = pipeline.plan_spans(grid, chunk_s)
    bar = tqdm(total=len(spans), desc=Path(path).name, unit="span",
               disable=None if progress is None else not progress)  # fmt: skip
    with bar, _threads_beside_preprocessing(overlap):
        probabilities, qcs, failed = _score(detector, reader, grid, spans, batch_size, overlap, bar)
    qc = pipeline.qc_summary(qcs) | {"failed_spans": failed, "missing_channels": missing}
    qc |= _leave_unscored(probabilities, reader, grid)
    result = _prediction(detector, header, grid, reader.n_times, probabilities, qc)
    result.elapsed_s = time.perf_counter() - started
    if output is not None:
        write_outputs(result, detector, reader, grid, Path(output), stem, figure)
    return result


def _prediction(
    detector: Detector,
    header: Any,
    grid: pipeline.Grid,
    n_raw: int,
    probabilities: np.ndarray,
    qc: dict[str, Any],
) -> Prediction:
    """Events, their confidence and the per-second table from the window probabilities."""
    start_s = grid.window_starts() / grid.sfreq
    events = probabilities_to_events(
        np.nan_to_num(probabilities, nan=0.0), start_s, detector.window_s, detector.post
    )
    confidence = [
        float(np.nanmax(probabilities[(start_s < b) & (start_s + detector.window_s > a)]))
        for a, b in events
    ]
    duration = n_raw / header.sfreq
    table = pipeline.per_second(probabilities, start_s, detector.window_s, duration)
    seconds = table["second"].to_numpy()
    table["in_event"] = np.zeros(len(table), dtype=bool)
    for a, b in events:
        table.loc[(seconds + 1 > a) & (seconds < b), "in_event"] = True
    return Prediction(
        source=Path(header.source),
        duration_s=duration,
        start_s=start_s,
        probabilities=probabilities,
        per_second=table,
        events=events,
        confidence=confidence,
        qc=qc,
        meas_date=header.meas_date,
    )


def _leave_unscored(
    probabilities: np.ndarray, source: pipeline.BridgedSource, grid: pipeline.Grid
) -> dict[str, list]:
    """Set the windows holding NaN/inf samples to NaN (unscored); return those samples
    (``bad_samples``) and the time no scored window covers (``unscored``).

    Raises
    ------
    RecordingError
        When every window holds such a sample.
    """
    runs = source.bad_runs()
    probabilities[pipeline.windows_holding(grid, runs)] = np.nan
    gaps = pipeline.unscored_spans(probabilities, grid.window_starts() / grid.sfreq,
                                   grid.window / grid.sfreq, grid.n_raw / grid.raw_sfreq)  # fmt: skip
    unscored = [[round(a, 3), round(b, 3)] for a, b in gaps]
    if not runs:
        return {"bad_samples": [], "unscored": unscored}
    sfreq = grid.raw_sfreq
    described = [
        {"start_s": round(r.start / sfreq, 4), "stop_s": round(r.stop / sfreq, 4),
         "n_samples": r.stop - r.start, "channels": list(r.channels)}
        for r in runs
    ]  # fmt: skip
    text = "; ".join(
        f"{d['n_samples']} at {d['start_s']:.3f}-{d['stop_s']:.3f} s in {', '.join(d['channels'])}"
        for d in described[:5]
    )
    if not np.isfinite(probabilities).any():
        raise RecordingError(
            f"every window holds NaN/inf samples ({text})", path=source.header.source
        )
    logger.warning("%s: NaN/inf samples (%s): the windows holding them are not scored",
                   source.header.source, text)  # fmt: skip
    return {"bad_samples": described, "unscored": unscored}


def _score(
    detector: Detector,
    reader: pipeline.SampleSource,
    grid: pipeline.Grid,
    spans: list[tuple[int, int, np.ndarray]],
    batch_size: int,
    overlap: bool,
    bar: tqdm,
) -> tuple[np.ndarray, list[artifacts.RecordingQC], list[dict[str, Any]]]:
    """Probability of every window (NaN where its span failed), span QC and failed spans."""
    probabilities = np.full(len(grid.window_starts()), np.nan, dtype=np.float64)
    qcs, failed = [], []
    windows = pipeline.recording_windows(detector, reader, grid, spans, overlap)
    for (lo, out_stop, inside), span in zip(spans, windows, strict=True):
        bar.update()
        if isinstance(span, (PreprocessingError, RecordingError)):
            logger.warning("%s: %.0f-%.0f s not predicted: %s", reader.header.source,
                           lo / grid.sfreq, out_stop / grid.sfreq, span.reason)  # fmt: skip
            failed.append({"start_s": lo / grid.sfreq, "stop_s": out_stop / grid.sfreq,
                           "error": str(span)})  # fmt: skip
            continue
        qcs.append(span.qc)
        probabilities[inside] = detector.probabilities(span.x, span.mask, batch_size)
    if not qcs:
        raise PreprocessingError(
            f"every span failed: {failed[0]['error'] if failed else 'no windows'}",
            path=reader.header.source,
        )
    return probabilities, qcs, failed


@contextlib.contextmanager
def _threads_beside_preprocessing(overlap: bool) -> Iterator[None]:
    """Leave one core to the span-preprocessing thread: torch runs with one intra-op thread
    fewer while spans overlap (on 2 busy cores, 2 torch threads beside the preprocessing
    thread spin and made prediction 4x slower), and gets its count back afterwards."""
    threads = torch.get_num_threads()
    if overlap and threads > 1:
        torch.set_num_threads(threads - 1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def output_stem(path: Path, root: Path | None = None) -> Path:
    """``sub-01/ses-01/eeg/sub-01_..._run-01`` for a file under ``root``, else its name,
    without suffix and without BIDS's ``_eeg``/``_ieeg``/``_meg``."""
    name = path.name
    suffix = _recording_suffix(path)
    name = name[: -len(suffix)] if suffix else name
    for bids in ("_eeg", "_ieeg", "_meg"):
        if name.endswith(bids):
            name = name[: -len(bids)]
            break
    if root is not None:
        return path.parent.relative_to(root) / name
    return Path(name)


def _recording_suffix(path: Path) -> str | None:
    """The reader suffix (:data:`neurodecode.data.io.FORMATS`) the file name ends with."""
    lower = path.name.lower()
    return next((suffix for suffix in io.FORMATS if lower.endswith(suffix)), None)


def write_outputs(
    result: Prediction,
    detector: Detector,
    reader: Any,
    grid: pipeline.Grid,
    output: Path,
    stem: str | Path | None,
    figure: bool,
) -> None:
    """Write the events TSV, the per-second CSV, the review figure and the HTML review
    report (:mod:`neurodecode.predict.report`) of one recording."""
    base = output / (stem if stem is not None else output_stem(result.source))
    base.parent.mkdir(parents=True, exist_ok=True)
    events = pd.DataFrame(
        {
            "onset": [a for a, _ in result.events],
            "duration": [b - a for a, b in result.events],
            "eventType": "sz",
            "confidence": result.confidence,
        }
    )
    date_time = result.meas_date.replace(tzinfo=None) if result.meas_date else None
    result.outputs["events"] = write_szcore_events(
        base.with_name(base.name + "_events.tsv"),
        events,
        recording_duration=result.duration_s,
        date_time=date_time,
    )
    result.outputs["events_sidecar"] = write_events_sidecar(
        base.with_name(base.name + "_events.json"), result, detector
    )
    csv = base.with_name(base.name + "_probabilities.csv")
    result.per_second.to_csv(csv, index=False, float_format="%.6g")
    result.outputs["probabilities"] = csv
    if figure:
        result.outputs["figure"] = review_figure(
            result, detector, reader, grid, base.with_name(base.name + "_review.png")
        )
        result.outputs["report"] = write_report(
            result, detector, reader, grid, base, provenance=detector.provenance
        )


def write_events_sidecar(path: Path, result: Prediction, detector: Detector) -> Path:
    """The JSON sidecar of ``<stem>_events.tsv``: what the columns mean, the model and what
    it was trained on (its provenance), its calibration and post-processing, and the
    warnings a reader must see (a model trained only on simulated data)."""
    sidecar = {
        "events_file": path.with_suffix(".tsv").name,
        "recording": {"input": str(result.source), "duration_s": result.duration_s},
        "columns": {
            "onset": "event start, seconds from the recording start",
            "duration": "event length in seconds",
            "confidence": "highest calibrated seizure probability of the event's windows "
            f"(temperature {detector.temperature:.4g} fitted on validation; 1 = uncalibrated)",
        },
        "threshold": detector.post.threshold,
        "post_processing": dataclasses.asdict(detector.post),
        "checkpoint": detector.source,
        "model": detector.info,
        "provenance": detector.provenance,
        "warnings": [" ".join(simulated_warning(detector.provenance))]
        if simulated_warning(detector.provenance)
        else [],
    }
    return jsonio.write_json(path, sidecar)


def announce(detector: Detector, stream: Any = None) -> None:
    """Print what the model was trained on, and a boxed warning when it saw only simulated
    data, to ``stream`` (standard error by default) before anything is predicted."""
    stream = sys.stderr if stream is None else stream
    lines = provenance_lines(detector.provenance)
    stream.write("\n".join(["Model provenance:", *lines]) + "\n")
    warning = simulated_warning(detector.provenance)
    if warning:
        stream.write(boxed(warning) + "\n")


def unique_stem(output: Path, stem: Path, source: Path) -> Path:
    """``stem``, or ``stem_2``, ``stem_3``... when another input's outputs hold that name in
    ``output`` (its ``<stem>_summary.json`` names a different input)."""
    candidate, n = stem, 1
    while True:
        summary = output / candidate.with_name(candidate.name + "_summary.json")
        if not summary.is_file() or _summary_input(summary) == str(source):
            return candidate
        n += 1
        candidate = stem.with_name(f"{stem.name}_{n}")


def _summary_input(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("input")
    except (OSError, ValueError, AttributeError):
        return None


def write_input_summary(output: Path, stem: Path, entry: dict[str, Any]) -> Path:
    """``<stem>_summary.json``: one input's status, events, QC and files."""
    path = output / stem.with_name(stem.name + "_summary.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    return jsonio.write_json(path, entry)


def update_index(output: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Merge this call's inputs into the folder's index (``summary.json`` and
    ``index.tsv``): an input predicted again replaces its row, other inputs keep theirs."""
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads((output / SUMMARY_NAME).read_text())
    fresh = {entry["input"] for entry in summary["recordings"] + summary["failed"]}
    recordings = [e for e in previous.get("recordings", []) if e.get("input") not in fresh]
    failed = [e for e in previous.get("failed", []) if e.get("input") not in fresh]
    recordings, failed = recordings + summary["recordings"], failed + summary["failed"]
    index = summary | {
        "recordings": recordings,
        "failed": failed,
        "n_recordings": len(recordings) + len(failed),
        "n_ok": sum(entry["status"] == "ok" for entry in recordings),
        "n_partial": sum(entry["status"] == "partial" for entry in recordings),
        "n_failed": len(failed),
    }
    jsonio.write_json(output / SUMMARY_NAME, index)
    rows = [[str(entry.get(column, "")) for column in INDEX_COLUMNS]
            for entry in sorted(recordings + failed, key=lambda e: e["input"])]  # fmt: skip
    table = "\n".join("\t".join(row) for row in [list(INDEX_COLUMNS), *rows]) + "\n"
    write_atomic(output / INDEX_NAME, table)
    return index


def find_recordings(folder: Path) -> list[Path]:
    """Recording files under ``folder`` (any suffix the readers know), sorted."""
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() in FOLDER_SKIP_SUFFIXES:
            continue
        if _recording_suffix(path) is not None:
            found.append(path)
    return found


def predict(
    checkpoint: str | Path | Detector,
    input: str | Path,  # noqa: A002 (the CLI's name)
    output: str | Path,
    **options: Any,
) -> dict[str, Any]:
    """Predict on a file or on every recording in a folder; keep the folder's index.

    Prints the model's provenance (and a boxed warning for a model trained only on
    simulated data) to standard error first. Each input gets its own files (a name taken
    by another input's outputs gets a ``_2`` suffix), ``<stem>_summary.json`` among them.
    Recordings that fail (unreadable, missing channels, unusable rate, too short) are
    listed with the reason, logged, and the others are processed. ``summary.json`` and
    ``index.tsv`` index every input ever predicted into ``output`` with its status.

    Parameters
    ----------
    checkpoint : str, Path or Detector
        See :func:`~neurodecode.predict.detector.load_detector`.
    input : str or Path
        A recording file, or a folder: every recording file below it (a BIDS dataset,
        one subject, one recording folder).
    output : str or Path
        Output folder (created).
    **options
        Passed to :func:`predict_recording` (``chunk_s``, ``batch_size``,
        ``allow_missing_channels``, ``figure``, ``progress``).

    Returns
    -------
    dict
        This call's summary: the model, its provenance, and this call's ``recordings``
        and ``failed`` inputs (``summary.json`` holds the whole folder's).
    """
    detector = checkpoint if isinstance(checkpoint, Detector) else load_detector(checkpoint)
    source, output = Path(input), Path(output)
    if not source.exists():
        raise RecordingError("no such file or folder", path=source)
    output.mkdir(parents=True, exist_ok=True)
    paths = [source] if source.is_file() else find_recordings(source)
    if not paths:
        raise RecordingError(
            "no recording files in this folder",
            path=source,
            hint=f"recognised suffixes: {', '.join(io.FORMATS)}",
        )
    announce(detector)
    recordings, failed = [], []
    for path in paths:
        stem = unique_stem(output, output_stem(path, None if source.is_file() else source), path)
        entry = _predict_input(path, detector, output, stem, options)
        (failed if entry["status"] == "failed" else recordings).append(entry)
    summary = {
        "checkpoint": detector.source,
        "model": detector.info,
        "provenance": detector.provenance,
        "input": str(source),
        "output": str(output),
        "channels": detector.ch_names,
        "sfreq": detector.sfreq,
        "window_s": detector.window_s,
        "stride_s": detector.stride_s,
        "post_processing": dataclasses.asdict(detector.post),
        "options": {k: v for k, v in options.items() if k != "progress"},
        "n_recordings": len(paths),
        "n_ok": sum(r["status"] == "ok" for r in recordings),
        "n_partial": sum(r["status"] == "partial" for r in recordings),
        "n_failed": len(failed),
        "recordings": recordings,
        "failed": failed,
    }
    update_index(output, summary)
    return summary


def _predict_input(
    path: Path, detector: Detector, output: Path, stem: Path, options: dict[str, Any]
) -> dict[str, Any]:
    """Predict one input into its own files; its entry of the index (ok or failed)."""
    stamp = {"checkpoint": detector.source,
             "predicted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}  # fmt: skip
    try:
        result = predict_recording(path, detector, output, stem=stem, **options)
    except NeurodecodeError as err:
        logger.error("%s", err)
        entry = {"input": str(path), "status": "failed", "error": type(err).__name__,
                 "message": str(err)} | stamp  # fmt: skip
    else:
        logger.info("%s: %d event(s), %.0f s at %.0f× real time", path, len(result.events),
                    result.duration_s, result.duration_s / max(result.elapsed_s, 1e-9))  # fmt: skip
        entry = result.to_dict() | stamp
    summary = output / stem.with_name(stem.name + "_summary.json")
    entry["summary"] = str(summary)
    write_input_summary(output, stem, entry)
    return entry
