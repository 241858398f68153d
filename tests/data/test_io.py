"""load_bundle / save_bundle: npz and table formats, round trips, every error path."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from miaudit._errors import InputError
from miaudit.data import SignalBundle, load_bundle, save_bundle
from miaudit.data._io import BUNDLE_KEYS

N, C, K = 10, 3, 2


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "labels": rng.integers(0, C, N),
        "target_logits": rng.normal(size=(N, C)),
        "is_member": np.arange(N) < N // 2,
        "ref_logits": rng.normal(size=(K, N, C)).astype(np.float32),
        "ref_is_member": np.array([np.arange(N) % 2 == 0, np.arange(N) % 2 == 1]),
    }


def _assert_same(a: SignalBundle, b: SignalBundle) -> None:
    for f in ("labels", "target_logits", "is_member", "ref_logits", "ref_is_member", "groups", "population_logits",
              "population_labels", "ref_population_logits"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            assert x.dtype == y.dtype, f
            np.testing.assert_array_equal(x, y, err_msg=f)


# --- npz ---------------------------------------------------------------------------------------


def test_npz_load(tmp_path: Path) -> None:
    arr = _arrays()
    np.savez(tmp_path / "b.npz", **arr)
    b = load_bundle(tmp_path / "b.npz")
    _assert_same(b, SignalBundle.from_arrays(**arr))
    assert b.meta["source"].endswith("b.npz")


def test_npz_minimal_and_probs(tmp_path: Path) -> None:
    p = np.full((N, C), 1.0 / C)
    np.savez(tmp_path / "b.npz", labels=np.zeros(N, np.int32), target_probs=p)
    b = load_bundle(str(tmp_path / "b.npz"))
    assert b.is_member is None and b.ref_logits is None
    np.testing.assert_allclose(b.target_logits, np.log(1.0 / C))


def test_roundtrip_full(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    arr = _arrays()
    arr["target_logits"] = rng.normal(size=(N, 2, C))
    arr["ref_logits"] = rng.normal(size=(K, N, 2, C))
    b = SignalBundle.from_arrays(
        **arr, groups=np.array(["x", "y"] * (N // 2), dtype=object),
        population_logits=rng.normal(size=(4, 2, C)), population_labels=np.array([0, 1, 2, 0]),
        ref_population_logits=rng.normal(size=(K, 4, 2, C)), meta={"seed": 3, "path": Path("/a")},
    )
    out = save_bundle(b, tmp_path / "full.npz")
    assert out == tmp_path / "full.npz"
    b2 = load_bundle(out)
    _assert_same(b, b2)
    assert b2.meta["seed"] == 3 and b2.meta["path"] == "/a"
    assert [p.name for p in tmp_path.iterdir()] == ["full.npz"]  # no temporary file left


def test_save_compressed_and_overwrite(tmp_path: Path) -> None:
    b = SignalBundle.from_arrays(**_arrays())
    target = tmp_path / "b.npz"
    target.write_bytes(b"old")
    save_bundle(b, target, compress=True)
    _assert_same(b, load_bundle(target))


def test_save_is_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "b.npz"
    target.write_bytes(b"previous content")

    def boom(*a: Any, **k: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_bundle(SignalBundle.from_arrays(**_arrays()), target)
    assert target.read_bytes() == b"previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["b.npz"]


def test_save_errors(tmp_path: Path) -> None:
    b = SignalBundle.from_arrays(**_arrays())
    with pytest.raises(InputError, match=r"path: expected a file name ending in \.npz"):
        save_bundle(b, tmp_path / "b.csv")
    with pytest.raises(InputError, match=r"path: folder .* does not exist; create it first"):
        save_bundle(b, tmp_path / "nope" / "b.npz")
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(InputError, match=r"path: .* is a directory"):
        save_bundle(b, tmp_path / "d.npz")
    with pytest.raises(InputError, match=r"bundle: expected a SignalBundle, got dict"):
        save_bundle({}, tmp_path / "b.npz")  # type: ignore[arg-type]


def _zip_with(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def test_npz_errors(tmp_path: Path) -> None:
    arr = _arrays()
    # unknown key, listing the valid ones
    np.savez(tmp_path / "u.npz", **arr, logits=arr["target_logits"])
    with pytest.raises(InputError, match=r"u\.npz: unknown keys 'logits'; valid keys are: labels, target_logits"):
        load_bundle(tmp_path / "u.npz")
    # object array: refused, never unpickled
    obj = np.array([{"a": 1}] * N, dtype=object)
    np.savez(tmp_path / "o.npz", **{**arr, "groups": obj})
    with pytest.raises(InputError, match=r"o\.npz\['groups'\]: object arrays are refused"):
        load_bundle(tmp_path / "o.npz")
    # a content error is prefixed with the file name
    np.savez(tmp_path / "l.npz", **{**arr, "labels": arr["labels"][:-1]})
    with pytest.raises(InputError, match=r"l\.npz: labels: expected 10 entries"):
        load_bundle(tmp_path / "l.npz")
    # missing required keys
    np.savez(tmp_path / "nl.npz", target_logits=arr["target_logits"])  # labels are optional
    assert load_bundle(tmp_path / "nl.npz").labels is None
    np.savez(tmp_path / "m.npz", labels=arr["labels"])
    with pytest.raises(InputError, match=r"m\.npz: target_logits: missing"):
        load_bundle(tmp_path / "m.npz")
    # not a zip at all
    (tmp_path / "t.npz").write_text("hello, I am text")
    with pytest.raises(InputError, match=r"t\.npz: not a valid \.npz bundle \(BadZipFile"):
        load_bundle(tmp_path / "t.npz")
    # truncated archive
    np.savez(tmp_path / "full.npz", **arr)
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "tr.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"tr\.npz: not a valid \.npz bundle"):
        load_bundle(tmp_path / "tr.npz")
    # member that is not .npy
    _zip_with(tmp_path / "r.npz", {"labels": b"raw bytes"})
    with pytest.raises(InputError, match=r"r\.npz\['labels'\]: archive member 'labels' is not a \.npy array"):
        load_bundle(tmp_path / "r.npz")
    # .npy member with a garbage body
    _zip_with(tmp_path / "g.npz", {"labels.npy": b"\x93NUMPY garbage"})
    with pytest.raises(InputError, match=r"g\.npz\['labels'\]: unsupported \.npy format version"):
        load_bundle(tmp_path / "g.npz")
    _zip_with(tmp_path / "h.npz", {"labels.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': garbage"})
    with pytest.raises(InputError, match=r"h\.npz\['labels'\]: unreadable array"):
        load_bundle(tmp_path / "h.npz")
    # header announcing more data than present
    good = _npy_bytes(np.zeros(N, np.int64))
    _zip_with(tmp_path / "s.npz", {"labels.npy": good[:-8]})
    with pytest.raises(InputError, match=r"s\.npz\['labels'\]: corrupt array: header says shape \(10,\)"):
        load_bundle(tmp_path / "s.npz")
    # compression other than stored/deflate, and an impossible expansion ratio (decompression bomb)
    with zipfile.ZipFile(tmp_path / "bz.npz", "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr("labels.npy", good)
    with pytest.raises(InputError, match=r"bz\.npz\['labels'\]: unsupported zip compression \(type 12\)"):
        load_bundle(tmp_path / "bz.npz")
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.npy", _npy_bytes(np.zeros(300_000, np.int64)))
    from miaudit.data import _io

    with pytest.MonkeyPatch.context() as mp:  # zeros deflate ~1030:1, right at the real limit: lower it
        mp.setattr(_io, "_MAX_DEFLATE_RATIO", 100)
        with pytest.raises(InputError, match=r"bomb\.npz\['labels'\]: corrupt archive member \(claims 2400128 bytes"):
            load_bundle(tmp_path / "bomb.npz")
    # empty archive, duplicate members, bad dtypes, bad meta
    _zip_with(tmp_path / "e.npz", {})
    with pytest.raises(InputError, match=r"e\.npz: empty \.npz archive"):
        load_bundle(tmp_path / "e.npz")
    np.savez(tmp_path / "c.npz", **{**arr, "target_logits": arr["target_logits"].astype(complex)})
    with pytest.raises(InputError, match=r"c\.npz\['target_logits'\]: unsupported dtype complex128"):
        load_bundle(tmp_path / "c.npz")
    np.savez(tmp_path / "st.npz", **{**arr, "labels": np.zeros(N, dtype=[("a", "i4")])})
    with pytest.raises(InputError, match=r"st\.npz\['labels'\]: unsupported dtype"):
        load_bundle(tmp_path / "st.npz")
    np.savez(tmp_path / "mj.npz", **arr, meta=np.array("{not json"))
    with pytest.raises(InputError, match=r"mj\.npz\['meta'\]: not valid JSON"):
        load_bundle(tmp_path / "mj.npz")
    np.savez(tmp_path / "ml.npz", **arr, meta=np.array(json.dumps([1, 2])))
    with pytest.raises(InputError, match=r"ml\.npz\['meta'\]: expected a JSON object, got list"):
        load_bundle(tmp_path / "ml.npz")
    np.savez(tmp_path / "mn.npz", **arr, meta=np.zeros(3))
    with pytest.raises(InputError, match=r"mn\.npz\['meta'\]: expected one JSON string"):
        load_bundle(tmp_path / "mn.npz")


def test_npz_duplicate_member(tmp_path: Path) -> None:
    path = tmp_path / "dup.npz"
    good = _npy_bytes(np.zeros(N, np.int64))
    with pytest.warns(UserWarning):  # zipfile warns about the duplicate name
        _zip_with(path, {"labels.npy": good})
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("labels.npy", good)
    with pytest.raises(InputError, match=r"dup\.npz: duplicate keys"):
        load_bundle(path)


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"bundle: file .*missing\.npz' does not exist; check the path"):
        load_bundle(tmp_path / "missing.npz")
    with pytest.raises(InputError, match=r"bundle: .* is a directory"):
        load_bundle(tmp_path)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InputError, match=r"bundle: unknown file type '\.json' of 'x\.json'; expected \.npz, \.csv"):
        load_bundle(tmp_path / "x.json")
    (tmp_path / "noext").write_text("{}")
    with pytest.raises(InputError, match=r"unknown file type '\(no extension\)'"):
        load_bundle(tmp_path / "noext")
    with pytest.raises(InputError, match=r"bundle: expected a file path, got int"):
        load_bundle(3)  # type: ignore[arg-type]


# --- tables ------------------------------------------------------------------------------------


def _frame(kind: str = "logit") -> pd.DataFrame:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(N, C))
    if kind == "prob":
        z = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    df = pd.DataFrame({f"{kind}_{j}": z[:, j] for j in range(C)})
    df.insert(0, "label", rng.integers(0, C, N))
    df["is_member"] = np.arange(N) % 2 == 0
    df["site"] = ["a", "b"] * (N // 2)
    return df


def test_csv_logits(tmp_path: Path) -> None:
    df = _frame()
    df.to_csv(tmp_path / "t.csv", index=False)
    b = load_bundle(tmp_path / "t.csv", group_column="site")
    np.testing.assert_allclose(b.target_logits[:, 0], df[[f"logit_{j}" for j in range(C)]].to_numpy())
    np.testing.assert_array_equal(b.labels, df["label"])
    np.testing.assert_array_equal(b.is_member, df["is_member"])
    np.testing.assert_array_equal(b.groups, df["site"])


def test_csv_probs_column_order_and_text_membership(tmp_path: Path) -> None:
    df = _frame("prob")
    df = df[["prob_2", "label", "prob_0", "is_member", "prob_1"]]  # any column order
    df["is_member"] = np.where(df["is_member"], " Yes", "no")
    df.to_csv(tmp_path / "t.csv.gz", index=False)
    b = load_bundle(tmp_path / "t.csv.gz")
    np.testing.assert_allclose(np.exp(b.target_logits[:, 0]), df[["prob_0", "prob_1", "prob_2"]].to_numpy())
    np.testing.assert_array_equal(b.is_member, np.arange(N) % 2 == 0)


def test_table_without_membership_and_custom_prefix(tmp_path: Path) -> None:
    df = _frame().drop(columns=["is_member"]).rename(columns=lambda c: c.replace("logit_", "p"))
    df["p0"], df["p1"], df["p2"] = 0.2, 0.3, 0.5
    df.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    b = load_bundle(tmp_path / "t.tsv", prefix="p", outputs="probs", label_column="label")
    assert b.is_member is None
    np.testing.assert_allclose(np.exp(b.target_logits[0, 0]), [0.2, 0.3, 0.5])
    b2 = load_bundle(tmp_path / "t.tsv", prefix="p")  # default: logits for a non-"prob" prefix
    np.testing.assert_allclose(b2.target_logits[0, 0], [0.2, 0.3, 0.5])


def test_scores_table_as_it_is(tmp_path: Path) -> None:
    """The article's table: named score columns, no labels, not normalised, membership under another name."""
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.1, 0.9, (N, 2))
    member = np.arange(N) % 2 == 0
    pd.DataFrame({"p_cat": scores[:, 0], "p_dog": scores[:, 1], "member": member.astype(int)}).to_csv(
        tmp_path / "T.csv", index=False)
    for outputs in ("p_cat,p_dog", "p_*", ["p_cat", "p_dog"], " p_cat , p_dog "):
        b = load_bundle(tmp_path / "T.csv", outputs=outputs, outputs_kind="scores", member_column="member")
        assert b.outputs_kind == "scores" and b.labels is None and b.n_classes == 2
        np.testing.assert_array_equal(b.target_logits[:, 0], scores)  # used as given, bit for bit
        np.testing.assert_array_equal(b.is_member, member)
        assert b.meta["outputs"] == ["p_cat", "p_dog"] and b.meta["outputs_kind"] == "scores"
    b = load_bundle(tmp_path / "T.csv", outputs="p_dog,p_cat", outputs_kind="scores")  # class order as named
    np.testing.assert_array_equal(b.target_logits[:, 0], scores[:, ::-1])
    assert b.is_member is None  # the default membership column is optional


def test_output_kind_inferred_from_names_and_labels_optional(tmp_path: Path) -> None:
    df = _frame().drop(columns=["label"])
    df.to_csv(tmp_path / "t.csv", index=False)
    b = load_bundle(tmp_path / "t.csv", outputs="logit_*")
    assert b.outputs_kind == "logits" and b.labels is None and b.is_member is not None
    b = load_bundle(tmp_path / "t.csv")  # the default label column is optional
    assert b.labels is None
    assert load_bundle(tmp_path / "t.csv", outputs="logits").outputs_kind == "logits"  # the former outputs=KIND
    probs = _frame("prob")
    probs.to_csv(tmp_path / "p.csv", index=False)
    b = load_bundle(tmp_path / "p.csv", outputs="prob_0,prob_1,prob_2", label_column=None)
    assert b.outputs_kind == "logits" and b.labels is None  # probabilities become log-probabilities
    np.testing.assert_allclose(np.exp(b.target_logits[:, 0]), probs[["prob_0", "prob_1", "prob_2"]].to_numpy())


def test_scores_npz_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    scores = rng.uniform(-3, 7, (N, 2, C))
    ref = rng.uniform(-3, 7, (4, N, 2, C))
    ref_in = rng.random((4, N)) < 0.5
    np.savez(tmp_path / "s.npz", target_scores=scores, ref_scores=ref, ref_is_member=ref_in)
    b = load_bundle(tmp_path / "s.npz")
    assert b.outputs_kind == "scores" and b.labels is None and b.n_references == 4
    np.testing.assert_array_equal(b.target_logits, scores)
    save_bundle(b, tmp_path / "again.npz")
    with np.load(tmp_path / "again.npz") as z:
        assert {"target_scores", "ref_scores"} <= set(z.files) and "target_logits" not in z.files
        assert "labels" not in z.files
    again = load_bundle(tmp_path / "again.npz")
    assert again.outputs_kind == "scores"
    np.testing.assert_array_equal(again.target_logits, b.target_logits)
    np.testing.assert_array_equal(again.ref_logits, b.ref_logits)
    with pytest.raises(InputError, match=r"s\.npz: outputs and outputs_kind apply to tables"):
        load_bundle(tmp_path / "s.npz", outputs_kind="scores")


@pytest.mark.parametrize(("arrays", "match"), [
    ({"target_scores": np.ones((N, C)), "target_logits": np.ones((N, C))}, r"target_scores/target_logits: both given"),
    ({"target_scores": np.ones((N, C)), "ref_logits": np.ones((2, N, C)), "ref_is_member": np.ones((2, N), bool)},
     r"ref_logits: given with target_scores; .*pass them as ref_scores"),
    ({"target_logits": np.ones((N, C)), "ref_scores": np.ones((2, N, C)), "ref_is_member": np.ones((2, N), bool)},
     r"ref_scores: given with target_logits"),
    ({"target_scores": np.ones((N, C)), "population_logits": np.ones((3, C)), "population_labels": np.zeros(3, int)},
     r"population outputs: given with target_scores"),
    ({"target_scores": np.full((N, C), np.nan)}, r"target_scores: expected finite values, found 30 NaN/inf"),
    ({"target_scores": np.ones((N, C)), "labels": np.full(N, C)}, r"labels: expected class indices in \[0, 3\)"),
])
def test_scores_bundle_errors(arrays: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match):
        SignalBundle.from_arrays(**arrays)


def test_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    df = _frame()
    df.to_parquet(tmp_path / "t.parquet", index=False)
    b = load_bundle(tmp_path / "t.parquet", member_column="is_member")
    np.testing.assert_allclose(b.target_logits[:, 0], df[[f"logit_{j}" for j in range(C)]].to_numpy())
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"bad\.parquet: not a readable parquet table"):
        load_bundle(tmp_path / "bad.parquet")


TABLE_ERRORS: list[tuple[Any, dict[str, Any], str]] = [
    (lambda d: d.drop(columns=["label"]), {"label_column": "y"}, r"table: label column 'y' not found; available "
     r"columns: 'logit_0'.*; pass label_column=\.\.\. with the column of true classes"),
    (lambda d: d.drop(columns=["logit_0", "logit_1", "logit_2"]), {}, r"table: no output columns found"),
    (lambda d: d.drop(columns=["logit_1"]), {}, r"must be contiguous from 0, missing logit_1"),
    (lambda d: d.assign(prob_0=0.5), {}, r"both logit_\* and prob_\* columns present"),
    (lambda d: d.assign(logit_1=["x"] + [0.0] * (N - 1)), {}, r"logit_1: non-numeric cell 'x' at row 0"),
    (lambda d: d.assign(logit_2=[np.nan] + [0.0] * (N - 1)), {}, r"logit_2: empty or NaN cell at row 0"),
    (lambda d: d.assign(label=["cat"] * N), {}, r"label: expected integer class indices 0\.\.C-1, found 'cat'"),
    (lambda d: d.assign(label=[np.nan] + [0] * (N - 1)), {}, r"label: 1 empty label cells"),
    (lambda d: d.assign(label=7), {}, r"label: expected class indices 0\.\.2 \(one per output column "
     r"logit_0,logit_1,logit_2\), found 7 at row 0 \(label_column=\.\.\.\)"),
    (lambda d: d.assign(is_member=["maybe"] * N), {}, r"is_member: expected true/false or 1/0, found 'maybe'"),
    (lambda d: d.assign(is_member=[np.nan] + [1.0] * (N - 1)), {}, r"is_member: 1 empty membership cells"),
    (lambda d: d.assign(is_member=True), {}, r"is_member: need both members and non-members"),
    (lambda d: d.assign(is_member=3), {}, r"is_member: expected a boolean array"),
    (lambda d: d, {"group_column": "nope"}, r"table: group column 'nope' not found"),
    (lambda d: d.assign(site=[np.nan] + ["a"] * (N - 1)), {"group_column": "site"}, r"site: 1 empty group cells"),
    (lambda d: d, {"prefix": "score_"}, r"table: no columns named score_0, score_1"),
    (lambda d: d, {"outputs_kind": "odds"}, r"outputs_kind: expected 'logits', 'probs' or 'scores', got 'odds'; "
     r"pass outputs_kind='scores'"),
    (lambda d: d, {"outputs": "logit_0,logit_9"}, r"table: output column 'logit_9' not found \(outputs=\.\.\.\)"),
    (lambda d: d, {"outputs": "p_*"}, r"table: no output columns match 'p_\*'"),
    (lambda d: d, {"outputs": "logit_0"}, r"outputs: expected at least 2 output columns"),
    (lambda d: d, {"outputs": "logit_0,logit_0"}, r"outputs: a column is named twice"),
    (lambda d: d.rename(columns={"logit_0": "a", "logit_1": "b"}), {"outputs": "a,b"},
     r"outputs_kind: cannot tell what the columns a,b hold; pass outputs_kind='logits'"),
    (lambda d: d.assign(logit_2=[np.nan] + [0.0] * (N - 1)), {"outputs_kind": "scores"},
     r"logit_2: empty or NaN cell at row 0"),
    (lambda d: d.assign(logit_2=[np.inf] + [0.0] * (N - 1)), {"outputs_kind": "scores"},
     r"target_scores: expected finite values, found 1 NaN/inf"),
    (lambda d: d, {"member_column": "member"}, r"table: membership column 'member' not found"),
    (lambda d: d.rename(columns={f"logit_{j}": f"prob_{j}" for j in range(C)}).assign(prob_0=0.9, prob_1=0.9, prob_2=0.9),
     {}, r"target_probs: expected rows summing to 1.*pass outputs_kind='scores'"),
    (lambda d: d.rename(columns={f"logit_{j}": f"prob_{j}" for j in range(C)}),
     {}, r"target_probs: expected probabilities in \[0, 1\].*pass outputs_kind='scores'"),
    (lambda d: d, {"label_column": "y"}, r"table: label column 'y' not found"),
    (lambda d: d.iloc[:0], {}, r"target_logits: expected a non-empty array"),
    (lambda d: d.drop(columns=["logit_1", "logit_2"]), {}, r"target_logits: expected at least 2 classes"),
]


@pytest.mark.parametrize(("edit", "kwargs", "match"), TABLE_ERRORS, ids=[f"t{i}" for i in range(len(TABLE_ERRORS))])
def test_table_errors(tmp_path: Path, edit: Any, kwargs: dict[str, Any], match: str) -> None:
    edit(_frame()).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError, match=match) as info:
        load_bundle(tmp_path / "t.csv", **kwargs)
    assert str(info.value).startswith("t.csv: ") and "\n" not in str(info.value)


def test_table_file_errors(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(InputError, match=r"e\.csv: empty table"):
        load_bundle(tmp_path / "e.csv")
    (tmp_path / "bin.csv").write_bytes(b'"\x00\xff\xfe unterminated quote')
    with pytest.raises(InputError, match=r"bin\.csv: "):
        load_bundle(tmp_path / "bin.csv")
    (tmp_path / "dup.csv").write_text("label,logit_0,logit_0,logit_1\n0,1,2,3\n")
    with pytest.raises(InputError, match=r"dup\.csv: table: duplicate column .logit_0."):
        load_bundle(tmp_path / "dup.csv")


def test_bundle_keys_match_from_arrays() -> None:
    import inspect

    params = set(inspect.signature(SignalBundle.from_arrays).parameters) - {"meta"}
    assert set(BUNDLE_KEYS) == params


def test_no_unpickling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def forbidden(*a: Any, **k: Any) -> None:
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    np.savez(tmp_path / "o.npz", labels=np.array([object()] * N, dtype=object))
    with pytest.raises(InputError, match="object arrays are refused"):
        load_bundle(tmp_path / "o.npz")
    assert os.path.exists(tmp_path / "o.npz")


def test_roundtrip_property(tmp_path_factory: pytest.TempPathFactory) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    folder = tmp_path_factory.mktemp("rt")

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(n=st.integers(2, 7), c=st.integers(2, 4), k=st.integers(0, 3), a=st.integers(1, 3),
           seed=st.integers(0, 2**32 - 1), probs=st.booleans())
    def run(n: int, c: int, k: int, a: int, seed: int, probs: bool) -> None:
        rng = np.random.default_rng(seed)
        z = rng.normal(scale=5.0, size=(n, a, c))
        kw: dict[str, Any] = {"labels": rng.integers(0, c, n), "is_member": np.arange(n) % 2 == 1}
        if probs:
            kw["target_probs"] = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
        else:
            kw["target_logits"] = z
        if k:
            kw["ref_logits"] = rng.normal(size=(k, n, a, c))
            kw["ref_is_member"] = rng.random((k, n)) < 0.5
        b = SignalBundle.from_arrays(**kw)
        b2 = load_bundle(save_bundle(b, folder / "b.npz"))
        _assert_same(b, b2)

    run()
