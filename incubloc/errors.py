"""Exceptions raised by incubloc for problems a user can fix.

Every message names the file, row, layer or option at fault and says what to do.
The command-line interface prints these without a traceback and exits with code 2.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CoordinateError",
    "GeocodingError",
    "IncublocError",
    "InputError",
    "InvalidKeyError",
    "MissingLayerError",
    "QuotaExceededError",
    "ResourceError",
    "StudyAreaError",
]


class IncublocError(Exception):
    """Base class of every error a user can cause and fix.

    ``cli_message``, when set, is the same message with the command-line options in
    place of the Python arguments (``--skip-bad-rows`` for ``errors="report"``); the
    command line prints it instead of ``str(error)``.
    """

    cli_message: str | None = None


class InputError(IncublocError, ValueError):
    """An incubator or sites table cannot be read or has bad rows."""


class CoordinateError(InputError):
    """Coordinates are missing, swapped, outside the valid area, or the CRS is unknown."""


class StudyAreaError(IncublocError, ValueError):
    """A study-area GeoPackage or one of its layers is unusable."""


class MissingLayerError(StudyAreaError, KeyError):
    """An analysis needs a study-area layer that is not present."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(IncublocError, ValueError):
    """A configuration file or option is invalid."""


class ResourceError(IncublocError, MemoryError):
    """A requested raster, matrix or table would not fit in the available memory."""


class GeocodingError(IncublocError, RuntimeError):
    """A geocoding service refused to go on (network down, bad answer); what was
    already geocoded stays in the cache and a rerun resumes from it."""


class InvalidKeyError(GeocodingError):
    """The geocoding service rejected the key (missing, wrong, not enabled for the API)."""


class QuotaExceededError(GeocodingError):
    """The geocoding key's daily or total quota is used up."""
