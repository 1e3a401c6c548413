"""Internal layout (楼宇式 / 园区式 / 混合式) on hand-built geometry."""

import dataclasses
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from incubloc.errors import ConfigError, StudyAreaError
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
    assert r.loc["y", "reason"] == "incubator has no location and no site geometry"


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


def _exact_site(x=X0, y=Y0):
    """Exactly at every default threshold: a 30 000 m² plot, three buildings covering
    30 % of it, all of 4 levels (a building-type site by the inclusive rules)."""
    side = np.sqrt(30_000.0)
    b = np.sqrt(9_000.0 / 3)
    corners = [(x + 2, y + 2), (x + 4 + b, y + 2), (x + 2, y + 4 + b)]
    return box(x, y, x + side, y + side), [box(cx, cy, cx + b, cy + b) for cx, cy in corners]


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"max_buildings": 2}, "more than 2 buildings"),
        ({"min_coverage": 0.35}, "coverage below 35%"),
        ({"min_levels": 4.5}, "below 4.5 levels"),
        ({"max_site_area_m2": 25_000.0}, "site larger than 25,000 m²"),
    ],
)
def test_park_reason_lists_exactly_the_failed_rule(change, failed):
    # The other three values sit exactly on their thresholds: they pass and are not listed.
    plot, blds = _exact_site()
    inc = _gdf({"id": ["a"]}, [Point(X0 + 1, Y0 + 1)])
    sites = _gdf({"incubator_id": ["a"]}, [plot])
    bld = _gdf({"levels": [4.0] * 3}, blds)
    s = site_layout(inc, sites, bld, thresholds=LayoutThresholds(**change))
    assert s.loc[0, "layout"] == "park"
    assert s.loc[0, "reason"] == (
        f"3 buildings covering 30% of a 30,000 m² site, mean 4.0 levels (not building-type: {failed})"
    )


def test_reasons_state_the_measured_facts():
    tower, tb, tl = _tower_site(X0, Y0)
    campus, cb, cl = _campus(X0 + 5000, Y0, levels=2.0)
    foot = box(X0 + 9000, Y0, X0 + 9040, Y0 + 25)  # 1 000 m², 20 levels
    inc = _gdf({"id": ["t", "c", "p"]}, [tower.centroid, campus.centroid, Point(X0 + 9020, Y0 + 12)])
    sites = _gdf({"incubator_id": ["t", "c"]}, [tower, campus])
    bld = _gdf({"levels": tl + cl + [20.0]}, tb + cb + [foot])
    s = site_layout(inc, sites, bld)
    assert s["reason"].tolist() == [
        "1 building covering 36% of a 10,000 m² site, mean 12.0 levels",
        "8 buildings covering 4% of a 160,000 m² site, mean 2.0 levels (not building-type: "
        "more than 3 buildings, coverage below 30%, below 4 levels, site larger than 30,000 m²)",
        "point in a 1,000 m² footprint, mean 20.0 levels",
    ]
    assert s["layout"].tolist() == ["building", "park", "building"]
    assert s.columns.tolist() == [
        "incubator_id", "site_id", "layout", "n_buildings", "coverage", "mean_levels",
        "site_area_m2", "reason",
    ]
    # A tower of unknown levels: the facts and the failed rule say so.
    s = site_layout(inc.iloc[:1], sites.iloc[:1], _gdf({"height": [None]}, tb))
    assert s.loc[0, "reason"] == (
        "1 building covering 36% of a 10,000 m² site, levels unknown "
        "(not building-type: levels unknown)"
    )
    # Unknown levels fail even the lowest levels rule.
    low = LayoutThresholds(min_levels=0.5)
    assert site_layout(inc.iloc[:1], sites.iloc[:1], _gdf({"height": [None]}, tb),
                       thresholds=low).loc[0, "layout"] == "park"


def test_levels_zero_is_unknown_and_one_storey_counts():
    site = box(X0, Y0, X0 + 100, Y0 + 100)
    one = box(X0 + 10, Y0 + 10, X0 + 30, Y0 + 30)  # 400 m², 1 level
    zero = box(X0 + 50, Y0 + 50, X0 + 90, Y0 + 90)  # 1 600 m², levels 0 = not known
    inc = _gdf({"id": ["a"]}, [site.centroid])
    s = site_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), _gdf({"levels": [1, 0]}, [one, zero]))
    assert s.loc[0, "mean_levels"] == pytest.approx(1.0)
    assert s.loc[0, "n_buildings"] == 2


def test_nullable_levels_and_heights_are_read():
    # Nullable integer levels with a gap filled from a nullable float height.
    site = box(X0, Y0, X0 + 100, Y0 + 100)
    a = box(X0 + 10, Y0 + 10, X0 + 60, Y0 + 60)  # 2 500 m², 10 levels
    b = box(X0 + 65, Y0 + 10, X0 + 95, Y0 + 30)  # 600 m², 18 m -> 6 levels
    bld = _gdf({"levels": pd.array([10, None], dtype="Int64"),
                "height": pd.array([None, 18.0], dtype="Float64")}, [a, b])
    inc = _gdf({"id": ["a"]}, [site.centroid])
    s = site_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), bld)
    assert s.loc[0, "mean_levels"] == pytest.approx((2500 * 10 + 600 * 6) / 3100)


def test_self_intersecting_footprint_is_repaired():
    # A bow-tie of triangles 37.5 m² and 337.5 m² (its signed area, 300 m², is wrong).
    site = box(X0, Y0, X0 + 100, Y0 + 100)
    bow = shapely.Polygon([(X0 + 10, Y0 + 10), (X0 + 40, Y0 + 40), (X0 + 40, Y0 + 10), (X0 + 10, Y0 + 20)])
    assert not bow.is_valid
    inc = _gdf({"id": ["a"]}, [site.centroid])
    s = site_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), _gdf({"levels": [5]}, [bow]))
    assert s.loc[0, "coverage"] == pytest.approx(375 / 10_000)


def test_no_buildings_layer_keeps_the_site_measures():
    inc = _gdf({"id": ["a", "b"]}, [Point(X0 + 50, Y0 + 50), Point(X0 + 500, Y0)])
    sites = _gdf({"incubator_id": ["a"]}, [box(X0, Y0, X0 + 100, Y0 + 100)])
    s = site_layout(inc, sites, None)
    assert s["layout"].tolist() == ["unclassified", "unclassified"]
    assert s["site_area_m2"].iloc[0] == pytest.approx(10_000) and np.isnan(s["site_area_m2"].iloc[1])
    assert s[["n_buildings", "coverage", "mean_levels"]].isna().all().all()
    r = classify_layout(inc, sites, None)
    assert r["site_area_m2"].iloc[0] == pytest.approx(10_000)
    assert r[["coverage", "mean_levels"]].isna().all().all()
    assert r["reason"].tolist() == ["no buildings layer", "no buildings layer"]


def test_incubator_reasons_over_several_sites():
    campus, cb, cl = _campus(X0, Y0)
    campus2, cb2, cl2 = _campus(X0 + 1000, Y0)
    bare = box(X0 + 3000, Y0, X0 + 3100, Y0 + 100)
    inc = _gdf({"id": ["pp", "none", "lone"]}, [campus.centroid, bare.centroid, Point(X0 + 8000, Y0)])
    sites = _gdf({"incubator_id": ["pp", "pp", "pp", "none", "none"]},
                 [campus, campus2, None, bare, None])
    b = _gdf({"levels": cl + cl2}, cb + cb2)
    r = classify_layout(inc, sites, b)
    assert r["layout"].tolist() == ["park", "unclassified", "unclassified"]
    assert r["reason"].tolist() == [
        "2 park-type sites; 1 site(s) ignored: site has no geometry",
        "all sites unclassified: no building footprints inside the site; site has no geometry",
        "point-only site with no building footprint at its location (within 10 m)",
    ]
    assert r["n_sites"].tolist() == [3, 2, 1]
    assert r.loc[0, "n_buildings"] == 16 and r.loc[1, "n_buildings"] == 0
    assert r.loc[0, "site_area_m2"] == pytest.approx(320_000)
    assert r.loc[0, "coverage"] == pytest.approx(16 * 900 / 320_000)
    assert r.loc[1, "coverage"] == pytest.approx(0.0)
    # The point found no footprint: nothing measured.
    assert r.loc[2, ["coverage", "mean_levels", "site_area_m2"]].isna().all()


def test_classify_layout_of_no_incubators_and_in_the_crs_given():
    inc = _gdf({"id": []}, []).rename_axis("key")
    r = classify_layout(inc, None, None)
    assert r.index.name == "key"
    assert len(r) == 0 and r.columns.tolist() == [
        "layout", "n_sites", "n_buildings", "coverage", "mean_levels", "site_area_m2", "reason",
    ]
    tower = gpd.GeoDataFrame({"levels": [20]}, geometry=[box(118.7998, 32.0498, 118.8002, 32.0502)],
                             crs=4326)
    one = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.8, 32.05)], crs=4326)
    merc = float(tower.to_crs(3857).area.iloc[0])
    assert classify_layout(one, None, tower, crs=3857).loc[0, "site_area_m2"] == pytest.approx(merc)
    assert classify_layout(one.to_crs(3857), None, tower).loc[0, "site_area_m2"] == pytest.approx(merc)
    # Incubators without a location: the sites' projected CRS is the analysis CRS.
    utm = float(tower.to_crs(CRS).area.iloc[0])
    nowhere = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point()], crs=4326)
    site = tower.assign(incubator_id=["a"]).to_crs(CRS)
    for f in (classify_layout, site_layout):
        assert f(nowhere, site, tower)["site_area_m2"].iloc[0] == pytest.approx(utm)


def test_buildings_layer_without_crs_is_named_in_the_error():
    inc = _gdf({"id": ["a"]}, [Point(X0, Y0)])
    bld = gpd.GeoDataFrame({"levels": [5]}, geometry=[box(X0, Y0, X0 + 10, Y0 + 10)])
    with pytest.raises(StudyAreaError,
                       match=r"^the buildings layer has no CRS: set one \(EPSG:4326 is expected\)$"):
        site_layout(inc, None, bld)


def test_large_buildings_layer_is_prefiltered_to_the_same_answer(caplog):
    # 50 000 lon/lat footprints (the size from which only buildings near a site are
    # projected): 49 995 of them 50-90 km away, built in lon/lat so that the test does
    # not project them itself. The answers are those of the few buildings at the sites,
    # known by construction.
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(119.5, 119.9, 49_995), rng.uniform(32.0, 32.4, 49_995)
    far = gpd.GeoDataFrame({"levels": np.full(lon.size, 7.0)},
                           geometry=shapely.box(lon, lat, lon + 1e-4, lat + 1e-4),
                           crs=4326)
    tower, tb, tl = _tower_site(X0, Y0)
    foot = box(X0 + 2000, Y0, X0 + 2020, Y0 + 20)  # a point site 9.5 m east of it
    broken = [None, shapely.Polygon(), LineString([(X0, Y0), (X0 + 5, Y0)])]
    # Four more 20 m footprints, each 9.5 m from its point site to the E, W, N and S.
    x4, y4 = X0 + 5000, Y0 + 5000
    sides = [box(x4 + 9.5, y4 - 10, x4 + 29.5, y4 + 10), box(x4 - 1029.5, y4 - 10, x4 - 1009.5, y4 + 10),
             box(x4 + 990, y4 + 9.5, x4 + 1010, y4 + 29.5), box(x4 - 10, y4 - 1029.5, x4 + 10, y4 - 1009.5)]
    pts4 = [Point(x4, y4), Point(x4 - 1000, y4), Point(x4 + 1000, y4), Point(x4, y4 - 1000)]
    near = _gdf({"levels": tl + [6.0] + [9.0] * 3 + [5.0] * 4}, tb + [foot] + broken + sides).to_crs(4326)
    bld = pd.concat([far.iloc[4:], near], ignore_index=True)
    assert len(bld) == 50_000
    inc = _gdf({"id": ["t", "p", "nowhere", "e", "w", "n", "s"]},
               [tower.centroid, Point(X0 + 2029.5, Y0 + 10), Point(), *pts4])
    sites = _gdf({"incubator_id": ["t"]}, [tower])
    with caplog.at_level("WARNING", logger="incubloc.scales.layout"):
        s = site_layout(inc.to_crs(4326), sites.to_crs(4326), bld)
    assert s["layout"].tolist() == ["building", "building", "unclassified"] + ["building"] * 4
    assert s["n_buildings"].iloc[:2].tolist() == [1, 1]
    assert s["coverage"].iloc[0] == pytest.approx(0.36, abs=1e-4)
    assert s["site_area_m2"].iloc[1] == pytest.approx(400, rel=1e-3)
    assert [r.getMessage() for r in caplog.records] == [
        "buildings layer: ignored 3 features without footprint area"
    ]


def test_point_between_footprints_ties_go_to_the_larger_then_the_first():
    small = box(X0, Y0, X0 + 20, Y0 + 20)  # 400 m², 10 levels
    large = box(X0 + 20, Y0, X0 + 60, Y0 + 20)  # 800 m², 2 levels; shares the edge x = X0 + 20
    inc = _gdf({"id": ["edge"]}, [Point(X0 + 20, Y0 + 10)])
    s = site_layout(inc, None, _gdf({"levels": [10, 2]}, [small, large]))
    assert s.loc[0, "site_area_m2"] == pytest.approx(800) and s.loc[0, "layout"] == "park"
    # Same distance (5 m) and area: the first footprint of the layer.
    left, right = box(X0, Y0, X0 + 20, Y0 + 20), box(X0 + 30, Y0, X0 + 50, Y0 + 20)
    mid = _gdf({"id": ["mid"]}, [Point(X0 + 25, Y0 + 10)])
    assert site_layout(mid, None, _gdf({"levels": [10, 2]}, [left, right])).loc[0, "layout"] == "building"
    assert site_layout(mid, None, _gdf({"levels": [2, 10]}, [left, right])).loc[0, "layout"] == "park"


def test_overlapping_footprints_cover_at_most_the_whole_site():
    site = box(X0, Y0, X0 + 100, Y0 + 100)
    twice = [box(X0 + 10, Y0 + 10, X0 + 90, Y0 + 90)] * 2  # 2 × 6 400 m² on 10 000 m²
    inc = _gdf({"id": ["a"]}, [site.centroid])
    s = site_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), _gdf({"levels": [5, 5]}, twice))
    assert s.loc[0, "coverage"] == pytest.approx(1.0)
    r = classify_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), _gdf({"levels": [5, 5]}, twice))
    assert r.loc[0, "coverage"] == pytest.approx(1.0)


def test_unknown_levels_and_unmeasured_sites_raise_no_numpy_warning():
    tower, tb, _ = _tower_site(X0, Y0)
    inc = _gdf({"id": ["a", "far"]}, [tower.centroid, Point(X0 + 5000, Y0)])
    sites = _gdf({"incubator_id": ["a"]}, [tower])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for bld in (_gdf({"height": [None]}, tb), None):
            r = classify_layout(inc, sites, bld)
            assert r["mean_levels"].isna().all()
            s = site_layout(inc, sites, bld)
            assert s["mean_levels"].isna().all()


def test_footprints_without_area_are_dropped_with_a_warning(caplog):
    site = box(X0, Y0, X0 + 100, Y0 + 100)
    inc = _gdf({"id": ["a"]}, [site.centroid])
    bld = _gdf({"levels": [6, 6, 6]}, [box(X0 + 10, Y0 + 10, X0 + 50, Y0 + 50), None,
                                        LineString([(X0 + 60, Y0 + 60), (X0 + 70, Y0 + 60)])])
    with caplog.at_level("WARNING", logger="incubloc.scales.layout"):
        s = site_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), bld)
    assert s.loc[0, "n_buildings"] == 1
    assert [r.getMessage() for r in caplog.records] == [
        "buildings layer: ignored 2 features without footprint area"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="incubloc.scales.layout"):
        site_layout(inc, _gdf({"incubator_id": ["a"]}, [site]), bld.iloc[:1])
    assert caplog.records == []  # nothing dropped, nothing said


def test_point_site_on_a_footprint_of_unknown_levels():
    # A tower plot (12 levels) and a point on a 400 m² footprint with no levels or height.
    tower, tb, tl = _tower_site(X0, Y0)
    foot = box(X0 + 1000, Y0, X0 + 1020, Y0 + 20)
    inc = _gdf({"id": ["a"]}, [tower.centroid])
    sites = _gdf({"incubator_id": ["a", "a"]}, [tower, Point(X0 + 1010, Y0 + 10)])
    bld = _gdf({"levels": tl + [None]}, tb + [foot])
    s = site_layout(inc, sites, bld)
    assert s["layout"].tolist() == ["building", "park"]
    assert np.isnan(s.loc[1, "mean_levels"])
    assert s.loc[1, "reason"] == (
        "point in a 400 m² footprint, levels unknown (not building-type: levels unknown)"
    )
    r = classify_layout(inc, sites, bld)
    assert r.loc[0, "layout"] == "mixed"
    assert r.loc[0, "mean_levels"] == pytest.approx(12.0)  # only the known levels count
