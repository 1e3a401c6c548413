"""Concentric rings on hand-built worlds with known answers.

Worlds are built in UTM 50N (metres, around 118.8°E 32.0°N) and handed to the
functions in EPSG:4326, as study-area layers are stored.
"""

import json
import logging
import math
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from bundled_data import bundled
from scipy import stats
from shapely.geometry import Point, Polygon, box

from incubloc.errors import CoordinateError, InputError, StudyAreaError
from incubloc.scales.rings import (
    RING_PATTERNS,
    RINGS,
    assign_ring,
    dissolved_rings,
    equal_area_crs,
    normalise_ring,
    ring_columns,
    ring_layer,
    ring_pattern,
    ring_patterns,
    rings_from_distance,
    rings_from_districts,
    rings_from_polygons,
)
from incubloc.stats.rings import density_gradient, opening_sequence, ring_edge_test, ring_table

CRS = "EPSG:32650"
X0, Y0 = 670_000.0, 3_548_000.0
RADII = (5_000.0, 15_000.0, 30_000.0)


def _centres(cities=("X",), spacing=100_000.0, offset=0.0, **cols):
    n = len(cities)
    return gpd.GeoDataFrame(
        {"city": list(cities), **cols},
        geometry=[Point(X0 + offset + i * spacing, Y0) for i in range(n)],
        crs=CRS,
    )


def _polar(r_m, angle_deg, x0=X0, y0=Y0):
    a = np.radians(np.asarray(angle_deg, dtype=float))
    r = np.asarray(r_m, dtype=float)
    return x0 + r * np.cos(a), y0 + r * np.sin(a)


def _points(x, y, **cols):
    """Points given in UTM, returned in EPSG:4326."""
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    return gpd.GeoDataFrame(cols, geometry=gpd.points_from_xy(x, y), crs=CRS).to_crs(4326)


def _exactly(message):
    """A ``pytest.raises(match=)`` pattern for exactly ``message``."""
    return "^" + re.escape(message) + "$"


def _ngon_area(r, n=128):
    """Area of the regular n-gon inscribed in the circle of radius r."""
    return 0.5 * n * r**2 * math.sin(2 * math.pi / n)


def _one_system():
    return rings_from_distance(_centres(), radii={"X": RADII})


def test_constants():
    assert RINGS == ("core", "inner_suburb", "outer_suburb")
    assert RING_PATTERNS == (
        "core", "inner_suburb", "outer_suburb",
        "core+inner_suburb", "core+outer_suburb", "inner_suburb+outer_suburb",
        "core+inner_suburb+outer_suburb",
    )
    assert normalise_ring("中心城区") == "core"
    assert normalise_ring(" Near suburb ") == "inner_suburb"
    assert normalise_ring("远郊区") == "outer_suburb"
    assert normalise_ring("suburb") is None
    assert ring_pattern(["outer_suburb", "inner_suburb"]) == "inner_suburb+outer_suburb"
    # Spellings are normalised before the pattern is read.
    assert ring_pattern(["远郊区", "Core", "core"]) == "core+outer_suburb"
    assert ring_pattern({"x"}) == "none"


# --------------------------------------------------------------------------- builders


def test_distance_rings_frame():
    rings = _one_system()
    assert list(rings.columns) == ["city", "prefecture", "ring", "method", "geometry"]
    assert rings.crs.to_epsg() == 4326
    assert rings["ring"].tolist() == list(RINGS)
    assert set(rings["method"]) == {"distance"} and set(rings["prefecture"]) == {"X"}
    area = rings.to_crs(CRS).area.to_numpy()
    r1, r2, r3 = RADII
    expected = np.pi * np.array([r1**2, r2**2 - r1**2, r3**2 - r2**2])
    np.testing.assert_allclose(area, expected, rtol=1e-3)


def test_points_at_known_distances():
    rings = _one_system()
    x, y = _polar([2_000, 10_000, 20_000, 40_000], [30, 135, 250, 0])
    inc = _points(x, y, id=["a", "b", "c", "d"])
    r = assign_ring(inc, rings)
    assert r["ring"].tolist() == ["core", "inner_suburb", "outer_suburb", "unclassified"]
    assert r["ring_city"].tolist()[:3] == ["X", "X", "X"]
    assert r["ring_city"].isna().tolist() == [False, False, False, True]
    assert r["reason"].tolist() == ["", "", "", "outside every ring polygon"]
    assert r.index.equals(inc.index)


def test_boundary_point_goes_to_the_inner_ring():
    rings = _one_system()
    core, inner, outer = rings.geometry.tolist()
    # A vertex of the 5 km circle lies on the core and on the inner suburb's hole.
    on_5km = Point(shapely.get_coordinates(core)[7])
    on_15km = Point(shapely.get_coordinates(shapely.get_exterior_ring(inner))[3])
    assert core.intersects(on_5km) and inner.intersects(on_5km)
    assert inner.intersects(on_15km) and outer.intersects(on_15km)
    assert not core.contains(on_5km)  # really on the boundary
    inc = gpd.GeoDataFrame(geometry=[on_5km, on_15km], crs=4326)
    assert assign_ring(inc, rings)["ring"].tolist() == ["core", "inner_suburb"]
    # The rule does not depend on the layer's row order.
    shuffled = rings.iloc[[2, 0, 1]].reset_index(drop=True)
    assert assign_ring(inc, shuffled)["ring"].tolist() == ["core", "inner_suburb"]


def test_overlapping_systems_smallest_polygon_wins():
    big = rings_from_distance(_centres(["Big"]), radii=RADII)
    # A county 22 km east of Big's centre: its rings lie inside Big's outer suburb.
    county = rings_from_distance(
        gpd.GeoDataFrame({"city": ["County"], "prefecture": ["Big"]},
                         geometry=[Point(X0 + 22_000, Y0)], crs=CRS),
        radii=(1_000, 2_000, 4_000),
    )
    rings = pd.concat([big, county], ignore_index=True)
    x, y = _polar([22_500, 28_000, 3_000], [0, 0, 90])
    r = assign_ring(_points(x, y), rings)
    assert r["ring_city"].tolist() == ["County", "Big", "Big"]
    assert r["ring"].tolist() == ["core", "outer_suburb", "core"]
    assert county["prefecture"].tolist() == ["Big"] * 3


def test_missing_geometry_is_unclassified():
    rings = _one_system()
    inc = gpd.GeoDataFrame({"id": ["x", "y"]}, geometry=[None, Point(X0, Y0)], crs=CRS)
    r = assign_ring(inc, rings)
    assert r["ring"].tolist() == ["unclassified", "core"]
    assert "no location" in r.loc[0, "reason"]


def test_population_rule_and_clip():
    # 1 million persons: r_core 4 km, r_inner 12 km, r_outer 24 km.
    c = _centres(population=[1_000_000])
    rings = rings_from_distance(c).to_crs(CRS)
    np.testing.assert_allclose(
        rings.area, np.pi * np.array([4e3**2, 12e3**2 - 4e3**2, 24e3**2 - 12e3**2]), rtol=1e-3
    )
    # 4 million: r_core doubles to 8 km.
    rings4 = rings_from_distance(c, population={"X": 4_000_000}).to_crs(CRS)
    assert rings4.area.iloc[0] == pytest.approx(np.pi * 8e3**2, rel=1e-3)
    # Clipped by a 60 km square county: outer suburb = square minus the 12 km disc.
    square = gpd.GeoDataFrame({"city": ["X"]}, geometry=[box(X0 - 30e3, Y0 - 30e3,
                                                             X0 + 30e3, Y0 + 30e3)], crs=CRS)
    clipped = rings_from_distance(c, clip=square.to_crs(4326)).to_crs(CRS)
    assert clipped.area.iloc[2] == pytest.approx(60e3**2 - np.pi * 12e3**2, rel=1e-3)
    # A clip smaller than the core cuts every ring.
    small = gpd.GeoDataFrame({"city": ["X"]}, geometry=[box(X0, Y0, X0 + 2e3, Y0 + 2e3)], crs=CRS)
    tiny = rings_from_distance(c, clip=small).to_crs(CRS)
    assert tiny["ring"].tolist() == ["core"] and tiny.area.iloc[0] == pytest.approx(4e6, rel=1e-6)
    with pytest.raises(InputError, match="no row with city 'X'"):
        rings_from_distance(c, clip=square.assign(city="Y"))
    with pytest.raises(InputError, match="give radii= or a positive population"):
        rings_from_distance(_centres())
    with pytest.raises(InputError, match="increase outward"):
        rings_from_distance(_centres(), radii=(5_000, 3_000, 30_000))


def _districts():
    names = ["甲区", "乙区", "丙区", "丁县"]
    geoms = [box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 2, 2), box(2, 0, 3, 2)]
    g = gpd.GeoDataFrame({"district_zh": names, "district": ["A", "B", "C", "D"]},
                         geometry=geoms, crs=CRS)
    # Scale the unit boxes to 10 km and move them near Nanjing.
    g["geometry"] = g.geometry.scale(10_000, 10_000, origin=(0, 0)).translate(X0, Y0)
    return g.to_crs(4326)


def test_rings_from_districts():
    d = _districts()
    rings = rings_from_districts(
        d, {"Q": {"远郊区": ["丁县"], "core": ["甲区", "乙区"], "inner_suburb": "丙区"}}
    )
    assert rings["ring"].tolist() == ["core", "inner_suburb", "outer_suburb"]
    assert set(rings["method"]) == {"districts"}
    np.testing.assert_allclose(rings.to_crs(CRS).area, [2e8, 2e8, 2e8], rtol=1e-6)
    by_english = rings_from_districts(d, {"Q": {"core": ["A"]}}, district_col="district")
    assert by_english.to_crs(CRS).area.iloc[0] == pytest.approx(1e8, rel=1e-6)
    with pytest.raises(StudyAreaError, match="'戊区'"):
        rings_from_districts(d, {"Q": {"core": ["甲区", "戊区"]}})
    with pytest.raises(StudyAreaError, match="two rings"):
        rings_from_districts(d, {"Q": {"core": ["甲区"], "inner_suburb": ["甲区"]}})
    with pytest.raises(StudyAreaError, match="unknown ring label"):
        rings_from_districts(d, {"Q": {"centre-ish": ["甲区"]}})
    with pytest.raises(StudyAreaError, match="no column 'name'"):
        rings_from_districts(d, {"Q": {"core": ["甲区"]}}, district_col="name")


def test_rings_from_polygons():
    g = gpd.GeoDataFrame(
        {"system": ["Q", "Q", "Q"], "label": ["近郊区", "中心城区", "近郊区"]},
        geometry=[box(0, 0, 1, 1), box(5, 5, 6, 6), box(1, 0, 2, 1)],
        crs=4326,
    )
    r = rings_from_polygons(g, city_col="system", ring_col="label")
    assert r[["city", "ring", "method"]].values.tolist() == [
        ["Q", "core", "polygons"], ["Q", "inner_suburb", "polygons"],
    ]
    assert shapely.area(r.geometry.iloc[1]) == pytest.approx(2.0)  # two rows dissolved
    # Default column names, nested ring-road polygons, a given prefecture and method.
    nested = gpd.GeoDataFrame(
        {"city": ["N"] * 3, "ring": ["远郊区", "中心城区", "近郊区"], "prefecture": ["P"] * 3,
         "method": [None, "ring roads", None]},
        geometry=[box(0, 0, 10, 10), box(4, 4, 6, 6), box(2, 2, 8, 8)], crs=4326)
    n = rings_from_polygons(nested, nested=True)
    assert n[["city", "prefecture", "ring", "method"]].values.tolist() == [
        ["N", "P", "core", "ring roads"], ["N", "P", "inner_suburb", "polygons"],
        ["N", "P", "outer_suburb", "polygons"],
    ]
    assert [shapely.area(g) for g in n.geometry] == pytest.approx([4.0, 32.0, 64.0])
    flat = rings_from_polygons(nested)  # not nested: polygons kept whole
    assert [shapely.area(g) for g in flat.geometry] == pytest.approx([4.0, 36.0, 100.0])
    bad = g.assign(label=["core", "ring road 2", "outer_suburb"])
    with pytest.raises(StudyAreaError, match=r"'ring road 2'.*features \[2\]"):
        rings_from_polygons(bad, city_col="system", ring_col="label")
    with pytest.raises(StudyAreaError, match="lack column"):
        rings_from_polygons(g)


def test_distance_rings_are_128_gons_of_the_exact_radii():
    # 1 million persons: r_core = 4 000 m exactly, r_inner 12 000 m, r_outer 24 000 m.
    rings = rings_from_distance(_centres(population=[1_000_000])).to_crs(CRS)
    radii = [(4_000.0, None), (12_000.0, 4_000.0), (24_000.0, 12_000.0)]
    for geom, (outer_r, hole_r) in zip(rings.geometry, radii, strict=True):
        shell = shapely.get_coordinates(shapely.get_exterior_ring(geom))
        assert len(shell) == 129  # 128 sides, closed
        np.testing.assert_allclose(np.hypot(shell[:, 0] - X0, shell[:, 1] - Y0), outer_r,
                                   atol=1e-4)
        assert shapely.get_num_interior_rings(geom) == (0 if hole_r is None else 1)
        if hole_r is not None:
            hole = shapely.get_coordinates(shapely.get_interior_ring(geom, 0))
            assert len(hole) == 129
            np.testing.assert_allclose(np.hypot(hole[:, 0] - X0, hole[:, 1] - Y0), hole_r,
                                       atol=1e-4)
    expected = [_ngon_area(4e3), _ngon_area(12e3) - _ngon_area(4e3),
                _ngon_area(24e3) - _ngon_area(12e3)]
    np.testing.assert_allclose(rings.area, expected, rtol=1e-7)


def test_empty_rings_are_dropped_and_logged(caplog):
    # A 2 km clip inside the 4 km core leaves both suburbs empty.
    c = _centres(population=[1_000_000])
    small = box(X0, Y0, X0 + 2e3, Y0 + 2e3)
    with caplog.at_level(logging.INFO, logger="incubloc.scales.rings"):
        r = rings_from_distance(c, clip=small)
    assert r["ring"].tolist() == ["core"] and r.index.tolist() == [0]
    assert "dropped 2 empty rings" in caplog.messages


def test_distance_rings_given_radii_and_a_clip():
    c = _centres()
    square = gpd.GeoDataFrame({"city": ["X"]}, crs=CRS,
                              geometry=[box(X0 - 50e3, Y0 - 50e3, X0 + 50e3, Y0 + 50e3)])
    # Three given radii inside a larger boundary: the outer suburb ends at r_outer.
    three = rings_from_distance(c, radii=RADII, clip=square).to_crs(CRS)
    r1, r2, r3 = RADII
    np.testing.assert_allclose(three.area, [_ngon_area(r1), _ngon_area(r2) - _ngon_area(r1),
                                            _ngon_area(r3) - _ngon_area(r2)], rtol=1e-6)
    # Two radii: the outer suburb is the rest of the boundary.
    two = rings_from_distance(c, radii=(r1, r2), clip=square).to_crs(CRS)
    assert two["ring"].tolist() == list(RINGS)
    assert two.area.iloc[2] == pytest.approx(100e3**2 - _ngon_area(r2), rel=1e-6)
    with pytest.raises(InputError, match=_exactly(
            "the outer suburb of 'X' needs a third radius or a clip polygon")):
        rings_from_distance(c, radii=(r1, r2))


def test_distance_rings_clip_forms():
    c = _centres(population=[1_000_000])  # 4, 12, 24 km
    # A 16 km square lies inside the 12 km disc (corners 11.3 km out): core and inner only.
    sq = box(X0 - 8e3, Y0 - 8e3, X0 + 8e3, Y0 + 8e3)
    far = box(X0 - 50e3, Y0 - 50e3, X0 + 50e3, Y0 + 50e3)
    expected = [_ngon_area(4e3), 16e3**2 - _ngon_area(4e3)]
    forms = {
        "shapely polygon (metric CRS)": sq,
        "GeoSeries": gpd.GeoSeries([sq], crs=CRS).to_crs(4326),
        "GeoDataFrame without city": gpd.GeoDataFrame(geometry=[sq], crs=CRS),
        # With a city column only the city's own rows cut it (not Y's 100 km square).
        "GeoDataFrame by city": gpd.GeoDataFrame({"city": ["Y", "X"]}, geometry=[far, sq],
                                                 crs=CRS),
    }
    for name, clip in forms.items():
        r = rings_from_distance(c, clip=clip).to_crs(CRS)
        assert r["ring"].tolist() == ["core", "inner_suburb"], name
        assert list(r.columns) == ["city", "prefecture", "ring", "method", "geometry"], name
        np.testing.assert_allclose(r.area, expected, rtol=1e-6, err_msg=name)
    with pytest.raises(InputError, match=_exactly(
            "clip must be a GeoDataFrame / GeoSeries of polygons or a shapely polygon")):
        rings_from_distance(c, clip=[sq])
    with pytest.raises(CoordinateError, match=_exactly(
            "the clip polygons have no CRS: set one (e.g. gdf.set_crs(4326))")):
        rings_from_distance(c, clip=gpd.GeoDataFrame(geometry=[sq]))
    with pytest.raises(InputError, match=_exactly(
            "the clip polygons have no row with city 'X': add its boundary or drop the city "
            "column to clip every city by the same polygons")):
        rings_from_distance(c, clip=gpd.GeoDataFrame({"city": ["Y"]}, geometry=[far], crs=CRS))


def test_distance_rings_population_sources():
    # A population column by name, a Series and a dict; 4 million persons: r_core 8 km.
    c = _centres(["X", "Y"], pop=[4_000_000, 250_000])
    by_col = rings_from_distance(c, population="pop").to_crs(CRS)
    core = by_col[by_col["ring"] == "core"]
    np.testing.assert_allclose(core.area, [_ngon_area(8e3), _ngon_area(2e3)], rtol=1e-7)
    series = rings_from_distance(c, population=pd.Series({"X": 250_000, "Y": 4_000_000}))
    core = series.to_crs(CRS)[series["ring"] == "core"]
    np.testing.assert_allclose(core.area, [_ngon_area(2e3), _ngon_area(8e3)], rtol=1e-7)
    # Radii for X, the population rule for Y.
    mixed = rings_from_distance(c, radii={"X": RADII}, population={"Y": 1_000_000}).to_crs(CRS)
    assert mixed["city"].tolist() == ["X"] * 3 + ["Y"] * 3
    np.testing.assert_allclose(mixed.area.iloc[[0, 3]], [_ngon_area(5e3), _ngon_area(4e3)],
                               rtol=1e-7)
    # One resident: r_core = 4 m (the rule holds down to any positive population).
    one = rings_from_distance(_centres(), population={"X": 1}).to_crs(CRS)
    assert one.area.iloc[0] == pytest.approx(_ngon_area(4.0), rel=1e-6)
    with pytest.raises(InputError, match=_exactly("population='nope' is not a column of centres")):
        rings_from_distance(c, population="nope")
    with pytest.raises(InputError, match=_exactly(
            "population must be a dict {city: value}, a Series or a column name")):
        rings_from_distance(c, population=42)
    with pytest.raises(InputError, match=_exactly(
            "no radii for city 'Y': add it to radii= or give its population")):
        rings_from_distance(c, radii={"X": RADII})
    for bad in (0, -5, "unknown", None, float("nan")):
        with pytest.raises(InputError, match=_exactly(
                "cannot size the rings of 'X': give radii= or a positive population")):
            rings_from_distance(_centres(), population={"X": bad})


def test_distance_rings_radii_must_increase_from_zero():
    c = _centres()
    ok = rings_from_distance(c, radii=(1.0, 15_000, 30_000)).to_crs(CRS)  # 1 m is positive
    assert ok.area.iloc[0] == pytest.approx(_ngon_area(1.0), rel=1e-5)
    for bad in [(0, 15_000, 30_000), (5_000, 5_000, 30_000), (5_000, 15_000, 15_000),
                (5_000, 15_000, 10_000), (-5_000, 15_000), (5_000, 4_000)]:
        got = [float(v) for v in bad]
        with pytest.raises(InputError, match=_exactly(
                f"radii for 'X' must increase outward and be positive, got {got}")):
            rings_from_distance(c, radii=bad)
    for bad in [(5_000,), (1, 2, 3, 4)]:
        got = [float(v) for v in bad]
        with pytest.raises(InputError, match=_exactly(
                "radii for 'X' must be (r_core_m, r_inner_m) or (r_core_m, r_inner_m, "
                f"r_outer_m), not {got}")):
            rings_from_distance(c, radii={"X": bad})


def test_distance_rings_order_and_bad_centres():
    # Systems keep the order of the centres (not alphabetical).
    r = rings_from_distance(_centres(["Zeta", "Alpha"]), radii=RADII)
    assert r["city"].tolist() == ["Zeta"] * 3 + ["Alpha"] * 3
    assert r["ring"].tolist() == list(RINGS) * 2
    msg = _exactly("centres must be a GeoDataFrame of points with a 'city' column")
    with pytest.raises(InputError, match=msg):
        rings_from_distance(pd.DataFrame({"city": ["X"]}), radii=RADII)
    with pytest.raises(InputError, match=msg):
        rings_from_distance(_centres().rename(columns={"city": "name"}), radii=RADII)
    with pytest.raises(CoordinateError, match=_exactly(
            "the centres have no CRS: set one (e.g. gdf.set_crs(4326))")):
        rings_from_distance(gpd.GeoDataFrame({"city": ["X"]}, geometry=[Point(0, 0)]),
                            radii=RADII)
    missing = gpd.GeoDataFrame({"city": ["X", "Y"]}, geometry=[Point(X0, Y0), None], crs=CRS)
    with pytest.raises(InputError, match=_exactly("centre of city 'Y' (feature 2) has no geometry")):
        rings_from_distance(missing, radii=RADII)
    empty = gpd.GeoDataFrame({"city": ["E"]}, geometry=[Point()], crs=CRS)
    with pytest.raises(InputError, match=_exactly("centre of city 'E' (feature 1) has no geometry")):
        rings_from_distance(empty, radii=RADII)


def test_rings_from_districts_details():
    d = _districts()
    # A ring with no districts is left out; the next rings are still built.
    r = rings_from_districts(d, {"Q": {"core": [], "inner_suburb": ["乙区"], "远郊区": ["丁县"]}})
    assert r[["city", "prefecture", "ring"]].values.tolist() == [
        ["Q", "Q", "inner_suburb"], ["Q", "Q", "outer_suburb"]]
    # Cities keep the order of groups.
    two = rings_from_districts(d, {"Zeta": {"core": ["甲区"]}, "Alpha": {"core": ["乙区"]}})
    assert two["city"].tolist() == ["Zeta", "Alpha"]
    # Nothing to build: an empty ring layer with the ring columns, in EPSG:4326.
    none = rings_from_districts(d, {"Q": {"core": []}})
    assert len(none) == 0 and none.crs.to_epsg() == 4326
    assert list(none.columns) == ["city", "prefecture", "ring", "method", "geometry"]
    with pytest.raises(StudyAreaError, match=_exactly(
            "district '甲区' is in two rings of Q (core and inner_suburb): give each district "
            "one ring")):
        rings_from_districts(d, {"Q": {"core": ["甲区"], "inner_suburb": ["乙区", "甲区"]}})
    with pytest.raises(StudyAreaError, match=_exactly(
            "the districts layer has no column 'name' (columns: ['district_zh', 'district']): "
            "pass district_col=")):
        rings_from_districts(d, {"Q": {"core": ["甲区"]}}, district_col="name")
    with pytest.raises(StudyAreaError, match=_exactly(
            "the districts layer has no CRS: set one (EPSG:4326 is expected)")):
        rings_from_districts(d.set_crs(None, allow_override=True), {"Q": {"core": ["甲区"]}})
    # The message lists the first 40 known names, sorted.
    names = [f"D{k:02d}" for k in range(45, 0, -1)]
    many = gpd.GeoDataFrame({"district_zh": names}, crs=4326,
                            geometry=[box(k, 0, k + 1, 1) for k in range(45)])
    listed = [f"D{k:02d}" for k in range(1, 41)]
    with pytest.raises(StudyAreaError, match=_exactly(
            f"district 'Z' (ring core of Q) is not in column 'district_zh' of the districts "
            f"layer; known names: {listed}")):
        rings_from_districts(many, {"Q": {"core": ["D01", "Z"]}})


def test_rings_from_polygons_details():
    # Systems keep their order; a system without a core still gets its other rings.
    g = gpd.GeoDataFrame(
        {"city": ["Zeta", "Zeta", "Alpha"], "ring": ["outer_suburb", "inner_suburb", "core"]},
        geometry=[box(0, 0, 10, 10), box(2, 2, 8, 8), box(20, 0, 21, 1)], crs=4326)
    r = rings_from_polygons(g)
    assert r[["city", "ring"]].values.tolist() == [
        ["Zeta", "inner_suburb"], ["Zeta", "outer_suburb"], ["Alpha", "core"]]
    assert [shapely.area(x) for x in r.geometry] == pytest.approx([36.0, 100.0, 1.0])
    # Nested: every inner ring is cut out of the outer ones, also a core the inner
    # polygon does not cover.
    n = gpd.GeoDataFrame({"city": ["N"] * 3, "ring": ["core", "inner_suburb", "outer_suburb"]},
                         geometry=[box(0, 0, 4, 4), box(2, 2, 8, 8), box(0, 0, 10, 10)],
                         crs=4326)
    areas = [shapely.area(x) for x in rings_from_polygons(n, nested=True).geometry]
    assert areas == pytest.approx([16.0, 32.0, 100.0 - (16.0 + 36.0 - 4.0)])
    with pytest.raises(StudyAreaError, match=_exactly("ring polygons must be a GeoDataFrame")):
        rings_from_polygons(pd.DataFrame(g.drop(columns="geometry")))
    with pytest.raises(StudyAreaError, match=_exactly(
            "the ring polygons lack column(s) ['system']: pass city_col= / ring_col= naming the "
            "ring system and the ring label")):
        rings_from_polygons(g, city_col="system")
    with pytest.raises(StudyAreaError, match=_exactly(
            "the ring polygons have no CRS: set one (e.g. gdf.set_crs(4326))")):
        rings_from_polygons(g.set_crs(None, allow_override=True))


def test_ring_layer_validates_and_completes():
    km = 1_000.0
    g = gpd.GeoDataFrame(
        {"city": [320100, 320100, 320100, 321100, 321100],
         "ring": ["中心城区", "近郊区", "远郊区", "core", "Near suburb"],
         "prefecture": [None, "Nanjing", None, None, None]},
        geometry=[box(X0, Y0, X0 + km, Y0 + km), box(X0 + km, Y0, X0 + 3 * km, Y0 + km), None,
                  Polygon(), box(X0, Y0 + 5 * km, X0 + 4 * km, Y0 + 6 * km)],
        crs=CRS)
    out = ring_layer(g)
    assert out.crs.to_epsg() == 4326
    assert list(out.columns) == ["city", "ring", "prefecture", "geometry"]
    assert out.index.tolist() == [0, 1, 2]  # missing and empty geometries dropped
    assert out[["city", "ring", "prefecture"]].values.tolist() == [
        ["320100", "core", "320100"], ["320100", "inner_suburb", "Nanjing"],
        ["321100", "inner_suburb", "321100"]]
    np.testing.assert_allclose(out.to_crs(CRS).area, [1e6, 2e6, 4e6], rtol=1e-9)
    assert g["ring"].iloc[0] == "中心城区"  # the input is untouched
    # Without a prefecture column each system is its own prefecture.
    alone = ring_layer(g.drop(columns="prefecture"))
    assert alone["prefecture"].tolist() == ["320100", "320100", "321100"]
    with pytest.raises(StudyAreaError, match=_exactly(
            "rings must be a GeoDataFrame with columns city and ring")):
        ring_layer(pd.DataFrame(g.drop(columns="geometry")))
    with pytest.raises(StudyAreaError, match=_exactly(
            "the rings layer lacks column(s) city, ring: give each polygon its ring system "
            "(city) and ring (core / inner_suburb / outer_suburb)")):
        ring_layer(g.drop(columns=["city", "ring"]))
    with pytest.raises(StudyAreaError, match=_exactly(
            "the rings layer has no CRS: set one (EPSG:4326 is expected)")):
        ring_layer(g.set_crs(None, allow_override=True))
    bad = gpd.GeoDataFrame({"city": ["X"] * 12, "ring": ["x"] * 12},
                           geometry=[box(k, 0, k + 1, 1) for k in range(12)], crs=4326)
    with pytest.raises(StudyAreaError, match=(
            r"^the rings layer has unknown ring labels \['x'\] "
            r"\(features \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]\): use ")):
        ring_layer(bad)


def test_dissolved_rings_one_polygon_per_city_and_ring():
    km = 1_000.0

    def sq(i, j, w=1):
        return box(X0 + i * km, Y0 + j * km, X0 + (i + w) * km, Y0 + (j + 1) * km)

    layer = ring_layer(gpd.GeoDataFrame(
        {"city": ["Zeta", "Zeta", "Alpha", "Zeta"], "prefecture": ["P", "P", "Alpha", "P"],
         "ring": ["core", "inner_suburb", "core", "core"]},
        geometry=[sq(0, 0), sq(1, 0, w=2), sq(10, 10), sq(0, 1)], crs=CRS))
    d = dissolved_rings(layer, CRS)
    assert d.crs.to_epsg() == 32650
    assert list(d.columns) == ["city", "prefecture", "ring", "geometry"]
    assert d[["city", "prefecture", "ring"]].values.tolist() == [
        ["Zeta", "P", "core"], ["Zeta", "P", "inner_suburb"], ["Alpha", "Alpha", "core"]]
    np.testing.assert_allclose(d.area, [2e6, 2e6, 1e6], rtol=1e-9)  # the two cores united
    same = dissolved_rings(layer)  # default: the CRS of the layer
    assert same.crs.to_epsg() == 4326
    np.testing.assert_allclose(same.to_crs(CRS).area, [2e6, 2e6, 1e6], rtol=1e-9)


def test_equal_area_crs_is_centred_on_the_data():
    lonlat = gpd.GeoSeries([box(118.0, 31.0, 119.0, 32.0), box(119.0, 31.5, 120.5, 33.0)],
                           crs=4326)
    for data in (lonlat, lonlat.to_crs(CRS)):  # projected data: centre still in degrees
        crs = equal_area_crs(data)
        assert crs.is_projected
        params = {p.name: p.value for p in crs.coordinate_operation.params}
        assert params["Latitude of natural origin"] == pytest.approx(32.0, abs=1e-6)
        assert params["Longitude of natural origin"] == pytest.approx(119.25, abs=1e-6)
        assert crs.axis_info[0].unit_name == "metre"
    # Equal area: a 1 km square near the centre keeps its area.
    sq = gpd.GeoSeries([box(X0, Y0, X0 + 1_000, Y0 + 1_000)], crs=CRS)
    assert sq.to_crs(equal_area_crs(sq)).area.iloc[0] == pytest.approx(
        sq.to_crs(6933).area.iloc[0], rel=1e-6)


# --------------------------------------------------------------------------- patterns

PATTERN_OF = {f"S{i}": p for i, p in enumerate(RING_PATTERNS)} | {"S7": "none"}
SMALL_RADII = (2_000, 5_000, 8_000)
RING_R = {"core": 1_000, "inner_suburb": 3_500, "outer_suburb": 6_500}


def _pattern_world():
    names = list(PATTERN_OF)
    centres = _centres(names, spacing=20_000, prefecture=["P0"] * 4 + ["S4", "S5", "S6", "S7"])
    rings = rings_from_distance(centres, radii=SMALL_RADII)
    xs, ys, ids = [], [], []
    for i, (name, pattern) in enumerate(PATTERN_OF.items()):
        if pattern == "none":
            continue
        for ring in pattern.split("+"):
            for k in range(2):  # two incubators per occupied ring
                x, y = _polar(RING_R[ring], 40 + 90 * k, x0=X0 + i * 20_000)
                xs.append(float(x))
                ys.append(float(y))
                ids.append(f"{name}-{ring}-{k}")
    inc = _points(xs, ys, id=ids)
    return inc, rings


def test_ring_patterns_all_seven_and_none():
    inc, rings = _pattern_world()
    classified = inc.join(assign_ring(inc, rings))
    cities = pd.DataFrame({"city": ["S4", "S5", "S6", "S7"],
                           "form": ["dispersed", "compact", None, "dispersed"]})
    out = ring_patterns(classified, rings=rings, cities=cities)
    assert list(out.columns[:6]) == [
        "city", "prefecture", "ring_pattern", "n_rings", "n_incubators", "form",
    ]
    assert out["city"].tolist() == list(PATTERN_OF)  # one row per system, layer order
    assert dict(zip(out["city"], out["ring_pattern"], strict=True)) == PATTERN_OF
    n_rings = [0 if p == "none" else len(p.split("+")) for p in PATTERN_OF.values()]
    assert out["n_rings"].tolist() == n_rings
    assert out["n_incubators"].tolist() == [2 * k for k in n_rings]
    # Form: from cities for prefecture systems, compact by default for county systems.
    assert out["form"].tolist() == ["compact"] * 4 + ["dispersed", "compact", "unclassified",
                                                       "dispersed"]
    # A GeoDataFrame without ring columns is assigned on the fly.
    again = ring_patterns(inc, rings=rings)
    assert again["ring_pattern"].tolist() == out["ring_pattern"].tolist()


def test_assign_ring_keeps_the_index_and_prefers_the_inner_ring_over_area():
    # Core larger than the inner suburb: a point on their common edge is still core.
    rings = gpd.GeoDataFrame({"city": ["X", "X"], "ring": ["core", "inner_suburb"]}, crs=4326,
                             geometry=[box(118.80, 32.00, 118.82, 32.02),
                                       box(118.82, 32.00, 118.83, 32.01)])
    edge = Point(118.82, 32.005)
    assert all(g.intersects(edge) for g in rings.geometry)
    inc = gpd.GeoDataFrame(geometry=[Point(118.825, 32.005), edge, None], crs=4326,
                           index=[30, 10, 20])
    r = assign_ring(inc, rings)
    assert r.index.tolist() == [30, 10, 20]
    assert r["ring"].tolist() == ["inner_suburb", "core", "unclassified"]
    assert r["reason"].tolist() == ["", "", "no location (missing or empty geometry)"]
    # A ring layer left empty (its only polygon is empty): every point is outside.
    hollow = gpd.GeoDataFrame({"city": ["X"], "ring": ["core"]}, geometry=[Polygon()], crs=4326)
    r = assign_ring(inc.iloc[:2], hollow)
    assert r["ring"].tolist() == ["unclassified"] * 2 and r["ring_city"].isna().all()
    assert r["reason"].tolist() == ["outside every ring polygon"] * 2


def test_ring_columns_normalise_labels_once_per_value():
    df = pd.DataFrame({"ring": ["campus", None, "Core", "近郊区", None, "近郊区"],
                       "ring_city": ["X", None, "X", "X", None, "Y"], "other": range(6)})
    out = ring_columns(df, None)
    assert list(out.columns) == ["ring", "ring_city"]
    assert out["ring"].tolist() == ["unclassified", "unclassified", "core", "inner_suburb",
                                    "unclassified", "inner_suburb"]
    assert out["ring_city"].fillna("-").tolist() == ["X", "-", "X", "X", "-", "Y"]
    assert df["ring"].iloc[3] == "近郊区"  # the input is untouched
    msg = _exactly(
        "the incubators have no 'ring' / 'ring_city' columns: classify them first "
        "(incubloc.scales.rings.assign_ring or incubloc.classify) or pass them as a GeoDataFrame "
        "with rings=")
    with pytest.raises(InputError, match=msg):
        ring_columns(pd.DataFrame({"ring": ["core"]}), _one_system())
    with pytest.raises(InputError, match=msg):
        ring_columns(_points([X0], [Y0]), None)


def test_ring_patterns_counts_forms_and_integer_columns():
    # A prefecture system P and a county system C of P; no incubator in any outer suburb.
    centres = _centres(["P", "C"], spacing=50_000, prefecture=["P", "P"])
    rings = rings_from_distance(centres, radii=SMALL_RADII)
    x, y = _polar([1_000, 1_000, 3_500, 3_500, 30_000], [0, 90, 0, 45, 0])
    x[3] += 50_000  # the fourth point in C's inner suburb; the fifth outside every ring
    inc = _points(x, y)
    out = ring_patterns(inc, rings=rings)
    assert out["ring_pattern"].tolist() == ["core+inner_suburb", "inner_suburb"]
    counts = out[["n_core", "n_inner_suburb", "n_outer_suburb"]]
    assert counts.values.tolist() == [[2, 1, 0], [0, 1, 0]]
    assert out["n_rings"].tolist() == [2, 1] and out["n_incubators"].tolist() == [3, 1]
    for col in ("n_rings", "n_incubators", "n_core", "n_inner_suburb", "n_outer_suburb"):
        assert out[col].dtype == np.int64, col
    # Without cities the prefecture system's form is unknown, the county's compact.
    assert out["form"].tolist() == ["unclassified", "compact"]
    no_form = ring_patterns(inc, rings=rings, cities=pd.DataFrame({"city": ["P"]}))
    assert no_form["form"].tolist() == ["unclassified", "compact"]
    # A ring label with no system and a system with no ring label are not counted.
    odd = pd.DataFrame({"ring": ["core", "unclassified", "core"], "ring_city": ["P", "P", None]})
    got = ring_patterns(odd, rings=rings)
    assert got["n_incubators"].tolist() == [1, 0] and got["ring_pattern"].tolist() == ["core", "none"]
    # Nobody classified: every system "none", counts still integers.
    empty = ring_patterns(inc.iloc[[4]], rings=rings)
    assert empty["ring_pattern"].tolist() == ["none", "none"]
    assert empty["n_core"].tolist() == [0, 0] and empty["n_core"].dtype == np.int64
    assert empty["n_incubators"].dtype == np.int64 and empty["n_rings"].dtype == np.int64


# --------------------------------------------------------------------------- ring table


def _table_world():
    """10 core, 6 inner and 3 outer incubators with known attributes."""
    rings = _one_system()
    radius = [1_000 + 300 * k for k in range(10)] + [6_000 + 1_500 * k for k in range(6)] + [
        17_000, 22_000, 27_000]
    angle = [36 * k for k in range(19)]
    ring = ["core"] * 10 + ["inner_suburb"] * 6 + ["outer_suburb"] * 3
    opened = list(range(2000, 2010)) + list(range(2008, 2014)) + [2012, 2013, 2014]
    site = [1_000.0] * 10 + [5_000.0] * 6 + [20_000.0, 30_000.0, np.nan]
    level = ["national"] * 4 + ["国家级", "provincial", "provincial", "省级", "municipal", None] + [
        "provincial"] * 3 + ["municipal"] * 3 + ["municipal"] * 3
    x, y = _polar(radius, angle)
    inc = _points(x, y, id=[f"i{k}" for k in range(19)], opened=opened, site_area_m2=site,
                  level=level, expected_ring=ring)
    return inc, rings


def test_ring_table_counts_areas_densities():
    inc, rings = _table_world()
    classified = inc.join(assign_ring(inc, rings))
    assert (classified["ring"] == classified["expected_ring"]).all()
    t = ring_table(classified, rings=rings).set_index("ring")
    r1, r2, r3 = (r / 1000 for r in RADII)
    area = {"core": math.pi * r1**2, "inner_suburb": math.pi * (r2**2 - r1**2),
            "outer_suburb": math.pi * (r3**2 - r2**2)}
    count = {"core": 10, "inner_suburb": 6, "outer_suburb": 3}
    for ring in RINGS:
        assert t.loc[ring, "count"] == count[ring]
        assert t.loc[ring, "share"] == pytest.approx(count[ring] / 19)
        assert t.loc[ring, "area_km2"] == pytest.approx(area[ring], rel=0.005)
        density = count[ring] / area[ring]
        assert t.loc[ring, "density_km2"] == pytest.approx(density, rel=0.005)
        assert t.loc[ring, "density_100km2"] == pytest.approx(100 * density, rel=0.005)
    assert t.loc["core", "opened_mean"] == pytest.approx(2004.5)
    assert t.loc["core", "opened_median"] == pytest.approx(2004.5)
    assert t.loc["inner_suburb", "opened_mean"] == pytest.approx(2010.5)
    assert t.loc["outer_suburb", "site_area_mean"] == pytest.approx(25_000.0)  # NaN skipped
    assert t.loc["core", ["n_national", "n_provincial", "n_municipal"]].tolist() == [5, 3, 1]
    assert t.loc["inner_suburb", ["n_national", "n_provincial", "n_municipal"]].tolist() == [
        0, 3, 3]
    assert t["city"].unique().tolist() == ["X"]


def test_ring_table_zero_rings_and_empty_systems():
    inc, rings = _table_world()
    other = rings_from_distance(_centres(["Y"], offset=200_000), radii=RADII)
    both = pd.concat([rings, other], ignore_index=True)
    core_only = inc.iloc[:10]
    t = ring_table(core_only.join(assign_ring(core_only, both)), rings=both)
    assert len(t) == 6 and t["city"].tolist() == ["X"] * 3 + ["Y"] * 3
    assert t["count"].tolist() == [10, 0, 0, 0, 0, 0]
    assert t["share"].iloc[:3].tolist() == [1.0, 0.0, 0.0]
    assert t["share"].iloc[3:].isna().all()  # no incubator in Y: share undefined
    assert (t["density_km2"].iloc[1:] == 0).all()


def test_density_gradient():
    table = pd.DataFrame(
        {
            "city": ["X"] * 3 + ["Y"] * 3 + ["Z"] * 2,
            "ring": list(RINGS) * 2 + ["core", "outer_suburb"],
            "density_km2": [0.5, 0.1, 0.02, 0.1, 0.3, 0.05, 0.2, 0.1],
        }
    )
    g = density_gradient(table).set_index("city")
    assert bool(g.loc["X", "monotone_decreasing"]) is True
    assert g.loc["X", "spearman_rho"] == pytest.approx(-1.0)
    # Exact permutation p: 2 of the 3! orderings are as extreme (rho = ±1).
    assert g.loc["X", "spearman_p"] == pytest.approx(1 / 3)
    assert bool(g.loc["Y", "monotone_decreasing"]) is False
    assert g.loc["Y", "spearman_rho"] == pytest.approx(stats.spearmanr([1, 2, 3], [0.1, 0.3, 0.05])[0])
    assert bool(g.loc["Z", "monotone_decreasing"]) is True
    assert math.isnan(g.loc["Z", "spearman_rho"]) and "needs 3" in g.loc["Z", "note"]
    assert math.isnan(g.loc["Z", "density_inner_suburb"])
    assert density_gradient(table, city="Y").index.size == 1
    flat = pd.DataFrame({"city": "F", "ring": list(RINGS), "density_km2": [0.1] * 3})
    assert "same density" in density_gradient(flat).loc[0, "note"]


def test_density_gradient_from_ring_table():
    inc, rings = _table_world()
    t = ring_table(inc.join(assign_ring(inc, rings)), rings=rings)
    g = density_gradient(t)
    assert bool(g.loc[0, "monotone_decreasing"]) and g.loc[0, "spearman_rho"] == pytest.approx(-1)


def test_opening_sequence():
    inc, rings = _table_world()
    classified = inc.join(assign_ring(inc, rings))
    s = opening_sequence(classified)
    assert s["city"].tolist() == ["X"]
    row = s.iloc[0]
    order = classified["ring"].map({"core": 1, "inner_suburb": 2, "outer_suburb": 3})
    expected = stats.spearmanr(order, classified["opened"])
    assert row["spearman_rho"] > 0
    assert row["spearman_rho"] == pytest.approx(expected[0])
    assert row["spearman_p"] == pytest.approx(expected[1])
    assert row["opened_mean_core"] == pytest.approx(2004.5)
    assert row["opened_median_outer_suburb"] == pytest.approx(2013.0)
    assert row["n"] == 19 and row["n_rings"] == 3
    # Earlier outward: rho < 0.
    rev = classified.assign(opened=4020 - classified["opened"])
    assert opening_sequence(rev).loc[0, "spearman_rho"] < 0
    # Site size: another column, NaN values skipped.
    size = opening_sequence(classified, column="site_area_m2").iloc[0]
    assert size["n"] == 18 and size["site_area_m2_mean_outer_suburb"] == pytest.approx(25_000)
    # One ring only: undefined.
    one = opening_sequence(classified.iloc[:10]).iloc[0]
    assert math.isnan(one["spearman_rho"]) and "one ring" in one["note"]
    # Without ring columns the rings are assigned when given.
    assert opening_sequence(inc, rings=rings).loc[0, "spearman_rho"] == pytest.approx(expected[0])
    with pytest.raises(InputError, match="ring"):
        opening_sequence(pd.DataFrame({"opened": [2000]}))


# --------------------------------------------------------------------------- ring edge


def _edge_points():
    """Four incubators per ring, 100-500 m inside each ring's outer edge."""
    angles = np.arange(12) * 30.0
    radius = np.array([4_900, 4_800, 4_700, 4_600, 14_900, 14_700, 14_600, 14_500,
                       29_900, 29_700, 29_600, 29_500], dtype=float)
    x, y = _polar(radius, angles)
    return _points(x, y), radius


def _uniform_points(n, seed):
    """Uniform in the 30 km disc (area-uniform radius), generated here."""
    gen = np.random.default_rng(seed)
    r = RADII[2] * np.sqrt(gen.uniform(0, 1, n))
    a = gen.uniform(0, 360, n)
    x, y = _polar(r, a)
    return _points(x, y)


def test_ring_edge_points_near_edges_are_detected():
    rings = _one_system()
    pts, radius = _edge_points()
    res = ring_edge_test(pts, rings, n_sim=199, seed=3)
    assert res.n == 12
    assert res.p_sim_closer < 0.01
    assert res.p_ks < 0.01
    assert res.observed_mean < res.expected_mean
    # Distances to the OUTER edge of each ring (not to the inner ring's hole).
    outer = np.repeat([5_000.0, 15_000.0, 30_000.0], 4)
    # (atol: the 128-gon lies up to r·(1 − cos(π/128)) ≈ 9 m inside the 30 km circle)
    np.testing.assert_allclose(res.distances["distance_m"], outer - radius, atol=10.0)
    assert res.per_ring["ring"].tolist() == list(RINGS)
    assert (res.per_ring["n"] == 4).all()
    # The largest distance in a ring: its radius (core), or half the width (annuli).
    np.testing.assert_allclose(res.per_ring["max_distance_m"], [5_000, 10_000, 15_000], rtol=0.05)


def test_ring_edge_uniform_points_are_not_flagged():
    rings = _one_system()
    pts = _uniform_points(60, seed=11)
    res = ring_edge_test(pts, rings, n_sim=199, seed=5)
    assert res.n == 60
    assert res.p_sim_closer > 0.05
    assert res.p_ks > 0.05
    assert abs(res.observed_mean - res.expected_mean) < 0.1


def test_ring_edge_reproducible_and_serialisable():
    rings = _one_system()
    pts = _uniform_points(30, seed=2)
    a = ring_edge_test(pts, rings, n_sim=99, seed=7)
    b = ring_edge_test(pts, rings, n_sim=99, seed=7)
    assert a.to_dict() == b.to_dict()
    d = a.to_dict()
    json.dumps(d)
    assert "distances" not in d and sum(r["n"] for r in d["per_ring"]) == 30
    assert d["n_sim"] == 99 and d["seed"] == 7 and d["crs"] == "EPSG:32650"
    assert "RingEdgeResult" in a._repr_html_()
    # p_sim_closer lives on the Monte-Carlo grid 1/(n_sim+1).
    assert (a.p_sim_closer * 100) == pytest.approx(round(a.p_sim_closer * 100))


def test_ring_edge_city_filter_and_outside_points():
    rings = pd.concat(
        [_one_system(), rings_from_distance(_centres(["Y"], offset=200_000), radii=RADII)],
        ignore_index=True,
    )
    pts, _ = _edge_points()
    far = _points([X0 + 500_000], [Y0])
    allpts = pd.concat([pts, far], ignore_index=True)
    res = ring_edge_test(allpts, rings, n_sim=49, seed=0, city="X")
    assert res.n == 12
    assert math.isnan(res.distances["distance_m"].iloc[-1])
    empty = ring_edge_test(allpts, rings, n_sim=49, seed=0, city="Y")
    assert empty.n == 0 and math.isnan(empty.p_sim_closer) and empty.note
    with pytest.raises(InputError, match="no ring system"):
        ring_edge_test(allpts, rings, city="Nowhere")


def test_ring_edge_distance_to_the_exterior_edge_only():
    """Holes are filled: a point in a hole is measured to the outer edge, by hand."""
    from incubloc.stats.rings import _edge_distance, _edge_index

    outer = shapely.union_all([box(0, 0, 100, 100).difference(box(40, 40, 60, 60)),
                               box(200, 0, 210, 10)])
    edge = _edge_index(outer)
    xy = np.array([[50.0, 50.0], [10.0, 30.0], [205.0, 5.0], [150.0, 50.0], [100.0, 100.0]])
    np.testing.assert_array_equal(_edge_distance(xy, edge), [50.0, 10.0, 5.0, 50.0, 0.0])
    assert _edge_index(shapely.Polygon()) is None
    assert np.isnan(_edge_distance(xy, None)).all()
    # bit for bit what shapely gives to the exterior rings
    rng = np.random.default_rng(0)
    pts = rng.uniform(-50, 260, (4000, 2))
    rings = shapely.multilinestrings(shapely.get_exterior_ring(shapely.get_parts(outer)))
    np.testing.assert_array_equal(_edge_distance(pts, edge),
                                  shapely.distance(rings, shapely.points(pts)))


# --------------------------------------------------------------------------- bundled data


def _bundled():
    return bundled(layers=["cities", "rings"])


def test_bundled_ring_patterns_and_nanjing_gradient():
    inc, sa = _bundled()
    rings = sa.get("rings")
    classified = inc.join(assign_ring(inc, rings))
    patterns = ring_patterns(classified, rings=rings, cities=sa.get("cities"))
    got = dict(zip(patterns["city"], patterns["ring_pattern"], strict=True))
    assert got["Nanjing"] == "core+inner_suburb+outer_suburb"
    for city in ("Huai'an", "Zhenjiang", "Wuhu", "Chuzhou"):
        assert got[city] == "core", city
    for city in ("Yangzhou", "Ma'anshan"):
        assert got[city] == "core+outer_suburb", city
    table = ring_table(classified, rings=rings)
    nj = density_gradient(table, city="Nanjing").iloc[0]
    assert bool(nj["monotone_decreasing"]) and nj["spearman_rho"] == pytest.approx(-1.0)
    assert opening_sequence(classified, city="Nanjing").loc[0, "spearman_rho"] > 0


def test_poisson_trend_equals_statsmodels_glm():
    sm = pytest.importorskip("statsmodels.api")
    from incubloc.stats.trend import poisson_trend

    counts = np.array([41, 17, 9, 6])
    area = np.array([120.0, 310.0, 900.0, 2500.0])
    order = np.array([1.0, 2.0, 3.0, 4.0])
    got = poisson_trend(counts, area, order, interval="poisson")
    X = sm.add_constant(order)
    ref = sm.GLM(counts, X, family=sm.families.Poisson(), offset=np.log(area)).fit()
    assert got.coef == pytest.approx(ref.params[1], rel=1e-8)
    assert got.intercept == pytest.approx(ref.params[0], rel=1e-8)
    assert got.se == pytest.approx(ref.bse[1], rel=1e-6)
    assert got.p == pytest.approx(ref.pvalues[1], rel=1e-6)
    lo, hi = np.exp(ref.conf_int()[1])
    assert (got.ci_low, got.ci_high) == (pytest.approx(lo, rel=1e-6), pytest.approx(hi, rel=1e-6))
    assert got.deviance == pytest.approx(ref.deviance, rel=1e-8)
    assert got.dispersion == pytest.approx(ref.pearson_chi2 / ref.df_resid, rel=1e-8)


def test_density_gradient_rate_ratio_on_counts():
    # Counts with exactly halving density per ring and equal areas: rate ratio 0.5.
    t = pd.DataFrame({"city": "X", "ring": list(RINGS), "count": [400, 200, 100],
                      "area_km2": [10.0, 10.0, 10.0], "density_km2": [40.0, 20.0, 10.0]})
    row = density_gradient(t).iloc[0]
    assert row["rate_ratio"] == pytest.approx(0.5)
    assert row["rate_ratio_ci_low"] < 0.5 < row["rate_ratio_ci_high"] < 1
    assert row["rate_ratio_p"] < 1e-10
    # Equal densities over unequal areas: no gradient (rows must not be swapped).
    flat = pd.DataFrame({"city": "F", "ring": list(RINGS), "count": [10, 40, 90],
                         "area_km2": [1.0, 4.0, 9.0], "density_km2": [10.0] * 3})
    row = density_gradient(flat).iloc[0]
    assert row["rate_ratio"] == pytest.approx(1.0) and row["rate_ratio_p"] == pytest.approx(1.0)


def test_ring_edge_direction_farther_from_edge():
    rings = _one_system()
    # Points just outside each inner boundary: far from their ring's outer edge.
    radius = np.repeat([200.0, 5_300.0, 15_300.0], 6)
    angles = np.tile(np.linspace(0, 360, 6, endpoint=False), 3)
    pts = _points(*_polar(radius, angles))
    res = ring_edge_test(pts, rings, n_sim=199, seed=3)
    assert res.direction == "farther" and res.observed_mean > res.expected_mean
    assert res.p_sim_farther < 0.01 and res.p_sim_closer > 0.5
    near, _ = _edge_points()
    assert ring_edge_test(near, rings, n_sim=99, seed=3).direction == "closer"


def test_poisson_trend_without_a_finite_estimate_says_so():
    from incubloc.stats.trend import poisson_trend

    t = poisson_trend([12, 0, 0], [1.0, 2.0, 3.0], [1, 2, 3])
    assert math.isnan(t.rate_ratio) and "converge" in t.note and not t.converged
    assert "no events" in poisson_trend([0, 0, 0], [1.0, 1, 1], [1, 2, 3]).note
