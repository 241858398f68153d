"""The audit config: one TOML or YAML file that describes a full membership-inference game.

Sections (every key is documented in ``docs/config.md``)::

    [data]     the dataset (passed to miaudit.data.load_dataset), plus an optional slice column
    [model]    the training recipe: a scikit-learn estimator by import path with preprocessing, or torch
    [game]     pool size, number of models K, how many of them are evaluated as targets, seed, queries
    attacks    a list of attack names, or [attacks] with names and per-attack params
    [metrics]  delta, confidence, member prior, the FPRs of interest
    [output]   the output folder and the model cache
    [target]   optional: an already-trained target model with its member / non-member index files
    [execution] optional: where the models train (process pool or a Ray cluster) and each model's resources

:func:`load_config` and :meth:`AuditConfig.from_dict` check everything that can be checked without
loading the data or training (unknown keys, types, ranges, K even and >= 2, files present, estimator
importable and able to classify) and raise *one* :class:`~miaudit.ConfigError` listing every problem.
Relative paths are resolved against the config file's folder, and that folder is on the import path while
the config loads (and, in :func:`miaudit.audit.run_audit`, while its models train), so an estimator module
kept next to the config imports without ``PYTHONPATH``.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._counts import check_even_count
from ._errors import ConfigError, InputError, MissingDependencyError
from .metrics import AuditSettings
from .training._execution import EXECUTION_KEYS, Execution, execution_problems

__all__ = [
    "AuditConfig",
    "DataConfig",
    "ModelConfig",
    "GameConfig",
    "AttacksConfig",
    "OutputConfig",
    "TargetConfig",
    "load_config",
    "read_config_file",
]

SECTIONS = ("data", "model", "game", "attacks", "metrics", "output", "target", "execution")
DEFAULT_N_REFERENCES = 16
DEFAULT_MAX_TARGETS = 8

_DATA_KEYS_FALLBACK = ("kind", "path", "label", "features", "images", "labels", "split", "max_examples", "seed", "name")
_DATA_OWN_KEYS = ("group",)
_PATH_KEYS = ("path", "images", "labels")


class _Problems:
    """Collects every problem of a config, raised once as a single one-line ConfigError."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def raise_if_any(self, source: str | None) -> None:
        if not self.items:
            return
        where = f"config {source}" if source else "config"
        if len(self.items) == 1:
            raise ConfigError(f"{where}: {self.items[0]}")
        numbered = "; ".join(f"({i}) {p}" for i, p in enumerate(self.items, 1))
        raise ConfigError(f"{where} has {len(self.items)} problems: {numbered}")


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and (isinstance(v, int) or math.isfinite(v))


class _Section:
    """Typed access to one config table with unknown-key detection."""

    def __init__(self, name: str, table: Any, valid: Sequence[str], problems: _Problems) -> None:
        self.name, self.problems = name, problems
        if table is None:
            table = {}
        if not isinstance(table, Mapping):
            problems.add(f"[{name}] must be a table, got {_type_name(table)} {table!r}")
            table = {}
        self.table = dict(table)
        for key in self.table:
            if key not in valid:
                problems.add(f"unknown key {key!r} in [{name}]; valid keys: {', '.join(valid)}")

    def get(self, key: str, default: Any, check: Callable[[Any], bool], expected: str) -> Any:
        if key not in self.table or self.table[key] is None:
            return default
        value = self.table[key]
        if not check(value):
            self.problems.add(f"[{self.name}] {key}: expected {expected}, got {_type_name(value)} {value!r}")
            return default
        return value


def _expand(value: str | Path) -> Path:
    """``Path(value).expanduser()``, or the path as written when the home folder is unknown (``~nobody/x``)."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        return Path(value)


def _unusable(p: Path) -> str | None:
    """Why the operating system refuses the path ``p`` (e.g. a name too long), or None."""
    try:
        p.exists()
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or str(exc)
    return None


def _resolve(base: Path | None, value: str) -> Path:
    p = _expand(value)
    if not p.is_absolute() and base is not None:
        p = base / p
    return Path(os.path.normpath(p))


# ------------------------------------------------------------------------------------------------ sections


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: ``kind`` and the dataset options of :func:`miaudit.data.load_dataset`; ``group``: an
    optional feature column used as slice groups (removed from the features)."""

    kind: str = "digits"
    options: Mapping[str, Any] = field(default_factory=dict)
    group: str | None = None

    def spec(self) -> dict[str, Any]:
        """The dict for :func:`miaudit.data.load_dataset` (paths already absolute)."""
        return {"kind": self.kind, **dict(self.options)}


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: ``kind = "sklearn"`` (estimator, params, preprocessing) or ``"torch"`` (options)."""

    kind: str = "sklearn"
    estimator: str = "sklearn.neural_network.MLPClassifier"
    params: Mapping[str, Any] = field(default_factory=dict)
    preprocessing: Any = "auto"
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self, *, n_classes: int, queries: Sequence[str] = ()) -> Any:
        """The :class:`~miaudit.training.Recipe` for a dataset with ``n_classes`` classes."""
        from .training import SklearnRecipe, recipe_from_spec

        if self.kind == "sklearn":
            return SklearnRecipe(self.estimator, dict(self.params), self.preprocessing,
                                 n_classes=n_classes, queries=list(queries))
        spec = {"kind": self.kind, **dict(self.options), "n_classes": n_classes}
        if queries:
            spec["queries"] = list(queries)
        return recipe_from_spec(spec)

    def describe(self) -> dict[str, Any]:
        if self.kind == "sklearn":
            return {"kind": "sklearn", "estimator": self.estimator, "params": dict(self.params),
                    "preprocessing": self.preprocessing}
        return {"kind": self.kind, **dict(self.options)}


@dataclass(frozen=True)
class GameConfig:
    """``[game]``: pool size (None = every example), reference models per target, targets evaluated, seed,
    query functions.

    ``n_references`` is the number of reference models each target is tested against. In the full game the
    target is one of the trained models and its complementary partner is left out of its references, so
    ``n_references + 2`` models are trained (:meth:`n_models`); with a ``[target]`` model, ``n_references``.
    """

    pool_size: int | None = None
    n_references: int = DEFAULT_N_REFERENCES
    n_targets: int | None = None
    seed: int = 0
    queries: tuple[str, ...] = ()

    def n_models(self, *, with_target: bool = False) -> int:
        """Models to train: ``n_references + 2`` in the full game, ``n_references`` with a ``[target]``."""
        return self.n_references if with_target else self.n_references + 2

    @property
    def effective_n_targets(self) -> int:
        """``n_targets``, or ``min(n_models, 8)`` when not set."""
        return self.n_targets if self.n_targets is not None else min(self.n_models(), DEFAULT_MAX_TARGETS)


@dataclass(frozen=True)
class AttacksConfig:
    """Attack names (None = every attack that can run) and per-attack hyper-parameters."""

    names: tuple[str, ...] | None = None
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: ``"logits"`` (the models' full outputs) or ``"label"`` (predicted classes only: label-only attacks).
    access: str = "logits"
    #: ``[attacks.label_queries]``: :class:`miaudit.models.LabelQuerySpec` fields (label access only).
    label_queries: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: where results go (``dir``), the model cache (``run_dir``, default ``dir/cache``) and
    whether the most exposed records show their feature values (``show_features``, default: index only)."""

    dir: Path = Path("miaudit-report")
    run_dir: Path = Path("miaudit-report/cache")
    show_features: bool = False
    show_text: bool = False  # language-model audits: escaped excerpts of the most exposed documents


@dataclass(frozen=True)
class TargetConfig:
    """``[target]``: an already-trained model and the indices (into the dataset) of its members and
    non-members. ``.skops`` files load with skops' safe loader (``trusted`` lists extra types to trust);
    pickle/joblib files only with ``allow_pickle = true``."""

    model: Path | None
    members: Path
    nonmembers: Path
    allow_pickle: bool = False
    trusted: tuple[str, ...] = ()
    #: Instead of ``model``: the import path of a callable ``f(X) -> array`` (or of a torch module / fitted
    #: classifier object), with its ``output_kind`` (logits, probs, scores, labels), rows per call and budget.
    callable: str | None = None
    output_kind: str | None = None
    batch_size: int = 1024
    query_budget: int | None = None


@dataclass(frozen=True)
class AuditConfig:
    """A validated audit config. Build it with :func:`load_config` or :meth:`from_dict`."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    game: GameConfig = field(default_factory=GameConfig)
    attacks: AttacksConfig = field(default_factory=AttacksConfig)
    metrics: AuditSettings = field(default_factory=AuditSettings)
    output: OutputConfig = field(default_factory=OutputConfig)
    target: TargetConfig | None = None
    source: Path | None = None
    execution: Execution = field(default_factory=Execution)  # never changes a result: not in to_dict()

    def settings(self) -> AuditSettings:
        """The ``[metrics]`` settings with the game's seed (one seed drives the whole audit)."""
        return AuditSettings(delta=self.metrics.delta, confidence=self.metrics.confidence,
                             member_prior=self.metrics.member_prior, fprs=self.metrics.fprs, seed=self.game.seed)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: str | Path | None = None,
                  source: str | Path | None = None) -> AuditConfig:
        """Validate a parsed config; relative paths resolve against ``base_dir`` (default: cwd).

        Raises :class:`~miaudit.ConfigError` listing every problem found.
        """
        problems = _Problems()
        src = str(source) if source is not None else None
        if not isinstance(d, Mapping):
            raise ConfigError(f"config{' ' + src if src else ''}: expected a table of sections "
                              f"({', '.join(SECTIONS)}), got {_type_name(d)}")
        base = Path(base_dir) if base_dir is not None else None
        for key in d:
            if key not in SECTIONS:
                problems.add(f"unknown section {key!r}; valid sections: {', '.join(SECTIONS)}")
        game = _parse_game(d.get("game"), problems)
        data = _parse_data(d.get("data"), base, problems)
        model = _parse_model(d.get("model"), game, problems)
        attacks = _parse_attacks(d.get("attacks"), problems)
        metrics = _parse_metrics(d.get("metrics"), problems)
        output = _parse_output(d.get("output"), base, problems)
        target = (_parse_lm_target(d.get("target"), base, data, problems) if model.kind == "causal_lm"
                  else _parse_target(d.get("target"), base, problems))
        execution = _parse_execution(d.get("execution"), problems)
        _check_attack_family(model, attacks, problems)
        problems.raise_if_any(src)
        return cls(data=data, model=model, game=game, attacks=attacks, metrics=metrics, output=output,
                   target=target, source=Path(source) if source is not None else None, execution=execution)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view (paths as strings), accepted again by :meth:`from_dict`."""
        d: dict[str, Any] = {
            "data": {**self.data.spec(), **({"group": self.data.group} if self.data.group else {})},
            "model": self.model.describe(),
            "game": {"n_references": self.game.n_references, "n_targets": self.game.effective_n_targets,
                     "seed": self.game.seed, "queries": list(self.game.queries)},
            "attacks": {"names": list(self.attacks.names) if self.attacks.names is not None else None,
                        "params": {k: dict(v) for k, v in self.attacks.params.items()},
                        **({"access": "label", "label_queries": dict(self.attacks.label_queries)}
                           if self.attacks.access == "label" else {})},
            "metrics": {"delta": self.metrics.delta, "confidence": self.metrics.confidence,
                        "member_prior": self.metrics.member_prior, "fprs": list(self.metrics.fprs)},
            "output": {"dir": str(self.output.dir), "run_dir": str(self.output.run_dir),
                       "show_features": self.output.show_features, "show_text": self.output.show_text},
        }
        if self.game.pool_size is not None:
            d["game"]["pool_size"] = self.game.pool_size
        if d["attacks"]["names"] is None:
            del d["attacks"]["names"]
        for k in _PATH_KEYS:
            if k in d["data"]:
                d["data"][k] = str(d["data"][k])
        if self.target is not None and self.model.kind == "causal_lm":
            d["target"] = {"model": str(self.target.model)}
        elif self.target is not None:
            t = self.target
            d["target"] = {"members": str(t.members), "nonmembers": str(t.nonmembers), "allow_pickle": t.allow_pickle,
                           "trusted": list(t.trusted), "batch_size": t.batch_size,
                           **({"model": str(t.model)} if t.model is not None else {}),
                           **({"callable": t.callable} if t.callable is not None else {}),
                           **({"output_kind": t.output_kind} if t.output_kind is not None else {}),
                           **({"query_budget": t.query_budget} if t.query_budget is not None else {})}
        return d


# ------------------------------------------------------------------------------------------------ parsers


def _data_keys() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]] | None]:
    try:
        from .data import _datasets

        kinds: dict[str, tuple[str, ...]] = dict(_datasets._KIND_KEYS)
        common = tuple(_datasets._COMMON)
        return common, kinds
    except (ImportError, AttributeError):  # pragma: no cover - the data layer validates instead
        return tuple(_DATA_KEYS_FALLBACK), None


def _check_path(where: str, p: Path, problems: _Problems, *, file: bool) -> None:
    """Record why the input path ``p`` of ``where`` cannot be used: unusable, missing, or (``file``) a folder."""
    if why := _unusable(p):
        problems.add(f"{where}: the path cannot be used ({why}); use a shorter, valid path")
    elif not (p.is_file() if file else p.exists()):
        what = "is a folder" if file and p.is_dir() else "does not exist"
        hint = " or pass the data with `miaudit audit CONFIG --data PATH`" if where == "[data] path" else ""
        problems.add(f"{where}: {str(p)!r} {what}; check the path (relative paths are relative to the config "
                     f"file){hint}")


def _parse_data(table: Any, base: Path | None, problems: _Problems) -> DataConfig:
    common, kinds = _data_keys()
    if table is None:
        problems.add("missing section [data]; add e.g. [data] kind = \"digits\"")
        return DataConfig()
    kind = table.get("kind") if isinstance(table, Mapping) else None
    if kinds is not None and isinstance(kind, str) and kind in kinds:
        valid = ("kind", *[k for k in common if k != "kind"], *kinds[kind], *_DATA_OWN_KEYS)
    else:
        valid = (*_DATA_KEYS_FALLBACK, *_DATA_OWN_KEYS)
    sec = _Section("data", table, valid, problems)
    if not isinstance(kind, str):
        problems.add(f"[data] kind: expected one of {', '.join(kinds or ['digits'])}, got {kind!r}")
        kind = "digits"
    elif kinds is not None and kind not in kinds:
        problems.add(f"[data] kind: unknown dataset kind {kind!r}; expected one of: {', '.join(kinds)}")
    options: dict[str, Any] = {}
    for key, value in sec.table.items():
        if key in ("kind", *_DATA_OWN_KEYS) or key not in valid:
            continue
        if key in _PATH_KEYS:
            if not isinstance(value, str):
                problems.add(f"[data] {key}: expected a path string, got {_type_name(value)} {value!r}")
                continue
            p = _resolve(base, value)
            _check_path(f"[data] {key}", p, problems, file=False)
            value = str(p)
        elif key in ("max_examples", "seed") and not (_is_int(value) and value >= 0):
            problems.add(f"[data] {key}: expected a non-negative integer, got {_type_name(value)} {value!r}")
            continue
        elif key in ("label", "name", "split") and not isinstance(value, str):
            problems.add(f"[data] {key}: expected a string, got {_type_name(value)} {value!r}")
            continue
        elif key == "features" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.add(f"[data] features: expected a list of column names, got {_type_name(value)} {value!r}")
            continue
        options[key] = value
    if kind in ("csv", "parquet", "npz", "adult", "text") and "path" not in sec.table:
        problems.add(f"[data] path: missing for kind {kind!r}; add path = \"<file>\"")
    if kind == "mnist" and "path" not in sec.table and not ("images" in sec.table and "labels" in sec.table):
        problems.add("[data] path: missing for kind 'mnist'; add path = \"<folder with the IDX files>\"")
    group = sec.get("group", None, lambda v: isinstance(v, str), "a column name (string)")
    return DataConfig(kind=kind, options=options, group=group)


def _parse_game(table: Any, problems: _Problems) -> GameConfig:
    sec = _Section("game", table, ("pool_size", "n_references", "n_targets", "seed", "queries"), problems)
    pool = sec.get("pool_size", None, _is_int, "an integer >= 4")
    if pool is not None and pool < 4:
        problems.add(f"[game] pool_size: expected an integer >= 4 (each model trains on half the pool), got {pool}")
        pool = None
    k = sec.get("n_references", DEFAULT_N_REFERENCES, _is_int, "an even integer >= 2")
    try:
        check_even_count(k, "n_references", minimum=2)
        valid = True
    except InputError:
        valid = False
    if not valid:
        fix = ("use 2 or more: the target's complementary partner is left out of its references, so the game "
               "trains n_references + 2 models and a game of 2 models would have no reference at all"
               if k < 2 else f"use {k - 1} or {k + 1}")
        problems.add(f"[game] n_references: expected an even integer >= 2 (reference models per target; "
                     f"every example is IN for exactly half of them), got {k}; {fix}")
        k = max(2, k + (k % 2))
    n_targets = sec.get("n_targets", None, _is_int, "an integer >= 1")
    if n_targets is not None and not 1 <= n_targets <= k + 2:
        problems.add(f"[game] n_targets: expected an integer in [1, n_references + 2 = {k + 2}] (the models "
                     f"trained), got {n_targets}")
        n_targets = None
    seed = sec.get("seed", 0, lambda v: _is_int(v) and v >= 0, "a non-negative integer")
    queries = sec.get("queries", [], lambda v: isinstance(v, list) and all(isinstance(q, str) for q in v),
                      "a list of import paths of functions f(X) -> X")
    return GameConfig(pool_size=pool, n_references=k, n_targets=n_targets, seed=seed, queries=tuple(queries))


def _parse_model(table: Any, game: GameConfig, problems: _Problems) -> ModelConfig:
    if table is None:
        return ModelConfig()
    if not isinstance(table, Mapping):
        problems.add(f"[model] must be a table, got {_type_name(table)} {table!r}")
        return ModelConfig()
    kind = table.get("kind", "sklearn")
    if kind in ("torch", "causal_lm"):
        options = {k: v for k, v in table.items() if k != "kind"}
        if "n_classes" in options:
            problems.add("[model] n_classes: not a config key; the number of classes comes from the data")
        if "queries" in options and game.queries:
            problems.add("[model] queries and [game] queries are both set; set the queries in one place")
        cfg = ModelConfig(kind=kind, estimator="", params={}, preprocessing="auto", options=options)
        try:  # check the torch keys now (number of classes is a placeholder until the data is loaded)
            cfg.build(n_classes=2, queries=game.queries)
        except InputError as exc:
            problems.add(str(exc))
        except MissingDependencyError as exc:
            problems.add(f"[model] kind: {exc}")
        return cfg
    if kind != "sklearn":
        problems.add(f"[model] kind: expected 'sklearn', 'torch' or 'causal_lm', got {kind!r}")
        return ModelConfig()
    sec = _Section("model", table, ("kind", "estimator", "params", "preprocessing"), problems)
    estimator = sec.get("estimator", ModelConfig.estimator, lambda v: isinstance(v, str),
                        "an import path such as 'sklearn.neural_network.MLPClassifier'")
    params = sec.get("params", {}, lambda v: isinstance(v, Mapping), "a table of estimator parameters")
    preprocessing = sec.get("preprocessing", "auto", lambda v: isinstance(v, (str, list)),
                            "'auto', 'none' or a list of {step, params} tables")
    from .training import SklearnRecipe

    try:
        SklearnRecipe(estimator, dict(params), preprocessing, n_classes=2, queries=list(game.queries))
    except ConfigError as exc:
        problems.add(str(exc))
    return ModelConfig(kind="sklearn", estimator=estimator, params=dict(params), preprocessing=preprocessing)


def _parse_attacks(value: Any, problems: _Problems) -> AttacksConfig:
    names: Any
    params: Any = {}
    access: Any = "logits"
    lq: Any = {}
    if value is None:
        return AttacksConfig()
    if isinstance(value, list):
        names = value
    elif isinstance(value, Mapping):
        sec = _Section("attacks", value, ("names", "params", "access", "label_queries"), problems)
        names = sec.table.get("names")
        params = sec.get("params", {}, lambda v: isinstance(v, Mapping) and all(isinstance(p, Mapping) for p in v.values()),
                         "a table of per-attack parameter tables, e.g. [attacks.params.rmia] gamma = 2.0")
        access = sec.get("access", "logits", lambda v: v in ("logits", "label"),
                         "\"logits\" (full outputs) or \"label\" (predicted classes only)")
        lq = sec.get("label_queries", {}, lambda v: isinstance(v, Mapping),
                     "a table, e.g. [attacks.label_queries] augmentations = 16")
    else:
        problems.add(f"attacks: expected a list of attack names or an [attacks] table, got {_type_name(value)} {value!r}")
        return AttacksConfig()
    from .attacks import available_attacks
    from .attacks.lm import lm_attack_names

    valid = list(dict.fromkeys([*available_attacks(), *lm_attack_names()]))  # LM names for kind = "causal_lm"
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.add(f"attacks: expected a list of attack names, got {names!r}; valid names: {', '.join(valid)}")
            names = None
        else:
            for n in names:
                if n not in valid:
                    problems.add(f"attacks: unknown attack {n!r}; valid names: {', '.join(valid)}")
    for n in params:
        if n not in valid:
            problems.add(f"[attacks.params] unknown attack {n!r}; valid names: {', '.join(valid)}")
    lq = _check_label_queries(lq, access, names, problems)
    return AttacksConfig(names=tuple(dict.fromkeys(names)) if names else None,
                         params={k: dict(v) for k, v in params.items()}, access=access, label_queries=lq)


def _check_label_queries(lq: Mapping[str, Any], access: str, names: Any, problems: _Problems) -> dict[str, Any]:
    """``[attacks.label_queries]`` (label access only) and label access's attack names."""
    from .attacks import attack_class
    from .models import LabelQuerySpec

    if access != "label":
        if lq:
            problems.add("[attacks] label_queries: set, but access is not \"label\"; add access = \"label\" or remove it")
        return {}
    keys = ("augmentations", "noise", "shift", "flip", "boundary_queries", "batch_size")
    for k in lq:
        if k not in keys:
            problems.add(f"[attacks.label_queries] unknown key {k!r}; valid keys: {', '.join(keys)}")
    known = {k: v for k, v in lq.items() if k in keys}
    try:
        LabelQuerySpec(**known)
    except InputError as exc:
        problems.add(f"[attacks.label_queries] {exc}")
    for n in names or []:
        try:
            kinds = attack_class(n).output_kinds
        except InputError:
            continue
        if "labels" not in kinds:
            problems.add(f"attacks: {n!r} reads the model's outputs, but access = \"label\" gives predicted classes "
                         "only; name label-only attacks (see `miaudit attacks`) or leave out access")
    return known


def _check_attack_family(model: ModelConfig, attacks: AttacksConfig, problems: _Problems) -> None:
    """Language models have their own attacks (:mod:`miaudit.attacks.lm`); classifiers the registry's."""
    from .attacks import available_attacks
    from .attacks.lm import lm_attack_names

    valid = lm_attack_names() if model.kind == "causal_lm" else available_attacks()
    for n in [*(attacks.names or ()), *attacks.params]:
        if n not in valid and n in [*available_attacks(), *lm_attack_names()]:
            problems.add(f"attacks: {n!r} is not an attack for [model] kind = {model.kind!r}; valid names: "
                         f"{', '.join(valid)}")


def _parse_metrics(table: Any, problems: _Problems) -> AuditSettings:
    sec = _Section("metrics", table, ("delta", "confidence", "member_prior", "fprs"), problems)
    delta = sec.get("delta", 1e-5, lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
    conf = sec.get("confidence", 0.95, lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)")
    prior = sec.get("member_prior", 0.5, lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)")
    fprs = sec.get("fprs", [1e-3, 1e-2, 1e-1],
                   lambda v: isinstance(v, list) and bool(v) and all(_is_number(f) and 0 < f < 1 for f in v),
                   "a non-empty list of numbers in (0, 1)")
    fs = tuple(float(f) for f in fprs)
    if len({format(f, "g") for f in fs}) != len(fs):
        problems.add(f"[metrics] fprs: expected distinct values, got {list(fs)}; remove the duplicates")
        fs = tuple(dict.fromkeys(fs))
    return AuditSettings(delta=float(delta), confidence=float(conf), member_prior=float(prior), fprs=fs)


def _parse_output(table: Any, base: Path | None, problems: _Problems) -> OutputConfig:
    sec = _Section("output", table, ("dir", "run_dir", "show_features", "show_text"), problems)
    show = sec.get("show_features", False, lambda v: isinstance(v, bool), "true or false")
    show_text = sec.get("show_text", False, lambda v: isinstance(v, bool), "true or false")
    out = sec.get("dir", "miaudit-report", lambda v: isinstance(v, str) and v != "", "a folder path")
    out_p = _resolve(base, out)
    run = sec.get("run_dir", None, lambda v: isinstance(v, str) and v != "", "a folder path")
    run_p = _resolve(base, run) if run is not None else out_p / "cache"
    for name, p in (("dir", out_p), ("run_dir", run_p)):
        if why := _unusable(p):
            problems.add(f"[output] {name}: the path cannot be used ({why}); choose another folder")
        elif p.exists() and not p.is_dir():
            problems.add(f"[output] {name}: {str(p)!r} exists and is not a folder; choose another path")
    return OutputConfig(dir=out_p, run_dir=run_p, show_features=bool(show), show_text=bool(show_text))


def _parse_target(table: Any, base: Path | None, problems: _Problems) -> TargetConfig | None:
    if table is None:
        return None
    sec = _Section("target", table, ("model", "members", "nonmembers", "allow_pickle", "trusted", "callable",
                                     "output_kind", "batch_size", "query_budget"), problems)
    fn = sec.get("callable", None, lambda v: isinstance(v, str) and "." in v, "an import path 'package.module.name'")
    kind = sec.get("output_kind", None, lambda v: v in ("logits", "probs", "scores", "labels"),
                   "one of logits, probs, scores, labels")
    batch = sec.get("batch_size", 1024, lambda v: _is_int(v) and v >= 1, "an integer >= 1")
    budget = sec.get("query_budget", None, lambda v: _is_int(v) and v >= 1, "an integer >= 1 (queries to the target)")
    if fn is not None and "model" in sec.table:
        problems.add("[target] model and callable: both set; give the model file or the callable's import path")
    if kind is not None and fn is None:
        problems.add("[target] output_kind: only with callable (a model file says what it returns)")
    paths: dict[str, Path] = {}
    for key in ("model", "members", "nonmembers"):
        if key == "model" and ("callable" in sec.table):
            continue
        v = sec.get(key, None, lambda v: isinstance(v, str) and v != "", "a file path")
        if v is None:
            if key not in sec.table:
                problems.add(f"[target] {key}: missing; add {key} = \"<file>\""
                             + (" (or callable = \"package.module.function\")" if key == "model" else ""))
            continue
        p = _resolve(base, v)
        _check_path(f"[target] {key}", p, problems, file=True)
        paths[key] = p
    allow = sec.get("allow_pickle", False, lambda v: isinstance(v, bool), "true or false")
    trusted = sec.get("trusted", [], lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v),
                      "a list of type names, e.g. ['numpy.float64']")
    model = paths.get("model")
    if model is not None:
        suffix = model.suffix.lower()
        if suffix in (".pkl", ".pickle", ".joblib") and not allow:
            problems.add(f"[target] model: {model.name!r} is a pickle, which can run arbitrary code when loaded; "
                         "save it with skops.io.dump as .skops, or set allow_pickle = true in [target] if you trust the file")
        elif suffix not in (".skops", ".pkl", ".pickle", ".joblib"):
            problems.add(f"[target] model: expected a .skops file (or .pkl/.joblib with allow_pickle = true), got {model.name!r}")
    if len(paths) < (2 if fn is not None else 3):
        return None
    return TargetConfig(model=paths.get("model"), members=paths["members"], nonmembers=paths["nonmembers"],
                        allow_pickle=allow, trusted=tuple(trusted), callable=fn, output_kind=kind,
                        batch_size=int(batch), query_budget=None if budget is None else int(budget))


def _parse_lm_target(table: Any, base: Path | None, data: DataConfig, problems: _Problems) -> TargetConfig | None:
    """``[target]`` of a language model: ``model``, a local folder saved with ``save_pretrained`` (safetensors
    weights); its members are the documents of ``[data] path`` flagged in ``[data] member_column`` (default
    ``"member"``): ``members`` and ``nonmembers`` of the result are that file."""
    member_column = data.options.get("member_column")
    if table is None:
        if member_column is not None:
            problems.add("[data] member_column: only with a [target] model (the flags are its membership); "
                         "add [target] model = \"<checkpoint folder>\" or remove member_column")
        return None
    sec = _Section("target", table, ("model",), problems)
    v = sec.get("model", None, lambda v: isinstance(v, str) and v != "", "a checkpoint folder path")
    if v is None:
        if "model" not in sec.table:
            problems.add("[target] model: missing; add model = \"<folder saved with model.save_pretrained>\"")
        return None
    p = _resolve(base, v)
    if why := _unusable(p):
        problems.add(f"[target] model: the path cannot be used ({why}); use a shorter, valid path")
        return None
    if not p.is_dir():
        problems.add(f"[target] model: {str(p)!r} is not a folder; save the target with model.save_pretrained(folder) "
                     "(relative paths are relative to the config file)")
        return None
    if not (p / "config.json").is_file() or not any(p.glob("*.safetensors")):
        problems.add(f"[target] model: {str(p)!r} has no config.json with *.safetensors weights (pickled .bin "
                     "weights are refused: loading them can run code); save it with model.save_pretrained(folder)")
        return None
    if data.kind != "text" or "path" not in data.options:
        problems.add("[data] kind: a language-model [target] needs kind = \"text\" with a path whose documents "
                     "carry a member flag ([data] member_column)")
        return None
    if "max_examples" in data.options:
        problems.add("[data] max_examples: not with a [target]: every flagged document is audited; remove it")
    f = Path(data.options["path"])
    return TargetConfig(model=p, members=f, nonmembers=f)


def _parse_execution(table: Any, problems: _Problems) -> Execution:
    sec = _Section("execution", table, EXECUTION_KEYS, problems)
    values = {k: v for k, v in sec.table.items() if k in EXECUTION_KEYS}
    found = execution_problems(values)
    for p in found:
        problems.add(p)
    return Execution() if found else Execution(**values)


# ------------------------------------------------------------------------------------------------ loading


def load_config(path: str | Path, *, data_path: str | Path | None = None) -> AuditConfig:
    """Read a ``.toml``, ``.yaml``/``.yml`` (or ``.json``) audit config and validate it.

    ``data_path`` replaces ``[data] path`` (the CLI's ``--data``); a relative one resolves against the
    current folder, not the config's.

    Raises :class:`~miaudit.ConfigError` for a missing/unreadable file, a syntax error (with its line),
    or any invalid content (all problems in one message).
    """
    from ._imports import config_folder_on_path

    p = _expand(path)
    d = read_config_file(p)
    if data_path is not None and isinstance(d, Mapping) and isinstance(d.get("data"), Mapping):
        d = {**d, "data": {**d["data"], "path": str(_expand(data_path).absolute())}}
    try:
        with config_folder_on_path(p.resolve().parent):  # an estimator module next to the config imports
            return AuditConfig.from_dict(d, base_dir=p.resolve().parent, source=p)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(f"config: {p.name!r} nests lists or tables too deeply; flatten it") from None
    except InputError as exc:  # pragma: no cover - defensive: present every input problem as a config problem
        raise ConfigError(f"config {p}: {exc}") from None


def read_config_file(path: str | Path) -> Any:
    """The parsed, not yet validated content of a TOML/YAML/JSON config file (used by levers configs,
    which add a ``[levers]`` section to an audit config). Syntax errors raise :class:`ConfigError`."""
    p = _expand(path)
    if why := _unusable(p):
        raise ConfigError(f"config: the path cannot be used ({why}); pass the path of a .toml or .yaml audit config")
    if not p.exists():
        raise ConfigError(f"config: {str(p)!r} does not exist; pass the path of a .toml or .yaml audit config")
    if p.is_dir():
        raise ConfigError(f"config: {str(p)!r} is a folder; pass the .toml or .yaml file inside it")
    if not p.is_file():  # a named pipe or a device (/dev/zero) would block or be read forever
        raise ConfigError(f"config: {str(p)!r} is not a regular file; pass the path of a .toml or .yaml audit config")
    suffix = p.suffix.lower()
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config: cannot read {str(p)!r} ({exc.strerror}); check its permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config: {p.name!r} is not UTF-8 text; save it as UTF-8") from None
    d: Any
    if suffix == ".toml":
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {p.name!r} is not valid TOML ({exc}); fix the syntax") from None
        except RecursionError:
            raise ConfigError(f"config: {p.name!r} nests lists or tables too deeply; flatten it") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            raise ConfigError(f"config: {p.name!r} is not valid YAML{where} ({problem}); fix the syntax") from None
        except RecursionError:
            raise ConfigError(f"config: {p.name!r} nests lists or tables too deeply; flatten it") from None
        if d is None:
            d = {}
    elif suffix == ".json":
        import json

        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config: {p.name!r} is not valid JSON (line {exc.lineno}: {exc.msg}); fix the syntax") from None
        except RecursionError:
            raise ConfigError(f"config: {p.name!r} nests lists or tables too deeply; flatten it") from None
    else:
        raise ConfigError(f"config: expected a .toml, .yaml or .yml file, got {p.name!r}; rename it or convert it")
    return d
