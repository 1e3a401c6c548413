"""Location preference: Monte-Carlo distances to centres and hosts."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from bundled_data import bundled as load_bundled
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


# ------------------------------------------------------------ placebo and nulls


@pytest.fixture(scope="module")
def bundled():
    inc, sa = load_bundled(layers=["settlements", "centres"])
    return inc, sa.get("settlements"), sa.get("centres")


def test_seat_points_from_settlements(bundled):
    from incubloc.stats.preference import seat_points

    _, sett, _ = bundled
    seats = seat_points(sett)
    assert len(seats) == len(sett) == 34
    assert seats.geometry.x.tolist() == sett["seat_lon"].astype(float).tolist()
    assert seat_points(sett.drop(columns=["seat_lon"])) is None


def test_no_preference_claimed_for_the_placebo_targets_on_bundled_data(bundled):
    from incubloc.stats.preference import seat_points

    inc, sett, _ = bundled
    # The seats given as an ordinary target kind: "preferred" against the uniform
    # null (incubators are urban) but never beyond the placebo, which they equal.
    seats = seat_points(sett).assign(kind="seat")
    res = location_preference(inc, seats, within=sett, n_sim=199, seed=1)
    t = res.table.set_index("kind")
    assert t.loc["seat", "p"] <= 0.01  # urban concentration alone
    assert t.loc["seat", "excess_log_ratio"] == pytest.approx(0.0, abs=1e-12)
    assert t.loc["seat", "p_vs_placebo"] == 1.0  # ties count against significance
    assert not t["preference"].any()
    assert res.placebo == "seats" and res.null == "uniform"


def _town_world(planted, n_urban=160, n_planted=50, seed=0):
    """Four 20 km settlements, each with a town (radius 3 km) round its seat, one
    business and one knowledge centre in the town. Incubators: uniform in the towns
    (as urban as the seats) plus some planted within ~300 m of one kind of centre."""
    gen = np.random.default_rng(seed)
    origins = np.array([[0, 0], [20000, 0], [0, 20000], [20000, 20000]]) + [X0, Y0]
    sett = gpd.GeoDataFrame(
        {"settlement": list("ABCD")},
        geometry=[box(x, y, x + 20000, y + 20000) for x, y in origins], crs=CRS)
    seats = origins + 10000.0
    lonlat = gpd.GeoSeries(gpd.points_from_xy(*seats.T), crs=CRS).to_crs(4326)
    sett["seat_lon"], sett["seat_lat"] = lonlat.x.to_numpy(), lonlat.y.to_numpy()
    kinds = {"business": seats + [1500.0, 0.0], "knowledge": seats + [-1200.0, 1200.0]}
    centres = gpd.GeoDataFrame(
        {"kind": ["business"] * 4 + ["knowledge"] * 4},
        geometry=gpd.points_from_xy(*np.vstack(list(kinds.values())).T), crs=CRS)
    r = 3000.0 * np.sqrt(gen.uniform(0, 1, n_urban))
    a = gen.uniform(0, 2 * np.pi, n_urban)
    town = seats[gen.integers(0, 4, n_urban)] + np.column_stack([r * np.cos(a), r * np.sin(a)])
    near = kinds[planted][gen.integers(0, 4, n_planted)] + gen.normal(0, 300, (n_planted, 2))
    return points(np.vstack([town, near])), centres, sett


@pytest.mark.parametrize("planted, other", [("knowledge", "business"), ("business", "knowledge")])
def test_planted_preference_detected_and_the_other_kind_not(planted, other):
    inc, centres, sett = _town_world(planted)
    res = location_preference(inc, centres, within=sett, n_sim=199, seed=3)
    t = res.table.set_index("kind")
    assert bool(t.loc[planted, "preference"]) and t.loc[planted, "p_vs_placebo_holm"] <= 0.05
    assert t.loc[planted, "excess_log_ratio"] < 0
    # Urban incubators are closer to every town target than uniform random points
    # (p small against the uniform null), but not beyond the placebo.
    assert t.loc[other, "p"] <= 0.05
    assert not bool(t.loc[other, "preference"])
    assert not bool(t.loc["placebo", "preference"])
    # Without the planted points nothing is claimed.
    town_only = inc.iloc[:160]
    res = location_preference(town_only, centres, within=sett, n_sim=199, seed=4)
    assert not res.table["preference"].any()


def test_weighted_null_and_controls_follow_the_urban_layer():
    # Settlement A: a "town" in its west half (all establishments there) and empty
    # east half. A target sits in the town; incubators are spread over the town only.
    rng = np.random.default_rng(2)
    town = rng.uniform([X0, Y0], [X0 + 5000, Y0 + 10000], (400, 2))
    inc = points(town[:40])
    others = points(town[40:])
    tgt = gpd.GeoDataFrame({"kind": ["business"]}, geometry=[Point(X0 + 2500, Y0 + 5000)],
                           crs=CRS)
    sett = settlements().iloc[:1]
    uni = location_preference(inc, tgt, within=sett, n_sim=199, seed=0, placebo=None)
    assert uni.table.iloc[0]["p"] <= 0.01  # uniform null: "preference" = being in town
    for kw in ({"null": "weighted", "weights": others, "weight_bandwidth": 800.0},
               {"null": "controls", "controls": others}):
        res = location_preference(inc, tgt, within=sett, n_sim=199, seed=0, placebo=None, **kw)
        row = res.table.iloc[0]
        assert row["p"] > 0.05, kw["null"]
        assert row["expected_mean_m"] < 0.8 * uni.table.iloc[0]["expected_mean_m"]
    from incubloc.errors import InputError

    with pytest.raises(InputError, match="control"):
        location_preference(inc, tgt, within=settlements(), n_sim=9, null="controls",
                            controls=points([[X0 + 15000, Y0 + 5000]]))


def test_polygon_nearest_equals_strtree():
    from incubloc.stats.preference import _Nearest

    rng = np.random.default_rng(0)
    polys = np.array([box(X0 + 1000, Y0 + 1000, X0 + 2000, Y0 + 2500),
                      Point(X0 + 7000, Y0 + 6000).buffer(800)])
    xy = rng.uniform([X0, Y0], [X0 + 10000, Y0 + 10000], (3000, 2))
    want = np.array([min(p.distance(Point(q)) for p in polys) for q in xy])
    np.testing.assert_allclose(_Nearest(polys)(xy), want, rtol=1e-9, atol=1e-6)


def test_polygon_nearest_zero_inside_only_and_by_hand():
    """0 inside a target (its boundary too), the hole's own edge counts, and far
    points are measured without an inside test, which changes no distance."""
    from incubloc.stats.preference import _Nearest

    ring = box(0, 0, 100, 100).difference(box(40, 40, 60, 60))
    slab = box(300, 0, 302, 1000)  # thin: inside points are at most 1 from its edge
    near = _Nearest(np.array([ring, slab]))
    xy = np.array([[50.0, 50.0], [10.0, 30.0], [301.0, 500.0], [100.0, 50.0], [200.0, 50.0],
                   [-30.0, -40.0], [301.0, 1010.0], [250.0, 50.0]])
    np.testing.assert_array_equal(near(xy), [10.0, 0.0, 0.0, 0.0, 100.0, 50.0, 10.0, 50.0])
    rng = np.random.default_rng(1)
    pts = rng.uniform(-100, 500, (5000, 2))
    area = shapely.union_all([ring, slab])
    want = np.where(shapely.intersects_xy(area, pts[:, 0], pts[:, 1]), 0.0,
                    shapely.distance(shapely.boundary(area), shapely.points(pts)))
    np.testing.assert_allclose(near(pts), want, rtol=1e-12, atol=1e-9)
