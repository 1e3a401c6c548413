"""Fuzzing the CSV and GeoJSON readers: any input either reads or raises an IncublocError.

The number of examples per test is ``INCUBLOC_FUZZ_EXAMPLES`` (default 200, the CI
budget). A longer run is documented in docs/errors.md, e.g.::

    INCUBLOC_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py -q
"""

import json
import os
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incubloc.errors import IncublocError
from incubloc.io import read_incubators

# GDAL's own warnings about the malformed features it is fed are expected noise.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
EXAMPLES = int(os.environ.get("INCUBLOC_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # reproducible in CI: no example database carried between runs
)
TMP = Path(tempfile.mkdtemp(prefix="incubloc-fuzz-"))

HEADERS = ["id", "name", "level", "opened", "site_area_m2", "floor_area_m2", "relation",
           "layout", "lon", "lat", "经度", "纬度", "lng", "x", "y", "", "row", "geometry"]
# Fragments that exercise the parsers: numbers in every dress, labels, quotes, separators.
CELL_PARTS = ["118.78", "32.04", "１１８．７８", "118。78", "东经", "北纬", "°", "度", "E", "N",
              "W", "'", '"', "″", "′", ",", ";", "\t", "\n", "\r\n", " ", "-", "+", "e", "1e400",
              "nan", "inf", "NaN", "None", "0", "00", "国家级", "省级", "市级", "园中园型",
              "楼宇式", "2012年", "2012-05", "2012.0", "m2", "平方米", "\ufeff", "\x00", "\\",
              "孵化器", "众创空间", "𠀀", "\u200b", "١", "½"]

cells = st.lists(st.sampled_from(CELL_PARTS) | st.text(max_size=4), max_size=4).map("".join)


@st.composite
def csv_documents(draw):
    header = draw(st.lists(st.sampled_from(HEADERS), min_size=1, max_size=8))
    n_rows = draw(st.integers(0, 6))
    sep = draw(st.sampled_from([",", "\t", ";"]))
    rows = [draw(st.lists(cells, min_size=0, max_size=len(header) + 1)) for _ in range(n_rows)]
    quote = draw(st.booleans())

    def line(values):
        if quote:
            values = ['"' + v.replace('"', '""') + '"' for v in values]
        return sep.join(values)

    text = "\n".join([line(header), *map(line, rows)])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16",
                                     "big5", "latin-1"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):  # flip a few bytes
        raw = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            if raw:
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        data = bytes(raw)
    return data


def _write(data: bytes, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix, dir=TMP)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)


def _read_or_clear_error(path, **kwargs):
    """Reading must succeed (a valid result) or raise a clear IncublocError."""
    try:
        try:
            gdf = read_incubators(path, **kwargs)
        except IncublocError as exc:
            assert str(exc).strip(), "an incubloc error without a message"
            return None
    finally:
        path.unlink()
    assert isinstance(gdf, gpd.GeoDataFrame)
    assert gdf.crs is not None and gdf.crs.to_epsg() == 4326
    assert list(gdf.index) == list(range(len(gdf)))
    assert gdf["id"].is_unique
    ok = ~gdf.geometry.is_empty
    assert np.all(np.isfinite(gdf.geometry.x[ok])) and np.all(np.abs(gdf.geometry.x) <= 180)
    if kwargs.get("errors") == "report":
        rejected = gdf.attrs["rejected"]
        assert set(rejected["row"]).isdisjoint(set(gdf["row"]))
    return gdf


@FUZZ
@given(data=st.binary(max_size=600), errors=st.sampled_from(["raise", "report"]))
def test_csv_reader_on_random_bytes(data, errors):
    _read_or_clear_error(_write(data, ".csv"), errors=errors)


@FUZZ
@given(data=csv_documents(), errors=st.sampled_from(["raise", "report"]),
       coords=st.sampled_from(["wgs84", "gcj02", "bd09"]))
def test_csv_reader_on_structured_text(data, errors, coords):
    _read_or_clear_error(_write(data, ".csv"), errors=errors, coords=coords)


# ------------------------------------------------------------------------ GeoJSON

numbers = (st.floats(allow_nan=True, allow_infinity=True, width=64)
           | st.integers(-10**20, 10**20) | st.sampled_from([118.78, 32.04, 0, 181, -91]))
positions = st.lists(numbers, min_size=0, max_size=4)
json_scalars = st.none() | st.booleans() | numbers | st.text(max_size=6)


def _geometry():
    ring = st.lists(positions, min_size=0, max_size=6)
    return st.one_of(
        st.none(),
        st.fixed_dictionaries({"type": st.just("Point"), "coordinates": positions}),
        st.fixed_dictionaries({"type": st.just("LineString"),
                               "coordinates": st.lists(positions, max_size=4)}),
        st.fixed_dictionaries({"type": st.just("Polygon"),
                               "coordinates": st.lists(ring, max_size=2)}),
        st.fixed_dictionaries({"type": st.just("MultiPoint"),
                               "coordinates": st.lists(positions, max_size=3)}),
        st.fixed_dictionaries({"type": st.sampled_from(["Point", "Bogus", "", "GeometryCollection"]),
                               "coordinates": json_scalars}),
        json_scalars,
    )


features = st.fixed_dictionaries(
    {"type": st.sampled_from(["Feature", "Feature", "feature", "X"]), "geometry": _geometry()},
    optional={"properties": st.none() | st.dictionaries(
        st.sampled_from(["id", "name", "level", "opened", "lon", "lat", "row", "geometry", ""]),
        json_scalars, max_size=5)},
)
collections = st.fixed_dictionaries(
    {"type": st.sampled_from(["FeatureCollection", "FeatureCollection", "Feature", "Bogus"]),
     "features": st.lists(features, max_size=5) | json_scalars},
    optional={"crs": st.sampled_from([
        {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        {"type": "name", "properties": {"name": "EPSG:32650"}},
        {"type": "name", "properties": {"name": "nonsense"}},
    ])},
)


@FUZZ
@given(doc=collections, errors=st.sampled_from(["raise", "report"]))
def test_geojson_reader_on_generated_documents(doc, errors):
    data = json.dumps(doc, allow_nan=True).encode("utf-8")
    _read_or_clear_error(_write(data, ".geojson"), errors=errors)


@FUZZ
@given(data=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_geojson_reader_on_random_bytes(data):
    _read_or_clear_error(_write(data, ".geojson"), errors="report")


@pytest.mark.parametrize("text", [
    '{"type": "FeatureCollection", "features": []}',
    '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": null, '
    '"properties": {"id": "a"}}]}',
    "",
    "[]",
    '{"type": "Feature"}',
    # A one-point line: GEOS cannot build it; the feature is reported, not a crash.
    '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
    '"geometry": {"type": "LineString", "coordinates": [[0.0, 0.0]]}}]}',
    # Projected coordinates outside the CRS's area: reported, never kept as inf.
    '{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": '
    '"EPSG:32650"}}, "features": [{"type": "Feature", "properties": {}, '
    '"geometry": {"type": "Point", "coordinates": [17197654.0, 0.0]}}]}',
])
def test_geojson_edge_cases(text):
    _read_or_clear_error(_write(text.encode(), ".geojson"), errors="report")
