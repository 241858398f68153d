"""BASE (Lassila, Östman and Ngo 2025): ``base`` and ``base_offline`` against a brute-force re-computation of
the formula, its invariances, worlds with a known answer and its error paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from miaudit._errors import InputError
from miaudit.attacks import attack_class, available_attacks, get_attack
from miaudit.data import SignalBundle

from .._worlds import auc, make_world

NAMES = ["base", "base_offline"]


def _random_bundle(seed: int = 0, n: int = 7, k: int = 5, a: int = 2, c: int = 4) -> SignalBundle:
    """A small random bundle; every example has a different number of IN references (0 .. K)."""
    rng = np.random.default_rng(seed)
    ref_is_member = rng.random((k, n)) < 0.5
    ref_is_member[:, 0] = True  # no OUT reference
    ref_is_member[:, 1] = False  # no IN reference
    ref_is_member[:, 2] = [True] + [False] * (k - 1)  # 1 IN, K - 1 OUT
    return SignalBundle(
        labels=rng.integers(0, c, n),
        target_logits=rng.normal(0, 3, (n, a, c)),
        ref_logits=rng.normal(0, 3, (k, n, a, c)),
        ref_is_member=ref_is_member,
    )


def _log_conf(z: np.ndarray, y: int, t: float) -> float:
    """``log_softmax(z / t)[y]`` with plain math (no numpy reductions)."""
    zs = [float(v) / t for v in z]
    m = max(zs)
    return zs[y] - (m + math.log(sum(math.exp(v - m) for v in zs)))


def _lme(values: list[float]) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values) / len(values))


def _brute(bundle: SignalBundle, t: float, offline: bool, s: float) -> np.ndarray:
    k, n, a, _ = bundle.ref_logits.shape
    out = np.zeros(n)
    # examples without OUT references borrow log(mean over the others of exp(t_j)), per query
    fills = []
    for q in range(a):
        have = [
            _lme([_log_conf(bundle.ref_logits[j, i, q], int(bundle.labels[i]), t)
                  for j in range(k) if not bundle.ref_is_member[j, i]])
            for i in range(n) if not bundle.ref_is_member[:, i].all()
        ]
        fills.append(_lme(have))
    for i in range(n):
        y = int(bundle.labels[i])
        per_query = []
        for q in range(a):
            c_t = _log_conf(bundle.target_logits[i, q], y, t)
            refs = [j for j in range(k) if not (offline and bundle.ref_is_member[j, i])]
            thr = _lme([_log_conf(bundle.ref_logits[j, i, q], y, t) for j in refs]) if refs else fills[q]
            per_query.append(c_t - (s if offline else 1.0) * thr)
        out[i] = sum(per_query) / a
    return out


# --------------------------------------------------------------------------------------------
# known answers
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [2.0, 0.7, 1.0])
def test_online_equals_brute_force(temperature: float) -> None:
    b = _random_bundle(seed=1)
    got = get_attack("base", temperature=temperature).fit_score(b)
    np.testing.assert_allclose(got, _brute(b, temperature, offline=False, s=1.0), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("temperature", "scale"), [(2.0, 0.33), (3.5, 1.0), (0.5, 0.8)])
def test_offline_equals_brute_force(temperature: float, scale: float) -> None:
    b = _random_bundle(seed=2)
    assert (~b.ref_is_member).sum(0).tolist() != [b.ref_logits.shape[0] // 2] * b.n_examples  # uneven
    got = get_attack("base_offline", temperature=temperature, scale=scale).fit_score(b)
    np.testing.assert_allclose(got, _brute(b, temperature, offline=True, s=scale), rtol=1e-10, atol=1e-10)


def test_defaults_are_the_papers() -> None:
    assert get_attack("base").get_params() == {"temperature": 2.0, "chunk_size": None}
    assert get_attack("base_offline").get_params() == {"temperature": 2.0, "scale": 0.33, "chunk_size": None}
    b = _random_bundle(seed=3)
    np.testing.assert_array_equal(get_attack("base").fit_score(b), get_attack("base", temperature=2.0).fit_score(b))


def test_offline_with_every_reference_out_uses_all_of_them() -> None:
    """No IN reference anywhere: offline with scale 1 is the online attack."""
    b = _random_bundle(seed=4)
    b = SignalBundle(labels=b.labels, target_logits=b.target_logits, ref_logits=b.ref_logits,
                     ref_is_member=np.zeros_like(b.ref_is_member))
    np.testing.assert_allclose(get_attack("base_offline", scale=1.0).fit_score(b), get_attack("base").fit_score(b),
                               rtol=1e-12, atol=1e-12)


def test_no_out_reference_anywhere_scores_the_target_confidence() -> None:
    b = _random_bundle(seed=5)
    b = SignalBundle(labels=b.labels, target_logits=b.target_logits, ref_logits=b.ref_logits,
                     ref_is_member=np.ones_like(b.ref_is_member))
    att = get_attack("base_offline", temperature=2.0)
    got = att.fit_score(b)
    want = [np.mean([_log_conf(b.target_logits[i, q], int(b.labels[i]), 2.0) for q in range(2)])
            for i in range(b.n_examples)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isnan(att.exposure_["mean_out"]).all() and (att.exposure_["n_out"] == 0).all()


def test_probabilities_are_tempered_like_logits() -> None:
    """A bundle of probabilities (log-probabilities inside) scores as its logits: softmax(log p / T) is
    p^(1/T) renormalised, the tempered softmax of the logits."""
    b = _random_bundle(seed=6)

    def probs(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    bp = SignalBundle.from_arrays(labels=b.labels, target_probs=probs(b.target_logits),
                                  ref_probs=probs(b.ref_logits), ref_is_member=b.ref_is_member)
    for name in NAMES:
        np.testing.assert_allclose(get_attack(name).fit_score(bp), get_attack(name).fit_score(b), rtol=1e-5,
                                   atol=1e-5)


def test_zero_probabilities_give_finite_scores() -> None:
    b = _random_bundle(seed=7)
    tl = b.target_logits.copy()
    tl[0, 0, :] = -np.inf
    tl[0, 0, int(b.labels[0]) - 1] = 0.0  # all mass on another class: p_y = 0
    rl = b.ref_logits.copy()
    rl[0, 1, 0, int(b.labels[1])] = -np.inf
    b = SignalBundle(labels=b.labels, target_logits=tl, ref_logits=rl, ref_is_member=b.ref_is_member)
    for name in NAMES:
        assert np.isfinite(get_attack(name).fit_score(b)).all()


# --------------------------------------------------------------------------------------------
# invariances
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_monotone_in_the_targets_log_confidence(name: str) -> None:
    """Raising the target's true-class logit of one example raises its score and leaves the others alone."""
    b = _random_bundle(seed=8, n=30, k=6)
    before = get_attack(name).fit_score(b)
    for step in (0.5, 2.0, 10.0):
        tl = b.target_logits.copy()
        tl[np.arange(30), :, b.labels] += step
        after = get_attack(name).fit_score(
            SignalBundle(labels=b.labels, target_logits=tl, ref_logits=b.ref_logits, ref_is_member=b.ref_is_member))
        assert (after > before).all()
    one = b.target_logits.copy()
    one[3, :, b.labels[3]] += 1.0
    after = get_attack(name).fit_score(
        SignalBundle(labels=b.labels, target_logits=one, ref_logits=b.ref_logits, ref_is_member=b.ref_is_member))
    assert after[3] > before[3]
    np.testing.assert_array_equal(np.delete(after, 3), np.delete(before, 3))


@pytest.mark.parametrize("name", NAMES)
def test_temperature_is_a_logit_rescaling(name: str) -> None:
    """Temperature T on logits z equals temperature 1 on z / T; a shift of all logits changes nothing."""
    b = _random_bundle(seed=9, n=25)
    got = get_attack(name, temperature=2.5).fit_score(b)
    scaled = SignalBundle(labels=b.labels, target_logits=b.target_logits / 2.5, ref_logits=b.ref_logits / 2.5,
                          ref_is_member=b.ref_is_member)
    np.testing.assert_allclose(got, get_attack(name, temperature=1.0).fit_score(scaled), rtol=1e-10, atol=1e-12)
    shifted = SignalBundle(labels=b.labels, target_logits=b.target_logits + 7.0, ref_logits=b.ref_logits - 3.0,
                           ref_is_member=b.ref_is_member)
    np.testing.assert_allclose(get_attack(name, temperature=2.5).fit_score(shifted), got, rtol=1e-9, atol=1e-9)
    assert not np.allclose(got, get_attack(name, temperature=1.0).fit_score(b))


def test_scale_only_moves_the_threshold() -> None:
    b = _random_bundle(seed=10, n=25)
    s1 = get_attack("base_offline", scale=1.0)
    s1.fit(b)
    low = get_attack("base_offline", scale=0.33).fit_score(b)
    np.testing.assert_allclose(s1.score(b) - low, -(1.0 - 0.33) * s1.threshold_.mean(axis=1), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_higher_means_member_in_a_leaky_world(name: str) -> None:
    """Members get a higher target confidence than their OUT references: AUC clearly above 0.5, and BASE's
    per-example threshold beats the target's confidence alone (examples differ in difficulty)."""
    b = make_world(1.0, seed=11, n=2000)
    scores = get_attack(name).fit_score(b)
    a = auc(b.is_member, scores)
    assert a > 0.65
    conf = get_attack("confidence").fit_score(b)
    assert a > auc(b.is_member, conf) + 0.03
    assert auc(b.is_member, -scores) < 0.35  # the sign is right


@pytest.mark.parametrize("name", NAMES)
def test_null_world_auc_interval_covers_chance(name: str) -> None:
    """Target outputs drawn like the references', independent of membership: the AUC's normal-approximation
    95% interval covers 0.5 in all but a binomially plausible number of 20 seeded null worlds."""
    misses = 0
    for seed in range(20):
        b = make_world(0.0, seed=100 + seed, n=600)
        a = auc(b.is_member, get_attack(name).fit_score(b))
        n1 = int(b.is_member.sum())
        n0 = b.n_examples - n1
        se = math.sqrt((n0 + n1 + 1) / (12 * n0 * n1))
        misses += abs(a - 0.5) > 1.96 * se
    assert misses <= int(stats.binom.ppf(1 - 0.001, 20, 0.05)), misses


# --------------------------------------------------------------------------------------------
# registry and errors
# --------------------------------------------------------------------------------------------
def test_registered_after_rmia() -> None:
    names = available_attacks()
    assert names.index("base") == names.index("rmia_offline") + 1
    assert names.index("base_offline") == names.index("base") + 1
    for name in NAMES:
        cls = attack_class(name)
        assert cls.requires == frozenset({"reference"}) and cls.output_kinds == frozenset({"logits"})
        assert cls.needs_labels and "Lassila" in cls.description


@pytest.mark.parametrize("name", NAMES)
def test_missing_reference_logits(name: str) -> None:
    b = _random_bundle(seed=12)
    bad = SignalBundle(labels=b.labels, target_logits=b.target_logits)
    with pytest.raises(InputError, match=rf"{name}: needs ref_logits and ref_is_member"):
        get_attack(name).fit(bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf"), "2", True, None])
def test_bad_temperature(name: str, temperature: object) -> None:
    with pytest.raises(InputError, match=rf"{name}: temperature must be a finite number > 0, got .*temperature=2.0"):
        get_attack(name, temperature=temperature).fit(_random_bundle())


@pytest.mark.parametrize("scale", [0.0, -0.33, float("nan"), float("inf"), "1", False, None])
def test_bad_scale(scale: object) -> None:
    with pytest.raises(InputError, match=r"base_offline: scale must be a finite number > 0, got .*scale=0.33"):
        get_attack("base_offline", scale=scale).fit(_random_bundle())


def test_online_takes_no_scale() -> None:
    with pytest.raises(InputError, match=r"attack 'base': bad parameters \{'scale': 0.5\}"):
        get_attack("base", scale=0.5)


def test_score_before_fit() -> None:
    with pytest.raises(InputError, match=r"base: score\(\) was called before fit\(\)"):
        get_attack("base").score(_random_bundle())
