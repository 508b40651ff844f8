"""``neurodecode hub <export|push|pull> key=value ...``: export, publish and fetch models."""

from __future__ import annotations

import functools
import json
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from huggingface_hub import constants
from huggingface_hub.errors import OfflineModeIsEnabled

from neurodecode import hub
from neurodecode.cli import SUMMARIES
from neurodecode.cli.options import Command, Option, commands_usage, run_command
from neurodecode.errors import NeurodecodeError

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
    try:
        info = hub.push_to_hub(
            args["run"],
            args["repo_id"],
            private=args["private"],
            revision=args.get("revision"),
            commit_message=args.get("commit_message"),
        )
    except Exception as error:
        if not unreachable(error):
            raise
        raise hub_unreachable(error, args["repo_id"]) from error
    return {"repo_id": args["repo_id"], "commit": info.oid, "url": info.commit_url}


def unreachable(error: BaseException | None) -> bool:
    """Whether ``error`` says the Hub could not be reached: offline mode, or a refused or
    reset connection, a timeout or an unknown host in its chain."""
    while error is not None:
        if isinstance(
            error, OfflineModeIsEnabled | ConnectionError | TimeoutError | socket.gaierror
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


def hub_unreachable(error: BaseException, repo_id: str) -> NeurodecodeError:
    """The one-paragraph error of an upload that could not reach the Hub."""
    if constants.HF_HUB_OFFLINE:
        reason, way = "HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE to upload"
    else:
        while error.__cause__ or error.__context__:  # the first cause says it best
            error = error.__cause__ or error.__context__
        reason = f"{type(error).__name__}: {error}"
        way = "check the network, or set HF_ENDPOINT to a Hub or mirror that can be reached"
    return NeurodecodeError(
        f"cannot reach the Hugging Face Hub at {constants.ENDPOINT} ({reason}); nothing was "
        "uploaded",
        path=f"{constants.ENDPOINT}/{repo_id}",
        hint=f"{way}; `neurodecode hub export run=<run> out=<folder>` writes the files now, "
        "to push later",
    )


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
