"""Exceptions raised by incubloc for problems a user can fix.

Every message names the file, row, layer or option at fault and says what to do.
The command-line interface prints these without a traceback and exits with code 2.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CoordinateError",
    "IncublocError",
    "InputError",
    "MissingLayerError",
    "ResourceError",
    "StudyAreaError",
]


class IncublocError(Exception):
    """Base class of every error a user can cause and fix."""


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
