"""Reading the per-attack metric dicts, and the plain-language verdict at the top of the report.

The verdict follows the field's reporting practice (Carlini et al. 2022: report TPR at low FPR, not only
AUC; Jagielski et al. 2020: an empirical epsilon is a *lower* bound) and states how many non-members stand
behind every low-FPR figure (a TPR at FPR f needs at least 1/f non-members to exist at all).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TprFigure",
    "Verdict",
    "describe_tpr",
    "dp_violations",
    "fpr_keys",
    "fpr_label",
    "make_verdict",
    "needed_nonmembers",
    "pct",
    "strongest_attack",
    "tpr_figure",
]


def _num(x: Any) -> float | None:
    """A finite float, or None for null / NaN / inf / non-numbers."""
    if isinstance(x, bool) or x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _lookup(d: Any, fpr: float) -> Any:
    """``d[key]`` where ``float(key) == fpr`` (keys are strings like "0.001" in results.json)."""
    if not isinstance(d, Mapping):
        return None
    for k, v in d.items():
        try:
            if math.isclose(float(k), fpr, rel_tol=1e-9, abs_tol=0.0):
                return v
        except (TypeError, ValueError):
            continue
    return None


def fpr_keys(metrics: Mapping[str, Mapping[str, Any]], settings: Mapping[str, Any] | None = None) -> list[float]:
    """The FPR levels of the run, ascending: ``settings["fprs"]`` or the union of the metric dicts' keys."""
    fprs: set[float] = set()
    for f in (settings or {}).get("fprs") or ():
        if _num(f) is not None:
            fprs.add(float(f))
    if not fprs:
        for m in metrics.values():
            for k in (m.get("tpr_at_fpr") or {}) if isinstance(m, Mapping) else ():
                if _num(k) is not None:
                    fprs.add(float(k))
    return sorted(fprs)


def needed_nonmembers(fpr: float) -> int:
    """Fewest non-members for which a TPR at ``fpr`` exists at all (fpr * n >= 1)."""
    return int(math.ceil(1.0 / fpr - 1e-9))


@dataclass(frozen=True)
class TprFigure:
    """One TPR@FPR figure of one attack, with its Clopper-Pearson interval and sample size."""

    fpr: float
    tpr: float | None
    ci_low: float | None
    ci_high: float | None
    n_nonmembers: int | None
    reason: str | None = None
    achieved_fpr: float | None = None
    confidence: float = 0.95
    target_ci_low: float | None = None
    target_ci_high: float | None = None

    @property
    def available(self) -> bool:
        return self.tpr is not None

    @property
    def chance_high(self) -> float:
        """Upper confidence bound of the chosen threshold's true FPR, i.e. of what chance alone achieves there.

        The threshold sits at an order statistic of k non-member scores (k = achieved FPR x n); its true FPR
        is uncertain by Clopper-Pearson (for k = 1 of 1,000 it can be up to 0.56%). Comparing the TPR's lower
        bound with this, rather than with the nominal FPR, keeps noise from passing for leakage when
        n_nonmembers x FPR is small.
        """
        if not self.n_nonmembers:
            return self.fpr
        fpr = self.achieved_fpr if self.achieved_fpr is not None else self.fpr
        k = min(int(math.floor(fpr * self.n_nonmembers + 1e-9)), self.n_nonmembers)
        if k >= self.n_nonmembers:
            return 1.0
        from scipy.stats import beta

        return max(float(beta.ppf(1 - (1 - self.confidence) / 2, k + 1, self.n_nonmembers - k)), self.fpr)

    @property
    def above_chance(self) -> bool:
        """The attack beats chance (TPR = FPR) at this FPR, with the stated confidence.

        With the metrics layer's population interval (``target_ci_low``, which covers the TPR at FPR <= f
        including the threshold's estimation) the test is ``target_ci_low > fpr``; otherwise the
        operating point's interval must lie above the upper bound of its achieved FPR (:attr:`chance_high`).
        """
        if self.target_ci_low is not None:
            return self.target_ci_low > self.fpr
        return self.ci_low is not None and self.ci_low > self.chance_high


def tpr_figure(m: Mapping[str, Any], fpr: float, *, confidence: float = 0.95) -> TprFigure:
    """Read TPR@``fpr`` of one attack's metrics dict (results.json schema), tolerating missing parts."""
    tpr = _num(_lookup(m.get("tpr_at_fpr"), fpr))
    ci = _lookup(m.get("tpr_at_fpr_ci"), fpr)
    detail = _lookup(m.get("tpr_at_fpr_detail"), fpr)
    detail = detail if isinstance(detail, Mapping) else {}
    # ci_low/ci_high: Clopper-Pearson of the chosen operating point (detail); the population interval
    # (results.json's headline tpr_at_fpr_ci, threshold estimation included) is target_ci_low/high.
    lo, hi = _num(detail.get("ci_low")), _num(detail.get("ci_high"))
    if (lo is None or hi is None) and isinstance(ci, Sequence) and not isinstance(ci, str) and len(ci) == 2:
        lo, hi = _num(ci[0]), _num(ci[1])
    if tpr is None:
        lo = hi = None
    n_non = _num(detail.get("n_nonmembers"))
    if n_non is None:
        n_non = _num(m.get("n_nonmembers"))
    reason = detail.get("reason")
    return TprFigure(
        fpr=fpr, tpr=tpr, ci_low=lo, ci_high=hi, n_nonmembers=None if n_non is None else int(n_non),
        reason=str(reason) if reason else None, achieved_fpr=_num(detail.get("achieved_fpr")),
        confidence=confidence, target_ci_low=_num(detail.get("target_ci_low")) if tpr is not None else None,
        target_ci_high=_num(detail.get("target_ci_high")) if tpr is not None else None,
    )  # fmt: skip


def strongest_attack(metrics: Mapping[str, Mapping[str, Any]], fprs: Sequence[float]) -> str | None:
    """Name of the strongest attack at low FPR.

    Ranked lexicographically by TPR at the lowest FPR level, then the next level, ..., then AUC; a null
    figure ranks below every number. Ties keep the first attack in name order (deterministic).
    """
    best, best_key = None, None
    for name in sorted(metrics):
        m = metrics[name]
        key = tuple(
            (tpr_figure(m, f).tpr if tpr_figure(m, f).tpr is not None else -1.0) for f in sorted(fprs)
        ) + ((_num(m.get("auc")) if _num(m.get("auc")) is not None else -1.0),)
        if best_key is None or key > best_key:
            best, best_key = name, key
    return best


def pct(x: float | None) -> str:
    """0.0243 -> '2.43%'; 0.00012 -> '0.012%'; None -> 'n/a' (3 significant digits)."""
    if x is None:
        return "n/a"
    v = 100.0 * x
    return "0%" if v == 0 else f"{v:.3g}%"


def fpr_label(f: float) -> str:
    """0.001 -> '0.1%'."""
    return f"{100 * f:g}%"


def describe_tpr(t: TprFigure) -> str:
    """'2.4% [1.1%, 4.5%] (2,000 non-members)' or 'n/a (needs >= 1,000 non-members, has 500)'."""
    if t.tpr is None:
        need = needed_nonmembers(t.fpr)
        has = f", has {t.n_nonmembers:,}" if t.n_nonmembers is not None else ""
        return f"n/a (needs ≥ {need:,} non-members{has})"
    if t.target_ci_low is not None and t.target_ci_high is not None:  # the headline (population) interval
        ci = f" [{pct(t.target_ci_low)}, {pct(t.target_ci_high)}]"
    elif t.ci_low is not None and t.ci_high is not None:
        ci = f" [{pct(t.ci_low)}, {pct(t.ci_high)}]"
    else:
        ci = ""
    n = f" ({t.n_nonmembers:,} non-members)" if t.n_nonmembers is not None else ""
    return f"{pct(t.tpr)}{ci}{n}"


def dp_violations(
    metrics: Mapping[str, Mapping[str, Any]], fprs: Sequence[float], *, epsilon: float, delta: float,
    confidence: float = 0.95,
) -> list[str]:
    """TPR figures that contradict an (epsilon, delta)-DP guarantee with confidence (one sentence each).

    DP bounds every test by ``TPR <= b(FPR) = min(1, e^eps FPR + delta, 1 - e^-eps (1 - delta - FPR))``
    (Kairouz et al. 2015), increasing in FPR. With the population interval the check is
    ``target_ci_low > b(fpr)``; otherwise the operating point's ``ci_low`` is compared with ``b`` at the upper
    confidence bound of its FPR (:attr:`TprFigure.chance_high`). Either way a hit means the training or the
    audit is wrong (at the stated confidence, per figure).
    """
    from ..metrics import dp_tpr_bound

    out = []
    for name, m in metrics.items():
        for f in fprs:
            t = tpr_figure(m, f, confidence=confidence)
            if t.target_ci_low is not None:
                lo, at = t.target_ci_low, f
            elif t.ci_low is not None:
                lo, at = t.ci_low, t.chance_high
            else:
                continue
            bound = float(dp_tpr_bound(at, epsilon=epsilon, delta=delta))
            if lo > bound:
                out.append(
                    f"{name} at {fpr_label(f)} FPR: TPR is at least {pct(lo)}, but (ε = {epsilon:.3g}, "
                    f"δ = {delta:g})-DP allows at most {pct(bound)}"
                )
    return out


@dataclass(frozen=True)
class Verdict:
    """The report's headline: a level, a one-line title and short paragraphs (plain text, escaped later)."""

    level: str  # "high" | "measurable" | "none_detected" | "no_ground_truth"
    title: str
    strongest: str | None
    paragraphs: list[str] = field(default_factory=list)


def make_verdict(
    metrics: Mapping[str, Mapping[str, Any]],
    settings: Mapping[str, Any] | None = None,
    game: Mapping[str, Any] | None = None,
) -> Verdict:
    """Turn the metrics into what they mean for a release decision and how far they can be trusted.

    Levels: ``high`` when the strongest attack's TPR at some FPR <= 1% is, with 95% confidence, at least
    10x chance; ``measurable`` when any figure excludes chance (TPR@FPR interval above FPR, AUC interval
    above 0.5, or a positive epsilon lower bound); ``none_detected`` otherwise (never phrased as "safe");
    ``no_ground_truth`` when no attack could be evaluated.
    """
    settings = settings or {}
    game = game or {}
    conf = _num(settings.get("confidence")) or 0.95
    delta = _num(settings.get("delta"))
    fprs = fpr_keys(metrics, settings)
    name = game.get("strongest_attack") if game.get("strongest_attack") in metrics else None
    if name is None and metrics:
        name = strongest_attack(metrics, fprs)
    if name is None:
        return Verdict(
            level="no_ground_truth",
            title="No leakage figures: membership ground truth was not available",
            strongest=None,
            paragraphs=[
                "The per-example scores were computed, but without knowing which examples were members "
                "no attack can be evaluated. Supply the membership labels (is_member) to get figures."
            ],
        )
    m = metrics[name]
    figs = [tpr_figure(m, f) for f in fprs]
    auc = _num(m.get("auc"))
    auc_ci = m.get("auc_ci") if isinstance(m.get("auc_ci"), Sequence) else None
    auc_lo = _num(auc_ci[0]) if auc_ci and len(auc_ci) == 2 else None
    auc_hi = _num(auc_ci[1]) if auc_ci and len(auc_ci) == 2 else None
    eps = _num(m.get("epsilon_lower_bound"))

    figs = [tpr_figure(m, f, confidence=conf) for f in fprs]
    # "high": at FPR <= 1% the TPR is at least 10x the FPR even at the lower end of its population interval
    high = any(
        t.above_chance and t.fpr <= 0.01
        and (t.target_ci_low if t.target_ci_low is not None else t.ci_low) >= 10 * t.fpr  # type: ignore[operator]
        for t in figs
    )
    any_sig = any(
        any(tpr_figure(mm, f, confidence=conf).above_chance for f in fprs)
        or (_num((mm.get("auc_ci") or [None])[0]) or 0) > 0.5
        or (_num(mm.get("epsilon_lower_bound")) or 0) > 0
        for mm in metrics.values()
    )
    low = [t for t in figs if t.fpr <= 0.01]
    headline = next((t for t in low if t.available), next((t for t in figs if t.available), None))

    if high:
        level = "high"
        title = "High membership risk: an attacker can pick out training records far above chance"
    elif any_sig:
        level = "measurable"
        title = "Measurable membership leakage: some training records are identifiable above chance"
    else:
        level = "none_detected"
        title = "No membership leakage detected at this sample size (this is not a proof of privacy)"

    paras: list[str] = []
    lead = f"The strongest attack at low false-positive rate is {name}."
    shown = [t for t in low if t.available] or [t for t in figs if t.available][:1]
    parts = [f"at {fpr_label(t.fpr)} FPR it finds {describe_tpr(t)} of members" for t in shown]
    if parts:
        joined = "; ".join(parts)
        lead += " " + joined[0].upper() + joined[1:] + "."
    if auc is not None:
        ci = f" [{auc_lo:.3f}, {auc_hi:.3f}]" if auc_lo is not None and auc_hi is not None else ""
        lead += f" Its AUC is {auc:.3f}{ci}."
    paras.append(lead)

    paras.append(
        "Chance level: an attacker who guesses at random flags members and non-members at the same rate "
        "(TPR = FPR, e.g. 0.1% of members at 0.1% FPR) and has AUC 0.5. "
        f"Intervals are {conf:.0%}. Those quoted here, marked 'pop.' in the tables and given in results.json, "
        "cover the TPR at exactly that FPR, allowing for the threshold being estimated from the non-members; "
        "the tables also show the narrower Clopper-Pearson interval of the chosen threshold alone. An attack "
        "counts as beating chance only where its 'pop.' interval lies above the FPR."
    )

    if level == "high":
        paras.append(
            "Release decision: treat this model as revealing who was in its training data. If membership is "
            "sensitive, do not release it as is: train on more data, regularise or stop earlier, or train with "
            "DP-SGD, then audit again. The most exposed records below show who is at risk."
        )
    elif level == "measurable":
        paras.append(
            "Release decision: the model leaks membership for some records above chance. Whether that is "
            "acceptable depends on your privacy budget (compare TPR at 0.1% and 1% FPR with it); check the "
            "most exposed records."
        )
    else:
        ceiling = next((t for t in low if t.ci_high is not None), None)
        extra = (
            f" The data still allow TPR up to {pct(ceiling.ci_high)} at {fpr_label(ceiling.fpr)} FPR."
            if ceiling is not None
            else ""
        )
        paras.append(
            "Release decision: no attack beat chance with confidence. This is evidence, not proof: a stronger "
            "attack (more reference models) or more non-members could still find leakage." + extra
        )

    missing = [t for t in figs if not t.available]
    if missing:
        paras.append(
            "Not reported for lack of non-members: "
            + "; ".join(f"TPR at {fpr_label(t.fpr)} FPR {describe_tpr(t)}" for t in missing)
            + ". These figures are null, not zero."
        )
    elif headline is not None and headline.n_nonmembers is not None:
        paras.append(
            f"Trust: the lowest-FPR figure rests on {headline.n_nonmembers:,} non-members, so at "
            f"{fpr_label(headline.fpr)} FPR the attack may wrongly flag at most "
            f"{math.floor(headline.n_nonmembers * headline.fpr + 1e-9):,} of them; "
            "the intervals show how precisely that sample pins the figure down."
        )

    if eps is not None:
        d = f", δ = {delta:g}" if delta is not None else ""
        if eps > 0:
            paras.append(
                f"Epsilon lower bound: {eps:.3g} ({conf:.0%} confidence{d}). Any differential-privacy guarantee "
                f"claimed for this training must have ε ≥ {eps:.3g}; a smaller claimed ε would be false."
            )
        else:
            paras.append(
                f"Epsilon lower bound: 0 ({conf:.0%} confidence{d}): this audit does not rule out any "
                "differential-privacy guarantee. It is a lower bound, never an estimate of the true ε."
            )

    others = [
        (n, _num(mm.get("epsilon_lower_bound"))) for n, mm in metrics.items() if n != name
    ]
    top = max(((n, e) for n, e in others if e is not None), key=lambda ne: ne[1], default=None)
    if top is not None and eps is not None and top[1] > eps:
        paras.append(
            f"The largest lower bound over all {len(metrics)} attacks is {top[1]:.3g} ({top[0]}); each bound "
            f"holds at {conf:.0%} on its own, so with {len(metrics)} attacks tried the chance that at least one "
            "is too high exceeds the stated level. Quote the strongest attack's bound, or re-run that attack "
            "alone on fresh data to confirm a larger one."
        )

    dp = game.get("dp") if isinstance(game.get("dp"), Mapping) else None
    if dp is not None and _num(dp.get("epsilon")) is not None:
        acc = _num(dp.get("epsilon"))
        best_eps = max((_num(mm.get("epsilon_lower_bound")) or 0.0) for mm in metrics.values())
        d_acc = _num(dp.get("delta"))
        violations = (
            dp_violations(metrics, fprs, epsilon=acc, delta=d_acc, confidence=conf)  # type: ignore[arg-type]
            if d_acc is not None and 0 <= d_acc < 1
            else []
        )
        if violations:
            paras.append(
                f"Warning: the measured ROC exceeds what the accountant's ε = {acc:.3g} allows ("
                + "; ".join(violations[:3])
                + "). That is impossible for a correct DP training and audit: one of them has a bug."
            )
        elif best_eps > acc:  # type: ignore[operator]
            paras.append(
                f"Warning: the empirical lower bound {best_eps:.3g} exceeds the accountant's ε = {acc:.3g}. "
                "That is impossible for a correct DP training and audit: one of them has a bug."
            )
        else:
            paras.append(
                f"The model was trained with DP-SGD at accountant ε = {acc:.3g}; the audit's best lower bound "
                f"is {best_eps:.3g}, consistent with the guarantee."
            )

    n_targets = None
    spread = m.get("spread") if isinstance(m.get("spread"), Mapping) else None
    if spread:
        n_targets = _num(spread.get("n_targets"))
    if n_targets:
        paras.append(
            f"Figures are pooled over {int(n_targets)} target models trained with the same recipe; the spread "
            "columns give the mean and standard deviation across targets."
        )
    return Verdict(level=level, title=title, strongest=name, paragraphs=paras)
