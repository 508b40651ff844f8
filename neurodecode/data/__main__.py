"""``python -m neurodecode.data <command> ...``: fetch, inspect and prepare datasets.

Arguments after the command are ``key=value`` overrides in Hydra's syntax, for example
``python -m neurodecode.data fetch eegmmidb subjects=[1] runs=[4,8,12]``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from neurodecode.errors import NeurodecodeError

# command → (module, function, one-line help). Each function takes the parsed namespace.
_COMMANDS = {
    "fetch": ("neurodecode.data.fetch", "fetch_command", "download and verify a dataset's files"),
    "info": ("neurodecode.data.io", "info_command", "describe a recording and flag anything odd"),
    "prepare": (
        "neurodecode.data.prepare",
        "prepare_command",
        "preprocess a dataset into the on-disk window cache",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser with one sub-command per data operation."""
    parser = argparse.ArgumentParser(
        prog="python -m neurodecode.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (_, _, help_text) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("target", help="dataset name (fetch, prepare) or file path (info)")
        p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. subjects=[1,2]")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one data command; return the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    module, function, _ = _COMMANDS[args.command]
    try:
        return int(getattr(importlib.import_module(module), function)(args) or 0)
    except NeurodecodeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
