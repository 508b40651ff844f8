"""Write a trained model as ``model.safetensors`` + ``config.json`` + ``README.md``.

How the constructor arguments of a model are found (the only thing the Hub format needs
from a model class), first match wins:

1. ``model_kwargs=`` passed to :func:`export_model`;
2. ``model.config_dict()``, for encoders (:class:`~neurodecode.models.base.EncoderBase`
   records the arguments its subclasses are built with);
3. a mapping ``model.hparams`` (the Lightning convention);
4. ``model.model_config``, set by :func:`build_model`, which builds any registered model
   and records the arguments it was given.

The architecture name is ``model_name=``, else the ``_target_`` recorded by one of the
above, else the model's registered name (``MODELS.name_of``). Only registered models can be
exported, because only registered models can be loaded back.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from neurodecode import __version__, jsonio
from neurodecode.data import scaling
from neurodecode.errors import CheckpointError, ConfigError, ForeignTargetError, UnknownNameError
from neurodecode.hub.card import render_card
from neurodecode.hub.format import (
    CARD_NAME,
    CONFIG_NAME,
    FORMAT_VERSION,
    RESULTS_NAME,
    WEIGHTS_NAME,
    sha256_of,
)
from neurodecode.hub.load import (
    check_model_spec,
    inside,
    load_state,
    read_config,
    read_run_record,
    refuse_interpolations,
)
from neurodecode.models.adapters import ADAPTERS, add_adapters, merge_adapters
from neurodecode.models.base import EncoderBase
from neurodecode.registry import MODELS
from neurodecode.tasks.seizure import dataset_kind

logger = logging.getLogger(__name__)

_SIGNAL_ARGS = ("n_chans", "n_outputs", "n_times", "sfreq")


def build_model(name: str, /, **kwargs: Any) -> torch.nn.Module:
    """Build the registered model ``name`` and record its arguments for export.

    Parameters
    ----------
    name : str
        Registered model name (``neurodecode.registry.MODELS``).
    **kwargs
        Constructor arguments (``n_chans, n_outputs, n_times, sfreq, chs_info, ...``).

    Returns
    -------
    torch.nn.Module
        The model, with ``model.model_config = {"_target_": name, **kwargs}``.
    """
    model = MODELS.build(name, **kwargs)
    model.model_config = {"_target_": name, **kwargs}
    return model


def model_config(
    model: torch.nn.Module,
    *,
    model_name: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"_target_": registered name, **constructor arguments}`` for ``model``.

    Raises
    ------
    ConfigError
        If the constructor arguments cannot be found (see the module docstring).
    ForeignTargetError
        If the architecture is not a registered neurodecode model.
    """
    recorded = _recorded_arguments(model) if model_kwargs is None else dict(model_kwargs)
    if recorded is None:
        raise ConfigError(
            f"cannot tell which arguments built this {type(model).__name__}",
            hint="build it with neurodecode.hub.build_model(name, **kwargs), derive the class "
            "from neurodecode.models.base.EncoderBase, or pass model_kwargs= to export_model",
        )
    name = model_name or recorded.pop("_target_", None)
    recorded.pop("_target_", None)
    if name is None:
        try:
            name = MODELS.name_of(model)
        except UnknownNameError as err:
            raise ForeignTargetError(
                f"{type(model).__qualname__} is not a registered neurodecode model, so it could "
                "not be loaded back from the Hub",
                hint="register it with @neurodecode.registry.MODELS.register(name)",
            ) from err
    if name not in MODELS:
        raise ForeignTargetError(
            f"model name {name!r} is not registered", hint="valid: " + ", ".join(MODELS.names())
        )
    return {"_target_": name, **jsonio.jsonable(recorded, strict=True, where="model arguments")}


def _recorded_arguments(model: torch.nn.Module) -> dict[str, Any] | None:
    if isinstance(model, EncoderBase):
        return model.config_dict()
    for attribute in ("hparams", "model_config"):
        value = getattr(model, attribute, None)
        if isinstance(value, Mapping):
            return dict(value)
    return None


def export_model(
    model: torch.nn.Module,
    out_dir: str | Path,
    *,
    ch_names: Sequence[str] | None = None,
    ch_pos: np.ndarray | Sequence[Sequence[float]] | None = None,
    units: str | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    labels: Sequence[str] | None = None,
    task: str | None = None,
    dataset: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    card: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` into ``out_dir``.

    Parameters
    ----------
    model : torch.nn.Module
        A registered neurodecode model (see the module docstring for how its constructor
        arguments are found); fine-tuning adapters are merged into a copy first.
    out_dir : str or Path
        Folder to write; created if needed. Existing export files in it are replaced.
    ch_names : sequence of str, optional
        Channel order the model expects. Defaults to the names in ``chs_info``.
    ch_pos : array-like (n_chans, 3), optional
        Electrode positions in metres (NaN unknown). Defaults to ``chs_info`` locations.
    units : str, optional
        Units of the input the model expects after preprocessing (e.g. ``"uV"``, ``"V"``,
        ``"z-score"``).
    preprocessing : mapping, optional
        The preprocessing config of the training data, which ``predict`` replays; with
        ``scaling.method: train_split`` its ``scaling.statistics`` or the export is refused.
    labels : sequence of str, optional
        Class names in output order.
    task, dataset : str, optional
        Task (e.g. ``"seizure"``, ``"motor_imagery"``) and training dataset names.
    metrics : mapping, optional
        Evaluation results, e.g. the ``metrics`` of a run's ``results.json``.
    card : mapping, optional
        Model-card fields: ``license``, ``description``, ``intended_use``, ``limitations``,
        ``citation``, ``tags``, ``datasets``.
    model_name, model_kwargs : optional
        Registered architecture name and constructor arguments, when the model does not
        record them itself.
    provenance : mapping, optional
        What the model was trained, selected and tested on, and its ``calibration`` fitted
        on validation (``temperature``, ``threshold``); ``predict`` applies and prints it.

    Returns
    -------
    Path
        ``out_dir``.
    """
    model = merge_adapters(model)  # a copy, LoRA/IA3/DoRA in the weights: loads without peft
    arch = model_config(model, model_name=model_name, model_kwargs=model_kwargs)
    signal = {**_signal_contract(arch, ch_names, ch_pos), "units": units}
    out = Path(out_dir)
    scaling.recorded_statistics(preprocessing, len(signal["ch_names"]), where=out / CONFIG_NAME)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "format_version": FORMAT_VERSION,
        "library_name": "neurodecode",
        "neurodecode_version": __version__,
        "model": arch,
        "signal": signal,
        "preprocessing": jsonio.jsonable(preprocessing, strict=True, where="preprocessing"),
        "labels": None if labels is None else [str(label) for label in labels],
        "task": task,
        "dataset": dataset,
        "metrics": jsonio.jsonable(dict(metrics or {}), strict=True, where="metrics"),
        "card": jsonio.jsonable(dict(card or {}), strict=True, where="card"),
        "provenance": jsonio.jsonable(provenance, strict=True, where="provenance"),
        "weights": _write_weights(model, out),
        "versions": {"neurodecode": __version__, "torch": torch.__version__},
    }
    return _write_export(out, config)


def _write_export(out: Path, config: Mapping[str, Any]) -> Path:
    """Write ``config.json`` and the model card of an export whose weights are written."""
    write_config(out, config)
    (out / CARD_NAME).write_text(render_card(config), encoding="utf-8")
    logger.info("exported %s (%d tensors) to %s", config["model"]["_target_"],
                config["weights"]["n_tensors"], out)  # fmt: skip
    return out


def _write_weights(model: torch.nn.Module, out: Path) -> dict[str, Any]:
    """Write ``model.safetensors`` into ``out``; return its ``config.json`` entry."""
    weights = out / WEIGHTS_NAME
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(weights), metadata={"format": "pt", "library": "neurodecode"})
    return {
        "file": WEIGHTS_NAME,
        "sha256": sha256_of(weights),
        "n_tensors": len(state),
        "n_parameters": int(sum(p.numel() for p in model.parameters())),
    }


def write_config(out_dir: Path, config: Mapping[str, Any]) -> None:
    """Write ``config.json`` as strict JSON: unknown (NaN) positions and metrics as ``null``."""
    text = jsonio.dumps(config, indent=2) + "\n"
    (out_dir / CONFIG_NAME).write_text(text, encoding="utf-8")


def copy_export(src: str | Path, out_dir: str | Path) -> Path:
    """Copy an exported folder to ``out_dir``, rewriting its ``config.json`` as strict JSON.

    Exports written before neurodecode wrote unknown positions as ``null`` hold bare ``NaN``
    tokens, which the Hub's config viewer and non-Python parsers reject; the copy does not.
    """
    src, out = Path(src), Path(out_dir)
    config = read_config(src / CONFIG_NAME)
    out.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS_NAME, CARD_NAME):
        shutil.copy2(src / name, out / name)
    write_config(out, config)
    return out


def _signal_contract(
    arch: Mapping[str, Any],
    ch_names: Sequence[str] | None,
    ch_pos: np.ndarray | Sequence[Sequence[float]] | None,
) -> dict[str, Any]:
    missing = [name for name in ("n_chans", "n_times", "sfreq") if name not in arch]
    if missing:
        raise ConfigError(
            f"model arguments lack the signal contract field(s) {missing}",
            hint="models take n_chans, n_outputs, n_times, sfreq, chs_info (DESIGN.md)",
        )
    chs_info = arch.get("chs_info") or []
    if ch_names is None and chs_info:
        ch_names = [str(ch["ch_name"]) for ch in chs_info]
    if ch_pos is None and chs_info and all(len(ch.get("loc") or []) >= 3 for ch in chs_info):
        ch_pos = [list(ch["loc"][:3]) for ch in chs_info]
    n_chans = int(arch["n_chans"])
    if ch_names is None:
        raise ConfigError(
            "the channel names the model expects are unknown",
            hint="pass ch_names= (in the order of the model's input rows) or chs_info",
        )
    ch_names = [str(name) for name in ch_names]
    if len(ch_names) != n_chans or len(set(ch_names)) != n_chans:
        raise ConfigError(
            f"{len(ch_names)} channel names (unique: {len(set(ch_names))}) for a "
            f"model with n_chans={n_chans}: {ch_names}"
        )
    positions = None
    if ch_pos is not None:
        positions = np.asarray(ch_pos, dtype=float)
        if positions.shape != (n_chans, 3):
            raise ConfigError(f"ch_pos has shape {positions.shape}; expected ({n_chans}, 3)")
    return {
        "ch_names": ch_names,
        "ch_pos": None if positions is None else positions.tolist(),
        "sfreq": float(arch["sfreq"]),
        "n_times": int(arch["n_times"]),
        "n_outputs": int(arch["n_outputs"]) if "n_outputs" in arch else None,
    }


# ---------------------------------------------------------------------------------------
# Run directories (``python -m neurodecode.train``; see neurodecode/train.py)

#: Where a task keeps its encoder in a Lightning checkpoint's ``state_dict``.
ENCODER_PREFIXES = ("encoder.", "model.encoder.")


def read_task_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The encoder weights and the hyper-parameters of a task's Lightning checkpoint.

    Read with ``torch.load(weights_only=True)`` (tensors and plain types only), for
    checkpoints you produced; downloaded files are never read this way.

    Returns
    -------
    encoder_state : dict of str to Tensor
        The weights under the first of :data:`ENCODER_PREFIXES` found, prefix removed.
    hparams : dict
        The task's hyper-parameters; ``hparams["model"]`` is the encoder config, and
        ``hparams["calibration"]`` the output calibration the task stored with these
        weights, when it did (seizure detection).

    Raises
    ------
    CheckpointError
        If the file cannot be read weights-only, holds no encoder with a model config, or
        its hyper-parameters hold an interpolation (they are plain data).
    ForeignTargetError
        If the model config names anything but a registered model.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for unsafe or damaged files
        raise CheckpointError(
            f"cannot read the checkpoint safely (weights only): {err}", path=path
        ) from err
    hparams = dict(ckpt.get("hyper_parameters") or {})
    if isinstance(ckpt.get("calibration"), Mapping):
        hparams["calibration"] = dict(ckpt["calibration"])
    state = ckpt.get("state_dict") or {}
    for prefix in ENCODER_PREFIXES:
        encoder = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if encoder and isinstance(hparams.get("model"), Mapping):
            refuse_interpolations(hparams, path=path)
            check_model_spec(hparams["model"], path=path)
            return encoder, hparams
    raise CheckpointError(
        "no encoder weights with a model config in the checkpoint's hyper-parameters",
        path=path,
        hint="export a model object with neurodecode.hub.export_model",
    )


def export_run(run_dir: str | Path, out_dir: str | Path, *, checkpoint: str = "best") -> Path:
    """Export the encoder trained in a run directory, with the run's metrics in its card.

    The run directory is what ``python -m neurodecode.train`` writes: ``results.json``
    (metrics, data description, resolved config, checkpoint paths) and Lightning
    checkpoints under ``checkpoints/``. The checkpoint is read with
    ``torch.load(weights_only=True)`` (tensors and plain types only; this is for checkpoints
    you produced yourself, downloaded files are never read this way); the architecture and
    signal contract come from its hyper-parameters, which are those of the task, and the
    adapters of a ``finetune.strategy=lora|ia3|dora`` run (merged) from its config. A
    pretraining run, which exports its encoder to ``encoder/`` itself, is copied
    (:func:`copy_export`).

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    out_dir : str or Path
        Where to write the export.
    checkpoint : {"best", "last"} or path
        Which checkpoint: the run's best on validation (default), its last, or a file.

    Raises
    ------
    CheckpointError
        If the run has no readable checkpoint, or it holds no encoder with its config.
    """
    run = Path(run_dir)
    if (run / "encoder" / CONFIG_NAME).is_file():  # a pretraining run exports its encoder
        return copy_export(run / "encoder", out_dir)
    results = read_run_record(run)
    ckpt_path = _checkpoint_path(run, results, checkpoint)
    encoder_state, hparams = read_task_checkpoint(ckpt_path)
    kwargs = _encoder_arguments(hparams, results, ckpt_path)
    name = kwargs.pop("_target_")
    model = build_model(name, **kwargs)
    config = results.get("config") or {}
    add_run_adapters(model, config.get("finetune") or {})
    load_state(model, encoder_state, path=ckpt_path)
    data = results.get("data") or {}
    metrics = dict(results.get("metrics") or {})
    provenance = metrics.pop("provenance", None) or run_provenance(results)
    metrics.pop("calibration", None)  # the exported checkpoint's own is in its hparams
    provenance = provenance | {"calibration": hparams.get("calibration")}
    return export_model(
        model.eval(),
        out_dir,
        preprocessing=data.get("preprocess") or config.get("preprocess"),
        labels=hparams.get("class_names") or data.get("classes"),
        task=results.get("recipe") or (config.get("task") or {}).get("module", {}).get("_target_"),
        dataset=data.get("dataset"),
        units=data.get("units"),
        metrics=metrics,
        provenance=provenance,
        card={
            "run": {
                "config_hash": results.get("config_hash"),
                "data_hash": results.get("data_hash"),
                "seed": results.get("seed"),
                "checkpoint": ckpt_path.name,
            }
        },
    )


def add_run_adapters(model: torch.nn.Module, finetune: Mapping[str, Any]) -> None:
    """The adapters a run trained (``finetune.strategy=lora|ia3|dora``), put on ``model``
    so that the run's checkpoint loads into it; :func:`export_model` then merges them."""
    strategy = finetune.get("strategy")
    if strategy in ADAPTERS:
        add_adapters(model, strategy, finetune.get("targets"), **(finetune.get("adapter") or {}))


def run_provenance(results: Mapping[str, Any]) -> dict[str, Any]:
    """What a run's data say of the model's provenance, for runs whose task recorded none:
    the dataset, whether it is simulated, the channels and the subjects of each part."""
    data = results.get("data") or {}
    dataset = data.get("dataset")
    kind = dataset_kind(str(dataset)) if dataset else "unknown"
    split = data.get("split") or {}
    return {
        "datasets": [dataset] if dataset else [],
        "kind": kind,
        "simulated_only": kind == "simulated",
        "channels": data.get("channels"),
        "sfreq": data.get("sfreq"),
        "parts": {
            part: {"subjects": (split.get(part) or {}).get("subjects")}
            for part in ("train", "valid", "test")
            if part in split
        },
        "recorded_by_task": False,
    }


def _checkpoint_path(run: Path, results: Mapping[str, Any], which: str) -> Path:
    recorded = (results.get("checkpoints") or {}).get(which) if which in ("best", "last") else None
    candidates = [inside(run, recorded, recorded_in=run / RESULTS_NAME)] if recorded else []
    if which in ("best", "last"):
        candidates += sorted((run / "checkpoints").glob(f"{which}*.ckpt"))
    else:
        candidates.append(Path(which))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CheckpointError(
        f"no {which!r} checkpoint in this run",
        path=run / "checkpoints",
        hint="checkpoint='last' or a .ckpt path selects another one",
    )


def _encoder_arguments(
    hparams: Mapping[str, Any], results: Mapping[str, Any], path: Path
) -> dict[str, Any]:
    """Constructor arguments of the encoder a task built (``tasks.base.build_encoder``)."""
    data = results.get("data") or {}
    kwargs = dict(hparams["model"])
    for key in _SIGNAL_ARGS:
        value = hparams.get(key, data.get(key))
        if value is None:
            raise CheckpointError(f"the checkpoint does not record {key!r}", path=path)
        kwargs[key] = value
    ch_names = hparams.get("ch_names") or data.get("channels")
    if ch_names:
        positions = hparams.get("ch_pos") or [[math.nan] * 3] * len(ch_names)
        kwargs["chs_info"] = [
            {"ch_name": str(name), "loc": [float(v) for v in xyz] + [0.0] * 9}
            for name, xyz in zip(ch_names, positions, strict=True)
        ]
    return kwargs
