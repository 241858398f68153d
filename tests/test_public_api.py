"""Every public name resolves, and `import miaudit` pulls in no heavy optional dependency."""

from __future__ import annotations

import subprocess
import sys

import pytest

import miaudit


@pytest.mark.parametrize("name", miaudit.__all__)
def test_public_name_resolves_to_what_its_module_defines(name):
    """Each lazy name is the very object of the module that defines it (not a stand-in or a stale copy)."""
    import importlib

    value = getattr(miaudit, name)
    if name in miaudit._LAZY:
        assert value is getattr(importlib.import_module(miaudit._LAZY[name]), name)
    else:
        assert value is vars(miaudit)[name]
    assert name in dir(miaudit)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'miaudit' has no attribute 'nope'"):
        miaudit.nope  # noqa: B018


def test_import_is_light():
    code = (
        "import sys, miaudit; "
        "heavy = [m for m in ('torch', 'opacus', 'ray', 'pyarrow', 'matplotlib', 'sklearn') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_error_family():
    assert issubclass(miaudit.InputError, ValueError)
    assert issubclass(miaudit.ConfigError, miaudit.InputError)
    assert issubclass(miaudit.MissingDependencyError, ImportError)
    assert all(issubclass(e, miaudit.MiauditError) for e in (miaudit.InputError, miaudit.TrainingError))
