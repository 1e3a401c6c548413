"""Honest nulls for the point-pattern tests: calibration under the null, power against
clustering, and the edge-correction rules of Clark–Evans."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from incubloc.errors import InputError
from incubloc.stats._random import uniform_in_polygon
from incubloc.stats.pointpattern import clark_evans, is_rectangle, ripley

BOX = box(0, 0, 10_000, 10_000)
# Three quarters of a disc: an irregular window with a reflex corner.
PAC = Point(0, 0).buffer(5000, 64).difference(box(0, -6000, 6000, 0))


def inhomogeneous_poisson(n, gen, strength=3.0):
    """n points in BOX with intensity ∝ exp(strength · x / 10 km), no interaction."""
    out = np.empty((0, 2))
    while len(out) < n:
        xy = gen.uniform(0, 10_000, (4 * n, 2))
        keep = gen.uniform(0, 1, len(xy)) < np.exp(strength * (xy[:, 0] / 10_000 - 1))
        out = np.vstack([out, xy[keep]])
    return out[:n]


def thomas(gen, parents=12, kids=8, sd=200.0):
    """Thomas cluster process whose parents follow the same trend."""
    centres = inhomogeneous_poisson(parents, gen)
    xy = np.vstack([gen.normal(c, sd, (kids, 2)) for c in centres])
    return xy[shapely.contains_xy(BOX, xy[:, 0], xy[:, 1])]


@pytest.fixture(scope="module")
def bundled_window():
    from incubloc.datasets import nanjing_study_area_path
    from incubloc.studyarea import load_study_area

    path = nanjing_study_area_path()
    if not path.exists():
        pytest.skip("bundled Nanjing data not built")
    cities = load_study_area(path, layers=["cities"]).get("cities")
    return shapely.make_valid(cities.to_crs(32650).union_all())


# ------------------------------------------------------------------------- Ripley


@pytest.mark.slow
def test_inhomogeneous_ripley_calibrated_and_detects_thomas():
    gen = np.random.default_rng(2024)
    called = []
    for i in range(40):
        res = ripley(inhomogeneous_poisson(100, gen), window=BOX, n_sim=39, seed=i,
                     null="inhomogeneous", alternative="clustered")
        called.append(res.p <= 0.05)
    # Without interaction the inhomogeneous test calls the pattern clustered in at
    # most 10 % of the patterns (its nominal rate is 5 %).
    assert np.mean(called) <= 0.10
    # The same trend under the homogeneous null is "clustered" nearly every time:
    # that null cannot tell a trend from clustering.
    csr = [ripley(inhomogeneous_poisson(100, gen), window=BOX, n_sim=39, seed=i,
                  alternative="clustered").p <= 0.05 for i in range(5)]
    assert np.mean(csr) >= 0.8
    hits = [ripley(thomas(gen), window=BOX, n_sim=39, seed=i, null="inhomogeneous",
                   alternative="clustered").p <= 0.05 for i in range(8)]
    assert np.mean(hits) >= 0.9


@pytest.mark.slow
def test_global_envelope_test_calibrated_under_csr():
    gen = np.random.default_rng(7)
    d = np.linspace(250, 2500, 10)
    rejected = []
    for i in range(160):
        xy = uniform_in_polygon(BOX, 40, seed=gen)
        # the border correction keeps this fast; the test is exact for any correction
        res = ripley(xy, window=BOX, distances=d, n_sim=19, seed=1000 + i,
                     edge_correction="border")
        rejected.append(res.p <= 0.05)
        # the global envelope and the test agree: leaving it is rejecting
        assert bool((res.L_minus_d > res.global_hi).any() | (res.L_minus_d < res.global_lo).any()) \
            == (res.p <= 0.05)
    # An exact Monte-Carlo test: P(reject) = 1/20 = 5 % under CSR; a
    # binomial 95 % range of about 1.5–9 % for 160 patterns.
    assert 0.015 <= np.mean(rejected) <= 0.09


def test_inhomogeneous_k_with_flat_intensity_equals_homogeneous_k():
    xy = uniform_in_polygon(PAC, 120, seed=3)
    d = np.array([200.0, 500.0, 1000.0, 1500.0])
    hom = ripley(xy, window=PAC, distances=d, n_sim=0)
    # a kernel far wider than the window gives a flat intensity (n − 1) / A
    inh = ripley(xy, window=PAC, distances=d, n_sim=0, null="inhomogeneous", bandwidth=1e7)
    np.testing.assert_allclose(inh.K, hom.K, rtol=1e-3)
    assert inh.bandwidth_m == 1e7 and hom.bandwidth_m is None


def test_ripley_dclf_and_one_sided_tests():
    gen = np.random.default_rng(4)
    centres = gen.uniform(-3000, 3000, (5, 2))
    xy = np.vstack([gen.normal(c, 150, (30, 2)) for c in centres])
    xy = xy[shapely.contains_xy(PAC, xy[:, 0], xy[:, 1])]
    for test in ("mad", "dclf"):
        assert ripley(xy, window=PAC, n_sim=39, seed=0, test=test, alternative="clustered").p \
            == pytest.approx(1 / 40)
        # clustered data give no evidence of regularity
        assert ripley(xy, window=PAC, n_sim=39, seed=0, test=test, alternative="regular").p > 0.5
    res = ripley(xy, window=PAC, n_sim=39, seed=0, alternative="clustered")
    assert np.isnan(res.global_lo).all() and np.isfinite(res.global_hi).all()
    assert res.envelope_type == "pointwise" and res.rejects
    with pytest.raises(InputError):
        ripley(xy, window=PAC, n_sim=9, null="inhomogeneous", edge_correction="border")


# -------------------------------------------------------------------- Clark–Evans


def test_clark_evans_donnelly_only_in_rectangles():
    xy = uniform_in_polygon(PAC, 60, seed=1)
    assert not is_rectangle(PAC) and is_rectangle(shapely.affinity.rotate(BOX, 30))
    res = clark_evans(xy, window=PAC)
    assert res.edge_correction == "none" and res.p_method == "normal"
    with pytest.raises(InputError, match="rectangular"):
        clark_evans(xy, window=PAC, edge_correction="donnelly")
    sq = clark_evans(uniform_in_polygon(BOX, 60, seed=1), window=BOX)
    assert sq.edge_correction == "donnelly"
    mc = clark_evans(xy, window=PAC, n_sim=99, seed=2)
    assert mc.p_method == "monte_carlo" and mc.n_sim == 99
    # p is two-sided from the same simulations: 2 · min of the one-sided tails
    assert mc.p == pytest.approx(min(1.0, 2 * min(mc.p_clustered, 1.01 - mc.p_clustered)), abs=0.03)
    assert 0.9 < mc.R_null < 1.1  # CSR data: the observed mean is the simulated one


def test_clark_evans_ties_count_against_significance():
    # A lattice in a lattice-shaped window: every simulated mean differs, but a
    # pattern equal to the null's mean cannot reach p below 1/(n_sim + 1) bounds.
    xy = uniform_in_polygon(BOX, 30, seed=5)
    res = clark_evans(xy, window=BOX, n_sim=19, seed=5)
    assert res.p_clustered >= 1 / 20 and res.p >= 2 / 20 - 1e-12


@pytest.mark.slow
def test_clark_evans_monte_carlo_calibrated_in_bundled_window(bundled_window):
    gen = np.random.default_rng(11)
    pats = uniform_in_polygon(bundled_window, 100 * 200, seed=gen).reshape(200, 100, 2)
    ps = np.array([clark_evans(p, window=bundled_window, n_sim=39, seed=int(i)).p_clustered
                   for i, p in enumerate(pats)])
    # exact one-sided test: P(p <= 0.05) = 2/40 = 5 % under CSR
    assert 0.015 <= np.mean(ps <= 0.05) <= 0.09
    # without an edge correction in this window the normal approximation is biased
    # towards "regular" (R > 1): the reason the report uses the Monte-Carlo test.
    plain = clark_evans(pats[0], window=bundled_window)
    assert plain.edge_correction == "none"


def test_clark_evans_inhomogeneous_null_explains_a_trend():
    gen = np.random.default_rng(8)
    pats = [inhomogeneous_poisson(150, gen, strength=4.0) for _ in range(8)]
    csr = [clark_evans(xy, window=BOX, n_sim=39, seed=i).p_clustered for i, xy in enumerate(pats)]
    inh = [clark_evans(xy, window=BOX, n_sim=39, seed=i, null="inhomogeneous")
           for i, xy in enumerate(pats)]
    # the trend alone looks "clustered" under CSR, not under the inhomogeneous null
    assert np.mean(np.array(csr) <= 0.05) >= 0.75
    assert np.mean([r.p_clustered <= 0.05 for r in inh]) <= 0.25
    assert all(r.bandwidth_m > 0 and r.null == "inhomogeneous" for r in inh)
