"""The stacked DP-SGD canary runs: the closed-form MLP gradients equal torch.func's, one run equals a plain
per-example autograd DP-SGD with the same random draws, and the gradient canary's statistic has the
distribution DP-SGD's analysis says (Poisson-sampled at rate q, never forced into a step)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from miaudit._errors import InputError  # noqa: E402
from miaudit.models._nets import MLP  # noqa: E402
from miaudit.training.dp_canary import (  # noqa: E402
    DpSgdSpec,
    _derived_seed,
    _flat_params,
    _FuncBackend,
    _MlpBackend,
    canary_runs,
    gradient_canary_coordinates,
)


def _data(n=40, f=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, f)).astype(np.float32)
    x[:, 0] = 0.0  # a feature that is always zero: its first-layer weights get no data gradient
    return torch.from_numpy(x), torch.from_numpy(rng.integers(0, c, n))


def _factory(f=6, c=3, hidden=(5, 4)):
    return lambda: MLP(f, c, hidden=hidden)


def test_closed_form_mlp_gradients_equal_torch_func():
    x, y = _data()
    mods = [_factory()() for _ in range(3)]
    names = _flat_params(mods[0])[1]
    theta = torch.stack([_flat_params(m)[0] for m in mods])
    fast, ref = _MlpBackend(mods[0]), _FuncBackend(mods[0], names)
    torch.testing.assert_close(fast.grads(theta, x, y), ref.grads(theta, x, y), rtol=1e-5, atol=1e-6)
    w = (torch.rand(3, x.shape[0]) < 0.5).float()
    torch.testing.assert_close(fast.clipped_sum(theta, x, y, w, 0.3), ref.clipped_sum(theta, x, y, w, 0.3),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.losses(theta, x, y), ref.losses(theta, x, y), rtol=1e-5, atol=1e-6)


def _reference_run(factory, x, y, spec, seed, *, canary_x, canary_y, included):
    """Textbook DP-SGD for one run, per-example gradients by a Python loop over autograd, with the draws
    canary_runs makes for a group of one run (same generator, same order)."""
    s = _derived_seed(seed, 1000)
    torch.manual_seed(_derived_seed(s, 0))
    model = factory()
    gen = torch.Generator().manual_seed(_derived_seed(s, 7))
    xa, ya = torch.cat([x, canary_x]), torch.cat([y, canary_y])
    n = x.shape[0]
    for _ in range(spec.steps):
        sampled = torch.rand(1, xa.shape[0], generator=gen)[0] < spec.sample_rate
        sampled[n:] &= torch.as_tensor(included)
        total = [torch.zeros_like(p) for p in model.parameters()]
        for i in torch.nonzero(sampled).flatten().tolist():
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(xa[i : i + 1]), ya[i : i + 1]).backward()
            norm = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
            f = min(1.0, spec.max_grad_norm / (float(norm) + 1e-12))
            for t, p in zip(total, model.parameters()):
                t += f * p.grad
        flat = torch.cat([t.reshape(-1) for t in total])
        noisy = flat + spec.noise_multiplier * spec.max_grad_norm * torch.randn(flat.shape, generator=gen)
        with torch.no_grad():
            i = 0
            for p in model.parameters():
                k = p.numel()
                p -= spec.lr * noisy[i : i + k].reshape(p.shape) / (spec.sample_rate * n)
                i += k
    with torch.no_grad():
        return -torch.nn.functional.cross_entropy(model(canary_x), canary_y, reduction="none").numpy()


@pytest.mark.parametrize("fast", [True, False])
def test_one_run_equals_plain_dp_sgd(fast):
    x, y = _data()
    cx, cy = torch.ones(2, 6), torch.tensor([0, 1])
    spec = DpSgdSpec(sample_rate=0.3, steps=5, noise_multiplier=0.7, max_grad_norm=0.5, lr=0.2)
    inc = np.array([[True, False]])
    got = canary_runs(_factory(), x, y, spec=spec, threat="input_canary", included=inc, seed=3, canary_x=cx,
                      canary_y=cy, fast=fast)
    want = _reference_run(_factory(), x, y, spec, 3, canary_x=cx, canary_y=cy, included=inc[0])
    np.testing.assert_allclose(got.scores[0], want, rtol=1e-4, atol=1e-5)


def test_gradient_canary_statistic_has_the_dp_sgd_distribution():
    x, y = _data()
    q, T, sigma, c = 0.5, 6, 0.8, 2.0
    spec = DpSgdSpec(sample_rate=q, steps=T, noise_multiplier=sigma, max_grad_norm=c, lr=0.1)
    R = 600
    inc = np.zeros((R, 1), dtype=bool)
    inc[::2] = True
    res = canary_runs(_factory(), x, y, spec=spec, threat="gradient_canary", included=inc, seed=0, group_size=200)
    assert res.crosstalk == 0.0  # the always-zero feature's weight: no data gradient on the canary's coordinate
    s_in, s_out = res.scores[inc], res.scores[~inc]
    sd = sigma * c * math.sqrt(T)
    assert abs(s_out.mean()) < 4 * sd / math.sqrt(s_out.size)
    assert s_out.std() == pytest.approx(sd, rel=0.12)
    # Poisson-sampled like every example: mean c q T and variance c^2 T q (1 - q) + noise (forced in: c T, no spread)
    assert s_in.mean() == pytest.approx(c * q * T, abs=4 * math.sqrt(c**2 * T * q * (1 - q) + sd**2) / math.sqrt(s_in.size))
    assert s_in.var() == pytest.approx(c**2 * T * q * (1 - q) + sd**2, rel=0.2)


def test_whitebox_and_input_canaries_separate_members_at_low_noise():
    from miaudit.metrics import auc_score

    x, y = _data(n=10)
    cx, cy = torch.full((1, 6), 3.0), torch.tensor([2])
    spec = DpSgdSpec(sample_rate=0.5, steps=30, noise_multiplier=0.05, max_grad_norm=1.0, lr=0.5)
    inc = np.zeros((40, 1), dtype=bool)
    inc[::2] = True
    for threat in ("input_canary", "whitebox"):
        s = canary_runs(_factory(), x, y, spec=spec, threat=threat, included=inc, seed=1, canary_x=cx,
                        canary_y=cy).scores[:, 0]
        assert auc_score(inc[:, 0], s) > 0.75, threat


def test_canary_coordinates_and_errors():
    x, y = _data()
    coords, worst = gradient_canary_coordinates(_factory(), x, y, 5, seed=0)
    assert worst == 0.0 and len(set(coords.tolist())) == 5
    spec = DpSgdSpec(sample_rate=0.5, steps=2, noise_multiplier=1.0)
    with pytest.raises(InputError, match="threat"):
        canary_runs(_factory(), x, y, spec=spec, threat="nope", included=np.ones((2, 1), bool), seed=0)
    with pytest.raises(InputError, match="canary examples"):
        canary_runs(_factory(), x, y, spec=spec, threat="input_canary", included=np.ones((2, 1), bool), seed=0)
    with pytest.raises(InputError, match="fewer than"):
        gradient_canary_coordinates(_factory(), x, y, 10_000, seed=0)
    with pytest.raises(InputError, match="sample_rate"):
        DpSgdSpec(sample_rate=0.0, steps=2, noise_multiplier=1.0)


def test_shared_initial_weights():
    from miaudit.training.dp_canary import initial_weights

    x, y = _data()
    assert initial_weights(_factory(), x, y, "random", seed=0) is None
    fixed = initial_weights(_factory(), x, y, "fixed", seed=0)
    pre = initial_weights(_factory(), x, y, "pretrained", seed=0)
    with torch.no_grad():
        loss = [float(torch.nn.functional.cross_entropy(m(x), y)) for m in (fixed, pre)]
    assert loss[1] < loss[0]  # pre-training lowers the data's loss (so their gradients shrink)
    spec = DpSgdSpec(sample_rate=0.5, steps=1, noise_multiplier=0.0, max_grad_norm=1.0, lr=0.0)
    cx, cy = torch.ones(1, 6), torch.tensor([0])
    s = canary_runs(_factory(), x, y, spec=spec, threat="input_canary", included=np.ones((3, 1), bool), seed=0,
                    canary_x=cx, canary_y=cy, init=fixed).scores
    assert np.allclose(s, s[0])  # lr 0, no noise: every run is its shared initial model
    with pytest.raises(InputError, match="init"):
        initial_weights(_factory(), x, y, "worst", seed=0)
