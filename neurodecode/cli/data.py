"""``neurodecode data <fetch|info|prepare> <dataset or file> [key=value ...]``."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

from neurodecode.cli.options import pick, report_errors, setup_logging, split_overrides, wants_help
from neurodecode.data.cache import prepare_command
from neurodecode.data.fetch import fetch_command
from neurodecode.data.io import info_command
from neurodecode.errors import ConfigError

SUMMARY = "fetch, describe and prepare datasets"

# command → (function taking .target and .overrides, what it needs, its keys in plain words)
COMMANDS: dict[str, tuple[Callable[[Any], int], str, str]] = {
    "fetch": (
        fetch_command,
        "<dataset>",
        "download and verify a dataset's files. Keys: subjects=[..], sessions=[..], "
        "runs=[..], mirror=<URL or folder>, root=<folder of a local copy>, retries=<n>, "
        "generator_params.<name>=<value> (generated datasets), and any named group of the "
        "manifest's recording pattern as a filter, e.g. split=[eval]",
    ),
    "info": (
        info_command,
        "<file>",
        "describe a recording and flag anything odd. Keys: annotation_format=, "
        "annotation_path=, subject=, session=, run=",
    ),
    "prepare": (
        prepare_command,
        "<dataset>",
        "preprocess a dataset into the on-disk window cache (fetching it first). Keys: "
        "preprocess=<configs/preprocess name>, subjects=[..], sessions=[..], runs=[..], "
        "num_workers=<n>, cache_dir=<folder>, rebuild=true, and any preprocessing key, "
        "e.g. bandpass.h_freq=30",
    ),
}


def usage(prog: str) -> str:
    """``--help``: each command, what it takes, and its keys."""
    lines = [f"usage: {prog} <command> <dataset or file> [key=value ...]", "", SUMMARY + ":"]
    for name, (_, target, text) in COMMANDS.items():
        lines += ["", f"{prog} {name} {target} [key=value ...]"]
        lines.append(textwrap.fill(text + ".", 92, initial_indent="  ", subsequent_indent="  "))
    lines += ["", f"example: {prog} fetch eegmmidb subjects=[1] runs=[4,8,12]"]
    return "\n".join(lines)


def run(argv: list[str], prog: str) -> int:
    """Check the words, then run the command they name."""
    command, target, _ = pick(argv[0], COMMANDS, prog)
    if len(argv) < 2 or "=" in argv[1]:
        raise ConfigError(f"{prog} {argv[0]}: the first argument must be the {target}",
                          hint=f"{prog} {argv[0]} {target} [key=value ...]")  # fmt: skip
    split_overrides(argv[2:], f"{prog} {argv[0]}")
    return int(command(SimpleNamespace(target=argv[1], overrides=argv[2:])) or 0)


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode data") -> int:
    """Run one data command; return the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or wants_help(argv):
        print(usage(prog))
        return 0 if argv else 2
    setup_logging()
    return report_errors(lambda: run(argv, prog))
