"""QGIS plugin entry point: registers the incubloc Processing provider.

QGIS (desktop and ``qgis_process``) calls :func:`classFactory` and then
``initProcessing()``. Nothing heavy is imported here: the incubloc package and its
scientific stack are imported only when an algorithm runs, so the provider loads
even when incubloc is missing and the algorithm then says how to install it.
"""


def classFactory(iface):
    """Return the plugin object (``iface`` is None under qgis_process)."""
    from .plugin import IncublocPlugin

    return IncublocPlugin(iface)
