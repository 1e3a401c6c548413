"""Invariants of reading and classifying, checked with hypothesis on generated inputs.

A small hand-built study area (two square "cities" near 118.8E 32.0N, each with three
square rings, one host with buildings) keeps every example to milliseconds.
"""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from shapely.geometry import box

from incubloc.classification import classify
from incubloc.coords import wgs84_to_gcj02
from incubloc.io import read_incubators
from incubloc.stats.pointpattern import clark_evans, quadrat_test, ripley
from incubloc.stats.preference import location_preference
from incubloc.studyarea import StudyArea

PROPS = settings(max_examples=25, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])
CLASS_COLUMNS = ["city", "province", "ring", "ring_city", "relation", "host_id", "layout"]


def _ring_boxes(cx, cy):
    core = box(cx - 0.01, cy - 0.01, cx + 0.01, cy + 0.01)
    inner = box(cx - 0.025, cy - 0.025, cx + 0.025, cy + 0.025)
    outer = box(cx - 0.05, cy - 0.05, cx + 0.05, cy + 0.05)
    return [core, inner.difference(core), outer.difference(inner)]


def study_area():
    a, b = box(118.70, 31.95, 118.80, 32.05), box(118.80, 31.95, 118.90, 32.05)
    cities = gpd.GeoDataFrame({"city": ["A", "B"], "province": ["P", "P"]},
                              geometry=[a, b], crs=4326)
    rings = gpd.GeoDataFrame(
        {"city": ["A"] * 3 + ["B"] * 3, "prefecture": ["A"] * 3 + ["B"] * 3,
         "ring": ["core", "inner_suburb", "outer_suburb"] * 2},
        geometry=_ring_boxes(118.75, 32.0) + _ring_boxes(118.85, 32.0), crs=4326)
    hosts = gpd.GeoDataFrame({"host_id": ["U1"], "kind": ["university"]},
                             geometry=[box(118.74, 31.99, 118.745, 31.995)], crs=4326)
    xs = 118.7405 + 0.001 * np.arange(4)
    buildings = gpd.GeoDataFrame({"building_id": [f"b{i}" for i in range(4)],
                                  "levels": [5.0] * 4},
                                 geometry=[box(x, 31.9905, x + 0.0005, 31.9910) for x in xs],
                                 crs=4326)
    centres = gpd.GeoDataFrame({"name": ["cbd", "uni"], "kind": ["business", "knowledge"]},
                               geometry=gpd.points_from_xy([118.75, 118.742], [32.0, 31.992]),
                               crs=4326)
    return StudyArea({"cities": cities, "rings": rings, "hosts": hosts,
                      "buildings": buildings, "centres": centres})


SA = study_area()
BOUNDARIES = shapely.union_all(np.concatenate([
    shapely.boundary(np.asarray(SA.layers[name].geometry.values))
    for name in ("cities", "rings", "hosts", "buildings")
]))

# Points in and around the area (some outside every city), on a 1e-5 degree lattice.
coordinate = st.tuples(st.integers(118_650, 118_950), st.integers(31_900, 32_100)).map(
    lambda t: (t[0] / 1000 + 0.00001 * 3, t[1] / 1000 + 0.00001 * 7))
point_lists = st.lists(coordinate, min_size=1, max_size=25)


def _frame(points, ids=None):
    lon, lat = np.array(points, dtype=float).T
    ids = ids if ids is not None else [f"I{i:03d}" for i in range(len(points))]
    return pd.DataFrame({"id": ids, "name": ids, "level": "national", "lon": lon, "lat": lat})


def _classes(result):
    return result.incubators.set_index("id")[CLASS_COLUMNS]


def _expected(points):
    """City, ring and relation of each point, from the box geometry of SA alone.

    Lattice points never lie on a box edge, so each has exactly one answer: a
    classifier that returns a constant, or hands points each other's classes,
    fails this.
    """
    lon, lat = np.array(points, dtype=float).T
    in_band = (lat > 31.95) & (lat < 32.05)
    city = np.select([in_band & (lon > 118.70) & (lon < 118.80),
                      in_band & (lon > 118.80) & (lon < 118.90)], ["A", "B"], "unclassified")
    cx = np.where(lon < 118.80, 118.75, 118.85)
    d = np.maximum(np.abs(lon - cx), np.abs(lat - 32.0))
    ring = np.select([d < 0.01, d < 0.025, d < 0.05], ["core", "inner_suburb", "outer_suburb"],
                     "unclassified")
    ring = np.where(city == "unclassified", "unclassified", ring)
    host = (lon > 118.74) & (lon < 118.745) & (lat > 31.99) & (lat < 31.995)
    relation = np.where(host, "park_in_park", "standalone")
    return pd.DataFrame({"city": city, "ring": ring, "relation": relation})


@PROPS
@given(points=point_lists, repeat=st.integers(0, 3))
def test_every_incubator_appears_exactly_once(points, repeat):
    # Duplicate locations (several incubators in one building) are kept, never merged.
    points = points + points[:repeat]
    inc = read_incubators(_frame(points))
    result = classify(inc, SA)
    out = result.incubators
    assert len(out) == len(points)
    assert out["id"].tolist() == inc["id"].tolist()  # input order, each id once
    assert list(out.index) == list(inc.index)
    for col in ("city", "ring", "relation", "layout"):
        assert out[col].notna().all(), col  # undecidable is "unclassified", not missing
    unclassified = out["ring"] == "unclassified"
    assert (out.loc[unclassified, "reason"].str.len() > 0).all()
    # The per-city ring table counts each incubator with a ring exactly once.
    assert result.city_rings["n_incubators"].sum() == (out["ring"] != "unclassified").sum()
    # And every class is the one the geometry gives.
    expected = _expected(points)
    for col in expected.columns:
        assert out[col].tolist() == expected[col].tolist(), col


@PROPS
@given(points=point_lists, data=st.data())
def test_results_do_not_depend_on_row_order(points, data):
    df = _frame(points)
    order = data.draw(st.permutations(list(range(len(df)))))
    shuffled = df.iloc[list(order)].reset_index(drop=True)
    a = _classes(classify(read_incubators(df), SA)).sort_index()
    b = _classes(classify(read_incubators(shuffled), SA)).sort_index()
    pd.testing.assert_frame_equal(a, b)
    # Equal, and right (a constant classifier would be invariant too).
    known = _expected(points).set_axis(df["id"]).sort_index()
    for col in known.columns:
        assert b[col].tolist() == known[col].tolist(), col


@PROPS
@given(points=point_lists)
def test_classification_is_invariant_to_the_coordinate_system(points):
    df = _frame(points)
    wgs = read_incubators(df)
    # The same places in a projected CRS (UTM 50N) ...
    to_utm = Transformer.from_crs(4326, 32650, always_xy=True)
    x, y = to_utm.transform(df["lon"].to_numpy(), df["lat"].to_numpy())
    utm = read_incubators(gpd.GeoDataFrame(df[["id", "name", "level"]],
                                           geometry=gpd.points_from_xy(x, y), crs=32650))
    # ... and as GCJ-02 web-map coordinates.
    glon, glat = wgs84_to_gcj02(df["lon"].to_numpy(), df["lat"].to_numpy())
    gcj = read_incubators(df.assign(lon=glon, lat=glat), coords="gcj02")
    # Conversions agree to well under a metre; points within 5 m of a boundary may
    # legitimately fall on either side and are not compared.
    metric = gpd.GeoSeries(wgs.geometry.values, crs=4326).to_crs(32650)
    edges = gpd.GeoSeries([BOUNDARIES], crs=4326).to_crs(32650).iloc[0]
    clear = (metric.distance(edges) > 5.0).to_numpy()
    reference = _classes(classify(wgs, SA))[clear]
    known = _expected(points).set_axis(df["id"])[clear]
    for col in known.columns:
        assert reference[col].tolist() == known[col].tolist(), col
    for other in (utm, gcj):
        pd.testing.assert_frame_equal(_classes(classify(other, SA))[clear], reference)


inside_a = st.lists(st.tuples(st.floats(118.71, 118.79), st.floats(31.96, 32.04)),
                    min_size=5, max_size=30, unique=True)


def _dump(result):
    return json.dumps(result.to_dict(), sort_keys=True, default=str)


@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(points=inside_a, seed=st.integers(0, 2**31 - 1))
def test_every_statistic_is_identical_for_the_same_seed(points, seed):
    inc = read_incubators(_frame(points))
    window = SA.layers["cities"].iloc[[0]]
    runs = []
    for _ in range(2):
        runs.append([
            _dump(clark_evans(inc, window=window)),
            _dump(quadrat_test(inc, window=window)),
            _dump(ripley(inc, window=window, n_sim=9, seed=seed)),
            _dump(location_preference(inc, SA.layers["centres"], within=window,
                                      n_sim=19, seed=seed)),
        ])
    assert runs[0] == runs[1]
