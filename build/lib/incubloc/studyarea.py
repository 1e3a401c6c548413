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
import pandas as pd
import pyogrio
import shapely

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


def _check_layer(name: str, gdf: gpd.GeoDataFrame, source: str, repairs: list[str]) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        raise StudyAreaError(
            f"layer {name!r} in {source} has no CRS: set one (EPSG:4326 is expected) and save again"
        )
    missing = [c for c in LAYERS.get(name, ()) if c not in gdf.columns]
    if missing:
        raise StudyAreaError(
            f"layer {name!r} in {source} lacks column(s) {', '.join(missing)}: "
            "see docs/architecture.md for the columns each layer needs"
        )
    gdf = gdf.to_crs(4326) if gdf.crs.to_epsg() != 4326 else gdf.copy()
    geom = gdf.geometry.values
    empty = shapely.is_missing(geom) | shapely.is_empty(geom)
    if empty.any():
        rows = (empty.nonzero()[0] + 1).tolist()
        repairs.append(f"layer {name!r}: dropped {len(rows)} empty geometries (features {rows[:10]})")
        gdf = gdf.loc[~empty].copy()
        geom = gdf.geometry.values
    invalid = ~shapely.is_valid(geom)
    if invalid.any():
        rows = (invalid.nonzero()[0] + 1).tolist()
        fixed = shapely.make_valid(geom[invalid])
        if _GEOM_KIND.get(name) == "Polygon":
            # make_valid may return collections with slivers of lower dimension.
            fixed = shapely.get_parts(fixed, return_index=True)
            parts, idx = fixed
            keep = shapely.get_type_id(parts) >= 3
            polys = pd.Series(list(parts[keep])).groupby(idx[keep]).agg(
                lambda s: shapely.union_all(list(s))
            )
            fixed = [polys.get(i, shapely.Polygon()) for i in range(int(invalid.sum()))]
        gdf.loc[invalid, gdf.geometry.name] = fixed
        repairs.append(f"layer {name!r}: repaired {len(rows)} invalid geometries (features {rows[:10]})")
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
    out: dict[str, gpd.GeoDataFrame] = {}
    repairs: list[str] = []
    for name in wanted:
        if name not in present:
            continue
        gdf = gpd.read_file(path, layer=name)
        out[name] = _check_layer(name, gdf, str(path), repairs)
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
