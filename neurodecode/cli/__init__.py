"""The ``neurodecode`` command: one entry point, one ``key=value`` style for every job.

``neurodecode <command> ...`` (or ``python -m neurodecode <command> ...``) runs one of
:data:`COMMANDS`; ``python -m neurodecode.train|predict|data|hub ...`` run the same code.
Arguments are ``key=value`` words (:mod:`neurodecode.cli.options`); ``train`` reads them
with Hydra.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from neurodecode.cli import benchmark, data, hub, predict, train
from neurodecode.cli.options import pick, report_errors, wants_help

# command → (its main(argv, prog), one line for --help)
COMMANDS: dict[str, tuple[Callable[..., int], str]] = {
    "train": (train.main, train.SUMMARY),
    "predict": (predict.main, predict.SUMMARY),
    "data": (data.main, data.SUMMARY),
    "hub": (hub.main, hub.SUMMARY),
    "benchmark": (benchmark.main, benchmark.SUMMARY),
}


def usage() -> str:
    """``neurodecode --help``: the commands, one line each, and how to read more."""
    lines = ["usage: neurodecode <command> [key=value ...]", "", "commands:"]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in COMMANDS.items()]
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
    if argv[0] not in COMMANDS:  # refused with the closest command names
        return report_errors(lambda: pick(argv[0], COMMANDS, "neurodecode"), config_status=2)
    command, _ = COMMANDS[argv[0]]
    return command(argv[1:], prog=f"neurodecode {argv[0]}")
