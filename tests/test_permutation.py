"""The conditional-permutation engine: ties, reference loop, invariance, calibration."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from incubloc.stats.autocorrelation import (
    getis_ord,
    local_moran,
    make_grid,
    unit_rates,
    weights,
)
from incubloc.stats.permutation import (
    conditional_permutation,
    correction_threshold,
    permutation_draws,
    permutations_needed,
)

CRS = 32650


def lattice(side=6, seed=0, rate=0.6):
    g = make_grid(box(0, 0, side * 1000, side * 1000), cell_size=1000, crs=CRS)
    g["v"] = np.random.default_rng(seed).poisson(rate, len(g)).astype(float)
    return g


# --------------------------------------------------------------------- empty windows


def test_all_zero_window_is_never_significant():
    g = make_grid(box(0, 0, 9000, 9000), cell_size=1000, crs=CRS)
    g["v"] = 0.0
    # a dense block in one corner; the opposite corner's windows are all zero
    g.loc[(g["grid_row"] >= 6) & (g["grid_col"] >= 6), "v"] = 5.0
    g.loc[g["cell_id"] == 40, "v"] = 1.0
    empty = ((g["grid_row"] <= 2) & (g["grid_col"] <= 2)).to_numpy()
    lm = local_moran(g, "v", permutations=199, seed=1, correction="none")
    gi = getis_ord(g, "v", permutations=199, seed=1, correction="none")
    for col in ("lisa_p_hot", "lisa_p_cold", "lisa_p", "lisa_p_norm"):
        assert (lm.loc[empty, col] == 1.0).all(), col
    for col in ("gi_p_hot", "gi_p_cold", "gi_p", "gi_p_norm"):
        assert (gi.loc[empty, col] == 1.0).all(), col
    assert (lm.loc[empty, "lisa_cluster"] == "ns").all()
    assert (gi.loc[empty, "gi_bin"] == "ns").all()
    # ... while the dense block (a constant window of high values) is a hot spot
    assert gi.loc[g["cell_id"] == 70, "gi_bin"].item().startswith("hot")
    assert lm.loc[g["cell_id"] == 70, "lisa_cluster"].item() == "HH"
    strict = getis_ord(g, "v", permutations=199, seed=1, correction="none",
                       constant_window="any")
    assert strict.loc[g["cell_id"] == 70, "gi_p"].item() == 1.0


def test_ties_count_against_significance():
    # unit 0: value 0 with neighbours 0 in a sea of zeros and one 1 -> almost all
    # simulations tie with the observation; ties must not make it significant
    w = np.zeros((50, 50))
    idx = np.arange(49)
    w[idx, idx + 1] = w[idx + 1, idx] = 1
    y = np.zeros(50)
    y[25] = 1.0
    res = conditional_permutation(y, w, permutations=99, seed=0, window=np.arange(50.0))
    # window given as non-constant so only the tie rule protects unit 0
    assert res.p_hot[0] == 1.0 and res.p_cold[0] >= 0.9 and res.p_sim[0] == 1.0


# ------------------------------------------------------------------ reference loop


def reference_pvalues(obs, values, draws, stat_of_lag, window_const, rtol=1e-9):
    """Slow per-unit loop over the same draws (written independently of the engine).

    Unit i's pool is the sorted values with one instance of its own value removed.
    """
    n, n_perm, _ = draws.index.shape
    hot = np.empty(n)
    cold = np.empty(n)
    for i in range(n):
        pool = sorted(values)
        pool.remove(values[i])
        sims = []
        for p in range(n_perm):
            lag = 0.0
            for j, wj in enumerate(draws.slot_weights[i]):
                if wj:
                    lag += wj * pool[draws.index[i, p, j]]
            sims.append(stat_of_lag(i, lag))
        sims = np.array(sims)
        tol = rtol * max(abs(obs[i]), np.abs(sims).max(), 1e-300)
        hot[i] = (1 + sum(s >= obs[i] - tol for s in sims)) / (n_perm + 1)
        cold[i] = (1 + sum(s <= obs[i] + tol for s in sims)) / (n_perm + 1)
        if window_const[i]:
            hot[i] = cold[i] = 1.0
    return hot, cold, np.minimum(1, 2 * np.minimum(hot, cold))


def window_constant_loop(y, w):
    out = []
    for i in range(len(y)):
        vals = [y[i]] + [y[j] for j in w.neighbors[i]]
        out.append(max(vals) == min(vals))
    return np.array(out)


def test_local_moran_pvalues_equal_slow_reference_loop():
    g = lattice(side=6, seed=3)
    y = g["v"].to_numpy()
    w = weights(g)
    n = len(y)
    z = (y - y.mean()) / y.std()
    den = (z**2).sum()
    scale = (n - 1) * z / den
    out = local_moran(g, "v", w=w, permutations=99, seed=11, correction="none")
    w.transform = "r"
    draws = permutation_draws(z, w.sparse, permutations=99, seed=11, scale=scale)
    obs = np.array([(n - 1) * z[i] * sum(z[j] for j in w.neighbors[i]) / len(w.neighbors[i])
                    / den for i in range(n)])
    hot, cold, two = reference_pvalues(obs, z, draws, lambda i, lag: scale[i] * lag,
                                       window_constant_loop(y, w))
    np.testing.assert_allclose(out["lisa_p_hot"], hot)
    np.testing.assert_allclose(out["lisa_p_cold"], cold)
    np.testing.assert_allclose(out["lisa_p"], two)


def test_gi_star_pvalues_equal_slow_reference_loop():
    g = lattice(side=6, seed=4)
    y = g["v"].to_numpy()
    w = weights(g, transform="b")
    total = y.sum()
    out = getis_ord(g, "v", w=w, permutations=99, seed=12, correction="none")
    draws = permutation_draws(y, w.sparse, permutations=99, seed=12, offset=y / total,
                              scale=np.full(len(y), 1 / total))
    obs = np.array([(y[i] + sum(y[j] for j in w.neighbors[i])) / total for i in range(len(y))])
    hot, cold, two = reference_pvalues(obs, y, draws, lambda i, lag: (y[i] + lag) / total,
                                       window_constant_loop(y, w))
    np.testing.assert_allclose(out["gi_p_hot"], hot)
    np.testing.assert_allclose(out["gi_p_cold"], cold)
    np.testing.assert_allclose(out["gi_p"], two)


def test_draws_are_without_replacement_and_skip_own_value():
    y = np.arange(10.0)
    w = np.ones((10, 10)) - np.eye(10)  # everyone neighbours everyone: k = n − 1
    d = permutation_draws(y, w, permutations=20, seed=0)
    for i in range(10):
        for p in range(20):
            got = np.sort(d.pool(i)[d.index[i, p]])
            np.testing.assert_array_equal(got, np.delete(y, i))


# ---------------------------------------------------------------------- invariance


def test_labels_do_not_depend_on_row_order_chunks_or_jobs():
    g = lattice(side=12, seed=5, rate=0.4)
    kw = {"permutations": 199, "seed": 9, "correction": "none"}
    ref = getis_ord(local_moran(g, "v", **kw), "v", **kw).set_index("cell_id")
    shuffled = g.sample(frac=1.0, random_state=1).reset_index(drop=True)
    shuffled.attrs = g.attrs
    other = getis_ord(local_moran(shuffled, "v", **kw), "v", **kw).set_index("cell_id")
    other = other.loc[ref.index]
    cols = ["lisa_p", "lisa_cluster", "gi_p", "gi_bin"]
    pd_equal(ref[cols], other[cols])
    chunked = getis_ord(local_moran(g, "v", chunk_size=1, n_jobs=2, **kw), "v", chunk_size=2,
                        n_jobs=2, **kw).set_index("cell_id")
    pd_equal(ref[cols], chunked[cols])
    assert (ref["lisa_cluster"] != "ns").any()


def pd_equal(a, b):
    assert a.to_dict() == b.to_dict()


# ---------------------------------------------------------------- multiple testing


def test_correction_thresholds_and_attainability():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # Benjamini–Hochberg by hand: k·0.05/10 = 0.005, 0.010, 0.015 ... -> k = 2
    assert correction_threshold(p, 0.05, "fdr") == 0.008
    assert correction_threshold(p, 0.05, "bonferroni") == pytest.approx(0.005)
    assert correction_threshold(p, 0.05, "none") == 0.05
    n = permutations_needed(58, 0.05, "fdr")
    assert 2 / (n + 1) <= 0.05 / 58 < 2 / n


def test_unattainable_correction_warns_and_is_recorded():
    g = lattice(side=8, seed=1)
    with pytest.warns(UserWarning, match="cannot pass"):
        out = local_moran(g, "v", permutations=99, seed=0, max_permutations=99)
    info = out.attrs["lisa_inference"]
    assert info["attainable"] is False and info["permutations"] == 99
    assert info["n_significant"] == 0


# --------------------------------------------------------------------- calibration


@pytest.mark.slow
def test_calibration_under_csr_in_the_bundled_window():
    """200 CSR patterns of 200 points in the irregular window, on a 30 km land grid.

    The product path: EB-standardised rates per km² of land (clipped coastal cells
    included), Gi* under its default constant-risk null and LISA under conditional
    permutation (the defaults of ``[stats] gi_null`` / ``lisa_null``), with the
    default correction. Without correction (p ≤ 0.05) at most 6 % of cells are
    significant on average; with Benjamini–Hochberg at most 6 % of patterns have any
    significant cell (its family-wise rate under a global null is about α, so 0.06
    allows one Monte-Carlo standard error over 200 patterns).
    """
    from incubloc.datasets import nanjing_study_area_path
    from incubloc.stats._random import uniform_in_polygon

    cities = gpd.read_file(nanjing_study_area_path(), layer="cities").to_crs(CRS)
    grid = make_grid(cities, cell_size=30_000, crs=CRS)
    window = cities.union_all()
    w = weights(grid)
    rng = np.random.default_rng(20240501)
    share = {"lisa": [], "gi": []}
    any_fdr = {"lisa": 0, "gi": 0}
    n_pat = 200
    for k in range(n_pat):  # patterns: a few hundred, each vectorised
        xy = uniform_in_polygon(window, 200, seed=rng)
        units = unit_rates(gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=CRS), grid)
        # simulations enough for the FDR threshold at α = 0.05 (what is tested here),
        # not the extra ones Gi* spends on its 99 % bin
        kw = {"w": w, "seed": k, "window_column": "count",
              "max_permutations": permutations_needed(len(grid), 0.05)}
        lm = local_moran(units, "rate_z", null="permutation", **kw)
        gi = getis_ord(units, "rate_score", null="constant_risk", **kw)
        assert lm.attrs["lisa_inference"]["correction"] == "fdr"
        assert gi.attrs["gi_inference"]["null"] == "constant_risk"
        share["lisa"].append((lm["lisa_p"] <= 0.05).mean())
        share["gi"].append((gi["gi_p"] <= 0.05).mean())
        any_fdr["lisa"] += bool(lm["lisa_sig"].any())
        any_fdr["gi"] += bool(gi["gi_sig"].any())
    for stat in ("lisa", "gi"):
        assert np.mean(share[stat]) <= 0.06, (stat, np.mean(share[stat]))
        assert any_fdr[stat] / n_pat <= 0.06, (stat, any_fdr[stat] / n_pat)
