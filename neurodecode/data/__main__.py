"""``python -m neurodecode.data ...``: the same as ``neurodecode data ...``."""

import sys

from neurodecode.cli.data import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main(prog="python -m neurodecode.data"))
