"""Issue 16, finding 3: a dataset's channel set never comes from the first file read.

A polysomnography-like recording (EEG + ECG + EMG + respiration + SpO2) sorting first used
to fix the channel set with its non-EEG channels typed EEG, and the build failed with
"shards disagree on channels" naming only the cache folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurodecode.data.build import build_cache
from neurodecode.data.fetch import RecordingEntry
from neurodecode.data.manifest import load_manifest
from neurodecode.data.preprocess import load_preprocess_config
from neurodecode.errors import CacheError
from tests.data.test_io_formats import write_edf

EEG = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]
OTHER = ["ECG", "EMG", "Resp", "SpO2"]
OVERRIDES = [
    "resample=null",
    "notch.line_freq=null",
    "artifacts.enabled=false",
    "windows.length_s=2.0",
    "windows.stride_s=2.0",
]


def _dataset(folder: Path, channel_sets: dict[str, list[str]]) -> list[RecordingEntry]:
    return [
        RecordingEntry(path=write_edf(folder / f"{name}.edf", names, seconds=8), subject=name)
        for name, names in sorted(channel_sets.items())
    ]


def _build(entries: list[RecordingEntry], root: Path, manifest=None):
    config = load_preprocess_config("default", OVERRIDES)
    return build_cache(
        entries,
        config,
        root,
        dataset="mixed",
        manifest=manifest,
        num_workers=0,
        progress=False,
    )


def test_non_eeg_recording_sorting_first_builds(tmp_path: Path) -> None:
    entries = _dataset(
        tmp_path,
        {
            "a_no_eeg": OTHER,  # sorts first: fails alone, the build goes on
            "b_psg": EEG[:4] + OTHER + EEG[4:],  # its other channels are not EEG
            "c_eeg": EEG,
            "d_eeg": list(reversed(EEG)),
        },
    )
    cache = _build(entries, tmp_path / "cache")
    assert cache.ch_names == EEG
    qc = json.loads((cache.path / "qc.json").read_text())
    status = {r["recording"]: r["status"] for r in qc["recordings"]}
    assert [status[k] for k in sorted(status)] == ["failed", "ok", "ok", "ok"]
    failed = next(r for r in qc["recordings"] if r["status"] == "failed")
    assert "a_no_eeg.edf" in failed["error"]["message"]
    assert "no channel of type eeg" in failed["error"]["message"]


def test_channels_common_to_every_recording(tmp_path: Path) -> None:
    entries = _dataset(tmp_path, {"a": EEG + ["Cz"], "b": ["Cz", *EEG[:3]], "c": EEG[:3] + ["Cz"]})
    assert _build(entries, tmp_path / "cache").ch_names == [*EEG[:3], "Cz"]


def test_recording_sharing_no_channel_is_named(tmp_path: Path) -> None:
    entries = _dataset(tmp_path, {"a": EEG, "b": ["Pz", "Oz", "T7"]})
    with pytest.raises(CacheError, match=r"b\.edf has the channels Pz, Oz, T7.*share none"):
        _build(entries, tmp_path / "cache")


def test_manifest_declares_the_channel_set(tmp_path: Path) -> None:
    manifest = load_manifest("bonn").model_copy(update={"channels": ["C3", "C4", "Cz"]})
    entries = _dataset(tmp_path, {"a": EEG + ["Cz"], "b": EEG})
    cache = _build(entries, tmp_path / "cache", manifest=manifest)
    assert cache.ch_names == ["C3", "C4", "Cz"]
    masks = {k: v["ch_mask"] for k, v in cache.meta["recordings"].items()}
    assert sorted(map(tuple, masks.values())) == [(True, True, False), (True, True, True)]
