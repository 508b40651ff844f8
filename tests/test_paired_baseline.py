"""A run with ``baseline=`` tests the model against each baseline on the identical test
trials (McNemar's exact test), in ``results.json`` and in the summary lines."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from neurodecode import train
from neurodecode.run.record import paired_trials


class FakeTask(SimpleNamespace):
    """The two things :func:`paired_trials` reads from a tested task."""

    def probabilities_of(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[["p_a", "p_b"]].to_numpy()


def predictions(correct: list[bool], order: list[int]) -> pd.DataFrame:
    y = np.array([0, 1, 0, 1, 1, 0])
    p_b = np.where(np.array(correct), y, 1 - y).astype(float)
    frame = pd.DataFrame({
        "recording": ["r1", "r1", "r1", "r2", "r2", "r2"],
        "start_s": [0.0, 4.0, 8.0, 0.0, 4.0, 8.0],
        "y": y, "p_a": 1 - p_b, "p_b": p_b,
    })  # fmt: skip
    return frame.iloc[order].reset_index(drop=True)


def test_paired_trials_match_trials_by_identity_not_order():
    model = FakeTask(test_predictions=predictions([1, 1, 1, 1, 0, 1], [0, 1, 2, 3, 4, 5]))
    # the baseline's trials arrive in another order: matched by recording and start
    baseline = FakeTask(test_predictions=predictions([1, 0, 0, 1, 1, 1], [5, 3, 1, 0, 2, 4]))
    result = paired_trials(model, baseline)
    assert (result["model_only"], result["baseline_only"], result["n_trials"]) == (2, 1, 6)
    # other trials: refused, never paired by position
    other = predictions([1] * 6, list(range(6))).assign(recording="r3")
    with pytest.raises(ValueError, match="identical trials"):
        paired_trials(model, FakeTask(test_predictions=other))
    assert paired_trials(model, FakeTask(test_predictions=None)) is None


def test_a_baseline_run_records_mcnemar_on_the_same_trials(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NEURODECODE_HOME", str(tmp_path / "home"))
    with caplog.at_level(logging.INFO, logger="neurodecode.run.runner"):
        run_dir = train.run_recipe(
            ["recipe=motor_imagery", "data=simulated", "seed=1",
             "trainer.max_epochs=1", "trainer.limit_train_batches=2",
             "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false",
             "baseline=csp_lda"],
            tmp_path / "run",
        )  # fmt: skip
    results = json.loads((run_dir / "results.json").read_text())
    model = results["metrics"]["test"]
    baseline = results["baselines"]["csp_lda"]
    paired = baseline["paired_with_model"]
    assert paired["test"] == "mcnemar exact" and paired["n_trials"] == model["n"]
    # the discordant trials account exactly for the difference of the two accuracies
    difference = (paired["model_only"] - paired["baseline_only"]) / paired["n_trials"]
    assert difference == pytest.approx(model["accuracy"] - baseline["accuracy"])
    assert 0.0 <= paired["p_value"] <= 1.0
    assert "baseline csp_lda (simulated EEG): paired with the model on" in caplog.text
    assert "McNemar exact p" in caplog.text
