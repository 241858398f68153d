"""A null game: outputs independent of membership. No attack may claim leakage."""

from __future__ import annotations

import numpy as np
import pytest

from miaudit.api import audit_bundle
from miaudit.data import SignalBundle

from ._worlds import leaky_world


def _null_result(seed: int, n: int = 1000):
    world = leaky_world(n=n, k=8, seed=seed, null=True)
    return audit_bundle(SignalBundle.from_arrays(**world), settings={"seed": seed})


def test_null_game_no_attack_claims_leakage():
    result = _null_result(seed=11)
    assert len(result.metrics) >= 10, result.skipped
    for name, m in result.metrics.items():
        assert m["epsilon_lower_bound"] == 0.0, name
        lo, hi = m["auc_ci"]
        assert lo <= 0.5 <= hi or abs(m["auc"] - 0.5) < 0.05, (name, m["auc"], m["auc_ci"])
        lo, hi = m["tpr_at_fpr_ci"]["0.01"]
        assert lo <= 0.03, (name, lo)


@pytest.mark.slow
def test_null_games_every_attack_200_repetitions():
    """Issue 4: over 200 seeded null games the 95% epsilon bound is > 0 in at most 5% of them and
    the TPR@1%FPR interval covers 1% in at least 95% (per attack)."""
    eps_positive: dict[str, int] = {}
    covers: dict[str, int] = {}
    reps = 200
    for seed in range(reps):
        result = _null_result(seed=seed, n=2000)
        for name, m in result.metrics.items():
            eps_positive[name] = eps_positive.get(name, 0) + (m["epsilon_lower_bound"] > 0)
            lo, hi = m["tpr_at_fpr_ci"]["0.01"]
            covers[name] = covers.get(name, 0) + (lo <= 0.01 <= hi)
    for name in eps_positive:
        assert eps_positive[name] <= 0.05 * reps, (name, eps_positive[name])
        assert covers[name] >= 0.95 * reps - 2 * np.sqrt(reps * 0.05 * 0.95), (name, covers[name])
