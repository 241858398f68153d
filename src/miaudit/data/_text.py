"""Text datasets for language-model audits: ``.jsonl``, ``.txt``, CSV with a text column, and the embedded
``pydoc_topics`` paragraphs (real English text that ships with Python: ``pydoc_data.topics``).

The loaders return the documents; :mod:`miaudit.data._datasets` makes the :class:`~miaudit.data.Dataset`: a text dataset whose ``X`` is a 1-D object array of ``str`` (one
document each), ``y`` all zeros (one pseudo-class ``"text"``: a language model has no labels) and
``feature_names`` ``("text",)``. Kinds (every kind also takes ``max_examples``, ``seed`` and ``name``):

============  =================================================================================
kind          keys
============  =================================================================================
text          ``path``: ``.jsonl`` (one JSON object per line with a string field, ``text_field``,
              default ``"text"``), ``.txt`` (one document per line) or ``.csv`` (column
              ``text_column``, default ``"text"``)
pydoc_topics  ``min_chars`` (default 200): the paragraphs (blank-line separated) of every topic of
              ``pydoc_data.topics`` longer than ``min_chars`` characters, in topic order
============  =================================================================================
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .._errors import InputError

__all__ = ["TEXT_KINDS", "load_text", "load_pydoc_topics", "pydoc_paragraphs", "read_member_flags", "read_texts"]

TEXT_KINDS: dict[str, tuple[str, ...]] = {
    "text": ("path", "text_field", "text_column", "member_column"),
    "pydoc_topics": ("min_chars",),
}


def _check_docs(texts: list[str], where: str, *, line_numbers: list[int] | None = None) -> list[str]:
    for i, t in enumerate(texts):
        if not t.strip():
            n = line_numbers[i] if line_numbers is not None else i + 1
            raise InputError(f"{where}: document {i} (line {n}) is empty; remove empty documents or fill them")
    if len(texts) < 2:
        raise InputError(f"{where}: expected at least 2 documents, got {len(texts)}; a membership game needs "
                         "members and non-members")
    return texts


def read_texts(path: str | Path, *, text_field: str = "text", text_column: str = "text") -> list[str]:
    """The documents of a ``.jsonl``, ``.txt`` or ``.csv`` file (see the module docstring).

    Raises :class:`InputError` naming the file and the line (jsonl: bad JSON, not an object, missing or
    non-string field; any kind: an empty document; csv: a missing column, listing the columns).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"data.path: {str(p)!r} is not a file; pass a .jsonl, .txt or .csv file of documents")
    suffix = p.suffix.lower()
    where = f"data.path {p.name!r}"
    try:
        raw = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8") from None
    if suffix == ".jsonl":
        texts, lines = [], []
        for n, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: line {n} is not valid JSON ({exc.msg} at column {exc.colno}); "
                                 f"expected one object per line such as {{\"{text_field}\": \"...\"}}") from None
            if not isinstance(obj, dict) or text_field not in obj:
                raise InputError(f"{where}: line {n} has no {text_field!r} field; expected one object per line "
                                 f"such as {{\"{text_field}\": \"...\"}} (set text_field in [data] to use another)")
            if not isinstance(obj[text_field], str):
                raise InputError(f"{where}: line {n}: field {text_field!r} is {type(obj[text_field]).__name__}, "
                                 "expected a string")
            texts.append(obj[text_field])
            lines.append(n)
        return _check_docs(texts, where, line_numbers=lines)
    if suffix == ".txt":
        all_lines = raw.splitlines()
        texts = [t for t in all_lines if t.strip()]
        if not texts:
            raise InputError(f"{where}: no documents (every line is empty); write one document per line")
        return _check_docs(texts, where)
    if suffix == ".csv":
        import pandas as pd

        try:
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the file's
            raise InputError(f"{where}: not a readable CSV ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:120]}); check the file") from None
        if text_column not in df.columns:
            raise InputError(f"{where}: column {text_column!r} not found; available columns: "
                             f"{', '.join(map(repr, list(df.columns)[:40]))}; set text_column in [data]")
        texts = df[text_column].tolist()
        for i, t in enumerate(texts):
            if not t.strip():
                raise InputError(f"{where}: row {i + 1} (line {i + 2}) has an empty {text_column!r}; remove or "
                                 "fill it")
        return _check_docs(texts, where)
    raise InputError(f"{where}: unknown text format {suffix or '(no suffix)'!r}; expected .jsonl, .txt or .csv")


def read_member_flags(path: str | Path, member_column: str = "member") -> list[bool]:
    """The membership flags of a ``.jsonl`` (field ``member_column``) or ``.csv`` (column ``member_column``) file of
    documents, one per document in :func:`read_texts` order: JSON ``true``/``false``; CSV ``true``/``false``/``1``/``0``
    (any case). Raises :class:`InputError` naming ``[data] member_column`` for a missing field or a non-boolean value,
    and when every document (or none) is a member."""
    p = Path(path).expanduser()
    where = f"[data] member_column {member_column!r} in {p.name!r}"
    suffix = p.suffix.lower()
    flags: list[bool] = []
    if suffix == ".jsonl":
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if member_column not in obj:
                raise InputError(f"{where}: line {n} has no {member_column!r} field; mark each document's membership "
                                 f"of the [target] model, e.g. {{\"text\": \"...\", \"{member_column}\": true}}, or "
                                 "set member_column in [data]")
            v = obj[member_column]
            if not isinstance(v, bool):
                raise InputError(f"{where}: line {n}: {v!r} is not a boolean; write true or false")
            flags.append(v)
    elif suffix == ".csv":
        import pandas as pd

        df = pd.read_csv(p, dtype=str, keep_default_na=False)
        if member_column not in df.columns:
            raise InputError(f"{where}: column not found; available columns: "
                             f"{', '.join(map(repr, list(df.columns)[:40]))}; add it or set member_column in [data]")
        for i, v in enumerate(df[member_column].tolist()):
            low = str(v).strip().lower()
            if low not in ("true", "false", "1", "0"):
                raise InputError(f"{where}: row {i + 1} (line {i + 2}): {v!r} is not a boolean; write true/false or 1/0")
            flags.append(low in ("true", "1"))
    else:
        raise InputError(f"{where}: membership flags need a .jsonl or .csv file, got {suffix or '(no suffix)'!r}")
    n_mem = sum(flags)
    if n_mem < 2 or len(flags) - n_mem < 2:
        raise InputError(f"{where}: {n_mem} members and {len(flags) - n_mem} non-members; the audit needs at least 2 "
                         "of each (check the flags)")
    return flags


def pydoc_paragraphs(min_chars: int = 200) -> tuple[list[str], list[str]]:
    """Paragraphs of Python's ``pydoc_data.topics`` longer than ``min_chars`` characters and their topics,
    in topic order (783 paragraphs over 200 characters on CPython 3.12+; they differ a little by version)."""
    from pydoc_data.topics import topics

    texts: list[str] = []
    names: list[str] = []
    for name, body in topics.items():
        for para in re.split(r"\n\s*\n", body):
            para = para.strip()
            if len(para) > min_chars:
                texts.append(para)
                names.append(name)
    return texts, names


def load_text(spec: dict[str, Any], p: Path) -> tuple[list[str], str]:
    """Documents and name of ``kind = "text"`` (``p``: the checked ``path``)."""
    for key in ("text_field", "text_column"):
        if key in spec and not (isinstance(spec[key], str) and spec[key]):
            raise InputError(f"data.{key}: expected a non-empty string, got {spec[key]!r}")
    texts = read_texts(p, text_field=spec.get("text_field", "text"), text_column=spec.get("text_column", "text"))
    return texts, p.stem


def load_pydoc_topics(spec: dict[str, Any]) -> tuple[list[str], str]:
    """Documents and name of ``kind = "pydoc_topics"``."""
    m = spec.get("min_chars", 200)
    if isinstance(m, bool) or not isinstance(m, int) or m < 0:
        raise InputError(f"data.min_chars: expected a non-negative integer, got {m!r}")
    texts, _ = pydoc_paragraphs(m)
    if len(texts) < 2:
        raise InputError(f"data.min_chars: only {len(texts)} paragraphs are longer than {m} characters; lower it")
    return texts, "pydoc_topics"
