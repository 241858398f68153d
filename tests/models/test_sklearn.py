"""sklearn_logits: predict_proba / decision_function into the full C columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from miaudit import signals
from miaudit._errors import InputError
from miaudit.models import MISSING_CLASS_LOGIT, sklearn_logits


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=150)
    x = rng.normal(size=(150, 4)) + y[:, None]
    return x, y


def test_predict_proba_logits(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = LogisticRegression(max_iter=500).fit(x, y)
    z = sklearn_logits(model, x, n_classes=3)
    assert z.shape == (150, 1, 3) and z.dtype == np.float64
    np.testing.assert_allclose(z[:, 0], signals.probs_to_logits(model.predict_proba(x)))
    np.testing.assert_allclose(_softmax(z[:, 0]), model.predict_proba(x), rtol=1e-12)


def test_missing_classes_get_large_negative_finite_logits(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    keep = y != 1
    y4 = np.where(y[keep] == 2, 3, 0)  # the model sees classes {0, 3} of C = 5
    model = LogisticRegression().fit(x[keep], y4)
    z = sklearn_logits(model, x, n_classes=5)[:, 0]
    assert z.shape == (150, 5) and np.all(np.isfinite(z))
    p = _softmax(z)
    np.testing.assert_allclose(p[:, [0, 3]], model.predict_proba(x), rtol=1e-12)
    assert np.all(p[:, [1, 2, 4]] < 1e-300)
    assert np.all(z[:, [1, 2, 4]] <= MISSING_CLASS_LOGIT + z[:, [0, 3]].min(axis=1, keepdims=True))
    # signals of an example whose label the model never saw are finite, and its loss is huge
    loss = signals.loss(z, np.full(150, 2))
    assert np.all(np.isfinite(loss)) and np.all(loss > 700)


def test_zero_probabilities_stay_finite(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    tree = DecisionTreeClassifier(random_state=0).fit(x, y)  # leaves give probabilities 0 and 1
    z = sklearn_logits(tree, x, n_classes=3)
    assert np.all(np.isfinite(z))
    assert np.all(np.isfinite(signals.scaled_logit(z, y[:, None])))


def test_decision_function_binary_is_zero_and_d(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    yb = (y == 2).astype(int)
    svm = LinearSVC().fit(x, yb)
    z = sklearn_logits(svm, x, n_classes=2)[:, 0]
    d = svm.decision_function(x)
    np.testing.assert_allclose(z, np.stack([np.zeros_like(d), d], axis=1))
    np.testing.assert_allclose(_softmax(z)[:, 1], 1.0 / (1.0 + np.exp(-d)))


def test_decision_function_binary_classes_placed_by_classes_(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    keep = y != 1
    svm = SVC().fit(x[keep], y[keep])  # classes_ = [0, 2], no predict_proba (probability=False)
    z = sklearn_logits(svm, x, n_classes=3)[:, 0]
    d = svm.decision_function(x)
    np.testing.assert_allclose(z[:, 0], 0.0)
    np.testing.assert_allclose(z[:, 2], d)
    assert np.all(z[:, 1] < np.minimum(d, 0) - 700)


def test_decision_function_multiclass(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    svm = LinearSVC().fit(x, y)
    np.testing.assert_allclose(sklearn_logits(svm, x, n_classes=3)[:, 0], svm.decision_function(x))


def test_pipeline_with_dataframe() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"age": rng.normal(40, 10, 80), "city": rng.choice(["a", "b", "c"], 80)})
    y = (df["age"] > 40).astype(int).to_numpy()
    pipe = make_pipeline(
        make_column_transformer((StandardScaler(), ["age"]), (OneHotEncoder(), ["city"])),
        LogisticRegression(),
    ).fit(df, y)
    z = sklearn_logits(pipe, df, n_classes=2)
    assert z.shape == (80, 1, 2)
    np.testing.assert_allclose(_softmax(z[:, 0]), pipe.predict_proba(df), rtol=1e-12)
    svm_pipe = make_pipeline(StandardScaler(), LinearSVC()).fit(df[["age"]], y)
    np.testing.assert_allclose(sklearn_logits(svm_pipe, df[["age"]], n_classes=2)[:, 0, 1],
                               svm_pipe.decision_function(df[["age"]]))


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_no_scoring_method(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    with pytest.raises(InputError, match="estimator: LinearRegression has neither predict_proba nor decision_function"):
        sklearn_logits(LinearRegression().fit(x, y), x, n_classes=3)


def test_unfitted(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = data
    with pytest.raises(InputError, match=r"estimator: LogisticRegression has no classes_ \(is it a fitted classifier\?\)"):
        sklearn_logits(LogisticRegression(), x, n_classes=3)


def test_classes_outside_range(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = LogisticRegression().fit(x, y + 1)  # classes 1..3
    with pytest.raises(InputError, match=r"classes_ must be distinct integers in \[0, 3\), got \[1, 2, 3\]"):
        sklearn_logits(model, x, n_classes=3)


def test_string_classes(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    model = LogisticRegression().fit(x, np.array(["a", "b", "c"])[y])
    with pytest.raises(InputError, match=r"classes_ must be integers in \[0, 3\), got \['a', 'b', 'c'\]"):
        sklearn_logits(model, x, n_classes=3)


class _Stub:
    """A fitted 'classifier' returning whatever it is told."""

    def __init__(self, out: np.ndarray, classes: tuple[Any, ...] = (0, 1)) -> None:
        self.classes_ = np.array(classes)
        self._out = out

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._out


@pytest.mark.parametrize("bad", [1, 0, 2.0, True, "3"])
def test_bad_n_classes(bad: Any) -> None:
    with pytest.raises(InputError, match="n_classes: expected an integer >= 2"):
        sklearn_logits(_Stub(np.full((2, 2), 0.5)), None, n_classes=bad)


def test_nan_or_negative_probabilities() -> None:
    with pytest.raises(InputError, match="estimator: _Stub.predict_proba returned NaN or inf for 1 rows"):
        sklearn_logits(_Stub(np.array([[0.5, 0.5], [np.nan, 1.0]])), None, n_classes=2)
    with pytest.raises(InputError, match="estimator: _Stub.predict_proba returned negative probabilities"):
        sklearn_logits(_Stub(np.array([[1.5, -0.5]])), None, n_classes=2)


def test_wrong_output_shape_and_classes_shape() -> None:
    with pytest.raises(InputError, match=r"_Stub.predict_proba returned shape \(2, 3\), expected \(N, 2\)"):
        sklearn_logits(_Stub(np.full((2, 3), 1 / 3)), None, n_classes=3)
    with pytest.raises(InputError, match=r"_Stub.classes_ has shape \(0,\)"):
        sklearn_logits(_Stub(np.ones((2, 1)), classes=()), None, n_classes=3)
    with pytest.raises(InputError, match=r"classes_ must be distinct integers"):
        sklearn_logits(_Stub(np.full((2, 2), 0.5), classes=(1, 1)), None, n_classes=3)


def test_boolean_and_integral_float_classes() -> None:
    z = sklearn_logits(_Stub(np.array([[0.25, 0.75]]), classes=(False, True)), None, n_classes=2)
    np.testing.assert_allclose(z[0, 0], np.log([0.25, 0.75]))
    z = sklearn_logits(_Stub(np.array([[0.25, 0.75]]), classes=(0.0, 2.0)), None, n_classes=3)
    np.testing.assert_allclose(_softmax(z[0, 0]), [0.25, 0.0, 0.75], atol=1e-300)
