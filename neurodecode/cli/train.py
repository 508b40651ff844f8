"""``neurodecode train recipe=<name> [key=value ...]``: Hydra's command line for recipes.

Training is composed by Hydra (groups, ``--cfg job``, ``--help``, ``-m`` sweeps), so this
command hands its words to :func:`neurodecode.train.main` as Hydra expects them: in
``sys.argv``. That one entry point refuses a mistyped key or group option with the closest
valid names and reports a failed run in one paragraph, for both ``neurodecode train`` and
``python -m neurodecode.train``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from neurodecode import train


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode train") -> int:
    """Run :func:`neurodecode.train.main` on ``argv``; return the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    saved, sys.argv = sys.argv, [prog, *argv]
    try:
        train.main()
    except SystemExit as stop:  # how train.main and Hydra end a refused or failed run
        return stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    finally:
        sys.argv = saved
    return 0
