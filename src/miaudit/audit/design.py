"""The membership game's design: one home for who is a member of which model, and for its validity.

* :func:`game_seeds` derives every seed of a game from the audit seed (pool draw, membership, models).
* :func:`draw_membership` splits N examples into members and non-members for one target model.
* :func:`balanced_membership` draws the K x N membership matrix of K models in which every example
  is IN for exactly K/2 models (LiRA's design with pkeep = 0.5, Carlini et al. 2022) and every model
  is trained on N/2 examples, as K/2 complementary pairs, so that any model can serve as the target
  against the others without the reference counts giving its membership away (:func:`partner_of`).
* :func:`references_for_target` picks the references of one model of a design, and refuses designs
  in which no choice is sound; :func:`check_references` is the validity check every entry point runs:
  no reference's IN/OUT status may depend on the target's membership.

All draws are deterministic functions of their seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from .._counts import check_count as _count
from .._counts import check_even_count
from .._errors import InputError
from .._seeds import SeedLike, child_seeds, rng, seed_sequence

__all__ = [
    "MIN_PAIRED_MODELS",
    "ReferenceCheck",
    "balanced_membership",
    "check_n_models",
    "check_references",
    "draw_membership",
    "game_seeds",
    "partner_of",
    "references_for_target",
]

#: A game in which the target is one of the K models needs K >= 4: its partner is left out, and K = 2
#: would leave no reference at all (and keeping the partner makes ref_is_member the target's negation).
MIN_PAIRED_MODELS = 4
#: p-value below which the IN-reference counts of a bundle are said to depend on the target's membership.
COUNT_ALARM_P = 1e-3


def check_n_models(k: object, name: str = "n_models", *, minimum: int = 2) -> int:
    """The one rule for a number of models in a balanced design (:func:`miaudit._counts.check_even_count`)."""
    return check_even_count(k, name, minimum=minimum)


def game_seeds(seed: SeedLike, n_models: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence, list[int]]:
    """(pool seed, membership seed, per-model seeds) derived from the audit ``seed``.

    Model k's seed does not depend on ``n_models``, so growing K keeps the first models' seeds.
    """
    pool_ss, member_ss, model_ss = seed_sequence(seed).spawn(3)
    return pool_ss, member_ss, child_seeds(model_ss, n_models)


def draw_membership(n: int, *, seed: SeedLike) -> np.ndarray:
    """Random member/non-member split: a bool (n,) array with exactly ``n // 2`` True entries.

    Every subset of size ``n // 2`` is equally likely (a uniform random permutation).
    """
    n = _count(n, "n", minimum=2)
    out = np.zeros(n, dtype=bool)
    out[rng(seed).permutation(n)[: n // 2]] = True
    return out


def balanced_membership(n_examples: int, n_models: int, *, seed: SeedLike) -> np.ndarray:
    """Balanced K x N membership matrix for K models (K even), built from complementary pairs.

    Models ``2j`` and ``2j + 1`` are trained on complementary halves of the pool: model ``2j`` on a
    uniformly random half, model ``2j + 1`` on the rest (with N odd, which of the two gets the
    extra example is a fair coin, so every example is IN for each model with probability 1/2). The K/2 halves are
    independent. Properties (exact, for every seed):

    * every example is IN for exactly ``K / 2`` models (one of each pair);
    * every model is IN on ``floor(N / 2)`` or ``ceil(N / 2)`` examples;
    * each model's training set is a uniformly random half of the pool.

    Why pairs: when model ``t`` plays the target against the others (LiRA's leave-one-out
    evaluation), a member of ``t`` would otherwise have K/2 - 1 IN references and a non-member
    K/2, so the *number* of IN references alone reveals membership to any estimator whose output
    depends on it (a variance widened for small samples, a smoothed percentile). Dropping the
    target's partner from the references (:func:`partner_of`) leaves K - 2 references in which
    every example is IN for exactly K/2 - 1, whatever its membership in the target.

    Returns
    -------
    ndarray of bool, shape (n_models, n_examples)
    """
    n = _count(n_examples, "n_examples", minimum=2)
    k = check_n_models(n_models)
    gen = rng(seed)
    out = np.empty((k, n), dtype=bool)
    for j in range(k // 2):
        half = np.zeros(n, dtype=bool)
        half[gen.permutation(n)[: n // 2]] = True
        if n % 2 and gen.random() < 0.5:  # odd N: either model of the pair gets the larger half
            half = ~half
        out[2 * j] = half
        out[2 * j + 1] = ~half
    return out


def partner_of(membership: np.ndarray, model: int) -> int | None:
    """Index of the model trained on exactly the complement of ``model``'s training set, or None."""
    m = np.asarray(membership, dtype=bool)
    comp = ~m[model]
    for k in range(m.shape[0]):
        if k != model and np.array_equal(m[k], comp):
            return k
    return None


@dataclass(frozen=True)
class ReferenceCheck:
    """Does the references' IN/OUT status depend on the target's membership? (:func:`check_references`)

    ``mean_in_members`` / ``mean_in_nonmembers``: mean number of IN references of the target's members and
    non-members; ``p_value``: of a test that the counts do not depend on membership (chi-square on the
    count x membership table); ``mirrors``: references whose membership equals the target's (possibly the
    target itself) or its complement (its partner). ``warnings`` says what is wrong, in one sentence each.
    """

    n_references: int
    mean_in_members: float
    mean_in_nonmembers: float
    p_value: float
    mirrors: tuple[int, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_references": self.n_references,
            "mean_in_references_members": self.mean_in_members,
            "mean_in_references_nonmembers": self.mean_in_nonmembers,
            "count_dependence_p": self.p_value,
            "mirrors": list(self.mirrors),
            "warnings": list(self.warnings),
        }


def check_references(is_member: Any, ref_is_member: Any) -> ReferenceCheck:
    """The game's validity check: no reference's IN/OUT status may depend on the target's membership.

    Two ways it fails, both of which let an attack read membership off the design instead of the model:

    * the *number* of IN references differs between the target's members and non-members (e.g. the
      target is one of K balanced models and its partner is kept: members have K/2 - 1 IN references,
      non-members K/2); flagged when every member has one count and every non-member another, or when a
      chi-square test of independence of the count and membership gives p < 1e-3 (a design drawn
      independently of the target raises it about 1 time in 1,000);
    * a reference was trained on exactly the target's members (perhaps the target itself) or exactly
      its non-members (its complementary partner).
    """
    m = np.asarray(is_member, dtype=bool)
    r = np.asarray(ref_is_member, dtype=bool)
    if r.ndim != 2 or r.shape[1] != m.shape[0]:
        raise InputError(f"ref_is_member: expected shape (K, {m.shape[0]}), got {r.shape}")
    k = r.shape[0]
    counts = r.sum(axis=0)
    mean_m = float(counts[m].mean()) if m.any() else float("nan")
    mean_n = float(counts[~m].mean()) if (~m).any() else float("nan")
    p = 1.0
    values = np.unique(counts)
    if values.size > 1 and m.any() and (~m).any():
        table = np.array([[np.sum((counts == v) & m), np.sum((counts == v) & ~m)] for v in values])
        table = table[table.sum(axis=1) > 0]
        if table.shape[0] > 1:
            p = _independence_p(table)
    mirrors = tuple(int(j) for j in range(k) if np.array_equal(r[j], m) or np.array_equal(r[j], ~m))
    warnings = []
    exact = (m.any() and (~m).any() and np.unique(counts[m]).size == 1 and np.unique(counts[~m]).size == 1
             and counts[m][0] != counts[~m][0])
    if exact or p < COUNT_ALARM_P:
        warnings.append(
            f"the number of IN references depends on the target's membership (members {mean_m:.2f}, "
            f"non-members {mean_n:.2f} on average, p = {p:.2g}): attacks can read membership off the design; "
            "draw the references independently of the target (e.g. complementary pairs of random halves, "
            "leaving out the target's own partner)"
        )
    if mirrors:
        warnings.append(
            f"reference model(s) {list(mirrors)} were trained on exactly the target's members or exactly its "
            "non-members (the target itself or its partner): leave them out of the references"
        )
    return ReferenceCheck(k, mean_m, mean_n, p, mirrors, tuple(warnings))


def _independence_p(table: np.ndarray) -> float:
    """Pearson's chi-square test of independence of an (r, c) table with no zero row or column sum.

    The p-value ``scipy.stats.chi2_contingency(table, correction=False)`` gives, computed as it does
    (expected counts row sum x column sum / total; the sum of ``(observed - expected)^2 / expected``; the
    chi-square tail at (r - 1)(c - 1) degrees of freedom) with :mod:`scipy.special` alone, so that the
    check does not import ``scipy.stats`` (half a second).
    """
    observed = np.asarray(table, dtype=np.float64)
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    dof = observed.size - sum(observed.shape) + observed.ndim - 1
    if dof == 0:
        return 1.0
    stat = np.sum(((observed - expected) ** 2 / expected).ravel())
    return float(special.chdtrc(float(dof), stat))


def references_for_target(is_member: Any, target: int) -> list[int]:
    """Indices of the models that serve as references when model ``target`` of a K-model design plays the target.

    Every other model except ``target``'s complementary partner (:func:`partner_of`). The design must make
    that choice sound: K >= 4, and the remaining references' IN counts independent of the target's
    membership (true for :func:`balanced_membership`'s pairs, and for models drawn independently of each
    other). Other designs -- e.g. a balanced matrix that is not in complementary pairs, where the target's
    members have one IN reference fewer than its non-members -- are refused: no subset of whole models fixes
    them.
    """
    m = np.asarray(is_member, dtype=bool)
    if m.ndim != 2:
        raise InputError(f"is_member: expected a (K, N) membership matrix of K models, got shape {m.shape}")
    k = m.shape[0]
    if k < MIN_PAIRED_MODELS:
        raise InputError(
            f"n_models: a game whose target is one of its own K models needs K >= {MIN_PAIRED_MODELS}, got K = {k}: "
            "the target's complementary partner must be left out of its references (its membership is the target's "
            "negated), and with K = 2 no reference is left; train at least 4 models (2 references per target)"
        )
    if not -k <= int(target) < k:
        raise InputError(f"target: expected a model index in [0, {k}), got {target!r}; pick one of the K models")
    t = int(target) % k
    partner = partner_of(m, t)
    refs = [j for j in range(k) if j not in (t, partner)]
    check = check_references(m[t], m[refs])
    if not check.ok:
        raise InputError(
            f"is_member: model {t} cannot be the target of this design: {check.warnings[0]}. Draw the design with "
            "miaudit.audit.balanced_membership (complementary pairs) or train each model on an independent "
            "random half"
        )
    return refs
