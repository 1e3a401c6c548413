"""The density-gradient trend: quasi-Poisson interval under overdispersion."""

from __future__ import annotations

import numpy as np
import pytest

from incubloc.errors import InputError
from incubloc.stats.trend import poisson_trend


@pytest.mark.parametrize(("counts", "area", "x"), [
    ([120, 95, 22], [300.0, 900.0, 2400.0], [1.0, 2.0, 3.0]),  # three rings, df = 1
    ([41, 17, 29, 6, 14, 3], [120.0, 310.0, 900.0, 2500.0, 700.0, 800.0],
     [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
])
def test_quasi_poisson_interval_equals_statsmodels(counts, area, x):
    sm = pytest.importorskip("statsmodels.api")
    got = poisson_trend(counts, area, x)
    X = sm.add_constant(np.asarray(x))
    ref = sm.GLM(np.asarray(counts), X, family=sm.families.Poisson(),
                 offset=np.log(area)).fit(scale="X2", use_t=True)
    assert got.dispersion > 1 and got.interval == "quasi-poisson"
    assert got.coef == pytest.approx(ref.params[1], rel=1e-8)
    assert got.se == pytest.approx(ref.bse[1], rel=1e-6)
    assert got.p == pytest.approx(ref.pvalues[1], rel=1e-6)
    lo, hi = np.exp(ref.conf_int(alpha=0.05)[1])
    assert got.ci_low == pytest.approx(lo, rel=1e-6)
    assert got.ci_high == pytest.approx(hi, rel=1e-6)
    # the Poisson interval of the same fit is narrower by √dispersion on the log scale
    pois = poisson_trend(counts, area, x, interval="poisson")
    assert pois.interval == "poisson" and pois.coef == pytest.approx(got.coef)
    assert np.log(got.ci_high / got.ci_low) > np.log(pois.ci_high / pois.ci_low)


def test_underdispersed_counts_and_the_poisson_choice():
    sm = pytest.importorskip("statsmodels.api")
    counts, area, x = [101, 49, 26], [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]
    quasi = poisson_trend(counts, area, x)  # R's quasipoisson: φ̂ < 1 narrows the se
    pois = poisson_trend(counts, area, x, interval="poisson")
    ref = sm.GLM(np.asarray(counts), sm.add_constant(np.asarray(x)),
                 family=sm.families.Poisson()).fit(scale="X2", use_t=True)
    assert quasi.dispersion < 1 and quasi.interval == "quasi-poisson"
    assert quasi.se == pytest.approx(ref.bse[1], rel=1e-6) and quasi.se < pois.se
    plain = sm.GLM(np.asarray(counts), sm.add_constant(np.asarray(x)),
                   family=sm.families.Poisson()).fit()
    assert pois.interval == "poisson" and pois.se == pytest.approx(plain.bse[1], rel=1e-5)
    two = poisson_trend([30, 10], [1.0, 1.0], [1, 2])  # no residual df
    assert two.interval == "poisson" and "cannot be estimated" in two.note
    exact = poisson_trend([400, 200, 100], [1.0, 1.0, 1.0], [1, 2, 3])  # χ² = 0
    assert exact.interval == "poisson" and "perfect fit" in exact.note
    with pytest.raises(InputError, match="unknown interval"):
        poisson_trend([1, 2], [1.0, 1.0], [1, 2], interval="auto")


def coverage(n_units, phi, reps, rng, interval):
    """Share of intervals covering the true rate ratio, gamma–Poisson counts, Var = φ·μ."""
    x = np.arange(1, n_units + 1, dtype=float)
    area = np.linspace(200.0, 2000.0, n_units)
    beta1 = np.log(0.6)
    mu = area * np.exp(np.log(0.2) + beta1 * x)  # 24 … a few dozen per unit
    hits = 0
    for _ in range(reps):
        # gamma mixing with shape μ/(φ − 1): mean μ, variance φ·μ
        lam = rng.gamma(mu / (phi - 1.0), phi - 1.0)
        t = poisson_trend(rng.poisson(lam), area, x, interval=interval)
        hits += t.ci_low <= np.exp(beta1) <= t.ci_high
    return hits / reps


@pytest.mark.slow
def test_quasi_poisson_interval_covers_about_95_percent_when_overdispersed():
    rng = np.random.default_rng(20240601)
    reps = 800
    for n_units in (3, 8):  # three rings (df = 1) and a longer gradient (df = 6)
        got = coverage(n_units, 8.0, reps, rng, "quasi")
        # binomial standard error of a 95 % rate over 800 replicates: 0.8 %
        assert 0.92 <= got <= 0.98, (n_units, got)
    # the Poisson interval on the same kind of data covers far less than 95 %
    assert coverage(3, 8.0, 300, rng, "poisson") < 0.80
    # and on Poisson data (φ → 1 in the gamma mixing) it stays near 95 %
    assert 0.92 <= coverage(3, 1.0 + 1e-9, reps, rng, "quasi") <= 0.98
