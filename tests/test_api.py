"""The public Python API behaves the way a notebook uses it: again and again.

A lazily exported function must never be shadowed by a submodule of the same name
(importing ``incubloc.x`` binds the attribute ``x`` of the package to the module),
the README's snippets and the example notebook must run twice in one interpreter,
and every public name the docs give must be importable from the path they give.
"""

from __future__ import annotations

import json
import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import incubloc
import incubloc.stats

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOTEBOOK = ROOT / "examples" / "nanjing.ipynb"
PACKAGES = (incubloc, incubloc.stats)


def _submodules(package) -> set[str]:
    return {m.name for m in pkgutil.iter_modules(package.__path__)}


def _exported(package) -> set[str]:
    return set(package.__all__) - {"__version__", "errors"}


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_no_exported_name_is_also_a_submodule(package) -> None:
    clash = _exported(package) & _submodules(package)
    assert not clash, f"{package.__name__} exports {sorted(clash)}, which are also submodules"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_exported_name_resolves(package) -> None:
    for name in _exported(package):
        assert getattr(package, name) is not None, name
        assert name in dir(package)


# The check runs in a fresh interpreter so that the import order is really the one named.
_ORDER_SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys, types
    order = sys.argv[1]
    import incubloc, incubloc.stats

    def import_all():
        for pkg in (incubloc, incubloc.stats):
            for m in pkgutil.iter_modules(pkg.__path__):
                try:
                    importlib.import_module(f"{pkg.__name__}.{m.name}")
                except ImportError:  # an optional extra that is not installed
                    pass

    if order == "modules-first":
        import_all()
    seen = {}
    for pkg in (incubloc, incubloc.stats):
        for name in pkg.__all__:
            seen[pkg.__name__, name] = getattr(pkg, name)
    import_all()
    import incubloc.workflow, incubloc.classification  # noqa: F401
    for (pkg_name, name), first in seen.items():
        pkg = sys.modules[pkg_name]
        for _ in range(3):
            again = getattr(pkg, name)
            if name != "errors":
                assert not isinstance(again, types.ModuleType), (pkg_name, name, again)
            assert again is first, (pkg_name, name, first, again)
    print("ok", len(seen))
    """
)


@pytest.mark.parametrize("order", ["modules-first", "modules-last"])
def test_exported_names_survive_any_import_order(order: str) -> None:
    proc = subprocess.run([sys.executable, "-c", _ORDER_SCRIPT, order], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n = int(proc.stdout.split()[-1])
    assert n == sum(len(p.__all__) for p in PACKAGES)


def _readme_snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_python_snippets() -> None:
    snippets = _readme_snippets()
    assert snippets and any("incubloc.classify(" in s for s in snippets)


@pytest.mark.slow
@pytest.mark.parametrize("first", ["import incubloc.workflow", "pass"], ids=["workflow-first", "plain"])
def test_readme_snippets_run_twice_in_one_interpreter(first: str, tmp_path: Path) -> None:
    """The README's Python, run twice in one interpreter (re-running a notebook cell)."""
    code = "\n".join(_readme_snippets())
    script = "\n".join([
        first,
        "import types",
        f"CODE = {code!r}",
        "for run in range(2):",
        "    ns = {}",
        "    exec(compile(CODE, 'README.md', 'exec'), ns)",
        "    assert not isinstance(ns['incubloc'].classify, types.ModuleType)",
        "    print('run', run, len(ns['result'].incubators))",
        "print('done')",
    ])
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.split("\n")
    n = len(incubloc.load_example("nanjing").incubators)
    assert f"run 0 {n}" in lines and f"run 1 {n}" in lines and "done" in lines


def _cell_output(value) -> str:
    """A stable text for what a notebook cell shows (figures by their titles and labels)."""
    from matplotlib.figure import Figure

    if isinstance(value, Figure):
        parts = [value.get_suptitle() if hasattr(value, "get_suptitle") else ""]
        for ax in value.axes:
            parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel(),
                      str(len(ax.patches)), str(len(ax.collections)), str(len(ax.lines))]
        return "Figure:" + "|".join(parts)
    return repr(value)


def _run_all(nb: dict, namespace: dict) -> list[str]:
    """Execute every code cell like Jupyter's "Run All" and record what each cell shows."""
    import ast

    import matplotlib.pyplot as plt

    outputs = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        src = "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
        tree = ast.parse(src)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, f"nanjing.ipynb[{i}]", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), f"nanjing.ipynb[{i}]", "eval"),
                         namespace)
            outputs.append(_cell_output(value))
        plt.close("all")
    return outputs


@pytest.mark.slow
def test_example_notebook_runs_twice_in_one_kernel(tmp_path: Path, monkeypatch) -> None:
    """"Run All" twice in the same kernel gives the same outputs, cell by cell."""
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "incubloc.classify(" in code and "incubloc.run_study(" in code
    namespace: dict = {"__name__": "__main__", "display": lambda *a, **k: None}
    first = _run_all(nb, namespace)
    second = _run_all(nb, namespace)
    assert len(first) >= 5
    assert first == second


def _documented_api() -> set[str]:
    """Dotted ``incubloc.…`` names in the README and docs/ that look like functions."""
    names = set()
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for m in re.finditer(r"\bincubloc(?:\.[A-Za-z_][A-Za-z0-9_]*)+", path.read_text("utf-8")):
            names.add(m.group(0).rstrip("."))
    return names


def test_every_documented_name_imports_from_its_path() -> None:
    import importlib

    missing = []
    for dotted in sorted(_documented_api()):
        parts = dotted.split(".")
        if parts[-1] in {"py", "toml", "md", "gpkg", "csv", "json"}:  # file names in prose
            continue
        obj = None
        # the longest importable module prefix, then attributes
        for k in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:k]))
            except ImportError:
                continue
            try:
                for attr in parts[k:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                obj = None
            break
        if obj is None:
            missing.append(dotted)
    assert not missing, f"documented but not importable: {missing}"


def test_help_lists_the_public_api() -> None:
    import pydoc

    text = pydoc.render_doc(incubloc, renderer=pydoc.plaintext)
    for name in _exported(incubloc):
        assert name in text, name
