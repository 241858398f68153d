"""Audit config: TOML/YAML loading, defaults, and every error path (one ConfigError listing all problems)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from miaudit import ConfigError
from miaudit.config import AuditConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
LR = "sklearn.linear_model.LogisticRegression"

TOML = """
[data]
kind = "digits"

[model]
estimator = "sklearn.linear_model.LogisticRegression"
params = { max_iter = 100, C = 0.5 }
preprocessing = [{ step = "sklearn.preprocessing.StandardScaler", params = { with_mean = true } }]

[game]
pool_size = 200
n_references = 4
seed = 3

[attacks]
names = ["loss", "lira_online"]
params = { lira_online = { } }

[metrics]
fprs = [0.01, 0.1]
delta = 1e-6

[output]
dir = "out"
"""

YAML = """
data:
  kind: digits
model:
  estimator: sklearn.linear_model.LogisticRegression
  params: {max_iter: 100, C: 0.5}
  preprocessing:
    - step: sklearn.preprocessing.StandardScaler
      params: {with_mean: true}
game: {pool_size: 200, n_references: 4, seed: 3}
attacks:
  names: [loss, lira_online]
  params: {lira_online: {}}
metrics: {fprs: [0.01, 0.1], delta: 1.0e-6}
output: {dir: out}
"""


def _base(**sections):
    d = {"data": {"kind": "digits"}, "model": {"estimator": LR}, "game": {"n_references": 4}}
    d.update(sections)
    return d


def test_toml_and_yaml_give_the_same_config(tmp_path):
    (tmp_path / "a.toml").write_text(TOML)
    (tmp_path / "a.yaml").write_text(YAML)
    a, b = load_config(tmp_path / "a.toml"), load_config(tmp_path / "a.yaml")
    assert a.to_dict() == b.to_dict()
    assert a.game.pool_size == 200 and a.game.n_references == 4 and a.game.seed == 3
    assert a.game.effective_n_targets == 6  # min(models trained = n_references + 2, 8)
    assert a.game.n_models() == 6 and a.game.n_models(with_target=True) == 4
    assert a.attacks.names == ("loss", "lira_online")
    assert a.metrics.fprs == (0.01, 0.1) and a.metrics.delta == 1e-6
    assert a.output.dir == tmp_path / "out" and a.output.run_dir == tmp_path / "out" / "cache"
    assert a.settings().to_dict() == {"delta": 1e-6, "confidence": 0.95, "member_prior": 0.5,
                                      "fprs": [0.01, 0.1], "seed": a.game.seed}
    # to_dict is accepted again
    again = AuditConfig.from_dict(a.to_dict())
    assert again.to_dict() == a.to_dict()


def test_defaults():
    c = AuditConfig.from_dict({"data": {"kind": "digits"}})
    assert c.model.kind == "sklearn" and c.model.estimator.endswith("MLPClassifier")
    assert c.game.n_references == 16 and c.game.effective_n_targets == 8 and c.game.seed == 0
    assert c.attacks.names is None and c.target is None
    assert AuditConfig.from_dict(_base(attacks=[])).attacks.names is None
    assert AuditConfig.from_dict(_base(attacks=["rmia", "rmia"])).attacks.names == ("rmia",)


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.csv").write_text("a,label\n1,0\n2,1\n")
    cfg = tmp_path / "sub" / "c.toml"
    cfg.write_text('[data]\nkind = "csv"\npath = "t.csv"\nlabel = "label"\n[output]\ndir = "../o"\nrun_dir = "/tmp/x"\n')
    c = load_config(cfg)
    assert c.data.spec() == {"kind": "csv", "path": str(tmp_path / "sub" / "t.csv"), "label": "label"}
    assert c.output.dir == tmp_path / "o" and c.output.run_dir == Path("/tmp/x")


@pytest.mark.torch
def test_torch_kind_is_passed_through():
    pytest.importorskip("torch")
    c = AuditConfig.from_dict(_base(model={"kind": "torch", "model": "mlp", "epochs": 3}))
    assert c.model.kind == "torch" and dict(c.model.options) == {"model": "mlp", "epochs": 3}
    with pytest.raises(ConfigError, match=r"\[model\] queries and \[game\] queries are both set"):
        AuditConfig.from_dict(_base(model={"kind": "torch", "queries": ["hflip"]},
                                    game={"n_references": 4, "queries": ["numpy.fliplr"]}))


def test_examples_digits_loads():
    c = load_config(ROOT / "examples" / "digits_mlp.toml")
    assert c.data.kind == "digits" and c.game.n_references == 8


def test_examples_with_shared_data_load(shared_data):
    adult = load_config(ROOT / "examples" / "adult.yaml", data_path=shared_data / "adult" / "adult.csv")
    assert adult.data.group == "sex"
    assert load_config(ROOT / "examples" / "mnist.toml", data_path=shared_data / "mnist").game.pool_size == 5000


@pytest.mark.parametrize(
    ("d", "match"),
    [
        (_base(gme={}), r"unknown section 'gme'; valid sections: data, model, game"),
        (_base(game={"gme": 1}), r"unknown key 'gme' in \[game\]; valid keys: pool_size, n_references, n_targets, seed, queries"),
        (_base(game={"n_references": 3}), r"\[game\] n_references: expected an even integer >= 2 .*got 3; use 2 or 4"),
        (_base(game={"n_references": 0}), r"\[game\] n_references: expected an even integer >= 2 .*got 0; use 2 or more"),
        (_base(game={"n_references": "8"}), r"\[game\] n_references: expected an even integer >= 2, got string '8'"),
        (_base(game={"n_references": True}), r"\[game\] n_references: expected an even integer >= 2, got boolean True"),
        (_base(game={"n_references": 4, "pool_size": 3}), r"\[game\] pool_size: expected an integer >= 4"),
        (_base(game={"n_references": 4, "n_targets": 7}), r"\[game\] n_targets: expected an integer in \[1, n_references \+ 2 = 6\] \(the models trained\), got 7"),
        (_base(game={"n_references": 4, "seed": -1}), r"\[game\] seed: expected a non-negative integer, got integer -1"),
        (_base(game={"n_references": 4, "queries": "flip"}), r"\[game\] queries: expected a list of import paths"),
        (_base(game=[1]), r"\[game\] must be a table, got list"),
        ({"model": {"estimator": LR}}, r"missing section \[data\]"),
        (_base(data={"kind": "tiff"}), r"\[data\] kind: unknown dataset kind 'tiff'; expected one of: digits, csv"),
        (_base(data={"kind": 3}), r"\[data\] kind: expected one of"),
        (_base(data={"kind": "digits", "label": "y"}), r"unknown key 'label' in \[data\]; valid keys: kind, max_examples"),
        (_base(data={"kind": "csv", "path": "/no/such/file.csv"}), r"\[data\] path: '/no/such/file.csv' does not exist"),
        (_base(data={"kind": "csv"}), r"\[data\] path: missing for kind 'csv'"),
        (_base(data={"kind": "mnist"}), r"\[data\] path: missing for kind 'mnist'"),
        (_base(data={"kind": "npz", "path": 5}), r"\[data\] path: expected a path string, got integer 5"),
        (_base(data={"kind": "digits", "max_examples": -2}), r"\[data\] max_examples: expected a non-negative integer"),
        (_base(data={"kind": "digits", "name": 1}), r"\[data\] name: expected a string, got integer 1"),
        (_base(data={"kind": "digits", "group": 2}), r"\[data\] group: expected a column name \(string\), got integer 2"),
        (_base(model={"estimator": "sklearn.nope.Model"}), r"\[model\] estimator: cannot import module 'sklearn.nope'"),
        (_base(model={"estimator": "sklearn.preprocessing.StandardScaler"}), r"\[model\] estimator: .*has no fit and predict_proba/decision_function"),
        (_base(model={"estimator": LR, "params": {"max_itr": 3}}), r"\[model\] params: cannot build 'LogisticRegression'"),
        (_base(model={"estimator": LR, "params": 3}), r"\[model\] params: expected a table of estimator parameters, got integer 3"),
        (_base(model={"estimator": LR, "preprocessing": 5}), r"\[model\] preprocessing: expected 'auto', 'none' or a list"),
        (_base(model={"estimator": LR, "optimizer": "adam"}), r"unknown key 'optimizer' in \[model\]; valid keys: kind, estimator, params, preprocessing"),
        (_base(model={"kind": "keras"}), r"\[model\] kind: expected 'sklearn', 'torch' or 'causal_lm', got 'keras'"),
        (_base(model="mlp"), r"\[model\] must be a table, got string 'mlp'"),
        (_base(attacks=["lira"]), r"attacks: unknown attack 'lira'; valid names: .*lira_online"),
        (_base(attacks={"names": ["loss"], "param": {}}), r"unknown key 'param' in \[attacks\]; valid keys: names, params"),
        (_base(attacks={"names": "loss"}), r"attacks: expected a list of attack names, got 'loss'"),
        (_base(attacks={"params": {"nope": {}}}), r"\[attacks.params\] unknown attack 'nope'"),
        (_base(attacks={"params": {"rmia": 2}}), r"\[attacks\] params: expected a table of per-attack parameter tables"),
        (_base(attacks=3), r"attacks: expected a list of attack names or an \[attacks\] table, got integer 3"),
        (_base(metrics={"delta": 1.5}), r"\[metrics\] delta: expected a number in \[0, 1\), got number 1.5"),
        (_base(metrics={"confidence": 1}), r"\[metrics\] confidence: expected a number in \(0, 1\), got integer 1"),
        (_base(metrics={"member_prior": "half"}), r"\[metrics\] member_prior: expected a number in \(0, 1\)"),
        (_base(metrics={"fprs": []}), r"\[metrics\] fprs: expected a non-empty list of numbers in \(0, 1\)"),
        (_base(metrics={"fprs": [0.01, 2]}), r"\[metrics\] fprs: expected a non-empty list of numbers in \(0, 1\)"),
        (_base(metrics={"fprs": [float("nan")]}), r"\[metrics\] fprs: expected"),
        (_base(output={"dir": 3}), r"\[output\] dir: expected a folder path, got integer 3"),
        (_base(output={"folder": "x"}), r"unknown key 'folder' in \[output\]; valid keys: dir, run_dir"),
        (_base(target={"model": "/no/m.skops", "members": "/no/a.npy", "nonmembers": "/no/b.npy"}), r"\[target\] model: '/no/m.skops' does not exist"),
        (_base(target={"members": "/no/a.npy"}), r"\[target\] model: missing; add model ="),
        (_base(target={"model": "m.skops", "members": "a", "nonmembers": "b", "allow_pickle": "yes"}), r"\[target\] allow_pickle: expected true or false"),
        (_base(target={"model": "m.skops", "members": "a", "nonmembers": "b", "trusted": "x"}), r"\[target\] trusted: expected a list of type names"),
    ],
)
def test_config_errors(d, match):
    with pytest.raises(ConfigError, match=match) as info:
        AuditConfig.from_dict(d)
    assert "\n" not in str(info.value)


def test_every_problem_is_reported_at_once():
    d = {"data": {"kind": "tiff"}, "model": {"estimator": "x.Y"}, "game": {"n_references": 5, "gme": 1}, "metrics": {"delta": 2}}
    with pytest.raises(ConfigError, match=r"config has 5 problems: \(1\) unknown key 'gme' in \[game\].*\(5\) \[metrics\] delta") as info:
        AuditConfig.from_dict(d)
    msg = str(info.value)
    for part in ("n_references", "tiff", "'x'", "delta"):
        assert part in msg


def test_target_file_checks(tmp_path):
    for name in ("m.pkl", "m.bin", "a.npy", "b.npy"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"\[target\] model: 'm.pkl' is a pickle, which can run arbitrary code.*allow_pickle = true"):
        AuditConfig.from_dict(_base(target={"model": "m.pkl", "members": "a.npy", "nonmembers": "b.npy"}), base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"\[target\] model: expected a .skops file .* got 'm.bin'"):
        AuditConfig.from_dict(_base(target={"model": "m.bin", "members": "a.npy", "nonmembers": "b.npy"}), base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"\[target\] members: .* is a folder"):
        AuditConfig.from_dict(_base(target={"model": "m.pkl", "allow_pickle": True, "members": ".", "nonmembers": "b.npy"}), base_dir=tmp_path)
    c = AuditConfig.from_dict(_base(target={"model": "m.pkl", "allow_pickle": True, "members": "a.npy", "nonmembers": "b.npy"}),
                              base_dir=tmp_path)
    assert c.target is not None and c.target.allow_pickle and c.target.members == tmp_path / "a.npy"


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("c.toml", "[data\nkind = 1", r"config: 'c.toml' is not valid TOML \(.*line 1"),
        ("c.yaml", "data: [1, 2\nmodel: x", r"config: 'c.yaml' is not valid YAML at line \d+, column \d+"),
        ("c.yml", "- 1\n- 2", r"config .*c.yml: expected a table of sections \(data, model"),
        ("c.json", "{bad", r"config: 'c.json' is not valid JSON \(line 1"),
        ("c.ini", "[data]", r"config: expected a .toml, .yaml or .yml file, got 'c.ini'"),
        ("c.toml", b"\xff\xfe[data]", r"config: 'c.toml' is not UTF-8 text"),
        ("c.toml", '[data]\nkind = "digits"\n[game]\ngme = 2', r"config .*c.toml: unknown key 'gme' in \[game\]"),
    ],
)
def test_file_errors(tmp_path, name, content, match):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError, match=match):
        load_config(p)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"config: '.*nope.toml' does not exist; pass the path of a .toml or .yaml"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"config: '.*' is a folder; pass the .toml or .yaml file inside it"):
        load_config(tmp_path)


def test_empty_yaml_reports_missing_data(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("# nothing\n")
    with pytest.raises(ConfigError, match=re.escape("missing section [data]")):
        load_config(p)
