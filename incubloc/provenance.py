"""Provenance: what produced an output (version, parameters, input hashes, seed)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from incubloc._version import __version__
from incubloc.config import redact_secrets

__all__ = ["DEPENDENCIES", "file_sha256", "provenance"]

DEPENDENCIES = (
    "numpy", "pandas", "scipy", "shapely", "pyproj", "pyogrio", "geopandas",
    "libpysal", "esda", "pointpats", "mapclassify", "rasterio", "osmnx", "matplotlib",
)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file.

    Examples
    --------
    >>> import tempfile
    >>> p = tempfile.NamedTemporaryFile(delete=False); _ = p.write(b"abc"); p.close()
    >>> file_sha256(p.name)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def provenance(
    *,
    parameters: Mapping[str, Any],
    inputs: Mapping[str, str | os.PathLike | None],
    seed: int | None = None,
    command: str | None = None,
    with_time: bool = True,
) -> dict[str, Any]:
    """A provenance record for an output.

    Parameters
    ----------
    parameters : mapping
        The resolved parameters of the run.
    inputs : mapping of name to path
        Input files; each is hashed (None entries are recorded as absent).
    seed : int, optional
        The random seed.
    command : str, optional
        The command or function that ran.
    with_time : bool
        Include the run time (leave out where outputs must be byte-identical).

    Examples
    --------
    >>> rec = provenance(parameters={"a": 1}, inputs={}, seed=3, with_time=False)
    >>> rec["incubloc_version"] == __version__, rec["seed"]
    (True, 3)
    """
    rec: dict[str, Any] = {
        "incubloc_version": __version__,
        "command": command,
        "seed": seed,
        "parameters": redact_secrets(parameters),
        "inputs": {
            name: (
                {"path": str(p), "sha256": file_sha256(p)}
                if p is not None and Path(p).is_file()
                else {"path": None if p is None else str(p), "sha256": None}
            )
            for name, p in inputs.items()
        },
        "python": platform.python_version(),
        "dependencies": {d: _version(d) for d in DEPENDENCIES},
    }
    if with_time:
        rec["run_time_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return rec
