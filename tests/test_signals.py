"""Signals against direct float64 formulas, high-precision references, and shape contracts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from miaudit import signals as sig
from miaudit._errors import InputError

LABELLED = ["loss", "confidence", "modified_entropy", "scaled_logit", "hinge"]
ALL = LABELLED + ["entropy"]


def _direct(name: str, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Textbook formulas on (N, C) float64 logits of moderate scale."""
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    py = p[rows, y]
    rest = p.copy()
    rest[rows, y] = 0.0
    if name == "loss":
        return -np.log(py)
    if name == "confidence":
        return py
    if name == "entropy":
        return -(p * np.log(p)).sum(axis=1)
    if name == "modified_entropy":
        return -(1 - py) * np.log(py) - (rest * np.log(1 - rest)).sum(axis=1)
    if name == "scaled_logit":
        return np.log(py) - np.log(rest.sum(axis=1))
    if name == "hinge":
        zr = z.copy()
        zr[rows, y] = -np.inf
        return z[rows, y] - zr.max(axis=1)
    raise AssertionError(name)


def _fn(name: str):
    return getattr(sig, name)


@pytest.fixture
def world() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(200, 7))
    y = rng.integers(0, 7, size=200)
    return z, y


@pytest.mark.parametrize("name", ALL)
def test_matches_direct_formula(world, name):
    z, y = world
    got = _fn(name)(z, y)
    assert got.shape == (200,) and got.dtype == np.float64
    np.testing.assert_allclose(got, _direct(name, z, y), rtol=1e-10, atol=1e-12)


def test_log_softmax_matches_direct(world):
    z, _ = world
    ref = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(sig.log_softmax(z), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(sig.log_softmax(z)).sum(axis=1), 1.0, rtol=1e-14)


@pytest.mark.parametrize("name", ["loss", "confidence", "entropy", "modified_entropy", "scaled_logit"])
def test_probabilities_and_logits_agree(world, name):
    z, y = world
    p = np.exp(sig.log_softmax(z))
    np.testing.assert_allclose(_fn(name)(sig.probs_to_logits(p), y), _fn(name)(z, y), rtol=1e-8, atol=1e-10)


def test_signals_are_shift_invariant(world):
    z, y = world
    for name in ["loss", "confidence", "entropy", "modified_entropy", "scaled_logit", "hinge"]:
        np.testing.assert_allclose(_fn(name)(z + 1234.5, y), _fn(name)(z, y), rtol=1e-9, atol=1e-9)


def test_probs_to_logits_zero_is_finite():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    z = sig.probs_to_logits(p)
    assert np.all(np.isfinite(z)) and z.dtype == np.float64
    assert z[0, 1] < -700
    np.testing.assert_allclose(sig.confidence(z, np.array([0, 1])), [1.0, 0.5])
    assert np.all(np.isfinite(sig.loss(z, np.array([1, 2]))))  # log(0) stays finite


@pytest.mark.parametrize("name", ALL)
def test_extreme_logits_stay_finite(name):
    rng = np.random.default_rng(1)
    z = rng.normal(scale=1e4, size=(500, 10))
    z[:50, 3] = 3e4  # very confident rows
    y = rng.integers(0, 10, size=500)
    out = _fn(name)(z, y)
    assert np.all(np.isfinite(out)), name


def test_extreme_logits_known_values():
    z = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, -3e4]])
    y = np.array([0, 0])
    np.testing.assert_allclose(sig.loss(z, y), [0.0, 1e4])
    np.testing.assert_allclose(sig.scaled_logit(z, y), [1e4, -1e4])
    np.testing.assert_allclose(sig.hinge(z, y), [1e4, -1e4])
    np.testing.assert_allclose(sig.entropy(z), [0.0, 0.0], atol=1e-300)
    np.testing.assert_allclose(sig.modified_entropy(z, y), [0.0, 2e4])


def test_high_precision_against_mpmath():
    """Confident members: loss ~1e-13 and Mentr ~1e-26 keep full relative precision."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    rows = [[30.0, 0.0, 0.0], [12.0, -3.0, 1.0], [-2.0, 40.0, 1.0], [0.1, 0.2, 0.3], [60.0, 1.0, -5.0]]
    z = np.array(rows)
    y = np.array([0, 0, 1, 2, 0])
    for row, yy, loss, mentr, phi, ent in zip(
        rows, y, sig.loss(z, y), sig.modified_entropy(z, y), sig.scaled_logit(z, y), sig.entropy(z)
    ):
        e = [mp.e ** mp.mpf(v) for v in row]
        p = [v / sum(e) for v in e]
        ref_loss = -mp.log(p[yy])
        ref_mentr = -(1 - p[yy]) * mp.log(p[yy]) - sum(p[i] * mp.log(1 - p[i]) for i in range(3) if i != yy)
        ref_phi = mp.log(p[yy]) - mp.log(1 - p[yy])
        ref_ent = -sum(q * mp.log(q) for q in p)
        assert loss == pytest.approx(float(ref_loss), rel=1e-12)
        assert mentr == pytest.approx(float(ref_mentr), rel=1e-9)
        assert phi == pytest.approx(float(ref_phi), rel=1e-12)
        assert ent == pytest.approx(float(ref_ent), rel=1e-9)


def test_confident_members_stay_ordered():
    """Loss keeps the order of confident members where 1 - p_y rounds to 0 (confidence ties)."""
    z = np.zeros((20, 3))
    z[:, 0] = np.linspace(20.0, 40.0, 20)
    y = np.zeros(20, dtype=int)
    assert np.all(np.diff(sig.loss(z, y)) < 0)
    assert np.all(np.diff(sig.modified_entropy(z, y)) < 0)
    assert np.all(np.diff(sig.scaled_logit(z, y)) > 0)


@pytest.mark.parametrize("name", ALL)
def test_shapes_and_broadcast_labels(name):
    rng = np.random.default_rng(2)
    k, n, a, c = 3, 11, 2, 5
    z4 = rng.normal(size=(k, n, a, c))
    y = rng.integers(0, c, size=n)
    f = _fn(name)
    out4 = f(z4, y[None, :, None])
    assert out4.shape == (k, n, a) and out4.dtype == np.float64
    out3 = f(z4[0], y[:, None])
    assert out3.shape == (n, a)
    np.testing.assert_allclose(out3, out4[0])
    out2 = f(z4[0, :, 1], y)
    np.testing.assert_allclose(out2, out4[0, :, 1])
    # element-wise equals the 2-D formula
    flat = _direct(name, z4.reshape(-1, c), np.broadcast_to(y[None, :, None], (k, n, a)).reshape(-1))
    np.testing.assert_allclose(out4.reshape(-1), flat, rtol=1e-10, atol=1e-12)


def test_float32_input_gives_float64():
    z = np.random.default_rng(3).normal(size=(4, 1, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 0])
    for name in ALL:
        assert _fn(name)(z, y[:, None]).dtype == np.float64


@settings(max_examples=60, deadline=None)
@given(
    z=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 6)),
                 elements=st.floats(-1e4, 1e4, allow_nan=False)),
    data=st.data(),
)
def test_properties(z, data):
    n, c = z.shape
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    loss, conf = sig.loss(z, y), sig.confidence(z, y)
    ent, mentr, phi = sig.entropy(z), sig.modified_entropy(z, y), sig.scaled_logit(z, y)
    for v in (loss, conf, ent, mentr, phi, sig.hinge(z, y)):
        assert np.all(np.isfinite(v))
    assert np.all(loss >= 0) and np.all((conf >= 0) & (conf <= 1))
    assert np.all(ent >= 0) and np.all(ent <= np.log(c) + 1e-9)
    assert np.all(mentr >= 0)
    # phi = log(p/(1-p)) and loss = -log p are consistent: loss = softplus(-phi)
    np.testing.assert_allclose(loss, np.logaddexp(0, -phi), rtol=1e-12, atol=1e-300)
    # logsumexp bounds: hinge - log(C - 1) <= phi <= hinge
    tol = 1e-9 * (1.0 + np.abs(z).max())
    h = sig.hinge(z, y)
    assert np.all(phi <= h + tol) and np.all(phi >= h - np.log(c - 1) - tol)


def test_signals_table_signs():
    """``sign * signal`` is higher for a confident correct prediction than for a wrong one."""
    z = np.array([[5.0, 0.0, 0.0], [0.0, 1.0, 0.5]])
    y = np.array([0, 0])
    for name, (fn, sgn) in sig.SIGNALS.items():
        v = sgn * fn(z, y)
        assert v[0] > v[1], name


# ---------------------------------------------------------------------------------------------
# error paths
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LABELLED)
def test_label_out_of_range(name):
    with pytest.raises(InputError, match=r"labels: expected class indices in \[0, 3\), got values in \[0, 3\]"):
        _fn(name)(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(InputError, match=r"labels: expected class indices"):
        _fn(name)(np.zeros((2, 3)), np.array([-1, 0]))


def test_label_not_integer():
    with pytest.raises(InputError, match="labels: expected integer class indices"):
        sig.loss(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(InputError, match="labels: expected integer class indices"):
        sig.loss(np.zeros((2, 3)), np.array(["a", "b"]))
    # integral floats are accepted
    np.testing.assert_allclose(sig.loss(np.zeros((2, 3)), np.array([0.0, 2.0])), np.log(3))


def test_label_shape_mismatch():
    with pytest.raises(InputError, match=r"labels: shape \(3,\) does not broadcast .* labels\[:, None\]"):
        sig.loss(np.zeros((2, 1, 3)), np.array([0, 1, 2]))


def test_logits_bad_dtype_and_shape():
    with pytest.raises(InputError, match="logits: expected a real-valued array"):
        sig.entropy(np.array([["a", "b"]]))
    with pytest.raises(InputError, match=r"logits: expected an array of shape \(\.\.\., C\)"):
        sig.entropy(np.float64(1.0))
    with pytest.raises(InputError, match=r"C >= 2 classes, got shape \(4, 1\)"):
        sig.scaled_logit(np.zeros((4, 1)), np.zeros(4, dtype=int))
    with pytest.raises(InputError, match=r"C >= 2 classes"):
        sig.hinge(np.zeros((4, 1)), np.zeros(4, dtype=int))


def test_minus_inf_logit_of_another_class():
    """log 0 for a class other than y is a valid logit: everything stays finite and exact."""
    z = np.array([[0.0, -np.inf, 1.0]])
    y = np.array([0])
    p = np.array([1.0, 0.0, np.e]) / (1.0 + np.e)
    assert sig.loss(z, y)[0] == pytest.approx(-np.log(p[0]))
    assert sig.scaled_logit(z, y)[0] == pytest.approx(-1.0)
    assert sig.entropy(z)[0] == pytest.approx(-(p[[0, 2]] * np.log(p[[0, 2]])).sum())
    mentr = -(1 - p[0]) * np.log(p[0]) - p[2] * np.log(1 - p[2])
    assert sig.modified_entropy(z, y)[0] == pytest.approx(mentr)
    np.testing.assert_allclose(np.exp(sig.log_softmax(z)), p[None])


# --------------------------------------------------------------------------------------------
# one scaled logit: the attacks' fast, clipped kernel against this reference version
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 3, 40])
def test_scaled_logit_kernel_and_features_agree_with_reference(n_classes):
    """``signals.scaled_logit`` (exact, unclipped) and the attacks' kernel ``ref_scaled_logit`` (used by
    the reference attacks and the attack features) agree, -inf logits included, up to the kernel's
    clipping to +-PHI_MAX (the one place where the scaled logit is clipped)."""
    from miaudit.attacks import _reference_stats as rs
    from miaudit.attacks._features import attack_features, feature_names

    rng = np.random.default_rng(n_classes)
    n, a = 12, 2
    z = rng.standard_normal((n, a, n_classes)) * 15
    y = rng.integers(0, n_classes, n)
    y[:4] = 1
    z[0, 0, 1] = -np.inf  # true class -inf: phi = -inf, clipped to -PHI_MAX
    z[1, 1, 0] = -np.inf  # another class -inf
    z[2, 0, :] = -np.inf  # every other class -inf: phi = +inf, clipped to +PHI_MAX
    z[2, 0, 1] = 3.0
    z[3, 1, :] = [1e4 if c == 1 else -1e4 for c in range(n_classes)]  # huge but finite
    want = sig.scaled_logit(z, y[:, None])
    assert want[0, 0] == -np.inf and want[2, 0] == np.inf
    clipped = np.clip(want, -rs.PHI_MAX, rs.PHI_MAX)
    for logits in (z, z.astype(np.float32)):
        ref = sig.scaled_logit(logits, y[:, None])
        got = rs.ref_scaled_logit(logits, y)
        assert got.dtype == np.float64 and got.shape == (n, a) and np.isfinite(got).all()
        np.testing.assert_allclose(got, np.clip(ref, -rs.PHI_MAX, rs.PHI_MAX), rtol=1e-12, atol=1e-12)
    assert rs.ref_scaled_logit(z, y)[0, 0] == -rs.PHI_MAX and rs.ref_scaled_logit(z, y)[2, 0] == rs.PHI_MAX
    # a (K, n, A, C) block with labels (n,) and with labels broadcast to (K, n)
    block = np.stack([z, z[::-1]])
    labels = np.stack([y, y[::-1]])
    np.testing.assert_allclose(rs.ref_scaled_logit(block, labels), np.stack([clipped, clipped[::-1]]), rtol=1e-12)
    np.testing.assert_allclose(rs.ref_scaled_logit(block[:1], y)[0], clipped, rtol=1e-12)
    # the attack features' scaled_logit column is the same function, averaged over queries
    col = feature_names(n_classes).index("scaled_logit")
    np.testing.assert_array_equal(attack_features(z, y)[:, col], rs.ref_scaled_logit(z, y).mean(axis=1))
    np.testing.assert_allclose(attack_features(z, y)[:, col], clipped.mean(axis=1), rtol=1e-12, atol=1e-12)
