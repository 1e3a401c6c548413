"""One test per entry of the catalogue of user errors (docs/errors.md), and a run on a
deliberately messy copy of the bundled data.

Test names carry the catalogue's entry number (E01, E02, ...).
"""

import csv
import io
import logging
import os

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import GeometryCollection, LineString, Point, Polygon, box

from incubloc._guards import available_memory, check_array_memory
from incubloc.classification import classify
from incubloc.config import load_config
from incubloc.datasets import load_example, nanjing_incubators_path
from incubloc.errors import (
    ConfigError,
    CoordinateError,
    IncublocError,
    InputError,
    MissingLayerError,
    ResourceError,
    StudyAreaError,
)
from incubloc.io import atomic_path, read_incubators
from incubloc.shells.cli import main
from incubloc.studyarea import LAYERS, StudyArea, load_study_area

HEADER = "id,name,level,lon,lat\n"
ROWS = "A1,紫金孵化器,国家级,118.78,32.04\nA2,徐庄软件园,省级,118.88,32.05\n"


def _write(tmp_path, text, encoding="utf-8", name="inc.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# ----------------------------------------------------------------- E01-E02 encodings


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8", "utf-16"])
def test_E01_encodings_are_detected(tmp_path, encoding):
    # 𠀀 (U+20000) exists only in GB18030 among the Chinese codecs.
    name = "𠀀孵化器" if encoding in ("gb18030", "utf-8-sig", "utf-8", "utf-16") else "孵化器"
    path = _write(tmp_path, HEADER + f"A1,{name},国家级,118.78,32.04\n", encoding)
    gdf = read_incubators(path)
    assert gdf["name"].tolist() == [name]
    assert gdf["id"].tolist() == ["A1"]  # a BOM does not stick to the first header


def test_E02_unknown_or_wrong_encoding(tmp_path):
    path = _write(tmp_path, HEADER + "A1,é,国家级,118.78,32.04\n", "utf-8")
    # Bytes that are neither UTF-8 nor GB18030.
    bad = tmp_path / "bad.csv"
    bad.write_bytes(HEADER.encode() + b"A1,\x80\xff\xfe,x,118.78,32.04\n")
    with pytest.raises(InputError, match=r"neither UTF-8 nor GBK.*line 2.*--encoding"):
        read_incubators(bad)
    with pytest.raises(InputError, match=r"unknown encoding 'gbkk'"):
        read_incubators(path, encoding="gbkk")
    with pytest.raises(InputError, match=r"not valid ascii \(line 2\)"):
        read_incubators(path, encoding="ascii")
    big5 = _write(tmp_path, HEADER + "A1,臺灣創新園,國家級,118.78,32.04\n", "big5", "b5.csv")
    assert read_incubators(big5, encoding="big5")["name"].tolist() == ["臺灣創新園"]


def test_E02_mixed_encodings_line_by_line(tmp_path, caplog):
    data = (HEADER.encode() + "A1,紫金孵化器,国家级,118.78,32.04\n".encode()
            + "A2,徐庄软件园,省级,118.88,32.05\n".encode("gbk"))
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="incubloc.io"):
        gdf = read_incubators(path)
    assert gdf["name"].tolist() == ["紫金孵化器", "徐庄软件园"]
    assert "mixes encodings: lines 3 read as GBK" in caplog.text


# ---------------------------------------------------------------- E03-E08 coordinates


def test_E03_swapped_lon_lat(tmp_path):
    path = _write(tmp_path, HEADER + "A1,x,国家级,32.04,118.78\nA2,y,省级,118.88,32.05\n")
    with pytest.raises(CoordinateError, match=r"line 2 \(id 'A1'\).*swapped") as err:
        read_incubators(path)
    assert "swap the longitude and latitude columns" in str(err.value)
    assert read_incubators(path, lon="lat", lat="lon", errors="report")["id"].tolist() == ["A1"]


@pytest.mark.parametrize(("lon", "lat"), [
    ("东经118.78°", "北纬32.04°"), ("118.78°E", "32.04°N"), ("E118.78", "N32.04"),
    ("118。78", "32。04"), ("１１８．７８", "３２．０４"), ("118.78度", "32.04度"),
    ("118°46'48\"", "32°2'24\""), ("118度46分48秒", "32度2分24秒"), (" 118.78 ", "32.04\t"),
])
def test_E04_coordinates_as_text(tmp_path, lon, lat):
    def quoted(cell):
        return '"' + cell.replace('"', '""') + '"'

    text = f"id,lon,lat\nA1,{quoted(lon)},{quoted(lat)}\n"
    gdf = read_incubators(_write(tmp_path, text))
    assert gdf.geometry.x.iloc[0] == pytest.approx(118.78, abs=1e-9)
    assert gdf.geometry.y.iloc[0] == pytest.approx(32.04, abs=1e-9)


def test_E04_unparseable_coordinates_name_the_line(tmp_path):
    path = _write(tmp_path, "id,lon,lat\nA1,118.78W,32.04\nA2,118,78,32\n".replace(
        "118,78,32", '"118,78",32.04'))
    with pytest.raises(CoordinateError) as err:
        read_incubators(path)
    msg = str(err.value)
    assert "line 2 (id 'A1'): lon '118.78W' is not a number" in msg
    assert "line 3 (id 'A2'): lon '118,78' is not a number" in msg
    assert "decimal degrees" in msg


def test_E05_empty_rows(tmp_path):
    path = _write(tmp_path, HEADER + "A1,x,国家级,118.78,32.04\n,,,,\n\n\nA2,y,省级,118.88,32.05\n")
    gdf = read_incubators(path, errors="report")
    assert gdf["row"].tolist() == [2, 6]  # blank lines are skipped, yet counted
    rej = gdf.attrs["rejected"]
    assert rej["row"].tolist() == [3]
    assert "empty row" in rej["problem"].iloc[0]


def test_E06_nan_coordinates(tmp_path):
    path = _write(tmp_path, HEADER + "A1,x,国家级,NaN,32.04\nA2,y,省级,118.88,\nA3,z,市级,nan,NULL\n")
    with pytest.raises(CoordinateError) as err:
        read_incubators(path)
    msg = str(err.value)
    for line, text in ((2, "lon is empty"), (3, "lat is empty"), (4, "lon is empty")):
        assert f"line {line} " in msg and text in msg
    assert "fill in the missing coordinates" in msg


def test_E07_zero_zero_points(tmp_path):
    path = _write(tmp_path, HEADER + "A1,x,国家级,0,0\nA2,y,省级,118.88,32.05\n")
    with pytest.raises(CoordinateError, match=r"line 2 \(id 'A1'\): lon 0, lat 0: a placeholder"):
        read_incubators(path)
    gdf = read_incubators(path, errors="report")
    assert gdf["id"].tolist() == ["A2"] and gdf.attrs["rejected"]["row"].tolist() == [2]


def test_E08_duplicate_ids(tmp_path):
    path = _write(tmp_path, HEADER + ROWS + "A1,again,国家级,118.70,32.00\n")
    with pytest.raises(InputError, match=r"line 4 \(id 'A1'\): duplicate id 'A1' \(first on line 2\)"):
        read_incubators(path)
    gdf = read_incubators(path, errors="report")
    assert gdf["id"].tolist() == ["A1", "A2"]  # the first stays, the repeat is listed


def test_E09_duplicate_locations_are_kept_and_warned(tmp_path, caplog):
    path = _write(tmp_path, HEADER + ROWS + "A3,same building,市级,118.78,32.04\n")
    with caplog.at_level(logging.WARNING, logger="incubloc.io"):
        gdf = read_incubators(path)
    assert gdf["id"].tolist() == ["A1", "A2", "A3"]
    assert "2 incubators share 1 locations (lines 2/4)" in caplog.text


def _small_area():
    cities = gpd.GeoDataFrame({"city": ["A"], "province": ["P"]},
                              geometry=[box(118.7, 31.9, 118.9, 32.1)], crs=4326)
    rings = gpd.GeoDataFrame({"city": ["A"], "prefecture": ["A"], "ring": ["core"]},
                             geometry=[box(118.7, 31.9, 118.9, 32.1)], crs=4326)
    return StudyArea({"cities": cities, "rings": rings})


def test_E10_points_outside_the_study_area(tmp_path):
    path = _write(tmp_path, HEADER + ROWS + "A3,far,市级,121.47,31.23\n")
    inc = read_incubators(path)
    out = classify(inc, _small_area()).incubators
    assert out["id"].tolist() == ["A1", "A2", "A3"]
    far = out.iloc[2]
    assert far["city"] == "unclassified" and far["ring"] == "unclassified"
    assert "region" in far["reason"] and len(far["reason"]) > 10
    assert out.iloc[0]["city"] == "A" and out.iloc[0]["ring"] == "core"


def test_E11_extra_cells_in_a_row(tmp_path):
    path = _write(tmp_path, HEADER + "A1,紫金,孵化器,国家级,118.78,32.04\nA2,y,省级,118.88,32.05\n")
    with pytest.raises(InputError):  # pandas refuses the ragged table before we see it
        read_incubators(path)
    path = _write(tmp_path, "id,lon,lat\nA1,118.78,32.04,extra\n", name="b.csv")
    with pytest.raises(InputError, match=r"line 2 \(id 'A1'\): more cells than the 3 columns"):
        read_incubators(path)


def test_E12_unknown_level_labels(tmp_path):
    path = _write(tmp_path, HEADER + "A1,x,国级,118.78,32.04\n")
    with pytest.raises(InputError, match=r"line 2 \(id 'A1'\): unknown level '国级'") as err:
        read_incubators(path)
    assert "accepted: national" in str(err.value)


# ------------------------------------------------------------ E13-E16 study area


_VALID = {
    "Polygon": box(118.70, 31.90, 118.80, 32.00),
    "LineString": LineString([(118.7, 31.9), (118.8, 32.0)]),
    "Point": Point(118.75, 31.95),
}
_BOWTIE = Polygon([(118.0, 32.0), (118.2, 32.2), (118.2, 32.0), (118.0, 32.2)])
# Collinear vertices: valid for GEOS, but without area.
_COLLAPSED = Polygon([(118.0, 32.0), (118.1, 32.1), (118.2, 32.2), (118.0, 32.0)])
# A ring doubling back on itself: invalid, and make_valid leaves only a line.
_SPIKE = Polygon([(118.0, 32.0), (118.1, 32.0), (118.2, 32.0), (118.1, 32.0), (118.0, 32.0)])
_KIND = {"corridors": "LineString", "centres": "Point"}


def _layer(name, geoms):
    cols = {c: ["v"] * len(geoms) for c in LAYERS[name]}
    return gpd.GeoDataFrame(cols, geometry=list(geoms), crs=4326)


@pytest.mark.parametrize("name", list(LAYERS))
def test_E13_invalid_and_empty_geometries_in_every_layer(tmp_path, name):
    kind = _KIND.get(name, "Polygon")
    good = _VALID[kind]
    geoms = [good, Polygon(), None]
    if kind == "Polygon":
        geoms += [_BOWTIE, _COLLAPSED, _SPIKE]
    path = tmp_path / "sa.gpkg"
    _layer(name, geoms).to_file(path, layer=name)
    sa = load_study_area(path)
    layer = sa.layers[name]
    text = " | ".join(sa.repairs)
    assert f"layer {name!r}: dropped 2 empty geometries (features 2, 3)" in text
    if kind == "Polygon":
        assert len(layer) == 2  # the valid polygon and the repaired bow-tie
        assert layer.geometry.is_valid.all()
        assert set(layer.geom_type) <= {"Polygon", "MultiPolygon"}
        assert layer.geometry.iloc[1].area == pytest.approx(0.02, rel=1e-6)
        assert "repaired 2 invalid geometries with make_valid (features 4, 6)" in text
        assert "dropped 2 features with no Polygon left after repair (features 5, 6)" in text
    else:
        assert len(layer) == 1 and layer.geometry.iloc[0].equals(good)


def test_E14_mixed_geometry_types(tmp_path):
    poly = box(118.7, 31.9, 118.8, 32.0)
    geoms = [poly, Point(118.75, 31.95), LineString([(118.7, 31.9), (118.8, 32.0)]),
             GeometryCollection([box(118.8, 31.9, 118.9, 32.0), Point(1, 1)])]
    path = tmp_path / "sa.gpkg"
    _layer("hosts", geoms).to_file(path, layer="hosts")
    _layer("centres", [Point(118.7, 31.9), box(118.8, 31.9, 118.9, 32.0)]).to_file(
        path, layer="centres")
    sa = load_study_area(path)
    hosts = sa.layers["hosts"]
    assert len(hosts) == 2 and set(hosts.geom_type) == {"Polygon"}
    assert hosts.geometry.iloc[1].equals(box(118.8, 31.9, 118.9, 32.0))
    centres = sa.layers["centres"]
    assert set(centres.geom_type) == {"Point"}
    assert box(118.8, 31.9, 118.9, 32.0).contains(centres.geometry.iloc[1])
    text = " | ".join(sa.repairs)
    assert "layer 'hosts': kept only the Polygon parts of 3" in text
    assert "(features 2, 3, 4)" in text
    assert "layer 'centres': 1 polygons replaced by a point inside them (features 2)" in text


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_E15_missing_crs(tmp_path):
    no_crs = gpd.GeoDataFrame({"city": ["A"], "province": ["P"]}, geometry=[box(0, 0, 1, 1)])
    path = tmp_path / "sa.gpkg"
    no_crs.to_file(path, layer="cities")
    with pytest.raises(StudyAreaError, match=r"layer 'cities' .* has no CRS"):
        load_study_area(path)
    inc = gpd.GeoDataFrame({"id": ["A1"]}, geometry=[Point(118.78, 32.04)])
    with pytest.raises(CoordinateError, match=r"has no CRS.*crs=4326"):
        read_incubators(inc)
    assert read_incubators(inc, crs=4326)["id"].tolist() == ["A1"]
    shp = tmp_path / "inc.shp"
    inc.to_file(shp)
    with pytest.raises(CoordinateError, match=r"no CRS \(a Shapefile without its .prj"):
        read_incubators(shp)


def test_E16_layer_names_missing(tmp_path):
    path = tmp_path / "sa.gpkg"
    cities = gpd.GeoDataFrame({"city": ["A"], "province": ["P"]},
                              geometry=[box(0, 0, 1, 1)], crs=4326)
    cities.to_file(path, layer="城市")
    with pytest.raises(StudyAreaError, match=r"none of the study-area layers \(its layers: 城市\)"):
        load_study_area(path)
    cities.to_file(path, layer="cities")
    with pytest.raises(StudyAreaError, match=r"unknown study-area layer\(s\) ringz"):
        load_study_area(path, layers=["ringz"])
    sa = load_study_area(path)
    with pytest.raises(MissingLayerError, match=r"'rings'.*missing or empty"):
        sa.require("rings", "rings and ring patterns")
    # Classification still runs: the missing scales are unclassified with a reason.
    inc = read_incubators(pd.DataFrame({"lon": [0.5], "lat": [0.5]}))
    out = classify(inc, sa).incubators
    assert out["ring"].iloc[0] == "unclassified" and "no rings layer" in out["reason"].iloc[0]


# --------------------------------------------------------------- E17-E20 config, outputs


def test_E17_config_with_unknown_keys(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text("[input]\nincubator = 'a.csv'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run.toml.*unknown key \[input\] incubator"):
        load_config(p)


def test_E18_output_path_not_writable(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(InputError, match=r"cannot create output folder"), \
            atomic_path(blocker / "sub" / "out.gpkg"):
        pass
    code = main(["-q", "classify", "--example", "nanjing", "-o", str(blocker / "o.gpkg")])
    assert code == 2


def test_E19_existing_output_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "out.gpkg"
    out.write_bytes(b"previous result")
    with pytest.raises(InputError, match=r"already exists.*--overwrite"), \
            atomic_path(out, overwrite=False):
        pass
    assert main(["-q", "classify", "--example", "nanjing", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"previous result"
    assert main(["-q", "classify", "--example", "nanjing", "-o", str(out), "--overwrite"]) == 0
    assert len(gpd.read_file(out, layer="incubators")) == 200


def test_E20_interrupted_write_leaves_no_partial_output(tmp_path):
    out = tmp_path / "report.gpkg"
    with pytest.raises(KeyboardInterrupt), atomic_path(out) as tmp:
        gpd.GeoDataFrame({"a": [1]}, geometry=[Point(0, 0)], crs=4326).to_file(tmp, driver="GPKG")
        raise KeyboardInterrupt  # the user pressed Ctrl-C mid-write
    assert not out.exists()
    assert os.listdir(tmp_path) == []  # no temporary file left behind
    out.write_text("old, complete")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert out.read_text() == "old, complete"  # the previous output survives intact
    assert os.listdir(tmp_path) == ["report.gpkg"]


def test_E21_memory_guard_rails():
    assert check_array_memory((1000, 1000), "float64", what="a grid", suggestion="s",
                              available=10**9) == 8 * 10**6
    with pytest.raises(ResourceError) as err:
        check_array_memory((200_000, 200_000), "float64", what="a 10 m density grid",
                           suggestion="use a larger --cell-size, sample the points, or dask",
                           available=16 * 2**30)
    msg = str(err.value)
    assert "a 10 m density grid (200,000 x 200,000 float64) needs 298.0 GiB" in msg
    assert "50% of the 16.0 GiB" in msg and "--cell-size" in msg
    assert isinstance(err.value, IncublocError) and isinstance(err.value, MemoryError)
    # Just under and just over the fraction.
    assert check_array_memory(64, "uint8", what="w", suggestion="s", available=128) == 64
    with pytest.raises(ResourceError):
        check_array_memory(65, "uint8", what="w", suggestion="s", available=128)
    with pytest.raises(ValueError):
        check_array_memory((-1, 3), what="w", suggestion="s")
    avail = available_memory()
    assert avail is None or avail > 0


def test_E21_available_memory_reads_meminfo(monkeypatch, tmp_path):
    import incubloc._guards as g

    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:       16000000 kB\nMemAvailable:    2000000 kB\n")
    monkeypatch.setattr(g, "_MEMINFO", fake)
    assert g.available_memory() == 2_000_000 * 1024
    with pytest.raises(ResourceError, match="1.9 GiB of memory available"):
        g.check_array_memory((40_000, 40_000), what="a distance matrix", suggestion="s")
    monkeypatch.setattr(g, "_MEMINFO", tmp_path / "missing")
    try:
        import psutil  # noqa: F401
    except ImportError:
        assert g.available_memory() is None
        assert g.check_array_memory((10**6, 10**6), what="w", suggestion="s") == 8 * 10**12


# --------------------------------------------------------------------- messy data


def _messy_copy(tmp_path):
    """The bundled CSV made messy; returns (path, expected bad lines, expected good ids)."""
    src = pd.read_csv(nanjing_incubators_path(), dtype=str)
    header = list(src.columns)
    lon_i, lat_i, level_i = header.index("lon"), header.index("lat"), header.index("level")
    records = [list(r) for r in src.itertuples(index=False)]
    out_lines = [",".join(header)]
    bad, good_ids, data_rows = set(), [], 0
    line = 1
    for k, rec in enumerate(records):
        rec = list(rec)
        kind = k % 17
        if kind == 3:
            rec[lon_i], rec[lat_i] = rec[lat_i], rec[lon_i]  # swapped
        elif kind == 5:
            rec[lon_i] = "NaN"
        elif kind == 7:
            rec[lon_i], rec[lat_i] = "0", "0"
        elif kind == 9:
            rec[level_i] = "国家级别?"  # unknown label
        elif kind == 11:
            rec[lon_i] = f"东经{rec[lon_i]}°"  # messy but good
            rec[lat_i] = rec[lat_i].replace(".", "。")
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(rec)
        line += 1
        data_rows += 1
        out_lines.append(buf.getvalue())
        if kind in (3, 5, 7, 9):
            bad.add(line)
        else:
            good_ids.append(rec[0])
        if kind == 13:  # an exact duplicate row right after
            out_lines.append(buf.getvalue())
            line += 1
            data_rows += 1
            bad.add(line)
        if kind == 15:  # an empty record and a blank line
            out_lines += [","*(len(header) - 1), ""]
            line += 2
            data_rows += 1
            bad.add(line - 1)
    text = "\n".join(out_lines) + "\n"
    path = tmp_path / "messy.csv"
    path.write_bytes(text.encode("gbk"))
    return path, bad, good_ids, data_rows


def test_messy_bundled_data_reports_every_bad_row_and_classifies_the_rest(tmp_path):
    path, bad, good_ids, data_rows = _messy_copy(tmp_path)
    assert len(bad) > 40 and len(good_ids) > 100
    with pytest.raises(IncublocError):  # the default refuses, naming the rows
        read_incubators(path, coords="gcj02")
    gdf = read_incubators(path, coords="gcj02", errors="report")
    rejected = gdf.attrs.pop("rejected")
    assert set(rejected["row"]) == bad
    assert rejected["row"].is_unique and (rejected["problem"].str.len() > 0).all()
    assert gdf["id"].tolist() == good_ids
    assert len(gdf) + len(rejected) == data_rows  # the counts add up
    ex = load_example("nanjing")
    result = classify(gdf, ex.study_area, sites=ex.sites)
    out = result.incubators
    assert out["id"].tolist() == good_ids
    assert (out["city"] != "unclassified").all()  # every good row is located
    # Good rows are located exactly as in the clean file.
    clean = ex.incubators.set_index("id").loc[good_ids]
    np.testing.assert_allclose(gdf.geometry.x, clean.geometry.x, atol=1e-9)
    np.testing.assert_allclose(gdf.geometry.y, clean.geometry.y, atol=1e-9)


def test_E22_projected_coordinates_outside_the_crs(tmp_path):
    # x = 17,197 km is far outside UTM 50N: the conversion gives infinities.
    inc = gpd.GeoDataFrame({"id": ["A1", "A2"]},
                           geometry=[Point(17_197_654.0, 0.0), Point(668_000.0, 3_543_000.0)],
                           crs=32650)
    with pytest.raises(CoordinateError, match=r"row 1 \(id 'A1'\): cannot be converted"):
        read_incubators(inc)
    gdf = read_incubators(inc, errors="report")
    assert gdf["id"].tolist() == ["A2"] and np.isfinite(gdf.geometry.x).all()
    path = _write(tmp_path, "id,x,y\nA1,17197654,0\nA2,668000,3543000\n")
    gdf = read_incubators(path, crs=32650, errors="report")
    assert gdf["id"].tolist() == ["A2"] and gdf.attrs["rejected"]["row"].tolist() == [2]
