"""Point-pattern simulations computed in batches: the same numbers, bit for bit, as
pattern by pattern (and as the libraries computed them before)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from incubloc.stats import pointpattern as pp
from incubloc.stats._random import uniform_in_polygon

# a disc with a quarter cut out (a reflex corner) and a hole: every kind of edge
WINDOW = Point(0, 0).buffer(5000, 16).difference(box(0, -6000, 6000, 0)).difference(
    box(-1500, 500, -500, 1500))
DISTANCES = np.linspace(100.0, 2000.0, 12)


def patterns(n: int, s: int, seed: int = 5) -> np.ndarray:
    """``s`` CSR patterns of ``n`` points in WINDOW, the first with points exactly on
    the boundary (vertices and edges), in the hole and outside the window."""
    sims = uniform_in_polygon(WINDOW, n * s, seed=seed).reshape(s, n, 2)
    ring = shapely.get_coordinates(shapely.boundary(WINDOW))
    sims[0, :4] = ring[:4]  # vertices
    sims[0, 4] = 0.5 * (ring[5] + ring[6])  # on an edge
    sims[0, 5] = [-1000.0, 1000.0]  # in the hole
    sims[0, 6] = [3000.0, -3000.0]  # in the cut-out quarter
    return sims


def fresh_window() -> pp._Window:
    return pp._Window(WINDOW, float(DISTANCES.max()))


@pytest.mark.parametrize("edge, lattice", [("ripley", False), ("ripley", True),
                                           ("border", False)])
def test_k_functions_equal_pattern_by_pattern(monkeypatch, edge, lattice):
    sims = patterns(60, 9)
    area = float(shapely.area(WINDOW))
    # pattern by pattern, each with a window of its own (lattice nodes filled by it)
    want = np.array([pp._k_function(p, WINDOW, area, DISTANCES, edge, 32, None,
                                    fresh_window(), lattice) for p in sims])
    monkeypatch.setattr(pp, "_BATCH_POINTS", 200)  # batches of 3 patterns
    got = pp._k_functions(sims, WINDOW, area, DISTANCES, edge, 32, fresh_window(), lattice)
    assert got.shape == (9, len(DISTANCES))
    np.testing.assert_array_equal(got, want)
    # the weights matter here: points near the boundary, K above the uncorrected one
    none = np.array([pp._k_function(p, WINDOW, area, DISTANCES, "none", 32) for p in sims])
    if edge == "ripley":
        assert (got[:, -1] > none[:, -1]).all()


def test_k_functions_of_patterns_without_pairs_and_one_batch_each():
    # two points farther apart than every distance: K = 0 at every distance
    far = np.array([[[-4000.0, 100.0], [-100.0, 4000.0]]] * 3)
    area = float(shapely.area(WINDOW))
    got = pp._k_functions(far, WINDOW, area, DISTANCES, "ripley", 32, fresh_window())
    np.testing.assert_array_equal(got, np.zeros((3, len(DISTANCES))))


def test_k_inhoms_equal_pattern_by_pattern(monkeypatch):
    sims = patterns(50, 7, seed=9)
    lams = np.random.default_rng(2).uniform(1e-7, 3e-6, (7, 50))
    want = np.array([pp._k_inhom(p, lam, WINDOW, DISTANCES, "ripley", 32, fresh_window())
                     for p, lam in zip(sims, lams, strict=True)])
    monkeypatch.setattr(pp, "_BATCH_POINTS", 120)
    got = pp._k_inhoms(sims, lams, WINDOW, DISTANCES, "ripley", 32, fresh_window())
    np.testing.assert_array_equal(got, want)


def test_window_lookup_equals_shapely_on_and_off_the_grid():
    lookup = pp._WindowLookup(WINDOW)
    gen = np.random.default_rng(4)
    xy = gen.uniform(-5600, 5600, (20_000, 2))
    ring = shapely.get_coordinates(shapely.boundary(WINDOW))
    extra = np.vstack([ring, 0.5 * (ring[:-1] + ring[1:]),  # vertices, edge midpoints
                       [[1e9, 0.0], [0.0, -1e9], [np.inf, 0.0]]])  # far off the grid
    xy = np.vstack([xy, extra])
    want = shapely.contains_xy(WINDOW, xy[:, 0], xy[:, 1])
    np.testing.assert_array_equal(lookup.contains(xy[:, 0], xy[:, 1]), want)
    assert not lookup.contains(np.array([np.nan]), np.array([0.0]))[0]
    # boundary distances: 0 outside or on the boundary, shapely's distance below rmax
    win = fresh_window()
    xy, want = xy[:-1], want[:-1]  # finite points
    b = win.boundary_distance(xy)
    exact = shapely.distance(shapely.boundary(WINDOW), shapely.points(xy))
    near = want & (exact < DISTANCES.max())
    np.testing.assert_array_equal(b[near], exact[near])
    assert (b[~want] == 0).all() and (b[want & ~near] >= DISTANCES.max()).all()


@pytest.mark.parametrize("shape", [(40, 57), (1, 30), (33, 1)])
def test_same_convolution_equals_fftconvolve(shape):
    from scipy.signal import fftconvolve

    gen = np.random.default_rng(7)
    kernel = np.outer(*gen.uniform(0, 1, (2, 9)))
    conv = pp._SameConvolution(shape, kernel)
    for _ in range(2):  # the kernel's transform is reused
        a = gen.poisson(0.3, shape).astype(float)
        np.testing.assert_array_equal(conv(a), fftconvolve(a, kernel, mode="same"))


def test_clark_evans_inhomogeneous_same_with_and_without_shared_draws():
    xy = np.vstack([uniform_in_polygon(WINDOW, 40, seed=1),
                    uniform_in_polygon(Point(-3000, 2000).buffer(800), 40, seed=2)])
    kw = {"window": WINDOW, "n_sim": 19, "seed": 3, "null": "inhomogeneous",
          "bandwidth": 1500.0}
    pp._DRAWS.clear()
    alone = pp.clark_evans(xy, **kw)
    pp._DRAWS.clear()
    rip = pp.ripley(xy, distances=DISTANCES, **kw)
    after = pp.clark_evans(xy, **kw)  # reads the L test's draws
    assert len(pp._DRAWS) == 1
    assert (after.R_null, after.p, after.p_clustered) == (alone.R_null, alone.p,
                                                          alone.p_clustered)
    # a Generator as seed draws anew, from where it stands: the same as an int seed
    gen_seeded = pp.clark_evans(xy, **{**kw, "seed": np.random.default_rng(3)})
    assert gen_seeded.R_null == alone.R_null
    # and the L test's curves with the draws not kept
    pp._DRAWS.clear()
    pp._SIMULATIONS.clear()
    again = pp.ripley(xy, distances=DISTANCES, **{**kw, "seed": np.random.default_rng(3)})
    np.testing.assert_array_equal(again.sim_mean, rip.sim_mean)
    assert again.p == rip.p


def test_count_upto_with_a_binner_counts_as_searchsorted():
    distances = np.array([300.0, 100.0, 200.0, 200.0, 0.1])  # unsorted, a tie
    on = np.sort(distances)
    values = np.concatenate([on, np.nextafter(on, 0), np.nextafter(on, np.inf),
                             [0.0, 150.0, 1e9],
                             np.random.default_rng(1).uniform(0, 400, 500)])
    w = np.random.default_rng(2).uniform(0, 3, len(values))
    binner = pp._Binner(on)
    want = np.array([w[values <= d].sum() for d in distances])  # independent count
    got = pp._count_upto(values, distances, w, binner=binner)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_array_equal(got, pp._count_upto(values, distances, w))


def test_circle_fraction_same_in_any_chunk_and_as_the_mean_of_shapely_tests():
    gen = np.random.default_rng(6)
    centre = gen.uniform(-5000, 5000, (300, 2))
    radius = gen.uniform(50, 3000, 300)
    k = 32
    angle = 2.0 * np.pi * (np.arange(k) + 0.5) / k
    x = centre[:, :1] + radius[:, None] * np.cos(angle)
    y = centre[:, 1:] + radius[:, None] * np.sin(angle)
    want = shapely.contains_xy(WINDOW, x, y).mean(axis=1)
    lookup = pp._WindowLookup(WINDOW)
    for chunk in (7, 4096):
        got = pp._circle_fraction(WINDOW, centre, radius, k, chunk=chunk, lookup=lookup)
        np.testing.assert_array_equal(got, want)
