"""Classes known by construction, so that a broken classifier or ignored option fails.

* the bundled sample: every incubator's derived relation and layout equals the one
  its generator declared, row by row (a classifier that hands incubators each
  other's classes keeps the shares but fails here);
* hand-built sites just inside each default threshold: a changed default moves them
  to the other class, and every key of ``[relation]``, ``[layout]`` and
  ``[study_area]`` is shown to reach the classifier through ``resolve_config`` +
  ``classify_with_config`` and through ``incubloc classify --config``;
* thresholds met exactly (a value equal to a threshold passes) and tolerances.
"""

from __future__ import annotations

import math

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, box

from incubloc.agreement import agreement, normalize_labels
from incubloc.classification import classify
from incubloc.config import resolve_config
from incubloc.datasets import load_example
from incubloc.errors import ConfigError
from incubloc.scales.layout import classify_layout
from incubloc.scales.region import assign_region
from incubloc.scales.relation import classify_relation
from incubloc.studyarea import StudyArea
from incubloc.workflow import classify_with_config

CRS = "EPSG:32650"  # UTM 50N, metres
X0, Y0 = 670_000.0, 3_548_000.0


def _gdf(data, geoms, crs=CRS):
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)


# ------------------------------------------------------------------ bundled sample


@pytest.fixture(scope="module")
def sample():
    ex = load_example("nanjing")
    return ex, classify(ex.incubators, ex.study_area, sites=ex.sites).incubators


@pytest.mark.parametrize("scale", ["relation", "layout"])
def test_sample_classes_match_the_declared_ones_row_by_row(sample, scale):
    ex, out = sample
    declared = pd.Series(normalize_labels(ex.incubators[f"declared_{scale}"]).to_numpy(),
                         index=ex.incubators["id"].to_numpy())
    derived = pd.Series(out[scale].to_numpy(), index=out["id"].to_numpy())
    assert declared.notna().all() and len(declared) == 200
    wrong = derived.index[derived != declared.reindex(derived.index)].tolist()
    assert wrong == [], f"{scale}: {len(wrong)} incubators differ, e.g. {wrong[:5]}"
    assert agreement(declared, derived).kappa == pytest.approx(1.0)


def test_sample_rings_hold_their_points(sample):
    # The ring of each incubator is the ring polygon that holds it, checked with shapely.
    ex, out = sample
    rings = ex.study_area.get("rings")
    joined = gpd.sjoin(ex.incubators[["id", "geometry"]], rings[["city", "ring", "geometry"]],
                       predicate="within")
    by_id = out.set_index("id")
    for inc_id, grp in joined.groupby("id"):
        assert by_id.loc[inc_id, "ring"] in set(grp["ring"]), inc_id


# ------------------------------------------------------------------ hand-built sites


def _three_squares(b):
    """Three b × b squares in an L near the plot's corner (X0, Y0), 2 m apart."""
    corners = [(X0 + 2, Y0 + 2), (X0 + 4 + b, Y0 + 2), (X0 + 2, Y0 + 4 + b)]
    return [box(x, y, x + b, y + b) for x, y in corners]


def _layout_case():
    """One building-type site just inside every default threshold of [layout].

    A 25 000 m² square plot (< 30 000) with three buildings (≤ 3) covering 34 %
    (≥ 30 %), 15 m high with no storey count (15 / 3 m = 5 levels ≥ 4), and a
    point-only incubator 5 m from a lone footprint (≤ 10 m).
    """
    side = math.sqrt(25_000.0)
    plot = box(X0, Y0, X0 + side, Y0 + side)
    b = math.sqrt(8_500.0 / 3)  # three squares, 8 500 m² together
    blds = _three_squares(b)
    lone = box(X0 + 1000, Y0, X0 + 1020, Y0 + 20)
    inc = _gdf({"id": ["plot", "point"]}, [Point(X0 + 10, Y0 + 10), Point(X0 + 1025, Y0 + 10)])
    sites = _gdf({"incubator_id": ["plot"]}, [plot])
    buildings = _gdf({"levels": [None] * 4, "height": [15.0] * 4}, [*blds, lone])
    return inc, sites, buildings


def _relation_case():
    """A site polygon 70 % inside a host (≥ 50 %) and a point 100 m outside it (> 0 m)."""
    host = _gdf({"host_id": ["h"], "kind": ["industrial_park"]}, [box(X0, Y0, X0 + 1000, Y0 + 1000)])
    inc = _gdf({"id": ["share", "near"]}, [Point(X0 + 900, Y0 + 50), Point(X0 + 1100, Y0 + 500)])
    sites = _gdf({"incubator_id": ["share"]}, [box(X0 + 800, Y0, X0 + 1000 + 200 * 3 / 7, Y0 + 100)])
    return inc, sites, host


def _region_case():
    """Two cities; an incubator in B 20 km from a corridor line (≤ 30 km belt)."""
    a = box(118.0, 32.0, 118.5, 32.5)
    b = box(118.5, 32.0, 119.5, 32.5)
    cities = gpd.GeoDataFrame({"city": ["A", "B"], "province": ["P", "P"], "core": [True, False]},
                              geometry=[a, b], crs=4326)
    line = gpd.GeoDataFrame(geometry=[LineString([(119.0, 32.0), (119.0, 32.5)])], crs=4326)
    # 20 km east of the line at latitude 32.25 (UTM 50N metres).
    pt = gpd.GeoSeries([Point(119.0, 32.25)], crs=4326).to_crs(CRS).translate(20_000, 0).to_crs(4326)
    inc = gpd.GeoDataFrame({"id": ["b"]}, geometry=list(pt), crs=4326)
    return inc, StudyArea({"cities": cities, "corridors": line})


def _classes(inc, sa, sites, overrides=None):
    out = classify_with_config(inc, sa, sites=sites, config=resolve_config(overrides or {}))
    return out.incubators.set_index("id")


def test_defaults_put_the_layout_sites_in_the_building_class():
    inc, sites, buildings = _layout_case()
    out = classify_layout(inc, sites, buildings)
    assert out["layout"].tolist() == ["building", "building"]
    assert out.loc[0, "coverage"] == pytest.approx(0.34)
    assert out.loc[0, "mean_levels"] == pytest.approx(5.0)
    assert out.loc[0, "site_area_m2"] == pytest.approx(25_000.0)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max_buildings", 2, ["park", "building"]),
        ("min_coverage", 0.36, ["park", "building"]),
        ("min_levels", 5.5, ["park", "park"]),
        ("max_site_area_m2", 24_000.0, ["park", "building"]),
        ("point_building_tolerance_m", 2.0, ["building", "unclassified"]),
        ("storey_height_m", 5.0, ["park", "park"]),
    ],
)
def test_each_layout_key_of_the_config_reaches_the_classifier(key, value, expected):
    inc, sites, buildings = _layout_case()
    sa = StudyArea({"buildings": buildings})
    assert _classes(inc, sa, sites)["layout"].tolist() == ["building", "building"]
    assert _classes(inc, sa, sites, {"layout": {key: value}})["layout"].tolist() == expected


def test_defaults_put_the_relation_sites_where_the_geometry_says():
    inc, sites, host = _relation_case()
    out = classify_relation(inc, sites, host)
    assert out["relation"].tolist() == ["park_in_park", "standalone"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("min_share", 0.8, ["standalone", "standalone"]),
        ("tolerance_m", 150.0, ["park_in_park", "park_in_park"]),
    ],
)
def test_each_relation_key_of_the_config_reaches_the_classifier(key, value, expected):
    inc, sites, host = _relation_case()
    sa = StudyArea({"hosts": host})
    assert _classes(inc, sa, sites)["relation"].tolist() == ["park_in_park", "standalone"]
    assert _classes(inc, sa, sites, {"relation": {key: value}})["relation"].tolist() == expected


def test_default_belt_and_core_of_the_region_scale():
    inc, sa = _region_case()
    assert assign_region(inc, sa)["zone"].tolist() == ["belt"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("corridor_buffer_m", 10_000.0, "other"), ("core_city", "B", "core")],
)
def test_each_study_area_key_of_the_config_reaches_the_classifier(key, value, expected):
    inc, sa = _region_case()
    assert _classes(inc, sa, None)["zone"].tolist() == ["belt"]
    assert _classes(inc, sa, None, {"study_area": {key: value}})["zone"].tolist() == [expected]


def test_cli_config_reaches_the_classifier(tmp_path):
    from incubloc.shells.cli import main

    inc, sites, buildings = _layout_case()
    _, rsites, host = _relation_case()
    area = tmp_path / "area.gpkg"
    buildings.to_file(area, layer="buildings")
    host.to_file(area, layer="hosts")
    inc_path, sites_path = tmp_path / "inc.gpkg", tmp_path / "sites.gpkg"
    inc2 = pd.concat([inc, _relation_case()[0]], ignore_index=True)
    inc2.to_crs(4326).to_file(inc_path)
    pd.concat([sites, rsites], ignore_index=True).to_crs(4326).to_file(sites_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[layout]\nmin_levels = 5.5\n\n[relation]\nmin_share = 0.8\n", encoding="utf-8")
    runs = {}
    for name, extra in (("default", []), ("config", ["--config", str(cfg)])):
        out = tmp_path / f"{name}.gpkg"
        code = main(["classify", str(inc_path), "--study-area", str(area), "--sites", str(sites_path),
                     *extra, "-o", str(out)])
        assert code in (0, None)
        runs[name] = gpd.read_file(out, layer="incubators").set_index("id")
    assert runs["default"].loc[["plot", "point"], "layout"].tolist() == ["building", "building"]
    assert runs["config"].loc[["plot", "point"], "layout"].tolist() == ["park", "park"]
    assert runs["default"].loc["share", "relation"] == "park_in_park"
    assert runs["config"].loc["share", "relation"] == "standalone"


# ------------------------------------------------------------------ thresholds met exactly


def test_layout_thresholds_met_exactly_pass():
    # Exactly 3 buildings, 30 % coverage, 4 levels and a 30 000 m² plot: building.
    side = math.sqrt(30_000.0)
    plot = box(X0, Y0, X0 + side, Y0 + side)
    b = math.sqrt(9_000.0 / 3)
    blds = _three_squares(b)
    inc = _gdf({"id": ["a"]}, [Point(X0 + 1, Y0 + 1)])
    sites = _gdf({"incubator_id": ["a"]}, [plot])
    buildings = _gdf({"levels": [4.0] * 3}, blds)
    out = classify_layout(inc, sites, buildings)
    assert out.loc[0, "layout"] == "building", out.loc[0, "reason"]
    # One more of anything and it is a park.
    more = _gdf({"levels": [4.0] * 4}, [*blds, box(X0 + 150, Y0 + 150, X0 + 151, Y0 + 151)])
    assert classify_layout(inc, sites, more).loc[0, "layout"] == "park"


def test_point_site_within_the_building_tolerance():
    inc = _gdf({"id": ["a", "b"]}, [Point(X0 + 29, Y0 + 10), Point(X0 + 31, Y0 + 10)])
    tower = _gdf({"levels": [20]}, [box(X0, Y0, X0 + 20, Y0 + 20)])
    out = classify_layout(inc, None, tower)
    assert out["layout"].tolist() == ["building", "unclassified"]


def test_relation_share_met_exactly_counts():
    host = _gdf({"host_id": ["h"], "kind": ["university"]}, [box(X0, Y0, X0 + 100, Y0 + 100)])
    inc = _gdf({"id": ["a"]}, [Point(X0 + 60, Y0 + 50)])
    half = _gdf({"incubator_id": ["a"]}, [box(X0 + 50, Y0, X0 + 150, Y0 + 100)])
    assert classify_relation(inc, half, host).loc[0, "relation"] == "park_in_park"
    assert classify_relation(inc, half, host, min_share=0.51).loc[0, "relation"] == "standalone"


def test_relation_tolerance_grows_the_hosts():
    host = _gdf({"host_id": ["h"], "kind": ["university"]}, [box(X0, Y0, X0 + 100, Y0 + 100)])
    inc = _gdf({"id": ["a", "b"]}, [Point(X0 + 149, Y0 + 50), Point(X0 + 151, Y0 + 50)])
    out = classify_relation(inc, None, host, tolerance_m=50.0)
    assert out["relation"].tolist() == ["park_in_park", "standalone"]


def test_relation_smallest_qualifying_host_wins_whatever_the_layer_order():
    big = box(X0, Y0, X0 + 1000, Y0 + 1000)
    small = box(X0 + 100, Y0 + 100, X0 + 300, Y0 + 300)
    inc = _gdf({"id": ["a"]}, [Point(X0 + 200, Y0 + 200)])
    for order in ([big, small], [small, big]):
        ids = ["big", "small"] if order[0] is big else ["small", "big"]
        host = _gdf({"host_id": ids, "kind": ["high_tech_zone", "science_park"]
                     if ids[0] == "big" else ["science_park", "high_tech_zone"]}, order)
        assert classify_relation(inc, None, host).loc[0, "host_id"] == "small"


def test_region_belt_half_width_is_a_distance():
    inc, sa = _region_case()
    assert assign_region(inc, sa, corridor_buffer_m=20_500.0)["zone"].tolist() == ["belt"]
    assert assign_region(inc, sa, corridor_buffer_m=19_500.0)["zone"].tolist() == ["other"]


# ------------------------------------------------------------------ measured in the analysis CRS


def test_site_tables_are_measured_in_the_analysis_crs():
    # Lon/lat input is measured in the local UTM zone, or in the CRS the caller gives.
    tower = gpd.GeoDataFrame({"levels": [20]}, geometry=[box(118.7998, 32.0498, 118.8002, 32.0502)],
                             crs=4326)
    inc = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.8, 32.05)], crs=4326)
    utm = float(tower.to_crs(CRS).area.iloc[0])
    merc = float(tower.to_crs(3857).area.iloc[0])
    assert merc > 1.3 * utm  # Web Mercator inflates areas by ~1/cos²(32°)
    from incubloc.scales.layout import site_layout
    from incubloc.scales.relation import site_relation

    assert site_layout(inc, None, tower)["site_area_m2"].iloc[0] == pytest.approx(utm)
    assert site_layout(inc, None, tower, crs=3857)["site_area_m2"].iloc[0] == pytest.approx(merc)
    site = gpd.GeoDataFrame({"incubator_id": ["a"]}, geometry=[box(118.7995, 32.0495, 118.8005, 32.0505)],
                            crs=4326)
    host = gpd.GeoDataFrame({"host_id": ["h"], "kind": ["university"]},
                            geometry=[box(118.7995, 32.0495, 118.8000, 32.0505)], crs=4326)
    # A 50 m tolerance in metres of the analysis CRS: the other half of the site is
    # ~47 m wide, so the grown host covers it all only when metres are metres.
    r = site_relation(inc, site, host, tolerance_m=50.0)
    assert r.loc[0, "share_inside"] == pytest.approx(1.0)
    r = site_relation(inc, site, host, tolerance_m=40.0)
    assert 0.5 < r.loc[0, "share_inside"] < 1.0
    with pytest.raises(ConfigError, match="min_share"):
        site_relation(inc, site, host, min_share=0.0)
    with pytest.raises(ConfigError, match="tolerance_m"):
        site_relation(inc, site, host, tolerance_m=-1.0)


def test_host_layer_defaults_crs_and_degenerate_features():
    from incubloc.errors import StudyAreaError
    from incubloc.scales.layout import classify_layout as layout_of

    inc = gpd.GeoDataFrame({"id": ["a", "b", "c"]}, crs=4326,
                           geometry=[Point(118.80, 32.05), Point(118.90, 32.05), Point(118.95, 32.05)])
    # No host_id, name or kind columns: ids are generated in layer order, kind is "other".
    hosts = gpd.GeoDataFrame(geometry=[box(118.79, 32.04, 118.81, 32.06),
                                       box(118.89, 32.04, 118.91, 32.06),
                                       LineString([(118.94, 32.05), (118.96, 32.05)])], crs=4326)
    r = classify_relation(inc, None, hosts)
    assert r["host_id"].tolist() == ["host-1", "host-2", None]
    assert r["host_kind"].tolist() == ["other", "other", None]
    # The line has no area: it is no host, even 1 m from the point with a 5 m tolerance.
    assert r["relation"].tolist() == ["park_in_park", "park_in_park", "standalone"]
    assert classify_relation(inc, None, hosts, tolerance_m=5.0)["relation"].iloc[2] == "standalone"
    # Measured in the CRS the caller gives: hosts follow the sites into it.
    assert classify_relation(inc, None, hosts, crs=3857)["relation"].tolist()[:2] == [
        "park_in_park", "park_in_park"]
    with pytest.raises(StudyAreaError, match="hosts layer has no CRS"):
        classify_relation(inc, None, hosts.set_crs(None, allow_override=True))
    towers = gpd.GeoDataFrame({"levels": [20]}, geometry=[box(118.7998, 32.0498, 118.8002, 32.0502)])
    with pytest.raises(StudyAreaError, match="buildings layer has no CRS"):
        layout_of(inc, None, towers)
