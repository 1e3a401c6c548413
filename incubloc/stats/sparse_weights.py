"""Spatial weights as sparse matrices, without libpysal.

Importing libpysal (with scikit-learn, joblib, …) takes about a second; the
statistics of :mod:`incubloc.stats.autocorrelation` only need the neighbour pairs
and the matrix ``W.sparse`` that libpysal would build from them. This module builds
both directly:

* :func:`queen_pairs` — Queen contiguity of polygons: two polygons are neighbours
  when they share at least one vertex (exact coordinates), as
  ``libpysal.weights.Queen`` decides;
* :func:`knn_pairs` — the k nearest neighbours of points, as ``libpysal.weights.KNN``
  (the same k-d tree query, so the same choice among equidistant points);
* :func:`attach_islands` — each unit without neighbours joined to its nearest unit,
  as ``libpysal.weights.attach_islands`` with ``KNN(k=1)`` does;
* :class:`SparseWeights` — the neighbour lists; :meth:`SparseWeights.sparse` is the
  CSR matrix equal to libpysal's ``W.sparse`` under transform ``"b"`` or ``"r"``
  (same entries, same sorted column order, row-standardised values ``1 / cardinality``),
  so sums over it are bit for bit those of esda; :meth:`SparseWeights.to_W` gives
  the libpysal ``W`` for users.

Ids are positions 0..n−1 in row order.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from libpysal import weights as lpw

__all__ = ["SparseWeights", "attach_islands", "knn_pairs", "nearest_other", "queen_pairs"]

# libpysal.cg.KDTree builds scipy's cKDTree with this leaf size; the same tree gives
# the same order among equidistant neighbours.
_LEAFSIZE = 10


@dataclasses.dataclass(frozen=True)
class SparseWeights:
    """Binary neighbour lists of ``n`` units: entry ``(rows[e], cols[e])`` says that
    ``cols[e]`` is a neighbour of ``rows[e]``.

    A row may list a neighbour twice (``libpysal.weights.attach_islands`` does so when
    two islands are each other's nearest unit); such entries add up in the matrix, as
    in libpysal.

    Examples
    --------
    >>> w = SparseWeights.from_pairs(np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1]), 3)
    >>> w.cardinalities.tolist(), w.sparse("r").toarray()[1].tolist()
    ([1, 2, 1], [0.5, 0.0, 0.5])
    """

    n: int
    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def from_pairs(cls, i: np.ndarray, j: np.ndarray, n: int) -> SparseWeights:
        """Weights from neighbour pairs (kept as given, ordered by row then column)."""
        i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
        order = np.lexsort((j, i))
        return cls(int(n), i[order], j[order])

    @property
    def cardinalities(self) -> np.ndarray:
        """Number of entries of each row."""
        return np.bincount(self.rows, minlength=self.n)

    @property
    def islands(self) -> np.ndarray:
        """Units without neighbours."""
        return np.flatnonzero(self.cardinalities == 0)

    def sparse(self, transform: str = "r") -> sparse.csr_matrix:
        """The n × n CSR matrix, equal to libpysal's ``W.sparse`` after
        ``w.transform = transform`` (``"b"`` binary or ``"r"`` row-standardised: each
        entry of row i is ``1 / cardinality_i``).

        Built as libpysal builds it, ``csr_matrix((data, (row, col)))``: entries
        summed per cell and column indices sorted.
        """
        t = transform.lower()
        if t == "b":
            data = np.ones(len(self.rows))
        elif t == "r":
            data = 1.0 / self.cardinalities[self.rows]
        else:
            raise ValueError(f"transform {transform!r}: SparseWeights knows 'b' and 'r'")
        return sparse.csr_matrix((data, (self.rows, self.cols)), shape=(self.n, self.n))

    def symmetrised(self) -> SparseWeights:
        """Each pair in both directions, once (``libpysal.weights.W.symmetrize`` of
        binary weights without repeated entries)."""
        key = np.unique(np.concatenate([self.rows * self.n + self.cols,
                                        self.cols * self.n + self.rows]))
        return SparseWeights(self.n, key // self.n, key % self.n)

    def to_W(self, **kwargs: Any) -> lpw.W:
        """The binary ``libpysal.weights.W`` with these neighbour lists (ids 0..n−1)."""
        from libpysal import weights as lpw

        bounds = np.searchsorted(self.rows, np.arange(self.n + 1))
        neighbors = {k: self.cols[bounds[k]:bounds[k + 1]].tolist() for k in range(self.n)}
        kwargs.setdefault("silence_warnings", True)
        return lpw.W(neighbors, id_order=list(range(self.n)), **kwargs)


def queen_pairs(geoms: Any) -> tuple[np.ndarray, np.ndarray]:
    """Queen contiguity: ordered pairs ``(i, j)``, i ≠ j, of polygons sharing a vertex.

    Every coordinate of every ring (holes and the parts of multipolygons included) is
    a vertex; two vertices are the same when their coordinates are equal, as in
    ``libpysal.weights.Queen``. Polygons that touch along an edge without a common
    vertex are not neighbours there either.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> i, j = queen_pairs([box(0, 0, 1, 1), box(1, 1, 2, 2), box(5, 5, 6, 6)])
    >>> list(zip(i.tolist(), j.tolist()))
    [(0, 1), (1, 0)]
    """
    geoms = np.asarray(geoms, dtype=object)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    coords = coords + 0.0  # -0.0 and 0.0 are the same vertex
    order = np.lexsort((owner, coords[:, 1], coords[:, 0]))
    xy, owner = coords[order], owner[order]
    new = np.ones(len(xy), dtype=bool)
    new[1:] = (xy[1:] != xy[:-1]).any(axis=1)
    vertex = np.cumsum(new) - 1
    # one entry per (vertex, polygon), sorted by vertex
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = new[1:] | (owner[1:] != owner[:-1])
    vertex, owner = vertex[keep], owner[keep]
    start = np.searchsorted(vertex, vertex, side="left")
    size = np.searchsorted(vertex, vertex, side="right") - start
    shared = size > 1
    vertex, owner, start, size = vertex[shared], owner[shared], start[shared], size[shared]
    # every polygon at a shared vertex paired with every polygon there
    shift = np.flatnonzero(shared)  # positions in the kept arrays
    first = np.searchsorted(shift, start)  # start of each group among the shared
    src = np.repeat(np.arange(len(owner)), size)
    offset = np.arange(len(src)) - np.repeat(np.cumsum(size) - size, size)
    dst = np.repeat(first, size) + offset
    i, j = owner[src], owner[dst]
    ok = i != j
    n = max(len(geoms), 1)
    key = np.unique(i[ok].astype(np.int64) * n + j[ok])
    return key // n, key % n


def nearest_other(xy: np.ndarray, k: int = 1, *, query: np.ndarray | None = None
                  ) -> np.ndarray:
    """The ``k`` nearest other points of each point (rows: ``query``, default all),
    chosen as ``libpysal.weights.KNN`` chooses them.

    The k + 1 nearest are asked from the same k-d tree as libpysal's; the point itself
    is dropped, or, when coincident points push it out of the k + 1, the farthest.

    Examples
    --------
    >>> nearest_other(np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])).ravel().tolist()
    [1, 0, 1]
    """
    xy = np.asarray(xy, dtype=float)
    query = np.arange(len(xy)) if query is None else np.asarray(query)
    _, idx = cKDTree(xy, _LEAFSIZE).query(xy[query], k=k + 1, p=2)
    idx = idx.reshape(len(query), k + 1)
    other = idx != query[:, None]
    other[other.sum(axis=1) == k + 1, -1] = False
    return idx[other].reshape(len(query), k)


def knn_pairs(xy: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)``: j is one of the ``k`` nearest other points of i
    (``libpysal.weights.KNN(xy, k)``).

    Examples
    --------
    >>> i, j = knn_pairs(np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]), 1)
    >>> j.tolist()
    [1, 0, 1]
    """
    nb = nearest_other(xy, k)
    return np.repeat(np.arange(len(nb)), k), nb.ravel()


def attach_islands(w: SparseWeights, xy: np.ndarray) -> SparseWeights:
    """Join each unit without neighbours to its nearest unit (by ``xy``), both ways.

    As ``libpysal.weights.attach_islands(w, KNN(xy, k=1))``: islands in id order;
    each island's list becomes its nearest unit, whose list gains the island.

    Examples
    --------
    >>> w = SparseWeights.from_pairs(np.array([0, 1]), np.array([1, 0]), 3)
    >>> xy = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    >>> attach_islands(w, xy).sparse("b").toarray().astype(int).tolist()
    [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    """
    islands = w.islands
    if not len(islands):
        return w
    nb = nearest_other(xy, 1, query=islands)[:, 0]
    bounds = np.searchsorted(w.rows, np.arange(w.n + 1))
    lists: dict[int, list[int]] = {}
    for island, near in zip(islands.tolist(), nb.tolist(), strict=True):  # few islands
        lists[island] = [near]
        before = lists.get(near, w.cols[bounds[near]:bounds[near + 1]].tolist())
        lists[near] = [*before, island]
    changed = np.isin(w.rows, list(lists))
    rows = [w.rows[~changed]] + [np.full(len(v), k) for k, v in lists.items()]
    cols = [w.cols[~changed]] + [np.asarray(v, dtype=np.int64) for v in lists.values()]
    return SparseWeights.from_pairs(np.concatenate(rows), np.concatenate(cols), w.n)
