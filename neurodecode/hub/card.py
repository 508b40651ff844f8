"""The model card (``README.md``): Hub metadata in YAML front matter, then plain text.

Everything in the card comes from ``config.json`` (see :mod:`neurodecode.hub.export`), so a
card can always be rebuilt from an exported folder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import yaml

from neurodecode import jsonio

MEDICAL_DISCLAIMER = (
    "**This is research software, not a medical device.** It has not been cleared or "
    "approved by any regulator, must not be used to diagnose, monitor or treat anyone, and "
    "its detections must not replace review of the EEG by a qualified clinician."
)


SIMULATED_WARNING = (
    "WARNING: THIS MODEL WAS TRAINED ONLY ON SIMULATED EEG.",
    "It has never seen a real recording: its detections on real EEG, and the",
    "probabilities it gives them, mean nothing clinically. Use a model trained on",
    "real recordings of this montage for anything but testing the software.",
)


def simulated_warning(provenance: Mapping[str, Any] | None) -> list[str]:
    """The lines of the simulated-data warning when ``provenance`` says the model saw only
    simulated data; no lines otherwise."""
    return list(SIMULATED_WARNING) if (provenance or {}).get("simulated_only") else []


def boxed(lines: list[str]) -> str:
    """``lines`` framed in a box of ``#`` that no reader scrolls past unseen."""
    width = max(len(line) for line in lines)
    rule = "#" * (width + 6)
    return "\n".join([rule, *(f"## {line:<{width}} ##" for line in lines), rule])


def provenance_lines(provenance: Mapping[str, Any] | None) -> list[str]:
    """Plain-words lines saying what a model was trained, selected and tested on."""
    provenance = provenance or {}
    if not provenance:
        return ["Training data: not recorded with this model (unknown)."]
    datasets = ", ".join(str(d) for d in provenance.get("datasets") or []) or "not recorded"
    lines = [f"Training data: {datasets} ({provenance.get('kind', 'unknown')} recordings)"
             + (f", montage {provenance['montage']}" if provenance.get("montage") else "")
             + "."]  # fmt: skip
    for part, name in (("train", "trained on"), ("valid", "selected on"), ("test", "tested on")):
        info = (provenance.get("parts") or {}).get(part)
        if info:
            lines.append(f"  {name}: {_part_words(info)}")
    if provenance.get("recorded") is False or provenance.get("recorded_by_task") is False:
        lines.append("  (inferred from the dataset name: the checkpoint recorded no provenance)")
    selection = provenance.get("selection") or {}
    if selection:
        lines.append(f"Checkpoint and threshold chosen on validation {selection.get('criterion')}"
                     + (f" (budget {selection['fa_per_24h']:g} false alarms per 24 h)"
                        if selection.get("fa_per_24h") is not None else "") + ".")  # fmt: skip
    calibration = provenance.get("calibration") or {}
    if calibration.get("temperature") is not None:
        lines.append(f"Calibration (fitted on validation): temperature "
                     f"{calibration['temperature']:.3g}, threshold {calibration['threshold']:.3g}.")  # fmt: skip
    test = provenance.get("test_event_scores") or {}
    if test:
        lines.append(_test_words(test))
    return lines


def _part_words(info: Mapping[str, Any]) -> str:
    subjects = info.get("subjects")
    words = [f"{len(subjects)} subject(s)" if subjects is not None else "subjects unknown"]
    if info.get("n_recordings") is not None:
        words.append(f"{info['n_recordings']} recording(s)")
    if info.get("hours") is not None:
        words.append(f"{info['hours']:.2f} h")
    if info.get("n_seizures") is not None:
        words.append(f"{info['n_seizures']} annotated seizure event(s)")
    return ", ".join(words)


def _test_words(test: Mapping[str, Any]) -> str:
    def number(key: str) -> str:
        value = test.get(key)
        return "n/a" if value is None else f"{value:.3g}"

    words = (f"Test (SzCORE events, pooled over {test.get('n_seizures', '?')} seizure(s) of "
             f"{test.get('n_subjects', '?')} subject(s), {test.get('hours', 0.0):.2f} h): "
             f"sensitivity {number('sensitivity')}, precision {number('precision')}, "
             f"F1 {number('f1')}, false positives per 24 h {number('fp_per_24h')}")  # fmt: skip
    if test.get("fp_per_24h_extrapolated"):
        words += " (extrapolated from under an hour)"
    return words + "."


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a (nested) metrics mapping as ``{"a.b": value}``; others dropped."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, prefix=f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                flat[name] = float(value)
    return flat


#: Metrics worth a place in the Hub's ``model-index`` (the card's table lists all of them).
HEADLINE_METRICS = (
    "accuracy", "balanced_accuracy", "kappa", "roc_auc", "f1", "sensitivity", "precision",
    "specificity", "fp_per_24h", "top1", "top5",
)  # fmt: skip


def headline_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Flattened test metrics (``test.*`` when present) whose last name is a headline one."""
    flat = flatten_metrics(metrics)
    if any(name.startswith("test.") for name in flat):
        flat = {name: value for name, value in flat.items() if name.startswith("test.")}
    return {name: v for name, v in flat.items() if name.rsplit(".", 1)[-1] in HEADLINE_METRICS}


def is_seizure_model(config: Mapping[str, Any]) -> bool:
    """Whether the model detects seizures (its task or one of its labels says so)."""
    words = [str(config.get("task") or "")] + [str(x) for x in config.get("labels") or []]
    return any("seiz" in word.lower() or "ictal" in word.lower() for word in words)


def card_metadata(config: Mapping[str, Any]) -> dict[str, Any]:
    """The Hub metadata (YAML front matter) for an exported model's ``config``."""
    card = config.get("card") or {}
    arch = config["model"]["_target_"]
    task, dataset = config.get("task"), config.get("dataset")
    datasets = list(card.get("datasets") or ([dataset] if dataset else []))
    tags = ["neurodecode", "eeg", "brain-decoding", arch]
    tags += [t for t in (task, *(card.get("tags") or [])) if t and t not in tags]
    if is_seizure_model(config):
        tags.append("research-only")
    metrics = headline_metrics(config.get("metrics") or {})
    meta: dict[str, Any] = {
        "library_name": "neurodecode",
        "license": card.get("license") or "other",
        "tags": tags,
    }
    if datasets:
        meta["datasets"] = datasets
    if metrics:
        meta["metrics"] = sorted({name.rsplit(".", 1)[-1] for name in metrics})
    if metrics and dataset:
        meta["model-index"] = [
            {
                "name": card.get("name") or arch,
                "results": [
                    {
                        "task": {"type": task or "eeg-decoding", "name": task or "EEG decoding"},
                        "dataset": {"type": dataset, "name": dataset},
                        "metrics": [
                            {"type": name.rsplit(".", 1)[-1], "name": name, "value": value}
                            for name, value in metrics.items()
                        ],
                    }
                ],
            }
        ]
    return meta


def render_card(config: Mapping[str, Any]) -> str:
    """The full ``README.md`` text for an exported model's ``config``."""
    card = config.get("card") or {}
    arch = config["model"]
    name = card.get("name") or arch["_target_"]
    lines = ["---", yaml.safe_dump(card_metadata(config), sort_keys=False).rstrip(), "---", ""]
    lines += [f"# {name}", ""]
    lines += [
        card.get("description")
        or (
            f"A `{arch['_target_']}` model exported by neurodecode "
            f"{config.get('neurodecode_version', '')}"
            + (f", trained for {config['task']}" if config.get("task") else "")
            + (f" on {config['dataset']}" if config.get("dataset") else "")
            + "."
        ),
        "",
    ]
    if is_seizure_model(config):
        lines += [MEDICAL_DISCLAIMER, ""]

    lines += _input_section(config)
    lines += _provenance_section(config)
    lines += _results_section(config)
    lines += _use_sections(card)
    lines += _architecture_section(arch, card)
    return "\n".join(lines)


def _input_section(config: Mapping[str, Any]) -> list[str]:
    """Channels, rate, window, units, outputs and the preprocessing to replay."""
    signal = config["signal"]
    lines = ["## Input (signal contract)", ""]
    lines += [
        f"- {len(signal['ch_names'])} channels, in this order: {', '.join(signal['ch_names'])}",
        f"- sampling rate: {signal['sfreq']:g} Hz",
        f"- window: {signal['n_times']} samples ({signal['n_times'] / signal['sfreq']:g} s)",
        f"- input units: {signal.get('units') or 'not recorded'}",
        "- channel positions: "
        + ("stored in `config.json` (metres)" if signal.get("ch_pos") else "not stored"),
    ]
    if config.get("labels"):
        lines.append(f"- outputs: {', '.join(config['labels'])}")
    preprocessing = config.get("preprocessing")
    lines += ["", "Preprocessing applied to the training data (replay it before predicting):", ""]
    lines += (
        ["```yaml", yaml.safe_dump(preprocessing, sort_keys=False).rstrip(), "```"]
        if preprocessing
        else ["not recorded"]
    )
    return lines


def _provenance_section(config: Mapping[str, Any]) -> list[str]:
    """What the model was trained, selected and tested on; the simulated-data warning."""
    provenance = config.get("provenance") or {}
    if not provenance:
        return []
    lines = ["", "## Training data, selection and calibration", ""]
    warning = simulated_warning(provenance)
    if warning:
        lines += [f"> **{warning[0]}** " + " ".join(warning[1:]), ""]
    return lines + [f"- {line.strip()}" for line in provenance_lines(provenance)]


def _results_section(config: Mapping[str, Any]) -> list[str]:
    """The recorded metrics as a table."""
    metrics = flatten_metrics(config.get("metrics") or {})
    lines = ["", "## Results", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4g} |" for key, value in metrics.items()]
    else:
        lines.append("No evaluation results were recorded with this model.")
    return lines


def _use_sections(card: Mapping[str, Any]) -> list[str]:
    """Intended use and limitations (the publisher's, else neutral defaults)."""
    lines = ["", "## Intended use", ""]
    lines.append(
        card.get("intended_use")
        or (
            "Research on EEG decoding: reproducing the reported results, fine-tuning on new "
            "recordings with the same montage, and comparing methods."
        )
    )
    lines += ["", "## Limitations", ""]
    lines.append(
        card.get("limitations")
        or (
            "Trained on a limited number of subjects and recording sites; performance on other "
            "montages, sampling rates, amplifiers, populations or preprocessing is unknown. "
            "Inputs must match the signal contract above (neurodecode checks it when loading)."
        )
    )
    return lines


def _architecture_section(arch: Mapping[str, Any], card: Mapping[str, Any]) -> list[str]:
    """Architecture arguments, how to load, provenance, licence and citation."""
    arguments = {k: v for k, v in arch.items() if k not in ("_target_", "chs_info")}
    lines = ["", "## Architecture", "", f"`{arch['_target_']}` with arguments:", "", "```json"]
    lines += [jsonio.dumps(arguments), "```"]
    lines += [
        "",
        "## How to load",
        "",
        "```python",
        "import neurodecode",
        "from neurodecode.hub import check_contract",
        "",
        'pretrained = neurodecode.from_pretrained("<org/name>")  # or a local folder',
        "model = pretrained.model  # eval mode, weights loaded",
        "check_contract(pretrained, ch_names=..., sfreq=..., n_times=...)  # before predicting",
        "```",
        "",
    ]
    run = card.get("run") or {}
    if run:
        lines += ["Trained by `python -m neurodecode.train`: "
                  + ", ".join(f"{key} `{value}`" for key, value in run.items() if value is not None)
                  + ".", ""]  # fmt: skip
    license_note = card.get("license") or "not stated by the publisher (check the datasets' terms)"
    lines += [f"Licence of these weights: {license_note}.", ""]
    if card.get("citation"):
        lines += ["## Citation", "", "```bibtex", str(card["citation"]).strip(), "```", ""]
    return lines
