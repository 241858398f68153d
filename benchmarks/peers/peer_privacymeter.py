"""ML Privacy Meter (PyPI `privacy-meter` 1.0.1) on a miaudit signal bundle.

Runs inside /work/peer-envs/privacymeter. privacy-meter 1.0.1 declares no dependencies at all, yet
`privacy_meter.model` imports tensorflow, torch and opacus at module level, and every other module
(metric, audit, information_source, ...) imports `privacy_meter.model`. A plain install therefore
cannot be imported without the whole TensorFlow + PyTorch + Opacus stack (several GB). This script
records that import error, then (with --stub-dl, the default) puts empty stand-in modules for
`tensorflow`, `torch` and `opacus` into sys.modules *in this process only* (nothing in
site-packages is changed) so that Privacy Meter's own numpy code (Model interface, Dataset,
InformationSource, ModelLoss, PopulationMetric, ReferenceMetric, linear_itp_threshold_func) runs on
our stored outputs. The stand-ins are never called: our Model subclass answers from stored arrays.

Attacks:
  population  PopulationMetric + ModelLoss: thresholds = quantiles of the target's loss on the
              bundle's population set (population_logits/population_labels; known non-members
              that are not audit examples).
  reference   ReferenceMetric + ModelLoss: per-example thresholds = quantiles of the reference
              models' losses on that example. Needs ref_logits/ref_is_member; each example's OUT models are
              used (virtual reference model j = the j-th OUT model of each example).
Privacy Meter reports operating points (one per FPR tolerance) rather than per-example scores;
we pass those counts on so the harness computes Clopper-Pearson intervals from them.
For the population attack the per-example score is -loss (its rule is member iff loss < t).

usage: peer_privacymeter.py BUNDLE.npz OUT.json [--no-stub-dl]
"""

from __future__ import annotations

import argparse
import os
import sys
import types
from importlib import metadata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def _stub_dl() -> list[str]:
    stubbed = []
    for name in ("tensorflow", "torch", "opacus"):
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.__dict__["__stub__"] = True
            if name == "opacus":
                mod.GradSampleModule = type("GradSampleModule", (), {})
            sys.modules[name] = mod
            stubbed.append(name)
    return stubbed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-stub-dl", action="store_true")
    args = ap.parse_args(argv)
    out: dict = {"peer": "privacymeter", "attacks": {}, "error": None}
    try:
        out["version"] = metadata.version("privacy-meter")
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"not installed: {exc}"
        C.write_json(args.out, out)
        return 1
    try:
        import privacy_meter.metric  # noqa: F401
        out["plain_import"] = "ok"
    except BaseException as exc:  # noqa: BLE001
        out["plain_import"] = f"{type(exc).__name__}: {exc}"
        for k in [k for k in sys.modules if k.startswith("privacy_meter")]:
            del sys.modules[k]
        if args.no_stub_dl:
            out["error"] = f"import failed: {out['plain_import']}"
            C.write_json(args.out, out)
            return 1
        out["stubbed_modules"] = _stub_dl()
    try:
        from privacy_meter.dataset import Dataset
        from privacy_meter.hypothesis_test import linear_itp_threshold_func
        from privacy_meter.information_source import InformationSource
        from privacy_meter.information_source_signal import ModelLoss
        from privacy_meter.metric import PopulationMetric, ReferenceMetric
        from privacy_meter.model import Model
        from privacy_meter.utils import default_quantile
    except BaseException as exc:  # noqa: BLE001
        out["error"] = f"import failed even with stubs: {type(exc).__name__}: {exc}"
        C.write_json(args.out, out)
        return 1

    class StoredModel(Model):
        """A Privacy Meter Model whose inputs are row indices into stored log-probabilities."""

        def __init__(self, logp: np.ndarray):
            super().__init__(model_obj=None, loss_fn=None)
            self.logp = logp

        def get_logits(self, batch_samples):
            return self.logp[np.asarray(batch_samples, dtype=np.int64)]

        def get_loss(self, batch_samples, batch_labels, per_point=True):
            i = np.asarray(batch_samples, dtype=np.int64)
            return -self.logp[i, np.asarray(batch_labels, dtype=np.int64)]

        def get_grad(self, batch_samples, batch_labels):
            raise NotImplementedError

        def get_intermediate_outputs(self, layers, batch_samples, forward_pass=True):
            raise NotImplementedError

    b = C.load_bundle_arrays(args.bundle)
    n = len(b["labels"])
    m = b["is_member"]
    idx_in, idx_out = np.flatnonzero(m), np.flatnonzero(~m)
    labels = b["labels"]

    def points(result, scores_order_idx):
        """Operating points (fp, tp counts) from Privacy Meter's CombinedMetricResult."""
        n_pos, n_neg = len(idx_in), len(idx_out)
        fp = np.asarray(result.fp, dtype=int)
        tp = np.asarray(result.tp, dtype=int)
        return {
            "auc": float(result.roc_auc),
            "tpr_at_fpr": {str(f): C.roc_tpr_at_fpr(fp / n_neg, tp / n_pos, f) for f in C.FPRS},
            "epsilon_lower_bound": None,
        }, {"fp": fp.tolist(), "tp": tp.tolist(), "n_members": n_pos, "n_nonmembers": n_neg}

    target_ds = Dataset(
        data_dict={"train": {"x": idx_in, "y": labels[idx_in]}, "test": {"x": idx_out, "y": labels[idx_out]}},
        default_input="x", default_output="y",
    )

    def population() -> dict:
        if "population_logits" not in b:
            raise ValueError("bundle has no population_logits/population_labels (population attack needs them)")
        plog = np.asarray(b["population_logits"], dtype=np.float64)
        if plog.ndim == 3:
            plog = plog[:, 0, :]
        plog = plog - plog.max(1, keepdims=True)
        plog = plog - np.log(np.exp(plog).sum(1, keepdims=True))
        all_logp = np.concatenate([b["logp"], plog])
        model = StoredModel(all_logp)
        pop_idx = np.arange(n, n + len(plog))
        pop_ds = Dataset(data_dict={"train": {"x": pop_idx, "y": np.asarray(b["population_labels"])}},
                         default_input="x", default_output="y")
        tgt = InformationSource(models=[model], datasets=[target_ds])
        ref = InformationSource(models=[model], datasets=[pop_ds])
        metric = PopulationMetric(target_info_source=tgt, reference_info_source=ref, signals=[ModelLoss()],
                                  hypothesis_test_func=linear_itp_threshold_func)
        metric.prepare_metric()
        res = metric.run_metric(fpr_tolerance_rate_list=default_quantile())[0]
        rep, ops = points(res, None)
        scores = np.empty(n)
        loss = -b["logp"][np.arange(n), labels]
        scores[:] = -loss  # its decision rule: member iff loss < threshold
        return {"scores": scores, "reported": rep, "operating_points": ops,
                "note": "population = target's loss on held-out population data; linear_itp_threshold_func; "
                        "100 FPR tolerances (default_quantile)"}

    def reference() -> dict:
        if "ref_logits" not in b or "ref_is_member" not in b:
            raise ValueError("bundle has no ref_logits/ref_is_member (reference attack needs reference models)")
        rl = np.asarray(b["ref_logits"], dtype=np.float64)
        if rl.ndim == 4:
            rl = rl[:, :, 0, :]
        rl = rl - rl.max(2, keepdims=True)
        rl = rl - np.log(np.exp(rl).sum(2, keepdims=True))
        rin = np.asarray(b["ref_is_member"], dtype=bool)
        k_out = int((~rin).sum(0).min())
        if k_out < 1:
            raise ValueError("some example is IN for every reference model")
        # virtual OUT model j: for every example, its j-th OUT reference model
        order = np.argsort(rin, axis=0, kind="stable")  # OUT (False) rows first per column
        virt = [StoredModel(rl[order[j], np.arange(n)]) for j in range(k_out)]
        tgt = InformationSource(models=[StoredModel(b["logp"])], datasets=[target_ds])
        ref = InformationSource(models=virt, datasets=[target_ds])
        metric = ReferenceMetric(target_info_source=tgt, reference_info_source=ref, signals=[ModelLoss()],
                                 hypothesis_test_func=linear_itp_threshold_func)
        metric.prepare_metric()
        res = metric.run_metric(fpr_tolerance_rate_list=default_quantile())[0]
        rep, ops = points(res, None)
        return {"scores": None, "reported": rep, "operating_points": ops,
                "note": f"{k_out} OUT reference models per example; per-example quantile thresholds "
                        "(linear_itp_threshold_func); no per-example score exposed"}

    C.run_attack("population", population, out["attacks"])
    C.run_attack("reference", reference, out["attacks"])
    C.write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
