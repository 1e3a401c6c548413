"""A font that renders Chinese place names in figures (no tofu boxes).

The figures label cities in Chinese (南京市, 镇江市 …). Matplotlib's default font,
DejaVu Sans, has no CJK glyphs, so incubloc depends on ``pylopdf-fonts-zh-cn``,
which ships Noto Sans SC (SIL Open Font License 1.1). When that package is absent
a system font whose character map covers the test string is used instead.
:func:`cjk_font` registers the file with Matplotlib's font manager and returns a
:class:`~matplotlib.font_manager.FontProperties`; :func:`font_family` gives the
family list (CJK first, DejaVu Sans as per-glyph fallback) for ``rcParams``.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["SAMPLE", "cjk_font", "cjk_font_path", "font_cache_dir", "font_family", "has_glyphs",
           "subset_font"]

log = logging.getLogger(__name__)

#: The place names of the Nanjing metropolitan circle; a usable font covers them all.
SAMPLE = "南京都市圈镇江扬州淮安芜湖马鞍山滁州宣城"

_FALLBACK = "DejaVu Sans"


def _bundled_path() -> Path | None:
    try:
        import pylopdf_fonts_zh_cn
    except ImportError:
        return None
    path = Path(pylopdf_fonts_zh_cn.sans_path())
    return path if path.exists() else None


@functools.lru_cache(maxsize=16)
def _cmap(path: str) -> frozenset[int]:
    """The code points of the font's Unicode character map (FreeType's choice, the
    fullest Unicode map, as fontTools' ``getBestCmap``). FreeType reads the map
    directly; fontTools would first parse the glyph names of the 65,000 glyphs of a
    CJK font's CFF table (a tenth of a second on every report)."""
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


def _covers(path: str | os.PathLike, text: str) -> bool:
    try:
        cmap = _cmap(str(path))
    except (OSError, RuntimeError) as exc:  # unreadable (FreeType: RuntimeError): no candidate
        log.debug("font %s is not readable, skipped: %s", path, exc)
        return False
    return all(ord(ch) in cmap for ch in text if not ch.isspace())


@functools.lru_cache(maxsize=1)
def cjk_font_path() -> Path | None:
    """Path of a font file covering :data:`SAMPLE`, or None when there is none.

    The bundled Noto Sans SC comes first; otherwise system fonts are searched.

    Examples
    --------
    >>> p = cjk_font_path()
    >>> p is None or has_glyphs(SAMPLE, path=p)
    True
    """
    path = _bundled_path()
    if path is not None and _covers(path, SAMPLE):
        return path
    from matplotlib import font_manager

    for cand in sorted(font_manager.findSystemFonts()):
        name = os.path.basename(cand).lower()
        # Collections (.ttc) are skipped: Matplotlib would use their first (often JP) face.
        if name.endswith((".otf", ".ttf")) and _covers(cand, SAMPLE):
            log.info("no bundled CJK font; using system font %s", cand)
            return Path(cand)
    log.warning(
        "no font with Chinese glyphs found: install pylopdf-fonts-zh-cn; "
        "Chinese labels will show as empty boxes"
    )
    return None


@functools.lru_cache(maxsize=1)
def cjk_font() -> Any:
    """Register the CJK font with Matplotlib and return its ``FontProperties``.

    Returns
    -------
    matplotlib.font_manager.FontProperties
        For the CJK font, or for DejaVu Sans when no CJK font exists.

    Examples
    --------
    >>> fp = cjk_font()
    >>> isinstance(fp.get_name(), str)
    True
    """
    from matplotlib import font_manager

    path = cjk_font_path()
    if path is None:
        return font_manager.FontProperties(family=_FALLBACK)
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    return font_manager.FontProperties(family=name)


def font_family() -> list[str]:
    """Font family list for Matplotlib: the CJK font, then DejaVu Sans per glyph.

    Examples
    --------
    >>> font_family()[-1]
    'DejaVu Sans'
    """
    fam = cjk_font().get_family()[0]
    return [fam, _FALLBACK] if fam != _FALLBACK else [_FALLBACK]


def has_glyphs(text: str, *, path: str | os.PathLike | None = None) -> bool:
    """Whether the font at ``path`` (default: the CJK font) has a glyph for every character.

    Whitespace is ignored. Uses the font's Unicode character map (FreeType).

    Examples
    --------
    >>> import matplotlib.font_manager as fm
    >>> has_glyphs("南京", path=fm.findfont("DejaVu Sans"))
    False
    >>> has_glyphs("Nanjing", path=fm.findfont("DejaVu Sans"))
    True
    """
    if path is None:
        path = cjk_font_path()
        if path is None:
            return False
    return _covers(path, text)


def subset_font(text: str, *, path: str | os.PathLike | None = None) -> bytes | None:
    """The CJK font cut down to the characters of ``text`` (WOFF2 if brotli is installed, else WOFF).

    Used to embed a small ``@font-face`` in the HTML report so that Chinese text
    renders in any browser with no network and no system CJK font. Subsetting an
    8 MB CJK font takes most of a second, so each subset is kept in
    :func:`font_cache_dir` and read back by the next run with the same characters.

    Examples
    --------
    >>> data = subset_font("南京")
    >>> data is None or len(data) < 200_000
    True
    """
    path = path or cjk_font_path()
    if path is None:
        return None
    chars = sorted({ch for ch in text if not ch.isspace()} | set(" 0123456789"))
    cached = _subset_cache_file(Path(path), "".join(chars))
    if cached is not None and cached.is_file():
        return cached.read_bytes()
    data = _subset(Path(path), chars)
    if cached is not None:
        try:  # written whole or not at all; a cache that cannot be written is no error
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, cached)
        except OSError as exc:
            log.debug("font subset not cached in %s: %s", cached.parent, exc)
    return data


def font_cache_dir() -> Path | None:
    """Where font subsets are kept between runs: ``$INCUBLOC_FONT_CACHE``, else
    ``<user cache dir>/incubloc/fonts``; None when ``INCUBLOC_FONT_CACHE=off``.

    A subset is a pure function of the font file, the characters and the fontTools
    version, all in its file name, so a cached subset has the same bytes as a new one.

    Examples
    --------
    >>> d = font_cache_dir()
    >>> d is None or d.name == "fonts" or "INCUBLOC_FONT_CACHE" in os.environ
    True
    """
    env = os.environ.get("INCUBLOC_FONT_CACHE")
    if env:
        return None if env.lower() in ("off", "0", "no", "false") else Path(env)
    try:
        import platformdirs
    except ImportError:  # pragma: no cover
        return Path.home() / ".cache" / "incubloc" / "fonts"
    return Path(platformdirs.user_cache_dir("incubloc")) / "fonts"


def _subset_cache_file(path: Path, chars: str) -> Path | None:
    folder = font_cache_dir()
    if folder is None:
        return None
    import hashlib

    import fontTools

    try:
        st = path.stat()
    except OSError:
        return None
    try:
        import brotli  # noqa: F401  (WOFF2 needs it)

        flavor = "woff2"
    except ImportError:
        flavor = "woff"
    key = "\n".join([str(path.resolve()), str(st.st_size), str(st.st_mtime_ns),
                     fontTools.version, flavor, chars])
    return folder / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.{flavor}"


def _subset(path: Path, chars: list[str]) -> bytes:
    import io

    from fontTools import subset

    options = subset.Options()
    options.name_IDs = ["*"]  # keep the copyright and OFL licence strings
    options.notdef_outline = True
    options.layout_features = ["*"]
    options.desubroutinize = True
    # fontTools logs every subsetting step at INFO; keep a user's log readable.
    quiet = logging.getLogger("fontTools")
    level = quiet.level
    quiet.setLevel(max(level, logging.WARNING))
    font = subset.load_font(str(path), options)
    try:
        subsetter = subset.Subsetter(options)
        subsetter.populate(text="".join(chars))
        subsetter.subset(font)
        try:
            import brotli  # noqa: F401  (WOFF2 needs it)

            font.flavor = "woff2"
        except ImportError:
            font.flavor = "woff"  # zlib-compressed, always available
        buf = io.BytesIO()
        font.save(buf)
        return buf.getvalue()
    finally:
        font.close()
        quiet.setLevel(level)
