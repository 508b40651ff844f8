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

Strategies (``finetune.strategy``, :func:`apply_strategy`; generic over any encoder with
a ``final_layer`` head, the operations in :mod:`neurodecode.models.adapters`):

* ``frozen``: the head trains, the encoder is frozen (in evaluation mode, so its weights and
  batch-norm statistics stay bit for bit as pretrained);
* ``ridge``: the head is a ridge classifier fitted in closed form on the frozen features,
  its penalty chosen on the validation split, written into ``final_layer``;
* ``lora``, ``ia3``, ``dora``: adapters of the ``peft`` library on the layers the model
  config names (``peft_targets``); the adapters and the head train; an export merges them;
* ``full`` (the default): everything trains with layer-wise learning-rate decay (layer
  ``l`` of ``L`` gets ``lr * layer_decay ** (L - l)``; the head gets ``lr``);
* ``two_stage``: ``head_epochs`` epochs of ``frozen``, then ``full``.
"""

from __future__ import annotations

import functools
import logging
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from neurodecode.errors import CheckpointError, ConfigError, ContractError, did_you_mean
from neurodecode.hub.export import export_run, read_task_checkpoint
from neurodecode.hub.format import CONFIG_NAME, RESULTS_NAME
from neurodecode.hub.foundation import (
    BraindecodeSource,
    Coverage,
    load_braindecode,
    read_braindecode_source,
)
from neurodecode.hub.load import from_pretrained, inside, load_state, read_run_record
from neurodecode.models.adapters import (
    ADAPTERS,
    PEFT_TARGETS,
    add_adapters,
    fit_ridge,
    freeze_encoder,
    head_prefix,
    holds_adapters,
    model_arguments,
    ridge_input_layer,
    train_head_only,
    write_linear_head,
)
from neurodecode.models.base import upgrade_state_dict
from neurodecode.registry import MODELS
from neurodecode.resources import model_config_path

logger = logging.getLogger(__name__)

STRATEGIES = ("frozen", "ridge", *ADAPTERS, "full", "two_stage")
#: LoRA/DoRA settings (``finetune.adapter``) when the config leaves them out.
ADAPTER_DEFAULTS = {"rank": 8, "alpha": 16.0, "dropout": 0.0}
#: Ridge penalties tried when the config leaves them out.
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
SIGNAL_ARGUMENTS = ("n_chans", "n_outputs", "n_times", "sfreq", "chs_info")
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
    return _read_checkpoint(checkpoint, run=run) if checkpoint.is_file() else None


def _read_export(source: str | Path) -> InitSource:
    pretrained = from_pretrained(source)
    state = {k: v.detach().clone() for k, v in pretrained.model.state_dict().items()}
    return InitSource(dict(pretrained.config["model"]), state, str(source))


def _read_checkpoint(path: Path, run: Path | None = None) -> InitSource:
    """The encoder of a task's checkpoint; one with adapters (``finetune.strategy=lora|ia3|
    dora``) is exported from its ``run`` folder, adapters merged, and read from there."""
    encoder, hparams = read_task_checkpoint(path)  # plain data, registered model only
    if holds_adapters(encoder):
        if run is None:
            raise CheckpointError(
                "the checkpoint holds fine-tuning adapters (finetune.strategy=lora|ia3|dora); "
                "merging them needs its run's results.json",
                path=path,
                hint="give init_from the run folder, or an export of it (neurodecode hub export)",
            )
        with tempfile.TemporaryDirectory() as tmp:
            merged = _read_export(export_run(run, Path(tmp) / "export", checkpoint=str(path)))
        return InitSource(merged.model, merged.state, str(path))
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
    weights, whose config names no class), or the pretrained architecture.

    The recipe's ``peft_targets`` (read by the adapter strategies through
    ``finetune.targets``) is not a model argument and is left out.
    """
    if source is None or isinstance(source, BraindecodeSource):
        return model_arguments(model)
    pretrained = architecture(source.model)
    if model.get("_target_") != pretrained.get("_target_"):
        logger.info(
            "init_from: building %s (the pretrained architecture) instead of the recipe's %s",
            pretrained.get("_target_"),
            model.get("_target_"),
        )
    return pretrained


def adapter_targets(targets: Sequence[str] | None, recipe_model: Mapping[str, Any],
                    built: Mapping[str, Any]) -> list[str] | None:  # fmt: skip
    """``finetune.targets`` for the model the task is built with.

    Left unset, ``finetune.targets`` is the recipe model's ``peft_targets``; when
    ``init_from=`` builds another architecture, those name layers of a model that is not
    there, so the built architecture's own ``configs/model/<name>.yaml`` decides instead.
    Targets given explicitly are kept.
    """
    recipe_target, built_target = recipe_model.get("_target_"), built.get("_target_")
    if built_target == recipe_target or list(targets or []) != list(
        recipe_model.get(PEFT_TARGETS) or []
    ):
        return None if targets is None else list(targets)
    name = MODELS.name_of(MODELS.get(str(built_target)))
    config = model_config_path(name)
    own = OmegaConf.load(config).get(PEFT_TARGETS) if config.is_file() else None
    logger.info("finetune.targets: %s's own peft_targets %s (the recipe's %s has other layers)",
                name, own, recipe_target)  # fmt: skip
    return None if own is None else [str(t) for t in own]


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
    head = head_prefix(encoder)
    state = {k: v for k, v in upgrade_state_dict(source.state).items() if not k.startswith(head)}
    own = encoder.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    not_head = [k for k in missing if not k.startswith(head)]
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
        raise ConfigError(f"finetune.layer_decay must lie in (0, 1], got {layer_decay}")
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


@dataclass(frozen=True)
class Strategy:
    """What ``finetune.*`` asks for (``configs/train.yaml``), checked.

    Attributes
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    layer_decay : float
        ``full`` and ``two_stage``: layer ``l`` of ``L`` trains at ``lr * layer_decay **
        (L - l)``, the head at ``lr``.
    head_epochs : int
        ``two_stage``: epochs that train the head alone before everything trains.
    targets : list of str, optional
        ``lora``, ``ia3``, ``dora``: the layers that receive adapters (names or name
        endings; by default the model config's ``peft_targets``).
    adapter : dict
        ``rank``, ``alpha`` and ``dropout`` of LoRA and DoRA adapters.
    ridge_alphas : tuple of float
        ``ridge``: the penalties tried, the one chosen on the validation split.
    """

    strategy: str = "full"
    layer_decay: float = 0.75
    head_epochs: int = 1
    targets: list[str] | None = None
    adapter: dict[str, Any] = field(default_factory=dict)
    ridge_alphas: tuple[float, ...] = RIDGE_ALPHAS

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown finetune.strategy {self.strategy!r}; expected one of "
                f"{', '.join(STRATEGIES)}",
                hint=did_you_mean(str(self.strategy), STRATEGIES),
            )
        if (
            isinstance(self.head_epochs, bool)
            or not isinstance(self.head_epochs, int)
            or (self.head_epochs < 1)
        ):
            raise ConfigError(f"finetune.head_epochs must be a whole number >= 1, got "
                              f"{self.head_epochs!r}")  # fmt: skip
        unknown = sorted(set(self.adapter) - set(ADAPTER_DEFAULTS))
        if unknown:
            raise ConfigError(
                f"unknown finetune.adapter key(s) {unknown}; expected {sorted(ADAPTER_DEFAULTS)}"
            )


class FrozenEncoder(L.Callback):
    """Keeps the encoder outside its head in evaluation mode while it does not train.

    So dropout is off and batch-norm statistics stay as pretrained: the frozen encoder
    computes exactly what it computed before fine-tuning. With ``unfreeze_at`` (the
    ``two_stage`` strategy), every encoder weight trains from that epoch on.
    """

    def __init__(self, unfreeze_at: int | None = None) -> None:
        self.unfreeze_at = unfreeze_at

    def _frozen(self, trainer: L.Trainer) -> bool:
        return self.unfreeze_at is None or trainer.current_epoch < self.unfreeze_at

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._frozen(trainer):
            for parameter in pl_module.encoder.parameters():
                parameter.requires_grad = True

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._frozen(trainer):
            train_head_only(pl_module.encoder)


def head_inputs(
    task: Any, layer: nn.Module, loader: Iterable[Mapping[str, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """The inputs of ``layer`` (the head's first linear layer) and the labels, over ``loader``.

    Computed in evaluation mode without gradients, on the GPU when there is one.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    before = next(task.parameters()).device
    task.to(device).eval()
    features: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    hook = layer.register_forward_pre_hook(
        lambda module, args: features.append(args[0].detach().double().cpu())
    )
    try:
        with torch.no_grad():
            for batch in loader:
                moved = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
                task.encode(moved)
                labels.append(torch.as_tensor(batch["y"]).long().cpu())
    finally:
        hook.remove()
        task.to(before)
    if not features:
        return np.zeros((0, layer.in_features)), np.zeros(0, dtype=np.int64)
    return torch.cat(features).numpy(), torch.cat(labels).numpy()


def fit_ridge_head(task: Any, datamodule: L.LightningDataModule, alphas: Sequence[float]) -> float:
    """Fit the head of ``task.encoder`` as a ridge classifier on the frozen features.

    The penalty is chosen on the validation split; the encoder is not changed.

    Returns
    -------
    float
        The penalty chosen.
    """
    datamodule.setup("fit")
    layer = ridge_input_layer(task.encoder)
    train = head_inputs(task, layer, datamodule.train_dataloader())
    if not len(train[1]):
        raise ConfigError("finetune.strategy=ridge: the training split has no windows")
    validation = head_inputs(task, layer, datamodule.val_dataloader())
    weight, bias, alpha = fit_ridge(train, validation, int(task.encoder.n_outputs), alphas)
    write_linear_head(task.encoder, weight, bias)
    logger.info(
        "ridge head fitted in closed form on %d training windows (alpha=%g, chosen on %d "
        "validation windows)", len(train[1]), alpha, len(validation[1])
    )  # fmt: skip
    return alpha


def apply_strategy(task: Any, settings: Strategy, *, pretrained: bool = True) -> None:
    """Set up ``task`` (a :class:`~neurodecode.tasks.base.DecodingTask`) to train as
    ``settings`` say: which weights train, at which learning rates, in which order.

    Without pretrained weights (``pretrained=False``), ``full`` trains every weight at the
    task's learning rate (no layer-wise decay) and the other strategies run on the random
    initialisation.
    """
    name, encoder = settings.strategy, task.encoder
    if getattr(encoder, "closed_form", False):
        if name == "full":
            return
        raise ConfigError(f"finetune.strategy={name} needs a neural encoder; "
                          f"{type(encoder).__name__} is fitted in closed form")  # fmt: skip
    if name == "two_stage" or (name == "full" and pretrained):  # before anything freezes
        decay = settings.layer_decay if pretrained else 1.0
        task.param_groups = layer_groups(task, encoder, lr=task.lr, layer_decay=decay)
    if name in ("frozen", "two_stage"):
        freeze_encoder(encoder)
        task.callbacks = [FrozenEncoder(settings.head_epochs if name == "two_stage" else None)]
    if name == "ridge":  # nothing trains by gradient: the head is fitted in closed form
        for parameter in task.parameters():
            parameter.requires_grad = False
        task.head_fit = functools.partial(fit_ridge_head, task, alphas=settings.ridge_alphas)
    if name in ADAPTERS:
        adapter = {**ADAPTER_DEFAULTS, **settings.adapter}
        names = add_adapters(encoder, name, settings.targets, **adapter)
        logger.info("%s adapters on %d layers: %s", name, len(names), ", ".join(names))
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    total = sum(p.numel() for p in encoder.parameters())
    logger.info("finetune.strategy=%s: %d of %d encoder weights train", name, trainable, total)


def initialise(
    task: Any,
    source: InitSource | BraindecodeSource | None,
    *,
    sfreq: float | None = None,
    strategy: str = "full",
    min_matched: float = 0.9,
    **settings: Any,
) -> LoadReport | Coverage | None:
    """Load ``source`` (if any) into ``task.encoder`` and set up the fine-tuning strategy.

    Parameters
    ----------
    task : DecodingTask
        The task, built with the pretrained architecture (:func:`model_for_task`).
    source : InitSource, BraindecodeSource or None
        The pretrained encoder (braindecode-format weights are loaded by
        :func:`neurodecode.hub.foundation.load_braindecode`, refused below ``min_matched``);
        None: the strategy runs on the random initialisation.
    sfreq : float, optional
        The data's sampling rate, checked against the pretrained one.
    strategy : str
        One of :data:`STRATEGIES`; ``settings`` are the other fields of :class:`Strategy`.
    min_matched : float
        braindecode-format weights: least share of the model's tensors (outside the head)
        that must come from the file.

    Returns
    -------
    LoadReport, Coverage or None
        What was loaded (None without ``source``).
    """
    known = [f.name for f in fields(Strategy)]
    for key in settings:
        if key not in known:
            raise ConfigError(f"unknown fine-tuning setting finetune.{key}",
                              hint=did_you_mean(key, known))  # fmt: skip
    chosen = Strategy(strategy=strategy, **settings)
    if source is None and chosen.strategy == "full":
        return None  # plain training of a new model
    if isinstance(source, BraindecodeSource):
        report = load_braindecode(task.encoder, source, min_matched=min_matched)
    else:
        report = None if source is None else load_encoder(task.encoder, source, sfreq=sfreq)
    if source is None:
        logger.warning("finetune.strategy=%s on a random initialisation (no init_from)", strategy)
    apply_strategy(task, chosen, pretrained=source is not None)
    return report
