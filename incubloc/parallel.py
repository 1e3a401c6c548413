"""Point-in-polygon classification and aggregation at scale, in memory or with Dask.

National studies put millions of points (POIs, enterprise registrations, building
representative points) into thousands of polygons (districts, zones, sites). The
functions here do it without one shapely Point per row where possible: polygon
bounding boxes are searched with an :class:`shapely.STRtree` and the candidate
pairs are tested with the vectorised :func:`shapely.intersects_xy` /
:func:`shapely.contains_xy` on prepared polygons.

A point may fall in several polygons (overlaps, shared boundaries): the rule is
**first match**, the polygon with the lowest position, as
:func:`incubloc.scales.region.assign_region` does (both call
:func:`incubloc.geometry.first_match`). With ``predicate="intersects"``
(default) a point on a boundary belongs to the polygon; with ``"contains"`` only
interior points count (``geopandas.sjoin(..., predicate="within")``).

The Dask functions take a ``dask_geopandas.GeoDataFrame`` or a
``dask.dataframe.DataFrame`` with coordinate columns (e.g. read from Parquet/CSV
larger than memory) and apply the same in-memory function to each partition; the
polygons are small and go to every worker, so the result equals the in-memory one
row for row. Dask and dask-geopandas are optional: ``pip install incubloc[dask]``.

Coordinates are taken in the polygons' CRS: points in another CRS are projected to
it (GeoDataFrames); coordinate columns must already be in it.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from incubloc.errors import InputError
from incubloc.geometry import first_match

__all__ = [
    "assign_polygons",
    "assign_polygons_dask",
    "count_in_polygons",
    "count_in_polygons_dask",
    "footprints_in_polygons",
    "points_in_polygons",
]

log = logging.getLogger(__name__)

Predicate = Literal["intersects", "contains"]
PolygonsLike = gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray
_CHUNK = 500_000  # points per block: bounds the candidate-pair arrays


def _geoms(polygons: PolygonsLike) -> np.ndarray:
    if isinstance(polygons, gpd.GeoDataFrame):
        polygons = polygons.geometry
    if isinstance(polygons, gpd.GeoSeries):
        return np.asarray(polygons.to_numpy(), dtype=object)
    arr = np.asarray(polygons, dtype=object)
    if arr.ndim != 1:
        raise InputError("polygons must be a GeoDataFrame, a GeoSeries or a 1-d geometry array")
    return arr


def points_in_polygons(
    xy: np.ndarray | gpd.GeoSeries | gpd.GeoDataFrame,
    polygons: PolygonsLike,
    *,
    predicate: Predicate = "intersects",
    chunk: int = _CHUNK,
) -> np.ndarray:
    """Position of the first polygon containing each point, or -1.

    Parameters
    ----------
    xy : (n, 2) array, GeoSeries or GeoDataFrame of points
        Coordinates in the polygons' CRS (a GeoSeries / GeoDataFrame with a CRS is
        compared with nothing here: use :func:`assign_polygons` to reproject).
        Missing or empty geometries and non-finite coordinates get -1.
    polygons : GeoDataFrame, GeoSeries or array of shapely geometries
    predicate : {"intersects", "contains"}
        ``"intersects"``: boundary points belong to the polygon; ``"contains"``:
        only interior points.
    chunk : int
        Points per block (memory bound).

    Returns
    -------
    numpy.ndarray of int64
        Positions (0-based, into ``polygons``) of the lowest-position matching
        polygon, -1 where none matches.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> polys = [box(0, 0, 10, 10), box(10, 0, 20, 10)]
    >>> points_in_polygons(np.array([[5, 5], [10, 5], [15, 5], [30, 5]]), polys).tolist()
    [0, 0, 1, -1]
    >>> points_in_polygons(np.array([[10, 5]]), polys, predicate="contains").tolist()
    [-1]
    """
    if predicate not in ("intersects", "contains"):
        raise InputError(f"unknown predicate {predicate!r}: use 'intersects' or 'contains'")
    if isinstance(xy, gpd.GeoDataFrame | gpd.GeoSeries):
        geoms = np.asarray((xy.geometry if isinstance(xy, gpd.GeoDataFrame) else xy).to_numpy())
        coords = np.full((len(geoms), 2), np.nan)
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if ok.any():
            if (shapely.get_type_id(geoms[ok]) != 0).any():
                raise InputError("points_in_polygons needs point geometries (take centroids first)")
            coords[ok] = shapely.get_coordinates(geoms[ok])
        xy = coords
    return first_match(xy, _geoms(polygons), predicate=predicate, chunk=chunk)


def footprints_in_polygons(
    footprints: gpd.GeoDataFrame | gpd.GeoSeries | np.ndarray,
    polygons: PolygonsLike,
    *,
    predicate: Predicate = "intersects",
) -> np.ndarray:
    """Position of the first polygon holding each footprint's representative point.

    The representative point is :func:`shapely.point_on_surface` (always inside the
    footprint), the rule :mod:`incubloc.scales.layout` uses to put buildings in sites. It
    is computed only for footprints whose bounding box meets a polygon's (the only
    ones that can match), which on a national buildings layer is the expensive
    part. Same CRS for both layers.

    Parameters
    ----------
    footprints : GeoDataFrame, GeoSeries or array of geometries
        Missing or empty geometries get -1.
    polygons : GeoDataFrame, GeoSeries or array of geometries
    predicate : {"intersects", "contains"}
        See :func:`points_in_polygons`.

    Returns
    -------
    numpy.ndarray of int64
        Positions into ``polygons``, -1 where none holds the point.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> sites = [box(0, 0, 100, 100)]
    >>> houses = [box(10, 10, 20, 20), box(95, 10, 130, 20), box(500, 0, 510, 10)]
    >>> footprints_in_polygons(np.array(houses), sites).tolist()
    [0, -1, -1]
    """
    geoms = _geoms(footprints)
    polys = _geoms(polygons)
    out = np.full(len(geoms), -1, dtype=np.int64)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not ok.any() or not len(polys):
        return out
    hit, _ = shapely.STRtree(polys).query(geoms)  # bounding boxes only
    mask = np.zeros(len(geoms), dtype=bool)
    mask[hit] = True
    near = np.flatnonzero(mask & ok)
    if len(near):
        rep = shapely.get_coordinates(shapely.point_on_surface(geoms[near]))
        out[near] = points_in_polygons(rep, polys, predicate=predicate)
    return out


def _coords(
    points: pd.DataFrame | gpd.GeoDataFrame | gpd.GeoSeries,
    crs: Any,
    x: str | None,
    y: str | None,
) -> np.ndarray:
    if x is not None or y is not None:
        if x is None or y is None or x not in points.columns or y not in points.columns:
            raise InputError(f"coordinate columns {x!r} and {y!r} must both be in the points table")
        return np.column_stack(
            [
                pd.to_numeric(points[x], errors="coerce").to_numpy(dtype=float),
                pd.to_numeric(points[y], errors="coerce").to_numpy(dtype=float),
            ]
        )
    if not isinstance(points, gpd.GeoDataFrame | gpd.GeoSeries):
        raise InputError("points without a geometry need coordinate columns: pass x= and y=")
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if crs is not None and geoms.crs is not None and not geoms.crs.equals(crs):
        geoms = geoms.to_crs(crs)
    return geoms  # points_in_polygons reads the coordinates


def _polygon_frame(polygons: PolygonsLike, columns: list[str] | None) -> tuple[np.ndarray, Any]:
    if columns and not isinstance(polygons, gpd.GeoDataFrame):
        raise InputError("columns= needs the polygons as a GeoDataFrame")
    missing = [c for c in columns or [] if c not in polygons.columns]  # type: ignore[union-attr]
    if missing:
        raise InputError(f"polygon columns {missing} are not in the polygons layer")
    return _geoms(polygons), getattr(polygons, "crs", None)


def assign_polygons(
    points: pd.DataFrame | gpd.GeoDataFrame | gpd.GeoSeries,
    polygons: PolygonsLike,
    *,
    columns: list[str] | None = None,
    x: str | None = None,
    y: str | None = None,
    predicate: Predicate = "intersects",
) -> pd.DataFrame:
    """The polygon of each point (first match) and the polygon's attributes.

    Parameters
    ----------
    points : GeoDataFrame / GeoSeries of points, or a DataFrame with ``x``, ``y``
        Points in another CRS than the polygons are projected to it; coordinate
        columns must be in the polygons' CRS.
    polygons : GeoDataFrame, GeoSeries or array of geometries
    columns : list of str, optional
        Polygon attributes to copy to the points (``None`` where no polygon).
    x, y : str, optional
        Coordinate columns instead of the geometry.
    predicate : {"intersects", "contains"}
        See :func:`points_in_polygons`.

    Returns
    -------
    pandas.DataFrame
        Aligned to ``points`` (same index and order, nothing dropped): ``polygon``
        (position in ``polygons``, -1 for none), then ``columns``.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> zones = gpd.GeoDataFrame({"zone": ["a", "b"]},
    ...                          geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10)])
    >>> pts = pd.DataFrame({"x": [5.0, 15.0, 25.0], "y": [5.0, 5.0, 5.0]})
    >>> out = assign_polygons(pts, zones, columns=["zone"], x="x", y="y")
    >>> out["polygon"].tolist(), out["zone"].fillna("-").tolist()
    ([0, 1, -1], ['a', 'b', '-'])
    """
    polys, crs = _polygon_frame(polygons, columns)
    pos = points_in_polygons(_coords(points, crs, x, y), polys, predicate=predicate)
    out = pd.DataFrame({"polygon": pos}, index=points.index)
    for col in columns or []:
        src = polygons[col].reset_index(drop=True)  # type: ignore[index]
        vals = src.reindex(pos).astype(_missing_dtype(src))  # -1 is no label: missing
        out[col] = vals.to_numpy()
    return out


def _missing_dtype(values: pd.Series) -> Any:
    """The dtype of ``values`` once a missing value is added (int becomes float)."""
    return values.iloc[:0].reindex([-1]).dtype


def _counts(pos: np.ndarray, n_poly: int, w: np.ndarray | None) -> pd.DataFrame:
    hit = pos >= 0
    data = {"n_points": np.bincount(pos[hit], minlength=n_poly).astype(np.int64)}
    if w is not None:
        data["weight"] = np.bincount(pos[hit], weights=w[hit], minlength=n_poly)
    return pd.DataFrame(data)


def _weights(points: pd.DataFrame, weights: str | None) -> np.ndarray | None:
    if weights is None:
        return None
    if weights not in points.columns:
        raise InputError(f"weights column {weights!r} is not in the points table")
    return pd.to_numeric(points[weights], errors="coerce").fillna(0.0).to_numpy(dtype=float)


def count_in_polygons(
    points: pd.DataFrame | gpd.GeoDataFrame | gpd.GeoSeries,
    polygons: PolygonsLike,
    *,
    weights: str | None = None,
    x: str | None = None,
    y: str | None = None,
    predicate: Predicate = "intersects",
) -> pd.DataFrame:
    """Number of points (and sum of a weight column) in each polygon, first match.

    Parameters
    ----------
    points, polygons, x, y, predicate
        As :func:`assign_polygons`.
    weights : str, optional
        A numeric column of ``points`` to sum (missing values count as 0).

    Returns
    -------
    pandas.DataFrame
        One row per polygon, indexed like ``polygons``: ``n_points`` (and
        ``weight``). Points in no polygon are not counted.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> zones = gpd.GeoSeries([box(0, 0, 10, 10), box(10, 0, 20, 10)])
    >>> pts = pd.DataFrame({"x": [1.0, 2.0, 15.0, 99.0], "y": [1.0, 1.0, 1.0, 1.0]})
    >>> count_in_polygons(pts, zones, x="x", y="y")["n_points"].tolist()
    [2, 1]
    """
    polys, crs = _polygon_frame(polygons, None)
    pos = points_in_polygons(_coords(points, crs, x, y), polys, predicate=predicate)
    out = _counts(pos, len(polys), _weights(points, weights))  # type: ignore[arg-type]
    if isinstance(polygons, pd.Series | pd.DataFrame):
        out.index = polygons.index
    return out


# ------------------------------------------------------------------------------ Dask


def _require_dask() -> Any:
    try:
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise InputError(
            "the Dask path needs dask[dataframe] and dask-geopandas: pip install 'incubloc[dask]'"
        ) from exc
    return dd


def assign_polygons_dask(
    points: Any,
    polygons: PolygonsLike,
    *,
    columns: list[str] | None = None,
    x: str | None = None,
    y: str | None = None,
    predicate: Predicate = "intersects",
) -> Any:
    """:func:`assign_polygons` on a Dask (Geo)DataFrame, partition by partition.

    Parameters
    ----------
    points : dask_geopandas.GeoDataFrame or dask.dataframe.DataFrame
        With ``x``, ``y`` coordinate columns for a plain Dask DataFrame.
    polygons, columns, x, y, predicate
        As :func:`assign_polygons`; the polygons are held in memory and shipped to
        every partition.

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy; ``.compute()`` equals ``assign_polygons(points.compute(), ...)``.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> from shapely.geometry import box
    >>> zones = gpd.GeoDataFrame({"zone": ["a", "b"]},
    ...                          geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10)])
    >>> pts = dd.from_pandas(pd.DataFrame({"x": [5.0, 15.0, 25.0], "y": [5.0] * 3}),
    ...                      npartitions=2)
    >>> out = assign_polygons_dask(pts, zones, columns=["zone"], x="x", y="y").compute()
    >>> out["zone"].fillna("-").tolist()
    ['a', 'b', '-']
    """
    _require_dask()
    _polygon_frame(polygons, columns)  # fail early, not inside a worker
    meta = pd.DataFrame({"polygon": pd.Series(dtype=np.int64)})
    for col in columns or []:
        meta[col] = pd.Series(dtype=_missing_dtype(polygons[col]))  # type: ignore[index]
    return points.map_partitions(
        assign_polygons,
        polygons,
        columns=columns,
        x=x,
        y=y,
        predicate=predicate,
        meta=meta,
    )


def _partition_counts(
    part: pd.DataFrame,
    polygons: PolygonsLike,
    weights: str | None,
    x: str | None,
    y: str | None,
    predicate: Predicate,
) -> pd.DataFrame:
    polys, crs = _polygon_frame(polygons, None)
    pos = points_in_polygons(_coords(part, crs, x, y), polys, predicate=predicate)
    out = _counts(pos, len(polys), _weights(part, weights))
    out.insert(0, "polygon", np.arange(len(polys), dtype=np.int64))
    return out


def count_in_polygons_dask(
    points: Any,
    polygons: PolygonsLike,
    *,
    weights: str | None = None,
    x: str | None = None,
    y: str | None = None,
    predicate: Predicate = "intersects",
) -> pd.DataFrame:
    """:func:`count_in_polygons` over a Dask (Geo)DataFrame; returns pandas.

    Each partition is counted in memory (one row per polygon) and the partial
    counts are summed, so only polygons × partitions numbers travel.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> from shapely.geometry import box
    >>> zones = gpd.GeoSeries([box(0, 0, 10, 10), box(10, 0, 20, 10)])
    >>> pts = dd.from_pandas(pd.DataFrame({"x": [1.0, 2.0, 15.0, 99.0], "y": [1.0] * 4}),
    ...                      npartitions=3)
    >>> count_in_polygons_dask(pts, zones, x="x", y="y")["n_points"].tolist()
    [2, 1]
    """
    _require_dask()
    polys, _ = _polygon_frame(polygons, None)
    meta = _counts(np.empty(0, dtype=np.int64), 0, None if weights is None else np.empty(0))
    meta.insert(0, "polygon", pd.Series(dtype=np.int64))
    parts = points.map_partitions(_partition_counts, polygons, weights, x, y, predicate, meta=meta)
    # Every partial count has one row per polygon: sum them polygon by polygon.
    out = parts.groupby("polygon").sum().compute()
    out = out.reindex(np.arange(len(polys)), fill_value=0).rename_axis(None)
    out["n_points"] = out["n_points"].astype(np.int64)
    if isinstance(polygons, pd.Series | pd.DataFrame):
        out.index = polygons.index
    return out
