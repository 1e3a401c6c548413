"""The self-contained HTML report of a study.

:func:`build_report` runs the study (:func:`incubloc.workflow.run_study`), writes its
files (:func:`incubloc.workflow.write_study`), draws every figure of
:data:`incubloc.shells.plot.FIGURES` as ``figures/<name>.png`` (and ``.svg`` on request, see
``[report] svg``) and writes
``report.html``: figures embedded as base64 PNG, CSS inline, the Chinese glyphs it
uses embedded as a subset of the bundled font, so the page opens from disk with no
network. :func:`render_html` builds the page from a study and its figures; every
sentence with a number is computed from the study's tables and tests.

Figures and SVG files are deterministic (no dates; fixed SVG id salt), so a rerun
with the written ``config.toml`` gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from incubloc.study_fields import field as study_field
from incubloc.study_fields import skipped

__all__ = [
    "RenderedFigure", "build_report", "describe_test", "factor_findings", "factors_section_html",
    "fmt", "fmt_p", "render_factors_html", "render_html", "save_figure", "start_figures",
    "write_figures",
]

log = logging.getLogger(__name__)

_MINUS = "\u2212"


# ------------------------------------------------------------------ figures
@dataclass
class RenderedFigure:
    """A figure drawn for the report, or the reason it was skipped.

    Attributes
    ----------
    name : str
        File stem (``figures/<name>.png``).
    section : str
        Report section (``region``, ``rings``, ``relation``, ``layout``, ``statistics``).
    caption : str
    png : bytes or None
        The PNG, embedded in the HTML; None when skipped.
    files : list of Path
        Files written (PNG and SVG).
    note : str or None
        Why the figure is missing.
    """

    name: str
    section: str
    caption: str
    png: bytes | None = None
    files: list[Path] = field(default_factory=list)
    note: str | None = None


#: Figures with at most this many drawn paths and no raster image are "small vector"
#: figures: their SVG stays small (charts, point maps). Maps with rasters or
#: thousands of polygons are written as PNG only unless ``svg = "all"``.
SVG_MAX_PATHS = 5000
SVG_POLICIES = ("none", "small", "all")


def svg_is_small(fig: Any) -> bool:
    """True when ``fig`` holds no raster image and at most :data:`SVG_MAX_PATHS` paths.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(); ax = fig.add_subplot(); _ = ax.plot([0, 1])
    >>> svg_is_small(fig)
    True
    >>> _ = ax.imshow([[0, 1], [1, 0]]); svg_is_small(fig)
    False
    """
    from matplotlib.collections import Collection
    from matplotlib.image import AxesImage

    if fig.findobj(AxesImage):
        return False
    paths = sum(len(c.get_paths()) for c in fig.findobj(Collection))
    return paths <= SVG_MAX_PATHS


def save_figure(fig: Any, stem: str | os.PathLike, *, dpi: int = 150,
                svg: bool = True) -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` and (with ``svg``) ``<stem>.svg``, with
    reproducible bytes.

    The SVG has no date and fixed element ids (``svg.hashsalt``); the PNG has no time
    stamp. Both are written atomically.

    Examples
    --------
    >>> import tempfile, os
    >>> from matplotlib.figure import Figure
    >>> fig = Figure(figsize=(2, 2)); _ = fig.add_subplot().plot([0, 1])
    >>> d = tempfile.mkdtemp()
    >>> a = [p.read_bytes() for p in save_figure(fig, os.path.join(d, "a"))]
    >>> b = [p.read_bytes() for p in save_figure(fig, os.path.join(d, "b"))]
    >>> a == b
    True
    """
    from incubloc.io import atomic_path
    from incubloc.shells.plot import style

    stem = Path(stem)
    out = []
    # PNG of a constrained-layout figure: _save_png. Other figures go through Pillow,
    # at zlib level 3 instead of 6: the same pixels, a third less time to encode.
    formats = (("png", {"Software": None}, {"pil_kwargs": {"compress_level": 3}}),
               ("svg", {"Date": None}, {}))
    with style():
        for fmt, meta, extra in formats[: 2 if svg else 1]:
            path = stem.with_name(f"{stem.name}.{fmt}")
            with atomic_path(path) as tmp:
                if fmt == "png":
                    _save_png(fig, tmp, dpi=dpi, metadata=meta, **extra)
                else:
                    fig.savefig(tmp, format=fmt, dpi=dpi, metadata=meta, bbox_inches="tight",
                                facecolor="white", **extra)
            out.append(path)
    return out


def _save_png(fig: Any, path: Any, *, dpi: int, **kwargs: Any) -> None:
    """``fig.savefig(path, bbox_inches="tight")`` as a PNG, the same pixels, laid out once.

    Matplotlib's tight save of a constrained-layout figure draws it twice: once,
    without rendering, to lay it out and find the bounding box, then for real. Here
    the layout runs alone at the saving resolution, the box is measured, and the
    figure is drawn once with the layout engine off (it is put back after); the
    pixels are written by :func:`png_bytes`.
    """
    import matplotlib as mpl
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    def tight_save() -> None:  # Matplotlib's own way
        fig.savefig(path, format="png", dpi=dpi, bbox_inches="tight", facecolor="white",
                    **kwargs)

    engine = fig.get_layout_engine()
    pad = mpl.rcParams["savefig.pad_inches"]
    if not isinstance(engine, ConstrainedLayoutEngine) or pad == "layout":
        tight_save()
        return
    old_dpi, old_canvas = fig.dpi, fig.canvas
    try:
        fig.set_dpi(dpi)  # text is measured at the resolution it is drawn at
        renderer = FigureCanvasAgg(fig).get_renderer()
        engine.execute(fig)
        box = fig.get_tightbbox(renderer).padded(pad)
        fig.set_layout_engine(None)
        raw = _Pixels()
        fig.savefig(raw, format="rgba", dpi=dpi, bbox_inches=box, facecolor="white")
    finally:
        fig.set_layout_engine(engine)
        fig.set_canvas(old_canvas)
        fig.set_dpi(old_dpi)
    width, height = int(box.width * dpi), int(box.height * dpi)  # as Agg sizes its canvas
    pixels = raw.array()
    if pixels.size != width * height * 4:  # pragma: no cover - a Matplotlib that sizes otherwise
        tight_save()
        return
    Path(path).write_bytes(png_bytes(pixels.reshape(height, width, 4), dpi=dpi))


class _Pixels(io.RawIOBase):
    """Where Matplotlib writes a figure's raw RGBA pixels: a binary file that keeps
    the renderer's buffer it is given (a view) instead of copying it."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[memoryview] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        self._parts.append(view)
        return view.nbytes

    def array(self) -> np.ndarray:
        """The bytes written, as one flat uint8 array."""
        if len(self._parts) == 1:
            return np.frombuffer(self._parts[0], dtype=np.uint8)
        return np.frombuffer(b"".join(self._parts), dtype=np.uint8)


def png_bytes(rgba: np.ndarray, *, dpi: float = 150, level: int = 3) -> bytes:
    """A PNG file of an 8-bit RGBA image (height × width × 4), rows unfiltered.

    Pillow tries five filters on every row and keeps the best, which takes longer
    than compressing: for the report's figures (flat colours, sharp edges) deflate
    alone at level 3 is about twice as fast and gives files a little smaller. The
    resolution is recorded (``pHYs``) as Pillow records it.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> a = np.zeros((2, 3, 4), dtype=np.uint8); a[..., 0] = [[0, 128, 255], [1, 2, 3]]
    >>> back = np.asarray(Image.open(io.BytesIO(png_bytes(a))))
    >>> bool((back == a).all())
    True
    """
    import struct
    import zlib

    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"png_bytes takes an 8-bit RGBA image, not {rgba.dtype} {rgba.shape}")
    height, width = rgba.shape[:2]
    rows = np.zeros((height, 1 + 4 * width), dtype=np.uint8)  # filter byte 0: none
    rows[:, 1:] = rgba.reshape(height, 4 * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    per_metre = int(dpi / 0.0254 + 0.5)
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)),
        chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
        chunk(b"IDAT", zlib.compress(rows, level)),  # the array's own buffer, not a copy
        chunk(b"IEND", b""),
    ))


def _draw_one(study: Any, name: str, figdir: Path, svg: str) -> RenderedFigure:
    """Draw and save one figure of :data:`incubloc.shells.plot.FIGURES` (also in a worker)."""
    from incubloc.shells.plot import FIGURES, NoData

    spec = next(s for s in FIGURES if s.name == name)
    rf = RenderedFigure(spec.name, spec.section, spec.caption)
    try:
        fig = spec.func(study)
    except NoData as exc:
        rf.note = f"not drawn: {exc}"
        log.info("figure %s skipped: %s", spec.name, exc)
    else:
        with_svg = svg == "all" or (svg == "small" and svg_is_small(fig))
        rf.files = save_figure(fig, figdir / spec.name, svg=with_svg)
        rf.png = rf.files[0].read_bytes()
    return rf


def _draw_chunk(study: Any, names: list[str], figdir: Path, svg: str) -> list[RenderedFigure]:
    return [_draw_one(study, name, figdir, svg) for name in names]


def _figure_workers(workers: int, n_figures: int) -> int:
    import sys

    if "qgis.core" in sys.modules:
        return 1  # inside QGIS: no forking a Qt application, no spawning QGIS again
    if workers > 0:
        return min(workers, n_figures)
    from incubloc.processes import available_cores

    return max(1, min(available_cores(), n_figures, 4))


def write_figures(study: Any, figdir: str | os.PathLike, *, svg: str = "small",
                  workers: int = 1) -> dict[str, RenderedFigure]:
    """Draw every figure of :data:`incubloc.shells.plot.FIGURES` into ``figdir``.

    A figure whose inputs are missing, or that fails, is skipped with a note; the
    others are still drawn.

    Parameters
    ----------
    svg : {"small", "none", "all"}
        Which figures are also written as SVG: ``"small"`` those without raster
        images and with at most :data:`SVG_MAX_PATHS` paths (:func:`svg_is_small`),
        ``"none"`` none (PNG only), ``"all"`` every figure.
    workers : int
        Processes drawing figures: 1 draws in this process, 0 uses the available
        cores (at most 4). Every figure is drawn by the same code whatever the
        number of workers, so the files are the same. Inside QGIS figures are always
        drawn in the QGIS process.

    Returns
    -------
    dict of str to RenderedFigure
        In report order.
    """
    return start_figures(study, figdir, svg=svg, workers=workers)()


def start_figures(study: Any, figdir: str | os.PathLike, *, svg: str = "small",
                  workers: int = 1, skip: Mapping[str, RenderedFigure] | None = None,
                  ) -> Callable[[], dict[str, RenderedFigure]]:
    """Start :func:`write_figures`; the returned function waits and returns its result.

    With worker processes the figures are drawn while the caller goes on (writing
    tables, the interactive map); the processes are forked here, in the caller's
    thread. Call the returned function exactly once, also when the caller's own
    work fails, so that the processes are reaped. Figures in ``skip`` (already
    drawn, e.g. by :func:`figure_extras`) are returned as they are.

    Examples
    --------
    >>> import tempfile
    >>> finish = start_figures(object(), tempfile.mkdtemp(), workers=1)
    >>> all(rf.note for rf in finish().values())  # nothing to draw from
    True
    """
    from incubloc.shells.plot import FIGURES

    if svg not in SVG_POLICIES:
        raise ValueError(f"svg={svg!r}: use one of {', '.join(SVG_POLICIES)}")
    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    names = [spec.name for spec in FIGURES]
    skip = dict(skip or {})
    todo = [name for name in names if name not in skip]
    n = _figure_workers(workers, len(todo)) if todo else 1
    pending: Callable[[], dict[str, RenderedFigure]] = dict
    if n > 1:
        try:
            pending = _start_parallel(study, todo, figdir, svg, n)
        except (OSError, RuntimeError, ValueError) as exc:  # no processes (sandbox)
            log.info("figures drawn in this process (%s: %s)", type(exc).__name__, exc)

    def finish_figures() -> dict[str, RenderedFigure]:
        try:
            drawn = pending()
        except Exception as exc:  # a worker failed: the rest in this process, in turn
            log.info("figures drawn in this process (%s: %s)", type(exc).__name__, exc)
            drawn = {}
        drawn.update(skip)
        for name in names:
            if name not in drawn:
                drawn[name] = _draw_or_note(name, figdir, svg, study)
        return {name: drawn[name] for name in names}

    return finish_figures


def _draw_or_note(name: str, figdir: Path, svg: str, study: Any) -> RenderedFigure:
    """:func:`_draw_one`, or the figure with a note when drawing fails: one broken
    figure must not lose the report."""
    from incubloc.shells.plot import FIGURES

    try:
        return _draw_one(study, name, figdir, svg)
    except Exception as exc:
        spec = next(s for s in FIGURES if s.name == name)
        rf = RenderedFigure(spec.name, spec.section, spec.caption)
        rf.note = f"not drawn: {type(exc).__name__}: {exc}"
        log.warning("figure %s failed: %s", spec.name, exc, exc_info=True)
        return rf


def figure_extras(figdir: str | os.PathLike, *, svg: str = "none") -> list[Any]:
    """The figures of :data:`incubloc.shells.plot.FIGURES` as
    :class:`incubloc.workflow.Extra` work for :func:`incubloc.workflow.run_study`:
    each is drawn into ``figdir`` as soon as the steps it shows are done. Values:
    :class:`RenderedFigure`.

    Examples
    --------
    >>> import tempfile
    >>> extras = figure_extras(tempfile.mkdtemp())
    >>> [e.needs for e in extras if e.name == "ripley"]
    [('classify', 'point pattern')]
    """
    import functools

    from incubloc.shells.plot import FIGURES
    from incubloc.workflow import Extra

    if svg not in SVG_POLICIES:
        raise ValueError(f"svg={svg!r}: use one of {', '.join(SVG_POLICIES)}")
    figdir = Path(figdir)
    return [Extra(spec.name, spec.needs, functools.partial(_draw_or_note, spec.name, figdir, svg))
            for spec in FIGURES]


# The study handed to forked figure workers (inherited, not pickled).
_FORKED_STUDY: Any = None


def _draw_chunk_forked(names: list[str], figdir: Path, svg: str) -> list[RenderedFigure]:
    return _draw_chunk(_FORKED_STUDY, names, figdir, svg)


def _start_parallel(study: Any, names: list[str], figdir: Path, svg: str,
                    n: int) -> Callable[[], dict[str, RenderedFigure]]:
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    global _FORKED_STUDY
    # One task per figure: a worker that is done takes the next, so the slow maps
    # do not pile up on one worker. On Linux the workers are forked (no re-import,
    # the study is inherited); elsewhere spawned.
    chunks = [[name] for name in names]
    fork = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
    if fork:  # load matplotlib, its Agg renderer and the CJK font once, before forking
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401

        from incubloc._fonts import font_family

        font_family()
    ctx = multiprocessing.get_context("fork" if fork else "spawn")
    _FORKED_STUDY = study if fork else None
    pool = ProcessPoolExecutor(max_workers=n, mp_context=ctx)
    try:
        if fork:
            futures = [pool.submit(_draw_chunk_forked, c, figdir, svg) for c in chunks]
        else:
            futures = [pool.submit(_draw_chunk, study, c, figdir, svg) for c in chunks]
    except BaseException:
        pool.shutdown(cancel_futures=True)
        _FORKED_STUDY = None
        raise

    def finish() -> dict[str, RenderedFigure]:
        global _FORKED_STUDY
        try:
            return {rf.name: rf for f in futures for rf in f.result()}
        finally:
            pool.shutdown(cancel_futures=True)
            _FORKED_STUDY = None

    return finish


def build_report(
    config: dict[str, Any], outdir: str | os.PathLike, *, progress: bool = False
) -> Path:
    """Run the whole study and write the report folder.

    Parameters
    ----------
    config : dict
        A resolved configuration (:func:`incubloc.config.resolve_config`).
    outdir : path-like
        The folder to write: ``report.html``, ``interactive.html`` (unless
        ``[report] interactive_map = false``), ``figures/``, and the files of
        :func:`incubloc.workflow.write_study` (tables, stats.json, layers.gpkg,
        density GeoTIFFs, config.toml, provenance.json).
    progress : bool
        Show a progress bar of the study's steps on stderr.

    Returns
    -------
    Path
        The ``report.html`` written.

    Raises
    ------
    InputError
        If ``outdir`` exists and is not empty and ``[output] overwrite`` is false.
    """
    from incubloc.errors import InputError
    from incubloc.io import atomic_path

    outdir = Path(outdir)
    overwrite = bool((config.get("output") or {}).get("overwrite"))
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"output {outdir} exists and is not a folder: choose a folder name")
    if outdir.is_dir() and any(outdir.iterdir()) and not overwrite:
        raise InputError(
            f"output folder {outdir} already exists and is not empty: choose another folder "
            "with -o, or pass --overwrite (or set [output] overwrite = true) to replace it"
        )
    from incubloc.shells.plot import FIGURES
    from incubloc.workflow import STEPS, Extra, run_study, write_study

    rep = config.get("report") or {}
    svg = str(rep.get("svg", "none"))
    workers = int(rep.get("workers", 0))
    figdir = outdir / "figures"
    made = not outdir.exists()
    if figdir.is_dir():
        shutil.rmtree(figdir)  # no stale figures from an earlier run

    def interactive_map(study: Any) -> str | None:
        if not rep.get("interactive_map", True):
            return None
        from incubloc.shells.webmap import config_options, write_interactive_map

        return write_interactive_map(study, outdir / "interactive.html",
                                     **config_options(config)).name

    # With a second core each figure is drawn as soon as the steps it shows are done,
    # while the other steps go on, and the files are written over the cores once all
    # are done (the same files as made one after the other).
    extras = []
    if workers != 1 and _figure_workers(workers, 2) > 1:
        every = tuple(s.name for s in STEPS if s.wanted(config))
        extras = [Extra("study files", every, lambda study: write_study(study, outdir)),
                  Extra("interactive map", every, interactive_map),
                  *figure_extras(figdir, svg=svg)]
        figdir.mkdir(parents=True, exist_ok=True)
    try:
        study = run_study(config, progress=progress, extras=extras)
    except BaseException:
        if made and outdir.is_dir():
            shutil.rmtree(outdir)  # a failed run leaves no half-made folder
        raise
    outdir.mkdir(parents=True, exist_ok=True)
    drawn = {spec.name: study.extras.pop(spec.name) for spec in FIGURES
             if spec.name in study.extras}
    finish_figures = start_figures(study, figdir, svg=svg, workers=workers, skip=drawn)
    try:
        if "study files" not in study.extras:
            write_study(study, outdir)
        interactive = (study.extras.pop("interactive map") if "interactive map" in study.extras
                       else interactive_map(study))
        study.extras.pop("study files", None)
    finally:
        figures = finish_figures()
    prov = None
    pfile = outdir / "provenance.json"
    if pfile.is_file():
        import json

        try:
            prov = json.loads(pfile.read_text(encoding="utf-8"))
        except ValueError:
            prov = None
    page = render_html(study, figures, provenance=prov, interactive_map=interactive)
    path = outdir / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("wrote %s", path)
    return path


# ------------------------------------------------------------------ number formatting
def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool | str):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt(x: Any, digits: int = 3) -> str:
    """A number for prose: integers as such, others to ``digits`` significant digits.

    Examples
    --------
    >>> fmt(3), fmt(0.04567), fmt(-1.0), fmt(2006.0), fmt(12345.6), fmt(None)
    ('3', '0.0457', '−1', '2006', '12,346', '–')
    """
    v = _num(x)
    if v is None:
        return "–"
    if v == int(v) and abs(v) < 1e15:
        s = f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
    elif abs(v) >= 1000:
        s = f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.0f}"
    else:
        s = f"{v:.{digits}g}"
    return s.replace("-", _MINUS)


def fmt_p(p: Any) -> str:
    """A p-value for prose.

    Examples
    --------
    >>> fmt_p(0.0001), fmt_p(0.0312), fmt_p(None)
    ('p < 0.001', 'p = 0.031', 'p n/a')
    """
    v = _num(p)
    if v is None:
        return "p n/a"
    return "p < 0.001" if v < 0.001 else f"p = {v:.2g}" if v < 0.01 else f"p = {v:.3f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


_STAT_KEYS = (
    ("rho", "Spearman ρ"), ("spearman_rho", "Spearman ρ"), ("tau", "Kendall τ"),
    ("kappa", "Cohen's κ"), ("R", "R"), ("ratio", "ratio"), ("I", "Moran's I"),
    ("chi2", "χ²"), ("H", "H"), ("D", "D"), ("ks", "KS D"), ("statistic", "statistic"),
    ("z", "z"), ("z_sim", "z"),
)
# P-values as incubloc names them (incubloc.study_fields); "p" is a table column's.
_P_KEYS = ("p_sim", "p_norm", "p_t", "p_ks", "p")


def describe_test(test: Any) -> str:
    """One-line summary of a test record: its method, statistics and p-value.

    Examples
    --------
    >>> describe_test({"method": "Spearman", "rho": -1.0, "p_t": 0.0})
    'Spearman: Spearman ρ = −1, p < 0.001'
    """
    if not isinstance(test, Mapping):
        return ""
    parts = []
    seen = set()
    for key, label in _STAT_KEYS:
        v = _num(test.get(key))
        if v is not None and label not in seen:
            parts.append(f"{label} = {fmt(v)}")
            seen.add(label)
    p = next((test[k] for k in _P_KEYS if _num(test.get(k)) is not None), None)
    if p is not None:
        parts.append(fmt_p(p))
    method = test.get("method") or test.get("test")
    body = ", ".join(parts)
    return f"{method}: {body}" if method and body else body


# ------------------------------------------------------------------ HTML pieces
def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _table_html(df: pd.DataFrame, *, max_rows: int = 40, csv: str | None = None,
                caption: str | None = None, fold: int = 12) -> str:
    df = df.drop(columns="geometry", errors="ignore")
    n_rows = len(df)
    if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
        df = df.reset_index()  # crosstabs keep their row labels
    note = ""
    if len(df) > max_rows:
        note = f"<p class='note'>First {max_rows} of {len(df)} rows"
        if csv:
            note += (f"; the full table is <a href='tables/{_esc(csv)}.csv'>"
                     f"tables/{_esc(csv)}.csv</a>")
        note += ".</p>"
        df = df.head(max_rows)

    def ffmt(v: float) -> str:
        return f"{v:.1f}" if abs(v) >= 1000 else f"{v:.4g}"

    body = df.to_html(index=False, border=0, classes="tbl", float_format=ffmt, na_rep="–",
                      escape=True)
    if caption:
        body = body.replace(">", f"><caption>{_esc(caption)}</caption>", 1)
    link = f"<p class='src'>tables/{_esc(csv)}.csv</p>" if csv and not note else ""
    out = f"<div class='tw'>{body}</div>{note}{link}"
    if n_rows > fold:
        # Long tables are folded so the findings and figures stay readable.
        title = caption or csv or "table"
        out = f"<details><summary>{_esc(title)} ({n_rows} rows)</summary>{out}</details>"
    return out


def _dict_table(d: Mapping[str, Any], *, title: str | None = None) -> str:
    rows = []
    for k, v in d.items():
        if isinstance(v, Mapping | list | tuple) and len(str(v)) > 120:
            v = f"{type(v).__name__} of {len(v)}"
        elif _num(v) is not None and not isinstance(v, bool | int):
            v = fmt(v, 4)
        rows.append(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>")
    cap = f"<caption>{_esc(title)}</caption>" if title else ""
    return f"<div class='tw'><table class='tbl kv'>{cap}{''.join(rows)}</table></div>"


def _figure_html(rf: RenderedFigure | None) -> str:
    if rf is None:
        return ""
    if rf.png is None:
        return (f"<div class='missing'><b>{_esc(rf.name)}</b>: {_esc(rf.note or 'not drawn')}. "
                f"{_esc(rf.caption)}</div>")
    data = base64.b64encode(rf.png).decode("ascii")
    files = " · ".join(f"figures/{_esc(p.name)}" for p in rf.files)
    return (f"<figure id='fig-{_esc(rf.name)}'><img alt='{_esc(rf.caption)}' "
            f"src='data:image/png;base64,{data}'><figcaption>{_esc(rf.caption)} "
            f"<span class='src'>{files}</span></figcaption></figure>")


def _coerce_figures(figures: Mapping[str, Any] | None) -> dict[str, RenderedFigure]:
    """Accept RenderedFigure, PNG bytes, a PNG path, a Matplotlib Figure or a skip note."""
    import io

    from incubloc.shells.plot import FIGURES

    specs = {s.name: s for s in FIGURES}
    out: dict[str, RenderedFigure] = {}
    for name, val in (figures or {}).items():
        spec = specs.get(name)
        section, caption = (spec.section, spec.caption) if spec else ("statistics", name)
        if isinstance(val, RenderedFigure):
            out[name] = val
        elif isinstance(val, bytes):
            out[name] = RenderedFigure(name, section, caption, png=val)
        elif isinstance(val, str | os.PathLike) and str(val).endswith(".png") and Path(val).is_file():
            out[name] = RenderedFigure(name, section, caption, png=Path(val).read_bytes(),
                                       files=[Path(val)])
        elif hasattr(val, "savefig"):
            buf = io.BytesIO()
            val.savefig(buf, format="png", dpi=120, bbox_inches="tight", facecolor="white")
            out[name] = RenderedFigure(name, section, caption, png=buf.getvalue())
        else:
            out[name] = RenderedFigure(name, section, caption, note=str(val) if val else None)
    return out


# ------------------------------------------------------------------ findings
def _plain(value: Any) -> Any:
    from incubloc.stats._results import jsonable

    if isinstance(value, pd.DataFrame):
        return jsonable(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict") and not isinstance(value, pd.Series):
        return _plain(value.to_dict())
    return jsonable(value)


class _Ctx:
    """What the findings need from a study, read once.

    Tests and results are read through :meth:`test` and :meth:`result`, which fail
    loudly (:class:`~incubloc.study_fields.StudyFieldError`) when the step that
    writes them ran but left them out; a step that did not run (a hand-made study)
    gives None and its findings are left out.
    """

    def __init__(self, study: Any):
        self.study = study
        self.inc = getattr(study, "incubators", None)
        if self.inc is None:
            self.inc = getattr(getattr(study, "classification", None), "incubators", None)
        self.tables: dict[str, pd.DataFrame] = dict(getattr(study, "tables", None) or {})
        # Tests as plain values, as stats.json has them (DataFrames become records).
        self.tests: dict[str, Any] = _plain(dict(getattr(study, "tests", None) or {}))
        self.config: dict[str, Any] = dict(getattr(study, "config", None) or {})
        from incubloc.shells import plot

        try:
            self.core = plot.core_city(study)
        except plot.NoData:
            self.core = None
        self.zh = plot.zh_names(study)

    def name(self, en: Any) -> str:
        from incubloc.shells.plot import short_zh

        zh = self.zh.get(str(en))
        return f"{en} ({short_zh(zh)})" if zh else str(en)

    def test(self, name: str) -> Any:
        """Test record ``name`` as plain values (as ``stats.json`` has it), or None."""
        getter = getattr(self.study, "test", None)
        if callable(getter) and getter(name) is None:
            return None
        return self.tests.get(name)

    def result(self, name: str) -> Any:
        """Result object ``name``, or None (see :meth:`incubloc.workflow.Study.result`)."""
        getter = getattr(self.study, "result", None)
        return getter(name) if callable(getter) else None

    def table(self, name: str) -> pd.DataFrame | None:
        t = self.tables.get(name)
        return t if isinstance(t, pd.DataFrame) and len(t) else None

    def col(self, name: str) -> pd.Series | None:
        if self.inc is None or name not in self.inc:
            return None
        return self.inc[name]


def _f(record: Any, name: str, where: str) -> Any:
    """Field ``name`` of a test record or result, failing loudly when absent."""
    return study_field(record, name, where=where)


def _shares(series: pd.Series, classes: Iterable[str]) -> list[tuple[str, int, float]]:
    n = len(series)
    vc = series.fillna("unclassified").value_counts()
    return [(c, int(vc.get(c, 0)), (vc.get(c, 0) / n if n else 0.0)) for c in classes]


def _city_record(test: Any, city: str) -> Mapping[str, Any] | None:
    """The record of ``city`` in a per-city test (a list of records or a mapping)."""
    if isinstance(test, Mapping):
        if isinstance(test.get(city), Mapping):
            return test[city]
        return test if test.get("city") in (None, city) else None
    if isinstance(test, list | tuple):
        return next((r for r in test if isinstance(r, Mapping) and r.get("city") == city), None)
    return None


def _records(value: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """(group, record) pairs of a test given as a record, a list, or a mapping of either."""
    if isinstance(value, Mapping):
        if value and all(isinstance(v, Mapping | list) for v in value.values()):
            out = []
            for k, v in value.items():
                out += [(str(k), r) for _, r in _records(v)]
            return out
        return [("", value)]
    if isinstance(value, list | tuple):
        return [("", r) for r in value if isinstance(r, Mapping)]
    return []


def _spearman(x: list[float], y: list[float]) -> float | None:
    if len(x) < 2:
        return None
    from incubloc.stats.distributions import spearmanr

    with np.errstate(all="ignore"):
        return _num(spearmanr(x, y)[0])


def _region_findings(c: _Ctx) -> list[str]:
    out = []
    city = c.col("city")
    if city is not None and city.notna().any():
        n = len(city)
        vc = city.value_counts()
        top, k = vc.index[0], int(vc.iloc[0])
        out.append(f"{c.name(top)} holds {_pct(k, n)} of the {n} incubators ({k}); "
                   f"the fewest are in {c.name(vc.index[-1])} ({int(vc.iloc[-1])}).")
        level = c.col("level")
        if level is not None:
            here = 100 * level[city == top].eq("national").mean()
            there = 100 * level[city != top].eq("national").mean()
            out.append(f"National-level (国家级) incubators make up {here:.0f} % of {top}'s "
                       f"incubators against {there:.0f} % in the other cities.")
    prov = c.col("province")
    if prov is not None and prov.dropna().nunique() >= 2:
        vc = prov.value_counts()
        test = c.test("province_ratio")
        w = "tests['province_ratio']"
        if test is None:  # no region step: the two largest provinces
            a, b = str(vc.index[0]), str(vc.index[1])
        else:
            a, b = str(_f(test, "numerator", w)), str(_f(test, "denominator", w))
        na, nb = int(vc.get(a, 0)), int(vc.get(b, 0))
        ratio = _num(_f(test, "ratio", w)) if test is not None else None
        ratio = ratio if ratio is not None else (na / nb if nb else None)
        if ratio is not None:
            out.append(f"The {a} cities hold {fmt(ratio, 3)} times as many incubators as the "
                       f"{b} cities ({na} vs {nb}).")
    tier = c.test("tier_relation")
    w = "tests['tier_relation']"
    rho = _num(_f(tier, "rho", w)) if tier is not None and not skipped(tier) else None
    if rho is not None:
        trend = ("more incubators in higher-tier settlements (城镇等级越高孵化器越多)" if rho > 0
                 else "no rise of incubator numbers with settlement tier")
        n_s = _f(tier, "n_settlements", w)
        out.append(f"City tier: {trend}; Spearman ρ = {fmt(rho, 2)} between tier rank and "
                   f"count{f' over {n_s} settlements' if n_s else ''}, "
                   f"{fmt_p(_f(tier, 'p_t', w))}.")
    zone = c.col("zone")
    if zone is not None and zone.notna().any():
        n = len(zone)
        vc = zone.value_counts()
        parts = ", ".join(f"{z} {int(k)} ({_pct(k, n)})" for z, k in vc.items())
        out.append(f"Development structure (一心一带两片区): {parts}.")
    return out


def _ring_findings(c: _Ctx) -> list[str]:
    from incubloc.shells.plot import pattern_label

    out = []
    order3 = ("core", "inner_suburb", "outer_suburb")
    cr = getattr(getattr(c.study, "classification", None), "city_rings", None)
    if isinstance(cr, pd.DataFrame) and "ring_pattern" in cr:
        has = cr[cr["n_incubators"] > 0] if "n_incubators" in cr else cr
        has = has[has["ring_pattern"].notna() & (has["ring_pattern"].astype(str) != "")]
        vc = has["ring_pattern"].value_counts()
        if len(vc):
            parts = "; ".join(f"{pattern_label(p)}: {int(k)}" for p, k in vc.items())
            out.append(f"Ring patterns of the {len(has)} ring systems holding incubators — {parts}.")
        if "form" in has and "prefecture" in has:
            pref = has[has["city"] == has["prefecture"]]
            for form, zh in (("compact", "集中型"), ("dispersed", "分散型")):
                sel = pref[pref["form"] == form]
                if len(sel):
                    items = ", ".join(f"{c.name(r.city)} {pattern_label(r.ring_pattern)}"
                                      for r in sel.itertuples())
                    out.append(f"{form.capitalize()} ({zh}) prefecture cities: {items}.")
    city = c.core
    t = c.table("ring_table")
    if city and t is not None and {"city", "ring"} <= set(t.columns):
        sub = t[t["city"] == city].set_index("ring")
        rings = [r for r in order3 if r in sub.index]
        if "density_100km2" in sub and len(rings) >= 2:
            vals = [float(sub.loc[r, "density_100km2"]) for r in rings]
            rec = _city_record(c.test("density_gradient"), city)
            w = f"tests['density_gradient'][{city!r}]"
            rho = _num(_f(rec, "spearman_rho", w)) if rec is not None else None
            rec = rec or {}
            if rho is None:
                rho = _spearman(list(range(len(vals))), vals)
            falls = all(a > b for a, b in zip(vals, vals[1:], strict=False))
            verb = "falls outward" if falls else "does not fall monotonically outward"
            rr, lo, hi = (_num(rec[k]) if rec else None
                          for k in ("rate_ratio", "rate_ratio_ci_low", "rate_ratio_ci_high"))
            if rr is not None and lo is not None and hi is not None:
                shown = (f"density changes by a factor {fmt(rr, 3)} per ring outward "
                         f"(95 % CI {fmt(lo, 3)}–{fmt(hi, 3)}, {fmt_p(_f(rec, 'rate_ratio_p', w))}; "
                         "Poisson log-linear trend of the incubator counts with a log ring-area "
                         "offset")
                disp = _num(_f(rec, "dispersion", w))
                if _f(rec, "rate_ratio_interval", w) == "quasi-poisson" and disp is not None:
                    shown += (f"; quasi-Poisson interval: Pearson χ²/df = {fmt(disp, 3)}, "
                              "standard error scaled by its square root, t quantiles")
                    nr = _num(_f(rec, "n_rings", w))
                    if nr is not None and nr - 2 == 1:
                        shown += ("; with 3 rings that dispersion rests on one degree of "
                                  "freedom, so the interval is wide: the counts alone cannot "
                                  "tell overdispersion from a gradient that is not log-linear")
                elif disp is not None and disp > 1.5:
                    shown += (f"; counts overdispersed (Pearson χ²/df = {fmt(disp, 3)}), so the "
                              "interval is too narrow")
                shown += ")"
            else:
                shown = "no rate ratio could be estimated"
            out.append(f"Density {verb} in {c.name(city)}: "
                       f"{' → '.join(fmt(v, 3) for v in vals)} incubators per 100 km² "
                       f"({' → '.join(r.replace('_', ' ') for r in rings)}); {shown}."
                       + (f" Spearman ρ = {fmt(rho, 2)} over the {len(vals)} ring densities "
                          "describes the order only." if rho is not None else ""))
        if "opened_median" in sub and len(rings) >= 2:
            med = [_num(sub.loc[r, "opened_median"]) for r in rings]
            if all(m is not None for m in med):
                later = all(a <= b for a, b in zip(med, med[1:], strict=False))
                rec = _city_record(c.test("opening_sequence"), city)
                w = f"tests['opening_sequence'][{city!r}]"
                rho = _num(_f(rec, "spearman_rho", w)) if rec is not None else None
                test = (f"; Spearman ρ between ring order and opening year = {fmt(rho, 2)}, "
                        f"{fmt_p(_f(rec, 'spearman_p', w))}" if rho is not None else "")
                out.append(f"Opening years in {city} "
                           f"{'run later outward' if later else 'do not run later outward'} "
                           f"(建设时序): median {' → '.join(fmt(m) for m in med)}{test}.")
        if "site_area_mean" in sub and len(rings) >= 2:
            vals = [_num(sub.loc[r, "site_area_mean"]) for r in rings]
            if all(v is not None for v in vals):
                larger = all(a <= b for a, b in zip(vals, vals[1:], strict=False))
                out.append(f"Sites in {city} {'grow larger' if larger else 'do not grow larger'} "
                           "outward (空间规模): mean site area "
                           + " → ".join(f"{fmt(v / 10_000, 3)} ha" for v in vals) + ".")
    edge = c.test("ring_edge")
    w = "tests['ring_edge']"
    if edge is not None and skipped(edge):
        out.append(f"Ring-edge test skipped: {skipped(edge)}.")
    elif edge is not None and _num(_f(edge, "observed_mean", w)) is not None:
        obs, exp = _num(_f(edge, "observed_mean", w)), _num(_f(edge, "expected_mean", w))
        direction = _f(edge, "direction", w)
        p_side = _f(edge, "p_sim_closer" if direction == "closer" else "p_sim_farther", w)
        sig = _num(p_side) is not None and _num(p_side) <= 0.05
        if direction == "closer":
            where = "closer to the outer edge of their ring than"
            claim = ("supports the ring-edge pattern" if sig
                     else "but not significantly so: the ring-edge pattern is not shown")
        else:
            where = "farther from the outer edge of their ring (towards the core) than"
            claim = ("the opposite of the ring-edge pattern: a gradient towards the core"
                     if sig else "not significantly so; the ring-edge pattern is not shown")
        out.append(
            f"Ring edge (分布在各圈层的边缘地区): incubators lie {where} the ring's "
            f"area-weighted distribution — mean normalised distance {fmt(obs, 2)} against "
            f"{fmt(exp, 2)} for random locations in the same rings; {claim}. Monte-Carlo "
            f"one-sided {fmt_p(p_side)} for '{direction}' ({_f(edge, 'n_sim', w)} "
            f"simulations); KS D = {fmt(_f(edge, 'ks_stat', w), 2)}, {fmt_p(_f(edge, 'p_ks', w))} "
            "(two-sided: it says the distributions differ, not which way).")
    elif edge is not None and describe_test(edge):
        out.append(f"Ring-edge test: {describe_test(edge)}.")
    return out


def _class_findings(c: _Ctx, column: str, classes: dict[str, str], agreement: str) -> list[str]:
    out = []
    s = c.col(column)
    if s is None:
        return out
    n = len(s)
    parts = ", ".join(f"{cls.replace('_', '-')} {classes[cls]} {100 * f:.0f} % ({k})"
                      for cls, k, f in _shares(s, list(classes)) if k)
    unc = int((s.fillna("unclassified") == "unclassified").sum())
    out.append(f"Of {n} incubators: {parts}" + (f"; {unc} unclassified." if unc else "."))
    ring = c.col("ring")
    if ring is not None:
        tab = pd.crosstab(s, ring)
        for cls in classes:
            if cls in tab.index and tab.loc[cls].sum():
                row = tab.loc[cls]
                core = int(row.get("core", 0))
                out.append(f"{cls.replace('_', '-').capitalize()} {classes[cls]}: "
                           f"{_pct(core, row.sum())} in the core ring (中心城区) "
                           f"({core} of {int(row.sum())}).")
    city = c.col("city")
    if city is not None:
        for cls in classes:
            sel = city[s == cls]
            if len(sel) and cls != next(iter(classes)):
                vc = sel.value_counts()
                out.append(f"{cls.replace('_', '-').capitalize()} incubators are mostly in "
                           f"{c.name(vc.index[0])} ({int(vc.iloc[0])} of {len(sel)}).")
    agr = c.test(agreement)
    w = f"tests[{agreement!r}]"
    if agr is not None and not skipped(agr):
        kappa, acc = _num(_f(agr, "kappa", w)), _num(_f(agr, "accuracy", w))
        if kappa is not None or acc is not None:
            bits = [f"accuracy {100 * acc:.0f} %" if acc is not None else "",
                    f"Cohen's κ = {fmt(kappa, 3)}" if kappa is not None else ""]
            out.append(f"Agreement with the declared {column} labels "
                       f"(n = {_f(agr, 'n', w)}): " + ", ".join(b for b in bits if b) + ".")
    return out


_TARGETS = {
    "business": "business centres (临近商务中心)",
    "knowledge": "knowledge centres (临近智力中心)",
    "university": "universities (高校)",
    "research": "research institutes (科研机构)",
    "development_zone": "development zones (开发区)",
    "high_tech_zone": "high-tech zones (高新区)",
    "industrial_park": "industrial parks (产业园区)",
    "science_park": "science parks (科技园)",
}


def _stats_findings(c: _Ctx) -> list[str]:
    out = []
    ce = c.test("clark_evans")
    w = "tests['clark_evans']"
    r = _num(_f(ce, "R", w)) if ce is not None else None
    if r is not None:
        kind = "clustered (集聚)" if r < 1 else "dispersed (均匀)" if r > 1 else "random"
        mc = _f(ce, "p_method", w) == "monte_carlo"
        how = (f"Monte-Carlo test in the study-area window ({_f(ce, 'n_sim', w)} CSR "
               f"patterns), one-sided {fmt_p(_f(ce, 'p_sim_clustered', w))} for clustering"
               if mc else f"z = {fmt(_f(ce, 'z_norm', w), 3)}, normal approximation "
               f"{fmt_p(_f(ce, 'p_norm', w))}")
        text = (f"Clark–Evans nearest-neighbour index R = {fmt(r, 3)} (mean distance to the "
                f"nearest incubator over its CSR expectation): {kind} against homogeneous "
                f"CSR; {how}.")
        inh_test = c.test("ripley_inhom")
        inh = (_f(ce, "inhomogeneous", w)
               if inh_test is not None and not skipped(inh_test) else None)
        wi = f"{w}['inhomogeneous']"
        if inh is not None and _num(_f(inh, "p_sim_clustered", wi)) is not None:
            bw = _num(_f(inh, "bandwidth_m", wi))
            text += (" Against an inhomogeneous Poisson null with the kernel intensity of the "
                     f"incubators (σ = {fmt((bw or 0) / 1000, 3)} km), the intensity-scaled "
                     f"index is {fmt(_f(inh, 'R_null', wi), 3)}, one-sided "
                     f"{fmt_p(_f(inh, 'p_sim_clustered', wi))} for clustering beyond the trend.")
        out.append(text)
    pref = c.test("preference")
    placebo_said = False
    for group, rec in ([] if pref is None or skipped(pref) else _records(pref)):
        w = f"tests['preference'][{group!r}]"
        if _f(rec, "group", w) != "all":
            continue
        obs = _num(_f(rec, "observed_mean_m", w))
        exp = _num(_f(rec, "expected_mean_m", w))
        kind = str(_f(rec, "kind", w))
        if obs is None or exp is None:
            continue
        if kind == "placebo":
            if not placebo_said:
                placebo_said = True
                out.append(
                    "Placebo (安慰剂): incubators are also "
                    f"{fmt(100 * (1 - obs / exp), 2)} % closer than random locations in the same "
                    "settlements to the settlements' seats of government, which are equally "
                    f"urban and irrelevant to the claims (mean {fmt(obs / 1000, 3)} km vs "
                    f"{fmt(exp / 1000, 3)} km, {fmt_p(_f(rec, 'p', w))}): that much \"preference\" is "
                    "urban concentration alone, so a target kind counts only beyond it.")
            continue
        target = _TARGETS.get(kind, f"{kind.replace('_', ' ')} sites")
        closer = "closer to" if obs < exp else "no closer to"
        base = (f"Incubators lie {closer} {target} than random locations in the same "
                f"settlements: mean {fmt(obs / 1000, 3)} km vs {fmt(exp / 1000, 3)} km "
                f"({fmt(100 * (obs / exp - 1), 2)} %), {fmt_p(_f(rec, 'p', w))}")
        pv = _num(rec["p_vs_placebo_holm"]) if "p_vs_placebo_holm" in rec else None  # placebo run
        if pv is not None:
            ex = _num(_f(rec, "excess_log_ratio", w))
            verdict = ("a preference beyond the placebo" if _f(rec, "preference", w)
                       else "not a preference beyond the placebo")
            base += (f"; against the seats placebo the mean log-distance ratio differs by "
                     f"{fmt(ex, 2)} (Holm-adjusted {fmt_p(pv)}): {verdict}")
        out.append(base + ".")
    rip = c.test("ripley")
    w = "tests['ripley']"
    if rip is not None:
        test = str(_f(rip, "test", w)).upper()
        p = _num(_f(rip, "p_sim", w))
        alpha = _num(_f(rip, "alpha", w))
        dist = np.asarray(_f(rip, "distances", w), dtype=float)
        text = (f"Ripley's L, global {test} envelope test over 0–"
                f"{fmt(float(np.nanmax(dist)) / 1000, 3)} km "
                f"({_f(rip, 'n_sim', w)} simulations, one-sided for clustering): "
                f"against homogeneous CSR {fmt_p(p)}")
        if p is not None:
            text += (" — CSR rejected: incubators are clustered or follow an intensity trend "
                     "(this null cannot tell which)" if p <= alpha else " — CSR not rejected")
        inh = c.test("ripley_inhom")
        wi = "tests['ripley_inhom']"
        ip = _num(_f(inh, "p_sim", wi)) if inh is not None and not skipped(inh) else None
        if ip is not None:
            bw = _num(_f(inh, "bandwidth_m", wi))
            text += (f"; against an inhomogeneous Poisson with the kernel intensity "
                     f"(σ = {fmt((bw or 0) / 1000, 3)} km) {fmt_p(ip)} — "
                     + ("clustering beyond the trend" if ip <= alpha
                        else "no evidence of clustering beyond the trend at that bandwidth"))
        out.append(text + ". The grey band in the figure is a pointwise envelope, for "
                   "orientation only; the distance where L(d) − d peaks is not a cluster size.")
    gm = c.test("global_moran")
    w = "tests['global_moran']"
    if gm is not None and skipped(gm):
        out.append(f"Global Moran's I skipped: {skipped(gm)}.")
    elif gm is not None and _num(_f(gm, "I", w)) is not None:
        i = _num(_f(gm, "I", w))
        size = _num(_f(gm, "cell_size_m", w))
        where = f" on the {fmt(size / 1000)} km grid" if size else ""
        out.append(f"Global Moran's I of incubator counts{where} (全局空间自相关) = {fmt(i, 3)} "
                   f"(E[I] = {fmt(_f(gm, 'EI', w), 2)}), z = {fmt(_f(gm, 'z_norm', w), 3)}, "
                   f"permutation {fmt_p(_f(gm, 'p_sim', w))}.")
    ms = c.table("multiscale_moran")
    if ms is not None and "I" in ms and len(ms):
        sizes = ms["cell_size"] if "cell_size" in ms else ms.iloc[:, 0]
        prof = ", ".join(f"{fmt(_num(i), 3)} at {fmt(v / 1000)} km"
                         for v, i in zip(sizes, ms["I"], strict=True) if _num(i) is not None)
        peak = ms[ms["peak"].fillna(False).astype(bool)] if "peak" in ms else ms.iloc[:0]
        if len(peak):
            size = _num(peak.iloc[0].get("cell_size", peak.iloc[0].get("cell_size_m")))
            out.append(f"Moran's I over grid sizes: {prof}; it peaks at {fmt(size / 1000)} km "
                       "cells, the grid used for the local statistics below (the peak is read "
                       "on I, not on z, which grows with the number of cells).")
        elif prof:
            out.append(f"Moran's I over grid sizes: {prof}; no scale is significant.")
    out.extend(_local_sentences(c))
    cen = c.result("centrography")
    w = "results['centrography']"
    if cen is not None and _num(_f(cen, "standard_distance", w)) is not None:
        rot = _num(_f(cen, "rotation_deg", w))
        ma, mi = _num(_f(cen, "major", w)), _num(_f(cen, "minor", w))
        axes = (f"; the standard deviational ellipse has semi-axes {fmt(ma / 1000, 3)} × "
                f"{fmt(mi / 1000, 3)} km with its major axis {fmt(rot, 3)}° from north"
                if None not in (ma, mi, rot) else "")
        out.append(f"Standard distance {fmt(cen.standard_distance / 1000, 3)} km around the mean "
                   f"centre{axes} (标准差椭圆).")
    jc = c.test("join_counts")
    for name, rec in (jc or {}).items():
        w = f"tests['join_counts'][{name!r}]"
        if skipped(rec):
            out.append(f"Join counts on {name} skipped: {skipped(rec)}.")
            continue
        for row in _f(rec, "table", w):
            bb, mean = _num(_f(row, "bb", w)), _num(_f(row, "mean_bb", w))
            if bb is None or mean is None:
                continue
            label = str(_f(row, "label", w))
            verb = "cluster" if _f(row, "clustered", w) else "do not cluster"
            out.append(f"Join counts: {label.replace('_', '-')} incubators {verb} — "
                       f"{fmt(bb)} like–like joins vs {fmt(mean, 3)} expected, "
                       f"{fmt_p(_f(row, 'p_sim_bb', w))}; weights {_f(rec, 'weights', w)}.")
    return out


_CORRECTION_NAMES = {"fdr": "Benjamini–Hochberg false-discovery-rate correction",
                     "bonferroni": "Bonferroni correction", "none": "no multiple-testing correction"}
_NULL_NAMES = {"permutation": "conditional permutation",
               "constant_risk": "constant risk (complete spatial randomness on land given n)"}


def _local_sentences(c: _Ctx) -> list[str]:
    """LISA and Gi* on districts, then on the grid: counts, tests, correction, threshold."""
    out: list[str] = []
    lisa = c.test("local_moran")
    gi = c.test("getis_ord")
    if lisa is None or gi is None:
        return out
    for key in ("districts", "grid"):
        if key not in lisa:  # no districts layer, or no land grid
            continue
        lrec = lisa[key]
        wl, wg = f"tests['local_moran'][{key!r}]", f"tests['getis_ord'][{key!r}]"
        grec = _f(gi, key, "tests['getis_ord']")
        unit = str(_f(lrec, "unit", wl))
        if skipped(lrec):
            out.append(f"Local statistics on {unit} were skipped: {skipped(lrec)}.")
            continue
        cl = _f(lrec, "clusters", wl)
        bins = _f(grec, "bins", wg)
        hot = sum(int(v) for k, v in bins.items() if k.startswith("hot"))
        cold = sum(int(v) for k, v in bins.items() if k.startswith("cold"))
        corr = str(_f(lrec, "correction", wl))
        corr = _CORRECTION_NAMES.get(corr, corr)
        out.append(
            f"On {unit}: LISA (局部空间自相关) finds {cl.get('HH', 0)} High–High, "
            f"{cl.get('LL', 0)} Low–Low, {cl.get('HL', 0)} High–Low and {cl.get('LH', 0)} "
            f"Low–High units, and Getis–Ord Gi* {hot} hot and {cold} cold spots "
            f"({', '.join(f'{k} {v}' for k, v in bins.items() if v and k != 'ns') or 'none'}), "
            f"among {_f(lrec, 'n_tests', wl)} tests with {corr} at "
            f"α = {fmt(_f(lrec, 'alpha', wl))} "
            f"(significant when p ≤ {fmt(_num(_f(lrec, 'threshold', wl)), 2)} for LISA, "
            f"{fmt(_num(_f(grec, 'threshold', wg)), 2)} for Gi*; LISA: "
            f"{_null_text(lrec)}; Gi*: {_null_text(grec)}; ties counted against "
            "significance).")
        if _f(lrec, "attainable", wl) is False:
            out.append(f"With {_f(lrec, 'permutations', wl)} permutations no unit on {unit} could "
                       "pass the corrected threshold; its maps show no significant unit by "
                       "construction.")
    if out:
        out.append("A significant LISA unit rejects, under conditional permutation, that its "
                   "neighbours' rates are unrelated to its own; a Gi* hot (cold) spot under "
                   "constant risk is a window holding more (fewer) incubators than complete "
                   "spatial randomness on land would give. Neither says why incubators "
                   "concentrate there, and a unit whose whole neighbourhood is empty is never "
                   "reported.")
    return out


def _null_text(rec: dict[str, Any]) -> str:
    """How many simulations of which null a local statistic's p-values rest on."""
    n = rec.get("permutations")
    if rec.get("null") == "constant_risk":
        return (f"{n} simulations of complete spatial randomness on land given the number "
                "of incubators (constant risk)")
    if rec.get("null") == "normal":
        return "normal approximation"
    return f"{n} conditional permutations"


# ------------------------------------------------------------------ methods
def _kde_sd(c: _Ctx) -> str:
    """' (h = …, kernel sd …)' of the study's KDE surface, or ''."""
    surf = (getattr(c.study, "surfaces", None) or {}).get("all")
    h, sd = _num(getattr(surf, "bandwidth_m", None)), _num(getattr(surf, "kernel_sd_m", None))
    if h is None or sd is None:
        return ""
    return f" (h = {fmt(h / 1000, 3)} km, kernel standard deviation {fmt(sd / 1000, 3)} km)"


def _methods(c: _Ctx) -> str:
    cfg = c.config
    g = lambda s, k, d=None: (cfg.get(s) or {}).get(k, d)  # noqa: E731
    lay = cfg.get("layout") or {}
    crs = getattr(c.study, "crs", None)
    crs_s = crs.to_string() if hasattr(crs, "to_string") else str(crs)
    sizes = ", ".join(f"{fmt(v / 1000)} km" for v in (g("stats", "cell_sizes_m") or []))
    gm = c.test("global_moran")
    gm_size = (_num(_f(gm, "cell_size_m", "tests['global_moran']"))
               if gm is not None and "cell_size_m" in gm else None)  # none without a land grid
    lisa_grid = f"{fmt(gm_size / 1000)} km" if gm_size else "chosen"
    items = [
        ("Coordinates", f"input {g('input', 'coords', 'wgs84')} longitude/latitude converted to "
                        f"WGS84; distances and areas in {crs_s} (metric); ring areas in an "
                        "equal-area projection."),
        ("Region scale 区域", "city and province from the cities layer; settlement tier "
                             "from resident population by the State Council 2014 standard "
                             "(超大/特大/Ⅰ型大/Ⅱ型大/中等/Ⅰ型小/Ⅱ型小城市/小城镇); zone: core city "
                             f"(一心), Yangtze belt within {fmt((g('study_area', 'corridor_buffer_m') or 30000) / 1000)} "
                             "km of the river (一带), named zones (片区)."),
        ("Ring scale 圈层", "core 中心城区 / inner suburb 近郊区 / outer suburb 远郊区 from the "
                           "rings layer; the ring pattern of a ring system is the set of rings "
                           "holding at least one incubator; density per 100 km² of ring land; "
                           "gradient by a Poisson log-linear trend of ring counts over ring "
                           "order with a log ring-area offset (rate ratio per ring, Wald 95 % "
                           "CI; Spearman's ρ shown as a description); ring-edge test compares "
                           "distances to the ring's outer boundary with random locations in "
                           f"the ring ({g('stats', 'ring_edge_sim', 999)} simulations), "
                           "one-sided in the direction the data show."),
        ("Relation 园中园/独立/混合", "park-in-park when a site lies in a host space (university, "
                                     "research institute, development / high-tech zone, industrial "
                                     f"or science park), by point-in-polygon or ≥ {fmt(100 * g('relation', 'min_share', 0.5))} % "
                                     f"of its area (tolerance {fmt(g('relation', 'tolerance_m', 0))} m); "
                                     "standalone when in none; mixed when sites differ."),
        ("Layout 楼宇式/园区式/混合式", f"building when at most {lay.get('max_buildings', '–')} "
                                       f"buildings cover ≥ {fmt(100 * (lay.get('min_coverage') or 0))} % "
                                       f"of the site with ≥ {fmt(lay.get('min_levels'))} storeys "
                                       f"on ≤ {fmt(lay.get('max_site_area_m2'))} m²; park otherwise; "
                                       "mixed when sites differ."),
        ("Point pattern", "Clark–Evans index tested by Monte-Carlo in the study-area window "
                          "(Donnelly's correction only for rectangles); Ripley's K / Besag's L "
                          f"with a global {str(g('stats', 'envelope_test', 'mad')).upper()} "
                          f"envelope test ({g('stats', 'n_sim', 99)} simulations) against "
                          "homogeneous CSR and against an inhomogeneous Poisson with the kernel "
                          f"intensity (bandwidth {g('stats', 'intensity_bandwidth', 'scott')}); "
                          "standard deviational ellipse (1 standard deviation)."),
        ("Location preference", "nearest-target distances against random locations drawn "
                                "uniformly in the same settlements, with the settlements' "
                                "seats as a placebo target set; a preference is claimed only "
                                "beyond the placebo (Monte-Carlo test of the difference of "
                                "mean log distances, Holm-adjusted over the kinds)."),
        ("Autocorrelation", f"incubator counts on {g('stats', 'grid_shape', 'square')} grids "
                            f"of {sizes} cells on land (multi-scale global Moran's I, the "
                            f"scale read at the peak of I); LISA and Getis–Ord Gi* on districts "
                            "(Assunção–Reis empirical-Bayes standardised rates of incubators "
                            f"per km²) and on the {lisa_grid} grid; queen contiguity weights; "
                            f"at least {g('stats', 'permutations', 999)} simulations (raised "
                            "until the corrected threshold is attainable) of the null: "
                            f"{_NULL_NAMES.get(g('stats', 'lisa_null', 'permutation'), '')} "
                            "for LISA, "
                            f"{_NULL_NAMES.get(g('stats', 'gi_null', 'constant_risk'), '')} "
                            "for Gi*; ties counted against significance; "
                            f"{_CORRECTION_NAMES.get(g('stats', 'correction', 'fdr'), '')} at "
                            f"α = {fmt(g('stats', 'alpha', 0.05))}; see docs/methods.md."),
        ("Kernel density", f"{g('density', 'kernel', 'quartic')} kernel, bandwidth "
                           f"{g('density', 'bandwidth', 'scott')}{_kde_sd(c)}, cell "
                           f"{fmt(g('density', 'cell_size_m', 500))} m; surfaces in density/*.tif."),
        ("Randomness", f"seed {g('stats', 'seed')}; every Monte-Carlo result is reproducible."),
    ]
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in items)
    return f"<div class='tw'><table class='tbl kv'>{rows}</table></div>"


# ------------------------------------------------------------------ page
_CSS = """
:root{--ink:#1f2328;--mute:#57606a;--line:#d0d7de;--accent:#a50f15}
*{box-sizing:border-box}
body{font-family:"IncublocCJK","Noto Sans","DejaVu Sans","Helvetica Neue",Arial,sans-serif;
color:var(--ink);max-width:1120px;margin:0 auto;padding:24px 28px 64px;line-height:1.5;
font-size:15px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h1 small{display:block;font-size:17px;color:var(--mute);
font-weight:normal}
h2{font-size:21px;border-bottom:2px solid var(--accent);padding-bottom:4px;margin-top:44px}
h3{font-size:16px;margin-top:26px}
nav{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:8px 14px;
margin:16px 0}nav a{margin-right:14px;color:var(--accent);text-decoration:none;
display:inline-block}
ul.findings li{margin:4px 0}
figure{margin:22px 0;text-align:center}figure img{max-width:100%;max-height:920px;
width:auto;height:auto;
border:1px solid #eee}
figcaption{font-size:13px;color:var(--mute);text-align:left;margin-top:6px}
.src{font-family:"DejaVu Sans Mono",monospace;font-size:11px;color:#8c959f;margin-left:6px}
.tw{overflow-x:auto;margin:10px 0}
table.tbl{border-collapse:collapse;font-size:12.5px}
table.tbl th,table.tbl td{border-bottom:1px solid var(--line);padding:3px 9px;text-align:right}
table.tbl th{background:#f6f8fa}table.tbl td:first-child,table.tbl th:first-child{text-align:left}
table.kv th{text-align:left;vertical-align:top;white-space:nowrap}table.kv td{text-align:left}
caption{text-align:left;font-weight:bold;padding:4px 0}
.missing{border:1px dashed #c69026;background:#fff8c5;padding:8px 12px;margin:12px 0;
font-size:13px}
.note{font-size:12px;color:var(--mute)}
.banner{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;border-radius:6px}
pre{background:#f6f8fa;padding:10px;overflow-x:auto;font-size:12px}
details{margin:8px 0}summary{cursor:pointer;color:var(--accent);font-size:13px}
"""

_SECTIONS = (
    ("summary", "Summary 摘要"),
    ("region", "Region scale 区域尺度"),
    ("rings", "Ring scale 城镇圈层尺度"),
    ("relation", "Relation to host spaces 与其他功能空间的关系"),
    ("layout", "Internal layout 园区内部布局"),
    ("statistics", "Spatial statistics 空间统计"),
    ("methods", "Methods and parameters 方法与参数"),
    ("provenance", "Provenance 数据来源与可复现性"),
)

_TABLES = {
    "region": ("region_city_level", "region_province", "region_tier", "region_zone",
               "region_settlement"),
    "rings": ("ring_patterns", "ring_table", "density_gradient", "opening_sequence"),
    "relation": ("relation_by_city", "relation_by_ring", "relation_confusion"),
    "layout": ("layout_by_city", "layout_by_ring", "layout_confusion"),
    "statistics": ("point_pattern", "multiscale_moran", "preference_centres",
                   "preference_hosts"),
}
_TESTS = {
    "region": ("tier_relation", "province_ratio"),
    "rings": ("ring_edge",),
    "relation": ("relation_agreement",),
    "layout": ("layout_agreement",),
    "statistics": ("clark_evans", "ripley", "ripley_inhom", "global_moran", "join_counts"),
}


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | bool | int | float | np.generic)


def _test_html(name: str, rec: Any) -> str:
    """A test record as tables: its scalars, then any lists of records as sub-tables."""
    if isinstance(rec, list | tuple):
        rows = [r for r in rec if isinstance(r, Mapping)]
        return _table_html(pd.DataFrame(rows), caption=name) if rows else ""
    if not isinstance(rec, Mapping):
        return _dict_table({"value": rec}, title=name)
    out = []
    flat = {k: v for k, v in rec.items() if _scalar(v)}
    if flat:
        out.append(_dict_table(flat, title=name))
    subtables = []
    for k, v in rec.items():
        if isinstance(v, list | tuple) and v and all(isinstance(x, Mapping) for x in v):
            out.append(_table_html(pd.DataFrame(list(v)), caption=f"{name}: {k}"))
        elif isinstance(v, Mapping) and not _scalar(v):
            if isinstance(v.get("table"), list):
                df = pd.DataFrame(v["table"])
                df.insert(0, "test", k)
                subtables.append(df)
            elif all(_scalar(x) for x in v.values()):
                out.append(_dict_table(v, title=f"{name}: {k}"))
    if subtables:
        out.append(_table_html(pd.concat(subtables, ignore_index=True), caption=name))
    return "".join(out)


def _tests_html(c: _Ctx, names: Iterable[str]) -> str:
    return "".join(_test_html(n, rec) for n in names if (rec := c.test(n)) is not None)


def _provenance_html(c: _Ctx, prov: Mapping[str, Any] | None) -> str:
    from incubloc._version import __version__

    parts = [f"<p>incubloc {_esc(__version__)}.</p>"]
    if prov:
        deps = prov.get("dependencies") or {}
        rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in deps.items())
        ins = prov.get("inputs") or {}
        irows = "".join(
            f"<tr><th>{_esc(k)}</th><td>{_esc((v or {}).get('path'))}<br>"
            f"<span class='src'>sha256 {_esc((v or {}).get('sha256'))}</span></td></tr>"
            for k, v in ins.items()
        )
        meta = {k: prov.get(k) for k in ("incubloc_version", "python", "seed", "command",
                                          "run_time_utc") if prov.get(k) is not None}
        parts.append(_dict_table(meta, title="run"))
        if irows:
            parts.append(f"<div class='tw'><table class='tbl kv'><caption>inputs</caption>{irows}"
                         "</table></div>")
        if rows:
            parts.append(f"<div class='tw'><table class='tbl kv'><caption>dependencies</caption>"
                         f"{rows}</table></div>")
    parts.append("<p>The folder holds <code>config.toml</code> (the fully resolved "
                 "configuration) and <code>provenance.json</code>; "
                 "<code>incubloc report config.toml -o NEWDIR</code> reproduces every table "
                 "byte for byte.</p>")
    if c.config:
        from incubloc.config import dump_config

        try:
            text = dump_config(c.config)
        except AttributeError:  # a hand-made study whose config is not a table of tables
            text = None
        if text:
            parts.append(f"<details><summary>config.toml</summary><pre>{_esc(text)}</pre></details>")
    return "".join(parts)


def _ul(items: list[str]) -> str:
    if not items:
        return "<p class='note'>No finding: the inputs of this scale are missing.</p>"
    return "<ul class='findings'>" + "".join(f"<li>{_esc(s)}</li>" for s in items) + "</ul>"


def render_html(
    study: Any,
    figures: Mapping[str, Any] | None = None,
    *,
    provenance: Mapping[str, Any] | None = None,
    embed_font: bool = True,
    interactive_map: str | None = None,
) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    study : Study
        From :func:`incubloc.workflow.run_study`.
    figures : mapping of name to RenderedFigure, PNG bytes, PNG path, Figure or note
        The figures (names of :data:`incubloc.shells.plot.FIGURES`); missing ones are listed.
    provenance : mapping, optional
        The ``provenance.json`` record (versions, input hashes, seed, run time).
    embed_font : bool
        Embed the Chinese glyphs the page uses as a WOFF subset of the CJK font.
    interactive_map : str, optional
        Relative path of the interactive map (:mod:`incubloc.shells.webmap`) to link.

    Returns
    -------
    str
        HTML with inline CSS and images; no external URL.
    """
    c = _Ctx(study)
    figs = _coerce_figures(figures)
    n = len(c.inc) if c.inc is not None else 0
    title = "Incubator location patterns 孵化器多尺度空间区位模式"
    inp = c.config.get("input") or {}
    area = "Nanjing metropolitan circle 南京都市圈" if inp.get("example") == "nanjing" else ""
    region = _region_findings(c)
    rings = _ring_findings(c)
    relation = _class_findings(c, "relation", {"park_in_park": "园中园型", "standalone": "独立型",
                                               "mixed": "混合型"}, "relation_agreement")
    layout = _class_findings(c, "layout", {"park": "园区式", "building": "楼宇式",
                                           "mixed": "混合式"}, "layout_agreement")
    stats = _stats_findings(c)
    body: list[str] = []
    body.append(f"<header><h1>{_esc(title)}<small>{_esc(area)}</small></h1>"
                f"<p>{n} incubators analysed on four levels and three scales: region "
                "(区域), town rings and host spaces (城镇), and park layout (园区).</p>")
    if inp.get("example") == "nanjing":
        body.append("<p class='banner'>The bundled Nanjing incubator sample is synthetic, "
                    "generated to match the figures published for 2014; the administrative "
                    "boundaries are real. Read the data card before quoting numbers.</p>")
    body.append("</header><nav>" + "".join(f"<a href='#{k}'>{_esc(v)}</a>" for k, v in _SECTIONS)
                + (f"<a href='{_esc(interactive_map)}'>Interactive map 交互地图</a>"
                   if interactive_map else "") + "</nav>")
    summary = (region[:1] + [s for s in rings if s.startswith(("Density ", "Opening "))]
               + relation[:1] + layout[:1] + stats[:1]
               + [s for s in stats if s.startswith("Incubators lie")][:2])
    body.append(f"<section id='summary'><h2>{_esc(_SECTIONS[0][1])}</h2>{_ul(summary)}</section>")
    findings = {"region": region, "rings": rings, "relation": relation, "layout": layout,
                "statistics": stats}
    for key, heading in _SECTIONS[1:6]:
        body.append(f"<section id='{key}'><h2>{_esc(heading)}</h2>")
        body.append("<h3>Findings</h3>" + _ul(findings[key]))
        for rf in figs.values():
            if rf.section == key:
                body.append(_figure_html(rf))
        tests = _tests_html(c, _TESTS.get(key, ()))
        if tests:
            body.append("<h3>Tests</h3>" + tests)
        tabs = [(t, c.table(t)) for t in _TABLES.get(key, ())]
        tabs = [(t, df) for t, df in tabs if df is not None]
        if tabs:
            body.append("<h3>Tables</h3>")
            for t, df in tabs:
                body.append(f"<h4>{_esc(t)}</h4>")
                if "city" in df and c.core and len(df) > 12 and (df["city"] == c.core).any():
                    # The core city's rows stay in view; the whole table is folded below.
                    body.append(_table_html(df[df["city"] == c.core].reset_index(drop=True),
                                            caption=f"{t}: {c.core}", fold=len(df)))
                body.append(_table_html(df, csv=t))
        body.append("</section>")
    if c.result("factors") is not None:
        body.append(factors_section_html(c.result("factors")))
    body.append(f"<section id='methods'><h2>{_esc(_SECTIONS[6][1])}</h2>{_methods(c)}")
    disabled = getattr(getattr(study, "classification", None), "disabled", None) or {}
    if disabled:
        body.append("<p class='note'>Disabled for lack of study-area layers: "
                    + "; ".join(f"{_esc(k)} (needs {_esc(', '.join(v))})" for k, v in disabled.items())
                    + ".</p>")
    skipped = [rf for rf in figs.values() if rf.png is None]
    if skipped:
        body.append("<p class='note'>Figures not drawn: "
                    + "; ".join(f"{_esc(rf.name)} — {_esc(rf.note or 'no input')}" for rf in skipped)
                    + ".</p>")
    body.append("</section>")
    body.append(f"<section id='provenance'><h2>{_esc(_SECTIONS[7][1])}</h2>"
                f"{_provenance_html(c, provenance)}</section>")
    main = "\n".join(body)
    font_css = ""
    if embed_font:
        from incubloc._fonts import subset_font

        # a regex scan: the page holds megabytes of base64 figures
        chars = "".join(sorted(set(re.findall("[^\x00-\u2e7f]", main + title))))
        data = subset_font(chars) if chars else None
        if data:
            kind = "woff2" if data[:4] == b"wOF2" else "woff"
            font_css = ("@font-face{font-family:'IncublocCJK';src:url(data:font/" + kind
                        + ";base64," + base64.b64encode(data).decode("ascii")
                        # First in the family list but only for CJK code points: Chromium
                        # otherwise lays out CJK text in a fallback font before it loads.
                        + f") format('{kind}');unicode-range:U+2E80-9FFF,U+F900-FAFF,"
                        "U+FE30-FE4F,U+FF00-FFEF;}")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_esc(title)}</title><style>{font_css}{_CSS}</style></head>"
            f"<body>\n{main}\n</body></html>\n")


# ------------------------------------------------------------------ location factors
_FACTOR_GROUP_NAMES = {
    "business_centres": "business centres 商务中心", "knowledge_centres": "knowledge centres 智力中心",
    "development_zones": "development zones 开发区", "transport": "transport 交通",
    "urban_structure": "urban structure 城市结构", "population": "population 人口",
}


def factor_findings(result: Any) -> list[str]:
    """Sentences of the location-factor model, each with its number and its test.

    ``result`` is a :class:`incubloc.factors.FactorResult`.
    """
    out: list[str] = []
    par, co, fit = result.parameters, result.coefficients, result.fit.set_index("model")
    alpha = float(par.get("alpha", 0.05))
    out.append(f"Units: {par.get('n_units')} {par.get('units_kind')}; response: incubators "
               f"per unit ({par.get('response')}, {par.get('n_incubators')} in all) with land "
               "area as exposure. The models show associations across units, not causes, and "
               "hold for units, not for single incubators.")
    docs = result.covariates.set_index("name")
    for term in docs.index:
        p_row = co[(co["model"] == "poisson") & (co["term"] == term)]
        n_row = co[(co["model"] == "negbin") & (co["term"] == term)]
        if not len(p_row):
            continue
        r = p_row.iloc[0]
        unit = docs.loc[term, "unit"]
        verdict = "is associated with" if r["p"] < alpha else "shows no significant association with"
        nb = (f"; negative binomial IRR {fmt(n_row.iloc[0]['irr'], 3)}, {fmt_p(n_row.iloc[0]['p'])}"
              if len(n_row) else "")
        per = ("vs the core ring" if unit == "indicator" else "per tier step" if unit == "rank"
               else "per additional host" if unit.startswith("count") else
               "per percentage point of land" if unit == "% of land" else f"per {unit}")
        out.append(f"{term} ({unit}) {verdict} the incubator rate: incidence-rate ratio "
                   f"{fmt(r['irr'], 3)} {per} (95 % CI {fmt(math.exp(r['ci_low']), 3)}–"
                   f"{fmt(math.exp(r['ci_high']), 3)}), z = {fmt(r['stat'], 3)}, {fmt_p(r['p'])} "
                   f"(Poisson GLM, log-area offset, HC0 errors){nb}.")
    if "poisson" in fit.index:
        f = fit.loc["poisson"]
        out.append(f"Poisson GLM: deviance explained {fmt(f['fit_value'], 3)}; Pearson dispersion "
                   f"{fmt(f['dispersion'], 3)} (1 = Poisson variance; above it the negative "
                   "binomial's robust intervals are the safer reading).")
    if "negbin" in fit.index:
        a = co[(co["model"] == "negbin") & (co["term"] == "alpha")]
        if len(a):
            out.append(f"Negative binomial overdispersion α = {fmt(a.iloc[0]['estimate'], 3)} "
                       f"(robust SE {fmt(a.iloc[0]['robust_se'], 3)}); AIC {fmt(fit.loc['negbin', 'aic'], 4)} "
                       f"vs Poisson {fmt(fit.loc['poisson', 'aic'], 4)}.")
    if "ols" in fit.index:
        out.append(f"OLS on {par.get('ols_response')}: R² = {fmt(fit.loc['ols', 'fit_value'], 3)} "
                   f"({par.get('ols_robust')} errors).")
    d = result.diagnostics or {}
    if d:
        choice = d.get("spatial_model")
        out.append(f"Spatial diagnostics of the OLS residuals (spreg, {d.get('weights')}): "
                   f"Moran's I = {fmt(d.get('moran_res_I'), 3)}, z = {fmt(d.get('moran_res_z'), 3)}, "
                   f"{fmt_p(d.get('moran_res_p'))}; LM-lag {fmt(d.get('lm_lag'), 3)} "
                   f"({fmt_p(d.get('lm_lag_p'))}), LM-error {fmt(d.get('lm_error'), 3)} "
                   f"({fmt_p(d.get('lm_error_p'))}), robust LM-lag {fmt_p(d.get('rlm_lag_p'))}, "
                   f"robust LM-error {fmt_p(d.get('rlm_error_p'))}. "
                   + ("No spatial model is called for (neither LM test rejects at "
                      f"α = {fmt(alpha)})." if choice == "none" else
                      f"A spatial {choice} model is fitted (ML, spreg)."))
        for par_name in ("lambda", "rho"):
            row = co[co["term"] == par_name]
            if len(row):
                r = row.iloc[0]
                out.append(f"Spatial {r['model'].removeprefix('spatial_')} model: {par_name} = "
                           f"{fmt(r['estimate'], 3)} (95 % CI {fmt(r['ci_low'], 3)}–"
                           f"{fmt(r['ci_high'], 3)}), z = {fmt(r['stat'], 3)}, {fmt_p(r['p'])}.")
    dec = result.decomposition
    for model in (dec["model"].unique() if len(dec) else []):
        t = dec[dec["model"] == model]
        total = t[t["group"] == "total"].iloc[0]
        parts = t[t["group"] != "total"].sort_values("contribution", ascending=False)
        measure = "R² (OLS)" if model == "ols" else "deviance explained (Poisson)"
        shares = "; ".join(
            f"{_FACTOR_GROUP_NAMES.get(r.group, r.group)} {fmt(r.contribution, 3)} "
            f"({fmt(100 * r.share, 3)} %, 95 % bootstrap interval {fmt(100 * r.share_ci_low, 3)}–"
            f"{fmt(100 * r.share_ci_high, 3)} %)" for r in parts.itertuples())
        out.append(f"Effect decomposition (Shapley–Owen, {par.get('n_boot')} bootstrap resamples) "
                   f"of {measure} = {fmt(total['contribution'], 3)}: {shares}.")
    g = result.gwr or {}
    if g.get("fitted") and g.get("model") == "mgwr":
        bw = ", ".join(f"{k} {fmt(v)}" for k, v in (g.get("bandwidths_neighbours") or {}).items())
        sig = ", ".join(f"{k} {v}" for k, v in (g.get("n_significant") or {}).items())
        out.append(f"MGWR (adaptive bisquare; neighbours per term by AICc: {bw}): R² = "
                   f"{fmt(g.get('r2'), 3)}, AICc = {fmt(g.get('aicc'), 4)}; units with a "
                   f"significant local coefficient at each term's corrected α: {sig}.")
    elif g.get("fitted"):
        sig = ", ".join(f"{k} {v}" for k, v in (g.get("n_significant") or {}).items())
        out.append(f"GWR (adaptive bisquare, {fmt(g.get('bandwidth_neighbours'))} neighbours by "
                   f"AICc): R² = {fmt(g.get('r2'), 3)}, AICc = {fmt(g.get('aicc'), 4)}; units with a "
                   f"significant local coefficient at the corrected α = {fmt(g.get('adj_alpha'), 3)}: {sig}.")
    else:
        out.append(f"GWR not fitted: {g.get('reason')} ({g.get('threshold')}).")
    for name, why in (result.skipped or {}).items():
        out.append(f"Covariate {name} left out: {why}.")
    return out


def factors_section_html(result: Any, figures: Mapping[str, bytes] | None = None) -> str:
    """The report section of the location-factor model (findings, maps, tables).

    ``figures`` maps ``factor_residuals`` / ``factor_gwr`` to PNG bytes; without it the
    maps are drawn from ``result``.
    """
    if figures is None:  # draw the maps in memory
        import io

        figures = {}
        draw = {"factor_residuals": result.plot_residuals}
        if (result.gwr or {}).get("fitted"):
            draw["factor_gwr"] = result.plot_gwr
        for name, func in draw.items():
            buf = io.BytesIO()
            func().savefig(buf, format="png", dpi=110, metadata={"Software": None},
                           bbox_inches="tight", facecolor="white")
            figures[name] = buf.getvalue()
    parts = ["<section id='factors'><h2>Location factors 区位因素</h2>",
             "<h3>Findings</h3>", _ul(factor_findings(result))]
    for name, caption in (("factor_residuals", "Residuals of the OLS and Poisson models per unit."),
                          ("factor_gwr", "GWR local coefficients (hatched: not significant).")):
        png = (figures or {}).get(name)
        if png:
            parts.append(f"<figure><img alt='{_esc(name)}' src='data:image/png;base64,"
                         f"{base64.b64encode(png).decode('ascii')}'><figcaption>{_esc(caption)}"
                         "</figcaption></figure>")
    parts.append("<h3>Tables</h3>")
    parts.append(_table_html(result.covariates, csv="factor_covariates", caption="covariates"))
    parts.append(_table_html(result.coefficients, csv="factor_coefficients", caption="coefficients",
                             max_rows=80))
    parts.append(_table_html(result.fit, csv="factor_fit", caption="fit"))
    parts.append(_table_html(result.decomposition, csv="factor_decomposition",
                             caption="effect decomposition"))
    if result.diagnostics:
        parts.append(_dict_table(result.diagnostics, title="spatial diagnostics (spreg)"))
    parts.append("<p class='note'>Methods and assumptions of each model: docs/factors.md.</p>")
    parts.append("</section>")
    return "".join(parts)


def render_factors_html(result: Any, figures: Mapping[str, bytes] | None = None) -> str:
    """A self-contained page holding only the location-factor section."""
    title = "Incubator location factors 孵化器区位因素"
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>\n"
            f"<header><h1>{_esc(title)}</h1></header>\n"
            f"{factors_section_html(result, figures)}\n</body></html>\n")
