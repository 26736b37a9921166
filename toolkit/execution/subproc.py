"""Running batches in a supervised child process: the building block of executors.

An executor plugin hands batches to :class:`BatchProcess` objects instead of running
task code itself. Each one is a child process (a fresh interpreter: ``python -m
toolkit.execution.subproc``) that imports the run's plugin files once and runs batch
after batch with the toolkit's own batch loop, so records are written exactly as the
built-in executors write them. Its parent (the executor, in whatever process or thread
it runs) supervises it:

- an attempt that outlives its ``timeout`` gets SIGTERM, then SIGKILL after ``grace``,
  sent to the child's process group (what the task started goes too): ``timeout``;
- a child that dies (SIGKILL, a segfault, ``os._exit``) fails only the instance it was
  running: ``crashed``; :meth:`BatchProcess.run` says so and the next batch needs a
  new child;
- ``cancelled()`` returning True (a Ctrl-C, a cancelled future) kills it at once.

Example, the smallest executor (one child, one batch at a time)::

    from toolkit.execution.subproc import BatchProcess

    class OneChild:
        def __init__(self, context):
            self.context, self.child, self.done = context, None, []

        def start(self):
            self.child = BatchProcess(self.context.setup)

        def capacity(self):
            return 0 if self.done else 1

        def submit(self, batch):
            timeout = self.context.recipe.tasks[batch.task].timeout
            outcome = self.child.run(batch, timeout=timeout, grace=self.context.grace)
            self.done += outcome.events(batch)
            if not self.child.alive:
                self.child = BatchProcess(self.context.setup)

        def poll(self, timeout):
            done, self.done = self.done, []
            return done

        def shutdown(self, *, kill=False):
            self.child.close(kill=kill)

``run`` blocks until the batch is done: an executor that runs several at once calls it
from a thread per child (see docs/plugins.md). The child exits when told, when its
parent dies, after ``limit`` instances, or after :data:`IDLE_EXIT` idle seconds.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection

#: typing.TYPE_CHECKING without importing typing: the child process imports this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable

    from toolkit.execution.api import Batch, Event, Lost, Records, WorkerSetup

__all__ = ["IDLE_EXIT", "BatchOutcome", "BatchProcess"]

#: four doubles: [batch id or -1, position, attempt, monotonic start] (BatchRunner's slot)
SLOT_BYTES = 32
#: a child nobody sends work to exits after this many seconds
IDLE_EXIT = 600.0
#: seconds between two looks at the child (messages, death, timeout, cancellation)
TICK = 0.05


class BatchOutcome:
    """What a child did with one batch.

    ``consumed`` positions of the batch are done, with ``n`` records (``lines``, JSONL
    bytes, unless they went to ``on_records``; ``bad``: ``(index, status)`` of those
    not ok); ``final`` when the whole batch is done. ``lost``: the instance that died
    with the child or ran out of time, as :class:`~toolkit.execution.api.Lost`.
    ``error``: the child could not run tasks at all (a plugin file that fails to
    import). ``cancelled``: stopped because ``cancelled()`` said so. ``retired``: the
    child ran its ``limit`` of instances and exited; ``unstarted``: the child had
    exited while idle and never received the batch (run it on a new one)."""

    __slots__ = (
        "_streamed",
        "bad",
        "cancelled",
        "consumed",
        "elapsed",
        "error",
        "final",
        "lines",
        "lost",
        "n",
        "retired",
        "unstarted",
    )

    def __init__(self) -> None:
        self.consumed = 0
        self.n = 0
        self.lines: list[bytes] = []
        self.bad: list[tuple[int, str]] = []
        self.final = False
        self.elapsed = 0.0
        self.lost: Lost | None = None
        self.error: str | None = None
        self.cancelled = False
        self.retired = False
        self.unstarted = False
        self._streamed = False

    def events(self, batch: Batch) -> list[Event]:
        """What the scheduler is to hear of this batch (the records kept here, if any,
        then why it stopped early), for an executor's ``poll``."""
        from toolkit.execution.api import Unfinished, WorkerError

        events: list[Event] = []
        if self.error is not None:
            return [WorkerError(self.error)]
        if not self._streamed and (self.n or self.final):
            events.append(self.records(batch))
        if not self.final:
            events.append(Unfinished(batch.id, self.consumed, self.lost))
        return events

    def records(self, batch: Batch) -> Records:
        from toolkit.execution.api import Records

        return Records(
            batch.id, self.consumed, self.n, b"".join(self.lines), tuple(self.bad), self.final, self.elapsed
        )


class BatchProcess:
    """A child process that runs batches of one run (``setup``).

    ``worker`` is what records say ran them (default ``host:pid`` of the child);
    ``limit`` makes the child exit after that many instances (0: never); ``env``:
    extra environment variables (None unsets one); ``run_dir``: where the child writes logs and scratch
    directories, when not the run's own (``setup.run_dir``: a machine that does not
    share it). The child starts at once and imports the plugin files while the
    caller goes on."""

    def __init__(
        self,
        setup: WorkerSetup,
        *,
        worker: str | None = None,
        limit: int = 0,
        env: dict[str, str | None] | None = None,
        run_dir: str | None = None,
    ) -> None:
        self.limit = limit
        self.ready = False
        cmd_r, cmd_w = os.pipe()
        msg_r, msg_w = os.pipe()
        with tempfile.TemporaryFile() as slot_file:  # shared by mmap, gone with both processes
            slot_file.truncate(SLOT_BYTES)
            slot_fd = slot_file.fileno()
            try:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "toolkit.execution.subproc", str(cmd_r), str(msg_w), str(slot_fd)],
                    pass_fds=(cmd_r, msg_w, slot_fd),
                    stdin=subprocess.DEVNULL,
                    env=_environment(env) if env else None,
                    start_new_session=True,  # a group of its own: a timeout kills what the task started
                )
            except BaseException:
                os.close(cmd_w)
                os.close(msg_r)
                raise
            finally:
                os.close(cmd_r)
                os.close(msg_w)
            self.slot = memoryview(mmap.mmap(slot_fd, SLOT_BYTES)).cast("d")
        self.slot[0] = -1.0
        self._commands = Connection(cmd_w, readable=False)
        self._messages = Connection(msg_r, writable=False)
        if run_dir is not None:
            setup = setup._replace(run_dir=run_dir)
        self._commands.send((setup, worker, limit))

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        """Whether the child can take another batch."""
        return self.proc.poll() is None

    def run(
        self,
        batch: Batch,
        *,
        timeout: float | None = None,
        grace: float = 5.0,
        cancelled: Callable[[], bool] | None = None,
        on_records: Callable[[Records], None] | None = None,
    ) -> BatchOutcome:
        """Run ``batch`` in the child; return when it is done, the child died, an
        attempt ran out of ``timeout`` seconds (None: no limit) or ``cancelled()``.
        Records arrive in bunches as the child flushes them: with ``on_records`` each
        bunch is handed over at once (as a ``Records`` event, ``final`` on the last)
        instead of being kept in the outcome."""
        out = BatchOutcome()
        if self.ready:
            try:
                self._commands.send(batch)
            except OSError:  # it exited while idle (IDLE_EXIT): the caller takes another
                out.unstarted = True
                return out
        term_sent = 0.0
        timed_out: tuple[int, int] | None = None
        eof = False
        while True:
            try:
                if not eof and self._messages.poll(TICK):
                    msg = self._messages.recv()
                    kind = msg[0]
                    if kind == "rec":
                        self._add(out, msg, batch, on_records)
                    elif kind == "end":
                        out.retired = bool(self.limit and msg[1] >= self.limit)
                        return out
                    elif kind == "ready":
                        self.ready = True
                        self._commands.send(batch)
                    elif kind == "err":
                        out.error = msg[1]
                        self.kill()
                        return out
            except (EOFError, OSError):
                eof = True  # the child is gone (or going): what it sent has been read
            if eof or not self.alive:
                return self._dead(batch, out, timed_out, timeout, on_records)
            if cancelled is not None and cancelled():
                out.cancelled = True
                self.kill()
                return out
            now = time.monotonic()
            if term_sent:
                if now - term_sent > grace:
                    _kill_group(self.proc.pid, signal.SIGKILL)
            elif timeout and self.slot[0] == batch.id and now - self.slot[3] > timeout:
                timed_out = (int(self.slot[1]), int(self.slot[2]))
                term_sent = now
                _kill_group(self.proc.pid, signal.SIGTERM)

    @staticmethod
    def _add(
        out: BatchOutcome, msg: tuple, batch: Batch, on_records: Callable[[Records], None] | None
    ) -> None:
        _, _batch_id, consumed, n, lines, bad, final, elapsed = msg
        out.consumed = consumed
        out.final = out.final or final
        out.elapsed += elapsed
        if on_records is not None:
            from toolkit.execution.api import Records

            out._streamed = True
            out.n += n
            on_records(Records(batch.id, consumed, n, lines, tuple(bad), final, elapsed))
            return
        out.n += n
        if lines:
            out.lines.append(lines)
        out.bad.extend(bad)

    def _dead(
        self,
        batch: Batch,
        out: BatchOutcome,
        timed_out: tuple[int, int] | None,
        timeout: float | None,
        on_records: Callable[[Records], None] | None,
    ) -> BatchOutcome:
        from toolkit.execution.api import Lost
        from toolkit.execution.procs import describe_exit

        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        _kill_group(self.proc.pid, signal.SIGKILL)  # whatever the task started
        with contextlib.suppress(EOFError, OSError):
            while self._messages.poll(0):  # records flushed just before dying
                msg = self._messages.recv()
                if msg[0] == "rec":
                    self._add(out, msg, batch, on_records)
        if not self.ready:
            out.error = (
                f"the worker process died while loading the plugins: {describe_exit(self.proc.returncode)}"
            )
            return out
        slot = self.slot
        position = int(slot[1])
        if slot[0] == batch.id and position >= out.consumed:
            started = time.time() - (time.monotonic() - slot[3])
            if timed_out is not None and timed_out[0] == position:
                status = "timeout"
                message = f"the attempt ran longer than its timeout ({timeout:g}s) and was stopped"
            else:
                status = "crashed"
                message = describe_exit(self.proc.returncode)
            out.lost = Lost(position, int(slot[2]), status, message, f"pid {self.proc.pid}", started)
        return out

    def kill(self) -> None:
        """Kill the child and what it started, now."""
        _kill_group(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def close(self, *, kill: bool = False) -> None:
        """Stop the child: at once if ``kill``, else ask it to exit (it is idle) and
        kill it if it does not within 2 s. No process outlives this call."""
        if not kill and self.alive:
            with contextlib.suppress(OSError, ValueError):
                self._commands.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)
        self.kill()
        for conn in (self._commands, self._messages):
            with contextlib.suppress(OSError):
                conn.close()
        with contextlib.suppress(ValueError, BufferError):
            self.slot.release()

    def __enter__(self) -> BatchProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=True)


def _environment(extra: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


# -- the child ---------------------------------------------------------------------
def _exit_with_parent() -> None:
    """Exit when the parent is gone (a SIGKILLed run). Polled, not Linux's
    PR_SET_PDEATHSIG: that fires when the *thread* that started the child ends, and
    executors start children from threads."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.25)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="toolkit-parent-watch", daemon=True).start()


def child_main(argv: list[str]) -> int:
    """``python -m toolkit.execution.subproc CMD_FD MSG_FD SLOT_FD``: read ``(setup,
    worker, limit)`` then batches from CMD_FD, send every message the batch loop emits
    (and ``("end", instances run)`` after each batch) to MSG_FD, keep the instance it
    runs now in the slot at SLOT_FD."""
    from toolkit.records import error_dict

    cmd_fd, msg_fd, slot_fd = (int(a) for a in argv)
    # Ctrl-C is for the run to decide; a timeout's SIGTERM ends this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_with_parent()
    commands = Connection(cmd_fd, writable=False)
    messages = Connection(msg_fd, readable=False)
    slot = memoryview(mmap.mmap(slot_fd, SLOT_BYTES)).cast("d")
    try:
        setup, worker, limit = commands.recv()
        from toolkit.execution.worker import BatchRunner, load_setup
        from toolkit.threads import export_cpus

        export_cpus(1)  # before the tasks' modules load; each batch sets its task's (as pool workers)
        runner = BatchRunner(setup, load_setup(setup), slot)
        if worker:
            runner.worker = worker
    except BaseException as exc:
        error = error_dict(exc)  # the exception of a task module's import: its str() may raise
        messages.send(("err", f"{error['type']}: {error['message']}\n{error['traceback']}"))
        return 1
    messages.send(("ready",))
    while True:
        if not commands.poll(IDLE_EXIT):
            return 0
        try:
            batch = commands.recv()
        except (EOFError, OSError):
            return 0
        if batch is None:
            return 0
        export_cpus(getattr(runner.tasks[batch.task].spec, "cpus", 1))
        runner.run(batch, messages.send, limit)
        messages.send(("end", runner.instances_run))
        if limit and runner.instances_run >= limit:
            return 0  # retire: the next batch gets a new child


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
