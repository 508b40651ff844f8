"""``python -m neurodecode <command> ...``: the ``neurodecode`` command without the script."""

import sys

from neurodecode.cli import main

if __name__ == "__main__":
    sys.exit(main())
