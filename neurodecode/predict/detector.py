"""A seizure detector rebuilt from a checkpoint: model, preprocessing, channels, post-processing.

Checkpoints come as a Hub id (``org/name``, ``hf://org/name@rev``), an exported folder
(``model.safetensors`` + ``config.json``), a training run folder (``runs/<recipe>/<time>/``)
or a Lightning ``.ckpt`` of such a run. Hub ids and exported folders are read through
safetensors (:func:`neurodecode.hub.from_pretrained`); runs and ``.ckpt`` files are read
with ``torch.load(weights_only=True)``, which is meant for checkpoints you trained yourself.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from neurodecode import hub
from neurodecode.data.preprocess import load_preprocess_config
from neurodecode.data.windows import n_window_samples
from neurodecode.errors import CheckpointError, ConfigError
from neurodecode.evaluation.seizure import PostProcessing
from neurodecode.hub import read_task_checkpoint
from neurodecode.hub.load import read_run_record
from neurodecode.resources import resource_dir
from neurodecode.tasks.seizure import dataset_kind

logger = logging.getLogger(__name__)

#: Post-processing of the seizure task (``configs/task/seizure.yaml``), for checkpoints
#: that do not record their own.
POST_PROCESSING_KEYS = ("threshold", "off_threshold", "smoothing_windows", "merge_gap_s",
                        "min_duration_s")  # fmt: skip
SEIZURE_LABELS = ("seizure", "sz")


@dataclass
class Detector:
    """Everything needed to turn raw samples into seizure probabilities and events.

    Attributes
    ----------
    model : torch.nn.Module
        In eval mode; maps ``(batch, n_chans, n_times)`` to ``(batch, n_outputs)`` logits.
    ch_names : list of str
        The model's input rows (after harmonisation).
    ch_pos : numpy.ndarray
        ``(n_chans, 3)`` float32 positions in metres (NaN unknown).
    sfreq : float
        Model input rate (Hz).
    n_times : int
        Samples per window.
    stride : int
        Samples between window starts (the preprocessing's ``windows.stride_s``).
    preprocess : DictConfig
        The checkpoint's preprocessing config.
    target : str or list of str
        Channel set to harmonise recordings to (a montage preset or the model's channels).
    positive : int
        Index of the seizure output.
    post : PostProcessing
        Probabilities → events.
    source : str
        The checkpoint as given.
    labels : list of str, optional
        Output names.
    info : dict
        Model, task, dataset and input units, for summaries.
    temperature : float
        Calibration fitted on validation: the seizure probability is
        ``softmax(logits / temperature)`` (1: the model's own probabilities).
    provenance : dict
        What the model was trained, selected and tested on (:func:`model_provenance`).
    """

    model: torch.nn.Module
    ch_names: list[str]
    ch_pos: np.ndarray
    sfreq: float
    n_times: int
    stride: int
    preprocess: DictConfig
    target: str | list[str]
    positive: int
    post: PostProcessing
    source: str
    labels: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def window_s(self) -> float:
        """Window length in seconds."""
        return self.n_times / self.sfreq

    @property
    def stride_s(self) -> float:
        """Seconds between window starts."""
        return self.stride / self.sfreq

    @torch.inference_mode()
    def probabilities(self, x: np.ndarray, mask: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Calibrated seizure probability of each window ``x`` (``(n, n_chans, n_times)``,
        scaled), in float64 so that a confident window keeps its distance from 1."""
        out = np.empty(len(x), dtype=np.float64)
        pos = torch.from_numpy(np.asarray(self.ch_pos, np.float32))
        mask_t = torch.from_numpy(np.asarray(mask, bool))
        for i in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], np.float32))
            n = batch.shape[0]
            logits = self.model(
                batch,
                ch_pos=pos.expand(n, -1, -1),
                ch_mask=mask_t.expand(n, -1),
            )
            scaled = logits.double() / self.temperature
            out[i : i + n] = torch.softmax(scaled, dim=-1)[:, self.positive].numpy()
        return out


def load_detector(
    checkpoint: str | Path,
    *,
    post: Mapping[str, Any] | None = None,
    preprocess: str | Path | None = None,
    revision: str | None = None,
) -> Detector:
    """Rebuild the detector of a checkpoint.

    Parameters
    ----------
    checkpoint : str or Path
        Hub id, exported folder, run folder or ``.ckpt`` file (see the module docstring).
    post : mapping, optional
        Post-processing settings (:class:`~neurodecode.evaluation.seizure.PostProcessing`
        fields); None values keep the checkpoint's own, else the seizure task's defaults.
    preprocess : str or Path, optional
        A preprocessing config (name in ``configs/preprocess`` or YAML file) to use instead
        of the checkpoint's own; needed only for a ``.ckpt`` outside its run folder.
    revision : str, optional
        Hub revision.

    Raises
    ------
    CheckpointError
        Unreadable or incomplete checkpoint, or one that does not say how its data were
        preprocessed.
    """
    path = Path(str(checkpoint)).expanduser()
    hparams: dict[str, Any] = {}
    if path.is_file() and path.suffix == ".ckpt":
        run = path.parent.parent
        if not (run / hub.export.RESULTS_NAME).is_file():
            raise CheckpointError(
                "a .ckpt file is read with its run folder (results.json holds the "
                "preprocessing and channels it was trained with); none found two levels up",
                path=path,
                hint="give the run folder or the .ckpt inside runs/<recipe>/<time>/checkpoints/",
            )
        hparams = _task_hparams(path)
        pretrained = _from_run(run, checkpoint=str(path))
    elif path.is_dir() and (path / hub.export.RESULTS_NAME).is_file():
        pretrained = _from_run(path)
        hparams = _run_task_settings(path)
    else:
        pretrained = hub.from_pretrained(checkpoint, revision=revision)
    config = _preprocess_config(pretrained.preprocessing, preprocess, str(checkpoint))
    calibration = (pretrained.config.get("provenance") or {}).get("calibration") or {}
    _check_windows(config, pretrained, str(checkpoint))
    ch_pos = pretrained.ch_pos
    if ch_pos is None:
        ch_pos = np.full((len(pretrained.ch_names), 3), np.nan)
    target = config.channels.target
    return Detector(
        model=pretrained.model.eval(),
        ch_names=list(pretrained.ch_names),
        ch_pos=np.asarray(ch_pos, np.float32),
        sfreq=pretrained.sfreq,
        n_times=pretrained.n_times,
        stride=n_window_samples(config.windows.stride_s, pretrained.sfreq),
        preprocess=config,
        target=list(pretrained.ch_names) if target is None else target,
        positive=_positive_output(pretrained.labels, pretrained.config, str(checkpoint)),
        post=_post_processing(hparams, post, calibration),
        source=str(checkpoint),
        labels=pretrained.labels,
        info={
            "model": pretrained.config["model"]["_target_"],
            "task": pretrained.config.get("task"),
            "dataset": pretrained.config.get("dataset"),
            "units": pretrained.units,
        },
        temperature=float(calibration.get("temperature") or 1.0),
        provenance=model_provenance(pretrained.config),
    )


def model_provenance(config: Mapping[str, Any]) -> dict[str, Any]:
    """What an exported model was trained on: its recorded ``provenance`` (which holds the
    output ``calibration``), else what its ``dataset`` name tells (simulated, real, unknown).

    A plain dict for summaries, sidecars and figures: ``datasets``, ``kind``,
    ``simulated_only``, ``montage``, ``parts`` (subjects, recordings, hours and seizures of
    train/valid/test), ``selection``, ``test_event_scores``, ``calibration``, ``recorded``
    (false when the checkpoint recorded none and this is inferred from its dataset name).
    """
    recorded = dict(config.get("provenance") or {})
    if not recorded:
        dataset = config.get("dataset")
        kind = dataset_kind(str(dataset)) if dataset else "unknown"
        recorded = {"datasets": [dataset] if dataset else [], "kind": kind,
                    "simulated_only": kind == "simulated", "recorded": False}  # fmt: skip
    recorded.setdefault("recorded", True)
    return recorded


def _check_windows(config: DictConfig, pretrained: Any, checkpoint: str) -> None:
    """Refuse event-locked windows, or windows whose length is not the model's input."""
    if config.windows.mode != "sliding":
        raise ConfigError(
            f"the checkpoint's windows are event-locked (windows.mode={config.windows.mode}); "
            "prediction slides windows over whole recordings",
            path=checkpoint,
        )
    window = n_window_samples(config.windows.length_s, pretrained.sfreq)
    if window != pretrained.n_times:
        raise CheckpointError(
            f"preprocessing windows of {config.windows.length_s} s ({window} samples) do not "
            f"match the model's {pretrained.n_times} samples",
            path=checkpoint,
        )


def _post_processing(
    hparams: dict[str, Any], post: Mapping[str, Any] | None, calibration: Mapping[str, Any]
) -> PostProcessing:
    """The checkpoint's post-processing with its threshold chosen on validation (when it
    has one), overridden by ``post``, else the task defaults."""
    settings = {key: hparams.get(key) for key in POST_PROCESSING_KEYS}
    if calibration.get("threshold") is not None:
        settings["threshold"] = calibration["threshold"]
    settings.update({k: v for k, v in (post or {}).items() if v is not None})
    defaults = _seizure_task_defaults()
    settings = {k: defaults[k] if settings.get(k) is None and k != "off_threshold" else settings[k]
                for k in POST_PROCESSING_KEYS}  # fmt: skip
    if settings["off_threshold"] is not None:  # a chosen threshold may lie below it
        settings["off_threshold"] = min(settings["off_threshold"], settings["threshold"])
    return PostProcessing(**settings)


def _from_run(run: Path, checkpoint: str = "best") -> Any:
    """Export a run's encoder into a temporary folder and load it back (weights only)."""
    with tempfile.TemporaryDirectory(prefix="neurodecode-predict-") as folder:
        hub.export_run(run, folder, checkpoint=checkpoint)
        return hub.from_pretrained(folder)


def _task_hparams(path: Path) -> dict[str, Any]:
    _, hparams = read_task_checkpoint(path)
    return hparams


def _run_task_settings(run: Path) -> dict[str, Any]:
    """Post-processing settings of a run's task (its resolved config in results.json)."""
    results = read_run_record(run)  # plain data, never resolved
    module = ((results.get("config") or {}).get("task") or {}).get("module") or {}
    return {key: module[key] for key in POST_PROCESSING_KEYS if key in module}


def _seizure_task_defaults() -> dict[str, Any]:
    import yaml

    module = yaml.safe_load((resource_dir("configs") / "task" / "seizure.yaml").read_text())
    return {key: module["module"][key] for key in POST_PROCESSING_KEYS}


def _preprocess_config(
    recorded: Mapping[str, Any] | None, override: str | Path | None, where: str
) -> DictConfig:
    if override is not None:
        return load_preprocess_config(override)
    if not recorded:
        raise CheckpointError(
            "the checkpoint does not record how its training data were preprocessed",
            path=where,
            hint="pass preprocess=<name or YAML file> (configs/preprocess) to say it",
        )
    return load_preprocess_config("default", overrides=dict(recorded))


def _positive_output(labels: list[str] | None, config: Mapping[str, Any], where: str) -> int:
    """Index of the seizure output: the label named seizure/sz, else 1 of a 2-output model."""
    if labels:
        for i, label in enumerate(labels):
            if str(label).lower() in SEIZURE_LABELS:
                return i
        raise CheckpointError(
            f"the model's outputs {labels} include no seizure class "
            f"({' or '.join(SEIZURE_LABELS)})",
            path=where,
            hint="prediction writes seizure events; use a seizure-detection checkpoint",
        )
    n_outputs = (config.get("signal") or {}).get("n_outputs")
    if n_outputs not in (None, 2):
        raise CheckpointError(
            f"unlabelled model with {n_outputs} outputs: which one is seizure?", path=where
        )
    return 1
