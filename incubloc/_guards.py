"""Memory guard rails: refuse an array that would not fit before allocating it.

A kernel-density grid or a dense distance matrix grows with the square of the extent
or of the number of points; on a large input numpy would fail with a bare
``MemoryError`` (or the operating system would kill the process). Callers ask
:func:`check_array_memory` first and get a :class:`~incubloc.errors.ResourceError`
that says how large the array would be and what to change.

Available memory is read from ``/proc/meminfo`` (``MemAvailable``, Linux), else from
:mod:`psutil` when it is installed; when neither is available no check is made.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from incubloc.errors import ResourceError

__all__ = ["available_memory", "check_array_memory", "format_bytes"]

log = logging.getLogger(__name__)

#: Share of the available memory one array may take: the computation around it
#: (temporaries, copies, the rest of the pipeline) needs the remainder.
DEFAULT_FRACTION = 0.5

_MEMINFO = Path("/proc/meminfo")


def available_memory() -> int | None:
    """Bytes of memory available to new allocations, or None when unknown.

    Examples
    --------
    >>> m = available_memory()
    >>> m is None or m > 0
    True
    """
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # optional
    except ImportError:
        return None
    try:
        return int(psutil.virtual_memory().available)
    except (OSError, psutil.Error):  # pragma: no cover - psutil failing on an exotic platform
        return None


def format_bytes(n: float) -> str:
    """Human-readable size in binary units.

    Examples
    --------
    >>> format_bytes(1536), format_bytes(3 * 2**30)
    ('1.5 KiB', '3.0 GiB')
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover - unreachable


def check_array_memory(
    shape: Sequence[int] | int,
    dtype: object = "float64",
    *,
    what: str,
    suggestion: str,
    fraction: float = DEFAULT_FRACTION,
    available: int | None = None,
) -> int:
    """Raise :class:`~incubloc.errors.ResourceError` if an array would not fit in memory.

    Parameters
    ----------
    shape : int or sequence of int
        Shape of the array about to be allocated.
    dtype : numpy dtype-like
        Its element type.
    what : str
        What the array is, for the message (e.g. ``"a 10 m density grid"``).
    suggestion : str
        How to make it smaller (e.g. ``"use a larger cell_size (--cell-size)"``).
    fraction : float
        Share of the available memory the array may take (0 < fraction <= 1).
    available : int, optional
        Available bytes; default :func:`available_memory`. When unknown, no check.

    Returns
    -------
    int
        The number of bytes the array needs.

    Raises
    ------
    ResourceError
        When the array needs more than ``fraction * available`` bytes.
    ValueError
        Negative dimensions or a fraction outside (0, 1].

    Examples
    --------
    >>> check_array_memory((1000, 1000), "float64", what="a grid", suggestion="coarser cells",
    ...                    available=2**30)
    8000000
    >>> check_array_memory((100_000, 100_000), "float64", what="a distance matrix",
    ...                    suggestion="sample the points", available=2**30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    incubloc.errors.ResourceError: a distance matrix (100,000 x 100,000 float64) needs 74.5 GiB...
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    dims = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimension in shape {dims}")
    itemsize = np.dtype(dtype).itemsize
    # Python integers: no overflow however large the request.
    needed = math.prod(dims) * itemsize
    if available is None:
        available = available_memory()
    if available is None:
        log.debug("available memory unknown: %s (%s) not checked", what, format_bytes(needed))
        return needed
    limit = fraction * available
    if needed > limit:
        size = " x ".join(f"{d:,}" for d in dims)
        raise ResourceError(
            f"{what} ({size} {np.dtype(dtype).name}) needs {format_bytes(needed)}, more than "
            f"{fraction:.0%} of the {format_bytes(available)} of memory available: "
            f"{suggestion}"
        )
    return needed
