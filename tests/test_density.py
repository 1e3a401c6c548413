"""Kernel density: mass, direct sums, bandwidth rules and the GeoTIFF contract."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, box

from incubloc.errors import InputError
from incubloc.stats.density import bandwidth_rule, kde, kde_by_year, write_geotiff

X0, Y0 = 500000.0, 3500000.0  # UTM 50N, Nanjing latitude


def sample(n=40, seed=1, spread=10000.0):
    return np.random.default_rng(seed).uniform(0, spread, (n, 2)) + [X0, Y0]


def direct(xy, x, y, h, kernel):
    d2 = ((xy - [x, y]) ** 2).sum(axis=1)
    if kernel == "quartic":
        k = np.where(d2 < h * h, 3 / (np.pi * h * h) * (1 - d2 / (h * h)) ** 2, 0.0)
    else:
        k = np.exp(-d2 / (2 * h * h)) / (2 * np.pi * h * h)
    return k.sum() * 1e6  # per km²


@pytest.mark.parametrize("kernel", ["quartic", "gaussian"])
def test_integral_equals_number_of_points(kernel):
    xy = sample(300, spread=20000)
    s = kde(xy, kernel=kernel, bandwidth=1500.0, cell_size=250, crs=32650)
    assert s.integral() == pytest.approx(300, rel=0.01)
    d = kde(xy, kernel=kernel, bandwidth=1500.0, cell_size=250, normalize="density", crs=32650)
    assert d.integral() == pytest.approx(1.0, rel=0.01)
    assert s.units == "points per km2" and d.units == "probability per km2"


@pytest.mark.parametrize("kernel", ["quartic", "gaussian"])
def test_cells_equal_direct_kernel_sum(kernel):
    xy = sample(40)
    h = 2000.0
    s = kde(xy, kernel=kernel, bandwidth=h, cell_size=100, crs=32650)
    rows, cols = np.nonzero(s.array > 0.3 * s.array.max())
    pick = np.linspace(0, len(rows) - 1, 12).astype(int)
    for r, c in zip(rows[pick], cols[pick], strict=True):
        t = s.transform
        x, y = t.c + (c + 0.5) * t.a, t.f + (r + 0.5) * t.e
        assert s.array[r, c] == pytest.approx(direct(xy, x, y, h, kernel), rel=0.01)


def test_weights_scale_the_mass():
    xy = sample(30)
    w = np.arange(1, 31, dtype=float)
    s = kde(xy, bandwidth=2000.0, cell_size=200, weights=w, crs=32650)
    assert s.integral() == pytest.approx(w.sum(), rel=1e-6)
    assert s.total_weight == w.sum()


def test_bandwidth_rules_by_formula():
    xy = np.random.default_rng(0).normal([X0, Y0], [3000, 1000], (400, 2))
    n = len(xy)
    sigma1 = np.sqrt(xy.var(axis=0, ddof=1).mean())
    # Scott's 2-D rule gives the kernel's standard deviation; quartic radius = √8 · sd.
    assert bandwidth_rule(xy, rule="scott", kernel="gaussian") == pytest.approx(
        sigma1 * n ** (-1 / 6)
    )
    assert bandwidth_rule(xy, rule="scott") == pytest.approx(np.sqrt(8) * sigma1 * n ** (-1 / 6))
    sigma = np.sqrt(xy.var(axis=0).mean())
    iqr = np.mean(np.percentile(xy, 75, axis=0) - np.percentile(xy, 25, axis=0))
    want = 0.9 * min(sigma, iqr / 1.349) * n ** (-0.2)
    assert bandwidth_rule(xy, rule="silverman1d") == pytest.approx(want)
    assert bandwidth_rule(xy, rule="silverman") == pytest.approx(want)  # legacy name
    sd = np.sqrt(xy.var(axis=0).sum())
    dm = np.median(np.hypot(*(xy - xy.mean(axis=0)).T))
    want = 0.9 * min(sd, np.sqrt(1 / np.log(2)) * dm) * n ** (-0.2)
    assert bandwidth_rule(xy, rule="arcgis") == pytest.approx(want)
    s = kde(xy, bandwidth="scott", cell_size=500, crs=32650)
    assert s.bandwidth_rule == "scott"
    assert s.bandwidth_m == pytest.approx(np.sqrt(8) * sigma1 * n ** (-1 / 6))
    assert s.kernel_sd_m == pytest.approx(sigma1 * n ** (-1 / 6))


def test_default_rule_is_2d_scott_against_scipy_gaussian_kde():
    from scipy.stats import gaussian_kde

    xy = np.random.default_rng(3).normal([X0, Y0], [2000, 2000], (300, 2))
    ref = gaussian_kde(xy.T)  # bw_method="scott": factor n^(-1/6) in 2-D
    assert ref.factor == pytest.approx(len(xy) ** (-1 / 6))
    # scipy's kernel covariance is the data covariance times factor²: its per-axis sd,
    # averaged over the axes, is the kernel sd of the default rule.
    want_sd = np.sqrt(np.diag(ref.covariance).mean())
    s = kde(xy, cell_size=500, crs=32650)  # default bandwidth
    assert s.bandwidth_rule == "scott"
    assert s.kernel_sd_m == pytest.approx(want_sd, rel=1e-9)
    # the quartic kernel of that radius has that per-axis sd (numerically, on a fine grid)
    h = s.bandwidth_m
    g = np.linspace(-h, h, 801)
    xx, yy = np.meshgrid(g, g)
    d2 = xx**2 + yy**2
    k = np.where(d2 < h * h, (1 - d2 / (h * h)) ** 2, 0.0)
    assert np.sqrt((k * xx**2).sum() / k.sum()) == pytest.approx(want_sd, rel=2e-3)
    g = kde(xy, kernel="gaussian", cell_size=500, crs=32650)
    assert g.bandwidth_m == pytest.approx(want_sd) and g.kernel_sd_m == g.bandwidth_m
    # Silverman's 1-D rule smooths much less than the 2-D rule: they do not coincide.
    old = kde(xy, bandwidth="silverman1d", cell_size=500, crs=32650)
    assert old.kernel_sd_m < 0.6 * s.kernel_sd_m


def test_geotiff_contract(tmp_path):
    area = gpd.GeoDataFrame(geometry=[Point(118.8, 32.05).buffer(0.1)], crs=4326)
    rng = np.random.default_rng(2)
    pts = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(rng.normal(118.8, 0.03, 80), rng.normal(32.05, 0.03, 80)),
        crs=4326,
    )
    s = kde(pts, area=area, kernel="gaussian", bandwidth="silverman", cell_size=500)
    assert s.crs.to_epsg() == 32650
    assert s.mask is not None and s.mask.any() and not s.mask.all()
    path = tmp_path / "kde.tif"
    write_geotiff(s, path)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32650
        assert src.transform == s.transform
        assert src.res == (500.0, 500.0)
        assert src.dtypes[0] == "float32"
        tags = src.tags()
        assert tags["kernel"] == "gaussian"
        assert tags["bandwidth_rule"] == "silverman"
        assert float(tags["kernel_sd_m"]) == pytest.approx(s.bandwidth_m)  # Gaussian: sd = h
        assert float(tags["bandwidth_m"]) == pytest.approx(s.bandwidth_m)
        assert float(tags["cell_size_m"]) == 500.0
        assert tags["n_points"] == "80" and tags["normalize"] == "count"
        assert "incubloc_version" in tags
        band = src.read(1, masked=True)
    assert band.mask.sum() == (~s.mask).sum()  # nodata outside the study area
    np.testing.assert_allclose(band.filled(0), np.where(s.mask, s.array, 0), rtol=1e-6)
    full = tmp_path / "full.tif"
    write_geotiff(s, full, mask=False)
    with rasterio.open(full) as src:
        arr = src.read(1).astype(float)
    assert arr.sum() * 0.25 == pytest.approx(80, rel=0.01)  # 0.25 km² cells
    assert json.loads(json.dumps(s.to_dict()))["integral"] == pytest.approx(80, rel=0.01)
    assert "DensitySurface" in s._repr_html_()


def test_kde_by_year_shares_grid_and_counts(tmp_path):
    xy = sample(60, spread=8000)
    g = gpd.GeoDataFrame(
        {"opened": [2012, 2014, 2016] * 19 + [None] * 3},
        geometry=gpd.points_from_xy(*xy.T),
        crs=32650,
    )
    cum = kde_by_year(g, bandwidth="scott", cell_size=250)
    assert list(cum) == [2012, 2014, 2016]
    assert [round(s.integral()) for s in cum.values()] == [19, 38, 57]
    shapes = {s.array.shape for s in cum.values()}
    assert len(shapes) == 1 and len({s.bandwidth_m for s in cum.values()}) == 1
    per = kde_by_year(g, bandwidth=1000.0, cell_size=250, cumulative=False)
    assert [round(s.integral()) for s in per.values()] == [19, 19, 19]
    path = tmp_path / "years.tif"
    write_geotiff(cum, path)
    with rasterio.open(path) as src:
        assert src.count == 3
        assert list(src.descriptions) == ["2012", "2014", "2016"]
        assert src.tags(2)["year"] == "2014"


def test_large_input_is_binned_not_looped():
    xy = np.random.default_rng(0).normal([X0, Y0], 5000, (200_000, 2))
    s = kde(xy, bandwidth=1000.0, cell_size=250, crs=32650)
    assert s.integral() == pytest.approx(200_000, rel=1e-6)


def test_binning_over_the_cells_reached_is_the_whole_grid_count_bit_for_bit():
    # _bin counts each corner over the span of cells the points reach; the sums must
    # be those of a bincount over the whole grid, cell by cell, bit for bit.
    from incubloc.stats.density import _bin, _Grid

    gen = np.random.default_rng(3)
    grid = _Grid(x0=0.0, ytop=5000.0, cell=100.0, rows=50, cols=40, crs=None)
    xy = gen.uniform([1200.0, 1500.0], [2600.0, 3100.0], (300, 2))
    w = gen.gamma(2.0, size=300)
    fx, fy = (xy[:, 0] - grid.x0) / grid.cell - 0.5, (grid.ytop - xy[:, 1]) / grid.cell - 0.5
    j0, i0 = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = fx - j0, fy - i0
    whole = np.zeros(grid.rows * grid.cols)
    for di, dj, part in ((0, 0, (1 - ty) * (1 - tx)), (0, 1, (1 - ty) * tx),
                         (1, 0, ty * (1 - tx)), (1, 1, ty * tx)):
        whole += np.bincount((i0 + di) * grid.cols + (j0 + dj), weights=w * part,
                             minlength=whole.size)
    got = _bin(xy, w, grid)
    assert got.shape == (50, 40)
    assert got.tobytes() == whole.reshape(50, 40).tobytes()
    assert got.sum() == pytest.approx(w.sum()) and (got[:10] == 0).all()


def test_bad_options_name_the_fix():
    xy = sample(10)
    with pytest.raises(InputError, match="kernel"):
        kde(xy, kernel="epanechnikov")
    with pytest.raises(InputError, match="bandwidth rule"):
        kde(xy, bandwidth="magic")
    with pytest.raises(InputError, match="cell_size"):
        kde(xy, cell_size=0)
    with pytest.raises(InputError, match="larger"):
        kde(xy, bandwidth=1000.0, cell_size=0.5, area=box(X0 - 1e6, Y0, X0 + 1e6, Y0 + 1e6))


# ------------------------------------------------------------ likelihood cross-validation


def brute_force_lcv(xy, sd):
    """Σ_i log f̂_{−i}(x_i), one point at a time, written out from the definition."""
    n = len(xy)
    total = 0.0
    for i in range(n):
        s = 0.0
        for j in range(n):
            if j != i:
                d2 = (xy[i, 0] - xy[j, 0]) ** 2 + (xy[i, 1] - xy[j, 1]) ** 2
                s += np.exp(-d2 / (2 * sd * sd)) / (2 * np.pi * sd * sd)
        total += np.log(s / (n - 1))
    return total


def test_likelihood_cv_equals_a_brute_force_leave_one_out():
    from incubloc.stats.density import kernel_sd, likelihood_cv_sd

    rng = np.random.default_rng(7)
    # two clusters: cross-validation should smooth less than the normal reference
    xy = np.vstack([rng.normal(0, 300, (40, 2)), rng.normal(5000, 300, (40, 2))])
    sd = likelihood_cv_sd(xy)
    fine = np.linspace(0.5 * sd, 2.0 * sd, 61)
    ref = np.array([brute_force_lcv(xy, s) for s in fine])
    best = fine[np.argmax(ref)]
    assert sd == pytest.approx(best, rel=0.03)
    assert brute_force_lcv(xy, sd) >= ref.max() - 1e-6  # at least the grid's best
    scott = np.sqrt(xy.var(axis=0, ddof=1).mean()) * len(xy) ** (-1 / 6)
    assert sd < 0.5 * scott
    # as a rule: the quartic radius with that standard deviation, the Gaussian sd itself
    assert bandwidth_rule(xy, rule="lcv", kernel="gaussian") == pytest.approx(sd)
    assert kernel_sd("quartic", bandwidth_rule(xy, rule="lcv")) == pytest.approx(sd)


def test_lcv_is_selectable_by_name_in_kde():
    rng = np.random.default_rng(3)
    xy = rng.normal(0, 1000, (120, 2))
    from incubloc.stats.density import likelihood_cv_sd

    s = kde(xy, bandwidth="lcv", kernel="gaussian", cell_size=250)
    assert s.bandwidth_m == pytest.approx(likelihood_cv_sd(xy))
    assert s.params["bandwidth_rule"] == "lcv"
