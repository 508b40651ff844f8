"""``neurodecode hub <export|push|pull> key=value ...``: export, publish and fetch models."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from neurodecode import hub
from neurodecode.cli import SUMMARIES
from neurodecode.cli.options import Command, Option, commands_usage, run_command

SUMMARY = SUMMARIES["hub"]


def _prints_json(
    job: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[dict[str, Any]], int]:
    """``job`` that prints its result as one JSON line and returns status 0."""

    @functools.wraps(job)
    def printing(args: dict[str, Any]) -> int:
        print(json.dumps(job(args)))
        return 0

    return printing


@_prints_json
def export(args: dict[str, Any]) -> dict[str, Any]:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` for a run's model."""
    return {"exported": str(hub.export_run(args["run"], args["out"]))}


@_prints_json
def push(args: dict[str, Any]) -> dict[str, Any]:
    """Export if needed and upload as one new commit."""
    info = hub.push_to_hub(
        args["run"],
        args["repo_id"],
        private=args["private"],
        revision=args.get("revision"),
        commit_message=args.get("commit_message"),
    )
    return {"repo_id": args["repo_id"], "commit": info.oid, "url": info.commit_url}


@_prints_json
def pull(args: dict[str, Any]) -> dict[str, Any]:
    """Download (or find in the cache), load and check a model; describe its contract."""
    pretrained = hub.from_pretrained(args["repo_id"], revision=args.get("revision"))
    return {
        "folder": str(pretrained.source),
        "model": pretrained.config["model"]["_target_"],
        "ch_names": pretrained.ch_names,
        "sfreq": pretrained.sfreq,
        "n_times": pretrained.n_times,
        "labels": pretrained.labels,
    }


_REVISION = Option("revision", help="Hub branch, tag or commit")
COMMANDS: dict[str, Command] = {
    "export": (
        export,
        (
            Option("run", required=True, help="run folder of a finished training"),
            Option("out", required=True, help="folder to write the exported model into"),
        ),
    ),
    "push": (
        push,
        (
            Option("run", required=True, help="run folder or exported folder"),
            Option("repo_id", required=True, help="Hub repository, org/name"),
            Option("private", bool, default=False, help="create the repository private"),
            _REVISION,
            Option("commit_message", help="message of the upload commit"),
        ),
    ),
    "pull": (
        pull,
        (
            Option("repo_id", required=True, help="org/name, hf://org/name or a folder"),
            _REVISION,
        ),
    ),
}


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode hub") -> int:
    """Run one hub command; return the process exit status."""
    lines = commands_usage(prog, SUMMARY, COMMANDS)
    lines.append("Prints one JSON line on success; exits with 1 on failure.")
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_command(argv, COMMANDS, prog, "\n".join(lines))
