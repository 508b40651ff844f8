"""Export: the three files, the signal contract in config.json, the model card."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from torch import nn

from neurodecode.errors import ConfigError, ForeignTargetError
from neurodecode.hub import export_model, model_config
from neurodecode.hub.card import MEDICAL_DISCLAIMER
from neurodecode.hub.format import FORMAT_VERSION
from neurodecode.registry import MODELS
from tests.hub.hub_helpers import CH_NAMES, TINY


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_export_writes_weights_config_and_card(tiny_model, tmp_path):
    model = tiny_model()
    out = export_model(
        model,
        tmp_path / "export",
        ch_names=CH_NAMES,
        ch_pos=[[0.0, 0.1, 0.0]] * 4,
        preprocessing={"bandpass": [0.5, 40.0], "reference": "average", "units": "uV"},
        labels=["rest", "move"],
        task="motor_imagery",
        dataset="eegmmidb",
        metrics={"test": {"balanced_accuracy": 0.61, "n_windows": 90}, "note": "text"},
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((out / "config.json").read_text())
    assert config["format_version"] == FORMAT_VERSION
    assert config["model"] == {
        "_target_": TINY,
        "n_chans": 4,
        "n_outputs": 2,
        "n_times": 64,
        "sfreq": 32.0,
    }
    assert config["signal"]["ch_names"] == CH_NAMES
    assert config["signal"]["sfreq"] == 32.0 and config["signal"]["n_times"] == 64
    assert config["signal"]["ch_pos"] == [[0.0, 0.1, 0.0]] * 4
    assert config["preprocessing"]["bandpass"] == [0.5, 40.0]
    assert config["labels"] == ["rest", "move"]
    assert len(config["weights"]["sha256"]) == 64 and config["weights"]["n_tensors"] == 5

    card = (out / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "neurodecode"
    assert {"neurodecode", "eeg", TINY, "motor_imagery"} <= set(meta["tags"])
    assert meta["datasets"] == ["eegmmidb"]
    results = meta["model-index"][0]["results"][0]
    assert results["dataset"]["name"] == "eegmmidb"
    assert results["metrics"] == [
        {"type": "balanced_accuracy", "name": "test.balanced_accuracy", "value": 0.61}
    ]  # counts stay out of the model index, but the table shows every number
    assert "| test.balanced_accuracy | 0.61 |" in card and "| test.n_windows | 90 |" in card
    assert "Fp1, Fp2, C3, C4" in card and "32 Hz" in card
    assert "## Intended use" in card and "## Limitations" in card
    assert MEDICAL_DISCLAIMER not in card


def test_seizure_card_says_not_a_medical_device(tiny_model, tmp_path):
    out = export_model(
        tiny_model(),
        tmp_path,
        ch_names=CH_NAMES,
        task="seizure",
        dataset="chbmit",
        labels=["background", "seizure"],
        card={"license": "odc-by", "description": "Seizure detector."},
    )
    card = (out / "README.md").read_text()
    assert MEDICAL_DISCLAIMER in card
    assert "not a medical device" in card
    meta = _front_matter(card)
    assert meta["license"] == "odc-by" and "research-only" in meta["tags"]
    assert "model-index" not in meta  # no metrics, no results block


def test_channel_names_come_from_chs_info(tiny_model, tmp_path):
    chs_info = [
        {"ch_name": n, "loc": [0.01 * i, 0.0, 0.02] + [0.0] * 9} for i, n in enumerate(CH_NAMES)
    ]
    out = export_model(tiny_model(chs_info=chs_info), tmp_path)
    signal = json.loads((out / "config.json").read_text())["signal"]
    assert signal["ch_names"] == CH_NAMES
    assert signal["ch_pos"][1] == [0.01, 0.0, 0.02]


def test_wrong_number_of_channel_names_is_refused(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="3 channel names .* n_chans=4"):
        export_model(tiny_model(), tmp_path, ch_names=CH_NAMES[:3])


def test_model_without_recorded_arguments_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="build_model"):
        model_config(nn.Linear(2, 2))


def test_unregistered_model_is_refused(tmp_path):
    with pytest.raises(ForeignTargetError, match="not a registered neurodecode model"):
        model_config(nn.Linear(2, 2), model_kwargs={"in_features": 2, "out_features": 2})


def test_an_encoder_describes_itself_through_the_base_class(tiny_model):
    encoder = MODELS.build("dual_branch_conformer", n_chans=4, n_outputs=2, n_times=64,
                           sfreq=32.0, size="tiny", kernel_s=0.25)  # fmt: skip
    assert model_config(encoder) == {"_target_": "dual_branch_conformer", **encoder.config_dict()}
    model = tiny_model()  # not an encoder: a config_dict attribute is not trusted
    model.config_dict = lambda: {"n_chans": 99}
    assert model_config(model)["n_chans"] == 4  # what build_model recorded


def _fake_run(tmp_path, *, extra_hparams=None):
    """A run folder as ``python -m neurodecode.train`` writes it, around a real task."""
    from neurodecode.registry import TASKS

    positions = [[0.0, 0.01 * i, 0.05] for i in range(4)]
    task = TASKS.build("classification", model={"_target_": TINY, "hidden": 3}, n_chans=4,
                       n_outputs=2, n_times=64, sfreq=32.0, ch_names=CH_NAMES, ch_pos=positions,
                       class_names=["rest", "move"])  # fmt: skip
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    hparams = {**dict(task.hparams), **(extra_hparams or {})}
    checkpoint = {"state_dict": task.state_dict(), "hyper_parameters": hparams, "epoch": 3}
    torch.save(checkpoint, run / "checkpoints" / "best-epoch=003.ckpt")
    results = {
        "recipe": "motor_imagery",
        "seed": 0,
        "metrics": {"test": {"accuracy": 0.7, "kappa": 0.4}, "epochs_trained": 4},
        "checkpoints": {"best": "checkpoints/best-epoch=003.ckpt", "last": None},
        "data": {"dataset": "eegmmidb", "classes": ["rest", "move"], "units": "z-score"},
        "config": {"preprocess": {"resample": 32.0, "bandpass": {"l_freq": 8, "h_freq": 30}}},
        "config_hash": "0123456789abcdef",
    }
    (run / "results.json").write_text(json.dumps(results))
    return run, task.encoder.eval()


def test_export_run_from_lightning_checkpoint(tiny_model, tmp_path):
    from neurodecode.hub import export_run, from_pretrained

    run, encoder = _fake_run(tmp_path)
    out = export_run(run, tmp_path / "export")
    pretrained = from_pretrained(out)
    x = torch.randn(2, 4, 64)
    with torch.no_grad():
        assert torch.equal(pretrained.model(x), encoder(x))
    config = pretrained.config
    assert config["model"]["hidden"] == 3
    assert config["task"] == "motor_imagery" and config["dataset"] == "eegmmidb"
    assert pretrained.labels == ["rest", "move"]
    assert config["signal"]["units"] == "z-score"
    assert pretrained.ch_pos[2].tolist() == [0.0, 0.02, 0.05]
    assert pretrained.preprocessing["bandpass"] == {"l_freq": 8, "h_freq": 30}
    card = (out / "README.md").read_text()
    assert "| test.kappa | 0.4 |" in card and "research software" not in card
    assert "config_hash `0123456789abcdef`" in card and "best-epoch=003.ckpt" in card


def test_export_run_refuses_unsafe_or_incomplete_runs(tiny_model, tmp_path):
    import argparse

    from neurodecode.errors import CheckpointError
    from neurodecode.hub import export_run

    run, _ = _fake_run(tmp_path, extra_hparams={"namespace": argparse.Namespace(a=1)})
    with pytest.raises(CheckpointError, match="cannot read the checkpoint safely"):
        export_run(run, tmp_path / "export")
    with pytest.raises(CheckpointError, match="no 'last' checkpoint"):
        export_run(run, tmp_path / "export", checkpoint="last")
    (run / "results.json").unlink()
    with pytest.raises(CheckpointError, match="no results.json"):
        export_run(run, tmp_path / "export")
