"""Levers: a tiny sweep end to end (Python and CLI), resume, budget and config errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miaudit import ConfigError
from miaudit.levers import apply_levers, pareto_front, parse_levers, run_levers


def _config(tmp_path: Path, values: dict, **levers) -> dict:
    return {
        "data": {"kind": "digits", "max_examples": 400, "seed": 0},
        "model": {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {"max_iter": 200},
        },
        "game": {"n_references": 2, "n_targets": 2, "seed": 0},
        "attacks": ["loss", "lira_online"],
        "metrics": {"fprs": [0.01, 0.1]},
        "output": {"dir": str(tmp_path / "out")},
        "levers": {"values": values, **levers},
    }


def test_tiny_sweep_records_utility_and_risk(tmp_path):
    cfg = _config(tmp_path, {"model.params.C": [0.001, 1000.0], "train_size": [100, 200]})
    calls = []
    result = run_levers(cfg, jobs=1, on_point=calls.append)
    t = result.table
    assert len(t) == 4 and len(calls) == 4  # one at a time: 2 + 2 points
    for col in ("test_accuracy", "train_accuracy", "auc", "tpr@0.01", "tpr@0.01_ci_low", "epsilon_lower_bound"):
        assert col in t.columns
    strong = t[t["lever:model.params.C"] == 1000.0].iloc[0]
    weak = t[t["lever:model.params.C"] == 0.001].iloc[0]
    # the lever reached the recipe: the unregularised model fits its training set, the other cannot
    assert strong["train_accuracy"] == 1.0 and weak["train_accuracy"] < 0.8
    sizes = t.dropna(subset=["lever:train_size"])
    assert sorted(sizes["lever:train_size"]) == [100, 200]
    assert sizes["n_nonmembers"].tolist() == [2 * 100, 2 * 200]  # 2 targets x half of the pool
    paths = result.save(tmp_path / "report")
    data = json.loads(paths["levers.json"].read_text())
    assert data["mode"] == "one_at_a_time" and len(data["points"]) == 4
    html = paths["levers.html"].read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    assert pd.read_csv(paths["levers.csv"]).shape[0] == 4


def test_resume_reuses_finished_points(tmp_path, monkeypatch):
    cfg = _config(tmp_path, {"model.params.C": [0.01, 10.0]})
    first = run_levers(cfg, jobs=1).table
    import miaudit.audit as pipeline

    def boom(*a, **k):  # any re-training would call run_audit
        raise AssertionError("finished point was recomputed")

    monkeypatch.setattr(pipeline, "run_audit", boom)
    again = run_levers(cfg, jobs=1).table
    pd.testing.assert_frame_equal(first, again)


def test_budget_recommendations_and_pareto(tmp_path):
    cfg = _config(tmp_path, {"model.params.C": [0.001, 1000.0]})
    result = run_levers(cfg, jobs=1, budget="auc=0.99")
    recs = result.recommendations()
    assert len(recs) == 2 and recs["test_accuracy"].is_monotonic_decreasing
    assert len(result.recommendations("auc=0.0")) == 0
    df = pd.DataFrame({"tpr@0.01": [0.1, 0.2, 0.05, 0.3], "test_accuracy": [0.9, 0.95, 0.8, 0.85]})
    assert pareto_front(df, risk="tpr@0.01").tolist() == [True, True, True, False]


def test_grid_mode_and_dp_epsilon_mapping():
    sweep = parse_levers({"mode": "grid", "values": {"weight_decay": [0, 1e-3], "dp_epsilon": [1, "inf"]}},
                         model_kind="torch")
    points = sweep.points()
    assert len(points) == 4
    d = apply_levers({"model": {"kind": "torch", "epochs": 3}}, {"dp_epsilon": 4, "weight_decay": 1e-3}, model_kind="torch")
    assert d["model"]["dp"]["epsilon"] == 4.0 and d["model"]["weight_decay"] == 1e-3
    d = apply_levers({"model": {"kind": "torch", "dp": {"epsilon": 1}}}, {"dp_epsilon": np.inf}, model_kind="torch")
    assert "dp" not in d["model"]
    d = apply_levers({"model": {"kind": "sklearn", "params": {}}}, {"hidden": 32, "train_size": 500}, model_kind="sklearn")
    assert d["model"]["params"]["hidden_layer_sizes"] == [32] and d["game"]["pool_size"] == 1000


@pytest.mark.parametrize(
    "section, message",
    [
        (None, "missing"),
        ({"values": {"wd": [1]}}, "unknown lever 'wd'"),
        ({"values": {"dropout": [0.1]}}, "applies to model kind"),
        ({"values": {"weight_decay": []}}, "non-empty list"),
        ({"values": {"weight_decay": [0]}, "mode": "random"}, "mode: expected one of"),
        ({"values": {"weight_decay": [0]}, "repetitions": 0}, "repetitions"),
        ({"values": {"weight_decay": [0]}, "colour": 1}, "unknown key 'colour'"),
    ],
)
def test_levers_config_errors(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_levers(section, model_kind="sklearn")


def test_bad_point_fails_before_training(tmp_path):
    cfg = _config(tmp_path, {"game.n_references": [2, 3]})
    with pytest.raises(ConfigError, match="n_references"):
        run_levers(cfg, jobs=1)
    assert not (tmp_path / "out" / "cache").exists() or not any((tmp_path / "out" / "cache").rglob("*.npz"))


def test_cli_levers(tmp_path):
    from typer.testing import CliRunner

    from miaudit.cli import app

    out = (tmp_path / "out").as_posix()
    text = f"""
attacks = ["loss", "lira_online"]
[data]
kind = "digits"
max_examples = 400
[model]
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
params = {{ max_iter = 200 }}
[game]
n_references = 2
n_targets = 2
[metrics]
fprs = [0.01, 0.1]
[output]
dir = "{out}"
[levers.values]
"model.params.C" = [0.01, 100.0]
"""
    path = tmp_path / "levers.toml"
    path.write_text(text)
    res = CliRunner().invoke(app, ["levers", str(path), "--jobs", "1", "--budget", "auc=0.99"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "levers.html").exists()
    bad = CliRunner().invoke(app, ["levers", str(path), "--budget", "tpr<1"])
    assert bad.exit_code == 2


def test_a_setting_equal_to_an_earlier_one_keeps_its_own_label(tmp_path):
    # both levers at the base config's own value: two labels, one config, figures computed once
    cfg = _config(tmp_path, {"model.params.max_iter": [200], "game.n_references": [2]})
    t = run_levers(cfg, jobs=1).table
    assert len(t) == 2
    assert t.loc[0, "lever:model.params.max_iter"] == 200 and t.loc[1, "lever:game.n_references"] == 2
    assert t.loc[0, "point"] == t.loc[1, "point"]
    assert t.loc[0, "auc"] == t.loc[1, "auc"]
