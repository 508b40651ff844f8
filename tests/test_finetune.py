"""init_from sources that are damaged or unsafe are refused, naming the file, before any
data work, by the loader of from_pretrained."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from neurodecode import train
from neurodecode.errors import CheckpointError, ForeignTargetError
from neurodecode.finetune import read_init_source
from neurodecode.hub import build_model, export_model
from neurodecode.registry import TASKS

NAMES = ["Fp1", "Fp2", "C3", "C4"]


@pytest.fixture()
def export_dir(tmp_path):
    model = build_model(
        "dual_branch_conformer", n_chans=4, n_outputs=2, n_times=128, sfreq=128.0, size="tiny"
    )
    return export_model(model, tmp_path / "export", ch_names=NAMES)


def test_altered_weights_are_refused(export_dir):
    weights = export_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256") as err:
        read_init_source(export_dir)
    assert str(weights) in str(err.value)


def test_missing_weights_are_refused(export_dir):
    (export_dir / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors missing"):
        read_init_source(export_dir)


def test_a_checkpoint_that_is_not_weights_only_is_refused(tmp_path):
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights only") as err:
        read_init_source(bad)
    assert str(bad) in str(err.value)


def _edit_model(folder, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model"].update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"_target_": "torch.nn.Linear"}, "refusing to build 'torch.nn.Linear'"),
        ({"_target_": "seizure"}, "refusing to build 'seizure'"),  # a task, not a model
        ({"_args_": [4, 2]}, "instantiation key '_args_'"),
        ({"_partial_": True}, "instantiation key '_partial_'"),
        ({"mixer": {"_target_": "os.system"}}, "refusing to build 'os.system'"),
    ],
)
def test_unregistered_targets_and_hydra_keys_are_refused_naming_the_file(
    export_dir, changes, match
):
    _edit_model(export_dir, **changes)
    with pytest.raises(ForeignTargetError, match=match) as err:
        read_init_source(export_dir)
    assert str(export_dir / "config.json") in str(err.value)


def test_a_pickle_only_folder_is_refused_as_pickle(export_dir):
    weights = export_dir / "model.safetensors"
    torch.save({"w": torch.zeros(1)}, export_dir / "pytorch_model.bin")
    weights.unlink()
    with pytest.raises(CheckpointError, match=r"only pickle-based .*pytorch_model\.bin") as err:
        read_init_source(export_dir)
    assert "download it again" not in str(err.value)
    (export_dir / "config.json").unlink()  # no config either: still named as pickle-only
    with pytest.raises(CheckpointError, match="only pickle-based"):
        read_init_source(export_dir)


@pytest.fixture()
def run_with_checkpoint(export_dir, tmp_path):
    """A fine-tuning run folder: results.json and checkpoints/last.ckpt of the exported encoder."""
    config = json.loads((export_dir / "config.json").read_text())
    encoder = read_init_source(export_dir)
    run = tmp_path / "runs" / "seizure" / "2026-01-01_00-00-00"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in encoder.state.items()},
                "hyper_parameters": {"model": config["model"]}},
               run / "checkpoints" / "last.ckpt")  # fmt: skip
    (run / "results.json").write_text(
        json.dumps({"checkpoints": {"last": "checkpoints/last.ckpt"}})
    )
    return run


def test_a_run_record_may_not_point_outside_its_run_folder(run_with_checkpoint, tmp_path):
    run = run_with_checkpoint
    assert read_init_source(run).source == str(run / "checkpoints" / "last.ckpt")
    shutil.copy(run / "checkpoints" / "last.ckpt", tmp_path / "runs" / "x.ckpt")
    for pointer in ("../../x.ckpt", str(tmp_path / "runs" / "x.ckpt")):
        (run / "results.json").write_text(json.dumps({"checkpoints": {"last": pointer}}))
        with pytest.raises(CheckpointError, match="outside the run folder") as err:
            read_init_source(run)
        assert str(run / "results.json") in str(err.value)
    (run / "results.json").write_text(json.dumps({"encoder": "${oc.env:HOME}"}))
    with pytest.raises(CheckpointError, match="'encoder' holds an OmegaConf interpolation"):
        read_init_source(run)


def test_a_foreign_target_in_a_checkpoint_is_refused_naming_it(run_with_checkpoint):
    checkpoint = run_with_checkpoint / "checkpoints" / "last.ckpt"
    content = torch.load(checkpoint, weights_only=True)
    content["hyper_parameters"]["model"]["_target_"] = "os.system"
    torch.save(content, checkpoint)
    with pytest.raises(ForeignTargetError, match="os.system") as err:
        read_init_source(run_with_checkpoint)
    assert str(checkpoint) in str(err.value)


@pytest.mark.parametrize("problem", ["foreign", "pickle", "outside"])
def test_init_from_is_refused_before_any_data_preparation(
    problem, export_dir, run_with_checkpoint, tmp_path, monkeypatch
):
    source = export_dir
    if problem == "foreign":
        _edit_model(export_dir, _target_="seizure")
    elif problem == "pickle":
        (export_dir / "model.safetensors").rename(export_dir / "model.pt")
    else:
        source = run_with_checkpoint
        (source / "results.json").write_text(json.dumps({"checkpoints": {"last": "../../x"}}))
    cfg = train.compose(["recipe=seizure", "data=simulated", f"init_from={source}"])

    def no_data_work(cls, cfg, run_dir):
        raise AssertionError("data preparation started before init_from was checked")

    monkeypatch.setattr(TASKS.get(cfg.task.module._target_), "prepare", classmethod(no_data_work))
    with pytest.raises((CheckpointError, ForeignTargetError)) as err:
        train.run(cfg, tmp_path / "run", recipe="seizure")
    assert str(source) in str(err.value)
