"""Agreement with declared labels, and cross-tabulations."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from incubloc.agreement import Agreement, agreement, crosstab, normalize_labels
from incubloc.errors import InputError


def test_kappa_equals_sklearn_on_random_labels():
    rng = np.random.default_rng(42)
    labels = ["park_in_park", "standalone", "mixed"]
    for _ in range(5):
        a = rng.choice(labels, 200, p=[0.6, 0.3, 0.1])
        flip = rng.random(200) < 0.35
        b = np.where(flip, rng.choice(labels, 200), a)
        res = agreement(a, b)
        assert res.kappa == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
        assert res.accuracy == pytest.approx(np.mean(a == b))
        assert res.n == 200
        order = res.labels
        expected = confusion_matrix(a, b, labels=order)
        np.testing.assert_array_equal(res.confusion.to_numpy(), expected)


def test_kappa_by_hand():
    # 2×2 table [[20, 5], [10, 15]]: p_o = 0.7, p_e = (25·30 + 25·20) / 50² = 0.5, κ = 0.4
    declared = ["building"] * 25 + ["park"] * 25
    derived = ["building"] * 20 + ["park"] * 5 + ["building"] * 10 + ["park"] * 15
    res = agreement(declared, derived)
    assert res.confusion.loc["building", "building"] == 20
    assert res.confusion.loc["park", "building"] == 10
    assert res.accuracy == pytest.approx(0.7)
    assert res.kappa == pytest.approx(0.4)


def test_chinese_declared_labels_and_unknown_rows():
    declared = ["园中园型", "独立型", "混合型", None, "园中园", "Park in park"]
    derived = ["park_in_park", "standalone", "park_in_park", "standalone", "unclassified",
               "park_in_park"]
    res = agreement(declared, derived)
    assert res.n == 4 and res.n_excluded == 2
    assert res.labels == ["park_in_park", "standalone", "mixed"]
    assert res.confusion.loc["mixed", "park_in_park"] == 1
    assert res.confusion.loc["park_in_park", "park_in_park"] == 2
    assert normalize_labels(["楼宇式", "园区式", "混合式"]).tolist() == ["building", "park", "mixed"]
    kept_d = ["park_in_park", "standalone", "mixed", "park_in_park"]
    kept_g = ["park_in_park", "standalone", "park_in_park", "park_in_park"]
    assert res.kappa == pytest.approx(cohen_kappa_score(kept_d, kept_g))


def test_labels_argument_lists_unseen_labels():
    res = agreement(["building", "park"], ["building", "park"],
                    labels=["building", "park", "mixed"])
    assert res.confusion.shape == (3, 3)
    assert res.confusion.loc["mixed"].sum() == 0 and res.confusion["mixed"].sum() == 0
    assert res.kappa == pytest.approx(1.0)


def test_series_are_aligned_on_index():
    declared = pd.Series(["building", "park", "park"], index=[3, 1, 2])
    derived = pd.Series(["park", "park", "building"], index=[1, 2, 3])
    res = agreement(declared, derived)
    assert res.accuracy == 1.0 and res.n == 3


def test_length_mismatch_and_degenerate_cases():
    with pytest.raises(InputError, match="differ in length"):
        agreement(["park"], ["park", "building"])
    single = agreement(["park", "park"], ["park", "park"])
    assert single.accuracy == 1.0 and math.isnan(single.kappa)
    none = agreement([None], ["park"])
    assert none.n == 0 and math.isnan(none.kappa) and math.isnan(none.accuracy)


def test_to_dict_and_html():
    res = agreement(["building", "park", "park"], ["building", "building", "park"])
    assert isinstance(res, Agreement)
    d = res.to_dict()
    json.dumps(d)
    assert d["n"] == 3 and d["confusion"]["park"]["building"] == 1
    assert d["kappa"] == pytest.approx(cohen_kappa_score(["b", "p", "p"], ["b", "b", "p"]))
    html = res._repr_html_()
    assert "<table" in html and "κ" in html
    assert agreement(["park"], ["park"]).to_dict()["kappa"] is None


def _classified():
    return pd.DataFrame(
        {
            "relation": ["park_in_park", "park_in_park", "standalone", "mixed", "park_in_park"],
            "layout": ["park", "park", "building", "mixed", None],
            "ring": ["core", "inner_suburb", "core", "core", "outer_suburb"],
            "city": ["Nanjing", "Nanjing", "Zhenjiang", "Nanjing", "Yangzhou"],
        }
    )


def test_crosstab_counts_with_all_categories():
    df = _classified()
    t = crosstab(df, "relation", "ring")
    assert t.index.tolist() == ["park_in_park", "standalone", "mixed"]
    assert t.columns.tolist() == ["core", "inner_suburb", "outer_suburb"]
    assert t.loc["park_in_park"].tolist() == [1, 1, 1]
    assert t.to_numpy().sum() == 5
    # A ring with no incubator still appears.
    t2 = crosstab(df.iloc[:1], "relation", "ring")
    assert t2.shape == (3, 3) and t2.to_numpy().sum() == 1
    # Missing layout counted as unclassified.
    lc = crosstab(df, "layout", "city")
    assert lc.index.tolist() == ["building", "park", "mixed", "unclassified"]
    assert lc.columns.tolist() == ["Nanjing", "Yangzhou", "Zhenjiang"]
    assert lc.loc["unclassified", "Yangzhou"] == 1


def test_crosstab_shares():
    df = _classified()
    rows = crosstab(df, "relation", "city", normalize="index")
    np.testing.assert_allclose(rows.sum(axis=1).to_numpy(), [1.0, 1.0, 1.0])
    assert rows.loc["park_in_park", "Nanjing"] == pytest.approx(2 / 3)
    tot = crosstab(df, "layout", "ring", normalize="all")
    assert tot.to_numpy().sum() == pytest.approx(1.0)
    m = crosstab(df, "relation", "ring", margins=True)
    assert m.loc["total", "total"] == 5
    with pytest.raises(InputError, match="not in the table"):
        crosstab(df, "relation", "nope")
    with pytest.raises(InputError, match="normalize"):
        crosstab(df, "relation", "ring", normalize="rows")
