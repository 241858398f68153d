"""Atomic file writes, shared by every layer that writes results (bundles, model cache, reports).

A file is written to a temporary name in the same folder, flushed and fsynced, then renamed over the
target with :func:`os.replace` (atomic on POSIX and Windows): a reader, or a run killed at any moment,
sees the old file or the new one, never a partial one. On error the temporary file is removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_open", "atomic_write"]


@contextmanager
def atomic_open(path: str | os.PathLike[str], *, tmp_path: str | os.PathLike[str] | None = None) -> Iterator[BinaryIO]:
    """Binary file handle whose content replaces ``path`` atomically when the block ends without error.

    The temporary file is ``.<name>.<random>.tmp`` beside ``path``, or ``tmp_path`` when given (the model
    cache names its temporaries after the writing process, to clean up after dead ones).
    """
    path = Path(path)
    if tmp_path is None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        fh = os.fdopen(fd, "wb")
    else:
        tmp = os.fspath(tmp_path)
        fh = open(tmp, "xb")
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; outputs are ordinary files
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as fh:
        fh.write(data)
    return Path(path)


def _file_mode(path: Path) -> int:
    """Mode of the file being replaced, else 0o666 minus the process umask (what ``open()`` would give)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        pass
    try:  # Linux: read the umask without changing it (os.umask is process-global and racy)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644
