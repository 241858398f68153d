"""Text datasets: .jsonl, .txt, .csv and the embedded pydoc_topics paragraphs; every bad input names the file and line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from miaudit import InputError
from miaudit.data import load_dataset
from miaudit.data._text import pydoc_paragraphs, read_texts


def test_jsonl_txt_csv_give_the_same_documents(tmp_path):
    docs = ["first document, with a comma", "second \"quoted\" one", "third: ünïcode"]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps({"text": d, "id": i}) for i, d in enumerate(docs)) + "\n\n",
                                      encoding="utf-8")
    (tmp_path / "d.txt").write_text("\n".join(docs) + "\n", encoding="utf-8")
    import pandas as pd

    pd.DataFrame({"id": [1, 2, 3], "body": docs}).to_csv(tmp_path / "d.csv", index=False)
    for name, extra in (("d.jsonl", {}), ("d.txt", {}), ("d.csv", {"text_column": "body"})):
        ds = load_dataset({"kind": "text", "path": str(tmp_path / name), **extra})
        assert ds.X.dtype == object and list(ds.X) == docs, name
        assert ds.n_examples == 3 and set(ds.y) == {0} and ds.feature_names == ("text",)
    sub = load_dataset({"kind": "text", "path": str(tmp_path / "d.txt"), "max_examples": 2, "seed": 1})
    assert sub.n_examples == 2 and set(sub.X) <= set(docs)


@pytest.mark.parametrize(
    ("name", "content", "extra", "match"),
    [
        ("a.jsonl", '{"text": "ok"}\n{"text": "fine"}\n{"text": broken}\n', {}, r"line 3 is not valid JSON"),
        ("a.jsonl", '{"text": "ok"}\n{"body": "x"}\n', {}, r"line 2 has no 'text' field"),
        ("a.jsonl", '{"text": "ok"}\n{"text": 3}\n', {}, r"line 2: field 'text' is int"),
        ("a.jsonl", '{"text": "ok"}\n\n{"text": "  "}\n', {}, r"document 1 \(line 3\) is empty"),
        ("a.jsonl", '{"text": "only one"}\n', {}, r"at least 2 documents"),
        ("a.txt", "\n\n", {}, r"no documents"),
        ("a.csv", "id,body\n1,x\n2,y\n", {}, r"column 'text' not found; available columns: 'id', 'body'"),
        ("a.csv", "text\nx\n\"\"\ny\n", {}, r"row 2 \(line 3\) has an empty 'text'"),
        ("a.md", "x\ny\n", {}, r"unknown text format '.md'"),
    ],
)
def test_bad_text_files_are_input_errors(tmp_path, name, content, extra, match):
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_dataset({"kind": "text", "path": str(p), **extra})


def test_non_utf8_and_missing_file(tmp_path):
    p = tmp_path / "b.txt"
    p.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(InputError, match=r"not UTF-8"):
        read_texts(p)
    with pytest.raises(InputError, match=r"does not exist"):
        load_dataset({"kind": "text", "path": str(tmp_path / "nope.txt")})
    with pytest.raises(InputError, match=r"unknown keys 'label'"):
        load_dataset({"kind": "text", "path": str(p), "label": "x"})


def test_pydoc_topics_paragraphs_are_real_text():
    texts, topics = pydoc_paragraphs()
    assert len(texts) == len(topics) > 500  # 783 on CPython 3.12/3.13
    assert all(len(t) > 200 and t == t.strip() for t in texts)
    assert topics[0] <= topics[-1] and len(set(topics)) > 30
    ds = load_dataset({"kind": "pydoc_topics", "max_examples": 200, "seed": 0})
    assert ds.n_examples == 200 and isinstance(ds.X[0], str)
    assert load_dataset({"kind": "pydoc_topics", "min_chars": 1000}).n_examples < len(texts)
    with pytest.raises(InputError, match=r"data.min_chars: expected a non-negative integer"):
        load_dataset({"kind": "pydoc_topics", "min_chars": -1})
    with pytest.raises(InputError, match=r"only 0 paragraphs"):
        load_dataset({"kind": "pydoc_topics", "min_chars": 10**7})
    assert np.all(load_dataset({"kind": "pydoc_topics"}).y == 0)
