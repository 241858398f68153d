"""Torch recipes' ``device`` (issue 12), tested on a machine WITHOUT a GPU: what can be checked on a CPU.

* the device spec is validated (``auto | cpu | cuda | cuda:N``) when the recipe is built (config errors);
* ``auto`` is the CPU here; ``cuda`` / ``cuda:N`` asked for without CUDA is an InputError naming the key and
  the fix, raised when a model trains (the driver of a Ray cluster may have no GPU while its workers do);
* ``device = "cpu"`` gives exactly the models of the default; training and querying leave the models on the CPU;
* GPU selection (model k on GPU ``k mod n_gpus``, an explicit ``cuda:N``, an index out of range) is checked
  with ``torch.cuda.is_available``/``device_count`` patched: only the choice of device is exercised, no
  tensor goes to a GPU. Training ON a GPU and the CPU-vs-GPU tolerance are not measurable here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from miaudit import ConfigError, InputError, TrainingError  # noqa: E402
from miaudit.models.torch import check_device, model_slot, resolve_device  # noqa: E402
from miaudit.training import model_seeds, train_models  # noqa: E402
from miaudit.training.torch_recipe import TorchRecipe  # noqa: E402

pytestmark = pytest.mark.torch

NO_CUDA = not torch.cuda.is_available()


def _data(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


def _recipe(**kw: object) -> TorchRecipe:
    return TorchRecipe("mlp", {"hidden": [16]}, n_classes=2, epochs=3, batch_size=32, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "CUDA", "", 0, None])
def test_bad_device_specs_are_config_errors(bad: object) -> None:
    with pytest.raises(InputError, match=r"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        check_device(bad)
    with pytest.raises(ConfigError, match=r"model: .*device: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        _recipe(device=bad)


def test_good_specs_and_device_not_in_the_cache_key() -> None:
    for good in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert check_device(good) == good
    assert _recipe(device="cpu").spec() == _recipe(device="cuda:1").spec() == _recipe().spec()
    assert TorchRecipe.from_spec({"kind": "torch", "n_classes": 2, "device": "cpu"}).device == "cpu"


@pytest.mark.skipif(not NO_CUDA, reason="checks the behaviour of a machine without CUDA")
def test_without_cuda_auto_is_the_cpu_and_cuda_is_a_clear_error(tmp_path: Path) -> None:
    assert resolve_device("auto") == torch.device("cpu") == resolve_device("cpu")
    for dev in ("cuda", "cuda:1"):
        with pytest.raises(InputError, match=rf"device: '{dev}' was asked for but CUDA is not available here"):
            resolve_device(dev)
    X, y = _data()
    with pytest.raises(InputError, match=r"\[model\] device: 'cuda' was asked for but CUDA is not available"):
        _recipe(device="cuda").train(X, y, seed=1)
    # through the runner: the model fails with that message (exit 3 from the CLI), nothing cached
    m = np.zeros((2, len(y)), bool)
    m[0, ::2] = m[1, 1::2] = True
    with pytest.raises(TrainingError, match=r"InputError: \[model\] device: 'cuda' was asked for but CUDA is not"):
        train_models(_recipe(device="cuda"), X, y, m, seeds=model_seeds(0, 2), run_dir=tmp_path, jobs=1)


def test_cpu_device_gives_the_default_models_and_leaves_them_on_the_cpu() -> None:
    X, y = _data()
    masks = np.zeros((2, len(y)), bool)
    masks[0, ::2] = masks[1, 1::2] = True
    a = _recipe().train_group(X, y, masks, [3, 4])
    b = _recipe(device="cpu").train_group(X, y, masks, [3, 4])
    one = _recipe(device="cpu", stack=False).train(X[masks[0]], y[masks[0]], seed=3)
    for ma, mb in zip(a, b):
        assert all(p.device.type == "cpu" for p in mb.parameters())
        assert mb.training_info_["device"] == "cpu" and mb.training_info_["mode"] == "stacked"
        for pa, pb in zip(ma.parameters(), mb.parameters()):
            assert torch.equal(pa, pb)
    assert one.training_info_ == {**one.training_info_, "device": "cpu", "mode": "one_by_one"}
    la = _recipe(device="cpu").predict_logits(b[0], X)
    assert np.array_equal(la, _recipe().predict_logits(a[0], X))
    assert all(p.device.type == "cpu" for p in b[0].parameters())  # moved back after querying


def test_gpu_selection_spreads_models_over_visible_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the choice is checked: torch.cuda's availability and count are patched, nothing runs on a GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert resolve_device("auto") == torch.device("cuda", 0)
    picked = []
    for k in range(7):
        with model_slot(k):
            picked.append(resolve_device("cuda").index)
            assert resolve_device("cuda:1") == torch.device("cuda", 1)  # an explicit index wins
            assert resolve_device("cpu") == torch.device("cpu")
    assert picked == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(InputError, match=r"device: 'cuda:3' was asked for but this machine has 3 visible GPU"):
        resolve_device("cuda:3")


class _SlotRecipe:
    """Wraps a scikit-learn recipe; records the GPU slot each model trains under."""

    def __init__(self) -> None:
        from miaudit.training import SklearnRecipe

        self.inner = SklearnRecipe("sklearn.linear_model.LogisticRegression", {}, n_classes=2)
        self.n_classes = 2
        self.slots: list[tuple[int, int]] = []

    def spec(self) -> dict[str, object]:
        return self.inner.spec()

    def train(self, X: np.ndarray, y: np.ndarray, *, seed: int) -> object:
        from miaudit.models.torch import _SLOT

        self.slots.append((seed, _SLOT.get()))
        return self.inner.train(X, y, seed=seed)

    def predict_logits(self, model: object, X: np.ndarray) -> np.ndarray:
        return self.inner.predict_logits(model, X)


def test_the_runner_gives_model_k_the_gpu_slot_k(tmp_path: Path) -> None:
    X, y = _data()
    m = np.zeros((4, len(y)), bool)
    for k in range(4):
        m[k, k::2] = True
    seeds = model_seeds(1, 4)
    rec = _SlotRecipe()
    train_models(rec, X, y, m, seeds=seeds, run_dir=tmp_path, jobs=1)
    assert rec.slots == [(seeds[k], k) for k in range(4)]
