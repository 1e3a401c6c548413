"""Private helpers for :mod:`incubloc.io`: parsing cell values, normalising labels and
collecting per-row problems into one readable error message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from incubloc.coords import in_china
from incubloc.vocabulary import LAYOUT, LEVEL, RELATION, label_key

SYSTEM_NAMES = {"wgs84": "WGS84", "gcj02": "GCJ-02", "bd09": "BD-09"}
LEVELS = LEVEL.labels
RELATIONS = RELATION.labels
LAYOUTS = LAYOUT.labels

# The vocabulary's tables themselves: keys are label_key() forms.
LEVEL_ALIASES = LEVEL.aliases
RELATION_ALIASES = RELATION.aliases
LAYOUT_ALIASES = LAYOUT.aliases

LEVEL_ACCEPTED = LEVEL.accepted
RELATION_ACCEPTED = RELATION.accepted
LAYOUT_ACCEPTED = LAYOUT.accepted

# Hints printed at the end of an error, one per kind of problem present.
HINTS = {
    "coord_missing": "fill in the missing coordinates",
    "coord_text": "write coordinates as decimal degrees (118.78, not 118°46'48\")",
    "zero": "give the real coordinates of rows at (0, 0), or delete them",
    "swapped": "swap the longitude and latitude columns, or name them with --lon/--lat "
    "(lon=, lat=)",
    "range": "check that the coordinates are degrees; for projected x/y give the CRS "
    "with crs= (e.g. crs=4549)",
    "china": "GCJ-02 and BD-09 exist only inside China: check --coords (coords=); "
    "data outside China is wgs84",
    "empty": "delete the empty rows",
    "fields": "quote cells that contain the separator, or delete the extra separators",
    "geometry": "give every feature a geometry or delete the feature",
    "duplicate": "give every incubator a unique id",
    "id": "fill in the missing ids",
    "level": "use an accepted level label or leave the cell empty",
    "relation": "use an accepted relation label or leave the cell empty",
    "layout": "use an accepted layout label or leave the cell empty",
    "opened": "write the opening year as a four-digit year (e.g. 2012)",
    "area": "write areas as numbers of square metres",
}
COORD_KINDS = frozenset({"empty", "coord_missing", "coord_text", "zero", "swapped", "range", "china", "geometry"})


def blank(values: pd.Series) -> np.ndarray:
    """Missing cells: NaN/None or text that is empty after stripping."""
    layout = _arrow_layout(values)
    if layout is not None:  # Arrow text: nulls and spaces found on the bytes
        offsets, data, valid = layout
        missing = ~valid
        maybe = np.flatnonzero(valid & _utf8_spacey(offsets, data, valid, ends=False))
        if len(maybe):
            text = values.iloc[maybe].astype(object).map(str).str.strip()
            missing[maybe] = (text == "").to_numpy()
        return missing
    missing = values.isna().to_numpy()
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        present = values[~missing] if missing.any() else values  # no copy when full
        maybe = _may_need_strip(present, ends=False)
        text = present[maybe].astype(object).map(str).str.strip()
        empty = np.zeros(len(present), dtype=bool)
        empty[maybe] = (text == "").to_numpy()
        missing = missing.copy()
        missing[~missing] = empty
    return missing


# First/last characters for which Python's str.strip() may remove something: ASCII
# controls and space, and the Unicode spaces (besides what str.isspace() reports).
_SPACES = frozenset("\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                    + "".join(chr(c) for c in range(0x2000, 0x200B)))
# Their UTF-8 (two or three bytes) as integers by length, and the bytes they can
# start (False) or end (True) with.
_SPACE_CODES = {w: np.array(sorted(int.from_bytes(c.encode(), "big") for c in _SPACES
                                   if len(c.encode()) == w), dtype=np.int64) for w in (2, 3)}
_SPACE_EDGE = {end: np.array(sorted({c.encode()[-1 if end else 0] for c in _SPACES}),
                             dtype=np.uint8) for end in (False, True)}


def _may_need_strip(values: pd.Series, *, ends: bool = True) -> np.ndarray:
    """Cells whose text may change under ``str.strip()`` (or that are not text): a
    cheap vectorised superset, so the exact Python test runs only on those cells.
    With ``ends=False`` only the first character is looked at (enough to find cells
    that strip to nothing)."""
    if not len(values):
        return np.zeros(0, dtype=bool)
    if values.dtype != object and not pd.api.types.is_string_dtype(values.dtype):
        return np.ones(len(values), dtype=bool)
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) != "string":
        return np.ones(len(values), dtype=bool)  # numbers or mixed cells: all exact
    arrow = _arrow_spacey(values, ends=ends)
    if arrow is not None:
        return arrow
    out = np.zeros(len(values), dtype=bool)
    for part in (values.str[:1], values.str[-1:]) if ends else (values.str[:1],):
        spacey = (part < "!") | part.isin(_SPACES) | part.str.isspace()
        out |= spacey.fillna(True).to_numpy(dtype=bool)
    return out


def _arrow_spacey(values: pd.Series, *, ends: bool) -> np.ndarray | None:
    """:func:`_may_need_strip` on an Arrow string column, read from its UTF-8 bytes.
    None for other columns."""
    layout = _arrow_layout(values)
    return None if layout is None else _utf8_spacey(*layout, ends=ends)


def _utf8_spacey(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray, *,
                 ends: bool) -> np.ndarray:
    """Null and empty cells, and cells whose first (and, with ``ends``, last)
    character is ASCII below "!" or one of :data:`_SPACES`, from the UTF-8 bytes."""
    start, stop = offsets[:-1], offsets[1:]
    length = stop - start
    out = ~valid | (length == 0)
    if not len(data):
        return out
    filled = valid & (length > 0)
    for at_end in (False, True) if ends else (False,):
        pos = np.where(filled, stop - 1 if at_end else start, 0)
        byte = data[pos]
        out |= filled & (byte < 0x21)
        # A space beyond ASCII: its lead byte (first character) or its last byte
        # (last character) is one of those of _SPACES; the few such cells are
        # compared in full.
        maybe = np.flatnonzero(filled & np.isin(byte, _SPACE_EDGE[at_end]))
        for width, codes in _SPACE_CODES.items():
            at = maybe[length[maybe] >= width]
            first = (stop[at] - width) if at_end else start[at]
            code = np.zeros(len(at), dtype=np.int64)
            for k in range(width):
                code = (code << 8) | data[first + k]
            out[at[np.isin(code, codes)]] = True
    return out


def _arrow_layout(values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`_utf8_layout` of an Arrow-backed string column; None for other columns."""
    if getattr(values.dtype, "storage", None) != "pyarrow" \
            or not pd.api.types.is_string_dtype(values.dtype):
        return None
    import pyarrow as pa

    return _utf8_layout(pa.array(values))


def _utf8_layout(arr) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (n + 1), UTF-8 bytes and validity (n) of a pyarrow string array or
    chunked array, as NumPy arrays over its buffers (the text is not copied)."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    _, off, data = arr.buffers()
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    if off is None:
        offsets = np.zeros(n + 1, dtype=np.int64)
    else:
        offsets = np.frombuffer(off, dtype=width)[arr.offset:arr.offset + n + 1]
        offsets = offsets.astype(np.int64, copy=False)
    text = np.zeros(0, dtype=np.uint8) if data is None else np.frombuffer(data, dtype=np.uint8)
    if arr.null_count:
        valid = ~arr.is_null().to_numpy(zero_copy_only=False).astype(bool)
    else:
        valid = np.ones(n, dtype=bool)
    return offsets, text, valid


def _byte_class(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray,
                member: np.ndarray) -> np.ndarray:
    """Cells (valid, possibly empty) whose every byte is in the 256-entry table
    ``member``: one pass over the bytes, and a running count only when some byte is
    outside."""
    span = data[offsets[0]:offsets[-1]]
    if not len(span):
        return valid.copy()
    # The bytes' range, and the few bytes inside it that are not members, settle the
    # common case (every byte a member) without a table lookup per byte.
    low, high = int(span.min()), int(span.max())
    holes = np.flatnonzero(~member[low:high + 1]) + low
    if len(holes) <= 2 and not any((span == h).any() for h in holes):
        return valid.copy()
    outside = ~member[span]
    count = np.concatenate(([0], np.cumsum(outside, dtype=np.int64)))
    rel = offsets - offsets[0]
    return valid & (count[rel[1:]] == count[rel[:-1]])


def _byte_table(chars: str) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[list(chars.encode("ascii"))] = True
    return table


_DECIMAL_BYTES = _byte_table("0123456789.-")
_DIGIT_BYTES = _byte_table("0123456789")


def _text(values: pd.Series) -> pd.Series:
    """Cells as NFKC-normalised, stripped text (full-width digits become ASCII)."""
    return values.astype(object).map(str).str.normalize("NFKC").str.strip()


def parse_numbers(values: pd.Series, *, strip: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Parse cells to float.

    Returns the values (NaN where missing or unparseable) and a mask of cells that are
    present but not numbers. ``strip`` is a regex removed from text before parsing.
    """
    return _fast_then_exact(values, lambda cells: _parse_numbers_exact(cells, strip=strip))


def _fast_then_exact(values: pd.Series, exact) -> tuple[np.ndarray, np.ndarray]:
    """Cells that ``pd.to_numeric`` reads as finite numbers as they are (the clean-up
    in ``exact`` leaves such text unchanged); every other cell through ``exact``, so
    values and problems are those of the cell-by-cell parser."""
    values = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values.dtype) or not len(values):
        return exact(values)
    plain = _plain_decimals(values)
    if plain is not None:  # Arrow text: plain decimals parsed there, the rest below
        mask, out = plain
        bad = np.zeros(len(values), dtype=bool)
        rest = np.flatnonzero(~mask)
        if len(rest):
            out[rest], bad[rest] = _to_numeric_then_exact(values.iloc[rest], exact)
        return out, bad
    return _to_numeric_then_exact(values, exact)


def _to_numeric_then_exact(values: pd.Series, exact) -> tuple[np.ndarray, np.ndarray]:
    values = values.reset_index(drop=True)
    raw = values.to_numpy(dtype=object)
    is_text = ~values.isna().to_numpy()
    if values.dtype == object and pd.api.types.infer_dtype(raw, skipna=True) != "string":
        is_text &= values.map(type).eq(str).to_numpy()  # numbers in text cells: exact
    out = np.full(len(values), np.nan)
    with np.errstate(invalid="ignore"):
        num = pd.to_numeric(pd.Series(raw[is_text]), errors="coerce").to_numpy(dtype=float)
    ok = np.zeros(len(values), dtype=bool)
    ok[is_text] = np.isfinite(num)
    out[ok] = num[np.isfinite(num)]
    bad = np.zeros(len(values), dtype=bool)
    rest = np.flatnonzero(~ok)
    if len(rest):
        out[rest], bad[rest] = exact(values.iloc[rest])
    return out, bad


def _arrow_text(values: pd.Series):
    """The cells as a pyarrow string array when they are all text (or missing): an
    Arrow string column as it is, an object column of Python strings converted once.
    None when pyarrow is missing or the cells are not all text."""
    dtype = values.dtype
    arrow_backed = (dtype != np.dtype(object) and pd.api.types.is_string_dtype(dtype)
                    and getattr(dtype, "storage", None) == "pyarrow")
    if not arrow_backed and not (
            dtype == np.dtype(object) and len(values)
            and pd.api.types.infer_dtype(values, skipna=True) == "string"):
        return None
    try:
        import pyarrow as pa
    except ImportError:
        return None
    try:
        if arrow_backed:
            return pa.array(values)
        return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


def _plain_decimals(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """For text cells: the mask of plain decimals (digits with an optional sign and
    decimal point, at most 15 digits) and their values, parsed by Arrow. Such
    numbers are exact integers scaled by a power of ten below 10^16, which both
    Arrow's and pandas' parsers round correctly, so the values are those
    ``pd.to_numeric`` gives. None when the cells are not all text or pyarrow is
    missing."""
    arr = _arrow_text(values)
    if arr is None:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    offsets, data, valid = _utf8_layout(arr)
    length = np.diff(offsets)
    mask = _byte_class(offsets, data, valid, _DECIMAL_BYTES) & (length > 0)
    long = mask & (length > 15)
    if long.any():  # digits = characters less the sign and the decimal point
        no_dot = _byte_class(offsets, data, valid, _DIGIT_BYTES | _byte_table("-"))[long]
        digits = length[long] - (data[offsets[:-1][long]] == ord("-")) - ~no_dot
        mask[np.flatnonzero(long)[digits > 15]] = False
    out = np.full(len(values), np.nan)
    try:  # Arrow refuses "-", "1-2", "1.2.3": then only the plain shape is taken
        parsed = _cast_where(arr, mask, pa.float64())
    except pa.ArrowInvalid:
        shape = pc.match_substring_regex(arr, r"^-?[0-9]+(\.[0-9]+)?$")
        mask &= pc.fill_null(shape, False).to_numpy(zero_copy_only=False).astype(bool)
        parsed = _cast_where(arr, mask, pa.float64())
    if parsed is None:
        return mask, out
    values_ = parsed.to_numpy(zero_copy_only=False)
    if mask.all():  # a writable copy: callers fill in cells
        return mask, np.array(values_, dtype=float)
    out[mask] = values_
    return mask, out


def _cast_where(arr, mask: np.ndarray, to):
    """The cells of ``arr`` where ``mask`` holds, cast by Arrow to ``to`` (None if none)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not mask.any():
        return None
    return pc.cast(arr if mask.all() else pc.filter(arr, pa.array(mask)), to)


def _plain_years(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """For text cells: the mask of plain four-digit years (ASCII ``dddd``, which the
    cell-by-cell parser leaves as they are) and their values, read from the bytes.
    None when the cells are not all text or pyarrow is missing."""
    arr = _arrow_text(values)
    if arr is None:
        return None
    import pyarrow as pa

    offsets, data, valid = _utf8_layout(arr)
    mask = _byte_class(offsets, data, valid, _DIGIT_BYTES) & (np.diff(offsets) == 4)
    years = np.zeros(len(values), dtype=np.int64)
    parsed = _cast_where(arr, mask, pa.int64())
    if parsed is not None:
        years[mask] = parsed.to_numpy(zero_copy_only=False)
    return mask, years


def _parse_numbers_exact(values: pd.Series, *, strip: str = "") -> tuple[np.ndarray, np.ndarray]:
    """:func:`parse_numbers` cell by cell (text clean-up, then parsing)."""
    values = pd.Series(values).reset_index(drop=True)
    out = np.full(len(values), np.nan)
    missing = blank(values)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        out = values.astype(float).to_numpy(copy=True)
        bad = ~missing & ~np.isfinite(out)
        out[bad] = np.nan
        return out, bad
    present = values[~missing]
    text = _text(present)
    if strip:
        text = text.str.replace(strip, "", regex=True)
    num = pd.to_numeric(text, errors="coerce").astype(float).to_numpy(copy=True)
    num[~np.isfinite(num)] = np.nan
    out[~missing] = num
    bad = np.zeros(len(values), dtype=bool)
    bad[~missing] = np.isnan(num)
    return out, bad


# Degree signs (and look-alikes), 度, spaces, and an east/north hemisphere marker in
# front (E, N, 东经, 北纬) or behind (E, N) the number. West/south markers are kept,
# so such values are reported rather than silently put in the wrong hemisphere.
COORD_STRIP = r"[°˚º度\s]|^(?:[EeNn]|东经|北纬)|(?<=[\d.°˚º度])[EeNn]$"
_DMS = (r"^(?P<d>\d+(?:\.\d+)?)[°˚º度:]\s*(?P<m>\d+(?:\.\d+)?)['′’分:]?\s*"
        r"(?:(?P<s>\d+(?:\.\d+)?)(?:[\"″”]|''|′′|秒)?)?$")
AREA_STRIP = r"[,\s]|(m2|平方米|平米)$"


def parse_coordinates(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Parse longitude or latitude cells to decimal degrees.

    Besides decimal numbers (also full-width, with the ideographic full stop 。 as
    decimal point), accepts degree signs, 度, hemisphere markers E/N/东经/北纬 and
    degrees-minutes-seconds such as ``118°46'48"`` or ``118度46分48秒``. Returns the
    values and the mask of cells that are present but not coordinates (see
    :func:`parse_numbers`).

    Examples
    --------
    >>> parse_coordinates(pd.Series(["东经118.78°", "118度46分48秒", "118。78", "W118.78"]))[0]
    array([118.78, 118.78, 118.78,    nan])
    """
    return _fast_then_exact(values, _parse_coordinates_exact)


def _parse_coordinates_exact(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """:func:`parse_coordinates` cell by cell."""
    values = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return parse_numbers(values)
    missing = blank(values)
    text = _text(values[~missing]).str.replace("。", ".", regex=False)
    text = text.str.replace(r"^(?:东经|北纬|[EeNn])\s*", "", regex=True)
    text = text.str.replace(r"\s*[EeNn]$", "", regex=True)
    dms = text.str.extract(_DMS)
    is_dms = dms["m"].notna().to_numpy()
    cells = pd.Series(np.asarray(values, dtype=object), copy=True)
    cells[~missing] = text.to_numpy(dtype=object)
    out, bad = parse_numbers(cells, strip=COORD_STRIP)
    if is_dms.any():
        d, m = dms["d"].astype(float).to_numpy(), dms["m"].astype(float).to_numpy()
        sec = dms["s"].astype(float).fillna(0.0).to_numpy()
        ok = is_dms & (m < 60) & (sec < 60)
        pos = np.flatnonzero(~missing)[ok]
        out[pos] = (d + m / 60 + sec / 3600)[ok]
        bad[pos] = False
    return out, bad


def parse_years(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse opening years ("2012", 2012.0, "2012年", "2012-05-01") to Int64."""
    values = pd.Series(values).reset_index(drop=True)
    missing = blank(values)
    years = pd.Series(pd.NA, index=values.index, dtype="Int64")
    bad = np.zeros(len(values), dtype=bool)
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        num = values.astype(float)
        ok = ~missing & np.isfinite(num.to_numpy()) & (num.to_numpy() % 1 == 0)
        years[ok] = num[ok].astype("int64")
        bad = ~missing & ~ok
        return years, bad
    year = np.zeros(len(values), dtype=np.int64)
    has = np.zeros(len(values), dtype=bool)
    rest = ~missing
    plain = _plain_years(values)
    if plain is not None:  # plain "2012" parsed at once, the rest cell by cell
        mask, found_years = plain
        year[mask], has[mask] = found_years[mask], True
        rest &= ~mask
    idx = np.flatnonzero(rest)
    if len(idx):
        text = _text(values.iloc[idx])
        found = text.str.extract(r"^(\d{4})(?:\.0+)?(?:[年/\-.].*)?$", expand=False)
        ok = found.notna().to_numpy()
        year[idx[ok]] = found[ok].astype("int64").to_numpy()
        has[idx[ok]] = True
        bad[idx] = ~ok
    return pd.Series(pd.arrays.IntegerArray(year, ~has), index=values.index), bad


def map_labels(values: pd.Series, aliases: dict[str, str]) -> tuple[pd.Series, np.ndarray]:
    """Map labels through ``aliases``; missing stays NaN; returns (labels, unknown mask)."""
    values = pd.Series(values)
    codes, lookup, unknown = map_label_codes(values, aliases)
    return pd.Series(lookup[codes], index=values.index, dtype=object), unknown


def map_label_codes(values: pd.Series, aliases: dict[str, str]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`map_labels` as codes: ``lookup[codes]`` are the labels (NaN where the
    cell is blank, None where its label is unknown); also the unknown mask. Each
    distinct cell is looked up once."""
    codes, uniques = pd.factorize(pd.Series(values))
    lookup = np.full(len(uniques) + 1, np.nan, dtype=object)  # last: missing cells
    for i, value in enumerate(uniques):
        if str(value).strip():
            lookup[i] = aliases.get(label_key(value))
    codes = np.where(codes < 0, len(uniques), codes)
    unknown = np.array([x is None for x in lookup], dtype=bool)[codes]
    return codes, lookup, unknown


def as_ids(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Ids as stripped strings (integral floats lose their ".0"); returns (ids, missing)."""
    values = pd.Series(values).reset_index(drop=True)
    missing = blank(values)
    if pd.api.types.is_float_dtype(values.dtype):
        num = values.to_numpy(dtype=float)
        if np.all(np.isnan(num) | (num % 1 == 0)):
            values = values.astype("Int64")
    present = np.flatnonzero(~missing)
    fix = _may_need_strip(values.iloc[present] if len(present) < len(values) else values)
    if values.dtype != object and pd.api.types.is_string_dtype(values.dtype) \
            and not missing.any() and not fix.any():
        return values, missing  # clean text: kept in its (Arrow) string array
    text = values.astype(object).where(~missing, "")
    if fix.any():  # only cells with spaces at the ends or non-text are rewritten
        cells = text.iloc[present[fix]]
        text.iloc[present[fix]] = cells.map(str).str.strip().to_numpy(dtype=object)
    return text.where(~missing, None).astype(object), missing


def any_duplicated(values: pd.Series) -> bool:
    """Whether any value occurs twice (missing values count as equal), by one hash
    pass of Arrow for an Arrow string column."""
    if getattr(values.dtype, "storage", None) == "pyarrow" \
            and pd.api.types.is_string_dtype(values.dtype):
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(values)
        if len(arr) > 1 and not arr.null_count:
            # Ids in strictly increasing (byte) order are distinct: one comparison
            # of neighbours instead of a hash table.
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if pc.all(pc.less(arr[:-1], arr[1:])).as_py():
                return False
        return len(pc.unique(arr)) < len(arr)
    return bool(values.duplicated().any())


def coordinate_problems(
    lon: np.ndarray, lat: np.ndarray, *, coords: str
) -> list[tuple[np.ndarray, str, list[str]]]:
    """Swapped, out-of-range and (for GCJ-02/BD-09) outside-China coordinates.

    Only finite pairs are checked; each row gets at most one of these problems.
    """
    finite = np.isfinite(lon) & np.isfinite(lat)
    # (0, 0) is what many exports write for "no location": never a real incubator.
    zero = finite & (lon == 0) & (lat == 0)
    finite = finite & ~zero
    swapped = finite & (np.abs(lon) <= 90) & (lat >= 73) & (lat <= 136)
    out_of_range = finite & ~swapped & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    found: list[tuple[np.ndarray, str, list[str]]] = []
    if zero.any():
        found.append((zero, "zero", "lon 0, lat 0: a placeholder for a missing location"))
    if swapped.any():
        found.append((swapped, "swapped", [
            f"lon {x:.10g}, lat {y:.10g}: swapped? (the longitude column seems to hold latitudes)"
            for x, y in zip(lon[swapped], lat[swapped], strict=True)
        ]))
    if out_of_range.any():
        found.append((out_of_range, "range", [
            f"lon {x:.10g}, lat {y:.10g} is out of range (lon -180..180, lat -90..90)"
            for x, y in zip(lon[out_of_range], lat[out_of_range], strict=True)
        ]))
    if coords != "wgs84":
        outside = finite & ~swapped & ~out_of_range & ~in_china(lon, lat)
        if outside.any():
            found.append((outside, "china", [
                f"lon {x:.10g}, lat {y:.10g} is outside China, where {SYSTEM_NAMES[coords]} does not apply"
                for x, y in zip(lon[outside], lat[outside], strict=True)
            ]))
    return found


def quote_list(values: Iterable[object], limit: int = 20) -> str:
    values = list(values)
    text = ", ".join(repr(v) for v in values[:limit])
    return text + (f" and {len(values) - limit} more" if len(values) > limit else "")


@dataclass
class Problems:
    """Problems found in rows, addressed by position (0-based) in the source."""

    positions: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)

    def add(self, mask: np.ndarray, kind: str, texts: str | Sequence[str]) -> None:
        pos = np.flatnonzero(mask).tolist()
        if isinstance(texts, str):
            texts = [texts] * len(pos)
        self.positions += pos
        self.kinds += [kind] * len(pos)
        self.texts += list(texts)

    def __bool__(self) -> bool:
        return bool(self.positions)

    def bad(self, n: int) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[self.positions] = True
        return mask

    def table(self, rows: np.ndarray, ids: Sequence[object]) -> pd.DataFrame:
        """One line per bad row: row, id, problem (problems joined with "; ")."""
        if not self.positions:
            return pd.DataFrame({"row": pd.Series(dtype="int64"),
                                 "id": pd.Series(dtype=object),
                                 "problem": pd.Series(dtype=object)})
        df = pd.DataFrame({"pos": self.positions, "problem": self.texts})
        df = df.groupby("pos", sort=True)["problem"].agg("; ".join).reset_index()
        pos = df["pos"].to_numpy()
        return pd.DataFrame({
            "row": np.asarray(rows)[pos].astype("int64"),
            "id": np.asarray(ids, dtype=object)[pos],
            "problem": df["problem"].astype(object),
        })

    def message(self, where: str, unit: str, rows: np.ndarray, ids: Sequence[object],
                *, limit: int = 20, cli: bool = False) -> str:
        """The error text; ``cli=True`` names the command-line option (--skip-bad-rows)
        instead of the Python argument (errors="report")."""
        table = self.table(rows, ids)
        n = len(table)
        head = f"{where}: {n} {unit}{'s' if n != 1 else ''} with problems"
        if unit == "line":
            head += " (the header is line 1)"
        lines = [head + ":"]
        for r, i, p in table.head(limit).itertuples(index=False):
            lines.append(f"  {unit} {r}" + (f" (id {i!r})" if i is not None else "") + f": {p}")
        if n > limit:
            lines.append(f"  ... and {n - limit} more {unit}s")
        lines += self.summaries
        hints = [HINTS[k] for k in dict.fromkeys(self.kinds) if k in HINTS]
        if cli:
            hints.append("or pass --skip-bad-rows (or set [input] skip_bad_rows = true) to "
                         "keep the good rows and list the bad ones")
        else:
            hints.append('or pass errors="report" to keep the good rows and list the bad ones '
                         'in gdf.attrs["rejected"]')
        lines.append("To fix: " + "; ".join(hints) + ".")
        return "\n".join(lines)

    def coordinate_only(self) -> bool:
        return set(self.kinds) <= COORD_KINDS
