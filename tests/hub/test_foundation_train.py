"""The target commands of braindecode's foundation models: a seizure recipe on simulated data
initialised from braindecode-format weights (the model's own save_pretrained on random
initialisation) served by the loopback Hub, printing the coverage and montage reports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from huggingface_hub import HfApi

from neurodecode.data.montage import DOUBLE_BANANA
from neurodecode.errors import ChannelError
from neurodecode.finetune import initialise
from neurodecode.hub.foundation import read_braindecode_source, record_input_report
from neurodecode.registry import MODELS
from neurodecode.tasks.seizure import SeizureTask
from tests.hub.hub_helpers import subprocess_env
from tests.models.foundation_cases import TINY, named_chs

# one layer, few heads: the same architecture in the weights and in the run
TINY_OVERRIDES = {
    "labram": ["model.num_layers=1", "model.num_heads=2"],
    "cbramod": ["model.n_layer=1", "model.nhead=2", "model.dim_feedforward=32"],
    "eegpt": ["model.embed_dim=16", "model.depth=1", "model.num_heads=2"],
    "biot": ["model.embed_dim=16", "model.num_heads=2", "model.num_layers=1"],
}
# the weights as the run builds the model: data at 128 Hz, 4 s windows, the model's channels
SAVED = {
    "labram": ("Labram", 19, 800, 200.0, {"num_layers": 1, "num_heads": 2}),
    "cbramod": ("CBraMod", 19, 800, 200.0, {"n_layer": 1, "nhead": 2, "dim_feedforward": 32}),
    "eegpt": ("EEGPT", 19, 1024, 256.0, {"embed_dim": 16, "depth": 1, "num_heads": 2}),
    "biot": ("BIOT", 18, 800, 200.0, {"embed_dim": 16, "num_heads": 2, "num_layers": 1}),
}
QUICK = ["recipe=seizure", "data=simulated", "trainer.max_epochs=1",
         "+data.manifest.source.generator_params.n_runs=1",  # 4 recordings of 240 s
         "preprocess.windows.stride_s=4", "data.datamodule.batch_size=64",
         "trainer.enable_progress_bar=false"]  # fmt: skip


def push_weights(name: str, folder) -> str:
    """Save ``name``'s braindecode model (random initialisation) and push it to the Hub."""
    import braindecode.models as zoo

    cls, n_chans, n_times, sfreq, kwargs = SAVED[name]
    names = DOUBLE_BANANA if n_chans == 18 else None
    chs = named_chs(n_chans, names) if names else named_chs(n_chans)
    torch.manual_seed(0)
    model = getattr(zoo, cls)(n_chans=n_chans, n_outputs=3, n_times=n_times, sfreq=sfreq,
                              chs_info=chs, **kwargs)  # fmt: skip
    model.save_pretrained(str(folder))
    repo = f"lab/{name}-tiny"
    HfApi().create_repo(repo, exist_ok=True)
    HfApi().upload_folder(repo_id=repo, folder_path=str(folder))
    return f"hf://{repo}"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One NEURODECODE_HOME for the module: simulated data and caches are built once."""
    return tmp_path_factory.mktemp("foundation_home")


def train(home, runs, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "neurodecode.train", *QUICK, f"runs_dir={runs}", *overrides]
    env = subprocess_env(NEURODECODE_HOME=str(home))
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["labram", "cbramod", "eegpt", "biot"])
def test_recipe_runs_from_hub_weights_and_reports_coverage_and_montage(name, hub, home, tmp_path):
    source = push_weights(name, tmp_path / "weights")
    done = train(home, tmp_path / "runs", f"model={name}", f"init_from={source}",
                 *TINY_OVERRIDES[name])  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert f"weight coverage of braindecode {SAVED[name][0]} from {source}:" in log
    assert "(100% of the model's tensors outside the new head), 0 missing" in log
    assert f"montage of braindecode {SAVED[name][0]}:" in log
    (run,) = (tmp_path / "runs" / "seizure").iterdir()
    coverage = json.loads((run / "weight_coverage.json").read_text())
    montage = json.loads((run / "montage_report.json").read_text())
    assert coverage["share_matched"] == 1.0 and coverage["source"] == source
    assert montage["resampled"] is True and montage["sfreq"] == {"data": 128.0,
                                                                 "model": SAVED[name][3]}  # fmt: skip
    assert not montage["channels"]["missing"] and not montage["channels"]["zeroed"]
    if name == "biot":  # the double banana is derived from the simulated 10-20 channels
        assert montage["channels"]["matched"] == list(DOUBLE_BANANA)
    else:  # bad channels of the simulated recordings are interpolated, and said so
        assert montage["channels"]["interpolated"] and "interpolated in" in log


@pytest.mark.slow
def test_data_in_other_units_are_refused_before_training(hub, home, tmp_path):
    units = train(home, tmp_path / "runs", "model=labram", *TINY_OVERRIDES["labram"],
                  "preprocess.scaling.method=robust_zscore")  # fmt: skip
    assert units.returncode != 0
    assert "pretrained on inputs in uV/100, but the data are scaled to normalised" in units.stderr
    assert "preprocess.scaling.method=fixed preprocess.scaling.scale_uv=100" in units.stderr
    assert not (tmp_path / "runs" / "seizure").exists()  # nothing left of the refused run


def test_channels_zeroed_in_some_recordings_are_refused_unless_allowed(tmp_path):
    qc = {"recordings": [
        {"recording": "rec-1", "interpolated": ["O2"], "masked": [], "missing_channels": []},
        {"recording": "rec-2", "interpolated": [], "masked": ["P8"], "missing_channels": ["T7"]},
    ]}  # fmt: skip
    (tmp_path / "qc.json").write_text(json.dumps(qc))
    scaling = {"method": "fixed", "scale_uv": 100.0}

    def model(allow: bool):
        return MODELS.build("cbramod", n_chans=19, n_outputs=2, n_times=512, sfreq=128.0,
                            chs_info=named_chs(19), input_units="uV/100",
                            allow_missing_channels=allow, **TINY["cbramod"])  # fmt: skip

    with pytest.raises(ChannelError, match=r"missing or masked .*P8 in rec-2; T7 in rec-2"):
        record_input_report(model(False), scaling=scaling, qc_report=tmp_path / "qc.json",
                            run_dir=tmp_path)  # fmt: skip
    report = record_input_report(model(True), scaling=scaling, qc_report=tmp_path / "qc.json",
                                 run_dir=tmp_path)  # fmt: skip
    assert report["channels"]["interpolated"] == {"O2": ["rec-1"]}
    assert report["channels"]["zeroed"] == {"P8": ["rec-2"], "T7": ["rec-2"]}
    saved = json.loads((tmp_path / "montage_report.json").read_text())
    assert saved["channels"]["zeroed"] == report["channels"]["zeroed"]
    other = MODELS.build("dual_branch_conformer", n_chans=19, n_outputs=2, n_times=512,
                         sfreq=128.0, size="tiny")  # fmt: skip
    assert record_input_report(other, scaling=None, qc_report=None, run_dir=tmp_path) is None


def test_frozen_strategy_trains_only_braindecode_s_own_head(tmp_path):
    import braindecode.models as zoo

    saved = tmp_path / "w"
    torch.manual_seed(0)
    zoo.BIOT(n_chans=19, n_outputs=3, n_times=512, sfreq=128.0, chs_info=named_chs(19),
             embed_dim=16, num_heads=2, num_layers=1).save_pretrained(str(saved))  # fmt: skip
    task = SeizureTask(
        n_chans=19, n_times=512, sfreq=128.0, ch_names=[c["ch_name"] for c in named_chs(19)],
        model={"_target_": "biot", "model_sfreq": 128.0, "embed_dim": 16, "num_heads": 2,
               "num_layers": 1},
    )  # fmt: skip
    initialise(task, read_braindecode_source(saved), strategy="frozen")
    trainable = [n for n, p in task.encoder.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("net.final_layer.") for n in trainable)


def test_the_zeroed_channel_hint_offers_interpolation_only_where_it_can_run(tmp_path):
    # bipolar pairs and channels without a 10-05 position are never interpolated
    # (artifacts.interpolate_bad_channels): the hint must not send the user there for them
    def refusal(names, zeroed):
        (tmp_path / "qc.json").write_text(json.dumps({"recordings": [
            {"recording": "rec-1", "interpolated": [], "masked": zeroed, "missing_channels": []},
        ]}))  # fmt: skip
        model = MODELS.build("cbramod", n_chans=len(names), n_outputs=2, n_times=512,
                             sfreq=128.0, chs_info=named_chs(len(names), tuple(names)),
                             input_units="normalised", channels=None, **TINY["cbramod"])  # fmt: skip
        with pytest.raises(ChannelError) as err:
            record_input_report(model, scaling={"method": "robust_zscore"},
                                qc_report=tmp_path / "qc.json", run_dir=tmp_path)  # fmt: skip
        return str(err.value)

    bipolar = refusal(list(DOUBLE_BANANA), ["Fp1-F7"])
    assert "bad_channels=interpolate" not in bipolar
    assert "Fp1-F7 cannot be interpolated" in bipolar
    assert "preprocess.channels.target=szcore_19" in bipolar
    unnamed = refusal(["Channel 1", "Channel 2", "Channel 3", "Channel 5"], ["Channel 5"])
    assert "bad_channels=interpolate" not in unnamed and "Channel 5 cannot be" in unnamed
    referential = refusal(["C3", "Cz", "C4", "P3", "P4"], ["C4"])
    assert "preprocess.artifacts.bad_channels=interpolate (for C4)" in referential
    assert "cannot be interpolated" not in referential
