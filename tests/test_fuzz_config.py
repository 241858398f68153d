"""Fuzzing the audit config loader (issue 4, "Robustness").

Generated malformed TOML/YAML/JSON configs - random sections, keys, types and values (huge and
non-finite numbers, datetimes, nested tables where scalars belong, lists where tables belong,
unhashable values, long and NUL-carrying paths, odd import paths), valid configs with a few
random edits, character-level corruption, wrong encodings (UTF-16/32, Latin-1, BOM), deep nesting
and raw garbage - must either load or raise :class:`miaudit.ConfigError` (an ``InputError``) with a
one-line message. Anything else is a bug. For a sample, ``miaudit audit BAD`` must exit 2 with one
line on stderr and no traceback.

Fast variants: ~200 inputs (derandomised). Slow: 3,000 more, on top of the >= 10,000 of
``tests/test_fuzz_loaders.py``: ``python -m pytest -m slow tests/test_fuzz_config.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from miaudit import ConfigError, InputError
from miaudit.cli import app
from miaudit.config import AuditConfig, load_config

from ._fuzz import run_fuzz

_TMP = Path(tempfile.mkdtemp(prefix="miaudit-fuzz-config-"))
_COUNTER = itertools.count()
_SUFFIXES = [".toml", ".yaml", ".yml", ".json"]

SECTION_KEYS: dict[str, list[str]] = {
    "data": ["kind", "path", "label", "features", "images", "labels", "split", "max_examples", "seed", "name", "group"],
    "model": ["kind", "estimator", "params", "preprocessing", "epochs", "lr", "batch_size", "model", "dp",
              "optimizer", "model_kwargs", "stack", "train_fn", "queries", "n_classes", "weight_decay"],
    "game": ["pool_size", "n_references", "n_targets", "seed", "queries"],
    "attacks": ["names", "params"],
    "metrics": ["delta", "confidence", "member_prior", "fprs"],
    "output": ["dir", "run_dir"],
    "target": ["model", "members", "nonmembers", "allow_pickle", "trusted"],
}
NAMES = ["digits", "csv", "parquet", "npz", "mnist", "adult", "sklearn", "torch", "loss", "rmia", "lira_online",
         "auto", "none", "t10k", "train", "mlp", "cnn", "sgd", "adam", "true", "", " ", ".", "..", "/", "~",
         "sklearn.linear_model.LogisticRegression", "sklearn.preprocessing.StandardScaler",
         "sklearn.tree.DecisionTreeClassifier", "sklearn.linear_model.LogisticRegression.",
         ".sklearn.linear_model.LogisticRegression", ".a.b", "a..b", "..", "numpy.float64", "math.pi",
         "json.loads", "os.path", "builtins.int", "miaudit.attacks", "no_such_module.X", "m.pkl", "m.skops",
         "m.joblib", "idx.npy", "data.csv", "/dev/null", "/proc/self/status", "/", "a\x00b", "\u202e\ufeff",
         "x" * 300, "a/" * 2100, "~no_such_user/x", "<script>alert(1)</script>"]
BIG_INTS = [2**63, -(2**63) - 1, 2**64, 10**400, -(10**400), 2**31, 0, -1, 1, 2, 3, 4, 5, 7, 8, 16]


def _text() -> st.SearchStrategy[str]:
    return st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


def scalars(*, times: bool = True) -> st.SearchStrategy[Any]:
    parts: list[st.SearchStrategy[Any]] = [
        st.booleans(), st.integers(), st.sampled_from(BIG_INTS), st.floats(), st.floats(min_value=0, max_value=1),
        st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 5e-324, -0.0, 1e-5, 0.5, 0.95]),
        _text(), st.sampled_from(NAMES),
    ]
    if times:
        parts += [st.datetimes(), st.dates()]
    return st.one_of(*parts)


def values(*, times: bool = True, none: bool = False) -> st.SearchStrategy[Any]:
    base = scalars(times=times)
    if none:
        base = st.one_of(base, st.none())
    return st.recursive(
        base,
        lambda inner: st.one_of(st.lists(inner, max_size=4),
                                st.dictionaries(st.one_of(_text(), st.sampled_from(sum(SECTION_KEYS.values(), []))),
                                                inner, max_size=4)),
        max_leaves=8,
    )


def _valid_base() -> dict[str, Any]:
    return {
        "attacks": ["loss", "rmia"],
        "data": {"kind": "digits", "max_examples": 200},
        "model": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 50}},
        "game": {"n_references": 4, "n_targets": 2, "seed": 1},
        "metrics": {"delta": 1e-5, "fprs": [0.01, 0.1]},
        "output": {"dir": "out"},
    }


@st.composite
def config_dicts(draw: st.DrawFn, *, times: bool = True, none: bool = False) -> dict[str, Any]:
    """A valid config with 1-4 random edits, or a random table of sections."""
    vals = values(times=times, none=none)
    if draw(st.integers(0, 4)) == 0:
        return draw(st.dictionaries(st.one_of(st.sampled_from([*SECTION_KEYS, "levers"]), _text()),
                                    st.one_of(vals, st.dictionaries(st.sampled_from(sum(SECTION_KEYS.values(), [])),
                                                                    vals, max_size=5)), max_size=6))
    d: dict[str, Any] = _valid_base()
    if draw(st.booleans()):
        d["model"] = {"kind": "torch", "model": draw(st.sampled_from(["mlp", "cnn", "x"])), "epochs": 1}
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from([*SECTION_KEYS, "extra"]))
        action = draw(st.sampled_from(["set", "set", "set", "del", "replace", "nest", "unhashable"]))
        if action == "replace":  # scalar or list where a table belongs (or anything where the list belongs)
            d[section] = draw(vals)
            continue
        table = d.get(section)
        if not isinstance(table, dict):
            table = d[section] = {}
        key = draw(st.one_of(st.sampled_from(SECTION_KEYS.get(section, ["x"])), _text()))
        if action == "del":
            table.pop(key, None)
        elif action == "nest":  # a nested table where a scalar belongs
            table[key] = {draw(st.sampled_from(SECTION_KEYS.get(section, ["x"]))): draw(vals)}
        elif action == "unhashable":
            table[key] = draw(st.one_of(st.lists(scalars(times=times), max_size=3),
                                        st.dictionaries(_text(), scalars(times=times), max_size=2)))
        else:
            table[key] = draw(vals)
    return d


# ------------------------------------------------------------------------------------------ serialisers


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def _toml_value(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(x for x in map(_toml_value, v) if x is not None) + "]"
    if isinstance(v, dict):
        items = ((k, _toml_value(x)) for k, x in v.items())
        return "{" + ", ".join(f"{_toml_str(str(k))} = {x}" for k, x in items if x is not None) + "}"
    raise TypeError(type(v))


def to_toml(d: dict[str, Any]) -> str:
    top = [(k, v) for k, v in d.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in d.items() if isinstance(v, dict)]
    lines = [f"{_toml_str(str(k))} = {x}" for k, v in top if (x := _toml_value(v)) is not None]
    for name, table in tables:
        lines.append(f"[{_toml_str(str(name))}]")
        lines += [f"{_toml_str(str(k))} = {x}" for k, v in table.items() if (x := _toml_value(v)) is not None]
    return "\n".join(lines) + "\n"


def serialise(d: dict[str, Any], suffix: str) -> bytes:
    if suffix == ".toml":
        return to_toml(d).encode("utf-8")
    if suffix == ".json":
        return json.dumps(d, default=str).encode("utf-8")
    return yaml.safe_dump(d, allow_unicode=True).encode("utf-8")


# ------------------------------------------------------------------------------------------ cases


@st.composite
def structured_case(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(_SUFFIXES))
    d = draw(config_dicts(times=suffix == ".toml", none=suffix != ".toml"))
    return suffix, serialise(d, suffix)


@st.composite
def corrupted_case(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid config's text with character edits, re-encoded, nested or replaced by garbage."""
    suffix = draw(st.sampled_from([*_SUFFIXES, ".txt", ".TOML", ""]))
    text = serialise(_valid_base(), suffix if suffix in _SUFFIXES else ".toml").decode()
    kind = draw(st.sampled_from(["edit", "edit", "encoding", "nesting", "bytes", "text"]))
    if kind == "edit":
        chars = list(text)
        for _ in range(draw(st.integers(1, 6))):
            i = draw(st.integers(0, len(chars)))
            op = draw(st.sampled_from(["insert", "delete", "replace"]))
            c = draw(st.sampled_from(list("[]{}=\"',:-#\n\t\\ .0xé\x00\r") + ["'''", '"""', "&a", "*a", "!!", "? "]))
            if op == "insert" or not chars or i == len(chars):
                chars.insert(i, c)
            elif op == "delete":
                del chars[i]
            else:
                chars[i] = c
        return suffix, "".join(chars).encode("utf-8")
    if kind == "encoding":
        enc = draw(st.sampled_from(["utf-16", "utf-32", "utf-16-le", "latin-1", "cp1252", "utf-8-sig"]))
        return suffix, (text.replace("out", "sortie-é") + "# ünïcödé\n").encode(enc)
    if kind == "nesting":
        depth = draw(st.sampled_from([10, 100, 600, 1000, 5000, 50_000]))
        pattern = draw(st.sampled_from(["[", "{a = ", "{\"a\": ", "- ", "a:\n", "{a: "]))
        closing = {"[": "]", "{a = ": "}", "{\"a\": ": "}", "- ": "", "a:\n": "", "{a: ": "}"}[pattern]
        if pattern == "a:\n":
            body = "".join(" " * i + "a:\n" for i in range(min(depth, 2000)))
            return suffix, body.encode()
        prefix = {".toml": "x = ", ".json": "", "": "x = ", ".txt": "", ".TOML": "x = "}.get(suffix, "data: ")
        return suffix, (prefix + pattern * depth + "1" + closing * depth + "\n").encode()
    if kind == "bytes":
        return suffix, draw(st.binary(max_size=200))
    return suffix, draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")


# ------------------------------------------------------------------------------------------ the property


def _path(suffix: str) -> Path:
    return _TMP / f"c{next(_COUNTER)}{suffix}"


def check_load(case: tuple[str, bytes]) -> None:
    """The property: a config, or a ConfigError with a one-line message; nothing else, no file written."""
    suffix, content = case
    p = _path(suffix)
    p.write_bytes(content)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cfg = load_config(p)
    except ConfigError as exc:
        assert isinstance(exc, InputError)
        msg = str(exc)
        assert msg and "\n" not in msg and "\r" not in msg, repr(msg[:300])
        return
    finally:
        p.unlink(missing_ok=True)
    assert isinstance(cfg, AuditConfig)
    assert not any(_TMP.iterdir()), "loading a config must not write files"




FAST = {"structured": 100, "corrupted": 100}
SLOW = {"structured": 2000, "corrupted": 1000}
_CASES = {"structured": structured_case(), "corrupted": corrupted_case()}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(FAST))
def test_fuzz_config_fast(kind: str) -> None:
    run_fuzz(_CASES[kind], check_load, FAST[kind], fast=True)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("kind", list(SLOW))
def test_fuzz_config_slow(kind: str) -> None:
    run_fuzz(_CASES[kind], check_load, SLOW[kind], fast=False)


def test_fuzz_budgets() -> None:
    from . import test_fuzz_loaders

    assert sum(FAST.values()) >= 200
    assert sum(SLOW.values()) + sum(test_fuzz_loaders.SLOW.values()) >= 10_000


# ------------------------------------------------------------------------------------------ regressions

REGRESSIONS = {
    # found by this fuzzer / while writing it
    "deep_array.toml": "x = " + "[" * 5000 + "]" * 5000,
    "deep_table.toml": "[data]\nkind = " + "{a = " * 3000 + "1" + "}" * 3000,
    "deep_flow.yaml": "[" * 600 + "]" * 600,
    "deep_block.yaml": "".join(" " * i + "a:\n" for i in range(1000)),
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "kind_table.yaml": "data: {kind: {a: 1}}\n",
    "kind_list.toml": "[data]\nkind = [1, 2]\n",
    "relative_estimator.toml": "[data]\nkind = \"digits\"\n[model]\nestimator = \".a.b\"\n",
    "relative_step.toml": "[data]\nkind = \"digits\"\n[model]\npreprocessing = [{ step = \".x.Y\" }]\n",
    "relative_query.toml": "[data]\nkind = \"digits\"\n[game]\nqueries = [\".q.f\"]\n",
    "long_path.yaml": "data: {kind: csv, path: \"" + "a" * 5000 + "\"}\n",
    "long_out.yaml": "data: {kind: digits}\noutput: {dir: \"" + "a/" * 3000 + "\"}\n",
    "long_target.yaml": "data: {kind: digits}\ntarget: {model: \"" + "m" * 5000 + ".skops\", members: a, nonmembers: b}\n",
    "tilde_user.yaml": "data: {kind: csv, path: \"~no_such_user_x/d.csv\"}\noutput: {dir: \"~no_such_user_y/o\"}\n",
    "nul_path.yaml": "data: {kind: npz, path: \"a\\0b\"}\n",
    "huge_number.yaml": "data: {kind: digits}\nmetrics: {delta: " + "9" * 400 + ", fprs: [" + "1" * 400 + "]}\n",
    "huge_int.toml": "[data]\nkind = \"digits\"\n[game]\nn_references = " + "9" * 400 + "\n",
    "time.toml": "[data]\nkind = \"digits\"\nmax_examples = 07:32:00\n[game]\nseed = 1979-05-27\n",
    "utf16.toml": "[data]\nkind = \"digits\"\n",
    "bom.toml": "\ufeff[data]\nkind = \"digits\"\n",
    "python_tag.yaml": "!!python/object/apply:os.system ['echo owned']\n",
}
_ENCODING = {"utf16.toml": "utf-16"}


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_regressions_raise_config_error(name: str) -> None:
    content = REGRESSIONS[name].encode(_ENCODING.get(name, "utf-8"))
    check_load((Path(name).suffix, content))


def _cli(path: Path) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["audit", str(path)])
    return res.exit_code, res.stdout, res.stderr


@settings(max_examples=25, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.one_of(structured_case(), corrupted_case()))
def test_cli_exits_2_with_one_line(case: tuple[str, bytes]) -> None:
    """A sample of the fuzzed configs through ``miaudit audit`` (only those that do not load)."""
    suffix, content = case
    p = _path(suffix)
    p.write_bytes(content)
    try:
        try:
            load_config(p)
        except ConfigError:
            pass
        else:
            return  # a valid config would run an audit
        code, out, err = _cli(p)
    finally:
        p.unlink(missing_ok=True)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: config"), err[-2000:]
    assert "Traceback" not in err + out


@pytest.mark.parametrize("name", ["deep_array.toml", pytest.param("relative_estimator.toml", marks=pytest.mark.slow)])
def test_cli_subprocess_regressions(tmp_path: Path, name: str) -> None:
    """The real console script: exit 2, one line on stderr, no traceback."""
    p = tmp_path / name
    p.write_bytes(REGRESSIONS[name].encode())
    proc = subprocess.run([sys.executable, "-m", "miaudit", "audit", str(p)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "60"})
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: config"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout


# ------------------------------------------------------------------------------------------ settings that load


def _evaluate(fprs: tuple[float, ...], delta: float, confidence: float, prior: float) -> None:
    import numpy as np

    from miaudit.metrics import evaluate_scores

    rng = np.random.default_rng(0)
    member = rng.permutation(120) < 60
    scores = rng.normal(size=120) + member
    try:
        m = evaluate_scores(member, scores, fprs=fprs, delta=delta, confidence=confidence, member_prior=prior)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    json.dumps(m.to_dict(), allow_nan=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fpr", [1e-300, 2.2e-308, 5e-324, 1e-17, 0.999999999])
def test_extreme_fprs_a_config_accepts_do_not_hang(fpr: float) -> None:
    """``[metrics] fprs = [1e-300]`` loads; the audit must then finish (it looped forever)."""
    _evaluate((fpr, 0.01), 1e-5, 0.95, 0.5)


@pytest.mark.timeout(120)
@settings(max_examples=40, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.floats(min_value=0, max_value=1, exclude_min=True, exclude_max=True), min_size=1, max_size=3),
       st.floats(min_value=0, max_value=1, exclude_max=True), st.floats(min_value=0, max_value=1, exclude_min=True,
                                                                        exclude_max=True),
       st.floats(min_value=0, max_value=1, exclude_min=True, exclude_max=True))
def test_fuzz_metrics_settings_that_load(fprs: list[float], delta: float, confidence: float, prior: float) -> None:
    """Every ``[metrics]`` table load_config accepts evaluates (or raises InputError), without hanging."""
    _evaluate(tuple(fprs), delta, confidence, prior)


@pytest.mark.timeout(30)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX named pipes")
def test_a_config_that_is_not_a_regular_file_is_refused_without_reading(tmp_path: Path) -> None:
    """A named pipe (or a device such as /dev/zero) would block or be read forever."""
    fifo = tmp_path / "audit.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"not a regular file"):
        load_config(fifo)
    code, _, err = _cli(fifo)
    assert code == 2 and "not a regular file" in err
