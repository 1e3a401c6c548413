"""Point-pattern statistics against known answers and independent formulas."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import stats
from shapely.geometry import Point, box

from incubloc.errors import InputError
from incubloc.stats._random import uniform_in_polygon
from incubloc.stats.pointpattern import (
    _circle_fraction,
    centrography,
    clark_evans,
    point_pattern_summary,
    quadrat_test,
    ripley,
)

SQUARE = box(0, 0, 1000, 1000)
# Three quarters of a disc: an irregular window with a reflex corner.
PAC = Point(0, 0).buffer(5000, 64).difference(box(0, -6000, 6000, 0))


def lattice(step=100.0, n=10):
    xx, yy = np.meshgrid(np.arange(n) * step + step / 2, np.arange(n) * step + step / 2)
    return np.column_stack([xx.ravel(), yy.ravel()])


def cluster(n=100, centre=(500.0, 500.0), sd=20.0, seed=0):
    return np.random.default_rng(seed).normal(centre, sd, (n, 2))


# ----------------------------------------------------------------------- Clark–Evans


def test_clark_evans_regular_lattice():
    res = clark_evans(lattice(), window=SQUARE)
    assert res.R > 1.5
    assert res.z > 0 and res.p < 0.01
    assert res.observed_mean == pytest.approx(100.0)


def test_clark_evans_tight_cluster():
    res = clark_evans(cluster(), window=SQUARE)
    assert res.R < 1 and res.p < 0.01 and res.z < 0


def test_clark_evans_formulas_by_hand():
    xy = np.random.default_rng(3).uniform(0, 1000, (50, 2))
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    obs = d.min(axis=1).mean()
    n, a, p = 50, 1e6, 4000.0
    e_don = 0.5 * np.sqrt(a / n) + (0.0514 + 0.041 / np.sqrt(n)) * p / n
    se_don = np.sqrt(0.0703 * a / n**2 + 0.037 * p * np.sqrt(a / n**5))
    res = clark_evans(xy, window=SQUARE)
    assert res.edge_correction == "donnelly"
    assert res.R == pytest.approx(obs / e_don)
    assert res.z == pytest.approx((obs - e_don) / se_don)
    assert res.p == pytest.approx(2 * stats.norm.sf(abs((obs - e_don) / se_don)))
    plain = clark_evans(xy, window=SQUARE, edge_correction="none")
    assert plain.R == pytest.approx(obs / (0.5 * np.sqrt(a / n)))
    assert plain.z == pytest.approx((obs - 0.5 * np.sqrt(a / n)) / (0.26136 * np.sqrt(a) / n))


def test_clark_evans_default_window_is_convex_hull():
    xy = np.random.default_rng(1).uniform(0, 1000, (40, 2))
    res = clark_evans(xy)
    assert res.window == "convex_hull"
    assert res.area == pytest.approx(shapely.convex_hull(shapely.multipoints(xy)).area)


def test_clark_evans_projects_geographic_points_and_windows():
    # ~1 km lattice near Nanjing in lon/lat; window given in EPSG:4326 too.
    lon0, lat0 = 118.7, 32.0
    xy = lattice(step=0.01, n=8) + [lon0, lat0]
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=4326)
    win = gpd.GeoDataFrame(geometry=[box(lon0, lat0, lon0 + 0.08, lat0 + 0.08)], crs=4326)
    res = clark_evans(pts, window=win)
    assert 800 < res.observed_mean < 1100  # metres, not degrees
    assert res.area == pytest.approx(win.to_crs(32650).area.iloc[0], rel=1e-6)
    assert res.R > 1.5


def test_clark_evans_needs_two_points():
    with pytest.raises(InputError):
        clark_evans(np.array([[0.0, 0.0]]), window=SQUARE)


# ------------------------------------------------------------------------ Ripley K/L


def brute_k(xy, d, area):
    n = len(xy)
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(dist, np.inf)
    return np.array([area * (dist <= r).sum() / (n * (n - 1)) for r in d])


def test_k_equals_brute_force_without_correction():
    xy = np.random.default_rng(7).uniform(0, 1000, (60, 2))
    d = np.array([25.0, 60.0, 100.0, 150.0, 240.0])
    res = ripley(xy, window=SQUARE, distances=d, n_sim=0, edge_correction="none")
    np.testing.assert_allclose(res.K, brute_k(xy, d, 1e6), rtol=1e-12)
    np.testing.assert_allclose(res.L, np.sqrt(res.K / np.pi))
    np.testing.assert_allclose(res.L_minus_d, res.L - d)


def test_k_border_equals_brute_force():
    xy = np.random.default_rng(8).uniform(0, 1000, (60, 2))
    d = np.array([50.0, 120.0, 200.0])
    n, area = len(xy), 1e6
    dist = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(dist, np.inf)
    b = np.minimum.reduce([xy[:, 0], xy[:, 1], 1000 - xy[:, 0], 1000 - xy[:, 1]])
    want = []
    for r in d:
        centres = b >= r
        want.append(area / (n - 1) * (dist[centres] <= r).sum() / centres.sum())
    res = ripley(xy, window=SQUARE, distances=d, n_sim=0, edge_correction="border")
    np.testing.assert_allclose(res.K, want, rtol=1e-12)


def test_circle_fraction_matches_geometry():
    # A circle of radius r centred e inside a long straight edge: the part outside is
    # the arc 2·arccos(e/r), so the inside fraction is 1 − arccos(e/r)/π.
    win = box(-1e4, 0, 1e4, 1e4)
    e, r = np.array([10.0, 50.0, 90.0]), np.array([100.0, 100.0, 100.0])
    centre = np.column_stack([np.zeros(3), e])
    got = _circle_fraction(win, centre, r, k=3600)
    np.testing.assert_allclose(got, 1 - np.arccos(e / r) / np.pi, atol=1e-3)


def test_ripley_correction_unbiased_under_csr_in_polygon():
    xy = uniform_in_polygon(PAC, 150, seed=11)
    res = ripley(xy, window=PAC, n_sim=99, seed=1)
    far = res.distances >= 0.2 * res.distances.max()
    # Under CSR L(d) = d: the simulations' mean of L(d) − d is ~0 with the isotropic
    # correction and clearly negative without one.
    assert np.all(np.abs(res.sim_mean[far]) < 0.02 * res.distances[far])
    none = ripley(xy, window=PAC, n_sim=99, seed=1, edge_correction="none")
    assert np.all(none.sim_mean[far] < -0.02 * none.distances[far])


def test_csr_envelope_contains_l_minus_d():
    xy = uniform_in_polygon(PAC, 200, seed=5)
    res = ripley(xy, window=PAC, n_sim=99, seed=2)
    inside = (res.L_minus_d >= res.lo) & (res.L_minus_d <= res.hi)
    assert inside.mean() >= 0.9
    assert res.p > 0.05


def test_simulations_stay_inside_window():
    holed = box(0, 0, 100, 100).difference(box(40, 40, 60, 60))
    xy = uniform_in_polygon(holed, 5000, seed=0)
    assert shapely.contains_xy(holed, xy[:, 0], xy[:, 1]).all()
    # uniform: the share in the left half is about half
    assert abs((xy[:, 0] < 50).mean() - 0.5) < 0.03


def test_clustered_pattern_exceeds_envelope():
    rng = np.random.default_rng(4)
    centres = rng.uniform(-3000, 3000, (5, 2))
    xy = np.vstack([rng.normal(c, 150, (30, 2)) for c in centres])
    xy = xy[shapely.contains_xy(PAC, xy[:, 0], xy[:, 1])]
    res = ripley(xy, window=PAC, n_sim=99, seed=0)
    assert res.p <= 0.01
    assert (res.L_minus_d > res.hi).any()
    assert 0 < res.peak_distance < res.distances.max()


def test_ripley_deterministic_for_seed():
    xy = uniform_in_polygon(PAC, 80, seed=3)
    a = ripley(xy, window=PAC, n_sim=39, seed=9)
    b = ripley(xy, window=PAC, n_sim=39, seed=9)
    c = ripley(xy, window=PAC, n_sim=39, seed=10)
    for key in ("K", "lo", "hi", "sim_mean"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert a.p == b.p
    assert not np.array_equal(a.lo, c.lo)


def test_ripley_result_outputs(tmp_path):
    xy = uniform_in_polygon(SQUARE, 50, seed=0)
    res = ripley(xy, window=SQUARE, distances=[50, 100], n_sim=9, seed=0)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["distances"] == [50.0, 100.0] and d["seed"] == 0
    assert "RipleyResult" in res._repr_html_()
    ax = res.plot()
    assert ax.get_xlabel().startswith("distance")


def test_ripley_rejects_bad_input():
    xy = uniform_in_polygon(SQUARE, 20, seed=0)
    with pytest.raises(InputError):
        ripley(xy, window=SQUARE, distances=[-1.0])
    with pytest.raises(InputError):
        ripley(xy, window=SQUARE, edge_correction="magic", n_sim=0)
    with pytest.raises(InputError):
        ripley(xy, window=shapely.LineString([(0, 0), (1, 1)]))


# ---------------------------------------------------------------------- quadrat test


def test_quadrat_keeps_cells_half_inside():
    # 300 m cells over a 1000 m square: the 4th row/column is 1/3 inside -> dropped.
    xy = lattice()
    res = quadrat_test(xy, window=SQUARE, cell_size=300)
    assert res.n_cells == 9
    assert res.n_points == 81  # 9 lattice points per 300 m cell, the rest dropped
    assert res.vmr == 0.0


def test_quadrat_vmr_csr_and_cluster():
    csr = quadrat_test(uniform_in_polygon(SQUARE, 500, seed=1), window=SQUARE, cell_size=100)
    assert 0.75 < csr.vmr < 1.3 and csr.p > 0.01
    clu = quadrat_test(cluster(200), window=SQUARE, cell_size=100)
    assert clu.vmr > 5 and clu.p_clustered < 1e-6
    counts = clu.counts
    assert clu.chi2 == pytest.approx(((counts - counts.mean()) ** 2).sum() / counts.mean())
    assert clu.p_clustered == pytest.approx(stats.chi2.sf(clu.chi2, len(counts) - 1))


def test_quadrat_default_cell_size_rule():
    xy = uniform_in_polygon(SQUARE, 200, seed=2)
    res = quadrat_test(xy, window=SQUARE)
    assert res.cell_size == pytest.approx(np.sqrt(2 * 1e6 / 200))


# ---------------------------------------------------------------------- centrography


def test_sde_on_rotated_ellipse():
    a, b, theta = 3000.0, 1000.0, np.radians(30.0)  # major axis 30° north of east
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    u = np.column_stack([a * np.cos(t), b * np.sin(t)])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    xy = u @ rot.T + [500000.0, 3500000.0]
    c = centrography(xy)
    assert c.mean_x == pytest.approx(500000.0) and c.mean_y == pytest.approx(3500000.0)
    # documented convention: azimuth of the major axis, clockwise from north
    assert c.rotation_deg == pytest.approx(60.0)
    assert c.major == pytest.approx(a) and c.minor == pytest.approx(b)
    assert c.sd_major / c.sd_minor == pytest.approx(a / b)
    assert c.standard_distance == pytest.approx(np.sqrt((a * a + b * b) / 2))
    assert c.ellipse.area == pytest.approx(np.pi * a * b, rel=0.01)


def test_centrography_weights_equal_duplicates():
    xy = np.random.default_rng(0).uniform(0, 100, (10, 2))
    w = np.arange(1, 11)
    cw = centrography(xy, weights=w)
    cd = centrography(np.repeat(xy, w, axis=0))
    for key in ("mean_x", "mean_y", "standard_distance", "major", "minor", "rotation_deg"):
        assert getattr(cw, key) == pytest.approx(getattr(cd, key))


def test_centrography_geographic_reports_lon_lat():
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy([118.70, 118.80, 118.90], [32.00, 32.10, 32.00]), crs=4326
    )
    c = centrography(pts)
    assert c.crs == "EPSG:32650"
    assert c.mean_lon == pytest.approx(118.80, abs=1e-3)
    assert c.mean_lat == pytest.approx(32.0333, abs=1e-3)
    assert json.loads(json.dumps(c.to_dict()))["ellipse"].startswith("POLYGON")


# --------------------------------------------------------------------------- summary


def test_point_pattern_summary_per_city_and_all():
    lon0, lat0 = 118.7, 32.0
    west = box(lon0, lat0, lon0 + 0.1, lat0 + 0.1)
    east = box(lon0 + 0.1, lat0, lon0 + 0.2, lat0 + 0.1)
    cities = gpd.GeoDataFrame({"city": ["West", "East"]}, geometry=[west, east], crs=4326)
    rng = np.random.default_rng(0)
    wpts = rng.uniform([lon0, lat0], [lon0 + 0.1, lat0 + 0.1], (40, 2))
    epts = rng.normal([lon0 + 0.15, lat0 + 0.05], 0.003, (40, 2))
    xy = np.vstack([wpts, epts])
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=4326)
    out = point_pattern_summary(pts, by="city", windows=cities, n_sim=19, seed=0)
    assert out["group"].tolist() == ["East", "West", "all"]
    assert out["n"].tolist() == [40, 40, 80]
    assert (out["window"] == "polygon").all()
    areas = cities.to_crs(32650).area / 1e6
    assert out.set_index("group").loc["all", "area_km2"] == pytest.approx(areas.sum(), rel=1e-6)
    east_row = out.set_index("group").loc["East"]
    assert east_row["R"] < 0.5 and east_row["R_p_method"] == "monte_carlo"
    # Monte-Carlo in the (not rectangular once projected) window with 19 simulations:
    # the smallest attainable p is 1/20 one-sided, 2/20 two-sided.
    assert east_row["R_p_clustered"] == pytest.approx(1 / 20)
    assert east_row["R_p"] == pytest.approx(2 / 20)
    assert east_row["ripley_p"] <= 0.05
    again = point_pattern_summary(pts, by="city", windows=cities, n_sim=19, seed=0)
    assert out.equals(again)
    # the cities' rows computed in forked processes: the same table, rows in order
    forked = point_pattern_summary(pts, by="city", windows=cities, n_sim=19, seed=0,
                                   workers=2)
    pd.testing.assert_frame_equal(forked, out)
    # a shared Generator hands out draws in row order: then computed here, in turn
    a = point_pattern_summary(pts, by="city", windows=cities, n_sim=19,
                              seed=np.random.default_rng(5), workers=2)
    b = point_pattern_summary(pts, by="city", windows=cities, n_sim=19,
                              seed=np.random.default_rng(5))
    pd.testing.assert_frame_equal(a, b)


def test_window_boundary_distances_known_and_equal_to_shapely():
    """Distances to the window's edge: by hand in a square, and bit for bit what an
    STRtree of the boundary's segments gives on a window with a hole."""
    from incubloc.stats import pointpattern as pp

    win = pp._Window(SQUARE, 200.0)
    xy = np.array([[10.0, 500.0], [150.0, 150.0], [1300.0, 1400.0], [1000.0, 0.0], [-40.0, 500.0]])
    np.testing.assert_array_equal(win.signed_distance(xy), [10.0, 150.0, -500.0, 0.0, -40.0])
    # inside and within rmax: the distance; deeper: inf; outside: 0
    got = win.boundary_distance(np.array([[10.0, 500.0], [500.0, 500.0], [-5.0, 5.0]]))
    assert got[0] == 10.0 and got[1] == np.inf and got[2] == 0.0

    holed = PAC.difference(Point(-2000, 1000).buffer(700, 8))
    win = pp._Window(holed, 1500.0)
    rng = np.random.default_rng(4)
    xy = np.vstack([rng.uniform(-6000, 6000, (3000, 2)), shapely.get_coordinates(holed)])
    seg = shapely.get_parts(shapely.boundary(holed))
    want = shapely.distance(shapely.multilinestrings(seg), shapely.points(xy))
    inside = shapely.contains_xy(holed, xy[:, 0], xy[:, 1])
    np.testing.assert_array_equal(win.signed_distance(xy), np.where(inside, want, -want))
    b = win.boundary_distance(xy)
    measured = np.isfinite(b) & inside
    np.testing.assert_array_equal(b[measured], want[measured])
    assert (want[np.isinf(b)] >= 1500.0).all()
