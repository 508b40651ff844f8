"""``python -m neurodecode.hub <command> key=value ...``: export, publish and fetch models.

Commands
--------
``export run=<run dir> out=<folder>``
    write ``model.safetensors``, ``config.json`` and ``README.md`` for a run's model;
``push run=<run dir or exported folder> repo_id=<org/name> [private=true] [revision=<branch>]
[commit_message=...]``
    export if needed and upload as one new commit (prints the commit hash);
``pull repo_id=<org/name | hf://org/name | folder> [revision=<rev>]``
    download (or find in the cache), load, check, and print the local folder and contract.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from neurodecode.errors import ConfigError, NeurodecodeError

_REQUIRED = {"export": ("run", "out"), "push": ("run", "repo_id"), "pull": ("repo_id",)}
_OPTIONAL = {
    "export": (),
    "push": ("private", "revision", "commit_message"),
    "pull": ("revision",),
}


def parse_overrides(command: str, items: list[str]) -> dict[str, Any]:
    """``key=value`` arguments as a dict (values parsed as YAML scalars: ``true`` → True)."""
    from omegaconf import OmegaConf

    if any("=" not in item for item in items):
        raise ConfigError(f"arguments must be key=value, got {items}")
    values = OmegaConf.to_container(OmegaConf.from_dotlist(items))
    # a revision "1" or a commit hash of digits is a name, not a number
    values = {k: v if k == "private" or v is None else str(v) for k, v in values.items()}
    allowed = set(_REQUIRED[command]) | set(_OPTIONAL[command])
    unknown = sorted(set(values) - allowed)
    missing = [key for key in _REQUIRED[command] if key not in values]
    if unknown or missing:
        raise ConfigError(
            f"{command}: unknown {unknown}, missing {missing}",
            hint=f"expected {', '.join(_REQUIRED[command])} and optionally "
            f"{', '.join(_OPTIONAL[command]) or 'nothing else'}",
        )
    if not isinstance(values.get("private", False), bool):
        raise ConfigError(f"private must be true or false, got {values['private']!r}")
    return values


def run(command: str, args: dict[str, Any]) -> dict[str, Any]:
    """Execute one command; return what is printed (as JSON) on success."""
    from neurodecode import hub

    if command == "export":
        return {"exported": str(hub.export_run(args["run"], args["out"]))}
    if command == "push":
        info = hub.push_to_hub(
            args["run"],
            args["repo_id"],
            private=args.get("private", False),
            revision=args.get("revision"),
            commit_message=args.get("commit_message"),
        )
        return {"repo_id": args["repo_id"], "commit": info.oid, "url": info.commit_url}
    pretrained = hub.from_pretrained(args["repo_id"], revision=args.get("revision"))
    return {
        "folder": str(pretrained.source),
        "model": pretrained.config["model"]["_target_"],
        "ch_names": pretrained.ch_names,
        "sfreq": pretrained.sfreq,
        "n_times": pretrained.n_times,
        "labels": pretrained.labels,
    }


def main(argv: list[str] | None = None) -> int:
    """Run one hub command; return the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(
        prog="python -m neurodecode.hub",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=sorted(_REQUIRED))
    parser.add_argument("overrides", nargs="*", help="key=value arguments")
    ns = parser.parse_args(argv)
    try:
        result = run(ns.command, parse_overrides(ns.command, ns.overrides))
    except NeurodecodeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
