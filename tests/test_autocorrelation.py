"""Autocorrelation: grids, weights and esda equality on the same weights."""

from __future__ import annotations

import json

import esda
import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from libpysal import weights as lpw
from scipy.stats import norm
from shapely.geometry import Point, box

from incubloc.errors import InputError
from incubloc.stats.autocorrelation import (
    aggregate,
    getis_ord,
    global_moran,
    join_counts,
    local_moran,
    make_grid,
    multiscale_moran,
    weights,
    write_grid,
)

CRS = 32650

# esda's own notices when it is called directly for the reference values
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:esda.*"),
    pytest.mark.filterwarnings("ignore:The inplace keyword:Warning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:esda.*"),
]


def clustered_points(seed=0):
    rng = np.random.default_rng(seed)
    xy = np.vstack([rng.normal([2500, 2500], 600, (150, 2)), rng.uniform(0, 10000, (50, 2))])
    xy = np.clip(xy, 1, 9999)
    return gpd.GeoDataFrame(
        {"layout": np.where(np.arange(200) < 150, "building", "park")},
        geometry=gpd.points_from_xy(*xy.T),
        crs=CRS,
    )


@pytest.fixture(scope="module")
def counts():
    grid = make_grid(box(0, 0, 10000, 10000), cell_size=1000, crs=CRS)
    return aggregate(clustered_points(), grid)


def neighbour_sets(w):
    return {i: set(w.neighbors[i]) for i in w.id_order}


# ------------------------------------------------------------------------------ grid


def test_square_grid_clipped_to_area():
    land = Point(5000, 5000).buffer(4000)
    grid = make_grid(land, cell_size=1000, crs=CRS)
    assert grid.crs.to_epsg() == CRS
    assert grid.area.sum() == pytest.approx(land.area)
    assert grid["land_fraction"].max() == pytest.approx(1.0)
    assert (grid["land_fraction"] > 0).all()
    assert grid["cell_id"].tolist() == list(range(len(grid)))
    trimmed = make_grid(land, cell_size=1000, crs=CRS, min_fraction=0.5)
    assert (trimmed["land_fraction"] >= 0.5).all() and len(trimmed) < len(grid)


def test_hex_cells_have_the_square_cell_area():
    grid = make_grid(box(0, 0, 20000, 20000), cell_size=2000, shape="hex", crs=CRS)
    full = grid[grid["land_fraction"] > 0.999]
    assert len(full) > 50
    np.testing.assert_allclose(full.area, 2000.0**2, rtol=1e-9)
    assert grid.area.sum() == pytest.approx(20000.0**2)


def test_grid_from_geographic_area_is_metric():
    area = gpd.GeoDataFrame(geometry=[box(118.7, 32.0, 118.8, 32.1)], crs=4326)
    grid = make_grid(area, cell_size=2000)
    assert grid.crs.to_epsg() == 32650
    assert grid.area.sum() == pytest.approx(area.to_crs(32650).area.iloc[0], rel=1e-9)


# --------------------------------------------------------------------------- weights


@pytest.mark.parametrize("kind", ["queen", "rook"])
def test_lattice_weights_equal_libpysal_contiguity(kind):
    grid = make_grid(box(0, 0, 5000, 4000), cell_size=1000, crs=CRS)
    ours = weights(grid, kind=kind, transform="b")
    cls = lpw.Queen if kind == "queen" else lpw.Rook
    theirs = cls.from_dataframe(grid, use_index=False, silence_warnings=True)
    assert neighbour_sets(ours) == neighbour_sets(theirs)


def test_hex_lattice_neighbours_are_touching_cells():
    grid = make_grid(box(0, 0, 8000, 8000), cell_size=1000, shape="hex", crs=CRS)
    w = weights(grid, transform="b")
    geoms = grid.geometry.to_numpy()
    i, j = np.triu_indices(len(geoms), 1)
    touch = shapely.distance(geoms[i], geoms[j]) < 1e-6
    want = {k: set() for k in range(len(geoms))}
    for a, b in zip(i[touch], j[touch], strict=True):
        want[a].add(b)
        want[b].add(a)
    # lattice neighbours among whole cells are exactly the touching cells (clipped
    # slivers along the edge stay lattice neighbours even where their pieces part)
    full = set(np.flatnonzero(grid["land_fraction"].to_numpy() > 0.999).tolist())
    got = neighbour_sets(w)
    for k in full:
        assert got[k] & full == want[k] & full
    assert any(len(got[k]) == 6 for k in full)  # interior hexagons have six neighbours


def test_islands_are_attached_to_nearest_unit():
    land = shapely.union_all([box(0, 0, 3000, 3000), box(6000, 0, 7000, 1000)])
    grid = make_grid(land, cell_size=1000, crs=CRS)
    w = weights(grid)
    assert not w.islands
    island = grid.index[grid.geometry.centroid.x > 6000][0]
    assert len(w.neighbors[island]) == 1
    raw = weights(grid, attach_islands=False)
    assert raw.islands == [island]


def test_admin_units_use_libpysal_queen():
    units = gpd.GeoDataFrame(
        {"name": list("abcd")},
        geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2), box(1, 1, 2, 2)],
        crs=CRS,
    )
    w = weights(units)
    assert w.transform == "R"
    assert neighbour_sets(w) == {0: {1, 2, 3}, 1: {0, 2, 3}, 2: {0, 1, 3}, 3: {0, 1, 2}}
    knn = weights(units, kind="knn", k=2)
    assert all(len(v) == 2 for v in knn.neighbors.values())


# ------------------------------------------------------------------------- aggregate


def test_aggregate_counts_and_density():
    # near the UTM central meridian, where UTM areas are true to 0.1 %
    x0, y0 = 500000.0, 3500000.0
    grid = make_grid(box(x0, y0, x0 + 2000, y0 + 1000), cell_size=1000, crs=CRS)
    pts = gpd.GeoDataFrame(
        {"layout": ["building", "park", "building", "park"]},
        geometry=gpd.points_from_xy(
            np.array([100, 200, 1500, 1000]) + x0, np.array([10, 20, 30, 500]) + y0
        ),
        crs=CRS,
    )
    out = aggregate(pts, grid, value="density", by="layout")
    # the point on the shared edge (x = 1000) is counted once
    assert out["count"].sum() == 4
    assert out["count"].tolist() in ([3, 1], [2, 2])
    assert (out["count_building"] + out["count_park"]).tolist() == out["count"].tolist()
    np.testing.assert_allclose(out["area_km2"], 1.0, rtol=1e-3)
    np.testing.assert_allclose(out["density"], out["count"] / out["area_km2"])
    assert out["value"].tolist() == out["density"].tolist()


def test_aggregate_projects_points(counts):
    pts = clustered_points().to_crs(4326)
    grid = make_grid(box(0, 0, 10000, 10000), cell_size=1000, crs=CRS)
    again = aggregate(pts, grid)
    assert again["count"].tolist() == counts["count"].tolist()
    assert counts["count"].sum() == 200


# ------------------------------------------------------------------ esda equality


def test_global_moran_equals_esda(counts):
    w = weights(counts)
    res = global_moran(counts, "count", w=w, permutations=99, seed=5)
    np.random.seed(5)  # noqa: NPY002 -- esda's global Moran uses the legacy state
    ref = esda.Moran(counts["count"].to_numpy(float), w, permutations=99)
    assert res.I == pytest.approx(ref.I, abs=1e-12)
    assert res.EI == pytest.approx(ref.EI)
    assert res.z_norm == pytest.approx(ref.z_norm)
    assert res.p_norm == pytest.approx(ref.p_norm)
    assert res.p_sim == pytest.approx(ref.p_sim)
    assert res.z_sim == pytest.approx(ref.z_sim)
    assert res.I > 0.3 and res.p_norm < 0.001


def test_global_moran_seeded_and_state_restored(counts):
    w = weights(counts)
    np.random.seed(123)  # noqa: NPY002
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    a = global_moran(counts, "count", w=w, permutations=99, seed=1)
    after = np.random.get_state()[1]  # noqa: NPY002
    np.testing.assert_array_equal(before, after)
    b = global_moran(counts, "count", w=w, permutations=99, seed=1)
    assert a.to_dict() == b.to_dict()
    assert w.transform == "R"
    assert json.loads(json.dumps(a.to_dict()))["seed"] == 1


def test_local_moran_equals_esda(counts):
    """Values and quadrants are esda's; the p-values are the engine's, not esda's."""
    w = weights(counts)
    out = local_moran(counts, "count", w=w, permutations=99, seed=5, correction="none")
    ref = esda.Moran_Local(counts["count"].to_numpy(float), w, permutations=99, seed=5)
    np.testing.assert_allclose(out["lisa_I"], ref.Is)
    quad = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
    assert out["lisa_q"].tolist() == [quad[q] for q in ref.q]
    # analytic p beside the permutation p: esda's conditional-randomisation moments
    z_norm = (ref.Is - ref.EIc) / np.sqrt(ref.VIc)
    varies = ~out["lisa_p_norm"].eq(1.0).to_numpy()
    np.testing.assert_allclose(out["lisa_p_norm"][varies], (2 * norm.sf(np.abs(z_norm)))[varies])
    sig = out["lisa_p"] <= 0.05
    want = np.where(sig, out["lisa_q"], "ns")
    assert out["lisa_cluster"].tolist() == want.tolist()
    assert "HH" in set(out["lisa_cluster"])
    again = local_moran(counts, "count", w=w, permutations=99, seed=5, correction="none")
    assert out.drop(columns="geometry").equals(again.drop(columns="geometry"))


def benjamini_hochberg(p, alpha):
    """Step-up BH threshold, written from the definition (independent of the code)."""
    m = len(p)
    best = None
    for rank, value in enumerate(sorted(p), start=1):
        if value <= rank * alpha / m:
            best = value
    return best


def test_local_moran_fdr_is_default(counts):
    w = weights(counts)
    out = local_moran(counts, "count", w=w, permutations=99, seed=5)
    info = out.attrs["lisa_inference"]
    assert info["correction"] == "fdr" and info["n_tests"] == len(counts)
    # enough permutations that the strictest BH step (alpha / n) is attainable
    assert 2 / (info["permutations"] + 1) <= 0.05 / len(counts)
    thr = benjamini_hochberg(out["lisa_p"].tolist(), 0.05)
    assert thr is not None and out.attrs["lisa_threshold"] == pytest.approx(thr)
    assert out["lisa_sig"].tolist() == (out["lisa_p"] <= thr).tolist()
    old = local_moran(counts, "count", w=w, permutations=99, seed=5, fdr=False)
    assert old.attrs["lisa_inference"]["correction"] == "none"


def test_getis_ord_equals_esda_gi_star(counts):
    w = weights(counts)
    out = getis_ord(counts, "count", w=w, permutations=99, seed=5, correction="none")
    ref = esda.G_Local(
        counts["count"].to_numpy(float), w, transform="B", star=True, permutations=99, seed=5
    )
    np.testing.assert_allclose(out["gi_z"], ref.Zs)
    np.testing.assert_allclose(out["gi"], ref.Gs)
    assert w.transform == "R"  # the caller's transform is kept
    hot = out.loc[out["hotspot"] == "hot"]
    assert len(hot) and (hot["gi_z"] > 0).all()
    assert set(out["gi_bin"]) <= {"hot_99", "hot_95", "hot_90", "ns", "cold_90", "cold_95",
                                  "cold_99"}
    assert out.loc[out["gi_bin"].str.startswith("hot"), "gi_z"].gt(0).all()
    # the hot spot is around the cluster centre (2500, 2500)
    c = hot.geometry.centroid
    assert c.x.mean() < 5000 and c.y.mean() < 5000


@pytest.mark.parametrize(("transform", "star"), [("B", False), ("R", True), ("R", False)])
def test_getis_ord_variants_equal_esda(counts, transform, star):
    w = weights(counts)
    out = getis_ord(counts, "count", w=w, transform=transform, star=star, permutations=0)
    ref = esda.G_Local(counts["count"].to_numpy(float), w, transform=transform, star=star,
                       permutations=0)
    np.testing.assert_allclose(out["gi"], ref.Gs)
    np.testing.assert_allclose(out["gi_z"], ref.Zs)


def test_join_counts_equal_esda_on_units():
    grid = make_grid(box(0, 0, 6000, 6000), cell_size=1000, crs=CRS)
    grid["layout"] = np.where(grid["grid_col"] < 3, "building", "park")
    res = join_counts(grid, "layout", permutations=99, seed=3)
    w = weights(grid, transform="b")
    y = (grid["layout"] == "building").to_numpy(int)
    np.random.seed(3)  # noqa: NPY002
    ref = esda.Join_Counts(y, w, permutations=99)
    row = res.table.set_index("label").loc["building"]
    assert row["bb"] == ref.bb and row["bw"] == ref.bw and row["ww"] == ref.ww
    assert row["p_sim_bb"] == pytest.approx(ref.p_sim_bb)
    assert row["clustered"]
    assert json.loads(json.dumps(res.to_dict()))["table"][0]["label"] == "building"


def test_join_counts_on_points_excludes_unclassified():
    rng = np.random.default_rng(2)
    xy = np.vstack([rng.normal(0, 100, (30, 2)), rng.normal(5000, 100, (30, 2))])
    labels = np.array(["building"] * 30 + ["park"] * 30, dtype=object)
    labels[[0, 31]] = "unclassified"
    pts = gpd.GeoDataFrame({"layout": labels}, geometry=gpd.points_from_xy(*xy.T), crs=CRS)
    res = join_counts(pts, "layout", permutations=99, seed=0)
    assert res.n == 58 and res.n_excluded == 2
    assert set(res.table["label"]) == {"building", "park"}
    assert res.table["clustered"].all()
    assert res.table["bw"].eq(0).all()  # the two groups are 5 km apart


# ------------------------------------------------------------------------ multiscale


def test_multiscale_profile_and_peak():
    pts = clustered_points()
    sizes = (500, 1000, 2500, 5000)
    prof = multiscale_moran(
        pts, box(0, 0, 10000, 10000), cell_sizes=sizes, permutations=99, seed=0, crs=CRS
    )
    assert prof["cell_size"].tolist() == [float(s) for s in sizes]
    assert prof["n_points"].eq(200).all()
    assert prof.attrs["peak_cell_size"] in prof["cell_size"].tolist()
    assert prof["peak"].sum() == 1
    # the peak is read on I (a correlation), not on z (which grows with the cells)
    sig = prof[(prof["p"] <= 0.05) & (prof["I"] > prof["EI"])]
    assert prof.attrs["peak_cell_size"] == sig.loc[sig["I"].idxmax(), "cell_size"]
    # each row equals Moran's I computed directly at that scale
    grid = make_grid(box(0, 0, 10000, 10000), cell_size=1000, crs=CRS)
    direct = global_moran(aggregate(pts, grid), "count", permutations=99, seed=0)
    row = prof.set_index("cell_size").loc[1000.0]
    assert row["I"] == pytest.approx(direct.I) and row["p_sim"] == pytest.approx(direct.p_sim)


def test_multiscale_hex_runs():
    prof = multiscale_moran(
        clustered_points(),
        box(0, 0, 10000, 10000),
        cell_sizes=(1000, 2000),
        shape="hex",
        permutations=0,
        crs=CRS,
    )
    assert len(prof) == 2 and prof["z"].notna().all()


# ---------------------------------------------------------------------------- output


def test_write_grid_layer_with_lisa_columns(counts, tmp_path):
    lisa = local_moran(counts, "count", permutations=99, seed=0)
    gi = getis_ord(lisa, "count", permutations=99, seed=0)
    path = tmp_path / "out.gpkg"
    write_grid(gi, path, layer="grid_1000m")
    write_grid(counts, path, layer="other")
    assert sorted(pyogrio.list_layers(path)[:, 0]) == ["grid_1000m", "other"]
    back = gpd.read_file(path, layer="grid_1000m")
    assert back.crs.to_epsg() == CRS
    for col in ("count", "lisa_I", "lisa_cluster", "gi_z", "hotspot"):
        assert col in back.columns
    np.testing.assert_allclose(back["lisa_I"], gi["lisa_I"])


def test_bad_column_names_the_fix(counts):
    with pytest.raises(InputError, match="not in the units table"):
        global_moran(counts, "nope")
    bad = counts.copy()
    bad.loc[3, "count"] = np.nan
    with pytest.raises(InputError, match="rows 4"):
        global_moran(bad, "count")
