"""The plugin object: adds and removes the Processing provider."""

from qgis.core import QgsApplication


class IncublocPlugin:
    """Registers :class:`~.provider.IncublocProvider` with the Processing registry."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):
        from .provider import IncublocProvider

        if self.provider is None:
            self.provider = IncublocProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
