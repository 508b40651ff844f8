"""One run of any recipe, pretraining included: build the trainer (callbacks and loggers
from config), let the task prepare its data and build itself, fit, select the best
checkpoint on validation, test, export the encoder where the task asks for it, write the
outputs. What differs between tasks is declared by the task classes
(:mod:`neurodecode.tasks.base`), never looked up here by type."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from neurodecode.data import scaling
from neurodecode.errors import ConfigError, did_you_mean
from neurodecode.finetune import (
    InitSource,
    adapter_targets,
    initialise,
    model_for_task,
    read_init_source,
)
from neurodecode.hub import export_model
from neurodecode.hub.foundation import (
    BraindecodeSource,
    Coverage,
    record_input_report,
    write_coverage,
)
from neurodecode.registry import CLASSICAL_MODELS, TASKS
from neurodecode.resources import model_config_path
from neurodecode.run.record import paired_trials, summary_lines, write_outputs
from neurodecode.run.trainer import build_trainer
from neurodecode.tasks.base import DecodingTask, RunData, final_metrics

logger = logging.getLogger(__name__)


def run(cfg: DictConfig, run_dir: Path, recipe: str | None = None) -> dict[str, Any]:
    """Prepare the data, train with model selection on validation, test, write outputs.

    Parameters
    ----------
    cfg : DictConfig
        The composed config (``configs/train.yaml`` + recipe + overrides).
    run_dir : pathlib.Path
        Folder for checkpoints, logs, plots and ``results.json``. With ``resume``, the
        folder of the resumed run is used instead. A run that fails before training
        (``init_from`` is checked first, then the data are prepared) removes it again when
        it held nothing but Hydra's own files (:func:`removed_on_failure`).
    recipe : str, optional
        The recipe's name, recorded in ``results.json``; by default Hydra's choice when run
        from the command line.

    Returns
    -------
    dict
        The content of ``results.json`` (empty in the processes other than rank 0 of a
        task that trains in several, e.g. ``recipe=pretrain trainer=ddp``).
    """
    quiet_lightning_pytree()
    started = time.time()
    if recipe is None and HydraConfig.initialized():
        recipe = HydraConfig.get().runtime.choices.get("recipe")
    recipe_dir = Path(cfg.runs_dir) / recipe if recipe and cfg.get("runs_dir") else None
    with removed_on_failure(run_dir, recipe_dir):  # nothing is left of a run never trained
        checkpoint = resume_checkpoint(cfg, run_dir)
        # checked before any data work, with the loader of neurodecode.hub.from_pretrained
        init = read_init_source(cfg.init_from) if cfg.init_from else None
        baselines = baseline_names(cfg)  # refused before anything is trained
        if checkpoint is not None:
            run_dir = checkpoint.parent.parent
            logger.info("resuming %s from %s", run_dir, checkpoint)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg = with_paths(cfg, run_dir, resuming=checkpoint is not None)
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        task_cls = TASKS.get(cfg.task.module._target_)
        trainer = build_trainer(cfg)
        refuse_several_processes(trainer, task_cls, cfg, recipe)
        data = task_cls.prepare(cfg, run_dir)
        # again: the initial weights must not depend on what preparing the data drew
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        task = build_task(cfg, task_cls, data, init)
        record_input_report(  # a foundation model's channels, rate and units, checked
            task.encoder,
            scaling=(data.provenance.get("preprocessing") or {}).get("scaling"),
            qc_report=data.qc_report,
            run_dir=run_dir,
        )
    if task.closed_form:
        task.fit_closed_form(data.datamodule)
    else:
        if checkpoint is None and init is None:  # resumed or loaded weights are kept
            task.initialise_from_data(data.datamodule)
        trainer.fit(task, datamodule=data.datamodule, ckpt_path=checkpoint, weights_only=True)
    if is_overridden("test_step", task):
        best = trainer.checkpoint_callback.best_model_path or None
        trainer.test(task, datamodule=data.datamodule, ckpt_path=best, weights_only=True)
    record_scaling(data)
    encoder = trained_encoder(trainer, task) if task.export_description else None
    if not trainer.is_global_zero:  # one process writes the run's outputs
        return {}
    exported = None
    if encoder is not None:
        exported = export_encoder(cfg, encoder, trainer, task, data, run_dir / "encoder")
        logger.info("encoder exported to %s", exported)
    scores = fit_baselines(cfg, baselines, task_cls, data, tested=task)
    results = write_outputs(cfg, task, data, trainer, started, recipe, exported, scores)
    for line in summary_lines(results):
        logger.info(line)
    logger.info("run folder: %s", run_dir)
    return results


def quiet_lightning_pytree() -> None:
    """Silence one FutureWarning that is Lightning's, not ours.

    Lightning's own pytree helper (lightning/pytorch/utilities/_pytree.py, Lightning 2.6)
    still builds torch's LeafSpec, which torch 2.13 deprecates with a FutureWarning
    repeated at every fit and test; only that warning from that module is silenced.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"lightning\.pytorch\.utilities\._pytree",
    )


#: What Hydra writes into a run folder before the run starts (its config and its log).
HYDRA_STUB = (".hydra", "*.log")


@contextlib.contextmanager
def removed_on_failure(run_dir: Path, recipe_dir: Path | None = None) -> Iterator[None]:
    """Remove ``run_dir`` if the block fails and the folder held nothing of value.

    A run that fails before training (a bad ``init_from``, data that cannot be
    downloaded) leaves no run folder behind: the folder is removed when, on entry, it did
    not exist or held only what Hydra writes first (:data:`HYDRA_STUB`), and so is its
    parent when that is the recipe's folder of runs (``recipe_dir``) left empty. A folder
    holding anything else, e.g. the checkpoints of a run being resumed, is never touched;
    nor is it by the processes other than rank 0 of a multi-process run.
    """
    removable = rank_zero_only.rank == 0 and all(
        any(entry.match(pattern) for pattern in HYDRA_STUB)
        for entry in (run_dir.iterdir() if run_dir.is_dir() else ())
    )
    try:
        yield
    except BaseException:
        if removable:
            shutil.rmtree(run_dir, ignore_errors=True)
            if recipe_dir is not None and run_dir.parent.resolve() == recipe_dir.resolve():
                with contextlib.suppress(OSError):  # not empty: other runs are there
                    recipe_dir.rmdir()
        raise


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


def with_paths(cfg: DictConfig, run_dir: Path, resuming: bool) -> DictConfig:
    """A copy of ``cfg`` whose ``paths`` name this run's folder; a resumed run logs into
    new ``logs/*-resumed-<time>`` folders, so the curves of the interrupted part are kept."""
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.paths = {
            "run_dir": str(run_dir),
            "log_suffix": f"-resumed-{dt.datetime.now():%Y-%m-%d_%H-%M-%S}" if resuming else "",
        }
    return cfg


def refuse_several_processes(
    trainer: L.Trainer, task_cls: type[DecodingTask], cfg: DictConfig, recipe: str | None
) -> None:
    """Refuse a trainer of several processes for a task that scores in one."""
    if trainer.world_size > 1 and not task_cls.distributed:
        raise ConfigError(
            f"the {recipe or cfg.task.module._target_} recipe trains and scores in one process, "
            f"but the trainer asks for {trainer.world_size} (trainer.devices="
            f"{cfg.trainer.devices}, trainer.num_nodes={cfg.trainer.num_nodes}): each process "
            "would score only its share of the test split",
            hint="fine-tune on one GPU (trainer.devices=1); several GPUs are for recipe=pretrain",
        )


def build_task(
    cfg: DictConfig,
    task_cls: type[DecodingTask],
    data: RunData,
    init: InitSource | BraindecodeSource | None = None,
) -> DecodingTask:
    """The task of ``cfg.task`` sized by ``data``, its encoder the recipe's ``cfg.model`` or,
    with ``cfg.init_from``, the pretrained one ``init`` (:mod:`neurodecode.finetune`; read
    here unless the caller read it first, as :func:`run` does before any data work), set up
    as ``cfg.finetune.strategy`` says."""
    if init is None and cfg.init_from:
        init = read_init_source(cfg.init_from)
    recipe_model = OmegaConf.to_container(cfg.model, resolve=True)
    model = model_for_task(recipe_model, init)
    task = task_cls.from_data(cfg, data, model)
    finetune = OmegaConf.to_container(cfg.finetune, resolve=True)
    finetune["targets"] = adapter_targets(finetune.get("targets"), recipe_model, model)
    report = initialise(task, init, sfreq=float(data.arguments["sfreq"]), **finetune)
    if isinstance(report, Coverage) and cfg.paths.run_dir:
        write_coverage(report, Path(cfg.paths.run_dir))
    return task


def record_scaling(data: RunData) -> None:
    """Record the training-split scaling statistics the data module fitted, if any, in the
    preprocessing config that ``results.json`` and the exported model carry."""
    statistics = getattr(data.datamodule, "scaling", None)
    if statistics is not None:
        preprocessing = scaling.with_statistics(data.provenance["preprocessing"], statistics)
        data.provenance["preprocessing"] = data.record["preprocess"] = preprocessing


def baseline_names(cfg: DictConfig) -> list[str]:
    """The classical models ``cfg.baseline`` names (none, one name or a list), checked."""
    names = cfg.get("baseline")
    names = [] if names is None else [names] if isinstance(names, str) else list(names)
    valid = CLASSICAL_MODELS.names()
    for name in names:
        if name not in valid:
            raise ConfigError(
                f"baseline={name!r} is not a classical model; baselines are fitted in closed "
                f"form on the training split: {', '.join(valid)}",
                hint=did_you_mean(str(name), valid),
            )
    return [str(name) for name in names]


def fit_baselines(
    cfg: DictConfig,
    names: list[str],
    task_cls: type[DecodingTask],
    data: RunData,
    tested: DecodingTask | None = None,
) -> dict[str, dict[str, Any]]:
    """Fit each baseline of ``names`` (configured as ``configs/model/<name>.yaml``) on the
    same training split as the model and test it with the task's own test code.

    Returns
    -------
    dict
        ``{name: test metrics}``, as ``results.json`` records them under ``baselines``;
        given the ``tested`` model, each also holds ``paired_with_model``, McNemar's exact
        test on the identical test trials (:func:`neurodecode.run.record.paired_trials`).
    """
    out = {}
    for name in names:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        model = OmegaConf.to_container(OmegaConf.load(model_config_path(name)))
        task = task_cls.from_data(cfg, data, model)
        task.fit_closed_form(data.datamodule)
        tester = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                           enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
        tester.test(task, datamodule=data.datamodule, verbose=False)
        out[name] = task.run_metrics(tester, cfg.task.monitor)["test"]
        paired = paired_trials(tested, task) if tested is not None and out[name] else None
        if paired is not None:
            out[name] = {**out[name], "paired_with_model": paired}
    return out


def trained_encoder(trainer: L.Trainer, task: DecodingTask) -> nn.Module | None:
    """The encoder with all its weights after ``trainer.fit`` (None on ranks other than 0).

    Under FSDP (``trainer=fsdp``) the task's own tensors are this process's shards, so the
    full state is gathered on rank 0 (every rank takes part) and loaded into a fresh copy.
    """
    if not isinstance(trainer.strategy, FSDPStrategy):
        return task.encoder
    state = trainer.strategy.lightning_module_state_dict()
    if not trainer.is_global_zero:
        return None
    full = type(task)(**task.hparams)
    full.load_state_dict(state)
    return full.encoder


def export_encoder(cfg: DictConfig, encoder: nn.Module, trainer: L.Trainer, task: DecodingTask,
                   data: RunData, out_dir: Path) -> Path:  # fmt: skip
    """Export ``encoder`` with the data's channels and provenance (:mod:`neurodecode.hub`)."""
    return export_model(
        encoder,
        out_dir,
        ch_names=data.arguments["ch_names"],
        ch_pos=np.asarray(data.arguments["ch_pos"], dtype=float),
        preprocessing=data.provenance["preprocessing"],
        task=cfg.task.module._target_,
        dataset=data.provenance["dataset"],
        metrics=final_metrics(trainer),
        card={"description": task.export_description, "datasets": data.provenance["datasets"]},
    )
