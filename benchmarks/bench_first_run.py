"""Benchmark: the first ``miaudit demo`` on a machine, where matplotlib has no font cache yet (issue 11).

Each row is one ``python -m miaudit demo`` in a fresh process (wall and CPU time of the whole command, the
CPU of its children included), under one of three font situations:

* ``warm``: matplotlib's font cache exists (every run after the first);
* ``fresh``: an empty ``MPLCONFIGDIR``, so matplotlib scans the installed fonts once;
* ``fresh + N fonts``: the same with ``HOME`` pointing to a folder whose ``.fonts`` holds N links to
  matplotlib's own font files (a desktop with many fonts installed; the scan reads every file).

``--src`` picks the miaudit source tree (before/after a change). Also timed: the scan alone
(``import matplotlib.font_manager`` on an empty cache vs on a built one). Run with ``nice``::

    nice python benchmarks/bench_first_run.py --src src --fonts 2000 --out-md benchmarks/results/first_run.md
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _font_home(root: Path, n: int) -> Path:
    import matplotlib

    fonts = sorted((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("*.ttf"))
    home = root / "home"
    (home / ".fonts").mkdir(parents=True)
    for i in range(n):
        src = fonts[i % len(fonts)]
        (home / ".fonts" / f"f{i}_{src.name}").symlink_to(src)
    return home


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", default="src", help="miaudit source tree (PYTHONPATH)")
    p.add_argument("--fonts", type=int, default=2000, help="extra font files for the many-fonts row")
    p.add_argument("--demo-args", default="", help="extra arguments for miaudit demo")
    p.add_argument("--out-md", type=Path, default=None)
    args = p.parse_args()
    src = str(Path(args.src).resolve())
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        home = _font_home(tmp, args.fonts)
        base = {**os.environ, "PYTHONPATH": src, "COLUMNS": "120"}
        scan = [sys.executable, "-c", "import matplotlib.font_manager"]
        for label, extra in (("scan alone, fresh", {}), (f"scan alone, fresh + {args.fonts} fonts", {"HOME": str(home)})):
            mpl = tempfile.mkdtemp(dir=tmp)
            w1, c1 = _run(scan, {**base, **extra, "MPLCONFIGDIR": mpl})
            w2, c2 = _run(scan, {**base, **extra, "MPLCONFIGDIR": mpl})
            rows.append((label, w1, c1, f"built cache: {w2:.2f} s wall, {c2:.2f} s CPU"))
        warm = tempfile.mkdtemp(dir=tmp)
        _run(scan, {**base, "MPLCONFIGDIR": warm})
        cases = (("demo, warm font cache", {"MPLCONFIGDIR": warm}),
                 ("demo, fresh font cache", {"MPLCONFIGDIR": tempfile.mkdtemp(dir=tmp)}),
                 (f"demo, fresh + {args.fonts} fonts", {"MPLCONFIGDIR": tempfile.mkdtemp(dir=tmp), "HOME": str(home)}))
        for i, (label, extra) in enumerate(cases):
            out = tmp / f"out{i}"
            cmd = [sys.executable, "-m", "miaudit", "demo", "--out", str(out), *args.demo_args.split()]
            wall, cpu = _run(cmd, {**base, **extra})
            rows.append((label, wall, cpu, ""))
    lines = [f"`{' '.join(sys.argv)}` (miaudit from {src})", "", "| case | wall s | CPU s | note |",
             "|---|---:|---:|---|"]
    lines += [f"| {label} | {w:.2f} | {c:.2f} | {note} |" for label, w, c, note in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out_md is not None:
        with args.out_md.open("a") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
