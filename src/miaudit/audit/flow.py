"""The run flow of an audit, one for its three target sources.

Design (Carlini et al. 2022, LiRA, Sec. IV-B and VI; field notes §1): draw a pool of examples, train K
models of the user's recipe on a balanced design in complementary pairs (:mod:`miaudit.audit.design`), and
evaluate (:mod:`miaudit.audit.evaluate`). Where the target comes from:

* **config** (:func:`run_audit`): the target is one of the K = ``n_references + 2`` models; each of the first
  ``n_targets`` plays the target in turn against the others except its partner (``n_references`` each).
* **a user's fitted model** (:func:`run_audit_with_target`, or ``[target]`` in a config): the pool is its
  members and non-members, and K = ``n_references`` models drawn independently of it are the references.
* **the demo** (:func:`~miaudit.audit.demo.run_demo`): a config game on the embedded digits data.

Seeds: :func:`~miaudit.audit.design.game_seeds` splits the audit seed into the pool draw, the design and the
per-model seeds. Every input problem raises before any training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ConfigError, InputError
from .._imports import config_folder_on_path
from .._timing import phase
from ..config import AuditConfig, TargetConfig, load_config
from ..metrics import AuditSettings
from ..models import LabelQuerySpec, QueryModel, is_torch_module
from ..models import label_queries as label_queries_of
from ..report import AuditResult
from ..training import Execution, Recipe, TrainedModels, train_models
from ..training._runner import ProgressCallback
from .design import balanced_membership, check_n_models, game_seeds
from .evaluate import evaluate_bundle, evaluate_game
from .target import load_target_model, read_indices

__all__ = [
    "PreparedAudit",
    "prepare_audit",
    "train_prepared",
    "run_audit",
    "run_audit_with_target",
]

log = logging.getLogger("miaudit")


@dataclass(frozen=True, eq=False)
class PreparedAudit:
    """Everything the game needs before training: pool, design, seeds, recipe (all inputs checked)."""

    config: AuditConfig
    dataset_name: str
    n_classes: int
    pool_index: np.ndarray  # (N,) indices into the dataset
    X: Any  # pool features (ndarray or DataFrame)
    y: np.ndarray  # (N,) int64
    groups: np.ndarray | None
    is_member: np.ndarray  # (K, N) bool; (0, N) with a [target] (drawn later over its members/non-members)
    seeds: list[int]
    recipe: Recipe
    targets: list[int]


def _split_group(ds: Any, column: str) -> tuple[Any, np.ndarray]:
    X = ds.X
    if hasattr(X, "columns"):
        if column not in X.columns:
            raise ConfigError(f"[data] group: column {column!r} not found; available columns: "
                              f"{', '.join(map(str, list(X.columns)[:30]))}")
        return X.drop(columns=[column]), X[column].astype(str).to_numpy()
    names = list(ds.feature_names or [])
    if column not in names or np.ndim(X) != 2:
        raise ConfigError(f"[data] group: column {column!r} not found among the features "
                          f"({', '.join(names[:30]) or 'the data has no column names'}); name a feature column")
    j = names.index(column)
    return np.delete(X, j, axis=1), np.asarray(X[:, j])


def _take(X: Any, idx: np.ndarray) -> Any:
    if hasattr(X, "iloc"):
        return X.iloc[idx].reset_index(drop=True)
    return X[idx]


def prepare_audit(config: AuditConfig | str | Path) -> PreparedAudit:
    """Load the data, draw the pool and the balanced design, build the recipe. No training.

    Raises :class:`~miaudit.ConfigError` for every problem that needs the data to be seen (pool larger than
    the dataset or too small for the split, a missing group column, a torch recipe that cannot be built).
    """
    from ..data import load_dataset

    cfg = config if isinstance(config, AuditConfig) else load_config(config)
    try:
        ds = load_dataset(cfg.data.spec())
    except ConfigError:
        raise
    except InputError as exc:  # the loader's messages name the data.* key already
        raise ConfigError(str(exc)) from None
    X_all, groups_all = ds.X, None
    if cfg.data.group:
        X_all, groups_all = _split_group(ds, cfg.data.group)
    n_all, n_classes = ds.n_examples, ds.n_classes
    game = cfg.game
    K = game.n_models(with_target=cfg.target is not None)
    pool_ss, member_ss, seeds = game_seeds(game.seed, K)
    if cfg.target is None:
        n_pool = n_all if game.pool_size is None else game.pool_size
        if n_pool > n_all:
            raise ConfigError(f"[game] pool_size: {n_pool} is larger than the dataset ({n_all} examples in "
                              f"{ds.name!r}); lower it or leave it out to use every example")
        if n_pool // 2 < n_classes:
            raise ConfigError(f"[game] pool_size: {n_pool} is too small for the split: each model trains on "
                              f"{n_pool // 2} examples, fewer than the {n_classes} classes; use at least {2 * n_classes}")
        rng = np.random.default_rng(pool_ss)
        pool_index = np.arange(n_all) if n_pool == n_all else np.sort(rng.choice(n_all, n_pool, replace=False))
    else:
        pool_index = np.arange(n_all)
    try:
        recipe = cfg.model.build(n_classes=n_classes, queries=game.queries)
    except ConfigError:
        raise
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    X = _take(X_all, pool_index)
    y = np.asarray(ds.y, dtype=np.int64)[pool_index]
    groups = None if groups_all is None else np.asarray(groups_all)[pool_index]
    if cfg.target is None:
        is_member = balanced_membership(len(pool_index), K, seed=member_ss)
    else:  # drawn over the target's members and non-members by run_audit_with_target
        is_member = np.zeros((0, len(pool_index)), dtype=bool)
    return PreparedAudit(config=cfg, dataset_name=ds.name, n_classes=n_classes, pool_index=pool_index, X=X, y=y,
                         groups=groups, is_member=is_member, seeds=seeds, recipe=recipe,
                         targets=list(range(game.effective_n_targets)))


def train_prepared(prepared: PreparedAudit, *, jobs: int | None = None, progress: ProgressCallback | None = None,
                   executor: str | Execution | None = None, mp_context: str | None = None) -> TrainedModels:
    """Train (or load from the cache) the K models of a prepared audit (see :func:`train_models`)."""
    return train_models(prepared.recipe, prepared.X, prepared.y, prepared.is_member, seeds=prepared.seeds,
                        run_dir=prepared.config.output.run_dir, jobs=jobs, progress=progress,
                        executor=prepared.config.execution if executor is None else executor,
                        mp_context=mp_context)


def _log_training(trained: TrainedModels) -> None:
    log.info("reference models: %d trained, %d from the cache, %.1f s", trained.n_trained, trained.n_cached,
             trained.wall_seconds)


def run_audit(config: AuditConfig | str | Path, *, jobs: int | None = None,
              progress: ProgressCallback | None = None, executor: str | Execution | None = None,
              mp_context: str | None = None) -> AuditResult:
    """Run the audit a config describes and return its :class:`~miaudit.report.AuditResult`.

    ``config`` is an :class:`~miaudit.config.AuditConfig` or the path of a TOML/YAML file. Every config
    problem raises :class:`~miaudit.ConfigError` before any training. Use ``result.save(config.output.dir)``
    to write results.json, scores.csv and report.html. ``jobs``, ``progress``, ``executor`` (default: the
    config's ``[execution]``) and ``mp_context`` go to :func:`miaudit.training.train_models`; they never
    change the result. The config
    file's folder is on the import path while the models train (worker processes included).
    """
    cfg = config if isinstance(config, AuditConfig) else load_config(config)
    folder = cfg.source.expanduser().absolute().parent if cfg.source is not None else None
    with config_folder_on_path(folder) if folder is not None else contextlib.nullcontext():
        return _run_audit(cfg, jobs=jobs, progress=progress, executor=cfg.execution if executor is None else executor,
                          mp_context=mp_context)


def _run_audit(config: AuditConfig, *, jobs: int | None, progress: ProgressCallback | None, executor: str | Execution,
               mp_context: str | None) -> AuditResult:
    if config.model.kind == "causal_lm":  # language models: miaudit.audit.lm
        from .lm import run_lm_audit

        return run_lm_audit(config, jobs=jobs, progress=progress, executor=executor, mp_context=mp_context)
    with phase("load"):
        prepared = prepare_audit(config)
    cfg = prepared.config
    if cfg.target is not None:
        return _run_config_with_target(prepared, cfg.target, jobs=jobs, progress=progress, executor=executor,
                                       mp_context=mp_context)
    spec = label_spec(cfg)
    if spec is not None:  # label-only access: every model is also asked for its labels, cached with it
        from ..training.label_access import LabelAccessRecipe

        prepared = dataclasses.replace(prepared, recipe=LabelAccessRecipe(prepared.recipe, spec))
    with phase("train"):
        trained = train_prepared(prepared, jobs=jobs, progress=progress, executor=executor, mp_context=mp_context)
    _log_training(trained)
    train_acc = float(np.nanmean(trained.train_accuracy))
    test_acc = float(np.nanmean(trained.test_accuracy))
    game = {
        "source": "audit",
        "dataset": prepared.dataset_name,
        "model": cfg.model.describe(),
        "seed": cfg.game.seed,
        "n_examples": int(len(prepared.y)),
        "pool_size": int(len(prepared.y)),
        "n_models": int(prepared.is_member.shape[0]),
        "n_targets": len(prepared.targets),
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "generalisation_gap": train_acc - test_acc,
    }
    dp_guarantee = getattr(prepared.recipe, "dp_guarantee", None)
    if callable(dp_guarantee):  # DP-SGD recipes: the accountant's (epsilon, delta), computed without training
        guarantee = dp_guarantee(int(prepared.is_member.sum(axis=1).max()))
        if guarantee is not None:
            game["dp"] = {"neighbouring": "add_remove", **guarantee}
    return evaluate_game(
        prepared.y, trained.logits, prepared.is_member, targets=prepared.targets,
        attacks=list(cfg.attacks.names) if cfg.attacks.names else None,
        settings=cfg.settings(), game=game, groups=prepared.groups,
        attack_params={k: dict(v) for k, v in cfg.attacks.params.items()} or None,
        features=prepared.X if cfg.output.show_features else None,
        label_answers=trained.extras if spec is not None else None,
    )


def label_spec(cfg: AuditConfig) -> LabelQuerySpec | None:
    """The label-only query spec of a config (``[attacks] access = "label"``), seeded by the game's seed."""
    if cfg.attacks.access != "label":
        return None
    return LabelQuerySpec(**{"seed": cfg.game.seed, **dict(cfg.attacks.label_queries)})


# ------------------------------------------------------------------------------------------ given target


def _concat(a: Any, b: Any) -> Any:
    if hasattr(a, "iloc"):
        import pandas as pd

        if not hasattr(b, "iloc"):
            b = pd.DataFrame(np.asarray(b), columns=a.columns)
        return pd.concat([a, b], ignore_index=True)
    return np.concatenate([np.asarray(a), np.asarray(b)])


def run_audit_with_target(
    recipe: Recipe,
    target_model: Any,
    X_members: Any,
    y_members: Any,
    X_nonmembers: Any,
    y_nonmembers: Any,
    *,
    n_references: int,
    seed: int = 0,
    run_dir: str | Path,
    jobs: int | None = None,
    attacks: Sequence[str] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    attack_params: Mapping[str, Mapping[str, Any]] | None = None,
    groups: Any = None,
    game: Mapping[str, Any] | None = None,
    executor: str | Execution = "process",
    mp_context: str | None = None,
    output_kind: str | None = None,
    batch_size: int = 1024,
    query_budget: int | None = None,
    label_queries: LabelQuerySpec | None = None,
) -> AuditResult:
    """Audit a user's trained ``target_model``: train K reference models with ``recipe`` on the pool
    members ∪ non-members (balanced design), query the target with ``recipe.predict_logits``, and run
    :func:`miaudit.api.evaluate_bundle`.

    A target behind a callable (``output_kind`` given, a torch module, or any ``query_budget``/``batch_size``)
    is queried through :class:`~miaudit.models.QueryModel`. Label-only access (``label_queries``, or
    ``output_kind="labels"``): the target and the references answer the seeded label-only queries and only the
    label-only attacks run. With ``query_budget``, the queries the audit needs are checked against it before
    any reference model is trained (:class:`~miaudit.models.QueryBudgetError`).

    ``n_references`` (K, even >= 2) reference models, drawn independently of the target's membership;
    ``seed`` drives their design and seeds; ``groups`` optional slice values for members then non-members
    (length N).
    """
    from ..data import SignalBundle

    for name, X, y in (("members", X_members, y_members), ("nonmembers", X_nonmembers, y_nonmembers)):
        if len(X) != len(np.asarray(y)):
            raise InputError(f"X_{name} and y_{name}: inconsistent numbers of examples [{len(X)}, {len(np.asarray(y))}]; "
                             "pass one label per example")
        if len(X) == 0:
            raise InputError(f"X_{name}: expected at least one example, got none; pass the target's {name}")
    K = check_n_models(n_references, "n_references")
    X = _concat(X_members, X_nonmembers)
    y = np.concatenate([np.asarray(y_members), np.asarray(y_nonmembers)])
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"y: expected integer class labels in [0, {recipe.n_classes}), got dtype {y.dtype}; "
                         "encode the labels as 0..C-1")
    y = y.astype(np.int64)
    n_m = len(X_members)
    is_member = np.zeros(len(y), dtype=bool)
    is_member[:n_m] = True
    _, member_ss, seeds = game_seeds(seed, K)
    ref_is_member = balanced_membership(len(y), K, seed=member_ss)
    query = None
    plain = callable(target_model) and not is_torch_module(target_model) and not (
        hasattr(target_model, "predict_proba") or hasattr(target_model, "decision_function"))
    if plain or output_kind is not None or query_budget is not None or batch_size != 1024 \
            or label_queries is not None:
        # a plain callable answers as declared; a model of the recipe is asked through the recipe (its inputs
        # prepared as the references' are), counted and batched
        asked = target_model if plain or output_kind is not None else _RecipeTarget(recipe, target_model)
        query = QueryModel(asked, n_classes=int(recipe.n_classes), output_kind=output_kind or (
            None if plain else "logits"), batch_size=batch_size, query_budget=query_budget)
        if query.output_kind == "scores":
            raise InputError("output_kind 'scores': the reference models give logits, so a scores target cannot be "
                             "compared with them; declare 'logits' or 'probs', or audit it with audit_model")
        if query.output_kind == "labels" and label_queries is None:
            label_queries = LabelQuerySpec(seed=int(seed))
        n_q = int(getattr(recipe, "n_queries", 1)) if isinstance(asked, _RecipeTarget) else 1
        per = label_queries.queries_per_example() if label_queries is not None else n_q
        query.require(per * len(y), "the audit" + (" (label-only queries)" if label_queries is not None else ""))
    if label_queries is not None:
        from ..training.label_access import LabelAccessRecipe

        recipe = LabelAccessRecipe(recipe, label_queries)
    with phase("train"):
        trained = train_models(recipe, X, y, ref_is_member, seeds=seeds, run_dir=run_dir, jobs=jobs,
                               progress=progress, executor=executor, mp_context=mp_context)
    _log_training(trained)
    with phase("score"):  # the target's answers: its signals
        grp = None if groups is None else np.asarray(groups)
        if label_queries is not None:
            assert query is not None
            ans = label_queries_of(query.predict_labels, X, label_queries)
            dist = label_queries.boundary_queries > 0
            bundle = SignalBundle.from_arrays(
                labels=y, target_pred=ans.pred, ref_pred=trained.extras["label_pred"], is_member=is_member,
                ref_is_member=ref_is_member, target_distance=ans.distance if dist else None,
                ref_distance=trained.extras["label_distance"] if dist else None, n_classes=int(recipe.n_classes),
                groups=grp, meta={"label_queries": {"per_example": int(ans.queries.max()),
                                                    "augmentations": int(ans.pred.shape[1]),
                                                    "boundary": int(ans.queries.max()) - int(ans.pred.shape[1])}})
        elif query is not None and isinstance(query.model, _RecipeTarget):  # all of the recipe's queries
            query.count(len(y) * int(getattr(recipe, "n_queries", 1)))
            bundle = SignalBundle.from_arrays(
                labels=y, is_member=is_member, ref_logits=trained.logits, ref_is_member=ref_is_member, groups=grp,
                target_logits=np.asarray(recipe.predict_logits(target_model, X), dtype=np.float64))
        elif query is not None:
            kw: dict[str, Any] = {"target_logits": query.outputs(X)}
            bundle = SignalBundle.from_arrays(labels=y, is_member=is_member, ref_logits=trained.logits,
                                              ref_is_member=ref_is_member, groups=grp,
                                              meta={"outputs_kind": query.output_kind}, **kw)
        else:
            target_logits = np.asarray(recipe.predict_logits(target_model, X), dtype=np.float64)
            bundle = SignalBundle.from_arrays(labels=y, target_logits=target_logits, is_member=is_member,
                                              ref_logits=trained.logits, ref_is_member=ref_is_member, groups=grp)
    game_d: dict[str, Any] = {
        "source": "audit",
        "target": "user",
        "model": recipe.spec(),
        "seed": int(seed),
        "n_examples": int(len(y)),
        "n_references": K,
        "n_models": K,
        "n_targets": 1,
        "reference_train_accuracy": float(np.nanmean(trained.train_accuracy)),
        "reference_test_accuracy": float(np.nanmean(trained.test_accuracy)),
    }
    if query is not None:
        game_d.update({"output_kind": query.output_kind, "batch_size": query.batch_size,
                       "query_budget": query.query_budget, "queries_used": query.queries_used})
    if label_queries is not None:
        game_d["label_queries"] = label_queries.to_dict()
    game_d.update(dict(game or {}))
    return evaluate_bundle(bundle, attacks=attacks, settings=settings, game=game_d, attack_params=attack_params)


class _RecipeTarget:
    """A target model asked through its recipe: rows -> the recipe's outputs on query 0, (n, C) logits."""

    def __init__(self, recipe: Recipe, model: Any) -> None:
        self.recipe, self.model = recipe, model

    def __call__(self, X: Any) -> np.ndarray:
        return np.asarray(self.recipe.predict_logits(self.model, X), dtype=np.float64)[:, 0, :]


def _run_config_with_target(prepared: PreparedAudit, target: TargetConfig, *, jobs: int | None,
                            progress: ProgressCallback | None, executor: str | Execution, mp_context: str | None) -> AuditResult:
    cfg = prepared.config
    n = len(prepared.y)
    members = read_indices(target.members, "members", n)
    nonmembers = read_indices(target.nonmembers, "nonmembers", n)
    overlap = np.intersect1d(members, nonmembers)
    if overlap.size:
        raise ConfigError(f"[target] members and nonmembers share {overlap.size} rows (first: {int(overlap[0])}); "
                          "an example is either a member or not")
    with phase("load"):
        model = load_target_model(target)
    spec = label_spec(cfg)
    groups = None
    if prepared.groups is not None:
        groups = np.concatenate([prepared.groups[members], prepared.groups[nonmembers]])
    return run_audit_with_target(
        prepared.recipe, model,
        _take(prepared.X, members), prepared.y[members], _take(prepared.X, nonmembers), prepared.y[nonmembers],
        n_references=cfg.game.n_references, seed=cfg.game.seed, run_dir=cfg.output.run_dir, jobs=jobs,
        attacks=list(cfg.attacks.names) if cfg.attacks.names else None,
        settings=cfg.settings(), progress=progress,
        attack_params={k: dict(v) for k, v in cfg.attacks.params.items()} or None,
        groups=groups, game={"dataset": prepared.dataset_name, "model": cfg.model.describe(),
                             "target_path": str(target.model) if target.model is not None else target.callable},
        executor=executor, mp_context=mp_context, output_kind=target.output_kind, batch_size=target.batch_size,
        query_budget=target.query_budget, label_queries=spec,
    )
