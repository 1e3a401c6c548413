"""Host spaces and building footprints from OpenStreetMap (through osmnx).

Online, features are queried from the Overpass API by place name, bounding box or
polygon (``osmnx.features.features_from_place`` / ``_bbox`` / ``_polygon``) and
cached by osmnx in ``cache_dir``. Offline, an OSM XML extract (``.osm``, ``.xml``,
``.osm.bz2``) is read with ``osmnx.features.features_from_xml``; a ``.osm.pbf``
extract is first filtered with pyosmium (``pip install osmium``) into OSM XML, or
read with pyrosm (``pip install pyrosm``) when that is installed instead. Every
source goes through the same post-processing.

Host kinds (``hosts`` layer, column ``kind``) are assigned by these rules, the
first that matches winning, in the order of :data:`HOST_KIND_ORDER`:

* **named zones** — a feature with a zone tag (:data:`ZONE_TAGS`: ``landuse`` =
  industrial / commercial / education / science_park / construction, ``boundary`` =
  administrative / special_economic_zone, ``place`` = suburb / quarter /
  neighbourhood / town) whose name matches a pattern of
  :data:`HOST_NAME_PATTERNS`: 高新区 / 高新技术产业开发区 → ``high_tech_zone``;
  开发区 / 经济技术开发区 → ``development_zone``; 科技园 / 软件园 / 科学园 →
  ``science_park``; 大学城 → ``university``. OpenStreetMap has no standard tag for
  Chinese development zones, so names decide;
* **tags** (:data:`HOST_TAGS`) — ``amenity=university|college`` → ``university``;
  ``office=research`` or ``amenity=research_institute`` → ``research``;
  ``landuse=industrial`` or any ``industrial=*`` → ``industrial_park``;
  ``landuse=science_park`` → ``science_park``.

Hosts and buildings are polygons: features mapped as points or lines are dropped
(the count is logged). Both rule tables can be overridden (``tags=`` and
``name_patterns=``). OpenStreetMap data is © OpenStreetMap contributors, ODbL.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from incubloc.errors import ConfigError, IncublocError, InputError

__all__ = [
    "BUILDING_TAGS",
    "HOST_KIND_ORDER",
    "HOST_NAME_PATTERNS",
    "HOST_TAGS",
    "ZONE_TAGS",
    "add_osm_to_study_area",
    "buildings_from_osm",
    "default_cache_dir",
    "hosts_from_osm",
    "parse_height",
    "parse_levels",
]

log = logging.getLogger(__name__)

Tags = dict[str, "bool | str | list[str]"]

#: Tags that make a feature a host of a kind, whatever its name.
HOST_TAGS: dict[str, Tags] = {
    "university": {"amenity": ["university", "college"]},
    "research": {"office": ["research"], "amenity": ["research_institute"]},
    "industrial_park": {"landuse": ["industrial"], "industrial": True},
    "science_park": {"landuse": ["science_park"]},
    "high_tech_zone": {},
    "development_zone": {},
}

#: Tags of the polygons that may be named zones (matched by :data:`HOST_NAME_PATTERNS`).
ZONE_TAGS: Tags = {
    "landuse": ["industrial", "commercial", "education", "science_park", "construction"],
    "boundary": ["administrative", "special_economic_zone"],
    "place": ["suburb", "quarter", "neighbourhood", "town"],
}

#: Name patterns (regular expressions) of named zones, by kind.
HOST_NAME_PATTERNS: dict[str, str] = {
    "high_tech_zone": r"高新区|高新技术产业开发区|高新技术开发区|高新技术产业园",
    "development_zone": r"经济技术开发区|经济开发区|开发区",
    "science_park": r"科技园|软件园|科学园",
    "university": r"大学城",
}

#: Priority of kinds when several rules match one feature (most specific first).
HOST_KIND_ORDER = (
    "high_tech_zone",
    "development_zone",
    "science_park",
    "university",
    "research",
    "industrial_park",
)

#: Tags of building footprints.
BUILDING_TAGS: Tags = {"building": True}

# A software park with one six-storey building, for the examples.
_EXAMPLE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <node id="1" lat="32.150" lon="118.760"/><node id="2" lat="32.150" lon="118.775"/>
 <node id="3" lat="32.160" lon="118.775"/><node id="4" lat="32.160" lon="118.760"/>
 <node id="5" lat="32.151" lon="118.761"/><node id="6" lat="32.151" lon="118.762"/>
 <node id="7" lat="32.152" lon="118.762"/><node id="8" lat="32.152" lon="118.761"/>
 <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
  <tag k="landuse" v="commercial"/><tag k="name" v="南京软件园"/></way>
 <way id="11"><nd ref="5"/><nd ref="6"/><nd ref="7"/><nd ref="8"/><nd ref="5"/>
  <tag k="building" v="office"/><tag k="building:levels" v="6"/><tag k="height" v="20 m"/></way>
</osm>
"""

_NAME_KEYS = ("name", "name:zh", "name:zh-Hans", "official_name", "name:en")
_HOST_COLUMNS = ["host_id", "name", "kind", "osm_id", "source"]
_BUILDING_COLUMNS = ["building_id", "levels", "height", "source"]
_SOURCE = "OpenStreetMap contributors (ODbL)"


# --------------------------------------------------------------------------- parsing

_NUMBER = r"(\d+(?:[.,]\d+)?)"


def parse_levels(values: Sequence[Any] | pd.Series) -> pd.Series:
    """Parse ``building:levels`` tags to floats: the largest number given.

    ``"5;6"`` (several values) gives 6, ``"5 floors"`` gives 5, ``"12,5"`` gives 12.5;
    text without a number gives NaN.

    Examples
    --------
    >>> parse_levels(["5", "5;6", "5 floors", None, "abc"]).tolist()
    [5.0, 6.0, 5.0, nan, nan]
    """
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    text = pd.Series(s.to_numpy(), dtype="string")  # positional index for extractall
    found = text.str.extractall(_NUMBER)[0].str.replace(",", ".", regex=False).astype(float)
    out = found.groupby(level=0).max().reindex(range(len(s)))
    return pd.Series(out.to_numpy(dtype=float), index=s.index, name=s.name)


def parse_height(values: Sequence[Any] | pd.Series) -> pd.Series:
    """Parse ``height`` tags to metres: ``"12 m"`` → 12, ``"40 ft"`` → 12.19.

    Feet (``ft``, ``feet``, ``'``) are converted; several values give the largest.

    Examples
    --------
    >>> parse_height(["12", "12 m", "12.5m", "40 ft", "18,5 m", None]).round(2).tolist()
    [12.0, 12.0, 12.5, 12.19, 18.5, nan]
    """
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    text = pd.Series(s.to_numpy(), dtype="string").str.lower()
    found = text.str.extractall(_NUMBER + r"\s*(ft|feet|foot|'|m|meters?|metres?)?")
    num = found[0].str.replace(",", ".", regex=False).astype(float)
    feet = found[1].isin(["ft", "feet", "foot", "'"]).to_numpy()
    metres = num.where(~feet, num * 0.3048)
    out = metres.groupby(level=0).max().reindex(range(len(s)))
    return pd.Series(out.to_numpy(dtype=float), index=s.index, name=s.name)


# --------------------------------------------------------------------------- querying


def default_cache_dir() -> Path:
    """Where online OpenStreetMap responses are cached.

    ``platformdirs.user_cache_dir("incubloc")/osm`` when platformdirs is importable,
    else ``~/.cache/incubloc/osm``.

    Examples
    --------
    >>> default_cache_dir().name
    'osm'
    """
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - platformdirs ships with most environments
        return Path.home() / ".cache" / "incubloc" / "osm"
    return Path(platformdirs.user_cache_dir("incubloc")) / "osm"


@contextlib.contextmanager
def _osmnx_cache(cache_dir: Path) -> Iterator[None]:
    import osmnx as ox

    old = (ox.settings.use_cache, ox.settings.cache_folder)
    ox.settings.use_cache = True
    ox.settings.cache_folder = str(cache_dir)
    try:
        yield
    finally:
        ox.settings.use_cache, ox.settings.cache_folder = old


def _merge_tags(*tag_dicts: Mapping[str, Any]) -> Tags:
    """Union of osmnx tag filters (True wins over value lists)."""
    out: dict[str, Any] = {}
    for tags in tag_dicts:
        for key, value in tags.items():
            if value is True or out.get(key) is True:
                out[key] = True
                continue
            values = [value] if isinstance(value, str) else list(value)
            out[key] = list(dict.fromkeys([*out.get(key, []), *values]))
    return out


def _source(
    place: Any, bbox: Any, polygon: Any, osm_file: Any
) -> tuple[str, Any]:
    given = {k: v for k, v in (("place", place), ("bbox", bbox), ("polygon", polygon),
                               ("osm_file", osm_file)) if v is not None}
    if len(given) != 1:
        raise ConfigError(
            "give exactly one OpenStreetMap source: place= (a name such as '南京市'), "
            "bbox=(west, south, east, north), polygon= (WGS84) or osm_file= (.osm / .osm.pbf); "
            f"got {', '.join(given) or 'none'}"
        )
    kind, value = next(iter(given.items()))
    if kind == "bbox":
        try:
            w, s, e, n = (float(x) for x in value)
        except (TypeError, ValueError):
            raise ConfigError(f"bbox must be four numbers (west, south, east, north), got {value!r}") from None
        if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
            raise ConfigError(
                f"bbox {value!r} is not (west, south, east, north) in degrees with west < east "
                "and south < north"
            )
        value = (w, s, e, n)
    elif kind == "polygon":
        if isinstance(value, gpd.GeoDataFrame | gpd.GeoSeries):
            if value.crs is None:
                raise ConfigError("the query polygon has no CRS: set one (e.g. EPSG:4326)")
            value = shapely.union_all(np.asarray(value.geometry.to_crs(4326).values))
        if not isinstance(value, shapely.Polygon | shapely.MultiPolygon) or value.is_empty:
            raise ConfigError("polygon must be a shapely Polygon / MultiPolygon in WGS84 (EPSG:4326)")
    elif kind == "osm_file":
        value = Path(value)
        if not value.exists():
            raise InputError(f"OSM file {value} does not exist: give the path of a .osm or .osm.pbf file")
    return kind, value


def _query_record(layer: str, kind: str, value: Any, tags: Tags, extra: dict) -> dict[str, Any]:
    import osmnx

    shown: Any = value
    if kind == "polygon":
        shown = value.wkt
    elif kind == "osm_file":
        shown = str(Path(value).resolve())
    elif kind == "bbox":
        shown = list(value)
    return {
        "layer": layer,
        "source": kind,
        "value": shown,
        "tags": tags,
        **extra,
        "osmnx": osmnx.__version__,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _write_query_json(cache_dir: Path, record: dict[str, Any]) -> None:
    """Record the latest query per layer in ``cache_dir/query.json``."""
    path = cache_dir / "query.json"
    try:
        known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        known = {}
    known[record["layer"]] = record
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(known, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _empty_raw() -> gpd.GeoDataFrame:
    idx = pd.MultiIndex.from_arrays([[], []], names=["element", "id"])
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=4326), index=idx)


def _fetch(
    layer: str, kind: str, value: Any, tags: Tags, cache_dir: Any, extra: dict
) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Raw osmnx features (index element/id, one column per tag) and the query record."""
    import osmnx as ox
    from osmnx._errors import InsufficientResponseError

    record = _query_record(layer, kind, value, tags, extra)
    try:
        if kind == "osm_file":
            if value.name.lower().endswith(".pbf"):
                raw = _read_pbf(value, tags)
            else:
                raw = ox.features.features_from_xml(value, tags=tags)
        else:
            cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            cache.mkdir(parents=True, exist_ok=True)
            record["cache_dir"] = str(cache)
            with _osmnx_cache(cache):
                try:
                    if kind == "place":
                        raw = ox.features.features_from_place(value, tags)
                    elif kind == "bbox":
                        raw = ox.features.features_from_bbox(value, tags)
                    else:
                        raw = ox.features.features_from_polygon(value, tags)
                finally:
                    _write_query_json(cache, record)
    except InsufficientResponseError:
        log.warning("OpenStreetMap %s query (%s=%s) returned no features", layer, kind, record["value"])
        raw = _empty_raw()
    except IncublocError:
        raise
    except Exception as exc:  # file, network and Overpass errors share no base class
        if kind == "osm_file":
            raise InputError(f"cannot read OSM file {value}: {exc}") from exc
        raise IncublocError(
            f"OpenStreetMap query {kind}={record['value']!r} failed: {exc}; check the network "
            "and the place name, or use an offline extract with osm_file="
        ) from exc
    return raw, record


def _read_pbf(path: Path, tags: Tags) -> gpd.GeoDataFrame:
    """A .osm.pbf extract as an osmnx-shaped frame, via pyosmium or pyrosm."""
    try:
        import osmium
    except ImportError:
        osmium = None
    if osmium is not None and hasattr(osmium, "BackReferenceWriter"):
        import osmnx as ox

        # Keep matching objects plus the nodes and ways they reference, as OSM XML,
        # then parse it exactly like a .osm file.
        with tempfile.TemporaryDirectory(prefix="incubloc-osm-") as tmp:
            xml = Path(tmp) / "extract.osm"
            proc = osmium.FileProcessor(str(path)).with_filter(osmium.filter.KeyFilter(*tags))
            with osmium.BackReferenceWriter(str(xml), ref_src=str(path), overwrite=True) as writer:
                for obj in proc:
                    writer.add(obj)
            return ox.features.features_from_xml(xml, tags=tags)
    try:
        from pyrosm import OSM
    except ImportError:
        raise IncublocError(
            f"reading {path.name} (.osm.pbf) needs pyosmium ≥ 4 or pyrosm: install one "
            "(pip install osmium, or pip install pyrosm), or convert the extract to OSM XML "
            "(osmium cat in.osm.pbf -o out.osm) and pass the .osm file"
        ) from None
    keep = sorted(set(tags) | set(_NAME_KEYS) | {"building:levels", "height", "type"})
    gdf = OSM(str(path)).get_data_by_custom_criteria(
        custom_filter={k: v for k, v in tags.items()},
        tags_as_columns=keep,
        keep_nodes=True,
        keep_ways=True,
        keep_relations=True,
    )
    if gdf is None or len(gdf) == 0:
        return _empty_raw()
    gdf = gdf.rename(columns={"osm_type": "element"}).set_index(["element", "id"])
    return gdf.to_crs(4326) if gdf.crs is not None else gdf.set_crs(4326)


# --------------------------------------------------------------------------- post-processing


def _tag_match(raw: pd.DataFrame, tags: Mapping[str, Any]) -> np.ndarray:
    m = np.zeros(len(raw), dtype=bool)
    for key, value in tags.items():
        if key not in raw.columns:
            continue
        col = raw[key]
        if value is True:
            m |= (col.notna() & (col.astype(str) != "no")).to_numpy()
        elif isinstance(value, str):
            m |= (col == value).to_numpy()
        else:
            m |= col.isin(list(value)).to_numpy()
    return m


def _names(raw: pd.DataFrame) -> pd.Series:
    name = pd.Series([None] * len(raw), index=raw.index, dtype=object)
    for key in _NAME_KEYS:
        if key in raw.columns:
            name = name.where(name.notna(), raw[key])
    return name


def _polygons_only(raw: gpd.GeoDataFrame, layer: str) -> gpd.GeoDataFrame:
    geom = raw.geometry.values
    poly = np.isin(shapely.get_type_id(np.asarray(geom)), [3, 6]) & ~shapely.is_empty(np.asarray(geom))
    dropped = int((~poly).sum())
    if dropped:
        log.info("OpenStreetMap %s: dropped %d point/line features (polygons only)", layer, dropped)
    return raw.loc[poly]


def _ids(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    element = pd.Series(raw.index.get_level_values(0).astype(str), index=raw.index)
    osm = pd.Series(raw.index.get_level_values(1).astype(str), index=raw.index)
    return element + "/" + osm, "osm-" + element + "-" + osm


def _host_frame(raw: gpd.GeoDataFrame, tags: Mapping[str, Tags], patterns: Mapping[str, str]) -> gpd.GeoDataFrame:
    """Assign kinds to raw features and shape them as the ``hosts`` layer."""
    if len(raw):
        raw = _polygons_only(raw, "hosts")
    name = _names(raw)
    zone = _tag_match(raw, ZONE_TAGS)
    conds, kinds = [], []
    order = [k for k in HOST_KIND_ORDER if k in tags or k in patterns]
    order += [k for k in (*tags, *patterns) if k not in order]
    for kind in dict.fromkeys(order):
        cond = _tag_match(raw, tags.get(kind, {}))
        if kind in patterns:
            named = name.astype("string").str.contains(patterns[kind], regex=True, na=False)
            cond |= zone & named.to_numpy(dtype=bool)
        conds.append(cond)
        kinds.append(kind)
    kind = np.select(conds, kinds, default="") if conds else np.full(len(raw), "")
    matched = kind != ""
    if (~matched).any():
        log.info("OpenStreetMap hosts: %d polygons matched no host rule", int((~matched).sum()))
    raw = raw.loc[matched]
    osm_id, host_id = _ids(raw)
    out = gpd.GeoDataFrame(
        {
            "host_id": host_id.to_numpy(),
            "name": name[matched].to_numpy(),
            "kind": kind[matched],
            "osm_id": osm_id.to_numpy(),
            "source": _SOURCE,
        },
        geometry=gpd.GeoSeries(raw.geometry.values, crs=raw.crs).to_crs(4326).values,
        crs=4326,
    )
    return out


def _building_frame(raw: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if len(raw):
        raw = _polygons_only(raw, "buildings")
    _, ids = _ids(raw)
    n = len(raw)
    levels = parse_levels(raw["building:levels"]) if "building:levels" in raw else pd.Series(np.nan, index=raw.index)
    height = parse_height(raw["height"]) if "height" in raw else pd.Series(np.nan, index=raw.index)
    return gpd.GeoDataFrame(
        {
            "building_id": ids.to_numpy(),
            "levels": levels.to_numpy(dtype=float) if n else np.array([], dtype=float),
            "height": height.to_numpy(dtype=float) if n else np.array([], dtype=float),
            "source": _SOURCE,
        },
        geometry=gpd.GeoSeries(raw.geometry.values, crs=raw.crs).to_crs(4326).values,
        crs=4326,
    )


# --------------------------------------------------------------------------- public API


def hosts_from_osm(
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    polygon: Any = None,
    osm_file: str | os.PathLike | None = None,
    tags: Mapping[str, Tags] | None = None,
    name_patterns: Mapping[str, str] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> gpd.GeoDataFrame:
    """Host spaces (universities, research institutes, zones, parks) from OpenStreetMap.

    Parameters
    ----------
    place : str, optional
        A place name geocoded by Nominatim, e.g. ``"南京市"`` or ``"Nanjing, China"``.
    bbox : (west, south, east, north), optional
        Degrees, WGS84.
    polygon : shapely Polygon / MultiPolygon or GeoSeries, optional
        Query area (WGS84 when a bare shapely geometry).
    osm_file : path, optional
        Offline extract: ``.osm`` / ``.xml`` (osmnx) or ``.osm.pbf`` (pyosmium or
        pyrosm). Exactly one of place / bbox / polygon / osm_file.
    tags : dict kind → osmnx tag filter, optional
        Replaces :data:`HOST_TAGS`.
    name_patterns : dict kind → regular expression, optional
        Replaces :data:`HOST_NAME_PATTERNS` (applied to :data:`ZONE_TAGS` polygons).
    cache_dir : path, optional
        osmnx cache for online queries (default :func:`default_cache_dir`); the
        query is recorded in ``query.json`` there.

    Returns
    -------
    GeoDataFrame
        ``host_id`` (``osm-<element>-<id>``), ``name``, ``kind``, ``osm_id``
        (``way/123``), ``source``; polygons in EPSG:4326. ``attrs["query"]`` records
        the query.

    Examples
    --------
    >>> import tempfile, os
    >>> osm = os.path.join(tempfile.mkdtemp(), "zone.osm")
    >>> _ = open(osm, "w", encoding="utf-8").write(_EXAMPLE_XML)
    >>> hosts = hosts_from_osm(osm_file=osm)
    >>> hosts.loc[0, ["host_id", "name", "kind", "osm_id"]].tolist()
    ['osm-way-10', '南京软件园', 'science_park', 'way/10']
    """
    kind, value = _source(place, bbox, polygon, osm_file)
    rules = dict(HOST_TAGS if tags is None else tags)
    patterns = dict(HOST_NAME_PATTERNS if name_patterns is None else name_patterns)
    for k, pat in patterns.items():
        try:
            re.compile(pat)
        except re.error as exc:
            raise ConfigError(f"name pattern for {k!r} is not a valid regular expression: {exc}") from None
    query = _merge_tags(*rules.values(), ZONE_TAGS if patterns else {})
    if not query:
        raise ConfigError("no OpenStreetMap tags to query: give tags= or name_patterns=")
    raw, record = _fetch("hosts", kind, value, query, cache_dir, {"name_patterns": patterns})
    out = _host_frame(raw, rules, patterns)
    record["n_features"] = len(out)
    out.attrs["query"] = record
    log.info("OpenStreetMap hosts: %d polygons (%s)", len(out), out["kind"].value_counts().to_dict())
    return out


def buildings_from_osm(
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    polygon: Any = None,
    osm_file: str | os.PathLike | None = None,
    tags: Tags | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> gpd.GeoDataFrame:
    """Building footprints with levels and height from OpenStreetMap.

    Parameters are those of :func:`hosts_from_osm`; ``tags`` replaces
    :data:`BUILDING_TAGS`.

    Returns
    -------
    GeoDataFrame
        ``building_id``, ``levels`` (from ``building:levels``: the largest number
        given, see :func:`parse_levels`), ``height`` (metres, :func:`parse_height`),
        ``source``; polygons in EPSG:4326. ``attrs["query"]`` records the query.

    Examples
    --------
    >>> import tempfile, os
    >>> osm = os.path.join(tempfile.mkdtemp(), "zone.osm")
    >>> _ = open(osm, "w", encoding="utf-8").write(_EXAMPLE_XML)
    >>> buildings_from_osm(osm_file=osm)[["building_id", "levels", "height"]]
      building_id  levels  height
    0  osm-way-11     6.0    20.0
    """
    kind, value = _source(place, bbox, polygon, osm_file)
    query = dict(BUILDING_TAGS if tags is None else tags)
    raw, record = _fetch("buildings", kind, value, query, cache_dir, {})
    out = _building_frame(raw)
    record["n_features"] = len(out)
    out.attrs["query"] = record
    log.info("OpenStreetMap buildings: %d footprints", len(out))
    return out


_LAYER_FUNCS = {"hosts": hosts_from_osm, "buildings": buildings_from_osm}


def add_osm_to_study_area(
    path: str | os.PathLike,
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    polygon: Any = None,
    osm_file: str | os.PathLike | None = None,
    layers: Sequence[str] = ("hosts", "buildings"),
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Write (or replace) the ``hosts`` / ``buildings`` layers of a study-area GeoPackage.

    All layers are fetched first; the GeoPackage is then copied to a temporary
    file beside it, the layers are written there, and the copy replaces the
    original in one rename, so an interrupted run leaves the old file intact. A
    missing file is created.

    Parameters
    ----------
    path : path-like
        The study-area GeoPackage.
    place, bbox, polygon, osm_file, cache_dir :
        The OpenStreetMap source, as in :func:`hosts_from_osm`.
    layers : sequence of {"hosts", "buildings"}
        Which layers to write.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, os, pyogrio
    >>> folder = tempfile.mkdtemp()
    >>> osm = os.path.join(folder, "zone.osm")
    >>> _ = open(osm, "w", encoding="utf-8").write(_EXAMPLE_XML)
    >>> out = add_osm_to_study_area(os.path.join(folder, "area.gpkg"), osm_file=osm)
    >>> sorted(pyogrio.list_layers(out)[:, 0].tolist())
    ['buildings', 'hosts']
    """
    from incubloc.io import atomic_path

    wanted = [str(x) for x in layers]
    unknown = [x for x in wanted if x not in _LAYER_FUNCS]
    if unknown or not wanted:
        raise ConfigError(
            f"unknown OpenStreetMap layer(s) {unknown or wanted}: choose from hosts, buildings"
        )
    fetched = {
        name: _LAYER_FUNCS[name](
            place=place, bbox=bbox, polygon=polygon, osm_file=osm_file, cache_dir=cache_dir
        )
        for name in dict.fromkeys(wanted)
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.exists():
            shutil.copyfile(path, tmp)
        for name, gdf in fetched.items():
            if len(gdf) == 0:
                log.warning("%s: layer %r written empty (OpenStreetMap had no features)", path, name)
            gdf = gdf.copy()
            gdf.attrs = {}
            gdf.to_file(tmp, layer=name, driver="GPKG")
    log.info("wrote %s to %s", ", ".join(fetched), path)
    return path
