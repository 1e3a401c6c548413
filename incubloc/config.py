"""Configuration files (TOML) for reproducible runs.

A configuration holds every parameter of a run; ``incubloc report`` writes the fully
resolved configuration next to its outputs so the run can be repeated exactly.
Unknown keys and wrong types are errors, never silently ignored.

Example file::

    [input]
    incubators = "incubators.csv"
    coords = "gcj02"

    [study_area]
    path = "nanjing_circle.gpkg"

    [stats]
    seed = 42
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from incubloc.errors import ConfigError
from incubloc.options import SECTIONS, section_defaults

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DEFAULTS", "SECRET_KEYS", "dump_config", "load_config", "redact_secrets",
           "resolve_config"]

#: Every section and key with its default. ``None`` means "not set".
DEFAULTS: dict[str, dict[str, Any]] = {
    "input": {
        "example": None,
        "incubators": None,
        "sites": None,
        "coords": "wgs84",
        "lon": None,
        "lat": None,
        "encoding": None,
        "layer": None,
        "sheet": None,
        "skip_bad_rows": False,
    },
    # Sections of the classification scales come from incubloc.options.
    "study_area": {"path": None, **section_defaults("study_area")},
    "region": section_defaults("region"),
    "analysis": {
        "crs": None,
        "crs_method": "utm",
    },
    "relation": section_defaults("relation"),
    "layout": section_defaults("layout"),
    "stats": {
        "seed": 20140630,
        "permutations": 999,
        "n_sim": 99,
        "alpha": 0.05,
        "correction": "fdr",
        "max_permutations": 99_999,
        "fdr": None,  # older switch: true = correction "fdr", false = "none"
        "grid_shape": "square",
        "cell_sizes_m": [2000.0, 5000.0, 10000.0, 20000.0],
        "ring_edge_sim": 999,
        "join_counts": ["layout=building", "relation=standalone"],
        # point-pattern nulls (docs/methods.md)
        "envelope_test": "mad",
        "intensity_bandwidth": "scott",
        # nulls of Gi* and LISA on incubator counts (docs/methods.md)
        "gi_null": "constant_risk",
        "lisa_null": "permutation",
        # largest Ripley distance (metres); unset: a quarter of the window's shorter side
        "ripley_max_distance_m": None,
    },
    "density": {
        "kernel": "quartic",
        "bandwidth": "scott",
        "cell_size_m": 500.0,
        "by_year": True,
    },
    "factors": {  # location-factor models (incubloc.factors, `incubloc factors`)
        "units": "districts",
        "response": "count",
        "covariates": [],  # empty: every covariate the study area supports
        "point": "centroid",
        "radius_m": 10000.0,
        "osm_file": None,  # OpenStreetMap extract with stations (dist_station)
        "standardise": False,
        "ols_zero": 0.5,
        "ols_robust": "HC3",
        "alpha": 0.05,
        "spatial": "auto",
        "gwr": True,
        "local_model": "gwr",
        "gwr_min_units": 50,
        "min_df": 10,
        "n_boot": 199,
        "min_land_fraction": 0.25,
        "in_report": False,
    },
    "output": {
        "dir": None,
        "overwrite": False,
    },
    # interactive.html (incubloc.shells.webmap): no basemap by default, so it works offline.
    "report": {
        "interactive_map": True,
        "basemap": None,
        "basemap_coords": "auto",
        "basemap_subdomains": None,
        "basemap_attribution": None,
        # SVG beside each PNG: "none" (PNG only, the fastest), "small" (vector figures
        # without rasters and with <= 5000 paths: charts, point maps) or "all".
        "svg": "none",
        # Processes drawing figures: 0 = the available cores (at most 4), 1 = this one.
        "workers": 0,
    },
    # incubloc geocode (see docs/geocoding.md). The key is best left to an environment
    # variable; a key written here is never copied into outputs.
    "geocode": {
        "provider": "amap",
        "key_env": None,
        "key": None,
        "city": None,
        "cache": None,
        "base_url": None,
        "qps": None,
        "retries": 3,
        "timeout_s": 10.0,
        "poi": True,
        "coordtype": "bd09ll",
    },
}

#: Keys whose values are secrets: written as a comment by :func:`dump_config` and
#: replaced by :func:`redact_secrets`.
SECRET_KEYS = frozenset({("geocode", "key")})

# Keys whose value may be any of several types.
_FLEX = {
    ("density", "bandwidth"): (str, float, int),
    ("analysis", "crs"): (str, int, type(None)),
    ("factors", "covariates"): (list,),
    ("stats", "intensity_bandwidth"): (str, float, int),
    ("stats", "ripley_max_distance_m"): (float, int),
}
_CHOICES = {
    ("input", "coords"): ("wgs84", "gcj02", "bd09"),
    ("analysis", "crs_method"): ("utm", "cgcs2000"),
    ("stats", "grid_shape"): ("square", "hex"),
    ("stats", "envelope_test"): ("mad", "dclf"),
    ("stats", "gi_null"): ("constant_risk", "permutation"),
    ("stats", "lisa_null"): ("permutation", "constant_risk"),
    ("stats", "correction"): ("fdr", "bonferroni", "none"),
    ("density", "kernel"): ("quartic", "gaussian"),
    ("report", "basemap_coords"): ("auto", "wgs84", "gcj02"),
    ("factors", "point"): ("centroid", "representative", "population"),
    ("factors", "ols_robust"): ("HC0", "HC1", "HC2", "HC3"),
    ("factors", "spatial"): ("auto", "error", "lag", "none"),
    ("factors", "local_model"): ("gwr", "mgwr"),
    ("geocode", "provider"): ("amap", "baidu", "tianditu"),
    ("geocode", "coordtype"): ("bd09ll", "gcj02ll"),
    ("report", "svg"): ("small", "none", "all"),
}
_PATH_KEYS = {("input", "incubators"), ("input", "sites"), ("study_area", "path"), ("output", "dir"),
              ("factors", "osm_file"), ("geocode", "cache")}


def _check(section: str, key: str, value: Any, source: str) -> Any:
    default = DEFAULTS[section][key]
    where = f"{source}: [{section}] {key}"
    if (section, key) in _FLEX:
        if not isinstance(value, _FLEX[(section, key)]):
            raise ConfigError(f"{where} has the wrong type ({type(value).__name__})")
    elif default is None:
        if not isinstance(value, str | int | float):
            raise ConfigError(f"{where} must be a string or number, not {type(value).__name__}")
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, not {value!r}")
        value = float(value)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, not {value!r}")
    elif isinstance(default, list) and all(isinstance(v, str) for v in default):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, not {value!r}")
    elif isinstance(default, list):
        if not isinstance(value, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{where} must be a list of numbers, not {value!r}")
        value = [float(v) for v in value]
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {value!r}")
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        raise ConfigError(f"{where} = {value!r} is not one of {', '.join(choices)}")
    if (section, key) == ("report", "basemap"):
        from incubloc.shells.webmap import check_basemap

        value = check_basemap(value, where=where)
    return value


def resolve_config(
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    source: str = "configuration",
    base_dir: str | os.PathLike | None = None,
) -> dict[str, dict[str, Any]]:
    """Merge ``overrides`` into :data:`DEFAULTS`, checking keys and types.

    Relative paths are resolved against ``base_dir`` (the config file's folder).

    Examples
    --------
    >>> cfg = resolve_config({"stats": {"seed": 7}})
    >>> cfg["stats"]["seed"], cfg["density"]["kernel"]
    (7, 'quartic')
    >>> resolve_config({"stats": {"sede": 7}})
    Traceback (most recent call last):
    ...
    incubloc.errors.ConfigError: configuration: unknown key [stats] sede; known keys: ...
    """
    cfg = copy.deepcopy(DEFAULTS)
    for section, values in (overrides or {}).items():
        if section not in DEFAULTS:
            raise ConfigError(
                f"{source}: unknown section [{section}]; known sections: {', '.join(DEFAULTS)}"
            )
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table of keys")
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                raise ConfigError(
                    f"{source}: unknown key [{section}] {key}; known keys: "
                    f"{', '.join(DEFAULTS[section])}"
                )
            if value is None:
                continue
            value = _check(section, key, value, source)
            if (section, key) in _PATH_KEYS and base_dir is not None:
                p = Path(value)
                value = str(p if p.is_absolute() else (Path(base_dir) / p).resolve())
            cfg[section][key] = value
    _check_options(cfg, source)
    _map_old_fdr(cfg, overrides or {}, source)
    return cfg


def _check_options(cfg: dict[str, dict[str, Any]], source: str) -> None:
    """Ranges of the scale options (checked by their dataclasses) and join-count targets."""
    for section, (cls, names) in SECTIONS.items():
        values = {k: cfg[section][k] for k in names}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        try:
            cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: [{section}] {exc}") from None
    for target in cfg["stats"]["join_counts"]:
        column, _, value = target.partition("=")
        if not column.strip() or not value.strip():
            raise ConfigError(
                f"{source}: [stats] join_counts entry {target!r} must be 'column=value' "
                "(e.g. 'layout=building')"
            )


def _map_old_fdr(cfg: dict[str, dict[str, Any]], overrides: Mapping[str, Any], source: str) -> None:
    """Map the older ``[stats] fdr`` switch onto ``[stats] correction``."""
    fdr = cfg["stats"].get("fdr")
    if fdr is None:
        return
    if not isinstance(fdr, bool):
        raise ConfigError(f"{source}: [stats] fdr must be true or false, not {fdr!r}")
    if "correction" not in (overrides.get("stats") or {}):
        cfg["stats"]["correction"] = "fdr" if fdr else "none"
    cfg["stats"]["fdr"] = None


def load_config(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read and validate a TOML configuration file.

    Raises
    ------
    ConfigError
        If the file is missing, not TOML, or has unknown keys / wrong types.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    return resolve_config(raw, source=str(path), base_dir=path.parent)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    s = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def dump_config(cfg: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text of a resolved configuration (unset keys are written as comments).

    Examples
    --------
    >>> text = dump_config(resolve_config({"stats": {"seed": 3}}))
    >>> resolve_config(tomllib.loads(text))["stats"]["seed"]
    3
    """
    lines = ["# incubloc configuration (fully resolved)"]
    for section, values in cfg.items():
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            if (section, key) in SECRET_KEYS and value is not None:
                lines.append(f"# {key} = (secret: not written)")
            elif value is None:
                lines.append(f"# {key} =")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def redact_secrets(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``cfg`` with secret values (:data:`SECRET_KEYS`) replaced by ``"***"``.

    Examples
    --------
    >>> redact_secrets({"geocode": {"key": "abc", "city": "南京"}})
    {'geocode': {'key': '***', 'city': '南京'}}
    """
    out: dict[str, Any] = {}
    for section, values in cfg.items():
        if isinstance(values, Mapping):
            out[section] = {k: ("***" if (section, k) in SECRET_KEYS and v is not None else v)
                            for k, v in values.items()}
        else:
            out[section] = values
    return out
