"""Location-factor models: known coefficients, direct library calls, Shapley by brute force."""

from __future__ import annotations

import itertools
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

pytest.importorskip("statsmodels")
pytest.importorskip("spreg")
pytest.importorskip("mgwr")

import libpysal
import spreg
import statsmodels.api as sm

from incubloc import factors as fx
from incubloc.errors import ConfigError, InputError
from incubloc.studyarea import StudyArea


def _count_data(rng, n, beta, *, alpha=None):
    """Counts with a known log-linear rate and area exposure (NB2 when alpha is given)."""
    X = rng.normal(size=(n, len(beta) - 1))
    area = rng.uniform(0.5, 3.0, n)
    mu = area * np.exp(beta[0] + X @ np.asarray(beta[1:]))
    if alpha is not None:  # gamma-Poisson mixture: Var = mu + alpha mu²
        mu = mu * rng.gamma(1 / alpha, alpha, n)
    y = rng.poisson(mu)
    d = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    d["count"], d["area_km2"] = y, area
    return d


@pytest.mark.slow
@pytest.mark.parametrize("model,alpha", [("poisson", None), ("negbin", 0.5)])
def test_count_models_cover_true_coefficients(model, alpha):
    beta = [0.3, 0.5, -0.4]
    rng = np.random.default_rng(2024)
    hits = np.zeros(len(beta))
    n_sim = 100
    for _ in range(n_sim):
        d = _count_data(rng, 150, beta, alpha=alpha)
        m = fx.fit_models(d, covariates=["x0", "x1"], models=(model,))
        co = m["coefficients"]
        co = co[(co["model"] == model) & (co["term"] != "alpha")]
        hits += (co["ci_low"].to_numpy() <= beta) & (beta <= co["ci_high"].to_numpy())
    assert (hits / n_sim >= 0.90).all(), hits


def _lattice(side):
    cells = [box(i, j, i + 1, j + 1) for j in range(side) for i in range(side)]
    return gpd.GeoDataFrame(geometry=cells, crs=32650)


def test_sar_error_flagged_and_lambda_recovered():
    side, lam = 15, 0.6
    units = _lattice(side)
    w = fx.spatial_weights(units)
    n = len(units)
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, 2))
    W = w.full()[0]
    u = np.linalg.solve(np.eye(n) - lam * W, rng.normal(size=n))
    y = 1.0 + X @ [1.0, -0.5] + u
    # count = exp(y), area 1, no zero constant: the OLS response is y itself.
    d = pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "count": np.exp(y), "area_km2": 1.0})
    m = fx.fit_models(d, covariates=["x0", "x1"], w=w, ols_zero=0.0, models=("ols",), gwr=False)
    diag = m["diagnostics"]
    assert diag["lm_error_p"] < 0.01 and diag["moran_res_p"] < 0.01
    assert diag["spatial_model"] == "error"
    row = m["coefficients"].set_index("term").loc["lambda"]
    assert row["ci_low"] <= lam <= row["ci_high"]
    # No autocorrelation: the LM tests do not call for a spatial model.
    d0 = d.assign(count=np.exp(1.0 + X @ [1.0, -0.5] + rng.normal(size=n)))
    m0 = fx.fit_models(d0, covariates=["x0", "x1"], w=w, ols_zero=0.0, models=("ols",), gwr=False)
    assert m0["diagnostics"]["spatial_model"] == "none"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The inplace keyword")  # spreg's own pandas calls
@pytest.mark.filterwarnings("ignore:Method 'bounded' does not support")  # spreg's optimiser
def test_estimates_equal_direct_library_calls():
    side = 10
    units = _lattice(side)
    n = len(units)
    rng = np.random.default_rng(3)
    d = _count_data(rng, n, [0.2, 0.6, -0.3], alpha=0.3)
    w = fx.spatial_weights(units)
    coords = np.column_stack([units.centroid.x, units.centroid.y])
    m = fx.fit_models(d, covariates=["x0", "x1"], w=w, coords=coords, spatial="error",
                      gwr=True, gwr_min_units=50)
    co = m["coefficients"]
    A = np.column_stack([np.ones(n), d[["x0", "x1"]].to_numpy()])
    off = np.log(d["area_km2"].to_numpy())
    y = d["count"].to_numpy(float)

    def got(model, col="estimate"):
        return co[co["model"] == model][col].to_numpy()

    pois = sm.GLM(y, A, family=sm.families.Poisson(), offset=off).fit(cov_type="HC0")
    np.testing.assert_allclose(got("poisson"), pois.params, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got("poisson", "robust_se"), pois.bse, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got("poisson", "irr")[1:], np.exp(pois.params[1:]), atol=1e-8)
    nb = sm.NegativeBinomial(y, A, offset=off, loglike_method="nb2").fit(
        disp=0, maxiter=500, cov_type="HC0", start_params=np.append(pois.params, 0.1))
    np.testing.assert_allclose(got("negbin"), nb.params, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got("negbin", "robust_se"), nb.bse, rtol=0, atol=1e-8)
    ly = np.log((y + 0.5) / d["area_km2"].to_numpy())
    ols = sm.OLS(ly, A).fit(cov_type="HC3")
    np.testing.assert_allclose(got("ols"), ols.params, rtol=0, atol=1e-8)
    np.testing.assert_allclose(got("ols", "robust_se"), ols.bse, rtol=0, atol=1e-8)
    so = spreg.OLS(ly.reshape(-1, 1), A[:, 1:], w=w, spat_diag=True, moran=True)
    np.testing.assert_allclose(so.betas.ravel(), ols.params, atol=1e-8)
    diag = m["diagnostics"]
    for key, val in (("lm_error", so.lm_error), ("lm_lag", so.lm_lag),
                     ("rlm_error", so.rlm_error), ("rlm_lag", so.rlm_lag)):
        assert diag[key] == pytest.approx(val[0], abs=1e-8)
        assert diag[f"{key}_p"] == pytest.approx(val[1], abs=1e-8)
    assert diag["moran_res_I"] == pytest.approx(so.moran_res[0], abs=1e-8)
    err = spreg.ML_Error(ly.reshape(-1, 1), A[:, 1:], w=w, method="full")
    np.testing.assert_allclose(got("spatial_error"), err.betas.ravel(), atol=1e-8)
    np.testing.assert_allclose(got("spatial_error", "robust_se"), err.std_err, atol=1e-8)
    from mgwr.gwr import GWR
    from mgwr.sel_bw import Sel_BW

    Xz = d[["x0", "x1"]].to_numpy()
    Xz = (Xz - Xz.mean(axis=0)) / Xz.std(axis=0)
    bw = Sel_BW(coords, ly.reshape(-1, 1), Xz, n_jobs=1).search(criterion="AICc")
    res = GWR(coords, ly.reshape(-1, 1), Xz, bw, n_jobs=1).fit()
    assert m["gwr"]["fitted"] and m["gwr"]["bandwidth_neighbours"] == bw
    np.testing.assert_allclose(m["local"]["gwr_x0"], res.params[:, 1], atol=1e-8)
    np.testing.assert_allclose(m["local"]["gwr_intercept"], res.params[:, 0], atol=1e-8)


def test_gwr_skipped_below_threshold_with_reason():
    rng = np.random.default_rng(0)
    d = _count_data(rng, 40, [0.2, 0.5])
    coords = rng.uniform(0, 1000, (40, 2))
    m = fx.fit_models(d, covariates=["x0"], coords=coords, gwr=True)
    assert not m["gwr"]["fitted"] and "fewer than" in m["gwr"]["reason"]


# --------------------------------------------------------------------- decomposition


def _brute_force_shapley(value, players):
    """Average marginal contribution over every order of entry (independent of the code)."""
    total = dict.fromkeys(players, 0.0)
    orders = list(itertools.permutations(players))
    for order in orders:
        have = ()
        for p in order:
            total[p] += value(have + (p,)) - value(have)
            have = have + (p,)
    return {p: v / len(orders) for p, v in total.items()}


@pytest.fixture
def small():
    rng = np.random.default_rng(11)
    n = 60
    d = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a1", "a2", "b", "c"])
    d["b"] += 0.5 * d["a1"]  # correlated groups: shares are not the squared correlations
    d["area_km2"] = rng.uniform(1, 4, n)
    d["count"] = rng.poisson(d["area_km2"] * np.exp(0.1 + 0.4 * d["a1"] - 0.3 * d["a2"]
                                                    + 0.3 * d["b"]))
    groups = {"A": ["a1", "a2"], "B": ["b"], "C": ["c"]}
    return d, groups


def test_shapley_ols_equals_brute_force_and_sums_to_r2(small):
    d, groups = small
    ly = np.log((d["count"] + 0.5) / d["area_km2"])

    def r2(coalition):
        cols = [c for g in coalition for c in groups[g]]
        if not cols:
            return 0.0
        return sm.OLS(ly, sm.add_constant(d[cols])).fit().rsquared

    expected = _brute_force_shapley(r2, list(groups))
    t = fx.decompose(d, groups=groups, model="ols", n_boot=0).set_index("group")
    for g in groups:
        assert t.loc[g, "contribution"] == pytest.approx(expected[g], abs=1e-10)
    assert t.loc[list(groups), "contribution"].sum() == pytest.approx(r2(tuple(groups)), abs=1e-10)
    assert t.loc["total", "contribution"] == pytest.approx(r2(tuple(groups)), abs=1e-10)
    assert t.loc[list(groups), "share"].sum() == pytest.approx(1.0)


def test_shapley_poisson_equals_brute_force_with_statsmodels(small):
    d, groups = small
    off = np.log(d["area_km2"])

    def dev_explained(coalition):
        cols = [c for g in coalition for c in groups[g]]
        if not cols:
            return 0.0
        r = sm.GLM(d["count"], sm.add_constant(d[cols]), family=sm.families.Poisson(),
                   offset=off).fit(tol=1e-12)
        return 1 - r.deviance / r.null_deviance

    expected = _brute_force_shapley(dev_explained, list(groups))
    t = fx.decompose(d, groups=groups, model="poisson", n_boot=0).set_index("group")
    for g in groups:
        assert t.loc[g, "contribution"] == pytest.approx(expected[g], abs=1e-8)
    assert t.loc[list(groups), "contribution"].sum() == pytest.approx(
        dev_explained(tuple(groups)), abs=1e-8)


def test_poisson_deviance_equals_statsmodels(small):
    d, _ = small
    A = sm.add_constant(d[["a1", "b"]]).to_numpy()
    off = np.log(d["area_km2"].to_numpy())
    r = sm.GLM(d["count"], A, family=sm.families.Poisson(), offset=off).fit(tol=1e-12)
    assert fx.poisson_deviance(d["count"].to_numpy(float), A, off) == pytest.approx(
        r.deviance, abs=1e-8)


def test_bootstrap_is_seeded(small):
    d, groups = small
    a = fx.decompose(d, groups=groups, n_boot=49, seed=5)
    b = fx.decompose(d, groups=groups, n_boot=49, seed=5)
    c = fx.decompose(d, groups=groups, n_boot=49, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"], c["ci_low"])
    inside = (a["ci_low"] <= a["contribution"]) & (a["contribution"] <= a["ci_high"])
    assert inside.all()


def test_shapley_values_formula():
    # v({0}) = 1, v({1}) = 2, v({0,1}) = 4: φ0 = (1 + 2)/2, φ1 = (2 + 3)/2
    assert fx.shapley_values(np.array([0.0, 1, 2, 4]), 2).tolist() == [1.5, 2.5]


# --------------------------------------------------------------------- design


def test_too_few_units_and_singular_design_are_clear_errors():
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(12, 4)), columns=list("abcd"))
    with pytest.raises(InputError, match="too few units for the covariates: 12 units for 4"):
        fx.check_design(X, min_df=10)
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 3)), columns=list("abc"))
    X["d"] = X["a"] - 2 * X["b"]
    with pytest.raises(InputError, match="singular design: covariates a, b, d are collinear"):
        fx.check_design(X)
    X = X.drop(columns="d").assign(k=1.0)
    kept, dropped = fx.check_design(X)
    assert list(kept) == ["a", "b", "c"] and "constant" in dropped["k"]


def test_vif_equals_one_over_one_minus_r2():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=list("abc"))
    X["c"] += X["a"]
    r2 = sm.OLS(X["c"], sm.add_constant(X[["a", "b"]])).fit().rsquared
    assert fx.vif(X)["c"] == pytest.approx(1 / (1 - r2))


# --------------------------------------------------------------------- covariates


def _toy_area():
    crs = 32650
    districts = gpd.GeoDataFrame(
        {"district": ["west", "east"], "city": ["A", "A"]},
        geometry=[box(0, 0, 10_000, 10_000), box(10_000, 0, 20_000, 10_000)], crs=crs)
    centres = gpd.GeoDataFrame({"kind": ["business", "knowledge"]},
                               geometry=[Point(5_000, 5_000), Point(20_000, 5_000)], crs=crs)
    hosts = gpd.GeoDataFrame(
        {"kind": ["development_zone", "university", "university"]},
        geometry=[box(0, 0, 5_000, 10_000),  # half of "west"
                  box(15_000, 5_000, 15_100, 5_100), box(40_000, 0, 40_100, 100)], crs=crs)
    rings = gpd.GeoDataFrame({"city": ["A", "A"], "ring": ["core", "inner_suburb"]},
                             geometry=[box(0, 0, 10_000, 10_000), box(10_000, 0, 20_000, 10_000)],
                             crs=crs)
    return StudyArea({"districts": districts, "centres": centres, "hosts": hosts,
                      "rings": rings, "cities": districts.dissolve("city").reset_index()})


def test_covariates_on_hand_built_geometry():
    sa = _toy_area()
    units = fx.build_units(sa, units="districts", crs=32650)
    X, skipped = fx.covariates(units, sa, radius_m=3_000)
    # Centroids (5, 5) km and (15, 5) km.
    assert X["dist_business"].tolist() == pytest.approx([0.0, 10.0])
    assert X["dist_knowledge"].tolist() == pytest.approx([15.0, 5.0])
    assert X["dist_devzone"].tolist() == pytest.approx([0.0, 10.0])
    assert X["devzone_share"].tolist() == pytest.approx([50.0, 0.0])
    assert X["n_knowledge_hosts"].tolist() == [0.0, 1.0]
    assert X["ring_inner_suburb"].tolist() == [0.0, 1.0]
    assert X["ring_outer_suburb"].tolist() == [0.0, 0.0]
    assert "dist_station" in skipped and "tier_rank" in skipped
    stations = gpd.GeoDataFrame(geometry=[Point(5_000, 8_000)], crs=32650)
    X2, skipped2 = fx.covariates(units, sa, stations=stations, include=["dist_station"])
    assert X2["dist_station"].tolist() == pytest.approx([3.0, math.hypot(10, 3)])
    assert not skipped2


def test_units_and_response_by_class():
    sa = _toy_area()
    with pytest.raises(InputError, match="townships"):
        fx.build_units(sa, units="townships", crs=32650)
    with pytest.raises(ConfigError, match="grid:10000"):
        fx.build_units(sa, units="grid:abc", crs=32650)
    grid = fx.build_units(sa, units="grid:5000", crs=32650)
    assert len(grid) == 8
    units = fx.build_units(sa, units="districts", crs=32650)
    pts = gpd.GeoDataFrame({"level": ["national", "provincial", "national"]},
                           geometry=[Point(1, 1), Point(2, 2), Point(15_000, 1)], crs=32650)
    assert fx.count_incubators(pts, units)["count"].tolist() == [2, 1]
    assert fx.count_incubators(pts, units, response="level=provincial")["count"].tolist() == [1, 0]
    assert fx.count_incubators(pts, units)["area_km2"].tolist() == pytest.approx([100, 100], rel=1e-2)
    with pytest.raises(ConfigError, match="no column 'relation'"):
        fx.count_incubators(pts, units, response="relation=standalone")


def test_weights_for_islands():
    units = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(9, 9, 10, 10)],
                             crs=32650)
    w = fx.spatial_weights(units)
    assert not w.islands
    assert isinstance(w, libpysal.weights.W)


# --------------------------------------------------------------------- command line


def _config(tmp_path, **factors):
    body = "\n".join(f"{k} = {v!r}".replace("'", '"') if not isinstance(v, bool)
                     else f"{k} = {str(v).lower()}" for k, v in factors.items())
    p = tmp_path / "factors.toml"
    p.write_text(f"[factors]\n{body}\n", encoding="utf-8")
    return str(p)


@pytest.mark.slow
def test_cli_example_writes_tables_maps_and_report(tmp_path, capsys):
    from incubloc.shells.cli import main
    from incubloc.shells.report import fmt

    out = tmp_path / "fx"
    cfg = _config(tmp_path, n_boot=19)
    assert main(["-q", "factors", "--example", "nanjing", "--config", cfg, "-o", str(out)]) == 0
    for name in ("coefficients", "fit", "decomposition", "covariates", "units"):
        assert (out / "tables" / f"factor_{name}.csv").is_file()
    assert (out / "figures" / "factor_residuals.png").stat().st_size > 10_000
    import json

    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["factors"]["parameters"]["n_units"] == 58
    co = pd.read_csv(out / "tables" / "factor_coefficients.csv")
    assert set(co["model"]) >= {"poisson", "negbin", "ols"}
    assert sum(pd.read_csv(out / "tables" / "factor_units.csv")["count"]) == 200
    page = (out / "report.html").read_text(encoding="utf-8")
    dec = pd.read_csv(out / "tables" / "factor_decomposition.csv")
    total = dec[(dec["model"] == "ols") & (dec["group"] == "total")]["contribution"].iloc[0]
    assert f"of R² (OLS) = {fmt(total, 3)}" in page
    r = co[(co["model"] == "poisson") & (co["term"] == "devzone_share")].iloc[0]
    assert f"incidence-rate ratio {fmt(r['irr'], 3)}" in page
    assert "Moran&#x27;s I" in page or "Moran's I" in page
    assert "GWR not fitted: 58 units, fewer than" in page


@pytest.mark.slow
def test_cli_grid_units_write_gwr_map(tmp_path):
    from incubloc.shells.cli import main

    out = tmp_path / "fx"
    cfg = _config(tmp_path, n_boot=0, units="grid:20000")
    assert main(["-q", "factors", "--example", "nanjing", "--config", cfg, "-o", str(out)]) == 0
    assert (out / "figures" / "factor_gwr.png").stat().st_size > 10_000
    units = gpd.read_file(out / "factor_units.gpkg")
    assert len(units) > 70 and "gwr_devzone_share" in units


def test_cli_too_few_units_exit_2(tmp_path, capsys):
    from incubloc.shells.cli import main

    rc = main(["-q", "factors", "--example", "nanjing", "--units", "grid:80000",
               "-o", str(tmp_path / "fx")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("incubloc factors: error: too few units for the covariates")


def test_cli_singular_design_exit_2(tmp_path, capsys):
    from incubloc.datasets import nanjing_study_area_path
    from incubloc.shells.cli import main
    from incubloc.studyarea import load_study_area, write_study_area

    sa = load_study_area(nanjing_study_area_path())
    business = sa.layers["centres"][sa.layers["centres"]["kind"] == "business"]
    # Knowledge centres placed exactly on the business centres: the two distances coincide.
    sa.layers["centres"] = pd.concat([business, business.assign(kind="knowledge")],
                                     ignore_index=True)
    area = tmp_path / "area.gpkg"
    write_study_area(sa, area)
    from incubloc.datasets import nanjing_incubators_path

    rc = main(["-q", "factors", str(nanjing_incubators_path()), "--coords", "gcj02",
               "--study-area", str(area), "-o", str(tmp_path / "fx")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "singular design: covariates" in err and "dist_business, dist_knowledge" in err


# --------------------------------------------------------------------- report section


@pytest.fixture(scope="module")
def nanjing_result():
    from incubloc.datasets import load_example

    ex = load_example("nanjing")
    return fx.location_factors(ex.incubators, ex.study_area, n_boot=19, gwr=False, seed=3)


def test_nanjing_result_is_consistent(nanjing_result):
    r = nanjing_result
    assert len(r.units) == 58 and r.units["count"].sum() == 200
    assert "dist_station" in r.skipped and "dist_station" not in r.covariates["name"].tolist()
    # Rows not swapped: Xuanwu (core of Nanjing) is nearer a business centre than Gaochun.
    u = r.units.set_index("unit")
    assert u.loc["Xuanwu", "dist_business"] < u.loc["Gaochun", "dist_business"]
    assert u.loc["Xuanwu", "ring_inner_suburb"] == 0 and u.loc["Xuanwu", "ring_outer_suburb"] == 0
    d = r.to_dict()
    assert "units" not in d and "models" not in d
    import json

    json.dumps(d)  # JSON-able
    assert "<table>" in r._repr_html_()
    ols = r.decomposition[r.decomposition["model"] == "ols"].set_index("group")
    assert ols.loc["total", "contribution"] == pytest.approx(
        r.fit.set_index("model").loc["ols", "fit_value"], abs=1e-10)


def test_report_section_in_study_report(nanjing_result):
    import importlib.util
    from pathlib import Path

    from incubloc.shells.report import fmt, fmt_p, render_html

    spec = importlib.util.spec_from_file_location("_plot_standin",
                                                  Path(__file__).with_name("test_plot.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    study = mod.make_study(with_stats=False)
    study.results["factors"] = nanjing_result
    page = render_html(study, {}, embed_font=False)
    assert "<section id='factors'>" in page
    d = nanjing_result.diagnostics
    assert f"Moran&#x27;s I = {fmt(d['moran_res_I'], 3)}" in page
    assert f"LM-error {fmt(d['lm_error'], 3)} ({fmt_p(d['lm_error_p'])})" in page
    assert page.count("data:image/png;base64,") >= 1  # the residual maps, drawn in memory


@pytest.mark.slow
def test_mgwr_equals_direct_call():
    from mgwr.gwr import MGWR
    from mgwr.sel_bw import Sel_BW

    side = 8
    units = _lattice(side)
    n = len(units)
    rng = np.random.default_rng(5)
    d = _count_data(rng, n, [0.5, 0.6])
    coords = np.column_stack([units.centroid.x, units.centroid.y])
    m = fx.fit_models(d, covariates=["x0"], coords=coords, local_model="mgwr", models=("ols",))
    ly = np.log((d["count"].to_numpy() + 0.5) / d["area_km2"].to_numpy()).reshape(-1, 1)
    yz = (ly - ly.mean()) / ly.std()
    x = d[["x0"]].to_numpy()
    xz = (x - x.mean(axis=0)) / x.std(axis=0)
    sel = Sel_BW(coords, yz, xz, multi=True, n_jobs=1)
    sel.search()
    res = MGWR(coords, yz, xz, sel, n_jobs=1).fit()
    assert m["gwr"]["model"] == "mgwr"
    assert list(m["gwr"]["bandwidths_neighbours"].values()) == list(sel.bw[0])
    np.testing.assert_allclose(m["local"]["gwr_x0"], res.params[:, 1], atol=1e-8)


def test_stations_from_offline_osm_feed_dist_station(tmp_path):
    from pathlib import Path

    osm = Path(__file__).parent / "fixtures" / "osm" / "stations.osm"
    st = fx.stations_from_osm(osm_file=osm)
    assert sorted(st["name"]) == ["南京南站", "新街口"]
    # A unit around Xinjiekou station: its centroid is the station itself.
    pt = gpd.GeoSeries([Point(118.784, 32.041)], crs=4326).to_crs(32650).iloc[0]
    units = gpd.GeoDataFrame({"unit": ["x"]}, geometry=[pt.buffer(1000)], crs=32650)
    X, skipped = fx.covariates(units, StudyArea({}), stations=st, include=["dist_station"])
    assert X["dist_station"].iloc[0] == pytest.approx(0.0, abs=1e-3) and not skipped
    with pytest.raises(InputError, match="does not exist"):
        fx.stations_from_osm(osm_file=tmp_path / "missing.osm")


def test_factors_config_section():
    from incubloc.config import resolve_config

    cfg = resolve_config({"factors": {"covariates": ["dist_business"], "units": "grid:5000"}})
    assert cfg["factors"]["covariates"] == ["dist_business"] and cfg["factors"]["n_boot"] == 199
    with pytest.raises(ConfigError, match="spatial"):
        resolve_config({"factors": {"spatial": "sem"}})
    with pytest.raises(ConfigError, match="unknown key"):
        resolve_config({"factors": {"bootstraps": 9}})


def test_missing_estimator_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "spreg", None)  # import spreg now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "incubloc\[factors\]"'):
        fx.location_factors(None, StudyArea({}))


@pytest.mark.slow
def test_run_study_adds_factors_when_asked():
    from incubloc.config import resolve_config
    from incubloc.workflow import run_study

    cfg = resolve_config({"input": {"example": "nanjing"},
                          "stats": {"permutations": 19, "n_sim": 9, "ring_edge_sim": 19,
                                    "cell_sizes_m": [20000.0]},
                          "density": {"by_year": False, "cell_size_m": 5000.0},
                          "factors": {"in_report": True, "n_boot": 0, "gwr": False,
                                      "response": "relation=park_in_park"}})
    study = run_study(cfg)
    fxr = study.results["factors"]
    parks = int((study.incubators["relation"] == "park_in_park").sum())
    assert fxr.units["count"].sum() == parks  # the response counts only that class
    assert study.tests["factors"]["parameters"]["response"] == "relation=park_in_park"
    assert "factor_coefficients" in study.tables
