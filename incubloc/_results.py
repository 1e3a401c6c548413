"""The base of the small result objects returned by incubloc's scales and statistics.

A result is a dataclass; :meth:`Result.to_dict` turns it into plain JSON-able
values (floats, ints, strings, lists, dicts; NaN becomes None) and
:meth:`Result._repr_html_` shows its scalar fields as a small table in a notebook.
"""

from __future__ import annotations

import dataclasses
import html
import math
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["Result", "jsonable"]


def jsonable(value: Any) -> Any:
    """Convert ``value`` to plain Python types that :mod:`json` can write.

    Examples
    --------
    >>> jsonable({"a": np.float64(1.5), "b": np.array([1, 2]), "c": float("nan")})
    {'a': 1.5, 'b': [1, 2], 'c': None}
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, pd.DataFrame):
        return [
            {str(k): jsonable(v) for k, v in row.items()}
            for row in value.drop(columns="geometry", errors="ignore").to_dict("records")
        ]
    if isinstance(value, pd.Series):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "to_dict") and callable(value.to_dict):  # nested result objects
        return jsonable(value.to_dict())
    if hasattr(value, "wkt"):  # shapely geometry
        return value.wkt
    if hasattr(value, "to_string"):  # pyproj CRS
        return value.to_string()
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return html.escape(str(value))


@dataclasses.dataclass
class Result:
    """Base class: ``to_dict`` and ``_repr_html_`` for every result dataclass.

    Fields named in ``_private`` (large per-feature tables) are left out of
    :meth:`to_dict` and of the notebook view.
    """

    _private: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able values."""
        return {
            f.name: jsonable(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in self._private
        }

    def _scalars(self) -> list[tuple[str, Any]]:
        rows = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or isinstance(value, str | bool | int | float | np.number):
                rows.append((f.name, value))
            elif isinstance(value, np.ndarray | list | tuple):
                rows.append((f.name, f"{type(value).__name__} of {len(value)}"))
            elif isinstance(value, pd.DataFrame):
                rows.append((f.name, f"table of {len(value)} rows"))
        return rows

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{_cell(v)}</td></tr>"
            for k, v in self._scalars()
        )
        extra = ""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, pd.DataFrame) and len(value) <= 50 and f.name not in self._private:
                extra += f"<p>{html.escape(f.name)}</p>" + value.drop(
                    columns="geometry", errors="ignore"
                ).to_html(float_format=lambda v: f"{v:.4g}")
        return f"<p><b>{type(self).__name__}</b></p><table>{body}</table>{extra}"
