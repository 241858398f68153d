"""Reading and writing signal bundles: ``.npz`` archives and CSV/parquet tables.

The format is documented in ``docs/bundle.md``. Files are never unpickled: ``.npz`` members
are parsed with ``allow_pickle=False`` after their headers were checked, and anything that
is not a plain numeric/bool/str array is refused with an :class:`~miaudit.InputError`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_open
from .._errors import InputError, MissingDependencyError, import_optional, input_name, option
from ._bundle import SignalBundle

__all__ = ["load_bundle", "save_bundle", "BUNDLE_KEYS", "LEGACY_KEYS", "META_KEY"]

#: Default table columns: used when present; a column named otherwise must exist.
DEFAULT_LABEL_COLUMN = "label"
DEFAULT_MEMBER_COLUMN = "is_member"
#: What a table's output columns can hold (``outputs_kind``).
OUTPUTS_KINDS = ("logits", "probs", "scores")

#: Keys of bundles written before miaudit 0.2 (results schema 1), read under their current names.
LEGACY_KEYS = {"target_in": "is_member", "ref_in": "ref_is_member"}

#: Array keys of a bundle ``.npz`` (the keyword arguments of :meth:`SignalBundle.from_arrays`).
BUNDLE_KEYS = (
    "labels",
    "target_logits",
    "target_probs",
    "target_scores",
    "is_member",
    "ref_logits",
    "ref_probs",
    "ref_scores",
    "ref_is_member",
    "groups",
    "population_logits",
    "population_probs",
    "population_labels",
    "ref_population_logits",
    "ref_population_probs",
    "target_pred",
    "ref_pred",
    "target_distance",
    "ref_distance",
    "n_classes",
)
#: Optional key holding a JSON object (a 0-d str array) with free-form metadata.
META_KEY = "meta"

_MAX_DEFLATE_RATIO = 1100
_TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")


def load_bundle(
    path: str | os.PathLike[str],
    *,
    label_column: str | None = DEFAULT_LABEL_COLUMN,
    member_column: str | None = DEFAULT_MEMBER_COLUMN,
    group_column: str | None = None,
    prefix: str | None = None,
    outputs: str | Sequence[str] | None = None,
    outputs_kind: str | None = None,
) -> SignalBundle:
    """Load a signal bundle from an ``.npz`` archive or a CSV/parquet table.

    ``.npz``: the keys of :data:`BUNDLE_KEYS` (see ``docs/bundle.md``) plus an optional ``meta``
    JSON string; unknown keys are refused. Loaded with ``allow_pickle=False``. Raw scores are stored
    under ``target_scores`` (and ``ref_scores``), predicted classes only (label-only access) under
    ``target_pred`` (and ``ref_pred``, ``target_distance``, ``ref_distance``); ``labels`` is optional.

    Tables (``.csv``, ``.tsv``, ``.parquet``/``.pq``; CSV may be gz/bz2/xz compressed): one row per
    example with an optional label column (``label_column``; the default ``"label"`` is used when present,
    a column named otherwise must exist; ``None``: no labels), an optional membership column
    (``member_column``; bool, 0/1 or true/false/yes/no; the default ``"is_member"`` when present), an
    optional group column, and the output columns:

    * ``outputs``: the output columns, one per class in class order: a comma-separated string
      (``"p_cat,p_dog"``), a list of names, or a pattern with ``*`` (``"p_*"``: every matching column, in
      the file's order). Default: ``logit_0 .. logit_{C-1}`` or ``prob_0 .. prob_{C-1}`` (or
      ``{prefix}0 ..`` with ``prefix``).
    * ``outputs_kind``: ``"logits"``, ``"probs"`` (in [0, 1], rows summing to 1) or ``"scores"`` (any
      real per-class values, used as given: not normalised). Default: inferred from ``logit_*`` /
      ``prob_*`` column names (and a ``prefix`` starting with ``prob``: probabilities, other prefixes:
      logits); for other names it must be given. (``outputs="logits"``/``"probs"``/``"scores"`` is still
      read as the kind, as before this option existed.)

    Raises
    ------
    InputError
        Missing path, a directory, an unknown extension, a file that is not a bundle, or any
        invalid content (one-line message naming the input).
    """
    p = _check_path(path)
    kind = _kind_of(p)
    if kind == "npz":
        if outputs is not None or outputs_kind is not None or prefix is not None:
            raise InputError(
                f"{_nm(p)}: {input_name('outputs')} and {input_name('outputs_kind')} apply to tables; an .npz bundle says "
                "what it holds by its keys (target_logits, target_probs or target_scores)"
            )
        arrays, meta = _read_npz(p)
        try:
            return SignalBundle.from_arrays(**arrays, meta={**meta, "source": str(p)})
        except InputError as exc:
            raise InputError(f"{_nm(p)}: {exc}") from None
    table = _read_table(p, kind)
    try:
        return _bundle_from_table(
            table, label_column=label_column, member_column=member_column, group_column=group_column,
            prefix=prefix, outputs=outputs, outputs_kind=outputs_kind, source=str(p),
        )
    except InputError as exc:
        raise InputError(f"{_nm(p)}: {exc}") from None


def save_bundle(bundle: SignalBundle, path: str | os.PathLike[str], *, compress: bool = False) -> Path:
    """Write ``bundle`` as an ``.npz`` archive that :func:`load_bundle` reads back identically.

    The write is atomic (a temporary file in the same folder, flushed, then ``os.replace``), so an
    existing file is never left half-written. ``meta`` is stored as JSON under the ``meta`` key
    (values that are not JSON-able are written with ``str``). Returns the final path.
    """
    if not isinstance(bundle, SignalBundle):
        raise InputError(f"bundle: expected a SignalBundle, got {type(bundle).__name__}; build one with "
                         "SignalBundle.from_arrays")
    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise InputError(f"path: expected a file name ending in .npz, got {str(p)!r}; add the .npz suffix")
    if p.is_dir():
        raise InputError(f"path: {str(p)!r} is a directory; pass a file name ending in .npz")
    if not p.parent.is_dir():
        raise InputError(f"path: folder {str(p.parent)!r} does not exist; create it first")
    scores = bundle.outputs_kind == "scores"
    arrays: dict[str, Any] = {}
    if bundle.outputs_kind == "labels":  # predicted classes only: target_logits is their one-hot encoding
        for key in ("target_pred", "ref_pred", "target_distance", "ref_distance"):
            if getattr(bundle, key) is not None:
                arrays[key] = getattr(bundle, key)
        arrays["n_classes"] = np.int64(bundle.n_classes)
    else:
        arrays["target_scores" if scores else "target_logits"] = bundle.target_logits
    if bundle.labels is not None:
        arrays["labels"] = bundle.labels
    for key in ("is_member", "ref_logits", "ref_is_member", "population_logits", "population_labels",
                "ref_population_logits"):
        value = getattr(bundle, key)
        if value is not None:
            arrays["ref_scores" if scores and key == "ref_logits" else key] = value
    if bundle.groups is not None:
        g = np.asarray(bundle.groups)
        arrays["groups"] = g.astype(str) if g.dtype.kind == "O" else g
    meta = {k: v for k, v in bundle.meta.items() if k not in ("source", "columns", "outputs", "outputs_kind")}
    arrays[META_KEY] = np.array(json.dumps(meta, default=str, sort_keys=True))
    with atomic_open(p) as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return p


# ---------------------------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------------------------


def _check_path(path: Any, name: str = "bundle") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{name}: expected a file path, got {type(path).__name__}; pass a str or pathlib.Path")
    p = Path(path)
    if not p.exists():
        raise InputError(f"{name}: file {str(p)!r} does not exist; check the path")
    if p.is_dir():
        raise InputError(f"{name}: {str(p)!r} is a directory, expected a .npz, .csv or .parquet file; "
                         "pass the file inside it")
    return p


def _kind_of(p: Path) -> str:
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".npz":
        return "npz"
    if suffixes and suffixes[-1] in _TABLE_SUFFIXES:
        return _TABLE_SUFFIXES[suffixes[-1]]
    if len(suffixes) >= 2 and suffixes[-1] in _COMPRESSED and suffixes[-2] in (".csv", ".tsv"):
        return "csv"
    raise InputError(
        f"bundle: unknown file type {''.join(p.suffixes) or '(no extension)'!r} of {_nm(p)!r}; expected .npz, "
        ".csv, .tsv or .parquet"
    )


# ---------------------------------------------------------------------------------------------
# npz
# ---------------------------------------------------------------------------------------------


def _read_npz(p: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Parse an .npz safely: check every member's header before reading any data."""
    valid = ", ".join(BUNDLE_KEYS + (META_KEY,))
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise InputError(
            f"{_nm(p)}: not a valid .npz bundle ({_short(exc)}); save it with np.savez or miaudit.data.save_bundle"
        ) from None
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    with zf:
        try:
            infos = zf.infolist()
        except Exception as exc:  # pragma: no cover - defensive
            raise InputError(f"{_nm(p)}: unreadable zip directory ({_short(exc)}); re-save the bundle") from None
        names = [i.filename for i in infos]
        keys = [n[:-4] if n.endswith(".npy") else n for n in names]
        keys = [LEGACY_KEYS.get(k, k) for k in keys]
        unknown = [k for k in keys if k not in BUNDLE_KEYS and k != META_KEY]
        if unknown:
            shown = ", ".join(repr(k[:40]) for k in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise InputError(f"{_nm(p)}: unknown keys {shown}; valid keys are: {valid}")
        if len(set(keys)) != len(keys):
            raise InputError(f"{_nm(p)}: duplicate keys in the archive; re-save it with np.savez")
        if not keys:
            raise InputError(f"{_nm(p)}: empty .npz archive; expected at least 'target_logits' (and 'labels')")
        for info, key in zip(infos, keys):
            arrays[key] = _read_member(zf, info, key, _nm(p))
    if META_KEY in arrays:
        meta = _parse_meta(arrays.pop(META_KEY), _nm(p))
    return arrays, meta


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, fname: str) -> np.ndarray:
    fmt = np.lib.format
    where = f"{fname}[{key!r}]"
    if not info.filename.endswith(".npy"):
        raise InputError(f"{where}: archive member {info.filename!r} is not a .npy array; save arrays with np.savez")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InputError(f"{where}: unsupported zip compression (type {info.compress_type}); save it with np.savez "
                         "or np.savez_compressed")
    if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + (1 << 16):
        # deflate cannot expand more than ~1032:1: such a member is corrupt or a decompression bomb
        raise InputError(f"{where}: corrupt archive member (claims {info.file_size} bytes from "
                         f"{info.compress_size} compressed); re-save the bundle")
    try:
        with zf.open(info) as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(fh)
            else:  # 3.0 only adds UTF-8 field names, i.e. structured dtypes, which are refused anyway
                raise InputError(f"{where}: unsupported .npy format version {version}; save it with np.savez")
            header_len = fh.tell()
            _check_dtype(dtype, where)
            count = int(np.prod(shape, dtype=object)) if shape else 1
            expected = count * dtype.itemsize
            if info.file_size - header_len != expected:
                raise InputError(
                    f"{where}: corrupt array: header says shape {tuple(shape)} of {dtype} ({expected} bytes) but "
                    f"the member holds {info.file_size - header_len} bytes; re-save the bundle"
                )
        with zf.open(info) as fh:
            arr = fmt.read_array(fh, allow_pickle=False)
    except InputError:
        raise
    except Exception as exc:  # zlib/zip/format errors of a damaged file: all mean "not a bundle"
        raise InputError(f"{where}: unreadable array ({_short(exc)}); the file is damaged, re-save the bundle") from None
    return arr


def _check_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.hasobject:
        raise InputError(
            f"{where}: object arrays are refused (they would need unpickling); store numbers, bools or "
            "str (dtype '<U...') instead"
        )
    if dtype.kind not in "biufUS" or dtype.fields is not None or dtype.subdtype is not None:
        raise InputError(
            f"{where}: unsupported dtype {dtype}; expected a plain numeric, bool or str array"
        )


def _parse_meta(arr: np.ndarray, fname: str) -> dict[str, Any]:
    if arr.dtype.kind not in "US" or arr.size != 1:
        raise InputError(f"{fname}['meta']: expected one JSON string, got {arr.dtype} of shape {arr.shape}; "
                         "store np.array(json.dumps(meta))")
    text = arr.reshape(()).item()
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{fname}['meta']: not valid JSON ({_short(exc)}); store np.array(json.dumps(meta))") from None
    if not isinstance(meta, dict):
        raise InputError(f"{fname}['meta']: expected a JSON object, got {type(meta).__name__}; store a dict")
    return meta


def _nm(p: Path) -> str:
    """File name safe for a one-line message."""
    return "".join(ch if ch.isprintable() else "?" for ch in p.name)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def _read_table(p: Path, kind: str) -> Any:
    import pandas as pd

    try:
        if kind == "parquet":
            return import_optional("pyarrow.parquet", "parquet").read_table(p).to_pandas()
        sep = "\t" if ".tsv" in [s.lower() for s in p.suffixes] else ","
        return pd.read_csv(p, sep=sep, skipinitialspace=True, low_memory=False)
    except MissingDependencyError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{_nm(p)}: empty table; expected a header line and one row per example") from None
    except Exception as exc:  # parser/arrow/decoding errors: the file is not a readable table
        raise InputError(f"{_nm(p)}: not a readable {kind} table ({_short(exc)}); check the file format") from None


_COL_RE_CACHE: dict[str, re.Pattern[str]] = {}


def _bundle_from_table(
    df: Any, *, label_column: str | None, member_column: str | None, group_column: str | None,
    prefix: str | None, outputs: str | Sequence[str] | None, outputs_kind: str | None, source: str,
) -> SignalBundle:
    columns = [str(c) for c in df.columns]
    df = df.set_axis(columns, axis=1)
    if len(set(columns)) != len(columns):
        raise InputError("table: duplicate column names; give every column a unique name")
    available = ", ".join(repr(c) for c in columns[:30]) + (" ..." if len(columns) > 30 else "")
    if isinstance(outputs, str) and outputs.strip() in OUTPUTS_KINDS and outputs_kind is None:
        outputs_kind, outputs = outputs.strip(), None  # the former meaning of outputs=: the kind
    if outputs_kind is not None and outputs_kind not in OUTPUTS_KINDS:
        raise InputError(
            f"{input_name('outputs_kind')}: expected 'logits', 'probs' or 'scores', got {str(outputs_kind)[:40]!r}; pass "
            f"{option('outputs_kind', 'scores')} for raw per-class values used as given"
        )
    out_cols = _output_columns(columns, outputs, prefix, available)
    kind = outputs_kind or _infer_kind(out_cols, prefix)
    if label_column is not None and label_column not in df.columns:
        if label_column != DEFAULT_LABEL_COLUMN:
            raise InputError(f"table: label column {label_column!r} not found; available columns: {available}; "
                             f"pass {option('label_column')} with the column of true classes, or leave it out for a "
                             "label-free audit")
        label_column = None
    if member_column is not None and member_column not in df.columns:
        if member_column != DEFAULT_MEMBER_COLUMN:
            raise InputError(f"table: membership column {member_column!r} not found; available columns: "
                             f"{available}; pass {option('member_column')} with the column of true/false membership")
        member_column = None
    used = {label_column, member_column, group_column, *out_cols}
    for col in columns:  # pandas renames a repeated CSV header "x" to "x.1": refuse ambiguity
        m = re.fullmatch(r"(.+)\.[0-9]+", col)
        if m and m.group(1) in used and m.group(1) in df.columns:
            raise InputError(f"table: duplicate column {m.group(1)!r}; keep one column per name")
    values = _numeric_block(df, out_cols)
    labels = None
    if label_column is not None:
        labels = _int_column(df[label_column], label_column)
        _check_label_range(labels, label_column, out_cols)
    is_member = None
    if member_column is not None:
        is_member = _bool_column(df[member_column], member_column)
    groups = None
    if group_column is not None:
        if group_column not in df.columns:
            raise InputError(f"table: group column {group_column!r} not found; available columns: {available}")
        g = df[group_column]
        if g.isna().any():
            raise InputError(f"{group_column}: {int(g.isna().sum())} empty group cells; fill them (e.g. 'unknown')")
        groups = g.to_numpy()
        if groups.dtype.kind == "O":
            groups = groups.astype(str)
    key = {"probs": "target_probs", "logits": "target_logits", "scores": "target_scores"}[kind]
    meta = {"source": source, "columns": columns, "outputs": list(out_cols), "outputs_kind": kind}
    try:
        return SignalBundle.from_arrays(labels=labels, is_member=is_member, groups=groups, meta=meta, **{key: values})
    except InputError as exc:
        text = str(exc)
        if text.startswith((f"{key}: expected rows summing to 1", f"{key}: expected probabilities in")):  # the table's way out: say what the rows hold
            raise InputError(
                f"{text}; for raw scores that need not sum to 1 pass {option('outputs_kind', 'scores')}"
            ) from None
        raise


def _output_columns(columns: list[str], outputs: str | Sequence[str] | None, prefix: str | None,
                    available: str) -> list[str]:
    """The output columns, in class order (see :func:`load_bundle`)."""
    if outputs is not None:
        if prefix is not None:
            raise InputError(f"{input_name('outputs')}/prefix: both given; name the output columns one way")
        names = [c.strip() for c in outputs.split(",")] if isinstance(outputs, str) else [str(c) for c in outputs]
        names = [c for c in names if c]
        if not names:
            raise InputError(f"{input_name('outputs')}: no column names given; pass e.g. p_cat,p_dog or p_*")
        picked: list[str] = []
        for name in names:
            if "*" in name:
                hits = [c for c in columns if fnmatch.fnmatchcase(c, name)]
                if not hits:
                    raise InputError(f"table: no output columns match {name!r} ({option('outputs')}); available "
                                     f"columns: {available}")
                picked += hits
            else:
                picked.append(name)
        missing = [c for c in picked if c not in columns]
        if missing:
            shown = ", ".join(repr(c[:40]) for c in missing[:5])
            raise InputError(f"table: output column{'s' if len(missing) > 1 else ''} {shown} not found "
                             f"({option('outputs')}); available columns: {available}")
        if len(set(picked)) != len(picked):
            raise InputError(f"{input_name('outputs')}: a column is named twice; name each output column once")
        if len(picked) < 2:
            raise InputError(f"{input_name('outputs')}: expected at least 2 output columns (one per class), got "
                             f"{picked}; for a binary model pass both columns")
        return picked
    if prefix is None:
        found = {pre: _class_columns(columns, pre) for pre in ("logit_", "prob_")}
        present = [pre for pre, cols in found.items() if cols]
        if not present:
            raise InputError(
                f"table: no output columns found; expected logit_0..logit_{{C-1}} or prob_0..prob_{{C-1}}, or name "
                f"them with {option('outputs', api='outputs=')} (e.g. p_cat,p_dog or p_*) and say what they hold "
                f"with {option('outputs_kind', api='outputs_kind=')} (logits, probs or scores); available columns: "
                f"{available}"
            )
        if len(present) == 2:
            raise InputError("table: both logit_* and prob_* columns present; keep one kind, or pick the columns "
                             f"with {option('outputs', 'logit_*')}")
        prefix = present[0]
    class_cols = _class_columns(columns, prefix)
    if not class_cols:
        raise InputError(f"table: no columns named {prefix}0, {prefix}1, ...; available columns: {available}")
    idx = sorted(class_cols)
    if idx != list(range(len(idx))):
        missing_idx = sorted(set(range(max(idx) + 1)) - set(idx))
        raise InputError(
            f"table: output columns {prefix}0..{prefix}{max(idx)} must be contiguous from 0, missing "
            f"{', '.join(prefix + str(i) for i in missing_idx[:5])}; add them or renumber the columns"
        )
    return [class_cols[i] for i in idx]


def _infer_kind(out_cols: list[str], prefix: str | None) -> str:
    if prefix is not None:
        return "probs" if prefix.lower().startswith("prob") else "logits"
    for pre, kind in (("logit_", "logits"), ("prob_", "probs")):
        if all(c.startswith(pre) for c in out_cols):
            return kind
    shown = ",".join(out_cols[:4]) + (",..." if len(out_cols) > 4 else "")
    raise InputError(
        f"{input_name('outputs_kind')}: cannot tell what the columns {shown} hold; pass {option('outputs_kind', 'logits')}, "
        f"{option('outputs_kind', 'probs')} or {option('outputs_kind', 'scores')} (raw per-class values, used as given)"
    )


def _check_label_range(labels: np.ndarray, column: str, out_cols: list[str]) -> None:
    """Labels are class indices into the output columns: 0..C-1."""
    c = len(out_cols)
    if c < 2:  # SignalBundle.from_arrays says a model needs two output columns
        return
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero((labels < 0) | (labels >= c))
    if bad.size:
        row = int(bad[0])
        shown = ",".join(out_cols[:4]) + (",..." if c > 4 else "")
        raise InputError(
            f"{column}: expected class indices 0..{c - 1} (one per output column {shown}), found {labels[row]:g} at "
            f"row {row} ({option('label_column')}); encode the classes as 0..{c - 1} in the order of the output "
            "columns"
        )


def _class_columns(columns: list[str], prefix: str) -> dict[int, str]:
    pat = _COL_RE_CACHE.get(prefix)
    if pat is None:
        pat = _COL_RE_CACHE[prefix] = re.compile(re.escape(prefix) + r"(0|[1-9][0-9]{0,5})")
    out: dict[int, str] = {}
    for c in columns:
        m = pat.fullmatch(c)
        if m:
            out[int(m.group(1))] = c
    return out


def _numeric_block(df: Any, cols: list[str]) -> np.ndarray:
    import pandas as pd

    out = np.empty((len(df), len(cols)), dtype=np.float64)
    for j, c in enumerate(cols):
        s = df[c]
        num = pd.to_numeric(s, errors="coerce") if s.dtype.kind not in "biuf" else s
        bad = num.isna() & ~s.isna() if s.dtype.kind not in "biuf" else None
        if bad is not None and bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{c}: non-numeric cell {str(s.iloc[row])[:30]!r} at row {row}; fix or drop that row")
        if num.isna().any():
            row = int(np.flatnonzero(num.isna().to_numpy())[0])
            raise InputError(f"{c}: empty or NaN cell at row {row}; every example needs all output columns")
        try:
            out[:, j] = num.to_numpy(dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InputError(f"{c}: could not read numbers ({_short(exc)}); fix the column") from None
    return out


def _int_column(s: Any, name: str) -> np.ndarray:
    import pandas as pd

    if s.isna().any():
        raise InputError(f"{name}: {int(s.isna().sum())} empty label cells; every example needs its class index")
    if s.dtype.kind in "iu":
        return np.asarray(s.to_numpy())
    num = pd.to_numeric(s, errors="coerce")
    if num.isna().any():
        row = int(np.flatnonzero(num.isna().to_numpy())[0])
        raise InputError(
            f"{name}: expected integer class indices 0..C-1, found {str(s.iloc[row])[:30]!r} at row {row}; "
            "encode the classes as integers in the order of the output columns"
        )
    return np.asarray(num.to_numpy(dtype=np.float64))


_TRUE = {"true", "t", "yes", "y", "1", "1.0", "member", "in"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "non-member", "nonmember", "out"}


def _bool_column(s: Any, name: str) -> np.ndarray:
    if s.isna().any():
        raise InputError(f"{name}: {int(s.isna().sum())} empty membership cells; fill them with true/false "
                         "or drop the column")
    if s.dtype.kind == "b":
        return np.asarray(s.to_numpy(dtype=bool))
    if s.dtype.kind in "iuf":
        return np.asarray(s.to_numpy())  # 0/1 checked by from_arrays
    text = s.astype(str).str.strip().str.lower()
    is_true = text.isin(_TRUE)
    is_false = text.isin(_FALSE)
    bad = ~(is_true | is_false)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{name}: expected true/false or 1/0, found {str(s.iloc[row])[:30]!r} at row {row}; "
                         "fix that cell")
    return np.asarray(is_true.to_numpy(dtype=bool))
