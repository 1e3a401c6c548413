"""Internal layout of incubator sites: 楼宇式 / 园区式 / 混合式.

He & Wang (2016, section 2.4, table 2) distinguish three internal layouts:

* **building** (楼宇式): the functions of the incubator are stacked vertically in one
  or a few (high-rise) buildings; such incubators are small and sit where land is
  scarce or expensive, mostly in the inner central city;
* **park** (园区式): the functions are spread horizontally over a campus, zoned by
  function, with open space (roads, green, water) between the buildings; typical of
  newer and larger incubators in the outer city and the suburbs;
* **mixed** (混合式): an incubator of several parts ("一园多区") of both kinds.

incubloc decides the layout of each site from geometry: the site polygon and the
building footprints whose representative point lies in it. A site is
``building`` when it has few buildings (``max_buildings``) that cover much of it
(``min_coverage``), are multi-storey (``min_levels``) and stand on a small plot
(``max_site_area_m2``); otherwise, with at least one building, it is ``park``. The
thresholds are in :class:`LayoutThresholds` (defined in :mod:`incubloc.options`).

A point-only site (no polygon) is the footprint of the building that contains the
point (within ``point_building_tolerance_m``, the nearest if several). The land-use
parcel around the point is *not* used: a host polygon containing the point is a
zone, not the incubator's plot, and incubloc has no parcel layer. A point-only site
is therefore judged by one footprint alone (a tall building is ``building``, a low
one ``park``) even where the plot around it is a campus; supply site polygons
where this matters.

Metric work happens in the local UTM zone (or the ``crs`` given); areas are
planar areas in that conformal projection, accurate to well under 0.1 % over a
site.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from incubloc.coords import to_metric
from incubloc.errors import StudyAreaError
from incubloc.geometry import analysis_crs, site_frame
from incubloc.options import LayoutThresholds
from incubloc.vocabulary import LAYOUT, UNCLASSIFIED

__all__ = ["LAYOUTS", "LayoutThresholds", "classify_layout", "site_layout"]

log = logging.getLogger(__name__)

#: Labels of :func:`classify_layout` (``layout`` column).
LAYOUTS = (*LAYOUT.labels, UNCLASSIFIED)


_SITE_OUT = [
    "incubator_id", "site_id", "layout", "n_buildings", "coverage", "mean_levels",
    "site_area_m2", "reason",
]


def _near_buildings(buildings: gpd.GeoDataFrame, sites: np.ndarray, target: CRS,
                    margin_m: float) -> np.ndarray | None:
    """Positions of the buildings whose box meets a site's box grown by ``margin_m``,
    found in the buildings' own CRS: a superset of every building the layout rules can
    use, so that only those are projected (a national layer has millions). None when
    not worth it (few buildings)."""
    if len(buildings) < _PREFILTER_MIN_BUILDINGS or not len(sites):
        return None
    b = shapely.bounds(sites)  # located sites: finite bounds
    pad = margin_m + 1.0 + 0.01 * np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    # The 1 % pad covers the bending of the boxes' edges under the projection
    # (negligible over a site's few hundred metres).
    boxes = shapely.box(b[:, 0] - pad, b[:, 1] - pad, b[:, 2] + pad, b[:, 3] + pad)
    there = gpd.GeoSeries(boxes, crs=target).to_crs(buildings.crs).envelope.values
    tree = shapely.STRtree(buildings.geometry.to_numpy())
    hit = tree.query(there)[1]
    return np.unique(hit)


# From this many buildings on, only those near a site are projected and measured.
_PREFILTER_MIN_BUILDINGS = 50_000


def _building_frame(buildings: gpd.GeoDataFrame, target: CRS, storey_height_m: float,
                    near: np.ndarray | None = None):
    """Footprint geometries (metric), areas and levels of the buildings layer (only
    the positions ``near`` when given, in their order)."""
    if buildings.crs is None:
        raise StudyAreaError("the buildings layer has no CRS: set one (EPSG:4326 is expected)")
    if near is not None:
        # A missing geometry has area NaN, an empty one or a line 0.
        usable = shapely.area(buildings.geometry.to_numpy()) > 0
        if (~usable).any():
            log.warning("buildings layer: ignored %d features without footprint area",
                        int((~usable).sum()))
        buildings = buildings.iloc[near]
    # The geometry array carries the layer's CRS.
    metric = to_metric(gpd.GeoDataFrame(geometry=buildings.geometry.values), crs=target)
    geom = metric.geometry.to_numpy()
    keep = shapely.area(geom) > 0  # NaN for a missing geometry
    if (~keep).any() and near is None:
        log.warning("buildings layer: ignored %d features without footprint area", int((~keep).sum()))
    levels = (
        pd.to_numeric(buildings["levels"], errors="coerce").to_numpy(dtype=float)
        if "levels" in buildings.columns
        else np.full(len(buildings), np.nan)
    )
    if "height" in buildings.columns:
        height = pd.to_numeric(buildings["height"], errors="coerce").to_numpy(dtype=float)
        levels = np.where(np.isnan(levels), height / storey_height_m, levels)
    levels = np.where(levels > 0, levels, np.nan)
    geom, levels = geom[keep], levels[keep]
    invalid = ~shapely.is_valid(geom)
    if invalid.any():
        geom[invalid] = shapely.make_valid(geom[invalid])
    return geom, shapely.area(geom), levels


def _layout_frame(
    sf: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame | None, t: LayoutThresholds
) -> pd.DataFrame:
    n = len(sf)
    geom = sf.geometry.to_numpy()
    polygon = sf["_polygon"].to_numpy()
    empty = sf["_empty"].to_numpy()
    point = ~empty & ~polygon
    out = pd.DataFrame(
        {
            "incubator_id": sf["incubator_id"].to_numpy(),
            "site_id": sf["site_id"].to_numpy(),
            "layout": "unclassified",
            "n_buildings": np.nan,
            "coverage": np.nan,
            "mean_levels": np.nan,
            "site_area_m2": np.where(polygon, sf["_area"].to_numpy(), np.nan),
            "_inc": sf["_inc"].to_numpy(),
            "_lev_w": 0.0,  # Σ footprint × levels, for pooling over sites
            "_lev_a": 0.0,  # Σ footprint with known levels
            "_foot": np.nan,  # Σ footprint ∩ site
        }
    )
    if buildings is None or len(buildings) == 0:
        out["reason"] = "no buildings layer" if buildings is None else "buildings layer is empty"
    else:
        near = _near_buildings(buildings, geom[~empty], sf.crs, t.point_building_tolerance_m)
        bgeom, barea, blev = _building_frame(buildings, sf.crs, t.storey_height_m, near)
        n_b = np.zeros(n)
        foot = np.zeros(n)
        lev_w = np.zeros(n)
        lev_a = np.zeros(n)
        site_area = out["site_area_m2"].to_numpy().copy()
        # Polygon sites: buildings whose representative point lies in the site.
        pidx = np.flatnonzero(polygon)
        if len(pidx) and len(bgeom):
            tree = shapely.STRtree(shapely.point_on_surface(bgeom))
            s_i, b_i = tree.query(geom[pidx], predicate="intersects")
            s_i = pidx[s_i]
            inter = shapely.area(shapely.intersection(geom[s_i], bgeom[b_i]))
            known = ~np.isnan(blev[b_i])
            n_b += np.bincount(s_i, minlength=n)
            foot += np.bincount(s_i, weights=inter, minlength=n)
            lev_w += np.bincount(s_i, weights=np.where(known, barea[b_i] * blev[b_i], 0), minlength=n)
            lev_a += np.bincount(s_i, weights=np.where(known, barea[b_i], 0), minlength=n)
        # Point sites: the footprint at the point is the site (nearest; ties: larger).
        qidx = np.flatnonzero(point)
        found = np.zeros(n, dtype=bool)
        if len(qidx) and len(bgeom):
            tree = shapely.STRtree(bgeom)
            (q_i, b_i), dist = tree.query_nearest(
                geom[qidx], max_distance=t.point_building_tolerance_m, return_distance=True,
                all_matches=True,
            )
            pick = (
                pd.DataFrame({"q": q_i, "b": b_i, "d": dist, "a": -barea[b_i]})
                .sort_values(["q", "d", "a", "b"])
                .drop_duplicates("q")
            )
            s_i = qidx[pick["q"].to_numpy()]
            b_i = pick["b"].to_numpy()
            found[s_i] = True
            n_b[s_i] = 1
            foot[s_i] = barea[b_i]
            site_area[s_i] = barea[b_i]
            known = ~np.isnan(blev[b_i])
            lev_w[s_i] = np.where(known, barea[b_i] * blev[b_i], 0)
            lev_a[s_i] = np.where(known, barea[b_i], 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            cover = np.clip(foot / site_area, 0.0, 1.0)
            mean_levels = lev_w / lev_a  # 0 / 0 = NaN where no level is known
        decided = (polygon & (n_b > 0)) | found
        eps = 1e-9  # a value equal to a threshold passes despite rounding in areas
        ok = (
            (n_b <= t.max_buildings)
            & (cover >= t.min_coverage - eps)
            & (mean_levels >= t.min_levels - eps)  # False where levels are unknown (NaN)
            & (site_area <= t.max_site_area_m2 * (1 + eps))
        )
        out["layout"] = np.select([decided & ok, decided], ["building", "park"], "unclassified")
        measured = polygon | found
        out["n_buildings"] = np.where(polygon | point, n_b, np.nan)
        out["coverage"] = np.where(measured, cover, np.nan)
        out["mean_levels"] = mean_levels
        out["site_area_m2"] = site_area
        out["_lev_w"], out["_lev_a"] = lev_w, lev_a
        out["_foot"] = np.where(measured, foot, np.nan)
        out["reason"] = _reasons(out, decided, point, t)
        out.loc[polygon & (n_b == 0), "reason"] = "no building footprints inside the site"
        out.loc[point & ~found, "reason"] = (
            "point-only site with no building footprint at its location "
            f"(within {t.point_building_tolerance_m:g} m)"
        )
    from_point = sf["_from_point"].to_numpy()
    out.loc[empty & ~from_point, ["layout", "reason"]] = [
        "unclassified", "site has no geometry",
    ]
    out.loc[empty & from_point, ["layout", "reason"]] = [
        "unclassified", "incubator has no location and no site geometry",
    ]
    return out


def _reasons(out: pd.DataFrame, decided: np.ndarray, point: np.ndarray, t: LayoutThresholds):
    """Facts behind each decided site, and for park sites the tests that failed."""
    reason = np.empty(len(out), dtype=object)  # undecided sites get theirs from the caller
    rows = np.flatnonzero(decided)
    n_b = out["n_buildings"].to_numpy()
    cover = out["coverage"].to_numpy()
    lev = out["mean_levels"].to_numpy()
    area = out["site_area_m2"].to_numpy()
    layout = out["layout"].to_numpy()
    # Per-row text formatting; the geometry above is vectorised.
    for i in rows:
        levs = "levels unknown" if np.isnan(lev[i]) else f"mean {lev[i]:.1f} levels"
        if point[i]:
            facts = f"point in a {area[i]:,.0f} m² footprint, {levs}"
        else:
            nb = int(n_b[i])
            facts = (
                f"{nb} building{'s' if nb != 1 else ''} covering {cover[i]:.0%} of a "
                f"{area[i]:,.0f} m² site, {levs}"
            )
        if layout[i] == "park":
            failed = []
            if n_b[i] > t.max_buildings:
                failed.append(f"more than {t.max_buildings} buildings")
            if cover[i] < t.min_coverage - 1e-9:
                failed.append(f"coverage below {t.min_coverage:.0%}")
            if np.isnan(lev[i]):
                failed.append("levels unknown")
            elif lev[i] < t.min_levels - 1e-9:
                failed.append(f"below {t.min_levels:g} levels")
            if area[i] > t.max_site_area_m2 * (1 + 1e-9):
                failed.append(f"site larger than {t.max_site_area_m2:,.0f} m²")
            facts += " (not building-type: " + ", ".join(dict.fromkeys(failed)) + ")"
        reason[i] = facts
    return reason


def site_layout(
    incubators: gpd.GeoDataFrame,
    sites: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame | None,
    *,
    thresholds: LayoutThresholds | None = None,
    crs: object = None,
) -> pd.DataFrame:
    """Layout of every site: building (楼宇式) or park (园区式).

    Parameters
    ----------
    incubators : GeoDataFrame
        Incubator points with ``id``.
    sites : GeoDataFrame or None
        Site polygons / points with ``incubator_id``; incubators without a site are
        one point site at their own location.
    buildings : GeoDataFrame or None
        Building footprints with ``levels`` and optionally ``height`` (m).
    thresholds : LayoutThresholds, optional
        Decision thresholds (default ``LayoutThresholds()``, documented there).
    crs : CRS-like, optional
        Metric CRS of the analysis (default: local UTM zone).

    Returns
    -------
    pandas.DataFrame
        One row per site: ``incubator_id``, ``site_id``, ``layout``
        (``building`` / ``park`` / ``unclassified``), ``n_buildings``, ``coverage``
        (Σ area(building ∩ site) / site area), ``mean_levels`` (footprint-weighted;
        ``height / storey_height_m`` where ``levels`` is missing; buildings with
        neither are counted but not averaged), ``site_area_m2`` and ``reason``.

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> inc = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.8, 32.05)], crs=4326)
    >>> tower = gpd.GeoDataFrame({"levels": [20]},
    ...     geometry=[box(118.7998, 32.0498, 118.8002, 32.0502)], crs=4326)
    >>> site_layout(inc, None, tower)[["layout", "n_buildings", "coverage", "mean_levels"]]
         layout  n_buildings  coverage  mean_levels
    0  building          1.0       1.0         20.0
    """
    target = analysis_crs(incubators, sites, crs)
    sf = site_frame(incubators, sites, target)
    return _layout_frame(sf, buildings, thresholds or LayoutThresholds())[_SITE_OUT]


def classify_layout(
    incubators: gpd.GeoDataFrame,
    sites: gpd.GeoDataFrame | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    *,
    thresholds: LayoutThresholds | None = None,
    crs: object = None,
) -> pd.DataFrame:
    """Classify every incubator's layout as building, park or mixed.

    ``building`` or ``park`` when every decided site has that layout, ``mixed`` when
    its sites differ (the paper's 混合式, "一园多区"), ``unclassified`` when no site
    can be decided. Declared labels in the input are never read.

    Parameters
    ----------
    incubators, sites, buildings, thresholds, crs :
        As in :func:`site_layout`.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``incubators``: ``layout``, ``n_sites``, ``n_buildings`` (sum
        over sites), ``coverage`` (pooled: Σ footprint / Σ site area over measured
        sites), ``mean_levels`` (footprint-weighted over all sites), ``site_area_m2``
        (sum) and ``reason``.

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> inc = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.8, 32.05)], crs=4326)
    >>> classify_layout(inc, None, None)[["layout", "reason"]]
             layout              reason
    0  unclassified  no buildings layer
    """
    index = incubators.index
    n = len(incubators)
    cols = ["layout", "n_sites", "n_buildings", "coverage", "mean_levels", "site_area_m2", "reason"]
    if n == 0:
        return pd.DataFrame(columns=cols, index=index)
    target = analysis_crs(incubators, sites, crs)
    sf = site_frame(incubators, sites, target)
    lay = _layout_frame(sf, buildings, thresholds or LayoutThresholds())
    lay = lay.loc[lay["_inc"] >= 0]  # sites naming unknown incubators: per site only
    inc = lay["_inc"].to_numpy()

    def total(values: np.ndarray) -> np.ndarray:
        ok = ~np.isnan(values)
        s = np.bincount(inc[ok], weights=values[ok], minlength=n)
        c = np.bincount(inc[ok], minlength=n)
        return np.where(c > 0, s, np.nan)

    # Every incubator has a site (its own point at least), so these counts have length n.
    n_sites = np.bincount(inc)
    n_bld = np.bincount(inc, weights=(lay["layout"] == "building").to_numpy())
    n_park = np.bincount(inc, weights=(lay["layout"] == "park").to_numpy())
    building, park, mixed = LAYOUT.labels
    layout = np.select(
        [(n_bld > 0) & (n_park > 0), n_bld > 0, n_park > 0],
        [mixed, building, park],
        default=UNCLASSIFIED,
    )
    measured = ~np.isnan(lay["_foot"].to_numpy())
    foot = total(lay["_foot"].to_numpy())
    area_measured = total(np.where(measured, lay["site_area_m2"].to_numpy(), np.nan))
    lev_w = np.bincount(inc, weights=lay["_lev_w"].to_numpy())
    lev_a = np.bincount(inc, weights=lay["_lev_a"].to_numpy())
    # 0 / 0 = NaN where nothing was measured or no level is known (never x / 0, x > 0).
    with np.errstate(invalid="ignore"):
        coverage = np.minimum(foot / area_measured, 1.0)  # overlapping footprints
        mean_levels = lev_w / lev_a

    # One site: its own reason (several sites: replaced just below).
    reason = np.empty(n, dtype=object)
    reason[inc] = lay["reason"].to_numpy()
    multi = n_sites > 1
    n_unc = n_sites - n_bld - n_park
    if multi.any():
        nb = pd.Series(n_bld[multi].astype(int)).astype(str).to_numpy()
        npk = pd.Series(n_park[multi].astype(int)).astype(str).to_numpy()
        both = (n_bld[multi] > 0) & (n_park[multi] > 0)
        reason[multi] = np.where(
            both,
            nb + " building-type and " + npk + " park-type sites",
            np.where(n_bld[multi] > 0, nb + " building-type sites", npk + " park-type sites"),
        )
        unc = lay.loc[(lay["layout"] == "unclassified") & multi[inc]]
        if len(unc):
            why = unc.groupby("_inc")["reason"].agg(lambda s: "; ".join(dict.fromkeys(s)))
            rows = why.index.to_numpy()
            decided = (n_bld + n_park)[rows] > 0
            reason[rows[decided]] = (
                reason[rows[decided]] + "; " + n_unc[rows[decided]].astype(int).astype(str)
                + " site(s) ignored: " + why.to_numpy()[decided]
            )
            reason[rows[~decided]] = "all sites unclassified: " + why.to_numpy()[~decided]
    out = pd.DataFrame(
        {
            "layout": layout,
            "n_sites": n_sites,
            "n_buildings": total(lay["n_buildings"].to_numpy(dtype=float)),
            "coverage": coverage,
            "mean_levels": mean_levels,
            "site_area_m2": total(lay["site_area_m2"].to_numpy(dtype=float)),
            "reason": reason,
        },
        index=index,
    )
    return out[cols]
