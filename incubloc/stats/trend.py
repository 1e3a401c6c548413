"""Poisson log-linear trend of counts over an ordered covariate, with an exposure offset.

Used for the density gradient over rings: the incubators counted in each ring are
Poisson with mean area × exp(β0 + β1 · ring order), so exp(β1) is the rate ratio per
ring step outward (below 1: density falls outward). The model is fitted by
iteratively reweighted least squares (IRLS) with NumPy; the result equals
``statsmodels``' GLM(Poisson, offset=log area) (tested against it).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import stats

from incubloc.errors import InputError
from incubloc.stats._results import Result

__all__ = ["PoissonTrend", "poisson_trend"]


@dataclasses.dataclass
class PoissonTrend(Result):
    """Rate ratio per unit step of ``x`` from a Poisson GLM with a log-exposure offset.

    ``p`` is the two-sided Wald p of H0: rate ratio = 1; ``ci_low`` / ``ci_high`` the
    Wald interval at ``level``. ``dispersion`` is Pearson's χ² / residual df (about 1
    when the Poisson variance holds; above 1 the interval is too narrow, e.g. when
    incubators cluster). ``note`` says why the fit is missing or unreliable.
    """

    rate_ratio: float
    ci_low: float
    ci_high: float
    p: float
    coef: float
    se: float
    intercept: float
    deviance: float
    dispersion: float
    df_resid: int
    n_units: int
    n_events: int
    level: float
    converged: bool
    note: str = ""


def _nan_trend(n_units: int, n_events: int, level: float, note: str) -> PoissonTrend:
    nan = float("nan")
    return PoissonTrend(nan, nan, nan, nan, nan, nan, nan, nan, nan, max(n_units - 2, 0),
                        n_units, n_events, level, False, note)


def poisson_trend(
    counts: Any, exposure: Any, x: Any, *, level: float = 0.95, max_iter: int = 100
) -> PoissonTrend:
    """Fit log E[count] = log(exposure) + β0 + β1 · x and return exp(β1) with CI and p.

    Parameters
    ----------
    counts : array of int
        Events per unit (e.g. incubators per ring).
    exposure : array of float
        Positive exposure per unit (e.g. ring area in km²); enters as log offset.
    x : array of float
        The covariate (e.g. ring order 1, 2, 3).
    level : float
        Confidence level of the Wald interval.
    max_iter : int
        IRLS iterations.

    Returns
    -------
    PoissonTrend

    Examples
    --------
    >>> t = poisson_trend([100, 50, 25], [1.0, 1.0, 1.0], [1, 2, 3])
    >>> round(t.rate_ratio, 6), bool(t.p < 1e-6)
    (0.5, True)
    """
    y = np.asarray(counts, dtype=float)
    a = np.asarray(exposure, dtype=float)
    xv = np.asarray(x, dtype=float)
    if not (y.shape == a.shape == xv.shape and y.ndim == 1):
        raise InputError("counts, exposure and x must be 1-D arrays of one length")
    if (y < 0).any() or not np.isfinite(y).all():
        raise InputError("counts must be finite and non-negative")
    keep = np.isfinite(a) & (a > 0) & np.isfinite(xv)
    y, a, xv = y[keep], a[keep], xv[keep]
    n_units, n_events = len(y), int(y.sum())
    if n_units < 2 or np.ptp(xv) == 0:
        return _nan_trend(n_units, n_events, level, "fewer than 2 units with distinct x")
    if n_events == 0:
        return _nan_trend(n_units, n_events, level, "no events: the trend is undefined")
    X = np.column_stack([np.ones_like(xv), xv])
    off = np.log(a)
    # Start from the pooled rate (β1 = 0), as GLM software does.
    beta = np.array([np.log(y.sum() / a.sum()), 0.0])
    converged = False
    dev_old = np.inf
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(max_iter):
            eta = X @ beta + off
            mu = np.exp(eta)
            z = eta - off + (y - mu) / mu  # working response
            wx = X * mu[:, None]
            try:
                beta = np.linalg.solve(X.T @ wx, wx.T @ z)
            except np.linalg.LinAlgError:  # weights underflow as β1 runs off to ±∞
                break
            mu = np.exp(X @ beta + off)
            dev = 2.0 * float(np.sum(np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu)))
            if abs(dev - dev_old) <= 1e-10 * (abs(dev) + 0.1):
                converged = True
                break
            dev_old = dev
    with np.errstate(over="ignore"):
        mu = np.exp(X @ beta + off)
    try:
        cov = np.linalg.inv(X.T @ (X * mu[:, None]))
        se = float(np.sqrt(cov[1, 1]))
    except np.linalg.LinAlgError:
        se = float("inf")
    b1 = float(beta[1])
    df = n_units - 2
    if not converged or se > 50 or not np.isfinite(se):
        # e.g. every event in the first unit: the MLE of β1 is −∞
        return _nan_trend(n_units, n_events, level,
                          "the fit did not converge (all events in one end unit?): no estimate")
    zq = float(stats.norm.ppf(0.5 + level / 2.0))
    pearson = float(np.sum((y - mu) ** 2 / mu))
    return PoissonTrend(
        rate_ratio=float(np.exp(b1)),
        ci_low=float(np.exp(b1 - zq * se)),
        ci_high=float(np.exp(b1 + zq * se)),
        p=float(2.0 * stats.norm.sf(abs(b1 / se))),
        coef=b1,
        se=se,
        intercept=float(beta[0]),
        deviance=float(dev),
        dispersion=pearson / df if df > 0 else float("nan"),
        df_resid=int(df),
        n_units=n_units,
        n_events=n_events,
        level=float(level),
        converged=converged,
    )
