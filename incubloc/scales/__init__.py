"""The scales of the study, each classifying every incubator (He & Wang 2016).

Modules
-------
region
    Region scale (区域): city, province, settlement and its tier, zone.
rings
    Town scale (城镇): concentric rings (圈层) and each city's ring pattern.
relation
    Town scale: relation to host spaces (园中园型 / 独立型 / 混合型).
layout
    Park scale (园区): internal layout (楼宇式 / 园区式 / 混合式).

:func:`incubloc.classification.classify` runs them all; the statistics over their
classes are in :mod:`incubloc.stats`.
"""
