"""Kernel density surfaces of incubator locations, written as GeoTIFF.

A surface is computed on a regular grid in the points' metric CRS (local UTM by
default, see :func:`incubloc.coords.to_metric`): points are linearly binned to cell
centres and convolved (FFT) with the kernel discretised on the grid, so the cost is
O(N + G log G) for N points and G cells, never N × G. The discrete kernel is scaled
to sum to one and the grid is padded by the kernel's reach, so no mass is lost: a
``"count"`` surface integrates to the number of points (or the sum of the
weights) and a ``"density"`` surface to 1.

Kernels (d = distance, h = bandwidth in metres):

* ``"quartic"`` (biweight, ArcGIS's default): K(d) = 3 / (π h²) · (1 − d²/h²)² for
  d < h; h is the search radius.
* ``"gaussian"``: K(d) = exp(−d² / 2h²) / (2π h²), truncated at 4h; h is the
  standard deviation.

Bandwidth rules (:func:`bandwidth_rule`) give the bandwidth from the points. A rule
either gives the kernel's per-axis standard deviation σ_K (a two-dimensional rule),
which is then converted to each kernel's h, or, for the legacy rules, h itself:

* ``"scott"`` (default): Scott's two-dimensional normal reference rule,
  σ_K = σ̂ · n^(−1/6), σ̂ = √((s_x² + s_y²)/2) from the sample variances
  (ddof = 1), the per-axis standard deviation scipy's ``gaussian_kde`` uses
  (``scott_factor`` n^(−1/(d+4)), d = 2) averaged over the axes so the kernel stays
  round;
* ``"silverman1d"``: 0.9 · min(σ̂, IQR / 1.349) · n^(−1/5), Silverman's
  *one-dimensional* rule of thumb, used as h directly (the radius of the quartic
  kernel). This was the default before: it smooths about three times less than the
  two-dimensional rule (on the bundled data a 6.1 km radius is a per-axis spread of
  2.1 km). ``"silverman"`` is kept as a name for it;
* ``"lcv"``: likelihood cross-validation (:func:`likelihood_cv_sd`): σ_K maximises
  the leave-one-out log-likelihood Σ_i log f̂_{−i}(x_i) of a round Gaussian kernel
  estimate (Silverman 1986, §3.4.4; the density analogue of spatstat's ``bw.ppl``),
  then converted to the kernel's h like Scott's. Data-driven: it follows the
  clustering instead of assuming a normal spread, so on clustered points it
  smooths less than Scott's rule. No edge correction; O(n²) time;
* ``"arcgis"``: h = 0.9 · min(SD, √(1/ln 2) · Dm) · n^(−1/5), SD the standard
  distance and Dm the median distance to the mean centre (ArcGIS Pro's Kernel
  Density default search radius), used as h.

In two dimensions Scott's rule (n^(−1/6)) and Silverman's one-dimensional rule
(n^(−1/5), 0.9 and the IQR) do *not* coincide. The kernels' per-axis standard
deviations (:func:`kernel_sd`) are σ_K = h / √8 for the quartic kernel (its mean
squared distance is h²/4) and σ_K = h for the Gaussian kernel, so a 2-D rule gives
the quartic radius h = √8 · σ_K. Every surface records both h (``bandwidth_m``) and
σ_K (``kernel_sd_m``). Give metres to choose h yourself. Values are points per km²
(``"count"``) or probability per km² (``"density"``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from incubloc._guards import check_array_memory
from incubloc._version import __version__
from incubloc.errors import InputError
from incubloc.io import atomic_path
from incubloc.stats._results import Result, jsonable
from incubloc.stats.pointpattern import PointsLike, WindowLike, metric_window, metric_xy

if TYPE_CHECKING:
    from affine import Affine

# rasterio is imported where it is used: a surface sent from another process (or
# read from a pickle) then loads without it.

__all__ = [
    "DensitySurface",
    "bandwidth_rule",
    "kde",
    "kde_by_year",
    "kernel_sd",
    "likelihood_cv_sd",
    "write_geotiff",
]

log = logging.getLogger(__name__)

RULES = ("scott", "lcv", "silverman1d", "silverman", "arcgis")
#: Rules that give the kernel's standard deviation (converted to each kernel's h).
_SD_RULES = ("scott", "lcv")
_QUARTIC_SD = 1.0 / np.sqrt(8.0)  # per-axis sd of the quartic kernel of radius 1
KERNELS = ("quartic", "gaussian")
_NODATA = -9999.0
_MAX_CELLS = 100_000_000


@dataclasses.dataclass
class DensitySurface(Result):
    """A kernel density surface on a north-up grid.

    ``array[row, col]``: row 0 is the northern edge. ``transform`` maps (col, row) to
    the CRS coordinates of a cell's upper-left corner. ``mask`` is True for cells
    whose centre is inside the study area (None without one); cells outside keep
    their values so that :meth:`integral` counts all the mass.
    """

    array: np.ndarray
    transform: Affine
    crs: CRS | None
    kernel: str
    bandwidth_m: float
    bandwidth_rule: str
    cell_size: float
    n_points: int
    total_weight: float
    normalize: str
    units: str
    mask: np.ndarray | None = None
    year: int | None = None

    @property
    def rule(self) -> str:
        """The bandwidth rule's name, or ``"given"`` for metres."""
        return self.bandwidth_rule

    @property
    def kernel_sd_m(self) -> float:
        """The kernel's per-axis standard deviation in metres (h / √8 for quartic)."""
        return kernel_sd(self.kernel, self.bandwidth_m)

    @property
    def cell_area_km2(self) -> float:
        return self.cell_size**2 / 1e6

    def integral(self) -> float:
        """Sum of value × cell area: the number of points (or 1 for ``"density"``)."""
        return float(self.array.sum() * self.cell_area_km2)

    def masked(self) -> np.ndarray:
        """The array with NaN outside the study area (for display)."""
        if self.mask is None:
            return self.array.copy()
        return np.where(self.mask, self.array, np.nan)

    @property
    def params(self) -> dict[str, Any]:
        """The parameters recorded in the GeoTIFF tags."""
        return {
            "kernel": self.kernel,
            "bandwidth_m": self.bandwidth_m,
            "kernel_sd_m": self.kernel_sd_m,
            "bandwidth_rule": self.bandwidth_rule,
            "cell_size_m": self.cell_size,
            "n_points": self.n_points,
            "total_weight": self.total_weight,
            "normalize": self.normalize,
            "units": self.units,
            "crs": self.crs.to_string() if self.crs is not None else None,
            "year": self.year,
            "incubloc_version": __version__,
        }

    def to_dict(self) -> dict[str, Any]:
        out = jsonable(self.params)
        out.update(
            shape=list(self.array.shape),
            transform=list(self.transform)[:6],
            max=jsonable(float(self.array.max()) if self.array.size else None),
            integral=self.integral(),
        )
        return out

    def _scalars(self) -> list[tuple[str, Any]]:
        rows = [(k, v) for k, v in self.params.items() if v is not None]
        rows += [
            ("shape", f"{self.array.shape[0]} × {self.array.shape[1]}"),
            ("max", float(self.array.max())),
            ("integral", self.integral()),
        ]
        return rows


# -------------------------------------------------------------------------- bandwidth


def kernel_sd(kernel: str, h: float) -> float:
    """Per-axis standard deviation of ``kernel`` with bandwidth ``h`` (metres).

    Examples
    --------
    >>> round(kernel_sd("quartic", 6060.0))  # the radius of a quartic kernel / √8
    2143
    >>> kernel_sd("gaussian", 1000.0)
    1000.0
    """
    if kernel == "quartic":
        return float(h * _QUARTIC_SD)
    if kernel == "gaussian":
        return float(h)
    raise InputError(f"unknown kernel {kernel!r}: use 'quartic' or 'gaussian'")


def _rule(xy: np.ndarray, rule: str, kernel: str = "quartic") -> float:
    n = len(xy)
    if n < 2:
        raise InputError(f"a bandwidth rule needs at least 2 points, got {n}: give metres")
    if rule not in RULES:
        raise InputError(
            f"unknown bandwidth rule {rule!r}: use one of {', '.join(RULES)} or metres"
        )
    if rule == "scott":
        sigma = float(np.sqrt(xy.var(axis=0, ddof=1).mean()))
        sd = sigma * n ** (-1.0 / 6.0)
        h = sd / kernel_sd(kernel, 1.0)  # the kernel's h with that standard deviation
    elif rule == "lcv":
        h = likelihood_cv_sd(xy) / kernel_sd(kernel, 1.0)
    elif rule in ("silverman1d", "silverman"):
        sigma = float(np.sqrt(xy.var(axis=0).mean()))
        iqr = float(np.mean(np.subtract(*np.percentile(xy, [75, 25], axis=0))))
        spread = min(sigma, iqr / 1.349) if iqr > 0 else sigma
        h = 0.9 * spread * n ** (-0.2)
    else:  # arcgis
        sd = float(np.sqrt(xy.var(axis=0).sum()))
        dm = float(np.median(np.hypot(*(xy - xy.mean(axis=0)).T)))
        h = 0.9 * min(sd, np.sqrt(1.0 / np.log(2.0)) * dm) * n ** (-0.2)
    if not h > 0:
        raise InputError("the points do not spread (all identical?): give the bandwidth in metres")
    return float(h)


def _loo_loglik(d2: np.ndarray, sds: np.ndarray, rows: int = 512) -> np.ndarray:
    """Σ_i log f̂_{−i}(x_i) of a round Gaussian KDE for each sd, from squared distances.

    ``d2`` is the n × n matrix of squared distances (the diagonal is left out).
    """
    n = len(d2)
    out = np.zeros(len(sds))
    for k, sd in enumerate(sds):  # few bandwidths; rows in blocks to bound memory
        total = 0.0
        for r0 in range(0, n, rows):
            e = -d2[r0: r0 + rows] / (2.0 * sd * sd)
            idx = np.arange(r0, min(n, r0 + rows))
            e[idx - r0, idx] = -np.inf  # leave the point itself out
            m = e.max(axis=1)
            m = np.where(np.isfinite(m), m, 0.0)
            with np.errstate(divide="ignore"):
                total += float(np.sum(m + np.log(np.exp(e - m[:, None]).sum(axis=1))))
        out[k] = total - n * np.log((n - 1) * 2.0 * np.pi * sd * sd)
    return out


def likelihood_cv_sd(points: PointsLike | np.ndarray, *, n_grid: int = 41) -> float:
    """Per-axis kernel standard deviation (metres) chosen by likelihood cross-validation.

    Maximises LCV(σ) = Σ_i log f̂_{−i}(x_i), f̂_{−i} the round Gaussian kernel estimate
    with standard deviation σ from all points but i, first on a log-spaced grid from
    σ̂/200 to σ̂ (σ̂ the points' spread), then by a bounded search between the grid
    neighbours of the best value.

    Examples
    --------
    >>> xy = np.random.default_rng(1).normal(0, 1000, (300, 2))
    >>> sd = likelihood_cv_sd(xy)
    >>> bool(150 < sd < 1000)  # normal data: near Scott's 1000 · 300^(−1/6) ≈ 387
    True
    """
    from scipy.optimize import minimize_scalar

    xy = points if isinstance(points, np.ndarray) else metric_xy(points)[0]
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if n < 3:
        raise InputError(f"likelihood cross-validation needs at least 3 points, got {n}")
    check_array_memory((n, n, 2), what="pairwise distances for likelihood cross-validation",
                       suggestion="use bandwidth='scott' or give metres")
    spread = float(np.sqrt(xy.var(axis=0, ddof=1).mean()))
    if not spread > 0:
        raise InputError("the points do not spread (all identical?): give the bandwidth in metres")
    diff = xy[:, None, :] - xy[None, :, :]
    d2 = (diff * diff).sum(axis=2)
    grid = spread * np.logspace(np.log10(1 / 200), 0, n_grid)
    ll = _loo_loglik(d2, grid)
    k = int(np.argmax(ll))
    if k == 0:
        log.warning("likelihood cross-validation: the best bandwidth is the smallest tried "
                    "(%.3g m); duplicate points make the likelihood grow without bound", grid[0])
        return float(grid[0])
    if k == len(grid) - 1:
        return float(grid[-1])
    res = minimize_scalar(lambda t: -_loo_loglik(d2, np.array([np.exp(t)]))[0],
                          bounds=(np.log(grid[k - 1]), np.log(grid[k + 1])),
                          method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x)) if -res.fun >= ll[k] else float(grid[k])


def bandwidth_rule(
    points: PointsLike, *, rule: str = "scott", kernel: Literal["quartic", "gaussian"] = "quartic"
) -> float:
    """Bandwidth h in metres of ``kernel`` by a named rule (formulas in the module notes).

    For ``"scott"`` h is the kernel whose per-axis standard deviation is Scott's
    σ̂ · n^(−1/6): the quartic radius √8 times that, the Gaussian σ itself. The legacy
    rules (``"silverman1d"``, ``"arcgis"``) give h directly for either kernel.

    Examples
    --------
    >>> xy = np.random.default_rng(0).normal(0, 1000, (500, 2))
    >>> h = bandwidth_rule(xy, rule="scott", kernel="gaussian")
    >>> bool(abs(h - 1000 * 500 ** (-1 / 6)) < 60)
    True
    >>> round(bandwidth_rule(xy, rule="scott") / h, 4)  # quartic radius = √8 · sd
    2.8284
    """
    xy, _, _ = metric_xy(points)
    return _rule(xy, rule, kernel)


# ------------------------------------------------------------------------------- KDE


@dataclasses.dataclass
class _Grid:
    x0: float
    ytop: float
    cell: float
    rows: int
    cols: int
    crs: CRS | None

    @property
    def transform(self) -> Affine:
        from rasterio.transform import Affine

        return Affine(self.cell, 0.0, self.x0, 0.0, -self.cell, self.ytop)


def _make_grid(
    xy: np.ndarray, area: shapely.Geometry | None, reach: float, cell: float, crs: CRS | None
) -> _Grid:
    bounds = [xy.min(axis=0), xy.max(axis=0)] if len(xy) else []
    if area is not None:
        b = shapely.bounds(area)
        bounds += [np.array(b[:2]), np.array(b[2:])]
    if not bounds:
        raise InputError("nothing to grid: no points and no area")
    lo = np.min(bounds, axis=0)
    hi = np.max(bounds, axis=0)
    pad = (int(np.ceil(reach / cell)) + 1) * cell
    x0 = np.floor(lo[0] / cell) * cell - pad
    y0 = np.floor(lo[1] / cell) * cell - pad
    x1 = np.ceil(hi[0] / cell) * cell + pad
    y1 = np.ceil(hi[1] / cell) * cell + pad
    cols, rows = int(round((x1 - x0) / cell)), int(round((y1 - y0) / cell))
    if rows * cols > _MAX_CELLS:
        raise InputError(
            f"a {cell:g} m grid over this extent has {rows * cols:,} cells: use a larger "
            "cell_size (metres)"
        )
    # Binning, the FFT and its padded copy hold about three grids of float64 at once.
    check_array_memory(
        (3, rows, cols), "float64",
        what=f"a {cell:g} m density grid of {rows:,} x {cols:,} cells",
        suggestion="use a larger cell size (--cell-size), a smaller study area, or sample the points",
    )
    return _Grid(float(x0), float(y1), float(cell), rows, cols, crs)


def _kernel(kind: str, h: float, cell: float) -> np.ndarray:
    reach = h if kind == "quartic" else 4.0 * h
    r = int(np.ceil(reach / cell))
    off = np.arange(-r, r + 1) * cell
    d2 = off[None, :] ** 2 + off[:, None] ** 2
    if kind == "quartic":
        k = np.where(d2 < h * h, 3.0 / (np.pi * h * h) * (1.0 - d2 / (h * h)) ** 2, 0.0)
    else:
        k = np.where(d2 <= reach * reach, np.exp(-d2 / (2.0 * h * h)) / (2.0 * np.pi * h * h), 0.0)
    total = k.sum()
    if not total > 0:  # bandwidth far below the cell size: all mass in the centre cell
        k = np.zeros_like(d2)
        k[r, r] = 1.0
        return k
    return k / total


@functools.lru_cache(maxsize=4)
def _kernel_spectrum(kind: str, h: float, cell: float,
                     shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, ...], tuple[int, ...]]:
    """The kernel's real FFT on the padded grid of a ``shape`` raster (read-only),
    with the full and padded shapes: one transform for every surface of a run."""
    from scipy import fft as sp_fft

    k = _kernel(kind, h, cell)
    full = tuple(a + b - 1 for a, b in zip(shape, k.shape, strict=True))
    padded = tuple(sp_fft.next_fast_len(n, True) for n in full)
    spec = sp_fft.rfftn(k, padded, axes=(0, 1))
    spec.setflags(write=False)
    return spec, full, padded


def _convolve_same(mass: np.ndarray, kind: str, h: float, cell: float) -> np.ndarray:
    """``scipy.signal.fftconvolve(mass, _kernel(kind, h, cell), mode="same")``, the
    same steps and numbers, with the kernel's transform computed once per grid
    (kde_by_year convolves one raster per year with the same kernel)."""
    from scipy import fft as sp_fft

    spec, full, padded = _kernel_spectrum(kind, float(h), float(cell), mass.shape)
    ret = sp_fft.irfftn(sp_fft.rfftn(mass, padded, axes=(0, 1)) * spec, padded, axes=(0, 1))
    ret = ret[: full[0], : full[1]]
    r0, c0 = ((n - m) // 2 for n, m in zip(full, mass.shape, strict=True))
    return ret[r0: r0 + mass.shape[0], c0: c0 + mass.shape[1]]


def _bin(xy: np.ndarray, w: np.ndarray, grid: _Grid) -> np.ndarray:
    """Linear (cloud-in-cell) binning of weighted points to cell centres."""
    fx = (xy[:, 0] - grid.x0) / grid.cell - 0.5
    fy = (grid.ytop - xy[:, 1]) / grid.cell - 0.5
    j0, i0 = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = fx - j0, fy - i0
    flat = np.zeros(grid.rows * grid.cols)
    for di, dj, part in (
        (0, 0, (1 - ty) * (1 - tx)),
        (0, 1, (1 - ty) * tx),
        (1, 0, ty * (1 - tx)),
        (1, 1, ty * tx),
    ):  # the four corners, each vectorised over all points
        # Counted over the span of cells the points reach, not the whole grid: the
        # same sums (cells outside it would only add 0.0) without a grid-sized array.
        at = (i0 + di) * grid.cols + (j0 + dj)
        lo = int(at.min())
        part_sums = np.bincount(at - lo, weights=w * part)
        flat[lo: lo + len(part_sums)] += part_sums
    return flat.reshape(grid.rows, grid.cols)


def _surface(
    xy: np.ndarray,
    w: np.ndarray,
    grid: _Grid,
    kernel: str,
    h: float,
    rule: str,
    normalize: str,
    area: shapely.Geometry | None,
    year: int | None = None,
    area_mask: np.ndarray | None = None,
) -> DensitySurface:
    mass = _bin(xy, w, grid) if len(xy) else np.zeros((grid.rows, grid.cols))
    if len(xy):
        conv = _convolve_same(mass, kernel, h, grid.cell)
        conv = np.clip(conv, 0.0, None)  # FFT round-off leaves tiny negatives
        total = conv.sum()
        if total > 0:  # restore exact mass after clipping
            conv *= mass.sum() / total
    else:
        conv = mass
    cell_km2 = grid.cell**2 / 1e6
    total_w = float(w.sum())
    if normalize == "count":
        values, units = conv / cell_km2, "points per km2"
    else:
        values = conv / cell_km2 / total_w if total_w > 0 else conv
        units = "probability per km2"
    mask = None
    if area is not None and area_mask is not None:  # the same area on the same grid
        mask = area_mask.copy()
    elif area is not None:
        from rasterio.features import geometry_mask

        mask = geometry_mask(
            [area], out_shape=(grid.rows, grid.cols), transform=grid.transform, invert=True
        )
    return DensitySurface(
        array=values,
        transform=grid.transform,
        crs=grid.crs,
        kernel=kernel,
        bandwidth_m=float(h),
        bandwidth_rule=rule,
        cell_size=grid.cell,
        n_points=int(len(xy)),
        total_weight=total_w,
        normalize=normalize,
        units=units,
        mask=mask,
        year=year,
    )


def _prepare(
    points: PointsLike,
    area: WindowLike,
    kernel: str,
    bandwidth: str | float,
    cell_size: float,
    weights: Any,
    normalize: str,
    crs: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, shapely.Geometry | None, float, str, CRS | None]:
    if kernel not in KERNELS:
        raise InputError(f"unknown kernel {kernel!r}: use 'quartic' or 'gaussian'")
    if normalize not in ("count", "density"):
        raise InputError(f"normalize must be 'count' or 'density', not {normalize!r}")
    if not (isinstance(cell_size, int | float) and cell_size > 0):
        raise InputError(f"cell_size must be positive metres, got {cell_size!r}")
    xy, mcrs, used = metric_xy(points, crs=crs)
    w = np.ones(len(xy))
    if weights is not None:
        if isinstance(weights, str):
            if not isinstance(points, gpd.GeoDataFrame) or weights not in points.columns:
                raise InputError(f"weights column {weights!r} is not in the points table")
            weights = points[weights]
        w = np.asarray(weights, dtype=float)[used]
        if not (np.isfinite(w).all() and (w >= 0).all()):
            raise InputError("weights must be finite and non-negative")
    geom = metric_window(area, mcrs, getattr(points, "crs", None)) if area is not None else None
    if isinstance(bandwidth, str):
        rule, h = bandwidth, _rule(xy, bandwidth, kernel)
    else:
        rule, h = "given", float(bandwidth)
        if not h > 0:
            raise InputError(f"bandwidth must be positive metres or a rule name, got {bandwidth}")
    if h < 2 * cell_size:
        log.warning(
            "bandwidth %.0f m is under two cells of %.0f m: the surface will be coarse",
            h,
            cell_size,
        )
    log.info(
        "KDE: %s kernel, bandwidth %.0f m (%s; kernel sd %.0f m), cell %.0f m",
        kernel, h, rule, kernel_sd(kernel, h), cell_size,
    )
    return xy, w, used, geom, h, rule, mcrs


def kde(
    points: PointsLike,
    *,
    area: WindowLike = None,
    kernel: Literal["quartic", "gaussian"] = "quartic",
    bandwidth: str | float = "scott",
    cell_size: float = 500.0,
    weights: str | np.ndarray | pd.Series | None = None,
    normalize: Literal["count", "density"] = "count",
    crs: Any = None,
) -> DensitySurface:
    """Kernel density surface of ``points``.

    Parameters
    ----------
    points : GeoDataFrame, GeoSeries or (n, 2) array (metres)
    area : polygons or shapely geometry, optional
        Study area: the grid covers it (plus the kernel's reach) and ``mask`` marks
        the cells inside it. Default: the points' extent.
    kernel : {"quartic", "gaussian"}
    bandwidth : {"scott", "lcv", "silverman1d", "arcgis"} or float
        A named rule or h in metres (the quartic kernel's radius, the Gaussian's
        standard deviation). Default ``"scott"``: the two-dimensional rule.
    cell_size : float
        Metres.
    weights : str, array or Series, optional
        A column of ``points`` or one non-negative value per point.
    normalize : {"count", "density"}
        Points per km² (integral = number of points / total weight) or probability
        per km² (integral = 1).
    crs : CRS-like, optional
        Metric CRS (default: local UTM of the points).

    Returns
    -------
    DensitySurface

    Examples
    --------
    >>> xy = np.random.default_rng(0).normal(0, 2000, (300, 2))
    >>> s = kde(xy, bandwidth=1500.0, cell_size=200)
    >>> round(s.integral(), 6)
    300.0
    """
    xy, w, _, geom, h, rule, mcrs = _prepare(
        points, area, kernel, bandwidth, cell_size, weights, normalize, crs
    )
    reach = h if kernel == "quartic" else 4.0 * h
    grid = _make_grid(xy, geom, reach, float(cell_size), mcrs)
    return _surface(xy, w, grid, kernel, h, rule, normalize, geom)


def kde_by_year(
    points: gpd.GeoDataFrame,
    *,
    year_col: str = "opened",
    cumulative: bool = True,
    years: list[int] | None = None,
    area: WindowLike = None,
    kernel: Literal["quartic", "gaussian"] = "quartic",
    bandwidth: str | float = "scott",
    cell_size: float = 500.0,
    weights: str | np.ndarray | pd.Series | None = None,
    normalize: Literal["count", "density"] = "count",
    crs: Any = None,
) -> dict[int, DensitySurface]:
    """One surface per opening year, on one grid with one bandwidth.

    The grid and a rule-based bandwidth come from all dated points, so the surfaces
    of different years are directly comparable. Points without a year are left out
    (logged).

    Parameters
    ----------
    points : GeoDataFrame
    year_col : str
        Opening year column.
    cumulative : bool
        True: the surface of year y shows all incubators opened by y (the stock);
        False: those opened in y only.
    years : list of int, optional
        Default: every year present.
    area, kernel, bandwidth, cell_size, weights, normalize, crs
        As :func:`kde`.

    Returns
    -------
    dict of int to DensitySurface, in year order

    Examples
    --------
    >>> xy = np.random.default_rng(0).normal(0, 2000, (60, 2))
    >>> g = gpd.GeoDataFrame({"opened": [2014, 2015, 2016] * 20},
    ...                      geometry=gpd.points_from_xy(*xy.T), crs=32650)
    >>> s = kde_by_year(g, bandwidth=2000.0, cell_size=250)
    >>> {y: round(v.integral()) for y, v in s.items()}
    {2014: 20, 2015: 40, 2016: 60}
    """
    if year_col not in points.columns:
        raise InputError(f"year column {year_col!r} is not in the points table")
    year = pd.to_numeric(points[year_col], errors="coerce")
    dated = year.notna().to_numpy()
    if not dated.all():
        log.warning(
            "%d of %d points have no %s and are left out", (~dated).sum(), len(dated), year_col
        )
    if isinstance(weights, str):
        if weights not in points.columns:
            raise InputError(f"weights column {weights!r} is not in the points table")
        weights = points[weights].to_numpy()
    sub = points[dated]
    wsub = None if weights is None else np.asarray(weights, dtype=float)[dated]
    xy, w, used, geom, h, rule, mcrs = _prepare(
        sub, area, kernel, bandwidth, cell_size, wsub, normalize, crs
    )
    yrs = year[dated].to_numpy()[used].astype(int)
    reach = h if kernel == "quartic" else 4.0 * h
    grid = _make_grid(xy, geom, reach, float(cell_size), mcrs)
    from rasterio.features import geometry_mask

    area_mask = None if geom is None else geometry_mask(  # one mask for every year
        [geom], out_shape=(grid.rows, grid.cols), transform=grid.transform, invert=True)
    out: dict[int, DensitySurface] = {}
    for y in sorted(set(yrs.tolist()) if years is None else years):  # one FFT per year
        sel = yrs <= y if cumulative else yrs == y
        out[int(y)] = _surface(xy[sel], w[sel], grid, kernel, h, rule, normalize, geom, int(y),
                               area_mask=area_mask)
    return out


# ---------------------------------------------------------------------------- output


def write_geotiff(
    surface: DensitySurface | Mapping[int, DensitySurface],
    path: str | os.PathLike,
    *,
    mask: bool = True,
    overwrite: bool = True,
) -> None:
    """Write a surface (or one band per year) as a float32 GeoTIFF, atomically.

    The file carries the CRS, the transform and tags with the parameters
    (``kernel``, ``bandwidth_m``, ``kernel_sd_m``, ``bandwidth_rule``, ``cell_size_m``, ``n_points``,
    ``normalize``, ``units``, ``crs``, ``incubloc_version``; per band ``year`` and
    ``n_points``). With ``mask`` cells outside the study area are nodata (-9999).

    Examples
    --------
    >>> import tempfile
    >>> xy = np.random.default_rng(0).normal(0, 2000, (50, 2))
    >>> s = kde(xy, bandwidth=1500.0, cell_size=500, crs=32650)
    >>> path = os.path.join(tempfile.mkdtemp(), "kde.tif")
    >>> write_geotiff(s, path)
    >>> import rasterio
    >>> with rasterio.open(path) as src:
    ...     src.crs.to_epsg(), src.tags()["kernel"]
    (32650, 'quartic')
    """
    import rasterio

    surfaces = list(surface.values()) if isinstance(surface, Mapping) else [surface]
    if not surfaces:
        raise InputError("no surface to write")
    first = surfaces[0]
    for s in surfaces[1:]:
        if s.array.shape != first.array.shape or s.transform != first.transform:
            raise InputError("surfaces written to one file must share a grid (use kde_by_year)")
    profile = {
        "driver": "GTiff",
        "height": first.array.shape[0],
        "width": first.array.shape[1],
        "count": len(surfaces),
        "dtype": "float32",
        "nodata": _NODATA,
        "transform": first.transform,
        "compress": "deflate",
        # the fastest deflate level: surfaces of float noise shrink no further at 6
        "zlevel": 1,
    }
    if first.crs is not None:
        epsg = first.crs.to_epsg()
        profile["crs"] = rasterio.crs.CRS.from_epsg(epsg) if epsg else first.crs.to_wkt()
    tags = {k: "" if v is None else str(v) for k, v in first.params.items() if k != "year"}
    tags["n_points"] = str(max(s.n_points for s in surfaces))
    tags["masked_outside_area"] = str(bool(mask and first.mask is not None))
    with atomic_path(path, overwrite=overwrite) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.update_tags(**tags)
        # One float32 buffer for every band (GDAL copies what it is given): the
        # same values as a cast and a np.where per band, without a new grid each.
        data = np.empty(first.array.shape, dtype=np.float32)
        for band, s in enumerate(surfaces, start=1):
            np.copyto(data, s.array, casting="same_kind")
            if mask and s.mask is not None:
                np.copyto(data, np.float32(_NODATA), where=np.logical_not(s.mask))
            dst.write(data, band)
            label = str(s.year) if s.year is not None else "density"
            dst.set_band_description(band, label)
            dst.update_tags(
                band, year="" if s.year is None else str(s.year), n_points=str(s.n_points)
            )
