"""IBM ART (adversarial-robustness-toolbox 1.20.1) on a miaudit signal bundle.

Runs inside /work/peer-envs/art. The target is wrapped as an ART `BlackBoxClassifier` whose
predict_fn looks up the target's STORED output probabilities by exact feature row, so ART sees
exactly the outputs every other tool sees; where ART accepts `pred=` we pass the stored
probabilities directly.

Attacks (scores for every example, higher = member):
  bb_rf, bb_gb, bb_lr  MembershipInferenceBlackBox(input_type="prediction", attack_model_type=...)
                       trained on the TARGET's own members/non-members, 2-fold cross-fitted
                       (fit on one half, infer on the other) so that every example gets an
                       out-of-fold score. (The default attack_model_type "nn" needs PyTorch.)
  rule_based           MembershipInferenceBlackBoxRuleBased: member iff correctly classified
                       (a 0/1 score).
  shadow_rf            ShadowModels(K shadow models trained with the target's recipe on the same
                       pool miaudit's reference models use, disjoint_datasets=False) +
                       MembershipInferenceBlackBox(rf) fitted on the shadow outputs, applied to
                       the target's stored outputs.
ART reports hard 0/1 inferences and probabilities only; it computes no AUC, TPR@FPR or epsilon,
so the "reported" figures are empty and all figures come from the recomputation on its scores.

usage: peer_art.py BUNDLE.npz OUT.json --features FEATURES.npz [--seed S] [--shadow-k K]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from importlib import metadata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

warnings.filterwarnings("ignore")


def make_sklearn(recipe: dict, seed: int):
    kind = recipe.get("kind")
    if kind == "sklearn_mlp":
        from sklearn.neural_network import MLPClassifier

        params = dict(recipe["params"])
        params["random_state"] = seed
        return MLPClassifier(**params)
    raise ValueError(f"ART shadow models: recipe kind {kind!r} is not a scikit-learn MLP (needs PyTorch in the ART env)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--features", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shadow-k", type=int, default=8)
    ap.add_argument("--attacks", default="bb_rf,bb_gb,bb_lr,rule_based,shadow_rf")
    args = ap.parse_args(argv)
    out: dict = {"peer": "art", "attacks": {}, "error": None}
    try:
        out["version"] = metadata.version("adversarial-robustness-toolbox")
        from art.attacks.inference.membership_inference import (
            MembershipInferenceBlackBox,
            MembershipInferenceBlackBoxRuleBased,
            ShadowModels,
        )
        from art.estimators.classification import BlackBoxClassifier
        from art.estimators.classification.scikitlearn import ScikitlearnClassifier
    except BaseException as exc:  # noqa: BLE001
        out["error"] = f"import failed: {type(exc).__name__}: {exc}"
        C.write_json(args.out, out)
        return 1

    b = C.load_bundle_arrays(args.bundle)
    X, y, recipe = C.load_features(args.features)
    X = X.reshape(len(X), -1)  # images: ART sees flat rows (lookup only)
    labels = b["labels"]
    assert np.array_equal(y, labels), "features.npz and bundle.npz disagree on labels"
    probs = b["probs"].astype(np.float64)
    n, n_classes = probs.shape
    m = b["is_member"]
    lookup = {X[i].tobytes(): i for i in range(n)}

    def predict_fn(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return probs[[lookup[r.tobytes()] for r in x]]

    target = BlackBoxClassifier(predict_fn, input_shape=(X.shape[1],), nb_classes=n_classes)
    rng = np.random.default_rng(args.seed)
    fold = np.empty(n, dtype=int)
    for cls in (True, False):  # stratified 2 folds over membership
        idx = rng.permutation(np.flatnonzero(m == cls))
        fold[idx[: len(idx) // 2]] = 0
        fold[idx[len(idx) // 2:]] = 1

    def black_box(model_type: str):
        def fn() -> dict:
            np.random.seed(args.seed)
            scores = np.empty(n)
            for k in (0, 1):
                tr, te = fold != k, fold == k
                att = MembershipInferenceBlackBox(target, input_type="prediction", attack_model_type=model_type)
                mem, non = tr & m, tr & ~m
                att.fit(x=X[mem], y=labels[mem], test_x=X[non], test_y=labels[non],
                        pred=probs[mem], test_pred=probs[non])
                scores[te] = np.asarray(att.infer(X[te], labels[te], pred=probs[te], probabilities=True)).ravel()
            return {"scores": scores, "reported": {},
                    "note": "2-fold cross-fitted on the target's own members/non-members"}
        return fn

    def rule_based() -> dict:
        att = MembershipInferenceBlackBoxRuleBased(target)
        inferred = np.asarray(att.infer(X, labels)).ravel().astype(float)
        return {"scores": inferred, "reported": {}, "note": "0/1 inference (member iff correctly classified)"}

    def shadow() -> dict:
        np.random.seed(args.seed)
        template = ScikitlearnClassifier(make_sklearn(recipe, args.seed))
        # ART 1.20.1 fault: ShadowModels calls template.clone_for_refitting(), which copies
        # nb_classes=None from an unfitted ScikitlearnClassifier and raises "nb_classes must be
        # greater than or equal to 2". Work-around: fit the template once on one example per class
        # (sklearn.base.clone inside clone_for_refitting drops the fitted state again).
        one_per_class = np.array([np.flatnonzero(labels == c)[0] for c in range(n_classes)])
        template.fit(X[one_per_class], np.eye(n_classes)[labels[one_per_class]])
        sm = ShadowModels(template, num_shadow_models=args.shadow_k, disjoint_datasets=False,
                          random_state=args.seed)
        (mx, my, mp), (nx, ny, npred) = sm.generate_shadow_dataset(X, np.eye(n_classes)[labels])
        att = MembershipInferenceBlackBox(target, input_type="prediction", attack_model_type="rf")
        att.fit(x=mx, y=my, test_x=nx, test_y=ny, pred=mp, test_pred=npred)
        scores = np.asarray(att.infer(X, labels, pred=probs, probabilities=True)).ravel()
        return {"scores": scores, "reported": {},
                "note": f"{args.shadow_k} shadow models, target recipe, random halves of the audit pool"}

    table = {"bb_rf": black_box("rf"), "bb_gb": black_box("gb"), "bb_lr": black_box("lr"),
             "bb_nn": black_box("nn"), "rule_based": rule_based, "shadow_rf": shadow}
    for name in args.attacks.split(","):
        C.run_attack(name, table[name], out["attacks"])
    C.write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
