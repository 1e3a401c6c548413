"""Scale runs: national-extent statistics, million-row inputs (issue: fast at scale)."""

from __future__ import annotations

import math

import numpy as np
import pytest


def test_poisson_trend_with_a_sliver_ring_gives_no_estimate_instead_of_failing():
    # A national study has rings clipped to slivers of a few hundred m²: with every
    # event in the last (tiny) ring the IRLS weights underflow and the normal
    # equations become singular. That is the "MLE at infinity" case: no estimate.
    from incubloc.stats.trend import poisson_trend

    t = poisson_trend([0, 0, 332], [1.2012585e-4, 0.08324713, 4.2563791e-4], [1, 2, 3])
    assert math.isnan(t.rate_ratio) and not t.converged and "converge" in t.note
    assert t.n_events == 332 and t.n_units == 3
    # a finite case is unchanged: the rate halves from ring to ring
    assert np.isclose(poisson_trend([100, 50, 25], [1.0, 1.0, 1.0], [1, 2, 3]).rate_ratio, 0.5)


def _clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(1000.0, 9000.0, (8, 2))
    xy = centres[rng.integers(0, 8, n)] + rng.normal(scale=600.0, size=(n, 2))
    return np.clip(xy, 1.0, 9999.0)


@pytest.mark.slow
def test_inhomogeneous_statistics_in_chunks_equal_the_in_memory_path(monkeypatch):
    # The national report ran out of memory in the inhomogeneous point-pattern
    # statistics: the kernel intensity at the points and K_inhom held every pair
    # within 8σ / rmax as arrays (~10⁸ pairs). From _FAST_K_MIN_N points on they
    # are summed in bounded chunks; here both paths run on one small pattern
    # (several chunks of pairs) and must agree to rounding.
    from shapely.geometry import Polygon

    from incubloc.stats import pointpattern as pp

    window = Polygon([(0, 0), (10000, 0), (10000, 6000), (6000, 10000), (0, 10000)])
    xy = _clustered(900)
    xy = xy[pp._inside(window, xy)]
    sigma = 2500.0
    intensity = pp._Intensity(window, sigma)
    assert len(xy) * (len(xy) - 1) // 2 > 2 * pp._PAIR_CHUNK  # several chunks
    lam_mem = intensity.at_points(xy)  # below _FAST_K_MIN_N: every pair at once
    distances = np.linspace(100.0, 2500.0, 25)
    k_mem = {ec: pp._k_inhom(xy, lam_mem, window, distances, ec, 32, None)
             for ec in ("ripley", "none")}
    res_mem = pp.ripley(xy, window=window, null="inhomogeneous", bandwidth=sigma,
                        distances=distances, n_sim=9, seed=4)

    monkeypatch.setattr(pp, "_FAST_K_MIN_N", 2)  # force the chunked path
    lam_chunk = intensity.at_points(xy)
    np.testing.assert_allclose(lam_chunk, lam_mem, rtol=1e-12, atol=0)
    for ec, k in k_mem.items():
        np.testing.assert_allclose(
            pp._k_inhom(xy, lam_mem, window, distances, ec, 32, None), k, rtol=1e-12)
    res_chunk = pp.ripley(xy, window=window, null="inhomogeneous", bandwidth=sigma,
                          distances=distances, n_sim=9, seed=4)
    np.testing.assert_allclose(res_chunk.K, res_mem.K, rtol=1e-12)
    np.testing.assert_allclose(res_chunk.lo, res_mem.lo, rtol=1e-10)
    assert res_chunk.p == res_mem.p

    # independent check of the kernel sums: the direct O(n²) formula
    d2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(axis=2)
    phi = np.exp(-0.5 * d2 / sigma**2) / (2 * np.pi * sigma**2)
    np.fill_diagonal(phi, 0.0)
    phi[d2 > (8 * sigma) ** 2] = 0.0
    np.testing.assert_allclose(pp.kernel_sums_chunked(xy, sigma, 8 * sigma), phi.sum(axis=1),
                               rtol=1e-12)


def test_chunked_kernel_sums_hold_a_bounded_number_of_pairs():
    # Memory is O(N + chunk), not O(pairs): on 2 500 points with every pair within
    # reach (3.1e6 pairs, ~100 MB as the in-memory path's arrays) the peak traced
    # allocation stays a few MB.
    import tracemalloc

    from incubloc.stats import pointpattern as pp

    xy = _clustered(2500, seed=1)
    tracemalloc.start()
    pp.kernel_sums_chunked(xy, 5000.0, 40000.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 40e6


def test_ripley_max_distance_is_read_from_the_config():
    from incubloc.config import resolve_config
    from incubloc.errors import ConfigError, InputError
    from incubloc.workflow import ripley_distances

    cfg = resolve_config({"stats": {"ripley_max_distance_m": 50000}})
    d = ripley_distances(cfg["stats"])
    assert len(d) == 50 and d[0] == 1000.0 and d[-1] == 50000.0
    assert ripley_distances(resolve_config({})["stats"]) is None  # the default range
    with pytest.raises(ConfigError):
        resolve_config({"stats": {"ripley_max_distance_m": "far"}})
    with pytest.raises(InputError):
        ripley_distances({"ripley_max_distance_m": -1.0})


def test_quadrat_cells_kept_as_by_overlaying_every_cell():
    # cell_fraction_inside overlays only the boundary cells; which quadrats are kept
    # (land fraction ≥ 0.5) must equal the decision from overlaying every cell.
    import shapely

    from incubloc.stats import pointpattern as pp

    rng = np.random.default_rng(5)
    window = shapely.union_all(shapely.buffer(shapely.points(rng.uniform(0, 10000, (40, 2))),
                                              rng.uniform(300, 1500, 40)))
    minx, miny, maxx, maxy = window.bounds
    xs, ys = np.meshgrid(np.arange(minx, maxx, 370.0), np.arange(miny, maxy, 370.0))
    cells = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + 370.0, ys.ravel() + 370.0)
    shapely.prepare(window)
    fast = pp.cell_fraction_inside(cells, window, 370.0**2)
    full = shapely.area(shapely.intersection(cells, window)) / 370.0**2
    np.testing.assert_allclose(fast, full, atol=1e-9)
    assert ((fast >= 0.5) == (full >= 0.5)).all()
    assert 0 < (fast == 1.0).sum() < len(cells) and (fast == 0).any()
