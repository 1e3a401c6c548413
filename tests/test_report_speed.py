"""Fast paths of the report's statistics change no number: each against the slow path
or an independent implementation."""

from __future__ import annotations

import os

import esda
import numpy as np
import pytest
from libpysal import weights as lpw
from shapely.geometry import box

from incubloc.stats._random import legacy_seed
from incubloc.stats.autocorrelation import (
    binary_join_counts,
    join_counts,
    make_grid,
    unit_rates,
    weights,
)
from incubloc.stats.permutation import conditional_permutation, permutation_draws
from incubloc.stats.pointpattern import ripley

CRS = 32650
MASK = (1 << 64) - 1


# ------------------------------------------------------ permutation engine: skipping


def sparse_counts_grid(side=14, seed=3):
    g = make_grid(box(0, 0, side * 1000, side * 1000), cell_size=1000, crs=CRS)
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(g))
    hot = rng.choice(len(g), size=len(g) // 12, replace=False)
    counts[hot] = rng.integers(1, 4, size=len(hot))
    g["count"] = counts
    return g


@pytest.mark.parametrize("values", ["counts", "rates"])
def test_skipping_never_significant_groups_changes_no_other_unit(values):
    g = sparse_counts_grid()
    w = weights(g, kind="queen", transform="r").sparse
    if values == "counts":  # few groups, many units each
        x = g["count"].to_numpy(float)
    else:  # continuous: about one group per unit, as the report's EB rates
        x = g["count"].to_numpy(float) + np.random.default_rng(1).random(len(g)) * 1e-3
    kw = dict(window=g["count"].to_numpy(float), permutations=299, seed=11)
    fast = conditional_permutation(x, w, **kw)
    slow = conditional_permutation(x, w, skip_never_significant=False, **kw)
    skipped = np.isnan(fast.EI_sim)
    if values == "rates":  # one group per unit: every empty window is skipped
        np.testing.assert_array_equal(skipped, fast.constant_window)
        assert skipped.sum() > len(g) // 3
    assert fast.constant_window[skipped].all()  # only never-significant units skipped
    for name in ("obs", "p_hot", "p_cold", "p_sim", "z_sim"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    np.testing.assert_array_equal(fast.EI_sim[~skipped], slow.EI_sim[~skipped])
    np.testing.assert_array_equal(fast.seI_sim[~skipped], slow.seI_sim[~skipped])
    assert (fast.p_sim[fast.constant_window] == 1.0).all()


# ----------------------------------------- permutation draws: the documented generator


def _mix(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def _bits(v):
    return int(np.float64(v).view(np.uint64))


def reference_draws(values, w, permutations, seed):
    """Unit i's draws from SplitMix64 keyed by (seed, own value, 0, 1, sorted weights),
    written from the module's description, one number at a time."""
    n = len(values)
    k = int((w > 0).sum(axis=1).max())
    out = np.empty((n, permutations, k), dtype=np.int64)
    for i in range(n):
        slots = sorted(w[i][w[i] > 0]) + [0.0] * (k - int((w[i] > 0).sum()))
        key = _mix(_mix(seed & MASK))
        for v in [values[i], 0.0, 1.0, *slots]:
            key = _mix(key ^ _bits(v))
        for p in range(permutations):
            base = key ^ _mix((p * 0x9E3779B97F4A7C15) & MASK)
            taken = []
            for j in range(k):
                u = _mix((base + j + 1) & MASK)
                r = min(int((u >> 11) * (1.0 / 2**53) * (n - 1 - j)), n - 1 - j - 1)
                free = [q for q in range(n - 1) if q not in taken]
                taken.append(free[r])
            out[i, p] = taken
    return out


def test_draws_follow_the_documented_generator():
    rng = np.random.default_rng(4)
    n = 9
    w = np.zeros((n, n))
    for i in range(n):  # a ring with a chord or two: 2 to 4 neighbours, unequal weights
        for d in (1, 2):
            w[i, (i + d) % n] = w[(i + d) % n, i] = float(d)
    values = rng.integers(0, 3, n).astype(float)
    d = permutation_draws(values, w, permutations=25, seed=7)
    np.testing.assert_array_equal(d.index, reference_draws(values, w, 25, 7))


# ------------------------------------------------------------------------ join counts


def test_binary_join_counts_equal_esda():
    rng = np.random.default_rng(1)
    w = lpw.KNN.from_array(rng.random((150, 2)), k=6).symmetrize()
    w.transform = "b"
    for frac in (0.03, 0.3, 0.6):
        y = (rng.random(150) < frac).astype(int)
        with legacy_seed(5):
            ref = esda.Join_Counts(y, w, permutations=199)
        with legacy_seed(5):
            got = binary_join_counts(y, w.sparse, permutations=199)
        expect = {"bb": ref.bb, "bw": ref.bw, "ww": ref.ww, "J": ref.J,
                  "mean_bb": ref.mean_bb, "p_sim_bb": ref.p_sim_bb}
        assert got == {k: float(v) for k, v in expect.items()}


def test_join_counts_redraw_like_esda_when_a_permuted_table_is_empty():
    # two islands: a permutation putting both 1s on them has no join from a 1, and
    # esda (chi-square on an empty margin) draws again; the same draws must follow
    neighbors = {i: [j for j in (i - 1, i + 1) if 0 <= j < 6] for i in range(6)}
    neighbors[6], neighbors[7] = [], []
    w = lpw.W(neighbors, silence_warnings=True)
    y = np.array([1, 0, 0, 0, 0, 0, 0, 1])
    with legacy_seed(2):
        ref = esda.Join_Counts(y, w, permutations=99)
    with legacy_seed(2):
        got = binary_join_counts(y, w.sparse, permutations=99)
    assert (got["bb"], got["mean_bb"], got["p_sim_bb"]) == (ref.bb, ref.mean_bb, ref.p_sim_bb)


def test_join_counts_table_equals_esda_on_a_grid():
    g = make_grid(box(0, 0, 8000, 8000), cell_size=1000, crs=CRS)
    g["layout"] = np.where((g["grid_col"] < 3) | (g["grid_row"] == 7), "building", "park")
    res = join_counts(g, "layout", permutations=99, seed=3)
    w = weights(g.reset_index(drop=True), kind="queen", transform="b")
    for row in res.table.itertuples():
        y = (g["layout"].to_numpy() == row.label).astype(int)
        with legacy_seed(3):
            ref = esda.Join_Counts(y, w, permutations=99)
        assert (row.bb, row.bw, row.ww, row.J) == (ref.bb, ref.bw, ref.ww, ref.J)
        assert (row.mean_bb, row.p_sim_bb) == (ref.mean_bb, ref.p_sim_bb)


# ---------------------------------------------------------------------------- Ripley


def test_ripley_reuses_simulations_only_for_the_same_input():
    window = box(0, 0, 5000, 3000)
    xy = np.random.default_rng(2).uniform((0, 0), (5000, 3000), (60, 2))
    kw = dict(window=window, distances=[200, 400, 800], n_sim=19)
    first = ripley(xy, seed=1, **kw)
    other = ripley(xy, seed=2, **kw)
    assert not np.array_equal(first.sim_mean, other.sim_mean)
    again = ripley(xy, seed=1, alternative="clustered", **kw)  # reuses seed 1's curves
    np.testing.assert_array_equal(again.sim_mean, first.sim_mean)
    np.testing.assert_array_equal(again.lo, first.lo)
    fresh = ripley(xy, seed=np.random.default_rng(1), alternative="clustered", **kw)
    np.testing.assert_array_equal(fresh.sim_mean, first.sim_mean)  # computed anew
    assert fresh.p == again.p
    moved = ripley(xy[:-1], seed=1, **kw)  # another pattern: other simulations
    assert not np.array_equal(moved.sim_mean, first.sim_mean)


def test_unit_rates_grid_runs_end_to_end_with_skipping():
    # the report's path: EB rates with the counts as window
    from incubloc.stats.autocorrelation import getis_ord, local_moran

    g = sparse_counts_grid(side=10)
    pts = g[g["count"] > 0].geometry.centroid
    import geopandas as gpd

    points = gpd.GeoDataFrame(geometry=pts.repeat(g.loc[g["count"] > 0, "count"].astype(int)),
                              crs=CRS)
    r = unit_rates(points, g)
    lm = local_moran(r, "rate_z", window_column="count", permutations=99, seed=1,
                     correction="none")
    gi = getis_ord(r, "rate_score", window_column="count", permutations=99, seed=1,
                   correction="none")
    empty = lm.attrs["lisa_inference"]["n_constant_window"]
    assert empty > 0
    assert np.isfinite(lm["lisa_z"]).all() and np.isfinite(gi["gi_z_sim"]).all()


def test_multiscale_profile_keeps_each_scales_moran_result():
    import dataclasses

    import geopandas as gpd

    from incubloc.stats.autocorrelation import aggregate, global_moran, multiscale_moran

    rng = np.random.default_rng(5)
    xy = np.vstack([rng.normal(3000, 600, (40, 2)), rng.uniform(0, 10_000, (40, 2))])
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=CRS)
    area = box(0, 0, 10_000, 10_000)
    prof = multiscale_moran(pts, area, cell_sizes=(1000, 2000), permutations=99, seed=4)
    grid = aggregate(pts, make_grid(area, cell_size=2000, crs=CRS), value="count")
    direct = global_moran(grid, "count", permutations=99, seed=4)
    kept = dataclasses.replace(prof.attrs["moran"][2000.0], column="count")
    assert kept == direct


# ------------------------------------------------------------------ work done aside


def _fails():
    from incubloc.errors import InputError

    raise InputError("the window has no area: give a polygon")


def test_run_aside_returns_the_value_and_raises_the_error():
    import os

    from incubloc.errors import InputError
    from incubloc.workflow import run_aside

    wait = run_aside(lambda: (os.getpid(), np.arange(5).sum()))
    pid, total = wait()
    assert total == 10
    if len(os.sched_getaffinity(0)) > 1:  # forked: computed by another process
        assert pid != os.getpid()
    with pytest.raises(InputError, match="no area"):
        run_aside(_fails)()


@pytest.mark.slow
def test_study_is_the_same_with_the_monte_carlo_steps_aside(monkeypatch):
    import json

    from incubloc import workflow
    from incubloc._results import jsonable
    from incubloc.config import resolve_config

    cfg = resolve_config({"input": {"example": "nanjing"},
                          "stats": {"permutations": 99, "n_sim": 9, "ring_edge_sim": 49,
                                    "cell_sizes_m": [10000.0, 20000.0]},
                          "density": {"by_year": False, "cell_size_m": 2000.0}})
    # every part that can run elsewhere does: the aside steps, and within the point
    # pattern step the inhomogeneous tests and the cities' rows (as for a national study)
    monkeypatch.setattr(workflow, "_SPREAD_MIN_POINTS", 0)
    aside = workflow.run_study(cfg)
    monkeypatch.setattr(workflow, "_SPREAD_MIN_POINTS", 10**9)
    monkeypatch.setattr(workflow, "run_aside", lambda task: task)  # all in this process
    here = workflow.run_study(cfg)
    assert list(aside.tests) == list(here.tests)  # same keys in the same order
    assert list(aside.tables) == list(here.tables)
    assert (json.dumps(jsonable(aside.tests), sort_keys=False)
            == json.dumps(jsonable(here.tests), sort_keys=False))
    for name, table in here.tables.items():
        assert aside.tables[name].equals(table), name
    assert set(aside.results) == set(here.results)


# ------------------------------------------------ constant risk, KDE, font subsets


@pytest.mark.parametrize("areas", ["equal", "coastal", "skewed"])
def test_constant_risk_counts_place_points_like_a_binary_search(areas):
    # Each point goes to the first unit whose cumulative share exceeds its uniform
    # draw (np.searchsorted), whatever lookup the code uses.
    from incubloc.stats.constant_risk import constant_risk_counts

    rng = np.random.default_rng(7)
    m, n, seed = 400, 60, 11
    a = {"equal": np.ones(m),
         "coastal": np.where(rng.random(m) < 0.2, rng.random(m) * 0.05 + 1e-6, 1.0),
         "skewed": rng.random(m) ** 12 + 1e-9}[areas]
    cum = np.cumsum(a / a.sum())
    cum[-1] = 1.0
    got = constant_risk_counts(a, n, permutations=300, seed=seed)
    want = np.empty((m, 300))
    for block, start in enumerate(range(0, 300, 250)):
        k = min(250, 300 - start)
        u = np.random.default_rng([seed, block]).random((250, n))[:k]
        cell = np.minimum(np.searchsorted(cum, u, side="right"), m - 1)
        for j in range(k):
            want[:, start + j] = np.bincount(cell[j], minlength=m)
    np.testing.assert_array_equal(got, want)


def test_kde_kernel_transform_is_reused_only_for_the_same_grid_and_kernel():
    # Surfaces on other grids, bandwidths and kernels in between leave a surface
    # unchanged, and each equals scipy.signal.fftconvolve of the same binned mass
    # (one point per cell centre: the mass is known).
    from scipy.signal import fftconvolve

    from incubloc.stats.density import kde

    rng = np.random.default_rng(4)
    xy = rng.normal(0, 3000, (80, 2))
    first = kde(xy, bandwidth=1500.0, cell_size=500, crs=CRS)
    kde(xy * 2, bandwidth=1500.0, cell_size=250, crs=CRS)
    kde(xy, bandwidth=3000.0, cell_size=500, crs=CRS, kernel="gaussian")
    kde(xy, bandwidth=2000.0, cell_size=500, crs=CRS)
    again = kde(xy, bandwidth=1500.0, cell_size=500, crs=CRS)
    np.testing.assert_array_equal(first.array, again.array)
    # Points at cell centres: all of a point's mass in its own cell.
    t = first.transform
    rows, cols = first.array.shape
    cells = rng.choice(rows * cols, size=30, replace=False)
    r, c = np.divmod(cells, cols)
    centres = np.column_stack([t.c + (c + 0.5) * t.a, t.f + (r + 0.5) * t.e])
    surf = kde(centres, bandwidth=1500.0, cell_size=500, crs=CRS)
    mass = np.zeros(surf.array.shape)
    t2 = surf.transform
    np.add.at(mass, (np.round((centres[:, 1] - t2.f) / t2.e - 0.5).astype(int),
                     np.round((centres[:, 0] - t2.c) / t2.a - 0.5).astype(int)), 1.0)
    off = np.arange(-3, 4) * 500.0
    d2 = off[None, :] ** 2 + off[:, None] ** 2
    kern = np.where(d2 < 1500.0**2, (1 - d2 / 1500.0**2) ** 2, 0.0)
    want = np.clip(fftconvolve(mass, kern / kern.sum(), mode="same"), 0, None)
    want *= mass.sum() / want.sum()
    np.testing.assert_allclose(surf.array * 0.25, want, rtol=1e-9, atol=1e-12)


def test_font_subsets_are_cached_with_the_same_bytes(tmp_path, monkeypatch):
    from incubloc import _fonts

    if _fonts.cjk_font_path() is None:
        pytest.skip("no CJK font")
    monkeypatch.setenv("INCUBLOC_FONT_CACHE", str(tmp_path))
    first = _fonts.subset_font("南京镇江")
    (cached,) = tmp_path.iterdir()
    assert cached.read_bytes() == first
    assert _fonts.subset_font("镇江南京") == first  # same characters, read back
    cached.write_bytes(b"from the cache")
    assert _fonts.subset_font("南京镇江") == b"from the cache"
    monkeypatch.setenv("INCUBLOC_FONT_CACHE", "off")
    assert _fonts.subset_font("南京镇江") == first  # made anew, nothing written
    assert len(list(tmp_path.iterdir())) == 1


# ------------------------------------------- figures drawn as soon as their steps end

QUICK_STATS = {"permutations": 99, "n_sim": 9, "ring_edge_sim": 49,
               "cell_sizes_m": [10000.0, 20000.0]}


def _quick_config():
    from incubloc.config import resolve_config

    return resolve_config({"input": {"example": "nanjing"}, "stats": QUICK_STATS,
                           "density": {"by_year": False, "cell_size_m": 2000.0}})


def _partial(study, steps):
    """``study`` as it is when only ``steps`` have run: every store keeps the fields
    those steps write (grids come from the autocorrelation step, surfaces from the
    density step)."""
    import dataclasses

    from incubloc import study_fields as sf

    def keep(kind, name):
        return sf.step_of(kind, name) in steps

    return dataclasses.replace(
        study,
        tables={k: v for k, v in study.tables.items() if keep("table", k)},
        tests={k: v for k, v in study.tests.items() if keep("test", k)},
        results={k: v for k, v in study.results.items() if keep("result", k)},
        grids=dict(study.grids) if "autocorrelation" in steps else {},
        surfaces=dict(study.surfaces) if "density" in steps else {},
        steps=[s for s in study.steps if s in steps], extras={})


@pytest.mark.slow
def test_each_figure_is_the_same_from_only_the_steps_it_needs(tmp_path):
    # The report draws a figure as soon as the steps in its spec's `needs` (and those
    # not run aside) are done: drawn from a study holding only their fields, every
    # figure must be byte for byte the one drawn from the finished study.
    from incubloc.shells import plot, report
    from incubloc.workflow import STEPS, run_study

    study = run_study(_quick_config())
    full = report.write_figures(study, tmp_path / "full", workers=1)
    draw = {e.name: e for e in report.figure_extras(tmp_path / "early")}
    here = {s.name for s in STEPS if not s.aside}
    assert list(draw) == [spec.name for spec in plot.FIGURES]
    for spec in plot.FIGURES:
        assert set(spec.needs) <= {s.name for s in STEPS}, spec.name
        assert draw[spec.name].needs == spec.needs
        early = draw[spec.name].run(_partial(study, here | set(spec.needs)))
        assert early.note is None and full[spec.name].note is None, spec.name
        assert early.png == full[spec.name].png, spec.name
    # and a figure does need its steps: without them it is not drawn
    assert draw["ripley"].run(_partial(study, here)).png is None
    assert draw["lisa"].run(_partial(study, here | {"point pattern"})).png is None


def test_extras_run_once_their_steps_are_done_and_see_them(monkeypatch):
    from incubloc import workflow
    from incubloc.workflow import Extra, run_study

    cfg = _quick_config()
    cfg["stats"]["cell_sizes_m"] = [20000.0]

    def look(study):
        return list(study.steps), sorted(study.tables), list(study.tests)

    every = tuple(s.name for s in workflow.STEPS[:9])
    extras = [Extra("early", ("classify", "rings"), look),
              Extra("after_ring_edge", ("ring edge",), look),
              Extra("after_all", every, look),
              Extra("never", ("factors",), look)]  # factors is not in the report
    monkeypatch.setattr(workflow, "run_aside", lambda task: task)  # steps in turn, here
    study = run_study(cfg, extras=extras)
    assert set(study.extras) == {"early", "after_ring_edge", "after_all"}
    steps, tables, _ = study.extras["early"]
    # run before any aside step: the steps run here are done, the others not yet
    assert steps == ["classify", "region", "rings", "relation and layout", "density"]
    assert "ring_table" in tables and "point_pattern" not in tables
    steps, tables, tests = study.extras["after_ring_edge"]
    assert steps == ["classify", "region", "rings", "ring edge", "relation and layout",
                     "density"]
    assert "ring_edge" in tests and "ripley" not in tests
    steps, tables, tests = study.extras["after_all"]
    assert steps == study.steps == list(every)  # every step done, in step order
    assert tests == list(study.tests)  # the stores already in step order
    assert "multiscale_moran" in tables


def test_shared_imports_come_first_and_own_imports_just_before_their_step_forks(monkeypatch):
    # Modules every aside step uses are imported before the first one forks; a
    # step's own imports (shared only with this process) just before it forks, after
    # the steps without any, so that they are made while those already run.
    import types

    from incubloc import workflow

    events = []

    def fork(task):
        events.append(("fork", task.args[0].name))
        return task  # run here, when its value is asked for

    monkeypatch.setattr(workflow, "importlib", types.SimpleNamespace(
        import_module=lambda name: events.append(("import", name))))
    monkeypatch.setattr(workflow, "run_aside", fork)
    workflow.run_study(_quick_config())
    assert events == [
        ("import", "incubloc.stats.rings"),
        ("fork", "ring edge"), ("fork", "autocorrelation"), ("fork", "location preference"),
        ("import", "rasterio.features"), ("import", "scipy.fft"), ("fork", "point pattern")]


def test_extras_values_come_back_from_the_forked_processes():
    import time

    from incubloc.processes import available_cores, can_fork
    from incubloc.workflow import Extra, run_study

    if available_cores() < 2 or not can_fork():
        pytest.skip("needs two cores and fork")
    cfg = _quick_config()
    cfg["stats"]["cell_sizes_m"] = [20000.0]
    every = ("classify", "region", "rings", "ring edge", "relation and layout",
             "point pattern", "autocorrelation", "location preference", "density")
    def slow(study):
        time.sleep(0.1)
        return os.getpid(), len(study.tables)

    extras = [Extra(f"pid{i}", every, slow) for i in range(6)]
    study = run_study(cfg, extras=extras)
    pids = {v[0] for v in study.extras.values()}
    # the last ones, all at once, over the cores: this process and a forked one
    assert len(pids) == 2 and os.getpid() in pids
    assert {v[1] for v in study.extras.values()} == {len(study.tables)}


def test_extras_run_here_stop_before_the_next_when_a_step_ends():
    from types import SimpleNamespace

    from incubloc.workflow import Extra, Step, _run_ready

    study = SimpleNamespace(steps=[], tables={}, tests={}, results={}, grids={}, surfaces={})
    ran, values = [], {}
    extras = [Extra(f"e{i}", ("a",), lambda st, i=i: ran.append(i) or i * 10) for i in range(4)]
    answers = iter([False, True])  # asked before e1 (go on), then before e2 (stop)
    left = _run_ready(study, extras, {"a": {}}, [Step("a", lambda run: None)], values,
                      spread=False, stop=lambda: next(answers))
    assert ran == [0, 1] and values == {"e0": 0, "e1": 10}
    assert [e.name for e in left] == ["e2", "e3"]  # left for the caller, in order


def test_extras_left_when_every_step_is_done_go_over_the_cores():
    # Extras that could run here from the start (they need only the classification)
    # run here while the aside steps go on; once those have all ended, the ones not
    # yet run are spread over forked processes instead of keeping one core idle.
    import time

    from incubloc.processes import available_cores, can_fork
    from incubloc.workflow import Extra, run_study

    if available_cores() < 2 or not can_fork():
        pytest.skip("needs two cores and fork")
    cfg = _quick_config()
    cfg["stats"]["cell_sizes_m"] = [20000.0]

    def slow(study):
        time.sleep(0.2)
        return os.getpid(), list(study.steps)

    extras = [Extra(f"x{i:02d}", ("classify",), slow) for i in range(30)]
    study = run_study(cfg, extras=extras)
    assert sorted(study.extras) == [e.name for e in extras]
    # run while steps were still going on: here, the first ones, in order
    early = [n for n, (_, steps) in study.extras.items() if steps != study.steps]
    assert early and len(early) < len(extras)
    assert early == [e.name for e in extras][: len(early)]
    assert {study.extras[n][0] for n in early} == {os.getpid()}
    # the others, once every step was done, over this process and a forked one
    late = {pid for n, (pid, _) in study.extras.items() if n not in early}
    assert len(late) == 2 and os.getpid() in late


def test_the_progress_bar_shows_every_step_only_when_asked(capsys):
    from incubloc.workflow import STEPS, run_study

    cfg = _quick_config()
    n = sum(s.wanted(cfg) for s in STEPS)
    run_study(cfg, progress=True)
    err = capsys.readouterr().err
    assert "incubloc" in err and f"{n}/{n}" in err
    run_study(cfg, progress=False)
    assert "incubloc:" not in capsys.readouterr().err
