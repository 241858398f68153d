"""Training recipes: how to train one model and query it.

A *recipe* is the unit the reference-model game repeats K times with different data halves and seeds
(LiRA's shadow models, Carlini et al. 2022, "Membership Inference Attacks From First Principles",
Sec. IV-B: reference models must be trained with the target's exact recipe). It is a small picklable
object, shipped once to every worker process, with a JSON-able :meth:`spec` that enters the model-cache key.

:class:`SklearnRecipe` builds a fresh scikit-learn ``Pipeline`` (preprocessing + estimator) per model.
A PyTorch recipe lives in ``miaudit.training.torch_recipe`` and follows the same :class:`Recipe` protocol.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._errors import ConfigError
from .._imports import import_object, import_optional
from ..models import sklearn_logits

__all__ = [
    "Recipe",
    "SklearnRecipe",
    "recipe_from_spec",
    "check_estimator_path",
    "check_step_path",
]


@runtime_checkable
class Recipe(Protocol):
    """What :func:`~miaudit.training.train_models` needs to train and query one model.

    Optional, for many-models-at-once training (stacked / vmapped PyTorch models): a method
    ``train_group(X, y, masks: (G, N) bool, seeds: list[int]) -> list[model]`` and an int attribute
    ``group_size`` (how many models one call trains). The runner uses it when present.
    """

    n_classes: int

    def spec(self) -> dict[str, Any]:
        """JSON-able description of the recipe; part of the model-cache key."""
        ...

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        """Train one fresh model on ``(X, y)`` with randomness drawn from ``seed``."""
        ...

    def predict_logits(self, model: Any, X: Any) -> np.ndarray:
        """Logits (or log-probabilities) of ``model`` on ``X``: float array (N, A, C)."""
        ...


def _instantiate(cls: Any, params: Mapping[str, Any], *, key: str) -> Any:
    try:
        return cls(**params)
    except TypeError as exc:
        valid = sorted(_init_params(cls))
        raise ConfigError(
            f"{key}: cannot build {getattr(cls, '__name__', cls)!r} with params {dict(params)!r} ({exc}); "
            f"valid parameters: {', '.join(valid) or '(none)'}"
        ) from None


_PARAM_NAME = re.compile(r"The '([^']+)' parameter")


def _validate_params(obj: Any, *, key: str) -> None:
    """Check ``obj``'s parameters with scikit-learn's own validation, without fitting.

    Estimators built on ``sklearn.base.BaseEstimator`` declare ``_parameter_constraints`` and check
    them in ``_validate_params()`` (normally at the start of ``fit``). Calling it here reports a bad
    value (``activation = "sigmoid"``) before any model is trained. Objects without that machinery
    (third-party classes, older scikit-learn) are left to ``fit``.
    """
    validate = getattr(obj, "_validate_params", None)
    if not callable(validate) or not isinstance(getattr(obj, "_parameter_constraints", None), dict):
        return
    try:
        validate()
    except (ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())
        m = _PARAM_NAME.search(message)
        name = f"{m.group(1)!r}: " if m else ""
        raise ConfigError(f"{key}: {name}{message}") from None
    except Exception:  # pragma: no cover - a private API that misbehaves is not the user's error
        return


def _init_params(cls: Any) -> list[str]:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return []
    return [n for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def check_estimator_path(
    path: str,
    params: Mapping[str, Any] | None = None,
    *,
    key: str = "[model] estimator",
    params_key: str = "[model] params",
) -> Any:
    """Import and instantiate an estimator class; :class:`ConfigError` if it cannot classify.

    The class must have ``fit`` and ``predict_proba`` or ``decision_function`` (the two outputs
    :func:`miaudit.models.sklearn_logits` turns into logits). Returns an unfitted instance.
    """
    cls = import_object(path, key=key)
    if not callable(cls):
        raise ConfigError(f"{key}: {path!r} is not a class (got {type(cls).__name__}); name an estimator class")
    if not hasattr(cls, "fit") or not (hasattr(cls, "predict_proba") or hasattr(cls, "decision_function")):
        raise ConfigError(
            f"{key}: {path!r} has no fit and predict_proba/decision_function, so it cannot be audited; "
            "name a classifier such as 'sklearn.neural_network.MLPClassifier'"
        )
    est = _instantiate(cls, params or {}, key=params_key)
    _validate_params(est, key=params_key)
    return est


def check_step_path(path: str, params: Mapping[str, Any] | None = None, *, key: str) -> Any:
    """Import and instantiate a preprocessing step; it needs ``fit`` and ``transform``."""
    cls = import_object(path, key=key)
    if not callable(cls) or not hasattr(cls, "fit") or not hasattr(cls, "transform"):
        raise ConfigError(
            f"{key}: {path!r} has no fit and transform, so it cannot be a preprocessing step; "
            "name a transformer such as 'sklearn.preprocessing.StandardScaler'"
        )
    step = _instantiate(cls, params or {}, key=key)
    _validate_params(step, key=key.removesuffix(".step") + ".params")
    return step


def _jsonable(value: Any, *, key: str) -> Any:
    """Round-trip ``value`` through JSON (tuples become lists); :class:`ConfigError` if impossible."""
    try:
        return json.loads(json.dumps(value, sort_keys=True, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{key}: expected JSON-like values (numbers, strings, lists, tables), got {value!r} ({exc}); "
            "pass plain values so the recipe can be cached"
        ) from None


def _normalise_preprocessing(preprocessing: Any) -> str | list[dict[str, Any]]:
    if preprocessing is None:
        return "none"
    if isinstance(preprocessing, str):
        if preprocessing not in ("auto", "none"):
            raise ConfigError(
                f"[model] preprocessing: expected 'auto', 'none' or a list of {{step, params}} tables, got {preprocessing!r}"
            )
        return preprocessing
    if not isinstance(preprocessing, Sequence):
        raise ConfigError(
            f"[model] preprocessing: expected 'auto', 'none' or a list of {{step, params}} tables, "
            f"got {type(preprocessing).__name__}"
        )
    steps: list[dict[str, Any]] = []
    for i, item in enumerate(preprocessing):
        key = f"[model] preprocessing[{i}]"
        if isinstance(item, str):
            item = {"step": item}
        if not isinstance(item, Mapping) or "step" not in item:
            raise ConfigError(f"{key}: expected a table with 'step' (import path) and optional 'params', got {item!r}")
        unknown = sorted(set(item) - {"step", "params"})
        if unknown:
            raise ConfigError(f"{key}: unknown key {unknown[0]!r}; valid keys: params, step")
        params = item.get("params") or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"{key}.params: expected a table of parameters, got {type(params).__name__}")
        check_step_path(item["step"], params, key=f"{key}.step")
        steps.append({"step": item["step"], "params": _jsonable(dict(params), key=f"{key}.params")})
    return steps


def _set_random_state(estimator: Any, seed: int) -> None:
    """Set every ``random_state`` parameter (of the estimator and nested steps) to ``seed``."""
    names = [name for name in estimator.get_params(deep=True) if name == "random_state" or name.endswith("__random_state")]
    if names:
        estimator.set_params(**{name: seed for name in names})


class SklearnRecipe:
    """Train a scikit-learn classifier, with preprocessing, as a fresh ``Pipeline`` per model.

    Parameters
    ----------
    estimator:
        Import path of the classifier class, e.g. ``"sklearn.neural_network.MLPClassifier"``. It must
        have ``fit`` and ``predict_proba`` or ``decision_function``.
    params:
        Keyword arguments of the estimator (JSON-like values). ``random_state`` is always set from the
        per-model seed, so that K reference models differ in their randomness as well as their data.
    preprocessing:
        ``"auto"`` (default): ``StandardScaler`` for numeric arrays; for a DataFrame with object or
        category columns, ``OneHotEncoder(handle_unknown="ignore")`` on those (missing values are a
        category of their own) and median imputation + ``StandardScaler`` on the numeric ones through a
        ``ColumnTransformer``. Arrays with more than 2 dimensions (images) are flattened first, whatever
        the preprocessing. ``"none"``: no preprocessing. Or a list of
        ``{"step": import path, "params": {...}}`` applied in order.
    n_classes:
        Number of classes C; logits always have C columns even if a model saw fewer classes.
    queries:
        Optional import paths of functions ``f(X) -> X'`` giving augmented queries; query 0 is always ``X``
        itself, so ``A = 1 + len(queries)`` (field notes §2, augmented queries).
    """

    kind = "sklearn"

    def __init__(
        self,
        estimator: str,
        params: Mapping[str, Any] | None = None,
        preprocessing: str | Sequence[Mapping[str, Any]] | None = "auto",
        *,
        n_classes: int,
        queries: Sequence[str] | None = None,
    ) -> None:
        params = {} if params is None else params
        if not isinstance(params, Mapping):
            raise ConfigError(f"[model] params: expected a table of estimator parameters, got {type(params).__name__}")
        jsonable_params = _jsonable(dict(params), key="[model] params")
        check_estimator_path(estimator, params)
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
            raise ConfigError(f"n_classes: expected an int >= 2, got {n_classes!r}; a classifier needs two classes")
        queries = list(queries or [])
        for i, q in enumerate(queries):
            if not callable(import_object(q, key=f"[game] queries[{i}]")):
                raise ConfigError(f"[game] queries[{i}]: {q!r} is not callable; name a function f(X) -> X")
        self.estimator = estimator
        self.params: dict[str, Any] = jsonable_params
        self._raw_params = dict(params)
        self.preprocessing = _normalise_preprocessing(preprocessing)
        self.n_classes = int(n_classes)
        self.queries = queries

    # -- protocol ---------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        return {
            "kind": "sklearn",
            "estimator": self.estimator,
            "params": self.params,
            "preprocessing": self.preprocessing,
            "n_classes": self.n_classes,
            "queries": list(self.queries),
        }

    @property
    def n_queries(self) -> int:
        return 1 + len(self.queries)

    def preload_modules(self) -> list[str]:
        """Modules worker processes need (imported once by the forkserver, not by every worker)."""
        mods = ["sklearn.pipeline", "sklearn.preprocessing", "sklearn.compose", "sklearn.impute",
                self.estimator.rpartition(".")[0], "miaudit.models"]
        if isinstance(self.preprocessing, list):
            mods += [s["step"].rpartition(".")[0] for s in self.preprocessing]
        return mods

    def build(self, X: Any, *, seed: int) -> Any:
        """A fresh, unfitted ``Pipeline`` for data like ``X`` with every ``random_state`` = ``seed``."""
        from sklearn.pipeline import Pipeline

        pre = self._preprocessing_steps(X)
        if not hasattr(X, "iloc") and np.ndim(X) > 2:  # images etc.: sklearn estimators need 2-D input
            from sklearn.preprocessing import FunctionTransformer

            pre.insert(0, FunctionTransformer(_flatten))
        steps = [(f"pre{i}", step) for i, step in enumerate(pre)]
        est = check_estimator_path(self.estimator, self._raw_params)
        pipe = Pipeline([*steps, ("model", est)])
        _set_random_state(pipe, int(seed))
        return pipe

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        """Fit a fresh pipeline. A fixed iteration budget is part of the recipe, so scikit-learn's
        ConvergenceWarning (max_iter reached) is silenced: the audit measures the model as trained."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return self.build(X, seed=seed).fit(X, y)

    def predict_logits(self, model: Any, X: Any) -> np.ndarray:
        outs = [sklearn_logits(model, X, n_classes=self.n_classes)[:, 0, :]]
        for q in self.queries:
            fn: Callable[[Any], Any] = import_object(q, key="[game] queries")
            outs.append(sklearn_logits(model, fn(X), n_classes=self.n_classes)[:, 0, :])
        return np.stack(outs, axis=1)

    # -- helpers ----------------------------------------------------------------------------------
    def _preprocessing_steps(self, X: Any) -> list[Any]:
        steps = self.preprocessing
        if isinstance(steps, str):  # "none" or "auto" (see _normalise_preprocessing)
            return [] if steps == "none" else [_auto_preprocessing(X)]
        return [
            check_step_path(s["step"], s["params"], key=f"[model] preprocessing[{i}].step")
            for i, s in enumerate(steps)
        ]

    def __repr__(self) -> str:
        return f"SklearnRecipe({self.estimator!r}, params={self.params!r}, preprocessing={self.preprocessing!r}, n_classes={self.n_classes})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SklearnRecipe) and self.spec() == other.spec()

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> SklearnRecipe:
        """Inverse of :meth:`spec`."""
        spec = dict(spec)
        spec.pop("kind", None)
        try:
            return cls(**spec)
        except TypeError as exc:
            raise ConfigError(f"recipe spec: {exc}; expected keys estimator, params, preprocessing, n_classes, queries") from None


def _auto_preprocessing(X: Any) -> Any:
    from sklearn.preprocessing import StandardScaler

    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a core dependency
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        categorical = [c for c in X.columns if not is_numeric_dtype(X[c]) or is_bool_dtype(X[c])]
        if categorical:
            from sklearn.compose import ColumnTransformer
            from sklearn.impute import SimpleImputer
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import OneHotEncoder

            numeric = [c for c in X.columns if c not in categorical]
            return ColumnTransformer(
                [
                    ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
                    ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                ]
            )
    return StandardScaler()


def _flatten(X: Any) -> np.ndarray:
    """(N, ...) -> (N, prod(...)), for image arrays fed to scikit-learn estimators."""
    arr = np.asarray(X)
    return arr.reshape(arr.shape[0], -1)


def recipe_from_spec(spec: Mapping[str, Any]) -> Recipe:
    """Build a recipe from its spec dict: ``kind`` ``"sklearn"`` (default), ``"torch"`` or ``"causal_lm"`` (lazy imports)."""
    kind = spec.get("kind", "sklearn")
    if kind == "sklearn":
        return SklearnRecipe.from_spec(spec)
    if kind == "torch":
        try:
            from .torch_recipe import TorchRecipe
        except ImportError as exc:
            if "torch" in str(exc) and "torch_recipe" not in str(exc):
                import_optional("torch", "torch")
            raise ConfigError(
                f"[model] kind: 'torch' recipes are not available in this installation ({exc}); "
                'install them with: pip install "miaudit[torch]"'
            ) from None
        return TorchRecipe.from_spec(dict(spec))
    if kind == "causal_lm":  # language models (miaudit[llm]); torch and transformers are imported when training
        from .lm_recipe import LmRecipe

        return LmRecipe.from_spec(dict(spec))
    raise ConfigError(f"[model] kind: expected 'sklearn', 'torch' or 'causal_lm', got {kind!r}")
