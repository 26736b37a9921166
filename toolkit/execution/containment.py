"""No process outlives its instance, nor the run: how the local executors keep them in.

Three tools of the kernel, each for one way a process could escape:

- **Subreapers.** Every worker (a pool worker, or the process of one instance) asks to be
  its descendants' reaper (``PR_SET_CHILD_SUBREAPER``): a process the task started whose
  parent exits, even one that called ``setsid`` (a daemon), becomes the worker's child
  instead of init's. When an instance ends, the worker kills every child it still has,
  and the children those leave behind in turn (:func:`end_descendants`).
- **A mark in the environment.** Every worker sets ``TOOLKIT_RUN_TOKEN`` to
  ``<run token>.<its pid>``; what the task starts inherits it. When a worker dies
  without cleaning up after itself (killed on a timeout, a crash), the supervisor kills
  every process that carries its mark (:func:`sweep`), wherever it went.
- **A janitor.** A small process forked by the supervisor at the start of the run
  (:class:`Janitor`) waits for the supervisor to exit; if it dies without stopping the
  janitor first (SIGKILL of ``toolkit run``), the janitor kills every process that
  carries the run's mark, then exits.

Linux only (``/proc``, ``prctl``); elsewhere (macOS) the process groups the workers lead
are all there is, and a process that leaves its group can outlive the run. A process
that both leaves its group and empties its environment escapes the mark too.
Imported by worker processes: standard library modules they load anyway, no more.
"""

from __future__ import annotations

import os
import sys
import time

try:  # the C function, as in toolkit.execution.procs
    from _signal import SIG_IGN, SIGHUP, SIGINT, SIGKILL, SIGPIPE, SIGTERM
    from _signal import signal as _set_handler
except ImportError:  # pragma: no cover - not CPython
    from signal import SIG_IGN, SIGHUP, SIGINT, SIGKILL, SIGPIPE, SIGTERM
    from signal import signal as _set_handler

#: the environment variable that marks the processes of a run
ENV_TOKEN = "TOOLKIT_RUN_TOKEN"
#: how long :func:`end_descendants` waits for what it killed before giving up on it
END_WAIT = 2.0
#: rounds of :func:`sweep` (each one kills what the last one's victims forked meanwhile)
SWEEP_ROUNDS = 50
_MAXFD = 1 << 20

_PROC = sys.platform.startswith("linux") and os.path.isdir("/proc/self/task")
_LINUX = sys.platform.startswith("linux")


# -- the kernel's calls (procs and the code here use them) --------------------

_prctl: list = []  # libc's prctl (or None where it cannot be found), once loaded


def _load_prctl() -> None:
    """Find libc's ``prctl`` once, at import, and call it once (``PR_GET_DUMPABLE``,
    which changes nothing): workers forked (or forked by the fork server) after that
    inherit it ready, instead of loading ctypes and libc, or preparing the first call,
    each."""
    if not _prctl and _LINUX:
        try:
            import ctypes

            prctl = ctypes.CDLL(None).prctl
            PR_GET_DUMPABLE = 3
            prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)
            _prctl.append(prctl)
        except Exception:  # pragma: no cover - die_with_parent falls back to polling
            _prctl.append(None)


_load_prctl()


def prctl(option: int, arg: int) -> bool:
    """``prctl(option, arg)`` (Linux); whether it worked. False elsewhere."""
    if not _LINUX:
        return False
    _load_prctl()
    fn = _prctl[0]
    try:
        return fn is not None and fn(option, arg, 0, 0, 0) == 0
    except Exception:  # pragma: no cover
        return False


def has_pidfds() -> bool:
    """Whether this system has pidfds (Linux >= 5.3; Python >= 3.9): asked once."""
    if not _pidfd_ok:
        ok = False
        if hasattr(os, "pidfd_open"):
            try:
                os.close(os.pidfd_open(os.getpid()))
                ok = True
            except OSError:  # pragma: no cover - an older kernel, or seccomp
                pass
        _pidfd_ok.append(ok)
    return _pidfd_ok[0]


_pidfd_ok: list[bool] = []


def new_token() -> str:
    """A token for one run of an executor: unique on this machine while the run lives."""
    return f"{os.getpid()}-{os.urandom(4).hex()}"


def mark(token: str) -> None:
    """In a worker: mark this process (and what it will start) as the run's, and make it
    the reaper of its orphaned descendants."""
    if not token:
        return
    os.environ[ENV_TOKEN] = f"{token}.{os.getpid()}"
    if _PROC:
        PR_SET_CHILD_SUBREAPER = 36
        prctl(PR_SET_CHILD_SUBREAPER, 1)


def children(pid: int) -> list[int] | None:
    """The children of ``pid`` (of all its threads), or None where /proc cannot say."""
    if not _PROC:
        return None
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def end_descendants() -> None:
    """Kill (SIGKILL) every process this one started that still lives, and reap them.

    A subreaper (:func:`mark`) has every living descendant as a child or below one;
    each child killed hands its own children to this process, which kills them in turn.
    One system call when there is nothing to do (the case of almost every instance)."""
    me = os.getpid()
    deadline = 0.0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children at all
        except OSError:  # pragma: no cover - not expected
            return
        if pid:
            continue  # reaped one that had exited: look again
        kids = children(me)
        if not kids:  # none we can name (no /proc), or gone since
            if kids is None:
                return
        else:
            for kid in kids:
                try:
                    os.kill(kid, SIGKILL)
                except OSError:
                    pass
        now = time.monotonic()
        if not deadline:
            deadline = now + END_WAIT
        elif now > deadline:  # one we may not kill (another user's): leave it
            return
        time.sleep(0.0005)  # for the killed to exit and their children to come here


def _marked(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return needle in b"\0" + data


def sweep(token: str, worker: int | None = None) -> int:
    """SIGKILL every process marked with ``token`` (only those of ``worker``'s pid when
    given), until none is left; how many were killed. Nothing where there is no /proc."""
    if not _PROC or not token:
        return 0
    needle = f"\0{ENV_TOKEN}={token}.".encode()
    if worker is not None:
        needle += f"{worker}\0".encode()
    me = os.getpid()
    killed = 0
    for _ in range(SWEEP_ROUNDS):
        found = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if pid != me and _marked(pid, needle):
                try:
                    os.kill(pid, SIGKILL)
                    found += 1
                except OSError:
                    pass
        if not found:
            break
        killed += found
        time.sleep(0.001)  # a killed process leaves /proc's list only once reaped
    return killed


class Janitor:
    """A process that outlives the supervisor only to kill what the run left: started
    with the executor, stopped (killed) by it at the end of the run. If the supervisor
    dies first, it sweeps the run's mark (:func:`sweep`), then exits. It watches the
    supervisor through a pidfd (at once), or its parent pid every 0.1 s."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    @classmethod
    def start(cls, token: str) -> Janitor | None:
        if not _PROC:
            return None
        import warnings

        parent = os.getpid()
        watch = os.pidfd_open(parent) if has_pidfds() else -1
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns about fork in a process with threads: the child runs
                # only system calls and code already imported, no lock another thread holds
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the janitor (its behaviour is tested)
                code = 0
                try:
                    _janitor(parent, watch, token)
                except BaseException:
                    code = 1
                os._exit(code)
        finally:
            if watch >= 0:
                os.close(watch)
        return cls(pid)

    def gone(self) -> bool:
        """Whether the janitor has died (killed by hand: ``kill -9`` of its pid)."""
        try:
            return os.waitpid(self.pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            return True

    def stop(self) -> None:
        try:
            os.kill(self.pid, SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def _janitor(parent: int, watch: int, token: str) -> None:  # pragma: no cover - a child
    os.setpgid(0, 0)  # out of the terminal's Ctrl-C, and of a kill of the run's group
    for sig in (SIGINT, SIGTERM, SIGHUP, SIGPIPE):
        _set_handler(sig, SIG_IGN)
    # hold nothing of the supervisor's: its results file, its lock, its terminal
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if watch >= 3:
        os.closerange(3, watch)
        os.closerange(watch + 1, _MAXFD)
    else:
        os.closerange(3, _MAXFD)
    if watch >= 0:
        import select

        poller = select.poll()
        poller.register(watch, select.POLLIN)
        while not poller.poll():
            pass
    else:
        while os.getppid() == parent:
            time.sleep(0.1)
    sweep(token)
