"""incubloc: multi-scale spatial analysis of incubator location patterns.

Scales (after He & Wang 2016, the Nanjing metropolitan circle study): region
(city, province, tier, zone), town (concentric ring; relation to host spaces) and
park (internal layout), with the spatial statistics behind each finding.
"""

from incubloc import errors
from incubloc._version import __version__

__all__ = ["__version__", "errors"]
