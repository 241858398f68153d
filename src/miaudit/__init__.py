"""miaudit: membership-inference audits for machine-learning models.

The curated public API (imported lazily, so ``import miaudit`` stays cheap)::

    from miaudit import audit_model, audit_bundle, run_audit, load_config, SignalBundle

See ``docs/DESIGN.md`` for the layers behind it.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import ConfigError, InputError, MiauditError, MissingDependencyError, TrainingError

__version__ = "0.2.0"

#: public name -> module that defines it
_LAZY = {
    "audit_model": "miaudit.api",
    "audit_bundle": "miaudit.api",
    "evaluate_bundle": "miaudit.api",
    "evaluate_game": "miaudit.api",
    "check_budget": "miaudit.api",
    "AuditSettings": "miaudit.metrics",
    "run_demo": "miaudit.audit",
    "run_audit": "miaudit.audit",
    "run_audit_with_target": "miaudit.audit",
    "balanced_membership": "miaudit.audit",
    "decide_leakage": "miaudit.metrics",
    "load_config": "miaudit.config",
    "AuditResult": "miaudit.report",
    "SignalBundle": "miaudit.data",
    "load_bundle": "miaudit.data",
    "load_dataset": "miaudit.data",
    "available_attacks": "miaudit.attacks",
    "get_attack": "miaudit.attacks",
    "evaluate_scores": "miaudit.metrics",
    "run_levers": "miaudit.levers",
    "levers_table": "miaudit.levers",
    # PyTorch (optional extra "torch"): importing these needs torch
    "TorchRecipe": "miaudit.training.torch_recipe",
    "torch_logits": "miaudit.models.torch",
    "load_weights": "miaudit.models.torch",
}

__all__ = [
    "__version__",
    "MiauditError",
    "InputError",
    "ConfigError",
    "MissingDependencyError",
    "TrainingError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'miaudit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
