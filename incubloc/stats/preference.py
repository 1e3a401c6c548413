"""Location preference: are incubators closer to centres and hosts than chance?

The test behind the findings "临近商务中心" (near business centres) and "临近智力中心"
(near knowledge centres: universities, research institutes). For each kind of
target, the observed mean (and median) distance from each incubator to its nearest
target is compared with the same statistic for random locations: as many points as
there are incubators in each settlement (or ring) polygon, drawn uniformly inside
that same polygon (stratified Monte-Carlo), so the comparison holds the regional
distribution fixed and asks only where within its settlement an incubator sits.

Targets may be points (``centres`` layer: nearest distance by KD-tree) or polygons
(``hosts`` layer: distance to the nearest polygon, 0 inside one, by STRtree), so the
same function gives nearest-host distances per host kind.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from incubloc.errors import InputError
from incubloc.stats._random import Seed, rng, uniform_in_polygon
from incubloc.stats._results import Result, jsonable
from incubloc.stats.pointpattern import metric_xy

__all__ = ["PreferenceResult", "location_preference"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PreferenceResult(Result):
    """Observed versus random nearest-target distances, per target kind and group.

    ``table`` has one row per (group, kind): ``group`` (``"all"`` for every tested
    incubator), ``kind``, ``n`` incubators tested, ``n_targets``,
    ``observed_mean_m``, ``observed_median_m``, ``expected_mean_m`` and
    ``expected_median_m`` (means over the simulations), ``effect``
    (observed / expected mean − 1: −0.3 means 30 % closer than random), ``z``
    ((observed − expected) / SD of the simulated means), ``p`` =
    (1 + #{simulated mean ≤ observed}) / (n_sim + 1), the one-sided p-value of
    "closer than random", and ``p_median`` likewise for the median.

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

    def to_dict(self) -> dict[str, Any]:
        out = {k: jsonable(v) for k, v in dataclasses.asdict(self).items() if k != "distances"}
        out["table"] = jsonable(self.table)
        return out


def _nearest(targets: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Distance from each row of ``xy`` to the nearest target geometry."""
    kinds = shapely.get_type_id(targets)
    if (kinds == 0).all():
        tree = cKDTree(shapely.get_coordinates(targets))
        return tree.query(xy)[0]
    tree = shapely.STRtree(targets)
    idx, dist = tree.query_nearest(shapely.points(xy), return_distance=True, all_matches=False)
    out = np.full(len(xy), np.nan)
    out[idx[0]] = dist
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

    # Stratified simulation: column j of sims stands in for tested incubator j.
    gen = rng(seed)
    sims = np.empty((n_sim, len(xy), 2))
    for p in np.unique(home_in):  # one batch per polygon (few)
        cols = np.flatnonzero(home_in == p)
        geom = shapely.make_valid(poly_geoms[p])
        if not shapely.area(geom) > 0:
            raise InputError(f"within polygon {polys.index[p]!r} has no area: fix or drop it")
        draw = uniform_in_polygon(geom, n_sim * len(cols), seed=gen)
        sims[:, cols, :] = draw.reshape(n_sim, len(cols), 2)

    if kind_column in tgt.columns:
        all_kinds = sorted(tgt[kind_column].dropna().astype(str).unique())
        kinds = all_kinds if kind is None else ([kind] if isinstance(kind, str) else list(kind))
        missing = [k for k in kinds if k not in all_kinds]
        if missing:
            log.warning("no targets of kind %s", ", ".join(missing))
    else:
        kinds = ["all"]

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
        obs = _nearest(geoms, xy)
        col[pos_used[inside]] = obs
        dist_cols[f"dist_{k}_m"] = col
        sim_d = _nearest(geoms, sims.reshape(-1, 2)).reshape(n_sim, len(xy)) if n_sim else None
        for key, mask in groups:
            if not mask.any():
                continue
            rows.append(
                _row(
                    key, k, obs[mask], None if sim_d is None else sim_d[:, mask], len(geoms), n_sim
                )
            )

    distances = pd.DataFrame(dist_cols, index=incubators.index)
    wid = np.full(len(incubators), None, dtype=object)
    wid[pos_used[inside]] = polys.index.to_numpy()[home_in]
    distances["within_id"] = wid
    table = pd.DataFrame(rows)
    return PreferenceResult(
        table=table,
        distances=distances,
        n_sim=int(n_sim),
        seed=int(seed) if isinstance(seed, int | np.integer) else None,
        n_incubators=len(incubators),
        n_tested=int(len(xy)),
        n_outside=n_outside,
        crs=mcrs.to_string() if mcrs is not None else None,
    )


def _row(
    group: Any, kind: str, obs: np.ndarray, sim: np.ndarray | None, n_targets: int, n_sim: int
) -> dict[str, Any]:
    nan = float("nan")
    row: dict[str, Any] = {
        "group": group,
        "kind": kind,
        "n": int(len(obs)),
        "n_targets": int(n_targets),
        "observed_mean_m": float(obs.mean()),
        "observed_median_m": float(np.median(obs)),
    }
    if sim is None or n_sim == 0:
        row.update(
            expected_mean_m=nan, expected_median_m=nan, effect=nan, z=nan, p=nan, p_median=nan
        )
        return row
    means, medians = sim.mean(axis=1), np.median(sim, axis=1)
    expected = float(means.mean())
    sd = float(means.std(ddof=1)) if n_sim > 1 else nan
    row.update(
        expected_mean_m=expected,
        expected_median_m=float(medians.mean()),
        effect=row["observed_mean_m"] / expected - 1.0 if expected > 0 else nan,
        z=(row["observed_mean_m"] - expected) / sd if sd > 0 else nan,
        p=float((1 + np.sum(means <= row["observed_mean_m"])) / (n_sim + 1)),
        p_median=float((1 + np.sum(medians <= row["observed_median_m"])) / (n_sim + 1)),
    )
    return row
