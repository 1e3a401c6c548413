"""Geocoding incubator lists (names and addresses) with AMap, Baidu or Tianditu.

Accreditation lists (国家级科技企业孵化器 / 众创空间 名单) give names and addresses, not
coordinates. :func:`geocode` looks every address up with a provider's geocoder and, when
the address is missing or only matches a road, a district or worse, searches the
incubator's *name* as a place (POI) in the same city. Every row of the list comes back
once, with WGS84 coordinates (or none), the provider's match level, a confidence, the
matched name and address, and a verdict:

``ok``
    Matched at a street address (门牌号 / 门址) or a named place (兴趣点).
``review``
    Located, but a person should check it: the match is coarser than a street address
    (道路, 区县, …), lies outside the named city, is one of several distant candidates,
    or several incubators fall on one point (a geocoder's fallback to a district centre).
``failed``
    Not located; ``geocode_message`` carries the provider's message.

Providers and coordinate systems
--------------------------------
=========  =====================================  ==================================
provider   APIs                                   coordinates returned
=========  =====================================  ==================================
amap       v3 geocode/geo, v3 place/text          GCJ-02
baidu      geocoding/v3, place/v2/search          BD-09 (GCJ-02 with coordtype)
tianditu   geocoder, v2/search                    CGCS2000 (taken as WGS84, < 1 m)
=========  =====================================  ==================================

Keys come from an environment variable (``INCUBLOC_AMAP_KEY``, ``INCUBLOC_BAIDU_KEY``,
``INCUBLOC_TIANDITU_KEY``, or the one named by ``key_env``) or from ``key=``; they
are sent to the provider only, never written to the cache, the output or a message.

Cache
-----
Every answer the provider gave (including "no result") is stored in one SQLite
database, keyed by provider, API and query (not by key), and committed at once: a rerun
never pays twice, an interrupted run resumes where it stopped, and several projects can
share one cache (default ``<user cache dir>/incubloc/geocode.sqlite``). Answers that
stop the run (invalid key, quota exceeded), a provider's refusal of one query and
transient errors are not cached.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from incubloc.coords import to_wgs84
from incubloc.errors import (
    ConfigError,
    GeocodingError,
    InputError,
    InvalidKeyError,
    QuotaExceededError,
)

__all__ = [
    "GEOCODE_COLUMNS",
    "PROVIDERS",
    "GeocodeCache",
    "GeocodePlan",
    "default_geocode_cache",
    "geocode",
    "geocode_plan",
    "write_geocoded",
]

log = logging.getLogger(__name__)

#: Columns :func:`geocode` adds (after the input columns).
GEOCODE_COLUMNS = (
    "lon", "lat", "geocode_status", "geocode_review", "geocode_message", "geocode_provider",
    "geocode_source", "geocode_level", "geocode_precision", "geocode_confidence",
    "geocode_matched_name", "geocode_matched_address", "geocode_matched_city",
    "geocode_crs", "geocode_lon_provider", "geocode_lat_provider", "source_row",
)

# Provider match levels -> precision class. "address" and "poi" are street-level or
# better; every other class sends the row to review.
LEVEL_PRECISION: dict[str, str] = {
    # AMap geocode/geo levels (and the newer 门址)
    "门牌号": "address", "门址": "address", "单元号": "address", "楼层": "address",
    "房间": "address", "门牌": "address",
    "兴趣点": "poi", "住宅区": "poi", "公交地铁站点": "poi", "公交站台、地铁站": "poi",
    "道路": "road", "道路交叉路口": "road", "小巷": "road",
    "热点商圈": "area", "开发区": "area", "乡镇": "area", "村庄": "area",
    "区县": "district", "市": "city", "省": "province", "国家": "country", "未知": "unknown",
    # Baidu geocoding/v3 levels
    "商务大厦": "poi", "地产小区": "poi", "政府机构": "poi", "教育": "poi", "医疗": "poi",
    "生活服务": "poi", "休闲娱乐": "poi", "餐饮": "poi", "宾馆": "poi", "购物": "poi",
    "金融": "poi", "旅游景点": "poi", "汽车服务": "poi", "火车站": "poi",
    "长途汽车站": "poi", "飞机场": "poi", "机场": "poi", "加油站": "poi", "绿地": "poi",
    "停车场/停车区": "poi", "港口/码头": "poi", "收费区/收费站": "poi",
    "收费处/收费站": "poi", "桥": "road", "交叉路口": "road",
    "工业园区": "area", "商圈": "area", "城市": "city", "UNKNOWN": "unknown",
}
# A confidence for providers that give none (AMap): by precision class.
_CLASS_CONFIDENCE = {"address": 0.9, "poi": 0.8, "road": 0.5, "area": 0.4, "district": 0.2,
                     "city": 0.1, "province": 0.05, "country": 0.0, "unknown": 0.1}
_FINE = ("address", "poi")
_SEVERAL_M = 500.0  # candidates farther apart than this make a match ambiguous
_SAME_NAME = 0.5  # a place search result needs this name similarity to be taken


# ------------------------------------------------------------------ providers
@dataclass(frozen=True)
class Candidate:
    """One match of a provider, in the provider's coordinate system."""

    lon: float
    lat: float
    level: str
    name: str = ""
    address: str = ""
    city: str = ""
    confidence: float | None = None
    imprecise: bool = False


class _Stop(Exception):
    """A provider answer that ends the run (key, quota) or calls for a retry (rate)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # "key", "quota", "rate", "row" (this row fails), "error"
        self.message = message


def _text(value: Any) -> str:
    """Providers write missing strings as [] (AMap) or None."""
    if value is None or isinstance(value, list | dict):
        return ""
    return str(value).strip()


def _lonlat(text: str) -> tuple[float, float]:
    lon, lat = re.split(r"[,\s]+", str(text).strip())[:2]
    return float(lon), float(lat)


@dataclass(frozen=True)
class Provider:
    """How to ask one provider and read its answers (see the module docstring)."""

    name: str
    base_url: str
    key_param: str
    crs: str  # coordinate system of the answers: gcj02, bd09 or wgs84 (CGCS2000)
    geocode_path: str
    poi_path: str
    default_qps: float

    # -- requests
    def geocode_params(self, address: str, city: str | None, *, coordtype: str) -> dict[str, str]:
        if self.name == "amap":
            return {"address": address, **({"city": city} if city else {}), "output": "JSON"}
        if self.name == "baidu":
            p = {"address": address, "output": "json"}
            if city:
                p["city"] = city
            if coordtype == "gcj02ll":
                p["ret_coordtype"] = "gcj02ll"
            return p
        keyword = address if not city or city in address else f"{city}{address}"
        return {"ds": json.dumps({"keyWord": keyword}, ensure_ascii=False)}

    def poi_params(self, name: str, city: str | None, *, coordtype: str) -> dict[str, str]:
        if self.name == "amap":
            p = {"keywords": name, "offset": "5", "page": "1", "extensions": "base",
                 "output": "JSON"}
            if city:
                p.update(city=city, citylimit="true")
            return p
        if self.name == "baidu":
            p = {"query": name, "region": city or "全国", "output": "json", "scope": "1",
                 "page_size": "5"}
            if city:
                p["city_limit"] = "true"
            if coordtype == "gcj02ll":
                p["ret_coordtype"] = "gcj02ll"
            return p
        post: dict[str, str] = {"keyWord": name, "start": "0", "count": "5"}
        if city:
            post.update(queryType="12", specify=city)
        else:  # ordinary search over China's extent
            post.update(queryType="1", mapBound="73,3,136,54", level="12")
        return {"postStr": json.dumps(post, ensure_ascii=False), "type": "query"}

    # -- answers
    def check(self, data: Mapping[str, Any]) -> None:
        """Raise :class:`_Stop` for an error answer; return for a normal one."""
        getattr(self, f"_check_{self.name}")(data)

    def _check_amap(self, data: Mapping[str, Any]) -> None:
        if str(data.get("status")) == "1":
            return
        info = _text(data.get("info")) or "unknown error"
        code = _text(data.get("infocode"))
        message = f"{info} (infocode {code})" if code else info
        if code in {"10003", "10010", "10044", "10045"} or "OVER_LIMIT" in info:
            raise _Stop("quota", message)
        if code in {"10004", "10014", "10015", "10019", "10020", "10021", "10029"} or \
                "TOO_FREQUENT" in info or "EXCEEDED_THE_LIMIT" in info:
            raise _Stop("rate", message)
        if code in {"10001", "10002", "10005", "10006", "10007", "10008", "10009", "10012",
                    "10013"} or "KEY" in info:
            raise _Stop("key", message)
        raise _Stop("row", message)

    def _check_baidu(self, data: Mapping[str, Any]) -> None:
        try:
            status = int(data.get("status", -1))
        except (TypeError, ValueError):
            status = -1
        if status == 0:
            return
        msg = _text(data.get("msg") or data.get("message")) or "unknown error"
        message = f"{msg} (status {status})"
        if status in (4, 301, 302) or "配额" in msg and "并发" not in msg:
            raise _Stop("quota", message)
        if status in (401, 402) or "并发" in msg:
            raise _Stop("rate", message)
        if status in (3, 5, 101, 102) or 200 <= status < 300:
            raise _Stop("key", message)
        if status == 1 and "无相关结果" in msg:
            return  # documented zero-result answer of geocoding/v3
        raise _Stop("row", message)

    def _check_tianditu(self, data: Mapping[str, Any]) -> None:
        status = data.get("status")
        if isinstance(status, Mapping):  # v2/search: {"infocode": 1000, "cndesc": ...}
            code = _text(status.get("infocode"))
            if code == "1000":
                return
            message = f"{_text(status.get('cndesc')) or 'error'} (infocode {code})"
        else:
            if str(status) == "0":
                return
            message = f"{_text(data.get('msg')) or 'error'} (status {status})"
        _tianditu_refusal(message)
        raise _Stop("row", message)

    def candidates(self, api: str, data: Mapping[str, Any]) -> list[Candidate]:
        """The matches of a normal answer (empty for "no result")."""
        return getattr(self, f"_{api}_{self.name}")(data)

    @staticmethod
    def _geocode_amap(data: Mapping[str, Any]) -> list[Candidate]:
        out = []
        for g in data.get("geocodes") or []:
            lon, lat = _lonlat(g["location"])
            out.append(Candidate(lon, lat, _text(g.get("level")) or "未知",
                                 address=_text(g.get("formatted_address")),
                                 city=_text(g.get("city")) or _text(g.get("province"))))
        return out

    @staticmethod
    def _poi_amap(data: Mapping[str, Any]) -> list[Candidate]:
        out = []
        for p in data.get("pois") or []:
            lon, lat = _lonlat(p["location"])
            address = "".join(_text(p.get(k)) for k in ("pname", "cityname", "adname", "address"))
            out.append(Candidate(lon, lat, "兴趣点", name=_text(p.get("name")), address=address,
                                 city=_text(p.get("cityname"))))
        return out

    @staticmethod
    def _geocode_baidu(data: Mapping[str, Any]) -> list[Candidate]:
        r = data.get("result")
        if not isinstance(r, Mapping) or "location" not in r:
            return []
        conf = r.get("confidence")
        return [Candidate(float(r["location"]["lng"]), float(r["location"]["lat"]),
                          _text(r.get("level")) or "UNKNOWN",
                          confidence=None if conf is None else float(conf) / 100,
                          imprecise=str(r.get("precise", "1")) == "0")]

    @staticmethod
    def _poi_baidu(data: Mapping[str, Any]) -> list[Candidate]:
        out = []
        for p in data.get("results") or []:
            if "location" not in p:
                continue  # a city-level suggestion, not a place
            address = "".join(_text(p.get(k)) for k in ("province", "city", "area", "address"))
            out.append(Candidate(float(p["location"]["lng"]), float(p["location"]["lat"]), "兴趣点",
                                 name=_text(p.get("name")), address=address,
                                 city=_text(p.get("city"))))
        return out

    @staticmethod
    def _geocode_tianditu(data: Mapping[str, Any]) -> list[Candidate]:
        loc = data.get("location")
        if not isinstance(loc, Mapping) or loc.get("lon") in (None, ""):
            return []
        score = loc.get("score")
        return [Candidate(float(loc["lon"]), float(loc["lat"]), _text(loc.get("level")) or "未知",
                          address=_text(loc.get("keyWord")),
                          confidence=None if score in (None, "") else float(score) / 100)]

    @staticmethod
    def _poi_tianditu(data: Mapping[str, Any]) -> list[Candidate]:
        out = []
        for p in data.get("pois") or []:
            if not p.get("lonlat"):
                continue
            lon, lat = _lonlat(p["lonlat"])
            out.append(Candidate(lon, lat, "兴趣点", name=_text(p.get("name")),
                                 address=_text(p.get("address"))))
        return out


def _tianditu_refusal(message: str) -> None:
    """Tianditu answers key and quota problems in prose (and with HTTP 403)."""
    if re.search(r"超.*(限|额)|次数|配额|quota", message, re.I):
        raise _Stop("quota", message)
    if re.search(r"tk|key|权限|密钥|非法|授权", message, re.I):
        raise _Stop("key", message)


#: The supported providers.
PROVIDERS: dict[str, Provider] = {
    "amap": Provider("amap", "https://restapi.amap.com", "key", "gcj02",
                     "/v3/geocode/geo", "/v3/place/text", 3.0),
    "baidu": Provider("baidu", "https://api.map.baidu.com", "ak", "bd09",
                      "/geocoding/v3/", "/place/v2/search", 3.0),
    "tianditu": Provider("tianditu", "https://api.tianditu.gov.cn", "tk", "wgs84",
                         "/geocoder", "/v2/search", 5.0),
}
_CRS_NAMES = {"gcj02": "GCJ-02", "bd09": "BD-09", "wgs84": "CGCS2000"}


# ------------------------------------------------------------------ cache
def default_geocode_cache() -> Path:
    """The shared geocoding cache: ``$INCUBLOC_GEOCODE_CACHE``, else
    ``<user cache dir>/incubloc/geocode.sqlite``.

    Examples
    --------
    >>> default_geocode_cache().suffix
    '.sqlite'
    """
    env = os.environ.get("INCUBLOC_GEOCODE_CACHE")
    if env:
        return Path(env)
    try:
        import platformdirs
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "incubloc" / "geocode.sqlite"
    return Path(platformdirs.user_cache_dir("incubloc")) / "geocode.sqlite"


class GeocodeCache:
    """Provider answers in SQLite, keyed by (provider, API, query without the key).

    Each answer is committed as soon as it arrives (WAL journal), so an interrupted
    run loses at most the call in flight, and several processes can share the file.

    Examples
    --------
    >>> import tempfile, os
    >>> c = GeocodeCache(os.path.join(tempfile.mkdtemp(), "g.sqlite"))
    >>> c.put("amap", "geocode", {"address": "南京"}, {"status": "1"})
    >>> c.get("amap", "geocode", {"address": "南京"})
    {'status': '1'}
    >>> c.close()
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS answers (provider TEXT NOT NULL, api TEXT NOT NULL,"
                " query TEXT NOT NULL, answer TEXT NOT NULL, created REAL NOT NULL,"
                " PRIMARY KEY (provider, api, query))"
            )
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot open the geocoding cache {self.path}: {exc}; give "
                             "another file with cache= (--cache PATH)") from None
        self._lock = threading.Lock()

    @staticmethod
    def _query(params: Mapping[str, str]) -> str:
        return json.dumps(dict(sorted(params.items())), ensure_ascii=False)

    def get(self, provider: str, api: str, params: Mapping[str, str]) -> Any | None:
        with self._lock:
            row = self._db.execute(
                "SELECT answer FROM answers WHERE provider=? AND api=? AND query=?",
                (provider, api, self._query(params)),
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, provider: str, api: str, params: Mapping[str, str], answer: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)",
                (provider, api, self._query(params), json.dumps(answer, ensure_ascii=False),
                 time.time()),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self._db.close()


# ------------------------------------------------------------------ HTTP client
class _Client:
    """Cached, rate-limited GETs with retries (urllib3 Retry for HTTP and network
    errors, exponential backoff for the provider's own "too frequent" answers)."""

    def __init__(self, provider: Provider, *, key: str | None, base_url: str, cache: GeocodeCache,
                 qps: float, retries: int, timeout: float, coordtype: str,
                 on_call: Callable[[], None] | None = None):
        self.p, self.key, self.base = provider, key, base_url.rstrip("/")
        self.cache, self.timeout, self.retries = cache, timeout, retries
        self.interval = 1.0 / qps if qps and qps > 0 else 0.0
        self.coordtype = coordtype
        self.calls = 0
        self.on_call = on_call
        self._last = 0.0
        self._session = None

    def _http(self):
        if self._session is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            retry = Retry(total=self.retries, connect=self.retries, read=self.retries,
                          backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                          allowed_methods=("GET",), respect_retry_after_header=True,
                          raise_on_status=False)
            s = requests.Session()
            s.mount("http://", HTTPAdapter(max_retries=retry))
            s.mount("https://", HTTPAdapter(max_retries=retry))
            s.headers["User-Agent"] = "incubloc-geocode"
            self._session = s
        return self._session

    def params(self, api: str, text: str, city: str | None) -> dict[str, str]:
        build = self.p.geocode_params if api == "geocode" else self.p.poi_params
        return build(text, city, coordtype=self.coordtype)

    def cached(self, api: str, params: Mapping[str, str]) -> bool:
        return self.cache.get(self.p.name, api, params) is not None

    def ask(self, api: str, params: dict[str, str]) -> tuple[list[Candidate], str | None]:
        """Candidates for one query (from the cache when asked before), and the
        provider's message when it refused this query (not cached: it may be transient)."""
        data = self.cache.get(self.p.name, api, params)
        if data is None:
            data = self._fetch(api, params)
            if "_incubloc_error" in data:
                return [], data["_incubloc_error"]
            self.cache.put(self.p.name, api, params, data)
        return self.p.candidates(api, data), None

    def _fetch(self, api: str, params: dict[str, str]) -> Any:
        import requests

        if not self.key:
            raise InvalidKeyError(f"{self.p.name}: no key given")
        url = self.base + (self.p.geocode_path if api == "geocode" else self.p.poi_path)
        delay = 1.0
        for attempt in range(self.retries + 1):
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
            self.calls += 1
            if self.on_call is not None:
                self.on_call()
            try:
                resp = self._http().get(url, params={**params, self.p.key_param: self.key},
                                        timeout=self.timeout)
            except requests.RequestException as exc:
                raise GeocodingError(
                    f"{self.p.name}: no answer from {self.base} after {self.retries} retries "
                    f"({type(exc).__name__}); check the network, then rerun (answers so far "
                    "are cached)"
                ) from None
            try:
                data = resp.json()
            except ValueError:
                data = None
            if resp.status_code in (401, 403) or (data is None and resp.status_code >= 400):
                text = resp.text[:200] if data is None else json.dumps(data, ensure_ascii=False)[:200]
                message = f"HTTP {resp.status_code}: {_scrub(text, self.key)}"
                try:
                    _tianditu_refusal(message)
                except _Stop as stop:
                    self._raise(stop)
                if resp.status_code in (401, 403):
                    self._raise(_Stop("key", message))
                raise GeocodingError(f"{self.p.name}: {message}; rerun later (answers so far are cached)")
            if not isinstance(data, Mapping):
                raise GeocodingError(f"{self.p.name}: the answer from {url} is not JSON; check "
                                     "the base URL")
            try:
                self.p.check(data)
            except _Stop as stop:
                if stop.kind == "rate" and attempt < self.retries:
                    log.info("%s: %s; waiting %.1f s", self.p.name, stop.message, delay)
                    time.sleep(delay)
                    delay *= 2
                    continue
                if stop.kind == "row":
                    return {"_incubloc_error": _scrub(stop.message, self.key)}
                self._raise(stop)
            return data
        raise GeocodingError(f"{self.p.name}: still rate-limited after {self.retries} retries; "
                             "lower --qps and rerun (answers so far are cached)")

    def _raise(self, stop: _Stop) -> None:
        message = _scrub(stop.message, self.key)
        if stop.kind == "quota":
            raise QuotaExceededError(f"{self.p.name}: quota exceeded ({message})")
        if stop.kind == "key":
            raise InvalidKeyError(f"{self.p.name}: the key was refused ({message})")
        raise GeocodingError(f"{self.p.name}: {message}")


def _scrub(text: str, key: str | None) -> str:
    """A provider's message on one line, with the key (if echoed back) masked."""
    text = " ".join(str(text).split())
    return text.replace(key, "***") if key else text


# ------------------------------------------------------------------ matching
def _similarity(a: str, b: str) -> float:
    """How alike two names are (0..1): difflib ratio, or 1 when one contains the other."""
    clean = re.compile(r"[\s()（）【】\[\]·,，.。-]")
    a, b = clean.sub("", a or ""), clean.sub("", b or "")
    if not a or not b:
        return 0.0
    if a in b or b in a:
        return 1.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def _city_key(name: str) -> str:
    return re.sub(r"(市|地区|自治州|盟)$", "", (name or "").strip())


def _distance_m(lon1: float, lat1: float, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Great-circle distance in metres (haversine; enough to tell candidates apart)."""
    r = 6_371_008.8
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dl = p2 - p1, np.radians(lon2 - lon1)
    h = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * r * np.arcsin(np.sqrt(h))


@dataclass
class _Row:
    status: str = "failed"
    reasons: list[str] = field(default_factory=list)
    source: str = ""
    cand: Candidate | None = None
    confidence: float | None = None


def _precision(level: str) -> str:
    return LEVEL_PRECISION.get(level, "unknown")


def _locate(client: _Client, name: str, address: str, city: str | None, *, poi: bool) -> _Row:
    row = _Row()
    messages: list[str] = []
    best: Candidate | None = None
    if address:
        params = client.params("geocode", address, city)
        found, error = client.ask("geocode", params)
        if error:
            messages.append(f"address: {error}")
        elif not found:
            messages.append("address: no result")
        if found:
            best = found[0]
            row.source, row.cand = "address", best
            if len(found) > 1:
                far = _distance_m(best.lon, best.lat, np.array([c.lon for c in found[1:]]),
                                  np.array([c.lat for c in found[1:]]))
                if (far > _SEVERAL_M).any():
                    row.reasons.append(f"{len(found)} address matches up to "
                                       f"{far.max() / 1000:.1f} km apart")
    if (best is None or _precision(best.level) not in _FINE) and poi and name:
        params = client.params("poi", name, city)
        places, error = client.ask("poi", params)
        if error:
            messages.append(f"place search: {error}")
        scored = [(_similarity(name, c.name), i, c) for i, c in enumerate(places)]
        scored = [s for s in scored if s[0] >= _SAME_NAME]
        if scored:
            score, _, hit = max(scored, key=lambda s: (s[0], -s[1]))
            row.source, row.cand, row.confidence = "poi", hit, round(score, 3)
            row.reasons = []  # the address's ambiguity no longer applies
        elif not error:
            messages.append("place search: no place with this name" if places else
                            "place search: no result")
    if row.cand is None:
        if not address and not name:
            messages.append("no address and no name to look up")
        elif not address:
            messages.append("no address")
        row.reasons = ["; ".join(messages)]
        return row
    c = row.cand
    cls = _precision(c.level)
    if row.confidence is None:
        row.confidence = c.confidence if c.confidence is not None else _CLASS_CONFIDENCE[cls]
    if cls not in _FINE:
        row.reasons.insert(0, f"matched only at {c.level} level ({cls})")
    if c.imprecise:
        row.reasons.append("the provider marks the match as imprecise")
    if city and c.city and _city_key(city) not in c.city and _city_key(c.city) not in city:
        row.reasons.append(f"matched in {c.city}, not {city}")
    row.status = "review" if row.reasons else "ok"
    return row


# ------------------------------------------------------------------ public API
@dataclass(frozen=True)
class GeocodePlan:
    """What :func:`geocode` would do (``incubloc geocode --dry-run``)."""

    rows: int
    address_queries: int
    address_cached: int
    place_queries_max: int
    place_cached: int

    @property
    def calls_max(self) -> int:
        """Provider calls at most (place searches are made only where needed)."""
        return (self.address_queries - self.address_cached
                + self.place_queries_max - self.place_cached)

    def __str__(self) -> str:
        return (f"{self.rows} rows: {self.address_queries - self.address_cached} address "
                f"calls ({self.address_cached} cached) and at most "
                f"{self.place_queries_max - self.place_cached} place-search calls "
                f"({self.place_cached} cached): at most {self.calls_max} calls")


def _resolve(provider: str, *, key: str | None, key_env: str | None, base_url: str | None,
             coordtype: str, need_key: bool) -> tuple[Provider, str | None, str]:
    if provider not in PROVIDERS:
        raise ConfigError(f"unknown geocoding provider {provider!r}: use one of "
                          f"{', '.join(PROVIDERS)}")
    p = PROVIDERS[provider]
    if coordtype not in ("bd09ll", "gcj02ll"):
        raise ConfigError(f"coordtype={coordtype!r}: use 'bd09ll' or 'gcj02ll' (Baidu only)")
    env = key_env or f"INCUBLOC_{provider.upper()}_KEY"
    if key is None:
        key = os.environ.get(env) or None
    if need_key and not key:
        raise InvalidKeyError(
            f"{provider}: no key: set the environment variable {env} (or name another one "
            "with --key-env VAR / key_env=, or set [geocode] key in the config)"
        )
    base = base_url or os.environ.get(f"INCUBLOC_{provider.upper()}_URL") or p.base_url
    return p, key, base


def _texts(table: pd.DataFrame, col: str) -> list[str]:
    if col not in table:
        return [""] * len(table)
    return ["" if pd.isna(v) else _text(v) for v in table[col].astype(object)]


def _row_city(table: pd.DataFrame, city: str | None) -> list[str | None]:
    """The city a row is searched in: ``city=`` or the row's own city column."""
    own = _texts(table, "city")
    return [city or (c or None) for c in own]


def _full_address(table: pd.DataFrame) -> list[str]:
    """The address, with the district in front when the address lacks it."""
    addr, dist = _texts(table, "address"), _texts(table, "district")
    return [f"{d}{a}" if a and d and d not in a else a for a, d in zip(addr, dist, strict=True)]


def _read(source: Any, *, sheet: Any, encoding: str | None) -> pd.DataFrame:
    from incubloc.io import read_table

    table = read_table(source, sheet=sheet, encoding=encoding)
    if not len(table):
        raise InputError(f"{table.attrs.get('source', source)} holds no rows to geocode")
    if "address" not in table and "name" not in table:
        raise InputError(
            f"{table.attrs.get('source', source)}: no address or name column (columns found: "
            f"{', '.join(map(str, table.columns))}): name them address/地址 and name/名称"
        )
    return table


def geocode_plan(
    source: Any,
    *,
    provider: str = "amap",
    city: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    cache: str | os.PathLike | None = None,
    poi: bool = True,
    coordtype: str = "bd09ll",
) -> GeocodePlan:
    """Count the provider calls :func:`geocode` would make, without making any.

    Place searches are counted where a row has a name and its address is missing, not
    yet cached, or cached with a match coarser than a street address: an upper bound
    until the address answers are in the cache, exact after.

    Examples
    --------
    >>> import tempfile, os
    >>> df = pd.DataFrame({"name": ["紫金", "江宁"], "address": ["玄武区中山路1号", None]})
    >>> str(geocode_plan(df, cache=os.path.join(tempfile.mkdtemp(), "g.sqlite")))
    '2 rows: 1 address calls (0 cached) and at most 2 place-search calls (0 cached): at most 3 calls'
    """
    p, _, base = _resolve(provider, key=None, key_env=None, base_url=None, coordtype=coordtype,
                          need_key=False)
    table = _read(source, sheet=sheet, encoding=encoding)
    store = GeocodeCache(cache or default_geocode_cache())
    try:
        client = _Client(p, key=None, base_url=base, cache=store, qps=0, retries=0, timeout=1,
                         coordtype=coordtype)
        names, cities = _texts(table, "name"), _row_city(table, city)
        addr_q: set[str] = set()
        poi_q: set[str] = set()
        for n, a, c in zip(names, _full_address(table), cities, strict=True):
            fine = False
            if a:
                params = client.params("geocode", a, c)
                addr_q.add(json.dumps(params, ensure_ascii=False))
                answer = store.get(p.name, "geocode", params)
                # A cached street-level answer means no place search for this row.
                fine = answer is not None and any(
                    _precision(x.level) in _FINE for x in p.candidates("geocode", answer)[:1])
            if n and poi and not fine:
                poi_q.add(json.dumps(client.params("poi", n, c), ensure_ascii=False))
        a_cached = sum(client.cached("geocode", json.loads(q)) for q in addr_q)
        p_cached = sum(client.cached("poi", json.loads(q)) for q in poi_q)
    finally:
        store.close()
    return GeocodePlan(len(table), len(addr_q), a_cached, len(poi_q), p_cached)


def geocode(
    source: Any,
    *,
    provider: str = "amap",
    key: str | None = None,
    key_env: str | None = None,
    city: str | None = None,
    sheet: str | int | None = None,
    encoding: str | None = None,
    cache: str | os.PathLike | None = None,
    base_url: str | None = None,
    qps: float | None = None,
    retries: int = 3,
    timeout: float = 10.0,
    poi: bool = True,
    coordtype: str = "bd09ll",
    progress: bool = False,
) -> gpd.GeoDataFrame:
    """Geocode a list of incubators (names and addresses) to WGS84 points.

    Parameters
    ----------
    source : path or DataFrame
        CSV, spreadsheet (.xlsx/.xls/.ods) or DataFrame with an address column
        (address/地址/详细地址 …) and/or a name column (name/名称/孵化器名称 …); optional
        district (区县) and city (城市) columns help. See :func:`incubloc.io.read_table`.
    provider : {"amap", "baidu", "tianditu"}
    key, key_env : str, optional
        The key itself, or the environment variable holding it (default
        ``INCUBLOC_<PROVIDER>_KEY``). Never written anywhere.
    city : str, optional
        City to search in (e.g. "南京"); rows outside it go to review. Default: each
        row's ``city`` column, if any.
    sheet, encoding
        As in :func:`incubloc.io.read_incubators`.
    cache : path, optional
        SQLite cache (default :func:`default_geocode_cache`).
    base_url : str, optional
        Provider root URL (default the public one, or ``$INCUBLOC_<PROVIDER>_URL``).
    qps : float, optional
        Calls per second at most (default 3 for AMap and Baidu, 5 for Tianditu; 0 for
        no limit).
    retries : int
        Retries of failed HTTP requests and of "too frequent" answers, with
        exponential backoff.
    timeout : float
        Seconds to wait for one answer.
    poi : bool
        Search the name as a place when the address is missing or vague.
    coordtype : {"bd09ll", "gcj02ll"}
        Baidu only: ask for BD-09 (default) or GCJ-02 coordinates.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per input row, in input order: the input columns (recognised names
        in English: name, address, district, city, …), then :data:`GEOCODE_COLUMNS`
        (``lon``/``lat`` WGS84, empty when failed; ``geocode_status`` ok / review /
        failed; ``geocode_review`` bool; ``geocode_message`` the reasons or the
        provider's message; ``geocode_level`` the provider's level such as 门牌号 or
        兴趣点; ``geocode_precision`` address / poi / road / area / district / city /
        unknown; ``geocode_confidence`` 0..1; the matched name, address and city; the
        provider's own coordinates and system in ``geocode_crs``; ``source_row`` the
        input row number), EPSG:4326 point geometry (None when failed).
        ``attrs["calls"]`` is the number of provider calls made.

    Raises
    ------
    InvalidKeyError, QuotaExceededError
        The provider refused the key or the quota is used up. Everything geocoded so
        far is in the cache; rerun when fixed.
    GeocodingError
        The provider is unreachable or answers nonsense.
    InputError, ConfigError
        Unreadable list, unknown provider.

    Examples
    --------
    A list whose every answer is already cached makes no call (and needs no key):

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "g.sqlite")
    >>> store = GeocodeCache(path)
    >>> store.put("amap", "geocode", {"address": "南京市玄武区中山路1号", "city": "南京",
    ...            "output": "JSON"}, {"status": "1", "info": "OK", "infocode": "10000",
    ...            "count": "1", "geocodes": [{"formatted_address": "江苏省南京市玄武区中山路1号",
    ...            "city": "南京市", "location": "118.789,32.047", "level": "门牌号"}]})
    >>> store.close()
    >>> out = geocode(pd.DataFrame({"地址": ["南京市玄武区中山路1号"]}), city="南京", cache=path)
    >>> out[["geocode_status", "geocode_level", "geocode_crs"]].iloc[0].tolist()
    ['ok', '门牌号', 'GCJ-02']
    >>> out.attrs["calls"]
    0
    """
    p, key, base = _resolve(provider, key=key, key_env=key_env, base_url=base_url,
                            coordtype=coordtype, need_key=False)
    table = _read(source, sheet=sheet, encoding=encoding)
    crs_key = "gcj02" if provider == "baidu" and coordtype == "gcj02ll" else p.crs
    store = GeocodeCache(cache or default_geocode_cache())
    client = _Client(p, key=key, base_url=base, cache=store,
                     qps=p.default_qps if qps is None else qps,
                     retries=retries, timeout=timeout, coordtype=coordtype)
    names, cities, addresses = _texts(table, "name"), _row_city(table, city), _full_address(table)
    results: list[_Row] = []
    from tqdm.autonotebook import tqdm  # tqdm.auto, without its asyncio mix-in

    try:
        with tqdm(total=len(table), desc=f"geocode ({provider})", unit="row",
                  disable=not progress) as bar:
            for n, a, c in zip(names, addresses, cities, strict=True):
                try:
                    results.append(_locate(client, n, a, c, poi=poi))
                except InvalidKeyError as exc:
                    if key is None and "no key given" in str(exc):
                        _resolve(provider, key=None, key_env=key_env, base_url=base_url,
                                 coordtype=coordtype, need_key=True)
                    raise _stopped(exc, len(results), len(table), store.path) from None
                except GeocodingError as exc:
                    raise _stopped(exc, len(results), len(table), store.path) from None
                bar.update()
    finally:
        store.close()
    return _frame(table, results, provider, crs_key, client.calls)


def _stopped(exc: GeocodingError, done: int, total: int, cache: Path) -> GeocodingError:
    """The same error class, its message saying what is kept and how to resume."""
    text = (f"{exc}; {done} of {total} rows done and kept in the cache {cache}: rerun the "
            "same command to resume")
    if isinstance(exc, QuotaExceededError):
        text += " when the quota is renewed (or with another key)"
    elif isinstance(exc, InvalidKeyError):
        text += " with a valid key"
    new = type(exc)(text)
    new.cli_message = text
    return new


def _frame(table: pd.DataFrame, results: list[_Row], provider: str, crs_key: str,
           calls: int) -> gpd.GeoDataFrame:
    n = len(table)
    found = np.array([r.cand is not None for r in results], dtype=bool)
    plon = np.array([r.cand.lon if r.cand else np.nan for r in results], dtype=float)
    plat = np.array([r.cand.lat if r.cand else np.nan for r in results], dtype=float)
    lon, lat = plon.copy(), plat.copy()
    if crs_key != "wgs84" and found.any():
        lon[found], lat[found] = to_wgs84(plon[found], plat[found], crs_key)
    # Several incubators on one point: a geocoder's fallback, unless they share a building.
    key = pd.Series([f"{x:.6f},{y:.6f}" if f else None for x, y, f in zip(lon, lat, found,
                                                                            strict=True)])
    rows = table["row"].to_numpy()
    groups = key[found].groupby(key[found]).groups
    for _, idx in groups.items():
        if len(idx) > 1:
            for i in idx:
                others = ", ".join(str(rows[j]) for j in idx if j != i)
                results[i].reasons.append(f"same point as row(s) {others}")
                results[i].status = "review"
    out = table.drop(columns=["row"]).copy()
    reserved = [c for c in GEOCODE_COLUMNS if c in out.columns]
    out = out.rename(columns={c: f"{c}_input" for c in reserved})
    out["lon"], out["lat"] = np.round(lon, 7), np.round(lat, 7)
    out["geocode_status"] = [r.status for r in results]
    out["geocode_review"] = out["geocode_status"] == "review"
    out["geocode_message"] = ["; ".join(r.reasons) for r in results]
    out["geocode_provider"] = provider
    out["geocode_source"] = [r.source or None for r in results]
    out["geocode_level"] = [r.cand.level if r.cand else None for r in results]
    out["geocode_precision"] = [_precision(r.cand.level) if r.cand else None for r in results]
    out["geocode_confidence"] = [r.confidence for r in results]
    out["geocode_matched_name"] = [r.cand.name or None if r.cand else None for r in results]
    out["geocode_matched_address"] = [r.cand.address or None if r.cand else None for r in results]
    out["geocode_matched_city"] = [r.cand.city or None if r.cand else None for r in results]
    out["geocode_crs"] = _CRS_NAMES[crs_key]
    out["geocode_lon_provider"], out["geocode_lat_provider"] = plon, plat
    out["source_row"] = rows
    geometry = gpd.points_from_xy(lon, lat)
    geometry[~found] = None
    gdf = gpd.GeoDataFrame(out.reset_index(drop=True), geometry=geometry, crs=4326)
    gdf.attrs = {"calls": calls, "source": table.attrs.get("source"), "rows": n}
    return gdf


def write_geocoded(gdf: gpd.GeoDataFrame, path: str | os.PathLike, *,
                   overwrite: bool = True, provenance: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`geocode` output as CSV (UTF-8 with BOM, opens in Excel) with lon/lat
    columns in WGS84, ready for ``incubloc classify`` / ``report`` (``coords = wgs84``).

    Written atomically; the geometry column is left out (lon/lat carry it). A
    ``provenance`` record (:func:`incubloc.provenance.provenance`) is written beside it
    as ``<name>.provenance.json``.
    """
    from incubloc.io import atomic_path

    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).to_csv(
            tmp, index=False, encoding="utf-8-sig", lineterminator="\n")
    if provenance is not None:
        side = path.with_name(path.stem + ".provenance.json")
        with atomic_path(side) as tmp:
            tmp.write_text(json.dumps(dict(provenance), indent=2, ensure_ascii=False,
                                      default=str) + "\n", encoding="utf-8")
    return path
