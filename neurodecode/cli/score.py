"""``neurodecode score reference=<folder> hypothesis=<folder> [output=<file.json>]``.

Scores detections the SzCORE way: every ``sub-*/**/*_events.tsv`` below ``reference``
against the file at the same path below ``hypothesis`` (none: no detections), with
``timescoring`` event scoring (30 s before / 60 s after tolerance, events over 300 s split,
events closer than 90 s merged) and sample scoring at 1 Hz, per subject and pooled. The
numbers equal those of SzCORE's reference package ``szcore-evaluation`` on the same files.
Prints the scores as JSON; ``output`` also writes them to a file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from neurodecode.cli.options import (
    Option,
    describe_options,
    parse_options,
    report_errors,
    setup_logging,
    usage_line,
    wants_help,
)
from neurodecode.evaluation.seizure import score_event_files
from neurodecode.jsonio import dumps, write_json

OPTIONS = (
    Option("reference", required=True, help="folder of reference *_events.tsv (BIDS: sub-*/...)"),
    Option("hypothesis", required=True, help="folder of detected *_events.tsv, same layout"),
    Option("output", help="also write the scores to this JSON file"),
)


def run(args: dict[str, Any]) -> int:
    """Score the hypothesis folder against the reference folder; print JSON."""
    scores = score_event_files(args["reference"], args["hypothesis"])
    if args.get("output"):
        write_json(args["output"], scores)
    print(dumps(scores, indent=2))
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode score") -> int:
    """Score detections from the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_help(argv):
        print("usage: " + usage_line(prog, OPTIONS))
        print(__doc__.split("\n\n", 1)[1])
        print(describe_options(OPTIONS))
        return 0
    setup_logging()
    return report_errors(lambda: run(parse_options(argv, OPTIONS, prog)), config_status=2)
