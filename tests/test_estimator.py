"""A neurodecode model as a scikit-learn estimator: it learns, it keeps scikit-learn's
contract, and MOABB's own evaluation scores it on MOABB's fake dataset (no download)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from neurodecode.errors import ConfigError
from neurodecode.run.estimator import NeurodecodeClassifier

TINY = {"model_options": {"size": "tiny"}, "max_epochs": 8, "batch_size": 16, "sfreq": 64.0}


def _trials(n=80, seed=0):
    """Two classes told apart by 10 Hz power in the first of four channels (volts)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(["left", "right"], n // 2)
    x = rng.standard_normal((n, 4, 128)) * 10e-6
    t = np.arange(128) / 64.0
    x[y == "right", 0] += 30e-6 * np.sin(2 * np.pi * 10 * t)
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]


def test_learns_and_keeps_the_scikit_learn_contract():
    x, y = _trials()
    model = NeurodecodeClassifier(**TINY).fit(x[:60], y[:60])
    assert list(model.classes_) == ["left", "right"]
    probabilities = model.predict_proba(x[60:])
    assert probabilities.shape == (20, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(model.predict(x[60:])) <= {"left", "right"}
    assert model.score(x[60:], y[60:]) >= 0.85
    # clone gives an unfitted copy with the same settings; the same seed, the same model
    again = clone(model).fit(x[:60], y[:60])
    np.testing.assert_allclose(again.predict_proba(x[60:]), probabilities, atol=1e-6)


def test_scaling_comes_from_the_training_trials_only():
    x, y = _trials()
    model = NeurodecodeClassifier(**{**TINY, "max_epochs": 1}).fit(x[:40], y[:40])
    center = model.center_.copy()
    model.predict_proba(x[40:] * 100)  # test trials far off scale do not move it
    np.testing.assert_array_equal(model.center_, center)
    np.testing.assert_allclose(model.center_[:, 0], np.median(x[:40], axis=(0, 2)), rtol=1e-5)


def test_arrays_without_a_rate_are_refused():
    x, y = _trials(n=8)
    with pytest.raises(ConfigError, match="give sfreq="):
        NeurodecodeClassifier(model_options={"size": "tiny"}).fit(x, y)


def test_moabb_within_session_evaluation_scores_it(tmp_path):
    pytest.importorskip("moabb")
    from moabb.datasets.fake import FakeDataset
    from moabb.evaluations import WithinSessionEvaluation
    from moabb.paradigms import LeftRightImagery

    dataset = FakeDataset(event_list=["left_hand", "right_hand"], n_sessions=1, n_runs=1,
                          n_subjects=1, duration=120, n_events=40, sfreq=128, seed=0,
                          channels=("C3", "Cz", "C4"))  # fmt: skip
    paradigm = LeftRightImagery(fmin=8, fmax=30, tmin=0, tmax=2.0)
    evaluation = WithinSessionEvaluation(paradigm=paradigm, datasets=[dataset], overwrite=True,
                                         hdf5_path=str(tmp_path), n_splits=2, random_state=0,
                                         return_epochs=True)  # fmt: skip
    pipeline = NeurodecodeClassifier(model_options={"size": "tiny"}, max_epochs=2, seed=0)
    results = evaluation.process({"neurodecode_dbc": pipeline})
    assert list(results["pipeline"].unique()) == ["neurodecode_dbc"]
    assert len(results) == 1 and 0.0 <= results["score"].iloc[0] <= 1.0
    assert results["samples"].iloc[0] > 0
