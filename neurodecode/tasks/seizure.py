"""Seizure detection: a window classifier whose outputs become events scored the SzCORE way."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from neurodecode import plots
from neurodecode.data.annotations import write_szcore_events
from neurodecode.evaluation.seizure import (
    Events,
    PostProcessing,
    aggregate,
    probabilities_to_events,
    score_recording,
)
from neurodecode.registry import TASKS
from neurodecode.tasks.base import RunData
from neurodecode.tasks.classification import ClassificationTask

logger = logging.getLogger(__name__)


def seizure_references(cache: Any, seizure_class: int = 1) -> dict[str, dict[str, Any]]:
    """Annotated seizures and duration of every cached recording, for event scoring."""
    events = cache.events
    references = {}
    for recording, info in cache.meta["recordings"].items():
        rows = events[(events["recording"] == recording) & (events["label"] == seizure_class)]
        references[recording] = {
            "subject": str(info.get("subject", "")),
            "duration_s": float(info["duration_s"]),
            "events": [
                (float(o), float(o + d))
                for o, d in zip(rows["onset"], rows["duration"], strict=True)
            ],
        }
    return references


def bids_event_paths(cache: Any) -> dict[str, Path]:
    """``{recording: sub-*/.../<stem>_events.tsv}`` for recordings stored in a BIDS layout.

    SzCORE scores a folder of hypotheses against the reference dataset file by file, so
    detections keep the relative path of their recording with ``_eeg.<ext>`` replaced by
    ``_events.tsv``. Recordings outside a BIDS layout are left to the default name.
    """
    paths = {}
    for recording, info in cache.meta["recordings"].items():
        parts = Path(info["source"]).parts
        start = next((i for i, part in enumerate(parts) if part.startswith("sub-")), None)
        if start is None:
            continue
        stem = Path(*parts[start:]).with_suffix("")
        base = stem.name[: -len("_eeg")] if stem.name.endswith("_eeg") else stem.name
        paths[recording] = stem.with_name(f"{base}_events.tsv")
    return paths


@TASKS.register("seizure")
class SeizureTask(ClassificationTask):
    """Two-class (background, seizure) window classifier with event post-processing.

    Parameters
    ----------
    model, n_chans, n_times, sfreq, ch_names, ch_pos, class_weights, label_smoothing, **optim
        As for :class:`~neurodecode.tasks.classification.ClassificationTask`
        (``n_outputs`` is fixed to 2, class 1 is seizure).
    threshold, off_threshold, smoothing_windows, merge_gap_s, min_duration_s
        Post-processing of the seizure probabilities, see
        :class:`~neurodecode.evaluation.seizure.PostProcessing`.

    Notes
    -----
    Batches must carry ``subject``, ``recording`` and ``start_s``. At the end of validation
    and test, each recording's window probabilities become events that are scored against
    the reference events with ``timescoring`` (SzCORE parameters) and aggregated per
    subject and pooled. Reference events and recording durations come from
    :meth:`set_references`; without it they are rebuilt from the window labels (union of
    the seizure windows), which is coarser and logged as a warning.
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        n_chans: int,
        n_times: int,
        sfreq: float,
        n_outputs: int = 2,
        ch_names: Sequence[str] | None = None,
        ch_pos: Sequence[Sequence[float]] | None = None,
        class_names: Sequence[str] | None = ("background", "seizure"),
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        threshold: float = 0.5,
        off_threshold: float | None = None,
        smoothing_windows: int = 1,
        merge_gap_s: float = 0.0,
        min_duration_s: float = 0.0,
        **optim: float,
    ) -> None:
        if n_outputs != 2:
            raise ValueError(
                f"seizure detection has two classes (background, seizure), got {n_outputs}"
            )
        super().__init__(
            model,
            n_chans,
            2,
            n_times,
            sfreq,
            ch_names=ch_names,
            ch_pos=ch_pos,
            class_names=class_names,
            class_weights=class_weights,
            label_smoothing=label_smoothing,
            **optim,
        )
        self.save_hyperparameters()
        self.window_s = n_times / sfreq
        self.post_processing = PostProcessing(
            threshold=threshold,
            off_threshold=off_threshold,
            smoothing_windows=smoothing_windows,
            merge_gap_s=merge_gap_s,
            min_duration_s=min_duration_s,
        )
        self.references: dict[str, dict[str, Any]] = {}
        self.detected_events: dict[str, Events] = {}

    @classmethod
    def from_data(cls, cfg: DictConfig, data: RunData, model: Mapping[str, Any]) -> Self:
        """The task sized by ``data``, scoring against the cache's annotated seizures."""
        task = super().from_data(cfg, data, model)
        task.set_references(seizure_references(data.source))
        return task

    def artifacts(self, run_dir: Path, data: RunData) -> dict[str, Path | list[Path]]:
        """The confusion matrix, the seizure probability timeline and the detections as
        SzCORE ``events/*_events.tsv`` files (BIDS paths where the data are BIDS)."""
        out = super().artifacts(run_dir, data)
        if self.test_predictions is None:
            return out
        timeline = plots.seizure_timeline(
            self.test_predictions,
            self.references,
            self.detected_events,
            self.post_processing.threshold,
            self.window_s,
            run_dir / "plots" / "seizure_probability.png",
        )
        out["plots"] = [*out.get("plots", []), timeline]
        out["events"] = self.write_events(run_dir / "events", bids_event_paths(data.source))
        return out

    def set_references(self, references: Mapping[str, Mapping[str, Any]]) -> None:
        """Give the annotated seizures of each recording.

        Parameters
        ----------
        references : mapping
            ``{recording: {"subject": str, "duration_s": float, "events": [(onset, offset),
            ...]}}`` with times in seconds from the recording start.
        """
        self.references = {str(k): dict(v) for k, v in references.items()}

    def _reference(self, recording: str, windows: pd.DataFrame) -> tuple[Events, float]:
        if recording in self.references:
            entry = self.references[recording]
            return [tuple(e) for e in entry["events"]], float(entry["duration_s"])
        logger.warning(
            "no reference events given for recording %s; rebuilding them from window labels",
            recording,
        )
        seizure = windows[windows["y"] == 1]
        events = probabilities_to_events(
            np.ones(len(seizure)), seizure["start_s"].to_numpy(), self.window_s
        )
        return events, float(windows["start_s"].max() + self.window_s)

    def seizure_probability(self, frame: pd.DataFrame) -> np.ndarray:
        """The seizure-class column of a predictions DataFrame (class 1, whatever its name)."""
        return self.probabilities_of(frame)[:, 1]

    def score_events(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Post-process and SzCORE-score a predictions DataFrame (one row per window)."""
        missing = {"subject", "recording", "start_s"} - set(frame.columns)
        if missing:
            raise KeyError(f"seizure scoring needs batch keys {sorted(missing)}")
        scores = []
        self.detected_events = {}
        for recording, windows in frame.groupby("recording", sort=True):
            recording = str(recording)
            detected = probabilities_to_events(
                self.seizure_probability(windows),
                windows["start_s"].to_numpy(),
                self.window_s,
                self.post_processing,
            )
            reference, duration = self._reference(recording, windows)
            self.detected_events[recording] = detected
            subject = str(windows["subject"].iloc[0])
            scores.append(
                score_recording(reference, detected, duration, subject=subject, recording=recording)
            )
        return aggregate(scores)

    def _epoch_szcore(self, stage: str) -> tuple[pd.DataFrame, dict[str, Any]]:
        frame, window_metrics = self._epoch_metrics(stage)
        if frame.empty:
            return frame, {}
        szcore = self.score_events(frame)
        summary = {
            f"{stage}/event_f1": szcore["event"]["pooled"]["f1"],
            f"{stage}/event_f1_per_subject": szcore["event"]["per_subject"]["f1"],
            f"{stage}/event_sensitivity": szcore["event"]["pooled"]["sensitivity"],
            f"{stage}/event_precision": szcore["event"]["pooled"]["precision"],
            f"{stage}/fp_per_24h": szcore["event"]["pooled"]["fp_per_24h"],
            f"{stage}/sample_f1": szcore["sample"]["pooled"]["f1"],
        }
        self.log_dict({k: float(v) for k, v in summary.items() if not np.isnan(v)})
        return frame, {"window": window_metrics, "szcore": szcore}

    def on_validation_epoch_end(self) -> None:
        self._epoch_szcore("val")

    def on_test_epoch_end(self) -> None:
        self.test_predictions, self.test_metrics = self._epoch_szcore("test")

    def write_events(
        self, directory: str | Path, paths: Mapping[str, str | Path] | None = None
    ) -> list[Path]:
        """Write the events detected in the last test as SzCORE BIDS ``*_events.tsv`` files.

        Parameters
        ----------
        directory : str or path-like
            Output root.
        paths : mapping, optional
            ``{recording: relative path}`` of each file below ``directory`` (e.g. the BIDS
            path ``sub-01/ses-01/eeg/sub-01_ses-01_task-szMonitoring_run-00_events.tsv``, so
            the folder can be scored against the reference dataset file by file). Default:
            ``<recording>_events.tsv``.

        Notes
        -----
        Each event's ``confidence`` is the highest seizure probability of its windows; a
        recording without detections gets SzCORE's single ``bckg`` row.
        """
        if self.test_predictions is None:
            raise RuntimeError("write_events needs a finished test run (trainer.test)")
        directory = Path(directory)
        paths = paths or {}
        written = []
        for recording, windows in self.test_predictions.groupby("recording", sort=True):
            recording = str(recording)
            events = self.detected_events.get(recording, [])
            starts, p = windows["start_s"].to_numpy(), self.seizure_probability(windows)
            confidence = [
                float(p[(starts < offset) & (starts + self.window_s > onset)].max())
                for onset, offset in events
            ]
            table = pd.DataFrame(
                {
                    "onset": [a for a, _ in events],
                    "duration": [b - a for a, b in events],
                    "eventType": "sz",
                    "confidence": confidence,
                }
            )
            _, duration = self._reference(recording, windows)
            path = directory / paths.get(recording, f"{Path(recording).name}_events.tsv")
            written.append(write_szcore_events(path, table, recording_duration=duration))
        return written
