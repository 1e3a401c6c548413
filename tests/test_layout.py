"""Internal layout (楼宇式 / 园区式 / 混合式) on hand-built geometry."""

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from incubloc.errors import ConfigError
from incubloc.scales.layout import LAYOUTS, LayoutThresholds, classify_layout, site_layout

CRS = "EPSG:32650"
X0, Y0 = 670_000.0, 3_548_000.0


def _gdf(data, geoms, crs=CRS):
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)


def _campus(x, y, levels=3.0):
    """A 400 m × 400 m campus with 8 buildings of 30 m × 30 m in two rows."""
    site = box(x, y, x + 400, y + 400)
    blds = [box(x + 20 + 45 * i, y + 50 + 200 * j, x + 50 + 45 * i, y + 80 + 200 * j)
            for i in range(4) for j in range(2)]
    return site, blds, [levels] * len(blds)


def _tower_site(x, y):
    """A 100 m × 100 m plot with one 60 m × 60 m, 12-storey building."""
    return box(x, y, x + 100, y + 100), [box(x + 20, y + 20, x + 80, y + 80)], [12.0]


def test_defaults_and_validation():
    t = LayoutThresholds()
    assert (t.max_buildings, t.min_coverage, t.min_levels, t.max_site_area_m2) == (3, 0.30, 4.0, 30_000.0)
    assert (t.point_building_tolerance_m, t.storey_height_m) == (10.0, 3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.min_levels = 2  # type: ignore[misc]
    with pytest.raises(ConfigError, match="min_coverage"):
        LayoutThresholds(min_coverage=1.5)
    assert set(LAYOUTS) == {"building", "park", "mixed", "unclassified"}
    assert "楼宇式" in LayoutThresholds.__doc__ or "楼宇式" in __import__("incubloc.scales.layout").scales.layout.__doc__


def test_point_inside_a_20_storey_footprint_is_building():
    foot = box(X0, Y0, X0 + 40, Y0 + 25)
    inc = _gdf({"id": ["t"]}, [Point(X0 + 20, Y0 + 12)])
    bld = _gdf({"building_id": ["b"], "levels": [20]}, [foot])
    r = classify_layout(inc, None, bld)
    assert r.loc[0, "layout"] == "building"
    assert r.loc[0, "n_buildings"] == 1 and r.loc[0, "n_sites"] == 1
    assert r.loc[0, "coverage"] == pytest.approx(1.0)
    assert r.loc[0, "site_area_m2"] == pytest.approx(40 * 25)
    assert r.loc[0, "mean_levels"] == pytest.approx(20)
    assert "footprint" in r.loc[0, "reason"]


def test_campus_with_eight_low_buildings_is_park():
    site, blds, levels = _campus(X0, Y0)
    inc = _gdf({"id": ["c"]}, [site.centroid])
    sites = _gdf({"incubator_id": ["c"]}, [site])
    b = _gdf({"levels": levels}, blds)
    s = site_layout(inc, sites, b)
    assert s.loc[0, "layout"] == "park"
    assert s.loc[0, "n_buildings"] == 8
    assert s.loc[0, "coverage"] == pytest.approx(8 * 30 * 30 / (400 * 400))
    assert s.loc[0, "mean_levels"] == pytest.approx(3.0)
    assert s.loc[0, "site_area_m2"] == pytest.approx(160_000)
    reason = s.loc[0, "reason"]
    assert "more than 3 buildings" in reason and "coverage below 30%" in reason
    assert "below 4 levels" in reason and "site larger than" in reason


def test_site_without_buildings_is_unclassified():
    inc = _gdf({"id": ["e"]}, [Point(X0 + 50, Y0 + 50)])
    sites = _gdf({"incubator_id": ["e"]}, [box(X0, Y0, X0 + 100, Y0 + 100)])
    far = _gdf({"levels": [5]}, [box(X0 + 5000, Y0, X0 + 5010, Y0 + 10)])
    r = classify_layout(inc, sites, far)
    assert r.loc[0, "layout"] == "unclassified"
    assert r.loc[0, "reason"] == "no building footprints inside the site"
    assert r.loc[0, "n_buildings"] == 0
    assert r.loc[0, "site_area_m2"] == pytest.approx(10_000)


def test_two_sites_of_different_layouts_are_mixed():
    tower, tb, tl = _tower_site(X0, Y0)
    campus, cb, cl = _campus(X0 + 5000, Y0)
    inc = _gdf({"id": ["m"]}, [tower.centroid])
    sites = _gdf({"incubator_id": ["m", "m"], "site_id": ["old", "new"]}, [tower, campus])
    b = _gdf({"levels": tl + cl}, tb + cb)
    s = site_layout(inc, sites, b)
    assert s["layout"].tolist() == ["building", "park"]
    assert s.loc[0, "coverage"] == pytest.approx(3600 / 10_000)
    r = classify_layout(inc, sites, b)
    assert r.loc[0, "layout"] == "mixed"
    assert r.loc[0, "n_sites"] == 2 and r.loc[0, "n_buildings"] == 9
    assert r.loc[0, "site_area_m2"] == pytest.approx(10_000 + 160_000)
    # Pooled coverage and footprint-weighted levels, computed here independently.
    assert r.loc[0, "coverage"] == pytest.approx((3600 + 8 * 900) / 170_000)
    assert r.loc[0, "mean_levels"] == pytest.approx((3600 * 12 + 8 * 900 * 3) / (3600 + 8 * 900))
    assert r.loc[0, "reason"] == "1 building-type and 1 park-type sites"


def test_buildings_layer_missing_or_empty():
    inc = _gdf({"id": ["a", "b"]}, [Point(X0, Y0), Point(X0 + 10, Y0)])
    r = classify_layout(inc, None, None)
    assert (r["layout"] == "unclassified").all() and (r["reason"] == "no buildings layer").all()
    empty = _gdf({"levels": []}, [])
    assert (classify_layout(inc, None, empty)["reason"] == "buildings layer is empty").all()


def test_levels_from_height_and_weighted_mean():
    site = box(X0, Y0, X0 + 100, Y0 + 100)
    a = box(X0 + 10, Y0 + 10, X0 + 60, Y0 + 60)  # 2 500 m², 10 levels
    b = box(X0 + 65, Y0 + 10, X0 + 95, Y0 + 30)  # 600 m², height 18 m -> 6 levels
    c = box(X0 + 65, Y0 + 60, X0 + 75, Y0 + 70)  # 100 m², nothing known
    inc = _gdf({"id": ["a"]}, [site.centroid])
    sites = _gdf({"incubator_id": ["a"]}, [site])
    bld = _gdf({"levels": [10, np.nan, np.nan], "height": [np.nan, 18.0, np.nan]}, [a, b, c])
    s = site_layout(inc, sites, bld)
    assert s.loc[0, "n_buildings"] == 3
    assert s.loc[0, "mean_levels"] == pytest.approx((2500 * 10 + 600 * 6) / (2500 + 600))
    assert s.loc[0, "coverage"] == pytest.approx((2500 + 600 + 100) / 10_000)
    assert s.loc[0, "layout"] == "building"
    # A different storey height changes the derived levels.
    s4 = site_layout(inc, sites, bld, thresholds=LayoutThresholds(storey_height_m=4.5))
    assert s4.loc[0, "mean_levels"] == pytest.approx((2500 * 10 + 600 * 4) / 3100)


def test_unknown_levels_fail_the_levels_test():
    tower, tb, _ = _tower_site(X0, Y0)
    inc = _gdf({"id": ["a"]}, [tower.centroid])
    s = site_layout(inc, _gdf({"incubator_id": ["a"]}, [tower]), _gdf({"building_id": ["x"]}, tb))
    assert s.loc[0, "layout"] == "park"
    assert np.isnan(s.loc[0, "mean_levels"])
    assert "levels unknown" in s.loc[0, "reason"]


def test_building_counted_by_its_representative_point():
    site = box(X0, Y0, X0 + 100, Y0 + 100)
    mostly_out = box(X0 + 90, Y0 + 10, X0 + 150, Y0 + 50)  # centre outside the site
    mostly_in = box(X0 + 10, Y0 + 10, X0 + 50, Y0 + 50)
    inc = _gdf({"id": ["a"]}, [site.centroid])
    bld = _gdf({"levels": [8, 8]}, [mostly_out, mostly_in])
    s = site_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), bld)
    assert s.loc[0, "n_buildings"] == 1
    assert s.loc[0, "coverage"] == pytest.approx(1600 / 10_000)


def test_point_tolerance():
    foot = box(X0, Y0, X0 + 20, Y0 + 20)
    near = Point(X0 + 25, Y0 + 10)  # 5 m east
    far = Point(X0 + 40, Y0 + 10)  # 20 m east
    inc = _gdf({"id": ["near", "far"]}, [near, far])
    bld = _gdf({"levels": [6]}, [foot])
    r = classify_layout(inc, None, bld)
    assert r["layout"].tolist() == ["building", "unclassified"]
    assert r.loc[1, "reason"].startswith("point-only site with no building footprint at its location")
    r30 = classify_layout(inc, None, bld, thresholds=LayoutThresholds(point_building_tolerance_m=30))
    assert r30["layout"].tolist() == ["building", "building"]


def test_point_picks_the_nearest_footprint():
    small_tall = box(X0, Y0, X0 + 20, Y0 + 20)
    big_low = box(X0 + 26, Y0, X0 + 60, Y0 + 20)
    inc = _gdf({"id": ["a"]}, [Point(X0 + 22, Y0 + 10)])  # 2 m from one, 4 m from the other
    bld = _gdf({"levels": [10, 2]}, [small_tall, big_low])
    r = classify_layout(inc, None, bld)
    assert r.loc[0, "site_area_m2"] == pytest.approx(400)
    assert r.loc[0, "layout"] == "building"


def test_threshold_boundaries_are_inclusive():
    side = np.sqrt(30_000.0)
    site = box(X0, Y0, X0 + side, Y0 + side)  # exactly max_site_area_m2
    bld = box(X0, Y0, X0 + side, Y0 + side * 0.30)  # exactly min_coverage
    inc = _gdf({"id": ["a"]}, [site.centroid])
    s = site_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), _gdf({"levels": [4.0]}, [bld]))
    assert s.loc[0, "layout"] == "building"
    t = LayoutThresholds(max_site_area_m2=29_000)
    s2 = site_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), _gdf({"levels": [4.0]}, [bld]),
                     thresholds=t)
    assert s2.loc[0, "layout"] == "park"


def test_declared_labels_are_never_read():
    tower, tb, tl = _tower_site(X0, Y0)
    campus, cb, cl = _campus(X0 + 5000, Y0)
    inc = _gdf({"id": ["t", "c"]}, [tower.centroid, campus.centroid])
    sites = _gdf({"incubator_id": ["t", "c"]}, [tower, campus])
    b = _gdf({"levels": tl + cl}, tb + cb)
    plain = classify_layout(inc, sites, b)
    liar = inc.assign(declared_layout=["park", "building"], layout=["mixed", "mixed"],
                      declared_relation=["x", "y"], relation=["mixed", "mixed"])
    lied_sites = sites.assign(layout=["park", "building"], declared_layout=["park", "building"])
    lied = classify_layout(liar, lied_sites, b)
    pd.testing.assert_frame_equal(plain, lied)
    assert lied["layout"].tolist() == ["building", "park"]


def test_wgs84_inputs_and_index_kept():
    tower, tb, tl = _tower_site(X0, Y0)
    inc = _gdf({"id": ["t", "nowhere"]}, [tower.centroid, Point()]).set_index(pd.Index(["x", "y"]))
    sites = _gdf({"incubator_id": ["t"]}, [tower])
    b = _gdf({"levels": tl}, tb)
    r = classify_layout(inc.to_crs(4326), sites.to_crs(4326), b.to_crs(4326))
    assert r.index.tolist() == ["x", "y"]
    assert r["layout"].tolist() == ["building", "unclassified"]
    assert r.loc["x", "coverage"] == pytest.approx(0.36, abs=1e-4)
    assert "no location" in r.loc["y", "reason"]


def test_undecided_site_is_ignored_when_others_decide():
    tower, tb, tl = _tower_site(X0, Y0)
    bare = box(X0 + 500, Y0, X0 + 600, Y0 + 100)
    inc = _gdf({"id": ["a"]}, [tower.centroid])
    sites = _gdf({"incubator_id": ["a", "a"]}, [tower, bare])
    r = classify_layout(inc, sites, _gdf({"levels": tl}, tb))
    assert r.loc[0, "layout"] == "building"
    assert r.loc[0, "reason"] == (
        "1 building-type sites; 1 site(s) ignored: no building footprints inside the site"
    )
    assert r.loc[0, "coverage"] == pytest.approx(3600 / 20_000)
