"""Event-locked and sliding windows, on real annotations where there are some."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodecode.data.io import read_recording
from neurodecode.data.windows import (
    UNLABELLED,
    event_windows,
    extract_windows,
    normalise_label_map,
    sliding_windows,
)
from neurodecode.errors import ConfigError, PreprocessingError
from tests.conftest import require_shared

LABELS = {"rest": 0, "imagined_left_fist": 1, "imagined_right_fist": 2}


@pytest.fixture(scope="module")
def r04_events() -> pd.DataFrame:
    return read_recording(require_shared("mirror/eegmmidb/S001/S001R04.edf")).annotations


def test_event_windows_on_real_cues(r04_events):
    n_samples = 125 * 128
    table, outside = event_windows(r04_events, 128.0, n_samples, LABELS, 0.0, 4.0)
    # 30 cues; every 4-s window fits except none here (the last cue starts at 120.5 s).
    assert len(table) + outside == len(r04_events) == 30
    assert (table["end_s"] - table["start_s"]).round(6).eq(4.0).all()
    assert table["start_sample"].max() + 512 <= n_samples
    np.testing.assert_allclose(table["start_s"], table["event_onset_s"], atol=0.5 / 128)
    cues = r04_events[r04_events["description"] != "rest"]
    assert sorted(table.loc[table["label"] > 0, "event_onset_s"]) == sorted(cues["onset"])
    assert set(table["label"]) == {0, 1, 2}
    # A window reaching before the start or past the end is dropped and counted.
    table, outside = event_windows(r04_events, 128.0, n_samples, LABELS, -0.5, 4.0)
    assert outside == 1 and table["start_s"].min() > 0


def test_label_map_matching_no_event_names_both(r04_events):
    with pytest.raises(
        PreprocessingError,
        match=r"no event matches the label map \['T1', 'T2'\]"
        r".*imagined_left_fist",
    ):
        event_windows(r04_events, 128.0, 16000, {"T1": 0, "T2": 1}, 0.0, 4.0, source="x.edf")


def test_recording_shorter_than_a_window():
    with pytest.raises(
        PreprocessingError, match=r"lasts 2\.00 s, shorter than one window of 4\.00"
    ):
        sliding_windows(
            pd.DataFrame(columns=["onset", "duration", "description"]),
            100.0,
            200,
            4.0,
            4.0,
            {},
            0.5,
        )


def test_sliding_windows_overlap_threshold_and_event_times():
    # A seizure from 10 s to 21 s in a 40-s recording, 4-s windows every 2 s.
    events = pd.DataFrame({"onset": [10.0], "duration": [11.0], "description": ["seizure"]})
    labels = {"background": 0, "seizure": 1}
    table = sliding_windows(events, 100.0, 4000, 4.0, 2.0, labels, 0.5, "background")
    assert len(table) == 19
    by_start = table.set_index("start_s")
    assert by_start.loc[8.0, "label"] == 1 and by_start.loc[8.0, "overlap"] == 0.5  # 10-12 of 8-12
    assert by_start.loc[6.0, "label"] == 0 and by_start.loc[6.0, "overlap"] == 0.0
    assert by_start.loc[18.0, "label"] == 1 and by_start.loc[18.0, "overlap"] == 0.75
    assert by_start.loc[20.0, "label"] == 0 and by_start.loc[20.0, "overlap"] == 0.25
    assert by_start.loc[20.0, "event_onset_s"] == 10.0  # still traceable to the seizure
    assert by_start.loc[20.0, "event_offset_s"] == 21.0
    assert np.isnan(by_start.loc[0.0, "event_onset_s"])
    assert (table["description"] == np.where(table["label"] == 1, "seizure", "background")).all()
    # Without a background class, uncovered windows are unlabelled.
    table = sliding_windows(events, 100.0, 4000, 4.0, 2.0, {"seizure": 0}, 0.5)
    assert (table["label"] == UNLABELLED).sum() == 19 - 6  # starts 8, 10, ..., 18 labelled
    with pytest.raises(ConfigError, match="background='rest' is not in the label map"):
        sliding_windows(events, 100.0, 4000, 4.0, 2.0, labels, 0.5, "rest")


def test_sliding_windows_tiny_threshold_labels_only_touched_windows():
    events = pd.DataFrame({"onset": [10.0], "duration": [11.0], "description": ["seizure"]})
    labels = {"background": 0, "seizure": 1}
    table = sliding_windows(events, 100.0, 4000, 4.0, 2.0, labels, 1e-6, "background")
    # windows overlapping 10-21 s at all: starts 8 .. 20 (7 windows); the rest stay background
    assert (table["label"] == 1).sum() == 7
    assert table.loc[table["overlap"] == 0, "label"].eq(0).all()
    for threshold in (0.0, 1.5):
        with pytest.raises(ConfigError, match="overlap_threshold"):
            sliding_windows(events, 100.0, 4000, 4.0, 2.0, labels, threshold, "background")


def test_extract_windows_and_label_maps():
    signal = np.arange(30, dtype=np.float32).reshape(3, 10)
    out = extract_windows(signal, np.array([0, 5]), 4)
    assert out.shape == (2, 3, 4) and out[1, 2].tolist() == [25, 26, 27, 28]
    assert out.flags.c_contiguous and not np.shares_memory(out, signal)
    starts = np.array([6, 0, 3, 3])  # any order, repeats allowed
    gathered = signal[:, starts[:, None] + np.arange(4)].transpose(1, 0, 2)
    np.testing.assert_array_equal(extract_windows(signal, starts, 4), gathered)
    assert extract_windows(signal, np.array([], dtype=np.int64), 4).shape == (0, 3, 4)
    assert normalise_label_map(["a", "b"]) == {"a": 0, "b": 1}
    assert normalise_label_map({"x": 3}) == {"x": 3}
    with pytest.raises(ConfigError, match="must be integers"):
        normalise_label_map({"x": "left"})
