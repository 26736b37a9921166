"""The run lock: one process at a time runs a run directory.

``toolkit run`` takes an exclusive ``flock`` on ``<run>/.lock`` before it writes anything
there (a new run, ``--resume``, ``--retry-failed``) and holds it until the run ends. The
kernel releases it when the holder dies, however it dies, so the lock, not the pid in
the manifest (which another process may have been given since), tells a live run from
a killed one. Processes forked by the run (pool workers, one-instance processes) share
the holder's lock: a run is not over while one of them lives.

The file also says who holds the lock (pid, host, start time, command line), for the
message a second process gets. Where ``flock`` is not there (not POSIX), runs are not
locked and liveness falls back to the pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sys
import time
from pathlib import Path

from toolkit.errors import RunError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"
#: the descriptors of the locks this process holds: a process it forks closes its
#: copies at once, so that the lock is the run's own process's and its death (not that
#: of the last of its workers) releases it
_held: dict[int, RunLock] = {}


def _close_held_in_child() -> None:
    for fd, lock in _held.items():
        lock.fd = None
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


class RunLocked(RunError):
    """Another process holds the run."""


def _holder_text() -> str:
    command = " ".join(["toolkit", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "toolkit"
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"pid {os.getpid()} on {socket.gethostname()} since {started} ({command[:200]})\n"


class RunLock:
    """The lock of one run directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None
        #: whether the lock file was there before this process took the lock (a run
        #: made before runs were locked has none)
        self.existed = False

    def acquire(self, what: str = "run") -> RunLock:
        """Take the lock, or raise :class:`RunLocked` naming who holds it."""
        if fcntl is None:  # pragma: no cover - not POSIX
            return self
        self.existed = self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self._current_holder()
            by = f" by {holder}" if holder else " by another toolkit process"
            raise RunLocked(
                f"{what} {self.path.parent.name} is in use{by}; wait for it to end, or stop that process"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        _held[fd] = self
        with contextlib.suppress(OSError):  # who holds it is a courtesy: a full disk does not stop the run
            text = _holder_text().encode(errors="backslashreplace")  # argv may hold undecodable bytes
            os.pwrite(fd, text, 0)  # then cut: a reader never sees an empty file
            os.ftruncate(fd, len(text))
        return self

    def _current_holder(self, wait: float = 1.0) -> str:
        """Who holds the lock: a holder that has just taken it may not have written its
        name yet (the file still names the one before, whose process is gone)."""
        deadline = time.monotonic() + wait
        while True:
            holder = self.holder()
            found = re.match(r"pid (\d+) on (\S+) ", holder)
            if found and (found[2] != socket.gethostname() or _alive(int(found[1]))):
                return holder
            if time.monotonic() > deadline:
                return ""
            time.sleep(0.01)

    def holder(self) -> str:
        """Who holds (or last held) the lock, as the holder wrote it; '' if unknown."""
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            _held.pop(fd, None)
            os.close(fd)  # closing the descriptor releases the lock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_locked(run_dir: str | os.PathLike) -> bool | None:
    """Whether a process holds the lock of ``run_dir`` now: True, False, or None when
    the run has no lock file (made by a toolkit before locks) or locks are not there."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return None
    try:
        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also releases the shared lock, if it was taken
    return False
