"""The real-data table (``neurodecode benchmark results``): runs through the recipe path,
resumable per-run records, and the report with paired tests, energy and the frontier."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from neurodecode.cli import benchmark
from neurodecode.evaluation.comparison import paired_comparison
from neurodecode.run import results_table
from neurodecode.run.results_report import write_report
from neurodecode.run.results_table import (
    CONFORMER,
    DATASETS,
    FULL_PLAN,
    LOG_VARIANCE,
    QUICK_PLAN,
    TablePlan,
    record_path,
    run_overrides,
    spiking_variant,
)
from tests.conftest import require_shared


def test_the_full_plan_covers_every_dataset_model_and_seed():
    runs = list(FULL_PLAN.runs())
    names = {(spec.name, variant.name) for spec, variant, _, _ in runs}
    assert {spec for spec, _ in names} == {"bonn", "eegmmidb_lr", "eegmmidb_ff", "graz"}
    for dataset in ("bonn", "eegmmidb_lr", "eegmmidb_ff", "graz"):
        assert {(dataset, v) for v in ("conformer", "spiking_t2_direct", "finetuned")} <= names
    # the motor-imagery recipe's default model on the motor-imagery datasets only
    assert {d for d, v in names if v == "log_variance_net"} == {
        "eegmmidb_lr",
        "eegmmidb_ff",
        "graz",
    }
    # the frontier (T = 1, 2, 4 × direct, delta) on Bonn and eegmmidb imagery only
    frontier = {v for d, v in names if d == "bonn" and v.startswith("spiking")}
    assert frontier == {f"spiking_t{t}_{e}" for t in (1, 2, 4) for e in ("direct", "delta")}
    assert not any(v == "spiking_t1_delta" for d, v in names if d == "graz")
    # at least 3 seeds, 5 folds for motor imagery, each run once
    assert len(runs) == len(set((s.name, v.name, seed, fold) for s, v, seed, fold in runs))
    folds = {(s.name, fold) for s, v, seed, fold in runs if seed == 2}
    assert {f for d, f in folds if d == "eegmmidb_lr"} == set(range(5))
    assert {f for d, f in folds if d == "bonn"} == {0}
    # frontier rows beyond the main spiking one: 3 seeds on the first fold
    extra = [(seed, fold) for s, v, seed, fold in runs
             if s.name == "eegmmidb_lr" and v.name == "spiking_t4_delta"]  # fmt: skip
    assert extra == [(0, 0), (1, 0), (2, 0)]
    main = [1 for s, v, _, _ in runs if s.name == "eegmmidb_lr" and v.name == "spiking_t2_direct"]
    assert len(main) == 15
    # braindecode's foundation models and the fine-tuning strategies: eegmmidb fists/feet,
    # one seed, every fold; rows= runs only the rows named
    for row in ("labram", "cbramod", "eegpt", "biot", "conformer_ridge", "finetuned_lora"):
        assert {(s.name, seed) for s, v, seed, _ in runs if v.name == row} == {("eegmmidb_ff", 0)}
    assert sum(v.name == "biot" for _, v, _, _ in runs) == 5
    only = dataclasses.replace(FULL_PLAN, rows=("labram", "spiking_t1_delta"))
    assert {v.name for _, v, _, _ in only.runs()} == {"labram", "spiking_t1_delta"}
    # long Bonn epochs are capped; every other dataset trains for the plan's epochs; a
    # recipe's default model runs with the recipe's own size and epochs
    bonn, graz = DATASETS["bonn"], DATASETS["graz"]
    spiking = spiking_variant(2, "direct")
    assert FULL_PLAN.epochs_of(bonn, spiking) == ("trainer.max_epochs=3", "model.size=tiny")
    assert FULL_PLAN.epochs_of(graz, spiking) == ("trainer.max_epochs=10", "model.size=tiny")
    assert FULL_PLAN.epochs_of(bonn, CONFORMER) == FULL_PLAN.epochs_of(graz, LOG_VARIANCE) == ()
    assert FULL_PLAN.epochs_of(graz, CONFORMER) == ("trainer.max_epochs=10", "model.size=tiny")


def test_records_are_reused_only_when_made_the_same_way_and_failures_do_not_stop(
    tmp_path, monkeypatch
):
    out = tmp_path / "table"
    spec, conformer, _, _ = next(QUICK_PLAN.runs())
    (out / "records").mkdir(parents=True)
    same = run_overrides(QUICK_PLAN, spec, conformer, 0, 0, out.resolve())
    record_path(out, spec, "conformer", 0, 0).write_text(json.dumps({"overrides": same}))
    ran = []

    def fake_run_one(plan, spec, variant, overrides, out, shared):
        ran.append((variant.name, overrides))
        if len(ran) == 2:
            raise RuntimeError("out of memory")
        return {"overrides": overrides, "variant": variant.name}

    monkeypatch.setattr(results_table, "run_one", fake_run_one)
    records, failures = results_table.run_table(QUICK_PLAN, out, tmp_path)
    assert [name for name, _ in ran] == ["spiking_t1_direct"]  # the conformer's was reused
    assert len(records) == 2 and not failures
    # other settings (more epochs): both are run again; a failure is listed, not recorded
    plan = dataclasses.replace(QUICK_PLAN, epochs=2)
    records, failures = results_table.run_table(plan, out, tmp_path)
    assert [name for name, _ in ran[1:]] == ["conformer", "spiking_t1_direct"]
    assert "trainer.max_epochs=2" in ran[1][1]
    assert len(records) == 1 and failures == [
        "graz__conformer__seed0_fold0: RuntimeError: out of memory"
    ]
    assert json.loads(record_path(out, spec, "conformer", 0, 0).read_text())["overrides"] == same


def record(dataset, variant, seed, fold, accuracy, baselines=None, **extra):
    return {
        "dataset": dataset, "variant": variant, "seed": seed, "fold": fold,
        "test": {"accuracy": accuracy, "balanced_accuracy": accuracy, "roc_auc": None, "n": 9},
        "n_test": 9,
        "baselines": {name: {"accuracy": acc, "balanced_accuracy": acc, "roc_auc": None, "n": 9}
                      for name, acc in (baselines or {}).items()},
        "energy_uj": dict.fromkeys(("fp32", "fp32+sram", "fp16", "fp16+sram", "int8",
                                    "int8+sram", "lemaire"), 1.0 if "spiking" in variant else 4.0),
        **extra,
    }  # fmt: skip


def test_report_pairs_models_with_baselines_on_the_same_splits(tmp_path):
    rng = np.random.default_rng(0)
    splits = [(seed, fold) for seed in range(3) for fold in range(5)]
    model = rng.uniform(0.6, 0.9, len(splits))
    csp = model - 0.05 + rng.normal(0, 0.01, len(splits))
    records = [
        record("eegmmidb_lr", "conformer", seed, fold, acc, {"csp_lda": b, "tangent_space": 0.8},
               int8={"accuracy": acc - 0.01, "balanced_accuracy": acc, "roc_auc": None, "n": 9,
                     "energy_uj": dict.fromkeys(("fp32", "fp32+sram", "fp16", "fp16+sram", "int8",
                                                 "int8+sram", "lemaire"), 0.5)})
        for (seed, fold), acc, b in zip(splits, model, csp, strict=True)
    ]  # fmt: skip
    records += [
        record("eegmmidb_lr", "spiking_t2_delta", seed, fold, 0.55, firing_rates={"layer": 0.1},
               mean_firing_rate=0.1)
        for seed, fold in splits
    ]  # fmt: skip
    plan = TablePlan(("eegmmidb_lr",), FULL_PLAN.variants, (0, 1, 2), 5, 8,
                     frontier=("eegmmidb_lr",))  # fmt: skip
    doc = write_report(records, plan, "neurodecode benchmark results", tmp_path / "r.md", 0.0)
    text = doc.read_text()
    expected = paired_comparison(model, csp)
    assert expected["test"] == "sign-flip exact" and expected["n_pairs"] == 15
    assert f"Δ {expected['mean_difference']:+.3f}, p {expected['p_value']:.3g}" in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()}
    conformer = rows["dual-branch conformer (analog FP32)"]
    assert f"{model.mean():.3f} ± {model.std(ddof=1):.3f}" in conformer
    assert "| 15 | 9 |" in conformer  # runs, test trials per run
    assert "CSP + LDA (baseline)" in rows and "dual-branch conformer, INT8 post-training" in rows
    # the frontier: INT8 priced only under INT8 cost models, spiking firing rates listed
    assert "| analog INT8 |" in text and "| T=2, delta | 0.550 ± 0.000 | 15 |" in text
    assert "- T=2, delta: layer 0.100" in text
    assert (tmp_path / "r_frontier.png").stat().st_size > 1000
    assert "neurodecode benchmark results" in text and "Machine:" in text
    # the plan's other models were not run: the report says it is incomplete, and which
    assert "**Incomplete**: 57 of 75 runs" in text and "finetuned seed 2 fold 4" in text


@pytest.mark.slow
def test_quick_table_runs_through_the_recipe_and_resumes(tmp_path, monkeypatch):
    shared = require_shared()
    monkeypatch.setenv("NEURODECODE_HOME", str(tmp_path / "home"))
    out, doc = tmp_path / "table", tmp_path / "results.md"
    argv = ["results", "quick=true", f"out={out}", f"doc={doc}", f"shared={shared}"]
    assert benchmark.main(argv) == 0
    records = sorted((out / "records").glob("*.json"))
    assert [p.name for p in records] == [
        "graz__conformer__seed0_fold0.json", "graz__spiking_t1_direct__seed0_fold0.json"]  # fmt: skip
    conformer = json.loads(records[0].read_text())
    assert conformer["n_test"] == 8  # one of 5 folds of the 40 Graz trials
    for name in ("csp_lda", "tangent_space"):
        paired = conformer["baselines"][name]["paired_with_model"]
        assert paired["n_trials"] == 8 and paired["test"] == "mcnemar exact"
    assert conformer["energy_uj"]["int8+sram"] < conformer["energy_uj"]["fp32+sram"]
    # the INT8 model: its own accuracy on the same trials, its own (cheaper) operations
    assert conformer["int8"]["n"] == 8
    assert conformer["int8"]["energy_uj"]["fp32+sram"] < conformer["energy_uj"]["fp32+sram"]
    spiking = json.loads(records[1].read_text())
    assert spiking["firing_rates"] and 0 <= spiking["mean_firing_rate"] <= 1
    text = doc.read_text()
    assert "### Graz GDF sample" in text and "CSP + LDA (baseline)" in text
    assert "`neurodecode benchmark results quick=true out=" in text  # the command, as typed
    # an interrupted or repeated table reuses its records: nothing is trained again
    monkeypatch.setattr(results_table, "run", lambda *a, **k: pytest.fail("ran again"))
    doc.unlink()
    assert benchmark.main(argv) == 0 and doc.is_file()


def test_unknown_dataset_is_refused_with_the_names(capsys):
    assert benchmark.main(["results", "datasets=[bon]", "shared=/nonexistent"]) != 0
    assert "did you mean 'bonn'" in capsys.readouterr().err


def test_missing_shared_data_is_refused(tmp_path, capsys):
    argv = ["results", "quick=true", f"out={tmp_path}", f"shared={tmp_path / 'none'}"]
    assert benchmark.main(argv) != 0
    assert "the real recordings are not there" in capsys.readouterr().err
    assert not (tmp_path / "records").exists()


def test_bonn_rows_give_the_accuracy_of_whole_segments_beside_the_windows(tmp_path):
    records = []
    for seed in range(3):
        r = record("bonn", "conformer", seed, 0, 0.98, {"eeg_features": 0.97})
        r["test"]["recording_accuracy"] = 0.99 + seed / 200
        r["baselines"]["eeg_features"]["recording_accuracy"] = 0.98
        records.append(r)
    plan = TablePlan(("bonn",), (CONFORMER,), (0, 1, 2), 1, 3)
    text = write_report(records, plan, "neurodecode benchmark results", tmp_path / "r.md", 0.0)
    lines = text.read_text().splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    assert header.split(" | ")[1:3] == ["accuracy", "segment accuracy"]
    conformer = next(line for line in lines if line.startswith("| dual-branch conformer (analog"))
    assert conformer.split(" | ")[1:3] == ["0.980 ± 0.000", "0.995 ± 0.005"]
    features = next(line for line in lines if line.startswith("| features + logistic"))
    assert features.split(" | ")[2] == "0.980 ± 0.000"
