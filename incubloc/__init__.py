"""incubloc: multi-scale spatial analysis of incubator location patterns.

Scales (after He & Wang 2016, the Nanjing metropolitan circle study): region
(city, province, tier, zone), town (concentric ring; relation to host spaces) and
park (internal layout), with the spatial statistics behind each finding.

The main entry points are importable from the package (loaded on first use, so
``import incubloc`` stays light)::

    import incubloc
    ex = incubloc.load_example("nanjing")
    result = incubloc.classify(ex.incubators, ex.study_area, sites=ex.sites)

Modules: :mod:`incubloc.io`, :mod:`incubloc.geocoding`, :mod:`incubloc.coords`, :mod:`incubloc.studyarea`,
:mod:`incubloc.scales` (:mod:`~incubloc.scales.region`, :mod:`~incubloc.scales.rings`,
:mod:`~incubloc.scales.relation`, :mod:`~incubloc.scales.layout`),
:mod:`incubloc.classification` (all scales at once), :mod:`incubloc.stats` (the
statistics, the ring statistics among them), :mod:`incubloc.factors`
(location-factor models), :mod:`incubloc.workflow`, and the shells in
:mod:`incubloc.shells` (:mod:`~incubloc.shells.cli`, :mod:`~incubloc.shells.report`,
:mod:`~incubloc.shells.plot`, :mod:`~incubloc.shells.webmap`).

No exported name is also the name of a submodule: importing ``incubloc.x`` binds
the package attribute ``x`` to the module, which would shadow a function ``x``
(``tests/test_api.py`` checks this for every export).
"""

from __future__ import annotations

import importlib
from typing import Any

from incubloc import errors
from incubloc._version import __version__

_EXPORTS = {
    "incubloc.io": ("read_incubators", "read_sites"),
    "incubloc.geocoding": ("geocode",),
    "incubloc.studyarea": ("StudyArea", "load_study_area"),
    "incubloc.datasets": ("load_example",),
    "incubloc.classification": ("Classification", "classify", "write_classification"),
    "incubloc.config": ("load_config", "resolve_config"),
    "incubloc.workflow": ("Study", "run_study", "write_study"),
    "incubloc.shells.report": ("build_report",),
    "incubloc.factors": ("location_factors",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["__version__", "errors", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'incubloc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
