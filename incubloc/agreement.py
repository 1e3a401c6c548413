"""Agreement of derived classes with declared ones, and cross-tabulations.

When a user's incubator table declares a ``relation`` or ``layout`` (read as
``declared_relation`` / ``declared_layout``), :func:`agreement` compares it with the
class incubloc derived from geometry: confusion matrix, Cohen's kappa and
accuracy over the rows where both are known. :func:`crosstab` tabulates classes
against each other (relation × ring, layout × city, …), the paper's tables 1–2.

Declared labels may be written in Chinese (园中园型, 独立型, 混合型, 楼宇式, 园区式,
混合式) or English with spaces or hyphens; they are normalised to incubloc's labels.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from incubloc.errors import InputError
from incubloc.vocabulary import DECLARED_ALIASES, LAYOUT, RELATION, RING, label_key

__all__ = ["LABEL_ALIASES", "Agreement", "agreement", "crosstab", "normalize_labels"]

log = logging.getLogger(__name__)

#: Declared spellings of relation and layout labels (keys are
#: :func:`incubloc.vocabulary.label_key` forms), from :mod:`incubloc.vocabulary`.
LABEL_ALIASES: Mapping[str, str] = DECLARED_ALIASES

#: Categories listed (in this order) in cross-tabulations of known columns.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "relation": RELATION.labels,
    "layout": LAYOUT.labels,
    "ring": RING.labels,
}
CATEGORIES["declared_relation"] = CATEGORIES["relation"]
CATEGORIES["declared_layout"] = CATEGORIES["layout"]

_ORDER = (*RELATION.labels[:-1], *LAYOUT.labels[:-1], "mixed")  # "mixed" last
_UNKNOWN = {"", "unclassified", "unknown", "nan", "none", "null", "na", "n/a", "未知"}


def normalize_labels(values: Sequence[Any] | pd.Series) -> pd.Series:
    """Map declared spellings to incubloc labels; unknown / empty become NaN.

    Examples
    --------
    >>> normalize_labels(["园中园型", "Park-in-park", "楼宇式", "unclassified", None]).tolist()
    ['park_in_park', 'park_in_park', 'building', nan, nan]
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    missing = s.isna().to_numpy()
    text = s.astype(object).where(~missing, None)
    text = text.map(lambda v: None if v is None else label_key(v)).astype(object)
    mapped = text.map(lambda k: None if k is None else LABEL_ALIASES.get(k)).astype(object)
    out = mapped.where(mapped.notna(), text)
    known = out.notna() & ~out.isin(list(_UNKNOWN))
    return out.where(known, np.nan).astype(object)


@dataclass
class Agreement:
    """Agreement between declared and derived classes.

    Attributes
    ----------
    confusion : DataFrame
        Counts, declared labels as rows × derived labels as columns, every label
        present in both axes.
    kappa : float
        Cohen's kappa, (p_o − p_e) / (1 − p_e); NaN when undefined (no rows, or
        chance agreement of 1 because a single label is used).
    accuracy : float
        Share of rows where declared equals derived (p_o).
    n : int
        Rows where both labels are known.
    n_excluded : int
        Rows left out (a label missing, ``unclassified`` or not in ``labels``).
    labels : list of str
    """

    confusion: pd.DataFrame
    kappa: float
    accuracy: float
    n: int
    n_excluded: int = 0
    labels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (NaN becomes None).

        Examples
        --------
        >>> agreement(["park", "building"], ["park", "park"]).to_dict()["confusion"]["park"]
        {'building': 0, 'park': 1}
        """

        def num(x: float) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        return {
            "n": int(self.n),
            "n_excluded": int(self.n_excluded),
            "kappa": num(self.kappa),
            "accuracy": num(self.accuracy),
            "labels": list(self.labels),
            "confusion": {
                str(r): {str(c): int(v) for c, v in row.items()}
                for r, row in self.confusion.to_dict(orient="index").items()
            },
        }

    def _repr_html_(self) -> str:
        def fmt(x: float) -> str:
            return "n/a" if math.isnan(x) else f"{x:.3f}"

        head = (
            f"<p><b>Agreement</b>: n = {self.n} (excluded {self.n_excluded}), "
            f"accuracy = {fmt(self.accuracy)}, Cohen's κ = {fmt(self.kappa)}</p>"
        )
        table = self.confusion.rename_axis(index="declared", columns="derived").to_html()
        return head + table

    def __str__(self) -> str:
        return (
            f"n={self.n} accuracy={self.accuracy:.3f} kappa={self.kappa:.3f}\n"
            f"{self.confusion.to_string()}"
        )


def _as_series(x: Any, name: str) -> pd.Series:
    if isinstance(x, pd.Series):
        return x
    if isinstance(x, pd.DataFrame):
        raise InputError(f"{name} must be one column of labels, not a table")
    return pd.Series(list(x), dtype=object)


def _order(labels: set[str]) -> list[str]:
    known = [lab for lab in _ORDER if lab in labels]
    return known + sorted(labels - set(known))


def agreement(
    declared: Sequence[Any] | pd.Series,
    derived: Sequence[Any] | pd.Series,
    *,
    labels: Sequence[str] | None = None,
) -> Agreement:
    """Compare declared with derived classes: confusion matrix, Cohen's kappa, accuracy.

    Parameters
    ----------
    declared, derived : Series or sequence
        Labels, one per incubator. Two Series are aligned on their index; otherwise
        they are compared by position and must have the same length. Declared
        spellings are normalised (:func:`normalize_labels`); rows where either label
        is missing or ``unclassified`` are excluded.
    labels : sequence of str, optional
        Labels to tabulate (rows with other labels are excluded). Default: every
        label seen, ordered park_in_park, standalone, building, park, mixed, others.

    Returns
    -------
    Agreement

    Examples
    --------
    >>> a = agreement(["园中园型", "独立型", "园中园型", "独立型"],
    ...               ["park_in_park", "standalone", "standalone", "standalone"])
    >>> a.n, a.accuracy, round(a.kappa, 3)
    (4, 0.75, 0.5)
    >>> a.confusion
                  park_in_park  standalone
    park_in_park             1           1
    standalone               0           2
    """
    dec = _as_series(declared, "declared")
    der = _as_series(derived, "derived")
    if isinstance(declared, pd.Series) and isinstance(derived, pd.Series):
        if not dec.index.equals(der.index):
            dec, der = dec.align(der, join="outer")
    elif len(dec) != len(der):
        raise InputError(
            f"declared ({len(dec)} labels) and derived ({len(der)} labels) differ in length: "
            "pass one label per incubator, or two Series with the same index"
        )
    else:
        dec, der = dec.reset_index(drop=True), der.reset_index(drop=True)
    dec, der = normalize_labels(dec), normalize_labels(der)
    both = dec.notna().to_numpy() & der.notna().to_numpy()
    if labels is None:
        labs = _order(set(dec[both]) | set(der[both]))
    else:
        labs = list(dict.fromkeys(str(x) for x in labels))
        both &= dec.isin(labs).to_numpy() & der.isin(labs).to_numpy()
    n_excluded = int(len(dec) - both.sum())
    if n_excluded:
        log.info("agreement: %d of %d rows excluded (label missing or unclassified)", n_excluded, len(dec))
    d = pd.Categorical(dec[both], categories=labs)
    g = pd.Categorical(der[both], categories=labs)
    conf = pd.crosstab(d, g, dropna=False).reindex(index=labs, columns=labs, fill_value=0)
    conf.index.name = None
    conf.columns.name = None
    conf = conf.astype(int)
    m = conf.to_numpy(dtype=float)
    n = int(m.sum())
    if n == 0:
        return Agreement(conf, math.nan, math.nan, 0, n_excluded, labs)
    p_o = float(np.trace(m)) / n
    p_e = float((m.sum(axis=1) * m.sum(axis=0)).sum()) / n**2
    kappa = (p_o - p_e) / (1.0 - p_e) if p_e < 1.0 else math.nan
    return Agreement(conf, kappa, p_o, n, n_excluded, labs)


def crosstab(
    classified: pd.DataFrame,
    row: str,
    col: str,
    *,
    normalize: str | None = None,
    margins: bool = False,
) -> pd.DataFrame:
    """Cross-tabulate two class columns, with every category present.

    Parameters
    ----------
    classified : DataFrame
        Per-incubator classes, e.g. the output of :func:`incubloc.classification.classify`.
    row, col : str
        Column names, e.g. ``"relation"`` and ``"ring"`` or ``"layout"`` and ``"city"``.
        Known columns (relation, layout, ring) list all their categories even when a
        count is zero; missing values are counted as ``unclassified`` (shown only
        when present). Categorical columns keep their categories.
    normalize : {None, "index", "columns", "all"}
        None: counts. ``"index"``: shares within each row. ``"columns"``: shares
        within each column. ``"all"``: shares of the total.
    margins : bool
        Add a ``total`` row and column.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> df = pd.DataFrame({"relation": ["park_in_park", "park_in_park", "standalone"],
    ...                    "ring": ["core", "inner_suburb", "core"]})
    >>> crosstab(df, "relation", "ring")
                  core  inner_suburb  outer_suburb
    park_in_park     1             1             0
    standalone       1             0             0
    mixed            0             0             0
    >>> float(crosstab(df, "relation", "ring", normalize="index").loc["park_in_park", "core"])
    0.5
    """
    for c in (row, col):
        if c not in classified.columns:
            raise InputError(
                f"column {c!r} is not in the table: choose from {', '.join(map(str, classified.columns))}"
            )
    if normalize not in (None, "index", "columns", "all"):
        raise InputError(f"normalize must be None, 'index', 'columns' or 'all', not {normalize!r}")
    r, rcats = _categorised(classified[row], row)
    c, ccats = _categorised(classified[col], col)
    tab = pd.crosstab(r, c, dropna=False).reindex(index=rcats, columns=ccats, fill_value=0)
    tab = tab.astype(int)
    if margins:
        tab["total"] = tab.sum(axis=1)
        tab.loc["total"] = tab.sum(axis=0)
    body = tab.drop(index="total", columns="total") if margins else tab
    if normalize == "index":
        tab = tab.div(tab.sum(axis=1).replace(0, np.nan) / (2 if margins else 1), axis=0)
    elif normalize == "columns":
        tab = tab.div(tab.sum(axis=0).replace(0, np.nan) / (2 if margins else 1), axis=1)
    elif normalize == "all":
        total = body.to_numpy().sum()
        tab = tab / total if total else tab.astype(float)
    if normalize is not None:
        tab = tab.fillna(0.0)
    tab.index.name = None
    tab.columns.name = None
    return tab


def _categorised(s: pd.Series, name: str) -> tuple[pd.Series, list[Any]]:
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = list(s.cat.categories)
        values = s.astype(object)
    else:
        values = s.astype(object)
        observed = list(pd.unique(values.dropna()))
        base = list(CATEGORIES.get(name, ()))
        extra = [v for v in observed if v not in base and v != "unclassified"]
        if name not in CATEGORIES:
            extra = sorted(extra, key=str)
        cats = base + extra
    values = values.where(values.notna(), "unclassified")
    if (values == "unclassified").any() and "unclassified" not in cats:
        cats.append("unclassified")
    return pd.Series(pd.Categorical(values, categories=cats), index=s.index), cats
