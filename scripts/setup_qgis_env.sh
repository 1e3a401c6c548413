#!/usr/bin/env bash
# Install Debian's QGIS 3.22 and a Python venv in which incubloc runs inside QGIS.
#
# Debian/Ubuntu only; root for the apt step (skipped when the packages are there).
# Idempotent: a second run only checks the venv and exits.
#
#   scripts/setup_qgis_env.sh            # venv in $INCUBLOC_QGIS_VENV (default below)
#
# Why it is built this way (docs/qgis.md has the details):
# - qgis_process and the desktop app load Debian's GEOS / PROJ / GDAL into the global
#   symbol scope. PyPI wheels of shapely, pyproj and pyogrio bundle their own copies
#   with the same symbol names, which corrupts results and memory. Those three are
#   compiled here from source against Debian's libraries; rasterio comes from Debian.
# - numpy stays at Debian's 1.24 (Debian's osgeo.gdal_array and matplotlib need 1.x).
# - The venv is made from /usr/bin/python3 with --system-site-packages so it sees
#   Debian's qgis, PyQt5, numpy, scipy and rasterio.
#
# Environment:
#   INCUBLOC_QGIS_VENV        venv folder (default ~/.cache/incubloc-qgis-venv)
#   INCUBLOC_QGIS_WHEELS      cache of the locally built wheels (default
#                             ~/.cache/incubloc-qgis-wheels); reruns install from it
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${INCUBLOC_QGIS_VENV:-$HOME/.cache/incubloc-qgis-venv}"
WHEELS="${INCUBLOC_QGIS_WHEELS:-$HOME/.cache/incubloc-qgis-wheels}"
STAMP="$VENV/.incubloc-setup"

APT_PACKAGES=(qgis python3-qgis qgis-providers python3-venv python3-dev build-essential
  pkg-config proj-bin libgeos-dev libproj-dev libgdal-dev python3-numpy python3-scipy
  python3-rasterio)
# Versions that build against bookworm's GEOS 3.11 / PROJ 9.1 / GDAL 3.6. numpy is
# pinned to the distribution's own (read after apt): 1.24.2 on bookworm.
SHAPELY=2.1.2 PYPROJ=3.6.1 PYOGRIO=0.13.0

log() { printf '[setup_qgis_env] %s\n' "$*" >&2; }
t0=$SECONDS

# Stamp: what this venv was built from. Same stamp and a working venv -> nothing to do.
want_stamp="$(cat "${BASH_SOURCE[0]}" "$REPO/pyproject.toml" | sha256sum | cut -c1-16) $REPO"

check_venv() {
  [[ -x /usr/bin/qgis_process.bin && -x "$VENV/bin/python" ]] || return 1
  # The venv must use the system's GEOS / PROJ / GDAL and numpy, and this checkout.
  "$VENV/bin/python" - "$REPO" "$(geos-config --version)" "$(pkg-config --modversion proj)" \
    "$(gdal-config --version)" <<'EOF'
import sys
from pathlib import Path
import numpy, pyogrio, pyproj, rasterio, shapely
import incubloc
repo, geos, proj, gdal = sys.argv[1:5]
assert numpy.__file__.startswith("/usr/lib/python3/"), numpy.__file__
assert ".".join(map(str, shapely.geos_version)) == geos.split("-")[0], (shapely.geos_version, geos)
assert pyproj.proj_version_str == proj, (pyproj.proj_version_str, proj)
assert pyogrio.__gdal_version_string__ == gdal, (pyogrio.__gdal_version_string__, gdal)
assert rasterio.__gdal_version__ == gdal, (rasterio.__gdal_version__, gdal)
assert Path(incubloc.__file__).resolve().is_relative_to(Path(repo).resolve()), incubloc.__file__
EOF
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] && check_venv 2>/dev/null; then
  log "up to date: $VENV"
  exit 0
fi

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  log "needs Debian or Ubuntu (dpkg, apt-get)"; exit 1
fi

# 1. Debian packages (skipped when all are installed; only this step needs root).
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    log "missing Debian packages (${missing[*]}): run as root, or install them first"
    exit 1
  fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  log "apt done after $((SECONDS - t0)) s"
fi

# 2. The venv.
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check --no-input -q)
# pip's output only when it fails.
run_pip() { "${PIP[@]}" "$@" >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; return 1; }; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
NUMPY="$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')"
printf 'numpy==%s\nshapely==%s\npyproj==%s\npyogrio==%s\n' \
  "$NUMPY" "$SHAPELY" "$PYPROJ" "$PYOGRIO" > "$work/pins.txt"
printf 'cython<3.1\n' > "$work/build-pins.txt"

# 3. shapely, pyproj, pyogrio built from source against Debian's libraries, cached.
tag="$("$PY" -c 'import sys, sysconfig; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-{sysconfig.get_platform()}")')"
cache="$WHEELS/$tag-geos$(geos-config --version)-proj$(pkg-config --modversion proj)-gdal$(gdal-config --version)"
mkdir -p "$cache"
wheels=()
for spec in "shapely==$SHAPELY" "pyproj==$PYPROJ" "pyogrio==$PYOGRIO"; do
  name="${spec%%==*}" version="${spec##*==}"
  whl=$(ls "$cache/$name-$version-"*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$whl" ]]; then
    log "building $spec from source (no cached wheel)"
    # pyproj 3.6 does not build with Cython 3.1; a -c file does not reach pip's
    # isolated build environment, PIP_CONSTRAINT does.
    if [[ $name == pyproj ]]; then
      PIP_CONSTRAINT="$work/build-pins.txt" run_pip wheel --no-deps --no-binary "$name" -w "$cache" "$spec"
    else
      run_pip wheel --no-deps --no-binary "$name" -w "$cache" "$spec"
    fi
    whl=$(ls "$cache/$name-$version-"*.whl | head -n1)
  fi
  wheels+=("$whl")
done
run_pip install -c "$work/pins.txt" "${wheels[@]}"

# 4. incubloc itself (editable, with the test extra), on the pinned stack.
log "installing incubloc (editable) and its dependencies"
run_pip install -c "$work/pins.txt" -e "$REPO[test]"
# Debian's matplotlib 3.6 (a QGIS dependency) registers its mpl_toolkits from a .pth
# file at start-up, shadowing the one of the newer matplotlib in the venv (no 3-D axes,
# a warning on every pyplot import). Make the venv's a regular package imported first.
site="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
if [[ -d "$site/mpl_toolkits" ]]; then
  [[ -e "$site/mpl_toolkits/__init__.py" ]] || : > "$site/mpl_toolkits/__init__.py"
  echo "import mpl_toolkits" > "$site/incubloc-mpl-toolkits.pth"
fi

check_venv
echo "$want_stamp" > "$STAMP"
log "ready after $((SECONDS - t0)) s: $VENV"
