"""The training entry point: config composition, refusals, the command-line help, one
complete seizure run and a motor-imagery run through the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

from neurodecode import train
from neurodecode.evaluation.classification import above_chance
from neurodecode.tasks.classification import class_weights
from neurodecode.tasks.seizure import bids_event_paths


def _compose(*overrides: str):
    return train.compose(overrides)


@pytest.mark.parametrize(
    ("recipe", "task", "simulation"),
    [
        ("seizure", "seizure", "seizure"),
        ("motor_imagery", "classification", "motor_imagery"),
        ("image_retrieval", "retrieval", "retrieval"),
    ],
)
def test_recipes_compose_and_command_line_wins(recipe, task, simulation):
    cfg = _compose(f"recipe={recipe}", "data=simulated", "trainer.max_epochs=3", "seed=7")
    assert cfg.task.module._target_ == task
    assert cfg.data.name == "simulated"  # the command line beats the recipe's default data
    assert cfg.data.manifest.source.generator_params.task == simulation
    assert cfg.trainer.max_epochs == 3 and cfg.seed == 7


def test_seizure_recipe_uses_the_double_banana_and_chbmit_by_default():
    cfg = _compose("recipe=seizure")
    assert cfg.data.name == "chbmit"
    assert cfg.preprocess.channels.target == "double_banana"


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(MissingConfigException, match="(?s)image_retrieval.*motor_imagery.*seizure"):
        _compose("recipe=sezure")
    with pytest.raises(MissingConfigException, match="dual_branch_conformer"):
        _compose("recipe=seizure", "model=conformr")
    with pytest.raises(MissingConfigException, match="chbmit"):
        _compose("recipe=seizure", "data=chbmt")


def test_a_recipe_is_required():
    with pytest.raises(ConfigCompositionException, match="recipe"):
        _compose()


def test_key_typos_are_errors():
    with pytest.raises(ConfigCompositionException, match="max_epoch"):
        _compose("recipe=seizure", "trainer.max_epoch=3")
    with pytest.raises(ConfigCompositionException, match="lenght_s"):
        _compose("recipe=seizure", "preprocess.windows.lenght_s=2")


def test_an_unknown_key_on_the_command_line_is_one_paragraph_with_the_nearest_keys():
    done = subprocess.run(
        [sys.executable, "-m", "neurodecode.train", "recipe=seizure", "trainer.max_epoch=1"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and not done.stdout
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "unknown config key 'trainer.max_epoch'" in done.stderr
    assert "did you mean 'max_epochs'?" in done.stderr


def test_recipes_are_registered_by_an_explicit_call():
    from neurodecode.run.recipes import register_recipes

    assert register_recipes() == ["image_retrieval", "motor_imagery", "pretrain", "seizure"]


def test_help_without_a_recipe_lists_the_recipes():
    done = subprocess.run(
        [sys.executable, "-m", "neurodecode.train", "--help"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "recipe=<name>" in done.stdout and "run_recipe" in done.stdout
    for recipe in ("image_retrieval", "motor_imagery", "pretrain", "seizure"):
        assert f"  {recipe} " in done.stdout
    assert "  motor_imagery    Motor imagery" in done.stdout  # the recipe's own summary

    typo = subprocess.run(
        [sys.executable, "-m", "neurodecode.train", "recipe=sezure", "--help"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert typo.returncode != 0
    assert "Could not find 'recipe/sezure'" in typo.stderr
    assert all(f"\t{name}\n" in typo.stderr for name in ("motor_imagery", "seizure", "pretrain"))


def test_compose_is_the_command_line_config_without_hydra_keys():
    cfg = train.compose(["recipe=motor_imagery", "data=simulated", "seed=3"])
    assert "hydra" not in cfg and cfg.seed == 3
    assert cfg.preprocess.windows.mode == "events"


def test_supervised_recipes_refuse_several_processes(tmp_path):
    from neurodecode.errors import ConfigError

    cfg = _compose(
        "recipe=seizure", "data=simulated", "trainer=ddp", "trainer.accelerator=cpu",
        "trainer.devices=2", f"runs_dir={tmp_path}",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="asks for 2") as refused:
        train.run(cfg, tmp_path / "run", recipe="seizure")
    assert "trainer.devices=1" in refused.value.hint


def test_class_weights_are_inverse_frequencies():
    import numpy as np

    assert class_weights(np.array([0, 0, 0, 1]), 2) == pytest.approx([2 / 3, 2.0])


def _szcore_by_hand(reference, hypothesis, duration):
    """Independent SzCORE event count: merge < 90 s, split > 300 s, 30 s / 60 s tolerance."""

    def normalise(events):
        merged = []
        for onset, offset in sorted(events):
            if merged and onset - merged[-1][1] < 90:
                merged[-1] = (merged[-1][0], max(merged[-1][1], offset))
            else:
                merged.append((onset, offset))
        split = []
        for onset, offset in merged:
            while offset - onset > 300:
                split.append((onset, onset + 300))
                onset += 300
            split.append((onset, offset))
        return split

    ref, hyp = normalise(reference), normalise(hypothesis)
    windows = [(max(0, a - 30), min(duration, b + 60)) for a, b in ref]
    hit = [any(h0 < w1 and h1 > w0 for h0, h1 in hyp) for w0, w1 in windows]
    covered = [w for w, h in zip(windows, hit, strict=True) if h]
    fp = sum(not any(h0 < w1 and h1 > w0 for w0, w1 in covered) for h0, h1 in hyp)
    return sum(hit), fp, len(ref)


QUICK = [
    "recipe=seizure", "data=simulated", "trainer.max_epochs=2", "model.size=tiny",
    "preprocess.windows.stride_s=4", "data.datamodule.batch_size=64",
    "trainer.enable_progress_bar=false",
]  # fmt: skip


def _train(home: Path, runs: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NEURODECODE_HOME=str(home))
    command = [sys.executable, "-m", "neurodecode.train", *QUICK, f"runs_dir={runs}", *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def seizure_run(tmp_path_factory):
    """One uninterrupted quick seizure run on simulated data: (home, run folder, process)."""
    root = tmp_path_factory.mktemp("seizure_run")
    done = _train(root / "home", root / "runs")
    (run,) = (root / "runs" / "seizure").iterdir()
    return root / "home", run, done


@pytest.mark.slow
def test_seizure_recipe_on_simulated_data_writes_a_complete_run(seizure_run):
    _, run, done = seizure_run
    assert "SzCORE event" in done.stdout

    # every log line once: on the console (Hydra's handler, stdout) and in train.log;
    # Lightning's own stderr handler is gone, and so is torch's LeafSpec deprecation
    # (Lightning's device lines and tips are silenced at their source)
    records = [line.split("] - ", 1)[1] for line in done.stdout.splitlines() if "] - " in line]
    assert any("Trainer.fit` stopped" in r for r in records)
    assert len(records) == len(set(records)), done.stdout
    assert (run / "train.log").read_text().count("Trainer.fit` stopped") == 1
    assert "GPU available" not in done.stdout + done.stderr
    assert "INFO:" not in done.stderr and "LeafSpec" not in done.stderr, done.stderr[-2000:]

    for relative in ("results.json", "qc.json", "checkpoints/last.ckpt",
                     "plots/seizure_probability.png", "plots/confusion_matrix.png",
                     "logs/csv/metrics.csv", ".hydra/config.yaml"):  # fmt: skip
        assert (run / relative).is_file(), relative
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    assert list((run / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    results = json.loads((run / "results.json").read_text())
    assert results["seed"] == 0 and results["recipe"] == "seizure"
    assert results["config"]["data"]["name"] == "simulated"
    assert len(results["config_hash"]) == 16 and results["data_hash"]
    assert {"torch", "lightning", "timescoring"} <= set(results["versions"])
    szcore = results["metrics"]["test"]["szcore"]
    assert {"per_subject", "pooled"} == set(szcore["event"])
    assert "nanmean" in szcore["convention"]

    # hand check: rescore the written detections against the cached reference events
    test_subjects = results["data"]["split"]["test"]["subjects"]
    cache = Path(results["data"]["cache_path"])
    meta = json.loads((cache / "meta.json").read_text())
    events = pd.read_csv(cache / "events.csv")
    paths = bids_event_paths(SimpleNamespace(meta=meta))
    tp = fp = n_ref = 0
    for recording, info in meta["recordings"].items():
        if str(info["subject"]) not in test_subjects:
            continue
        ref_rows = events[(events["recording"] == recording) & (events["label"] == 1)]
        reference = list(
            zip(ref_rows["onset"], ref_rows["onset"] + ref_rows["duration"], strict=True)
        )
        detected = pd.read_csv(run / "events" / paths[recording], sep="\t")
        detected = detected[detected["eventType"] != "bckg"]
        hypothesis = list(
            zip(detected["onset"], detected["onset"] + detected["duration"], strict=True)
        )
        counts = _szcore_by_hand(reference, hypothesis, info["duration_s"])
        tp, fp, n_ref = tp + counts[0], fp + counts[1], n_ref + counts[2]
    pooled = szcore["event"]["pooled"]
    assert (pooled["tp"], pooled["fp"], pooled["ref_true"]) == (tp, fp, n_ref)
    expected_f1 = 2 * tp / (2 * tp + fp + (n_ref - tp)) if n_ref + fp else None
    assert pooled["f1"] == pytest.approx(expected_f1)


@pytest.mark.slow
def test_seizure_run_selects_on_events_and_exports_calibration_and_provenance(
    seizure_run, tmp_path
):
    """Issue 15.1-4: the checkpoint is chosen on validation event score, its temperature and
    threshold come with it into the export and predict, and the run says what it rests on."""
    from neurodecode.hub import export_run
    from neurodecode.predict import load_detector

    _, run, done = seizure_run
    results = json.loads((run / "results.json").read_text())
    metrics = results["metrics"]
    assert set(metrics["best_validation"]) == {"val/selection"}
    calibration = metrics["calibration"]
    assert calibration["fitted_on"].startswith("validation") and calibration["temperature"] > 0
    provenance = metrics["provenance"]
    assert provenance["simulated_only"] is True and provenance["montage"] == "double_banana"
    split = results["data"]["split"]
    for part in ("train", "valid", "test"):
        assert provenance["parts"][part]["subjects"] == sorted(split[part]["subjects"])
    pooled = metrics["test"]["szcore"]["event"]["pooled"]
    assert provenance["test_event_scores"]["n_seizures"] == pooled["ref_true"] > 0
    assert pooled["fp_per_24h_extrapolated"] is True  # minutes of simulated test data
    assert "EXTRAPOLATED" in done.stdout and "seizure(s) of 1 subject(s)" in done.stdout

    config = json.loads((export_run(run, tmp_path / "export") / "config.json").read_text())
    assert "provenance" not in config["metrics"] and config["provenance"]["simulated_only"]
    assert config["provenance"]["calibration"]["threshold"] == calibration["threshold"]
    detector = load_detector(run)
    assert detector.post.threshold == calibration["threshold"]
    assert detector.temperature == pytest.approx(calibration["temperature"])


@pytest.mark.slow
def test_a_killed_run_resumed_ends_like_an_uninterrupted_one(seizure_run, tmp_path):
    """Kill the 2-epoch run once epoch 1 is checkpointed; resume=true: same test metrics."""
    home, uninterrupted, _ = seizure_run
    runs = tmp_path / "runs"
    env = dict(os.environ, NEURODECODE_HOME=str(home))
    command = [sys.executable, "-m", "neurodecode.train", *QUICK, f"runs_dir={runs}"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list(runs.glob("seizure/*/checkpoints/last.ckpt")):
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.1)
    process.kill()
    process.wait()
    (killed,) = [run for run in (runs / "seizure").iterdir() if (run / "checkpoints").is_dir()]
    assert not (killed / "results.json").exists(), "the run finished before it was killed"
    _train(home, runs, "resume=true")
    # the resumed run continues in the killed run's folder
    expected = json.loads((uninterrupted / "results.json").read_text())["metrics"]["test"]
    got = json.loads((killed / "results.json").read_text())["metrics"]["test"]
    assert got["window"]["confusion_matrix"] == expected["window"]["confusion_matrix"]
    for key, value in expected["window"].items():
        if isinstance(value, int | float):
            assert got["window"][key] == pytest.approx(value, nan_ok=True), key
    assert got["szcore"]["event"] == expected["szcore"]["event"]


@pytest.mark.slow
def test_motor_imagery_recipe_on_simulated_data_is_above_chance_on_a_held_out_subject(
    neurodecode_home, tmp_path
):
    """The recipe's own preprocessing and model (8 epochs) on simulated left/right
    imagery: the held-out subject's trials are decoded above chance (exact binomial test)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train.run_recipe(
            ["recipe=motor_imagery", "data=simulated",
             "trainer.max_epochs=8", "seed=1", "trainer.enable_progress_bar=false",
             "+trainer.enable_model_summary=false"],
            tmp_path / "run",
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert run == tmp_path / "run" and (run / ".hydra" / "config.yaml").is_file()
    results = json.loads((run / "results.json").read_text())
    assert results["recipe"] == "motor_imagery"
    split = results["data"]["split"]
    held_out = set(split["test"]["subjects"])
    assert held_out and not held_out & set(split["train"]["subjects"] + split["valid"]["subjects"])
    test = results["metrics"]["test"]
    n_trials = test["n"]
    n_correct = round(test["accuracy"] * n_trials)
    assert n_trials >= 100  # a whole subject: 2 sessions x 2 runs x 30 trials
    check = above_chance(n_correct, n_trials, chance=0.5, confidence_level=0.99)
    assert check["above_chance"], check
