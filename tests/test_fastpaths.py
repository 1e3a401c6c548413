"""The fast paths give the numbers of the reference implementations (small sizes).

KDE against a direct sum and scipy's gaussian_kde, Ripley's K against brute-force
pair counts, LISA on point data against esda, point-in-polygon against
geopandas.sjoin, and the Dask path against the in-memory path.
"""

from __future__ import annotations

import warnings

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from libpysal.weights import KNN
from scipy.spatial.distance import pdist, squareform
from scipy.stats import gaussian_kde, norm
from shapely.geometry import Point, box

import incubloc.stats.pointpattern as pp
from incubloc.parallel import (
    assign_polygons,
    assign_polygons_dask,
    count_in_polygons,
    count_in_polygons_dask,
    footprints_in_polygons,
    points_in_polygons,
)
from incubloc.stats.autocorrelation import local_moran
from incubloc.stats.density import kde
from incubloc.stats.pointpattern import ripley

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:esda.*"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:esda.*"),
]

# UTM-like metres: large offsets are where unit-naive FFT KDEs go wrong
X0, Y0 = 600_000.0, 3_500_000.0


def clustered(n: int, seed: int = 0, side: float = 10_000.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.2 * side, 0.8 * side, (5, 2))
    sd = rng.uniform(0.02 * side, 0.08 * side, 5)
    k = rng.integers(0, 5, n)
    xy = centres[k] + rng.normal(size=(n, 2)) * sd[k, None]
    return np.clip(xy, 0.0, side - 1e-6)


# ----------------------------------------------------------------------- Ripley's K


def brute_ordered_pairs(xy: np.ndarray, distances: np.ndarray) -> np.ndarray:
    d = pdist(xy)
    return 2 * (d[:, None] <= distances[None, :]).sum(axis=0)


@pytest.mark.parametrize("chunk", [97, 10_000, 1 << 20])
def test_pair_counts_equal_brute_force(chunk):
    xy = clustered(1500)
    xy = np.vstack([xy, xy[:7], xy[:2]])  # duplicates: zero distances count
    dist = np.array([800.0, 25.0, 100.0, 400.0, 3000.0, 1600.0, 10.0])  # unsorted
    got = pp._pair_counts(xy, dist, chunk=chunk)
    np.testing.assert_array_equal(got, brute_ordered_pairs(xy, dist))


def test_pair_counts_on_lattice_ties():
    # distances exactly on the lattice spacing: d <= r must include them
    xx, yy = np.meshgrid(np.arange(30) * 50.0, np.arange(30) * 50.0)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    dist = np.array([50.0, 100.0, 150.0, 200.0])
    np.testing.assert_array_equal(pp._pair_counts(xy, dist), brute_ordered_pairs(xy, dist))


def test_pair_counts_border_numerator_by_hand():
    xy = clustered(800, seed=3)
    dist = np.linspace(100, 2000, 12)
    bound = np.random.default_rng(1).uniform(0, 2500, len(xy))
    d = squareform(pdist(xy))
    np.fill_diagonal(d, np.inf)
    # Σ_i over centres with bound_i >= r of #{j: d_ij <= r}
    want = [((d <= r) & (bound[:, None] >= r)).sum() for r in dist]
    np.testing.assert_array_equal(pp._pair_counts(xy, dist, bound), want)


@pytest.fixture
def fast_k(monkeypatch):
    monkeypatch.setattr(pp, "_FAST_K_MIN_N", 10)


def test_ripley_none_fast_equals_formula(fast_k):
    xy = clustered(700, seed=4)
    window = box(0, 0, 10_000, 10_000)
    dist = np.linspace(100, 2500, 25)
    res = ripley(xy, window=window, distances=dist, n_sim=0, edge_correction="none")
    n = len(xy)
    want = 1e8 * brute_ordered_pairs(xy, dist) / (n * (n - 1))
    np.testing.assert_allclose(res.K, want, rtol=1e-12)


def test_ripley_border_fast_equals_formula(fast_k):
    xy = clustered(600, seed=5)
    window = box(0, 0, 10_000, 10_000)
    dist = np.linspace(200, 2000, 10)
    res = ripley(xy, window=window, distances=dist, n_sim=0, edge_correction="border")
    n = len(xy)
    b = np.minimum.reduce([xy[:, 0], xy[:, 1], 10_000 - xy[:, 0], 10_000 - xy[:, 1]])
    d = squareform(pdist(xy))
    np.fill_diagonal(d, np.inf)
    want = [
        1e8 / (n - 1) * ((d[b >= r] <= r).sum()) / (b >= r).sum() for r in dist
    ]  # reduced-sample estimator, independently
    np.testing.assert_allclose(res.K, want, rtol=1e-9)


@pytest.mark.parametrize("correction", ["none", "border", "ripley"])
def test_ripley_fast_path_equals_all_pairs_path(monkeypatch, correction):
    xy = clustered(400, seed=6)
    window = Point(5000, 5000).buffer(5200)
    kw = dict(window=window, distances=[150, 400, 900, 1500], n_sim=19, seed=2)
    monkeypatch.setattr(pp, "_FAST_K_MIN_N", 10**9)
    slow = ripley(xy, edge_correction=correction, **kw)
    monkeypatch.setattr(pp, "_FAST_K_MIN_N", 10)
    fast = ripley(xy, edge_correction=correction, **kw)
    np.testing.assert_allclose(fast.K, slow.K, rtol=1e-12)
    np.testing.assert_allclose(fast.lo, slow.lo, rtol=1e-12)
    np.testing.assert_allclose(fast.hi, slow.hi, rtol=1e-12)
    assert fast.p == slow.p


# ------------------------------------------------------------------------------ KDE


def direct_gaussian(xy: np.ndarray, q: np.ndarray, h: float) -> np.ndarray:
    d2 = ((q[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * h * h)).sum(1) / (2 * np.pi * h * h)


def cell_centres(s, rows, cols):
    x = s.transform.c + (cols + 0.5) * s.cell_size
    y = s.transform.f - (rows + 0.5) * s.cell_size
    return np.column_stack([x, y])


def test_gaussian_kde_equals_direct_sum_and_scipy():
    xy = clustered(2000, seed=7) + [X0, Y0]
    h = 600.0
    s = kde(xy, kernel="gaussian", bandwidth=h, cell_size=50.0, normalize="count")
    rng = np.random.default_rng(0)
    rows = rng.integers(0, s.array.shape[0], 600)
    cols = rng.integers(0, s.array.shape[1], 600)
    q = cell_centres(s, rows, cols)
    mine = s.array[rows, cols] / 1e6  # points per m²
    want = direct_gaussian(xy, q, h)
    peak = direct_gaussian(xy, xy[:200], h).max()
    assert np.abs(mine - want).max() < 0.004 * peak

    class Isotropic(gaussian_kde):
        def _compute_covariance(self):
            self.factor = 1.0
            self.covariance = np.eye(2) * h * h
            self.cho_cov = np.eye(2) * h
            self.log_det = 2 * np.log(np.diag(self.cho_cov * np.sqrt(2 * np.pi))).sum()

    scipy_vals = Isotropic(xy.T)(q.T) * len(xy)
    np.testing.assert_allclose(scipy_vals, want, rtol=1e-8, atol=1e-12 * peak)


def test_quartic_kde_equals_direct_sum():
    xy = clustered(1500, seed=8) + [X0, Y0]
    h = 900.0
    s = kde(xy, kernel="quartic", bandwidth=h, cell_size=50.0)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, s.array.shape[0], 500)
    cols = rng.integers(0, s.array.shape[1], 500)
    q = cell_centres(s, rows, cols)
    d2 = ((q[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    want = (3 / (np.pi * h * h) * np.clip(1 - d2 / (h * h), 0, None) ** 2).sum(1)
    mine = s.array[rows, cols] / 1e6
    assert np.abs(mine - want).max() < 0.01 * want.max()


def test_kde_in_metres_keeps_the_whole_kernel():
    # One point, a wide kernel, coordinates in the millions of metres: the value
    # three bandwidths away must be the untruncated Gaussian's.
    h = 5000.0
    s = kde(np.array([[X0, Y0]]), kernel="gaussian", bandwidth=h, cell_size=250.0)
    q = np.array([[X0 + 3 * h, Y0]])
    col = int((q[0, 0] - s.transform.c) // s.cell_size)
    row = int((s.transform.f - q[0, 1]) // s.cell_size)
    got = s.array[row, col] / 1e6
    centre = cell_centres(s, np.array([row]), np.array([col]))
    want = direct_gaussian(np.array([[X0, Y0]]), centre, h)[0]
    assert got == pytest.approx(want, rel=0.02)
    assert s.integral() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- LISA


def test_local_moran_on_points_equals_esda():
    xy = clustered(400, seed=9)
    rng = np.random.default_rng(2)
    y = np.sin(xy[:, 0] / 1500) + rng.normal(0, 0.5, len(xy))
    g = gpd.GeoDataFrame({"v": y}, geometry=gpd.points_from_xy(*xy.T), crs=32650)
    with warnings.catch_warnings():  # clustered points: KNN islands are expected
        warnings.simplefilter("ignore", UserWarning)
        w = KNN.from_array(xy, k=8)
    w.transform = "r"
    out = local_moran(g, "v", w=w, permutations=99, seed=11, correction="none")
    ref = esda.Moran_Local(y, w, transformation="r", permutations=99, seed=11, n_jobs=1)
    np.testing.assert_allclose(out["lisa_I"], ref.Is, rtol=1e-12)
    # p-values are incubloc's own (tie-aware, order-free draws), not esda's; the
    # normal approximation beside them uses esda's conditional moments
    z = (ref.Is - ref.EIc) / np.sqrt(ref.VIc)
    np.testing.assert_allclose(out["lisa_p_norm"], 2 * norm.sf(np.abs(z)), rtol=1e-9)


# ------------------------------------------------------------------- point in polygon


def polygons() -> gpd.GeoDataFrame:
    geoms = [
        box(0, 0, 10, 10),
        box(5, 5, 15, 15),  # overlaps the first
        box(10, 0, 20, 10),  # shares an edge with the first
        box(30, 0, 40, 10).difference(box(33, 3, 37, 7)),  # a hole
        None,  # missing geometry
        shapely.Polygon(),  # empty
        shapely.MultiPolygon([box(50, 0, 52, 2), box(54, 0, 56, 2)]),
    ]
    return gpd.GeoDataFrame({"name": list("abcdefg"), "code": range(7)}, geometry=geoms)


def sjoin_first(xy: np.ndarray, polys: gpd.GeoDataFrame, predicate: str) -> np.ndarray:
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=polys.crs)
    j = gpd.sjoin(pts, polys[["geometry"]], how="inner", predicate=predicate)
    out = np.full(len(xy), -1)
    first = j["index_right"].groupby(level=0).min()
    out[first.index.to_numpy()] = first.to_numpy()
    return out


def pip_points(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-2, 60, (n, 2)) * [1, 0.3]
    edges = np.array([[10, 5], [5, 7], [0, 0], [35, 3], [33, 5], [51, 1], [53, 1], [20, 10]])
    return np.vstack([xy, edges, rng.integers(0, 60, (200, 2)).astype(float)])


@pytest.mark.parametrize(
    ("predicate", "peer"), [("intersects", "intersects"), ("contains", "within")]
)
def test_points_in_polygons_equals_sjoin(predicate, peer):
    polys = polygons()
    xy = pip_points()
    got = points_in_polygons(xy, polys, predicate=predicate)
    np.testing.assert_array_equal(got, sjoin_first(xy, polys, peer))
    # the same from point geometries
    pts = gpd.GeoSeries(gpd.points_from_xy(*xy.T))
    np.testing.assert_array_equal(points_in_polygons(pts, polys, predicate=predicate), got)


def test_points_in_polygons_known_answers_and_missing():
    polys = polygons()
    xy = np.array([[7, 7], [10, 5], [35, 5], [32, 5], [55, 1], [np.nan, 1], [100, 100]])
    assert points_in_polygons(xy, polys).tolist() == [0, 0, -1, 3, 6, -1, -1]
    pts = gpd.GeoSeries([Point(7, 7), None, Point()])
    assert points_in_polygons(pts, polys).tolist() == [0, -1, -1]
    assert points_in_polygons(np.empty((0, 2)), polys).tolist() == []


def test_assign_and_count_project_points_to_the_polygons_crs():
    polys = polygons().iloc[[0, 2, 3]].set_crs(32650)
    xy = pip_points(500)
    pts = gpd.GeoDataFrame(
        {"w": np.arange(len(xy), dtype=float)}, geometry=gpd.points_from_xy(*xy.T), crs=32650
    )
    out = assign_polygons(pts.to_crs(4326), polys, columns=["name", "code"])
    # the points as the function sees them: projected back to the polygons' CRS
    back = shapely.get_coordinates(pts.to_crs(4326).to_crs(32650).geometry.to_numpy())
    pos = points_in_polygons(back, polys)
    assert (pos >= 0).sum() > 100
    assert out.index.equals(pts.index)
    np.testing.assert_array_equal(out["polygon"], pos)
    names = np.where(pos >= 0, np.array(["a", "c", "d"], dtype=object)[pos], None)
    assert [None if pd.isna(v) else v for v in out["name"]] == names.tolist()
    counts = count_in_polygons(pts, polys, weights="w")
    pos = sjoin_first(xy, polys.reset_index(drop=True), "intersects")
    assert counts.index.equals(polys.index)
    np.testing.assert_array_equal(counts["n_points"], np.bincount(pos[pos >= 0], minlength=3))
    np.testing.assert_allclose(
        counts["weight"], np.bincount(pos[pos >= 0], weights=pts["w"][pos >= 0], minlength=3)
    )


def test_footprints_in_polygons_equals_sjoin_of_representative_points():
    rng = np.random.default_rng(3)
    c = rng.uniform(0, 60, (3000, 2)) * [1, 0.3]
    w = rng.uniform(0.2, 2.0, (2, 3000))
    houses = shapely.box(c[:, 0] - w[0], c[:, 1] - w[1], c[:, 0] + w[0], c[:, 1] + w[1])
    # an L-shaped footprint whose centroid lies outside it
    ell = box(31, 1, 39, 2).union(box(31, 1, 32, 9))
    houses = np.concatenate([houses, [ell, None]])
    polys = polygons()
    got = footprints_in_polygons(houses, polys)
    rep = gpd.GeoSeries(houses).representative_point()
    ok = ~(rep.isna() | rep.is_empty).to_numpy()
    want = np.full(len(houses), -1)
    want[ok] = sjoin_first(shapely.get_coordinates(rep[ok].to_numpy()), polys, "intersects")
    np.testing.assert_array_equal(got, want)
    assert got[-1] == -1 and (got >= 0).sum() > 500


# ---------------------------------------------------------------------------- Dask


def test_dask_path_equals_in_memory_path():
    # ImportError too: on numpy 1.24 stacks (Debian's QGIS) dask's pyarrow refuses to load.
    dd = pytest.importorskip("dask.dataframe", exc_type=ImportError)
    dgpd = pytest.importorskip("dask_geopandas", exc_type=ImportError)
    polys = polygons().set_crs(32650)
    xy = pip_points(3000, seed=4)
    pts = gpd.GeoDataFrame(
        {"w": np.random.default_rng(0).uniform(0, 5, len(xy))},
        geometry=gpd.points_from_xy(*xy.T),
        crs=32650,
    ).to_crs(4326)  # the Dask path reprojects per partition
    pts.index = pts.index * 3 + 7  # a non-trivial index survives
    dpts = dgpd.from_geopandas(pts, npartitions=4)
    lazy = assign_polygons_dask(dpts, polys, columns=["name", "code"])
    got = lazy.compute(scheduler="synchronous")
    want = assign_polygons(pts, polys, columns=["name", "code"])
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(
        count_in_polygons_dask(dpts, polys, weights="w"),
        count_in_polygons(pts, polys, weights="w"),
    )
    # plain Dask DataFrame with coordinate columns (e.g. read from CSV / Parquet)
    frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]})
    dframe = dd.from_pandas(frame, npartitions=3)
    pd.testing.assert_frame_equal(
        assign_polygons_dask(dframe, polys, columns=["name"], x="x", y="y").compute(),
        assign_polygons(frame, polys, columns=["name"], x="x", y="y"),
    )
    pd.testing.assert_frame_equal(
        count_in_polygons_dask(dframe, polys, x="x", y="y"),
        count_in_polygons(frame, polys, x="x", y="y"),
    )
