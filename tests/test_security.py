"""Security (issue 4): no unpickling of untrusted files by default, every user string escaped in the
report, and a report that can make no network request.

(a) A ``[target]`` pickle/joblib model is refused unless ``allow_pickle = true`` (the error names the
    option, and a malicious pickle's payload never runs); with the opt-in, a warning is emitted and
    logged. ``.skops`` targets load through skops without pickle. ``load_bundle`` and ``miaudit score``
    refuse ``.npz`` object arrays without calling pickle. Torch weights load with ``weights_only=True``.
    (The config already expresses the opt-in, so the CLI has no ``--allow-pickle`` flag.)
(b) A full ``miaudit audit`` whose dataset name, data/target paths, feature names and group values
    all contain ``<script>alert(1)</script>`` writes a report where that string never appears raw
    (and does appear escaped: it is shown, not dropped). Same for ``miaudit score`` on a table whose
    path and group values carry it.
(c) Those reports contain no ``http://``, ``https://``, ``<script``, ``<link``, no external ``src``
    and carry a Content-Security-Policy ``<meta>`` that forbids every fetch but inline images/styles.
"""

from __future__ import annotations

import html
import importlib.util
import json
import logging
import pathlib
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from miaudit import ConfigError, InputError
from miaudit.cli import app
from miaudit.config import load_config
from miaudit.data import load_bundle

XSS = "<script>alert(1)</script>"
HAS_SKOPS = importlib.util.find_spec("skops") is not None


class Payload:
    """Unpickling this creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any call to pickle.load/loads fails the test."""

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("pickle was called")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)


def cli(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.stderr


def _indices(root: Path, n_pool: int = 120) -> None:
    idx = np.random.default_rng(0).permutation(n_pool)
    np.save(root / "members.npy", idx[: n_pool // 2])
    np.save(root / "nonmembers.npy", idx[n_pool // 2:])


def _target_config(root: Path, model: str, *, allow: bool | None = None) -> Path:
    extra = "" if allow is None else f"allow_pickle = {str(allow).lower()}\n"
    cfg = root / "audit.toml"
    cfg.write_text(
        'attacks = ["loss"]\n[data]\nkind = "digits"\nmax_examples = 120\n'
        '[model]\nestimator = "sklearn.linear_model.LogisticRegression"\n[game]\nn_references = 2\n'
        f'[target]\nmodel = "{model}"\nmembers = "members.npy"\nnonmembers = "nonmembers.npy"\n{extra}'
        '[output]\ndir = "out"\n'
    )
    return cfg


# ------------------------------------------------------------------------------------------ (a) pickles


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".joblib"])
def test_pickle_target_is_refused_without_the_opt_in(tmp_path: Path, suffix: str) -> None:
    marker = tmp_path / "PWNED"
    (tmp_path / f"evil{suffix}").write_bytes(pickle.dumps(Payload(marker)))
    _indices(tmp_path)
    for allow in (None, False):
        cfg = _target_config(tmp_path, f"evil{suffix}", allow=allow)
        with pytest.raises(ConfigError, match=r"is a pickle, which can run arbitrary code.*allow_pickle = true"):
            load_config(cfg)
        code, err = cli(["audit", str(cfg)])
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and "allow_pickle = true" in lines[0], err
    assert not marker.exists(), "the pickle's payload ran"
    assert not (tmp_path / "out").exists()


def test_pickle_disguised_as_skops_is_not_unpickled(tmp_path: Path, no_pickle: None) -> None:
    pytest.importorskip("skops")
    marker = tmp_path / "PWNED"
    (tmp_path / "evil.skops").write_bytes(pickle.dumps(Payload(marker), protocol=4))
    _indices(tmp_path)
    code, err = cli(["audit", str(_target_config(tmp_path, "evil.skops"))])
    assert code == 2 and "is not a readable skops file" in err, err
    assert not marker.exists()


def test_pickle_opt_in_warns_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    from miaudit.audit import load_target_model

    joblib.dump(LogisticRegression().fit(np.eye(4), [0, 1, 0, 1]), tmp_path / "t.joblib")
    _indices(tmp_path)
    cfg = load_config(_target_config(tmp_path, "t.joblib", allow=True))
    assert cfg.target is not None and cfg.target.allow_pickle
    with caplog.at_level(logging.WARNING, logger="miaudit"), pytest.warns(UserWarning, match="allow_pickle = true"):
        model = load_target_model(cfg.target)
    assert model.predict(np.eye(4)).tolist() == [0, 1, 0, 1]
    assert any("only do this for files you trust" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not HAS_SKOPS, reason="skops is not installed")
def test_skops_target_loads_through_skops_without_pickle(tmp_path: Path, no_pickle: None) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from miaudit.audit import load_target_model

    clf = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    sio.dump(clf, tmp_path / "t.skops")
    _indices(tmp_path)
    cfg = load_config(_target_config(tmp_path, "t.skops"))
    assert cfg.target is not None
    loaded = load_target_model(cfg.target)
    assert type(loaded) is LogisticRegression
    assert np.array_equal(loaded.predict_proba(np.eye(4)), clf.predict_proba(np.eye(4)))


def test_bundle_with_object_arrays_is_refused_without_pickle(tmp_path: Path, no_pickle: None) -> None:
    marker = tmp_path / "PWNED"
    n = 8
    plain = {"labels": np.arange(n) % 2, "target_logits": np.zeros((n, 2)), "is_member": np.arange(n) % 2 == 0}
    evil = {"labels": np.array([Payload(marker)] * n, dtype=object),
            "target_logits": np.array([Payload(marker)] * (2 * n), dtype=object).reshape(n, 2)}
    for key, value in evil.items():  # an object array (np.save pickles it) under either key
        path = tmp_path / f"evil_{key}.npz"
        with open(path, "wb") as fh:
            np.savez(fh, **{**plain, key: value})
        with pytest.raises(InputError) as info:
            load_bundle(path)
        assert "\n" not in str(info.value) and re.search(r"object|pickle", str(info.value)), str(info.value)
        code, err = cli(["score", str(path), "--out", str(tmp_path / "o")])
        assert code == 2 and len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_torch_weights_load_with_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from miaudit.models.torch import load_weights

    net = torch.nn.Linear(3, 2)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    seen: list[dict[str, Any]] = []
    real = torch.load

    def spy(*a: Any, **k: Any) -> Any:
        seen.append(k)
        return real(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    other = load_weights(torch.nn.Linear(3, 2), tmp_path / "w.pt")
    assert seen and all(k.get("weights_only") is True for k in seen)
    assert torch.equal(other.weight, net.weight)
    # a pickled object (not a state dict) is refused by weights_only, and its payload does not run
    marker = tmp_path / "PWNED"
    monkeypatch.setattr(torch, "load", real)
    torch.save({"weight": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match=r"cannot be loaded with weights_only=True"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "evil.pt")
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ (b)+(c) HTML


def assert_safe_report(report: str, *, shown: bool = True) -> None:
    low = report.lower()
    assert XSS not in report and "<script" not in low and "alert(1)</script>" not in report
    if shown:  # the string is displayed, escaped (not silently dropped)
        assert html.escape(XSS, quote=False) in report or html.escape(XSS) in report
    assert "http://" not in low and "https://" not in low and "<link" not in low
    assert "@import" not in low and "url(" not in low and "<iframe" not in low and "<object" not in low
    assert not re.search(r"\son[a-z]+\s*=", low), "no inline event handlers"
    srcs = re.findall(r'\b(?:src|href|action)\s*=\s*"([^"]*)"', report, re.IGNORECASE)
    assert all(s.startswith("data:image/png;base64,") or s.startswith("#") for s in srcs), srcs
    metas = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)"', report)
    assert len(metas) == 1
    csp = html.unescape(metas[0])
    assert "default-src 'none'" in csp and "script-src" not in csp.replace("script-src 'none'", "")
    assert report.lower().index("content-security-policy") < low.index("<body")


def _xss_dir(root: Path) -> Path:
    """A folder whose path contains ``<script>alert(1)</script>`` (the slash makes two folders)."""
    d = root / "<script>alert(1)<" / "script>"
    d.mkdir(parents=True)
    assert XSS in str(d)
    return d


def test_audit_report_escapes_every_user_string(tmp_path: Path) -> None:
    d = _xss_dir(tmp_path)
    rng = np.random.default_rng(1)
    n = 160
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 4)) + y[:, None]
    frame = pd.DataFrame(X, columns=[f"{XSS}{i}" for i in range(4)])
    frame["region"] = np.array([XSS, f"{XSS}b", "plain"])[rng.integers(0, 3, n)]
    frame["label"] = y
    frame.to_csv(d / "data.csv", index=False)
    target = ""
    if HAS_SKOPS:  # the target's path is shown in the report
        import skops.io as sio
        from sklearn.linear_model import LogisticRegression

        idx = rng.permutation(n)
        np.save(d / "m.npy", idx[: n // 2])
        np.save(d / "nm.npy", idx[n // 2:])
        feats = frame.drop(columns=["region", "label"]).to_numpy()
        sio.dump(LogisticRegression().fit(feats[idx[: n // 2]], y[idx[: n // 2]]), d / "t.skops")
        target = f'[target]\nmodel = "{d / "t.skops"}"\nmembers = "{d / "m.npy"}"\nnonmembers = "{d / "nm.npy"}"\n'
    cfg = d / "audit.toml"
    cfg.write_text(
        'attacks = ["loss", "rmia"]\n'
        f'[data]\nkind = "csv"\npath = "data.csv"\nlabel = "label"\nname = "{XSS}"\ngroup = "region"\n'
        '[model]\nestimator = "sklearn.linear_model.LogisticRegression"\n'
        'preprocessing = [{ step = "sklearn.preprocessing.StandardScaler" }]\n'
        f'[game]\nn_references = 2\n{target}[output]\ndir = "out"\n'
    )
    code, err = cli(["audit", str(cfg), "--jobs", "1"])
    assert code == 0, err[-3000:]
    out = d / "out"
    results = json.loads((out / "results.json").read_text())
    assert results["game"]["dataset"] == XSS  # the strings did reach the result
    assert any(XSS in str(r) for r in results["slices"].get("group", []))
    if HAS_SKOPS:
        assert XSS in results["game"]["target_path"]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert_safe_report(report)
    assert report.count(html.escape(XSS, quote=False)) + report.count(html.escape(XSS)) >= 2  # name, group(, path)


def test_score_report_escapes_table_path_and_groups(tmp_path: Path) -> None:
    d = _xss_dir(tmp_path)
    rng = np.random.default_rng(2)
    n = 200
    member = rng.permutation(n) < n // 2
    labels = rng.integers(0, 2, n)
    logit = rng.normal(size=(n, 2)) + 2.0 * np.eye(2)[labels] * (1 + member[:, None])
    table = pd.DataFrame({"label": labels, "is_member": member, "logit_0": logit[:, 0], "logit_1": logit[:, 1],
                          "grp": np.array([XSS, "a", f"{XSS}&<b>"])[rng.integers(0, 3, n)]})
    table.to_csv(d / "outputs.csv", index=False)
    code, err = cli(["score", str(d / "outputs.csv"), "--group-column", "grp", "--out", str(d / "out"),
                     "--attack", "loss", "--attack", "confidence"])
    assert code == 0, err[-3000:]
    report = (d / "out" / "report.html").read_text(encoding="utf-8")
    assert_safe_report(report)


def test_plain_report_has_no_network_and_a_csp(tmp_path: Path) -> None:
    from miaudit.api import evaluate_bundle
    from miaudit.data import SignalBundle

    rng = np.random.default_rng(3)
    n = 200
    labels = rng.integers(0, 2, n)
    member = rng.permutation(n) < n // 2
    b = SignalBundle.from_arrays(labels=labels, target_logits=rng.normal(size=(n, 2)), is_member=member)
    assert_safe_report(evaluate_bundle(b, attacks=["loss"]).to_html(), shown=False)
