"""``python -m neurodecode.predict ...``: the same as ``neurodecode predict ...``."""

import sys

from neurodecode.cli.predict import load_config, main

__all__ = ["load_config", "main"]

if __name__ == "__main__":
    sys.exit(main(prog="python -m neurodecode.predict"))
