"""Time incubloc against the tool an analyst would otherwise call, on the same input.

Usage (from the repository root)::

    python benchmarks/run.py --quick            # < 2 minutes, small N
    python benchmarks/run.py                    # full: N = 1e3 ... 1e6, writes RESULTS.md
    python benchmarks/run.py --only kde,pip --sizes 1000,100000

Every row runs incubloc and its peer in the same process on the same synthetic
input: clustered points (a mixture of Gaussians) in a 100 km × 100 km window of
projected metres (UTM-like coordinates, x ≈ 600 km, y ≈ 3 500 km). It reports both
times, the ratio peer / incubloc (> 1: incubloc is faster) and the agreement, the
largest difference between the two results. Peers that would take longer than
``--budget`` seconds are timed on a sample of the work and extrapolated linearly
(marked "est."); peers that cannot run at a size (memory) say so.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib.metadata as _md
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

X0, Y0, SIDE = 600_000.0, 3_500_000.0, 100_000.0
WINDOW = shapely.box(X0, Y0, X0 + SIDE, Y0 + SIDE)
CRS = 32650
HERE = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------ data


def clustered(n: int, *, seed: int = 0, k: int = 40) -> np.ndarray:
    """n points from a mixture of k Gaussians (sd 0.5–6 km), clipped to the window."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([X0 + 5e3, Y0 + 5e3], [X0 + SIDE - 5e3, Y0 + SIDE - 5e3], (k, 2))
    sd = rng.uniform(500.0, 6000.0, k)
    weight = rng.dirichlet(np.full(k, 2.0))
    out = np.empty((0, 2))
    while len(out) < n:  # redraw the few that fall outside
        m = int((n - len(out)) * 1.1) + 10
        comp = rng.choice(k, m, p=weight)
        pts = centres[comp] + rng.normal(size=(m, 2)) * sd[comp, None]
        inside = (pts >= [X0, Y0]).all(axis=1) & (pts < [X0 + SIDE, Y0 + SIDE]).all(axis=1)
        out = np.vstack([out, pts[inside]])
    return out[:n]


def voronoi_polygons(n: int, *, seed: int = 1) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    seeds = shapely.multipoints(rng.uniform([X0, Y0], [X0 + SIDE, Y0 + SIDE], (n, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=WINDOW))
    cells = shapely.intersection(cells, WINDOW)
    return gpd.GeoDataFrame({"zone": np.arange(len(cells))}, geometry=cells, crs=CRS)


def sites_and_buildings(n_sites: int, n_buildings: int, *, seed: int = 2):
    rng = np.random.default_rng(seed)
    c = clustered(n_sites, seed=seed)
    half = rng.uniform(50.0, 200.0, n_sites)
    sites = shapely.box(c[:, 0] - half, c[:, 1] - half, c[:, 0] + half, c[:, 1] + half)
    b = clustered(n_buildings, seed=seed + 1)
    # about a third of the buildings inside some site
    k = n_buildings // 3
    pick = rng.integers(0, n_sites, k)
    b[:k] = c[pick] + rng.uniform(-1, 1, (k, 2)) * half[pick, None]
    w, h = rng.uniform(5.0, 20.0, (2, n_buildings))
    buildings = shapely.box(b[:, 0] - w, b[:, 1] - h, b[:, 0] + w, b[:, 1] + h)
    return (
        gpd.GeoDataFrame(geometry=sites, crs=CRS),
        gpd.GeoDataFrame(geometry=buildings, crs=CRS),
    )


# ---------------------------------------------------------------------------- timing


@dataclass
class Row:
    task: str
    n: str
    incubloc_s: float
    peer: str
    peer_s: float | None
    agreement: str
    note: str = ""
    estimated: bool = False
    incubloc_rss_mb: float | None = None  # peak RSS of the process that did the work
    peer_rss_mb: float | None = None

    def cells(self) -> list[str]:
        peer_s = "—" if self.peer_s is None else _fmt_s(self.peer_s, self.estimated)
        ratio = "—"
        if self.peer_s is not None and self.incubloc_s > 0:
            ratio = f"{self.peer_s / self.incubloc_s:,.1f}×" + (" est." if self.estimated else "")
        return [
            self.task,
            self.n,
            _fmt_s(self.incubloc_s),
            self.peer,
            peer_s,
            ratio,
            self.agreement,
            _fmt_mb(self.incubloc_rss_mb),
            _fmt_mb(self.peer_rss_mb),
            self.note,
        ]


def _fmt_mb(mb: float | None) -> str:
    return "—" if mb is None else f"{mb:,.0f}"


def _fmt_s(s: float, est: bool = False) -> str:
    txt = f"{s:.3g}" if s < 100 else f"{s:,.0f}"
    return f"≈ {txt} (est.)" if est else txt


def timed(fn: Callable[[], Any], *, repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _reps(seconds_hint: float) -> int:
    return 3 if seconds_hint < 0.5 else 1


# --------------------------------------------------------------------------------- KDE

KDE_H = 1000.0  # metres (Gaussian standard deviation)
KDE_CELL = 100.0  # 1000 × 1000 cells over the window


def _direct_gaussian(xy: np.ndarray, q: np.ndarray, h: float, block: int = 2000) -> np.ndarray:
    """Exact Σ exp(−d²/2h²)/(2πh²) / n at query points q (per m²), in blocks."""
    out = np.empty(len(q))
    for s in range(0, len(q), block):
        d2 = ((q[s : s + block, None, :] - xy[None, :, :]) ** 2).sum(-1)
        out[s : s + block] = np.exp(-d2 / (2 * h * h)).sum(1)
    return out / (2 * np.pi * h * h * len(xy))


def bench_kde(sizes: list[int], budget: float, quick: bool) -> list[Row]:
    from scipy.stats import gaussian_kde
    from sklearn.neighbors import KernelDensity

    from incubloc.stats.density import kde

    class IsotropicKDE(gaussian_kde):
        """gaussian_kde with the kernel covariance h² I (scipy's own is the data's)."""

        def __init__(self, data: np.ndarray, h: float) -> None:
            self._h = h
            super().__init__(data)

        def _compute_covariance(self) -> None:
            self.factor = 1.0
            self.covariance = np.eye(2) * self._h**2
            self.cho_cov = np.eye(2) * self._h
            self.log_det = 2 * np.log(np.diag(self.cho_cov * np.sqrt(2 * np.pi))).sum()

    rows: list[Row] = []
    centres = np.arange(KDE_CELL / 2, SIDE, KDE_CELL)
    g = len(centres)
    for n in sizes:
        xy = clustered(n)
        t_inc, surf = timed(
            lambda xy=xy: kde(
                xy,
                area=WINDOW,
                kernel="gaussian",
                bandwidth=KDE_H,
                cell_size=KDE_CELL,
                normalize="density",
            ),
            repeat=3,
        )
        # incubloc's grid is the window plus the kernel's reach: pick the window's cells
        inv = ~surf.transform
        col0, row0 = (int(round(v)) for v in inv * (X0, Y0 + SIDE))
        mine = surf.array[row0 : row0 + g, col0 : col0 + g] / 1e6  # per m²
        rng = np.random.default_rng(5)
        sample = 1000 if quick else int(np.clip(4e8 / n, 300, 4000))
        flat = rng.choice(g * g, sample, replace=False)
        r_i, c_i = np.divmod(flat, g)
        q = np.column_stack([X0 + centres[c_i], Y0 + SIDE - centres[r_i]])
        mine_q = mine[r_i, c_i]
        frac = g * g / sample

        t_ref, ref = timed(lambda xy=xy, q=q: _direct_gaussian(xy, q, KDE_H))
        peak = ref.max()

        def agree(vals: np.ndarray, ref: np.ndarray = ref, peak: float = peak) -> str:
            return f"{np.abs(vals - ref).max() / peak:.2%} of peak"

        label = f"{g}×{g} grid, {KDE_CELL:g} m cells, h = {KDE_H:g} m"
        rows.append(
            Row(
                "KDE (Gaussian)",
                f"{n:.0e}",
                t_inc,
                "exact direct sum (NumPy)",
                t_ref * frac,
                agree(mine_q),
                f"{label}; peers timed on {sample} random cells ×{frac:,.0f}",
                estimated=True,
            )
        )
        t, vals = timed(lambda xy=xy, q=q: IsotropicKDE(xy.T, KDE_H)(q.T))
        rows.append(
            Row(
                "KDE (Gaussian)",
                f"{n:.0e}",
                t_inc,
                "scipy.stats.gaussian_kde",
                t * frac,
                f"{agree(mine_q)} (peer vs exact {agree(vals)})",
                "kernel covariance set to h² I",
                estimated=True,
            )
        )
        for rtol, name in ((0.0, "exact"), (1e-4, "rtol 1e-4")):
            kd = KernelDensity(kernel="gaussian", bandwidth=KDE_H, rtol=rtol)
            t, vals = timed(lambda kd=kd, xy=xy, q=q: np.exp(kd.fit(xy).score_samples(q)))
            rows.append(
                Row(
                    "KDE (Gaussian)",
                    f"{n:.0e}",
                    t_inc,
                    f"sklearn KernelDensity ({name})",
                    t * frac,
                    f"{agree(mine_q)} (peer vs exact {agree(vals)})",
                    "",
                    estimated=True,
                )
            )
        rows += _kdepy_rows(xy, n, t_inc, g, ref, r_i, c_i, peak)
    return rows


def _kdepy_rows(xy, n, t_inc, g, ref, r_i, c_i, peak) -> list[Row]:
    try:
        from KDEpy import FFTKDE
    except ImportError:
        return [
            Row("KDE (Gaussian)", f"{n:.0e}", t_inc, "KDEpy FFTKDE", None, "—", "not installed")
        ]
    # KDEpy needs a grid strictly containing the data: the window's cell centres
    # padded by 4 h, as incubloc's own grid is.
    pad = int(4 * KDE_H / KDE_CELL) + 1
    ax = np.arange(-pad, g + pad) * KDE_CELL + KDE_CELL / 2
    gx, gy = np.meshgrid(X0 + ax, Y0 + ax, indexing="ij")
    grid = np.column_stack([gx.ravel(), gy.ravel()])

    rows = []
    for scale, unit in ((1.0, "m"), (1000.0, "km")):

        def run(scale: float = scale) -> np.ndarray:
            fit = FFTKDE(kernel="gaussian", bw=KDE_H / scale).fit(xy / scale)
            return fit.evaluate(grid / scale) / scale**2

        try:
            t, vals = timed(run)
        except Exception as exc:  # report whatever the peer raises
            rows.append(
                Row(
                    "KDE (Gaussian)",
                    f"{n:.0e}",
                    t_inc,
                    f"KDEpy FFTKDE ({unit})",
                    None,
                    "—",
                    f"failed: {exc}",
                )
            )
            continue
        m = len(ax)
        arr = vals.reshape(m, m)  # [ix, iy]
        kq = arr[pad + c_i, pad + (g - 1 - r_i)]
        mass = vals.sum() * KDE_CELL**2
        note = f"coordinates in {unit}: the kernel keeps {mass:.1%} of its mass" + (
            " (silently truncated: see README)" if mass < 0.99 else ""
        )
        rows.append(
            Row(
                "KDE (Gaussian)",
                f"{n:.0e}",
                t_inc,
                f"KDEpy FFTKDE ({unit})",
                t,
                f"peer vs exact {np.abs(kq - ref).max() / peak:.2%} of peak",
                note,
            )
        )
    return rows


# -------------------------------------------------------------------------- Ripley K

K_DISTANCES = np.linspace(100.0, 5000.0, 50)


def bench_ripley(sizes: list[int], budget: float, quick: bool) -> list[Row]:
    from scipy.spatial import cKDTree

    import incubloc.stats.pointpattern as pp
    from incubloc.stats.pointpattern import ripley

    rows: list[Row] = []
    area = WINDOW.area
    # the first call in a process compiles (or loads) the numba kernel: not timed
    ripley(clustered(5000), window=WINDOW, distances=K_DISTANCES, n_sim=0,
           edge_correction="none")
    for n in sizes:
        xy = clustered(n)
        c0 = time.process_time()
        t_inc, res = timed(
            lambda xy=xy: ripley(
                xy, window=WINDOW, distances=K_DISTANCES, n_sim=0, edge_correction="none"
            ),
            repeat=_reps(n / 1e5),
        )
        cpu = (time.process_time() - c0) / _reps(n / 1e5)
        pairs = res.K * n * (n - 1) / area  # ordered pairs with d <= r

        def tree_count(xy: np.ndarray = xy) -> np.ndarray:
            tree = cKDTree(xy)
            return tree.count_neighbors(tree, K_DISTANCES) - len(xy)

        note = (f"50 distances 0.1–5 km, no edge correction; {pairs[-1] / 2:,.0f} pairs ≤ 5 km; "
                f"{'compiled (numba)' if pp._compiled_kernel() else 'NumPy'} pair count, "
                f"CPU {cpu:.2f} s per run")
        if n <= 200_000:
            t, ref = timed(tree_count, repeat=_reps(n / 1e5))
            rows.append(
                Row(
                    "Ripley's K",
                    f"{n:.0e}",
                    t_inc,
                    "scipy cKDTree.count_neighbors",
                    t,
                    f"max |Δ pair count| = {np.abs(pairs - ref).max():.0f}",
                    note,
                )
            )
        else:
            rows.append(
                Row(
                    "Ripley's K",
                    f"{n:.0e}",
                    t_inc,
                    "scipy cKDTree.count_neighbors",
                    None,
                    "—",
                    note + f"; peer not run above 2e5 (budget {budget:g} s)",
                )
            )
        if n <= 10_000:
            from pointpats import distance_statistics as ds

            t, (_, kpp) = timed(lambda xy=xy: ds.k(xy, support=K_DISTANCES))
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            bbox = float(np.prod(hi - lo))  # pointpats' default "hull" is the bounding box
            pp_pairs = kpp * n * n / bbox  # ordered pairs with d < r
            rows.append(
                Row(
                    "Ripley's K",
                    f"{n:.0e}",
                    t_inc,
                    "pointpats.k",
                    t,
                    f"max |Δ pair count| = {np.abs(pairs - pp_pairs).max():.0f}",
                    "pointpats: d < r, bounding-box area, n² (pair counts compared)",
                )
            )
        else:
            rows.append(
                Row(
                    "Ripley's K",
                    f"{n:.0e}",
                    t_inc,
                    "pointpats.k",
                    None,
                    "—",
                    f"not run: pdist needs n²/2 = {n * n / 2:.1e} distances "
                    f"(+ a 50 × that boolean array)",
                )
            )
        if pp._FAST_K_MIN_N <= n <= 100_000:
            # the pre-existing path (all pairs at once) for the record
            saved = pp._FAST_K_MIN_N
            pp._FAST_K_MIN_N = sys.maxsize
            try:
                t, old = timed(
                    lambda xy=xy: ripley(
                        xy, window=WINDOW, distances=K_DISTANCES, n_sim=0, edge_correction="none"
                    )
                )
            finally:
                pp._FAST_K_MIN_N = saved
            rows.append(
                Row(
                    "Ripley's K",
                    f"{n:.0e}",
                    t_inc,
                    "incubloc, all pairs at once (query_pairs)",
                    t,
                    f"max |ΔK|/K = {np.nanmax(np.abs(old.K - res.K) / res.K):.1e}",
                    f"holds {pairs[-1] / 2:,.0f} pairs in memory",
                )
            )
        if pp._FAST_K_MIN_N <= n <= 100_000:
            kw = dict(window=WINDOW, distances=K_DISTANCES, n_sim=0, edge_correction="ripley")
            t_iso, iso = timed(lambda xy=xy, kw=kw: ripley(xy, **kw))
            if n <= 10_000:
                saved = pp._FAST_K_MIN_N
                pp._FAST_K_MIN_N = sys.maxsize
                try:
                    t, old = timed(lambda xy=xy, kw=kw: ripley(xy, **kw))
                finally:
                    pp._FAST_K_MIN_N = saved
                peer_s, agreement = (
                    t,
                    f"max |ΔK|/K = {np.nanmax(np.abs(old.K - iso.K) / iso.K):.1e}",
                )
                note = "isotropic edge correction"
            else:
                peer_s, agreement = None, "—"
                note = "isotropic edge correction; all-pairs path not run (memory)"
            rows.append(
                Row(
                    "Ripley's K (isotropic)",
                    f"{n:.0e}",
                    t_iso,
                    "incubloc, all pairs at once (query_pairs)",
                    peer_s,
                    agreement,
                    note,
                )
            )
    return rows


# --------------------------------------------------------------------------------- LISA


def bench_lisa(sizes: list[int], budget: float, quick: bool) -> list[Row]:
    import esda
    from libpysal.weights import KNN

    from incubloc.stats.autocorrelation import local_moran

    perms = 99 if quick else 999
    rows: list[Row] = []
    for n in sizes:
        xy = clustered(n, seed=3)
        rng = np.random.default_rng(4)
        y = np.sin((xy[:, 0] - X0) / 8000) + np.cos((xy[:, 1] - Y0) / 11000) + rng.normal(0, 1, n)
        g = gpd.GeoDataFrame({"v": y}, geometry=gpd.points_from_xy(*xy.T), crs=CRS)
        w = KNN.from_array(xy, k=8)
        w.transform = "r"
        t_inc, out = timed(lambda g=g, w=w: local_moran(g, "v", w=w, permutations=perms, seed=0,
                                                        correction="none"))

        def peer(y: np.ndarray = y, w: Any = w) -> Any:
            kw = {"keep_simulations": False}
            try:
                return esda.Moran_Local(
                    y, w, transformation="r", permutations=perms, seed=0, n_jobs=1, **kw
                )
            except TypeError:  # older esda without keep_simulations
                return esda.Moran_Local(
                    y, w, transformation="r", permutations=perms, seed=0, n_jobs=1
                )

        t, lm = timed(peer)
        d_i = np.abs(out["lisa_I"].to_numpy() - lm.Is).max()
        d_p = np.abs(out["lisa_p"].to_numpy() - lm.p_sim).max()
        rows.append(
            Row(
                "Local Moran (LISA)",
                f"{n:.0e}",
                t_inc,
                "esda.Moran_Local (keep_simulations=False)",
                t,
                f"max |ΔI| = {d_i:.1e}, max |Δp| = {d_p:.1e}",
                f"KNN(8), {perms} permutations, n_jobs=1; continuous values: every unit "
                "is its own permutation group; p differ by design (tie-aware)",
            )
        )
    return rows


# ----------------------------------------------------- local Moran / Gi* on a lattice


def bench_local(sizes: list[int], budget: float, quick: bool) -> list[Row]:
    """Local Moran and Gi* on a square lattice of sparse counts (the grid use case)."""
    import esda
    from libpysal.weights import lat2W

    from incubloc.stats.autocorrelation import getis_ord, local_moran

    try:
        import numba  # noqa: F401

        compiled = "esda with numba"
    except ImportError:
        compiled = "esda without numba (pure-Python loop)"
    perms = 99 if quick else 999
    rows: list[Row] = []
    for n in sizes:
        side = int(round(np.sqrt(n)))
        xy = clustered(max(200, n // 50), seed=5)  # about one point per 50 cells
        counts, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=side,
                                      range=[[Y0, Y0 + SIDE], [X0, X0 + SIDE]])
        y = counts.ravel()  # row-major, as lat2W numbers the cells
        w = lat2W(side, side, rook=False)
        g = gpd.GeoDataFrame({"v": y}, geometry=gpd.points_from_xy(
            np.tile(np.arange(side), side), np.repeat(np.arange(side), side)), crs=CRS)
        kw = {"w": w, "permutations": perms, "seed": 0, "correction": "none"}
        t_inc, out = timed(lambda g=g, kw=kw: getis_ord(local_moran(g, "v", **kw), "v", **kw))

        def peer(y: np.ndarray = y, w: Any = w) -> Any:
            lm = esda.Moran_Local(y, w, transformation="r", permutations=perms, seed=0,
                                  n_jobs=1, keep_simulations=False)
            gl = esda.G_Local(y, w, transform="B", star=True, permutations=perms, seed=0,
                              n_jobs=1, keep_simulations=False)
            return lm, gl

        t, (lm, gl) = timed(peer)
        d_i = np.abs(out["lisa_I"].to_numpy() - lm.Is).max()
        d_g = np.abs(out["gi_z"].to_numpy() - gl.Zs).max()
        rows.append(Row(
            "local Moran / Gi* at 1e5 units vs esda" if n == 100_000 else "local Moran / Gi*",
            f"{side * side:.0e}", t_inc, f"esda.Moran_Local + G_Local ({compiled})", t,
            f"max |ΔI| = {d_i:.1e}, max |Δz(Gi*)| = {d_g:.1e}; p differ by design",
            f"queen lattice {side}×{side}, {int(y.sum())} points, {perms} permutations, "
            "n_jobs=1; incubloc: tie-aware p, draws independent of row order",
        ))
    return rows


# ------------------------------------------------------------------------ point in polygon


def _first_match_sjoin(points: gpd.GeoDataFrame, polys: gpd.GeoDataFrame) -> np.ndarray:
    j = gpd.sjoin(points, polys[["geometry"]], how="left", predicate="intersects")
    pos = j["index_right"].fillna(-1).astype(np.int64)
    best = pos.groupby(level=0).agg(lambda s: s[s >= 0].min() if (s >= 0).any() else -1)
    return best.reindex(points.index).to_numpy()


def _first_match_sjoin_fast(points: gpd.GeoDataFrame, polys: gpd.GeoDataFrame) -> np.ndarray:
    j = gpd.sjoin(points, polys[["geometry"]], how="inner", predicate="intersects")
    out = np.full(len(points), -1, dtype=np.int64)
    first = j["index_right"].groupby(level=0).min()
    out[first.index.to_numpy()] = first.to_numpy()
    return out


def bench_pip(sizes: list[int], budget: float, quick: bool) -> list[Row]:
    from incubloc.parallel import assign_polygons_dask, points_in_polygons

    n_poly = 300 if quick else 3000
    polys = voronoi_polygons(n_poly)
    rows: list[Row] = []
    for n in sizes:
        xy = clustered(n, seed=6)
        pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=CRS)
        t_inc, mine = timed(lambda xy=xy: points_in_polygons(xy, polys), repeat=_reps(n / 2e5))
        t, ref = timed(lambda pts=pts: _first_match_sjoin_fast(pts, polys), repeat=_reps(n / 2e5))
        rows.append(
            Row(
                "Point in polygon",
                f"{n:.0e}",
                t_inc,
                "geopandas.sjoin (+ first match)",
                t,
                f"{int((mine != ref).sum())} of {n} points differ",
                f"{len(polys)} Voronoi polygons; incubloc from coordinates, sjoin from a "
                "ready GeoDataFrame",
            )
        )
        t2, mine2 = timed(lambda pts=pts: points_in_polygons(pts, polys), repeat=_reps(n / 2e5))
        rows.append(
            Row(
                "Point in polygon",
                f"{n:.0e}",
                t2,
                "geopandas.sjoin (+ first match)",
                t,
                f"{int((mine2 != ref).sum())} of {n} points differ",
                "both from the same GeoDataFrame",
            )
        )
        try:
            import dask.dataframe as dd
            import dask_geopandas  # noqa: F401 - registers the GeoDataFrame collection
        except ImportError:
            rows.append(
                Row(
                    "PIP, Dask path",
                    f"{n:.0e}",
                    float("nan"),
                    "in-memory path",
                    None,
                    "—",
                    "dask / dask-geopandas not installed",
                )
            )
            continue
        frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]})
        ddf = dd.from_pandas(frame, npartitions=max(2, n // 250_000))
        t_d, dres = timed(
            lambda ddf=ddf: assign_polygons_dask(ddf, polys, x="x", y="y").compute(
                scheduler="threads"
            )
        )
        rows.append(
            Row(
                "PIP, Dask path",
                f"{n:.0e}",
                t_d,
                "in-memory points_in_polygons",
                t_inc,
                f"{int((dres['polygon'].to_numpy() != mine).sum())} of {n} points differ",
                f"{ddf.npartitions} partitions, threaded scheduler "
                "(ratio < 1: Dask overhead on data that fits in memory)",
            )
        )
    return rows


def bench_buildings(pairs: list[tuple[int, int]], budget: float, quick: bool) -> list[Row]:
    from incubloc.parallel import footprints_in_polygons

    rows: list[Row] = []
    for n_b, n_s in pairs:
        sites, buildings = sites_and_buildings(n_s, n_b)

        def mine(b: gpd.GeoDataFrame = buildings, s: gpd.GeoDataFrame = sites) -> np.ndarray:
            pos = footprints_in_polygons(b, s)
            return np.bincount(pos[pos >= 0], minlength=len(s))

        def peer(b: gpd.GeoDataFrame = buildings, s: gpd.GeoDataFrame = sites) -> np.ndarray:
            rep = gpd.GeoDataFrame(geometry=b.representative_point())
            first = _first_match_sjoin_fast(rep, s)
            return np.bincount(first[first >= 0], minlength=len(s))

        t_inc, a = timed(mine)
        t, b = timed(peer)
        rows.append(
            Row(
                "Buildings in sites",
                f"{n_b:.0e} × {n_s:.0e}",
                t_inc,
                "geopandas.sjoin (representative points)",
                t,
                f"max |Δ count| = {np.abs(a - b).max()}",
                "building counted in the first site holding its representative point "
                "(the layout rule); both times include the representative points",
            )
        )
        t3, _ = timed(
            lambda b=buildings, s=sites: gpd.sjoin(b, s, how="inner", predicate="intersects")
        )
        rows.append(
            Row(
                "Buildings in sites",
                f"{n_b:.0e} × {n_s:.0e}",
                t_inc,
                "geopandas.sjoin (footprints intersect)",
                t3,
                "— (other rule)",
                "the plain polygon–polygon join, for orientation",
            )
        )
    return rows


# ------------------------------------------------------------------------------ report


HEADER = [
    "task",
    "N",
    "incubloc (s)",
    "peer",
    "peer (s)",
    "peer / incubloc",
    "agreement",
    "incubloc peak RSS (MB)",
    "peer peak RSS (MB)",
    "note",
]


def _versions() -> str:
    names = [
        "incubloc", "numpy", "scipy", "shapely", "geopandas", "scikit-learn", "pointpats",
        "esda", "libpysal", "KDEpy", "dask", "dask-geopandas",
    ]  # fmt: skip
    out = []
    for name in names:
        try:
            out.append(f"{name} {_md.version(name)}")
        except _md.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def to_markdown(rows: list[Row], args: argparse.Namespace, seconds: float) -> str:
    lines = [
        "# incubloc benchmarks",
        "",
        f"Generated {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC by "
        f"`python benchmarks/run.py {' '.join(sys.argv[1:])}` in {seconds:,.0f} s.",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.system()}.",
        f"Versions: {_versions()}.",
        "",
        "Times are wall-clock seconds (best of up to three runs for fast cases). "
        "`est.` = the peer was timed on a sample of the work and scaled linearly. "
        "Ratio > 1: incubloc is faster.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
    ]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines) + "\n"


BENCHES = ("kde", "ripley", "lisa", "local", "pip", "buildings", "read", "classify", "report",
           "national", "help")
# Whole-command rows (benchmarks/command_rows.py): each runs in child processes so that
# peak RSS is that of the work alone; they take no --sizes.
COMMAND_BENCHES = ("read", "classify", "report", "national", "help")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    ap.add_argument(
        "--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES)
    )
    ap.add_argument("--sizes", help="comma-separated N (overrides the defaults)")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds a peer may take")
    ap.add_argument("--out", help="Markdown file (default benchmarks/RESULTS[_quick].md)")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(BENCHES)
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    user = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else None
    if args.quick:
        sizes = {
            "kde": [1_000, 10_000],
            "ripley": [1_000, 10_000],
            "lisa": [1_000],
            "local": [10_000],
            "pip": [10_000, 100_000],
        }
        bpairs = [(100_000, 1_000)]
    else:
        sizes = {
            "kde": [1_000, 10_000, 100_000, 1_000_000],
            "ripley": [1_000, 10_000, 100_000],
            "lisa": [1_000, 10_000, 100_000],
            "local": [100_000],
            "pip": [1_000, 10_000, 100_000, 1_000_000],
        }
        bpairs = [(1_000_000, 10_000)]
    if user:
        sizes = {k: user for k in sizes}
    out = (
        Path(args.out) if args.out else HERE / ("RESULTS_quick.md" if args.quick else "RESULTS.md")
    )
    rows: list[Row] = []
    start = time.perf_counter()
    for name in only:
        t = time.perf_counter()
        print(f"[{name}] ...", flush=True)
        try:
            if name == "buildings":
                rows += bench_buildings(bpairs, args.budget, args.quick)
            elif name in COMMAND_BENCHES:
                import command_rows

                rows += getattr(command_rows, f"bench_{name}")(Row, args.quick)
            else:
                fn = globals()[f"bench_{name}"]
                rows += fn(sizes[name], args.budget, args.quick)
        except Exception:  # keep the other rows
            traceback.print_exc()
            rows.append(Row(name, "—", float("nan"), "—", None, "—", "failed: see log"))
        print(f"[{name}] {time.perf_counter() - t:.1f} s", flush=True)
        # write as we go, so a long run leaves a partial table
        out.write_text(to_markdown(rows, args, time.perf_counter() - start), encoding="utf-8")
    text = to_markdown(rows, args, time.perf_counter() - start)
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
