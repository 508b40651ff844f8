"""``neurodecode train recipe=<name> [key=value ...]``: Hydra's command line for recipes.

Training is composed by Hydra (groups, ``--cfg job``, ``--help``, ``-m`` sweeps), so this
command hands its words to :func:`neurodecode.train.main` as Hydra expects them: in
``sys.argv``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from neurodecode import train

SUMMARY = "train and evaluate a recipe (Hydra overrides: recipe=seizure model=spiking ...)"


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode train") -> int:
    """Run :func:`neurodecode.train.main` on ``argv``; Hydra exits by itself on errors."""
    argv = list(sys.argv[1:] if argv is None else argv)
    saved, sys.argv = sys.argv, [prog, *argv]
    try:
        train.main()
    finally:
        sys.argv = saved
    return 0
