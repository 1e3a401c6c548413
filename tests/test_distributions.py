"""incubloc.stats.distributions against scipy.stats, and the import it spares.

The functions repeat the arithmetic of scipy 1.17's ``scipy.stats`` calls, so there
the floats must be identical; other scipy versions (Debian's QGIS stack has 1.10)
may differ in the last bit, so everywhere they must agree to rtol 1e-13.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy
from scipy import stats

from incubloc.stats import distributions as dist

ROOT = Path(__file__).resolve().parents[1]
EXACT = tuple(int(p) for p in scipy.__version__.split(".")[:2]) == (1, 17)


def agree(got, want) -> None:
    """Same values (NaN where NaN), to the bit with scipy 1.17."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    assert got.dtype == want.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    if EXACT:
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # ±0


RNG = np.random.default_rng(20240613)
SPECIAL_X = [0.0, -0.0, 1e-300, -1e-300, 5e-324, 1.0, -1.0, 8.0, -8.0, 38.0, -38.0,
             40.0, -40.0, 1e10, -1e10, np.inf, -np.inf, np.nan]
X = np.r_[RNG.normal(0, 2, 3000), RNG.normal(0, 30, 500), SPECIAL_X]
Q = np.r_[RNG.uniform(size=3000), RNG.uniform(0, 1e-10, 200), 1 - RNG.uniform(0, 1e-10, 200),
          [0.0, 1.0, -0.0, 0.5, 0.975, 0.025, 1e-300, 5e-324, 1 - 2**-53, -0.1, 1.1,
           np.inf, -np.inf, np.nan]]
X_POS = np.r_[RNG.chisquare(4, 3000) * RNG.uniform(0.05, 20, 3000),
              [0.0, -0.0, -1.0, 1e-300, 1e-3, 1e4, 1e6, np.inf, -np.inf, np.nan]]
DFS = [1, 2, 3, 4, 7.5, 10, 29, 30, 120, 1000, 1e6, 0, -1, np.nan]


def test_normal_matches_scipy():
    agree(dist.norm_cdf(X), stats.norm.cdf(X))
    agree(dist.norm_sf(X), stats.norm.sf(X))
    agree(dist.norm_ppf(Q), stats.norm.ppf(Q))
    # as incubloc calls them: two-sided p of |z|, CDF of bin edges
    z = RNG.normal(0, 3, 1000)
    agree(2.0 * dist.norm_sf(np.abs(z)), 2.0 * stats.norm.sf(np.abs(z)))
    edges = (np.arange(-40, 42) - 0.5) * 250.0 / 1000.0
    agree(np.diff(dist.norm_cdf(edges)), np.diff(stats.norm.cdf(edges)))


@pytest.mark.parametrize("df", DFS)
def test_chi2_and_t_match_scipy(df):
    agree(dist.chi2_cdf(X_POS, df), stats.chi2.cdf(X_POS, df))
    agree(dist.chi2_sf(X_POS, df), stats.chi2.sf(X_POS, df))
    agree(dist.t_cdf(X, df), stats.t.cdf(X, df))
    agree(dist.t_sf(X, df), stats.t.sf(X, df))
    agree(dist.t_ppf(Q, df), stats.t.ppf(Q, df))


def test_array_degrees_of_freedom_broadcast():
    df = RNG.integers(-1, 300, X_POS.size)
    agree(dist.chi2_sf(X_POS, df), stats.chi2.sf(X_POS, df))
    agree(dist.chi2_cdf(X_POS, df), stats.chi2.cdf(X_POS, df))
    df = RNG.integers(-1, 300, Q.size)
    agree(dist.t_ppf(Q, df), stats.t.ppf(Q, df))
    col = np.array([[1.0], [5.0], [50.0]])
    agree(dist.t_sf(X[:40], col), stats.t.sf(X[:40], col))


@pytest.mark.parametrize("x", [0.0, -0.0, 1.3, -2.5, 40.0, np.inf, -np.inf, np.nan])
def test_scalars_come_back_as_numpy_scalars(x):
    for ours, theirs in [(dist.norm_sf(x), stats.norm.sf(x)),
                         (dist.norm_cdf(x), stats.norm.cdf(x)),
                         (dist.chi2_sf(x, 3), stats.chi2.sf(x, 3)),
                         (dist.chi2_cdf(x, 3), stats.chi2.cdf(x, 3)),
                         (dist.t_sf(x, 4), stats.t.sf(x, 4)),
                         (dist.t_cdf(x, 4), stats.t.cdf(x, 4))]:
        assert type(ours) is type(theirs) is np.float64
        agree(ours, theirs)
    for q in (0.0, 0.5, 0.975, 1.0):
        assert type(dist.t_ppf(q, 4)) is np.float64
        agree(dist.t_ppf(q, 4), stats.t.ppf(q, 4))
        agree(dist.norm_ppf(q), stats.norm.ppf(q))


def test_known_values():
    # textbook quantiles, computed independently of scipy
    assert dist.norm_ppf(0.975) == pytest.approx(1.959963984540054, rel=1e-15)
    assert dist.t_ppf(0.975, 10) == pytest.approx(2.228138852, rel=1e-9)
    assert dist.chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-14)
    # P(χ²₂ > x) = exp(−x/2); Cauchy (t₁): P(T > x) = 1/2 − atan(x)/π
    for x in (0.1, 1.0, 7.0, 30.0):
        assert dist.chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-13)
        assert dist.t_sf(x, 1) == pytest.approx(0.5 - math.atan(x) / math.pi, rel=1e-13)
    assert dist.norm_sf(30.0) > 0  # the upper tail is not 1 − cdf
    assert dist.norm_sf(30.0) == pytest.approx(
        math.erfc(30.0 / math.sqrt(2)) / 2, rel=1e-13)


def test_rankdata_matches_scipy_and_averages_ties():
    assert dist.rankdata([10, 30, 20, 20, 10, 10]).tolist() == [2, 6, 4.5, 4.5, 2, 2]
    assert dist.rankdata([]).shape == (0,)
    for n in (1, 2, 3, 7, 100, 5000):
        for a in (RNG.normal(size=n), RNG.integers(0, 3, n), RNG.integers(0, 50, n) / 4,
                  np.zeros(n), np.arange(n)[::-1]):
            agree(dist.rankdata(a), stats.rankdata(a))
    with_nan = np.array([3.0, np.nan, 1.0, 1.0])
    assert np.isnan(dist.rankdata(with_nan)).all()
    agree(dist.rankdata(with_nan), stats.rankdata(with_nan))
    agree(dist.rankdata([[3, 1], [2, 2]]), stats.rankdata([[3, 1], [2, 2]]))


def pairs():
    """(x, y) as incubloc gives them: ring orders / tier ranks against counts,
    densities and years, with and without ties."""
    for n in (2, 3, 4, 5, 8, 12, 40, 200, 3000):
        for _ in range(8):
            yield RNG.normal(size=n), RNG.normal(size=n)
            yield RNG.integers(1, 4, n).astype(float), RNG.poisson(2.0, n).astype(float)
            yield np.arange(1.0, n + 1), np.arange(1.0, n + 1) * 3 + RNG.integers(0, 2, n)
            yield np.arange(1.0, n + 1), -np.arange(1.0, n + 1) ** 2
            yield RNG.integers(0, 2, n), 2000 + RNG.integers(0, 20, n)


def test_spearmanr_matches_scipy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's warnings for n = 2
        for x, y in pairs():
            ours, theirs = dist.spearmanr(x, y), stats.spearmanr(x, y)
            agree(ours.statistic, theirs.statistic)
            agree(ours.pvalue, theirs.pvalue)
            rho, p = ours  # unpacks like scipy's result
            assert (rho, p) == (ours[0], ours[1])


def test_spearmanr_known_answers():
    # no ties: rho = 1 − 6 Σd² / (n (n² − 1)); p from t = rho √((n − 2) / (1 − rho²))
    x = np.array([3.1, 1.2, 5.5, 4.0, 2.2, 9.0, 7.7])
    y = np.array([2.0, 1.0, 4.0, 7.0, 3.0, 6.0, 5.0])
    d = np.array([3, 1, 5, 4, 2, 7, 6]) - np.array([2, 1, 4, 7, 3, 6, 5])
    n = len(x)
    rho = 1 - 6 * np.sum(d**2) / (n * (n**2 - 1))
    t = rho * math.sqrt((n - 2) / (1 - rho**2))
    res = dist.spearmanr(x, y)
    assert res.statistic == pytest.approx(rho, rel=1e-14)
    assert res.pvalue == pytest.approx(2 * dist.t_sf(t, n - 2), rel=1e-12)
    # a perfect monotone relation: rho = ±1 and p = 0 (t is infinite)
    assert tuple(dist.spearmanr([1, 2, 3], [1, 4, 9])) == (1.0, 0.0)
    assert tuple(dist.spearmanr([1, 2, 3, 4], [9, 4, 1, 0])) == (-1.0, 0.0)


@pytest.mark.parametrize("x, y", [
    ([1, 2, 3], [5, 5, 5]),  # constant: rho undefined
    ([4, 4, 4, 4], [1, 2, 3, 4]),
    ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]),  # NaN propagates
    ([1.0, 2.0, 3.0], [1.0, 2.0, np.nan]),
    ([1.0], [2.0]),  # too few pairs
    ([], []),
])
def test_spearmanr_undefined_is_nan(x, y):
    res = dist.spearmanr(x, y)
    assert np.isnan(res.statistic) and np.isnan(res.pvalue)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = stats.spearmanr(x, y)
    assert np.isnan(theirs.statistic) and np.isnan(theirs.pvalue)


def test_spearmanr_length_mismatch():
    with pytest.raises(ValueError, match="differ in length"):
        dist.spearmanr([1, 2, 3], [1, 2])


def test_main_process_part_of_a_study_does_not_import_scipy_stats():
    # The steps run_study runs here before it forks the others (the report's
    # sequential start) must not pay for importing scipy.stats.
    code = textwrap.dedent("""
        import sys
        import incubloc.classification
        import incubloc.scales.region
        import incubloc.stats.distributions
        import incubloc.stats.pointpattern
        import incubloc.stats.rings
        import incubloc.stats.trend
        import incubloc.workflow as wf
        from incubloc.config import resolve_config

        here = tuple(s for s in wf.STEPS if not s.aside)
        assert [s.name for s in here][:3] == ["classify", "region", "rings"], here
        wf.STEPS = here
        cfg = resolve_config({"input": {"example": "nanjing"}})
        study = wf.run_study(cfg)
        assert {"classify", "region", "rings"} <= set(study.steps), study.steps
        assert "ring_table" in study.tables and "density_gradient" in study.tables
        assert "scipy.stats" not in sys.modules, "scipy.stats was imported"
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
