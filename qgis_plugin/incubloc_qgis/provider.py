"""The incubloc Processing provider (id ``incubloc``)."""

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ALGORITHMS


class IncublocProvider(QgsProcessingProvider):
    """Multi-scale incubator location analysis (incubloc)."""

    def id(self):
        return "incubloc"

    def name(self):
        return "incubloc"

    def longName(self):
        return "incubloc: incubator location patterns"

    def icon(self):
        return QIcon(os.path.join(os.path.dirname(__file__), "icon.svg"))

    def svgIconPath(self):
        return os.path.join(os.path.dirname(__file__), "icon.svg")

    def supportedOutputRasterLayerExtensions(self):
        # incubloc writes density surfaces as GeoTIFF only.
        return ["tif"]

    def loadAlgorithms(self):
        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
