"""Figures and maps (incubloc.shells.plot) on a small hand-made study with known contents."""

from __future__ import annotations

import io
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from matplotlib import font_manager
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text
from pyproj import CRS
from shapely.geometry import LineString, Point, box

from incubloc._fonts import has_glyphs
from incubloc.classification import Classification
from incubloc.shells import plot
from incubloc.stats.density import DensitySurface
from incubloc.stats.pointpattern import RipleyResult, centrography
from incubloc.studyarea import StudyArea
from incubloc.workflow import Study

METRIC = "EPSG:32650"

# Incubators of the stand-in: (city, ring, level, relation, layout, opened, lon, lat)
ROWS = [
    ("Nanjing", "core", "national", "standalone", "building", 2001, 118.74, 32.04),
    ("Nanjing", "core", "national", "park_in_park", "building", 2003, 118.76, 32.06),
    ("Nanjing", "core", "provincial", "mixed", "mixed", 2005, 118.78, 32.05),
    ("Nanjing", "inner_suburb", "provincial", "park_in_park", "park", 2008, 118.65, 31.95),
    ("Nanjing", "inner_suburb", "municipal", "park_in_park", "park", 2010, 118.85, 32.15),
    ("Nanjing", "outer_suburb", "national", "park_in_park", "park", 2012, 118.55, 31.85),
    ("Wuhu", "core", "municipal", "park_in_park", "park", 2009, 118.22, 31.22),
    ("Wuhu", "core", "provincial", "standalone", "unclassified", 2011, 118.28, 31.28),
]


def make_study(*, with_stats: bool = True) -> Study:
    """A two-city study in EPSG:4326 with every layer, table and result the figures use."""
    nj, wh = box(118.5, 31.8, 119.0, 32.3), box(118.0, 31.0, 118.5, 31.5)
    cities = gpd.GeoDataFrame(
        {"city": ["Nanjing", "Wuhu"], "city_zh": ["南京市", "芜湖市"],
         "province": ["Jiangsu", "Anhui"], "form": ["dispersed", "compact"],
         "core": [True, False]},
        geometry=[nj, wh], crs=4326,
    )
    districts = gpd.GeoDataFrame(
        {"district": ["Gulou", "Jiangning"], "district_zh": ["鼓楼区", "江宁区"],
         "city": ["Nanjing", "Nanjing"]},
        geometry=[box(118.5, 32.0, 119.0, 32.3), box(118.5, 31.8, 119.0, 32.0)], crs=4326,
    )
    core, inner = box(118.7, 32.0, 118.8, 32.1), box(118.6, 31.9, 118.9, 32.2)
    rings = gpd.GeoDataFrame(
        {"city": ["Nanjing"] * 3 + ["Wuhu"], "prefecture": ["Nanjing"] * 3 + ["Wuhu"],
         "ring": ["core", "inner_suburb", "outer_suburb", "core"]},
        geometry=[core, inner.difference(core), nj.difference(inner), box(118.2, 31.2, 118.3, 31.3)],
        crs=4326,
    )
    hosts = gpd.GeoDataFrame({"host_id": ["h1"], "name": ["Park"], "kind": ["high_tech_zone"]},
                             geometry=[box(118.63, 31.93, 118.67, 31.97)], crs=4326)
    corridors = gpd.GeoDataFrame({"name": ["Yangtze"], "buffer_m": [20_000.0]},
                                 geometry=[LineString([(118.0, 31.3), (119.0, 32.2)])], crs=4326)
    zones = gpd.GeoDataFrame({"zone": ["south"], "name": ["South zone"]}, geometry=[wh], crs=4326)
    sa = StudyArea({"cities": cities, "districts": districts, "rings": rings, "hosts": hosts,
                    "corridors": corridors, "zones": zones})
    df = pd.DataFrame(ROWS, columns=["city", "ring", "level", "relation", "layout", "opened",
                                     "lon", "lat"])
    inc = gpd.GeoDataFrame(df.drop(columns=["lon", "lat"]),
                           geometry=gpd.points_from_xy(df.lon, df.lat), crs=4326)
    inc.insert(0, "id", [f"i{i}" for i in range(len(inc))])
    inc["ring_city"] = inc["city"]
    inc["province"] = inc["city"].map({"Nanjing": "Jiangsu", "Wuhu": "Anhui"})
    city_rings = pd.DataFrame({"city": ["Nanjing", "Wuhu"], "prefecture": ["Nanjing", "Wuhu"],
                               "ring_pattern": ["core+inner_suburb+outer_suburb", "core"],
                               "n_rings": [3, 1], "n_incubators": [6, 2],
                               "form": ["dispersed", "compact"]})
    study = Study(config={"study_area": {"core_city": None, "corridor_buffer_m": None}},
                  classification=Classification(inc, city_rings), study_area=sa, crs=METRIC)
    study.tables["ring_table"] = pd.DataFrame(
        {"city": ["Nanjing"] * 3, "ring": ["core", "inner_suburb", "outer_suburb"],
         "count": [3, 2, 1], "density_100km2": [1.9, 0.4, 0.05]})
    if not with_stats:
        return study
    m = inc.to_crs(METRIC)
    x0, y0, x1, y1 = m.total_bounds
    cells = [box(x, y, x + 5000, y + 5000) for x in np.arange(x0 - 1, x1, 5000)
             for y in np.arange(y0 - 1, y1, 5000)]
    grid = gpd.GeoDataFrame(geometry=cells, crs=METRIC)
    grid["count"] = 0
    grid["lisa_cluster"] = "ns"
    grid.loc[:1, "lisa_cluster"] = "HH"  # two HH cells
    grid.loc[2, "lisa_cluster"] = "LL"
    grid["hotspot"] = "ns"
    grid.loc[:2, "hotspot"] = "hot"  # three hot cells
    grid["gi_bin"] = "ns"
    grid.loc[:2, "gi_bin"] = "hot_95"
    grid.loc[3, "gi_bin"] = "cold_99"
    districts = gpd.GeoDataFrame(
        {"lisa_cluster": ["HH", "ns", "LL"], "gi_bin": ["hot_99", "ns", "cold_90"]},
        geometry=[box(x0, y0, x0 + 9000, y0 + 9000), box(x0 + 9000, y0, x0 + 18000, y0 + 9000),
                  box(x0, y0 + 9000, x0 + 9000, y0 + 18000)], crs=METRIC)
    study.grids = {"grid_2000": grid.iloc[:4].copy(), "grid_5000": grid,
                   "district_stats": districts}
    d = np.linspace(0.0, 20_000.0, 21)
    study.results["ripley"] = RipleyResult(
        distances=d, K=np.pi * d**2, L=d, L_minus_d=2000 * np.sin(d / 6000.0),
        lo=-500 - 0.01 * d, hi=500 + 0.01 * d, sim_mean=0 * d, max_deviation=2000.0, p=0.01,
        n=len(inc), area=1.0, edge_correction="ripley", n_sim=99, envelope=(0.025, 0.975))
    study.results["centrography"] = centrography(m)
    # A 10 x 12 surface of 500 m cells anchored at the data's lower-left corner.
    values = np.zeros((10, 12))
    values[4:6, 5:8] = 2.0
    study.surfaces["all"] = DensitySurface(
        array=values, transform=Affine(500.0, 0, x0, 0, -500.0, y0 + 5000), crs=CRS(METRIC),
        kernel="quartic", bandwidth_m=3000.0, bandwidth_rule="fixed", cell_size=500.0,
        n_points=len(inc), total_weight=float(len(inc)), normalize="count",
        units="points per km2")
    study.tables["multiscale_moran"] = pd.DataFrame(
        {"cell_size": [2000.0, 5000.0], "I": [0.1, 0.3], "z": [1.2, 4.5], "p_sim": [0.2, 0.01],
         "peak": [False, True]})
    return study


@pytest.fixture(scope="module")
def study() -> Study:
    return make_study()


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return buf.getvalue()


@pytest.mark.parametrize("spec", plot.FIGURES, ids=[s.name for s in plot.FIGURES])
def test_every_figure_draws(study, spec):
    fig = spec.func(study)
    assert isinstance(fig, Figure)
    assert _png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert any(t.strip() for t in texts)


@pytest.mark.parametrize("spec", plot.FIGURES, ids=[s.name for s in plot.FIGURES])
def test_every_figure_draws_into_given_axes(study, spec):
    fig = Figure()
    ax = fig.add_subplot()
    assert spec.func(study, ax=ax) is fig
    _png(fig)


def test_counts_bars_equal_crosstab(study):
    fig = plot.fig_counts_by_city(study)
    ax = fig.axes[0]
    # Nanjing: 3 national, 2 provincial, 1 municipal; Wuhu: 1 provincial, 1 municipal.
    expected = {("National 国家级", 0): 3, ("Provincial 省级", 0): 2, ("Municipal 市级", 0): 1,
                ("National 国家级", 1): 0, ("Provincial 省级", 1): 1, ("Municipal 市级", 1): 1}
    got = {}
    for cont in ax.containers:
        for i, bar in enumerate(cont):
            got[(cont.get_label(), i)] = bar.get_height()
            assert bar.get_facecolor() == pytest.approx(to_rgba(
                {"National 国家级": plot.COLOURS["level"]["national"],
                 "Provincial 省级": plot.COLOURS["level"]["provincial"],
                 "Municipal 市级": plot.COLOURS["level"]["municipal"]}[cont.get_label()]))
    assert got == expected
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["南京\nNanjing", "芜湖\nWuhu"]
    shares = {t.get_text() for t in ax.texts}
    assert "6\n75%" in shares and "2\n25%" in shares


def test_class_colours_are_shared_between_bars_and_map(study):
    bars = plot.fig_relation_by_city(study).axes[0]
    bar_colour = {c.get_label(): c[0].get_facecolor() for c in bars.containers}
    fig = plot.fig_relation_map(study)
    ax = fig.axes[0]
    legend = {h.get_label().rsplit(" (", 1)[0]: h.get_markerfacecolor()
              for h in ax.get_legend().legend_handles if hasattr(h, "get_markerfacecolor")}
    for label, colour in bar_colour.items():
        assert to_rgba(legend[label]) == pytest.approx(colour)
    # Points: 5 park-in-park, 2 standalone, 1 mixed, in the relation colours.
    n_by_colour = {}
    for coll in ax.collections:
        if hasattr(coll, "get_offsets") and len(coll.get_offsets()) and coll.get_facecolor().size:
            key = tuple(np.round(coll.get_facecolor()[0], 3))
            n_by_colour[key] = n_by_colour.get(key, 0) + len(coll.get_offsets())
    for cls, n in (("park_in_park", 5), ("standalone", 2), ("mixed", 1)):
        assert n_by_colour[tuple(np.round(to_rgba(plot.COLOURS["relation"][cls]), 3))] == n


def test_chinese_text_is_set_in_a_font_that_has_its_glyphs(study):
    fig = plot.fig_circle_map(study)
    cjk = [t for t in fig.findobj(Text) if any(ord(ch) > 0x2E7F for ch in t.get_text())]
    assert {"南京", "芜湖"} <= {t.get_text() for t in cjk}
    for t in cjk:
        path = font_manager.findfont(t.get_fontproperties(), fallback_to_default=False)
        chars = "".join(ch for ch in t.get_text() if ord(ch) > 0x2E7F)
        assert has_glyphs(chars, path=path), (t.get_text(), path)


def test_map_has_scale_bar_north_arrow_and_legend(study):
    ax = plot.fig_circle_map(study).axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "N" in texts and "0" in texts
    km = [t for t in texts if t.endswith(" km")]
    assert len(km) == 1
    length = float(km[0].split()[0]) * 1000
    # The bar's two halves are rectangles of half the labelled length each.
    halves = [p.get_width() for p in ax.patches if getattr(p, "get_width", None)
              and math.isclose(p.get_width(), length / 2)]
    assert len(halves) == 2
    x0, x1 = ax.get_xlim()
    assert (x1 - x0) / 10 <= length <= (x1 - x0) / 5
    assert ax.get_legend() is not None
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("Yangtze" in s for s in labels) and any("Core city" in s for s in labels)


def test_scalebar_chooses_round_lengths():
    for span, expected in ((50_000, "10 km"), (230_000, "20 km"), (4_000, "500 m"),
                           (900_000, "100 km")):
        ax = Figure().add_subplot()
        ax.set_xlim(0, span)
        ax.set_ylim(0, span)
        plot.add_scalebar(ax)
        assert expected in [t.get_text() for t in ax.texts]


def _pixels(draw) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with plot.style():
        fig = Figure(figsize=(3, 3), dpi=100)
        ax = fig.add_subplot()
        draw(ax)
        ax.set_xlim(-1, 11)
        ax.set_ylim(-1, 11)
        ax.set_xlabel("")  # as maps do (GeoDataFrame.plot labels the axes)
        ax.set_ylabel("")
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def test_map_layers_draw_the_pixels_of_geodataframe_plot():
    # Rings given counter-clockwise and starting anywhere (GeoDataFrame.plot normalises
    # them), a hole, a multipolygon, missing and empty rows, lines and multilines.
    hole = shapely.Polygon([(1, 1), (6, 1), (6, 6), (1, 6)], [[(4, 4), (2, 4), (2, 2), (4, 2)]])
    multi = shapely.MultiPolygon([box(7, 7, 9, 9), box(7, 0.5, 10, 3)])
    polys = gpd.GeoSeries([hole, None, multi, shapely.Polygon(), box(0, 7, 3, 10)],
                          crs=METRIC)
    lines = gpd.GeoSeries([LineString([(0, 0), (10, 10), (10, 0)]),
                           shapely.MultiLineString([[(0, 5), (5, 9)], [(6, 9), (9, 5)]])],
                          crs=METRIC)
    cases = [
        (polys, {"color": "#c7e9c0", "edgecolor": "#41ab5d", "linewidth": 2, "alpha": 0.55}),
        (polys, {"facecolor": "none", "edgecolor": "#a50f15", "hatch": "///", "lw": 1.5}),
        (polys.boundary, {"color": "#a50f15", "linewidth": 1.4, "linestyle": "--"}),
        (lines, {"color": "#2171b5", "linewidth": 2.2, "zorder": 4}),
    ]
    for layer, style in cases:
        want = _pixels(lambda ax, layer=layer, style=style: layer.plot(ax=ax, **style))
        got = _pixels(lambda ax, layer=layer, style=style: plot._draw_shapes(ax, layer, **style))
        assert (want[..., 3] > 0).any()
        np.testing.assert_array_equal(got, want, err_msg=str(style))


def test_maps_are_drawn_in_the_metric_crs(study):
    ax = plot.fig_circle_map(study).axes[0]
    exp = study.study_area.get("cities").to_crs(METRIC).total_bounds
    x0, x1 = ax.get_xlim()
    assert x0 < exp[0] < exp[2] < x1 and x1 - x0 < 1.2 * (exp[2] - exp[0])


def test_ring_patterns_counts_and_labels(study):
    ax = plot.fig_ring_patterns(study).axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["南京 Nanjing", "芜湖 Wuhu"]
    texts = [t.get_text() for t in ax.texts]
    assert "all three rings 三圈层分布" in texts and "core 中心城区式" in texts
    # Cell counts: Nanjing 3 / 2 / 1, Wuhu 2 / – / –
    assert sorted(t for t in texts if t.isdigit()) == ["1", "2", "2", "3"]


def test_core_rings_density_bars(study):
    fig = plot.fig_core_rings(study)
    bars = fig.axes[1].patches
    assert [b.get_height() for b in bars] == pytest.approx([1.9, 0.4, 0.05])
    assert [to_rgba(b.get_facecolor()) for b in bars] == [
        pytest.approx(to_rgba(plot.COLOURS["ring"][r]))
        for r in ("core", "inner_suburb", "outer_suburb")]


def test_opening_sequence_steps_end_at_ring_counts(study):
    ax = plot.fig_opening_sequence(study).axes[0]
    ends = sorted(line.get_ydata()[-1] for line in ax.get_lines())
    assert ends == [1, 2, 3]


def test_ripley_plots_l_minus_d_in_km(study):
    ax = plot.fig_ripley(study).axes[0]
    res = study.results["ripley"]
    line = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == len(res.distances)][0]
    assert line.get_xdata() == pytest.approx(res.distances / 1000)
    assert line.get_ydata() == pytest.approx(res.L_minus_d / 1000)


def test_kde_extent_follows_the_transform(study):
    ax = plot.fig_kde(study).axes[0]
    im = ax.get_images()[0]
    x0, x1, y0, y1 = im.get_extent()
    t = study.surfaces["all"].transform
    assert (x0, x1) == pytest.approx((t.c, t.c + 12 * 500))
    assert (y0, y1) == pytest.approx((t.f - 10 * 500, t.f))
    # Zero cells are hidden; the densities (per km²) are shown as they are.
    arr = im.get_array()
    assert np.ma.count(arr) == 6 and arr.max() == pytest.approx(2.0)
    assert ax.figure.axes[1].get_ylabel() == "incubators per km² 每平方公里"


def test_lisa_and_hotspot_legends_count_cells(study):
    lisa = plot.fig_lisa(study).axes[0].get_legend()
    labels = [t.get_text() for t in lisa.get_texts()]
    assert "High–High 高高集聚 (2)" in labels and "Low–Low 低低集聚 (1)" in labels
    assert lisa.get_title().get_text() == "5 km grid 网格"
    hot = [t.get_text() for t in plot.fig_hotspots(study).axes[0].get_legend().get_texts()]
    assert "Hot spot, 95 % 热点 (3)" in hot and "Cold spot, 99 % 冷点 (1)" in hot


def test_district_maps_colour_by_class(study):
    ax = plot.fig_hotspots_districts(study).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Hot spot, 99 % 热点 (1)" in labels and "Cold spot, 90 % 冷点 (1)" in labels
    faces = {tuple(np.round(c, 3)) for coll in ax.collections for c in coll.get_facecolor()}
    assert tuple(np.round(to_rgba(plot.COLOURS["gi_bin"]["hot_99"]), 3)) in faces
    lisa = plot.fig_lisa_districts(study).axes[0].get_legend()
    assert "High–High 高高集聚 (1)" in [t.get_text() for t in lisa.get_texts()]
    small = plot.fig_lisa(study, grid="grid_2000").axes[0].get_legend()
    assert small.get_title().get_text() == "2 km grid 网格"


def test_sde_marks_the_mean_centre(study):
    ax = plot.fig_sde(study).axes[0]
    cen = study.results["centrography"]
    stars = [c for c in ax.collections if len(c.get_offsets()) == 1]
    assert list(np.asarray(stars[-1].get_offsets()[0])) == pytest.approx([cen.mean_x, cen.mean_y])
    xy = study.incubators.to_crs(METRIC).get_coordinates().to_numpy()
    assert cen.mean_x == pytest.approx(xy[:, 0].mean())


def test_missing_inputs_raise_nodata():
    bare = make_study(with_stats=False)
    for func in (plot.fig_lisa, plot.fig_hotspots, plot.fig_kde, plot.fig_ripley, plot.fig_sde,
                 plot.fig_moran_profile):
        with pytest.raises(plot.NoData):
            func(bare)
    bare.study_area.layers.pop("rings")
    with pytest.raises(plot.NoData, match="rings"):
        plot.fig_ring_maps(bare)
    bare.classification.incubators = bare.incubators.drop(columns="relation")
    with pytest.raises(plot.NoData, match="relation"):
        plot.fig_relation_by_city(bare)


def test_ring_maps_panel_cap_keeps_the_cities_with_most_incubators(study, monkeypatch):
    counts = study.incubators["city"].value_counts()  # Nanjing 6, Wuhu 2
    assert counts.index[0] == "Nanjing" and counts.iloc[0] > counts.iloc[1]

    def panels(fig):
        return [a for a in fig.axes if a.axison]

    fig = plot.fig_ring_maps(study)
    assert [a.get_title(loc="left").split("\n")[0].endswith(f"Nanjing (n = {counts['Nanjing']})")
            for a in panels(fig)] == [True, False]
    assert "cities with the most incubators" not in fig._suptitle.get_text()
    monkeypatch.setattr(plot, "MAX_RING_PANELS", 1)
    fig = plot.fig_ring_maps(study)
    titles = [a.get_title(loc="left") for a in panels(fig)]
    assert len(titles) == 1 and "Nanjing (n = 6)" in titles[0]
    assert "the 1 of 2 cities with the most incubators" in fig._suptitle.get_text()


def test_figures_do_not_touch_pyplot():
    # In a fresh interpreter, so that pyplot imported by another test cannot make
    # the check pass vacuously.
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_plot import make_study\n"
        "from incubloc.shells import plot\n"
        "study = make_study(with_stats=False)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'imported before drawing'\n"
        "plot.fig_counts_by_city(study)\n"
        "assert 'matplotlib' in sys.modules\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'a chart imported pyplot'\n"
        # Maps draw through GeoDataFrame.plot, which imports pyplot; still no figure
        # may be left in pyplot's registry.
        "for spec in plot.FIGURES[:3]:\n"
        "    try:\n"
        "        spec.func(study)\n"
        "    except plot.NoData:\n"
        "        pass\n"
        "import matplotlib.pyplot as plt\n"
        "assert plt.get_fignums() == [], plt.get_fignums()\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr[-2000:]


def test_unknown_class_values_are_drawn_grey_not_dropped(study):
    s = make_study(with_stats=False)
    s.classification.incubators.loc[0, "relation"] = None
    ax = plot.fig_relation_map(s).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Unclassified 未分类 (1)" in labels


def test_pattern_label():
    assert plot.pattern_label("core") == "core 中心城区式"
    assert plot.pattern_label("inner_suburb+outer_suburb") == "inner suburb + outer suburb 近郊区+远郊区式"
    assert plot.pattern_label("none") == "none"


def test_shapes_of_stand_in_are_valid():
    s = make_study(with_stats=False)
    assert shapely.is_valid(s.study_area.get("rings").geometry.values).all()
    assert s.incubators.geometry.within(s.study_area.get("cities").union_all()).all()
    assert Point(118.74, 32.04).within(s.study_area.get("rings").geometry.iloc[0])


def test_incubator_without_location_is_counted_but_not_mapped():
    s = make_study(with_stats=False)
    inc = s.incubators.copy()
    inc.loc[7, "geometry"] = None  # Wuhu's second incubator has no coordinates
    s.classification.incubators = inc
    ax = plot.fig_counts_by_city(s).axes[0]
    totals = [sum(c[i].get_height() for c in ax.containers) for i in range(2)]
    assert totals == [6, 2]
    labels = [t.get_text() for t in plot.fig_relation_map(s).axes[0].get_legend().get_texts()]
    # 7 located incubators: 5 park-in-park, 1 standalone, 1 mixed.
    assert "Standalone 独立型 (1)" in labels and "Park-in-park 园中园型 (5)" in labels
