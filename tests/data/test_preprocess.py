"""Preprocessing steps on real recordings: config, resample, filters, reference, scaling."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import signal as sps

from neurodecode.data.artifacts import RecordingQC
from neurodecode.data.io import read_recording
from neurodecode.data.preprocess import (
    _crop_in_place,
    _pad_reflect,
    bandpass_notch,
    check_band,
    harmonise_channels,
    line_frequencies,
    load_preprocess_config,
    preprocess_recording,
    rereference,
    resample,
    scale_signal,
)
from neurodecode.errors import ConfigError, PreprocessingError
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def eegmmidb_r04():
    return read_recording(require_shared("mirror/eegmmidb/S001/S001R04.edf"))


def band_power(x: np.ndarray, sfreq: float, f0: float, half_width: float = 0.5) -> np.ndarray:
    f, psd = sps.welch(x, fs=sfreq, nperseg=int(4 * sfreq), axis=-1)
    return psd[..., np.abs(f - f0) <= half_width].mean(axis=-1)


# ---------------------------------------------------------------------------- config


def test_config_files_load_and_chain():
    default = load_preprocess_config()
    assert default.resample == 128.0 and default.windows.mode == "sliding"
    seizure = load_preprocess_config("seizure")
    assert seizure.channels.target == "double_banana" and seizure.reference is None
    assert seizure.bandpass.l_freq == default.bandpass.l_freq  # inherited from default.yaml
    mi = load_preprocess_config("motor_imagery", ["bandpass.h_freq=30", "windows.tmax=3"])
    assert mi.windows.mode == "events" and mi.bandpass.h_freq == 30 and mi.windows.tmax == 3


def test_config_refuses_unknown_keys_and_values():
    with pytest.raises(ConfigError, match=r"default\.yaml.*bandpas"):
        load_preprocess_config("default", ["bandpas.h_freq=30"])
    with pytest.raises(ConfigError, match="scaling.method"):
        load_preprocess_config("default", ["scaling.method=minmax"])
    with pytest.raises(ConfigError, match="no preprocessing config named 'nope'.*default"):
        load_preprocess_config("nope")
    with pytest.raises(ConfigError, match="l_freq must be below"):
        load_preprocess_config("default", ["bandpass.l_freq=50"])


# ---------------------------------------------------------------------------- steps


def test_resample_keeps_duration_and_content(eegmmidb_r04):
    out = resample(eegmmidb_r04, 128.0)
    assert out.sfreq == 128.0 and out.signal.dtype == np.float32 and out.signal.flags.c_contiguous
    assert out.n_times == 16000 and out.duration == eegmmidb_r04.duration
    before = band_power(eegmmidb_r04.signal[:4], 160.0, 10.0)
    after = band_power(out.signal[:4], 128.0, 10.0)
    np.testing.assert_allclose(after, before, rtol=0.05)  # alpha band power kept
    odd = resample(eegmmidb_r04, 173.61)  # no small fraction: the FFT path
    assert odd.n_times == round(eegmmidb_r04.n_times * 173.61 / 160)


def test_bandpass_notch_removes_line_noise_and_keeps_alpha(eegmmidb_r04):
    t = np.arange(eegmmidb_r04.n_times) / eegmmidb_r04.sfreq
    noisy = eegmmidb_r04.signal[:8] + np.float32(50e-6) * np.sin(
        2 * np.pi * 60 * t, dtype=np.float32
    )
    rec = dataclasses.replace(
        eegmmidb_r04,
        signal=noisy.astype(np.float32),
        ch_names=eegmmidb_r04.ch_names[:8],
        ch_types=eegmmidb_r04.ch_types[:8],
        ch_pos=None,
    )
    out = bandpass_notch(rec, 0.5, 70.0, line_frequencies(60.0, rec.sfreq, True, 1.0), 1.0)
    assert out.signal.shape == rec.signal.shape
    suppression = band_power(out.signal, 160.0, 60.0) / band_power(noisy, 160.0, 60.0)
    assert np.all(suppression < 1e-3)  # > 30 dB
    alpha = band_power(out.signal, 160.0, 10.0) / band_power(eegmmidb_r04.signal[:8], 160.0, 10.0)
    np.testing.assert_allclose(alpha, 1.0, rtol=0.1)
    offset = dataclasses.replace(rec, signal=rec.signal + np.float32(1e-3))  # 1 mV DC
    shifted = (
        bandpass_notch(offset, 0.5, 70.0, [], 1.0).signal
        - bandpass_notch(rec, 0.5, 70.0, [], 1.0).signal
    )
    assert np.abs(shifted[:, 1000:-1000]).max() < 1e-5  # the high-pass removes it (> 40 dB)


@pytest.mark.parametrize("n_times", [1, 2, 7, 50])
@pytest.mark.parametrize(("left", "right"), [(0, 0), (0, 3), (5, 0), (6, 120)])
def test_pad_reflect_is_odd_reflection_then_end_value(n_times, left, right):
    data = np.random.default_rng(n_times).standard_normal((3, n_times)).astype(np.float32)
    out = _pad_reflect(data, left, right)
    assert out.shape == (3, left + n_times + right) and out.dtype == np.float32
    k_left, k_right = min(left, n_times - 1), min(right, n_times - 1)
    odd = np.pad(data, ((0, 0), (k_left, k_right)), mode="reflect", reflect_type="odd")
    np.testing.assert_allclose(out[:, left - k_left : left + n_times + k_right], odd, atol=1e-5)
    assert (out[:, : left - k_left] == out[:, left - k_left : left - k_left + 1]).all()
    assert (out[:, left + n_times + k_right :] == out[:, -1:]).all()


def test_crop_in_place_is_a_contiguous_slice_of_the_same_buffer():
    data = np.arange(5 * 40, dtype=np.float32).reshape(5, 40)
    expected = data[:, 7:32].copy()
    out = _crop_in_place(data, 7, 25)
    assert out.flags.c_contiguous and np.shares_memory(out, data)
    np.testing.assert_array_equal(out, expected)
    data = np.arange(5 * 40, dtype=np.float32).reshape(5, 40)
    np.testing.assert_array_equal(_crop_in_place(data.copy(), 30, 25), data[:, 30:55])


def test_line_frequencies_stop_below_nyquist():
    assert line_frequencies(50, 256.0, True, 1.0) == [50.0, 100.0]
    assert line_frequencies(60, 128.0, True, 1.0) == [60.0]
    assert line_frequencies(60, 100.0, False, 1.0) == []
    assert line_frequencies(None, 256.0, True, 1.0) == []


def test_sampling_rate_below_band_edge_is_refused(eegmmidb_r04):
    with pytest.raises(PreprocessingError, match=r"h_freq=100.*Nyquist frequency 80 Hz"):
        check_band(eegmmidb_r04, 0.5, 100.0, None)
    with pytest.raises(PreprocessingError, match=r"Nyquist frequency 32 Hz of the resampled"):
        check_band(eegmmidb_r04, 0.5, 40.0, 64.0)


def test_average_reference_over_good_channels(eegmmidb_r04):
    good = np.ones(eegmmidb_r04.n_chans, bool)
    good[:2] = False
    out = rereference(eegmmidb_r04, "average", good)
    np.testing.assert_allclose(out.signal[good].mean(axis=0), 0, atol=1e-9)
    assert not out.signal[~good].any()
    single = dataclasses.replace(eegmmidb_r04, signal=eegmmidb_r04.signal[:1])
    with pytest.raises(PreprocessingError, match="at least 2 good channels"):
        rereference(single, "average", np.ones(1, bool))


def test_scaling(eegmmidb_r04):
    uv = eegmmidb_r04.signal[:6] * 1e6
    good = np.array([True] * 5 + [False])
    z = scale_signal(uv, good, "robust_zscore", "channel", 100.0)
    np.testing.assert_allclose(np.median(z[good], axis=1), 0, atol=1e-3)
    q75, q25 = np.percentile(z[good], [75, 25], axis=1)
    np.testing.assert_allclose(q75 - q25, 1.349, rtol=1e-3)
    assert not z[~good].any()
    fixed = scale_signal(uv, good, "fixed", "channel", 100.0)
    np.testing.assert_allclose(fixed[good], uv[good] / 100, rtol=1e-5)


def test_harmonise_to_szcore_19_with_mask(eegmmidb_r04):
    out, mask = harmonise_channels(eegmmidb_r04, "szcore_19")
    assert out.n_chans == 19 and mask.all()  # eegmmidb has every 10-20 electrode
    names = ["Cz", "C3", "FT9"]  # FT9 is not an eegmmidb electrode
    out, mask = harmonise_channels(eegmmidb_r04, names)
    assert out.ch_names == names and mask.tolist() == [True, True, False]


def test_preprocess_recording_output(eegmmidb_r04):
    config = load_preprocess_config("default", ["channels.target=szcore_19"])
    qc = RecordingQC("S001R04", "S001R04.edf")
    prepared = preprocess_recording(eegmmidb_r04, config, qc)
    rec = prepared.recording
    assert rec.sfreq == 128.0 and rec.n_chans == 19 and prepared.ch_mask.all()
    assert 5 < np.std(rec.signal) < 200  # µV
    assert qc.line_noise_db.keys() == {"50", "60"}


@pytest.mark.parametrize("target", [None, "szcore_19"])
def test_preprocess_recording_leaves_its_input_untouched(eegmmidb_r04, target):
    """The µV conversion works in place only on copies made inside the chain."""
    before = eegmmidb_r04.signal.copy()
    config = load_preprocess_config("default", ["artifacts.enabled=false"])
    prepared = preprocess_recording(eegmmidb_r04, config, RecordingQC("r", "r.edf"), target)
    np.testing.assert_array_equal(eegmmidb_r04.signal, before)
    assert not np.may_share_memory(prepared.recording.signal, eegmmidb_r04.signal)


def test_hydra_composes_the_configs_as_the_loader_does():
    """`configs/preprocess` is also a Hydra group (train recipes): both must agree."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from neurodecode.data.preprocess import preprocess_config_dir

    names = sorted(p.stem for p in preprocess_config_dir().glob("*.yaml"))
    assert {"default", "seizure", "motor_imagery"} <= set(names)
    with initialize_config_dir(config_dir=str(preprocess_config_dir().parent), version_base=None):
        for name in names:
            composed = compose(config_name=f"preprocess/{name}").preprocess
            expected = OmegaConf.to_container(load_preprocess_config(name))
            assert OmegaConf.to_container(composed) == expected, name
