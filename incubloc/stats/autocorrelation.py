"""Spatial autocorrelation of incubator counts, densities and rates.

Incubators are aggregated to areal units: a square or hexagonal grid clipped to
land (:func:`make_grid`), at several cell sizes for a multi-scale profile
(:func:`multiscale_moran`, like ArcGIS's Incremental Spatial Autocorrelation but
read on Moran's I), or administrative units (the study-area ``districts`` layer,
:func:`unit_rates`: empirical-Bayes standardised rates per km²).

* :func:`global_moran` — Moran's I with esda.Moran's analytic and permutation
  inference, computed here with esda's numbers;
* :func:`local_moran` — local Moran's I (LISA quadrants HH / LH / LL / HL);
* :func:`getis_ord` — Getis–Ord Gi* (hot and cold spots, ArcGIS-style bins);
* :func:`join_counts` — esda.Join_Counts for categorical labels (do building-layout
  or standalone incubators sit next to each other?).

The local statistics equal esda's values (``Is``, ``Gs``, ``Zs``) on the same
weights, but their inference is incubloc's own: conditional permutation
(:mod:`incubloc.stats.permutation`) or, for counts of points, the constant-risk
Monte-Carlo null (:mod:`incubloc.stats.constant_risk`), with draws that do not
depend on row order, ties counted against significance, and a multiple-testing
correction (Benjamini–Hochberg by default). See ``docs/methods.md``.

Seeds: esda's global Moran and join counts draw permutations from NumPy's global
state, which is seeded for the call and then restored (:func:`incubloc.stats._random.legacy_seed`).

Weights ids are positions 0..n−1 in the units' row order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy import sparse
from scipy.spatial import cKDTree

from incubloc._guards import check_array_memory
from incubloc.coords import to_metric
from incubloc.errors import InputError
from incubloc.io import atomic_path
from incubloc.stats._random import Seed, legacy_seed, seed_int
from incubloc.stats._results import Result
from incubloc.stats.constant_risk import (
    NULLS,
    RATE_COLUMNS,
    constant_risk_test,
    rate_values,
)
from incubloc.stats.distributions import norm_cdf, norm_sf
from incubloc.stats.permutation import (
    CORRECTIONS,
    conditional_permutation,
    confidence_bins,
    correction_threshold,
    never_significant,
    permutations_needed,
)
from incubloc.stats.pointpattern import metric_window
from incubloc.stats.sparse_weights import SparseWeights, knn_pairs, queen_pairs
from incubloc.stats.sparse_weights import attach_islands as join_islands

if TYPE_CHECKING:
    from libpysal import weights as lpw

# esda and libpysal (with scikit-learn) take a second to import: they are imported
# where they are used, so that results sent from another process load without them.
# With default weights the statistics here need neither (light_weights builds the
# same neighbours as a sparse matrix); a caller's libpysal W or Graph goes to them.

__all__ = [
    "GI_BINS",
    "JoinCountResult",
    "MoranResult",
    "aggregate",
    "assuncao_reis_rate",
    "empirical_bayes_rate",
    "unit_rates",
    "getis_ord",
    "getis_ord_summary",
    "global_moran",
    "join_counts",
    "lisa_statistic",
    "local_moran",
    "moran_statistics",
    "grid_area",
    "light_weights",
    "make_grid",
    "multiscale_moran",
    "resolve_correction",
    "resolve_null",
    "weights",
    "write_grid",
]

log = logging.getLogger(__name__)

_QUADRANTS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
# Lattice neighbour offsets (row, col).
_ROOK = ((-1, 0), (1, 0), (0, -1), (0, 1))
_QUEEN = (*_ROOK, (-1, -1), (-1, 1), (1, -1), (1, 1))
# Pointy-top hexagons in "odd-r" offset rows: odd rows are shifted half a cell east.
_HEX_EVEN = ((0, -1), (0, 1), (-1, -1), (-1, 0), (1, -1), (1, 0))
_HEX_ODD = ((0, -1), (0, 1), (-1, 0), (-1, 1), (1, 0), (1, 1))


# ------------------------------------------------------------------------------ grid


def grid_area(
    area: gpd.GeoDataFrame | gpd.GeoSeries | shapely.Geometry, *, crs: Any = None,
) -> tuple[shapely.Geometry, CRS | None]:
    """The area a grid of :func:`make_grid` covers: one valid geometry in metres, and
    its CRS.

    Projecting and dissolving a detailed study area costs more than the grid; a
    caller that grids the same area at several cell sizes computes this once and
    passes the geometry (with ``crs``) to :func:`make_grid`, which gives the same
    grids.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> geom, crs = grid_area(gpd.GeoSeries([box(118, 31, 119, 32)], crs=4326), crs=32650)
    >>> crs.to_epsg(), round(geom.area / 1e6)
    (32650, 10530)
    """
    if isinstance(area, shapely.Geometry):
        return shapely.make_valid(area), CRS.from_user_input(crs) if crs is not None else None
    frame = area if isinstance(area, gpd.GeoDataFrame) else gpd.GeoDataFrame(geometry=area)
    metric = to_metric(frame, crs=crs)
    return metric_window(metric, metric.crs), metric.crs


def make_grid(
    area: gpd.GeoDataFrame | gpd.GeoSeries | shapely.Geometry,
    *,
    cell_size: float,
    shape: Literal["square", "hex"] = "square",
    crs: Any = None,
    min_fraction: float = 0.0,
) -> gpd.GeoDataFrame:
    """A square or hexagonal grid over ``area``, clipped to it.

    Parameters
    ----------
    area : GeoDataFrame, GeoSeries or shapely geometry
        The land area (e.g. the study-area ``cities`` layer); polygons are dissolved.
        A shapely geometry must already be in metres (or give ``crs``).
    cell_size : float
        Metres. A square cell has this side; a hexagon has the same area
        (cell_size²), so profiles over square and hexagonal grids are comparable.
    shape : {"square", "hex"}
        Hexagons are pointy-top, in rows with odd rows shifted half a cell east.
    crs : CRS-like, optional
        Metric CRS of the grid. Default: that of :func:`incubloc.coords.to_metric`
        for ``area`` (or the CRS of a shapely ``area`` given here).
    min_fraction : float
        Drop cells whose land fraction (clipped area / full cell area) is below this.

    Returns
    -------
    GeoDataFrame
        ``cell_id``, ``grid_row``, ``grid_col``, ``land_fraction`` and the clipped
        cell geometry, in the metric CRS. ``attrs["grid"]`` records shape and size;
        :func:`weights` uses it to build lattice neighbours.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = make_grid(box(0, 0, 1000, 500), cell_size=250, crs=32650)
    >>> len(g), float(g.area.sum())
    (8, 500000.0)
    >>> len(make_grid(box(0, 0, 1000, 500), cell_size=250, shape="hex", crs=32650)) > 0
    True
    """
    if not cell_size > 0:
        raise InputError(f"cell_size must be positive metres, got {cell_size}")
    geom, out_crs = grid_area(area, crs=crs)
    cell_size = float(cell_size)
    if not cell_size > 0:
        raise InputError(f"cell_size must be a positive number of metres, got {cell_size!r}")
    minx, miny, maxx, maxy = shapely.bounds(geom)
    # A shapely polygon costs a few hundred bytes; refuse grids that cannot fit.
    n_cells = (np.ceil((maxx - minx) / cell_size) + 2) * (np.ceil((maxy - miny) / cell_size) + 2)
    check_array_memory(
        (int(n_cells), 48), "float64",
        what=f"a grid of {int(n_cells):,} cells of {cell_size:g} m",
        suggestion="use larger cell sizes (stats.cell_sizes_m) or a smaller study area",
    )
    if shape == "square":
        xs = minx + np.arange(int(np.ceil((maxx - minx) / cell_size)) + 1) * cell_size
        ys = miny + np.arange(int(np.ceil((maxy - miny) / cell_size)) + 1) * cell_size
        col, row = np.meshgrid(np.arange(len(xs) - 1), np.arange(len(ys) - 1))
        col, row = col.ravel(), row.ravel()
        cells = shapely.box(xs[col], ys[row], xs[col + 1], ys[row + 1])
        full_area = cell_size**2
    elif shape == "hex":
        side = cell_size / np.sqrt(1.5 * np.sqrt(3.0))  # area 3√3/2·s² = cell_size²
        width, dy = np.sqrt(3.0) * side, 1.5 * side
        nrow = int(np.ceil((maxy - miny) / dy)) + 2
        ncol = int(np.ceil((maxx - minx) / width)) + 2
        col, row = np.meshgrid(np.arange(ncol), np.arange(nrow))
        col, row = col.ravel(), row.ravel()
        cx = minx + col * width + (row % 2) * width / 2.0
        cy = miny + row * dy
        ang = np.radians(np.arange(6) * 60.0 + 30.0)
        ring = np.stack([side * np.cos(ang), side * np.sin(ang)], axis=1)
        ring = np.concatenate([ring, ring[:1]])
        coords = np.stack([cx, cy], axis=1)[:, None, :] + ring[None, :, :]
        cells = shapely.polygons(coords)
        full_area = 1.5 * np.sqrt(3.0) * side**2
    else:
        raise InputError(f"unknown grid shape {shape!r}: use 'square' or 'hex'")
    shapely.prepare(geom)
    hit = shapely.intersects(geom, cells)
    cells, row, col = cells[hit], row[hit], col[hit]
    inside = shapely.contains_properly(geom, cells)
    clipped = cells.copy()
    clipped[~inside] = shapely.intersection(cells[~inside], geom)
    clipped = _polygonal(clipped)
    frac = shapely.area(clipped) / full_area
    keep = (frac > 0) & (frac >= min_fraction)
    grid = gpd.GeoDataFrame(
        {
            "cell_id": np.arange(int(keep.sum())),
            "grid_row": row[keep].astype(np.int64),
            "grid_col": col[keep].astype(np.int64),
            "land_fraction": np.minimum(frac[keep], 1.0),
        },
        geometry=clipped[keep],
        crs=out_crs,
    )
    grid.attrs["grid"] = {"shape": shape, "cell_size": cell_size}
    log.info("grid of %d %s cells of %.0f m", len(grid), shape, cell_size)
    return grid


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of intersection results (rare collections)."""
    kinds = shapely.get_type_id(geoms)
    for i in np.flatnonzero(kinds == 7):  # GeometryCollection: few, on touching edges
        parts = shapely.get_parts(geoms[i])
        polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        geoms[i] = shapely.union_all(polys) if len(polys) else shapely.Polygon()
    return geoms


def _equal_area_km2(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Areas in km² in a Lambert azimuthal equal-area CRS centred on the data."""
    lonlat = gdf.geometry.to_crs(4326) if not gdf.crs.is_geographic else gdf.geometry
    minx, miny, maxx, maxy = lonlat.total_bounds
    laea = CRS.from_proj4(
        f"+proj=laea +lat_0={(miny + maxy) / 2:.6f} +lon_0={(minx + maxx) / 2:.6f} "
        "+datum=WGS84 +units=m +no_defs"
    )
    return gdf.geometry.to_crs(laea).area.to_numpy() / 1e6


def aggregate(
    points: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    value: Literal["count", "density"] = "count",
    by: str | None = None,
) -> gpd.GeoDataFrame:
    """Count points per unit (grid cell or administrative unit).

    A point on a shared edge is counted once (in the first unit that holds it).

    Parameters
    ----------
    points : GeoDataFrame
        Incubators, any CRS (projected to the units' CRS).
    units : GeoDataFrame
        Polygons (e.g. from :func:`make_grid` or the ``districts`` layer).
    value : {"count", "density"}
        Which of ``count`` and ``density`` is copied to the ``value`` column used
        by :func:`multiscale_moran`.
    by : str, optional
        A categorical column of ``points``; adds one ``count_<label>`` column each.

    Returns
    -------
    GeoDataFrame
        A copy of ``units`` with ``count``, ``area_km2`` (land area in an equal-area
        Lambert azimuthal CRS centred on the data), ``density`` (per km²) and
        ``value``.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> grid = make_grid(box(0, 0, 2000, 1000), cell_size=1000, crs=32650)
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([100, 200, 1500], [10, 20, 30]),
    ...                        crs=32650)
    >>> aggregate(pts, grid)["count"].tolist()
    [2, 1]
    """
    if value not in ("count", "density"):
        raise InputError(f"value must be 'count' or 'density', not {value!r}")
    out = units.copy()
    out["count"], by_label = _unit_counts(points, units, by=by)
    for label, counts in by_label.items():
        out[f"count_{label}"] = counts
    out["area_km2"] = _equal_area_km2(out) if len(out) else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["density"] = out["count"] / out["area_km2"]
    out["value"] = out[value]
    return out


def _unit_counts(points: gpd.GeoDataFrame, units: gpd.GeoDataFrame, *, by: str | None = None
                 ) -> tuple[np.ndarray, dict[Any, np.ndarray]]:
    """Points per unit (a point on a shared edge in the first unit that holds it), and
    per label of ``by`` when given."""
    if units.crs is None or points.crs is None:
        raise InputError("points and units need a CRS: set one (e.g. .set_crs(4326))")
    if by and by not in points.columns:
        raise InputError(f"column {by!r} is not in the points table")
    pts = points[~(points.geometry.isna() | points.geometry.is_empty)]
    pts = pts.to_crs(units.crs)
    key = gpd.GeoDataFrame({"_unit": np.arange(len(units))}, geometry=units.geometry.values)
    joined = gpd.sjoin(
        gpd.GeoDataFrame(
            {"_label": pts[by].to_numpy() if by else np.zeros(len(pts))},
            geometry=pts.geometry.values,
        ),
        key,
        how="inner",
        predicate="intersects",
    )
    joined = joined[~joined.index.duplicated(keep="first")]
    counts = np.bincount(joined["_unit"].to_numpy(), minlength=len(units)).astype(np.int64)
    by_label = {}
    if by:
        for label in sorted(joined["_label"].dropna().unique(), key=str):
            sel = joined["_unit"][joined["_label"] == label].to_numpy()
            by_label[label] = np.bincount(sel, minlength=len(units)).astype(np.int64)
    outside = len(pts) - len(joined)
    if outside:
        log.info("%d of %d points fall in no unit", outside, len(pts))
    return counts, by_label


# --------------------------------------------------------------------------- weights


def weights(
    units: gpd.GeoDataFrame,
    *,
    kind: Literal["queen", "rook", "knn"] = "queen",
    k: int = 8,
    transform: str = "r",
    attach_islands: bool = True,
) -> lpw.W:
    """libpysal spatial weights for ``units``, ids 0..n−1 in row order.

    * A grid from :func:`make_grid` (``attrs["grid"]`` and ``grid_row`` /
      ``grid_col``): lattice neighbours by cell position (queen: 8, rook: 4,
      hexagons: 6 for both), built vectorised, so clipping along coasts cannot break
      an adjacency through floating-point vertex mismatches.
    * Other polygons, queen: polygons sharing a vertex, computed with shapely
      (:func:`incubloc.stats.sparse_weights.queen_pairs`, the neighbours
      ``libpysal.weights.Queen.from_dataframe`` finds); rook:
      ``libpysal.weights.Rook.from_dataframe``.
    * ``kind="knn"``: ``libpysal.weights.KNN`` on centroids (or the points).

    The statistics of this module build the same neighbours without libpysal
    (:func:`light_weights`) when no ``w`` is given.

    Islands (units with no contiguity neighbour, e.g. a cell on an island in the
    Yangtze) would drop out of the statistics; with ``attach_islands`` each is joined
    to its nearest unit (by centroid), symmetrically, as
    ``libpysal.weights.attach_islands`` does.

    Parameters
    ----------
    units : GeoDataFrame
    kind : {"queen", "rook", "knn"}
    k : int
        Neighbours for ``kind="knn"``.
    transform : str
        libpysal transform: "r" row-standardised (default), "b" binary, …
    attach_islands : bool

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = make_grid(box(0, 0, 3000, 3000), cell_size=1000, crs=32650)
    >>> w = weights(g)
    >>> w.n, w.cardinalities[4], w.transform
    (9, 8, 'R')
    """
    n = len(units)
    if n < 2:
        raise InputError(f"spatial weights need at least 2 units, got {n}")
    grid = units.attrs.get("grid")
    on_grid = bool(grid) and {"grid_row", "grid_col"} <= set(units.columns)
    if kind == "queen" or (kind == "rook" and on_grid):
        w = light_weights(units, kind=kind, attach_islands=attach_islands).to_W()
    elif kind in ("rook", "knn"):
        from libpysal import weights as lpw

        cent = shapely.get_coordinates(units.geometry.centroid.to_numpy())
        if kind == "knn":
            w = lpw.KNN(cent, k=min(k, n - 1), silence_warnings=True)
        else:
            w = lpw.Rook.from_dataframe(units, use_index=False, silence_warnings=True)
            if attach_islands and w.islands:
                log.info("%d island unit(s) joined to their nearest neighbour", len(w.islands))
                w = lpw.attach_islands(w, lpw.KNN(cent, k=1), silence_warnings=True)
    else:
        raise InputError(f"unknown weights kind {kind!r}: use 'queen', 'rook' or 'knn'")
    w.transform = transform
    return w


def light_weights(
    units: gpd.GeoDataFrame,
    *,
    kind: Literal["queen", "rook", "knn"] = "queen",
    k: int = 8,
    attach_islands: bool = True,
) -> SparseWeights:
    """The neighbours :func:`weights` gives, as
    :class:`~incubloc.stats.sparse_weights.SparseWeights` (a CSR matrix, without
    importing libpysal).

    The same pairs as :func:`weights`: lattice neighbours for a grid of
    :func:`make_grid`; Queen contiguity (a shared vertex, as ``libpysal.weights.Queen``)
    for other polygons, islands joined to their nearest unit by centroid as
    ``libpysal.weights.attach_islands`` does; ``k`` nearest neighbours (as
    ``libpysal.weights.KNN``) for ``kind="knn"``. ``.sparse("r")`` equals libpysal's
    ``W.sparse`` after ``w.transform = "r"``, entry for entry. Rook contiguity of
    polygons that are not a grid is libpysal's only (:func:`weights`).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = make_grid(box(0, 0, 3000, 3000), cell_size=1000, crs=32650)
    >>> lw = light_weights(g)
    >>> lw.n, int(lw.cardinalities[4]), float(lw.sparse("r")[4].sum())
    (9, 8, 1.0)
    """
    n = len(units)
    if n < 2:
        raise InputError(f"spatial weights need at least 2 units, got {n}")
    cent = shapely.get_coordinates(units.geometry.centroid.to_numpy())
    grid = units.attrs.get("grid")
    if kind == "knn":
        return SparseWeights.from_pairs(*knn_pairs(cent, min(k, n - 1)), n)
    if kind in ("queen", "rook") and grid and {"grid_row", "grid_col"} <= set(units.columns):
        i, j = _lattice_pairs(
            units["grid_row"].to_numpy(), units["grid_col"].to_numpy(), grid["shape"], kind
        )
        if attach_islands:
            i, j = _attach(i, j, cent)
        return SparseWeights.from_pairs(i, j, n)
    if kind == "queen":
        lw = SparseWeights.from_pairs(*queen_pairs(units.geometry.to_numpy()), n)
        if attach_islands and len(lw.islands):
            log.info("%d island unit(s) joined to their nearest neighbour", len(lw.islands))
            lw = join_islands(lw, cent)
        return lw
    if kind == "rook":
        raise InputError("rook contiguity of polygons that are not a grid: use weights()")
    raise InputError(f"unknown weights kind {kind!r}: use 'queen', 'rook' or 'knn'")


def _lattice_pairs(
    row: np.ndarray, col: np.ndarray, shape: str, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    r0, c0 = row.min() - 1, col.min() - 1
    rr, cc = row - r0, col - c0
    index = np.full((rr.max() + 2, cc.max() + 2), -1)
    index[rr, cc] = np.arange(len(row))
    pos = np.arange(len(row))
    src, dst = [], []
    if shape == "hex":
        # offsets depend on the parity of the absolute row
        for offsets, parity in ((_HEX_EVEN, 0), (_HEX_ODD, 1)):
            sel = (row % 2) == parity
            for dr, dc in offsets:
                nb = index[rr[sel] + dr, cc[sel] + dc]
                ok = nb >= 0
                src.append(pos[sel][ok])
                dst.append(nb[ok])
    else:
        for dr, dc in _QUEEN if kind == "queen" else _ROOK:
            nb = index[rr + dr, cc + dc]
            ok = nb >= 0
            src.append(pos[ok])
            dst.append(nb[ok])
    return np.concatenate(src), np.concatenate(dst)


def _attach(i: np.ndarray, j: np.ndarray, cent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    has = np.zeros(len(cent), dtype=bool)
    has[i] = True
    islands = np.flatnonzero(~has)
    if len(islands) == 0:
        return i, j
    log.info("%d island cell(s) joined to their nearest cell", len(islands))
    _, nn = cKDTree(cent).query(cent[islands], k=2)
    nb = nn[:, 1]
    pairs = np.unique(
        np.concatenate(
            [
                np.column_stack([i, j]),
                np.column_stack([islands, nb]),
                np.column_stack([nb, islands]),
            ]
        ),
        axis=0,
    )
    return pairs[:, 0], pairs[:, 1]


@contextlib.contextmanager
def _kept_transform(w: lpw.W) -> Iterator[lpw.W]:
    """esda sets ``w.transform`` in place; put the caller's transform back after."""
    before = w.transform
    try:
        yield w
    finally:
        w.transform = before


@contextlib.contextmanager
def _esda_call(w: lpw.W, seed: Seed) -> Iterator[None]:
    """Seed and restore NumPy's global state and ``w.transform`` around an esda call.

    Also silences esda's notices about future defaults (the p-values returned are
    documented here) and pandas deprecations raised inside esda.
    """
    with _kept_transform(w), legacy_seed(seed), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*alternative hypothesis.*")
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        warnings.filterwarnings("ignore", message=".*row_stack.*")
        warnings.filterwarnings("ignore", message=".*not fully connected.*")
        warnings.filterwarnings("ignore", category=RuntimeWarning)  # 0/0 in esda's z_sim
        yield


def _values(units: pd.DataFrame, column: str) -> np.ndarray:
    if column not in units.columns:
        raise InputError(f"column {column!r} is not in the units table (has {list(units.columns)})")
    y = pd.to_numeric(units[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):
        raise InputError(
            f"column {column!r} has {len(bad)} missing or non-numeric value(s) (rows "
            f"{', '.join(str(b + 1) for b in bad[:5])}): fill them (e.g. 0 for counts) first"
        )
    return y


def _weights_for(units: gpd.GeoDataFrame, w: Any) -> lpw.W | SparseWeights:
    """The caller's libpysal weights (a Graph as a W), or by default the queen
    neighbours of :func:`weights` built without libpysal (:func:`light_weights`)."""
    if w is None:
        return light_weights(units)
    from libpysal import weights as lpw

    if not isinstance(w, lpw.W) and hasattr(w, "to_W"):  # a libpysal.graph.Graph
        w = w.to_W()
    if w.n != len(units):
        raise InputError(f"the weights have {w.n} units but the table has {len(units)} rows")
    return w


# ---------------------------------------------------------------------- global Moran


@dataclasses.dataclass
class MoranResult(Result):
    """Global Moran's I (esda.Moran): analytic (normality) and permutation inference.

    ``p_norm`` is two-sided; ``p_sim`` is esda's folded pseudo p-value,
    (1 + #{I_sim as or more extreme}) / (permutations + 1).
    """

    I: float  # noqa: E741 -- the statistic's name
    EI: float
    VI_norm: float
    z_norm: float
    p_norm: float
    z_sim: float
    p_sim: float
    EI_sim: float
    n: int
    permutations: int
    column: str
    seed: int | None


def global_moran(
    units: gpd.GeoDataFrame,
    column: str,
    *,
    w: lpw.W | None = None,
    permutations: int = 999,
    seed: Seed = 0,
    transformation: str = "r",
) -> MoranResult:
    """Global Moran's I of ``column`` (esda.Moran's numbers, two-tailed).

    With the default weights (``w=None``) the statistic and its inference are
    computed here (:func:`moran_statistics`) on the queen neighbours of
    :func:`light_weights`, without importing esda or libpysal; every number equals
    ``esda.Moran(y, weights(units), transformation=transformation,
    permutations=permutations)`` under the same seed. A ``w`` given by the caller
    (libpysal W or Graph) goes to esda.Moran itself.

    Parameters
    ----------
    units : GeoDataFrame
    column : str
        E.g. ``"count"`` or ``"density"`` from :func:`aggregate`.
    w : libpysal W, optional
        Default :func:`weights` (queen, islands attached, row-standardised).
    permutations : int
    seed : int, Generator or None
        NumPy's global state is seeded with it for the call and restored after.
    transformation : str
        Weights transformation, as esda's ("r" row-standardised).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = make_grid(box(0, 0, 5000, 5000), cell_size=1000, crs=32650)
    >>> g["v"] = (g["grid_col"] < 2).astype(float)
    >>> res = global_moran(g, "v", permutations=99)
    >>> bool(res.I > 0.5 and res.p_sim <= 0.01)
    True
    """
    y = _values(units, column)
    w = _weights_for(units, w)
    if isinstance(w, SparseWeights) and transformation.lower() in ("r", "b"):
        with legacy_seed(seed):
            m = moran_statistics(y, w.sparse(transformation), permutations=permutations)
    else:
        if isinstance(w, SparseWeights):
            w = w.to_W()
        import esda

        with _esda_call(w, seed):
            e = esda.Moran(y, w, transformation=transformation, permutations=permutations)
        m = {k: getattr(e, k) for k in ("I", "EI", "VI_norm", "z_norm", "p_norm", "n")}
        if permutations:
            m.update(z_sim=e.z_sim, p_sim=e.p_sim, EI_sim=e.EI_sim)
    nan = float("nan")
    return MoranResult(
        I=float(m["I"]),
        EI=float(m["EI"]),
        VI_norm=float(m["VI_norm"]),
        z_norm=float(m["z_norm"]),
        p_norm=float(m["p_norm"]),
        z_sim=float(m["z_sim"]) if permutations else nan,
        p_sim=float(m["p_sim"]) if permutations else nan,
        EI_sim=float(m["EI_sim"]) if permutations else nan,
        n=int(m["n"]),
        permutations=int(permutations),
        column=column,
        seed=seed_int(seed) if isinstance(seed, int | np.integer) else None,
    )


def moran_statistics(y: np.ndarray, w: sparse.spmatrix, *, permutations: int = 999
                     ) -> dict[str, Any]:
    """Global Moran's I with esda.Moran's inference, on a (transformed) sparse ``w``.

    ``I = n / S0 · Σ_i z_i (W z)_i / Σ z²`` with ``z = y − ȳ``; ``EI = −1/(n − 1)``;
    ``VI_norm`` the variance under normality (Cliff & Ord), ``z_norm`` and its
    two-sided normal p-value ``p_norm``. With permutations, ``y`` is permuted over
    the units ``permutations`` times, drawn as esda draws them
    (``np.random.permutation(z)`` from NumPy's global state, which the caller seeds):
    ``p_sim`` is esda's folded pseudo p-value ``(1 + min(#{I_sim ≥ I}, P − #{I_sim ≥
    I})) / (P + 1)``, ``EI_sim`` the mean of the simulated I and ``z_sim`` the
    observed I standardised by them. Each permutation's I is computed with the same
    operations in the same order as esda's, so every number equals esda's (esda 2.9
    with libpysal 4.14: bit for bit).

    Examples
    --------
    >>> from scipy import sparse
    >>> w = sparse.csr_matrix(np.array([[0, 1, 0], [0.5, 0, 0.5], [0, 1, 0]]))
    >>> m = moran_statistics(np.array([1.0, 2.0, 6.0]), w, permutations=0)
    >>> round(float(m["I"]), 4), m["EI"]  # Σ z·Wz = −1.5, Σ z² = 14, n / S0 = 1
    (-0.1071, -0.5)
    """
    from scipy.special import ndtr

    y = np.asarray(y, dtype=float).ravel()
    w = sparse.csr_matrix(w)
    n = len(y)
    z = y - y.mean()
    z2ss = (z * z).sum()
    # S0, S1, S2 as libpysal's W.s0 / s1 / s2 compute them
    s0 = w.sum()
    t = w.transpose() + w
    s1 = t.multiply(t).sum() / 2.0
    s2 = (np.array(w.sum(1) + w.sum(0).transpose()) ** 2).sum()
    ei = -1.0 / (n - 1)
    s02 = s0 * s0
    vi = (n * n * s1 - n * s2 + 3 * s02) / ((n - 1) * (n + 1) * s02) - (1.0 / (n - 1)) ** 2
    i_obs = n / s0 * (z * (w @ z)).sum() / z2ss
    z_norm = (i_obs - ei) / vi ** (1 / 2.0)
    # norm.sf(x) = ndtr(−x) and norm.cdf(x) = ndtr(x): the smaller tail, doubled
    p_norm = (ndtr(-z_norm) if z_norm > 0 else ndtr(z_norm)) * 2.0
    out: dict[str, Any] = {"I": i_obs, "EI": ei, "VI_norm": vi, "z_norm": z_norm,
                           "p_norm": p_norm, "n": n}
    if not permutations:
        return out
    # One permutation at a time, as esda: the permuted vector and its lag stay in
    # the CPU cache. Blocks of permutations (one sparse product for many columns)
    # were measured slower at the report's sizes (16,000 cells: 0.19–0.28 s against
    # 0.12 s per 999 permutations); the draws themselves cost more than either.
    sim = np.empty(int(permutations))
    for k in range(int(permutations)):  # esda's draws, in esda's order
        zp = np.random.permutation(z)  # noqa: NPY002
        sim[k] = (zp * (w @ zp)).sum()
    sim = n / s0 * sim / z2ss
    larger = (sim >= i_obs).sum()
    if permutations - larger < larger:
        larger = permutations - larger
    with np.errstate(divide="ignore", invalid="ignore"):
        ei_sim = sim.sum() / permutations
        z_sim = (i_obs - ei_sim) / sim.std()
    out.update(p_sim=(larger + 1.0) / (permutations + 1.0), EI_sim=ei_sim, z_sim=z_sim)
    return out


# ----------------------------------------------------------------------- local Moran


def resolve_correction(correction: str | None = None, fdr: bool | None = None) -> str:
    """The multiple-testing correction from ``correction`` or the older ``fdr`` flag.

    Examples
    --------
    >>> resolve_correction(fdr=False), resolve_correction(), resolve_correction("bonferroni")
    ('none', 'fdr', 'bonferroni')
    """
    if correction is None:
        correction = "fdr" if fdr is None or fdr else "none"
    if correction not in CORRECTIONS:
        raise InputError(
            f"unknown multiple-testing correction {correction!r}: use one of {', '.join(CORRECTIONS)}"
        )
    return correction


def resolve_null(null: str | None) -> str:
    """Check the null of the local statistics (default ``"permutation"``).

    Examples
    --------
    >>> resolve_null(None), resolve_null("constant_risk")
    ('permutation', 'constant_risk')
    """
    null = "permutation" if null is None else null
    if null not in NULLS:
        raise InputError(f"unknown null {null!r} for the local statistics: use one of "
                         f"{', '.join(NULLS)}")
    return null


def _constant_risk_inputs(units: gpd.GeoDataFrame, column: str, count_column: str,
                          area_column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts, land areas and a canonical unit order for the constant-risk null.

    The tested column must be the ``unit_rates`` column of that name recomputed from
    the counts, otherwise the simulations would test another statistic.
    """
    if column not in RATE_COLUMNS:
        raise InputError(
            f"null='constant_risk' recomputes the statistic from simulated counts and "
            f"knows the columns {', '.join(RATE_COLUMNS)} of unit_rates, not {column!r}: "
            "use one of them or null='permutation'")
    counts = _values(units, count_column)
    area = _values(units, area_column)
    if (counts < 0).any() or not np.allclose(counts, np.round(counts)):
        raise InputError(f"column {count_column!r} must hold counts (non-negative integers) "
                         "for null='constant_risk'")
    if not (area > 0).all():
        bad = np.flatnonzero(~(area > 0))
        raise InputError(f"column {area_column!r} has {len(bad)} unit(s) without land area "
                         f"(rows {', '.join(str(b + 1) for b in bad[:5])}): drop them first")
    if not np.allclose(rate_values(counts, area, column), _values(units, column),
                       rtol=1e-6, atol=1e-9):
        raise InputError(f"column {column!r} is not {count_column!r} per {area_column!r} as "
                         "unit_rates computes it; recompute it with unit_rates or use "
                         "null='permutation'")
    # Canonical order by position (rounded to a millimetre), so reordering rows moves
    # each unit's simulated counts with it.
    pts = units.geometry.representative_point()
    order = np.lexsort((np.round(pts.y.to_numpy(), 3), np.round(pts.x.to_numpy(), 3)))
    return counts, area, order


def _local_permutations(
    n: int, permutations: int, alpha: float, correction: str, max_permutations: int, what: str
) -> tuple[int, bool]:
    """Raise ``permutations`` until the corrected threshold is attainable (up to a cap)."""
    need = permutations_needed(n, alpha, correction)  # type: ignore[arg-type]
    used = max(int(permutations), min(need, int(max_permutations)))
    attainable = used >= need
    if not attainable:
        msg = (f"{what}: with {used} permutations the smallest p-value, {2 / (used + 1):.2g}, "
               f"cannot pass the {correction} threshold for {n} tests at alpha={alpha} "
               f"(needs {need}); no unit can be significant. Raise max_permutations, use "
               "fewer units or correction='none'")
        warnings.warn(msg, UserWarning, stacklevel=3)
        log.warning("%s", msg)
    return used, attainable


def _inference_attrs(prefix: str, *, n: int, correction: str, alpha: float, threshold: float,
                     permutations: int, attainable: bool, seed: int, n_sig: int,
                     n_constant: int, null: str = "permutation") -> dict[str, Any]:
    return {
        f"{prefix}_threshold": threshold,
        f"{prefix}_inference": {
            "n_tests": int(n),
            "null": null,
            "correction": correction,
            "alpha": float(alpha),
            "threshold": float(threshold),
            "permutations": int(permutations),
            "min_p": 2.0 / (permutations + 1.0),
            "attainable": bool(attainable),
            "seed": int(seed),
            "n_significant": int(n_sig),
            "n_constant_window": int(n_constant),
        },
    }


def local_moran(
    units: gpd.GeoDataFrame,
    column: str,
    *,
    w: lpw.W | None = None,
    permutations: int = 999,
    seed: Seed = 0,
    alpha: float = 0.05,
    correction: Literal["fdr", "bonferroni", "none"] | None = None,
    fdr: bool | None = None,
    max_permutations: int = 99_999,
    constant_window: Literal["at_minimum", "any"] = "at_minimum",
    window_column: str | None = None,
    n_jobs: int = 1,
    chunk_size: int | None = None,
    null: Literal["permutation", "constant_risk"] | None = None,
    count_column: str = "count",
    area_column: str = "area_km2",
) -> gpd.GeoDataFrame:
    """Local Moran's I (LISA) with incubloc's conditional-permutation inference.

    The statistic equals esda.Moran_Local's ``Is`` for the same weights
    (row-standardised); the p-values come from
    :func:`incubloc.stats.permutation.conditional_permutation` (ties count against
    significance, draws independent of row order), and the Benjamini–Hochberg
    correction is on by default.

    Parameters
    ----------
    units : GeoDataFrame
    column : str
    w : libpysal W, optional
        Default :func:`weights` (queen); row-standardised here.
    permutations : int
        Minimum number of conditional permutations (≥ 1); raised automatically,
        up to ``max_permutations``, until the corrected threshold is attainable.
    seed : int, Generator or None
    alpha : float
        Significance level (before correction).
    correction : {"fdr", "bonferroni", "none"}
        Multiple-testing correction over all units (default "fdr").
    fdr : bool, optional
        Older switch: True means ``correction="fdr"``, False ``"none"``.
    max_permutations : int
    constant_window : {"at_minimum", "any"}
        A unit whose window (itself and its neighbours) is constant at the smallest
        value (an empty neighbourhood of counts) is never significant; ``"any"``
        extends that to every constant window.
    window_column : str, optional
        Judge that constancy on this column instead of ``column`` — e.g. the counts
        behind a rate, so that a unit whose whole neighbourhood holds no incubator
        is never significant.
    n_jobs, chunk_size : int
        Threads and groups per chunk; the results do not depend on them.
    null : {"permutation", "constant_risk"}
        ``"permutation"`` (default): conditional permutation of the values, for any
        attribute. ``"constant_risk"``: for counts of points on areal units — the
        counts are simulated as ``Multinomial(n, land-area shares)`` (complete
        spatial randomness given n), ``column`` (a :func:`unit_rates` column) is
        recomputed from each simulation and each unit's I is ranked among its
        simulations (:mod:`incubloc.stats.constant_risk`).
    count_column, area_column : str
        The counts and land areas (km²) behind ``column``, for ``null="constant_risk"``.

    Returns
    -------
    GeoDataFrame
        A copy of ``units`` with ``lisa_I``, ``lisa_z`` (permutation z, ``z_sim``),
        ``lisa_p`` (two-sided ``p_sim``), ``lisa_p_hot`` / ``lisa_p_cold`` (one-sided),
        ``lisa_p_norm`` (two-sided normal approximation under conditional
        randomisation), ``lisa_q`` (HH / LH / LL / HL as esda's ``q``), ``lisa_sig``
        (p ≤ corrected threshold) and ``lisa_cluster`` (the quadrant where
        significant, else ``"ns"``). ``attrs["lisa_inference"]`` records tests,
        correction, threshold and permutations.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = make_grid(box(0, 0, 5000, 5000), cell_size=1000, crs=32650)
    >>> g["v"] = ((g["grid_col"] < 2) & (g["grid_row"] < 2)).astype(float) * 10
    >>> out = local_moran(g, "v", permutations=99, correction="none")
    >>> sorted(set(out["lisa_q"]))
    ['HH', 'LH', 'LL']
    """
    if permutations < 1:
        raise InputError("local Moran needs permutations >= 1 for its p-values")
    corr = resolve_correction(correction, fdr)
    y = _values(units, column)
    w = _weights_for(units, w)
    n = len(y)
    W = _transformed_sparse(w, "r")
    sd = y.std()
    z = (y - y.mean()) / sd if sd > 0 else np.zeros(n)
    den = float((z * z).sum())
    scale = (n - 1) * z / den if den > 0 else np.zeros(n)
    used, attainable = _local_permutations(n, permutations, alpha, corr, max_permutations,
                                           f"local Moran on {column!r}")
    s = _engine_seed(seed)
    win = y if window_column is None else _values(units, window_column)
    null = resolve_null(null)
    if null == "constant_risk":
        counts, area, order = _constant_risk_inputs(units, column, count_column, area_column)
        res = constant_risk_test(
            counts, area,
            lambda c, rows=None: lisa_statistic(rate_values(c, area, column), W, rows=rows),
            w=W, permutations=used, seed=s, order=order, window=win,
            constant_window=constant_window, skip_never_significant=True)
    else:
        res = conditional_permutation(z, W, scale=scale, window=win, permutations=used,
                                      seed=s, constant_window=constant_window,
                                      n_jobs=n_jobs, chunk_size=chunk_size)
    lag = W @ z
    # Conditional-randomisation moments (Sokal et al. 1998, eqs. A7–A8).
    m2 = den / n
    wi = np.asarray(W.sum(axis=1)).ravel()
    wi2 = np.asarray(W.multiply(W).sum(axis=1)).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        e_c = -(z**2 * wi) / ((n - 1) * m2)
        v_c = (z / m2) ** 2 * (n / (n - 2)) * (wi2 - wi**2 / (n - 1)) * (m2 - z**2 / (n - 1))
        z_norm = np.where(v_c > 0, (res.obs - e_c) / np.sqrt(v_c), 0.0)
    p_norm = np.minimum(1.0, 2.0 * norm_sf(np.abs(z_norm)))
    p_norm[res.constant_window] = 1.0
    thr = correction_threshold(res.p_sim, alpha, corr)  # type: ignore[arg-type]
    sig = res.p_sim <= thr
    zp, lp = z > 0, lag > 0
    q = np.select([zp & lp, ~zp & lp, ~zp & ~lp], ["HH", "LH", "LL"], "HL")
    out = units.copy()
    out["lisa_I"] = res.obs
    out["lisa_z"] = res.z_sim
    out["lisa_q"] = q
    out["lisa_p"] = res.p_sim
    out["lisa_p_hot"] = res.p_hot
    out["lisa_p_cold"] = res.p_cold
    out["lisa_p_norm"] = p_norm
    out["lisa_sig"] = sig
    out["lisa_cluster"] = np.where(sig, q, "ns")
    out.attrs.update(_inference_attrs(
        "lisa", n=n, correction=corr, alpha=alpha, threshold=thr, permutations=used,
        attainable=attainable, seed=s, n_sig=int(sig.sum()),
        n_constant=int(res.constant_window.sum()), null=null,
    ))
    return out


def lisa_statistic(values: np.ndarray, w: Any, *, rows: np.ndarray | None = None
                   ) -> np.ndarray:
    """Local Moran's I of each column of ``values`` (units × k), ``w`` row-standardised.

    I_i = (n − 1) z_i (W z)_i / Σ z², z standardised per column (esda's ``Is``).
    With ``rows`` (int array), only those units' I (the standardisation still uses
    every unit); for a sparse CSR ``w`` they equal the full result's rows bit for bit.

    Examples
    --------
    >>> w = np.array([[0, 1, 0], [0.5, 0, 0.5], [0, 1, 0]])
    >>> np.round(lisa_statistic(np.array([1.0, 2.0, 6.0]), w), 3).tolist()
    [0.286, -0.071, -0.429]
    """
    y = np.asarray(values, dtype=float)
    one = y.ndim == 1
    y = y[:, None] if one else y
    sd = y.std(axis=0)
    z = (y - y.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    den = (z * z).sum(axis=0)
    if rows is not None:  # CSR row selection keeps each row's order of summation
        w, zr = w[rows], z[rows]
    else:
        zr = z
    out = (len(y) - 1) * zr * (w @ z) / np.where(den > 0, den, 1.0)
    return out[:, 0] if one else out


def _engine_seed(seed: Seed) -> int:
    """An int for the permutation engine; None draws fresh entropy."""
    s = seed_int(seed)
    return int(np.random.default_rng().integers(0, 2**63 - 1)) if s is None else s


def _transformed_sparse(w: lpw.W | SparseWeights, transform: str) -> Any:
    """``w.sparse`` under ``transform`` (zero diagonal), leaving ``w`` as it was."""
    if isinstance(w, SparseWeights):
        m = w.sparse(transform).tocsr().astype(float)
    else:
        with _kept_transform(w), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*islands.*")
            w.transform = transform
            m = w.sparse.tocsr().astype(float)
    m.setdiag(0.0)
    m.eliminate_zeros()
    return m


#: Gi* confidence bins, hot to cold (as ArcGIS's Gi_Bin +3 … −3).
GI_BINS = ("hot_99", "hot_95", "hot_90", "ns", "cold_90", "cold_95", "cold_99")


def getis_ord(
    units: gpd.GeoDataFrame,
    column: str,
    *,
    w: lpw.W | None = None,
    star: bool = True,
    transform: Literal["B", "R"] = "B",
    permutations: int = 999,
    seed: Seed = 0,
    alpha: float = 0.05,
    correction: Literal["fdr", "bonferroni", "none"] | None = None,
    fdr: bool | None = None,
    max_permutations: int = 99_999,
    constant_window: Literal["at_minimum", "any"] = "at_minimum",
    window_column: str | None = None,
    n_jobs: int = 1,
    chunk_size: int | None = None,
    null: Literal["permutation", "constant_risk"] | None = None,
    count_column: str = "count",
    area_column: str = "area_km2",
) -> gpd.GeoDataFrame:
    """Getis–Ord Gi* hot and cold spots with incubloc's permutation inference.

    With ``star=True`` the unit itself is in its own neighbourhood (Gi*); with the
    default binary ``transform="B"`` it has self-weight 1 (the classic Gi* of Ord &
    Getis 1995, as ArcGIS's Hot Spot Analysis). ``gi`` and ``gi_z`` equal
    esda.G_Local's ``Gs`` and ``Zs`` on the same weights; the p-values come from
    :func:`incubloc.stats.permutation.conditional_permutation` or, with
    ``null="constant_risk"``, :func:`incubloc.stats.constant_risk.constant_risk_test`
    (ties count against significance; a window of equal values is never significant).

    Parameters
    ----------
    units : GeoDataFrame
    column : str
        Non-negative values (counts, densities or rates).
    w : libpysal W, optional
        Default :func:`weights` (queen contiguity).
    star : bool
    transform : {"B", "R"}
    permutations : int
        Minimum number of permutations; 0 for analytic p-values only. Raised
        automatically (up to ``max_permutations``) until the corrected threshold
        is attainable.
    seed : int, Generator or None
    alpha : float
        Level of ``hotspot`` / ``gi_sig``; ``gi_bin`` uses 90 / 95 / 99 %.
    correction : {"fdr", "bonferroni", "none"}
        Default "fdr" (Benjamini–Hochberg).
    fdr : bool, optional
        Older switch: True means ``correction="fdr"``, False ``"none"``.
    max_permutations : int
    constant_window : {"at_minimum", "any"}
        As in :func:`local_moran`.
    window_column : str, optional
        As in :func:`local_moran`.
    null : {"permutation", "constant_risk"}
        As in :func:`local_moran`; under ``"constant_risk"`` each unit's analytic z
        (``gi_z``, which a shift of the values does not change) is ranked among the
        z of the simulated patterns.
    count_column, area_column : str
        As in :func:`local_moran`.
    n_jobs, chunk_size : int

    Returns
    -------
    GeoDataFrame
        A copy of ``units`` with ``gi`` (``Gs``), ``gi_z`` (analytic ``Zs``),
        ``gi_p`` (two-sided permutation ``p_sim``; two-sided normal with
        permutations=0), ``gi_p_hot`` / ``gi_p_cold``, ``gi_p_norm`` (two-sided
        normal), ``gi_z_sim``, ``gi_bin`` (``hot_99`` … ``ns`` … ``cold_99``,
        confidence after the correction), ``gi_sig`` and ``hotspot`` (``hot`` /
        ``cold`` / ``ns`` at ``alpha``). ``attrs["gi_inference"]`` records tests,
        correction, thresholds and permutations.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = make_grid(box(0, 0, 5000, 5000), cell_size=1000, crs=32650)
    >>> g["v"] = ((g["grid_col"] < 2) & (g["grid_row"] < 2)).astype(float) * 10
    >>> out = getis_ord(g, "v", permutations=99, correction="none")
    >>> out.loc[(g["grid_col"] == 0) & (g["grid_row"] == 0), "hotspot"].item()
    'hot'
    """
    corr = resolve_correction(correction, fdr)
    y = _values(units, column)
    w = _weights_for(units, w)
    n = len(y)
    if transform not in ("B", "R"):
        raise InputError(f"transform must be 'B' or 'R', not {transform!r}")
    B = _transformed_sparse(w, "b")
    k = np.asarray(B.sum(axis=1)).ravel()
    self_w = 1.0 if star else 0.0
    # Rows scaled to sum 1 over the window (itself included for Gi*) when "R".
    row = 1.0 / np.where(k + self_w > 0, k + self_w, 1.0) if transform == "R" else np.ones(n)
    W = sparse.diags(row) @ B
    total = float(y.sum())
    if not total > 0:
        raise InputError(f"Getis–Ord needs a positive total of {column!r}; all values are 0")
    # Ord & Getis (1995): moments under randomisation of the other values.
    rem = 0.0 if star else 1.0
    card = (k + self_w) * row  # row sums of the weights, self-weight included
    with np.errstate(divide="ignore", invalid="ignore"):
        G = (W @ y + self_w * row * y) / (total - y * rem)
    gz = _gi_z(y, W, star=star, row=row, card=card)
    p_norm = np.minimum(1.0, 2.0 * norm_sf(np.abs(gz)))
    s = _engine_seed(seed)
    win = y if window_column is None else _values(units, window_column)
    const = never_significant(win, B, rule=constant_window)
    p_norm[const] = 1.0
    out = units.copy()
    null = resolve_null(null)
    if permutations and null == "constant_risk":
        used, attainable = _local_permutations(n, permutations, alpha, corr, max_permutations,
                                               f"Getis–Ord on {column!r}")
        counts, area, order = _constant_risk_inputs(units, column, count_column, area_column)
        # Simulations are cheap here: enough for the strictest bin (99 %) too, so
        # that units at the smallest p do not flip between hot_95 and hot_99.
        need99 = permutations_needed(n, 0.01, corr)  # type: ignore[arg-type]
        used = max(used, min(need99, int(max_permutations)))
        sliced: list[Any] = []  # (rows, their W, row and card): the same rows every call

        def statistic(c: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
            values = rate_values(c, area, column)
            if rows is None:
                return _gi_z(values, W, star=star, row=row, card=card)
            if not sliced or sliced[0] is not rows:
                sliced[:] = [rows, W[rows], row[rows], card[rows]]
            return _gi_z(values, sliced[1], star=star, row=sliced[2], card=sliced[3],
                         rows=rows, sliced=True)

        res = constant_risk_test(
            counts, area, statistic, w=B, permutations=used, seed=s, order=order,
            window=win, constant_window=constant_window, skip_never_significant=True)
        p, p_hot, p_cold, z_sim = res.p_sim, res.p_hot, res.p_cold, res.z_sim
        direction = np.sign(p_cold - p_hot)
    elif permutations:
        used, attainable = _local_permutations(n, permutations, alpha, corr, max_permutations,
                                               f"Getis–Ord on {column!r}")
        # Gi* is affine in the lag of the other values: the denominator Σy − y_i·rem
        # and the self term depend on the unit's own value only.
        den = np.where(total - y * rem > 0, total - y * rem, 1.0)
        res = conditional_permutation(
            y, W, offset=self_w * row * y / den, scale=1.0 / den, window=win,
            permutations=used, seed=s, constant_window=constant_window, n_jobs=n_jobs,
            chunk_size=chunk_size,
        )
        p, p_hot, p_cold, z_sim = res.p_sim, res.p_hot, res.p_cold, res.z_sim
        direction = np.sign(p_cold - p_hot)
    else:
        used, attainable = 0, True
        p, p_hot, p_cold, z_sim = p_norm, norm_sf(gz), norm_cdf(gz), gz
        p_hot[const] = p_cold[const] = 1.0
        direction = np.sign(gz)
    thr = correction_threshold(p, alpha, corr)  # type: ignore[arg-type]
    bins, thresholds = confidence_bins(p, direction, correction=corr)  # type: ignore[arg-type]
    sig = p <= thr
    out["gi"] = G
    out["gi_z"] = gz
    out["gi_p"] = p
    out["gi_p_hot"] = p_hot
    out["gi_p_cold"] = p_cold
    out["gi_p_norm"] = p_norm
    out["gi_z_sim"] = z_sim
    out["gi_bin"] = bins
    out["gi_sig"] = sig
    out["hotspot"] = np.where(sig & (direction > 0), "hot",
                              np.where(sig & (direction < 0), "cold", "ns"))
    out.attrs.update(_inference_attrs(
        "gi", n=n, correction=corr, alpha=alpha, threshold=thr, permutations=used,
        attainable=attainable, seed=s, n_sig=int(sig.sum()), n_constant=int(const.sum()),
        null=null if permutations else "normal",
    ))
    out.attrs["gi_inference"]["bin_thresholds"] = thresholds
    return out


def _gi_z(values: np.ndarray, W: Any, *, star: bool, row: np.ndarray,
          card: np.ndarray, rows: np.ndarray | None = None,
          sliced: bool = False) -> np.ndarray:
    """Ord & Getis (1995) z of Gi / Gi* per column of ``values`` (units × k or 1-D).

    Moments under randomisation of the other values; equal to esda's ``Zs``. With
    ``rows`` (int array), only those units' z: the column moments still come from
    every unit, and a CSR ``W``'s selected rows sum in the same order, so the values
    equal the full result's rows bit for bit. ``sliced``: ``W``, ``row`` and
    ``card`` are already those rows' (a caller asking for the same rows many times).
    """
    y = np.asarray(values, dtype=float)
    one = y.ndim == 1
    y = y[:, None] if one else y
    n = len(y)
    if rows is not None and not sliced:
        W, row, card = W[rows], row[rows], card[rows]
    yr = y if rows is None else y[rows]
    self_w = 1.0 if star else 0.0
    m = n if star else n - 1
    rem = 0.0 if star else 1.0
    total = y.sum(axis=0)
    if star:
        # Nothing to remove: the moments are per column (x − y·0 is x, bit for bit);
        # units × k temporaries are reused in place (same operations, same bits).
        mean = total / m
        var = (y**2).sum(axis=0) / m - mean**2
        with np.errstate(divide="ignore", invalid="ignore"):
            G = np.asarray(W @ y, dtype=float)
            G += row[:, None] * yr
            G /= total
    else:
        mean = (total - yr * rem) / m
        var = ((y**2).sum(axis=0) - yr**2 * rem) / m - mean**2
        with np.errstate(divide="ignore", invalid="ignore"):
            G = (W @ y + self_w * row[:, None] * yr) / (total - yr * rem)
    with np.errstate(divide="ignore", invalid="ignore"):
        ev = (card / m)[:, None]
        vv = (card * (m - card) / (m - 1) / m**2)[:, None] * var
        vv /= mean**2
        pos = vv > 0
        vv[~pos] = 1.0
        np.sqrt(vv, out=vv)
        G -= ev
        G /= vv
        G[~pos] = 0.0
    return G[:, 0] if one else G


def getis_ord_summary(units: gpd.GeoDataFrame, *, unit: str) -> dict[str, Any]:
    """Counts per Gi* confidence bin with the inference record, for ``stats.json``.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = make_grid(box(0, 0, 5000, 5000), cell_size=1000, crs=32650)
    >>> g["v"] = ((g["grid_col"] < 2) & (g["grid_row"] < 2)).astype(float) * 10
    >>> s = getis_ord_summary(getis_ord(g, "v", permutations=99), unit="1 km grid")
    >>> sorted(s["bins"]) == sorted(GI_BINS), s["unit"]
    (True, '1 km grid')
    """
    counts = units["gi_bin"].value_counts()
    return {
        "unit": unit,
        "bins": {b: int(counts.get(b, 0)) for b in GI_BINS},
        **units.attrs.get("gi_inference", {}),
    }


def unit_rates(
    points: gpd.GeoDataFrame, districts: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    """Incubators per km² of each unit (district or grid cell): raw, smoothed, standardised.

    Small units (a district of the old city, a grid cell clipped by the coast) get
    extreme raw rates, and raw counts of clipped cells are not comparable with
    those of whole cells. ``rate_eb`` (:func:`empirical_bayes_rate`, esda's
    Empirical_Bayes, Marshall 1991) shrinks each rate towards the overall rate in
    proportion to its unreliability (land area as the population at risk), for maps.
    ``rate_z`` is the Assunção–Reis (1999) empirical-Bayes *standardised* rate
    (:func:`assuncao_reis_rate`, equal to esda.smoothing.assuncao_rate): every
    district's value has mean 0 and variance 1
    when the risk is the same everywhere, so the values are exchangeable under that
    null, as permutation tests assume (GeoDa's "EB rate" LISA); a pattern of
    complete spatial randomness then gives about α significant units (the
    calibration test). ``rate_score`` is
    ``rate_z`` shifted to start at 0, for Getis–Ord (which needs non-negative values;
    its z and p-values do not change with a shift).

    Returns
    -------
    GeoDataFrame
        :func:`aggregate`'s columns plus ``rate`` (raw, per km²), ``rate_eb``,
        ``rate_z`` and ``rate_score``.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> d = gpd.GeoDataFrame(geometry=[box(0, 0, 1000, 1000), box(1000, 0, 3000, 1000)],
    ...                      crs=32650)
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([100, 200, 1500], [10, 20, 30]),
    ...                        crs=32650)
    >>> out = unit_rates(pts, d)
    >>> out["count"].tolist(), bool(out["rate_eb"].between(0.5, 2.0).all())
    ([2, 1], True)
    """
    out = aggregate(points, districts, value="density")
    area = out["area_km2"].to_numpy(dtype=float)
    eb = np.zeros(len(out))
    ar = np.zeros(len(out))
    if len(out) and out["count"].sum() > 0 and (area > 0).all():
        e = out["count"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            eb = empirical_bayes_rate(e, area)
            ar = assuncao_reis_rate(e, area)
        ar = np.where(np.isfinite(ar), ar, 0.0)
    out["rate"] = out["density"]
    out["rate_eb"] = eb
    out["rate_z"] = ar
    out["rate_score"] = ar - ar.min() if len(ar) else ar
    return out



def empirical_bayes_rate(e: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Marshall's (1991) global empirical-Bayes smoothed rates of ``e`` events over ``b``.

    ``r_i = w_i · e_i / b_i + (1 − w_i) · m`` with ``m = Σe / Σb``,
    ``s² = Σ b_i (e_i / b_i − m)² / Σb − m / b̄`` and ``w_i = s² / (s² + m / b_i)``:
    ``esda.smoothing.Empirical_Bayes(e, b).r`` (flattened), computed with the same
    NumPy sums, so equal to it bit for bit.

    Examples
    --------
    >>> e = np.array([30, 25, 25, 15, 33, 21, 30, 20])
    >>> b = np.array([100, 100, 110, 90, 100, 90, 110, 90])
    >>> np.round(empirical_bayes_rate(e, b)[:2], 6).tolist()  # raw 0.30, 0.25; m ≈ 0.250
    [0.243529, 0.252229]
    """
    e = np.asarray(e, dtype=float).reshape(-1, 1)  # as esda: sums over n × 1 arrays
    b = np.asarray(b, dtype=float).reshape(-1, 1)
    b_sum = b.sum() * 1.0
    m = e.sum() * 1.0 / b_sum
    rate = e * 1.0 / b
    dev = rate - m
    s2 = (b * dev * dev).sum() * 1.0 / b_sum - m * 1.0 / b.mean()
    weight = s2 / (s2 + m / b)
    return (weight * rate + (1.0 - weight) * m).ravel()


def assuncao_reis_rate(e: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Assunção & Reis (1999) empirical-Bayes standardised rates of ``e`` over ``b``.

    ``z_i = (e_i / b_i − m) / √v_i`` with ``m = Σe / Σb``, ``a = Σ b_i (e_i / b_i −
    m)² / Σb − m / (Σb / n)`` and ``v_i = a + m / b_i`` (``m / b_i`` where that is
    negative): ``esda.smoothing.assuncao_rate(e, b)``. esda adds its sums one value
    after another (Python's ``sum``), not NumPy's pairwise; here a cumulative sum
    adds in that order, so the values are bit for bit esda's. (The constant-risk
    simulations use :func:`incubloc.stats.constant_risk.eb_standardised_rate`, the
    same formula with NumPy's sums.)

    Examples
    --------
    >>> e = np.array([30, 25, 25, 15, 33, 21, 30, 20])
    >>> b = np.array([100, 100, 110, 90, 100, 90, 110, 90])
    >>> np.round(assuncao_reis_rate(e, b)[:4], 6).tolist()
    [1.038436, -0.040991, -0.562504, -1.730619]
    """
    e = np.asarray(e, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()

    def in_order(x: np.ndarray) -> float:  # left to right, as builtin sum
        return np.cumsum(x)[-1]

    y = e * 1.0 / b
    b_sum = in_order(b)
    m = in_order(e) * 1.0 / b_sum
    a = in_order(b * ((y - m) ** 2)) / b_sum - m / (float(b_sum) / len(e))
    v = a + m / b
    v = np.where(v < 0, m / b, v)
    return (y - m) / np.sqrt(v)


# ----------------------------------------------------------------------- join counts


@dataclasses.dataclass
class JoinCountResult(Result):
    """Binary join counts per category (esda.Join_Counts, category vs the rest).

    For each label: ``bb`` joins between two units of that label, ``bw`` between it
    and another label, ``ww`` among the rest, ``J`` all joins, ``mean_bb`` the mean
    BB under permutation, and ``p_sim_bb`` the one-sided pseudo p-value of more BB
    joins than chance (``clustered`` when ≤ alpha).
    """

    table: pd.DataFrame
    label_column: str
    n: int
    n_excluded: int
    weights: str
    permutations: int
    seed: int | None
    skipped: str | None = None


def binary_join_counts(y: np.ndarray, adjacency: sparse.spmatrix, *,
                       permutations: int = 999) -> dict[str, float]:
    """Join counts of a 0/1 variable with esda.Join_Counts' numbers, all permutations at once.

    ``bb`` / ``ww`` are joins between two 1s / two 0s, ``bw`` between a 1 and a 0,
    ``J`` all joins (binary weights, a join counted once). Under the null the
    labels are permuted over the units; ``p_sim_bb = (1 + #{sim_bb ≥ bb}) / (P + 1)``
    (one-sided, ties count against significance). The permutations are esda's
    draws — ``np.random.permutation(y)`` from NumPy's global state, redrawn when a
    permuted table has an empty margin as esda does — so under the same global seed
    every number equals esda's; the simulated join counts are computed together as
    ``½ · diag(Yᵀ A Y)`` instead of one contingency table per permutation.

    Examples
    --------
    >>> from scipy import sparse
    >>> a = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float))
    >>> r = binary_join_counts(np.array([1, 1, 0]), a, permutations=0)
    >>> r["bb"], r["bw"], r["ww"], r["J"]
    (1.0, 1.0, 0.0, 2.0)
    """
    a = sparse.csr_matrix(adjacency, dtype=float)
    a.data[:] = 1.0  # binary, as esda's transform "b"
    a.eliminate_zeros()
    y = np.asarray(y).ravel().astype(float)
    at = a.T.tocsr()

    def counts(yy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # yy: (n, m) columns of 0/1; directed joins counted, halved as in esda.
        ay = a @ yy
        bb = (yy * ay).sum(axis=0) / 2
        ww = ((1 - yy) * (a @ (1 - yy))).sum(axis=0) / 2
        bw = ((yy * (a @ (1 - yy))).sum(axis=0) + ((1 - yy) * ay).sum(axis=0)) / 2
        return bb, ww, bw

    bb, ww, bw = (float(v[0]) for v in counts(y[:, None]))
    out = {"bb": bb, "bw": bw, "ww": ww, "J": float(a.sum()) / 2.0,
           "mean_bb": float("nan"), "p_sim_bb": float("nan")}
    if not permutations:
        return out
    # A permuted table with an empty row or column margin (every 1 or every 0 on
    # units without joins) makes esda's chi-square fail, and esda draws again.
    deg_out = np.asarray(a.sum(axis=1)).ravel()
    deg_in = np.asarray(at.sum(axis=1)).ravel()
    sims: list[np.ndarray] = []
    need = int(permutations)
    step = max(1, 2_000_000 // max(1, len(y)))  # columns per batch: bounded memory
    while need > 0:
        batch = np.column_stack(
            [np.random.permutation(y) for _ in range(min(need, step))])  # noqa: NPY002
        ok = ((deg_out @ batch > 0) & (deg_out @ (1 - batch) > 0)
              & (deg_in @ batch > 0) & (deg_in @ (1 - batch) > 0))
        batch = batch[:, ok]  # the next draws of the stream replace the failures
        sims.append(counts(batch)[0])
        need -= batch.shape[1]
    sim_bb = np.concatenate(sims)
    out["mean_bb"] = float(np.mean(sim_bb))
    out["p_sim_bb"] = float((1.0 + (sim_bb >= bb).sum()) / (permutations + 1.0))
    return out


def join_counts(
    units_or_points: gpd.GeoDataFrame,
    label_column: str,
    *,
    w: lpw.W | None = None,
    k: int = 6,
    value: Any = None,
    exclude: Sequence[Any] = ("unclassified",),
    permutations: int = 999,
    seed: Seed = 0,
    alpha: float = 0.05,
) -> JoinCountResult:
    """Do units (or incubators) with the same label sit next to each other?

    Parameters
    ----------
    units_or_points : GeoDataFrame
        Polygons (queen contiguity) or points (k nearest neighbours, symmetrised so
        that a join is mutual).
    label_column : str
        A categorical column, e.g. ``layout`` or ``relation``.
    w : libpysal W, optional
        Weights for all rows (then no row may have a missing or excluded label).
    k : int
        Neighbours for points.
    value : optional
        Test only this label; default every label.
    exclude : sequence
        Labels left out before the weights are built (with missing labels), because
        their true class is unknown.
    permutations : int
    seed : int, Generator or None
        NumPy's global state is seeded for each label's test and restored after.
    alpha : float

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = make_grid(box(0, 0, 6000, 6000), cell_size=1000, crs=32650)
    >>> g["layout"] = np.where(g["grid_col"] < 3, "building", "park")
    >>> res = join_counts(g, "layout", permutations=99)
    >>> bool(res.table.set_index("label").loc["building", "clustered"])
    True
    """
    if label_column not in units_or_points.columns:
        raise InputError(f"label column {label_column!r} is not in the table")
    labels = units_or_points[label_column]
    keep = labels.notna() & ~labels.isin(list(exclude))
    n_excluded = int((~keep).sum())
    if w is not None:
        if n_excluded:
            raise InputError(
                f"{n_excluded} row(s) have a missing or excluded {label_column!r}: drop them "
                "before building the weights, or let join_counts build them (w=None)"
            )
        data = units_or_points
        w = _weights_for(data, w)
        wname = "given"
    else:
        data = units_or_points[keep.to_numpy()]
        if len(data) < 2:
            return JoinCountResult(
                table=pd.DataFrame(columns=["label", "n", "bb", "bw", "ww", "J", "mean_bb",
                                            "p_sim_bb", "clustered"]),
                label_column=label_column, n=len(data), n_excluded=n_excluded, weights="none",
                permutations=int(permutations),
                seed=seed_int(seed) if isinstance(seed, int | np.integer) else None,
                skipped=f"{len(data)} row(s) with a known {label_column!r}: join counts need 2",
            )
        kinds = set(data.geom_type.unique())
        kind = "knn" if kinds <= {"Point", "MultiPoint"} else "queen"
        # the neighbours of weights(), symmetrised as libpysal's W.symmetrize for knn
        w = light_weights(data.reset_index(drop=True), kind=kind, k=k)
        if kind == "knn":
            w = w.symmetrised()
        wname = f"knn{k} (symmetrised)" if kind == "knn" else "queen"
    lab = data[label_column].astype(str).to_numpy()
    adjacency = _transformed_sparse(w, "b")
    cats = [str(value)] if value is not None else sorted(set(lab))
    rows = []
    for cat in cats:  # one test per category (few)
        y = (lab == cat).astype(int)
        row: dict[str, Any] = {"label": cat, "n": int(y.sum())}
        if 0 < y.sum() < len(y):
            with legacy_seed(seed):
                row.update(binary_join_counts(y, adjacency, permutations=permutations))
        else:
            row.update(bb=np.nan, bw=np.nan, ww=np.nan, J=np.nan, mean_bb=np.nan, p_sim_bb=np.nan)
        row["clustered"] = bool(row["p_sim_bb"] <= alpha)
        rows.append(row)
    return JoinCountResult(
        table=pd.DataFrame(rows),
        label_column=label_column,
        n=len(data),
        n_excluded=n_excluded,
        weights=wname,
        permutations=int(permutations),
        seed=seed_int(seed) if isinstance(seed, int | np.integer) else None,
    )


# ---------------------------------------------------------------------- multi-scale


def multiscale_moran(
    points: gpd.GeoDataFrame,
    area: gpd.GeoDataFrame | gpd.GeoSeries | shapely.Geometry,
    *,
    cell_sizes: Sequence[float] = (1000, 2000, 5000, 10000, 20000),
    shape: Literal["square", "hex"] = "square",
    value: Literal["count", "density"] = "count",
    permutations: int = 999,
    seed: Seed = 0,
    alpha: float = 0.05,
    crs: Any = None,
) -> pd.DataFrame:
    """Global Moran's I of incubator counts on grids of several cell sizes.

    Like ArcGIS's Incremental Spatial Autocorrelation, but over the aggregation
    scale: at each cell size the points are counted on a grid clipped to ``area``
    and Moran's I is computed with queen lattice weights (row-standardised).

    Parameters
    ----------
    points : GeoDataFrame
    area : GeoDataFrame, GeoSeries or shapely geometry (metres)
    cell_sizes : sequence of float
        Metres.
    shape : {"square", "hex"}
    value : {"count", "density"}
    permutations : int
    seed : int, Generator or None
        The same seed at every scale.
    alpha : float
        A scale is significant when its analytic ``p`` ≤ alpha.
    crs : CRS-like, optional
        Metric CRS of the grids (default: local UTM of ``area``).

    Returns
    -------
    pandas.DataFrame
        One row per cell size: ``cell_size, n_cells, n_points, I, EI, z`` (analytic,
        normality), ``p`` (its two-sided p-value), ``p_sim`` (permutation) and
        ``peak``. ``peak`` marks the scale of strongest clustering: the largest
        Moran's I among the significant scales with I > E[I] (not the largest z,
        which grows with the number of cells); ``attrs["peak_cell_size"]`` holds it
        (None if no scale is significant) and ``attrs["first_peak_cell_size"]`` the
        first local maximum of a significant I.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> rng = np.random.default_rng(0)
    >>> xy = np.vstack([rng.normal(2000, 300, (60, 2)), rng.uniform(0, 10000, (20, 2))])
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=32650)
    >>> prof = multiscale_moran(pts, box(0, 0, 10000, 10000), cell_sizes=(1000, 2000),
    ...                         permutations=0, crs=32650)
    >>> len(prof), prof.attrs["peak_cell_size"] in (1000.0, 2000.0)
    (2, True)
    """
    if points.crs is None:
        raise InputError("the points have no CRS: set one (e.g. .set_crs(4326))")
    if isinstance(area, shapely.Geometry) and crs is None:
        crs = points.crs
    rows = []
    results: dict[float, MoranResult] = {}
    for size in sorted(float(s) for s in cell_sizes):  # few scales
        grid = make_grid(area, cell_size=size, shape=shape, crs=crs)
        if value == "count":  # as aggregate's, without the land areas it also measures
            agg = grid.copy()
            agg["count"], _ = _unit_counts(points, grid)
            agg["value"] = agg["count"]
        else:
            agg = aggregate(points, grid, value=value)
        row: dict[str, Any] = {
            "cell_size": size,
            "n_cells": len(agg),
            "n_points": int(agg["count"].sum()),
        }
        if len(agg) >= 3 and agg["value"].nunique() > 1:
            res = global_moran(agg, "value", permutations=permutations, seed=seed)
            results[size] = res
            row.update(I=res.I, EI=res.EI, z=res.z_norm, p=res.p_norm, p_sim=res.p_sim)
        else:
            row.update(I=np.nan, EI=np.nan, z=np.nan, p=np.nan, p_sim=np.nan)
        rows.append(row)
    prof = pd.DataFrame(rows)
    # The peak is read on I, not z: z grows with the number of cells, so a z peak
    # drifts to the finest grid; I is a correlation and comparable across scales.
    ok = (prof["p"] <= alpha) & (prof["I"] > prof["EI"])
    prof["peak"] = False
    peak = first = None
    if ok.any():
        best = prof.loc[ok, "I"].idxmax()
        prof.loc[best, "peak"] = True
        peak = float(prof.loc[best, "cell_size"])
        stat = prof["I"].to_numpy()
        for i in np.flatnonzero(ok.to_numpy()):  # few scales
            left = stat[i - 1] if i > 0 else -np.inf
            right = stat[i + 1] if i + 1 < len(stat) else -np.inf
            if stat[i] >= np.nan_to_num(left, nan=-np.inf) and stat[i] >= np.nan_to_num(
                right, nan=-np.inf
            ):
                first = float(prof.loc[i, "cell_size"])
                break
    prof.attrs["peak_cell_size"] = peak
    prof.attrs["first_peak_cell_size"] = first
    prof.attrs["peak_criterion"] = "largest Moran's I among significant positive scales"
    # each scale's full result (the same as global_moran on that grid, same seed)
    prof.attrs["moran"] = results
    return prof


# ---------------------------------------------------------------------------- output


def write_grid(gdf: gpd.GeoDataFrame, path: str | os.PathLike, *, layer: str = "grid") -> None:
    """Write ``gdf`` as layer ``layer`` of a GeoPackage, atomically.

    Other layers of an existing GeoPackage are kept: the file is copied, the layer
    written (replacing one of the same name) and the copy renamed over the original.
    The layer keeps the grid's metric CRS.

    Examples
    --------
    >>> import tempfile, os, pyogrio
    >>> from shapely.geometry import box
    >>> g = make_grid(box(0, 0, 2000, 2000), cell_size=1000, crs=32650)
    >>> path = os.path.join(tempfile.mkdtemp(), "grid.gpkg")
    >>> write_grid(g, path)
    >>> pyogrio.list_layers(path)[:, 0].tolist()
    ['grid']
    """
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        if os.path.exists(path):
            shutil.copy2(path, tmp)
        out = gdf.copy()
        for col in out.columns:
            if out[col].dtype == object and col != out.geometry.name:
                out[col] = out[col].astype(str)
        out.to_file(tmp, layer=layer, driver="GPKG", mode="w")
