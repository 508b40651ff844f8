"""predict never resolves an interpolation found in a checkpoint's config or a run's record,
and never follows a run record out of its run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from neurodecode.errors import CheckpointError, ForeignTargetError
from neurodecode.predict import load_detector
from neurodecode.predict.__main__ import main

SECRET = "hf_secret_token_must_not_leak"


@pytest.fixture()
def poisoned(exported_detector: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The session's detector with ``${oc.env:...}`` as its montage (a string field)."""
    monkeypatch.setenv("ND_TEST_SECRET", SECRET)
    folder = Path(shutil.copytree(exported_detector, tmp_path / "detector"))
    config = json.loads((folder / "config.json").read_text())
    config["preprocessing"]["channels"]["target"] = "${oc.env:ND_TEST_SECRET}"
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_predict_refuses_an_env_interpolation_without_printing_it(
    poisoned, simulated_root, tmp_path, capsys, caplog
):
    recording = sorted(simulated_root.rglob("*_eeg.edf"))[0]
    out = tmp_path / "out"
    status = main([f"checkpoint={poisoned}", f"input={recording}", f"output={out}"])
    captured = capsys.readouterr()
    assert status != 0
    assert "'preprocessing.channels.target'" in captured.err
    written = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    for text in (captured.out, captured.err, caplog.text, written):
        assert SECRET not in text
    assert not (out / "summary.json").exists()


def test_load_detector_refuses_a_date_interpolation(exported_detector, tmp_path):
    folder = Path(shutil.copytree(exported_detector, tmp_path / "detector"))
    config = json.loads((folder / "config.json").read_text())
    config["preprocessing"]["windows"]["stride_s"] = "${now:%S}"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"'preprocessing\.windows\.stride_s'"):
        load_detector(folder)


def _run_folder(exported_detector: Path, root: Path) -> Path:
    """A training run (results.json + a best checkpoint) of the session's detector."""
    config = json.loads((exported_detector / "config.json").read_text())
    signal = config["signal"]
    state = load_file(str(exported_detector / "model.safetensors"))
    run = root / "runs" / "seizure" / "2026-01-01_00-00-00"
    (run / "checkpoints").mkdir(parents=True)
    hparams = {"model": {k: v for k, v in config["model"].items() if k != "chs_info"},
               "n_chans": len(signal["ch_names"]), "n_outputs": 2,
               "n_times": signal["n_times"], "sfreq": signal["sfreq"],
               "ch_names": signal["ch_names"], "ch_pos": signal["ch_pos"]}  # fmt: skip
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in state.items()},
                "hyper_parameters": hparams}, run / "checkpoints" / "best.ckpt")  # fmt: skip
    results = {"checkpoints": {"best": "checkpoints/best.ckpt"},
               "config": {"preprocess": config["preprocessing"],
                          "task": {"module": {"_target_": "seizure"}}}}  # fmt: skip
    (run / "results.json").write_text(json.dumps(results))
    return run


def _edit_results(run: Path, edit) -> None:
    results = json.loads((run / "results.json").read_text())
    edit(results)
    (run / "results.json").write_text(json.dumps(results))


def test_a_run_record_is_plain_data_and_stays_in_its_folder(exported_detector, tmp_path):
    run = _run_folder(exported_detector, tmp_path)
    assert load_detector(run).n_times > 0
    _edit_results(run, lambda r: r["config"]["task"]["module"].update(threshold="${now:%S}"))
    with pytest.raises(CheckpointError, match=r"'config\.task\.module\.threshold'") as err:
        load_detector(run)
    assert str(run / "results.json") in str(err.value)

    outside = tmp_path / "x.ckpt"  # a loadable checkpoint, two levels above the run
    shutil.copy(run / "checkpoints" / "best.ckpt", outside)
    _edit_results(run, lambda r: r["config"]["task"]["module"].pop("threshold"))
    _edit_results(run, lambda r: r.update(checkpoints={"best": "../../../x.ckpt"}))
    with pytest.raises(CheckpointError, match="outside the run folder") as err:
        load_detector(run)
    assert str(run / "results.json") in str(err.value)


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (lambda h: h.update(threshold="${now:%S}"), CheckpointError, "'threshold'"),
        (lambda h: h["model"].update(_target_="os.system"), ForeignTargetError, "'os.system'"),
        (lambda h: h["model"].update(_args_=[1]), ForeignTargetError, "'_args_'"),
    ],
)
def test_a_checkpoint_s_hyper_parameters_are_plain_data(
    exported_detector, tmp_path, edit, error, match
):
    run = _run_folder(exported_detector, tmp_path)
    checkpoint = run / "checkpoints" / "best.ckpt"
    content = torch.load(checkpoint, weights_only=True)
    edit(content["hyper_parameters"])
    torch.save(content, checkpoint)
    for source in (run, checkpoint):
        with pytest.raises(error, match=match) as err:
            load_detector(source)
        assert str(checkpoint) in str(err.value)
