"""Shared by the tests of process containment and resources: tasks that leave processes
behind, and a way to see whether a process still runs (``/proc``, not toolkit's word)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.isdir("/proc/self/task"),
    reason="containment of every descendant needs Linux (/proc, PR_SET_CHILD_SUBREAPER)",
)

#: a plugin file: tasks that start processes and write their pids to files
LEAVERS = '''
import os
import signal
import time
from pathlib import Path

import toolkit


def _record(folder, name, pid):
    path = Path(folder) / name
    path.write_text(str(pid))


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"


def daemon(x: int, folder: str) -> dict:
    """Start a daemon (double fork, setsid) that sleeps a minute, and return at once;
    say which daemons of earlier instances still ran when it started."""
    alive = sorted(p.name for p in Path(folder).glob("daemon-*") if _running(int(p.read_text())))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            time.sleep(60)
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    grandchild = int(os.read(r, 64))
    os.close(r)
    _record(folder, f"daemon-{x}", grandchild)
    return {"x": x, "alive": alive}


def orphan_then_die(x: int, folder: str, bad: int = 1) -> int:
    """When x == bad: fork a child that sleeps a minute (holding every fd the worker
    has, as a forked child does), then SIGKILL this worker."""
    if x == bad:
        child = os.fork()
        if child == 0:
            time.sleep(60)
            os._exit(0)
        _record(folder, f"child-{x}", child)
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def close_fds(x: int, reopen: str = "") -> int:
    """Close every inherited fd >= 3 (and maybe open a file that takes their numbers)."""
    os.closerange(3, 65536)
    held = [open(reopen, "w") for _ in range(4)] if reopen else []
    print("closed", len(held))
    return x * 10


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(daemon, name="leave.daemon")
    registry.add(orphan_then_die, name="leave.orphan_then_die")
    registry.add(close_fds, name="leave.close_fds")
'''


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that runs (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"


def wait_gone(pids: list[int], timeout: float = 15.0) -> list[int]:
    """Wait up to ``timeout`` s (a hang guard) for every pid to be gone; those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def wait_files(folder: Path, pattern: str, count: int, timeout: float = 60.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(folder.glob(pattern))
        if len(found) >= count and all(p.read_text().strip() for p in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(found)} of {count} {pattern} in {timeout:g}s")
        time.sleep(0.05)


def pids_in(files: list[Path]) -> list[int]:
    return [int(p.read_text()) for p in files]


@pytest.fixture
def kill_left():
    """Pids a test started through toolkit: killed after the test whatever it says, so
    that a failing test does not leave sleepers behind on the machine."""
    pids: list[int] = []
    yield pids
    import signal

    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


#: a plugin file: tasks that record when they run, and one that allocates memory
HUNGRY = '''
import os
import time
from pathlib import Path

import toolkit


def span(x: int, folder: str, seconds: float = 0.4, tag: str = "") -> int:
    """Sleep, and write this instance's [start, end] (CLOCK_MONOTONIC, shared by all
    processes of the machine) to a file of its own."""
    start = time.monotonic()
    time.sleep(seconds)
    Path(folder, f"span-{tag}{x}").write_text(f"{start} {time.monotonic()}")
    return x


def allocate(x: int, folder: str, mib: int = 1024, step: int = 20) -> int:
    """Allocate (and touch) `step` MiB every 20 ms (1 GiB/s) up to `mib` MiB; add the
    total so far to a file after each step."""
    held = []
    with open(Path(folder, f"allocated-{x}"), "a") as log:
        for total in range(step, mib + 1, step):
            held.append(bytearray(b"\\x01") * (step << 20))
            log.write(f"{total}\\n")
            log.flush()
            time.sleep(0.02)
    return x


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: what a numeric library imported with this file would read (in the process that loads it)
AT_IMPORT = {k: os.environ.get(k) for k in THREAD_VARS}


def threads(x: int = 0) -> dict:
    return {k: os.environ.get(k) for k in THREAD_VARS}


def threads_at_import(x: int = 0) -> dict:
    return AT_IMPORT


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(span, name="res.span")
    registry.add(allocate, name="res.allocate")
    registry.add(threads, name="res.threads")
    registry.add(threads_at_import, name="res.threads_at_import")
'''


def spans(folder: Path, prefix: str = "span-") -> dict[str, tuple[float, float]]:
    out = {}
    for path in folder.glob(f"{prefix}*"):
        start, end = path.read_text().split()
        out[path.name[len(prefix) :]] = (float(start), float(end))
    return out


def most_at_once(intervals: list[tuple[float, float, int]]) -> int:
    """The largest sum of weights of intervals open at one time."""
    events = sorted(
        [(s, w) for s, _, w in intervals] + [(e, -w) for _, e, w in intervals], key=lambda t: (t[0], t[1])
    )
    now = best = 0
    for _, w in events:
        now += w
        best = max(best, now)
    return best
