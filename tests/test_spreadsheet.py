"""Excel and OpenDocument incubator lists: sheets, title rows above the header, Chinese
column names, and row-level errors that name the sheet and the spreadsheet row."""

from __future__ import annotations

import pandas as pd
import pytest

from incubloc.errors import CoordinateError, InputError
from incubloc.io import canonical_columns, read_incubators, read_table

openpyxl = pytest.importorskip("openpyxl")
pytest.importorskip("python_calamine")

HEADER = ["序号", "孵化器名称", "地址", "区县", "级别", "认定年份", "经度", "纬度", "运营机构"]
ROWS = [
    [1, "紫金科技孵化器", "南京市玄武区中山路1号", "玄武区", "国家级", 2012, 118.78, 32.04, "紫金公司"],
    [2, "江宁创客空间", "南京市江宁区天元路2号", "江宁区", "省级", "2015年", 118.84, 31.95, None],
    [3, "镇江孵化中心", "镇江市京口区学府路3号", "京口区", "市级", 2018, 119.45, 32.20, "镇江高新"],
]


def _xlsx(path, rows=ROWS, *, title=True, sheet="名单", other_first=False):
    wb = openpyxl.Workbook()
    ws = wb.active
    if other_first:
        ws.title = "说明"
        ws["A1"] = "本表为测试数据"
        ws = wb.create_sheet(sheet)
    else:
        ws.title = sheet
    if title:  # a title row and a blank row above the header, as in accreditation lists
        ws.append(["2023年度国家级科技企业孵化器名单"])
        ws.merge_cells("A1:I1")
        ws.append([])
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    ws.append([])  # trailing blank row
    wb.save(path)
    return path


def test_xlsx_with_title_rows_and_chinese_headers(tmp_path):
    path = _xlsx(tmp_path / "list.xlsx")
    gdf = read_incubators(path)
    assert gdf["id"].tolist() == ["1", "2", "3"]
    assert gdf["name"].tolist() == [r[1] for r in ROWS]
    assert gdf["level"].tolist() == ["national", "provincial", "municipal"]
    assert gdf["opened"].tolist() == [2012, 2015, 2018]
    # Spreadsheet row numbers: title on 1, blank on 2, header on 3, data from row 4.
    assert gdf["row"].tolist() == [4, 5, 6]
    assert gdf.geometry.x.round(6).tolist() == [118.78, 118.84, 119.45]
    assert gdf.geometry.y.round(6).tolist() == [32.04, 31.95, 32.20]
    assert gdf["地址"].tolist() == [r[2] for r in ROWS]  # other columns kept as named


def test_sheet_by_name_and_by_index(tmp_path):
    path = _xlsx(tmp_path / "two.xlsx", other_first=True, title=False)
    by_name = read_incubators(path, sheet="名单")
    by_index = read_incubators(path, sheet=1)
    assert by_name["name"].tolist() == by_index["name"].tolist() == [r[1] for r in ROWS]
    assert by_name["row"].tolist() == [2, 3, 4]
    with pytest.raises(InputError, match=r"no sheet '清单'.*说明, 名单"):
        read_incubators(path, sheet="清单")
    with pytest.raises(InputError, match="sheet index 5 does not exist"):
        read_incubators(path, sheet=5)


def test_bad_rows_name_the_sheet_and_the_spreadsheet_row(tmp_path):
    rows = [list(r) for r in ROWS]
    rows[1][6] = None  # no longitude on spreadsheet row 5
    rows[2][4] = "区级"  # unknown level on row 6
    path = _xlsx(tmp_path / "bad.xlsx", rows)
    with pytest.raises(InputError) as err:
        read_incubators(path)
    msg = str(err.value)
    assert "bad.xlsx (sheet '名单')" in msg
    assert "row 5 (id '2'): 经度 is empty" in msg
    assert "row 6 (id '3'): unknown level '区级'" in msg
    assert "row 4" not in msg
    gdf = read_incubators(path, errors="report")
    assert gdf["row"].tolist() == [4]
    rejected = gdf.attrs["rejected"]
    assert rejected["row"].tolist() == [5, 6]
    assert rejected["name"].tolist() == [ROWS[1][1], ROWS[2][1]]


def test_ods_is_read_like_xlsx(tmp_path):
    pytest.importorskip("odf")
    df = pd.DataFrame(ROWS, columns=HEADER)
    path = tmp_path / "list.ods"
    df.to_excel(path, engine="odf", index=False, sheet_name="名单")
    gdf = read_incubators(path)
    assert gdf["name"].tolist() == [r[1] for r in ROWS]
    assert gdf["row"].tolist() == [2, 3, 4]
    assert gdf["level"].tolist() == ["national", "provincial", "municipal"]


def test_header_only_spreadsheet_and_csv_are_refused(tmp_path):
    path = _xlsx(tmp_path / "empty.xlsx", rows=[])
    with pytest.raises(InputError, match=r"empty.xlsx \(sheet '名单'\) holds no incubators"):
        read_incubators(path)
    csv = tmp_path / "empty.csv"
    csv.write_text("id,name,lon,lat\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no incubators"):
        read_incubators(csv)


def test_read_table_without_coordinates(tmp_path):
    rows = [r[:6] for r in ROWS]
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["标题"])
    ws.append(HEADER[:6])
    for r in rows:
        ws.append(r)
    wb.save(tmp_path / "addr.xlsx")
    table = read_table(tmp_path / "addr.xlsx")
    assert list(table.columns) == ["id", "name", "address", "district", "level", "opened", "row"]
    assert table["address"].tolist() == [r[2] for r in ROWS]
    assert table["row"].tolist() == [3, 4, 5]
    assert table.attrs["source"].endswith("addr.xlsx (sheet 'Sheet')")
    with pytest.raises(CoordinateError, match="no longitude column"):
        read_incubators(tmp_path / "addr.xlsx")


def test_canonical_columns_rules():
    # An existing English column wins over its alias; a foreign unit is not renamed.
    assert canonical_columns(["name", "名称"]) == {}
    assert canonical_columns(["场地面积（万平方米）"]) == {}
    assert canonical_columns(["纬度（BD-09）", "經度"]) == {"纬度（BD-09）": "纬度"}


def test_openpyxl_reads_xlsx_when_calamine_is_missing(tmp_path, monkeypatch):
    import sys

    path = _xlsx(tmp_path / "list.xlsx")
    expected = read_incubators(path)
    monkeypatch.setitem(sys.modules, "python_calamine", None)
    got = read_incubators(path)
    pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")))
    with pytest.raises(ImportError, match=r"incubloc\[excel\]"):
        pd.DataFrame(ROWS, columns=HEADER).to_excel(tmp_path / "l.ods", engine="odf", index=False)
        read_incubators(tmp_path / "l.ods")
