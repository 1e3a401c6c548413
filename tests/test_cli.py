"""The command line on the bundled data and on user mistakes."""

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point

from incubloc.coords import wgs84_to_gcj02
from incubloc.datasets import nanjing_incubators_path, nanjing_study_area_path
from incubloc.shells.cli import main

OSM = Path(__file__).parent / "fixtures" / "osm" / "nanjing_sample.osm"


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "incubloc.cli", *args], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def classified(tmp_path_factory):
    out = tmp_path_factory.mktemp("cls") / "nanjing.gpkg"
    assert main(["-q", "classify", "--example", "nanjing", "-o", str(out)]) == 0
    return out


def test_classify_bundled_sample(classified):
    inc = gpd.read_file(classified, layer="incubators")
    src = pd.read_csv(nanjing_incubators_path())
    assert len(inc) == len(src) == 200
    assert inc["id"].tolist() == src["id"].tolist()  # same rows, same order
    for col in ("id", "city", "province", "settlement", "tier", "zone", "ring", "relation",
                "layout", "reason"):
        assert col in inc.columns
    assert (inc["city"] == "Nanjing").mean() > 0.60
    # Nanjing's central districts hold ~8.2 M residents: extra_large by the 2014 standard.
    assert set(inc.loc[inc["city"] == "Nanjing", "tier"]) == {"extra_large"}
    rings = gpd.read_file(classified, layer="city_rings")
    assert {"city", "ring_pattern", "n_rings", "form"} <= set(rings.columns)
    prov = json.loads(gpd.read_file(classified, layer="provenance")["record"].iloc[0])
    assert len(prov["inputs"]["incubators"]["sha256"]) == 64


def test_bundled_shares_follow_the_paper(classified):
    """Relation and layout come from geometry; the paper's shares are ±3 points."""
    inc = gpd.read_file(classified, layer="incubators")
    rel = inc["relation"].value_counts(normalize=True)
    lay = inc["layout"].value_counts(normalize=True)
    assert rel["park_in_park"] == pytest.approx(0.72, abs=0.03)
    assert rel["standalone"] == pytest.approx(0.25, abs=0.03)
    assert rel["mixed"] == pytest.approx(0.03, abs=0.02)
    assert lay["park"] == pytest.approx(0.76, abs=0.03)
    assert lay["building"] == pytest.approx(0.19, abs=0.03)
    assert lay["mixed"] == pytest.approx(0.05, abs=0.02)


def test_classifier_does_not_read_declared_labels(tmp_path):
    """Scrambled declared labels change nothing in the derived classes."""
    src = pd.read_csv(nanjing_incubators_path())
    scrambled = src.copy()
    scrambled["relation"] = "standalone"
    scrambled["layout"] = "building"
    p = tmp_path / "scrambled.csv"
    scrambled.to_csv(p, index=False)
    out_a, out_b = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    sites = str(Path(nanjing_incubators_path()).with_name("nanjing_sites.gpkg"))
    common = ["--study-area", str(nanjing_study_area_path()), "--sites", sites, "--coords", "gcj02"]
    assert main(["-q", "classify", str(nanjing_incubators_path()), *common, "-o", str(out_a)]) == 0
    assert main(["-q", "classify", str(p), *common, "-o", str(out_b)]) == 0
    a = gpd.read_file(out_a, layer="incubators")
    b = gpd.read_file(out_b, layer="incubators")
    pd.testing.assert_series_equal(a["relation"], b["relation"])
    pd.testing.assert_series_equal(a["layout"], b["layout"])


def test_user_error_exit_2_without_traceback(tmp_path):
    lon, lat = wgs84_to_gcj02(118.78, 32.05)
    p = tmp_path / "bad.csv"
    p.write_text(f"id,lon,lat\nA,{lon},{lat}\nA,{lon},{lat}\n", encoding="utf-8")
    proc = _run("classify", str(p), "--coords", "gcj02",
                "--study-area", str(nanjing_study_area_path()), "-o", str(tmp_path / "o.gpkg"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "duplicate" in proc.stderr.lower() and "A" in proc.stderr
    assert not (tmp_path / "o.gpkg").exists()


def test_console_script_exits_through_the_quick_entry_point(monkeypatch):
    import gc
    import importlib.metadata as md

    from incubloc.shells import cli

    (ep,) = [e for e in md.entry_points(group="console_scripts") if e.name == "incubloc"]
    assert ep.value == "incubloc.shells.cli:entry_point"
    frozen = []
    monkeypatch.setattr(cli, "main", lambda argv=None: 3 if argv is None else len(argv))
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    with pytest.raises(SystemExit) as exc:
        cli.entry_point()
    assert exc.value.code == 3 and frozen == [True]  # main's exit code, objects frozen
    with pytest.raises(SystemExit) as exc:
        cli.entry_point(["report", "--example", "nanjing"])
    assert exc.value.code == 3  # the arguments reach main


def test_missing_inputs_are_named():
    proc = _run("classify", "-o", "x.gpkg")
    assert proc.returncode == 2 and "--example nanjing" in proc.stderr
    proc = _run("classify", "nope.csv", "--study-area", "nope.gpkg", "-o", "x.gpkg")
    assert proc.returncode == 2 and "nope.csv" in proc.stderr and "Traceback" not in proc.stderr


def test_existing_output_is_refused_without_overwrite(classified):
    proc = _run("classify", "--example", "nanjing", "-o", str(classified))
    assert proc.returncode == 2 and "--overwrite" in proc.stderr


def test_help_on_every_command():
    for cmd in ("classify", "stats", "density", "report", "study-area"):
        proc = _run(cmd, "--help")
        assert proc.returncode == 0 and "usage: incubloc" in proc.stdout


def test_missing_study_area_layers_disable_scales(tmp_path):
    """A study area with only `cities`: region runs, the other scales say why not."""
    cities = gpd.read_file(nanjing_study_area_path(), layer="cities")
    area = tmp_path / "cities_only.gpkg"
    cities.to_file(area, layer="cities")
    lon, lat = wgs84_to_gcj02(118.79, 32.05)
    p = tmp_path / "one.csv"
    p.write_text(f"id,lon,lat\nX,{lon},{lat}\n", encoding="utf-8")
    out = tmp_path / "o.gpkg"
    assert main(["-q", "classify", str(p), "--coords", "gcj02", "--study-area", str(area),
                 "-o", str(out)]) == 0
    row = gpd.read_file(out, layer="incubators").iloc[0]
    assert row["city"] == "Nanjing"
    assert row["ring"] == "unclassified" and "no rings layer" in row["reason"]
    assert row["relation"] == "unclassified" and "hosts" in row["reason"]
    assert row["layout"] == "unclassified" and "buildings" in row["reason"]


def test_study_area_from_offline_osm(tmp_path):
    out = tmp_path / "area.gpkg"
    assert main(["-q", "study-area", "--osm-file", str(OSM), "-o", str(out)]) == 0
    hosts = gpd.read_file(out, layer="hosts")
    assert "university" in set(hosts["kind"]) and "high_tech_zone" in set(hosts["kind"])
    buildings = gpd.read_file(out, layer="buildings")
    assert len(buildings) > 0 and buildings["levels"].notna().any()
    # A point in the fixture's university way is inside a host of kind university.
    pt = Point(118.795, 32.054)
    assert hosts[hosts.contains(pt)]["kind"].tolist() == ["university"]


def test_stats_and_density_commands(tmp_path):
    out = tmp_path / "stats"
    cfg = tmp_path / "fast.toml"
    cfg.write_text(
        "[stats]\npermutations = 99\nn_sim = 19\nring_edge_sim = 99\ncell_sizes_m = [10000.0]\n"
        "[density]\nby_year = false\ncell_size_m = 2000.0\n"
    )
    assert main(["-q", "stats", "--example", "nanjing", "--config", str(cfg), "--seed", "7",
                 "-o", str(out)]) == 0
    for name in ("region_city.csv", "region_tier.csv", "region_level.csv", "ring_table.csv",
                 "ring_patterns.csv", "density_gradient.csv", "stats.json", "provenance.json"):
        assert (out / name).is_file(), name
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["seed"] == 7
    for key in ("tier_relation", "density_gradient", "opening_sequence", "ring_edge",
                "clark_evans", "global_moran", "join_counts", "preference"):
        assert key in stats, key
    ring_table = pd.read_csv(out / "ring_table.csv")
    nj = ring_table[ring_table["city"] == "Nanjing"].set_index("ring")
    # Density computed independently from the table's own counts and areas.
    dens = nj["count"] / nj["area_km2"]
    assert dens["core"] > dens["inner_suburb"] > dens["outer_suburb"]
    assert nj["density_km2"].to_numpy() == pytest.approx(dens.to_numpy())

    import rasterio

    tif = tmp_path / "kde.tif"
    assert main(["-q", "density", "--example", "nanjing", "--kernel", "gaussian",
                 "--bandwidth", "5000", "--cell-size", "1000", "-o", str(tif)]) == 0
    with rasterio.open(tif) as src:
        assert src.crs.is_projected
        assert src.res == (1000.0, 1000.0)
        assert src.tags()["kernel"] == "gaussian"
        total = float(src.read(1, masked=True).filled(0).sum()) * (src.res[0] / 1000) ** 2
    # Points per km² × cell area (km²) sums to the incubators inside the study area.
    assert total == pytest.approx(200, rel=0.02)


def test_skip_bad_rows_reports_lines_and_counts_add_up(tmp_path):
    src = pd.read_csv(nanjing_incubators_path())
    messy = src.head(10).copy()
    messy.loc[2, "lon"] = float("nan")  # CSV line 4
    messy.loc[5, "level"] = "区级"  # line 7: unknown level
    p = tmp_path / "messy.csv"
    messy.to_csv(p, index=False, encoding="gbk")
    out = tmp_path / "o.gpkg"
    proc = _run("classify", str(p), "--coords", "gcj02", "--study-area",
                str(nanjing_study_area_path()), "--skip-bad-rows", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "10 data rows: 8 classified, 2 rejected" in proc.stdout
    rejected = gpd.read_file(out, layer="rejected")
    assert sorted(rejected["row"].tolist()) == [4, 7]
    assert len(gpd.read_file(out, layer="incubators")) == 8
    # Without the flag the same file stops with both lines named.
    proc = _run("classify", str(p), "--coords", "gcj02", "--study-area",
                str(nanjing_study_area_path()), "-o", str(tmp_path / "x.gpkg"))
    assert proc.returncode == 2 and "line 4" in proc.stderr and "line 7" in proc.stderr


# ---------------------------------------------------------------- newcomer items
def test_global_flags_work_before_and_after_the_subcommand(tmp_path, capsys):
    from incubloc.shells.cli import _parser

    parser = _parser()
    for argv in (["report", "--quiet"], ["-q", "report"], ["report", "-q", "--example", "nanjing"]):
        assert parser.parse_args(argv).quiet is True, argv
    assert parser.parse_args(["report"]).quiet is False
    assert parser.parse_args(["classify", "x.csv", "-v"]).verbose is True
    # A real run: --quiet after the subcommand silences the summary.
    lon, lat = wgs84_to_gcj02(118.78, 32.05)
    p = tmp_path / "one.csv"
    p.write_text(f"id,lon,lat\nA,{lon},{lat}\n", encoding="utf-8")
    out = tmp_path / "o.gpkg"
    assert main(["classify", str(p), "--coords", "gcj02", "--study-area",
                 str(nanjing_study_area_path()), "-o", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert out.exists()


def test_cli_hint_names_skip_bad_rows_not_the_python_argument(tmp_path, capsys):
    from incubloc.errors import InputError
    from incubloc.io import read_incubators

    p = tmp_path / "bad.csv"
    p.write_text("id,lon,lat\nA,118.78,32.05\nB,,32.05\n", encoding="utf-8")
    assert main(["classify", str(p), "--study-area", str(nanjing_study_area_path()),
                 "-o", str(tmp_path / "o.gpkg")]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "--skip-bad-rows" in err
    assert "errors=" not in err and "attrs" not in err
    with pytest.raises(InputError, match=r'errors="report"'):  # the Python API keeps its own
        read_incubators(p)


def test_empty_incubator_file_stops_with_exit_2(tmp_path, capsys):
    p = tmp_path / "empty.csv"
    p.write_text("id,name,lon,lat\n", encoding="utf-8")
    out = tmp_path / "o.gpkg"
    assert main(["classify", str(p), "--study-area", str(nanjing_study_area_path()),
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "empty.csv holds no incubators" in err and "Traceback" not in err
    assert not out.exists()
    # Every row rejected with --skip-bad-rows: the same, no empty output.
    p.write_text("id,name,lon,lat\nA,x,,\n", encoding="utf-8")
    assert main(["classify", str(p), "--study-area", str(nanjing_study_area_path()),
                 "--skip-bad-rows", "-o", str(out)]) == 2
    assert "every row was rejected" in capsys.readouterr().err
    assert not out.exists()
