"""Fixtures of the report tests (the builders live in ``_builders.py``)."""

from __future__ import annotations

import pytest

from miaudit.report import AuditResult

from ._builders import make_result


@pytest.fixture
def result() -> AuditResult:
    return make_result()


_PNG_1PX = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture
def fast_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stub the matplotlib figures (tests that only read the report's text need not draw them)."""
    from miaudit.report import _html

    for name in ("plot_roc", "plot_roc_grid", "plot_score_histogram"):
        monkeypatch.setattr(_html, name, lambda *a, **k: _PNG_1PX)
