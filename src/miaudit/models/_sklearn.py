"""Adapter: a fitted scikit-learn classifier (or Pipeline) -> logits ``(N, 1, C)`` float64."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import InputError

__all__ = ["sklearn_logits", "MISSING_CLASS_LOGIT"]

#: Log-probability given to classes absent from a model's ``classes_`` (``log`` of the smallest
#: positive float64, ~ -708.4): finite, and ``exp`` of it is negligible next to any real class.
_TINY = np.finfo(np.float64).tiny
MISSING_CLASS_LOGIT = float(np.log(_TINY))


def _classes(estimator: Any, n_classes: int) -> np.ndarray:
    name = type(estimator).__name__
    try:
        classes = estimator.classes_
    except AttributeError:
        raise InputError(
            f"estimator: {name} has no classes_ (is it a fitted classifier?); fit it with integer labels 0..C-1 first"
        ) from None
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.size == 0:
        raise InputError(f"estimator: {name}.classes_ has shape {classes.shape}; expected a 1-d array of class labels")
    if classes.dtype.kind == "b":
        classes = classes.astype(np.int64)
    if classes.dtype.kind not in "iu" and not (
        classes.dtype.kind == "f" and np.all(np.isfinite(classes)) and np.array_equal(classes, np.round(classes))
    ):
        raise InputError(
            f"estimator: {name}.classes_ must be integers in [0, {n_classes}), got {classes[:5].tolist()}; "
            "fit the model on labels encoded as 0..C-1 (e.g. with sklearn's LabelEncoder)"
        )
    classes = classes.astype(np.int64)
    if classes.min() < 0 or classes.max() >= n_classes or np.unique(classes).size != classes.size:
        raise InputError(
            f"estimator: {name}.classes_ must be distinct integers in [0, {n_classes}), got {classes.tolist()}; "
            "pass the right n_classes or fit the model on labels encoded as 0..C-1"
        )
    return classes


def _method(estimator: Any, name: str) -> Any:
    try:
        return getattr(estimator, name)
    except AttributeError:  # includes sklearn's available_if hiding the method
        return None


def sklearn_logits(estimator: Any, X: Any, *, n_classes: int) -> np.ndarray:
    """Logits of a fitted scikit-learn classifier on ``X``, shape ``(N, 1, C)`` float64.

    ``predict_proba`` is preferred: its safe log (as :func:`miaudit.signals.probs_to_logits`, so
    a probability of 0 becomes a large negative finite number) is a valid logit vector. Without it,
    ``decision_function`` is used as the logits (binary ``d`` becomes ``[0, d]``: softmax of that is
    the sigmoid of ``d``). Either way the model's columns are placed into the full ``0..C-1``
    columns through ``estimator.classes_``; classes the model never saw (absent from its training
    subset) get :data:`MISSING_CLASS_LOGIT` below the row's smallest logit, i.e. probability ~0.

    Parameters
    ----------
    estimator : fitted classifier or ``sklearn.pipeline.Pipeline`` ending in one
    X : array-like or pandas DataFrame accepted by the estimator
    n_classes : int, the number ``C`` of classes in the audit (>= 2)
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise InputError(f"n_classes: expected an integer >= 2, got {n_classes!r}; pass the number of classes C")
    n_classes = int(n_classes)
    name = type(estimator).__name__
    predict_proba = _method(estimator, "predict_proba")
    decision_function = _method(estimator, "decision_function")
    if predict_proba is None and decision_function is None:
        raise InputError(
            f"estimator: {name} has neither predict_proba nor decision_function; use a classifier that has one "
            "(e.g. SVC(probability=True)) or hand over its outputs as a signal bundle"
        )
    classes = _classes(estimator, n_classes)

    if predict_proba is not None:
        out = np.asarray(predict_proba(X), dtype=np.float64)
        what = "predict_proba"
    else:
        out = np.asarray(decision_function(X), dtype=np.float64)
        what = "decision_function"
        if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1 and classes.size == 2):
            d = out.reshape(-1)
            out = np.stack([np.zeros_like(d), d], axis=1)
    if out.ndim != 2 or out.shape[1] != classes.size:
        raise InputError(
            f"estimator: {name}.{what} returned shape {out.shape}, expected (N, {classes.size}) for its "
            f"{classes.size} classes_; use a single-output classifier"
        )
    if not np.all(np.isfinite(out)):
        raise InputError(
            f"estimator: {name}.{what} returned NaN or inf for {int((~np.isfinite(out)).any(axis=1).sum())} rows; "
            "check the input features for NaN/inf and the model for divergence"
        )
    if predict_proba is not None:
        if np.any(out < 0):
            raise InputError(f"estimator: {name}.predict_proba returned negative probabilities; check the model")
        out = np.log(np.maximum(out, _TINY))  # = signals.probs_to_logits (models may not import signals)
    logits = np.empty((out.shape[0], n_classes), dtype=np.float64)
    if classes.size < n_classes:
        floor = np.minimum(out.min(axis=1, keepdims=True), 0.0) + MISSING_CLASS_LOGIT
        logits[:] = floor
    logits[:, classes] = out
    return logits[:, None, :]
