"""SzCORE post-processing and scoring against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurodecode.evaluation.seizure import (
    PostProcessing,
    aggregate,
    probabilities_to_events,
    score_recording,
)

HOUR = 3600.0


def test_threshold_merges_overlapping_windows():
    p = [0.0, 0.6, 0.7, 0.2, 0.8, 0.0, 0.0, 0.9]
    start = np.arange(len(p)) * 2.0  # 4 s windows, 2 s step
    events = probabilities_to_events(p, start, 4.0, PostProcessing(threshold=0.5))
    # windows at 2 and 4 s cover (2, 8); the window at 8 s touches it; 14 s stands alone
    assert events == [(2.0, 12.0), (14.0, 18.0)]


def test_merge_gap_and_minimum_duration():
    p = [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    start = np.arange(len(p)) * 1.0
    post = PostProcessing(threshold=0.5, merge_gap_s=2.0, min_duration_s=2.0)
    # (0,1) and (3,4) are 2 s apart → merged to (0,4); (10,11) lasts 1 s → dropped
    assert probabilities_to_events(p, start, 1.0, post) == [(0.0, 4.0)]


def test_hysteresis_keeps_an_event_alive_above_the_lower_threshold():
    p = [0.2, 0.9, 0.4, 0.35, 0.1, 0.4]
    start = np.arange(len(p)) * 1.0
    plain = probabilities_to_events(p, start, 1.0, PostProcessing(threshold=0.8))
    hyst = probabilities_to_events(p, start, 1.0, PostProcessing(threshold=0.8, off_threshold=0.3))
    assert plain == [(1.0, 2.0)]
    assert hyst == [(1.0, 4.0)]  # 0.1 ends it; the last 0.4 never reaches 0.8


def test_smoothing_removes_a_single_spike():
    p = [0.0, 0.0, 1.0, 0.0, 0.0]
    start = np.arange(5) * 1.0
    assert probabilities_to_events(p, start, 1.0, PostProcessing(smoothing_windows=3)) == []


def test_bad_post_processing_is_refused():
    with pytest.raises(ValueError, match="off_threshold"):
        PostProcessing(threshold=0.5, off_threshold=0.7)
    with pytest.raises(ValueError, match="odd number"):
        PostProcessing(smoothing_windows=4)  # an even average would shift events


def test_event_scoring_matches_hand_count():
    # one seizure at 1000-1060 s in a 1 h recording
    # (980, 1010) overlaps it → TP; (1100, 1110) lies inside the 60 s tolerance after it → not FP
    # (2000, 2020) is far away → FP
    score = score_recording(
        [(1000.0, 1060.0)], [(980.0, 1010.0), (1100.0, 1110.0), (2000.0, 2020.0)], HOUR
    )
    assert (score.event.tp, score.event.fp, score.event.ref_true) == (1, 1, 1)
    scores = score.event.scores()
    assert scores["sensitivity"] == 1.0
    assert scores["precision"] == 0.5
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["fp_per_24h"] == pytest.approx(24.0)  # 1 FP in 1 h
    # sample scoring at 1 Hz: overlap 1000-1010 = 10 s TP; FP 980-1000 + 1100-1110 + 2000-2020
    assert (score.sample.tp, score.sample.fp, score.sample.ref_true) == (10, 50, 60)


def test_szcore_merges_close_events_and_splits_long_ones():
    # reference events 60 s apart are one event; a 700 s hypothesis becomes three events
    score = score_recording([(100.0, 130.0), (190.0, 200.0)], [], HOUR)
    assert score.event.ref_true == 1
    score = score_recording([], [(1000.0, 1700.0)], HOUR)
    assert score.event.fp == 3


def test_per_subject_average_and_pooled_follow_szcore():
    scores = [
        # subject a: TP=1, FP=1, 1 seizure → sens 1, prec 0.5, F1 2/3
        score_recording(
            [(1000.0, 1060.0)],
            [(990.0, 1000.0), (2000.0, 2020.0)],
            HOUR,
            subject="a",
            recording="a1",
        ),
        # subject b: no seizure, one false detection → sens undefined, prec 0, F1 0
        score_recording([], [(500.0, 520.0)], HOUR, subject="b", recording="b1"),
        # subject c: a seizure and no detection (two recordings) → sens 0, prec undefined, F1 0
        score_recording([(100.0, 200.0)], [], HOUR, subject="c", recording="c1"),
        score_recording([], [], HOUR, subject="c", recording="c2"),
    ]
    result = aggregate(scores)
    avg, pooled = result["event"]["per_subject"], result["event"]["pooled"]
    assert avg["sensitivity"] == pytest.approx(0.5) and avg["n_sensitivity"] == 2
    assert avg["precision"] == pytest.approx(0.25) and avg["n_precision"] == 2
    assert avg["f1"] == pytest.approx((2 / 3 + 0 + 0) / 3) and avg["n_f1"] == 3
    # FP/24h per subject: a 24, b 24, c 0 (2 h) → mean 16
    assert avg["fp_per_24h"] == pytest.approx(16.0)
    assert (pooled["tp"], pooled["fp"], pooled["ref_true"]) == (1, 2, 2)
    assert pooled["sensitivity"] == pytest.approx(0.5)
    assert pooled["precision"] == pytest.approx(1 / 3)
    assert pooled["f1"] == pytest.approx(2 / (2 + 2 + 1))
    assert pooled["fp_per_24h"] == pytest.approx(2 / (4 / 24))
    assert math.isnan(result["subjects"]["b"]["event"]["sensitivity"])
    assert result["n_subjects"] == 3 and result["n_recordings"] == 4
    assert "nanmean" in result["convention"]
