"""Label-only access (issue 10, sections 2 and 3): the query machinery, label bundles, the label-only attacks
on known worlds and null worlds, ``[attacks] access = "label"`` end to end (deterministic), and targets behind
a callable / torch module with batches and a query budget, with their bad inputs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from miaudit._errors import InputError
from miaudit.api import audit_model
from miaudit.attacks import get_attack
from miaudit.attacks.registry import attack_access
from miaudit.cli import app
from miaudit.data import SignalBundle, load_bundle, save_bundle
from miaudit.metrics import decide_leakage
from miaudit.models import LabelQuerySpec, QueryBudgetError, QueryModel, label_queries

from ._worlds import as_labels, auc, make_world

LABEL_ATTACKS = ["gap", "augment_count", "boundary_distance", "label_augment", "label_boundary"]


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:400], y[:400]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return LogisticRegression(max_iter=300).fit(X[:200], y[:200])


# ------------------------------------------------------------------------------------------ query machinery


@pytest.mark.parametrize("shape", ["table", "frame", "image"])
def test_label_queries_are_deterministic_and_counted(digits, fitted, shape):
    X, _ = digits
    X = X[:60]
    spec = LabelQuerySpec(augmentations=5, boundary_queries=64, shift=1, seed=3)
    if shape == "frame":
        X = pd.DataFrame(X, columns=[f"f{j}" for j in range(64)]).assign(colour=["a", "b"] * 30)

        def predict(Z):
            return fitted.predict(Z.drop(columns=["colour"]).to_numpy())
    elif shape == "image":
        X = X.reshape(-1, 8, 8)

        def predict(Z):
            return fitted.predict(np.asarray(Z).reshape(len(Z), -1))
    else:
        predict = fitted.predict
    calls = []

    def counted(Z):
        calls.append(len(Z))
        return predict(Z)

    a = label_queries(counted, X, spec)
    b = label_queries(predict, X, spec)
    np.testing.assert_array_equal(a.pred, b.pred)
    np.testing.assert_array_equal(a.distance, b.distance)
    assert a.pred.shape == (60, 6) and np.all(np.isfinite(a.distance)) and np.all(a.distance >= 0)
    assert a.queries.max() == a.queries.min() and sum(calls) == int(a.queries.sum())  # exact counts
    assert 1 + 5 < a.queries[0] <= 1 + 5 + 64  # the boundary budget is honoured
    np.testing.assert_array_equal(a.pred[:, 0], predict(X))  # query 0 is the example itself
    other = label_queries(predict, X, LabelQuerySpec(augmentations=5, boundary_queries=64, shift=1, seed=4))
    assert not np.array_equal(other.distance, a.distance) or not np.array_equal(other.pred, a.pred)


def test_boundary_distance_is_the_distance_to_a_known_boundary():
    """A linear rule x0 > 0 on standardised features: the distance of x is |x0| (in spreads) or a bit more."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))

    def predict(Z):
        return (np.asarray(Z)[:, 0] > 0).astype(np.int64)

    ans = label_queries(predict, X, LabelQuerySpec(augmentations=0, boundary_queries=256))
    true = np.abs(X[:, 0]) / X[:, 0].std()
    ok = true < 6
    assert np.all(ans.distance[ok] >= true[ok] * (1 - 1e-6))  # never closer than the boundary
    assert np.corrcoef(ans.distance[ok], true[ok])[0, 1] > 0.9


def test_label_query_spec_bad_values():
    for kw, msg in [({"augmentations": -1}, "augmentations"), ({"boundary_queries": 5}, "boundary_queries"),
                    ({"noise": 0}, "noise"), ({"seed": -1}, "seed"), ({"flip": 1}, "flip")]:
        with pytest.raises(InputError, match=msg):
            LabelQuerySpec(**kw)


# ------------------------------------------------------------------------------------------------ bundles


def test_label_bundle_round_trip(tmp_path):
    b = as_labels(make_world(1.0, seed=3, n=100))
    assert b.outputs_kind == "labels" and b.target_pred.shape == (100, 2) and b.ref_pred.shape == (8, 100, 2)
    assert b.n_references == 8 and b.n_classes == 5
    back = load_bundle(save_bundle(b, tmp_path / "b.npz"))
    for f in ("labels", "target_pred", "ref_pred", "target_distance", "ref_distance", "is_member", "ref_is_member"):
        np.testing.assert_array_equal(getattr(back, f), getattr(b, f))
    assert back.outputs_kind == "labels" and back.n_classes == 5


@pytest.mark.parametrize(("kw", "msg"), [
    ({"labels": [0, 1, 9], "target_pred": [0, 1, 1], "n_classes": 3}, r"class 9, outside the 3 classes"),
    ({"labels": [0, 1, 2], "target_pred": [0, np.nan, 1]}, r"target_pred: found NaN"),
    ({"labels": [0, 1, 2], "target_pred": [0.5, 1, 1]}, r"target_pred: expected integer class indices"),
    ({"labels": [0, 1, 2], "target_pred": [0, -1, 1]}, r"target_pred: expected class indices >= 0"),
    ({"labels": [0, 1, 2], "target_pred": [0, 1, 1], "ref_pred": [[0, 1, 1]]}, r"ref_pred: given without ref_is_member"),
    ({"labels": [0, 1, 2], "target_pred": [0, 1, 1], "ref_pred": [[0, 1]], "ref_is_member": [[1, 0]]},
     r"ref_pred: expected \(K, N, A\)"),
    ({"labels": [0, 1, 2], "target_pred": [0, 1, 1], "target_logits": np.zeros((3, 2))}, r"both given"),
    ({"labels": [0, 1, 2], "target_pred": [0, 1, 1], "target_distance": [0.1, -1, 2]}, r"distances >= 0"),
    ({"labels": [0, 1], "target_logits": np.zeros((2, 2)), "ref_pred": [[0, 1]]}, r"ref_pred: given without target_pred"),
])
def test_label_bundle_bad_inputs(kw, msg):
    with pytest.raises(InputError, match=msg):
        SignalBundle.from_arrays(**kw)


# ------------------------------------------------------------------------------------------------ attacks


def test_access_levels():
    assert attack_access("gap") == "labels"
    assert attack_access("label_augment") == "labels + reference models"
    assert attack_access("max_score") == "scores"
    assert attack_access("lira_online") == "logits + reference models"


def test_gap_is_the_accuracy_gap_with_ties():
    b = as_labels(make_world(1.5, seed=1, n=2000))
    s = get_attack("gap").fit_score(b)
    assert set(np.unique(s)) <= {0.0, 1.0}
    correct = b.target_pred[:, 0] == b.labels
    m = b.is_member
    # AUC of a two-valued score = 1/2 + (train accuracy - test accuracy) / 2 (ties count one half)
    assert auc(m, s) == pytest.approx(0.5 + (correct[m].mean() - correct[~m].mean()) / 2, abs=1e-12)


@pytest.mark.parametrize("name", ["label_augment", "label_boundary"])
def test_reference_label_attacks_beat_their_thresholds(name):
    b = as_labels(make_world(1.5, seed=1, n=2000))
    plain = {"label_augment": "augment_count", "label_boundary": "boundary_distance"}[name]
    assert auc(b.is_member, get_attack(name).fit_score(b)) > auc(b.is_member, get_attack(plain).fit_score(b)) - 0.01


@pytest.mark.parametrize("n_in", [0, 1])
def test_few_in_references_give_finite_scores(n_in):
    b = as_labels(make_world(1.5, seed=1, n=400))
    keep = np.zeros(8, bool)
    ref_in = np.asarray(b.ref_is_member)
    # 3 references; where an example has more than n_in IN references, flip them to OUT in the design
    rim = ref_in[:3].copy()
    for i in range(rim.shape[1]):
        ins = np.flatnonzero(rim[:, i])
        rim[ins[n_in:], i] = False
    keep[:3] = True
    few = SignalBundle.from_arrays(labels=b.labels, target_pred=b.target_pred, ref_pred=b.ref_pred[:3],
                                   ref_is_member=rim, target_distance=b.target_distance,
                                   ref_distance=b.ref_distance[:3], is_member=b.is_member)
    for name in ("label_augment", "label_boundary"):
        s = get_attack(name).fit_score(few)
        assert s.shape == (400,) and np.all(np.isfinite(s))


def test_label_attacks_on_null_worlds_keep_their_level():
    """Outputs that ignore membership: the verdict of the label-only attacks claims leakage in at most its
    stated share (5%) of 20 null worlds, with the binomial slack of 20 draws (at most 3)."""
    claims = 0
    for seed in range(20):
        b = as_labels(make_world(0.0, seed=100 + seed, n=400, with_population=False))
        scores = {n: get_attack(n).fit_score(b) for n in LABEL_ATTACKS}
        claims += bool(decide_leakage(b.is_member, scores, seed=seed).leakage_detected)
    assert claims <= 3


# --------------------------------------------------------------------------------- callables and budgets


def test_query_model_kinds_and_bad_outputs(digits, fitted):
    X, _ = digits
    qm = QueryModel(fitted.predict_proba, n_classes=10, output_kind="probs", batch_size=64)
    out = qm.outputs(X[:100])
    assert out.shape == (100, 10) and qm.queries_used == 100
    np.testing.assert_allclose(np.exp(out).sum(axis=1), 1.0, atol=1e-9)
    labels = QueryModel(fitted.predict, n_classes=10, output_kind="labels").predict_labels(X[:10])
    np.testing.assert_array_equal(labels, fitted.predict(X[:10]))
    with pytest.raises(InputError, match=r"returned shape \(64, 3\).*expected \(64, 10\)"):
        QueryModel(lambda Z: fitted.predict_proba(Z)[:, :3], n_classes=10, output_kind="probs",
                   batch_size=64).outputs(X[:100])
    with pytest.raises(InputError, match="NaN/inf"):
        QueryModel(lambda Z: np.full((len(Z), 10), np.nan), n_classes=10, output_kind="scores").outputs(X[:5])
    with pytest.raises(InputError, match="label 12, outside the classes"):
        QueryModel(lambda Z: fitted.predict(Z) + 3, n_classes=10, output_kind="labels").predict_labels(X[:50])
    with pytest.raises(InputError, match=r"expected \(5,\) predicted class"):
        QueryModel(lambda Z: np.zeros((len(Z), 2)), n_classes=10, output_kind="labels").predict_labels(X[:5])
    with pytest.raises(InputError, match="needs its output kind declared"):
        QueryModel(lambda Z: Z, n_classes=10)
    with pytest.raises(InputError, match="output_kind: expected one of"):
        QueryModel(fitted.predict, n_classes=10, output_kind="odds")


def test_budget_exhausted_mid_way_stops_before_exceeding(digits, fitted):
    X, _ = digits
    qm = QueryModel(fitted.predict, n_classes=10, output_kind="labels", batch_size=30, query_budget=70)
    with pytest.raises(QueryBudgetError, match=r"exhausted after 60 of 70 queries.*nothing was lost"):
        qm.predict_labels(X[:100])
    assert qm.queries_used == 60  # the batch that would have exceeded it was never sent


def test_audit_model_label_only_callable(digits, fitted):
    X, y = digits
    spec = {"augmentations": 4, "boundary_queries": 32}
    r = audit_model(fitted.predict, X[:200], y[:200], X[200:], y[200:], output_kind="labels", label_queries=spec)
    assert r.game["access"] == "label"
    assert set(r.metrics) == {"gap", "augment_count", "boundary_distance"}
    per = r.game["attack_queries"]["augment_count"]["per_example"]
    assert per == 5 and r.game["queries_used"] > 400 * 5
    again = audit_model(fitted.predict, X[:200], y[:200], X[200:], y[200:], output_kind="labels", label_queries=spec)
    pd.testing.assert_frame_equal(r.scores, again.scores)  # deterministic
    with pytest.raises(InputError, match="label_queries: .*augmentation"):
        audit_model(fitted.predict, X[:200], y[:200], X[200:], y[200:], output_kind="labels",
                    label_queries={"augmentation": 3})
    with pytest.raises(QueryBudgetError, match="needs .* queries to the target"):
        audit_model(fitted.predict, X[:200], y[:200], X[200:], y[200:], output_kind="labels", label_queries=spec,
                    query_budget=1000)


def test_audit_model_callable_kinds(digits, fitted):
    X, y = digits
    probs = audit_model(fitted.predict_proba, X[:200], y[:200], X[200:], y[200:], output_kind="probs")
    plain = audit_model(fitted, X[:200], y[:200], X[200:], y[200:])
    assert probs.game["access"] == "probs" and probs.game["queries_used"] == 400
    assert probs.metrics["loss"].auc == pytest.approx(plain.metrics["loss"].auc, abs=1e-9)
    scores = audit_model(fitted.predict_proba, X[:200], y[:200], X[200:], y[200:], output_kind="scores")
    assert scores.game["access"] == "scores" and "max_score" in scores.metrics


def test_audit_model_torch_module(digits):
    torch = pytest.importorskip("torch")
    X, y = digits
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 10), torch.nn.Dropout(0.5))
    net.train()
    r = audit_model(net, X[:200], y[:200], X[200:], y[200:], batch_size=50)
    assert r.game["access"] == "logits" and r.game["queries_used"] == 400
    assert net.training  # its mode is restored
    again = audit_model(net, X[:200], y[:200], X[200:], y[200:], batch_size=50)
    pd.testing.assert_frame_equal(r.scores, again.scores)  # eval mode: dropout off, deterministic


# ------------------------------------------------------------------------------------------- end to end


def _config(tmp: Path, out: str, names: str = "", target: str = "") -> Path:
    text = textwrap.dedent(f"""\
        [data]
        kind = "digits"
        [model]
        kind = "sklearn"
        estimator = "sklearn.linear_model.LogisticRegression"
        params = {{ max_iter = 200 }}
        [game]
        pool_size = 300
        n_references = 4
        n_targets = 2
        seed = 1
        [attacks]
        access = "label"
        {names}
        [attacks.label_queries]
        augmentations = 4
        boundary_queries = 32
        [output]
        dir = "{tmp / out}"
        run_dir = "{tmp / 'cache'}"
        {target}
        """)
    p = tmp / f"{out}.toml"
    p.write_text(text)
    return p


def test_config_label_access_end_to_end_and_deterministic(tmp_path):
    runner = CliRunner()
    for out in ("a", "b"):
        res = runner.invoke(app, ["audit", str(_config(tmp_path, out)), "--jobs", "1"])
        assert res.exit_code == 0, res.output
    ra = json.loads((tmp_path / "a" / "results.json").read_text())
    assert ra["game"]["access"] == "label" and ra["game"]["n_queries"] == 5
    assert set(ra["attacks"]) == set(LABEL_ATTACKS)
    q = ra["game"]["attack_queries"]
    assert q["label_augment"]["per_example"] == 5 and q["label_augment"]["references"] > 0
    assert 0 < q["label_boundary"]["per_example"] <= 32  # the per-example boundary budget is honoured
    assert q["label_boundary"]["references"] == q["label_boundary"]["per_example"] * 300 * 4 * 2  # 4 references, 2 targets
    assert (tmp_path / "a" / "scores.csv").read_bytes() == (tmp_path / "b" / "scores.csv").read_bytes()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    res = runner.invoke(app, ["audit", str(_config(fresh, "c")), "--jobs", "1"])  # trained anew, same answers
    assert res.exit_code == 0, res.output
    assert (fresh / "c" / "scores.csv").read_bytes() == (tmp_path / "a" / "scores.csv").read_bytes()


def test_config_label_access_refuses_output_attacks(tmp_path):
    res = CliRunner().invoke(app, ["audit", str(_config(tmp_path, "o", names='names = ["lira_online"]'))])
    assert res.exit_code == 2 and "access = \"label\" gives predicted classes" in res.output


def _target_files(tmp: Path) -> None:
    np.save(tmp / "members.npy", np.arange(0, 100))
    np.save(tmp / "nonmembers.npy", np.arange(200, 300))
    (tmp / "mytarget.py").write_text(
        "import numpy as np\nfrom sklearn.datasets import load_digits\nfrom sklearn.linear_model import LogisticRegression\n"
        "X, y = load_digits(return_X_y=True)\n_m = LogisticRegression(max_iter=300).fit(X[:100], y[:100])\n"
        "def predict(Z):\n    return _m.predict(np.asarray(Z))\n")


def _callable_target_config(tmp_path: Path, *, batch_size: int, query_budget: int) -> Path:
    """A config whose [target] is a label-only callable with a budget, and an earlier run's folder to keep."""
    _target_files(tmp_path)
    target = textwrap.dedent(f"""\
        [target]
        callable = "mytarget.predict"
        output_kind = "labels"
        members = "{tmp_path / 'members.npy'}"
        nonmembers = "{tmp_path / 'nonmembers.npy'}"
        batch_size = {batch_size}
        query_budget = {query_budget}
        """)
    cfg = _config(tmp_path, "t", target=target)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "keep.txt").write_text("earlier work")
    return cfg


def test_config_callable_target_with_budget(tmp_path):
    cfg = _callable_target_config(tmp_path, batch_size=64, query_budget=100)
    res = CliRunner().invoke(app, ["audit", str(cfg), "--jobs", "1", "--overwrite"])
    assert res.exit_code == 2, res.output
    assert "query budget" in res.output and "nothing was queried" in res.output
    assert (tmp_path / "t" / "keep.txt").read_text() == "earlier work"  # nothing lost
    assert not (tmp_path / "cache" / "models").exists()  # refused before any training
    cfg.write_text(cfg.read_text().replace("query_budget = 100", "query_budget = 100000"))
    res = CliRunner().invoke(app, ["audit", str(cfg), "--jobs", "1", "--overwrite"])
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "t" / "results.json").read_text())
    game = results["game"]
    assert game["access"] == "label" and game["query_budget"] == 100000 and game["output_kind"] == "labels"
    q = game["attack_queries"]
    assert game["queries_used"] == 200 * (q["label_augment"]["per_example"] + q["label_boundary"]["per_example"])
    assert {"label_augment", "label_boundary", "gap"} <= set(results["attacks"])


@pytest.mark.parametrize(("attacks", "target", "msg"), [
    ('access = "labels"', "", r"\[attacks\] access: expected \"logits\" \(full outputs\) or \"label\""),
    ('access = "label"\n[attacks.label_queries]\naugmentation = 3', "", r"unknown key 'augmentation'"),
    ('access = "label"\n[attacks.label_queries]\nboundary_queries = 10', "", r"boundary_queries: expected 0"),
    ('[attacks.label_queries]\naugmentations = 3', "", r"label_queries: set, but access is not"),
    ("", 'model = "m.skops"\ncallable = "a.b"', r"\[target\] model and callable: both set"),
    ("", 'callable = "a.b"\noutput_kind = "odds"', r"\[target\] output_kind: expected one of logits"),
    ("", 'callable = "a.b"\nquery_budget = 0', r"\[target\] query_budget: expected an integer >= 1"),
])
def test_config_access_keys_are_validated(tmp_path, attacks, target, msg):
    from miaudit._errors import ConfigError
    from miaudit.config import load_config

    np.save(tmp_path / "m.npy", np.arange(3))
    (tmp_path / "m.skops").write_bytes(b"")
    tgt = f'[target]\nmembers = "m.npy"\nnonmembers = "m.npy"\n{target}\n' if target else ""
    p = tmp_path / "c.toml"
    p.write_text(f'[data]\nkind = "digits"\n[attacks]\n{attacks}\n{tgt}')
    with pytest.raises(ConfigError, match=msg):
        load_config(p)


def test_run_audit_with_target_counts_the_recipe_queries(tmp_path, digits):
    from miaudit.api import run_audit_with_target
    from miaudit.training import SklearnRecipe

    X, y = digits
    recipe = SklearnRecipe("sklearn.linear_model.LogisticRegression", {"max_iter": 200}, n_classes=10)
    target = recipe.train(X[:150], y[:150], seed=0)
    kw = dict(n_references=2, run_dir=tmp_path / "cache", jobs=1)
    plain = run_audit_with_target(recipe, target, X[:150], y[:150], X[150:300], y[150:300], **kw)
    counted = run_audit_with_target(recipe, target, X[:150], y[:150], X[150:300], y[150:300], query_budget=300, **kw)
    assert counted.game["queries_used"] == 300 and counted.game["access"] == "logits"
    pd.testing.assert_frame_equal(plain.scores, counted.scores)  # the same answers, counted
    with pytest.raises(QueryBudgetError, match="needs 300 queries"):
        run_audit_with_target(recipe, target, X[:150], y[:150], X[150:300], y[150:300], query_budget=299, **kw)
    spec = LabelQuerySpec(augmentations=3, boundary_queries=32)
    lab = run_audit_with_target(recipe, target, X[:150], y[:150], X[150:300], y[150:300], label_queries=spec, **kw)
    assert lab.game["access"] == "label" and {"label_augment", "label_boundary"} <= set(lab.metrics)


def test_access_is_recorded_for_bundles(tmp_path):
    from miaudit.api import audit_bundle

    w = make_world(1.0, seed=3, n=200, with_population=False)
    probs = np.exp(w.target_logits - np.log(np.exp(w.target_logits).sum(axis=-1, keepdims=True)))
    by_kind = {
        "logits": SignalBundle.from_arrays(labels=w.labels, target_logits=w.target_logits, is_member=w.is_member),
        "probs": SignalBundle.from_arrays(labels=w.labels, target_probs=probs, is_member=w.is_member),
        "scores": SignalBundle.from_arrays(labels=w.labels, target_scores=probs, is_member=w.is_member),
        "label": as_labels(w),
    }
    for kind, b in by_kind.items():
        assert audit_bundle(b).game["access"] == kind


def test_score_a_label_bundle_through_the_cli(tmp_path):
    b = as_labels(make_world(1.5, seed=1, n=300, with_population=False))
    path = save_bundle(b, tmp_path / "labels.npz")
    res = CliRunner().invoke(app, ["score", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["game"]["access"] == "label" and set(results["attacks"]) == set(LABEL_ATTACKS)
    assert "lira_online" in results["skipped"]


def test_budget_exhausted_mid_audit_exits_2_and_keeps_the_trained_models(tmp_path, monkeypatch):
    """Without the up-front count (disabled here), the budget runs out while the target is being queried,
    after the references were trained: exit 2 with one line, the references stay cached (a rerun with a larger
    budget trains none) and the earlier results folder is untouched."""
    from miaudit.models import QueryModel as QM

    cfg = _callable_target_config(tmp_path, batch_size=50, query_budget=1000)
    monkeypatch.setattr(QM, "require", lambda self, n, what: None)
    res = CliRunner().invoke(app, ["audit", str(cfg), "--jobs", "1", "--overwrite"])
    assert res.exit_code == 2, res.output
    assert "exhausted after 1000 of 1000 queries" in res.output and "nothing was lost" in res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in res.output  # one line, no traceback
    assert (tmp_path / "t" / "keep.txt").read_text() == "earlier work"
    cached = sorted((tmp_path / "cache" / "models").glob("*.npz"))
    assert len(cached) == 4  # the references were trained and kept
    monkeypatch.undo()
    cfg.write_text(cfg.read_text().replace("query_budget = 1000", "query_budget = 100000"))
    res = CliRunner().invoke(app, ["audit", str(cfg), "--jobs", "1", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert sorted((tmp_path / "cache" / "models").glob("*.npz")) == cached  # none trained again
