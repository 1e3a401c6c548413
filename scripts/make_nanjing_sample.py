"""Generate the SYNTHETIC incubator sample of the Nanjing metropolitan circle.

The locations of the 200 incubators of He & Wang (2016) are not public, so this
script invents 200 incubators (state of mid-2014) calibrated to the figures the
paper reports: counts per city, ring patterns, relation and layout shares,
accreditation levels, opening years and site sizes (see data/README.md). Every
name, site, building, level and year is invented.

Classes are encoded in geometry, with margins, following the contract the
classifiers implement:

- relation: a site is inside a host when ≥ 50 % of its area lies in it (here:
  wholly inside); standalone sites are ≥ 300 m (here ≥ 360 m) from every host;
- layout: building-type sites are 3 000–15 000 m² with 1–3 buildings covering
  40–70 % at 6–25 levels; park-type sites are 30 000–400 000 m² with 5–20
  buildings covering 12–28 % at 2–6 levels; point-only incubators sit inside one
  tall building (≥ 10 levels, ≤ 3 000 m²).

The script checks these classes again on its own output before writing.

Outputs (reproducible: seed 20140630, the CSV is byte-identical across runs)::

    data/raw/nanjing_incubators.csv   id, name, level, opened, site_area_m2,
                                      floor_area_m2, relation, layout, lon, lat (GCJ-02)
    data/raw/nanjing_sites.gpkg       layer ``sites``: incubator_id, site_id (EPSG:4326)
    data/processed/nanjing_circle.gpkg  layer ``buildings`` replaced

Usage::

    python scripts/build_nanjing_circle.py     # first: the study area
    python scripts/make_nanjing_sample.py [--study-area GPKG] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point, box

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _nanjing_reference as ref

from incubloc.coords import gcj02_to_wgs84, wgs84_to_gcj02
from incubloc.io import atomic_path

log = logging.getLogger("make_nanjing_sample")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STUDY_AREA = ROOT / "data" / "processed" / "nanjing_circle.gpkg"
DEFAULT_OUT_DIR = ROOT / "data" / "raw"
SEED = 20140630
METRIC = 32650  # WGS84 / UTM 50N

HOST_MARGIN = 25.0  # site edge to host edge, m
RING_MARGIN = 60.0  # site edge to ring edge, m
STANDALONE_GAP = 360.0  # standalone site to any host, m (contract: ≥ 300)
SITE_GAP = 40.0  # between sites of different incubators, m
RIVER_GAP = 1000.0  # keep sites off the (approximate) Yangtze centreline
NEAR_HOST = 3000.0  # standalone sites outside Nanjing's core lie within this of a host
EDGE_CANDIDATES = 8  # see SiteSpec.edge
EDGE_SCALE = 2000.0  # m; host weight decay with distance to the ring edge (outside Nanjing)

PREFIX = {"Nanjing": "NJ", "Zhenjiang": "ZJ", "Yangzhou": "YZ", "Huai'an": "HA",
          "Wuhu": "WH", "Ma'anshan": "MA", "Chuzhou": "CZ", "Xuancheng": "XC"}
CITY_ZH = {"Nanjing": "南京", "Zhenjiang": "镇江", "Yangzhou": "扬州", "Huai'an": "淮安",
           "Wuhu": "芜湖", "Ma'anshan": "马鞍山", "Chuzhou": "滁州", "Xuancheng": "宣城"}
# Accreditation mix per city: (national, provincial, municipal).
LEVELS = {"Nanjing": (31, 55, 38), "Zhenjiang": (9, 13, 2), "Yangzhou": (4, 7, 1),
          "Huai'an": (3, 8, 1), "Wuhu": (2, 3, 7), "Ma'anshan": (1, 3, 8),
          "Chuzhou": (0, 1, 1), "Xuancheng": (0, 1, 1)}
LEVEL_ZH = ("国家级", "省级", "市级")


@dataclass(frozen=True)
class SiteSpec:
    """Where one site goes: ring system, ring, inside a host or not, its layout."""

    system: str
    ring: str
    host: bool
    kind: str  # "building", "park" or "point"

    @property
    def edge(self) -> bool:
        """Park sites in a central-district core lean to the ring's outer edge.

        The paper: incubators "分布在各圈层的边缘地区"; each such site takes the
        candidate nearest the ring boundary out of ``EDGE_CANDIDATES``.
        """
        return self.kind == "park" and self.ring == "core" and self.system in PREFIX


@dataclass
class Group:
    """``n`` incubators of one city with the same sites and declared classes."""

    n: int
    city: str
    sites: tuple[SiteSpec, ...]
    relation: str
    layout: str
    year: float  # mean opening year
    extra_site: int = 0  # how many of the n get one more park site in a host


def S(system, ring, host, kind):
    return SiteSpec(system, ring, host, kind)


def plan() -> list[Group]:
    """The 200 incubators as groups (see data/README.md for the figures honoured)."""
    nj, co, inn, out = "Nanjing", "core", "inner_suburb", "outer_suburb"
    g = [
        # Nanjing core (60): building 30 (12 point-only), mixed layout 9, park 21.
        Group(10, nj, (S(nj, co, False, "point"),), "standalone", "building", 2004.5),
        Group(2, nj, (S(nj, co, True, "point"),), "park_in_park", "building", 2004.5),
        Group(14, nj, (S(nj, co, False, "building"),), "standalone", "building", 2004.5),
        Group(4, nj, (S(nj, co, True, "building"),), "park_in_park", "building", 2004.5),
        Group(2, nj, (S(nj, co, False, "building"), S(nj, inn, True, "park")),
              "mixed", "mixed", 2006),
        Group(7, nj, (S(nj, co, True, "building"), S(nj, inn, True, "park")),
              "park_in_park", "mixed", 2006, extra_site=1),
        Group(2, nj, (S(nj, co, True, "park"), S(nj, co, False, "park")),
              "mixed", "park", 2008),
        Group(10, nj, (S(nj, co, False, "park"),), "standalone", "park", 2008),
        Group(9, nj, (S(nj, co, True, "park"),), "park_in_park", "park", 2008),
        # Nanjing inner suburb (48) and outer suburb (16).
        Group(8, nj, (S(nj, inn, False, "park"),), "standalone", "park", 2009),
        Group(1, nj, (S(nj, inn, True, "park"), S(nj, inn, False, "park")),
              "mixed", "park", 2009),
        Group(39, nj, (S(nj, inn, True, "park"),), "park_in_park", "park", 2009, extra_site=3),
        Group(2, nj, (S(nj, out, False, "park"),), "standalone", "park", 2011),
        Group(14, nj, (S(nj, out, True, "park"),), "park_in_park", "park", 2011),
        # Zhenjiang (24): compact, core only; building 8, mixed layout 1.
        Group(8, "Zhenjiang", (S("Zhenjiang", co, True, "building"),),
              "park_in_park", "building", 2006),
        Group(1, "Zhenjiang", (S("Zhenjiang", co, True, "building"),
                               S("Zhenjiang", co, True, "park")), "park_in_park", "mixed", 2008),
        Group(11, "Zhenjiang", (S("Zhenjiang", co, True, "park"),), "park_in_park", "park", 2009),
        Group(2, "Zhenjiang", (S("Danyang", co, True, "park"),), "park_in_park", "park", 2011),
        Group(1, "Zhenjiang", (S("Yangzhong", co, True, "park"),), "park_in_park", "park", 2011),
        Group(1, "Zhenjiang", (S("Jurong", co, True, "park"),), "park_in_park", "park", 2011),
        # Yangzhou (12): dispersed, core + outer suburb (Jiangdu sub-city).
        Group(3, "Yangzhou", (S("Yangzhou", co, False, "park"),), "standalone", "park", 2009),
        Group(4, "Yangzhou", (S("Yangzhou", co, True, "park"),), "park_in_park", "park", 2009),
        Group(3, "Yangzhou", (S("Yangzhou", out, True, "park"),), "park_in_park", "park", 2011),
        Group(1, "Yangzhou", (S("Yizheng", co, True, "park"),), "park_in_park", "park", 2011),
        Group(1, "Yangzhou", (S("Gaoyou", co, True, "park"),), "park_in_park", "park", 2011),
        # Huai'an (12): compact, core only; standalone 3 (incl. Jinhu), mixed 1.
        Group(2, "Huai'an", (S("Huai'an", co, False, "park"),), "standalone", "park", 2009),
        Group(1, "Huai'an", (S("Huai'an", co, True, "park"), S("Huai'an", co, False, "park")),
              "mixed", "park", 2009),
        Group(7, "Huai'an", (S("Huai'an", co, True, "park"),), "park_in_park", "park", 2009),
        Group(1, "Huai'an", (S("Jinhu", co, False, "park"),), "standalone", "park", 2011),
        Group(1, "Huai'an", (S("Xuyi", co, True, "park"),), "park_in_park", "park", 2011),
        # Wuhu (12), Ma'anshan (12), Chuzhou (2), Xuancheng (2).
        Group(11, "Wuhu", (S("Wuhu", co, True, "park"),), "park_in_park", "park", 2009),
        Group(1, "Wuhu", (S("Wuwei", co, True, "park"),), "park_in_park", "park", 2011),
        Group(8, "Ma'anshan", (S("Ma'anshan", co, True, "park"),), "park_in_park", "park", 2009),
        Group(3, "Ma'anshan", (S("Ma'anshan", out, True, "park"),), "park_in_park", "park", 2011),
        Group(1, "Ma'anshan", (S("Dangtu", co, True, "park"),), "park_in_park", "park", 2011),
        Group(1, "Chuzhou", (S("Chuzhou", co, True, "park"),), "park_in_park", "park", 2010),
        Group(1, "Chuzhou", (S("Tianchang", co, True, "park"),), "park_in_park", "park", 2011),
        Group(1, "Xuancheng", (S("Xuancheng", co, True, "park"),), "park_in_park", "park", 2010),
        Group(1, "Xuancheng", (S("Ningguo", co, True, "park"),), "park_in_park", "park", 2011),
    ]
    assert sum(x.n for x in g) == 200
    return g


# --------------------------------------------------------------------------- geometry


@dataclass
class Area:
    """The study-area layers needed here, in the metric CRS, with lookups."""

    rings: gpd.GeoDataFrame
    hosts: gpd.GeoDataFrame
    settlements: gpd.GeoDataFrame
    cities: gpd.GeoDataFrame
    river: shapely.Geometry
    no_go: shapely.Geometry
    host_union: shapely.Geometry = field(init=False)
    near_host_cache: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.host_union = shapely.union_all(self.hosts.geometry.values)

    def nested(self, host_id: str) -> shapely.Geometry:
        """Union of the hosts lying inside host ``host_id`` (kept free of its sites)."""
        geom = self.hosts.geometry[self.hosts["host_id"] == host_id].iloc[0]
        inner = self.hosts[shapely.contains_properly(geom, self.hosts.geometry.values)]
        return shapely.union_all(inner.geometry.values)

    def ring(self, system: str, ring: str) -> shapely.Geometry:
        sel = self.rings[(self.rings["city"] == system) & (self.rings["ring"] == ring)]
        if len(sel) != 1:
            raise SystemExit(f"study area has no single ring {ring!r} for {system!r}")
        return sel.geometry.iloc[0]

    def seat(self, system: str) -> Point:
        s = self.settlements[self.settlements["settlement"] == system].iloc[0]
        return gpd.GeoSeries([Point(s.seat_lon, s.seat_lat)], crs=4326).to_crs(METRIC).iloc[0]

    def hosts_in(self, system: str, ring: str) -> gpd.GeoDataFrame:
        inner = self.ring(system, ring).buffer(-RING_MARGIN)
        return self.hosts[shapely.contains(inner, self.hosts.geometry.values)]


def region_for(area: Area, spec: SiteSpec) -> tuple[shapely.Geometry, gpd.GeoDataFrame | None]:
    """The region a site's rectangle must lie in, and the candidate hosts (host sites)."""
    ring = area.ring(spec.system, spec.ring).buffer(-RING_MARGIN)
    ring = ring.difference(area.river.buffer(RIVER_GAP)).difference(area.no_go)
    if spec.host:
        hosts = area.hosts_in(spec.system, spec.ring)
        if hosts.empty:
            raise SystemExit(f"no host lies wholly in {spec.system} {spec.ring}")
        return ring, hosts
    region = ring.difference(area.host_union.buffer(STANDALONE_GAP))
    county = spec.system not in PREFIX
    if county:
        # County-town incubators sit at the edge of the 4 km core: 2.5-3.9 km out.
        seat = area.seat(spec.system)
        region = region.intersection(seat.buffer(3900).difference(seat.buffer(2500)))
    elif not (spec.system == "Nanjing" and spec.ring == "core"):
        near = area.hosts_in(spec.system, spec.ring).geometry.buffer(NEAR_HOST).union_all()
        region = region.intersection(near)
    if region.is_empty:
        raise SystemExit(f"no room for a standalone site in {spec.system} {spec.ring}")
    return region, None


def random_point(rng: np.random.Generator, region: shapely.Geometry,
                 edge_of: shapely.Geometry | None = None) -> tuple[float, float]:
    """A uniform random point in ``region``; with ``edge_of``, the one nearest the
    boundary of ``edge_of`` among ``EDGE_CANDIDATES`` uniform points."""
    minx, miny, maxx, maxy = region.bounds
    shapely.prepare(region)
    k = EDGE_CANDIDATES if edge_of is not None else 1
    for _ in range(200):
        xs = rng.uniform(minx, maxx, 512)
        ys = rng.uniform(miny, maxy, 512)
        inside = np.flatnonzero(shapely.contains_xy(region, xs, ys))
        if inside.size >= k:
            xs, ys = xs[inside[:k]], ys[inside[:k]]
            best = 0
            if edge_of is not None:
                best = int(np.argmin(shapely.distance(edge_of.boundary, shapely.points(xs, ys))))
            return float(xs[best]), float(ys[best])
    raise SystemExit("could not sample a point in a region")


def _place(local: np.ndarray, cx: float, cy: float, angle: float) -> np.ndarray:
    """Rotate local geometries by ``angle`` (degrees) and move them to (cx, cy)."""
    a = np.radians(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return shapely.transform(local, lambda xy: xy @ rot.T + np.array([cx, cy]))


def site_area_for(rng: np.random.Generator, spec: SiteSpec) -> float:
    if spec.kind == "building":
        return rng.uniform(3000, 14000)
    lo, hi = {
        ("Nanjing", "core"): (32000, 80000),
        ("Nanjing", "inner_suburb"): (70000, 200000),
        ("Nanjing", "outer_suburb"): (130000, 380000),
    }.get((spec.system, spec.ring), (45000, 160000) if spec.ring == "core" else (90000, 250000))
    return rng.uniform(lo, hi)


def park_buildings(rng: np.random.Generator, w: float, h: float):
    """5-20 non-overlapping buildings covering 12-28 % of a w x h site (local frame)."""
    area = w * h
    for _ in range(50):
        n = int(np.clip(round(5 + 12 * (area - 30000) / 370000) + rng.integers(-1, 4), 5, 20))
        cov = rng.uniform(0.15, 0.25)
        sizes = rng.uniform(0.6, 1.4, n)
        sizes *= cov * area / sizes.sum()
        boxes: list[tuple[float, float, float, float]] = []
        ok = True
        for a in sizes:
            asp = rng.uniform(1.0, 3.0)
            bw, bh = np.sqrt(a * asp), np.sqrt(a / asp)
            if rng.random() < 0.5:
                bw, bh = bh, bw
            placed = False
            for _ in range(300):
                if bw > w - 30 or bh > h - 30:
                    break
                x = rng.uniform(-w / 2 + 12 + bw / 2, w / 2 - 12 - bw / 2)
                y = rng.uniform(-h / 2 + 12 + bh / 2, h / 2 - 12 - bh / 2)
                if all(abs(x - bx) >= (bw + bbw) / 2 + 10 or abs(y - by) >= (bh + bbh) / 2 + 10
                       for bx, by, bbw, bbh in boxes):
                    boxes.append((x, y, bw, bh))
                    placed = True
                    break
            if not placed:
                ok = False
                break
        if not ok:
            continue
        got = sum(b[2] * b[3] for b in boxes) / area
        if 0.12 <= got <= 0.28:
            geoms = np.array([box(x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2)
                              for x, y, bw, bh in boxes], dtype=object)
            levels = rng.integers(2, 7, len(boxes)).astype(float)
            return geoms, levels
    raise SystemExit("could not lay out a park-type site")


def building_buildings(rng: np.random.Generator, w: float, h: float):
    """1-3 buildings covering 40-70 % of a w x h site (w ≥ h), side by side."""
    n = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
    cov = rng.uniform(0.42, 0.68)
    s = np.sqrt(cov)
    strip = w / n
    geoms = []
    for k in range(n):
        cx = -w / 2 + (k + 0.5) * strip
        geoms.append(box(cx - s * strip / 2, -s * h / 2, cx + s * strip / 2, s * h / 2))
    levels = rng.integers(6, 26, n).astype(float)
    return np.array(geoms, dtype=object), levels


@dataclass
class Placed:
    site: shapely.Geometry | None  # None for point-only
    buildings: np.ndarray
    levels: np.ndarray
    point: Point
    host_id: str | None


def place_site(rng: np.random.Generator, area: Area, spec: SiteSpec,
               occupied: list[shapely.Geometry]) -> Placed:
    region, hosts = region_for(area, spec)
    occ = shapely.union_all(np.array(occupied, dtype=object)) if occupied else None
    if occ is not None:
        shapely.prepare(occ)
    for _attempt in range(600):
        host_id = None
        where = region
        if hosts is not None:
            weights = hosts.area.to_numpy()
            if spec.edge and spec.system != "Nanjing":
                # Development zones at the edge of the centre attract most incubators.
                d = shapely.distance(area.ring(spec.system, spec.ring).boundary,
                                     hosts.geometry.centroid.values)
                weights = weights * np.exp(-np.asarray(d) / EDGE_SCALE)
            i = int(rng.choice(len(hosts), p=weights / weights.sum()))
            host_id = hosts["host_id"].iloc[i]
            where = hosts.geometry.iloc[i].buffer(-HOST_MARGIN).intersection(region)
            where = where.difference(area.nested(host_id).buffer(SITE_GAP))
            if where.is_empty:
                continue
        edge_of = area.ring(spec.system, spec.ring) if spec.edge else None
        cx, cy = random_point(rng, where, edge_of)
        angle = rng.uniform(-20, 20) if hosts is not None else rng.uniform(0, 180)
        if spec.kind == "point":
            a = rng.uniform(900, 2800)
            asp = rng.uniform(1.0, 2.0)
            bw, bh = np.sqrt(a * asp), np.sqrt(a / asp)
            local = np.array([box(-bw / 2, -bh / 2, bw / 2, bh / 2)], dtype=object)
            tower = _place(local, cx, cy, angle)
            test = tower[0].buffer(60)
            if not where.contains(tower[0]) or (occ is not None and occ.intersects(test)):
                continue
            levels = rng.integers(10, 33, 1).astype(float)
            return Placed(None, tower, levels, Point(cx, cy), host_id)
        a = site_area_for(rng, spec)
        asp = rng.uniform(1.0, 2.0)
        w, h = np.sqrt(a * asp), np.sqrt(a / asp)
        site = _place(np.array([box(-w / 2, -h / 2, w / 2, h / 2)], dtype=object),
                      cx, cy, angle)[0]
        if not where.contains(site) or (occ is not None and occ.intersects(site.buffer(SITE_GAP))):
            continue
        if spec.kind == "building":
            local, levels = building_buildings(rng, w, h)
        else:
            local, levels = park_buildings(rng, w, h)
        return Placed(site, _place(local, cx, cy, angle), levels, Point(cx, cy), host_id)
    raise SystemExit(f"could not place a {spec.kind} site in {spec.system} {spec.ring} "
                     f"({'host' if spec.host else 'standalone'})")


# --------------------------------------------------------------------------- sample


def opening_years(rng: np.random.Generator, means: np.ndarray) -> np.ndarray:
    sd = np.where(means < 2007, 3.5, 2.5)
    years = np.round(rng.normal(means, sd))
    return np.clip(years, 1995, 2014).astype(int)


def invent_names(rng: np.random.Generator, places: list[str], kinds: list[str]) -> list[str]:
    first = list("启星云致青知汇博翰锦鼎睿弘聚恒润瀚嘉朗越")
    second = list("明河帆远禾行智源林程新达德峰邦泽谷图光辰")
    suffix = {
        "building": ["科技创业大厦", "创业服务中心", "科技企业孵化器", "创客空间"],
        "park": ["科技创业园", "创业园", "科技企业孵化基地", "科技园"],
    }
    used: set[str] = set()
    out = []
    for place, kind in zip(places, kinds, strict=True):
        while True:
            word = rng.choice(first) + rng.choice(second)
            name = f"{place}{word}{rng.choice(suffix[kind])}"
            if name not in used:
                used.add(name)
                out.append(name)
                break
    return out


def generate(area: Area, *, seed: int = SEED):
    """Place every incubator; return (incubators, sites, buildings) in the metric CRS."""
    rng = np.random.default_rng(seed)
    occupied: list[shapely.Geometry] = []
    records, sites, buildings = [], [], []
    for group in plan():
        for k in range(group.n):
            specs = list(group.sites)
            if k < group.extra_site:
                specs.append(SiteSpec(specs[-1].system, specs[-1].ring, True, "park"))
            placed = []
            for spec in specs:
                p = place_site(rng, area, spec, occupied)
                occupied.append(p.site if p.site is not None else p.buildings[0].buffer(60))
                placed.append((spec, p))
            records.append({"group": group, "placed": placed})
    n = len(records)
    # Ids: shuffled within each city so that they do not reveal the groups.
    cities = np.array([r["group"].city for r in records])
    ids = np.empty(n, dtype=object)
    for city, prefix in PREFIX.items():
        idx = np.flatnonzero(cities == city)
        for i, num in zip(idx, rng.permutation(len(idx)) + 1, strict=True):
            ids[i] = f"{prefix}{num:03d}"
    years = opening_years(rng, np.array([r["group"].year for r in records]))
    levels = np.empty(n, dtype=object)
    for city, counts in LEVELS.items():
        idx = np.flatnonzero(cities == city)
        # Older incubators tend to hold the higher accreditation.
        order = idx[np.argsort(years[idx] + rng.normal(0, 3, len(idx)), kind="stable")]
        levels[order] = np.repeat(LEVEL_ZH, counts)
    places = []
    for r in records:
        system = r["placed"][0][0].system
        places.append(CITY_ZH.get(system, area.settlement_zh(system)))
    kinds = [("building" if r["placed"][0][0].kind in ("building", "point") else "park")
             for r in records]
    names = invent_names(rng, places, kinds)

    rows = []
    b_counter = 0
    for i, r in enumerate(records):
        site_area = floor_area = 0.0
        for j, (spec, p) in enumerate(r["placed"], start=1):
            fp = shapely.area(p.buildings)
            floor_area += float((fp * p.levels).sum())
            site_area += float(p.site.area) if p.site is not None else float(fp.sum())
            if p.site is not None:
                sites.append({"incubator_id": ids[i], "site_id": f"{ids[i]}-{j}",
                              "geometry": p.site, "_spec": spec, "_host": p.host_id})
            for g, lev in zip(p.buildings, p.levels, strict=True):
                b_counter += 1
                buildings.append({"building_id": f"B{b_counter:05d}", "levels": float(lev),
                                  "height": round(float(lev) * 3.3, 1), "source": "synthetic",
                                  "quality": "invented", "geometry": g})
        main = r["placed"][0][1]
        pt = main.point if main.site is None else main.site.centroid
        rows.append({
            "id": ids[i], "name": names[i], "level": levels[i], "opened": int(years[i]),
            "site_area_m2": int(round(site_area)), "floor_area_m2": int(round(floor_area)),
            "relation": r["group"].relation, "layout": r["group"].layout,
            "geometry": pt, "_city": r["group"].city, "_system": r["placed"][0][0].system,
            "_ring": r["placed"][0][0].ring,
        })
    inc = gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC)
    sgdf = gpd.GeoDataFrame(sites, geometry="geometry", crs=METRIC)
    bgdf = gpd.GeoDataFrame(buildings, geometry="geometry", crs=METRIC)
    return inc, sgdf, bgdf


def _settlement_zh(self: Area, system: str) -> str:
    zh = self.settlements.loc[self.settlements["settlement"] == system, "settlement_zh"].iloc[0]
    return zh[:-1] if zh.endswith(("市", "县")) and len(zh) > 2 else zh


Area.settlement_zh = _settlement_zh  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- checks


def verify(inc: gpd.GeoDataFrame, sites: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame,
           area: Area) -> None:
    """Re-derive every class from the geometry (the classifiers' contract) and compare."""
    hosts = area.hosts
    hgeom = np.asarray(hosts.geometry.values, dtype=object)
    sgeom = np.asarray(sites.geometry.values, dtype=object)
    # Relation per site: ≥ 50 % of the area in a host (smallest wins), else standalone
    # when ≥ 300 m from every host; anything in between is a failure of the generator.
    frac = shapely.area(shapely.intersection(sgeom[:, None], hgeom[None, :]))
    frac = frac / sites.area.to_numpy()[:, None]
    inside = frac >= 0.5
    dist = shapely.distance(sgeom[:, None], hgeom[None, :]).min(axis=1)
    site_rel = np.where(inside.any(axis=1), "in", np.where(dist >= 300, "out", "?"))
    assert (site_rel != "?").all(), "a site is neither inside a host nor 300 m away"
    assert (frac[inside] > 0.999).all(), "park-in-park sites must lie wholly in the host"
    # Layout per site.
    rep = buildings.representative_point()
    j = gpd.sjoin(gpd.GeoDataFrame(geometry=rep, crs=METRIC), sites[["geometry"]],
                  predicate="within")
    fp = buildings.area
    per = pd.DataFrame({"site": j["index_right"], "fp": fp.loc[j.index],
                        "lv": buildings["levels"].loc[j.index]})
    agg = per.groupby("site").agg(n=("fp", "size"), fp=("fp", "sum"),
                                  lvfp=("lv", lambda s: float((s * per.loc[s.index, "fp"]).sum())))
    agg = agg.reindex(range(len(sites)))
    cover = agg["fp"].to_numpy() / sites.area.to_numpy()
    mean_lv = agg["lvfp"].to_numpy() / agg["fp"].to_numpy()
    is_bld = ((agg["n"].to_numpy() <= 3) & (cover >= 0.30) & (mean_lv >= 4)
              & (sites.area.to_numpy() <= 30000))
    assert agg["n"].notna().all(), "a site has no building"
    site_lay = np.where(is_bld, "building", "park")
    for spec, lay, c in zip(sites["_spec"], site_lay, cover, strict=True):
        assert spec.kind == lay, (spec, lay, c)
        assert (0.40 <= c <= 0.70) if lay == "building" else (0.12 <= c <= 0.28), c
    for spec, rel in zip(sites["_spec"], site_rel, strict=True):
        assert spec.host == (rel == "in"), (spec, rel)
    # Per incubator.
    by_inc = pd.DataFrame({"id": sites["incubator_id"], "rel": site_rel, "lay": site_lay})
    for row in inc.itertuples():
        s = by_inc[by_inc["id"] == row.id]
        if s.empty:  # point-only: a tall building holds the point
            holder = buildings[buildings.contains(row.geometry)]
            assert len(holder) == 1 and holder["levels"].iloc[0] >= 8
            assert holder.area.iloc[0] <= 5000
            rel = "in" if shapely.contains(hgeom, row.geometry).any() else "out"
            assert rel == "out" or row.relation == "park_in_park"
            if rel == "out":
                assert shapely.distance(hgeom, row.geometry).min() >= 300
            rels, lays = {rel}, {"building"}
        else:
            rels, lays = set(s["rel"]), set(s["lay"])
        want_rel = ("mixed" if len(rels) == 2
                    else "park_in_park" if rels == {"in"} else "standalone")
        want_lay = "mixed" if len(lays) == 2 else lays.pop()
        assert want_rel == row.relation, (row.id, rels, row.relation)
        assert want_lay == row.layout, (row.id, want_lay, row.layout)
    # Sites do not overlap, buildings do not overlap.
    for gdf, what in ((sites, "sites"), (buildings, "buildings")):
        a, b = shapely.STRtree(gdf.geometry.values).query(gdf.geometry.values,
                                                          predicate="intersects")
        assert (a == b).all(), f"{what} overlap"
    # Ring and city of the (GCJ-02 rounded) points.
    wgs = inc.to_crs(4326)
    glon, glat = wgs84_to_gcj02(wgs.geometry.x.to_numpy(), wgs.geometry.y.to_numpy())
    lon, lat = gcj02_to_wgs84(np.round(glon, 6), np.round(glat, 6))
    back = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=4326).to_crs(METRIC)
    rj = gpd.sjoin(gpd.GeoDataFrame(geometry=back.values, crs=METRIC),
                   area.rings[["city", "ring", "geometry"]], predicate="within")
    assert len(rj) == len(inc) and rj.index.is_unique
    assert (rj["city"].to_numpy() == inc["_system"].to_numpy()).all()
    assert (rj["ring"].to_numpy() == inc["_ring"].to_numpy()).all()
    cj = gpd.sjoin(gpd.GeoDataFrame(geometry=back.values, crs=METRIC),
                   area.cities[["city", "geometry"]], predicate="within")
    assert (cj["city"].to_numpy() == inc["_city"].to_numpy()).all()
    log.info("verified: every class re-derived from geometry matches the plan")


def summarise(inc: gpd.GeoDataFrame, area: Area) -> None:
    nj = inc[inc["_system"] == "Nanjing"]
    eq = area.rings.to_crs("+proj=aea +lat_1=30 +lat_2=34 +lat_0=32 +lon_0=118.8")
    for ring in ("core", "inner_suburb", "outer_suburb"):
        sel = nj[nj["_ring"] == ring]
        km2 = eq[(eq.city == "Nanjing") & (eq.ring == ring)].area.iloc[0] / 1e6
        log.info("Nanjing %-13s n=%3d density=%.4f/km2 opened=%.1f site=%.0f m2", ring, len(sel),
                 len(sel) / km2, sel["opened"].mean(), sel["site_area_m2"].mean())
    log.info("cities: %s", inc["_city"].value_counts().to_dict())
    log.info("relation: %s", inc["relation"].value_counts().to_dict())
    log.info("layout: %s", inc["layout"].value_counts().to_dict())
    log.info("level: %s", inc["level"].value_counts().to_dict())
    # Ring edge: where each incubator's distance to its ring boundary falls among
    # the distances of a regular grid of locations in the ring (0.5 = no tendency).
    pct = []
    for (system, ring), grp in inc.groupby(["_system", "_ring"]):
        geom = area.ring(system, ring)
        minx, miny, maxx, maxy = geom.bounds
        step = np.sqrt(geom.area / 4000)
        gx, gy = np.meshgrid(np.arange(minx, maxx, step), np.arange(miny, maxy, step))
        inside = shapely.contains_xy(geom, gx.ravel(), gy.ravel())
        grid = np.sort(shapely.distance(geom.boundary,
                                        shapely.points(gx.ravel()[inside], gy.ravel()[inside])))
        d = shapely.distance(geom.boundary, grp.geometry.values)
        q = np.searchsorted(grid, d) / len(grid)
        pct.append(q)
        if len(grp) >= 5:
            log.info("ring edge %-10s %-13s n=%3d mean percentile %.2f", system, ring,
                     len(grp), q.mean())
    log.info("ring edge, all incubators: mean percentile %.2f", np.concatenate(pct).mean())


# --------------------------------------------------------------------------- I/O


def load_area(path: Path) -> Area:
    def read(layer):
        return gpd.read_file(path, layer=layer).to_crs(METRIC)

    river = read("corridors").geometry.union_all()
    centres = gpd.GeoSeries(
        gpd.points_from_xy([n[1] for n in ref.NO_GO], [n[2] for n in ref.NO_GO]), crs=4326
    ).to_crs(METRIC)
    no_go = [box(c.x - w / 2, c.y - h / 2, c.x + w / 2, c.y + h / 2)
             for c, (_, _, _, w, h) in zip(centres, ref.NO_GO, strict=True)]
    return Area(read("rings"), read("hosts"), read("settlements"), read("cities"), river,
                shapely.union_all(no_go))


def write_csv(inc: gpd.GeoDataFrame, path: Path) -> None:
    wgs = inc.to_crs(4326)
    lon, lat = wgs84_to_gcj02(wgs.geometry.x.to_numpy(), wgs.geometry.y.to_numpy())
    df = pd.DataFrame({
        "id": inc["id"], "name": inc["name"], "level": inc["level"], "opened": inc["opened"],
        "site_area_m2": inc["site_area_m2"], "floor_area_m2": inc["floor_area_m2"],
        "relation": inc["relation"], "layout": inc["layout"],
        "lon": [f"{v:.6f}" for v in lon], "lat": [f"{v:.6f}" for v in lat],
    }).sort_values("id", kind="stable")
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")


def write_buildings(buildings: gpd.GeoDataFrame, study_area: Path) -> None:
    """Replace the ``buildings`` layer of the study area (copy, write, compact, rename)."""
    with atomic_path(study_area) as tmp:
        shutil.copyfile(study_area, tmp)
        buildings.to_crs(4326).to_file(tmp, layer="buildings", driver="GPKG")
        with sqlite3.connect(tmp) as con:
            con.execute("VACUUM")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study-area", type=Path, default=DEFAULT_STUDY_AREA,
                    help="study-area GeoPackage to read; its buildings layer is replaced")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                    help="folder for nanjing_incubators.csv and nanjing_sites.gpkg")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    area = load_area(args.study_area)
    inc, sites, buildings = generate(area, seed=args.seed)
    verify(inc, sites, buildings, area)
    summarise(inc, area)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(inc, args.out_dir / "nanjing_incubators.csv")
    with atomic_path(args.out_dir / "nanjing_sites.gpkg") as tmp:
        sites[["incubator_id", "site_id", "geometry"]].to_crs(4326).to_file(
            tmp, layer="sites", driver="GPKG", dataset_options={"VERSION": "1.2"}
        )
    write_buildings(buildings[["building_id", "levels", "height", "source", "quality",
                               "geometry"]], args.study_area)
    for p in (args.out_dir / "nanjing_incubators.csv", args.out_dir / "nanjing_sites.gpkg",
              args.study_area):
        log.info("wrote %s (%.0f kB)", p, p.stat().st_size / 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())
