"""Classify incubators on every scale in one call.

:func:`classify` runs the region scale (city, province, settlement, tier, zone), the
concentric-ring scale (ring, per-city ring pattern), the relation to host spaces
(park-in-park / standalone / mixed) and the internal layout (building / park /
mixed). Each scale whose study-area layer is missing is reported as
``unclassified`` with a reason; the others still run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from incubloc.errors import InputError
from incubloc.options import LayoutThresholds, RelationOptions
from incubloc.studyarea import StudyArea
from incubloc.vocabulary import SCALE_COLUMNS, UNCLASSIFIED

__all__ = [
    "OUTPUT_COLUMNS",
    "Classification",
    "classify",
    "n_unclassified",
    "write_classification",
]

log = logging.getLogger(__name__)

#: Columns of the per-incubator output, in order (geometry last).
OUTPUT_COLUMNS = (
    "id", "name", "level", "opened",
    "city", "province", "settlement", "settlement_kind", "tier", "zone",
    "ring", "ring_city",
    "relation", "host_id", "host_kind",
    "layout", "n_sites", "n_buildings", "coverage", "mean_levels", "site_area_m2",
    "floor_area_m2", "declared_relation", "declared_layout",
    "reason",
)


@dataclass
class Classification:
    """The result of :func:`classify`.

    Attributes
    ----------
    incubators : GeoDataFrame
        One row per input incubator, in input order, columns :data:`OUTPUT_COLUMNS`
        (EPSG:4326).
    city_rings : DataFrame
        Per ring system: city, prefecture, ring_pattern, n_rings, n_incubators, form.
    parameters : dict
        The parameters used.
    disabled : dict
        Analyses skipped for lack of a study-area layer, with the layers missing.
    """

    incubators: gpd.GeoDataFrame
    city_rings: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)
    disabled: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Counts per city: total, share, and the classes of each scale."""
        df = self.incubators
        out = df.groupby("city", sort=False).size().rename("n").to_frame()
        out["share"] = out["n"] / max(len(df), 1)
        for col in ("ring", "relation", "layout"):
            if col in df:
                tab = pd.crosstab(df["city"], df[col])
                tab.columns = [f"{col}:{c}" for c in tab.columns]
                out = out.join(tab)
        return out.sort_values("n", ascending=False).fillna(0)

    def to_dict(self) -> dict[str, Any]:
        """Counts of every class, JSON-serialisable."""
        df = self.incubators
        return {
            "n": int(len(df)),
            **{
                col: {str(k): int(v) for k, v in df[col].value_counts(dropna=False).items()}
                for col in ("city", "tier", "zone", "ring", "relation", "layout")
                if col in df
            },
        }

    def _repr_html_(self) -> str:
        return (
            f"<p><b>incubloc classification</b>: {len(self.incubators)} incubators</p>"
            + self.summary().to_html(float_format=lambda v: f"{v:.3g}")
        )


def n_unclassified(incubators: pd.DataFrame) -> int:
    """Incubators unclassified on at least one scale (:data:`~incubloc.vocabulary.SCALE_COLUMNS`).

    The one count the CLI and the QGIS plugin report; absent columns are ignored.

    Examples
    --------
    >>> n_unclassified(pd.DataFrame({"city": ["A", "unclassified"], "ring": ["core", "core"],
    ...                              "layout": ["park", "unclassified"]}))
    1
    """
    cols = [c for c in SCALE_COLUMNS if c in incubators.columns]
    return int((incubators[cols] == UNCLASSIFIED).any(axis=1).sum())


def _merge_reasons(parts: dict[str, pd.Series | None], index: pd.Index) -> pd.Series:
    out = np.full(len(index), "", dtype=object)
    for scale, series in parts.items():
        if series is None:
            continue
        s = series.reindex(index)
        # only the rows with a reason are touched: most rows have none
        rows = np.flatnonzero((s.notna() & s.ne("")).to_numpy())
        if not len(rows):
            continue
        add = (f"{scale}: " + s.iloc[rows].astype(str)).to_numpy(dtype=object)
        cur = out[rows]
        out[rows] = np.where(cur == "", add, cur + "; " + add)
    return pd.Series(out, index=index, dtype=object)


def classify(
    incubators: gpd.GeoDataFrame,
    study_area: StudyArea,
    *,
    sites: gpd.GeoDataFrame | None = None,
    core_city: str | None = None,
    corridor_buffer_m: float | None = None,
    min_share: float = RelationOptions.min_share,
    tolerance_m: float = RelationOptions.tolerance_m,
    layout_thresholds: LayoutThresholds | None = None,
    crs: Any = None,
) -> Classification:
    """Classify every incubator on the region, ring, relation and layout scales.

    Parameters
    ----------
    incubators : GeoDataFrame
        Points, as returned by :func:`incubloc.io.read_incubators`.
    study_area : StudyArea
        The study-area layers.
    sites : GeoDataFrame, optional
        Site polygons / points with ``incubator_id`` (:func:`incubloc.io.read_sites`).
        Incubators without a site are analysed as one point site.
    core_city, corridor_buffer_m :
        Region-scale options (see :func:`incubloc.scales.region.assign_region`).
    min_share, tolerance_m :
        Relation options (see :func:`incubloc.scales.relation.classify_relation`).
    layout_thresholds : incubloc.options.LayoutThresholds, optional
        Layout thresholds; defaults documented there.
    crs : CRS-like, optional
        Metric CRS for the analysis (default: local UTM zone).

    Returns
    -------
    Classification

    Examples
    --------
    >>> from incubloc.datasets import load_example
    >>> ex = load_example("nanjing")
    >>> result = classify(ex.incubators, ex.study_area, sites=ex.sites)
    >>> len(result.incubators) == len(ex.incubators)
    True
    """
    from incubloc.scales import layout as _layout
    from incubloc.scales import region as _region
    from incubloc.scales import relation as _relation
    from incubloc.scales import rings as _rings

    if not isinstance(incubators, gpd.GeoDataFrame):
        raise InputError("incubators must be a GeoDataFrame: read them with incubloc.io.read_incubators")
    if incubators.index.has_duplicates:
        raise InputError("the incubators' index has duplicates: call reset_index(drop=True) first")
    inc = incubators
    index = inc.index
    if layout_thresholds is None:
        layout_thresholds = LayoutThresholds()
    params = {
        "core_city": core_city,
        "corridor_buffer_m": corridor_buffer_m,
        "min_share": min_share,
        "tolerance_m": tolerance_m,
        "layout_thresholds": dict(vars(layout_thresholds)),
        "crs": None if crs is None else str(crs),
    }

    reg = _region.assign_region(inc, study_area, core_city=core_city, corridor_buffer_m=corridor_buffer_m)
    rings = study_area.get("rings")
    if rings is not None:
        ring = _rings.assign_ring(inc, rings)
    else:
        ring = pd.DataFrame(
            {"ring": "unclassified", "ring_city": None, "reason": "no rings layer in the study area"},
            index=index,
        )
    rel = _relation.classify_relation(
        inc, sites, study_area.get("hosts"), min_share=min_share, tolerance_m=tolerance_m, crs=crs
    )
    lay = _layout.classify_layout(
        inc, sites, study_area.get("buildings"), thresholds=layout_thresholds, crs=crs
    )

    out = pd.DataFrame(index=index)
    for col in ("id", "name", "level", "opened"):
        out[col] = inc[col] if col in inc else None
    for frame, cols in (
        (reg, ("city", "province", "settlement", "settlement_kind", "tier", "zone")),
        (ring, ("ring", "ring_city")),
        (rel, ("relation", "host_id", "host_kind")),
        (lay, ("layout", "n_sites", "n_buildings", "coverage", "mean_levels", "site_area_m2")),
    ):
        for col in cols:
            out[col] = frame[col].reindex(index) if col in frame else None
    # Measured site area where geometry allows, else the declared one.
    if "site_area_m2" in inc:
        declared = pd.to_numeric(inc["site_area_m2"], errors="coerce")
        out["site_area_m2"] = pd.to_numeric(out["site_area_m2"], errors="coerce").fillna(declared)
    for col in ("floor_area_m2", "declared_relation", "declared_layout"):
        out[col] = inc[col] if col in inc else None
    out["reason"] = _merge_reasons(
        {
            "region": reg.get("reason"),
            "ring": ring.get("reason"),
            "relation": rel.get("reason"),
            "layout": lay.get("reason"),
        },
        index,
    )
    result = gpd.GeoDataFrame(out, geometry=inc.geometry.values, crs=inc.crs, index=index)
    if rings is not None:
        city_rings = _rings.ring_patterns(result, rings=rings, cities=study_area.get("cities"))
    else:
        city_rings = pd.DataFrame(
            columns=["city", "prefecture", "ring_pattern", "n_rings", "n_incubators", "form"]
        )
    if len(result) != len(incubators):  # pragma: no cover - guarded by construction
        raise AssertionError("classification lost or duplicated incubators")
    return Classification(result, city_rings, params, study_area.disabled())


def write_classification(
    result: Classification,
    path: str | os.PathLike,
    *,
    provenance: dict[str, Any] | None = None,
    rejected: pd.DataFrame | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a :class:`Classification` to a GeoPackage, atomically.

    Layers: ``incubators`` (points, EPSG:4326), ``city_rings`` (no geometry),
    ``provenance`` (one row, the JSON record, no geometry) and, when rows of the
    input were skipped, ``rejected`` (row, id, problem). A path ending in
    ``.parquet`` writes the incubators as GeoParquet (fast for millions of rows; needs
    pyarrow) with the other tables beside it: ``<name>.city_rings.parquet``,
    ``<name>.rejected.parquet`` and ``<name>.provenance.json``.

    Examples
    --------
    >>> import tempfile, os
    >>> from incubloc.datasets import load_example
    >>> ex = load_example("nanjing")
    >>> res = classify(ex.incubators, ex.study_area, sites=ex.sites)
    >>> p = write_classification(res, os.path.join(tempfile.mkdtemp(), "out.gpkg"))
    >>> len(gpd.read_file(p, layer="incubators"))
    200
    """
    import json

    import pyogrio

    from incubloc.io import atomic_path

    path = Path(path)
    if path.suffix.lower() in (".parquet", ".geoparquet"):
        return _write_parquet(result, path, provenance=provenance, rejected=rejected,
                              overwrite=overwrite)
    with atomic_path(path, overwrite=overwrite) as tmp:
        result.incubators.to_file(tmp, layer="incubators", driver="GPKG")
        pyogrio.write_dataframe(
            pd.DataFrame(result.city_rings), tmp, layer="city_rings", driver="GPKG"
        )
        if provenance is not None:
            rec = pd.DataFrame({"record": [json.dumps(provenance, ensure_ascii=False, default=str)]})
            pyogrio.write_dataframe(rec, tmp, layer="provenance", driver="GPKG")
        if rejected is not None and len(rejected):
            table = pd.DataFrame(rejected).astype({"problem": str})
            pyogrio.write_dataframe(table, tmp, layer="rejected", driver="GPKG")
    return path


def _write_parquet(
    result: Classification,
    path: Path,
    *,
    provenance: dict[str, Any] | None,
    rejected: pd.DataFrame | None,
    overwrite: bool,
) -> Path:
    import json

    from incubloc.io import atomic_path

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError(f"writing {path} needs pyarrow: pip install \"incubloc[arrow]\"") from None
    stem = path.with_suffix("")
    with atomic_path(path, overwrite=overwrite) as tmp:
        result.incubators.to_parquet(tmp, index=False)
    with atomic_path(stem.with_suffix(".city_rings.parquet"), overwrite=True) as tmp:
        pd.DataFrame(result.city_rings).to_parquet(tmp, index=False)
    if provenance is not None:
        with atomic_path(stem.with_suffix(".provenance.json"), overwrite=True) as tmp:
            tmp.write_text(json.dumps(provenance, ensure_ascii=False, default=str, indent=1),
                           encoding="utf-8")
    if rejected is not None and len(rejected):
        with atomic_path(stem.with_suffix(".rejected.parquet"), overwrite=True) as tmp:
            pd.DataFrame(rejected).astype({"problem": str}).to_parquet(tmp, index=False)
    return path
