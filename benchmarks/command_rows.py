"""Whole-command benchmark rows: what a user runs, against the same work done with the
tools an analyst would otherwise call, each side in its own child process so that the
peak resident memory (RSS) beside the time is that of the work alone.

Rows (called by ``run.py --only read,classify,report,national,help``):

* ``read``: ``incubloc.io.read_incubators`` on a 1e6-row CSV against
  ``pandas.read_csv`` + ``geopandas.points_from_xy`` (no validation);
* ``classify``: ``incubloc.classify`` of 1e6 points with the synthetic national study
  area (370 cities, rings, 1e4 hosts, 1e6 buildings) against a chain of
  ``geopandas.sjoin`` calls (city, ring, host, building under the point);
* ``report``: ``incubloc report --example nanjing`` against the sum of its parts done
  with geopandas + esda + pointpats + scipy + matplotlib defaults;
* ``national``: ``incubloc report`` on the synthetic national study
  (``scripts/make_national_sample.py``, generated into ``benchmarks/.cache``).
* ``help``: ``incubloc --help``, the whole process, against ``python -c pass``.

A child is ``python benchmarks/command_rows.py TASK ARGS``; it prints one line
``RESULT {json}`` with the seconds it measured itself (the work, without interpreter
start-up) and any notes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
NATIONAL = CACHE / "national"
N_READ = 1_000_000
N_CLASSIFY = 1_000_000


# ------------------------------------------------------------------- child processes


def run_child(args: list[str], *, timeout: float = 3600) -> tuple[float, float, dict]:
    """Run ``args`` as a child process: (wall seconds, peak RSS MB, its RESULT dict).

    The peak RSS is the one the child reports (``VmHWM`` of ``/proc/self/status``,
    reset by exec, so the parent's memory does not count); the RESULT dict also gets
    ``cpu_s``, the child's user + system CPU seconds (``os.wait4``), which a busy
    machine does not inflate the way it inflates wall-clock time.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, text=True)
        deadline = t + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    result: dict = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    return wall, float(result.get("rss_mb", float("nan"))), result


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(task: str, *args: str, timeout: float = 3600) -> tuple[float, float, dict]:
    return run_child([sys.executable, str(Path(__file__).resolve()), task, *args],
                     timeout=timeout)


def _report(result: dict[str, Any]) -> None:
    result["rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------- inputs


def read_csv_path(n: int = N_READ) -> Path:
    """A CSV of n incubators (id, name, lon, lat, level, opened) in the cache."""
    import numpy as np
    import pandas as pd

    path = CACHE / f"incubators_{n}.csv"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "id": [f"I{i:07d}" for i in range(n)],
        "name": [f"孵化器{i}" for i in range(n)],
        "lon": np.round(rng.uniform(110.0, 120.0, n), 6),
        "lat": np.round(rng.uniform(25.0, 35.0, n), 6),
        "level": rng.choice(["national", "provincial", "municipal", "国家级"], n),
        "opened": rng.integers(1990, 2015, n),
    })
    tmp = path.with_suffix(".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def national_sample(points: int = 0) -> Path:
    """The synthetic national study in the cache (generated on first use, minutes)."""
    need = [NATIONAL / "national_area.gpkg", NATIONAL / "incubators.csv"]
    if points:
        need.append(NATIONAL / f"points_{points}.parquet")
    if not all(p.exists() for p in need):
        args = [sys.executable, str(ROOT / "scripts" / "make_national_sample.py"),
                "--out", str(NATIONAL)]
        if points:
            args += ["--points", str(points)]
        subprocess.run(args, check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return NATIONAL


# ------------------------------------------------------------------------ the tasks


def task_read_incubloc(path: str) -> None:
    from incubloc.io import read_incubators

    t, c = time.perf_counter(), time.process_time()
    gdf = read_incubators(path)
    _report({"seconds": time.perf_counter() - t, "work_cpu_s": time.process_time() - c,
             "n": len(gdf)})


def task_read_peer(path: str) -> None:
    import geopandas as gpd
    import pandas as pd

    t, c = time.perf_counter(), time.process_time()
    df = pd.read_csv(path)
    gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)
    _report({"seconds": time.perf_counter() - t, "work_cpu_s": time.process_time() - c,
             "n": len(gdf)})


def task_classify_incubloc(area: str, points: str) -> None:
    import geopandas as gpd

    from incubloc.classification import classify
    from incubloc.studyarea import load_study_area

    t = time.perf_counter()
    inc = gpd.read_parquet(points)
    sa = load_study_area(area)
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    res = classify(inc, sa)
    seconds = time.perf_counter() - t
    counts = {c: res.incubators[c].value_counts().to_dict()
              for c in ("ring", "relation", "layout")}
    _report({"seconds": seconds, "read_s": t_read, "n": len(res.incubators),
             "counts": {k: {str(a): int(b) for a, b in v.items()} for k, v in counts.items()}})


def task_classify_peer(area: str, points: str) -> None:
    import geopandas as gpd

    t = time.perf_counter()
    inc = gpd.read_parquet(points)
    layers = {name: gpd.read_file(area, layer=name) for name in
              ("cities", "rings", "hosts", "buildings")}
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    pts = inc[["id", "geometry"]]
    out = pts.copy()
    for layer, cols in (("cities", ["city", "province"]), ("rings", ["ring"]),
                        ("hosts", ["host_id", "kind"]), ("buildings", ["building_id", "levels"])):
        j = gpd.sjoin(pts, layers[layer][[*cols, "geometry"]], how="left", predicate="within")
        j = j[~j.index.duplicated(keep="first")]  # first match, like a classifier would
        for c in cols:
            out[c] = j[c].reindex(out.index)
    seconds = time.perf_counter() - t
    _report({"seconds": seconds, "read_s": t_read, "n": len(out)})


def task_report_peer(outdir: str) -> None:
    """The Nanjing report's parts done with the field's tools and their defaults."""
    import warnings

    import esda
    import geopandas as gpd
    import matplotlib
    import numpy as np
    import pandas as pd
    import pointpats
    import shapely
    from libpysal.weights import Queen
    from scipy.stats import gaussian_kde

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from incubloc.datasets import nanjing_incubators_path, nanjing_study_area_path

    warnings.simplefilter("ignore")
    parts: dict[str, float] = {}
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)

    def lap(name: str, t0: float) -> float:
        parts[name] = parts.get(name, 0.0) + time.perf_counter() - t0
        return time.perf_counter()

    t_all = t = time.perf_counter()
    df = pd.read_csv(nanjing_incubators_path())
    inc = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)
    layers = {n: gpd.read_file(nanjing_study_area_path(), layer=n)
              for n in ("cities", "districts", "rings", "hosts", "centres")}
    t = lap("read", t)
    crs = 32650
    m = inc.to_crs(crs)
    for name, cols in (("cities", ["city", "province"]), ("rings", ["ring"]),
                       ("hosts", ["host_id"]), ("districts", ["district"])):
        j = gpd.sjoin(m, layers[name].to_crs(crs)[[*cols, "geometry"]], how="left",
                      predicate="within")
        j = j[~j.index.duplicated()]
        for c in cols:
            m[c] = j[c]
    tables = {"by_city": m.groupby("city").size(), "by_ring": m.groupby(["city", "ring"]).size()}
    t = lap("classify (sjoin)", t)
    land = layers["cities"].to_crs(crs).union_all()
    xy = shapely.get_coordinates(m.geometry.values)
    k = pointpats.k_test(xy, support=50, n_simulations=99, hull=land, keep_simulations=False)
    pointpats.centrography.std_distance(xy)
    t = lap("Ripley K + envelopes (pointpats)", t)
    grids = {}
    for size in (2000.0, 5000.0, 10000.0, 20000.0):
        minx, miny, maxx, maxy = land.bounds
        xs = np.arange(minx, maxx, size)
        ys = np.arange(miny, maxy, size)
        cx, cy = np.meshgrid(xs, ys)
        cells = gpd.GeoDataFrame(geometry=shapely.box(cx.ravel(), cy.ravel(), cx.ravel() + size,
                                                      cy.ravel() + size), crs=crs)
        cells = gpd.clip(cells, land)
        cells = cells[~cells.geometry.is_empty].reset_index(drop=True)
        j = gpd.sjoin(m[["geometry"]], cells, predicate="within")
        cells["count"] = j.groupby("index_right").size().reindex(cells.index, fill_value=0)
        w = Queen.from_dataframe(cells, use_index=False)
        w.transform = "r"
        esda.Moran(cells["count"].to_numpy(float), w, permutations=999)
        grids[size] = (cells, w)
    t = lap("multi-scale grids + global Moran (libpysal, esda)", t)
    cells, w = grids[2000.0]
    y = cells["count"].to_numpy(float)
    lisa = esda.Moran_Local(y, w, permutations=999, seed=1)
    g = esda.G_Local(y, w, permutations=999, seed=1, star=True)
    cells["lisa"] = np.where(lisa.p_sim < 0.05, lisa.q, 0)
    cells["gi"] = np.where(g.p_sim < 0.05, np.sign(g.Zs), 0)
    t = lap("LISA + Gi* (esda)", t)
    bw = gaussian_kde(xy.T)
    minx, miny, maxx, maxy = land.bounds
    gx, gy = np.meshgrid(np.arange(minx, maxx, 500.0), np.arange(miny, maxy, 500.0))
    dens = bw(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    t = lap("KDE (scipy.stats.gaussian_kde)", t)
    figs = []
    for column in ("lisa", "gi"):
        fig, ax = plt.subplots(figsize=(8, 8.5))
        layers["cities"].to_crs(crs).plot(ax=ax, color="#eeeeee", edgecolor="#666666")
        cells.plot(column=column, ax=ax, categorical=True, legend=True, edgecolor="white",
                   linewidth=0.2)
        figs.append((column, fig))
    fig, ax = plt.subplots(figsize=(8, 8.5))
    ax.imshow(dens, origin="lower", extent=(minx, maxx, miny, maxy))
    figs.append(("kde", fig))
    for name in ("city", "ring"):
        fig, ax = plt.subplots(figsize=(9, 5))
        tables["by_city" if name == "city" else "by_ring"].plot.bar(ax=ax)
        figs.append((f"bar_{name}", fig))
    fig, ax = plt.subplots(figsize=(8, 8.5))
    layers["cities"].to_crs(crs).plot(ax=ax, color="#eeeeee", edgecolor="#666666")
    layers["rings"].to_crs(crs).boundary.plot(ax=ax, linewidth=0.5)
    m.plot(ax=ax, column="ring", markersize=8, legend=True)
    figs.append(("ring_map", fig))
    fig, ax = plt.subplots()
    ax.plot(k.support, k.statistic)
    figs.append(("ripley", fig))
    for name, fig in figs:
        for ext in ("png", "svg"):
            fig.savefig(out / f"{name}.{ext}", dpi=150, bbox_inches="tight")
        plt.close(fig)
    t = lap("figures (matplotlib, PNG + SVG)", t)
    _report({"seconds": time.perf_counter() - t_all, "parts": parts})


def task_report_incubloc(config: str, outdir: str, *extra: str) -> None:
    # As the console script runs it (entry_point: main, then a quick exit), so that
    # the child's wall-clock time is the command's.
    from incubloc.shells.cli import entry_point

    t = time.perf_counter()
    args = ["-q", "report"] + ([config] if config != "-" else []) + list(extra)
    try:
        entry_point([*args, "-o", outdir, "--overwrite"])
    except SystemExit as exc:
        rc = exc.code
    _report({"seconds": time.perf_counter() - t, "rc": rc})


TASKS = {
    "read-incubloc": task_read_incubloc,
    "read-peer": task_read_peer,
    "classify-incubloc": task_classify_incubloc,
    "classify-peer": task_classify_peer,
    "report-peer": task_report_peer,
    "report-incubloc": task_report_incubloc,
}


# --------------------------------------------------------------------------- the rows


def _best(task: str, *args: str, repeat: int = 1) -> tuple[float, float, float, dict]:
    """Best of ``repeat`` child runs: (work seconds, wall seconds, peak RSS MB, result)."""
    best: tuple[float, float, float, dict] | None = None
    for _ in range(repeat):
        wall, rss, res = _child(task, *args)
        cand = (float(res.get("seconds", wall)), wall, rss, res)
        if best is None or cand[0] < best[0]:
            best = cand
    assert best is not None
    return best


def bench_read(Row: Any, quick: bool) -> list:
    n = 100_000 if quick else N_READ
    path = str(read_csv_path(n))
    s_inc, _, rss_inc, r_inc = _best("read-incubloc", path, repeat=2)
    s_peer, _, rss_peer, r_peer = _best("read-peer", path, repeat=2)
    ratio = s_inc / s_peer
    cpu = r_inc["work_cpu_s"] / r_peer["work_cpu_s"]
    return [Row("read_incubators (CSV)", f"{n:.0e}", s_inc,
                "pandas.read_csv + points_from_xy", s_peer, "same points",
                f"incubloc / bare = {ratio:.2f} wall, {cpu:.2f} CPU (target ≤ 2); every "
                "validation kept; "
                "Arrow reader" + (" (pyarrow installed)" if _has("pyarrow") else " absent"),
                incubloc_rss_mb=rss_inc, peer_rss_mb=rss_peer)]


def bench_classify(Row: Any, quick: bool) -> list:
    n = 100_000 if quick else N_CLASSIFY
    folder = national_sample(points=n)
    area, points = str(folder / "national_area.gpkg"), str(folder / f"points_{n}.parquet")
    s_inc, wall_inc, rss_inc, res = _best("classify-incubloc", area, points)
    s_peer, _, rss_peer, res_peer = _best("classify-peer", area, points)
    rel = res["counts"]["relation"]
    note = (f"national study area: 370 cities, 1e4 hosts, 1e6 buildings; target < 60 s, "
            f"< 8 GB; reading {res['read_s']:.0f} s (incubloc) / {res_peer['read_s']:.0f} s "
            f"(peer) not included; process CPU {res['cpu_s']:.0f} s / "
            f"{res_peer['cpu_s']:.0f} s; relation {rel}")
    return [Row("classify (every scale)", f"{n:.0e}", s_inc, "geopandas.sjoin chain "
                "(city, ring, host, building)", s_peer,
                "peer assigns containers only (no ring patterns, shares, layout rules)",
                note, incubloc_rss_mb=rss_inc, peer_rss_mb=rss_peer)]


#: Runs of the Nanjing report in its row (the best counts).
REPORT_RUNS = 3

#: Iterations of :func:`reference_loop`.
REFERENCE_ITERATIONS = 10_000_000


def reference_loop(iterations: int = REFERENCE_ITERATIONS) -> float:
    """Seconds of a fixed pure-Python loop on one core: how fast the host runs at
    the moment. On a shared host the same CPU-bound work takes longer when other
    machines load it, with no sign of it in this machine's load average; timed
    beside a run, it says how much of a slow run is the host's."""
    t = time.perf_counter()
    x = 0
    for i in range(iterations):
        x += i
    return time.perf_counter() - t


def bench_report(Row: Any, quick: bool) -> list:
    runs = 1 if quick else REPORT_RUNS
    with tempfile.TemporaryDirectory() as tmp:
        # The command as a user runs it: wall-clock of the whole process, the best of
        # a few runs (what the machine's other work added to the others is not the
        # command's), with every run's time in the note, and the reference loop
        # timed before each.
        walls, loops = [], []
        for _ in range(runs):
            loops.append(reference_loop())
            walls.append(_child("report-incubloc", "-", f"{tmp}/inc", "--example", "nanjing"))
        wall_inc, rss_inc, res_inc = min(walls, key=lambda r: r[0])
        s_peer, _, rss_peer, res = _best("report-peer", f"{tmp}/peer")
    parts = "; ".join(f"{k} {v:.1f} s" for k, v in res["parts"].items())
    every = ", ".join(f"{w:.2f}" for w, _, _ in walls)
    speed = ", ".join(f"{t:.2f}" for t in loops)
    return [Row("report --example nanjing", "200", wall_inc,
                "geopandas + esda + pointpats + scipy + matplotlib", s_peer,
                "peer does less (no tests, tables, HTML)",
                f"target ≤ 8 s wall (incubloc: whole process incl. start-up, best of "
                f"{runs} runs: {every} s; CPU {res_inc['cpu_s']:.1f} s, peer CPU "
                f"{res['cpu_s']:.1f} s; reference loop before each run: {speed} s); "
                f"peer parts: {parts}",
                incubloc_rss_mb=rss_inc, peer_rss_mb=rss_peer)]


#: Runs of ``incubloc --help`` in its row (the best counts).
HELP_RUNS = 5


def bench_help(Row: Any, quick: bool) -> list:
    """``incubloc --help``: the whole process, against the interpreter starting alone."""
    runs = 2 if quick else HELP_RUNS
    mine = [run_child([sys.executable, "-m", "incubloc.cli", "--help"])[0]
            for _ in range(runs)]
    bare = [run_child([sys.executable, "-c", "pass"])[0] for _ in range(runs)]
    every = ", ".join(f"{w:.2f}" for w in mine)
    return [Row("incubloc --help", "—", min(mine), "python -c pass (start-up alone)",
                min(bare), "—",
                f"target < 1 s; whole process, best of {runs} runs: {every} s")]


def bench_national(Row: Any, quick: bool) -> list:
    folder = national_sample()
    with tempfile.TemporaryDirectory() as tmp:
        wall, rss, res = _child("report-incubloc", str(folder / "national.toml"),
                                f"{tmp}/national", timeout=3600)
    return [Row("report, national synthetic study", "2e4", wall, "—", None, "—",
                f"370 cities, 1e4 hosts, 1e6 buildings; Ripley to 50 km, intensity σ "
                f"20 km (national.toml); target < 5 min; CPU {res['cpu_s']:.0f} s",
                incubloc_rss_mb=rss)]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    TASKS[sys.argv[1]](*sys.argv[2:])
