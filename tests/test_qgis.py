"""The QGIS Processing provider, run in a real headless QGIS (Debian's QGIS 3.22).

Every algorithm runs through ``/usr/bin/qgis_process.bin --json run`` in a subprocess
on the bundled Nanjing data, and its outputs are compared with the Python API run in
this process on the same inputs. ``processing.run`` is exercised in a standalone
PyQGIS process (tests/qgis_helpers/standalone_run.py). The last test runs the rest
of the suite on QGIS's older stack (numpy 1.24, pandas 2.3, geopandas 1.1).

Set-up: when QGIS or its venv is missing, ``scripts/setup_qgis_env.sh`` installs them
(root on Debian/Ubuntu only; otherwise the tests are skipped with the reason).
``INCUBLOC_SKIP_QGIS=1`` skips these tests; ``INCUBLOC_IN_QGIS_VENV=1`` marks the
inner run inside the venv (no recursion).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN_ROOT = REPO / "qgis_plugin"
SETUP = REPO / "scripts" / "setup_qgis_env.sh"
QGIS_PROCESS = Path("/usr/bin/qgis_process.bin")
VENV = Path(os.environ.get("INCUBLOC_QGIS_VENV") or Path.home() / ".cache" / "incubloc-qgis-venv")
PROVIDER = "incubloc"
ALGORITHMS = {
    "incubloc:classify",
    "incubloc:ringstatistics",
    "incubloc:spatialstatistics",
    "incubloc:kerneldensity",
    "incubloc:studyareafromosm",
    "incubloc:report",
}
LABELS = ("city", "province", "settlement", "tier", "zone", "ring", "ring_city",
          "relation", "host_id", "host_kind", "layout")

pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- helpers
SUITE_TEST = "test_suite_passes_on_qgis_stack"


@dataclass
class Qgis:
    """A ready headless QGIS: environment, venv python and how to call qgis_process."""

    env: dict[str, str]
    python: Path
    suite: subprocess.Popen | None = None  # the inner run of the suite, started early
    suite_log: Path | None = None

    def start_suite(self, log: Path) -> None:
        """Run the rest of the suite in the venv, in the background (see SUITE_TEST)."""
        env = {k: v for k, v in self.env.items() if k != "PYTHONWARNINGS"}
        env["INCUBLOC_IN_QGIS_VENV"] = "1"
        self.suite_log = log
        with log.open("wb") as fh:
            self.suite = subprocess.Popen(
                [str(self.python), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                 "tests", "--ignore=tests/test_qgis.py"],
                cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT,
            )

    def process(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(QGIS_PROCESS), *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, cwd=self.env["XDG_RUNTIME_DIR"],
        )

    def run(self, algorithm: str, **params: object) -> subprocess.CompletedProcess:
        """``qgis_process.bin --json run ALG -- NAME=value ...``."""
        args = [f"{k}={v}" for k, v in params.items() if v is not None]
        return self.process("--json", "run", algorithm, "--", *args)

    def results(self, algorithm: str, **params: object) -> dict:
        """Run and return the ``results`` of a successful run."""
        proc = self.run(algorithm, **params)
        assert proc.returncode == 0, f"{algorithm} failed (rc {proc.returncode}):\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        return json.loads(proc.stdout)["results"]


def _qgis_skip_reason() -> str | None:
    if os.environ.get("INCUBLOC_IN_QGIS_VENV") == "1":
        return "inner run of the suite inside the QGIS venv"
    if os.environ.get("INCUBLOC_SKIP_QGIS") == "1":
        return "INCUBLOC_SKIP_QGIS=1"
    if platform.system() != "Linux":
        return "the headless QGIS tests run on Debian/Ubuntu only (see docs/qgis.md)"
    return None


def _can_install() -> str | None:
    """Why QGIS cannot be installed here, or None."""
    if shutil.which("apt-get") is None or not Path("/etc/debian_version").exists():
        return "QGIS is not installed and the set-up script needs Debian/Ubuntu (apt-get)"
    if os.geteuid() != 0:
        return "QGIS is not installed and installing it needs root (scripts/setup_qgis_env.sh)"
    return None


@pytest.fixture(scope="session")
def qgis(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    reason = _qgis_skip_reason()
    if reason:
        pytest.skip(reason)
    present = QGIS_PROCESS.exists() and (VENV / "bin" / "python").exists()
    if not QGIS_PROCESS.exists() and _can_install():
        pytest.skip(_can_install())
    if not present or os.geteuid() == 0:
        # Idempotent: a second call only checks the venv (well under a second).
        env = dict(os.environ, INCUBLOC_QGIS_VENV=str(VENV))
        proc = subprocess.run(["bash", str(SETUP)], env=env, capture_output=True, text=True,
                              timeout=1800)
        if proc.returncode != 0:
            message = f"scripts/setup_qgis_env.sh failed:\n{proc.stdout}\n{proc.stderr}"
            if os.geteuid() != 0:  # e.g. Debian's -dev packages missing and no root
                pytest.skip(message)
            pytest.fail(message)

    base = tmp_path_factory.mktemp("qgis")
    runtime = base / "runtime"
    runtime.mkdir(mode=0o700)
    config = base / "config"
    (config / "profiles" / "default" / "QGIS").mkdir(parents=True)
    (config / "profiles" / "default" / "QGIS" / "QGIS3.ini").write_text(
        "[PythonPlugins]\nincubloc_qgis=true\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYENV_VERSION")}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        XDG_RUNTIME_DIR=str(runtime),
        QGIS_CUSTOM_CONFIG_PATH=str(config),
        QGIS_PLUGINPATH=str(PLUGIN_ROOT),
        VIRTUAL_ENV=str(VENV),
        PATH=f"{VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    q = Qgis(env, VENV / "bin" / "python")
    if any(item.name == SUITE_TEST for item in request.session.items):
        # The inner run takes as long as everything else here: overlap the two.
        q.start_suite(base / "suite.log")
    yield q
    if q.suite is not None and q.suite.poll() is None:
        q.suite.kill()
        q.suite.wait()


@pytest.fixture(scope="session")
def data() -> dict[str, Path]:
    from incubloc import datasets

    paths = {
        "incubators": datasets.nanjing_incubators_path(),
        "sites": datasets.nanjing_sites_path(),
        "study_area": datasets.nanjing_study_area_path(),
    }
    for name, path in paths.items():
        if not Path(path).exists():
            pytest.skip(f"bundled {name} file {path} is missing")
    return {k: Path(v) for k, v in paths.items()}


def _csv_columns(path: Path) -> tuple[str, str]:
    from incubloc.io import LAT_NAMES, LON_NAMES

    header = path.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    lon = next(c for c in header if c.strip().lower() in LON_NAMES)
    lat = next(c for c in header if c.strip().lower() in LAT_NAMES)
    return lon, lat


@pytest.fixture(scope="session")
def incubators_uri(data: dict[str, Path]) -> str:
    """The bundled CSV as QGIS opens it: a delimited-text layer (GCJ-02 lon/lat)."""
    lon, lat = _csv_columns(data["incubators"])
    return (f"delimitedtext://file://{data['incubators']}?type=csv&xField={lon}&yField={lat}"
            "&crs=EPSG:4326&encoding=UTF-8&detectTypes=yes&geomType=point")


@pytest.fixture(scope="session")
def api(data: dict[str, Path]):
    """The Python API on the same inputs, in this (the normal test) environment."""
    from incubloc.config import resolve_config
    from incubloc.io import read_incubators, read_sites
    from incubloc.studyarea import load_study_area
    from incubloc.workflow import classify_with_config

    cfg = resolve_config({"input": {"coords": "gcj02"}})
    inc = read_incubators(data["incubators"], coords="gcj02")
    sites = read_sites(data["sites"], incubator_ids=inc["id"])
    sa = load_study_area(data["study_area"])
    result = classify_with_config(inc, sa, sites=sites, config=cfg)
    return {"config": cfg, "incubators": inc, "sites": sites, "study_area": sa,
            "classification": result}


def _read(path: str | Path, layer: str | None = None):
    import geopandas as gpd
    import pyogrio

    path = str(path).split("|")[0]
    info = pyogrio.read_info(path, layer=layer)
    if info.get("geometry_type") is None:
        return pyogrio.read_dataframe(path, layer=layer, read_geometry=False)
    return gpd.read_file(path, layer=layer)


def _labels(df, cols=LABELS):
    import pandas as pd

    out = pd.DataFrame({c: df[c] for c in cols if c in df})
    return out.astype(object).where(out.notna(), "").astype(str).reset_index(drop=True)


def _assert_same_labels(qgis_df, api_df, cols=LABELS):
    import pandas as pd

    assert len(qgis_df) == len(api_df)
    q = qgis_df.assign(id=qgis_df["id"].astype(str)).sort_values("id")
    a = api_df.assign(id=api_df["id"].astype(str)).sort_values("id")
    assert q["id"].tolist() == a["id"].tolist()
    pd.testing.assert_frame_equal(_labels(q, cols), _labels(a, cols))


def _system_versions() -> tuple[str, str, str]:
    """GEOS, PROJ and GDAL versions of the system's (Debian's) development packages."""

    def out(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    return (out("geos-config", "--version").split("-")[0],
            out("pkg-config", "--modversion", "proj"), out("gdal-config", "--version"))


def _bad_run(qgis: Qgis, algorithm: str, expected: str, **params) -> str:
    proc = qgis.run(algorithm, **params)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    assert expected in proc.stderr, proc.stderr
    return proc.stderr


# ----------------------------------------------------------------------------- packaging
def test_package_zip(tmp_path: Path) -> None:
    import importlib.util
    import zipfile

    from incubloc import __version__

    spec = importlib.util.spec_from_file_location("package_qgis_plugin",
                                                  REPO / "scripts" / "package_qgis_plugin.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = mod.build_zip(tmp_path)
    assert path.name == f"incubloc_qgis-{__version__}.zip"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        meta = zf.read("incubloc_qgis/metadata.txt").decode("utf-8")
    assert {"incubloc_qgis/__init__.py", "incubloc_qgis/provider.py",
            "incubloc_qgis/algorithms.py", "incubloc_qgis/metadata.txt",
            "incubloc_qgis/icon.svg"} <= set(names)
    assert all(n.startswith("incubloc_qgis/") and "__pycache__" not in n for n in names)
    assert "hasProcessingProvider=yes" in meta
    assert f"version={__version__}" in meta
    # Reproducible: the same sources give the same bytes.
    first = path.read_bytes()
    assert mod.build_zip(tmp_path).read_bytes() == first


# ----------------------------------------------------------------------------- the stack
def test_qgis_python_uses_debian_libraries(qgis: Qgis) -> None:
    """QGIS's Python (the venv) links shapely/pyproj/pyogrio to Debian's GEOS/PROJ/GDAL."""
    code = r"""
import json, re, sys
import qgis.core  # loads Debian's GEOS / PROJ / GDAL first, as QGIS does
import numpy, shapely, pyproj, pyogrio, rasterio, pandas, geopandas
from shapely.geometry import Point
assert Point(0, 0).buffer(1).area > 3.1
pyproj.Transformer.from_crs(4326, 32650, always_xy=True).transform(118.8, 32.0)
paths = {line.split()[-1] for line in open("/proc/self/maps") if "/" in line}
libs = sorted(p for p in paths
              if re.match(r"lib(geos|proj|gdal)[-_.\w]*\.so", p.rsplit("/", 1)[-1]))
print(json.dumps({
    "geos": list(shapely.geos_version), "proj": pyproj.proj_version_str,
    "gdal_pyogrio": pyogrio.__gdal_version_string__, "gdal_rasterio": rasterio.__gdal_version__,
    "numpy": numpy.__version__, "pandas": pandas.__version__, "geopandas": geopandas.__version__,
    "qgis_geos": qgis.core.Qgis.geosVersion(), "libs": libs,
    "files": [m.__file__ for m in (shapely, pyproj, pyogrio)],
}))
"""
    proc = subprocess.run([str(qgis.python), "-c", code], env=qgis.env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    # The versions of the system libraries QGIS is built on ...
    geos, proj, gdal = _system_versions()
    assert ".".join(map(str, info["geos"])) == geos, info
    assert info["proj"] == proj, info
    assert info["gdal_pyogrio"] == info["gdal_rasterio"] == gdal, info
    assert info["qgis_geos"].startswith(geos), info
    if Path("/etc/debian_version").read_text().startswith("12"):
        # ... which on bookworm are GEOS 3.11, PROJ 9.1, GDAL 3.6, with numpy 1.24.
        assert tuple(info["geos"][:2]) == (3, 11), info
        assert info["proj"].startswith("9.1"), info
        assert info["gdal_pyogrio"].startswith("3.6"), info
        assert info["numpy"].startswith("1.24"), info
    # One copy of each library in the process, all Debian's (no *.libs/ from wheels).
    assert info["libs"], info
    assert all(p.startswith(("/usr/lib/", "/lib/")) for p in info["libs"]), info["libs"]
    assert not any(".libs/" in p for p in info["libs"]), info["libs"]
    for name in ("shapely", "pyproj", "pyogrio"):
        site = Path(next(f for f in info["files"] if f"/{name}/" in f)).parents[1]
        assert not (site / f"{name}.libs").exists(), f"{name} is a PyPI wheel with bundled libs"


def test_provider_lists_all_algorithms(qgis: Qgis) -> None:
    proc = qgis.process("--json", "list")
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert PROVIDER in listing["providers"], (
        f"provider {PROVIDER!r} not loaded; stderr:\n{proc.stderr}")
    provider = listing["providers"][PROVIDER]
    assert set(provider["algorithms"]) == ALGORITHMS
    assert provider["is_active"]
    # QGIS itself runs on the system libraries (the venv's are checked above).
    geos, proj, gdal = _system_versions()
    assert listing["geos_version"].startswith(geos), listing["geos_version"]
    assert listing["gdal_version"] == gdal, listing["gdal_version"]
    assert f"Rel. {proj}," in listing["proj_version"], listing["proj_version"]


# ----------------------------------------------------------------------------- algorithms
def test_classify_matches_api(qgis: Qgis, data, incubators_uri, api, tmp_path: Path) -> None:
    import numpy as np
    import shapely

    from incubloc.classification import OUTPUT_COLUMNS

    out, rings = tmp_path / "classified.gpkg", tmp_path / "city_rings.gpkg"
    res = qgis.results("incubloc:classify", INCUBATORS=incubators_uri, COORDS=1,
                       SITES=data["sites"], STUDY_AREA=data["study_area"],
                       OUTPUT=out, CITY_RINGS=rings)
    expected = api["classification"]
    got = _read(res["OUTPUT"])
    assert set(OUTPUT_COLUMNS) <= set(got.columns)
    assert got.crs.to_epsg() == 4326
    assert len(got) == len(expected.incubators) == res["N_INCUBATORS"]
    _assert_same_labels(got, expected.incubators)
    # The points themselves: WGS84 after the GCJ-02 correction, as the API gives.
    q = got.assign(id=got["id"].astype(str)).sort_values("id")
    a = expected.incubators.assign(id=expected.incubators["id"].astype(str)).sort_values("id")
    for coord in (shapely.get_x, shapely.get_y):
        assert np.abs(coord(q.geometry.values) - coord(a.geometry.values)).max() < 1e-9
    got_rings = _read(res["CITY_RINGS"])
    assert len(got_rings) == len(expected.city_rings)
    assert sorted(got_rings["ring_pattern"].astype(str)) == sorted(
        expected.city_rings["ring_pattern"].astype(str))


def _assert_same_table(got, expected) -> None:
    exp = expected.reset_index(drop=True)
    assert len(got) == len(exp)
    assert list(got.columns) == [str(c) for c in exp.columns]
    for col in exp.columns:
        if pd_is_numeric(exp[col]):
            assert got[col].to_numpy(dtype=float) == pytest.approx(
                exp[col].to_numpy(dtype=float), rel=1e-9, abs=1e-9, nan_ok=True), col
        else:
            assert got[col].astype(str).tolist() == exp[col].astype(str).tolist(), col


def pd_is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def test_ring_statistics_matches_api(qgis: Qgis, data, incubators_uri, api, tmp_path) -> None:
    from incubloc.stats.rings import ring_table

    expected = ring_table(api["classification"].incubators,
                          rings=api["study_area"].get("rings"))
    # From the raw incubators (classified on the way) ...
    res = qgis.results("incubloc:ringstatistics", INCUBATORS=incubators_uri, COORDS=1,
                       SITES=data["sites"], STUDY_AREA=data["study_area"],
                       OUTPUT=tmp_path / "rings.gpkg", RING_POLYGONS=tmp_path / "polys.gpkg")
    _assert_same_table(_read(res["OUTPUT"]), expected)
    polys = _read(res["RING_POLYGONS"])
    assert len(polys) == len(api["study_area"].get("rings"))
    assert int(polys["count"].sum()) == int(expected["count"].sum())
    # ... and from the output of the classify algorithm (its ring / ring_city fields).
    classified = qgis.results("incubloc:classify", INCUBATORS=incubators_uri, COORDS=1,
                              SITES=data["sites"], STUDY_AREA=data["study_area"],
                              OUTPUT=tmp_path / "classified.gpkg")["OUTPUT"]
    res = qgis.results("incubloc:ringstatistics", INCUBATORS=classified, COORDS=0,
                       STUDY_AREA=data["study_area"], OUTPUT=tmp_path / "rings2.gpkg")
    _assert_same_table(_read(res["OUTPUT"]), expected)


def test_kernel_density_matches_api(qgis: Qgis, data, incubators_uri, api, tmp_path) -> None:
    import numpy as np
    import rasterio

    from incubloc.workflow import run_density

    res = qgis.results("incubloc:kerneldensity", INCUBATORS=incubators_uri, COORDS=1,
                       STUDY_AREA=data["study_area"], KERNEL=0, CELL_SIZE=2000,
                       OUTPUT=tmp_path / "kde.tif")
    cfg = {**api["config"], "density": {**api["config"]["density"], "kernel": "quartic",
                                        "cell_size_m": 2000.0}}
    surface = run_density(api["incubators"], api["study_area"], config=cfg,
                          output=tmp_path / "api.tif", inputs={})
    assert res["BANDWIDTH_M"] == pytest.approx(surface.bandwidth_m, rel=1e-9)
    with rasterio.open(res["OUTPUT"]) as got, rasterio.open(tmp_path / "api.tif") as exp:
        assert got.shape == exp.shape
        assert got.crs == exp.crs
        assert got.transform.almost_equals(exp.transform)
        a, b = got.read(1, masked=True), exp.read(1, masked=True)
        assert np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))
        np.testing.assert_allclose(a.compressed(), b.compressed(), rtol=1e-6, atol=1e-12)


def test_study_area_from_osm_matches_api(qgis: Qgis, data, tmp_path) -> None:
    import pyogrio

    from incubloc.osm import add_osm_to_study_area

    osm = REPO / "tests" / "fixtures" / "osm" / "nanjing_sample.osm"
    res = qgis.results("incubloc:studyareafromosm", OSM_FILE=osm, BASE=data["study_area"],
                       LAYERS="0,1", OUTPUT=tmp_path / "area.gpkg")
    expected = tmp_path / "api.gpkg"
    shutil.copyfile(data["study_area"], expected)
    add_osm_to_study_area(expected, osm_file=osm, layers=("hosts", "buildings"))
    got_layers = dict(pyogrio.list_layers(res["OUTPUT"]).tolist())
    exp_layers = dict(pyogrio.list_layers(expected).tolist())
    assert set(got_layers) == set(exp_layers)
    assert set(res["LAYERS_WRITTEN"].split(",")) <= set(got_layers)
    for layer in exp_layers:
        got, exp = _read(res["OUTPUT"], layer), _read(expected, layer)
        assert len(got) == len(exp), layer
        assert list(got.columns) == list(exp.columns), layer
    hosts = _read(res["OUTPUT"], "hosts")
    assert len(hosts) > 0
    assert sorted(hosts["kind"].astype(str)) == sorted(_read(expected, "hosts")["kind"].astype(str))


# Few permutations and one grid scale keep a full study to a few seconds.
FAST_STATS = {"permutations": 99, "n_sim": 19, "cell_sizes_m": [10000.0]}


def test_spatial_statistics_matches_api(qgis: Qgis, data, incubators_uri, tmp_path) -> None:
    import pandas as pd

    from incubloc.config import resolve_config
    from incubloc.workflow import run_study

    res = qgis.results(
        "incubloc:spatialstatistics", INCUBATORS=incubators_uri, COORDS=1, SITES=data["sites"],
        STUDY_AREA=data["study_area"], GRID_CELL_SIZE=10000, GRID_SHAPE=0,
        PERMUTATIONS=FAST_STATS["permutations"], N_SIM=FAST_STATS["n_sim"],
        GRID=tmp_path / "grid.gpkg", POINT_PATTERN=tmp_path / "pp.gpkg",
        MULTISCALE=tmp_path / "ms.gpkg", OUTPUT_FOLDER=tmp_path / "stats",
    )
    grid, pp = _read(res["GRID"]), _read(res["POINT_PATTERN"])
    assert grid.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert res["CELL_SIZE_M"] == 10000

    # 1. The same API in the same (QGIS) Python, through `incubloc stats`: identical,
    #    permutation-based labels included.
    fast = tmp_path / "fast.toml"
    fast.write_text("[stats]\n" + "".join(f"{k} = {v!r}\n" for k, v in FAST_STATS.items()),
                    encoding="utf-8")
    cli = subprocess.run(
        [str(qgis.python), "-m", "incubloc.cli", "-q", "stats", "--example", "nanjing",
         "--config", str(fast), "-o", str(tmp_path / "cli")],
        env=qgis.env, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    same = _read(tmp_path / "cli" / "grid.gpkg")
    assert len(grid) == len(same)
    for col in ("cell_id", "count", "lisa_cluster", "hotspot"):
        assert grid[col].astype(str).tolist() == same[col].astype(str).tolist(), col
    for name in ("point_pattern.csv", "multiscale_moran.csv", "ring_table.csv"):
        assert (tmp_path / "stats" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    stats = json.loads((tmp_path / "stats" / "stats.json").read_text(encoding="utf-8"))
    cli_stats = json.loads((tmp_path / "cli" / "stats.json").read_text(encoding="utf-8"))
    assert stats["global_moran"] == cli_stats["global_moran"]
    assert res["MORAN_I"] == pytest.approx(cli_stats["global_moran"]["I"])
    assert res["MORAN_P"] == pytest.approx(cli_stats["global_moran"]["p_sim"])

    # 2. The API in this (the normal) environment: everything that does not depend on
    #    the permutation engine of the installed esda version.
    cfg = resolve_config({"input": {"example": "nanjing"},
                          "stats": FAST_STATS,
                          "density": {"by_year": False}})
    study = run_study(cfg)
    exp = study.grids["grid"]
    assert len(grid) == len(exp)
    assert grid["cell_id"].tolist() == exp["cell_id"].tolist()
    assert grid["count"].tolist() == exp["count"].tolist()
    assert int(grid["count"].sum()) == 200
    for col in ("lisa_I", "gi_z"):
        assert grid[col].to_numpy(float) == pytest.approx(exp[col].to_numpy(float), abs=1e-9)
    exp_pp = pd.DataFrame(study.tables["point_pattern"])
    assert pp["group"].astype(str).tolist() == exp_pp["group"].astype(str).tolist()
    assert pp["R"].to_numpy(float) == pytest.approx(exp_pp["R"].to_numpy(float), nan_ok=True)
    assert len(_read(res["MULTISCALE"])) == len(study.tables["multiscale_moran"]) == 1
    assert res["MORAN_I"] == pytest.approx(study.tests["global_moran"]["I"])


def test_report_matches_api(qgis: Qgis, api, tmp_path) -> None:
    config = tmp_path / "fast.toml"
    config.write_text(
        "[stats]\n" + "".join(f"{k} = {v!r}\n" for k, v in FAST_STATS.items())
        + "ring_edge_sim = 99\n[density]\nby_year = false\ncell_size_m = 2000.0\n", encoding="utf-8")
    out = tmp_path / "report"
    res = qgis.results("incubloc:report", CONFIG=config, EXAMPLE="true", OUTPUT=out)
    assert Path(res["REPORT"]) == out / "report.html"
    assert (out / "report.html").stat().st_size > 10_000
    for name in ("layers.gpkg", "stats.json", "config.toml", "provenance.json",
                 "density/kde.tif", "tables/ring_table.csv"):
        assert (out / name).exists(), name
    got = _read(out / "layers.gpkg", "incubators")
    _assert_same_labels(got, api["classification"].incubators)
    assert len(_read(out / "layers.gpkg", "grid")) > 0


# ----------------------------------------------------------------------------- bad inputs
def test_polygon_layer_is_refused(qgis: Qgis, data, tmp_path) -> None:
    _bad_run(qgis, "incubloc:classify", "layer 'cities' has polygon geometry; a point layer",
             INCUBATORS=f"{data['study_area']}|layername=cities", STUDY_AREA=data["study_area"],
             OUTPUT=tmp_path / "x.gpkg")


def test_empty_layer_is_refused(qgis: Qgis, data, tmp_path) -> None:
    import geopandas as gpd

    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"id": [], "name": []}, geometry=gpd.GeoSeries([], crs=4326)).to_file(
        empty, layer="incubators", driver="GPKG", geometry_type="Point")
    _bad_run(qgis, "incubloc:classify", "has no features", INCUBATORS=empty,
             STUDY_AREA=data["study_area"], OUTPUT=tmp_path / "x.gpkg")


def test_bad_coordinates_name_the_layer_and_parameter(qgis: Qgis, data, tmp_path) -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    paris = tmp_path / "paris.gpkg"
    gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=[Point(2.35, 48.85), Point(118.8, 32.0)],
                     crs=4326).to_file(paris, layer="paris", driver="GPKG")
    err = _bad_run(qgis, "incubloc:classify", "layer 'paris': 1 row with problems",
                   INCUBATORS=paris, COORDS=1, STUDY_AREA=data["study_area"],
                   OUTPUT=tmp_path / "x.gpkg")
    assert "row 1 (id 'a')" in err and "outside China" in err
    assert "Coordinate system of the incubator" in err
    assert "GeoDataFrame" not in err and "errors=" not in err and "--coords" not in err


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_layer_without_crs_is_refused(qgis: Qgis, data, tmp_path) -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    shp = tmp_path / "nocrs.shp"  # no .prj: QGIS gives the layer no CRS
    gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.78, 32.04)]).to_file(shp)
    err = _bad_run(qgis, "incubloc:classify", "layer 'nocrs' has no CRS", INCUBATORS=shp,
                   STUDY_AREA=data["study_area"], OUTPUT=tmp_path / "x.gpkg")
    assert "Assign projection" in err and "crs=" not in err


def test_without_incubloc_the_provider_says_how_to_install(qgis: Qgis, data, tmp_path) -> None:
    """QGIS's own Python (no venv on PATH): the provider loads, algorithms explain."""
    # Only Debian's python3 on PATH: QGIS's embedded Python adopts the environment of
    # the first python3 it finds there (a venv, or e.g. a pyenv or /usr/local install).
    env = dict(qgis.env, PATH="/usr/bin:/bin")
    env.pop("VIRTUAL_ENV")
    bare = Qgis(env, Path("/usr/bin/python3"))
    listing = json.loads(bare.process("--json", "list").stdout)
    assert set(listing["providers"][PROVIDER]["algorithms"]) == ALGORITHMS
    _bad_run(bare, "incubloc:classify", "the incubloc Python package is not importable",
             INCUBATORS=data["sites"], STUDY_AREA=data["study_area"], OUTPUT=tmp_path / "x.gpkg")


def test_sites_without_incubator_id_are_refused(qgis, data, incubators_uri, tmp_path) -> None:
    import geopandas as gpd

    sites = gpd.read_file(data["sites"]).drop(columns="incubator_id")
    bad = tmp_path / "sites_no_id.gpkg"
    sites.to_file(bad, driver="GPKG")
    _bad_run(qgis, "incubloc:classify", "incubator_id", INCUBATORS=incubators_uri, COORDS=1,
             SITES=bad, STUDY_AREA=data["study_area"], OUTPUT=tmp_path / "x.gpkg")


def test_missing_study_area_layer_is_reported(qgis, data, incubators_uri, tmp_path) -> None:
    import pyogrio

    from incubloc.studyarea import StudyArea, load_study_area, write_study_area

    sa = load_study_area(data["study_area"])
    no_rings = write_study_area(
        StudyArea({k: v for k, v in sa.layers.items() if k != "rings"}),
        tmp_path / "no_rings.gpkg")
    assert "rings" not in {row[0] for row in pyogrio.list_layers(no_rings)}
    _bad_run(qgis, "incubloc:ringstatistics", "'rings'", INCUBATORS=incubators_uri, COORDS=1,
             STUDY_AREA=no_rings, OUTPUT=tmp_path / "x.gpkg")


# ----------------------------------------------------------------------------- standalone PyQGIS
def test_processing_run_standalone(qgis: Qgis, data, incubators_uri, api, tmp_path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "plugin_dir": str(PLUGIN_ROOT),
        "classify": {"INCUBATORS": incubators_uri, "COORDS": 1, "SITES": str(data["sites"]),
                     "STUDY_AREA": str(data["study_area"])},
        "osm_file": str(REPO / "tests" / "fixtures" / "osm" / "nanjing_sample.osm"),
        "osm_output": str(tmp_path / "osm.gpkg"),
    }), encoding="utf-8")
    proc = subprocess.run(
        [str(qgis.python), str(REPO / "tests" / "qgis_helpers" / "standalone_run.py"), str(spec)],
        env=qgis.env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out["algorithms"]) == ALGORITHMS
    assert all(out["choices"].values()), out["choices"]
    cls = out["classify"]
    expected = api["classification"]
    assert cls["n"] == cls["n_incubators_output"] == len(expected.incubators)
    assert cls["crs"] == "EPSG:4326"
    assert cls["n_city_rings"] == len(expected.city_rings)
    assert cls["progress_max"] == pytest.approx(100)
    import pandas as pd

    got = pd.DataFrame(cls["labels"])
    _assert_same_labels(got, expected.incubators, cols=("city", "ring", "relation", "layout"))
    # Outputs load into the project: the raster, the study-area layers, both sinks.
    loaded = {name: (is_raster, n) for name, is_raster, n in out["loaded"]}
    assert loaded["Kernel density"] == (True, None)
    assert loaded["hosts"][1] > 0 and loaded["buildings"][1] > 0
    assert loaded["Classified incubators"] == (False, len(expected.incubators))
    assert loaded["Ring pattern per city"] == (False, len(expected.city_rings))
    # Cancelling stops the algorithm with a Processing error, not a traceback.
    cancel = out["cancel"]
    assert cancel["raised"], cancel
    assert "cancelled by the user" in " ".join([cancel.get("message") or "", *cancel["errors"]])
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- the old stack
def test_suite_passes_on_qgis_stack(qgis: Qgis, tmp_path: Path) -> None:
    """The rest of the test suite, run with QGIS's Python (numpy 1.24, pandas 2.3, ...).

    Started by the ``qgis`` fixture when this test is selected, so that it runs while
    the tests above do.
    """
    if qgis.suite is None:  # e.g. the fixture was set up by an earlier session item
        qgis.start_suite(tmp_path / "suite.log")
    try:
        rc = qgis.suite.wait(timeout=1500)
    except subprocess.TimeoutExpired:
        qgis.suite.kill()
        raise
    lines = qgis.suite_log.read_text(encoding="utf-8", errors="replace").splitlines()
    tail = "\n".join(lines[-60:])
    assert rc == 0, f"suite failed on the QGIS stack:\n{tail}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
