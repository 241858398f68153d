"""A target model however the user reaches it: a callable ``f(X) -> array`` of a declared output kind, a
``torch.nn.Module``, or a fitted scikit-learn-like classifier; batched, with an optional query budget.

An HTTP model is the user's callable (miaudit makes no requests). Every row passed to the model counts as
one query; with a ``query_budget``, a call that would exceed it raises :class:`QueryBudgetError` *before*
the model is asked (nothing is half-done), naming how many queries were used and needed.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .._errors import InputError
from ._sklearn import sklearn_logits

__all__ = ["CALLABLE_OUTPUT_KINDS", "QueryBudgetError", "QueryModel", "is_torch_module"]

#: What a callable target can return (``output_kind``).
CALLABLE_OUTPUT_KINDS = ("logits", "probs", "scores", "labels")
_TINY = np.finfo(np.float64).tiny


class QueryBudgetError(InputError):
    """The audit needs more queries to the target than the query budget allows (exit 2)."""


def is_torch_module(model: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _is_estimator(model: Any) -> bool:
    return hasattr(model, "predict_proba") or hasattr(model, "decision_function")


class QueryModel:
    """Query a target in batches, count the queries, honour the budget.

    ``model``: a fitted classifier with ``predict_proba``/``decision_function`` (outputs: logits, as
    :func:`~miaudit.models.sklearn_logits`), a ``torch.nn.Module`` (evaluated in eval mode without
    gradients; outputs: ``output_kind``, default ``"logits"``), or any callable ``f(X) -> array``
    (``output_kind`` required: ``"logits"``/``"probs"``/``"scores"`` return (n, C) floats, ``"labels"``
    returns (n,) class indices in ``[0, C)``). ``batch_size`` rows per call; ``query_budget`` the most rows
    the target may be asked about (None: no limit).
    """

    def __init__(self, model: Any, *, n_classes: int, output_kind: str | None = None, batch_size: int = 1024,
                 query_budget: int | None = None) -> None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
            raise InputError(f"n_classes: expected an integer >= 2, got {n_classes!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"batch_size: expected an integer >= 1, got {batch_size!r}; use --batch-size 1024")
        if query_budget is not None and (isinstance(query_budget, bool) or not isinstance(query_budget, (int, np.integer))
                                         or query_budget < 1):
            raise InputError(f"query_budget: expected an integer >= 1 (queries to the target), got {query_budget!r}")
        self.torch = is_torch_module(model)
        self.estimator = not self.torch and _is_estimator(model)
        if output_kind is not None and output_kind not in CALLABLE_OUTPUT_KINDS:
            raise InputError(f"output_kind: expected one of {', '.join(CALLABLE_OUTPUT_KINDS)}, got {output_kind!r}")
        if self.estimator:
            if output_kind not in (None, "logits", "probs"):
                raise InputError(f"output_kind: {type(model).__name__} has predict_proba/decision_function, whose "
                                 f"outputs are probabilities or logits; got output_kind={output_kind!r}")
            output_kind = "logits"
        elif self.torch:
            output_kind = output_kind or "logits"
        elif callable(model):
            if output_kind is None:
                raise InputError("output_kind: a callable target needs its output kind declared: 'logits', 'probs', "
                                 "'scores' (any real per-class values) or 'labels' (predicted classes only)")
        else:
            raise InputError(f"model: expected a fitted classifier (predict_proba), a torch.nn.Module or a callable "
                             f"f(X) -> array, got {type(model).__name__}")
        self.model = model
        self.n_classes = int(n_classes)
        self.output_kind: str = output_kind
        self.batch_size = int(batch_size)
        self.query_budget = None if query_budget is None else int(query_budget)
        self.queries_used = 0

    # ------------------------------------------------------------------------------------------ budget
    def require(self, n: int, what: str) -> None:
        """Refuse, before any query, a plan of ``n`` more queries that the budget cannot cover."""
        if self.query_budget is not None and self.queries_used + n > self.query_budget:
            raise QueryBudgetError(
                f"query budget: {what} needs {n} queries to the target, {self.query_budget - self.queries_used} of "
                f"the budget of {self.query_budget} are left ({self.queries_used} used); nothing was queried: raise the "
                "budget ([target] query_budget, query_budget=) or ask fewer queries (fewer augmentations or "
                "boundary_queries)")

    def count(self, n: int) -> None:
        """Count ``n`` queries about to be sent; refuse, before sending, a batch that would exceed the budget."""
        if self.query_budget is not None and self.queries_used + n > self.query_budget:
            raise QueryBudgetError(
                f"query budget: exhausted after {self.queries_used} of {self.query_budget} queries to the target "
                f"(the next batch needs {n}); nothing was lost: raise the budget ([target] query_budget, "
                "query_budget=) and re-run")
        self.queries_used += n

    def _raw(self, Xb: Any) -> np.ndarray:
        n = len(Xb)
        self.count(n)
        if self.torch:
            return self._torch(Xb)
        try:
            out = self.model(Xb)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's callable failed: say so, keep the type
            raise InputError(f"model callable failed on a batch of {n} rows ({type(exc).__name__}: {exc})") from exc
        return np.asarray(out)

    def _torch(self, Xb: Any) -> np.ndarray:
        import torch

        m = self.model
        was_training = m.training
        try:
            m.eval()
            param = next(m.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
            dtype = param.dtype if param is not None and param.dtype.is_floating_point else torch.float32
            with torch.no_grad():
                t = torch.as_tensor(np.asarray(Xb), dtype=dtype, device=device)
                return np.asarray(m(t).detach().to("cpu", torch.float64).numpy())
        finally:
            m.train(was_training)

    # ---------------------------------------------------------------------------------------- outputs
    def _batches(self, X: Any) -> list[Any]:
        n = len(X)
        if hasattr(X, "iloc"):
            return [X.iloc[s:s + self.batch_size] for s in range(0, n, self.batch_size)]
        return [X[s:s + self.batch_size] for s in range(0, n, self.batch_size)]

    def outputs(self, X: Any) -> np.ndarray:
        """(N, C) float64 outputs of the declared kind (log-probabilities for ``"probs"`` and estimators;
        raw values for ``"scores"``); for ``"labels"``: (N,) int64."""
        if self.output_kind == "labels":
            return self.predict_labels(X)
        parts = []
        for Xb in self._batches(X):
            if self.estimator:
                self.count(len(Xb))
                parts.append(sklearn_logits(self.model, Xb, n_classes=self.n_classes)[:, 0, :])
                continue
            out = self._raw(Xb).astype(np.float64, copy=False)
            if out.shape != (len(Xb), self.n_classes):
                raise InputError(f"model callable returned shape {out.shape} for {len(Xb)} rows, expected "
                                 f"({len(Xb)}, {self.n_classes}) {self.output_kind} (one row per example, one column "
                                 "per class)")
            if not np.all(np.isfinite(out)):
                raise InputError(f"model callable returned NaN/inf in {int((~np.isfinite(out)).any(axis=1).sum())} "
                                 f"rows of {self.output_kind}; fix the model or its inputs")
            if self.output_kind == "probs":
                if out.min() < -1e-6 or out.max() > 1 + 1e-6 or np.abs(out.sum(axis=1) - 1).max() > 1e-3:
                    raise InputError("model callable: output_kind 'probs' but the rows are not probabilities "
                                     "(in [0, 1], summing to 1); declare output_kind 'scores' or 'logits'")
                out = np.log(np.maximum(out, _TINY))
            parts.append(out)
        return np.concatenate(parts) if parts else np.zeros((0, self.n_classes))

    def predict_labels(self, X: Any) -> np.ndarray:
        """(N,) int64 predicted classes (argmax of the outputs unless the model returns labels)."""
        if self.output_kind != "labels":
            out: np.ndarray = np.argmax(self.outputs(X), axis=1).astype(np.int64)
            return out
        parts = []
        for Xb in self._batches(X):
            p = self._raw(Xb)
            if p.ndim == 2 and p.shape[1] == 1:
                p = p[:, 0]
            if p.shape != (len(Xb),):
                raise InputError(f"model callable returned shape {p.shape} for {len(Xb)} rows, expected ({len(Xb)},) "
                                 "predicted class indices (output_kind 'labels')")
            if p.dtype.kind == "f" and np.all(np.isfinite(p)) and np.array_equal(p, np.round(p)):
                p = p.astype(np.int64)
            if p.dtype.kind not in "iub":
                raise InputError(f"model callable returned {p.dtype} labels; expected integer class indices in "
                                 f"[0, {self.n_classes}) (encode the classes as 0..C-1)")
            p = p.astype(np.int64)
            if p.size and (p.min() < 0 or p.max() >= self.n_classes):
                bad = int(p.min()) if p.min() < 0 else int(p.max())
                raise InputError(f"model callable returned the label {bad}, outside the classes [0, {self.n_classes}); "
                                 "encode the classes as 0..C-1 or pass the right number of classes")
            parts.append(p)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
