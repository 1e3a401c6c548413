"""Region scale (city, province, settlement, tier, zone) on a hand-built world.

The world, in lon/lat near Nanjing: three cities side by side, 0.2° wide,
A (the core city) | B | C, plus an empty city D further east. A corridor runs
west-east along latitude 31.95 with a 3 km belt; a named zone "north" covers
latitudes 31.96-32.10. Distances: 0.01° of latitude ≈ 1.109 km.
"""

import json
import logging
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from bundled_data import bundled
from scipy import stats
from shapely.geometry import LineString, Point, box

from incubloc.errors import ConfigError, InputError, MissingLayerError, StudyAreaError
from incubloc.scales.region import (
    REGION_COLUMNS,
    TIER_ORDER,
    TIERS_2014,
    assign_region,
    province_ratio,
    region_summary,
    region_tables,
    tier_from_population,
    tier_relation,
)
from incubloc.studyarea import StudyArea

LAT_KM = 110.9  # km per degree of latitude at 32°N (WGS84: 110.86)


def _gdf(data, geoms):
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=4326)


def _cities(core=(True, False, False, False)):
    return _gdf(
        {
            "city": ["A", "B", "C", "D"],
            "province": ["P1", "P1", "P2", "P2"],
            "core": list(core),
            "form": ["dispersed", "compact", "compact", "compact"],
        },
        [
            box(118.5, 31.9, 118.7, 32.1),
            box(118.7, 31.9, 118.9, 32.1),
            box(118.9, 31.9, 119.1, 32.1),
            box(119.5, 31.9, 119.7, 32.1),
        ],
    )


def _settlements(tier=None):
    data = {
        "settlement": ["A", "B", "Bcounty", "Ctown", "D"],
        "city": ["A", "B", "B", "C", "D"],
        "kind": ["central_districts", "central_districts", "county", "town", "county"],
        "population": [6_000_000, 2_000_000, 300_000, 50_000, 150_000],
    }
    if tier is not None:
        data["tier"] = tier
    return _gdf(
        data,
        [
            box(118.5, 31.9, 118.7, 32.1),
            box(118.7, 31.9, 118.8, 32.1),
            box(118.8, 31.9, 118.9, 32.1),
            box(118.9, 31.9, 119.0, 32.1),  # only the west half of C
            box(119.5, 31.9, 119.7, 32.1),
        ],
    )


def _corridors(buffer_m=3000.0):
    data = {"name": ["river"]}
    if buffer_m is not None:
        data["buffer_m"] = [buffer_m]
    # Densified so that the line follows the parallel once projected.
    lons = np.linspace(118.4, 119.8, 141)
    return _gdf(data, [LineString(np.column_stack([lons, np.full(lons.size, 31.95)]))])


def _zones():
    return _gdf({"zone": ["north"], "name": ["北部片区"]}, [box(118.4, 31.96, 119.8, 32.1)])


def _study(**drop):
    layers = {
        "cities": _cities(),
        "settlements": _settlements(),
        "corridors": _corridors(),
        "zones": _zones(),
    }
    for name in drop:
        layers.pop(name)
    return StudyArea(layers)


# Incubators: (lon, lat) and the answer.
POINTS = {
    "a_core_in_belt": (118.60, 31.955),  # A, 0.6 km from the river: core beats belt
    "b_belt_in_north": (118.75, 31.97),  # B, 2.2 km from the river and in "north": belt
    "c_north": (118.85, 32.05),  # B county, 11 km from the river: north
    "d_other": (119.05, 31.91),  # C outside its town, 4.4 km from the river: other
    "e_outside": (120.50, 32.00),  # outside every city
    "f_town": (118.95, 31.98),  # C town, 3.3 km from the river, in "north"
}


def _incubators():
    names = list(POINTS)
    return _gdf({"id": names}, [Point(*POINTS[n]) for n in names])


# --------------------------------------------------------------------------- tiers


def test_tiers_2014_table():
    assert TIER_ORDER == (
        "super_large", "extra_large", "large_i", "large_ii", "medium", "small_i", "small_ii",
        "town",
    )
    bounds = {t.label: t.lower for t in TIERS_2014}
    assert bounds["super_large"] == 10_000_000 and bounds["extra_large"] == 5_000_000
    assert bounds["large_i"] == 3_000_000 and bounds["large_ii"] == 1_000_000
    assert bounds["medium"] == 500_000 and bounds["small_i"] == 200_000
    assert bounds["small_ii"] == 0 and bounds["town"] is None


@pytest.mark.parametrize(
    ("population", "tier"),
    [
        (5_000_000, "extra_large"),
        (4_999_999, "large_i"),
        (10_000_000, "super_large"),
        (9_999_999, "extra_large"),
        (3_000_000, "large_i"),
        (1_000_000, "large_ii"),
        (999_999, "medium"),
        (500_000, "medium"),
        (200_000, "small_i"),
        (199_999, "small_ii"),
        (0, "small_ii"),
        (float("nan"), "unclassified"),
        (None, "unclassified"),
        ("n/a", "unclassified"),
        (-5, "unclassified"),
    ],
)
def test_tier_boundaries(population, tier):
    assert tier_from_population([population]).tolist() == [tier]


def test_tier_keeps_series_index_and_kind():
    pop = pd.Series([8e6, 4e4, 4e4], index=["x", "y", "z"])
    out = tier_from_population(pop, kind=pd.Series(["central_districts", "town", "county"],
                                                    index=pop.index))
    assert out.index.tolist() == ["x", "y", "z"]
    assert out.tolist() == ["extra_large", "town", "small_ii"]
    assert out.name == "tier"


def test_custom_thresholds_table_and_pairs():
    table = pd.DataFrame({"label": ["big", "small", "tiny"], "lower": [1e6, 1e5, 0]})
    assert tier_from_population([2e6, 1e6, 999_999, 5], thresholds=table).tolist() == [
        "big", "big", "small", "tiny",
    ]
    pairs = [("low", 0), ("high", 100)]
    assert tier_from_population([99, 100], thresholds=pairs).tolist() == ["low", "high"]
    with pytest.raises(ConfigError, match="share a lower bound"):
        tier_from_population([1], thresholds=[("a", 0), ("b", 0)])
    with pytest.raises(ConfigError, match="label"):
        tier_from_population([1], thresholds=pd.DataFrame({"x": [1]}))


# --------------------------------------------------------------------------- assign


def test_assign_region_full_world():
    inc = _incubators()
    r = assign_region(inc, _study())
    assert list(r.columns) == list(REGION_COLUMNS)
    assert r.index.equals(inc.index)
    got = r.set_index(inc["id"])
    assert got["city"].tolist() == ["A", "B", "B", "C", "unclassified", "C"]
    assert got["province"].tolist() == ["P1", "P1", "P1", "P2", "unclassified", "P2"]
    assert got["zone"].tolist() == ["core", "belt", "north", "other", "unclassified", "north"]
    assert got.loc["c_north", "settlement"] == "Bcounty"
    assert got.loc["c_north", "settlement_kind"] == "county"
    assert got.loc["c_north", "tier"] == "small_i"
    assert got.loc["a_core_in_belt", "tier"] == "extra_large"
    assert got.loc["b_belt_in_north", "tier"] == "large_ii"
    assert got.loc["f_town", "tier"] == "town"
    assert got.loc["e_outside", "reason"] == "outside the study area (no city polygon contains it)"
    assert (got.loc["e_outside", list(REGION_COLUMNS[:-1])] == "unclassified").all()
    assert got.loc["d_other", "settlement"] == "unclassified"
    assert got.loc["d_other", "reason"] == "in no settlement polygon"
    assert got.loc["a_core_in_belt", "reason"] == ""


def test_point_one_km_inside_a_city():
    # 1 km west of B's east edge (lon 118.9) at 32°N: 1 / (111.32 · cos 32°) degrees.
    dlon = 1.0 / (111.32 * math.cos(math.radians(32.0)))
    inc = _gdf({"id": ["x"]}, [Point(118.9 - dlon, 32.0)])
    assert assign_region(inc, _study()).loc[0, "city"] == "B"


def test_point_on_shared_boundary_gets_exactly_one_city():
    # On the edge A|B (lon 118.7) and on the corner A|B at the south border.
    inc = _gdf({"id": ["edge", "corner"]}, [Point(118.7, 32.0), Point(118.7, 31.9)])
    cities = _cities()
    assert cities.geometry.iloc[0].intersects(inc.geometry.iloc[0])
    assert cities.geometry.iloc[1].intersects(inc.geometry.iloc[0])
    r = assign_region(inc, _study())
    assert r["city"].tolist() == ["A", "A"]  # the first city of the layer wins
    # Reversing the layer order makes B first: B wins, still exactly one.
    sa = _study()
    sa.layers["cities"] = cities.iloc[::-1].reset_index(drop=True)
    assert assign_region(inc, sa)["city"].tolist() == ["B", "B"]


def test_zone_precedence_core_over_belt_over_named():
    inc = _incubators()
    # Make B the core city: b (belt + north) and c (north) become core, a becomes belt.
    r = assign_region(inc, _study(), core_city="B").set_index(inc["id"])
    assert r.loc["a_core_in_belt", "zone"] == "belt"
    assert r.loc["b_belt_in_north", "zone"] == "core"
    assert r.loc["c_north", "zone"] == "core"
    with pytest.raises(ConfigError, match="not a city"):
        assign_region(inc, _study(), core_city="Nowhere")


def test_belt_width_parameter_layer_column_and_default():
    inc = _incubators()
    sa = _study()
    # d is 4.4 km from the river: outside a 3 km belt (layer), inside a 5 km belt (param).
    assert assign_region(inc, sa).loc[3, "zone"] == "other"
    assert assign_region(inc, sa, corridor_buffer_m=5_000).loc[3, "zone"] == "belt"
    # c is 11 km away: belt only with the 30 km default (no buffer_m column).
    sa.layers["corridors"] = _corridors(buffer_m=None)
    r = assign_region(inc, sa)
    assert r.loc[2, "zone"] == "belt" and r.loc[3, "zone"] == "belt"
    with pytest.raises(ConfigError, match="positive"):
        assign_region(inc, sa, corridor_buffer_m=-1)


def test_belt_is_measured_in_metres():
    # Points due north of the line at 2.9 km and 3.1 km (0.01° lat = 1.109 km).
    lat_29 = 31.95 + 2.9 / LAT_KM
    lat_31 = 31.95 + 3.1 / LAT_KM
    inc = _gdf({"id": ["in", "out"]}, [Point(118.75, lat_29), Point(118.75, lat_31)])
    sa = _study(zones=True)
    r = assign_region(inc, sa)
    assert r["zone"].tolist() == ["belt", "other"]


def test_missing_layers_give_unclassified_with_reason():
    inc = _incubators()
    r = assign_region(inc, StudyArea({}))
    assert (r[list(REGION_COLUMNS[:-1])] == "unclassified").all().all()
    assert r["reason"].str.contains("no cities layer in the study area").all()
    assert r["reason"].str.contains("no settlements layer in the study area").all()

    r = assign_region(inc, _study(settlements=True, corridors=True, zones=True))
    got = r.set_index(inc["id"])
    assert got.loc["b_belt_in_north", "city"] == "B"
    assert got.loc["b_belt_in_north", "tier"] == "unclassified"
    assert "no settlements layer in the study area" in got.loc["b_belt_in_north", "reason"]
    # Without corridors and zones the zone is still decided, and the reason says what
    # was not tested.
    assert got["zone"].tolist() == ["core", "other", "other", "other", "unclassified", "other"]
    assert "belt not tested: no corridors layer" in got.loc["c_north", "reason"]
    assert "named zones not tested: no zones layer" in got.loc["c_north", "reason"]
    assert "belt not tested" not in got.loc["a_core_in_belt", "reason"]


def test_missing_geometry_and_bad_layer():
    inc = _gdf({"id": ["x", "y"]}, [Point(118.6, 32.0), None])
    r = assign_region(inc, _study())
    assert r.loc[1, "city"] == "unclassified"
    assert "no location" in r.loc[1, "reason"]
    sa = _study()
    sa.layers["cities"] = sa.layers["cities"].drop(columns="province")
    with pytest.raises(StudyAreaError, match="'cities' lacks column"):
        assign_region(inc, sa)


def test_settlement_tier_column_wins_and_projected_input():
    sa = _study()
    sa.layers["settlements"] = _settlements(tier=["super_large", None, None, None, None])
    inc = _incubators().to_crs(32650)  # any CRS is accepted
    got = assign_region(inc, sa).set_index(inc["id"])
    assert got.loc["a_core_in_belt", "tier"] == "super_large"
    assert got.loc["b_belt_in_north", "tier"] == "large_ii"  # blank tier: population decides


def test_index_preserved():
    inc = _incubators()
    inc.index = [10, 30, 20, 5, 7, 99]
    r = assign_region(inc, _study())
    assert r.index.tolist() == [10, 30, 20, 5, 7, 99]
    assert r.loc[20, "zone"] == "north"


# --------------------------------------------------------------------------- tables


def _classified():
    inc = _incubators()
    r = assign_region(inc, _study())
    r["level"] = ["national", "省级", "municipal", "municipal", None, "国家级"]
    return r


def test_region_tables_counts_shares_and_zero_categories():
    cl = _classified()
    t = region_tables(cl, study_area=_study())
    assert set(t) == {"province", "city", "settlement", "tier", "level", "zone", "city_level"}
    for key in ("province", "city", "settlement", "tier", "level", "zone"):
        assert t[key]["share"].sum() == pytest.approx(1.0), key
        assert t[key]["count"].sum() == len(cl), key
    city = t["city"].set_index("city")["count"]
    # B 2, C 2, A 1, D 0 (zero-count city of the study area), unclassified 1 last.
    assert city.to_dict() == {"B": 2, "C": 2, "A": 1, "D": 0, "unclassified": 1}
    assert t["city"]["city"].iloc[-1] == "unclassified"
    assert t["city"].set_index("city").loc["D", "share"] == 0.0
    assert t["province"].set_index("province")["count"].to_dict() == {
        "P1": 3, "P2": 2, "unclassified": 1,
    }
    assert t["level"]["level"].tolist() == ["national", "provincial", "municipal", "unclassified"]
    assert t["level"]["count"].tolist() == [2, 1, 2, 1]
    # Tiers largest first; small_ii present in the study area (D) with 0.
    assert t["tier"]["tier"].tolist() == [
        "extra_large", "large_ii", "small_i", "small_ii", "town", "unclassified",
    ]
    assert t["tier"]["count"].tolist() == [1, 1, 1, 0, 1, 2]
    assert t["zone"]["zone"].tolist() == ["core", "belt", "north", "other", "unclassified"]
    assert t["zone"]["count"].tolist() == [1, 1, 2, 1, 1]
    sett = t["settlement"].set_index("settlement")
    assert sett.loc["D", "count"] == 0 and sett.loc["D", "tier"] == "small_ii"
    assert sett.loc["Bcounty", "city"] == "B"
    cl_tab = t["city_level"].set_index("city")
    assert cl_tab.loc["B", ["national", "provincial", "municipal", "total"]].tolist() == [0, 1, 1, 2]
    assert cl_tab.loc["C", ["national", "provincial", "municipal"]].tolist() == [1, 0, 1]
    assert cl_tab.loc["D", "total"] == 0
    assert cl_tab["total"].sum() == len(cl)
    assert cl_tab["share"].sum() == pytest.approx(1.0)


def test_region_tables_without_study_area():
    df = pd.DataFrame({"city": ["X", "Y", "Y"], "province": ["P", "P", "Q"]})
    t = region_tables(df)
    assert t["city"]["city"].tolist() == ["Y", "X"]
    assert t["level"]["count"].tolist() == [0, 0, 0, 3]  # no level column: unclassified


def test_tier_relation_equals_scipy():
    sa = _study()
    # Counts per settlement: A 5, B 3, Bcounty 2, Ctown 0, D 1.
    df = pd.DataFrame(
        {
            "settlement": ["A"] * 5 + ["B"] * 3 + ["Bcounty"] * 2 + ["D"],
            "city": ["A"] * 5 + ["B"] * 3 + ["B"] * 2 + ["D"],
        }
    )
    res = tier_relation(df, study_area=sa)
    # Tiers: extra_large, large_ii, small_i, town, small_ii -> size ranks 7, 5, 3, 1, 2.
    counts = [5, 3, 2, 0, 1]
    expected = stats.spearmanr([7, 5, 3, 1, 2], counts)
    assert res.rho == pytest.approx(expected[0])
    assert res.p_t == pytest.approx(expected[1])
    assert res.table["count"].tolist() == counts
    assert res.n_settlements == 5 and res.n_incubators == 11
    by_tier = res.by_tier.set_index("tier")
    assert by_tier.index.tolist() == ["extra_large", "large_ii", "small_i", "small_ii", "town"]
    assert by_tier.loc["large_ii", "n_incubators"] == 3
    d = res.to_dict()
    json.dumps(d)
    assert d["rho"] == pytest.approx(expected[0])
    assert "TierRelation" in res._repr_html_()
    with pytest.raises(MissingLayerError, match="settlements"):
        tier_relation(df, study_area=StudyArea({}))


def test_tier_relation_undefined_is_nan_with_note():
    res = tier_relation(pd.DataFrame({"settlement": []}), study_area=_study())
    assert math.isnan(res.rho) and "same for every settlement" in res.note


def test_province_ratio_and_summary():
    df = pd.DataFrame({"province": ["Jiangsu"] * 18 + ["Anhui"] * 5 + [None]})
    assert province_ratio(df) == pytest.approx(3.6)
    assert province_ratio(df, numerator="Anhui", denominator="Jiangsu") == pytest.approx(5 / 18)
    assert province_ratio(df, denominator="Zhejiang") == math.inf
    assert math.isnan(province_ratio(df, numerator="X", denominator="Y"))
    s = region_summary(_classified(), study_area=_study(), numerator="P1", denominator="P2")
    d = s.to_dict()
    json.dumps(d)
    assert d["province_ratio"]["ratio"] == pytest.approx(1.5)
    assert d["shares"]["city"]["D"] == 0.0
    assert d["tier_relation"]["n_settlements"] == 5
    assert "tables" not in d
    assert "RegionSummary" in s._repr_html_()


def test_tier_rank_counts_from_the_smallest_tier():
    r = tier_relation(_classified(), study_area=_study())
    ranks = dict(zip(r.table["settlement"], r.table["tier_rank"], strict=True))
    # extra_large, large_ii, small_i, town, small_ii of the eight 2014 tiers (town = 1).
    assert ranks == {"A": 7, "B": 5, "Bcounty": 3, "Ctown": 1, "D": 2}


def test_region_summary_every_field_has_its_known_value():
    cl = _classified()  # provinces: P1 ×3 (A, B, B), P2 ×2 (C, C), one outside
    s = region_summary(cl, study_area=_study(), numerator="P1", denominator="P2")
    assert s.n == 6
    assert s.province_ratio == {"numerator": "P1", "denominator": "P2", "n_numerator": 3,
                                "n_denominator": 2, "ratio": 1.5}
    assert set(s.shares) == {"province", "city", "tier", "level", "zone"}
    assert s.shares["province"] == pytest.approx({"P1": 0.5, "P2": 1 / 3, "unclassified": 1 / 6})
    assert s.shares["level"]["national"] == pytest.approx(2 / 6)
    assert set(s.tables) == {"province", "city", "settlement", "tier", "level", "zone", "city_level"}
    d = s.to_dict()
    assert d["tier_relation"] == s.tier_relation.to_dict()
    assert d["n"] == 6 and d["province_ratio"]["n_numerator"] == 3
    swapped = region_summary(cl, numerator="P2", denominator="P1").province_ratio
    assert (swapped["n_numerator"], swapped["n_denominator"]) == (2, 3)
    # Without settlements there is no tier relation; without a study area neither.
    assert region_summary(cl).tier_relation is None
    assert region_summary(cl, study_area=_study(settlements=True)).tier_relation is None
    assert region_summary(cl).to_dict()["tier_relation"] is None
    # A custom tier standard reaches the tables (the study area's settlements are
    # tiered with it) and the tier relation.
    custom = region_summary(cl, study_area=_study(), thresholds={"big": 1_000_000, "small": 0})
    assert {"big", "small"} <= set(custom.tables["tier"]["tier"])
    assert set(custom.tier_relation.table["tier"]) == {"big", "small"}


# --------------------------------------------------------------------------- bundled data


def _bundled():
    return bundled()


def test_bundled_nanjing_region():
    inc, sa = _bundled()
    r = assign_region(inc, sa)
    assert len(r) == len(inc)
    sett = sa.get("settlements")
    nanjing = sett[sett["settlement"] == "Nanjing"]
    assert tier_from_population(nanjing["population"], kind=nanjing["kind"]).tolist() == [
        "extra_large"
    ]
    assert set(r.loc[r["settlement"] == "Nanjing", "tier"]) == {"extra_large"}
    assert set(r.loc[r["city"] == "Nanjing", "zone"]) == {"core"}
    t = region_tables(inc.join(r), study_area=sa)
    assert len(t["city"]) >= 8
    nanjing_share = t["city"].set_index("city").loc["Nanjing", "share"]
    assert nanjing_share > 0.6  # the paper: Nanjing holds more than 60 %
    assert np.isclose(t["city"]["share"].sum(), 1.0)


def test_tier_from_the_cities_layer_without_settlements():
    """No settlements layer: the city is the settlement and its tier comes from the
    cities layer's population (State Council 2014: 3-5 M is large_i, 0.2-0.5 M small_i)
    or its tier column; a city with neither stays unclassified, with a reason."""
    from shapely.geometry import Point, box

    from incubloc.scales.region import assign_region
    from incubloc.studyarea import StudyArea

    cities = gpd.GeoDataFrame(
        {"city": ["A", "B", "C"], "province": ["P", "P", "P"],
         "population": [3_500_000, 300_000, None]},
        geometry=[box(118, 32, 119, 33), box(119, 32, 120, 33), box(120, 32, 121, 33)], crs=4326)
    inc = gpd.GeoDataFrame({"id": ["a", "b", "c"]}, crs=4326,
                           geometry=[Point(118.5, 32.5), Point(119.5, 32.5), Point(120.5, 32.5)])
    r = assign_region(inc, StudyArea({"cities": cities}))
    assert r["tier"].tolist() == ["large_i", "small_i", "unclassified"]
    assert r["settlement"].tolist() == ["A", "B", "C"]
    assert r["settlement_kind"].tolist() == ["city", "city", "city"]
    assert "no settlements layer" not in " ".join(r["reason"])
    assert "'C' has no usable population or tier" in r.loc[2, "reason"]
    # A tier column wins over the population, as in the settlements layer.
    tiered = cities.assign(tier=["super_large", None, "medium"])
    r = assign_region(inc, StudyArea({"cities": tiered}))
    assert r["tier"].tolist() == ["super_large", "small_i", "medium"]
    # Without tier or population the old behaviour stays: unclassified with a reason.
    r = assign_region(inc, StudyArea({"cities": cities.drop(columns="population")}))
    assert (r["tier"] == "unclassified").all()
    assert r["reason"].str.contains("no settlements layer").all()


# --------------------------------------------------------------------------- messages and spellings


@pytest.mark.parametrize(
    ("label", "lower"), [("label", "lower"), ("tier", "lower_bound"), ("label", "lower_bound_persons")]
)
def test_thresholds_table_column_spellings(label, lower):
    table = pd.DataFrame({label: ["big", "small"], lower: [1e6, 0]})
    assert tier_from_population([2e6, 10], thresholds=table).tolist() == ["big", "small"]


def test_thresholds_errors_say_what_to_give():
    with pytest.raises(ConfigError) as err:
        tier_from_population([1], thresholds=pd.DataFrame({"label": ["a"], "x": [1]}))
    assert str(err.value) == (
        "a thresholds table needs the columns 'label' and 'lower' (inclusive lower bound in "
        "persons); got ['label', 'x']"
    )
    with pytest.raises(ConfigError) as err:
        tier_from_population([1], thresholds=5)
    assert str(err.value) == (
        "thresholds must be a table (label, lower), a dict {label: lower} or a sequence of "
        "(label, lower) pairs"
    )
    with pytest.raises(ConfigError, match=r"^tier labels must be unique; got \['a', 'a'\]$"):
        tier_from_population([1], thresholds=[("a", 0), ("a", 5)])
    with pytest.raises(ConfigError) as err:
        tier_from_population([1], thresholds={"a": "many"})
    assert str(err.value) == (
        "the lower bound of tier 'a' is 'many': give a number of persons (or None for a tier "
        "decided by settlement kind)"
    )
    with pytest.raises(ConfigError, match=r"^a thresholds table needs at least one tier with a population bound$"):
        tier_from_population([1], thresholds={"town": None})
    with pytest.raises(ConfigError, match=r"^two tiers share a lower bound: \[\(0\.0, 'a'\), \(0\.0, 'b'\)\]$"):
        tier_from_population([1], thresholds={"a": 0, "b": 0})


def test_kind_only_tiers_and_populations_below_every_bound():
    # NaN and pd.NA bounds mark kind-only tiers like None; kinds are matched trimmed and
    # case-blind; a population under the lowest bound has no tier.
    th = {"Town": float("nan"), "Hamlet": pd.NA, "big": 1000, "small": 100}
    got = tier_from_population([50, 50, 5000, 500, 50], thresholds=th,
                               kind=[" TOWN ", "hamlet", "county", "Town", "county"])
    assert got.tolist() == ["Town", "Hamlet", "big", "Town", "unclassified"]
    assert tier_from_population(np.array([150.0]), thresholds=th).tolist() == ["small"]
    assert tier_from_population(["-5", "abc", None], thresholds=th).tolist() == ["unclassified"] * 3


def test_layer_errors_name_the_layer_and_the_fix():
    inc = _incubators()
    sa = _study()
    sa.layers["settlements"] = sa.layers["settlements"].drop(columns=["kind", "city"])
    with pytest.raises(StudyAreaError) as err:
        assign_region(inc, sa)
    assert str(err.value) == (
        "the study-area layer 'settlements' lacks column(s) city, kind: see "
        "docs/architecture.md for the columns each layer needs"
    )
    sa = _study()
    sa.layers["zones"] = sa.layers["zones"].set_crs(None, allow_override=True)
    with pytest.raises(StudyAreaError, match=r"^the study-area layer 'zones' has no CRS: set one \(EPSG:4326 is expected\)$"):
        assign_region(inc, sa)
    with pytest.raises(ConfigError) as err:
        assign_region(inc, _study(), core_city="Z")
    assert str(err.value) == (
        "core_city 'Z' is not a city of the 'cities' layer; choose one of ['A', 'B', 'C', 'D']"
    )
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match=r"^corridor_buffer_m must be a positive number of metres, not "):
            assign_region(inc, _study(), corridor_buffer_m=bad)
    with pytest.raises(InputError, match=r"^study_area must be a StudyArea: load it with incubloc.load_study_area$"):
        assign_region(inc, {"cities": _cities()})


def test_reasons_are_joined_in_order():
    inc = _gdf({"id": ["x", "gone"]}, [Point(118.85, 32.05), None])
    r = assign_region(inc, _study(settlements=1, corridors=1, zones=1))
    assert r["reason"].tolist() == [
        "no settlements layer in the study area; belt not tested: no corridors layer in the "
        "study area; named zones not tested: no zones layer in the study area",
        "no location (missing or empty geometry)",
    ]
    assert r.loc[1].drop("reason").tolist() == ["unclassified"] * 6
    r = assign_region(inc, StudyArea({}))
    assert r.loc[0, "reason"] == (
        "no cities layer in the study area; no settlements layer in the study area"
    )
    assert r.columns.tolist() == list(REGION_COLUMNS)


@pytest.mark.parametrize(
    ("flags", "core"),
    [
        ([1.0, np.nan, 0.0, 0.0], ["A"]),
        (["yes", "Y", "no", ""], ["A", "B"]),
        ([" true ", "T", "1", "1.0"], ["A", "B", "C", "D"]),
        (["false", "0", None, "n"], []),
        ([2, 0, 0, -1], ["A", "D"]),  # any non-zero number flags the core
    ],
)
def test_core_flag_spellings(flags, core):
    cities = _cities().assign(core=flags)
    inc = _gdf({"id": list("ABCD")}, [Point(118.6, 32.05), Point(118.8, 32.05),
                                      Point(119.0, 32.05), Point(119.6, 32.05)])
    zone = assign_region(inc, StudyArea({"cities": cities}))["zone"].tolist()
    assert [c for c, z in zip("ABCD", zone, strict=True) if z == "core"] == core


def test_belt_widths_from_the_layer_with_bad_values_defaulted():
    # Points 2.2 km and 33 km (0.30° of latitude) south of the corridor.
    inc = _gdf({"id": ["near", "far"]}, [Point(118.8, 31.93), Point(118.8, 31.65)])
    cities = _cities(core=(False,) * 4).assign(geometry=lambda d: d.geometry.buffer(0.0).envelope)
    cities.loc[1, "geometry"] = box(118.7, 31.5, 118.9, 32.1)
    for width, expected in ((0.0, ["belt", "other"]), (np.nan, ["belt", "other"]),
                            (40_000.0, ["belt", "belt"]), (1_000.0, ["other", "other"])):
        sa = StudyArea({"cities": cities, "corridors": _corridors(buffer_m=width)})
        assert assign_region(inc, sa)["zone"].tolist() == expected, width
    # An empty corridor feature is skipped.
    both = pd.concat([_corridors(), _gdf({"name": ["none"], "buffer_m": [3000.0]},
                                         [LineString()])], ignore_index=True)
    sa = StudyArea({"cities": cities, "corridors": both})
    assert assign_region(inc, sa)["zone"].tolist() == ["belt", "other"]


def test_tier_relation_notes_counts_without_city_and_unclassified_tiers():
    s = _gdf({"settlement": ["A", "B", "C", "C", "X"], "city": ["A", "B", "C", "C", "X"],
              "kind": ["county"] * 5, "population": [6e6, 8e5, 1e5, 1e5, None]},
             [box(i, 0, i + 1, 1) for i in range(5)])
    sa = StudyArea({"settlements": s})
    # No city column: counted by settlement name. C is listed twice: counted once.
    df = pd.DataFrame({"settlement": ["A", "A", "A", "B", "X", "nowhere"]})
    r = tier_relation(df, study_area=sa)
    assert r.table["settlement"].tolist() == ["A", "B", "C", "X"]
    assert r.table["count"].tolist() == [3, 1, 0, 1]
    assert r.table["tier"].tolist() == ["extra_large", "medium", "small_ii", "unclassified"]
    assert pd.isna(r.table["tier_rank"].iloc[3])
    assert r.n_settlements == 3 and r.n_incubators == 4  # X (no tier) is left out
    assert r.rho == pytest.approx(1.0) and r.note == ""
    by_tier = r.by_tier
    assert by_tier["tier"].tolist() == ["extra_large", "medium", "small_ii", "unclassified"]
    assert by_tier["n_settlements"].tolist() == [1, 1, 1, 1]
    assert by_tier["mean_per_settlement"].tolist() == [3.0, 1.0, 0.0, 1.0]
    # Two settlements with a tier are too few.
    two = StudyArea({"settlements": s.iloc[:2]})
    r = tier_relation(df, study_area=two)
    assert math.isnan(r.rho) and math.isnan(r.p_t)
    assert r.note == "only 2 settlements with a tier: at least 3 are needed"
    r = tier_relation(pd.DataFrame({"settlement": ["A", "B", "C"]}), study_area=sa)
    assert r.note == "tier or count is the same for every settlement: the correlation is undefined"


# --------------------------------------------------------------------------- more known answers


def test_long_tier_labels_are_kept_whole():
    # Labels longer than "unclassified" (12 characters) must not be cut short.
    thresholds = {"rural_settlement_band": None, "small_urban_settlement": 0,
                  "metropolitan_settlement": 1_000_000}
    got = tier_from_population([5e6, 2e5, 2e5, float("nan")], thresholds=thresholds,
                               kind=["county", "county", "rural_settlement_band", "county"])
    assert got.tolist() == [
        "metropolitan_settlement", "small_urban_settlement", "rural_settlement_band",
        "unclassified",
    ]


def test_projected_layers_are_read_in_lon_lat():
    # Every layer in UTM 50N: the answers are those of the lon/lat world.
    layers = {"cities": _cities().to_crs(32650), "settlements": _settlements().to_crs(32650),
              "corridors": _corridors().to_crs(32650), "zones": _zones().to_crs(32650)}
    inc = _incubators()
    got = assign_region(inc, StudyArea(layers)).set_index(inc["id"])
    assert got.loc["a_core_in_belt", ["city", "settlement", "zone"]].tolist() == ["A", "A", "core"]
    assert got.loc["c_north", ["city", "settlement", "zone"]].tolist() == ["B", "Bcounty", "north"]
    assert got.loc["f_town", ["city", "tier", "zone"]].tolist() == ["C", "town", "north"]


def test_every_corridor_feature_counts_and_empty_ones_are_skipped():
    # An empty feature first, the river second, a line 105 km south last: the point
    # 2.2 km from the river (in B, not core, inside "north") is in the belt.
    lons = np.linspace(118.4, 119.8, 141)
    south = LineString(np.column_stack([lons, np.full(lons.size, 31.0)]))
    corridors = _gdf({"name": ["none", "river", "south"], "buffer_m": [3000.0] * 3},
                     [LineString(), _corridors().geometry.iloc[0], south])
    inc = _gdf({"id": ["b", "c"]}, [Point(*POINTS["b_belt_in_north"]), Point(*POINTS["c_north"])])
    sa = StudyArea({"cities": _cities(), "corridors": corridors, "zones": _zones()})
    assert assign_region(inc, sa)["zone"].tolist() == ["belt", "north"]


def test_half_metre_belt_is_a_valid_width():
    # 0.5 m is a positive width: accepted from the caller and from the layer, and a
    # point 2.2 km from the river is then outside the belt.
    inc = _gdf({"id": ["b"]}, [Point(*POINTS["b_belt_in_north"])])
    sa = StudyArea({"cities": _cities(), "corridors": _corridors(), "zones": _zones()})
    assert assign_region(inc, sa, corridor_buffer_m=0.5)["zone"].tolist() == ["north"]
    sa = StudyArea({"cities": _cities(), "corridors": _corridors(buffer_m=0.5), "zones": _zones()})
    assert assign_region(inc, sa)["zone"].tolist() == ["north"]


def test_cities_layer_tiers_only_for_points_inside():
    # No settlements layer; the cities layer has a tier column but no population, and
    # a "kind" column of its own that must not decide the tier (the city is the
    # settlement, of kind "city").
    cities = _cities().assign(tier=["super_large", "medium", "small_i", "small_ii"])
    inc = _gdf({"id": ["a", "out"]}, [Point(118.6, 32.05), Point(120.5, 32.0)])
    r = assign_region(inc, StudyArea({"cities": cities}))
    assert r.loc[0, ["settlement", "settlement_kind", "tier"]].tolist() == [
        "A", "city", "super_large",
    ]
    assert r.loc[1, ["settlement", "settlement_kind", "tier"]].tolist() == ["unclassified"] * 3
    assert r["reason"].tolist() == ["", "outside the study area (no city polygon contains it)"]
    kinded = _cities().assign(population=[6e6, 2e6, 3e5, 5e4], kind=["town"] * 4)
    r = assign_region(inc, StudyArea({"cities": kinded}))
    assert r["tier"].tolist() == ["extra_large", "unclassified"]


def test_settlement_tier_blanks_and_no_population_column():
    # Tier column only: "" and "  " are blanks, so the (absent) population decides
    # and the tier stays unclassified, except for the town, decided by its kind.
    sett = _settlements(tier=["super_large", "", "  ", None, "medium"]).drop(columns="population")
    sa = StudyArea({"cities": _cities(), "settlements": sett})
    inc = _gdf({"id": ["a", "b", "c", "f"]},
               [Point(*POINTS[k]) for k in ("a_core_in_belt", "b_belt_in_north", "c_north",
                                            "f_town")])
    r = assign_region(inc, sa)
    assert r["tier"].tolist() == ["super_large", "unclassified", "unclassified", "town"]
    assert r.loc[1, "reason"].startswith("settlement 'B' has no usable population or tier")
    assert r.loc[2, "reason"].startswith("settlement 'Bcounty' has no usable population or tier")
    assert not r.loc[0, "reason"].startswith("settlement")


def test_no_core_city_is_logged(caplog):
    inc = _gdf({"id": ["a"]}, [Point(118.6, 32.05)])
    with caplog.at_level(logging.INFO, logger="incubloc.scales.region"):
        assign_region(inc, StudyArea({"cities": _cities(core=(False,) * 4)}))
    assert caplog.messages == [
        "no core city: flag one in the cities layer (core=True) or pass core_city"
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="incubloc.scales.region"):
        assign_region(inc, StudyArea({"cities": _cities()}))
    assert caplog.messages == []


def test_corridors_without_crs_is_named_in_the_error():
    sa = _study()
    sa.layers["corridors"] = sa.layers["corridors"].set_crs(None, allow_override=True)
    with pytest.raises(StudyAreaError, match=r"^the study-area layer 'corridors' has no CRS"):
        assign_region(_incubators(), sa)


def test_count_tables_order_columns_and_dtypes():
    # 40 cities, city i has 1 + i % 2 incubators: the count-2 cities first, ties in
    # order of appearance; tiers outside the standard follow the same rule.
    names = [f"c{i:02d}" for i in range(40) for _ in range(1 + i % 2)]
    df = pd.DataFrame({"city": names, "tier": ["t" + n for n in names]})
    t = region_tables(df)
    odd_then_even = [f"c{i:02d}" for i in range(1, 40, 2)] + [f"c{i:02d}" for i in range(0, 40, 2)]
    assert t["city"]["city"].tolist() == odd_then_even
    assert t["tier"]["tier"].tolist() == ["t" + n for n in odd_then_even]
    assert t["city"]["count"].tolist() == [2] * 20 + [1] * 20
    for key in ("province", "city", "settlement", "tier", "level", "zone"):
        assert t[key].columns.tolist() == [key, "count", "share"], key
        assert t[key]["count"].dtype == "int64", key
        assert t[key].index.tolist() == list(range(len(t[key]))), key
    # With a study area: by count, ties in study-area order (A B C D), zeros kept.
    t = region_tables(_classified(), study_area=_study())
    assert t["city"]["city"].tolist() == ["B", "C", "A", "D", "unclassified"]


def test_region_tables_list_empty_zones_and_provinces_of_the_study_area():
    cities = _cities()
    cities.loc[3, "province"] = "P3"  # D holds no incubator
    zones = _gdf({"zone": ["north", "south"]},
                 [box(118.4, 31.96, 119.8, 32.1), box(119.5, 31.90, 119.7, 31.92)])
    sa = StudyArea({"cities": cities, "settlements": _settlements(), "corridors": _corridors(),
                    "zones": zones})
    t = region_tables(assign_region(_incubators(), sa), study_area=sa)
    assert t["zone"]["zone"].tolist() == ["core", "belt", "north", "south", "other", "unclassified"]
    assert t["zone"]["count"].tolist() == [1, 1, 2, 0, 1, 1]
    assert t["province"]["province"].tolist() == ["P1", "P2", "P3", "unclassified"]
    assert t["province"]["count"].tolist() == [3, 2, 0, 1]


def test_region_tables_zone_rows_follow_the_layers_present():
    inc = _incubators()
    # A core column with no city flagged: "core" is listed, with 0.
    sa = StudyArea({"cities": _cities(core=(False,) * 4)})
    z = region_tables(assign_region(inc, sa), study_area=sa)["zone"]
    assert z.values.tolist() == [["core", 0, 0.0], ["other", 5, 5 / 6], ["unclassified", 1, 1 / 6]]
    # No core column, no corridors, no zones: only "other".
    sa = StudyArea({"cities": _cities().drop(columns="core")})
    z = region_tables(assign_region(inc, sa), study_area=sa)["zone"]
    assert z["zone"].tolist() == ["other", "unclassified"]
    # A study area with zones only: its zones, then other.
    df = pd.DataFrame({"zone": ["north", "other", "north"]})
    t = region_tables(df, study_area=StudyArea({"zones": _zones()}))
    assert t["zone"].values.tolist() == [["north", 2, 2 / 3], ["other", 1, 1 / 3]]
    assert t["settlement"]["settlement"].tolist() == ["unclassified"]


def test_region_tables_cities_stand_in_for_settlements():
    # No settlements layer: every city is a settlement, with its population tier
    # (its own "kind" column does not make it a town); empty ones are listed with 0.
    cities = _cities().assign(population=[6e6, 2e6, 3e5, 5e4], kind=["town"] * 4)
    sa = StudyArea({"cities": cities})
    inc = _gdf({"id": ["a", "b1", "b2"]},
               [Point(118.6, 32.05), Point(118.8, 32.05), Point(118.8, 32.0)])
    t = region_tables(assign_region(inc, sa), study_area=sa)
    assert t["settlement"][["settlement", "count"]].values.tolist() == [
        ["B", 2], ["A", 1], ["C", 0], ["D", 0],
    ]
    assert t["tier"][["tier", "count"]].values.tolist() == [
        ["extra_large", 1], ["large_ii", 2], ["small_i", 0], ["small_ii", 0],
    ]
    # The same without a kind column.
    sa = StudyArea({"cities": cities.drop(columns="kind")})
    t = region_tables(assign_region(inc, sa), study_area=sa)
    assert t["settlement"]["settlement"].tolist() == ["B", "A", "C", "D"]


def test_settlement_table_carries_city_and_tier():
    # Without a study area, city and tier come from the classified rows.
    df = pd.DataFrame({"settlement": ["S1", "S2", "S2"], "city": ["X", "Y", "Y"],
                       "tier": ["medium", "small_i", "small_i"]})
    got = region_tables(df)["settlement"]
    assert got.values.tolist() == [["S2", "Y", "small_i", 2, 2 / 3], ["S1", "X", "medium", 1, 1 / 3]]
    # With one: the study area's tier (population 6 M: extra_large) wins over the rows'.
    df = pd.DataFrame({"settlement": ["A", "B"], "city": ["A", "B"], "tier": ["small_ii"] * 2})
    got = region_tables(df, study_area=_study())["settlement"].set_index("settlement")
    assert got.index.tolist() == ["A", "B", "Bcounty", "Ctown", "D"]
    assert got.loc["A", ["city", "tier", "count"]].tolist() == ["A", "extra_large", 1]


def test_level_and_zone_tables_keep_their_order():
    df = pd.DataFrame({"level": ["municipal", "municipal", "national"],
                       "zone": ["west", "other", "other"]})
    t = region_tables(df)
    assert t["level"][["level", "count"]].values.tolist() == [
        ["national", 1], ["provincial", 0], ["municipal", 2],
    ]
    # No study area: core and belt are listed, then zones of the data, other last.
    assert t["zone"][["zone", "count"]].values.tolist() == [
        ["core", 0], ["belt", 0], ["west", 1], ["other", 2],
    ]
    cl = _classified()
    cl.loc[cl.index[0], "zone"] = "west"  # a zone the study area does not name
    z = region_tables(cl, study_area=_study())["zone"]
    assert z["zone"].tolist() == ["core", "belt", "north", "west", "other", "unclassified"]
    assert z["count"].tolist() == [0, 1, 2, 1, 1, 1]


def test_city_level_table_columns():
    df = pd.DataFrame({"city": ["X", "X", "Y"], "level": ["national", "national", "provincial"]})
    tab = region_tables(df)["city_level"]
    assert tab.columns.tolist() == ["city", "national", "provincial", "municipal", "total", "share"]
    assert tab.columns.name is None
    assert tab.values.tolist() == [["X", 2, 0, 0, 2, 2 / 3], ["Y", 0, 1, 0, 1, 1 / 3]]
    assert (tab.dtypes[["national", "provincial", "municipal", "total"]] == "int64").all()
    df.loc[2, "level"] = None
    tab = region_tables(df)["city_level"]
    assert tab.columns.tolist() == [
        "city", "national", "provincial", "municipal", "unclassified", "total", "share",
    ]


def test_tier_relation_counts_same_named_settlements_by_city():
    # Two districts called Gulou, in cities X and Y; two adjacent tiers only (rank
    # range 1). Counts X-Gulou 3, Y-Gulou 2, Xcounty 1, Ycounty 0.
    sett = _gdf({"settlement": ["Gulou", "Gulou", "Xcounty", "Ycounty"],
                 "city": ["X", "Y", "X", "Y"], "kind": ["central_districts"] * 2 + ["county"] * 2,
                 "population": [4_000_000, 3_500_000, "n/a", 1_500_000],
                 "tier": [None, None, "large_ii", None]},
                [box(i, 0, i + 1, 1) for i in range(4)])
    df = pd.DataFrame({"settlement": ["Gulou"] * 5 + ["Xcounty"],
                       "city": ["X", "X", "X", "Y", "Y", "X"]})
    r = tier_relation(df, study_area=StudyArea({"settlements": sett}))
    assert r.table.columns.tolist() == [
        "settlement", "city", "kind", "population", "tier", "tier_rank", "count",
    ]
    assert r.table["count"].tolist() == [3, 2, 1, 0]
    assert r.table["count"].dtype == "int64"
    assert r.table.index.tolist() == [0, 1, 2, 3]
    assert r.table["population"].tolist()[:2] == [4_000_000.0, 3_500_000.0]
    assert math.isnan(r.table["population"].iloc[2]) and r.table["population"].iloc[3] == 1_500_000
    assert r.table["kind"].tolist() == ["central_districts"] * 2 + ["county"] * 2
    # Ranks (large_i, large_i, large_ii, large_ii) against counts (3, 2, 1, 0):
    # rank vectors (3.5, 3.5, 1.5, 1.5) and (4, 3, 2, 1), rho = 4 / (2 * sqrt 5).
    assert r.rho == pytest.approx(2 / math.sqrt(5))
    assert r.note == ""
    assert r.by_tier.values.tolist() == [["large_i", 2, 5, 2.5], ["large_ii", 2, 1, 0.5]]


def test_tier_relation_without_population_column_and_its_errors():
    sett = _settlements(tier=["super_large", "medium", "small_i", None, "small_ii"])
    r = tier_relation(_classified(), study_area=StudyArea({"settlements": sett.drop(
        columns="population")}))
    assert r.table["tier"].tolist() == ["super_large", "medium", "small_i", "town", "small_ii"]
    assert r.table["population"].isna().all()
    with pytest.raises(MissingLayerError, match=r"^the tier relation needs the study-area layer "
                                                r"'settlements'"):
        tier_relation(_classified(), study_area=_study(settlements=1))
    with pytest.raises(StudyAreaError, match=r"^the study-area layer 'settlements' lacks "
                                             r"column\(s\) kind:"):
        tier_relation(_classified(), study_area=StudyArea({"settlements": sett.drop(
            columns="kind")}))


def test_region_summary_dict_keys():
    d = region_summary(_classified(), study_area=_study()).to_dict()
    assert list(d) == ["n", "province_ratio", "shares", "tier_relation"]
    assert list(d["tier_relation"]) == [
        "rho", "p_t", "n_settlements", "n_incubators", "note", "table", "by_tier",
    ]
