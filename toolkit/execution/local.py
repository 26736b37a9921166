"""The local executors: ``pool`` (supervised long-lived workers) and ``process``.

Both are one supervisor. ``pool`` keeps ``workers`` processes fed with batches through
a pipe each (at most two batches per worker, so that a worker never waits for the
parent); ``process`` starts one process per instance. Pool workers (and the process
of an isolated instance of ``pool``) send their results through a
``multiprocessing.Manager`` queue, several records per put, and the supervisor knows
what each runs from a shared-memory slot per worker (no message per instance). Each
process of ``process`` has a pipe of its own to the supervisor instead, which it
inherits: its records, and a note when an attempt starts, go through it (no Manager
connection per instance, no Manager at all); under fork, the zygote
(``toolkit.execution.zygote``) forks them. The supervisor watches the pipes and the
workers' sentinels, kills an attempt that outlives its timeout (SIGTERM to the
worker's process group, then SIGKILL), and replaces dead workers.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import pickle
import queue as queue_mod
import select
import signal
import time
from typing import Any

import attrs

from toolkit.errors import RunError
from toolkit.execution.api import (
    Batch,
    Event,
    ExecutorContext,
    Lost,
    Records,
    Unfinished,
    WorkerError,
    WorkerSetup,
)
from toolkit.execution.containment import Janitor, end_descendants, new_token, sweep
from toolkit.execution.procs import (
    FRAME_HEADER,
    ForkedProcess,
    Outbox,
    become_worker,
    describe_exit,
    fork_child,
    has_pidfds,
    kill_group,
    manager_init,
    process_child,
    spill_path,
    startup_failed,
    tune_allocator,
)
from toolkit.execution.resources import MEMORY_SAMPLE, tree_memory
from toolkit.records import Status
from toolkit.sizes import format_size
from toolkit.threads import export_cpus

#: batches a pool worker holds at once: the one it runs and the next
DEPTH = 2
#: seconds between SIGTERM and SIGKILL for an attempt that ran out of time
KILL_GRACE = 2.0
#: messages buffered in the Manager queue before workers wait (back-pressure)
QUEUE_SIZE = 64
#: messages taken from the queue per poll (each up to FLUSH_RECORDS records)
DRAIN_MESSAGES = 4
#: modules the fork server imports once for all the workers it forks: the main module
#: (multiprocessing's default; CPython >= 3.13.8 then spares each child running it again),
#: and for older versions, which run it again in each child, what that takes (runpy's
#: pkgutil, ~1.5 ms a child) and what the console script imports (the command line);
#: the plugin file loader, what the task table unpickles into (the tasks' views: their
#: matrix and params), the workers' code
FORKSERVER_PRELOAD = [
    "__main__",
    "pkgutil",
    "toolkit.cli",
    "toolkit.plugin_files",
    "toolkit.recipe.instances",
    "toolkit.recipe.params",
    "toolkit.execution.local",
    "toolkit.execution.worker",
    "toolkit.execution.forkserver_exit",  # last: the fork server then exits with the run
]


class QueueRef:
    """The Manager queue, reachable from any process through proxies that take no part
    in the Manager's reference counting.

    A proxy as ``manager.Queue()`` returns it counts references: it connects to the
    Manager to add one when it is made, to drop it when it goes, and, because it
    registers itself to be re-counted after a fork, once more in every process forked
    while it exists. Each of those is a connection with its authentication handshake,
    which counts when every task is a process of its own. Instead the
    supervisor takes one reference for the whole run (:meth:`adopt`), which the
    Manager's shutdown ends, and every process, the supervisor included, uses an
    uncounted proxy (:meth:`proxy`). Workers authenticate with the ``authkey`` they
    inherit, as any proxy passed to them would."""

    __slots__ = ("token",)

    def __init__(self, token: Any) -> None:
        self.token = token

    def __getstate__(self) -> Any:
        return self.token

    def __setstate__(self, token: Any) -> None:
        self.token = token

    @classmethod
    def adopt(cls, counted: Any) -> QueueRef:
        """Take a reference of our own to the queue behind ``counted``, a counted proxy,
        which the caller then drops."""
        from multiprocessing import process
        from multiprocessing.connection import Client
        from multiprocessing.managers import dispatch

        token = counted._token
        conn = Client(token.address, authkey=process.current_process().authkey)
        try:
            dispatch(conn, None, "incref", (token.id,))
        finally:
            conn.close()
        return cls(token)

    def proxy(self) -> Any:
        """A proxy with ``put`` and ``get``, for this process."""
        from multiprocessing import process

        return _queue_proxy_type()(
            self.token, "pickle", authkey=process.current_process().authkey, incref=False, manager_owned=True
        )

    def putter(self) -> Any:
        """The queue's ``put``, for this process."""
        return self.proxy().put


@functools.cache
def _queue_proxy_type() -> type:
    from multiprocessing.managers import BaseProxy

    class QueueProxy(BaseProxy):
        _exposed_ = ("put", "get")

        def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None:
            self._callmethod("put", (obj, block, timeout))

        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            return self._callmethod("get", (block, timeout))

    return QueueProxy


def pool_worker(
    conn: Any, slot: Any, queue: QueueRef, setup: WorkerSetup, limit: int, token: str = ""
) -> None:
    """A long-lived pool worker: run batches from ``conn`` until told to stop."""
    become_worker(token)
    tune_allocator()
    export_cpus(1)  # before the tasks' modules load; each batch sets its task's
    from toolkit.execution.worker import BatchRunner, load_setup

    put = queue.putter()
    try:
        runner = BatchRunner(setup, load_setup(setup), slot)
    except BaseException as exc:
        startup_failed(put, exc)
        return
    runner.end_descendants = end_descendants  # after each instance that could have forked

    def send(message: tuple) -> None:  # once per batch flush, not per instance
        try:
            put(message)
        except (EOFError, OSError):  # the Manager died: the supervisor says so, once
            raise _QueueGone from None

    try:
        while True:
            try:
                batch = conn.recv()
            except (EOFError, OSError):
                return
            if batch is None:
                return
            export_cpus(getattr(runner.tasks[batch.task].spec, "cpus", 1))
            try:
                runner.run(batch, send, limit)
            except _QueueGone:
                return
            end_descendants()  # what the batch's instances left behind
            if limit and runner.instances_run >= limit:
                return  # retire: the supervisor starts a fresh worker
    finally:
        end_descendants()


class _QueueGone(Exception):
    """A pool worker's records cannot reach the supervisor any more."""


def _forget(exc: BaseException) -> None:
    """Drop the traceback of an exception a Manager proxy raised. The proxy's frame holds
    the exception, whose traceback holds that frame and ours: a reference cycle that kept
    each poll's records (``events``) alive until the cyclic garbage collector ran, which
    grew the supervisor by ~25 MiB per 100,000 records."""
    exc.__traceback__ = None


@attrs.define(eq=False)
class _Worker:
    process: Any
    slot: Any  # pool workers: shared memory; one-instance ones: a list the pipe updates
    # readable once the process has exited: a pidfd where there are pidfds (the sentinel
    # of multiprocessing is a pipe that any process the task forks holds open too)
    death: int = -1
    own_death: bool = False  # whether ``death`` is ours to close
    spills: bool = False  # a one-instance process with an Outbox (see Outbox.spill)
    limit: int = 0  # bytes of memory its instance may use (0: no limit)
    peak: int = 0  # the most it was seen to use
    over: bool = False  # stopped for using more than ``limit``
    conn: Any = None  # pool workers only
    inbox: int = -1  # one-instance processes: the read end of their pipe
    received: bytearray = attrs.field(factory=bytearray)  # what came through it, unread
    batches: list[int] = attrs.field(factory=list)
    ran_any: bool = False
    term_sent: float = 0.0
    timed_out: tuple[int, int, int, float] | None = None  # batch, position, attempt, started

    @property
    def pid(self) -> int:
        return self.process.pid


@attrs.define(eq=False)
class _InFlight:
    batch: Batch
    worker: _Worker
    consumed: int = 0
    final: bool = False


class LocalExecutor:
    """``pool`` when ``mode == "pool"``, ``process`` when ``mode == "process"``."""

    def __init__(self, context: ExecutorContext, mode: str = "pool") -> None:
        self.context = context
        self.mode = mode
        self.max_batch = 1 if mode == "process" else 0  # process: one instance per process
        self.workers = max(1, context.workers)
        self.limit = context.recipe.run.max_tasks_per_worker
        self.mp = multiprocessing.get_context(context.start_method)
        # ``process`` under fork: os.fork and a child of our own (fork_child), not
        # multiprocessing's Process, whose extra work in both was ~15 % of the CPU per instance
        self.fork_directly = mode == "process" and self.mp.get_start_method() == "fork"
        self.pool: list[_Worker] = []
        self.solo: list[_Worker] = []  # one-instance processes
        self.inflight: dict[int, _InFlight] = {}
        self.manager: Any = None
        self.queue: Any = None
        self.queue_ref: QueueRef | None = None
        self.closing = False
        self.failed_starts = 0
        self.token = ""  # the run's mark on its processes (toolkit.execution.containment)
        self.janitor: Janitor | None = None
        self.zygote: Any = None  # what forks the instances of ``process`` under fork
        self.spill = ""  # where one-instance processes write what their pipe cannot take
        self.dirty = False  # a worker died without ending what its tasks started
        self.next_sample = 0.0  # when to read the memory of limited instances again
        # what poll waits for: fd -> (worker, whether it is the worker's pipe or sentinel)
        self.watched: dict[int, tuple[_Worker, bool]] = {}
        self.poller = select.poll() if hasattr(select, "poll") else None

    # -- life cycle ----------------------------------------------------------
    def start(self) -> None:
        self.token = new_token()
        self.spill = os.path.join(
            os.path.abspath(self.context.setup.run_dir or _tempdir()), f".outbox-{self.token}-"
        )
        method = self.mp.get_start_method()
        if method == "forkserver":
            # what every worker imports, imported once by the fork server
            self.mp.set_forkserver_preload(FORKSERVER_PRELOAD)
        elif method == "fork":
            # forked workers inherit the tasks, plugin files imported and unpickled once,
            # and the tasks' constants that each runner would make
            from toolkit.execution.worker import BatchRunner, load_setup

            try:
                BatchRunner(self.context.setup, load_setup(self.context.setup)).prepare()
            except Exception:  # each worker then fails to load them and says why
                pass
        if self.mode == "pool":  # the processes of ``process`` report through their pipes
            # (not imported otherwise: a smaller supervisor forks faster)
            from multiprocessing.managers import SyncManager

            self.manager = SyncManager(ctx=self.mp)
            self.manager.start(manager_init)
            self.queue_ref = QueueRef.adopt(self.manager.Queue(QUEUE_SIZE))
            self.queue = self.queue_ref.proxy()
            for _ in range(self.workers):
                self._spawn_pool_worker()
        elif self.fork_directly:  # a process that only forks forks the instances (see its module)
            from toolkit.execution.zygote import Zygote

            self.zygote = Zygote.start(self.context.setup, self.token, self.spill)
        # last: the smallest supervisor to fork, and the pool's Manager stays its first child
        self.janitor = Janitor.start(self.token)

    def _spawn_pool_worker(self) -> _Worker:
        parent_end, child_end = self.mp.Pipe(duplex=False)
        slot = self.mp.RawArray("d", [-1.0, 0.0, 0.0, 0.0])
        process = self.mp.Process(
            target=pool_worker,
            args=(parent_end, slot, self.queue_ref, self.context.setup, self.limit, self.token),
            name="toolkit-worker",
        )
        process.start()
        parent_end.close()
        worker = _Worker(process=process, slot=slot, conn=child_end)
        self.pool.append(worker)
        self._watch_death(worker)
        return worker

    def _watch_death(self, worker: _Worker) -> None:
        process = worker.process
        if isinstance(process, ForkedProcess):  # its sentinel is a pidfd already, if any
            worker.death = process.sentinel
        else:
            worker.death = process.sentinel
            # the fork server's sentinel is its own socket (no process the task forks holds
            # it), and its children are not ours: they may be reaped before a pidfd opens
            if has_pidfds() and self.mp.get_start_method() != "forkserver":
                try:
                    worker.death, worker.own_death = os.pidfd_open(process.pid), True
                except ProcessLookupError:  # pragma: no cover - our child stays a zombie
                    pass
        self._watch(worker.death, worker, False)

    def _spawn_solo(self, batch: Batch) -> _Worker:
        worker = self._start_solo(batch)
        worker.limit = getattr(self.context.recipe.tasks[batch.task], "memory", None) or 0
        return worker

    def _start_solo(self, batch: Batch) -> _Worker:
        cpus = getattr(self.context.recipe.tasks[batch.task], "cpus", 1)
        if self.queue_ref is not None:  # an isolated instance of pool: the Manager queue
            slot = self.mp.RawArray("d", [-1.0, 0.0, 0.0, 0.0])
            process = self.mp.Process(
                target=process_child,
                args=(self.queue_ref, self.context.setup, batch, slot, self.token, cpus),
                name="toolkit-task",
            )
            process.start()
            worker = _Worker(process=process, slot=slot)
            self.solo.append(worker)
            self._watch_death(worker)
            return worker
        if self.fork_directly:
            forked = None
            if self.zygote is not None:
                forked = self._zygote_fork(batch, cpus)
            if forked is None:
                forked = fork_child(self.context.setup, batch, self.token, self.spill, cpus)
            process, inbox = forked
            os.set_blocking(inbox, False)
            worker = _Worker(process=process, slot=[-1.0, 0.0, 0.0, 0.0], inbox=inbox, spills=True)
            self.solo.append(worker)
            self._watch(inbox, worker, True)
            self._watch_death(worker)
            return worker
        inbox, out = os.pipe()
        try:
            os.set_blocking(inbox, False)
            process = self.mp.Process(
                target=process_child,
                args=(Outbox(out, self.spill), self.context.setup, batch, None, self.token, cpus),
                name="toolkit-task",
            )
            process.start()
        except BaseException:
            os.close(inbox)
            raise
        finally:
            os.close(out)  # the child's now: its exit (or death) ends what the pipe can say
        worker = _Worker(process=process, slot=[-1.0, 0.0, 0.0, 0.0], inbox=inbox, spills=True)
        self.solo.append(worker)
        self._watch(inbox, worker, True)
        self._watch_death(worker)
        return worker

    def _zygote_fork(self, batch: Batch, cpus: int) -> Any:
        from toolkit.execution.zygote import ZygoteGone

        try:
            return self.zygote.fork(batch, cpus)
        except ZygoteGone:  # killed: the supervisor forks the rest itself
            self.zygote.stop()
            self.zygote = None
            return None

    def _watch(self, fd: int, worker: _Worker, is_pipe: bool) -> None:
        self.watched[fd] = (worker, is_pipe)
        if self.poller is not None:
            self.poller.register(fd, select.POLLIN)

    def _unwatch(self, fd: int) -> None:
        if self.watched.pop(fd, None) is not None and self.poller is not None:
            self.poller.unregister(fd)

    def capacity(self) -> int:
        if self.closing:
            return 0
        running_solo = sum(1 for w in self.solo if w.batches)
        if self.mode == "process":
            return max(0, self.workers - running_solo)
        free = sum(max(0, DEPTH - len(w.batches)) for w in self.pool)
        return max(0, free - DEPTH * running_solo)

    def submit(self, batch: Batch) -> None:
        if self.mode == "process" or batch.isolate or self.context.isolate_all:
            worker = self._spawn_solo(batch)
        else:
            worker = min(self.pool, key=lambda w: len(w.batches))
            try:
                worker.conn.send(batch)
            except OSError:  # BrokenPipeError: it died since the last poll
                pass  # poll buries it and reports this batch unfinished, to run again
        worker.batches.append(batch.id)
        self.inflight[batch.id] = _InFlight(batch=batch, worker=worker)

    # -- reporting -------------------------------------------------------------
    def _handle(self, msg: tuple, events: list[Event]) -> None:
        if msg[0] == "err":
            events.append(WorkerError(msg[1]))
            self.closing = True
            return
        _, batch_id, consumed, n, lines, bad, final, elapsed = msg
        fl = self.inflight.get(batch_id)
        if fl is None:  # a batch already given up on (its worker was killed)
            return
        fl.consumed = consumed
        fl.worker.ran_any = True
        if final:
            fl.final = True
            del self.inflight[batch_id]
            if batch_id in fl.worker.batches:
                fl.worker.batches.remove(batch_id)
        events.append(Records(batch_id, consumed, n, lines, bad, final, elapsed))

    def _drain(self, events: list[Event], timeout: float, most: int = 10_000) -> None:
        get = self.queue.get
        try:
            msg = get(True, timeout) if timeout > 0 else get(False)
        except queue_mod.Empty as exc:
            _forget(exc)
            return
        except (EOFError, OSError) as exc:
            raise self._queue_lost(exc) from None
        self._handle(msg, events)
        for _ in range(most - 1):
            try:
                msg = get(False)
            except queue_mod.Empty as exc:
                _forget(exc)
                return
            except (EOFError, OSError) as exc:
                raise self._queue_lost(exc) from None
            self._handle(msg, events)

    def _queue_lost(self, exc: BaseException) -> RunError:
        """The Manager process that holds the result queue died (killed, out of memory):
        what workers send is lost from here on, so the run cannot go on."""
        pid = getattr(getattr(self.manager, "_process", None), "pid", None)
        which = f" (pid {pid})" if pid else ""
        return RunError(
            f"the pool's result queue is gone: its Manager process{which} died"
            f" ({type(exc).__name__}); records written so far are kept, --resume finishes the run"
        )

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        metered = any(w.limit for w in self.solo)  # instances whose memory is watched
        if self.queue is not None:
            # a few messages at a time: the scheduler writes them before taking more, so the
            # records waiting in this process stay bounded (the backlog waits in the Manager)
            self._drain(events, min(timeout, MEMORY_SAMPLE) if metered else timeout, DRAIN_MESSAGES)
            self._listen(events, 0)
        else:
            # only pipes and sentinels to wait for: sleep until one of them has something,
            # and return as soon as that is an event (a child's records: its successor
            # starts at once), not for a note or the exit of a child already reported
            end = time.monotonic() + timeout
            while True:
                self._listen(events, min(timeout, MEMORY_SAMPLE) if metered else timeout)
                if metered:
                    self._enforce_memory()
                if events:
                    break
                timeout = end - time.monotonic()
                if timeout <= 0:
                    break
        if metered:
            self._enforce_memory()
        self._enforce_timeouts()
        return events

    def _listen(self, events: list[Event], timeout: float) -> None:
        """Read the pipes that have something and bury the workers that died, waiting
        up to ``timeout`` seconds for either."""
        if self.poller is not None:
            ready = [fd for fd, _ in self.poller.poll(max(0, math.ceil(timeout * 1000)))]
        elif self.watched or timeout > 0:
            from multiprocessing.connection import wait

            ready = wait(list(self.watched), timeout)
        else:
            ready = []
        dead = []
        for fd in ready:
            watched = self.watched.get(fd)
            if watched is None:
                continue
            worker, is_pipe = watched
            if is_pipe:
                self._read(worker, events)
            else:
                dead.append(worker)
        if dead:
            if self.queue is not None:
                self._drain(events, 0)  # what the dead sent before dying comes first
            for worker in dead:
                self._bury(worker, events)

    def _read(self, worker: _Worker, events: list[Event], *, to_the_end: bool = False) -> None:
        """Take what a one-instance process sent through its pipe: notes that an attempt
        starts (its slot), records; ``to_the_end``: all of it (the process is dead)."""
        fd = worker.inbox
        if fd < 0:
            return
        received = worker.received
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:  # every writer is gone
                self._unwatch(fd)
                os.close(fd)
                worker.inbox = -1
                break
            received += chunk
            if len(chunk) < 65536 and not to_the_end:
                break  # the rest, if any, wakes poll again
        self._parse(worker, events)

    def _parse(self, worker: _Worker, events: list[Event]) -> None:
        received = worker.received
        start, size, loads = 0, len(received), pickle.loads
        while size - start >= FRAME_HEADER:
            end = start + FRAME_HEADER + int.from_bytes(received[start : start + FRAME_HEADER], "little")
            if end > size:
                break  # the rest of it is still on its way (or died with the process)
            msg = loads(received[start + FRAME_HEADER : end])
            start = end
            if msg[0] == "go":
                worker.slot = list(msg[1:])
            else:
                self._handle(msg, events)
        if start:
            del received[:start]

    def _close_pipe(self, worker: _Worker) -> None:
        if worker.inbox >= 0:
            self._unwatch(worker.inbox)
            os.close(worker.inbox)
            worker.inbox = -1

    def _read_spill(self, worker: _Worker, events: list[Event]) -> None:
        """What a one-instance process whose task closed its pipe wrote to its file."""
        path = spill_path(self.spill, worker.pid)
        try:
            with open(path, "rb") as f:
                worker.received += f.read()
            os.unlink(path)
        except OSError:
            return
        self._parse(worker, events)

    def _end(self, worker: _Worker, *, reap: bool = True) -> None:
        """Stop watching a process that has exited, end what it left, and reap it; once
        (``death`` is -1 after: shutdown must not end again, by its pid, a worker ended
        on the way)."""
        if worker.death < 0:
            return
        self._close_pipe(worker)
        self._unwatch(worker.death)
        # its process group first, while its pid (a zombie's) cannot be anyone else's
        kill_group_only(worker.pid)
        if reap:
            worker.process.join()
        if worker.batches or worker.term_sent or worker.process.exitcode != 0:
            self.dirty = True  # it could not end what its instance started: find it by its mark
            sweep(self.token, worker.pid)
        if worker.own_death:
            os.close(worker.death)
            worker.own_death = False
        worker.death = -1

    def _bury(self, worker: _Worker, events: list[Event]) -> None:
        self._read(worker, events, to_the_end=True)  # what it sent before dying comes first
        if worker.batches and worker.spills:
            self._read_spill(worker, events)
        self._end(worker)
        exitcode = worker.process.exitcode
        if worker in self.pool:
            self.pool.remove(worker)
        else:
            self.solo.remove(worker)
        if worker.conn is not None:
            worker.conn.close()
        busy_batch = int(worker.slot[0])
        for batch_id in list(worker.batches):
            fl = self.inflight.pop(batch_id, None)
            if fl is None:
                continue
            lost = None
            if batch_id == busy_batch:
                position, attempt, started = int(worker.slot[1]), int(worker.slot[2]), worker.slot[3]
                if position >= fl.consumed:
                    status, message = Status.CRASHED, describe_exit(exitcode)
                    error_type = None
                    if worker.timed_out is not None and worker.timed_out[:2] == (batch_id, position):
                        timeout = self.context.recipe.tasks[fl.batch.task].timeout
                        status = Status.TIMEOUT
                        message = f"the attempt ran longer than its timeout ({timeout:g}s) and was stopped"
                    elif worker.over:
                        status, error_type = Status.FAILED, "MemoryLimitExceeded"
                        message = (
                            f"the instance used more memory than its limit of {format_size(worker.limit)}"
                            f" (peak {format_size(worker.peak)}) and was stopped"
                        )
                    lost = Lost(
                        position=position,
                        attempt=attempt,
                        status=status,
                        message=message,
                        worker=f"pid {worker.pid}",
                        started=time.time() - (time.monotonic() - started),
                        error_type=error_type,
                    )
            events.append(Unfinished(batch_id, fl.consumed, lost))
        if exitcode != 0 and not worker.ran_any and busy_batch < 0:
            self.failed_starts += 1
            if self.failed_starts > 3 * self.workers:
                events.append(
                    WorkerError(f"workers keep dying before they run anything: {describe_exit(exitcode)}")
                )
                self.closing = True
        elif worker.ran_any:
            self.failed_starts = 0
        if self.mode == "pool" and worker.conn is not None and not self.closing:
            self._spawn_pool_worker()

    def _enforce_memory(self) -> None:
        """Stop an instance whose processes use more memory than its task's ``memory``:
        SIGTERM, then SIGKILL after the grace, or at once at twice the limit."""
        now = time.monotonic()
        if now < self.next_sample:
            return
        self.next_sample = now + MEMORY_SAMPLE
        for worker in self.solo:
            if not worker.limit or worker.death < 0:
                continue
            used = tree_memory(worker.pid)
            worker.peak = max(worker.peak, used)
            if worker.over:
                if used >= 2 * worker.limit:
                    kill_group(worker.pid, signal.SIGKILL)
            elif used > worker.limit:
                worker.over = True
                worker.term_sent = now
                kill_group(worker.pid, signal.SIGTERM)

    def _enforce_timeouts(self) -> None:
        if self.janitor is not None and self.janitor.gone():  # killed: a SIGKILL of the run must still sweep
            self.janitor = Janitor.start(self.token)
        now = time.monotonic()
        for worker in self.pool + self.solo:
            slot = worker.slot
            if worker.term_sent:
                if now - worker.term_sent > KILL_GRACE:
                    kill_group(worker.pid, signal.SIGKILL)
                continue
            batch_id = int(slot[0])
            if batch_id < 0:
                continue
            fl = self.inflight.get(batch_id)
            if fl is None:
                continue
            timeout = self.context.recipe.tasks[fl.batch.task].timeout
            if timeout and now - slot[3] > timeout:
                worker.timed_out = (batch_id, int(slot[1]), int(slot[2]), slot[3])
                worker.term_sent = now
                kill_group(worker.pid, signal.SIGTERM)

    # -- the end ---------------------------------------------------------------
    def shutdown(self, *, kill: bool = False) -> None:
        self.closing = True
        everyone = self.pool + self.solo
        if kill:
            for w in everyone:
                w.term_sent = w.term_sent or time.monotonic()
                kill_group(w.pid, signal.SIGKILL)
        for w in self.pool:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + (0 if kill else self.context.grace)
        for w in everyone:
            exited = self._wait_exit(w, max(0.0, deadline - time.monotonic()))
            if not exited:
                w.term_sent = w.term_sent or time.monotonic()
                kill_group(w.pid, signal.SIGKILL)
                exited = self._wait_exit(w, 5)
            if w.conn is not None:
                w.conn.close()
            self._end(w, reap=exited)
        self.pool.clear()
        self.solo.clear()
        if self.dirty:  # anything of this run a dead worker left, wherever it went
            sweep(self.token)
        if self.manager is not None:
            self.manager.shutdown()
            self.manager = None
        if self.zygote is not None:
            self.zygote.stop(kill=kill)
            self.zygote = None
        if self.janitor is not None:
            self.janitor.stop()
            self.janitor = None

    def _wait_exit(self, worker: _Worker, timeout: float) -> bool:
        """Whether the worker exited within ``timeout`` seconds (its ``death`` fd: no
        import of ``multiprocessing.connection``, a few milliseconds at every run's end)."""
        if self.poller is None:
            worker.process.join(timeout)
            return worker.process.exitcode is not None
        if worker.death < 0:  # ended already
            return True
        waiter = select.poll()
        waiter.register(worker.death, select.POLLIN)
        return bool(waiter.poll(math.ceil(timeout * 1000)))


def kill_group_only(pgid: int) -> None:
    import contextlib
    import os

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _tempdir() -> str:
    import tempfile

    return tempfile.gettempdir()
