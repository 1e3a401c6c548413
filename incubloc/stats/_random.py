"""The one place where seeds become random number generators.

Every stochastic function in :mod:`incubloc.stats` takes ``seed`` and passes it to
:func:`rng`. esda draws some of its permutations from NumPy's legacy global state;
:func:`legacy_seed` seeds that state for the duration of one call and restores it
afterwards, so a seed gives the same answer twice and the caller's global state is
left as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import shapely

__all__ = ["Seed", "legacy_seed", "rng", "seed_int", "uniform_in_polygon"]

#: What a ``seed`` argument may be.
Seed = int | np.integer | np.random.Generator | None


def rng(seed: Seed = None) -> np.random.Generator:
    """Turn ``seed`` into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        An int gives a reproducible generator; a Generator is returned unchanged (its
        state advances as it is used); None draws fresh entropy.

    Examples
    --------
    >>> float(rng(1).random()) == float(rng(1).random())
    True
    >>> g = rng(0)
    >>> rng(g) is g
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, int | np.integer):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, a numpy Generator or None, not {type(seed).__name__}")


def seed_int(seed: Seed) -> int | None:
    """An integer seed for libraries that want one (esda), derived from ``seed``.

    An int is returned as is, so ``seed=5`` here gives the same permutations as
    ``seed=5`` passed to esda directly; a Generator yields a fresh draw; None stays None.

    Examples
    --------
    >>> seed_int(7)
    7
    >>> seed_int(None) is None
    True
    >>> seed_int(rng(0)) == seed_int(rng(0))
    True
    """
    if seed is None:
        return None
    if isinstance(seed, int | np.integer):
        return int(seed)
    return int(rng(seed).integers(0, 2**31 - 1))


@contextlib.contextmanager
def legacy_seed(seed: Seed) -> Iterator[None]:
    """Seed NumPy's legacy global state inside the block, then restore it.

    Examples
    --------
    >>> with legacy_seed(3):
    ...     a = np.random.permutation(5)
    >>> with legacy_seed(3):
    ...     b = np.random.permutation(5)
    >>> bool((a == b).all())
    True
    """
    state = np.random.get_state()  # noqa: NPY002 -- esda uses the legacy global state
    value = seed_int(seed)
    if value is not None:
        np.random.seed(value)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def uniform_in_polygon(
    polygon: shapely.Geometry, n: int, *, seed: Seed = None, max_batch: int = 2_000_000
) -> np.ndarray:
    """Draw ``n`` points uniformly inside ``polygon`` (vectorised rejection sampling).

    Candidates are drawn in the bounding box in batches sized from the acceptance rate
    and kept when :func:`shapely.contains_xy` says they are inside, so the points follow
    the polygon itself, holes and all, not its bounding box.

    Parameters
    ----------
    polygon : shapely Polygon or MultiPolygon
        With a positive area, in the coordinates wanted for the output.
    n : int
        Number of points.
    seed : int, Generator or None
        Random seed (see :func:`rng`).
    max_batch : int
        Largest number of candidates drawn at once (bounds memory).

    Returns
    -------
    numpy.ndarray of shape (n, 2)

    Examples
    --------
    >>> from shapely.geometry import box
    >>> xy = uniform_in_polygon(box(0, 0, 2, 1), 100, seed=0)
    >>> xy.shape, bool((xy[:, 0] <= 2).all() and (xy[:, 1] <= 1).all())
    ((100, 2), True)
    """
    gen = rng(seed)
    n = int(n)
    if n <= 0:
        return np.empty((0, 2))
    area = float(shapely.area(polygon))
    if not area > 0:
        raise ValueError("cannot draw random points in a polygon with no area")
    minx, miny, maxx, maxy = shapely.bounds(polygon)
    shapely.prepare(polygon)
    rate = area / ((maxx - minx) * (maxy - miny))
    parts: list[np.ndarray] = []
    need = n
    while need > 0:
        size = int(min(max_batch, max(64, np.ceil(need / rate * 1.2))))
        cand = np.column_stack([gen.uniform(minx, maxx, size), gen.uniform(miny, maxy, size)])
        keep = cand[shapely.contains_xy(polygon, cand[:, 0], cand[:, 1])]
        parts.append(keep[:need])
        need -= len(parts[-1])
    return np.concatenate(parts)
