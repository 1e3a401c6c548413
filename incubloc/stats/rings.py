"""Ring statistics: the ring table, density gradient, opening sequence and the
ring-edge test (He & Wang 2016, section 2.2: density falls and opening years rise
outward; incubators sit at the edges of their rings, 分布在各圈层的边缘地区).

The rings themselves (building a ring layer, assigning incubators, the per-city ring
pattern) are the town scale, :mod:`incubloc.scales.rings`. Areas are computed in a Lambert
azimuthal equal-area projection centred on the ring layer; distances in the local
UTM zone. The ring-edge test draws its random locations through
:func:`incubloc.stats._random.rng`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from incubloc._results import Result
from incubloc.coords import metric_crs
from incubloc.errors import InputError
from incubloc.geometry import located_points
from incubloc.scales.rings import (
    RING_ORDER,
    RINGS,
    assign_ring,
    dissolved_rings,
    equal_area_crs,
    ring_columns,
    ring_layer,
    ring_systems,
)
from incubloc.segments import SegmentIndex, segments_of
from incubloc.stats._random import rng
from incubloc.stats.distributions import rankdata, spearmanr
from incubloc.vocabulary import LEVEL, UNCLASSIFIED

__all__ = ["RingEdgeResult", "density_gradient", "opening_sequence", "ring_edge_test",
           "ring_table"]


# --------------------------------------------------------------------------- tables


def ring_table(classified: pd.DataFrame, *, rings: gpd.GeoDataFrame) -> pd.DataFrame:
    """Statistics per ring system and ring, every ring of the layer included.

    Area is the polygon area in a Lambert azimuthal equal-area projection centred
    on the ring layer (ring polygons are expected to be land only already).

    Parameters
    ----------
    classified : DataFrame
        Per-incubator ``ring`` / ``ring_city`` and optionally ``level``, ``opened``,
        ``site_area_m2``, ``floor_area_m2``.
    rings : GeoDataFrame
        The ring layer.

    Returns
    -------
    DataFrame
        city, prefecture, ring, count, share (of the system's incubators in rings;
        NaN when it has none), area_km2, density_km2, density_100km2, opened_mean,
        opened_median, site_area_mean, floor_area_mean, n_national, n_provincial,
        n_municipal. Systems in layer order, rings from the centre outward.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> c = gpd.GeoDataFrame({"city": ["X"]}, geometry=[Point(670_000, 3_548_000)], crs=32650)
    >>> from incubloc.scales.rings import rings_from_distance
    >>> rings = rings_from_distance(c, radii=(5_000, 15_000, 30_000))
    >>> df = pd.DataFrame({"ring": ["core", "core", "inner_suburb"], "ring_city": "X",
    ...                    "opened": [2005, 2007, 2012]})
    >>> t = ring_table(df, rings=rings)
    >>> t[["ring", "count", "opened_mean"]].values.tolist()
    [['core', 2, 2006.0], ['inner_suburb', 1, 2012.0], ['outer_suburb', 0, nan]]
    >>> round(float(t["area_km2"].iloc[0]), 1)  # π · 5² km²
    78.5
    """
    layer = ring_layer(rings)
    diss = dissolved_rings(layer, equal_area_crs(layer))
    out = pd.DataFrame(
        {
            "city": diss["city"].astype(str).to_numpy(),
            "prefecture": diss["prefecture"].astype(str).to_numpy(),
            "ring": diss["ring"].astype(str).to_numpy(),
            "area_km2": np.asarray(diss.geometry.area, dtype=float) / 1e6,
        }
    )
    order = pd.Categorical(out["city"], categories=ring_systems(layer)["city"])
    out = (
        out.assign(_c=order, _r=out["ring"].map(RING_ORDER))
        .sort_values(["_c", "_r"], kind="stable")
        .drop(columns=["_c", "_r"])
        .reset_index(drop=True)
    )
    rc = ring_columns(classified, layer)
    ok = (rc["ring"].isin(RINGS) & rc["ring_city"].notna()).to_numpy()
    df = pd.DataFrame(
        {"city": rc["ring_city"].astype(object).to_numpy()[ok],
         "ring": rc["ring"].astype(object).to_numpy()[ok]}
    )
    sub = classified.loc[ok] if len(classified) else classified

    def num(col: str) -> np.ndarray:
        if col not in classified.columns:
            return np.full(int(ok.sum()), np.nan)
        return pd.to_numeric(sub[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    df["opened"] = num("opened")
    df["site"] = num("site_area_m2")
    df["floor"] = num("floor_area_m2")
    level = (
        LEVEL.classes(sub["level"]).to_numpy(dtype=object)
        if "level" in classified.columns
        else np.full(int(ok.sum()), UNCLASSIFIED, dtype=object)
    )
    for lev in LEVEL.labels:
        df[f"n_{lev}"] = (level == lev).astype("int64")
    agg = df.groupby(["city", "ring"], sort=False).agg(
        count=("ring", "size"),
        opened_mean=("opened", "mean"),
        opened_median=("opened", "median"),
        site_area_mean=("site", "mean"),
        floor_area_mean=("floor", "mean"),
        n_national=("n_national", "sum"),
        n_provincial=("n_provincial", "sum"),
        n_municipal=("n_municipal", "sum"),
    )
    out = out.merge(agg.reset_index(), on=["city", "ring"], how="left")
    for col in ("count", "n_national", "n_provincial", "n_municipal"):
        out[col] = out[col].fillna(0).astype("int64")
    totals = out.groupby("city", sort=False)["count"].transform("sum")
    out["share"] = np.where(totals > 0, out["count"] / totals.where(totals > 0, 1), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["density_km2"] = np.where(out["area_km2"] > 0, out["count"] / out["area_km2"], np.nan)
    out["density_100km2"] = out["density_km2"] * 100.0
    return out[
        ["city", "prefecture", "ring", "count", "share", "area_km2", "density_km2",
         "density_100km2", "opened_mean", "opened_median", "site_area_mean", "floor_area_mean",
         "n_national", "n_provincial", "n_municipal"]
    ]


def _exact_spearman_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided exact permutation p of Spearman's rho (all orderings of ``y``)."""
    rx = rankdata(x)
    ry = rankdata(y)

    def rho(a: np.ndarray) -> float:
        return float(np.corrcoef(rx, a)[0, 1])

    obs = abs(rho(ry))
    perms = np.array(list(itertools.permutations(ry)))
    values = np.abs([rho(p) for p in perms])
    return float(np.mean(values >= obs - 1e-12))


def density_gradient(ring_table: pd.DataFrame, *, city: str | None = None) -> pd.DataFrame:
    """Does incubator density fall from the core outward? One row per ring system.

    The test is a Poisson log-linear trend on the incubators themselves: the count
    in ring k (order 1 core, 2 inner suburb, 3 outer suburb) is Poisson with mean
    area_k · exp(β0 + β1 · k) (:func:`incubloc.stats.trend.poisson_trend`, offset
    log ring area). ``rate_ratio`` = exp(β1) is the density ratio per ring step
    outward (below 1: density falls outward), with a 95 % Wald interval and the
    two-sided Wald p of "no gradient" (rate ratio 1). The Poisson model treats the
    incubators as independent given the ring; clustering within rings makes counts
    overdispersed (``dispersion``, Pearson χ² / df, df = rings − 2, above 1), so the
    interval and p are quasi-Poisson (standard error × √dispersion, Student's t
    with df degrees of freedom; ``rate_ratio_interval`` names the one used). Spearman's ρ between ring order and density is kept as a
    description only: over three rings its exact p can never fall below 1/3.

    Parameters
    ----------
    ring_table : DataFrame
        The output of :func:`ring_table` (``count`` and ``area_km2`` per ring).
    city : str, optional
        Only this ring system.

    Returns
    -------
    DataFrame
        city, n_rings, n_incubators, density_core, density_inner_suburb,
        density_outer_suburb (per km², NaN for a ring the system lacks),
        monotone_decreasing (each ring at most as dense as the next one in and at
        least one strict fall; NA with fewer than 2 rings), rate_ratio,
        rate_ratio_ci_low, rate_ratio_ci_high, rate_ratio_p, dispersion,
        rate_ratio_interval ("quasi-poisson", or "poisson" with two rings), spearman_rho and spearman_p (descriptive; exact permutation p over the
        orderings), and note.

    Examples
    --------
    >>> t = pd.DataFrame({"city": "X", "ring": ["core", "inner_suburb", "outer_suburb"],
    ...                   "count": [100, 50, 25], "area_km2": [10.0, 10.0, 10.0],
    ...                   "density_km2": [10.0, 5.0, 2.5]})
    >>> row = density_gradient(t).iloc[0]
    >>> round(float(row["rate_ratio"]), 3), bool(row["rate_ratio_ci_high"] < 1)
    (0.5, True)
    >>> float(row["spearman_rho"]), round(float(row["spearman_p"]), 3)
    (-1.0, 0.333)
    """
    from incubloc.stats.trend import poisson_trend

    t = ring_table if city is None else ring_table[ring_table["city"] == city]
    if city is not None and not len(t):
        raise InputError(f"the ring table has no ring system {city!r}")
    rows = []
    for name, grp in t.groupby("city", sort=False):
        g = grp.drop_duplicates("ring").set_index("ring")
        dens = g["density_km2"].reindex(list(RINGS))
        present = [r for r in RINGS if r in set(grp["ring"]) and pd.notna(dens[r])]
        vals = dens[present].to_numpy(float)
        row: dict[str, Any] = {"city": name, "n_rings": len(present)}
        for r in RINGS:
            row[f"density_{r}"] = float(dens[r]) if pd.notna(dens[r]) else np.nan
        if len(vals) >= 2:
            diff = np.diff(vals)
            row["monotone_decreasing"] = bool(np.all(diff <= 0) and np.any(diff < 0))
        else:
            row["monotone_decreasing"] = pd.NA
        notes = []
        order = np.array([RING_ORDER[r] for r in present], dtype=float)
        if {"count", "area_km2"} <= set(g.columns) and len(present):
            counts = g["count"].reindex(present).to_numpy(float)
            areas = g["area_km2"].reindex(present).to_numpy(float)
            row["n_incubators"] = int(np.nansum(counts))
            trend = poisson_trend(np.nan_to_num(counts), areas, order)
            row.update(rate_ratio=trend.rate_ratio, rate_ratio_ci_low=trend.ci_low,
                       rate_ratio_ci_high=trend.ci_high, rate_ratio_p=trend.p,
                       dispersion=trend.dispersion, rate_ratio_interval=trend.interval)
            if trend.note:
                notes.append(f"rate ratio: {trend.note}")
        else:
            row.update(n_incubators=np.nan, rate_ratio=np.nan, rate_ratio_ci_low=np.nan,
                       rate_ratio_ci_high=np.nan, rate_ratio_p=np.nan, dispersion=np.nan,
                       rate_ratio_interval="none")
            notes.append("the ring table lacks count / area_km2: no rate ratio")
        rho = p = np.nan
        if len(vals) < 3:
            notes.append(f"{len(vals)} ring(s) with a density: the rank correlation needs 3")
        elif np.ptp(vals) == 0:
            notes.append("the same density in every ring: the rank correlation is undefined")
        else:
            rho = float(spearmanr(order, vals)[0])
            p = _exact_spearman_p(order, vals)
        row.update(spearman_rho=rho, spearman_p=p, note="; ".join(notes))
        rows.append(row)
    out = pd.DataFrame(
        rows,
        columns=["city", "n_rings", "n_incubators", *[f"density_{r}" for r in RINGS],
                 "monotone_decreasing", "rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high",
                 "rate_ratio_p", "dispersion", "rate_ratio_interval", "spearman_rho",
                 "spearman_p", "note"],
    )
    out["monotone_decreasing"] = out["monotone_decreasing"].astype("boolean")
    return out


def opening_sequence(
    classified: pd.DataFrame,
    *,
    city: str | None = None,
    column: str = "opened",
    rings: gpd.GeoDataFrame | None = None,
) -> pd.DataFrame:
    """Do incubators open later (or grow larger) outward? One row per ring system.

    Spearman's rho between ring order (core 1, inner_suburb 2, outer_suburb 3) and
    ``column`` over incubators (:func:`incubloc.stats.distributions.spearmanr`, ties
    averaged, p from its t approximation). rho > 0: later (larger) outward.

    Parameters
    ----------
    classified : DataFrame
        Per-incubator ``ring``, ``ring_city`` and ``column``.
    city : str, optional
        Only this ring system.
    column : str
        ``"opened"`` (opening year) by default; ``"site_area_m2"`` gives the
        site-size gradient.
    rings : GeoDataFrame, optional
        Ring layer, used only when ``classified`` lacks ring columns.

    Returns
    -------
    DataFrame
        city, n (incubators with a value), n_rings (rings with one),
        ``<column>_mean_<ring>``, ``<column>_median_<ring>`` for each ring,
        spearman_rho, spearman_p, note (why rho is NaN: fewer than 3 incubators,
        one ring only, or a constant value). Systems by number of incubators,
        largest first.

    Examples
    --------
    >>> df = pd.DataFrame({"ring": ["core", "core", "inner_suburb", "outer_suburb"],
    ...                    "ring_city": "X", "opened": [2003, 2005, 2009, 2012]})
    >>> s = opening_sequence(df)
    >>> s.loc[0, ["opened_mean_core", "opened_mean_outer_suburb"]].tolist(), bool(s.loc[0, "spearman_rho"] > 0)
    ([2004.0, 2012.0], True)
    """
    rc = ring_columns(classified, rings)
    if column not in classified.columns:
        raise InputError(f"the incubators have no {column!r} column")
    value = pd.to_numeric(classified[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = (rc["ring"].isin(RINGS) & rc["ring_city"].notna()).to_numpy() & np.isfinite(value)
    df = pd.DataFrame(
        {"city": rc["ring_city"].to_numpy(dtype=object)[ok],
         "ring": rc["ring"].to_numpy(dtype=object)[ok], "value": value[ok]}
    )
    if city is not None:
        df = df[df["city"] == city]
    names = df["city"].value_counts(sort=False)
    names = names.iloc[np.argsort(-names.to_numpy(), kind="stable")].index
    rows = []
    for name in names:
        grp = df[df["city"] == name]
        row: dict[str, Any] = {"city": name, "n": len(grp), "n_rings": grp["ring"].nunique()}
        by = grp.groupby("ring")["value"]
        means, medians = by.mean(), by.median()
        for r in RINGS:
            row[f"{column}_mean_{r}"] = float(means.get(r, np.nan))
            row[f"{column}_median_{r}"] = float(medians.get(r, np.nan))
        order = grp["ring"].map(RING_ORDER).to_numpy(float)
        vals = grp["value"].to_numpy(float)
        rho = p = np.nan
        note = ""
        if len(grp) < 3:
            note = f"{len(grp)} incubator(s) with a value: at least 3 are needed"
        elif np.ptp(order) == 0:
            note = "all incubators lie in one ring"
        elif np.ptp(vals) == 0:
            note = f"every incubator has the same {column}"
        else:
            res = spearmanr(order, vals)
            rho, p = float(res[0]), float(res[1])
        row.update(spearman_rho=rho, spearman_p=p, note=note)
        rows.append(row)
    cols = ["city", "n", "n_rings"]
    for r in RINGS:
        cols += [f"{column}_mean_{r}", f"{column}_median_{r}"]
    return pd.DataFrame(rows, columns=[*cols, "spearman_rho", "spearman_p", "note"])


# --------------------------------------------------------------------------- ring edge


@dataclasses.dataclass
class RingEdgeResult(Result):
    """Do incubators sit nearer the outer edge of their ring than random locations?

    Attributes
    ----------
    observed_mean : float
        Mean normalised distance of the incubators to their ring's outer edge
        (distance / largest distance found in that ring).
    expected_mean : float
        The same for uniform random locations in the same rings, weighted like the
        incubators (same number per ring).
    ks_stat, p_ks : float
        Two-sample Kolmogorov–Smirnov test, incubators vs the random locations
        (normalised distances, pooled).
    p_sim_closer : float
        One-sided Monte-Carlo p of "closer to the edge than random":
        (1 + #{simulated mean ≤ observed mean}) / (n_sim + 1).
    p_sim_farther : float
        The other side, "farther from the edge than random" (towards the ring's
        inner side, i.e. a gradient towards the core):
        (1 + #{simulated mean ≥ observed mean}) / (n_sim + 1).
    direction : str
        ``"closer"`` or ``"farther"``: where the incubators lie relative to the
        ring's area-weighted distribution (observed vs expected mean), ``"equal"``
        on a tie; the test on that side is ``p_sim_closer`` or ``p_sim_farther``.
    n : int
        Incubators tested (those inside a ring).
    n_sim, seed : int
    crs : str
        The metric CRS of the distances.
    note : str
    per_ring : DataFrame
        city, ring, n, observed_mean, expected_mean, max_distance_m, ks_stat, p_ks,
        p_sim_closer, p_sim_farther.
    distances : DataFrame
        Per input incubator (its index): ring_city, ring, distance_m, normalised
        (NaN when not tested). Left out of :meth:`to_dict`.
    """

    _private = ("distances",)

    observed_mean: float
    expected_mean: float
    ks_stat: float
    p_ks: float
    p_sim_closer: float
    p_sim_farther: float
    direction: str
    n: int
    n_sim: int
    seed: int | None
    crs: str
    note: str
    per_ring: pd.DataFrame
    distances: pd.DataFrame


def _uniform_points(
    polygon: shapely.Geometry, n: int, gen: np.random.Generator, *, batch_max: int = 1_000_000
) -> np.ndarray:
    """``n`` points uniform in ``polygon``: bounding-box draws kept when inside."""
    out = np.empty((0, 2))
    if n <= 0:
        return out
    minx, miny, maxx, maxy = shapely.bounds(polygon)
    shapely.prepare(polygon)
    rate = max(shapely.area(polygon) / ((maxx - minx) * (maxy - miny)), 1e-6)
    parts, need = [], n
    while need > 0:
        size = int(min(batch_max, max(256, math.ceil(need / rate * 1.1))))
        xy = np.column_stack([gen.uniform(minx, maxx, size), gen.uniform(miny, maxy, size)])
        xy = xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])][:need]
        parts.append(xy)
        need -= len(xy)
    return np.concatenate(parts)


def _edge_index(outer: shapely.Geometry) -> SegmentIndex | None:
    """An index of the exterior edge of ``outer`` (holes filled); None without one."""
    polys = shapely.get_parts(outer)
    polys = polys[shapely.get_type_id(polys) == 3]
    segs = segments_of(shapely.get_exterior_ring(polys))
    return SegmentIndex(segs) if len(segs) else None


def _edge_distance(xy: np.ndarray, edge: SegmentIndex | None) -> np.ndarray:
    """Distance from each point to the edge indexed by :func:`_edge_index` (NaN: none)."""
    return np.full(len(xy), np.nan) if edge is None else edge.distance(xy)


def ring_edge_test(
    incubators: gpd.GeoDataFrame,
    rings: gpd.GeoDataFrame,
    *,
    n_sim: int = 999,
    seed: int | None = 0,
    city: str | Sequence[str] | None = None,
) -> RingEdgeResult:
    """Test the ring-edge claim: incubators lie near the outer edge of their ring.

    For an incubator in ring R of a system, the *outer edge* is the exterior
    boundary of the union of R and every ring inside it in the same system (for
    the core, the core's own boundary); holes of that union (lakes, enclaves) are
    filled, so only the outer edge counts. Distances are measured in the local UTM
    zone and normalised by the largest distance found in the ring.

    The reference is the area-weighted distribution of all locations in the same
    ring: uniform random points drawn per ring from ``numpy.random.default_rng(seed)``
    (bounding-box draws kept with :func:`shapely.contains_xy`), as many per ring
    as there are incubators in it, ``n_sim`` times (at least 20 000 points in all).

    * (a) two-sample KS test of the incubators' normalised distances against all
      random points;
    * (b) Monte-Carlo test of the mean normalised distance: each simulation draws
      the same number of points per ring; ``p_sim_closer`` = (1 + #{sim ≤ obs}) /
      (n_sim + 1), one-sided for "closer to the edge than random", and
      ``p_sim_farther`` = (1 + #{sim ≥ obs}) / (n_sim + 1) for "farther". The KS
      test is two-sided: a small KS p alone does not say which way the incubators
      lie; ``direction`` does.

    Parameters
    ----------
    incubators : GeoDataFrame
        Incubator points (rings are assigned with :func:`assign_ring`).
    rings : GeoDataFrame
        The ring layer.
    n_sim : int
        Monte-Carlo simulations.
    seed : int or None
        Random seed; the same seed gives the same result.
    city : str or list of str, optional
        Only these ring systems.

    Returns
    -------
    RingEdgeResult

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> c = gpd.GeoDataFrame({"city": ["X"]}, geometry=[Point(670_000, 3_548_000)], crs=32650)
    >>> from incubloc.scales.rings import rings_from_distance
    >>> rings = rings_from_distance(c, radii=(5_000, 15_000, 30_000))
    >>> angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(670_000 + 4_900 * np.cos(angles),
    ...                        3_548_000 + 4_900 * np.sin(angles)), crs=32650)
    >>> res = ring_edge_test(pts, rings, n_sim=99, seed=1)
    >>> res.n, bool(res.p_sim_closer < 0.05)
    (12, True)
    """
    # Imported here: scipy.stats takes about a second to import, and only this test
    # of the module needs it (for the KS p-value).
    from scipy.stats import ks_2samp

    n_sim = int(n_sim)
    if n_sim < 1:
        raise InputError(f"n_sim must be at least 1, not {n_sim}")
    layer = ring_layer(rings)
    assigned = assign_ring(incubators, layer)
    if city is not None:
        wanted = [city] if isinstance(city, str) else list(city)
        unknown = sorted(set(wanted) - set(layer["city"]))
        if unknown:
            raise InputError(
                f"the rings layer has no ring system {unknown}; systems: "
                f"{list(ring_systems(layer)['city'])}"
            )
        keep_sys = set(wanted)
    else:
        keep_sys = set(layer["city"])
    tested = (assigned["ring"].isin(RINGS) & assigned["ring_city"].isin(keep_sys)).to_numpy()
    crs = metric_crs(layer)
    diss = dissolved_rings(layer, crs)
    note = ""
    flat = diss[np.asarray(diss.geometry.area, dtype=float) <= 0]
    if len(flat):
        # Random points cannot be drawn in a ring without area.
        bad = pd.MultiIndex.from_frame(flat[["city", "ring"]])
        in_flat = pd.MultiIndex.from_frame(assigned[["ring_city", "ring"]]).isin(bad)
        tested &= ~in_flat
        note = f"rings without area left out: {list(bad)}"
    gen = rng(seed)
    n_total = int(tested.sum())
    dist_m = np.full(len(assigned), np.nan)
    normed = np.full(len(assigned), np.nan)
    per_ring = []
    if n_total == 0:
        note = "; ".join(filter(None, [note, "no incubator lies in a ring of the systems tested"]))
    pts_xy = np.full((len(assigned), 2), np.nan)
    if n_total:
        pts, _ = located_points(incubators)
        pm = gpd.GeoSeries(pts[tested], crs=4326).to_crs(crs)
        pts_xy[tested] = np.column_stack([pm.x.to_numpy(), pm.y.to_numpy()])
    blocks = max(n_sim, math.ceil(20_000 / max(n_total, 1)))
    sim_sum = np.zeros(n_sim)
    obs_all, ref_all = [], []
    groups = assigned.loc[tested].groupby(["ring_city", "ring"], sort=False).indices
    order = {c: i for i, c in enumerate(ring_systems(layer)["city"])}
    for sys_name, ring in sorted(groups, key=lambda k: (order[k[0]], RING_ORDER[k[1]])):
        rows = np.flatnonzero(tested)[groups[(sys_name, ring)]]
        sys_rings = diss[diss["city"] == sys_name]
        poly = sys_rings.loc[sys_rings["ring"] == ring].geometry.iloc[0]
        inner = sys_rings[sys_rings["ring"].map(RING_ORDER) <= RING_ORDER[ring]]
        parts = np.asarray(inner.geometry.values, dtype=object)
        bad = ~shapely.is_valid(parts)  # reprojection can make thin parts invalid
        if bad.any():
            parts = parts.copy()
            parts[bad] = shapely.make_valid(parts[bad])
        outer = shapely.union_all(parts)
        k = len(rows)
        edge = _edge_index(outer)
        d_obs = _edge_distance(pts_xy[rows], edge)
        ref = _uniform_points(poly, k * blocks, gen)
        d_ref = _edge_distance(ref, edge)
        dmax = float(max(np.max(d_ref), np.max(d_obs)))
        scale = dmax if dmax > 0 else 1.0
        n_obs, n_ref = d_obs / scale, d_ref / scale
        dist_m[rows], normed[rows] = d_obs, n_obs
        sims = n_ref[: k * n_sim].reshape(n_sim, k)
        sim_sum += sims.sum(axis=1)
        ks = ks_2samp(n_obs, n_ref)
        obs_mean = float(n_obs.mean())
        per_ring.append(
            {"city": sys_name, "ring": ring, "n": k, "observed_mean": obs_mean,
             "expected_mean": float(n_ref.mean()), "max_distance_m": dmax,
             "ks_stat": float(ks[0]), "p_ks": float(ks[1]),
             "p_sim_closer": float((1 + np.sum(sims.mean(axis=1) <= obs_mean)) / (n_sim + 1)),
             "p_sim_farther": float((1 + np.sum(sims.mean(axis=1) >= obs_mean)) / (n_sim + 1))}
        )
        obs_all.append(n_obs)
        ref_all.append(n_ref)
    if n_total:
        obs = np.concatenate(obs_all)
        ref = np.concatenate(ref_all)
        observed_mean = float(obs.mean())
        ks = ks_2samp(obs, ref)
        ks_stat, p_ks = float(ks[0]), float(ks[1])
        p_sim_closer = float((1 + np.sum(sim_sum / n_total <= observed_mean)) / (n_sim + 1))
        p_sim_farther = float((1 + np.sum(sim_sum / n_total >= observed_mean)) / (n_sim + 1))
        expected_mean = float(ref.mean())
    else:
        observed_mean = expected_mean = ks_stat = p_ks = p_sim_closer = p_sim_farther = float("nan")
    direction = (
        "closer" if observed_mean < expected_mean
        else "farther" if observed_mean > expected_mean
        else "equal"
    )
    distances = pd.DataFrame(
        {"ring_city": assigned["ring_city"].where(tested, None).to_numpy(dtype=object),
         "ring": assigned["ring"].where(tested, None).to_numpy(dtype=object),
         "distance_m": dist_m, "normalised": normed},
        index=assigned.index,
    )
    return RingEdgeResult(
        observed_mean=observed_mean,
        expected_mean=expected_mean,
        ks_stat=ks_stat,
        p_ks=p_ks,
        p_sim_closer=p_sim_closer,
        p_sim_farther=p_sim_farther,
        direction=direction,
        n=n_total,
        n_sim=n_sim,
        seed=None if seed is None else int(seed),
        crs=crs.to_string(),
        note=note,
        per_ring=pd.DataFrame(
            per_ring,
            columns=["city", "ring", "n", "observed_mean", "expected_mean", "max_distance_m",
                     "ks_stat", "p_ks", "p_sim_closer", "p_sim_farther"],
        ),
        distances=distances,
    )
