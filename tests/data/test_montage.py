"""Channel names, positions, and derivations on real CHB-MIT and eegmmidb recordings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from neurodecode.data import montage
from neurodecode.data.io import read_recording
from neurodecode.data.recording import Recording
from neurodecode.errors import ChannelError
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def chbmit_crop() -> Recording:
    return read_recording(require_shared("excerpts/chbmit/chb01_03_seizure_crop.edf"))


@pytest.fixture(scope="module")
def eegmmidb() -> Recording:
    return read_recording(require_shared("mirror/eegmmidb/S001/S001R04.edf"))


def old_names(recording: Recording) -> Recording:
    """The same recording with 10-20 names (T3, T4, T5, T6) and TUH-style spelling."""
    rename = {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}
    stripped = [n.rstrip(".") for n in recording.ch_names]
    names = [rename.get(n, f"EEG {n.upper()}-REF") for n in stripped]
    assert sum(n in ("T3", "T4", "T5", "T6") for n in names) == 4
    return replace(recording, ch_names=names)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("T3", "T7"), ("t4", "T8"), ("T5", "P7"), ("T6", "P8"),
        ("EEG FP1-REF", "Fp1"), ("EEG T3-LE", "T7"), ("Fp1.", "Fp1"), ("Fcz.", "FCz"),
        ("T9..", "T9"), ("FC1-Ref", "FC1"), ("FP1-F7", "Fp1-F7"), ("FZ-CZ", "Fz-Cz"),
        ("T5-O1", "P7-O1"), ("EEG A1-REF", "A1"),
    ],
)  # fmt: skip
def test_canonical_names(name: str, canonical: str) -> None:
    assert montage.canonical_name(name) == canonical


@pytest.mark.parametrize("name", ["ECG", "-", "EEG EKG1-REF", "Fp1-Fp1", "PHOTIC-REF"])
def test_unknown_names(name: str) -> None:
    assert montage.try_canonical_name(name) is None
    with pytest.raises(ChannelError, match="unknown channel name"):
        montage.canonical_name(name)


def test_positions() -> None:
    pos = montage.channel_positions(["Fp1", "F7", "FP1-F7", "T3", "T7", "ECG"])
    np.testing.assert_allclose(pos[2], (pos[0] + pos[1]) / 2)
    np.testing.assert_array_equal(pos[3], pos[4])
    assert np.isnan(pos[5]).all()
    assert 0.05 < np.linalg.norm(pos[0]) < 0.15  # metres from the head centre
    t7, t8, fpz, oz, cz = montage.channel_positions(["T7", "T8", "Fpz", "Oz", "Cz"])
    assert t7[0] < 0 < t8[0] and oz[1] < 0 < fpz[1]  # head frame: x right, y front
    assert cz[2] > max(t7[2], fpz[2], oz[2])  # z up


def test_chbmit_crop_onto_double_banana(chbmit_crop: Recording) -> None:
    """The 18 pairs are CHB-MIT's first 18 channels; the duplicated T8-P8 appears once."""
    banana, mask = montage.harmonise(chbmit_crop, "double_banana")
    assert mask.all() and banana.ch_names == list(montage.DOUBLE_BANANA)
    np.testing.assert_array_equal(banana.signal, chbmit_crop.signal[:18])
    assert banana.ch_names.count("T8-P8") == 1
    assert np.isfinite(banana.ch_pos).all()


def test_duplicates_in_harmonise() -> None:
    """Channels naming the same electrode (T8-P8 twice, T3 and T7) merge when identical."""
    signal = np.arange(8.0).reshape(4, 2)
    same = Recording(
        signal[[0, 0, 1, 1]], 1.0, ["T8-P8", "T8-P8", "T3", "T7"], ["eeg"] * 4, Path("d.edf")
    )
    out, mask = montage.harmonise(same, ["T8-P8", "T7"])
    assert mask.all()
    np.testing.assert_array_equal(out.signal, signal[[0, 1]])
    different = replace(same, signal=signal)
    with pytest.raises(ChannelError, match=r"'T8-P8' and 'T8-P8' .* different") as err:
        montage.harmonise(different, ["T8-P8"])
    assert "d.edf" in str(err.value)


def test_double_banana_from_referential_eegmmidb(eegmmidb: Recording) -> None:
    banana, mask = montage.harmonise(eegmmidb, montage.DOUBLE_BANANA)
    assert mask.all() and banana.n_chans == 18
    index = {montage.canonical_name(n): i for i, n in enumerate(eegmmidb.ch_names)}
    for row, pair in enumerate(montage.DOUBLE_BANANA):
        first, second = pair.split("-")
        np.testing.assert_allclose(
            banana.signal[row], eegmmidb.signal[index[first]] - eegmmidb.signal[index[second]]
        )
    renamed, _ = montage.harmonise(old_names(eegmmidb), "double_banana")
    np.testing.assert_array_equal(renamed.signal, banana.signal)


def test_szcore_19_average_reference_from_eegmmidb(eegmmidb: Recording) -> None:
    szcore, mask = montage.harmonise(eegmmidb, "szcore_19")
    assert mask.all() and szcore.ch_names == list(montage.SZCORE_19)
    np.testing.assert_allclose(szcore.signal.mean(axis=0), 0.0, atol=1e-9)
    index = {montage.canonical_name(n): i for i, n in enumerate(eegmmidb.ch_names)}
    picked = eegmmidb.signal[[index[n] for n in montage.SZCORE_19]]
    np.testing.assert_allclose(szcore.signal, picked - picked.mean(axis=0), atol=1e-9)
    renamed, _ = montage.harmonise(old_names(eegmmidb), "szcore_19")
    np.testing.assert_array_equal(renamed.signal, szcore.signal)
    assert {"T7", "T8", "P7", "P8"} <= set(renamed.ch_names)


def test_missing_channels_are_masked(eegmmidb: Recording) -> None:
    keep = [i for i, n in enumerate(eegmmidb.ch_names) if n not in ("O1..", "Cz..")]
    partial = replace(
        eegmmidb,
        signal=eegmmidb.signal[keep],
        ch_names=[eegmmidb.ch_names[i] for i in keep],
        ch_types=[eegmmidb.ch_types[i] for i in keep],
        ch_pos=eegmmidb.ch_pos[keep],
    )
    banana, mask = montage.harmonise(partial, "double_banana")
    missing = {n for n, ok in zip(banana.ch_names, mask, strict=True) if not ok}
    assert missing == {"P7-O1", "P3-O1", "Fz-Cz", "Cz-Pz"}
    assert not banana.signal[~mask].any()
    szcore, mask = montage.harmonise(partial, "szcore_19")
    assert mask.sum() == 17  # the average is over the 17 present channels
    np.testing.assert_allclose(szcore.signal[mask].mean(axis=0), 0.0, atol=1e-9)
    assert not szcore.signal[~mask].any()


def test_chained_bipolar_derivation(chbmit_crop: Recording) -> None:
    """Fp1-T7 = (Fp1-F7) + (F7-T7); T7-F7 is the reversed pair."""
    out, mask = montage.harmonise(chbmit_crop, ["Fp1-T7", "T7-F7"])
    assert mask.all()
    np.testing.assert_allclose(out.signal[0], chbmit_crop.signal[0] + chbmit_crop.signal[1])
    np.testing.assert_array_equal(out.signal[1], -chbmit_crop.signal[1])


def test_referential_targets_need_referential_data(chbmit_crop: Recording) -> None:
    with pytest.raises(ChannelError, match="none of the target channels"):
        montage.harmonise(chbmit_crop, "szcore_19")


def test_unknown_channels(eegmmidb: Recording) -> None:
    extra = replace(
        eegmmidb,
        signal=np.vstack([eegmmidb.signal, eegmmidb.signal[:2]]),
        ch_names=[*eegmmidb.ch_names, "ECG", "PHOTIC"],
        ch_types=[*eegmmidb.ch_types, "eeg", "eeg"],
        ch_pos=None,
    )
    _, mask = montage.harmonise(extra, "double_banana")  # ignored by default
    assert mask.all()
    with pytest.raises(ChannelError, match="unknown channel names: ECG, PHOTIC"):
        montage.harmonise(extra, "double_banana", unknown="raise")
    with pytest.raises(ChannelError, match="target channel set has unknown names: Xx"):
        montage.harmonise(eegmmidb, ["Cz", "Xx"])
    with pytest.raises(ChannelError, match="unknown channel set 'banana'"):
        montage.harmonise(eegmmidb, "banana")


def test_average_reference_refuses_bipolar(chbmit_crop: Recording) -> None:
    with pytest.raises(ChannelError, match="cannot average-reference bipolar"):
        montage.average_reference(chbmit_crop)
