"""The report folder of ``incubloc report --example nanjing``.

The full Nanjing report is built once per session (module-scoped fixture) and checked
file by file: the HTML parses and is self-contained, GeoTIFFs open with rasterio,
GeoPackage layers open, JSON keys are present, and a rerun from the written
``config.toml`` gives byte-identical tables. Chinese text is checked twice: glyphs
rendered with the CJK font differ from character to character (a missing glyph renders
as the same box for every character), and the page renders in headless Chromium.

The example notebook is executed headless: with ``nbclient`` when it is installed,
otherwise its code cells run in order with ``exec`` in one fresh namespace (which is
what a kernel does, minus rich display).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from incubloc.config import resolve_config
from incubloc.errors import InputError
from incubloc.shells import plot
from incubloc.shells.report import build_report, describe_test, fmt, fmt_p, render_html, save_figure

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "nanjing.ipynb"
STATS_KEYS = ("tier_relation", "province_ratio", "density_gradient", "opening_sequence",
              "ring_edge", "clark_evans", "ripley", "global_moran", "join_counts", "preference",
              "relation_agreement", "layout_agreement")


# ------------------------------------------------------------------ fixtures
# Fewer Monte-Carlo draws than the defaults keep the two full runs of this module quick;
# every step of the report still runs.
QUICK = """
[stats]
permutations = 99
n_sim = 19
ring_edge_sim = 99
"""


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """``incubloc report quick.toml --example nanjing -o DIR`` through the command line."""
    from incubloc.shells.cli import main

    base = tmp_path_factory.mktemp("report")
    (base / "quick.toml").write_text(QUICK, encoding="utf-8")
    out = base / "nanjing"
    assert main(["-q", "report", str(base / "quick.toml"), "--example", "nanjing",
                 "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def html_text(report_dir) -> str:
    return (report_dir / "report.html").read_text(encoding="utf-8")


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []

    _VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a)
        for key in ("href", "src"):
            if a.get(key) and tag != "img":
                self.links.append(a[key])
        if tag not in self._VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self._VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def parsed(html_text) -> _Collector:
    p = _Collector()
    p.feed(html_text)
    p.close()
    return p


# ------------------------------------------------------------------ the folder
def test_report_folder_has_every_file(report_dir):
    for name in ("report.html", "layers.gpkg", "stats.json", "config.toml", "provenance.json"):
        assert (report_dir / name).is_file(), name
        assert (report_dir / name).stat().st_size > 0, name
    tables = {p.stem for p in (report_dir / "tables").glob("*.csv")}
    assert {"ring_table", "region_city", "relation_by_city", "layout_by_city"} <= tables
    assert list((report_dir / "density").glob("*.tif"))
    for spec in plot.FIGURES:
        f = report_dir / "figures" / f"{spec.name}.png"
        assert f.is_file() and f.stat().st_size > 1000, f
    # [report] svg = "none" (the default): PNG only; "small"/"all" in test_speed.py
    assert not list((report_dir / "figures").glob("*.svg"))


def test_html_parses_and_is_self_contained(parsed, html_text):
    assert not parsed.errors, parsed.errors[:5]
    assert not parsed.stack, f"unclosed tags {parsed.stack}"
    assert {"summary", "region", "rings", "relation", "layout", "statistics", "methods",
            "provenance"} <= parsed.ids
    assert len(parsed.imgs) == len(plot.FIGURES)
    from PIL import Image

    for img in parsed.imgs:
        src = img.get("src") or ""
        assert src.startswith("data:image/png;base64,"), src[:40]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert len(data) > 1000
        with Image.open(io.BytesIO(data)) as im:
            assert im.size[0] > 100 and im.size[1] > 100
    # No network: no absolute URL anywhere a browser would fetch it.
    assert not re.search(r"""(src|href)\s*=\s*['"]?\s*(https?:)?//""", html_text, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html_text, re.I)
    for link in parsed.links:
        assert link.startswith(("#", "tables/", "figures/")) or link == "interactive.html", link


def test_html_states_findings_with_numbers_and_tests(parsed, report_dir):
    import pandas as pd
    from scipy.stats import spearmanr

    text = " ".join(" ".join(parsed.text).split())
    rt = pd.read_csv(report_dir / "tables" / "ring_table.csv")
    nj = rt[rt["city"] == "Nanjing"].set_index("ring").reindex(
        ["core", "inner_suburb", "outer_suburb"]).dropna(subset=["density_100km2"])
    arrow = " → ".join(fmt(v, 3) for v in nj["density_100km2"])
    rho = spearmanr(np.arange(len(nj)), nj["density_100km2"].to_numpy())[0]
    assert f"{arrow} incubators per 100 km²" in text
    assert f"Spearman ρ = {fmt(rho, 2)}" in text
    # Shares of relation types, recomputed from the classified layer.
    import geopandas as gpd

    inc = gpd.read_file(report_dir / "layers.gpkg", layer="incubators")
    n_pip = int((inc["relation"] == "park_in_park").sum())
    assert f"park-in-park 园中园型 {100 * n_pip / len(inc):.0f} % ({n_pip})" in text
    assert "Methods and parameters" in text and "seed" in text


def test_geotiffs_open_with_rasterio(report_dir):
    import rasterio

    for tif in sorted((report_dir / "density").glob("*.tif")):
        with rasterio.open(tif) as src:
            assert src.crs is not None and src.crs.is_projected
            band = src.read(1, masked=True)
            assert band.shape[0] > 1 and band.shape[1] > 1
            assert np.isfinite(band.compressed()).all() and band.max() > 0


def test_geopackage_layers_open(report_dir):
    import geopandas as gpd
    import pyogrio

    layers = {row[0] for row in pyogrio.list_layers(report_dir / "layers.gpkg")}
    assert {"incubators", "rings", "hosts"} <= layers
    inc = gpd.read_file(report_dir / "layers.gpkg", layer="incubators")
    assert len(inc) == 200
    assert {"ring", "relation", "layout", "city", "level"} <= set(inc.columns)
    grids = [name for name in layers if name.startswith("grid")]
    assert grids
    g = gpd.read_file(report_dir / "layers.gpkg", layer=grids[0])
    assert {"count", "lisa_cluster", "hotspot"} <= set(g.columns)


def test_json_files_have_their_keys(report_dir):
    stats = json.loads((report_dir / "stats.json").read_text(encoding="utf-8"))
    missing = [k for k in STATS_KEYS if k not in stats]
    assert not missing, missing
    prov = json.loads((report_dir / "provenance.json").read_text(encoding="utf-8"))
    assert {"incubloc_version", "dependencies", "inputs", "parameters", "seed"} <= set(prov)
    assert all(v["sha256"] and len(v["sha256"]) == 64
               for v in prov["inputs"].values() if v["path"])
    from incubloc.config import load_config

    cfg = load_config(report_dir / "config.toml")
    assert cfg["stats"]["seed"] == prov["seed"]
    # the KDE's resolved bandwidth and its kernel's standard deviation (quartic: h / √8)
    dens = prov["density"]
    assert dens["bandwidth_rule"] == cfg["density"]["bandwidth"] == "scott"
    assert dens["kernel_sd_m"] == pytest.approx(dens["bandwidth_m"] / np.sqrt(8))
    for key in ("ripley_inhom", "clark_evans"):
        assert key in stats
    assert stats["ripley"]["null"] == "csr" and stats["ripley_inhom"]["null"] == "inhomogeneous"


def test_rerun_from_written_config_is_byte_identical(report_dir, tmp_path):
    from incubloc.shells.cli import main

    again = tmp_path / "again"
    assert main(["-q", "report", str(report_dir / "config.toml"), "-o", str(again)]) == 0
    first = sorted(p.name for p in (report_dir / "tables").glob("*.csv"))
    assert first == sorted(p.name for p in (again / "tables").glob("*.csv"))
    for name in first:
        assert (report_dir / "tables" / name).read_bytes() == (again / "tables" / name).read_bytes(), name
    for svg in (report_dir / "figures").glob("*.svg"):
        assert svg.read_bytes() == (again / "figures" / svg.name).read_bytes(), svg.name


def test_existing_folder_is_refused_without_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    cfg = resolve_config({"input": {"example": "nanjing"}})
    with pytest.raises(InputError, match=r"out.*--overwrite"):
        build_report(cfg, out)
    assert (out / "keep.txt").read_text() == "x"


# ------------------------------------------------------------------ pieces without a run
def test_svg_and_png_are_reproducible(tmp_path):
    from matplotlib.figure import Figure

    def draw():
        fig = Figure(figsize=(3, 2))
        ax = fig.add_subplot()
        ax.plot([0, 1, 2], [1, 0, 2], label="Nanjing")
        ax.legend()
        return fig

    a = save_figure(draw(), tmp_path / "a")
    b = save_figure(draw(), tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert b"<dc:date>" not in a[1].read_bytes()


def _cl_figure():
    """A constrained-layout figure with what the report's figures hold."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot([0, 1, 2], [1, 0, 2], label="南京市 Nanjing")
    left.set_title("Rings 圈层")
    left.legend(loc="best")
    im = right.imshow(np.arange(12.0).reshape(3, 4))
    right.set_aspect("equal")
    fig.colorbar(im, ax=right, label="incubators per km²")
    inset = right.inset_axes([0.6, 0.6, 0.35, 0.35])
    inset.plot([0, 1], [1, 0])
    fig.suptitle("A long suptitle that sets the width of the tight box " * 2)
    return fig


def test_png_has_the_pixels_of_a_tight_savefig(tmp_path):
    # save_figure lays a constrained-layout figure out once and writes its own PNG:
    # the pixels must be Matplotlib's savefig(bbox_inches="tight") ones, and the
    # figure must be left as it was (layout engine, resolution, canvas).
    import numpy as np
    from matplotlib.layout_engine import ConstrainedLayoutEngine
    from PIL import Image

    from incubloc.shells.plot import style

    with style():  # as the report's figure functions draw
        fig, other = _cl_figure(), _cl_figure()
    engine, dpi, canvas = fig.get_layout_engine(), fig.dpi, fig.canvas
    (png,) = save_figure(fig, tmp_path / "fast", svg=False)
    assert fig.get_layout_engine() is engine and isinstance(engine, ConstrainedLayoutEngine)
    assert fig.dpi == dpi and fig.canvas is canvas
    ref = tmp_path / "ref.png"
    with style():  # as save_figure saves
        other.savefig(ref, dpi=150, bbox_inches="tight", facecolor="white")
    got, want = Image.open(png), Image.open(ref)
    assert got.size == want.size
    assert np.array_equal(np.asarray(got), np.asarray(want))
    assert got.info["dpi"] == pytest.approx(want.info["dpi"])


def test_png_bytes_round_trip_and_checks_its_input():
    import io

    import numpy as np
    from PIL import Image

    from incubloc.shells.report import png_bytes

    rgba = np.random.default_rng(3).integers(0, 256, (37, 53, 4), dtype=np.uint8)
    back = Image.open(io.BytesIO(png_bytes(rgba, dpi=96)))
    assert back.mode == "RGBA" and back.size == (53, 37)
    assert np.array_equal(np.asarray(back), rgba)  # rows not swapped, channels in order
    assert back.info["dpi"] == pytest.approx((96, 96), abs=0.05)
    with pytest.raises(ValueError, match="RGBA"):
        png_bytes(rgba[..., :3])
    with pytest.raises(ValueError, match="RGBA"):
        png_bytes(rgba.astype(np.uint16))


def test_describe_test_formats_statistics():
    assert describe_test({"method": "KS", "D": 0.25, "p": 0.0312}) == "KS: D = 0.25, p = 0.031"
    assert describe_test({"kappa": 0.8123, "p_sim": 0.0004}) == "Cohen's κ = 0.812, p < 0.001"
    assert describe_test("nothing") == ""


def test_gradient_line_reports_rate_ratio_with_ci(parsed, report_dir):
    import pandas as pd

    sm = pytest.importorskip("statsmodels.api")
    text = " ".join(" ".join(parsed.text).split())
    rt = pd.read_csv(report_dir / "tables" / "ring_table.csv")
    nj = rt[rt["city"] == "Nanjing"].set_index("ring").reindex(
        ["core", "inner_suburb", "outer_suburb"]).dropna(subset=["area_km2"])
    # The Poisson log-linear trend of the ring counts with a log-area offset,
    # fitted independently with statsmodels; quasi-Poisson interval (Pearson
    # dispersion, t quantiles), as the counts are overdispersed.
    X = sm.add_constant(np.arange(1.0, len(nj) + 1))
    fit = sm.GLM(nj["count"].to_numpy(float), X, family=sm.families.Poisson(),
                 offset=np.log(nj["area_km2"].to_numpy(float))).fit(scale="X2", use_t=True)
    lo, hi = np.exp(fit.conf_int()[1])
    want = (f"density changes by a factor {fmt(np.exp(fit.params[1]), 3)} per ring outward "
            f"(95 % CI {fmt(lo, 3)}–{fmt(hi, 3)}")
    assert want in text
    assert "quasi-Poisson interval: Pearson χ²/df = 14.4" in text
    assert "Spearman ρ = −1 over the 3 ring densities describes the order only" in text


def test_ring_edge_sentence_states_the_direction(parsed, report_dir):
    text = " ".join(" ".join(parsed.text).split())
    edge = json.loads((report_dir / "stats.json").read_text(encoding="utf-8"))["ring_edge"]
    farther = edge["observed_mean"] > edge["expected_mean"]
    assert edge["direction"] == ("farther" if farther else "closer")
    if farther:
        assert "incubators lie farther from the outer edge of their ring (towards the core)" in text
        p = edge["p_sim_farther"]
    else:
        assert "incubators lie closer to the outer edge of their ring than" in text
        p = edge["p_sim_closer"]
    assert f"Monte-Carlo one-sided {fmt_p(p)} for '{edge['direction']}'" in text
    assert "not closer to the edge" not in text


def test_point_pattern_sentences_name_their_nulls(parsed):
    text = " ".join(" ".join(parsed.text).split())
    assert "against homogeneous CSR" in text and "inhomogeneous Poisson" in text
    assert "global MAD envelope test" in text
    assert "not a cluster size" in text and "clustering is strongest" not in text
    assert "Donnelly edge correction)" not in text
    assert "Placebo (安慰剂)" in text


def test_render_html_on_a_stand_in_lists_skipped_figures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_plot_standin", Path(__file__).with_name("test_plot.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    study = mod.make_study(with_stats=False)
    figs = {"counts_by_city": plot.fig_counts_by_city(study), "kde": "not drawn: no surface"}
    page = render_html(study, figs, embed_font=False)
    p = _Collector()
    p.feed(page)
    assert not p.errors and len(p.imgs) == 1
    assert "kde — not drawn: no surface" in page
    # Nanjing's density 1.9 → 0.4 → 0.05 falls: ρ = −1 by ranks.
    assert "1.9 → 0.4 → 0.05 incubators per 100 km²" in page
    assert "Spearman ρ = −1" in page


# ------------------------------------------------------------------ Chinese glyphs
def _render(text: str, family: str) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(0.6 * max(len(text), 1), 0.8), dpi=100)
    FigureCanvasAgg(fig)
    fig.text(0.02, 0.2, text, family=family, fontsize=28)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., 0].copy()


def test_cjk_font_renders_chinese_not_tofu():
    import warnings

    from incubloc._fonts import SAMPLE, cjk_font, has_glyphs

    assert has_glyphs(SAMPLE), "the CJK font lacks glyphs of the circle's place names"
    fam = cjk_font().get_name()
    text = "南京都市圈"
    cjk = _render(text, fam)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DejaVu warns about every missing glyph
        dejavu = _render(text, "DejaVu Sans")
        dejavu_chars = [_render(ch, "DejaVu Sans") for ch in text]
    assert not np.array_equal(cjk, dejavu)
    assert (cjk < 128).sum() > 200  # ink
    chars = [_render(ch, fam) for ch in text]
    # Five distinct characters give five distinct bitmaps; tofu gives one box five times.
    assert len({c.tobytes() for c in chars}) == len(text)
    assert len({c.tobytes() for c in dejavu_chars}) == 1


def test_figures_use_the_cjk_font_for_place_names():
    import importlib.util

    from matplotlib import font_manager
    from matplotlib.text import Text

    from incubloc._fonts import has_glyphs

    spec = importlib.util.spec_from_file_location("_plot_standin", Path(__file__).with_name("test_plot.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fig = plot.fig_counts_by_city(mod.make_study(with_stats=False))
    labels = [t for t in fig.findobj(Text) if "南京" in t.get_text()]
    assert labels
    path = font_manager.findfont(labels[0].get_fontproperties(), fallback_to_default=False)
    assert has_glyphs("南京", path=path)


# ------------------------------------------------------------------ headless Chromium
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt when absent and we are root."""
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if exe:
        return exe
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True, env=env,
                       timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True,
                       capture_output=True, env=env, timeout=1200)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"could not install chromium with apt-get: {exc}")
    exe = shutil.which("chromium")
    if not exe:
        pytest.skip("apt-get installed no chromium executable")
    return exe


def _chromium(exe: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(chromium, report_dir, html_text, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    _chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,4000",
              (report_dir / "report.html").as_uri())
    assert shot.is_file(), "chromium wrote no screenshot"
    with Image.open(shot) as im:
        px = np.asarray(im.convert("L"), dtype=float)
    assert px.shape == (4000, 1280)
    assert px.std() > 20, "the screenshot is blank"
    assert (px < 200).mean() > 0.02
    # Every image decoded in the browser: a copy of the page reports it in its DOM.
    probe = tmp_path / "probe.html"  # images are data URIs: the page works from anywhere
    script = ("<script>window.addEventListener('load',()=>{const i=[...document.images];"
              "document.body.setAttribute('data-probe',i.length+':'+i.filter(x=>x.complete&&"
              "x.naturalWidth>0).length);});</script></body>")
    probe.write_text(html_text.replace("</body>", script), encoding="utf-8")
    dom = _chromium(chromium, tmp_path, "--dump-dom", "--virtual-time-budget=5000",
                    probe.as_uri()).stdout
    m = re.search(r'data-probe="(\d+):(\d+)"', dom)
    assert m, "the probe did not run"
    total, loaded = int(m.group(1)), int(m.group(2))
    assert total == len(plot.FIGURES) and loaded == total


# ------------------------------------------------------------------ interactive map
def _map_data(page: str) -> dict:
    m = re.search(r"<script id='incubloc-data' type='application/json'>(.*?)</script>", page, re.S)
    assert m, "interactive.html has no data element"
    return json.loads(m.group(1))


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked the network stack for (Chromium's net log).

    Chromium's own background traffic is also in the log; the page's requests are the
    ones made for a file:// document (its network isolation key).
    """
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    jobs = [e.get("params") or {} for e in log["events"] if e["type"] == start]
    return [p["url"] for p in jobs
            if str(p.get("network_isolation_key", "")).startswith("file://")
            and not str(p.get("url", "file:")).startswith(("file:", "data:"))]


# Runs after the page's own scripts: counts what is drawn, toggles layers and the
# colour switch through the real controls, and writes the results into the DOM.
_PROBE = """<script>window.addEventListener('load',()=>{setTimeout(()=>{
const paths=()=>document.querySelectorAll('.leaflet-overlay-pane path').length;
const box=name=>[...document.querySelectorAll('.leaflet-control-layers-overlays label')]
  .find(l=>l.textContent.includes(name)).querySelector('input');
const r={errors:window.__errors,start:paths()};
box('Rings').click(); r.rings_off=paths();
box('LISA clusters').click(); r.lisa_on=paths();
document.querySelector('input[name=ib-colour][value=relation]').click();
r.fills=window.incubloc.markers.map(m=>[m.incublocRow[2],m.options.fillColor]);
r.legend=document.querySelector('.leaflet-bottom.leaflet-right .ib-box').textContent;
r.resources=performance.getEntriesByType('resource').map(e=>e.name);
document.body.setAttribute('data-probe',JSON.stringify(r));},0);});</script></body>"""
_CATCH = ("<head><script>window.__errors=[];addEventListener('error',e=>__errors.push(String("
          "e.message)));document.addEventListener('securitypolicyviolation',e=>__errors.push("
          "'blocked '+e.blockedURI));for(const k of ['error','warn'])console[k]=function(){"
          "__errors.push([...arguments].join(' '))};</script>")


def _probe_result(dom: str) -> dict:
    import html as _html

    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, "the probe did not run"
    return json.loads(_html.unescape(m.group(1)))


def test_interactive_map_holds_every_incubator_once_with_its_classes(report_dir):
    import geopandas as gpd

    data = _map_data((report_dir / "interactive.html").read_text(encoding="utf-8"))
    cols = data["incubators"]["columns"]
    rows = {r[cols.index("id")]: dict(zip(cols, r, strict=True)) for r in data["incubators"]["rows"]}
    inc = gpd.read_file(report_dir / "layers.gpkg", layer="incubators")
    assert len(rows) == len(data["incubators"]["rows"]) == len(inc)  # ids unique, none lost
    for rec in inc.itertuples():
        row = rows[rec.id]
        for k in ("name", "level", "city", "ring", "relation", "layout", "reason"):
            assert row[k] == getattr(rec, k), (rec.id, k)
        assert abs(row["lon"] - rec.geometry.x) < 1e-5 and abs(row["lat"] - rec.geometry.y) < 1e-5


@pytest.mark.slow
def test_interactive_map_works_offline_in_headless_chromium(chromium, report_dir, html_text,
                                                           tmp_path):
    page_path = report_dir / "interactive.html"
    assert "href='interactive.html'" in html_text
    page = page_path.read_text(encoding="utf-8")
    data = _map_data(page)
    # 1. The page as written: no console message at all (errors, CSP refusals).
    run = _chromium(chromium, tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom",
                    "--virtual-time-budget=5000", page_path.as_uri())
    assert "leaflet-container" in run.stdout
    console = [ln for ln in run.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == []
    # 2. A copy without its Content-Security-Policy, so that nothing is blocked before
    # the network: the net log holds no request made by the page.
    assert "Content-Security-Policy" in page
    bare = re.sub(r"<meta http-equiv='Content-Security-Policy'[^>]*>", "", page)
    probe = tmp_path / "probe.html"
    probe.write_text(bare.replace("<head>", _CATCH, 1).replace("</body>", _PROBE),
                     encoding="utf-8")
    netlog = tmp_path / "net.json"
    run = _chromium(chromium, tmp_path, "--dump-dom", "--virtual-time-budget=8000",
                    f"--log-net-log={netlog}", probe.as_uri())
    r = _probe_result(run.stdout)
    assert r["errors"] == [] and r["resources"] == []
    assert _page_requests(netlog) == []
    # 3. What is drawn: one path per feature of the layers shown at start plus one per
    # incubator; the Rings toggle removes exactly the rings, the LISA toggle adds its cells.
    layers = {ly["name"]: ly for ly in data["layers"]}
    shown = sum(len(ly["features"]) for ly in data["layers"] if ly["on"])
    n_inc = len(data["incubators"]["rows"])
    assert n_inc == 200 and r["start"] == shown + n_inc
    assert r["start"] - r["rings_off"] == len(layers["Rings 圈层"]["features"]) > 0
    lisa = next(ly for ly in data["layers"] if ly["id"].endswith(":lisa_cluster"))
    assert r["lisa_on"] - r["rings_off"] == len(lisa["features"]) > 0
    # 4. The colour switch recolours every incubator by its own relation class.
    import geopandas as gpd

    inc = gpd.read_file(report_dir / "layers.gpkg", layer="incubators").set_index("id")
    palette = data["classes"]["relation"]["colours"]
    fills = dict(r["fills"])
    assert set(fills) == set(inc.index)
    assert all(fills[i] == palette[inc.loc[i, "relation"]] for i in inc.index)
    assert "relation" in r["legend"] and "LISA" in r["legend"]


@pytest.mark.slow
def test_interactive_map_basemap_tiles_are_the_only_requests(chromium, tmp_path):
    """The control for the test above: with a (local) basemap the same net-log reading
    sees the tile requests, which the page's policy lets through."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from types import SimpleNamespace

    import geopandas as gpd

    from incubloc.shells.webmap import write_interactive_map

    hits: list[str] = []
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9Q"
                           "DwADhgGAWjR9awAAAABJRU5ErkJggg==")

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        inc = gpd.GeoDataFrame({"id": ["a", "b"], "level": ["national", "municipal"]},
                               geometry=gpd.points_from_xy([118.78, 118.9], [32.05, 32.1]),
                               crs=4326)
        url = f"http://127.0.0.1:{server.server_port}/{{z}}/{{x}}/{{y}}.png"
        page = write_interactive_map(SimpleNamespace(incubators=inc), tmp_path / "m.html",
                                     basemap=url)
        netlog = tmp_path / "net.json"
        run = _chromium(chromium, tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom",
                        "--virtual-time-budget=5000", f"--log-net-log={netlog}", page.as_uri())
    finally:
        server.shutdown()
    assert [ln for ln in run.stderr.splitlines() if ":CONSOLE" in ln] == []
    assert hits and all(re.fullmatch(r"/\d+/\d+/\d+\.png", h) for h in hits)
    requested = _page_requests(netlog)
    assert requested and all(u.startswith(url.split("{")[0]) for u in requested)


# ------------------------------------------------------------------ notebook
def _run_notebook(path: Path, cwd: Path) -> None:
    try:
        import nbclient
        import nbformat
    except ImportError:
        nb = json.loads(path.read_text(encoding="utf-8"))
        namespace: dict = {"__name__": "__main__"}
        old = Path.cwd()
        os.chdir(cwd)
        try:
            for i, cell in enumerate(nb["cells"]):
                if cell["cell_type"] != "code":
                    continue
                src = "".join(cell["source"])
                code = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
                exec(compile(code, f"{path.name}[cell {i}]", "exec"), namespace)
        finally:
            os.chdir(old)
        return
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}).execute()


def test_example_notebook_runs_headless(tmp_path):
    assert NOTEBOOK.is_file()
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "load_example" in code and "plot.fig_" in code
    assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    _run_notebook(NOTEBOOK, tmp_path)
