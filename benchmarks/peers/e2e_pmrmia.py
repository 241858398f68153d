"""Privacy Meter's own pipeline (its run_mia.py flow) on our data, for the end-to-end timing (pmrmia env).

The steps and functions of its `run_mia.py::main` in order, timed each: `util.initialize_seeds`, data (our pool and
population arrays instead of its `load_dataset`, which only knows its own datasets), `models.utils.
split_dataset_for_training` + `train_models` (its trainer `trainers/default_trainer.train`: its optimizer, its LR
schedule, its DataLoader with 4 workers), `audit.sample_auditing_dataset`, `get_signals.get_model_signals` on the
pool and on the population, `audit.audit_models` (RMIA, offline_a tuned as it does). Two things are patched
because its tables only list its datasets: `models.utils.INPUT_OUTPUT_SHAPE` gets our dataset, and `get_model`
returns the shared recipe's network (`_leakpro_models.TorchMLP` / `SmallCNN`, the same architecture every tool
trains here) instead of its own MLP (tanh) / CIFAR CNN. torchvision is a stand-in (see setup_envs.sh).

With --k K it trains K + 2 models (num_ref_models = K / 2: (K/2 + 1) complementary pairs, as its main does),
attacks model 0 with the K models outside its pair, like `miaudit audit` with n_references = K.

usage: e2e_pmrmia.py DATA.npz OUT.json --pm-src DIR --workdir DIR --k 8
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--pm-src", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    import peer_leakpro  # only for its torchvision stand-in

    peer_leakpro.stub_torchvision()
    sys.path.insert(0, args.pm_src)
    import _leakpro_models as LM
    import audit as pm_audit
    import get_signals as pm_signals
    import models.utils as pm_models
    import torch
    import util as pm_util
    from torch.utils.data import Subset, TensorDataset
    phases["start-up (imports)"] = time.perf_counter() - t0

    t = time.perf_counter()
    with np.load(args.data, allow_pickle=False) as z:
        X, y = np.asarray(z["X"], dtype=np.float32), np.asarray(z["y"], dtype=np.int64)
        Xp, yp = np.asarray(z["X_population"], dtype=np.float32), np.asarray(z["y_population"], dtype=np.int64)
        recipe = json.loads(str(z["recipe"]))
    p, kind = recipe["params"], recipe["kind"]
    if kind == "torch_cnn":
        X, Xp = X.reshape(len(X), 1, *X.shape[-2:]), Xp.reshape(len(Xp), 1, *Xp.shape[-2:])

        def make() -> torch.nn.Module:
            return LM.SmallCNN(in_channels=1, n_classes=recipe["n_classes"], image_size=X.shape[-1])
    else:
        def make() -> torch.nn.Module:
            return LM.TorchMLP(n_features=X.shape[1], hidden=p["hidden"], n_classes=recipe["n_classes"])
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    population = TensorDataset(torch.from_numpy(Xp), torch.from_numpy(yp))
    pm_models.INPUT_OUTPUT_SHAPE["ours"] = [int(np.prod(X.shape[1:])), recipe["n_classes"]]
    pm_models.get_model = lambda model_type, dataset_name, configs: make()
    log_dir = os.path.abspath(args.workdir)
    configs = {
        "run": {"random_seed": args.seed, "log_dir": log_dir, "time_log": True, "num_experiments": 1},
        "audit": {"privacy_game": "privacy_loss_model", "algorithm": "RMIA", "num_ref_models": args.k // 2,
                  "device": "cpu", "report_log": "report_rmia", "batch_size": 5000},
        "train": {"model_name": "ours", "device": "cpu", "batch_size": p["batch_size"], "optimizer": "SGD",
                  "learning_rate": p["lr"], "momentum": p.get("momentum", 0.9), "weight_decay": 0,
                  "epochs": p["epochs"]},
        "data": {"dataset": "ours", "data_dir": os.path.join(log_dir, "data")},
    }
    for d in (log_dir, f"{log_dir}/report", f"{log_dir}/signals", configs["data"]["data_dir"]):
        os.makedirs(d, exist_ok=True)
    logger = logging.getLogger("pm")
    logging.basicConfig(level=logging.WARNING)
    pm_util.initialize_seeds(args.seed)
    phases["data"] = time.perf_counter() - t

    t = time.perf_counter()
    num_model_pairs = max(1, args.k // 2 + 1)
    data_splits, memberships = pm_models.split_dataset_for_training(len(dataset), num_model_pairs)
    models_list = pm_models.train_models(log_dir, dataset, data_splits, memberships, configs, logger)
    phases["training"] = time.perf_counter() - t

    t = time.perf_counter()
    auditing_dataset, auditing_membership = pm_audit.sample_auditing_dataset(configs, dataset, logger, memberships)
    population = Subset(population, np.random.choice(len(population), len(population), replace=False))
    signals = pm_signals.get_model_signals(models_list, auditing_dataset, configs, logger)
    population_signals = pm_signals.get_model_signals(models_list, population, configs, logger, is_population=True)
    phases["scoring (signals)"] = time.perf_counter() - t
    t = time.perf_counter()
    mia_scores, membership = pm_audit.audit_models(f"{log_dir}/report/exp", [0], signals, population_signals,
                                                   auditing_membership, args.k // 2, logger, configs)
    phases["scoring (attack) + report"] = time.perf_counter() - t
    phases["total in process"] = time.perf_counter() - t0
    from sklearn.metrics import roc_auc_score

    res = {"phases_s": {k: round(v, 2) for k, v in phases.items()}, "n_models": len(models_list),
           "auc": float(roc_auc_score(np.asarray(membership[0]).astype(int), np.asarray(mia_scores[0])))}
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
