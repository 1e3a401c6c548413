"""Geocoding against a local HTTP server that answers in each provider's documented
format (AMap v3 geocode/geo and place/text; Baidu geocoding/v3 and place/v2/search;
Tianditu geocoder and v2/search). No request leaves the machine.

Known WGS84 points are shifted to GCJ-02 / BD-09 with the published formulas, written
out again here (independently of incubloc.coords), and must come back within 1 m.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from incubloc.config import dump_config, resolve_config
from incubloc.errors import InvalidKeyError, QuotaExceededError
from incubloc.geocoding import GeocodeCache, geocode, geocode_plan
from incubloc.shells.cli import main

pytest.importorskip("pytest_httpserver")
from werkzeug.wrappers import Response

KEY = "k3y-SECRET-0123456789"


@pytest.fixture(autouse=True)
def _quiet_test_server():
    """The in-process server logs every request at INFO; the CLI's stderr is tested."""
    import logging

    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)
GEOD = Geod(ellps="WGS84")


# ------------------------------------------------------- independent shift formulas
def _gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS84 -> GCJ-02 (the published Krasovsky-ellipsoid offset formula)."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
            + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
            + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
            + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
            + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3)
    rad = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    dlon = (dlon * 180.0) / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


def _bd09(lon: float, lat: float) -> tuple[float, float]:
    """WGS84 -> BD-09 (GCJ-02, then Baidu's published rotation and offset)."""
    x, y = _gcj02(lon, lat)
    xpi = math.pi * 3000.0 / 180.0
    z = math.sqrt(x * x + y * y) + 0.00002 * math.sin(y * xpi)
    theta = math.atan2(y, x) + 0.000003 * math.cos(x * xpi)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _metres(lon1, lat1, lon2, lat2) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# ------------------------------------------------------------------ the list
# Known WGS84 points of invented incubators in Nanjing (and one in Zhenjiang).
P = {
    "xinjiekou": (118.78431, 32.04182),
    "jiangning": (118.82105, 31.89203),
    "pukou": (118.71902, 32.15317),
    "gulou_a": (118.77210, 32.06650),
    "gulou_b": (118.75400, 32.08300),
    "zhenjiang": (119.45100, 32.20400),
    "zhujiang": (118.79100, 32.05010),
    "district": (118.79000, 32.04800),
}
ROWS = [  # name, address, expected status, expected WGS84 point (or None)
    ("紫金科技创业孵化器", "南京市玄武区中山路1号", "ok", "xinjiekou"),
    ("江宁创客空间", "南京市江宁区", "ok", "jiangning"),  # vague address -> place search
    ("浦口孵化器", "", "ok", "pukou"),  # no address -> place search
    ("无名孵化器", "南京市不存在路999号", "failed", None),  # zero results everywhere
    ("鼓楼众创空间", "南京市鼓楼区中山北路8号", "review", "gulou_a"),  # two distant matches
    ("京口孵化中心", "京口区学府路3号", "review", "zhenjiang"),  # outside the named city
    ("珠江路甲孵化器", "南京市玄武区珠江路88号", "review", "zhujiang"),  # same point ...
    ("珠江路乙孵化器", "南京市玄武区珠江路88号B座", "review", "zhujiang"),  # ... as this one
    ("秦淮孵化器", "南京市秦淮区", "review", "district"),  # district only, no place found
]


def _list(path: Path) -> Path:
    pd.DataFrame([r[:2] for r in ROWS], columns=["名称", "地址"]).to_csv(
        path, index=False, encoding="utf-8")
    return path


# ------------------------------------------------------------------ AMap server
def _amap_geo(location, level, address, city="南京市"):
    return {"formatted_address": address, "country": "中国", "province": "江苏省",
            "citycode": "025", "city": city, "district": [], "township": [],
            "neighborhood": {"name": [], "type": []}, "building": {"name": [], "type": []},
            "adcode": "320102", "street": [], "number": [],
            "location": f"{location[0]:.6f},{location[1]:.6f}", "level": level}


def _amap_poi(name, location, address="", city="南京市"):
    return {"id": "B0FFxxxx", "name": name, "type": "科教文化服务;科研机构", "typecode": "141300",
            "address": address or [], "location": f"{location[0]:.6f},{location[1]:.6f}",
            "pname": "江苏省", "cityname": city, "adname": "江宁区"}


def _ok(**body):
    return {"status": "1", "info": "OK", "infocode": "10000", **body}


AMAP_GEO = {
    "南京市玄武区中山路1号": [_amap_geo(_gcj02(*P["xinjiekou"]), "门牌号", "江苏省南京市玄武区中山路1号")],
    "南京市江宁区": [_amap_geo(_gcj02(118.84, 31.95), "区县", "江苏省南京市江宁区")],
    "南京市不存在路999号": [],
    "南京市鼓楼区中山北路8号": [
        _amap_geo(_gcj02(*P["gulou_a"]), "门牌号", "江苏省南京市鼓楼区中山北路8号"),
        _amap_geo(_gcj02(*P["gulou_b"]), "门牌号", "江苏省南京市鼓楼区中山北路8号院"),
    ],
    "京口区学府路3号": [_amap_geo(_gcj02(*P["zhenjiang"]), "门牌号", "江苏省镇江市京口区学府路3号",
                           city="镇江市")],
    "南京市玄武区珠江路88号": [_amap_geo(_gcj02(*P["zhujiang"]), "门牌号", "江苏省南京市玄武区珠江路88号")],
    "南京市玄武区珠江路88号B座": [_amap_geo(_gcj02(*P["zhujiang"]), "门牌号", "江苏省南京市玄武区珠江路88号")],
    "南京市秦淮区": [_amap_geo(_gcj02(*P["district"]), "区县", "江苏省南京市秦淮区")],
}
AMAP_POI = {
    "江宁创客空间": [_amap_poi("江宁区图书馆", _gcj02(118.80, 31.90)),
                 _amap_poi("江宁创客空间", _gcj02(*P["jiangning"]), "天元中路100号")],
    "浦口孵化器": [_amap_poi("浦口孵化器(总部)", _gcj02(*P["pukou"]), "江浦街道")],
    "无名孵化器": [],
    "秦淮孵化器": [_amap_poi("秦淮河游船码头", _gcj02(118.79, 32.02))],
}


class Counter:
    """Counts the calls the server answered, per query."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, path, query):
        with self.lock:
            self.calls.append((path, query))

    def __len__(self):
        return len(self.calls)


def _json(body, status=200):
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    content_type="application/json;charset=UTF-8")


def _amap_server(httpserver, counter, *, refuse_after=None, refusal=None):
    """AMap v3 on the local server. After ``refuse_after`` calls, answer ``refusal``."""

    def answer(request, table, field, out_key):
        counter.add(request.path, request.args.get(field))
        if refuse_after is not None and len(counter) > refuse_after:
            return _json(refusal)
        if request.args.get("key") != KEY:
            return _json({"status": "0", "info": "INVALID_USER_KEY", "infocode": "10001"})
        found = table.get(request.args[field], [])
        return _json(_ok(count=str(len(found)), **{out_key: found}))

    httpserver.expect_request("/v3/geocode/geo").respond_with_handler(
        lambda r: answer(r, AMAP_GEO, "address", "geocodes"))
    httpserver.expect_request("/v3/place/text").respond_with_handler(
        lambda r: answer(r, AMAP_POI, "keywords", "pois"))
    return httpserver.url_for("/").rstrip("/")


@pytest.fixture
def amap(httpserver):
    counter = Counter()
    return _amap_server(httpserver, counter), counter


def _geocode(path, base, cache, **kw):
    kw.setdefault("city", "南京")
    return geocode(path, provider=kw.pop("provider", "amap"), key=KEY, base_url=base,
                   cache=cache, qps=0, **kw)


# ------------------------------------------------------------------ tests
def test_amap_statuses_levels_and_wgs84_within_a_metre(amap, tmp_path):
    base, counter = amap
    out = _geocode(_list(tmp_path / "list.csv"), base, tmp_path / "c.sqlite")
    assert len(out) == len(ROWS)
    assert out["name"].tolist() == [r[0] for r in ROWS]  # input order, every row once
    assert out["geocode_status"].tolist() == [r[2] for r in ROWS]
    assert out["source_row"].tolist() == list(range(2, 2 + len(ROWS)))
    for i, (_, _, _, point) in enumerate(ROWS):
        if point is None:
            assert np.isnan(out.loc[i, "lon"]) and out.geometry.iloc[i] is None
            continue
        assert _metres(out.loc[i, "lon"], out.loc[i, "lat"], *P[point]) < 1.0, ROWS[i]
    assert set(out["geocode_crs"]) == {"GCJ-02"}
    by = out.set_index("name")
    assert by.loc["紫金科技创业孵化器", "geocode_level"] == "门牌号"
    assert by.loc["紫金科技创业孵化器", "geocode_source"] == "address"
    assert by.loc["江宁创客空间", "geocode_source"] == "poi"  # the district match was too coarse
    assert by.loc["江宁创客空间", "geocode_level"] == "兴趣点"
    assert by.loc["江宁创客空间", "geocode_matched_name"] == "江宁创客空间"  # not the library
    assert by.loc["浦口孵化器", "geocode_confidence"] == 1.0  # name contained in the place's
    assert by.loc["无名孵化器", "geocode_message"] == "address: no result; place search: no result"
    assert "2 address matches up to 2.5 km apart" in by.loc["鼓楼众创空间", "geocode_message"]
    assert "matched in 镇江市, not 南京" in by.loc["京口孵化中心", "geocode_message"]
    assert "same point as row(s) 9" in by.loc["珠江路甲孵化器", "geocode_message"]
    assert "same point as row(s) 8" in by.loc["珠江路乙孵化器", "geocode_message"]
    assert "matched only at 区县 level (district)" in by.loc["秦淮孵化器", "geocode_message"]
    assert by.loc["秦淮孵化器", "geocode_precision"] == "district"
    assert out["geocode_review"].tolist() == [r[2] == "review" for r in ROWS]
    # One address call per address, one place search where the address was missing/vague.
    assert len(counter) == out.attrs["calls"] == 8 + 4


def test_second_run_makes_no_call_and_the_key_is_never_written(amap, tmp_path):
    base, counter = amap
    cache = tmp_path / "c.sqlite"
    first = _geocode(_list(tmp_path / "list.csv"), base, cache)
    n = len(counter)
    assert n > 0
    second = _geocode(tmp_path / "list.csv", base, cache)
    assert len(counter) == n and second.attrs["calls"] == 0
    pd.testing.assert_frame_equal(pd.DataFrame(first), pd.DataFrame(second))
    # Dry run: everything is cached.
    plan = geocode_plan(tmp_path / "list.csv", city="南京", cache=cache)
    assert plan.calls_max == 0 and plan.address_cached == 8
    # The key is in no output and not in the cache.
    out_csv = tmp_path / "out.csv"
    assert main(["-q", "geocode", str(tmp_path / "list.csv"), "--city", "南京", "--cache",
                 str(cache), "--base-url", base, "-o", str(out_csv)]) == 0
    assert KEY not in out_csv.read_text(encoding="utf-8-sig")
    prov = json.loads((tmp_path / "out.provenance.json").read_text(encoding="utf-8"))
    assert prov["parameters"]["geocode"]["provider"] == "amap" and len(
        prov["inputs"]["list"]["sha256"]) == 64
    assert KEY not in json.dumps(prov)
    for f in tmp_path.glob("c.sqlite*"):
        assert KEY.encode() not in f.read_bytes()
    assert len(counter) == n  # the CLI run was served from the cache too
    # A key in the config is never dumped (report writes config.toml and provenance).
    cfg = resolve_config({"geocode": {"key": KEY}})
    assert KEY not in dump_config(cfg)
    from incubloc.provenance import provenance

    assert KEY not in json.dumps(provenance(parameters=cfg, inputs={}, with_time=False))


def test_dry_run_counts_calls_and_makes_none(amap, tmp_path, capsys):
    base, counter = amap
    path = _list(tmp_path / "list.csv")
    assert main(["geocode", str(path), "--city", "南京", "--cache", str(tmp_path / "c.sqlite"),
                 "--base-url", base, "--dry-run"]) == 0
    text = capsys.readouterr().out
    # 8 rows have an address, 9 have a name: 8 address calls, at most 9 place searches.
    assert "9 rows: 8 address calls (0 cached) and at most 9 place-search calls" in text
    assert "at most 17 calls" in text
    assert len(counter) == 0


@pytest.mark.parametrize("refusal, error, words", [
    ({"status": "0", "info": "DAILY_QUERY_OVER_LIMIT", "infocode": "10003"}, QuotaExceededError,
     "quota exceeded"),
    ({"status": "0", "info": "INVALID_USER_KEY", "infocode": "10001"}, InvalidKeyError,
     "key was refused"),
], ids=["quota", "invalid_key"])
def test_quota_and_invalid_key_stop_with_one_line_and_keep_the_cache(
        httpserver, tmp_path, capsys, refusal, error, words):
    counter = Counter()
    base = _amap_server(httpserver, counter, refuse_after=3, refusal=refusal)
    path, cache = _list(tmp_path / "list.csv"), tmp_path / "c.sqlite"
    with pytest.raises(error):
        _geocode(path, base, cache)
    capsys.readouterr()
    # The CLI: exit 2, one line, no traceback, no key, no output file.
    out = tmp_path / "out.csv"
    os.environ["INCUBLOC_AMAP_KEY"] = KEY
    try:
        code = main(["-q", "geocode", str(path), "--city", "南京", "--cache", str(cache),
                     "--base-url", base, "-o", str(out)])
    finally:
        del os.environ["INCUBLOC_AMAP_KEY"]
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err and KEY not in err
    assert words in lines[0] and "rerun the same command to resume" in lines[0]
    assert "rows done and kept in the cache" in lines[0]
    # The three answers before the refusal are cached; rerunning with a good server
    # completes without asking them again.
    assert len(GeocodeCache(cache)) == 3
    httpserver.clear()
    fresh = Counter()
    _amap_server(httpserver, fresh)
    done = _geocode(path, base, cache)
    assert len(fresh) == 12 - 3 and len(done) == len(ROWS)
    assert set(counter.calls[:3]).isdisjoint(fresh.calls)
    assert done["geocode_status"].tolist() == [r[2] for r in ROWS]


def test_no_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("INCUBLOC_AMAP_KEY", raising=False)
    with pytest.raises(InvalidKeyError, match="set the environment variable MY_AMAP"):
        geocode(_list(tmp_path / "l.csv"), key_env="MY_AMAP", cache=tmp_path / "c.sqlite",
                base_url="http://127.0.0.1:9")


# ------------------------------------------------------------------ Baidu
def _baidu_server(httpserver, counter, *, gcj=False):
    shift = _gcj02 if gcj else _bd09
    geo = {
        "南京市玄武区中山路1号": {"status": 0, "result": {
            "location": dict(zip(("lng", "lat"), shift(*P["xinjiekou"]), strict=True)),
            "precise": 1, "confidence": 80, "comprehension": 100, "level": "门址"}},
        "南京市江宁区": {"status": 0, "result": {
            "location": dict(zip(("lng", "lat"), shift(118.84, 31.95), strict=True)),
            "precise": 0, "confidence": 20, "comprehension": 60, "level": "区县"}},
        "南京市不存在路999号": {"status": 1, "msg": "Internal Service Error:无相关结果", "results": []},
    }
    places = {
        "江宁创客空间": {"status": 0, "message": "ok", "result_type": "poi_type", "results": [
            {"name": "江宁创客空间", "location": dict(zip(("lng", "lat"), shift(*P["jiangning"]),
                                                     strict=True)),
             "address": "天元中路100号", "province": "江苏省", "city": "南京市", "area": "江宁区",
             "street_id": "x", "detail": 1, "uid": "abc"}]},
        "无名孵化器": {"status": 0, "message": "ok", "result_type": "poi_type", "results": []},
    }

    def handler(request, table, field):
        counter.add(request.path, request.args.get(field))
        if request.args.get("ak") != KEY:
            return _json({"status": 200, "message": "APP不存在，AK有误请检查再重试"})
        if gcj != (request.args.get("ret_coordtype") == "gcj02ll"):
            return _json({"status": 2, "message": "unexpected ret_coordtype"})
        return _json(table[request.args[field]])

    httpserver.expect_request("/geocoding/v3/").respond_with_handler(
        lambda r: handler(r, geo, "address"))
    httpserver.expect_request("/place/v2/search").respond_with_handler(
        lambda r: handler(r, places, "query"))
    return httpserver.url_for("/").rstrip("/")


@pytest.mark.parametrize("coordtype", ["bd09ll", "gcj02ll"])
def test_baidu_bd09_and_gcj02_answers_come_back_in_wgs84(httpserver, tmp_path, coordtype):
    counter = Counter()
    base = _baidu_server(httpserver, counter, gcj=coordtype == "gcj02ll")
    path = tmp_path / "l.csv"
    pd.DataFrame({"name": ["紫金科技创业孵化器", "江宁创客空间", "无名孵化器"],
                  "address": ["南京市玄武区中山路1号", "南京市江宁区", "南京市不存在路999号"]}
                 ).to_csv(path, index=False)
    out = _geocode(path, base, tmp_path / "c.sqlite", provider="baidu", coordtype=coordtype)
    assert out["geocode_status"].tolist() == ["ok", "ok", "failed"]
    assert set(out["geocode_crs"]) == {"BD-09" if coordtype == "bd09ll" else "GCJ-02"}
    assert _metres(out.loc[0, "lon"], out.loc[0, "lat"], *P["xinjiekou"]) < 1.0
    assert _metres(out.loc[1, "lon"], out.loc[1, "lat"], *P["jiangning"]) < 1.0
    assert out.loc[0, "geocode_confidence"] == 0.8 and out.loc[0, "geocode_level"] == "门址"
    assert out.loc[1, "geocode_source"] == "poi"
    assert out.loc[2, "geocode_message"] == "address: no result; place search: no result"


@pytest.mark.parametrize("status, message, error", [
    (302, "天配额超限，限制访问", QuotaExceededError),
    (4, "配额校验失败", QuotaExceededError),
    (200, "APP不存在，AK有误请检查再重试", InvalidKeyError),
    (240, "APP 服务被禁用", InvalidKeyError),
])
def test_baidu_refusals(httpserver, tmp_path, status, message, error):
    httpserver.expect_request("/geocoding/v3/").respond_with_json(
        {"status": status, "message": message})
    path = tmp_path / "l.csv"
    pd.DataFrame({"address": ["南京市玄武区中山路1号"]}).to_csv(path, index=False)
    with pytest.raises(error, match=message):
        _geocode(path, httpserver.url_for("/").rstrip("/"), tmp_path / "c.sqlite",
                 provider="baidu")
    assert len(GeocodeCache(tmp_path / "c.sqlite")) == 0  # refusals are not cached


# ------------------------------------------------------------------ Tianditu
def test_tianditu_geocoder_and_search_in_cgcs2000(httpserver, tmp_path):
    counter = Counter()

    def geocoder(request):
        counter.add(request.path, request.args.get("ds"))
        if request.args.get("tk") != KEY:
            return Response('{"msg":"非法key","status":"1","code":403}', status=403,
                            content_type="application/json")
        kw = json.loads(request.args["ds"])["keyWord"]
        if kw == "南京市玄武区中山路1号":
            lon, lat = P["xinjiekou"]
            return _json({"msg": "ok", "location": {"score": 100, "level": "门址", "lon": lon,
                                                    "lat": lat, "keyWord": kw},
                          "searchVersion": "6.4.9V", "status": "0"})
        return _json({"msg": "无结果", "searchVersion": "6.4.9V", "status": "101"})

    def search(request):
        counter.add(request.path, request.args.get("postStr"))
        post = json.loads(request.args["postStr"])
        assert post["queryType"] == "12" and post["specify"] == "南京"
        pois = []
        if post["keyWord"] == "浦口孵化器":
            pois = [{"name": "浦口孵化器", "address": "江浦街道", "lonlat": "{:.6f},{:.6f}".format(*P["pukou"]),
                     "hotPointID": "x", "poiType": "101"}]
        return _json({"resultType": 1, "count": len(pois), "keyWord": post["keyWord"],
                      "pois": pois, "status": {"infocode": 1000, "cndesc": "服务正常"}})

    httpserver.expect_request("/geocoder").respond_with_handler(geocoder)
    httpserver.expect_request("/v2/search").respond_with_handler(search)
    base = httpserver.url_for("/").rstrip("/")
    path = tmp_path / "l.csv"
    pd.DataFrame({"名称": ["紫金科技创业孵化器", "浦口孵化器", "无名孵化器"],
                  "地址": ["南京市玄武区中山路1号", "", "某某路"]}).to_csv(path, index=False)
    out = _geocode(path, base, tmp_path / "c.sqlite", provider="tianditu")
    assert out["geocode_status"].tolist() == ["ok", "ok", "failed"]
    assert set(out["geocode_crs"]) == {"CGCS2000"}
    assert _metres(out.loc[0, "lon"], out.loc[0, "lat"], *P["xinjiekou"]) < 0.01
    assert _metres(out.loc[1, "lon"], out.loc[1, "lat"], *P["pukou"]) < 0.01
    assert "无结果 (status 101)" in out.loc[2, "geocode_message"]
    with pytest.raises(InvalidKeyError, match="非法key"):
        geocode(path, provider="tianditu", key="wrong", base_url=base,
                cache=tmp_path / "other.sqlite", city="南京", qps=0)


# ------------------------------------------------------------------ interruption
@pytest.mark.slow
def test_killed_half_way_then_rerun_completes_without_repeating_calls(httpserver, tmp_path):
    """The geocode command runs in a subprocess that the server kills (SIGKILL) when
    the 6th call arrives; the rerun asks only what was not answered before."""
    path, cache = _list(tmp_path / "list.csv"), tmp_path / "c.sqlite"
    counter = Counter()
    state: dict[str, subprocess.Popen] = {}
    kill_at = 6

    def maybe_kill():
        if len(counter) == kill_at and "proc" in state:
            os.kill(state["proc"].pid, signal.SIGKILL)
            state["proc"].wait()

    base = httpserver.url_for("/").rstrip("/")

    def wrap(table, field, out_key):
        def handler(request):
            counter.add(request.path, request.args.get(field))
            maybe_kill()
            found = table.get(request.args[field], [])
            return _json(_ok(count=str(len(found)), **{out_key: found}))
        return handler

    httpserver.expect_request("/v3/geocode/geo").respond_with_handler(
        wrap(AMAP_GEO, "address", "geocodes"))
    httpserver.expect_request("/v3/place/text").respond_with_handler(
        wrap(AMAP_POI, "keywords", "pois"))
    env = {**os.environ, "INCUBLOC_AMAP_KEY": KEY,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "incubloc.cli", "-q", "geocode", str(path), "--city", "南京",
           "--cache", str(cache), "--base-url", base, "--qps", "0", "-o", str(tmp_path / "o.csv")]
    state["proc"] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state["proc"].wait(timeout=120)
    assert state["proc"].returncode == -signal.SIGKILL
    assert not (tmp_path / "o.csv").exists()
    first = list(counter.calls)
    assert len(first) == kill_at
    assert len(GeocodeCache(cache)) == kill_at - 1  # the call in flight was never answered
    state.clear()
    counter.calls.clear()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    second = list(counter.calls)
    # Only the unanswered call is asked again; the total equals one uninterrupted run.
    assert len(first) + len(second) == 12 + 1
    assert set(first[:-1]).isdisjoint(second) and first[-1] in second
    out = pd.read_csv(tmp_path / "o.csv", encoding="utf-8-sig")
    assert out["geocode_status"].tolist() == [r[2] for r in ROWS]


def test_cache_is_shared_and_survives_a_new_connection(tmp_path):
    a = GeocodeCache(tmp_path / "shared.sqlite")
    b = GeocodeCache(tmp_path / "shared.sqlite")
    a.put("amap", "geocode", {"address": "南京市"}, {"status": "1", "geocodes": []})
    assert b.get("amap", "geocode", {"address": "南京市"}) == {"status": "1", "geocodes": []}
    a.close()
    b.close()
    with sqlite3.connect(tmp_path / "shared.sqlite") as db:
        assert db.execute("SELECT provider, api FROM answers").fetchall() == [("amap", "geocode")]


# ------------------------------------------------------------------ end to end
QUICK_REPORT = """
[input]
incubators = "geocoded.csv"
coords = "wgs84"
skip_bad_rows = true

[study_area]
path = "{study_area}"

[stats]
permutations = 19
n_sim = 9
ring_edge_sim = 19
cell_sizes_m = [10000.0]

[density]
cell_size_m = 5000.0
by_year = false
"""


@pytest.mark.slow
def test_xlsx_to_geocode_to_report_accounts_for_every_row(amap, tmp_path, monkeypatch):
    """An accreditation-style .xlsx (title row, Chinese headers, names and addresses)
    -> ``incubloc geocode`` against the local server -> ``incubloc report``: the
    report's tables hold every input row exactly once, as a classified incubator
    (geocoded, some flagged for review) or as a rejected row with its reason."""
    openpyxl = pytest.importorskip("openpyxl")
    pytest.importorskip("python_calamine")
    from incubloc.datasets import nanjing_study_area_path

    base, counter = amap
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "名单"
    ws.append(["2023年度南京市科技企业孵化器名单"])
    ws.append(["序号", "孵化器名称", "详细地址", "级别", "认定年份"])
    levels = ["国家级", "省级", "市级"]
    for i, (name, address, _, _) in enumerate(ROWS, start=1):
        ws.append([i, name, address or None, levels[i % 3], 2010 + i])
    xlsx = tmp_path / "名单.xlsx"
    wb.save(xlsx)
    xlsx_rows = list(range(3, 3 + len(ROWS)))  # title on row 1, header on row 2

    monkeypatch.setenv("INCUBLOC_AMAP_KEY", KEY)
    geocoded = tmp_path / "geocoded.csv"
    assert main(["-q", "geocode", str(xlsx), "--sheet", "名单", "--city", "南京", "--cache",
                 str(tmp_path / "c.sqlite"), "--base-url", base, "--qps", "0",
                 "-o", str(geocoded)]) == 0
    (tmp_path / "quick.toml").write_text(
        QUICK_REPORT.format(study_area=nanjing_study_area_path().as_posix()), encoding="utf-8")
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "quick.toml"), "-o", str(out), "--quiet"]) == 0
    assert (out / "report.html").is_file()

    done = pd.read_csv(out / "tables" / "incubators.csv")
    rejected = pd.read_csv(out / "tables" / "rejected.csv")
    seen = done["source_row"].tolist() + rejected["source_row"].tolist()
    assert sorted(seen) == xlsx_rows  # every input row exactly once
    expected = {r: s for r, (_, _, s, _) in zip(xlsx_rows, ROWS, strict=True)}
    assert {r: expected[r] for r in rejected["source_row"]} == {
        r: "failed" for r in rejected["source_row"]}
    assert (rejected["geocode_status"] == "failed").all()
    assert rejected["geocode_message"].str.len().gt(0).all()
    assert rejected["problem"].str.contains("lon is empty").all()
    assert dict(zip(done["source_row"], done["geocode_status"], strict=True)) == {
        r: s for r, s in expected.items() if s != "failed"}
    assert done["geocode_review"].sum() == sum(s == "review" for s in expected.values())
    # The classes come from the geocoded points: the Zhenjiang match lies in Zhenjiang.
    by_name = done.set_index("name")
    assert by_name.loc["京口孵化中心", "city"] == "Zhenjiang"
    assert by_name.loc["紫金科技创业孵化器", "city"] == "Nanjing"
    assert by_name.loc["紫金科技创业孵化器", "level"] == "provincial"  # 省级 from the sheet
    assert KEY not in (out / "config.toml").read_text(encoding="utf-8")


def test_a_refused_query_fails_its_row_only_and_is_not_cached(httpserver, tmp_path):
    """AMap INVALID_PARAMS (infocode 20000) for one address: that row fails with the
    provider's message, the others go on, and the refusal is asked again next time."""
    calls = Counter()

    def geo(request):
        calls.add(request.path, request.args["address"])
        if request.args["address"] == "???":
            return _json({"status": "0", "info": "INVALID_PARAMS", "infocode": "20000"})
        return _json(_ok(count="1", geocodes=AMAP_GEO["南京市玄武区中山路1号"]))

    httpserver.expect_request("/v3/geocode/geo").respond_with_handler(geo)
    path = tmp_path / "l.csv"
    pd.DataFrame({"address": ["???", "南京市玄武区中山路1号"]}).to_csv(path, index=False)
    base, cache = httpserver.url_for("/").rstrip("/"), tmp_path / "c.sqlite"
    out = _geocode(path, base, cache, poi=False)
    assert out["geocode_status"].tolist() == ["failed", "ok"]
    assert out.loc[0, "geocode_message"] == "address: INVALID_PARAMS (infocode 20000)"
    assert len(GeocodeCache(cache)) == 1
    _geocode(path, base, cache, poi=False)
    assert [q for _, q in calls.calls] == ["???", "南京市玄武区中山路1号", "???"]
