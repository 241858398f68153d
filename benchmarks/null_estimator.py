"""A null scikit-learn classifier for ``bench_null_games.py``: its outputs never depend on its training rows.

``fit(X, y)`` records ``classes_`` and ``n_features_in_`` (so the estimator looks fitted to scikit-learn and
to miaudit) and nothing about which rows it saw. ``predict_proba(X)`` is the softmax of

    scale * (X / x_max - 0.5) @ W0  +  noise_scale * eps(random_state, row)

where ``W0`` is drawn from a FIXED seed (the same for every model: a shared per-example "difficulty", so
reference attacks see realistic per-example structure) and ``eps`` is standard Gaussian noise seeded by the
model's ``random_state`` and a hash of the row's bytes, so it is deterministic per (model, example) and
independent across models. Membership cannot leak: the output on a row is the same whether or not that row
was in ``fit``.

Use it in an audit config (the folder holding this file must be on PYTHONPATH)::

    [model]
    kind = "sklearn"
    estimator = "null_estimator.NullClassifier"
    preprocessing = "none"
"""

from __future__ import annotations

import zlib

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

W0_SEED = 20261203  # fixed: every model shares the same per-example function of the features


class NullClassifier(ClassifierMixin, BaseEstimator):
    """Outputs = fixed function of the features + per-(model, row) noise; ignores which rows were in fit.

    (Mixin first, ``BaseEstimator`` last: the MRO scikit-learn >= 1.6 requires for tags.)
    """

    def __init__(self, random_state: int | None = None, scale: float = 3.0, noise_scale: float = 1.0,
                 x_max: float = 16.0):
        self.random_state = random_state
        self.scale = scale
        self.noise_scale = noise_scale
        self.x_max = x_max

    def fit(self, X, y):  # noqa: N803 - scikit-learn naming
        X = np.asarray(X)
        y = np.asarray(y)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError(f"NullClassifier.fit: X {X.shape} and y {y.shape} do not match")
        self.classes_ = np.unique(y)
        self.n_features_in_ = int(X.shape[1])
        return self  # nothing about the rows is kept

    def _w0(self) -> np.ndarray:
        rng = np.random.default_rng(W0_SEED)
        return rng.standard_normal((self.n_features_in_, len(self.classes_))) / np.sqrt(self.n_features_in_)

    def decision_logits(self, X) -> np.ndarray:
        if not hasattr(self, "classes_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("NullClassifier is not fitted yet; call fit first")
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
        base = self.scale * (X / self.x_max - 0.5) @ self._w0()
        seed0 = 0 if self.random_state is None else int(self.random_state) % (2**32)
        c = len(self.classes_)
        noise = np.empty_like(base)
        for i in range(X.shape[0]):
            row_hash = zlib.crc32(X[i].tobytes())
            noise[i] = np.random.default_rng([seed0, row_hash]).standard_normal(c)
        return base + self.noise_scale * noise

    def predict_proba(self, X) -> np.ndarray:
        z = self.decision_logits(X)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_logits(X), axis=1)]
