"""Result objects of :mod:`incubloc.stats` (the shared base lives in :mod:`incubloc._results`)."""

from incubloc._results import Result, jsonable

__all__ = ["Result", "jsonable"]
