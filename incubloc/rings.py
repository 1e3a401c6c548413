"""Town scale: concentric rings (圈层) and the per-city ring pattern.

He & Wang (2016, section 2.2) divide each city into three concentric rings, the
central urban district (中心城区, ``core``), the near suburb (近郊区,
``inner_suburb``) and the far suburb (远郊区, ``outer_suburb``), and classify a
city by the rings that hold incubators: single-ring, double-ring or triple-ring,
seven patterns in all (:data:`RING_PATTERNS`). For Nanjing they add that density
falls and opening years rise outward, and that incubators sit at the edges of
their rings (分布在各圈层的边缘地区).

A ring layer holds polygons with ``city`` (the ring *system*: a prefecture's
central districts carry the prefecture's name, a county-level settlement its own),
``prefecture`` and ``ring``. Build one from districts (:func:`rings_from_districts`),
from distance bands (:func:`rings_from_distance`) or from your own polygons
(:func:`rings_from_polygons`). Then :func:`assign_ring` places incubators,
:func:`ring_patterns`, :func:`ring_table`, :func:`density_gradient` and
:func:`opening_sequence` summarise them and :func:`ring_edge_test` tests the
ring-edge claim.

Areas (ring areas, densities) are computed in a Lambert azimuthal equal-area
projection centred on the ring layer; distances in the local UTM zone.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy import stats

from incubloc._results import Result
from incubloc.coords import metric_crs, to_metric
from incubloc.errors import CoordinateError, InputError, StudyAreaError
from incubloc.geometry import best_match, located_points, match_pairs
from incubloc.vocabulary import LEVEL, RING, UNCLASSIFIED

__all__ = [
    "RINGS",
    "RING_LABELS_ZH",
    "RING_PATTERNS",
    "RingEdgeResult",
    "assign_ring",
    "density_gradient",
    "normalise_ring",
    "opening_sequence",
    "ring_edge_test",
    "ring_pattern",
    "ring_patterns",
    "ring_table",
    "rings_from_distance",
    "rings_from_districts",
    "rings_from_polygons",
]

log = logging.getLogger(__name__)

#: Rings from the centre outward.
RINGS: tuple[str, ...] = RING.labels

#: Chinese names of the rings.
RING_LABELS_ZH = RING.zh

#: The seven ring patterns: single-ring, double-ring, triple-ring, in canonical order.
RING_PATTERNS: tuple[str, ...] = (
    "core",
    "inner_suburb",
    "outer_suburb",
    "core+inner_suburb",
    "core+outer_suburb",
    "inner_suburb+outer_suburb",
    "core+inner_suburb+outer_suburb",
)

_RING_ORDER = {r: i + 1 for i, r in enumerate(RINGS)}

_RING_COLUMNS = ["city", "prefecture", "ring", "method", "geometry"]

# Distance rule when only a population is known: r_core = 4 km * sqrt(pop / 1e6).
_CORE_KM_PER_SQRT_MILLION = 4.0
_INNER_FACTOR = 3.0
_OUTER_FACTOR = 6.0


# --------------------------------------------------------------------------- labels


def normalise_ring(value: Any) -> str | None:
    """Canonical ring label of ``value``, or None when it is not a ring label.

    Accepts the English labels (also ``near_suburb`` / ``far_suburb``), the Chinese
    中心城区 / 近郊区 / 远郊区 and 内圈层 / 中圈层 / 外圈层.

    Examples
    --------
    >>> normalise_ring("近郊区"), normalise_ring("Outer suburb"), normalise_ring("x")
    ('inner_suburb', 'outer_suburb', None)
    """
    return RING.normalise(value)


def ring_pattern(rings_present: Sequence[str] | set[str]) -> str:
    """The pattern label of a set of occupied rings ("none" when empty).

    Examples
    --------
    >>> ring_pattern({"outer_suburb", "core"})
    'core+outer_suburb'
    >>> ring_pattern([])
    'none'
    """
    present = {normalise_ring(r) or r for r in rings_present}
    return "+".join(r for r in RINGS if r in present) or "none"


# --------------------------------------------------------------------------- layers


def _equal_area_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    """Lambert azimuthal equal-area CRS centred on the data (in EPSG:4326 bounds)."""
    lonlat = gdf.to_crs(4326) if not CRS.from_user_input(gdf.crs).is_geographic else gdf
    minx, miny, maxx, maxy = lonlat.total_bounds
    lon0, lat0 = (minx + maxx) / 2.0, (miny + maxy) / 2.0
    return CRS.from_proj4(
        f"+proj=laea +lat_0={lat0:.6f} +lon_0={lon0:.6f} +x_0=0 +y_0=0 +datum=WGS84 "
        "+units=m +no_defs"
    )


def _canonical(records: list[dict[str, Any]], crs: Any) -> gpd.GeoDataFrame:
    if not records:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype=object) for c in _RING_COLUMNS[:-1]},
            geometry=gpd.GeoSeries([], crs=crs), crs=crs,
        ).to_crs(4326)
    df = pd.DataFrame(records)
    df["_city"] = pd.Categorical(df["city"], categories=list(dict.fromkeys(df["city"])))
    df["_ring"] = df["ring"].map(_RING_ORDER)
    df = df.sort_values(["_city", "_ring"], kind="stable")
    gdf = gpd.GeoDataFrame(
        df[_RING_COLUMNS[:-1]].astype(object).reset_index(drop=True),
        geometry=list(df["geometry"]),
        crs=crs,
    )
    empty = shapely.is_empty(np.asarray(gdf.geometry.values, dtype=object))
    if empty.any():
        log.info("dropped %d empty rings", int(empty.sum()))
        gdf = gdf.loc[~empty].reset_index(drop=True)
    return gdf.to_crs(4326)


def _ring_layer(rings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Validated ring layer in EPSG:4326 with canonical labels and ``prefecture``."""
    if not isinstance(rings, gpd.GeoDataFrame):
        raise StudyAreaError("rings must be a GeoDataFrame with columns city and ring")
    missing = [c for c in ("city", "ring") if c not in rings.columns]
    if missing:
        raise StudyAreaError(
            f"the rings layer lacks column(s) {', '.join(missing)}: give each polygon its ring "
            "system (city) and ring (core / inner_suburb / outer_suburb)"
        )
    if rings.crs is None:
        raise StudyAreaError("the rings layer has no CRS: set one (EPSG:4326 is expected)")
    out = rings.to_crs(4326) if CRS.from_user_input(rings.crs).to_epsg() != 4326 else rings.copy()
    labels = out["ring"].map(normalise_ring)
    bad = labels.isna().to_numpy()
    if bad.any():
        rows = (np.flatnonzero(bad) + 1).tolist()
        values = pd.unique(out["ring"].astype(object)[bad])
        raise StudyAreaError(
            f"the rings layer has unknown ring labels {list(values)} (features {rows[:10]}): "
            f"use {RING.accepted}"
        )
    out["ring"] = labels.astype(object)
    out["city"] = out["city"].astype(str)
    if "prefecture" not in out.columns:
        out["prefecture"] = out["city"]
    else:
        pref = out["prefecture"].astype(object)
        out["prefecture"] = pref.where(pref.notna(), out["city"]).astype(str)
    geoms = np.asarray(out.geometry.values, dtype=object)
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    return out.loc[keep].reset_index(drop=True)


def _systems(rings: gpd.GeoDataFrame) -> pd.DataFrame:
    return rings.drop_duplicates("city")[["city", "prefecture"]].reset_index(drop=True)


def _dissolved(rings: gpd.GeoDataFrame, crs: Any = None) -> gpd.GeoDataFrame:
    """One polygon per (city, ring), in ``crs`` (default that of ``rings``)."""
    src = rings if crs is None else rings.to_crs(crs)
    rows = []
    for (city, ring), grp in src.groupby(["city", "ring"], sort=False):
        geoms = np.asarray(grp.geometry.values, dtype=object)
        geom = geoms[0] if len(geoms) == 1 else shapely.union_all(geoms)
        rows.append({"city": city, "prefecture": grp["prefecture"].iloc[0], "ring": ring,
                     "geometry": geom})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=src.crs)


# --------------------------------------------------------------------------- builders


def rings_from_districts(
    districts: gpd.GeoDataFrame,
    groups: Mapping[str, Mapping[str, Sequence[str] | str]],
    *,
    district_col: str = "district_zh",
) -> gpd.GeoDataFrame:
    """Rings as unions of administrative districts, grouped per city.

    Parameters
    ----------
    districts : GeoDataFrame
        District polygons (e.g. the ``districts`` layer).
    groups : dict
        ``{city: {ring: [district names]}}``; ring labels as accepted by
        :func:`normalise_ring`. Example (Nanjing master plan 2007–2020):
        ``{"Nanjing": {"core": ["玄武区", "秦淮区", "建邺区", "鼓楼区"],
        "inner_suburb": ["栖霞区", "雨花台区", "江宁区", "浦口区"],
        "outer_suburb": ["六合区", "溧水区", "高淳区"]}}``.
    district_col : str
        Column of ``districts`` holding the names used in ``groups``.

    Returns
    -------
    GeoDataFrame
        Columns city, prefecture (= city), ring, method (``"districts"``), geometry;
        EPSG:4326.

    Raises
    ------
    StudyAreaError
        If a district name is unknown, a district is used twice in one city, a ring
        label is unknown, or ``district_col`` is missing.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> d = gpd.GeoDataFrame({"district_zh": ["甲区", "乙区", "丙县"]}, crs=4326,
    ...                      geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)])
    >>> r = rings_from_districts(d, {"X": {"core": ["甲区"], "近郊区": ["乙区", "丙县"]}})
    >>> r[["city", "ring"]].values.tolist(), float(shapely.area(r.geometry.iloc[1]))
    ([['X', 'core'], ['X', 'inner_suburb']], 2.0)
    """
    if district_col not in districts.columns:
        raise StudyAreaError(
            f"the districts layer has no column {district_col!r} (columns: "
            f"{[c for c in districts.columns if c != districts.geometry.name]}): pass district_col="
        )
    if districts.crs is None:
        raise StudyAreaError("the districts layer has no CRS: set one (EPSG:4326 is expected)")
    names = districts[district_col].astype(str).to_numpy()
    known = set(names)
    geoms = np.asarray(districts.geometry.values, dtype=object)
    records = []
    for city, spec in groups.items():
        used: dict[str, str] = {}
        for label, members in spec.items():
            ring = normalise_ring(label)
            if ring is None:
                raise StudyAreaError(
                    f"unknown ring label {label!r} for city {city!r}: use {RING.accepted}"
                )
            members = [members] if isinstance(members, str) else list(members)
            for m in members:
                if m not in known:
                    raise StudyAreaError(
                        f"district {m!r} (ring {ring} of {city}) is not in column "
                        f"{district_col!r} of the districts layer; known names: "
                        f"{sorted(known)[:40]}"
                    )
                if m in used:
                    raise StudyAreaError(
                        f"district {m!r} is in two rings of {city} ({used[m]} and {ring}): "
                        "give each district one ring"
                    )
                used[m] = ring
            if not members:
                continue
            geom = shapely.union_all(geoms[np.isin(names, members)])
            records.append(
                {"city": str(city), "prefecture": str(city), "ring": ring,
                 "method": "districts", "geometry": geom}
            )
    return _canonical(records, districts.crs)


def _as_lookup(value: Any, centres: gpd.GeoDataFrame, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        if value not in centres.columns:
            raise InputError(f"{what}={value!r} is not a column of centres")
        return dict(zip(centres["city"].astype(str), centres[value], strict=True))
    if isinstance(value, pd.Series):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    raise InputError(f"{what} must be a dict {{city: value}}, a Series or a column name")


def _radii_for(
    city: str, radii: Any, pops: dict[str, Any]
) -> tuple[float, float, float | None, bool]:
    """(r_core, r_inner, r_outer or None, whether the radii were given)."""
    if radii is not None:
        r = radii.get(city) if isinstance(radii, Mapping) else radii
        if r is None:
            if city not in pops:
                raise InputError(
                    f"no radii for city {city!r}: add it to radii= or give its population"
                )
        else:
            r = [float(v) for v in r]
            if len(r) not in (2, 3):
                raise InputError(
                    f"radii for {city!r} must be (r_core_m, r_inner_m) or "
                    f"(r_core_m, r_inner_m, r_outer_m), not {r}"
                )
            outer = r[2] if len(r) == 3 else None
            if not (0 < r[0] < r[1] and (outer is None or r[1] < outer)):
                raise InputError(
                    f"radii for {city!r} must increase outward and be positive, got {r}"
                )
            return r[0], r[1], outer, True
    pop = pd.to_numeric(pd.Series([pops.get(city)]), errors="coerce").iloc[0]
    if not (pd.notna(pop) and pop > 0):
        raise InputError(
            f"cannot size the rings of {city!r}: give radii= or a positive population"
        )
    core = _CORE_KM_PER_SQRT_MILLION * 1000.0 * math.sqrt(float(pop) / 1e6)
    return core, _INNER_FACTOR * core, _OUTER_FACTOR * core, False


def _clip_for(city: str, clip: Any, crs: CRS) -> shapely.Geometry | None:
    if clip is None:
        return None
    if isinstance(clip, shapely.Geometry):
        return clip  # assumed in the centres' metric CRS
    if not isinstance(clip, gpd.GeoDataFrame | gpd.GeoSeries):
        raise InputError("clip must be a GeoDataFrame / GeoSeries of polygons or a shapely polygon")
    if clip.crs is None:
        raise CoordinateError("the clip polygons have no CRS: set one (e.g. gdf.set_crs(4326))")
    clip_m = clip.to_crs(crs)
    if isinstance(clip_m, gpd.GeoDataFrame) and "city" in clip_m.columns:
        sel = clip_m[clip_m["city"].astype(str) == city]
        if not len(sel):
            raise InputError(
                f"the clip polygons have no row with city {city!r}: add its boundary or drop "
                "the city column to clip every city by the same polygons"
            )
        return shapely.union_all(np.asarray(sel.geometry.values, dtype=object))
    return shapely.union_all(np.asarray(clip_m.geometry.values, dtype=object))


def rings_from_distance(
    centres: gpd.GeoDataFrame,
    *,
    radii: Mapping[str, Sequence[float]] | Sequence[float] | None = None,
    population: Mapping[str, float] | pd.Series | str | None = None,
    clip: gpd.GeoDataFrame | gpd.GeoSeries | shapely.Geometry | None = None,
) -> gpd.GeoDataFrame:
    """Rings as distance bands around each city centre.

    ``core`` is the disc of radius ``r_core`` around the centre, ``inner_suburb``
    the annulus out to ``r_inner`` and ``outer_suburb`` the rest of the city's
    ``clip`` polygon (its city or county boundary), or, without ``clip``, the
    annulus out to ``r_outer``. Every ring is cut to ``clip`` when given. Discs are
    built in the local UTM zone (:func:`incubloc.coords.to_metric`) as 128-sided
    polygons (area within 0.05 % of π r²).

    Radii come from ``radii`` or, for cities without radii, from the population:
    ``r_core = 4 km · sqrt(population / 1 million)``, ``r_inner = 3 · r_core``,
    ``r_outer = 6 · r_core`` (a city of 1 million gets 4, 12 and 24 km; 8 million
    11.3, 34 and 68 km).

    Parameters
    ----------
    centres : GeoDataFrame
        Points with ``city`` (the ring system) and optionally ``prefecture`` and
        ``population``.
    radii : dict or tuple, optional
        ``{city: (r_core_m, r_inner_m[, r_outer_m])}`` or one tuple for every city.
    population : dict, Series or column name, optional
        Resident persons per city (default: the ``population`` column of
        ``centres`` if present).
    clip : GeoDataFrame, GeoSeries or polygon, optional
        Boundaries; with a ``city`` column each city is cut by its own rows,
        otherwise every city by the union of all. A bare shapely polygon must be
        in the metric CRS used (that of projected ``centres``).

    Returns
    -------
    GeoDataFrame
        Columns city, prefecture, ring, method (``"distance"``), geometry; EPSG:4326.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> c = gpd.GeoDataFrame({"city": ["X"]}, geometry=[Point(670_000, 3_548_000)], crs=32650)
    >>> r = rings_from_distance(c, radii={"X": (5_000, 15_000, 30_000)})
    >>> r["ring"].tolist()
    ['core', 'inner_suburb', 'outer_suburb']
    >>> [round(a / (math.pi * 1e6)) for a in r.to_crs(32650).area]  # area / π in km²
    [25, 200, 675]
    """
    if not isinstance(centres, gpd.GeoDataFrame) or "city" not in centres.columns:
        raise InputError("centres must be a GeoDataFrame of points with a 'city' column")
    if centres.crs is None:
        raise CoordinateError("the centres have no CRS: set one (e.g. gdf.set_crs(4326))")
    metric = to_metric(centres)
    crs = metric.crs
    pop_source = population
    if pop_source is None and "population" in centres.columns:
        pop_source = "population"
    pops = _as_lookup(pop_source, centres, "population")
    if radii is not None and not isinstance(radii, Mapping):
        radii = tuple(radii)
    geoms = np.asarray(metric.geometry.values, dtype=object)
    records = []
    for i, city in enumerate(metric["city"].astype(str)):
        centre = geoms[i]
        if centre is None or shapely.is_empty(centre):
            raise InputError(f"centre of city {city!r} (feature {i + 1}) has no geometry")
        centre = shapely.centroid(centre)
        r_core, r_inner, r_outer, given = _radii_for(city, radii, pops)
        boundary = _clip_for(city, clip, crs)
        core = shapely.buffer(centre, r_core, quad_segs=32)
        inner = shapely.buffer(centre, r_inner, quad_segs=32)
        if boundary is None:
            if r_outer is None:
                raise InputError(
                    f"the outer suburb of {city!r} needs a third radius or a clip polygon"
                )
            outer_area = shapely.buffer(centre, r_outer, quad_segs=32)
        else:
            outer_area = (
                boundary
                if r_outer is None or not given
                else shapely.intersection(boundary, shapely.buffer(centre, r_outer, quad_segs=32))
            )
        parts = dict(zip(RINGS, (
            core,
            shapely.difference(inner, core),
            shapely.difference(outer_area, inner),
        ), strict=True))
        if boundary is not None:
            parts["core"] = shapely.intersection(core, boundary)
            parts["inner_suburb"] = shapely.intersection(parts["inner_suburb"], boundary)
        prefecture = (
            str(metric["prefecture"].iloc[i])
            if "prefecture" in metric.columns and pd.notna(metric["prefecture"].iloc[i])
            else city
        )
        for ring, geom in parts.items():
            records.append(
                {"city": city, "prefecture": prefecture, "ring": ring, "method": "distance",
                 "geometry": geom}
            )
    return _canonical(records, crs)


def rings_from_polygons(
    gdf: gpd.GeoDataFrame,
    *,
    city_col: str = "city",
    ring_col: str = "ring",
    nested: bool = False,
) -> gpd.GeoDataFrame:
    """Rings from your own polygons (e.g. ring roads), validated and dissolved.

    Parameters
    ----------
    gdf : GeoDataFrame
        Polygons with a ring-system column and a ring-label column (English or
        Chinese, see :func:`normalise_ring`); optional ``prefecture`` and ``method``.
    city_col, ring_col : str
        Column names.
    nested : bool
        True when each polygon covers everything inside its outer edge (a ring
        road's whole interior): the inner rings are then cut out of the outer ones.

    Returns
    -------
    GeoDataFrame
        One row per (city, ring): city, prefecture, ring, method (default
        ``"polygons"``), geometry; EPSG:4326.

    Raises
    ------
    StudyAreaError
        On a missing column, missing CRS or an unknown ring label (the message
        names the feature).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = gpd.GeoDataFrame({"city": ["X", "X"], "ring": ["中心城区", "近郊区"]}, crs=4326,
    ...                      geometry=[box(1, 1, 2, 2), box(0, 0, 3, 3)])
    >>> r = rings_from_polygons(g, nested=True)
    >>> r["ring"].tolist(), float(shapely.area(r.geometry.iloc[1]))
    (['core', 'inner_suburb'], 8.0)
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise StudyAreaError("ring polygons must be a GeoDataFrame")
    missing = [c for c in (city_col, ring_col) if c not in gdf.columns]
    if missing:
        raise StudyAreaError(
            f"the ring polygons lack column(s) {missing}: pass city_col= / ring_col= naming "
            "the ring system and the ring label"
        )
    if gdf.crs is None:
        raise StudyAreaError("the ring polygons have no CRS: set one (e.g. gdf.set_crs(4326))")
    renamed = gdf.rename(columns={city_col: "city", ring_col: "ring"})
    renamed = renamed.loc[:, ~renamed.columns.duplicated()]
    layer = _ring_layer(renamed)
    method = layer["method"].astype(object) if "method" in layer.columns else None
    records = []
    for city, grp in layer.groupby("city", sort=False):
        inner_union = None
        for ring in RINGS:
            sel = grp[grp["ring"] == ring]
            if not len(sel):
                continue
            geom = shapely.union_all(np.asarray(sel.geometry.values, dtype=object))
            full = geom
            if nested and inner_union is not None:
                geom = shapely.difference(geom, inner_union)
            if nested:
                inner_union = full if inner_union is None else shapely.union(inner_union, full)
            m = method.loc[sel.index].dropna() if method is not None else pd.Series([], dtype=object)
            records.append(
                {"city": city, "prefecture": str(sel["prefecture"].iloc[0]), "ring": ring,
                 "method": str(m.iloc[0]) if len(m) else "polygons", "geometry": geom}
            )
    return _canonical(records, layer.crs)


# --------------------------------------------------------------------------- assign


def assign_ring(incubators: gpd.GeoDataFrame, rings: gpd.GeoDataFrame) -> pd.DataFrame:
    """Ring and ring system of every incubator.

    Rules, deterministic:

    * a point on the boundary between two rings of one system belongs to the
      **inner** ring (order core, inner_suburb, outer_suburb);
    * where ring systems overlap, the system of the **smallest** ring polygon that
      contains the point wins (a county's rings inside a prefecture's far suburb);
      equal areas fall to the polygon listed first;
    * a point in no ring polygon is ``"unclassified"``.

    Parameters
    ----------
    incubators : GeoDataFrame
        Points with a CRS.
    rings : GeoDataFrame
        Ring layer (columns city, ring; see module docstring).

    Returns
    -------
    DataFrame
        Indexed like ``incubators``: ``ring``, ``ring_city`` (the ring system, None
        when unclassified), ``reason`` (empty when assigned).

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> rings = gpd.GeoDataFrame({"city": ["X", "X"], "ring": ["core", "inner_suburb"]},
    ...                          geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=4326)
    >>> inc = gpd.GeoDataFrame(geometry=[Point(1, 0.5), Point(1.5, 0.5), Point(5, 5)], crs=4326)
    >>> assign_ring(inc, rings)[["ring", "reason"]].values.tolist()
    [['core', ''], ['inner_suburb', ''], ['unclassified', 'outside every ring polygon']]
    """
    layer = _ring_layer(rings)
    pts, located = located_points(incubators)
    n = len(pts)
    ring = np.full(n, UNCLASSIFIED, dtype=object)
    system = np.full(n, None, dtype=object)
    polys = np.asarray(layer.geometry.values, dtype=object)
    if len(polys) and located.any():
        area = np.asarray(layer.geometry.to_crs(_equal_area_crs(layer)).area, dtype=float)
        ip, it = match_pairs(pts, polys)
        codes = pd.factorize(layer["city"])[0]
        # The system of the smallest polygon holding the point; in it the innermost ring.
        smallest = best_match(ip, it, n, area[it])
        same = codes[it] == codes[smallest[ip]]
        order = layer["ring"].map(_RING_ORDER).to_numpy()
        k = best_match(ip[same], it[same], n, order[it[same]], area[it[same]])
        p = np.flatnonzero(k >= 0)
        k = k[p]
        ring[p] = layer["ring"].to_numpy(dtype=object)[k]
        system[p] = layer["city"].to_numpy(dtype=object)[k]
    reason = np.full(n, "", dtype=object)
    reason[located & (ring == UNCLASSIFIED)] = "outside every ring polygon"
    reason[~located] = "no location (missing or empty geometry)"
    return pd.DataFrame({"ring": ring, "ring_city": system, "reason": reason},
                        index=incubators.index)


def _ring_columns(classified: pd.DataFrame, rings: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """``ring`` and ``ring_city`` of ``classified``: its own columns, else assigned."""
    if {"ring", "ring_city"} <= set(classified.columns):
        out = classified[["ring", "ring_city"]].astype(object).copy()
        # each distinct label once: millions of rows hold a handful of labels
        codes, uniques = pd.factorize(out["ring"], use_na_sentinel=False)
        labels = np.array([normalise_ring(v) or UNCLASSIFIED for v in uniques], dtype=object)
        out["ring"] = labels[codes]
        return out
    if rings is not None and isinstance(classified, gpd.GeoDataFrame):
        return assign_ring(classified, rings)[["ring", "ring_city"]]
    raise InputError(
        "the incubators have no 'ring' / 'ring_city' columns: classify them first "
        "(incubloc.rings.assign_ring or incubloc.classify) or pass them as a GeoDataFrame "
        "with rings="
    )


# --------------------------------------------------------------------------- patterns


def ring_patterns(
    classified: pd.DataFrame,
    *,
    rings: gpd.GeoDataFrame,
    cities: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Ring pattern of every ring system: the rings that hold at least one incubator.

    Parameters
    ----------
    classified : DataFrame
        Per-incubator ``ring`` and ``ring_city`` (from :func:`assign_ring` or
        :func:`incubloc.classification.classify`); a GeoDataFrame without them is assigned
        here.
    rings : GeoDataFrame
        The ring layer; every system in it gets a row.
    cities : DataFrame, optional
        The ``cities`` layer, for the ``form`` (compact / dispersed) of prefecture
        systems. County-level systems (not in ``cities``) default to ``compact``;
        without ``cities`` a prefecture's form is ``unclassified``.

    Returns
    -------
    DataFrame
        city, prefecture, ring_pattern (one of :data:`RING_PATTERNS`, or ``"none"``
        when the system holds no incubator), n_rings (rings occupied),
        n_incubators, form, n_core, n_inner_suburb, n_outer_suburb; systems in
        layer order.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> rings = gpd.GeoDataFrame({"city": ["X", "X", "Y"], "ring": ["core", "outer_suburb", "core"]},
    ...                          geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(5, 5, 6, 6)], crs=4326)
    >>> df = pd.DataFrame({"ring": ["core", "outer_suburb"], "ring_city": ["X", "X"]})
    >>> ring_patterns(df, rings=rings)[["city", "ring_pattern", "n_incubators"]].values.tolist()
    [['X', 'core+outer_suburb', 2], ['Y', 'none', 0]]
    """
    layer = _ring_layer(rings)
    systems = _systems(layer)
    rc = _ring_columns(classified, layer)
    ok = rc["ring"].isin(RINGS) & rc["ring_city"].notna()
    tab = pd.crosstab(rc.loc[ok, "ring_city"].astype(str), rc.loc[ok, "ring"])
    tab = tab.reindex(index=systems["city"], columns=list(RINGS), fill_value=0).astype("int64")
    occupied = tab.to_numpy() > 0
    out = systems.copy()
    out["ring_pattern"] = [
        "+".join(r for r, o in zip(RINGS, row, strict=True) if o) or "none" for row in occupied
    ]
    out["n_rings"] = occupied.sum(axis=1).astype("int64")
    out["n_incubators"] = tab.sum(axis=1).to_numpy().astype("int64")
    form = pd.Series("compact", index=out.index, dtype=object)
    if cities is not None and "city" in cities.columns:
        names = cities["city"].astype(str)
        is_pref = out["city"].isin(set(names))
        if "form" in cities.columns:
            lookup = dict(zip(names, cities["form"].astype(object), strict=True))
            form[is_pref] = [
                str(lookup[c]) if pd.notna(lookup[c]) else UNCLASSIFIED
                for c in out.loc[is_pref, "city"]
            ]
        else:
            form[is_pref] = UNCLASSIFIED
    else:
        form[out["city"] == out["prefecture"]] = UNCLASSIFIED
    out["form"] = form
    for r in RINGS:
        out[f"n_{r}"] = tab[r].to_numpy()
    return out


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
    >>> rings = rings_from_distance(c, radii=(5_000, 15_000, 30_000))
    >>> df = pd.DataFrame({"ring": ["core", "core", "inner_suburb"], "ring_city": "X",
    ...                    "opened": [2005, 2007, 2012]})
    >>> t = ring_table(df, rings=rings)
    >>> t[["ring", "count", "opened_mean"]].values.tolist()
    [['core', 2, 2006.0], ['inner_suburb', 1, 2012.0], ['outer_suburb', 0, nan]]
    >>> round(float(t["area_km2"].iloc[0]), 1)  # π · 5² km²
    78.5
    """
    layer = _ring_layer(rings)
    diss = _dissolved(layer, _equal_area_crs(layer))
    out = pd.DataFrame(
        {
            "city": diss["city"].astype(str).to_numpy(),
            "prefecture": diss["prefecture"].astype(str).to_numpy(),
            "ring": diss["ring"].astype(str).to_numpy(),
            "area_km2": np.asarray(diss.geometry.area, dtype=float) / 1e6,
        }
    )
    order = pd.Categorical(out["city"], categories=_systems(layer)["city"])
    out = (
        out.assign(_c=order, _r=out["ring"].map(_RING_ORDER))
        .sort_values(["_c", "_r"], kind="stable")
        .drop(columns=["_c", "_r"])
        .reset_index(drop=True)
    )
    rc = _ring_columns(classified, layer)
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
    rx = stats.rankdata(x)
    ry = stats.rankdata(y)

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
    incubators as independent given the ring; clustering within rings makes the
    interval too narrow, which ``dispersion`` (Pearson χ² / df, df = rings − 2)
    flags when above 1. Spearman's ρ between ring order and density is kept as a
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
        spearman_rho and spearman_p (descriptive; exact permutation p over the
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
        order = np.array([_RING_ORDER[r] for r in present], dtype=float)
        if {"count", "area_km2"} <= set(g.columns) and len(present):
            counts = g["count"].reindex(present).to_numpy(float)
            areas = g["area_km2"].reindex(present).to_numpy(float)
            row["n_incubators"] = int(np.nansum(counts))
            trend = poisson_trend(np.nan_to_num(counts), areas, order)
            row.update(rate_ratio=trend.rate_ratio, rate_ratio_ci_low=trend.ci_low,
                       rate_ratio_ci_high=trend.ci_high, rate_ratio_p=trend.p,
                       dispersion=trend.dispersion)
            if trend.note:
                notes.append(f"rate ratio: {trend.note}")
        else:
            row.update(n_incubators=np.nan, rate_ratio=np.nan, rate_ratio_ci_low=np.nan,
                       rate_ratio_ci_high=np.nan, rate_ratio_p=np.nan, dispersion=np.nan)
            notes.append("the ring table lacks count / area_km2: no rate ratio")
        rho = p = np.nan
        if len(vals) < 3:
            notes.append(f"{len(vals)} ring(s) with a density: the rank correlation needs 3")
        elif np.ptp(vals) == 0:
            notes.append("the same density in every ring: the rank correlation is undefined")
        else:
            rho = float(stats.spearmanr(order, vals)[0])
            p = _exact_spearman_p(order, vals)
        row.update(spearman_rho=rho, spearman_p=p, note="; ".join(notes))
        rows.append(row)
    out = pd.DataFrame(
        rows,
        columns=["city", "n_rings", "n_incubators", *[f"density_{r}" for r in RINGS],
                 "monotone_decreasing", "rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high",
                 "rate_ratio_p", "dispersion", "spearman_rho", "spearman_p", "note"],
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
    ``column`` over incubators (``scipy.stats.spearmanr``, ties averaged, p from
    its t approximation). rho > 0: later (larger) outward.

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
    rc = _ring_columns(classified, rings)
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
        order = grp["ring"].map(_RING_ORDER).to_numpy(float)
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
            res = stats.spearmanr(order, vals)
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


def _edge_distance(xy: np.ndarray, outer: shapely.Geometry) -> np.ndarray:
    """Distance from each point to the exterior edge of ``outer`` (holes filled)."""
    polys = shapely.get_parts(outer)
    polys = polys[shapely.get_type_id(polys) == 3]
    rings = shapely.get_exterior_ring(polys)
    coords, which = shapely.get_coordinates(rings, return_index=True)
    same = which[:-1] == which[1:]
    segs = shapely.linestrings(np.stack([coords[:-1][same], coords[1:][same]], axis=1))
    tree = shapely.STRtree(segs)
    pts = shapely.points(xy)
    idx, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    out = np.full(len(xy), np.nan)
    out[idx[0]] = dist
    return out


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
    >>> rings = rings_from_distance(c, radii=(5_000, 15_000, 30_000))
    >>> angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    >>> pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(670_000 + 4_900 * np.cos(angles),
    ...                        3_548_000 + 4_900 * np.sin(angles)), crs=32650)
    >>> res = ring_edge_test(pts, rings, n_sim=99, seed=1)
    >>> res.n, bool(res.p_sim_closer < 0.05)
    (12, True)
    """
    n_sim = int(n_sim)
    if n_sim < 1:
        raise InputError(f"n_sim must be at least 1, not {n_sim}")
    layer = _ring_layer(rings)
    assigned = assign_ring(incubators, layer)
    if city is not None:
        wanted = [city] if isinstance(city, str) else list(city)
        unknown = sorted(set(wanted) - set(layer["city"]))
        if unknown:
            raise InputError(
                f"the rings layer has no ring system {unknown}; systems: "
                f"{list(_systems(layer)['city'])}"
            )
        keep_sys = set(wanted)
    else:
        keep_sys = set(layer["city"])
    tested = (assigned["ring"].isin(RINGS) & assigned["ring_city"].isin(keep_sys)).to_numpy()
    crs = metric_crs(layer)
    diss = _dissolved(layer, crs)
    note = ""
    flat = diss[np.asarray(diss.geometry.area, dtype=float) <= 0]
    if len(flat):
        # Random points cannot be drawn in a ring without area.
        bad = pd.MultiIndex.from_frame(flat[["city", "ring"]])
        in_flat = pd.MultiIndex.from_frame(assigned[["ring_city", "ring"]]).isin(bad)
        tested &= ~in_flat
        note = f"rings without area left out: {list(bad)}"
    gen = np.random.default_rng(seed)
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
    order = {c: i for i, c in enumerate(_systems(layer)["city"])}
    for sys_name, ring in sorted(groups, key=lambda k: (order[k[0]], _RING_ORDER[k[1]])):
        rows = np.flatnonzero(tested)[groups[(sys_name, ring)]]
        sys_rings = diss[diss["city"] == sys_name]
        poly = sys_rings.loc[sys_rings["ring"] == ring].geometry.iloc[0]
        inner = sys_rings[sys_rings["ring"].map(_RING_ORDER) <= _RING_ORDER[ring]]
        parts = np.asarray(inner.geometry.values, dtype=object)
        bad = ~shapely.is_valid(parts)  # reprojection can make thin parts invalid
        if bad.any():
            parts = parts.copy()
            parts[bad] = shapely.make_valid(parts[bad])
        outer = shapely.union_all(parts)
        k = len(rows)
        d_obs = _edge_distance(pts_xy[rows], outer)
        ref = _uniform_points(poly, k * blocks, gen)
        d_ref = _edge_distance(ref, outer)
        dmax = float(max(np.max(d_ref), np.max(d_obs)))
        scale = dmax if dmax > 0 else 1.0
        n_obs, n_ref = d_obs / scale, d_ref / scale
        dist_m[rows], normed[rows] = d_obs, n_obs
        sims = n_ref[: k * n_sim].reshape(n_sim, k)
        sim_sum += sims.sum(axis=1)
        ks = stats.ks_2samp(n_obs, n_ref)
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
        ks = stats.ks_2samp(obs, ref)
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
