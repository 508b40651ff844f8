"""``neurodecode benchmark energy model=spiking data=<file or dataset> [key=value ...]`` and
``neurodecode benchmark results [quick=true] [key=value ...]``.

The counting itself is :mod:`neurodecode.models.energy`; this module finds the windows. The
real-data table is :mod:`neurodecode.run.results_table` (runs) and
:mod:`neurodecode.run.results_report` (``docs/results.md``).
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from neurodecode.cli import SUMMARIES
from neurodecode.cli.options import Command, Option, check_choice, commands_usage, run_command
from neurodecode.data.io import read_recording
from neurodecode.data.prepare import prepare_dataset
from neurodecode.errors import NeurodecodeError
from neurodecode.jsonio import dumps, write_json
from neurodecode.models import energy
from neurodecode.models.quantize import agreement, quantize_int8
from neurodecode.registry import MODELS
from neurodecode.run.results_report import make_results
from neurodecode.run.results_table import DATASETS, FRONTIER, FULL_PLAN, QUICK_PLAN

SUMMARY = SUMMARIES["benchmark"]

logger = logging.getLogger(__name__)


def recording_windows(path: Path, window_s: float, n_windows: int, batch_size: int
                      ) -> tuple[list[Tensor], dict[str, Any]]:  # fmt: skip
    """Consecutive windows of a recording file, each channel scaled by its standard deviation.

    Returns the batches and the signal arguments (``n_chans``, ``n_times``, ``sfreq``) to
    build models for them.
    """
    recording = read_recording(path)
    eeg = [i for i, kind in enumerate(recording.ch_types) if kind in ("eeg", "seeg", "ecog")]
    signal = torch.as_tensor(recording.signal[eeg] if eeg else recording.signal)
    signal = signal / signal.std(dim=1, keepdim=True).clamp_min(1e-12)
    n_times = round(window_s * recording.sfreq)
    available = signal.shape[1] // n_times
    if available < 1:
        raise NeurodecodeError(
            f"recording is {recording.duration:.1f} s long, shorter than one {window_s} s window",
            path=path,
            hint="use a smaller window_s",
        )
    windows = signal[:, : available * n_times].reshape(signal.shape[0], available, n_times)
    windows = windows.transpose(0, 1)[:n_windows].contiguous().float()
    batches = list(windows.split(batch_size))
    return batches, {"n_chans": windows.shape[1], "n_times": n_times, "sfreq": recording.sfreq}


def dataset_windows(name: str, n_windows: int, batch_size: int
                    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """The first ``n_windows`` windows of a prepared dataset's cache, as batch dicts."""
    cache = prepare_dataset(name, [])
    subset = Subset(cache, range(min(n_windows, len(cache))))
    keys = ("x", "ch_pos", "ch_mask")
    batches = [
        {key: batch[key] for key in keys}
        for batch in DataLoader(subset, batch_size=batch_size)  # type: ignore[arg-type]
    ]
    signal = {"n_chans": len(cache.ch_names), "n_times": cache.n_times, "sfreq": cache.sfreq}
    return batches, signal


ENERGY_OPTIONS = (
    Option("data", required=True, help="recording file, or dataset name (its window cache)"),
    Option(
        "model",
        default="spiking",
        choices=(*energy.MODEL_ALIASES, *MODELS.names()),
        help="measured next to its analog or spiking counterpart",
    ),
    Option("n_windows", int, default=32, help="windows measured"),
    Option("window_s", float, default=4.0, help="window length of a recording file, s"),
    Option("batch_size", int, default=16, help="windows per forward pass"),
    Option("size", default="small", help="model size"),
    Option("time_steps", int, help="time steps of the spiking model"),
    Option("encoding", choices=("direct", "delta"), help="input encoding of the spiking model"),
    Option("cost_model", choices=tuple(energy.COST_MODELS), help="one cost model (default: all)"),
    Option("quantize", choices=("int8",), help="also measure the analog model quantized to INT8"),
    Option("out", help="JSON file for the reports; without it, they are printed"),
)


def int8_report(model: str, batches: list[Any], signal: dict[str, Any], arch: dict[str, Any]
                ) -> tuple[energy.EnergyReport, float]:  # fmt: skip
    """The analog model of ``model`` quantized to INT8 on ``batches``: its report, and the
    share of windows on which it predicts the class its FP32 model predicts."""
    analog = energy.model_names(model)[0]
    fp32 = energy.build_calibrated(analog, batches, signal, **arch)
    int8 = quantize_int8(fp32, batches)
    return energy.measure(int8, batches, f"{analog} int8"), agreement(fp32, int8, batches)


def energy_report(args: dict[str, Any]) -> int:
    """Measure the model and its counterpart; print the tables; write or print the JSON."""
    data = Path(args["data"])
    if data.exists():
        batches, signal = recording_windows(
            data, args["window_s"], args["n_windows"], args["batch_size"]
        )
    else:
        batches, signal = dataset_windows(args["data"], args["n_windows"], args["batch_size"])
    arch = {key: args[key] for key in ("size", "time_steps", "encoding") if key in args}
    reports = energy.compare(args["model"], batches, signal, **arch)
    extra: dict[str, Any] = {}
    if "quantize" in args:
        report, extra["int8_agreement"] = int8_report(args["model"], batches, signal, arch)
        reports.insert(1, report)
    cost_models = [args["cost_model"]] if "cost_model" in args else list(energy.COST_MODELS)
    print(energy.format_table(reports))
    print("\nEnergy per window under each cost model:\n")
    print(energy.format_energy_table(reports, cost_models))
    for report in reports:
        if report.firing_rates:
            print(f"\nFiring rates, {report.model}:\n" + energy.format_firing_rates(report))
        if report.int8_layers:
            print(f"\nPrecision per layer, {report.model} (float: the cost model's precision):\n"
                  + energy.format_precisions(report))  # fmt: skip
    if extra:
        print(f"\nINT8 predicts the FP32 model's class on {extra['int8_agreement']:.1%} of "
              f"the {reports[0].n_samples} windows")  # fmt: skip
    result = {
        "data": args["data"],
        "signal": signal,
        "reports": [r.to_dict(cost_models) for r in reports],
    } | extra
    if "out" in args:
        write_json(args["out"], result)
        logger.info("wrote %s", args["out"])
    else:
        print(dumps(result))
    return 0


RESULTS_OPTIONS = (
    Option("quick", bool, default=False,
           help="one seed, one fold, one epoch on the smallest dataset (a check, not a result)"),
    Option("out", default="runs/results-table",
           help="folder of the per-run records (a finished run is never run again) and runs"),
    Option("doc", default="docs/results.md", help="the Markdown report (and its figure beside it)"),
    Option("shared", default="../shared/data", help="the real recordings (mirror/, excerpts/)"),
    Option("datasets", object, help=f"a list among {', '.join(DATASETS)} (default: all)"),
    Option("seeds", int, help="number of seeds, 0 to seeds - 1 (default: 3; quick: 1)"),
    Option("folds", int, help="folds per dataset at most (default: 5; quick: 1)"),
    Option("epochs", int, help="training epochs of every model (default: 10; quick: 1)"),
    Option("epoch_caps", object, help="fewer epochs on some datasets (default: {bonn: 3})"),
    Option("rows", object, help="run only these rows (model names of docs/results.md's "
           "records, e.g. [labram,conformer_lora]; default: all)"),
    Option("frontier", object,
           help="datasets that get the spiking frontier rows (default: [bonn,eegmmidb_lr])"),
)  # fmt: skip


def results_table(args: dict[str, Any]) -> int:
    """Train every model on every real dataset beside the baselines; write docs/results.md."""
    plan = QUICK_PLAN if args["quick"] else FULL_PLAN
    changes: dict[str, Any] = {k: args[k] for k in ("folds", "epochs") if k in args}
    if "epoch_caps" in args:
        changes["epoch_caps"] = tuple((str(k), int(v)) for k, v in args["epoch_caps"].items())
    if "seeds" in args:
        changes["seeds"] = tuple(range(args["seeds"]))
    if "rows" in args:
        known = [v.name for v in (*plan.variants, *FRONTIER)]
        for name in map(str, args["rows"]):
            check_choice("rows", name, known, "neurodecode benchmark results")
        changes["rows"] = tuple(map(str, args["rows"]))
    for key in ("datasets", "frontier"):
        if key in args:
            chosen = [str(name) for name in args[key]]
            for name in chosen:
                check_choice(key, name, DATASETS, "neurodecode benchmark results")
            changes[key] = tuple(chosen)
    plan = dataclasses.replace(plan, **changes)
    given = [shlex.quote(f"{k}={word(v)}") for k, v in args.items() if v != RESULTS_DEFAULTS.get(k)]
    command = " ".join(["neurodecode benchmark results", *given])
    doc = make_results(plan, Path(args["out"]), Path(args["doc"]), Path(args["shared"]), command)
    logger.info("wrote %s", doc)
    return 0


def word(value: Any) -> str:
    """A parsed option value as it is typed: ``[a,b]``, ``{bonn: 1}``, ``true``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(map(word, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {word(v)}" for k, v in value.items()) + "}"
    return str(value)


RESULTS_DEFAULTS = {option.name: option.default for option in RESULTS_OPTIONS}
COMMANDS: dict[str, Command] = {
    "energy": (energy_report, ENERGY_OPTIONS),
    "results": (results_table, RESULTS_OPTIONS),
}


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode benchmark") -> int:
    """Run one benchmark; return the process exit status."""
    lines = commands_usage(prog, SUMMARY, COMMANDS)
    lines.append(
        "energy counts, over real EEG windows, the operations and energy of a model next to "
        "its\nanalog or spiking counterpart (same size, same windows). data is a recording "
        "file\n(consecutive windows, each channel scaled by its standard deviation) or a "
        "dataset name\n(the first windows of its prepared cache). The energy is given under every "
        "cost model\n(cost_model=<name> picks one): " + ", ".join(energy.COST_MODELS) + ".\n"
        "quantize=int8 adds the analog model quantized to INT8 (convolutions static, linear "
        "layers\ndynamic; calibrated on the same windows), its layers' precisions, and how "
        "often it predicts\nthe FP32 model's class."
    )
    lines.append(
        "\nresults trains every model (dual-branch conformer, its spiking variants, the "
        "pretrained\nencoder fine-tuned) on every real dataset of shared= beside the classical "
        "baselines on\nthe same splits, through the run path of neurodecode.train, and writes "
        "doc= with paired\ntests, energy per window and the transfer check. Each finished run "
        "is a record in\nout=/records: an interrupted table resumes where it stopped."
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(argv, COMMANDS, prog, "\n".join(lines))
