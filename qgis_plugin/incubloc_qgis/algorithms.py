"""The incubloc Processing algorithms.

Each algorithm converts its QGIS parameters into the arguments of one incubloc API
call, runs it and writes the result through Processing sinks / destinations. There is
no analysis here: every number comes from the incubloc package.
"""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterDistance,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsUnitTypes,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QIcon

from . import convert

# Choices shown in enum parameters: (value passed to incubloc, label).
COORDS = (
    ("wgs84", "WGS84 (GPS, OpenStreetMap, Tianditu)"),
    ("gcj02", "GCJ-02 (AMap/Gaode, Tencent, Google China)"),
    ("bd09", "BD-09 (Baidu)"),
)
CRS_METHODS = (
    ("utm", "local UTM zone"),
    ("cgcs2000", "CGCS2000 3-degree Gauss-Kruger"),
)
KERNELS = (("quartic", "quartic (biweight)"), ("gaussian", "Gaussian"))
BANDWIDTH_RULES = (("scott", "Scott's 2-D rule"), ("silverman1d", "Silverman's 1-D rule (former default)"))
GRID_SHAPES = (("square", "square cells"), ("hex", "hexagonal cells"))
OSM_LAYERS = (("hosts", "hosts (universities, parks, zones)"), ("buildings", "buildings"))

HELP_URL = "https://github.com/incubloc/incubloc/blob/main/docs/qgis.md"


def _defaults():
    """incubloc's configuration defaults, or None when incubloc is not importable.

    Parameter defaults come from the package so QGIS and the command line agree.
    """
    try:
        from incubloc.config import DEFAULTS
    except ImportError:
        return None
    return DEFAULTS


def _labels(column, fallback):
    """The classes of ``column`` from incubloc's vocabulary, as "a / b / c" help text."""
    try:
        from incubloc.vocabulary import VOCABULARIES
    except ImportError:
        return fallback
    return " / ".join(VOCABULARIES[column].labels)


def _default(section, key):
    """The default of ``[section] key`` (None without incubloc: nothing can run then)."""
    d = _defaults()
    return None if d is None else d[section][key]


def _advanced(param):
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return param


def _metres(name, description, default=None, *, optional=False, min_value=0.0):
    param = QgsProcessingParameterDistance(
        name, description, defaultValue=default, optional=optional, minValue=min_value
    )
    param.setDefaultUnit(QgsUnitTypes.DistanceMeters)
    return param


#: Numeric parameters that set a key of incubloc's configuration:
#: name -> (section, key, int / float / "m" for metres, description, limits).
#: They are optional: left empty, incubloc's default applies (shown as the default).
CONFIG_NUMBERS = {
    "MIN_SHARE": ("relation", "min_share", float,
                  "Relation: share of a site inside a host to count as park-in-park",
                  {"minValue": 0.0, "maxValue": 1.0}),
    "TOLERANCE": ("relation", "tolerance_m", "m", "Relation: distance tolerance to a host", {}),
    "MAX_BUILDINGS": ("layout", "max_buildings", int,
                      "Layout: at most this many buildings for building-type", {"minValue": 1}),
    "MIN_COVERAGE": ("layout", "min_coverage", float,
                     "Layout: minimum building coverage of the site for building-type",
                     {"minValue": 0.0, "maxValue": 1.0}),
    "MIN_LEVELS": ("layout", "min_levels", float,
                   "Layout: minimum mean building levels for building-type", {"minValue": 0.0}),
    "MAX_SITE_AREA": ("layout", "max_site_area_m2", float,
                      "Layout: largest site area for building-type (m²)", {"minValue": 0.0}),
    "POINT_BUILDING_TOLERANCE": ("layout", "point_building_tolerance_m", "m",
                                 "Layout: distance from a point site to its building", {}),
    "STOREY_HEIGHT": ("layout", "storey_height_m", "m",
                      "Layout: storey height to derive levels from building height", {}),
    "SEED": ("stats", "seed", int, "Random seed", {"minValue": 0}),
    "PERMUTATIONS": ("stats", "permutations", int,
                     "Permutations for the autocorrelation tests", {"minValue": 0}),
    "N_SIM": ("stats", "n_sim", int,
              "Monte-Carlo simulations for point-pattern envelopes", {"minValue": 1}),
    "ALPHA": ("stats", "alpha", float, "Significance level", {"minValue": 0.0, "maxValue": 1.0}),
    "CELL_SIZE": ("density", "cell_size_m", "m", "Cell size", {"minValue": 1.0}),
}


def _config_param(name):
    """The optional Processing parameter for ``CONFIG_NUMBERS[name]``."""
    section, key, kind, text, limits = CONFIG_NUMBERS[name]
    default = _default(section, key)
    if kind == "m":
        param = _metres(name, text, default, optional=True,
                        min_value=limits.get("minValue", 0.0))
    else:
        param = QgsProcessingParameterNumber(
            name, text,
            QgsProcessingParameterNumber.Integer if kind is int
            else QgsProcessingParameterNumber.Double,
            default, True, **limits)
    return param


class IncublocAlgorithm(QgsProcessingAlgorithm):
    """Common parameters, conversion and error handling of the incubloc algorithms."""

    NAME = ""
    DISPLAY = ""
    GROUP = ("analysis", "Analysis")
    HELP = ""

    # ------------------------------------------------------------- QGIS boilerplate
    def name(self):
        return self.NAME

    def displayName(self):
        return self.DISPLAY

    def group(self):
        return self.GROUP[1]

    def groupId(self):
        return self.GROUP[0]

    def shortHelpString(self):
        return self.HELP

    def helpUrl(self):
        return HELP_URL

    def icon(self):
        return QIcon(os.path.join(os.path.dirname(__file__), "icon.svg"))

    def createInstance(self):
        return type(self)()

    # ------------------------------------------------------------- parameter groups
    def add_incubator_params(self, *, fields=True):
        self.addParameter(QgsProcessingParameterFeatureSource(
            "INCUBATORS", "Incubators (point layer)", [QgsProcessing.TypeVectorPoint]
        ))
        self.addParameter(QgsProcessingParameterEnum(
            "COORDS", "Coordinate system of the incubator longitudes / latitudes",
            options=[label for _, label in COORDS], defaultValue=0,
        ))
        if fields:
            for key, what in (("ID", "unique id"), ("NAME", "name"),
                              ("LEVEL", f"accreditation level ({_labels('level', 'level')})"),
                              ("OPENED", "opening year")):
                self.addParameter(_advanced(QgsProcessingParameterField(
                    f"{key}_FIELD", f"Field with the {what} (default: field '{key.lower()}')",
                    parentLayerParameterName="INCUBATORS", optional=True,
                )))

    def add_sites_param(self):
        self.addParameter(QgsProcessingParameterFeatureSource(
            "SITES", "Sites of multi-site incubators (polygons or points) [optional]",
            [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint], optional=True,
        ))
        self.addParameter(_advanced(QgsProcessingParameterField(
            "SITES_ID_FIELD", "Field of the sites with the incubator id (default: 'incubator_id')",
            parentLayerParameterName="SITES", optional=True,
        )))

    def add_study_area_param(self, *, optional=False):
        self.addParameter(QgsProcessingParameterFile(
            "STUDY_AREA",
            "Study area GeoPackage (cities, settlements, rings, hosts, buildings, ...)"
            + (" [optional]" if optional else ""),
            behavior=QgsProcessingParameterFile.File, extension="gpkg", optional=optional,
        ))

    def add_crs_params(self):
        self.addParameter(_advanced(QgsProcessingParameterCrs(
            "ANALYSIS_CRS", "Metric CRS of the analysis (default: chosen automatically)",
            optional=True,
        )))
        self.addParameter(_advanced(QgsProcessingParameterEnum(
            "CRS_METHOD", "Automatic metric CRS",
            options=[label for _, label in CRS_METHODS], defaultValue=0,
        )))

    def add_classify_params(self):
        self.addParameter(_advanced(QgsProcessingParameterString(
            "CORE_CITY", "Core city of the metropolitan circle (default: from the cities layer)",
            optional=True,
        )))
        self.addParameter(_advanced(_metres(
            "CORRIDOR_BUFFER", "Half-width of corridor belts (default: the corridors' buffer_m)",
            optional=True,
        )))
        for name in ("MIN_SHARE", "TOLERANCE", "MAX_BUILDINGS", "MIN_COVERAGE", "MIN_LEVELS",
                     "MAX_SITE_AREA", "POINT_BUILDING_TOLERANCE", "STOREY_HEIGHT"):
            self.addParameter(_advanced(_config_param(name)))

    def add_stats_params(self):
        self.addParameter(_config_param("SEED"))
        for name in ("PERMUTATIONS", "N_SIM", "ALPHA"):
            self.addParameter(_advanced(_config_param(name)))
        self.addParameter(_advanced(QgsProcessingParameterBoolean(
            "FDR", "False-discovery-rate correction of local tests",
            _default("stats", "correction") in (None, "fdr"),
        )))

    # ------------------------------------------------------------- reading parameters
    def enum_value(self, parameters, name, choices, context):
        return choices[self.parameterAsEnum(parameters, name, context)][0]

    def optional_value(self, parameters, name):
        """The raw value of an optional parameter, None when not given."""
        value = parameters.get(name)
        if value is None or value == "" or (hasattr(value, "isNull") and value.isNull()):
            return None
        return value

    def read_config(self, parameters, context):
        """A resolved incubloc configuration from the algorithm's parameters."""
        from incubloc.config import resolve_config

        cfg = resolve_config()
        names = {p.name() for p in self.parameterDefinitions()}
        if "COORDS" in names:
            cfg["input"]["coords"] = self.enum_value(parameters, "COORDS", COORDS, context)
        if "ANALYSIS_CRS" in names and self.optional_value(parameters, "ANALYSIS_CRS"):
            crs = self.parameterAsCrs(parameters, "ANALYSIS_CRS", context)
            if crs.isValid():
                cfg["analysis"]["crs"] = convert.crs_string(crs)
        if "CRS_METHOD" in names:
            cfg["analysis"]["crs_method"] = self.enum_value(
                parameters, "CRS_METHOD", CRS_METHODS, context)
        if "CORE_CITY" in names:
            core = self.parameterAsString(parameters, "CORE_CITY", context).strip()
            if core:
                cfg["study_area"]["core_city"] = core
        if "CORRIDOR_BUFFER" in names and self.optional_value(parameters, "CORRIDOR_BUFFER"):
            cfg["study_area"]["corridor_buffer_m"] = self.parameterAsDouble(
                parameters, "CORRIDOR_BUFFER", context)
        for pname, (section, key, kind, _text, _limits) in CONFIG_NUMBERS.items():
            if pname in names and self.optional_value(parameters, pname) is not None:
                read = self.parameterAsInt if kind is int else self.parameterAsDouble
                cfg[section][key] = int(read(parameters, pname, context)) if kind is int \
                    else float(read(parameters, pname, context))
        if "FDR" in names:
            fdr = self.parameterAsBool(parameters, "FDR", context)
            cfg["stats"]["correction"] = "fdr" if fdr else "none"
        return resolve_config(cfg, source="Processing parameters")

    def read_incubators(self, parameters, context, feedback, cfg):
        """The incubator layer as incubloc reads it (``read_incubators`` on a GeoDataFrame)."""
        source = self.parameterAsSource(parameters, "INCUBATORS", context)
        if source is None:
            raise QgsProcessingException(
                self.invalidSourceError(parameters, "INCUBATORS"))
        name = self._layer_name(parameters, "INCUBATORS", context, source)
        self._check_geometry(source, name, ("point",))
        if source.featureCount() == 0:
            raise QgsProcessingException(
                f"incubator layer {name!r} has no features: choose a layer with incubator "
                "points (or uncheck 'selected features only')"
            )
        gdf = self._map_fields(parameters, context, convert.source_to_gdf(
            source, name=name, feedback=feedback))
        from incubloc.io import read_incubators

        return convert.in_layer(lambda: read_incubators(gdf, coords=cfg["input"]["coords"]),
                                name)

    def read_sites(self, parameters, context, feedback, incubators):
        source = self.parameterAsSource(parameters, "SITES", context)
        if source is None:
            return None
        name = self._layer_name(parameters, "SITES", context, source)
        self._check_geometry(source, name, ("point", "polygon"))
        gdf = self._map_sites_field(parameters, context, convert.source_to_gdf(
            source, name=name, feedback=feedback))
        from incubloc.io import read_sites

        return convert.in_layer(lambda: read_sites(gdf, incubator_ids=incubators["id"]), name)

    def read_study_area(self, parameters, context, *, optional=False):
        from incubloc.studyarea import load_study_area

        path = self.parameterAsFile(parameters, "STUDY_AREA", context)
        if not path:
            if optional:
                return None
            raise QgsProcessingException(
                "no study area given: choose a study-area GeoPackage (build one with "
                "'Build study area from OpenStreetMap')")
        return load_study_area(path)

    def export_inputs(self, parameters, context, feedback, folder):
        """Write the incubator (and sites) layer to GeoPackages in ``folder``.

        For the functions that read their inputs from a configuration
        (:func:`incubloc.workflow.run_study`): returns the ``[input]`` keys that name
        the copies. Selections and memory layers work like any other layer.
        """
        import pyogrio

        from incubloc.io import atomic_path

        os.makedirs(folder, exist_ok=True)
        out = {"coords": self.enum_value(parameters, "COORDS", COORDS, context),
               "lon": None, "lat": None, "layer": None, "encoding": None, "sites": None}
        names = {p.name() for p in self.parameterDefinitions()}
        for pname, key, allowed in (("INCUBATORS", "incubators", ("point",)),
                                    ("SITES", "sites", ("point", "polygon"))):
            source = self.parameterAsSource(parameters, pname, context) if pname in names else None
            if source is None:
                continue
            name = self._layer_name(parameters, pname, context, source)
            self._check_geometry(source, name, allowed)
            if source.featureCount() == 0:
                raise QgsProcessingException(
                    f"layer {name!r} has no features: choose a layer with features (or "
                    "uncheck 'selected features only')")
            gdf = convert.source_to_gdf(source, name=name, feedback=feedback)
            # QGIS shows a GeoPackage's feature id as a field; it is not data.
            gdf = gdf.drop(columns=[c for c in ("fid",) if c in gdf.columns])
            if key == "incubators":
                gdf = self._map_fields(parameters, context, gdf)
            else:
                gdf = self._map_sites_field(parameters, context, gdf)
            path = os.path.join(folder, f"{key}.gpkg")
            with atomic_path(path) as tmp:
                pyogrio.write_dataframe(gdf, tmp, layer=key, driver="GPKG")
            out[key] = path
        return out

    def _map_fields(self, parameters, context, gdf):
        """Rename the fields chosen as id / name / level / opened to incubloc's names."""
        names = {p.name() for p in self.parameterDefinitions()}
        renames = {}
        for key in ("ID", "NAME", "LEVEL", "OPENED"):
            if f"{key}_FIELD" in names:
                field = self.parameterAsString(parameters, f"{key}_FIELD", context)
                if field and field != key.lower():
                    renames[field] = key.lower()
        return _rename_columns(gdf, renames)

    def _map_sites_field(self, parameters, context, gdf):
        """Rename the field chosen as the sites' incubator id to ``incubator_id``."""
        if "SITES_ID_FIELD" not in {p.name() for p in self.parameterDefinitions()}:
            return gdf
        field = self.parameterAsString(parameters, "SITES_ID_FIELD", context)
        if field and field != "incubator_id":
            gdf = _rename_columns(gdf, {field: "incubator_id"})
        return gdf

    def _layer_name(self, parameters, pname, context, source):
        layer = self.parameterAsVectorLayer(parameters, pname, context)
        if isinstance(layer, QgsVectorLayer):
            # Name a layer of a multi-layer file by its layer name, not the file's.
            parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
            return parts.get("layerName") or layer.name()
        return source.sourceName() if hasattr(source, "sourceName") else pname.lower()

    @staticmethod
    def _check_geometry(source, name, allowed):
        kinds = {"point": QgsWkbTypes.PointGeometry, "line": QgsWkbTypes.LineGeometry,
                 "polygon": QgsWkbTypes.PolygonGeometry}
        gtype = QgsWkbTypes.geometryType(source.wkbType())
        if gtype not in {kinds[a] for a in allowed}:
            have = {QgsWkbTypes.PointGeometry: "point", QgsWkbTypes.LineGeometry: "line",
                    QgsWkbTypes.PolygonGeometry: "polygon"}.get(gtype, "no")
            want = " or ".join(allowed)
            hint = " (use 'Centroids' to turn polygons into points)" if "point" in allowed \
                and have == "polygon" and len(allowed) == 1 else ""
            raise QgsProcessingException(
                f"layer {name!r} has {have} geometry; a {want} layer is needed{hint}")

    # ------------------------------------------------------------- writing outputs
    def write_table(self, parameters, name, df, context, feedback):
        """Write a (Geo)DataFrame to the sink parameter ``name``; return its id."""
        fields, wkb, crs = convert.sink_spec(df)
        sink, dest = self.parameterAsSink(parameters, name, context, fields, wkb, crs)
        if sink is None:
            if self.parameterDefinition(name).flags() & QgsProcessingParameterDefinition.FlagOptional:
                return None  # an optional output the user did not ask for
            raise QgsProcessingException(self.invalidSinkError(parameters, name))
        convert.write_sink(sink, df, fields, feedback=feedback, layer_type=wkb)
        return dest

    # ------------------------------------------------------------- running
    #: Log messages of incubloc that mark progress, {message: percent}.
    MARKS = {}

    def processAlgorithm(self, parameters, context, feedback):
        convert.import_incubloc()
        with convert.incubloc_errors(feedback, self.displayName(), marks=self.MARKS):
            return self.compute(parameters, context, feedback)

    def compute(self, parameters, context, feedback):  # pragma: no cover - abstract
        """The algorithm itself (``run`` is taken by QgsProcessingAlgorithm)."""
        raise NotImplementedError


def _rename_columns(gdf, renames):
    """Rename chosen fields to incubloc's names, keeping a clashing field aside."""
    if not renames:
        return gdf
    missing = [old for old in renames if old not in gdf.columns]
    if missing:
        raise QgsProcessingException(f"field(s) {', '.join(missing)} not found in the layer")
    clash = {new: f"{new}_layer" for old, new in renames.items()
             if new in gdf.columns and new != old}
    return gdf.rename(columns=clash).rename(columns=renames)


# =============================================================================== algorithms
class ClassifyAlgorithm(IncublocAlgorithm):
    NAME = "classify"
    DISPLAY = "Classify incubators (all scales)"
    GROUP = ("classification", "Classification")
    HELP = (
        "Classifies every incubator on the region scale (city, province, settlement, city "
        "tier, zone), the concentric-ring scale (core / inner suburb / outer suburb and the "
        "ring pattern of each city), the relation to host spaces (standalone / park-in-park "
        "/ mixed) and the internal layout (building / park / mixed).\n\n"
        "Output: one point per input incubator (EPSG:4326) with the class columns and a "
        "'reason' where a class could not be decided ('unclassified'); a table with the "
        "ring pattern of each city.\n\n"
        "Coordinates: Chinese web maps publish GCJ-02 (AMap, Tencent) or BD-09 (Baidu) "
        "longitudes / latitudes; choose the system your points were collected in."
    )

    def initAlgorithm(self, config=None):
        self.add_incubator_params()
        self.add_sites_param()
        self.add_study_area_param()
        self.add_crs_params()
        self.add_classify_params()
        self.addParameter(QgsProcessingParameterFeatureSink(
            "OUTPUT", "Classified incubators", QgsProcessing.TypeVectorPoint))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "CITY_RINGS", "Ring pattern per city", QgsProcessing.TypeVector, optional=True))
        self.addOutput(QgsProcessingOutputNumber("N_INCUBATORS", "Number of incubators"))
        self.addOutput(QgsProcessingOutputNumber(
            "N_UNCLASSIFIED", "Incubators unclassified on at least one scale"))

    def compute(self, parameters, context, feedback):
        from incubloc.classification import n_unclassified
        from incubloc.workflow import classify_with_config

        steps = convert.Steps(feedback, 4)
        with steps("reading inputs"):
            cfg = self.read_config(parameters, context)
            inc = self.read_incubators(parameters, context, feedback, cfg)
            sites = self.read_sites(parameters, context, feedback, inc)
            sa = self.read_study_area(parameters, context)
        with steps("classifying incubators"):
            result = classify_with_config(inc, sa, sites=sites, config=cfg)
        for analysis, missing in result.disabled.items():
            feedback.pushWarning(f"{analysis} skipped: study area lacks layer {', '.join(missing)}")
        out = {}
        with steps("writing classified incubators"):
            out["OUTPUT"] = self.write_table(parameters, "OUTPUT", result.incubators, context,
                                             feedback)
        with steps("writing ring patterns"):
            dest = self.write_table(parameters, "CITY_RINGS", result.city_rings, context,
                                    feedback)
            if dest is not None:
                out["CITY_RINGS"] = dest
        out["N_INCUBATORS"] = len(result.incubators)
        out["N_UNCLASSIFIED"] = n_unclassified(result.incubators)
        return out


class RingStatisticsAlgorithm(IncublocAlgorithm):
    NAME = "ringstatistics"
    DISPLAY = "Ring statistics"
    GROUP = ("statistics", "Statistics")
    HELP = (
        "Per city (ring system) and concentric ring - core, inner suburb, outer suburb: "
        "number and share of incubators, land area (km², equal-area CRS), density per km² "
        "and per 100 km², mean / median opening year, mean site and floor area, level mix. "
        "Every ring of the study area is listed, also those without incubators.\n\n"
        "Rings: the layer's 'ring' and 'ring_city' fields when it has both (e.g. the output "
        "of 'Classify incubators'), or the fields chosen below; otherwise the incubators are "
        "classified first, with the same options as 'Classify incubators' (site areas are "
        "then measured from the sites where given).\n\n"
        "Outputs: the ring table, and optionally the ring polygons with the table joined."
    )

    def initAlgorithm(self, config=None):
        self.add_incubator_params()
        self.addParameter(_advanced(QgsProcessingParameterField(
            "RING_FIELD", f"Field with the ring ({_labels('ring', 'ring')})",
            parentLayerParameterName="INCUBATORS", optional=True,
        )))
        self.addParameter(_advanced(QgsProcessingParameterField(
            "RING_CITY_FIELD", "Field with the ring system (city) of each incubator",
            parentLayerParameterName="INCUBATORS", optional=True,
        )))
        self.add_sites_param()
        self.add_study_area_param()
        self.add_crs_params()
        self.add_classify_params()
        self.addParameter(QgsProcessingParameterFeatureSink(
            "OUTPUT", "Ring table", QgsProcessing.TypeVector))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "RING_POLYGONS", "Rings with statistics", QgsProcessing.TypeVectorPolygon,
            optional=True, createByDefault=False))

    def compute(self, parameters, context, feedback):
        import pandas as pd

        from incubloc.scales.rings import normalise_ring
        from incubloc.stats.rings import ring_table
        from incubloc.workflow import classify_with_config

        steps = convert.Steps(feedback, 4)
        with steps("reading inputs"):
            cfg = self.read_config(parameters, context)
            ring_field = self.parameterAsString(parameters, "RING_FIELD", context)
            city_field = self.parameterAsString(parameters, "RING_CITY_FIELD", context)
            if bool(ring_field) != bool(city_field):
                raise QgsProcessingException(
                    "choose both the ring field and the ring-system (city) field, or neither "
                    "to place incubators in the study area's rings")
            inc = self.read_incubators(parameters, context, feedback, cfg)
            if ring_field:
                inc = _rename_columns(inc, {ring_field: "ring", city_field: "ring_city"})
            sa = self.read_study_area(parameters, context)
            rings = sa.require("rings", "ring statistics")
            classified = {"ring", "ring_city"} <= set(inc.columns)
            sites = None if classified else self.read_sites(parameters, context, feedback, inc)
        with steps("classifying incubators"):
            if classified:
                feedback.pushInfo("using the layer's ring and ring_city fields")
            else:
                inc = classify_with_config(inc, sa, sites=sites, config=cfg).incubators
        with steps("computing the ring table"):
            table = ring_table(inc, rings=rings)
        out = {}
        with steps("writing the ring table"):
            out["OUTPUT"] = self.write_table(parameters, "OUTPUT", table, context, feedback)
            if self.optional_value(parameters, "RING_POLYGONS") is not None:
                # The ring polygons as they are, with the table's row of their ring.
                polys = rings[["city", "ring", rings.geometry.name]].copy()
                polys["city"] = polys["city"].astype(str)
                polys["ring"] = polys["ring"].map(normalise_ring)
                joined = polys.merge(pd.DataFrame(table), on=["city", "ring"], how="left")
                dest = self.write_table(parameters, "RING_POLYGONS", joined, context, feedback)
                if dest is not None:
                    out["RING_POLYGONS"] = dest
        return out


#: run_study's steps as logged by incubloc.workflow, with the progress they mark.
STUDY_MARKS = {
    "classify": 2, "region": 12, "rings": 16, "relation and layout": 30,
    "point pattern": 34, "autocorrelation": 50, "location preference": 70, "density": 80,
}


class SpatialStatisticsAlgorithm(IncublocAlgorithm):
    NAME = "spatialstatistics"
    DISPLAY = "Spatial statistics (point pattern, autocorrelation)"
    GROUP = ("statistics", "Statistics")
    HELP = (
        "The statistics of 'incubloc stats' for an incubator layer: point pattern per city "
        "and overall (Clark-Evans nearest-neighbour index, quadrat test, centrography, "
        "Ripley's L) and spatial autocorrelation of incubator counts on a grid over the "
        "study area's cities (global Moran's I, local Moran / LISA clusters HH, LH, LL, HL "
        "and Getis-Ord Gi* hot and cold spots).\n\n"
        "Grid cell size: give one, or leave it empty to compute Moran's I at incubloc's "
        "default scales ([stats] cell_sizes_m) and map the grid of the strongest "
        "clustering.\n\n"
        "Outputs: the grid as a polygon layer (count, density, lisa_*, gi_*, gi_bin, hotspot), the "
        "point-pattern table, the Moran's I profile over cell sizes, and optionally a folder "
        "with every statistics table (CSV), stats.json, config.toml and the input layers "
        "(inputs/), as 'incubloc stats' writes them."
    )
    MARKS = STUDY_MARKS

    def initAlgorithm(self, config=None):
        self.add_incubator_params()
        self.add_sites_param()
        self.add_study_area_param()
        self.addParameter(_metres(
            "GRID_CELL_SIZE", "Grid cell size (empty: the strongest of several scales)",
            optional=True, min_value=1.0,
        ))
        self.addParameter(QgsProcessingParameterEnum(
            "GRID_SHAPE", "Grid shape", options=[label for _, label in GRID_SHAPES],
            defaultValue=0,
        ))
        self.add_stats_params()
        self.add_crs_params()
        self.add_classify_params()
        self.addParameter(QgsProcessingParameterFeatureSink(
            "GRID", "Autocorrelation grid (LISA, Gi*)", QgsProcessing.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "POINT_PATTERN", "Point-pattern statistics per city", QgsProcessing.TypeVector))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "MULTISCALE", "Moran's I by grid cell size", QgsProcessing.TypeVector,
            optional=True))
        self.addParameter(QgsProcessingParameterFolderDestination(
            "OUTPUT_FOLDER", "Folder for every statistics table (CSV) and stats.json",
            optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("MORAN_I", "Global Moran's I of the grid"))
        self.addOutput(QgsProcessingOutputNumber("MORAN_P", "Permutation p-value of Moran's I"))
        self.addOutput(QgsProcessingOutputNumber("CELL_SIZE_M", "Grid cell size used (m)"))

    def compute(self, parameters, context, feedback):
        import tempfile

        import pandas as pd

        from incubloc.workflow import run_study, write_study

        cfg = self.read_config(parameters, context)
        if self.optional_value(parameters, "GRID_CELL_SIZE") is not None:
            cfg["stats"]["cell_sizes_m"] = [
                self.parameterAsDouble(parameters, "GRID_CELL_SIZE", context)]
        cfg["stats"]["grid_shape"] = self.enum_value(parameters, "GRID_SHAPE", GRID_SHAPES,
                                                     context)
        cfg["density"]["by_year"] = False  # no density output here: spare the time
        cfg["study_area"]["path"] = self.parameterAsFile(parameters, "STUDY_AREA", context)
        folder = self.optional_value(parameters, "OUTPUT_FOLDER") and \
            self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        with tempfile.TemporaryDirectory(dir=QgsProcessingUtils.tempFolder()) as tmp:
            feedback.setProgressText("reading inputs")
            # With an output folder the inputs are kept there: its config.toml reruns.
            inputs = os.path.join(folder, "inputs") if folder else tmp
            cfg["input"].update(self.export_inputs(parameters, context, feedback, inputs))
            study = run_study(cfg)
        feedback.setProgressText("writing outputs")
        grid = study.grids.get("grid")
        if grid is None:
            raise QgsProcessingException(
                "autocorrelation needs the study-area layer 'cities' (the land the grid "
                "covers), which is missing or empty")
        moran = study.tests.get("global_moran", {})
        out = {
            "GRID": self.write_table(parameters, "GRID", grid.to_crs(4326), context, feedback),
            "POINT_PATTERN": self.write_table(
                parameters, "POINT_PATTERN", pd.DataFrame(study.tables["point_pattern"]),
                context, feedback),
            "MORAN_I": moran.get("I"),
            "MORAN_P": moran.get("p_sim"),
            "CELL_SIZE_M": moran.get("cell_size_m"),
        }
        ms = self.write_table(parameters, "MULTISCALE",
                              pd.DataFrame(study.tables["multiscale_moran"]), context, feedback)
        if ms is not None:
            out["MULTISCALE"] = ms
        if folder:
            write_study(study, folder, tables_dir="", layers=False, density=False)
            out["OUTPUT_FOLDER"] = folder
        feedback.setProgress(100)
        return out


class KernelDensityAlgorithm(IncublocAlgorithm):
    NAME = "kerneldensity"
    DISPLAY = "Kernel density of incubators"
    GROUP = ("statistics", "Statistics")
    HELP = (
        "Kernel density surface of incubators (incubators per km²) computed in a metric "
        "CRS and written as a GeoTIFF. The bandwidth is a distance, or - when left empty - "
        "a rule of thumb (Silverman or Scott). With a study area the surface covers its "
        "cities."
    )

    def initAlgorithm(self, config=None):
        self.add_incubator_params(fields=False)
        self.add_study_area_param(optional=True)
        self.addParameter(QgsProcessingParameterEnum(
            "KERNEL", "Kernel", options=[label for _, label in KERNELS], defaultValue=0))
        self.addParameter(_metres(
            "BANDWIDTH", "Bandwidth (empty: rule of thumb)", optional=True, min_value=1.0))
        self.addParameter(QgsProcessingParameterEnum(
            "BANDWIDTH_RULE", "Bandwidth rule when no bandwidth is given",
            options=[label for _, label in BANDWIDTH_RULES], defaultValue=0))
        self.addParameter(_config_param("CELL_SIZE"))
        self.add_crs_params()
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT", "Kernel density"))
        self.addOutput(QgsProcessingOutputNumber("BANDWIDTH_M", "Bandwidth used (m)"))

    def compute(self, parameters, context, feedback):
        from incubloc.workflow import run_density

        steps = convert.Steps(feedback, 2)
        with steps("reading inputs"):
            cfg = self.read_config(parameters, context)
            cfg["density"]["kernel"] = self.enum_value(parameters, "KERNEL", KERNELS, context)
            if self.optional_value(parameters, "BANDWIDTH") is not None:
                cfg["density"]["bandwidth"] = self.parameterAsDouble(
                    parameters, "BANDWIDTH", context)
            else:
                cfg["density"]["bandwidth"] = self.enum_value(
                    parameters, "BANDWIDTH_RULE", BANDWIDTH_RULES, context)
            cfg["output"]["overwrite"] = True  # Processing replaces its destinations
            inc = self.read_incubators(parameters, context, feedback, cfg)
            sa = self.read_study_area(parameters, context, optional=True)
            output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
            if os.path.splitext(output)[1].lower() not in (".tif", ".tiff"):
                raise QgsProcessingException(
                    f"kernel density is written as GeoTIFF: give an output ending in .tif, "
                    f"not {output!r}")
        with steps("computing the density surface"):
            surface = run_density(inc, sa, config=cfg, output=output,
                                  inputs={"incubators": self._source_uri(parameters, context)})
        return {"OUTPUT": output, "BANDWIDTH_M": float(surface.bandwidth_m)}

    def _source_uri(self, parameters, context):
        layer = self.parameterAsVectorLayer(parameters, "INCUBATORS", context)
        return layer.source() if layer is not None else None


class StudyAreaFromOsmAlgorithm(IncublocAlgorithm):
    NAME = "studyareafromosm"
    DISPLAY = "Build study area from OpenStreetMap"
    GROUP = ("studyarea", "Study area")
    HELP = (
        "Writes a study-area GeoPackage with host spaces (universities, research "
        "institutes, development / high-tech zones, industrial and science parks) and "
        "buildings taken from an OpenStreetMap extract (.osm or .osm.pbf, e.g. from "
        "Geofabrik). Start from an existing study area to keep its boundaries, rings and "
        "other layers; otherwise the new GeoPackage holds only the OSM layers."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(
            "OSM_FILE", "OpenStreetMap extract (.osm, .osm.pbf)",
            behavior=QgsProcessingParameterFile.File,
            fileFilter="OpenStreetMap (*.osm *.pbf *.osm.pbf);;All files (*.*)",
        ))
        self.addParameter(QgsProcessingParameterFile(
            "BASE", "Start from this study area [optional]",
            behavior=QgsProcessingParameterFile.File, extension="gpkg", optional=True,
        ))
        self.addParameter(QgsProcessingParameterEnum(
            "LAYERS", "Layers to add from OpenStreetMap",
            options=[label for _, label in OSM_LAYERS], allowMultiple=True,
            defaultValue=list(range(len(OSM_LAYERS))),
        ))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT", "Study area", fileFilter="GeoPackage (*.gpkg)"))
        self.addOutput(QgsProcessingOutputString("LAYERS_WRITTEN", "Layers in the study area"))

    def compute(self, parameters, context, feedback):
        from incubloc.io import atomic_path
        from incubloc.osm import add_osm_to_study_area
        from incubloc.studyarea import load_study_area

        steps = convert.Steps(feedback, 3)
        with steps("reading inputs"):
            osm_file = self.parameterAsFile(parameters, "OSM_FILE", context)
            base = self.parameterAsFile(parameters, "BASE", context)
            layers = tuple(OSM_LAYERS[i][0]
                           for i in self.parameterAsEnums(parameters, "LAYERS", context))
            if not layers:
                raise QgsProcessingException("choose at least one layer to add from OSM")
            output = self.parameterAsFileOutput(parameters, "OUTPUT", context)
            if not output.lower().endswith(".gpkg"):
                raise QgsProcessingException(
                    f"the study area is a GeoPackage: give an output ending in .gpkg, "
                    f"not {output!r}")
            if os.path.exists(output):
                os.remove(output)  # Processing asked for this file: replace it
            if base:
                with atomic_path(output) as tmp:
                    _copy_layers(base, tmp, skip=layers)
        with steps("adding OpenStreetMap layers"):
            add_osm_to_study_area(output, osm_file=osm_file, layers=layers)
        with steps("loading the study area"):
            sa = load_study_area(output)
            names = [n for n in sa.layers if sa.has(n)]
            _load_on_completion(context, output, names)
        return {"OUTPUT": output, "LAYERS_WRITTEN": ",".join(names)}


def _load_on_completion(context, path, names):
    """Add layers ``names`` of GeoPackage ``path`` to the project when the algorithm ends."""
    if context.project() is None:
        return
    for name in names:
        layer = QgsVectorLayer(f"{path}|layername={name}", name, "ogr")
        if not layer.isValid():
            continue
        context.temporaryLayerStore().addMapLayer(layer)
        context.addLayerToLoadOnCompletion(layer.id(), QgsProcessingContext.LayerDetails(
            name, context.project(), name, QgsProcessingUtils.LayerHint.Vector))


def _copy_layers(src, dst, *, skip=()):
    """Copy every layer of GeoPackage ``src`` except ``skip`` into a new GeoPackage ``dst``.

    Layer by layer rather than a byte copy: a GeoPackage written by a newer GDAL (its
    R-tree triggers) cannot have layers replaced by the older GDAL inside QGIS 3.22.
    """
    import pyogrio

    from incubloc.errors import StudyAreaError

    try:
        listing = pyogrio.list_layers(src)
    except Exception as exc:
        raise StudyAreaError(f"cannot open study area {src}: {exc}; is it a GeoPackage?") from None
    for name, geom_type in listing.tolist():
        if name in skip:
            continue
        has_geom = geom_type is not None
        df = pyogrio.read_dataframe(src, layer=name, read_geometry=has_geom)
        pyogrio.write_dataframe(df, dst, layer=name, driver="GPKG",
                                promote_to_multi=False if has_geom else None)


class ReportAlgorithm(IncublocAlgorithm):
    MARKS = {k: 0.7 * v for k, v in STUDY_MARKS.items()}
    NAME = "report"
    DISPLAY = "Full report"
    GROUP = ("report", "Report")
    HELP = (
        "Runs the whole multi-scale study - every classification and statistic - and writes "
        "report.html with tables and maps, tables/ (CSV), layers.gpkg, density/ (GeoTIFF), "
        "stats.json, config.toml and provenance.json to a folder.\n\n"
        "Inputs: a configuration file (TOML, as written by a previous report), and/or an "
        "incubator layer and a study area; or the bundled Nanjing example."
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(
            "CONFIG", "Configuration file (TOML) [optional]",
            behavior=QgsProcessingParameterFile.File, extension="toml", optional=True,
        ))
        self.addParameter(QgsProcessingParameterBoolean(
            "EXAMPLE", "Use the bundled Nanjing metropolitan circle example", False))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "INCUBATORS", "Incubators (point layer) [optional]",
            [QgsProcessing.TypeVectorPoint], optional=True,
        ))
        self.addParameter(QgsProcessingParameterEnum(
            "COORDS", "Coordinate system of the incubator longitudes / latitudes",
            options=[label for _, label in COORDS], defaultValue=0,
        ))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "SITES", "Sites of multi-site incubators (polygons or points) [optional]",
            [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint], optional=True,
        ))
        self.addParameter(QgsProcessingParameterFile(
            "STUDY_AREA", "Study area GeoPackage [optional]",
            behavior=QgsProcessingParameterFile.File, extension="gpkg", optional=True,
        ))
        self.addParameter(QgsProcessingParameterNumber(
            "SEED", "Random seed (empty: from the configuration)",
            QgsProcessingParameterNumber.Integer, optional=True, minValue=0,
        ))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Report folder"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "report.html"))
        self.addOutput(QgsProcessingOutputFolder("FOLDER", "Report folder"))

    def compute(self, parameters, context, feedback):
        from incubloc.config import load_config, resolve_config
        from incubloc.shells.report import build_report

        feedback.setProgressText("reading inputs")
        config = self.parameterAsFile(parameters, "CONFIG", context)
        cfg = load_config(config) if config else resolve_config()
        outdir = self.parameterAsString(parameters, "OUTPUT", context)
        if not outdir:
            raise QgsProcessingException("choose a folder for the report")
        # A Processing destination is replaced, as every Processing output is.
        cfg["output"]["overwrite"] = True
        cfg["output"]["dir"] = outdir
        if self.parameterAsBool(parameters, "EXAMPLE", context):
            cfg["input"].update(example="nanjing", incubators=None, sites=None)
        if self.optional_value(parameters, "INCUBATORS") is not None:
            cfg["input"]["example"] = None
            # Copies inside the report folder: its config.toml reruns from the folder.
            cfg["input"].update(self.export_inputs(parameters, context, feedback,
                                                   os.path.join(outdir, "inputs")))
        area = self.parameterAsFile(parameters, "STUDY_AREA", context)
        if area:
            cfg["study_area"]["path"] = area
        if self.optional_value(parameters, "SEED") is not None:
            cfg["stats"]["seed"] = self.parameterAsInt(parameters, "SEED", context)
        if not (cfg["input"]["example"] or cfg["input"]["incubators"]):
            raise QgsProcessingException(
                "no incubators: choose an incubator layer, a configuration file with "
                "[input] incubators, or tick 'Use the bundled Nanjing example'")
        cfg = resolve_config(cfg, source="Processing parameters")
        path = build_report(cfg, outdir)  # logs its steps: progress via MARKS
        feedback.setProgressText("loading the layers")
        layers = os.path.join(outdir, "layers.gpkg")
        if os.path.exists(layers):
            import pyogrio

            _load_on_completion(context, layers, pyogrio.list_layers(layers)[:, 0].tolist())
        feedback.setProgress(100)
        return {"OUTPUT": outdir, "FOLDER": outdir, "REPORT": str(path)}


ALGORITHMS = (
    ClassifyAlgorithm,
    RingStatisticsAlgorithm,
    SpatialStatisticsAlgorithm,
    KernelDensityAlgorithm,
    StudyAreaFromOsmAlgorithm,
    ReportAlgorithm,
)
