"""The full game: config -> pool -> balanced design -> cached training -> evaluate_game."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from miaudit import ConfigError, InputError
from miaudit.audit import game_seeds, load_target_model, prepare_audit, run_audit, run_audit_with_target
from miaudit.config import AuditConfig
from miaudit.training import SklearnRecipe

LR = "sklearn.linear_model.LogisticRegression"
ATTACKS = ["loss", "lira_online"]


def _config(tmp_path, **over):
    d = {
        "data": {"kind": "digits"},
        "model": {"estimator": LR, "params": {"max_iter": 200}},
        "game": {"pool_size": 200, "n_references": 2, "seed": 1},  # 2 references per target: 4 models
        "attacks": ATTACKS,
        "output": {"dir": str(tmp_path / "out")},
    }
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    return AuditConfig.from_dict(d)


@pytest.fixture
def count_train(monkeypatch):
    calls: list[int] = []
    original = SklearnRecipe.train

    def train(self, X, y, *, seed):
        calls.append(seed)
        return original(self, X, y, seed=seed)

    monkeypatch.setattr(SklearnRecipe, "train", train)
    return calls


def test_prepare_uses_a_seeded_pool_and_the_balanced_design(tmp_path):
    p = prepare_audit(_config(tmp_path))
    assert p.is_member.shape == (4, 200) and p.X.shape == (200, 64)
    assert np.all(p.is_member.sum(axis=0) == 2)  # every example IN for exactly K/2 models
    assert np.all(np.abs(p.is_member.sum(axis=1) - 100) <= 1)
    assert np.all(np.diff(p.pool_index) > 0) and p.pool_index.max() < 1797
    q = prepare_audit(_config(tmp_path))
    assert np.array_equal(p.pool_index, q.pool_index) and np.array_equal(p.is_member, q.is_member)
    assert p.seeds == q.seeds and len(set(p.seeds)) == 4
    r = prepare_audit(_config(tmp_path, game={"seed": 2}))
    assert not np.array_equal(p.pool_index, r.pool_index)
    assert p.targets == [0, 1, 2, 3]
    assert prepare_audit(_config(tmp_path, game={"pool_size": None})).X.shape[0] == 1797


def test_game_seeds_are_independent_streams_and_prefix_stable():
    _, _, s4 = game_seeds(0, 4)
    _, _, s8 = game_seeds(0, 8)
    assert s4 == s8[:4]
    with pytest.raises(InputError, match=r"seed: expected an integer in \[0, 2\*\*32\), got -1"):
        game_seeds(-1, 4)


def test_run_audit_end_to_end_and_cache_reuse(tmp_path, count_train):
    cfg = _config(tmp_path)
    result = run_audit(cfg, jobs=1)
    assert len(count_train) == 4
    g = result.game
    assert g["source"] == "audit" and g["dataset"] == "digits" and g["seed"] == 1
    assert g["n_examples"] == 200 and g["n_models"] == 4 and g["n_targets"] == 4
    assert g["model"]["estimator"] == LR
    assert g["train_accuracy"] > g["test_accuracy"] > 0.5
    assert set(result.metrics) == set(ATTACKS)
    assert len(list(cfg.output.run_dir.glob("models/*.npz"))) == 4
    # a second run trains nothing and gives the same figures
    again = run_audit(cfg, jobs=1)
    assert len(count_train) == 4
    assert again.metrics["lira_online"].auc == result.metrics["lira_online"].auc
    assert g["n_references"] == 2 and result.decision is not None and result.decision.n_targets == 4
    pd.testing.assert_frame_equal(again.scores, result.scores)
    # more targets evaluated: no retraining; a new seed retrains everything
    run_audit(_config(tmp_path, game={"n_targets": 2}), jobs=1)
    assert len(count_train) == 4
    run_audit(_config(tmp_path, game={"seed": 9}), jobs=1)
    assert len(count_train) == 8


def test_run_audit_from_a_file(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text(
        f'[data]\nkind = "digits"\nmax_examples = 120\n[model]\nestimator = "{LR}"\n[game]\nn_references = 2\n'
        'n_targets = 1\nattacks = ["loss"]\n'
    )
    with pytest.raises(ConfigError, match=r"unknown key 'attacks' in \[game\]"):
        run_audit(cfg)
    cfg.write_text(f'attacks = ["loss"]\n[data]\nkind = "digits"\nmax_examples = 120\n[model]\nestimator = "{LR}"\n'
                   '[game]\nn_references = 2\nn_targets = 1\n')
    result = run_audit(cfg, jobs=1)
    assert result.game["n_targets"] == 1 and result.game["n_examples"] == 120
    assert (tmp_path / "miaudit-report" / "cache" / "models").is_dir()


def test_pool_errors_before_training(tmp_path, count_train):
    with pytest.raises(ConfigError, match=r"\[game\] pool_size: 5000 is larger than the dataset \(1797 examples in 'digits'\)"):
        run_audit(_config(tmp_path, game={"pool_size": 5000}))
    with pytest.raises(ConfigError, match=r"\[game\] pool_size: 12 is too small for the split: each model trains on 6 examples, fewer than the 10 classes"):
        run_audit(_config(tmp_path, game={"pool_size": 12}))
    assert count_train == []


def _csv(tmp_path, n=120):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "region": rng.choice(["n", "s"], n)})
    df["label"] = (df["a"] + 0.3 * rng.normal(size=n) > 0).astype(int)
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    return path


def test_group_column_becomes_slices(tmp_path):
    path = _csv(tmp_path)
    cfg = _config(tmp_path, data={"kind": "csv", "path": str(path), "label": "label", "group": "region"},
                  game={"pool_size": None, "n_targets": 2})
    p = prepare_audit(cfg)
    assert list(p.X.columns) == ["a", "b"] and set(p.groups) == {"n", "s"}
    result = run_audit(cfg, jobs=1)
    assert "group" in result.slices and "group" in result.scores.columns
    bad = _config(tmp_path, data={"kind": "csv", "path": str(path), "label": "label", "group": "zone"})
    with pytest.raises(ConfigError, match=r"\[data\] group: column 'zone' not found; available columns: a, b, region"):
        prepare_audit(bad)


def test_group_on_a_numeric_table(tmp_path):
    df = pd.DataFrame({"a": np.arange(40.0), "g": [0, 1] * 20, "label": [0, 0, 1, 1] * 10})
    path = tmp_path / "n.csv"
    df.to_csv(path, index=False)
    p = prepare_audit(_config(tmp_path, data={"kind": "csv", "path": str(path), "label": "label", "group": "g"},
                              game={"pool_size": None}))
    assert p.X.shape == (40, 1) and set(p.groups.tolist()) == {0.0, 1.0}


def _target_split():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:100] / 16, y[:100], X[100:200] / 16, y[100:200]


def test_run_audit_with_target(tmp_path):
    Xm, ym, Xn, yn = _target_split()
    recipe = SklearnRecipe(LR, {"max_iter": 200}, n_classes=10)
    target = recipe.train(Xm, ym, seed=123)
    result = run_audit_with_target(recipe, target, Xm, ym, Xn, yn, n_references=4, seed=0, run_dir=tmp_path,
                                   jobs=1, attacks=ATTACKS)
    g = result.game
    assert g["source"] == "audit" and g["target"] == "user" and g["n_references"] == 4 and g["n_examples"] == 200
    assert g["n_members"] == 100 and g["train_accuracy"] == 1.0
    assert 0.5 < g["reference_test_accuracy"] < g["reference_train_accuracy"]
    assert set(result.metrics) == set(ATTACKS)
    assert result.metrics["lira_online"].auc > 0.6
    assert result.warnings == [] and result.game["reference_design"]["count_dependence_p"] == 1.0
    with pytest.raises(InputError, match=r"n_references: expected an even number .*got 3; use 2 or 4"):
        run_audit_with_target(recipe, target, Xm, ym, Xn, yn, n_references=3, run_dir=tmp_path)
    with pytest.raises(InputError, match=r"X_members and y_members: inconsistent numbers of examples \[100, 99\]"):
        run_audit_with_target(recipe, target, Xm, ym[:-1], Xn, yn, n_references=4, run_dir=tmp_path)
    with pytest.raises(InputError, match=r"X_nonmembers: expected at least one example"):
        run_audit_with_target(recipe, target, Xm, ym, Xn[:0], yn[:0], n_references=4, run_dir=tmp_path)
    with pytest.raises(InputError, match=r"y: expected integer class labels in \[0, 10\), got dtype float64"):
        run_audit_with_target(recipe, target, Xm, ym * 1.0, Xn, yn, n_references=4, run_dir=tmp_path)


def _target_files(tmp_path, fmt="skops"):
    Xm, ym, _, _ = _target_split()
    recipe = SklearnRecipe(LR, {"max_iter": 200}, n_classes=10)
    target = recipe.train(Xm, ym, seed=5)
    if fmt == "skops":
        import skops.io as sio

        sio.dump(target, tmp_path / "target.skops")
    else:
        import joblib

        joblib.dump(target, tmp_path / "target.pkl")
    np.save(tmp_path / "members.npy", np.arange(100))
    np.savetxt(tmp_path / "nonmembers.txt", np.arange(100, 200), fmt="%d")
    return target


def test_config_with_a_skops_target(tmp_path):
    pytest.importorskip("skops")
    _target_files(tmp_path)
    cfg = _config(tmp_path, target={"model": str(tmp_path / "target.skops"), "members": str(tmp_path / "members.npy"),
                                    "nonmembers": str(tmp_path / "nonmembers.txt")})
    result = run_audit(cfg, jobs=1)
    assert result.game["target"] == "user" and result.game["n_examples"] == 200 and result.game["n_members"] == 100
    assert result.game["target_path"].endswith("target.skops")


class Custom:
    """A type skops does not trust by default."""

    def __init__(self) -> None:
        self.a = 1


def test_untrusted_skops_types_are_refused(tmp_path):
    sio = pytest.importorskip("skops.io")

    sio.dump(Custom(), tmp_path / "t.skops")
    untrusted = sio.get_untrusted_types(file=tmp_path / "t.skops")
    assert untrusted
    cfg = AuditConfig.from_dict({"data": {"kind": "digits"},
                                 "target": {"model": str(tmp_path / "t.skops"), "members": str(tmp_path / "t.skops"),
                                            "nonmembers": str(tmp_path / "t.skops")}})
    with pytest.raises(ConfigError, match=r"\[target\] model: 't.skops' contains types skops does not trust by default: .*add them to \[target\] trusted"):
        load_target_model(cfg.target)
    trusted = AuditConfig.from_dict({"data": {"kind": "digits"},
                                     "target": {"model": str(tmp_path / "t.skops"), "members": str(tmp_path / "t.skops"),
                                                "nonmembers": str(tmp_path / "t.skops"), "trusted": list(untrusted)}})
    assert isinstance(load_target_model(trusted.target), Custom)
    (tmp_path / "bad.skops").write_bytes(b"not a zip")
    bad = AuditConfig.from_dict({"data": {"kind": "digits"},
                                 "target": {"model": str(tmp_path / "bad.skops"), "members": str(tmp_path / "t.skops"),
                                            "nonmembers": str(tmp_path / "t.skops")}})
    with pytest.raises(ConfigError, match=r"\[target\] model: 'bad.skops' is not a readable skops file"):
        load_target_model(bad.target)


def test_pickle_target_needs_the_opt_in_and_warns(tmp_path):
    target = _target_files(tmp_path, fmt="pkl")
    tcfg = {"model": str(tmp_path / "target.pkl"), "members": str(tmp_path / "members.npy"),
            "nonmembers": str(tmp_path / "nonmembers.txt"), "allow_pickle": True}
    cfg = AuditConfig.from_dict({"data": {"kind": "digits"}, "target": tcfg})
    with pytest.warns(UserWarning, match=r"loading 'target.pkl' with pickle because allow_pickle = true"):
        loaded = load_target_model(cfg.target)
    assert np.array_equal(loaded.predict(np.zeros((1, 64))), target.predict(np.zeros((1, 64))))


@pytest.mark.parametrize(
    ("members", "nonmembers", "match"),
    [
        (np.arange(100), np.arange(50, 150), r"\[target\] members and nonmembers share 50 rows \(first: 50\)"),
        (np.array([0, 5000]), np.arange(100, 200), r"\[target\] members: indices must lie in \[0, 1797\)"),
        (np.array([0, 0, 1]), np.arange(100, 200), r"\[target\] members: 'm.npy' repeats indices"),
        (np.array([0.5, 1]), np.arange(100, 200), r"\[target\] members: 'm.npy' must hold integer row indices"),
        (np.array([], dtype=int), np.arange(100, 200), r"\[target\] members: 'm.npy' holds no indices"),
    ],
)
def test_index_file_errors(tmp_path, members, nonmembers, match):
    pytest.importorskip("skops")
    _target_files(tmp_path)
    np.save(tmp_path / "m.npy", members)
    np.save(tmp_path / "n.npy", nonmembers)
    cfg = _config(tmp_path, target={"model": str(tmp_path / "target.skops"), "members": str(tmp_path / "m.npy"),
                                    "nonmembers": str(tmp_path / "n.npy")})
    with pytest.raises(ConfigError, match=match):
        run_audit(cfg, jobs=1)


def test_unreadable_index_file(tmp_path):
    pytest.importorskip("skops")
    _target_files(tmp_path)
    (tmp_path / "m.csv").write_text("a,b\nx,y\n")
    cfg = _config(tmp_path, target={"model": str(tmp_path / "target.skops"), "members": str(tmp_path / "m.csv"),
                                    "nonmembers": str(tmp_path / "nonmembers.txt")})
    with pytest.raises(ConfigError, match=r"\[target\] members: cannot read indices from 'm.csv'"):
        run_audit(cfg, jobs=1)


def test_data_loader_errors_are_config_errors(tmp_path):
    path = _csv(tmp_path)
    cfg = _config(tmp_path, data={"kind": "csv", "path": str(path), "label": "no_such_column"})
    with pytest.raises(ConfigError, match=r"data.label: column 'no_such_column' not found"):
        prepare_audit(cfg)


@pytest.mark.torch
@pytest.mark.slow
def test_torch_recipe_through_the_config(tmp_path):
    pytest.importorskip("torch")
    cfg = AuditConfig.from_dict({
        "data": {"kind": "digits", "max_examples": 120},
        "model": {"kind": "torch", "model": "mlp", "epochs": 2, "batch_size": 32},
        "game": {"n_references": 2, "n_targets": 1, "seed": 0},
        "attacks": ["loss"],
        "output": {"dir": str(tmp_path / "out")},
    })
    result = run_audit(cfg, jobs=1)
    assert result.game["model"]["kind"] == "torch" and result.game["n_models"] == 2
    assert len(list(cfg.output.run_dir.glob("models/*.npz"))) == 2


@pytest.mark.torch
def test_torch_config_is_checked_before_training():
    pytest.importorskip("torch")
    with pytest.raises(ConfigError, match=r"\[model\] n_classes: not a config key"):
        AuditConfig.from_dict({"data": {"kind": "digits"}, "model": {"kind": "torch", "n_classes": 3}})
    with pytest.raises(ConfigError, match=r"unknown key 'modle' for kind = 'torch'"):
        AuditConfig.from_dict({"data": {"kind": "digits"}, "model": {"kind": "torch", "modle": "mlp"}})


def test_results_do_not_depend_on_jobs(tmp_path):
    a = run_audit(_config(tmp_path / "a"), jobs=1)
    b = run_audit(_config(tmp_path / "b"), jobs=2, mp_context="fork")
    ja, jb = a.to_json(), b.to_json()
    for j in (ja, jb):
        j.pop("created", None)
    assert ja == jb
    pd.testing.assert_frame_equal(a.scores, b.scores)


def test_show_features_only_when_configured(tmp_path):
    from miaudit.audit import run_audit
    from miaudit.config import AuditConfig

    base = {
        "data": {"kind": "digits", "max_examples": 200},
        "model": {"kind": "sklearn", "estimator": "sklearn.linear_model.LogisticRegression",
                  "params": {"max_iter": 100}},
        "game": {"n_references": 2, "n_targets": 2},
        "attacks": ["loss"],
        "output": {"dir": str(tmp_path / "o")},
    }
    plain = run_audit(AuditConfig.from_dict(base), jobs=1)
    assert not any(c.startswith("feature:") for c in plain.exposures.columns)
    base["output"]["show_features"] = True
    shown = run_audit(AuditConfig.from_dict(base), jobs=1)
    assert any(c.startswith("feature:") for c in shown.exposures.columns)
