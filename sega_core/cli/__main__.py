"""``python -m sega_core.cli``: the ``sega`` command without its console script."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
