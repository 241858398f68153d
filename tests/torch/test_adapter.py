"""miaudit.models.torch: logits adapter, queries, safe weight loading."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from miaudit import InputError, MissingDependencyError  # noqa: E402
from miaudit.models._nets import MLP, SmallCNN  # noqa: E402
from miaudit.models.torch import hflip, load_weights, parse_query, shift, torch_logits  # noqa: E402

pytestmark = pytest.mark.torch


class Recorder(torch.nn.Module):
    """Linear model that records its mode and grad state at every forward."""

    def __init__(self, f: int = 4, c: int = 3) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(f, c)
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.lin(x.reshape(x.shape[0], -1))


def test_shapes_dtype_and_batching_do_not_change_values():
    torch.manual_seed(0)
    m = MLP(5, 3, hidden=(8,))
    X = np.random.default_rng(0).normal(size=(37, 5))
    a = torch_logits(m, X, batch_size=512)
    b = torch_logits(m, X, batch_size=4)
    assert a.shape == (37, 1, 3) and a.dtype == np.float64
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    with torch.no_grad():
        ref = m(torch.tensor(X, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(a[:, 0], ref, atol=1e-6)


def test_eval_mode_no_grad_and_mode_restored():
    m = Recorder()
    m.train()
    out = torch_logits(m, np.ones((10, 4)), batch_size=3)
    assert out.shape == (10, 1, 3)
    assert m.seen and all(not training and not grad for training, grad in m.seen)
    assert m.training  # restored
    assert all(p.grad is None for p in m.parameters())


def test_dropout_is_off_at_inference():
    torch.manual_seed(0)
    m = MLP(6, 2, hidden=(64,), dropout=0.5)
    X = np.random.default_rng(1).normal(size=(20, 6))
    np.testing.assert_array_equal(torch_logits(m, X), torch_logits(m, X))


def test_queries_identity_first_and_known_values():
    torch.manual_seed(0)
    m = SmallCNN(1, 4, image_size=8, width=2)
    X = np.random.default_rng(0).random((6, 8, 8)).astype(np.float32)
    out = torch_logits(m, X, queries=["hflip", shift(1, 0), "shift:0,-2"])
    assert out.shape == (6, 4, 4)
    xt = torch.from_numpy(X)
    with torch.no_grad():
        expect = [m(xt), m(xt.flip(-1)), m(shift(1, 0)(xt)), m(shift(0, -2)(xt))]
    for a in range(4):
        np.testing.assert_allclose(out[:, a], expect[a].double().numpy(), atol=1e-6)


def test_shift_and_hflip_against_numpy():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    got = shift(2, -1)(x).numpy()
    ref = np.zeros_like(x.numpy())
    ref[..., 0:3, 2:5] = x.numpy()[..., 1:4, 0:3]  # right by 2, up by 1
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(hflip(x).numpy(), x.numpy()[..., ::-1])
    np.testing.assert_array_equal(shift(0, 0)(x).numpy(), x.numpy())
    assert not shift(9, 0)(x).any()


def test_parse_query_names_and_errors():
    assert parse_query("hflip") is hflip
    assert parse_query("shift(-1, 2)") == shift(-1, 2)
    assert parse_query("shift:3,0") == shift(3, 0)
    fn = parse_query("numpy.negative")
    assert callable(fn)
    with pytest.raises(InputError, match="unknown query 'rotate'"):
        parse_query("rotate")
    with pytest.raises(InputError, match="expected a callable or a name"):
        parse_query(3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="dx must be an int"):
        shift(0.5, 0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="shift query: expected image batches"):
        shift(1, 0)(torch.zeros(3, 4))


def test_adapter_errors():
    m = MLP(4, 3)
    with pytest.raises(InputError, match="module: expected a torch.nn.Module"):
        torch_logits(object(), np.zeros((2, 4)))
    with pytest.raises(InputError, match="batch_size: expected an int >= 1"):
        torch_logits(m, np.zeros((2, 4)), batch_size=0)
    with pytest.raises(InputError, match="X: expected a numeric array"):
        torch_logits(m, np.array([["a"] * 4] * 2, dtype=object))

    class Flat(torch.nn.Module):
        def forward(self, x):
            return x.sum(dim=1)

    with pytest.raises(InputError, match=r"module: expected logits of shape \(2, C\)"):
        torch_logits(Flat(), np.zeros((2, 4)))


def test_load_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    a, b = MLP(4, 3, hidden=(5,)), MLP(4, 3, hidden=(5,))
    torch.save(a.state_dict(), tmp_path / "w.pt")
    torch.save({"model_state_dict": a.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    X = np.random.default_rng(0).normal(size=(7, 4))
    for name in ("w.pt", "ckpt.pt"):
        load_weights(b, tmp_path / name)
        np.testing.assert_array_equal(torch_logits(a, X), torch_logits(b, X))


class Evil:
    """Any class instance: unpickling it could run code, so weights_only must refuse it."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_load_weights_refuses_pickled_objects_and_bad_files(tmp_path):
    m = MLP(4, 3, hidden=(5,))
    torch.save({"net.0.weight": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="cannot be loaded with weights_only=True"):
        load_weights(m, tmp_path / "evil.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(InputError, match="not a state dict of tensors"):
        load_weights(m, tmp_path / "tensor.pt")
    torch.save(MLP(4, 3, hidden=(6,)).state_dict(), tmp_path / "other.pt")
    with pytest.raises(InputError, match="does not fit the module"):
        load_weights(m, tmp_path / "other.pt")
    with pytest.raises(InputError, match="does not exist"):
        load_weights(m, tmp_path / "missing.pt")
    with pytest.raises(InputError, match="is a directory"):
        load_weights(m, tmp_path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot be loaded with weights_only=True"):
        load_weights(m, tmp_path / "junk.pt")


def test_load_weights_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    torch.manual_seed(1)
    a, b = MLP(4, 3, hidden=(5,)), MLP(4, 3, hidden=(5,))
    st.save_file(a.state_dict(), str(tmp_path / "w.safetensors"))
    load_weights(b, tmp_path / "w.safetensors")
    X = np.ones((2, 4))
    np.testing.assert_array_equal(torch_logits(a, X), torch_logits(b, X))


def test_import_miaudit_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import miaudit, miaudit.models, miaudit.training, miaudit.models.torch as mt\n"
        "from miaudit import MissingDependencyError\n"
        "try:\n    mt.torch_logits(None, [[0.0]])\nexcept MissingDependencyError as e:\n"
        "    assert 'miaudit[torch]' in str(e); print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert issubclass(MissingDependencyError, ImportError)
