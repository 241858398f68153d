"""miaudit.training.stacked: G models at once == the same G models trained one by one."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from miaudit import ConfigError, InputError  # noqa: E402
from miaudit.models._nets import MLP, SmallCNN  # noqa: E402
from miaudit.training.stacked import (  # noqa: E402
    TrainSettings,
    augment_batch,
    batch_plan,
    lr_at,
    train_one,
    train_stacked,
)

pytestmark = pytest.mark.torch


def _assert_same_models(stacked, X, y, masks, seeds, factory, settings, *, atol):
    for g, seed in enumerate(seeds):
        one = train_one(factory, X[masks[g]], y[masks[g]], seed=seed, settings=settings)
        for (name, a), b in zip(one.named_parameters(), stacked[g].parameters()):
            np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-4, atol=atol, err_msg=name)
        with torch.no_grad():
            np.testing.assert_allclose(stacked[g](X).numpy(), one(X).numpy(), rtol=1e-4, atol=10 * atol)
        assert stacked[g].training_info_["n_train"] == int(masks[g].sum())
        assert stacked[g].training_info_["steps"] == one.training_info_["steps"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_stacked_mlp_equals_one_by_one_with_unequal_subsets(optimizer):
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.normal(size=(150, 7)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, 150))
    masks = np.zeros((3, 150), dtype=bool)
    masks[0, :75] = True  # 75 examples: 3 batches of 32 (last one 11)
    masks[1, rng.permutation(150)[:40]] = True  # 40: 2 batches, ends first
    masks[2, :] = True  # 150: 5 batches
    settings = TrainSettings(optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 3e-3, epochs=4, batch_size=32,
                             schedule="cosine", weight_decay=1e-3, label_smoothing=0.1)
    factory = lambda: MLP(7, 3, hidden=(16, 8))  # noqa: E731
    seeds = [11, 12, 13]
    stacked = train_stacked(factory, X, y, masks, seeds, settings=settings)
    _assert_same_models(stacked, X, y, masks, seeds, factory, settings, atol=1e-5)
    # models really differ from each other (own init, data and order) and really trained
    w = [m.net[0].weight.detach() for m in stacked]
    assert not torch.allclose(w[0], w[1])
    fresh = factory()
    assert stacked[2].training_info_["mode"] == "stacked"
    assert not torch.allclose(fresh.net[0].weight, w[2])


def test_stacked_cnn_with_augmentation_equals_one_by_one():
    rng = np.random.default_rng(1)
    X = torch.from_numpy(rng.random((60, 12, 12)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 4, 60))
    masks = rng.random((3, 60)) < 0.5
    settings = TrainSettings(optimizer="sgd", lr=0.05, momentum=0.9, epochs=3, batch_size=16,
                             augmentation="flip_shift", max_shift=2)
    factory = lambda: SmallCNN(1, 4, image_size=12, width=3)  # noqa: E731
    seeds = [5, 6, 7]
    stacked = train_stacked(factory, X, y, masks, seeds, settings=settings)
    _assert_same_models(stacked, X, y, masks, seeds, factory, settings, atol=1e-5)


def test_stacked_standardisation_per_model():
    rng = np.random.default_rng(2)
    X = torch.from_numpy((rng.normal(size=(80, 4)) * 10 + 3).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, 80))
    masks = rng.random((2, 80)) < 0.6
    mu = torch.stack([X[m].mean(0) for m in masks])
    sd = torch.stack([X[m].std(0) for m in masks])
    settings = TrainSettings(epochs=2, batch_size=16, lr=0.05)
    factory = lambda: MLP(4, 2, hidden=(8,))  # noqa: E731
    stacked = train_stacked(factory, X, y, masks, [1, 2], settings=settings, standardize=(mu, sd))
    for g, seed in enumerate([1, 2]):
        one = train_one(factory, X[masks[g]], y[masks[g]], seed=seed, settings=settings, standardize=(mu[g], sd[g]))
        for a, b in zip(one.parameters(), stacked[g].parameters()):
            np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), atol=1e-5)


def test_batch_plan_is_seeded_and_covers_each_epoch():
    s = TrainSettings(epochs=3, batch_size=4, augmentation="flip_shift", max_shift=1)
    a, b, c = batch_plan(10, s, 7), batch_plan(10, s, 7), batch_plan(10, s, 8)
    assert len(a) == 3 * 3
    assert [len(i) for i, _, _ in a[:3]] == [4, 4, 2]
    for epoch in range(3):
        seen = torch.cat([i for i, _, _ in a[3 * epoch : 3 * epoch + 3]])
        assert sorted(seen.tolist()) == list(range(10))
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) and torch.equal(x[2], y[2]) for x, y in zip(a, b))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, c))
    assert all(int(sh.abs().max()) <= 1 for _, _, sh in a)


def test_augment_batch_matches_per_example_reference():
    from miaudit.models.torch import shift

    x = torch.arange(3 * 2 * 5 * 5, dtype=torch.float32).reshape(3, 2, 5, 5)
    flip = torch.tensor([True, False, True])
    shifts = torch.tensor([[1, 0], [-2, 1], [0, -1]])
    got = augment_batch(x, flip, shifts, max_shift=2)
    for i in range(3):
        xi = x[i : i + 1].flip(-1) if flip[i] else x[i : i + 1]
        ref = shift(int(shifts[i, 0]), int(shifts[i, 1]))(xi)
        assert torch.equal(got[i : i + 1], ref)
    assert augment_batch(x, None, None, max_shift=2) is x
    with pytest.raises(InputError, match="augmentation: expected image batches"):
        augment_batch(torch.zeros(3, 4), flip, shifts, max_shift=2)


def test_lr_schedule():
    s = TrainSettings(lr=0.2, schedule="cosine")
    assert lr_at(s, 0, 10) == pytest.approx(0.2)
    assert lr_at(s, 5, 10) == pytest.approx(0.1)
    assert lr_at(TrainSettings(lr=0.2), 9, 10) == 0.2


def test_settings_errors_listed_together():
    with pytest.raises(ConfigError, match=r"optimizer: expected one of sgd, adam, got 'rmsprop'; .*epochs: expected an int >= 1"):
        TrainSettings(optimizer="rmsprop", epochs=0)
    with pytest.raises(ConfigError, match="lr: expected a finite number > 0"):
        TrainSettings(lr=-1.0)
    with pytest.raises(ConfigError, match="augmentation: expected none"):
        TrainSettings(augmentation="mixup")
    with pytest.raises(ConfigError, match=r"schedule: expected one of constant, cosine"):
        TrainSettings(schedule="step")


def test_stacked_input_errors():
    X, y = torch.zeros(6, 3), torch.zeros(6, dtype=torch.long)
    s = TrainSettings(epochs=1)
    f = lambda: MLP(3, 2)  # noqa: E731
    with pytest.raises(InputError, match=r"masks: expected a bool array of shape \(2, 6\)"):
        train_stacked(f, X, y, np.ones((3, 6), bool), [1, 2], settings=s)
    masks = np.ones((2, 6), bool)
    masks[1] = False
    with pytest.raises(InputError, match=r"masks\[1\]: model 1 \(seed 2\) has no training example"):
        train_stacked(f, X, y, masks, [1, 2], settings=s)

    class WithBN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm1d(3)
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(self.bn(x))

    with pytest.raises(ConfigError, match="modules with buffers"):
        train_stacked(WithBN, X, y, np.ones((2, 6), bool), [1, 2], settings=s)


def test_cnn_trains_channels_last_on_cpu_with_the_same_result(monkeypatch):
    """Conv models train in the channels-last layout on the CPU (faster); same models up to float rounding,
    handed back in the ordinary layout."""
    import miaudit.training.stacked as stacked

    rng = np.random.default_rng(4)
    X = torch.from_numpy(rng.normal(size=(96, 12, 12)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 3, 96))
    settings = TrainSettings(optimizer="sgd", lr=0.05, momentum=0.9, epochs=3, batch_size=32)

    def factory():
        return SmallCNN(n_classes=3, image_size=12, width=4)

    seen = []
    real = stacked._fast_layout
    monkeypatch.setattr(stacked, "_fast_layout", lambda m, d: seen.append(real(m, d)) or seen[-1])
    fast = train_one(factory, X, y, seed=2, settings=settings)
    assert seen and seen[0].features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(p.is_contiguous() for p in fast.parameters())
    monkeypatch.setattr(stacked, "_fast_layout", lambda m, d: m)
    plain = train_one(factory, X, y, seed=2, settings=settings)
    for (name, a), b in zip(plain.named_parameters(), fast.parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    assert stacked._fast_layout(MLP(7, 3), torch.device("cpu")).net[0].weight.is_contiguous()
