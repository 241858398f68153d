"""levers.html reads at a glance (issue 11): Pareto labels that never overlap, tables with short headers and
readable figures (the browser test checks they fit the page at 1280 and 390 px)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from miaudit.levers._html import _table, pareto_labels, place_labels, risk_label


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_labels_placed_without_overlap_even_when_points_crowd() -> None:
    rng = np.random.default_rng(0)
    points = np.column_stack([200 + 10 * np.arange(8), 100 + rng.normal(scale=2, size=8)])  # 8 points 10 pt apart
    sizes = [(9.0, 7.5)] * 8
    offsets = place_labels(points, sizes, pad=0.0)
    boxes = []
    for (x, y), (w, h), (dx, dy) in zip(points, sizes, offsets):
        x0 = x + dx if dx >= 0 else x + dx - w
        y0 = y + dy if dy >= 0 else y + dy - h
        boxes.append((x0, y0, x0 + w, y0 + h))
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not _overlap(boxes[i], boxes[j]), (i, j, boxes[i], boxes[j])
        for k, (x, y) in enumerate(points):  # nor on any marker
            assert not _overlap(boxes[i], (x - 4, y - 4, x + 4, y + 4)), (i, k)
    # the old labels (all at +3,+3, full setting text) overlapped here
    assert offsets != [(4.0, 3.0)] * 8


def _summary() -> pd.DataFrame:
    return pd.DataFrame({
        "lever:model.params.C": [0.001, 1.0, None], "lever:train_size": [None, None, 300],
        "train_accuracy": [0.83, 1.0, 1.0], "test_accuracy": [0.78, 0.947, 0.947], "generalisation_gap": [0.05, 0.053, 0.053],
        "n_nonmembers": [600, 600, 600], "auc": [0.62, 0.68, 0.68], "advantage": [0.2, 0.27, 0.27],
        "tpr@0.001": [1e-4, None, None], "tpr@0.01": [0.03, 0.07, 0.07], "tpr@0.01_ci_low": [0.0, 0.0, 0.0],
        "epsilon_lower_bound": [0.067, 1.337, 1.337], "leakage_detected": [True, True, True],
        "pareto": [True, True, True], "repetitions": [1, 1, 1],
    })


def test_settings_at_one_point_share_one_label() -> None:
    assert pareto_labels(_summary(), "tpr@0.01") == {(0.78, 0.03): "1", (0.947, 0.07): "2, 3"}


def test_tables_short_headers_readable_figures() -> None:
    t = _table(_summary())
    assert t["columns"] == ["#", "model.params.C", "train_size", "train acc", "test acc", "gap", "non-members",
                            "AUC", "TPR @ 0.1%", "TPR @ 1%", "ε LB", "leakage detected", "Pareto"]
    assert t["rows"][0] == ["1", "0.001", "—", "0.830", "0.780", "0.050", "600", "0.620", "0.01%", "3.0%", "0.067",
                            "yes", "yes"]
    assert t["rows"][2][:3] == ["3", "—", "300"] and t["rows"][1][3] == "1.000"
    assert risk_label("tpr@0.001") == "TPR @ 0.1% FPR" and risk_label("auc") == "AUC"
