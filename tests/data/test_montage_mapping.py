"""data.montage.map_channels: a model's channels from the data's, with what was matched,
derived or missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurodecode.data.montage import DOUBLE_BANANA, SZCORE_19, harmonise, map_channels
from neurodecode.data.recording import Recording
from neurodecode.errors import ChannelError


def test_spellings_aliases_and_bipolar_pairs_are_matched_derived_or_missing():
    mapping = map_channels(["EEG FP1-REF", "EEG F7-REF", "T3", "Cz"], ["Fp1-F7", "Fp1", "T7", "O1"])
    assert mapping.status == ["derived", "matched", "matched", "missing"]
    assert mapping.names("missing") == ["O1"]
    assert mapping.formula[0] == "EEG FP1-REF - EEG F7-REF"
    np.testing.assert_array_equal(
        mapping.matrix,
        [[1, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]],
    )
    report = mapping.to_dict()
    assert report["derived"] == ["Fp1-F7"] and report["missing"] == ["O1"]
    assert report["derivations"] == {"Fp1-F7": "EEG FP1-REF - EEG F7-REF"}


def test_the_matrix_derives_what_harmonise_derives():
    rng = np.random.default_rng(0)
    names = list(SZCORE_19)
    signal = rng.normal(size=(len(names), 50)).astype(np.float32)
    recording = Recording(signal, 100.0, names, ["eeg"] * 19, source=Path("sim.edf"))
    derived, mask = harmonise(recording, "double_banana")
    mapping = map_channels(names, "double_banana")
    assert mask.all() and mapping.names("derived") == list(DOUBLE_BANANA)
    np.testing.assert_allclose(mapping.matrix @ signal, derived.signal, atol=1e-6)


def test_identity_when_the_data_are_the_model_channels():
    assert map_channels(list(SZCORE_19), "szcore_19").is_identity
    assert not map_channels(list(reversed(SZCORE_19)), "szcore_19").is_identity


def test_bipolar_data_cannot_give_referential_channels():
    mapping = map_channels(list(DOUBLE_BANANA), ["Fp1", "Fp1-T7"])
    assert mapping.status == ["missing", "derived"]  # a chain of pairs gives Fp1 - T7
    np.testing.assert_array_equal(mapping.matrix[1, :2], [1, 1])


def test_unknown_model_channels_are_refused():
    with pytest.raises(ChannelError, match="Xx9"):
        map_channels(["Fp1"], ["Fp1", "Xx9"])
