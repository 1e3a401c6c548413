"""``python -m incubloc.cli``: the command line, :mod:`incubloc.shells.cli`."""

import sys

from incubloc.shells.cli import main

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
