"""Helpers shared by the end-to-end CLI tests (determinism, crash safety): run the CLI in this process
and compare two output folders byte for byte."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from miaudit.cli import app

__all__ = ["assert_same_outputs", "results_bytes", "run_cli"]

_CREATED = re.compile(rb'^  "created": "[^"]*",\n', re.MULTILINE)
_RUN = re.compile(rb'^  "run": \{\n(?:    .*\n)*  \},\n', re.MULTILINE)  # the run's timings (CLI runs)


def results_bytes(out: Path) -> bytes:
    """results.json with its ``created`` line (asserted present exactly once) and its ``run`` block (the
    wall seconds of the run's phases, which differ between identical runs) removed."""
    raw = (out / "results.json").read_bytes()
    stripped, n = _CREATED.subn(b"", raw)
    assert n == 1, "results.json must carry exactly one top-level 'created' line"
    stripped, n = _RUN.subn(b"", stripped)
    assert n <= 1, "results.json must carry at most one top-level 'run' object"
    json.loads(stripped)  # still valid JSON
    return stripped


def assert_same_outputs(a: Path, b: Path) -> None:
    """results.json (minus ``created`` and ``run``), scores.csv and report.html of ``a`` and ``b`` are identical."""
    ra, rb = results_bytes(a), results_bytes(b)
    if ra != rb:  # show the first differing line, not 20 kB of JSON
        la, lb = ra.decode().splitlines(), rb.decode().splitlines()
        i = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
        pytest.fail(f"results.json differs at line {i + 1}: {la[i:i + 1]} != {lb[i:i + 1]}")
    assert (a / "scores.csv").read_bytes() == (b / "scores.csv").read_bytes()
    assert (a / "report.html").read_bytes() == (b / "report.html").read_bytes()


def run_cli(args: list[str]) -> None:
    """``miaudit ARGS`` in this process; fails the test unless it exits 0."""
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, f"exit {res.exit_code}: {res.output[-2000:]} {res.exception!r}"
