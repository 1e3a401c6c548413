"""Conversion between QGIS layers and GeoDataFrames, and the feedback bridge.

Nothing here analyses anything: features become a GeoDataFrame (geometry through
WKB, the layer's own CRS), results become sink features, incubloc's log records
become Processing feedback, and incubloc's errors become QgsProcessingException.
The scientific stack is imported inside the functions so the provider loads fast.
"""

import contextlib
import datetime as _dt
import logging
import math
import re
import threading
import traceback
import warnings

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessingException,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QDate, QDateTime, QTime, QVariant

INSTALL_HINT = (
    "the incubloc Python package is not importable from QGIS's Python ({err}); install it "
    "into the Python that QGIS uses, e.g. a venv made with --system-site-packages that is "
    "first on PATH when QGIS starts (see docs/qgis.md)"
)


def in_layer(call, name):
    """Run ``call()``; word incubloc errors about "the GeoDataFrame" for layer ``name``.

    The plugin hands layers to incubloc as GeoDataFrames, so a message would otherwise
    name "the GeoDataFrame" and suggest a Python-only option.
    """
    from incubloc.errors import IncublocError

    try:
        return call()
    except IncublocError as exc:
        msg = str(exc).replace("the GeoDataFrame", f"layer {name!r}")
        msg = re.sub(r'[;,]? *or pass errors="report".*?attrs\["rejected"\]', "", msg)
        for cli, qgis in _QGIS_WORDING:
            msg = re.sub(cli, qgis, msg)
        msg = msg.replace("To fix: .", "").rstrip()
        raise QgsProcessingException(msg) from None


# Hints written for the command line / Python, and what they mean in Processing.
# (regular expression, replacement).
_QGIS_WORDING = (
    (r"check --coords \(coords=\)",
     "check the parameter 'Coordinate system of the incubator longitudes / latitudes'"),
    (r", or name them with --lon/--lat \(lon=, lat=\)", " (the X and Y fields of the layer)"),
    (r"give the CRS with crs= \(e\.g\. crs=\d+\)", "set the layer's CRS"),
    (r"say what it is with crs= \(e\.g\. [^)]*\)",
     "assign the layer its CRS (Layer Properties > Source, or 'Assign projection'; "
     "EPSG:4326 for longitude/latitude)"),
    (r"give the right one with crs=", "assign the right one to the layer ('Assign projection')"),
)


class Cancelled(Exception):
    """Raised from the log bridge when the user cancels the algorithm."""


def import_incubloc():
    """Import incubloc or raise a QgsProcessingException saying how to install it."""
    try:
        import incubloc.errors
    except ImportError as exc:
        raise QgsProcessingException(INSTALL_HINT.format(err=exc)) from None
    return incubloc.errors


# ------------------------------------------------------------------ layer -> GeoDataFrame
def _py_value(value):
    """A QGIS attribute value as a plain Python value (NULL -> None)."""
    if value is None or (isinstance(value, QVariant) and value.isNull()):
        return None
    if isinstance(value, QVariant):
        return value.value()
    if isinstance(value, QDateTime):
        return value.toPyDateTime() if value.isValid() else None
    if isinstance(value, QDate):
        return value.toPyDate() if value.isValid() else None
    if isinstance(value, QTime):
        return value.toPyTime() if value.isValid() else None
    return value


def crs_string(crs):
    """An authority id (``EPSG:4326``) or WKT for a QgsCoordinateReferenceSystem, else None."""
    if crs is None or not crs.isValid():
        return None
    return crs.authid() or crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED)


def source_to_gdf(source, *, name="layer", feedback=None):
    """Every feature of a QgsFeatureSource (or layer) as a GeoDataFrame.

    Row order is the feature order; geometry goes through WKB; the CRS is the
    source's own (``sourceCrs().authid()``), so incubloc decides about coordinates.
    Features without geometry keep a missing geometry (incubloc reports them by row).
    """
    import geopandas as gpd
    import pandas as pd
    import shapely

    names = list(source.fields().names())
    rows, wkbs = [], []
    total = max(source.featureCount(), 1)
    request = QgsFeatureRequest()
    for i, feat in enumerate(source.getFeatures(request)):
        if feedback is not None and i % 1000 == 0 and feedback.isCanceled():
            raise Cancelled()
        rows.append([_py_value(v) for v in feat.attributes()])
        geom = feat.geometry()
        wkbs.append(bytes(geom.asWkb()) if feat.hasGeometry() and not geom.isEmpty() else None)
        if feedback is not None and i % 1000 == 0:
            feedback.setProgressText(f"reading {name}: {i + 1} of {total} features")
    df = pd.DataFrame(rows, columns=names)
    for col in df.columns:
        if df[col].dtype == object:
            # A numeric field with NULLs arrives as object; let pandas pick its dtype.
            df[col] = df[col].infer_objects()
    # A field called "geometry" stays an attribute; the geometry column gets another name.
    geom_col = "geometry" if "geometry" not in names else "_geometry"
    df[geom_col] = gpd.GeoSeries(shapely.from_wkb(wkbs) if wkbs else [], index=df.index)
    return gpd.GeoDataFrame(df, geometry=geom_col, crs=crs_string(source.sourceCrs()))


# ------------------------------------------------------------------ DataFrame -> sink
def qgs_fields(df):
    """QgsFields for the non-geometry columns of a (Geo)DataFrame, typed from dtypes."""
    import pandas as pd

    geom_name = getattr(df, "_geometry_column_name", None)
    fields = QgsFields()
    for col in df.columns:
        if col == geom_name:
            continue
        dtype = df[col].dtype
        if pd.api.types.is_bool_dtype(dtype):
            qtype = QVariant.Bool
        elif pd.api.types.is_integer_dtype(dtype):
            qtype = QVariant.LongLong
        elif pd.api.types.is_float_dtype(dtype):
            qtype = QVariant.Double
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            qtype = QVariant.DateTime
        else:
            qtype = QVariant.String
        fields.append(QgsField(str(col), qtype))
    return fields


def _qgs_value(value, qtype):
    """A pandas / numpy value as something a QgsFeature attribute accepts."""
    import json

    import numpy as np
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT or (not isinstance(value, list | tuple | dict | np.ndarray)
                           and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if qtype == QVariant.String:
        if isinstance(value, list | tuple | dict | np.ndarray):
            return json.dumps(np.asarray(value).tolist() if isinstance(value, np.ndarray)
                              else value, ensure_ascii=False, default=str)
        return str(value)
    if qtype == QVariant.DateTime and isinstance(value, _dt.datetime):
        return QDateTime(value)
    return value


def wkb_type(gdf):
    """The QgsWkbTypes type for a GeoDataFrame (multi when any feature is multi)."""
    import shapely

    if getattr(gdf, "_geometry_column_name", None) is None:
        return QgsWkbTypes.NoGeometry
    geoms = gdf.geometry.values
    kinds = set(shapely.get_type_id(geoms[~shapely.is_missing(geoms)]).tolist())
    if not kinds:
        return QgsWkbTypes.Unknown
    if kinds <= {0}:
        return QgsWkbTypes.Point
    if kinds <= {0, 4}:
        return QgsWkbTypes.MultiPoint
    if kinds <= {1, 2}:
        return QgsWkbTypes.LineString
    if kinds <= {1, 2, 5}:
        return QgsWkbTypes.MultiLineString
    if kinds <= {3}:
        return QgsWkbTypes.Polygon
    if kinds <= {3, 6}:
        return QgsWkbTypes.MultiPolygon
    return QgsWkbTypes.Unknown


def qgs_crs(gdf):
    """QgsCoordinateReferenceSystem of a GeoDataFrame (invalid when it has none)."""
    crs = getattr(gdf, "crs", None)
    if crs is None:
        return QgsCoordinateReferenceSystem()
    epsg = crs.to_epsg()
    if epsg is not None:
        return QgsCoordinateReferenceSystem(f"EPSG:{epsg}")
    return QgsCoordinateReferenceSystem.fromWkt(crs.to_wkt())


def sink_spec(df):
    """(fields, wkb type, crs) for ``parameterAsSink`` from a (Geo)DataFrame."""
    if getattr(df, "_geometry_column_name", None) is None:
        return qgs_fields(df), QgsWkbTypes.NoGeometry, QgsCoordinateReferenceSystem()
    return qgs_fields(df), wkb_type(df), qgs_crs(df)


def write_sink(sink, df, fields, *, feedback=None, layer_type=None):
    """Add every row of ``df`` to ``sink`` (fields from :func:`qgs_fields`)."""
    import shapely

    geom_name = getattr(df, "_geometry_column_name", None)
    cols = [f.name() for f in fields]
    qtypes = [f.type() for f in fields]
    wkbs = None
    if geom_name is not None:
        wkbs = shapely.to_wkb(df.geometry.values)
    multi = layer_type is not None and QgsWkbTypes.isMultiType(layer_type)
    values = df[cols].to_numpy(dtype=object) if cols else [[] for _ in range(len(df))]
    for i, row in enumerate(values):
        if feedback is not None and i % 1000 == 0 and feedback.isCanceled():
            raise Cancelled()
        feat = QgsFeature(fields)
        feat.setAttributes([_qgs_value(v, t) for v, t in zip(row, qtypes, strict=True)])
        if wkbs is not None and wkbs[i] is not None:
            geom = QgsGeometry()
            geom.fromWkb(bytes(wkbs[i]))
            if multi:
                geom.convertToMultiType()
            feat.setGeometry(geom)
        if not sink.addFeature(feat, QgsFeatureSink.FastInsert):
            raise QgsProcessingException(
                f"could not write feature {i + 1} to the output: {sink.lastError()}"
            )


# ------------------------------------------------------------------ feedback bridge
class FeedbackHandler(logging.Handler):
    """Forward incubloc's log records to Processing feedback; cancel on request.

    incubloc logs each step of a long computation, so checking ``isCanceled`` here
    stops a run between steps without changing the library.
    """

    def __init__(self, feedback, marks=None):
        super().__init__(level=logging.INFO)
        self.feedback = feedback
        # Log messages that mark progress: {message: percent} (e.g. run_study's steps).
        self.marks = marks or {}
        # Only this algorithm's records: the desktop app may run several at once.
        self.thread = threading.get_ident()

    def filter(self, record):
        return record.thread == self.thread and super().filter(record)

    def emit(self, record):
        if self.feedback.isCanceled():
            raise Cancelled()
        try:
            msg = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a malformed log call must not break the run
            msg = str(record.msg)
        if msg in self.marks:
            self.feedback.setProgressText(msg)
            self.feedback.setProgress(self.marks[msg])
        if record.levelno >= logging.WARNING:
            self.feedback.pushWarning(msg)
        else:
            self.feedback.pushInfo(msg)


class Steps:
    """Progress over named steps: ``with steps("classifying"):`` ...

    Each step sets the progress text, checks for cancellation before it starts and
    advances the progress bar when it ends.
    """

    def __init__(self, feedback, n):
        self.feedback = feedback
        self.n = max(int(n), 1)
        self.done = 0

    @contextlib.contextmanager
    def __call__(self, text):
        if self.feedback.isCanceled():
            raise Cancelled()
        self.feedback.setProgressText(text)
        yield
        self.done += 1
        self.feedback.setProgress(100.0 * min(self.done, self.n) / self.n)


@contextlib.contextmanager
def incubloc_errors(feedback, algorithm, *, marks=None):
    """Run the body with incubloc's log bridged and its errors turned into Processing ones.

    - :class:`incubloc.errors.IncublocError` -> QgsProcessingException(same message);
    - cancellation -> QgsProcessingException("... cancelled");
    - anything else -> QgsProcessingException naming the error, with the traceback
      in the log (debug) rather than on screen.

    ``marks`` maps log messages to progress percentages (see :class:`FeedbackHandler`).
    """
    from incubloc.errors import IncublocError

    logger = logging.getLogger("incubloc")
    handler = FeedbackHandler(feedback, marks)
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    caught = []
    try:
        # Python warnings (e.g. GDAL's about a newer GeoPackage version) belong in the
        # Processing log, not on the terminal QGIS was started from.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            yield
    except QgsProcessingException:
        raise
    except Cancelled:
        raise QgsProcessingException(f"{algorithm}: cancelled by the user") from None
    except IncublocError as exc:
        raise QgsProcessingException(str(exc)) from None
    except MemoryError:
        raise QgsProcessingException(f"{algorithm}: out of memory") from None
    except Exception as exc:
        feedback.pushDebugInfo(traceback.format_exc())
        raise QgsProcessingException(
            f"{algorithm} failed: {type(exc).__name__}: {exc} (details in the log; "
            "please report this as an incubloc bug)"
        ) from None
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        for text in dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught):
            feedback.pushWarning(text)
