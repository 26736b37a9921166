"""Process plumbing shared by the local executors: groups, parent death, killing."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
import time

from toolkit.execution.containment import end_descendants, has_pidfds, mark, prctl
from toolkit.threads import export_cpus

try:  # the C function: signal.signal's conversions of its arguments and result to enum
    # members run Python code that touches pages a forked worker must then copy
    from _signal import SIG_DFL, SIG_IGN, SIGINT, SIGTERM
    from _signal import signal as _set_handler
except ImportError:  # pragma: no cover - not CPython
    from signal import SIG_DFL, SIG_IGN, SIGINT, SIGTERM
    from signal import signal as _set_handler

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

_LINUX = sys.platform.startswith("linux")
_SIGKILL = int(signal.SIGKILL)


def die_with_parent() -> None:
    """Make this process exit when its parent dies (a SIGKILLed ``toolkit run``)."""
    PR_SET_PDEATHSIG = 1
    if prctl(PR_SET_PDEATHSIG, _SIGKILL):
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
        return
    parent = os.getppid()

    def watch() -> None:  # pragma: no cover - macOS
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="toolkit-parent-watch", daemon=True).start()


def become_worker(token: str = "") -> None:
    """Set up a worker process: its own process group (so that a timeout kills what the
    task started too), Ctrl-C left to the parent, exit with the parent, the run's mark
    and the reaper of what its tasks leave (``toolkit.execution.containment``).

    Every instance of the ``process`` executor pays for this, in a process that copies
    each page of its parent's memory it writes to: it is kept to the system calls."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    _set_handler(SIGINT, SIG_IGN)
    _set_handler(SIGTERM, SIG_DFL)
    die_with_parent()
    mark(token)


#: bytes of the length that precedes every message on a one-instance child's pipe
FRAME_HEADER = 8


def _rebuild_outbox(fd: Any, spill: str) -> Outbox:
    fd = fd.detach()  # multiprocessing's DupFd: this process's copy of the write end
    with contextlib.suppress(OSError):
        os.set_inheritable(fd, False)  # not for what the task execs
    return Outbox(fd, spill)


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def spill_path(spill: str, pid: int) -> str:
    """The file where the process ``pid`` writes what its pipe could not take."""
    return f"{spill}{pid}"


class Outbox:
    """The write end of a one-instance child's pipe to the supervisor. ``send`` writes a
    message (a length, then its pickle); items set as on a pool worker's shared slot
    (``[batch id, position, attempt, start time]``) are sent when an attempt starts
    (``slot[0] = batch id``, the last item ``BatchRunner`` sets). Pickles, for spawn and
    the fork server, as multiprocessing's own connections do: the fd is passed along.

    A task may close the pipe (a task that closes every inherited fd >= 3), and may then
    open a file that gets its number: each message checks first that the fd is still the
    pipe it was, and otherwise goes to the file ``spill`` + pid, which the supervisor
    reads when the process has exited."""

    __slots__ = ("fd", "ident", "spill", "state")

    def __init__(self, fd: int, spill: str = "") -> None:
        self.fd = fd
        self.spill = spill
        self.ident = _identity(fd)
        self.state = [-1.0, 0.0, 0.0, 0.0]

    def __reduce__(self) -> Any:
        from multiprocessing import reduction

        return _rebuild_outbox, (reduction.DupFd(self.fd), self.spill)

    def send(self, msg: Any) -> None:
        data = pickle.dumps(msg, pickle.HIGHEST_PROTOCOL)
        view = memoryview(len(data).to_bytes(FRAME_HEADER, "little") + data)
        write, fd = os.write, self.fd
        try:
            if _identity(fd) != self.ident:
                raise OSError("the pipe to the supervisor was closed")
            while view:
                view = view[write(fd, view) :]
        except OSError:
            if not self.spill:
                raise
            # the rest of the message (a torn frame is completed by the file's start)
            with open(spill_path(self.spill, os.getpid()), "ab") as f:
                f.write(view)

    def __getitem__(self, item: int) -> float:
        return self.state[item]

    def __setitem__(self, item: int, value: float) -> None:
        state = self.state
        state[item] = value
        if item == 0 and value >= 0:
            self.send(("go", *state))


def process_child(out: Any, setup: Any, batch: Any, slot: Any = None, token: str = "", cpus: int = 1) -> None:
    """A process for one batch (of one instance): run it, send its records to the
    supervisor, end what it started, and exit. ``out`` is an :class:`Outbox` (a pipe of
    its own, which is also its slot), or a queue (``putter()``) with a shared ``slot``.
    Kept here, away from the executor's module, so that a spawned child imports no more
    than it needs."""
    become_worker(token)
    export_cpus(cpus)  # before the task's module loads (spawn, forkserver)
    from toolkit.execution.worker import BatchRunner, load_setup

    send = out.send if slot is None else out.putter()
    try:
        runner = BatchRunner(setup, load_setup(setup), out if slot is None else slot)
    except BaseException as exc:
        startup_failed(send, exc)
        return
    runner.run(batch, send)
    end_descendants()


class ForkedProcess:
    """A one-instance process started by :func:`fork_child`, with what the executor uses
    of a ``multiprocessing.Process``: ``pid``, ``sentinel`` (readable once it has
    exited: a pidfd, or the read end of a pipe only the child holds where there are no
    pidfds), ``join`` and ``exitcode`` (negative: the signal that killed it)."""

    __slots__ = ("exitcode", "pid", "sentinel")

    def __init__(self, pid: int, sentinel: int) -> None:
        self.pid = pid
        self.sentinel = sentinel
        self.exitcode: int | None = None

    def join(self, timeout: float | None = None) -> None:
        if self.exitcode is not None:
            return
        if timeout is not None:
            import select

            if not select.select([self.sentinel], [], [], max(0.0, timeout))[0]:
                return
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:  # reaped by someone else: it is gone, how is unknown
            return
        self.exitcode = os.waitstatus_to_exitcode(status)

    def __del__(self) -> None:  # as multiprocessing closes its sentinel: when it is dropped
        with contextlib.suppress(OSError):
            os.close(self.sentinel)


def fork_child(
    setup: Any, batch: Any, token: str = "", spill: str = "", cpus: int = 1
) -> tuple[ForkedProcess, int]:
    """Start a one-instance process with ``os.fork`` (the ``fork`` start method only):
    ``(process, the read end of its pipe)``.

    This is what ``multiprocessing.Process.start`` does under fork without what it adds
    around it, which a process that lives for one instance pays for in full: in the
    parent, the bookkeeping of its children and a finalizer per process; in the child,
    the reset of ``multiprocessing``'s state, a new ``sys.stdin``, its exit functions,
    each touching memory that the child must then copy. The child here does what a
    child of ``multiprocessing`` would for a task: stdin from ``/dev/null``, its own
    process group, ``process_child``, non-daemon threads waited for, the streams
    flushed, then ``os._exit`` (no ``atexit`` handlers of the supervisor)."""
    pidfds = has_pidfds()
    for stream in (sys.stdout, sys.stderr):  # or the child would write their buffers again
        with contextlib.suppress(Exception):
            stream.flush()
    inbox, out = os.pipe()
    sentinel = child_end = pid = -1
    try:
        if not pidfds:  # the child holds the write end until it exits
            sentinel, child_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (its behaviour is tested, not its lines)
            _forked_child(out, (inbox, sentinel), setup, batch, token, spill, cpus)
        if pidfds:
            sentinel = os.pidfd_open(pid)
    except BaseException:
        os.close(inbox)
        if sentinel >= 0:
            os.close(sentinel)
        if pid > 0:  # no way to watch it (no fd left?): it does not run unsupervised
            with contextlib.suppress(OSError):
                os.kill(pid, _SIGKILL)
                os.waitpid(pid, 0)
        raise
    finally:
        os.close(out)  # the child's now: its exit (or death) ends what the pipe can say
        if child_end >= 0:
            os.close(child_end)
    return ForkedProcess(pid, sentinel), inbox


def _forked_child(  # pragma: no cover
    out: int, close: tuple[int, int], setup: Any, batch: Any, token: str, spill: str, cpus: int
) -> None:
    code = 1
    try:
        try:
            for fd in close:
                if fd >= 0:
                    os.close(fd)
            _stdin_from_devnull()
            mp_util = sys.modules.get("multiprocessing.util")
            if mp_util is not None:  # what multiprocessing resets in a child it forks
                mp_util._finalizer_registry.clear()
                mp_util._run_after_forkers()
            process_child(Outbox(out, spill), setup, batch, None, token, cpus)
            code = 0
        except SystemExit as e:
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:
                sys.stderr.write(f"{e.code}\n")
        except BaseException:
            import traceback

            sys.stderr.write("Process toolkit-task:\n")
            traceback.print_exc()
        finally:
            threading_mod = sys.modules.get("threading")
            if threading_mod is not None:
                threading_mod._shutdown()  # type: ignore[attr-defined]
            mp_util = sys.modules.get("multiprocessing.util")
            if mp_util is not None:  # the task's own multiprocessing children and finalizers
                mp_util._exit_function()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
    finally:
        os._exit(code)


def _stdin_from_devnull() -> None:
    """What multiprocessing does to a child's stdin, as system calls: file descriptor 0
    reads /dev/null (nothing a task reads, or a program it runs, waits on the terminal)."""
    with contextlib.suppress(OSError):
        fd = os.open(os.devnull, os.O_RDONLY)
        if fd != 0:
            os.dup2(fd, 0)
            os.close(fd)


def startup_failed(send: Any, exc: BaseException) -> None:
    """Tell the supervisor that this worker cannot run the tasks, and why."""
    from toolkit.records import error_dict

    error = error_dict(exc)  # the exception of a task module's import: its str() may raise
    send(("err", f"{error['type']}: {error['message']}\n{error['traceback']}"))


def manager_init() -> None:
    """Initializer of the Manager process: ignore Ctrl-C, die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    tune_allocator()


def tune_allocator() -> None:
    """In a pool worker, the Manager and ``toolkit run``'s own process (processes that
    pass records along; not a process that calls the API): let glibc's malloc serve
    blocks of up to 4 MiB from its heap and keep up to 16 MiB free there, instead of
    mapping each large block anew and unmapping it when freed. Every message
    of records is a few hundred KiB that several buffers copy in turn (the joined lines,
    pickling, the connection's reads, unpickling): with the default (adaptive)
    thresholds they kept coming as fresh pages, and the page faults were ~15 % of the
    CPU of a run of tiny tasks. Nothing happens with another C library."""
    if not _LINUX:
        return
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # malloc.h
        mallopt(M_MMAP_THRESHOLD, 4 << 20)
        mallopt(M_TRIM_THRESHOLD, 16 << 20)
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not glibc after all
        pass


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
