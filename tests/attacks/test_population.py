"""Population threshold attacks: scores equal the signed, query-averaged signal (brute force)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from miaudit import signals
from miaudit._errors import InputError
from miaudit.attacks import attack_class, get_attack
from miaudit.attacks.population import (
    ConfidenceAttack,
    EntropyAttack,
    LossAttack,
    ModifiedEntropyAttack,
    PopulationAttack,
    ScaledLogitAttack,
)
from miaudit.data import SignalBundle

NAMES = ["loss", "confidence", "entropy", "modified_entropy", "scaled_logit"]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _brute(name: str, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed signal per example, looping over examples and queries with textbook formulas."""
    out = np.zeros(len(y))
    for i in range(len(y)):
        vals = []
        for a in range(z.shape[1]):
            p = _softmax(z[i, a])
            py = p[y[i]]
            others = np.delete(p, y[i])
            v = {
                "loss": np.log(py),  # -loss
                "confidence": py,
                "entropy": np.sum(p * np.log(p)),  # -entropy
                "modified_entropy": (1 - py) * np.log(py) + np.sum(others * np.log(1 - others)),  # -Mentr
                "scaled_logit": np.log(py) - np.log(others.sum()),
            }[name]
            vals.append(v)
        out[i] = np.mean(vals)
    return out


@pytest.fixture(scope="module")
def bundle() -> SignalBundle:
    rng = np.random.default_rng(0)
    z = rng.normal(scale=2.0, size=(60, 3, 4))
    return SignalBundle(labels=rng.integers(0, 4, size=60), target_logits=z)


@pytest.mark.parametrize("name", NAMES)
def test_score_is_signed_mean_signal(name, bundle):
    scores = get_attack(name).fit_score(bundle)
    assert scores.shape == (60,) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, _brute(name, bundle.target_logits, bundle.labels), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_probability_input_gives_same_scores(name, bundle):
    probs = _softmax(bundle.target_logits)
    from_probs = SignalBundle(labels=bundle.labels, target_logits=signals.probs_to_logits(probs))
    np.testing.assert_allclose(get_attack(name).score(from_probs), get_attack(name).score(bundle), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_members_with_confident_outputs_rank_first(name):
    """Known answer: members predicted with p_y = 0.9, non-members with p_y = 0.4 -> AUC 1."""
    n = 20
    is_member = np.arange(n) < n // 2
    p = np.where(is_member[:, None], [0.9, 0.05, 0.05], [0.4, 0.3, 0.3])
    b = SignalBundle(labels=np.zeros(n, dtype=np.int64), target_logits=np.log(p)[:, None, :])
    scores = get_attack(name).fit_score(b)
    assert scores[is_member].min() > scores[~is_member].max()


def test_one_class_per_signal_sharing_one_implementation():
    classes = [LossAttack, ConfidenceAttack, EntropyAttack, ModifiedEntropyAttack, ScaledLogitAttack]
    for cls, name in zip(classes, NAMES):
        assert attack_class(name) is cls
        assert issubclass(cls, PopulationAttack) and cls.signal == name and cls.requires == frozenset()
        assert cls.score is PopulationAttack.score
        assert cls.__doc__ and cls.description
        assert repr(cls()) == f"{cls.__name__}()"
        assert type(pickle.loads(pickle.dumps(cls()))) is cls


def test_fit_learns_nothing(bundle):
    attack = LossAttack()
    assert attack.fit(bundle) is attack
    assert not [k for k in vars(attack) if k.endswith("_")]


def test_bad_bundle_shape():
    b = SignalBundle(labels=np.zeros(3, dtype=np.int64), target_logits=np.zeros((3, 4)))
    with pytest.raises(InputError, match=r"loss: bundle.target_logits: expected shape \(N, A, C\), got \(3, 4\)"):
        get_attack("loss").score(b)
    b = SignalBundle(labels=np.zeros(2, dtype=np.int64), target_logits=np.zeros((3, 1, 4)))
    with pytest.raises(InputError, match=r"entropy: bundle.labels: expected shape \(3,\) matching target_logits, got \(2,\)"):
        get_attack("entropy").score(b)


def test_label_out_of_range_is_input_error():
    b = SignalBundle(labels=np.array([0, 5]), target_logits=np.zeros((2, 1, 3)))
    with pytest.raises(InputError, match=r"labels: expected class indices in \[0, 3\)"):
        get_attack("confidence").score(b)


# ---------------------------------------------------------------------------------------------
# label-free attacks on raw scores
# ---------------------------------------------------------------------------------------------
def test_score_attacks_known_values():
    s = np.array([[[0.1, 0.9], [0.3, 0.5]], [[0.5, 0.5], [0.4, 0.6]], [[0.2, 0.8], [0.2, 0.8]]])  # (3, A=2, 2)
    bundle = SignalBundle.from_arrays(target_scores=s)
    np.testing.assert_allclose(get_attack("max_score").fit_score(bundle), [0.7, 0.55, 0.8])
    np.testing.assert_allclose(get_attack("score_spread").fit_score(bundle), [0.5, 0.1, 0.6])
    flat = s.reshape(-1, 2)
    med = np.median(flat, axis=0)
    iqr = np.subtract(*np.percentile(flat, [75, 25], axis=0))
    expected = (np.abs(s - med) / iqr).max(axis=-1).mean(axis=1)
    np.testing.assert_allclose(get_attack("score_extremity").fit_score(bundle), expected)
    for name in ("max_score", "score_spread", "score_extremity"):
        cls = attack_class(name)
        assert not cls.needs_labels and cls.output_kinds == frozenset({"scores"}) and cls.requires == frozenset()


def test_score_extremity_constant_column():
    """A column without spread (IQR and standard deviation 0) is measured in its own units, never divided by 0."""
    s = np.column_stack([np.full(8, 0.5), np.linspace(0, 1, 8)])
    scores = get_attack("score_extremity").fit_score(SignalBundle.from_arrays(target_scores=s))
    assert np.all(np.isfinite(scores)) and scores[0] == scores[-1] > scores[3]


def test_article_table_extremity_near_optimal():
    """The article's table: the distance from each column's centre finds nearly every member the optimum finds."""
    from .._worlds import article_table

    s, is_member = article_table(1000)
    scores = get_attack("score_extremity").fit_score(SignalBundle.from_arrays(target_scores=s))
    flagged = scores > scores[~is_member].max()  # FPR 0
    optimum = ((s < 0.2) | (s > 0.8)).any(axis=1)
    assert flagged[is_member].mean() >= 0.40 and flagged[is_member].mean() >= 0.95 * optimum[is_member].mean()
    assert not optimum[~is_member].any()
