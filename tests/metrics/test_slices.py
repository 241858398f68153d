from __future__ import annotations

import json

import numpy as np
import pytest

from miaudit._errors import InputError
from miaudit.metrics import auc_interval, auc_score, slice_metrics, tpr_at_fpr


def _game(seed, n=900):
    rng = np.random.default_rng(seed)
    m = rng.random(n) < 0.5
    return m, rng.normal(size=n) + 1.0 * m, rng.integers(0, 3, n)


def test_one_row_per_group_matching_the_metrics_on_the_subset():
    m, s, g = _game(0)
    df = slice_metrics(m, s, g, fprs=(0.01, 0.1))
    assert list(df["group"]) == [0, 1, 2]
    assert list(df.columns) == ["group", "n_members", "n_nonmembers", "auc", "auc_ci_low", "auc_ci_high",
                                "tpr@0.01", "tpr@0.01_ci_low", "tpr@0.01_ci_high",
                                "tpr@0.1", "tpr@0.1_ci_low", "tpr@0.1_ci_high", "note"]
    for row in df.itertuples(index=False):
        sel = g == row.group
        assert row.n_members == m[sel].sum() and row.n_nonmembers == (~m[sel]).sum()
        assert row.auc == auc_score(m[sel], s[sel])
        assert (row.auc_ci_low, row.auc_ci_high) == auc_interval(m[sel], s[sel])
        t = tpr_at_fpr(m[sel], s[sel], fpr=0.1)
        assert row._9 == t.tpr and row._10 == t.target_ci_low and row._11 == t.target_ci_high  # population interval
        assert row.note == ""


def test_degenerate_groups_get_none_and_a_note():
    m = np.array([1, 1, 0, 0, 1, 0, 1, 0, 1, 0], bool)
    s = np.arange(10, dtype=float)
    g = np.array(["a", "a", "b", "b", "c", "c", "c", "c", "c", "c"])
    df = slice_metrics(m, s, g, fprs=(0.1, 0.5), min_size=3)
    rows = {r["group"]: r for r in df.to_dict("records")}
    assert rows["a"]["auc"] is None and rows["a"]["note"] == "fewer than min_size=3 examples (2)"
    df = slice_metrics(m, s, g, fprs=(0.1, 0.5))
    rows = {r["group"]: r for r in df.to_dict("records")}
    assert rows["a"]["auc"] is None and rows["a"]["tpr@0.1"] is None and rows["a"]["note"] == "only members"
    assert rows["b"]["note"] == "only non-members" and rows["b"]["n_members"] == 0
    c = rows["c"]
    assert c["auc"] == auc_score(m[4:], s[4:]) and c["tpr@0.1"] is None and c["tpr@0.5"] is not None
    assert c["note"] == "tpr@0.1: needs at least 10 non-members to resolve FPR <= 0.1; have 3"
    json.dumps(df.to_dict("records"), allow_nan=False)


def test_groups_with_missing_and_mixed_values():
    m, s, _ = _game(1, n=40)
    g = np.array([None, "x"] * 20, dtype=object)
    df = slice_metrics(m, s, g)
    assert len(df) == 2 and set(df["n_members"] + df["n_nonmembers"]) == {20}
    g2 = np.array([1, "x"] * 20, dtype=object)  # incomparable: keeps first-seen order
    assert list(slice_metrics(m, s, g2)["group"]) == [1, "x"]


@pytest.mark.parametrize(
    "groups,kw,match",
    [
        (np.zeros(5), {}, r"groups: expected one group value per example, shape \(10,\), got shape \(5,\)"),
        (np.zeros((10, 2)), {}, r"groups: expected one group value per example"),
        (np.zeros(10), {"min_size": 0}, r"min_size: expected a positive integer"),
        (np.zeros(10), {"fprs": (2.0,)}, r"fprs: expected a number in \(0, 1\)"),
        (np.zeros(10), {"confidence": 2}, r"confidence: expected"),
    ],
)
def test_errors(groups, kw, match):
    m = np.array([1, 0] * 5, bool)
    with pytest.raises(InputError, match=match):
        slice_metrics(m, np.arange(10.0), groups, **kw)


def test_strata_combine_per_slice_like_the_headline_figures():
    from miaudit.metrics import evaluate_scores

    m, s, g = _game(1)
    st = np.arange(m.size) % 2
    df = slice_metrics(m, s, g, fprs=(0.1,), strata=st)
    for row in df.to_dict("records"):
        sel = g == row["group"]
        r = evaluate_scores(m[sel], s[sel], fprs=(0.1,), strata=st[sel])
        assert row["auc"] == r.auc and (row["auc_ci_low"], row["auc_ci_high"]) == r.auc_ci
        assert row["tpr@0.1"] == r.tpr_at_fpr[0].tpr
