"""Start a task from a pretrained encoder: ``init_from=<run dir | checkpoint | export | Hub id>``.

Sources, first match wins:

* weights in braindecode's Hub format (a folder or ``hf://`` repository whose
  ``config.json`` has ``braindecode_version``), for a braindecode model of the recipe
  (``model=labram``, ...): loaded by :mod:`neurodecode.hub.foundation` with braindecode's
  own loader and a weight-coverage report, refused below ``min_matched``;
* a folder with an exported model (``config.json`` + ``model.safetensors``), or a
  pretraining run folder (``runs/pretrain/<time>/``, holding ``encoder/``): loaded by
  :func:`neurodecode.hub.from_pretrained` itself (plain-data config, registered model only,
  safetensors only, weights checked and loaded strictly);
* a run folder with only Lightning checkpoints (``checkpoints/last.ckpt``), or a ``.ckpt``
  file: read with ``torch.load(weights_only=True)`` (tensors and plain types only, nothing
  unpickled that could run code), the encoder taken from the ``model.encoder.`` (pretraining)
  or ``encoder.`` (fine-tuning tasks) weights and the architecture from the checkpoint's
  hyper-parameters;
* otherwise a Hugging Face Hub repository (``org/name``, ``hf://org/name@revision``).

A run folder's ``results.json`` may say where its encoder and last checkpoint are; both
must lie inside the run folder. The run layer reads the source before any data work.

The task's encoder is built with the **pretrained architecture** (the recipe's ``model``
group is replaced, signal contract from the data) and receives every pretrained weight
except the output head, which is new. Loading reports matched, missing and unexpected
weights and refuses, before copying anything, an encoder of another architecture, other
shapes, another sampling rate, or any missing or unexpected weight outside the head.

Modes: ``linear_probe`` trains only the head (encoder frozen); ``finetune`` trains
everything with layer-wise learning-rate decay (layer ``l`` of ``L`` gets
``lr * layer_decay ** (L - l)``; the head gets ``lr``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neurodecode.errors import CheckpointError, ConfigError, ContractError
from neurodecode.hub.export import read_task_checkpoint
from neurodecode.hub.format import CONFIG_NAME, RESULTS_NAME
from neurodecode.hub.foundation import (
    BraindecodeSource,
    Coverage,
    load_braindecode,
    read_braindecode_source,
)
from neurodecode.hub.load import from_pretrained, inside, load_state, read_run_record
from neurodecode.models.base import FINAL_LAYER, upgrade_state_dict
from neurodecode.registry import MODELS

logger = logging.getLogger(__name__)

MODES = ("linear_probe", "finetune")
SIGNAL_ARGUMENTS = ("n_chans", "n_outputs", "n_times", "sfreq", "chs_info")
HEAD_PREFIX = f"{FINAL_LAYER}."
#: Where a pretraining run keeps its exported encoder, and any run its last checkpoint.
ENCODER_FOLDER = "encoder"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


@dataclass
class InitSource:
    """A pretrained encoder read from disk or the Hub.

    Attributes
    ----------
    model : dict
        ``{"_target_": registered name, **constructor arguments}`` as pretrained.
    state : dict of str to Tensor
        Its weights.
    source : str
        Where they came from (for messages).
    """

    model: dict[str, Any]
    state: dict[str, torch.Tensor]
    source: str

    @property
    def sfreq(self) -> float | None:
        """Sampling rate (Hz) the encoder was trained at, if recorded."""
        value = self.model.get("sfreq")
        return None if value is None else float(value)


@dataclass
class LoadReport:
    """What an initialisation copied: weight names matched, missing (new) and unexpected."""

    source: str
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"initialised from {self.source}: {len(self.matched)} weights matched, "
            f"{len(self.missing)} missing (new: {', '.join(self.missing) or 'none'}), "
            f"{len(self.unexpected)} unexpected"
        )


def read_init_source(init_from: str | Path) -> InitSource | BraindecodeSource:
    """Read and check the pretrained encoder named by ``init_from`` (see the module docstring).

    An export is loaded exactly as :func:`neurodecode.hub.from_pretrained` loads it (plain
    ``config.json``, registered model only, ``model.safetensors`` checked against its
    SHA-256 and loaded strictly), so a run refuses a bad source before any data work.

    Raises
    ------
    CheckpointError
        If nothing loadable is found there, the folder holds only pickle files, or a file
        it points to lies outside it.
    ForeignTargetError
        If the model config names anything but a registered model.
    """
    braindecode = read_braindecode_source(init_from)  # braindecode's Hub format
    if braindecode is not None:
        return braindecode
    path = Path(str(init_from)).expanduser()
    if path.is_file():
        if path.suffix != ".ckpt":
            raise CheckpointError(
                "init_from names a file that is not a Lightning .ckpt",
                path=path,
                hint="give the folder of an exported model, not a file inside it",
            )
        return _read_checkpoint(path)
    if path.is_dir() and not (path / CONFIG_NAME).exists():
        run = _read_run(path)
        if run is not None:
            return run
    return _read_export(path if path.is_dir() else str(init_from))


def _read_run(run: Path) -> InitSource | None:
    """The encoder of a run folder: its export, else its last checkpoint (None: neither).

    Where its ``results.json`` records them (``encoder``, ``checkpoints.last``) they are
    taken from there, and refused if they lie outside the run folder.
    """
    record = read_run_record(run) if (run / RESULTS_NAME).is_file() else {}
    where = run / RESULTS_NAME if record else run
    encoder = inside(run, record.get("encoder") or ENCODER_FOLDER, recorded_in=where)
    if encoder.is_dir():
        return _read_export(encoder)
    last = (record.get("checkpoints") or {}).get("last") or LAST_CHECKPOINT
    checkpoint = inside(run, last, recorded_in=where)
    return _read_checkpoint(checkpoint) if checkpoint.is_file() else None


def _read_export(source: str | Path) -> InitSource:
    pretrained = from_pretrained(source)
    state = {k: v.detach().clone() for k, v in pretrained.model.state_dict().items()}
    return InitSource(dict(pretrained.config["model"]), state, str(source))


def _read_checkpoint(path: Path) -> InitSource:
    encoder, hparams = read_task_checkpoint(path)  # plain data, registered model only
    model = dict(hparams["model"])
    for key in ("n_chans", "n_times", "sfreq"):
        if key in hparams:
            model.setdefault(key, hparams[key])
    return InitSource(model, encoder, str(path))


def architecture(model: Mapping[str, Any]) -> dict[str, Any]:
    """A model config without its signal-contract arguments (those come from the data)."""
    return {k: v for k, v in model.items() if k not in SIGNAL_ARGUMENTS}


def model_for_task(
    model: Mapping[str, Any], source: InitSource | BraindecodeSource | None
) -> dict[str, Any]:
    """The model config a task is built with: the recipe's (also for braindecode-format
    weights, whose config names no class), or the pretrained architecture."""
    if source is None or isinstance(source, BraindecodeSource):
        return dict(model)
    pretrained = architecture(source.model)
    if model.get("_target_") != pretrained.get("_target_"):
        logger.info(
            "init_from: building %s (the pretrained architecture) instead of the recipe's %s",
            pretrained.get("_target_"),
            model.get("_target_"),
        )
    return pretrained


def load_encoder(
    encoder: nn.Module, source: InitSource, *, sfreq: float | None = None
) -> LoadReport:
    """Copy the pretrained weights (all but the head) into ``encoder``, after checking.

    Raises
    ------
    CheckpointError
        Another architecture, weights missing outside the head, unexpected weights, or
        shapes that differ (nothing is copied then).
    ContractError
        If the data's sampling rate differs from the one the encoder was trained at.
    """
    name = source.model.get("_target_")
    try:
        own_name = MODELS.name_of(encoder)
    except Exception:  # an unregistered encoder cannot match a registered name
        own_name = type(encoder).__name__
    if name != own_name:
        raise CheckpointError(
            f"incompatible encoder: the pretrained one is {name!r}, the task's is {own_name!r}",
            path=source.source,
        )
    if (
        sfreq is not None
        and source.sfreq is not None
        and not math.isclose(sfreq, source.sfreq, rel_tol=1e-6)
    ):
        raise ContractError(
            f"the data are sampled at {sfreq:g} Hz, the encoder was pretrained at "
            f"{source.sfreq:g} Hz",
            path=source.source,
            hint=f"set preprocess.resample={source.sfreq:g}",
        )
    state = {
        k: v for k, v in upgrade_state_dict(source.state).items() if not k.startswith(HEAD_PREFIX)
    }
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    not_head = [k for k in missing if not k.startswith(HEAD_PREFIX)]
    if not_head or unexpected:
        raise CheckpointError(
            f"incompatible encoder: {len(not_head)} weight(s) missing from the pretrained one "
            f"{not_head[:8]}, {len(unexpected)} unexpected {unexpected[:8]}",
            path=source.source,
            hint="fine-tune with the same architecture as pretraining (its config.json)",
        )
    load_state(encoder, state, allow_partial=True, path=source.source)
    report = LoadReport(source.source, sorted(set(own) & set(state)), missing, unexpected)
    logger.info(report.summary())
    return report


def layer_groups(
    task: nn.Module, encoder: nn.Module, *, lr: float, layer_decay: float
) -> list[dict[str, Any]]:
    """AdamW parameter groups with layer-wise learning-rate decay over ``encoder``.

    The encoder must say the depth of each parameter (``encoder.layer_of(name)``, 0 for
    the input embedding up to its head); parameters of ``task`` outside the encoder get
    ``lr``. Frozen parameters are left out.
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ConfigError(f"layer_decay must lie in (0, 1], got {layer_decay}")
    layer_of = getattr(encoder, "layer_of", None)
    encoder_ids = {id(p) for p in encoder.parameters()}
    by_layer: dict[int, list[nn.Parameter]] = {}
    if layer_of is None:
        if layer_decay != 1.0:
            logger.warning(
                "%s does not say its layers; layer-wise lr decay is off", type(encoder).__name__
            )
        layer_of, top = (lambda name: 0), 0
    else:
        top = max(layer_of(n) for n, _ in encoder.named_parameters())
    for name, parameter in encoder.named_parameters():
        if parameter.requires_grad:
            by_layer.setdefault(layer_of(name), []).append(parameter)
    groups = [
        {"params": params, "lr": lr * layer_decay ** (top - layer)}
        for layer, params in sorted(by_layer.items())
    ]
    rest = [p for p in task.parameters() if p.requires_grad and id(p) not in encoder_ids]
    if rest:
        groups.append({"params": rest, "lr": lr})
    return groups


def initialise(
    task: nn.Module,
    source: InitSource | BraindecodeSource,
    *,
    mode: str = "finetune",
    layer_decay: float = 0.75,
    min_matched: float = 0.9,
    sfreq: float | None = None,
) -> LoadReport | Coverage:
    """Load ``source`` into ``task.encoder`` and set up ``linear_probe`` or ``finetune``.

    ``task`` is a :class:`~neurodecode.tasks.base.DecodingTask`; its ``param_groups`` are
    set for layer-wise decay, and in ``linear_probe`` mode every encoder weight outside the
    head is frozen. braindecode-format weights are loaded by
    :func:`neurodecode.hub.foundation.load_braindecode`, refused below ``min_matched``.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown fine-tuning mode {mode!r}; expected one of {MODES}")
    if isinstance(source, BraindecodeSource):
        report = load_braindecode(task.encoder, source, min_matched=min_matched)
    else:
        report = load_encoder(task.encoder, source, sfreq=sfreq)
    if mode == "linear_probe":
        head = {id(p) for p in task.encoder.final_layer.parameters()}
        for parameter in task.encoder.parameters():
            parameter.requires_grad = id(parameter) in head
        layer_decay = 1.0
    task.param_groups = layer_groups(task, task.encoder, lr=task.lr, layer_decay=layer_decay)
    return report
