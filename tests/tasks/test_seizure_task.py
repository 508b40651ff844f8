"""Seizure task: window probabilities → events → the same scores as direct SzCORE scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodecode.evaluation.seizure import aggregate, score_recording
from neurodecode.tasks.seizure import SeizureTask


def predictions(recording: str, subject: str, p_seizure, y, step: float = 4.0) -> pd.DataFrame:
    p = np.asarray(p_seizure, dtype=float)
    return pd.DataFrame(
        {
            "y": y,
            "subject": subject,
            "recording": recording,
            "start_s": np.arange(len(p)) * step,
            "p_background": 1 - p,
            "p_seizure": p,
        }
    )


def _numbers(scores: dict) -> dict:
    """The numeric entries of a score dict (intervals, methods and flags left out)."""
    return {k: v for k, v in scores.items() if isinstance(v, int | float) and v is not None}


def test_events_from_windows_are_scored_like_szcore(tiny_model):
    # 4 s windows at 1 Hz → 4 samples each; 300 windows = 1200 s per recording
    task = SeizureTask(
        tiny_model,
        n_chans=4,
        n_times=4,
        sfreq=1.0,
        threshold=0.5,
        merge_gap_s=8.0,
        min_duration_s=8.0,
    )
    p_a = np.zeros(300)
    p_a[[100, 101, 103, 104]] = 0.9  # 400-420 s after merging the 4 s gap
    p_a[200] = 0.95  # a lone 4 s window: dropped by min_duration_s
    p_b = np.zeros(300)
    p_b[[50, 51, 52]] = 0.8  # 200-212 s, a false alarm
    frame = pd.concat(
        [predictions("a1", "a", p_a, np.zeros(300, int)), predictions("b1", "b", p_b, 0)]
    )
    references = {
        "a1": {"subject": "a", "duration_s": 1200.0, "events": [(410.0, 450.0)]},
        "b1": {"subject": "b", "duration_s": 1200.0, "events": []},
    }
    task.set_references(references)
    result = task.score_events(frame)
    assert task.detected_events == {"a1": [(400.0, 420.0)], "b1": [(200.0, 212.0)]}
    expected = aggregate(
        [
            score_recording([(410.0, 450.0)], [(400.0, 420.0)], 1200.0, subject="a"),
            score_recording([], [(200.0, 212.0)], 1200.0, subject="b"),
        ]
    )
    for level in ("per_subject", "pooled"):
        got, want = (_numbers(r["event"][level]) for r in (result, expected))
        assert got == pytest.approx(want, nan_ok=True)
    pooled = result["event"]["pooled"]
    assert (pooled["tp"], pooled["fp"], pooled["ref_true"]) == (1, 1, 1)
    assert pooled["f1"] == pytest.approx(2 / 3)


def test_reference_falls_back_to_window_labels(tiny_model):
    task = SeizureTask(tiny_model, n_chans=4, n_times=8, sfreq=2.0)  # 4 s windows
    y = np.zeros(20, int)
    y[5:8] = 1
    result = task.score_events(predictions("r", "s", y.astype(float), y))
    assert result["event"]["pooled"]["f1"] == 1.0
    assert task.detected_events["r"] == [(20.0, 32.0)]


def test_seizure_class_is_the_second_whatever_its_name(tiny_model):
    # an explicit label map {bckg: 0, sz: 1} names the classes after SzCORE's event types
    task = SeizureTask(tiny_model, n_chans=4, n_times=8, sfreq=2.0, class_names=["bckg", "sz"])
    y = np.zeros(20, int)
    y[5:8] = 1
    frame = predictions("r", "s", y.astype(float), y).rename(
        columns={"p_background": "p_bckg", "p_seizure": "p_sz"}
    )
    assert task.score_events(frame)["event"]["pooled"]["f1"] == 1.0
    assert task.detected_events["r"] == [(20.0, 32.0)]


def test_only_two_classes(tiny_model):
    with pytest.raises(ValueError, match="two classes"):
        SeizureTask(tiny_model, 4, 8, 2.0, n_outputs=3)


def test_detections_are_written_as_szcore_tsv(tiny_model, tmp_path):
    from neurodecode.data.annotations import read_szcore_events

    task = SeizureTask(tiny_model, n_chans=4, n_times=4, sfreq=1.0)
    p = np.zeros(50)
    p[[10, 11]] = [0.7, 0.9]
    frame = pd.concat(
        [predictions("sub-01_run-00", "01", p, 0), predictions("sub-01_run-01", "01", 0 * p, 0)]
    )
    task.set_references(
        {r: {"subject": "01", "duration_s": 200.0, "events": []} for r in frame["recording"]}
    )
    task.score_events(frame)
    task.test_predictions = frame
    paths = task.write_events(tmp_path)
    assert [p.name for p in paths] == ["sub-01_run-00_events.tsv", "sub-01_run-01_events.tsv"]
    detected = read_szcore_events(paths[0])
    assert detected[["onset", "duration", "eventType"]].values.tolist() == [[40.0, 8.0, "sz"]]
    assert detected["confidence"].tolist() == [0.9]
    assert detected["recordingDuration"].tolist() == [200.0]
    assert read_szcore_events(paths[1])["eventType"].tolist() == ["bckg"]


def test_validation_fits_temperature_and_event_threshold_kept_with_the_checkpoint(tiny_model):
    """Issue 15.3-4: the threshold comes from validation event F1, not 0.5; the temperature
    and threshold are saved with the checkpoint and restored before testing."""
    task = SeizureTask(tiny_model, n_chans=4, n_times=4, sfreq=1.0, smoothing_windows=1,
                       merge_gap_s=0.0, min_duration_s=0.0)  # fmt: skip
    p = np.full(300, 0.02)
    p[100:110] = 0.3  # the seizure only reaches 0.3: at 0.5 it would be missed
    y = np.zeros(300, int)
    y[100:110] = 1
    task.set_references({"v1": {"subject": "a", "duration_s": 1200.0, "events": [(400.0, 440.0)]}})
    calibration = task.calibrate_on(predictions("v1", "a", p, y))
    assert calibration["temperature"] != 1.0 and 0.0 < calibration["threshold"] < 1.0
    assert calibration["selection_score"] == pytest.approx(1.0)
    assert task.post_processing.threshold == calibration["threshold"]
    assert task.score_events(predictions("v1", "a", p, y))["event"]["pooled"]["f1"] == 1.0

    checkpoint: dict = {}
    task.on_save_checkpoint(checkpoint)
    fresh = SeizureTask(tiny_model, n_chans=4, n_times=4, sfreq=1.0)
    assert fresh.post_processing.threshold == 0.5
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.calibration["temperature"] == calibration["temperature"]
    assert fresh.post_processing.threshold == calibration["threshold"]
    assert np.allclose(fresh.seizure_probability(predictions("v1", "a", p, y)),
                       task.seizure_probability(predictions("v1", "a", p, y)))  # fmt: skip


def test_unknown_selection_criterion_is_refused(tiny_model):
    from neurodecode.errors import ConfigError

    with pytest.raises(ConfigError, match="sensitivity_at_fa"):
        SeizureTask(tiny_model, n_chans=4, n_times=4, sfreq=1.0, selection="val_loss")


def test_training_provenance_counts_subjects_hours_and_seizures_per_part():
    from types import SimpleNamespace

    from neurodecode.data.splits import Split
    from neurodecode.tasks.seizure import training_provenance

    index = pd.DataFrame({"recording": ["r1", "r1", "r2", "r3", "r4"]})
    cache = SimpleNamespace(index=index, ch_names=["Fp1-F7"], sfreq=128.0,
                            meta={"config": {"channels": {"target": "double_banana"}}})  # fmt: skip
    split = Split("subject", np.array([0, 1, 2]), np.array([3]), np.array([4]))
    references = {
        "r1": {"subject": "01", "duration_s": 1800.0, "events": [(1, 2), (5, 6)]},
        "r2": {"subject": "02", "duration_s": 1800.0, "events": []},
        "r3": {"subject": "03", "duration_s": 3600.0, "events": [(1, 2)]},
        "r4": {"subject": "04", "duration_s": 900.0, "events": []},
    }
    provenance = training_provenance(cache, split, references, "simulated")
    assert provenance["simulated_only"] is True and provenance["montage"] == "double_banana"
    assert provenance["parts"]["train"] == {"subjects": ["01", "02"], "n_recordings": 2,
                                            "hours": 1.0, "n_seizures": 2}  # fmt: skip
    assert provenance["parts"]["valid"]["n_seizures"] == 1
    assert provenance["parts"]["test"]["hours"] == 0.25
    assert training_provenance(cache, split, references, "chbmit")["kind"] == "real"
