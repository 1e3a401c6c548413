"""The interactive map's data and page (incubloc.shells.webmap), on a hand-built study.

The study is a handful of incubators with known classes, three rings, a host, a grid
and a district layer whose local-statistics classes are set by hand, so every
expectation is counted here from the inputs. The headless-Chromium tests of the page
are in tests/test_report.py (they reuse its browser fixture and the Nanjing report).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from incubloc.config import resolve_config
from incubloc.coords import wgs84_to_gcj02
from incubloc.errors import ConfigError
from incubloc.shells.webmap import (
    check_basemap,
    config_options,
    map_data,
    render_interactive_map,
    tile_coords,
    write_interactive_map,
)

AMAP = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&style=8&x={x}&y={y}&z={z}"
TIANDITU = "https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}&tk=KEY"

INC = pd.DataFrame({
    "id": ["A", "B", "C", "D", "E"],
    "name": ["南京甲孵化器", "乙众创空间", "丙 </script><b>x</b>", "丁", "戊"],
    "level": ["national", "provincial", "municipal", None, "national"],
    "city": ["Nanjing"] * 5,
    "ring": ["core", "inner_suburb", "outer_suburb", "core", "core"],
    "relation": ["park_in_park", "standalone", "mixed", "standalone", "park_in_park"],
    "layout": ["building", "park", "mixed", "park", "building"],
    "reason": ["r1", "r2", "r3", "r4", "r5"],
    "lon": [118.78, 118.90, 119.05, 118.80, 118.79],
    "lat": [32.05, 32.10, 31.90, 32.07, 32.04],
})


class _Area:
    def __init__(self, layers):
        self.layers = layers

    def get(self, name):
        return self.layers.get(name)


def _study(*, grid_cols=None, district_cols=None):
    inc = gpd.GeoDataFrame(INC.drop(columns=["lon", "lat"]),
                           geometry=gpd.points_from_xy(INC.lon, INC.lat), crs=4326)
    # Reversed order on purpose: the map must follow ids, not positions.
    inc = inc.iloc[::-1].reset_index(drop=True)
    rings = gpd.GeoDataFrame({"city": ["Nanjing"] * 3,
                              "ring": ["core", "inner_suburb", "outer_suburb"]},
                             geometry=[Point(118.8, 32.05).buffer(r) for r in (0.05, 0.15, 0.3)],
                             crs=4326)
    hosts = gpd.GeoDataFrame({"host_id": ["H1"], "name": ["园区"], "kind": ["science_park"]},
                             geometry=[box(118.77, 32.03, 118.81, 32.06)], crs=4326)
    cities = gpd.GeoDataFrame({"city": ["Nanjing"], "city_zh": ["南京市"]},
                              geometry=[box(118.3, 31.5, 119.3, 32.6)], crs=4326)
    # A 10 x 10 grid of 2 km cells in UTM 50N with hand-set classes.
    x0, y0 = 650_000, 3_540_000
    cells = [box(x0 + i * 2000, y0 + j * 2000, x0 + (i + 1) * 2000, y0 + (j + 1) * 2000)
             for j in range(10) for i in range(10)]
    lisa = np.array(["ns"] * 100, dtype=object)
    lisa[[0, 1, 2]] = "HH"
    lisa[[50]] = "LH"
    gi = np.array(["ns"] * 100, dtype=object)
    gi[[0, 1]] = "hot_99"
    gi[[2, 3]] = "hot_90"
    gi[[99]] = "cold_95"
    count = np.zeros(100, dtype=int)
    count[[0, 50]] = 2
    grid = gpd.GeoDataFrame({"cell_id": np.arange(100), "count": count, "lisa_cluster": lisa,
                             "gi_bin": gi, "hotspot": np.where(gi == "ns", "ns", "hot")},
                            geometry=cells, crs=32650)
    if grid_cols is not None:
        grid = grid[[*grid_cols, "geometry"]]
    districts = gpd.GeoDataFrame({"district": ["Xuanwu", "Gulou", "Jiangning"],
                                  "lisa_cluster": ["HH", "ns", "LL"]},
                                 geometry=[box(118.7 + k * 0.1, 32.0, 118.8 + k * 0.1, 32.1)
                                           for k in range(3)], crs=4326)
    if district_cols is not None:
        districts = districts[[*district_cols, "geometry"]]
    area = _Area({"rings": rings, "hosts": hosts, "cities": cities})
    return SimpleNamespace(incubators=inc, study_area=area, grids={"grid_2000m": grid},
                           results={"districts": districts}, surfaces={})


def _page_data(page: str) -> dict:
    m = re.search(r"<script id='incubloc-data' type='application/json'>(.*?)</script>", page, re.S)
    assert m
    return json.loads(m.group(1))


# ------------------------------------------------------------------ incubators
def test_every_incubator_once_with_its_classes():
    study = _study()
    data = _page_data(render_interactive_map(study))
    cols = data["incubators"]["columns"]
    rows = [dict(zip(cols, r, strict=True)) for r in data["incubators"]["rows"]]
    assert sorted(r["id"] for r in rows) == sorted(INC["id"])  # each exactly once
    truth = INC.set_index("id")
    for r in rows:
        t = truth.loc[r["id"]]
        for k in ("name", "level", "city", "ring", "relation", "layout", "reason"):
            assert r[k] == (None if pd.isna(t[k]) else t[k]), (r["id"], k)
        assert r["lon"] == pytest.approx(t["lon"], abs=1e-6)
        assert r["lat"] == pytest.approx(t["lat"], abs=1e-6)
    # One colour per class present, the missing level drawn as unclassified.
    assert set(data["classes"]) == {"level", "ring", "relation", "layout"}
    assert set(data["classes"]["level"]["colours"]) == {"national", "provincial", "municipal",
                                                        "unclassified"}
    assert data["classes"]["ring"]["labels"]["core"].endswith("中心城区")


def test_script_text_in_names_cannot_close_the_data_element():
    page = render_interactive_map(_study())
    data = _page_data(page)
    assert "丙 </script><b>x</b>" in [r[3] for r in data["incubators"]["rows"]]
    assert page.count("</script>") == 3  # data, Leaflet, the map's own script


# ------------------------------------------------------------------ coordinates
def test_amap_basemap_shifts_every_coordinate_to_gcj02():
    study = _study()
    plain = map_data(study)
    amap = map_data(study, basemap=AMAP)
    assert amap["basemap"]["coords"] == "gcj02" and plain["basemap"] is None
    p = np.array([r[:2] for r in plain["incubators"]["rows"]])
    a = np.array([r[:2] for r in amap["incubators"]["rows"]])
    glon, glat = wgs84_to_gcj02(p[:, 0], p[:, 1])
    np.testing.assert_allclose(a[:, 0], glon, atol=2e-6)
    np.testing.assert_allclose(a[:, 1], glat, atol=2e-6)
    assert np.all(np.abs(a - p) > 1e-3)  # hundreds of metres: really shifted
    # Polygons too: the host's first vertex.
    host = lambda d: np.array(  # noqa: E731
        next(ly for ly in d["layers"] if ly["id"] == "hosts")["features"][0]["geometry"]
        ["coordinates"][0][0])
    gx, gy = wgs84_to_gcj02(*host(plain))
    np.testing.assert_allclose(host(amap), [gx, gy], atol=2e-6)
    # Tianditu is CGCS2000 ≈ WGS84: nothing moves; an explicit setting wins.
    tdt = map_data(study, basemap=TIANDITU)
    assert tdt["incubators"]["rows"] == plain["incubators"]["rows"]
    forced = map_data(study, basemap=TIANDITU, basemap_coords="gcj02")
    assert forced["incubators"]["rows"] == amap["incubators"]["rows"]


def test_tile_coords_and_basemap_checks():
    assert tile_coords(AMAP) == "gcj02"
    assert tile_coords(TIANDITU) == "wgs84"
    assert tile_coords(None, "gcj02") == "wgs84"  # no tiles, nothing to match
    with pytest.raises(ConfigError, match="not a tile URL"):
        check_basemap("https://example.org/tiles.png")
    with pytest.raises(ConfigError, match="BD-09"):
        check_basemap("https://maponline0.bdimg.com/tile/?x={x}&y={y}&z={z}")


def test_config_report_section():
    cfg = resolve_config({"report": {"basemap": AMAP, "basemap_subdomains": "1234"}})
    assert config_options(cfg) == {"basemap": AMAP, "basemap_coords": "auto",
                                   "subdomains": "1234", "attribution": None}
    assert resolve_config({})["report"]["basemap"] is None
    assert resolve_config({})["report"]["interactive_map"] is True
    with pytest.raises(ConfigError, match=r"\[report\] basemap"):
        resolve_config({"report": {"basemap": "tiles/{z}/{x}/{y}.png"}})
    with pytest.raises(ConfigError, match="basemap_coords"):
        resolve_config({"report": {"basemap_coords": "bd09"}})


# ------------------------------------------------------------------ local statistics
def _layer(data, ident):
    return next(ly for ly in data["layers"] if ly["id"] == ident)


def test_local_statistics_layers_follow_the_columns_present():
    data = map_data(_study())
    ids = [ly["id"] for ly in data["layers"]]
    # gi_bin present: the older hotspot column is not drawn a second time.
    assert "grid_2000m:lisa_cluster" in ids and "grid_2000m:gi_bin" in ids
    assert "grid_2000m:hotspot" not in ids and "districts:lisa_cluster" in ids
    lisa = _layer(data, "grid_2000m:lisa_cluster")
    assert sorted(f["properties"]["c"] for f in lisa["features"]) == ["HH", "HH", "HH", "LH"]
    gi = _layer(data, "grid_2000m:gi_bin")
    assert sorted(f["properties"]["c"] for f in gi["features"]) == sorted(
        ["hot_99", "hot_99", "hot_90", "hot_90", "cold_95"])
    assert set(gi["colours"]) == {"hot_99", "hot_90", "cold_95"}  # ns has no swatch
    dist = _layer(data, "districts:lisa_cluster")
    assert sorted(f["properties"]["c"] for f in dist["features"]) == ["HH", "LL"]
    popup = dict(next(f for f in dist["features"] if f["properties"]["c"] == "HH")
                 ["properties"]["p"])
    assert popup["district"] == "Xuanwu"
    # Cell 0 is the south-west cell: its polygon lies at the grid's south-west corner.
    cell0 = next(f for f in lisa["features"] if dict(f["properties"]["p"])["cell_id"] == 0)
    xy = np.array(cell0["geometry"]["coordinates"][0])
    grid = _study().grids["grid_2000m"].to_crs(4326)
    np.testing.assert_allclose(xy.min(axis=0), grid.geometry.iloc[0].bounds[:2], atol=1e-5)


def test_older_columns_are_drawn_when_the_new_ones_are_absent():
    data = map_data(_study(grid_cols=["cell_id", "count", "hotspot"], district_cols=["district"]))
    ids = [ly["id"] for ly in data["layers"]]
    assert "grid_2000m:hotspot" in ids and "grid_2000m:lisa_cluster" not in ids
    assert not any(i.startswith("districts:") for i in ids)  # no class column: no layer
    assert len(_layer(data, "grid_2000m:hotspot")["features"]) == 5


def test_large_grids_keep_only_significant_cells_with_incubators():
    data = map_data(_study(), max_cells=3)
    lisa = _layer(data, "grid_2000m:lisa_cluster")
    # 4 significant cells > 3: only those holding incubators (cells 0 and 50) remain.
    assert sorted(dict(f["properties"]["p"])["cell_id"] for f in lisa["features"]) == [0, 50]
    assert lisa["note"].startswith("2 ")


# ------------------------------------------------------------------ the page
def test_page_is_self_contained_and_forbids_requests(tmp_path):
    path = write_interactive_map(_study(), tmp_path / "interactive.html")
    page = path.read_text(encoding="utf-8")
    csp = re.search(r"Content-Security-Policy' content=\"([^\"]+)\"", page).group(1)
    assert "default-src 'none'" in csp and "img-src data: blob:;" in csp
    # Outside the inlined scripts, nothing a browser would fetch names another host.
    markup = re.sub(r"<script\b.*?</script>", "", page, flags=re.S)
    assert not re.search(r"""(src|href)\s*=\s*['"]?\s*(https?:)?//""", markup, re.I)
    assert not re.search(r"url\(\s*['\"]?(?!data:|#default#VML)", markup, re.I)
    with_tiles = render_interactive_map(_study(), basemap=AMAP)
    assert "img-src data: blob: https://*.is.autonavi.com;" in with_tiles


def test_missing_values_and_locations_give_valid_json():
    study = _study()
    inc = study.incubators.copy()
    inc.loc[0, "geometry"] = None  # listed, not drawn
    inc["reason"] = inc["reason"].astype(object)
    inc.loc[1, "reason"] = np.nan
    grid = study.grids["grid_2000m"].copy()
    grid["lisa_p"] = np.float32(np.nan)
    study.incubators, study.grids = inc, {"grid_2000m": grid}
    data = _page_data(render_interactive_map(study))  # allow_nan=False would have raised
    rows = {r[2]: r for r in data["incubators"]["rows"]}
    assert len(rows) == 5 and rows[inc.loc[0, "id"]][:2] == [None, None]
    assert rows[inc.loc[1, "id"]][-1] is None
    cells = _layer(data, "grid_2000m:lisa_cluster")["features"]
    assert all("lisa_p" not in dict(f["properties"]["p"]) for f in cells)
