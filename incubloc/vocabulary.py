"""Every class label of incubloc, defined once.

The classes of each scale (accreditation level, ring, relation to host spaces,
internal layout, city tier, regional zone) with their order, the paper's Chinese
term, an English display name, a plot colour and the spellings accepted when
reading a table (English in any case and with spaces or hyphens, simplified and
traditional Chinese). The readers (:mod:`incubloc.io`), the scales
(:mod:`incubloc.scales.region`, :mod:`incubloc.scales.rings`, :mod:`incubloc.scales.relation`,
:mod:`incubloc.scales.layout`), :mod:`incubloc.agreement`, :mod:`incubloc.shells.plot` and the
QGIS plugin all read the tables below: adding a class or an alias is an edit of
this file only.

Spellings are compared through :func:`label_key` (Unicode NFKC, stripped, lower
case, runs of spaces and hyphens become ``_``), so "Park-in-park", "park in park"
and the full-width "ＰＡＲＫ" all match.

Examples
--------
>>> LEVEL.normalise("國家級"), RELATION.normalise("獨立型"), LAYOUT.normalise("Campus")
('national', 'standalone', 'park')
>>> RING.labels
('core', 'inner_suburb', 'outer_suburb')
>>> RING.zh["inner_suburb"]
'近郊区'
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import ChainMap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "COLOURS",
    "DECLARED_ALIASES",
    "DISPLAY",
    "LAYOUT",
    "LEVEL",
    "RELATION",
    "RING",
    "SCALE_COLUMNS",
    "TIER",
    "UNCLASSIFIED",
    "VOCABULARIES",
    "ZONE",
    "Term",
    "Vocabulary",
    "label_key",
]

#: The label of an incubator a scale could not decide.
UNCLASSIFIED = "unclassified"

_SEPARATORS = re.compile(r"[\s\-]+")


def label_key(value: object) -> str:
    """The form in which spellings are compared.

    Examples
    --------
    >>> label_key(" Park-in  park "), label_key("ＮＡＴＩＯＮＡＬ"), label_key("中心城（镇）区")
    ('park_in_park', 'national', '中心城(镇)区')
    """
    text = unicodedata.normalize("NFKC", str(value)).strip().lower()
    return _SEPARATORS.sub("_", text)


@dataclass(frozen=True)
class Term:
    """One class: its label, the paper's Chinese term, English name, colour, aliases."""

    label: str
    zh: str
    en: str
    colour: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """The classes of one scale, in their canonical order.

    Attributes
    ----------
    name : str
        Column the classes live in (``level``, ``ring``, …).
    terms : tuple of Term
        Classes in canonical order.
    unclassified : Term
        How an undecided row is shown (colour and display name).
    accepted : str
        The spellings named in reader error messages.
    aliases : dict
        :func:`label_key` of every accepted spelling → label. Built from ``terms``;
        every consumer reads this very dict.
    """

    name: str
    terms: tuple[Term, ...]
    unclassified: Term
    accepted: str = ""
    aliases: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for term in self.terms:
            for spelling in (term.label, term.zh, *term.aliases):
                key = label_key(spelling)
                if self.aliases.get(key, term.label) != term.label:
                    raise ValueError(f"{self.name}: {spelling!r} names two classes")
                self.aliases[key] = term.label

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels in canonical order (without ``unclassified``)."""
        return tuple(t.label for t in self.terms)

    @property
    def zh(self) -> dict[str, str]:
        """Label → the paper's Chinese term."""
        return {t.label: t.zh for t in self.terms}

    def normalise(self, value: Any) -> str | None:
        """Label of one spelling; None when it is missing or not a spelling of a class."""
        if value is None or type(value).__name__ == "NAType" or (
            isinstance(value, float) and math.isnan(value)
        ):
            return None
        return self.aliases.get(label_key(value))

    def classes(self, values: Iterable[Any]) -> pd.Series:
        """Labels of many spellings; missing and unknown ones become ``unclassified``.

        Examples
        --------
        >>> LEVEL.classes(["國家級", "省级", "x", None]).tolist()
        ['national', 'provincial', 'unclassified', 'unclassified']
        """
        import pandas as pd

        s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        return s.astype(object).map(lambda v: self.normalise(v) or UNCLASSIFIED).astype(object)


def _display(vocabulary: Vocabulary) -> dict[str, str]:
    terms = (*vocabulary.terms, vocabulary.unclassified)
    return {t.label: f"{t.en} {t.zh}" for t in terms}


def _colours(vocabulary: Vocabulary) -> dict[str, str]:
    terms = (*vocabulary.terms, vocabulary.unclassified)
    return {t.label: t.colour for t in terms if t.colour is not None}


_GREY = "#bdbdbd"
_UNCLASSIFIED = Term(UNCLASSIFIED, "未分类", "Unclassified", _GREY)

#: Accreditation level, highest first.
LEVEL = Vocabulary(
    "level",
    (
        Term("national", "国家级", "National", "#08306b", ("国家", "國家級", "國家")),
        Term("provincial", "省级", "Provincial", "#2171b5", ("省", "省級")),
        Term("municipal", "市级", "Municipal", "#9ecae1", ("市", "市級")),
    ),
    Term(UNCLASSIFIED, "未知", "Unknown", _GREY),
    "national, provincial, municipal (any case), 国家级, 省级, 市级, 国家, 省, 市",
)

#: Concentric rings (圈层), from the centre outward.
RING = Vocabulary(
    "ring",
    (
        Term("core", "中心城区", "Core", "#a50f15", (
            "central", "centre", "center", "central_urban_district", "central_district",
            "central_districts", "中心城", "中心城镇区", "中心城(镇)区", "内圈层", "内圈",
            "中心城區", "中心城鎮區", "中心城(鎮)區", "內圈層", "內圈",
        )),
        Term("inner_suburb", "近郊区", "Inner suburb", "#fb6a4a", (
            "inner_suburbs", "near_suburb", "near_suburbs", "近郊", "中圈层", "中圈",
            "近郊區", "中圈層",
        )),
        Term("outer_suburb", "远郊区", "Outer suburb", "#fcbba1", (
            "outer_suburbs", "far_suburb", "far_suburbs", "远郊", "外圈层", "外圈",
            "遠郊區", "遠郊", "外圈層",
        )),
    ),
    _UNCLASSIFIED,
    "core / inner_suburb / outer_suburb, 中心城区 / 近郊区 / 远郊区, 内圈层 / 中圈层 / 外圈层",
)

#: Relation to host functional spaces.
RELATION = Vocabulary(
    "relation",
    (
        Term("park_in_park", "园中园型", "Park-in-park", "#1b9e77",
             ("parkinpark", "园中园", "園中園型", "園中園")),
        Term("standalone", "独立型", "Standalone", "#d95f02",
             ("stand_alone", "independent", "独立", "獨立型", "獨立")),
        Term("mixed", "混合型", "Mixed", "#7570b3", ("混合",)),
    ),
    _UNCLASSIFIED,
    "standalone, park_in_park, mixed (any case), 独立型, 园中园型, 混合型",
)

#: Internal layout of the sites.
LAYOUT = Vocabulary(
    "layout",
    (
        Term("building", "楼宇式", "Building", "#e7298a", ("楼宇", "樓宇式", "樓宇")),
        Term("park", "园区式", "Park", "#66a61e", ("campus", "园区", "園區式", "園區")),
        Term("mixed", "混合式", "Mixed", "#e6ab02", ("混合",)),
    ),
    _UNCLASSIFIED,
    "building, park, mixed (any case), 楼宇式, 园区式, 混合式, campus",
)

#: City-size tiers of the State Council 2014 standard (国发〔2014〕51号), largest
#: first; the population bounds are in :data:`incubloc.scales.region.TIERS_2014`.
TIER = Vocabulary(
    "tier",
    (
        Term("super_large", "超大城市", "Super-large city"),
        Term("extra_large", "特大城市", "Extra-large city"),
        Term("large_i", "Ⅰ型大城市", "Large city I"),
        Term("large_ii", "Ⅱ型大城市", "Large city II"),
        Term("medium", "中等城市", "Medium city"),
        Term("small_i", "Ⅰ型小城市", "Small city I"),
        Term("small_ii", "Ⅱ型小城市", "Small city II"),
        Term("town", "小城镇", "Town", None, ("小城鎮",)),
    ),
    _UNCLASSIFIED,
    "super_large, extra_large, large_i, large_ii, medium, small_i, small_ii, town",
)

#: Regional zones of "one core, one belt, two zones" (一心一带两片区); named zones
#: (the two 片区) come from the study area's ``zones`` layer.
ZONE = Vocabulary(
    "zone",
    (
        Term("core", "核心", "Core", None, ("一心",)),
        Term("belt", "沿江带", "Belt", None, ("一带",)),
        Term("other", "其他", "Other", None, ("其它",)),
    ),
    _UNCLASSIFIED,
    "core, belt, a zone of the zones layer, other",
)

#: Every vocabulary by the column it labels.
VOCABULARIES: dict[str, Vocabulary] = {
    v.name: v for v in (LEVEL, RING, RELATION, LAYOUT, TIER, ZONE)
}

#: Display names "English 中文" per column, ``unclassified`` included (legends).
DISPLAY: dict[str, dict[str, str]] = {k: _display(v) for k, v in VOCABULARIES.items()}

#: Colours per column, ``unclassified`` included (plots).
COLOURS: dict[str, dict[str, str]] = {
    k: _colours(v) for k, v in VOCABULARIES.items() if _colours(v)
}

#: Per-incubator columns of the classification whose value may be ``unclassified``
#: (a row is "unclassified on some scale" when any of them is).
SCALE_COLUMNS: tuple[str, ...] = ("city", "tier", "zone", "ring", "relation", "layout")


#: Spellings of relation and layout labels together, for declared labels (a live
#: view of both tables; they share only ``mixed``).
DECLARED_ALIASES: Mapping[str, str] = ChainMap(RELATION.aliases, LAYOUT.aliases)
