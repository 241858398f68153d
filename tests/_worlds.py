"""Synthetic worlds shared by the tests (the one home for them): bundles whose leakage is known.

* :func:`leaky_world` -- plain arrays for the API/CLI tests.
* :func:`make_world` -- a full :class:`~miaudit.data.SignalBundle` (target, membership, K reference models,
  population) for the attack tests, with the helpers :func:`without`, :func:`flipped`, :func:`permuted`,
  :func:`as_scores`, :func:`balanced_membership` and :func:`auc`.
* :func:`article_table` -- the article's raw confidence table (scores, no labels).
"""

from __future__ import annotations

import numpy as np

from miaudit.data import SignalBundle


def leaky_world(n: int = 600, k: int = 8, c: int = 3, shift: float = 1.5, seed: int = 0, null: bool = False):
    """Per-example Gaussian scaled logits; members shifted up by ``shift`` (0 leakage if ``null``).

    Returns a dict of arrays with the bundle's keys (labels, target_logits (N, C),
    is_member, ref_logits (K, N, C), ref_is_member).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    base = rng.normal(2.0, 1.5, n)  # per-example difficulty
    d = 0.0 if null else shift

    def logits_for(is_member: np.ndarray) -> np.ndarray:
        phi = base + d * is_member + rng.normal(0, 0.5, n)
        z = rng.normal(0, 0.3, (n, c))
        z[np.arange(n), labels] = phi + np.log(c - 1)
        return z

    is_member = np.zeros(n, bool)
    is_member[rng.permutation(n)[: n // 2]] = True
    ref_is_member = np.zeros((k, n), bool)
    for i in range(n):
        ref_is_member[rng.permutation(k)[: k // 2], i] = True
    return {
        "labels": labels,
        "target_logits": logits_for(is_member),
        "is_member": is_member,
        "ref_logits": np.stack([logits_for(ref_is_member[j]) for j in range(k)]).astype(np.float32),
        "ref_is_member": ref_is_member,
    }


# ---------------------------------------------------------------------------------------------
# attack worlds
# ---------------------------------------------------------------------------------------------
#: Shape of :func:`make_world`'s bundles: classes, queries, reference models, population size.
WORLD_C, WORLD_A, WORLD_K, WORLD_M = 5, 2, 8, 400


def balanced_membership(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k, n) bool: every example IN for exactly k/2 models."""
    keys = rng.random((k, n))
    return keys < np.median(keys, axis=0, keepdims=True)


def _outputs(is_member: np.ndarray, labels: np.ndarray, difficulty: np.ndarray, shift: float,
             rng: np.random.Generator) -> np.ndarray:
    """Logits (..., n, A, C) for membership ``is_member`` (..., n)."""
    z = rng.normal(size=is_member.shape + (WORLD_A, WORLD_C))
    margin = 2.0 + difficulty + shift * is_member  # (..., n)
    y = np.broadcast_to(labels, is_member.shape)[..., None, None]
    true = margin[..., None] + 0.5 * rng.normal(size=is_member.shape + (WORLD_A,))
    np.put_along_axis(z, np.broadcast_to(y, is_member.shape + (WORLD_A, 1)), true[..., None], axis=-1)
    return z


def make_world(shift: float, *, seed: int = 0, n: int = 2000, with_population: bool = True) -> SignalBundle:
    """A full bundle (target, is_member, K = 8 references, population) of the synthetic world.

    Example ``i`` has a difficulty ``d_i``; every model (target or reference) gives it the true-class
    logit ``2 + d_i + shift * in + noise`` (other classes N(0, 1)), so the outputs of the reference
    models (balanced ``ref_is_member``: each example IN for exactly 4) follow the same per-example law
    as the target's. ``shift > 0``: members have systematically higher confidence (a leaky world);
    ``shift = 0``: outputs are independent of membership (a null world). Shapes: ``(n, A, C)`` target
    logits float64, ``(K, n, A, C)`` reference logits float32, ``M`` population examples.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, WORLD_C, size=n)
    difficulty = rng.normal(scale=1.5, size=n)
    is_member = rng.permutation(np.arange(n) < n // 2)
    ref_is_member = balanced_membership(n, WORLD_K, rng)
    pop = {}
    if with_population:
        m = WORLD_M
        pop_labels = rng.integers(0, WORLD_C, size=m)
        pop_diff = rng.normal(scale=1.5, size=m)
        out = np.zeros(m, dtype=bool)
        pop = dict(
            population_logits=_outputs(out, pop_labels, pop_diff, shift, rng),
            population_labels=pop_labels.astype(np.int64),
            ref_population_logits=_outputs(np.zeros((WORLD_K, m), bool), pop_labels, pop_diff, shift, rng).astype(
                np.float32
            ),
        )
    return SignalBundle(
        labels=labels.astype(np.int64),
        target_logits=_outputs(is_member, labels, difficulty, shift, rng),
        is_member=is_member,
        ref_logits=_outputs(ref_is_member, labels, difficulty, shift, rng).astype(np.float32),
        ref_is_member=ref_is_member,
        **pop,
    )


def _fields(bundle: SignalBundle) -> dict:
    return {f: getattr(bundle, f) for f in SignalBundle.__dataclass_fields__}


def without(bundle: SignalBundle, *fields: str) -> SignalBundle:
    """``bundle`` with ``fields`` set to None (``ref_logits``: the references' outputs of every kind, i.e. also
    the predicted classes and distances of a label-only bundle)."""
    kw = _fields(bundle)
    for f in fields:
        kw[f] = None
        if f == "ref_logits":
            kw["ref_pred"] = kw["ref_distance"] = None
    return SignalBundle(**kw)


def flipped(bundle: SignalBundle) -> SignalBundle:
    """``bundle`` with the target's membership ``is_member`` negated (everything else the same)."""
    kw = _fields(bundle)
    kw["is_member"] = ~np.asarray(bundle.is_member)
    return SignalBundle(**kw)


def permuted(bundle: SignalBundle, perm: np.ndarray) -> SignalBundle:
    """The same world with its audit examples in another order (population untouched)."""
    kw = _fields(bundle)
    for f in ("labels", "target_logits", "is_member", "target_pred", "target_distance"):
        if kw[f] is not None:
            kw[f] = kw[f][perm]
    for f in ("ref_logits", "ref_is_member", "ref_pred", "ref_distance"):
        if kw[f] is not None:
            kw[f] = kw[f][:, perm]
    return SignalBundle(**kw)


def as_scores(bundle: SignalBundle) -> SignalBundle:
    """The same world exported as raw scores (``outputs_kind == "scores"``): the softmax probabilities of the
    target's and the references' outputs, used as given; the population is dropped (scores bundles carry none)."""
    from miaudit.signals import log_softmax

    def probs(z: np.ndarray | None) -> np.ndarray | None:
        return None if z is None else np.exp(log_softmax(np.asarray(z, dtype=np.float64)))

    return SignalBundle.from_arrays(
        labels=bundle.labels, target_scores=probs(bundle.target_logits), is_member=bundle.is_member,
        ref_scores=probs(bundle.ref_logits), ref_is_member=bundle.ref_is_member, groups=bundle.groups,
    )


def article_table(n: int = 1000, seed: int = 42):
    """The article's table: two classes, members' scores uniform in [0.1, 0.9] per column, non-members' in
    [0.2, 0.8] (numpy's legacy generator seeded with ``seed``, ``n`` of each, members first), rows not
    normalised, no labels. Returns ``(scores (2n, 2), is_member (2n,) bool)``. The best possible attack (any
    score outside [0.2, 0.8]) finds ``1 - 0.75**2 = 43.75%`` of members at FPR 0."""
    np.random.seed(seed)
    members = np.random.uniform(0.1, 0.9, (n, 2))
    non_members = np.random.uniform(0.2, 0.8, (n, 2))
    return np.vstack([members, non_members]), np.r_[np.ones(n, bool), np.zeros(n, bool)]


def auc(is_member: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted 1/2 (brute force is fine at these sizes)."""
    pos, neg = scores[is_member], scores[~is_member]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


# ---------------------------------------------------------------------------------------------
# K-model games (every model in turn the target)
# ---------------------------------------------------------------------------------------------
def paired_game(n: int = 400, k: int = 4, c: int = 3, shift: float = 2.0, seed: int = 3, null: bool = False):
    """``(labels (N,), logits (K, N, 1, C), is_member (K, N))`` of K models in complementary pairs
    (:func:`miaudit.audit.balanced_membership`). Each model's true-class logit is a per-example difficulty plus
    ``shift`` for its members plus noise; ``null=True``: the outputs ignore the training data (the difficulty
    is shared by all models, the noise independent per model), so nothing can leak."""
    from miaudit.audit import balanced_membership as paired_design

    # independent streams: the data drawn from the design's own seed would share its bits and correlate with it
    design_ss, data_ss = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(data_ss)
    design = paired_design(n, k, seed=design_ss)
    labels = rng.integers(0, c, n)
    if null:
        difficulty = rng.normal(0, 1.5, (n, c))
        return labels, difficulty[None, :, None, :] + rng.normal(0, 0.5, (k, n, 1, c)), design
    base = rng.normal(2.0, 1.5, n)
    logits = rng.normal(0, 0.3, (k, n, 1, c))
    logits[:, np.arange(n), 0, labels] = base + shift * design + rng.normal(0, 0.5, (k, n))
    return labels, logits, design


def as_labels(bundle: SignalBundle) -> SignalBundle:
    """The same world at label-only access (``outputs_kind == "labels"``): every model's predicted class on each
    of the A queries (the argmax of its outputs), and as boundary distance the margin between its two largest
    outputs on query 0 (a model's distance to its decision boundary grows with that margin); the population is
    dropped."""

    def pred(z: np.ndarray | None) -> np.ndarray | None:
        return None if z is None else np.argmax(np.asarray(z), axis=-1)

    def margin(z: np.ndarray | None) -> np.ndarray | None:
        if z is None:
            return None
        top2 = np.sort(np.asarray(z, dtype=np.float64)[..., 0, :], axis=-1)[..., -2:]
        return top2[..., 1] - top2[..., 0]

    refs = bundle.ref_logits
    return SignalBundle.from_arrays(
        labels=bundle.labels, target_pred=pred(bundle.target_logits), is_member=bundle.is_member,
        ref_pred=pred(refs), ref_is_member=bundle.ref_is_member if refs is not None else None,
        target_distance=margin(bundle.target_logits), ref_distance=margin(refs), groups=bundle.groups,
        n_classes=bundle.n_classes,
    )
