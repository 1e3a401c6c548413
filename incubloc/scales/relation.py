"""Relation of incubators to host functional spaces: 园中园 / 独立 / 混合.

He & Wang (2016, section 2.3) sort incubators by their spatial relation to other
innovation or production spaces: *park-in-park* (园中园型) incubators are built
inside a university or research campus or inside a production space such as a
development zone, high-tech zone or industrial park; *standalone* (独立型)
incubators form a park of their own outside such spaces; *mixed* (混合型)
incubators have several sites, some inside a host and some outside.

incubloc decides this from geometry alone, per site:

* a **polygon site** is inside a host when at least ``min_share`` of its area lies
  in the host polygon (hosts grown by ``tolerance_m``);
* a **point site** is inside a host when the point lies in the host polygon grown by
  ``tolerance_m`` (a point on the boundary counts as inside);
* when hosts overlap or nest (a science park inside a high-tech zone) the
  **smallest** qualifying host wins: it is the most specific space the site is
  part of.

An incubator without a row in the sites layer is analysed as one point site at its
own location. Declared labels (``declared_relation``, ``relation``, …) are never
read; compare them afterwards with :func:`incubloc.agreement.agreement`.
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
from incubloc.geometry import analysis_crs, best_match, match_pairs, site_frame
from incubloc.options import RelationOptions
from incubloc.vocabulary import RELATION, UNCLASSIFIED

__all__ = ["HOST_KINDS", "RELATIONS", "classify_relation", "site_relation"]

log = logging.getLogger(__name__)

#: Kinds of host functional space (column ``kind`` of the ``hosts`` layer).
HOST_KINDS = (
    "university",
    "research",
    "development_zone",
    "high_tech_zone",
    "industrial_park",
    "science_park",
    "other",
)

#: Labels of :func:`classify_relation` (``relation`` column).
RELATIONS = (*RELATION.labels, UNCLASSIFIED)


# --------------------------------------------------------------------------- helpers


def _host_frame(hosts: gpd.GeoDataFrame, target: CRS) -> gpd.GeoDataFrame:
    """Hosts in ``target`` with ``host_id``, ``name``, ``kind``; polygons only."""
    if hosts.crs is None:
        raise StudyAreaError("the hosts layer has no CRS: set one (EPSG:4326 is expected)")
    cols = hosts.columns
    # Positional columns: the layer's index plays no part.
    h = pd.DataFrame(
        {
            "host_id": hosts["host_id"].astype(str).to_numpy() if "host_id" in cols
            else [f"host-{i + 1}" for i in range(len(hosts))],
            "name": hosts["name"].to_numpy() if "name" in cols else None,
            "kind": hosts["kind"].fillna("other").astype(str).to_numpy() if "kind" in cols
            else "other",
        }
    )
    # The geometry array carries the layer's CRS.
    out = to_metric(gpd.GeoDataFrame(h, geometry=hosts.geometry.values), crs=target)
    geom = out.geometry.values
    # A missing geometry has area NaN, an empty one or a line 0: neither is a host.
    keep = shapely.area(geom) > 0
    if (~keep).any():
        log.warning("hosts layer: ignored %d features without polygon area", int((~keep).sum()))
    out = out.loc[keep]  # used by position from here on
    geom = out.geometry.values
    invalid = ~shapely.is_valid(geom)
    if invalid.any():
        out.loc[invalid, out.geometry.name] = shapely.make_valid(geom[invalid])
    return out


def _pct(x: pd.Series | np.ndarray) -> pd.Series:
    return pd.Series(np.round(np.asarray(x) * 100).astype(int)).astype(str) + "%"


def _relation_frame(
    sf: gpd.GeoDataFrame, hosts: gpd.GeoDataFrame | None, min_share: float, tolerance_m: float
) -> pd.DataFrame:
    n = len(sf)
    out = pd.DataFrame(
        {
            "incubator_id": sf["incubator_id"].to_numpy(),
            "site_id": sf["site_id"].to_numpy(),
            "relation": "unclassified",
            "host_id": None,
            "host_kind": None,
            "share_inside": np.nan,
            "_inc": sf["_inc"].to_numpy(),
            "_area": sf["_area"].to_numpy(),
        }
    )
    empty = sf["_empty"].to_numpy()
    from_point = sf["_from_point"].to_numpy()
    if hosts is None or len(hosts) == 0:
        out["reason"] = "no hosts layer" if hosts is None else "hosts layer is empty"
    else:
        hf = _host_frame(hosts, sf.crs)
        host_geom = hf.geometry.to_numpy()
        host_area = shapely.area(host_geom)
        grown = shapely.buffer(host_geom, tolerance_m) if tolerance_m > 0 else host_geom
        geom = sf.geometry.to_numpy()
        polygon = sf["_polygon"].to_numpy()
        located = ~empty
        s_idx, h_idx = match_pairs(geom[located], grown)
        s_idx = np.flatnonzero(located)[s_idx]
        share = np.ones(len(s_idx))
        poly_pair = polygon[s_idx]
        if poly_pair.any():
            inter = shapely.intersection(geom[s_idx[poly_pair]], grown[h_idx[poly_pair]])
            share[poly_pair] = shapely.area(inter) / sf["_area"].to_numpy()[s_idx[poly_pair]]
        share = np.clip(share, 0.0, 1.0)
        best = pd.Series(share).groupby(s_idx).max()
        # Smallest qualifying host wins; ties go to the larger share, then layer order.
        ok = np.flatnonzero(share >= min_share - 1e-9)
        win = best_match(s_idx[ok], ok, n, host_area[h_idx[ok]], -share[ok], h_idx[ok])
        inside = win >= 0
        win_host = h_idx[win[inside]]  # host of each site inside one
        win_share = np.full(n, np.nan)
        win_share[inside] = share[win[inside]]
        max_share = best.reindex(np.arange(n)).fillna(0.0).to_numpy()

        out.loc[located, "relation"] = "standalone"
        out.loc[inside, "relation"] = "park_in_park"
        hid = hf["host_id"].to_numpy()[win_host]
        hkind = hf["kind"].to_numpy()[win_host]
        hname = hf["name"].to_numpy()[win_host]
        out.loc[inside, "host_id"] = hid
        out.loc[inside, "host_kind"] = hkind
        out["share_inside"] = np.where(inside, win_share, np.where(located, max_share, np.nan))
        label = pd.Series(hkind).astype(str) + " " + pd.Series(
            np.where(pd.isna(hname), hid, hname)
        ).astype(str)
        tol = f" (hosts grown by {tolerance_m:g} m)" if tolerance_m > 0 else ""
        # Reasons, built column-wise; every located site falls in one of four cases
        # (empty sites get theirs below).
        reason = np.empty(n, dtype=object)
        ins_poly = inside & polygon
        ins_pt = inside & ~polygon
        lab = np.empty(n, dtype=object)
        lab[inside] = label.to_numpy()
        reason[ins_poly] = (
            _pct(win_share[ins_poly]).to_numpy() + " of the site inside " + lab[ins_poly] + tol
        )
        reason[ins_pt] = "point inside " + lab[ins_pt] + tol
        out_poly = located & ~inside & polygon
        out_pt = located & ~inside & ~polygon
        reason[out_poly] = (
            "at most " + _pct(max_share[out_poly]).to_numpy() + " of the site inside any host "
            f"(needs {min_share:.0%}){tol}"
        )
        reason[out_pt] = f"point outside every host{tol}"
        out["reason"] = reason
    out.loc[empty & ~from_point, ["relation", "reason"]] = ["unclassified", "site has no geometry"]
    out.loc[empty & from_point, ["relation", "reason"]] = [
        "unclassified",
        "incubator has no location and no site geometry",
    ]
    return out


# --------------------------------------------------------------------------- public API


def site_relation(
    incubators: gpd.GeoDataFrame,
    sites: gpd.GeoDataFrame | None,
    hosts: gpd.GeoDataFrame | None,
    *,
    min_share: float = RelationOptions.min_share,
    tolerance_m: float = RelationOptions.tolerance_m,
    crs: object = None,
) -> pd.DataFrame:
    """Relation of every site to the host spaces (park_in_park / standalone).

    Parameters
    ----------
    incubators : GeoDataFrame
        Incubator points with an ``id`` column (else the index is the id).
    sites : GeoDataFrame or None
        Site polygons or points with ``incubator_id`` and optionally ``site_id``.
        Incubators without a site row are one point site at their own location
        (``site_id`` = the incubator id).
    hosts : GeoDataFrame or None
        Host polygons with ``host_id``, ``name`` and ``kind`` (see :data:`HOST_KINDS`).
    min_share : float
        Share of a site polygon's area that must lie in a host for the site to be
        inside it (a share equal to it counts); default
        :class:`~incubloc.options.RelationOptions`.
    tolerance_m : float
        Hosts are grown by this many metres before testing; default
        :class:`~incubloc.options.RelationOptions`.
    crs : CRS-like, optional
        Metric CRS of the analysis (default: the local UTM zone of the incubators).

    Returns
    -------
    pandas.DataFrame
        One row per site, ordered by incubator: ``incubator_id``, ``site_id``,
        ``relation`` (``park_in_park`` / ``standalone`` / ``unclassified``),
        ``host_id``, ``host_kind``, ``share_inside`` (share in the winning host; for
        a standalone site the largest share in any host; 1 or 0 for points) and
        ``reason``. Nested or overlapping hosts: the smallest qualifying host wins.

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> inc = gpd.GeoDataFrame({"id": ["a", "b"]},
    ...                        geometry=[Point(118.80, 32.05), Point(118.90, 32.05)], crs=4326)
    >>> hosts = gpd.GeoDataFrame({"host_id": ["u"], "name": ["Campus"], "kind": ["university"]},
    ...                          geometry=[box(118.79, 32.04, 118.81, 32.06)], crs=4326)
    >>> site_relation(inc, None, hosts)[["site_id", "relation", "host_kind"]]
      site_id      relation   host_kind
    0       a  park_in_park  university
    1       b    standalone        None
    """
    RelationOptions(min_share=min_share, tolerance_m=tolerance_m)  # checks the ranges
    target = analysis_crs(incubators, sites, crs)
    sf = site_frame(incubators, sites, target)
    rel = _relation_frame(sf, hosts, min_share, tolerance_m)
    return rel.drop(columns=["_inc", "_area"])


def classify_relation(
    incubators: gpd.GeoDataFrame,
    sites: gpd.GeoDataFrame | None = None,
    hosts: gpd.GeoDataFrame | None = None,
    *,
    min_share: float = RelationOptions.min_share,
    tolerance_m: float = RelationOptions.tolerance_m,
    crs: object = None,
) -> pd.DataFrame:
    """Classify every incubator as park_in_park, standalone or mixed.

    An incubator is ``park_in_park`` when all its decided sites lie inside hosts,
    ``standalone`` when none does and ``mixed`` when some do and some do not (the
    paper's 混合型, several sites). Sites that cannot be decided (no geometry) are
    ignored when others decide, and the reason says so. Declared labels in the
    input are never read.

    Parameters
    ----------
    incubators, sites, hosts, min_share, tolerance_m, crs :
        As in :func:`site_relation`.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``incubators``: ``relation`` (:data:`RELATIONS`), ``host_id``
        and ``host_kind`` (of the largest site inside a host, also for ``mixed``),
        ``n_sites`` and ``reason``. Without a hosts layer every incubator is
        ``unclassified`` with reason "no hosts layer".

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> inc = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.80, 32.05)], crs=4326)
    >>> sites = gpd.GeoDataFrame({"incubator_id": ["a", "a"]},
    ...     geometry=[box(118.795, 32.045, 118.796, 32.046), box(118.90, 32.0, 118.901, 32.001)],
    ...     crs=4326)
    >>> hosts = gpd.GeoDataFrame({"host_id": ["z"], "kind": ["high_tech_zone"]},
    ...                          geometry=[box(118.79, 32.04, 118.81, 32.06)], crs=4326)
    >>> r = classify_relation(inc, sites, hosts)
    >>> r.loc[0, "relation"], r.loc[0, "host_kind"], r.loc[0, "reason"]
    ('mixed', 'high_tech_zone', '1 of 2 sites inside hosts')
    """
    RelationOptions(min_share=min_share, tolerance_m=tolerance_m)  # checks the ranges
    index = incubators.index
    n = len(incubators)
    if n == 0:
        return pd.DataFrame(
            columns=["relation", "host_id", "host_kind", "n_sites", "reason"], index=index
        )
    target = analysis_crs(incubators, sites, crs)
    sf = site_frame(incubators, sites, target)
    rel = _relation_frame(sf, hosts, min_share, tolerance_m)
    rel = rel.loc[rel["_inc"] >= 0]  # sites naming unknown incubators: per site only
    return _aggregate(rel, n, index)


def _aggregate(rel: pd.DataFrame, n: int, index: pd.Index) -> pd.DataFrame:
    inc = rel["_inc"].to_numpy()
    # Every incubator has a site (its own point at least), so each count has length n.
    n_sites = np.bincount(inc)
    n_in = np.bincount(inc, weights=(rel["relation"] == "park_in_park").to_numpy())
    n_out = np.bincount(inc, weights=(rel["relation"] == "standalone").to_numpy())
    park_in_park, standalone, mixed = RELATION.labels
    relation = np.select(
        [(n_in > 0) & (n_out > 0), n_in > 0, n_out > 0],
        [mixed, park_in_park, standalone],
        default=UNCLASSIFIED,
    )
    out = pd.DataFrame({"relation": relation}, index=index)
    host_id = np.empty(n, dtype=object)
    host_kind = np.empty(n, dtype=object)
    # Host of the largest site inside a host (points have area 0, ties: first site).
    inside = rel.loc[rel["relation"] == "park_in_park"]
    if len(inside):
        top = inside.loc[inside.groupby("_inc")["_area"].idxmax()]  # idxmax: first of ties
        host_id[top["_inc"].to_numpy()] = top["host_id"].to_numpy()
        host_kind[top["_inc"].to_numpy()] = top["host_kind"].to_numpy()
    # As object Series, so that "no host" stays None (pandas would turn it into NaN).
    out["host_id"] = pd.Series(host_id, index=index, dtype=object)
    out["host_kind"] = pd.Series(host_kind, index=index, dtype=object)
    out["n_sites"] = n_sites

    decided = n_in + n_out
    # One site: its own reason (several sites: replaced just below).
    reason = np.empty(n, dtype=object)
    reason[inc] = rel["reason"].to_numpy()
    multi = n_sites > 1
    reason[multi] = (
        pd.Series(n_in[multi].astype(int)).astype(str)
        + " of "
        + pd.Series(decided[multi].astype(int)).astype(str)
        + " sites inside hosts"
    ).to_numpy()
    unc = rel.loc[rel["relation"] == "unclassified"]
    if len(unc):
        why = unc.groupby("_inc")["reason"].agg(lambda s: "; ".join(dict.fromkeys(s)))
        cnt = unc.groupby("_inc").size()
        rows = why.index.to_numpy()
        multi_rows = rows[multi[rows]]
        if len(multi_rows):
            any_decided = decided[multi_rows] > 0
            some = multi_rows[any_decided]
            none = multi_rows[~any_decided]
            reason[some] = (
                pd.Series(reason[some]).to_numpy()
                + "; "
                + cnt[some].astype(str).to_numpy()
                + " site(s) ignored: "
                + why[some].to_numpy()
            )
            reason[none] = ("all sites unclassified: " + why[none]).to_numpy()
    out["reason"] = reason
    return out
