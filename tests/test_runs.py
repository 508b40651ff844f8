"""What every training run shares: trainer arguments and their strategy for every recipe,
the checkpoint to resume from, the run record; and no stage importing the entry point."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

import neurodecode
from neurodecode import run as run_layer
from neurodecode.errors import ConfigError
from neurodecode.jsonio import is_strict
from neurodecode.train import compose

RECIPES = ["seizure", "motor_imagery", "image_retrieval", "pretrain"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_fsdp_trainer_builds_its_strategy_for_every_recipe(recipe):
    """trainer=fsdp: Lightning's FSDPStrategy, auto-wrapping the configured classes (the
    strategy object only: there is no GPU here to start a trainer on)."""
    from lightning.pytorch.strategies import FSDPStrategy

    from neurodecode.models.blocks import TransformerEncoderLayer
    from neurodecode.models.patch_conformer import FactorisedLayer
    from neurodecode.models.spiking import SpikingTransformerLayer

    cfg = compose([f"recipe={recipe}", "trainer=fsdp"])
    arguments = run_layer.trainer_arguments(cfg)
    assert arguments["accelerator"] == "gpu" and arguments["devices"] == -1
    assert arguments["precision"] == "bf16-mixed"
    strategy = arguments["strategy"]
    assert isinstance(strategy, FSDPStrategy)
    policy = strategy.kwargs["auto_wrap_policy"]
    assert policy._module_classes == {
        TransformerEncoderLayer,
        SpikingTransformerLayer,
        FactorisedLayer,
    }
    assert strategy.kwargs["use_orig_params"] is True
    assert strategy._state_dict_type == "full"


def test_fsdp_keeps_the_batch_uncast():
    """bf16 parameters inside FSDP, but the batch (start_s, positions) is not cast to bf16."""
    import torch
    from lightning.pytorch.plugins.precision import FSDPPrecision

    strategy = run_layer.trainer_arguments(compose(["recipe=seizure", "trainer=fsdp"]))["strategy"]
    strategy.precision_plugin = FSDPPrecision("bf16-mixed")
    config = strategy.mixed_precision_config
    assert config.param_dtype == config.reduce_dtype == torch.bfloat16
    assert config.cast_root_forward_inputs is False and config.cast_forward_inputs is False


@pytest.mark.parametrize("recipe", RECIPES)
def test_other_trainers_pass_the_strategy_name_on(recipe):
    cfg = compose([f"recipe={recipe}", "trainer=ddp"])
    arguments = run_layer.trainer_arguments(cfg)
    assert arguments["strategy"] == "ddp" and arguments["sync_batchnorm"] is True
    default = run_layer.trainer_arguments(compose([f"recipe={recipe}"]))
    assert default["strategy"] == "auto"
    assert default["precision"] == run_layer.auto_precision()  # precision: auto, resolved


@pytest.mark.parametrize(
    ("model", "changes"),
    [
        ("dual_branch_conformer", {}),
        ("spiking", {"time_steps": 2}),
        ("patch_conformer", {}),
        ("patch_conformer", {"spiking_time_steps": 2}),
    ],
)
def test_every_transformer_encoder_has_fsdp_units(model, changes):
    """The classes fsdp.yaml wraps occur in each transformer encoder (one unit per layer at
    least), so a renamed layer class cannot silently leave a model in a single unit."""
    from hydra.utils import get_class

    from neurodecode.tasks.base import build_encoder

    wrap = tuple(get_class(name) for name in compose(["recipe=pretrain", "trainer=fsdp"])
                 .trainer.strategy.wrap)  # fmt: skip
    config = OmegaConf.to_container(compose(["recipe=seizure", f"model={model}"]).model)
    encoder = build_encoder(
        {**config, **changes}, n_chans=4, n_outputs=2, n_times=256, sfreq=128.0,
        ch_names=["Fp1", "Fp2", "C3", "C4"], ch_pos=np.eye(4, 3).tolist(),
    )  # fmt: skip
    units = [m for m in encoder.modules() if isinstance(m, wrap)]
    assert len(units) >= 2 and all(any(True for _ in m.parameters()) for m in units)


def test_resume_finds_the_latest_earlier_run(tmp_path):
    recipe_runs = tmp_path / "runs" / "seizure"
    for name in ("2026-01-01_00-00-00", "2026-01-02_00-00-00"):
        (recipe_runs / name / "checkpoints").mkdir(parents=True)
        (recipe_runs / name / "checkpoints" / "last.ckpt").write_bytes(b"")
    current = recipe_runs / "2026-01-03_00-00-00"
    latest = recipe_runs / "2026-01-02_00-00-00" / "checkpoints" / "last.ckpt"
    assert run_layer.resume_checkpoint(OmegaConf.create({"resume": False}), current) is None
    assert run_layer.resume_checkpoint(OmegaConf.create({"resume": True}), current) == latest
    earlier = recipe_runs / "2026-01-01_00-00-00"
    chosen = run_layer.resume_checkpoint(OmegaConf.create({"resume": str(earlier)}), current)
    assert chosen == earlier / "checkpoints" / "last.ckpt"
    with pytest.raises(ConfigError, match="no earlier run"):
        run_layer.resume_checkpoint(OmegaConf.create({"resume": True}), tmp_path / "x" / "run")
    with pytest.raises(ConfigError, match="no checkpoint"):
        run_layer.resume_checkpoint(
            OmegaConf.create({"resume": str(tmp_path / "nothing")}), current
        )


def test_the_run_record_is_strict_json_written_whole_with_a_key_order_free_hash(tmp_path):
    value = {"a": np.float32(0.5), "b": [np.int64(3), math.nan], "c": np.arange(2),
             "d": (Path("x") / "y", math.inf)}  # fmt: skip
    expected = {"a": 0.5, "b": [3, None], "c": [0, 1], "d": ["x/y", None]}
    assert run_layer.write_results(tmp_path, value) == expected
    text = (tmp_path / "results.json").read_text()
    assert is_strict(text) and json.loads(text) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left
    assert run_layer.config_hash({"a": 1, "b": {"c": 2}}) == run_layer.config_hash(
        {"b": {"c": 2}, "a": 1}
    )
    assert run_layer.config_hash({"a": 1}) != run_layer.config_hash({"a": 2})
    assert len(run_layer.config_hash({})) == 16
    assert {"python", "torch", "lightning", "neurodecode"} <= set(run_layer.versions())


def test_no_stage_imports_the_training_entry_point():
    """A stage never reaches back up: only neurodecode/train.py itself and the command line
    above it (cli/) name the module ``neurodecode.train`` (imports inside functions included)."""
    package = Path(neurodecode.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "train.py" or path.parent == package / "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:  # relative: resolved against the file's package
                    parts = path.relative_to(package.parent).with_suffix("").parts
                    module = ".".join([*parts[: -node.level], *filter(None, [module])])
                names = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            if "neurodecode.train" in names:
                offenders.append(f"{path.relative_to(package)}:{node.lineno}")
    assert not offenders, offenders


def test_auto_precision_prefers_bf16_on_gpus_that_have_it(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run_layer.auto_precision() == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert run_layer.auto_precision() == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert run_layer.auto_precision() == "16-mixed"


@pytest.mark.parametrize("recipe", ["seizure", "pretrain"])
def test_callbacks_and_loggers_come_from_their_config_groups(recipe, tmp_path):
    """callbacks/ and logger/ are Hydra groups: every recipe's trainer gets the callbacks
    of its group option, writing into the run folder; pretraining has no early stopping."""
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from neurodecode.run.runner import with_paths

    cfg = with_paths(compose([f"recipe={recipe}", "trainer.accelerator=cpu"]), tmp_path, False)
    trainer = run_layer.build_trainer(cfg)

    def has(kind: type) -> bool:
        return any(isinstance(callback, kind) for callback in trainer.callbacks)

    assert has(ModelCheckpoint) and has(LearningRateMonitor)
    assert has(EarlyStopping) == (recipe != "pretrain")
    assert has(run_layer.EpochSeeding) == (recipe != "pretrain")
    assert Path(trainer.checkpoint_callback.dirpath) == tmp_path / "checkpoints"
    assert [type(lg) for lg in trainer.loggers] == [CSVLogger, TensorBoardLogger]
    assert Path(trainer.loggers[0].log_dir) == tmp_path / "logs" / "csv"
    resumed = run_layer.build_trainer(with_paths(cfg, tmp_path, resuming=True))
    assert resumed.loggers[0].version.startswith("csv-resumed-")
    dropped = compose([f"recipe={recipe}", "logger=csv", "~callbacks.lr_monitor"])
    trainer = run_layer.build_trainer(with_paths(dropped, tmp_path, False))
    assert LearningRateMonitor not in {type(c) for c in trainer.callbacks}
    assert [type(lg) for lg in trainer.loggers] == [CSVLogger]


def test_the_run_layer_never_asks_for_a_task_type():
    """Tasks declare what differs (data hooks, artefacts, export); the run layer and the
    entry point name no task class."""
    package = Path(neurodecode.__file__).parent
    tasks = {"ClassificationTask", "SeizureTask", "RetrievalTask", "PretrainTask"}
    for path in [package / "train.py", *sorted((package / "run").glob("*.py"))]:
        names = {
            node.id if isinstance(node, ast.Name) else node.attr
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Name | ast.Attribute)
        }
        assert not names & tasks, (path.name, names & tasks)
