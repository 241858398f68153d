"""Membership audits of causal language models, through the same game as classifiers.

The game (:mod:`miaudit.audit.design`): a pool of documents, K = ``n_references + 2`` LMs of the user's recipe
trained on balanced random halves in complementary pairs; each of the first ``n_targets`` plays the target
against the others except its partner. Every model is trained, queried and cached by
:func:`miaudit.training.train_models` (so the executors, the cache and resume work as for classifiers); what a
model returns per document is its sequence statistics (:data:`miaudit.training.lm_recipe.STAT_NAMES`).

* The LM attacks (:mod:`miaudit.attacks.lm`) score each target from its own statistics; LiRA and RMIA run on
  the sequence log-likelihood of the target and its reference LMs (:func:`~miaudit.attacks.lm.sequence_logits`).
* ReCaLL's non-member prefixes are ``n_prefix`` documents held out of the pool (never trained on by any model).
* The **blind baseline** (:func:`blind_baseline`): a cross-fitted text classifier that never sees the model.
  When it separates a target's members from its non-members (one-sided rank tests within folds, Bonferroni
  over folds and targets, level ``1 - confidence``), the member and non-member sets differ without the model, and the
  verdict refuses to call the model leaky on that evidence (Das, Zhang & Tramer 2024; Meeus et al. 2024).
* **Canaries** (:func:`canary_exposure`): secrets inserted into every model's training data at chosen
  repetition counts; exposure (Carlini et al. 2019) and TPR at low FPR against non-inserted candidates.

:func:`run_lm_audit_with_target` audits a user's own trained LM given its member and non-member documents
(the references are trained on random halves of their union).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import ConfigError, InputError
from ..attacks.lm import (
    REFERENCE_GAME_ATTACKS,
    LmSignals,
    blind_scores,
    get_lm_attack,
    lm_attack_names,
    sequence_logits,
)
from ..data import SignalBundle
from ..metrics import AttackMetrics, AuditSettings, decide_leakage, evaluate_scores, rank_attacks, summarize_spread
from ..report import AuditResult
from ..training import Execution, train_models
from ..training._runner import ProgressCallback
from ..training.lm_recipe import CanarySet, LmRecipe, stat_index
from .design import balanced_membership, check_n_models, check_references, game_seeds, references_for_target
from .evaluate import ATTACK_THREADS, DEFAULT_TOP_EXPOSED, _exposures, run_attacks

__all__ = ["DEFAULT_N_PREFIX", "LmTarget", "blind_baseline", "canary_exposure", "evaluate_lm", "excerpt", "fold_test",
           "run_lm_audit", "run_lm_audit_with_target", "stratified_rank_test"]

log = logging.getLogger("miaudit")

#: Documents held out of the pool as ReCaLL's non-member prefix when the recall attack runs.
DEFAULT_N_PREFIX = 2
#: Characters of a document shown in the exposure table (with ``show_text``).
EXCERPT_CHARS = 80


@dataclass(frozen=True, eq=False)
class LmTarget:
    """One target of an LM game: its index (or label), membership (N,), statistics (N, F), and its reference
    models' statistics (R, N, F) and membership (R, N)."""

    target: int
    is_member: np.ndarray
    stats: np.ndarray
    ref_stats: np.ndarray
    ref_is_member: np.ndarray


# ------------------------------------------------------------------------------------------ statistics


def stratified_rank_test(is_member: np.ndarray, scores: np.ndarray, strata: np.ndarray) -> tuple[float, float]:
    """One-sided test that members score higher than non-members within strata (van Elteren's stratified
    Wilcoxon-Mann-Whitney test, normal approximation with tie correction): returns ``(z, p_value)``.

    Each stratum contributes ``U - n1 n0 / 2`` with its null variance; strata with no member or no non-member
    are skipped. Under the null (membership exchangeable within each stratum) ``p`` is uniform.
    """
    from scipy.stats import norm, rankdata

    m = np.asarray(is_member, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    num = 0.0
    var = 0.0
    for g in np.unique(strata):
        idx = np.flatnonzero(strata == g)
        n1 = int(m[idx].sum())
        n0 = idx.size - n1
        if n1 == 0 or n0 == 0:
            continue
        r = rankdata(s[idx])
        u = float(r[m[idx]].sum()) - n1 * (n1 + 1) / 2.0
        n = idx.size
        _, counts = np.unique(s[idx], return_counts=True)
        tie = float((counts**3 - counts).sum()) / (n * (n - 1)) if n > 1 else 0.0
        num += u - n1 * n0 / 2.0
        var += n1 * n0 / 12.0 * ((n + 1) - tie)
    if var <= 0:
        return 0.0, 1.0
    z = num / math.sqrt(var)
    return z, float(norm.sf(z))


def fold_test(is_member: np.ndarray, scores: np.ndarray, fold: np.ndarray) -> float:
    """p-value of cross-fitted scores: the one-sided rank test within each fold (exact under the null: the
    fold's labels are exchangeable given the model fitted on the other folds), combined by Bonferroni,
    ``min(1, n_folds * min_f p_f)``. Folds are not pooled into one statistic: under the null their statistics
    are positively correlated (every fold model learns the sample's chance patterns), which makes a pooled
    z-test claim too often (measured: 18 of 100 random splits below p = 0.1)."""
    folds = np.unique(fold)
    ps = [stratified_rank_test(is_member[fold == f], scores[fold == f], np.zeros(int((fold == f).sum())))[1]
          for f in folds]
    return float(min(1.0, len(folds) * min(ps)))


def blind_baseline(texts: Sequence[str] | np.ndarray, targets: Sequence[tuple[int, np.ndarray]], *, settings: AuditSettings,
                   n_folds: int = 5) -> dict[str, Any]:
    """The blind baseline of each target (``(target, is_member)`` pairs): cross-fitted text-only scores
    (:func:`~miaudit.attacks.lm.blind_scores`), their AUC with interval (pooled over targets and folds as strata)
    and the one-sided test of each target (:func:`fold_test`) at level ``(1 - confidence) / n_targets``
    (Bonferroni). ``z`` is the pooled stratified statistic, descriptive only.
    ``significant`` = the member and non-member sets differ without the model."""
    alpha = 1.0 - settings.confidence
    per: list[dict[str, Any]] = []
    rows_m, rows_s, rows_g = [], [], []
    for j, (t, mem) in enumerate(targets):
        scores, fold = blind_scores(texts, mem, seed=settings.seed + int(t), n_folds=n_folds)
        p = fold_test(mem, scores, fold)
        z, _ = stratified_rank_test(mem, scores, fold)
        m1 = evaluate_scores(mem, scores, fprs=settings.fprs, delta=settings.delta, confidence=settings.confidence,
                             member_prior=settings.member_prior, seed=settings.seed, strata=fold)
        per.append({"target": int(t), "auc": m1.auc, "auc_interval": list(m1.auc_ci), "z": z, "p_value": p})
        rows_m.append(np.asarray(mem, dtype=bool))
        rows_s.append(scores)
        rows_g.append(j * n_folds + fold)
    pooled = evaluate_scores(np.concatenate(rows_m), np.concatenate(rows_s), fprs=settings.fprs, delta=settings.delta,
                             confidence=settings.confidence, member_prior=settings.member_prior, seed=settings.seed,
                             strata=np.concatenate(rows_g))
    level = alpha / max(1, len(per))
    p_min = min(float(d["p_value"]) for d in per)
    return {
        "method": "tf-idf word 1-2-grams + char 2-4-grams, logistic regression, cross-fitted "
                  f"({n_folds} stratified folds); never queries the model",
        "auc": pooled.auc,
        "auc_interval": list(pooled.auc_ci),
        "interval_confidence": settings.confidence,
        "tpr_at_fpr": {f"{100 * t.fpr:g}%": t.tpr for t in (pooled.at(f) for f in sorted(settings.fprs))},
        "p_value": p_min,
        "level": level,
        "significant": bool(p_min < level),
        "per_target": per,
        "metrics": pooled,
    }


def excerpt(text: str, n: int = EXCERPT_CHARS) -> str:
    """The first ``n`` characters of ``text`` with control characters escaped (``\\n``, ``\\x1b``...), for tables."""
    head = str(text)[:n]
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in head)
    return out + ("…" if len(str(text)) > n else "")


def canary_exposure(canaries: CanarySet, stats: np.ndarray, *, settings: AuditSettings,
                    target: int = 0) -> dict[str, Any]:
    """Exposure of each canary under one model (Carlini et al. 2019, Sec. 4): ``stats`` (n_canaries * (1 + m), F)
    of the candidate texts. The model ranks each canary's true secret among its ``m`` sampled candidates by
    log-likelihood (higher = likelier); ``rank`` counts candidates at least as likely (ties half), and the
    exposure is estimated by sampling: ``log2(|R|) - log2(rank * |R| / (m + 1)) = log2(m + 1) - log2(rank)``
    (at most ``log2(m + 1)``: more candidates measure higher exposures). TPR at low FPR: inserted canaries
    (members) against every non-inserted candidate (non-members), overall and per repetition count."""
    n, c = canaries.texts.shape
    ll = np.asarray(stats[:, stat_index("logp_mean")], dtype=np.float64) * stats[:, stat_index("n_tokens")]
    ll = ll.reshape(n, c)
    true, alt = ll[:, :1], ll[:, 1:]
    rank = 1.0 + (alt > true).sum(axis=1) + 0.5 * (alt == true).sum(axis=1)
    exposure = np.log2(c) - np.log2(rank)
    rows = [{"target": int(target), "repetitions": int(r), "rank": float(k), "exposure": float(e),
             "secret_text": str(canaries.texts[i, 0])}
            for i, (r, k, e) in enumerate(zip(canaries.repetitions, rank, exposure))]
    is_member = np.zeros((n, c), dtype=bool)
    is_member[:, 0] = True

    def tpr(mask: np.ndarray) -> dict[str, Any]:
        sel = np.concatenate([mask[:, None] & is_member, np.broadcast_to(~is_member, (n, c))], axis=0)
        mem = np.concatenate([is_member, is_member], axis=0)[sel]
        sc = np.concatenate([ll, ll], axis=0)[sel]
        m = evaluate_scores(mem, sc, fprs=settings.fprs, delta=settings.delta, confidence=settings.confidence,
                            member_prior=settings.member_prior, seed=settings.seed)
        return {"auc": m.auc, "n_members": m.n_members, "n_nonmembers": m.n_nonmembers,
                "tpr_at_fpr": {f"{100 * t.fpr:g}%": {"tpr": t.tpr, "interval": [t.target_ci_low, t.target_ci_high]}
                               for t in (m.at(f) for f in sorted(settings.fprs))}}

    by_rep = {}
    for r in sorted(set(int(x) for x in canaries.repetitions)):
        sel = canaries.repetitions == r
        by_rep[str(r)] = {"mean_exposure": float(exposure[sel].mean()), "n_canaries": int(sel.sum()),
                          **tpr(sel)}
    return {"secret_space": CanarySet.SPACE, "candidates": int(c - 1), "max_exposure": float(np.log2(c)),
            "canaries": rows, "by_repetitions": by_rep, "all": tpr(np.ones(n, dtype=bool))}


# ------------------------------------------------------------------------------------------ evaluation


def _resolve_names(names: Sequence[str] | None) -> tuple[list[str], bool]:
    valid = lm_attack_names()
    if not names:
        return valid, False
    for n in names:
        if n not in valid:
            raise InputError(f"attacks: unknown language-model attack {n!r}; expected one of: {', '.join(valid)}")
    return list(dict.fromkeys(names)), True


def _lm_params(params: Mapping[str, Mapping[str, Any]] | None, name: str) -> dict[str, Any]:
    p = dict((params or {}).get(name, {}))
    if name == "recall":
        p.pop("n_prefix", None)
    if name == "ref_ratio":
        p.pop("model", None)
        p.pop("tokenizer", None)
    return p


def evaluate_lm(
    texts: np.ndarray,
    targets: Sequence[LmTarget],
    *,
    attacks: Sequence[str] | None = None,
    attack_params: Mapping[str, Mapping[str, Any]] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    reference_lm_stats: np.ndarray | None = None,
    game: Mapping[str, Any] | None = None,
    show_text: bool = False,
    top_exposed: int = DEFAULT_TOP_EXPOSED,
    canaries: Mapping[str, Any] | None = None,
) -> AuditResult:
    """Run the LM attacks and the reference game on each target, pool them as strata, decide the verdict, and
    add the blind baseline (and canary exposures when given)."""
    from threadpoolctl import threadpool_limits

    settings = AuditSettings.coerce(settings)
    names, named = _resolve_names(attacks)
    texts = np.asarray(texts, dtype=object)
    n = texts.shape[0]
    warnings: list[str] = []
    skipped: dict[str, str] = {}
    frames, runs = [], []
    for tg in targets:
        signals = LmSignals(stats=tg.stats, texts=texts, reference_stats=reference_lm_stats)
        scores: dict[str, np.ndarray] = {}
        for name in names:
            if name in REFERENCE_GAME_ATTACKS:
                continue
            attack = get_lm_attack(name, _lm_params(attack_params, name))
            why = attack.missing(signals)
            if why is not None:
                if named:
                    raise InputError(f"attack {name!r} cannot run on this audit: {why}")
                skipped[name] = why
                continue
            with threadpool_limits(limits=ATTACK_THREADS):
                s = np.asarray(attack.fit(signals).score(signals), dtype=np.float64)
            scores[name] = s
        game_names = [k for k in names if k in REFERENCE_GAME_ATTACKS]
        if game_names:
            bundle = SignalBundle.from_arrays(
                labels=np.ones(n, dtype=np.int64), target_logits=sequence_logits(tg.stats[:, None, :]),
                is_member=tg.is_member, ref_logits=sequence_logits(tg.ref_stats[:, :, None, :]),
                ref_is_member=tg.ref_is_member)
            check = check_references(tg.is_member, tg.ref_is_member)
            warnings.extend(w for w in check.warnings if w not in warnings)
            run = run_attacks(bundle, game_names, seed=settings.seed + int(tg.target),
                              params={k: dict(v) for k, v in (attack_params or {}).items() if k in game_names})
            skipped.update(run.skipped)
            scores.update(run.scores)
        for name, s in scores.items():
            if s.shape != (n,) or not np.all(np.isfinite(s)):
                raise InputError(f"attack {name!r} gave non-finite scores; the model's statistics hold NaN or inf "
                                 "(a document with no tokens?)")
        df = pd.DataFrame({"target": int(tg.target), "index": np.arange(n), "is_member": tg.is_member.astype(bool)})
        for name in names:
            if name in scores:
                df[name] = scores[name]
        frames.append(df)
        runs.append((tg, scores))
    kept = [k for k in names if all(k in s for _, s in runs)]
    scores_df = pd.concat(frames, ignore_index=True)
    pooled_member = scores_df["is_member"].to_numpy(bool)
    target_col = scores_df["target"].to_numpy()
    pooled = {k: scores_df[k].to_numpy(np.float64) for k in kept}
    metrics: dict[str, AttackMetrics] = {
        k: evaluate_scores(pooled_member, s, fprs=settings.fprs, delta=settings.delta, confidence=settings.confidence,
                           member_prior=settings.member_prior, seed=settings.seed, strata=target_col)
        for k, s in pooled.items()}
    spread = {}
    if len(runs) > 1:
        for k in kept:
            per = [evaluate_scores(tg.is_member, s[k], fprs=settings.fprs, delta=settings.delta,
                                   confidence=settings.confidence, member_prior=settings.member_prior,
                                   seed=settings.seed + int(tg.target)) for tg, s in runs]
            spread[k] = summarize_spread(per)
    decision = decide_leakage(pooled_member, pooled, groups=target_col, fprs=settings.fprs,
                              confidence=settings.confidence, seed=settings.seed) if pooled else None
    blind = blind_baseline(texts, [(tg.target, tg.is_member) for tg in targets], settings=settings)
    blind_metrics = blind.pop("metrics")
    blind["attack_metrics"] = blind_metrics.to_dict()
    exposures = None
    best = rank_attacks(metrics)[0] if metrics else None
    if best is not None:
        feats = pd.DataFrame({"text": [excerpt(t) for t in texts]}) if show_text else None
        parts = [_exposures(s[best], None, tg.is_member, best, None, top_exposed, target=np.full(n, tg.target),
                            features=feats) for tg, s in runs]
        exposures = (pd.concat(parts, ignore_index=True).sort_values("score", ascending=False, kind="stable")
                     .head(top_exposed).reset_index(drop=True))
    lengths = np.array([len(str(t)) for t in texts])
    game_d: dict[str, Any] = {
        "source": "audit", "n_examples": int(n), "n_targets": len(runs), "targets": [int(tg.target) for tg, _ in runs],
        "n_references": min(int(tg.ref_stats.shape[0]) for tg, _ in runs),
        "n_members": int(pooled_member.sum()), "n_nonmembers": int((~pooled_member).sum()),
        "mean_document_chars": float(lengths.mean()),
        "train_loss": float(np.mean([-tg.stats[tg.is_member, 0].mean() for tg, _ in runs])),
        "test_loss": float(np.mean([-tg.stats[~tg.is_member, 0].mean() for tg, _ in runs])),
    }
    game_d["loss_gap"] = game_d["test_loss"] - game_d["train_loss"]
    game_d.update(dict(game or {}))
    return AuditResult(game=game_d, settings=settings, metrics=metrics, scores=scores_df, decision=decision,
                       spread=spread, skipped=skipped, exposures=exposures, warnings=warnings,
                       baselines={"blind": blind}, canaries=dict(canaries) if canaries else None)


# ------------------------------------------------------------------------------------------ run flows


def _reference_lm_stats(params: Mapping[str, Any], texts: np.ndarray, recipe: LmRecipe,
                        base: Path | None = None) -> np.ndarray | None:
    """Statistics of the user's reference LM (``[attacks.params.ref_ratio] model``, optional ``tokenizer``; relative
    paths are relative to the config file's folder ``base``)."""
    folder = params.get("model")
    if folder is None:
        return None
    if not isinstance(folder, str):
        raise ConfigError(f"[attacks.params.ref_ratio] model: expected a local checkpoint folder, got {folder!r}")
    tokenizer = str(params.get("tokenizer", recipe.tokenizer))
    if base is not None:
        folder = str(base / Path(folder).expanduser()) if not Path(folder).expanduser().is_absolute() else folder
        if tokenizer != "bytes" and not Path(tokenizer).expanduser().is_absolute():
            tokenizer = str(base / tokenizer)
    if not Path(folder).is_dir():
        raise ConfigError(f"[attacks.params.ref_ratio] model: {folder!r} is not a folder; save the reference model "
                          "there with model.save_pretrained")
    ref = LmRecipe(init=folder, tokenizer=tokenizer, device=recipe.device,
                   dtype=recipe.dtype, eval_batch_size=recipe.eval_batch_size, stride=recipe.stride)
    model = ref.build(seed=0)
    return np.asarray(ref.predict_logits(model, texts)[:, 0, :], dtype=np.float64)


def _canary_rows(recipe: LmRecipe) -> tuple[CanarySet | None, np.ndarray]:
    cs = recipe.canary_set()
    if cs is None:
        return None, np.empty(0, dtype=object)
    return cs, np.asarray(cs.all_texts(), dtype=object)


def _build_lm_recipe(cfg: Any) -> LmRecipe:
    """The config's ``[model]`` as an :class:`LmRecipe`; its errors as config errors."""
    try:
        recipe = cfg.model.build(n_classes=1)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(recipe, LmRecipe):  # pragma: no cover - kind routing
        raise ConfigError("[model] kind: expected \"causal_lm\"")
    return recipe


def run_lm_audit(cfg: Any, *, jobs: int | None = None, progress: ProgressCallback | None = None,
                 executor: str | Execution = "process", mp_context: str | None = None) -> AuditResult:
    """The config game for ``[model] kind = "causal_lm"`` (called by :func:`miaudit.audit.run_audit`)."""
    from ..data import load_dataset

    try:
        ds = load_dataset(cfg.data.spec())
    except ConfigError:
        raise
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    if cfg.target is not None:
        return _run_config_lm_target(cfg, jobs=jobs, progress=progress, executor=executor)
    texts_all = np.asarray(ds.X, dtype=object)
    if texts_all.ndim != 1 or not all(isinstance(t, str) for t in texts_all):
        raise ConfigError(f"[data] kind: {cfg.data.kind!r} gives no documents; use kind = \"text\" or \"pydoc_topics\" "
                          "for a language model")
    params = {k: dict(v) for k, v in cfg.attacks.params.items()}
    names, _ = _resolve_names(list(cfg.attacks.names) if cfg.attacks.names else None)
    n_prefix = int(params.get("recall", {}).get("n_prefix", DEFAULT_N_PREFIX)) if "recall" in names else 0
    if n_prefix < 0:
        raise ConfigError(f"[attacks.params.recall] n_prefix: expected an integer >= 0, got {n_prefix}")
    game = cfg.game
    K = game.n_models()
    pool_ss, member_ss, seeds = game_seeds(game.seed, K)
    perm = np.random.default_rng(pool_ss).permutation(len(texts_all))
    prefix_idx, rest = perm[:n_prefix], perm[n_prefix:]
    n_pool = len(rest) if game.pool_size is None else int(game.pool_size)
    if n_pool > len(rest):
        raise ConfigError(f"[game] pool_size: {n_pool} is larger than the {len(rest)} documents available "
                          f"({len(texts_all)} in {ds.name!r}, {n_prefix} held out as ReCaLL prefixes)")
    pool_index = np.sort(rest[:n_pool])
    recipe = _build_lm_recipe(cfg)
    recipe = recipe.with_scoring(prefix=[str(t) for t in texts_all[np.sort(prefix_idx)]],
                                 lowercase="lowercase" in names)
    texts = texts_all[pool_index]
    is_member = balanced_membership(len(texts), K, seed=member_ss)
    cs, cand = _canary_rows(recipe)
    X = np.concatenate([texts, cand])
    mem_x = np.concatenate([is_member, np.zeros((K, cand.shape[0]), dtype=bool)], axis=1)
    trained = train_models(recipe, X, np.zeros(X.shape[0], dtype=np.int64), mem_x, seeds=seeds,
                           run_dir=cfg.output.run_dir, jobs=jobs, progress=progress, executor=executor,
                           mp_context=mp_context)
    log.info("language models: %d trained, %d from the cache, %.1f s", trained.n_trained, trained.n_cached,
             trained.wall_seconds)
    stats = np.asarray(trained.logits[:, :, 0, :], dtype=np.float64)
    pool_stats, cand_stats = stats[:, : len(texts)], stats[:, len(texts):]
    targets = []
    for t in range(game.effective_n_targets):
        refs = references_for_target(is_member, t)
        targets.append(LmTarget(target=t, is_member=is_member[t], stats=pool_stats[t], ref_stats=pool_stats[refs],
                                ref_is_member=is_member[refs]))
    base = Path(cfg.source).expanduser().absolute().parent if cfg.source is not None else None
    ref_lm = _reference_lm_stats(params.get("ref_ratio", {}), texts, recipe, base) if "ref_ratio" in names else None
    canary_d = None
    if cs is not None:
        per = [canary_exposure(cs, cand_stats[t], settings=cfg.settings(), target=t) for t in range(len(targets))]
        canary_d = {**per[0], "per_target": per[1:]} if per else None
    game_d = {"dataset": ds.name, "model": cfg.model.describe(), "seed": game.seed, "pool_size": int(len(texts)),
              "n_models": K, "n_prefix_documents": n_prefix, "wall_seconds_training": trained.wall_seconds,
              "model_seconds": trained.model_seconds,
              "fit_seconds_per_model": float(np.mean(trained.fit_seconds)),
              "predict_seconds_per_model": float(np.mean(trained.predict_seconds))}
    return evaluate_lm(texts, targets, attacks=list(cfg.attacks.names) if cfg.attacks.names else None,
                       attack_params=params, settings=cfg.settings(), reference_lm_stats=ref_lm, game=game_d,
                       show_text=bool(getattr(cfg.output, "show_text", False)), canaries=canary_d)


def _run_config_lm_target(cfg: Any, *, jobs: int | None, progress: ProgressCallback | None,
                          executor: str | Execution) -> AuditResult:
    """``[target] model`` (a checkpoint folder) of a language model, with the members flagged in ``[data]
    member_column``: everything is read and loaded before any reference is trained."""
    from ..data._text import read_member_flags, read_texts

    opts = cfg.data.options
    path = Path(opts["path"])
    try:
        texts = read_texts(path, text_field=opts.get("text_field", "text"), text_column=opts.get("text_column", "text"))
        flags = np.asarray(read_member_flags(path, opts.get("member_column", "member")), dtype=bool)
    except ConfigError:
        raise
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    if len(flags) != len(texts):  # pragma: no cover - both readers skip the same blank lines
        raise ConfigError(f"[data] member_column: {len(flags)} flags for {len(texts)} documents in {path.name!r}")
    recipe = _build_lm_recipe(cfg)
    folder = str(cfg.target.model)
    loader = LmRecipe(init=folder, tokenizer=recipe.tokenizer, device=recipe.device, dtype=recipe.dtype,
                      eval_batch_size=recipe.eval_batch_size, stride=recipe.stride)
    try:
        target_model = loader.build(seed=0)
    except InputError as exc:
        raise ConfigError(f"[target] model: {exc}".replace("[model] init: ", "").replace("[model] tokenizer: ", "")
                          ) from None
    arr = np.asarray(texts, dtype=object)
    names = list(cfg.attacks.names) if cfg.attacks.names else None
    params = {k: dict(v) for k, v in cfg.attacks.params.items()}
    return run_lm_audit_with_target(
        recipe, target_model, list(arr[flags]), list(arr[~flags]), n_references=cfg.game.n_references,
        seed=cfg.game.seed, run_dir=cfg.output.run_dir, jobs=jobs, attacks=names, attack_params=params,
        settings=cfg.settings(), progress=progress, executor=executor,
        show_text=bool(getattr(cfg.output, "show_text", False)),
        game={"dataset": path.stem, "target_path": folder, "member_column": opts.get("member_column", "member")})


def run_lm_audit_with_target(
    recipe: LmRecipe,
    target_model: Any,
    member_texts: Sequence[str],
    nonmember_texts: Sequence[str],
    *,
    n_references: int,
    seed: int = 0,
    run_dir: Any,
    jobs: int | None = None,
    attacks: Sequence[str] | None = None,
    attack_params: Mapping[str, Mapping[str, Any]] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    executor: str | Execution = "process",
    show_text: bool = False,
    game: Mapping[str, Any] | None = None,
) -> AuditResult:
    """Audit a user's trained LM ``target_model`` (a torch causal LM, or a
    :class:`~miaudit.models.lm.CallableLM`) on its members and non-members: ``n_references`` (even) reference
    LMs of ``recipe`` are trained on balanced random halves of their union, independently of the target's
    membership. The blind baseline tells whether the two sets differ without the model."""
    from ..models.lm import CallableLM, token_scores
    from ..training.lm_recipe import lm_statistics

    for name, docs in (("member_texts", member_texts), ("nonmember_texts", nonmember_texts)):
        if len(docs) < 2:
            raise InputError(f"{name}: expected at least 2 documents, got {len(docs)}")
    K = check_n_models(n_references, "n_references")
    texts = np.asarray([*member_texts, *nonmember_texts], dtype=object)
    is_member = np.zeros(len(texts), dtype=bool)
    is_member[: len(member_texts)] = True
    _, member_ss, seeds = game_seeds(seed, K)
    ref_is_member = balanced_membership(len(texts), K, seed=member_ss)
    trained = train_models(recipe, texts, np.zeros(len(texts), dtype=np.int64), ref_is_member, seeds=seeds,
                           run_dir=run_dir, jobs=jobs, progress=progress, executor=executor)
    if isinstance(target_model, CallableLM):
        sc = token_scores(target_model, None, list(texts))
        tstats = lm_statistics(sc)
    else:
        tstats = recipe.predict_logits(target_model, texts)[:, 0, :]
    tg = LmTarget(target=0, is_member=is_member, stats=np.asarray(tstats, dtype=np.float64),
                  ref_stats=np.asarray(trained.logits[:, :, 0, :], dtype=np.float64), ref_is_member=ref_is_member)
    game_d = {"target": "user", "model": recipe.spec(), "seed": int(seed), "n_models": K,
              "wall_seconds_training": trained.wall_seconds, **dict(game or {})}
    return evaluate_lm(texts, [tg], attacks=attacks, attack_params=attack_params, settings=settings, game=game_d,
                       show_text=show_text)
