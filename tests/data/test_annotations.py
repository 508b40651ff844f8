"""Annotation parsers on the real CHB-MIT metadata, plus TUSZ, SzCORE and eegmmidb rules."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neurodecode.data.annotations import (
    eegmmidb_events,
    eegmmidb_label_map,
    read_bids_events,
    read_chbmit_summary,
    read_siena_seizure_list,
    read_szcore_events,
    read_tusz_csv,
    read_wfdb_annotations,
    read_wfdb_seizures,
    write_szcore_events,
)
from neurodecode.data.recording import Recording
from neurodecode.errors import AnnotationError
from tests.conftest import require_shared

CHBMIT = "mirror/chbmit"


def test_chb01_summary() -> None:
    files = read_chbmit_summary(require_shared(f"{CHBMIT}/chb01/chb01-summary.txt"))
    entry = files["chb01_03.edf"]
    assert entry.seizures == [(2996.0, 3036.0)]
    assert (entry.start_time, entry.end_time) == ("13:43:04", "14:43:04")
    assert len(entry.channels) == 23 and entry.channels.count("T8-P8") == 2
    assert files["chb01_01.edf"].n_seizures == 0 and files["chb01_01.edf"].seizures == []
    assert sum(f.n_seizures for f in files.values()) == 7  # chb01 has 7 seizures


def test_chb15_layout() -> None:
    """``Seizure 1 Start Time`` lines, and ``Channels changed:`` blocks."""
    files = read_chbmit_summary(require_shared(f"{CHBMIT}/chb15/chb15-summary.txt"))
    assert files["chb15_06.edf"].seizures == [(272.0, 397.0)]
    assert len(files["chb15_01.edf"].channels) == 31
    assert len(files["chb15_02.edf"].channels) == 38  # after "Channels changed:"
    assert files["chb15_02.edf"].channels[12] == "PZ-OZ"
    multi = [f for f in files.values() if f.n_seizures > 1]
    assert multi and all(len(f.seizures) == f.n_seizures for f in multi)


@pytest.mark.parametrize(
    ("case", "name"),
    [("chb01", "chb01_03"), ("chb01", "chb01_04"), ("chb01", "chb01_15"), ("chb15", "chb15_06")],
)
def test_seizures_files_agree_with_summary(case: str, name: str) -> None:
    summary = read_chbmit_summary(require_shared(f"{CHBMIT}/{case}/{case}-summary.txt"))
    events = read_wfdb_seizures(require_shared(f"{CHBMIT}/{case}/{name}.edf.seizures"))
    assert [(o, o + d) for o, d in zip(events["onset"], events["duration"], strict=True)] == (
        summary[f"{name}.edf"].seizures
    )
    assert set(events["description"]) == {"sz"}


def test_own_mit_reader_matches_wfdb() -> None:
    wfdb = pytest.importorskip("wfdb")
    path = require_shared(f"{CHBMIT}/chb01/chb01_03.edf.seizures")
    table, fs = read_wfdb_annotations(path)
    reference = wfdb.rdann(str(path.with_suffix("")), "seizures")
    assert fs == reference.fs == 256
    assert table["sample"].tolist() == reference.sample.tolist()
    assert table["symbol"].tolist() == reference.symbol


def test_malformed_summary(tmp_path: Path) -> None:
    path = tmp_path / "chb99-summary.txt"
    path.write_text(
        "File Name: chb99_01.edf\nNumber of Seizures in File: 2\n"
        "Seizure 1 Start Time: 10 seconds\nSeizure 1 End Time: 20 seconds\n"
    )
    with pytest.raises(AnnotationError, match=r"chb99_01.edf: .* is 2 but 1 complete"):
        read_chbmit_summary(path)


def test_eegmmidb_run_meaning() -> None:
    assert eegmmidb_label_map(1) == {"T0": "baseline_eyes_open"}
    assert eegmmidb_label_map(2) == {"T0": "baseline_eyes_closed"}
    for run in (3, 7, 11):
        assert eegmmidb_label_map(run) == {"T0": "rest", "T1": "left_fist", "T2": "right_fist"}
    for run in (6, 10, 14):
        assert eegmmidb_label_map(run)["T2"] == "imagined_both_feet"
    assert eegmmidb_label_map(8)["T1"] == "imagined_left_fist"
    assert eegmmidb_label_map(13)["T2"] == "both_feet"
    with pytest.raises(AnnotationError, match="runs 1–14, not run 15"):
        eegmmidb_label_map(15)


def test_eegmmidb_events_need_run_and_known_codes() -> None:
    own = pd.DataFrame({"onset": [0.0, 4.0], "duration": [4.0, 4.0], "description": ["T0", "T1"]})
    recording = Recording(np.zeros((1, 1600)), 160.0, ["Cz"], ["eeg"], Path("x.edf"), own)
    with pytest.raises(AnnotationError, match="need the run number"):
        eegmmidb_events(None, recording)
    recording.run = "01"
    with pytest.raises(AnnotationError, match=r"run 1 has no events \['T1'\]"):
        eegmmidb_events(None, recording)
    recording.run = "12"
    assert eegmmidb_events(None, recording)["description"].tolist() == [
        "rest",
        "imagined_left_fist",
    ]


def test_tusz_csv_and_csv_bi(tmp_path: Path) -> None:
    header = "# version = csv_v1.0.0\n# bname = aaaaaaac_s001_t000\n# duration = 300.00 secs\n#\n"
    (tmp_path / "r.csv_bi").write_text(
        header + "channel,start_time,stop_time,label,confidence\n"
        "TERM,0.0000,36.8868,bckg,1.0000\nTERM,36.8868,183.3055,seiz,1.0000\n"
        "TERM,183.3055,300.0000,bckg,1.0000\n"
    )
    bi = read_tusz_csv(tmp_path / "r.csv_bi")
    assert bi[["onset", "description"]].values.tolist() == [[36.8868, "sz"]]
    assert bi["duration"].iloc[0] == pytest.approx(146.4187)
    (tmp_path / "r.csv").write_text(
        header + "channel,start_time,stop_time,label,confidence\n"
        "FP1-F7,0.0000,36.8868,bckg,1.0000\nFP1-F7,36.8868,183.3055,cpsz,1.0000\n"
        "F7-T3,36.8868,183.3055,cpsz,1.0000\nF7-T3,200.0,210.0,fnsz,1.0000\n"
    )
    multi = read_tusz_csv(tmp_path / "r.csv")
    assert multi["description"].tolist() == ["sz_foc_ia", "sz_foc"]
    assert multi["channels"].tolist() == ["FP1-F7,F7-T3", "F7-T3"]
    (tmp_path / "bad.csv").write_text("channel,start_time,stop_time,label\nTERM,0,1,weird\n")
    with pytest.raises(AnnotationError, match=r"unknown TUSZ labels \['weird'\]"):
        read_tusz_csv(tmp_path / "bad.csv")


def test_szcore_round_trip(tmp_path: Path) -> None:
    events = pd.DataFrame(
        {
            "onset": [12.5, 300.0],
            "duration": [40.0, 12.25],
            "eventType": ["sz_foc_ia", "sz"],
            "confidence": [0.9, np.nan],
            "channels": ["Fp1,F7", ""],
        }
    )
    start = datetime(2024, 3, 1, 8, 30, 0)
    path = write_szcore_events(
        tmp_path / "sub-01_ses-01_task-szMonitoring_run-00_events.tsv",
        events,
        recording_duration=3600.0,
        date_time=start,
    )
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == [
        "onset", "duration", "eventType", "confidence", "channels", "dateTime",
        "recordingDuration",
    ]  # fmt: skip
    assert lines[2].split("\t") == [
        "300.00", "12.25", "sz", "n/a", "n/a", "2024-03-01 08:30:00", "3600.00",
    ]  # fmt: skip
    back = read_szcore_events(path)
    pd.testing.assert_frame_equal(
        back[["onset", "duration", "eventType", "confidence", "channels"]], events
    )
    assert (back["dateTime"] == pd.Timestamp(start)).all()
    assert (back["recordingDuration"] == 3600.0).all()
    assert not list(tmp_path.glob("*.partial"))


def test_szcore_no_events_is_one_background_row(tmp_path: Path) -> None:
    empty = pd.DataFrame({"onset": [], "duration": [], "eventType": []})
    path = write_szcore_events(tmp_path / "e_events.tsv", empty, recording_duration=600.0)
    back = read_szcore_events(path)
    assert back[["onset", "duration", "eventType"]].values.tolist() == [[0.0, 600.0, "bckg"]]
    assert read_bids_events(path).empty  # background is not an event of the recording


def test_bids_events_trial_type(tmp_path: Path) -> None:
    path = tmp_path / "sub-1_task-mi_events.tsv"
    path.write_text("onset\tduration\ttrial_type\n1.5\t4\tleft_hand\n7\tn/a\tright_hand\n")
    events = read_bids_events(path)
    assert events.values.tolist() == [[1.5, 4.0, "left_hand"], [7.0, 0.0, "right_hand"]]
    path.write_text("onset\tsample\n1.5\t3\n")
    with pytest.raises(AnnotationError, match="needs onset, duration"):
        read_bids_events(path)


def test_siena_seizure_list(tmp_path: Path) -> None:
    """The layout of Siena's Seizures-list-PNxx.txt (no Siena data in ../shared: synthetic)."""
    path = tmp_path / "Seizures-list-PN01.txt"
    path.write_text(
        "Seizures list PN01\n\nSeizure n 1\nFile name: PN01-1.edf\n"
        "Registration start time: 19.00.44\nRegistration end time: 07.38.04\n"
        "Start time: 21.51.02\nEnd time: 21.51.56\n\n"
        "Seizure n 2\nFile name: PN01-1.edf\nRegistration start time: 19.00.44\n"
        "Registration end time: 07.38.04\nSeizure start time: 07.28.29\n"
        "Seizure end time: 07.29.25\n"
    )
    seizures = read_siena_seizure_list(path)
    first = 2 * 3600 + 50 * 60 + 18  # 21:51:02 - 19:00:44
    after_midnight = (24 * 3600 - (19 * 3600 + 44)) + 7 * 3600 + 28 * 60 + 29
    assert seizures == {"PN01-1.edf": [(first, first + 54), (after_midnight, after_midnight + 56)]}
    path.write_text("Seizure n 1\nFile name: PN01-1.edf\nSeizure start time: 07.28.29\n")
    with pytest.raises(AnnotationError, match="block 1 lacks registration_start, seizure_end"):
        read_siena_seizure_list(path)
