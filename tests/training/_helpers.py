"""Recipes and data for the training tests (importable by worker processes)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from miaudit.training import SklearnRecipe

LR = "sklearn.linear_model.LogisticRegression"


def digits(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n].astype(np.int64)


def balanced(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Independent tiny balanced design (so these tests do not depend on miaudit.data)."""
    rng = np.random.default_rng(seed)
    m = np.zeros((k, n), dtype=bool)
    for j in range(n):
        m[rng.choice(k, k // 2, replace=False), j] = True
    return m


def lr_recipe(**params: Any) -> SklearnRecipe:
    return SklearnRecipe(LR, {"max_iter": 200, **params}, n_classes=10)


class CountingRecipe(SklearnRecipe):
    """Counts train calls (in-process only: use jobs=1)."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.calls: list[int] = []

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        self.calls.append(seed)
        return super().train(X, y, seed=seed)


class FailOnSeed(SklearnRecipe):
    """Raises ValueError('boom ...') when asked to train with ``fail_seed``."""

    def __init__(self, *a: Any, fail_seed: int, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.fail_seed = fail_seed

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        if seed == self.fail_seed:
            raise ValueError(f"boom on seed {seed}")
        return super().train(X, y, seed=seed)


class SlowRecipe(SklearnRecipe):
    """Sleeps before every model (for the SIGKILL test)."""

    def __init__(self, *a: Any, delay: float, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.delay = delay

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        time.sleep(self.delay)
        return super().train(X, y, seed=seed)


class GroupRecipe(SklearnRecipe):
    """Has train_group (trains the group one by one) and records group sizes in a file."""

    group_size = 3

    def __init__(self, *a: Any, log_path: str, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.log_path = log_path

    def train_group(self, X: Any, y: np.ndarray, masks: np.ndarray, seeds: list[int]) -> list[Any]:
        with open(self.log_path, "a") as fh:
            fh.write(f"{len(seeds)}\n")
        return [self.train(X[m], y[m], seed=s) for m, s in zip(masks, seeds)]


class BadShapeRecipe(SklearnRecipe):
    def predict_logits(self, model: Any, X: Any) -> np.ndarray:
        return np.zeros((3, 1, self.n_classes))


class PidRecipe(SklearnRecipe):
    """Records the pid of the process that trains (to check the pool is used)."""

    def __init__(self, *a: Any, log_path: str, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.log_path = log_path

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        import threadpoolctl

        limits = {i["internal_api"]: i["num_threads"] for i in threadpoolctl.threadpool_info()}
        with open(self.log_path, "a") as fh:
            fh.write(f"{os.getpid()} {os.environ.get('OMP_NUM_THREADS')} {max(limits.values(), default=1)}\n")
        return super().train(X, y, seed=seed)


class VaryingQueriesRecipe(SklearnRecipe):
    """Gives model with seed ``odd_seed`` two queries and the others one (a broken recipe)."""

    def __init__(self, *a: Any, odd_seed: int, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.odd_seed = odd_seed

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        model = super().train(X, y, seed=seed)
        model.miaudit_seed_ = seed
        return model

    def predict_logits(self, model: Any, X: Any) -> np.ndarray:
        out = super().predict_logits(model, X)
        return np.concatenate([out, out], axis=1) if model.miaudit_seed_ == self.odd_seed else out
