"""Conditional-permutation inference for local spatial statistics.

A local statistic of unit *i* here is affine in its spatial lag,
``stat_i = offset_i + scale_i · Σ_j w_ij x_j``, where ``x`` is the variable being
permuted (``z`` for local Moran, ``y`` for Getis–Ord Gi / Gi*). Under the
conditional-permutation null (Anselin 1995) unit *i* keeps its own value and its
neighbours' values are a random draw, without replacement, of the other n − 1
values. This module simulates that null and turns it into p-values.

How the draws are made, and why they do not depend on row order
---------------------------------------------------------------
The null distribution of unit *i* depends only on (a) its own value (which fixes
the pool of the other n − 1 values and the offset / scale) and (b) the multiset of
its neighbour weights. Units sharing both have the *same* null distribution, so
they form one **group** and share one set of simulations. Each group's pool is the
sorted data with one instance of the group's own value removed, and its draws come
from a counter-based generator (SplitMix64 finaliser) keyed by the seed and a hash
of the group's defining numbers — never by a row position. The draws therefore do
not depend on row order, chunking or ``n_jobs``; :func:`permutation_draws` returns
them for inspection. For counts on a grid the groups are few (one per count value
and neighbour count), which makes the engine fast; for continuous values every unit
is its own group.

p-values (ties count against significance)
------------------------------------------
With P simulations, a relative tolerance ``rtol`` for floating-point ties and
``tol = rtol × (the statistic's scale)``::

    p_hot  = (1 + #{sim ≥ obs − tol}) / (P + 1)     # larger than chance
    p_cold = (1 + #{sim ≤ obs + tol}) / (P + 1)     # smaller than chance
    p_sim  = min(1, 2 · min(p_hot, p_cold))          # two-sided

A unit whose whole window (itself and its neighbours) holds the data's smallest
value — an empty neighbourhood of counts — is never significant: all three p-values
are 1 (:func:`never_significant`). With ``constant_window="any"`` every constant
window is treated so; the default keeps a block of equal *high* values testable,
because such a block is a genuine hot spot.

Multiple testing: :func:`correction_threshold` (Benjamini–Hochberg, Bonferroni or
none) and :func:`permutations_needed` (how many simulations make a corrected
threshold attainable at all).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
from scipy import sparse

__all__ = [
    "CORRECTIONS",
    "LocalPermutation",
    "PermutationDraws",
    "confidence_bins",
    "conditional_permutation",
    "correction_threshold",
    "never_significant",
    "permutation_draws",
    "permutations_needed",
    "tie_aware_pvalues",
    "window_is_constant",
]

#: Multiple-testing corrections understood by :func:`correction_threshold`.
CORRECTIONS = ("fdr", "bonferroni", "none")
Correction = Literal["fdr", "bonferroni", "none"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# Rows (group × permutation) handled at once; bounds memory to ~tens of MB.
_ROWS_PER_CHUNK = 200_000


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _seed_key(seed: int) -> np.uint64:
    s = np.asarray([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    return _mix(_mix(s))[0]


def _row_keys(table: np.ndarray, seed: int) -> np.ndarray:
    """One 64-bit key per row of a float table, from its exact bit patterns."""
    bits = np.ascontiguousarray(table, dtype=np.float64).view(np.uint64)
    h = np.full(len(table), _seed_key(seed), dtype=np.uint64)
    for c in range(bits.shape[1]):  # few columns
        h = _mix(h ^ bits[:, c])
    return h


@dataclasses.dataclass
class PermutationDraws:
    """The simulated neighbourhoods of every unit (see :func:`permutation_draws`).

    ``index[i, p, j]`` is the position, in ``pool(i)``, of the value put in slot j
    of unit i's p-th simulated neighbourhood; slot j carries weight
    ``slot_weights[i, j]`` (the unit's neighbour weights sorted ascending, zero
    padded). ``pool(i)`` is ``sorted_values`` with one instance of unit i's own
    value removed, i.e. ``np.delete(sorted_values, pool_gap[i])``.
    """

    index: np.ndarray
    slot_weights: np.ndarray
    sorted_values: np.ndarray
    pool_gap: np.ndarray
    group: np.ndarray

    def pool(self, i: int) -> np.ndarray:
        """The n − 1 values unit ``i``'s neighbours are drawn from."""
        return np.delete(self.sorted_values, self.pool_gap[i])


@dataclasses.dataclass
class LocalPermutation:
    """Permutation inference for one local statistic (esda's names where they exist).

    Attributes
    ----------
    obs : ndarray
        The observed statistic per unit.
    p_hot, p_cold, p_sim : ndarray
        One-sided (larger / smaller than chance) and two-sided pseudo p-values,
        ties counted against significance.
    EI_sim, seI_sim, z_sim : ndarray
        Mean and standard deviation of the simulations, and (obs − mean) / sd
        (0 where the simulations have no spread).
    constant_window : ndarray of bool
        Units whose window can carry no evidence (p-values set to 1), see
        :func:`never_significant`.
    permutations, seed, n_groups : int
    """

    obs: np.ndarray
    p_hot: np.ndarray
    p_cold: np.ndarray
    p_sim: np.ndarray
    EI_sim: np.ndarray
    seI_sim: np.ndarray
    z_sim: np.ndarray
    constant_window: np.ndarray
    permutations: int
    seed: int
    n_groups: int


# ----------------------------------------------------------------------- groups


def _csr(w: sparse.spmatrix | np.ndarray) -> sparse.csr_matrix:
    m = sparse.csr_matrix(w, dtype=float)
    m.sum_duplicates()
    m.eliminate_zeros()
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"weights must be square, got shape {m.shape}")
    if m.diagonal().any():
        raise ValueError("weights must have a zero diagonal: give self-weights as offset")
    return m


def _slot_weights(m: sparse.csr_matrix) -> np.ndarray:
    """Each row's weights sorted ascending, left-aligned, zero padded."""
    n = m.shape[0]
    k = np.diff(m.indptr)
    kmax = int(k.max()) if n else 0
    rows = np.repeat(np.arange(n), k)
    order = np.lexsort((m.data, rows))
    pos = np.arange(len(rows)) - np.repeat(m.indptr[:-1], k)
    out = np.zeros((n, kmax))
    out[rows, pos] = m.data[order]
    return out


def window_is_constant(
    values: np.ndarray, w: sparse.spmatrix, *, rtol: float = 1e-9
) -> np.ndarray:
    """True where a unit and all its neighbours hold the same value.

    Examples
    --------
    >>> from scipy import sparse
    >>> w = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float))
    >>> window_is_constant(np.array([0.0, 0.0, 5.0]), w).tolist()
    [True, False, False]
    """
    m = _csr(w)
    x = np.asarray(values, dtype=float)
    k = np.diff(m.indptr)
    nb = x[m.indices]
    hi, lo = x.copy(), x.copy()
    has = k > 0
    if nb.size:
        starts = m.indptr[:-1][has]
        hi[has] = np.maximum(hi[has], np.maximum.reduceat(nb, starts))
        lo[has] = np.minimum(lo[has], np.minimum.reduceat(nb, starts))
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    return (hi - lo) <= rtol * scale


ConstantWindow = Literal["at_minimum", "any"]


def never_significant(
    values: np.ndarray, w: sparse.spmatrix, *, rule: ConstantWindow = "at_minimum",
    rtol: float = 1e-9,
) -> np.ndarray:
    """Units whose window can carry no evidence: constant, and (by default) at the minimum.

    An all-empty neighbourhood of counts is the typical case: its statistic ties with
    most simulations and says nothing about clustering.

    Examples
    --------
    >>> from scipy import sparse
    >>> w = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float))
    >>> never_significant(np.array([0.0, 0.0, 5.0]), w).tolist()
    [True, False, False]
    >>> never_significant(np.array([0.0, 5.0, 5.0]), w, rule="any").tolist()
    [False, False, True]
    """
    x = np.asarray(values, dtype=float)
    const = window_is_constant(x, w, rtol=rtol)
    if rule == "any":
        return const
    if rule != "at_minimum":
        raise ValueError(f"unknown constant-window rule {rule!r}: use 'at_minimum' or 'any'")
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    return const & (x <= x.min() + rtol * scale) if x.size else const


def _groups(
    values: np.ndarray, slot_w: np.ndarray, offset: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Group id per unit and the table of defining numbers per group."""
    table = np.column_stack([values, offset, scale, slot_w])
    uniq, inverse = np.unique(table, axis=0, return_inverse=True)
    return np.asarray(inverse).ravel(), uniq


def _draw_indices(keys: np.ndarray, kslots: int, pool_size: int, permutations: int,
                  start: int = 0) -> np.ndarray:
    """(len(keys), permutations, kslots) positions in [0, pool_size), without replacement.

    Slot j of permutation p of a group is drawn from the counter (p, j) of the
    group's key: a rank r uniform in [0, pool_size − j), mapped to the r-th
    (0-based) position not taken by slots < j. Slot j only depends on slots < j,
    so drawing more slots never changes the first ones.
    """
    g = len(keys)
    kslots = min(kslots, pool_size)
    perm = np.arange(start, start + permutations, dtype=np.uint64)
    base = (keys[:, None] ^ _mix(perm[None, :] * _GOLDEN)).reshape(-1)  # (g·P,)
    rows = g * permutations
    # Slot-major: every per-slot operation runs over contiguous memory.
    # Positions in the narrowest integer type that holds them: the rank-to-position
    # mapping below is memory-bound.
    small = np.int16 if pool_size <= np.iinfo(np.int16).max else (
        np.int32 if pool_size <= np.iinfo(np.int32).max else np.int64)
    picked = np.empty((kslots, rows), dtype=small)
    for a in range(0, rows, _DRAW_BLOCK):  # cache-sized blocks of rows
        picked[:, a: a + _DRAW_BLOCK] = _draw_block(base[a: a + _DRAW_BLOCK], kslots,
                                                    pool_size, small)
    return picked.T.astype(np.int64).reshape(g, permutations, kslots)


# Rows drawn at once: the temporaries of one block stay in the CPU cache.
_DRAW_BLOCK = 32_768


def _draw_block(base: np.ndarray, kslots: int, pool_size: int, small: type) -> np.ndarray:
    """(kslots, len(base)) positions for the counters ``base`` (see :func:`_draw_indices`)."""
    picked = np.empty((kslots, len(base)), dtype=small)
    u = np.empty_like(base)
    t = np.empty_like(base)
    frac = np.empty(len(base))
    for j in range(kslots):  # few slots; vectorised over rows
        # _mix(base + j + 1), in place
        np.add(base, _GOLDEN + np.uint64(j + 1), out=u)
        for shift, mult in ((30, _M1), (27, _M2)):
            np.right_shift(u, np.uint64(shift), out=t)
            np.bitwise_xor(u, t, out=u)
            np.multiply(u, mult, out=u)
        np.right_shift(u, np.uint64(31), out=t)
        np.bitwise_xor(u, t, out=u)
        # a rank uniform in [0, pool_size - j): the top 53 bits as a fraction
        np.right_shift(u, np.uint64(11), out=u)
        np.multiply(u, 1.0 / 9007199254740992.0, out=frac, casting="unsafe")
        frac *= pool_size - j
        r = np.minimum(frac.astype(np.int64), pool_size - j - 1).astype(small)
        picked[j] = _rank_to_free_position(r, picked[:j])
    return picked


def _rank_to_free_position(r: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """The r-th (0-based) position not in ``taken`` (distinct picks, one column per row).

    The answer is the smallest fixed point x ≥ r of x = r + #{taken ≤ x}; iterating
    from x = r reaches it in a round or two for almost every row (collisions are
    rare when the pool is much larger than the window), and only the rows that
    still move are iterated again.
    """
    if not len(taken):
        return r
    x = r.copy()
    hit = np.empty(len(r), dtype=bool)
    for col in taken:  # contiguous rows of the slot-major table
        x += np.less_equal(col, r, out=hit)
    # A second round over all rows (dense passes are cheaper than gathering the
    # many rows that moved); only the few rows that moved again are iterated on.
    y = r.copy()
    for col in taken:
        y += np.less_equal(col, x, out=hit)
    todo = np.flatnonzero(y != x)
    x = y
    while todo.size:
        xt = x[todo]
        nxt = r[todo].copy()
        for col in taken:
            nxt += col[todo] <= xt
        moved = nxt != xt
        x[todo] = nxt
        todo = todo[moved]
    return x


def _groups_to_simulate(group: np.ndarray, skip: np.ndarray | None, n_groups: int
                        ) -> np.ndarray:
    """Mask of the groups that need draws: those with a unit not in ``skip``."""
    if skip is None:
        return np.ones(n_groups, dtype=bool)
    live = np.zeros(n_groups, dtype=bool)
    live[group[~skip]] = True
    return live


def _pool_gaps(sorted_values: np.ndarray, own: np.ndarray) -> np.ndarray:
    return np.searchsorted(sorted_values, own, side="left")


def permutation_draws(
    values: Sequence[float] | np.ndarray,
    w: sparse.spmatrix | np.ndarray,
    *,
    permutations: int = 999,
    seed: int = 0,
    offset: Sequence[float] | np.ndarray | None = None,
    scale: Sequence[float] | np.ndarray | None = None,
) -> PermutationDraws:
    """The conditional-permutation draws the engine uses, for every unit.

    Meant for checking and teaching (it materialises n × P × k integers); the
    engine itself draws per group and chunk.

    Parameters
    ----------
    values : array (n,)
        The permuted variable.
    w : sparse or dense (n, n)
        Neighbour weights, zero diagonal.
    permutations, seed : int
    offset, scale : array (n,), optional
        As in :func:`conditional_permutation` (they define the groups).

    Examples
    --------
    >>> w = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], float)
    >>> d = permutation_draws(np.array([1.0, 2.0, 3.0]), w, permutations=4, seed=1)
    >>> d.index.shape, d.pool(0).tolist()
    ((3, 4, 2), [2.0, 3.0])
    """
    x = np.asarray(values, dtype=float)
    m = _csr(w)
    n = len(x)
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    sc = np.ones(n) if scale is None else np.asarray(scale, dtype=float)
    slot_w = _slot_weights(m)
    group, table = _groups(x, slot_w, off, sc)
    keys = _row_keys(table, seed)
    idx = _draw_indices(keys, slot_w.shape[1], n - 1, permutations)
    sorted_values = np.sort(x)
    return PermutationDraws(
        index=idx[group],
        slot_weights=slot_w[:, : idx.shape[2]],
        sorted_values=sorted_values,
        pool_gap=_pool_gaps(sorted_values, x),
        group=group,
    )


# --------------------------------------------------------------------- p-values


def tie_aware_pvalues(
    obs: np.ndarray, sims: np.ndarray, *, tol: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-sided hot / cold and two-sided pseudo p-values, ties against significance.

    Parameters
    ----------
    obs : array (n,)
    sims : array (n, P)
        Simulated statistics per unit.
    tol : float or array (n,)
        Absolute tolerance within which a simulation counts as a tie.

    Examples
    --------
    >>> hot, cold, two = tie_aware_pvalues(np.array([0.0]), np.zeros((1, 9)))
    >>> float(hot[0]), float(cold[0]), float(two[0])
    (1.0, 1.0, 1.0)
    """
    obs = np.asarray(obs, dtype=float)[:, None]
    tol = np.broadcast_to(np.asarray(tol, dtype=float), obs.shape[:1])[:, None]
    p = sims.shape[1]
    hot = (1.0 + (sims >= obs - tol).sum(axis=1)) / (p + 1.0)
    cold = (1.0 + (sims <= obs + tol).sum(axis=1)) / (p + 1.0)
    return hot, cold, np.minimum(1.0, 2.0 * np.minimum(hot, cold))


def _count_sorted(srt: np.ndarray, rows: np.ndarray, x: np.ndarray, side: str) -> np.ndarray:
    """Vectorised searchsorted of x[u] in the sorted row srt[rows[u]]."""
    lo = np.zeros(len(x), dtype=np.int64)
    hi = np.full(len(x), srt.shape[1], dtype=np.int64)
    while True:  # about log2(P) rounds
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        v = srt[rows, np.minimum(mid, srt.shape[1] - 1)]
        go_right = (v < x) if side == "left" else (v <= x)
        lo = np.where(active & go_right, mid + 1, lo)
        hi = np.where(active & ~go_right, mid, hi)


def _tail_counts(sims: np.ndarray, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per unit u: #{sims[rows[u]] < lo[u]} and #{sims[rows[u]] ≤ hi[u]}.

    Direct comparison when groups hold about one unit each (continuous values);
    sorting each group's simulations once and searching it when many units share
    a group (counts). Both give the same integers.
    """
    p = sims.shape[1]
    if 2 * len(rows) <= len(sims) * max(1.0, math.log2(p)):
        below = np.empty(len(rows), dtype=np.int64)
        le = np.empty(len(rows), dtype=np.int64)
        for a in range(0, len(rows), 256):  # bounded temporaries
            s = sims[rows[a: a + 256]]
            below[a: a + 256] = (s < lo[a: a + 256, None]).sum(axis=1)
            le[a: a + 256] = (s <= hi[a: a + 256, None]).sum(axis=1)
        return below, le
    srt = np.sort(sims, axis=1)
    return _count_sorted(srt, rows, lo, "left"), _count_sorted(srt, rows, hi, "right")


def conditional_permutation(
    values: Sequence[float] | np.ndarray,
    w: sparse.spmatrix | np.ndarray,
    *,
    offset: Sequence[float] | np.ndarray | None = None,
    scale: Sequence[float] | np.ndarray | None = None,
    window: Sequence[float] | np.ndarray | None = None,
    constant_window: ConstantWindow = "at_minimum",
    permutations: int = 999,
    seed: int = 0,
    rtol: float = 1e-9,
    chunk_size: int | None = None,
    n_jobs: int = 1,
    skip_never_significant: bool = True,
) -> LocalPermutation:
    """Simulate ``stat_i = offset_i + scale_i · Σ_j w_ij x_j`` under conditional permutation.

    Parameters
    ----------
    values : array (n,)
        The permuted variable x.
    w : scipy sparse or dense (n, n)
        Neighbour weights with a zero diagonal (a self-weight goes into ``offset``).
    offset, scale : array (n,), optional
        Per-unit constants (default 0 and 1); they may depend on the unit's own
        value only, as under conditional permutation.
    window : array (n,), optional
        Values whose constancy over a unit's window (itself and its neighbours)
        makes it not significant (default ``values``); see :func:`never_significant`.
    constant_window : {"at_minimum", "any"}
        Which constant windows are never significant.
    permutations : int
        Simulations per unit (≥ 1).
    seed : int
        Seed of the counter-based draws.
    rtol : float
        Relative tolerance for ties.
    chunk_size : int, optional
        Groups simulated at once (default: bounded by memory). Results do not
        depend on it.
    n_jobs : int
        Threads over chunks. Results do not depend on it.
    skip_never_significant : bool
        Simulate no group whose units are all never significant (their p-values
        are 1 whatever the draws). Other units' draws and p-values do not change,
        because draws are keyed by group, not by position; only the skipped
        units' ``EI_sim`` / ``seI_sim`` become NaN (their ``z_sim`` is 0 either way).

    Returns
    -------
    LocalPermutation

    Examples
    --------
    >>> w = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], float)
    >>> res = conditional_permutation(np.array([0.0, 0.0, 0.0, 4.0]), w, permutations=99)
    >>> res.p_sim.tolist()[0], bool(res.constant_window[0])
    (1.0, True)
    """
    x = np.asarray(values, dtype=float)
    n = len(x)
    if permutations < 1:
        raise ValueError("permutations must be at least 1")
    if n < 2:
        raise ValueError(f"conditional permutation needs at least 2 units, got {n}")
    m = _csr(w)
    if m.shape[0] != n:
        raise ValueError(f"weights have {m.shape[0]} units but there are {n} values")
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    sc = np.ones(n) if scale is None else np.asarray(scale, dtype=float)
    slot_w = _slot_weights(m)
    group, table = _groups(x, slot_w, off, sc)
    n_groups = len(table)
    keys = _row_keys(table, seed)
    sorted_x = np.sort(x)
    g_own = table[:, 0]
    g_gap = _pool_gaps(sorted_x, g_own)
    g_off, g_sc = table[:, 1], table[:, 2]
    g_w = table[:, 3:]
    kslots = min(g_w.shape[1], n - 1)
    g_w = g_w[:, :kslots]

    obs = off + sc * (m @ x)
    xmax = float(np.max(np.abs(x)))
    tol = rtol * (np.abs(off) + np.abs(sc) * np.asarray(abs(m).sum(axis=1)).ravel() * xmax)
    tol = np.maximum(tol, np.abs(obs) * rtol)
    const = never_significant(x if window is None else np.asarray(window, float), m,
                              rule=constant_window, rtol=rtol)
    live = _groups_to_simulate(group, const if skip_never_significant else None, n_groups)

    if chunk_size is None:
        chunk_size = max(1, _ROWS_PER_CHUNK * 8 // (permutations * max(1, kslots)))
    chunk_size = max(1, int(chunk_size))
    # Units of simulated groups, sorted by group so that each chunk of groups owns
    # a contiguous block; ``rank`` numbers the simulated groups 0, 1, ….
    rank = np.cumsum(live) - 1
    sim_units = np.flatnonzero(live[group])
    by_group = sim_units[np.argsort(rank[group[sim_units]], kind="stable")]
    live_ids = np.flatnonzero(live)
    n_live = len(live_ids)
    bounds = np.searchsorted(rank[group[by_group]], np.arange(0, n_live + 1))
    p_hot = np.ones(n)
    p_cold = np.ones(n)
    mean = np.full(n, np.nan)
    sd = np.full(n, np.nan)

    def run(g0: int) -> None:
        g1 = min(n_live, g0 + chunk_size)
        gs = live_ids[g0:g1]
        sims = np.zeros((len(gs), permutations))
        if kslots:
            idx = _draw_indices(keys[gs], kslots, n - 1, permutations)
            idx += idx >= g_gap[gs][:, None, None]  # skip the unit's own value
            sims = np.einsum("gpk,gk->gp", sorted_x[idx], g_w[gs])
        sims = g_off[gs][:, None] + g_sc[gs][:, None] * sims
        units = by_group[bounds[g0]: bounds[g1]]
        rows = rank[group[units]] - g0
        n_below, n_le = _tail_counts(sims, rows, obs[units] - tol[units],
                                     obs[units] + tol[units])
        p_hot[units] = (1.0 + permutations - n_below) / (permutations + 1.0)
        p_cold[units] = (1.0 + n_le) / (permutations + 1.0)
        mean[units] = sims.mean(axis=1)[rows]
        sd[units] = sims.std(axis=1)[rows]

    starts = range(0, n_live, chunk_size)
    if n_jobs == 1:
        for g0 in starts:  # chunks of groups, each vectorised
            run(g0)
    else:
        workers = None if n_jobs is None or n_jobs < 1 else int(n_jobs)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, starts))

    p_hot[const] = 1.0
    p_cold[const] = 1.0
    p_two = np.minimum(1.0, 2.0 * np.minimum(p_hot, p_cold))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, (obs - mean) / np.where(sd > 0, sd, 1.0), 0.0)
    z[const] = 0.0
    return LocalPermutation(
        obs=obs, p_hot=p_hot, p_cold=p_cold, p_sim=p_two, EI_sim=mean, seI_sim=sd,
        z_sim=z, constant_window=const, permutations=int(permutations), seed=int(seed),
        n_groups=int(n_groups),
    )


# ------------------------------------------------------------- multiple testing


def correction_threshold(
    p: Sequence[float] | np.ndarray, alpha: float, correction: Correction = "fdr"
) -> float:
    """The p-value threshold that controls the chosen error rate over all tests.

    * ``"fdr"`` — Benjamini–Hochberg: the largest p_(k) with p_(k) ≤ k·α/m; when no
      p-value qualifies, α/m (which none of them reaches);
    * ``"bonferroni"`` — α/m;
    * ``"none"`` — α.

    A unit is significant when its p ≤ the threshold.

    Examples
    --------
    >>> correction_threshold([0.001, 0.01, 0.03, 0.5], 0.05)
    0.03
    >>> correction_threshold([0.001, 0.01, 0.03, 0.5], 0.05, "bonferroni")
    0.0125
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}: use one of {', '.join(CORRECTIONS)}")
    p = np.asarray(p, dtype=float)
    p = p[np.isfinite(p)]
    m = len(p)
    if correction == "none" or m == 0:
        return float(alpha)
    if correction == "bonferroni":
        return float(alpha) / m
    srt = np.sort(p)
    ok = np.flatnonzero(srt <= alpha * np.arange(1, m + 1) / m)
    return float(srt[ok[-1]]) if len(ok) else float(alpha) / m


def permutations_needed(n_tests: int, alpha: float, correction: Correction = "fdr",
                        *, two_sided: bool = True) -> int:
    """Fewest permutations whose smallest p-value can pass the corrected threshold.

    The smallest attainable two-sided p is 2 / (P + 1); Benjamini–Hochberg's and
    Bonferroni's strictest step is α / m.

    Examples
    --------
    >>> permutations_needed(58, 0.05)
    2319
    >>> permutations_needed(58, 0.05, "none")
    39
    """
    m = 1 if correction == "none" else max(1, int(n_tests))
    k = 2.0 if two_sided else 1.0
    return max(1, math.ceil(k * m / alpha - 1 - 1e-9))


def confidence_bins(
    p: np.ndarray, direction: np.ndarray, *, correction: Correction = "fdr",
    levels: Sequence[float] = (0.10, 0.05, 0.01),
) -> tuple[np.ndarray, dict[str, float]]:
    """ArcGIS-style confidence bins: ``hot_99 … ns … cold_99``.

    Each level α is corrected over all tests on its own (as ArcGIS's FDR option
    does); a unit gets the highest confidence whose threshold its p passes.

    Parameters
    ----------
    p : array
        Two-sided p-values.
    direction : array
        Positive for "more than chance" (hot), negative for cold.

    Returns
    -------
    bins : array of str
    thresholds : dict
        Threshold per confidence level, e.g. ``{"90": …, "95": …, "99": …}``.

    Examples
    --------
    >>> b, thr = confidence_bins(np.array([0.001, 0.04, 0.5]), np.array([1, -1, 1]),
    ...                          correction="none")
    >>> b.tolist()
    ['hot_99', 'cold_95', 'ns']
    """
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), "ns", dtype=object)
    thresholds: dict[str, float] = {}
    for a in sorted(levels, reverse=True):  # 90 %, then 95 %, then 99 % overwrite
        conf = f"{round(100 * (1 - a)):d}"
        thr = correction_threshold(p, a, correction)
        thresholds[conf] = thr
        sig = p <= thr
        out[sig & (direction > 0)] = f"hot_{conf}"
        out[sig & (direction < 0)] = f"cold_{conf}"
    return out.astype(str), thresholds
