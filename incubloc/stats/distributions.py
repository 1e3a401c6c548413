"""Normal, chi-square and Student-t probabilities, ranks and Spearman's rho.

``import scipy.stats`` takes about a second of CPU (it parses docstrings at import);
these functions do the same arithmetic as the ``scipy.stats`` calls incubloc makes, on
:mod:`scipy.special`, which imports in milliseconds, and return the same floats.

Functions
---------
norm_cdf, norm_sf, norm_ppf
    Standard normal CDF, survival function and quantile.
chi2_cdf, chi2_sf
    Chi-square CDF and survival function.
t_cdf, t_sf, t_ppf
    Student-t CDF, survival function and quantile.
rankdata
    Ranks with ties averaged.
spearmanr
    Spearman's rank correlation with its two-sided p-value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

__all__ = [
    "SpearmanResult", "chi2_cdf", "chi2_sf", "norm_cdf", "norm_ppf", "norm_sf",
    "rankdata", "spearmanr", "t_cdf", "t_ppf", "t_sf",
]

Float = float | np.ndarray


def _out(a: np.ndarray) -> Float:
    """A 0-d result as a NumPy scalar (as ``scipy.stats`` returns it)."""
    return a[()] if a.ndim == 0 else a


def _probability(func: Callable[..., np.ndarray], x: ArrayLike, df: ArrayLike | None,
                 lower: float, *, below: float, above: float) -> Float:
    """``func(x[, df])`` inside the open support (``lower``, ∞), ``below`` at or below
    it, ``above`` at +∞, NaN for a NaN ``x`` or a ``df`` that is not positive: the
    cases ``scipy.stats``' ``cdf`` / ``sf`` handle before calling ``scipy.special``."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.asarray(True) if df is None else np.asarray(df, dtype=np.float64) > 0
    with np.errstate(invalid="ignore"):
        inside = ok & (lower < x) & (x < np.inf)
        out = np.where(x <= lower, below, above)
    out = np.where(ok & ~np.isnan(x), out, np.nan)
    if inside.any():
        args = (x,) if df is None else (np.broadcast_to(df, out.shape), x)
        out[inside] = func(*(np.broadcast_to(a, out.shape)[inside] for a in args))
    return _out(out)


def _quantile(func: Callable[..., np.ndarray], q: ArrayLike, df: ArrayLike | None,
              lower: float, upper: float) -> Float:
    """``func(q[, df])`` for 0 < q < 1, the support's ends at 0 and 1, NaN elsewhere
    (as ``scipy.stats``' ``ppf`` does)."""
    q = np.asarray(q, dtype=np.float64)
    ok = np.asarray(True) if df is None else np.asarray(df, dtype=np.float64) > 0
    out = np.full(np.broadcast_shapes(q.shape, ok.shape), np.nan)
    qb = np.broadcast_to(q, out.shape)
    okb = np.broadcast_to(ok, out.shape)
    out[okb & (qb == 0)] = lower
    out[okb & (qb == 1)] = upper
    inside = okb & (qb > 0) & (qb < 1)
    if inside.any():
        args = (qb,) if df is None else (np.broadcast_to(df, out.shape), qb)
        # "+ 0.0" as scipy.stats adds its loc: a quantile of -0.0 becomes 0.0
        out[inside] = func(*(np.asarray(a, dtype=np.float64)[inside] for a in args)) + 0.0
    return _out(out)


def norm_cdf(x: ArrayLike) -> Float:
    """Standard normal CDF, P(Z ≤ x) (``scipy.stats.norm.cdf``).

    Parameters
    ----------
    x : array_like

    Returns
    -------
    float or numpy.ndarray
        NaN where ``x`` is NaN.

    Examples
    --------
    >>> float(norm_cdf(0.0))
    0.5
    """
    return _probability(special.ndtr, x, None, -np.inf, below=0.0, above=1.0)


def norm_sf(x: ArrayLike) -> Float:
    """Standard normal survival function, P(Z > x) (``scipy.stats.norm.sf``).

    Parameters
    ----------
    x : array_like

    Returns
    -------
    float or numpy.ndarray
        Accurate far in the upper tail (not ``1 - norm_cdf(x)``).

    Examples
    --------
    >>> round(float(2 * norm_sf(1.959963984540054)), 12)
    0.05
    """
    return _probability(lambda v: special.ndtr(-v), x, None, -np.inf, below=1.0, above=0.0)


def norm_ppf(q: ArrayLike) -> Float:
    """Standard normal quantile, the x with P(Z ≤ x) = q (``scipy.stats.norm.ppf``).

    Parameters
    ----------
    q : array_like
        Probabilities; −∞ at 0, +∞ at 1, NaN outside [0, 1].

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> round(float(norm_ppf(0.975)), 6)
    1.959964
    """
    return _quantile(special.ndtri, q, None, -np.inf, np.inf)


def chi2_cdf(x: ArrayLike, df: ArrayLike) -> Float:
    """Chi-square CDF, P(X ≤ x) with ``df`` degrees of freedom (``scipy.stats.chi2.cdf``).

    Parameters
    ----------
    x : array_like
        0 at or below 0.
    df : array_like
        Degrees of freedom (> 0, else NaN).

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> round(float(chi2_cdf(3.841458820694124, 1)), 12)
    0.95
    """
    return _probability(special.chdtr, x, df, 0.0, below=0.0, above=1.0)


def chi2_sf(x: ArrayLike, df: ArrayLike) -> Float:
    """Chi-square survival function, P(X > x) (``scipy.stats.chi2.sf``).

    Parameters
    ----------
    x : array_like
        1 at or below 0.
    df : array_like
        Degrees of freedom (> 0, else NaN).

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> round(float(chi2_sf(3.841458820694124, 1)), 12)
    0.05
    """
    return _probability(special.chdtrc, x, df, 0.0, below=1.0, above=0.0)


def t_cdf(x: ArrayLike, df: ArrayLike) -> Float:
    """Student-t CDF, P(T ≤ x) with ``df`` degrees of freedom (``scipy.stats.t.cdf``).

    Parameters
    ----------
    x : array_like
    df : array_like
        Degrees of freedom (> 0, else NaN).

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> float(t_cdf(0.0, 5))
    0.5
    """
    return _probability(special.stdtr, x, df, -np.inf, below=0.0, above=1.0)


def t_sf(x: ArrayLike, df: ArrayLike) -> Float:
    """Student-t survival function, P(T > x) (``scipy.stats.t.sf``).

    Parameters
    ----------
    x : array_like
    df : array_like
        Degrees of freedom (> 0, else NaN).

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> round(float(2 * t_sf(2.228138852, 10)), 9)
    0.05
    """
    return _probability(lambda d, v: special.stdtr(d, -v), x, df, -np.inf,
                        below=1.0, above=0.0)


def t_ppf(q: ArrayLike, df: ArrayLike) -> Float:
    """Student-t quantile, the x with P(T ≤ x) = q (``scipy.stats.t.ppf``).

    Parameters
    ----------
    q : array_like
        Probabilities; −∞ at 0, +∞ at 1, NaN outside [0, 1].
    df : array_like
        Degrees of freedom (> 0, else NaN).

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> round(float(t_ppf(0.975, 10)), 6)
    2.228139
    """
    return _quantile(special.stdtrit, q, df, -np.inf, np.inf)


def rankdata(a: ArrayLike) -> np.ndarray:
    """Ranks 1…n of the values of ``a`` (flattened), ties given their average rank
    (``scipy.stats.rankdata``, method "average").

    Parameters
    ----------
    a : array_like

    Returns
    -------
    numpy.ndarray of float
        Every rank NaN if ``a`` holds a NaN.

    Examples
    --------
    >>> rankdata([10, 30, 20, 20]).tolist()
    [1.0, 4.0, 2.5, 2.5]
    """
    x = np.ravel(np.asarray(a))
    n = x.size
    if n == 0:
        return np.empty(0)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])  # start of each run of ties
    size = np.diff(np.r_[first, n])
    # ranks first+1 … first+size share their mean, first + 1 + (size - 1) / 2
    mean_rank = (first + 1).astype(np.float64) + (size - 1).astype(np.float64) / 2
    ranks = np.empty(n)
    ranks[order] = np.repeat(mean_rank, size)
    if x.dtype.kind in "fc" and np.isnan(x).any():
        ranks[:] = np.nan
    return ranks


class SpearmanResult(NamedTuple):
    """Spearman's rho and its two-sided p-value (unpacks like ``scipy.stats``' result)."""

    statistic: float
    pvalue: float


def spearmanr(x: ArrayLike, y: ArrayLike) -> SpearmanResult:
    """Spearman's rank correlation of ``x`` and ``y`` (``scipy.stats.spearmanr``).

    rho is Pearson's correlation of the ranks (ties averaged, :func:`rankdata`).
    The p-value is two-sided against rho = 0, from t = rho·√((n − 2) / (1 − rho²))
    on the Student-t distribution with n − 2 degrees of freedom (an approximation
    that needs n of about 10 or more to be close; with n − 2 = 0 it is NaN).

    Parameters
    ----------
    x, y : array_like
        Paired values, one dimension, the same length.

    Returns
    -------
    SpearmanResult
        ``(statistic, pvalue)``; both NaN when there are fewer than 2 pairs, when a
        value is NaN, or when ``x`` or ``y`` is constant (rho is undefined).

    Examples
    --------
    >>> res = spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])
    >>> round(float(res.statistic), 6), round(float(res.pvalue), 6)
    (0.820783, 0.088587)
    """
    x = np.ravel(np.asarray(x))
    y = np.ravel(np.asarray(y))
    if x.size != y.size:
        raise ValueError(f"x and y differ in length ({x.size} and {y.size})")
    nan = SpearmanResult(np.float64(np.nan), np.float64(np.nan))
    n = x.size
    if n <= 1 or (x[0] == x).all() or (y[0] == y).all():
        return nan
    rx, ry = rankdata(x), rankdata(y)
    if np.isnan(rx[0]) or np.isnan(ry[0]):
        return nan
    # np.corrcoef of the two rows, as scipy.stats correlates its (n, 2) rank matrix
    rho = np.corrcoef(rx, ry)[1, 0]
    dof = n - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        # clip: rounding can make 1 − rho² a tiny negative number
        t = rho * np.sqrt((dof / ((rho + 1.0) * (1.0 - rho))).clip(0))
    return SpearmanResult(rho, 2 * special.stdtr(dof, -np.abs(t)))
