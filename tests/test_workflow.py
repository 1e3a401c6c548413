"""The whole study: same input and seed give byte-identical tables."""

import filecmp

import pytest

from incubloc.config import resolve_config
from incubloc.workflow import run_study, write_study

FAST = {
    "input": {"example": "nanjing"},
    "stats": {"permutations": 99, "n_sim": 19, "ring_edge_sim": 99, "cell_sizes_m": [10000.0]},
    "density": {"by_year": False, "cell_size_m": 2000.0},
}


@pytest.fixture(scope="module")
def study():
    return run_study(resolve_config(FAST))


def test_same_seed_same_bytes(study, tmp_path):
    a = write_study(study, tmp_path / "a")
    b = write_study(run_study(resolve_config(FAST)), tmp_path / "b")
    assert sorted(p.name for p in a) == sorted(p.name for p in b)
    names = sorted(p.relative_to(tmp_path / "a") for p in a
                   if p.suffix in (".csv", ".json") and p.name != "provenance.json")
    assert names, "no tables written"
    for rel in names:
        assert filecmp.cmp(tmp_path / "a" / rel, tmp_path / "b" / rel, shallow=False), rel


def test_study_findings_on_bundled_sample(study):
    pat = study.tables["ring_patterns"].set_index("city")["ring_pattern"]
    assert pat["Nanjing"] == "core+inner_suburb+outer_suburb"
    for city in ("Huai'an", "Zhenjiang", "Wuhu", "Chuzhou"):
        assert pat[city] == "core"
    for city in ("Yangzhou", "Ma'anshan"):
        assert pat[city] == "core+outer_suburb"
    grad = study.tables["density_gradient"].set_index("city")
    assert bool(grad.loc["Nanjing", "monotone_decreasing"])
    assert study.tests["province_ratio"]["ratio"] == pytest.approx(172 / 28)
    # Incubators cluster: Clark–Evans R below 1 over the whole circle.
    assert study.tests["clark_evans"]["R"] < 1


def test_inhomogeneous_tests_report_why_they_were_skipped():
    import geopandas as gpd
    import numpy as np
    from shapely.geometry import box

    from incubloc.workflow import _inhomogeneous_tests

    xy = np.random.default_rng(1).uniform(0, 10_000, (60, 2))
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(*xy.T), crs=32650)
    window = box(0, 0, 10_000, 10_000)
    st = {"n_sim": 19, "envelope_test": "mad", "intensity_bandwidth": -5.0}
    rip, ce, why = _inhomogeneous_tests(pts, window, st, 0, None)
    assert rip is None and ce is None and "bandwidth" in why
    st["intensity_bandwidth"] = 2_000.0
    rip, ce, why = _inhomogeneous_tests(pts, window, st, 0, None)
    assert why is None and rip.null == "inhomogeneous" and ce.bandwidth_m == 2_000.0
