"""Artifact checks and the QC report, against hand-made corruptions of real recordings.

Each corrupted file is a real recording (eegmmidb S001R04, CHB-MIT chb01_03 crop) read with
MNE, damaged in one known way, written back as EDF+ and read again through the normal
reader, so that the QC report must name exactly what was done to it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import mne
import numpy as np
import pytest

from neurodecode.data.artifacts import (
    RecordingQC,
    build_report,
    format_summary,
    plateau_mask,
    welch_psd,
    write_report,
)
from neurodecode.data.io import read_recording
from neurodecode.data.preprocess import load_preprocess_config
from neurodecode.data.transform import transform_recording
from neurodecode.errors import PreprocessingError
from tests.conftest import require_shared

EEGMMIDB = "mirror/eegmmidb/S001/S001R04.edf"
CHBMIT = "excerpts/chbmit/chb01_03_seizure_crop.edf"
LABELS = {"rest": 0, "imagined_left_fist": 1, "imagined_right_fist": 2}
CLIP_SPAN = (30.0, 40.0)


def corrupt(source: Path, target: Path, damage) -> Path:
    """Copy a real EDF with ``damage(data_in_volts, raw)`` applied, as EDF+."""
    raw = mne.io.read_raw_edf(source, preload=True, verbose="error")
    data = raw.get_data()
    damage(data, raw)
    raw._data[:] = data
    target.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(target, raw, fmt="edf", overwrite=True, verbose="error")
    return target


def index(raw, name: str) -> int:
    return raw.ch_names.index(name)


@pytest.fixture(scope="module")
def damaged_eegmmidb(tmp_path_factory) -> Path:
    """S001R04 with C3 flat, Cz clipped for 10 s, and 60 Hz mains on O1, Oz, O2."""

    def damage(data, raw):
        sfreq = raw.info["sfreq"]
        t = np.arange(data.shape[1]) / sfreq
        data[index(raw, "C3..")] = 0.0
        a, b = (int(s * sfreq) for s in CLIP_SPAN)
        cz = data[index(raw, "Cz..")]
        low, high = np.percentile(cz[a:b], [25, 75])
        cz[a:b] = np.clip(cz[a:b], low, high)  # saturation: flat tops at both rails
        for name in ("O1..", "Oz..", "O2.."):
            data[index(raw, name)] += 40e-6 * np.sin(2 * np.pi * 60 * t)

    folder = tmp_path_factory.mktemp("damaged")
    return corrupt(require_shared(EEGMMIDB), folder / "S001R04.edf", damage)


@pytest.fixture(scope="module")
def mains_50hz(tmp_path_factory) -> Path:
    """S001R04 with 50 Hz mains on every channel (a European recording site)."""

    def damage(data, raw):
        t = np.arange(data.shape[1]) / raw.info["sfreq"]
        data += 30e-6 * np.sin(2 * np.pi * 50 * t)

    folder = tmp_path_factory.mktemp("mains")
    return corrupt(require_shared(EEGMMIDB), folder / "S001R04.edf", damage)


def run_qc(path: Path, config_name: str, overrides=(), labels=LABELS, **read):
    config = load_preprocess_config(config_name, list(overrides))
    qc = RecordingQC(recording=path.stem, source=str(path))
    shard = transform_recording(read_recording(path, **read), config, labels, qc)
    return shard, qc


def test_plateau_mask_finds_runs():
    x = np.array([[1.0, 2, 2, 2, 3, 4, 4, 5, 5, 5, 5]])
    assert plateau_mask(x, 3).astype(int).tolist() == [[0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1]]


def test_qc_names_flat_clipped_and_line_noise(damaged_eegmmidb, tmp_path):
    shard, qc = run_qc(damaged_eegmmidb, "eegmmidb")
    assert qc.status == "ok"
    bad = qc.bad_channels
    assert bad["C3.."][0].startswith("flat: robust std 0 µV")
    for name in ("O1..", "Oz..", "O2.."):
        assert any(r.startswith("line_noise: 60 Hz peak") for r in bad[name]), bad.get(name)
    assert "Cz.." not in bad  # clipped for 10 of 125 s: the windows go, not the channel
    assert {"C3..", "O1..", "Oz..", "O2.."} <= set(qc.interpolated)
    assert shard.ch_mask.all() and not qc.masked  # interpolated channels carry data again
    assert qc.line_noise_db["60"] < 6  # the other 61 channels are clean: no global peak
    # Every event window overlapping the clipped 30-40 s span is rejected as clipping.
    assert qc.windows_rejected.get("clipping", 0) >= 2
    kept = shard.table
    assert not ((kept["start_s"] < CLIP_SPAN[1]) & (kept["end_s"] > CLIP_SPAN[0] + 0.5)).any()
    assert qc.windows_kept == len(kept) == qc.windows_total - sum(qc.windows_rejected.values())

    report = build_report([qc], dataset="damaged")
    write_report(tmp_path / "qc.json", report)
    saved = json.loads((tmp_path / "qc.json").read_text())
    assert saved["summary"]["bad_channels"]["flat"] == 1
    assert saved["summary"]["windows_rejected"]["clipping"] == qc.windows_rejected["clipping"]
    text = format_summary(saved)
    assert "clipping" in text and "C3.. (flat: robust std" in text


def test_50hz_mains_is_detected_and_notched(mains_50hz):
    shard, qc = run_qc(mains_50hz, "motor_imagery", ["bandpass.h_freq=null", "clip=null"])
    assert qc.notch_freq == 50.0 and qc.line_noise_db["50"] > 20
    assert not any("line_noise" in r for v in qc.bad_channels.values() for r in v)  # all alike
    from scipy import signal as sps

    f, psd = sps.welch(shard.x.transpose(1, 0, 2).reshape(64, -1), fs=128.0, nperseg=256)
    peak = psd[:, np.abs(f - 50) <= 0.5].mean(axis=1)
    floor = np.median(psd[:, (np.abs(f - 50) > 2) & (np.abs(f - 50) < 6)], axis=1)
    assert np.median(peak / floor) < 3  # the 30 µV mains peak is gone


def test_real_eegmmidb_zero_padding_is_rejected_as_dropout():
    """eegmmidb files end with 0.5 s of zeros on every channel: windows reaching it go."""
    path = require_shared(EEGMMIDB)
    shard, qc = run_qc(path, "default", ["windows.stride_s=1.0", "windows.length_s=4.0"], {})
    assert qc.windows_rejected == {"dropout": 1}
    assert shard.table["end_s"].max() == 124.0


def test_bipolar_flat_channel_is_masked_not_interpolated(tmp_path):
    def damage(data, raw):
        data[index(raw, "F3-C3")] = 0.0

    path = corrupt(require_shared(CHBMIT), tmp_path / "chb01_03_seizure_crop.edf", damage)
    shard, qc = run_qc(
        path, "chbmit", labels={"background": 0, "seizure": 1}, annotation_format="file"
    )
    assert list(qc.bad_channels) == ["F3-C3"] and qc.masked == ["F3-C3"]
    assert not qc.interpolated
    k = shard.ch_names.index("F3-C3")
    assert not shard.ch_mask[k] and not shard.x[:, k].any()
    assert shard.ch_mask.sum() == 17


def test_all_channels_bad_fails_with_reasons():
    recording = read_recording(require_shared(EEGMMIDB))
    flat = dataclasses.replace(recording, signal=np.zeros_like(recording.signal))
    config = load_preprocess_config("eegmmidb")
    qc = RecordingQC(recording="flat", source="flat.edf")
    with pytest.raises(
        PreprocessingError, match=r"all 64 channels are bad \(flat: Fc5\., .* and 58 more\)"
    ):
        transform_recording(flat, config, LABELS, qc)


def test_real_chbmit_crops_line_noise_and_ictal_amplitude():
    """Real CHB-MIT: 60 Hz mains is found; ictal windows exceed default limits, not seizure's."""
    labels = {"background": 0, "seizure": 1}
    background = require_shared("excerpts/chbmit/chb01_03_background_crop.edf")
    _, qc = run_qc(background, "chbmit", ["notch.line_freq=auto"], labels, annotation_format="file")
    assert qc.notch_freq == 60.0 and qc.line_noise_db["60"] > 10 > qc.line_noise_db["50"]
    assert not qc.bad_channels and not qc.windows_rejected
    seizure = require_shared(CHBMIT)
    _, strict = run_qc(
        seizure, "chbmit", ["artifacts.windows.max_ptp_uv=800"], labels, annotation_format="file"
    )
    assert strict.windows_rejected.get("peak_to_peak", 0) >= 3
    _, loose = run_qc(seizure, "chbmit", [], labels, annotation_format="file")
    assert not loose.windows_rejected and loose.windows_kept == loose.windows_total


@pytest.mark.parametrize(
    ("dtype", "sfreq", "nperseg"), [(np.float32, 256.0, 512), (np.float64, 100.5, 201)]
)
def test_welch_psd_matches_scipy(dtype, sfreq, nperseg):
    from scipy.signal import welch

    x = (np.random.default_rng(0).standard_normal((3, 4001)) * 10 + 5).astype(dtype)
    f, psd = welch(x, fs=sfreq, nperseg=nperseg, axis=1)
    f_ours, psd_ours = welch_psd(x, sfreq, nperseg)
    assert psd_ours.dtype == psd.dtype
    np.testing.assert_allclose(f_ours, f)
    np.testing.assert_allclose(psd_ours, psd, rtol=1e-4 if dtype == np.float32 else 1e-10)


def test_plateau_mask_matches_run_lengths():
    x = np.round(np.random.default_rng(0).standard_normal((3, 500)) * 0.4)
    x[1, :7] = 2.0  # a run at the start, one at the end
    x[2, -9:] = -2.0
    for min_run in (3, 5):
        expected = np.zeros(x.shape, dtype=bool)
        for c, row in enumerate(x):
            start = 0
            for i in range(1, len(row) + 1):
                if i == len(row) or row[i] != row[start]:
                    expected[c, start:i] = i - start >= min_run
                    start = i
        np.testing.assert_array_equal(plateau_mask(x, min_run), expected)
