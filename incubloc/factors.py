"""Why incubators locate where they do: a location-factor model on areal units.

The source study describes *where* incubators are; this module asks *why*, with the
spatial version of the survey regressions of the maker-town literature (seed 000:
factor groups, OLS with robust errors, a decomposition of R² into each group's
contribution). One call, :func:`location_factors`, runs the whole chain:

1. **Units** (:func:`build_units`): administrative units of the study area
   (``districts`` / 区县, ``townships`` / 街道 where a layer holds them) or a grid clipped to
   land (``grid:SIZE`` in metres).
2. **Response** (:func:`count_incubators`): incubators per unit, all of them or one
   class (``level=national``, ``relation=park_in_park`` …), with the unit's land area
   (km²) as exposure.
3. **Covariates** (:func:`covariates`): distances from each unit's point to the
   nearest business centre, knowledge centre, development zone and station, counts of
   universities and research institutes within a radius, the share of the unit inside
   development zones, ring, city tier and population density. :data:`COVARIATES`
   documents each (definition, unit, source layer, factor group).
4. **Models** (:func:`fit_models`): Poisson and negative-binomial GLMs with a log-area
   offset and sandwich (HC0) errors (statsmodels); OLS on log density with spreg's
   spatial diagnostics (Moran's I of residuals, LM-lag / LM-error and their robust
   forms) and, when they call for it, a spatial error or lag model (spreg ML); GWR
   (mgwr) when there are enough units.
5. **Decomposition** (:func:`decompose`): each factor group's share of the explained
   variation (Shapley–Owen decomposition of OLS R² or Poisson deviance explained) with
   seeded bootstrap intervals.

The estimators are statsmodels', spreg's and mgwr's, called on the design matrix
this module builds (install them with ``pip install "incubloc[factors]"``). What
each model assumes and when not to use it: ``docs/factors.md``.

Examples
--------
>>> from incubloc.datasets import load_example
>>> ex = load_example("nanjing")
>>> res = location_factors(ex.incubators, ex.study_area, n_boot=9, gwr=False, seed=1)
>>> len(res.units), sorted(set(res.decomposition["group"]))[:2]
(58, ['business_centres', 'development_zones'])
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from incubloc._results import Result, jsonable
from incubloc.errors import ConfigError, InputError
from incubloc.studyarea import StudyArea

__all__ = [
    "COVARIATES",
    "FACTOR_GROUPS",
    "Covariate",
    "FactorResult",
    "build_units",
    "count_incubators",
    "covariates",
    "check_design",
    "decompose",
    "factors_from_config",
    "fit_models",
    "location_factors",
    "poisson_deviance",
    "shapley_values",
    "stations_from_osm",
    "spatial_weights",
    "vif",
    "write_factors",
]

log = logging.getLogger(__name__)

_EXTRA = 'pip install "incubloc[factors]"'

#: Host kinds that are knowledge spaces and production spaces (development zones).
KNOWLEDGE_KINDS = ("university", "research")
PRODUCTION_KINDS = ("development_zone", "high_tech_zone", "industrial_park", "science_park")


@dataclasses.dataclass(frozen=True)
class Covariate:
    """What a covariate measures (the documentation table of every run)."""

    name: str
    group: str
    definition: str
    unit: str
    source: str


#: Every covariate :func:`covariates` can build, in model order.
COVARIATES: tuple[Covariate, ...] = (
    Covariate("dist_business", "business_centres",
              "distance from the unit's point to the nearest business centre (商务中心)",
              "km", "centres (kind = business)"),
    Covariate("dist_knowledge", "knowledge_centres",
              "distance from the unit's point to the nearest knowledge centre (智力中心)",
              "km", "centres (kind = knowledge)"),
    Covariate("n_knowledge_hosts", "knowledge_centres",
              "number of universities and research institutes within the radius of the "
              "unit's point", "count", "hosts (kind = university, research)"),
    Covariate("dist_devzone", "development_zones",
              "distance from the unit's point to the nearest development zone or host park "
              "(0 inside one)", "km",
              "hosts (kind = development_zone, high_tech_zone, industrial_park, science_park)"),
    Covariate("devzone_share", "development_zones",
              "share of the unit's land inside development zones and host parks", "% of land",
              "hosts (kind = development_zone, high_tech_zone, industrial_park, science_park)"),
    Covariate("dist_station", "transport",
              "distance from the unit's point to the nearest rail / metro station", "km",
              "stations (points), or OpenStreetMap railway=station"),
    Covariate("ring_inner_suburb", "urban_structure",
              "1 when the unit's point lies in an inner-suburb ring (近郊区), else 0 "
              "(reference: core)", "indicator", "rings"),
    Covariate("ring_outer_suburb", "urban_structure",
              "1 when the unit's point lies in an outer-suburb ring (远郊区) or in no ring, else 0 "
              "(reference: core)", "indicator", "rings"),
    Covariate("tier_rank", "urban_structure",
              "size rank of the settlement's city tier (State Council 2014 standard; 1 = town "
              "… 8 = super-large city)", "rank", "settlements (population, kind)"),
    Covariate("log_pop_density", "population",
              "natural log of the resident population per km² of the settlement the unit's "
              "point lies in", "ln(persons/km²)", "settlements (population)"),
)
_BY_NAME = {c.name: c for c in COVARIATES}

#: Factor groups in report order (the effect decomposition works on these).
FACTOR_GROUPS: tuple[str, ...] = tuple(dict.fromkeys(c.group for c in COVARIATES))


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"incubloc.factors needs {module.split('.')[0]}: {_EXTRA}"
        ) from exc


# ------------------------------------------------------------------------------ units


def _extra_layer(sa: StudyArea, name: str) -> gpd.GeoDataFrame | None:
    """A layer the study-area loader does not know (townships, stations), read on demand."""
    if sa.layers.get(name) is not None and len(sa.layers[name]):
        return sa.layers[name]
    if not sa.path or not Path(sa.path).is_file():
        return None
    import pyogrio
    from pyogrio.errors import DataSourceError

    try:
        present = {row[0] for row in pyogrio.list_layers(sa.path)}
    except (OSError, DataSourceError):  # not a file GDAL can list: treat as absent
        return None
    if name not in present:
        return None
    gdf = gpd.read_file(sa.path, layer=name)
    if gdf.crs is None:
        raise InputError(f"layer {name!r} of {sa.path} has no CRS: set one (e.g. EPSG:4326)")
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    return gdf if len(gdf) else None


def _metric_crs(sa: StudyArea, crs: Any) -> Any:
    from pyproj import CRS

    from incubloc.coords import metric_crs

    if crs is not None:
        out = CRS.from_user_input(crs)
        if not out.is_projected:
            raise ConfigError(f"analysis CRS {out.to_string()} is not projected: give one in metres")
        return out
    ref = next((sa.get(n) for n in ("cities", "districts", "settlements") if sa.has(n)), None)
    if ref is None:
        raise InputError("the study area has no cities, districts or settlements layer to place units in")
    return metric_crs(ref)


def build_units(
    study_area: StudyArea,
    *,
    units: str | gpd.GeoDataFrame = "districts",
    crs: Any = None,
    min_land_fraction: float = 0.25,
) -> gpd.GeoDataFrame:
    """Areal units for the model: administrative units or a land-clipped grid.

    Parameters
    ----------
    study_area : StudyArea
    units : str or GeoDataFrame
        ``"districts"`` (区县 layer), ``"townships"`` (街道 / 乡镇, a ``townships`` layer of
        the GeoPackage), ``"grid:SIZE"`` (square cells of SIZE metres clipped to the
        ``cities`` layer), or polygons of your own.
    crs : CRS-like, optional
        Metric CRS (default: the local UTM zone).
    min_land_fraction : float
        Grid cells with less land than this share of a full cell are left out (their
        exposure is too small for a stable rate).

    Returns
    -------
    GeoDataFrame
        ``unit`` (name), ``city`` (when known) and the polygon, in the metric CRS,
        index 0..n−1. ``attrs["units"]`` names the kind.

    Examples
    --------
    >>> from incubloc.datasets import load_example
    >>> sa = load_example("nanjing").study_area
    >>> len(build_units(sa, units="districts")), len(build_units(sa, units="grid:50000")) > 10
    (58, True)
    """
    metric = _metric_crs(study_area, crs)
    if isinstance(units, gpd.GeoDataFrame):
        if units.crs is None:
            raise InputError("the units have no CRS: set one (e.g. .set_crs(4326))")
        gdf = units.to_crs(metric).reset_index(drop=True)
        name = next((c for c in ("unit", "name", "district", "township") if c in gdf), None)
        out = gpd.GeoDataFrame({"unit": gdf[name].astype(str) if name else
                                [f"unit_{i}" for i in range(len(gdf))]},
                               geometry=gdf.geometry.values, crs=metric)
        if "city" in gdf:
            out["city"] = gdf["city"].to_numpy()
        kind = "user"
    elif not isinstance(units, str):
        raise ConfigError(f"units must be 'districts', 'townships', 'grid:SIZE' or polygons, not {units!r}")
    elif units.startswith("grid:"):
        try:
            size = float(units.split(":", 1)[1])
        except ValueError:
            size = float("nan")
        if not size > 0:
            raise ConfigError(f"units {units!r}: give the cell size in metres, e.g. grid:10000")
        from incubloc.stats.autocorrelation import make_grid

        land = study_area.require("cities", "a land-clipped grid")
        grid = make_grid(land, cell_size=size, crs=metric, min_fraction=min_land_fraction)
        out = gpd.GeoDataFrame({"unit": [f"cell_{i}" for i in grid["cell_id"]]},
                               geometry=grid.geometry.values, crs=metric)
        kind = f"grid of {size:g} m cells"
    elif units in ("districts", "townships"):
        layer = (study_area.require("districts", "factor units 'districts'") if units == "districts"
                 else _extra_layer(study_area, "townships"))
        if layer is None:
            raise InputError(
                f"units 'townships' need a 'townships' polygon layer in {study_area.path}: add one "
                "(columns township, city) or use --units districts or grid:SIZE"
            )
        gdf = layer.to_crs(metric).reset_index(drop=True)
        col = "district" if units == "districts" else next(
            (c for c in ("township", "name") if c in gdf), None)
        out = gpd.GeoDataFrame({"unit": gdf[col].astype(str) if col else
                                [f"township_{i}" for i in range(len(gdf))]},
                               geometry=gdf.geometry.values, crs=metric)
        if "city" in gdf:
            out["city"] = gdf["city"].astype(str).to_numpy()
        kind = units
    else:
        raise ConfigError(f"unknown units {units!r}: use districts, townships or grid:SIZE (metres)")
    out = out[~(out.geometry.isna() | out.geometry.is_empty)].reset_index(drop=True)
    out.attrs["units"] = kind
    return out


def count_incubators(
    incubators: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    response: str = "count",
) -> pd.DataFrame:
    """Incubators per unit and the unit's land area (the exposure).

    Parameters
    ----------
    incubators : GeoDataFrame
        Points (any CRS).
    units : GeoDataFrame
        From :func:`build_units`.
    response : str
        ``"count"`` for all incubators, or ``"COLUMN=VALUE"`` (``level=national``,
        ``relation=park_in_park``, ``layout=building``) for one class.

    Returns
    -------
    DataFrame
        ``count`` and ``area_km2`` (equal-area), index of ``units``.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame({"unit": ["a", "b"]}, geometry=[box(0, 0, 1000, 1000),
    ...                          box(1000, 0, 2000, 1000)], crs=32650)
    >>> pts = gpd.GeoDataFrame({"level": ["national", "municipal", "national"]},
    ...                        geometry=gpd.points_from_xy([10, 20, 1500], [10, 10, 10]), crs=32650)
    >>> count_incubators(pts, units, response="level=national")["count"].tolist()
    [1, 1]
    """
    from incubloc.stats.autocorrelation import aggregate

    pts = incubators
    if response != "count":
        col, sep, value = response.partition("=")
        if not sep or not col or not value:
            raise ConfigError(f"response {response!r}: use 'count' or COLUMN=VALUE, e.g. level=national")
        if col not in incubators:
            raise ConfigError(
                f"response {response!r}: the incubators have no column {col!r} (classify them "
                "first for relation / layout / ring)"
            )
        pts = incubators[incubators[col].astype(str) == value]
    agg = aggregate(pts, units[["geometry"]], value="count")
    return pd.DataFrame({"count": agg["count"].to_numpy(np.int64),
                         "area_km2": agg["area_km2"].to_numpy(float)}, index=units.index)


# ------------------------------------------------------------------------------ covariates


def _unit_points(units: gpd.GeoDataFrame, point: str, population: gpd.GeoDataFrame | None) -> gpd.GeoSeries:
    if point == "centroid":
        return units.geometry.centroid
    if point == "representative":
        return units.geometry.representative_point()
    if point == "population":
        if population is None or "population" not in population:
            raise ConfigError("point = 'population' needs a 'population' point layer with a "
                              "'population' column: add it or use point = 'centroid'")
        pop = population.to_crs(units.crs)
        pop = pop[pop.geometry.geom_type == "Point"]
        idx = units.sindex.query(pop.geometry.values, predicate="within")
        wgt = pd.to_numeric(pop["population"], errors="coerce").to_numpy(float)[idx[0]]
        x, y = pop.geometry.x.to_numpy()[idx[0]], pop.geometry.y.to_numpy()[idx[0]]
        ok = np.isfinite(wgt) & (wgt > 0)
        n = len(units)
        sw = np.bincount(idx[1][ok], wgt[ok], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            px = np.bincount(idx[1][ok], wgt[ok] * x[ok], minlength=n) / sw
            py = np.bincount(idx[1][ok], wgt[ok] * y[ok], minlength=n) / sw
        cent = units.geometry.centroid
        px = np.where(sw > 0, px, cent.x)
        py = np.where(sw > 0, py, cent.y)
        return gpd.GeoSeries(gpd.points_from_xy(px, py), index=units.index, crs=units.crs)
    raise ConfigError(f"point {point!r}: use centroid, representative or population")


def _nearest_km(points: gpd.GeoSeries, targets: gpd.GeoDataFrame) -> np.ndarray:
    tgt = targets.to_crs(points.crs).geometry.reset_index(drop=True)
    idx, dist = tgt.sindex.nearest(points.values, return_all=False, return_distance=True)
    out = np.full(len(points), np.nan)
    out[idx[0]] = dist
    return out / 1000.0


#: OpenStreetMap tags of the stations behind ``dist_station``.
STATION_TAGS: dict[str, list[str]] = {"railway": ["station", "halt"],
                                      "public_transport": ["station"]}


def stations_from_osm(
    *,
    osm_file: str | os.PathLike | None = None,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> gpd.GeoDataFrame:
    """Rail and metro stations from OpenStreetMap (osmnx), as points in EPSG:4326.

    Offline from an OSM XML extract (``osm_file``) or online by ``place`` name or
    ``bbox`` (west, south, east, north); features tagged :data:`STATION_TAGS`.
    Stations mapped as areas become their centroids.

    Examples
    --------
    >>> import tempfile, os
    >>> osm = os.path.join(tempfile.mkdtemp(), "s.osm")
    >>> _ = open(osm, "w", encoding="utf-8").write(
    ...     '<osm version="0.6"><node id="1" lat="32.0" lon="118.8" version="1">'
    ...     '<tag k="railway" v="station"/></node></osm>')
    >>> stations_from_osm(osm_file=osm).geometry.x.tolist()
    [118.8]
    """
    import osmnx as ox

    given = [v is not None for v in (osm_file, place, bbox)]
    if sum(given) != 1:
        raise ConfigError("give exactly one of osm_file, place or bbox for the stations")
    try:
        if osm_file is not None:
            if not Path(osm_file).is_file():
                raise InputError(f"OSM file {osm_file} does not exist")
            raw = ox.features.features_from_xml(osm_file, tags=STATION_TAGS)
        elif place is not None:
            raw = ox.features.features_from_place(place, STATION_TAGS)
        else:
            raw = ox.features.features_from_bbox(bbox, STATION_TAGS)
    except InputError:
        raise
    except Exception as exc:  # osmnx raises several unrelated types on empty or bad input
        raise InputError(f"no stations read from OpenStreetMap ({osm_file or place or bbox}): "
                         f"{exc}") from None
    geom = raw.geometry.to_crs(4326)
    pts = gpd.GeoSeries(np.where(geom.geom_type == "Point", geom.values,
                                 geom.representative_point().values), crs=4326)
    names = raw["name"].to_numpy() if "name" in raw else np.full(len(raw), None)
    out = gpd.GeoDataFrame({"name": names}, geometry=pts.values, crs=4326)
    log.info("OpenStreetMap stations: %d", len(out))
    return out


def covariates(
    units: gpd.GeoDataFrame,
    study_area: StudyArea,
    *,
    point: str = "centroid",
    radius_m: float = 10_000.0,
    stations: gpd.GeoDataFrame | None = None,
    include: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Build the covariates of :data:`COVARIATES` for each unit.

    A covariate whose source layer is missing is skipped with a reason; nothing fails
    for a missing layer.

    Parameters
    ----------
    units : GeoDataFrame
        From :func:`build_units` (metric CRS).
    study_area : StudyArea
    point : {"centroid", "representative", "population"}
        The unit's point for distances: its centroid, a point surely inside it, or the
        population-weighted mean of a ``population`` point layer (centroid where the
        unit holds no population point).
    radius_m : float
        Radius for ``n_knowledge_hosts``.
    stations : GeoDataFrame, optional
        Station points (default: the study area's ``stations`` layer, if any).
    include : sequence of str, optional
        Build only these covariates (default all).

    Returns
    -------
    (DataFrame, dict)
        The covariates (index of ``units``) and ``{name: reason}`` for those skipped.

    Examples
    --------
    >>> from incubloc.datasets import load_example
    >>> sa = load_example("nanjing").study_area
    >>> X, skipped = covariates(build_units(sa), sa)
    >>> "dist_business" in X, "dist_station" in skipped
    (True, True)
    """
    wanted = list(include) if include is not None else [c.name for c in COVARIATES]
    unknown = [n for n in wanted if n not in _BY_NAME]
    if unknown:
        raise ConfigError(f"unknown covariate(s) {', '.join(unknown)}; known: {', '.join(_BY_NAME)}")
    crs = units.crs
    pts = _unit_points(units, point, _extra_layer(study_area, "population"))
    X: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}

    centres = study_area.get("centres")
    for name, kind in (("dist_business", "business"), ("dist_knowledge", "knowledge")):
        if name not in wanted:
            continue
        sel = None if centres is None else centres[centres["kind"].astype(str) == kind]
        if sel is None or not len(sel):
            skipped[name] = f"the study area has no centres of kind {kind!r}"
        else:
            X[name] = _nearest_km(pts, sel)

    hosts = study_area.get("hosts")
    kinds = hosts["kind"].astype(str) if hosts is not None else pd.Series(dtype=str)
    if "n_knowledge_hosts" in wanted:
        know = None if hosts is None else hosts[kinds.isin(KNOWLEDGE_KINDS)]
        if know is None or not len(know):
            skipped["n_knowledge_hosts"] = "the study area has no hosts of kind university or research"
        else:
            tree = know.to_crs(crs).geometry.reset_index(drop=True)
            hit = tree.sindex.query(pts.values, predicate="dwithin", distance=float(radius_m))
            X["n_knowledge_hosts"] = np.bincount(hit[0], minlength=len(units)).astype(float)
    prod = None if hosts is None else hosts[kinds.isin(PRODUCTION_KINDS)]
    for name in ("dist_devzone", "devzone_share"):
        if name not in wanted:
            continue
        if prod is None or not len(prod):
            skipped[name] = "the study area has no development-zone or host-park hosts"
        elif name == "dist_devzone":
            X[name] = _nearest_km(pts, prod)
        else:
            zone = shapely.union_all(prod.to_crs(crs).geometry.values)
            geoms = units.geometry.values
            inter = shapely.area(shapely.intersection(geoms, zone))
            X[name] = 100.0 * np.clip(inter / shapely.area(geoms), 0.0, 1.0)

    if "dist_station" in wanted:
        st = stations if stations is not None else _extra_layer(study_area, "stations")
        if st is None or not len(st):
            skipped["dist_station"] = ("no stations: the study area has no 'stations' layer and "
                                       "no OpenStreetMap extract was given (--osm-file)")
        else:
            X["dist_station"] = _nearest_km(pts, st)

    rings = study_area.get("rings")
    ring_names = [n for n in ("ring_inner_suburb", "ring_outer_suburb") if n in wanted]
    if ring_names:
        if rings is None:
            for n in ring_names:
                skipped[n] = "the study area has no rings layer"
        else:
            from incubloc.scales.rings import normalise_ring

            rg = rings.to_crs(crs).reset_index(drop=True)
            hit = rg.sindex.query(pts.values, predicate="within")
            label = np.full(len(units), "outer_suburb", dtype=object)  # in no ring: beyond them
            order = np.argsort(hit[0], kind="stable")
            first = pd.Series(hit[1][order]).groupby(hit[0][order]).first()
            lab = np.array([normalise_ring(v) for v in rg["ring"]], dtype=object)
            label[first.index.to_numpy()] = lab[first.to_numpy()]
            for n in ring_names:
                X[n] = (label == n.removeprefix("ring_")).astype(float)

    settlements = study_area.get("settlements")
    pop_names = [n for n in ("tier_rank", "log_pop_density") if n in wanted]
    if pop_names:
        pop = (None if settlements is None or "population" not in settlements
               else pd.to_numeric(settlements["population"], errors="coerce"))
        if pop is None or not np.isfinite(pop).any():
            for n in pop_names:
                skipped[n] = "the study area has no settlements layer with a population column"
        else:
            from incubloc.scales.region import TIER_ORDER, tier_from_population

            se = settlements.to_crs(crs).reset_index(drop=True)
            idx, _ = se.geometry.sindex.nearest(pts.values, return_all=False, return_distance=True)
            which = np.full(len(units), -1)
            which[idx[0]] = idx[1]
            if "tier_rank" in wanted:
                tiers = tier_from_population(pop.reset_index(drop=True),
                                             kind=se["kind"] if "kind" in se else None)
                rank = {t: len(TIER_ORDER) - i for i, t in enumerate(TIER_ORDER)}
                X["tier_rank"] = tiers.map(rank).to_numpy(float)[which]
            if "log_pop_density" in wanted:
                area = se.geometry.area.to_numpy() / 1e6
                with np.errstate(divide="ignore", invalid="ignore"):
                    dens = np.log(pop.reset_index(drop=True).to_numpy(float) / area)
                X["log_pop_density"] = dens[which]
    frame = pd.DataFrame({n: X[n] for n in wanted if n in X}, index=units.index)
    bad = [c for c in frame if not np.isfinite(frame[c]).all()]
    for c in bad:
        skipped[c] = "not defined for every unit (missing source values)"
    return frame.drop(columns=bad), skipped


_build_covariates = covariates  # location_factors has an argument of the same name


# ------------------------------------------------------------------------------ design


def _standardise(X: pd.DataFrame) -> pd.DataFrame:
    """z-scores with the population standard deviation (as mgwr's examples use)."""
    return (X - X.mean()) / X.std(ddof=0)


def check_design(X: pd.DataFrame, *, min_df: int = 10) -> tuple[pd.DataFrame, dict[str, str]]:
    """Drop constant covariates; refuse too few units or a singular design.

    Parameters
    ----------
    X : DataFrame
        Covariates, one row per unit (no intercept column).
    min_df : int
        Residual degrees of freedom required: units − covariates − 1 ≥ ``min_df``.

    Returns
    -------
    (DataFrame, dict)
        The covariates kept and ``{name: reason}`` for those dropped.

    Raises
    ------
    InputError
        Too few units for the covariates, or covariates that are exact linear
        combinations of one another (the message names them).

    Examples
    --------
    >>> X = pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "b": [2.0, 4, 6, 8, 10]})
    >>> check_design(X, min_df=1)
    Traceback (most recent call last):
    ...
    incubloc.errors.InputError: singular design: covariates a, b are collinear ...
    """
    dropped: dict[str, str] = {}
    vals = X.to_numpy(float)
    scale = np.maximum(1.0, np.abs(vals).max(axis=0)) if len(X) else np.ones(X.shape[1])
    const = [c for c, sd, s in zip(X.columns, vals.std(axis=0), scale, strict=True)
             if not sd > 1e-10 * s]
    for c in const:
        dropped[c] = "constant over the units: no variation to estimate its effect from"
    X = X.drop(columns=const)
    n, k = X.shape
    if n - k - 1 < min_df:
        raise InputError(
            f"too few units for the covariates: {n} units for {k} covariates and an intercept "
            f"leave {n - k - 1} residual degrees of freedom, fewer than {min_df} ([factors] "
            "min_df): use smaller units (--units grid:SIZE or townships) or fewer covariates "
            "([factors] covariates)"
        )
    A = np.column_stack([np.ones(n), X.to_numpy(float)])
    A = A / np.linalg.norm(A, axis=0)
    _, s, vt = np.linalg.svd(A, full_matrices=False)
    if s[-1] < 1e-8 * s[0]:
        names = ["intercept", *X.columns]
        involved = [names[i] for i in np.flatnonzero(np.abs(vt[-1]) > 1e-6)]
        raise InputError(
            f"singular design: covariates {', '.join(involved)} are collinear (one is a linear "
            "combination of the others on these units): drop one of them with [factors] "
            "covariates, or use other units"
        )
    return X, dropped


def vif(X: pd.DataFrame) -> pd.Series:
    """Variance inflation factors (statsmodels, design with an intercept).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    >>> bool((vif(X) < 2).all())
    True
    """
    oi = _need("statsmodels.stats.outliers_influence")
    A = np.column_stack([np.ones(len(X)), X.to_numpy(float)])
    return pd.Series([oi.variance_inflation_factor(A, i + 1) for i in range(X.shape[1])],
                     index=X.columns, name="vif")


def spatial_weights(units: gpd.GeoDataFrame) -> Any:
    """Queen contiguity, islands joined to their nearest unit, row-standardised (libpysal).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> u = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(5, 5, 6, 6)],
    ...                      crs=32650)
    >>> w = spatial_weights(u)
    >>> w.n, [int(j) for j in w.neighbors[2]], w.transform
    (3, [1], 'R')
    """
    import warnings

    from libpysal import weights as lpw

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands are handled below
        w = lpw.Queen.from_dataframe(units, use_index=False, silence_warnings=True)
        if w.islands:
            pts = np.column_stack([units.geometry.centroid.x, units.geometry.centroid.y])
            knn = lpw.KNN(pts, k=1)
            w = lpw.w_union(w, knn, silence_warnings=True)
    w.transform = "r"
    return w


# ------------------------------------------------------------------------------ models


def _rows(model: str, names: Sequence[str], est, se, stat, p, *, crit: float, ratio: bool,
          sd: pd.Series | None, stat_name: str = "z") -> pd.DataFrame:
    est, se = np.asarray(est, float).ravel(), np.asarray(se, float).ravel()
    df = pd.DataFrame({
        "model": model, "term": list(names),
        "group": [_BY_NAME[n].group if n in _BY_NAME else "" for n in names],
        "estimate": est, "robust_se": se, "stat": np.asarray(stat, float).ravel(),
        "stat_kind": stat_name, "p": np.asarray(p, float).ravel(),
        "ci_low": est - crit * se, "ci_high": est + crit * se,
    })
    df["irr"] = np.exp(est) if ratio else np.nan
    df.loc[df["term"].isin(["intercept", "alpha", "lambda", "rho"]), "irr"] = np.nan
    df["std_estimate"] = [e * sd[n] if sd is not None and n in sd else np.nan
                          for e, n in zip(est, names, strict=True)]
    return df


def _spatial_choice(diag: Mapping[str, Any], alpha: float) -> str:
    """Anselin's (2005) decision rule over the LM tests."""
    lag, err = diag["lm_lag_p"] < alpha, diag["lm_error_p"] < alpha
    if not lag and not err:
        return "none"
    if lag != err:
        return "lag" if lag else "error"
    return "lag" if diag["rlm_lag_p"] < diag["rlm_error_p"] else "error"


def fit_models(
    data: pd.DataFrame,
    *,
    covariates: Sequence[str],
    response: str = "count",
    exposure: str = "area_km2",
    w: Any = None,
    coords: np.ndarray | None = None,
    ols_zero: float = 0.5,
    ols_robust: str = "HC3",
    alpha: float = 0.05,
    spatial: str = "auto",
    gwr: bool = True,
    gwr_min_units: int = 50,
    models: Sequence[str] = ("poisson", "negbin", "ols"),
    local_model: str = "gwr",
) -> dict[str, Any]:
    """Fit the count models, OLS with spatial diagnostics, a spatial model and GWR.

    Parameters
    ----------
    data : DataFrame
        One row per unit: the count, the exposure and the covariates.
    covariates : sequence of str
        Columns of ``data`` (checked with :func:`check_design` first).
    response, exposure : str
        Count column and exposure column (km²; enters as a log offset).
    w : libpysal W, optional
        Spatial weights for the diagnostics and spatial models (none: skipped).
    coords : array (n, 2), optional
        Unit points in metres for GWR (none: skipped).
    ols_zero : float
        OLS response is ``log((count + ols_zero) / exposure)``: the constant keeps
        empty units in the model.
    ols_robust : str
        statsmodels covariance type of the OLS table (HC0–HC3).
    alpha : float
        Level of the LM tests that choose the spatial model, and of GWR's local tests.
    spatial : {"auto", "error", "lag", "none"}
        ``auto`` follows the LM tests (Anselin's rule).
    gwr : bool
        Fit GWR (adaptive bisquare kernel, AICc bandwidth) when there are at least
        ``gwr_min_units`` units and 40 + 2 per parameter + 10 (mgwr's bandwidth
        search starts at 40 + 2 per parameter neighbours).
    local_model : {"gwr", "mgwr"}
        GWR (one bandwidth) or multiscale GWR (one bandwidth per covariate, by
        back-fitting; slower, and the response is standardised too).
    models : sequence of str
        Which of the global models to fit (``ols`` is needed for the spatial
        diagnostics and GWR, which work on its response).

    Returns
    -------
    dict
        ``coefficients``, ``fit``, ``diagnostics``, ``gwr``, ``local`` (per-unit
        residuals and GWR estimates) and ``models`` (the fitted objects).
    """
    sm = _need("statsmodels.api")
    names = list(covariates)
    X = data[names].astype(float)
    y = data[response].to_numpy(float)
    expo = data[exposure].to_numpy(float)
    if not (expo > 0).all():
        raise InputError(f"every unit needs a positive exposure ({exposure}); "
                         f"{int((~(expo > 0)).sum())} units have none")
    off = np.log(expo)
    n, k = X.shape
    A = sm.add_constant(X.to_numpy(float), has_constant="add")
    terms = ["intercept", *names]
    sd = X.std(ddof=0)
    z975 = 1.959963984540054
    coef, fit, local = [], [], pd.DataFrame(index=data.index)
    wanted = set(models)
    unknown = wanted - {"poisson", "negbin", "ols"}
    if unknown:
        raise ConfigError(f"unknown model(s) {', '.join(sorted(unknown))}: use poisson, negbin, ols")
    models = {}
    import warnings

    if wanted & {"poisson", "negbin"}:
        pois = sm.GLM(y, A, family=sm.families.Poisson(), offset=off).fit(cov_type="HC0")
    if "poisson" in wanted:
        models["poisson"] = pois
        coef.append(_rows("poisson", terms, pois.params, pois.bse, pois.tvalues, pois.pvalues,
                          crit=z975, ratio=True, sd=sd))
        dev_expl = 1.0 - pois.deviance / pois.null_deviance
        fit.append({"model": "poisson", "n": n, "k": k, "loglik": pois.llf, "aic": pois.aic,
                    "deviance": pois.deviance, "fit_measure": "deviance explained",
                    "fit_value": dev_expl, "dispersion": pois.pearson_chi2 / pois.df_resid,
                    "cov_type": "HC0"})
        local["resid_poisson_pearson"] = np.asarray(pois.resid_pearson)

    if "negbin" in wanted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; recorded below
            nbm = sm.NegativeBinomial(y, A, offset=off, loglike_method="nb2")
            nb = nbm.fit(disp=0, maxiter=500, cov_type="HC0",
                         start_params=np.append(pois.params, 0.1))
        models["negbin"] = nb
        converged = bool(nb.mle_retvals.get("converged", True))
        coef.append(_rows("negbin", [*terms, "alpha"], nb.params, nb.bse, nb.tvalues,
                          nb.pvalues, crit=z975, ratio=True, sd=sd))
        fit.append({"model": "negbin", "n": n, "k": k, "loglik": nb.llf, "aic": nb.aic,
                    "deviance": np.nan, "fit_measure": "McFadden pseudo R²",
                    "fit_value": nb.prsquared, "dispersion": float(nb.params[-1]),
                    "cov_type": "HC0", "converged": converged})

    ly = np.log((y + ols_zero) / expo)
    local["log_density"] = ly
    if "ols" not in wanted:
        return {"coefficients": pd.concat(coef, ignore_index=True), "fit": pd.DataFrame(fit),
                "diagnostics": {}, "gwr": {"fitted": False, "reason": "OLS not fitted"},
                "local": local, "models": models}
    ols = sm.OLS(ly, A).fit(cov_type=ols_robust)
    models["ols"] = ols
    coef.append(_rows("ols", terms, ols.params, ols.bse, ols.tvalues, ols.pvalues, crit=z975,
                      ratio=False, sd=sd / ly.std(ddof=0)))
    fit.append({"model": "ols", "n": n, "k": k, "loglik": ols.llf, "aic": ols.aic,
                "deviance": np.nan, "fit_measure": "R²", "fit_value": ols.rsquared,
                "dispersion": ols.scale, "cov_type": ols_robust})
    local["resid_ols"] = ly - ols.fittedvalues

    diag: dict[str, Any] = {}
    if w is not None:
        spreg = _need("spreg")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # spreg's pandas deprecation notices
            so = spreg.OLS(ly.reshape(-1, 1), X.to_numpy(float), w=w, spat_diag=True,
                           moran=True, name_x=names, name_y="log_density")
        models["spreg_ols"] = so
        diag = {
            "moran_res_I": so.moran_res[0], "moran_res_z": so.moran_res[1],
            "moran_res_p": so.moran_res[2],
            "lm_lag": so.lm_lag[0], "lm_lag_p": so.lm_lag[1],
            "lm_error": so.lm_error[0], "lm_error_p": so.lm_error[1],
            "rlm_lag": so.rlm_lag[0], "rlm_lag_p": so.rlm_lag[1],
            "rlm_error": so.rlm_error[0], "rlm_error_p": so.rlm_error[1],
            "lm_sarma": so.lm_sarma[0], "lm_sarma_p": so.lm_sarma[1],
            "weights": "queen contiguity, islands joined to their nearest unit, row-standardised",
            "mean_neighbours": float(w.mean_neighbors),
        }
        choice = _spatial_choice(diag, alpha) if spatial == "auto" else spatial
        diag["spatial_model"] = choice
        diag["rule"] = ("auto: no spatial model unless an LM test rejects at α; if one does, "
                        "its model; if both, the one with the smaller robust-LM p (Anselin 2005)"
                        if spatial == "auto" else f"set by configuration ({spatial})")
        if choice in ("error", "lag"):
            method = "full" if n <= 1000 else "LU"
            cls = spreg.ML_Error if choice == "error" else spreg.ML_Lag
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # spreg prints and warns on its optimiser
                sp = cls(ly.reshape(-1, 1), X.to_numpy(float), w=w, method=method, name_x=names,
                         name_y="log_density")
            models["spatial"] = sp
            par = "lambda" if choice == "error" else "rho"
            zs = np.array([z for z, _ in sp.z_stat])
            ps = np.array([p for _, p in sp.z_stat])
            coef.append(_rows(f"spatial_{choice}", [*terms, par], sp.betas, sp.std_err, zs, ps,
                              crit=z975, ratio=False, sd=None))
            fit.append({"model": f"spatial_{choice}", "n": n, "k": k, "loglik": sp.logll,
                        "aic": sp.aic, "deviance": np.nan, "fit_measure": "pseudo R²",
                        "fit_value": sp.pr2, "dispersion": sp.sig2, "cov_type": "ML (asymptotic)"})
            diag[par] = float(sp.lam if choice == "error" else sp.rho)
            local[f"resid_spatial_{choice}"] = np.asarray(sp.u).ravel()

    gwr_info: dict[str, Any] = {"fitted": False}
    # mgwr searches adaptive bandwidths from 40 + 2p neighbours up to n: below that
    # there is no local model to choose, only the global one.
    need = max(int(gwr_min_units), 40 + 2 * (k + 1) + 10)
    gwr_info["threshold"] = (f"GWR runs with at least {need} units: max({gwr_min_units}, "
                             "40 + 2 per parameter + 10), as mgwr's bandwidth search starts "
                             "at 40 + 2 per parameter neighbours")
    if not gwr:
        gwr_info["reason"] = "switched off ([factors] gwr = false)"
    elif coords is None:
        gwr_info["reason"] = "no unit coordinates"
    elif n < need:
        gwr_info["reason"] = f"{n} units, fewer than {need}"
    else:
        if local_model not in ("gwr", "mgwr"):
            raise ConfigError(f"local model {local_model!r}: use 'gwr' or 'mgwr'")
        sel = _need("mgwr.sel_bw")
        gw = _need("mgwr.gwr")
        Xz = _standardise(X).to_numpy(float)
        yy = ly.reshape(-1, 1)
        if local_model == "gwr":
            bw = sel.Sel_BW(coords, yy, Xz, n_jobs=1).search(criterion="AICc")
            res = gw.GWR(coords, yy, Xz, bw, n_jobs=1).fit()
            bws = {"bandwidth_neighbours": float(bw), "adj_alpha": float(res.adj_alpha[1]),
                   "response": "log density (OLS response), covariates standardised"}
        else:
            yy = (yy - yy.mean()) / yy.std()
            with contextlib.redirect_stderr(io.StringIO()):  # mgwr's progress bars
                selector = sel.Sel_BW(coords, yy, Xz, multi=True, n_jobs=1)
                selector.search()
                res = gw.MGWR(coords, yy, Xz, selector, n_jobs=1).fit()
            bws = {"bandwidths_neighbours": dict(zip(terms, map(float, selector.bw[0]),
                                                     strict=True)),
                   "adj_alpha": dict(zip(terms, map(float, res.adj_alpha_j[:, 1]), strict=True)),
                   "response": "log density (OLS response) and covariates standardised"}
        models[local_model] = res
        tf = res.filter_tvals(alpha=alpha)
        for j, t in enumerate(terms):
            local[f"gwr_{t}"] = res.params[:, j]
            local[f"gwr_t_{t}"] = tf[:, j]
        gwr_info.update({
            "fitted": True, "model": local_model, **bws, "aicc": float(res.aicc),
            "r2": float(res.R2), "kernel": "adaptive bisquare",
            "n_significant": {t: int((tf[:, j] != 0).sum()) for j, t in enumerate(terms)},
        })
    return {"coefficients": pd.concat(coef, ignore_index=True), "fit": pd.DataFrame(fit),
            "diagnostics": diag, "gwr": gwr_info, "local": local, "models": models}


# ------------------------------------------------------------------------------ decomposition


def shapley_values(values: np.ndarray, n_groups: int) -> np.ndarray:
    """Shapley values of ``n_groups`` players from the value of every coalition.

    Parameters
    ----------
    values : array (..., 2**n_groups)
        ``values[..., mask]`` is the value (R², deviance explained) of the model with the
        groups whose bits are set in ``mask``; ``values[..., 0]`` is the empty model.
    n_groups : int

    Returns
    -------
    array (..., n_groups)
        φ_g = Σ_{S ∌ g} |S|! (G − |S| − 1)! / G! · (v(S ∪ {g}) − v(S)); they sum to
        v(all) − v(∅).

    Examples
    --------
    >>> v = np.array([0.0, 0.2, 0.3, 0.6])  # {}, {0}, {1}, {0, 1}
    >>> shapley_values(v, 2).round(6).tolist()
    [0.25, 0.35]
    """
    G = int(n_groups)
    values = np.asarray(values, float)
    masks = np.arange(2**G)
    size = np.array([bin(m).count("1") for m in masks])
    fact = np.array([math.factorial(i) for i in range(G + 1)], float)
    out = np.empty((*values.shape[:-1], G))
    for g in range(G):
        m = masks[(masks >> g) & 1 == 0]
        wgt = fact[size[m]] * fact[G - size[m] - 1] / fact[G]
        out[..., g] = ((values[..., m | (1 << g)] - values[..., m]) * wgt).sum(axis=-1)
    return out


def _r2(y: np.ndarray, A: np.ndarray) -> float:
    beta = np.linalg.lstsq(A, y, rcond=None)[0]
    resid = y - A @ beta
    tss = ((y - y.mean()) ** 2).sum()
    return float(1.0 - (resid @ resid) / tss) if tss > 0 else np.nan


def poisson_deviance(y: np.ndarray, A: np.ndarray, offset: np.ndarray, *, maxiter: int = 100,
                     tol: float = 1e-12) -> float:
    """Deviance of a Poisson GLM with log link and offset, by iteratively reweighted LS.

    A small solver of its own for the thousands of fits of the bootstrapped Shapley
    decomposition; ``tests/test_factors.py`` checks it against statsmodels.

    Examples
    --------
    >>> y = np.array([0.0, 1, 3, 2]); A = np.ones((4, 1)); off = np.zeros(4)
    >>> round(poisson_deviance(y, A, off), 6)  # intercept only: mu = mean(y)
    4.498681
    """
    from scipy.special import xlogy

    mu = (y + y.mean()) / 2.0 + 1e-8
    eta = np.log(mu)
    dev_old = np.inf
    dev = np.inf
    for _ in range(maxiter):
        z = eta - offset + (y - mu) / mu
        Aw = A * mu[:, None]
        try:  # normal equations: fast for the small designs of the decomposition
            beta = np.linalg.solve(A.T @ Aw, Aw.T @ z)
        except np.linalg.LinAlgError:
            sw = np.sqrt(mu)
            beta = np.linalg.lstsq(A * sw[:, None], z * sw, rcond=None)[0]
        eta = np.clip(A @ beta + offset, -50.0, 50.0)
        mu = np.exp(eta)
        dev = 2.0 * float(np.sum(xlogy(y, y) - xlogy(y, mu) - (y - mu)))
        if abs(dev - dev_old) <= tol * (abs(dev) + 0.1):
            break
        dev_old = dev
    return dev


def _coalition_values(model: str, y: np.ndarray, blocks: list[np.ndarray],
                      offset: np.ndarray) -> np.ndarray:
    G, n = len(blocks), len(y)
    out = np.zeros(2**G)
    one = np.ones((n, 1))
    null = poisson_deviance(y, one, offset) if model == "poisson" else None
    for mask in range(1, 2**G):
        A = np.hstack([one, *(blocks[g] for g in range(G) if mask >> g & 1)])
        if model == "ols":
            out[mask] = _r2(y, A)
        else:
            out[mask] = 1.0 - poisson_deviance(y, A, offset) / null if null > 0 else np.nan
    return out


def decompose(
    data: pd.DataFrame,
    *,
    groups: Mapping[str, Sequence[str]],
    model: str = "ols",
    response: str = "count",
    exposure: str = "area_km2",
    ols_zero: float = 0.5,
    n_boot: int = 199,
    seed: Any = None,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Shapley–Owen decomposition of the explained variation over factor groups.

    Each group's contribution is its Shapley value in the game whose value of a set
    of groups is the R² of OLS on log density (``model="ols"``) or the deviance
    explained, 1 − D/D₀, of the Poisson GLM with log-area offset (``"poisson"``), of
    the model with those groups' covariates and an intercept. The contributions sum to
    the full model's R² (deviance explained) and do not depend on an order of entry
    (unlike the hierarchical increments of seed 000's table 4).

    Intervals: percentile intervals over ``n_boot`` bootstrap resamples of the units
    (seeded); they show sampling variability of the decomposition, not a test.

    Returns
    -------
    DataFrame
        One row per group and a last row ``total``: ``covariates``, ``contribution``,
        ``share`` (of the total), ``ci_low`` / ``ci_high`` (contribution) and
        ``share_ci_low`` / ``share_ci_high``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40),
    ...                   "area_km2": np.ones(40)})
    >>> d["count"] = rng.poisson(np.exp(0.5 + 0.6 * d["a"]))
    >>> t = decompose(d, groups={"A": ["a"], "B": ["b"]}, n_boot=19, seed=1)
    >>> bool(np.isclose(t["contribution"][:2].sum(), t["contribution"].iloc[-1]))
    True
    """
    from incubloc.stats._random import rng as _rng

    if model not in ("ols", "poisson"):
        raise ConfigError(f"decomposition model {model!r}: use 'ols' or 'poisson'")
    groups = {g: list(c) for g, c in groups.items() if len(c)}
    if not groups:
        raise InputError("no factor group has a covariate: nothing to decompose")
    if len(groups) > 10:
        raise ConfigError(f"{len(groups)} factor groups: at most 10 (2^G models are fitted)")
    count = data[response].to_numpy(float)
    expo = data[exposure].to_numpy(float)
    offset = np.log(expo)
    y = np.log((count + ols_zero) / expo) if model == "ols" else count
    blocks = [data[c].to_numpy(float).reshape(len(data), -1) for c in groups.values()]
    G = len(groups)
    values = _coalition_values(model, y, blocks, offset)
    phi = shapley_values(values, G)
    total = values[-1]
    gen = _rng(seed)
    n = len(data)
    boot_phi = np.full((int(n_boot), G), np.nan)
    for b in range(int(n_boot)):
        idx = gen.integers(0, n, n)
        with np.errstate(all="ignore"):
            v = _coalition_values(model, y[idx], [bl[idx] for bl in blocks], offset[idx])
        if np.isfinite(v).all():
            boot_phi[b] = shapley_values(v, G)
    ok = np.isfinite(boot_phi).all(axis=1)
    lo, hi = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
    bt = boot_phi[ok]
    btot = bt.sum(axis=1)
    with np.errstate(all="ignore"):
        bshare = bt / btot[:, None]
    pct = (lambda a: np.percentile(a, [lo, hi], axis=0)) if ok.any() else (
        lambda a: np.full((2, *a.shape[1:]), np.nan))
    c_lo, c_hi = pct(bt)
    s_lo, s_hi = pct(bshare)
    t_lo, t_hi = pct(btot[:, None])
    table = pd.DataFrame({
        "group": [*groups, "total"],
        "covariates": [", ".join(c) for c in groups.values()] + [""],
        "contribution": [*phi, total],
        "share": [*(phi / total if total else phi * np.nan), 1.0],
        "ci_low": [*c_lo, t_lo[0]], "ci_high": [*c_hi, t_hi[0]],
        "share_ci_low": [*s_lo, np.nan], "share_ci_high": [*s_hi, np.nan],
    })
    table.insert(0, "model", model)
    table.attrs.update({"n_boot": int(n_boot), "n_boot_used": int(ok.sum()), "ci": ci,
                        "measure": "R²" if model == "ols" else "deviance explained"})
    return table


# ------------------------------------------------------------------------------ result


@dataclasses.dataclass(repr=False)
class FactorResult(Result):
    """The location-factor model of one set of units.

    Attributes
    ----------
    units : GeoDataFrame
        One row per unit (metric CRS): ``unit``, ``count``, ``area_km2``, the
        covariates, ``log_density``, residuals (``resid_ols``,
        ``resid_poisson_pearson``, ``resid_spatial_*``) and local GWR estimates
        (``gwr_<term>``, ``gwr_t_<term>``: t-values set to 0 where not significant at
        the corrected level).
    covariates : DataFrame
        Documentation and summary of each covariate used: group, definition, unit,
        source layer, mean, sd, min, max, VIF.
    coefficients : DataFrame
        model, term, group, estimate, robust_se, stat (z), p, ci_low, ci_high, irr
        (incidence-rate ratio exp(estimate), count models), std_estimate (per standard
        deviation of the covariate; for OLS also divided by the sd of the response).
    fit : DataFrame
        One row per model: n, k, log-likelihood, AIC, fit measure and value.
    diagnostics : dict
        spreg's Moran's I of OLS residuals, LM-lag, LM-error, robust LM tests, SARMA,
        the spatial model chosen and its parameter.
    decomposition : DataFrame
        Shapley–Owen shares of each factor group (:func:`decompose`) for each model.
    gwr : dict
        Bandwidth, AICc, R², corrected α and significant-unit counts, or why GWR did not run.
    skipped : dict
        Covariates left out and why.
    parameters : dict
        Every option of the run (units, response, seed …).
    models : dict
        The fitted statsmodels / spreg / mgwr objects (not serialised).
    """

    units: gpd.GeoDataFrame
    covariates: pd.DataFrame
    coefficients: pd.DataFrame
    fit: pd.DataFrame
    diagnostics: dict[str, Any]
    decomposition: pd.DataFrame
    gwr: dict[str, Any]
    skipped: dict[str, str]
    parameters: dict[str, Any]
    models: dict[str, Any] = dataclasses.field(default_factory=dict)

    _private: ClassVar[tuple[str, ...]] = ("units", "models")

    def coefficient(self, model: str, term: str) -> pd.Series:
        """One row of :attr:`coefficients`."""
        row = self.coefficients[(self.coefficients["model"] == model)
                                & (self.coefficients["term"] == term)]
        if not len(row):
            raise KeyError(f"no coefficient {term!r} in model {model!r}")
        return row.iloc[0]

    def plot_residuals(self, *, ax: Any = None) -> Any:
        """Maps of the OLS and Poisson (Pearson) residuals; returns the Figure."""
        from matplotlib.figure import Figure

        from incubloc.shells.plot import style

        cols = [("resid_ols", "OLS residual, log density 对数密度残差"),
                ("resid_poisson_pearson", "Poisson Pearson residual 泊松残差")]
        sp = next((c for c in self.units if c.startswith("resid_spatial_")), None)
        if sp:
            cols.append((sp, f"{sp.removeprefix('resid_').replace('_', ' ')} residual"))
        with style():
            if ax is None:
                fig = Figure(figsize=(4.2 * len(cols), 4.6), layout="constrained")
                axes = fig.subplots(1, len(cols))
                axes = np.atleast_1d(axes)
            else:
                fig, axes = ax.figure, np.array([ax])
                cols = cols[:1]
            for a, (col, title) in zip(axes, cols, strict=False):
                v = self.units[col].to_numpy(float)
                lim = float(np.nanmax(np.abs(v))) or 1.0
                self.units.plot(column=col, ax=a, cmap="RdBu_r", vmin=-lim, vmax=lim,
                                edgecolor="white", linewidth=0.3, legend=True,
                                legend_kwds={"shrink": 0.6})
                a.set_title(title, loc="left", fontsize=10)
                a.set_axis_off()
        return fig

    def plot_gwr(self, *, ax: Any = None) -> Any:
        """Maps of GWR local coefficients; units not significant (corrected α) hatched.

        Raises
        ------
        LookupError
            If GWR was not fitted (:attr:`gwr` says why).
        """
        from matplotlib.figure import Figure

        from incubloc.shells.plot import style

        if not self.gwr.get("fitted"):
            raise LookupError(f"GWR was not fitted: {self.gwr.get('reason')}")
        terms = [c.removeprefix("gwr_") for c in self.units
                 if c.startswith("gwr_") and not c.startswith("gwr_t_")]
        terms = [t for t in terms if t != "intercept"]
        with style():
            if ax is None:
                ncol = min(4, len(terms))
                nrow = math.ceil(len(terms) / ncol)
                fig = Figure(figsize=(3.6 * ncol, 3.6 * nrow), layout="constrained")
                axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
            else:
                fig, axes = ax.figure, np.array([ax])
                terms = terms[:1]
            for a in axes[len(terms):]:
                a.set_axis_off()
            for a, t in zip(axes, terms, strict=False):
                v = self.units[f"gwr_{t}"].to_numpy(float)
                lim = float(np.nanmax(np.abs(v))) or 1.0
                self.units.plot(column=f"gwr_{t}", ax=a, cmap="PuOr_r", vmin=-lim, vmax=lim,
                                edgecolor="white", linewidth=0.3, legend=True,
                                legend_kwds={"shrink": 0.6})
                ns = self.units[self.units[f"gwr_t_{t}"] == 0]
                if len(ns):
                    ns.plot(ax=a, facecolor="none", edgecolor="#777777", hatch="///",
                            linewidth=0.0)
                a.set_title(f"{t} (per sd)", loc="left", fontsize=9)
                a.set_axis_off()
            adj = self.gwr.get("adj_alpha")
            where = (f"α corrected to {adj:.3g}" if isinstance(adj, float)
                     else "α corrected per term")
            fig.suptitle(f"{self.gwr.get('model', 'gwr').upper()} local coefficients, log "
                         f"density; hatched = not significant ({where})", fontsize=10)
        return fig


def _default_groups(names: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for n in names:
        out.setdefault(_BY_NAME[n].group if n in _BY_NAME else n, []).append(n)
    return out


def location_factors(
    incubators: gpd.GeoDataFrame,
    study_area: StudyArea,
    *,
    units: str | gpd.GeoDataFrame = "districts",
    response: str = "count",
    covariates: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    point: str = "centroid",
    radius_m: float = 10_000.0,
    stations: gpd.GeoDataFrame | None = None,
    standardise: bool = False,
    ols_zero: float = 0.5,
    ols_robust: str = "HC3",
    alpha: float = 0.05,
    spatial: str = "auto",
    gwr: bool = True,
    local_model: str = "gwr",
    gwr_min_units: int = 50,
    min_df: int = 10,
    decompose_models: Sequence[str] = ("ols", "poisson"),
    n_boot: int = 199,
    seed: Any = 20140630,
    crs: Any = None,
    min_land_fraction: float = 0.25,
) -> FactorResult:
    """Units, covariates, models and effect decomposition in one call.

    Parameters are those of :func:`build_units`, :func:`count_incubators`,
    :func:`covariates`, :func:`fit_models` and :func:`decompose`; ``covariates``
    selects names of :data:`COVARIATES` (default: all that the study area supports),
    ``groups`` maps factor groups to covariates (default: each covariate's group), and
    ``standardise`` turns every covariate into z-scores before the models (estimates
    per standard deviation).

    Returns
    -------
    FactorResult

    Raises
    ------
    InputError
        Too few units for the covariates, a singular design, or no unit with area.
    ImportError
        statsmodels, spreg or mgwr are missing (``pip install "incubloc[factors]"``).
    """
    for mod in ("statsmodels", "spreg", "mgwr"):
        _need(mod)
    u = build_units(study_area, units=units, crs=crs, min_land_fraction=min_land_fraction)
    counts = count_incubators(incubators, u, response=response)
    X, skipped = _build_covariates(u, study_area, point=point, radius_m=radius_m,
                                   stations=stations, include=covariates)
    keep = counts["area_km2"].to_numpy() > 0
    if not keep.all():
        log.info("%d units without land area left out", int((~keep).sum()))
    u, counts, X = u[keep].reset_index(drop=True), counts[keep].reset_index(drop=True), \
        X[keep].reset_index(drop=True)
    X, dropped = check_design(X, min_df=min_df)
    skipped.update(dropped)
    raw = X.copy()
    if standardise:
        X = _standardise(X)
    data = pd.concat([counts, X], axis=1)
    names = list(X.columns)
    w = spatial_weights(u) if len(u) > 2 else None
    pts = u.geometry.centroid
    coords = np.column_stack([pts.x, pts.y])
    m = fit_models(data, covariates=names, w=w, coords=coords, ols_zero=ols_zero,
                   ols_robust=ols_robust, alpha=alpha, spatial=spatial, gwr=gwr,
                   gwr_min_units=gwr_min_units, local_model=local_model)
    grp = {g: [c for c in cs if c in names] for g, cs in
           (groups.items() if groups is not None else _default_groups(names).items())}
    dec = [decompose(data, groups=grp, model=mdl, ols_zero=ols_zero, n_boot=n_boot, seed=seed)
           for mdl in decompose_models]
    decomposition = pd.concat(dec, ignore_index=True) if dec else pd.DataFrame()
    doc = pd.DataFrame([dataclasses.asdict(_BY_NAME[n]) for n in names])
    if standardise:
        doc["unit"] = doc["unit"] + " (standardised: per sd)"
    doc["mean"] = raw.mean().to_numpy()
    doc["sd"] = raw.std(ddof=0).to_numpy()
    doc["min"] = raw.min().to_numpy()
    doc["max"] = raw.max().to_numpy()
    doc["vif"] = vif(X).to_numpy()
    doc.loc[doc["name"] == "n_knowledge_hosts", "unit"] = f"count within {radius_m / 1000:g} km"
    out = u.copy()
    out["count"] = counts["count"].to_numpy()
    out["area_km2"] = counts["area_km2"].to_numpy()
    for c in names:
        out[c] = raw[c].to_numpy()
    for c in m["local"]:
        out[c] = m["local"][c].to_numpy()
    params = {"units": units if isinstance(units, str) else "user polygons",
              "units_kind": u.attrs.get("units"), "n_units": len(u), "response": response,
              "exposure": "land area, km² (log offset)", "point": point, "radius_m": radius_m,
              "standardise": standardise, "ols_zero": ols_zero,
              "ols_response": f"log((count + {ols_zero:g}) / area_km2)",
              "ols_robust": ols_robust, "count_robust": "HC0", "alpha": alpha,
              "spatial": spatial, "gwr": gwr, "local_model": local_model,
              "gwr_min_units": gwr_min_units, "min_df": min_df,
              "n_boot": n_boot, "seed": seed if isinstance(seed, int | None) else str(seed),
              "groups": grp, "n_incubators": int(out["count"].sum()),
              "crs": out.crs.to_string()}
    return FactorResult(out, doc, m["coefficients"], m["fit"], m["diagnostics"], decomposition,
                        m["gwr"], skipped, params, m["models"])


def write_factors(
    result: FactorResult,
    outdir: str | os.PathLike,
    *,
    provenance: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write a :class:`FactorResult`: tables, ``stats.json``, layers, maps and a report.

    Files: ``tables/factor_{coefficients,fit,decomposition,covariates,units}.csv``,
    ``stats.json`` (key ``factors``), ``factor_units.gpkg``,
    ``figures/factor_residuals.png`` / ``.svg`` and ``figures/factor_gwr.png`` (when
    GWR ran), ``report.html`` and ``provenance.json`` (when given).

    Returns
    -------
    list of Path
    """
    import json

    from incubloc._version import __version__
    from incubloc.io import atomic_path
    from incubloc.shells.report import render_factors_html, save_figure

    outdir = Path(outdir)
    tdir, fdir = outdir / "tables", outdir / "figures"
    tdir.mkdir(parents=True, exist_ok=True)
    fdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tables = {
        "factor_coefficients": result.coefficients,
        "factor_fit": result.fit,
        "factor_decomposition": result.decomposition,
        "factor_covariates": result.covariates,
        "factor_units": pd.DataFrame(result.units.drop(columns="geometry")),
    }
    for name, df in tables.items():
        p = tdir / f"{name}.csv"
        with atomic_path(p) as tmp:
            df.to_csv(tmp, index=False, lineterminator="\n", float_format="%.10g")
        written.append(p)
    p = outdir / "stats.json"
    with atomic_path(p) as tmp:
        tmp.write_text(json.dumps(jsonable({"incubloc_version": __version__,
                                            "factors": result.to_dict()}),
                                  indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(p)
    p = outdir / "factor_units.gpkg"
    with atomic_path(p) as tmp:
        result.units.to_crs(4326).to_file(tmp, layer="factor_units", driver="GPKG")
    written.append(p)
    figures: dict[str, bytes] = {}
    written += save_figure(result.plot_residuals(), fdir / "factor_residuals")
    figures["factor_residuals"] = (fdir / "factor_residuals.png").read_bytes()
    if result.gwr.get("fitted"):
        written += save_figure(result.plot_gwr(), fdir / "factor_gwr")
        figures["factor_gwr"] = (fdir / "factor_gwr.png").read_bytes()
    p = outdir / "report.html"
    with atomic_path(p) as tmp:
        tmp.write_text(render_factors_html(result, figures), encoding="utf-8")
    written.append(p)
    if provenance is not None:
        p = outdir / "provenance.json"
        with atomic_path(p) as tmp:
            tmp.write_text(json.dumps(jsonable(dict(provenance)), indent=2, ensure_ascii=False)
                           + "\n", encoding="utf-8")
        written.append(p)
    return written


def factors_from_config(
    incubators: gpd.GeoDataFrame,
    study_area: StudyArea,
    *,
    config: Mapping[str, Any],
    sites: gpd.GeoDataFrame | None = None,
) -> FactorResult:
    """:func:`location_factors` with the ``[factors]`` and ``[stats] seed`` of a config.

    A response on a class that needs classification (``relation=…``, ``layout=…``,
    ``ring=…``, ``tier=…``) classifies the incubators first.
    """
    fc = config["factors"]
    col = fc["response"].partition("=")[0]
    if fc["response"] != "count" and col not in incubators:
        from incubloc.workflow import classify_with_config

        incubators = classify_with_config(incubators, study_area, sites=sites,
                                          config=dict(config)).incubators
    stations = stations_from_osm(osm_file=fc["osm_file"]) if fc["osm_file"] else None
    return location_factors(
        incubators, study_area, units=fc["units"], stations=stations, response=fc["response"],
        covariates=fc["covariates"] or None, point=fc["point"], radius_m=fc["radius_m"],
        standardise=fc["standardise"], ols_zero=fc["ols_zero"], ols_robust=fc["ols_robust"],
        alpha=fc["alpha"], spatial=fc["spatial"], gwr=fc["gwr"], local_model=fc["local_model"],
        gwr_min_units=fc["gwr_min_units"], min_df=fc["min_df"], n_boot=fc["n_boot"],
        seed=config["stats"]["seed"], crs=config["analysis"]["crs"],
        min_land_fraction=fc["min_land_fraction"],
    )
