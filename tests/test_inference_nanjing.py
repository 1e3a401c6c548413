"""Local statistics on the bundled Nanjing data, and a stats run that never falls over."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from incubloc.datasets import nanjing_incubators_path, nanjing_study_area_path
from incubloc.shells.cli import main
from incubloc.stats.autocorrelation import (
    getis_ord,
    local_moran,
    make_grid,
    multiscale_moran,
    unit_rates,
    weights,
)

FAST = (
    "[stats]\npermutations = 99\nn_sim = 19\nring_edge_sim = 99\n"
    "cell_sizes_m = [20000.0, 30000.0]\n"
    "[density]\nby_year = false\ncell_size_m = 5000.0\n"
)


@pytest.fixture(scope="module")
def incubators():
    df = pd.read_csv(nanjing_incubators_path())
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)


@pytest.fixture(scope="module")
def cities():
    return gpd.read_file(nanjing_study_area_path(), layer="cities")


@pytest.mark.slow
def test_district_labels_are_stable_across_seeds(incubators):
    d = gpd.read_file(nanjing_study_area_path(), layer="districts").to_crs(32650)
    units = unit_rates(incubators, d)
    w = weights(units)
    labels = []
    for seed in (1, 2, 3):
        lm = local_moran(units, "rate_z", w=w, seed=seed, window_column="count")
        gi = getis_ord(units, "rate_score", w=w, seed=seed, window_column="count")
        # Gi* under the study's default null (constant risk)
        cr = getis_ord(units, "rate_score", w=w, seed=seed, window_column="count",
                       null="constant_risk")
        labels.append((lm["lisa_cluster"].to_numpy(), gi["gi_bin"].to_numpy(),
                       cr["gi_bin"].to_numpy()))
        assert lm.attrs["lisa_inference"]["attainable"]
        assert cr.attrs["gi_inference"]["attainable"]
    for a in range(3):
        for b in range(a + 1, 3):
            for k in range(3):
                assert (labels[a][k] != labels[b][k]).sum() <= 3, k
    # the core districts of Nanjing are a High–High cluster
    assert "HH" in set(labels[0][0])


@pytest.mark.slow
def test_no_significant_cell_with_an_empty_neighbourhood(incubators, cities):
    area = cities.to_crs(32650)
    prof = multiscale_moran(incubators, area, cell_sizes=(5000, 10000, 20000),
                            permutations=0, crs=32650)
    size = prof.attrs["peak_cell_size"]
    assert size == prof.loc[prof["p"] <= 0.05, "I"].pipe(
        lambda s: prof.loc[s.idxmax(), "cell_size"])
    grid = unit_rates(incubators, make_grid(area, cell_size=size, crs=32650))
    w = weights(grid)
    counts = grid["count"].to_numpy()
    empty = np.array([counts[i] == 0 and all(counts[j] == 0 for j in w.neighbors[i])
                      for i in range(len(grid))])
    assert empty.sum() > 100
    for corr in ("fdr", "none"):  # as the study runs them, and without correction
        kw = {"w": w, "seed": 1, "correction": corr, "window_column": "count"}
        lm = local_moran(grid, "rate_z", **kw)
        gi = getis_ord(grid, "rate_score", **kw)
        cr = getis_ord(grid, "rate_score", null="constant_risk", **kw)
        assert (lm.loc[empty, "lisa_cluster"] == "ns").all()
        assert (gi.loc[empty, "gi_bin"] == "ns").all()
        assert (cr.loc[empty, "gi_bin"] == "ns").all()
        assert (lm.loc[empty, "lisa_p"] == 1).all() and (gi.loc[empty, "gi_p"] == 1).all()
        assert (cr.loc[empty, "gi_p"] == 1).all()
        assert (gi["gi_bin"] != "ns").any()  # the core of Nanjing is still found
    # the cells are on land: every one intersects the study area
    assert grid.intersects(area.union_all()).all()


@pytest.mark.slow
def test_stats_json_has_getis_ord_and_ellipse(tmp_path):
    cfg = tmp_path / "fast.toml"
    cfg.write_text(FAST)
    out = tmp_path / "stats"
    assert main(["-q", "stats", "--example", "nanjing", "--config", str(cfg), "-o", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    gi = stats["getis_ord"]
    assert set(gi) == {"districts", "grid"}
    for rec in gi.values():
        assert sum(rec["bins"].values()) == rec["n_tests"]
        assert rec["correction"] == "fdr" and 0 < rec["threshold"] <= 0.05
        assert rec["unit"]
    assert gi["districts"]["n_tests"] == 58
    ell = stats["ellipse"]
    assert ell["major"] >= ell["minor"] > 0 and 0 <= ell["rotation_deg"] < 180
    assert stats["local_moran"]["districts"]["n_tests"] == 58


@pytest.mark.slow
def test_stats_on_random_points_without_sites_exits_zero(tmp_path, cities):
    from incubloc.stats._random import uniform_in_polygon

    xy = uniform_in_polygon(cities.union_all(), 60, seed=4)
    csv = tmp_path / "random.csv"
    pd.DataFrame({"id": [f"R{i}" for i in range(60)], "name": [f"p{i}" for i in range(60)],
                  "lon": xy[:, 0], "lat": xy[:, 1]}).to_csv(csv, index=False)
    cfg = tmp_path / "fast.toml"
    cfg.write_text(FAST)
    out = tmp_path / "out"
    code = main(["-q", "stats", str(csv), "--study-area", str(nanjing_study_area_path()),
                 "--config", str(cfg), "-o", str(out)])
    assert code == 0
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    for key in ("layout=building", "relation=standalone"):
        rec = stats["join_counts"][key]
        assert "skipped" in rec or "table" in rec
    assert "getis_ord" in stats and "ellipse" in stats
