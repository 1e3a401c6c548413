"""Figures and maps of a study, one function per figure.

Every function takes a :class:`incubloc.workflow.Study` (or any object with the
attributes it reads: ``incubators``, ``study_area``, ``tables``, ``tests``, ``grids``,
``results``, ``surfaces``, ``crs``, ``config``) and returns a :class:`matplotlib.figure.Figure`; ``ax`` draws into an
existing Axes instead (multi-panel figures then draw their main panel only). Maps
are drawn in the study's metric CRS (``study.crs``) with a scale bar, a north
arrow, a legend and Chinese place names set in the CJK font of
:mod:`incubloc._fonts`. Each class has one colour in every figure
(:data:`COLOURS`) and one bilingual label (:data:`LABELS`).

A figure whose inputs are missing raises :class:`NoData`; :data:`FIGURES` lists the
figures in report order. Matplotlib is imported inside the functions, so importing
this module does not choose a backend.

Examples
--------
>>> LABELS["relation"]["park_in_park"]
'Park-in-park 园中园型'
>>> [f.name for f in FIGURES][:3]
['counts_by_city', 'circle_map', 'ring_patterns']
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from incubloc import vocabulary

__all__ = [
    "COLOURS",
    "FIGURES",
    "LABELS",
    "FigureSpec",
    "NoData",
    "add_north_arrow",
    "add_scalebar",
    "fig_circle_map",
    "fig_core_rings",
    "fig_counts_by_city",
    "fig_hotspots",
    "fig_hotspots_districts",
    "fig_kde",
    "fig_layout_by_city",
    "fig_layout_map",
    "fig_lisa",
    "fig_lisa_districts",
    "fig_moran_profile",
    "fig_opening_sequence",
    "fig_relation_by_city",
    "fig_relation_map",
    "MAX_RING_PANELS",
    "fig_ring_maps",
    "fig_ring_patterns",
    "fig_ripley",
    "fig_sde",
    "pattern_label",
    "style",
]

log = logging.getLogger(__name__)


class NoData(LookupError):
    """The inputs a figure needs are missing from the study (the figure is skipped)."""


# ------------------------------------------------------------------ colours, labels
#: One colour per class, shared by every figure.
COLOURS: dict[str, dict[str, str]] = {
    **vocabulary.COLOURS,  # level, ring, relation, layout
    "lisa": {"HH": "#d7191c", "HL": "#fdae61", "LH": "#abd9e9", "LL": "#2c7bb6", "ns": "#f0f0f0"},
    "hotspot": {"hot": "#d7191c", "cold": "#2c7bb6", "ns": "#f0f0f0"},
    # ArcGIS Hot Spot Analysis colours: reds hot, blues cold, by confidence.
    "gi_bin": {"hot_99": "#d62f27", "hot_95": "#ed7551", "hot_90": "#fab984",
               "ns": "#f0f0f0", "cold_90": "#c0ccbe", "cold_95": "#849eba", "cold_99": "#4575b5"},
}

#: Bilingual legend labels (English term, then the paper's Chinese term).
LABELS: dict[str, dict[str, str]] = {
    **{k: vocabulary.DISPLAY[k] for k in ("level", "ring", "relation", "layout")},
    "lisa": {
        "HH": "High–High 高高集聚",
        "HL": "High–Low 高低异常",
        "LH": "Low–High 低高异常",
        "LL": "Low–Low 低低集聚",
        "ns": "Not significant 不显著",
    },
    "hotspot": {"hot": "Hot spot 热点", "cold": "Cold spot 冷点", "ns": "Not significant 不显著"},
    "gi_bin": {
        "hot_99": "Hot spot, 99 % 热点", "hot_95": "Hot spot, 95 % 热点",
        "hot_90": "Hot spot, 90 % 热点", "ns": "Not significant 不显著",
        "cold_90": "Cold spot, 90 % 冷点", "cold_95": "Cold spot, 95 % 冷点",
        "cold_99": "Cold spot, 99 % 冷点",
    },
}

_RING_ORDER = vocabulary.RING.labels
_RING_ZH = vocabulary.RING.zh
_BASE_FILL = "#f4f1ea"
_BASE_EDGE = "#8c8c8c"


def pattern_label(pattern: str) -> str:
    """Bilingual name of a ring pattern such as ``core+outer_suburb``.

    Examples
    --------
    >>> pattern_label("core+outer_suburb")
    'core + outer suburb 中心城区+远郊区式'
    """
    parts = [p for p in str(pattern).split("+") if p]
    if not parts or any(p not in _RING_ZH for p in parts):
        return str(pattern)
    if len(parts) == 3:
        return "all three rings 三圈层分布"
    en = " + ".join(p.replace("_", " ") for p in parts)
    return f"{en} {'+'.join(_RING_ZH[p] for p in parts)}式"


# ------------------------------------------------------------------ style and fonts
@contextlib.contextmanager
def style() -> Iterator[None]:
    """Matplotlib settings of every incubloc figure (CJK font, quiet axes, stable SVG).

    Examples
    --------
    >>> import matplotlib
    >>> with style():
    ...     matplotlib.rcParams["svg.hashsalt"]
    'incubloc'
    """
    import matplotlib as mpl

    from incubloc._fonts import font_family

    rc = {
        "font.family": font_family(),
        "font.size": 9,
        "axes.titlesize": 12,
        # The bundled CJK font has one weight; titles stand out by size, not weight.
        "axes.titleweight": "normal",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "legend.fontsize": 8,
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "svg.hashsalt": "incubloc",  # stable ids: reruns write byte-identical SVG
        "axes.unicode_minus": True,
        "path.simplify": True,
    }
    with mpl.rc_context(rc):
        yield


def _finalise(fig: Any) -> Any:
    """Put every text of ``fig`` in the CJK family, so it renders outside :func:`style`."""
    from matplotlib.text import Text

    from incubloc._fonts import font_family

    fam = font_family()
    for t in fig.findobj(Text):
        t.set_fontfamily(fam)
    return fig


def _make_figure(figsize: tuple[float, float]) -> Any:
    # A bare Figure, not pyplot's: no global state, no backend, nothing to close.
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _new(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    fig = _make_figure(figsize)
    return fig, fig.add_subplot()


def _title(ax: Any, en: str, zh: str = "") -> None:
    ax.set_title(f"{en} {zh}".strip(), loc="left")


def _figure(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a figure function inside :func:`style` and fix its fonts afterwards."""
    import functools

    @functools.wraps(func)
    def wrapper(study: Any, *args: Any, **kwargs: Any) -> Any:
        with style():
            fig = func(study, *args, **kwargs)
        return _finalise(fig)

    return wrapper


# ------------------------------------------------------------------ data access
def _f(obj: Any, name: str, where: str) -> Any:
    """Field ``name`` of a result object, failing loudly when absent."""
    from incubloc.study_fields import field

    return field(obj, name, where=where)


def _crs(study: Any) -> Any:
    crs = getattr(study, "crs", None)
    if crs is not None:
        return crs
    from incubloc.coords import metric_crs

    inc = _incubators(study, None)
    return metric_crs(inc[~(inc.geometry.is_empty | inc.geometry.isna())])


def _incubators(study: Any, crs: Any) -> Any:
    inc = getattr(study, "incubators", None)
    if inc is None or len(inc) == 0:
        raise NoData("the study has no incubators")
    if crs is None:
        return inc  # tables and charts count every incubator
    # Maps can only show incubators with a location.
    return inc[~(inc.geometry.is_empty | inc.geometry.isna())].to_crs(crs)


def _layer(study: Any, name: str, crs: Any) -> Any:
    sa = getattr(study, "study_area", None)
    gdf = sa.get(name) if sa is not None else None
    if gdf is None or len(gdf) == 0:
        return None
    return gdf.to_crs(crs) if crs is not None else gdf


def _table(study: Any, name: str) -> pd.DataFrame | None:
    tab = (getattr(study, "tables", None) or {}).get(name)
    return tab if isinstance(tab, pd.DataFrame) and len(tab) else None


def core_city(study: Any) -> str:
    cfg = getattr(study, "config", None) or {}
    name = (cfg.get("study_area") or {}).get("core_city")
    if name:
        return str(name)
    cities = _layer(study, "cities", None)
    if cities is not None and "core" in cities:
        core = cities.loc[cities["core"].fillna(False).astype(bool), "city"]
        if len(core):
            return str(core.iloc[0])
    inc = _incubators(study, None)
    if "city" in inc and inc["city"].notna().any():
        return str(inc["city"].value_counts().index[0])
    raise NoData("no core city: set [study_area] core_city or mark one city core")


def zh_names(study: Any) -> dict[str, str]:
    """English name → Chinese name, from the cities and settlements layers."""
    out: dict[str, str] = {}
    for layer, en, zh in (("settlements", "settlement", "settlement_zh"), ("cities", "city", "city_zh")):
        gdf = _layer(study, layer, None)
        if gdf is not None and en in gdf and zh in gdf:
            ok = gdf[zh].notna()
            out.update(dict(zip(gdf.loc[ok, en].astype(str), gdf.loc[ok, zh].astype(str), strict=True)))
    return out


def short_zh(name: str) -> str:
    # 南京市 → 南京; keep 县 / 区 so counties stay recognisable.
    return name[:-1] if name.endswith("市") and len(name) > 2 else name


def _bilingual(names: list[str], zh: dict[str, str], sep: str = "\n") -> list[str]:
    return [f"{short_zh(zh[n])}{sep}{n}" if n in zh else str(n) for n in names]


# ------------------------------------------------------------------ map furniture
def _nice_length(span: float) -> float:
    target = span / 5.0
    if not math.isfinite(target) or target <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(target))
    return max(m for m in (1, 2, 5, 10) if m * exp <= target) * exp


def add_scalebar(ax: Any, *, loc: tuple[float, float] = (0.04, 0.04)) -> None:
    """Draw a two-segment scale bar in map units (metres) at ``loc`` (axes fraction).

    The Axes must have equal aspect and final limits.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = Figure().add_subplot()
    >>> _ = ax.set_xlim(0, 50_000); _ = ax.set_ylim(0, 50_000)
    >>> add_scalebar(ax)
    >>> sorted(t.get_text() for t in ax.texts)
    ['0', '10 km']
    """
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length(x1 - x0)
    bx, by = x0 + loc[0] * (x1 - x0), y0 + loc[1] * (y1 - y0)
    h = 0.012 * (y1 - y0)
    for i, fc in enumerate(("black", "white")):
        ax.add_patch(
            Rectangle((bx + i * length / 2, by), length / 2, h, fc=fc, ec="black", lw=0.8, zorder=20)
        )
    km = length >= 1000
    unit = 1000.0 if km else 1.0

    def fmt(v: float) -> str:
        return f"{v / unit:g}"

    kw = {"ha": "center", "va": "bottom", "fontsize": 7, "zorder": 20}
    ax.text(bx, by + 1.5 * h, "0", **kw)
    ax.text(bx + length, by + 1.5 * h, f"{fmt(length)} {'km' if km else 'm'}", **kw)


def add_north_arrow(ax: Any, *, loc: tuple[float, float] = (0.95, 0.93)) -> None:
    """Draw a north arrow at ``loc`` (axes fraction; grid north of the metric CRS)."""
    x, y = loc
    ax.annotate(
        "", xy=(x, y), xytext=(x, y - 0.09), xycoords="axes fraction",
        arrowprops={"arrowstyle": "-|>,head_width=0.35,head_length=0.7", "color": "black",
                    "lw": 1.6},
        zorder=20,
    )
    ax.text(x, y + 0.005, "N", transform=ax.transAxes, ha="center", va="bottom",
            fontsize=11, zorder=20)


def _halo() -> list[Any]:
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.5, foreground="white")]


def _draw_shapes(ax: Any, layer: Any, *, color: Any = None, **style: Any) -> None:
    """Draw a layer's polygons (or lines) on ``ax`` as one collection.

    The same paths and styles as ``GeoDataFrame.plot`` (normalised geometries, one
    path per feature, ``color`` the polygons' fill or the lines' colour), hence the
    same pixels, built from the coordinate arrays instead of one patch per polygon.
    Mixed or other geometry types are left to ``GeoDataFrame.plot``.
    """
    import shapely
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.path import Path

    geoms = np.asarray(getattr(layer, "geometry", layer))
    geoms = shapely.normalize(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))])
    if not len(geoms):
        return
    kinds = {shapely.GeometryType(k) for k in np.unique(shapely.get_type_id(geoms))}
    G = shapely.GeometryType
    if kinds <= {G.POLYGON, G.MULTIPOLYGON}:  # one compound path per feature
        _, xy, offsets = shapely.to_ragged_array(geoms)
        rings = offsets[0]
        codes = np.full(len(xy), Path.LINETO, dtype=Path.code_type)
        codes[rings[:-1]] = Path.MOVETO
        codes[rings[1:] - 1] = Path.CLOSEPOLY
        starts = rings[offsets[1]]
        if len(offsets) == 3:  # multipolygons: features → polygons → rings
            starts = starts[offsets[2]]
        paths = [Path(xy[a:b], codes[a:b]) for a, b in zip(starts[:-1], starts[1:], strict=True)]
        coll = PathCollection(paths, facecolor=color if color is not None else
                              style.pop("facecolor", None), **style)
    elif kinds <= {G.LINESTRING, G.MULTILINESTRING}:  # one path per line
        _, xy, offsets = shapely.to_ragged_array(geoms)
        parts = offsets[0]
        segments = [xy[a:b] for a, b in zip(parts[:-1], parts[1:], strict=True)]
        coll = LineCollection(segments, **({"color": color} if color is not None else {}),
                              **style)
    else:
        import geopandas as gpd

        gpd.GeoSeries(geoms, crs=getattr(layer, "crs", None)).plot(ax=ax, color=color, **style)
        return
    ax.set_aspect("equal")
    ax.add_collection(coll)  # the view is autoscaled when drawn, unless the map sets it


def _basemap(ax: Any, study: Any, crs: Any, *, labels: bool = True, fill: str = _BASE_FILL) -> Any:
    """Cities (filled, with Chinese names) as the map background; returns the layer."""
    cities = _layer(study, "cities", crs)
    if cities is None:
        return None
    _draw_shapes(ax, cities, color=fill, edgecolor=_BASE_EDGE, linewidth=0.7, zorder=1)
    if labels:
        _label_polygons(ax, cities, "city_zh" if "city_zh" in cities else "city", size=10)
    return cities


def _label_polygons(ax: Any, gdf: Any, column: str, *, size: float = 9, dark: bool = True) -> None:
    pts = gdf.geometry.representative_point()
    for p, name in zip(pts, gdf[column].astype(str), strict=True):
        ax.text(p.x, p.y, short_zh(name), ha="center", va="center", fontsize=size,
                color="#111111" if dark else "#555555", zorder=15,
                path_effects=_halo(), clip_on=True)


def _set_extent(ax: Any, bounds: Any, pad: float = 0.04) -> None:
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    dx, dy = (maxx - minx) or 1000.0, (maxy - miny) or 1000.0
    ax.set_xlim(minx - pad * dx, maxx + pad * dx)
    ax.set_ylim(miny - pad * dy, maxy + pad * dy)
    ax.set_aspect("equal", adjustable="box")


def _finish_map(ax: Any, bounds: Any, *, pad: float = 0.04) -> None:
    _set_extent(ax, bounds, pad)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for s in ax.spines.values():
        s.set_visible(True)
        s.set_color("#999999")
        s.set_linewidth(0.6)
    add_scalebar(ax)
    add_north_arrow(ax)


def _class_points(ax: Any, pts: Any, column: str, kind: str, *, size: float = 14) -> list[Any]:
    """Scatter points coloured by class; returns legend handles (classes present only)."""
    from matplotlib.lines import Line2D

    handles = []
    values = (pts[column] if column in pts else pd.Series(None, index=pts.index, dtype=object))
    values = values.fillna("unclassified").astype(str)
    # Known classes in their fixed order, then any other value (drawn grey, never dropped).
    classes = list(COLOURS[kind]) + sorted(set(values) - set(COLOURS[kind]))
    x, y, values = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy(), values.to_numpy()
    for cls in classes:
        sel = values == cls
        n = int(sel.sum())
        if n == 0:
            continue
        colour = COLOURS[kind].get(cls, "#636363")
        ax.scatter(x[sel], y[sel], s=size, c=colour, edgecolors="black", linewidths=0.35,
                   zorder=10)
        handles.append(Line2D([], [], ls="", marker="o", markersize=6, markerfacecolor=colour,
                              markeredgecolor="black", markeredgewidth=0.4,
                              label=f"{LABELS[kind].get(cls, cls)} ({n})"))
    return handles


def _zoom_bounds(study: Any, crs: Any, city: str) -> Any:
    """Bounds of the incubators in a city's core and inner suburb, else of those rings."""
    with contextlib.suppress(NoData):
        inc = _incubators(study, crs)
        key = "ring_city" if "ring_city" in inc else "city"
        if "ring" in inc:
            pts = inc[(inc[key] == city) & inc["ring"].isin(["core", "inner_suburb"])]
            if len(pts) >= 3:
                minx, miny, maxx, maxy = pts.total_bounds
                side = max(maxx - minx, maxy - miny, 5000.0)
                cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
                # A square a little larger than the points, so the map reads as a zoom.
                h = 0.55 * side
                return np.array([cx - h, cy - h, cx + h, cy + h])
    rings = _layer(study, "rings", crs)
    if rings is not None:
        sel = rings[(rings["city"] == city) & rings["ring"].isin(["core", "inner_suburb"])]
        if len(sel):
            return sel.total_bounds
    cities = _layer(study, "cities", crs)
    if cities is not None:
        sel = cities[cities["city"] == city]
        if len(sel):
            return sel.total_bounds
    return None


def _legend(ax: Any, handles: list[Any], title: str | None = None, **kw: Any) -> Any:
    opts = {"loc": "lower right", "frameon": True, "framealpha": 0.9, "edgecolor": "#cccccc",
            "title": title, "title_fontsize": 8}
    opts.update(kw)
    return ax.legend(handles=handles, **opts)


# ------------------------------------------------------------------ bar charts
def _stacked(ax: Any, tab: pd.DataFrame, kind: str, zh: dict[str, str], *, shares: bool = True) -> None:
    """Stacked bars: one per row of ``tab`` (cities), one segment per class column."""
    classes = [c for c in COLOURS[kind] if c in tab.columns]
    classes += [c for c in tab.columns if c not in classes]
    x = np.arange(len(tab))
    bottom = np.zeros(len(tab))
    for cls in classes:
        vals = tab[cls].to_numpy(dtype=float)
        ax.bar(x, vals, bottom=bottom, color=COLOURS[kind].get(cls, "#636363"), width=0.7,
               edgecolor="white", linewidth=0.5, label=LABELS[kind].get(cls, str(cls)))
        bottom += vals
    total = bottom.sum()
    for xi, b in zip(x, bottom, strict=True):
        text = f"{b:.0f}" + (f"\n{100 * b / total:.0f}%" if shares and total else "")
        ax.text(xi, b, text, ha="center", va="bottom", fontsize=7.5)
    ax.set_xticks(x, _bilingual([str(i) for i in tab.index], zh))
    ax.set_ylabel("incubators 孵化器数量 (n)")
    ax.set_ylim(0, max(bottom.max(), 1) * 1.18)
    ax.grid(axis="y", color="#e5e5e5", lw=0.6)
    ax.set_axisbelow(True)
    ax.legend(loc="upper right")


def _crosstab(inc: pd.DataFrame, column: str) -> pd.DataFrame:
    if column not in inc or "city" not in inc:
        raise NoData(f"incubators have no {column!r} or 'city' column")
    tab = pd.crosstab(inc["city"].fillna("outside"), inc[column].fillna("unclassified"))
    return tab.loc[tab.sum(axis=1).sort_values(ascending=False, kind="stable").index]


@_figure
def fig_counts_by_city(study: Any, *, ax: Any = None) -> Any:
    """Incubators by city and accreditation level (the article's figure 1).

    Stacked bars per prefecture city, ordered by total, with each city's share.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from types import SimpleNamespace
    >>> inc = gpd.GeoDataFrame(
    ...     {"city": ["A", "A", "B"], "level": ["national", "municipal", "national"]},
    ...     geometry=gpd.points_from_xy([118.7, 118.8, 119.0], [32.0, 32.1, 32.2]), crs=4326)
    >>> fig = fig_counts_by_city(SimpleNamespace(incubators=inc, study_area=None))
    >>> {c.get_label(): [float(b.get_height()) for b in c] for c in fig.axes[0].containers}
    {'National 国家级': [1.0, 1.0], 'Municipal 市级': [1.0, 0.0]}
    """
    return _bars_by_city(study, ax, "level", "Incubators by city and level",
                         "孵化器的数量及其地区分布")


@_figure
def fig_relation_by_city(study: Any, *, ax: Any = None) -> Any:
    """Relation to host spaces by city (the article's figure 7/8): stacked bars."""
    return _bars_by_city(study, ax, "relation", "Relation to host spaces by city",
                         "园中园/独立/混合")


@_figure
def fig_layout_by_city(study: Any, *, ax: Any = None) -> Any:
    """Internal layout by city (the article's figure 9): stacked bars."""
    return _bars_by_city(study, ax, "layout", "Internal layout by city", "楼宇式/园区式/混合式")


def _bars_by_city(study: Any, ax: Any, column: str, title: str, title_zh: str) -> Any:
    """Stacked bars of the incubators per city by the classes of ``column``."""
    tab = _crosstab(_incubators(study, None), column)
    fig, ax = _new(ax, (8, 4.5))
    _stacked(ax, tab, column, zh_names(study))
    _title(ax, title, title_zh)
    return fig


# ------------------------------------------------------------------ region map
@_figure
def fig_circle_map(study: Any, *, ax: Any = None) -> Any:
    """The circle: core city, Yangtze belt, zones and incubators (figure 2, 一心一带两片区)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    crs = _crs(study)
    fig, ax = _new(ax, (8, 8.5))
    cities = _basemap(ax, study, crs, labels=False)
    if cities is None:
        raise NoData("the study area has no 'cities' layer")
    handles = []
    zones = _layer(study, "zones", crs)
    if zones is not None:
        _draw_shapes(ax, zones, facecolor="#c7e9c0", edgecolor="#41ab5d", alpha=0.55,
                     hatch="///", linewidth=0.8, zorder=2)
        handles.append(Patch(facecolor="#c7e9c0", edgecolor="#41ab5d", hatch="///",
                             label="Zones 片区"))
    corr = _layer(study, "corridors", crs)
    if corr is not None:
        cfg = getattr(study, "config", None) or {}
        default = (cfg.get("study_area") or {}).get("corridor_buffer_m") or 30_000.0
        widths = corr["buffer_m"].fillna(default) if "buffer_m" in corr else default
        belt = corr.buffer(widths)
        belt = belt.intersection(cities.union_all())
        _draw_shapes(ax, belt, color="#9ecae1", alpha=0.45, zorder=3, linewidth=0)
        _draw_shapes(ax, corr, color="#2171b5", linewidth=2.2, zorder=4)
        km = float(np.nanmax(np.atleast_1d(widths))) / 1000
        handles += [Patch(facecolor="#9ecae1", alpha=0.6, label=f"Yangtze belt ±{km:g} km 沿江带"),
                    Line2D([], [], color="#2171b5", lw=2.2, label="Yangtze 长江")]
    if "core" in cities:
        core = cities[cities["core"].fillna(False).astype(bool)]
        if len(core):
            _draw_shapes(ax, core, facecolor="none", edgecolor="#a50f15", linewidth=2.4, zorder=5)
            handles.append(Patch(facecolor="none", edgecolor="#a50f15", lw=2,
                                 label="Core city 核心城市 (一心)"))
    inc = _incubators(study, crs)
    handles += _level_points(ax, inc)
    _label_polygons(ax, cities, "city_zh" if "city_zh" in cities else "city", size=11)
    _finish_map(ax, cities.total_bounds)
    _legend(ax, handles, "Structure 一心一带两片区", loc="lower right")
    _title(ax, "Spatial structure of the circle", "都市圈孵化器空间结构")
    return fig


def _level_points(ax: Any, inc: Any) -> list[Any]:
    return _class_points(ax, inc, "level", "level", size=12)


# ------------------------------------------------------------------ ring scale
def _ring_counts(inc: pd.DataFrame) -> pd.DataFrame:
    if "ring" not in inc:
        raise NoData("incubators have no 'ring' column")
    key = "ring_city" if "ring_city" in inc else "city"
    ok = inc["ring"].isin(_RING_ORDER) & inc[key].notna()
    if not ok.any():
        raise NoData("no incubator lies in a ring")
    tab = pd.crosstab(inc.loc[ok, key], inc.loc[ok, "ring"])
    tab = tab.reindex(columns=list(_RING_ORDER), fill_value=0)
    return tab.loc[tab.sum(axis=1).sort_values(ascending=False, kind="stable").index]


@_figure
def fig_ring_patterns(study: Any, *, ax: Any = None) -> Any:
    """Ring pattern of each city (figure 3): incubators per ring, with the pattern named.

    A matrix of ring systems (rows) by ring (columns); a cell is shaded when the ring
    holds incubators, and the row label gives the pattern (e.g. 中心城区+远郊区式).
    """
    inc = _incubators(study, None)
    tab = _ring_counts(inc)
    zh = zh_names(study)
    fig, ax = _new(ax, (7.5, 0.3 * len(tab) + 1.4))
    n_rows = len(tab)
    for j, ring in enumerate(_RING_ORDER):
        for i, city in enumerate(tab.index):
            n = int(tab.loc[city, ring])
            colour = COLOURS["ring"][ring] if n else "#f7f7f7"
            ax.add_patch(_rect(j, n_rows - 1 - i, colour))
            ax.text(j + 0.5, n_rows - 0.5 - i, str(n) if n else "–", ha="center", va="center",
                    fontsize=9, color="white" if (n and ring == "core") else "black")
    labels = []
    for i, city in enumerate(tab.index):
        pattern = "+".join(r for r in _RING_ORDER if tab.loc[city, r] > 0)
        labels.append(f"{short_zh(zh[city])} {city}" if city in zh else str(city))
        ax.text(3.12, n_rows - 0.5 - i, pattern_label(pattern), ha="left", va="center",
                fontsize=8)
    ax.set_xlim(0, 6.4)
    ax.set_ylim(0, n_rows)
    ax.set_xticks(np.arange(3) + 0.5,
                  [_two_lines(LABELS["ring"][r]) for r in _RING_ORDER], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(n_rows - 0.5 - np.arange(n_rows), labels)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.text(3.12, n_rows + 0.15, "ring pattern 圈层分布模式", ha="left", va="bottom", fontsize=8,
            color="#555555")
    _title(ax, "Ring patterns per city", "孵化器在城镇内部的空间分布模式")
    return fig


def _two_lines(label: str) -> str:
    # "Inner suburb 近郊区" -> "Inner suburb\n近郊区"
    head, _, tail = label.rpartition(" ")
    return f"{head}\n{tail}" if head else label


def _rect(x: float, y: float, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x + 0.03, y + 0.06), 0.94, 0.88, facecolor=colour, edgecolor="white")


def _draw_rings(ax: Any, rings: Any) -> list[Any]:
    from matplotlib.patches import Patch

    handles = []
    kind, geoms = rings["ring"].to_numpy(), rings.geometry.values
    for ring in _RING_ORDER:
        sel = geoms[kind == ring]
        if len(sel):
            _draw_shapes(ax, sel, color=COLOURS["ring"][ring], alpha=0.55, edgecolor="white",
                         linewidth=0.5, zorder=2)
            handles.append(Patch(facecolor=COLOURS["ring"][ring], alpha=0.55,
                                 label=LABELS["ring"][ring]))
    return handles


#: Most panels of :func:`fig_ring_maps`: beyond it (a national study) the cities with
#: the most incubators are drawn and the title says how many of how many.
MAX_RING_PANELS = 24


@_figure
def fig_ring_maps(study: Any, *, ax: Any = None) -> Any:
    """Incubators in each prefecture city's rings (figure 4), one panel per city.

    At most :data:`MAX_RING_PANELS` panels, the cities with the most incubators
    first. With ``ax``, every city's rings are drawn on that one Axes.
    """
    from matplotlib.lines import Line2D

    crs = _crs(study)
    rings = _layer(study, "rings", crs)
    if rings is None:
        raise NoData("the study area has no 'rings' layer")
    inc = _incubators(study, crs)
    cities = _layer(study, "cities", crs)
    pref = "prefecture" if "prefecture" in rings else "city"
    order = list(inc["city"].value_counts().index) if "city" in inc else []
    order += [c for c in rings[pref].unique() if c not in order]
    order = [c for c in order if (rings[pref] == c).any()]
    n_cities = len(order)
    order = order[:MAX_RING_PANELS]
    if ax is not None:
        fig = ax.figure
        _draw_rings(ax, rings)
        _class_points(ax, inc, "ring", "ring", size=6)
        _finish_map(ax, (cities if cities is not None else rings).total_bounds)
        return fig
    ncol = min(4, len(order))
    nrow = math.ceil(len(order) / ncol)
    fig = _make_figure((3.2 * ncol, 3.4 * nrow + 0.6))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    zh = zh_names(study)
    handles: dict[str, Any] = {}
    for a, city in zip(axes.flat, order, strict=False):
        sub = rings[rings[pref] == city]
        base = cities[cities["city"] == city] if cities is not None else sub
        if cities is not None:
            _draw_shapes(a, base, color=_BASE_FILL, edgecolor=_BASE_EDGE, linewidth=0.6, zorder=1)
        for h in _draw_rings(a, sub):
            handles.setdefault(h.get_label(), h)
        pts = inc[inc["city"] == city] if "city" in inc else inc.iloc[:0]
        if len(pts):
            a.scatter(pts.geometry.x, pts.geometry.y, s=7, c="black", zorder=10, linewidths=0)
        _finish_map(a, base.total_bounds, pad=0.02)
        pattern = _pattern_of(study, city)
        name = f"{short_zh(zh.get(city, city))} {city}" if city in zh else city
        a.set_title(f"{name} (n = {len(pts)})\n{pattern}", fontsize=8.5, loc="left",
                    fontweight="normal")
    for a in list(axes.flat)[len(order):]:
        a.set_axis_off()
    hl = [*handles.values(), Line2D([], [], ls="", marker="o", color="black", markersize=3,
                                     label="Incubator 孵化器")]
    fig.legend(handles=hl, loc="outside lower center", ncol=len(hl))
    title = "Incubators in each city's rings 孵化器在各地市圈层内的分布"
    if n_cities > len(order):
        title += (f"\n(the {len(order)} of {n_cities} cities with the most incubators; "
                  "every city's rings are in layers.gpkg)")
    fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    return fig


def _pattern_of(study: Any, city: str) -> str:
    cr = study.classification.city_rings
    if isinstance(cr, pd.DataFrame) and {"city", "ring_pattern"} <= set(cr.columns):
        sel = cr[cr["city"] == city]
        if len(sel):
            return pattern_label(str(sel["ring_pattern"].iloc[0]))
    return ""


@_figure
def fig_core_rings(study: Any, *, ax: Any = None) -> Any:
    """The core city's rings with its incubators and density by ring (figure 5)."""
    crs = _crs(study)
    city = core_city(study)
    rings = _layer(study, "rings", crs)
    if rings is None:
        raise NoData("the study area has no 'rings' layer")
    sub = rings[rings["city"] == city]
    if not len(sub):
        raise NoData(f"the rings layer has no ring system for the core city {city!r}")
    inc = _incubators(study, crs)
    key = "ring_city" if "ring_city" in inc else "city"
    pts = inc[inc[key] == city]
    tab = _table(study, "ring_table")
    if ax is None:
        fig = _make_figure((11, 7))
        ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1]})
    else:
        fig, bx = ax.figure, None
    handles = _draw_rings(ax, sub)
    districts = _layer(study, "districts", crs)
    if districts is not None and "city" in districts:
        d = districts[districts["city"] == city]
        _draw_shapes(ax, d.boundary, color="white", linewidth=0.5, zorder=3)
        zhcol = "district_zh" if "district_zh" in d else "district"
        if zhcol in d:
            _label_polygons(ax, d, zhcol, size=7, dark=False)
    from matplotlib.lines import Line2D

    ax.scatter(pts.geometry.x, pts.geometry.y, s=18, c="black", edgecolors="white",
               linewidths=0.6, zorder=10)
    counts = pts["ring"].value_counts() if "ring" in pts else pd.Series(dtype=int)
    for h in handles:
        ring = next(r for r in _RING_ORDER if LABELS["ring"][r] == h.get_label())
        h.set_label(f"{h.get_label()}: {int(counts.get(ring, 0))}")
    handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="black",
                          markeredgecolor="white", label=f"Incubator 孵化器 ({len(pts)})"))
    _finish_map(ax, sub.total_bounds, pad=0.02)
    zh = zh_names(study).get(city, "")
    _legend(ax, handles, None, loc="upper left")
    _title(ax, f"{city}: rings and incubators", f"{short_zh(zh)}孵化器的圈层分布")
    if bx is not None:
        _density_bars(bx, tab, city, pts)
    return fig


def _density_bars(ax: Any, tab: pd.DataFrame | None, city: str, pts: Any) -> None:
    if tab is not None and {"city", "ring"} <= set(tab.columns):
        t = tab[tab["city"] == city].set_index("ring").reindex(list(_RING_ORDER))
    else:
        t = pd.DataFrame(index=list(_RING_ORDER))
    if "density_100km2" not in t or t["density_100km2"].isna().all():
        counts = pts["ring"].value_counts() if "ring" in pts else pd.Series(dtype=int)
        t["count"] = counts.reindex(list(_RING_ORDER)).fillna(0)
        vals, ylabel = t["count"].to_numpy(float), "incubators (n)"
    else:
        vals, ylabel = t["density_100km2"].to_numpy(float), "incubators per 100 km² 密度"
    x = np.arange(3)
    ax.bar(x, np.nan_to_num(vals), color=[COLOURS["ring"][r] for r in _RING_ORDER],
           edgecolor="#555555", linewidth=0.5)
    for xi, v, r in zip(x, vals, _RING_ORDER, strict=True):
        n = t.loc[r, "count"] if "count" in t else np.nan
        if math.isfinite(v):
            label = f"{v:.2f}" + (f"\n(n = {int(n)})" if pd.notna(n) else "")
            ax.text(xi, v, label, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [_two_lines(LABELS["ring"][r]) for r in _RING_ORDER])
    ax.set_ylabel(ylabel)
    top = np.nanmax(vals) if np.isfinite(vals).any() else 1.0
    ax.set_ylim(0, max(top, 1e-9) * 1.25)
    ax.grid(axis="y", color="#e5e5e5", lw=0.6)
    ax.set_axisbelow(True)
    _title(ax, "Density by ring", "各圈层密度")


@_figure
def fig_opening_sequence(study: Any, *, ax: Any = None) -> Any:
    """Opening years by ring in the core city (建设时序): cumulative counts and spread."""
    from matplotlib.ticker import MaxNLocator

    inc = _incubators(study, None)
    if "opened" not in inc or "ring" not in inc:
        raise NoData("incubators have no 'opened' or 'ring' column")
    city = core_city(study)
    key = "ring_city" if "ring_city" in inc else "city"
    df = inc[(inc[key] == city) & inc["ring"].isin(_RING_ORDER)]
    df = df[pd.to_numeric(df["opened"], errors="coerce").notna()]
    if not len(df):
        raise NoData(f"no incubator in {city}'s rings has an opening year")
    years = pd.to_numeric(df["opened"]).astype(int)
    if ax is None:
        fig = _make_figure((10, 4.2))
        ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    else:
        fig, bx = ax.figure, None
    span = np.arange(years.min(), years.max() + 1)
    rings_present = [r for r in _RING_ORDER if (df["ring"] == r).any()]
    for r in rings_present:
        yr = years[df["ring"] == r]
        cum = yr.value_counts().reindex(span, fill_value=0).cumsum()
        ax.step(span, cum.to_numpy(), where="post", color=COLOURS["ring"][r], lw=2,
                label=f"{LABELS['ring'][r]} (median {int(np.median(yr))})")
    ax.set_xlabel("opening year 设立年份")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("cumulative incubators 累计数量")
    ax.grid(color="#e5e5e5", lw=0.6)
    ax.legend(loc="upper left")
    _title(ax, f"Opening sequence by ring, {city}", "建设时序")
    if bx is not None:
        data = [years[df["ring"] == r].to_numpy() for r in rings_present]
        import matplotlib

        # ``vert`` is deprecated from Matplotlib 3.10, ``orientation`` is new in 3.10.
        new_mpl = tuple(int(v) for v in matplotlib.__version__.split(".")[:2]) >= (3, 10)
        horiz = {"orientation": "horizontal"} if new_mpl else {"vert": False}
        bp = bx.boxplot(data, patch_artist=True, widths=0.55, medianprops={"color": "black"},
                        **horiz)
        for patch, r in zip(bp["boxes"], rings_present, strict=True):
            patch.set_facecolor(COLOURS["ring"][r])
        bx.set_yticks(np.arange(1, len(rings_present) + 1),
                      [LABELS["ring"][r] for r in rings_present])
        bx.invert_yaxis()
        bx.set_xlabel("opening year 设立年份")
        bx.xaxis.set_major_locator(MaxNLocator(integer=True))
        bx.grid(axis="x", color="#e5e5e5", lw=0.6)
        _title(bx, "Opening years", "设立年份分布")
    return fig


# ------------------------------------------------------------------ relation, layout maps
def _class_map(study: Any, ax: Any, column: str, kind: str, title: tuple[str, str],
               *, hosts: bool) -> Any:
    from matplotlib.patches import Patch

    crs = _crs(study)
    inc = _incubators(study, crs)
    if column not in inc:
        raise NoData(f"incubators have no {column!r} column")
    single = ax is not None
    if single:
        fig, panels = ax.figure, [ax]
    else:
        fig = _make_figure((12, 6.6))
        panels = list(fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.15]}))
    city = None
    with contextlib.suppress(NoData):
        city = core_city(study)
    host_layer = _layer(study, "hosts", crs) if hosts else None
    for i, a in enumerate(panels):
        cities = _basemap(a, study, crs, labels=(i == 0))
        if host_layer is not None:
            _draw_shapes(a, host_layer, facecolor="#d9d9d9", edgecolor="#969696",
                         linewidth=0.4, zorder=2)
        handles = _class_points(a, inc, column, kind, size=12 if i == 0 else 20)
        if host_layer is not None:
            handles.append(Patch(facecolor="#d9d9d9", edgecolor="#969696",
                                 label="Host space 园区/高校 (host)"))
        if i == 0:
            bounds = cities.total_bounds if cities is not None else inc.total_bounds
            _finish_map(a, bounds)
            _legend(a, handles, None, loc="lower right")
            _title(a, *title)
        else:
            zb = _zoom_bounds(study, crs, city) if city else None
            if zb is None:
                a.set_axis_off()
                continue
            districts = _layer(study, "districts", crs)
            if districts is not None and "city" in districts:
                d = districts[districts["city"] == city]
                _draw_shapes(a, d.boundary, color="#bbbbbb", linewidth=0.5, zorder=1.5)
                zhcol = "district_zh" if "district_zh" in d else "district"
                if zhcol in d:
                    _label_polygons(a, d, zhcol, size=7, dark=False)
            rings = _layer(study, "rings", crs)
            if rings is not None:
                core = rings[(rings["city"] == city) & (rings["ring"] == "core")]
                if len(core):
                    from matplotlib.lines import Line2D

                    _draw_shapes(a, core.boundary, color=COLOURS["ring"]["core"],
                                 linewidth=1.4, linestyle="--", zorder=4)
                    _legend(a, [Line2D([], [], color=COLOURS["ring"]["core"], ls="--",
                                       label="Core ring boundary 中心城区边界")], None)
            _finish_map(a, zb, pad=0.02)
            zh = zh_names(study).get(city, "")
            _title(a, f"{city}, core and inner suburb", f"{short_zh(zh)}主城与近郊")
    return fig


@_figure
def fig_relation_map(study: Any, *, ax: Any = None) -> Any:
    """Map of relation types with host spaces (figure 8), plus a zoom on the core city."""
    return _class_map(study, ax, "relation", "relation",
                      ("Relation to host spaces", "园中园型/独立型/混合型"), hosts=True)


@_figure
def fig_layout_map(study: Any, *, ax: Any = None) -> Any:
    """Map of internal layout types (figure 10), plus a zoom on the core city."""
    return _class_map(study, ax, "layout", "layout",
                      ("Internal layout", "楼宇式/园区式/混合式"), hosts=False)


# ------------------------------------------------------------------ statistics
@_figure
def fig_kde(study: Any, *, ax: Any = None, surface: str = "all") -> Any:
    """Kernel density surface of incubators (核密度) over the cities."""
    surf = (getattr(study, "surfaces", None) or {}).get(surface)
    if surf is None:
        raise NoData(f"the study has no density surface {surface!r}")
    w = f"surfaces[{surface!r}]"
    transform = _f(surf, "transform", w)
    values = np.asarray(_f(surf, "array", w), dtype=float)
    if values.ndim == 3:
        values = values[0]
    crs = _f(surf, "crs", w) or _crs(study)
    fig, ax = _new(ax, (8, 8.5))
    cities = _basemap(ax, study, crs, labels=False, fill="#fbfbfb")
    nrow, ncol = values.shape
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * ncol, top + transform.e * nrow
    # Hide (near-)zero cells so the base map shows where there is no incubator.
    vmax = float(np.nanmax(values)) if np.isfinite(values).any() else 0.0
    shown = np.ma.masked_where(~np.isfinite(values) | (values <= 1e-3 * vmax), values)
    unit = str(_f(surf, "units", w) or "")
    scale, label = 1.0, "density"
    if "km2" in unit or "km²" in unit:
        label = "incubators per km² 每平方公里" if unit.startswith("points") else f"{unit}"
    elif vmax and vmax < 1e-3:  # a surface per m²: show per km², the unit planners read
        scale, label = 1e6, "incubators per km² 每平方公里"
    elif unit:
        label = unit
    im = ax.imshow(shown * scale, extent=(left, right, bottom, top), origin="upper",
                   cmap="YlOrRd", zorder=2, alpha=0.9, interpolation="nearest",
                   interpolation_stage="data")
    fig.colorbar(im, ax=ax, shrink=0.6, label=label)
    if cities is not None:
        _clip_to(im, ax, cities.union_all())
        _draw_shapes(ax, cities.boundary, color="#555555", linewidth=0.6, zorder=3)
        _label_polygons(ax, cities, "city_zh" if "city_zh" in cities else "city", size=10)
    bw = _f(surf, "bandwidth_m", w)
    kernel = _f(surf, "kernel", w)
    rule = _f(surf, "bandwidth_rule", w)
    rule = f" ({rule})" if rule and rule not in ("fixed", "user") else ""
    sd = _f(surf, "kernel_sd_m", w)
    sd_txt = f", kernel sd {float(sd) / 1000:.1f} km" if sd is not None else ""
    sub = (f" — {kernel} kernel, bandwidth {float(bw) / 1000:.1f} km{sd_txt}{rule}"
           if bw is not None else "")
    bounds = cities.total_bounds if cities is not None else (left, bottom, right, top)
    _finish_map(ax, bounds)
    _title(ax, "Kernel density of incubators" + sub, "核密度")
    return fig


def _clip_to(artist: Any, ax: Any, geom: Any) -> None:
    """Clip ``artist`` (e.g. a raster) to a shapely (multi)polygon."""
    import shapely
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path

    paths = []
    for poly in shapely.get_parts(geom):
        if poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)[:, :2]
            codes = np.full(len(xy), Path.LINETO, dtype=Path.code_type)
            codes[0], codes[-1] = Path.MOVETO, Path.CLOSEPOLY
            paths.append(Path(xy, codes))
    if paths:
        patch = PathPatch(Path.make_compound_path(*paths), transform=ax.transData,
                          facecolor="none", edgecolor="none")
        artist.set_clip_path(patch)


def _cell_size(name: str) -> float:
    m = re.findall(r"\d+(?:\.\d+)?", name)
    return float(m[-1]) if m else math.inf


def grid_cell_size(name: str, grid: Any = None) -> float:
    """Cell size in metres: from the grid's name, else from its typical (median) cell area."""
    size = _cell_size(name)
    if math.isfinite(size) or grid is None or not len(grid):
        return size
    crs = getattr(grid, "crs", None)
    if crs is None or not crs.is_projected:
        return math.inf
    # Cells clipped to the coast are smaller; the median cell is a whole one.
    return float(math.sqrt(np.median(grid.geometry.area)))


def _grid_title(name: str, grid: Any = None) -> str:
    size = grid_cell_size(name, grid)
    return f"{size / 1000:.3g} km grid 网格" if math.isfinite(size) else f"grid {name}"


def _pick_grid(study: Any, grid: str | None) -> tuple[str, Any]:
    grids = getattr(study, "grids", None) or {}
    if not grids:
        raise NoData("the study has no aggregation grids")
    if grid is not None:
        if grid not in grids:
            raise NoData(f"no grid {grid!r}; grids: {', '.join(grids)}")
        return grid, grids[grid]

    # District units are not a lattice: they have their own maps.
    names = sorted((n for n in grids if n != "district_stats"), key=_cell_size) or list(grids)
    # The second-finest grid is the report's default: fine enough to show clusters,
    # coarse enough that most cells hold incubators.
    name = names[1] if len(names) > 1 else names[0]
    return name, grids[name]


# From this many cells on, a lattice map is drawn as one image (thousands of polygon
# patches take seconds to draw and make large vector files).
LATTICE_RASTER_MIN_CELLS = 2000


def _lattice(g: Any) -> tuple[float, float, float] | None:
    """Origin (x0, y0) and cell size of a square grid with ``grid_row``/``grid_col``
    (:func:`incubloc.stats.autocorrelation.make_grid`), or None when ``g`` is not such
    a regular lattice in its current CRS."""
    import shapely

    if not {"grid_row", "grid_col"} <= set(g.columns) or not len(g):
        return None
    if (g.attrs.get("grid") or {}).get("shape", "square") != "square":
        return None
    b = shapely.bounds(g.geometry.values)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    size = float(np.median(np.maximum(w, h)))
    if not size > 0:
        return None
    col, row = g["grid_col"].to_numpy(float), g["grid_row"].to_numpy(float)
    full = (np.abs(w - size) <= 1e-6 * size) & (np.abs(h - size) <= 1e-6 * size)
    if not full.any():
        return None
    x0 = float(np.median(b[full, 0] - col[full] * size))
    y0 = float(np.median(b[full, 1] - row[full] * size))
    # every cell must lie in its lattice square (clipped cells are inside theirs)
    tol = 1e-6 * size
    ok = ((b[:, 0] >= x0 + col * size - tol) & (b[:, 2] <= x0 + (col + 1) * size + tol)
          & (b[:, 1] >= y0 + row * size - tol) & (b[:, 3] <= y0 + (row + 1) * size + tol))
    return (x0, y0, size) if ok.all() else None


def _lattice_raster(ax: Any, g: Any, values: pd.Series, colours: dict[str, str], *,
                    zorder: float = 2) -> bool:
    """Draw a categorical column on a regular square grid as one image.

    Whole cells become pixels of one ``imshow`` (nearest neighbour); cells clipped by
    the study-area boundary keep their exact shape as polygons. Returns False (and
    draws nothing) when ``g`` is small or not a regular lattice, for the caller to
    draw polygons.
    """
    from matplotlib.colors import to_rgba

    if len(g) < LATTICE_RASTER_MIN_CELLS:
        return False
    lattice = _lattice(g)
    if lattice is None:
        return False
    x0, y0, size = lattice
    col, row = g["grid_col"].to_numpy(np.int64), g["grid_row"].to_numpy(np.int64)
    area = g.geometry.area.to_numpy()
    whole = area >= size * size * (1 - 1e-9)
    c0, r0 = int(col.min()), int(row.min())
    image = np.zeros((int(row.max()) - r0 + 1, int(col.max()) - c0 + 1, 4))
    vals = values.to_numpy()
    for cls, colour in colours.items():
        pick = whole & (vals == cls)
        image[row[pick] - r0, col[pick] - c0] = to_rgba(colour)
    ax.imshow(image, origin="lower", interpolation="nearest", zorder=zorder,
              extent=(x0 + c0 * size, x0 + (col.max() + 1) * size,
                      y0 + r0 * size, y0 + (row.max() + 1) * size))
    for cls, colour in colours.items():
        part = g[~whole & (vals == cls)]
        if len(part):
            _draw_shapes(ax, part, facecolor=colour, edgecolor="none", linewidth=0, zorder=zorder)
    return True


def _grid_map(study: Any, ax: Any, grid: str | None, column: str, kind: str,
              title: tuple[str, str]) -> Any:
    from matplotlib.patches import Patch

    name, g = _pick_grid(study, grid)
    if column not in g:
        raise NoData(f"grid {name!r} has no {column!r} column")
    crs = _crs(study)
    g = g.to_crs(crs) if g.crs is not None else g
    fig, ax = _new(ax, (8, 8.5))
    cities = _basemap(ax, study, crs, labels=False, fill="#ffffff")
    values = g[column].fillna("ns").astype(str)
    handles = []
    raster = _lattice_raster(ax, g, values, COLOURS[kind])
    for cls, colour in COLOURS[kind].items():
        sel = g.geometry.values[(values == cls).to_numpy()]
        if raster:
            pass  # drawn as one image with the other classes
        elif cls == "ns":
            _draw_shapes(ax, sel, facecolor=colour, edgecolor="#dddddd", linewidth=0.2, zorder=2)
        elif len(sel):
            _draw_shapes(ax, sel, facecolor=colour, edgecolor="white", linewidth=0.3, zorder=3)
        handles.append(Patch(facecolor=colour, edgecolor="#999999",
                             label=f"{LABELS[kind][cls]} ({len(sel)})"))
    if cities is not None:
        _draw_shapes(ax, cities.boundary, color="#444444", linewidth=0.7, zorder=4)
        _label_polygons(ax, cities, "city_zh" if "city_zh" in cities else "city", size=10)
    _finish_map(ax, cities.total_bounds if cities is not None else g.total_bounds)
    _legend(ax, handles, _grid_title(name, g))
    _title(ax, *title)
    return fig


@_figure
def fig_lisa(study: Any, *, ax: Any = None, grid: str | None = None) -> Any:
    """Local Moran (LISA) cluster map of incubator counts on a grid (局部空间自相关)."""
    return _grid_map(study, ax, grid, "lisa_cluster", "lisa",
                     ("LISA clusters of incubator counts", "局部莫兰指数聚类"))


@_figure
def fig_hotspots(study: Any, *, ax: Any = None, grid: str | None = None) -> Any:
    """Getis–Ord Gi* hot and cold spots of incubator counts on a grid (热点分析)."""
    return _grid_map(study, ax, grid, "gi_bin", "gi_bin",
                     ("Getis–Ord Gi* hot spots", "热点分析"))


def _district_map(study: Any, ax: Any, column: str, kind: str, title: tuple[str, str]) -> Any:
    """Classes of ``column`` on the district units (polygons, few)."""
    from matplotlib.patches import Patch

    d = (getattr(study, "grids", None) or {}).get("district_stats")
    if d is None or column not in d:
        raise NoData(f"the study has no district statistics with {column!r}")
    crs = _crs(study)
    d = d.to_crs(crs) if d.crs is not None else d
    fig, ax = _new(ax, (8, 8.5))
    cities = _basemap(ax, study, crs, labels=False, fill="#ffffff")
    values = d[column].fillna("ns").astype(str)
    handles = []
    for cls, colour in COLOURS[kind].items():
        sel = d.geometry.values[(values == cls).to_numpy()]
        if len(sel):
            _draw_shapes(ax, sel, facecolor=colour, edgecolor="#888888", linewidth=0.4, zorder=3)
        handles.append(Patch(facecolor=colour, edgecolor="#999999",
                             label=f"{LABELS[kind][cls]} ({len(sel)})"))
    if cities is not None:
        _draw_shapes(ax, cities.boundary, color="#444444", linewidth=0.8, zorder=4)
        _label_polygons(ax, cities, "city_zh" if "city_zh" in cities else "city", size=10)
    _finish_map(ax, cities.total_bounds if cities is not None else d.total_bounds)
    info = d.attrs.get("gi_inference" if kind == "gi_bin" else "lisa_inference") or {}
    note = (f"{info.get('n_tests')} districts, {info.get('correction')} correction"
            if info else "districts")
    _legend(ax, handles, f"Districts 区县 ({note})")
    _title(ax, *title)
    return fig


@_figure
def fig_lisa_districts(study: Any, *, ax: Any = None) -> Any:
    """LISA clusters of EB-standardised incubator rates on districts (区县局部空间自相关)."""
    return _district_map(study, ax, "lisa_cluster", "lisa",
                         ("LISA clusters of incubator rates by district", "区县局部莫兰指数聚类"))


@_figure
def fig_hotspots_districts(study: Any, *, ax: Any = None) -> Any:
    """Getis–Ord Gi* hot and cold spots of incubator rates on districts (区县热点分析)."""
    return _district_map(study, ax, "gi_bin", "gi_bin",
                         ("Getis–Ord Gi* hot spots by district", "区县热点分析"))


@_figure
def fig_ripley(study: Any, *, ax: Any = None) -> Any:
    """Besag's L(d) − d with the pointwise and global Monte-Carlo envelopes (点模式分析).

    The pointwise envelope is drawn for orientation; the test is the global
    (simultaneous) envelope, whose kind and p are in the title. The inhomogeneous
    result, when the study has one, is drawn beside it.
    """
    res = study.result("ripley")
    if res is None:
        raise NoData("the study has no Ripley result")
    w = "results['ripley']"
    d = np.asarray(_f(res, "distances", w), float) / 1000.0
    lmd = np.asarray(_f(res, "L_minus_d", w), float) / 1000.0
    lo, hi = _f(res, "lo", w), _f(res, "hi", w)
    fig, ax = _new(ax, (7, 4.3))
    n_sim = _f(res, "n_sim", w)
    test = str(_f(res, "test", w)).upper()
    if lo is not None and hi is not None:
        ax.fill_between(d, np.asarray(lo, float) / 1000, np.asarray(hi, float) / 1000,
                        color="#d9d9d9",
                        label=f"pointwise CSR envelope ({n_sim} simulations; not a test) 逐点包络")
    ghi = _f(res, "global_hi", w)
    if ghi is not None and np.isfinite(np.asarray(ghi, float)).any():
        alpha = float(_f(res, "alpha", w))
        ax.plot(d, np.asarray(ghi, float) / 1000, color="#525252", ls="--", lw=1.1,
                label=f"global {test} envelope vs CSR, {1 - alpha:.0%} 全局包络")
    ax.plot(d, lmd, color="#a50f15", lw=2, label="observed L(d) − d 观测值")
    inh = study.result("ripley_inhom")  # absent when the pattern gives no bandwidth
    if inh is not None:
        wi = "results['ripley_inhom']"
        idist = np.asarray(_f(inh, "distances", wi), float) / 1000.0
        ip = _f(inh, "p", wi)
        bw = _f(inh, "bandwidth_m", wi)
        ax.plot(idist, np.asarray(_f(inh, "L_minus_d", wi), float) / 1000, color="#2171b5",
                lw=1.6,
                label=(f"inhomogeneous L(d) − d (σ = {float(bw) / 1000:.1f} km"
                       if bw is not None else "inhomogeneous L(d) − d (")
                + (f", global p = {float(ip):.3g})" if ip is not None else ")"))
        ighi = _f(inh, "global_hi", wi)
        if ighi is not None and np.isfinite(np.asarray(ighi, float)).any():
            ax.plot(idist, np.asarray(ighi, float) / 1000, color="#2171b5", ls="--", lw=0.9,
                    label=f"global {test} envelope vs inhomogeneous Poisson")
    ax.axhline(0, color="#636363", lw=0.8)
    ax.set_xlabel("distance d (km)")
    ax.set_ylabel("L(d) − d (km)")
    ax.grid(color="#eeeeee", lw=0.6)
    ax.legend(loc="best", fontsize=8)
    p = _f(res, "p", w)
    corr = str(_f(res, "edge_correction", w) or "")
    corr = corr[:1].upper() + corr[1:]
    side = _f(res, "alternative", w)
    side = f", {side}" if side and side != "two-sided" else ""
    sub = (f" ({corr} edge correction; global {test} test vs CSR{side}, p = {float(p):.3g})"
           if p is not None else "")
    _title(ax, "Ripley's L function" + sub, "点模式分析")
    return fig


@_figure
def fig_sde(study: Any, *, ax: Any = None) -> Any:
    """Mean centre, standard distance and standard deviational ellipse over the circle."""
    import geopandas as gpd
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, Patch

    res = study.result("centrography")
    if res is None:
        raise NoData("the study has no centrography result")
    w = "results['centrography']"
    ellipse = _f(res, "ellipse", w)
    mx, my = _f(res, "mean_x", w), _f(res, "mean_y", w)
    crs = _crs(study)
    res_crs = _f(res, "crs", w) or crs
    fig, ax = _new(ax, (8, 8.5))
    cities = _basemap(ax, study, crs, labels=True)
    inc = _incubators(study, crs)
    ax.scatter(inc.geometry.x, inc.geometry.y, s=6, c="#525252", zorder=5, linewidths=0)
    centre = gpd.GeoSeries(gpd.points_from_xy([mx], [my]), crs=res_crs).to_crs(crs).iloc[0]
    handles = [Line2D([], [], ls="", marker="o", color="#525252", markersize=3,
                      label=f"Incubators 孵化器 ({len(inc)})")]
    if ellipse is not None:
        e = gpd.GeoSeries([ellipse], crs=res_crs).to_crs(crs)
        _draw_shapes(ax, e, facecolor="#fdd49e", edgecolor="#d7301f", alpha=0.45, lw=2, zorder=6)
        _draw_shapes(ax, e.boundary, color="#d7301f", lw=2, zorder=7)
        rot = _f(res, "rotation_deg", w)
        lab = "Standard deviational ellipse 标准差椭圆"
        if rot is not None:
            lab += f" (major axis {float(rot):.0f}° from N)"
        handles.append(Patch(facecolor="#fdd49e", edgecolor="#d7301f", label=lab))
    sd = _f(res, "standard_distance", w)
    if sd is not None and math.isfinite(float(sd)):
        ax.add_patch(Circle((centre.x, centre.y), float(sd), fill=False, ls="--",
                            color="#2171b5", lw=1.4, zorder=7))
        handles.append(Line2D([], [], ls="--", color="#2171b5",
                              label=f"Standard distance 标准距离 {float(sd) / 1000:.1f} km"))
    ax.scatter([centre.x], [centre.y], marker="*", s=220, c="#ffd700", edgecolors="black",
               zorder=9)
    handles.append(Line2D([], [], ls="", marker="*", markersize=12, markerfacecolor="#ffd700",
                          markeredgecolor="black", label="Mean centre 平均中心"))
    _finish_map(ax, cities.total_bounds if cities is not None else inc.total_bounds)
    _legend(ax, handles, None, loc="lower right")
    _title(ax, "Directional distribution", "标准差椭圆")
    return fig


@_figure
def fig_moran_profile(study: Any, *, ax: Any = None) -> Any:
    """Global Moran's I of grid counts against cell size (multi-scale profile)."""
    tab = _table(study, "multiscale_moran")
    if tab is None:
        raise NoData("the study has no multiscale_moran table")
    xcol = next((c for c in ("cell_size", "cell_size_m", "size_m", "scale") if c in tab), None)
    icol = next((c for c in ("I", "moran_i", "i") if c in tab), None)
    if xcol is None or icol is None:
        raise NoData("multiscale_moran lacks cell size or I columns")
    t = tab.sort_values(xcol)
    x = t[xcol].to_numpy(float) / 1000.0
    fig, ax = _new(ax, (6.5, 4))
    ax.plot(x, t[icol].to_numpy(float), marker="o", color="#08519c", lw=2, label="Moran's I")
    if "peak" in t and t["peak"].fillna(False).astype(bool).any():
        pk = t["peak"].fillna(False).astype(bool).to_numpy()
        ax.scatter(x[pk], t[icol].to_numpy(float)[pk], s=160, facecolors="none",
                   edgecolors="#a50f15", linewidths=2, zorder=5,
                   label="strongest clustering 最显著尺度")
    ei = next((c for c in ("EI", "expected", "e_i") if c in t), None)
    if ei is not None:
        ax.plot(x, t[ei].to_numpy(float), ls="--", color="#969696", label="E[I] under CSR")
    zcol = "z" if "z" in t else None
    pcol = next((c for c in ("p_sim", "p", "p_value") if c in t), None)
    for xi, yi, (_, row) in zip(x, t[icol], t.iterrows(), strict=True):
        note = (f"z = {float(row[zcol]):.1f}" if zcol and pd.notna(row[zcol]) else
                f"p = {float(row[pcol]):.3f}" if pcol and pd.notna(row[pcol]) else "")
        if note and pd.notna(yi):
            ax.annotate(note, (xi, yi), xytext=(5, 6), textcoords="offset points", fontsize=7)
    ax.set_xlabel("grid cell size (km) 网格尺寸")
    ax.set_ylabel("global Moran's I 全局莫兰指数")
    ax.grid(color="#eeeeee", lw=0.6)
    ax.legend(loc="best")
    _title(ax, "Multi-scale Moran's I", "多尺度空间自相关")
    return fig


# ------------------------------------------------------------------ registry
@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report: file name, function, report section, caption, and the
    steps of :func:`incubloc.workflow.run_study` whose fields it draws (``needs``:
    the report draws it as soon as they are done)."""

    name: str
    func: Callable[..., Any]
    section: str
    caption: str
    needs: tuple[str, ...] = ("classify", "region", "rings", "relation and layout")


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("counts_by_city", fig_counts_by_city, "region",
               "Figure 1. Incubators by prefecture city and accreditation level "
               "(孵化器的数量及其地区分布); labels give count and share of the circle."),
    FigureSpec("circle_map", fig_circle_map, "region",
               "Figure 2. The circle's structure: the core city (一心), the Yangtze belt (一带) "
               "and the named zones (两片区), with incubators by level."),
    FigureSpec("ring_patterns", fig_ring_patterns, "rings",
               "Figure 3. Incubators per ring in each ring system and the resulting ring "
               "pattern (单圈层/双圈层/三圈层)."),
    FigureSpec("ring_maps", fig_ring_maps, "rings",
               "Figure 4. Incubators in the rings of each prefecture city."),
    FigureSpec("core_rings", fig_core_rings, "rings",
               "Figure 5. The core city's rings with its incubators, and density by ring."),
    FigureSpec("opening_sequence", fig_opening_sequence, "rings",
               "Opening-year sequence by ring in the core city (建设时序)."),
    FigureSpec("relation_by_city", fig_relation_by_city, "relation",
               "Figure 7. Relation to host spaces by city (园中园型/独立型/混合型)."),
    FigureSpec("relation_map", fig_relation_map, "relation",
               "Figure 8. Relation types on the map, with the host spaces (universities, "
               "development zones, industrial parks) and a zoom on the core city."),
    FigureSpec("layout_by_city", fig_layout_by_city, "layout",
               "Figure 9. Internal layout by city (楼宇式/园区式/混合式)."),
    FigureSpec("layout_map", fig_layout_map, "layout",
               "Figure 10. Layout types on the map, with a zoom on the core city."),
    FigureSpec("lisa_districts", fig_lisa_districts, "statistics",
               "Local Moran's I clusters of incubators per km² by district (empirical-Bayes "
               "standardised rates; significance after the multiple-testing correction).",
               needs=("classify", "autocorrelation")),
    FigureSpec("hotspots_districts", fig_hotspots_districts, "statistics",
               "Getis–Ord Gi* hot and cold spots by district, at 90 / 95 / 99 % confidence "
               "after the multiple-testing correction.",
               needs=("classify", "autocorrelation")),
    FigureSpec("kde", fig_kde, "statistics", "Kernel density surface of all incubators (核密度).",
               needs=("classify", "density")),
    FigureSpec("lisa", fig_lisa, "statistics",
               "Local Moran's I cluster map of incubator counts per land grid cell (LISA), "
               "at the cell size where Moran's I peaks.",
               needs=("classify", "autocorrelation")),
    FigureSpec("hotspots", fig_hotspots, "statistics",
               "Getis–Ord Gi* hot and cold spots of incubator counts per land grid cell, at "
               "90 / 95 / 99 % confidence after the multiple-testing correction.",
               needs=("classify", "autocorrelation")),
    FigureSpec("moran_profile", fig_moran_profile, "statistics",
               "Global Moran's I of grid counts at several cell sizes (multi-scale profile).",
               needs=("classify", "autocorrelation")),
    FigureSpec("ripley", fig_ripley, "statistics",
               "Besag's L(d) − d against distance with the Monte-Carlo envelope of complete "
               "spatial randomness; above the envelope = clustering at that distance.",
               needs=("classify", "point pattern")),
    FigureSpec("sde", fig_sde, "statistics",
               "Mean centre, standard distance and standard deviational ellipse of incubators.",
               needs=("classify", "point pattern")),
)
