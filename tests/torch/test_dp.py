"""miaudit.training.dp: DP-SGD with Opacus, the accountant's epsilon, and the audit's soundness check."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from miaudit import ConfigError  # noqa: E402
from miaudit.training.dp import check_dp, dp_info  # noqa: E402
from miaudit.training.torch_recipe import TorchRecipe  # noqa: E402

pytestmark = pytest.mark.torch


def _random_labels(n=400, f=40, seed=0):
    """Features with random labels: the only way to fit the training half is to memorise it."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, f)).astype(np.float32), rng.integers(0, 2, n)


def test_dp_target_epsilon_reached_and_recorded():
    X, y = _random_labels(200)
    r = TorchRecipe("mlp", {"hidden": [16]}, n_classes=2, epochs=3, batch_size=32, lr=0.1, num_threads=1,
                    dp={"epsilon": 2.0, "delta": 1e-4, "max_grad_norm": 1.0})
    assert not r.stackable and r.group_size == 1
    m = r.train(X, y, seed=0)
    info = dp_info(m)
    assert info is not None and r.dp_info(m) == info
    assert math.isfinite(info["epsilon"]) and 1.9 <= info["epsilon"] <= 2.0 + 1e-6
    assert info["delta"] == 1e-4 and info["max_grad_norm"] == 1.0 and info["noise_multiplier"] > 0.3
    assert r.spec()["dp"]["epsilon"] == 2.0
    # the guarantee computed without training matches the run's accountant exactly
    g = r.dp_guarantee(200)
    assert g["epsilon"] == pytest.approx(info["epsilon"], rel=1e-9)
    assert g["noise_multiplier"] == pytest.approx(info["noise_multiplier"]) and g["steps"] == info["steps"]
    assert TorchRecipe("mlp", n_classes=2).dp_guarantee(200) is None
    # the plain module comes back: no Opacus wrapper, hooks or per-sample gradients, and it pickles
    assert type(m).__name__ == "MLP" and not any(hasattr(p, "grad_sample") for p in m.parameters())
    assert not any(mod._forward_hooks for mod in m.modules())
    import pickle

    pickle.loads(pickle.dumps(m))
    assert r.predict_logits(m, X).shape == (200, 1, 2)
    # deterministic given the seed
    m2 = r.train(X, y, seed=0)
    np.testing.assert_array_equal(r.predict_logits(m, X), r.predict_logits(m2, X))


def test_dp_noise_multiplier_gives_accountant_epsilon():
    X, y = _random_labels(200)
    small = TorchRecipe("mlp", {"hidden": [8]}, n_classes=2, epochs=2, batch_size=40, num_threads=1,
                        dp={"noise_multiplier": 2.0, "max_grad_norm": 0.5, "delta": 1e-5})
    big = TorchRecipe("mlp", {"hidden": [8]}, n_classes=2, epochs=2, batch_size=40, num_threads=1,
                      dp={"noise_multiplier": 0.7, "max_grad_norm": 0.5, "delta": 1e-5, "accountant": "prv"})
    e_small = dp_info(small.train(X, y, seed=1))["epsilon"]
    e_big = dp_info(big.train(X, y, seed=1))["epsilon"]
    assert 0 < e_small < e_big < 50  # more noise, less epsilon
    assert big.dp_guarantee(200)["epsilon"] == pytest.approx(e_big, rel=1e-9)


def test_check_dp_errors():
    assert check_dp(None) is None
    assert check_dp({"epsilon": 4})["delta"] == 1e-5
    with pytest.raises(ConfigError, match="give exactly one of epsilon"):
        check_dp({"epsilon": 1.0, "noise_multiplier": 1.0})
    with pytest.raises(ConfigError, match="give exactly one of epsilon"):
        check_dp({"max_grad_norm": 1.0})
    with pytest.raises(ConfigError, match=r"unknown key 'eps' \(valid keys: epsilon, delta"):
        check_dp({"eps": 1.0})
    with pytest.raises(ConfigError, match=r"epsilon: expected a finite number > 0.*delta: expected a number in \(0, 1\)"):
        check_dp({"epsilon": float("inf"), "delta": 2.0})
    with pytest.raises(ConfigError, match="accountant: expected one of rdp, prv"):
        check_dp({"epsilon": 1.0, "accountant": "gdp"})
    with pytest.raises(ConfigError, match="max_grad_norm: expected a number > 0"):
        check_dp({"noise_multiplier": 1.0, "max_grad_norm": 0})
    with pytest.raises(ConfigError, match="model.dp: expected a table"):
        check_dp(4.0)  # type: ignore[arg-type]


def _loss_scores(recipe, model, X, y):
    logits = recipe.predict_logits(model, X)[:, 0]
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return logp[np.arange(len(y)), y]  # higher (less loss) = more likely member


def test_soundness_empirical_lower_bound_never_exceeds_accountant_epsilon():
    """On DP-SGD models the audit's 95% lower bound stays below the guarantee; the same check flags a
    non-private model that memorised its members (a positive control, so the test can fail)."""
    metrics = pytest.importorskip("miaudit.metrics")
    X, y = _random_labels(400, seed=3)
    is_member = np.zeros(400, dtype=bool)
    is_member[np.random.default_rng(0).permutation(400)[:200]] = True
    common = dict(model="mlp", model_kwargs={"hidden": [128]}, n_classes=2, batch_size=50, num_threads=1)

    private = TorchRecipe(**common, epochs=15, optimizer="adam", lr=3e-3,
                          dp={"epsilon": 1.0, "delta": 1e-5, "max_grad_norm": 1.0})
    for seed in (0, 1):
        m = private.train(X[is_member], y[is_member], seed=seed)
        eps = dp_info(m)["epsilon"]
        bound = metrics.epsilon_lower_bound(is_member, _loss_scores(private, m, X, y), delta=1e-5, seed=seed)
        assert bound.value <= eps, (bound, eps)

    leaky = TorchRecipe(**common, epochs=60, optimizer="adam", lr=3e-3)
    m = leaky.train(X[is_member], y[is_member], seed=0)
    bound = metrics.epsilon_lower_bound(is_member, _loss_scores(leaky, m, X, y), delta=1e-5, seed=0)
    assert bound.value > 1.0  # a claim of epsilon = 1 for this model would be refuted
