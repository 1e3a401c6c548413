"""Distances from many points to the nearest of a set of line segments.

Edge corrections and edge tests measure, for hundreds of thousands of random points,
the distance to a boundary made of a few hundred or thousand segments. One GEOS call
per point (``STRtree.query_nearest``) and the shapely points it needs cost about
6 µs a point; :class:`SegmentIndex` does the same search with a KD-tree and NumPy:

* every segment is cut, for the index only, into pieces no longer than the median
  segment; the pieces' midpoints go into a :class:`scipy.spatial.cKDTree`;
* the ``k`` nearest midpoints name candidate segments, and the smallest distance
  ``D`` to a candidate bounds the answer; the nearest segment has a piece whose
  midpoint is within ``D`` plus half the longest piece, so the candidates hold it
  once the k-th midpoint is farther than that (``k`` grows for the few points where
  it is not);
* the point's distance to each candidate segment is computed with the same
  floating-point operations, in the same order, as GEOS's
  ``Distance::pointToSegment`` (what :func:`shapely.distance` and
  ``STRtree.query_nearest`` use for a point and a line), so the result is
  bit-for-bit shapely's, not merely close (the test suite checks this).
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy.spatial import cKDTree

__all__ = ["SegmentIndex", "segments_of"]

#: Point–candidate pairs evaluated at once (bounds the temporary arrays to a few MB).
_PAIRS = 1 << 18


def segments_of(lines: np.ndarray | shapely.Geometry) -> np.ndarray:
    """The segments of linear geometries as rows ``(ax, ay, bx, by)``.

    Consecutive vertices of each line or ring make a segment; segments never join
    two different geometries.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> segments_of(box(0, 0, 2, 1).exterior).tolist()[:2]
    [[2.0, 0.0, 2.0, 1.0], [2.0, 1.0, 0.0, 1.0]]
    """
    coords, which = shapely.get_coordinates(np.atleast_1d(lines), return_index=True)
    same = which[:-1] == which[1:]
    return np.column_stack([coords[:-1][same], coords[1:][same]])


class SegmentIndex:
    """Distance from points to the nearest of fixed segments, index built once.

    Parameters
    ----------
    segments : numpy.ndarray of shape (m, 4)
        Rows ``(ax, ay, bx, by)``, e.g. from :func:`segments_of`; at least one.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> index = SegmentIndex(segments_of(box(0, 0, 10, 10).exterior))
    >>> index.distance(np.array([[1.0, 5.0], [5.0, 5.0], [13.0, 14.0]])).tolist()
    [1.0, 5.0, 5.0]
    """

    def __init__(self, segments: np.ndarray) -> None:
        seg = np.ascontiguousarray(segments, dtype=float).reshape(-1, 4)
        if not len(seg):
            raise ValueError("a SegmentIndex needs at least one segment")
        self.segments = seg
        # per-segment terms of the distance, computed as GEOS computes them
        ax, ay, bx, by = (np.ascontiguousarray(c) for c in seg.T)
        dx, dy = bx - ax, by - ay
        len2 = dx * dx + dy * dy
        self._cols = (ax, ay, bx, by, dx, dy, len2)
        length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
        # The cap: long enough that few pieces are added, short enough that the
        # candidate radius (nearest midpoint + half a piece) stays tight.
        cap = float(np.median(length))
        if not cap > 0:
            cap = float(length.max())
        pieces = np.ones(len(seg), dtype=np.int64)
        if cap > 0:
            pieces = np.maximum(1, np.ceil(length / cap)).astype(np.int64)
        self.owner = np.repeat(np.arange(len(seg)), pieces)
        first = np.repeat(np.cumsum(pieces) - pieces, pieces)
        frac = (np.arange(len(self.owner)) - first + 0.5) / pieces[self.owner]
        a, b = seg[self.owner, :2], seg[self.owner, 2:]
        mid = a + frac[:, None] * (b - a)
        # Half the longest piece, with room for rounding in the midpoints.
        self.reach = 0.5 * float((length / pieces).max()) * (1 + 1e-9) + 1e-9
        self.tree = cKDTree(mid, balanced_tree=False)

    def distance(self, xy: np.ndarray) -> np.ndarray:
        """Distance from each row of ``xy`` to the nearest segment (NaN for NaN rows),
        bit-identical to ``shapely.distance`` from the point to that segment as a line.
        """
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        out = np.full(len(xy), np.nan)
        todo = np.flatnonzero(np.isfinite(xy).all(axis=1))
        n_pieces = len(self.owner)
        k = min(8, n_pieces)
        while len(todo):
            dist, idx = self.tree.query(xy[todo], k=k)
            dist, idx = dist.reshape(len(todo), k), idx.reshape(len(todo), k)
            near = np.empty(len(todo))
            step = max(1, _PAIRS // k)
            for start in range(0, len(todo), step):  # chunks of points bound the memory
                part = slice(start, start + step)
                near[part] = _nearest(xy[todo[part]], self.owner[idx[part]], self._cols)
            # Complete when every midpoint not returned is farther than the best
            # candidate's distance plus half a piece.
            ok = (np.ones(len(todo), dtype=bool) if k == n_pieces
                  else dist[:, -1] > (near + self.reach) * (1 + 1e-9))
            out[todo[ok]] = near[ok]
            todo = todo[~ok]
            k = min(4 * k, n_pieces)
        return out


def _nearest(xy: np.ndarray, cand: np.ndarray, cols: tuple) -> np.ndarray:
    """Smallest distance from each point (n, 2) to its candidate segments (n, k)."""
    px, py = xy[:, :1], xy[:, 1:]
    ax, ay, bx, by, dx, dy, len2 = (c[cand] for c in cols)
    qx, qy = px - ax, py - ay
    with np.errstate(divide="ignore", invalid="ignore"):
        # GEOS Distance::pointToSegment, operation for operation.
        r = (qx * dx + qy * dy) / len2
        s = ((ay - py) * dx - (ax - px) * dy) / len2
        d = np.abs(s) * np.sqrt(len2)
        to_a = np.sqrt(qx * qx + qy * qy)
        rx, ry = px - bx, py - by
        to_b = np.sqrt(rx * rx + ry * ry)
        d = np.where(r >= 1.0, to_b, d)
        d = np.where((r <= 0.0) | ((ax == bx) & (ay == by)), to_a, d)
    # GEOS keeps the smallest with `<`, which skips NaN (a degenerate segment only)
    return np.fmin.reduce(d, axis=1)
