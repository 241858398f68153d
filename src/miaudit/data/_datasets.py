"""Datasets for the membership game: the embedded digits, tables, ``.npz`` arrays, MNIST IDX, UCI Adult.

:func:`load_dataset` takes a JSON-able ``spec`` dict (the ``data`` section of an audit config) and
returns a :class:`Dataset` with ``y`` encoded as int64 class indices in ``[0, C)``.

Spec keys, per ``kind`` (every kind also takes ``max_examples`` and ``seed`` for a stratified
random subsample, and ``name``):

==========  ====================================================================================
kind        keys
==========  ====================================================================================
digits      (none) - scikit-learn's 8x8 digits, X float64 (1797, 64) scaled to [0, 1]
csv         ``path``, ``label`` (default ``"label"``), ``features`` (list, default all other columns)
parquet     same as csv (needs pyarrow: ``pip install "miaudit[parquet]"``)
npz         ``path`` with arrays ``X`` (N, ...) and ``y`` (N,) (no pickles)
mnist       ``path`` (folder with ``{split}-images-idx3-ubyte[.gz]`` / ``{split}-labels-idx1-ubyte[.gz]``,
            ``split`` = ``"t10k"`` (default) or ``"train"``) or ``images`` + ``labels`` file paths;
            X float32 (N, 28, 28) in [0, 1]
adult       ``path`` to the UCI Adult CSV (header line, ", "-separated, label ``Salary``);
            X DataFrame (numeric float64 + categorical columns, ``?`` -> missing), y = ``>50K``
text,       documents for language-model audits (:mod:`miaudit.data._text`): X a 1-D object array of
pydoc_topics  str, y all zeros
==========  ====================================================================================

Tables: numeric feature columns give an ndarray X (float64); if any feature column is
non-numeric, X is a DataFrame whose text columns have pandas ``category`` dtype (empty cells
missing). String labels become codes with the sorted unique values as ``class_names``;
integer labels are mapped the same way (``class_names`` are their string forms).
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import InputError, import_optional
from . import _text

__all__ = ["Dataset", "load_dataset", "read_idx", "DATASET_KINDS"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features and labels of one data pool.

    Attributes
    ----------
    X : ndarray (N, ...) or pandas.DataFrame (N rows)
    y : int64 ndarray (N,), class indices in ``[0, C)``
    name : str
    class_names : tuple of str, length C (``class_names[y[i]]`` is example i's class)
    feature_names : tuple of str or None
    """

    X: Any
    y: np.ndarray
    name: str
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...] | None = None

    @property
    def n_examples(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index: np.ndarray) -> Dataset:
        """The examples at ``index`` (int indices or a bool mask), same classes and names."""
        idx = np.asarray(index)
        X = self.X.iloc[idx].reset_index(drop=True) if hasattr(self.X, "iloc") else self.X[idx]
        return Dataset(X=X, y=self.y[idx], name=self.name, class_names=self.class_names,
                       feature_names=self.feature_names)


_COMMON = ("kind", "max_examples", "seed", "name")
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "digits": (),
    "csv": ("path", "label", "features"),
    "parquet": ("path", "label", "features"),
    "npz": ("path",),
    "mnist": ("path", "images", "labels", "split"),
    "adult": ("path",),
    **_text.TEXT_KINDS,  # language-model audits: miaudit.data._text
}
DATASET_KINDS = tuple(_KIND_KEYS)


def load_dataset(spec: dict[str, Any]) -> Dataset:
    """Load the dataset described by ``spec`` (see the module docstring for the keys).

    Raises
    ------
    InputError
        Unknown kind (lists the valid kinds), unknown keys (lists the valid keys), a missing file,
        a label column that does not exist (lists the columns), unreadable content.
    """
    if not isinstance(spec, dict):
        raise InputError(f"data: expected a dict such as {{'kind': 'digits'}}, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in _KIND_KEYS:
        raise InputError(
            f"data.kind: unknown dataset kind {kind!r}; expected one of: {', '.join(DATASET_KINDS)}"
        )
    valid = _COMMON + _KIND_KEYS[kind]
    unknown = sorted(str(k) for k in spec if k not in valid)
    if unknown:
        raise InputError(
            f"data: unknown keys {', '.join(map(repr, unknown))} for kind {kind!r}; valid keys are: {', '.join(valid)}"
        )
    loader = _LOADERS[kind]
    ds = loader(spec)
    if "name" in spec:
        if not isinstance(spec["name"], str):
            raise InputError(f"data.name: expected a string, got {spec['name']!r}")
        ds = Dataset(X=ds.X, y=ds.y, name=spec["name"], class_names=ds.class_names, feature_names=ds.feature_names)
    max_examples = spec.get("max_examples")
    if max_examples is not None:
        if isinstance(max_examples, bool) or not isinstance(max_examples, (int, np.integer)) or max_examples < 2:
            raise InputError(f"data.max_examples: expected an integer >= 2, got {max_examples!r}")
        seed = spec.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"data.seed: expected a non-negative integer, got {seed!r}")
        if int(max_examples) < ds.n_examples:
            ds = ds.subset(stratified_subsample(ds.y, int(max_examples), seed=int(seed)))
    elif "seed" in spec:
        seed = spec["seed"]
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"data.seed: expected a non-negative integer, got {seed!r}")
    return ds


def stratified_subsample(y: np.ndarray, n: int, *, seed: int) -> np.ndarray:
    """Sorted indices of a random subsample of size ``n`` with class proportions kept.

    Per-class sizes are ``n * share`` rounded by the largest-remainder method (they sum to ``n``
    exactly); within each class the examples are drawn uniformly without replacement.
    """
    y = np.asarray(y)
    total = y.shape[0]
    if n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    exact = counts * (n / total)
    take = np.floor(exact).astype(np.int64)
    short = n - int(take.sum())
    if short > 0:
        order = np.argsort(-(exact - take), kind="stable")
        take[order[:short]] += 1
    chosen = [rng.choice(np.flatnonzero(inverse == j), size=int(t), replace=False)
              for j, t in enumerate(take) if t > 0]
    return np.sort(np.concatenate(chosen))


# ---------------------------------------------------------------------------------------------
# kinds
# ---------------------------------------------------------------------------------------------


def _digits(spec: dict[str, Any]) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = np.ascontiguousarray(d.data, dtype=np.float64) / 16.0
    y = np.asarray(d.target, dtype=np.int64)
    return Dataset(X=X, y=y, name="digits", class_names=tuple(str(c) for c in d.target_names),
                   feature_names=tuple(d.feature_names))


def _path(spec: dict[str, Any], key: str = "path", *, kind: str, want_dir: bool = False) -> Path:
    if key not in spec:
        raise InputError(f"data.{key}: missing for kind {kind!r}; add {key}: <path>")
    value = spec[key]
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"data.{key}: expected a path string, got {type(value).__name__}")
    p = Path(value).expanduser()
    if not p.exists():
        raise InputError(f"data.{key}: {str(p)!r} does not exist; check the path")
    if want_dir and not p.is_dir():
        raise InputError(f"data.{key}: {str(p)!r} is not a folder; pass the folder holding the files")
    if not want_dir and p.is_dir():
        raise InputError(f"data.{key}: {str(p)!r} is a directory; pass the file inside it")
    return p


def _encode_labels(values: Any, column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    import pandas as pd

    s = pd.Series(values)
    if s.isna().any():
        raise InputError(f"{column}: {int(s.isna().sum())} missing labels; drop those rows or fill them")
    if s.dtype.kind == "f":
        v = s.to_numpy()
        if not np.isfinite(v).all() or not (v == np.round(v)).all():
            raise InputError(f"{column}: expected class labels, got non-integer numbers; use a categorical label column")
        s = s.astype(np.int64)
    if s.dtype.kind in "iub":
        classes, codes = np.unique(s.to_numpy(), return_inverse=True)
    else:
        text = s.astype(str).str.strip()
        classes, codes = np.unique(text.to_numpy(dtype=str), return_inverse=True)
    if len(classes) < 2:
        raise InputError(f"{column}: expected at least 2 classes, got {len(classes)} ({classes[:1].tolist()}); "
                         "check the label column")
    return codes.astype(np.int64).reshape(-1), tuple(str(c) for c in classes)


def _table(spec: dict[str, Any], kind: str) -> Dataset:
    import pandas as pd

    p = _path(spec, kind=kind)
    try:
        if kind == "parquet":
            df = import_optional("pyarrow.parquet", "parquet").read_table(p).to_pandas()
        else:
            df = pd.read_csv(p, skipinitialspace=True, low_memory=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"data.path: {p.name!r} is an empty table; expected a header line and rows") from None
    except Exception as exc:
        if isinstance(exc, InputError) or exc.__class__.__name__ == "MissingDependencyError":
            raise
        raise InputError(f"data.path: {p.name!r} is not a readable {kind} table ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:120]}); check the file") from None
    df.columns = [str(c).strip() for c in df.columns]
    label = spec.get("label", "label")
    if label not in df.columns:
        raise InputError(f"data.label: column {label!r} not found in {p.name!r}; available columns: "
                         f"{', '.join(map(repr, list(df.columns)[:40]))}")
    features = spec.get("features")
    if features is None:
        features = [c for c in df.columns if c != label]
    else:
        if not isinstance(features, (list, tuple)) or not all(isinstance(f, str) for f in features):
            raise InputError(f"data.features: expected a list of column names, got {features!r}")
        missing = [f for f in features if f not in df.columns]
        if missing:
            raise InputError(f"data.features: columns {missing[:5]} not found; available columns: "
                             f"{', '.join(map(repr, list(df.columns)[:40]))}")
        if label in features:
            raise InputError(f"data.features: contains the label column {label!r}; remove it")
    if not features:
        raise InputError(f"data.features: no feature columns besides the label {label!r}; add feature columns")
    y, class_names = _encode_labels(df[label], f"data.label {label!r}")
    return Dataset(X=_features(df[list(features)]), y=y, name=p.stem, class_names=class_names,
                   feature_names=tuple(features))


def _features(frame: Any) -> Any:
    """All-numeric -> float64 ndarray; otherwise a DataFrame with text columns as ``category``."""
    import pandas as pd

    if all(frame[c].dtype.kind in "biuf" for c in frame.columns):
        return frame.to_numpy(dtype=np.float64)
    out = {}
    for c in frame.columns:
        s = frame[c]
        if s.dtype.kind in "biuf":
            out[c] = s.astype(np.float64)
        else:
            text = s.astype("string").str.strip()
            text = text.mask(text.isin(["?", ""]))
            out[c] = text.astype(object).where(text.notna(), np.nan).astype("category")
    return pd.DataFrame(out).reset_index(drop=True)


def _npz(spec: dict[str, Any]) -> Dataset:
    p = _path(spec, kind="npz")
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            if not {"X", "y"} <= keys:
                raise InputError(f"data.path: {p.name!r} needs arrays 'X' and 'y', found {sorted(keys)}; "
                                 "save with np.savez(path, X=X, y=y)")
            X = np.asarray(z["X"])
            y_raw = np.asarray(z["y"])
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"data.path: {p.name!r} is not a readable .npz of plain arrays ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:120]}); save with np.savez(path, X=X, y=y)") from None
    if X.dtype.kind not in "biuf":
        raise InputError(f"data X: expected a numeric array, got dtype {X.dtype}")
    if X.ndim < 1 or y_raw.ndim != 1 or X.shape[0] != y_raw.shape[0]:
        raise InputError(f"data: X and y must have the same number of rows, got shapes {X.shape} and {y_raw.shape}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise InputError("data X: found NaN/inf values; impute or drop them first")
    y, class_names = _encode_labels(y_raw, "data y")
    return Dataset(X=X, y=y, name=p.stem, class_names=class_names, feature_names=None)


# --- IDX (MNIST) -----------------------------------------------------------------------------

_IDX_DTYPES: dict[int, np.dtype[Any]] = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), raw or gzip-compressed (detected by content).

    Header: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32, 0x0D float32,
    0x0E float64), the number of dimensions, then one big-endian uint32 per dimension; the data
    follow in C order, big-endian. The file must hold exactly the announced number of bytes.
    MNIST images have magic 2051 (0x00000803), labels 2049 (0x00000801).

    Returns the array in native byte order.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"idx file: {str(p)!r} does not exist; check the path")
    if p.is_dir():
        raise InputError(f"idx file: {str(p)!r} is a directory; pass the file inside it")
    with open(p, "rb") as raw:
        is_gz = raw.read(2) == b"\x1f\x8b"
    try:
        opener = gzip.open if is_gz else open
        with opener(p, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES or head[3] == 0:
                raise InputError(f"idx file {p.name!r}: bad magic number {head.hex() or '(empty)'}; expected "
                                 "00 00 <type> <ndim> (e.g. 00000803 for images); is it an IDX file?")
            dtype = _IDX_DTYPES[head[2]]
            ndim = head[3]
            dims_raw = fh.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise InputError(f"idx file {p.name!r}: truncated header; re-download the file")
            dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            n_bytes = int(np.prod(dims, dtype=object)) * dtype.itemsize
            if n_bytes > 2**34:
                raise InputError(f"idx file {p.name!r}: header announces {n_bytes} bytes (shape {dims}); corrupt header")
            data = fh.read(n_bytes)
            extra = fh.read(1)
    except InputError:
        raise
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise InputError(f"idx file {p.name!r}: unreadable ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:120]}); re-download the file") from None
    if len(data) != n_bytes or extra:
        raise InputError(f"idx file {p.name!r}: header announces shape {dims} ({n_bytes} bytes of data) but the file "
                         f"holds {'more' if extra else len(data)}; the file is truncated or corrupt")
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise InputError(f"data.path: {str(folder)!r} has no {stem}.gz or {stem}; pass the MNIST folder or "
                     "'images' and 'labels' paths")


def _mnist(spec: dict[str, Any]) -> Dataset:
    split = spec.get("split", "t10k")
    if split not in ("t10k", "train"):
        raise InputError(f"data.split: expected 't10k' or 'train', got {split!r}")
    if "images" in spec or "labels" in spec:
        if "path" in spec:
            raise InputError("data: give either path (a folder) or images + labels (files), not both")
        img_path = _path(spec, "images", kind="mnist")
        lab_path = _path(spec, "labels", kind="mnist")
    else:
        folder = _path(spec, kind="mnist", want_dir=True)
        img_path = _find_idx(folder, f"{split}-images-idx3-ubyte")
        lab_path = _find_idx(folder, f"{split}-labels-idx1-ubyte")
    images = read_idx(img_path)
    labels = read_idx(lab_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise InputError(f"data.images: expected an IDX image file with magic 2051 (ubyte, 3 dims), got "
                         f"{images.dtype} with {images.ndim} dims in {img_path.name!r}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise InputError(f"data.labels: expected an IDX label file with magic 2049 (ubyte, 1 dim), got "
                         f"{labels.dtype} with {labels.ndim} dims in {lab_path.name!r}")
    if images.shape[0] != labels.shape[0]:
        raise InputError(f"data: {images.shape[0]} images but {labels.shape[0]} labels; pass matching files")
    if labels.size and labels.max() > 9:
        raise InputError(f"data.labels: expected digits 0..9, found {int(labels.max())}; is it an MNIST label file?")
    X = images.astype(np.float32) / np.float32(255.0)
    y = labels.astype(np.int64)
    return Dataset(X=X, y=y, name="mnist", class_names=tuple(str(i) for i in range(10)), feature_names=None)


# --- text (language models) ------------------------------------------------------------------


def _text_dataset(texts: list[str], name: str) -> Dataset:
    """Documents as a Dataset: X a 1-D object array of str, y all zeros (one pseudo-class ``"text"``)."""
    X = np.empty(len(texts), dtype=object)
    X[:] = list(texts)
    return Dataset(X=X, y=np.zeros(len(texts), dtype=np.int64), name=name, class_names=("text",),
                   feature_names=("text",))


def _text_kind(spec: dict[str, Any]) -> Dataset:
    return _text_dataset(*_text.load_text(spec, _path(spec, kind="text")))


def _pydoc_kind(spec: dict[str, Any]) -> Dataset:
    return _text_dataset(*_text.load_pydoc_topics(spec))


# --- UCI Adult --------------------------------------------------------------------------------

_ADULT_NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")


def _adult(spec: dict[str, Any]) -> Dataset:
    import pandas as pd

    p = _path(spec, kind="adult")
    try:
        df = pd.read_csv(p, sep=",", skipinitialspace=True, dtype=str, keep_default_na=False, na_filter=False)
    except Exception as exc:
        raise InputError(f"data.path: {p.name!r} is not a readable CSV ({type(exc).__name__}); pass the UCI Adult "
                         "CSV with a header line") from None
    df.columns = [str(c).strip() for c in df.columns]
    if "Salary" not in df.columns:
        raise InputError(f"data.path: label column 'Salary' not found in {p.name!r}; available columns: "
                         f"{', '.join(map(repr, list(df.columns)[:20]))}")
    df = df.apply(lambda s: s.str.strip())
    salary = df.pop("Salary").str.rstrip(".")  # the UCI test file writes '>50K.'
    ok = salary.isin(["<=50K", ">50K"])
    if not ok.all():
        row = int(np.flatnonzero(~ok.to_numpy())[0])
        raise InputError(f"data.path: Salary must be '<=50K' or '>50K', found {salary.iloc[row]!r} at row {row}")
    y = (salary == ">50K").to_numpy().astype(np.int64)
    out = {}
    for c in df.columns:
        s = df[c].mask(df[c].isin(["?", ""]))
        if c in _ADULT_NUMERIC:
            num = pd.to_numeric(s, errors="coerce")
            if num.isna().any():
                row = int(np.flatnonzero(num.isna().to_numpy())[0])
                raise InputError(f"data.path: column {c!r} expects numbers, found {df[c].iloc[row]!r} at row {row}")
            out[c] = num.astype(np.float64)
        else:
            out[c] = s.astype("category")
    X = pd.DataFrame(out)
    return Dataset(X=X, y=y, name="adult", class_names=("<=50K", ">50K"), feature_names=tuple(X.columns))


_LOADERS = {
    "digits": _digits,
    "csv": lambda spec: _table(spec, "csv"),
    "parquet": lambda spec: _table(spec, "parquet"),
    "npz": _npz,
    "mnist": _mnist,
    "adult": _adult,
    "text": _text_kind,
    "pydoc_topics": _pydoc_kind,
}
