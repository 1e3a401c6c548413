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
(:func:`rings_from_polygons`). Then :func:`assign_ring` places incubators and
:func:`ring_patterns` classifies each city; the ring statistics (ring table,
density gradient, opening sequence, ring-edge test) are in
:mod:`incubloc.stats.rings`.

Areas (ring areas, densities) are computed in a Lambert azimuthal equal-area
projection centred on the ring layer; distances in the local UTM zone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from incubloc.coords import to_metric
from incubloc.errors import CoordinateError, InputError, StudyAreaError
from incubloc.geometry import best_match, located_points, match_pairs
from incubloc.vocabulary import RING, UNCLASSIFIED

__all__ = [
    "RINGS",
    "RING_LABELS_ZH",
    "RING_ORDER",
    "RING_PATTERNS",
    "assign_ring",
    "dissolved_rings",
    "equal_area_crs",
    "normalise_ring",
    "ring_columns",
    "ring_layer",
    "ring_pattern",
    "ring_patterns",
    "ring_systems",
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

RING_ORDER = {r: i + 1 for i, r in enumerate(RINGS)}

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


def equal_area_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
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
            {c: pd.Series(dtype=object) for c in _RING_COLUMNS[:-1]}, geometry=[], crs=4326
        )
    df = pd.DataFrame(records)
    df["_city"] = pd.Categorical(df["city"], categories=list(dict.fromkeys(df["city"])))
    df["_ring"] = df["ring"].map(RING_ORDER)
    df = df.sort_values(["_city", "_ring"])  # a sort on several keys is stable
    gdf = gpd.GeoDataFrame(
        df[_RING_COLUMNS[:-1]].astype(object).reset_index(drop=True),
        geometry=list(df["geometry"]),
        crs=crs,
    )
    empty = gdf.geometry.is_empty.to_numpy()
    if empty.any():
        log.info("dropped %d empty rings", int(empty.sum()))
        gdf = gdf.loc[~empty].reset_index(drop=True)
    return gdf.to_crs(4326)


def ring_layer(rings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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
    out = rings.to_crs(4326)  # a copy, also when already in EPSG:4326
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
    keep = ~(out.geometry.isna() | out.geometry.is_empty)
    return out.loc[keep].reset_index(drop=True)


def ring_systems(rings: gpd.GeoDataFrame) -> pd.DataFrame:
    """One row per ring system of a ring layer: ``city`` and ``prefecture``."""
    return rings.drop_duplicates("city")[["city", "prefecture"]].reset_index(drop=True)


def dissolved_rings(rings: gpd.GeoDataFrame, crs: Any = None) -> gpd.GeoDataFrame:
    """One polygon per (city, ring), in ``crs`` (default that of ``rings``)."""
    src = rings if crs is None else rings.to_crs(crs)
    rows = []
    for (city, ring), grp in src.groupby(["city", "ring"], sort=False):
        geoms = grp.geometry.values
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
    geoms = districts.geometry.values
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
        return centres[value].set_axis(centres["city"].astype(str)).to_dict()
    if isinstance(value, pd.Series | Mapping):
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
        return shapely.union_all(sel.geometry.values)
    return shapely.union_all(clip_m.geometry.values)


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
    geoms = metric.geometry.values
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
        # core, inner_suburb, outer_suburb (the order of RINGS)
        parts = [core, shapely.difference(inner, core), shapely.difference(outer_area, inner)]
        if boundary is not None:
            parts[0] = shapely.intersection(core, boundary)
            parts[1] = shapely.intersection(parts[1], boundary)
        prefecture = (
            str(metric["prefecture"].iloc[i])
            if "prefecture" in metric.columns and pd.notna(metric["prefecture"].iloc[i])
            else city
        )
        for j, geom in enumerate(parts):
            records.append(
                {"city": city, "prefecture": prefecture, "ring": RINGS[j], "method": "distance",
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
    layer = ring_layer(renamed)
    method = layer["method"].astype(object) if "method" in layer.columns else None
    records = []
    for city, grp in layer.groupby("city", sort=False):
        inner_union = None
        for ring in RINGS:
            sel = grp[grp["ring"] == ring]
            if not len(sel):
                continue
            geom = shapely.union_all(sel.geometry.values)
            full = geom
            if nested and inner_union is not None:
                geom = shapely.difference(geom, inner_union)
            if nested:
                inner_union = full if inner_union is None else shapely.union(inner_union, full)
            m = method.loc[sel.index].dropna() if method is not None else ()
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
    layer = ring_layer(rings)
    pts, located = located_points(incubators)
    n = len(pts)
    ring = np.full(n, UNCLASSIFIED, dtype=object)
    system = np.full(n, None)
    polys = layer.geometry.to_numpy()
    if len(polys) and located.any():
        area = layer.geometry.to_crs(equal_area_crs(layer)).area.to_numpy()
        ip, it = match_pairs(pts, polys)
        codes = pd.factorize(layer["city"])[0]
        # The system of the smallest polygon holding the point; in it the innermost ring
        # (polygons of one ring of one system give the same answer: no tie-break needed).
        smallest = best_match(ip, it, n, area[it])
        same = codes[it] == codes[smallest[ip]]
        order = layer["ring"].map(RING_ORDER).to_numpy()
        k = best_match(ip[same], it[same], n, order[it[same]])
        p = np.flatnonzero(k >= 0)
        k = k[p]
        ring[p] = layer["ring"].to_numpy()[k]
        system[p] = layer["city"].to_numpy()[k]
    reason = np.full(n, "", dtype=object)
    reason[located & (ring == UNCLASSIFIED)] = "outside every ring polygon"
    reason[~located] = "no location (missing or empty geometry)"
    return pd.DataFrame({"ring": ring, "ring_city": system, "reason": reason},
                        index=incubators.index)


def ring_columns(classified: pd.DataFrame, rings: gpd.GeoDataFrame | None) -> pd.DataFrame:
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
        "(incubloc.scales.rings.assign_ring or incubloc.classify) or pass them as a GeoDataFrame "
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
    layer = ring_layer(rings)
    systems = ring_systems(layer)
    rc = ring_columns(classified, layer)
    # "unclassified" rows fall out with the reindex to the three rings below
    ok = rc["ring_city"].notna()
    tab = pd.crosstab(rc.loc[ok, "ring_city"].astype(str), rc.loc[ok, "ring"])
    tab = tab.reindex(index=systems["city"], columns=list(RINGS), fill_value=0).astype("int64")
    occupied = tab.to_numpy() > 0
    out = systems.copy()
    out["ring_pattern"] = [
        "+".join(RINGS[j] for j in np.flatnonzero(row)) or "none" for row in occupied
    ]
    out["n_rings"] = occupied.sum(axis=1).astype("int64")
    out["n_incubators"] = tab.sum(axis=1).to_numpy().astype("int64")
    form = pd.Series("compact", index=out.index, dtype=object)
    if cities is not None and "city" in cities.columns:
        names = cities["city"].astype(str)
        is_pref = out["city"].isin(set(names))
        if "form" in cities.columns:
            lookup = cities["form"].set_axis(names).to_dict()
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
