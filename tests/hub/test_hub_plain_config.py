"""A config.json from a folder or the Hub is plain data: interpolations are refused, not resolved."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import HfApi

from neurodecode.errors import CheckpointError
from neurodecode.hub import export_model, from_pretrained, push_to_hub
from tests.hub.hub_helpers import CH_NAMES

SECRET = "hf_secret_token_must_not_leak"


@pytest.fixture()
def folder(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("ND_TEST_SECRET", SECRET)
    return export_model(
        tiny_model(), tmp_path / "export", ch_names=CH_NAMES, preprocessing={"resample": 32.0}
    )


def _poison(folder, edit) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c["preprocessing"].update(reference="${oc.env:ND_TEST_SECRET}"),
         "preprocessing.reference"),
        (lambda c: c.update(labels=["a", "${now:%Y}"]), "labels[1]"),
        (lambda c: c["model"].update(sfreq="${oc.env:ND_TEST_SECRET,32}"), "model.sfreq"),
        (lambda c: c["preprocessing"].update({"${oc.env:ND_TEST_SECRET}": 1}),
         "preprocessing.${oc.env:ND_TEST_SECRET}"),
    ],
)  # fmt: skip
def test_interpolations_in_a_local_config_are_refused_by_field(folder, edit, field):
    _poison(folder, edit)
    with pytest.raises(CheckpointError, match="OmegaConf interpolation") as err:
        from_pretrained(folder)
    message = str(err.value)
    assert f"field {field!r}" in message and str(folder / "config.json") in message
    assert SECRET not in message


@pytest.mark.network
def test_interpolations_in_a_hub_config_are_refused(hub, folder):
    _poison(folder, lambda c: c["preprocessing"].update(notch="${oc.env:ND_TEST_SECRET}"))
    with pytest.raises(CheckpointError, match="'preprocessing.notch'"):
        push_to_hub(folder, "lab/poisoned")  # publishing refuses it as well
    api = HfApi()
    api.create_repo("lab/poisoned")
    api.upload_folder(folder_path=folder, repo_id="lab/poisoned")
    with pytest.raises(CheckpointError, match="'preprocessing.notch'") as err:
        from_pretrained("lab/poisoned")
    assert SECRET not in str(err.value)


def test_a_dollar_sign_without_braces_is_plain_text(folder):
    _poison(folder, lambda c: c["card"].update(description="costs $5 per {run}"))
    assert from_pretrained(folder).config["card"]["description"] == "costs $5 per {run}"
