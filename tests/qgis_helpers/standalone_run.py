"""Run incubloc Processing algorithms in a standalone PyQGIS process.

``tests/test_qgis.py`` runs this with the Python of the QGIS venv::

    python tests/qgis_helpers/standalone_run.py SPEC.json

SPEC.json holds ``plugin_dir``, ``classify`` (the parameters of one run), ``osm_file``
and ``osm_output``. The script starts QGIS without a GUI, registers the provider, runs
``processing.run`` (once normally, once with a feedback that is already cancelled) and
``processing.runAndLoadResults`` (outputs added to the project), and prints one JSON
document on stdout. QGIS is imported inside :func:`main` so that collecting this
file (pytest --doctest-modules) needs no QGIS.
"""

import json
import sys


def main(argv):
    with open(argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    sys.path.insert(0, spec["plugin_dir"])

    from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    import processing
    from incubloc_qgis import algorithms
    from incubloc_qgis.provider import IncublocProvider

    provider = IncublocProvider()
    QgsApplication.processingRegistry().addProvider(provider)

    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.errors, self.progress = [], []
            self.progressChanged.connect(self.progress.append)

        def reportError(self, error, fatalError=False):
            self.errors.append(error)

    out = {"algorithms": sorted(a.id() for a in provider.algorithms())}
    from incubloc.config import _CHOICES

    out["choices"] = {
        "coords": [v for v, _ in algorithms.COORDS] == list(_CHOICES[("input", "coords")]),
        "crs_method": [v for v, _ in algorithms.CRS_METHODS]
        == list(_CHOICES[("analysis", "crs_method")]),
        "kernel": [v for v, _ in algorithms.KERNELS] == list(_CHOICES[("density", "kernel")]),
        "grid_shape": [v for v, _ in algorithms.GRID_SHAPES]
        == list(_CHOICES[("stats", "grid_shape")]),
    }

    params = dict(spec["classify"], OUTPUT="memory:", CITY_RINGS="memory:")
    feedback = Feedback()
    result = processing.run("incubloc:classify", params, feedback=feedback)
    layer = result["OUTPUT"]
    feats = list(layer.getFeatures())
    fields = layer.fields().names()
    out["classify"] = {
        "n": layer.featureCount(),
        "fields": fields,
        "crs": layer.crs().authid(),
        "labels": {col: [None if f[col] is None or str(f[col]) == "NULL" else str(f[col])
                         for f in feats]
                   for col in ("id", "city", "ring", "relation", "layout") if col in fields},
        "n_city_rings": result["CITY_RINGS"].featureCount(),
        "n_incubators_output": result["N_INCUBATORS"],
        "progress_max": max(feedback.progress) if feedback.progress else None,
    }
    del feats, layer, result

    # Outputs load into the project (as the desktop app does after a run).
    from qgis.core import QgsProject

    processing.runAndLoadResults("incubloc:kerneldensity", {
        "INCUBATORS": params["INCUBATORS"], "COORDS": params["COORDS"], "CELL_SIZE": 5000,
        "OUTPUT": "TEMPORARY_OUTPUT"})
    processing.runAndLoadResults("incubloc:studyareafromosm", {
        "OSM_FILE": spec["osm_file"], "OUTPUT": spec["osm_output"]})
    processing.runAndLoadResults("incubloc:classify", dict(params, OUTPUT="TEMPORARY_OUTPUT",
                                                           CITY_RINGS="TEMPORARY_OUTPUT"))
    out["loaded"] = sorted(
        [layer.name(), layer.type() == layer.RasterLayer,
         layer.featureCount() if layer.type() == layer.VectorLayer else None]
        for layer in QgsProject.instance().mapLayers().values())
    QgsProject.instance().removeAllMapLayers()

    cancelled = Feedback()
    cancelled.cancel()
    try:
        processing.run("incubloc:classify", params, feedback=cancelled)
        out["cancel"] = {"raised": False, "errors": cancelled.errors}
    except QgsProcessingException as exc:
        out["cancel"] = {"raised": True, "message": str(exc), "errors": cancelled.errors}

    QgsApplication.processingRegistry().removeProvider(provider)
    print(json.dumps(out))
    sys.stdout.flush()
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
