"""The interactive map of a study: one HTML page that works offline.

:func:`write_interactive_map` writes ``interactive.html``: a Leaflet map with
toggleable layers — the incubators coloured by level, ring, relation or layout (a
switch between them) with a popup per incubator, the city boundaries, the ring
systems, the host spaces, every categorical local-statistics column of the study's
grids and district units (LISA clusters, Gi* bins), and the kernel density surface as
an image overlay.

The page is self-contained: Leaflet's script and style sheet (from the
``xstatic-leaflet`` package) and the data are inlined, and a Content-Security-Policy
forbids every request except to the basemap's tile host. Without a basemap (the
default) nothing is requested from anywhere. A basemap is an XYZ tile URL
(``[report] basemap``); AMap / Tencent tiles are in GCJ-02, so every coordinate drawn
over them is shifted from WGS84 to GCJ-02 (:func:`incubloc.coords.wgs84_to_gcj02`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from incubloc.errors import ConfigError

__all__ = [
    "BASEMAP_COORDS",
    "INCUBATOR_CLASSES",
    "LOCAL_COLUMNS",
    "POPUP_FIELDS",
    "check_basemap",
    "config_options",
    "leaflet_assets",
    "leaflet_dir",
    "map_data",
    "render_interactive_map",
    "tile_coords",
    "write_interactive_map",
]

log = logging.getLogger(__name__)

#: The incubator classes the map can colour by, in the order of the switch.
INCUBATOR_CLASSES = ("level", "ring", "relation", "layout")
#: Columns shown in an incubator's popup.
POPUP_FIELDS = ("id", "name", "level", "city", "ring", "relation", "layout", "reason")
#: Categorical local-statistics columns drawn from grids and district units, in order
#: of preference; ``hotspot`` (hot / cold / ns) is drawn only when ``gi_bin`` is absent.
LOCAL_COLUMNS = ("lisa_cluster", "gi_bin", "hotspot")
#: Coordinate systems of tile services; ``auto`` reads it from the tile host.
BASEMAP_COORDS = ("auto", "wgs84", "gcj02")

_NOT_SIGNIFICANT = {"ns", "", "nan", "None", "not_significant"}
_GCJ_HOSTS = ("autonavi.com", "amap.com", "gtimg.com", "map.qq.com", "tencent")
_BD_HOSTS = ("baidu.com", "bdimg.com", "bdstatic.com")
_GI_COLOURS = {"hot_99": "#b2182b", "hot_95": "#ef8a62", "hot_90": "#fddbc7",
               "cold_90": "#d1e5f0", "cold_95": "#67a9cf", "cold_99": "#2166ac",
               "ns": "#f0f0f0"}
_GI_LABELS = {"hot_99": "Hot spot 99% 热点", "hot_95": "Hot spot 95% 热点",
              "hot_90": "Hot spot 90% 热点", "cold_90": "Cold spot 90% 冷点",
              "cold_95": "Cold spot 95% 冷点", "cold_99": "Cold spot 99% 冷点",
              "ns": "Not significant 不显著"}
_SPARE = ("#8dd3c7", "#bebada", "#80b1d3", "#fccde5", "#b3de69", "#d9d9d9", "#bc80bd")
_UNKNOWN = "#9e9e9e"
_CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")
_LAYER_COLOURS = {"cities": "#555555", "districts": "#999999", "hosts": "#6a3d9a"}


# ------------------------------------------------------------------ basemap
def check_basemap(url: str | None, *, where: str = "[report] basemap") -> str | None:
    """Validate an XYZ tile URL; ``None`` or ``""`` means no basemap.

    Examples
    --------
    >>> check_basemap("https://tile.example.org/{z}/{x}/{y}.png")
    'https://tile.example.org/{z}/{x}/{y}.png'
    >>> check_basemap("tiles.png")
    Traceback (most recent call last):
    ...
    incubloc.errors.ConfigError: [report] basemap = 'tiles.png' is not a tile URL: ...
    """
    if url is None or url == "":
        return None
    if not isinstance(url, str) or not re.match(r"^https?://[^/]+/", url) or not all(
        k in url for k in ("{z}", "{x}", "{y}")
    ):
        raise ConfigError(
            f"{where} = {url!r} is not a tile URL: give an http(s) XYZ URL with {{z}}, {{x}} "
            "and {y}, e.g. 'https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}"
            "&z={z}', or leave it unset for a map without basemap"
        )
    host = url.split("/")[2].lower()
    if any(h in host for h in _BD_HOSTS):
        raise ConfigError(
            f"{where}: Baidu tiles use BD-09 and their own tile grid, which the map cannot "
            "draw; use an AMap, Tencent or Tianditu tile URL instead"
        )
    return url


def tile_coords(url: str | None, coords: str = "auto") -> str:
    """The coordinate system a tile service draws in: ``"wgs84"`` or ``"gcj02"``.

    ``coords = "auto"`` reads it from the tile host (AMap and Tencent are GCJ-02;
    Tianditu, OpenStreetMap and others WGS84 / CGCS2000, equal at map scale).

    Examples
    --------
    >>> tile_coords("https://webrd01.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}")
    'gcj02'
    >>> tile_coords("https://t0.tianditu.gov.cn/vec_w/wmts?x={x}&y={y}&z={z}")
    'wgs84'
    >>> tile_coords(None)
    'wgs84'
    """
    if coords not in BASEMAP_COORDS:
        raise ConfigError(f"[report] basemap_coords = {coords!r} is not one of "
                          f"{', '.join(BASEMAP_COORDS)}")
    if not url:
        return "wgs84"
    if coords != "auto":
        return coords
    host = url.split("/")[2].lower() if url.count("/") >= 2 else ""
    return "gcj02" if any(h in host for h in _GCJ_HOSTS) else "wgs84"


def _csp_source(url: str) -> str:
    """The CSP source that admits a tile URL's host (``{s}`` becomes ``*``)."""
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0].split("?", 1)[0]
    labels = host.split(".")
    if "{" in labels[0]:
        labels[0] = "*"
    if any("{" in lab for lab in labels):
        return f"{scheme}:"
    return f"{scheme}://{'.'.join(labels)}"


def config_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`write_interactive_map` from a resolved configuration.

    Examples
    --------
    >>> config_options({"report": {"basemap": None, "basemap_coords": "auto"}})
    {'basemap': None, 'basemap_coords': 'auto', 'subdomains': None, 'attribution': None}
    """
    rep = config.get("report") or {}
    return {"basemap": rep.get("basemap"), "basemap_coords": rep.get("basemap_coords") or "auto",
            "subdomains": rep.get("basemap_subdomains"),
            "attribution": rep.get("basemap_attribution")}


# ------------------------------------------------------------------ Leaflet
def leaflet_dir() -> Path:
    """The folder with ``leaflet.js`` and ``leaflet.css``.

    From the ``xstatic-leaflet`` package (a dependency), else Debian's ``libjs-leaflet``
    (installed with QGIS).

    Raises
    ------
    ImportError
        When neither is installed.
    """
    candidates: list[Path] = []
    try:
        from xstatic.pkg import leaflet as xs

        candidates.append(Path(xs.BASE_DIR))
    except ImportError:
        from importlib import metadata

        try:  # the namespace package can be hidden by another ``xstatic`` on the path
            dist = metadata.distribution("XStatic-Leaflet")
            candidates.append(Path(str(dist.locate_file("xstatic/pkg/leaflet/data"))))
        except metadata.PackageNotFoundError:
            pass
    candidates.append(Path("/usr/share/javascript/leaflet"))
    for base in candidates:
        if (base / "leaflet.js").is_file() and (base / "leaflet.css").is_file():
            return base
    raise ImportError(
        "the interactive map needs Leaflet from the xstatic-leaflet package: "
        'pip install xstatic-leaflet (a dependency of incubloc: pip install "incubloc")'
    )


def leaflet_assets() -> tuple[str, str]:
    """Leaflet's minified script and its style sheet, ready to inline.

    The style sheet's images are turned into data URIs and the source-map comment is
    dropped, so the inlined files make no request.

    Returns
    -------
    (str, str)
        JavaScript and CSS.

    Examples
    --------
    >>> js, css = leaflet_assets()
    >>> "sourceMappingURL" in js + css, "url(images/" in css
    (False, False)
    """
    base = leaflet_dir()
    name = "leaflet.min.js" if (base / "leaflet.min.js").is_file() else "leaflet.js"
    js = (base / name).read_text(encoding="utf-8")
    js = re.sub(r"//# sourceMappingURL=\S*\s*$", "", js)
    css = (base / "leaflet.css").read_text(encoding="utf-8")
    css = re.sub(r"/\*# sourceMappingURL=[^*]*\*/", "", css)

    def inline(m: re.Match) -> str:
        img = base / "images" / m.group(1)
        if not img.is_file():
            return "none"
        return "url(data:image/png;base64," + base64.b64encode(img.read_bytes()).decode() + ")"

    css = re.sub(r"url\(\s*['\"]?images/([\w.-]+)['\"]?\s*\)", inline, css)
    return js, css


# ------------------------------------------------------------------ data
def _palette(values: pd.Series, known: Mapping[str, str]) -> dict[str, str]:
    """Class → colour: known classes in their order, then the others."""
    present = [str(v) for v in pd.unique(values.dropna().astype(str))]
    out = {k: c for k, c in known.items() if k in present}
    spare = iter(_SPARE * (1 + len(present) // len(_SPARE)))
    for v in sorted(set(present) - set(out)):
        out[v] = _UNKNOWN if v in ("unclassified", "None", "nan") else next(spare)
    return out


def _labels(kind: str, classes: Mapping[str, str]) -> dict[str, str]:
    from incubloc.shells.plot import LABELS

    known = LABELS.get(kind, {}) if kind != "gi_bin" else _GI_LABELS
    return {k: known.get(k, k) for k in classes}


def _known_colours(kind: str) -> dict[str, str]:
    from incubloc.shells.plot import COLOURS

    if kind == "gi_bin":
        return {**_GI_COLOURS, **COLOURS.get("gi_bin", {})}
    return dict(COLOURS.get(kind, {}))


def _shift_geoms(geoms: np.ndarray, coords: str) -> np.ndarray:
    """Shift EPSG:4326 geometries to GCJ-02 when the basemap needs it; round to 1e-6°."""
    import shapely

    from incubloc.coords import wgs84_to_gcj02

    def fn(xy: np.ndarray) -> np.ndarray:
        if coords == "gcj02" and len(xy):
            lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
            xy = np.column_stack([lon, lat])
        return np.round(xy, 6)  # ~0.1 m: well below screen resolution

    return shapely.transform(geoms, fn)


def _polygons(gdf: Any, *, simplify_m: float, coords: str) -> Any:
    """Simplified (in a metric CRS), EPSG:4326, shifted and rounded polygons."""
    from incubloc.coords import metric_crs

    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.empty:
        return gdf
    if gdf.crs is None:
        gdf = gdf.set_crs(4326)
    metric = gdf if gdf.crs.is_projected else gdf.to_crs(metric_crs(gdf.to_crs(4326)))
    geom = metric.geometry.simplify(simplify_m, preserve_topology=True) if simplify_m > 0 \
        else metric.geometry
    geom = geom.to_crs(4326)
    out = gdf.drop(columns=gdf.geometry.name).copy()
    out["geometry"] = _shift_geoms(geom.to_numpy(), coords)
    return out


def _plain(v: Any) -> Any:
    """A JSON scalar: NaN, NA and None become None, floats keep 4 significant digits."""
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or (np.isscalar(v) and pd.isna(v)) or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float):
        return float(f"{v:.4g}")
    if isinstance(v, bool | int | str):
        return v
    return str(v)


def _features(gdf: Any, props: list[str], cls: str | None = None) -> list[dict[str, Any]]:
    """GeoJSON features with properties ``p`` (popup rows) and ``c`` (class)."""
    import shapely

    geoms = shapely.to_geojson(gdf.geometry.to_numpy())
    cols = [c for c in props if c in gdf.columns]
    rows = gdf[cols].to_numpy(dtype=object) if cols else np.empty((len(gdf), 0), dtype=object)
    classes = gdf[cls].astype(str).to_numpy() if cls else [None] * len(gdf)
    return [
        {"type": "Feature", "geometry": json.loads(g),
         "properties": {"c": c, "p": [[k, _plain(v)] for k, v in zip(cols, row, strict=True)
                                      if _plain(v) is not None]}}
        for g, row, c in zip(geoms, rows, classes, strict=True)
    ]


def _local_layers(study: Any) -> list[tuple[str, Any]]:
    """Every (name, GeoDataFrame) of the study with local-statistics classes."""
    import geopandas as gpd

    found: list[tuple[str, Any]] = []
    for source in (getattr(study, "grids", None) or {}, getattr(study, "results", None) or {}):
        for name, gdf in source.items():
            if isinstance(gdf, gpd.GeoDataFrame) and any(c in gdf for c in LOCAL_COLUMNS):
                found.append((str(name), gdf))
    return found


def _local_columns(gdf: Any) -> list[str]:
    cols = [c for c in LOCAL_COLUMNS if c in gdf.columns]
    if "gi_bin" in cols and "hotspot" in cols:
        cols.remove("hotspot")
    return cols


def _apply(t: Any, col: float, row: float) -> tuple[float, float]:
    """An affine transform applied to (col, row), written out (no operator deprecations)."""
    return t.a * col + t.b * row + t.c, t.d * col + t.e * row + t.f


def _kde_overlay(study: Any, coords: str) -> dict[str, Any] | None:
    """The density surface warped to Web Mercator as a PNG data URI with its bounds."""
    surfaces = getattr(study, "surfaces", None) or {}
    surf = surfaces.get("all")
    if surf is None or surf.crs is None:
        return None
    from matplotlib import colormaps
    from PIL import Image
    from pyproj import Transformer
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    src = np.asarray(surf.masked(), dtype="float64")
    h, w = src.shape
    left, top = _apply(surf.transform, 0, 0)
    right, bottom = _apply(surf.transform, w, h)
    with warnings.catch_warnings():  # rasterio's own use of affine's `*` operator
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        dst_t, dw, dh = calculate_default_transform(surf.crs, "EPSG:3857", w, h, left=left,
                                                    bottom=bottom, right=right, top=top)
    dst = np.full((dh, dw), np.nan)
    reproject(src, dst, src_transform=surf.transform, src_crs=surf.crs, src_nodata=np.nan,
              dst_transform=dst_t, dst_crs="EPSG:3857", dst_nodata=np.nan,
              resampling=Resampling.bilinear)
    vmax = float(np.nanmax(dst)) if np.isfinite(dst).any() else 0.0
    if vmax <= 0:
        return None
    # Square-root stretch: the surface spans orders of magnitude between core and edge.
    z = np.sqrt(np.where(np.isfinite(dst), np.clip(dst, 0, None) / vmax, 0.0))
    # bytes=True: the colour table in bytes, then looked up (the same bytes as the
    # float RGBA times 255, without a float image eight times the size)
    rgba = colormaps["YlOrRd"](z, bytes=True)
    rgba[..., 3] = np.where(z > 0.1, (60 + 170 * z).astype(np.uint8), 0)
    buf = io.BytesIO()
    # zlib level 3, as the report's figures: the same pixels, a fraction of the time
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=3)
    x0, y1 = _apply(dst_t, 0, 0)
    x1, y0 = _apply(dst_t, dw, dh)
    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    (w_lon, e_lon), (s_lat, n_lat) = to_ll.transform([x0, x1], [y0, y1])
    if coords == "gcj02":
        from incubloc.coords import wgs84_to_gcj02

        # The GCJ-02 offset varies by metres across a city region: one shift suffices.
        cx, cy = (w_lon + e_lon) / 2, (s_lat + n_lat) / 2
        gx, gy = wgs84_to_gcj02(cx, cy)
        dx, dy = float(gx) - cx, float(gy) - cy
        w_lon, e_lon, s_lat, n_lat = w_lon + dx, e_lon + dx, s_lat + dy, n_lat + dy
    return {
        "name": "Kernel density 核密度",
        "src": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"),
        "bounds": [[round(s_lat, 6), round(w_lon, 6)], [round(n_lat, 6), round(e_lon, 6)]],
        "legend": {"max": float(f"{vmax:.4g}"), "units": str(getattr(surf, "units", "")),
                   "bandwidth_m": float(f"{surf.bandwidth_m:.4g}")},
    }


def map_data(
    study: Any,
    *,
    basemap: str | None = None,
    basemap_coords: str = "auto",
    simplify_m: float = 20.0,
    max_cells: int = 5000,
) -> dict[str, Any]:
    """Everything the interactive map draws, as JSON-ready data.

    Parameters
    ----------
    study : Study
        From :func:`incubloc.workflow.run_study`.
    basemap : str, optional
        XYZ tile URL; its coordinate system decides whether coordinates are shifted.
    basemap_coords : {"auto", "wgs84", "gcj02"}
        The tile service's coordinate system (``auto``: from its host).
    simplify_m : float
        Polygon simplification tolerance in metres (about a pixel at street zoom).
    max_cells : int
        At most this many cells per local-statistics layer: only cells with a
        significant class are drawn, and when there are more, only those holding
        incubators.

    Returns
    -------
    dict
        ``incubators`` (``columns`` and one row per incubator: lon, lat and the popup
        fields), ``classes`` (per class kind: class → colour and label), ``layers``
        (GeoJSON overlays with legend), ``kde`` (image overlay or None), ``basemap``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from types import SimpleNamespace
    >>> inc = gpd.GeoDataFrame({"id": ["a"], "name": ["孵化器"], "level": ["national"]},
    ...                        geometry=gpd.points_from_xy([118.8], [32.05]), crs=4326)
    >>> d = map_data(SimpleNamespace(incubators=inc))
    >>> d["incubators"]["rows"][0][:4]
    [118.8, 32.05, 'a', '孵化器']
    """
    import geopandas as gpd

    basemap = check_basemap(basemap)
    coords = tile_coords(basemap, basemap_coords)
    inc = study.incubators
    if inc.crs is not None and inc.crs.to_epsg() != 4326:
        inc = inc.to_crs(4326)
    pts = inc.geometry
    if len(pts) and not (pts.geom_type == "Point").all():
        pts = pts.representative_point()
    xy = _shift_geoms(np.asarray(pts.to_numpy()), coords)
    import shapely

    lon, lat = shapely.get_x(xy), shapely.get_y(xy)
    fields = [f for f in POPUP_FIELDS if f in inc.columns]
    cols = ["lon", "lat", *fields]
    table = pd.DataFrame({"lon": lon, "lat": lat})
    for f in fields:
        table[f] = inc[f].astype(object).where(inc[f].notna(), None).to_numpy()
    # An incubator without a location is still listed (popup data), just not drawn.
    rows = [[None if np.isnan(x) else x, None if np.isnan(y) else y, *(_plain(v) for v in r)]
            for x, y, *r in table.itertuples(index=False, name=None)]

    classes: dict[str, Any] = {}
    for kind in INCUBATOR_CLASSES:
        if kind in inc.columns:
            pal = _palette(inc[kind].fillna("unclassified"), _known_colours(kind))
            classes[kind] = {"colours": pal, "labels": _labels(kind, pal)}

    layers: list[dict[str, Any]] = []
    sa = getattr(study, "study_area", None)
    get = getattr(sa, "get", None)

    def area_layer(name: str) -> Any:
        layer = get(name) if get is not None else None
        return layer if isinstance(layer, gpd.GeoDataFrame) and len(layer) else None

    if (cities := area_layer("cities")) is not None:
        g = _polygons(cities, simplify_m=simplify_m * 2, coords=coords)
        layers.append({"id": "cities", "name": "City boundaries 市界", "on": True,
                       "style": {"color": _LAYER_COLOURS["cities"], "weight": 1.2, "fill": False},
                       "features": _features(g, ["city", "city_zh", "province"])})
    if (districts := area_layer("districts")) is not None:
        g = _polygons(districts, simplify_m=simplify_m * 2, coords=coords)
        layers.append({"id": "districts", "name": "Districts 区县", "on": False,
                       "style": {"color": _LAYER_COLOURS["districts"], "weight": 0.6,
                                 "fill": False, "dashArray": "3 3"},
                       "features": _features(g, ["district", "district_zh", "city", "kind"])})
    if (rings := area_layer("rings")) is not None and "ring" in rings:
        g = _polygons(rings, simplify_m=simplify_m, coords=coords)
        pal = _palette(g["ring"], _known_colours("ring"))
        layers.append({"id": "rings", "name": "Rings 圈层", "on": True,
                       "style": {"weight": 0.8, "fillOpacity": 0.25}, "colours": pal,
                       "labels": _labels("ring", pal),
                       "features": _features(g, ["city", "ring", "method"], "ring")})
    if (hosts := area_layer("hosts")) is not None:
        g = _polygons(hosts, simplify_m=simplify_m / 2, coords=coords)
        layers.append({"id": "hosts", "name": "Host spaces 依托空间", "on": True,
                       "style": {"color": _LAYER_COLOURS["hosts"], "weight": 1.2,
                                 "fillColor": _LAYER_COLOURS["hosts"], "fillOpacity": 0.15},
                       "features": _features(g, ["host_id", "name", "kind"])})

    for name, gdf in _local_layers(study):
        for col in _local_columns(gdf):
            kind = {"lisa_cluster": "lisa"}.get(col, col)
            value = gdf[col].astype(str)
            keep = ~value.isin(_NOT_SIGNIFICANT)
            n_sig = int(keep.sum())
            if n_sig > max_cells and "count" in gdf:
                keep &= gdf["count"].fillna(0).to_numpy() > 0
            sel = gdf[keep.to_numpy()]
            if len(sel) > max_cells:
                sel = sel.iloc[:max_cells]
            omitted = n_sig - len(sel)
            g = _polygons(sel, simplify_m=simplify_m, coords=coords)
            pal = _palette(gdf[col].astype(str), _known_colours(kind))
            pal = {k: v for k, v in pal.items() if k not in _NOT_SIGNIFICANT}
            props = [c for c in ("cell_id", "district", "district_zh", "name", "count",
                                 "density", "value", col, "lisa_I", "lisa_p", "gi_z", "gi_p")
                     if c in g.columns]
            label = {"lisa_cluster": "LISA clusters 局部莫兰", "gi_bin": "Gi* hot spots 热点",
                     "hotspot": "Gi* hot spots 热点"}[col]
            layers.append({
                "id": f"{name}:{col}", "name": f"{label} — {name}", "on": False,
                "style": {"weight": 0.3, "color": "#666666", "fillOpacity": 0.6},
                "colours": pal, "labels": _labels(kind, pal),
                "note": (f"{omitted} significant cells without incubators not drawn"
                         if omitted else ""),
                "features": _features(g, props, col),
            })

    bm = None
    if basemap:
        bm = {"url": basemap, "coords": coords}
    return {"incubators": {"columns": cols, "rows": rows}, "classes": classes,
            "layers": layers, "kde": _kde_overlay(study, coords), "basemap": bm}


# ------------------------------------------------------------------ page
_CSS = """
html,body{margin:0;height:100%;font:13px/1.4 'IncublocCJK',system-ui,-apple-system,"Segoe UI",
"Noto Sans CJK SC","Noto Sans SC","Microsoft YaHei","PingFang SC",sans-serif}
#map{position:absolute;inset:0;background:#f4f1ea}
.leaflet-container{font-family:'IncublocCJK',"Helvetica Neue",Arial,Helvetica,sans-serif}
.ib-box{background:#fff;padding:6px 8px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);
max-height:60vh;overflow:auto}
.ib-box h4{margin:0 0 4px;font-size:13px}
.ib-sw{display:inline-block;width:11px;height:11px;margin-right:5px;vertical-align:-1px;
border:1px solid #555}
.ib-dot{border-radius:50%}
.ib-note{color:#666;font-size:11px;max-width:220px}
.ib-pop th{text-align:left;padding-right:8px;color:#555;font-weight:normal;vertical-align:top}
.ib-pop td{max-width:260px}
.ib-title{font-weight:bold}
"""

_JS = r"""
(function(){
"use strict";
var D = JSON.parse(document.getElementById('incubloc-data').textContent);
function esc(s){return String(s).replace(/[&<>"']/g,function(c){return {'&':'&amp;','<':'&lt;',
  '>':'&gt;','"':'&quot;',"'":'&#39;'}[c];});}
function table(pairs){return '<table class="ib-pop">'+pairs.map(function(p){
  return '<tr><th>'+esc(p[0])+'</th><td>'+esc(p[1])+'</td></tr>';}).join('')+'</table>';}
var map = L.map('map',{zoomSnap:0.25,attributionControl:false});
L.control.attribution({prefix:false}).addTo(map).addAttribution('incubloc');
L.control.scale({imperial:false,maxWidth:160}).addTo(map);
var overlays = {}, meta = {}, bounds = L.latLngBounds([]);
if (D.basemap){
  var opts = {maxZoom:18};
  if (D.basemap.subdomains) opts.subdomains = D.basemap.subdomains;
  if (D.basemap.attribution) opts.attribution = esc(D.basemap.attribution);
  var tiles = L.tileLayer(D.basemap.url, opts).addTo(map);
  overlays['Basemap 底图'] = tiles;
}
if (D.kde){
  map.createPane('kde').style.zIndex = 350;  // under the vector layers
  var kde = L.imageOverlay(D.kde.src, D.kde.bounds, {opacity:0.8, pane:'kde'});
  overlays[D.kde.name] = kde; meta[D.kde.name] = {kde:D.kde};
}
D.layers.forEach(function(ly){
  var st = ly.style || {};
  var g = L.geoJSON({type:'FeatureCollection',features:ly.features},{
    style:function(f){var s = L.extend({}, st);
      if (ly.colours){var c = ly.colours[f.properties.c] || '#9e9e9e';
        s.fillColor = c; if (!s.color) s.color = c;}
      return s;},
    onEachFeature:function(f,l){l.bindPopup(function(){
      return '<div class="ib-title">'+esc(ly.name)+'</div>'+table(f.properties.p);});}
  });
  overlays[ly.name] = g; meta[ly.name] = ly;
  if (ly.on) g.addTo(map);
  if (ly.id === 'cities' || ly.id === 'rings') { var b = g.getBounds(); if (b.isValid()) bounds.extend(b); }
});
var cols = D.incubators.columns, rows = D.incubators.rows, idx = {};
cols.forEach(function(c,i){idx[c]=i;});
var kinds = Object.keys(D.classes), current = kinds.length ? kinds[0] : null;
var incubators = L.featureGroup(), markers = [];
rows.forEach(function(r){
  if (r[idx.lat] === null || r[idx.lon] === null) return;
  var m = L.circleMarker([r[idx.lat], r[idx.lon]],
    {radius:5, weight:0.8, color:'#222', fillOpacity:0.9, fillColor:'#9e9e9e'});
  m.bindPopup(function(){
    var pairs = []; cols.forEach(function(c,i){ if (i > 1 && r[i] !== null)
      pairs.push([c, (D.classes[c] && D.classes[c].labels[r[i]]) || r[i]]); });
    return '<div class="ib-title">'+esc(idx.name !== undefined ? r[idx.name] : '')+'</div>'+table(pairs);});
  m.incublocRow = r; markers.push(m); incubators.addLayer(m);
});
function colourBy(kind){
  current = kind;
  var pal = kind ? D.classes[kind].colours : {};
  markers.forEach(function(m){var v = kind ? m.incublocRow[idx[kind]] : null;
    m.setStyle({fillColor: pal[v === null ? 'unclassified' : v] || '#9e9e9e'});});
  document.querySelectorAll('input[name=ib-colour]').forEach(function(i){i.checked = i.value === kind;});
  legend.update();
}
var incName = 'Incubators 孵化器';
overlays[incName] = incubators; incubators.addTo(map);
if (markers.length) bounds.extend(incubators.getBounds());
if (bounds.isValid()) map.fitBounds(bounds.pad(0.02)); else map.setView([32.05, 118.8], 8);
L.control.layers(null, overlays, {collapsed:false, position:'topright'}).addTo(map);

var Switch = L.Control.extend({onAdd:function(){
  var d = L.DomUtil.create('div','ib-box');
  d.innerHTML = '<h4>Colour incubators by 分类</h4>' + kinds.map(function(k){
    return '<label><input type="radio" name="ib-colour" value="'+esc(k)+'"> '+esc(k)+'</label>';}).join('<br>');
  L.DomEvent.disableClickPropagation(d);
  d.addEventListener('change', function(e){ if (e.target.name === 'ib-colour') colourBy(e.target.value); });
  return d;}});
var Legend = L.Control.extend({onAdd:function(){
  this._div = L.DomUtil.create('div','ib-box'); L.DomEvent.disableScrollPropagation(this._div);
  return this._div;},
  update:function(){
    var h = [];
    function block(title, colours, labels, dot){
      h.push('<h4>'+esc(title)+'</h4>');
      Object.keys(colours).forEach(function(k){h.push('<div><span class="ib-sw'+(dot?' ib-dot':'')+
        '" style="background:'+esc(colours[k])+'"></span>'+esc((labels && labels[k]) || k)+'</div>');});
    }
    if (current && map.hasLayer(incubators)) block(incName+': '+current, D.classes[current].colours,
      D.classes[current].labels, true);
    Object.keys(meta).forEach(function(name){
      var m = meta[name]; if (!map.hasLayer(overlays[name])) return;
      if (m.colours) { block(name, m.colours, m.labels, false);
        if (m.note) h.push('<div class="ib-note">'+esc(m.note)+'</div>'); }
      if (m.kde) h.push('<h4>'+esc(name)+'</h4><div class="ib-note">0 – '+esc(m.kde.legend.max)+' '+
        esc(m.kde.legend.units)+'; bandwidth '+esc(m.kde.legend.bandwidth_m)+' m</div>');
    });
    this._div.innerHTML = h.join('');
    this._div.style.display = h.length ? '' : 'none';
  }});
new Switch({position:'topleft'}).addTo(map);
var legend = new Legend({position:'bottomright'}).addTo(map);
map.on('overlayadd overlayremove', function(){legend.update();});
colourBy(current);
window.incubloc = {map:map, overlays:overlays, colourBy:colourBy, markers:markers};
})();
"""


def _cjk_font_css(text: str) -> str:
    """An @font-face with the CJK glyphs of ``text`` (the page needs no system CJK font)."""
    from incubloc._fonts import subset_font

    chars = "".join(sorted(set(_CJK.findall(text))))
    data = subset_font(chars) if chars else None
    if not data:
        return ""
    kind = "woff2" if data[:4] == b"wOF2" else "woff"
    return ("@font-face{font-family:'IncublocCJK';src:url(data:font/" + kind + ";base64,"
            + base64.b64encode(data).decode("ascii") + f") format('{kind}');"
            "unicode-range:U+2E80-9FFF,U+F900-FAFF,U+FE30-FE4F,U+FF00-FFEF;}")


def render_interactive_map(
    study: Any,
    *,
    basemap: str | None = None,
    basemap_coords: str = "auto",
    subdomains: str | None = None,
    attribution: str | None = None,
    title: str = "incubloc interactive map 孵化器交互地图",
    simplify_m: float = 20.0,
    max_cells: int = 5000,
) -> str:
    """The interactive map as one self-contained HTML page.

    Parameters are those of :func:`write_interactive_map`.

    Returns
    -------
    str
        HTML with Leaflet, the style sheet and the data inlined; its
        Content-Security-Policy admits no request except tiles from the basemap host.
    """
    data = map_data(study, basemap=basemap, basemap_coords=basemap_coords,
                    simplify_m=simplify_m, max_cells=max_cells)
    if data["basemap"] is not None:
        if subdomains:
            data["basemap"]["subdomains"] = subdomains
        if attribution:
            data["basemap"]["attribution"] = attribution
    js, css = leaflet_assets()
    img_src = "data: blob:"
    if data["basemap"] is not None:
        img_src += " " + _csp_source(data["basemap"]["url"])
    csp = (f"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
           f"img-src {img_src}; font-src data:")
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    payload = payload.replace("</", "<\\/")  # never closes the script element
    font_css = _cjk_font_css(payload + title + _JS)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{css}</style><style>{font_css}{_CSS}</style></head><body>"
        "<div id='map'></div>\n"
        f"<script id='incubloc-data' type='application/json'>{payload}</script>\n"
        f"<script>{js}</script>\n<script>{_JS}</script>\n</body></html>\n"
    )


def write_interactive_map(
    study: Any,
    path: str | os.PathLike,
    *,
    basemap: str | None = None,
    basemap_coords: str = "auto",
    subdomains: str | None = None,
    attribution: str | None = None,
    simplify_m: float = 20.0,
    max_cells: int = 5000,
) -> Path:
    """Write the study's interactive map (``interactive.html``).

    Parameters
    ----------
    study : Study
        From :func:`incubloc.workflow.run_study`.
    path : path-like
        The HTML file to write.
    basemap : str, optional
        XYZ tile URL (``{z}``, ``{x}``, ``{y}``, optionally ``{s}``), e.g. AMap or
        Tianditu. Default none: the page then requests nothing from anywhere.
    basemap_coords : {"auto", "wgs84", "gcj02"}
        The tiles' coordinate system; ``gcj02`` (``auto`` for AMap / Tencent hosts)
        shifts every drawn coordinate from WGS84 to GCJ-02.
    subdomains : str, optional
        Characters that replace ``{s}`` in the URL (Leaflet's default is ``abc``).
    attribution : str, optional
        Attribution text the tile provider requires.
    simplify_m : float
        Polygon simplification in metres.
    max_cells : int
        At most this many cells per local-statistics layer.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import tempfile, geopandas as gpd
    >>> from types import SimpleNamespace
    >>> inc = gpd.GeoDataFrame({"id": ["a"], "level": ["national"]},
    ...                        geometry=gpd.points_from_xy([118.8], [32.05]), crs=4326)
    >>> p = write_interactive_map(SimpleNamespace(incubators=inc),
    ...                           Path(tempfile.mkdtemp()) / "interactive.html")
    >>> "incubloc-data" in p.read_text(encoding="utf-8")
    True
    """
    from incubloc.io import atomic_path

    page = render_interactive_map(study, basemap=basemap, basemap_coords=basemap_coords,
                                  subdomains=subdomains, attribution=attribution,
                                  simplify_m=simplify_m, max_cells=max_cells)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("wrote %s", path)
    return path
