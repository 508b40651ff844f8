"""A run that fails before training leaves no run folder behind; a folder with anything of
value in it is never removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurodecode import train
from neurodecode.errors import CheckpointError, DownloadError
from neurodecode.registry import TASKS

SEIZURE = ["recipe=seizure", "data=simulated"]


def _hydra_stub(run_dir: Path) -> Path:
    """What Hydra writes before the run starts: its config folder and its log file."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run_dir / "train.log").write_text("")
    return run_dir


def _fail_data_preparation(cfg, monkeypatch) -> None:
    def offline(cls, cfg, run_dir):
        (run_dir / "manifest.yaml").write_text("written during preparation\n")
        raise DownloadError("the server cannot be reached", path="https://example.org/x.edf")

    monkeypatch.setattr(TASKS.get(cfg.task.module._target_), "prepare", classmethod(offline))


def test_a_bad_init_from_leaves_no_run_folder(tmp_path):
    run_dir = _hydra_stub(tmp_path / "runs" / "seizure" / "2026-01-01_00-00-00")
    cfg = train.compose([*SEIZURE, f"init_from={tmp_path / 'absent'}"])
    with pytest.raises(CheckpointError, match="no such folder"):
        train.run(cfg, run_dir, recipe="seizure")
    assert not run_dir.exists()


def test_data_that_cannot_be_prepared_leave_no_run_folder(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    _fail_data_preparation(train.compose(SEIZURE), monkeypatch)
    with pytest.raises(DownloadError):
        train.run_recipe(SEIZURE, run_dir=run_dir)  # writes .hydra/ first, like Hydra
    assert not run_dir.exists()


def test_a_folder_holding_other_files_is_kept(tmp_path, monkeypatch):
    run_dir = _hydra_stub(tmp_path / "mine")
    (run_dir / "notes.txt").write_text("keep me\n")
    cfg = train.compose(SEIZURE)
    _fail_data_preparation(cfg, monkeypatch)
    with pytest.raises(DownloadError):
        train.run(cfg, run_dir, recipe="seizure")
    assert (run_dir / "notes.txt").read_text() == "keep me\n"


def test_the_command_line_leaves_no_run_folder(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "neurodecode.train", *SEIZURE, f"runs_dir={tmp_path / 'runs'}",
         f"init_from={tmp_path / 'absent'}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert str(tmp_path / "absent") in done.stderr
    assert not (tmp_path / "runs" / "seizure").exists()  # an empty recipe folder neither
