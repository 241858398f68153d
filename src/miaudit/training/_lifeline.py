"""Worker processes end when the process that started them dies, even by SIGKILL.

A killed ``miaudit audit`` cannot shut its pool down, and nothing in :mod:`multiprocessing` ends the
workers then: each one holds the write end of its own task queue (so it never reads an end of file), and
under the forkserver its parent is the forkserver, not the audit. The workers also hold the forkserver's
"alive" pipe and the resource tracker's pipe, so those two stay alive as long as any worker does. Once
every worker has ended, both exit by themselves (end of file on their pipes).

:func:`watch_parent` starts a daemon thread in a worker that ends the worker the moment the audit
process is gone. On Linux >= 5.3 it waits on a pidfd of that process (``os.pidfd_open``), which cannot be
confused with a later process reusing the pid; elsewhere it polls the pid every ``poll`` seconds.

``prctl(PR_SET_PDEATHSIG)`` is not used: it fires when the *thread* that forked the worker exits (for the
pool, a helper thread that ends after start-up, which would kill healthy workers), and under the forkserver
the forking parent is not the audit at all.

One limit: the thread needs the GIL to end the process, so a worker inside a C call that holds the GIL ends
when that call returns (NumPy and scikit-learn release it in their long loops).
"""

from __future__ import annotations

import os
import select
import threading
import time

__all__ = ["watch_parent"]

#: Exit status of a worker that ended because the audit process died.
ORPHAN_EXIT = 70


def _end() -> None:
    os._exit(ORPHAN_EXIT)  # no cleanup: the process that would want the results is gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _wait_pidfd(fd: int) -> None:
    try:
        while True:
            readable, _, _ = select.select([fd], [], [])
            if readable:
                break
    finally:
        os.close(fd)
    _end()


def _poll(pid: int, poll: float) -> None:
    ppid = os.getppid()
    while _alive(pid) and (ppid != pid or os.getppid() == pid):
        time.sleep(poll)
    _end()


def watch_parent(pid: int, *, poll: float = 0.5) -> threading.Thread:
    """End this process (exit status 70) as soon as process ``pid`` is gone; returns the watching thread.

    If ``pid`` is already gone, this process ends at once.
    """
    pidfd_open = getattr(os, "pidfd_open", None)
    fd: int | None = None
    if pidfd_open is not None:
        try:
            fd = pidfd_open(pid)
        except ProcessLookupError:
            _end()
        except OSError:  # kernel without pidfd (ENOSYS), or a sandbox that forbids it: poll instead
            fd = None
    if fd is not None:
        thread = threading.Thread(target=_wait_pidfd, args=(fd,), name="miaudit-parent-watch", daemon=True)
    else:
        if not _alive(pid):
            _end()
        thread = threading.Thread(target=_poll, args=(pid, poll), name="miaudit-parent-watch", daemon=True)
    thread.start()
    return thread
