"""Spatial statistics of incubator locations.

Modules
-------
pointpattern
    Clark–Evans, Ripley's K / Besag's L with envelopes, quadrat VMR test,
    centrography (mean centre, standard distance, standard deviational ellipse).
autocorrelation
    Grids and aggregation, spatial weights, global and local Moran's I,
    Getis–Ord Gi*, join counts, multi-scale Moran profile, EB-standardised rates per unit.
permutation
    Conditional-permutation engine for local statistics, tie-aware p-values and
    multiple-testing corrections.
constant_risk
    Monte-Carlo null of constant risk (complete spatial randomness given n) for
    local statistics of point counts on areal units.
density
    Kernel density surfaces (quartic / Gaussian) written as GeoTIFF.
preference
    Monte-Carlo test of distances to business / knowledge centres and hosts, with a
    placebo target set.
trend
    Poisson log-linear trend of counts with an exposure offset (density gradient).
sparse_weights
    Queen / k-nearest neighbours and islands as sparse matrices, equal to libpysal's.
rings
    Ring table, density gradient and opening sequence over rings, ring-edge test.
distributions
    Normal, chi-square and Student-t probabilities, ranks and Spearman's rho on
    :mod:`scipy.special` (``scipy.stats`` is slow to import).

Every stochastic function takes ``seed``; see :mod:`incubloc.stats._random`.
The public names below are imported on first use, so ``import incubloc.stats``
stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "pointpattern": (
        "Centrography",
        "ClarkEvansResult",
        "QuadratResult",
        "RipleyResult",
        "centrography",
        "clark_evans",
        "point_pattern_summary",
        "quadrat_test",
        "ripley",
    ),
    "autocorrelation": (
        "GI_BINS",
        "JoinCountResult",
        "MoranResult",
        "aggregate",
        "unit_rates",
        "getis_ord",
        "getis_ord_summary",
        "global_moran",
        "join_counts",
        "lisa_statistic",
        "local_moran",
        "make_grid",
        "multiscale_moran",
        "resolve_correction",
        "resolve_null",
        "weights",
        "write_grid",
    ),
    "density": (
        "DensitySurface", "bandwidth_rule", "kde", "kde_by_year", "kernel_sd",
        "likelihood_cv_sd", "write_geotiff",
    ),
    "permutation": (
        "LocalPermutation",
        "PermutationDraws",
        "conditional_permutation",
        "confidence_bins",
        "correction_threshold",
        "permutation_draws",
        "permutations_needed",
        "tie_aware_pvalues",
        "window_is_constant",
    ),
    "constant_risk": (
        "constant_risk_counts", "constant_risk_test", "eb_standardised_rate", "rate_values"
    ),
    "preference": ("PreferenceResult", "location_preference"),
    "trend": ("PoissonTrend", "poisson_trend"),
    "rings": ("RingEdgeResult", "density_gradient", "opening_sequence", "ring_edge_test",
              "ring_table"),
}

_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        module = importlib.import_module(f"incubloc.stats.{_WHERE[name]}")
        value = getattr(module, name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'incubloc.stats' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
