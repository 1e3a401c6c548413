"""The named fields of a study: which step writes which test, table and result.

:func:`incubloc.workflow.run_study` runs named steps (:data:`STEPS`); each writes
the tests (``stats.json`` keys), tables and result objects listed here. The report,
plots and web map read them through :meth:`incubloc.workflow.Study.test`,
:meth:`~incubloc.workflow.Study.result` and :func:`field`, which fail loudly
(:class:`StudyFieldError`, naming the missing field) when a step
ran but its field is absent, instead of silently leaving a report section out.

A test a step could not compute is recorded as ``{"skipped": reason}``
(:func:`skipped` returns the reason).

P-values are named after their reference distribution, as esda names them:
``p_sim`` (Monte-Carlo or permutation), ``p_norm`` (normal approximation),
``p_t`` (Student t, e.g. Spearman's ρ), ``p_ks`` (Kolmogorov–Smirnov); a one-sided
p-value adds its alternative (``p_sim_clustered``, ``p_sim_closer``,
``p_sim_farther``). Column names of the CSV tables are left as they are.

Examples
--------
>>> field({"rho": 0.5}, "rho", where="tests['tier_relation']")
0.5
>>> field({"rho": 0.5}, "p_t", where="tests['tier_relation']")
Traceback (most recent call last):
...
incubloc.study_fields.StudyFieldError: tests['tier_relation'] has no field 'p_t' (it has: rho)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["OPTIONAL_RESULTS", "RESULTS", "STEPS", "TABLES", "TESTS", "StudyFieldError", "field", "skipped",
           "step_of"]


class StudyFieldError(KeyError):
    """A step ran but a field the report or a plot reads is absent.

    A programming error (a renamed or removed key), not a problem of the input: it
    names the record and the missing field.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

#: The steps of :func:`incubloc.workflow.run_study`, in order.
STEPS: tuple[str, ...] = (
    "classify", "region", "rings", "ring edge", "relation and layout", "point pattern",
    "autocorrelation", "location preference", "density", "factors",
)

#: ``stats.json`` keys (``Study.tests``) by the step that writes them.
TESTS: dict[str, str] = {
    "counts": "region",
    "tier_relation": "region",
    "province_ratio": "region",
    "density_gradient": "rings",
    "opening_sequence": "rings",
    "ring_edge": "ring edge",
    "relation_agreement": "relation and layout",
    "layout_agreement": "relation and layout",
    "ripley": "point pattern",
    "ellipse": "point pattern",
    "clark_evans": "point pattern",
    "ripley_inhom": "point pattern",
    "global_moran": "autocorrelation",
    "local_moran": "autocorrelation",
    "getis_ord": "autocorrelation",
    "join_counts": "autocorrelation",
    "preference": "location preference",
    "factors": "factors",
}

#: Result objects (``Study.results``) by the step that writes them.
RESULTS: dict[str, str] = {
    "ring_edge": "ring edge",
    "relation_agreement": "relation and layout",
    "layout_agreement": "relation and layout",
    "ripley": "point pattern",
    "ripley_inhom": "point pattern",
    "centrography": "point pattern",
    "preference": "location preference",
    "factors": "factors",
}

#: Results written only when their layer or labels exist.
OPTIONAL_RESULTS: frozenset[str] = frozenset(
    {"ring_edge", "relation_agreement", "layout_agreement", "ripley_inhom", "preference"})

#: Tables (``Study.tables``, written as ``tables/<name>.csv``) by step. Tables of a
#: missing study-area layer are absent (the CSV files stay exactly the computed ones).
TABLES: dict[str, str] = {
    "incubators": "classify", "rejected": "classify",
    "region_city": "region", "region_city_level": "region", "region_level": "region",
    "region_province": "region", "region_settlement": "region", "region_tier": "region",
    "region_zone": "region",
    "ring_patterns": "rings", "ring_table": "rings", "density_gradient": "rings",
    "opening_sequence": "rings",
    "relation_by_city": "relation and layout", "relation_by_ring": "relation and layout",
    "layout_by_city": "relation and layout", "layout_by_ring": "relation and layout",
    "relation_confusion": "relation and layout", "layout_confusion": "relation and layout",
    "point_pattern": "point pattern",
    "multiscale_moran": "autocorrelation",
    "preference_centres": "location preference", "preference_hosts": "location preference",
    "factor_coefficients": "factors", "factor_fit": "factors",
    "factor_decomposition": "factors", "factor_covariates": "factors",
}


def step_of(kind: str, name: str) -> str:
    """The step that writes test / result / table ``name``.

    Raises
    ------
    StudyFieldError
        When no step writes it (a misspelt name).

    Examples
    --------
    >>> step_of("test", "ring_edge")
    'ring edge'
    """
    table = {"test": TESTS, "result": RESULTS, "table": TABLES}[kind]
    try:
        return table[name]
    except KeyError:
        raise StudyFieldError(f"no step writes the {kind} {name!r}; known: "
                              f"{', '.join(sorted(table))}") from None


def field(record: Any, name: str, *, where: str) -> Any:
    """Field ``name`` of a test record (mapping) or result object, loudly.

    Parameters
    ----------
    record : mapping or object
    name : str
    where : str
        How the record is called in the error message (``"tests['ripley']"``).

    Raises
    ------
    StudyFieldError
        Naming ``where`` and ``name`` when the field is absent.
    """
    if isinstance(record, Mapping):
        if name in record:
            return record[name]
        has = ", ".join(map(str, record))
    else:
        if hasattr(record, name):
            return getattr(record, name)
        has = type(record).__name__
    raise StudyFieldError(f"{where} has no field {name!r} (it has: {has})")


def skipped(record: Any) -> str | None:
    """Why a step could not compute a test (``{"skipped": reason}``), else None.

    Examples
    --------
    >>> skipped({"skipped": "no rings layer"}), skipped({"rho": 1.0})
    ('no rings layer', None)
    """
    if isinstance(record, Mapping) and record.get("skipped"):
        return str(record["skipped"])
    return None
