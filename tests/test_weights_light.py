"""Weights, global Moran and EB rates computed without esda / libpysal, against them.

On the versions matched here (esda 2.9.0, libpysal 4.14.1) the numbers are compared
bit for bit; on other versions (Debian's QGIS stack) to 1e-12 relative.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import esda
import geopandas as gpd
import libpysal
import numpy as np
import pytest
import shapely
from esda.smoothing import Empirical_Bayes, assuncao_rate
from libpysal import weights as lpw
from shapely.geometry import MultiPolygon, Polygon, box

from incubloc.stats.autocorrelation import (
    assuncao_reis_rate,
    empirical_bayes_rate,
    global_moran,
    join_counts,
    light_weights,
    make_grid,
    weights,
)
from incubloc.stats.sparse_weights import SparseWeights, knn_pairs, queen_pairs

CRS = 32650
EXACT = (esda.__version__, libpysal.__version__) == ("2.9.0", "4.14.1")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:esda.*"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:esda.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:The weights matrix is not fully connected:UserWarning"),
]


def same(a, b):
    """Equal bit for bit where the versions were matched, else to 1e-12."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if EXACT:
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def same_csr(ours, theirs):
    ours, theirs = ours.tocsr(), theirs.tocsr()
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    same(ours.data, theirs.data)


def neighbour_sets(lw: SparseWeights):
    out = {k: set() for k in range(lw.n)}
    for i, j in zip(lw.rows.tolist(), lw.cols.tolist(), strict=True):
        out[i].add(j)
    return out


def libpysal_queen(units):
    """Today's reference: Queen.from_dataframe, islands attached by KNN(k=1)."""
    w = lpw.Queen.from_dataframe(units, use_index=False, silence_warnings=True)
    if w.islands:
        cent = shapely.get_coordinates(units.geometry.centroid.to_numpy())
        w = lpw.attach_islands(w, lpw.KNN(cent, k=1), silence_warnings=True)
    return w


def libpysal_sparse(w, transform):
    w.transform = transform
    return w.sparse


# ------------------------------------------------------------------ hand-built polygons

# a b       a 2 × 2 block: every pair shares at least the centre vertex
# c d   e   e touches d at the single corner (2, 0); f lies far away (an island)
HAND = gpd.GeoDataFrame(
    geometry=[
        box(0, 1, 1, 2), box(1, 1, 2, 2),  # a b
        box(0, 0, 1, 1), box(1, 0, 2, 1),  # c d
        box(2, -1, 3, 0),                  # e: corner (2, 0) of d
        box(9, 9, 10, 10),                 # f: island, nearest centroid is b's
    ],
    crs=CRS,
)
HAND_NEIGHBOURS = {0: {1, 2, 3}, 1: {0, 2, 3, 5}, 2: {0, 1, 3}, 3: {0, 1, 2, 4},
                   4: {3}, 5: {1}}


def test_queen_on_hand_built_polygons():
    lw = light_weights(HAND)
    assert neighbour_sets(lw) == HAND_NEIGHBOURS
    ref = libpysal_queen(HAND)
    assert {k: set(v) for k, v in ref.neighbors.items()} == HAND_NEIGHBOURS
    for t in ("r", "b"):
        same_csr(lw.sparse(t), libpysal_sparse(ref, t))
    # row-standardised values are 1 / cardinality, rows sorted by column
    r = lw.sparse("r")
    assert r[1].toarray().ravel().tolist() == [0.25, 0, 0.25, 0.25, 0, 0.25]
    # the public weights() is a libpysal W with these neighbours
    assert {k: set(v) for k, v in weights(HAND).neighbors.items()} == HAND_NEIGHBOURS


def test_edge_without_common_vertex_is_no_queen_neighbour():
    """libpysal's rule, kept: neighbours share a vertex; a T-junction along an edge
    without one is not a neighbour (here the strip is an island, attached)."""
    units = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(-1, -1, 3, 0)],
                             crs=CRS)
    i, j = queen_pairs(units.geometry.to_numpy())
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (1, 0)]
    same_csr(light_weights(units).sparse("r"), libpysal_sparse(libpysal_queen(units), "r"))


def test_holes_multipolygons_and_mutual_islands_as_libpysal():
    donut = Polygon([(0, 0), (6, 0), (6, 6), (0, 6)], [[(2, 2), (4, 2), (4, 4), (2, 4)]])
    units = gpd.GeoDataFrame(
        geometry=[
            donut,
            box(2, 2, 4, 4),  # fills the hole: shares the hole's vertices
            MultiPolygon([box(6, 0, 7, 1), box(20, 0, 21, 1)]),  # touches the donut
            box(40, 40, 41, 41), box(42, 40, 43, 41),  # two islands, nearest to each other
        ],
        crs=CRS,
    )
    lw = light_weights(units)
    assert neighbour_sets(lw)[1] == {0}
    assert neighbour_sets(lw)[2] == {0}
    assert neighbour_sets(lw)[3] == {4}
    ref = libpysal_queen(units)
    for t in ("r", "b"):
        same_csr(lw.sparse(t), libpysal_sparse(ref, t))


def test_random_polygons_as_libpysal_queen():
    rng = np.random.default_rng(3)
    # shared vertices of a Voronoi tessellation, plus rounded coordinates (ties)
    pts = shapely.points(np.round(rng.uniform(0, 1e4, (250, 2)), -1))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts)))
    cells = shapely.intersection(cells, box(0, 0, 1e4, 1e4))
    units = gpd.GeoDataFrame(geometry=np.append(cells, box(3e4, 0, 3.1e4, 1e3)), crs=CRS)
    lw = light_weights(units)
    ref = libpysal_queen(units)
    assert neighbour_sets(lw) == {k: set(v) for k, v in ref.neighbors.items()}
    for t in ("r", "b"):
        same_csr(lw.sparse(t), libpysal_sparse(ref, t))


# ----------------------------------------------------------------------------- grids


@pytest.mark.parametrize("shape", ["square", "hex"])
@pytest.mark.parametrize("kind", ["queen", "rook"])
def test_clipped_grids_as_libpysal_w_of_the_same_pairs(shape, kind):
    # a coast: a disc with a detached islet (a grid island)
    land = shapely.union_all([shapely.Point(0, 0).buffer(6000), box(9000, 0, 9500, 500)])
    grid = make_grid(land, cell_size=1000, shape=shape, crs=CRS)
    lw = light_weights(grid, kind=kind)
    assert not len(lw.islands)
    row, col = grid["grid_row"].to_numpy(), grid["grid_col"].to_numpy()
    if shape == "square":  # lattice neighbours, brute force
        dr, dc = np.abs(row[:, None] - row), np.abs(col[:, None] - col)
        near = (np.maximum(dr, dc) == 1) if kind == "queen" else (dr + dc == 1)
        want = {k: set(np.flatnonzero(near[k]).tolist()) for k in range(len(grid))}
        islet = int(np.flatnonzero(grid.geometry.centroid.x.to_numpy() > 8500)[0])
        assert want[islet] == set()
        got = neighbour_sets(lw)
        assert len(got[islet]) == 1
        nb = got[islet].pop()
        want[islet], want[nb] = {nb}, want[nb] | {islet}
        assert neighbour_sets(lw) == want
    ref = lpw.W({k: sorted(v) for k, v in neighbour_sets(lw).items()},
                id_order=list(range(len(grid))), silence_warnings=True)
    for t in ("r", "b"):
        same_csr(lw.sparse(t), libpysal_sparse(ref, t))
        same_csr(lw.sparse(t), libpysal_sparse(weights(grid, kind=kind), t))


def test_knn_and_symmetrised_as_libpysal():
    rng = np.random.default_rng(1)
    xy = np.round(rng.uniform(0, 50, (400, 2)))  # many equal distances
    xy[:12] = xy[0]  # coincident points
    for k in (1, 6):
        i, j = knn_pairs(xy, k)
        ref = lpw.KNN(xy, k=k, silence_warnings=True)
        ours = SparseWeights.from_pairs(i, j, len(xy))
        assert [set(ref.neighbors[a]) for a in range(len(xy))] == \
            [set(v) for v in neighbour_sets(ours).values()]
        sym = ref.symmetrize()
        sym.transform = "b"
        same_csr(ours.symmetrised().sparse("b"), sym.sparse)


def test_join_counts_on_points_as_esda_on_libpysal_knn():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 5000, (150, 2))
    lab = np.where(xy[:, 0] < 2000, "building", "park")
    pts = gpd.GeoDataFrame({"layout": lab}, geometry=gpd.points_from_xy(*xy.T), crs=CRS)
    res = join_counts(pts, "layout", value="building", permutations=99, seed=4)
    w = lpw.KNN(xy, k=6, silence_warnings=True).symmetrize()
    w.transform = "b"
    np.random.seed(4)  # noqa: NPY002 -- esda's draws
    ref = esda.Join_Counts((lab == "building").astype(int), w, permutations=99)
    row = res.table.iloc[0]
    assert (row["bb"], row["bw"], row["J"]) == (ref.bb, ref.bw, ref.J)
    assert row["p_sim_bb"] == pytest.approx(ref.p_sim_bb)


# ---------------------------------------------------------------------- global Moran


def moran_fields(res):
    return [res.I, res.EI, res.VI_norm, res.z_norm, res.p_norm, res.p_sim, res.EI_sim,
            res.z_sim]


def esda_fields(m):
    names = ("I", "EI", "VI_norm", "z_norm", "p_norm", "p_sim", "EI_sim", "z_sim")
    return [getattr(m, k, np.nan) for k in names]


@pytest.mark.parametrize("values", ["counts", "normal"])
def test_global_moran_equals_esda_on_a_grid(values):
    rng = np.random.default_rng(7)
    grid = make_grid(shapely.Point(0, 0).buffer(15000), cell_size=1000, crs=CRS)
    v = rng.poisson(0.4, len(grid)) if values == "counts" else rng.normal(size=len(grid))
    grid["v"] = v.astype(float)  # counts: mostly ties
    res = global_moran(grid, "v", permutations=999, seed=11)
    np.random.seed(11)  # noqa: NPY002 -- esda's draws
    ref = esda.Moran(grid["v"].to_numpy(), weights(grid), permutations=999)
    same(moran_fields(res), esda_fields(ref))
    assert res.n == len(grid)


def test_global_moran_equals_esda_on_polygons_and_without_permutations():
    rng = np.random.default_rng(8)
    pts = shapely.points(rng.uniform(0, 1e4, (120, 2)))
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts))), box(0, 0, 1e4, 1e4))
    units = gpd.GeoDataFrame({"v": rng.poisson(3, 120).astype(float)}, geometry=cells, crs=CRS)
    w = libpysal_queen(units)
    for p in (0, 99):
        res = global_moran(units, "v", permutations=p, seed=2)
        np.random.seed(2)  # noqa: NPY002
        ref = esda.Moran(units["v"].to_numpy(), w, permutations=p)
        n_fields = 8 if p else 5
        same(moran_fields(res)[:n_fields], esda_fields(ref)[:n_fields])
    # binary weights too
    res = global_moran(units, "v", permutations=99, seed=2, transformation="b")
    np.random.seed(2)  # noqa: NPY002
    ref = esda.Moran(units["v"].to_numpy(), w, transformation="b", permutations=99)
    same(moran_fields(res), esda_fields(ref))


# ---------------------------------------------------------------------------- EB rates


def test_eb_rates_equal_esda_smoothing():
    rng = np.random.default_rng(9)
    for n in (5, 37, 600):
        e = rng.poisson(2, n).astype(float)  # ties and zeros
        b = np.round(rng.uniform(0.5, 80, n), 1)
        same(empirical_bayes_rate(e, b), np.asarray(Empirical_Bayes(e, b).r).ravel())
        same(assuncao_reis_rate(e, b), np.asarray(assuncao_rate(e, b)).ravel())
    # a variance estimate below zero: v_i falls back to m / b_i
    e, b = np.array([1.0, 1, 1, 2]), np.array([1.0, 1, 1, 2])
    same(assuncao_reis_rate(e, b), assuncao_rate(e, b))
    assert np.all(assuncao_reis_rate(e, b) == 0.0)


# ------------------------------------------------------------------- the report's step


@pytest.mark.slow
def test_report_autocorrelation_step_imports_neither_esda_nor_libpysal():
    code = textwrap.dedent("""
        import sys
        import incubloc.workflow as wf
        from incubloc.config import resolve_config
        wf.run_aside = lambda task: task  # every step in this process
        wf.STEPS = tuple(s for s in wf.STEPS if s.name in ("classify", "autocorrelation"))
        cfg = resolve_config({"input": {"example": "nanjing"},
                              "stats": {"permutations": 99}})
        study = wf.run_study(cfg)
        assert study.steps == ["classify", "autocorrelation"], study.steps
        assert "I" in study.tests["global_moran"], study.tests["global_moran"]
        assert study.grids["district_stats"]["rate_z"].notna().all()
        assert "esda" not in sys.modules and "libpysal" not in sys.modules, sorted(
            m for m in sys.modules if m.startswith(("esda", "libpysal")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
