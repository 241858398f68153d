"""``miaudit demo``: the whole membership game on scikit-learn's embedded digits data.

The demo is a config game like any other (:func:`~miaudit.audit.flow.run_audit`): a recipe from
:data:`DEMO_MODELS`, the 1,797 digits as the pool, ``n_references + 2`` models in complementary pairs,
model 0 the target against every other model but its partner.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._errors import InputError
from ..config import AuditConfig
from ..metrics import AuditSettings
from ..report import AuditResult

__all__ = ["DEMO_MODELS", "demo_config", "run_demo"]

#: Built-in demo recipes: name -> (estimator import path, parameters).
DEMO_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    # Wide, lightly regularised MLP trained to zero training error: it memorises visibly.
    "mlp": (
        "sklearn.neural_network.MLPClassifier",
        {"hidden_layer_sizes": [256], "alpha": 1e-5, "max_iter": 200, "tol": 1e-6},
    ),
    "rf": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 100}),
    "logreg": ("sklearn.linear_model.LogisticRegression", {"C": 10.0, "max_iter": 2000}),
    "gb": ("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 100}),
}


def demo_config(*, model: str = "mlp", seed: int = 0, n_references: int = 8, run_dir: str | Path,
                attacks: Sequence[str] | None = None,
                settings: AuditSettings | Mapping[str, Any] | None = None) -> AuditConfig:
    """The :class:`~miaudit.config.AuditConfig` of the demo (validated like a user's config)."""
    if model not in DEMO_MODELS:
        raise InputError(f"--model {model!r}: expected one of {', '.join(DEMO_MODELS)}")
    estimator, params = DEMO_MODELS[model]
    st = AuditSettings.coerce(settings)
    d: dict[str, Any] = {
        "data": {"kind": "digits"},
        "model": {"kind": "sklearn", "estimator": estimator, "params": params, "preprocessing": "auto"},
        "game": {"n_references": n_references, "n_targets": 1, "seed": seed},
        "metrics": {"delta": st.delta, "confidence": st.confidence, "member_prior": st.member_prior,
                    "fprs": list(st.fprs)},
        "output": {"run_dir": str(run_dir)},
    }
    if attacks:
        d["attacks"] = list(attacks)
    try:
        return AuditConfig.from_dict(d)
    except InputError as exc:  # name the demo's options, not config keys
        raise InputError(str(exc).replace("[game] n_references", "--references")) from None


def run_demo(
    *,
    model: str = "mlp",
    seed: int = 0,
    n_references: int = 8,
    jobs: int | None = None,
    run_dir: str | Path | None = None,
    attacks: Sequence[str] | None = None,
    settings: AuditSettings | Mapping[str, Any] | None = None,
    progress: Callable[..., Any] | None = None,
) -> AuditResult:
    """Run the demo audit and return its result (nothing is written unless ``run_dir`` caches models).

    ``n_references`` reference models (even, >= 2): ``n_references + 2`` models are trained.
    """
    from .flow import run_audit

    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="miaudit-demo-") as tmp:
            return run_demo(model=model, seed=seed, n_references=n_references, jobs=jobs, run_dir=tmp,
                            attacks=attacks, settings=settings, progress=progress)
    cfg = demo_config(model=model, seed=seed, n_references=n_references, run_dir=run_dir, attacks=attacks,
                      settings=settings)
    result = run_audit(cfg, jobs=jobs, progress=progress)
    result.game["source"] = "demo"
    return result
