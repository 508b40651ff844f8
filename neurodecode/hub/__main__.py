"""``python -m neurodecode.hub ...``: the same as ``neurodecode hub ...``."""

import sys

from neurodecode.cli.hub import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main(prog="python -m neurodecode.hub"))
