"""SzCORE post-processing and scoring against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurodecode.errors import ConfigError
from neurodecode.evaluation.seizure import (
    PostProcessing,
    Selection,
    ValidationRecording,
    aggregate,
    binomial_interval,
    calibrate,
    choose_threshold,
    fit_temperature,
    log_loss,
    log_odds,
    poisson_rate_interval,
    probabilities_to_events,
    score_recording,
    summary_lines,
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


# --- honest statistics -------------------------------------------------------------------


def test_aggregate_states_its_basis_and_flags_a_rate_from_minutes():
    """Issue 15.4: 8 minutes of one subject give FP/24h that must say it is extrapolated,
    an exact Poisson interval, and no standard deviation over a single subject."""
    score = score_recording([(100.0, 160.0)], [(100.0, 150.0), (300.0, 320.0)], 480.0,
                            subject="03", recording="r1")  # fmt: skip
    result = aggregate([score])
    pooled = result["event"]["pooled"]
    assert (pooled["n_seizures"], pooled["n_subjects"]) == (1, 1)
    assert pooled["hours"] == pytest.approx(480 / 3600)
    assert pooled["fp_per_24h_extrapolated"] is True
    low, high = pooled["fp_per_24h_ci"]
    assert pooled["fp_per_24h"] == pytest.approx(180.0)
    # exact Garwood interval for one count: chi2 quantiles / 2, per 480 s → per 24 h
    assert low == pytest.approx(0.0253178 * 180, rel=1e-4)
    assert high == pytest.approx(5.571643 * 180, rel=1e-4)
    assert result["event"]["per_subject"]["f1_std"] is None
    assert "one subject" in pooled["ci_method"]
    lines = "\n".join(summary_lines(result))
    assert "EXTRAPOLATED from 8 min" in lines and "1 seizure(s) of 1 subject(s)" in lines
    assert "no spread" in lines and "share of seizure(s) found" in lines


def test_intervals_bootstrap_over_several_subjects():
    scores = [
        score_recording([(100.0, 160.0)], [(100.0, 160.0)], HOUR, subject="a", recording="a"),
        score_recording([(100.0, 160.0)], [], HOUR, subject="b", recording="b"),
        score_recording([(100.0, 160.0)], [(110.0, 150.0)], HOUR, subject="c", recording="c"),
    ]
    pooled = aggregate(scores)["event"]["pooled"]
    assert "bootstrap over 3 subjects" in pooled["ci_method"]
    low, high = pooled["sensitivity_ci"]
    assert pooled["sensitivity"] == pytest.approx(2 / 3)
    assert 0.0 <= low < 2 / 3 < high <= 1.0
    assert pooled["fp_per_24h_extrapolated"] is False


def test_poisson_and_binomial_intervals_match_known_values():
    assert poisson_rate_interval(0, 86400.0) == pytest.approx((0.0, 3.688879), rel=1e-5)
    low, high = binomial_interval(5, 10)
    assert (low, high) == pytest.approx((0.187086, 0.812914), rel=1e-5)


# --- calibration and event-level selection -----------------------------------------------


def test_temperature_fit_recovers_an_overconfident_model():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0.0, 2.0, 4000)
    labels = rng.random(4000) < 1 / (1 + np.exp(-true_logits))
    temperature = fit_temperature(3.0 * true_logits, labels)  # three times too confident
    assert temperature == pytest.approx(3.0, rel=0.15)
    assert fit_temperature([1.0, 2.0], [1, 1]) == 1.0
    p = calibrate(log_odds(np.array([1.0, 0.5], np.float32)), 4.0)
    assert 0.99 < p[0] < 1.0 and p[1] == pytest.approx(0.5)


def _validation(probabilities, reference):
    starts = np.arange(len(probabilities), dtype=float) * 4.0
    return ValidationRecording("a", "r", starts, np.asarray(probabilities, float), reference,
                               float(len(probabilities) * 4))  # fmt: skip


def test_threshold_is_chosen_on_event_f1_not_at_half():
    """The seizure's windows reach only 0.3: at 0.5 nothing is found (F1 0), selection on
    event F1 picks a threshold that finds it without the 0.15 background bump."""
    p = np.full(200, 0.02)
    p[100:110] = 0.3
    p[20:22] = 0.15
    chosen = choose_threshold([_validation(p, [(400.0, 440.0)])], 4.0, PostProcessing(),
                              Selection("event_f1"))  # fmt: skip
    assert 0.15 < chosen["threshold"] <= 0.3
    assert chosen["score"] == pytest.approx(1.0) and chosen["event"]["fp"] == 0


def test_sensitivity_at_a_false_alarm_budget_respects_the_budget():
    p = np.full(2000, 0.02)
    p[1000:1010] = 0.3
    for start in (100, 300, 500, 700):
        p[start : start + 2] = 0.35  # false alarms above the seizure's level
    recording = _validation(p, [(4000.0, 4040.0)])  # 2000 windows of 4 s: 8000 s
    loose = choose_threshold(
        [recording], 4.0, PostProcessing(), Selection("sensitivity_at_fa", 100.0)
    )
    strict = choose_threshold(
        [recording], 4.0, PostProcessing(), Selection("sensitivity_at_fa", 1.0)
    )
    assert loose["score"] == 1.0 and loose["event"]["fp"] == 4
    assert strict["score"] == 0.0 and strict["event"]["fp"] == 0
    with pytest.raises(ConfigError, match="selection criterion"):
        Selection("window_loss")


def test_equal_event_scores_are_ranked_by_the_calibrated_log_loss():
    """Two validation seizures make event F1 1.0 from the first epoch on; the epoch with
    the better probabilities must still win, and never against a real event difference."""
    selection = Selection("event_f1")
    perfect = {"f1": 1.0, "sensitivity": 1.0, "fp_per_24h": 0.0}
    assert selection.rank(perfect, 0.2) > selection.rank(perfect, 0.6)
    one_missed = {"f1": 0.99, "sensitivity": 0.98, "fp_per_24h": 0.0}
    assert selection.rank(one_missed, 0.0) < selection.rank(perfect, 50.0)
    assert log_loss([0.5, 0.5], [0, 1]) == pytest.approx(math.log(2))
