"""Geometric primitives shared by the scales and statistics.

* :func:`located_points`: incubators as points in EPSG:4326 and which are located;
* :func:`first_match`: the first (lowest-position) polygon holding each point, on
  the vectorised fast path of :func:`incubloc.parallel.points_in_polygons`;
* :func:`match_pairs` and :func:`best_match`: every (point, polygon) hit, and per
  point the hit with the smallest keys (e.g. the smallest polygon);
* :func:`analysis_crs`: the metric CRS an analysis runs in;
* :func:`site_frame`: the table of incubator sites the relation and layout scales
  share.

Point-in-polygon uses ``intersects``: a point on a boundary belongs to the polygon,
and a rule (first match, smallest match) makes the choice deterministic where a
point meets several.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from incubloc.coords import metric_crs, to_metric
from incubloc.errors import CoordinateError, InputError

__all__ = [
    "CellIndex",
    "analysis_crs",
    "best_match",
    "first_match",
    "incubator_ids",
    "located_points",
    "match_pairs",
    "site_frame",
    "valid_geometry",
]

log = logging.getLogger(__name__)

_SITE_COLUMNS = ["incubator_id", "site_id"]


# --------------------------------------------------------------------------- points


def valid_geometry(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> np.ndarray:
    """Mask of rows with a non-missing, non-empty geometry."""
    geom = gdf.geometry.values if isinstance(gdf, gpd.GeoDataFrame) else gdf.values
    return ~(shapely.is_missing(geom) | shapely.is_empty(geom))


def located_points(incubators: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Point geometries in EPSG:4326 (object array) and a mask of located rows.

    Polygons stand for a point on their surface; missing and empty geometries stay
    as they are and are not located.

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> g = gpd.GeoDataFrame(geometry=[Point(1, 2), None, box(0, 0, 2, 2)], crs=4326)
    >>> pts, ok = located_points(g)
    >>> ok.tolist(), pts[2].within(box(0, 0, 2, 2))
    ([True, False, True], True)
    """
    if not isinstance(incubators, gpd.GeoDataFrame):
        raise InputError(
            "incubators must be a GeoDataFrame of points: read them with "
            "incubloc.io.read_incubators"
        )
    if incubators.crs is None:
        raise CoordinateError("the incubators have no CRS: set one (e.g. gdf.set_crs(4326))")
    geom = incubators.geometry
    if CRS.from_user_input(geom.crs).to_epsg() != 4326:
        geom = geom.to_crs(4326)
    arr = np.asarray(geom.values, dtype=object)
    valid = ~(shapely.is_missing(arr) | shapely.is_empty(arr))
    if valid.any():
        arr = arr.copy()
        arr[valid] = shapely.point_on_surface(arr[valid])
    return arr, valid


# --------------------------------------------------------------------------- point in polygon


class CellIndex:
    """Polygons indexed by the cells of a regular grid over their extent.

    Each cell lists, in ascending position, the polygons whose bounding box meets
    it (pure arithmetic on the bounds: no cell geometry is built). A point is tested
    only against its cell's list with the vectorised ``intersects_xy`` /
    ``contains_xy`` on prepared polygons, and no shapely Point is created; the first
    hit is the first match.
    """

    def __init__(self, polys: np.ndarray, valid: np.ndarray, predicate: str, n_points: int):
        self.polys = polys
        shapely.prepare(polys[valid])
        self.test = shapely.intersects_xy if predicate == "intersects" else shapely.contains_xy
        pos = np.flatnonzero(valid)
        b = shapely.bounds(polys[pos])
        x0, y0 = b[:, 0].min(), b[:, 1].min()
        w = max(b[:, 2].max() - x0, 1e-9)
        h = max(b[:, 3].max() - y0, 1e-9)
        # ~64 cells per polygon gives few candidates per point; fewer for few points,
        # where building the index would dominate
        n_cells = int(np.clip(min(64 * len(pos), 4 * n_points), 4096, 1_000_000))
        size = float(np.sqrt(w * h / n_cells))
        self.x0, self.y0, self.size = x0, y0, size
        self.nx = int(np.floor(w / size)) + 1
        self.ny = int(np.floor(h / size)) + 1
        # Cells of each bounding box, by the very expression lookup() uses: rounding
        # is monotone, so a point inside a box always lands in one of its cells.
        cx0, cx1 = (np.floor((b[:, i] - x0) / size).astype(np.int64) for i in (0, 2))
        cy0, cy1 = (np.floor((b[:, i] - y0) / size).astype(np.int64) for i in (1, 3))
        wx, wy = cx1 - cx0 + 1, cy1 - cy0 + 1
        k = wx * wy
        owner = np.repeat(np.arange(len(pos)), k)
        local = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        ly, lx = np.divmod(local, wx[owner])
        cell = (cy0[owner] + ly) * self.nx + cx0[owner] + lx
        poly = pos[owner]
        order = np.lexsort((poly, cell))
        self.cand = poly[order]
        self.count = np.bincount(cell, minlength=self.nx * self.ny)
        self.start = np.cumsum(self.count) - self.count

    def lookup(self, xy: np.ndarray) -> np.ndarray:
        """Position of the first polygon holding each (x, y), or -1."""
        cx = np.floor((xy[:, 0] - self.x0) / self.size)
        cy = np.floor((xy[:, 1] - self.y0) / self.size)
        inside = (cx >= 0) & (cx < self.nx) & (cy >= 0) & (cy < self.ny)
        out = np.full(len(xy), -1, dtype=np.int64)
        pts = np.flatnonzero(inside)
        cell = (cy[pts] * self.nx + cx[pts]).astype(np.int64)
        c = self.count[cell]
        owner = np.repeat(np.arange(len(pts)), c)
        k = np.arange(len(owner)) - np.repeat(np.cumsum(c) - c, c)
        cand = self.cand[self.start[cell][owner] + k]
        where = pts[owner]
        hit = self.test(self.polys[cand], xy[where, 0], xy[where, 1])
        # candidates are in ascending position: the first hit is the first match
        who, first = np.unique(owner[hit], return_index=True)
        out[pts[who]] = cand[hit][first]
        return out


def first_match(
    xy: np.ndarray, polygons: np.ndarray, *, predicate: str = "intersects",
    chunk: int = 500_000,
) -> np.ndarray:
    """Position of the first (lowest-position) polygon holding each point, or -1.

    Parameters
    ----------
    xy : (n, 2) array or 1-d array of shapely points
        Coordinates (or points) in the polygons' CRS; non-finite coordinates and
        missing or empty points get -1.
    polygons : 1-d array of shapely geometries
    predicate : {"intersects", "contains"}
        ``"intersects"``: a point on a boundary belongs to the polygon.
    chunk : int
        Points per block (memory bound).

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> polys = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10)])
    >>> first_match(np.array([Point(5, 5), Point(10, 5), None, Point(30, 5)]), polys).tolist()
    [0, 0, -1, -1]
    """
    xy = np.asarray(xy)
    if xy.dtype == object:
        coords = np.full((len(xy), 2), np.nan)
        ok = ~(shapely.is_missing(xy) | shapely.is_empty(xy))
        if ok.any():
            coords[ok] = shapely.get_coordinates(xy[ok])
        xy = coords
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    polys = np.asarray(polygons, dtype=object)
    out = np.full(len(xy), -1, dtype=np.int64)
    valid = ~(shapely.is_missing(polys) | shapely.is_empty(polys))
    if len(xy) == 0 or not valid.any():
        return out
    index = CellIndex(polys, valid, predicate, len(xy))
    finite = np.flatnonzero(np.isfinite(xy).all(axis=1))
    for start in range(0, len(finite), chunk):
        rows = finite[start : start + chunk]
        out[rows] = index.lookup(xy[rows])
    return out


# predicate(a, b) == converse(b, a)
_CONVERSE = {"intersects": "intersects", "within": "contains", "contains": "within",
             "covered_by": "covers", "covers": "covered_by", "touches": "touches",
             "overlaps": "overlaps", "crosses": "crosses"}


def match_pairs(
    geoms: np.ndarray, polygons: np.ndarray, *, predicate: str = "intersects"
) -> tuple[np.ndarray, np.ndarray]:
    """Every (geometry, polygon) pair that meets the predicate, as two position arrays.

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> polys = np.array([box(0, 0, 10, 10), box(5, 0, 20, 10)])
    >>> [a.tolist() for a in match_pairs(np.array([Point(7, 5), Point(15, 5)]), polys)]
    [[0, 0, 1], [0, 1, 1]]
    """
    geoms = np.asarray(geoms, dtype=object)
    polygons = np.asarray(polygons, dtype=object)
    if not len(geoms) or not len(polygons):
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    if predicate in _CONVERSE and len(geoms) > len(polygons):
        # Many geometries against few polygons: the tree holds the geometries and the
        # polygons are the queries, which shapely prepares (each is tested many
        # times). The same pairs, found several times faster.
        it, ip = shapely.STRtree(geoms).query(polygons, predicate=_CONVERSE[predicate])
    else:
        ip, it = shapely.STRtree(polygons).query(geoms, predicate=predicate)
    order = np.lexsort((it, ip))
    return ip[order], it[order]


def best_match(
    point: np.ndarray, polygon: np.ndarray, n_points: int, *keys: np.ndarray
) -> np.ndarray:
    """Per point, the polygon of the candidate pair with the smallest ``keys``.

    ``keys`` are per pair and compared in order (the first decides, the next break
    ties); remaining ties go to the lowest polygon position. Points without a pair
    get -1. With ``keys = (area,)`` this is the smallest-match rule.

    Examples
    --------
    >>> pt, poly = np.array([0, 0, 1]), np.array([0, 1, 1])
    >>> best_match(pt, poly, 3, np.array([9.0, 4.0, 4.0])).tolist()
    [1, 1, -1]
    """
    out = np.full(n_points, -1, dtype=np.int64)
    point = np.asarray(point, dtype=np.int64)
    if not len(point):
        return out
    order = np.lexsort((np.asarray(polygon), *[np.asarray(k) for k in keys[::-1]], point))
    first = np.unique(point[order], return_index=True)[1]
    win = order[first]
    out[point[win]] = np.asarray(polygon)[win]
    return out


# --------------------------------------------------------------------------- sites


def analysis_crs(
    incubators: gpd.GeoDataFrame, sites: gpd.GeoDataFrame | None, crs: object
) -> CRS:
    """The common metric CRS: ``crs``, else that of projected input, else local UTM.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> inc = gpd.GeoDataFrame(geometry=[Point(118.8, 32.05)], crs=4326)
    >>> analysis_crs(inc, None, None).to_epsg(), analysis_crs(inc, None, 3857).to_epsg()
    (32650, 3857)
    """
    if crs is not None:
        return CRS.from_user_input(crs)
    for gdf in (incubators, sites):
        if gdf is None or len(gdf) == 0 or gdf.crs is None:
            continue
        valid = valid_geometry(gdf)
        if not valid.any():
            continue
        if gdf.crs.is_projected and gdf.crs.axis_info[0].unit_name in ("metre", "meter"):
            return CRS.from_user_input(gdf.crs)
        return metric_crs(gdf.loc[valid])
    # Nothing is located, so nothing will be measured: any metric CRS will do.
    log.warning("no incubator or site has a location; every class will be unclassified")
    return CRS.from_epsg(3857)


def incubator_ids(incubators: gpd.GeoDataFrame) -> pd.Series:
    """The ``id`` column as text, else the index."""
    if "id" in incubators.columns:
        return incubators["id"].astype(str)
    return pd.Series(incubators.index.astype(str), index=incubators.index)


def site_frame(
    incubators: gpd.GeoDataFrame, sites: gpd.GeoDataFrame | None, target: CRS
) -> gpd.GeoDataFrame:
    """One row per site in ``target``, ordered by incubator then site.

    Columns: ``incubator_id``, ``site_id``, geometry, ``_inc`` (position of the
    incubator, -1 when the site names an unknown incubator), ``_polygon`` (site has
    area), ``_area``, ``_from_point`` (the incubator's own point), ``_empty`` (no
    geometry). Only ids and geometry are taken from the inputs. An incubator
    without a site row is one point site at its own location.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> inc = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.8, 32.05)], crs=4326)
    >>> site_frame(inc, None, CRS.from_epsg(32650))[["site_id", "_inc", "_polygon"]].values.tolist()
    [['a', 0, False]]
    """
    if not isinstance(incubators, gpd.GeoDataFrame):
        raise InputError("incubators must be a GeoDataFrame: read them with incubloc.io.read_incubators")
    if incubators.crs is None:
        raise CoordinateError("the incubators have no CRS: set one (e.g. gdf.set_crs(4326))")
    ids = incubator_ids(incubators)
    frames = []
    has_site = np.zeros(len(incubators), dtype=bool)
    if sites is not None and len(sites) > 0:
        if "incubator_id" not in sites.columns:
            raise InputError(
                "the sites layer lacks the column 'incubator_id': add it with the id of the "
                "incubator each site belongs to"
            )
        if sites.crs is None:
            raise CoordinateError("the sites layer has no CRS: set one (e.g. gdf.set_crs(4326))")
        if ids.duplicated().any():
            dup = sorted(ids[ids.duplicated()].unique())[:5]
            raise InputError(
                f"incubator ids {dup} occur more than once, so sites cannot be matched to "
                "them: make the 'id' column unique"
            )
        pos_of = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
        s = sites[[c for c in _SITE_COLUMNS if c in sites.columns]].copy()
        s["incubator_id"] = s["incubator_id"].astype(str)
        s["_inc"] = s["incubator_id"].map(pos_of).fillna(-1).astype(int).to_numpy()
        unknown = s["_inc"] < 0
        if unknown.any():
            log.warning(
                "%d site(s) name incubators that are not in the incubators table (%s); "
                "they are reported per site but ignored per incubator",
                int(unknown.sum()),
                ", ".join(sorted(s.loc[unknown, "incubator_id"].unique())[:5]),
            )
        seq = s.groupby("incubator_id", sort=False).cumcount() + 1
        generated = s["incubator_id"] + "/" + seq.astype(str)
        if "site_id" in s.columns:
            s["site_id"] = s["site_id"].where(s["site_id"].notna(), generated).astype(str)
        else:
            s["site_id"] = generated
        s["_from_point"] = False
        s = gpd.GeoDataFrame(s, geometry=sites.geometry.values, crs=sites.crs)
        frames.append(to_metric(s, crs=target))
        has_site[s.loc[~unknown, "_inc"].to_numpy()] = True
    own = ~has_site
    if own.any():
        p = gpd.GeoDataFrame(
            {
                "incubator_id": ids.to_numpy()[own],
                "site_id": ids.to_numpy()[own],
                "_inc": np.flatnonzero(own),
                "_from_point": True,
            },
            geometry=incubators.geometry.values[own],
            crs=incubators.crs,
        )
        frames.append(to_metric(p, crs=target))
    if not frames:
        empty = gpd.GeoDataFrame(
            {"incubator_id": [], "site_id": [], "_inc": np.array([], dtype=int),
             "_from_point": np.array([], dtype=bool)},
            geometry=gpd.GeoSeries([], crs=target), crs=target,
        )
        frames.append(empty)
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    out = gpd.GeoDataFrame(out, geometry=out.geometry.name, crs=target)
    order = np.lexsort((np.arange(len(out)), np.where(out["_inc"] < 0, len(ids), out["_inc"])))
    out = out.iloc[order].reset_index(drop=True)
    geom = np.asarray(out.geometry.values, dtype=object)
    empty = shapely.is_missing(geom) | shapely.is_empty(geom)
    invalid = ~empty & ~shapely.is_valid(geom)
    if invalid.any():
        geom[invalid] = shapely.make_valid(geom[invalid])
    area = np.where(empty, 0.0, shapely.area(geom))
    out["_empty"] = empty
    out["_polygon"] = area > 0
    out["_area"] = area
    # Points, lines and zero-area shapes are analysed at a point on their surface.
    pointlike = ~empty & (area <= 0)
    if pointlike.any():
        geom[pointlike] = shapely.point_on_surface(geom[pointlike])
    out = out.set_geometry(gpd.GeoSeries(geom, crs=target, index=out.index))
    return out
