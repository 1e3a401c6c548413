"""Speed-related guarantees: light imports, identical results from the fast paths."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_density_import_does_not_load_scipy_signal():
    proc = _python("import sys, incubloc.stats.density\n"
                   "assert 'scipy.signal' not in sys.modules\n")
    assert proc.returncode == 0, proc.stderr


def test_cli_import_and_help_load_no_scientific_module():
    # What makes `incubloc --help` start in a fraction of a second: importing
    # incubloc.cli and the whole help path stay clear of the scientific stack
    # (scipy.signal and matplotlib included; its time is a row of
    # benchmarks/command_rows.py, not a timed test).
    code = (
        "import sys\n"
        "from incubloc.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pandas', "
        "'scipy', 'matplotlib', 'geopandas', 'shapely', 'pyproj', 'pyogrio', 'rasterio'))\n"
        "assert not heavy, heavy\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "usage: incubloc" in proc.stdout


# ------------------------------------------------------------- Ripley pair counts


def _clustered(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 10_000, (8, 2))
    xy = centres[rng.integers(0, 8, n)] + rng.normal(scale=400.0, size=(n, 2))
    # a lattice block adds exact ties at the thresholds
    g = np.arange(0.0, 1000.0, 100.0)
    lattice = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2) + 20_000.0
    return np.vstack([xy, lattice])


@pytest.mark.slow
def test_compiled_pair_counts_equal_numpy_path(monkeypatch):
    pytest.importorskip("numba", exc_type=ImportError)
    import numpy as np

    import incubloc.stats.pointpattern as pp

    xy = _clustered(4000)
    dist = np.array([100.0, 50.0, 200.0, 300.0, 141.4213562373095, 700.0, 1000.0])
    bound = np.random.default_rng(1).uniform(0, 1200.0, len(xy))
    monkeypatch.setattr(pp, "_COMPILED_KERNEL", None)
    assert pp._compiled_kernel(), "numba is installed: the compiled kernel must load"
    fast = pp._pair_counts(xy, dist), pp._pair_counts(xy, dist, bound)
    monkeypatch.setattr(pp, "_COMPILED_KERNEL", False)
    slow = pp._pair_counts(xy, dist), pp._pair_counts(xy, dist, bound)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    # and both equal the brute-force count (ordered pairs i != j with d <= r)
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    want = np.array([(d <= r).sum() for r in dist], dtype=float)
    np.testing.assert_array_equal(fast[0], want)


def test_numba_can_be_switched_off(monkeypatch):
    import incubloc.stats.pointpattern as pp

    monkeypatch.setenv("INCUBLOC_NO_NUMBA", "1")
    monkeypatch.setattr(pp, "_COMPILED_KERNEL", None)
    assert pp._compiled_kernel() is False


# ------------------------------------------------------------ reading at scale


def _big_csv(path, n: int = 30_000, *, bad: bool = True) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    lon = np.round(rng.uniform(118.4, 119.2, n), 6).astype(str).astype(object)
    lat = np.round(rng.uniform(31.2, 32.6, n), 6).astype(str).astype(object)
    ids = np.array([f"{i:06d}" for i in range(n)], dtype=object)
    level = rng.choice(["national", "省级", "Municipal ", ""], n).astype(object)
    if bad:  # a few of every kind of problem, and cells the fast parser must not take
        lon[5], lat[7], lon[9] = "118°46'48", "abc", ""
        lon[11], lat[11] = "0", "0"
        lon[13], lat[13] = "32.1", "118.8"
        lon[15] = "东经118.78"
        lon[17] = "inf"
        ids[20] = ids[19]
        level[21] = "county"
    rows = [f"{i},{x},{y},{lv},n{i},{k}" for i, x, y, lv, k in
            zip(ids, lon, lat, level, range(n), strict=True)]
    rows[30] = ",,,,,"  # an empty record
    path.write_text("id,lon,lat,level,name,extra\n" + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.mark.parametrize("bad", [False, True])
def test_arrow_reader_equals_general_reader(tmp_path, monkeypatch, bad):
    pytest.importorskip("pyarrow", exc_type=ImportError)  # broken beside numpy 1.x
    import pandas as pd

    import incubloc.io as io

    p = tmp_path / "big.csv"
    _big_csv(p, bad=bad)
    assert p.stat().st_size > io._ARROW_MIN_CHARS
    used = []
    real = io._read_arrow

    def spy(*args, **kwargs):
        used.append(real(*args, **kwargs))
        return used[-1]

    monkeypatch.setattr(io, "_read_arrow", spy)
    fast = io.read_incubators(p, errors="report")
    assert used and used[0] is not None, "the Arrow path must have read this file"
    monkeypatch.setattr(io, "_read_arrow", lambda *a, **k: None)
    slow = io.read_incubators(p, errors="report")
    pd.testing.assert_frame_equal(fast.attrs.pop("rejected"), slow.attrs.pop("rejected"))
    pd.testing.assert_frame_equal(pd.DataFrame(fast), pd.DataFrame(slow), check_exact=True)
    if bad:
        with pytest.raises(Exception) as e_slow:
            io.read_incubators(p)
        monkeypatch.setattr(io, "_read_arrow", real)
        with pytest.raises(Exception) as e_fast:
            io.read_incubators(p)
        assert type(e_fast.value) is type(e_slow.value)
        assert str(e_fast.value) == str(e_slow.value)
        assert "line 9 (id '000007'): lat 'abc' is not a number" in str(e_fast.value)


def test_fast_parsers_equal_cell_by_cell_parsers():
    import numpy as np
    import pandas as pd

    from incubloc import _validate as v

    cells = ["118.78", " 118.78 ", "１１８．７８", "118。78", "118°46'48\"", "东经118.78°",
             "118.78E", "W118.78", "", "  ", "\u3000", None, np.nan, "nan", "inf", "-inf",
             "1e3", "1,000", "abc", "0", "-0.0", "32.0400000000000000001", "+5", "5.",
             ".5", "118度46分48秒", "\t7\n", "0x10", "1_000"]
    for dtype in (object, "string", str):
        s = pd.Series(cells * 3, dtype=dtype)
        got, want = v.parse_coordinates(s), v._parse_coordinates_exact(s)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        got, want = v.parse_numbers(s, strip=v.AREA_STRIP), v._parse_numbers_exact(s, strip=v.AREA_STRIP)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        ref = s.isna().to_numpy() | s.astype(object).where(s.notna(), "").map(str).str.strip().eq("").to_numpy()
        np.testing.assert_array_equal(v.blank(s), ref)
    mixed = pd.Series([1, 2.5, True, "3", " 4 ", None, "x"], dtype=object)
    np.testing.assert_array_equal(v.parse_numbers(mixed)[0], v._parse_numbers_exact(mixed)[0])


@pytest.mark.parametrize("arrow", [True, False])
def test_large_csv_equals_a_frame_built_with_pandas_and_points_from_xy(tmp_path, monkeypatch,
                                                                     arrow):
    """A clean million-row-like table (ids in and out of order, long decimals, labels
    with spaces, Chinese names) read by either path gives the frame written down here
    from the generated values: columns, dtypes, values, index, geometry and CRS."""
    pytest.importorskip("pyarrow", exc_type=ImportError)  # broken beside numpy 1.x
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    import incubloc.io as io

    n = 20_000
    rng = np.random.default_rng(11)
    ids = [f"NJ{i:06d}" for i in rng.permutation(n)] if arrow else [f"NJ{i:06d}" for i in range(n)]
    names = [f"孵化器{i}号" for i in range(n)]
    lon = np.round(rng.uniform(118.3, 119.3, n), 6)
    lat = rng.uniform(31.2, 32.6, n)  # full repr: 16-17 digits, not "plain" decimals
    raw_level = rng.choice(["national", "省级", " Municipal ", "国家级"], n)
    opened = rng.integers(1990, 2020, n)
    lines = [f"{i},{nm},{x!r},{y!r},{lv},{k}" for i, nm, x, y, lv, k in
             zip(ids, names, lon.tolist(), lat.tolist(), raw_level, opened, strict=True)]
    path = tmp_path / "large.csv"
    path.write_text("id,name,lon,lat,level,opened\n" + "\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size > io._ARROW_MIN_CHARS
    if not arrow:
        monkeypatch.setattr(io, "_read_arrow", lambda *a, **k: None)
    got = io.read_incubators(path)

    level = {"national": "national", "省级": "provincial", " Municipal ": "municipal",
             "国家级": "national"}
    want = pd.DataFrame({
        "id": ids, "name": names, "level": [level[v] for v in raw_level],
        "opened": pd.array(opened, dtype="Int64"),
        "site_area_m2": np.full(n, np.nan), "floor_area_m2": np.full(n, np.nan),
        "declared_relation": pd.Series(np.nan, index=range(n), dtype=object),
        "declared_layout": pd.Series(np.nan, index=range(n), dtype=object),
        "row": np.arange(2, n + 2, dtype="int64"), "lon": lon, "lat": lat,
    })
    want = gpd.GeoDataFrame(want, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    pd.testing.assert_frame_equal(pd.DataFrame(got).drop(columns="geometry"),
                                  pd.DataFrame(want).drop(columns="geometry"), check_exact=True)
    assert list(got.columns) == list(want.columns) and got.crs == want.crs
    assert isinstance(got.index, pd.RangeIndex) and got.geometry.name == "geometry"
    assert shapely.equals_exact(got.geometry.values, want.geometry.values, tolerance=0).all()


def test_fast_text_checks_equal_cell_by_cell_on_random_cells():
    """Random cells mixing numbers, signs, Chinese text and every Unicode space: the
    byte-level checks of Arrow columns give what the cell-by-cell code gives on the
    same cells as Python objects."""
    pytest.importorskip("pyarrow", exc_type=ImportError)  # broken beside numpy 1.x
    import numpy as np
    import pandas as pd

    from incubloc import _validate as v

    rng = np.random.default_rng(7)
    alphabet = list("0123456789.-+eE ,°度国家级") + [
        "\u3000", "\xa0", "\x85", "\u2009", "\u202f", "\u205f", "\u1680", "\u2028", "\t",
        "〇", "”", "。", "１", "\u200b"]

    def cell():
        r = rng.random()
        if r < 0.05:
            return None
        if r < 0.4:
            return f"{rng.uniform(-200, 200):.{rng.integers(0, 15)}f}"
        if r < 0.5:
            return str(rng.integers(1000, 10000))
        return "".join(rng.choice(alphabet, rng.integers(0, 6)))

    cells = [cell() for _ in range(4000)]
    exact = pd.Series(cells, dtype=object)
    arrow = pd.Series(cells, dtype=pd.StringDtype("pyarrow"))
    for parse in (v.parse_coordinates, v.parse_numbers):
        got, want = parse(arrow), parse(exact)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(v.blank(arrow), v.blank(exact))
    strip = exact.map(lambda c: isinstance(c, str) and c != c.strip()).to_numpy()
    assert not (strip & ~v._may_need_strip(arrow)).any()
    got_ids, got_missing = v.as_ids(arrow)
    want_ids, want_missing = v.as_ids(exact)
    np.testing.assert_array_equal(got_missing, want_missing)
    assert got_ids[~got_missing].tolist() == want_ids[~want_missing].tolist()
    got_years, got_bad = v.parse_years(arrow)
    want_years, want_bad = v.parse_years(exact)
    pd.testing.assert_series_equal(got_years, want_years)
    np.testing.assert_array_equal(got_bad, want_bad)
    got_labels, got_unknown = v.map_labels(arrow, v.LEVEL_ALIASES)
    want_labels, want_unknown = v.map_labels(exact, v.LEVEL_ALIASES)
    np.testing.assert_array_equal(got_unknown, want_unknown)
    assert got_labels.tolist() == want_labels.tolist()


@pytest.mark.parametrize("enabled", [True, False])
def test_points_leave_the_garbage_collector_as_they_found_it(enabled):
    import gc

    import geopandas as gpd
    import numpy as np

    import incubloc.io as io

    x, y = np.array([118.78, 118.9]), np.array([32.04, 32.1])
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        points = io._points(x, y)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert points.equals(gpd.points_from_xy(x, y))


@pytest.mark.parametrize(("ids", "duplicated"), [
    (["a", "b", "c", "d"], False), (["d", "a", "c", "b"], False),
    (["a", "b", "b", "c"], True), (["c", "a", "b", "a"], True), (["b", "a"], False)])
def test_duplicate_ids_found_in_sorted_and_unsorted_arrow_columns(ids, duplicated):
    pytest.importorskip("pyarrow", exc_type=ImportError)  # broken beside numpy 1.x
    import pandas as pd

    from incubloc import _validate as v

    assert v.any_duplicated(pd.Series(ids, dtype=pd.StringDtype("pyarrow"))) is duplicated
    assert v.any_duplicated(pd.Series(ids, dtype=object)) is duplicated


def test_parquet_in_and_out(tmp_path):
    pytest.importorskip("pyarrow", exc_type=ImportError)  # broken beside numpy 1.x
    import geopandas as gpd
    import pandas as pd

    from incubloc.io import read_incubators

    df = pd.DataFrame({"id": ["a", "b"], "lon": [118.78, 118.9], "lat": [32.04, 32.1],
                       "level": ["国家级", "省级"]})
    plain = tmp_path / "plain.parquet"
    df.to_parquet(plain)
    from_csv = read_incubators(df)
    got = read_incubators(plain)
    assert got["level"].tolist() == ["national", "provincial"]
    assert got.geometry.equals(from_csv.geometry)
    geo = tmp_path / "geo.parquet"
    gpd.GeoDataFrame(df[["id", "level"]], geometry=gpd.points_from_xy(df.lon, df.lat),
                     crs=4326).to_parquet(geo)
    got = read_incubators(geo)
    assert got.geometry.equals(from_csv.geometry) and got["id"].tolist() == ["a", "b"]


# --------------------------------------------------------------- lattice figures


def _lattice_study():
    import numpy as np
    from test_plot import METRIC, make_study

    from incubloc.stats.autocorrelation import make_grid

    study = make_study()
    cities = study.study_area.get("cities").to_crs(METRIC)
    grid = make_grid(cities.union_all(), cell_size=1000.0, crs=METRIC)
    rng = np.random.default_rng(5)
    grid["lisa_cluster"] = rng.choice(["HH", "HL", "LH", "LL", "ns", None], len(grid),
                                      p=[0.1, 0.05, 0.05, 0.1, 0.6, 0.1])
    bins = ["hot_99", "hot_95", "hot_90", "ns", "cold_90", "cold_95", "cold_99"]
    grid["gi_bin"] = rng.choice(bins, len(grid), p=[0.05, 0.05, 0.05, 0.7, 0.05, 0.05, 0.05])
    study.grids = {"grid_1000": grid}
    return study, grid


def _legend_and_title(fig):
    ax = fig.axes[0]
    leg = ax.get_legend()
    return ([t.get_text() for t in leg.get_texts()], leg.get_title().get_text(),
            ax.get_title(loc="left"), ax.get_xlim(), ax.get_ylim())


@pytest.mark.parametrize("name", ["fig_lisa", "fig_hotspots"])
def test_lattice_map_as_one_image_matches_polygon_map(monkeypatch, name):
    import numpy as np
    from matplotlib.colors import to_rgba

    from incubloc.shells import plot

    study, grid = _lattice_study()
    assert len(grid) > 100 and (grid.geometry.area < 999_999).any()  # clipped cells too
    monkeypatch.setattr(plot, "LATTICE_RASTER_MIN_CELLS", 10**9)
    poly = getattr(plot, name)(study, grid="grid_1000")
    monkeypatch.setattr(plot, "LATTICE_RASTER_MIN_CELLS", 0)
    raster = getattr(plot, name)(study, grid="grid_1000")
    assert _legend_and_title(poly) == _legend_and_title(raster)
    assert len(raster.axes[0].images) == 1 and not poly.axes[0].images
    # class counts in the legend are the grid's own counts (computed here, not by plot)
    column, kind = ("lisa_cluster", "lisa") if name == "fig_lisa" else ("gi_bin", "gi_bin")
    counts = grid[column].fillna("ns").value_counts()
    labels = _legend_and_title(raster)[0]
    for cls, label in plot.LABELS[kind].items():
        assert f"{label} ({int(counts.get(cls, 0))})" in labels
    # each whole cell's pixel has its class colour
    image = raster.axes[0].images[0].get_array()
    whole = grid[grid.geometry.area >= 1e6 * (1 - 1e-9)]
    c = whole["grid_col"] - grid["grid_col"].min()
    r = whole["grid_row"] - grid["grid_row"].min()
    want = np.array([to_rgba(plot.COLOURS[kind][v]) for v in whole[column].fillna("ns")])
    np.testing.assert_allclose(image[r, c], want)


def test_irregular_grid_falls_back_to_polygons(monkeypatch):
    from incubloc.shells import plot

    study, grid = _lattice_study()
    grid = grid.drop(columns=["grid_row", "grid_col"])
    study.grids = {"grid_1000": grid}
    monkeypatch.setattr(plot, "LATTICE_RASTER_MIN_CELLS", 0)
    assert not plot.fig_lisa(study, grid="grid_1000").axes[0].images


@pytest.mark.slow
def test_figures_drawn_in_parallel_are_the_same_files(tmp_path, monkeypatch):
    from test_plot import make_study

    from incubloc.shells import plot
    from incubloc.shells.report import write_figures

    keep = ("counts_by_city", "ripley", "kde", "moran_profile")
    monkeypatch.setattr(plot, "FIGURES", tuple(f for f in plot.FIGURES if f.name in keep))
    study = make_study()
    one = write_figures(study, tmp_path / "one", svg="small", workers=1)
    two = write_figures(study, tmp_path / "two", svg="small", workers=2)
    assert list(one) == list(two)
    for name, rf in one.items():
        other = two[name]
        assert rf.note == other.note
        assert [p.name for p in rf.files] == [p.name for p in other.files]
        for a, b in zip(rf.files, other.files, strict=True):
            assert a.read_bytes() == b.read_bytes(), a.name
    # small vector charts get an SVG, raster maps do not
    assert (tmp_path / "one" / "ripley.svg").exists()
    assert not (tmp_path / "one" / "kde.svg").exists()


# --------------------------------------------------------------- classification


def test_layout_projects_only_buildings_near_sites_with_the_same_result(monkeypatch):
    import pandas as pd

    from incubloc.datasets import load_example
    from incubloc.scales import layout

    ex = load_example("nanjing")
    buildings = ex.study_area.get("buildings")
    far = buildings.copy()  # decoys far from every site, interleaved with the real ones
    far["geometry"] = far.geometry.translate(xoff=3.0)
    buildings = pd.concat([buildings, far]).sort_index(kind="stable").reset_index(drop=True)
    monkeypatch.setattr(layout, "_PREFILTER_MIN_BUILDINGS", 10**9)
    full = layout.classify_layout(ex.incubators, ex.sites, buildings)
    monkeypatch.setattr(layout, "_PREFILTER_MIN_BUILDINGS", 0)
    seen = []
    real = layout._building_frame
    monkeypatch.setattr(layout, "_building_frame",
                        lambda b, *a: seen.append(a[-1]) or real(b, *a))
    fast = layout.classify_layout(ex.incubators, ex.sites, buildings)
    assert seen and seen[0] is not None and 0 < len(seen[0]) < len(buildings)
    pd.testing.assert_frame_equal(full, fast)
    # also for point-only incubators (no sites): the footprint at the point
    full = layout.classify_layout(ex.incubators, None, buildings)
    monkeypatch.setattr(layout, "_PREFILTER_MIN_BUILDINGS", 10**9)
    assert full.equals(layout.classify_layout(ex.incubators, None, buildings))
    assert (full["layout"] != "unclassified").any()
