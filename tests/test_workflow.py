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
