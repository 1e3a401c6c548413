"""Reading incubator tables and site layers, and writing outputs atomically.

Incubators come as a CSV/TSV table or a spreadsheet (``.xlsx``, ``.xls``, ``.ods``) with
longitude/latitude columns, as a GeoJSON, GeoPackage or Shapefile, or as a
(Geo)DataFrame. :func:`read_incubators` returns
them as points in EPSG:4326 (WGS84) with validated, normalised attribute columns;
:func:`read_sites` reads the optional layer of site polygons (or points) of
multi-site incubators.

Policies
--------
* Coordinates: CSV longitude/latitude are declared as ``wgs84``, ``gcj02`` (AMap,
  Tencent) or ``bd09`` (Baidu) and converted to WGS84; projected x/y in a CSV are
  read with ``crs=``. Vector files use their own CRS (projected is fine); a file
  without a CRS is refused unless ``crs=`` says what it is.
* Encodings: CSV is read as UTF-8 (with or without BOM), then GB18030, a superset
  of GBK/GB2312 (most Chinese spreadsheets export it); UTF-16 with a BOM is
  recognised; any other encoding must be given.
* Polygon incubators: the incubator table holds one *point* per incubator. For
  polygon (or line) features the point is the feature's representative point
  (always inside it). To keep the polygons as sites for the relation and layout
  analyses, read the same file with ``read_sites(path, id_col="id")``.
* Spreadsheets: one sheet (``sheet=`` by name or 0-based index; default the first),
  read with python-calamine (``pip install "incubloc[excel]"``). Title rows above the
  header are skipped: the header is the first row that holds the most recognised column
  names. Problems name the sheet and the spreadsheet's own row number.
* Column names: besides the English names, common Chinese headers are recognised
  (名称, 地址, 区县, 级别, 认定年份, 经度, 纬度, 运营机构, …; see
  :data:`COLUMN_ALIASES`) and renamed to the English names.
* Bad rows: every problem is reported with its line (CSV, the header is line 1),
  feature (vector file) or row (DataFrame) number. ``errors="raise"`` stops with one
  message listing them; ``errors="report"`` keeps the good rows and attaches the bad
  ones as ``gdf.attrs["rejected"]``. Inputs are never modified.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import logging
import mmap
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO, StringIO
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from incubloc import _validate as v
from incubloc.coords import COORD_SYSTEMS, crs_is_missing, in_china, to_wgs84
from incubloc.errors import CoordinateError, InputError

__all__ = [
    "COLUMN_ALIASES",
    "INCUBATOR_COLUMNS",
    "LAT_NAMES",
    "LON_NAMES",
    "atomic_path",
    "canonical_columns",
    "normalise_level",
    "read_incubators",
    "read_sites",
    "read_table",
]

log = logging.getLogger(__name__)

#: Leading columns of :func:`read_incubators` output (other input columns and the
#: geometry follow).
INCUBATOR_COLUMNS = (
    "id", "name", "level", "opened", "site_area_m2", "floor_area_m2",
    "declared_relation", "declared_layout", "row",
)
#: Column names recognised as longitude / latitude (compared case-insensitively).
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")

_TABLE_SUFFIXES = {".csv", ".tsv", ".tab", ".txt"}
_SHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}

#: Other names of the columns incubloc uses (compared after NFKC, lower case, without
#: spaces and without a bracketed unit such as "（平方米）"). The first column that
#: matches is renamed to the key; a column already named as the key wins.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("编号", "序号", "代码", "编码"),
    "name": ("名称", "孵化器名称", "众创空间名称", "载体名称", "机构名称", "单位名称", "空间名称",
             "企业名称", "孵化载体名称", "名字"),
    "address": ("地址", "详细地址", "通讯地址", "办公地址", "注册地址", "所在地址", "地点",
                "场地地址", "addr"),
    "district": ("区县", "所在区县", "县区", "区", "所在区", "区（县）", "区县（市）", "县（市、区）"),
    "city": ("城市", "所在城市", "地市", "所在地市", "设区市", "市", "所在市"),
    "province": ("省份", "省", "所在省份"),
    "level": ("级别", "认定级别", "等级", "级别类型"),
    "opened": ("认定年份", "认定时间", "成立年份", "成立时间", "开业年份", "年份", "opened_year",
               "year"),
    "operator": ("运营机构", "运营主体", "运营单位", "依托单位", "管理机构", "运营机构名称"),
    "site_area_m2": ("场地面积", "占地面积", "用地面积", "site_area"),
    "floor_area_m2": ("建筑面积", "孵化场地面积", "孵化面积", "floor_area"),
    "relation": ("类型关系", "区位关系"),
    "layout": ("布局", "空间布局", "布局模式"),
}
_PARQUET_SUFFIXES = {".parquet", ".geoparquet"}
_ATTRIBUTES = ("name", "level", "opened", "site_area_m2", "floor_area_m2", "relation",
               "layout", "declared_relation", "declared_layout")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    An interrupted write leaves no half-written file under the final name.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(p) as tmp:
    ...     _ = tmp.write_text("done")
    >>> Path(p).read_text()
    'done'
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"output {path} already exists: remove it or pass --overwrite")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        try:
            parent.mkdir(parents=True)
        except OSError as exc:
            raise InputError(f"cannot create output folder {parent}: {exc.strerror}") from exc
    # A private folder beside the target holds the file under its final name: drivers
    # that derive a layer name from the file name (GPKG) name it as a direct write would,
    # and the rename stays on one filesystem.
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    except OSError as exc:
        raise InputError(f"output folder {parent} is not writable: {exc.strerror}") from exc
    tmp = folder / path.name
    try:
        yield tmp
        if not tmp.exists():
            raise InputError(f"nothing was written to {path}")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- loading


@dataclass
class _Source:
    table: pd.DataFrame  # attribute columns, RangeIndex
    rows: np.ndarray  # 1-based line (CSV), feature (vector) or row (DataFrame) numbers
    where: str  # how messages name the source
    unit: str  # "line", "feature" or "row"
    geometry: gpd.GeoSeries | None = None  # vector input only, RangeIndex
    too_many: np.ndarray | None = None  # CSV records with more cells than the header


def _lookup(columns: Iterable[object]) -> dict[str, object]:
    """Lower-cased, stripped column name -> column (the first one wins)."""
    out: dict[str, object] = {}
    for col in columns:
        out.setdefault(str(col).strip().lower(), col)
    return out


def _find(columns: Sequence[object], name: str | None) -> object | None:
    """The column called ``name`` (any case), else one of its aliases (Chinese names)."""
    if name is None:
        return None
    if name in columns:
        return name
    found = _lookup(columns).get(str(name).strip().lower())
    if found is None and name in COLUMN_ALIASES:
        found = next((c for c, to in canonical_columns(columns).items() if to == name), None)
    return found


def _columns_text(columns: Iterable[object]) -> str:
    return ", ".join(str(c) for c in columns) or "none"


def _has_geometry(gdf: gpd.GeoDataFrame) -> bool:
    try:
        gdf.geometry  # noqa: B018 - raises when no active geometry column is set
    except AttributeError:
        return False
    return True


def _load(
    source: object,
    *,
    encoding: str | None,
    layer: str | None,
    text_columns: Iterable[str] = (),
    tables: bool = True,
    what: str = "incubators",
    sheet: str | int | None = None,
) -> _Source:
    if isinstance(source, gpd.GeoDataFrame) and _has_geometry(source):
        gdf = source.reset_index(drop=True)  # a new object: the caller's frame is untouched
        geom = gdf.geometry.copy()
        table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        return _Source(table, np.arange(1, len(gdf) + 1), "the GeoDataFrame", "row", geom)
    if isinstance(source, pd.DataFrame):
        if not tables:
            raise InputError(f"{what} must be a GeoDataFrame with polygon or point geometry")
        table = pd.DataFrame(source).reset_index(drop=True).copy()
        return _Source(table, np.arange(1, len(table) + 1), "the DataFrame", "row")
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(
            f"cannot read {what} from a {type(source).__name__}: give a file path or a "
            "(Geo)DataFrame"
        )
    path = Path(source)
    if not path.exists():
        raise InputError(f"{what} file {path} does not exist: check the path")
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        return _read_parquet(path, what=what, tables=tables)
    if path.suffix.lower() in _TABLE_SUFFIXES:
        if not tables:
            raise InputError(
                f"{path}: {what} must be a vector file with polygon or point geometry "
                "(GeoPackage, GeoJSON or Shapefile), not a table"
            )
        return _read_table(path, encoding=encoding, text_columns=text_columns)
    if path.suffix.lower() in _SHEET_SUFFIXES:
        if not tables:
            raise InputError(f"{path}: {what} must be a vector file with polygon or point "
                             "geometry (GeoPackage, GeoJSON or Shapefile), not a spreadsheet")
        return _read_spreadsheet(path, sheet=sheet)
    if sheet is not None:
        raise InputError(f"{path}: sheet= (--sheet) applies to spreadsheets (.xlsx, .xls, "
                         ".ods); for a GeoPackage use layer= (--layer)")
    return _read_vector(path, layer=layer, what=what)


def _decode_bytes(path: Path, encoding: str | None, data: bytes) -> tuple[str, bool]:
    """The text of ``data`` and whether it was decoded as UTF-8 (so that ``data`` is
    its UTF-8, a byte-order mark aside)."""
    if encoding is not None:
        try:
            text = data.decode(encoding)
        except LookupError:
            raise InputError(
                f"unknown encoding {encoding!r} for {path}: give a Python codec name such "
                "as 'utf-8', 'gb18030' or 'big5'"
            ) from None
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InputError(
                f"{path} is not valid {encoding} (line {line}): pass the file's real "
                "encoding with encoding= (--encoding), or leave it out to try UTF-8 and GBK"
            ) from None
        return text, codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    if data[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        try:  # plain UTF-8, the common case (what the checks below would also find)
            return data.decode("utf-8-sig"), True
        except UnicodeDecodeError:
            pass
    mixed = _decode_mixed(path, data)
    if mixed is not None:
        return mixed, False
    candidates = ["utf-8-sig", "gb18030"]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        candidates.insert(0, "utf-16")
    first_error: UnicodeDecodeError | None = None
    for enc in candidates:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
            continue
        if enc != "utf-8-sig":
            log.info("%s: read as %s", path, enc)
        return text, enc == "utf-8-sig"
    assert first_error is not None
    line = data[: first_error.start].count(b"\n") + 1
    raise InputError(
        f"cannot decode {path}: it is neither UTF-8 nor GBK/GB18030 (first bad byte on line "
        f"{line}): save it as UTF-8, or pass its encoding, e.g. encoding='big5' (--encoding)"
    )


def _decode_mixed(path: Path, data: bytes) -> str | None:
    """Decode a file whose lines mix UTF-8 and GBK/GB18030 (tables pasted together from
    several exports), line by line; None when the file is not such a mixture."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    try:
        data.decode("utf-8-sig")
        return None  # plain UTF-8
    except UnicodeDecodeError:
        pass
    lines = data.split(b"\n")
    utf8_lines, gbk_lines, out = [], [], []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            if not raw.isascii():
                utf8_lines.append(number)
        except UnicodeDecodeError:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError:
                return None
            gbk_lines.append(number)
        out.append(text)
    if not utf8_lines or not gbk_lines:
        return None  # one encoding throughout: the whole-file decoders handle it
    log.warning(
        "%s mixes encodings: lines %s read as GBK/GB18030, the others as UTF-8; check the "
        "names on those lines and save the file as UTF-8",
        path, ", ".join(map(str, gbk_lines[:20])) + (" ..." if len(gbk_lines) > 20 else ""),
    )
    return "\n".join(out)


def _separator(path: Path, text: str) -> str:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    start = 0  # the first line after a byte-order mark and blank lines, without
    while start < len(text) and text[start] in "\ufeff\r\n":  # copying the text
        start += 1
    end = text.find("\n", start)
    header = text[start:] if end < 0 else text[start:end]
    for sep in (",", "\t", ";"):
        if sep in header:
            return sep
    return ","


def _record_lines(text: str, sep: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """1-based line on which each data record starts (quoted newlines and blank lines
    make this differ from position + 2), and each record's number of cells."""
    reader = csv.reader(StringIO(text), delimiter=sep)
    starts: list[int] = []
    sizes: list[int] = []
    previous = 0
    try:
        for record in reader:
            if record and not (len(record) == 1 and not record[0].strip()):
                starts.append(previous + 1)
                sizes.append(len(record))
            previous = reader.line_num
    except csv.Error:
        starts = []
    if len(starts) != n + 1:
        log.debug("line numbers approximated by position (csv found %d records)", len(starts))
        return np.arange(2, n + 2), np.zeros(n, dtype="int64")
    return np.asarray(starts[1:], dtype="int64"), np.asarray(sizes[1:], dtype="int64")


def _head(text: str, lines: int = 2) -> str:
    """The first ``lines`` lines of ``text`` (the whole text if a quote could make a
    record span lines there): enough for pandas to read the header and to see
    whether the first record has an extra cell (an implicit index)."""
    end = -1
    for _ in range(lines):
        end = text.find("\n", end + 1)
        if end < 0:
            return text
    head = text[: end + 1]
    return text if '"' in head else head


def _read_table(path: Path, *, encoding: str | None, text_columns: Iterable[str]) -> _Source:
    wanted = {str(c).strip().lower() for c in text_columns}
    utf8 = encoding is None
    if encoding is not None:
        with contextlib.suppress(LookupError):  # an unknown name is reported below
            utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    # A large plain UTF-8 file is read from its bytes mapped into memory, without
    # copying or decoding it in Python.
    table = _read_mapped(path, wanted) if utf8 else None
    if table is not None:
        return _plain_source(table, path)
    data = path.read_bytes()
    text, is_utf8 = _decode_bytes(path, encoding, data)
    if not is_utf8:  # another encoding (GB18030): the same reader on its UTF-8
        table = _read_arrow(text.encode("utf-8"), path, wanted)
        if table is not None:
            return _plain_source(table, path)
    sep = _separator(path, text)
    try:
        header = pd.read_csv(StringIO(_head(text)), sep=sep, nrows=0).columns
        # Coordinates, ids and labels are read as text so that "001" stays "001"
        # and "118.78°" can be cleaned before parsing.
        dtype = {c: str for c in header if str(c).strip().lower() in wanted}
        with warnings.catch_warnings():
            # A record with an extra cell: reported below rather than taken as an index.
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            table = pd.read_csv(StringIO(text), sep=sep, dtype=dtype or None, index_col=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} is empty: it needs a header line and one line per incubator") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"cannot parse {path} as a table: {exc}; check the delimiter and quotes") from None
    table.columns = [str(c).strip() for c in table.columns]
    rows, sizes = _record_lines(text, sep, len(table))
    return _Source(table, rows, str(path), "line", too_many=sizes > len(table.columns))


def _plain_source(table: pd.DataFrame, path: Path) -> _Source:
    """A table read by :func:`_read_arrow`: record i is on line i + 2."""
    n = len(table)
    table.columns = [str(c).strip() for c in table.columns]
    return _Source(table, np.arange(2, n + 2), str(path), "line",
                   too_many=np.zeros(n, dtype=bool))


# Below this many bytes the Arrow reader is not worth its set-up.
_ARROW_MIN_CHARS = 1 << 20


def _read_mapped(path: Path, wanted: set[str]) -> pd.DataFrame | None:
    """:func:`_read_arrow` on the file mapped into memory (None for small files)."""
    if path.stat().st_size < _ARROW_MIN_CHARS:
        return None
    with path.open("rb") as f:
        try:
            raw = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a file system without memory maps
            return None
    # Closed when garbage-collected (Arrow copies what it reads, but a NumPy view of
    # the bytes may still be referenced by a traceback).
    return _read_arrow(raw, path, wanted)


def _read_arrow(raw: bytes | mmap.mmap, path: Path, wanted: set[str]) -> pd.DataFrame | None:
    """A large, plain table read with Arrow from its UTF-8 bytes ``raw``: the columns
    named in ``wanted`` as text by pyarrow's CSV reader, the other columns by pandas'
    C parser (so their types are inferred as in the general path).

    Plain means: valid UTF-8, no quotes, no blank lines, no lone carriage returns
    (so record i is on line i + 2), a header of at least two unique names. Returns
    None when pyarrow is missing or the table is not plain; the caller then uses the
    general path, which gives the same frame (and finds the problems)."""
    if len(raw) < _ARROW_MIN_CHARS or raw.find(b'"') >= 0:
        return None
    if raw.find(b"\r") >= 0:
        data = np.frombuffer(raw, dtype=np.uint8)
        cr = np.flatnonzero(data == ord("\r"))
        if cr[-1] + 1 == len(data) or (data[cr + 1] != ord("\n")).any():
            return None  # old Mac line ends
        del data
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    from pandas._libs.parsers import STR_NA_VALUES

    start = len(codecs.BOM_UTF8) if raw[:3] == codecs.BOM_UTF8 else 0
    end = len(raw)
    while end > start and raw[end - 1] in b"\r\n":  # final line ends
        end -= 1
    eol = raw.find(b"\n", start, end)
    if eol < 0:
        return None
    try:
        first = raw[start:eol].decode("utf-8").rstrip("\r")
        sep = _separator(path, first)
        header = pd.read_csv(StringIO(first), sep=sep, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):  # also undecodable
        return None
    names = [str(c) for c in header]
    if len(names) < 2 or len(set(names)) != len(names) \
            or any(not c.strip() or c.startswith(("Unnamed:", "\ufeff")) for c in names):
        return None
    columns = [c for c in names if c.strip().lower() in wanted]
    others = [c for c in names if c not in columns]
    # Arrow checks that the text columns are UTF-8; the whole file is checked when
    # pandas reads other columns too.
    if not columns or others and not _is_utf8(raw):
        return None
    body = pa.py_buffer(raw).slice(start, end - start)
    try:
        arrow = pacsv.read_csv(
            # One block: each column comes as one chunk, which the checks read
            # without a copy (Arrow still converts the columns in parallel).
            body, read_options=pacsv.ReadOptions(block_size=min(end - start + 1, 1 << 30)),
            # A blank line is then a record of one cell: an error, not a skipped line.
            parse_options=pacsv.ParseOptions(delimiter=sep, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.large_string() for c in columns}, include_columns=columns,
                null_values=sorted(STR_NA_VALUES), strings_can_be_null=True,
                quoted_strings_can_be_null=True, check_utf8=True),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, pa.ArrowNotImplementedError, ValueError):
        return None  # ragged lines and the like: the general path reports them
    n = arrow.num_rows
    text_dtype = _text_dtype()
    parts: dict[object, pd.Series] = {}
    for c in columns:
        if text_dtype == np.dtype(object):  # pandas 2: Python strings with NaN for missing
            col = pd.Series(arrow.column(c).to_pandas(), dtype=object)
            parts[c] = col.where(col.notna(), np.nan)
        else:  # the str dtype read_csv gives, without a round trip through Python
            column = arrow.column(c)
            if column.num_chunks > 1:  # files over a gigabyte
                column = column.combine_chunks()
            parts[c] = pd.Series(pd.array(column, dtype=text_dtype))
    if others:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pd.errors.ParserWarning)
                rest = pd.read_csv(BytesIO(raw[start:end]), sep=sep, usecols=others,
                                   index_col=False, encoding="utf-8")
        except (pd.errors.ParserError, ValueError):
            return None
        if len(rest) != n:
            return None
        parts.update({c: rest[c] for c in others})
    return pd.DataFrame({c: parts[c] for c in names})


def _is_utf8(raw: bytes | mmap.mmap) -> bool:
    """Whether ``raw`` is valid UTF-8, checked by Arrow (several times faster than
    decoding it in Python)."""
    import pyarrow as pa

    whole = pa.Array.from_buffers(pa.large_binary(), 1, [
        None, pa.py_buffer(np.array([0, len(raw)], dtype=np.int64)), pa.py_buffer(raw)])
    try:
        whole.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _read_parquet(path: Path, *, what: str, tables: bool) -> _Source:
    """GeoParquet (geometry column) or plain Parquet (lon/lat columns); rows are
    numbered from 1 like a DataFrame's."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            f"reading {path} needs pyarrow: pip install \"incubloc[arrow]\""
        ) from None
    try:
        geo = b"geo" in (pq.read_schema(path).metadata or {})
        frame = gpd.read_parquet(path) if geo else pd.read_parquet(path)
    except (OSError, ValueError, TypeError) as exc:  # pyarrow's errors derive from these
        raise InputError(f"cannot read {path} as (Geo)Parquet: {exc}") from None
    frame = frame.reset_index(drop=True)
    rows = np.arange(1, len(frame) + 1)
    if isinstance(frame, gpd.GeoDataFrame) and _has_geometry(frame):
        geom = frame.geometry.copy()
        return _Source(pd.DataFrame(frame.drop(columns=frame.geometry.name)), rows,
                       str(path), "row", geom)
    if not tables:
        raise InputError(f"{path}: {what} must have polygon or point geometry (GeoParquet), "
                         "not a plain table")
    return _Source(pd.DataFrame(frame), rows, str(path), "row")


def _read_vector(path: Path, *, layer: str | None, what: str) -> _Source:
    try:
        names = [str(row[0]) for row in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises several DataSourceError types
        raise InputError(
            f"cannot open {path}: {exc}; {what} must be CSV, Excel/ODS, GeoJSON, GeoPackage or "
            "Shapefile"
        ) from None
    if layer is None and len(names) > 1:
        raise InputError(
            f"{path} has {len(names)} layers ({', '.join(names)}): choose one with layer= "
            "(--layer)"
        )
    if layer is not None and layer not in names:
        raise InputError(f"{path} has no layer {layer!r}: its layers are {', '.join(names)}")
    where = f"{path} (layer {layer!r})" if layer is not None else str(path)
    try:
        # A geometry GEOS cannot build (a one-point line) becomes None and is reported
        # per feature as an empty geometry, instead of failing the whole file.
        gdf = pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore")
    except TypeError:  # pyogrio < 0.8 has no on_invalid
        gdf = _read_dataframe(path, layer, where, what)
    except Exception as exc:  # pyogrio/GDAL raise many types on corrupt files
        raise InputError(f"cannot read {where}: {exc}; {what} must be CSV, GeoJSON, "
                         "GeoPackage or Shapefile") from None
    if not isinstance(gdf, gpd.GeoDataFrame) or not _has_geometry(gdf):
        raise InputError(f"{where} has no geometry column: give a layer with points or "
                         "polygons, or a CSV with lon/lat columns")
    geom = gdf.geometry.copy()
    table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    return _Source(table, np.arange(1, len(gdf) + 1), where, "feature", geom)


def _read_dataframe(path: Path, layer: str | None, where: str, what: str) -> gpd.GeoDataFrame:
    try:
        return gpd.read_file(path, layer=layer)
    except Exception as exc:  # GEOS, GDAL and pyogrio errors on corrupt features
        raise InputError(f"cannot read {where}: {exc}; {what} must be CSV, GeoJSON, "
                         "GeoPackage or Shapefile") from None


# ------------------------------------------------------------------ spreadsheets


def _column_key(name: object) -> tuple[str, str]:
    """(key, unit): NFKC, lower case, no spaces; a trailing bracketed unit split off."""
    import re
    import unicodedata

    text = unicodedata.normalize("NFKC", str(name)).strip().lower().replace(" ", "")
    found = re.match(r"^(.*?)[(\[](.*)[)\]]$", text)
    if found and found.group(1):
        return found.group(1), found.group(2)
    return text, ""


_ALIAS_KEYS = {
    _column_key(alias)[0]: target
    for target, aliases in COLUMN_ALIASES.items()
    for alias in (target, *aliases)
}
# Units that would make a column's numbers mean something else (万平方米, 亩, 公顷).
_FOREIGN_UNITS = ("万", "亩", "公顷", "ha", "km")


def canonical_columns(columns: Iterable[object]) -> dict[object, str]:
    """Renames from recognised column names (Chinese headers, bracketed units) to the
    names incubloc uses, as a mapping for :meth:`pandas.DataFrame.rename`.

    A column already named as the target keeps it and the aliases are left alone; of
    several aliases of one target, the first column wins. Longitude/latitude headers
    with a unit or system in brackets (``经度（GCJ-02）``) lose the bracket.

    Examples
    --------
    >>> canonical_columns(["序号", "孵化器名称", "地址 ", "认定年份", "场地面积（平方米）", "经度(GCJ-02)"])
    {'序号': 'id', '孵化器名称': 'name', '地址 ': 'address', '认定年份': 'opened', '场地面积（平方米）': 'site_area_m2', '经度(GCJ-02)': '经度'}
    """
    columns = list(columns)
    taken = {str(c) for c in columns}
    out: dict[object, str] = {}
    for col in columns:
        key, unit = _column_key(col)
        if key in LON_NAMES or key in LAT_NAMES:
            if unit and key not in taken:
                out[col] = key
                taken.add(key)
            continue
        target = _ALIAS_KEYS.get(key)
        if target is None or str(col) == target or target in taken:
            continue
        if target.endswith("_m2") and any(u in unit for u in _FOREIGN_UNITS):
            log.warning("column %r is not in square metres: not used as %s", col, target)
            continue
        out[col] = target
        taken.add(target)
    return out


def _cell(value: object) -> object:
    """A spreadsheet cell as pandas should see it: blank -> None, 12.0 -> 12."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _header_row(rows: list[list[object]], limit: int = 30) -> int:
    """Index of the header: among the first non-blank rows, the one with the most
    recognised column names (the first such row); without any, the first row with at
    least two filled cells (a title row usually fills one)."""
    known = set(_ALIAS_KEYS) | set(LON_NAMES) | set(LAT_NAMES)
    best, best_score, first_wide = -1, 0, -1
    seen = 0
    for i, row in enumerate(rows):
        filled = [c for c in row if c is not None]
        if not filled:
            continue
        seen += 1
        if seen > limit:
            break
        score = sum(_column_key(c)[0] in known for c in filled if isinstance(c, str))
        if score > best_score:
            best, best_score = i, score
        if first_wide < 0 and len(filled) >= 2:
            first_wide = i
    if best >= 0:
        return best
    return first_wide if first_wide >= 0 else next(
        (i for i, r in enumerate(rows) if any(c is not None for c in r)), 0)


def _sheet_name(path: Path, names: list[str], sheet: str | int | None) -> str:
    if sheet is None:
        sheet = 0
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        if not 0 <= sheet < len(names):
            raise InputError(f"{path} has {len(names)} sheets ({', '.join(names)}): sheet "
                             f"index {sheet} does not exist (the first sheet is 0)")
        return names[sheet]
    if str(sheet) in names:
        return str(sheet)
    if str(sheet).isdigit() and int(sheet) < len(names):  # --sheet 1 from the CLI
        return names[int(sheet)]
    raise InputError(f"{path} has no sheet {sheet!r}: its sheets are {', '.join(names)} "
                     "(choose one with sheet= / --sheet, by name or 0-based index)")


def _sheet_rows(path: Path, sheet: str | int | None) -> tuple[str, list[list[object]]]:
    """(sheet name, every row from A1) with python-calamine, or openpyxl for .xlsx."""
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:
        CalamineWorkbook = None
    if CalamineWorkbook is None:
        try:
            import openpyxl
        except ImportError:
            openpyxl = None
        if openpyxl is None or path.suffix.lower() not in (".xlsx", ".xlsm"):
            raise ImportError(
                f"reading {path.suffix} files needs python-calamine: "
                'pip install "incubloc[excel]" (or pip install python-calamine)'
            ) from None
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # zip and XML errors of a corrupt file
            raise InputError(f"cannot open {path} as a spreadsheet: {exc}; save it again as "
                             ".xlsx or as CSV") from None
        name = _sheet_name(path, list(book.sheetnames), sheet)
        rows = [list(r) for r in book[name].iter_rows(min_row=1, min_col=1, values_only=True)]
        book.close()
        return name, rows
    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for corrupt files
        raise InputError(f"cannot open {path} as a spreadsheet: {exc}; save it again as "
                         ".xlsx or as CSV") from None
    name = _sheet_name(path, list(book.sheet_names), sheet)
    return name, book.get_sheet_by_name(name).to_python(skip_empty_area=False)


def _read_spreadsheet(path: Path, *, sheet: str | int | None) -> _Source:
    name, raw = _sheet_rows(path, sheet)
    where = f"{path} (sheet {name!r})"
    rows = [[_cell(c) for c in r] for r in raw]
    if not any(c is not None for r in rows for c in r):
        raise InputError(f"{where} is empty: it needs a header row and one row per incubator")
    h = _header_row(rows)
    header = rows[h]
    width = max(len(r) for r in rows)
    names_ = [str(c).strip() if c is not None else f"column_{j + 1}"
              for j, c in enumerate(header + [None] * (width - len(header)))]
    body = [r + [None] * (width - len(r)) for r in rows[h + 1:]]
    numbers = np.arange(h + 2, h + 2 + len(body), dtype="int64")  # spreadsheet row numbers
    table = pd.DataFrame(body, columns=names_, dtype=object)
    keep = np.array([any(c is not None for c in r) for r in body], dtype=bool)
    table = table.loc[keep].reset_index(drop=True)  # blank rows between and after records
    # Columns with neither a header nor a value are formatting, not data.
    unnamed = [c for c, raw in zip(names_, header + [None] * width, strict=False)
               if raw is None and table[c].isna().all()]
    table = table.drop(columns=unnamed)
    if h > 0:
        log.info("%s: header on row %d (rows above it are titles)", where, h + 1)
    return _Source(table.infer_objects(), numbers[keep], where, "row")


def read_table(
    source: str | os.PathLike | pd.DataFrame,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    layer: str | None = None,
) -> pd.DataFrame:
    """Read a list of incubators that may lack coordinates (e.g. to geocode it).

    The same sources as :func:`read_incubators` (CSV, spreadsheet, vector file,
    DataFrame), the same header detection and column names (:data:`COLUMN_ALIASES`),
    but no coordinate checks. Ids and text columns are kept as text.

    Returns
    -------
    pandas.DataFrame
        The input columns (recognised ones renamed), plus ``row``: the CSV line (the
        header being line 1), the spreadsheet row, or the 1-based feature/row number.
        ``attrs["source"]`` names the file (and sheet) and ``attrs["unit"]`` the kind of
        row number, for messages.

    Examples
    --------
    >>> read_table(pd.DataFrame({"名称": ["紫金"], "地址": ["南京市玄武区"]})).to_dict("records")
    [{'name': '紫金', 'address': '南京市玄武区', 'row': 1}]
    """
    text = [*COLUMN_ALIASES, *(a for al in COLUMN_ALIASES.values() for a in al)]
    src = _load(source, encoding=encoding, layer=layer, sheet=sheet, text_columns=text,
                what="incubator list")
    table = src.table.rename(columns=canonical_columns(src.table.columns))
    if src.geometry is not None:
        table = table.assign(geometry=src.geometry.to_numpy())
    if "row" in table.columns:
        table = table.rename(columns={"row": "row_input"})
    table["row"] = np.asarray(src.rows, dtype="int64")
    table.attrs.update({"source": src.where, "unit": src.unit})
    return table


# ----------------------------------------------------------------- coordinates


def _coord_key(coords: str) -> str:
    key = str(coords).lower().replace("-", "").replace("_", "")
    if key not in COORD_SYSTEMS:
        raise CoordinateError(
            f"unknown coordinate system {coords!r}: use one of wgs84, gcj02 (AMap/Tencent) "
            "or bd09 (Baidu)"
        )
    return key


def _user_crs(crs: object, where: str) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise CoordinateError(f"{where}: crs={crs!r} is not a CRS ({exc}): give e.g. crs=4326") from None


def _coordinate_columns(src: _Source, lon: str | None, lat: str | None) -> tuple[object, object]:
    columns = list(src.table.columns)
    lookup = _lookup(columns)
    found = []
    for given, names, label, flag in (
        (lon, LON_NAMES, "longitude", "--lon"),
        (lat, LAT_NAMES, "latitude", "--lat"),
    ):
        if given is not None:
            col = _find(columns, given)
            if col is None:
                raise CoordinateError(
                    f"{src.where}: no {label} column {given!r} (columns found: "
                    f"{_columns_text(columns)}): name the column with {flag} COL "
                    f"({flag[2:]}=)"
                )
        else:
            col = next((lookup[n] for n in names if n in lookup), None)
            if col is None:  # 经度（GCJ-02）, Longitude (deg)
                col = next((c for c in columns if _column_key(c)[0] in names), None)
            if col is None:
                raise CoordinateError(
                    f"{src.where}: no {label} column (columns found: {_columns_text(columns)}); "
                    f"recognised names are {'/'.join(names)}: name the columns with "
                    "--lon COL --lat COL (lon=, lat=)"
                )
        found.append(col)
    if found[0] == found[1]:
        raise CoordinateError(
            f"{src.where}: column {found[0]!r} cannot be both longitude and latitude: "
            "give --lon and --lat (lon=, lat=)"
        )
    log.debug("%s: longitude from %r, latitude from %r", src.where, *found)
    return found[0], found[1]


def _table_points(
    src: _Source, lon: str | None, lat: str | None, crs: object, coords: str,
    problems: v.Problems,
) -> tuple[np.ndarray, np.ndarray, dict[object, np.ndarray]]:
    lon_col, lat_col = _coordinate_columns(src, lon, lat)
    x, bad_x = v.parse_coordinates(src.table[lon_col])
    y, bad_y = v.parse_coordinates(src.table[lat_col])
    for values, bad, col in ((x, bad_x, lon_col), (y, bad_y, lat_col)):
        raw = src.table[col]
        problems.add(np.isnan(values) & ~bad, "coord_missing", f"{col} is empty")
        problems.add(bad, "coord_text", [f"{col} {r!r} is not a number" for r in raw[bad]])
    parsed = {lon_col: x, lat_col: y}  # kept as numbers, in the declared system
    if crs is not None:
        source_crs = _user_crs(crs, src.where)
        if source_crs.is_projected and coords != "wgs84":
            raise CoordinateError(
                f"{src.where}: coords={coords!r} applies to longitude/latitude, but crs= "
                f"declares the projected {source_crs.name}: drop one of the two"
            )
        if not source_crs.equals(CRS.from_epsg(4326)):
            ok = np.isfinite(x) & np.isfinite(y)
            tx, ty = Transformer.from_crs(source_crs, 4326, always_xy=True).transform(x[ok], y[ok])
            x, y = x.copy(), y.copy()
            x[ok], y[ok] = tx, ty
            _unconvertible(x, y, ok, source_crs, problems)
    return x, y, parsed


def _vector_crs(geom: gpd.GeoSeries, crs: object, where: str) -> gpd.GeoSeries:
    if crs is not None:
        given = _user_crs(crs, where)
        if not crs_is_missing(geom.crs) and not given.equals(geom.crs):
            log.warning("%s: using crs=%s instead of the file's %s", where, given.name,
                        geom.crs.name)
        return geom.set_crs(given, allow_override=True)
    if crs_is_missing(geom.crs):
        hint = " (a Shapefile without its .prj file?)" if where.lower().endswith(".shp") else ""
        raise CoordinateError(
            f"{where} has no CRS{hint}: say what it is with crs= (e.g. crs=4326 for "
            "longitude/latitude, crs=4549 for CGCS2000 3-degree Gauss-Kruger CM 120E)"
        )
    return geom


def _check_geographic(geom: gpd.GeoSeries, coords: str, where: str) -> None:
    if coords != "wgs84" and not geom.crs.is_geographic:
        raise CoordinateError(
            f"{where} is in the projected CRS {geom.crs.name}; coords={coords!r} applies only "
            "to longitude/latitude: leave coords as 'wgs84' (the file's CRS is used)"
        )


def _vector_points(
    src: _Source, crs: object, coords: str, problems: v.Problems
) -> tuple[np.ndarray, np.ndarray]:
    assert src.geometry is not None
    geom = _vector_crs(src.geometry, crs, src.where)
    _check_geographic(geom, coords, src.where)
    values = np.asarray(geom.values)
    empty = shapely.is_missing(values) | shapely.is_empty(values)
    problems.add(empty, "geometry", "empty geometry")
    other = ~empty & (shapely.get_type_id(values) != 0)
    if other.any():
        log.info(
            "%s: %d non-point features located at their representative point; to use the "
            "polygons as sites, also read the file with read_sites(..., id_col='id')",
            src.where, int(other.sum()),
        )
        values = values.copy()
        values[other] = shapely.point_on_surface(values[other])
    points = np.asarray(gpd.GeoSeries(values[~empty], crs=geom.crs).to_crs(4326).values)
    x = np.full(len(values), np.nan)
    y = np.full(len(values), np.nan)
    x[~empty], y[~empty] = shapely.get_x(points), shapely.get_y(points)
    _unconvertible(x, y, ~empty, geom.crs, problems)
    return x, y


def _unconvertible(x: np.ndarray, y: np.ndarray, converted: np.ndarray, crs: object,
                   problems: v.Problems) -> None:
    """Flag points the transformation to WGS84 turned into inf/NaN (outside the
    source CRS's domain), and set them to NaN so no later step sees infinities."""
    failed = converted & ~(np.isfinite(x) & np.isfinite(y))
    if failed.any():
        name = getattr(crs, "name", str(crs))
        problems.add(failed, "range", f"cannot be converted from {name} to longitude/latitude "
                     "(outside the area of that CRS)")
        x[failed] = np.nan
        y[failed] = np.nan


# ------------------------------------------------------------------- attributes


def normalise_level(
    values: Iterable[object] | pd.Series, *, errors: Literal["raise", "coerce"] = "raise"
) -> pd.Series:
    """Normalise accreditation levels to ``national`` / ``provincial`` / ``municipal``.

    Accepts the English labels in any case and the Chinese 国家级 / 省级 / 市级 (also
    国家 / 省 / 市), with full-width characters and stray spaces. Missing values stay
    missing.

    Parameters
    ----------
    values : iterable or Series
        Level labels.
    errors : {"raise", "coerce"}
        ``"raise"``: an unknown label raises :class:`~incubloc.errors.InputError`
        listing the unknown and accepted labels. ``"coerce"``: unknown labels become NaN.

    Returns
    -------
    pandas.Series
        Named ``level``, with the index of ``values`` when it is a Series.

    Examples
    --------
    >>> normalise_level(["国家级", "Provincial", "市 ", None]).tolist()
    ['national', 'provincial', 'municipal', nan]
    """
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    out, unknown = v.map_labels(series, v.LEVEL_ALIASES)
    if unknown.any() and errors == "raise":
        labels = pd.unique(series[unknown].astype(object))
        raise InputError(
            f"unknown level labels {v.quote_list(labels)}: use one of {v.LEVEL_ACCEPTED}"
        )
    return out.rename("level")


def _labels(
    table: pd.DataFrame, col: object, aliases: dict[str, str], kind: str, label: str,
    accepted: str, problems: v.Problems, n: int,
) -> object:
    """Normalised labels of column ``col`` for the output frame; unknown ones reported."""
    if col is None:
        return pd.Series(np.nan, index=range(n), dtype=object)
    codes, lookup, unknown = v.map_label_codes(table[col], aliases)
    if unknown.any():
        raw = table[col][unknown].astype(object)
        problems.add(unknown, kind, [f"unknown {label} {r!r}" for r in raw])
        problems.summaries.append(
            f"unknown {label} labels: {v.quote_list(pd.unique(raw))} (accepted: {accepted})"
        )
    return _label_column(codes, lookup)


def _ids(src: _Source, id_col: str, problems: v.Problems) -> tuple[pd.Series, object | None]:
    n = len(src.table)
    col = _find(list(src.table.columns), id_col)
    if col is None:
        if id_col != "id":
            raise InputError(
                f"{src.where}: no id column {id_col!r} (columns found: "
                f"{_columns_text(src.table.columns)}): give the right name with id_col="
            )
        log.info("%s: no 'id' column; ids generated as row-<%s number>", src.where, src.unit)
        return pd.Series([f"row-{r}" for r in src.rows], dtype=object), None
    ids, missing = v.as_ids(src.table[col])
    if missing.any():
        log.info("%s: %d missing ids generated as row-<%s number>", src.where,
                 int(missing.sum()), src.unit)
        generated = pd.Series(np.nan, index=ids.index, dtype=object)
        generated[missing] = [f"row-{r}" for r in src.rows[missing]]
        ids = ids.where(~missing, generated)
    dup_all = ids.duplicated(keep=False).to_numpy() if v.any_duplicated(ids) else None
    if dup_all is not None:
        later = ids.duplicated(keep="first").to_numpy()
        first_row = dict(zip(ids[dup_all][::-1], src.rows[dup_all][::-1], strict=True))
        problems.add(later, "duplicate", [
            f"duplicate id {i!r} (first on {src.unit} {first_row[i]})" for i in ids[later]
        ])
        groups = pd.Series(src.rows[dup_all]).groupby(ids[dup_all].to_numpy(), sort=False)
        listed = [f"{i!r} ({src.unit}s {', '.join(map(str, r))})" for i, r in groups]
        problems.summaries.append(f"duplicate ids: {'; '.join(listed[:20])}"
                                  + (f" and {len(listed) - 20} more" if len(listed) > 20 else ""))
    assert len(ids) == n
    return ids.reset_index(drop=True), col


def _numbers(table: pd.DataFrame, col: object, name: str, problems: v.Problems,
             n: int) -> np.ndarray:
    if col is None:
        return np.full(n, np.nan)
    values, bad = v.parse_numbers(table[col], strip=v.AREA_STRIP)
    problems.add(bad, "area", [f"{name} {r!r} is not a number" for r in table[col][bad]])
    negative = values < 0
    problems.add(negative, "area", [f"{name} {x:g} is negative" for x in values[negative]])
    return values


# ---------------------------------------------------------------------- readers


def read_incubators(
    source: str | os.PathLike | pd.DataFrame,
    *,
    coords: str = "wgs84",
    lon: str | None = None,
    lat: str | None = None,
    encoding: str | None = None,
    id_col: str = "id",
    layer: str | None = None,
    crs: object = None,
    errors: Literal["raise", "report"] = "raise",
    sheet: str | int | None = None,
) -> gpd.GeoDataFrame:
    """Read and validate an incubator table as points in EPSG:4326.

    Parameters
    ----------
    source : path or DataFrame
        CSV/TSV or spreadsheet (.xlsx, .xls, .ods; see ``sheet``) with longitude/latitude
        columns; GeoJSON, GeoPackage (see ``layer``) or Shapefile; GeoParquet or Parquet
        with lon/lat columns (``.parquet``, needs pyarrow); a DataFrame with lon/lat
        columns or a GeoDataFrame. Chinese column names are recognised
        (:data:`COLUMN_ALIASES`). Large plain CSV files are read with Arrow when pyarrow
        is installed (same result).
    coords : {"wgs84", "gcj02", "bd09"}
        System of the longitude/latitude (CSV columns, or a vector file in a
        geographic CRS): GCJ-02 for AMap/Tencent, BD-09 for Baidu. Converted to WGS84.
    lon, lat : str, optional
        Names of the coordinate columns. Default: detected among
        lon/lng/long/longitude/x/经度 and lat/latitude/y/纬度, in any case.
    encoding : str, optional
        CSV encoding. Default: UTF-8 (with or without BOM), then GB18030 (covers GBK).
    id_col : str
        Column holding the incubator id. When the default ``"id"`` is absent, ids
        are generated as ``row-<n>`` from the ``row`` number.
    layer : str, optional
        Layer of a multi-layer file such as a GeoPackage.
    crs : CRS-like, optional
        CRS of a vector file that lacks one, or of projected x/y columns in a CSV.
        Overrides the CRS a file declares (logged).
    errors : {"raise", "report"}
        ``"raise"``: any bad row raises one :class:`~incubloc.errors.InputError`
        listing up to 20 of them. ``"report"``: bad rows are left out of the result,
        listed in ``gdf.attrs["rejected"]`` (columns ``row``, ``id``, ``problem``, and
        ``name``, ``source_row`` and ``geocode_*`` columns when filled in) and counted in a logged
        warning. (pandas cannot concatenate frames whose attrs
        hold DataFrames: ``gdf.attrs.pop("rejected")`` before ``pd.concat``.)
    sheet : str or int, optional
        Sheet of a spreadsheet, by name or 0-based index (default: the first). Title
        rows above the header are skipped; messages give the spreadsheet row numbers.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326 points, in source order with index 0..n-1, columns
        :data:`INCUBATOR_COLUMNS` (``id`` str; ``level`` national/provincial/municipal;
        ``opened`` Int64 year; areas float; ``declared_relation``/``declared_layout``
        normalised from ``relation``/``layout``; ``row`` the CSV line, the header being
        line 1, or the 1-based feature/row number), then every other input column
        unchanged (CSV lon/lat columns parsed to numbers in the declared system, so
        GCJ-02 values stay GCJ-02: the geometry is the WGS84 location; a name clashing
        with the columns above gets the suffix ``_input``), then
        ``geometry``. Polygon features are located at a representative point.

    Raises
    ------
    InputError
        Missing or undecodable file, bad rows (line numbers and fixes in the message),
        unknown ``id_col``.
    CoordinateError
        No lon/lat columns, no CRS, unknown ``coords``; bad rows when all problems are
        about coordinates.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"name": ["紫金"], "经度": ["118.78°"], "纬度": ["３２．０４"],
    ...                    "level": ["国家级"]})
    >>> gdf = read_incubators(df)
    >>> gdf[["id", "name", "level", "row"]].to_dict("records")
    [{'id': 'row-1', 'name': '紫金', 'level': 'national', 'row': 1}]
    >>> gdf.geometry.iloc[0].coords[0], gdf.crs.to_epsg()
    ((118.78, 32.04), 4326)
    """
    coords = _coord_key(coords)
    if errors not in ("raise", "report"):
        raise InputError(f"errors={errors!r}: use 'raise' or 'report'")
    text_columns = [id_col, *_ATTRIBUTES]
    text_columns += [lon] if lon else list(LON_NAMES)
    text_columns += [lat] if lat else list(LAT_NAMES)
    text_columns += [a for c in (id_col, *_ATTRIBUTES) for a in COLUMN_ALIASES.get(c, ())]
    src = _load(source, encoding=encoding, layer=layer, sheet=sheet,
                text_columns=[c for c in text_columns if c])
    table, n = src.table, len(src.table)
    if n == 0 and isinstance(source, (str, os.PathLike)):
        raise InputError(f"{src.where} holds no incubators (a header but no data rows): "
                         "check that this is the right file (or sheet)")
    problems = v.Problems()

    if src.geometry is None and n and len(table.columns):
        # Column by column, on the rows still blank so far: after the first filled
        # column only a few rows are left to look at.
        empty_row = np.ones(n, dtype=bool)
        for i in range(table.shape[1]):
            left = np.flatnonzero(empty_row)
            if not len(left):
                break
            empty_row[left] = v.blank(table.iloc[left, i])
        problems.add(empty_row, "empty", "empty row (every cell is blank)")
    if src.too_many is not None and src.too_many.any():
        problems.add(src.too_many, "fields",
                     f"more cells than the {len(table.columns)} columns of the header")
    parsed: dict[object, np.ndarray] = {}
    if src.geometry is None:
        x, y, parsed = _table_points(src, lon, lat, crs, coords, problems)
    else:
        x, y = _vector_points(src, crs, coords, problems)
    used: set[object] = set()  # input columns replaced by output columns
    for mask, kind, texts in v.coordinate_problems(x, y, coords=coords):
        problems.add(mask, kind, texts)
    if coords != "wgs84":
        ok = np.isfinite(x) & np.isfinite(y) & ~problems.bad(n)
        x, y = x.copy(), y.copy()
        x[ok], y[ok] = to_wgs84(x[ok], y[ok], coords)

    ids, id_source = _ids(src, id_col, problems)
    used.add(id_source)
    columns = list(table.columns)
    col = {name: _find(columns, name) for name in _ATTRIBUTES}
    for name in ("relation", "layout"):
        col[name] = col[name] if col[name] is not None else col[f"declared_{name}"]
    used.update(c for c in col.values() if c is not None)

    name = table[col["name"]] if col["name"] is not None else pd.Series(np.nan, index=range(n))
    level = _labels(table, col["level"], v.LEVEL_ALIASES, "level", "level",
                    v.LEVEL_ACCEPTED, problems, n)
    relation = _labels(table, col["relation"], v.RELATION_ALIASES, "relation",
                       "relation", v.RELATION_ACCEPTED, problems, n)
    layout = _labels(table, col["layout"], v.LAYOUT_ALIASES, "layout", "layout",
                     v.LAYOUT_ACCEPTED, problems, n)
    if col["opened"] is not None:
        opened, bad = v.parse_years(table[col["opened"]])
        problems.add(bad, "opened", [f"opened {r!r} is not a year"
                                     for r in table[col["opened"]][bad]])
    else:
        opened = pd.Series(pd.NA, index=range(n), dtype="Int64")

    out = pd.DataFrame({
        "id": _column(ids),
        "name": _column(name),
        "level": level,
        "opened": opened.array,
        "site_area_m2": _numbers(table, col["site_area_m2"], "site_area_m2", problems, n),
        "floor_area_m2": _numbers(table, col["floor_area_m2"], "floor_area_m2", problems, n),
        "declared_relation": relation,
        "declared_layout": layout,
        "row": np.asarray(src.rows, dtype="int64"),
    })
    out["opened"] = out["opened"].astype("Int64")
    extras = table.drop(columns=[c for c in used if c is not None])
    for col_name, values in parsed.items():
        extras[col_name] = values
    reserved = {*INCUBATOR_COLUMNS, "geometry"}
    extras.columns = [f"{c}_input" if c in reserved else c for c in extras.columns]
    out = pd.concat([out, extras], axis=1)
    # copy=False: out is ours (GeoDataFrame copies a DataFrame by default).
    gdf = gpd.GeoDataFrame(out, geometry=_points(x, y), crs=4326, copy=False)

    if problems:
        if errors == "raise":
            error = CoordinateError if problems.coordinate_only() else InputError
            exc = error(problems.message(src.where, src.unit, src.rows, out["id"]))
            exc.cli_message = problems.message(src.where, src.unit, src.rows, out["id"], cli=True)
            raise exc
        rejected = problems.table(src.rows, out["id"])
        log.warning("%s: %d of %d %ss rejected (see gdf.attrs['rejected'])",
                    src.where, len(rejected), n, src.unit)
        gdf = gdf.loc[~problems.bad(n)].reset_index(drop=True)
        x, y = x[~problems.bad(n)], y[~problems.bad(n)]
    _warn_shared_locations(gdf, src, xy=(x, y))
    if errors == "report":
        rejected = problems.table(src.rows, out["id"])
        # Keep what identifies a rejected row: its name and, for a list written by
        # incubloc geocode, the geocoder's verdict and message.
        keep = [c for c in out.columns
                if c in ("name", "source_row") or str(c).startswith("geocode_")]
        context = out[keep].set_index(pd.Index(np.asarray(src.rows, dtype="int64")))
        context = context.loc[:, context.notna().any()]
        if len(rejected) and len(context.columns):
            extra = context.loc[rejected["row"].to_numpy()].reset_index(drop=True)
            extra.columns = [c if c not in rejected else f"{c}_input" for c in extra.columns]
            rejected = pd.concat([rejected, extra], axis=1)
        gdf.attrs["rejected"] = rejected
    return gdf


def _points(x: np.ndarray, y: np.ndarray) -> object:
    """``geopandas.points_from_xy(x, y)`` with Python's cyclic garbage collector paused:
    a million new point objects would set off several full collections (a third of
    the time of making them), and points hold no references that could form a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return gpd.points_from_xy(x, y)
    finally:
        if enabled:
            gc.enable()


def _label_column(codes: np.ndarray, lookup: np.ndarray) -> object:
    """Labels ``lookup[codes]`` for an output column: as NumPy objects (pandas infers
    their text type); with pandas' Arrow text type, built by Arrow from the few
    distinct labels (the same column, without a Python string per row); when every
    label is missing, an object Series (the same object column, without a scan of a
    million NaNs)."""
    if not any(isinstance(x, str) for x in lookup):
        return pd.Series(lookup[codes], dtype=object)
    dtype = _text_dtype()
    if getattr(dtype, "storage", None) != "pyarrow":
        return lookup[codes]
    import pyarrow as pa

    labels = pa.array(lookup, type=pa.large_string(), from_pandas=True)
    return pd.array(labels.take(pa.array(codes)), dtype=dtype)


def _text_dtype() -> object:
    """The dtype pandas gives text columns (object before pandas 3, str from 3)."""
    return pd.Series([], dtype=str).dtype


def _column(values: pd.Series) -> object:
    """Values for a new output column: a string array as it is (no round trip through
    Python objects), anything else as a NumPy array (whose text pandas infers)."""
    if values.dtype != object and pd.api.types.is_string_dtype(values.dtype):
        return values.array
    return values.to_numpy(dtype=object) if values.dtype == object else values.to_numpy()


def _warn_shared_locations(gdf: gpd.GeoDataFrame, src: _Source,
                           xy: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Log incubators that share one location: kept (several incubators can sit in one
    building), but often a geocoder's fallback to a district centre. ``xy``: the
    coordinates the points were built from, when at hand (the same numbers)."""
    if len(gdf) < 2:
        return
    if xy is not None and len(xy[0]) == len(gdf) and np.isfinite(xy[0]).all() \
            and np.isfinite(xy[1]).all():
        rx, ry = np.round(xy[0], 7), np.round(xy[1], 7)
    else:
        coords = shapely.get_coordinates(gdf.geometry.values, include_z=False)
        rx, ry = np.round(coords[:, 0], 7), np.round(coords[:, 1], 7)
    if len(rx) != len(gdf):  # empty geometries: the general test below
        rx, ry = gdf.geometry.x.round(7).to_numpy(), gdf.geometry.y.round(7).to_numpy()
    if (np.abs(rx) <= 180).all() and (np.abs(ry) <= 90).all():
        # One integer per 1e-7° cell (exact for rounded degrees): a hash test of a
        # single int64 column is fast where one of two float columns is not.
        key = ((np.rint(rx * 1e7).astype(np.int64) + 1_800_000_001) * 2_000_000_003
               + np.rint(ry * 1e7).astype(np.int64) + 900_000_001)
        if not pd.Series(key).duplicated().any():
            return
    xy = pd.DataFrame({"x": rx, "y": ry})
    shared = xy.duplicated(keep=False).to_numpy()
    if not shared.any():
        return
    groups = pd.Series(gdf["row"].to_numpy()[shared]).groupby(
        [xy["x"].to_numpy()[shared], xy["y"].to_numpy()[shared]], sort=False
    )
    listed = ["/".join(map(str, g.tolist())) for _, g in groups]
    log.warning(
        "%s: %d incubators share %d locations (%ss %s%s); all are kept: check that they "
        "are not geocoded to a district or city centre",
        src.where, int(shared.sum()), len(listed), src.unit, "; ".join(listed[:10]),
        f" and {len(listed) - 10} more" if len(listed) > 10 else "",
    )


def _features(mask: np.ndarray, rows: np.ndarray, limit: int = 20) -> str:
    found = rows[mask].tolist()
    text = ", ".join(map(str, found[:limit]))
    return text + (f" and {len(found) - limit} more" if len(found) > limit else "")


_SITE_TYPES = {0: "Point", 3: "Polygon", 4: "MultiPoint", 6: "MultiPolygon"}


def _repair_polygons(values: np.ndarray, src: _Source) -> np.ndarray:
    invalid = ~shapely.is_valid(values)
    if not invalid.any():
        return values
    fixed = shapely.make_valid(values[invalid])
    # make_valid may return collections with slivers of lower dimension: keep the area.
    parts, index = shapely.get_parts(fixed, return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    repaired = np.full(len(fixed), None, dtype=object)
    if polygonal.any():
        grouped = pd.Series(parts[polygonal]).groupby(index[polygonal])
        for i, group in grouped:
            repaired[i] = shapely.union_all(group.to_numpy())
    rows = src.rows[invalid]
    degenerate = np.array([g is None for g in repaired])
    if degenerate.any():
        raise InputError(
            f"{src.where}: {src.unit}s {', '.join(map(str, rows[degenerate][:20]))} are "
            "polygons without area (self-collapsed rings): redraw or delete them"
        )
    log.warning("%s: repaired %d invalid polygons (%ss %s)", src.where, int(invalid.sum()),
                src.unit, _features(invalid, src.rows))
    values = values.copy()
    values[invalid] = repaired
    return values


def read_sites(
    source: str | os.PathLike | gpd.GeoDataFrame,
    *,
    layer: str | None = None,
    incubator_ids: Iterable[object] | None = None,
    coords: str = "wgs84",
    crs: object = None,
    id_col: str = "incubator_id",
) -> gpd.GeoDataFrame:
    """Read the sites of (multi-site) incubators: polygons or points in EPSG:4326.

    Parameters
    ----------
    source : path or GeoDataFrame
        GeoPackage (see ``layer``), GeoJSON or Shapefile with a column naming each
        site's incubator.
    layer : str, optional
        Layer of a multi-layer file.
    incubator_ids : iterable, optional
        The known incubator ids (e.g. ``read_incubators(...)["id"]``); a site that
        refers to another id is an error.
    coords : {"wgs84", "gcj02", "bd09"}
        System of a geographic file's coordinates (e.g. polygons drawn on AMap are
        GCJ-02); every vertex is converted to WGS84.
    crs : CRS-like, optional
        CRS of a file that lacks one (overrides a declared CRS, logged).
    id_col : str
        The incubator-id column; ``"id"`` reads an incubator polygon file as sites.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``incubator_id`` (str), ``site_id`` (str; generated as
        ``<incubator_id>-<k>``, k = 1, 2, … in file order, where absent), ``row``
        (1-based feature number), the other input columns, ``geometry``; index 0..n-1.
        Invalid polygons are repaired with :func:`shapely.make_valid` (logged with
        their feature numbers).

    Raises
    ------
    InputError
        Missing file or ``id_col`` column, missing ids, empty geometries, geometries
        that are neither polygons nor points, duplicate site ids, sites of unknown
        incubators; each message lists the feature numbers.
    CoordinateError
        No CRS, coordinates out of range, or outside China for GCJ-02/BD-09.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = gpd.GeoDataFrame({"incubator_id": [7, 7]},
    ...     geometry=[box(118.0, 32.0, 118.001, 32.001), box(118.01, 32.0, 118.011, 32.001)],
    ...     crs=4326)
    >>> read_sites(g, incubator_ids=["7"])[["incubator_id", "site_id", "row"]].to_dict("list")
    {'incubator_id': ['7', '7'], 'site_id': ['7-1', '7-2'], 'row': [1, 2]}
    """
    coords = _coord_key(coords)
    src = _load(source, encoding=None, layer=layer, tables=False, what="sites")
    assert src.geometry is not None
    geom = _vector_crs(src.geometry, crs, src.where)
    _check_geographic(geom, coords, src.where)
    table = src.table

    col = _find(list(table.columns), id_col)
    if col is None:
        raise InputError(
            f"{src.where}: sites need an {id_col!r} column naming each site's incubator "
            f"(columns found: {_columns_text(table.columns)}): add it, or name the column "
            "with id_col="
        )
    ids, missing = v.as_ids(table[col])
    if missing.any():
        raise InputError(
            f"{src.where}: {src.unit}s {_features(missing, src.rows)} have no {id_col}: "
            "fill it in with the id of the site's incubator"
        )
    values = np.asarray(geom.values)
    empty = shapely.is_missing(values) | shapely.is_empty(values)
    if empty.any():
        raise InputError(
            f"{src.where}: empty geometries in {src.unit}s {_features(empty, src.rows)}: "
            "give every site a polygon or point, or delete those features"
        )
    types = shapely.get_type_id(values)
    wrong = ~np.isin(types, list(_SITE_TYPES))
    if wrong.any():
        names = ", ".join(sorted(set(gpd.GeoSeries(values[wrong]).geom_type)))
        raise InputError(
            f"{src.where}: {src.unit}s {_features(wrong, src.rows)} are {names}: sites must "
            "be polygons or points"
        )
    values = _repair_polygons(values, src)
    geom = gpd.GeoSeries(values, crs=geom.crs).to_crs(4326)
    minx, miny, maxx, maxy = shapely.bounds(geom.values).T
    off = (minx < -180) | (maxx > 180) | (miny < -90) | (maxy > 90)
    if off.any():
        raise CoordinateError(
            f"{src.where}: coordinates out of range in {src.unit}s {_features(off, src.rows)}: "
            "the declared CRS is probably wrong; give the right one with crs="
        )
    if coords != "wgs84":
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        outside = ~in_china(cx, cy)
        if outside.any():
            raise CoordinateError(
                f"{src.where}: {src.unit}s {_features(outside, src.rows)} are outside China, "
                f"where {v.SYSTEM_NAMES[coords]} does not apply: check coords="
            )
        geom = gpd.GeoSeries(shapely.transform(
            geom.values, lambda xy: np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], coords))
        ), crs=4326)

    site_col = _find(list(table.columns), "site_id")
    k = ids.groupby(ids.to_numpy(), sort=False).cumcount() + 1
    generated = ids + "-" + k.astype(str)
    if site_col is None:
        site_ids = generated
    else:
        site_ids, no_site = v.as_ids(table[site_col])
        site_ids = site_ids.where(~no_site, generated)
    dup = site_ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise InputError(
            f"{src.where}: duplicate site_id {v.quote_list(pd.unique(site_ids[dup]))} in "
            f"{src.unit}s {_features(dup, src.rows)}: give each site a unique site_id"
        )
    if incubator_ids is not None:
        known = set(v.as_ids(pd.Series(list(incubator_ids)))[0].dropna())
        unknown = ~ids.isin(known).to_numpy()
        if unknown.any():
            raise InputError(
                f"{src.where}: {src.unit}s {_features(unknown, src.rows)} refer to unknown "
                f"incubators {v.quote_list(pd.unique(ids[unknown]))}: correct their "
                f"{id_col} or add those incubators to the incubator table"
            )

    out = pd.DataFrame({
        "incubator_id": ids.to_numpy(dtype=object),
        "site_id": site_ids.to_numpy(dtype=object),
        "row": np.asarray(src.rows, dtype="int64"),
    })
    extras = table.drop(columns=[c for c in (col, site_col) if c is not None])
    reserved = {"incubator_id", "site_id", "row", "geometry"}
    extras.columns = [f"{c}_input" if c in reserved else c for c in extras.columns]
    out = pd.concat([out, extras], axis=1)
    return gpd.GeoDataFrame(out, geometry=geom.values, crs=4326)
