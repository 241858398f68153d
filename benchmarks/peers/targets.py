"""The benchmark's targets: data, pool/population draw and the training recipe (main env, miaudit).

Every tool gets the same numeric feature matrix (Adult is one-hot encoded and standardised here, once,
so that ART's shadow models, miaudit's reference models and the target all see identical inputs),
the same member/non-member split and the same target outputs.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DIGITS_MLP = {"hidden_layer_sizes": [128], "max_iter": 200, "alpha": 1e-4}
ADULT_MLP = {"hidden_layer_sizes": [64], "max_iter": 60, "alpha": 1e-4}
MNIST_CNN = {"epochs": 15, "lr": 0.05, "batch_size": 64, "num_threads": 1}


@dataclass
class Target:
    name: str
    X: np.ndarray            # (N_total, D) float32, shuffled order is drawn per seed
    y: np.ndarray            # (N_total,) int64
    n_classes: int
    recipe_kind: str         # "sklearn_mlp" | "torch_cnn"
    params: dict[str, Any] = field(default_factory=dict)
    n_audit: int = 0
    n_population: int = 0
    note: str = ""


def load_digits_target(n_audit: int = 1400, n_population: int = 397) -> Target:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    n_audit = min(n_audit, len(y) - n_population)
    return Target("digits-mlp", X, y, 10, "sklearn_mlp", dict(DIGITS_MLP), n_audit, n_population)


def load_adult_target(path: str, n_audit: int = 10_000, n_population: int = 2_000) -> Target:
    import pandas as pd

    df = pd.read_csv(path, sep=r",\s*", engine="python", na_values=["?"])
    df = df.dropna().reset_index(drop=True)
    y = (df.pop("Salary").astype(str).str.strip().str.rstrip(".") == ">50K").to_numpy().astype(np.int64)
    cat = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    num = [c for c in df.columns if c not in cat]
    Xn = df[num].to_numpy(dtype=np.float64)
    Xn = (Xn - Xn.mean(0)) / np.maximum(Xn.std(0), 1e-12)
    Xc = pd.get_dummies(df[cat].astype(str), dtype=np.float64).to_numpy()
    X = np.hstack([Xn, Xc]).astype(np.float32)
    return Target("adult-mlp", X, y, 2, "sklearn_mlp", dict(ADULT_MLP), n_audit, n_population,
                  note=f"{len(num)} numeric (standardised) + one-hot {Xc.shape[1]} columns")


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = data[0:2], data[2], data[3]
    assert zero == b"\x00\x00" and dtype == 0x08
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist_target(folder: str, n_audit: int = 2_000, n_population: int = 500) -> Target:
    X = _read_idx(os.path.join(folder, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = _read_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    return Target("mnist-cnn", X, y, 10, "torch_cnn", dict(MNIST_CNN), n_audit, n_population,
                  note="28x28 grey images; miaudit TorchRecipe small_cnn (SGD, 15 epochs, no augmentation)")


def draw(target: Target, seed: int) -> dict[str, np.ndarray]:
    """Audit pool and population for one seed (a seeded permutation of all rows)."""
    rng = np.random.default_rng([seed, 7001])
    perm = rng.permutation(len(target.y))
    audit = perm[: target.n_audit]
    pop = perm[target.n_audit: target.n_audit + target.n_population]
    return {"audit": audit, "population": pop}


def make_recipe(target: Target):
    """A miaudit recipe (Recipe protocol) for the target's model."""
    if target.recipe_kind == "sklearn_mlp":
        from miaudit.training import SklearnRecipe

        return SklearnRecipe("sklearn.neural_network.MLPClassifier", target.params,
                             preprocessing="none", n_classes=target.n_classes)
    if target.recipe_kind == "torch_cnn":
        try:
            from miaudit.training.torch_recipe import TorchRecipe
        except Exception as exc:  # noqa: BLE001
            raise RuntimeError(f"miaudit.training.torch_recipe not importable: {type(exc).__name__}: {exc}") from exc
        return TorchRecipe("small_cnn", n_classes=target.n_classes, **target.params)
    raise ValueError(target.recipe_kind)


def recipe_json(target: Target) -> dict[str, Any]:
    return {"kind": target.recipe_kind, "params": target.params, "n_classes": target.n_classes}


def export_model(model: Any) -> dict[str, np.ndarray]:
    """The trained target's weights as plain arrays (for peers that need the model itself as a torch module:
    LeakPro). sklearn MLP: coefs/intercepts per layer; torch: the state dict (keys prefixed ``sd:``)."""
    est = model[-1] if hasattr(model, "steps") else model
    out: dict[str, np.ndarray] = {}
    if hasattr(est, "coefs_"):
        for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_)):
            out[f"mlp_W{i}"] = np.asarray(w, dtype=np.float32)
            out[f"mlp_b{i}"] = np.asarray(b, dtype=np.float32)
        out["mlp_activation"] = np.array(est.activation)
        out["mlp_classes"] = np.asarray(est.classes_)
        return out
    if hasattr(model, "state_dict"):
        for k, v in model.state_dict().items():
            out[f"sd:{k}"] = v.detach().cpu().numpy()
    return out
