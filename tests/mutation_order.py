"""Test order for mutation runs only (``[tool.mutmut]`` in pyproject.toml; docs/testing.md).

mutmut runs the tests that reach a mutated function with ``pytest -x``, so a mutant
costs the time until the first failing test. The scale modules' own tests are small
and aimed; the end-to-end tests of ``test_known_classes.py`` (the whole sample, the
CLI) are slow. Running the former first makes a killed mutant cheap; a surviving one
still runs every selected test.
"""

_FIRST = ("test_relation.py", "test_layout.py", "test_region.py", "test_rings.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return _FIRST.index(name) if name in _FIRST else len(_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order
