"""The quality gate runs inside the test suite: ruff must be clean."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    if shutil.which("ruff") is None:
        pytest.skip("ruff not installed (it is part of the [test] extra)")
    dirs = [d for d in ("incubloc", "tests", "scripts", "benchmarks") if (ROOT / d).exists()]
    proc = subprocess.run(["ruff", "check", *dirs], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_version_flag():
    proc = subprocess.run(
        [sys.executable, "-m", "incubloc.cli", "--version"], capture_output=True, text=True
    )
    from incubloc import __version__

    assert proc.returncode == 0
    assert proc.stdout.strip() == f"incubloc {__version__}"


def test_top_level_api_is_lazy_and_complete():
    code = (
        "import sys, incubloc\n"
        "assert 'geopandas' not in sys.modules, 'import incubloc must stay light'\n"
        "for name in incubloc.__all__:\n"
        "    getattr(incubloc, name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
