"""The Python API: audit a fitted model, a bundle of outputs, or a recipe's full game.

Typical use::

    from miaudit.api import audit_model
    result = audit_model(clf, X_train, y_train, X_heldout, y_heldout)
    print(result.metrics_table())
    result.save("audit-out")          # results.json, scores.csv, report.html

This module only adapts user inputs (fitted estimators, paths) to the game's one home,
:mod:`miaudit.audit`, which it re-exports: :func:`evaluate_bundle`, :func:`evaluate_game`, :func:`run_audit`,
:func:`run_audit_with_target`, :func:`run_demo`, :func:`check_budget`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._errors import InputError
from .audit import (
    check_budget,
    evaluate_bundle,
    evaluate_game,
    parse_budget,
    run_attacks,
    run_audit,
    run_audit_with_target,
    run_demo,
)
from .data import SignalBundle
from .metrics import AuditSettings
from .report import AuditResult

__all__ = [
    "AuditSettings",
    "audit_model",
    "audit_bundle",
    "check_budget",
    "evaluate_bundle",
    "evaluate_game",
    "parse_budget",
    "run_attacks",
    "run_audit",
    "run_audit_with_target",
    "run_demo",
]


def _as_2d_features(X: Any, name: str) -> Any:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise InputError(
            f"{name}: expected a non-empty 2-D array or DataFrame (n_samples, n_features), got shape {arr.shape}"
        )
    return arr


def audit_model(
    model: Any,
    X_members: Any,
    y_members: Any,
    X_nonmembers: Any,
    y_nonmembers: Any,
    *,
    attacks: Sequence[str] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    groups_members: Sequence[Any] | None = None,
    groups_nonmembers: Sequence[Any] | None = None,
    n_classes: int | None = None,
    game: Mapping[str, Any] | None = None,
    show_features: bool = False,
    output_kind: str | None = None,
    batch_size: int = 1024,
    query_budget: int | None = None,
    label_queries: Any = None,
) -> AuditResult:
    """Audit a fitted model against its members and held-out non-members.

    ``model`` is a fitted scikit-learn-like classifier (``predict_proba`` / ``decision_function``), a
    ``torch.nn.Module`` (evaluated in eval mode without gradients; ``output_kind`` default ``"logits"``), or
    any callable ``f(X) -> array`` with its ``output_kind`` declared: ``"logits"``, ``"probs"``, ``"scores"``
    ((n, C) per-class values) or ``"labels"`` ((n,) predicted classes: label-only access, the label-only
    attacks run on seeded queries described by ``label_queries``, a :class:`~miaudit.models.LabelQuerySpec`
    or a dict of its fields). An HTTP model is your callable: miaudit makes no requests. The model is
    queried ``batch_size`` rows at a time; with ``query_budget``, an audit that needs more queries is refused
    before the first one (:class:`~miaudit.models.QueryBudgetError`, an :class:`InputError`), and
    ``result.game["queries_used"]`` reports what was used.

    The most exposed records are listed by index (members first, then non-members) and only show
    their feature values with ``show_features=True``.

    Runs every attack that needs no reference models (population thresholds and cross-fitted
    trained attacks). For reference-model attacks (LiRA, RMIA, ...) use :func:`run_audit_with_target`,
    which trains references with your recipe.
    """
    from .models import sklearn_logits
    from .signals import probs_to_logits

    plain = output_kind is not None or not (hasattr(model, "predict_proba") or hasattr(model, "decision_function"))
    if plain or query_budget is not None or batch_size != 1024:
        return _audit_queried(model, X_members, y_members, X_nonmembers, y_nonmembers, attacks=attacks,
                              settings=settings, groups_members=groups_members, groups_nonmembers=groups_nonmembers,
                              n_classes=n_classes, game=game, show_features=show_features, output_kind=output_kind,
                              batch_size=batch_size, query_budget=query_budget, label_queries=label_queries)

    Xm = _as_2d_features(X_members, "X_members")
    Xn = _as_2d_features(X_nonmembers, "X_nonmembers")
    ym = np.asarray(y_members)
    yn = np.asarray(y_nonmembers)
    for nm, X, y in (("members", Xm, ym), ("nonmembers", Xn, yn)):
        if len(X) != len(y):
            raise InputError(
                f"X_{nm} and y_{nm} have inconsistent numbers of samples: [{len(X)}, {len(y)}]"
            )
    y_all = np.concatenate([ym, yn])
    classes = getattr(model, "classes_", None)
    string_classes = classes is not None and not np.issubdtype(np.asarray(classes).dtype, np.integer)
    if string_classes:
        # map string / arbitrary labels through the model's classes_
        lookup = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
        unknown = sorted({str(v) for v in y_all.tolist() if v not in lookup})
        if unknown:
            raise InputError(
                f"y: labels {unknown[:5]} are not among the model's classes_ {list(lookup)[:10]}"
            )
        y_codes = np.array([lookup[v] for v in y_all.tolist()], dtype=np.int64)
        n_classes = n_classes or len(lookup)
    else:
        if not np.issubdtype(y_all.dtype, np.integer):
            raise InputError(f"y: expected integer class labels, got dtype {y_all.dtype}")
        y_codes = y_all.astype(np.int64)
        if n_classes is None:
            n_classes = int(max(y_codes.max() + 1, len(classes) if classes is not None else 0))
    if isinstance(Xm, pd.DataFrame):
        X_all = pd.concat([Xm, pd.DataFrame(Xn, columns=Xm.columns)], ignore_index=True)
    else:
        X_all = np.concatenate([Xm, np.asarray(Xn)])
    if string_classes:
        # non-integer classes_: the model's output columns follow classes_, i.e. the codes above
        if not hasattr(model, "predict_proba"):
            raise InputError(
                f"model: {type(model).__name__} has string classes_ but no predict_proba; "
                "fit it on integer labels 0..C-1 instead"
            )
        logits = probs_to_logits(np.asarray(model.predict_proba(X_all), dtype=np.float64))[:, None, :]
    else:
        logits = sklearn_logits(model, X_all, n_classes=n_classes)
    groups = _joined_groups(groups_members, groups_nonmembers)
    is_member = np.concatenate([np.ones(len(ym), bool), np.zeros(len(yn), bool)])
    bundle = SignalBundle.from_arrays(labels=y_codes, target_logits=logits, is_member=is_member, groups=groups)
    game_d = {"source": "model", "model": _describe(model)}
    game_d.update(dict(game or {}))
    return evaluate_bundle(
        bundle, attacks=attacks, settings=settings, game=game_d, features=X_all if show_features else None
    )


def _joined_groups(groups_members: Any, groups_nonmembers: Any) -> np.ndarray | None:
    """Members' then non-members' group labels, or None; both or neither must be given."""
    if groups_members is None and groups_nonmembers is None:
        return None
    if groups_members is None or groups_nonmembers is None:
        raise InputError("groups_members and groups_nonmembers must be given together")
    return np.concatenate([np.asarray(groups_members), np.asarray(groups_nonmembers)])


def _audit_queried(model: Any, X_members: Any, y_members: Any, X_nonmembers: Any, y_nonmembers: Any, *,
                   attacks: Sequence[str] | None, settings: Any, groups_members: Any, groups_nonmembers: Any,
                   n_classes: int | None, game: Mapping[str, Any] | None, show_features: bool, output_kind: str | None,
                   batch_size: int, query_budget: int | None, label_queries: Any) -> AuditResult:
    """:func:`audit_model` for a model reached through :class:`~miaudit.models.QueryModel` (a callable, a torch
    module, or any model with a batch size or query budget)."""
    from .models import LabelQuerySpec, QueryModel
    from .models import label_queries as ask_labels

    Xm = _as_2d_features(X_members, "X_members")
    Xn = _as_2d_features(X_nonmembers, "X_nonmembers")
    ym, yn = np.asarray(y_members), np.asarray(y_nonmembers)
    for nm, X, y in (("members", Xm, ym), ("nonmembers", Xn, yn)):
        if len(X) != len(y):
            raise InputError(f"X_{nm} and y_{nm} have inconsistent numbers of samples: [{len(X)}, {len(y)}]")
    y_all = np.concatenate([ym, yn])
    if not np.issubdtype(y_all.dtype, np.integer):
        raise InputError(f"y: expected integer class labels 0..C-1, got dtype {y_all.dtype}; encode the labels first")
    if n_classes is None:
        n_classes = max(2, int(y_all.max()) + 1)
    if y_all.min() < 0 or y_all.max() >= n_classes:
        raise InputError(f"y: labels outside the classes [0, {n_classes}); pass n_classes or encode the labels as 0..C-1")
    if isinstance(Xm, pd.DataFrame):
        X_all = pd.concat([Xm, pd.DataFrame(Xn, columns=Xm.columns)], ignore_index=True)
    else:
        X_all = np.concatenate([Xm, np.asarray(Xn)])
    qm = QueryModel(model, n_classes=int(n_classes), output_kind=output_kind, batch_size=batch_size,
                    query_budget=query_budget)
    groups = _joined_groups(groups_members, groups_nonmembers)
    is_member = np.concatenate([np.ones(len(ym), bool), np.zeros(len(yn), bool)])
    n = len(y_all)
    game_d: dict[str, Any] = {"source": "model", "model": _describe(model), "output_kind": qm.output_kind,
                              "batch_size": qm.batch_size, "query_budget": qm.query_budget}
    if qm.output_kind == "labels":
        if isinstance(label_queries, LabelQuerySpec):
            spec = label_queries
        else:
            try:
                spec = LabelQuerySpec(**dict(label_queries or {}))
            except TypeError as exc:
                raise InputError(f"label_queries: {exc}; valid keys: augmentations, noise, shift, flip, "
                                 "boundary_queries, seed, batch_size") from None
        qm.require(n * spec.queries_per_example(), f"label-only access ({spec.queries_per_example()} per example)")
        ans = ask_labels(qm.predict_labels, X_all, spec)
        bundle = SignalBundle.from_arrays(
            labels=y_all, target_pred=ans.pred, target_distance=ans.distance if spec.boundary_queries else None,
            is_member=is_member, groups=groups, n_classes=int(n_classes),
            meta={"label_queries": {"per_example": int(ans.queries.max()), "augmentations": int(ans.pred.shape[1]),
                                    "boundary": int(ans.queries.max()) - int(ans.pred.shape[1])}})
        game_d["label_queries"] = spec.to_dict()
    else:
        if label_queries is not None:
            raise InputError("label_queries: only for output_kind='labels' (label-only access)")
        qm.require(n, "scoring every example once")
        out = qm.outputs(X_all)
        kw = {"target_scores": out} if qm.output_kind == "scores" else {"target_logits": out}
        bundle = SignalBundle.from_arrays(labels=y_all, is_member=is_member, groups=groups,
                                          meta={"outputs_kind": qm.output_kind}, **kw)
    game_d["queries_used"] = qm.queries_used
    game_d.update(dict(game or {}))
    return evaluate_bundle(bundle, attacks=attacks, settings=settings, game=game_d,
                           features=X_all if show_features else None)


def _describe(model: Any) -> str:
    text = repr(model)
    return text if len(text) <= 300 else text[:297] + "..."


def audit_bundle(
    bundle: SignalBundle | str | Any,
    *,
    attacks: Sequence[str] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    **load_kwargs: Any,
) -> AuditResult:
    """Audit precomputed outputs: a :class:`SignalBundle`, or a path to an ``.npz``/CSV/parquet bundle.

    ``load_kwargs`` go to :func:`miaudit.data.load_bundle` (tables: ``label_column``, ``member_column``,
    ``group_column``, ``outputs`` -- ``"p_cat,p_dog"`` or ``"p_*"`` -- and ``outputs_kind`` -- ``"logits"``,
    ``"probs"`` or ``"scores"``). Without labels, or on raw scores, the attacks that cannot read the bundle are
    skipped with the reason (``result.skipped``).
    """
    from .data import load_bundle

    game: dict[str, Any] = {}
    if not isinstance(bundle, SignalBundle):
        game["bundle_path"] = str(bundle)
        bundle = load_bundle(bundle, **load_kwargs)
    return evaluate_bundle(bundle, attacks=attacks, settings=settings, game=game)
