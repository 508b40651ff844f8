"""``docs/results.md`` and its frontier figure from the records of the real-data table
(:mod:`neurodecode.run.results_table`): mean ± sd over seeds and folds, the paired test of
each model against each baseline on the same splits
(:func:`neurodecode.evaluation.comparison.paired_comparison`), energy per window under the
cost models with firing rates per layer, the transfer check, and how it was produced
(machine, date, command)."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from neurodecode.evaluation.comparison import paired_comparison
from neurodecode.files import write_atomic
from neurodecode.run.record import cpu_name
from neurodecode.run.results_table import (
    DATASETS,
    FRONTIER,
    TABLE_COST_MODELS,
    TablePlan,
    Variant,
    run_table,
)

BASELINE_TITLES = {
    "eeg_features": "features + logistic regression",
    "csp_lda": "CSP + LDA",
    "tangent_space": "tangent space + LR",
}


def machine() -> str:
    """One line on the machine: CPU, cores, threads torch uses, load, Python and torch."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{cpu_name()}, {os.cpu_count()} cores (torch uses {torch.get_num_threads()} threads), "
        f"load average {load}; Python {platform.python_version()}, torch {torch.__version__}"
    )


def mean_sd(values: Sequence[float | None]) -> str:
    """``mean ± sd`` of the values that exist (sd over more than one), or ``–``."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not v.size:
        return "–"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if v.size > 1 else f"{v.mean():.3f}"


def by_key(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Records grouped by (dataset, variant), each group sorted by (seed, fold)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record["dataset"], record["variant"]].append(record)
    return {k: sorted(v, key=lambda r: (r["seed"], r["fold"])) for k, v in groups.items()}


def baseline_scores(
    records: Sequence[Mapping[str, Any]], name: str
) -> dict[tuple[int, int], float]:
    """``{(seed, fold): accuracy}`` of baseline ``name`` from the runs that fitted it."""
    return {
        (r["seed"], r["fold"]): r["baselines"][name]["accuracy"]
        for r in records
        if name in r.get("baselines", {}) and r["baselines"][name]["accuracy"] is not None
    }


def versus(model: Sequence[Mapping[str, Any]], baseline: Mapping[tuple[int, int], float],
           key: str = "test") -> str:  # fmt: skip
    """``Δ +0.012, p 0.25 (sign-flip exact, 15 pairs)``: the model's test accuracy against
    the baseline's on the same (seed, fold) splits."""
    pairs = [(r[key]["accuracy"], baseline[r["seed"], r["fold"]]) for r in model
             if r.get(key) and (r["seed"], r["fold"]) in baseline]  # fmt: skip
    if not pairs:
        return "–"
    result = paired_comparison(*zip(*pairs, strict=True))
    p = "no test" if result["p_value"] is None else f"p {result['p_value']:.3g}"
    test = f"{result['test']}, " if result["test"] else ""
    return f"Δ {result['mean_difference']:+.3f}, {p} ({test}{result['n_pairs']} pairs)"


def dataset_table(name: str, groups: Mapping[tuple[str, str], list[Mapping[str, Any]]],
                  variants: Sequence[Variant]) -> list[str]:  # fmt: skip
    """The section of one dataset: every model and baseline, paired tests against each
    baseline, test examples per run."""
    spec = DATASETS[name]
    conformer = groups.get((name, "conformer"), [])
    baselines = {b: baseline_scores(conformer, b) for b in spec.baselines}
    whole = f"{spec.groups.removesuffix('s')} accuracy" if spec.groups else None
    header = ["model", "accuracy", *([whole] if whole else []), "balanced accuracy", "runs",
              f"test {spec.unit} / run"]  # fmt: skip
    header += [f"vs {BASELINE_TITLES.get(b, b)}" for b in spec.baselines]
    lines = [f"### {spec.title}", "", "| " + " | ".join(header) + " |",
             "|" + " --- |" * len(header)]  # fmt: skip
    rows: list[tuple[str, list[Mapping[str, Any]], str]] = [
        (v.title, groups[name, v.name], "test") for v in variants if (name, v.name) in groups
    ]
    if conformer and any(r.get("int8") for r in conformer):
        after = next(i for i, row in enumerate(rows) if row[1] is groups[name, "conformer"])
        rows.insert(after + 1, ("dual-branch conformer, INT8 post-training", conformer, "int8"))
    for title, runs, key in rows:
        present = [r for r in runs if r.get(key)]
        cells = [title, mean_sd([r[key]["accuracy"] for r in present]),
                 *([_whole(r[key] for r in present)] if whole else []),
                 mean_sd([r[key]["balanced_accuracy"] for r in present]), str(len(present)),
                 _n_per_run(present, spec.groups)]  # fmt: skip
        cells += [versus(present, baselines[b], key) for b in spec.baselines]
        lines.append("| " + " | ".join(cells) + " |")
    for b in spec.baselines:
        runs = [r["baselines"][b] for r in conformer if b in r.get("baselines", {})]
        cells = [f"{BASELINE_TITLES.get(b, b)} (baseline)", mean_sd([m["accuracy"] for m in runs]),
                 *([_whole(runs)] if whole else []),
                 mean_sd([m["balanced_accuracy"] for m in runs]), str(len(runs)),
                 _n_per_run([{"n_test": m["n"]} for m in runs])]  # fmt: skip
        lines.append("| " + " | ".join(cells + ["–"] * len(spec.baselines)) + " |")
    return [*lines, ""]


def _whole(scores: Iterable[Mapping[str, Any]]) -> str:
    """Mean ± sd of the runs' accuracy over whole recordings (``–`` where not measured)."""
    return mean_sd([m.get("recording_accuracy") for m in scores])


def _n_per_run(runs: Sequence[Mapping[str, Any]], groups: str | None = None) -> str:
    """Test examples per run (their range when folds differ), and the groups they come from."""
    text = _span([r.get("n_test") for r in runs])
    if groups and text != "–":
        text += f" ({_span([r.get('n_test_groups') for r in runs])} {groups})"
    return text


def _span(values: Sequence[int | None]) -> str:
    n = sorted({int(v) for v in values if v is not None})
    return "–" if not n else str(n[0]) if len(n) == 1 else f"{n[0]}–{n[-1]}"


def frontier_rows(name: str, groups: Mapping[tuple[str, str], list[Mapping[str, Any]]]
                  ) -> list[dict[str, Any]]:  # fmt: skip
    """Accuracy and energy per window (mean over runs) of the frontier's models on ``name``:
    analog FP32, analog INT8 (its own accuracy and its own operation counts) and every
    spiking variant."""
    rows = []
    conformer = groups.get((name, "conformer"), [])
    candidates = [("analog FP32", conformer, "test", False)]
    candidates.append(("analog INT8", conformer, "int8", True))
    candidates += [(v.title.removeprefix("spiking conformer, "), groups.get((name, v.name), []),
                    "test", False) for v in FRONTIER]  # fmt: skip
    for label, runs, key, int8 in candidates:
        present = [r for r in runs if r.get(key)]
        if not present:
            continue
        accuracy = np.array([r[key]["accuracy"] for r in present], dtype=float)
        source = [r["int8"] if int8 else r for r in present]
        energies = {m: float(np.mean([r["energy_uj"][m] for r in source])) for m in
                    (*TABLE_COST_MODELS, "int8")}  # fmt: skip
        rates = [r["mean_firing_rate"] for r in present if r.get("mean_firing_rate") is not None]
        rows.append({
            "label": label, "runs": len(present), "accuracy": accuracy,
            "energy": energies, "int8": int8, "firing_rate": np.mean(rates) if rates else None,
            "layers": present[0].get("firing_rates") or {},
        })  # fmt: skip
    return rows


def frontier_table(name: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The frontier table of one dataset: accuracy and energy per window, µJ."""
    header = ["model", "accuracy", "runs", *(f"{m} µJ" for m in TABLE_COST_MODELS),
              "mean firing rate"]  # fmt: skip
    lines = [f"#### {DATASETS[name].title}", "", "| " + " | ".join(header) + " |",
             "|" + " --- |" * len(header)]  # fmt: skip
    for row in rows:
        energy = [f"{row['energy'][m]:.2f}" for m in TABLE_COST_MODELS]
        rate = "–" if row["firing_rate"] is None else f"{row['firing_rate']:.3f}"
        lines.append("| " + " | ".join([row["label"], mean_sd(list(row["accuracy"])),
                                        str(row["runs"]), *energy, rate]) + " |")  # fmt: skip
    layers = [(row["label"], row["layers"]) for row in rows if row["layers"]]
    if layers:
        lines += ["", "Firing rates per layer (first seed and fold of each spiking row):", ""]
        lines += [f"- {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in rates.items())
                  for label, rates in layers]  # fmt: skip
    return [*lines, ""]


def frontier_figure(panels: Mapping[str, Sequence[Mapping[str, Any]]], baselines: Mapping[str, float],
                    path: Path) -> Path:  # fmt: skip
    """Accuracy (mean ± sd) against energy per window, one panel per dataset: FP32 and
    every row under the fp32+sram cost model (the INT8 model's INT8 operations at INT8
    prices); the best baseline dashed."""
    figure = Figure(figsize=(5.0 * max(1, len(panels)), 3.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(1, len(panels))))
    for ax, (name, rows) in zip(axes, panels.items(), strict=False):
        for row in rows:
            x = row["energy"]["fp32+sram"]
            acc = row["accuracy"]
            ax.errorbar(x, acc.mean(), yerr=acc.std(ddof=1) if acc.size > 1 else 0, fmt="o",
                        capsize=3, label=row["label"])  # fmt: skip
        if name in baselines:
            ax.axhline(baselines[name], linestyle="--", color="grey", label="best baseline")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("energy per window, µJ (45 nm, fp32+sram cost model)")
        ax.set_ylabel("test accuracy")
        ax.set_title(DATASETS[name].title, fontsize=9)
        ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    return path


def transfer_lines(groups: Mapping[tuple[str, str], list[Mapping[str, Any]]]) -> list[str]:
    """The CHB-MIT transfer check of the Bonn conformer runs (mean over runs)."""
    runs = [r["transfer"] for r in groups.get(("bonn", "conformer"), []) if r.get("transfer")]
    if not runs:
        return []
    lines = ["## Transfer check: the Bonn model on the CHB-MIT crops", "",
             "| crop | windows | mean p(seizure) | largest p(seizure) | windows above 0.5 |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for crop in runs[0]:
        values = [run[crop] for run in runs]
        lines.append(f"| {crop} | {values[0]['n_windows']} | "
                     f"{mean_sd([v['mean'] for v in values])} | "
                     f"{mean_sd([v['max'] for v in values])} | "
                     f"{mean_sd([v['share_above_0.5'] for v in values])} |")  # fmt: skip
    return [*lines, ""]


def write_report(records: Sequence[Mapping[str, Any]], plan: TablePlan, command: str,
                 doc: Path, started: float, notes: Sequence[str] = ()) -> Path:  # fmt: skip
    """Write ``doc`` (Markdown) and, when the plan has frontier datasets, its figure
    ``<doc stem>_frontier.png`` beside it."""
    groups = by_key(records)
    variants = [*plan.variants, *(v for v in FRONTIER if v not in plan.variants)]
    done = {(r["dataset"], r["variant"], r["seed"], r["fold"]) for r in records}
    planned = list(plan.runs())
    missing = [f"{s.name} / {v.name} seed {seed} fold {fold}" for s, v, seed, fold in planned
               if (s.name, v.name, seed, fold) not in done]  # fmt: skip
    if missing:
        notes = [*notes, "", f"**Incomplete**: {len(missing)} of {len(planned)} "
                 "runs of this plan are not recorded yet (the command was stopped; run it again "
                 "to finish them, the recorded runs are kept): " + "; ".join(missing) + "."]  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    run_minutes = sum(r.get("duration_s") or 0.0 for r in records) / 60
    lines = [
        "# Results on real recordings", "",
        f"Produced by `{command}` on {now:%Y-%m-%d %H:%M} UTC; this call took "
        f"{(now.timestamp() - started) / 60:.1f} min (runs recorded by an earlier call are "
        f"reused), and the {len(records)} recorded runs trained and tested for "
        f"{run_minutes:.1f} min in all ({_minutes_per_dataset(records)}).",
        f"Machine: {machine()}.", "",
        f"Models other than the recipes' defaults are trained for at most {plan.epochs} "
        f"epoch(s) (size {plan.size}, the "
        "recipe's early stopping and model selection on validation) through the run path of "
        f"`python -m neurodecode.train`, seeds {', '.join(map(str, plan.seeds))}, up to "
        f"{plan.folds} fold(s) per dataset. Accuracy is mean ± sd over seeds × folds; Δ is the model's test "
        "accuracy minus the baseline's on the same split, with a paired test across those "
        "splits (exact sign-flip up to 20 pairs, else Wilcoxon); each run's `results.json` "
        "also holds McNemar's exact test on its identical test trials.", "", *notes, "",
        *how_it_was_run(plan), "## Models against the classical baselines", "",
    ]  # fmt: skip
    for name in plan.datasets:
        lines += dataset_table(name, groups, variants)
    panels = {n: frontier_rows(n, groups) for n in plan.frontier}
    panels = {n: rows for n, rows in panels.items() if rows}
    if panels:
        figure = doc.with_name(f"{doc.stem}_frontier.png")
        best = {n: _best_baseline(n, groups) for n in panels}
        frontier_figure(panels, {n: v for n, v in best.items() if v is not None}, figure)
        lines += ["## Energy–accuracy frontier", "", f"![accuracy against energy]({figure.name})",
                  "", *ENERGY_NOTE, ""]  # fmt: skip
        for name, rows in panels.items():
            lines += frontier_table(name, rows)
    lines += transfer_lines(groups)
    write_atomic(doc, "\n".join(lines).rstrip() + "\n")
    return doc


def _minutes_per_dataset(records: Sequence[Mapping[str, Any]]) -> str:
    """``bonn 1.1, graz 0.4 min per run``: the budget a plan needs, measured."""
    per: dict[str, list[float]] = defaultdict(list)
    for r in records:
        per[r["dataset"]].append(r.get("duration_s") or 0.0)
    return ", ".join(f"{k} {np.mean(v) / 60:.1f}" for k, v in per.items()) + " min per run"


#: A row that is no recipe's default: the overrides the cheaper rows get.
OTHER_ROW = Variant("other", "a model with size presets")


def how_it_was_run(plan: TablePlan) -> list[str]:
    """The overrides of each dataset, and how the pretrained, INT8 and transfer rows come."""
    lines = ["## How each dataset is run", ""]
    for name in plan.datasets:
        spec = DATASETS[name]
        cheaper = " ".join(plan.epochs_of(spec, OTHER_ROW))
        lines.append(f"- {spec.title}: `python -m neurodecode.train {' '.join(spec.overrides)}"
                     f" baseline=[{','.join(spec.baselines)}] model=<model> [{cheaper}] seed=<seed> "
                     f"data.datamodule.fold=<fold>`; the fine-tuned model starts from "
                     f"`recipe=pretrain` on {spec.pretrain} alone ({plan.pretrain_steps} "
                     "steps, labels unused, all of its recordings).")  # fmt: skip
    int8 = ("`neurodecode.models.quantize.quantize_int8` (convolutions static, linear layers "
            "dynamic; its energy counts what it executes, INT8 where it is INT8)")  # fmt: skip
    lines += [
        "- `model=<model>` is each row's model: `dual_branch_conformer` (the seizure recipe's "
        "default), `log_variance_net` (the motor-imagery recipe's default), `spiking`. The "
        "row of each recipe's default model runs with the recipe's own model size and epochs "
        "(no bracketed overrides); the other rows, cheaper, with the bracketed ones "
        "(`model.size` only for models with size presets).",
        "- The spiking rows are `model=spiking` with `model.time_steps` and `model.encoding`; "
        f"the frontier's extra spiking rows run on {plan.frontier_folds} fold(s) only.",
        f"- INT8: the trained analog model after post-training quantization with {int8}.",
        *_limited_rows(plan),
        "- Transfer check: each bipolar channel of the two CHB-MIT crops (chb01_03, 41 s "
        "each) is preprocessed as a Bonn segment with the run's own config and scored by the "
        "Bonn conformer alone; a window's probability is its largest over channels.", "",
    ]  # fmt: skip
    return lines


def _limited_rows(plan: TablePlan) -> list[str]:
    """One line per row that runs on some datasets or seeds only: where, and its overrides."""
    lines = []
    for v in plan.variants:
        if v.default_on or not (v.seeds or v.datasets):
            continue
        where = ", ".join(v.datasets) or "every dataset"
        seeds = f"seed {', '.join(map(str, v.seeds))}" if v.seeds else "every seed"
        start = "; fine-tuned from the pretraining run" if v.pretrained else ""
        lines.append(f"- {v.title}: `{' '.join(v.overrides)}` on {where}, {seeds}{start}.")
    return lines


def _best_baseline(name: str, groups: Mapping[tuple[str, str], list[Mapping[str, Any]]]
                   ) -> float | None:  # fmt: skip
    conformer = groups.get((name, "conformer"), [])
    means = [np.mean(list(s.values())) for b in DATASETS[name].baselines
             if (s := baseline_scores(conformer, b))]  # fmt: skip
    return float(max(means)) if means else None


ENERGY_NOTE = (
    "Energy per window is counted by `neurodecode.models.energy` on the trained model over "
    "the first test windows: fp32 and int8 are compute only (45 nm, Horowitz 2014), +sram "
    "adds the memory traffic at 5 pJ per 32-bit word, lemaire is the Lemaire et al. (2022) "
    "model with memory cost growing with buffer size. The INT8 row is the analog model after "
    "post-training quantization, scored on the same test windows; its energy counts what it "
    "executes (its convolutions and linear layers in INT8 at 0.23 pJ per MAC and 1-byte "
    "words, the rest in float), so under the float cost models too. The analog rows are the "
    "dual-branch conformer rows of the tables above: where that conformer is the recipe's "
    "default (Bonn) it has the recipe's size (small) and epochs, while the spiking rows keep "
    "the plan's size (tiny), so there the energies differ by size as well as by neuron.",
)


def make_results(plan: TablePlan, out: Path, doc: Path, shared: Path, command: str,
                 notes: Sequence[str] = ()) -> Path:  # fmt: skip
    """Run what ``plan`` still lacks in ``out`` (:func:`run_table`), then write ``doc``."""
    started = dt.datetime.now(dt.UTC).timestamp()
    records, failures = run_table(plan, out, shared)
    if failures:
        notes = [*notes, "", "Runs that failed (not in the table; the command retries them):", "",
                 *(f"- {line}" for line in failures)]  # fmt: skip
    return write_report(records, plan, command, doc, started, notes)
