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
    Nearest-neighbour index R; Monte-Carlo test in the window (CSR or
    inhomogeneous Poisson), Donnelly's (1978) correction only in rectangles.
ripley
    Ripley's K (homogeneous or inhomogeneous) and Besag's L with edge correction,
    pointwise envelopes and a global (simultaneous) Monte-Carlo envelope test.
quadrat_test
    Quadrat counts and the variance-to-mean (index of dispersion) test.
centrography
    Mean centre, standard distance and the standard deviational ellipse.
point_pattern_summary
    All of the above per group (e.g. per city) and for the whole pattern.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy.spatial import cKDTree

from incubloc.coords import to_metric
from incubloc.errors import InputError
from incubloc.processes import fork_map
from incubloc.segments import SegmentIndex, segments_of
from incubloc.stats._random import Seed, rng, uniform_in_polygon
from incubloc.stats._results import Result
from incubloc.stats.distributions import chi2_cdf, chi2_sf, norm_cdf, norm_sf

__all__ = [
    "Centrography",
    "ClarkEvansResult",
    "QuadratResult",
    "RipleyResult",
    "centrography",
    "clark_evans",
    "is_rectangle",
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
        geom = shapely.union_all(valid_parts(geoms.dropna().to_numpy()))
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


def valid_parts(geoms: np.ndarray) -> np.ndarray:
    """``geoms`` with the invalid ones repaired (``make_valid``), the valid ones as
    they are: a national boundary projected from degrees can bend thin parts
    invalid, and a union of invalid polygons fails with a GEOS topology error.

    Examples
    --------
    >>> from shapely.geometry import Polygon, box
    >>> bow = Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # self-crossing
    >>> [bool(g.is_valid) for g in valid_parts(np.array([box(0, 0, 1, 1), bow]))]
    [True, True]
    """
    geoms = np.asarray(geoms, dtype=object)
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    return geoms


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


class _WindowLookup:
    """``shapely.contains_xy(geom, x, y)`` at array-lookup speed, with the same answers.

    The window is rasterised once: a pixel that the boundary does not touch (the
    touched pixels grown by one) lies wholly inside or wholly outside, so its centre
    decides; only points in pixels along the boundary are tested exactly. Monte-Carlo
    edge corrections test millions of circle points against the same window, so this
    pays for itself after the first simulation.
    """

    def __init__(self, geom: shapely.Geometry, max_pixels: int | None = None) -> None:
        from rasterio.features import geometry_mask, rasterize
        from rasterio.transform import Affine
        from scipy.ndimage import binary_dilation

        self.geom = geom
        shapely.prepare(geom)
        if max_pixels is None:  # finer for detailed boundaries, where exact tests are slow
            # up to 16 M one-byte pixels (16 MB) for national windows of ~10⁵ vertices,
            # whose exact tests cost most; smaller windows are unchanged (≤ 1 M below
            # 2 500 vertices)
            max_pixels = int(np.clip(400 * shapely.get_num_coordinates(geom), 10_000,
                                     16_000_000))
        minx, miny, maxx, maxy = shapely.bounds(geom)
        c = float(np.sqrt(max((maxx - minx) * (maxy - miny), 1e-12) / max_pixels))
        self.c, self.x0, self.ytop = c, float(minx - c), float(maxy + c)
        self.cols = int(np.ceil((maxx - minx) / c)) + 2
        self.rows = int(np.ceil((maxy - miny) / c)) + 2
        tr = Affine(c, 0.0, self.x0, 0.0, -c, self.ytop)
        shape = (self.rows, self.cols)
        inside = geometry_mask([geom], out_shape=shape, transform=tr, invert=True)
        edge = rasterize([shapely.boundary(geom)], out_shape=shape, transform=tr,
                         all_touched=True, fill=0, default_value=1, dtype="uint8")
        edge = binary_dilation(edge.astype(bool), structure=np.ones((3, 3), dtype=bool))
        # 0 outside, 1 inside, 2 decide exactly
        self.padded_state = self.padded(np.where(edge, 2, inside).astype(np.uint8))
        self.state = self.padded_state.reshape(self.rows + 2, self.cols + 2)[1:-1, 1:-1]

    @staticmethod
    def padded(raster: np.ndarray) -> np.ndarray:
        """A raster on this lookup's grid framed by one pixel of zeros, flattened: what
        :meth:`pixel_values` reads."""
        return np.pad(raster, 1).ravel()

    def pixel_values(self, padded: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Values of a raster on this lookup's grid (given :meth:`padded`) at (x, y):
        0 off the grid, and for NaN."""
        col = np.floor((x - self.x0) / self.c)
        row = np.floor((self.ytop - y) / self.c)
        # off the grid (NaN too: fmax skips it) → the frame; pixels are exact in floats
        np.fmin(np.fmax(col, -1.0, out=col), float(self.cols), out=col)
        np.fmin(np.fmax(row, -1.0, out=row), float(self.rows), out=row)
        row += 1.0
        row *= float(self.cols + 2)
        row += col
        row += 1.0
        return padded[row.astype(np.intp)]

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        state = self.pixel_values(self.padded_state, x, y)
        out = state == 1
        amb = state == 2
        if amb.any():
            out[amb] = shapely.contains_xy(self.geom, x[amb], y[amb])
        return out


class _Window:
    """What edge corrections need of a window, computed once for a pattern and its
    simulations: a point-in-window lookup, the pixels surely deeper than ``rmax``
    inside it, and a spatial index of the boundary's segments."""

    def __init__(self, geom: shapely.Geometry, rmax: float) -> None:
        from scipy.ndimage import distance_transform_edt

        self.geom, self.rmax = geom, rmax
        self.lookup = _WindowLookup(geom)
        # A pixel wholly inside whose centre lies D from the nearest pixel that is not
        # (the boundary runs through those) holds points at least D − √2·c from the
        # boundary: deep when that is ≥ rmax. A raster distance transform instead of
        # the negative buffer (≈ 20 s for the national boundary); points just beyond
        # rmax that it leaves out are measured exactly, which changes no statistic.
        c = self.lookup.c
        depth = distance_transform_edt(self.lookup.state == 1) * c
        self.deep = self.lookup.padded(depth - np.sqrt(2.0) * c >= rmax)
        # segment i runs from seg[i, :2] to seg[i, 2:]
        self.seg = segments_of(shapely.get_parts(shapely.boundary(geom)))
        self.segments = shapely.linestrings(self.seg.reshape(-1, 2, 2))
        self.tree = shapely.STRtree(self.segments)
        # nearest-segment distances, the same values as self.tree.query_nearest
        self.nearest = SegmentIndex(self.seg)
        self.tables: dict[tuple[float, int], _EdgeTable] = {}

    def edge_table(self, rmax: float, n_radii: int) -> _EdgeTable:
        """The window's :class:`_EdgeTable` for radii up to ``rmax`` (kept)."""
        key = (float(rmax), int(n_radii))
        if key not in self.tables:
            self.tables[key] = _EdgeTable(self, rmax, n_radii)
        return self.tables[key]

    def signed_distance(self, xy: np.ndarray) -> np.ndarray:
        """Distance to the boundary, positive inside the window and negative outside."""
        out = self.nearest.distance(xy)
        return np.where(self.inside(xy), out, -out)

    def inside(self, xy: np.ndarray) -> np.ndarray:
        return self.lookup.contains(xy[:, 0], xy[:, 1])

    @functools.cached_property
    def core(self) -> shapely.Geometry:
        """The window shrunk by ``rmax`` (a negative buffer, built on first use)."""
        return shapely.buffer(self.geom, -self.rmax)

    def boundary_distance(self, xy: np.ndarray) -> np.ndarray:
        """As :func:`_boundary_distance`, from the cached lookups: the same values below
        ``rmax``; at or beyond it the exact distance or ``inf`` (all the edge
        corrections need to know is that it is at least ``rmax``)."""
        out = np.zeros(len(xy))
        inside = self.inside(xy)
        deep = np.zeros(len(xy), dtype=bool)
        deep[inside] = self.lookup.pixel_values(self.deep, xy[inside, 0], xy[inside, 1])
        out[deep] = np.inf
        near = np.flatnonzero(inside & ~deep)
        if len(near):
            out[near] = self.nearest.distance(xy[near])
        return out


# A report tests the same pattern in the same window several times (its summary
# row, the CSR test, the one-sided test): the window's lookups (a negative buffer
# and rasters) and the envelope simulations depend only on the window, the
# distances, the seed and the options, so the last few are kept and reused.
_REMEMBER = 4
_WINDOWS: dict[tuple, _Window] = {}
_SIMULATIONS: dict[tuple, np.ndarray] = {}


def _remembered(store: dict, key: tuple, make: Callable[[], Any], keep: int = _REMEMBER
                ) -> Any:
    """``make()``, or the value kept for ``key`` (the ``keep`` latest are kept)."""
    if key in store:
        store[key] = store.pop(key)  # now the most recent
        return store[key]
    value = make()
    store[key] = value
    while len(store) > keep:
        store.pop(next(iter(store)))
    return value


def _window(geom: shapely.Geometry, rmax: float) -> _Window:
    """The :class:`_Window` of ``geom`` and ``rmax``, built once for repeated calls."""
    return _remembered(_WINDOWS, (shapely.to_wkb(geom), float(rmax)),
                       lambda: _Window(geom, rmax))


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
    hexagonal lattice). ``p`` is two-sided: Monte-Carlo in the window when
    ``n_sim`` > 0 (``p_method`` ``"monte_carlo"``), else the normal approximation
    (``"normal"``, with Donnelly's correction only in a rectangle). ``p_clustered``
    is the one-sided p of "clustered" (mean nearest-neighbour distance shorter than
    under the null). ``null`` names the model simulated; ``expected_mean_null`` is
    the simulations' mean of the statistic (the mean nearest-neighbour distance;
    under the inhomogeneous null the mean intensity-scaled distance d·√λ) and
    ``R_null`` the observed statistic divided by it (NaN without simulations).
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
    p_method: str = "normal"
    p_clustered: float = float("nan")
    p_normal: float = float("nan")
    n_sim: int = 0
    null: str = "csr"
    expected_mean_null: float = float("nan")
    R_null: float = float("nan")
    bandwidth_m: float | None = None
    seed: Any = None


def is_rectangle(geom: shapely.Geometry, rtol: float = 1e-9) -> bool:
    """True when ``geom`` is a single rectangle (any orientation), without holes.

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> is_rectangle(box(0, 0, 3, 1)), is_rectangle(Point(0, 0).buffer(1))
    (True, False)
    """
    if shapely.get_type_id(geom) != 3 or shapely.get_num_interior_rings(geom) > 0:
        return False
    rect = shapely.oriented_envelope(geom)
    area = float(shapely.area(geom))
    return area > 0 and abs(float(shapely.area(rect)) - area) <= rtol * area


def _mean_nn(xy: np.ndarray) -> float:
    d, _ = cKDTree(xy).query(xy, k=2)
    return float(d[:, 1].mean())


def _mean_scaled_nn(xy: np.ndarray, intensity: _Intensity, lam: np.ndarray | None = None
                    ) -> float:
    """Mean of d_i · √λ(x_i), nearest-neighbour distances scaled by the local intensity
    (about 0.5 for an inhomogeneous Poisson pattern); ``lam``: ``intensity.at_points(xy)``
    when known."""
    d, _ = cKDTree(xy).query(xy, k=2)
    if lam is None:
        lam = intensity.at_points(xy)
    return float((d[:, 1] * np.sqrt(lam)).mean())


def _gaussian_sigma(xy: np.ndarray, bandwidth: float | str) -> float:
    if isinstance(bandwidth, str):
        from incubloc.stats.density import bandwidth_rule

        sigma = bandwidth_rule(xy, rule=bandwidth, kernel="gaussian")
    else:
        sigma = float(bandwidth)
    if not sigma > 0:
        raise InputError(f"bandwidth must be positive metres or 'scott', got {bandwidth!r}")
    return sigma


def clark_evans(
    points: PointsLike,
    *,
    window: WindowLike = None,
    edge_correction: Literal["auto", "donnelly", "none"] = "auto",
    n_sim: int = 0,
    seed: Seed = 0,
    null: Literal["csr", "inhomogeneous"] = "csr",
    bandwidth: float | str = "scott",
) -> ClarkEvansResult:
    """Clark–Evans nearest-neighbour index R with z and p.

    R = observed mean nearest-neighbour distance / its expectation under complete
    spatial randomness (CSR) in a window of area A with n points.

    Donnelly's (1978) expectation and variance account for the perimeter P of a
    *rectangular* window (neighbours beyond the boundary are missing, so observed
    distances are too long): E = 0.5 √(A/n) + (0.0514 + 0.041/√n) P/n,
    Var = 0.0703 A/n² + 0.037 P √(A/n⁵). They were derived for rectangles and are
    not valid for other windows (spatstat refuses them there), so
    ``edge_correction="auto"`` (default) uses them only when the window is a
    rectangle and otherwise Clark & Evans (1954): E = 0.5 √(A/n),
    SE = 0.26136 √(A)/n, which ignores the edge (R is biased upwards).

    With ``n_sim`` > 0 the test is Monte-Carlo in the window itself, which needs no
    edge correction: ``n_sim`` patterns of n points from the null (``"csr"``:
    uniform in the window; ``"inhomogeneous"``: the pattern's Gaussian kernel
    intensity with standard deviation ``bandwidth``, as in :func:`ripley`), the same
    statistic (mean nearest-neighbour distance) on each;
    p_clustered = (1 + #{sim ≤ obs}) / (n_sim + 1), p_regular likewise with ≥, and
    p = min(1, 2 · min(p_clustered, p_regular)). Ties count against significance.
    Use it for irregular windows (the default of the report).

    Parameters
    ----------
    points : GeoDataFrame, GeoSeries or (n, 2) array
    window : polygons or shapely geometry, optional
        The study area. Default: the convex hull of the points, which is the smallest
        window containing them and so makes R slightly conservative towards clustering.
    edge_correction : {"auto", "donnelly", "none"}
        ``"donnelly"`` on a window that is not a rectangle is an error.
    n_sim : int
        Monte-Carlo simulations (0: normal approximation only).
    seed : int, Generator or None
    null : {"csr", "inhomogeneous"}
    bandwidth : float or "scott"
        Kernel standard deviation (metres) of the inhomogeneous null.

    Returns
    -------
    ClarkEvansResult

    Examples
    --------
    >>> from shapely.geometry import box
    >>> xx, yy = np.meshgrid(np.arange(10) * 100.0 + 50, np.arange(10) * 100.0 + 50)
    >>> lattice = np.column_stack([xx.ravel(), yy.ravel()])
    >>> res = clark_evans(lattice, window=box(0, 0, 1000, 1000))
    >>> bool(res.R > 1.5 and res.p < 0.001), res.edge_correction
    (True, 'donnelly')
    """
    xy, geom, _ = _resolve(points, window)
    n = len(xy)
    if n < 2:
        raise InputError(f"Clark–Evans needs at least 2 points, got {n}")
    observed = _mean_nn(xy)
    area, perim = float(shapely.area(geom)), float(shapely.length(geom))
    rect = is_rectangle(geom)
    if edge_correction == "auto":
        edge_correction = "donnelly" if rect else "none"
    if edge_correction == "donnelly":
        if not rect:
            raise InputError(
                "Donnelly's edge correction holds only for a rectangular window: use "
                "edge_correction='none' with n_sim > 0 (a Monte-Carlo test in the window)"
            )
        expected = 0.5 * np.sqrt(area / n) + (0.0514 + 0.041 / np.sqrt(n)) * perim / n
        se = np.sqrt(0.0703 * area / n**2 + 0.037 * perim * np.sqrt(area / n**5))
    elif edge_correction == "none":
        expected = 0.5 * np.sqrt(area / n)
        se = 0.26136 / np.sqrt(n * n / area)
    else:
        raise InputError(
            f"unknown edge_correction {edge_correction!r}: use 'auto', 'donnelly' or 'none'"
        )
    z = (observed - expected) / se
    p_norm = float(2.0 * norm_sf(abs(z)))
    p, p_cl, method = p_norm, float(norm_cdf(z)), "normal"
    exp_null = r_null = float("nan")
    sigma = None
    if null not in ("csr", "inhomogeneous"):
        raise InputError(f"unknown null {null!r}: use 'csr' or 'inhomogeneous'")
    if n_sim > 0:
        gen = rng(seed)
        if null == "inhomogeneous":
            sigma = _gaussian_sigma(xy, bandwidth)
            intensity = _intensity(geom, sigma)
            # the same draws as ripley(null="inhomogeneous") with this seed: shared
            sims, lams = _inhomogeneous_draws(intensity, xy, int(n_sim), seed, gen,
                                              lambda: _WindowLookup(geom))
            t_obs = _mean_scaled_nn(xy, intensity)
            t_sim = np.array([_mean_scaled_nn(sp, intensity, lam)
                              for sp, lam in zip(sims, lams, strict=True)])
        else:
            sims = uniform_in_polygon(geom, n * int(n_sim), seed=gen).reshape(-1, n, 2)
            t_obs = observed
            t_sim = np.array([_mean_nn(sp) for sp in sims])
        p_cl = float((1 + np.sum(t_sim <= t_obs)) / (n_sim + 1))
        p_reg = float((1 + np.sum(t_sim >= t_obs)) / (n_sim + 1))
        p, method = float(min(1.0, 2.0 * min(p_cl, p_reg))), "monte_carlo"
        exp_null = float(t_sim.mean())
        r_null = t_obs / exp_null if exp_null > 0 else float("nan")
    elif null != "csr":
        raise InputError("the inhomogeneous null needs simulations: pass n_sim > 0")
    return ClarkEvansResult(
        R=float(observed / expected),
        observed_mean=observed,
        expected_mean=float(expected),
        se=float(se),
        z=float(z),
        p=p,
        n=int(n),
        area=area,
        perimeter=perim,
        edge_correction=edge_correction,
        window="convex_hull" if window is None else "given",
        p_method=method,
        p_clustered=p_cl,
        p_normal=p_norm,
        n_sim=int(n_sim),
        null=null,
        expected_mean_null=exp_null,
        R_null=r_null,
        bandwidth_m=sigma,
        seed=seed if isinstance(seed, int | None) else None,
    )


# ---------------------------------------------------------------------- Ripley K / L


@dataclasses.dataclass
class RipleyResult(Result):
    """Ripley's K, Besag's L, its pointwise and global envelopes, and a global test.

    ``null`` is the model the simulations come from: ``"csr"`` (homogeneous Poisson
    in the window) or ``"inhomogeneous"`` (Poisson with the kernel intensity of the
    pattern, bandwidth ``bandwidth_m``; K is then the inhomogeneous K). ``p`` is the
    simultaneous Monte-Carlo p of the global test ``test`` (``"mad"`` maximum
    absolute deviation, ``"dclf"`` Diggle–Cressie–Loosmore–Ford integrated squared
    deviation) over the whole distance range, on the side ``alternative``
    (``"clustered"``: L above the null, ``"regular"``: below, ``"two-sided"``):
    p = (1 + #{T_sim ≥ T_obs}) / (n_sim + 1). ``global_lo`` / ``global_hi`` are the
    envelope of that test at ``alpha`` (MAD only): L(d) − d leaves it somewhere
    exactly when p ≤ ``alpha``. ``lo`` / ``hi`` are *pointwise* quantiles
    (``envelope_type``): crossing them at some distance is not a test.
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
    null: str = "csr"
    test: str = "mad"
    alternative: str = "two-sided"
    statistic: float = float("nan")
    alpha: float = 0.05
    global_lo: np.ndarray | None = None
    global_hi: np.ndarray | None = None
    bandwidth_m: float | None = None
    envelope_type: str = "pointwise"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["seed"] = self.seed if isinstance(self.seed, int) else None
        return out

    @property
    def peak_distance(self) -> float:
        """The distance at which L(d) − d is largest.

        Not a cluster size: L(d) − d accumulates all pairs up to d, so its maximum
        lies beyond the scale of the clusters and moves with the window and the
        intensity's trend.
        """
        if not np.isfinite(self.L_minus_d).any():
            return float("nan")
        return float(self.distances[int(np.nanargmax(self.L_minus_d))])

    @property
    def rejects(self) -> bool:
        """True when the global test rejects the null at ``alpha``."""
        return bool(np.isfinite(self.p) and self.p <= self.alpha)

    def plot(self, ax: Any = None) -> Any:
        """Plot L(d) − d with the envelopes; returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        null = "CSR" if self.null == "csr" else "inhomogeneous Poisson"
        ax.fill_between(self.distances, self.lo, self.hi, color="0.85",
                        label=f"pointwise {null} envelope")
        if self.global_hi is not None and np.isfinite(self.global_hi).any():
            ax.plot(self.distances, self.global_hi, color="0.3", ls="--", lw=0.9,
                    label=f"global {self.test.upper()} envelope ({1 - self.alpha:.0%})")
            if self.global_lo is not None and np.isfinite(self.global_lo).any():
                ax.plot(self.distances, self.global_lo, color="0.3", ls="--", lw=0.9)
        ax.plot(self.distances, self.L_minus_d, color="C3", label="observed")
        ax.axhline(0.0, color="0.4", lw=0.8)
        ax.set_xlabel("distance d (m)")
        ax.set_ylabel("L(d) − d (m)")
        ax.set_title(f"Besag's L vs {null} ({self.edge_correction} correction), "
                     f"global {self.test.upper()} p = {self.p:.3g}")
        ax.legend(frameon=False)
        return ax


def _circle_fraction(
    geom: shapely.Geometry,
    centre: np.ndarray,
    radius: np.ndarray,
    k: int,
    chunk: int = 4096,
    lookup: _WindowLookup | None = None,
) -> np.ndarray:
    """Fraction of each circle inside ``geom``, from ``k`` evenly spaced points on it
    (``chunk`` circles at a time: arrays that stay in cache)."""
    angles = 2.0 * np.pi * (np.arange(k) + 0.5) / k
    cos, sin = np.cos(angles), np.sin(angles)
    out = np.empty(len(radius))
    shapely.prepare(geom)
    contains = lookup.contains if lookup is not None else (
        lambda xs, ys: shapely.contains_xy(geom, xs, ys)
    )
    for start in range(0, len(radius), chunk):  # bounds memory; vectorised within
        c = centre[start : start + chunk]
        r = radius[start : start + chunk, None]
        x = c[:, :1] + r * cos
        y = c[:, 1:2] + r * sin
        inside = contains(x.ravel(), y.ravel()).reshape(x.shape)
        out[start : start + chunk] = np.count_nonzero(inside, axis=1) / k  # = the mean
    return out


def _circle_fractions(
    win: _Window, centre: np.ndarray, grid: np.ndarray, need: np.ndarray | None = None
) -> np.ndarray:
    """Exact fraction of each circle (``centre[i]``, ``grid[l]``) inside the window.

    Each circle is cut where it crosses a boundary segment (the roots of
    |a + t (b − a) − c|² = r² with t in [0, 1]); the arcs between consecutive cuts
    lie wholly inside or outside the window, and the midpoint of each decides which.
    No sampling: the answer is the arc length inside / 2πr up to rounding, at the
    cost of one point-in-window test per arc (usually two or three per circle).
    Only circles with ``need[i, l]`` (default all) are computed; the others are 1.
    """
    m, k = len(centre), len(grid)
    out = np.ones((m, k))
    if need is None:
        need = np.ones((m, k), dtype=bool)
    rows = np.flatnonzero(need.any(axis=1))
    if not len(rows):
        return out
    c = centre[rows]
    reach = grid[k - 1 - np.argmax(need[rows][:, ::-1], axis=1)]  # largest radius needed
    # candidate segments: those whose bounding box meets the circle's
    boxes = shapely.box(c[:, 0] - reach, c[:, 1] - reach, c[:, 0] + reach, c[:, 1] + reach)
    qi, si = win.tree.query(boxes)
    seg = win.seg[si]
    ax, ay = seg[:, 0] - c[qi, 0], seg[:, 1] - c[qi, 1]
    dx, dy = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    aa = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip(-(ax * dx + ay * dy) / aa, 0.0, 1.0)
    t = np.nan_to_num(t)
    dmin = np.hypot(ax + t * dx, ay + t * dy)
    dmax = np.maximum(np.hypot(ax, ay), np.hypot(ax + dx, ay + dy))
    # the radii of the grid between a segment's nearest and farthest point
    lo = np.searchsorted(grid, dmin * (1 - 1e-12), side="left")
    hi = np.searchsorted(grid, dmax * (1 + 1e-12), side="right")
    cnt = np.maximum(hi - lo, 0)
    pair = np.repeat(np.arange(len(qi)), cnt)
    lev = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
    keep = need[rows[qi[pair]], lev]
    pair, lev = pair[keep], lev[keep]
    r = grid[lev]
    pax, pay, pdx, pdy, paa = ax[pair], ay[pair], dx[pair], dy[pair], aa[pair]
    bb = pax * pdx + pay * pdy
    cc = pax * pax + pay * pay - r * r
    disc = bb * bb - paa * cc
    ok = (disc >= 0) & (paa > 0)
    sq = np.sqrt(np.where(ok, disc, 0.0))
    theta, qid = [], []
    for sign in (-1.0, 1.0):
        with np.errstate(invalid="ignore", divide="ignore"):
            tt = (-bb + sign * sq) / paa
        hit = ok & (tt >= -1e-12) & (tt <= 1 + 1e-12)
        theta.append(np.arctan2(pay[hit] + tt[hit] * pdy[hit], pax[hit] + tt[hit] * pdx[hit]))
        qid.append(qi[pair[hit]] * k + lev[hit])
    # every needed circle also starts an arc at −π, so a circle without cuts is one arc
    ni, nl = np.nonzero(need[rows])
    theta.append(np.full(len(ni), -np.pi))
    qid.append(ni * k + nl)
    theta, qid = np.concatenate(theta), np.concatenate(qid)
    order = np.lexsort((theta, qid))
    theta, qid = theta[order], qid[order]
    first = np.r_[True, qid[1:] != qid[:-1]]
    last = np.r_[qid[1:] != qid[:-1], True]
    nxt = np.empty_like(theta)
    nxt[:-1] = theta[1:]
    nxt[last] = theta[first] + 2.0 * np.pi
    length = nxt - theta
    arc = np.flatnonzero(length > 1e-12)
    mid = theta[arc] + 0.5 * length[arc]
    q, lv = qid[arc] // k, qid[arc] % k
    rr = grid[lv]
    inside = win.lookup.contains(c[q, 0] + rr * np.cos(mid), c[q, 1] + rr * np.sin(mid))
    frac = np.bincount(qid[arc], weights=length[arc] * inside, minlength=len(rows) * k)
    out[rows] = np.where(need[rows], frac.reshape(len(rows), k) / (2.0 * np.pi), 1.0)
    return out


# Radii of the edge-weight table: ``_N_RADII`` steps up to rmax. Circles of the
# largest radii (``_LATTICE_FROM`` · rmax and up) are tabulated once per window on
# lattices of spacing r / ``_LATTICE_STEPS``; the smaller ones, which need fine
# lattices along the whole boundary but meet few points, are computed per point.
_N_RADII = 32
_LATTICE_FROM = 0.25
_LATTICE_STEPS = 4.0
_NODE_SAMPLES = 64


class _EdgeTable:
    """Ripley's inside fractions e(u, r) of a window at the radii ``grid``, as
    p(u, r) = −r cos(π e(u, r)): the signed distance from u to a straight boundary
    line for any r (e = 1 − arccos(p / r) / π), so p is linear in u across the
    kink at r = distance to the boundary where e itself has a square-root
    singularity, and bilinear interpolation of p is exact along straight edges.

    The lattices of the large radii are filled lazily (only the nodes that points
    of some pattern fall between) and kept: the observed pattern and every
    simulation read the same node values, whatever order they come in.
    """

    def __init__(self, win: _Window, rmax: float, n_radii: int = _N_RADII) -> None:
        self.win = win
        self.grid = np.linspace(0.0, rmax, n_radii + 1)
        self.first = max(1, int(np.ceil(_LATTICE_FROM * n_radii)))  # first lattice level
        minx, miny, maxx, maxy = shapely.bounds(win.geom)
        self.x0, self.y0 = minx, miny
        # one lattice per large radius over the bounding box, spacing r / _LATTICE_STEPS,
        # all in one flat array (p, NaN until computed) from offset[k] on
        self.h = self.grid / _LATTICE_STEPS
        with np.errstate(divide="ignore"):
            self.nx = np.where(self.h > 0, (maxx - minx) // np.where(self.h > 0, self.h, 1), 0
                               ).astype(np.int64) + 2
            self.ny = np.where(self.h > 0, (maxy - miny) // np.where(self.h > 0, self.h, 1), 0
                               ).astype(np.int64) + 2
        size = np.where(np.arange(len(self.grid)) >= self.first, self.nx * self.ny, 0)
        self.offset = np.concatenate([[0], np.cumsum(size)[:-1]])
        self.nodes = np.full(int(size.sum()), np.nan)

    def table(self, xy: np.ndarray, b: np.ndarray) -> np.ndarray:
        """p(x_i, r_k) for every point and radius (p = b_i where r_k ≤ b_i)."""
        grid, first = self.grid, self.first
        out = np.repeat(b[:, None], len(grid), axis=1)
        need = grid[None, :] > b[:, None]
        # the small radii: exact fractions at each point
        e = _circle_fractions(self.win, xy, grid[1:first], need[:, 1:first])
        out[:, 1:first] = np.where(need[:, 1:first], -grid[1:first] * np.cos(np.pi * e),
                                   out[:, 1:first])
        # the large radii: bilinear between the four lattice nodes around each point
        rows, ks = np.nonzero(need[:, first:])
        if not len(rows):
            return out
        ks = ks + first
        h, nx, ny = self.h[ks], self.nx[ks], self.ny[ks]
        fx = np.clip((xy[rows, 0] - self.x0) / h, 0.0, nx - 1.000001)
        fy = np.clip((xy[rows, 1] - self.y0) / h, 0.0, ny - 1.000001)
        i0, j0 = fx.astype(np.int64), fy.astype(np.int64)
        tx, ty = fx - i0, fy - j0
        idx = (self.offset[ks] + i0 * ny + j0)[:, None] + np.column_stack(
            [np.zeros_like(ny), ny, np.ones_like(ny), ny + 1])
        v = self.nodes[idx]
        miss = np.isnan(v)
        if miss.any():
            new = np.unique(idx[miss])
            k = np.searchsorted(self.offset, new, side="right") - 1
            ni, nj = np.divmod(new - self.offset[k], self.ny[k])
            node = np.column_stack([self.x0 + ni * self.h[k], self.y0 + nj * self.h[k]])
            r = grid[k]
            # _NODE_SAMPLES points on each circle; a node whose circle lies wholly
            # inside (outside) takes p = its signed distance, which continues p
            # linearly, but at least r (at most −r): a hole or a sliver within the
            # disc that the circle does not meet leaves e = 1
            e = _circle_fraction(self.win.geom, node, r, _NODE_SAMPLES, lookup=self.win.lookup)
            p = -r * np.cos(np.pi * e)
            whole = np.flatnonzero((e == 0.0) | (e == 1.0))
            if len(whole):
                sd = self.win.signed_distance(node[whole])
                rw = r[whole]
                p[whole] = np.where(e[whole] == 1.0, np.maximum(sd, rw), np.minimum(sd, -rw))
            self.nodes[new] = p
            v = self.nodes[idx]
        out[rows, ks] = (v[:, 0] * (1 - tx) * (1 - ty) + v[:, 1] * tx * (1 - ty)
                         + v[:, 2] * (1 - tx) * ty + v[:, 3] * tx * ty)
        return out


class _PairWeights:
    """Ripley's isotropic weights w = 1 / e for ordered pairs (centre, distance), read
    from a table of each near-boundary point's circle fractions at ``n_radii + 1``
    radii: w = 1 exactly for pairs whose circle lies wholly inside (d ≤ b, the
    centre's distance to the boundary); e is floored at 1 / ``cap``. Subclasses
    build the table and say where a distance falls in it and what its interpolated
    values mean."""

    b: np.ndarray
    pos: np.ndarray
    table: np.ndarray
    n_radii: int
    cap: float

    def _near(self, n: int, b: np.ndarray, rmax: float) -> np.ndarray:
        """Points nearer the boundary than ``rmax`` (the table's rows), indexed."""
        self.b = b
        near = np.flatnonzero(b < rmax)
        self.pos = np.full(n, -1)
        self.pos[near] = np.arange(len(near))
        return near

    def _position(self, d: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fraction(self, value: np.ndarray, d: np.ndarray) -> np.ndarray:
        return value

    def part(self, start: int, n: int) -> _PairWeights:
        """The weights of points ``start`` … ``start + n − 1`` only (one pattern of a
        batch), called with the pattern's own indices; the table is shared."""
        view = copy.copy(self)
        view.pos, view.b = self.pos[start:start + n], self.b[start:start + n]
        return view

    def __call__(self, centre: np.ndarray, dd: np.ndarray) -> np.ndarray:
        w = np.ones(len(dd))
        if not len(self.table):
            return w
        pos = self.pos[centre]
        need = pos >= 0
        need &= dd > self.b[centre]
        row = pos[need]
        d = dd[need]
        t = self._position(d)
        lo = np.clip(np.floor(t).astype(int), 0, self.n_radii - 1)
        f = t - lo
        # table[row, lo] and table[row, lo + 1], read from the flat table
        flat = np.ravel(self.table)
        at = row * self.table.shape[1] + lo
        value = flat[at] * (1.0 - f) + flat[at + 1] * f
        w[need] = 1.0 / np.maximum(self._fraction(value, d), 1.0 / self.cap)
        return w


class _Isotropic(_PairWeights):
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
        lookup: _WindowLookup | None = None,
    ) -> None:
        self.rmax, self.k, self.cap, self.n_radii = rmax, k, k, n_radii
        near = self._near(len(xy), b, rmax)
        self.table = np.ones((len(near), n_radii + 1))
        if len(near):
            radii = np.linspace(0.0, rmax, n_radii + 1)
            rows, cols = np.nonzero(radii[None, 1:] > b[near][:, None])
            self.table[rows, cols + 1] = _circle_fraction(
                geom, xy[near[rows]], radii[cols + 1], k, lookup=lookup
            )

    def _position(self, d: np.ndarray) -> np.ndarray:
        return d / self.rmax * self.n_radii


def _lattice_pays(geom: shapely.Geometry, n: int, n_sim: int, rmax: float,
                  n_radii: int = _N_RADII) -> bool:
    """Whether the window's lattice tables (:class:`_EdgeTable`) cost less than the
    per-point circle tables for ``n`` points and ``n_sim`` simulations.

    Estimated from the boundary length P and area A: a point is within r of the
    boundary with probability about min(1, P r / A), and a lattice of spacing h
    needs about P (r + 3h) / h² nodes; a node (64 circle points, sometimes a
    nearest-segment query) costs up to about four per-point circles (32 points),
    as measured on the Nanjing and national windows. Both estimators are valid; the
    choice depends only on the window, n and n_sim, so the observed pattern and its
    simulations are always weighed alike. The lattices (one float per node of the
    bounding box, ≈ 150 MB for the national window at rmax = 50 km) are kept with
    the window.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> _lattice_pays(box(0, 0, 1000, 1000), 2000, 99, 250.0)
    True
    >>> _lattice_pays(box(0, 0, 1000, 1000), 2000, 0, 250.0)
    False
    """
    if n_sim <= 0:
        return False
    perimeter, area = float(shapely.length(geom)), float(shapely.area(geom))
    grid = np.linspace(0.0, rmax, n_radii + 1)
    r = grid[max(1, int(np.ceil(_LATTICE_FROM * n_radii))):]
    h = r / _LATTICE_STEPS
    nodes = float(np.sum(perimeter * (r + 3.0 * h) / h**2))
    evaluations = (n_sim + 1) * n * float(np.sum(np.minimum(1.0, perimeter * r / area)))
    return evaluations > 4.0 * nodes


def _edge_weights(win: _Window, xy: np.ndarray, b: np.ndarray, rmax: float, n_circle: int,
                  lattice: bool) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Ripley's isotropic weights of a pattern: per point (:class:`_Isotropic`) or from
    the window's lattice tables (:class:`_TabulatedIsotropic`)."""
    if lattice:
        return _TabulatedIsotropic(win, xy, b, rmax, n_circle)
    return _Isotropic(win.geom, xy, b, rmax, n_circle, lookup=win.lookup)


class _TabulatedIsotropic(_PairWeights):
    """Ripley's isotropic weights for ordered pairs (centre, distance), tabulated.

    w = 1 / e(x_i, d_ij), e the fraction of the circle around x_i through x_j that
    lies inside the window; w = 1 exactly when the circle lies wholly inside
    (d_ij ≤ b_i, the distance to the boundary). For points closer to the boundary
    than rmax, e is read from the window's :class:`_EdgeTable` at its radii and
    interpolated linearly in r (as p = −r cos(π e), see there) at each pair
    distance; e is floored at 1 / ``cap``. Calling the object weighs any batch of
    pairs.
    """

    def __init__(self, win: _Window, xy: np.ndarray, b: np.ndarray, rmax: float,
                 cap: float, n_radii: int = _N_RADII) -> None:
        self.cap = cap
        self.step = rmax / n_radii
        self.n_radii = n_radii
        near = self._near(len(xy), b, rmax)
        self.table = np.empty((0, n_radii + 1))
        if len(near):
            self.table = win.edge_table(rmax, n_radii).table(xy[near], b[near])

    def _position(self, d: np.ndarray) -> np.ndarray:
        return d / self.step

    def _fraction(self, value: np.ndarray, d: np.ndarray) -> np.ndarray:
        # the table holds p = −r cos(π e)
        return 1.0 - np.arccos(np.clip(value / d, -1.0, 1.0)) / np.pi


def _count_upto(
    values: np.ndarray,
    distances: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    strict: bool = False,
    binner: _Binner | None = None,
) -> np.ndarray:
    """(Weighted) number of ``values`` <= each distance (< with ``strict``), no sort.

    ``binner``: a :class:`_Binner` of the sorted distances, for many calls with the
    same distances (the same bins as ``searchsorted``, faster; not with ``strict``).
    """
    order = np.argsort(distances)
    sorted_d = distances[order]
    # bin k holds the values counted from sorted_d[k] on
    if binner is not None and not strict:
        first = binner(values)
    else:
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
    window: _Window | None = None,
    lattice: bool = False,
) -> np.ndarray:
    n = len(xy)
    rmax = float(distances.max())
    if window is None and edge_correction == "ripley":
        window = _window(geom, rmax)

    def bdist() -> np.ndarray:
        if window is not None:
            return window.boundary_distance(xy)
        return _boundary_distance(geom, xy, rmax, core)

    if n >= _FAST_K_MIN_N and edge_correction in ("none", "border", "ripley"):
        if edge_correction == "none":
            return area * _pair_counts(xy, distances) / (n * (n - 1))
        if edge_correction == "ripley":
            iso = _edge_weights(window, xy, bdist(), rmax, n_circle, lattice)
            return area * _pair_counts(xy, distances, weight=iso) / (n * (n - 1))
        b = bdist()
        n_centres = (b[:, None] >= distances[None, :]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = area / (n - 1) * _pair_counts(xy, distances, b) / n_centres
        return np.where(n_centres > 0, k, np.nan)
    if edge_correction not in ("border", "ripley", "none"):
        raise InputError(
            f"unknown edge_correction {edge_correction!r}: use 'ripley', 'border' or 'none'"
        )
    b = bdist() if edge_correction != "none" else None
    weigh = (_edge_weights(window, xy, b, rmax, n_circle, lattice)
             if edge_correction == "ripley" else None)
    return _k_in_memory(xy, area, distances, edge_correction, b, weigh)


def _k_in_memory(
    xy: np.ndarray,
    area: float,
    distances: np.ndarray,
    edge_correction: str,
    b: np.ndarray | None,
    weigh: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    binner: _Binner | None = None,
) -> np.ndarray:
    """K of a small pattern from all its pairs within the largest distance at once,
    given its points' boundary distances ``b`` ("border", "ripley") and Ripley's
    weights ``weigh(centre, distance)`` ("ripley"); ``binner``: see
    :func:`_count_upto`."""
    n = len(xy)
    pairs = cKDTree(xy).query_pairs(float(distances.max()), output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.hypot(*(xy[i] - xy[j]).T)
    # Ordered pairs: each unordered pair counts once around each of its two points.
    centre = np.concatenate([i, j])
    dd = np.concatenate([d, d])
    if edge_correction == "border":
        bc = b[centre]
        ok = dd <= bc
        # An ordered pair counts at r when d_ij <= r <= b_i.
        count = (_count_upto(dd[ok], distances, binner=binner)
                 - _count_upto(bc[ok], distances, strict=True))
        n_centres = (b[:, None] >= distances[None, :]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = area / (n - 1) * count / n_centres
        return np.where(n_centres > 0, k, np.nan)
    w = weigh(centre, dd) if weigh is not None else np.ones(len(dd))
    return area * _count_upto(dd, distances, w, binner=binner) / (n * (n - 1))


#: Points of the simulated patterns whose boundary distances and Ripley's weights
#: are computed at once (:func:`_k_functions`): bounds the temporary tables.
_BATCH_POINTS = 8192


def _batches(patterns: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """``(first, batch)``: consecutive patterns of ``patterns`` (s, n, 2), about
    ``_BATCH_POINTS`` points at a time."""
    per = max(1, _BATCH_POINTS // max(patterns.shape[1], 1))
    for first in range(0, len(patterns), per):
        yield first, patterns[first:first + per]


def _k_functions(
    patterns: np.ndarray,
    geom: shapely.Geometry,
    area: float,
    distances: np.ndarray,
    edge_correction: str,
    n_circle: int,
    window: _Window | None,
    lattice: bool = False,
) -> np.ndarray:
    """K of each pattern of ``patterns`` (s, n, 2), as rows: the numbers of
    ``_k_function`` on each, bit for bit.

    The simulations of a small pattern cost mostly per call, not per point: the
    boundary distances and Ripley's weights (per point, so independent of the
    other points) are computed for batches of patterns at once; pairs are still
    found and counted pattern by pattern. Large patterns (the chunked path) go one
    at a time.
    """
    s, n = patterns.shape[:2]
    rmax = float(distances.max())
    if window is None and edge_correction == "ripley":
        window = _window(geom, rmax)
    if n >= _FAST_K_MIN_N or window is None or edge_correction not in ("border", "ripley"):
        return np.array([_k_function(p, geom, area, distances, edge_correction, n_circle,
                                     None, window, lattice) for p in patterns]
                        ).reshape(s, len(distances))
    out = np.empty((s, len(distances)))
    binner = _Binner(np.sort(distances))
    for first, batch in _batches(patterns):
        flat = batch.reshape(-1, 2)
        b = window.boundary_distance(flat)
        iso = (_edge_weights(window, flat, b, rmax, n_circle, lattice)
               if edge_correction == "ripley" else None)
        for t, xy in enumerate(batch):
            at = t * n
            out[first + t] = _k_in_memory(xy, area, distances, edge_correction,
                                          b[at:at + n],
                                          None if iso is None else iso.part(at, n), binner)
    return out


# ------------------------------------------------------------- inhomogeneous intensity


class _SameConvolution:
    """``scipy.signal.fftconvolve(a, kernel, mode="same")`` for 2-D float arrays ``a``
    of one shape: the same steps and numbers (real FFTs padded to fast lengths, the
    centre of the full convolution kept), without importing ``scipy.signal`` and
    with the kernel's transform computed once.

    Examples
    --------
    >>> conv = _SameConvolution((3, 4), np.ones((2, 2)))
    >>> conv(np.arange(12.0).reshape(3, 4)).round(6).tolist()[0]
    [0.0, 1.0, 3.0, 5.0]
    """

    def __init__(self, shape: tuple[int, int], kernel: np.ndarray) -> None:
        from scipy import fft as sp_fft

        self.shape, self.kernel, self._fft = tuple(shape), kernel, sp_fft
        self.full = tuple(a + b - 1 for a, b in zip(self.shape, kernel.shape, strict=True))
        self.padded = tuple(sp_fft.next_fast_len(n, True) for n in self.full)
        # fftconvolve skips the transform along axes of length 1 (a one-row grid)
        self.direct = 1 in self.shape or 1 in kernel.shape
        if not self.direct:
            self.spec = sp_fft.rfftn(kernel, self.padded, axes=(0, 1))

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if self.direct:
            from scipy.signal import fftconvolve

            return fftconvolve(a, self.kernel, mode="same")
        fft = self._fft
        ret = fft.irfftn(fft.rfftn(a, self.padded, axes=(0, 1)) * self.spec, self.padded,
                         axes=(0, 1))[: self.full[0], : self.full[1]]
        r0, c0 = ((n - m) // 2 for n, m in zip(self.full, self.shape, strict=True))
        return ret[r0: r0 + self.shape[0], c0: c0 + self.shape[1]].copy()


class _Intensity:
    """Gaussian kernel intensity of a pattern in a window, edge-corrected (Diggle).

    A grid over the window holds the kernel's mass inside the window at each cell
    (e(u) = ∫_W φ_σ(v − u) dv, by FFT of the window mask, computed once per window
    and bandwidth). The intensity at a data point is the leave-one-out estimate
    λ(x_i) = Σ_{j≠i} φ_σ(x_i − x_j) / e(x_i) with exact kernel sums; the surface used
    to simulate from is λ(u) = Σ_j φ_σ(u − x_j) / e(u) on the grid.
    """

    def __init__(self, geom: shapely.Geometry, sigma: float, max_cells: int = 1_000_000) -> None:
        from rasterio.features import geometry_mask
        from rasterio.transform import Affine

        self.geom, self.sigma = geom, float(sigma)
        minx, miny, maxx, maxy = shapely.bounds(geom)
        extent = float(np.sqrt((maxx - minx) * (maxy - miny)))
        # cells resolve both the kernel and the window, within a memory bound
        c = max(min(self.sigma / 4.0, extent / 64.0), extent / np.sqrt(max_cells))
        self.c, self.x0, self.ytop = c, float(minx), float(maxy)
        self.cols = max(1, int(np.ceil((maxx - minx) / c)))
        self.rows = max(1, int(np.ceil((maxy - miny) / c)))
        self.transform = Affine(c, 0.0, self.x0, 0.0, -c, self.ytop)
        shape = (self.rows, self.cols)
        # cells whose centre is inside measure the window's area (for e(u)); every
        # cell the window touches may receive simulated points
        inside = geometry_mask([geom], out_shape=shape, transform=self.transform, invert=True)
        self.mask = geometry_mask([geom], out_shape=shape, transform=self.transform,
                                  invert=True, all_touched=True)
        # Cell masses of the Gaussian (exact per axis), cut at 4σ or at the grid's
        # extent, beyond which nothing is inside the window anyway.
        r = int(min(np.ceil(4.0 * self.sigma / c), max(self.rows, self.cols)))
        edges = (np.arange(-r, r + 2) - 0.5) * c / self.sigma
        g = np.diff(norm_cdf(edges))
        self.kernel = np.outer(g, g)
        self._convolve = _SameConvolution(shape, self.kernel)
        self.edge = np.clip(self._convolve(inside.astype(float)), 0, 1)
        if inside.any():  # the raster's area made exact: e(u) sums to the window's area
            self.edge *= float(shapely.area(geom)) / (float(inside.sum()) * c * c)

    def _cell(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        col = np.clip(np.floor((xy[:, 0] - self.x0) / self.c).astype(np.int64), 0, self.cols - 1)
        row = np.clip(np.floor((self.ytop - xy[:, 1]) / self.c).astype(np.int64), 0, self.rows - 1)
        return row, col

    def at_points(self, xy: np.ndarray) -> np.ndarray:
        """Leave-one-out, edge-corrected intensity at each point (per m²)."""
        n = len(xy)
        # Every pair up to 8σ (all pairs for small patterns): isolated points keep the
        # Gaussian's tail instead of an arbitrary floor, which would let one pair of
        # them dominate K_inhom through 1 / (λ_i λ_j).
        if n >= _FAST_K_MIN_N:  # memory bound: pairs in chunks (same sums)
            s = kernel_sums_chunked(xy, self.sigma, 8.0 * self.sigma)
        else:
            pairs = cKDTree(xy).query_pairs(8.0 * self.sigma, output_type="ndarray")
            d2 = ((xy[pairs[:, 0]] - xy[pairs[:, 1]]) ** 2).sum(axis=1)
            phi = np.exp(-0.5 * d2 / self.sigma**2) / (2.0 * np.pi * self.sigma**2)
            s = (np.bincount(pairs[:, 0], phi, minlength=n)
                 + np.bincount(pairs[:, 1], phi, minlength=n))
        row, col = self._cell(xy)
        e = np.maximum(self.edge[row, col], 1e-12)
        floor = np.exp(-32.0) / (2.0 * np.pi * self.sigma**2)  # no neighbour within 8σ
        return np.maximum(s, floor) / e

    def surface(self, xy: np.ndarray) -> np.ndarray:
        """Edge-corrected kernel intensity (relative) on the grid, 0 outside the window."""
        row, col = self._cell(xy)
        counts = np.bincount(row * self.cols + col, minlength=self.rows * self.cols)
        conv = self._convolve(counts.reshape(self.rows, self.cols).astype(float))
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(self.mask & (self.edge > 1e-12),
                           np.clip(conv, 0, None) / np.maximum(self.edge, 0.05), 0.0)
        return lam

    def sample(self, lam: np.ndarray, n: int, gen: np.random.Generator,
               lookup: _WindowLookup) -> np.ndarray:
        """``n`` points with density ∝ ``lam`` inside the window (cells, then uniform)."""
        p = lam.ravel()
        cum = np.cumsum(p)
        out = np.empty((0, 2))
        need = n
        while need > 0:
            m = int(need * 1.3) + 16
            cell = np.searchsorted(cum, gen.uniform(0.0, cum[-1], m), side="right")
            cell = np.minimum(cell, len(p) - 1)
            row, col = np.divmod(cell, self.cols)
            x = self.x0 + (col + gen.uniform(0.0, 1.0, m)) * self.c
            y = self.ytop - (row + gen.uniform(0.0, 1.0, m)) * self.c
            keep = lookup.contains(x, y)
            pts = np.column_stack([x[keep], y[keep]])[:need]
            out = np.vstack([out, pts])
            need = n - len(out)
        return out


# The inhomogeneous null's intensity (an FFT per window and bandwidth) and its
# draws (with their intensities at the drawn points) are shared by the L and
# Clark–Evans tests of the same pattern and seed, which simulate the same patterns.
_INTENSITIES: dict[tuple, _Intensity] = {}
_DRAWS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _intensity(geom: shapely.Geometry, sigma: float) -> _Intensity:
    """The :class:`_Intensity` of ``geom`` and ``sigma``, built once for repeated calls."""
    return _remembered(_INTENSITIES, (shapely.to_wkb(geom), float(sigma)),
                       lambda: _Intensity(geom, sigma), keep=2)


def _inhomogeneous_draws(
    intensity: _Intensity, xy: np.ndarray, n_sim: int, seed: Seed,
    gen: np.random.Generator, lookup: Callable[[], _WindowLookup],
) -> tuple[np.ndarray, np.ndarray]:
    """``n_sim`` patterns of ``len(xy)`` points from the kernel intensity of ``xy``,
    drawn with ``gen`` (a fresh generator of ``seed``), and the leave-one-out
    intensity at each drawn point: arrays (n_sim, n, 2) and (n_sim, n). Kept for an
    integer seed (the latest only: a national pattern's draws are tens of MB)."""
    def draw() -> tuple[np.ndarray, np.ndarray]:
        n = len(xy)
        surface = intensity.surface(xy)
        where = lookup()
        sims = np.array([intensity.sample(surface, n, gen, where) for _ in range(n_sim)]
                        ).reshape(n_sim, n, 2)
        lams = np.array([intensity.at_points(p) for p in sims]).reshape(n_sim, n)
        return sims, lams

    if not isinstance(seed, int | np.integer):
        return draw()
    key = (shapely.to_wkb(intensity.geom), intensity.sigma, int(n_sim), int(seed),
           xy.tobytes())
    return _remembered(_DRAWS, key, draw, keep=1)


def _k_inhom(
    xy: np.ndarray,
    lam: np.ndarray,
    geom: shapely.Geometry,
    distances: np.ndarray,
    edge_correction: str,
    n_circle: int,
    window: _Window | None,
    lattice: bool = False,
) -> np.ndarray:
    """Inhomogeneous K of Baddeley, Møller & Waagepetersen (2000), spatstat's Kinhom.

    K(r) = Σ_i Σ_{j≠i} e_ij 1(d_ij ≤ r) / (λ_i λ_j) / Σ_i 1/λ_i, the renormalised form
    (spatstat's default ``renormalise=TRUE, normpower=1``), e_ij Ripley's isotropic
    weight (or 1).
    """
    if len(xy) >= _FAST_K_MIN_N:  # memory bound: pairs in chunks (same sums)
        return k_inhom_chunked(xy, lam, geom, distances, edge_correction, n_circle, window,
                               lattice=lattice)
    weigh = _inhom_edge_weights(xy, geom, float(distances.max()), edge_correction,
                                n_circle, window, lattice)
    return _k_inhom_in_memory(xy, lam, distances, weigh)


def _inhom_edge_weights(
    xy: np.ndarray, geom: shapely.Geometry, rmax: float, edge_correction: str,
    n_circle: int, window: _Window | None, lattice: bool,
) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """Ripley's isotropic weights ``weigh(centre, distance)`` of ``xy`` for the
    inhomogeneous K, or None without edge correction."""
    if edge_correction == "ripley":
        window = window if window is not None else _window(geom, rmax)
        return _edge_weights(window, xy, window.boundary_distance(xy), rmax, n_circle,
                             lattice)
    if edge_correction == "none":
        return None
    raise InputError(
        f"the inhomogeneous K supports edge_correction 'ripley' or 'none', "
        f"not {edge_correction!r}"
    )


def _inhom_pair_terms(
    i: np.ndarray, j: np.ndarray, d: np.ndarray, lam: np.ndarray,
    weigh: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Both orders of the pairs (i, j) at distances ``d``: the distances and the terms
    e_ij / (λ_i λ_j) of the inhomogeneous K."""
    centre = np.concatenate([i, j])
    other = np.concatenate([j, i])
    dd = np.concatenate([d, d])
    e = weigh(centre, dd) if weigh is not None else np.ones(len(dd))
    return dd, e / (lam[centre] * lam[other])


def _k_inhom_in_memory(
    xy: np.ndarray,
    lam: np.ndarray,
    distances: np.ndarray,
    weigh: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    binner: _Binner | None = None,
) -> np.ndarray:
    """:func:`_k_inhom` of a small pattern from all its pairs at once, given Ripley's
    weights ``weigh(centre, distance)`` (None: no edge correction); ``binner``: see
    :func:`_count_upto`."""
    pairs = cKDTree(xy).query_pairs(float(distances.max()), output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    dd, w = _inhom_pair_terms(i, j, np.hypot(*(xy[i] - xy[j]).T), lam, weigh)
    return _count_upto(dd, distances, w, binner=binner) / float(np.sum(1.0 / lam))


def _k_inhoms(
    patterns: np.ndarray,
    lams: np.ndarray,
    geom: shapely.Geometry,
    distances: np.ndarray,
    edge_correction: str,
    n_circle: int,
    window: _Window | None,
    lattice: bool = False,
) -> np.ndarray:
    """:func:`_k_inhom` of each pattern of ``patterns`` (s, n, 2) with its
    intensities ``lams`` (s, n), as rows, bit for bit; small patterns' Ripley
    weights in batches, as :func:`_k_functions`."""
    s, n = patterns.shape[:2]
    rmax = float(distances.max())
    if n >= _FAST_K_MIN_N or edge_correction != "ripley":
        return np.array([_k_inhom(p, lam, geom, distances, edge_correction, n_circle, window,
                                  lattice) for p, lam in zip(patterns, lams, strict=True)]
                        ).reshape(s, len(distances))
    window = window if window is not None else _window(geom, rmax)
    out = np.empty((s, len(distances)))
    binner = _Binner(np.sort(distances))
    for first, batch in _batches(patterns):
        flat = batch.reshape(-1, 2)
        iso = _edge_weights(window, flat, window.boundary_distance(flat), rmax, n_circle,
                            lattice)
        for t, xy in enumerate(batch):
            out[first + t] = _k_inhom_in_memory(xy, lams[first + t], distances,
                                                iso.part(t * n, n), binner)
    return out


def kernel_sums_chunked(xy: np.ndarray, sigma: float, reach: float) -> np.ndarray:
    """Σ_{j≠i} φ_σ(x_i − x_j) over the pairs within ``reach``, for each point, with the
    pairs generated and summed in bounded chunks (:func:`_pair_chunks`).

    The same sums as holding every pair at once (each pair's term is computed by the
    same arithmetic; only the order of the additions differs), in O(N + chunk)
    memory: a national pattern of 2·10⁴ points has ~10⁸ pairs within 8σ of a
    national-scale bandwidth, several GB as arrays.

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [100.0, 0.0], [5000.0, 0.0]])
    >>> s = kernel_sums_chunked(xy, 100.0, 800.0)
    >>> bool(np.isclose(s[0], np.exp(-0.5) / (2 * np.pi * 100.0**2))), float(s[2])
    (True, 0.0)
    """
    n = len(xy)
    s = np.zeros(n)
    r2 = reach * reach
    norm = 2.0 * np.pi * sigma**2
    xo = None
    for order, i, j, _ in _pair_chunks(xy, reach):
        if xo is None:
            xo = xy[order]
        d2 = ((xo[i] - xo[j]) ** 2).sum(axis=1)  # as the in-memory path computes it
        keep = d2 <= r2
        phi = np.exp(-0.5 * d2[keep] / sigma**2) / norm
        s += np.bincount(order[i[keep]], phi, minlength=n)
        s += np.bincount(order[j[keep]], phi, minlength=n)
    return s


def k_inhom_chunked(
    xy: np.ndarray,
    lam: np.ndarray,
    geom: shapely.Geometry,
    distances: np.ndarray,
    edge_correction: str,
    n_circle: int,
    window: _Window | None,
    lattice: bool = False,
) -> np.ndarray:
    """:func:`_k_inhom` with the pairs within rmax generated and weighed in bounded
    chunks (:func:`_pair_chunks`) instead of all at once: the same weighted counts
    (only the order of the additions differs), in O(N + chunk) memory."""
    rmax = float(distances.max())
    iso = _inhom_edge_weights(xy, geom, rmax, edge_correction, n_circle, window, lattice)
    total = np.zeros(len(distances))
    xo = None
    for order, i, j, _ in _pair_chunks(xy, rmax):
        if xo is None:
            xo = xy[order]
        d = np.hypot(*(xo[i] - xo[j]).T)  # as the in-memory path computes it
        keep = d <= rmax
        dd, w = _inhom_pair_terms(order[i[keep]], order[j[keep]], d[keep], lam, iso)
        total += _count_upto(dd, distances, w)
    return total / float(np.sum(1.0 / lam))


def _global_test(
    obs: np.ndarray, sims: np.ndarray, distances: np.ndarray, test: str, alternative: str,
    alpha: float,
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """Global Monte-Carlo test of L(d) − d over all distances (see :func:`ripley`)."""
    mean = np.nanmean(sims, axis=0)

    def dev(x: np.ndarray) -> np.ndarray:
        diff = np.nan_to_num(x - mean, nan=0.0)
        if alternative == "clustered":
            return np.maximum(diff, 0.0)
        if alternative == "regular":
            return np.maximum(-diff, 0.0)
        return np.abs(diff)

    if test == "mad":
        t_obs, t_sim = float(dev(obs).max()), dev(sims).max(axis=1)
    else:  # dclf: integrated squared deviation (trapezoid-free: steps of the distance grid)
        step = np.diff(np.concatenate([[0.0], distances]))
        t_obs, t_sim = float((dev(obs) ** 2 * step).sum()), (dev(sims) ** 2 * step).sum(axis=1)
    n_sim = len(sims)
    p = float((1 + np.sum(t_sim >= t_obs)) / (n_sim + 1))  # ties count against significance
    glo = np.full(len(distances), np.nan)
    ghi = np.full(len(distances), np.nan)
    # p <= alpha exactly when at most m simulated statistics reach T_obs
    m = int(np.floor(alpha * (n_sim + 1) + 1e-9)) - 1
    if test == "mad" and 0 <= m < n_sim:
        crit = float(np.sort(t_sim)[::-1][m])
        if alternative in ("clustered", "two-sided"):
            ghi = mean + crit
        if alternative in ("regular", "two-sided"):
            glo = mean - crit
    return t_obs, p, mean, glo, ghi


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
    null: Literal["csr", "inhomogeneous"] = "csr",
    bandwidth: float | str = "scott",
    test: Literal["mad", "dclf"] = "mad",
    alternative: Literal["two-sided", "clustered", "regular"] = "two-sided",
    alpha: float = 0.05,
) -> RipleyResult:
    """Ripley's K and Besag's L with a global Monte-Carlo envelope test.

    K(d) = A / (n (n − 1)) Σ_i Σ_{j≠i} w_ij 1(d_ij ≤ d) and L(d) = √(K(d)/π), so
    L(d) − d ≈ 0 under complete spatial randomness (CSR). Pairs come from a KD-tree
    search up to the largest distance (no n × n matrix); from 3 000 points on they
    are counted exactly in bounded chunks from a sorted grid instead, so memory
    stays O(n) however many pairs lie within the largest distance (same K, see
    ``benchmarks/``).

    Edge corrections:

    * ``"ripley"`` (default): Ripley's isotropic correction, w_ij = 1 / (fraction of
      the circle through j centred on i that lies inside the window). Circles wholly
      inside the window (d_ij ≤ distance of i to the boundary) get w = 1 exactly.
      For the others the fraction is tabulated at 32 radii up to the largest
      distance and interpolated at d_ij (weights capped at ``n_circle``), in one of
      two ways, the same for the pattern and all its simulations: per point, from
      ``n_circle`` points evenly spaced on each circle; or, when the simulations
      make it pay (many points × simulations for the window's boundary length),
      from tables of the window built once: exact fractions at each point for radii
      below a quarter of the largest distance, and for the larger radii lattices of
      spacing r/4 (64 points per node circle, bilinear). The table interpolates
      p = −r cos(π e), which for a straight edge is the signed distance to it, so
      the square-root kink of e at r = distance to the boundary is followed exactly.
      The window is rasterised once, so circle points are classified by table
      lookup (exactly, with the polygon consulted only along the boundary).
    * ``"border"``: the reduced-sample estimator; only points at least d from the
      boundary serve as centres at distance d:
      K(d) = A / (n − 1) · Σ_{i: b_i ≥ d} #{j ≠ i: d_ij ≤ d} / #{i: b_i ≥ d}.
    * ``"none"``: w_ij = 1 (biased low near the boundary; for comparison).

    Nulls (``null``):

    * ``"csr"``: n points uniform in the window polygon itself (not its bounding
      box). Rejecting it says the pattern is not homogeneous Poisson: clustering
      *or* a trend in intensity (e.g. incubators following the cities).
    * ``"inhomogeneous"``: K is the inhomogeneous K (Baddeley, Møller &
      Waagepetersen 2000, as spatstat's ``Kinhom`` with its default
      renormalisation): K(d) = Σ_i Σ_{j≠i} w_ij 1(d_ij ≤ d) / (λ_i λ_j) / Σ_i 1/λ_i,
      λ_i the leave-one-out, edge-corrected Gaussian kernel intensity at x_i with
      standard deviation ``bandwidth``. The simulations draw n points from that
      kernel intensity of the observed pattern (inhomogeneous Poisson conditioned
      on n) and re-estimate λ from each simulated pattern in the same way.
      Rejecting it says there is interaction (clustering) *beyond* the intensity
      trend at the stated bandwidth; a smaller bandwidth absorbs more of the
      clustering into the trend, so the answer depends on it.

    The test is global (simultaneous over the distance range): T = max_d of the
    deviation of L(d) − d from the simulations' mean (``"mad"``) or its integral
    of squares (``"dclf"``), the deviation taken on the side ``alternative``:
    p = (1 + #{T_sim ≥ T_obs}) / (n_sim + 1); ties count against significance.
    ``lo`` / ``hi`` are pointwise ``envelope`` quantiles, for display only: with
    50 distances some of them are crossed by chance. ``global_lo`` / ``global_hi``
    (MAD) form the envelope of the global test at ``alpha``. The distance of the
    largest L(d) − d is not a cluster size.

    Parameters
    ----------
    points : GeoDataFrame, GeoSeries or (n, 2) array
    window : polygons or shapely geometry
        The study area (required: a bounding box would inflate K).
    distances : array of float, optional
        Distances in metres. Default: 50 steps up to a quarter of the shorter side of
        the window's bounding box.
    n_sim : int
        Number of simulations (0 for none).
    seed : int, Generator or None
    edge_correction : {"ripley", "border", "none"}
        (the inhomogeneous K takes "ripley" or "none").
    envelope : (float, float)
        Lower and upper quantiles of the pointwise envelope.
    n_circle : int
        Points sampled on each circle of the per-point isotropic tables; the
        isotropic weights are capped at ``n_circle``.
    null : {"csr", "inhomogeneous"}
    bandwidth : float or "scott"
        Standard deviation (metres) of the Gaussian kernel of the intensity for the
        inhomogeneous null; ``"scott"``: Scott's two-dimensional rule,
        σ̂ · n^(−1/6) (:func:`incubloc.stats.density.bandwidth_rule`).
    test : {"mad", "dclf"}
    alternative : {"two-sided", "clustered", "regular"}
    alpha : float
        Level of the global envelope.

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
    if null not in ("csr", "inhomogeneous"):
        raise InputError(f"unknown null {null!r}: use 'csr' or 'inhomogeneous'")
    if test not in ("mad", "dclf"):
        raise InputError(f"unknown test {test!r}: use 'mad' or 'dclf'")
    if alternative not in ("two-sided", "clustered", "regular"):
        raise InputError(
            f"unknown alternative {alternative!r}: use 'two-sided', 'clustered' or 'regular'"
        )
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

    # Everything that depends only on the window and the distances, computed once
    # for the pattern and every simulation.
    win = _window(geom, float(distances.max())) if edge_correction != "none" or n_sim else None
    # Ripley's weights per point, or from lattice tables of the window when the
    # simulations make those pay (the same estimator for the pattern and every simulation)
    lattice = edge_correction == "ripley" and _lattice_pays(geom, n, n_sim,
                                                             float(distances.max()))
    gen = rng(seed)
    sigma: float | None = None
    if null == "inhomogeneous":
        if isinstance(bandwidth, str):
            from incubloc.stats.density import bandwidth_rule

            sigma = bandwidth_rule(xy, rule=bandwidth, kernel="gaussian")
        else:
            sigma = float(bandwidth)
        if not (sigma is not None and sigma > 0):
            raise InputError(f"bandwidth must be positive metres or 'scott', got {bandwidth!r}")
        intensity = _intensity(geom, sigma)

        def k_of(pts: np.ndarray) -> np.ndarray:
            lam = intensity.at_points(pts)
            return _k_inhom(pts, lam, geom, distances, edge_correction, n_circle, win,
                            lattice)
    else:

        def k_of(pts: np.ndarray) -> np.ndarray:
            return _k_function(pts, geom, area, distances, edge_correction, n_circle, None, win,
                               lattice)

    def lmd(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = k_of(pts)
        return k, np.sqrt(np.clip(k, 0.0, None) / np.pi) - distances

    K, obs = lmd(xy)
    glo = ghi = np.full(len(distances), np.nan)
    if n_sim > 0:

        def simulate() -> np.ndarray:
            if null == "inhomogeneous":
                sims_xy, lams = _inhomogeneous_draws(intensity, xy, n_sim, seed, gen,
                                                     lambda: win.lookup)
                ks = _k_inhoms(sims_xy, lams, geom, distances, edge_correction, n_circle,
                               win, lattice)
            else:
                sims_xy = uniform_in_polygon(geom, n * n_sim, seed=gen).reshape(n_sim, n, 2)
                ks = _k_functions(sims_xy, geom, area, distances, edge_correction, n_circle,
                                  win, lattice)
            return np.sqrt(np.clip(ks, 0.0, None) / np.pi) - distances

        if isinstance(seed, int | np.integer):  # same input, same seed: same curves
            key = ("ripley", shapely.to_wkb(geom), distances.tobytes(), int(n_sim), int(seed),
                   edge_correction, int(n_circle), null, sigma,
                   xy.tobytes() if null == "inhomogeneous" else n)
            sims = _remembered(_SIMULATIONS, key, simulate).copy()
        else:
            sims = simulate()
        lo, hi = np.nanquantile(sims, envelope, axis=0)
        t_obs, p, mean, glo, ghi = _global_test(obs, sims, distances, test, alternative, alpha)
    else:
        lo = hi = mean = np.full(len(distances), np.nan)
        t_obs, p = np.nanmax(np.abs(obs)), float("nan")
    return RipleyResult(
        distances=distances,
        K=K,
        L=np.sqrt(np.clip(K, 0.0, None) / np.pi),
        L_minus_d=obs,
        lo=lo,
        hi=hi,
        sim_mean=mean,
        max_deviation=float(np.nanmax(np.abs(obs - mean))) if n_sim > 0 else float(t_obs),
        p=p,
        n=int(n),
        area=area,
        edge_correction=edge_correction,
        n_sim=int(n_sim),
        envelope=(float(envelope[0]), float(envelope[1])),
        seed=seed if isinstance(seed, int | None) else None,
        null=null,
        test=test,
        alternative=alternative,
        statistic=float(t_obs),
        alpha=float(alpha),
        global_lo=glo,
        global_hi=ghi,
        bandwidth_m=sigma,
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


def cell_fraction_inside(cells: np.ndarray, geom: shapely.Geometry, full_area: float
                         ) -> np.ndarray:
    """Fraction of each cell's area inside ``geom``: 1 for cells the (prepared) window
    properly contains, 0 for cells it does not meet, and the exact overlay only for
    the cells along its boundary. At national extent (tens of thousands of cells, a
    window of ~10⁵ vertices) overlaying every cell takes minutes; the boundary cells
    are a small share of them.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> cells = shapely.box([0, 10, 30], [0, 0, 0], [10, 20, 40], [10, 10, 10])
    >>> cell_fraction_inside(cells, box(0, 0, 15, 10), 100.0).tolist()
    [1.0, 0.5, 0.0]
    """
    frac = np.zeros(len(cells))
    meets = shapely.intersects(geom, cells)
    inside = np.zeros(len(cells), dtype=bool)
    inside[meets] = shapely.contains_properly(geom, cells[meets])
    frac[inside] = 1.0
    edge = meets & ~inside
    frac[edge] = shapely.area(shapely.intersection(cells[edge], geom)) / full_area
    return frac


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
    frac = cell_fraction_inside(cells, geom, cell_size**2)
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
    p_up = float(chi2_sf(chi2, df))
    p_two = float(min(1.0, 2.0 * min(p_up, chi2_cdf(chi2, df))))
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
    edge_correction: Literal["auto", "donnelly", "none"] = "auto",
    ripley_null: Literal["csr", "inhomogeneous"] = "csr",
    distances: np.ndarray | None = None,
    workers: int = 1,
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
        Add the global MAD test of Besag's L (``ripley_p``, two-sided, against
        ``ripley_null``) and the distance of the largest L(d) − d
        (``ripley_peak_m``: a description, not a cluster size), Ripley's isotropic
        correction.
    n_sim, seed
        Monte-Carlo simulations and seed for the Clark–Evans test in each window and
        the L test (the same seed per group); ``n_sim=0`` gives the normal
        approximation for Clark–Evans.
    edge_correction : {"auto", "donnelly", "none"}
        For Clark–Evans' R and its normal approximation (Donnelly in rectangles
        only).
    ripley_null : {"csr", "inhomogeneous"}
        The null of the L test.
    distances : array, optional
        Distances (metres) of every group's L test (default: :func:`ripley`'s, up to
        a quarter of each window's shorter side).
    workers : int
        Processes for the groups' rows (:func:`incubloc.processes.fork_map`; 0: the
        available cores). Each row is seeded on its own, so the table is the same
        with any number; with a ``Generator`` as ``seed`` the rows are computed here.

    Returns
    -------
    pandas.DataFrame
        One row per group and a last row ``"all"``: ``group, n, window, area_km2, R,
        R_z, R_p, R_p_clustered, R_p_method, mean_x, mean_y, mean_lon, mean_lat, standard_distance_m,
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

    groups: list[tuple[Any, gpd.GeoDataFrame, shapely.Geometry | None]] = []
    if labels is not None:
        for key in sorted(labels.dropna().unique(), key=str):
            groups.append((key, metric[labels == key], win_geoms.get(key)))
    def row(group: tuple[Any, gpd.GeoDataFrame, shapely.Geometry | None]) -> dict[str, Any]:
        key, part, geom = group
        return _summary_row(key, part, geom, ripley_test, n_sim, seed, edge_correction,
                            ripley_null, distances)

    # A shared Generator would hand out draws in the order the rows are computed.
    own_seed = seed is None or isinstance(seed, int | np.integer)
    rows = fork_map(row, groups, workers=workers if own_seed else 1,
                    cost=lambda g: float(len(g[1])))
    # The whole pattern here, last: a caller testing it again (its L test) reuses
    # this process's window tables and simulations.
    rows.append(row(("all", metric, overall)))
    return pd.DataFrame(rows)


def _summary_row(
    key: Any,
    part: gpd.GeoDataFrame,
    geom: shapely.Geometry | None,
    ripley_test: bool,
    n_sim: int,
    seed: Seed,
    edge_correction: str,
    ripley_null: str = "csr",
    distances: np.ndarray | None = None,
) -> dict[str, Any]:
    nan = float("nan")
    row: dict[str, Any] = {"group": key, "n": len(part)}
    row.update(
        window="polygon" if geom is not None else "convex_hull",
        area_km2=nan,
        R=nan,
        R_z=nan,
        R_p=nan,
        R_p_clustered=nan,
        R_p_method="",
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
        ce = clark_evans(
            xy, window=geom, edge_correction=edge_correction, n_sim=n_sim, seed=seed  # type: ignore[arg-type]
        )
        row.update(area_km2=ce.area / 1e6, R=ce.R, R_z=ce.z, R_p=ce.p,
                   R_p_clustered=ce.p_clustered, R_p_method=ce.p_method)
        q = quadrat_test(xy, window=geom)
        row.update(quadrat_vmr=q.vmr, quadrat_p=q.p)
        if ripley_test:
            r = ripley(xy, window=geom, n_sim=n_sim, seed=seed, null=ripley_null,  # type: ignore[arg-type]
                       distances=distances)
            row.update(ripley_p=r.p, ripley_peak_m=r.peak_distance)
    except InputError as exc:  # degenerate group (collinear points, tiny window)
        log.warning("point-pattern statistics for %s incomplete: %s", key, exc)
    return row
