"""Speed-related guarantees: light imports, identical results from the fast paths."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_cli_import_is_light():
    code = (
        "import sys, incubloc.cli\n"
        "heavy = [m for m in ('scipy.signal', 'matplotlib', 'geopandas', 'scipy') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr


def test_density_import_does_not_load_scipy_signal():
    proc = _python("import sys, incubloc.stats.density\n"
                   "assert 'scipy.signal' not in sys.modules\n")
    assert proc.returncode == 0, proc.stderr


def test_help_returns_within_a_second():
    # Wall-clock on a shared machine: one retry absorbs a scheduling hiccup.
    for attempt in range(2):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "incubloc.cli", "--help"],
                              capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        assert proc.returncode == 0 and "usage: incubloc" in proc.stdout
        if elapsed < 1.0:
            return
    pytest.fail(f"incubloc --help took {elapsed:.2f} s (limit 1 s)")
