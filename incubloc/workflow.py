"""Run the whole study: classify every scale, compute every statistic, write files.

:func:`run_study` is the one function the CLI (``stats``, ``report``), the QGIS
provider and notebooks share. It returns a :class:`Study` holding every table and
test; :func:`write_study` writes them (CSV tables, ``stats.json``, ``layers.gpkg``,
density GeoTIFFs, ``config.toml``, ``provenance.json``).
"""

from __future__ import annotations

import json
import logging
import os
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
    "Study", "classify_with_config", "load_inputs", "ripley_distances", "run_density",
    "run_stats", "run_study", "write_study",
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
    lisa: dict[str, Any] = {}
    gi: dict[str, Any] = {}

    def local(units: gpd.GeoDataFrame, unit: str, key: str) -> gpd.GeoDataFrame:
        # EB-standardised rates: comparable across units of different land area
        # (districts, clipped coastal cells); a unit whose whole neighbourhood holds
        # no incubator is never significant (judged on the counts).
        column, gi_column = "rate_z", "rate_score"
        reason = _skip_reason(units[column], f"local statistics on {unit}")
        if reason:
            lisa[key] = gi[key] = {"unit": unit, "skipped": reason}
            return units
        with warnings.catch_warnings(record=True) as caught:  # recorded, not lost
            warnings.simplefilter("always")
            units = _ac.local_moran(units, column, window_column="count", **local_kw)
            units = _ac.getis_ord(units, gi_column, window_column="count", **local_kw)
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
        area = gpd.GeoSeries([land], crs=4326)
        ms = _ac.multiscale_moran(located, area, cell_sizes=tuple(st["cell_sizes_m"]),
                                  shape=st["grid_shape"], permutations=st["permutations"],
                                  seed=seed, alpha=st["alpha"], crs=crs)
        study.tables["multiscale_moran"] = ms
        peak = ms.attrs.get("peak_cell_size") or float(st["cell_sizes_m"][0])
        # Cells on land only: make_grid keeps cells intersecting the study area.
        grid = _ac.make_grid(area, cell_size=float(peak), shape=st["grid_shape"], crs=crs)
        grid = _ac.aggregate(located, grid, value="count")
        unit = f"{float(peak) / 1000:g} km grid"
        reason = _skip_reason(grid["count"], f"Moran's I on the {unit}")
        if reason:
            tests["global_moran"] = {"cell_size_m": float(peak), "skipped": reason}
        else:
            gm = _ac.global_moran(grid, "count", permutations=st["permutations"], seed=seed)
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


def run_study(
    config: dict[str, Any],
    *,
    data: tuple[Any, Any, Any, dict[str, Any]] | None = None,
    progress: bool = False,
) -> Study:
    """Classify, then compute every table and test of the study.

    Parameters
    ----------
    config : dict
        A resolved configuration (:func:`incubloc.config.resolve_config`).
    data : tuple, optional
        ``(incubators, sites, study_area, inputs)`` already read, as returned by
        :func:`load_inputs` (default: read them from ``config``).
    progress : bool
        Show a progress bar on stderr.

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
    >>> study = run_study(cfg)
    >>> study.tables["ring_patterns"].set_index("city").loc["Nanjing", "ring_pattern"]
    'core+inner_suburb+outer_suburb'
    """
    from tqdm.auto import tqdm

    from incubloc import agreement as _agr
    from incubloc import region as _region
    from incubloc import rings as _rings
    from incubloc.coords import metric_crs
    from incubloc.stats import density as _dens
    from incubloc.stats import pointpattern as _pp
    from incubloc.stats import preference as _pref

    steps = ["classify", "region", "rings", "relation and layout", "point pattern",
             "autocorrelation", "location preference", "density"]
    bar = tqdm(total=len(steps), desc="incubloc", disable=not progress, unit="step")

    def step(name: str) -> None:
        bar.set_postfix_str(name)
        log.info("%s", name)

    step("classify")
    inc, sites, sa, inputs = data if data is not None else load_inputs(config)
    classification = classify_with_config(inc, sa, sites=sites, config=config)
    cls = classification.incubators
    st = config["stats"]
    seed = st["seed"]
    crs = config["analysis"]["crs"] or metric_crs(cls, method=config["analysis"]["crs_method"])
    study = Study(config, classification, sa, sites, crs=crs, inputs=inputs)
    T, tests, results = study.tables, study.tests, study.results
    T["incubators"] = incubator_table(cls, inc)
    rejected = inc.attrs.get("rejected")
    if rejected is not None and len(rejected):
        T["rejected"] = rejected
    bar.update()

    step("region")
    for name, table in _region.region_tables(cls, study_area=sa).items():
        T[f"region_{name}"] = table
    tests["counts"] = classification.to_dict()
    if sa.has("settlements"):
        tests["tier_relation"] = _region.tier_relation(cls, study_area=sa).to_dict()
    num, den = config["region"]["province_ratio"]
    tests["province_ratio"] = {"numerator": num, "denominator": den,
                               "ratio": _region.province_ratio(cls, numerator=num, denominator=den)}
    bar.update()

    step("rings")
    rings = sa.get("rings")
    T["ring_patterns"] = classification.city_rings
    if rings is not None:
        rt = _rings.ring_table(cls, rings=rings)
        T["ring_table"] = rt
        T["density_gradient"] = _rings.density_gradient(rt)
        T["opening_sequence"] = _rings.opening_sequence(cls, rings=rings)
        tests["density_gradient"] = T["density_gradient"]
        tests["opening_sequence"] = T["opening_sequence"]
        edge = _rings.ring_edge_test(cls, rings, n_sim=st["ring_edge_sim"], seed=seed)
        results["ring_edge"] = edge
        tests["ring_edge"] = edge.to_dict()
    bar.update()

    step("relation and layout")
    for a in ("relation", "layout"):
        for b in ("city", "ring"):
            T[f"{a}_by_{b}"] = _agr.crosstab(cls, a, b)
        declared = cls[f"declared_{a}"]
        if declared.notna().any():
            agr = _agr.agreement(declared, cls[a])
            results[f"{a}_agreement"] = agr
            tests[f"{a}_agreement"] = agr.to_dict()
            T[f"{a}_confusion"] = agr.confusion
    bar.update()

    step("point pattern")
    windows = _stats_units(sa)
    located = cls[cls["city"] != "unclassified"]
    distances = ripley_distances(st)
    T["point_pattern"] = _pp.point_pattern_summary(
        located, by="city", windows=windows, n_sim=st["n_sim"], seed=seed, distances=distances
    )
    land = windows.union_all() if windows is not None else None
    pp_window = land if land is not None else located.union_all().convex_hull
    # One claim ("clustered"), two nulls: homogeneous CSR, and an inhomogeneous Poisson
    # with the kernel intensity, which a trend alone does not reject.
    rip = _pp.ripley(located, window=pp_window, n_sim=st["n_sim"], seed=seed,
                     test=st["envelope_test"], alternative="clustered", distances=distances)
    results["ripley"] = rip
    tests["ripley"] = rip.to_dict()
    cen = _pp.centrography(located.to_crs(crs))
    results["centrography"] = cen
    tests["ellipse"] = {k: getattr(cen, k) for k in (
        "mean_lon", "mean_lat", "mean_x", "mean_y", "standard_distance", "major", "minor",
        "sd_major", "sd_minor", "rotation_deg", "n", "crs")}
    all_row = T["point_pattern"].iloc[-1]
    tests["clark_evans"] = {k: all_row[k] for k in ("n", "R", "R_z", "R_p", "R_p_clustered",
                                                     "R_p_method") if k in all_row}
    tests["clark_evans"].update(null="csr", n_sim=st["n_sim"])
    from incubloc.errors import InputError

    try:  # the inhomogeneous null needs a pattern that spreads (a kernel bandwidth)
        rip_inh = _pp.ripley(located, window=pp_window, n_sim=st["n_sim"], seed=seed,
                             test=st["envelope_test"], alternative="clustered",
                             null="inhomogeneous", bandwidth=st["intensity_bandwidth"],
                             distances=distances)
        results["ripley_inhom"] = rip_inh
        tests["ripley_inhom"] = rip_inh.to_dict()
        ce_inh = _pp.clark_evans(located, window=pp_window, n_sim=st["n_sim"], seed=seed,
                                 null="inhomogeneous", bandwidth=st["intensity_bandwidth"])
        tests["clark_evans"]["inhomogeneous"] = {
            k: getattr(ce_inh, k) for k in ("R_null", "p", "p_clustered", "bandwidth_m")}
    except InputError as exc:
        log.warning("inhomogeneous point-pattern tests skipped: %s", exc)
        tests["ripley_inhom"] = {"skipped": str(exc)}
    bar.update()

    step("autocorrelation")
    _autocorrelation_step(study, located, land, sa, crs=crs, seed=seed)
    bar.update()

    step("location preference")
    within = sa.get("settlements")
    prefs = {}
    if within is not None:
        for name, targets in (("centres", sa.get("centres")), ("hosts", sa.get("hosts"))):
            if targets is None:
                continue
            res = _pref.location_preference(located, targets, within=within,
                                            n_sim=st["permutations"], seed=seed, crs=crs,
                                            placebo="seats",
                                            alpha=st["alpha"])
            prefs[name] = res
            T[f"preference_{name}"] = res.table
        tests["preference"] = {k: v.table for k, v in prefs.items()}
        results["preference"] = prefs
    bar.update()

    step("density")
    dn = config["density"]
    study.surfaces["all"] = _dens.kde(located, area=land, kernel=dn["kernel"],
                                      bandwidth=dn["bandwidth"], cell_size=dn["cell_size_m"],
                                      crs=crs)
    if dn["by_year"] and located["opened"].notna().any():
        years = _dens.kde_by_year(located, area=land, kernel=dn["kernel"],
                                  bandwidth=study.surfaces["all"].bandwidth_m,
                                  cell_size=dn["cell_size_m"], crs=crs)
        for year, surf in years.items():
            study.surfaces[f"year_{year}"] = surf
    bar.update()
    if (config.get("factors") or {}).get("in_report"):  # location factors (incubloc.factors)
        from incubloc.factors import factors_from_config

        log.info("location factors")
        fx = factors_from_config(cls, sa, config=config, sites=sites)
        results["factors"] = fx
        tests["factors"] = fx.to_dict()
        for name in ("coefficients", "fit", "decomposition", "covariates"):
            T[f"factor_{name}"] = getattr(fx, name)
    bar.close()
    return study


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
