from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# Ray (tests/training/test_ray.py) keeps every node and driver on 127.0.0.1 only with this set before it is
# imported; otherwise it binds to the machine's external address
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; the test is skipped when it is absent (a user's machine)."""
    path = Path(os.environ.get("MIAUDIT_SHARED_DATA", _SHARED))
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} not present")
    return path
