"""Live-stream units: declared units converted to volts through the file readers' table, and
a stream whose units are unknown or missing refused with a way out (``units=``)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodecode.data.io import VOLTS_PER_UNIT
from neurodecode.errors import ConfigError, RecordingError
from neurodecode.predict.stream import channel_scales

NAMES = ["Fp1", "Fp2", "C3", "C4"]


def test_declared_units_in_any_spelling_become_volts():
    declared = ["microvolts", "uV", " µV ", "-6"]  # "-6": mne-lsl's power-of-ten form
    np.testing.assert_allclose(channel_scales("EEG", NAMES, declared), [1e-6] * 4, rtol=1e-6)
    scales = channel_scales("EEG", NAMES, ["V", "mV", "millivolts", "nV"])
    np.testing.assert_allclose(scales, [1.0, 1e-3, 1e-3, 1e-9], rtol=1e-6)
    assert scales.dtype == np.float32 and scales.shape == (4,)
    assert VOLTS_PER_UNIT["microvolts"] == VOLTS_PER_UNIT["uv"]  # one table for files and LSL
    singular = channel_scales("EEG", NAMES, ["volt", "millivolt", "microvolt", "nanovolt"])
    np.testing.assert_allclose(singular, [1.0, 1e-3, 1e-6, 1e-9], rtol=1e-6)


def test_unknown_or_missing_units_are_refused_naming_stream_channels_and_units():
    with pytest.raises(RecordingError) as caught:
        channel_scales("Amp-1", NAMES, ["counts", "uV", None, "counts"])
    err = caught.value
    assert err.path == "LSL stream 'Amp-1'"
    assert "Fp1, C4 declare 'counts'" in err.reason and "C3 declares none" in err.reason
    assert "Fp2" not in err.reason
    assert "units='uV'" in err.hint and "microvolts" in err.hint


@pytest.mark.parametrize("declared", [None, [], ["uV", "uV"], ["", "", "", ""]])
def test_a_stream_declaring_no_units_is_not_read_as_volts(declared):
    with pytest.raises(RecordingError, match="cannot be converted to volts"):
        channel_scales("EEG", NAMES, declared)


def test_units_override_declares_all_or_some_channels():
    scales = channel_scales("EEG", NAMES, None, units="uV")
    np.testing.assert_allclose(scales, [1e-6] * 4, rtol=1e-6)
    scales = channel_scales("EEG", NAMES, ["V", "counts", "V", "V"], units={"Fp2": "mV"})
    np.testing.assert_allclose(scales, [1.0, 1e-3, 1.0, 1.0], rtol=1e-6)


def test_invalid_overrides_are_config_errors():
    with pytest.raises(ConfigError, match=r"unknown voltage unit\(s\) \['counts'\]"):
        channel_scales("EEG", NAMES, ["uV"] * 4, units="counts")
    with pytest.raises(ConfigError, match=r"channel\(s\) \['Cz'\]"):
        channel_scales("EEG", NAMES, ["uV"] * 4, units={"Cz": "uV"})
    with pytest.raises(ConfigError, match="unknown voltage unit"):
        channel_scales("EEG", NAMES, None, units="400")  # not a plausible power of ten
