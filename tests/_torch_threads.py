"""Torch tests run single-threaded: tiny models gain nothing from threads, and a busy 2-core CI machine
loses a lot to OpenMP threads spinning against each other. Imported by the conftest of each torch folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
