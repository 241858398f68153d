"""TensorFlow Privacy (tensorflow-empirical-privacy 0.1.0) on a miaudit signal bundle.

Runs inside /work/peer-envs/tfprivacy (installed with --no-deps; no TensorFlow). Only the
membership_inference_attack submodules are imported, which need numpy/scipy/sklearn/pandas/
statsmodels/immutabledict but not TensorFlow.

usage: peer_tfprivacy.py BUNDLE.npz OUT.json [--seed S] [--attacks threshold,lr,...]
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

ATTACKS = ("threshold", "threshold-entropy", "lr", "mlp", "rf", "knn")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    args = ap.parse_args(argv)

    out: dict = {"peer": "tfprivacy", "attacks": {}, "error": None}
    try:
        out["version"] = metadata.version("tensorflow-empirical-privacy")
        from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
            data_structures as ds,
        )
        from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (
            membership_inference_attack as mia,
        )
    except BaseException as exc:  # noqa: BLE001
        out["error"] = f"import failed: {type(exc).__name__}: {exc}"
        C.write_json(args.out, out)
        return 1

    b = C.load_bundle_arrays(args.bundle)
    m = b["is_member"]
    idx_in, idx_out = np.flatnonzero(m), np.flatnonzero(~m)
    logits = b["logp"]  # log-probabilities are valid logits (softmax gives back the probs)
    labels = b["labels"]
    attack_input = ds.AttackInputData(
        logits_train=logits[idx_in], logits_test=logits[idx_out],
        labels_train=labels[idx_in], labels_test=labels[idx_out],
    )
    types = {
        "threshold": ds.AttackType.THRESHOLD_ATTACK,
        "threshold-entropy": ds.AttackType.THRESHOLD_ENTROPY_ATTACK,
        "lr": ds.AttackType.LOGISTIC_REGRESSION,
        "mlp": ds.AttackType.MULTI_LAYERED_PERCEPTRON,
        "rf": ds.AttackType.RANDOM_FOREST,
        "knn": ds.AttackType.K_NEAREST_NEIGHBORS,
    }

    def one(kind: str):
        def fn() -> dict:
            # TF Privacy draws its attacker folds from the global numpy RNG; seed it for repeatability.
            np.random.seed(args.seed)
            res = mia.run_attacks(attack_input, ds.SlicingSpec(entire_dataset=True),
                                  attack_types=[types[kind]])
            r = res.single_attack_results[0]
            scores = np.empty(len(labels))
            scores[idx_in] = np.asarray(r.membership_scores_train, dtype=float)
            scores[idx_out] = np.asarray(r.membership_scores_test, dtype=float)
            eps = np.asarray(r.get_epsilon_lower_bound(), dtype=float)
            roc = r.roc_curve
            return {
                "scores": scores,
                "reported": {
                    "auc": float(r.get_auc()),
                    "advantage": float(r.get_attacker_advantage()),
                    "tpr_at_fpr": {str(f): C.roc_tpr_at_fpr(roc.fpr, roc.tpr, f) for f in C.FPRS},
                    "epsilon_lower_bound": float(eps.max()) if eps.size else None,
                    "epsilon_top_k": eps.tolist(),
                },
                "note": ("TPR@FPR read off its own ROC arrays (sklearn roc_curve, drop_intermediate=True); "
                         "epsilon = its default EpsilonLowerBound (Bailey, alpha=0.05, two-sided, "
                         "max over all thresholds on the same data)"),
            }
        return fn

    for kind in args.attacks.split(","):
        C.run_attack(kind, one(kind), out["attacks"])
    C.write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
