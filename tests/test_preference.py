"""Location preference: Monte-Carlo distances to centres and hosts."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from incubloc.stats.preference import location_preference

CRS = 32650
X0, Y0 = 500000.0, 3500000.0
A = box(X0, Y0, X0 + 10000, Y0 + 10000)
B = box(X0 + 10000, Y0, X0 + 20000, Y0 + 10000)


def settlements():
    return gpd.GeoDataFrame({"settlement": ["A", "B"]}, geometry=[A, B], crs=CRS)


def centres():
    return gpd.GeoDataFrame(
        {"kind": ["business", "knowledge", "business"]},
        geometry=[
            Point(X0 + 5000, Y0 + 5000),
            Point(X0 + 2000, Y0 + 8000),
            Point(X0 + 15000, Y0 + 5000),
        ],
        crs=CRS,
    )


def points(xy, **cols):
    return gpd.GeoDataFrame(cols, geometry=gpd.points_from_xy(*np.asarray(xy).T), crs=CRS)


def test_incubators_near_business_centres_are_significant():
    rng = np.random.default_rng(0)
    xy = np.vstack(
        [
            rng.normal([X0 + 5000, Y0 + 5000], 400, (30, 2)),
            rng.normal([X0 + 15000, Y0 + 5000], 400, (20, 2)),
        ]
    )
    res = location_preference(points(xy), centres(), within=settlements(), n_sim=99, seed=0)
    row = res.table.set_index(["group", "kind"]).loc[("all", "business")]
    # observed mean equals a brute-force nearest distance
    c = np.array([[X0 + 5000, Y0 + 5000], [X0 + 15000, Y0 + 5000]])
    nearest = np.hypot(*(xy[:, None, :] - c[None, :, :]).transpose(2, 0, 1)).min(axis=1)
    assert row["observed_mean_m"] == pytest.approx(nearest.mean())
    assert row["observed_median_m"] == pytest.approx(np.median(nearest))
    assert row["p"] == pytest.approx(0.01)  # (1 + 0) / (99 + 1)
    assert row["effect"] < -0.5 and row["z"] < -5
    np.testing.assert_allclose(res.distances["dist_business_m"], nearest)
    assert set(res.table["kind"]) == {"business", "knowledge"}


def test_random_incubators_are_not_significant_and_simulation_is_stratified():
    # Incubators uniform in settlement A only; a business centre sits in B. Random
    # points drawn in A (stratified) match them; drawn over A ∪ B they would not.
    rng = np.random.default_rng(5)
    xy = rng.uniform([X0, Y0], [X0 + 10000, Y0 + 10000], (40, 2))
    tgt = gpd.GeoDataFrame({"kind": ["business"]}, geometry=[Point(X0 + 15000, Y0 + 5000)], crs=CRS)
    res = location_preference(points(xy), tgt, within=settlements(), n_sim=199, seed=1)
    row = res.table.iloc[0]
    assert 0.05 < row["p"] < 0.95
    big = rng.uniform([X0, Y0], [X0 + 10000, Y0 + 10000], (400_000, 2))
    want = np.hypot(big[:, 0] - (X0 + 15000), big[:, 1] - (Y0 + 5000)).mean()
    assert row["expected_mean_m"] == pytest.approx(want, rel=0.02)


def test_polygon_hosts_distance_zero_inside():
    hosts = gpd.GeoDataFrame(
        {"kind": ["university", "development_zone"]},
        geometry=[
            box(X0 + 1000, Y0 + 1000, X0 + 2000, Y0 + 2000),
            box(X0 + 12000, Y0 + 1000, X0 + 14000, Y0 + 3000),
        ],
        crs=CRS,
    )
    rng = np.random.default_rng(1)
    xy = rng.uniform([X0 + 1100, Y0 + 1100], [X0 + 1900, Y0 + 1900], (15, 2))
    res = location_preference(points(xy), hosts, within=settlements(), n_sim=99, seed=0)
    uni = res.table.set_index("kind").loc["university"]
    assert uni["observed_mean_m"] == 0.0 and uni["p"] == pytest.approx(0.01)
    dz = res.distances["dist_development_zone_m"].to_numpy()
    np.testing.assert_allclose(
        dz, np.hypot(X0 + 12000 - xy[:, 0], np.maximum(0, xy[:, 1] - (Y0 + 3000)))
    )


def test_groups_outside_and_alignment():
    xy = np.array(
        [
            [X0 + 5000, Y0 + 5000],
            [X0 + 4000, Y0 + 6000],
            [X0 + 15000, Y0 + 4000],
            [X0 + 30000, Y0 + 5000],
            [X0 + 16000, Y0 + 5000],
        ]
    )
    inc = points(xy, city=["P", "P", "Q", "Q", "Q"])
    inc.index = [10, 11, 12, 13, 14]
    inc.loc[14, "geometry"] = None
    res = location_preference(
        inc, centres(), within=settlements(), n_sim=19, seed=0, by="settlement"
    )
    assert res.n_incubators == 5 and res.n_tested == 3 and res.n_outside == 1
    assert list(res.distances.index) == [10, 11, 12, 13, 14]
    assert res.distances.loc[[13, 14], "dist_business_m"].isna().all()
    assert res.distances["within_id"].tolist() == [0, 0, 1, None, None]
    rows = res.table[res.table["kind"] == "business"].set_index("group")["n"].to_dict()
    assert rows == {"all": 3, "A": 2, "B": 1}
    by_city = location_preference(
        inc, centres(), within=settlements(), n_sim=19, seed=0, by="city", kind="business"
    )
    assert set(by_city.table["group"]) == {"all", "P", "Q"}
    assert set(by_city.table["kind"]) == {"business"}


def test_deterministic_for_seed_and_geographic_input():
    rng = np.random.default_rng(3)
    xy = rng.uniform([X0, Y0], [X0 + 20000, Y0 + 10000], (25, 2))
    inc = points(xy).to_crs(4326)
    sett, cen = settlements().to_crs(4326), centres().to_crs(4326)
    a = location_preference(inc, cen, within=sett, n_sim=99, seed=7)
    b = location_preference(inc, cen, within=sett, n_sim=99, seed=7)
    c = location_preference(inc, cen, within=sett, n_sim=99, seed=8)
    assert a.table.equals(b.table)
    assert not a.table["expected_mean_m"].equals(c.table["expected_mean_m"])
    assert a.crs == "EPSG:32650"
    d = json.loads(json.dumps(a.to_dict()))
    assert d["seed"] == 7 and "distances" not in d
    assert "PreferenceResult" in a._repr_html_()
