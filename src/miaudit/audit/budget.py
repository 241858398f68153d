"""The privacy gate of the CLI (``--fail-above METRIC=VALUE``): budgets parsed and checked before any work,
then compared with the audit's figures."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .._errors import InputError
from ..metrics import AttackMetrics
from ..report import AuditResult

__all__ = ["Budget", "parse_budget", "check_budget", "check_budget_fprs"]

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


def check_budget_fprs(budgets: Sequence[Budget | str], fprs: Sequence[float], *,
                      add_fpr: str = "add it to [metrics] fprs") -> list[Budget]:
    """Parse ``budgets`` and check that every ``tpr@FPR`` is among the FPRs the audit will compute
    (``add_fpr``: how the message tells the user to add an FPR; ``{fpr}`` in it is replaced by the FPR)."""
    parsed = [parse_budget(b) if isinstance(b, str) else b for b in budgets]
    for b in parsed:
        if b.metric == "tpr" and not any(math.isclose(b.fpr or 0.0, f, rel_tol=1e-9) for f in fprs):
            raise InputError(
                f"--fail-above {b.label()}: FPR {b.fpr:g} is not among the computed FPRs {list(fprs)}; use one of "
                f"them or {add_fpr.replace('{fpr}', format(b.fpr, 'g'))}"
            )
    return parsed


def _measured(m: AttackMetrics, budget: Budget) -> float | None:
    if budget.metric == "auc":
        return m.auc
    if budget.metric == "advantage":
        return m.advantage
    if budget.metric == "epsilon":
        return m.epsilon.value
    return m.at(budget.fpr or 0.0).tpr


def check_budget(result: AuditResult, budgets: Sequence[Budget | str]) -> list[str]:
    """Violations of the privacy budgets (one sentence each); empty when every budget is met.

    A budget on ``tpr@FPR`` at an FPR that was not computed is an error; a figure that is null
    because too few non-members stand behind it is reported as a violation (the audit cannot show
    the budget is met).
    """
    parsed = check_budget_fprs(budgets, result.fprs)
    if parsed and not result.metrics:
        raise InputError("--fail-above needs membership ground truth (is_member) to measure leakage")
    violations = []
    for b in parsed:
        for name in result.ranking:
            m = result.metrics[name]
            value = _measured(m, b)
            if value is None:
                violations.append(
                    f"{name}: {b.label()} cannot be measured with {m.n_nonmembers} non-members, so the budget "
                    f"{b.limit:g} is not shown to hold"
                )
            elif value > b.limit:
                violations.append(f"{name}: {b.label()} = {value:.4g} exceeds the budget {b.limit:g}")
    return violations
