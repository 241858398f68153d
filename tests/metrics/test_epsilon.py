from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from miaudit._errors import InputError
from miaudit.metrics import EpsilonBound, epsilon_lower_bound
from miaudit.metrics._epsilon import split_select_certify


def _game(seed, n, shift):
    rng = np.random.default_rng(seed)
    m = np.zeros(n, bool)
    m[rng.permutation(n)[: n // 2]] = True
    return m, rng.normal(size=n) + shift * m


def _wilson(k, n, z):
    return (k + z * z / 2 + z * math.sqrt(k * (n - k) / n + z * z / 4)) / (n + z * z)


def _bound(fpr_hi, fnr_hi, delta):
    terms = [0.0]
    if 1 - delta - fpr_hi > 0:
        terms.append(math.log((1 - delta - fpr_hi) / fnr_hi))
    if 1 - delta - fnr_hi > 0:
        terms.append(math.log((1 - delta - fnr_hi) / fpr_hi))
    return max(terms)


@pytest.mark.parametrize("seed,shift", [(0, 1.5), (1, -1.5), (2, 0.3)])
def test_selection_and_certification_match_brute_force(seed, shift):
    m, s = _game(seed, 300, shift)
    delta, conf = 1e-5, 0.95
    r = epsilon_lower_bound(m, s, delta=delta, confidence=conf, seed=seed)
    sel = split_select_certify(m, seed)
    assert sel[m].sum() == m.sum() // 2 and sel[~m].sum() == (~m).sum() // 2
    alpha = 1 - conf
    z = special.ndtri(1 - alpha / 2)
    # selection: brute-force maximum of the Wilson-based bound over thresholds and both directions
    ms, ss = m[sel], s[sel]
    best = -1.0
    for t in [math.inf, *np.unique(ss)]:
        for direction in ("higher", "lower"):
            flag = ss >= t if direction == "higher" else ss < t
            fp, fn = int((flag & ~ms).sum()), int((~flag & ms).sum())
            est = _bound(_wilson(fp, (~ms).sum(), z), _wilson(fn, ms.sum(), z), delta)
            if est > best + 1e-12:
                best, best_t, best_d = est, t, direction
    assert r.direction == best_d
    flag_ref = ss >= best_t if best_d == "higher" else ss < best_t
    flag_got = ss >= r.threshold if best_d == "higher" else ss < r.threshold
    np.testing.assert_array_equal(flag_got, flag_ref)  # same test on the selection half
    if np.isfinite(best_t) and best_t > ss.min():  # threshold in the middle of the gap below best_t
        below = ss[ss < best_t].max()
        assert r.threshold == pytest.approx((best_t + below) / 2)
    # certification on the other half with exact one-sided Clopper-Pearson bounds at alpha / 2
    mc, sc = m[~sel], s[~sel]
    flag = sc >= r.threshold if r.direction == "higher" else sc < r.threshold
    fp, fn = int((flag & ~mc).sum()), int((~flag & mc).sum())
    assert (r.n_false_positives, r.n_false_negatives) == (fp, fn)
    n_neg, n_pos = int((~mc).sum()), int(mc.sum())
    assert (r.n_nonmembers_certify, r.n_members_certify) == (n_neg, n_pos)
    fpr_hi = 1.0 if fp == n_neg else stats.beta.ppf(1 - alpha / 2, fp + 1, n_neg - fp)
    fnr_hi = 1.0 if fn == n_pos else stats.beta.ppf(1 - alpha / 2, fn + 1, n_pos - fn)
    assert r.fpr_upper == pytest.approx(fpr_hi) and r.fnr_upper == pytest.approx(fnr_hi)
    assert r.value == pytest.approx(_bound(fpr_hi, fnr_hi, delta))
    assert (r.n_select, r.n_certify) == (int(sel.sum()), int((~sel).sum()))
    assert r.method == "split_half_clopper_pearson" and r.seed == seed and r.reason is None


def test_wrong_sign_attack_is_found_in_the_lower_direction():
    m, s = _game(3, 2000, -3.0)
    r = epsilon_lower_bound(m, s)
    assert r.direction == "lower" and r.value > 3.0


def test_perfect_separation_reaches_the_sample_size_ceiling():
    m = np.r_[np.ones(1000, bool), np.zeros(1000, bool)]
    s = np.r_[np.full(1000, 10.0), np.full(1000, -10.0)] + np.linspace(0, 1, 2000)
    r = epsilon_lower_bound(m, s, delta=0.0)
    u = 1 - 0.025 ** (1 / 500)  # one-sided CP upper bound of 0 errors in 500 at alpha / 2
    assert r.value == pytest.approx(math.log((1 - u) / u))


def test_grows_with_leakage_and_is_deterministic():
    values = [epsilon_lower_bound(*_game(4, 4000, shift)).value for shift in (0.0, 1.0, 2.0, 4.0)]
    assert values[0] == 0.0
    assert values[1] < values[2] < values[3]
    m, s = _game(5, 1000, 1.0)
    assert epsilon_lower_bound(m, s, seed=7) == epsilon_lower_bound(m, s, seed=7)
    assert epsilon_lower_bound(m, s, seed=7) != epsilon_lower_bound(m, s, seed=8)


def test_invariant_to_strictly_increasing_transforms():
    m, s = _game(6, 1000, 1.0)
    a, b = epsilon_lower_bound(m, s), epsilon_lower_bound(m, np.exp(s / 3))
    assert a.value == b.value and a.n_false_positives == b.n_false_positives


def test_larger_delta_and_lower_confidence_never_lower_the_bound_much():
    m, s = _game(7, 4000, 2.0)
    assert epsilon_lower_bound(m, s, confidence=0.5).value >= epsilon_lower_bound(m, s, confidence=0.99).value


def test_too_few_examples_gives_zero_with_reason():
    r = epsilon_lower_bound([True, False, False], [1.0, 0.0, 0.5])
    assert r.value == 0.0 and "at least 2 members" in r.reason
    d = r.to_dict()
    assert d["value"] == 0.0 and d["threshold"] is None


def test_to_dict_is_json_safe():
    import json

    r = epsilon_lower_bound(*_game(8, 200, 0.0))
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    for key in ("method", "threshold", "direction", "n_false_positives", "n_false_negatives",
                "fpr_upper", "fnr_upper", "n_select", "n_certify", "value", "delta", "confidence"):
        assert key in d
    assert isinstance(r, EpsilonBound)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"delta": 1.0}, r"delta: expected a number in \[0, 1\)"),
        ({"delta": -1e-5}, r"delta: expected"),
        ({"delta": "x"}, r"delta: expected"),
        ({"confidence": 1.0}, r"confidence: expected a number strictly between 0 and 1"),
        ({"confidence": 0}, r"confidence: expected"),
        ({"seed": -1}, r"seed: expected an integer in \[0, 2\*\*32\)"),
        ({"seed": 1.5}, r"seed: expected an integer in \[0, 2\*\*32\)"),
        ({"seed": True}, r"seed: expected an integer in \[0, 2\*\*32\)"),
    ],
)
def test_option_errors(kw, match):
    m, s = _game(9, 20, 0.0)
    with pytest.raises(InputError, match=match):
        epsilon_lower_bound(m, s, **kw)
