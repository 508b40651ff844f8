"""Seizure detection: a window classifier whose outputs become events scored the SzCORE way."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from neurodecode import plots
from neurodecode.data.annotations import write_szcore_events
from neurodecode.data.manifest import load_manifest
from neurodecode.errors import ManifestError, UnknownNameError
from neurodecode.evaluation.seizure import (
    Events,
    PostProcessing,
    Selection,
    ValidationRecording,
    aggregate,
    calibrate,
    choose_threshold,
    fit_temperature,
    log_loss,
    log_odds,
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


def dataset_kind(name: str) -> str:
    """``"simulated"`` for a dataset its manifest generates, ``"real"`` for recorded data,
    ``"unknown"`` when no manifest of that name can be read."""
    try:
        source = load_manifest(name).source
    except (ManifestError, UnknownNameError):
        return "unknown"
    return "simulated" if source.kind == "generated" else "real"


def training_provenance(
    cache: Any, split: Any, references: Mapping[str, Mapping[str, Any]], dataset: str
) -> dict[str, Any]:
    """What a seizure model is trained, selected and tested on, as plain data.

    Parameters
    ----------
    cache : WindowCache
        The run's window cache (``index``, ``meta``).
    split : neurodecode.data.splits.Split
        Row positions of the train, validation and test parts.
    references : mapping
        :func:`seizure_references` of the cache.
    dataset : str
        The dataset's name (its manifest says whether it is simulated).

    Returns
    -------
    dict
        ``datasets``, ``kind`` (simulated, real or unknown), ``simulated_only``,
        ``montage``, ``channels``, ``sfreq`` and per part (``train``, ``valid``, ``test``)
        the subjects, number of recordings, hours and annotated seizures.
    """
    kind = dataset_kind(dataset)
    parts = {}
    for part in ("train", "valid", "test"):
        recordings = sorted(set(cache.index["recording"].iloc[split.part(part)].astype(str)))
        entries = [references[r] for r in recordings if r in references]
        parts[part] = {
            "subjects": sorted({str(e["subject"]) for e in entries}),
            "n_recordings": len(recordings),
            "hours": sum(float(e["duration_s"]) for e in entries) / 3600.0,
            "n_seizures": sum(len(e["events"]) for e in entries),
        }
    channels = (cache.meta.get("config") or {}).get("channels") or {}
    return {
        "datasets": [dataset],
        "kind": kind,
        "simulated_only": kind == "simulated",
        "montage": channels.get("target"),
        "channels": list(cache.ch_names),
        "sfreq": float(cache.sfreq),
        "parts": parts,
    }


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
        :class:`~neurodecode.evaluation.seizure.PostProcessing`. ``threshold`` is where
        selection starts; with ``calibrate`` it is refitted on validation every epoch.
    selection, fa_per_24h
        How the threshold (and, through ``monitor: val/selection``, the checkpoint) is
        chosen on validation: see :class:`~neurodecode.evaluation.seizure.Selection`.
    calibrate : bool
        Fit a temperature (log-loss of the validation windows) and the threshold (SzCORE
        event score of the validation recordings) at the end of every validation epoch;
        both are stored in the checkpoint (``calibration``) and used for testing.

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
        selection: str = "event_f1",
        fa_per_24h: float = 1.0,
        calibrate: bool = True,
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
        self.selection = Selection(selection, fa_per_24h)
        self.fit_calibration = calibrate
        self.calibration: dict[str, Any] = {"temperature": 1.0, "threshold": threshold,
                                            "fitted_on": None}  # fmt: skip
        self.references: dict[str, dict[str, Any]] = {}
        self.detected_events: dict[str, Events] = {}
        self.provenance: dict[str, Any] = {}

    @classmethod
    def from_data(cls, cfg: DictConfig, data: RunData, model: Mapping[str, Any]) -> Self:
        """The task sized by ``data``, scoring against the cache's annotated seizures and
        knowing what it is trained, selected and tested on (:func:`training_provenance`)."""
        task = super().from_data(cfg, data, model)
        task.set_references(seizure_references(data.source))
        task.provenance = training_provenance(
            data.source, data.datamodule.split, task.references, str(data.provenance["dataset"])
        )
        return task

    def run_metrics(self, trainer: Any, monitor: str) -> dict[str, Any]:
        """The run's metrics with the calibration of the tested checkpoint and the
        provenance of the model (data, selection, headline test scores)."""
        metrics = super().run_metrics(trainer, monitor)
        selected = {"criterion": self.selection.criterion, "monitor": monitor}
        if self.selection.criterion == "sensitivity_at_fa":
            selected["fa_per_24h"] = self.selection.fa_per_24h
        test = ((metrics.get("test") or {}).get("szcore") or {}).get("event", {}).get("pooled")
        provenance = self.provenance | {"selection": selected, "test_event_scores": test}
        return metrics | {"calibration": dict(self.calibration), "provenance": provenance}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the calibration fitted at this epoch with its weights."""
        checkpoint["calibration"] = dict(self.calibration)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the calibration of a checkpoint (so testing uses that epoch's)."""
        if "calibration" in checkpoint:
            self._set_calibration(checkpoint["calibration"])

    def _set_calibration(self, calibration: Mapping[str, Any]) -> None:
        self.calibration = dict(calibration)
        self.post_processing = dataclasses.replace(
            self.post_processing,
            threshold=float(calibration["threshold"]),
            off_threshold=None
            if self.post_processing.off_threshold is None
            else min(self.post_processing.off_threshold, float(calibration["threshold"])),
        )

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
        """The calibrated seizure probability of a predictions DataFrame (class 1, whatever
        its name, at the fitted temperature)."""
        p = self.probabilities_of(frame)[:, 1]
        temperature = float(self.calibration["temperature"])
        return p if temperature == 1.0 else calibrate(log_odds(p), temperature)

    def calibrate_on(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Fit the temperature and choose the threshold on validation predictions.

        Returns the calibration (``temperature``, ``threshold``, ``selection_score``,
        ``criterion``, the validation event scores at that threshold, ``fitted_on``).
        """
        raw = self.probabilities_of(frame)[:, 1]
        temperature = fit_temperature(log_odds(raw), frame["y"].to_numpy() == 1)
        self.calibration = {"temperature": temperature, "threshold": self.calibration["threshold"]}
        recordings = []
        for recording, windows in frame.groupby("recording", sort=True):
            reference, duration = self._reference(str(recording), windows)
            recordings.append(ValidationRecording(
                str(windows["subject"].iloc[0]), str(recording), windows["start_s"].to_numpy(),
                self.seizure_probability(windows), reference, duration))  # fmt: skip
        chosen = choose_threshold(recordings, self.window_s, self.post_processing, self.selection)
        self._set_calibration({
            "temperature": temperature, "threshold": chosen["threshold"],
            "selection_score": chosen["score"], "criterion": chosen["criterion"],
            "validation_event_scores": chosen["event"],
            "fitted_on": f"validation: {len(recordings)} recording(s), {len(frame)} windows",
        })  # fmt: skip
        return self.calibration

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
        self._log_szcore(stage, szcore)
        return frame, {"window": window_metrics, "szcore": szcore}

    def _log_szcore(self, stage: str, szcore: Mapping[str, Any]) -> None:
        summary = {
            f"{stage}/event_f1": szcore["event"]["pooled"]["f1"],
            f"{stage}/event_f1_per_subject": szcore["event"]["per_subject"]["f1"],
            f"{stage}/event_sensitivity": szcore["event"]["pooled"]["sensitivity"],
            f"{stage}/event_precision": szcore["event"]["pooled"]["precision"],
            f"{stage}/fp_per_24h": szcore["event"]["pooled"]["fp_per_24h"],
            f"{stage}/sample_f1": szcore["sample"]["pooled"]["f1"],
        }
        self.log_dict({k: float(v) for k, v in summary.items() if not np.isnan(v)})

    def on_validation_epoch_end(self) -> None:
        """Calibrate on this epoch's validation windows (when asked), log the selection
        score ``val/selection`` and the SzCORE scores at the chosen threshold."""
        frame, _ = self._epoch_metrics("val")
        if frame.empty:
            return
        if self.fit_calibration:
            self.calibrate_on(frame)
        szcore = self.score_events(frame)
        self._log_szcore("val", szcore)
        loss = log_loss(self.seizure_probability(frame), frame["y"].to_numpy() == 1)
        self.log("val/selection", self.selection.rank(szcore["event"]["pooled"], loss))
        self.log("val/calibrated_log_loss", loss)
        self.log("val/temperature", float(self.calibration["temperature"]))
        self.log("val/threshold", float(self.calibration["threshold"]))

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
