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


# ------------------------------------------------------------- Ripley pair counts


def _clustered(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 10_000, (8, 2))
    xy = centres[rng.integers(0, 8, n)] + rng.normal(scale=400.0, size=(n, 2))
    # a lattice block adds exact ties at the thresholds
    g = np.arange(0.0, 1000.0, 100.0)
    lattice = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2) + 20_000.0
    return np.vstack([xy, lattice])


@pytest.mark.slow
def test_compiled_pair_counts_equal_numpy_path(monkeypatch):
    pytest.importorskip("numba")
    import numpy as np

    import incubloc.stats.pointpattern as pp

    xy = _clustered(4000)
    dist = np.array([100.0, 50.0, 200.0, 300.0, 141.4213562373095, 700.0, 1000.0])
    bound = np.random.default_rng(1).uniform(0, 1200.0, len(xy))
    monkeypatch.setattr(pp, "_COMPILED_KERNEL", None)
    assert pp._compiled_kernel(), "numba is installed: the compiled kernel must load"
    fast = pp._pair_counts(xy, dist), pp._pair_counts(xy, dist, bound)
    monkeypatch.setattr(pp, "_COMPILED_KERNEL", False)
    slow = pp._pair_counts(xy, dist), pp._pair_counts(xy, dist, bound)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    # and both equal the brute-force count (ordered pairs i != j with d <= r)
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    want = np.array([(d <= r).sum() for r in dist], dtype=float)
    np.testing.assert_array_equal(fast[0], want)


def test_numba_can_be_switched_off(monkeypatch):
    import incubloc.stats.pointpattern as pp

    monkeypatch.setenv("INCUBLOC_NO_NUMBA", "1")
    monkeypatch.setattr(pp, "_COMPILED_KERNEL", None)
    assert pp._compiled_kernel() is False
