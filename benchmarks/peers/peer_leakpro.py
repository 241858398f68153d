"""LeakPro (aidotse/LeakPro @ c47752fa, source snapshot) on a miaudit game, through its own `LeakPro` entry point.

Runs inside /work/peer-envs/leakpro. LeakPro needs a torch target model, a pickled population dataset, the target's
training metadata and a user input handler with `train`/`eval` (it always trains shadow models through the
user's `train`). We give it:
  * population = the audit pool followed by the bundle's population set (features from features.npz);
    target train/test indices = the pool's members/non-members (the harness's split);
  * the target = the harness's trained model as a torch module with the same weights (`_leakpro_models.py`:
    TorchMLP from the sklearn MLP's coefficients; SmallCNN from the state dict); its outputs are checked
    against the bundle's stored logits before anything runs;
  * `train` = the target's own recipe (the sklearn MLP recipe, weights copied into the torch module; the CNN:
    SGD, momentum 0.9, the recipe's lr/epochs/batch size), `eval` = accuracy/cross-entropy.
LeakPro picks its own shadow-model design (balanced halves of its population = pool + population set, so
each shadow model trains on (N_pool + N_pop) / 2 examples) and caches its shadow models across attacks: the
K=16 attacks reuse the 8 models of the K=8 ones.

Attacks (config names): lira (online/offline), rmia (online/offline), multi_signal_lira (online), qmia,
population (its `attack_p`), base (online), loss_traj, seqmia, yoqo, oslo, HSJ (settings and the adapters they
need: README); dts and ramia do not apply (README; `--attacks dts` / `--attacks ramia` records how they fail).

Per-example scores are LeakPro's `MIAResult.signal_values` (ordered train indices then test indices, checked
against its `true_labels`), mapped back to bundle order.

usage: peer_leakpro.py BUNDLE.npz OUT.json --features F.npz --workdir DIR [--k 8,16] [--seed S]
"""

from __future__ import annotations

import argparse
import importlib.machinery
import logging
import os
import sys
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common as C  # noqa: E402


def stub_torchvision() -> bool:
    """PyPI's torchvision 0.28.0 (the build for torch 2.13) links libtorch_cuda and cannot be imported next to
    torch 2.13.0+cpu; LeakPro imports it at package import (image extension, report images) but none of the
    attacks run here call it. A stand-in module tree in this process only."""
    try:
        import torchvision  # noqa: F401
        return False
    except Exception:  # noqa: BLE001
        pass

    try:  # transformers (imported by LeakPro and Privacy Meter) caches whether torchvision exists: ask it first
        import transformers.utils.import_utils as tiu

        tiu.is_torchvision_available()
    except Exception:  # noqa: BLE001
        pass

    class _Meta(type):
        def __getattr__(cls, attr: str) -> type:  # e.g. transforms.InterpolationMode.NEAREST_EXACT
            if attr.startswith("__"):
                raise AttributeError(attr)
            return cls

    class _Dummy(metaclass=_Meta):
        def __init__(self, *a, **k) -> None:  # noqa: ANN002, ANN003
            raise RuntimeError("torchvision stand-in: not available in this environment")

    def make(name: str) -> types.ModuleType:
        mod = types.ModuleType(name)
        def getattr_(attr: str) -> type:
            if attr.startswith("__"):
                raise AttributeError(attr)
            return _Dummy

        mod.__dict__["__getattr__"] = getattr_
        mod.__path__ = []  # a package, so submodule imports resolve through sys.modules
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        sys.modules[name] = mod
        return mod

    root = make("torchvision")
    for sub in ("utils", "models", "models.convnext", "transforms", "transforms.functional", "datasets", "io", "ops"):
        mod = make(f"torchvision.{sub}")
        parent = root if "." not in sub else sys.modules[f"torchvision.{sub.rsplit('.', 1)[0]}"]
        setattr(parent, sub.rsplit(".", 1)[-1], mod)
    return True


ATTACKS = {
    # name -> (LeakPro attack, config without num_shadow_models, uses K)
    "lira_online": ("lira", {"online": True}, True),
    "lira_offline": ("lira", {"online": False}, True),
    "rmia_online": ("rmia", {"online": True}, True),
    "rmia_offline": ("rmia", {"online": False}, True),
    "mslira_online": ("multi_signal_lira", {"online": True,
                                             "signal_names": ["ModelRescaledLogits", "ModelLoss"]}, True),
    "base_online": ("base", {"online": True}, True),
    "qmia": ("qmia", {}, False),
    "population": ("population", {}, False),
    # issue 15, extra: the remaining attacks that apply to these targets and run on CPU (settings: see README)
    "loss_traj": ("loss_traj", {}, False),                          # its defaults: 1 distillation epoch
    "loss_traj_t20": ("loss_traj", {"number_of_traj": 20}, False),  # a 20-epoch trajectory
    "seqmia": ("seqmia", {}, False),                                # its defaults: 1 distillation epoch
    "seqmia_t20": ("seqmia", {"number_of_traj": 20}, False),
    "yoqo": ("yoqo", {"training_data_fraction": 0.5}, False),       # default fraction 0.01 = 3-5 training points
    "oslo": ("oslo", {}, False),                                    # n_audits: --oslo-audits
    "HSJ": ("HSJ", {"verbose": False}, False),                      # attack_data_fraction: --hsj-fraction
}
# not applicable here, kept to record how they fail (not in the default list): dts (time-series forecasting
# models), ramia (image augmentations + an ImageNet ResNet-18 from torchvision)
NOT_DEFAULT = {"dts": ("dts", {}, False), "ramia": ("ramia", {}, False)}
# attacks that score a subset of the pool (rows they do not score stay null and are left out of the metrics)
SUBSET_ATTACKS = ("oslo", "HSJ")


def main(argv: list[str] | None = None) -> int:  # noqa: C901, PLR0915
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", default="8,16")
    ap.add_argument("--features", help="features.npz (not with --e2e)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--qmia-epochs", type=int, default=100)
    ap.add_argument("--oslo-audits", type=int, default=None,
                    help="OSLO's n_audits (default: its 500 for MLPs, 100 for the CNN)")
    ap.add_argument("--hsj-fraction", type=float, default=0.5,
                    help="HSJ's attack_data_fraction (its default 0.1 leaves 70 non-members per digits game: no TPR@1%%)")
    ap.add_argument("--e2e", action="store_true", help="BUNDLE is a data file; train the target here (timing runs)")
    args = ap.parse_args(argv)
    out: dict = {"peer": "leakpro", "version": "0.1.0@c47752fa", "attacks": {}, "error": None}
    out["torchvision_stubbed"] = stub_torchvision()
    t_import = time.perf_counter()
    try:
        import joblib
        import torch
        import yaml
        from leakpro import LeakPro
        from leakpro.input_handler.abstract_input_handler import AbstractInputHandler
        from leakpro.schemas import (
            DataLoaderConfig,
            EvalOutput,
            LossConfig,
            MIAMetaDataSchema,
            OptimizerConfig,
            TrainingOutput,
        )
    except BaseException as exc:  # noqa: BLE001
        out["error"] = f"import failed: {type(exc).__name__}: {exc}"
        C.write_json(args.out, out)
        return 1
    out["import_s"] = round(time.perf_counter() - t_import, 2)
    logging.getLogger("leakpro").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    import _leakpro_models as LM

    if args.e2e:
        # end-to-end mode: BUNDLE is a data file (X, y, X_population, y_population, is_member, recipe); the target is
        # trained here with the same `train` LeakPro uses for its shadow models (LeakPro itself never trains targets)
        with np.load(args.bundle, allow_pickle=False) as z:
            X, y = np.asarray(z["X"], dtype=np.float32), np.asarray(z["y"], dtype=np.int64)
            Xp, yp = np.asarray(z["X_population"], dtype=np.float32), np.asarray(z["y_population"], dtype=np.int64)
            b = {"is_member": np.asarray(z["is_member"], dtype=bool), "labels": y}
            recipe = __import__("json").loads(str(z["recipe"]))
        weights = {}
    else:
        b = C.load_bundle_arrays(args.bundle)
        X, y, recipe = C.load_features(args.features)
        with np.load(args.features, allow_pickle=False) as z:
            Xp = np.asarray(z["X_population"], dtype=np.float32)
            weights = {k: z[k] for k in z.files if k.startswith(("mlp_", "sd:"))}
        yp = np.asarray(b["population_labels"], dtype=np.int64)
    if (len(b["labels"]) + len(yp)) % 2:
        # LeakPro's construct_balanced_assignments gives the second model of each pair one example more when its
        # population is odd, then its own check rejects that design (ValueError "Balanced shadow assignments must
        # contain half of the shadow population per model"): drop the last population-set example.
        Xp, yp = Xp[:-1], yp[:-1]
        out["population_trimmed_to_even"] = True
    m = b["is_member"]
    n = len(m)
    idx_in, idx_out = np.flatnonzero(m), np.flatnonzero(~m)
    kind, params, n_classes = recipe["kind"], recipe["params"], recipe["n_classes"]
    Xall = np.concatenate([X, Xp]).astype(np.float32)
    yall = np.concatenate([y, yp]).astype(np.int64)
    if kind == "torch_cnn":
        Xall = Xall.reshape(len(Xall), 1, *Xall.shape[-2:])
        init = {"in_channels": 1, "n_classes": n_classes, "image_size": int(Xall.shape[-1])}
        model_class = "SmallCNN"
    else:
        Xall = Xall.reshape(len(Xall), -1)
        hidden = params["hidden_layer_sizes"][0] if "hidden_layer_sizes" in params else params["hidden"]
        init = {"n_features": int(Xall.shape[1]), "hidden": int(hidden), "n_classes": n_classes}
        model_class = "TorchMLP"
    wd = os.path.abspath(args.workdir)
    os.makedirs(f"{wd}/target", exist_ok=True)
    seed_counter = [1000 * args.seed]

    def copy_sklearn(est, model) -> None:  # noqa: ANN001
        W0, W1 = est.coefs_
        b0, b1 = est.intercepts_
        with torch.no_grad():
            model.fc1.weight.copy_(torch.from_numpy(np.asarray(W0.T, dtype=np.float32)))
            model.fc1.bias.copy_(torch.from_numpy(np.asarray(b0, dtype=np.float32)))
            if W1.shape[1] == 1:  # binary: logits [0, z]
                w = np.zeros((2, W1.shape[0]), dtype=np.float32)
                w[1] = W1[:, 0]
                bb = np.array([0.0, b1[0]], dtype=np.float32)
            else:
                w, bb = np.asarray(W1.T, dtype=np.float32), np.asarray(b1, dtype=np.float32)
            model.fc2.weight.copy_(torch.from_numpy(w))
            model.fc2.bias.copy_(torch.from_numpy(bb))

    def evaluate(loader, model, criterion) -> EvalOutput:  # noqa: ANN001
        model.eval()
        tot, correct, loss = 0, 0, 0.0
        with torch.no_grad():
            for xb, yb in loader:
                o = model(xb)
                loss += float(criterion(o, yb)) * len(yb)
                correct += int((o.argmax(1) == yb).sum())
                tot += len(yb)
        return EvalOutput(accuracy=correct / max(1, tot), loss=loss / max(1, tot))

    class Handler(AbstractInputHandler):
        UserDataset = LM.UserDataset

        def train(self, dataloader, model, criterion, optimizer, epochs):  # noqa: ANN001, ANN201
            seed_counter[0] += 1
            if kind == "sklearn_mlp":
                from sklearn.neural_network import MLPClassifier  # noqa: PLC0415

                ds = dataloader.dataset
                est = MLPClassifier(hidden_layer_sizes=tuple(params["hidden_layer_sizes"]), max_iter=params["max_iter"],
                                    alpha=params["alpha"], random_state=seed_counter[0])
                est.fit(ds.data.numpy().reshape(len(ds.data), -1), ds.targets.numpy())
                if len(est.classes_) != n_classes:
                    if n_classes == 2 or len(est.classes_) < 2:
                        raise RuntimeError("a shadow training set misses a class")
                    # a small shadow set (loss_traj/seqmia: ~100 points) can miss a digit: the model never predicts
                    # it (its logit is its output bias -30), as an sklearn model trained without it would not
                    W1, b1 = est.coefs_[1], est.intercepts_[1]
                    W1f = np.zeros((W1.shape[0], n_classes), dtype=np.float32)
                    b1f = np.full(n_classes, -30.0, dtype=np.float32)
                    W1f[:, est.classes_], b1f[est.classes_] = W1, b1
                    est = types.SimpleNamespace(coefs_=[est.coefs_[0], W1f], intercepts_=[est.intercepts_[0], b1f])
                copy_sklearn(est, model)
            else:
                torch.manual_seed(seed_counter[0])
                model.train()
                # the recipe shuffles every epoch; LeakPro's loaders follow the recorded data_loader config, which
                # we record with shuffle=False (see `meta` below), so the shuffling is done here
                shuffled = torch.utils.data.DataLoader(dataloader.dataset, batch_size=dataloader.batch_size,
                                                       shuffle=True)
                for _ in range(epochs):
                    for xb, yb in shuffled:
                        optimizer.zero_grad()
                        criterion(model(xb), yb).backward()
                        optimizer.step()
            model.eval()
            return TrainingOutput(model=model, metrics=evaluate(dataloader, model, criterion))

        def eval(self, loader, model, criterion, device=None):  # noqa: ANN001, ANN201, ARG002
            return evaluate(loader, model, criterion)

    # the target as a torch module with the harness model's weights, checked against the stored outputs
    target = getattr(LM, model_class)(**init)
    crit = torch.nn.CrossEntropyLoss()
    if kind == "sklearn_mlp":
        opt = OptimizerConfig(name="adam", params={"lr": 1e-3})  # sklearn's default solver (train ignores it)
        bs, epochs = 200, int(params["max_iter"])
    else:
        opt = OptimizerConfig(name="sgd", params={"lr": params["lr"], "momentum": params.get("momentum", 0.9)})
        bs, epochs = int(params["batch_size"]), int(params["epochs"])
    if args.e2e:
        t_tr = time.perf_counter()
        tl = torch.utils.data.DataLoader(Handler.UserDataset(Xall[idx_in], yall[idx_in]), batch_size=bs, shuffle=True)
        torch.manual_seed(args.seed)
        Handler.train(None, tl, target, crit, torch.optim.SGD(target.parameters(), **opt.params), epochs)
        out["target_train_s"] = round(time.perf_counter() - t_tr, 2)
    elif kind == "sklearn_mlp":
        est = types.SimpleNamespace(coefs_=[weights["mlp_W0"], weights["mlp_W1"]],
                                    intercepts_=[weights["mlp_b0"], weights["mlp_b1"]])
        copy_sklearn(est, target)
    else:
        target.load_state_dict({k[3:]: torch.from_numpy(v) for k, v in weights.items()})
    target.eval()
    with torch.no_grad():
        lg = target(torch.from_numpy(Xall[:n])).double().numpy()
    lg = lg - lg.max(1, keepdims=True)
    lg = lg - np.log(np.exp(lg).sum(1, keepdims=True))
    # compared on probabilities: the stored log-probabilities of saturated sklearn outputs are log(clipped 0)
    err = 0.0 if args.e2e else float(np.abs(np.exp(lg) - b["probs"]).max())
    out["target_prob_max_abs_diff"] = None if args.e2e else err
    if err > 1e-4 and not args.e2e:
        out["error"] = f"the torch copy of the target does not reproduce the stored outputs (max |diff| {err:.2e})"
        C.write_json(args.out, out)
        return 1
    torch.save(target.state_dict(), f"{wd}/target/target_model.pkl")
    ds_all = Handler.UserDataset(Xall, yall)
    loader = torch.utils.data.DataLoader(Handler.UserDataset(Xall[idx_in], yall[idx_in]), batch_size=512)
    loader_te = torch.utils.data.DataLoader(Handler.UserDataset(Xall[idx_out], yall[idx_out]), batch_size=512)
    meta = MIAMetaDataSchema(train_indices=idx_in.tolist(), test_indices=idx_out.tolist(), num_train=len(idx_in),
                             init_params=init, optimizer=opt, criterion=LossConfig(name="crossentropyloss", params={}),
                             # shuffle=False: LeakPro's qmia (run_attack), loss_traj (_prepare_mia_data) and yoqo
                             # iterate handler.get_dataloader(indices) without shuffle=False and then pair the
                             # batches with index-ordered arrays; with the training loader's shuffle=True (what
                             # make_mia_metadata records from a shuffling loader) their rows are misaligned.
                             data_loader=DataLoaderConfig(params={"batch_size": bs, "shuffle": False}), epochs=epochs,
                             train_result=evaluate(loader, target, crit), test_result=evaluate(loader_te, target, crit),
                             dataset=os.path.basename(os.path.dirname(os.path.abspath(args.bundle))))
    joblib.dump(meta, f"{wd}/target/model_metadata.pkl")
    joblib.dump(ds_all, f"{wd}/population.pkl")

    ks = [int(v) for v in args.k.split(",") if v]
    n_img = int(round(np.sqrt(Xall[0].size)))
    # HSJ (its HopSkipJumpDistance) takes (C, H, W) inputs clipped to [-1, 1]: the CNN's images as they are; an MLP's
    # features only when they are a square grey image in [0, 1] (digits: 8x8), run on a second population file
    # holding the same rows as 1 x H x W images (TorchMLP flattens its input)
    hsj_image_view = (kind != "torch_cnn" and n_img * n_img == Xall[0].size
                      and float(Xall.min()) >= -1.0 and float(Xall.max()) <= 1.0)
    names, types_, attack_list, later = [], [], [], []
    for name in [a for a in args.attacks.split(",") if a]:
        att, cfg, uses_k = ATTACKS[name] if name in ATTACKS else NOT_DEFAULT[name]
        if name == "qmia":
            cfg = {**cfg, "epochs": args.qmia_epochs, "quantiles": [0.9, 0.99, 0.999]}
        if att == "oslo":
            cfg = {**cfg, "n_audits": args.oslo_audits or (100 if kind == "torch_cnn" else 500)}
        if att == "HSJ":
            cfg = {**cfg, "attack_data_fraction": args.hsj_fraction}
            if kind != "torch_cnn":
                later.append((name, att, cfg))
                continue
        for k in (ks if uses_k else [None]):
            names.append(f"{name}_k{k}" if k else name)
            types_.append(att)
            attack_list.append({"attack": att, **cfg, **({"num_shadow_models": k} if k else {})})

    def make_config(attacks: list, out_dir: str, data_path: str) -> str:
        config = {"audit": {"random_seed": args.seed, "attack_type": "mia", "data_modality": "tabular",
                            "output_dir": out_dir, "attack_list": attacks},
                  "target": {"module_path": os.path.join(HERE, "_leakpro_models.py"), "model_class": model_class,
                             "target_folder": f"{wd}/target", "data_path": data_path}}
        path = f"{out_dir}.yaml"
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        return path

    config_path = make_config(attack_list, f"{wd}/out", f"{wd}/population.pkl")
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    try:
        lp = LeakPro(Handler, config_path)
    except BaseException as exc:  # noqa: BLE001
        out["error"] = f"LeakPro setup failed: {type(exc).__name__}: {exc}"
        C.write_json(args.out, out)
        return 1
    out["setup_s"] = round(time.perf_counter() - t0, 2)
    n_in = len(idx_in)

    def fn(att_obj, att_type: str) -> dict:  # noqa: ANN001, C901
        t = time.perf_counter()
        if att_type in ("loss_traj", "seqmia"):  # their trajectory/classifier pickles are reloaded when present
            import shutil  # noqa: PLC0415

            shutil.rmtree(att_obj.storage_dir, ignore_errors=True)
        att_obj.prepare_attack()
        t_prep = time.perf_counter() - t
        extra: dict = {}
        captured: list = []
        if att_type in ("loss_traj", "seqmia"):
            # its test loader is built with shuffle=True and the scores come back in that shuffled order (true
            # labels shuffled alongside): evaluated in index order instead (no randomness in evaluation)
            dl = att_obj.mia_test_data_loader
            att_obj.mia_test_data_loader = torch.utils.data.DataLoader(dl.dataset, batch_size=dl.batch_size,
                                                                       shuffle=False)
        if att_type == "yoqo":
            # YOQO returns one confusion matrix; its per-example decision (target's label at x' == true label) is
            # read off its own target queries, in audit order
            tm = att_obj.target_model
            orig_get_logits = tm.get_logits

            def rec(xb):  # noqa: ANN001, ANN202
                lg_ = orig_get_logits(xb)
                captured.append(np.asarray(lg_))
                return lg_

            tm.get_logits = rec
            try:
                res = att_obj.run_attack()
            finally:
                del tm.get_logits
        else:
            res = att_obj.run_attack()
        true = np.asarray(res.true, dtype=int).ravel()
        if att_type == "HSJ":
            # HSJ draws audit *positions* (0..N_in-1 members, N_in.. non-members) and passes them to
            # handler.get_dataloader as population indices: the rows it queries are population rows with those
            # numbers, whatever their membership; scores are mapped to the rows actually queried and scored with
            # their true membership (its own labels are kept as `leakpro_label_agreement`)
            rows = np.concatenate([att_obj.audit_in_member_indicies, att_obj.audit_out_member_indicies]).astype(int)
            sv = np.asarray(res.signal_values, dtype=np.float64).ravel()
            extra["leakpro_label_agreement"] = float(np.mean(m[rows] == true.astype(bool)))
        elif att_type == "oslo":
            rows = np.asarray(att_obj.audit_data_indices, dtype=int)  # drawn from the whole population
            sv = np.asarray(res.signal_values, dtype=np.float64).ravel()
            ok_pool = rows < n
            if not np.array_equal(true[ok_pool].astype(bool), m[rows[ok_pool]]) or true[~ok_pool].any():
                raise RuntimeError("OSLO's labels disagree with the split")
            extra["n_audited_population_set_rows_dropped"] = int((~ok_pool).sum())
        elif att_type == "yoqo":
            rows = np.asarray(att_obj.audit_data_indices, dtype=int)
            lg_all = np.concatenate(captured)
            sv = (lg_all.argmax(1) == yall[rows]).astype(np.float64)
            tp_ours, fp_ours = int((sv * true).sum()), int((sv * (1 - true)).sum())
            extra.update({"tp": np.asarray(getattr(res, "tp", [])).tolist(), "fp": np.asarray(getattr(res, "fp", [])).tolist(),
                          "tp_recomputed": tp_ours, "fp_recomputed": fp_ours})
            if not np.array_equal(true.astype(bool), m[rows]):
                raise RuntimeError("YOQO's labels disagree with the split")
        else:
            rows = np.concatenate([idx_in, idx_out])
            if res.signal_values is None and hasattr(att_obj, "quantile_regressor"):
                # QMIA reports confusion counts at its quantiles only; the per-example score is its own margin
                # (target signal - predicted quantile) at the quantile level 0.99
                qs = list(att_obj.quantiles)
                j = int(np.argmin(np.abs(np.asarray(qs) - 0.99)))
                with torch.no_grad():
                    thr = np.concatenate([att_obj.quantile_regressor(xb).numpy()
                                          for xb, _ in att_obj.get_dataloader(att_obj.audit_dataset["data"])])
                sv = np.asarray(att_obj.target_logits, dtype=np.float64).ravel() - thr[:, j]
                extra = {"operating_points_quantiles": qs, "tp": np.asarray(res.tp).tolist(),
                         "fp": np.asarray(res.fp).tolist()}
            else:
                sv = np.asarray(res.signal_values, dtype=np.float64).ravel()
            if len(sv) != n or not (np.all(true[:n_in] == 1) and np.all(true[n_in:] == 0)):
                raise RuntimeError(f"unexpected result layout: {len(sv)} scores, {int(true.sum())} members")
        if len(sv) != len(rows):
            raise RuntimeError(f"{len(sv)} scores for {len(rows)} audited rows")
        s = np.full(n, np.nan)
        keep = rows < n
        s[rows[keep]] = sv[keep]
        scored = ~np.isnan(s)
        fx = getattr(res, "fixed_fpr_table", None) or {}
        roc_auc = getattr(res, "roc_auc", None)
        return {"scores": s, "subset": bool(not scored.all()),
                "n_scored": int(scored.sum()), "n_scored_members": int((scored & m).sum()),
                "reported": {"auc": float(roc_auc) if roc_auc is not None else None, "fixed_fpr": fx, **extra},
                "note": f"prepare (shadow models, signals) {t_prep:.1f}s; scored {int(scored.sum())}/{n} pool rows",
                "prepare_s": round(t_prep, 2)}

    def sign_fixed(name: str, why: str) -> None:
        """The same run's scores negated, as a separate row marked as our fix (no new queries or training)."""
        a = out["attacks"].get(name) or {}
        if a.get("scores") is None:
            return
        out["attacks"][name + "_signfixed"] = {
            **a, "scores": [None if v is None else -v for v in a["scores"]], "reported": {},
            "note": f"the {name} row's scores negated (our sign fix: {why})"}

    def hsj_sign_fixed(name: str) -> None:
        # HSJ returns minus the distance to the decision boundary ('largest values are the most likely to be in the
        # training dataset'), but members lie farther from the boundary (Choquette-Choo et al.)
        sign_fixed(name, "HSJ scores minus the boundary distance; members are the far ones")

    sched = lp.attack_scheduler
    for name, att_type, att_obj in zip(names, types_, sched.attacks):
        C.run_attack(name, lambda att_obj=att_obj, att_type=att_type: fn(att_obj, att_type), out["attacks"])
        if att_type == "HSJ":
            hsj_sign_fixed(name)
        if att_type == "loss_traj":
            # its prepare_attack labels the shadow model's *unused* points as members (train_mask =
            # np.isin(shadow_data_indices, shadow_not_used_indices)); seqmia's copy of the code uses the training points
            sign_fixed(name, "loss_traj trains its classifier with the shadow model's non-members labelled 1")
        C.write_json(args.out, out)
    for name, att, cfg in later:  # HSJ on an MLP target
        if not hsj_image_view:
            out["attacks"][name] = {"scores": None, "reported": {}, "wall_s": 0.0,
                                    "error": (f"not applicable: HSJ takes (C, H, W) image inputs clipped to [-1, 1]; "
                                              f"these are {Xall[0].size} standardised tabular features")}
            continue

        def run_img(att=att, cfg=cfg) -> dict:
            joblib.dump(Handler.UserDataset(Xall.reshape(len(Xall), 1, n_img, n_img), yall), f"{wd}/population_img.pkl")
            lp2 = LeakPro(Handler, make_config([{"attack": att, **cfg}], f"{wd}/out_img", f"{wd}/population_img.pkl"))
            return fn(lp2.attack_scheduler.attacks[0], att)

        C.run_attack(name, run_img, out["attacks"])
        hsj_sign_fixed(name)
        C.write_json(args.out, out)
    C.write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
