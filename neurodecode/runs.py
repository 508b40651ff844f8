"""What every training run shares, whichever recipe it runs.

The supervised recipes (:mod:`neurodecode.train`) and pretraining
(:mod:`neurodecode.tasks.pretrain`) build their Lightning trainer from the same
:func:`trainer_arguments` (so ``trainer=ddp`` and ``trainer=fsdp`` work for every recipe),
continue from the checkpoint :func:`resume_checkpoint` finds, and record their results with
:func:`versions` and :func:`config_hash` into ``results.json`` (:func:`write_results`).
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from neurodecode.errors import ConfigError
from neurodecode.jsonio import jsonable, write_json


def trainer_arguments(cfg: DictConfig) -> dict[str, Any]:
    """``lightning.Trainer`` keyword arguments from ``cfg.trainer``.

    ``precision: auto`` becomes ``bf16-mixed`` on a CUDA GPU with bfloat16 (Ampere and
    later: the range of float32, no loss scaling), ``16-mixed`` on older ones and
    ``32-true`` without a GPU. A
    ``strategy`` given as a mapping with a ``_target_`` (``configs/trainer/fsdp.yaml``) is
    instantiated; a name (``auto``, ``ddp``) is passed on for Lightning to resolve.
    """

    arguments = OmegaConf.to_container(cfg.trainer, resolve=True)
    if arguments.get("precision") == "auto":
        arguments["precision"] = auto_precision()
    if isinstance(arguments.get("strategy"), Mapping):
        from hydra.utils import instantiate

        arguments["strategy"] = instantiate(arguments["strategy"])
    return arguments


def auto_precision() -> str:
    """Lightning precision for ``precision: auto`` on this machine (see :func:`trainer_arguments`)."""
    import torch

    if not torch.cuda.is_available():
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def fsdp_strategy(wrap: Sequence[str], **kwargs: Any) -> Any:
    """Lightning's ``FSDPStrategy`` making every module of the classes in ``wrap`` an FSDP unit.

    ``wrap`` holds import paths (e.g. ``neurodecode.models.blocks.TransformerEncoderLayer``),
    so that ``configs/trainer/fsdp.yaml`` can name the auto-wrap classes. Units may nest:
    wrapping proceeds bottom up and each unit holds the parameters of its subtree that no
    inner unit holds. ``kwargs`` go to ``FSDPStrategy`` (``sharding_strategy``,
    ``use_orig_params``, ...). Mixed precision comes from the trainer's ``precision``
    (``bf16-mixed``: parameters, gradient reduction and buffers in bf16 inside FSDP, the
    computation under Lightning's autocast).

    The batch is not cast: FSDP's root unit would by default cast every floating tensor of
    its inputs to the parameter dtype, identifiers included (``start_s`` in bf16 moves in
    16 s steps an hour into a recording), so ``cast_root_forward_inputs`` is switched off.
    """
    from dataclasses import replace

    from hydra.utils import get_class
    from lightning.pytorch.strategies import FSDPStrategy

    class UncastInputsFSDPStrategy(FSDPStrategy):
        @property
        def mixed_precision_config(self) -> Any:
            config = super().mixed_precision_config
            return None if config is None else replace(config, cast_root_forward_inputs=False)

    return UncastInputsFSDPStrategy(auto_wrap_policy={get_class(name) for name in wrap}, **kwargs)


def resume_checkpoint(cfg: DictConfig, run_dir: Path) -> Path | None:
    """The ``last.ckpt`` to continue from, or None for a new run.

    ``cfg.resume`` is false (a new run), true (the latest other run beside ``run_dir``,
    i.e. of the same recipe, that has a last checkpoint) or a run folder or ``.ckpt`` file.
    """
    if cfg.resume is False or cfg.resume is None:
        return None
    if cfg.resume is True:
        candidates = sorted(
            p for p in run_dir.parent.glob("*/checkpoints/last.ckpt") if p.parent.parent != run_dir
        )
        if not candidates:
            raise ConfigError(
                "resume=true but no earlier run of this recipe has a last checkpoint",
                path=run_dir.parent,
            )
        return candidates[-1]
    path = Path(str(cfg.resume))
    checkpoint = path / "checkpoints" / "last.ckpt" if path.is_dir() else path
    if not checkpoint.is_file():
        raise ConfigError("no checkpoint to resume from", path=checkpoint)
    return checkpoint


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on."""
    out = {"python": platform.python_version()}
    for package in ("neurodecode", "torch", "lightning", "numpy", "mne", "timescoring",
                    "scikit-learn", "hydra-core"):  # fmt: skip
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of the resolved config, keys sorted."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_results(run_dir: Path, results: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``run_dir / "results.json"`` as strict JSON, atomically; return what was written.

    NaN and infinities become ``null`` (:mod:`neurodecode.jsonio`); the file is renamed
    into place, so a reader never sees half of it.
    """
    content = jsonable(results)
    write_json(run_dir / "results.json", content)
    return content
