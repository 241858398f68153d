"""Label-only access for trained models: a recipe wrapper whose models are also asked for their labels.

:class:`LabelAccessRecipe` trains exactly like the recipe it wraps; after training, each worker asks the
model for its predicted classes on the seeded label-only queries of
:func:`miaudit.models.label_queries` (augmentations and the boundary search), and the answers are cached
with the model (``TrainedModels.extras``: ``label_pred`` (K, N, A), ``label_distance`` (K, N),
``label_queries`` (K, N)). The query spec is part of the model's cache key.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models import LabelQuerySpec, label_queries

__all__ = ["LabelAccessRecipe", "label_predict"]


def label_predict(recipe: Any, model: Any) -> Any:
    """rows -> predicted class of ``model`` (the argmax of its first query's outputs)."""

    def predict(X: Any) -> np.ndarray:
        return np.asarray(np.argmax(np.asarray(recipe.predict_logits(model, X))[:, 0, :], axis=1), dtype=np.int64)

    return predict


class LabelAccessRecipe:
    """``inner``'s training, plus the label-only answers of each model (:meth:`label_outputs`)."""

    def __init__(self, inner: Any, spec: LabelQuerySpec) -> None:
        self.inner = inner
        self.label_spec = spec
        self.n_classes = int(inner.n_classes)
        if hasattr(inner, "train_group") and hasattr(inner, "group_size"):
            self.train_group = inner.train_group
            self.group_size = inner.group_size

    def spec(self) -> dict[str, Any]:
        return {**self.inner.spec(), "label_queries": self.label_spec.to_dict()}

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        return self.inner.train(X, y, seed=seed)

    def predict_logits(self, model: Any, X: Any) -> np.ndarray:
        out: np.ndarray = self.inner.predict_logits(model, X)
        return out

    def preload_modules(self) -> list[str]:
        fn = getattr(self.inner, "preload_modules", None)
        return [*(fn() if callable(fn) else []), "miaudit.models._label_query"]

    def label_outputs(self, model: Any, X: Any) -> dict[str, np.ndarray]:
        ans = label_queries(label_predict(self.inner, model), X, self.label_spec)
        return {"label_pred": ans.pred, "label_distance": ans.distance, "label_queries": ans.queries}

    def __repr__(self) -> str:
        return f"LabelAccessRecipe({self.inner!r}, {self.label_spec!r})"
