"""The plain-language verdict at the top of the report and in results.json ``"verdict"``.

The decision itself is statistics (:func:`miaudit.metrics.decide_leakage`: one pre-declared test with a
false-alarm rate of at most ``1 - confidence`` on null games); this module only words it, following the
field's reporting practice (Carlini et al. 2022: report TPR at low FPR, not only AUC; Jagielski et al.
2020: an empirical epsilon is a *lower* bound) and stating how many non-members stand behind every
low-FPR figure. It reads the typed results (:class:`~miaudit.metrics.AttackMetrics`), never their dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..metrics import AttackMetrics, AuditSettings, DpCheck, LeakageDecision, LeakageTest, TprAtFpr, n_needed_for_fpr

__all__ = ["Verdict", "describe_tpr", "fpr_label", "make_verdict", "pct"]

LEVELS = ("high", "measurable", "none_detected", "no_ground_truth", "sets_differ")


class _Result(Protocol):
    """What the verdict reads of an :class:`~miaudit.report.AuditResult`."""

    game: dict[str, Any]
    settings: AuditSettings
    metrics: dict[str, AttackMetrics]
    decision: LeakageDecision | None
    spread: dict[str, dict[str, Any]]
    warnings: list[str]
    dp_check: DpCheck | None

    @property
    def ranking(self) -> list[str]: ...


def pct(x: float | None) -> str:
    """0.0243 -> '2.43%'; 0.00012 -> '0.012%'; None -> 'n/a' (3 significant digits)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    v = 100.0 * x
    return "0%" if v == 0 else f"{v:.3g}%"


def fpr_label(f: float) -> str:
    """0.001 -> '0.1%'."""
    return f"{100 * f:g}%"


def describe_tpr(t: TprAtFpr) -> str:
    """'2.4% [1.1%, 4.5%] (2,000 non-members)' with the population interval, or 'n/a (needs >= 1,000 ...)'."""
    if t.tpr is None:
        if t.n_strata > 1:
            return (f"n/a (needs ≥ {n_needed_for_fpr(t.fpr):,} non-members per target, has "
                    f"{t.n_nonmembers // t.n_strata:,})")
        return f"n/a (needs ≥ {n_needed_for_fpr(t.fpr):,} non-members, has {t.n_nonmembers:,})"
    ci = f" [{pct(t.target_ci_low)}, {pct(t.target_ci_high)}]" if t.target_ci_low is not None else ""
    return f"{pct(t.tpr)}{ci} ({t.n_nonmembers:,} non-members)"


def _figure(test: LeakageTest) -> str:
    return "AUC" if test.fpr is None else f"TPR at {fpr_label(test.fpr)} FPR"


def _value(test: LeakageTest, x: float) -> str:
    return f"{x:.3f}" if test.fpr is None else pct(x)


@dataclass(frozen=True)
class Verdict:
    """The report's headline: a level, a title, the one sentence results.json carries, and short paragraphs
    (plain text; the HTML template escapes them)."""

    level: str
    title: str
    sentence: str
    strongest: str | None
    paragraphs: list[str] = field(default_factory=list)
    decision: LeakageDecision | None = None

    @property
    def leakage_detected(self) -> bool:
        return self.level in ("high", "measurable")

    def to_dict(self) -> dict[str, Any]:
        """results.json ``"verdict"``: the decision's test and figures, the level and the sentence."""
        d = self.decision
        test = None if d is None or d.test is None else d.test
        return {
            "leakage_detected": self.leakage_detected,
            "level": self.level,
            "title": self.title,
            "sentence": self.sentence,
            "attack": None if test is None else test.attack,
            "figure": None if test is None else test.label,
            "estimate": None if test is None else test.estimate,
            "interval": None if test is None else [test.lower_bound, 1.0],
            "interval_confidence": None if test is None else test.confidence,
            "chance": None if test is None else test.chance,
            "n_members": None if test is None else test.n_members,
            "n_nonmembers": None if test is None else test.n_nonmembers,
            "target": None if test is None else test.group,
            "rule": None if d is None else d.to_dict(),
        }


def _where(test: LeakageTest, decision: LeakageDecision) -> str:
    half = f"{test.n_members:,} members and {test.n_nonmembers:,} non-members held out for certification"
    if decision.n_targets > 1:
        return f"target model {test.group} ({half}; Bonferroni over {decision.n_targets} targets)"
    return half


def make_verdict(result: _Result) -> Verdict:
    """Word the decision and the figures of ``result`` for a release decision, and say how far they can be trusted."""
    metrics, settings, decision = result.metrics, result.settings, result.decision
    conf = settings.confidence
    ranking = result.ranking
    if not metrics or decision is None:
        return Verdict(
            level="no_ground_truth",
            title="No leakage figures: membership ground truth was not available",
            sentence="No leakage figures: without knowing which examples were members no attack can be evaluated.",
            strongest=ranking[0] if ranking else None,
            paragraphs=[
                "The per-example scores were computed, but without knowing which examples were members no attack "
                "can be evaluated. Supply the membership labels (is_member) to get figures."
            ],
        )
    name = ranking[0]
    m = metrics[name]
    test = decision.test
    if decision.high:
        level = "high"
        title = "High membership risk: an attacker can pick out training records far above chance"
    elif decision.leakage_detected:
        level = "measurable"
        title = "Measurable membership leakage: some training records are identifiable above chance"
    else:
        level = "none_detected"
        title = "No membership leakage detected at this sample size (this is not a proof of privacy)"

    low = [m.at(f) for f in sorted(m.fprs)]
    shown = [t for t in low if t.tpr is not None and t.fpr <= 0.01] or [t for t in low if t.tpr is not None][:1]
    if test is not None and decision.leakage_detected:
        sentence = (
            f"Leakage detected: {test.attack}'s {_figure(test)} is at least {_value(test, test.lower_bound)} "
            f"({test.confidence:.4g} lower confidence bound; chance is {_value(test, test.chance)}) on "
            f"{_where(test, decision)}."
        )
    else:
        upper = ""
        if shown:
            t = shown[0]
            upper = (f" At {fpr_label(t.fpr)} FPR the strongest attack ({name}) is shown to find at most "
                     f"{pct(t.target_ci_high)} of members (upper end of its {conf:.0%} population interval, "
                     f"{t.n_nonmembers:,} non-members).")
        elif m.auc_ci[1] is not None:
            upper = f" The strongest attack's ({name}) AUC is at most {m.auc_ci[1]:.3f} ({conf:.0%} interval)."
        why = "" if test is not None else f" ({decision.reason})"
        sentence = (f"No membership leakage detected at level {decision.alpha:.3g}{why}; this is not a proof of "
                    f"privacy.{upper}")

    paras: list[str] = [sentence]
    lead = f"The strongest attack at low false-positive rate is {name}."
    parts = [f"at {fpr_label(t.fpr)} FPR it finds {describe_tpr(t)} of members" for t in shown]
    if parts:
        joined = "; ".join(parts)
        lead += " " + joined[0].upper() + joined[1:] + "."
    lead += f" Its AUC is {m.auc:.3f} [{m.auc_ci[0]:.3f}, {m.auc_ci[1]:.3f}]."
    if m.n_strata > 1:
        lead += (f" Figures are averages over {m.n_strata} strata (target models, and folds of cross-fitted "
                 "attacks), each measured on its own; intervals allow for any dependence between them.")
    paras.append(lead)

    paras.append(
        f"How the verdict is decided: one test, declared before looking at the outcome. Each target's examples are "
        f"split at random; on one half the attack and figure with the strongest evidence are chosen "
        f"({decision.n_candidates} candidates: every attack's AUC and TPR at each resolvable FPR), and only that one "
        f"is certified on the other half, with a one-sided {conf:.0%} bound"
        f"{' split over the ' + str(decision.n_targets) + ' targets' if decision.n_targets > 1 else ''}. On games "
        f"where nothing can leak it claims leakage at most {decision.alpha:.0%} of the time, however many attacks "
        "are run. Chance is AUC 0.5, or a TPR equal to the FPR."
    )
    if level == "high":
        paras.append(
            "Release decision: treat this model as revealing who was in its training data. If membership is "
            "sensitive, do not release it as is: train on more data, regularise or stop earlier, or train with "
            "DP-SGD, then audit again. The most exposed records below show who is at risk."
        )
    elif level == "measurable":
        paras.append(
            "Release decision: the leakage is real but moderate. Look at the most exposed records and the "
            "per-class figures; if those people's membership is sensitive, mitigate (more data, regularisation, "
            "DP-SGD) and audit again."
        )
    else:
        paras.append(
            "Release decision: this audit found no evidence of leakage, which is not evidence of its absence: "
            "stronger attacks, more reference models or more examples (for lower FPRs) can still find some."
        )

    missing = [t for t in low if t.tpr is None]
    if missing:
        paras.append(
            "Not reported for lack of non-members: "
            + "; ".join(f"TPR at {fpr_label(t.fpr)} FPR {describe_tpr(t)}" for t in missing)
            + ". These figures are null, not zero."
        )
    if m.ppv_lower_at_fpr and shown:
        t = shown[0]
        lower = dict(zip(m.fprs, m.ppv_lower_at_fpr)).get(t.fpr)
        point = dict(zip(m.fprs, m.ppv_at_fpr)).get(t.fpr)
        if lower is not None and point is not None:
            paras.append(
                f"Precision: if {m.member_prior:.0%} of the records an attacker examines are members, a record "
                f"{name} flags at {fpr_label(t.fpr)} FPR is a member with probability {pct(point)} (point estimate); "
                f"at least {pct(lower)} with {conf:.0%} confidence."
            )

    eps_attack = test.attack if test is not None else name
    em = metrics.get(eps_attack, m)
    eb = em.epsilon
    d = f", δ = {settings.delta:g}"
    if eb.value > 0:
        where = ""
        if eb.n_false_positives is not None and eb.n_false_negatives is not None:
            flag = "scores at or above" if eb.direction == "higher" else "scores below"
            where = (
                f" It comes from one threshold chosen on the selection half: flagging {flag} "
                f"{'' if eb.threshold is None else f'{eb.threshold:.4g}'} as members, on the certification half "
                f"{eb.n_false_positives:,} of {eb.n_nonmembers_certify:,} non-members and "
                f"{eb.n_members_certify - eb.n_false_negatives:,} of {eb.n_members_certify:,} members are flagged."
            )
            flagged_non = eb.n_false_positives / max(1, eb.n_nonmembers_certify)
            missed = eb.n_false_negatives / max(1, eb.n_members_certify)
            if flagged_non > 0.5 or missed > 0.5:
                where += (
                    " The bound rests on the few records on the far side of that threshold: one side is almost pure "
                    "(e.g. misclassified examples are almost never members of a model with 100% training accuracy). "
                    "That is real, valid evidence about those records, even from an attack weak on average."
                )
        paras.append(
            f"Epsilon lower bound ({eps_attack}, the verdict's attack): ε ≥ {eb.value:.3g} ({conf:.0%} confidence{d}). "
            f"Any differential-privacy guarantee for this training must have ε at least this large (for "
            f"replace-one neighbours, as in this game).{where}"
        )
    else:
        paras.append(
            f"Epsilon lower bound ({eps_attack}, the verdict's attack): 0 ({conf:.0%} confidence{d}): this audit "
            "does not rule out any differential-privacy guarantee. It is a lower bound, never an estimate of the true ε."
        )
    top = max(metrics.items(), key=lambda kv: kv[1].epsilon.value)
    if top[0] != eps_attack and top[1].epsilon.value > eb.value:
        paras.append(
            f"The largest bound of any attack is {top[1].epsilon.value:.3g} ({top[0]}); each holds at {conf:.0%} on "
            f"its own, and with {len(metrics)} attacks tried the largest is too high more often than that. The "
            "verdict quotes its own attack's bound, whose choice was made on the selection half."
        )

    dpc = result.dp_check
    if dpc is not None:
        relation = ("add/remove-one neighbours, as the accountant states it; this game replaces one example, so the "
                    f"claim implies (ε = {dpc.game_epsilon:.3g}, δ = {dpc.game_delta:.2g}) here"
                    if dpc.neighbouring == "add_remove" else "replace-one neighbours, as this game")
        got = "no bound" if dpc.bound is None else f"{dpc.bound.value:.3g} ({dpc.attack})"
        if dpc.contradicted:
            paras.append(
                f"Warning: the claimed guarantee (ε = {dpc.claimed_epsilon:.3g}, δ = {dpc.claimed_delta:g}; "
                f"{relation}) is contradicted: the largest empirical bound at δ = {dpc.game_delta:.2g} is {got}, "
                f"at {dpc.confidence:.4g} confidence per attack (Bonferroni over {dpc.n_attacks}). That is "
                "impossible for a correct DP training and audit: one of them has a bug."
            )
        else:
            paras.append(
                f"The model was trained with DP-SGD at (ε = {dpc.claimed_epsilon:.3g}, δ = {dpc.claimed_delta:g}; "
                f"{relation}). The largest empirical bound at δ = {dpc.game_delta:.2g} is {got}: consistent with "
                "the guarantee."
            )
    spread = result.spread.get(name) if isinstance(result.spread, Mapping) else None
    if spread and (spread.get("n_targets") or 0) > 1:
        paras.append(
            f"Figures are pooled over {spread.get('n_targets')} target models trained with the same recipe; the "
            "spread columns give the mean and standard deviation across targets."
        )
    for w in result.warnings:
        paras.append(f"Warning about the game: {w}.")
    blind = (getattr(result, "baselines", None) or {}).get("blind")
    if isinstance(blind, Mapping):
        level, title, sentence, paras = _blind_verdict(blind, level, title, sentence, paras, conf)
    return Verdict(level=level, title=title, sentence=sentence, strongest=name, paragraphs=paras, decision=decision)


def _blind_verdict(blind: Mapping[str, Any], level: str, title: str, sentence: str, paras: list[str],
                   conf: float) -> tuple[str, str, str, list[str]]:
    """Language-model audits: word the blind baseline (a text-only classifier that never queries the model);
    when it is significant, the sets differ without the model and the verdict says so instead of 'leaky'
    (Das, Zhang & Tramer 2024; Meeus et al. 2024)."""
    lo, hi = (blind.get("auc_interval") or [None, None])[:2]
    auc = blind.get("auc")
    fig = (f"AUC {auc:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")
           if isinstance(auc, (int, float)) else "AUC n/a")
    p = blind.get("p_value")
    test = f"one-sided p = {p:.2g} at level {blind.get('level', 1 - conf):.3g}" if isinstance(p, (int, float)) else ""
    if not blind.get("significant"):
        paras.insert(1, f"Blind baseline: a classifier on the texts alone, which never queries the model, reaches "
                        f"{fig} ({test}): the member and non-member documents cannot be told apart without the "
                        "model, so the attacks' figures are not explained by a difference between the two sets.")
        return level, title, sentence, paras
    new = (f"The member and non-member sets differ without the model: a classifier on the texts alone reaches {fig} "
           f"({test}). The attacks' figures can measure that difference rather than memorisation, so this audit "
           "does not call the model leaky on that evidence.")
    rest = [x for x in paras if x != sentence]
    rest.insert(0, "Audit on a random split of one pool of documents (as `miaudit audit` draws it), or on inserted "
                   "canaries; members and non-members that differ in time, topic or style make every "
                   "membership figure unreliable (Das, Zhang & Tramer 2024; Meeus et al. 2024). Without the blind "
                   f"baseline the verdict would have been: {sentence}")
    return ("sets_differ", "Member and non-member sets differ without the model: no leakage verdict on this evidence",
            new, [new, *rest])
