"""The full game: from an audit config to an :class:`~miaudit.report.AuditResult`.

Design (Carlini et al. 2022, LiRA, Sec. IV-B and VI; field notes §1): draw a pool of examples, train K
models of the user's recipe on a *balanced* membership matrix (every example IN for exactly K/2 models,
every model trained on half the pool), then let each of the first ``n_targets`` models play the target
against the other K - 1 as references ("paired model" design). The figures are pooled over targets, with
the spread across targets, by :func:`miaudit.api.evaluate_game`.

With an already-trained target (``[target]`` in the config, or :func:`run_audit_with_target`), the pool
is the target's members and non-members and all K models are references.

Seeds: the audit seed's :class:`numpy.random.SeedSequence` is split into three independent children, for
the pool subsample, the membership matrix and the per-model seeds.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ConfigError, InputError, import_optional
from .config import AuditConfig, TargetConfig, load_config
from .training import Recipe, TrainedModels, model_seeds, train_models
from .training._runner import ProgressCallback

__all__ = [
    "PreparedAudit",
    "prepare_audit",
    "train_prepared",
    "run_audit",
    "run_audit_with_target",
    "load_target_model",
    "game_seeds",
]

log = logging.getLogger("miaudit")


def game_seeds(seed: int, n_models: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence, list[int]]:
    """(pool seed, membership seed, per-model seeds) derived from the audit ``seed``.

    Model k's seed does not depend on ``n_models``, so growing K keeps the first models' seeds.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: expected a non-negative integer, got {seed!r}; pass e.g. seed=0")
    pool_ss, member_ss, model_ss = np.random.SeedSequence(int(seed)).spawn(3)
    return pool_ss, member_ss, model_seeds(model_ss, n_models)


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
    membership: np.ndarray  # (K, N) bool; (0, N) with a [target] (drawn later over its members/non-members)
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
    from .data import balanced_membership, load_dataset

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
    K = game.n_references
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
        membership = balanced_membership(len(pool_index), K, seed=member_ss)
    else:  # drawn over the target's members and non-members by run_audit_with_target
        membership = np.zeros((0, len(pool_index)), dtype=bool)
    return PreparedAudit(config=cfg, dataset_name=ds.name, n_classes=n_classes, pool_index=pool_index, X=X, y=y,
                         groups=groups, membership=membership, seeds=seeds, recipe=recipe,
                         targets=list(range(game.effective_n_targets)))


def train_prepared(prepared: PreparedAudit, *, jobs: int | None = None, progress: ProgressCallback | None = None,
                   executor: str = "process", mp_context: str | None = None) -> TrainedModels:
    """Train (or load from the cache) the K models of a prepared audit (see :func:`train_models`)."""
    return train_models(prepared.recipe, prepared.X, prepared.y, prepared.membership, seeds=prepared.seeds,
                        run_dir=prepared.config.output.run_dir, jobs=jobs, progress=progress, executor=executor,
                        mp_context=mp_context)


def _log_training(trained: TrainedModels) -> None:
    log.info("reference models: %d trained, %d from the cache, %.1f s", trained.n_trained, trained.n_cached,
             trained.wall_seconds)


def run_audit(config: AuditConfig | str | Path, *, jobs: int | None = None,
              progress: ProgressCallback | None = None, executor: str = "process",
              mp_context: str | None = None) -> Any:
    """Run the audit a config describes and return its :class:`~miaudit.report.AuditResult`.

    ``config`` is an :class:`~miaudit.config.AuditConfig` or the path of a TOML/YAML file. Every config
    problem raises :class:`~miaudit.ConfigError` before any training. Use ``result.save(config.output.dir)``
    to write results.json, scores.csv and report.html. ``jobs``, ``progress``, ``executor`` and
    ``mp_context`` go to :func:`miaudit.training.train_models`; they never change the result.
    """
    from .api import evaluate_game

    prepared = prepare_audit(config)
    cfg = prepared.config
    if cfg.target is not None:
        return _run_config_with_target(prepared, cfg.target, jobs=jobs, progress=progress, executor=executor,
                                       mp_context=mp_context)
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
        "n_models": int(cfg.game.n_references),
        "n_targets": len(prepared.targets),
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "generalisation_gap": train_acc - test_acc,
    }
    dp_guarantee = getattr(prepared.recipe, "dp_guarantee", None)
    if callable(dp_guarantee):  # DP-SGD recipes: the accountant's (epsilon, delta), computed without training
        guarantee = dp_guarantee(int(prepared.membership.sum(axis=1).max()))
        if guarantee is not None:
            game["dp"] = guarantee
    return evaluate_game(
        prepared.y, trained.logits, prepared.membership, targets=prepared.targets,
        attacks=list(cfg.attacks.names) if cfg.attacks.names else None,
        settings=cfg.metrics.settings(seed=cfg.game.seed), game=game, groups=prepared.groups,
        attack_params={k: dict(v) for k, v in cfg.attacks.params.items()} or None,
        features=prepared.X if cfg.output.show_features else None,
    )


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
    settings: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    attack_params: Mapping[str, Mapping[str, Any]] | None = None,
    groups: Any = None,
    game: Mapping[str, Any] | None = None,
    executor: str = "process",
    mp_context: str | None = None,
) -> Any:
    """Audit a user's trained ``target_model``: train K reference models with ``recipe`` on the pool
    members ∪ non-members (balanced design), query the target with ``recipe.predict_logits``, and run
    :func:`miaudit.api.evaluate_bundle`.

    ``n_references`` (K, even >= 2) reference models; ``seed`` drives their design and seeds; ``groups``
    optional slice values for members then non-members (length N).
    """
    from .api import evaluate_bundle
    from .data import SignalBundle, balanced_membership

    for name, X, y in (("members", X_members, y_members), ("nonmembers", X_nonmembers, y_nonmembers)):
        if len(X) != len(np.asarray(y)):
            raise InputError(f"X_{name} and y_{name}: inconsistent numbers of examples [{len(X)}, {len(np.asarray(y))}]; "
                             "pass one label per example")
        if len(X) == 0:
            raise InputError(f"X_{name}: expected at least one example, got none; pass the target's {name}")
    if isinstance(n_references, bool) or not isinstance(n_references, (int, np.integer)) or n_references < 2 \
            or n_references % 2:
        raise InputError(f"n_references: expected an even integer >= 2, got {n_references!r}; every example must be "
                         "IN for exactly half of the reference models")
    X = _concat(X_members, X_nonmembers)
    y = np.concatenate([np.asarray(y_members), np.asarray(y_nonmembers)])
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"y: expected integer class labels in [0, {recipe.n_classes}), got dtype {y.dtype}; "
                         "encode the labels as 0..C-1")
    y = y.astype(np.int64)
    n_m = len(X_members)
    is_member = np.zeros(len(y), dtype=bool)
    is_member[:n_m] = True
    K = int(n_references)
    _, member_ss, seeds = game_seeds(seed, K)
    membership = balanced_membership(len(y), K, seed=member_ss)
    trained = train_models(recipe, X, y, membership, seeds=seeds, run_dir=run_dir, jobs=jobs, progress=progress,
                           executor=executor, mp_context=mp_context)
    _log_training(trained)
    target_logits = np.asarray(recipe.predict_logits(target_model, X), dtype=np.float64)
    bundle = SignalBundle.from_arrays(labels=y, target_logits=target_logits, is_member=is_member,
                                      ref_logits=trained.logits, ref_is_member=membership,
                                      groups=None if groups is None else np.asarray(groups))
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
    game_d.update(dict(game or {}))
    return evaluate_bundle(bundle, attacks=attacks, settings=settings, game=game_d, attack_params=attack_params)


def _read_indices(path: Path, key: str, n: int) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            idx = np.load(path, allow_pickle=False)
        else:
            delimiter = "," if path.suffix.lower() == ".csv" else None
            idx = np.loadtxt(path, delimiter=delimiter, ndmin=1)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"[target] {key}: cannot read indices from {path.name!r} ({exc}); expected a .npy array "
                          "or a text/CSV file of integer row indices") from None
    idx = np.asarray(idx).ravel()
    if idx.size == 0:
        raise ConfigError(f"[target] {key}: {path.name!r} holds no indices; list the target's {key} row indices")
    if not np.all(np.isfinite(idx.astype(np.float64))) or not np.all(np.asarray(idx, dtype=np.float64) % 1 == 0):
        raise ConfigError(f"[target] {key}: {path.name!r} must hold integer row indices, got non-integers")
    idx = idx.astype(np.int64)
    if idx.min() < 0 or idx.max() >= n:
        raise ConfigError(f"[target] {key}: indices must lie in [0, {n}) (rows of the dataset), got range "
                          f"[{idx.min()}, {idx.max()}]; index the rows of [data]")
    if np.unique(idx).size != idx.size:
        raise ConfigError(f"[target] {key}: {path.name!r} repeats indices; list each row once")
    return idx


def load_target_model(target: TargetConfig) -> Any:
    """Load the target model of ``[target]``: skops (safe; extra types must be listed in ``trusted``) or,
    only with ``allow_pickle = true``, pickle/joblib (with a warning)."""
    path = target.model
    suffix = path.suffix.lower()
    if suffix == ".skops":
        sio = import_optional("skops.io", "skops")
        try:
            untrusted = list(sio.get_untrusted_types(file=str(path)))
        except Exception as exc:  # noqa: BLE001 - any failure to parse is a bad file
            raise ConfigError(f"[target] model: {path.name!r} is not a readable skops file ({type(exc).__name__}: "
                              f"{exc}); save the model with skops.io.dump") from None
        missing = [t for t in untrusted if t not in target.trusted]
        if missing:
            raise ConfigError(f"[target] model: {path.name!r} contains types skops does not trust by default: "
                              f"{', '.join(missing)}; if you trust the file, add them to [target] trusted")
        try:
            return sio.load(str(path), trusted=list(untrusted))
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"[target] model: cannot load {path.name!r} ({type(exc).__name__}: {exc}); "
                              "re-save it with skops.io.dump") from None
    if suffix in (".pkl", ".pickle", ".joblib"):
        if not target.allow_pickle:
            raise ConfigError(f"[target] model: {path.name!r} is a pickle, which can run arbitrary code when loaded; "
                              "save it with skops.io.dump, or set allow_pickle = true if you trust the file")
        msg = f"loading {path.name!r} with pickle because allow_pickle = true: only do this for files you trust"
        log.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
        import joblib

        try:
            return joblib.load(path)
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"[target] model: cannot unpickle {path.name!r} ({type(exc).__name__}: {exc})") from None
    raise ConfigError(f"[target] model: expected a .skops file (or .pkl/.joblib with allow_pickle = true), got {path.name!r}")


def _run_config_with_target(prepared: PreparedAudit, target: TargetConfig, *, jobs: int | None,
                            progress: ProgressCallback | None, executor: str, mp_context: str | None) -> Any:
    cfg = prepared.config
    n = len(prepared.y)
    members = _read_indices(target.members, "members", n)
    nonmembers = _read_indices(target.nonmembers, "nonmembers", n)
    overlap = np.intersect1d(members, nonmembers)
    if overlap.size:
        raise ConfigError(f"[target] members and nonmembers share {overlap.size} rows (first: {int(overlap[0])}); "
                          "an example is either a member or not")
    model = load_target_model(target)
    groups = None
    if prepared.groups is not None:
        groups = np.concatenate([prepared.groups[members], prepared.groups[nonmembers]])
    return run_audit_with_target(
        prepared.recipe, model,
        _take(prepared.X, members), prepared.y[members], _take(prepared.X, nonmembers), prepared.y[nonmembers],
        n_references=cfg.game.n_references, seed=cfg.game.seed, run_dir=cfg.output.run_dir, jobs=jobs,
        attacks=list(cfg.attacks.names) if cfg.attacks.names else None,
        settings=cfg.metrics.settings(seed=cfg.game.seed), progress=progress,
        attack_params={k: dict(v) for k, v in cfg.attacks.params.items()} or None,
        groups=groups, game={"dataset": prepared.dataset_name, "model": cfg.model.describe(),
                             "target_path": str(target.model)},
        executor=executor, mp_context=mp_context,
    )
