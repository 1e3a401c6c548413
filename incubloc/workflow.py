"""Run the whole study: classify every scale, compute every statistic, write files.

:func:`run_study` is the one function the CLI (``stats``, ``report``), the QGIS
provider and notebooks share. It returns a :class:`Study` holding every table and
test; :func:`write_study` writes them (CSV tables, ``stats.json``, ``layers.gpkg``,
density GeoTIFFs, ``config.toml``, ``provenance.json``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import importlib
import json
import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from incubloc._results import jsonable
from incubloc._version import __version__
from incubloc.classification import Classification
from incubloc.errors import InputError
from incubloc.studyarea import StudyArea

__all__ = [
    "STEPS", "Extra", "Step", "Study", "classify_with_config", "load_inputs",
    "ripley_distances", "run_density", "run_stats", "run_study", "write_study",
]

log = logging.getLogger(__name__)


@dataclass
class Study:
    """Every result of one run.

    Attributes
    ----------
    config : dict
        The fully resolved configuration.
    classification : Classification
        Per-incubator classes and per-city ring patterns.
    study_area : StudyArea
    sites : GeoDataFrame or None
    tables : dict of str to DataFrame
        Named tables, written as ``tables/<name>.csv``.
    tests : dict
        Test statistics (JSON-serialisable), written as ``stats.json``.
    grids : dict of str to GeoDataFrame
        Aggregation grids with counts and LISA / Gi* columns (layer per cell size).
    results : dict
        Result objects for plotting (``ripley``, ``centrography``, ``ring_edge`` ...).
    surfaces : dict
        Density surfaces (``all`` and one per opening year).
    crs : pyproj.CRS
        The metric CRS of the analysis.
    inputs : dict
        Input file paths.
    steps : list of str
        The steps of :func:`run_study` that ran (:data:`STEPS`).
    extras : dict
        Values of the :class:`Extra` work asked of :func:`run_study` (e.g. the
        report's drawn figures); not written by :func:`write_study`.

    Read tests and results with :meth:`test` and :meth:`result`: they raise
    :class:`~incubloc.study_fields.StudyFieldError` naming the field when the step
    that writes it ran but left it out.
    """

    config: dict[str, Any]
    classification: Classification
    study_area: StudyArea
    sites: gpd.GeoDataFrame | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    tests: dict[str, Any] = field(default_factory=dict)
    grids: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    surfaces: dict[str, Any] = field(default_factory=dict)
    crs: Any = None
    inputs: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def _lookup(self, kind: str, store: dict[str, Any], name: str) -> Any:
        from incubloc.study_fields import StudyFieldError, step_of

        step = step_of(kind, name)
        if name in store:
            return store[name]
        if step in self.steps:
            raise StudyFieldError(
                f"step {step!r} ran but study.{kind}s has no {name!r} "
                f"(it has: {', '.join(store) or 'nothing'})")
        return None

    def test(self, name: str) -> Any:
        """Test record ``name`` (a ``stats.json`` key); None when its step did not run.

        Raises
        ------
        StudyFieldError
            When its step ran but the record is absent, or no step writes ``name``.
        """
        return self._lookup("test", self.tests, name)

    def result(self, name: str) -> Any:
        """Result object ``name``; None when its step did not run, or when it is one of
        :data:`~incubloc.study_fields.OPTIONAL_RESULTS` and its layer is missing (the
        test record of the same name then says why).

        Raises
        ------
        StudyFieldError
            When its step ran but a result it always writes is absent, or no step
            writes ``name``.
        """
        from incubloc.study_fields import OPTIONAL_RESULTS, step_of

        step = step_of("result", name)
        if name in self.results or name in OPTIONAL_RESULTS:
            return self.results.get(name)
        return self._lookup("result", self.results, name) if step in self.steps else None

    @property
    def incubators(self) -> gpd.GeoDataFrame:
        """The classified incubators (EPSG:4326)."""
        return self.classification.incubators

    def _repr_html_(self) -> str:
        return (
            f"<p><b>incubloc study</b>: {len(self.incubators)} incubators, "
            f"{len(self.tables)} tables, {len(self.tests)} tests</p>"
            + self.classification._repr_html_()
        )


def load_inputs(
    config: dict[str, Any], *, need_study_area: bool = True
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, StudyArea | None, dict[str, Any]]:
    """Read the incubators, sites and study area named in a resolved config.

    ``[input] example = "nanjing"`` fills in the bundled files. With ``[input]
    skip_bad_rows = true`` bad rows are left out and listed in
    ``incubators.attrs["rejected"]`` (row, id, problem) instead of stopping the run.

    Returns
    -------
    (incubators, sites, study_area, inputs)
        ``inputs`` maps input names to file paths (for provenance).
    """
    from incubloc import datasets
    from incubloc.errors import ConfigError
    from incubloc.io import read_incubators, read_sites
    from incubloc.studyarea import load_study_area

    inp = config["input"]
    if inp["example"]:
        if inp["incubators"] and inp["incubators"] != str(datasets.nanjing_incubators_path()):
            raise ConfigError("give either INCUBATORS ([input] incubators) or --example, not both")
        inp["incubators"] = str(datasets.nanjing_incubators_path())
        inp["sites"] = inp["sites"] or str(datasets.nanjing_sites_path())
        inp["coords"] = "gcj02"
        config["study_area"]["path"] = config["study_area"]["path"] or str(
            datasets.nanjing_study_area_path()
        )
    if not inp["incubators"]:
        raise ConfigError(
            "no incubators given: pass INCUBATORS (a file), --example nanjing, "
            "or set [input] incubators in the config"
        )
    if need_study_area and not config["study_area"]["path"]:
        raise ConfigError("no study area given: pass --study-area AREA.gpkg or --example nanjing")
    skip = bool(inp["skip_bad_rows"])
    inc = read_incubators(
        inp["incubators"], coords=inp["coords"], lon=inp["lon"], lat=inp["lat"],
        encoding=inp["encoding"], layer=inp["layer"], errors="report" if skip else "raise",
        sheet=inp["sheet"],
    )
    if skip and len(inc) == 0:
        raise InputError(f"{inp['incubators']}: every row was rejected, nothing is left to "
                         "analyse; fix the rows listed above")
    # Sites of rejected rows are orphans, which classification ignores.
    ids = None if skip else inc["id"]
    sites = read_sites(inp["sites"], incubator_ids=ids) if inp["sites"] else None
    path = config["study_area"]["path"]
    sa = load_study_area(path) if path else None
    inputs = {"incubators": inp["incubators"], "sites": inp["sites"], "study_area": path}
    return inc, sites, sa, inputs


def incubator_table(classified: gpd.GeoDataFrame, incubators: gpd.GeoDataFrame) -> pd.DataFrame:
    """One row per classified incubator: its input row number, the classes, WGS84 lon/lat
    and, for a list written by ``incubloc geocode``, the geocoding verdict columns.

    With the ``rejected`` table (rows left out by ``skip_bad_rows``) it accounts for
    every input row exactly once.
    """
    carried = [c for c in incubators.columns
               if c in ("row", "source_row") or str(c).startswith("geocode_")]
    table = pd.DataFrame(classified.drop(columns=classified.geometry.name))
    pts = classified.geometry.to_crs(4326)
    table["lon"], table["lat"] = pts.x.round(7).to_numpy(), pts.y.round(7).to_numpy()
    extra = pd.DataFrame(incubators[["id", *carried]]).drop_duplicates("id")
    table = table.merge(extra, on="id", how="left", validate="one_to_one")
    return table[["row", *[c for c in table.columns if c != "row"]]]


def classify_with_config(inc, sa, *, sites, config) -> Classification:
    """:func:`incubloc.classification.classify` with the parameters of a resolved config."""
    from incubloc.classification import classify
    from incubloc.options import LayoutThresholds, RegionOptions, RelationOptions, from_config

    region = from_config(RegionOptions, config)
    relation = from_config(RelationOptions, config)
    return classify(
        inc, sa, sites=sites,
        core_city=region.core_city,
        corridor_buffer_m=region.corridor_buffer_m,
        min_share=relation.min_share,
        tolerance_m=relation.tolerance_m,
        layout_thresholds=from_config(LayoutThresholds, config),
        crs=config["analysis"]["crs"],
    )


def run_aside(task: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``task()`` in a forked process; the returned function waits for its value.

    With one core, without ``fork`` (Windows, macOS) or inside QGIS (no forking a
    Qt application) the task runs in this process when its value is asked for.
    Either way the value is the same; an error raised by the task is raised by the
    returned function.

    Examples
    --------
    >>> wait = run_aside(lambda: sum(range(10)))
    >>> wait()
    45
    """
    import multiprocessing

    from incubloc.processes import available_cores, can_fork

    if available_cores() < 2 or not can_fork():
        return task
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    global _ASIDE
    _ASIDE = task  # inherited by the forked process, not pickled
    try:
        pool = ProcessPoolExecutor(max_workers=1,
                                   mp_context=multiprocessing.get_context("fork"))
        future = pool.submit(_run_aside_task)
    except (OSError, RuntimeError, ValueError) as exc:  # no processes (sandbox): later, here
        log.info("running in this process (%s: %s)", type(exc).__name__, exc)
        _ASIDE = None
        return task
    finally:
        _ASIDE = None

    def wait() -> Any:
        try:
            return future.result()
        except (BrokenProcessPool, pickle.PicklingError) as exc:  # the process, not the task
            log.info("running in this process (%s: %s)", type(exc).__name__, exc)
            return task()
        finally:
            pool.shutdown(cancel_futures=True)

    wait.future = future  # type: ignore[attr-defined]  # for waiting on the first done
    return wait


def _completed(waits: list[tuple[Step, Callable[[], Any]]],
               ) -> Iterator[list[tuple[Step, Any]]]:
    """The steps' values from :func:`run_aside`, in batches as they end: each batch
    the steps done by then (in step order), so that their extras can run while the
    others go on. A step to be run here (no second core) is a batch of its own."""
    from concurrent.futures import FIRST_COMPLETED
    from concurrent.futures import wait as first_done

    left = list(waits)
    while left:
        running = [getattr(w, "future", None) for _, w in left]
        done = [(s, w) for (s, w), f in zip(left, running, strict=True)
                if f is not None and f.done()]
        here = [(s, w) for (s, w), f in zip(left, running, strict=True) if f is None]
        batch = done or here[:1]
        if not batch:
            first_done([f for f in running if f is not None], return_when=FIRST_COMPLETED)
            continue
        for item in batch:
            left.remove(item)
        yield [(s, w()) for s, w in batch]


_ASIDE: Callable[[], Any] | None = None


def _run_aside_task() -> Any:
    assert _ASIDE is not None
    return _ASIDE()


def _stats_units(sa: StudyArea) -> gpd.GeoDataFrame | None:
    cities = sa.get("cities")
    return None if cities is None else cities[["city", "geometry"]]


def _skip_reason(values: pd.Series | np.ndarray, what: str) -> str | None:
    """Why a statistic on ``values`` cannot be computed (None when it can)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 3:
        return f"{what}: {len(v)} unit(s), at least 3 are needed"
    if np.nanmax(v) == np.nanmin(v):
        return f"{what}: every unit has the same value ({v[0]:g}), nothing to test"
    return None


def _local_summary(units: gpd.GeoDataFrame, unit: str) -> dict[str, Any]:
    counts = units["lisa_cluster"].value_counts()
    return {"unit": unit,
            "clusters": {c: int(counts.get(c, 0)) for c in ("HH", "LH", "LL", "HL", "ns")},
            **units.attrs.get("lisa_inference", {})}


def _autocorrelation_step(study: Study, located: gpd.GeoDataFrame, land: Any, sa: StudyArea,
                          *, crs: Any, seed: int) -> None:
    """Global, local and join-count statistics on districts and on a land grid.

    Any statistic whose units are missing, too few or constant is recorded in
    ``study.tests`` as ``{"skipped": reason}`` instead of stopping the run.
    """
    import warnings

    from incubloc.stats import autocorrelation as _ac

    st = study.config["stats"]
    tests = study.tests
    corr = _ac.resolve_correction(st.get("correction"), st.get("fdr"))
    local_kw = {"permutations": st["permutations"], "seed": seed, "alpha": st["alpha"],
                "correction": corr, "max_permutations": st["max_permutations"]}
    lisa_null = _ac.resolve_null(st.get("lisa_null", "permutation"))
    gi_null = _ac.resolve_null(st.get("gi_null", "constant_risk"))
    lisa: dict[str, Any] = {}
    gi: dict[str, Any] = {}

    def local(units: gpd.GeoDataFrame, unit: str, key: str) -> gpd.GeoDataFrame:
        # EB-standardised rates: comparable across units of different land area
        # (districts, clipped coastal cells); a unit whose whole neighbourhood holds
        # no incubator is never significant (judged on the counts). Gi* asks whether a
        # window holds more incubators than complete spatial randomness on land gives
        # (constant-risk null, by default); LISA whether a unit's rate is like its
        # neighbours' given its own (conditional permutation, by default).
        column, gi_column = "rate_z", "rate_score"
        reason = _skip_reason(units[column], f"local statistics on {unit}")
        if reason:
            lisa[key] = gi[key] = {"unit": unit, "skipped": reason}
            return units
        with warnings.catch_warnings(record=True) as caught:  # recorded, not lost
            warnings.simplefilter("always")
            units = _ac.local_moran(units, column, window_column="count", null=lisa_null,
                                    **local_kw)
            units = _ac.getis_ord(units, gi_column, window_column="count", null=gi_null,
                                  **local_kw)
        lisa[key] = _local_summary(units, unit)
        gi[key] = _ac.getis_ord_summary(units, unit=unit)
        notes = [str(c.message) for c in caught if issubclass(c.category, UserWarning)]
        if notes:
            lisa[key]["warnings"] = gi[key]["warnings"] = notes
        return units

    # Districts first: administrative units suit sparse points. Rates per km² are
    # empirical-Bayes standardised (Assunção–Reis) so that small units' noisy rates
    # do not dominate and the values are exchangeable under equal risk; Getis–Ord
    # takes the same values shifted to be non-negative.
    districts = sa.get("districts") if sa is not None else None
    if districts is not None and len(districts) >= 3:
        d = _ac.unit_rates(located, districts.to_crs(crs))
        study.grids["district_stats"] = local(
            d, "districts (EB-standardised incubators per km²)", "districts")

    if land is not None:
        # projected and dissolved once for every grid below (the same cells)
        area, grid_crs = _ac.grid_area(gpd.GeoSeries([land], crs=4326), crs=crs)
        ms = _ac.multiscale_moran(located, area, cell_sizes=tuple(st["cell_sizes_m"]),
                                  shape=st["grid_shape"], permutations=st["permutations"],
                                  seed=seed, alpha=st["alpha"], crs=grid_crs)
        study.tables["multiscale_moran"] = ms
        peak = ms.attrs.get("peak_cell_size") or float(st["cell_sizes_m"][0])
        # Cells on land only: make_grid keeps cells intersecting the study area.
        grid = _ac.make_grid(area, cell_size=float(peak), shape=st["grid_shape"], crs=grid_crs)
        grid = _ac.aggregate(located, grid, value="count")
        unit = f"{float(peak) / 1000:g} km grid"
        reason = _skip_reason(grid["count"], f"Moran's I on the {unit}")
        if reason:
            tests["global_moran"] = {"cell_size_m": float(peak), "skipped": reason}
        else:
            # the multi-scale profile already tested this grid (same cells, counts, seed)
            gm = (ms.attrs.get("moran") or {}).get(float(peak))
            if gm is not None:
                gm = dataclasses.replace(gm, column="count")
            else:
                gm = _ac.global_moran(grid, "count", permutations=st["permutations"],
                                      seed=seed)
            tests["global_moran"] = {"cell_size_m": float(peak),
                                     "peak_criterion": ms.attrs.get("peak_criterion"),
                                     **gm.to_dict()}
        grid = _ac.unit_rates(located, grid)
        study.grids["grid"] = local(grid, f"{unit} (EB-standardised incubators per km²)", "grid")
    else:
        tests["global_moran"] = {"skipped": "the study area has no cities layer (no land grid)"}
    tests["local_moran"] = lisa
    tests["getis_ord"] = gi

    jc = {}
    pts = located.to_crs(crs)
    for col, value in (t.split("=", 1) for t in st["join_counts"]):
        key = f"{col}={value}"
        if col not in pts.columns:
            jc[key] = {"skipped": f"the incubators have no {col!r} column"}
            continue
        res = _ac.join_counts(pts, col, value=value, permutations=st["permutations"],
                              seed=seed, alpha=st["alpha"])
        jc[key] = res.to_dict() if res.skipped is None else {"skipped": res.skipped}
    tests["join_counts"] = jc


def ripley_distances(stats: dict[str, Any]) -> np.ndarray | None:
    """The 50 Ripley distances up to ``[stats] ripley_max_distance_m`` (None: the
    default range of :func:`incubloc.stats.pointpattern.ripley`, up to a quarter of
    the window's shorter side, which at national extent means ~900 km and ~10⁸
    pairs per simulation).

    Examples
    --------
    >>> ripley_distances({"ripley_max_distance_m": 5000.0})[[0, -1]].tolist()
    [100.0, 5000.0]
    >>> ripley_distances({}) is None
    True
    """
    rmax = stats.get("ripley_max_distance_m")
    if rmax is None:
        return None
    if not float(rmax) > 0:
        raise InputError(f"[stats] ripley_max_distance_m must be positive metres, got {rmax!r}")
    return np.linspace(float(rmax) / 50, float(rmax), 50)


@dataclass
class _Run:
    """What the steps of one :func:`run_study` share: the config, the inputs and the
    study being filled, and values several steps derive once."""

    config: dict[str, Any]
    data: tuple[Any, Any, Any, dict[str, Any]] | None
    study: Study | None = None
    crs: Any = None
    located: gpd.GeoDataFrame | None = None
    windows: gpd.GeoDataFrame | None = None
    land: Any = None

    @property
    def seed(self) -> int:
        return self.config["stats"]["seed"]

    @property
    def st(self) -> dict[str, Any]:
        return self.config["stats"]


def _classify_step(run: _Run) -> None:
    """Read the inputs, classify every incubator, fix the metric CRS."""
    from incubloc.coords import metric_crs

    config = run.config
    inc, sites, sa, inputs = run.data if run.data is not None else load_inputs(config)
    classification = classify_with_config(inc, sa, sites=sites, config=config)
    cls = classification.incubators
    run.crs = config["analysis"]["crs"] or metric_crs(cls, method=config["analysis"]["crs_method"])
    study = run.study = Study(config, classification, sa, sites, crs=run.crs, inputs=inputs)
    study.tables["incubators"] = incubator_table(cls, inc)
    rejected = inc.attrs.get("rejected")
    if rejected is not None and len(rejected):
        study.tables["rejected"] = rejected
    run.windows = _stats_units(sa)
    run.located = cls[cls["city"] != "unclassified"]
    run.land = run.windows.union_all() if run.windows is not None else None


def _region_step(run: _Run) -> None:
    """Region tables, the class counts, the tier relation and the province ratio."""
    from incubloc.scales import region as _region

    study, cls, sa = run.study, run.study.incubators, run.study.study_area
    for name, table in _region.region_tables(cls, study_area=sa).items():
        study.tables[f"region_{name}"] = table
    study.tests["counts"] = study.classification.to_dict()
    study.tests["tier_relation"] = (
        _region.tier_relation(cls, study_area=sa).to_dict() if sa.has("settlements")
        else {"skipped": "the study area has no settlements layer"})
    num, den = run.config["region"]["province_ratio"]
    study.tests["province_ratio"] = {
        "numerator": num, "denominator": den,
        "ratio": _region.province_ratio(cls, numerator=num, denominator=den)}


def _rings_step(run: _Run) -> None:
    """Ring patterns, the ring table, density gradient, opening sequence, edge test."""
    from incubloc.stats import rings as _rings

    study, cls, T, tests = run.study, run.study.incubators, run.study.tables, run.study.tests
    rings = study.study_area.get("rings")
    T["ring_patterns"] = study.classification.city_rings
    if rings is None:
        for key in ("density_gradient", "opening_sequence"):
            tests[key] = {"skipped": "the study area has no rings layer"}
        return
    rt = _rings.ring_table(cls, rings=rings)
    T["ring_table"] = rt
    T["density_gradient"] = _rings.density_gradient(rt)
    T["opening_sequence"] = _rings.opening_sequence(cls, rings=rings)
    tests["density_gradient"] = T["density_gradient"]
    tests["opening_sequence"] = T["opening_sequence"]


def _ring_edge_step(run: _Run) -> None:
    """Are incubators closer to the edges of their rings than random locations?"""
    from incubloc.stats import rings as _rings

    study = run.study
    rings = study.study_area.get("rings")
    if rings is None:
        study.tests["ring_edge"] = {"skipped": "the study area has no rings layer"}
        return
    edge = _rings.ring_edge_test(study.incubators, rings, n_sim=run.st["ring_edge_sim"],
                                 seed=run.seed)
    study.results["ring_edge"] = edge
    study.tests["ring_edge"] = edge.to_dict()


def _relation_layout_step(run: _Run) -> None:
    """Cross-tables of relation and layout, and agreement with declared labels."""
    from incubloc import agreement as _agr

    study, cls = run.study, run.study.incubators
    for a in ("relation", "layout"):
        for b in ("city", "ring"):
            study.tables[f"{a}_by_{b}"] = _agr.crosstab(cls, a, b)
        declared = cls[f"declared_{a}"]
        if not declared.notna().any():
            study.tests[f"{a}_agreement"] = {"skipped": f"no declared {a} labels"}
            continue
        agr = _agr.agreement(declared, cls[a])
        study.results[f"{a}_agreement"] = agr
        study.tests[f"{a}_agreement"] = agr.to_dict()
        study.tables[f"{a}_confusion"] = agr.confusion


def _point_pattern_step(run: _Run) -> None:
    """Per-city point-pattern table, Ripley's L and Clark–Evans under two nulls,
    and the standard deviational ellipse."""
    from incubloc.stats import pointpattern as _pp

    study, st, seed, located = run.study, run.st, run.seed, run.located
    T, tests, results = study.tables, study.tests, study.results
    distances = ripley_distances(st)
    pp_window = run.land if run.land is not None else located.union_all().convex_hull
    # A large pattern (a national study) spreads this step over processes: the
    # inhomogeneous null's tests, which need nothing from the rest of the step, run
    # in their own, and the cities' rows over the cores (same seeds, same numbers).
    # A small one stays here: forking a process costs more than its share of work.
    large = len(located) >= _SPREAD_MIN_POINTS
    inhomogeneous = (run_aside if large else _later)(functools.partial(
        _inhomogeneous_tests, located, pp_window, st, seed, distances))
    T["point_pattern"] = _pp.point_pattern_summary(
        located, by="city", windows=run.windows, n_sim=st["n_sim"], seed=seed,
        distances=distances, workers=0 if large else 1,
    )
    # One claim ("clustered"), two nulls: homogeneous CSR, and an inhomogeneous Poisson
    # with the kernel intensity, which a trend alone does not reject.
    rip = _pp.ripley(located, window=pp_window, n_sim=st["n_sim"], seed=seed,
                     test=st["envelope_test"], alternative="clustered", distances=distances)
    results["ripley"] = rip
    tests["ripley"] = _ripley_record(rip)
    cen = _pp.centrography(located.to_crs(run.crs))
    results["centrography"] = cen
    tests["ellipse"] = {k: getattr(cen, k) for k in (
        "mean_lon", "mean_lat", "mean_x", "mean_y", "standard_distance", "major", "minor",
        "sd_major", "sd_minor", "rotation_deg", "n", "crs")}
    tests["clark_evans"] = _clark_evans_record(T["point_pattern"].iloc[-1])
    tests["clark_evans"].update(null="csr", n_sim=st["n_sim"])
    rip_inh, ce_inh, skipped = inhomogeneous()
    if rip_inh is not None:
        results["ripley_inhom"] = rip_inh
        tests["ripley_inhom"] = _ripley_record(rip_inh)
    if ce_inh is not None:
        tests["clark_evans"]["inhomogeneous"] = {
            "R_null": ce_inh.R_null, "p_sim": ce_inh.p, "p_sim_clustered": ce_inh.p_clustered,
            "bandwidth_m": ce_inh.bandwidth_m}
    if skipped is not None:
        log.warning("inhomogeneous point-pattern tests skipped: %s", skipped)
        tests["ripley_inhom"] = {"skipped": skipped}


#: From this many located incubators on, the point-pattern step runs its parts in
#: several processes (the Nanjing sample has 200, the national one 20,000).
_SPREAD_MIN_POINTS = 2000


def _later(task: Callable[[], Any]) -> Callable[[], Any]:
    """``task``, to be run in this process when its value is asked for."""
    return task


def _inhomogeneous_tests(located: gpd.GeoDataFrame, window: Any, st: dict[str, Any],
                         seed: int, distances: np.ndarray | None) -> tuple[Any, Any, str | None]:
    """Ripley's L and Clark–Evans against the inhomogeneous Poisson null: the results
    computed, and why the rest was skipped (the null needs a pattern that spreads:
    a kernel bandwidth)."""
    from incubloc.errors import InputError
    from incubloc.stats import pointpattern as _pp

    rip_inh = ce_inh = None
    try:
        rip_inh = _pp.ripley(located, window=window, n_sim=st["n_sim"], seed=seed,
                             test=st["envelope_test"], alternative="clustered",
                             null="inhomogeneous", bandwidth=st["intensity_bandwidth"],
                             distances=distances)
        ce_inh = _pp.clark_evans(located, window=window, n_sim=st["n_sim"], seed=seed,
                                 null="inhomogeneous", bandwidth=st["intensity_bandwidth"])
    except InputError as exc:
        return rip_inh, ce_inh, str(exc)
    return rip_inh, ce_inh, None


def _ripley_record(rip: Any) -> dict[str, Any]:
    """A Ripley result for ``stats.json``: its global envelope-test p named ``p_sim``."""
    return {("p_sim" if k == "p" else k): v for k, v in rip.to_dict().items()}


def _clark_evans_record(row: pd.Series) -> dict[str, Any]:
    """The whole-area Clark–Evans row of the point-pattern table for ``stats.json``:
    ``R``, ``z_norm`` and the p-values named after the method that gave them
    (``p_sim`` / ``p_sim_clustered`` for Monte-Carlo, ``p_norm`` / ``p_norm_clustered``
    for the normal approximation), with ``p_method``."""
    kind = "sim" if row.get("R_p_method") == "monte_carlo" else "norm"
    names = {"n": "n", "R": "R", "R_z": "z_norm", "R_p": f"p_{kind}",
             "R_p_clustered": f"p_{kind}_clustered", "R_p_method": "p_method"}
    return {new: row[old] for old, new in names.items() if old in row}


def _autocorrelation_run_step(run: _Run) -> None:
    _autocorrelation_step(run.study, run.located, run.land, run.study.study_area,
                          crs=run.crs, seed=run.seed)


def _preference_step(run: _Run) -> None:
    """Distance to centres and hosts against random locations in the settlements."""
    from incubloc.stats import preference as _pref

    study, st, sa = run.study, run.st, run.study.study_area
    within = sa.get("settlements")
    if within is None:
        study.tests["preference"] = {"skipped": "the study area has no settlements layer"}
        return
    prefs = {}
    for name, targets in (("centres", sa.get("centres")), ("hosts", sa.get("hosts"))):
        if targets is None:
            continue
        res = _pref.location_preference(run.located, targets, within=within,
                                        n_sim=st["permutations"], seed=run.seed, crs=run.crs,
                                        placebo="seats", alpha=st["alpha"])
        prefs[name] = res
        study.tables[f"preference_{name}"] = res.table
    study.tests["preference"] = {k: v.table for k, v in prefs.items()}
    study.results["preference"] = prefs


def _density_step(run: _Run) -> None:
    """Kernel density of all incubators and, when asked, one surface per opening year."""
    from incubloc.stats import density as _dens

    study, dn, located = run.study, run.config["density"], run.located
    study.surfaces["all"] = _dens.kde(located, area=run.land, kernel=dn["kernel"],
                                      bandwidth=dn["bandwidth"], cell_size=dn["cell_size_m"],
                                      crs=run.crs)
    if dn["by_year"] and located["opened"].notna().any():
        years = _dens.kde_by_year(located, area=run.land, kernel=dn["kernel"],
                                  bandwidth=study.surfaces["all"].bandwidth_m,
                                  cell_size=dn["cell_size_m"], crs=run.crs)
        for year, surf in years.items():
            study.surfaces[f"year_{year}"] = surf


def _factors_step(run: _Run) -> None:
    """Location factors (:mod:`incubloc.factors`), when ``[factors] in_report``."""
    from incubloc.factors import factors_from_config

    study = run.study
    fx = factors_from_config(study.incubators, study.study_area, config=run.config,
                             sites=study.sites)
    study.results["factors"] = fx
    study.tests["factors"] = fx.to_dict()
    for name in ("coefficients", "fit", "decomposition", "covariates"):
        study.tables[f"factor_{name}"] = getattr(fx, name)


_STORES = ("tables", "tests", "results", "grids", "surfaces")


def _run_step(step: Step, run: _Run) -> dict[str, list[tuple[str, Any]]]:
    """Run ``step`` on ``run``; the entries it wrote into each store of the study, in
    the order written (what a forked process hands back)."""
    before = {} if run.study is None else {
        name: dict(getattr(run.study, name)) for name in _STORES}
    step.run(run)
    out = {}
    for name in _STORES:
        old, new = before.get(name, {}), getattr(run.study, name)
        out[name] = [(k, v) for k, v in new.items() if k not in old or old[k] is not v]
    return out


def _merge_step(study: Study, written: dict[str, list[tuple[str, Any]]]) -> dict[str, list[str]]:
    for name, items in written.items():
        getattr(study, name).update(items)
    return {name: [k for k, _ in items] for name, items in written.items()}


def _order_as_run(study: Study, added: list[dict[str, list[str]]]) -> None:
    """Put every store's entries in step order, as if no step had run aside (the
    order of ``stats.json`` and of the report does not depend on the cores)."""
    for name in _STORES:
        store = getattr(study, name)
        keys = [k for step in added for k in step.get(name, ())]
        keys += [k for k in store if k not in keys]
        ordered = {k: store[k] for k in dict.fromkeys(keys)}
        store.clear()
        store.update(ordered)


@dataclass(frozen=True)
class Step:
    """One named step of :func:`run_study`.

    Attributes
    ----------
    name : str
        Shown in the progress bar and the log, and recorded in ``Study.steps`` and
        ``provenance.json``; the fields each step writes are listed in
        :mod:`incubloc.study_fields`.
    run : callable
        Fills the study in place.
    wanted : callable
        Whether the step runs under a config (default: always).
    aside : bool
        The step depends only on the classification and writes fields no other
        step reads: with a second core it runs in a forked process
        (:func:`run_aside`), started as soon as the classification is done, while
        the other steps go on; same seeds, same numbers. Only for steps whose
        fields are small beside their work: the fields come back pickled.
    imports : tuple of str
        Modules the step shares with other aside steps: imported once before the
        first one forks, so that no forked process imports them again. The ring
        statistics bring ``scipy.spatial``, which every statistics module imports:
        four processes importing it would each pay for it. A module only one
        process uses is better imported there, in parallel with the others.
    own_imports : tuple of str
        Modules the step shares only with this process (which needs them later):
        imported just before the step forks, which is after the aside steps
        without own imports, so that the imports are made while those run.
    """

    name: str
    run: Callable[[_Run], None]
    wanted: Callable[[dict[str, Any]], bool] = lambda config: True
    aside: bool = False
    imports: tuple[str, ...] = ()
    own_imports: tuple[str, ...] = ()


#: The steps of :func:`run_study`, in order.
STEPS: tuple[Step, ...] = (
    Step("classify", _classify_step),
    Step("region", _region_step),
    Step("rings", _rings_step),
    Step("ring edge", _ring_edge_step, aside=True, imports=("incubloc.stats.rings",)),
    Step("relation and layout", _relation_layout_step),
    # rasterio and scipy.fft: the inhomogeneous null's intensity here, the density later
    Step("point pattern", _point_pattern_step, aside=True,
         own_imports=("rasterio.features", "scipy.fft")),
    Step("autocorrelation", _autocorrelation_run_step, aside=True),
    Step("location preference", _preference_step, aside=True),
    # Not aside: its surfaces (17 grids of 6.6 MB on the bundled data) would cost more
    # to hand back from a forked process (pickle, pipe, unpickle) than to compute here.
    Step("density", _density_step),
    Step("factors", _factors_step,
         wanted=lambda config: bool((config.get("factors") or {}).get("in_report"))),
)


@dataclass(frozen=True)
class Extra:
    """Work on part of a study, run by :func:`run_study` as soon as the steps it
    needs are done (e.g. drawing a figure).

    Attributes
    ----------
    name : str
        Key of its value in ``Study.extras``.
    needs : tuple of str
        Names of the steps (:data:`STEPS`) whose fields ``run`` reads; ``run`` may
        see a study in which only these steps are done.
    run : callable
        ``run(study)`` returns the value; it must not change the study. It may run
        in a forked process, so its value must pickle.
    """

    name: str
    needs: tuple[str, ...]
    run: Callable[[Study], Any]


def run_study(
    config: dict[str, Any],
    *,
    data: tuple[Any, Any, Any, dict[str, Any]] | None = None,
    progress: bool = False,
    extras: Sequence[Extra] = (),
) -> Study:
    """Classify, then compute every table and test of the study, step by step.

    The steps (:data:`STEPS`): classify, region, rings, ring edge, relation and
    layout, point pattern, autocorrelation, location preference, density, and factors
    when ``[factors] in_report``. Their names are recorded in ``Study.steps``. With a
    second core the Monte-Carlo steps marked ``aside`` run in forked processes while
    this one goes on; every store is then put back in step order, so the study is
    the same as one computed step after step.

    Parameters
    ----------
    config : dict
        A resolved configuration (:func:`incubloc.config.resolve_config`).
    data : tuple, optional
        ``(incubators, sites, study_area, inputs)`` already read, as returned by
        :func:`load_inputs` (default: read them from ``config``).
    progress : bool
        Show a progress bar on stderr.
    extras : sequence of Extra
        Further work on the study (the report's figures): each runs as soon as the
        steps it needs are done, while the steps still running go on. Values in
        ``Study.extras``; an extra whose steps do not all run is left out.

    Returns
    -------
    Study

    Examples
    --------
    >>> from incubloc.config import resolve_config
    >>> cfg = resolve_config({"input": {"example": "nanjing"},
    ...                       "stats": {"permutations": 99, "n_sim": 19, "ring_edge_sim": 99,
    ...                                 "cell_sizes_m": [10000.0]},
    ...                       "density": {"by_year": False, "cell_size_m": 2000.0}})
    >>> n = Extra("n", ("classify",), lambda study: len(study.incubators))
    >>> study = run_study(cfg, extras=[n])
    >>> study.tables["ring_patterns"].set_index("city").loc["Nanjing", "ring_pattern"]
    'core+inner_suburb+outer_suburb'
    >>> study.steps[:3], study.extras["n"]
    (['classify', 'region', 'rings'], 200)
    """
    steps = [s for s in STEPS if s.wanted(config)]
    wanted = {s.name for s in steps}
    left = [e for e in extras if set(e.needs) <= wanted]
    # The classify step creates run.study; the aside steps need nothing else, so
    # they all start right after it and the cores share the rest of the work. Those
    # with imports of their own start last: the imports are then made while the
    # others already run, not before any of them has started.
    first, rest = steps[:1], steps[1:]
    order = (first + [s for s in rest if s.aside and not s.own_imports]
             + [s for s in rest if s.aside and s.own_imports]
             + [s for s in rest if not s.aside])
    run = _Run(config, data)
    added: dict[str, dict[str, list[str]]] = {}
    values: dict[str, Any] = {}
    waiting: list[tuple[Step, Callable[[], dict[str, list[tuple[str, Any]]]]]] = []
    frozen = False
    with _progress_bar(progress, total=len(steps), desc="incubloc", unit="step") as bar:
        try:
            for step in order:
                bar.set_postfix_str(step.name)
                log.info("%s", step.name)
                task = functools.partial(_run_step, step, run)
                if step.aside:
                    _before_forking(steps if not frozen else [], step)
                    frozen = True
                    waiting.append((step, run_aside(task)))
                else:
                    written = task()  # the classify step creates run.study
                    added[step.name] = _merge_step(run.study, written)
                bar.update()
            # Extras run here as soon as their steps are done: first those of the steps
            # run here, while the aside steps go on; then those of each aside step as it
            # ends; the last ones, with nothing else left to do, over the cores.
            def ended() -> bool:  # an aside step is done and not yet taken in
                return any(s.name not in added and getattr(w, "future", None) is not None
                           and w.future.done() for s, w in waiting)

            left = _run_ready(run.study, left, added, steps, values, spread=not waiting,
                              stop=ended)
            for batch in _completed(waiting):
                for step, written in batch:
                    added[step.name] = _merge_step(run.study, written)
                # after the last batch, whatever is left (stopped early too) is spread
                left = _run_ready(run.study, left, added, steps, values,
                                  spread=len(added) == len(steps), stop=ended)
        finally:
            if frozen:
                gc.unfreeze()
    _order_as_run(run.study, [added[s.name] for s in steps])
    run.study.steps.extend(s.name for s in steps)
    run.study.extras.update((e.name, values[e.name]) for e in extras if e.name in values)
    return run.study


def _progress_bar(show: bool, **kwargs: Any) -> Any:
    """A tqdm progress bar, or one that shows nothing without importing tqdm (and
    asyncio and the package metadata it brings) when none is wanted."""
    if not show:
        return _NoBar()
    from tqdm.autonotebook import tqdm  # tqdm.auto, without its asyncio mix-in

    return tqdm(**kwargs)


class _NoBar(contextlib.nullcontext):
    """The part of a tqdm bar :func:`run_study` uses, doing nothing."""

    def __enter__(self) -> _NoBar:
        return self

    def set_postfix_str(self, text: str) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass


def _before_forking(steps: list[Step], step: Step) -> None:
    """Import what the aside ``steps`` share and what ``step`` imports for itself
    (the processes forked later, and this one, then share the modules), and keep
    the objects made so far (they live through the run) out of the collector's
    scans, here and in the forked processes, whose pages then stay shared;
    :func:`gc.unfreeze` undoes the latter."""
    shared = sorted({m for s in steps if s.aside for m in s.imports})
    for name in [*shared, *step.own_imports]:
        importlib.import_module(name)
    gc.freeze()


def _run_ready(study: Study, extras: list[Extra], added: dict[str, dict[str, list[str]]],
               steps: list[Step], values: dict[str, Any], *, spread: bool,
               stop: Callable[[], bool] | None = None) -> list[Extra]:
    """Run the extras whose steps are all done (over forked processes when
    ``spread``); their values go to ``values``; returns the others.

    Run here one after the other (not ``spread``), they stop early, before the next
    one, when ``stop()`` says so (an aside step has ended): the caller then takes
    that step's fields, and once every step is done spreads what is left over the
    cores instead of leaving a core idle while this process draws on alone.
    """
    from incubloc.processes import fork_map

    ready = [e for e in extras if set(e.needs) <= set(added)]
    if not ready:
        return extras
    # The extras see the study as it will be: entries in step order, and the steps
    # done so far listed (a field of one of them that is absent fails loudly).
    _order_as_run(study, [added[s.name] for s in steps if s.name in added])
    before = list(study.steps)
    study.steps[:] = [s.name for s in steps if s.name in added]
    done: list[Extra] = []
    try:
        if spread:
            # What exists now lives until the extras are done: kept out of the
            # collector's scans, here and in the forked worker (whose first scan would
            # otherwise write to, and so copy, the pages of every young object).
            gc.freeze()
            try:
                got = fork_map(_run_extra, [(e, study) for e in ready], workers=0)
            finally:
                gc.unfreeze()
            values.update((e.name, v) for e, v in zip(ready, got, strict=True))
            done = ready
        else:
            for e in ready:
                if done and stop is not None and stop():
                    break
                values[e.name] = _run_extra((e, study))
                done.append(e)
    finally:
        study.steps[:] = before
    return [e for e in extras if e not in done]


def _run_extra(item: tuple[Extra, Study]) -> Any:
    extra, study = item
    return extra.run(study)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    from incubloc.io import atomic_path

    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=not isinstance(df.index, pd.RangeIndex), lineterminator="\n")


def write_study(
    study: Study,
    outdir: str | os.PathLike,
    *,
    tables_dir: str = "tables",
    layers: bool = True,
    density: bool = True,
) -> list[Path]:
    """Write a study's tables, tests, layers, density surfaces, config and provenance.

    Files: ``<tables_dir>/<name>.csv``, ``stats.json``, ``layers.gpkg`` (incubators,
    city_rings, rings, hosts, grid), ``density/kde.tif`` and ``density/kde_by_year.tif``,
    ``config.toml`` (fully resolved) and ``provenance.json``. Every file is written
    atomically; tables and ``stats.json`` are byte-identical for the same inputs and
    seed.

    Returns
    -------
    list of Path
    """
    import pyogrio

    from incubloc.config import dump_config
    from incubloc.io import atomic_path
    from incubloc.provenance import provenance
    from incubloc.stats import density as _dens

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tdir = outdir / tables_dir if tables_dir else outdir
    tdir.mkdir(parents=True, exist_ok=True)
    for name, table in sorted(study.tables.items()):
        if table is None:
            continue
        p = tdir / f"{name}.csv"
        _write_csv(pd.DataFrame(table), p)
        written.append(p)

    stats = {
        "incubloc_version": __version__,
        "seed": study.config["stats"]["seed"],
        "crs": str(study.crs),
        **study.tests,
    }
    p = outdir / "stats.json"
    with atomic_path(p) as tmp:
        tmp.write_text(json.dumps(jsonable(stats), indent=2, ensure_ascii=False, sort_keys=False)
                       + "\n", encoding="utf-8")
    written.append(p)

    if layers:
        p = outdir / "layers.gpkg"
        with atomic_path(p) as tmp:
            study.incubators.to_file(tmp, layer="incubators", driver="GPKG")
            pyogrio.write_dataframe(pd.DataFrame(study.classification.city_rings), tmp,
                                    layer="city_rings", driver="GPKG")
            for name in ("rings", "hosts", "cities"):
                layer = study.study_area.get(name)
                if layer is not None:
                    layer.to_file(tmp, layer=name, driver="GPKG")
            if study.sites is not None:
                study.sites.to_file(tmp, layer="sites", driver="GPKG")
            for name, grid in study.grids.items():
                grid.to_crs(4326).to_file(tmp, layer=name, driver="GPKG")
        written.append(p)
    else:
        for name, grid in study.grids.items():
            p = outdir / f"{name}.gpkg"
            if p.exists():
                p.unlink()
            _ac_write(grid, p, name)
            written.append(p)

    if density and study.surfaces:
        ddir = outdir / "density"
        ddir.mkdir(exist_ok=True)
        p = ddir / "kde.tif"
        _dens.write_geotiff(study.surfaces["all"], p)
        written.append(p)
        years = {s.year: s for k, s in study.surfaces.items() if k.startswith("year_")}
        if years:
            p = ddir / "kde_by_year.tif"
            _dens.write_geotiff(years, p)
            written.append(p)

    p = outdir / "config.toml"
    with atomic_path(p) as tmp:
        tmp.write_text(dump_config(study.config), encoding="utf-8")
    written.append(p)
    p = outdir / "provenance.json"
    rec = provenance(parameters=study.config, inputs=study.inputs,
                     seed=study.config["stats"]["seed"], command="incubloc")
    rec["steps"] = list(study.steps)
    if "all" in study.surfaces:  # the bandwidth a rule resolved to, and the kernel's sd
        surf = study.surfaces["all"]
        rec["density"] = {k: surf.params[k] for k in
                          ("kernel", "bandwidth_rule", "bandwidth_m", "kernel_sd_m", "cell_size_m")}
    with atomic_path(p) as tmp:
        tmp.write_text(json.dumps(jsonable(rec), indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    written.append(p)
    return written


def _ac_write(grid: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    from incubloc.stats.autocorrelation import write_grid

    write_grid(grid.to_crs(4326), path, layer=layer)


def run_stats(
    incubators: gpd.GeoDataFrame | None = None,
    study_area: StudyArea | None = None,
    *,
    config: dict[str, Any],
    outdir: str | os.PathLike,
    sites: gpd.GeoDataFrame | None = None,
    inputs: dict[str, Any] | None = None,
    progress: bool = False,
) -> list[Path]:
    """``incubloc stats``: every table as CSV in ``outdir``, plus stats.json and provenance.

    ``incubators`` / ``study_area`` are used when given (read from ``config`` otherwise).
    """
    data = None
    if incubators is not None and study_area is not None:
        data = (incubators, sites, study_area, dict(inputs or {}))
    study = run_study(config, data=data, progress=progress)
    return write_study(study, outdir, tables_dir="", layers=False, density=False)


def run_density(
    incubators: gpd.GeoDataFrame,
    study_area: StudyArea | None = None,
    *,
    config: dict[str, Any],
    output: str | os.PathLike,
    inputs: dict[str, Any] | None = None,
) -> Any:
    """``incubloc density``: one kernel density GeoTIFF of ``incubators``.

    The surface covers the study area's cities when given (the convex hull of the
    points otherwise), in the analysis CRS; parameters come from ``config["density"]``.
    """
    from incubloc.coords import metric_crs
    from incubloc.stats import density as _dens

    dn = config["density"]
    crs = config["analysis"]["crs"] or metric_crs(incubators, method=config["analysis"]["crs_method"])
    area = None
    if study_area is not None and study_area.has("cities"):
        area = study_area.get("cities").union_all()
    surface = _dens.kde(incubators, area=area, kernel=dn["kernel"], bandwidth=dn["bandwidth"],
                        cell_size=dn["cell_size_m"], crs=crs)
    _dens.write_geotiff(surface, output, overwrite=bool(config["output"]["overwrite"]))
    return surface
