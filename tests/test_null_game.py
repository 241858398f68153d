"""Null games: outputs independent of membership, so nothing can leak. The verdict may claim leakage in at
most ``1 - confidence`` of them (issue 9); every interval must cover chance at its stated rate.

Fast variants run in CI; the ``slow`` ones (``pytest -m slow``) repeat over >= 200 games.
"""

from __future__ import annotations

import pytest
from scipy import stats

from miaudit.api import audit_bundle, evaluate_game
from miaudit.data import SignalBundle

from ._worlds import leaky_world, paired_game


def _null_result(seed: int, n: int = 1000, k: int = 8):
    world = leaky_world(n=n, k=k, seed=seed, null=True)
    return audit_bundle(SignalBundle.from_arrays(**world), settings={"seed": seed})


def _null_game(seed: int):
    return paired_game(n=300, k=8, seed=seed, null=True)


def _max_false_alarms(reps: int, level: float = 0.05, p: float = 0.001) -> int:
    """Largest count a procedure with false-alarm rate ``level`` exceeds with probability below ``p``."""
    return int(stats.binom.ppf(1 - p, reps, level))


def test_null_bundle_verdict_and_figures():
    result = _null_result(seed=11)
    assert len(result.metrics) >= 10, result.skipped
    assert result.decision is not None and not result.decision.leakage_detected
    assert result.verdict().level == "none_detected"
    assert result.to_json()["verdict"]["leakage_detected"] is False
    for name, m in result.metrics.items():
        assert m.epsilon.value == 0.0, name
        t = m.at(0.01)
        assert t.target_ci_low <= 0.01 <= t.target_ci_high, (name, t)


def test_null_bundles_fast_variant():
    """20 null bundles: a 5% procedure claims leakage in more than 5 of them with probability < 0.3%."""
    claims = sum(_null_result(seed=s, n=600).decision.leakage_detected for s in range(20))
    assert claims <= 5


def test_pooled_null_games_fast_variant():
    """6 pooled null games (K = 8, every model the target): no claim expected (P(>= 3) < 0.3% at 5%)."""
    claims, excluded, pairs = 0, 0, 0
    for seed in range(6):
        labels, logits, design = _null_game(seed)
        r = evaluate_game(labels, logits, design, settings={"seed": seed})
        claims += r.decision.leakage_detected
        for m in r.metrics.values():
            pairs += 1
            excluded += not (m.auc_ci[0] <= 0.5 <= m.auc_ci[1])
    assert claims <= 2
    assert excluded <= _max_false_alarms(pairs), (excluded, pairs)


@pytest.mark.slow
def test_null_bundles_200_repetitions():
    """>= 200 null bundles (8 references each): the verdict claims leakage in at most 5% of them (with the
    binomial slack of 200 draws: a 5% procedure exceeds 19 claims with probability < 0.1%), the epsilon bound
    is > 0 in at most 5% per attack, and the TPR@1% population interval covers 1% in >= 95% per attack."""
    reps = 200
    claims = 0
    eps_positive: dict[str, int] = {}
    covers: dict[str, int] = {}
    for seed in range(reps):
        result = _null_result(seed=seed, n=2000)
        claims += result.decision.leakage_detected
        for name, m in result.metrics.items():
            eps_positive[name] = eps_positive.get(name, 0) + (m.epsilon.value > 0)
            t = m.at(0.01)
            covers[name] = covers.get(name, 0) + (t.target_ci_low <= 0.01 <= t.target_ci_high)
    assert claims <= _max_false_alarms(reps), claims
    for name in eps_positive:
        assert eps_positive[name] <= _max_false_alarms(reps), (name, eps_positive[name])
        assert covers[name] >= reps - _max_false_alarms(reps), (name, covers[name])


@pytest.mark.slow
def test_pooled_null_games_200_repetitions():
    """>= 200 pooled null games (K = 8 models, every one the target): the verdict claims leakage in at most 5%,
    and each attack's AUC interval excludes 0.5 in at most 5% of games."""
    reps = 200
    claims = 0
    excluded: dict[str, int] = {}
    for seed in range(reps):
        labels, logits, design = _null_game(seed)
        r = evaluate_game(labels, logits, design, settings={"seed": seed})
        claims += r.decision.leakage_detected
        for name, m in r.metrics.items():
            excluded[name] = excluded.get(name, 0) + (not (m.auc_ci[0] <= 0.5 <= m.auc_ci[1]))
    assert claims <= _max_false_alarms(reps), claims
    for name, count in excluded.items():
        assert count <= _max_false_alarms(reps), (name, count)
