"""The Lightning trainer of a run, built from config: ``cfg.trainer`` (its arguments),
``cfg.callbacks`` and ``cfg.logger`` (Hydra groups of ``_target_`` nodes, as in
lightning-hydra-template). These configs are local files of the package, never from the
Hub, so they name their classes by import path (``configs/trainer/fsdp.yaml`` its
strategy, ``configs/callbacks/*.yaml`` and ``configs/logger/*.yaml`` theirs)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.strategies import FSDPStrategy
from omegaconf import DictConfig, OmegaConf

from neurodecode.errors import ConfigError, did_you_mean
from neurodecode.run.callbacks import progress_bar

# Lightning's console lines that say nothing about the run: the devices it did not find, an
# advertisement, a limit of 100 % of the batches, a step it takes before every fit.
_NOISE = ("GPU available:", "TPU available:", "HPU available:", "💡 Tip:", "`Trainer(limit_",
          "Loading `train_dataloader` to estimate")  # fmt: skip


def _not_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_NOISE)


def quiet_lightning() -> None:
    """Drop Lightning's noise (:data:`_NOISE`; CUDA's ``LOCAL_RANK ... CUDA_VISIBLE_DEVICES``
    line) at the loggers that emit it; warnings and the run's own messages stay."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _not_noise not in rank_zero.filters:
        rank_zero.addFilter(_not_noise)
    logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)


def trainer_arguments(cfg: DictConfig) -> dict[str, Any]:
    """``lightning.Trainer`` keyword arguments from ``cfg.trainer``.

    ``precision: auto`` becomes ``bf16-mixed`` on a CUDA GPU with bfloat16 (Ampere and
    later: the range of float32, no loss scaling), ``16-mixed`` on older ones and
    ``32-true`` without a GPU. A ``strategy`` given as a mapping with a ``_target_``
    (``configs/trainer/fsdp.yaml``) is instantiated; a name (``auto``, ``ddp``) is passed
    on for Lightning to resolve.

    Raises
    ------
    ConfigError
        For a key that is not an argument of ``lightning.Trainer`` (one added with
        ``+trainer.<name>=``), with the closest argument names.
    """
    arguments = OmegaConf.to_container(cfg.trainer, resolve=True)
    accepted = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    for name in arguments:
        if name not in accepted:
            raise ConfigError(
                f"trainer.{name} is not an argument of lightning.Trainer",
                hint=did_you_mean(name, accepted),
            )
    if arguments.get("precision") == "auto":
        arguments["precision"] = auto_precision()
    if isinstance(arguments.get("strategy"), Mapping):
        arguments["strategy"] = instantiate(arguments["strategy"])
    return arguments


def auto_precision() -> str:
    """Lightning precision for ``precision: auto`` on this machine (see :func:`trainer_arguments`)."""
    if not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


class UncastInputsFSDPStrategy(FSDPStrategy):
    """Lightning's ``FSDPStrategy`` that leaves the batch in its own dtypes.

    FSDP's root unit would by default cast every floating tensor of its inputs to the
    parameter dtype, identifiers included (``start_s`` in bf16 moves in 16 s steps an hour
    into a recording), so ``cast_root_forward_inputs`` is switched off.
    """

    @property
    def mixed_precision_config(self) -> Any:
        config = super().mixed_precision_config
        return None if config is None else replace(config, cast_root_forward_inputs=False)


def fsdp_strategy(wrap: Sequence[str], **kwargs: Any) -> UncastInputsFSDPStrategy:
    """An FSDP strategy making every module of the classes in ``wrap`` an FSDP unit.

    ``wrap`` holds import paths (e.g. ``neurodecode.models.blocks.TransformerEncoderLayer``),
    so that ``configs/trainer/fsdp.yaml`` can name the auto-wrap classes. Units may nest:
    wrapping proceeds bottom up and each unit holds the parameters of its subtree that no
    inner unit holds. ``kwargs`` go to ``FSDPStrategy`` (``sharding_strategy``,
    ``use_orig_params``, ...). Mixed precision comes from the trainer's ``precision``
    (``bf16-mixed``: parameters, gradient reduction and buffers in bf16 inside FSDP, the
    computation under Lightning's autocast); the batch is not cast
    (:class:`UncastInputsFSDPStrategy`).
    """
    return UncastInputsFSDPStrategy(auto_wrap_policy={get_class(name) for name in wrap}, **kwargs)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """One object per ``_target_`` node of a callbacks or logger group (others skipped)."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if isinstance(node, Mapping)
            and "_target_" in node]  # fmt: skip


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """The trainer of ``cfg``: its callbacks, its loggers and the ``cfg.trainer`` arguments.

    ``cfg.paths`` must already name the run folder (the callbacks and loggers write there).
    With ``enable_progress_bar`` the bar is :func:`~neurodecode.run.callbacks.progress_bar`;
    Lightning's noise is silenced (:func:`quiet_lightning`).
    """
    quiet_lightning()
    arguments = trainer_arguments(cfg)
    callbacks = instantiate_group(cfg.get("callbacks"))
    if arguments.get("enable_progress_bar", True) and not any(
        isinstance(callback, ProgressBar) for callback in callbacks
    ):
        callbacks.append(progress_bar())
    return L.Trainer(
        default_root_dir=cfg.paths.run_dir,
        callbacks=callbacks,
        logger=instantiate_group(cfg.get("logger")),
        **arguments,
    )
