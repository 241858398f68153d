"""load_dataset / read_idx: every kind on tiny files, the real files when present, error paths."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from miaudit._errors import InputError
from miaudit.data import Dataset, load_dataset, read_idx
from miaudit.data._datasets import stratified_subsample


def _write_idx(path: Path, arr: np.ndarray, code: int, *, gz: bool = False, extra: bytes = b"") -> Path:
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    data = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data += np.ascontiguousarray(arr, dtype=dtype).tobytes() + extra
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _mnist_dir(tmp_path: Path, n: int = 20, *, gz: bool = True, prefix: str = "t10k") -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    lab = rng.integers(0, 10, size=n, dtype=np.uint8)
    sfx = ".gz" if gz else ""
    _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{sfx}", img, 0x08, gz=gz)
    _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{sfx}", lab, 0x08, gz=gz)
    return tmp_path, img, lab


# --- digits ------------------------------------------------------------------------------------


def test_digits() -> None:
    ds = load_dataset({"kind": "digits"})
    assert isinstance(ds, Dataset)
    assert ds.X.shape == (1797, 64) and ds.X.dtype == np.float64
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert ds.y.dtype == np.int64 and set(np.unique(ds.y)) == set(range(10))
    assert ds.class_names == tuple(str(i) for i in range(10)) and ds.n_classes == 10
    assert ds.feature_names is not None and len(ds.feature_names) == 64


def test_subsample_stratified_and_deterministic() -> None:
    a = load_dataset({"kind": "digits", "max_examples": 200, "seed": 3})
    b = load_dataset({"kind": "digits", "max_examples": 200, "seed": 3})
    c = load_dataset({"kind": "digits", "max_examples": 200, "seed": 4})
    assert a.n_examples == 200
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    counts = np.bincount(a.y, minlength=10)
    assert counts.min() >= 19 and counts.max() <= 21  # proportions kept (each class ~10%)
    assert load_dataset({"kind": "digits", "max_examples": 5000}).n_examples == 1797


def test_stratified_subsample_exact_counts() -> None:
    y = np.array([0] * 70 + [1] * 20 + [2] * 10)
    idx = stratified_subsample(y, 10, seed=0)
    assert len(idx) == 10 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.bincount(y[idx]), [7, 2, 1])
    idx = stratified_subsample(y, 15, seed=1)  # 10.5, 3, 1.5 -> largest remainders
    assert len(idx) == 15 and np.bincount(y[idx]).sum() == 15


# --- tables ------------------------------------------------------------------------------------


def test_csv_numeric_and_string_labels(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0, 1, 0, 1], "target": ["yes", "no", "yes", "no"]})
    df.to_csv(tmp_path / "d.csv", index=False)
    ds = load_dataset({"kind": "csv", "path": str(tmp_path / "d.csv"), "label": "target"})
    assert isinstance(ds.X, np.ndarray) and ds.X.dtype == np.float64 and ds.X.shape == (4, 2)
    assert ds.class_names == ("no", "yes")
    np.testing.assert_array_equal(ds.y, [1, 0, 1, 0])
    assert ds.feature_names == ("a", "b") and ds.name == "d"
    ds = load_dataset({"kind": "csv", "path": str(tmp_path / "d.csv"), "label": "target", "features": ["b"]})
    assert ds.X.shape == (4, 1)


def test_csv_categorical_dataframe(tmp_path: Path) -> None:
    df = pd.DataFrame({"age": [30, 40, 50, 60], "job": ["x", "?", "y", "x"], "label": [3, 5, 3, 5]})
    df.to_csv(tmp_path / "d.csv", index=False)
    ds = load_dataset({"kind": "csv", "path": tmp_path / "d.csv"})
    assert isinstance(ds.X, pd.DataFrame)
    assert ds.X["job"].dtype == "category" and ds.X["job"].isna().sum() == 1
    assert ds.X["age"].dtype == np.float64
    assert ds.class_names == ("3", "5")
    np.testing.assert_array_equal(ds.y, [0, 1, 0, 1])
    sub = ds.subset(np.array([1, 3]))
    assert sub.X.shape == (2, 2) and list(sub.X.index) == [0, 1] and sub.class_names == ds.class_names


def test_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"a": np.arange(6.0), "label": [0, 1] * 3})
    df.to_parquet(tmp_path / "d.parquet")
    ds = load_dataset({"kind": "parquet", "path": tmp_path / "d.parquet"})
    assert ds.X.shape == (6, 1)


def test_npz(tmp_path: Path) -> None:
    X = np.random.default_rng(0).normal(size=(8, 3))
    np.savez(tmp_path / "d.npz", X=X, y=np.array([2, 4] * 4))
    ds = load_dataset({"kind": "npz", "path": tmp_path / "d.npz"})
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, [0, 1] * 4)
    assert ds.class_names == ("2", "4")


# --- IDX / MNIST -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path: Path, code: int, gz: bool) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype({0x08: np.uint8}.get(code, np.float64))
    if code == 0x08:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = read_idx(_write_idx(tmp_path / "a.idx", arr, code, gz=gz))
    assert out.shape == (2, 3, 4) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_read_idx_big_endian_header(tmp_path: Path) -> None:
    # 300 = 0x0000012c: a little-endian reader would see 0x2c010000 and fail the size check
    lab = (np.arange(300) % 10).astype(np.uint8)
    out = read_idx(_write_idx(tmp_path / "l.idx", lab, 0x08))
    np.testing.assert_array_equal(out, lab)
    assert (tmp_path / "l.idx").read_bytes()[:8] == bytes.fromhex("00000801") + bytes.fromhex("0000012c")


def test_read_idx_errors(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01x")
    with pytest.raises(InputError, match=r"idx file 'bad': bad magic number 01020801"):
        read_idx(tmp_path / "bad")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(InputError, match=r"bad magic number \(empty\)"):
        read_idx(tmp_path / "empty")
    (tmp_path / "code").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01x")
    with pytest.raises(InputError, match=r"bad magic number 00000701"):
        read_idx(tmp_path / "code")
    (tmp_path / "hdr").write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(InputError, match=r"truncated header"):
        read_idx(tmp_path / "hdr")
    _write_idx(tmp_path / "short", np.zeros(10, np.uint8), 0x08)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(InputError, match=r"header announces shape \(10,\) \(10 bytes of data\) but the file holds 7"):
        read_idx(tmp_path / "short")
    _write_idx(tmp_path / "long", np.zeros(10, np.uint8), 0x08, extra=b"x")
    with pytest.raises(InputError, match=r"but the file holds more"):
        read_idx(tmp_path / "long")
    (tmp_path / "huge").write_bytes(b"\x00\x00\x0e\x02\xff\xff\xff\xff\xff\xff\xff\xff")
    with pytest.raises(InputError, match=r"corrupt header"):
        read_idx(tmp_path / "huge")
    (tmp_path / "gz").write_bytes(b"\x1f\x8b garbage gzip")
    with pytest.raises(InputError, match=r"idx file 'gz': unreadable"):
        read_idx(tmp_path / "gz")
    # a gzip header followed by an invalid deflate stream (zlib.error, found by fuzzing)
    (tmp_path / "z").write_bytes(b"\x1f\x8b\x08\x00\x00g\xbf\nk\x02\xffc`\xe0`\x00\x00\x14U\x9d\xe9\x04\x00\x00\x00")
    with pytest.raises(InputError, match=r"idx file 'z': unreadable \(error"):
        read_idx(tmp_path / "z")
    with pytest.raises(InputError, match=r"does not exist"):
        read_idx(tmp_path / "missing")
    with pytest.raises(InputError, match=r"is a directory"):
        read_idx(tmp_path)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_folder(tmp_path: Path, gz: bool) -> None:
    folder, img, lab = _mnist_dir(tmp_path, gz=gz)
    ds = load_dataset({"kind": "mnist", "path": str(folder)})
    assert ds.X.shape == (20, 28, 28) and ds.X.dtype == np.float32
    np.testing.assert_allclose(ds.X, img / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y, lab)
    assert ds.class_names == tuple("0123456789")


def test_mnist_explicit_files_and_split(tmp_path: Path) -> None:
    folder, img, lab = _mnist_dir(tmp_path, prefix="train")
    ds = load_dataset({"kind": "mnist", "path": folder, "split": "train"})
    assert ds.n_examples == 20
    ds = load_dataset({"kind": "mnist", "images": folder / "train-images-idx3-ubyte.gz",
                       "labels": folder / "train-labels-idx1-ubyte.gz", "max_examples": 10, "seed": 0})
    assert ds.n_examples == 10


def test_mnist_errors(tmp_path: Path) -> None:
    folder, img, lab = _mnist_dir(tmp_path)
    with pytest.raises(InputError, match=r"has no train-images-idx3-ubyte\.gz or train-images-idx3-ubyte"):
        load_dataset({"kind": "mnist", "path": folder, "split": "train"})
    with pytest.raises(InputError, match=r"data\.split: expected 't10k' or 'train', got 'test'"):
        load_dataset({"kind": "mnist", "path": folder, "split": "test"})
    with pytest.raises(InputError, match=r"data\.path: .* is not a folder"):
        load_dataset({"kind": "mnist", "path": folder / "t10k-images-idx3-ubyte.gz"})
    imgs, labs = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(InputError, match=r"data\.images: expected an IDX image file with magic 2051"):
        load_dataset({"kind": "mnist", "images": labs, "labels": labs})
    with pytest.raises(InputError, match=r"data\.labels: expected an IDX label file with magic 2049"):
        load_dataset({"kind": "mnist", "images": imgs, "labels": imgs})
    _write_idx(tmp_path / "l5", np.zeros(5, np.uint8), 0x08)
    with pytest.raises(InputError, match=r"data: 20 images but 5 labels"):
        load_dataset({"kind": "mnist", "images": imgs, "labels": tmp_path / "l5"})
    _write_idx(tmp_path / "l20", np.full(20, 12, np.uint8), 0x08)
    with pytest.raises(InputError, match=r"expected digits 0\.\.9, found 12"):
        load_dataset({"kind": "mnist", "images": imgs, "labels": tmp_path / "l20"})
    with pytest.raises(InputError, match=r"give either path \(a folder\) or images \+ labels"):
        load_dataset({"kind": "mnist", "path": folder, "images": imgs, "labels": labs})
    with pytest.raises(InputError, match=r"data\.labels: missing for kind 'mnist'"):
        load_dataset({"kind": "mnist", "images": imgs})


# --- Adult -------------------------------------------------------------------------------------

_ADULT = """age, workclass, fnlwgt, education, education-num, marital-status, occupation, relationship, race, sex, capital-gain, capital-loss, hours-per-week, native-country, Salary
39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K
50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, White, Male, 0, 0, 13, United-States, >50K
38, ?, 215646, HS-grad, 9, Divorced, ?, Not-in-family, White, Male, 0, 0, 40, ?, <=50K.
"""


def test_adult_tiny(tmp_path: Path) -> None:
    (tmp_path / "adult.csv").write_text(_ADULT)
    ds = load_dataset({"kind": "adult", "path": tmp_path / "adult.csv"})
    assert isinstance(ds.X, pd.DataFrame) and ds.X.shape == (3, 14)
    np.testing.assert_array_equal(ds.y, [0, 1, 0])
    assert ds.class_names == ("<=50K", ">50K")
    assert ds.X["age"].dtype == np.float64 and ds.X["age"].tolist() == [39.0, 50.0, 38.0]
    assert ds.X["workclass"].dtype == "category"
    assert ds.X["workclass"].isna().tolist() == [False, False, True]
    assert ds.X["native-country"].iloc[0] == "United-States"  # whitespace stripped


def test_adult_errors(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(_ADULT.replace("Salary", "Income"))
    with pytest.raises(InputError, match=r"label column 'Salary' not found in 'a\.csv'; available columns: 'age'"):
        load_dataset({"kind": "adult", "path": tmp_path / "a.csv"})
    (tmp_path / "b.csv").write_text(_ADULT.replace(">50K", "rich"))
    with pytest.raises(InputError, match=r"Salary must be '<=50K' or '>50K', found 'rich' at row 1"):
        load_dataset({"kind": "adult", "path": tmp_path / "b.csv"})
    (tmp_path / "c.csv").write_text(_ADULT.replace("39,", "old,"))
    with pytest.raises(InputError, match=r"column 'age' expects numbers, found 'old' at row 0"):
        load_dataset({"kind": "adult", "path": tmp_path / "c.csv"})


def test_real_mnist_and_adult(shared_data: Path) -> None:
    ds = load_dataset({"kind": "mnist", "path": shared_data / "mnist"})
    assert ds.X.shape == (10000, 28, 28) and 0.0 <= ds.X.min() and ds.X.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(ds.y)[:3], [980, 1135, 1032])
    ad = load_dataset({"kind": "adult", "path": shared_data / "adult" / "adult.csv"})
    assert ad.X.shape == (32561, 14) and int(ad.y.sum()) == 7841
    assert ad.X["workclass"].isna().sum() == 1836


# --- spec errors -------------------------------------------------------------------------------

SPEC_ERRORS: list[tuple[Any, str]] = [
    ({"kind": "imagenet"}, r"data\.kind: unknown dataset kind 'imagenet'; expected one of: digits, csv, parquet, npz, mnist, adult"),
    ({}, r"data\.kind: unknown dataset kind None"),
    ("digits", r"data: expected a dict such as \{'kind': 'digits'\}, got str"),
    ({"kind": "digits", "path": "x"}, r"data: unknown keys 'path' for kind 'digits'; valid keys are: kind, max_examples, seed, name"),
    ({"kind": "csv", "path": "/nonexistent/x.csv"}, r"data\.path: '/nonexistent/x\.csv' does not exist"),
    ({"kind": "csv"}, r"data\.path: missing for kind 'csv'; add path: <path>"),
    ({"kind": "csv", "path": 3}, r"data\.path: expected a path string, got int"),
    ({"kind": "digits", "max_examples": 1}, r"data\.max_examples: expected an integer >= 2, got 1"),
    ({"kind": "digits", "max_examples": 10, "seed": -2}, r"data\.seed: expected a non-negative integer, got -2"),
    ({"kind": "digits", "seed": "a"}, r"data\.seed: expected a non-negative integer, got 'a'"),
    ({"kind": "digits", "name": 3}, r"data\.name: expected a string, got 3"),
]


@pytest.mark.parametrize(("spec", "match"), SPEC_ERRORS, ids=[f"s{i}" for i in range(len(SPEC_ERRORS))])
def test_spec_errors(spec: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        load_dataset(spec)


def test_table_errors(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1, 2], "y": [0, 1]}).to_csv(tmp_path / "d.csv", index=False)
    spec = {"kind": "csv", "path": tmp_path / "d.csv"}
    with pytest.raises(InputError, match=r"data\.label: column 'label' not found in 'd\.csv'; available columns: 'a', 'y'"):
        load_dataset(spec)
    with pytest.raises(InputError, match=r"data\.features: columns \['b'\] not found"):
        load_dataset({**spec, "label": "y", "features": ["b"]})
    with pytest.raises(InputError, match=r"data\.features: contains the label column 'y'"):
        load_dataset({**spec, "label": "y", "features": ["a", "y"]})
    with pytest.raises(InputError, match=r"data\.features: expected a list of column names"):
        load_dataset({**spec, "label": "y", "features": "a"})
    pd.DataFrame({"y": [0, 1]}).to_csv(tmp_path / "only.csv", index=False)
    with pytest.raises(InputError, match=r"data\.features: no feature columns besides the label 'y'"):
        load_dataset({"kind": "csv", "path": tmp_path / "only.csv", "label": "y"})
    pd.DataFrame({"a": [1, 2], "y": [1, 1]}).to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(InputError, match=r"expected at least 2 classes, got 1"):
        load_dataset({"kind": "csv", "path": tmp_path / "one.csv", "label": "y"})
    pd.DataFrame({"a": [1, 2], "y": [0.5, 1]}).to_csv(tmp_path / "f.csv", index=False)
    with pytest.raises(InputError, match=r"non-integer numbers"):
        load_dataset({"kind": "csv", "path": tmp_path / "f.csv", "label": "y"})
    pd.DataFrame({"a": [1, 2], "y": [None, "b"]}).to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(InputError, match=r"1 missing labels"):
        load_dataset({"kind": "csv", "path": tmp_path / "n.csv", "label": "y"})
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(InputError, match=r"'e\.csv' is an empty table"):
        load_dataset({"kind": "csv", "path": tmp_path / "e.csv"})
    (tmp_path / "q.csv").write_text('a,"y\n1,2')
    with pytest.raises(InputError, match=r"'q\.csv' is not a readable csv table"):
        load_dataset({"kind": "csv", "path": tmp_path / "q.csv"})


def test_npz_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", X=np.zeros((3, 2)))
    with pytest.raises(InputError, match=r"needs arrays 'X' and 'y', found \['X'\]"):
        load_dataset({"kind": "npz", "path": tmp_path / "a.npz"})
    np.savez(tmp_path / "b.npz", X=np.zeros((3, 2)), y=np.array([0, 1]))
    with pytest.raises(InputError, match=r"X and y must have the same number of rows"):
        load_dataset({"kind": "npz", "path": tmp_path / "b.npz"})
    np.savez(tmp_path / "c.npz", X=np.array([{}] * 2, dtype=object), y=np.array([0, 1]))
    with pytest.raises(InputError, match=r"not a readable \.npz of plain arrays"):
        load_dataset({"kind": "npz", "path": tmp_path / "c.npz"})
    np.savez(tmp_path / "d.npz", X=np.full((2, 2), np.nan), y=np.array([0, 1]))
    with pytest.raises(InputError, match=r"data X: found NaN/inf"):
        load_dataset({"kind": "npz", "path": tmp_path / "d.npz"})
    (tmp_path / "t.npz").write_text("text")
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        load_dataset({"kind": "npz", "path": tmp_path / "t.npz"})
    np.savez(tmp_path / "s.npz", X=np.array(["a", "b"]), y=np.array([0, 1]))
    with pytest.raises(InputError, match=r"data X: expected a numeric array, got dtype <U1"):
        load_dataset({"kind": "npz", "path": tmp_path / "s.npz"})
