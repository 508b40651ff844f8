"""Loading from a local folder: round trip, and every unsafe or broken input refused."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import neurodecode
from neurodecode.errors import CheckpointError, ConfigError, ContractError, ForeignTargetError
from neurodecode.hub import check_contract, export_model, from_pretrained, load_weights
from neurodecode.hub.format import FORMAT_VERSION
from tests.hub.hub_helpers import CH_NAMES, TINY


@pytest.fixture()
def exported(tiny_model, tmp_path):
    model = tiny_model().eval()
    folder = export_model(
        model,
        tmp_path / "export",
        ch_names=CH_NAMES,
        labels=["a", "b"],
        preprocessing={"resample": 32.0},
    )
    return model, folder


def _edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_local_round_trip_is_bit_identical(exported):
    model, folder = exported
    pretrained = neurodecode.from_pretrained(str(folder))
    x = torch.randn(3, 4, 64)
    with torch.no_grad():
        assert torch.equal(model(x), pretrained.model(x))
    assert not pretrained.model.training
    assert pretrained.ch_names == CH_NAMES and pretrained.sfreq == 32.0
    assert pretrained.n_times == 64 and pretrained.labels == ["a", "b"]
    assert pretrained.preprocessing == {"resample": 32.0}
    assert pretrained.missing_keys == [] and pretrained.unexpected_keys == []


@pytest.mark.parametrize("target", ["os.system", "torch.nn.Linear", "classification"])
def test_foreign_target_is_refused(exported, target):
    _, folder = exported
    config = json.loads((folder / "config.json").read_text())
    _edit_config(folder, model={**config["model"], "_target_": target})
    with pytest.raises(ForeignTargetError, match="refusing to build"):
        from_pretrained(folder)


def test_foreign_nested_target_is_refused(exported):
    _, folder = exported
    config = json.loads((folder / "config.json").read_text())
    _edit_config(folder, model={**config["model"], "hidden": {"_target_": "os.system"}})
    with pytest.raises(ForeignTargetError, match="os.system"):
        from_pretrained(folder)


def test_pickle_only_checkpoint_is_refused(tiny_model, tmp_path):
    torch.save(tiny_model().state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"only pickle-based .*pytorch_model\.bin"):
        from_pretrained(tmp_path)


def test_corrupted_weights_are_refused(exported):
    _, folder = exported
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match the SHA-256"):
        from_pretrained(folder)


def test_truncated_weights_without_checksum_are_refused(exported, tiny_model):
    _, folder = exported
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_weights(tiny_model(), weights)


def test_newer_format_version_is_refused(exported):
    _, folder = exported
    _edit_config(folder, format_version=FORMAT_VERSION + 1, neurodecode_version="9.0")
    with pytest.raises(CheckpointError, match="newer neurodecode .*upgrade neurodecode"):
        from_pretrained(folder)


def test_missing_and_unexpected_weights_are_reported(exported, tiny_model, tmp_path):
    _, folder = exported
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    state.pop("head.bias")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, tmp_path / "partial.safetensors")
    model = tiny_model(n_chans=4)
    before = model.head.weight.clone()
    with pytest.raises(CheckpointError, match=r"1 missing weight\(s\) \[head.bias\], 1 unexpected"):
        load_weights(model, tmp_path / "partial.safetensors")
    assert torch.equal(model.head.weight, before)  # a refused load changes nothing
    missing, unexpected = load_weights(model, tmp_path / "partial.safetensors", allow_partial=True)
    assert (missing, unexpected) == (["head.bias"], ["extra.weight"])
    assert torch.equal(model.head.weight, state["head.weight"])


def test_wrong_shapes_are_refused(exported, tiny_model):
    _, folder = exported
    with pytest.raises(CheckpointError, match="wrong shape: .*conv.weight"):
        load_weights(tiny_model(n_chans=5), folder / "model.safetensors")


def test_contract_19_channel_model_on_23_channel_recording(tiny_model, tmp_path):
    names19 = [
        "Fp1",
        "Fp2",
        "F3",
        "F4",
        "C3",
        "C4",
        "P3",
        "P4",
        "O1",
        "O2",
        "F7",
        "F8",
        "T7",
        "T8",
        "P7",
        "P8",
        "Fz",
        "Cz",
        "Pz",
    ]
    folder = export_model(
        tiny_model(n_chans=19, n_times=512, sfreq=256.0), tmp_path, ch_names=names19
    )
    pretrained = from_pretrained(folder)
    recording = [n for n in names19 if n != "Pz"] + ["FT9", "FT10", "T9", "T10", "ECG"]
    assert len(recording) == 23
    with pytest.raises(ContractError) as info:
        check_contract(
            pretrained, ch_names=recording, sfreq=256.0, n_times=512, path="chb01_03.edf"
        )
    message = str(info.value)
    assert "chb01_03.edf" in message
    assert "expects 19 channels, the data have 23" in message
    assert "missing ['Pz']" in message and "extra ['FT9', 'FT10', 'T9', 'T10', 'ECG']" in message
    assert "harmonise" in message
    check_contract(pretrained, ch_names=names19, sfreq=256.0, n_times=512)
    upper = [name.upper() for name in names19]
    with pytest.raises(ContractError, match=r"5 missing channel\(s\) are there under another "
                       r"spelling \(FP1 → Fp1, FP2 → Fp2"):  # fmt: skip
        check_contract(pretrained, ch_names=upper)


def test_contract_rate_length_and_order(exported):
    _, folder = exported
    pretrained = from_pretrained(folder)
    with pytest.raises(ContractError, match=r"256 Hz, the model at 32 Hz.*resample to 32 Hz"):
        check_contract(pretrained, sfreq=256.0)
    with pytest.raises(ContractError, match="windows of 100 samples, the model takes 64"):
        check_contract(pretrained, n_times=100)
    with pytest.raises(ContractError, match="another order"):
        check_contract(pretrained, ch_names=CH_NAMES[::-1])


def test_not_an_export_and_local_revision(tmp_path, exported):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json, model.safetensors missing"):
        from_pretrained(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="no such folder"):
        from_pretrained(tmp_path / "absent")
    with pytest.raises(ConfigError, match="revision"):
        from_pretrained(exported[1], revision="v1")


def test_registered_architecture_name_is_checked_first(exported):
    _, folder = exported
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["_target_"] == TINY
    _edit_config(folder, model={"n_chans": 4})
    with pytest.raises(ForeignTargetError, match="refusing to build None"):
        from_pretrained(folder)


def test_import_neurodecode_stays_light_until_from_pretrained_is_used():
    import subprocess
    import sys

    code = "import sys, neurodecode; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert neurodecode.from_pretrained is from_pretrained
    with pytest.raises(AttributeError, match="no attribute 'from_pretrain'"):
        neurodecode.from_pretrain  # noqa: B018
