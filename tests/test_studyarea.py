"""Study-area loading: layers present / missing, CRS, repairs."""

import geopandas as gpd
import pytest
from shapely.geometry import LineString, Point, Polygon, box

from incubloc.errors import MissingLayerError, StudyAreaError
from incubloc.studyarea import ANALYSES, LAYERS, StudyArea, load_study_area, write_study_area


def _cities():
    return gpd.GeoDataFrame(
        {"city": ["A", "B"], "province": ["P", "P"]},
        geometry=[box(118.0, 32.0, 118.5, 32.5), box(118.5, 32.0, 119.0, 32.5)],
        crs=4326,
    )


def test_missing_layers_disable_analyses_without_crashing(tmp_path):
    path = write_study_area(StudyArea({"cities": _cities()}), tmp_path / "a.gpkg")
    sa = load_study_area(path)
    assert sa.has("cities") and not sa.has("rings")
    disabled = sa.disabled()
    assert "rings and ring patterns" in disabled
    assert disabled["rings and ring patterns"] == ("rings",)
    assert "city and province" not in disabled
    assert "disabled: rings and ring patterns (missing layer rings)" in sa.summary()


def test_require_names_layer_and_analysis(tmp_path):
    path = write_study_area(StudyArea({"cities": _cities()}), tmp_path / "a.gpkg")
    sa = load_study_area(path)
    with pytest.raises(MissingLayerError) as err:
        sa.require("hosts", "relation")
    msg = str(err.value)
    assert "'hosts'" in msg and "relation" in msg and "a.gpkg" in msg


def test_layer_without_required_column_is_named(tmp_path):
    bad = gpd.GeoDataFrame({"name": ["x"]}, geometry=[box(0, 0, 1, 1)], crs=4326)
    path = tmp_path / "bad.gpkg"
    bad.to_file(path, layer="rings")
    with pytest.raises(StudyAreaError, match=r"layer 'rings' .* lacks column\(s\) city, ring"):
        load_study_area(path)


def test_projected_layers_come_back_in_wgs84(tmp_path):
    c = _cities().to_crs(32650)
    path = tmp_path / "p.gpkg"
    c.to_file(path, layer="cities")
    sa = load_study_area(path)
    assert sa.layers["cities"].crs.to_epsg() == 4326
    assert sa.layers["cities"].geometry.iloc[0].contains(Point(118.25, 32.25))


def test_invalid_polygon_is_repaired_and_reported(tmp_path):
    bowtie = Polygon([(118.0, 32.0), (118.2, 32.2), (118.2, 32.0), (118.0, 32.2)])
    assert not bowtie.is_valid
    hosts = gpd.GeoDataFrame({"kind": ["university"]}, geometry=[bowtie], crs=4326)
    path = tmp_path / "h.gpkg"
    hosts.to_file(path, layer="hosts")
    sa = load_study_area(path)
    geom = sa.layers["hosts"].geometry.iloc[0]
    assert geom.is_valid and geom.geom_type in ("Polygon", "MultiPolygon")
    # The two triangles of the bow-tie survive: area of both, 2 * (0.2*0.1/2).
    assert geom.area == pytest.approx(0.02, rel=1e-6)
    assert any("repaired 1 invalid" in r and "'hosts'" in r for r in sa.repairs)


def test_not_a_geopackage(tmp_path):
    p = tmp_path / "x.gpkg"
    p.write_text("not a database")
    with pytest.raises(StudyAreaError, match="cannot open study area"):
        load_study_area(p)
    with pytest.raises(StudyAreaError, match="does not exist"):
        load_study_area(tmp_path / "missing.gpkg")


def test_every_analysis_names_known_layers():
    for needs in ANALYSES.values():
        assert set(needs) <= set(LAYERS)


def test_corridor_lines_roundtrip(tmp_path):
    yangtze = gpd.GeoDataFrame(
        {"name": ["Yangtze"], "buffer_m": [30000.0]},
        geometry=[LineString([(118.3, 31.3), (118.8, 32.1)])],
        crs=4326,
    )
    p = write_study_area(StudyArea({"corridors": yangtze}), tmp_path / "c.gpkg")
    assert load_study_area(p).layers["corridors"].geometry.iloc[0].geom_type == "LineString"
