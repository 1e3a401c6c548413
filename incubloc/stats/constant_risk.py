"""Monte-Carlo inference under constant risk, for counts of points on areal units.

When the values on a lattice are counts of points (incubators per district or grid
cell), complete spatial randomness (CSR) in the study area says more than "the
values are exchangeable": given the number of points n, each point falls in unit i
with probability a_i / Σ a (a = land area), so the counts are
``Multinomial(n, a / Σ a)`` — the *constant-risk* null of Waller & Gotway (2004,
ch. 6–7). Rates of units of unequal area are then **not** exchangeable (a small
unit's rate is more variable and more skewed), so the conditional permutation of
rates is only an approximation to that null; this module simulates it exactly.

How it works: ``P`` count vectors are drawn from the multinomial, the same
statistic is recomputed from each (e.g. the empirical-Bayes standardised rate and
then Gi* or LISA), and each unit's observed statistic is ranked among its
simulations with the tie-aware rule of :mod:`incubloc.stats.permutation`::

    p_hot  = (1 + #{sim ≥ obs − tol}) / (P + 1)
    p_cold = (1 + #{sim ≤ obs + tol}) / (P + 1)
    p_sim  = min(1, 2 · min(p_hot, p_cold))

Under CSR the observed counts and the simulated ones are exchangeable, so every
unit's p-value is valid whatever its area or number of neighbours (Besag & Diggle
1977). The draws are made in a canonical unit order (given by the caller, e.g. by
coordinates) in fixed blocks of simulations, each block from its own generator
keyed by the seed and the block number: results do not depend on row order or on
the memory chunking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from scipy import sparse

from incubloc.stats.permutation import LocalPermutation, never_significant

__all__ = [
    "NULLS",
    "RATE_COLUMNS",
    "constant_risk_counts",
    "constant_risk_test",
    "eb_standardised_rate",
    "rate_values",
]

#: Nulls of the local statistics: conditional permutation of the values (any
#: attribute) or constant risk (counts of points on areal units).
NULLS = ("permutation", "constant_risk")
Null = Literal["permutation", "constant_risk"]

#: Columns of :func:`incubloc.stats.autocorrelation.unit_rates` that are functions
#: of the counts and areas alone, so the constant-risk null can recompute them.
RATE_COLUMNS = ("count", "rate", "density", "rate_z", "rate_score")

# Simulations per generator block: fixed, so results do not depend on chunking.
_BLOCK = 250


def eb_standardised_rate(counts: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Assunção–Reis empirical-Bayes standardised rates, column by column.

    Equal to ``esda.smoothing.assuncao_rate(counts, area)`` for a 1-D ``counts``
    (non-finite values set to 0, as in ``unit_rates``); a 2-D ``counts`` (units ×
    simulations) is standardised per column.

    Examples
    --------
    >>> e = np.array([30, 25, 25, 15, 33, 21, 30, 20])
    >>> b = np.array([100, 100, 110, 90, 100, 90, 110, 90])
    >>> np.round(eb_standardised_rate(e, b)[:2], 6).tolist()
    [1.038436, -0.040991]
    """
    e = np.asarray(counts, dtype=float)
    one = e.ndim == 1
    e = e[:, None] if one else e
    b = np.asarray(area, dtype=float)[:, None]
    # Units × simulations temporaries reused in place: the same operations in the
    # same order (same bits), without allocating every step anew.
    b_sum = float(b.sum())
    rate = e.sum(axis=0) / b_sum
    d = e / b
    d -= rate  # y − rate
    t = np.square(d)
    t *= b
    s2 = t.sum(axis=0) / b_sum
    a = s2 - rate / (b_sum / len(b))
    # v = a + rate/b, or rate/b where that sum is negative. a + x < 0 exactly when
    # x < −a (NaN included: neither holds), so the sum is added where x < −a fails.
    neg_a = -a
    one_rate = len(rate) > 0 and bool((rate == rate[0]).all())
    rb = rate[0] / b[:, 0] if one_rate else None
    if rb is not None and np.isfinite(rb).all():
        # Simulated counts all sum to n: one rate, rate/b a vector. The sum is made
        # everywhere, then put back to rate/b in the few cells where x < −a (only
        # columns whose −a passes the smallest x have any): the same numbers.
        v = np.add(rb[:, None], a, out=t)
        cols = np.flatnonzero(neg_a > rb.min())
        if cols.size:
            units, at = np.nonzero(rb[:, None] < neg_a[cols])
            v[units, cols[at]] = rb[units]
        # z is finite wherever v > 0: rate/b > 0 where kept, and a sum of finite
        # numbers is 0 only when they cancel exactly
        check = not ((rb > 0).all() and np.isfinite(a).all() and not np.isin(neg_a, rb).any())
    else:
        v = np.divide(rate, b, out=t)
        add = np.less(v, neg_a)
        np.logical_not(add, out=add)
        np.add(v, a, out=v, where=add)
        check = True
    with np.errstate(divide="ignore", invalid="ignore"):
        np.sqrt(v, out=v)
        z = np.divide(d, v, out=d)
    if check and not np.isfinite(z.sum()):  # one pass; a sum is finite only if every term is
        z[~np.isfinite(z)] = 0.0
    return z[:, 0] if one else z


def rate_values(counts: np.ndarray, area: np.ndarray, column: str) -> np.ndarray:
    """The ``unit_rates`` column ``column`` computed from counts (1-D or units × sims).

    Examples
    --------
    >>> rate_values(np.array([2.0, 0.0]), np.array([1.0, 2.0]), "rate").tolist()
    [2.0, 0.0]
    """
    c = np.asarray(counts, dtype=float)
    b = np.asarray(area, dtype=float)
    b = b if c.ndim == 1 else b[:, None]
    if column == "count":
        return c
    if column in ("rate", "density"):
        return c / b
    if column in ("rate_z", "rate_score"):
        z = eb_standardised_rate(c, np.asarray(area, dtype=float))
        if column == "rate_score":
            z -= z.min(axis=0)
        return z
    raise ValueError(f"no constant-risk form for {column!r}; use one of {', '.join(RATE_COLUMNS)}")


# Guide buckets per unit (the inverse-CDF lookup below), and the most units one
# bucket may span for the lookup to pay off over a binary search.
_GUIDE_PER_UNIT = 8
_GUIDE_MAX_SPAN = 8


def _guide_table(cum: np.ndarray) -> np.ndarray | None:
    """For bucket ``b`` of ``[0, 1)`` cut in ``G`` equal parts, the first index of
    ``cum`` above ``b / G``; None when some bucket spans too many units (very unequal
    areas), where a binary search is as quick."""
    g = _GUIDE_PER_UNIT * len(cum)
    guide = np.searchsorted(cum, np.arange(g) / g, side="right")
    if len(guide) > 1 and int(np.diff(guide).max()) > _GUIDE_MAX_SPAN:
        return None
    return guide


def _first_above(cum: np.ndarray, u: np.ndarray, guide: np.ndarray | None) -> np.ndarray:
    """``np.searchsorted(cum, u, side="right")`` for ``u`` in ``[0, 1)`` and an
    increasing ``cum`` ending at 1, by a guide table (Chen & Asau's inverse-CDF
    lookup): start from the bucket below ``u`` and step up while ``cum <= u``; the
    same indices, a few vector steps instead of a binary search per point."""
    if guide is None:
        return np.searchsorted(cum, u, side="right")
    g = len(guide)
    # One bucket lower than u's own: its start is at or below the answer whatever
    # the rounding of u * g.
    b = (u * g).astype(np.intp)
    np.subtract(b, 1, out=b)
    np.maximum(b, 0, out=b)
    cell = guide[b]
    step = cum[cell] <= u
    cell += step
    # Then only the points still moving: at most _GUIDE_MAX_SPAN steps each, and
    # cum[-1] = 1 > u stops every point.
    flat, uf = cell.reshape(-1), u.reshape(-1)
    todo = np.flatnonzero(step)
    while todo.size:
        at = flat[todo]
        step = cum[at] <= uf[todo]
        flat[todo] = at + step
        todo = todo[step]
    return cell


def constant_risk_counts(
    area: np.ndarray, n: int, *, permutations: int, seed: int, order: np.ndarray | None = None,
    start_block: int = 0,
) -> np.ndarray:
    """Counts of ``n`` points thrown uniformly over units of land area ``area``.

    Multinomial(n, area / Σ area) per simulation: drawn as one binomial per unit when
    there are at most ``n`` units, else by placing each point in a unit.

    Parameters
    ----------
    area : array (m,)
        Land area of each unit (the population at risk).
    n : int
        Number of points.
    permutations : int
        Simulations (columns).
    seed : int
    order : array of int (m,), optional
        Canonical order of the units (e.g. by coordinates); the draws follow it, so a
        reordering of the rows moves each unit's counts with it.
    start_block : int
        First generator block (blocks of 250 simulations).

    Returns
    -------
    ndarray (m, permutations) of float

    Examples
    --------
    >>> c = constant_risk_counts(np.array([1.0, 3.0]), 10, permutations=4, seed=1)
    >>> c.shape, c.sum(axis=0).tolist()
    ((2, 4), [10.0, 10.0, 10.0, 10.0])
    """
    a = np.asarray(area, dtype=float)
    m = len(a)
    order = np.arange(m) if order is None else np.asarray(order)
    shares = a[order] / a[order].sum()
    cum = np.cumsum(shares)
    cum[-1] = 1.0
    guide = _guide_table(cum)
    out = np.empty((m, permutations))
    done = 0
    block = start_block
    while done < permutations:
        k = min(_BLOCK, permutations - done)
        rng = np.random.default_rng([int(seed) & 0x7FFFFFFFFFFFFFFF, block])
        # The block's draws do not depend on k. Few units: one binomial per unit
        # (numpy's multinomial); many units: place each point (cost ∝ n, not m).
        if m <= n:
            c = rng.multinomial(int(n), shares, size=_BLOCK)[:k].T
            out[order, done: done + k] = c
        else:
            u = rng.random((_BLOCK, int(n)))[:k]
            cell = np.minimum(_first_above(cum, u, guide), m - 1)
            # counted straight into the units' rows (unit order[cell], simulation j)
            flat = (order[cell] * k + np.arange(k)[:, None]).ravel()
            out[:, done: done + k] = np.bincount(flat, minlength=m * k).reshape(m, k)
        done += k
        block += 1
    return out


# Units × simulations per call of the statistic (about 1.5 MB per temporary): they
# then stay in the CPU cache, and on the 731 cells of the Nanjing 10 km grid the
# statistic runs about twice as fast as on a whole chunk of 1,000 simulations.
_CELLS_PER_CALL = 200_000


def _in_column_blocks(statistic: Callable[..., np.ndarray], sim: np.ndarray,
                      rows: np.ndarray | None) -> np.ndarray:
    """``statistic(sim)`` (or ``statistic(sim, rows)``) evaluated on blocks of columns.

    The statistic works column by column, so the values are those of one call on the
    whole of ``sim``; for statistics made of elementwise operations, sparse products
    and NumPy sums over the units (this package's), bit for bit, because NumPy sums
    a units × k array over the units one unit after another whatever k ≥ 2 (a
    single column is summed pairwise, so no block is one column wide unless ``sim``
    is).
    """
    k = sim.shape[1]
    cuts = list(range(0, k, max(2, _CELLS_PER_CALL // max(1, sim.shape[0])))) + [k]
    if len(cuts) > 2 and cuts[-1] - cuts[-2] == 1:
        del cuts[-2]  # merge a last single column into the block before it
    out = None
    for j0, j1 in zip(cuts[:-1], cuts[1:], strict=True):
        part = sim[:, j0:j1]
        st = np.asarray(statistic(part) if rows is None else statistic(part, rows),
                        dtype=float)
        if out is None:
            if j1 == k:
                return st
            out = np.empty((st.shape[0], k))
        out[:, j0:j1] = st
    return out


def constant_risk_test(
    counts: np.ndarray,
    area: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    w: sparse.spmatrix | np.ndarray,
    permutations: int = 999,
    seed: int = 0,
    order: np.ndarray | None = None,
    window: np.ndarray | None = None,
    constant_window: Literal["at_minimum", "any"] = "at_minimum",
    rtol: float = 1e-9,
    sims_per_chunk: int = 1000,
    skip_never_significant: bool = False,
) -> LocalPermutation:
    """Monte-Carlo p-values of a local statistic of counts under constant risk.

    Parameters
    ----------
    counts : array (m,)
        Observed counts per unit.
    area : array (m,)
        Land area per unit (> 0).
    statistic : callable
        ``statistic(counts)`` maps counts (m × k) to the local statistic (m × k),
        column by column. With ``skip_never_significant`` it is also called as
        ``statistic(counts, rows)``, ``rows`` an increasing int array, and must then
        return ``statistic(counts)[rows]`` (len(rows) × k): the counts are still
        those of every unit, because a local statistic of counts needs sums over
        all of them.
    w : sparse or dense (m, m)
        Neighbour weights, used only to find constant windows.
    permutations, seed : int
        Simulations and seed.
    order : array of int, optional
        Canonical unit order for the draws (see :func:`constant_risk_counts`).
    window : array (m,), optional
        Values whose constancy over a unit's window makes it never significant
        (default ``counts``).
    constant_window : {"at_minimum", "any"}
    rtol : float
        Relative tolerance for ties (of the largest absolute observed statistic).
    sims_per_chunk : int
        Simulations held in memory at once; results do not depend on it.
    skip_never_significant : bool
        Evaluate the simulated statistic only on the units that can be significant
        (not those of :func:`~incubloc.stats.permutation.never_significant`, whose
        p-values are 1 and ``z_sim`` 0 whatever the simulations). The draws and the
        other units' results do not change; the skipped units' ``EI_sim`` and
        ``seI_sim`` become NaN, as in
        :func:`~incubloc.stats.permutation.conditional_permutation`.

    Returns
    -------
    LocalPermutation
        ``n_groups`` is 1 (all units share the simulated patterns).

    Examples
    --------
    >>> w = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float)
    >>> res = constant_risk_test(np.array([0.0, 0.0, 6.0]), np.ones(3), lambda c: c,
    ...                          w=w, permutations=99, seed=1)
    >>> float(res.p_sim[0]), bool(res.p_hot[2] < 0.05)
    (1.0, True)
    """
    c = np.asarray(counts, dtype=float)
    a = np.asarray(area, dtype=float)
    m = len(c)
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    if len(a) != m:
        raise ValueError(f"{len(a)} areas for {m} counts")
    if not (a > 0).all():
        raise ValueError("every unit needs a positive land area under constant risk")
    obs = np.asarray(statistic(c[:, None]), dtype=float)[:, 0]
    finite = obs[np.isfinite(obs)]
    tol = rtol * max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)
    const = never_significant(c if window is None else np.asarray(window, dtype=float), w,
                              rule=constant_window, rtol=rtol)
    # The units whose simulations are used; the others' p-values are 1 by rule.
    rows = np.flatnonzero(~const) if skip_never_significant else None
    ob = obs if rows is None else obs[rows]
    n_ge = np.zeros(len(ob))
    n_le = np.zeros(len(ob))
    s1 = np.zeros(len(ob))
    s2 = np.zeros(len(ob))
    per = max(_BLOCK, (int(sims_per_chunk) // _BLOCK) * _BLOCK)
    done = 0
    while done < permutations:
        k = min(per, permutations - done)
        sim = constant_risk_counts(a, int(round(c.sum())), permutations=k, seed=seed,
                                   order=order, start_block=done // _BLOCK)
        st = _in_column_blocks(statistic, sim, rows)
        n_ge += np.count_nonzero(st >= ob[:, None] - tol, axis=1)
        n_le += np.count_nonzero(st <= ob[:, None] + tol, axis=1)
        s1 += st.sum(axis=1)
        s2 += (st * st).sum(axis=1)
        done += k
    p_hot = np.ones(m)
    p_cold = np.ones(m)
    mean = np.full(m, np.nan)
    sd = np.full(m, np.nan)
    at = slice(None) if rows is None else rows
    p_hot[at] = (1.0 + n_ge) / (permutations + 1.0)
    p_cold[at] = (1.0 + n_le) / (permutations + 1.0)
    mean[at] = s1 / permutations
    sd[at] = np.sqrt(np.maximum(s2 / permutations - mean[at]**2, 0.0))
    p_hot[const] = 1.0
    p_cold[const] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (obs - mean) / np.where(sd > 0, sd, 1.0), 0.0)
    z[const] = 0.0
    return LocalPermutation(
        obs=obs, p_hot=p_hot, p_cold=p_cold,
        p_sim=np.minimum(1.0, 2.0 * np.minimum(p_hot, p_cold)), EI_sim=mean, seI_sim=sd,
        z_sim=z, constant_window=const, permutations=int(permutations), seed=int(seed),
        n_groups=1,
    )
