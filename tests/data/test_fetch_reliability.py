"""Concurrent fetches, per-recording download failures, resumed transfers, and pool workers
that end with their parent (issue 16, findings 1, 5 and 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.network


def _command(*words: str, home: Path) -> subprocess.Popen:
    """Start ``python -m neurodecode.data <words>`` on ``home`` (this checkout imported)."""
    env = {**os.environ, "NEURODECODE_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("NEURODECODE_MIRROR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "neurodecode.data", *words],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_fetches_on_a_fresh_home_both_get_the_whole_dataset(
    tmp_path: Path, mirror_url: str
) -> None:
    home = tmp_path / "home"
    processes = [_command("fetch", "bonn", f"mirror={mirror_url}", home=home) for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert "500 recording(s) ready" in out
    for letter in "ZONFS":
        segments = [p for p in (home / "bonn" / letter).iterdir() if p.suffix in (".txt", ".TXT")]
        assert len(segments) == 100, letter
    assert not list((home / "bonn").glob(".*extracting*"))
