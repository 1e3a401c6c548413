"""Coordinate conversion and metric CRS choice, against independent known answers."""

import geopandas as gpd
import numpy as np
import pytest
from pyproj import CRS, Geod
from shapely.geometry import Point

from incubloc.coords import (
    bd09_to_wgs84,
    gcj02_to_wgs84,
    in_china,
    metric_crs,
    to_metric,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from incubloc.errors import CoordinateError

GEOD = Geod(ellps="WGS84")
NANJING = (118.7969, 32.0603)  # Xinjiekou


def _metres(lon1, lat1, lon2, lat2):
    return np.abs(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.fixture(scope="module")
def china_grid():
    # 50 x 50 points over mainland China's extent (all inside the GCJ-02 rectangle).
    lon, lat = np.meshgrid(np.linspace(73.7, 134.7, 50), np.linspace(18.2, 53.4, 50))
    return lon.ravel(), lat.ravel()


def test_grid_is_inside_the_gcj02_rectangle(china_grid):
    assert in_china(*china_grid).all()


def test_gcj02_round_trip_below_one_metre(china_grid):
    lon, lat = china_grid
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert _metres(lon, lat, *back).max() < 1.0
    # and the other way: a GCJ-02 point taken to WGS84 and forward again
    forward = wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat))
    assert _metres(lon, lat, *forward).max() < 1.0


def test_gcj02_offset_is_hundreds_of_metres_near_nanjing():
    lon, lat = wgs84_to_gcj02(*NANJING)
    assert 300 < _metres(*NANJING, lon, lat) < 700


def test_bd09_round_trip_below_one_metre(china_grid):
    lon, lat = china_grid
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert _metres(lon, lat, *back).max() < 1.0


def test_published_tiananmen_pair():
    # A widely published pair (Tiananmen): WGS84 -> GCJ-02. Not a round trip: a
    # wrong offset that inverts itself fails it.
    lon, lat = wgs84_to_gcj02(116.391275, 39.907650)
    assert abs(lon - 116.397516) < 1e-5 and abs(lat - 39.909051) < 1e-5
    back = gcj02_to_wgs84(116.397516, 39.909051)
    assert _metres(116.391275, 39.907650, *back) < 1.0


def test_published_bd09_pair():
    # WGS84 -> BD-09 example of the README of gcoord (github.com/hujiulong/gcoord, an
    # independent JavaScript implementation): [116.403988, 39.914266] ->
    # [116.41661560068297, 39.92196580126834]. A pair that only inverts itself would
    # pass the round trips above but not this.
    lon, lat = wgs84_to_bd09(116.403988, 39.914266)
    assert abs(lon - 116.41661560068297) < 1e-9 and abs(lat - 39.92196580126834) < 1e-9
    back = bd09_to_wgs84(116.41661560068297, 39.92196580126834)
    assert _metres(116.403988, 39.914266, *back) < 1.0
    # BD-09 sits a further ~600-700 m north-east of GCJ-02 there.
    g = wgs84_to_gcj02(116.403988, 39.914266)
    assert 500 < _metres(*g, lon, lat) < 900 and lon > g[0] and lat > g[1]


def test_outside_china_is_unchanged():
    lon, lat = wgs84_to_gcj02([2.35], [48.85])
    assert lon.tolist() == [2.35] and lat.tolist() == [48.85]


def test_to_wgs84_dispatch_and_unknown_system():
    g = wgs84_to_gcj02(*NANJING)
    assert np.allclose(to_wgs84(*g, "GCJ-02"), NANJING, atol=1e-8)
    b = wgs84_to_bd09(*NANJING)
    assert _metres(*NANJING, *to_wgs84(*b, "bd09")) < 1.0
    with pytest.raises(CoordinateError, match="wgs84, gcj02"):
        to_wgs84(118.8, 32.0, "mercator")


def _expected_utm(lon, lat):
    zone = int(np.floor((lon + 180) / 6)) + 1
    return (32600 if lat >= 0 else 32700) + zone


def _central_meridian(crs):
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    return params["Longitude of natural origin"]


@pytest.mark.parametrize("lon, lat", [NANJING, (117.23, 31.82), (113.26, 23.13)])
def test_metric_crs_utm(lon, lat):
    pts = gpd.GeoSeries([Point(lon, lat)], crs=4326)
    crs = metric_crs(pts)
    assert crs.to_epsg() == _expected_utm(lon, lat)
    # The zone's central meridian lies within 3 degrees of the point.
    assert abs(_central_meridian(crs) - lon) <= 3


def test_metric_crs_utm_for_nanjing_is_50n():
    crs = metric_crs(gpd.GeoSeries([Point(*NANJING)], crs=4326))
    assert crs.to_epsg() == 32650 and crs.utm_zone == "50N"


@pytest.mark.parametrize("lon, lat, epsg, cm", [
    (118.7969, 32.0603, 4549, 120),  # Nanjing: nearest 3-degree meridian is 120E
    (117.23, 31.82, 4548, 117),  # Hefei: 117E
])
def test_metric_crs_cgcs2000(lon, lat, epsg, cm):
    crs = metric_crs(gpd.GeoSeries([Point(lon, lat)], crs=4326), method="cgcs2000")
    assert crs.to_epsg() == epsg
    assert _central_meridian(crs) == cm
    assert "CGCS2000" in crs.name and crs.is_projected
    # The 3-degree zone is the one whose central meridian is nearest.
    assert abs(cm - lon) <= 1.5


def test_metric_crs_from_projected_input():
    pts = gpd.GeoSeries([Point(*NANJING)], crs=4326).to_crs(3857)
    assert metric_crs(pts).to_epsg() == 32650


def test_to_metric_keeps_projected_metre_crs():
    g = gpd.GeoDataFrame(geometry=[Point(*NANJING)], crs=4326).to_crs(32651)
    out = to_metric(g)
    assert out.crs.to_epsg() == 32651
    assert out.geometry.iloc[0].equals(g.geometry.iloc[0])
    assert out is not g


def test_to_metric_projects_geographic_and_keeps_input():
    g = gpd.GeoDataFrame(geometry=[Point(*NANJING)], crs=4326)
    out = to_metric(g)
    assert out.crs.to_epsg() == 32650 and g.crs.to_epsg() == 4326
    # The projected point is where pyproj puts it.
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 32650, always_xy=True).transform(*NANJING)
    assert abs(out.geometry.iloc[0].x - x) < 1e-6 and abs(out.geometry.iloc[0].y - y) < 1e-6


def test_to_metric_rejects_geographic_target():
    g = gpd.GeoDataFrame(geometry=[Point(*NANJING)], crs=4326)
    with pytest.raises(CoordinateError, match="not projected"):
        to_metric(g, crs=CRS.from_epsg(4490))


def test_missing_crs_raises():
    g = gpd.GeoDataFrame(geometry=[Point(*NANJING)])
    with pytest.raises(CoordinateError, match="no CRS"):
        metric_crs(g)
    with pytest.raises(CoordinateError, match="no CRS"):
        to_metric(g)
