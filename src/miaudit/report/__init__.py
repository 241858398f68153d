"""miaudit.report: the audit's outputs (results.json, scores.csv, a self-contained report.html).

Public API: :class:`AuditResult`; :func:`make_verdict` (the plain-language headline); the DP theory curves
:func:`dp_tpr_bound`, :func:`gdp_tradeoff_tpr`, :func:`gdp_mu_from_epsilon` drawn on the report's ROC.
"""

from ._dp import dp_tpr_bound, gdp_delta, gdp_mu_from_epsilon, gdp_tradeoff_tpr
from ._result import SCHEMA_VERSION, AuditResult, atomic_write, json_safe
from ._verdict import Verdict, make_verdict, strongest_attack

__all__ = [
    "AuditResult",
    "SCHEMA_VERSION",
    "Verdict",
    "atomic_write",
    "dp_tpr_bound",
    "gdp_delta",
    "gdp_mu_from_epsilon",
    "gdp_tradeoff_tpr",
    "json_safe",
    "make_verdict",
    "strongest_attack",
]
