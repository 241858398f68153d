"""How often the verdict claims leakage on null games (outputs that ignore membership), at scale.

The slow tests (``pytest tests/test_null_game.py -m slow``) assert the bounds; this prints the counts.

(A) ``--bundles`` single-target null bundles: N examples, K references (per-example difficulty shared by every
model, independent noise per model), through :func:`miaudit.api.audit_bundle`.
(B) ``--games`` pooled null games: K models in complementary pairs, every model the target, through
:func:`miaudit.api.evaluate_game`.

Usage::

    python benchmarks/bench_null_verdict.py [--bundles 200] [--games 200] [--n 2000] [--pooled-n 300] [--out results.md]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from miaudit.api import audit_bundle, evaluate_game
from miaudit.audit import balanced_membership
from miaudit.data import SignalBundle


def null_bundle(seed: int, n: int, k: int, c: int = 3) -> SignalBundle:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    base = rng.normal(2.0, 1.5, n)

    def logits() -> np.ndarray:
        z = rng.normal(0, 0.3, (n, c))
        z[np.arange(n), labels] = base + rng.normal(0, 0.5, n) + np.log(c - 1)
        return z

    is_member = np.zeros(n, bool)
    is_member[rng.permutation(n)[: n // 2]] = True
    ref_is_member = balanced_membership(n, k, seed=seed + 10_000)
    return SignalBundle.from_arrays(labels=labels, target_logits=logits(), is_member=is_member,
                                    ref_logits=np.stack([logits() for _ in range(k)]), ref_is_member=ref_is_member)


def null_game(seed: int, n: int, k: int, c: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # independent streams: drawing the data from the design's own seed would correlate them (same bits)
    design_ss, data_ss = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(data_ss)
    design = balanced_membership(n, k, seed=design_ss)
    labels = rng.integers(0, c, n)
    difficulty = rng.normal(0, 1.5, (n, c))
    return labels, difficulty[None, :, None, :] + rng.normal(0, 0.5, (k, n, 1, c)), design


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundles", type=int, default=200)
    ap.add_argument("--games", type=int, default=200)
    ap.add_argument("--n", type=int, default=2000, help="examples per null bundle")
    ap.add_argument("--pooled-n", type=int, default=300, help="examples per pooled null game")
    ap.add_argument("--k", type=int, default=8, help="references per bundle / models per pooled game")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    lines = [f"command: python benchmarks/bench_null_verdict.py --bundles {a.bundles} --games {a.games} --n {a.n} "
             f"--pooled-n {a.pooled_n} --k {a.k}", ""]
    t0 = time.perf_counter()
    claims, auc_out, pairs, eps_pos = 0, 0, 0, 0
    for s in range(a.bundles):
        r = audit_bundle(null_bundle(s, a.n, a.k), settings={"seed": s})
        claims += r.decision.leakage_detected
        for m in r.metrics.values():
            pairs += 1
            auc_out += not (m.auc_ci[0] <= 0.5 <= m.auc_ci[1])
            eps_pos += m.epsilon.value > 0
    t_a = time.perf_counter() - t0
    hi = stats.beta.ppf(0.975, claims + 1, a.bundles - claims) if claims < a.bundles else 1.0
    if a.bundles:
        lines.append(f"(A) {a.bundles} null bundles (n = {a.n}, K = {a.k} references): verdict claims leakage in "
                 f"{claims} ({100 * claims / a.bundles:.1f}%, 95% upper bound {100 * hi:.1f}%); AUC interval excludes "
                     f"0.5 in {auc_out}/{pairs} (game, attack) pairs; epsilon > 0 in {eps_pos}/{pairs}; {t_a:.0f} s")
    t0 = time.perf_counter()
    claims, auc_out, pairs = 0, 0, 0
    for s in range(a.games):
        labels, logits, design = null_game(s, a.pooled_n, a.k)
        r = evaluate_game(labels, logits, design, settings={"seed": s})
        claims += r.decision.leakage_detected
        for m in r.metrics.values():
            pairs += 1
            auc_out += not (m.auc_ci[0] <= 0.5 <= m.auc_ci[1])
    t_b = time.perf_counter() - t0
    hi = stats.beta.ppf(0.975, claims + 1, a.games - claims) if claims < a.games else 1.0
    lines.append(f"(B) {a.games} pooled null games (n = {a.pooled_n}, K = {a.k} models, every one the target): verdict "
                 f"claims leakage in {claims} ({100 * claims / a.games:.1f}%, 95% upper bound {100 * hi:.1f}%); AUC "
                 f"interval excludes 0.5 in {auc_out}/{pairs} (game, attack) pairs; {t_b:.0f} s")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as fh:
            fh.write("# Verdict on null games at scale\n\n" + text)


if __name__ == "__main__":
    main()
