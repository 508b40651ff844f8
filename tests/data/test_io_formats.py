"""Issue 16: channel types from names where the file says nothing (finding 3), formats MNE
reads through the generic path, and EDF headers declaring -1 or 0 data records (finding 6)."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neurodecode.data.__main__ import main
from neurodecode.data.io import read_channels, read_recording
from neurodecode.data.montage import channel_type
from neurodecode.errors import RecordingError
from tests.conftest import require_shared

MIXED = {
    "EEG Fp1-REF": "eeg",
    "EEG Cz-REF": "eeg",
    "EEG O2-REF": "eeg",
    "T3": "eeg",
    "EEG EKG1-REF": "ecg",
    "EMG Chin": "emg",
    "Resp Thorax": "resp",
    "Abdomen": "resp",
    "SpO2": "bio",
    "LOC": "eog",
    "DC01": "misc",
}


def write_edf(path: Path, names: list[str], seconds: int = 4, sfreq: float = 128.0) -> Path:
    """An EDF written by MNE (edfio): every channel typed EEG, as EDF readers give them."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((len(names), int(seconds * sfreq))) * 20e-6
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error")
    mne.export.export_raw(path, raw, fmt="edf", physical_range=(-5e-4, 5e-4), verbose="error")
    return path


def test_non_eeg_channels_of_an_edf_get_their_types(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "psg.edf", list(MIXED))
    assert mne.io.read_raw_edf(path, verbose="error").get_channel_types() == ["eeg"] * len(MIXED)
    recording = read_recording(path)
    assert dict(zip(recording.ch_names, recording.ch_types, strict=True)) == MIXED
    assert read_channels(path) == (list(MIXED), list(MIXED.values()))
    assert recording.ch_units[:4] == ["V"] * 4 and recording.ch_units[8] == "as recorded"


def test_declared_types_are_kept() -> None:
    assert channel_type("ECG", "misc") == "misc"  # a type the file declared stays
    assert channel_type("Fp1") == "eeg" and channel_type("E12") == "eeg"  # EGI's net
    assert channel_type("STI 014") == "stim" and channel_type("Status") == "stim"
    assert channel_type("SaO2") == "bio" and channel_type("EEG ROC-REF") == "eog"


# ---------------------------------------------------------------------------- EDF records


def _patch_records(path: Path, value: int) -> None:
    data = bytearray(path.read_bytes())
    data[236:244] = str(value).ljust(8).encode()
    path.write_bytes(bytes(data))


def test_edf_declaring_unknown_records_is_measured_by_size(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_edf(tmp_path / "live.edf", ["Cz", "Pz"], seconds=4)
    expected = read_recording(path)
    _patch_records(path, -1)
    with path.open("ab") as file:
        file.write(b"\0" * 100)  # a record cut short by the end of the recording
    with caplog.at_level(logging.INFO, logger="neurodecode.data"):
        recording = read_recording(path)
    assert recording.n_times == expected.n_times
    np.testing.assert_array_equal(recording.signal, expected.signal)
    assert "-1 data records" in caplog.text and "100 bytes beyond" in caplog.text


def test_edf_declaring_zero_records_is_refused(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "empty.edf", ["Cz", "Pz"])
    _patch_records(path, 0)
    with pytest.raises(RecordingError, match="declares no data records") as err:
        read_recording(path)
    assert str(path) in str(err.value)


def test_edf_records_beyond_the_declared_ones_are_ignored(tmp_path: Path) -> None:
    """The header's count decides, as for a file shorter than it (refused as truncated)."""
    path = write_edf(tmp_path / "long.edf", ["Cz", "Pz"], seconds=4)
    expected = read_recording(path)
    assert expected.duration == pytest.approx(4.0)
    _patch_records(path, 3)  # the file holds 4 one-second records
    recording = read_recording(path)
    assert recording.duration == pytest.approx(3.0)
    np.testing.assert_array_equal(recording.signal, expected.signal[:, : recording.n_times])


# ---------------------------------------------------------------------------- other formats


def write_persyst(folder: Path) -> Path:
    """A Persyst ``.lay`` + ``.dat`` pair (int16 samples, 1 µV per unit)."""
    lay = folder / "rec.lay"
    lay.write_text(
        "[FileInfo]\nFile=rec.dat\nFileType=Interleaved\nSamplingRate=256\nHeaderLength=0\n"
        "Calibration=1\nWaveformCount=3\nDataType=0\n[ChannelMap]\nFp1=1\nCz=2\nEKG=3\n"
        "[Patient]\nBirthDate=01/01/1990\nSex=M\nHand=R\nTestDate=01/02/2020\n"
        "TestTime=10:00:00\n[Comments]\n1.5,0,0,0,spike\n"
    )
    samples = (np.arange(3 * 512).reshape(512, 3) % 100 - 50).astype("<i2")
    samples.tofile(folder / "rec.dat")
    return lay


def test_a_format_outside_the_list_goes_through_mne(tmp_path: Path) -> None:
    recording = read_recording(write_persyst(tmp_path))
    assert recording.ch_names == ["FP1", "CZ", "EKG"]
    assert recording.ch_types == ["eeg", "eeg", "ecg"]
    assert (recording.sfreq, recording.n_times) == (256.0, 512)
    assert recording.signal[0, 0] == pytest.approx(-50e-6)
    assert recording.annotations["description"].tolist() == ["spike"]


def test_data_info_on_a_persyst_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["info", str(write_persyst(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "channels: 3 (2 eeg, 1 ecg)" in out and "V peak" in out


def test_meg_units_come_from_mne(capsys: pytest.CaptureFixture) -> None:
    path = require_shared("excerpts/meg/141027_cropped_90Hz_raw.fif")
    recording = read_recording(path)
    units = pd.Series(recording.ch_units).value_counts().to_dict()
    assert units == {"T/m": 204, "T": 102}
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert " T peak" in out and " T/m peak" in out


def test_egi_simple_binary_raw(tmp_path: Path) -> None:
    """EGI's ``.raw``, which ``mne.io.read_raw`` does not dispatch by itself."""
    n_chans, n_times = 4, 500
    header = struct.pack(">i", 2)  # version 2: continuous, int16 samples
    header += struct.pack(">hhhhhhi", 2020, 1, 2, 10, 0, 0, 0)  # start
    header += struct.pack(">hhhhh", 250, n_chans, 1, 16, 400)  # rate, channels, gain, bits, range
    header += struct.pack(">ih", n_times, 1) + b"STIM"  # samples, one event channel
    samples = np.zeros((n_times, n_chans + 1), ">i2")
    samples[:, :n_chans] = np.arange(n_times * n_chans).reshape(n_times, n_chans) % 50
    samples[100, n_chans] = 1
    (tmp_path / "net.raw").write_bytes(header + samples.tobytes())
    recording = read_recording(tmp_path / "net.raw")
    assert recording.ch_names == ["E1", "E2", "E3", "E4", "STIM"]
    assert recording.ch_types == ["eeg"] * 4 + ["stim"]
    assert (recording.sfreq, recording.n_times) == (250.0, n_times)
    assert recording.annotations["onset"].tolist() == [pytest.approx(0.4)]


def test_a_recording_folder_is_not_taken_for_a_bids_folder(tmp_path: Path) -> None:
    folder = tmp_path / "broken.ds"  # a CTF recording is a folder
    folder.mkdir()
    (folder / "broken.meg4").write_bytes(b"\0" * 64)
    with pytest.raises(RecordingError, match="MNE cannot read this file") as err:
        read_recording(folder)
    assert "broken.ds" in str(err.value)
