"""The study area: one GeoPackage whose layers describe a metropolitan circle.

Layers and their columns are listed in ``LAYERS`` (see ``docs/architecture.md``).
A missing layer disables the analyses that need it (``ANALYSES``); loading never
fails because of a missing layer, but asking for one does, with a message that
names the layer and the analysis.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from incubloc.coords import crs_is_missing
from incubloc.errors import MissingLayerError, StudyAreaError

__all__ = ["ANALYSES", "LAYERS", "StudyArea", "load_study_area", "write_study_area"]

log = logging.getLogger(__name__)

#: Required columns of each layer (geometry excluded).
LAYERS: dict[str, tuple[str, ...]] = {
    "cities": ("city", "province"),
    "districts": ("district", "city"),
    "settlements": ("settlement", "city", "kind"),
    "rings": ("city", "ring"),
    "hosts": ("kind",),
    "buildings": (),
    "corridors": (),
    "zones": ("zone",),
    "centres": ("kind",),
}

#: Which layers each analysis needs.
ANALYSES: dict[str, tuple[str, ...]] = {
    "city and province": ("cities",),
    "settlement and tier": ("settlements",),
    "zone (core, belt, named zones)": ("cities",),
    "Yangtze belt": ("corridors",),
    "rings and ring patterns": ("rings",),
    "relation (park-in-park / standalone / mixed)": ("hosts",),
    "layout (building / park / mixed)": ("buildings",),
    "autocorrelation on administrative units": ("districts",),
    "location preference": ("centres",),
}

_GEOM_KIND = {
    "cities": "Polygon",
    "districts": "Polygon",
    "settlements": "Polygon",
    "rings": "Polygon",
    "hosts": "Polygon",
    "buildings": "Polygon",
    "corridors": "LineString",
    "zones": "Polygon",
    "centres": "Point",
}


@dataclass
class StudyArea:
    """The layers of a study area, each a GeoDataFrame in EPSG:4326.

    Attributes
    ----------
    layers : dict of str to GeoDataFrame
        The layers present.
    path : str or None
        The GeoPackage they were read from.
    repairs : list of str
        Messages about geometries that were repaired on load.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> cities = gpd.GeoDataFrame({"city": ["A"], "province": ["P"]},
    ...                           geometry=[box(118, 32, 119, 33)], crs=4326)
    >>> sa = StudyArea({"cities": cities})
    >>> sa.has("cities"), sa.has("rings")
    (True, False)
    """

    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    path: str | None = None
    repairs: list[str] = field(default_factory=list)

    def has(self, name: str) -> bool:
        """Whether layer ``name`` is present and not empty."""
        gdf = self.layers.get(name)
        return gdf is not None and len(gdf) > 0

    def get(self, name: str) -> gpd.GeoDataFrame | None:
        """Layer ``name`` or None when absent."""
        return self.layers.get(name) if self.has(name) else None

    def require(self, name: str, analysis: str = "this analysis") -> gpd.GeoDataFrame:
        """Layer ``name``, or a :class:`MissingLayerError` naming it and the analysis."""
        if not self.has(name):
            where = f" in {self.path}" if self.path else ""
            raise MissingLayerError(
                f"{analysis} needs the study-area layer {name!r}, which is missing or empty"
                f"{where}; add it (see docs/architecture.md for its columns) or build it with "
                "`incubloc study-area`"
            )
        return self.layers[name]

    def disabled(self) -> dict[str, tuple[str, ...]]:
        """Analyses disabled by missing layers, with the layers they lack."""
        out = {}
        for analysis, needs in ANALYSES.items():
            missing = tuple(n for n in needs if not self.has(n))
            if missing:
                out[analysis] = missing
        return out

    def summary(self) -> str:
        """One line per layer and per disabled analysis."""
        lines = [f"{n}: {len(self.layers[n])} features" for n in LAYERS if self.has(n)]
        for analysis, missing in self.disabled().items():
            lines.append(f"disabled: {analysis} (missing layer {', '.join(missing)})")
        return "\n".join(lines)


_KIND_TYPES = {  # shapely type ids accepted in each kind of layer
    "Polygon": (3, 6),
    "LineString": (1, 2, 5),
    "Point": (0, 4),
}
_MIN_AREA_DEG2 = 1e-12  # about 0.01 m²: below it a polygon is a collapsed sliver
_GEOM_NAMES = ("Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
               "MultiLineString", "MultiPolygon", "GeometryCollection")


def _features(rows: np.ndarray) -> str:
    rows = rows.tolist()
    return ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def _keep_parts(geom: np.ndarray, types: tuple[int, ...]) -> np.ndarray:
    """Union of the parts of each geometry whose type is in ``types`` (empty if none).

    make_valid and mixed collections yield slivers of lower dimension: keep only the
    parts of the layer's own kind.
    """
    parts, idx = shapely.get_parts(geom, return_index=True)
    # Collections nested in collections (rare, but make_valid may produce them).
    while (shapely.get_type_id(parts) == 7).any():
        parts, sub = shapely.get_parts(parts, return_index=True)
        idx = idx[sub]
    keep = np.isin(shapely.get_type_id(parts), types) & ~shapely.is_empty(parts)
    out = np.array([shapely.GeometryCollection()] * len(geom), dtype=object)
    if keep.any():
        grouped = pd.Series(list(parts[keep])).groupby(idx[keep])
        for i, group in grouped:
            out[i] = shapely.union_all(group.to_numpy()) if len(group) > 1 else group.iloc[0]
    return out


def _check_layer(name: str, gdf: gpd.GeoDataFrame, source: str, repairs: list[str]) -> gpd.GeoDataFrame:
    """Validate one layer: CRS, columns, then geometries per the layer's kind.

    Repairs are reported with 1-based feature numbers *of the file* (not of what is
    left after earlier repairs): empty and missing geometries are dropped; invalid
    ones are repaired with make_valid; parts of another kind (points or lines in a
    polygon layer, slivers left by make_valid) are dropped; polygons in a point layer
    are replaced by a representative point; features with nothing left are dropped.
    """
    if crs_is_missing(gdf.crs):
        raise StudyAreaError(
            f"layer {name!r} in {source} has no CRS: set one (EPSG:4326 is expected) and save again"
        )
    missing = [c for c in LAYERS.get(name, ()) if c not in gdf.columns]
    if missing:
        raise StudyAreaError(
            f"layer {name!r} in {source} lacks column(s) {', '.join(missing)}: "
            "see docs/architecture.md for the columns each layer needs"
        )
    # Reproject first: validity is checked on the coordinates that are kept.
    gdf = gdf.to_crs(4326) if gdf.crs.to_epsg() != 4326 else gdf.copy()
    gdf = gdf.reset_index(drop=True)
    rows = np.arange(1, len(gdf) + 1)
    geom = np.asarray(gdf.geometry.values, dtype=object).copy()
    kind = _GEOM_KIND.get(name)
    types = _KIND_TYPES.get(kind, tuple(range(8)))

    empty = shapely.is_missing(geom) | shapely.is_empty(geom)
    if empty.any():
        repairs.append(f"layer {name!r}: dropped {int(empty.sum())} empty geometries "
                       f"(features {_features(rows[empty])})")

    ok = ~empty
    invalid = ok & ~shapely.is_valid(geom)
    if invalid.any():
        geom[invalid] = shapely.make_valid(geom[invalid])
        repairs.append(f"layer {name!r}: repaired {int(invalid.sum())} invalid geometries "
                       f"with make_valid (features {_features(rows[invalid])})")

    type_id = np.full(len(geom), -1)
    type_id[ok] = shapely.get_type_id(geom[ok])
    if kind == "Point":
        areal = ok & np.isin(type_id, (3, 6))
        if areal.any():
            geom[areal] = shapely.point_on_surface(geom[areal])
            type_id[areal] = 0
            repairs.append(f"layer {name!r}: {int(areal.sum())} polygons replaced by a point "
                           f"inside them (features {_features(rows[areal])})")
    foreign = ok & ~np.isin(type_id, types)
    if foreign.any():
        found = sorted({_GEOM_NAMES[t] for t in type_id[foreign] if 0 <= t < len(_GEOM_NAMES)})
        geom[foreign] = _keep_parts(geom[foreign], types)
        repairs.append(f"layer {name!r}: kept only the {kind} parts of {int(foreign.sum())} "
                       f"{'/'.join(found)} features (features {_features(rows[foreign])})")
    collapsed = ok & shapely.is_empty(geom)
    if kind == "Polygon":
        # GEOS accepts rings whose vertices are collinear: valid, but without area.
        collapsed |= ok & (shapely.area(geom) < _MIN_AREA_DEG2)
    if collapsed.any():
        repairs.append(f"layer {name!r}: dropped {int(collapsed.sum())} features with no "
                       f"{kind} left after repair (features {_features(rows[collapsed])})")
    keep = ok & ~collapsed
    out = gdf.loc[keep].copy()
    out = out.set_geometry(gpd.GeoSeries(geom[keep], index=out.index, crs=gdf.crs))
    if len(gdf) and not keep.any():
        log.warning("layer %r in %s: no usable geometry left", name, source)
    return out


def _read_layer(path: Path, name: str) -> gpd.GeoDataFrame:
    """One layer; a geometry GEOS cannot build becomes empty (dropped and reported)."""
    try:
        try:
            gdf = pyogrio.read_dataframe(path, layer=name, on_invalid="ignore")
        except TypeError:  # pyogrio < 0.8 has no on_invalid
            gdf = gpd.read_file(path, layer=name)
    except Exception as exc:  # GDAL, pyogrio and GEOS errors on corrupt layers
        raise StudyAreaError(f"cannot read layer {name!r} of {path}: {exc}") from None
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise StudyAreaError(f"layer {name!r} of {path} has no geometry: see "
                             "docs/architecture.md for the geometry of each layer")
    return gdf


def load_study_area(path: str | os.PathLike, *, layers: list[str] | None = None) -> StudyArea:
    """Read a study-area GeoPackage.

    Parameters
    ----------
    path : path-like
        The GeoPackage.
    layers : list of str, optional
        Read only these layers (default: every known layer present).

    Returns
    -------
    StudyArea

    Raises
    ------
    StudyAreaError
        If the file does not exist or is not a GeoPackage, or a layer lacks a CRS or a
        required column.

    Examples
    --------
    >>> from incubloc.datasets import nanjing_study_area_path
    >>> sa = load_study_area(nanjing_study_area_path())
    >>> sa.has("rings")
    True
    """
    path = Path(path)
    if not path.exists():
        raise StudyAreaError(f"study area {path} does not exist: give the path of a GeoPackage")
    try:
        present = {row[0] for row in pyogrio.list_layers(path)}
    except Exception as exc:  # pyogrio raises several DataSourceError types
        raise StudyAreaError(f"cannot open study area {path}: {exc}; is it a GeoPackage?") from exc
    wanted = layers if layers is not None else list(LAYERS)
    unknown = sorted(present - set(LAYERS))
    if unknown:
        log.info("study area %s: ignoring unknown layers %s", path, unknown)
    requested_unknown = sorted(set(wanted) - set(LAYERS))
    if requested_unknown:
        raise StudyAreaError(
            f"unknown study-area layer(s) {', '.join(requested_unknown)} requested from {path}: "
            f"the layers are {', '.join(LAYERS)}"
        )
    if present and not present & set(LAYERS):
        raise StudyAreaError(
            f"study area {path} has none of the study-area layers (its layers: "
            f"{', '.join(sorted(present))}): rename them to {', '.join(LAYERS)} "
            "(see docs/architecture.md) or build the file with `incubloc study-area`"
        )
    out: dict[str, gpd.GeoDataFrame] = {}
    repairs: list[str] = []
    for name in wanted:
        if name not in present:
            continue
        out[name] = _check_layer(name, _read_layer(path, name), str(path), repairs)
    for msg in repairs:
        log.warning("%s: %s", path, msg)
    sa = StudyArea(out, str(path), repairs)
    for analysis, missing in sa.disabled().items():
        log.info("study area %s: %s disabled (missing layer %s)", path, analysis, ", ".join(missing))
    return sa


def write_study_area(sa: StudyArea, path: str | os.PathLike) -> Path:
    """Write every layer of ``sa`` to a new GeoPackage at ``path`` atomically.

    Examples
    --------
    >>> import tempfile, os
    >>> from shapely.geometry import box
    >>> z = gpd.GeoDataFrame({"zone": ["north"]}, geometry=[box(0, 0, 1, 1)], crs=4326)
    >>> p = write_study_area(StudyArea({"zones": z}), os.path.join(tempfile.mkdtemp(), "a.gpkg"))
    >>> load_study_area(p).has("zones")
    True
    """
    from incubloc.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        for name, gdf in sa.layers.items():
            gdf.to_file(tmp, layer=name, driver="GPKG")
    return path
