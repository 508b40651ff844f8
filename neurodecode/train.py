"""Train and evaluate one recipe: ``python -m neurodecode.train recipe=<name> [overrides]``.

Configs are Hydra's: ``configs/train.yaml`` composes the groups ``data``, ``preprocess``,
``model``, ``task`` and ``trainer``; a recipe (``recipes/<name>.yaml``, a ``# @package
_global_`` file) chooses among them and sets its own keys; the command line overrides any
key (``model=eegnet trainer.max_epochs=3 seed=1``). ``--help`` alone lists the recipes;
``recipe=<name> --help`` lists the groups; ``--cfg job`` prints the resolved config. Unknown
names list the valid ones and unknown keys are errors (Hydra's struct mode). From Python,
:func:`compose` gives the same config and :func:`run_recipe` runs it.

Each run writes into ``runs/<recipe>/<timestamp>/``::

    checkpoints/best-*.ckpt, last.ckpt   Lightning checkpoints (model selection on validation)
    results.json                         metrics, config and hashes, seed, versions
    plots/*.png                          confusion matrix; seizure probability timeline
    events/*_events.tsv                  seizure detections in SzCORE's BIDS format
    qc.json                              the data QC report of the window cache
    logs/csv/metrics.csv, logs/tensorboard/   training curves
    .hydra/                              the composed config and the overrides
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from neurodecode.errors import ConfigError
from neurodecode.resources import resource_dir
from neurodecode.runs import (
    config_hash,
    resume_checkpoint,
    trainer_arguments,
    versions,
    write_results,
)

logger = logging.getLogger(__name__)

RECIPE_HEADER = "# @package _global_"


def register_recipes() -> list[str]:
    """Put every ``recipes/*.yaml`` into Hydra's config group ``recipe`` (package ``_global_``).

    The recipes live in their own top-level folder (where people look for them), not under
    ``configs/``, so they are registered through Hydra's ConfigStore; this works from a
    source checkout and from an installed wheel alike.
    """
    store = ConfigStore.instance()
    names = []
    for path in sorted(resource_dir("recipes").glob("*.yaml")):
        text = path.read_text()
        if not text.lstrip().startswith(RECIPE_HEADER):
            raise ConfigError(f"a recipe must start with '{RECIPE_HEADER}'", path=path)
        node = OmegaConf.create(yaml.safe_load(text) or {})
        store.store(group="recipe", name=path.stem, node=node, package="_global_")
        names.append(path.stem)
    return names


register_recipes()


# --------------------------------------------------------------------------- data


def dataset_source(cfg: DictConfig, run_dir: Path) -> str:
    """The manifest name of ``cfg.data``, or a changed copy of it (``data.manifest``)."""
    if cfg.data.manifest:
        return str(_changed_manifest(cfg.data.name, cfg.data.manifest, run_dir))
    return str(cfg.data.name)


def prepare_data(cfg: DictConfig, run_dir: Path, changes: Mapping[str, Any] | None = None) -> Any:
    """Build (or reuse) the window cache of ``cfg.data`` preprocessed as ``cfg.preprocess``.

    ``data.prepare`` and then ``changes`` are merged over the preprocessing config.
    """
    from neurodecode.data.cache import prepare_dataset

    overrides = OmegaConf.to_container(cfg.preprocess, resolve=True)
    overrides = _deep_merge(overrides, OmegaConf.to_container(cfg.data.prepare, resolve=True))
    overrides = _deep_merge(overrides, changes or {})
    return prepare_dataset(dataset_source(cfg, run_dir), overrides)


def _changed_manifest(name: str, changes: DictConfig, run_dir: Path) -> Path:
    """Write the manifest ``name`` with ``changes`` merged in to the run folder."""
    from neurodecode.data.manifest import manifest_file

    source = manifest_file(name)
    manifest = yaml.safe_load(source.read_text())
    merged = _deep_merge(manifest, OmegaConf.to_container(changes, resolve=True))
    path = run_dir / "manifest.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path


def _deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def class_weights(labels: np.ndarray, n_classes: int) -> list[float]:
    """Inverse-frequency weights ``n / (n_classes * n_c)`` (scikit-learn's "balanced")."""
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    if (counts == 0).any():
        missing = np.flatnonzero(counts == 0).tolist()
        raise ConfigError(f"class(es) {missing} have no training windows")
    return (counts.sum() / (n_classes * counts)).tolist()


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


# --------------------------------------------------------------------------- model and trainer


def build_task(
    cfg: DictConfig, cache: Any, train_labels: np.ndarray, embeddings: np.ndarray | None = None
) -> Any:
    """The task module of ``cfg.task`` around the model of ``cfg.model``, sized by the data."""
    from neurodecode.finetune import model_for_task, read_init_source
    from neurodecode.registry import TASKS

    # not registry.instantiate: it would build the nested model config eagerly, while the
    # task builds its encoder itself once the signal contract is known
    module_cfg = OmegaConf.to_container(cfg.task.module, resolve=True)
    task_cls = TASKS.get(module_cfg.pop("_target_"))
    init = read_init_source(cfg.init_from) if cfg.init_from else None
    signal = {
        "model": model_for_task(OmegaConf.to_container(cfg.model, resolve=True), init),
        "n_chans": len(cache.ch_names),
        "n_times": int(cache.n_times),
        "sfreq": float(cache.sfreq),
        "ch_names": list(cache.ch_names),
        "ch_pos": np.asarray(cache.ch_pos, dtype=float).tolist(),
    }
    from neurodecode.tasks.retrieval import RetrievalTask

    if issubclass(task_cls, RetrievalTask):
        signal["image_embeddings"] = embeddings
        return initialised(task_cls(**module_cfg, **signal), cfg, init, cache)
    n_classes = len(cache.classes)
    if n_classes < 2 or np.unique(train_labels).size < 2:
        raise ConfigError(
            f"the data hold a single class ({cache.classes}); classification needs two or more",
            hint="check preprocess.windows.label_map against the dataset's event names",
        )
    weights = cfg.task.class_weights
    if weights == "balanced":
        weights = class_weights(train_labels, n_classes)
    elif weights is not None:
        weights = list(weights)
    task = task_cls(
        **module_cfg,
        **signal,
        n_outputs=n_classes,
        class_weights=weights,
        class_names=list(cache.classes),
    )
    return initialised(task, cfg, init, cache)


def initialised(task: Any, cfg: DictConfig, init: Any, cache: Any) -> Any:
    """``task`` with its encoder loaded from ``init`` (``init_from``, neurodecode.finetune)."""
    if init is not None:
        from neurodecode.finetune import initialise

        finetune = OmegaConf.to_container(cfg.finetune, resolve=True)
        initialise(task, init, sfreq=float(cache.sfreq), **finetune)
    return task


def image_embeddings(cfg: DictConfig, dataset: str) -> np.ndarray:
    """Image embeddings for retrieval: ``data.image_embeddings`` or the dataset's own
    ``stimuli/image_embeddings.npy`` (row ``i`` = concept ``i``)."""
    if cfg.data.image_embeddings:
        return np.load(cfg.data.image_embeddings)
    from neurodecode.data.fetch import fetch_dataset

    for entry in fetch_dataset(dataset)[:1]:
        for parent in Path(entry.path).parents:
            candidate = parent / "stimuli" / "image_embeddings.npy"
            if candidate.is_file():
                return np.load(candidate)
    raise ConfigError(
        "no image embeddings found next to the dataset",
        path=dataset,
        hint="set data.image_embeddings=<file.npy>",
    )


def concept_label_map(cfg: DictConfig, n_concepts: int) -> dict[str, Any]:
    """Preprocessing changes labelling each window by its concept (``data.concepts``)."""
    if not cfg.data.concepts or cfg.preprocess.windows.label_map is not None:
        return {}
    label_map = {cfg.data.concepts.format(i): i for i in range(n_concepts)}
    return {"windows": {"label_map": label_map}}


def zero_shot_datamodule(cache: Any, seed: int, **kwargs: Any) -> Any:
    """A data module whose split holds out whole concepts (THINGS-EEG2 protocol)."""
    from neurodecode.data.datamodule import EEGDataModule
    from neurodecode.data.splits import Split
    from neurodecode.evaluation.protocols import zero_shot_split

    class ZeroShotDataModule(EEGDataModule):
        def _make_splits(self) -> list[Split]:
            parts = zero_shot_split(
                self.index,
                test_fraction=self.test_fraction,
                valid_fraction=self.valid_fraction,
                seed=self.seed,
            )
            return [Split("zero_shot_concepts", *parts)]

    kwargs.update(split="subject", require_all_classes=False)
    return ZeroShotDataModule(cache, seed=seed, **kwargs)


def epoch_seeding(seed: int) -> Any:
    """A callback making each epoch's randomness a function of ``(seed, epoch)`` only.

    When an epoch starts, torch, NumPy and Python are reseeded with ``seed + epoch``
    (dropout and other draws), and so is the generator that orders (or, with balanced
    sampling, draws) the training windows; after a restart, the data module's ``seed`` is
    set for the first resumed epoch. An epoch after ``resume=true`` therefore draws exactly
    what it would have drawn in an uninterrupted run, so both end with the same metrics.
    """
    import random

    import torch
    from lightning.pytorch.callbacks import Callback

    class EpochSeeding(Callback):
        def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict) -> None:
            # The first epoch after a restart is drawn by a loader Lightning builds before
            # any epoch hook runs: seed the data module for that epoch already.
            datamodule = trainer.datamodule
            if datamodule is not None and hasattr(datamodule, "seed"):
                datamodule.seed = seed + int(checkpoint["epoch"]) + 1

        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            self.first_epoch = True

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            epoch_seed = seed + trainer.current_epoch
            torch.manual_seed(epoch_seed)
            np.random.seed(epoch_seed % 2**32)  # noqa: NPY002 (the global RNG others draw from)
            random.seed(epoch_seed)
            if self.first_epoch:  # its loader was just built, seeded for this epoch
                self.first_epoch = False
                return
            loader = trainer.train_dataloader
            for owner in (loader, getattr(loader, "sampler", None)):
                generator = getattr(owner, "generator", None)
                if isinstance(generator, torch.Generator):
                    generator.manual_seed(epoch_seed)

    return EpochSeeding()


def build_trainer(cfg: DictConfig, run_dir: Path, resuming: bool = False) -> Any:
    """A Lightning trainer with checkpointing, early stopping and CSV + TensorBoard logs.

    A resumed run logs into new ``logs/csv-resumed-<time>`` / ``logs/tensorboard-resumed-
    <time>`` folders, so the curves of the interrupted part are kept.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    monitor, mode = cfg.task.monitor, cfg.task.mode
    callbacks = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename="best-{epoch:03d}",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            save_last=True,
        ),
        EarlyStopping(
            monitor=monitor,
            mode=mode,
            patience=cfg.early_stopping.patience,
            min_delta=cfg.early_stopping.min_delta,
        ),
        LearningRateMonitor(logging_interval="epoch"),
        epoch_seeding(int(cfg.seed)),
    ]
    suffix = f"-resumed-{dt.datetime.now():%Y-%m-%d_%H-%M-%S}" if resuming else ""
    loggers = [
        CSVLogger(run_dir, name="logs", version=f"csv{suffix}"),
        TensorBoardLogger(
            run_dir, name="logs", version=f"tensorboard{suffix}", default_hp_metric=False
        ),
    ]
    return L.Trainer(
        default_root_dir=run_dir,
        callbacks=callbacks,
        logger=loggers,
        **trainer_arguments(cfg),
    )


# --------------------------------------------------------------------------- outputs


def write_outputs(cfg: DictConfig, run_dir: Path, task: Any, cache: Any, datamodule: Any,
                  trainer: Any, started: float, recipe: str | None) -> dict[str, Any]:  # fmt: skip
    """Plots, SzCORE events, QC report and ``results.json`` of a finished run."""
    from neurodecode import plots
    from neurodecode.tasks.classification import ClassificationTask
    from neurodecode.tasks.seizure import SeizureTask

    artifacts: dict[str, Any] = {"plots": []}
    plot_dir = run_dir / "plots"
    if isinstance(task, ClassificationTask) and task.test_metrics:
        matrix = (task.test_metrics.get("window") or task.test_metrics)["confusion_matrix"]
        path = plots.confusion_matrix(matrix, task.class_names, plot_dir / "confusion_matrix.png")
        artifacts["plots"].append(path)
    if isinstance(task, SeizureTask) and task.test_predictions is not None:
        path = plots.seizure_timeline(
            task.test_predictions,
            task.references,
            task.detected_events,
            task.post_processing.threshold,
            task.window_s,
            plot_dir / "seizure_probability.png",
        )
        artifacts["plots"].append(path)
        artifacts["events"] = task.write_events(run_dir / "events", bids_event_paths(cache))
    qc_source = Path(cache.path) / "qc.json"
    if qc_source.is_file():
        shutil.copyfile(qc_source, run_dir / "qc.json")
        artifacts["qc_report"] = run_dir / "qc.json"

    checkpoint = trainer.checkpoint_callback
    config = OmegaConf.to_container(cfg, resolve=True)
    results = {
        "recipe": recipe,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "seed": cfg.seed,
        "metrics": {
            "test": task.test_metrics,
            "best_validation": {
                cfg.task.monitor: checkpoint.best_model_score.item()
                if checkpoint.best_model_score is not None
                else None
            },
            "epochs_trained": trainer.current_epoch,
        },
        "checkpoints": {
            "best": Path(checkpoint.best_model_path).relative_to(run_dir)
            if checkpoint.best_model_path
            else None,
            "last": Path(checkpoint.last_model_path).relative_to(run_dir)
            if checkpoint.last_model_path
            else None,
        },
        "data": {
            "dataset": cfg.data.name,
            "cache_key": cache.key,
            "cache_path": str(cache.path),
            "n_windows": len(cache),
            "classes": list(cache.classes),
            "units": cache.units,
            "channels": list(cache.ch_names),
            "sfreq": cache.sfreq,
            "n_times": cache.n_times,
            "split": datamodule.summary(),
            # the preprocessing the cache was really built with (cfg.preprocess with the
            # dataset's data.prepare merged in): what an export must replay
            "preprocess": cache.meta["config"],
        },
        "config": config,
        "config_hash": config_hash(config),
        "data_hash": cache.key,
        "versions": versions(),
        "artifacts": {
            k: [str(Path(p).relative_to(run_dir)) for p in v]
            if isinstance(v, list)
            else str(Path(v).relative_to(run_dir))
            for k, v in artifacts.items()
        },  # fmt: skip
    }
    return write_results(run_dir, results)


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """A few human-readable lines with the headline test metrics."""
    test = results["metrics"]["test"] or {}
    lines = []
    if "szcore" in test:
        for kind in ("event", "sample"):
            for level in ("pooled", "per_subject"):
                m = test["szcore"][kind][level]
                lines.append(
                    f"SzCORE {kind:6s} {level:11s}: sensitivity {_fmt(m['sensitivity'])}  "
                    f"precision {_fmt(m['precision'])}  F1 {_fmt(m['f1'])}  "
                    f"FP/24h {_fmt(m['fp_per_24h'])}"
                )
        test = test["window"]
    keys = ("accuracy", "balanced_accuracy", "kappa", "roc_auc", "top1", "top5")
    shown = [f"{k} {_fmt(test[k])}" for k in keys if k in test]
    if shown:
        lines.append("test: " + "  ".join(shown))
    return lines


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------- entry point


def run(cfg: DictConfig, run_dir: Path, recipe: str | None = None) -> dict[str, Any]:
    """Prepare the data, train with model selection on validation, test, write outputs.

    Parameters
    ----------
    cfg : DictConfig
        The composed config (``configs/train.yaml`` + recipe + overrides).
    run_dir : pathlib.Path
        Folder for checkpoints, logs, plots and ``results.json``. With ``resume``, the
        folder of the resumed run is used instead.
    recipe : str, optional
        The recipe's name, recorded in ``results.json``; by default Hydra's choice when run
        from the command line.

    Returns
    -------
    dict
        The content of ``results.json`` (for ``recipe=pretrain`` on several GPUs, empty in
        the processes other than rank 0, which writes the outputs).
    """
    import lightning as L

    from neurodecode.data.datamodule import EEGDataModule
    from neurodecode.registry import TASKS
    from neurodecode.tasks.retrieval import RetrievalTask
    from neurodecode.tasks.seizure import SeizureTask

    # Lightning's own pytree helper (lightning/pytorch/utilities/_pytree.py, Lightning 2.6)
    # still builds torch's LeafSpec, which torch 2.13 deprecates with a FutureWarning
    # repeated at every fit and test; nothing in our code to change, so only that warning
    # from that module is silenced.
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"lightning\.pytorch\.utilities\._pytree",
    )
    started = time.time()
    if recipe is None and HydraConfig.initialized():
        recipe = HydraConfig.get().runtime.choices.get("recipe")
    checkpoint = resume_checkpoint(cfg, run_dir)
    if checkpoint is not None:
        run_dir = checkpoint.parent.parent
        logger.info("resuming %s from %s", run_dir, checkpoint)
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    if cfg.task.module._target_ == "pretrain":
        from neurodecode.tasks.pretrain import run_pretraining

        return run_pretraining(cfg, run_dir)
    trainer = build_trainer(cfg, run_dir, resuming=checkpoint is not None)
    if trainer.world_size > 1:
        raise ConfigError(
            f"the {recipe or cfg.task.module._target_} recipe trains and scores in one process, "
            f"but the trainer asks for {trainer.world_size} (trainer.devices="
            f"{cfg.trainer.devices}, trainer.num_nodes={cfg.trainer.num_nodes}): each process "
            "would score only its share of the test split",
            hint="fine-tune on one GPU (trainer.devices=1); several GPUs are for recipe=pretrain",
        )
    loaders = OmegaConf.to_container(cfg.data.datamodule, resolve=True)
    if TASKS.get(cfg.task.module._target_) is RetrievalTask:
        embeddings = image_embeddings(cfg, dataset_source(cfg, run_dir))
        cache = prepare_data(cfg, run_dir, concept_label_map(cfg, len(embeddings)))
        datamodule = zero_shot_datamodule(cache, cfg.seed, **loaders)
    else:
        embeddings = None
        cache = prepare_data(cfg, run_dir)
        if (cache.labels < 0).any():
            raise ConfigError(
                f"{int((cache.labels < 0).sum())} windows have no label",
                path=cache.path,
                hint="set preprocess.windows.background or a label_map covering every window",
            )
        datamodule = EEGDataModule(cache, seed=cfg.seed, **loaders)
    train_labels = cache.labels[datamodule.split.train]
    task = build_task(cfg, cache, train_labels, embeddings)
    if isinstance(task, SeizureTask):
        task.set_references(seizure_references(cache))

    trainer.fit(task, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)
    best = trainer.checkpoint_callback.best_model_path or None
    trainer.test(task, datamodule=datamodule, ckpt_path=best, weights_only=True)
    results = write_outputs(cfg, run_dir, task, cache, datamodule, trainer, started, recipe)
    for line in summary_lines(results):
        logger.info(line)
    logger.info("run folder: %s", run_dir)
    return results


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The config that ``python -m neurodecode.train <overrides>`` would run.

    Parameters
    ----------
    overrides : sequence of str
        Command-line style overrides, e.g. ``["recipe=seizure", "data=simulated",
        "trainer.max_epochs=3"]``; ``recipe=<name>`` is required.

    Returns
    -------
    DictConfig
        The resolved-on-access config, in struct mode (unknown keys are errors).
    """
    return _compose_with_hydra(overrides)[0]


def run_recipe(overrides: Sequence[str], run_dir: str | Path | None = None) -> Path:
    """Train and evaluate like ``python -m neurodecode.train <overrides>``, from Python.

    Parameters
    ----------
    overrides : sequence of str
        As on the command line, e.g. ``["recipe=motor_imagery", "data=simulated"]``.
    run_dir : str or pathlib.Path, optional
        The run folder; by default ``<runs_dir>/<recipe>/<date>_<time>`` as on the command
        line. With ``resume``, the resumed run's folder is used instead.

    Returns
    -------
    pathlib.Path
        The run folder, with ``results.json``, checkpoints, plots and logs.
    """
    cfg, recipe = _compose_with_hydra(overrides)
    if run_dir is None:
        run_dir = Path(cfg.runs_dir) / recipe / f"{dt.datetime.now():%Y-%m-%d_%H-%M-%S}"
    run_dir = Path(run_dir)
    checkpoint = resume_checkpoint(cfg, run_dir)
    if checkpoint is None:  # what Hydra writes to .hydra/ for a command-line run
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create(list(overrides)), run_dir / ".hydra" / "overrides.yaml")
    run(cfg, run_dir, recipe=recipe)
    return checkpoint.parent.parent if checkpoint is not None else run_dir


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """The ``results.json`` of a run folder (metrics, split, config, hashes, versions)."""
    return json.loads((Path(run_dir) / "results.json").read_text())


def _compose_with_hydra(overrides: Sequence[str]) -> tuple[DictConfig, str]:
    """The composed config without Hydra's own keys, and the name of the chosen recipe."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(resource_dir("configs")), version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    recipe = str(cfg.hydra.runtime.choices.recipe)
    with open_dict(cfg):
        cfg.pop("hydra")
    return cfg, recipe


def usage() -> str:
    """``--help`` without a recipe: the recipes, one line each, and how to run them."""
    lines = [
        "Train and evaluate one recipe (neurodecode.train).",
        "",
        "usage: python -m neurodecode.train recipe=<name> [key=value ...]",
        "",
        "recipes:",
    ]
    for path in sorted(resource_dir("recipes").glob("*.yaml")):
        lines.append(f"  {path.stem:16s} {_recipe_summary(path.read_text())}")
    lines += [
        "",
        "examples:",
        "  python -m neurodecode.train recipe=seizure data=simulated trainer.max_epochs=3 seed=1",
        "  python -m neurodecode.train recipe=motor_imagery --help     # its config groups",
        "  python -m neurodecode.train recipe=motor_imagery --cfg job  # the resolved config",
        "",
        "Any key can be overridden (key=value; +key=value adds a new one). From Python:",
        '  neurodecode.train.run_recipe(["recipe=seizure", "data=simulated"])',
        "Documentation: docs/recipes.md (recipes, datasets, metrics), docs/configuration.md.",
    ]
    return "\n".join(lines)


def _recipe_summary(text: str) -> str:
    """The first phrase of the comment block under a recipe's ``# @package`` line."""
    comment = []
    for line in text.splitlines()[1:]:
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("# ").strip())
    phrase = " ".join(comment)
    for stop in (": ", ". "):
        phrase = phrase.split(stop)[0]
    return phrase.rstrip(".")


def _log_lightning_through_root() -> None:
    """Let Lightning's log records reach the console once, through the root logger.

    ``import lightning`` attaches a console handler (stderr, ``INFO: ...``) to the
    ``lightning`` logger, and ``lightning.pytorch`` / ``lightning.fabric`` attach one each
    with propagation off when the root logger has no handler yet. Records still propagate
    from ``lightning`` to the root logger, where Hydra's job logging prints them (stdout)
    and writes ``train.log``: every Lightning line came out twice.
    """
    import lightning  # noqa: F401  (attaches its handlers on import)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        lightning_logger = logging.getLogger(name)
        for handler in list(lightning_logger.handlers):
            lightning_logger.removeHandler(handler)
        lightning_logger.propagate = True


@hydra.main(config_path=str(resource_dir("configs")), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    _log_lightning_through_root()
    # run() logs the summary lines, which Hydra's console handler prints
    run(cfg, Path(HydraConfig.get().runtime.output_dir))


def main() -> None:
    """Command-line entry point (``python -m neurodecode.train``, ``neurodecode-train``).

    ``--help`` without ``recipe=<name>`` prints :func:`usage`; everything else goes to Hydra.
    """
    args = sys.argv[1:]
    if {"--help", "-h"} & set(args) and not any(a.startswith("recipe=") for a in args):
        print(usage())
        return
    _hydra_main()


if __name__ == "__main__":
    main()
