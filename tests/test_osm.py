"""OpenStreetMap ingestion from hand-written OSM XML fixtures (no network)."""

import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmnx as ox
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point, box

from incubloc.errors import ConfigError, IncublocError, InputError
from incubloc.osm import (
    BUILDING_TAGS,
    HOST_TAGS,
    add_osm_to_study_area,
    buildings_from_osm,
    hosts_from_osm,
    parse_height,
    parse_levels,
)
from incubloc.scales.relation import classify_relation
from incubloc.studyarea import load_study_area

FIXTURES = Path(__file__).parent / "fixtures" / "osm"
SAMPLE = FIXTURES / "nanjing_sample.osm"
BUILDINGS_ONLY = FIXTURES / "buildings_only.osm"

EXPECTED_HOSTS = {
    "relation/201": ("南京高新技术产业开发区", "high_tech_zone"),
    "way/101": ("测试大学", "university"),
    "way/102": ("板桥工业集中区", "industrial_park"),
    "way/103": ("测试研究院", "research"),
    "way/104": ("南京软件园", "science_park"),
    "way/106": ("南京经济技术开发区", "development_zone"),
}


def _by_osm_id(gdf):
    return gdf.set_index("osm_id")


def test_hosts_from_fixture_kinds_names_and_count():
    hosts = hosts_from_osm(osm_file=SAMPLE)
    assert len(hosts) == 6
    assert list(hosts.columns) == ["host_id", "name", "kind", "osm_id", "source", "geometry"]
    assert hosts.crs.to_epsg() == 4326
    got = {r.osm_id: (r.name, r.kind) for r in hosts.itertuples()}
    assert got == EXPECTED_HOSTS
    assert set(hosts.geom_type) == {"Polygon"}
    assert hosts["host_id"].is_unique
    assert _by_osm_id(hosts).loc["way/101", "host_id"] == "osm-way-101"
    # The node-only college and the shopping district are not hosts.
    assert "测试职业学院" not in set(hosts["name"]) and "新街口商圈" not in set(hosts["name"])
    assert hosts.attrs["query"]["source"] == "osm_file"


def test_multipolygon_hole_is_preserved():
    zone = _by_osm_id(hosts_from_osm(osm_file=SAMPLE)).loc["relation/201", "geometry"]
    assert len(zone.interiors) == 1
    outer = 0.04 * 0.03  # degrees², from the fixture's node coordinates
    inner = 0.01 * 0.01
    assert zone.area == pytest.approx(outer - inner)
    assert not zone.contains(Point(118.72, 32.115))  # in the hole
    assert zone.contains(Point(118.705, 32.105))


def test_buildings_with_parsed_levels_and_height():
    b = buildings_from_osm(osm_file=SAMPLE).set_index("building_id")
    assert sorted(b.index) == [f"osm-way-{i}" for i in (103, 301, 302, 303, 304, 305)]
    assert b.loc["osm-way-301", "levels"] == 20
    assert b.loc["osm-way-302", "levels"] == 6  # "5;6" -> the larger
    assert np.isnan(b.loc["osm-way-303", "levels"]) and b.loc["osm-way-303", "height"] == 12
    assert b.loc["osm-way-304", "levels"] == 3 and b.loc["osm-way-304", "height"] == 15
    assert np.isnan(b.loc["osm-way-305", "levels"]) and np.isnan(b.loc["osm-way-305", "height"])
    assert set(b.geom_type) == {"Polygon"}  # the node-only building was dropped
    other = buildings_from_osm(osm_file=BUILDINGS_ONLY)
    assert other["levels"].tolist()[0] == 12.5 and np.isnan(other["levels"].tolist()[1])
    assert other["height"].tolist() == pytest.approx([40 * 0.3048, 18.5])


def test_no_hosts_gives_an_empty_layer():
    hosts = hosts_from_osm(osm_file=BUILDINGS_ONLY)
    assert len(hosts) == 0
    assert list(hosts.columns) == ["host_id", "name", "kind", "osm_id", "source", "geometry"]
    assert hosts.crs.to_epsg() == 4326


def test_parsers():
    assert parse_levels(["7", " 5 floors", "3;4;5", "2.5", "", "ground"]).tolist()[:4] == [
        7.0, 5.0, 5.0, 2.5,
    ]
    assert parse_height(["30m", "30 metres", "100'", "10;12 m"]).round(2).tolist() == [
        30.0, 30.0, 30.48, 12.0,
    ]


def test_online_path_uses_the_same_post_processing(monkeypatch, tmp_path):
    calls = {}

    def fake_place(query, tags):
        calls["query"], calls["tags"] = query, tags
        calls["cache"] = (ox.settings.use_cache, ox.settings.cache_folder)
        return ox.features.features_from_xml(SAMPLE, tags=tags)

    before = (ox.settings.use_cache, ox.settings.cache_folder)
    monkeypatch.setattr(ox.features, "features_from_place", fake_place)
    online = hosts_from_osm(place="南京市", cache_dir=tmp_path)
    offline = hosts_from_osm(osm_file=SAMPLE)
    assert calls["query"] == "南京市"
    assert calls["cache"] == (True, str(tmp_path))
    assert (ox.settings.use_cache, ox.settings.cache_folder) == before  # restored
    # The query asks for every rule's tags.
    assert {"amenity", "office", "landuse", "industrial", "place", "boundary"} <= set(calls["tags"])
    cols = ["host_id", "name", "kind", "osm_id"]
    assert online[cols].equals(offline[cols])
    assert online.geometry.geom_equals(offline.geometry).all()
    record = json.loads((tmp_path / "query.json").read_text(encoding="utf-8"))
    assert record["hosts"]["source"] == "place" and record["hosts"]["value"] == "南京市"
    assert online.attrs["query"]["n_features"] == 6


def test_online_bbox_and_polygon(monkeypatch, tmp_path):
    seen = []

    def fake_bbox(bbox, tags):
        seen.append(("bbox", bbox))
        return ox.features.features_from_xml(SAMPLE, tags=tags)

    def fake_polygon(polygon, tags):
        seen.append(("polygon", polygon.bounds))
        return ox.features.features_from_xml(SAMPLE, tags=tags)

    monkeypatch.setattr(ox.features, "features_from_bbox", fake_bbox)
    monkeypatch.setattr(ox.features, "features_from_polygon", fake_polygon)
    b = buildings_from_osm(bbox=(118.69, 32.03, 118.89, 32.17), cache_dir=tmp_path)
    assert len(b) == 6 and seen[0] == ("bbox", (118.69, 32.03, 118.89, 32.17))
    area = gpd.GeoSeries([box(118.69, 32.03, 118.89, 32.17)], crs=4326)
    assert len(buildings_from_osm(polygon=area, cache_dir=tmp_path)) == 6
    assert seen[1][0] == "polygon"
    assert json.loads((tmp_path / "query.json").read_text())["buildings"]["source"] == "polygon"


def test_source_validation(tmp_path):
    with pytest.raises(ConfigError, match="exactly one"):
        hosts_from_osm()
    with pytest.raises(ConfigError, match="exactly one"):
        hosts_from_osm(place="南京市", osm_file=SAMPLE)
    with pytest.raises(ConfigError, match="west"):
        buildings_from_osm(bbox=(118.9, 32.0, 118.8, 32.1))
    with pytest.raises(InputError, match="does not exist"):
        hosts_from_osm(osm_file=tmp_path / "missing.osm")


def test_pbf_without_readers_names_the_packages(tmp_path, monkeypatch):
    pbf = tmp_path / "extract.osm.pbf"
    pbf.write_bytes(b"\x00")
    monkeypatch.setitem(sys.modules, "osmium", None)
    monkeypatch.setitem(sys.modules, "pyrosm", None)
    with pytest.raises(IncublocError, match="pip install osmium.*pip install pyrosm"):
        hosts_from_osm(osm_file=pbf)


def test_rules_can_be_overridden():
    only_uni = hosts_from_osm(osm_file=SAMPLE, tags={"university": HOST_TAGS["university"]},
                              name_patterns={})
    assert only_uni["osm_id"].tolist() == ["way/101"]
    renamed = hosts_from_osm(osm_file=SAMPLE, tags={}, name_patterns={"other": "商圈"})
    assert renamed["name"].tolist() == ["新街口商圈"] and renamed["kind"].tolist() == ["other"]
    assert BUILDING_TAGS == {"building": True}


def test_add_osm_to_study_area_replaces_layers_atomically(tmp_path):
    path = tmp_path / "area.gpkg"
    cities = gpd.GeoDataFrame({"city": ["Nanjing"], "province": ["Jiangsu"]},
                              geometry=[box(118.6, 31.9, 119.0, 32.3)], crs=4326)
    old_hosts = gpd.GeoDataFrame({"host_id": ["old"], "kind": ["other"]},
                                 geometry=[box(0, 0, 1, 1)], crs=4326)
    cities.to_file(path, layer="cities", driver="GPKG")
    old_hosts.to_file(path, layer="hosts", driver="GPKG")
    out = add_osm_to_study_area(path, osm_file=SAMPLE)
    assert out == path
    assert sorted(pyogrio.list_layers(path)[:, 0].tolist()) == ["buildings", "cities", "hosts"]
    sa = load_study_area(path)
    assert len(sa.get("cities")) == 1
    assert len(sa.get("hosts")) == 6 and "old" not in set(sa.get("hosts")["host_id"])
    assert len(sa.get("buildings")) == 6
    assert not list(tmp_path.glob(".area.gpkg.*"))  # no temporary file left behind
    # A failing source leaves the file as it was.
    before = path.read_bytes()
    with pytest.raises(InputError):
        add_osm_to_study_area(path, osm_file=tmp_path / "missing.osm")
    assert path.read_bytes() == before
    with pytest.raises(ConfigError, match="hosts, buildings"):
        add_osm_to_study_area(path, osm_file=SAMPLE, layers=("roads",))
    only = add_osm_to_study_area(tmp_path / "new.gpkg", osm_file=SAMPLE, layers=("buildings",))
    assert pyogrio.list_layers(only)[:, 0].tolist() == ["buildings"]


def test_osm_hosts_drive_the_relation_classifier():
    hosts = hosts_from_osm(osm_file=SAMPLE)
    inc = gpd.GeoDataFrame(
        {"id": ["zone", "hole", "campus", "nowhere"]},
        geometry=[Point(118.705, 32.105), Point(118.72, 32.115), Point(118.795, 32.054),
                  Point(118.95, 32.30)],
        crs=4326,
    )
    r = classify_relation(inc, None, hosts)
    assert r["relation"].tolist() == ["park_in_park", "standalone", "park_in_park", "standalone"]
    assert r["host_kind"].tolist()[:3] == ["high_tech_zone", None, "university"]


def _pbf_from(osm: Path, tmp_path: Path) -> Path:
    """Write an .osm XML fixture as .osm.pbf with pyosmium's writer."""
    osmium = pytest.importorskip("osmium")
    pbf = tmp_path / (osm.stem + ".osm.pbf")
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(osm)):
            writer.add(obj)
    assert pbf.read_bytes()[4:15] == b"\n\tOSMHeader"  # a real PBF blob header, not XML
    return pbf


@pytest.mark.parametrize("osm", [SAMPLE, BUILDINGS_ONLY], ids=["sample", "buildings_only"])
def test_pbf_gives_the_same_hosts_and_buildings_as_the_xml(osm, tmp_path):
    pbf = _pbf_from(osm, tmp_path)
    for reader in (hosts_from_osm, buildings_from_osm):
        from_xml, from_pbf = reader(osm_file=osm), reader(osm_file=pbf)
        assert from_pbf.attrs["query"]["value"].endswith(".osm.pbf")
        assert len(from_pbf) == len(from_xml)
        key = "osm_id" if "osm_id" in from_xml else from_xml.columns[0]
        a = from_xml.sort_values(key).reset_index(drop=True)
        b = from_pbf.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert a.geometry.geom_equals_exact(b.geometry, tolerance=1e-7).all()
    if osm == SAMPLE:
        assert set(_by_osm_id(hosts_from_osm(osm_file=pbf))["kind"]) >= {"university", "high_tech_zone"}
