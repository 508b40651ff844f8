"""The ``neurodecode`` command: one entry point, one ``key=value`` style for every job.

``neurodecode <command> ...`` (or ``python -m neurodecode <command> ...``) runs one of
:data:`SUMMARIES`; ``python -m neurodecode.train|predict|data|hub ...`` run the same code.
Arguments are ``key=value`` words (:mod:`neurodecode.cli.options`); ``train`` reads them
with Hydra.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from neurodecode.cli.options import pick, report_errors, wants_help

# command → one line for --help. Each command is the module ``neurodecode.cli.<command>``
# with ``main(argv, prog)``, imported only when it runs: ``neurodecode --help`` then
# answers without importing torch, MNE and Lightning.
SUMMARIES: dict[str, str] = {
    "train": "train and evaluate a recipe (Hydra overrides: recipe=seizure model=spiking ...)",
    "predict": "detect seizures in recordings with a trained model",
    "data": "fetch, describe and prepare datasets",
    "hub": "export a trained model, publish it on the Hugging Face Hub, or fetch one",
    "benchmark": "measure models: operation counts and energy of analog and spiking encoders",
    "score": "score detected seizure events against reference ones, as SzCORE does",
    "szcore": "the entry point of an SzCORE benchmark container (INPUT/OUTPUT from the environment)",
}


def usage() -> str:
    """``neurodecode --help``: the commands, one line each, and how to read more."""
    lines = ["usage: neurodecode <command> [key=value ...]", "", "commands:"]
    lines += [f"  {name:<10} {summary}" for name, summary in SUMMARIES.items()]
    lines += [
        "",
        "Every command takes its settings as key=value words, e.g.",
        "  neurodecode train recipe=seizure data=simulated trainer.max_epochs=3",
        "  neurodecode predict checkpoint=my-lab/seizure-dbc input=patient.edf output=out/",
        "`neurodecode <command> --help` lists a command's keys. `python -m neurodecode ...`",
        "works the same without the installed script.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``neurodecode <command> ...``; return the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or wants_help(argv[:1]):
        print(usage())
        return 0 if argv else 2
    if argv[0] not in SUMMARIES:  # refused with the closest command names
        return report_errors(lambda: pick(argv[0], SUMMARIES, "neurodecode"), config_status=2)
    command = importlib.import_module(f"neurodecode.cli.{argv[0]}")
    return command.main(argv[1:], prog=f"neurodecode {argv[0]}")
