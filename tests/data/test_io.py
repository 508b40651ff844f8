"""read_recording on every real recording in ../shared/data, other formats, and bad input."""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neurodecode.data.__main__ import main
from neurodecode.data.annotations import read_wfdb_annotations, write_szcore_events
from neurodecode.data.io import BONN_N_SAMPLES, BONN_SFREQ, infer_ids, read_recording, suspicious
from neurodecode.data.recording import Recording
from neurodecode.errors import AnnotationError, ChannelError, RecordingError
from tests.conftest import require_shared

EEGMMIDB_RUNS = [1, *range(3, 15)]
TASK_LABELS = {
    3: {"left_fist", "right_fist"},
    4: {"imagined_left_fist", "imagined_right_fist"},
    5: {"both_fists", "both_feet"},
    6: {"imagined_both_fists", "imagined_both_feet"},
}


def eegmmidb(run: int) -> Path:
    return require_shared(f"mirror/eegmmidb/S001/S001R{run:02d}.edf")


# ---------------------------------------------------------------------------- real data


@pytest.mark.parametrize("run", EEGMMIDB_RUNS)
def test_eegmmidb_runs(run: int) -> None:
    """64 ch, 160 Hz, 61 s (R01) / 125 s; events match the PhysioNet .event file."""
    recording = read_recording(eegmmidb(run))
    assert (recording.n_chans, recording.sfreq) == (64, 160.0)
    assert recording.duration == (61.0 if run == 1 else 125.0)
    assert recording.signal.dtype == np.float32
    assert 1e-5 < np.abs(recording.signal).max() < 1e-2  # volts, not µV
    assert (recording.subject, recording.session, recording.run) == ("001", None, f"{run:02d}")
    assert np.isfinite(recording.ch_pos).all()  # every eegmmidb name is a 10-05 electrode
    events = recording.annotations
    if run == 1:
        assert events["description"].tolist() == ["baseline_eyes_open"]
        return
    counts = events["description"].value_counts()
    assert counts["rest"] == 15 and counts.drop("rest").sum() == 15
    assert set(counts.drop("rest").index) == TASK_LABELS[(run - 3) % 4 + 3]
    # The .edf.event file published alongside holds the same T0/T1/T2 events.
    table, fs = read_wfdb_annotations(f"{eegmmidb(run)}.event")
    assert fs == 160
    np.testing.assert_allclose(events["onset"], table["sample"] / fs)
    codes = table["aux_note"].str.split().str[0]
    assert (codes == "T0").sum() == counts["rest"]


@pytest.mark.parametrize("kind", ["seizure", "background"])
def test_chbmit_crops(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """23 channels in the file (T8-P8 twice, identical: kept once), 256 Hz, 41 s."""
    path = require_shared(f"excerpts/chbmit/chb01_03_{kind}_crop.edf")
    assert len(mne.io.read_raw_edf(path, verbose="error").ch_names) == 23
    with caplog.at_level(logging.WARNING):
        recording = read_recording(path)
    assert "'T8-P8' appears more than once" in caplog.text
    assert recording.n_chans == 22 and recording.ch_names.count("T8-P8") == 1
    assert recording.ch_names[:2] == ["FP1-F7", "F7-T7"]
    assert (recording.sfreq, recording.duration) == (256.0, 41.0)
    # a renamed crop outside a chbXX/ folder: no CHB-MIT file name by the manifest's pattern
    assert (recording.subject, recording.run) == (None, None)
    assert recording.annotations.empty
    assert recording.meas_date.strftime("%H:%M:%S") == {"seizure": "14:32:59"}.get(kind, "13:43:04")


def test_graz_gdf_scaled_to_volts_and_cues() -> None:
    """GDF 1.25 stores µV (spelt \\xb5V): MNE reads volts; we rescale by 1e-6."""
    path = require_shared("excerpts/biosig/graz_mi_sample.gdf")
    recording = read_recording(path)
    assert (recording.n_chans, recording.sfreq) == (4, 256.0)
    assert recording.duration == pytest.approx(380, abs=1)
    raw_peak = np.abs(mne.io.read_raw_gdf(path, verbose="error").get_data()).max()
    assert raw_peak > 1.0  # MNE's unscaled reading: tens of "volts"
    assert np.abs(recording.signal).max() == pytest.approx(raw_peak * 1e-6, rel=1e-5)
    counts = recording.annotations["description"].value_counts()
    assert counts["left_hand"] == 20 and counts["right_hand"] == 20
    assert counts["trial_start"] == 40


def test_graz_gdf_raw_codes_on_request() -> None:
    path = require_shared("excerpts/biosig/graz_mi_sample.gdf")
    codes = read_recording(path, annotation_format="file").annotations["description"]
    assert (codes == "769").sum() == 20 and (codes == "770").sum() == 20


def test_meg_fif_sample_audvis() -> None:
    recording = read_recording(require_shared("excerpts/meg/sample_audvis_trunc_raw_sss.fif"))
    types = pd.Series(recording.ch_types).value_counts().to_dict()
    assert types == {"grad": 204, "mag": 102, "eeg": 60, "stim": 9, "eog": 1}
    assert recording.sfreq == pytest.approx(300.3, abs=0.01)
    assert recording.duration == pytest.approx(1.0, abs=0.01)
    meg = [i for i, t in enumerate(recording.ch_types) if t in ("grad", "mag")]
    assert np.isfinite(recording.ch_pos[meg]).all()  # sensor positions, head frame
    assert np.abs(recording.ch_pos[meg]).max() < 0.2  # metres


def test_meg_fif_cropped_90hz() -> None:
    recording = read_recording(require_shared("excerpts/meg/141027_cropped_90Hz_raw.fif"))
    assert recording.n_chans == 306
    assert set(recording.ch_types) == {"grad", "mag"}
    assert (recording.sfreq, recording.duration) == (90.0, 10.0)


@pytest.fixture(scope="module")
def bonn_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """All 500 Bonn segments, extracted from the five archives into a temporary folder."""
    root = tmp_path_factory.mktemp("bonn")
    for letter in "ZONFS":
        with zipfile.ZipFile(require_shared(f"mirror/bonn/{letter}.zip")) as archive:
            archive.extractall(root / letter)
    return sorted(p for p in root.rglob("*") if p.suffix.lower() == ".txt")


def test_bonn_segments_all(bonn_files: list[Path]) -> None:
    assert len(bonn_files) == 500
    assert any(p.suffix == ".TXT" for p in bonn_files)  # set N
    peaks = []
    for path in bonn_files:
        recording = read_recording(path)
        assert recording.signal.shape == (1, BONN_N_SAMPLES)
        assert recording.sfreq == BONN_SFREQ
        peaks.append(np.abs(recording.signal).max())
    assert recording.duration == pytest.approx(23.6, abs=0.01)
    # one A/D unit read as 1 µV: peaks of tens to a few thousand µV
    assert 1e-5 < min(peaks) and max(peaks) < 1e-2


# ---------------------------------------------------------------------------- other formats


@pytest.fixture(scope="module")
def motor_run(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return read_recording(eegmmidb(4))


@pytest.mark.parametrize(("suffix", "fmt"), [(".vhdr", "brainvision"), (".set", "eeglab")])
def test_exported_formats_round_trip(motor_run: Recording, tmp_path: Path, suffix, fmt) -> None:
    path = tmp_path / f"exported{suffix}"
    mne.export.export_raw(path, motor_run.to_raw(), fmt=fmt, verbose="error")
    back = read_recording(path)
    assert back.ch_names == motor_run.ch_names
    assert back.sfreq == motor_run.sfreq and back.n_times == motor_run.n_times
    np.testing.assert_allclose(back.signal, motor_run.signal, atol=1e-7)
    assert len(back.annotations) == len(motor_run.annotations)


def _write_bdf(path: Path, signal_uv: np.ndarray, sfreq: int, names: list[str]) -> None:
    """A minimal BDF (24-bit EDF) writer: 1-s records, 1 µV per digital unit."""
    n_chans, n_times = signal_uv.shape

    def field(values, width):
        return b"".join(str(v).ljust(width)[:width].encode() for v in values)

    header = (
        b"\xffBIOSEMI"
        + field(["X"], 80) + field(["X"], 80)
        + b"01.01.2400.00.00" + field([256 * (n_chans + 1)], 8) + field(["24BIT"], 44)
        + field([n_times // sfreq], 8) + field([1], 8) + field([n_chans], 4)
        + field(names, 16) + field([""] * n_chans, 80) + field(["uV"] * n_chans, 8)
        + field([-8388608] * n_chans, 8) + field([8388607] * n_chans, 8)
        + field([-8388608] * n_chans, 8) + field([8388607] * n_chans, 8)
        + field([""] * n_chans, 80) + field([sfreq] * n_chans, 8) + field([""] * n_chans, 32)
    )  # fmt: skip
    records = signal_uv.reshape(n_chans, -1, sfreq).transpose(1, 0, 2).astype("<i4")
    data = records.view(np.uint8).reshape(*records.shape, 4)[..., :3].tobytes()
    path.write_bytes(header + data)


def test_bdf(tmp_path: Path) -> None:
    signal = np.arange(2 * 512).reshape(2, 512) - 300
    _write_bdf(tmp_path / "tiny.bdf", signal, 256, ["Cz", "Pz"])
    recording = read_recording(tmp_path / "tiny.bdf")
    assert recording.ch_names == ["Cz", "Pz"] and recording.sfreq == 256.0
    np.testing.assert_allclose(recording.signal, signal * 1e-6, rtol=1e-5)


def test_placeholder_channels_stay_apart(tmp_path: Path) -> None:
    """CHB-MIT's unused ``-`` slots may differ; they are kept under MNE's unique names."""
    signal = np.arange(3 * 256).reshape(3, 256)
    _write_bdf(tmp_path / "slots.bdf", signal, 256, ["-", "-", "Cz"])
    assert read_recording(tmp_path / "slots.bdf").ch_names == ["--0", "--1", "Cz"]


def test_bids_file_and_folder(tmp_path: Path) -> None:
    folder = tmp_path / "sub-007" / "ses-02" / "eeg"
    folder.mkdir(parents=True)
    data = folder / "sub-007_ses-02_task-szMonitoring_run-05_eeg.edf"
    shutil.copy(eegmmidb(3), data)
    events = pd.DataFrame({"onset": [10.0], "duration": [20.5], "eventType": ["sz_foc"]})
    write_szcore_events(
        folder / "sub-007_ses-02_task-szMonitoring_run-05_events.tsv",
        events,
        recording_duration=125.0,
    )
    for target in (data, folder):
        recording = read_recording(target)
        assert (recording.subject, recording.session, recording.run) == ("007", "02", "05")
        assert recording.annotations[["onset", "duration", "description"]].values.tolist() == [
            [10.0, 20.5, "sz_foc"]
        ]
    assert read_recording(data, subject="x").subject == "x"


def test_annotation_files_found_by_convention(tmp_path: Path) -> None:
    """A CHB-MIT summary, a .seizures file or a TUSZ csv_bi next to the recording is used."""
    crop = require_shared("excerpts/chbmit/chb01_03_seizure_crop.edf")
    shutil.copy(require_shared("mirror/chbmit/chb01/chb01-summary.txt"), tmp_path)
    shutil.copy(crop, tmp_path / "chb01_01.edf")  # listed, no seizures
    assert read_recording(tmp_path / "chb01_01.edf").annotations.empty
    shutil.copy(crop, tmp_path / "chb01_03.edf")  # listed, seizure at 2996 s: past the end
    with pytest.raises(AnnotationError, match="chb01-summary.txt.*'sz' at 2996"):
        read_recording(tmp_path / "chb01_03.edf")
    shutil.copy(require_shared("mirror/chbmit/chb01/chb01_03.edf.seizures"), tmp_path)
    with pytest.raises(AnnotationError, match=r"chb01_03.edf.seizures.*'sz' at 2996"):
        read_recording(tmp_path / "chb01_03.edf")  # the .seizures file is preferred
    shutil.copy(crop, tmp_path / "aaaaaaac_s001_t000.edf")
    (tmp_path / "aaaaaaac_s001_t000.csv_bi").write_text(
        "# version = csv_v1.0.0\nchannel,start_time,stop_time,label,confidence\n"
        "TERM,0.0,1.0,bckg,1.0\nTERM,1.0,41.0,seiz,1.0\n"
    )
    events = read_recording(tmp_path / "aaaaaaac_s001_t000.edf").annotations
    assert events[["onset", "duration", "description"]].values.tolist() == [[1.0, 40.0, "sz"]]


def test_infer_ids() -> None:
    # from the manifests' structure patterns, matched against the path's last components
    assert infer_ids("chb15/chb15_06.edf") == {"subject": "15", "session": None, "run": "06"}
    assert infer_ids("/data/chb17/chb17b_63.edf")["session"] == "b"
    assert infer_ids("S109/S109R14.edf") == {"subject": "109", "session": None, "run": "14"}
    assert infer_ids("Z/Z001.txt")["subject"] == "Z001"
    # a file outside its dataset's folders: the pattern's last component alone
    assert infer_ids("chb15_06.edf") == {"subject": None, "session": None, "run": "06"}
    assert infer_ids("S001R04.edf") == {"subject": None, "session": None, "run": "04"}
    assert infer_ids("notes.edf") == {"subject": None, "session": None, "run": None}
    assert infer_ids("sub-01_ses-02_task-x_run-03_eeg.edf") == {
        "subject": "01",
        "session": "02",
        "run": "03",
    }


# ---------------------------------------------------------------------------- bad input


def test_truncated_fault_file_is_refused() -> None:
    path = require_shared("faults/S001R02_truncated.edf")
    with pytest.raises(RecordingError, match=r"truncated.*'T0'.*60\.20 s.*60\.00 s") as err:
        read_recording(path)
    assert "S001R02_truncated.edf" in str(err.value)


def test_file_shorter_than_its_header_says(tmp_path: Path) -> None:
    path = tmp_path / "S001R01.edf"
    path.write_bytes(eegmmidb(1).read_bytes()[:-30_000])
    with pytest.raises(RecordingError, match=r"declares 61 data records.*59 complete") as err:
        read_recording(path)
    assert str(path) in str(err.value)


def test_nan_samples(tmp_path: Path) -> None:
    data = np.zeros((2, 500))
    data[1, 250] = np.nan
    raw = mne.io.RawArray(data, mne.create_info(["Cz", "Pz"], 250.0, "eeg"), verbose="error")
    raw.save(tmp_path / "nan_raw.fif", verbose="error")
    with pytest.raises(RecordingError, match=r"1 NaN/inf samples in channel\(s\) Pz.*1\.000 s"):
        read_recording(tmp_path / "nan_raw.fif")


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "x.xyz").write_text("0")
    with pytest.raises(RecordingError, match="unknown recording format '.xyz'"):
        read_recording(tmp_path / "x.xyz")
    with pytest.raises(RecordingError, match="not found"):
        read_recording(tmp_path / "absent.edf")
    (tmp_path / "bad.txt").write_text("1\nabc\n")
    with pytest.raises(RecordingError, match="one number per line"):
        read_recording(tmp_path / "bad.txt")


@pytest.mark.parametrize("name", ["junk.edf", "junk.gdf", "junk_raw.fif", "junk.vhdr"])
def test_garbage_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(RecordingError) as err:
        read_recording(path)
    assert str(path) in str(err.value)


def test_duplicate_names_with_different_samples(tmp_path: Path) -> None:
    """Change one sample of CHB-MIT's second T8-P8 copy: the two can no longer be merged."""
    source = require_shared("excerpts/chbmit/chb01_03_seizure_crop.edf")
    data = bytearray(source.read_bytes())
    header_bytes = int(data[184:192])
    # record 0 of channel 23 (index 22): 22 channels × 256 samples × 2 bytes in
    data[header_bytes + 22 * 256 * 2] ^= 0x01
    path = tmp_path / "chb01_03.edf"
    path.write_bytes(bytes(data))
    with pytest.raises(ChannelError, match="both named 'T8-P8' but hold different samples"):
        read_recording(path)


def test_annotation_files_that_do_not_match(tmp_path: Path) -> None:
    summary = require_shared("mirror/chbmit/chb01/chb01-summary.txt")
    crop = require_shared("excerpts/chbmit/chb01_03_seizure_crop.edf")
    with pytest.raises(AnnotationError, match="chb01_03_seizure_crop.edf is not listed") as err:
        read_recording(crop, annotation_format="chbmit_summary", annotation_path=summary)
    assert "chb01-summary.txt" in str(err.value)
    renamed = tmp_path / "chb01_03.edf"  # the summary's seizure (2996 s) is past its end
    shutil.copy(crop, renamed)
    with pytest.raises(AnnotationError, match=r"'sz' at 2996.*chb01_03.edf \(41.000 s") as err:
        read_recording(renamed, annotation_format="chbmit_summary", annotation_path=summary)
    assert "chb01-summary.txt" in str(err.value)
    with pytest.raises(AnnotationError, match="unknown annotation format 'nope'"):
        read_recording(crop, annotation_format="nope")


# ---------------------------------------------------------------------------- info command


def test_info_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(eegmmidb(4))]) == 0
    out = capsys.readouterr().out
    assert "sampling rate: 160 Hz" in out and "duration: 125.000 s" in out
    assert "channels: 64 (64 eeg)" in out
    assert "imagined_left_fist: 8" in out and "rest: 15" in out
    crop = require_shared("excerpts/chbmit/chb01_03_seizure_crop.edf")
    assert main(["info", str(crop), "annotation_format=file"]) == 0
    report = capsys.readouterr().out.split("suspicious:")[1]
    assert "'T8-P8' appears more than once" in report
    assert main(["info", str(require_shared("faults/S001R02_truncated.edf"))]) == 1
    assert "truncated" in capsys.readouterr().err


def test_suspicious_findings() -> None:
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 1e-5, (3, 1000)).astype(np.float32)
    signal[0] = 0.0
    signal[1] = np.clip(signal[1], -5e-6, 5e-6)
    recording = Recording(signal, 100.0, ["Cz", "C3", "Xyz"], ["eeg"] * 3, Path("x.fif"))
    findings = "\n".join(suspicious(recording))
    assert "flat channels (constant): Cz" in findings
    assert "possibly clipped: C3" in findings
    assert "non-10-05 names: Xyz" in findings
