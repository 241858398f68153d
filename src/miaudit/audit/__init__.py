"""The membership game's one home: its design, its evaluation and the run flow of every audit.

* :mod:`~miaudit.audit.design`: seeds, who is a member of which model, the references of a target and the
  validity check every entry point runs.
* :mod:`~miaudit.audit.evaluate`: attacks -> metrics -> verdict, for one target or a pooled game.
* :mod:`~miaudit.audit.flow`: one run flow with three target sources (a config, a user's fitted model, the
  demo, :mod:`~miaudit.audit.demo`); :mod:`~miaudit.audit.target` loads a user's model safely;
  :mod:`~miaudit.audit.budget` is the CLI's privacy gate.
"""

from .budget import Budget, check_budget, parse_budget
from .demo import DEMO_MODELS, run_demo
from .design import (
    MIN_PAIRED_MODELS,
    ReferenceCheck,
    balanced_membership,
    check_references,
    draw_membership,
    game_seeds,
    partner_of,
    references_for_target,
)
from .evaluate import AttackRun, evaluate_bundle, evaluate_game, run_attacks, target_bundle
from .flow import PreparedAudit, prepare_audit, run_audit, run_audit_with_target, train_prepared
from .target import load_target_model, read_indices

__all__ = [
    "AttackRun",
    "Budget",
    "DEMO_MODELS",
    "MIN_PAIRED_MODELS",
    "PreparedAudit",
    "ReferenceCheck",
    "balanced_membership",
    "check_budget",
    "check_references",
    "draw_membership",
    "evaluate_bundle",
    "evaluate_game",
    "game_seeds",
    "load_target_model",
    "parse_budget",
    "partner_of",
    "prepare_audit",
    "read_indices",
    "references_for_target",
    "run_attacks",
    "run_audit",
    "run_audit_with_target",
    "run_demo",
    "target_bundle",
    "train_prepared",
]
