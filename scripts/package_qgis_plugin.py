#!/usr/bin/env python
"""Package the QGIS plugin (qgis_plugin/incubloc_qgis) as an installable zip.

The zip holds one top-level folder, ``incubloc_qgis/``, as QGIS's *Plugins ›
Manage and Install Plugins › Install from ZIP* expects. The plugin's version in
``metadata.txt`` is set to the incubloc package version. The archive is
reproducible: fixed file order and timestamps, no ``__pycache__``.

Usage::

    python scripts/package_qgis_plugin.py            # -> dist/incubloc_qgis-<version>.zip
    python scripts/package_qgis_plugin.py -o OUTDIR
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN = "incubloc_qgis"
PLUGIN_DIR = REPO / "qgis_plugin" / PLUGIN
# 1980-01-01, the earliest zip timestamp: the same sources give the same bytes.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".orig", ".rej", ".swp"}


def package_version() -> str:
    """The incubloc version, read from ``incubloc/_version.py`` without importing it."""
    text = (REPO / "incubloc" / "_version.py").read_text(encoding="utf-8")
    match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)['\"]", text)
    if not match:
        raise SystemExit("cannot find __version__ in incubloc/_version.py")
    return match.group(1)


def _files(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or SKIP_DIRS.intersection(rel.parts) or path.suffix in SKIP_SUFFIXES:
            continue
        out.append(path)
    return out


def build_zip(out_dir: str | Path = REPO / "dist", *, version: str | None = None) -> Path:
    """Write ``<out_dir>/incubloc_qgis-<version>.zip`` and return its path."""
    version = version or package_version()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN}-{version}.zip"
    tmp = target.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in _files(PLUGIN_DIR):
            arcname = f"{PLUGIN}/{path.relative_to(PLUGIN_DIR).as_posix()}"
            data = path.read_bytes()
            if path.name == "metadata.txt":
                text = data.decode("utf-8")
                text = re.sub(r"(?m)^version=.*$", f"version={version}", text)
                data = text.encode("utf-8")
            info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(REPO / "dist"), metavar="OUTDIR",
                        help="folder for the zip (default: dist/)")
    args = parser.parse_args(argv)
    if not (PLUGIN_DIR / "metadata.txt").exists():
        print(f"error: {PLUGIN_DIR} has no metadata.txt", file=sys.stderr)
        return 2
    path = build_zip(args.output)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
