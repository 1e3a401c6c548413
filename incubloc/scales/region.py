"""Region scale: city, province, settlement, city tier and development zone.

He & Wang (2016, section 2.1) read the regional pattern of incubators in three
ways: counts and shares by prefecture city and province (and by accreditation
level), the relation to the urban hierarchy (more incubators in higher-tier
cities), and the regional structure "one core, one belt, two zones" (一心一带两片区:
Nanjing as the core, a belt 30 km either side of the Yangtze, a northern and a
southern zone).

:func:`assign_region` gives every incubator its ``city``, ``province``,
``settlement``, ``settlement_kind``, ``tier`` and ``zone``; :func:`region_tables`,
:func:`tier_relation` and :func:`province_ratio` summarise them.

City tiers follow the State Council 2014 standard (:data:`TIERS_2014`) on the
resident population of the *settlement* an incubator lies in (a prefecture city's
central districts, a county-level city, a county); the thresholds are data and
another standard can be passed in.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from incubloc._results import Result
from incubloc.coords import metric_crs
from incubloc.errors import ConfigError, InputError, StudyAreaError
from incubloc.geometry import first_match, located_points
from incubloc.options import RegionOptions
from incubloc.stats.distributions import spearmanr
from incubloc.studyarea import StudyArea
from incubloc.vocabulary import LEVEL, TIER, UNCLASSIFIED

__all__ = [
    "DEFAULT_BELT_M",
    "LEVELS",
    "REGION_COLUMNS",
    "TIERS_2014",
    "TIER_ORDER",
    "RegionSummary",
    "Tier",
    "TierRelation",
    "assign_region",
    "province_ratio",
    "region_summary",
    "region_tables",
    "tier_from_population",
    "tier_relation",
]

log = logging.getLogger(__name__)


#: Half-width of a corridor belt when neither the layer nor the caller gives one (m).
DEFAULT_BELT_M = 30_000.0

#: Accreditation levels, highest first.
LEVELS = LEVEL.labels

#: Columns of :func:`assign_region`.
REGION_COLUMNS = ("city", "province", "settlement", "settlement_kind", "tier", "zone", "reason")


class Tier(NamedTuple):
    """One class of a city-size standard.

    ``lower`` is the inclusive lower bound in resident persons; ``None`` marks a
    class decided by the settlement's ``kind`` (a settlement whose kind equals the
    label), not by its population.
    """

    label: str
    lower: float | None
    label_zh: str = ""


#: State Council 2014 city-size standard (国发〔2014〕51号), largest first.
TIERS_2014: tuple[Tier, ...] = tuple(
    Tier(label, lower, TIER.zh[label])
    for label, lower in zip(
        TIER.labels, (10_000_000, 5_000_000, 3_000_000, 1_000_000, 500_000, 200_000, 0, None),
        strict=True,
    )
)

#: Tier labels of :data:`TIERS_2014`, largest first.
TIER_ORDER: tuple[str, ...] = tuple(t.label for t in TIERS_2014)

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}


# --------------------------------------------------------------------------- results




# --------------------------------------------------------------------------- tiers


def _tier_table(thresholds: Any) -> tuple[list[str], np.ndarray, list[str]]:
    """(labels by population ascending, their lower bounds, kind-only labels)."""
    if isinstance(thresholds, pd.DataFrame):
        label_col = next((c for c in ("label", "tier") if c in thresholds.columns), None)
        lower_col = next(
            (c for c in ("lower", "lower_bound", "lower_bound_persons") if c in thresholds.columns),
            None,
        )
        if label_col is None or lower_col is None:
            raise ConfigError(
                "a thresholds table needs the columns 'label' and 'lower' (inclusive lower "
                f"bound in persons); got {list(thresholds.columns)}"
            )
        rows = list(zip(thresholds[label_col], thresholds[lower_col], strict=True))
    elif isinstance(thresholds, Mapping):
        rows = list(thresholds.items())
    else:
        try:
            rows = [(r[0], r[1]) for r in thresholds]
        except (TypeError, IndexError) as exc:
            raise ConfigError(
                "thresholds must be a table (label, lower), a dict {label: lower} or a "
                "sequence of (label, lower) pairs"
            ) from exc
    labels = [str(r[0]) for r in rows]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"tier labels must be unique; got {labels}")
    numeric, by_kind = [], []
    for label, lower in rows:
        if lower is None or (isinstance(lower, float) and math.isnan(lower)) or lower is pd.NA:
            by_kind.append(str(label))
            continue
        try:
            value = float(lower)
        except (TypeError, ValueError):
            raise ConfigError(
                f"the lower bound of tier {label!r} is {lower!r}: give a number of persons "
                "(or None for a tier decided by settlement kind)"
            ) from None
        numeric.append((value, str(label)))
    if not numeric:
        raise ConfigError("a thresholds table needs at least one tier with a population bound")
    numeric.sort()
    bounds = np.array([b for b, _ in numeric])
    if np.any(np.diff(bounds) == 0):
        raise ConfigError(f"two tiers share a lower bound: {numeric}")
    return [lab for _, lab in numeric], bounds, by_kind


def _tier_order(thresholds: Any) -> list[str]:
    """Tier labels largest first, kind-only tiers last."""
    asc, _, by_kind = _tier_table(thresholds)
    return asc[::-1] + by_kind


def _tier_rank(thresholds: Any) -> dict[str, int]:
    """Rank of each tier by size: 1 = smallest (kind-only tiers such as town)."""
    return {label: i + 1 for i, label in enumerate(_tier_order(thresholds)[::-1])}


def tier_from_population(
    population: Any,
    *,
    thresholds: Any = TIERS_2014,
    kind: Any = None,
) -> pd.Series:
    """City tier from resident population.

    Lower bounds are inclusive: a population of exactly 5 000 000 is
    ``extra_large`` under :data:`TIERS_2014`. Missing, non-numeric or negative
    populations are ``"unclassified"``.

    Parameters
    ----------
    population : scalar, array-like or Series
        Resident persons.
    thresholds : table, dict or sequence of (label, lower)
        The standard: :data:`TIERS_2014` by default. A tier whose lower bound is
        None is decided by ``kind`` instead (``town`` for settlements of kind
        ``"town"``).
    kind : scalar, array-like or Series, optional
        Settlement kinds; where a kind equals a kind-only tier label that tier wins.

    Returns
    -------
    pandas.Series
        Named ``tier``, with the index of ``population`` when it is a Series.

    Examples
    --------
    >>> tier_from_population([12e6, 5e6, 4_999_999, 150_000, float("nan")]).tolist()
    ['super_large', 'extra_large', 'large_i', 'small_ii', 'unclassified']
    >>> tier_from_population([3000, 3000], kind=["town", "county"]).tolist()
    ['town', 'small_ii']
    >>> tier_from_population([50, 500], thresholds={"hamlet": 0, "village": 100}).tolist()
    ['hamlet', 'village']
    """
    if isinstance(population, pd.Series):
        index = population.index
        raw = population
    else:
        raw = pd.Series(np.atleast_1d(np.asarray(population, dtype=object)))
        index = raw.index
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    labels, bounds, by_kind = _tier_table(thresholds)
    ok = np.isfinite(values)
    pos = np.searchsorted(bounds, np.where(ok, values, -np.inf), side="right") - 1
    ok &= pos >= 0
    table = np.array(labels, dtype=object)
    out = np.full(len(values), UNCLASSIFIED, dtype=object)
    out[ok] = table[pos[ok]]
    if kind is not None and by_kind:
        kinds = kind.to_numpy(dtype=object) if isinstance(kind, pd.Series) else kind
        kinds = np.broadcast_to(np.asarray(kinds, dtype=object), out.shape)
        kinds = np.array([str(k).strip().lower() for k in kinds], dtype=object)
        for label in by_kind:
            out[kinds == label.lower()] = label
    return pd.Series(out, index=index, name="tier", dtype=object)


# --------------------------------------------------------------------------- helpers


def _layer(
    gdf: gpd.GeoDataFrame, name: str, required: Sequence[str]
) -> gpd.GeoDataFrame:
    """A study-area layer in EPSG:4326 with its required columns, else an error."""
    missing = [c for c in required if c not in gdf.columns]
    if missing:
        raise StudyAreaError(
            f"the study-area layer {name!r} lacks column(s) {', '.join(missing)}: "
            "see docs/architecture.md for the columns each layer needs"
        )
    if gdf.crs is None:
        raise StudyAreaError(
            f"the study-area layer {name!r} has no CRS: set one (EPSG:4326 is expected)"
        )
    if CRS.from_user_input(gdf.crs).to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    return gdf


def _pick(values: pd.Series | np.ndarray, pos: np.ndarray, hit: np.ndarray, out: np.ndarray) -> None:
    vals = np.asarray(values, dtype=object)
    out[hit] = vals[pos[hit]]


def _compose(n: int, parts: Iterable[tuple[np.ndarray, Any]]) -> np.ndarray:
    """Join reason messages per row with "; " (empty string where none)."""
    out = np.full(n, "", dtype=object)
    for mask, msg in parts:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            continue
        text = msg[mask] if isinstance(msg, np.ndarray) else np.full(mask.sum(), msg, object)
        cur = out[mask]
        out[mask] = np.where(cur == "", text, cur + "; " + text.astype(str))
    return out


def _truthy(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.fillna(0).astype(bool).to_numpy()
    return values.astype(object).map(lambda v: str(v).strip().lower() in _TRUE).to_numpy(bool)


def _settlement_tiers(settlements: gpd.GeoDataFrame | pd.DataFrame, thresholds: Any) -> pd.Series:
    """Tier of each settlement row: its ``tier`` column wins, else its population."""
    pop = (
        settlements["population"]
        if "population" in settlements.columns
        else pd.Series(np.nan, index=settlements.index)
    )
    kind = settlements["kind"] if "kind" in settlements.columns else None
    tier = tier_from_population(pop, thresholds=thresholds, kind=kind)
    if "tier" in settlements.columns:
        given = settlements["tier"].astype(object)
        blank = given.isna() | (given.astype(str).str.strip() == "")
        tier = tier.where(blank, given.astype(str).str.strip())
    return tier


def _has_city_tiers(cities: pd.DataFrame) -> bool:
    """Whether the cities layer can stand in for settlements (it has tier or population)."""
    return bool({"tier", "population"} & set(cities.columns))


def _core_cities(cities: gpd.GeoDataFrame, core_city: str | None) -> set[str]:
    names = cities["city"].astype(str)
    if core_city is not None:
        if core_city not in set(names):
            raise ConfigError(
                f"core_city {core_city!r} is not a city of the 'cities' layer; choose one of "
                f"{sorted(set(names))}"
            )
        return {core_city}
    if "core" in cities.columns:
        return set(names[_truthy(cities["core"])])
    return set()


def _belt_widths(corridors: gpd.GeoDataFrame, corridor_buffer_m: float | None) -> np.ndarray:
    n = len(corridors)
    if corridor_buffer_m is not None:
        width = float(corridor_buffer_m)
        if not (math.isfinite(width) and width > 0):
            raise ConfigError(
                f"corridor_buffer_m must be a positive number of metres, not {corridor_buffer_m!r}"
            )
        return np.full(n, width)
    if "buffer_m" in corridors.columns:
        widths = pd.to_numeric(corridors["buffer_m"], errors="coerce").to_numpy(float)
        return np.where(np.isfinite(widths) & (widths > 0), widths, DEFAULT_BELT_M)
    return np.full(n, DEFAULT_BELT_M)


def _in_belt(
    points: np.ndarray,
    located: np.ndarray,
    corridors: gpd.GeoDataFrame,
    widths: np.ndarray,
    crs: CRS,
) -> np.ndarray:
    out = np.zeros(len(points), dtype=bool)
    if not located.any():
        return out
    pts = np.asarray(gpd.GeoSeries(points[located], crs=4326).to_crs(crs).values, dtype=object)
    lines = np.asarray(corridors.to_crs(crs).geometry.values, dtype=object)
    hit = np.zeros(len(pts), dtype=bool)
    # One vectorised distance per corridor feature; there are few features.
    for line, width in zip(lines, widths, strict=True):
        if line is None or shapely.is_empty(line):
            continue
        hit |= shapely.distance(pts, line) <= width
    out[located] = hit
    return out


# --------------------------------------------------------------------------- assign


def assign_region(
    incubators: gpd.GeoDataFrame,
    study_area: StudyArea,
    *,
    core_city: str | None = None,
    corridor_buffer_m: float | None = None,
    thresholds: Any = TIERS_2014,
) -> pd.DataFrame:
    """City, province, settlement, tier and zone of every incubator.

    Point-in-polygon tests use ``intersects``, so a point exactly on the boundary
    shared by two polygons still gets one; it gets exactly one because the first
    polygon of the layer (lowest position) wins. The same rule applies to
    settlements and named zones.

    Zones follow the precedence ``core`` > ``belt`` > named zone > ``other``:

    * ``core``: in the core city (``core_city``, else the city flagged ``core`` in
      the ``cities`` layer);
    * ``belt``: within the belt half-width of a ``corridors`` line, measured in
      the local UTM zone (half-width: ``corridor_buffer_m``, else the feature's
      ``buffer_m``, else :data:`DEFAULT_BELT_M` = 30 km);
    * the ``zone`` label of the first ``zones`` polygon containing the point;
    * ``other``.

    Missing layers never raise. Without ``cities``, city, province and zone are
    ``"unclassified"`` (the zone scale needs the city); without ``settlements``, the
    city is the settlement (kind ``city``) and its tier comes from the ``cities``
    layer's ``tier`` or ``population`` column; when that layer has neither, settlement,
    settlement kind and tier are ``"unclassified"``. A missing ``corridors`` or ``zones``
    layer only removes that step of the zone precedence, and the reason says it
    was not tested.

    Parameters
    ----------
    incubators : GeoDataFrame
        Incubator points with a CRS.
    study_area : StudyArea
        Layers ``cities``, ``settlements``, ``corridors``, ``zones`` (any may be absent).
    core_city : str, optional
        Name of the core city; overrides the ``core`` flag of the ``cities`` layer.
    corridor_buffer_m : float, optional
        Belt half-width in metres for every corridor.
    thresholds : table, dict or sequence of (label, lower)
        City-size standard for tiers (default :data:`TIERS_2014`).

    Returns
    -------
    DataFrame
        Indexed like ``incubators``, columns :data:`REGION_COLUMNS`. ``reason`` is
        empty where everything was decided.

    Raises
    ------
    StudyAreaError
        If a present layer lacks a required column or a CRS.
    ConfigError
        If ``core_city`` is not a city of the ``cities`` layer or the buffer is not positive.

    Examples
    --------
    >>> from shapely.geometry import Point, box
    >>> cities = gpd.GeoDataFrame({"city": ["A", "B"], "province": ["P", "Q"], "core": [True, False]},
    ...                           geometry=[box(118, 32, 119, 33), box(119, 32, 120, 33)], crs=4326)
    >>> inc = gpd.GeoDataFrame({"id": ["x", "y", "z"]}, crs=4326,
    ...                        geometry=[Point(118.5, 32.5), Point(119.5, 32.5), Point(121, 32)])
    >>> r = assign_region(inc, StudyArea({"cities": cities}))
    >>> r[["city", "province", "zone"]].values.tolist()
    [['A', 'P', 'core'], ['B', 'Q', 'other'], ['unclassified', 'unclassified', 'unclassified']]
    >>> r.loc[2, "reason"]
    'outside the study area (no city polygon contains it)'
    """
    if not isinstance(study_area, StudyArea):
        raise InputError("study_area must be a StudyArea: load it with incubloc.load_study_area")
    pts, located = located_points(incubators)
    n = len(pts)
    cols = {c: np.full(n, UNCLASSIFIED, dtype=object) for c in REGION_COLUMNS[:-1]}
    reasons: list[tuple[np.ndarray, Any]] = [
        (~located, "no location (missing or empty geometry)")
    ]

    cities = study_area.get("cities")
    city_pos = np.full(n, -1)
    if cities is None:
        inside = located.copy()
        reasons.append((located, "no cities layer in the study area"))
    else:
        cities = _layer(cities, "cities", ("city", "province"))
        pos = city_pos = first_match(pts, np.asarray(cities.geometry.values, dtype=object))
        inside = pos >= 0
        _pick(cities["city"], pos, inside, cols["city"])
        _pick(cities["province"], pos, inside, cols["province"])
        reasons.append(
            (located & ~inside, "outside the study area (no city polygon contains it)")
        )

    settlements = study_area.get("settlements")
    if settlements is None and cities is not None and _has_city_tiers(cities):
        # No settlements layer: the city is the settlement, its tier from the cities layer.
        _pick(cities["city"].astype(str), city_pos, inside, cols["settlement"])
        cols["settlement_kind"][inside] = "city"
        _pick(_settlement_tiers(cities.drop(columns="kind", errors="ignore"), thresholds),
              city_pos, inside, cols["tier"])
        no_tier = inside & (cols["tier"] == UNCLASSIFIED)
        msg = np.array([f"city {c!r} has no usable population or tier in the cities layer"
                        for c in cols["city"]], dtype=object)
        reasons.append((no_tier, msg))
    elif settlements is None:
        reasons.append((inside, "no settlements layer in the study area"))
    else:
        settlements = _layer(settlements, "settlements", ("settlement", "city", "kind"))
        pos = first_match(pts, np.asarray(settlements.geometry.values, dtype=object))
        hit = (pos >= 0) & inside
        _pick(settlements["settlement"], pos, hit, cols["settlement"])
        _pick(settlements["kind"], pos, hit, cols["settlement_kind"])
        _pick(_settlement_tiers(settlements, thresholds), pos, hit, cols["tier"])
        reasons.append((inside & ~hit, "in no settlement polygon"))
        no_tier = hit & (cols["tier"] == UNCLASSIFIED)
        msg = np.array(
            [f"settlement {s!r} has no usable population or tier" for s in cols["settlement"]],
            dtype=object,
        )
        reasons.append((no_tier, msg))

    if cities is not None:
        core = _core_cities(cities, core_city)
        is_core = inside & np.isin(cols["city"].astype(str), list(core))
        if not core:
            log.info("no core city: flag one in the cities layer (core=True) or pass core_city")
        rest = inside & ~is_core
        corridors = study_area.get("corridors")
        if corridors is None:
            belt = np.zeros(n, dtype=bool)
            reasons.append((rest, "belt not tested: no corridors layer in the study area"))
        else:
            corridors = _layer(corridors, "corridors", ())
            crs = metric_crs(cities)
            belt = _in_belt(pts, rest, corridors, _belt_widths(corridors, corridor_buffer_m), crs)
        zones = study_area.get("zones")
        named = np.full(n, UNCLASSIFIED, dtype=object)
        if zones is None:
            has_zone = np.zeros(n, dtype=bool)
            reasons.append(
                (rest & ~belt, "named zones not tested: no zones layer in the study area")
            )
        else:
            zones = _layer(zones, "zones", ("zone",))
            pos = first_match(pts, np.asarray(zones.geometry.values, dtype=object))
            has_zone = (pos >= 0) & rest
            _pick(zones["zone"].astype(str), pos, has_zone, named)
        zone = np.select(
            [is_core, belt, has_zone, inside],
            [np.full(n, "core", object), np.full(n, "belt", object), named,
             np.full(n, "other", object)],
            default=UNCLASSIFIED,
        )
        cols["zone"] = zone.astype(object)

    out = pd.DataFrame(cols, index=incubators.index)
    out["reason"] = _compose(n, reasons)
    return out


# --------------------------------------------------------------------------- tables


def _labels(classified: pd.DataFrame, col: str) -> pd.Series:
    if col not in classified.columns:
        return pd.Series(UNCLASSIFIED, index=classified.index, dtype=object)
    s = classified[col].astype(object)
    return s.where(s.notna(), UNCLASSIFIED).astype(str)


def _count_table(
    values: pd.Series,
    name: str,
    *,
    categories: Sequence[str] = (),
    order: str = "count",
) -> pd.DataFrame:
    """Counts and shares of ``values``, with every category in ``categories``.

    ``order="count"``: by count descending, ties in the order of ``categories``
    then first appearance; ``order="given"``: ``categories`` first in their order,
    then other values by count. ``unclassified`` always comes last.
    """
    counts = values.value_counts(sort=False)
    seen = list(dict.fromkeys([*categories, *values.tolist()]))
    known = [c for c in seen if c != UNCLASSIFIED]
    tab = pd.DataFrame({name: known})
    tab["count"] = [int(counts.get(c, 0)) for c in known]
    if order == "count":
        tab = tab.sort_values("count", ascending=False, kind="stable")
    else:
        listed = set(categories)
        first = tab[tab[name].isin(listed)]
        extra = tab[~tab[name].isin(listed)].sort_values("count", ascending=False, kind="stable")
        tab = pd.concat([first, extra])
    if counts.get(UNCLASSIFIED, 0):
        tab = pd.concat(
            [tab, pd.DataFrame({name: [UNCLASSIFIED], "count": [int(counts[UNCLASSIFIED])]})]
        )
    total = len(values)
    tab["count"] = tab["count"].astype("int64")
    tab["share"] = tab["count"] / total if total else np.nan
    return tab.reset_index(drop=True)


def _study_lists(study_area: StudyArea | None, thresholds: Any) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {k: [] for k in ("city", "province", "settlement", "tier", "zone")}
    if study_area is None:
        return lists
    cities = study_area.get("cities")
    if cities is not None and "city" in cities.columns:
        lists["city"] = list(dict.fromkeys(cities["city"].astype(str)))
        if "province" in cities.columns:
            lists["province"] = list(dict.fromkeys(cities["province"].astype(str)))
        if _core_cities(cities, None) or "core" in cities.columns:
            lists["zone"].append("core")
    if study_area.has("corridors"):
        lists["zone"].append("belt")
    zones = study_area.get("zones")
    if zones is not None and "zone" in zones.columns:
        lists["zone"] += list(dict.fromkeys(zones["zone"].astype(str)))
    if cities is not None:
        lists["zone"].append("other")
    settlements = study_area.get("settlements")
    if settlements is None and cities is not None and "city" in cities.columns \
            and _has_city_tiers(cities):
        settlements = cities.drop(columns="kind", errors="ignore").assign(
            settlement=cities["city"].astype(str))
    if settlements is not None and "settlement" in settlements.columns:
        lists["settlement"] = list(dict.fromkeys(settlements["settlement"].astype(str)))
        present = set(_settlement_tiers(settlements, thresholds))
        lists["tier"] = [t for t in _tier_order(thresholds) if t in present]
    return lists


def region_tables(
    classified: pd.DataFrame,
    *,
    study_area: StudyArea | None = None,
    thresholds: Any = TIERS_2014,
) -> dict[str, pd.DataFrame]:
    """Counts and shares of incubators by province, city, settlement, tier, level and zone.

    Parameters
    ----------
    classified : DataFrame
        Per-incubator classes, e.g. the output of :func:`assign_region` joined with a
        ``level`` column (or :func:`incubloc.classification.classify`'s ``incubators``).
        Missing columns count as ``unclassified``.
    study_area : StudyArea, optional
        When given, every city, province, settlement, tier (among the settlements)
        and zone of the study area appears, with 0 where it holds no incubator.
    thresholds : table, dict or sequence of (label, lower)
        The tier standard, for the order of tiers (default :data:`TIERS_2014`).

    Returns
    -------
    dict of str to DataFrame
        ``province``, ``city``, ``settlement``: columns <key>, count, share, sorted by
        count (ties in study-area order); ``settlement`` also carries ``city`` and
        ``tier`` when known. ``tier``: tiers largest first. ``level``: national,
        provincial, municipal. ``zone``: core, belt, named zones, other.
        ``city_level``: city × level counts with ``total`` and ``share``. ``share``
        is the share of all incubators (so each table's shares sum to 1);
        ``unclassified`` rows come last and only when non-zero.

    Examples
    --------
    >>> df = pd.DataFrame({"city": ["A", "A", "B"], "level": ["national", "省级", None]})
    >>> t = region_tables(df)
    >>> t["city"].values.tolist()
    [['A', 2, 0.6666666666666666], ['B', 1, 0.3333333333333333]]
    >>> t["level"]["count"].tolist()
    [1, 1, 0, 1]
    """
    lists = _study_lists(study_area, thresholds)
    tier_order = _tier_order(thresholds)
    out: dict[str, pd.DataFrame] = {}
    out["province"] = _count_table(
        _labels(classified, "province"), "province", categories=lists["province"]
    )
    city = _labels(classified, "city")
    out["city"] = _count_table(city, "city", categories=lists["city"])
    sett = _count_table(
        _labels(classified, "settlement"), "settlement", categories=lists["settlement"]
    )
    info = _settlement_info(classified, study_area, thresholds)
    if info is not None:
        sett = sett.merge(info, on="settlement", how="left")[
            ["settlement", "city", "tier", "count", "share"]
        ]
    out["settlement"] = sett
    tiers = _labels(classified, "tier")
    present_tiers = [t for t in tier_order if t in set(tiers) or t in lists["tier"]]
    out["tier"] = _count_table(tiers, "tier", categories=present_tiers, order="given")
    level = (
        LEVEL.classes(classified["level"])
        if "level" in classified.columns
        else pd.Series(UNCLASSIFIED, index=classified.index, dtype=object)
    )
    out["level"] = _count_table(level, "level", categories=LEVELS, order="given")
    zone_cats = lists["zone"] or ["core", "belt"]
    zones = _labels(classified, "zone")
    if "other" in zone_cats:
        zone_cats = [z for z in zone_cats if z != "other"]
    extra = sorted(set(zones) - set(zone_cats) - {"other", UNCLASSIFIED})
    zone_cats = [*zone_cats, *extra, "other"]
    out["zone"] = _count_table(zones, "zone", categories=zone_cats, order="given")
    cities = out["city"]["city"].tolist()
    tab = pd.crosstab(city, level).reindex(index=cities, fill_value=0)
    lev_cols = list(LEVELS) + ([UNCLASSIFIED] if (level == UNCLASSIFIED).any() else [])
    tab = tab.reindex(columns=lev_cols, fill_value=0).astype("int64")
    tab.columns.name = None
    tab["total"] = tab.sum(axis=1)
    tab["share"] = tab["total"] / len(classified) if len(classified) else np.nan
    out["city_level"] = tab.rename_axis("city").reset_index()
    return out


def _settlement_info(
    classified: pd.DataFrame, study_area: StudyArea | None, thresholds: Any
) -> pd.DataFrame | None:
    """settlement → city, tier: from the study area, else from the classified rows."""
    frames = []
    if study_area is not None and study_area.has("settlements"):
        s = study_area.get("settlements")
        if {"settlement", "city"} <= set(s.columns):
            frames.append(
                pd.DataFrame(
                    {
                        "settlement": s["settlement"].astype(str).to_numpy(),
                        "city": s["city"].astype(str).to_numpy(),
                        "tier": _settlement_tiers(s, thresholds).to_numpy(),
                    }
                )
            )
    if {"settlement", "city", "tier"} <= set(classified.columns):
        frames.append(
            pd.DataFrame(
                {
                    "settlement": _labels(classified, "settlement").to_numpy(),
                    "city": _labels(classified, "city").to_numpy(),
                    "tier": _labels(classified, "tier").to_numpy(),
                }
            )
        )
    if not frames:
        return None
    info = pd.concat(frames, ignore_index=True)
    info = info[info["settlement"] != UNCLASSIFIED]
    return info.drop_duplicates("settlement").astype(object)


@dataclasses.dataclass
class TierRelation(Result):
    """Incubators per settlement against the settlement's tier.

    Attributes
    ----------
    rho, p_t : float
        Spearman rank correlation (:func:`incubloc.stats.distributions.spearmanr`)
        between tier rank (1 = smallest tier) and the number of incubators, over
        settlements with a tier, including those with none; NaN when undefined (see
        ``note``).
    n_settlements : int
        Settlements in the correlation.
    n_incubators : int
        Incubators in those settlements.
    note : str
        Why rho is NaN, or empty.
    table : DataFrame
        Per settlement: settlement, city, kind, population, tier, tier_rank, count.
    by_tier : DataFrame
        Per tier (largest first): n_settlements, n_incubators, mean_per_settlement.
    """

    rho: float
    p_t: float
    n_settlements: int
    n_incubators: int
    note: str
    table: pd.DataFrame
    by_tier: pd.DataFrame


def tier_relation(
    classified: pd.DataFrame,
    *,
    study_area: StudyArea,
    thresholds: Any = TIERS_2014,
) -> TierRelation:
    """Do higher-tier settlements hold more incubators? (Spearman over settlements.)

    Parameters
    ----------
    classified : DataFrame
        Per-incubator ``settlement`` (and ``city``) columns, as from :func:`assign_region`.
    study_area : StudyArea
        Must hold a ``settlements`` layer: every settlement counts, with 0 where it
        has no incubator.
    thresholds : table, dict or sequence of (label, lower)
        The tier standard (default :data:`TIERS_2014`).

    Returns
    -------
    TierRelation

    Raises
    ------
    MissingLayerError
        If the study area has no ``settlements`` layer.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> s = gpd.GeoDataFrame({"settlement": ["A", "B", "C"], "city": ["A", "A", "C"],
    ...                       "kind": ["central_districts", "county", "county"],
    ...                       "population": [6e6, 8e5, 1e5]},
    ...                      geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)], crs=4326)
    >>> df = pd.DataFrame({"settlement": ["A", "A", "A", "B"], "city": ["A", "A", "A", "A"]})
    >>> r = tier_relation(df, study_area=StudyArea({"settlements": s}))
    >>> r.table["count"].tolist(), round(r.rho, 3)
    ([3, 1, 0], 1.0)
    """
    settlements = study_area.require("settlements", "the tier relation")
    settlements = _layer(settlements, "settlements", ("settlement", "city", "kind"))
    table = pd.DataFrame(
        {
            "settlement": settlements["settlement"].astype(str).to_numpy(),
            "city": settlements["city"].astype(str).to_numpy(),
            "kind": settlements["kind"].astype(str).to_numpy(),
            "population": pd.to_numeric(
                settlements.get("population", pd.Series(np.nan, index=settlements.index)),
                errors="coerce",
            ).to_numpy(float),
            "tier": _settlement_tiers(settlements, thresholds).to_numpy(),
        }
    ).drop_duplicates(["settlement", "city"])
    rank = _tier_rank(thresholds)
    table["tier_rank"] = table["tier"].map(rank).astype("Float64")
    sett = _labels(classified, "settlement")
    if "city" in classified.columns:
        key = pd.MultiIndex.from_arrays([sett, _labels(classified, "city")])
        counts = pd.Series(1, index=key).groupby(level=[0, 1]).sum()
        table["count"] = [
            int(counts.get((s, c), 0)) for s, c in zip(table["settlement"], table["city"], strict=True)
        ]
    else:
        counts = sett.value_counts()
        table["count"] = [int(counts.get(s, 0)) for s in table["settlement"]]
    table["count"] = table["count"].astype("int64")
    table = table.reset_index(drop=True)
    used = table[table["tier_rank"].notna()]
    x = used["tier_rank"].to_numpy(float)
    y = used["count"].to_numpy(float)
    rho = p_t = float("nan")
    note = ""
    if len(used) < 3:
        note = f"only {len(used)} settlements with a tier: at least 3 are needed"
    elif np.ptp(x) == 0 or np.ptp(y) == 0:
        note = "tier or count is the same for every settlement: the correlation is undefined"
    else:
        res = spearmanr(x, y)
        rho, p_t = float(res[0]), float(res[1])
    order = [t for t in _tier_order(thresholds) if t in set(table["tier"])]
    if UNCLASSIFIED in set(table["tier"]):
        order.append(UNCLASSIFIED)
    by_tier = (
        table.groupby("tier", sort=False)
        .agg(n_settlements=("settlement", "size"), n_incubators=("count", "sum"))
        .reindex(order)
    )
    by_tier["mean_per_settlement"] = by_tier["n_incubators"] / by_tier["n_settlements"]
    by_tier = by_tier.rename_axis("tier").reset_index()
    return TierRelation(
        rho=rho,
        p_t=p_t,
        n_settlements=int(len(used)),
        n_incubators=int(used["count"].sum()),
        note=note,
        table=table,
        by_tier=by_tier,
    )


def province_ratio(
    classified: pd.DataFrame,
    *,
    numerator: str = RegionOptions.province_ratio[0],
    denominator: str = RegionOptions.province_ratio[1],
) -> float:
    """Incubators in province ``numerator`` per incubator in ``denominator``.

    The paper reports 3.6 for Jiangsu's four cities against Anhui's four.

    Returns
    -------
    float
        ``inf`` when the denominator province has none and the numerator some; NaN
        when both have none.

    Examples
    --------
    >>> province_ratio(pd.DataFrame({"province": ["Jiangsu"] * 9 + ["Anhui"] * 2}))
    4.5
    """
    prov = _labels(classified, "province")
    num = int((prov == numerator).sum())
    den = int((prov == denominator).sum())
    if den == 0:
        return float("inf") if num else float("nan")
    return num / den


@dataclasses.dataclass
class RegionSummary(Result):
    """The region-scale tables and statistics in one object.

    Attributes
    ----------
    n : int
        Incubators.
    province_ratio : dict
        ``numerator``, ``denominator``, their counts and ``ratio``.
    shares : dict
        Share of incubators per category, by table (province, city, tier, level, zone).
    tier_relation : TierRelation or None
        None without a settlements layer.
    tables : dict of str to DataFrame
        :func:`region_tables`.
    """

    _private = ("tables",)

    n: int
    province_ratio: dict[str, Any]
    shares: dict[str, dict[str, float]]
    tier_relation: TierRelation | None
    tables: dict[str, pd.DataFrame]

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["tier_relation"] = None if self.tier_relation is None else self.tier_relation.to_dict()
        return out


def region_summary(
    classified: pd.DataFrame,
    *,
    study_area: StudyArea | None = None,
    numerator: str = RegionOptions.province_ratio[0],
    denominator: str = RegionOptions.province_ratio[1],
    thresholds: Any = TIERS_2014,
) -> RegionSummary:
    """Tables, province ratio and tier relation of the region scale.

    Examples
    --------
    >>> df = pd.DataFrame({"province": ["Jiangsu", "Jiangsu", "Anhui"], "city": ["A", "B", "C"]})
    >>> s = region_summary(df)
    >>> s.to_dict()["province_ratio"]["ratio"]
    2.0
    """
    tables = region_tables(classified, study_area=study_area, thresholds=thresholds)
    prov = _labels(classified, "province")
    ratio = {
        "numerator": numerator,
        "denominator": denominator,
        "n_numerator": int((prov == numerator).sum()),
        "n_denominator": int((prov == denominator).sum()),
        "ratio": province_ratio(classified, numerator=numerator, denominator=denominator),
    }
    shares = {
        key: dict(zip(tables[key][key].astype(str), tables[key]["share"].astype(float), strict=True))
        for key in ("province", "city", "tier", "level", "zone")
    }
    relation = None
    if study_area is not None and study_area.has("settlements"):
        relation = tier_relation(classified, study_area=study_area, thresholds=thresholds)
    return RegionSummary(
        n=int(len(classified)),
        province_ratio=ratio,
        shares=shares,
        tier_relation=relation,
        tables=tables,
    )
