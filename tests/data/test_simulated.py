"""Simulated datasets: deterministic, real EDF+/BIDS files, and the effects they claim."""

from __future__ import annotations

import json
from pathlib import Path

import mne
import numpy as np
import pytest
from scipy.signal import welch

from neurodecode.data.annotations import read_szcore_events
from neurodecode.data.montage import SZCORE_19
from neurodecode.data.simulated import (
    generate_dataset,
    load_embeddings,
    simulate_motor_imagery_recording,
    simulate_retrieval_recording,
    simulate_seizure_recording,
    simulation_params,
)
from neurodecode.errors import ConfigError
from tests.conftest import require_shared

SMALL_SEIZURE = {
    "task": "seizure",
    "n_subjects": 2,
    "n_runs": 1,
    "duration_s": 120.0,
    "seizures_per_run": [1, 1],
    "seizure_duration_s": [20.0, 30.0],
}


@pytest.fixture(scope="module")
def seizure_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("simulated") / "seizure"
    generate_dataset(root, SMALL_SEIZURE)
    return root


def edf_files(root: Path) -> list[Path]:
    return sorted(root.glob("sub-*/ses-*/eeg/*_eeg.edf"))


def test_same_seed_same_signal_other_seed_differs() -> None:
    params = simulation_params(SMALL_SEIZURE)
    signal, events = simulate_seizure_recording(params, 1, 1, 1)
    again, events_again = simulate_seizure_recording(params, 1, 1, 1)
    assert signal.tobytes() == again.tobytes() and events.equals(events_again)
    other = simulation_params({**SMALL_SEIZURE, "seed": 1})
    assert not np.array_equal(signal, simulate_seizure_recording(other, 1, 1, 1)[0])
    assert not np.array_equal(signal, simulate_seizure_recording(params, 2, 1, 1)[0])


def test_files_are_byte_identical_across_generations(seizure_root: Path, tmp_path: Path) -> None:
    generate_dataset(tmp_path / "again", SMALL_SEIZURE)
    for first in edf_files(seizure_root):
        second = tmp_path / "again" / first.relative_to(seizure_root)
        assert first.read_bytes() == second.read_bytes()


def test_bids_layout_and_edf_contents(seizure_root: Path) -> None:
    files = edf_files(seizure_root)
    assert [f.name for f in files] == [
        "sub-01_ses-01_task-szMonitoring_run-01_eeg.edf",
        "sub-02_ses-01_task-szMonitoring_run-01_eeg.edf",
    ]
    description = json.loads((seizure_root / "dataset_description.json").read_text())
    assert "SIMULATION" in description["GeneratedBy"][0]["Description"]
    for edf in files:
        stem = edf.name.removesuffix("_eeg.edf")
        raw = mne.io.read_raw_edf(edf, verbose="error")
        assert raw.ch_names == [f"{n}-Avg" for n in SZCORE_19]
        assert raw.info["sfreq"] == 256 and raw.n_times == 120 * 256
        assert 5e-6 < raw.get_data().std() < 100e-6  # tens of µV, read back in volts
        events = read_szcore_events(edf.with_name(f"{stem}_events.tsv"))
        assert list(events["eventType"]) == ["sz"]
        np.testing.assert_allclose(raw.annotations.onset, events["onset"], atol=0.01)
        np.testing.assert_allclose(raw.annotations.duration, events["duration"], atol=0.01)
        assert set(raw.annotations.description) == {"sz"}
        channels = (edf.parent / f"{stem}_channels.tsv").read_text().splitlines()
        assert len(channels) == 1 + 19 and channels[1].startswith("Fp1-Avg\tEEG\tuV")


def test_generation_is_idempotent_and_atomic(seizure_root: Path) -> None:
    stamps = [f.stat().st_mtime_ns for f in edf_files(seizure_root)]
    generate_dataset(seizure_root, SMALL_SEIZURE)  # same parameters: nothing rewritten
    assert [f.stat().st_mtime_ns for f in edf_files(seizure_root)] == stamps
    assert not list(seizure_root.parent.glob(".seizure.*"))  # no partial or old copies


def test_changed_parameters_replace_the_dataset(tmp_path: Path) -> None:
    root = tmp_path / "sim"
    generate_dataset(root, {**SMALL_SEIZURE, "n_subjects": 1})
    before = edf_files(root)[0].read_bytes()
    generate_dataset(root, {**SMALL_SEIZURE, "n_subjects": 1, "seed": 7})
    assert edf_files(root)[0].read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim"]


def test_ictal_windows_carry_discharge_band_power() -> None:
    params = simulation_params(SMALL_SEIZURE)
    signal, events = simulate_seizure_recording(params, 1, 1, 1)
    onset, duration = float(events["onset"][0]), float(events["duration"][0])
    sfreq = params.sfreq

    def band_power(start_s: float) -> float:
        window = signal[:, int(start_s * sfreq) : int((start_s + 2) * sfreq)]
        freqs, psd = welch(window, fs=sfreq, nperseg=256)
        return float(psd[:, (freqs >= 3) & (freqs <= 9)].sum(axis=1).max())

    ictal = [band_power(t) for t in np.arange(onset + duration / 2, onset + duration - 2, 2)]
    quiet = [t for t in np.arange(0, 118, 2) if t + 2 < onset or t > onset + duration + 40]
    background = [band_power(t) for t in quiet]
    assert np.median(ictal) > 5 * np.median(background)
    assert events["channels"][0]  # the channels involved at onset are named


def test_motor_imagery_desynchronises_the_contralateral_mu_rhythm() -> None:
    channels = ["F3", "Fz", "F4", "C3", "Cz", "C4", "P3", "Pz", "P4"]
    params = simulation_params(
        {"task": "motor_imagery", "channels": channels, "trials_per_run": 40}
    )
    signal, events = simulate_motor_imagery_recording(params, 1, 1, 1)
    c3, c4 = channels.index("C3"), channels.index("C4")
    ratio = {"left_hand": [], "right_hand": []}
    for e in events[events["value"] > 0].itertuples():
        start = int((e.onset + 0.5) * params.sfreq)
        freqs, psd = welch(
            signal[[c3, c4], start : start + int(3 * params.sfreq)], fs=params.sfreq, nperseg=160
        )
        mu = psd[:, (freqs >= 8) & (freqs <= 13)].sum(axis=1)
        ratio[e.description].append(np.log(mu[0] / mu[1]))
    assert len(ratio["left_hand"]) == len(ratio["right_hand"]) == 20
    # Left-hand imagery lowers mu over C4 (right hemisphere): C3/C4 higher than for right.
    assert np.mean(ratio["left_hand"]) - np.mean(ratio["right_hand"]) > 0.5
    assert np.mean(np.array(ratio["left_hand"]) > np.median(ratio["right_hand"])) > 0.8


def test_retrieval_eeg_decodes_held_out_concepts_above_chance() -> None:
    params = simulation_params({"task": "retrieval", "n_concepts": 100, "embedding_dim": 64})
    embeddings = load_embeddings(params)
    features = np.zeros((100, 17 * 12))
    for run in (1, 2):  # 2 runs × 2 repetitions: average 4 trials per concept
        signal, events = simulate_retrieval_recording(params, 1, 1, run, embeddings=embeddings)
        for onset, concept in zip(events["onset"], events["value"], strict=True):
            start = int(round(onset * params.sfreq))
            epoch = signal[:, start : start + 120].reshape(17, 12, 10).mean(axis=-1)
            features[concept] += epoch.ravel()
    train, test = np.arange(80), np.arange(80, 100)
    z = (features - features[train].mean(0)) / features[train].std(0)
    ridge = np.linalg.solve(
        z[train].T @ z[train] + 100 * np.eye(z.shape[1]), z[train].T @ embeddings[train]
    )
    similarity = (z[test] @ ridge) @ embeddings[test].T
    rank = (similarity > similarity.diagonal()[:, None]).sum(axis=1)
    assert np.mean(rank < 5) >= 0.45  # top-5 of 20 held-out concepts; chance 0.25
    assert rank.mean() < 7  # chance 9.5


def test_clip_features_are_accepted_as_embeddings() -> None:
    path = require_shared("excerpts/things_eeg2/clip_feature_maps_test.npy")
    embeddings = load_embeddings(simulation_params({"task": "retrieval", "embeddings": str(path)}))
    assert embeddings.shape == (200, 768) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, rtol=1e-5)


def test_generated_through_the_shipped_manifest(tmp_path: Path) -> None:
    from neurodecode.data.manifest import load_manifest

    manifest = load_manifest("simulated")
    generate_dataset(tmp_path / "simulated", manifest)
    files = edf_files(tmp_path / "simulated")
    assert len(files) == 4 * 2  # the README's default: 4 subjects × 2 recordings
    assert all(f.with_name(f.name.replace("_eeg.edf", "_events.tsv")).exists() for f in files)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown simulation parameter"):
        simulation_params({"task": "seizure", "n_subject": 3})
    with pytest.raises(ConfigError, match="do not fit"):
        simulation_params({"task": "seizure", "duration_s": 60.0})
    with pytest.raises(ConfigError, match="whole number"):
        simulation_params({"task": "motor_imagery", "sfreq": 173.61})
    with pytest.raises(ConfigError, match="unknown simulated task"):
        simulation_params({"task": "sleep"})
    with pytest.raises(ConfigError, match="no standard 10-05 position"):
        simulate_seizure_recording(simulation_params({"channels": ["Fp1", "XYZ"]}), 1, 1, 1)
    with pytest.raises(ConfigError, match="cannot read image embeddings"):
        load_embeddings(simulation_params({"task": "retrieval", "embeddings": "/nonexistent.npy"}))


def test_motor_imagery_and_retrieval_files_read_back_with_their_events(tmp_path: Path) -> None:
    from neurodecode.data.io import read_recording

    small = {"n_subjects": 1, "n_sessions": 1, "n_runs": 1}
    generate_dataset(
        tmp_path / "mi",
        {**small, "task": "motor_imagery", "channels": ["C3", "Cz", "C4"], "trials_per_run": 4},
    )
    (edf,) = edf_files(tmp_path / "mi")
    recording = read_recording(
        edf,
        annotation_format="bids_events",
        annotation_path=edf.with_name(edf.name.replace("_eeg.edf", "_events.tsv")),
    )
    assert recording.ch_names == ["C3", "Cz", "C4"] and recording.sfreq == 160
    trials = recording.annotations[recording.annotations["description"] != "rest"]
    assert sorted(trials["description"]) == ["left_hand"] * 2 + ["right_hand"] * 2
    assert (trials["duration"] == 4.0).all()

    generate_dataset(
        tmp_path / "rsvp",
        {**small, "task": "retrieval", "n_concepts": 10, "embedding_dim": 8},
    )
    embeddings = np.load(tmp_path / "rsvp" / "stimuli" / "image_embeddings.npy")
    assert embeddings.shape == (10, 8)
    (edf,) = edf_files(tmp_path / "rsvp")
    raw = mne.io.read_raw_edf(edf, verbose="error")
    assert len(raw.ch_names) == 17 and raw.info["sfreq"] == 250
    assert sorted(set(raw.annotations.description)) == [f"concept_{i:03d}" for i in range(10)]
