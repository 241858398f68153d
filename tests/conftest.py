from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; the test is skipped when it is absent (a user's machine)."""
    path = Path(os.environ.get("MIAUDIT_SHARED_DATA", _SHARED))
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} not present")
    return path
