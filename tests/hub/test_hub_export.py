"""Export: the three files, the signal contract in config.json, the model card."""

from __future__ import annotations

import json

import pytest
import yaml
from torch import nn

from neurodecode.errors import ConfigError, ForeignTargetError
from neurodecode.hub import export_model, model_config
from neurodecode.hub.card import MEDICAL_DISCLAIMER
from neurodecode.hub.format import FORMAT_VERSION
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
    assert {m["name"]: m["value"] for m in results["metrics"]} == {
        "test.balanced_accuracy": 0.61,
        "test.n_windows": 90.0,
    }
    assert "| test.balanced_accuracy | 0.61 |" in card
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


def test_config_dict_protocol_is_used(tiny_model):
    model = tiny_model()
    model.config_dict = lambda: {"n_chans": 4, "n_outputs": 2, "n_times": 64, "sfreq": 32.0}
    assert model_config(model) == {
        "_target_": TINY,
        "n_chans": 4,
        "n_outputs": 2,
        "n_times": 64,
        "sfreq": 32.0,
    }
