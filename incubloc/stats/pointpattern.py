"""Point-pattern statistics: is the incubator pattern clustered, random or regular?

All distances are in metres in one projected CRS: points given in a geographic CRS
are projected with :func:`incubloc.coords.to_metric` (local UTM) and every window is
projected to the same CRS. A window (study area, city, settlement) may be a
GeoDataFrame / GeoSeries in any CRS (its polygons are dissolved) or a shapely
geometry, taken to be in the CRS of the points as given. Points may also be an
``(n, 2)`` array of coordinates already in metres, with a shapely window in the same
coordinates.

Functions
---------
clark_evans
    Nearest-neighbour index R with Donnelly's (1978) edge correction, z and p.
ripley
    Ripley's K and Besag's L with edge correction and Monte-Carlo envelopes drawn
    inside the window polygon itself.
quadrat_test
    Quadrat counts and the variance-to-mean (index of dispersion) test.
centrography
    Mean centre, standard distance and the standard deviational ellipse.
point_pattern_summary
    All of the above per group (e.g. per city) and for the whole pattern.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy import stats
from scipy.spatial import cKDTree

from incubloc.coords import to_metric
from incubloc.errors import InputError
from incubloc.stats._random import Seed, rng, uniform_in_polygon
from incubloc.stats._results import Result

__all__ = [
    "Centrography",
    "ClarkEvansResult",
    "QuadratResult",
    "RipleyResult",
    "centrography",
    "clark_evans",
    "point_pattern_summary",
    "quadrat_test",
    "ripley",
]

log = logging.getLogger(__name__)

PointsLike = gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray
WindowLike = gpd.GeoDataFrame | gpd.GeoSeries | shapely.Geometry | None


# --------------------------------------------------------------------------- inputs


def metric_xy(points: PointsLike, *, crs: Any = None) -> tuple[np.ndarray, CRS | None, np.ndarray]:
    """Coordinates in metres of ``points``, the metric CRS and which rows were used.

    Non-point geometries (site polygons) are reduced to their centroids in the metric
    CRS; rows with missing or empty geometry are skipped (the returned boolean mask
    says which rows are kept) and logged.

    Parameters
    ----------
    points : GeoDataFrame, GeoSeries or (n, 2) array
        An array is taken as coordinates already in metres.
    crs : CRS-like, optional
        Project to this CRS instead of the automatic local UTM zone.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> g = gpd.GeoSeries([Point(118.8, 32.05), None], crs=4326)
    >>> xy, crs, used = metric_xy(g)
    >>> xy.shape, crs.to_epsg(), used.tolist()
    ((1, 2), 32650, [True, False])
    """
    if isinstance(points, np.ndarray) or (
        isinstance(points, Sequence) and not isinstance(points, gpd.GeoSeries | str)
    ):
        xy = np.asarray(points, dtype=float).reshape(-1, 2)
        used = np.isfinite(xy).all(axis=1)
        return xy[used], (CRS.from_user_input(crs) if crs is not None else None), used
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if not isinstance(geoms, gpd.GeoSeries):
        raise InputError("points must be a GeoDataFrame, a GeoSeries or an (n, 2) array")
    used = ~(geoms.isna() | geoms.is_empty).to_numpy()
    if not used.all():
        log.warning("%d of %d rows have no geometry and are left out", (~used).sum(), len(used))
    geoms = gpd.GeoSeries(geoms[used].to_numpy(), crs=geoms.crs)
    metric = to_metric(gpd.GeoDataFrame(geometry=geoms), crs=crs).geometry
    values = metric.to_numpy()
    kinds = shapely.get_type_id(values)
    if (kinds != 0).any():
        values = np.where(kinds == 0, values, shapely.centroid(values))
    xy = shapely.get_coordinates(values) if len(values) else np.empty((0, 2))
    return xy.reshape(-1, 2), metric.crs, used


def metric_window(window: WindowLike, crs: CRS | None, source_crs: Any = None) -> shapely.Geometry:
    """``window`` as one valid (multi)polygon in ``crs``.

    A GeoDataFrame / GeoSeries is projected from its own CRS and dissolved; a shapely
    geometry is taken to be in ``source_crs`` (the CRS the points came in) and
    projected to ``crs`` when the two differ.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> metric_window(box(0, 0, 10, 10), None).area
    100.0
    """
    if isinstance(window, gpd.GeoDataFrame | gpd.GeoSeries):
        geoms = window.geometry if isinstance(window, gpd.GeoDataFrame) else window
        if geoms.crs is None and source_crs is not None:
            geoms = geoms.set_crs(source_crs)
        if crs is not None and geoms.crs is not None:
            geoms = geoms.to_crs(crs)
        geom = shapely.union_all(geoms.dropna().to_numpy())
    elif isinstance(window, shapely.Geometry):
        geom = window
        if crs is not None and source_crs is not None:
            src = CRS.from_user_input(source_crs)
            if not src.equals(crs):
                geom = gpd.GeoSeries([geom], crs=src).to_crs(crs).iloc[0]
    else:
        raise InputError(
            f"window must be a polygon GeoDataFrame, GeoSeries or shapely geometry, "
            f"not {type(window).__name__}"
        )
    geom = shapely.make_valid(geom)
    if not shapely.area(geom) > 0:
        raise InputError("the window (study area) has no area: give polygons, not points or lines")
    return geom


def _source_crs(points: PointsLike) -> Any:
    return getattr(points, "crs", None)


def _resolve(
    points: PointsLike, window: WindowLike, *, hull: bool = True
) -> tuple[np.ndarray, shapely.Geometry | None, CRS | None]:
    xy, crs, _ = metric_xy(points)
    if window is None:
        if not hull:
            return xy, None, crs
        geom = shapely.convex_hull(shapely.multipoints(xy)) if len(xy) else None
        if geom is None or not shapely.area(geom) > 0:
            raise InputError(
                "cannot use the convex hull of the points as the window (fewer than three "
                "points, or all on a line): pass window= (e.g. the study-area polygon)"
            )
        return xy, geom, crs
    return xy, metric_window(window, crs, _source_crs(points)), crs


def _inside(geom: shapely.Geometry, xy: np.ndarray) -> np.ndarray:
    shapely.prepare(geom)
    return shapely.contains_xy(geom, xy[:, 0], xy[:, 1])


def _boundary_distance(
    geom: shapely.Geometry, xy: np.ndarray, rmax: float, core: shapely.Geometry | None = None
) -> np.ndarray:
    """Distance from each point to the window boundary (0 outside), exact below ``rmax``.

    Points deeper than ``rmax`` (inside the window shrunk by ``rmax``, ``core``) get
    ``inf`` without measuring, which is all the edge corrections need to know. Pass
    ``core`` when calling repeatedly: the negative buffer is the expensive part.
    """
    out = np.zeros(len(xy))
    inside = _inside(geom, xy)
    deep = np.zeros(len(xy), dtype=bool)
    if core is None:
        core = shapely.buffer(geom, -rmax)
    if not shapely.is_empty(core):
        deep[inside] = _inside(core, xy[inside])
    out[deep] = np.inf
    near = inside & ~deep
    if near.any():
        out[near] = shapely.distance(shapely.boundary(geom), shapely.points(xy[near]))
    return out


# ----------------------------------------------------------------------- Clark–Evans


@dataclasses.dataclass
class ClarkEvansResult(Result):
    """Clark–Evans nearest-neighbour index.

    ``R`` < 1 means clustered, ≈ 1 random, > 1 regular (maximum 2.1491 on a
    hexagonal lattice). ``p`` is two-sided under the normal approximation.
    """

    R: float
    observed_mean: float
    expected_mean: float
    se: float
    z: float
    p: float
    n: int
    area: float
    perimeter: float
    edge_correction: str
    window: str


def clark_evans(
    points: PointsLike,
    *,
    window: WindowLike = None,
    edge_correction: Literal["donnelly", "none"] = "donnelly",
) -> ClarkEvansResult:
    """Clark–Evans nearest-neighbour index R with z and p.

    R = observed mean nearest-neighbour distance / its expectation under complete
    spatial randomness (CSR) in a window of area A with n points.

    ``edge_correction="donnelly"`` (default) uses Donnelly's (1978) expectation and
    variance, which account for the window's perimeter P (neighbours beyond the
    boundary are missing, so observed distances are too long):
    E = 0.5 √(A/n) + (0.0514 + 0.041/√n) P/n,
    Var = 0.0703 A/n² + 0.037 P √(A/n⁵).
    ``"none"`` uses Clark & Evans (1954): E = 0.5 √(A/n), SE = 0.26136 √(A)/n.

    Parameters
    ----------
    points : GeoDataFrame, GeoSeries or (n, 2) array
    window : polygons or shapely geometry, optional
        The study area. Default: the convex hull of the points, which is the smallest
        window containing them and so makes R slightly conservative towards clustering.
    edge_correction : {"donnelly", "none"}

    Returns
    -------
    ClarkEvansResult

    Examples
    --------
    >>> from shapely.geometry import box
    >>> xx, yy = np.meshgrid(np.arange(10) * 100.0 + 50, np.arange(10) * 100.0 + 50)
    >>> lattice = np.column_stack([xx.ravel(), yy.ravel()])
    >>> res = clark_evans(lattice, window=box(0, 0, 1000, 1000))
    >>> bool(res.R > 1.5 and res.p < 0.001)
    True
    """
    xy, geom, _ = _resolve(points, window)
    n = len(xy)
    if n < 2:
        raise InputError(f"Clark–Evans needs at least 2 points, got {n}")
    d, _ = cKDTree(xy).query(xy, k=2)
    observed = float(d[:, 1].mean())
    area, perim = float(shapely.area(geom)), float(shapely.length(geom))
    if edge_correction == "donnelly":
        expected = 0.5 * np.sqrt(area / n) + (0.0514 + 0.041 / np.sqrt(n)) * perim / n
        se = np.sqrt(0.0703 * area / n**2 + 0.037 * perim * np.sqrt(area / n**5))
    elif edge_correction == "none":
        expected = 0.5 * np.sqrt(area / n)
        se = 0.26136 / np.sqrt(n * n / area)
    else:
        raise InputError(f"unknown edge_correction {edge_correction!r}: use 'donnelly' or 'none'")
    z = (observed - expected) / se
    return ClarkEvansResult(
        R=float(observed / expected),
        observed_mean=observed,
        expected_mean=float(expected),
        se=float(se),
        z=float(z),
        p=float(2.0 * stats.norm.sf(abs(z))),
        n=int(n),
        area=area,
        perimeter=perim,
        edge_correction=edge_correction,
        window="convex_hull" if window is None else "given",
    )


# ---------------------------------------------------------------------- Ripley K / L


@dataclasses.dataclass
class RipleyResult(Result):
    """Ripley's K, Besag's L and the CSR envelope of L(d) − d.

    ``L_minus_d`` above ``hi`` at distance d: more neighbours within d than CSR
    (clustering at that scale); below ``lo``: regularity. ``p`` is the global
    maximum-absolute-deviation test over all distances (Monte-Carlo).
    """

    distances: np.ndarray
    K: np.ndarray
    L: np.ndarray
    L_minus_d: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    sim_mean: np.ndarray
    max_deviation: float
    p: float
    n: int
    area: float
    edge_correction: str
    n_sim: int
    envelope: tuple[float, float]
    seed: Any = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["seed"] = self.seed if isinstance(self.seed, int) else None
        return out

    @property
    def peak_distance(self) -> float:
        """The distance at which L(d) − d is largest (strongest clustering)."""
        if not np.isfinite(self.L_minus_d).any():
            return float("nan")
        return float(self.distances[int(np.nanargmax(self.L_minus_d))])

    def plot(self, ax: Any = None) -> Any:
        """Plot L(d) − d with the envelope; returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        ax.fill_between(self.distances, self.lo, self.hi, color="0.85", label="CSR envelope")
        ax.plot(self.distances, self.L_minus_d, color="C3", label="observed")
        ax.axhline(0.0, color="0.4", lw=0.8)
        ax.set_xlabel("distance d (m)")
        ax.set_ylabel("L(d) − d (m)")
        ax.set_title(f"Besag's L ({self.edge_correction} correction), p = {self.p:.3g}")
        ax.legend(frameon=False)
        return ax


def _circle_fraction(
    geom: shapely.Geometry,
    centre: np.ndarray,
    radius: np.ndarray,
    k: int,
    chunk: int = 100_000,
) -> np.ndarray:
    """Fraction of each circle inside ``geom``, from ``k`` evenly spaced points on it."""
    angles = 2.0 * np.pi * (np.arange(k) + 0.5) / k
    cos, sin = np.cos(angles), np.sin(angles)
    out = np.empty(len(radius))
    shapely.prepare(geom)
    for start in range(0, len(radius), chunk):  # bounds memory; vectorised within
        c = centre[start : start + chunk]
        r = radius[start : start + chunk, None]
        x = c[:, :1] + r * cos
        y = c[:, 1:2] + r * sin
        inside = shapely.contains_xy(geom, x.ravel(), y.ravel()).reshape(x.shape)
        out[start : start + chunk] = inside.mean(axis=1)
    return out


class _Isotropic:
    """Ripley's isotropic weights for ordered pairs (centre, distance).

    The inside fraction of the circle around each point near the boundary is
    tabulated at ``n_radii`` radii up to ``rmax`` and interpolated linearly at each
    pair distance: n × n_radii × k point-in-polygon tests instead of one circle per
    pair, which keeps large patterns and their simulations fast. The table is built
    once; calling the object weighs any batch of pairs.
    """

    def __init__(
        self,
        geom: shapely.Geometry,
        xy: np.ndarray,
        b: np.ndarray,
        rmax: float,
        k: int,
        n_radii: int = 32,
    ) -> None:
        self.b, self.rmax, self.k, self.n_radii = b, rmax, k, n_radii
        near = np.flatnonzero(b < rmax)
        self.pos = np.full(len(xy), -1)
        self.pos[near] = np.arange(len(near))
        self.table = np.ones((len(near), n_radii + 1))
        if len(near):
            radii = np.linspace(0.0, rmax, n_radii + 1)
            rows, cols = np.nonzero(radii[None, 1:] > b[near][:, None])
            self.table[rows, cols + 1] = _circle_fraction(geom, xy[near[rows]], radii[cols + 1], k)

    def __call__(self, centre: np.ndarray, dd: np.ndarray) -> np.ndarray:
        w = np.ones(len(dd))
        if not len(self.table):
            return w
        need = (self.pos[centre] >= 0) & (dd > self.b[centre])
        row = self.pos[centre[need]]
        t = dd[need] / self.rmax * self.n_radii
        lo = np.clip(np.floor(t).astype(int), 0, self.n_radii - 1)
        frac = self.table[row, lo] * (1.0 - (t - lo)) + self.table[row, lo + 1] * (t - lo)
        w[need] = 1.0 / np.maximum(frac, 1.0 / self.k)
        return w


def _isotropic_weights(
    geom: shapely.Geometry,
    xy: np.ndarray,
    b: np.ndarray,
    centre: np.ndarray,
    dd: np.ndarray,
    rmax: float,
    k: int,
    n_radii: int = 32,
) -> np.ndarray:
    """Ripley's isotropic weights of the ordered pairs (``centre``, ``dd``)."""
    return _Isotropic(geom, xy, b, rmax, k, n_radii)(centre, dd)


def _count_upto(
    values: np.ndarray,
    distances: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    strict: bool = False,
) -> np.ndarray:
    """(Weighted) number of ``values`` <= each distance (< with ``strict``), no sort."""
    order = np.argsort(distances)
    sorted_d = distances[order]
    # bin k holds the values counted from sorted_d[k] on
    first = np.searchsorted(sorted_d, values, side="right" if strict else "left")
    per_bin = np.bincount(first, weights=weights, minlength=len(sorted_d) + 1)
    out = np.empty(len(distances))
    out[order] = np.cumsum(per_bin)[: len(sorted_d)]
    return out


# From this many points on, K counts pairs in bounded chunks (:func:`_pair_counts`)
# instead of holding every pair within rmax in memory at once.
_FAST_K_MIN_N = 3000
_PAIR_CHUNK = 1 << 17  # pairs per chunk: small enough to stay in cache


def _row_sorted(xy: np.ndarray, rmax: float, sub: int = 4):
    """Points sorted by (row, x) with rows ``rmax / sub`` high, and for every point
    and every row offset dy = 0..sub the run [start, stop) of candidates in the row
    dy above (dy = 0: the points after it in its own row) whose x can still be
    within ``rmax``. Returns ``order, x, y, starts, stops`` (starts/stops of shape
    (sub + 1, n), positions into the sorted points)."""
    n = len(xy)
    h = rmax / sub
    lo_xy = xy.min(axis=0)
    width = float(xy[:, 0].max() - lo_xy[0])
    row = np.floor((xy[:, 1] - lo_xy[1]) / h).astype(np.int64)
    order = np.lexsort((xy[:, 0], row))
    row = row[order]
    x, y = xy[order, 0], xy[order, 1]
    stride = width + 2.0 * rmax + 1.0  # keeps each row's keys apart from its neighbours'
    key = row * stride + (x - lo_xy[0])
    idx = np.arange(n)
    r2 = rmax * rmax
    starts = np.empty((sub + 1, n), dtype=np.int64)
    stops = np.empty((sub + 1, n), dtype=np.int64)
    for dy in range(sub + 1):
        gap = max(dy - 1, 0) * h  # smallest vertical distance to a point dy rows up
        half = float(np.sqrt(max(r2 - gap * gap, 0.0)))
        base = key + dy * stride
        stops[dy] = np.searchsorted(key, base + half, side="right")
        starts[dy] = idx + 1 if dy == 0 else np.searchsorted(key, base - half, side="left")
    return order, x, y, starts, stops


def _pair_chunks(
    xy: np.ndarray, rmax: float, *, chunk: int = _PAIR_CHUNK
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Candidate pairs within ``rmax`` of each other, in bounded chunks.

    A sorted grid: points are sorted by (row, x) with rows ``rmax / 4`` high, so the
    candidates of point i in a row at or above its own are one contiguous run found
    with ``np.searchsorted`` on the x interval that can still be within ``rmax``
    (:func:`_row_sorted`). The candidate area is about 1.2 π rmax², so the work is
    O(N log N + pairs) and the memory O(N + chunk) whatever the clustering.

    Yields ``(order, i, j, d2)``: positions i < j into ``xy[order]`` (each unordered
    pair once) and squared distances, a few of them above ``rmax²`` (callers bin
    them out of range).
    """
    n = len(xy)
    if n < 2:
        return
    order, x, y, starts, stops = _row_sorted(xy, rmax)
    for start, stop in zip(starts, stops, strict=True):
        cnt = np.maximum(stop - start, 0)
        ends = np.cumsum(cnt)
        total = int(ends[-1])
        if total == 0:
            continue
        # Split the points into runs of at most ~chunk candidate pairs.
        cuts = np.searchsorted(ends, np.arange(chunk, total, chunk), side="left") + 1
        bounds = np.unique(np.concatenate([[0], cuts, [n]]))
        for a, b in zip(bounds[:-1], bounds[1:], strict=False):
            c = cnt[a:b]
            m = int(ends[b - 1] - (ends[a - 1] if a else 0))
            if m == 0:
                continue
            live = np.flatnonzero(c)
            c, s0 = c[live], start[a:b][live]
            heads = np.cumsum(c) - c
            # j runs s0 .. s0 + c - 1 per owner: one cumsum over steps of 1 with jumps
            step = np.ones(m, dtype=np.int64)
            step[heads[1:]] = s0[1:] - (s0[:-1] + c[:-1] - 1)
            step[0] = s0[0]
            j = np.cumsum(step)
            i = np.repeat(live + a, c)
            dxy = x[j] - x[i]
            dxy *= dxy
            dyy = y[j] - y[i]
            dyy *= dyy
            dxy += dyy
            yield order, i, j, dxy


class _Binner:
    """``np.searchsorted(sd, d, side="left")`` for many d, by table lookup.

    A fine uniform grid over [0, max(sd)] maps each d to its count directly; only
    the few cells with a threshold in (or at the edge of) them are resolved by
    ``searchsorted``, which is an order of magnitude slower per value.
    """

    def __init__(self, sd: np.ndarray) -> None:
        self.sd = sd
        self.m = max(256, 32 * len(sd))
        # the grid ends just past the largest threshold, so d == max(sd) is resolved
        self.scale = self.m / (float(sd[-1]) * (1.0 + 1e-7))
        edges = np.arange(self.m + 1) / self.scale
        lut = np.searchsorted(sd, edges[:-1], side="left")
        # a cell is ambiguous when a threshold lies in it or within rounding of it
        eps = 1e-6 / self.scale
        amb = np.searchsorted(sd, edges[1:] + eps, side="right") > np.searchsorted(
            sd, edges[:-1] - eps, side="left"
        )
        self.lut = np.append(lut, len(sd))  # cell m and beyond: above every threshold
        self.amb = np.append(amb, False)

    def __call__(self, d: np.ndarray) -> np.ndarray:
        u = np.minimum(d * self.scale, self.m).astype(np.int64)
        out = self.lut[u]
        amb = np.flatnonzero(self.amb[u])
        out[amb] = np.searchsorted(self.sd, d[amb], side="left")
        return out


# Compiled pair counting (numba, optional: ``pip install "incubloc[fast]"``). None
# until first use; False when numba is missing or disabled with INCUBLOC_NO_NUMBA=1.
_COMPILED_KERNEL: Any = None


def _compiled_kernel() -> Any:
    """The numba kernel counting pairs per bin, or False without numba."""
    global _COMPILED_KERNEL
    if _COMPILED_KERNEL is None:
        import os

        _COMPILED_KERNEL = False
        if os.environ.get("INCUBLOC_NO_NUMBA", "") not in ("", "0"):
            return False
        try:
            _COMPILED_KERNEL = _build_compiled_kernel()
        except ImportError:
            pass
    return _COMPILED_KERNEL


def _build_compiled_kernel() -> Any:
    import numba

    @numba.njit(parallel=True, cache=True, nogil=True)
    def count(x, y, starts, stops, lut, amb, sd, scale, m, bsorted, first_out, nblocks):
        # Same arithmetic as the NumPy path (d = sqrt(dx² + dy²), table lookup, then
        # a binary search in ambiguous cells): integer counts, so results are equal.
        n = x.shape[0]
        k = sd.shape[0]
        border = bsorted.shape[0] > 0
        hits = np.zeros((nblocks, k + 1), dtype=np.int64)
        gone = np.zeros((nblocks, k + 1), dtype=np.int64)
        size = (n + nblocks - 1) // nblocks
        # Pairs clearly beyond the largest distance skip the square root; the margin
        # leaves pairs at rmax itself to the exact test below.
        cut = sd[k - 1] * sd[k - 1] * (1.0 + 1e-9)
        for blk in numba.prange(nblocks):
            for i in range(blk * size, min(n, (blk + 1) * size)):
                xi = x[i]
                yi = y[i]
                for t in range(starts.shape[0]):
                    for j in range(starts[t, i], stops[t, i]):
                        dx = x[j] - xi
                        dy = y[j] - yi
                        d2 = dx * dx + dy * dy
                        if d2 > cut:
                            continue
                        d = np.sqrt(d2)
                        u = int(min(d * scale, float(m)))
                        first = lut[u]
                        if amb[u]:
                            lo = 0
                            hi = k
                            while lo < hi:  # searchsorted(sd, d, side="left")
                                mid = (lo + hi) // 2
                                if sd[mid] < d:
                                    lo = mid + 1
                                else:
                                    hi = mid
                            first = lo
                        if first >= k:
                            continue
                        if not border:
                            hits[blk, first] += 2
                            continue
                        if d <= bsorted[i]:
                            hits[blk, first] += 1
                            gone[blk, first_out[i]] += 1
                        if d <= bsorted[j]:
                            hits[blk, first] += 1
                            gone[blk, first_out[j]] += 1
        return hits.sum(axis=0), gone.sum(axis=0)

    return count


def _pair_counts(
    xy: np.ndarray,
    distances: np.ndarray,
    bound: np.ndarray | None = None,
    *,
    weight: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    chunk: int = _PAIR_CHUNK,
) -> np.ndarray:
    """Ordered pairs i != j with d_ij <= r (and r <= ``bound[i]``) for each distance r.

    Exact and memory-bounded (see :func:`_pair_chunks`); equals the brute-force
    count. With ``bound`` (the distance of each centre to the window boundary) it
    gives the numerator of the border-corrected K; with ``weight`` (a function of
    the centres' indices and the distances, e.g. :class:`_Isotropic`) the weighted
    count.
    """
    order = np.argsort(distances)
    sd = distances[order]
    k = len(sd)
    binner = _Binner(sd)
    kernel = _compiled_kernel() if weight is None else False
    if kernel and len(xy) >= 2:
        perm, x, y, starts, stops = _row_sorted(xy, float(sd[-1]))
        bsorted = bound[perm] if bound is not None else np.empty(0)
        first_out = (np.searchsorted(sd, bsorted, side="right") if bound is not None
                     else np.empty(0, dtype=np.int64))
        hits_i, gone_i = kernel(x, y, starts, stops, binner.lut, binner.amb, sd,
                                binner.scale, binner.m, bsorted, first_out, 64)
        out = np.empty(k)
        out[order] = (np.cumsum(hits_i.astype(float)) - np.cumsum(gone_i.astype(float)))[:k]
        return out
    hits = np.zeros(k + 1)
    gone = np.zeros(k + 1)
    first_out = None
    for perm, i, j, d2 in _pair_chunks(xy, float(sd[-1]), chunk=chunk):
        d = np.sqrt(d2, out=d2)
        first = binner(d)  # the pair counts from sd[first] on
        if weight is not None:
            for centre in (i, j):
                hits += np.bincount(first, weights=weight(perm[centre], d), minlength=k + 1)
            continue
        if bound is None:
            hits += np.bincount(first, minlength=k + 1)
            continue
        if first_out is None:
            bsorted = bound[perm]
            # no longer counted once r exceeds the centre's boundary distance
            first_out = np.searchsorted(sd, bsorted, side="right")
        for centre in (i, j):
            ok = d <= bsorted[centre]
            hits += np.bincount(first[ok], minlength=k + 1)
            gone += np.bincount(first_out[centre[ok]], minlength=k + 1)
    if bound is None and weight is None:
        hits *= 2.0  # each unordered pair is two ordered ones
    out = np.empty(k)
    out[order] = (np.cumsum(hits) - np.cumsum(gone))[:k]
    return out


def _k_function(
    xy: np.ndarray,
    geom: shapely.Geometry,
    area: float,
    distances: np.ndarray,
    edge_correction: str,
    n_circle: int,
    core: shapely.Geometry | None = None,
) -> np.ndarray:
    n = len(xy)
    rmax = float(distances.max())
    if n >= _FAST_K_MIN_N and edge_correction in ("none", "border", "ripley"):
        if edge_correction == "none":
            return area * _pair_counts(xy, distances) / (n * (n - 1))
        if edge_correction == "ripley":
            b = _boundary_distance(geom, xy, rmax, core)
            iso = _Isotropic(geom, xy, b, rmax, n_circle)
            return area * _pair_counts(xy, distances, weight=iso) / (n * (n - 1))
        b = _boundary_distance(geom, xy, rmax, core)
        n_centres = (b[:, None] >= distances[None, :]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = area / (n - 1) * _pair_counts(xy, distances, b) / n_centres
        return np.where(n_centres > 0, k, np.nan)
    pairs = cKDTree(xy).query_pairs(rmax, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.hypot(*(xy[i] - xy[j]).T)
    # Ordered pairs: each unordered pair counts once around each of its two points.
    centre = np.concatenate([i, j])
    dd = np.concatenate([d, d])
    if edge_correction == "border":
        b = _boundary_distance(geom, xy, rmax, core)
        bc = b[centre]
        ok = dd <= bc
        # An ordered pair counts at r when d_ij <= r <= b_i.
        count = _count_upto(dd[ok], distances) - _count_upto(bc[ok], distances, strict=True)
        n_centres = (b[:, None] >= distances[None, :]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = area / (n - 1) * count / n_centres
        return np.where(n_centres > 0, k, np.nan)
    if edge_correction == "ripley":
        b = _boundary_distance(geom, xy, rmax, core)
        w = _isotropic_weights(geom, xy, b, centre, dd, rmax, n_circle)
    elif edge_correction == "none":
        w = np.ones(len(dd))
    else:
        raise InputError(
            f"unknown edge_correction {edge_correction!r}: use 'ripley', 'border' or 'none'"
        )
    return area * _count_upto(dd, distances, w) / (n * (n - 1))


def ripley(
    points: PointsLike,
    *,
    window: WindowLike,
    distances: Sequence[float] | np.ndarray | None = None,
    n_sim: int = 99,
    seed: Seed = 0,
    edge_correction: Literal["ripley", "border", "none"] = "ripley",
    envelope: tuple[float, float] = (0.025, 0.975),
    n_circle: int = 32,
) -> RipleyResult:
    """Ripley's K and Besag's L over a range of distances, with CSR envelopes.

    K(d) = A / (n (n − 1)) Σ_i Σ_{j≠i} w_ij 1(d_ij ≤ d) and L(d) = √(K(d)/π), so
    L(d) − d ≈ 0 under CSR. Pairs come from a KD-tree search up to the largest
    distance (no n × n matrix); from 3 000 points on they are counted exactly in
    bounded chunks from a sorted grid instead, so memory stays O(n) however many
    pairs lie within the largest distance (same K, see ``benchmarks/``).

    Edge corrections:

    * ``"ripley"`` (default): Ripley's isotropic correction, w_ij = 1 / (fraction of
      the circle through j centred on i that lies inside the window). For each
      point closer to the boundary than the largest distance, the fraction is
      estimated from ``n_circle`` points evenly spaced on circles of 32 radii and
      interpolated at d_ij (weights capped at ``n_circle``); circles wholly inside
      the window get w = 1 without sampling.
    * ``"border"``: the reduced-sample estimator; only points at least d from the
      boundary serve as centres at distance d:
      K(d) = A / (n − 1) · Σ_{i: b_i ≥ d} #{j ≠ i: d_ij ≤ d} / #{i: b_i ≥ d}.
    * ``"none"``: w_ij = 1 (biased low near the boundary; for comparison).

    The envelope is pointwise: the ``envelope`` quantiles of L(d) − d over ``n_sim``
    CSR patterns of n points drawn uniformly inside the window polygon itself (not its
    bounding box), each analysed with the same correction. ``p`` is the Monte-Carlo
    maximum-absolute-deviation test: T = max_d |L(d) − d − mean_sim(d)|,
    p = (1 + #{T_sim ≥ T_obs}) / (n_sim + 1).

    Parameters
    ----------
    points : GeoDataFrame, GeoSeries or (n, 2) array
    window : polygons or shapely geometry
        The study area (required: a bounding box would inflate K).
    distances : array of float, optional
        Distances in metres. Default: 50 steps up to a quarter of the shorter side of
        the window's bounding box.
    n_sim : int
        Number of CSR simulations (0 for none).
    seed : int, Generator or None
    edge_correction : {"ripley", "border", "none"}
    envelope : (float, float)
        Lower and upper quantiles of the envelope; (0, 1) gives the min / max envelope.
    n_circle : int
        Points sampled on each circle for the isotropic correction.

    Returns
    -------
    RipleyResult

    Examples
    --------
    >>> from shapely.geometry import box
    >>> xy = np.random.default_rng(1).uniform(0, 1000, (80, 2))
    >>> res = ripley(xy, window=box(0, 0, 1000, 1000), distances=[50, 100, 200], n_sim=19)
    >>> res.L.shape, bool(res.p > 0.01)
    ((3,), True)
    """
    xy, geom, _ = _resolve(points, window)
    n = len(xy)
    if n < 2:
        raise InputError(f"Ripley's K needs at least 2 points, got {n}")
    area = float(shapely.area(geom))
    if distances is None:
        minx, miny, maxx, maxy = shapely.bounds(geom)
        rmax = 0.25 * min(maxx - minx, maxy - miny)
        distances = np.linspace(rmax / 50, rmax, 50)
    distances = np.asarray(distances, dtype=float)
    if distances.ndim != 1 or len(distances) == 0 or not (distances > 0).all():
        raise InputError("distances must be a non-empty list of positive numbers (metres)")
    outside = ~_inside(geom, xy)
    if outside.any():
        log.warning("%d of %d points lie outside the window", outside.sum(), n)

    # The shrunken window is the same for the pattern and every simulation.
    core = shapely.buffer(geom, -float(distances.max())) if edge_correction != "none" else None

    def lmd(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = _k_function(pts, geom, area, distances, edge_correction, n_circle, core)
        return k, np.sqrt(k / np.pi) - distances

    K, obs = lmd(xy)
    if n_sim > 0:
        sims_xy = uniform_in_polygon(geom, n * n_sim, seed=rng(seed)).reshape(n_sim, n, 2)
        sims = np.vstack([lmd(s)[1] for s in sims_xy])  # loop over simulations only
        lo, hi = np.nanquantile(sims, envelope, axis=0)
        mean = np.nanmean(sims, axis=0)
        t_obs = np.nanmax(np.abs(obs - mean))
        t_sim = np.nanmax(np.abs(sims - mean), axis=1)
        p = float((1 + np.sum(t_sim >= t_obs)) / (n_sim + 1))
    else:
        lo = hi = mean = np.full(len(distances), np.nan)
        t_obs, p = np.nanmax(np.abs(obs)), float("nan")
    return RipleyResult(
        distances=distances,
        K=K,
        L=np.sqrt(K / np.pi),
        L_minus_d=obs,
        lo=lo,
        hi=hi,
        sim_mean=mean,
        max_deviation=float(t_obs),
        p=p,
        n=int(n),
        area=area,
        edge_correction=edge_correction,
        n_sim=int(n_sim),
        envelope=(float(envelope[0]), float(envelope[1])),
        seed=seed if isinstance(seed, int | None) else None,
    )


# ---------------------------------------------------------------------- quadrat test


@dataclasses.dataclass
class QuadratResult(Result):
    """Quadrat counts and the variance-to-mean ratio (VMR) test.

    VMR ≈ 1 under CSR, > 1 clustered, < 1 regular. ``chi2`` = (m − 1) · VMR with
    m − 1 degrees of freedom; ``p`` is two-sided, ``p_clustered`` the upper tail.
    """

    counts: np.ndarray
    cell_size: float
    n_cells: int
    n_points: int
    mean: float
    variance: float
    vmr: float
    chi2: float
    df: int
    p: float
    p_clustered: float


def quadrat_test(
    points: PointsLike,
    *,
    window: WindowLike,
    cell_size: float | None = None,
    n_cells: int | None = None,
) -> QuadratResult:
    """Quadrat count and variance-to-mean ratio test inside a window.

    A square grid covers the window's bounding box; a cell is kept when at least 50 %
    of its area lies inside the window (so the counts stay comparable) and the points
    in dropped cells are left out. The index of dispersion
    χ² = Σ (c − c̄)² / c̄ = (m − 1) · VMR is compared with χ²(m − 1).

    Parameters
    ----------
    points : GeoDataFrame, GeoSeries or (n, 2) array
    window : polygons or shapely geometry
    cell_size : float, optional
        Cell side in metres. Default: √(2A/n), the rule giving about two points a cell.
    n_cells : int, optional
        Instead of ``cell_size``: aim for about this many cells in the window.

    Returns
    -------
    QuadratResult

    Examples
    --------
    >>> from shapely.geometry import box
    >>> xy = np.random.default_rng(0).uniform(0, 1000, (400, 2))
    >>> res = quadrat_test(xy, window=box(0, 0, 1000, 1000), cell_size=100)
    >>> res.n_cells, bool(0.7 < res.vmr < 1.3)
    (100, True)
    """
    xy, geom, _ = _resolve(points, window)
    n = len(xy)
    area = float(shapely.area(geom))
    if cell_size is None:
        if n_cells is not None:
            cell_size = np.sqrt(area / n_cells)
        elif n > 0:
            cell_size = np.sqrt(2.0 * area / n)
        else:
            raise InputError("quadrat test needs points or an explicit cell_size")
    cell_size = float(cell_size)
    if not cell_size > 0:
        raise InputError(f"cell_size must be positive metres, got {cell_size}")
    minx, miny, maxx, maxy = shapely.bounds(geom)
    nx = max(1, int(np.ceil((maxx - minx) / cell_size)))
    ny = max(1, int(np.ceil((maxy - miny) / cell_size)))
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))
    x0, y0 = minx + ix.ravel() * cell_size, miny + iy.ravel() * cell_size
    cells = shapely.box(x0, y0, x0 + cell_size, y0 + cell_size)
    shapely.prepare(geom)
    frac = shapely.area(shapely.intersection(cells, geom)) / cell_size**2
    keep = frac >= 0.5
    cx = np.clip(np.floor((xy[:, 0] - minx) / cell_size).astype(int), 0, nx - 1)
    cy = np.clip(np.floor((xy[:, 1] - miny) / cell_size).astype(int), 0, ny - 1)
    counts = np.bincount(cy * nx + cx, minlength=nx * ny)[keep]
    m = len(counts)
    if m < 2:
        raise InputError(
            f"only {m} quadrat(s) of {cell_size:.0f} m fit the window: use a smaller cell_size"
        )
    mean = float(counts.mean())
    var = float(counts.var(ddof=1))
    vmr = var / mean if mean > 0 else float("nan")
    chi2 = (m - 1) * vmr
    df = m - 1
    p_up = float(stats.chi2.sf(chi2, df))
    p_two = float(min(1.0, 2.0 * min(p_up, stats.chi2.cdf(chi2, df))))
    return QuadratResult(
        counts=counts,
        cell_size=cell_size,
        n_cells=int(m),
        n_points=int(counts.sum()),
        mean=mean,
        variance=var,
        vmr=float(vmr),
        chi2=float(chi2),
        df=int(df),
        p=p_two,
        p_clustered=p_up,
    )


# ---------------------------------------------------------------------- centrography


@dataclasses.dataclass
class Centrography(Result):
    """Mean centre, standard distance and standard deviational ellipse (SDE).

    ``sd_major`` / ``sd_minor`` are the standard deviations of the points along the
    ellipse's axes; ``major`` / ``minor`` the ellipse's semi-axes, √2 · n_std times
    those. That is ArcGIS Pro's Directional Distribution convention: its one-SD
    ellipse covers about 63 % (1 − e⁻¹) of a bivariate normal pattern, and points
    spread evenly round an ellipse give back that ellipse. ``rotation_deg`` is the
    direction of the major axis, clockwise from north, in [0, 180) (ArcGIS's
    "Rotation" when the long axis is the ellipse's y axis). Coordinates in metres.
    """

    mean_x: float
    mean_y: float
    mean_lon: float | None
    mean_lat: float | None
    standard_distance: float
    sd_major: float
    sd_minor: float
    major: float
    minor: float
    rotation_deg: float
    n: int
    crs: str | None
    ellipse: shapely.Geometry | None = None


def _weights_array(points: PointsLike, weights: Any, used: np.ndarray) -> np.ndarray | None:
    if weights is None:
        return None
    if isinstance(weights, str):
        if not isinstance(points, gpd.GeoDataFrame) or weights not in points.columns:
            raise InputError(f"weights column {weights!r} is not in the points table")
        weights = points[weights]
    w = np.asarray(weights, dtype=float)
    if len(w) != len(used):
        raise InputError(f"weights has {len(w)} values for {len(used)} points")
    w = w[used]
    if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
        raise InputError("weights must be finite, non-negative and not all zero")
    return w


def centrography(
    points: PointsLike, *, weights: str | np.ndarray | pd.Series | None = None, n_std: float = 1.0
) -> Centrography:
    """Mean centre, standard distance and standard deviational ellipse.

    With weights w (default 1) and deviations x̃, ỹ from the weighted mean centre:
    standard distance = √(Σ w (x̃² + ỹ²) / Σ w); the SDE axes are the eigenvectors of
    the weighted covariance matrix [[Σwx̃², Σwx̃ỹ], [Σwx̃ỹ, Σwỹ²]] / Σw, and their
    standard deviations are the square roots of its eigenvalues (population form,
    as ArcGIS; equivalent to Yuill's closed-form angle).

    Parameters
    ----------
    points : GeoDataFrame, GeoSeries or (n, 2) array
    weights : str, array or Series, optional
        A column name of ``points`` or one value per point.
    n_std : float
        Size of the ellipse polygon in standard deviations (1, 2 or 3 as ArcGIS).

    Returns
    -------
    Centrography

    Examples
    --------
    >>> t = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    >>> c = centrography(np.column_stack([3 * np.cos(t), np.sin(t)]))
    >>> round(c.major, 6), round(c.minor, 6), round(c.rotation_deg, 6)
    (3.0, 1.0, 90.0)
    """
    xy, crs, used = metric_xy(points)
    n = len(xy)
    if n == 0:
        raise InputError("centrography needs at least one point")
    w = _weights_array(points, weights, used)
    w = np.ones(n) if w is None else w
    sw = w.sum()
    mx, my = (w[:, None] * xy).sum(axis=0) / sw
    dx, dy = xy[:, 0] - mx, xy[:, 1] - my
    sdist = float(np.sqrt((w * (dx * dx + dy * dy)).sum() / sw))
    cov = (
        np.array(
            [[(w * dx * dx).sum(), (w * dx * dy).sum()], [(w * dx * dy).sum(), (w * dy * dy).sum()]]
        )
        / sw
    )
    vals, vecs = np.linalg.eigh(cov)  # ascending
    vals = np.clip(vals, 0.0, None)
    ux, uy = vecs[:, 1]
    rotation = float(np.degrees(np.arctan2(ux, uy)) % 180.0)
    if np.isclose(rotation, 180.0):
        rotation = 0.0
    sd_major, sd_minor = float(np.sqrt(vals[1])), float(np.sqrt(vals[0]))
    scale = np.sqrt(2.0) * n_std
    major, minor = scale * sd_major, scale * sd_minor
    t = np.linspace(0, 2 * np.pi, 73)[:-1]
    ex = mx + major * np.cos(t) * ux - minor * np.sin(t) * uy
    ey = my + major * np.cos(t) * uy + minor * np.sin(t) * ux
    ellipse = shapely.Polygon(np.column_stack([ex, ey])) if minor > 0 else None
    lon = lat = None
    if crs is not None:
        tr = Transformer.from_crs(crs, 4326, always_xy=True)
        lon, lat = (float(v) for v in tr.transform(mx, my))
    return Centrography(
        mean_x=float(mx),
        mean_y=float(my),
        mean_lon=lon,
        mean_lat=lat,
        standard_distance=sdist,
        sd_major=sd_major,
        sd_minor=sd_minor,
        major=float(major),
        minor=float(minor),
        rotation_deg=rotation,
        n=int(n),
        crs=crs.to_string() if crs is not None else None,
        ellipse=ellipse,
    )


# ---------------------------------------------------------------------------- summary


def point_pattern_summary(
    points: gpd.GeoDataFrame,
    *,
    by: str | None = None,
    windows: gpd.GeoDataFrame | None = None,
    window: WindowLike = None,
    ripley_test: bool = True,
    n_sim: int = 99,
    seed: Seed = 0,
    edge_correction: Literal["donnelly", "none"] = "donnelly",
) -> pd.DataFrame:
    """Point-pattern statistics per group (e.g. per city) and for the whole pattern.

    Parameters
    ----------
    points : GeoDataFrame
        Incubators (any CRS).
    by : str, optional
        Group column, e.g. ``"city"``. Taken from ``points`` when it has the column,
        otherwise from ``windows`` by a point-in-polygon join.
    windows : GeoDataFrame, optional
        Polygons with a ``by`` column (e.g. the study-area ``cities`` layer): each
        group is analysed inside the union of its polygons and the whole pattern
        inside the union of all of them. Groups without a polygon, and everything
        when no windows are given, use the convex hull of their points.
    window : polygons or shapely geometry, optional
        The window of the whole pattern (overrides the union of ``windows``).
    ripley_test : bool
        Add the Besag's L max-deviation test (``ripley_p``) and the distance of the
        largest L(d) − d (``ripley_peak_m``), Ripley's isotropic correction.
    n_sim, seed
        Monte-Carlo simulations and seed for the L test (the same seed per group).
    edge_correction : {"donnelly", "none"}
        For Clark–Evans.

    Returns
    -------
    pandas.DataFrame
        One row per group and a last row ``"all"``: ``group, n, window, area_km2, R,
        R_z, R_p, mean_x, mean_y, mean_lon, mean_lat, standard_distance_m,
        sde_major_m, sde_minor_m, sde_rotation_deg, quadrat_vmr, quadrat_p,
        ripley_p, ripley_peak_m``. Statistics that need more points than a group has
        (3 for the window-based ones) are NaN.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> pts = np.random.default_rng(0).uniform(0, 1000, (40, 2))
    >>> g = gpd.GeoDataFrame({"city": ["a"] * 20 + ["b"] * 20},
    ...                      geometry=gpd.points_from_xy(*pts.T), crs=32650)
    >>> point_pattern_summary(g, by="city", ripley_test=False)["group"].tolist()
    ['a', 'b', 'all']
    """
    metric = to_metric(points[~(points.geometry.isna() | points.geometry.is_empty)])
    crs = metric.crs
    labels: pd.Series | None = None
    if by is not None:
        if by in metric.columns:
            labels = metric[by]
        elif windows is not None and by in windows.columns:
            joined = gpd.sjoin(
                metric[[metric.geometry.name]],
                windows[[by, windows.geometry.name]].to_crs(crs),
                how="left",
                predicate="within",
            )
            labels = joined[~joined.index.duplicated()][by]
        else:
            raise InputError(
                f"group column {by!r} is neither in the points nor in the windows layer"
            )
    win_geoms: dict[Any, shapely.Geometry] = {}
    if windows is not None:
        wm = windows.to_crs(crs)
        if by is not None and by in wm.columns:
            for key, part in wm.groupby(by):
                win_geoms[key] = metric_window(part, crs)
    overall: shapely.Geometry | None = None
    if window is not None:
        overall = metric_window(window, crs, points.crs)
    elif windows is not None:
        overall = metric_window(windows, crs)

    rows = []
    groups: list[tuple[Any, gpd.GeoDataFrame, shapely.Geometry | None]] = []
    if labels is not None:
        for key in sorted(labels.dropna().unique(), key=str):
            groups.append((key, metric[labels == key], win_geoms.get(key)))
    groups.append(("all", metric, overall))
    for key, part, geom in groups:
        rows.append(_summary_row(key, part, geom, ripley_test, n_sim, seed, edge_correction))
    return pd.DataFrame(rows)


def _summary_row(
    key: Any,
    part: gpd.GeoDataFrame,
    geom: shapely.Geometry | None,
    ripley_test: bool,
    n_sim: int,
    seed: Seed,
    edge_correction: str,
) -> dict[str, Any]:
    nan = float("nan")
    row: dict[str, Any] = {"group": key, "n": len(part)}
    row.update(
        window="polygon" if geom is not None else "convex_hull",
        area_km2=nan,
        R=nan,
        R_z=nan,
        R_p=nan,
        mean_x=nan,
        mean_y=nan,
        mean_lon=nan,
        mean_lat=nan,
        standard_distance_m=nan,
        sde_major_m=nan,
        sde_minor_m=nan,
        sde_rotation_deg=nan,
        quadrat_vmr=nan,
        quadrat_p=nan,
        ripley_p=nan,
        ripley_peak_m=nan,
    )
    if len(part) >= 1:
        c = centrography(part)
        row.update(
            mean_x=c.mean_x,
            mean_y=c.mean_y,
            mean_lon=c.mean_lon,
            mean_lat=c.mean_lat,
            standard_distance_m=c.standard_distance,
            sde_major_m=c.major,
            sde_minor_m=c.minor,
            sde_rotation_deg=c.rotation_deg,
        )
    if len(part) < 3:
        return row
    xy = shapely.get_coordinates(part.geometry.centroid.to_numpy())
    try:
        if geom is None:
            geom = shapely.convex_hull(shapely.multipoints(xy))
        ce = clark_evans(xy, window=geom, edge_correction=edge_correction)  # type: ignore[arg-type]
        row.update(area_km2=ce.area / 1e6, R=ce.R, R_z=ce.z, R_p=ce.p)
        q = quadrat_test(xy, window=geom)
        row.update(quadrat_vmr=q.vmr, quadrat_p=q.p)
        if ripley_test:
            r = ripley(xy, window=geom, n_sim=n_sim, seed=seed)
            row.update(ripley_p=r.p, ripley_peak_m=r.peak_distance)
    except InputError as exc:  # degenerate group (collinear points, tiny window)
        log.warning("point-pattern statistics for %s incomplete: %s", key, exc)
    return row
