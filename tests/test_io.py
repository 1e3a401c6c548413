"""Reading incubators and sites: formats, encodings, coordinates and every bad-input case."""

import hashlib
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString, Point, Polygon, box

from incubloc.coords import wgs84_to_bd09, wgs84_to_gcj02
from incubloc.errors import CoordinateError, InputError
from incubloc.io import INCUBATOR_COLUMNS, normalise_level, read_incubators, read_sites

FIXTURES = Path(__file__).parent / "fixtures" / "io"
GEOD = Geod(ellps="WGS84")
# Tiananmen, a widely published WGS84 / GCJ-02 pair.
TAM_WGS = (116.391275, 39.907650)
TAM_GCJ = (116.397516, 39.909051)


def _metres(point, lon, lat):
    return abs(GEOD.inv(point.x, point.y, lon, lat)[2])


def _csv(tmp_path, text, name="inc.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------ CSV basics


def test_fixture_csv_columns_labels_and_line_numbers():
    path = FIXTURES / "incubators.csv"
    before = _digest(path)
    gdf = read_incubators(path)
    assert _digest(path) == before  # the input file is never touched
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf.columns[: len(INCUBATOR_COLUMNS)]) == list(INCUBATOR_COLUMNS)
    assert list(gdf.columns[len(INCUBATOR_COLUMNS):]) == ["lng", "lat", "district", "geometry"]
    assert list(gdf.index) == [0, 1, 2]
    assert gdf["id"].tolist() == ["NJ001", "NJ002", "003"]  # "003" keeps its zeros
    assert gdf["level"].tolist() == ["national", "provincial", "municipal"]
    assert gdf["opened"].dtype == "Int64"
    assert gdf["opened"].tolist() == [2003, 2013, 2010]
    assert gdf["site_area_m2"].iloc[0] == 120000.0 and gdf["site_area_m2"].iloc[1] == 8000.0
    assert np.isnan(gdf["site_area_m2"].iloc[2])
    assert gdf["floor_area_m2"].dtype == float
    assert gdf["declared_relation"].tolist() == ["park_in_park", "standalone", "park_in_park"]
    assert gdf["declared_layout"].tolist() == ["park", "building", "mixed"]
    # NJ002's name spans lines 3-4 (quoted newline) and line 5 is blank.
    assert gdf["row"].tolist() == [2, 3, 6]
    assert gdf["name"].iloc[1] == "紫金（新港）科技创业\n特别社区"
    assert gdf["district"].tolist() == ["鼓楼", "栖霞", "江宁"]
    assert gdf["lng"].tolist() == [118.779, 118.9066, 118.78]  # parsed, as declared
    # "118.9066°" and full-width "１１８．７８" are plain degrees.
    xy = [(p.x, p.y) for p in gdf.geometry]
    assert xy == [(118.779, 32.056), (118.9066, 32.108), (118.78, 31.95)]


def test_gcj02_csv_reads_back_at_the_wgs84_location(tmp_path):
    path = _csv(tmp_path, f"id,lon,lat\nt,{TAM_GCJ[0]},{TAM_GCJ[1]}\n")
    gdf = read_incubators(path, coords="gcj02")
    assert _metres(gdf.geometry.iloc[0], *TAM_WGS) < 1.0
    assert gdf["lon"].iloc[0] == TAM_GCJ[0]  # the input column keeps the declared values


@pytest.mark.parametrize("coords, forward", [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_web_map_coordinates_round_trip(tmp_path, coords, forward):
    wgs = np.array([[118.7969, 32.0603], [119.4215, 32.3932], [118.3165, 32.3032]])
    lon, lat = forward(wgs[:, 0], wgs[:, 1])
    rows = "".join(f"{i},{x:.9f},{y:.9f}\n" for i, (x, y) in enumerate(zip(lon, lat, strict=True)))
    gdf = read_incubators(_csv(tmp_path, "id,lon,lat\n" + rows), coords=coords)
    for p, (x, y) in zip(gdf.geometry, wgs, strict=True):
        assert _metres(p, x, y) < 1.0


def test_gbk_csv_with_chinese_headers(tmp_path):
    text = "id,name,经度,纬度,level\n1,南京大学科技园,118.7790,32.0560,国家级\n2,紫金科创,118.9066,32.1080,省级\n"
    path = _csv(tmp_path, text, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # the test really is about a non-UTF-8 file
    gdf = read_incubators(path)
    assert gdf["name"].tolist() == ["南京大学科技园", "紫金科创"]
    assert gdf["level"].tolist() == ["national", "provincial"]
    assert gdf.geometry.iloc[0].coords[0] == (118.779, 32.056)
    # The same file with the encoding given.
    assert read_incubators(path, encoding="gbk")["name"].tolist() == gdf["name"].tolist()


def test_utf8_bom(tmp_path):
    path = _csv(tmp_path, "lon,lat,id,name\n118.8,32.0,a,东南大学\n", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    gdf = read_incubators(path)
    assert gdf["id"].tolist() == ["a"] and gdf["name"].tolist() == ["东南大学"]
    assert gdf.geometry.iloc[0].coords[0] == (118.8, 32.0)
    assert not any("\ufeff" in c for c in gdf.columns)


def test_utf16_with_bom_and_tabs(tmp_path):
    path = _csv(tmp_path, "id\tlon\tlat\na\t118.8\t32.0\n", name="inc.txt", encoding="utf-16")
    assert read_incubators(path)["id"].tolist() == ["a"]


def test_tsv(tmp_path):
    path = _csv(tmp_path, "id\tLongitude\tLatitude\n7\t118.8\t32.0\n", name="inc.tsv")
    gdf = read_incubators(path)
    assert gdf["id"].tolist() == ["7"] and gdf.geometry.iloc[0].coords[0] == (118.8, 32.0)


def test_named_columns_and_id_column(tmp_path):
    path = _csv(tmp_path, "code,E,N,id\nx1,118.8,32.0,zz\n")
    gdf = read_incubators(path, lon="E", lat="N", id_col="code")
    assert gdf["id"].tolist() == ["x1"]
    assert gdf["id_input"].tolist() == ["zz"]  # a clashing column is kept, renamed
    assert gdf.geometry.iloc[0].coords[0] == (118.8, 32.0)


def test_ids_generated_from_line_numbers(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="incubloc.io"):
        gdf = read_incubators(_csv(tmp_path, "lon,lat\n118.8,32.0\n118.9,32.1\n"))
    assert gdf["id"].tolist() == ["row-2", "row-3"]
    assert "ids generated" in caplog.text
    gdf = read_incubators(_csv(tmp_path, "id,lon,lat\n,118.8,32.0\nb,118.9,32.1\n"))
    assert gdf["id"].tolist() == ["row-2", "b"]


def test_degree_signs_and_full_width_digits(tmp_path):
    text = "id,lon,lat\na,118.78°,32.04°\nb,１１８．７８,３２．０４\nc, 118.78 ,32.04N\n"
    gdf = read_incubators(_csv(tmp_path, text))
    assert [p.coords[0] for p in gdf.geometry] == [(118.78, 32.04)] * 3


def test_projected_xy_in_csv_with_crs(tmp_path):
    x, y = Transformer.from_crs(4326, 4549, always_xy=True).transform(118.7969, 32.0603)
    path = _csv(tmp_path, f"id,x,y\na,{x:.3f},{y:.3f}\n")
    p = read_incubators(path, crs=4549).geometry.iloc[0]
    assert _metres(p, 118.7969, 32.0603) < 0.01
    with pytest.raises(CoordinateError, match="out of range"):
        read_incubators(path)  # without crs= the metres are not degrees


def test_opened_and_area_parsing(tmp_path):
    text = (
        "id,lon,lat,opened,site_area_m2,floor_area_m2\n"
        "a,118.8,32.0,2012.0,\"1,500\",2000m2\n"
        "b,118.8,32.0,2015/06,３００平方米,\n"
        "c,118.8,32.0,,,\n"
    )
    gdf = read_incubators(_csv(tmp_path, text))
    assert gdf["opened"].tolist()[:2] == [2012, 2015] and pd.isna(gdf["opened"].iloc[2])
    assert gdf["site_area_m2"].tolist()[:2] == [1500.0, 300.0]
    assert gdf["floor_area_m2"].iloc[0] == 2000.0


def test_input_column_named_row_is_kept(tmp_path):
    gdf = read_incubators(_csv(tmp_path, "id,lon,lat,row\na,118.8,32.0,R1\n"))
    assert gdf["row"].tolist() == [2] and gdf["row_input"].tolist() == ["R1"]


# ------------------------------------------------------------------ DataFrames


def test_dataframe_input_is_not_modified():
    df = pd.DataFrame(
        {"id": [1, 2], "lon": ["118.8°", 118.9], "lat": [32.0, 32.1], "relation": ["独立型", "混合型"]},
        index=[10, 20],
    )
    before = df.copy()
    gdf = read_incubators(df)
    pd.testing.assert_frame_equal(df, before)
    assert gdf["id"].tolist() == ["1", "2"] and list(gdf.index) == [0, 1]
    assert gdf["row"].tolist() == [1, 2]
    assert gdf["declared_relation"].tolist() == ["standalone", "mixed"]


def test_geodataframe_input():
    g = gpd.GeoDataFrame({"id": ["a"], "layout": ["楼宇式"]}, geometry=[Point(118.8, 32.0)], crs=4326)
    gdf = read_incubators(g)
    assert gdf["declared_layout"].tolist() == ["building"]
    assert gdf.geometry.iloc[0].coords[0] == (118.8, 32.0)
    assert "layout" in g.columns  # the caller's frame keeps its columns


# ---------------------------------------------------------------- vector files


def _points(n=3):
    lon = np.array([118.7790, 118.9066, 118.78])[:n]
    lat = np.array([32.0560, 32.1080, 31.95])[:n]
    return gpd.GeoDataFrame(
        {"id": np.arange(1, n + 1), "name": ["南大", "紫金", "江宁"][:n], "level": ["国家级", "省级", "市级"][:n]},
        geometry=gpd.points_from_xy(lon, lat),
        crs=4326,
    ), lon, lat


def test_geojson(tmp_path):
    g, lon, lat = _points()
    path = tmp_path / "inc.geojson"
    g.to_file(path, driver="GeoJSON")
    gdf = read_incubators(path)
    assert gdf["id"].tolist() == ["1", "2", "3"]
    assert gdf["row"].tolist() == [1, 2, 3]
    assert gdf["name"].tolist() == ["南大", "紫金", "江宁"]
    assert gdf["level"].tolist() == ["national", "provincial", "municipal"]
    assert np.allclose(gdf.geometry.x, lon) and np.allclose(gdf.geometry.y, lat)


def test_geojson_in_gcj02(tmp_path):
    g = gpd.GeoDataFrame({"id": ["t"]}, geometry=[Point(*TAM_GCJ)], crs=4326)
    path = tmp_path / "gcj.geojson"
    g.to_file(path, driver="GeoJSON")
    assert _metres(read_incubators(path, coords="gcj02").geometry.iloc[0], *TAM_WGS) < 1.0


def test_projected_geopackage_comes_back_in_4326(tmp_path):
    g, lon, lat = _points()
    x, y = Transformer.from_crs(4326, 4549, always_xy=True).transform(lon, lat)
    proj = gpd.GeoDataFrame(g.drop(columns="geometry"), geometry=gpd.points_from_xy(x, y), crs=4549)
    path = tmp_path / "inc.gpkg"
    proj.to_file(path, layer="incubators")
    gdf = read_incubators(path, layer="incubators")
    assert gdf.crs.to_epsg() == 4326
    for p, a, b in zip(gdf.geometry, lon, lat, strict=True):
        assert _metres(p, a, b) < 0.01
    with pytest.raises(CoordinateError, match="projected"):
        read_incubators(path, coords="gcj02")


def test_geopackage_layers(tmp_path):
    g, _, _ = _points()
    path = tmp_path / "two.gpkg"
    g.to_file(path, layer="a")
    g.iloc[:1].to_file(path, layer="b")
    with pytest.raises(InputError, match=r"2 layers \(a, b\).*layer="):
        read_incubators(path)
    assert len(read_incubators(path, layer="b")) == 1
    with pytest.raises(InputError, match="no layer 'c'"):
        read_incubators(path, layer="c")


def test_shapefile_and_missing_prj(tmp_path):
    g, lon, lat = _points()
    path = tmp_path / "inc.shp"
    g.to_file(path, encoding="utf-8")
    gdf = read_incubators(path)
    assert gdf["name"].tolist() == ["南大", "紫金", "江宁"]
    assert np.allclose(gdf.geometry.x, lon)
    path.with_suffix(".prj").unlink()
    with pytest.raises(CoordinateError) as err:
        read_incubators(path)
    assert "inc.shp" in str(err.value) and "no CRS" in str(err.value) and "crs=" in str(err.value)
    assert np.allclose(read_incubators(path, crs=4326).geometry.y, lat)


def test_geodataframe_without_crs():
    g = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.8, 32.0)])
    with pytest.raises(CoordinateError, match="no CRS.*crs="):
        read_incubators(g)


def test_polygon_incubators_become_interior_points(tmp_path):
    polys = [box(118.77, 32.05, 118.79, 32.06), Polygon([(118.9, 32.1), (118.92, 32.1), (118.9, 32.12)])]
    g = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=polys, crs=4326)
    path = tmp_path / "poly.gpkg"
    g.to_file(path)
    gdf = read_incubators(path)
    assert (gdf.geom_type == "Point").all()
    assert all(poly.contains(p) for poly, p in zip(polys, gdf.geometry, strict=True))
    sites = read_sites(path, id_col="id", incubator_ids=gdf["id"])
    assert sites["incubator_id"].tolist() == ["a", "b"]
    assert all(s.equals(p) for s, p in zip(sites.geometry, polys, strict=True))


# ------------------------------------------------------------------ bad input


def test_missing_file():
    with pytest.raises(InputError, match="nope.csv does not exist"):
        read_incubators("nope.csv")


def test_missing_lon_lat_columns(tmp_path):
    path = _csv(tmp_path, "id,名称,东,北\na,x,118.8,32.0\n")
    with pytest.raises(CoordinateError) as err:
        read_incubators(path)
    msg = str(err.value)
    assert str(path) in msg and "id, 名称, 东, 北" in msg
    assert "--lon" in msg and "--lat" in msg
    with pytest.raises(CoordinateError, match="no latitude column 'lat_gcj'.*id, 名称, 东, 北"):
        read_incubators(path, lon="东", lat="lat_gcj")
    assert len(read_incubators(path, lon="东", lat="北")) == 1


def _error(path, **kw):
    with pytest.raises(InputError) as err:
        read_incubators(path, **kw)
    return str(err.value)


def _line(msg, n):
    return next(line for line in msg.splitlines() if line.strip().startswith(f"line {n} "))


def test_non_numeric_and_missing_coordinates(tmp_path):
    path = _csv(tmp_path, "id,lon,lat\na,118.8,32.0\nb,abc,32.0\nc,118.8,\nd,118.8,NaN\n")
    msg = _error(path)
    assert str(path) in msg
    assert "'abc' is not a number" in _line(msg, 3) and "id 'b'" in _line(msg, 3)
    assert "lat is empty" in _line(msg, 4)
    assert "lat is empty" in _line(msg, 5)
    assert msg.splitlines()[-1].startswith("To fix:")


def test_swapped_lon_lat(tmp_path):
    msg = _error(_csv(tmp_path, "id,lon,lat\na,118.8,32.0\nb,32.06,118.78\n"))
    assert "swapped?" in _line(msg, 3) and "swap" in msg.splitlines()[-1]


def test_out_of_range(tmp_path):
    msg = _error(_csv(tmp_path, "id,lon,lat\na,190.5,32.0\nb,118.8,-95\n"))
    assert "out of range" in _line(msg, 2) and "out of range" in _line(msg, 3)
    assert "crs=" in msg.splitlines()[-1]


def test_outside_china_for_gcj02(tmp_path):
    path = _csv(tmp_path, "id,lon,lat\nparis,2.35,48.85\nnj,118.8,32.0\n")
    for coords in ("gcj02", "bd09"):
        msg = _error(path, coords=coords)
        assert "outside China" in _line(msg, 2) and "line 3" not in msg
    assert len(read_incubators(path, coords="wgs84")) == 2


def test_duplicate_ids_are_listed_with_lines(tmp_path):
    text = "id,lon,lat\na,118.8,32.0\nb,118.8,32.0\na,118.8,32.0\nb,118.8,32.0\na,118.8,32.0\n"
    msg = _error(_csv(tmp_path, text))
    assert "duplicate ids: 'a' (lines 2, 4, 6); 'b' (lines 3, 5)" in msg
    assert "duplicate id 'a' (first on line 2)" in _line(msg, 4)
    assert "unique id" in msg.splitlines()[-1]


def test_unknown_level_labels(tmp_path):
    text = "id,lon,lat,level\na,118.8,32.0,国家级\nb,118.8,32.0,A级\nc,118.8,32.0,county\n"
    msg = _error(_csv(tmp_path, text))
    assert "unknown level 'A级'" in _line(msg, 3) and "unknown level 'county'" in _line(msg, 4)
    assert "'A级', 'county'" in msg
    for accepted in ("national", "provincial", "municipal", "国家级", "省级", "市级"):
        assert accepted in msg


def test_unknown_relation_and_layout(tmp_path):
    text = "id,lon,lat,relation,layout\na,118.8,32.0,园外,塔楼\n"
    msg = _error(_csv(tmp_path, text))
    assert "unknown relation '园外'" in _line(msg, 2) and "unknown layout '塔楼'" in _line(msg, 2)
    assert "园中园型" in msg and "楼宇式" in msg


def test_bad_opened_and_negative_area(tmp_path):
    msg = _error(_csv(tmp_path, "id,lon,lat,opened,site_area_m2\na,118.8,32.0,去年,-5\n"))
    assert "opened '去年' is not a year" in _line(msg, 2)
    assert "site_area_m2 -5 is negative" in _line(msg, 2)


def test_empty_geometries_name_features(tmp_path):
    g = gpd.GeoDataFrame({"id": ["a", "b", "c"]}, geometry=[Point(118.8, 32.0), None, Point()], crs=4326)
    path = tmp_path / "e.gpkg"
    g.to_file(path)
    with pytest.raises(CoordinateError) as err:
        read_incubators(path)
    msg = str(err.value)
    assert "e.gpkg" in msg and "feature 2 (id 'b'): empty geometry" in msg
    assert "feature 3 (id 'c'): empty geometry" in msg


def test_undecodable_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,lon,lat\na,118.8,32.0\n\xff\xfe\x80,118.8,32.0\n")
    msg = _error(path)
    assert "bad.csv" in msg and "line 3" in msg and "encoding=" in msg
    msg = _error(_csv(tmp_path, "id,lon,lat\n南,118.8,32.0\n", name="u.csv"), encoding="ascii")
    assert "u.csv" in msg and "not valid ascii" in msg and "encoding=" in msg
    msg = _error(_csv(tmp_path, "id,lon,lat\n", name="v.csv"), encoding="klingon")
    assert "unknown encoding 'klingon'" in msg


def test_at_most_twenty_rows_listed(tmp_path):
    rows = "".join(f"r{i},abc,32.0\n" for i in range(25))
    msg = _error(_csv(tmp_path, "id,lon,lat\n" + rows))
    assert "25 lines with problems" in msg
    assert "line 21 " in msg and "line 22 " not in msg and "... and 5 more lines" in msg


def test_unknown_errors_and_coords_options(tmp_path):
    path = _csv(tmp_path, "id,lon,lat\na,118.8,32.0\n")
    with pytest.raises(InputError, match="errors="):
        read_incubators(path, errors="ignore")
    with pytest.raises(CoordinateError, match="unknown coordinate system"):
        read_incubators(path, coords="mars")


def test_report_mode_keeps_good_rows_and_lists_bad_ones(tmp_path, caplog):
    text = (
        "id,lon,lat,level\n"
        "a,118.8,32.0,国家级\n"
        "b,abc,32.0,省级\n"
        "c,118.9,32.1,市级\n"
        "a,118.8,32.0,X\n"
    )
    path = _csv(tmp_path, text)
    with caplog.at_level(logging.WARNING, logger="incubloc.io"):
        gdf = read_incubators(path, errors="report")
    assert gdf["id"].tolist() == ["a", "c"] and gdf["row"].tolist() == [2, 4]
    assert list(gdf.index) == [0, 1]
    rejected = gdf.attrs["rejected"]
    assert list(rejected.columns) == ["row", "id", "problem"]
    assert rejected["row"].tolist() == [3, 5] and rejected["id"].tolist() == ["b", "a"]
    assert "'abc' is not a number" in rejected["problem"].iloc[0]
    assert "duplicate id 'a'" in rejected["problem"].iloc[1]
    assert "unknown level 'X'" in rejected["problem"].iloc[1]
    assert "2 of 4 lines rejected" in caplog.text
    clean = read_incubators(_csv(tmp_path, "id,lon,lat\na,118.8,32.0\n", name="ok.csv"),
                            errors="report")
    assert clean.attrs["rejected"].empty


# ---------------------------------------------------------------- normalise_level


def test_normalise_level():
    values = pd.Series(["国家级", "国家", "NATIONAL", "省级", "省", "Provincial", "市级", "市",
                        "municipal", "　国家级　", None, np.nan], index=range(100, 112))
    out = normalise_level(values)
    assert list(out.index) == list(range(100, 112))
    assert out.tolist()[:10] == ["national"] * 3 + ["provincial"] * 3 + ["municipal"] * 3 + ["national"]
    assert out.iloc[10:].isna().all()
    with pytest.raises(InputError, match=r"'区级', 'x'.*国家级"):
        normalise_level(["区级", "省级", "x"])
    assert normalise_level(["区级", "省级"], errors="coerce").isna().tolist() == [True, False]


# ---------------------------------------------------------------------- sites


def test_sites_fixture():
    inc = read_incubators(FIXTURES / "incubators.csv")
    sites = read_sites(FIXTURES / "sites.geojson", incubator_ids=inc["id"])
    assert list(sites.columns[:3]) == ["incubator_id", "site_id", "row"]
    assert sites["site_id"].tolist() == ["NJ001-1", "NJ001-2", "NJ002-1"]
    assert sites["row"].tolist() == [1, 2, 3]
    assert sites.geom_type.tolist() == ["Polygon", "Polygon", "Point"]
    assert sites.crs.to_epsg() == 4326 and sites["name"].iloc[0] == "主园"


def _site_file(tmp_path, geoms, ids, name="sites.gpkg", crs=4326, **cols):
    g = gpd.GeoDataFrame({"incubator_id": ids, **cols}, geometry=geoms, crs=crs)
    path = tmp_path / name
    g.to_file(path)
    return path


def test_sites_keep_given_site_ids_and_project(tmp_path):
    poly = box(118.80, 32.00, 118.81, 32.01)
    projected = shapely.transform(
        poly, lambda xy: np.column_stack(Transformer.from_crs(4326, 32650, always_xy=True).transform(xy[:, 0], xy[:, 1]))
    )
    path = _site_file(tmp_path, [projected], ["a"], crs=32650, site_id=["A-main"])
    sites = read_sites(path)
    assert sites["site_id"].tolist() == ["A-main"]
    assert np.allclose(sites.total_bounds, poly.bounds, atol=1e-7)


def test_invalid_polygon_is_repaired_and_logged(tmp_path, caplog):
    # A bow-tie: two triangles of 0.0001 square degrees each.
    bowtie = Polygon([(118.80, 32.00), (118.82, 32.02), (118.82, 32.00), (118.80, 32.02)])
    ok = box(118.9, 32.0, 118.91, 32.01)
    path = _site_file(tmp_path, [ok, bowtie], ["a", "b"])
    with caplog.at_level(logging.WARNING, logger="incubloc.io"):
        sites = read_sites(path)
    assert "repaired 1 invalid polygons (features 2)" in caplog.text
    fixed = sites.geometry.iloc[1]
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon"
    assert shapely.area(fixed) == pytest.approx(2 * 0.5 * 0.02 * 0.01)


def test_sites_errors(tmp_path):
    ok = box(118.80, 32.00, 118.81, 32.01)
    path = _site_file(tmp_path, [ok, ok], ["a", "b"], name="s.gpkg")
    with pytest.raises(InputError, match=r"s.gpkg: features 2 refer to unknown incubators 'b'"):
        read_sites(path, incubator_ids=["a"])
    path = _site_file(tmp_path, [ok, None, ok], ["a", "b", "c"], name="empty.gpkg")
    with pytest.raises(InputError, match=r"empty.gpkg: empty geometries in features 2"):
        read_sites(path)
    path = _site_file(tmp_path, [ok, LineString([(118.8, 32), (118.9, 32)])], ["a", "b"], name="l.gpkg")
    with pytest.raises(InputError, match=r"features 2 are LineString"):
        read_sites(path)
    path = _site_file(tmp_path, [ok, ok], ["a", "a"], name="d.gpkg", site_id=["s", "s"])
    with pytest.raises(InputError, match=r"duplicate site_id 's' in features 1, 2"):
        read_sites(path)
    path = _site_file(tmp_path, [ok, ok], ["a", None], name="m.gpkg")
    with pytest.raises(InputError, match=r"m.gpkg: features 2 have no incubator_id"):
        read_sites(path)
    g = gpd.GeoDataFrame({"owner": ["a"]}, geometry=[ok], crs=4326)
    g.to_file(tmp_path / "noid.gpkg")
    with pytest.raises(InputError, match=r"noid.gpkg: sites need an 'incubator_id' column.*owner"):
        read_sites(tmp_path / "noid.gpkg")
    with pytest.raises(InputError, match="not a table"):
        read_sites(_csv(tmp_path, "incubator_id,lon,lat\na,118,32\n"))
    with pytest.raises(InputError, match="does not exist"):
        read_sites(tmp_path / "missing.gpkg")
    with pytest.raises(CoordinateError, match="no CRS"):
        read_sites(gpd.GeoDataFrame({"incubator_id": ["a"]}, geometry=[ok]))


def test_sites_in_gcj02_are_converted(tmp_path):
    poly = box(TAM_GCJ[0] - 0.001, TAM_GCJ[1] - 0.001, TAM_GCJ[0] + 0.001, TAM_GCJ[1] + 0.001)
    path = _site_file(tmp_path, [poly, Point(*TAM_GCJ)], ["t", "t"])
    sites = read_sites(path, coords="gcj02")
    assert _metres(sites.geometry.iloc[1], *TAM_WGS) < 1.0
    assert _metres(sites.geometry.iloc[0].centroid, *TAM_WGS) < 1.0
    paris = _site_file(tmp_path, [Point(2.35, 48.85)], ["p"], name="paris.gpkg")
    with pytest.raises(CoordinateError, match="features 1 are outside China"):
        read_sites(paris, coords="gcj02")
