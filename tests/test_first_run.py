"""A newcomer's first run (issue 16, finding 8): failures that end in one paragraph a person
can act on, no traceback; a quiet console; the project's data found from any folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from neurodecode import train
from neurodecode.errors import NeurodecodeError
from neurodecode.hub import build_model, export_model
from neurodecode.resources import shared_data
from tests.conftest import REPO_ROOT, require_shared


def closed_port_url() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_offline(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``python <args>`` from ``tmp_path`` with an empty home and a mirror that refuses."""
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "NEURODECODE_HOME": str(tmp_path / "home"),
        "NEURODECODE_MIRROR": closed_port_url(),
        **env,
    }
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env=environment,
    )  # fmt: skip


def assert_one_paragraph(done: subprocess.CompletedProcess, *words: str) -> str:
    """The run failed with status 1 and one ``error:`` line on stderr naming ``words``."""
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("command", "dataset", "way"),
    [
        (["-m", "neurodecode.train", "recipe=seizure"], "'chbmit'", "data=simulated"),
        (["-m", "neurodecode", "train", "recipe=pretrain"], "'eegmmidb'",
         "data.datasets.eegmmidb.weight=0"),
    ],
)  # fmt: skip
def test_a_dataset_that_cannot_be_downloaded_ends_in_one_paragraph(command, dataset, way, tmp_path):
    done = run_offline([*command, f"runs_dir={tmp_path / 'runs'}"], tmp_path)
    assert_one_paragraph(done, dataset, "GB", "could not be obtained", way,
                         "NEURODECODE_MIRROR=", "NEURODECODE_HOME=")  # fmt: skip


LIGHTNING_NOISE = ["💡", "Tip:", "GPU available", "TPU available", "limit_train_batches",
                   "limit_val_batches", "limit_test_batches", "v_num", "oard",
                   "to estimate number of stepping batches"]  # fmt: skip


def test_a_tiny_run_prints_none_of_lightnings_noise(tmp_path):
    done = run_offline(
        ["-m", "neurodecode.train", "recipe=seizure", "data=simulated", "model.size=tiny",
         "trainer.max_epochs=1", "preprocess.windows.stride_s=4", f"runs_dir={tmp_path}"],
        tmp_path,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "run folder:" in output and "Traceback" not in output
    assert [noise for noise in LIGHTNING_NOISE if noise in output] == []


@pytest.mark.parametrize(
    ("setting", "way"),
    [("HF_ENDPOINT", "set HF_ENDPOINT"), ("HF_HUB_OFFLINE", "unset HF_HUB_OFFLINE")],
)
def test_a_push_that_cannot_reach_the_hub_ends_in_one_paragraph(setting, way, tmp_path):
    model = build_model("dual_branch_conformer", n_chans=4, n_outputs=2, n_times=256,
                        sfreq=128.0, size="tiny")  # fmt: skip
    folder = export_model(model, tmp_path / "export", ch_names=["Fp1", "Fp2", "C3", "C4"])
    hub = {"HF_ENDPOINT": closed_port_url(), "HF_HUB_OFFLINE": "0"}
    if setting == "HF_HUB_OFFLINE":
        hub = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "https://huggingface.co"}
    done = run_offline(
        ["-m", "neurodecode", "hub", "push", f"run={folder}", "repo_id=lab/offline"],
        tmp_path,
        **hub,
    )
    assert_one_paragraph(done, f"cannot reach the Hugging Face Hub at {hub['HF_ENDPOINT']}", way,
                         "neurodecode hub export")  # fmt: skip


def test_the_reference_data_is_found_from_any_folder(tmp_path, monkeypatch):
    require_shared("mirror")
    ask = [sys.executable, "-c", "from neurodecode.resources import shared_data; "
           "print(shared_data('mirror/eegmmidb'))"]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    environment.pop("NEURODECODE_SHARED_DATA", None)
    done = subprocess.run(ask, capture_output=True, text=True, cwd=tmp_path, env=environment)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == REPO_ROOT.parent / "shared" / "data" / "mirror" / "eegmmidb"
    monkeypatch.setenv("NEURODECODE_SHARED_DATA", str(tmp_path))
    (tmp_path / "excerpts").mkdir()
    assert shared_data("excerpts") == tmp_path / "excerpts"
    with pytest.raises(NeurodecodeError, match="NEURODECODE_SHARED_DATA"):
        shared_data("mirror")


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "neurodecode.train", "recipe=seizure", "trainer.max_epoch=1"],
        ["-m", "neurodecode", "train", "recipe=seizure", "trainer.max_epoch=1"],
        ["-m", "neurodecode.train", "recipe=seizure", "data=simulated", "+trainer.max_epoch=1"],
        ["-m", "neurodecode", "train", "recipe=seizure", "data=simulated", "+trainer.max_epoch=1"],
    ],
)
def test_a_mistyped_trainer_key_ends_in_one_did_you_mean_paragraph(command, tmp_path):
    done = run_offline([*command, f"runs_dir={tmp_path}"], tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr and "TypeError" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "trainer.max_epoch" in lines[0]
    assert "did you mean 'max_epochs'" in lines[0]


def test_every_override_of_the_configuration_syntax_table_composes():
    text = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = text.split("### Override syntax (Hydra)", 1)[1].split("\n\n", 2)[1]
    written = [row.split("`")[1] for row in table.splitlines() if row.startswith("| `")]
    assert "+data.prepare.subjects=[1,2,3]" in written
    for override in written:
        if "--multirun" not in override:  # a sweep: one config per value
            train.compose(["recipe=seizure", override])
