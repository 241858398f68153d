"""High-level Python API: run the attacks on a bundle or a fitted model and collect the results.

Typical use::

    from miaudit import audit_model
    result = audit_model(clf, X_train, y_train, X_heldout, y_heldout)
    print(result.metrics_table())
    result.save("audit-out")          # results.json, scores.csv, report.html

The functions here orchestrate the lower layers (data -> attacks -> metrics -> report); they hold
no maths of their own.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._errors import InputError
from .attacks import attack_class, available_attacks, get_attack, missing_requirements
from .data import SignalBundle
from .metrics import evaluate_scores, slice_metrics, summarize_spread
from .report import AuditResult

__all__ = [
    "AuditSettings",
    "run_attacks",
    "evaluate_bundle",
    "evaluate_game",
    "audit_model",
    "audit_bundle",
    "check_budget",
    "parse_budget",
]

#: Attacks run by default when none are named (every registered attack that can run).
DEFAULT_TOP_EXPOSED = 20
#: At most this many feature columns are shown for exposed records (when asked for).
MAX_FEATURE_COLUMNS = 50


@dataclass(frozen=True)
class AuditSettings:
    """Statistical settings of an audit (all documented in results.json ``settings``)."""

    delta: float = 1e-5
    confidence: float = 0.95
    member_prior: float = 0.5
    fprs: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.delta < 1:
            problems.append(f"delta must be in [0, 1), got {self.delta}")
        if not 0 < self.confidence < 1:
            problems.append(f"confidence must be in (0, 1), got {self.confidence}")
        if not 0 < self.member_prior < 1:
            problems.append(f"member_prior must be in (0, 1), got {self.member_prior}")
        if not self.fprs or any(not 0 < f < 1 for f in self.fprs):
            problems.append(f"fprs must be non-empty values in (0, 1), got {list(self.fprs)}")
        if problems:
            raise InputError("settings: " + "; ".join(problems))

    @classmethod
    def coerce(cls, value: "AuditSettings | Mapping[str, Any] | None") -> "AuditSettings":
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            valid = {f for f in cls.__dataclass_fields__}
            unknown = set(value) - valid
            if unknown:
                raise InputError(
                    f"settings: unknown key(s) {sorted(unknown)}; valid keys: {sorted(valid)}"
                )
            kw = dict(value)
            if "fprs" in kw:
                kw["fprs"] = tuple(float(f) for f in kw["fprs"])
            return cls(**kw)
        raise InputError(f"settings: expected AuditSettings or a mapping, got {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fprs"] = list(self.fprs)
        return d


@dataclass
class AttackRun:
    """Scores of every attack that ran on one bundle, and why the others did not."""

    scores: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    exposure: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _resolve_attacks(attacks: Sequence[str] | None) -> list[str]:
    if attacks is None or len(attacks) == 0:
        return available_attacks()
    names = list(dict.fromkeys(attacks))
    for name in names:
        attack_class(name)  # raises InputError naming the valid attacks
    return names


def run_attacks(
    bundle: SignalBundle,
    attacks: Sequence[str] | None = None,
    *,
    seed: int = 0,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> AttackRun:
    """Fit and score every requested attack that can run on ``bundle``.

    Attacks whose requirements the bundle does not meet are listed in ``skipped`` with the reason.
    ``params`` maps an attack name to hyper-parameters; a ``seed`` is passed to attacks that take one.
    """
    run = AttackRun()
    params = params or {}
    for name in _resolve_attacks(attacks):
        reason = missing_requirements(name, bundle)
        if reason is not None:
            run.skipped[name] = reason
            continue
        kw = dict(params.get(name, {}))
        cls = attack_class(name)
        if "seed" in inspect.signature(cls).parameters:
            kw.setdefault("seed", seed)
        attack = get_attack(name, **kw)
        scores = np.asarray(attack.fit(bundle).score(bundle), dtype=np.float64)
        if scores.shape != (bundle.n_examples,) or not np.all(np.isfinite(scores)):
            raise RuntimeError(f"attack {name!r} returned invalid scores (shape {scores.shape})")
        run.scores[name] = scores
        exposure = getattr(attack, "exposure_", None)
        if isinstance(exposure, Mapping):
            run.exposure[name] = {k: np.asarray(v) for k, v in exposure.items()}
    return run


def _metrics_kwargs(settings: AuditSettings) -> dict[str, Any]:
    return {
        "fprs": settings.fprs,
        "delta": settings.delta,
        "confidence": settings.confidence,
        "member_prior": settings.member_prior,
        "seed": settings.seed,
    }


def _strongest(metrics: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The attack with the highest TPR at the lowest supported FPR (ties broken by AUC)."""
    if not metrics:
        return None

    def key(name: str) -> tuple:
        m = metrics[name]
        tprs = m.get("tpr_at_fpr", {})
        ordered = sorted(tprs, key=float)
        values = tuple(-1.0 if tprs[k] is None else float(tprs[k]) for k in ordered)
        return values + (float(m.get("auc") or 0.0),)

    return max(metrics, key=key)


def _exposures(
    scores: np.ndarray,
    labels: np.ndarray,
    is_member: np.ndarray | None,
    attack: str,
    exposure: Mapping[str, np.ndarray] | None,
    top: int,
    index: np.ndarray | None = None,
    target: np.ndarray | None = None,
    features: Any | None = None,
) -> pd.DataFrame:
    """The ``top`` highest-scoring records of ``attack`` with their per-example statistics; feature
    values (first :data:`MAX_FEATURE_COLUMNS` columns) only when ``features`` is given."""
    order = np.argsort(-scores, kind="stable")[:top]
    df = pd.DataFrame(
        {
            "index": (np.arange(len(scores)) if index is None else index)[order],
            "label": labels[order],
            "attack": attack,
            "score": scores[order],
        }
    )
    if target is not None:
        df.insert(0, "target", target[order])
    if is_member is not None:
        df["is_member"] = is_member[order]
    for key, values in (exposure or {}).items():
        if values.shape == scores.shape:
            df[key] = values[order]
    if features is not None:
        rows = df["index"].to_numpy()
        if isinstance(features, pd.DataFrame):
            feats = features.iloc[rows].reset_index(drop=True)
        else:
            arr = np.asarray(features)[rows].reshape(len(rows), -1)
            feats = pd.DataFrame(arr, columns=[f"x{j}" for j in range(arr.shape[1])])
        feats = feats.iloc[:, :MAX_FEATURE_COLUMNS]
        df = pd.concat([df, feats.add_prefix("feature:")], axis=1)
    return df


def evaluate_bundle(
    bundle: SignalBundle,
    *,
    attacks: Sequence[str] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    game: Mapping[str, Any] | None = None,
    attack_params: Mapping[str, Mapping[str, Any]] | None = None,
    top_exposed: int = DEFAULT_TOP_EXPOSED,
    features: Any | None = None,
) -> AuditResult:
    """Run the attacks on one target's outputs and measure them (when ``is_member`` is known).

    The exposure table lists records by index only; pass ``features`` (the N examples' feature
    rows) to show their values too.
    """
    settings = AuditSettings.coerce(settings)
    run = run_attacks(bundle, attacks, seed=settings.seed, params=attack_params)
    labels = bundle.labels
    is_member = bundle.is_member
    scores_df = pd.DataFrame({"index": np.arange(bundle.n_examples), "label": labels})
    if is_member is not None:
        scores_df["is_member"] = is_member.astype(bool)
    if bundle.groups is not None:
        scores_df["group"] = bundle.groups
    for name, s in run.scores.items():
        scores_df[name] = s

    metrics: dict[str, dict[str, Any]] = {}
    slices: dict[str, pd.DataFrame] = {}
    if is_member is not None:
        kw = _metrics_kwargs(settings)
        for name, s in run.scores.items():
            metrics[name] = evaluate_scores(is_member, s, **kw).to_dict()
        best = _strongest(metrics)
        if best is not None:
            slices = _slices(is_member, run.scores[best], labels, bundle.groups, settings.fprs)
    else:
        best = next(iter(run.exposure), None) or next(iter(run.scores), None)

    exposures = None
    if best is not None:
        exposures = _exposures(
            run.scores[best], labels, is_member, best, run.exposure.get(best), top_exposed,
            features=features,
        )
    game_d = {
        "source": "bundle",
        "n_examples": bundle.n_examples,
        "n_classes": bundle.n_classes,
        "n_queries": bundle.n_queries,
        "n_references": bundle.n_references,
        "n_targets": 1,
    }
    if is_member is not None:
        game_d["n_members"] = int(is_member.sum())
        game_d["n_nonmembers"] = int((~is_member.astype(bool)).sum())
        game_d.update(_accuracies(bundle.target_logits, labels, is_member))
    return _result(game_d, game, best, settings, metrics, scores_df, run.skipped, slices, exposures)


def _slices(
    is_member: np.ndarray, scores: np.ndarray, labels: np.ndarray, groups: np.ndarray | None,
    fprs: Sequence[float],
) -> dict[str, pd.DataFrame]:
    """Per-class (and, with ``groups``, per-group) metrics of one attack's scores."""
    out = {"class": slice_metrics(is_member, scores, labels, fprs=fprs)}
    if groups is not None:
        out["group"] = slice_metrics(is_member, scores, groups, fprs=fprs)
    return out


def _result(
    game_d: dict[str, Any], game: Mapping[str, Any] | None, best: str | None, settings: AuditSettings,
    metrics: dict[str, dict[str, Any]], scores: pd.DataFrame, skipped: dict[str, str],
    slices: dict[str, pd.DataFrame], exposures: pd.DataFrame | None,
) -> AuditResult:
    """The :class:`AuditResult`; the caller's ``game`` entries override the measured ones."""
    game_d.update(dict(game or {}))
    game_d["strongest_attack"] = best
    return AuditResult(game=game_d, settings=settings.to_dict(), metrics=metrics, scores=scores,
                       skipped=skipped, slices=slices, exposures=exposures)


def _accuracies(logits: np.ndarray, labels: np.ndarray, is_member: np.ndarray) -> dict[str, float]:
    pred = np.asarray(logits, dtype=np.float64)[:, 0, :].argmax(axis=-1)
    correct = pred == labels
    m = np.asarray(is_member, dtype=bool)
    train = float(correct[m].mean()) if m.any() else float("nan")
    test = float(correct[~m].mean()) if (~m).any() else float("nan")
    return {"train_accuracy": train, "test_accuracy": test, "generalisation_gap": train - test}


def evaluate_game(
    labels: np.ndarray,
    logits: np.ndarray,
    membership: np.ndarray,
    *,
    targets: Sequence[int] | None = None,
    attacks: Sequence[str] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    game: Mapping[str, Any] | None = None,
    groups: np.ndarray | None = None,
    attack_params: Mapping[str, Mapping[str, Any]] | None = None,
    top_exposed: int = DEFAULT_TOP_EXPOSED,
    features: Any | None = None,
) -> AuditResult:
    """Evaluate K models of one recipe, each in turn the target against the others.

    The references of target ``t`` are the other models except ``t``'s complementary partner
    (see :meth:`SignalBundle.from_game`): K - 2 references when the models come in complementary
    pairs, as :func:`miaudit.data.balanced_membership` draws them.

    ``logits`` is (K, N, A, C), ``membership`` (K, N) bool. Figures are computed on the ROC
    pooled over all evaluated targets (as in the LiRA paper); each attack's ``spread`` gives the
    mean and standard deviation of the per-target figures.
    """
    settings = AuditSettings.coerce(settings)
    logits = np.asarray(logits)
    membership = np.asarray(membership, dtype=bool)
    labels = np.asarray(labels)
    if logits.ndim != 4 or membership.shape != logits.shape[:2] or labels.shape != logits.shape[1:2]:
        raise InputError(
            f"evaluate_game: expected logits (K, N, A, C), membership (K, N), labels (N,); "
            f"got {logits.shape}, {membership.shape}, {labels.shape}"
        )
    n_models = logits.shape[0]
    if n_models < 2:
        raise InputError(f"evaluate_game: need at least 2 models, got {n_models}")
    targets = list(range(n_models)) if targets is None else [int(t) for t in targets]
    if not targets or any(not 0 <= t < n_models for t in targets):
        raise InputError(f"evaluate_game: targets must be indices in [0, {n_models}), got {targets}")

    kw = _metrics_kwargs(settings)
    per_target: dict[str, list] = {}
    frames: list[pd.DataFrame] = []
    exposure_frames: list[tuple[int, AttackRun]] = []
    skipped: dict[str, str] = {}
    accs = []
    n_refs: set[int] = set()
    for t in targets:
        bundle = SignalBundle.from_game(
            labels=labels, logits=logits, membership=membership, target=t, groups=groups
        )
        n_refs.add(bundle.n_references)
        run = run_attacks(bundle, attacks, seed=settings.seed + t, params=attack_params)
        skipped.update(run.skipped)
        df = pd.DataFrame(
            {"target": t, "index": np.arange(len(labels)), "label": labels, "is_member": membership[t]}
        )
        if groups is not None:
            df["group"] = groups
        for name, s in run.scores.items():
            df[name] = s
            per_target.setdefault(name, []).append(evaluate_scores(membership[t], s, **kw))
        frames.append(df)
        exposure_frames.append((t, run))
        accs.append(_accuracies(logits[t], labels, membership[t]))

    scores_df = pd.concat(frames, ignore_index=True)
    pooled_member = scores_df["is_member"].to_numpy(bool)
    metrics: dict[str, dict[str, Any]] = {}
    for name, per in per_target.items():
        m = evaluate_scores(pooled_member, scores_df[name].to_numpy(np.float64), **kw).to_dict()
        m["spread"] = summarize_spread(per)
        metrics[name] = m
    best = _strongest(metrics)
    slices: dict[str, pd.DataFrame] = {}
    exposures = None
    if best is not None:
        slices = _slices(
            pooled_member, scores_df[best].to_numpy(np.float64), scores_df["label"].to_numpy(),
            None if groups is None else scores_df["group"].to_numpy(), settings.fprs,
        )
        parts = []
        for t, run in exposure_frames:
            if best in run.scores:
                parts.append(
                    _exposures(
                        run.scores[best], labels, membership[t], best, run.exposure.get(best),
                        top_exposed, target=np.full(len(labels), t), features=features,
                    )
                )
        exposures = (
            pd.concat(parts, ignore_index=True)
            .sort_values("score", ascending=False, kind="stable")
            .head(top_exposed)
            .reset_index(drop=True)
        )

    game_d: dict[str, Any] = {
        "source": "audit",
        "n_examples": int(labels.shape[0]),
        "n_classes": int(logits.shape[3]),
        "n_queries": int(logits.shape[2]),
        "n_models": n_models,
        "n_references": min(n_refs),
        "n_targets": len(targets),
        "targets": targets,
        "n_members": int(pooled_member.sum()),
        "n_nonmembers": int((~pooled_member).sum()),
        "train_accuracy": float(np.mean([a["train_accuracy"] for a in accs])),
        "test_accuracy": float(np.mean([a["test_accuracy"] for a in accs])),
    }
    game_d["generalisation_gap"] = game_d["train_accuracy"] - game_d["test_accuracy"]
    return _result(game_d, game, best, settings, metrics, scores_df, skipped, slices, exposures)


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
) -> AuditResult:
    """Audit a fitted scikit-learn classifier against its members and held-out non-members.

    The most exposed records are listed by index (members first, then non-members) and only show
    their feature values with ``show_features=True``.

    Runs every attack that needs no reference models (population thresholds and cross-fitted
    trained attacks). For reference-model attacks (LiRA, RMIA, ...) use
    :func:`miaudit.pipeline.run_audit_with_target`, which trains references with your recipe.
    """
    from .models import sklearn_logits

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
    if classes is not None and not np.issubdtype(np.asarray(classes).dtype, np.integer):
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
    if classes is not None and not np.issubdtype(np.asarray(classes).dtype, np.integer):
        # non-integer classes_: the model's output columns follow classes_, i.e. the codes above
        if not hasattr(model, "predict_proba"):
            raise InputError(
                f"model: {type(model).__name__} has string classes_ but no predict_proba; "
                "fit it on integer labels 0..C-1 instead"
            )
        from .signals import probs_to_logits

        logits = probs_to_logits(np.asarray(model.predict_proba(X_all), dtype=np.float64))[:, None, :]
    else:
        logits = sklearn_logits(model, X_all, n_classes=n_classes)
    groups = None
    if groups_members is not None or groups_nonmembers is not None:
        if groups_members is None or groups_nonmembers is None:
            raise InputError("groups_members and groups_nonmembers must be given together")
        groups = np.concatenate([np.asarray(groups_members), np.asarray(groups_nonmembers)])
    is_member = np.concatenate([np.ones(len(ym), bool), np.zeros(len(yn), bool)])
    bundle = SignalBundle.from_arrays(
        labels=y_codes, target_logits=logits, is_member=is_member, groups=groups
    )
    game_d = {"source": "model", "model": _describe(model)}
    game_d.update(dict(game or {}))
    return evaluate_bundle(
        bundle, attacks=attacks, settings=settings, game=game_d, features=X_all if show_features else None
    )


def _describe(model: Any) -> str:
    text = repr(model)
    return text if len(text) <= 300 else text[:297] + "..."


def audit_bundle(
    bundle: "SignalBundle | str | Any",
    *,
    attacks: Sequence[str] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    **load_kwargs: Any,
) -> AuditResult:
    """Audit precomputed outputs: a :class:`SignalBundle`, or a path to an ``.npz``/CSV/parquet bundle."""
    from .data import load_bundle

    game: dict[str, Any] = {}
    if not isinstance(bundle, SignalBundle):
        game["bundle_path"] = str(bundle)
        bundle = load_bundle(bundle, **load_kwargs)
    return evaluate_bundle(bundle, attacks=attacks, settings=settings, game=game)


# --------------------------------------------------------------------------- privacy gate

_BUDGET_RE = re.compile(r"^\s*(auc|advantage|epsilon|eps|tpr@([0-9.eE+-]+))\s*=\s*([0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class Budget:
    metric: str  # "auc" | "advantage" | "epsilon" | "tpr"
    fpr: float | None
    limit: float

    def label(self) -> str:
        return f"tpr@{self.fpr:g}" if self.metric == "tpr" else self.metric


def parse_budget(text: str) -> Budget:
    """Parse ``METRIC=VALUE`` (``auc``, ``advantage``, ``epsilon``, ``tpr@FPR``), e.g. ``tpr@0.001=0.01``."""
    m = _BUDGET_RE.match(text)
    if not m:
        raise InputError(
            f"--fail-above {text!r}: expected METRIC=VALUE with METRIC one of auc, advantage, "
            "epsilon, tpr@FPR (e.g. tpr@0.001=0.01)"
        )
    name, fpr, value = m.group(1), m.group(2), m.group(3)
    try:
        limit = float(value)
        fpr_f = None if fpr is None else float(fpr)
    except ValueError:
        raise InputError(f"--fail-above {text!r}: {value!r} is not a number") from None
    if name.startswith("tpr"):
        if fpr_f is None or not 0 < fpr_f < 1:
            raise InputError(f"--fail-above {text!r}: the FPR in tpr@FPR must be in (0, 1)")
        return Budget("tpr", fpr_f, limit)
    return Budget("epsilon" if name == "eps" else name, None, limit)


def _measured(metrics: Mapping[str, Any], budget: Budget) -> float | None:
    if budget.metric == "auc":
        return metrics.get("auc")
    if budget.metric == "advantage":
        return metrics.get("advantage")
    if budget.metric == "epsilon":
        return metrics.get("epsilon_lower_bound")
    tprs = metrics.get("tpr_at_fpr", {})
    for key, value in tprs.items():
        if math.isclose(float(key), budget.fpr or 0.0, rel_tol=1e-9):
            return value
    return None


def check_budget(result: AuditResult, budgets: Sequence[Budget | str]) -> list[str]:
    """Violations of the privacy budgets (one sentence each); empty when every budget is met.

    A budget on ``tpr@FPR`` at an FPR that was not computed is an error; a figure that is null
    because too few non-members stand behind it is reported as a violation (the audit cannot show
    the budget is met).
    """
    parsed = [parse_budget(b) if isinstance(b, str) else b for b in budgets]
    if parsed and not result.metrics:
        raise InputError("--fail-above needs membership ground truth (is_member) to measure leakage")
    violations = []
    fprs = [float(f) for f in result.settings.get("fprs", [])]
    for b in parsed:
        if b.metric == "tpr" and not any(math.isclose(b.fpr, f, rel_tol=1e-9) for f in fprs):
            raise InputError(
                f"--fail-above {b.label()}: FPR {b.fpr:g} is not among the computed FPRs {fprs}"
            )
        for name, m in result.metrics.items():
            value = _measured(m, b)
            if value is None:
                violations.append(
                    f"{name}: {b.label()} cannot be measured with {m.get('n_nonmembers')} "
                    f"non-members, so the budget {b.limit:g} is not shown to hold"
                )
            elif value > b.limit:
                violations.append(f"{name}: {b.label()} = {value:.4g} exceeds the budget {b.limit:g}")
    return violations
