"""miaudit.report: the audit's outputs (results.json, scores.csv, a self-contained report.html).

Public API: :class:`AuditResult` (``metrics_table()``, ``to_json()``, ``save(out_dir)``, ``to_html()``,
``verdict()``); :func:`make_verdict` (the plain-language headline); :func:`json_safe` and
:func:`atomic_write` (helpers for other writers of results files).
The DP theory curves drawn on the report's ROC come from :mod:`miaudit.metrics`.
"""

from ._result import SCHEMA_VERSION, AuditResult, atomic_write, json_safe
from ._verdict import Verdict, make_verdict

__all__ = ["AuditResult", "SCHEMA_VERSION", "Verdict", "atomic_write", "json_safe", "make_verdict"]
