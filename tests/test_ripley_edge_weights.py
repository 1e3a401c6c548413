"""Ripley's isotropic edge weights: exact circle fractions and the window's lattice
tables, against closed forms and independent geometry."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from incubloc.stats import pointpattern as pp
from incubloc.stats._random import uniform_in_polygon

SQUARE = box(0, 0, 1000, 1000)
PAC = Point(0, 0).buffer(5000, 64).difference(box(0, -6000, 6000, 0))
HOLED = box(0, 0, 100, 100).difference(box(40, 40, 60, 60))
# a square with a 2 m hole: circles around it lie wholly inside without meeting it
PINHOLE = box(0, 0, 1000, 1000).difference(box(480, 480, 482, 482))


def arc_fraction(geom, centre, r):
    """Length of the circle inside ``geom`` / 2πr, by shapely on a fine polygonal circle."""
    circle = shapely.boundary(shapely.buffer(Point(centre), r, quad_segs=4096))
    return shapely.length(shapely.intersection(circle, geom)) / shapely.length(circle)


def test_exact_fraction_near_one_straight_edge():
    # A circle of radius r centred b inside a straight edge: outside is the arc
    # 2·arccos(b/r), so the inside fraction is 1 − arccos(b/r)/π (1 when b ≥ r).
    win = pp._Window(box(-1e4, 0, 1e4, 1e4), 500.0)
    b = np.array([0.0, 10.0, 50.0, 99.0, 100.0, 140.0])
    r = np.array([100.0, 250.0, 400.0])
    got = pp._circle_fractions(win, np.column_stack([np.full(len(b), 3.7), b]), r)
    want = 1 - np.arccos(np.clip(b[:, None] / r[None, :], -1, 1)) / np.pi
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_exact_fraction_in_a_corner():
    # Near a square's corner, closer than r to both edges, with the two outside arcs
    # disjoint (b1² + b2² ≥ r²): fraction = 1 − (arccos(b1/r) + arccos(b2/r))/π.
    win = pp._Window(SQUARE, 200.0)
    b1, b2, r = 60.0, 80.0, 100.0
    got = pp._circle_fractions(win, np.array([[b1, b2]]), np.array([r]))[0, 0]
    assert got == pytest.approx(1 - (np.arccos(b1 / r) + np.arccos(b2 / r)) / np.pi, abs=1e-12)


@pytest.mark.parametrize("geom", [PAC, HOLED], ids=["reflex-corner", "hole"])
def test_exact_fraction_equals_shapely_arc_length(geom):
    minx, miny, maxx, maxy = shapely.bounds(geom)
    size = maxx - minx
    gen = np.random.default_rng(3)
    centre = gen.uniform([minx, miny], [maxx, maxy], (25, 2))
    radii = np.array([0.03, 0.1, 0.25, 0.45]) * size
    got = pp._circle_fractions(pp._Window(geom, radii[-1]), centre, radii)
    want = np.array([[arc_fraction(geom, c, r) for r in radii] for c in centre])
    # the reference circle is a 16 384-gon: agreement to its own accuracy
    np.testing.assert_allclose(got, want, atol=2e-5)


def exact_e(win, xy, d):
    return np.array([pp._circle_fractions(win, xy[i : i + 1], d[i : i + 1])[0, 0]
                     for i in range(len(d))])


@pytest.mark.parametrize("geom", [SQUARE, PAC, PINHOLE], ids=["square", "reflex-corner", "pinhole"])
def test_tabulated_weights_close_to_exact(geom):
    minx, miny, maxx, maxy = shapely.bounds(geom)
    rmax = 0.25 * min(maxx - minx, maxy - miny)
    win = pp._Window(geom, rmax)
    xy = uniform_in_polygon(geom, 800, seed=1)
    b = win.boundary_distance(xy)
    d = np.random.default_rng(2).uniform(0.0, rmax, len(xy))
    cut = np.flatnonzero(d > b)  # circles that leave the window
    iso = pp._TabulatedIsotropic(win, xy, b, rmax, cap=1e9)
    e = 1.0 / iso(cut, d[cut])
    err = e - exact_e(win, xy[cut], d[cut])
    # Bilinear between lattice nodes r/4 apart (64 points per node circle): errors
    # come from corners; the per-point 32-point tables had rms 0.016, max 0.36 here.
    assert np.sqrt(np.mean(err**2)) < 0.02
    assert np.abs(err).max() < 0.15
    assert abs(err.mean()) < 0.005
    # circles wholly inside weigh exactly 1
    inside = np.flatnonzero(d <= b)
    np.testing.assert_array_equal(iso(inside, d[inside]), 1.0)


def test_small_radii_are_exact_per_point():
    # Below a quarter of rmax the table holds exact fractions at the points
    # themselves: at a table radius the weight is 1 / the exact fraction.
    win = pp._Window(SQUARE, 400.0)
    xy = np.array([[30.0, 500.0], [20.0, 45.0]])
    b = win.boundary_distance(xy)
    iso = pp._TabulatedIsotropic(win, xy, b, 400.0, cap=1e9)
    d = np.array([50.0, 75.0])  # table radii 400/32 · 4 and · 6
    got = 1.0 / iso(np.array([0, 1]), d)
    np.testing.assert_allclose(got, [pp._circle_fractions(win, xy[i : i + 1], d[i : i + 1])[0, 0]
                                     for i in range(2)], atol=1e-12)
    assert got[0] == pytest.approx(1 - np.arccos(30 / 50) / np.pi, abs=1e-12)


def test_k_of_csr_pattern_agrees_with_per_point_weights(monkeypatch):
    xy = uniform_in_polygon(SQUARE, 400, seed=5)
    d = np.linspace(10, 250, 25)
    monkeypatch.setattr(pp, "_lattice_pays", lambda *a, **k: False)
    per_point = pp.ripley(xy, window=SQUARE, distances=d, n_sim=0)
    monkeypatch.setattr(pp, "_lattice_pays", lambda *a, **k: True)
    pp._WINDOWS.clear()
    tab = pp.ripley(xy, window=SQUARE, distances=d, n_sim=1, seed=0)
    # the two estimators of K differ by their interpolation only: within 1 %, and
    # both near πd² for a CSR pattern of 400 points (within 12 % at every d ≥ 50 m)
    np.testing.assert_allclose(tab.K, per_point.K, rtol=0.01)
    far = d >= 50
    np.testing.assert_allclose(tab.K[far], np.pi * d[far] ** 2, rtol=0.12)


def test_tabulated_weights_do_not_depend_on_the_order_patterns_come_in():
    geom = PAC
    rmax = 1200.0
    pats = [uniform_in_polygon(geom, 150, seed=s) for s in range(3)]
    results = []
    for order in ([0, 1, 2], [2, 1, 0]):
        win = pp._Window(geom, rmax)  # a fresh, empty table each time
        out = {}
        for s in order:
            xy = pats[s]
            b = win.boundary_distance(xy)
            out[s] = pp._TabulatedIsotropic(win, xy, b, rmax, cap=32).table
        results.append(out)
    for s in range(3):
        np.testing.assert_array_equal(results[0][s], results[1][s])


def test_same_seed_same_output_with_tables(monkeypatch):
    monkeypatch.setattr(pp, "_lattice_pays", lambda *a, **k: True)
    xy = uniform_in_polygon(PAC, 120, seed=3)
    a = pp.ripley(xy, window=PAC, n_sim=19, seed=4)
    pp._WINDOWS.clear()
    pp._SIMULATIONS.clear()
    b = pp.ripley(xy, window=PAC, n_sim=19, seed=4)
    for key in ("K", "lo", "hi", "sim_mean"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert a.p == b.p


def test_lattice_is_chosen_only_when_simulations_pay_for_it():
    assert not pp._lattice_pays(SQUARE, 400, 0, 250.0)  # no simulations: per point
    assert not pp._lattice_pays(SQUARE, 10, 99, 250.0)
    assert pp._lattice_pays(SQUARE, 2000, 99, 250.0)


@pytest.mark.slow
def test_global_test_with_tabulated_weights_calibrated_under_csr(monkeypatch):
    # The pattern and its simulations are weighed by the same tables, so the
    # Monte-Carlo test stays exact: P(reject) = 1/20 under CSR.
    monkeypatch.setattr(pp, "_lattice_pays", lambda *a, **k: True)
    gen = np.random.default_rng(11)
    d = np.linspace(50, 250, 8)
    rejected = [
        pp.ripley(uniform_in_polygon(PAC, 40, seed=gen), window=PAC, distances=d * 5,
                  n_sim=19, seed=500 + i).p <= 0.05
        for i in range(120)
    ]
    # binomial 95 % range for 120 patterns at 5 %: about 1.5–9.5 %
    assert 0.01 <= np.mean(rejected) <= 0.10
