"""Classical baselines run by the recipes: as the model (``model=csp_lda``,
``model=eeg_features``) and beside a deep model (``baseline=...``), on the same split and
scored by the same test code; simulated data, so fast and offline."""

from __future__ import annotations

import json
import logging

import pytest

from neurodecode import train
from neurodecode.errors import ConfigError
from neurodecode.evaluation.classification import above_chance
from neurodecode.run.runner import baseline_names

QUIET = ["data=simulated", "seed=1", "trainer.enable_progress_bar=false",
         "+trainer.enable_model_summary=false"]  # fmt: skip


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One NEURODECODE_HOME for the module: each simulated cache is built once."""
    root = tmp_path_factory.mktemp("baselines_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEURODECODE_HOME", str(root))
        yield root


def run(tmp_path, *overrides):
    run_dir = train.run_recipe([*QUIET, *overrides], tmp_path / "run")
    return json.loads((run_dir / "results.json").read_text())


def assert_above_chance(metrics, chance=0.5):
    n_correct = round(metrics["accuracy"] * metrics["n"])
    check = above_chance(n_correct, metrics["n"], chance=chance, confidence_level=0.99)
    assert check["above_chance"], check


def test_csp_lda_is_the_model_of_a_motor_imagery_run(home, tmp_path):
    results = run(tmp_path, "recipe=motor_imagery", "model=csp_lda")
    assert results["config"]["model"]["_target_"] == "csp_lda"
    assert results["steps"] == 0  # fitted in closed form, no optimiser step
    assert results["checkpoints"] == {"best": None, "last": None}
    test = results["metrics"]["test"]
    assert test["n"] == results["data"]["split"]["test"]["n_windows"]
    assert_above_chance(test)
    assert (tmp_path / "run" / "plots" / "confusion_matrix.png").is_file()


def test_eeg_features_is_the_model_of_a_seizure_run_scored_by_szcore(home, tmp_path):
    results = run(tmp_path, "recipe=seizure", "model=eeg_features",
                  "preprocess.windows.stride_s=4")  # fmt: skip
    test = results["metrics"]["test"]
    assert set(test) == {"window", "szcore"}
    # the held-out subject's windows are ranked well; the threshold carries less across
    # subjects (simulated data are scaled per recording)
    assert test["window"]["roc_auc"] > 0.9
    assert test["window"]["balanced_accuracy"] > 0.6
    assert test["szcore"]["event"]["pooled"]["sensitivity"] > 0.5
    assert results["artifacts"]["events"]
    # as a baseline beside a model, its SzCORE scores get their own summary lines, each
    # saying that the figures are on simulated EEG
    lines = train.summary_lines({**results, "baselines": {"eeg_features": test}})
    assert lines[0].startswith("test (simulated EEG): SzCORE event")
    assert any(line.startswith("baseline eeg_features (simulated EEG): SzCORE event")
               for line in lines)  # fmt: skip
    assert lines[-1].startswith("baseline eeg_features (simulated EEG): accuracy")


def test_baselines_are_fitted_on_the_models_split_and_reported_beside_it(home, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="neurodecode.run.runner"):
        results = run(tmp_path, "recipe=motor_imagery",
                      "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                      "trainer.limit_val_batches=1", "baseline=[tangent_space,csp_lda]")  # fmt: skip
    assert results["config"]["model"]["_target_"] == "log_variance_net"
    assert results["steps"] > 0
    model = results["metrics"]["test"]
    assert set(results["baselines"]) == {"tangent_space", "csp_lda"}
    for metrics in results["baselines"].values():
        assert metrics["n"] == model["n"]  # the same test trials
        assert_above_chance(metrics)
    assert "baseline tangent_space (simulated EEG): accuracy" in caplog.text
    assert "baseline csp_lda (simulated EEG): accuracy" in caplog.text


def test_a_baseline_must_be_a_classical_model():
    cfg = train.compose(["recipe=motor_imagery", "data=simulated", "baseline=eegnet"])
    with pytest.raises(ConfigError, match="csp_lda, eeg_features, tangent_space"):
        baseline_names(cfg)
    cfg = train.compose(["recipe=motor_imagery", "data=simulated", "baseline=csp_ld"])
    with pytest.raises(ConfigError, match="did you mean 'csp_lda'"):
        baseline_names(cfg)
    assert baseline_names(train.compose(["recipe=seizure", "baseline=eeg_features"])) == [
        "eeg_features"
    ]
    assert baseline_names(train.compose(["recipe=seizure"])) == []
