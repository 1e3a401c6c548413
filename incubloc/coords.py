"""Coordinate systems: Chinese web-map offsets and the metric CRS used for analysis.

Chinese web maps publish coordinates in GCJ-02 (AMap, Tencent) or BD-09 (Baidu),
deliberately offset from WGS84 by a few hundred metres. incubloc converts them to
WGS84 on read (vectorised over arrays), then runs every metric analysis in a
projected CRS chosen here: the local UTM zone by default, or CGCS2000 3-degree
Gauss–Krüger, the national standard for Chinese planning data.

The forward GCJ-02 transform is the published algorithm; the inverse has no closed
form and is solved by fixed-point iteration to well under a millimetre.
"""

from __future__ import annotations

import logging
from typing import Literal

import geopandas as gpd
import numpy as np
from numpy.typing import ArrayLike
from pyproj import CRS

from incubloc.errors import CoordinateError

__all__ = [
    "COORD_SYSTEMS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "crs_is_missing",
    "in_china",
    "metric_crs",
    "to_metric",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

log = logging.getLogger(__name__)

COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")
CoordSystem = Literal["wgs84", "gcj02", "bd09"]

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0


def crs_is_missing(crs: object) -> bool:
    """Whether a layer's CRS is absent, including GDAL's "Undefined" placeholder.

    GDAL 3.6 reads a GeoPackage layer without a CRS as "Undefined geographic SRS"
    rather than no CRS; both mean the user must say what the coordinates are.

    Examples
    --------
    >>> crs_is_missing(None), crs_is_missing(CRS.from_epsg(4326))
    (True, False)
    """
    if crs is None:
        return True
    name = getattr(crs, "name", "") or ""
    return name.lower().startswith("undefined")


def in_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """Whether points fall in the rectangle where the GCJ-02 offset applies.

    Parameters
    ----------
    lon, lat : array_like
        Longitude and latitude in degrees.

    Returns
    -------
    numpy.ndarray of bool

    Examples
    --------
    >>> in_china([118.78, 2.35], [32.04, 48.85]).tolist()
    [True, False]
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx
    dlat += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx
    dlon += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    return dlon, dlat


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 to GCJ-02; points outside China are returned unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(118.7969, 32.0603)
    >>> bool(0.004 < lon - 118.7969 < 0.006)
    True
    """
    lon, lat = _arrays(lon, lat)
    dlon, dlat = _offset(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, *, tol: float = 1e-10, max_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 to WGS84 by inverting :func:`wgs84_to_gcj02` iteratively.

    The fixed-point iteration converges to ``tol`` degrees (1e-10 ° ≈ 0.01 mm) in a
    handful of steps because the offset varies slowly.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(118.7969, 32.0603))
    >>> round(float(lon), 7), round(float(lat), 7)
    (118.7969, 32.0603)
    """
    glon, glat = _arrays(lon, lat)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = flon - glon, flat - glat
        wlon = wlon - dlon
        wlat = wlat - dlat
        if np.nanmax(np.abs(np.concatenate([np.ravel(dlon), np.ravel(dlat)])), initial=0) < tol:
            break
    return wlon, wlat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 to Baidu BD-09.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09(118.80, 32.06)
    >>> bool(0.005 < lon - 118.80 < 0.008)
    True
    """
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Convert Baidu BD-09 to GCJ-02 (the published inverse, error < 1 m in China).

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(*gcj02_to_bd09(118.80, 32.06))
    >>> bool(abs(lon - 118.80) < 1e-5 and abs(lat - 32.06) < 1e-5)
    True
    """
    lon, lat = _arrays(lon, lat)
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS84 to Baidu BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Convert Baidu BD-09 to WGS84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(
    lon: ArrayLike, lat: ArrayLike, coords: CoordSystem | str
) -> tuple[np.ndarray, np.ndarray]:
    """Convert longitude/latitude declared in ``coords`` to WGS84.

    Parameters
    ----------
    lon, lat : array_like
        Coordinates in degrees.
    coords : {"wgs84", "gcj02", "bd09"}
        The coordinate system the values are in.

    Raises
    ------
    CoordinateError
        If ``coords`` is not one of the three systems.

    Examples
    --------
    >>> lon, lat = to_wgs84([118.80], [32.06], "wgs84")
    >>> lon.tolist(), lat.tolist()
    ([118.8], [32.06])
    """
    key = str(coords).lower().replace("-", "").replace("_", "")
    if key == "wgs84":
        return _arrays(lon, lat)
    if key == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if key == "bd09":
        return bd09_to_wgs84(lon, lat)
    raise CoordinateError(
        f"unknown coordinate system {coords!r}: use one of wgs84, gcj02 (AMap/Tencent) "
        "or bd09 (Baidu)"
    )


def metric_crs(
    gdf: gpd.GeoDataFrame | gpd.GeoSeries, *, method: Literal["utm", "cgcs2000"] = "utm"
) -> CRS:
    """Choose a projected CRS in metres for the data's location.

    Parameters
    ----------
    gdf : GeoDataFrame or GeoSeries
        Data with a CRS set.
    method : {"utm", "cgcs2000"}
        ``"utm"``: the WGS84 UTM zone of the data's centre. ``"cgcs2000"``: the
        CGCS2000 3-degree Gauss–Krüger zone (EPSG:4534–4554) whose central meridian is
        nearest the data's centre.

    Returns
    -------
    pyproj.CRS

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> pts = gpd.GeoSeries([Point(118.8, 32.05)], crs=4326)
    >>> metric_crs(pts).to_epsg(), metric_crs(pts, method="cgcs2000").to_epsg()
    (32650, 4549)
    """
    if gdf.crs is None:
        raise CoordinateError(
            "the data has no CRS: set one (e.g. gdf.set_crs(4326)) or declare the "
            "coordinate system of the lon/lat columns"
        )
    lonlat = gdf.geometry.to_crs(4326) if not gdf.crs.is_geographic else gdf.geometry
    minx, miny, maxx, maxy = lonlat.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        raise CoordinateError("cannot choose a metric CRS: the data has no valid geometry")
    lon0, lat0 = (minx + maxx) / 2.0, (miny + maxy) / 2.0
    if method == "utm":
        zone = int((lon0 + 180.0) // 6.0) + 1
        return CRS.from_epsg((32600 if lat0 >= 0 else 32700) + zone)
    if method == "cgcs2000":
        cm = int(round(lon0 / 3.0)) * 3
        if not 75 <= cm <= 135:
            raise CoordinateError(
                f"CGCS2000 3-degree zones cover 75°E–135°E; the data is centred at {lon0:.2f}°E"
            )
        # EPSG:4534 is CM 75E; one code per 3 degrees.
        return CRS.from_epsg(4534 + (cm - 75) // 3)
    raise CoordinateError(f"unknown metric CRS method {method!r}: use 'utm' or 'cgcs2000'")


def to_metric(
    gdf: gpd.GeoDataFrame,
    *,
    crs: CRS | str | int | None = None,
    method: Literal["utm", "cgcs2000"] = "utm",
) -> gpd.GeoDataFrame:
    """Return ``gdf`` in a projected CRS in metres (a copy; the input is untouched).

    Data already in a projected CRS with metre units is returned as is (copied)
    unless ``crs`` is given.

    Parameters
    ----------
    gdf : GeoDataFrame
    crs : CRS-like, optional
        Target CRS; must be projected. Default: :func:`metric_crs` of ``gdf``.
    method : {"utm", "cgcs2000"}
        How to choose the CRS when ``crs`` is None.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> g = gpd.GeoDataFrame(geometry=[Point(118.8, 32.05)], crs=4326)
    >>> to_metric(g).crs.to_epsg()
    32650
    """
    if gdf.crs is None:
        raise CoordinateError(
            "the data has no CRS: set one (e.g. gdf.set_crs(4326)) before analysis"
        )
    if crs is None:
        if gdf.crs.is_projected and _metre_units(gdf.crs):
            return gdf.copy()
        target = metric_crs(gdf, method=method)
        log.info("analysis CRS: %s (%s)", target.name, target.to_string())
    else:
        target = CRS.from_user_input(crs)
        if not target.is_projected:
            raise CoordinateError(
                f"analysis CRS {target.to_string()} is not projected: give a CRS in metres "
                "(e.g. EPSG:32650 or EPSG:4549)"
            )
    return gdf.to_crs(target)


def _metre_units(crs: CRS) -> bool:
    try:
        return crs.axis_info[0].unit_name in ("metre", "meter")
    except (IndexError, AttributeError):
        return False
