"""The real-data table: every model on every real dataset, through the one run path.

:func:`run_table` runs each (dataset, model, seed, fold) of a :class:`TablePlan` with
:func:`neurodecode.run.runner.run`, the path of ``python -m neurodecode.train``, on a
config composed from the recipe and the dataset's and model's overrides, with the
dataset's classical baselines fitted on the identical split (``baseline=``). Each finished
run leaves one JSON record in ``<out>/records/``; a record that exists is read, not run
again, so an interrupted table resumes where it stopped. After a run, the trained model is
measured on its test windows: energy per window under every cost model
(:mod:`neurodecode.models.energy`) with per-layer firing rates for spiking models, its
INT8 post-training quantization where the quantizer is available, and, for Bonn, its
seizure probabilities on the CHB-MIT crops (:func:`transfer_check`).
:mod:`neurodecode.run.results_report` turns the records into ``docs/results.md``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from neurodecode.data.artifacts import RecordingQC
from neurodecode.data.io import read_recording
from neurodecode.data.transform import transform_recording
from neurodecode.errors import ConfigError
from neurodecode.evaluation.classification import classification_metrics
from neurodecode.jsonio import write_json
from neurodecode.models import energy
from neurodecode.models.quantize import quantize_int8
from neurodecode.registry import TASKS
from neurodecode.run.recipes import compose_with_hydra, register_recipes
from neurodecode.run.runner import build_task, run, with_paths

logger = logging.getLogger(__name__)

#: Windows of the test split a trained model is measured on (energy, firing rates).
ENERGY_WINDOWS = 64
#: Cost models of the table's energy columns; every record holds all of them.
TABLE_COST_MODELS = ("fp32", "fp32+sram", "int8+sram", "lemaire")
BONN_S_VS_REST = "{S: 1, Z: 0, O: 0, N: 0, F: 0}"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One real dataset of the table: how the recipe reads it and how it is split.

    Attributes
    ----------
    name, title : str
        Key of the records, and the table's name for it.
    overrides : tuple of str
        The recipe and its overrides (``recipe=... data=...``).
    folds : int
        Folds of the split run (``data.datamodule.fold`` 0 to ``folds - 1``).
    baselines : tuple of str
        Classical models fitted on the identical split (``baseline=``).
    unit : str
        What a test example is (windows, trials).
    groups : str, optional
        What the split keeps apart, when the table counts them (Bonn: segments).
    pretrain : {"bonn", "eegmmidb"}
        The one dataset of ``recipe=pretrain``'s mixture its fine-tuned model is pretrained
        on: itself, or for a dataset of one recording (Graz, which pretraining cannot split
        into training and validation recordings) eegmmidb S001.
    transfer : bool
        Whether its conformer is applied to the CHB-MIT crops (:func:`transfer_check`).
    """

    name: str
    title: str
    overrides: tuple[str, ...]
    folds: int
    baselines: tuple[str, ...]
    unit: str
    pretrain: str
    transfer: bool = False
    groups: str | None = None


def _eegmmidb(runs: str, label_map: str) -> tuple[str, ...]:
    return (
        "recipe=motor_imagery", "data=eegmmidb", "+data.prepare.subjects=[1]",
        f"+data.prepare.runs={runs}", "data.datamodule.split=within_session",
        "~preprocess.windows.label_map", f"+preprocess.windows.label_map={label_map}",
    )  # fmt: skip


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "bonn", "Bonn, set S vs the rest (4-s windows, split by segment)",
            ("recipe=seizure", "data=bonn", "preprocess=bonn", "task=classification",
             "task.class_weights=balanced", "~preprocess.windows.label_map",
             f"+preprocess.windows.label_map={BONN_S_VS_REST}", "preprocess.windows.stride_s=4.0"),
            1, ("eeg_features",), "windows", "bonn", transfer=True,
            groups="segments",
        ),
        DatasetSpec(
            "eegmmidb_lr", "eegmmidb S001, left vs right fist imagery (R04, R08, R12)",
            _eegmmidb("[4,8,12]", "{imagined_left_fist: 0, imagined_right_fist: 1}"),
            5, ("csp_lda", "tangent_space"), "trials", "eegmmidb",
        ),
        DatasetSpec(
            "eegmmidb_ff", "eegmmidb S001, both fists vs both feet imagery (R06, R10, R14)",
            _eegmmidb("[6,10,14]", "{imagined_both_fists: 0, imagined_both_feet: 1}"),
            5, ("csp_lda", "tangent_space"), "trials", "eegmmidb",
        ),
        DatasetSpec(
            "graz", "Graz GDF sample, left vs right hand imagery (3 channels)",
            ("recipe=motor_imagery", "data=graz_gdf"),
            5, ("csp_lda", "tangent_space"), "trials", "eegmmidb",
        ),
    )
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model row: its overrides, and whether it is fine-tuned from a pretraining run.

    ``sized`` rows get the plan's ``model.size`` (models with size presets); ``datasets``
    and ``seeds`` limit a row to those datasets and seeds (all when empty). On the datasets
    of ``default_on`` the row is the recipe's default model and runs with the recipe's own
    size and epochs (the plan's cheaper size and epochs are for the other rows).
    """

    name: str
    title: str
    overrides: tuple[str, ...] = ()
    pretrained: bool = False
    spiking: bool = False
    sized: bool = True
    datasets: tuple[str, ...] = ()
    default_on: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()

    def runs_on(self, dataset: str, seed: int) -> bool:
        """Whether this row is run on ``dataset`` with ``seed``."""
        return (not self.datasets or dataset in self.datasets) and (
            not self.seeds or seed in self.seeds
        )


def spiking_variant(time_steps: int, encoding: str) -> Variant:
    """The spiking conformer with ``time_steps`` and input ``encoding`` (the frontier)."""
    return Variant(
        f"spiking_t{time_steps}_{encoding}",
        f"spiking conformer, T={time_steps}, {encoding}",
        ("model=spiking", f"model.time_steps={time_steps}", f"model.encoding={encoding}"),
        spiking=True,
    )


MOTOR_IMAGERY = ("eegmmidb_lr", "eegmmidb_ff", "graz")
CONFORMER = Variant(
    "conformer", "dual-branch conformer (analog FP32)", ("model=dual_branch_conformer",),
    default_on=("bonn",),
)  # fmt: skip
#: The motor-imagery recipe's default model (recipes/motor_imagery.yaml).
LOG_VARIANCE = Variant(
    "log_variance_net", "log-variance network, CSP + LDA start (motor-imagery default)",
    ("model=log_variance_net",), sized=False, datasets=MOTOR_IMAGERY, default_on=MOTOR_IMAGERY,
)  # fmt: skip
FINETUNED = Variant("finetuned", "pretrained patch conformer, fine-tuned", pretrained=True)
#: The spiking frontier of issue 17: T = 1, 2, 4 with direct and delta input encoding.
FRONTIER = tuple(spiking_variant(t, e) for t in (1, 2, 4) for e in ("direct", "delta"))
#: Where the encoder rows run (one seed; braindecode's models map eegmmidb's 64 channels
#: onto their own montage, which the Graz sample's unnamed channels cannot be).
ENCODER_ROWS = {"datasets": ("eegmmidb_ff",), "seeds": (0,)}
#: braindecode's foundation models at random initialisation (their pretrained weights cannot
#: be downloaded here): BIOT reads the bipolar SzCORE pairs, derived from the 19 channels
#: with the ones quality control zeroes interpolated.
FOUNDATION = tuple(
    Variant(name, f"{title}, random initialisation", (f"model={name}", *extra), sized=False,
            **ENCODER_ROWS)  # fmt: skip
    for name, title, extra in (
        ("labram", "braindecode Labram", ()),
        ("cbramod", "braindecode CBraMod", ()),
        ("eegpt", "braindecode EEGPT", ()),
        ("biot", "braindecode BIOT", ("preprocess.channels.target=szcore_19",
                                      "preprocess.artifacts.bad_channels=interpolate")),
    )
)  # fmt: skip
#: Fine-tuning strategies on our two encoders, on the same seed and folds: the dual-branch
#: conformer from random initialisation (frozen and ridge train a head on random features)
#: and the pretrained patch conformer.
STRATEGIES = tuple(
    Variant(f"conformer_{strategy}", f"dual-branch conformer, {strategy}, random initialisation",
            ("model=dual_branch_conformer", f"finetune.strategy={strategy}"), **ENCODER_ROWS)
    for strategy in ("frozen", "ridge", "lora", "full")
) + tuple(
    Variant(f"finetuned_{strategy}", f"pretrained patch conformer, {strategy}",
            (f"finetune.strategy={strategy}",), pretrained=True, **ENCODER_ROWS)
    for strategy in ("frozen", "ridge", "lora", "full")
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TablePlan:
    """What :func:`run_table` runs: datasets × variants × seeds × folds, and how long.

    ``frontier`` names the datasets that also get the spiking frontier rows (on
    ``frontier_folds`` folds: its variants are many); ``folds`` caps each dataset's folds;
    ``rows`` runs only the rows of those names (all when empty); ``epochs`` and ``size``
    apply to every trained model and
    ``pretrain_steps`` to each pretraining run; ``epoch_caps`` caps the epochs of
    datasets whose epochs are long (Bonn: 1600 training windows against 30 trials of motor
    imagery), as ``(dataset, epochs)`` pairs. A row that is a recipe's default model
    (:attr:`Variant.default_on`) gets neither: it runs as the recipe says.
    """

    datasets: tuple[str, ...]
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...]
    folds: int
    epochs: int
    size: str = "tiny"
    frontier: tuple[str, ...] = ()
    frontier_folds: int = 1
    pretrain_steps: int = 40
    epoch_caps: tuple[tuple[str, int], ...] = (("bonn", 3),)
    extra: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()

    def runs(self) -> Iterator[tuple[DatasetSpec, Variant, int, int]]:
        """Every (dataset, variant, seed, fold) of the plan, seed by seed, so that an
        interrupted table holds every model on every dataset for its first seeds."""
        frontier = [v for v in FRONTIER if v not in self.variants]
        for seed in self.seeds:
            for variant in (*self.variants, *frontier):
                if self.rows and variant.name not in self.rows:
                    continue
                for name in self.datasets:
                    if not variant.runs_on(name, seed):
                        continue
                    spec = DATASETS[name]
                    folds = min(self.folds, spec.folds)
                    if variant in frontier:
                        if name not in self.frontier:
                            continue
                        folds = min(folds, self.frontier_folds)
                    for fold in range(folds):
                        yield spec, variant, seed, fold

    def epochs_of(self, spec: DatasetSpec, variant: Variant) -> tuple[str, ...]:
        """The epochs and model size of ``variant`` on ``spec`` (none for a recipe default)."""
        if spec.name in variant.default_on:
            return ()
        epochs = min(self.epochs, dict(self.epoch_caps).get(spec.name, self.epochs))
        size = (f"model.size={self.size}",) if variant.sized and not variant.pretrained else ()
        return (f"trainer.max_epochs={epochs}", *size)

    def training(self) -> tuple[str, ...]:
        """Overrides every trained model gets."""
        return (
            "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false",
            "data.datamodule.num_workers=0", *self.extra,
        )  # fmt: skip


#: The full table of docs/results.md (hours on 2 CPU cores; records make it resumable). The
#: spiking row is the recipe's default (configs/model/spiking.yaml: T=2, direct input).
FULL_PLAN = TablePlan(
    datasets=tuple(DATASETS),
    variants=(
        LOG_VARIANCE,
        CONFORMER,
        spiking_variant(2, "direct"),
        FINETUNED,
        *FOUNDATION,
        *STRATEGIES,
    ),
    seeds=(0, 1, 2),
    folds=5,
    epochs=10,
    frontier=("bonn", "eegmmidb_lr"),
)
#: One seed, one fold, one epoch on the smallest data: a check that the command works.
QUICK_PLAN = TablePlan(
    datasets=("graz",),
    variants=(CONFORMER, spiking_variant(1, "direct")),
    seeds=(0,),
    folds=1,
    epochs=1,
    pretrain_steps=2,
)


def record_path(out: Path, spec: DatasetSpec, variant: str, seed: int, fold: int) -> Path:
    """The JSON record of one run in ``out/records``."""
    return out / "records" / f"{spec.name}__{variant}__seed{seed}_fold{fold}.json"


def run_table(plan: TablePlan, out: Path, shared: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Run every run of ``plan`` not yet recorded in ``out``.

    Parameters
    ----------
    plan : TablePlan
    out : pathlib.Path
        Folder of the records (``records/``) and of the runs' folders (``runs/``).
    shared : pathlib.Path
        The real recordings (``../shared/data``): its ``mirror/`` serves eegmmidb and Bonn
        unless ``NEURODECODE_MIRROR`` is set, ``excerpts/biosig`` is the Graz folder and
        ``excerpts/chbmit`` holds the crops of the transfer check.

    Returns
    -------
    records : list of dict
        Every record of the plan, old and new.
    failures : list of str
        One line per run that failed (logged with its traceback, left unrecorded so that the
        next call tries it again); the table goes on without it.
    """
    register_recipes()
    out = out.resolve()  # the run layer writes paths relative to an absolute run folder
    records, failures = [], []
    with shared_data_environment(shared):
        (out / "records").mkdir(parents=True, exist_ok=True)
        for spec, variant, seed, fold in plan.runs():
            path = record_path(out, spec, variant.name, seed, fold)
            overrides = run_overrides(plan, spec, variant, seed, fold, out)
            if not path.is_file() or json.loads(path.read_text())["overrides"] != overrides:
                logger.info("table: %s / %s, seed %d, fold %d", spec.name, variant.name, seed, fold)
                try:
                    write_json(path, run_one(plan, spec, variant, overrides, out, shared))
                except Exception as error:  # noqa: BLE001 (one failed run does not stop the table)
                    logger.exception("table: %s failed", path.stem)
                    failures.append(f"{path.stem}: {type(error).__name__}: {error}")
                    continue
            records.append(json.loads(path.read_text()))
    return records, failures


@contextmanager
def shared_data_environment(shared: Path) -> Iterator[None]:
    """Point the dataset readers at ``shared`` (mirror, GDF folder) for the block."""
    if not shared.is_dir():
        raise ConfigError("the real recordings are not there", path=shared,
                          hint="give shared=<folder of the mirror/ and excerpts/ folders>")  # fmt: skip
    wanted = {
        "NEURODECODE_MIRROR": os.environ.get("NEURODECODE_MIRROR") or str(shared / "mirror"),
        "NEURODECODE_GDF_ROOT": str(shared / "excerpts" / "biosig"),
    }
    before = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_overrides(plan: TablePlan, spec: DatasetSpec, variant: Variant, seed: int, fold: int,
                  out: Path) -> list[str]:  # fmt: skip
    """The overrides of one run: a record made with other overrides is run again."""
    overrides = [*spec.overrides, *variant.overrides, *plan.epochs_of(spec, variant),
                 *plan.training(), f"seed={seed}", f"data.datamodule.fold={fold}"]  # fmt: skip
    if variant.pretrained:
        overrides.append(f"init_from={pretrain_dir(plan, spec, seed, out)}")
    if variant == CONFORMER:
        overrides.append(f"baseline=[{','.join(spec.baselines)}]")
    return overrides


def run_one(plan: TablePlan, spec: DatasetSpec, variant: Variant, overrides: list[str],
            out: Path, shared: Path) -> dict[str, Any]:  # fmt: skip
    """Train and test one model on one split, measure it, and return its record."""
    seed, fold = (int(_value(overrides, key)) for key in ("seed", "data.datamodule.fold"))
    if variant.pretrained:
        pretrain(plan, spec, seed, out)
    cfg, recipe = compose_with_hydra(overrides)
    run_dir = out / "runs" / record_path(out, spec, variant.name, seed, fold).stem
    shutil.rmtree(run_dir, ignore_errors=True)  # what an interrupted run left
    started = time.time()
    results = run(cfg, run_dir, recipe=recipe)
    record = {
        "dataset": spec.name, "variant": variant.name, "seed": seed, "fold": fold,
        "overrides": overrides,
        "test": scores(results["metrics"]["test"]),
        "n_test": results["metrics"]["test"]["n"],
        "n_test_groups": len(results["data"]["split"]["test"]["subjects"]),
        "baselines": {name: {**scores(m), "paired_with_model": m.get("paired_with_model")}
                      for name, m in (results.get("baselines") or {}).items()},
    }  # fmt: skip
    record.update(measure_trained(cfg, run_dir, results, spec, shared, variant == CONFORMER))
    record["duration_s"] = round(time.time() - started, 1)  # with the measurements
    return record


def scores(test: dict[str, Any]) -> dict[str, Any]:
    """The headline test scores of a ``results.json`` metrics section, with the accuracy of
    whole recordings (Bonn's segments) where the task measured it."""
    headline = {key: test.get(key) for key in ("accuracy", "balanced_accuracy", "roc_auc", "n")}
    if test.get("per_recording"):
        headline["recording_accuracy"] = test["per_recording"]["accuracy"]
    return headline


def _value(overrides: Sequence[str], key: str) -> str:
    return next(o.partition("=")[2] for o in overrides if o.partition("=")[0] == key)


def pretrain_dir(plan: TablePlan, spec: DatasetSpec, seed: int, out: Path) -> Path:
    """The folder of the pretraining run that ``spec``'s fine-tuned model starts from."""
    name = f"pretrain_{spec.pretrain}_{plan.pretrain_steps}steps__seed{seed}"
    return out / "runs" / name


def pretrain(plan: TablePlan, spec: DatasetSpec, seed: int, out: Path) -> Path:
    """Run the pretraining of :func:`pretrain_dir` (``recipe=pretrain`` on the mixture's
    ``spec.pretrain`` alone) unless done: once for every fold and dataset that share it."""
    run_dir = pretrain_dir(plan, spec, seed, out)
    if (run_dir / "encoder").is_dir():
        return run_dir
    shutil.rmtree(run_dir, ignore_errors=True)
    other = "eegmmidb" if spec.pretrain == "bonn" else "bonn"
    overrides = ["recipe=pretrain", f"data.datasets.{other}.weight=0",
                 f"trainer.max_steps={plan.pretrain_steps}",
                 "trainer.max_epochs=-1", "trainer.enable_progress_bar=false",
                 "+trainer.enable_model_summary=false", f"seed={seed}"]  # fmt: skip
    cfg, recipe = compose_with_hydra(overrides)
    run(cfg, run_dir, recipe=recipe)
    return run_dir


def measure_trained(cfg: DictConfig, run_dir: Path, results: dict[str, Any], spec: DatasetSpec,
                    shared: Path, analog: bool) -> dict[str, Any]:  # fmt: skip
    """Energy, firing rates, INT8 accuracy (analog) and the transfer check (Bonn, analog) of
    the model ``run`` trained in ``run_dir``, reloaded from its selected checkpoint."""
    task, data = reload_task(cfg, run_dir, results)
    data.datamodule.setup("test")
    test = list(data.datamodule.test_dataloader())
    batches = windows_of(test, ENERGY_WINDOWS)
    report = energy.measure(task.encoder, batches)
    out: dict[str, Any] = {
        "energy_uj": {name: report.energy(name).total_uj for name in energy.COST_MODELS},
        "firing_rates": dict(report.firing_rates),
        "mean_firing_rate": report.mean_firing_rate if report.firing_rates else None,
        "n_parameters": report.n_parameters,
    }
    if analog:
        data.datamodule.setup("fit")
        calibration = windows_of(list(data.datamodule.train_dataloader()), ENERGY_WINDOWS)
        out["int8"] = int8_scores(task.encoder, calibration, test, batches)
        if spec.transfer:
            out["transfer"] = transfer_check(cfg, task.encoder, shared / "excerpts" / "chbmit")
    return out


def reload_task(cfg: DictConfig, run_dir: Path, results: dict[str, Any]) -> tuple[Any, Any]:
    """The task of a finished run with its selected weights, and its data (cache reused)."""
    cfg = with_paths(cfg, run_dir, resuming=False)
    task_cls = TASKS.get(cfg.task.module._target_)
    data = task_cls.prepare(cfg, run_dir)
    task = build_task(cfg, task_cls, data)
    best = results["checkpoints"]["best"]
    if best:
        state = torch.load(run_dir / best, map_location="cpu", weights_only=True)["state_dict"]
        task.load_state_dict(state)
    task.eval()
    return task, data


def windows_of(batches: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The first ``n`` windows of ``batches`` as model-input batches (x, ch_pos, ch_mask)."""
    out, taken = [], 0
    for batch in batches:
        if taken >= n:
            break
        keep = min(n - taken, len(batch["x"]))
        out.append({k: batch[k][:keep] for k in ("x", "ch_pos", "ch_mask") if k in batch})
        taken += keep
    return out


def predict_batches(model: nn.Module | Callable[..., torch.Tensor],
                    batches: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Labels and softmax probabilities of ``model`` over labelled ``batches``."""
    ys, probabilities = [], []
    with torch.no_grad():
        for batch in batches:
            extra = {k: batch[k] for k in ("ch_pos", "ch_mask") if batch.get(k) is not None}
            probabilities.append(model(batch["x"], **extra).float().softmax(dim=1).numpy())
            ys.append(np.asarray(batch["y"]))
    return np.concatenate(ys), np.concatenate(probabilities)


def int8_scores(encoder: nn.Module, calibration: Sequence[dict[str, Any]],
                test: Sequence[dict[str, Any]], measured: Sequence[dict[str, Any]],
                ) -> dict[str, Any]:  # fmt: skip
    """Test scores of the INT8 post-training quantization of ``encoder`` on the same test
    windows, and its energy per window (what it executes: INT8 convolutions and linear
    layers, the rest in float) under every cost model, counted over ``measured``."""
    quantized = quantize_int8(copy.deepcopy(encoder).eval(), calibration)
    y, probabilities = predict_batches(quantized, test)
    metrics = classification_metrics(y, probabilities)
    report = energy.measure(quantized, measured)
    return {
        **{key: metrics.get(key) for key in ("accuracy", "balanced_accuracy", "roc_auc", "n")},
        "energy_uj": {name: report.energy(name).total_uj for name in energy.COST_MODELS},
    }


CHBMIT_CROPS = ("chb01_03_background_crop.edf", "chb01_03_seizure_crop.edf")


def transfer_check(cfg: DictConfig, encoder: nn.Module, crops: Path) -> dict[str, Any]:
    """The Bonn model's seizure probability on the two CHB-MIT crops.

    Bonn is one channel, so each bipolar channel of a crop is preprocessed as a Bonn
    segment (the run's own preprocessing config, its scaling over that channel of the crop)
    and scored alone; a window's probability is the largest over its channels.

    Returns
    -------
    dict
        Per crop: windows, mean and largest seizure probability, share of windows above 0.5.
    """
    config = OmegaConf.create(OmegaConf.to_container(cfg.preprocess, resolve=True))
    with open_dict(config):
        config.artifacts.windows.reject = False  # score every window of the crop
    out = {}
    for name in CHBMIT_CROPS:
        recording = read_recording(crops / name)
        per_channel = []
        for c in range(len(recording.ch_names)):
            single = dataclasses.replace(recording, signal=recording.signal[c : c + 1],
                                         ch_names=["EEG"], ch_types=["eeg"], ch_pos=None)  # fmt: skip
            shard = transform_recording(single, config, {}, RecordingQC(name, str(crops / name)))
            with torch.no_grad():
                logits = encoder(torch.as_tensor(np.asarray(shard.x, dtype=np.float32)))
            per_channel.append(logits.softmax(dim=1)[:, 1].numpy())
        p = np.max(per_channel, axis=0)
        out[name.removesuffix("_crop.edf")] = {
            "n_windows": int(p.size), "mean": float(p.mean()), "max": float(p.max()),
            "share_above_0.5": float((p > 0.5).mean()),
        }  # fmt: skip
    return out
