"""SklearnRecipe: construction checks, seeds, auto preprocessing, logits, spec round trip."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from miaudit import ConfigError
from miaudit.training import Recipe, SklearnRecipe, recipe_from_spec

from ._helpers import LR, digits

MLP = "sklearn.neural_network.MLPClassifier"


def test_recipe_satisfies_protocol_and_spec_round_trips() -> None:
    r = SklearnRecipe(MLP, {"hidden_layer_sizes": (8,), "max_iter": 5}, n_classes=10)
    assert isinstance(r, Recipe)
    spec = r.spec()
    assert json.loads(json.dumps(spec)) == spec
    assert spec["params"]["hidden_layer_sizes"] == [8]  # JSON-normalised
    assert recipe_from_spec(spec) == r
    assert recipe_from_spec(json.loads(json.dumps(spec))).spec() == spec


def test_seed_sets_random_state_and_changes_the_model() -> None:
    X, y = digits(120)
    r = SklearnRecipe(MLP, {"hidden_layer_sizes": [8], "max_iter": 20, "random_state": 123}, n_classes=10)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 20 iterations do not converge: the recipe must stay quiet
        a = r.train(X, y, seed=1)
        b = r.train(X, y, seed=1)
        c = r.train(X, y, seed=2)
    assert a.named_steps["model"].random_state == 1
    assert np.array_equal(a.named_steps["model"].coefs_[0], b.named_steps["model"].coefs_[0])
    assert not np.array_equal(a.named_steps["model"].coefs_[0], c.named_steps["model"].coefs_[0])


def test_auto_preprocessing_numeric_and_categorical() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import StandardScaler

    X, y = digits(60)
    r = SklearnRecipe(LR, {"max_iter": 100}, n_classes=10)
    assert isinstance(r.build(X, seed=0).steps[0][1], StandardScaler)
    df = pd.DataFrame({"age": np.arange(40.0), "job": pd.Categorical(["a", "b"] * 20), "city": ["x", "y", "z", "x"] * 10})
    yy = np.array([0, 1] * 20)
    r2 = SklearnRecipe(LR, {}, n_classes=2)
    pipe = r2.build(df, seed=0)
    ct = pipe.steps[0][1]
    assert isinstance(ct, ColumnTransformer)
    assert ct.transformers[0][2] == ["job", "city"] and ct.transformers[1][2] == ["age"]
    df.loc[3, "age"] = np.nan  # numeric gaps are imputed
    df.loc[4, "job"] = np.nan  # categorical gaps are a category
    model = r2.train(df, yy, seed=0)
    new = pd.DataFrame({"age": [1.0], "job": pd.Categorical(["never-seen"]), "city": ["q"]})
    out = r2.predict_logits(model, new)  # unknown categories are ignored, not an error
    assert out.shape == (1, 1, 2) and np.all(np.isfinite(out))
    # numeric-only DataFrame: plain scaler
    assert isinstance(r2.build(df[["age"]], seed=0).steps[0][1], StandardScaler)


def test_images_are_flattened() -> None:
    X, y = digits(80)
    r = SklearnRecipe(LR, {"max_iter": 50}, n_classes=10)
    imgs = X.reshape(80, 8, 8)
    out = r.predict_logits(r.train(imgs, y, seed=0), imgs)
    flat = r.predict_logits(r.train(X, y, seed=0), X)
    np.testing.assert_allclose(out, flat)


def test_explicit_and_no_preprocessing() -> None:
    X, y = digits(60)
    r = SklearnRecipe(LR, {"max_iter": 50}, [{"step": "sklearn.preprocessing.MinMaxScaler", "params": {"clip": True}}],
                      n_classes=10)
    pipe = r.build(X, seed=0)
    assert type(pipe.steps[0][1]).__name__ == "MinMaxScaler" and pipe.steps[0][1].clip is True
    assert len(SklearnRecipe(LR, {}, "none", n_classes=10).build(X, seed=0).steps) == 1
    assert len(SklearnRecipe(LR, {}, None, n_classes=10).build(X, seed=0).steps) == 1


def test_logits_cover_classes_missing_from_training() -> None:
    X, y = digits(200)
    keep = y < 5
    r = SklearnRecipe(LR, {"max_iter": 200}, n_classes=10)
    model = r.train(X[keep], y[keep], seed=0)
    out = r.predict_logits(model, X)
    assert out.shape == (200, 1, 10) and np.all(np.isfinite(out))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(np.exp(out[:, 0, :5]), proba, rtol=1e-9, atol=1e-12)
    assert np.all(out[:, 0, 5:] < -100)


def _flip(X: np.ndarray) -> np.ndarray:
    return X[:, ::-1]


def test_queries_add_a_query_axis() -> None:
    X, y = digits(100)
    r = SklearnRecipe(LR, {"max_iter": 100}, n_classes=10, queries=["tests.training.test_recipe._flip"])
    model = r.train(X, y, seed=0)
    out = r.predict_logits(model, X)
    assert out.shape == (100, 2, 10) and r.n_queries == 2
    np.testing.assert_allclose(out[:, 1], r.predict_logits(model, X[:, ::-1])[:, 0])


def test_decision_function_only_estimator() -> None:
    X, y = digits(100)
    r = SklearnRecipe("sklearn.linear_model.RidgeClassifier", {}, n_classes=10)
    out = r.predict_logits(r.train(X, y, seed=0), X)
    assert out.shape == (100, 1, 10) and np.all(np.isfinite(out))


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("sklearn.linear_model.NoSuchModel",), {}, r"\[model\] estimator: module 'sklearn.linear_model' has no attribute 'NoSuchModel'"),
        (("nosuchpkg.Model",), {}, r"\[model\] estimator: cannot import module 'nosuchpkg'"),
        (("LogisticRegression",), {}, r"\[model\] estimator: expected an import path such as"),
        (("sklearn.preprocessing.StandardScaler",), {}, r"has no fit and predict_proba/decision_function"),
        (("sklearn.__version__",), {}, r"is not a class"),
        ((LR, {"max_itr": 5}), {}, r"\[model\] params: cannot build 'LogisticRegression' .*valid parameters: .*max_iter"),
        ((LR, [1, 2]), {}, r"\[model\] params: expected a table of estimator parameters, got list"),
        ((LR, {"C": object()}), {}, r"\[model\] params: expected JSON-like values"),
        ((LR, {}, "scale"), {}, r"\[model\] preprocessing: expected 'auto', 'none' or a list"),
        ((LR, {}, 3), {}, r"\[model\] preprocessing: expected 'auto', 'none' or a list .* got int"),
        ((LR, {}, [{"params": {}}]), {}, r"\[model\] preprocessing\[0\]: expected a table with 'step'"),
        ((LR, {}, [{"step": "sklearn.preprocessing.StandardScaler", "parms": {}}]), {}, r"preprocessing\[0\]: unknown key 'parms'"),
        ((LR, {}, [{"step": "sklearn.preprocessing.StandardScaler", "params": 3}]), {}, r"preprocessing\[0\].params: expected a table"),
        ((LR, {}, [{"step": LR}]), {}, r"preprocessing\[0\].step: .*has no fit and transform"),
        ((LR, {}, ["sklearn.preprocessing.StandardScaler"]), {"n_classes": 1}, r"n_classes: expected an int >= 2, got 1"),
        ((LR,), {"queries": ["numpy.pi"]}, r"\[game\] queries\[0\]: 'numpy.pi' is not callable"),
    ],
)
def test_construction_errors(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    kw = {"n_classes": 10, **kwargs}
    with pytest.raises(ConfigError, match=match):
        SklearnRecipe(*args, **kw)


def test_recipe_from_spec_errors() -> None:
    with pytest.raises(ConfigError, match=r"\[model\] kind: expected 'sklearn', 'torch' or 'causal_lm', got 'jax'"):
        recipe_from_spec({"kind": "jax"})
    with pytest.raises(ConfigError, match=r"recipe spec: .*unexpected keyword.*expected keys estimator"):
        recipe_from_spec({"kind": "sklearn", "estimator": LR, "n_classes": 2, "bogus": 1})


def test_preload_modules_are_importable() -> None:
    import importlib

    r = SklearnRecipe(MLP, {}, [{"step": "sklearn.decomposition.PCA"}], n_classes=10)
    mods = r.preload_modules()
    assert "sklearn.neural_network" in mods and "sklearn.decomposition" in mods
    for m in mods:
        importlib.import_module(m)


def test_bad_param_values_are_config_errors_before_fitting() -> None:
    with pytest.raises(ConfigError, match=r"^\[model\] params: 'activation': The 'activation' parameter of MLPClassifier"):
        SklearnRecipe(MLP, {"activation": "sigmoid"}, n_classes=2)
    with pytest.raises(ConfigError, match=r"^\[model\] preprocessing\[0\]\.params: 'with_mean'"):
        SklearnRecipe(LR, {},
                      [{"step": "sklearn.preprocessing.StandardScaler", "params": {"with_mean": "yes"}}], n_classes=2)
    SklearnRecipe(MLP, {"activation": "tanh", "hidden_layer_sizes": [8]}, n_classes=2)
