"""Loading a user's already-trained target model and its member / non-member index files (``[target]``).

Safe by default: ``.skops`` files load with skops' restricted loader (extra types must be listed in
``trusted``); pickle/joblib only with an explicit ``allow_pickle = true``, with a warning.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ConfigError, import_optional
from ..config import TargetConfig

__all__ = ["load_target_model", "read_indices"]

log = logging.getLogger("miaudit")


def read_indices(path: Path, key: str, n: int) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            idx = np.load(path, allow_pickle=False)
        else:
            delimiter = "," if path.suffix.lower() == ".csv" else None
            idx = np.loadtxt(path, delimiter=delimiter, ndmin=1)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"[target] {key}: cannot read indices from {path.name!r} ({exc}); expected a .npy array "
                          "or a text/CSV file of integer row indices") from None
    idx = np.asarray(idx).ravel()
    if idx.size == 0:
        raise ConfigError(f"[target] {key}: {path.name!r} holds no indices; list the target's {key} row indices")
    if not np.all(np.isfinite(idx.astype(np.float64))) or not np.all(np.asarray(idx, dtype=np.float64) % 1 == 0):
        raise ConfigError(f"[target] {key}: {path.name!r} must hold integer row indices, got non-integers")
    idx = idx.astype(np.int64)
    if idx.min() < 0 or idx.max() >= n:
        raise ConfigError(f"[target] {key}: indices must lie in [0, {n}) (rows of the dataset), got range "
                          f"[{idx.min()}, {idx.max()}]; index the rows of [data]")
    if np.unique(idx).size != idx.size:
        raise ConfigError(f"[target] {key}: {path.name!r} repeats indices; list each row once")
    return idx


def load_target_model(target: TargetConfig) -> Any:
    """Load the target model of ``[target]``: skops (safe; extra types must be listed in ``trusted``) or,
    only with ``allow_pickle = true``, pickle/joblib (with a warning); or, with ``callable``, the object at
    that import path (a function ``f(X) -> array``, a torch module, a fitted classifier)."""
    if target.callable is not None:  # the user's callable (an HTTP model is one): imported, never called here
        from .._imports import import_object

        return import_object(target.callable, key="[target] callable")
    path = target.model
    if path is None:  # pragma: no cover - the config demands model or callable
        raise ConfigError("[target] model: missing; add model = \"<file>\" or callable = \"package.module.function\"")
    suffix = path.suffix.lower()
    if suffix == ".skops":
        sio = import_optional("skops.io", "skops")
        try:
            untrusted = list(sio.get_untrusted_types(file=str(path)))
        except Exception as exc:  # noqa: BLE001 - any failure to parse is a bad file
            raise ConfigError(f"[target] model: {path.name!r} is not a readable skops file ({type(exc).__name__}: "
                              f"{exc}); save the model with skops.io.dump") from None
        missing = [t for t in untrusted if t not in target.trusted]
        if missing:
            raise ConfigError(f"[target] model: {path.name!r} contains types skops does not trust by default: "
                              f"{', '.join(missing)}; if you trust the file, add them to [target] trusted")
        try:
            return sio.load(str(path), trusted=list(untrusted))
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"[target] model: cannot load {path.name!r} ({type(exc).__name__}: {exc}); "
                              "re-save it with skops.io.dump") from None
    if suffix in (".pkl", ".pickle", ".joblib"):
        if not target.allow_pickle:
            raise ConfigError(f"[target] model: {path.name!r} is a pickle, which can run arbitrary code when loaded; "
                              "save it with skops.io.dump, or set allow_pickle = true if you trust the file")
        msg = f"loading {path.name!r} with pickle because allow_pickle = true: only do this for files you trust"
        log.warning(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
        import joblib

        try:
            return joblib.load(path)
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"[target] model: cannot unpickle {path.name!r} ({type(exc).__name__}: {exc})") from None
    raise ConfigError(f"[target] model: expected a .skops file (or .pkl/.joblib with allow_pickle = true), got {path.name!r}")


