"""SACRO-ML 2.0.1 (`sacroml`, registry) on a miaudit signal bundle.

Runs inside /work/peer-envs/sacroml. The target is never retrained or re-queried: it is a scikit-learn
estimator (`Stored`) whose predict_proba looks up the bundle's stored probabilities by exact feature row.

  lira_<mode>[_fixvar]_k<K>  `LIRAAttack` (modes "offline" (its default), "offline-carlini", "online-carlini";
        fix_variance True/False) with n_shadow_models = K. SACRO-ML trains its own shadow models: it clones the
        target's estimator, so we hand it `SklearnModel(MLPClassifier(<the target's recipe>))` (the digits/Adult
        MLP recipe); each shadow model is fitted on a random subset, of the size of the member set, of the
        pooled members + non-members (its `train_shadow_models`: the same pool halves as the harness, its own
        draw). We call `LIRAAttack._run` with the stored target probabilities and read the per-record scores it
        passes to its metrics (column 1 of `mia_scores`, the column its `get_metrics` ranks by). The K=16 run
        reuses the first 8 shadow models of the K=8 run (SACRO-ML's own cache).
        CNN (MNIST): through SACRO-ML's own entry point `LIRAAttack.attack(Target)`: the target is a torch
        `SmallCNN` (`_leakpro_models.py`) loaded with the harness model's weights, wrapped by SACRO-ML's
        `Target` into its `PytorchModel` with `model_module_path`/`model_name` (the class it re-instantiates per
        shadow model), `train_module_path` = `_sacroml_torch.py` (the target's recipe: SGD, lr/momentum/epochs of
        the recipe) and `batch_size` = the recipe's; its predictions are checked against the bundle's stored
        probabilities before anything runs (max |diff| <= 1e-4, kept as `target_prob_max_abs_diff`). SACRO-ML then
        clones the wrapper, trains its shadow models on random halves of members + non-members (same draw as for
        the MLP) and queries the target itself.
  qmia           `QMIAAttack` as designed: its quantile regressor is fitted on the target's non-member set
        (`X_test`) and then scores those same non-members (in-sample for the non-members).
  qmia_heldout   the same attack with the regressor fitted on the bundle's population set (known non-members
        that are not audited); thresholds for the pool then come from that fitted regressor.
  worstcase_rf   `WorstCaseAttack`'s attack data (`_prepare_attack_data`: sorted probabilities) and attack model
        (`_get_attack_model`: its default random forest), cross-fitted in 5 folds on the pool so that every
        example gets an out-of-fold score (its own loop only scores a 20% split per repetition); its reported AUC
        from `attack_from_preds` (n_reps=5) is kept as "reported".

usage: peer_sacroml.py BUNDLE.npz OUT.json --features FEATURES.npz --workdir DIR [--k 8,16] [--seed S]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import metadata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

logging.disable(logging.INFO)


def _f(v: object) -> float | None:
    """SACRO-ML's `TPR@0.01%` key holds the TPR at FPR 0.01 (a fraction, despite the '%'), as a 0-d array."""
    return None if v is None else float(np.asarray(v))


def main(argv: list[str] | None = None) -> int:  # noqa: C901
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", default="8,16")
    ap.add_argument("--features", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--modes", default="offline,offline-carlini,online-carlini")
    args = ap.parse_args(argv)
    out: dict = {"peer": "sacroml", "attacks": {}, "error": None}
    try:
        out["version"] = metadata.version("sacroml")
        from sacroml.attacks.likelihood_attack import LIRAAttack
        from sacroml.attacks.model_sklearn import SklearnModel
        from sacroml.attacks.qmia_attack import QMIAAttack
        from sacroml.attacks.target import Target
        from sacroml.attacks.worst_case_attack import WorstCaseAttack
        from sklearn.base import BaseEstimator, ClassifierMixin
        from sklearn.model_selection import StratifiedKFold
        from sklearn.neural_network import MLPClassifier
    except BaseException as exc:  # noqa: BLE001
        out["error"] = f"import failed: {type(exc).__name__}: {exc}"
        C.write_json(args.out, out)
        return 1
    os.makedirs(args.workdir, exist_ok=True)
    b = C.load_bundle_arrays(args.bundle)
    X, y, recipe = C.load_features(args.features)
    with np.load(args.features, allow_pickle=False) as z:
        Xp = np.asarray(z["X_population"], dtype=np.float32)
    X_img = X.reshape(len(X), 1, *X.shape[-2:]) if recipe["kind"] == "torch_cnn" else None  # the CNN's input
    X = X.reshape(len(X), -1)
    Xp = Xp.reshape(len(Xp), -1)
    m = b["is_member"]
    probs = b["probs"]
    pl = np.asarray(b["population_logits"], dtype=np.float64)
    pl = np.exp(pl - pl.max(1, keepdims=True))
    pprobs = pl / pl.sum(1, keepdims=True)
    ypop = np.asarray(b["population_labels"], dtype=np.int64)
    n_classes = probs.shape[1]
    table = {X[i].tobytes(): probs[i] for i in range(len(X))}
    table.update({Xp[i].tobytes(): pprobs[i] for i in range(len(Xp))})

    class Stored(ClassifierMixin, BaseEstimator):
        """The target as a fitted sklearn estimator answering from the stored outputs."""

        def __init__(self) -> None:
            self.classes_ = np.arange(n_classes)

        def fit(self, X, y):  # noqa: ANN001, ANN201 - never called for the target
            raise RuntimeError("the stored target is not refitted")

        def predict_proba(self, Xq):  # noqa: ANN001, ANN201
            Xq = np.asarray(Xq, dtype=np.float32)
            return np.stack([table[r.tobytes()] for r in Xq])

        def predict(self, Xq):  # noqa: ANN001, ANN201
            return self.predict_proba(Xq).argmax(1)

    idx_in, idx_out = np.flatnonzero(m), np.flatnonzero(~m)
    n = len(m)

    def to_bundle_order(s_comb: np.ndarray) -> np.ndarray:
        s = np.empty(n)
        s[idx_in] = s_comb[: len(idx_in)]
        s[idx_out] = s_comb[len(idx_in):]
        return s

    torch_target: dict = {}

    def cnn_target() -> object:
        """SACRO-ML's Target around the CNN (built once; checked against the stored outputs)."""
        if "t" in torch_target:
            return torch_target["t"]
        import _leakpro_models as LM  # noqa: PLC0415
        import torch  # noqa: PLC0415

        torch.set_num_threads(1)
        p = recipe["params"]
        with np.load(args.features, allow_pickle=False) as z:
            sd = {k[3:]: torch.from_numpy(z[k]) for k in z.files if k.startswith("sd:")}
        init = {"in_channels": 1, "n_classes": n_classes, "image_size": int(X_img.shape[-1])}
        net = LM.SmallCNN(**init)
        net.load_state_dict(sd)
        net.eval()
        tgt = Target(model=net, model_module_path="_leakpro_models.py", model_name="SmallCNN", model_params=init,
                     train_module_path="_sacroml_torch.py",
                     train_params={"epochs": int(p["epochs"]), "lr": float(p["lr"]),
                                   "momentum": float(p.get("momentum", 0.9))},
                     batch_size=int(p["batch_size"]),
                     X_train=X_img[idx_in], y_train=y[idx_in], X_test=X_img[idx_out], y_test=y[idx_out])
        err = float(np.abs(tgt.model.predict_proba(X_img) - probs).max())
        out["target_prob_max_abs_diff"] = err
        if err > 1e-4:
            raise RuntimeError(f"the torch copy of the target does not reproduce the stored outputs (max |diff| {err:.2e})")
        torch_target["t"] = tgt
        return tgt

    def lira(mode: str, fixvar: bool, k: int) -> dict:
        att = LIRAAttack(output_dir=os.path.join(args.workdir, "lira"), write_report=False, n_shadow_models=k,
                         mode=mode, fix_variance=fixvar)
        got: dict = {}
        orig = att._save_attack_metrics

        def keep(mia_scores, n_train_rows, n_shadow_rows, n_normal):  # noqa: ANN001, ANN202
            got["s"] = np.asarray(mia_scores, dtype=np.float64)
            return orig(mia_scores, n_train_rows, n_shadow_rows, n_normal)

        att._save_attack_metrics = keep
        if recipe["kind"] == "sklearn_mlp":
            p = recipe["params"]
            shadow = SklearnModel(MLPClassifier(hidden_layer_sizes=tuple(p["hidden_layer_sizes"]),
                                                max_iter=p["max_iter"], alpha=p["alpha"]))
            att._run(shadow, X[idx_in], y[idx_in], probs[idx_in], X[idx_out], y[idx_out], probs[idx_out])
        else:  # its own entry point: clones the PytorchModel, trains the shadow CNNs, queries the target itself
            att.attack(cnn_target())
            if "s" not in got:
                raise RuntimeError("LIRAAttack.attack returned without scoring (target not attackable)")
        met = att.attack_metrics[0]
        # its _DummyClassifier.predict_proba returns the [pr_in, pr_out] rows and get_metrics ranks by column 1
        s = to_bundle_order(got["s"][:, 1])
        return {"scores": s, "reported": {"auc": met.get("AUC"),
                                          "tpr_at_fpr": {"0.01": _f(met.get("TPR@0.01%")),
                                                         "0.001": _f(met.get("TPR@0.001%"))}},
                "note": f"mode={mode}, fix_variance={fixvar}, {k} shadow models (its own, trained on random pool halves)"}

    def qmia(heldout: bool) -> dict:
        if heldout:
            tgt = Target(model=Stored(), X_train=X[idx_in], y_train=y[idx_in], X_test=Xp, y_test=ypop)
        else:
            tgt = Target(model=Stored(), X_train=X[idx_in], y_train=y[idx_in], X_test=X[idx_out], y_test=y[idx_out])
        att = QMIAAttack(output_dir=os.path.join(args.workdir, "qmia"), write_report=False, random_state=args.seed)
        res = att.attack(tgt)
        if res.get("status") != "success" or att.quantile_model is None:
            raise RuntimeError(f"QMIA did not run: {res.get('fail_reason') or res.get('status') or 'not attackable'}")
        from sacroml.attacks import utils as su

        hinge = su.qmia_hinge_score(probs, y)
        thr = att.quantile_model.predict(np.column_stack((X, y)))
        met = att.attack_metrics[0]
        return {"scores": hinge - thr, "reported": {} if heldout else {"auc": met.get("AUC")},
                "note": ("regressor fitted on the population set" if heldout else
                         "regressor fitted on the scored non-members (as designed)")}

    def worstcase() -> dict:
        att = WorstCaseAttack(output_dir=os.path.join(args.workdir, "wc"), write_report=False, n_reps=5,
                              n_dummy_reps=0)
        mi_x, mi_y = att._prepare_attack_data(probs[idx_in], probs[idx_out])
        s_comb = np.empty(len(mi_y))
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=args.seed).split(mi_x, mi_y):
            clf = att._get_attack_model()
            clf.fit(mi_x[tr], mi_y[tr])
            s_comb[te] = clf.predict_proba(mi_x[te])[:, 1]
        att.attack_from_preds(probs[idx_in], probs[idx_out])
        aucs = [mm.get("AUC") for mm in att.attack_metrics if mm.get("AUC") is not None]
        return {"scores": to_bundle_order(s_comb), "reported": {"auc": float(np.mean(aucs)) if aucs else None},
                "note": "its default RF on sorted probabilities, 5-fold cross-fitted here"}

    ks = [int(v) for v in args.k.split(",") if v]
    for k in ks:
        for mode in [v for v in args.modes.split(",") if v]:
            for fixvar in (False, True):
                C.run_attack(f"lira_{mode}{'_fixvar' if fixvar else ''}_k{k}",
                             lambda mode=mode, fixvar=fixvar, k=k: lira(mode, fixvar, k), out["attacks"])
                C.write_json(args.out, out)
    failed = [name for name, a in out["attacks"].items() if name.startswith("lira_") and "NaN" in (a.get("error") or "")]
    if failed:
        # SACRO-ML's logit() clips with min(p, 1 - EPS), EPS = 1e-16. The shadow models' probabilities are float32
        # (scikit-learn's MLP on float32 features) and NumPy 2 compares the Python float in float32, where
        # 1 - 1e-16 is 1.0: the clip does nothing, p = 1 gives logit = inf, the per-record mean/std become NaN
        # and its own get_metrics raises "Input contains NaN". Re-run those attacks with EPS = 1e-6 (our patch,
        # representable in float32; rows marked _epsfix).
        from sacroml.attacks import utils as su

        su.EPS = 1e-6
        out["sacroml_eps_patched_for"] = failed
        for k in ks:
            for mode in [v for v in args.modes.split(",") if v]:
                for fixvar in (False, True):
                    name = f"lira_{mode}{'_fixvar' if fixvar else ''}_k{k}"
                    if name in failed:
                        C.run_attack(name + "_epsfix", lambda mode=mode, fixvar=fixvar, k=k: lira(mode, fixvar, k),
                                     out["attacks"])
    C.run_attack("qmia", lambda: qmia(False), out["attacks"])
    C.run_attack("qmia_heldout", lambda: qmia(True), out["attacks"])
    C.run_attack("worstcase_rf", worstcase, out["attacks"])
    C.write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
