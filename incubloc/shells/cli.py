"""The ``incubloc`` command line: a thin shell over the Python API.

Errors a user can fix (:class:`incubloc.errors.IncublocError`) are printed as one
line without a traceback and the exit code is 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from incubloc._version import __version__
from incubloc.errors import ConfigError, IncublocError

__all__ = ["entry_point", "main"]

log = logging.getLogger("incubloc")

#: Allocations between collections of the youngest generation while a command runs.
_GC_YOUNG = 50_000


# ---------------------------------------------------------------- arguments
def _add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("incubators", nargs="?",
                   help="incubator table: CSV, Excel/ODS, GeoJSON, GeoPackage, Shapefile or "
                        "(Geo)Parquet")
    p.add_argument("--example", choices=["nanjing"], help="run on a bundled example instead of INCUBATORS")
    p.add_argument("--study-area", metavar="AREA.gpkg", help="study-area GeoPackage")
    p.add_argument("--sites", metavar="SITES", help="site polygons with incubator_id (multi-site incubators)")
    p.add_argument("--coords", choices=["wgs84", "gcj02", "bd09"], help="coordinate system of CSV lon/lat")
    p.add_argument("--lon", metavar="COL", help="longitude column of a CSV")
    p.add_argument("--lat", metavar="COL", help="latitude column of a CSV")
    p.add_argument("--encoding", help="CSV encoding (default: UTF-8, then GB18030/GBK)")
    p.add_argument("--layer", help="layer of a GeoPackage incubator file")
    p.add_argument("--sheet", help="sheet of an .xlsx/.xls/.ods file, by name or 0-based index")
    p.add_argument("--config", metavar="CONFIG.toml", help="configuration file (TOML)")
    p.add_argument("--crs", help="metric CRS for analysis, e.g. EPSG:4549 (default: local UTM)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="leave out bad rows (listed by line number) instead of stopping")


def _global_flags(p: argparse.ArgumentParser, *, default: Any) -> None:
    """-v/-q before or after the sub-command; after it, SUPPRESS keeps the value given
    before it (or the main parser's default) when the flag is absent."""
    p.add_argument("-v", "--verbose", action="store_true", default=default, help="log details")
    p.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="log warnings only, no progress")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="incubloc",
        description="Multi-scale spatial analysis of incubator location patterns "
        "(region, concentric ring, relation, layout) and the statistics behind them.",
    )
    parser.add_argument("--version", action="version", version=f"incubloc {__version__}")
    _global_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "classify",
        help="classify incubators on every scale; writes a GeoPackage",
        description="Classify incubators by city, province, settlement, tier, zone, ring, "
        "relation and layout. Writes layer 'incubators' (one row per input incubator) and "
        "'city_rings' (ring pattern per city) to a GeoPackage and prints a summary.",
    )
    _add_input_args(p)
    p.add_argument("-o", "--output", metavar="OUT.gpkg",
                   help="output GeoPackage, or OUT.parquet for GeoParquet (large inputs)")

    p = sub.add_parser(
        "stats",
        help="regional, ring and spatial statistics; writes CSV tables and stats.json",
        description="Compute the regional and ring tables and tests, point-pattern, "
        "autocorrelation and location-preference statistics.",
    )
    _add_input_args(p)
    p.add_argument("--seed", type=int, help="random seed (default from config: 20140630)")
    p.add_argument("-o", "--output", metavar="OUTDIR", help="output folder")

    p = sub.add_parser(
        "factors",
        help="location-factor models: why incubators locate where they do",
        description="Count incubators per unit (districts, townships or a land grid), build "
        "covariates (distances to business / knowledge centres, development zones, stations; "
        "ring, tier, population), fit Poisson / negative-binomial GLMs, OLS with spatial "
        "diagnostics, spatial lag / error models and GWR, and decompose the explained "
        "variation over factor groups. Writes tables/, stats.json, maps and report.html.",
    )
    _add_input_args(p)
    p.add_argument("--units", metavar="districts|townships|grid:SIZE",
                   help="areal units (default from config: districts)")
    p.add_argument("--response", metavar="count|COLUMN=VALUE",
                   help="incubators counted: all, or one class such as level=national")
    p.add_argument("--osm-file", metavar="FILE",
                   help="OpenStreetMap extract (.osm) with rail / metro stations")
    p.add_argument("--seed", type=int, help="random seed of the bootstrap (default from config)")
    p.add_argument("-o", "--output", metavar="OUTDIR", help="output folder")

    p = sub.add_parser(
        "density",
        help="kernel density surface as a GeoTIFF",
        description="Kernel density of incubators in a projected CRS, written as GeoTIFF.",
    )
    _add_input_args(p)
    p.add_argument("--kernel", choices=["quartic", "gaussian"], help="kernel (default quartic)")
    p.add_argument("--bandwidth",
                   help="bandwidth in metres, or a rule: scott (2-D, default), lcv, silverman1d, "
                        "arcgis")
    p.add_argument("--cell-size", type=float, metavar="METRES", help="cell size in metres (default 500)")
    p.add_argument("-o", "--output", metavar="OUT.tif", help="output GeoTIFF")

    p = sub.add_parser(
        "report",
        help="the full multi-scale study as an HTML report with tables, maps and layers",
        description="Run every scale and statistic and write report.html, tables/, "
        "layers.gpkg, density/, stats.json, config.toml and provenance.json.",
    )
    p.add_argument("config_file", nargs="?", metavar="CONFIG.toml", help="configuration file")
    p.add_argument("--example", choices=["nanjing"], help="run on a bundled example")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("-o", "--output", metavar="OUTDIR", help="output folder")

    p = sub.add_parser(
        "study-area",
        help="build or extend a study-area GeoPackage (boundaries, OSM hosts and buildings)",
        description="Copy a study-area GeoPackage (or start an empty one) and add hosts and "
        "buildings from OpenStreetMap (online by place name / bbox, or offline from a .osm "
        "or .osm.pbf file) or from files.",
    )
    p.add_argument("--from", dest="base", metavar="AREA.gpkg", help="start from this study area")
    p.add_argument("--example", choices=["nanjing"], help="start from a bundled study area")
    p.add_argument("--osm-file", metavar="FILE", help="offline OSM extract (.osm, .osm.pbf)")
    p.add_argument("--place", help="place name for an online OSM query")
    p.add_argument("--bbox", nargs=4, type=float, metavar=("W", "S", "E", "N"), help="bounding box (WGS84)")
    p.add_argument("--layers", default="hosts,buildings", help="OSM layers to add (default hosts,buildings)")
    p.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    p.add_argument("-o", "--output", metavar="AREA.gpkg", help="output GeoPackage")

    p = sub.add_parser(
        "geocode",
        help="geocode a list of incubator names and addresses (AMap, Baidu, Tianditu)",
        description="Geocode the addresses of an incubator list (CSV, .xlsx, .xls, .ods) and, "
        "where an address is vague, search the name as a place. Writes a CSV with WGS84 "
        "lon/lat, the match level, a confidence, the matched name and address and a review "
        "flag for every input row. Answers are cached in SQLite: a rerun makes no call twice.",
    )
    p.add_argument("list", metavar="LIST", help="incubator list with address and/or name columns")
    p.add_argument("--provider", choices=["amap", "baidu", "tianditu"],
                   help="geocoding service (default amap)")
    p.add_argument("--key-env", metavar="VAR",
                   help="environment variable holding the key (default INCUBLOC_<PROVIDER>_KEY)")
    p.add_argument("--city", help="city to search in, e.g. 南京 (matches elsewhere go to review)")
    p.add_argument("--sheet", help="sheet of a spreadsheet, by name or 0-based index")
    p.add_argument("--encoding", help="CSV encoding (default: UTF-8, then GB18030/GBK)")
    p.add_argument("--cache", metavar="PATH", help="SQLite cache (default in the user cache dir)")
    p.add_argument("--base-url", metavar="URL", help="provider root URL (a proxy or a test server)")
    p.add_argument("--qps", type=float, help="calls per second at most")
    p.add_argument("--coordtype", choices=["bd09ll", "gcj02ll"],
                   help="Baidu only: coordinates asked for (default bd09ll)")
    p.add_argument("--no-poi", action="store_true", help="never search names as places")
    p.add_argument("--dry-run", action="store_true",
                   help="say how many calls would be made, and make none")
    p.add_argument("--config", metavar="CONFIG.toml", help="configuration file ([geocode])")
    p.add_argument("--overwrite", action="store_true", help="replace the output if it exists")
    p.add_argument("-o", "--output", metavar="OUT.csv", help="output CSV")

    for p in sub.choices.values():
        _global_flags(p, default=argparse.SUPPRESS)
    return parser


# ---------------------------------------------------------------- helpers
def _config(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    from incubloc.config import load_config, resolve_config

    cfg = load_config(args.config) if getattr(args, "config", None) else resolve_config()
    inp = cfg["input"]
    for key in ("coords", "lon", "lat", "encoding", "layer", "sheet", "sites", "example"):
        val = getattr(args, key, None)
        if val is not None:
            inp[key] = val
    if getattr(args, "skip_bad_rows", False):
        inp["skip_bad_rows"] = True
    if getattr(args, "incubators", None):
        inp["incubators"] = args.incubators
    if getattr(args, "study_area", None):
        cfg["study_area"]["path"] = args.study_area
    if getattr(args, "crs", None):
        cfg["analysis"]["crs"] = args.crs
    if getattr(args, "seed", None) is not None:
        cfg["stats"]["seed"] = args.seed
    if getattr(args, "overwrite", False):
        cfg["output"]["overwrite"] = True
    return cfg


def _load_inputs(cfg: dict[str, dict[str, Any]], *, need_study_area: bool = True):
    from incubloc.workflow import load_inputs

    t0 = time.perf_counter()
    inc, sites, sa, _ = load_inputs(cfg, need_study_area=need_study_area)
    rejected = inc.attrs.get("rejected")
    if rejected is not None and len(rejected):
        shown = "; ".join(f"line {r.row}: {r.problem}" for r in rejected.head(10).itertuples())
        log.warning("skipped %d bad rows of %s (%s%s)", len(rejected), cfg["input"]["incubators"],
                    shown, "; …" if len(rejected) > 10 else "")
    log.info("read %d incubators%s in %.1f s", len(inc),
             f" and {len(sites)} sites" if sites is not None else "", time.perf_counter() - t0)
    return inc, sites, sa


def _inputs_for_provenance(cfg) -> dict[str, Any]:
    return {
        "incubators": cfg["input"]["incubators"],
        "sites": cfg["input"]["sites"],
        "study_area": cfg["study_area"]["path"],
    }


def _require_output(args, what: str) -> Path:
    from incubloc.errors import InputError

    if not args.output:
        raise ConfigError(f"no output given: pass -o {what}")
    out = Path(args.output)
    # Refuse before any work is done, not after it.
    if out.is_file() and not getattr(args, "overwrite", False):
        raise InputError(f"output {out} already exists: remove it or pass --overwrite")
    return out


def _print_table(df, title: str) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.precision", 3):
        print(f"\n{title}\n{df.to_string()}")


# ---------------------------------------------------------------- commands
def _cmd_classify(args: argparse.Namespace) -> int:

    from incubloc.classification import write_classification
    from incubloc.provenance import provenance
    from incubloc.workflow import classify_with_config

    cfg = _config(args)
    out = _require_output(args, "OUT.gpkg")
    inc, sites, sa = _load_inputs(cfg)
    t0 = time.perf_counter()
    result = classify_with_config(inc, sa, sites=sites, config=cfg)
    log.info("classified %d incubators in %.1f s", len(result.incubators), time.perf_counter() - t0)
    for analysis, missing in result.disabled.items():
        log.warning("%s skipped: study area lacks layer %s", analysis, ", ".join(missing))
    prov = provenance(parameters=cfg, inputs=_inputs_for_provenance(cfg),
                      seed=None, command="incubloc classify")
    rejected = inc.attrs.get("rejected")
    write_classification(result, out, provenance=prov, rejected=rejected,
                         overwrite=cfg["output"]["overwrite"])
    if not args.quiet:
        summary = result.summary()
        summary["share"] = (100 * summary["share"]).round(1)
        summary = summary.rename(columns={"share": "share_%"})
        _print_table(summary.astype({c: int for c in summary.columns if c != "share_%"}),
                     f"incubloc classify: {len(result.incubators)} incubators")
        rings = result.city_rings
        if len(rings):
            held = rings[rings["n_incubators"] > 0].set_index("city")
            cols = [c for c in ("prefecture", "ring_pattern", "n_incubators", "form") if c in held]
            _print_table(held[cols], "Ring pattern per ring system (圈层模式)")
            if len(held) < len(rings):
                print(f"({len(rings) - len(held)} ring systems hold no incubator: pattern 'none')")
        from incubloc.classification import n_unclassified

        n_unc = n_unclassified(result.incubators)
        print(f"\n{n_unc} of {len(result.incubators)} incubators are unclassified on some scale "
              "(column 'reason' says why).")
        if rejected is not None and len(rejected):
            print(f"{len(result.incubators) + len(rejected)} data rows: "
                  f"{len(result.incubators)} classified, {len(rejected)} rejected "
                  "(layer 'rejected' lists each line and its problem).")
        print(f"Wrote {out} (layers incubators, city_rings, provenance"
              f"{', rejected' if rejected is not None and len(rejected) else ''})")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from incubloc.workflow import run_stats

    cfg = _config(args)
    outdir = _require_output(args, "OUTDIR")
    inc, sites, sa = _load_inputs(cfg)
    files = run_stats(inc, sa, sites=sites, config=cfg, outdir=outdir,
                      inputs=_inputs_for_provenance(cfg), progress=not args.quiet)
    if not args.quiet:
        print(f"Wrote {len(files)} files to {outdir}:")
        for f in files:
            print(f"  {f.name}")
    return 0


def _cmd_factors(args: argparse.Namespace) -> int:
    from incubloc.factors import factors_from_config, write_factors
    from incubloc.provenance import provenance

    cfg = _config(args)
    if args.units:
        cfg["factors"]["units"] = args.units
    if args.response:
        cfg["factors"]["response"] = args.response
    if args.osm_file:
        cfg["factors"]["osm_file"] = args.osm_file
    outdir = _require_output(args, "OUTDIR")
    inc, sites, sa = _load_inputs(cfg)
    result = factors_from_config(inc, sa, config=cfg, sites=sites)
    prov = provenance(parameters=cfg, inputs=_inputs_for_provenance(cfg),
                      seed=cfg["stats"]["seed"], command="incubloc factors")
    files = write_factors(result, outdir, provenance=prov)
    if not args.quiet:
        dec = result.decomposition
        top = dec[(dec["group"] != "total")].sort_values("contribution", ascending=False)
        _print_table(result.fit[["model", "n", "k", "aic", "fit_measure", "fit_value"]],
                     f"incubloc factors: {result.parameters['n_units']} units")
        _print_table(top[["model", "group", "contribution", "share"]].reset_index(drop=True),
                     "Effect decomposition (Shapley–Owen)")
        print(f"Wrote {len(files)} files to {outdir}")
    return 0


def _cmd_density(args: argparse.Namespace) -> int:
    from incubloc.workflow import run_density

    cfg = _config(args)
    if args.kernel:
        cfg["density"]["kernel"] = args.kernel
    if args.bandwidth:
        try:
            cfg["density"]["bandwidth"] = float(args.bandwidth)
        except ValueError:
            cfg["density"]["bandwidth"] = args.bandwidth
    if args.cell_size:
        cfg["density"]["cell_size_m"] = args.cell_size
    out = _require_output(args, "OUT.tif")
    inc, _sites, sa = _load_inputs(cfg, need_study_area=False)
    surface = run_density(inc, sa, config=cfg, output=out, inputs=_inputs_for_provenance(cfg))
    if not args.quiet:
        rows, cols = surface.array.shape
        print(f"Wrote {out}: {cols}×{rows} cells of {surface.cell_size:g} m, "
              f"{surface.kernel} kernel, bandwidth {surface.bandwidth_m:.0f} m "
              f"({surface.bandwidth_rule}), CRS {surface.crs}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from incubloc.config import load_config, resolve_config
    from incubloc.shells.report import build_report

    cfg = load_config(args.config_file) if args.config_file else resolve_config()
    if args.example:
        cfg["input"]["example"] = args.example
    if args.seed is not None:
        cfg["stats"]["seed"] = args.seed
    if args.overwrite:
        cfg["output"]["overwrite"] = True
    outdir = Path(args.output or cfg["output"]["dir"] or "incubloc-report")
    cfg["output"]["dir"] = str(outdir)
    if not cfg["input"]["example"] and not cfg["input"]["incubators"]:
        raise ConfigError("report needs a CONFIG.toml with [input] incubators, or --example nanjing")
    path = build_report(cfg, outdir, progress=not args.quiet)
    if not args.quiet:
        print(f"Wrote report to {path}")
    return 0


def _cmd_study_area(args: argparse.Namespace) -> int:
    import shutil

    from incubloc import datasets
    from incubloc.errors import InputError
    from incubloc.io import atomic_path
    from incubloc.osm import add_osm_to_study_area

    out = _require_output(args, "AREA.gpkg")
    if out.exists() and not args.overwrite:
        raise InputError(f"output {out} already exists: remove it or pass --overwrite")
    base = args.base or (str(datasets.nanjing_study_area_path()) if args.example else None)
    sources = [x for x in (args.osm_file, args.place, args.bbox) if x]
    if len(sources) != 1:
        raise ConfigError("give exactly one OSM source: --osm-file FILE, --place NAME or --bbox W S E N")
    if base:
        with atomic_path(out) as tmp:
            shutil.copyfile(base, tmp)
    layers = tuple(x.strip() for x in args.layers.split(",") if x.strip())
    add_osm_to_study_area(out, place=args.place, bbox=tuple(args.bbox) if args.bbox else None,
                          osm_file=args.osm_file, layers=layers)
    if not args.quiet:
        from incubloc.studyarea import load_study_area

        print(load_study_area(out).summary())
        print(f"Wrote {out}")
    return 0


def _cmd_geocode(args: argparse.Namespace) -> int:
    from incubloc.config import load_config, resolve_config
    from incubloc.geocoding import geocode, geocode_plan, write_geocoded

    gc = (load_config(args.config) if args.config else resolve_config())["geocode"]
    for name in ("provider", "key_env", "city", "cache", "base_url", "qps", "coordtype"):
        value = getattr(args, name)
        if value is not None:
            gc[name] = value
    if args.no_poi:
        gc["poi"] = False
    common = dict(provider=gc["provider"], city=gc["city"], sheet=args.sheet,
                  encoding=args.encoding, cache=gc["cache"], poi=gc["poi"],
                  coordtype=gc["coordtype"])
    if args.dry_run:
        plan = geocode_plan(args.list, **common)
        print(f"incubloc geocode --dry-run ({gc['provider']}): {plan}")
        return 0
    out = _require_output(args, "OUT.csv")
    gdf = geocode(args.list, key=gc["key"], key_env=gc["key_env"], base_url=gc["base_url"],
                  qps=gc["qps"], retries=gc["retries"], timeout=gc["timeout_s"],
                  progress=not args.quiet, **common)
    from incubloc.provenance import provenance

    params = {k: v for k, v in gc.items() if k != "key"}  # the key is never recorded
    prov = provenance(parameters={"geocode": {**params, "sheet": args.sheet,
                                              "calls": gdf.attrs.get("calls", 0)}},
                      inputs={"list": args.list}, command="incubloc geocode")
    write_geocoded(gdf, out, overwrite=args.overwrite, provenance=prov)
    counts = gdf["geocode_status"].value_counts()
    failed = gdf[gdf["geocode_status"] == "failed"]
    log.info("%d provider calls", gdf.attrs.get("calls", 0))
    if not args.quiet:
        print(f"incubloc geocode: {len(gdf)} rows: {counts.get('ok', 0)} ok, "
              f"{counts.get('review', 0)} to review, {len(failed)} failed "
              f"({gdf.attrs.get('calls', 0)} provider calls)")
        for r in failed.head(20).itertuples():
            print(f"  failed: row {r.source_row} {r.name if 'name' in gdf else ''}: "
                  f"{r.geocode_message}")
        if len(failed) > 20:
            print(f"  … and {len(failed) - 20} more failed rows")
        print(f"Wrote {out} (lon/lat in WGS84; geocode_status ok/review/failed)")
    return 0


_COMMANDS = {
    "classify": _cmd_classify,
    "stats": _cmd_stats,
    "factors": _cmd_factors,
    "density": _cmd_density,
    "report": _cmd_report,
    "study-area": _cmd_study_area,
    "geocode": _cmd_geocode,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``incubloc`` command.

    Examples
    --------
    >>> main(["classify"])  # no input given: a clear error, exit code 2
    2
    """
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "incubloc: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("fiona", "pyogrio", "rasterio", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.command:
        parser.print_help()
        return 2
    import gc

    from incubloc.processes import keep_freed_memory

    keep_freed_memory()
    # A command makes many short-lived objects (figures above all) and frees them by
    # reference counting: a young-generation collection every 50,000 allocations
    # instead of every 700 does the same work in a few passes (a report's drawing
    # process spent about 0.3 s of CPU in them).
    gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])
    try:
        return _COMMANDS[args.command](args)
    except IncublocError as exc:
        print(f"incubloc {args.command}: error: {exc.cli_message or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("incubloc: interrupted; no output was left half-written", file=sys.stderr)
        return 130


def entry_point(argv: Sequence[str] | None = None) -> None:
    """The ``incubloc`` command: :func:`main`, then a quick exit (``SystemExit``).

    What the command made lives until the process ends, so the interpreter's
    shutdown would scan all of it for reference cycles, repeatedly, as it tears the
    modules down: about a second after a report. Frozen, it is left out of those
    scans and freed by reference counting as usual. Outputs are closed before
    :func:`main` returns, so nothing waits on a cycle being collected.
    """
    import gc

    code = main(argv)
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry_point()
