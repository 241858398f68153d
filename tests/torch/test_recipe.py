"""miaudit.training.torch_recipe.TorchRecipe: protocol, determinism, config, tabular input, user train_fn."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from miaudit import ConfigError, InputError  # noqa: E402
from miaudit.training._recipe import Recipe, recipe_from_spec  # noqa: E402
from miaudit.training.torch_recipe import RECIPE_KEYS, TorchRecipe  # noqa: E402

pytestmark = pytest.mark.torch

calls: list[int] = []


def user_train(model, dataset, seed):
    """A user's own training loop (imported by path in the tests below)."""
    calls.append(seed)
    x, y = dataset.tensors
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def _tabular(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    return X, y


def _recipe(**kw):
    base = dict(model="mlp", model_kwargs={"hidden": [16]}, n_classes=2, epochs=3, batch_size=32, lr=0.05,
                num_threads=1)
    base.update(kw)
    return TorchRecipe(**base)


def test_protocol_shapes_and_learning():
    X, y = _tabular(300)
    r = _recipe(epochs=10)
    assert isinstance(r, Recipe)
    m = r.train(X[:200], y[:200], seed=0)
    out = r.predict_logits(m, X[200:])
    assert out.shape == (100, 1, 2) and out.dtype == np.float64
    assert (out[:, 0].argmax(1) == y[200:]).mean() > 0.75
    assert not m.training
    assert r.training_info(m)["n_train"] == 200 and r.dp_info(m) is None


def test_deterministic_given_seed_and_rng_untouched():
    X, y = _tabular()
    r = _recipe()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b, c = r.train(X, y, seed=4), r.train(X, y, seed=4), r.train(X, y, seed=5)
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(r.predict_logits(a, X), r.predict_logits(b, X))
    assert not np.allclose(r.predict_logits(a, X), r.predict_logits(c, X))


def test_train_group_equals_train_on_dataframe_with_categories():
    rng = np.random.default_rng(3)
    n = 90
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype(float),
        "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n), categories=["blue", "green", "red"]),
        "flag": rng.random(n) < 0.3,
        "income": rng.normal(5e4, 1e4, n),
    })
    y = (df["age"].to_numpy() > 45).astype(np.int64)
    masks = rng.random((3, n)) < 0.5
    r = _recipe(group_size=2, optimizer="adam", lr=1e-2)
    models = r.train_group(df, y, masks, [7, 8, 9])
    assert len(models) == 3 and [m.training_info_["group_size"] for m in models] == [2, 2, 1]
    for g, seed in enumerate([7, 8, 9]):
        one = r.train(df[masks[g]], y[masks[g]], seed=seed)
        np.testing.assert_allclose(r.predict_logits(models[g], df), r.predict_logits(one, df), rtol=1e-4, atol=1e-5)
    # standardisation comes from the model's own subset
    np.testing.assert_allclose(models[0].miaudit_standardize_[0][0], df["age"][masks[0]].mean(), rtol=1e-5)
    assert models[0].miaudit_encoding_.categories[1] == ("blue", "green", "red")


def test_images_cnn_with_queries_and_augmentation():
    rng = np.random.default_rng(0)
    X = rng.random((40, 12, 12)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    r = TorchRecipe("small_cnn", {"width": 2}, n_classes=3, epochs=1, batch_size=16, augmentation="shift",
                    queries=["hflip", "shift:1,0"], num_threads=1, stack=True)
    assert r.stackable and not TorchRecipe("small_cnn", n_classes=3).stackable  # auto: CNNs not stacked on CPU
    m = r.train(X, y, seed=0)
    assert r.n_queries == 3
    out = r.predict_logits(m, X)
    assert out.shape == (40, 3, 3)
    assert not np.allclose(out[:, 0], out[:, 1])
    models = r.train_group(X, y, np.stack([np.arange(40) < 20, np.arange(40) >= 10]), [0, 1])
    assert models[0].training_info_["mode"] == "stacked"
    one = r.train(X[:20], y[:20], seed=0)
    np.testing.assert_allclose(r.predict_logits(models[0], X), r.predict_logits(one, X), rtol=1e-4, atol=1e-5)
    auto = TorchRecipe("small_cnn", {"width": 2}, n_classes=3, epochs=1, batch_size=16, num_threads=1)
    assert auto.group_size == 1
    assert auto.train_group(X, y, np.ones((1, 40), bool), [0])[0].training_info_["mode"] == "one_by_one"


def test_spec_round_trip_pickle_and_dispatch():
    r = _recipe(queries=["hflip"], schedule="cosine", weight_decay=1e-4, dp=None)
    spec = r.spec()
    assert spec["kind"] == "torch" and spec["schedule"] == "cosine" and spec["queries"] == ["hflip"]
    assert TorchRecipe.from_spec(spec) == r
    assert recipe_from_spec(spec) == r
    r2 = pickle.loads(pickle.dumps(r))
    assert r2 == r and r2.group_size == 16
    assert _recipe(lr=0.06).spec() != spec
    assert _recipe(group_size=4, num_threads=2).spec() == _recipe().spec()  # do not change the models


def test_from_spec_errors():
    with pytest.raises(ConfigError, match=r"unknown key 'hiden' for kind = 'torch'; valid keys: .*augmentation"):
        TorchRecipe.from_spec({"kind": "torch", "n_classes": 2, "hiden": 3})
    with pytest.raises(ConfigError, match="model.n_classes: missing"):
        TorchRecipe.from_spec({"model": "mlp"})
    with pytest.raises(ConfigError, match="model.kind: expected 'torch'"):
        TorchRecipe.from_spec({"kind": "sklearn", "n_classes": 2})
    with pytest.raises(ConfigError, match="model: expected a table"):
        TorchRecipe.from_spec(["mlp"])  # type: ignore[arg-type]
    assert set(RECIPE_KEYS) >= {"model", "optimizer", "dp", "train_fn", "queries"}


def test_constructor_errors():
    with pytest.raises(ConfigError, match=r"n_classes: expected an int >= 2, got 1; group_size"):
        TorchRecipe(n_classes=1, group_size=0)
    with pytest.raises(ConfigError, match="unknown built-in 'resnet'"):
        TorchRecipe("resnet", n_classes=2)
    with pytest.raises(ConfigError, match="cannot import module 'nope'"):
        TorchRecipe("nope.Net", n_classes=2)
    with pytest.raises(ConfigError, match="optimizer: expected one of sgd, adam"):
        TorchRecipe(n_classes=2, optimizer="lbfgs")
    with pytest.raises(ConfigError, match="train_fn and dp: give one"):
        TorchRecipe(n_classes=2, train_fn="tests.torch.test_recipe.user_train", dp={"epsilon": 1.0})
    with pytest.raises(ConfigError, match="stack: expected 'auto', true or false"):
        TorchRecipe(n_classes=2, stack="yes")
    with pytest.raises(ConfigError, match="num_threads: expected an int >= 1"):
        TorchRecipe(n_classes=2, num_threads=0)
    with pytest.raises(InputError, match="unknown query 'blur'"):
        TorchRecipe(n_classes=2, queries=["blur"])
    with pytest.raises(ConfigError, match="cannot build 'mlp'"):
        TorchRecipe("mlp", {"depth": 3}, n_classes=2, num_threads=1).train(*_tabular(), seed=0)


def test_input_errors():
    X, y = _tabular()
    r = _recipe()
    with pytest.raises(InputError, match=r"y: expected integer labels in \[0, 2\)"):
        r.train(X, y + 5, seed=0)
    with pytest.raises(InputError, match=r"y: expected shape \(120,\)"):
        r.train(X, y[:-1], seed=0)
    with pytest.raises(InputError, match=r"X: expected shape \(N, F\)"):
        r.train(X[:, 0], y, seed=0)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="X: found NaN or inf"):
        r.train(bad, y, seed=0)
    df = pd.DataFrame({"a": X[:, 0], "s": ["x"] * len(X)})
    with pytest.raises(InputError, match=r"X\['s'\]: torch recipes need numeric or 'category' columns"):
        r.train(df, y, seed=0)
    with pytest.raises(InputError, match=r"masks: expected a bool array of shape \(2, 120\)"):
        r.train_group(X, y, np.ones((3, 120), bool), [1, 2])
    with pytest.raises(InputError, match="small_cnn expects images"):
        TorchRecipe("small_cnn", n_classes=2, num_threads=1).train(X, y, seed=0)
    m = r.train(X, y, seed=0)
    with pytest.raises(InputError, match="expected n_classes = 3"):
        _recipe(n_classes=3).predict_logits(m, X)


def test_user_train_fn_and_import_path_factory():
    X, y = _tabular()
    calls.clear()
    r = _recipe(train_fn="tests.torch.test_recipe.user_train", model="miaudit.models._nets.MLP",
                model_kwargs={"n_features": 6, "n_classes": 2, "hidden": [4]})
    assert not r.stackable and r.group_size == 1
    models = r.train_group(X, y, np.ones((2, len(y)), bool), [3, 4])
    assert calls == [3, 4]
    assert models[0].training_info_["mode"] == "train_fn"
    assert r.predict_logits(models[0], X).shape == (120, 1, 2)
