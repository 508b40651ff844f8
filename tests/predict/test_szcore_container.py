"""The SzCORE benchmark's conventions end to end: a recording in SzCORE's input format (EDF,
19 electrodes of the 10-20 system against their common average, 256 Hz) predicted by the
container entry point (INPUT/OUTPUT from the environment), the events file readable by
SzCORE's own reader, and scored by ``neurodecode score``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mne
import pandas as pd
import pytest

from neurodecode.data.annotations import SZCORE_COLUMNS
from tests.conftest import require_shared

# SzCORE's channel order (epilepsybenchmarks.com/contribute); eegmmidb spells T3/T5/T4/T6
# by their 10-10 names
SZCORE_ORDER = ["Fp1", "F3", "C3", "P3", "O1", "F7", "T3", "T5", "Fz", "Cz", "Pz",
                "Fp2", "F4", "C4", "P4", "O2", "F8", "T4", "T6"]  # fmt: skip
TEN_TEN = {"T3": "T7", "T5": "P7", "T4": "T8", "T6": "P8"}


@pytest.fixture(scope="module")
def szcore_input(tmp_path_factory) -> Path:
    """Real EEG (eegmmidb S001 run 1, 61 s) rewritten the way SzCORE serves recordings."""
    raw = mne.io.read_raw_edf(require_shared("mirror/eegmmidb/S001/S001R01.edf"),
                              preload=True, verbose="error")  # fmt: skip
    raw.rename_channels(lambda name: name.strip(".").upper())
    raw.pick([TEN_TEN.get(name, name).upper() for name in SZCORE_ORDER])
    raw.set_eeg_reference("average", verbose="error").resample(256.0, verbose="error")
    raw.rename_channels(dict(zip(raw.ch_names, [f"{n}-Avg" for n in SZCORE_ORDER], strict=True)))
    raw.set_annotations(None)
    path = tmp_path_factory.mktemp("data") / "sub-01" / "ses-01" / "eeg"
    path.mkdir(parents=True)
    edf = path / "sub-01_ses-01_task-szMonitoring_run-00_eeg.edf"
    mne.export.export_raw(edf, raw, fmt="edf", verbose="error")
    return edf


def _neurodecode(*words: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": os.getcwd(), **env}
    return subprocess.run([sys.executable, "-m", "neurodecode", *words], env=environment,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_container_entry_point_writes_szcore_events(szcore_input, exported_detector, tmp_path):
    data = szcore_input.parents[3]
    relative = "sub-01/ses-01/eeg/sub-01_ses-01_task-szMonitoring_run-00_events.tsv"
    env = {"INPUT": str(szcore_input.relative_to(data)), "OUTPUT": relative,
           "NEURODECODE_SZCORE_DATA": str(data), "NEURODECODE_SZCORE_OUTPUT": str(tmp_path),
           "NEURODECODE_CHECKPOINT": str(exported_detector)}  # fmt: skip
    done = _neurodecode("szcore", env=env)
    assert done.returncode == 0, done.stderr
    events = tmp_path / relative
    assert events.read_text().splitlines()[0].split("\t") == list(SZCORE_COLUMNS)
    table = pd.read_csv(events, sep="\t")
    assert table["recordingDuration"].iloc[0] == pytest.approx(61.0, abs=0.01)
    # SzCORE's own reader (epilepsy2bids) accepts the file
    annotations = pytest.importorskip("epilepsy2bids.annotations")
    assert annotations.Annotations.loadTsv(events).events[0]["recordingDuration"] == (
        pytest.approx(61.0, abs=0.01))  # fmt: skip
    # scored against itself by `neurodecode score`: every detection is a true one
    scored = _neurodecode("score", f"reference={tmp_path}", f"hypothesis={tmp_path}", env={})
    assert scored.returncode == 0, scored.stderr
    pooled = json.loads(scored.stdout)["event"]["pooled"]
    assert pooled["fp"] == 0 and pooled["tp"] == pooled["ref_true"]


def test_container_without_input_says_what_is_missing(tmp_path):
    done = _neurodecode("szcore", env={"INPUT": "", "OUTPUT": "x.tsv"})
    assert done.returncode == 2
    assert "the environment variable INPUT is not set" in done.stderr
