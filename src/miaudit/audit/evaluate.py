"""Evaluate a game: run the attacks on each target's signals, measure them, decide the verdict.

* :func:`run_attacks` fits and scores the attacks on one :class:`~miaudit.data.SignalBundle`.
* :func:`evaluate_bundle`: one target (a scored bundle, a user's fitted model, the demo's target).
* :func:`evaluate_game`: K models of one recipe, each of several in turn the target against its references
  (:func:`~miaudit.audit.design.references_for_target`), pooled.

Both return a typed :class:`~miaudit.report.AuditResult`. Rows that come from different models are
*strata* for the metrics (:func:`miaudit.metrics.evaluate_scores`): the targets of a pooled game, and the
fold models of the cross-fitted attacks. The verdict is :func:`miaudit.metrics.decide_leakage`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .._errors import InputError, MiauditError
from .._timing import phase
from ..attacks import attack_class, available_attacks, get_attack, missing_requirements
from ..data import SignalBundle
from ..metrics import (
    AttackMetrics,
    AuditSettings,
    DpCheck,
    decide_leakage,
    dp_check,
    evaluate_scores,
    rank_attacks,
    slice_metrics,
    summarize_spread,
)
from ..report import AuditResult
from ..signals import correct
from .design import check_references, references_for_target

__all__ = ["AttackRun", "DEFAULT_TOP_EXPOSED", "run_attacks", "evaluate_bundle", "evaluate_game", "target_bundle"]

#: Most exposed records listed in the report.
DEFAULT_TOP_EXPOSED = 20
#: At most this many feature columns are shown for exposed records (when asked for).
MAX_FEATURE_COLUMNS = 50
#: BLAS/OpenMP threads while attacks run. Attacks set no thread limits themselves; the evaluation does: on
#: shared or oversubscribed cores multi-threaded boosting spins (measured under load: shokri with
#: classifier="gb" on 200,000 rows 96 s with 2 threads, 10 s with one; the attack tests 34 s against 5 s).
ATTACK_THREADS = 1


@dataclass
class AttackRun:
    """Scores of every attack that ran on one bundle, why the others did not, and the fold of each row
    for the cross-fitted attacks (``folds``; their rows are scored by different fold models)."""

    scores: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    exposure: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    folds: dict[str, np.ndarray] = field(default_factory=dict)
    #: Queries each label-only attack made (``attack.queries_``: per example, to the target, to the references).
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)


def _resolve_attacks(attacks: Sequence[str] | None) -> tuple[list[str], bool]:
    if attacks is None or len(attacks) == 0:
        return available_attacks(), False
    names = list(dict.fromkeys(attacks))
    for name in names:
        attack_class(name)  # raises InputError naming the valid attacks
    return names, True


def run_attacks(
    bundle: SignalBundle,
    attacks: Sequence[str] | None = None,
    *,
    seed: int = 0,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> AttackRun:
    """Fit and score every requested attack that can run on ``bundle``.

    Attacks whose requirements the bundle does not meet are listed in ``skipped`` with the reason; an
    attack the caller *named* that cannot run is an error. ``params`` maps an attack name to
    hyper-parameters; a ``seed`` is passed to attacks that take one.
    """
    run = AttackRun()
    params = params or {}
    names, named = _resolve_attacks(attacks)
    for name in names:
        reason = missing_requirements(name, bundle)
        if reason is not None:
            if named:
                raise InputError(f"attack {name!r} cannot run on this data: {reason}")
            run.skipped[name] = reason
            continue
        kw = dict(params.get(name, {}))
        cls = attack_class(name)
        if "seed" in inspect.signature(cls).parameters:
            kw.setdefault("seed", seed)
        attack = get_attack(name, **kw)
        unmet = getattr(attack, "unmet", None)
        reason = unmet(bundle) if callable(unmet) else None
        if reason is not None:  # e.g. too few members to cross-fit
            if named:
                raise InputError(f"attack {name!r} cannot run on this data: {reason}")
            run.skipped[name] = reason
            continue
        with threadpool_limits(limits=ATTACK_THREADS):
            scores = np.asarray(attack.fit(bundle).score(bundle), dtype=np.float64)
        if scores.shape != (bundle.n_examples,) or not np.all(np.isfinite(scores)):
            raise MiauditError(f"attack {name!r} returned invalid scores (shape {scores.shape}, finite "
                               f"{bool(np.all(np.isfinite(scores)))}); this is a bug in the attack")
        run.scores[name] = scores
        fold = getattr(attack, "fold_", None)
        if isinstance(fold, np.ndarray) and fold.shape == scores.shape:
            run.folds[name] = fold.astype(np.int64)
        queries = getattr(attack, "queries_", None)
        if isinstance(queries, Mapping):
            run.queries[name] = dict(queries)
        exposure = getattr(attack, "exposure_", None)
        if isinstance(exposure, Mapping):
            run.exposure[name] = {k: np.asarray(v) for k, v in exposure.items()}
    return run


def target_bundle(
    labels: Any, logits: Any, is_member: Any, target: int, *, groups: Any = None, meta: Mapping[str, Any] | None = None,
    label_answers: Mapping[str, np.ndarray] | None = None,
) -> SignalBundle:
    """The bundle of model ``target`` of a K-model game: its outputs as the target, the models of
    :func:`~miaudit.audit.design.references_for_target` (every other model but its partner) as references.

    ``label_answers`` (label-only access): ``label_pred`` (K, N, A) and optionally ``label_distance`` (K, N) of
    every model; the bundle then holds these predicted classes only (``outputs_kind == "labels"``)."""
    lg = np.asarray(logits)
    mem = np.asarray(is_member, dtype=bool)
    if lg.ndim not in (3, 4) or mem.ndim != 2 or lg.shape[0] != mem.shape[0]:
        raise InputError(
            f"logits/is_member: expected (K, N, [A,] C) and (K, N) with the same K, got shapes {lg.shape} and "
            f"{mem.shape}; stack one row per model"
        )
    refs = references_for_target(mem, target)
    t = int(target) % mem.shape[0]
    if label_answers is not None:
        pred = np.asarray(label_answers["label_pred"])
        dist = label_answers.get("label_distance")
        has_d = dist is not None and bool(np.all(np.isfinite(dist)))
        return SignalBundle.from_arrays(
            labels=labels, target_pred=pred[t], ref_pred=pred[refs], is_member=mem[t], ref_is_member=mem[refs],
            target_distance=np.asarray(dist)[t] if has_d else None,
            ref_distance=np.asarray(dist)[refs] if has_d else None, n_classes=int(lg.shape[-1]), groups=groups,
            meta={**dict(meta or {}), "target_model": t, "references": refs,
                  "label_queries": _label_query_counts(label_answers)},
        )
    return SignalBundle.from_arrays(
        labels=labels, target_logits=lg[t], is_member=mem[t], ref_logits=lg[refs], ref_is_member=mem[refs],
        groups=groups, meta={**dict(meta or {}), "target_model": t, "references": refs},
    )


def _label_query_counts(label_answers: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Queries per example of the label-only answers: in all, on the augmentations, in the boundary search."""
    a = int(np.asarray(label_answers["label_pred"]).shape[-1])
    q = label_answers.get("label_queries")
    total = int(np.asarray(q).max()) if q is not None and np.size(q) else a
    return {"per_example": total, "augmentations": a, "boundary": total - a}


def _accuracies(logits: np.ndarray, labels: np.ndarray, is_member: np.ndarray) -> dict[str, float]:
    ok = correct(logits, labels)
    m = np.asarray(is_member, dtype=bool)
    train = float(ok[m].mean()) if m.any() else float("nan")
    test = float(ok[~m].mean()) if (~m).any() else float("nan")
    return {"train_accuracy": train, "test_accuracy": test, "generalisation_gap": train - test}


def _exposures(
    scores: np.ndarray, labels: np.ndarray | None, is_member: np.ndarray | None, attack: str,
    exposure: Mapping[str, np.ndarray] | None, top: int, *, target: np.ndarray | None = None,
    features: Any | None = None,
) -> pd.DataFrame:
    """The ``top`` highest-scoring records of ``attack`` with their per-example statistics; feature
    values (first :data:`MAX_FEATURE_COLUMNS` columns) only when ``features`` is given."""
    order = np.argsort(-scores, kind="stable")[:top]
    df = pd.DataFrame({"index": np.arange(len(scores))[order], "attack": attack, "score": scores[order]})
    if labels is not None:
        df.insert(1, "label", labels[order])
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
        df = pd.concat([df, feats.iloc[:, :MAX_FEATURE_COLUMNS].add_prefix("feature:")], axis=1)
    return df


def _slices(is_member: np.ndarray, scores: np.ndarray, labels: np.ndarray | None, groups: np.ndarray | None,
            settings: AuditSettings, strata: np.ndarray | None, attack: str) -> dict[str, pd.DataFrame]:
    """Per-class (with labels) and per-group (with ``groups``) metrics of the strongest attack's scores."""
    out = {}
    if labels is not None:
        out["class"] = slice_metrics(is_member, scores, labels, fprs=settings.fprs, confidence=settings.confidence,
                                     strata=strata)
    if groups is not None:
        out["group"] = slice_metrics(is_member, scores, groups, fprs=settings.fprs, confidence=settings.confidence,
                                     strata=strata)
    for df in out.values():
        df.insert(0, "attack", attack)
    return out


def _metrics(is_member: np.ndarray, scores: Mapping[str, np.ndarray], strata: Mapping[str, np.ndarray | None],
             settings: AuditSettings) -> dict[str, AttackMetrics]:
    return {
        name: evaluate_scores(is_member, s, fprs=settings.fprs, delta=settings.delta, confidence=settings.confidence,
                              member_prior=settings.member_prior, seed=settings.seed, strata=strata.get(name))
        for name, s in scores.items()
    }


def _dp(game: Mapping[str, Any], is_member: np.ndarray, scores: Mapping[str, np.ndarray],
        strata: Mapping[str, np.ndarray | None], settings: AuditSettings) -> DpCheck | None:
    dp = game.get("dp")
    if not isinstance(dp, Mapping) or not scores:
        return None
    try:
        eps, delta = float(dp["epsilon"]), float(dp["delta"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (np.isfinite(eps) and eps >= 0 and 0 <= delta < 1):
        return None
    return dp_check(is_member, scores, epsilon=eps, delta=delta, neighbouring=str(dp.get("neighbouring", "add_remove")),
                    strata={k: v for k, v in strata.items() if v is not None}, confidence=settings.confidence,
                    seed=settings.seed)


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

    With references, the game's validity check (:func:`~miaudit.audit.design.check_references`) runs
    first; what it finds is a warning in the terminal, the report and results.json. The exposure table
    lists records by index only; pass ``features`` (the N examples' feature rows) to show their values too.
    """
    settings = AuditSettings.coerce(settings)
    warnings: list[str] = []
    game_d: dict[str, Any] = {
        "source": "bundle", "n_examples": bundle.n_examples, "n_classes": bundle.n_classes,
        "n_queries": bundle.n_queries, "n_references": bundle.n_references, "n_targets": 1,
    }
    is_member = bundle.is_member
    if is_member is not None and bundle.ref_is_member is not None:
        check = check_references(is_member, bundle.ref_is_member)
        game_d["reference_design"] = check.to_dict()
        warnings.extend(check.warnings)
    game_d["access"] = access_of(bundle)
    with phase("score"):
        run = run_attacks(bundle, attacks, seed=settings.seed, params=attack_params)
    if run.queries:
        game_d["attack_queries"] = run.queries
    labels = bundle.labels
    scores_df = pd.DataFrame({"index": np.arange(bundle.n_examples)})
    if labels is not None:
        scores_df["label"] = labels
    if is_member is not None:
        scores_df["is_member"] = is_member.astype(bool)
    if bundle.groups is not None:
        scores_df["group"] = bundle.groups
    for name, s in run.scores.items():
        scores_df[_column(name)] = s

    with phase("metrics"):
        metrics: dict[str, AttackMetrics] = {}
        slices: dict[str, pd.DataFrame] = {}
        decision = dp_chk = None
        folds: dict[str, np.ndarray | None] = {k: run.folds.get(k) for k in run.scores}
        if is_member is not None and run.scores:
            metrics = _metrics(is_member, run.scores, folds, settings)
            decision = decide_leakage(is_member, run.scores, strata=run.folds, fprs=settings.fprs,
                                      confidence=settings.confidence, seed=settings.seed)
            game_d["n_members"] = int(is_member.sum())
            game_d["n_nonmembers"] = int((~is_member).sum())
            if labels is not None:  # a model's accuracy needs labels (and a top class: any output kind has one)
                game_d.update(_accuracies(bundle.target_logits, labels, is_member))
            merged = {**game_d, **dict(game or {})}
            dp_chk = _dp(merged, is_member, run.scores, folds, settings)
        best = rank_attacks(metrics)[0] if metrics else next(iter(run.exposure), None) or next(iter(run.scores), None)
        if best is not None and is_member is not None and metrics:
            slices = _slices(is_member, run.scores[best], labels, bundle.groups, settings, folds.get(best), best)
        exposures = None
        if best is not None:
            exposures = _exposures(run.scores[best], labels, is_member, best, run.exposure.get(best), top_exposed,
                                   features=features)
    game_d.update(dict(game or {}))
    return AuditResult(game=game_d, settings=settings, metrics=metrics, scores=scores_df, decision=decision,
                       skipped=run.skipped, slices=slices, exposures=exposures, warnings=warnings, dp_check=dp_chk)


def access_of(bundle: SignalBundle) -> str:
    """What the audit saw of the target: ``"label"``, ``"scores"``, ``"probs"`` or ``"logits"``."""
    if bundle.outputs_kind == "labels":
        return "label"
    if bundle.outputs_kind == "scores":
        return "scores"
    return "probs" if bundle.meta.get("outputs_kind") == "probs" else "logits"


def _sum_queries(runs: Sequence[tuple[int, AttackRun]]) -> dict[str, dict[str, Any]]:
    """Each attack's queries over the targets of a pooled game (totals summed, per example as reported)."""
    out: dict[str, dict[str, Any]] = {}
    for _, r in runs:
        for name, q in r.queries.items():
            cur = out.setdefault(name, {"per_example": q.get("per_example"), "target": 0, "references": 0})
            for key in ("target", "references"):
                cur[key] = None if cur[key] is None or q.get(key) is None else cur[key] + int(q[key])
    return out


def _column(name: str) -> str:
    """The scores.csv column of an attack: its score, higher = more likely member (``neg_loss`` for ``loss``)."""
    from ..attacks.registry import score_column

    return score_column(name)


def evaluate_game(
    labels: np.ndarray,
    logits: np.ndarray,
    is_member: np.ndarray,
    *,
    targets: Sequence[int] | None = None,
    attacks: Sequence[str] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    game: Mapping[str, Any] | None = None,
    groups: np.ndarray | None = None,
    attack_params: Mapping[str, Mapping[str, Any]] | None = None,
    top_exposed: int = DEFAULT_TOP_EXPOSED,
    features: Any | None = None,
    label_answers: Mapping[str, np.ndarray] | None = None,
) -> AuditResult:
    """Evaluate K models of one recipe, each of ``targets`` in turn the target against its references.

    ``label_answers`` (label-only access, see :func:`target_bundle`): the models' predicted classes; only the
    label-only attacks can run, and ``game["access"]`` is ``"label"``.

    ``logits`` is (K, N, A, C), ``is_member`` (K, N) bool: a design in complementary pairs
    (:func:`~miaudit.audit.design.balanced_membership`), K >= 4. The references of target ``t`` are the
    other models except ``t``'s partner (:func:`~miaudit.audit.design.references_for_target`, which refuses
    designs where no choice is sound). Each target is a stratum of every figure (and so is each fold of a
    cross-fitted attack within it); each attack's ``spread`` gives the mean and standard deviation of the
    per-target figures.
    """
    settings = AuditSettings.coerce(settings)
    logits = np.asarray(logits)
    is_member = np.asarray(is_member, dtype=bool)
    labels = np.asarray(labels)
    if logits.ndim != 4 or is_member.shape != logits.shape[:2] or labels.shape != logits.shape[1:2]:
        raise InputError(
            f"evaluate_game: expected logits (K, N, A, C), is_member (K, N), labels (N,); "
            f"got {logits.shape}, {is_member.shape}, {labels.shape}"
        )
    n_models, n = logits.shape[:2]
    targets = list(range(n_models)) if targets is None else [int(t) for t in targets]
    if not targets or any(not 0 <= t < n_models for t in targets) or len(set(targets)) != len(targets):
        raise InputError(f"targets: expected distinct model indices in [0, {n_models}), got {targets}")

    frames: list[pd.DataFrame] = []
    runs: list[tuple[int, AttackRun]] = []
    skipped: dict[str, str] = {}
    accs = []
    n_refs: set[int] = set()
    with phase("score"):  # every target's signals and attacks
        for t in targets:
            bundle = target_bundle(labels, logits, is_member, t, groups=groups, label_answers=label_answers)
            n_refs.add(bundle.n_references)
            run = run_attacks(bundle, attacks, seed=settings.seed + t, params=attack_params)
            skipped.update(run.skipped)
            df = pd.DataFrame({"target": t, "index": np.arange(n), "label": labels, "is_member": is_member[t]})
            if groups is not None:
                df["group"] = groups
            for name, s in run.scores.items():
                df[_column(name)] = s
            frames.append(df)
            runs.append((t, run))
            accs.append(_accuracies(logits[t], labels, is_member[t]))
    with phase("metrics"):  # pooled figures, spread, verdict, DP check, slices, most exposed records
        names = [k for k in runs[0][1].scores if all(k in r.scores for _, r in runs)]
        scores_df = pd.concat(frames, ignore_index=True)
        pooled_member = scores_df["is_member"].to_numpy(bool)
        target_col = scores_df["target"].to_numpy()
        n_folds = 1 + max((int(f.max()) for _, r in runs for f in r.folds.values()), default=0)
        pooled = {k: scores_df[_column(k)].to_numpy(np.float64) for k in names}
        strata: dict[str, np.ndarray | None] = {}
        folds: dict[str, np.ndarray] = {}
        for k in names:
            if all(k in r.folds for _, r in runs):
                folds[k] = np.concatenate([r.folds[k] for _, r in runs])
                strata[k] = target_col * n_folds + folds[k]
            else:
                strata[k] = target_col
        metrics = _metrics(pooled_member, pooled, strata, settings)
        spread = {}
        for k in names if len(runs) > 1 else []:
            per = [evaluate_scores(is_member[t], r.scores[k], fprs=settings.fprs, delta=settings.delta,
                                   confidence=settings.confidence, member_prior=settings.member_prior,
                                   seed=settings.seed + t, strata=r.folds.get(k)) for t, r in runs]
            spread[k] = summarize_spread(per)
        decision = decide_leakage(pooled_member, pooled, groups=target_col, strata=folds, fprs=settings.fprs,
                                  confidence=settings.confidence, seed=settings.seed) if pooled else None
        game_d: dict[str, Any] = {
            "source": "audit",
            "n_examples": int(n),
            "n_classes": int(logits.shape[3]),
            "n_queries": int(logits.shape[2]),
            "n_models": int(n_models),
            "n_references": min(n_refs),
            "n_targets": len(targets),
            "targets": targets,
            "n_members": int(pooled_member.sum()),
            "n_nonmembers": int((~pooled_member).sum()),
            "train_accuracy": float(np.mean([a["train_accuracy"] for a in accs])),
            "test_accuracy": float(np.mean([a["test_accuracy"] for a in accs])),
        }
        game_d["generalisation_gap"] = game_d["train_accuracy"] - game_d["test_accuracy"]
        game_d["access"] = "label" if label_answers is not None else "logits"
        if label_answers is not None:
            game_d["n_queries"] = int(np.asarray(label_answers["label_pred"]).shape[2])
        if any(r.queries for _, r in runs):
            game_d["attack_queries"] = _sum_queries(runs)
        game_d.update(dict(game or {}))
        dp_chk = _dp(game_d, pooled_member, pooled, strata, settings)
        slices: dict[str, pd.DataFrame] = {}
        exposures = None
        best = rank_attacks(metrics)[0] if metrics else None
        if best is not None:
            slices = _slices(pooled_member, pooled[best], scores_df["label"].to_numpy(),
                             None if groups is None else scores_df["group"].to_numpy(), settings, strata[best], best)
            parts = [_exposures(r.scores[best], labels, is_member[t], best, r.exposure.get(best), top_exposed,
                                target=np.full(n, t), features=features) for t, r in runs]
            exposures = (pd.concat(parts, ignore_index=True).sort_values("score", ascending=False, kind="stable")
                         .head(top_exposed).reset_index(drop=True))
    return AuditResult(game=game_d, settings=settings, metrics=metrics, scores=scores_df, decision=decision,
                       spread=spread, skipped=skipped, slices=slices, exposures=exposures, dp_check=dp_chk)
