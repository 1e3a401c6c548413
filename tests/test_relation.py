"""Relation to host spaces (园中园 / 独立 / 混合) on hand-built geometry."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from incubloc.errors import ConfigError, InputError, StudyAreaError
from incubloc.scales.relation import HOST_KINDS, RELATIONS, classify_relation, site_relation

CRS = "EPSG:32650"  # UTM 50N, metres; Nanjing lies in this zone
X0, Y0 = 670_000.0, 3_548_000.0


def _gdf(data, geoms, crs=CRS):
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)


def _hosts():
    """A high-tech zone containing a science park, a university elsewhere."""
    return _gdf(
        {
            "host_id": ["zone", "sp", "uni"],
            "name": ["高新区", "软件园", "大学"],
            "kind": ["high_tech_zone", "science_park", "university"],
        },
        [
            box(X0, Y0, X0 + 5000, Y0 + 5000),
            box(X0 + 1000, Y0 + 1000, X0 + 2000, Y0 + 2000),
            box(X0 + 10_000, Y0, X0 + 11_000, Y0 + 1000),
        ],
    )


def test_constants():
    assert HOST_KINDS == (
        "university", "research", "development_zone", "high_tech_zone",
        "industrial_park", "science_park", "other",
    )
    assert set(RELATIONS) == {"park_in_park", "standalone", "mixed", "unclassified"}


def test_site_wholly_inside_a_host():
    inc = _gdf({"id": ["a"]}, [Point(X0 + 10_500, Y0 + 500)])
    sites = _gdf({"incubator_id": ["a"]}, [box(X0 + 10_200, Y0 + 200, X0 + 10_400, Y0 + 400)])
    s = site_relation(inc, sites, _hosts())
    assert s.loc[0, "relation"] == "park_in_park"
    assert s.loc[0, "host_id"] == "uni" and s.loc[0, "host_kind"] == "university"
    assert s.loc[0, "share_inside"] == pytest.approx(1.0)
    assert s.loc[0, "site_id"] == "a/1"  # generated: incubator id / sequence
    r = classify_relation(inc, sites, _hosts())
    assert r.loc[0, ["relation", "host_id", "host_kind", "n_sites"]].tolist() == [
        "park_in_park", "uni", "university", 1,
    ]


def test_straddling_site_share_decides():
    host = _gdf({"host_id": ["h"], "name": ["园"], "kind": ["industrial_park"]},
                [box(X0, Y0, X0 + 1000, Y0 + 1000)])
    # Two 100 m × 100 m sites crossing the host's east edge (x = X0 + 1000).
    east = X0 + 1000
    s60 = box(east - 60, Y0 + 100, east + 40, Y0 + 200)
    s40 = box(east - 40, Y0 + 400, east + 60, Y0 + 500)
    expected_60 = (60 * 100) / (100 * 100)
    expected_40 = (40 * 100) / (100 * 100)
    inc = _gdf({"id": ["p", "q"]}, [s60.centroid, s40.centroid])
    sites = _gdf({"incubator_id": ["p", "q"], "site_id": ["p1", "q1"]}, [s60, s40])
    s = site_relation(inc, sites, host)
    assert s["site_id"].tolist() == ["p1", "q1"]
    assert s["relation"].tolist() == ["park_in_park", "standalone"]
    assert s["share_inside"].tolist() == pytest.approx([expected_60, expected_40])
    assert s.loc[1, "host_id"] is None
    assert "60%" in s.loc[0, "reason"] and "40%" in s.loc[1, "reason"]
    # The threshold is a parameter: at 0.7 neither is inside, at 0.4 both are.
    assert site_relation(inc, sites, host, min_share=0.7)["relation"].tolist() == [
        "standalone", "standalone",
    ]
    assert site_relation(inc, sites, host, min_share=0.4)["relation"].tolist() == [
        "park_in_park", "park_in_park",
    ]


def test_tolerance_grows_hosts():
    host = _gdf({"host_id": ["h"], "kind": ["university"]}, [box(X0, Y0, X0 + 1000, Y0 + 1000)])
    inc = _gdf({"id": ["a"]}, [Point(X0 + 1005, Y0 + 500)])  # 5 m east of the edge
    assert classify_relation(inc, None, host).loc[0, "relation"] == "standalone"
    r = classify_relation(inc, None, host, tolerance_m=10)
    assert r.loc[0, "relation"] == "park_in_park"
    assert "10 m" in r.loc[0, "reason"]


def test_nested_hosts_smallest_wins():
    inc = _gdf({"id": ["in_sp", "in_zone"]},
               [Point(X0 + 1500, Y0 + 1500), Point(X0 + 3500, Y0 + 3500)])
    r = classify_relation(inc, None, _hosts())
    assert r["host_id"].tolist() == ["sp", "zone"]
    assert r["host_kind"].tolist() == ["science_park", "high_tech_zone"]
    assert r["relation"].tolist() == ["park_in_park", "park_in_park"]
    # Same with a polygon site lying in both.
    sites = _gdf({"incubator_id": ["in_sp"]}, [box(X0 + 1100, Y0 + 1100, X0 + 1300, Y0 + 1300)])
    assert classify_relation(inc, sites, _hosts()).loc[0, "host_id"] == "sp"


def test_multi_site_incubator_one_in_one_out_is_mixed():
    inc = _gdf({"id": ["m"]}, [Point(X0 + 1500, Y0 + 1500)])
    inside = box(X0 + 10_100, Y0 + 100, X0 + 10_300, Y0 + 300)  # in the university
    outside = box(X0 + 20_000, Y0, X0 + 20_500, Y0 + 500)  # in nothing
    sites = _gdf({"incubator_id": ["m", "m"], "site_id": ["m-a", "m-b"]}, [inside, outside])
    r = classify_relation(inc, sites, _hosts())
    assert r.loc[0, "relation"] == "mixed"
    assert r.loc[0, "host_id"] == "uni" and r.loc[0, "host_kind"] == "university"
    assert r.loc[0, "n_sites"] == 2
    assert r.loc[0, "reason"] == "1 of 2 sites inside hosts"


def test_multi_site_host_of_largest_inside_site():
    inc = _gdf({"id": ["m"]}, [Point(X0 + 1500, Y0 + 1500)])
    small = box(X0 + 10_100, Y0 + 100, X0 + 10_150, Y0 + 150)  # 2 500 m² in the university
    large = box(X0 + 1100, Y0 + 1100, X0 + 1500, Y0 + 1500)  # 160 000 m² in the science park
    sites = _gdf({"incubator_id": ["m", "m"]}, [small, large])
    r = classify_relation(inc, sites, _hosts())
    assert r.loc[0, "relation"] == "park_in_park"
    assert r.loc[0, "host_id"] == "sp"
    assert r.loc[0, "reason"] == "2 of 2 sites inside hosts"


def test_incubator_without_site_row_uses_its_point():
    inc = _gdf({"id": ["with_site", "point_only"]},
               [Point(X0 + 30_000, Y0), Point(X0 + 10_500, Y0 + 500)])
    sites = _gdf({"incubator_id": ["with_site"]}, [box(X0 + 29_900, Y0, X0 + 30_000, Y0 + 100)])
    r = classify_relation(inc, sites, _hosts())
    assert r["relation"].tolist() == ["standalone", "park_in_park"]
    assert r.loc[1, "reason"].startswith("point inside university")


def test_hosts_missing_or_empty_is_unclassified():
    inc = _gdf({"id": ["a", "b"]}, [Point(X0, Y0), Point(X0 + 10, Y0)])
    r = classify_relation(inc, None, None)
    assert (r["relation"] == "unclassified").all()
    assert (r["reason"] == "no hosts layer").all()
    assert r["host_id"].isna().all()
    empty = _hosts().iloc[:0]
    assert (classify_relation(inc, None, empty)["reason"] == "hosts layer is empty").all()


def test_declared_labels_are_never_read():
    inc = _gdf({"id": ["a", "b"]}, [Point(X0 + 1500, Y0 + 1500), Point(X0 + 50_000, Y0)])
    plain = classify_relation(inc, None, _hosts())
    liar = inc.assign(
        declared_relation=["standalone", "park_in_park"],
        relation=["mixed", "mixed"],
        declared_layout=["building", "park"],
        layout=["park", "building"],
        host_id=["x", "y"],
    )
    lied = classify_relation(liar, None, _hosts())
    pd.testing.assert_frame_equal(plain, lied)
    assert lied["relation"].tolist() == ["park_in_park", "standalone"]


def test_index_and_order_are_kept_and_nothing_dropped():
    inc = _gdf({"id": ["c", "a", "b"]},
               [Point(X0 + 1500, Y0 + 1500), Point(X0 + 50_000, Y0), Point()],
               ).set_index(pd.Index([30, 10, 20]))
    r = classify_relation(inc, None, _hosts())
    assert r.index.tolist() == [30, 10, 20]
    assert r["relation"].tolist() == ["park_in_park", "standalone", "unclassified"]
    assert r["host_id"].tolist() == ["sp", None, None]
    assert r["host_kind"].tolist() == ["science_park", None, None]
    assert r["n_sites"].dtype == np.int64
    assert "no location" in r.loc[20, "reason"]


def test_site_without_geometry_is_ignored_when_others_decide():
    inc = _gdf({"id": ["a"]}, [Point(X0 + 1500, Y0 + 1500)])
    sites = _gdf({"incubator_id": ["a", "a"]}, [box(X0 + 1100, Y0 + 1100, X0 + 1200, Y0 + 1200), None])
    r = classify_relation(inc, sites, _hosts())
    assert r.loc[0, "relation"] == "park_in_park"
    assert "1 site(s) ignored: site has no geometry" in r.loc[0, "reason"]


def test_wgs84_input_gives_the_same_answer():
    host = _gdf({"host_id": ["h"], "kind": ["industrial_park"]}, [box(X0, Y0, X0 + 1000, Y0 + 1000)])
    east = X0 + 1000
    s60 = box(east - 60, Y0 + 100, east + 40, Y0 + 200)
    inc = _gdf({"id": ["p"]}, [s60.centroid]).to_crs(4326)
    sites = _gdf({"incubator_id": ["p"]}, [s60]).to_crs(4326)
    s = site_relation(inc, sites, host.to_crs(4326), crs=CRS)
    assert s.loc[0, "relation"] == "park_in_park"
    assert s.loc[0, "share_inside"] == pytest.approx(0.6, abs=1e-6)
    # Default CRS (local UTM) chosen from the WGS84 incubators gives the same.
    assert site_relation(inc, sites, host.to_crs(4326))["share_inside"].iloc[0] == pytest.approx(
        0.6, abs=1e-3
    )


def test_integer_ids_match_string_site_ids():
    inc = _gdf({"id": [1, 2]}, [Point(X0, Y0), Point(X0 + 50_000, Y0)])
    sites = _gdf({"incubator_id": ["1"]}, [box(X0 + 10_100, Y0 + 100, X0 + 10_200, Y0 + 200)])
    r = classify_relation(inc, sites, _hosts())
    assert r["relation"].tolist() == ["park_in_park", "standalone"]


def test_bad_inputs_raise_clear_errors():
    inc = _gdf({"id": ["a"]}, [Point(X0, Y0)])
    with pytest.raises(InputError, match="incubator_id"):
        classify_relation(inc, _gdf({"x": [1]}, [Point(X0, Y0)]), _hosts())
    with pytest.raises(ConfigError, match="min_share"):
        classify_relation(inc, None, _hosts(), min_share=0)
    dup = _gdf({"id": ["a", "a"]}, [Point(X0, Y0), Point(X0, Y0)])
    with pytest.raises(InputError, match="more than once"):
        classify_relation(dup, _gdf({"incubator_id": ["a"]}, [Point(X0, Y0)]), _hosts())


def test_many_sites_vectorised_counts():
    rng = np.random.default_rng(0)
    xs = rng.uniform(X0 - 2000, X0 + 7000, 300)
    ys = rng.uniform(Y0 - 2000, Y0 + 7000, 300)
    inc = _gdf({"id": [f"i{k}" for k in range(300)]}, list(gpd.points_from_xy(xs, ys)))
    r = classify_relation(inc, None, _hosts())
    in_zone = (xs >= X0) & (xs <= X0 + 5000) & (ys >= Y0) & (ys <= Y0 + 5000)
    in_sp = (xs >= X0 + 1000) & (xs <= X0 + 2000) & (ys >= Y0 + 1000) & (ys <= Y0 + 2000)
    assert (r["relation"] == "park_in_park").to_numpy().tolist() == in_zone.tolist()
    assert (r["host_id"] == "sp").to_numpy().tolist() == in_sp.tolist()


def _named_host_and_sites():
    """A named 1 km industrial park, an unnamed university, and one site of each kind.

    p: a 100 m square straddling the park's east edge, 60 m of its width inside (60 %);
    q: the same with 40 m inside (40 %); r: a point in the park; s: a point in no
    host; u: a point in the university; t: a site row without geometry; v: an
    incubator without location or site.
    """
    hosts = _gdf(
        {"host_id": ["h", "u"], "name": ["园", None], "kind": ["industrial_park", "university"]},
        [box(X0, Y0, X0 + 1000, Y0 + 1000), box(X0 + 3000, Y0, X0 + 4000, Y0 + 1000)],
    )
    east = X0 + 1000
    inc = _gdf({"id": list("pqrsutv")},
               [Point(east, Y0 + 150), Point(east, Y0 + 450), Point(X0 + 500, Y0 + 500),
                Point(X0 + 5000, Y0), Point(X0 + 3500, Y0 + 500), Point(X0 + 10, Y0 + 10), Point()])
    sites = _gdf({"incubator_id": ["p", "q", "t"], "site_id": ["p1", "q1", "t1"]},
                 [box(east - 60, Y0 + 100, east + 40, Y0 + 200),
                  box(east - 40, Y0 + 400, east + 60, Y0 + 500), None])
    return inc, sites, hosts


def test_site_reasons_name_the_share_the_host_and_the_threshold():
    inc, sites, hosts = _named_host_and_sites()
    s = site_relation(inc, sites, hosts).set_index("site_id")
    assert s["relation"].to_dict() == {
        "p1": "park_in_park", "q1": "standalone", "t1": "unclassified", "r": "park_in_park",
        "s": "standalone", "u": "park_in_park", "v": "unclassified",
    }
    assert s["reason"].to_dict() == {
        "p1": "60% of the site inside industrial_park 园",
        "q1": "at most 40% of the site inside any host (needs 50%)",
        "t1": "site has no geometry",
        "r": "point inside industrial_park 园",
        "s": "point outside every host",
        "u": "point inside university u",  # no name: the host id stands in
        "v": "incubator has no location and no site geometry",
    }
    assert s.index.tolist() == ["p1", "q1", "r", "s", "u", "t1", "v"]  # incubator order
    assert s["host_id"].tolist() == ["h", None, "h", None, "u", None, None]
    assert s["host_kind"].tolist() == [
        "industrial_park", None, "industrial_park", None, "university", None, None,
    ]
    share = s["share_inside"].to_dict()
    assert [share[k] for k in ("p1", "q1", "r", "s", "u")] == pytest.approx([0.6, 0.4, 1.0, 0.0, 1.0])
    assert np.isnan(share["t1"]) and np.isnan(share["v"])
    assert s.columns.tolist() == [
        "incubator_id", "relation", "host_id", "host_kind", "share_inside", "reason",
    ]


def test_site_reasons_name_the_tolerance_and_a_moved_threshold():
    inc, sites, hosts = _named_host_and_sites()
    # Grown by 10 m the park holds 70 m and 50 m of the two straddling sites' widths.
    s = site_relation(inc, sites, hosts, tolerance_m=10.0).set_index("site_id")
    assert s.loc["p1", "reason"] == "70% of the site inside industrial_park 园 (hosts grown by 10 m)"
    assert s.loc["q1", "reason"] == "50% of the site inside industrial_park 园 (hosts grown by 10 m)"
    assert s.loc["s", "reason"] == "point outside every host (hosts grown by 10 m)"
    assert s.loc["r", "reason"] == "point inside industrial_park 园 (hosts grown by 10 m)"
    assert s.loc[["p1", "q1"], "share_inside"].tolist() == pytest.approx([0.7, 0.5])
    s = site_relation(inc, sites, hosts, tolerance_m=2.25, min_share=0.75).set_index("site_id")
    assert s.loc["p1", "reason"] == (
        "at most 62% of the site inside any host (needs 75%) (hosts grown by 2.25 m)"
    )
    assert s.loc["p1", "relation"] == "standalone"
    # Below a metre too: grown by 0.75 m the park holds 40.75 m of q's 100 m.
    s = site_relation(inc, sites, hosts, tolerance_m=0.75).set_index("site_id")
    assert s.loc["q1", "reason"] == (
        "at most 41% of the site inside any host (needs 50%) (hosts grown by 0.75 m)"
    )


def test_incubator_reasons_count_the_sites_and_the_ignored_ones():
    inc, sites, hosts = _named_host_and_sites()
    east = X0 + 1000
    more = _gdf(
        {"incubator_id": ["m", "m", "m", "e", "e", "f", "f"]},
        [Point(X0 + 3500, Y0 + 500), None, Point(X0 + 9000, Y0),  # in u, empty, outside
         None, None,  # two empty sites
         Point(X0 + 3600, Y0 + 500), Point(X0 + 500, Y0 + 500)],  # two points: u first, then h
    )
    inc2 = _gdf({"id": ["m", "e", "f"]}, [Point(east, Y0)] * 3)
    r = classify_relation(inc2, more, hosts)
    assert r["relation"].tolist() == ["mixed", "unclassified", "park_in_park"]
    assert r["reason"].tolist() == [
        "1 of 2 sites inside hosts; 1 site(s) ignored: site has no geometry",
        "all sites unclassified: site has no geometry",
        "2 of 2 sites inside hosts",
    ]
    assert r["n_sites"].tolist() == [3, 2, 2]
    # Points have no area: the first site inside a host gives the host.
    assert r["host_id"].tolist() == ["u", None, "u"]
    assert r["host_kind"].tolist() == ["university", None, "university"]
    assert r.columns.tolist() == ["relation", "host_id", "host_kind", "n_sites", "reason"]
    # Without hosts every site is unclassified; the distinct reasons are listed once each.
    none = classify_relation(inc2, more, None)
    assert none["reason"].tolist() == [
        "all sites unclassified: no hosts layer; site has no geometry",
        "all sites unclassified: site has no geometry",
        "all sites unclassified: no hosts layer",
    ]
    # One site per incubator: the site's own reason.
    one = classify_relation(inc, sites, hosts)
    assert one["reason"].tolist()[:4] == [
        "60% of the site inside industrial_park 园",
        "at most 40% of the site inside any host (needs 50%)",
        "point inside industrial_park 园",
        "point outside every host",
    ]


def test_hosts_without_ids_keep_their_names_whatever_their_index():
    # A filtered layer keeps its index (here 10, 20): ids and names still follow the rows.
    hosts = _gdf({"name": ["甲园", "乙园"], "kind": ["science_park", None]},
                 [box(X0, Y0, X0 + 100, Y0 + 100), box(X0 + 500, Y0, X0 + 600, Y0 + 100)])
    hosts.index = pd.Index([10, 20])
    inc = _gdf({"id": ["a", "b"]}, [Point(X0 + 50, Y0 + 50), Point(X0 + 550, Y0 + 50)])
    s = site_relation(inc, None, hosts)
    assert s["host_id"].tolist() == ["host-1", "host-2"]
    assert s["host_kind"].tolist() == ["science_park", "other"]
    assert s["reason"].tolist() == ["point inside science_park 甲园", "point inside other 乙园"]


def test_hosts_layer_without_crs_is_named_in_the_error():
    inc = _gdf({"id": ["a"]}, [Point(X0, Y0)])
    hosts = _hosts().set_crs(None, allow_override=True)
    with pytest.raises(StudyAreaError, match=r"^the hosts layer has no CRS: set one \(EPSG:4326 is expected\)$"):
        site_relation(inc, None, hosts)


def test_site_relation_measures_in_the_crs_given():
    # A 100 m lon/lat site half inside a host; the outer half is ~47 m wide. Grown by
    # 50 units the host covers it in UTM metres, not in Web Mercator (1 unit ≈ 0.85 m).
    inc = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.8, 32.05)], crs=4326)
    site = gpd.GeoDataFrame({"incubator_id": ["a"]}, geometry=[box(118.7995, 32.0495, 118.8005, 32.0505)],
                            crs=4326)
    host = gpd.GeoDataFrame({"host_id": ["h"], "kind": ["university"]},
                            geometry=[box(118.7995, 32.0495, 118.8000, 32.0505)], crs=4326)
    assert site_relation(inc, site, host, tolerance_m=50.0)["share_inside"].iloc[0] == pytest.approx(1.0)
    merc = site_relation(inc, site, host, tolerance_m=50.0, crs=3857)["share_inside"].iloc[0]
    assert 0.5 < merc < 0.99


def test_analysis_crs_comes_from_the_incubators_then_the_sites():
    # The site of the CRS test above, with a 50 m tolerance: fully inside in UTM metres,
    # not in Web Mercator units.
    site = gpd.GeoDataFrame({"incubator_id": ["a"]}, geometry=[box(118.7995, 32.0495, 118.8005, 32.0505)],
                            crs=4326)
    host = gpd.GeoDataFrame({"host_id": ["h"], "kind": ["university"]},
                            geometry=[box(118.7995, 32.0495, 118.8000, 32.0505)], crs=4326)
    inc = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(118.8, 32.05)], crs=4326)
    # Projected incubators set the CRS, whatever the sites' CRS.
    merc = site_relation(inc.to_crs(3857), site, host, tolerance_m=50.0)
    assert 0.5 < merc["share_inside"].iloc[0] < 0.99
    # Incubators without a location: the projected sites set it.
    nowhere = gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point()], crs=4326)
    utm = site_relation(nowhere, site.to_crs(CRS), host, tolerance_m=50.0)
    assert utm["share_inside"].iloc[0] == pytest.approx(1.0)
    # classify_relation follows the same rule, and the crs it is given.
    strict = {"tolerance_m": 50.0, "min_share": 0.95}
    assert classify_relation(inc, site, host, **strict)["relation"].tolist() == ["park_in_park"]
    assert classify_relation(inc, site, host, crs=3857, **strict)["relation"].tolist() == ["standalone"]
    assert classify_relation(inc.to_crs(3857), site, host, **strict)["relation"].tolist() == [
        "standalone"
    ]
    assert classify_relation(nowhere, site.to_crs(CRS), host, **strict)["relation"].tolist() == [
        "park_in_park"
    ]


def test_degenerate_hosts_are_dropped_with_a_warning_and_broken_ones_repaired(caplog):
    # A 0.5 m × 0.5 m host still has area; a line and a missing geometry have none.
    tiny = box(X0, Y0, X0 + 0.5, Y0 + 0.5)
    # A bow-tie (self-intersecting) host: its large lobe holds the site.
    bow = shapely.Polygon([(X0 + 1000, Y0), (X0 + 1300, Y0 + 300), (X0 + 1300, Y0), (X0 + 1000, Y0 + 100)])
    assert not bow.is_valid
    hosts = _gdf({"host_id": ["tiny", "line", "none", "empty", "bow"], "kind": ["other"] * 5},
                 [tiny, LineString([(X0, Y0), (X0 + 10, Y0)]), None, shapely.Polygon(), bow])
    inc = _gdf({"id": ["t", "b"]}, [Point(X0 + 0.25, Y0 + 0.25), Point(X0 + 1250, Y0 + 100)])
    sites = _gdf({"incubator_id": ["b"]}, [box(X0 + 1250, Y0 + 20, X0 + 1290, Y0 + 80)])
    with caplog.at_level("WARNING", logger="incubloc.scales.relation"):
        s = site_relation(inc, sites, hosts)
    assert s["host_id"].tolist() == ["tiny", "bow"]
    assert s["share_inside"].tolist() == pytest.approx([1.0, 1.0])
    assert [r.getMessage() for r in caplog.records] == [
        "hosts layer: ignored 3 features without polygon area"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="incubloc.scales.relation"):
        site_relation(inc, sites, hosts.iloc[[0, 4]])
    assert caplog.records == []  # nothing dropped, nothing said


def test_no_incubators_and_option_ranges_of_classify_relation():
    inc = _gdf({"id": []}, []).rename_axis("key")
    r = classify_relation(inc, None, _hosts())
    assert len(r) == 0 and r.index.name == "key"
    assert r.columns.tolist() == ["relation", "host_id", "host_kind", "n_sites", "reason"]
    one = _gdf({"id": ["a"]}, [Point(X0, Y0)])
    with pytest.raises(ConfigError, match="tolerance_m"):
        classify_relation(one, None, _hosts(), tolerance_m=-1.0)
    with pytest.raises(ConfigError, match="min_share"):
        classify_relation(one, None, _hosts(), min_share=1.5)


def test_equal_hosts_larger_share_then_layer_order():
    # Two overlapping 100 m × 100 m hosts (equal areas): A spans x 0-100, B x 20-120.
    a, b = box(X0, Y0, X0 + 100, Y0 + 100), box(X0 + 20, Y0, X0 + 120, Y0 + 100)
    straddle = box(X0 + 10, Y0 + 40, X0 + 90, Y0 + 60)  # 100 % in A, 87.5 % in B
    both = box(X0 + 30, Y0 + 40, X0 + 90, Y0 + 60)  # 100 % in each
    inc = _gdf({"id": ["s", "t"]}, [Point(X0 + 50, Y0 + 50)] * 2)
    sites = _gdf({"incubator_id": ["s", "t"]}, [straddle, both])
    for order in (["A", "B"], ["B", "A"]):
        geoms = {"A": a, "B": b}
        hosts = _gdf({"host_id": order, "kind": ["university"] * 2}, [geoms[h] for h in order])
        s = site_relation(inc, sites, hosts)
        assert s.loc[0, "host_id"] == "A"  # the larger share
        assert s.loc[1, "host_id"] == order[0]  # a full tie: the first host of the layer


def test_share_reported_is_that_of_the_winning_host():
    # 60 % in the science park (the smallest qualifying host), 100 % in the zone around it.
    inc = _gdf({"id": ["a"]}, [Point(X0 + 1990, Y0 + 1150)])
    sites = _gdf({"incubator_id": ["a"]}, [box(X0 + 1940, Y0 + 1100, X0 + 2040, Y0 + 1200)])
    s = site_relation(inc, sites, _hosts())
    assert s.loc[0, "host_id"] == "sp"
    assert s.loc[0, "share_inside"] == pytest.approx(0.6)
    assert s.loc[0, "reason"] == "60% of the site inside science_park 软件园"
