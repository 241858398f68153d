"""matplotlib's font cache, built while the models train instead of when the report is drawn.

The first time matplotlib draws text on a machine it scans every installed font (``fc-list`` and the font
folders) and writes ``fontlist-v*.json`` into its cache folder (``MPLCONFIGDIR``, ``~/.cache/matplotlib``);
later runs read that file. The scan's cost grows with the fonts installed (measured: 0.5 s for 42 fonts,
2.5 s more with 2,000 more font files; ``benchmarks/results/first_run.md``). :func:`warm_font_cache`, called
by the CLI before training, runs that scan in a background process when no cache file exists yet, so it
overlaps with training; :func:`wait_font_cache` (called before the report's first plot) waits for it, so
the scan is never done twice. Nothing changes for the plots: they are drawn with matplotlib's default font
(DejaVu Sans, shipped with matplotlib).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["font_cache_exists", "wait_font_cache", "warm_font_cache"]

_STATE: dict[str, Any] = {}

# The child ends with this process (a killed audit leaves nothing behind), then builds the cache.
_CHILD = (
    "import sys\n"
    "try:\n"
    "    from miaudit.training._lifeline import watch_parent\n"
    "    watch_parent(int(sys.argv[1]))\n"
    "except Exception:\n"
    "    pass\n"
    "import matplotlib.font_manager\n"
)


def font_cache_exists() -> bool:
    """Whether matplotlib's font list is cached already (then nothing needs to be scanned)."""
    if "matplotlib.font_manager" in sys.modules:
        return True
    try:
        import matplotlib

        cache = Path(matplotlib.get_cachedir())
    except Exception:  # noqa: BLE001 - no usable cache folder: matplotlib will manage (or warn) itself
        return True
    return any(cache.glob("fontlist-v*.json"))


def warm_font_cache() -> bool:
    """Start building matplotlib's font cache in a background process unless it exists; True if started."""
    if _STATE.get("proc") is not None or font_cache_exists():
        return False
    try:
        _STATE["proc"] = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    except OSError:  # no process can be started: the report builds the cache itself
        return False
    return True


def wait_font_cache(timeout: float = 300.0) -> None:
    """Wait for a cache build started by :func:`warm_font_cache` (if any) to finish."""
    proc = _STATE.pop("proc", None)
    if proc is None:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover - matplotlib scans again in this process
        proc.kill()
        proc.wait()
