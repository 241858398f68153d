"""Isolated gradient canaries (several per run, pooled): the coordinates found are first-layer weights of
always-zero features, their data gradient stays exactly 0 through DP-SGD, the canaries' statistics are
independent with the one-canary distribution, and the pooled Clopper-Pearson bound stays valid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from miaudit._errors import TrainingError  # noqa: E402
from miaudit.audit.dp_audit import DpAuditConfig, _runs_bounds, load_dp_audit_config, training_arrays  # noqa: E402
from miaudit.metrics.dp_bounds import gdp_epsilon  # noqa: E402
from miaudit.models._nets import MLP  # noqa: E402
from miaudit.training.dp_canary import (  # noqa: E402
    DpSgdSpec,
    _flat_params,
    _FuncBackend,
    _MlpBackend,
    canary_runs,
    isolated_coordinates,
)

DIGITS = """[data]
kind = "digits"
max_examples = 500
[model]
kind = "torch"
model = "mlp"
model_kwargs = { hidden = [16] }
epochs = 2
batch_size = 500
lr = 0.5
momentum = 0.0
[dp_audit]
claimed_epsilon = 8.0
"""


def _data(n=60, f=8, c=3, zero=(0, 3, 5), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    x[:, list(zero)] = 0.0
    return torch.from_numpy(x), torch.from_numpy(rng.integers(0, c, n))


def test_isolated_coordinates_on_digits_are_zero_feature_weights_and_stay_gradient_free(tmp_path: Path):
    path = tmp_path / "d.toml"
    path.write_text(DIGITS)
    audit_cfg, _ = load_dp_audit_config(path)
    recipe, x, yy, _ = training_arrays(audit_cfg)  # the features as DP-SGD trains on them (standardised)
    X, y = torch.from_numpy(x), torch.from_numpy(yy)
    torch.manual_seed(0)
    module = recipe.factory(x)()
    coords, why = isolated_coordinates(module, X, y)
    assert why == "" and coords.size >= 3 * 16
    k = x.shape[1]
    first = module.net[0]
    assert coords.max() < first.weight.numel()  # first-layer weights (net.0.weight comes first)
    features = np.unique(coords % k)
    assert {0, 32, 39} <= set(features.tolist())  # pixels blank in the whole digits data set
    assert np.all(x[:, features] == 0.0)
    assert coords.size == features.size * first.out_features
    # several DP-SGD steps (noise moves every weight, the isolated ones too): data gradients stay exactly 0
    theta, names = _flat_params(module)
    theta = theta.unsqueeze(0)
    backends = (_FuncBackend(module, names), _MlpBackend(module))
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        for be in backends:
            g = be.grads(theta, X, y)[0]
            assert torch.count_nonzero(g[:, torch.as_tensor(coords)]) == 0
        summed = backends[1].clipped_sum(theta, X, y, torch.ones(1, X.shape[0]), 1.0)
        theta = theta - 0.5 * (summed + torch.randn(summed.shape, generator=gen)) / X.shape[0]
    assert torch.count_nonzero(theta[0, torch.as_tensor(coords)] - _flat_params(module)[0][coords]) == coords.size


def test_isolation_is_checked_not_assumed():
    x, y = _data()
    module = MLP(8, 3, hidden=(5,))
    coords, why = isolated_coordinates(module, x, y)
    assert coords.tolist() == [o * 8 + i for o in range(5) for i in (0, 3, 5)]
    assert why == ""
    assert isolated_coordinates(module, x, y, limit=4)[0].size == 4
    # no always-zero feature: none, with the reason
    none, why = isolated_coordinates(module, x + 1.0, y)
    assert none.size == 0 and "no input feature is exactly zero" in why
    # a first layer that is not a plain Linear on the input: none
    seq = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 3))
    none, why = isolated_coordinates(seq, x, y)
    assert none.size == 0 and "not a plain Linear" in why
    # handing non-isolated coordinates to the trainer is caught at the first step
    spec = DpSgdSpec(sample_rate=1.0, steps=2, noise_multiplier=1.0)
    with pytest.raises(TrainingError, match="isolated"):
        canary_runs(lambda: MLP(8, 3, hidden=(5,)), x, y, spec=spec, threat="gradient_canary",
                    included=np.ones((2, 2), bool), seed=0, coords=np.array([1, 2]))


def test_isolated_canaries_are_independent_with_the_one_canary_distribution():
    x, y = _data()
    q, T, sigma, c = 0.5, 6, 0.8, 2.0
    spec = DpSgdSpec(sample_rate=q, steps=T, noise_multiplier=sigma, max_grad_norm=c, lr=0.1)
    make = lambda: MLP(8, 3, hidden=(5,))  # noqa: E731
    coords, _ = isolated_coordinates(make(), x, y)
    R, m = 600, coords.size
    inc = np.random.default_rng(3).random((R, m)) < 0.5
    res = canary_runs(make, x, y, spec=spec, threat="gradient_canary", included=inc, seed=0, group_size=300,
                      coords=coords)
    assert res.scores.shape == (R, m) and res.crosstalk == 0.0
    # centred per canary by its own inclusion: correlations across canaries ~ 0 (N(0, 1/R) each)
    mean_in = c * q * T
    resid = res.scores - mean_in * inc
    r = np.corrcoef(resid.T)
    off = r[~np.eye(m, dtype=bool)]
    assert np.abs(off).max() < 5 / math.sqrt(R)
    assert abs(off.mean()) < 4 / math.sqrt(R * m)
    s_in, s_out = res.scores[inc], res.scores[~inc]
    sd = sigma * c * math.sqrt(T)
    assert abs(s_out.mean()) < 4 * sd / math.sqrt(s_out.size)
    assert s_out.std() == pytest.approx(sd, rel=0.05)
    var_in = c**2 * T * q * (1 - q) + sd**2
    assert s_in.mean() == pytest.approx(mean_in, abs=4 * math.sqrt(var_in / s_in.size))
    assert s_in.var() == pytest.approx(var_in, rel=0.08)


@pytest.mark.parametrize("sigma", [0.9, 50.0])
def test_pooled_bound_never_exceeds_the_true_epsilon(sigma):
    """Full batch: T Gaussian mechanisms, exactly (sqrt(T) / sigma)-GDP; the pooled CP bound stays below."""
    x, y = _data(n=30)
    T, c = 2, 1.0
    spec = DpSgdSpec(sample_rate=1.0, steps=T, noise_multiplier=sigma, max_grad_norm=c, lr=0.1)
    make = lambda: MLP(8, 3, hidden=(8,))  # noqa: E731
    coords, _ = isolated_coordinates(make(), x, y)
    true_eps = gdp_epsilon(math.sqrt(T) / sigma, 1e-5)
    R = 100
    cfg = DpAuditConfig(claimed_epsilon=max(true_eps, 0.1), runs=R)
    acc = {"sample_rate": 1.0, "steps": T, "noise_multiplier": sigma}
    bounds = []
    for rep in range(8):
        inc = np.random.default_rng(rep).random((R, coords.size)) < 0.5
        res = canary_runs(make, x, y, spec=spec, threat="gradient_canary", included=inc, seed=rep, group_size=100,
                          coords=coords)
        (cp, _g), info = _runs_bounds(res.scores, inc, cfg=cfg, acc=acc, crosstalk=res.crosstalk)
        assert info["trials_per_side"]["in"] + info["trials_per_side"]["out"] == R * coords.size
        assert cp.details["n_in"] + cp.details["n_out"] == R * coords.size
        bounds.append(cp.epsilon_lower)
    assert max(bounds) <= true_eps
    if sigma > 10:
        assert max(bounds) < 0.2
    else:
        assert min(bounds) > 1.0  # 2,400 pooled trials: the honest eps-7.4 mechanism is seen
