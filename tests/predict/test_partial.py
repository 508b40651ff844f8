"""Partial predictions on a real recording: NaN samples cost only the windows holding them,
and a recording with unpredicted stretches is reported and exits with its own status."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurodecode.cli.options import PARTIAL
from neurodecode.data import io
from neurodecode.errors import RecordingError
from neurodecode.predict import load_detector, predict_recording
from neurodecode.predict.__main__ import main
from tests.conftest import require_shared

CROP = "excerpts/chbmit/chb01_03_seizure_crop.edf"
NAN_AT_S, NAN_SAMPLES, NAN_CHANNEL = 100.0, 5, 3


def _write_fif(path: Path, signal: np.ndarray, recording) -> Path:
    import mne

    info = mne.create_info(recording.ch_names, recording.sfreq, "eeg")
    raw = mne.io.RawArray(signal, info, verbose="error")
    raw.set_meas_date(recording.meas_date.replace(year=2026))  # FIF dates end in 2038
    raw.save(path, verbose="error")
    return path


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real CHB-MIT seizure crop tiled to 164 s (FIF keeps NaN, EDF cannot), clean and
    with 5 NaN samples at 100 s in one channel."""
    recording = io.read_recording(require_shared(CROP))
    signal = np.tile(recording.signal, 4).astype(np.float64)
    folder = tmp_path_factory.mktemp("partial")
    clean = _write_fif(folder / "clean_raw.fif", signal, recording)
    first = int(NAN_AT_S * recording.sfreq)
    signal[NAN_CHANNEL, first : first + NAN_SAMPLES] = np.nan
    bad = _write_fif(folder / "nan_raw.fif", signal, recording)
    return {"clean": clean, "nan": bad, "channel": recording.ch_names[NAN_CHANNEL]}


@pytest.fixture(scope="module")
def detector(exported_detector: Path):
    return load_detector(exported_detector)


def test_reader_places_nan_samples_in_the_file_not_in_the_read(recordings):
    reader = io.open_recording(recordings["nan"])
    sfreq = reader.header.sfreq
    with pytest.raises(RecordingError, match=r"5 NaN/inf samples .* \(first at 100\.000 s\)"):
        reader.read(int(60 * sfreq), int(120 * sfreq))
    assert np.isnan(reader.read(int(60 * sfreq), int(120 * sfreq), finite=False)).sum() == 5


@pytest.mark.parametrize("chunk_s", [60.0, 600.0], ids=["spans", "whole"])
def test_nan_samples_cost_only_the_windows_holding_them(detector, recordings, chunk_s):
    clean = predict_recording(recordings["clean"], detector, chunk_s=chunk_s, overlap=False)
    result = predict_recording(recordings["nan"], detector, chunk_s=chunk_s, overlap=False)
    window_s = detector.window_s
    holding = (result.start_s <= NAN_AT_S) & (result.start_s + window_s > NAN_AT_S)
    assert result.start_s[holding].tolist() == [98.0, 100.0]
    assert np.isnan(result.probabilities[holding]).all()
    assert np.isfinite(result.probabilities[~holding]).all()
    assert clean.status == "ok" and clean.qc["unscored"] == []
    assert result.status == "partial"
    assert result.qc["unscored"] == [[100.0, 102.0]]  # covered by windows 96 and 102 around it
    (bad,) = result.qc["bad_samples"]
    assert bad == {"start_s": NAN_AT_S, "stop_s": pytest.approx(NAN_AT_S + NAN_SAMPLES / 256, abs=1e-4),
                   "n_samples": NAN_SAMPLES, "channels": [recordings["channel"]]}  # fmt: skip
    # away from the bridged samples (beyond the filter's reach) nothing changed
    far = np.abs(result.start_s + window_s / 2 - NAN_AT_S) > 15
    np.testing.assert_allclose(result.probabilities[far], clean.probabilities[far], atol=2e-3)
    assert result.per_second["p_seizure"].isna().sum() == 2


def test_command_line_exits_partial_and_names_the_unpredicted_time(
    exported_detector, recordings, tmp_path, capsys
):
    words = [f"checkpoint={exported_detector}", f"output={tmp_path}"]
    assert main([*words, "figure=false", f"input={recordings['clean']}"]) == 0
    status = main([*words, f"input={recordings['nan']}"])
    out = capsys.readouterr().out
    assert status == PARTIAL, out
    assert "partial" in out and "not predicted: 100-102 s (5 NaN/inf sample(s) at 100.000 s" in out
    # the folder's index holds both inputs: the clean one ok, the other partial
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_partial"] == 1 and summary["n_ok"] == 1
    (entry,) = [e for e in summary["recordings"] if e["status"] == "partial"]
    assert entry["qc"]["unscored"] == [[100.0, 102.0]]
    report = Path(entry["outputs"]["report"]).read_text(encoding="utf-8")
    assert '<div class="warning" id="unscored"><strong>Not predicted:</strong> 100-102 s' in report


def test_a_channel_of_nan_throughout_fails_the_recording(detector, recordings, tmp_path):
    recording = io.read_recording(require_shared(CROP))
    signal = recording.signal.astype(np.float64)
    signal[0] = np.nan
    path = _write_fif(tmp_path / "dead_raw.fif", signal, recording)
    with pytest.raises(RecordingError, match="every window holds NaN/inf samples"):
        predict_recording(path, detector, overlap=False)
