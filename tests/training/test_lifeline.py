"""A SIGKILLed audit leaves no process behind: workers, forkserver and resource tracker all end.

Processes are read from /proc (Linux; skipped elsewhere), so the test needs no psutil.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

SLOW_MODULE = '''\
import os
import time

from sklearn.linear_model import LogisticRegression


class SlowEstimator(LogisticRegression):
    """A logistic regression whose fit takes a minute, so the audit is surely killed while workers train."""

    def fit(self, X, y, sample_weight=None):
        with open(os.path.join(os.path.dirname(__file__), "fitting.txt"), "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(60)
        return super().fit(X, y, sample_weight=sample_weight)
'''


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of ``pid`` from /proc, or None when it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every living descendant of ``root``: pid -> start time (identifies the process, not a reused pid)."""
    parents: dict[int, int] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] != "Z":
                parents[int(entry.name)], starts[int(entry.name)] = st[0], st[2]
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in found:
                found[child] = starts[child]
                frontier.append(child)
    return found


def _alive(pid: int, start: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"  # a zombie has ended (waiting to be reaped)


def _depth(pid: int, root: int) -> int:
    d = 0
    while pid != root:
        st = _stat(pid)
        if st is None:
            return -1
        pid, d = st[0], d + 1
    return d


def _write_config(folder: Path) -> Path:
    (folder / "slowmodule_lifeline.py").write_text(SLOW_MODULE)
    cfg = folder / "audit.toml"
    cfg.write_text(textwrap.dedent("""\
        [data]
        kind = "digits"
        max_examples = 200

        [model]
        estimator = "slowmodule_lifeline.SlowEstimator"
        params = { max_iter = 50 }

        [game]
        n_references = 4
        n_targets = 1

        [attacks]
        names = ["loss"]

        [output]
        dir = "out"
    """))
    return cfg


@pytest.mark.timeout(240)
def test_sigkill_of_an_audit_leaves_no_process_behind(tmp_path: Path) -> None:
    cfg = _write_config(tmp_path)
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "miaudit", "audit", str(cfg), "--jobs", "3"], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    tree: dict[int, int] = {}
    try:
        fitting = tmp_path / "fitting.txt"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # until two worker processes (below the forkserver) are training
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            tree = _descendants(proc.pid)
            workers = {int(p) for p in fitting.read_text().split()} - {proc.pid} if fitting.exists() else set()
            if len(workers & set(tree)) >= 2:
                break
            time.sleep(0.3)
        else:
            pytest.fail("no worker process started training within 180 s")
        tree = _descendants(proc.pid)
        kinds = [Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode() for p in tree]
        assert any("forkserver" in k for k in kinds) and any("resource_tracker" in k for k in kinds), kinds
        assert max(_depth(p, proc.pid) for p in tree) >= 2  # workers are the forkserver's children

        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in tree.items()):
            time.sleep(0.2)
        left = {p: Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p, s in tree.items() if _alive(p, s)}
        assert left == {}, f"still alive 10 s after SIGKILL of the audit: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p, s in tree.items():  # never leak processes when the test fails
            if _alive(p, s):
                os.kill(p, signal.SIGKILL)


CHILD = '''\
import os, sys, time
sys.path.insert(0, {src!r})
if {no_pidfd}:
    del os.pidfd_open
from miaudit.training._lifeline import watch_parent
middle = os.getpid()
pid = os.fork()
if pid == 0:
    watch_parent(middle, poll=0.1)
    time.sleep(120)
    os._exit(0)
print(pid, flush=True)
time.sleep(120)
'''


@pytest.mark.parametrize("no_pidfd", [False, True], ids=["pidfd", "poll"])
@pytest.mark.timeout(60)
def test_watch_parent_ends_the_watcher_when_the_watched_process_dies(no_pidfd: bool) -> None:
    if not no_pidfd and not hasattr(os, "pidfd_open"):
        pytest.skip("os.pidfd_open needs Linux >= 5.3")
    src = str(Path(__file__).resolve().parents[2] / "src")
    middle = subprocess.Popen([sys.executable, "-c", CHILD.format(src=src, no_pidfd=no_pidfd)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert middle.stdout is not None
    child = int(middle.stdout.readline())
    st = _stat(child)
    assert st is not None
    try:
        time.sleep(0.5)
        assert _alive(child, st[2])  # watching, not ended
        middle.kill()
        middle.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(child, st[2]):
            time.sleep(0.05)
        assert not _alive(child, st[2])
    finally:
        if _alive(child, st[2]):
            os.kill(child, signal.SIGKILL)


def test_watch_parent_of_a_process_already_gone_ends_at_once() -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    code = (f"import sys; sys.path.insert(0, {src!r})\n"
            "from miaudit.training._lifeline import watch_parent\n"
            "watch_parent(2 ** 22 + 12345)\nprint('not ended')\n")  # above pid_max's default: no such process
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 70 and "not ended" not in proc.stdout
