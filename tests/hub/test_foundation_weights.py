"""braindecode-format weights (the model's own save_pretrained, random initialisation)
loaded by braindecode's loader with a weight-coverage report (hub.foundation); served over
the loopback Hub server for hf:// sources. Nothing is downloaded."""

from __future__ import annotations

import json

import pytest
import torch

from neurodecode.errors import CheckpointError
from neurodecode.hub import export_model
from neurodecode.hub.foundation import (
    COVERAGE_NAME,
    load_braindecode,
    read_braindecode_source,
    write_coverage,
)
from neurodecode.registry import MODELS
from tests.models.foundation_cases import TINY, named_chs


def build(name: str, seed: int, **extra):
    torch.manual_seed(seed)
    return MODELS.build(name, n_chans=19, n_outputs=2, n_times=512, sfreq=128.0,
                        chs_info=named_chs(19), **{**TINY[name], **extra})  # fmt: skip


def saved(name: str, folder, **extra):
    """``name``'s braindecode model saved by its own save_pretrained (4 outputs: a head
    that the task replaces)."""
    torch.manual_seed(0)
    model = MODELS.build(name, n_chans=19, n_outputs=4, n_times=512, sfreq=128.0,
                         chs_info=named_chs(19), **{**TINY[name], **extra})  # fmt: skip
    model.net.save_pretrained(str(folder))
    return model


def test_local_folder_loads_every_tensor_but_the_head(tmp_path):
    pretrained = saved("labram", tmp_path / "w")
    source = read_braindecode_source(tmp_path / "w")
    assert source is not None and source.config["braindecode_version"]
    model = build("labram", seed=1)
    head_before = {k: v.clone() for k, v in model.net.final_layer.state_dict().items()}
    report = load_braindecode(model, source)
    assert report.share == 1.0 and not (report.missing or report.unexpected or report.reshaped)
    assert report.head == ["final_layer.weight", "final_layer.bias"]
    theirs = pretrained.net.state_dict()
    for name in report.matched:
        torch.testing.assert_close(model.net.state_dict()[name], theirs[name], rtol=0, atol=0)
    for name, value in model.net.final_layer.state_dict().items():
        assert torch.equal(value, head_before[name])  # a new head, not the checkpoint's
    written = json.loads(write_coverage(report, tmp_path).read_text())
    assert (tmp_path / COVERAGE_NAME).is_file() and written["share_matched"] == 1.0
    assert "34 matched (100%" in report.text()


def test_weights_of_other_shapes_are_refused_with_the_report(tmp_path):
    saved("cbramod", tmp_path / "w", dim_feedforward=64)
    source = read_braindecode_source(tmp_path / "w")
    model = build("cbramod", seed=1)  # dim_feedforward=32
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"only 91% .*min_matched=0.95") as err:
        load_braindecode(model, source, min_matched=0.95)
    assert "reshaped: encoder.layers.0.linear1.weight [64, 200] -> [32, 200]" in str(err.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched
    report = load_braindecode(model, source, min_matched=0.9)  # accepted by the config
    assert len(report.reshaped) == 3 and 0.9 < report.share < 1
    linear1 = "encoder.layers.0.linear1.weight"
    assert torch.equal(model.net.state_dict()[linear1], before[f"net.{linear1}"])  # not copied


def test_a_checkpoint_of_another_model_loads_nothing_and_is_refused(tmp_path):
    saved("biot", tmp_path / "w")
    with pytest.raises(CheckpointError, match=r"only 0% .* nothing was loaded") as err:
        load_braindecode(build("labram", seed=1), read_braindecode_source(tmp_path / "w"))
    assert "unexpected" in str(err.value) and "missing" in str(err.value)


def test_only_braindecode_models_take_braindecode_weights(tmp_path):
    saved("labram", tmp_path / "w")
    other = MODELS.build("dual_branch_conformer", n_chans=19, n_outputs=2, n_times=512,
                         sfreq=128.0, size="tiny")  # fmt: skip
    with pytest.raises(CheckpointError, match="model=labram"):
        load_braindecode(other, read_braindecode_source(tmp_path / "w"))


def test_other_sources_are_left_to_finetune(tmp_path):
    model = MODELS.build("dual_branch_conformer", n_chans=3, n_outputs=2, n_times=256,
                         sfreq=128.0, size="tiny")  # fmt: skip
    export_model(model, tmp_path / "export", ch_names=["C3", "Cz", "C4"])
    assert read_braindecode_source(tmp_path / "export") is None  # neurodecode's own export
    (tmp_path / "run").mkdir()
    assert read_braindecode_source(tmp_path / "run") is None  # a run folder
    assert read_braindecode_source("org/name") is None  # a bare Hub id: neurodecode's loader


def test_hf_source_is_downloaded_from_the_loopback_hub(hub, tmp_path):
    from huggingface_hub import HfApi

    pretrained = saved("eegpt", tmp_path / "w")
    api = HfApi()
    api.create_repo("lab/eegpt-tiny", exist_ok=True)
    api.upload_folder(repo_id="lab/eegpt-tiny", folder_path=str(tmp_path / "w"))
    source = read_braindecode_source("hf://lab/eegpt-tiny")
    assert source is not None and source.folder != tmp_path / "w"
    model = build("eegpt", seed=1)
    report = load_braindecode(model, source)
    assert report.share == 1.0
    name = report.matched[0]
    assert torch.equal(model.net.state_dict()[name], pretrained.net.state_dict()[name])


def test_any_braindecode_model_takes_weights_of_its_class(tmp_path):
    """``model=braindecode model.name=<ClassName>`` loads braindecode-format weights too."""

    def eegnet(n_outputs: int, seed: int):
        torch.manual_seed(seed)
        return MODELS.build("braindecode", name="EEGNet", n_chans=8, n_outputs=n_outputs,
                            n_times=256, sfreq=128.0)  # fmt: skip

    eegnet(4, seed=0).net.save_pretrained(str(tmp_path / "w"))
    model = eegnet(2, seed=1)
    report = load_braindecode(model, read_braindecode_source(tmp_path / "w"))
    assert report.share == 1.0 and report.head and report.model == "braindecode EEGNet"
