"""Process plumbing shared by the local executors: groups, parent death, killing."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

_prctl: list = []


def _load_prctl() -> None:
    """Find libc's ``prctl`` once, at import: workers forked (or forked by the fork
    server) after that inherit it instead of loading ctypes and libc each."""
    if not _prctl and sys.platform.startswith("linux"):
        try:
            import ctypes

            _prctl.append(ctypes.CDLL(None, use_errno=True).prctl)
        except Exception:  # pragma: no cover - die_with_parent falls back to polling
            _prctl.append(None)


_load_prctl()


def die_with_parent() -> None:
    """Make this process exit when its parent dies (a SIGKILLed ``toolkit run``)."""
    if sys.platform.startswith("linux"):
        try:
            _load_prctl()
            prctl = _prctl[0]
            PR_SET_PDEATHSIG = 1
            if prctl is not None and prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() == 1:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except Exception:  # pragma: no cover - fall back to polling below
            pass
    parent = os.getppid()

    def watch() -> None:  # pragma: no cover - macOS
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="toolkit-parent-watch", daemon=True).start()


def become_worker() -> None:
    """Set up a worker process: its own process group (so that a timeout kills what the
    task started too), Ctrl-C left to the parent, exit with the parent."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()


def manager_init() -> None:
    """Initializer of the Manager process: ignore Ctrl-C, die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()


def kill_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid``, or the process if it leads none."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "the worker vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the worker process was killed by {name}"
    return f"the worker process exited with code {exitcode}"
