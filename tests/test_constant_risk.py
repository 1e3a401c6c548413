"""The constant-risk Monte-Carlo null of the local statistics (point counts on areas)."""

from __future__ import annotations

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from esda.smoothing import assuncao_rate
from libpysal import weights as lpw
from shapely.geometry import box

from incubloc.errors import InputError
from incubloc.stats.autocorrelation import (
    getis_ord,
    lisa_statistic,
    local_moran,
    make_grid,
    unit_rates,
    weights,
)
from incubloc.stats.constant_risk import (
    constant_risk_counts,
    constant_risk_test,
    eb_standardised_rate,
    rate_values,
)

CRS = 32650


def clipped_lattice(seed=0, n_points=40):
    """A 6 × 6 km grid whose east column is clipped to 1/5 of a cell (unequal areas)."""
    g = make_grid(box(0, 0, 5200, 6000), cell_size=1000, crs=CRS)
    rng = np.random.default_rng(seed)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(rng.uniform(0, 5200, n_points),
                                                       rng.uniform(0, 6000, n_points)), crs=CRS)
    return unit_rates(pts, g)


def test_eb_standardised_rate_equals_esda():
    rng = np.random.default_rng(3)
    e = rng.poisson(3, 30).astype(float)
    b = rng.uniform(50, 200, 30)
    assert np.allclose(eb_standardised_rate(e, b), np.ravel(assuncao_rate(e, b)))
    cols = rng.poisson(2, (30, 4)).astype(float)
    two = eb_standardised_rate(cols, b)
    for k in range(4):  # every column standardised on its own
        assert np.allclose(two[:, k], np.ravel(assuncao_rate(cols[:, k], b)))


def test_eb_standardised_rate_is_zero_where_undefined():
    # A pattern with no points has rate 0 and no variance: 0/0 in every unit, which
    # (as unit_rates does) becomes 0; the other columns keep their own values.
    rng = np.random.default_rng(4)
    b = rng.uniform(50, 200, 12)
    some = rng.poisson(3, 12).astype(float)
    got = eb_standardised_rate(np.column_stack([np.zeros(12), some, np.zeros(12)]), b)
    assert (got[:, [0, 2]] == 0.0).all() and np.isfinite(got).all()
    assert np.allclose(got[:, 1], np.ravel(assuncao_rate(some, b)))
    assert (eb_standardised_rate(np.zeros(12), b) == 0.0).all()


def test_rate_values_match_unit_rates():
    u = clipped_lattice()
    c, a = u["count"].to_numpy(float), u["area_km2"].to_numpy(float)
    for col in ("count", "rate", "rate_z", "rate_score"):
        assert np.allclose(rate_values(c, a, col), u[col].to_numpy(float)), col


def test_counts_are_multinomial_with_area_shares():
    area = np.array([1.0, 2.0, 3.0, 4.0])
    sims = constant_risk_counts(area, 50, permutations=4000, seed=5)
    assert (sims.sum(axis=0) == 50).all()
    # mean and variance of a multinomial cell: n·p and n·p·(1 − p)
    p = area / area.sum()
    assert np.allclose(sims.mean(axis=1), 50 * p, atol=0.1)
    assert np.allclose(sims.var(axis=1), 50 * p * (1 - p), rtol=0.08)
    # blocks: a longer run starts with the shorter one; the order moves counts with units
    assert np.array_equal(constant_risk_counts(area, 50, permutations=300, seed=5),
                          sims[:, :300])
    perm = np.array([2, 0, 3, 1])
    canon = np.argsort(perm)  # the same canonical unit sequence, rows permuted
    moved = constant_risk_counts(area[perm], 50, permutations=300, seed=5, order=canon)
    assert np.array_equal(moved, sims[perm, :300])


def reference_gi_pvalues(counts, area, w, sims, column="rate_score"):
    """Slow loop: esda's G_Local z on each simulated pattern, p counted per unit."""
    def gz(c):
        y = np.ravel(assuncao_rate(c, area)) if column != "count" else c
        y = np.where(np.isfinite(y), y, 0.0)
        y = y - y.min() if column == "rate_score" else y
        return esda.G_Local(y, w, transform="B", star=True, permutations=0).Zs
    obs = gz(counts)
    zs = np.column_stack([gz(sims[:, k]) for k in range(sims.shape[1])])
    n_sim = sims.shape[1]
    hot, cold = np.empty(len(counts)), np.empty(len(counts))
    for i in range(len(counts)):
        ge = sum(1 for s in zs[i] if s >= obs[i] - 1e-9 * max(1, np.abs(obs).max()))
        le = sum(1 for s in zs[i] if s <= obs[i] + 1e-9 * max(1, np.abs(obs).max()))
        hot[i] = (1 + ge) / (n_sim + 1)
        cold[i] = (1 + le) / (n_sim + 1)
    return hot, cold


def test_gi_pvalues_equal_a_slow_reference_loop():
    u = clipped_lattice(seed=1)
    w = weights(u)
    c, a = u["count"].to_numpy(float), u["area_km2"].to_numpy(float)
    out = getis_ord(u, "rate_score", w=w, seed=9, permutations=199, correction="none",
                    null="constant_risk", window_column="count")
    assert out.attrs["gi_inference"]["null"] == "constant_risk"
    # the same simulated patterns: draws in the canonical (x, y) order, seed as given
    pts = u.geometry.representative_point()
    order = np.lexsort((np.round(pts.y.to_numpy(), 3), np.round(pts.x.to_numpy(), 3)))
    sims = constant_risk_counts(a, int(c.sum()), permutations=199, seed=9, order=order)
    hot, cold = reference_gi_pvalues(c, a, lpw.W(w.neighbors, id_order=w.id_order), sims)
    # units whose whole window is empty are set to p = 1 by rule; compare the rest
    keep = out["gi_p"].to_numpy() < 1.0
    assert keep.sum() > 10
    assert np.allclose(out["gi_p_hot"].to_numpy()[keep], hot[keep])
    assert np.allclose(out["gi_p_cold"].to_numpy()[keep], cold[keep])
    two = np.minimum(1, 2 * np.minimum(hot, cold))
    assert np.allclose(out["gi_p"].to_numpy()[keep], two[keep])
    # the statistic itself is still esda's
    y = u["rate_score"].to_numpy(float)
    ref = esda.G_Local(y, lpw.W(w.neighbors), transform="B", star=True, permutations=0)
    assert np.allclose(out["gi_z"], ref.Zs)


def test_lisa_pvalues_equal_a_slow_reference_loop():
    u = clipped_lattice(seed=2)
    w = weights(u)
    c, a = u["count"].to_numpy(float), u["area_km2"].to_numpy(float)
    out = local_moran(u, "rate_z", w=w, seed=4, permutations=99, correction="none",
                      null="constant_risk", window_column="count")
    pts = u.geometry.representative_point()
    order = np.lexsort((np.round(pts.y.to_numpy(), 3), np.round(pts.x.to_numpy(), 3)))
    sims = constant_risk_counts(a, int(c.sum()), permutations=99, seed=4, order=order)
    wr = lpw.W(w.neighbors)
    wr.transform = "r"

    def lisa(cnt):
        y = np.ravel(assuncao_rate(cnt, a))
        return esda.Moran_Local(y, wr, permutations=0).Is

    obs = lisa(c)
    assert np.allclose(out["lisa_I"], obs)
    sim = np.column_stack([lisa(sims[:, k]) for k in range(99)])
    tol = 1e-9 * max(1, np.abs(obs).max())
    hot = (1 + (sim >= obs[:, None] - tol).sum(axis=1)) / 100
    cold = (1 + (sim <= obs[:, None] + tol).sum(axis=1)) / 100
    keep = ~(out["lisa_p"].to_numpy() == 1.0)
    assert keep.sum() > 10
    assert np.allclose(out["lisa_p_hot"].to_numpy()[keep], hot[keep])
    assert np.allclose(out["lisa_p_cold"].to_numpy()[keep], cold[keep])


def test_results_do_not_depend_on_row_order_or_chunking():
    u = clipped_lattice(seed=4)
    a = getis_ord(u, "rate_score", seed=3, correction="none", null="constant_risk")
    shuffled = u.sample(frac=1.0, random_state=1)
    b = getis_ord(shuffled, "rate_score", seed=3, correction="none", null="constant_risk")
    assert np.array_equal(a.loc[shuffled.index, "gi_p"].to_numpy(), b["gi_p"].to_numpy())
    c, ar = u["count"].to_numpy(float), u["area_km2"].to_numpy(float)
    w = weights(u).sparse
    big = constant_risk_test(c, ar, lambda x: x, w=w, permutations=999, seed=2)
    small = constant_risk_test(c, ar, lambda x: x, w=w, permutations=999, seed=2,
                               sims_per_chunk=250)
    assert np.array_equal(big.p_sim, small.p_sim)


def test_a_dense_corner_is_hot_and_an_empty_window_is_never_significant():
    g = make_grid(box(0, 0, 8000, 8000), cell_size=1000, crs=CRS)
    xy = [(100 + 37 * i % 1900, 100 + 53 * i % 1900) for i in range(30)]  # 2 × 2 km corner
    xy += [(7500, 4500), (4500, 7500)]
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*zip(*xy, strict=True)), crs=CRS)
    u = unit_rates(pts, g)
    gi = getis_ord(u, "rate_score", seed=1, null="constant_risk", window_column="count")
    corner = (u["grid_row"] == 0) & (u["grid_col"] == 0)
    assert gi.loc[corner, "hotspot"].item() == "hot"
    w = weights(u)
    cnt = u["count"].to_numpy()
    empty = np.array([cnt[i] == 0 and all(cnt[j] == 0 for j in w.neighbors[i])
                      for i in range(len(u))])
    assert empty.any() and (gi.loc[empty, "gi_p"] == 1).all()


def test_constant_risk_needs_a_column_it_can_recompute():
    u = clipped_lattice()
    u["other"] = np.arange(len(u), dtype=float)
    with pytest.raises(InputError, match="null='permutation'"):
        getis_ord(u, "other", null="constant_risk")
    u["rate_z"] = u["rate_z"] + 1.0  # no longer the counts' EB rate
    with pytest.raises(InputError, match="not 'count' per 'area_km2'"):
        local_moran(u, "rate_z", null="constant_risk")
    with pytest.raises(InputError, match="unknown null"):
        local_moran(u, "rate_z", null="csr")


def test_both_ways_of_drawing_give_the_multinomial():
    # 3 units ≤ 40 points: binomial per unit; 60 units > 40 points: points placed
    for m in (3, 60):
        area = np.linspace(1.0, 3.0, m)
        sims = constant_risk_counts(area, 40, permutations=3000, seed=8)
        p = area / area.sum()
        assert (sims.sum(axis=0) == 40).all()
        assert np.allclose(sims.mean(axis=1), 40 * p, atol=5 * np.sqrt(40 * p / 3000))
        # covariance of two cells: −n p_i p_j
        cov = np.cov(sims[0], sims[-1])[0, 1]
        assert cov == pytest.approx(-40 * p[0] * p[-1], abs=0.15 + 0.2 * 40 * p[0] * p[-1])


# ----------------------------- simulating only the units that can be significant


def sparse_lattice(seed=5, side=12, n_points=18):
    """A 12 × 12 km grid, east column clipped (unequal areas), with few points in two
    clumps: most windows hold no point, so most units are never significant."""
    g = make_grid(box(0, 0, side * 1000 - 600, side * 1000), cell_size=1000, crs=CRS)
    rng = np.random.default_rng(seed)
    xy = np.vstack([rng.uniform(500, 2500, (n_points // 2, 2)),
                    rng.uniform([7000, 5000], [side * 1000 - 700, 8000], (n_points // 2, 2))])
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=CRS)
    return unit_rates(pts, g)


def test_row_restricted_statistics_equal_the_full_ones_bit_for_bit():
    u = sparse_lattice()
    rng = np.random.default_rng(0)
    c, a = u["count"].to_numpy(float), u["area_km2"].to_numpy(float)
    sims = constant_risk_counts(a, int(c.sum()), permutations=40, seed=1)
    wr = weights(u, transform="r").sparse.tocsr()
    rows = np.sort(rng.choice(len(u), size=len(u) // 3, replace=False))
    vals = rate_values(sims, a, "rate_z")
    full = lisa_statistic(vals, wr)
    np.testing.assert_array_equal(lisa_statistic(vals, wr, rows=rows), full[rows])
    # the same Local Moran as esda's on one simulated pattern (the values are right)
    wl = lpw.W(weights(u).neighbors)
    wl.transform = "r"
    assert np.allclose(full[:, 3], esda.Moran_Local(vals[:, 3], wl, permutations=0).Is)


def _full_test(monkeypatch):
    """Make the local statistics call constant_risk_test without the row restriction."""
    import incubloc.stats.autocorrelation as ac

    def full(*args, **kw):
        kw["skip_never_significant"] = False
        return constant_risk_test(*args, **kw)

    monkeypatch.setattr(ac, "constant_risk_test", full)


@pytest.mark.parametrize("stat", ["gi", "lisa"])
def test_skipping_never_significant_units_changes_no_other_result(stat, monkeypatch):
    u = sparse_lattice()

    def run(units):
        if stat == "gi":
            return getis_ord(units, "rate_score", seed=7, permutations=199, correction="none",
                             null="constant_risk", window_column="count")
        return local_moran(units, "rate_z", seed=7, permutations=199, correction="none",
                           null="constant_risk", window_column="count")

    fast = run(u)
    const = fast.attrs[f"{stat}_inference"]["n_constant_window"]
    assert len(u) // 2 < const < len(u) - 5  # most units skipped, some tested
    cols = [c for c in fast.columns if c.startswith(stat + "_") or c in ("hotspot",)]
    # rows shuffled: every unit's results move with it (no result lands on another row);
    # p-values and classes exactly, the statistics up to the order of the global sums
    shuffled = u.sample(frac=1.0, random_state=3)
    moved = run(shuffled)
    back = fast.loc[shuffled.index]
    exact = [f"{stat}_p", f"{stat}_p_hot", f"{stat}_p_cold", f"{stat}_sig"] + [
        c for c in cols if not pd.api.types.is_float_dtype(moved[c])]  # and the classes
    pd.testing.assert_frame_equal(pd.DataFrame(moved[exact]), pd.DataFrame(back[exact]),
                                  check_exact=True)
    for c in set(cols) - set(exact):
        np.testing.assert_allclose(moved[c], back[c], rtol=1e-12, atol=1e-12, err_msg=c)
    # the full computation (every unit simulated) gives the same numbers, bit for bit
    with monkeypatch.context() as mp:
        _full_test(mp)
        slow = run(u)
    pd.testing.assert_frame_equal(pd.DataFrame(fast[cols]), pd.DataFrame(slow[cols]),
                                  check_exact=True)
    assert fast.attrs == slow.attrs
    p = fast[f"{stat}_p"].to_numpy()
    assert (p < 1).sum() >= 5 and (p == 1).sum() >= const


def test_constant_risk_test_skips_only_never_significant_units():
    u = sparse_lattice()
    c, a = u["count"].to_numpy(float), u["area_km2"].to_numpy(float)
    wr = weights(u, transform="r").sparse.tocsr()

    def stat(cnt, rows=None):
        return lisa_statistic(rate_values(cnt, a, "rate_z"), wr, rows=rows)

    kw = dict(w=wr, permutations=600, seed=4, sims_per_chunk=250)  # several chunks
    fast = constant_risk_test(c, a, stat, skip_never_significant=True, **kw)
    slow = constant_risk_test(c, a, stat, **kw)
    skipped = np.isnan(fast.EI_sim)
    np.testing.assert_array_equal(skipped, fast.constant_window)
    assert 0 < skipped.sum() < len(u)
    for name in ("obs", "p_hot", "p_cold", "p_sim", "z_sim", "constant_window"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    np.testing.assert_array_equal(fast.EI_sim[~skipped], slow.EI_sim[~skipped])
    np.testing.assert_array_equal(fast.seI_sim[~skipped], slow.seI_sim[~skipped])
    assert np.isnan(fast.seI_sim[skipped]).all()


def test_eb_rate_falls_back_to_the_poisson_variance_where_the_prior_variance_is_negative():
    # Counts almost proportional to area: the moment estimate of the prior variance
    # (a = s² − rate / mean area) is negative, and a + rate/area < 0 for the large
    # units, which then take rate/area alone (Assunção & Reis 1999; esda does so too).
    b = np.array([5.0, 20.0, 40.0, 80.0, 160.0, 320.0])
    cols = np.column_stack([np.round(b * 0.05) + d for d in (0, [1, 0, 0, 0, 0, 0])])
    rate = cols.sum(axis=0) / b.sum()
    s2 = (b[:, None] * (cols / b[:, None] - rate) ** 2).sum(axis=0) / b.sum()
    raw = s2 - rate / b.mean() + rate / b[:, None]
    assert (raw < 0).any(axis=0).all() and (raw >= 0).any(axis=0).all()  # both branches
    got = eb_standardised_rate(cols, b)
    for k in range(cols.shape[1]):
        np.testing.assert_allclose(got[:, k], np.ravel(assuncao_rate(cols[:, k], b)),
                                   rtol=1e-12)


def test_eb_rate_with_one_total_in_every_column_takes_both_branches_per_column():
    # Simulated patterns all have n points: one rate for every column, and the fall
    # back to rate/area is then decided cell by cell from that one vector. Columns
    # where the prior variance is negative (counts ∝ area) and others (clustered)
    # side by side; each column must be esda's.
    b = np.array([5.0, 20.0, 40.0, 80.0, 160.0, 320.0])
    even = np.round(b * 0.05)  # 0, 1, 2, 4, 8, 16: n = 31
    cols = np.column_stack([even, even[::-1], [31, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 31],
                            [1, 1, 2, 4, 8, 15]]).astype(float)
    assert (cols.sum(axis=0) == 31).all()
    rate = 31 / b.sum()
    s2 = (b[:, None] * (cols / b[:, None] - rate) ** 2).sum(axis=0) / b.sum()
    raw = s2 - rate / b.mean() + rate / b[:, None]
    assert (raw < 0).any() and (raw >= 0).all(axis=0).any()  # both kinds of column
    got = eb_standardised_rate(cols, b)
    for k in range(cols.shape[1]):
        np.testing.assert_allclose(got[:, k], np.ravel(assuncao_rate(cols[:, k], b)),
                                   rtol=1e-12)
        # and as a column on its own (a single column takes the same path)
        np.testing.assert_array_equal(eb_standardised_rate(cols[:, k], b), got[:, k])


@pytest.mark.parametrize("permutations", [600, 501])
def test_simulations_in_blocks_give_the_numbers_of_one_call_on_all(permutations,
                                                                  monkeypatch):
    # One chunk of simulations; the statistic is evaluated on blocks of its columns
    # (here of 250: 600 = 250 + 250 + 100, and 501 = 250 + 251, never a lone column).
    # Reference: the statistic on all simulated patterns at once, counted by hand.
    import incubloc.stats.constant_risk as cr

    u = sparse_lattice(seed=6, n_points=30)
    monkeypatch.setattr(cr, "_CELLS_PER_CALL", 250 * len(u))
    c, a = u["count"].to_numpy(float), u["area_km2"].to_numpy(float)
    wr = weights(u, transform="r").sparse.tocsr()
    calls = []

    def stat(cnt, rows=None):
        calls.append(cnt.shape[1])
        return lisa_statistic(rate_values(cnt, a, "rate_score"), wr, rows=rows)

    res = constant_risk_test(c, a, stat, w=wr, permutations=permutations, seed=3)
    assert calls == [1, 250, 250, 100] if permutations == 600 else [1, 250, 251]
    sims = constant_risk_counts(a, int(c.sum()), permutations=permutations, seed=3)
    obs = lisa_statistic(rate_values(c, a, "rate_score"), wr)
    st = lisa_statistic(rate_values(sims, a, "rate_score"), wr)
    tol = 1e-9 * max(1.0, np.abs(obs).max())
    hot = (1 + (st >= obs[:, None] - tol).sum(axis=1)) / (permutations + 1)
    cold = (1 + (st <= obs[:, None] + tol).sum(axis=1)) / (permutations + 1)
    mean = st.sum(axis=1) / permutations
    sd = np.sqrt(np.maximum((st * st).sum(axis=1) / permutations - mean**2, 0.0))
    live = ~res.constant_window
    np.testing.assert_array_equal(res.obs, obs)
    np.testing.assert_array_equal(res.p_hot[live], hot[live])
    np.testing.assert_array_equal(res.p_cold[live], cold[live])
    np.testing.assert_array_equal(res.EI_sim, mean)
    np.testing.assert_array_equal(res.seI_sim, sd)
