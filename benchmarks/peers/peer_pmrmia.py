"""ML Privacy Meter's GitHub scripts (its RMIA and LOSS, `attacks.py`) on a miaudit signal bundle.

Runs inside /work/peer-envs/pmrmia with the scripts unpacked from ml_privacy_meter.tar.gz (commit e384af8,
`--pm-src`). Its `attacks.py` needs only numpy and scikit-learn; we import it from the snapshot and call
the functions that its `audit.py::audit_models` calls, on the same signal its `get_signals.get_softmax`
computes (softmax probability of the true label, temperature 1):

  rmia  `tune_offline_a` then `run_rmia` (offline RMIA, the only RMIA in the scripts), with the harness's
        reference models (given ones: the scripts accept any model whose signals are in the matrix).
        Column layout as in its own pipeline: target at column 0; column 1 is the target's "paired" model,
        which `run_rmia` always skips (its scripts train models in complementary pairs and attack one of
        each); we put a placeholder there (never read). The references are columns 2.. = the K harness
        models, which are complementary pairs too (miaudit's balanced design), so `get_rmia_out_signals`
        finds exactly one OUT model per pair, as in its own pipeline; num_reference_models = K/2.
        offline_a is tuned as its pipeline does (attack the paired model with one reference pair, grid
        0..1 step 0.1, by AUC): here on reference model 0 (pair partner of reference 1) with pair (2, 3).
        Population z: the bundle's population set through every model (`ref_population_logits`).
  loss  `run_loss(all_signals[:, target])` exactly as `audit_models` calls it: on the softmax signal, so
        the score is -p(y|x) (higher = LESS confident); kept as the tool computes it (see FAULTS).

usage: peer_pmrmia.py BUNDLE.npz OUT.json --pm-src DIR [--k 8,16] [--seed S]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def softmax_true(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """p(y|x) from (..., N, C) logits, as get_signals.get_softmax computes it (temperature 1)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    return np.take_along_axis(p, labels.reshape((1,) * (p.ndim - 2) + (-1, 1)), axis=-1)[..., 0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", default="8,16")
    ap.add_argument("--pm-src", required=True)
    ap.add_argument("--features")  # unused (the harness passes it to every new peer)
    ap.add_argument("--workdir")
    args = ap.parse_args(argv)
    out: dict = {"peer": "pmrmia", "version": "scripts@e384af8", "attacks": {}, "error": None}
    sys.path.insert(0, args.pm_src)
    try:
        import attacks as pm  # Privacy Meter's attacks.py
    except BaseException as exc:  # noqa: BLE001
        out["error"] = f"import of {args.pm_src}/attacks.py failed: {type(exc).__name__}: {exc}"
        C.write_json(args.out, out)
        return 1
    log = logging.getLogger("pmrmia")
    b = C.load_bundle_arrays(args.bundle)
    labels = b["labels"]
    n = len(labels)
    sig_t = softmax_true(b["target_logits"][None], labels)[0]  # (N,)
    rl = np.asarray(b["ref_logits"], dtype=np.float64)
    rin = np.asarray(b["ref_is_member"], dtype=bool)
    plabels = np.asarray(b["population_labels"], dtype=np.int64)
    sig_r = softmax_true(rl, labels)  # (K, N)
    psig_t = softmax_true(np.asarray(b["population_logits"], dtype=np.float64)[None], plabels)[0]
    psig_r = softmax_true(np.asarray(b["ref_population_logits"], dtype=np.float64), plabels)  # (K, P)
    out["offline_a"] = {}

    def rmia(k: int) -> dict:
        if k > len(sig_r) or k % 2 or k < 4:
            raise ValueError(f"need an even K >= 4 of at most {len(sig_r)} references, got {k}")
        # pairs check: miaudit's design puts complementary halves in rows 2j, 2j+1
        if not np.all(rin[0:k:2] ^ rin[1:k:2]):
            raise ValueError("reference rows are not complementary pairs")
        # tuning, as audit_models does, attacking a paired model with one reference pair
        tune_sig = sig_r[:k].T  # (N, K): column 0 = model attacked for tuning, column 1 = its pair
        tune_pop = psig_r[:k].T
        a, _, _ = pm.tune_offline_a(1, tune_sig, tune_pop, rin[:k].T, log)  # paired of 1 is 0
        out["offline_a"][str(k)] = float(a)
        placeholder = np.zeros((n, 1))
        all_sig = np.concatenate([sig_t[:, None], placeholder, sig_r[:k].T], axis=1)
        all_mem = np.concatenate([b["is_member"][:, None], np.ones((n, 1), dtype=bool), rin[:k].T], axis=1)
        pop = np.concatenate([psig_t[:, None], np.zeros((len(plabels), 1)), psig_r[:k].T], axis=1)
        scores = pm.run_rmia(0, all_sig, pop, all_mem, k // 2, a)
        return {"scores": scores, "reported": {},
                "note": f"offline RMIA, {k} given reference models ({k // 2} OUT per example), offline_a={a:.1f} "
                        f"(tuned on reference 0), {len(plabels)} population z"}

    def loss() -> dict:
        return {"scores": pm.run_loss(sig_t), "reported": {},
                "note": "run_loss on the softmax signal as audit_models calls it (score = -p(y|x))"}

    for k in [int(v) for v in args.k.split(",") if v]:
        C.run_attack(f"rmia_k{k}", lambda k=k: rmia(k), out["attacks"])
    C.run_attack("loss", loss, out["attacks"])
    C.write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
