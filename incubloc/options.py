"""Options of the classification scales, with their defaults, defined once.

Each dataclass holds the options of one scale and checks their ranges. The
configuration (:data:`incubloc.config.DEFAULTS`, the sections ``[study_area]``,
``[region]``, ``[relation]`` and ``[layout]``) is generated from them, and the
functions of the scales take their defaults from them, so a default is changed
here and nowhere else.

Examples
--------
>>> RelationOptions().min_share, LayoutThresholds().max_site_area_m2
(0.5, 30000.0)
>>> RelationOptions(min_share=2)
Traceback (most recent call last):
...
incubloc.errors.ConfigError: min_share must be in (0, 1], got 2 (0.5 = half the site)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from incubloc.errors import ConfigError

__all__ = [
    "SECTIONS",
    "LayoutThresholds",
    "RegionOptions",
    "RelationOptions",
    "from_config",
    "section_defaults",
]


@dataclass(frozen=True)
class RelationOptions:
    """Options of the relation scale (:func:`incubloc.scales.relation.classify_relation`).

    Attributes
    ----------
    min_share : float
        0.5. Share of a site polygon's area that must lie in a host for the site to
        be inside it (a share equal to it counts).
    tolerance_m : float
        0. Hosts are grown by this many metres before testing.
    """

    min_share: float = 0.5
    tolerance_m: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.min_share <= 1:
            raise ConfigError(
                f"min_share must be in (0, 1], got {self.min_share!r} (0.5 = half the site)"
            )
        if not self.tolerance_m >= 0:
            raise ConfigError(f"tolerance_m must be ≥ 0 metres, got {self.tolerance_m!r}")


@dataclass(frozen=True)
class LayoutThresholds:
    """Thresholds deciding building (楼宇式) versus park (园区式) layout.

    A site is ``building`` when **all** of: ``n_buildings <= max_buildings``,
    ``coverage >= min_coverage``, ``mean_levels >= min_levels`` and
    ``site_area_m2 <= max_site_area_m2``; otherwise ``park`` when it has at least one
    building. An unknown ``mean_levels`` (no building has ``levels`` or ``height``)
    fails the ``min_levels`` test.

    Attributes
    ----------
    max_buildings : int
        3. The paper's building layout puts everything "in one or a few buildings"
        (一栋或几栋建筑); a campus has more.
    min_coverage : float
        0.30. Building coverage ratio (Σ footprint / site area). A building-type
        incubator's plot is mostly its building; a campus keeps roads, green and
        water between buildings (the paper's facility and ecological spaces).
    min_levels : float
        4.0. Footprint-weighted mean number of storeys. Vertical stacking needs a
        multi-storey building; four storeys is where Chinese building codes start
        counting a building as multi-storey (多层) rather than low-rise.
    max_site_area_m2 : float
        30 000 (3 ha, about one inner-city block). The paper calls building-type
        incubators small (规模比较小) and campus parks large.
    point_building_tolerance_m : float
        10. How far a point-only site may be from a footprint and still be taken to
        be in it (geocoded points often fall just outside the outline).
    storey_height_m : float
        3.0. Metres per storey when only a building's ``height`` is known
        (levels = height / storey_height_m).

    The defaults follow the paper's qualitative description; calibrate them
    against declared labels with :func:`incubloc.agreement.agreement`.

    Examples
    --------
    >>> LayoutThresholds().max_buildings
    3
    >>> LayoutThresholds(min_levels=6).min_levels
    6
    """

    max_buildings: int = 3
    min_coverage: float = 0.30
    min_levels: float = 4.0
    max_site_area_m2: float = 30_000.0
    point_building_tolerance_m: float = 10.0
    storey_height_m: float = 3.0

    def __post_init__(self) -> None:
        checks = {
            "max_buildings": self.max_buildings >= 1,
            "min_coverage": 0 <= self.min_coverage <= 1,
            "min_levels": self.min_levels >= 0,
            "max_site_area_m2": self.max_site_area_m2 > 0,
            "point_building_tolerance_m": self.point_building_tolerance_m >= 0,
            "storey_height_m": self.storey_height_m > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            vals = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ConfigError(
                f"invalid layout threshold(s) {vals}: max_buildings ≥ 1, 0 ≤ min_coverage ≤ 1, "
                "min_levels ≥ 0, max_site_area_m2 > 0, point_building_tolerance_m ≥ 0, "
                "storey_height_m > 0"
            )


@dataclass(frozen=True)
class RegionOptions:
    """Options of the region scale (:func:`incubloc.scales.region.assign_region` and summaries).

    Attributes
    ----------
    core_city : str or None
        None. The core city; None takes the city flagged ``core`` in the cities layer.
    corridor_buffer_m : float or None
        None. Belt half-width for every corridor; None takes each corridor's
        ``buffer_m`` (else 30 km).
    province_ratio : tuple of two str
        ("Jiangsu", "Anhui"). Numerator and denominator provinces of
        :func:`incubloc.scales.region.province_ratio` (the paper reports 3.6 for Jiangsu's
        four cities against Anhui's four).
    """

    core_city: str | None = None
    corridor_buffer_m: float | None = None
    province_ratio: tuple[str, str] = ("Jiangsu", "Anhui")

    def __post_init__(self) -> None:
        width = self.corridor_buffer_m
        if width is not None and not (
            isinstance(width, int | float) and math.isfinite(width) and width > 0
        ):
            raise ConfigError(
                f"corridor_buffer_m must be a positive number of metres, not {width!r}"
            )
        pair = self.province_ratio
        if len(pair) != 2 or not all(isinstance(p, str) and p for p in pair):
            raise ConfigError(
                f"province_ratio must be two province names [numerator, denominator], not {pair!r}"
            )


#: Configuration section → (options class, the fields it holds). ``study_area``
#: keeps the region options read with the study area; ``region`` the summary ones.
SECTIONS: dict[str, tuple[type, tuple[str, ...]]] = {
    "study_area": (RegionOptions, ("core_city", "corridor_buffer_m")),
    "region": (RegionOptions, ("province_ratio",)),
    "relation": (RelationOptions, tuple(f.name for f in dataclasses.fields(RelationOptions))),
    "layout": (LayoutThresholds, tuple(f.name for f in dataclasses.fields(LayoutThresholds))),
}


def section_defaults(section: str) -> dict[str, Any]:
    """Defaults of one configuration section, as TOML-able values.

    Examples
    --------
    >>> section_defaults("region")
    {'province_ratio': ['Jiangsu', 'Anhui']}
    """
    cls, names = SECTIONS[section]
    defaults = cls()
    out = {}
    for name in names:
        value = getattr(defaults, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def from_config(cls: type, config: dict[str, dict[str, Any]]) -> Any:
    """The options of ``cls`` from a resolved configuration.

    Examples
    --------
    >>> from incubloc.config import resolve_config
    >>> from_config(RelationOptions, resolve_config({"relation": {"min_share": 0.9}}))
    RelationOptions(min_share=0.9, tolerance_m=0.0)
    """
    values: dict[str, Any] = {}
    for section, (owner, names) in SECTIONS.items():
        if owner is cls:
            for name in names:
                value = config[section][name]
                values[name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)
