"""The model cache: one ``.npz`` per trained model, keyed by everything that determines the model.

A model's key is the sha256 of (recipe spec, data fingerprint, its membership row, its seed, the cache
version and the versions of the numerical libraries). Files are written to a temporary name in the same
directory and renamed with :func:`os.replace`, which is atomic on POSIX and Windows: a reader sees either
no file or a complete one, whatever moment the writer is killed at (SIGKILL included).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import secrets
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_open

__all__ = [
    "CACHE_VERSION",
    "data_fingerprint",
    "model_key",
    "model_path",
    "write_model_file",
    "read_model_file",
    "remove_stale_temporaries",
]

#: Bump when the content or meaning of a cached model file changes.
CACHE_VERSION = 1

_TMP_RE = re.compile(r"\.tmp-(\d+)-[0-9a-f]+$")


def _library_versions() -> dict[str, str]:
    return {"numpy": np.__version__, "sklearn": _sklearn_version()}


@functools.cache
def _sklearn_version() -> str:
    """scikit-learn's version (``sklearn.__version__``), read from its installed metadata.

    Importing scikit-learn just for this string would cost about a second (it imports scipy.stats and
    pandas) in audits that never use it, e.g. of torch models; without metadata it is imported after all.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scikit-learn")
    except PackageNotFoundError:  # pragma: no cover - scikit-learn without its metadata (a bare source tree)
        import sklearn

        return str(sklearn.__version__)


def data_fingerprint(X: Any, y: np.ndarray) -> str:
    """sha256 over the values, dtypes and shapes of ``X`` (ndarray or DataFrame) and ``y``."""
    h = hashlib.sha256()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        h.update(b"dataframe")
        h.update(json.dumps([[str(c), str(X[c].dtype)] for c in X.columns]).encode())
        h.update(np.ascontiguousarray(pd.util.hash_pandas_object(X, index=False).to_numpy()).tobytes())
    else:
        arr = np.ascontiguousarray(np.asarray(X))
        if arr.dtype == object:
            h.update(b"object")
            h.update(repr(arr.tolist()).encode())
        else:
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.data.cast("B"))
    yy = np.ascontiguousarray(np.asarray(y, dtype=np.int64))
    h.update(f"y{yy.shape}".encode())
    h.update(yy.tobytes())
    return h.hexdigest()


def model_key(spec: dict[str, Any], fingerprint: str, membership_row: np.ndarray, seed: int) -> str:
    """Cache key of one model: sha256 hex of its recipe, data, membership row and seed."""
    row = np.asarray(membership_row, dtype=bool)
    payload = {
        "cache_version": CACHE_VERSION,
        "versions": _library_versions(),
        "recipe": spec,
        "data": fingerprint,
        "membership": hashlib.sha256(np.packbits(row).tobytes() + str(row.size).encode()).hexdigest(),
        "seed": int(seed),
    }
    blob = json.dumps(payload, sort_keys=True, default=str, allow_nan=True).encode()
    return hashlib.sha256(blob).hexdigest()


def model_path(run_dir: Path, key: str) -> Path:
    return Path(run_dir) / "models" / f"{key}.npz"


def write_model_file(path: Path, *, logits: np.ndarray, fit_seconds: float, predict_seconds: float, meta: dict[str, Any],
                     extras: dict[str, np.ndarray] | None = None) -> None:
    """Write one model's outputs atomically: temporary file, fsync, :func:`os.replace`. ``extras``: further
    per-example arrays (label-only answers), stored under ``extra_<name>``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    with atomic_open(path, tmp_path=tmp) as fh:
        arrays: dict[str, Any] = {f"extra_{k}": np.asarray(v) for k, v in (extras or {}).items()}
        np.savez(
            fh,
            logits=np.asarray(logits, dtype=np.float32),
            fit_seconds=np.float64(fit_seconds),
            predict_seconds=np.float64(predict_seconds),
            meta=np.array(json.dumps(meta, sort_keys=True, default=str)),
            **arrays,
        )


def read_model_file(path: Path, *, n_examples: int, n_classes: int) -> dict[str, Any] | None:
    """A finished model's outputs, or None when the file is absent, unreadable or of the wrong shape."""
    try:
        with np.load(path, allow_pickle=False) as z:
            logits = np.asarray(z["logits"], dtype=np.float32)
            out = {
                "logits": logits,
                "fit_seconds": float(z["fit_seconds"]),
                "predict_seconds": float(z["predict_seconds"]),
                "extras": {k[len("extra_"):]: np.asarray(z[k]) for k in z.files if k.startswith("extra_")},
            }
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    if logits.ndim != 3 or logits.shape[0] != n_examples or logits.shape[2] != n_classes:
        return None
    return out


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temporaries(models_dir: Path) -> int:
    """Delete temporary files left by killed writers (their process is gone). Returns how many."""
    removed = 0
    if not Path(models_dir).is_dir():
        return 0
    for p in Path(models_dir).iterdir():
        m = _TMP_RE.search(p.name)
        if m and not _pid_alive(int(m.group(1))):
            try:
                p.unlink()
                removed += 1
            except OSError:  # pragma: no cover - raced with another cleaner
                pass
    return removed
