"""The study's named fields: every step writes what incubloc.study_fields lists, and a
missing or renamed field makes the report and the plots fail loudly, naming it."""

from __future__ import annotations

import copy

import pytest

from incubloc import study_fields
from incubloc.config import resolve_config
from incubloc.shells import plot
from incubloc.shells.report import render_html
from incubloc.study_fields import StudyFieldError
from incubloc.workflow import STEPS, run_study

pytestmark = pytest.mark.slow  # one small Nanjing study, about 25 s


@pytest.fixture(scope="module")
def study():
    cfg = resolve_config({"input": {"example": "nanjing"},
                          "stats": {"permutations": 99, "n_sim": 19, "ring_edge_sim": 99,
                                    "cell_sizes_m": [10000.0]},
                          "density": {"by_year": False, "cell_size_m": 4000.0}})
    return run_study(cfg)


def test_steps_are_the_documented_ones(study):
    assert tuple(s.name for s in STEPS) == study_fields.STEPS
    assert study.steps == [s for s in study_fields.STEPS if s != "factors"]


def test_every_written_field_is_listed_with_its_step(study):
    # Nanjing has every layer: each test, table and result lands where the list says.
    for kind, store, listed in (("test", study.tests, study_fields.TESTS),
                                ("table", study.tables, study_fields.TABLES),
                                ("result", study.results, study_fields.RESULTS)):
        assert set(store) <= set(listed), kind
        for name in store:
            assert listed[name] in study.steps
    assert set(study.tests) == {k for k, v in study_fields.TESTS.items() if v != "factors"}


def test_report_renders_from_the_named_fields(study):
    page = render_html(study, {}, embed_font=False)
    assert "Ring edge" in page and "Clark–Evans" in page and "Spearman ρ" in page


@pytest.mark.parametrize("remove", [
    ("tests", "ring_edge", None),
    ("tests", "tier_relation", "p_t"),
    ("tests", "clark_evans", "p_sim_clustered"),
    ("tests", "ripley", "p_sim"),
    ("tests", "global_moran", "z_norm"),
])
def test_a_removed_field_fails_the_report_loudly(study, remove):
    where, key, sub = remove
    broken = copy.copy(study)
    broken.tests = dict(study.tests)
    if sub is None:
        del broken.tests[key]
    else:
        broken.tests[key] = {k: v for k, v in study.tests[key].items() if k != sub}
    with pytest.raises(StudyFieldError, match=repr(sub or key)):
        render_html(broken, {}, embed_font=False)


def test_a_renamed_result_field_fails_the_plot_loudly(study):
    broken = copy.copy(study)
    broken.results = {k: v for k, v in study.results.items() if k != "centrography"}
    with pytest.raises(StudyFieldError, match="centrography"):
        plot.fig_sde(broken)


def test_a_misspelt_name_is_refused(study):
    with pytest.raises(StudyFieldError, match="no step writes"):
        study.test("ring_egde")


def test_a_step_that_did_not_run_gives_none(study):
    fresh = copy.copy(study)
    fresh.steps = ["classify"]
    fresh.tests = {}
    assert fresh.test("ring_edge") is None
    assert "Ring edge" not in render_html(fresh, {}, embed_font=False)
