"""``python -m incubloc.cli``: the command line, :mod:`incubloc.shells.cli`."""

from incubloc.shells.cli import entry_point, main

__all__ = ["entry_point", "main"]

if __name__ == "__main__":  # pragma: no cover
    entry_point()
