"""Location preference: are incubators closer to centres and hosts than chance?

The test behind the findings "临近商务中心" (near business centres) and "临近智力中心"
(near knowledge centres: universities, research institutes). For each kind of
target, the observed mean (and median) distance from each incubator to its nearest
target is compared with the same statistic for random locations: as many points as
there are incubators in each settlement (or ring) polygon, drawn inside that same
polygon (stratified Monte-Carlo), so the comparison holds the regional distribution
fixed and asks only where within its settlement an incubator sits.

Drawn *uniformly* in a settlement (``null="uniform"``), random locations fall in
fields and hills while incubators sit in towns, so every urban target looks
"preferred": the test then measures urban concentration, not preference. Two
answers, which can be combined:

* a null that controls for urban concentration: ``null="weighted"`` draws random
  locations in each polygon with density proportional to a weighting surface, a
  kernel density of a layer the user supplies (built-up land, population points,
  other establishments; ``weights=``) or a :class:`~incubloc.stats.density.DensitySurface`;
  ``null="controls"`` is a case–control design: the random locations are other
  establishments (``controls=``) resampled within the same polygon;
* a **placebo** beside every result: the same test with targets that are equally
  urban but have nothing to do with the claim, by default the settlements' seats
  of government (``seat_lon`` / ``seat_lat`` of the ``settlements`` layer). A
  preference for a kind is claimed only when the incubators are closer to it than
  to the placebo *beyond what the null gives*: a Monte-Carlo test of the
  difference of mean log distances (``p_vs_placebo``, Holm-adjusted over the kinds
  tested).

Targets may be points (``centres`` layer: nearest distance by KD-tree) or polygons
(``hosts`` layer: distance to the nearest polygon, 0 inside one, by STRtree), so the
same function gives nearest-host distances per host kind. Each target kind's index
is built once, and the random locations of all simulations are searched at once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from incubloc.errors import InputError
from incubloc.stats._random import Seed, rng, uniform_in_polygon
from incubloc.stats._results import Result, jsonable
from incubloc.stats.pointpattern import metric_xy

__all__ = ["PreferenceResult", "location_preference", "seat_points"]

log = logging.getLogger(__name__)

#: Added to distances before taking logs (metres): incubators inside a host polygon
#: are at distance 0, and below a block's size distances carry no information.
LOG_OFFSET_M = 100.0


@dataclasses.dataclass
class PreferenceResult(Result):
    """Observed versus random nearest-target distances, per target kind and group.

    ``table`` has one row per (group, kind): ``group`` (``"all"`` for every tested
    incubator), ``kind`` (the placebo's row is ``"placebo"``), ``n`` incubators
    tested, ``n_targets``, ``observed_mean_m``, ``observed_median_m``,
    ``expected_mean_m`` and ``expected_median_m`` (means over the simulations),
    ``effect`` (observed / expected mean − 1: −0.3 means 30 % closer than random),
    ``z`` ((observed − expected) / SD of the simulated means), ``p`` =
    (1 + #{simulated mean ≤ observed}) / (n_sim + 1), the one-sided p-value of
    "closer than the null", ``p_median`` likewise for the median;
    ``log_ratio`` = mean log(d + 100 m) of the incubators minus its mean over the
    simulations (negative: closer than the null); ``placebo_log_ratio`` the same
    for the placebo targets; ``excess_log_ratio`` their difference (negative:
    closer to this kind than to the placebo, beyond the null); ``p_vs_placebo`` =
    (1 + #{simulated D ≤ observed D}) / (n_sim + 1) with D = mean log(d_kind + 100)
    − mean log(d_placebo + 100) on the same random locations, and
    ``p_vs_placebo_holm`` Holm-adjusted over the kinds of the group; ``preference``
    is True when ``p`` ≤ ``alpha`` and ``p_vs_placebo_holm`` ≤ ``alpha``.

    ``distances`` holds each incubator's observed distance per kind (``dist_<kind>_m``)
    and its ``within_id`` (index of the polygon it was tested in), aligned to the
    input's index; NaN / None where an incubator has no geometry or lies in no
    polygon.
    """

    table: pd.DataFrame
    distances: pd.DataFrame
    n_sim: int
    seed: int | None
    n_incubators: int
    n_tested: int
    n_outside: int
    crs: str | None
    null: str = "uniform"
    placebo: str | None = None
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        out = {k: jsonable(v) for k, v in dataclasses.asdict(self).items() if k != "distances"}
        out["table"] = jsonable(self.table)
        return out


def seat_points(settlements: gpd.GeoDataFrame) -> gpd.GeoDataFrame | None:
    """The settlements' seats of government as points (``seat_lon`` / ``seat_lat``, WGS84).

    Returns None when the layer lacks the columns or every seat is missing.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> s = gpd.GeoDataFrame({"settlement": ["a"], "seat_lon": [118.78], "seat_lat": [32.04]},
    ...                      geometry=[box(118, 31, 119, 33)], crs=4326)
    >>> seat_points(s).geometry.iloc[0].coords[0]
    (118.78, 32.04)
    """
    if not {"seat_lon", "seat_lat"} <= set(settlements.columns):
        return None
    lon = pd.to_numeric(settlements["seat_lon"], errors="coerce").to_numpy(float)
    lat = pd.to_numeric(settlements["seat_lat"], errors="coerce").to_numpy(float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return None
    return gpd.GeoDataFrame(
        {"kind": ["placebo"] * int(ok.sum())},
        geometry=gpd.points_from_xy(lon[ok], lat[ok]),
        crs=4326,
    )


class _Nearest:
    """Distance to the nearest geometry of one target set, its index built once.

    Points: a KD-tree. Polygons: 0 inside, else the distance to the nearest boundary
    segment; with few segments (host polygons are simple) that is one vectorised
    NumPy pass over point chunks, several times faster than an STRtree's per-point
    nearest search, which remains for detailed polygons.
    """

    _MAX_SEGMENTS = 5_000

    def __init__(self, targets: np.ndarray) -> None:
        self.points = bool((shapely.get_type_id(targets) == 0).all())
        self.segs: np.ndarray | None = None
        if self.points:
            self.kd = cKDTree(shapely.get_coordinates(targets))
            return
        rings = shapely.get_rings(shapely.get_parts(targets))
        lines = shapely.get_parts(shapely.boundary(targets[shapely.get_type_id(targets) != 3]))
        coords, which = shapely.get_coordinates(np.concatenate([rings, lines]), return_index=True)
        same = which[:-1] == which[1:]
        if same.sum() <= self._MAX_SEGMENTS:
            self.segs = np.column_stack([coords[:-1][same], coords[1:][same]])
            self.area = shapely.union_all(targets)
            shapely.prepare(self.area)
            # A point inside a polygon is no farther from its boundary than half the
            # polygon's narrower bounding-box side: beyond that, no inside test.
            minx, miny, maxx, maxy = shapely.bounds(shapely.get_parts(targets)).T
            self.reach = 0.5 * float(np.nanmax(np.minimum(maxx - minx, maxy - miny)))
        else:
            self.tree = shapely.STRtree(targets)

    def __call__(self, xy: np.ndarray, geoms: np.ndarray | None = None) -> np.ndarray:
        if self.points:
            return self.kd.query(xy)[0]
        if self.segs is not None:
            return self._brute(xy)
        pts = shapely.points(xy) if geoms is None else geoms
        idx, dist = self.tree.query_nearest(pts, return_distance=True, all_matches=False)
        out = np.full(len(xy), np.nan)
        out[idx[0]] = dist
        return out

    def _brute(self, xy: np.ndarray) -> np.ndarray:
        ax, ay, bx, by = self.segs.T
        abx, aby = bx - ax, by - ay
        len2 = abx * abx + aby * aby
        inv = np.where(len2 > 0, 1.0 / np.where(len2 > 0, len2, 1.0), 0.0)
        out = np.empty(len(xy))
        step = max(1, 262_144 // max(len(ax), 1))  # chunks of ~2 MB arrays: cache-sized
        for start in range(0, len(xy), step):
            px = xy[start : start + step, :1] - ax  # (points, segments)
            py = xy[start : start + step, 1:] - ay
            t = px * abx
            t += py * aby
            t *= inv
            np.clip(t, 0.0, 1.0, out=t)
            px -= t * abx
            py -= t * aby
            px *= px
            py *= py
            px += py
            out[start : start + step] = px.min(axis=1)
        np.sqrt(out, out=out)
        near = np.flatnonzero(out <= self.reach * (1 + 1e-9) + 1e-9)
        inside = shapely.contains_xy(self.area, xy[near, 0], xy[near, 1])
        out[near[inside]] = 0.0
        return out


def _nearest(targets: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Distance from each row of ``xy`` to the nearest target geometry."""
    return _Nearest(targets)(xy)


def _sample_surface(
    surface: Any, geom: shapely.Geometry, n: int, gen: np.random.Generator
) -> np.ndarray | None:
    """``n`` points in ``geom`` with density ∝ the surface (None: no weight inside)."""
    from rasterio.features import geometry_mask

    rows, cols = surface.array.shape
    mask = geometry_mask([geom], out_shape=(rows, cols), transform=surface.transform,
                         invert=True, all_touched=True)
    w = np.where(mask, np.clip(surface.array, 0.0, None), 0.0).ravel()
    if not w.sum() > 0:
        return None
    cum = np.cumsum(w)
    t = surface.transform
    shapely.prepare(geom)
    out = np.empty((0, 2))
    while len(out) < n:
        m = int((n - len(out)) * 1.5) + 16
        cell = np.minimum(np.searchsorted(cum, gen.uniform(0, cum[-1], m), side="right"),
                          len(w) - 1)
        r, c = np.divmod(cell, cols)
        x = t.c + (c + gen.uniform(0, 1, m)) * t.a
        y = t.f + (r + gen.uniform(0, 1, m)) * t.e
        keep = shapely.contains_xy(geom, x, y)
        out = np.vstack([out, np.column_stack([x[keep], y[keep]])[: n - len(out)]])
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (NaN entries left out)."""
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


def location_preference(
    incubators: gpd.GeoDataFrame,
    targets: gpd.GeoDataFrame,
    *,
    within: gpd.GeoDataFrame,
    kind: str | Sequence[str] | None = None,
    kind_column: str = "kind",
    n_sim: int = 999,
    seed: Seed = 0,
    by: str | None = None,
    crs: Any = None,
    null: Literal["uniform", "weighted", "controls"] = "uniform",
    weights: gpd.GeoDataFrame | Any = None,
    weight_column: str | None = None,
    weight_bandwidth: float | str = "scott",
    controls: gpd.GeoDataFrame | None = None,
    placebo: gpd.GeoDataFrame | Literal["seats"] | None = "seats",
    alpha: float = 0.05,
) -> PreferenceResult:
    """Monte-Carlo test of incubators' distances to the nearest target of each kind.

    Parameters
    ----------
    incubators : GeoDataFrame
        Points (site polygons are reduced to centroids), any CRS.
    targets : GeoDataFrame
        Points (e.g. the ``centres`` layer, ``kind`` business / knowledge) or
        polygons (e.g. the ``hosts`` layer, ``kind`` university / development_zone …).
    within : GeoDataFrame
        Polygons inside which random locations are drawn: ``settlements`` or
        ``rings``. Each incubator is tested in the polygon that holds it, and the
        simulation draws the same number of points in each polygon. Incubators in no
        polygon are left out of the test (counted in ``n_outside``).
    kind : str or list of str, optional
        Target kinds to test; default every value of ``kind_column`` (or all targets
        together as ``"all"`` when the column is absent).
    kind_column : str
    n_sim : int
        Number of simulations.
    seed : int, Generator or None
    by : str, optional
        Also report per group: a column of ``incubators`` (e.g. ``city``) or of
        ``within`` (e.g. ``settlement``).
    crs : CRS-like, optional
        Metric CRS (default: local UTM of the incubators).
    null : {"uniform", "weighted", "controls"}
        How random locations are drawn inside each polygon: uniformly (controls
        for the regional distribution only), proportional to the kernel density of
        ``weights`` (controls for urban concentration as far as that layer
        measures it), or resampled from ``controls`` (case–control).
    weights : GeoDataFrame or DensitySurface, optional
        For ``null="weighted"``: points or polygons (centroids are used) whose
        kernel density, optionally weighted by ``weight_column`` (e.g.
        ``population``), is the sampling surface; or a ready surface.
    weight_column : str, optional
    weight_bandwidth : float or str
        Bandwidth of that density (a rule name or metres, see
        :func:`incubloc.stats.density.kde`).
    controls : GeoDataFrame, optional
        For ``null="controls"``: other establishments; every polygon holding an
        incubator must hold at least one.
    placebo : GeoDataFrame, "seats" or None
        Placebo targets tested beside every kind: ``"seats"`` (default) takes the
        seats of ``within`` (``seat_lon`` / ``seat_lat``; none: no placebo).
    alpha : float
        Level for the ``preference`` column.

    Returns
    -------
    PreferenceResult

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> area = gpd.GeoDataFrame({"settlement": ["s"]}, geometry=[box(0, 0, 10000, 10000)],
    ...                         crs=32650)
    >>> centres = gpd.GeoDataFrame({"kind": ["business"]}, geometry=[Point(5000, 5000)],
    ...                            crs=32650)
    >>> xy = np.random.default_rng(0).normal(5000, 500, (30, 2))
    >>> inc = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=32650)
    >>> res = location_preference(inc, centres, within=area, n_sim=99)
    >>> row = res.table.iloc[0]
    >>> row["kind"], bool(row["p"] == 0.01), bool(row["effect"] < -0.5)
    ('business', True, True)
    """
    if n_sim < 0:
        raise InputError(f"n_sim must be >= 0, got {n_sim}")
    if null not in ("uniform", "weighted", "controls"):
        raise InputError(f"unknown null {null!r}: use 'uniform', 'weighted' or 'controls'")
    for name, frame in (("targets", targets), ("within", within)):
        if frame.crs is None:
            raise InputError(f"the {name} layer has no CRS: set one (e.g. .set_crs(4326))")
    xy_used, mcrs, used = metric_xy(incubators, crs=crs)
    pos_used = np.flatnonzero(used)
    tgt = targets[~(targets.geometry.isna() | targets.geometry.is_empty)]
    tgt = tgt.to_crs(mcrs) if mcrs is not None else tgt
    polys = within.to_crs(mcrs) if mcrs is not None else within
    poly_geoms = polys.geometry.to_numpy()

    # Assign each incubator to the first polygon that holds it.
    pts = shapely.points(xy_used)
    src, dst = shapely.STRtree(poly_geoms).query(pts, predicate="intersects")
    home = np.full(len(xy_used), -1)
    first = np.unique(src, return_index=True)[1]
    home[src[first]] = dst[first]
    inside = home >= 0
    n_outside = int((~inside).sum())
    if n_outside:
        log.warning(
            "%d incubator(s) lie in no %s polygon and are left out of the test", n_outside, "within"
        )
    xy = xy_used[inside]
    home_in = home[inside]

    # Group labels of the tested incubators.
    groups: list[tuple[Any, np.ndarray]] = [("all", np.ones(len(xy), dtype=bool))]
    if by is not None:
        if by in incubators.columns:
            labels = incubators[by].to_numpy()[pos_used][inside]
        elif by in polys.columns:
            labels = polys[by].to_numpy()[home_in]
        else:
            raise InputError(f"group column {by!r} is neither in the incubators nor in within")
        lab = pd.Series(labels)
        for key in sorted(lab.dropna().unique(), key=str):
            groups.append((key, (lab == key).to_numpy()))

    sims = _simulate(xy, home_in, polys, poly_geoms, n_sim, rng(seed), null, weights,
                     weight_column, weight_bandwidth, controls, mcrs)
    sims_flat = sims.reshape(-1, 2)
    sim_geoms: np.ndarray | None = None  # shapely points of the simulations, made once

    def measure(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        nonlocal sim_geoms
        near = _Nearest(geoms)
        obs = near(xy)
        if not n_sim:
            return obs, None
        if not near.points and near.segs is None and sim_geoms is None:
            sim_geoms = shapely.points(sims_flat)  # only the STRtree search needs them
        return obs, near(sims_flat, sim_geoms).reshape(n_sim, len(xy))

    if kind_column in tgt.columns:
        all_kinds = sorted(tgt[kind_column].dropna().astype(str).unique())
        kinds = all_kinds if kind is None else ([kind] if isinstance(kind, str) else list(kind))
        missing = [k for k in kinds if k not in all_kinds]
        if missing:
            log.warning("no targets of kind %s", ", ".join(missing))
    else:
        kinds = ["all"]

    # The placebo: equally urban targets measured on the same random locations.
    plac_name: str | None = None
    plac: tuple[np.ndarray, np.ndarray | None] | None = None
    plac_layer = seat_points(within) if isinstance(placebo, str) else placebo
    if isinstance(placebo, str) and placebo != "seats":
        raise InputError(f"placebo must be 'seats', a GeoDataFrame or None, not {placebo!r}")
    if plac_layer is not None and len(plac_layer) and len(xy):
        plac_name = "seats" if isinstance(placebo, str) else "given"
        pg = plac_layer.to_crs(mcrs) if mcrs is not None else plac_layer
        plac = measure(pg.geometry.dropna().to_numpy())

    dist_cols: dict[str, np.ndarray] = {}
    rows = []
    for k in kinds:  # few target kinds
        sel = (
            tgt
            if k == "all" and kind_column not in tgt.columns
            else tgt[tgt[kind_column].astype(str) == k]
        )
        geoms = sel.geometry.to_numpy()
        col = np.full(len(incubators), np.nan)
        if len(geoms) == 0 or len(xy) == 0:
            dist_cols[f"dist_{k}_m"] = col
            continue
        obs, sim_d = measure(geoms)
        col[pos_used[inside]] = obs
        dist_cols[f"dist_{k}_m"] = col
        for key, mask in groups:
            if mask.any():
                rows.append(_row(key, k, obs, sim_d, mask, len(geoms), n_sim, plac))
    if plac is not None:
        for key, mask in groups:
            if mask.any():
                rows.append(_row(key, "placebo", plac[0], plac[1], mask,
                                 len(plac_layer), n_sim, plac))

    distances = pd.DataFrame(dist_cols, index=incubators.index)
    wid = np.full(len(incubators), None, dtype=object)
    wid[pos_used[inside]] = polys.index.to_numpy()[home_in]
    distances["within_id"] = wid
    table = pd.DataFrame(rows)
    if len(table):
        table["p_vs_placebo_holm"] = np.nan
        for _, idx in table.groupby("group", sort=False).groups.items():
            table.loc[idx, "p_vs_placebo_holm"] = _holm(table.loc[idx, "p_vs_placebo"].to_numpy(float))
        table["preference"] = (
            (table["p"] <= alpha) & (table["p_vs_placebo_holm"] <= alpha)
            if plac is not None
            else table["p"] <= alpha
        )
        table.loc[table["kind"] == "placebo", "preference"] = False
    return PreferenceResult(
        table=table,
        distances=distances,
        n_sim=int(n_sim),
        seed=int(seed) if isinstance(seed, int | np.integer) else None,
        n_incubators=len(incubators),
        n_tested=int(len(xy)),
        n_outside=n_outside,
        crs=mcrs.to_string() if mcrs is not None else None,
        null=null,
        placebo=plac_name,
        alpha=float(alpha),
    )


def _simulate(
    xy: np.ndarray,
    home_in: np.ndarray,
    polys: gpd.GeoDataFrame,
    poly_geoms: np.ndarray,
    n_sim: int,
    gen: np.random.Generator,
    null: str,
    weights: Any,
    weight_column: str | None,
    weight_bandwidth: float | str,
    controls: gpd.GeoDataFrame | None,
    mcrs: Any,
) -> np.ndarray:
    """Random locations, stratified: column j of the result stands in for incubator j."""
    sims = np.empty((n_sim, len(xy), 2))
    surface = None
    ctrl_xy = ctrl_home = None
    if null == "weighted":
        if weights is None:
            raise InputError("null='weighted' needs weights= (a layer or a DensitySurface)")
        if hasattr(weights, "array") and hasattr(weights, "transform"):
            surface = weights
        else:
            from incubloc.stats.density import kde

            w = weights.to_crs(mcrs) if mcrs is not None else weights
            wcol = None
            if weight_column is not None:
                if weight_column not in w.columns:
                    raise InputError(f"weights layer has no column {weight_column!r}")
                wcol = pd.to_numeric(w[weight_column], errors="coerce").fillna(0).to_numpy()
            bounds = shapely.union_all(poly_geoms)
            cell = float(np.sqrt(shapely.area(bounds) / 250_000))
            surface = kde(w, area=gpd.GeoSeries([bounds], crs=mcrs), kernel="gaussian",
                          bandwidth=weight_bandwidth, cell_size=cell, weights=wcol, crs=mcrs)
    elif null == "controls":
        if controls is None or not len(controls):
            raise InputError("null='controls' needs controls= (other establishments)")
        c_xy, _, _ = metric_xy(controls, crs=mcrs)
        s, d = shapely.STRtree(poly_geoms).query(shapely.points(c_xy), predicate="intersects")
        ctrl_xy, ctrl_home = c_xy[s], d
    for p in np.unique(home_in):  # one batch per polygon (few)
        cols = np.flatnonzero(home_in == p)
        geom = shapely.make_valid(poly_geoms[p])
        if not shapely.area(geom) > 0:
            raise InputError(f"within polygon {polys.index[p]!r} has no area: fix or drop it")
        m = n_sim * len(cols)
        draw = None
        if null == "weighted":
            draw = _sample_surface(surface, geom, m, gen)
            if draw is None:
                log.warning("no weight inside polygon %r: random locations drawn uniformly",
                            polys.index[p])
        elif null == "controls":
            here = ctrl_xy[ctrl_home == p]
            if not len(here):
                raise InputError(
                    f"within polygon {polys.index[p]!r} holds incubators but no control "
                    "points: add controls there or drop the polygon"
                )
            draw = here[gen.integers(0, len(here), m)]
        if draw is None:
            draw = uniform_in_polygon(geom, m, seed=gen)
        sims[:, cols, :] = draw.reshape(n_sim, len(cols), 2)
    return sims


def _row(
    group: Any,
    kind: str,
    obs_all: np.ndarray,
    sim_all: np.ndarray | None,
    mask: np.ndarray,
    n_targets: int,
    n_sim: int,
    plac: tuple[np.ndarray, np.ndarray | None] | None,
) -> dict[str, Any]:
    nan = float("nan")
    obs = obs_all[mask]
    row: dict[str, Any] = {
        "group": group,
        "kind": kind,
        "n": int(len(obs)),
        "n_targets": int(n_targets),
        "observed_mean_m": float(obs.mean()),
        "observed_median_m": float(np.median(obs)),
    }
    keys = ("expected_mean_m", "expected_median_m", "effect", "z", "p", "p_median",
            "log_ratio", "placebo_log_ratio", "excess_log_ratio", "p_vs_placebo")
    if sim_all is None or n_sim == 0:
        row.update(dict.fromkeys(keys, nan))
        return row
    sim = sim_all[:, mask]
    means, medians = sim.mean(axis=1), np.median(sim, axis=1)
    expected = float(means.mean())
    sd = float(means.std(ddof=1)) if n_sim > 1 else nan
    log_obs = np.log(obs + LOG_OFFSET_M)
    log_sim = np.log(sim + LOG_OFFSET_M)
    row.update(
        expected_mean_m=expected,
        expected_median_m=float(medians.mean()),
        effect=row["observed_mean_m"] / expected - 1.0 if expected > 0 else nan,
        z=(row["observed_mean_m"] - expected) / sd if sd > 0 else nan,
        p=float((1 + np.sum(means <= row["observed_mean_m"])) / (n_sim + 1)),
        p_median=float((1 + np.sum(medians <= row["observed_median_m"])) / (n_sim + 1)),
        log_ratio=float(log_obs.mean() - log_sim.mean(axis=1).mean()),
        placebo_log_ratio=nan,
        excess_log_ratio=nan,
        p_vs_placebo=nan,
    )
    if plac is not None and plac[1] is not None:
        p_obs = np.log(plac[0][mask] + LOG_OFFSET_M)
        p_sim = np.log(plac[1][:, mask] + LOG_OFFSET_M)
        d_obs = float((log_obs - p_obs).mean())
        d_sim = (log_sim - p_sim).mean(axis=1)
        # exact ties (the placebo against itself) count against significance
        tol = 1e-12 * max(1.0, abs(d_obs))
        row.update(
            placebo_log_ratio=float(p_obs.mean() - p_sim.mean(axis=1).mean()),
            excess_log_ratio=float(d_obs - d_sim.mean()),
            p_vs_placebo=float((1 + np.sum(d_sim <= d_obs + tol)) / (n_sim + 1)),
        )
    return row
