"""Thin shells over the Python API.

Modules
-------
cli
    The ``incubloc`` command (also ``python -m incubloc.cli``).
report
    The HTML report of a study (``incubloc report``).
plot
    Figures and maps of a study.
webmap
    The report's offline interactive map.

The QGIS Processing provider (``qgis_plugin/``) is the third shell.
"""
