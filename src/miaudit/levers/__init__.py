"""Levers: how training-set size, capacity, regularisation and DP-SGD move the membership risk
(:mod:`miaudit.levers._sweep`; the page is rendered by :mod:`miaudit.levers._html`)."""

from ._html import render_levers_html
from ._sweep import (
    LEVERS,
    LeverResult,
    LeverSweep,
    apply_levers,
    levers_table,
    pareto_front,
    parse_levers,
    run_levers,
)

__all__ = ["LEVERS", "LeverResult", "LeverSweep", "apply_levers", "levers_table", "pareto_front", "parse_levers",
           "render_levers_html", "run_levers"]
