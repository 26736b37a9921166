"""The local executors: ``pool`` (supervised long-lived workers) and ``process``.

Both are one supervisor. ``pool`` keeps ``workers`` processes fed with batches through
a pipe each (at most two batches per worker, so that a worker never waits for the
parent); ``process`` starts one process per instance. Results travel back through a
``multiprocessing.Manager`` queue, several records per put. The supervisor knows what
every worker runs from a shared-memory slot per worker (no message per instance),
watches the workers' sentinels, kills an attempt that outlives its timeout (SIGTERM to
the worker's process group, then SIGKILL), and replaces dead workers.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_mod
import signal
import time
from multiprocessing.connection import wait
from typing import Any

import attrs

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
from toolkit.execution.procs import become_worker, describe_exit, kill_group, manager_init

#: batches a pool worker holds at once: the one it runs and the next
DEPTH = 2
#: seconds between SIGTERM and SIGKILL for an attempt that ran out of time
KILL_GRACE = 2.0
#: messages buffered in the Manager queue before workers wait (back-pressure)
QUEUE_SIZE = 64


def _startup_failed(queue: Any, exc: BaseException) -> None:
    import traceback

    queue.put(("err", f"{type(exc).__name__}: {exc}\n{''.join(traceback.format_exception(exc))}"))


def pool_worker(conn: Any, slot: Any, queue: Any, setup: WorkerSetup, limit: int) -> None:
    """A long-lived pool worker: run batches from ``conn`` until told to stop."""
    become_worker()
    from toolkit.execution.worker import BatchRunner, load_setup

    try:
        runner = BatchRunner(setup, load_setup(setup), slot)
    except BaseException as exc:
        _startup_failed(queue, exc)
        return
    put = queue.put
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        runner.run(batch, put, limit)
        if limit and runner.instances_run >= limit:
            return  # retire: the supervisor starts a fresh worker


def process_worker(slot: Any, queue: Any, setup: WorkerSetup, batch: Batch) -> None:
    """One process for one batch (of one instance), then exit."""
    become_worker()
    from toolkit.execution.worker import BatchRunner, load_setup

    try:
        runner = BatchRunner(setup, load_setup(setup), slot)
    except BaseException as exc:
        _startup_failed(queue, exc)
        return
    runner.run(batch, queue.put)


@attrs.define(eq=False)
class _Worker:
    process: Any
    slot: Any
    conn: Any = None  # pool workers only
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
        self.workers = max(1, context.workers)
        self.limit = context.recipe.run.max_tasks_per_worker
        self.mp = multiprocessing.get_context(context.start_method)
        self.pool: list[_Worker] = []
        self.solo: list[_Worker] = []  # one-instance processes
        self.exited: list[int] = []  # pids whose process groups are swept at shutdown
        self.inflight: dict[int, _InFlight] = {}
        self.manager: Any = None
        self.queue: Any = None
        self.closing = False
        self.failed_starts = 0

    # -- life cycle ----------------------------------------------------------
    def start(self) -> None:
        from multiprocessing.managers import SyncManager

        if self.mp.get_start_method() == "forkserver":
            self.mp.set_forkserver_preload(["toolkit.execution.local", "toolkit.execution.worker"])
        self.manager = SyncManager(ctx=self.mp)
        self.manager.start(manager_init)
        self.queue = self.manager.Queue(QUEUE_SIZE)
        if self.mode == "pool":
            for _ in range(self.workers):
                self._spawn_pool_worker()

    def _spawn_pool_worker(self) -> _Worker:
        parent_end, child_end = self.mp.Pipe(duplex=False)
        slot = self.mp.RawArray("d", [-1.0, 0.0, 0.0, 0.0])
        process = self.mp.Process(
            target=pool_worker,
            args=(parent_end, slot, self.queue, self.context.setup, self.limit),
            name="toolkit-worker",
        )
        process.start()
        parent_end.close()
        worker = _Worker(process=process, slot=slot, conn=child_end)
        self.pool.append(worker)
        return worker

    def _spawn_solo(self, batch: Batch) -> _Worker:
        slot = self.mp.RawArray("d", [-1.0, 0.0, 0.0, 0.0])
        process = self.mp.Process(
            target=process_worker,
            args=(slot, self.queue, self.context.setup, batch),
            name="toolkit-task",
        )
        process.start()
        worker = _Worker(process=process, slot=slot)
        self.solo.append(worker)
        return worker

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
            worker.conn.send(batch)
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

    def _drain(self, events: list[Event], timeout: float) -> None:
        get = self.queue.get
        try:
            msg = get(True, timeout) if timeout > 0 else get(False)
        except queue_mod.Empty:
            return
        self._handle(msg, events)
        for _ in range(10_000):
            try:
                msg = get(False)
            except queue_mod.Empty:
                return
            self._handle(msg, events)

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        self._drain(events, timeout)
        everyone = self.pool + self.solo
        ready = set(wait([w.process.sentinel for w in everyone], 0)) if everyone else set()
        dead = [w for w in everyone if w.process.sentinel in ready]
        if dead:
            self._drain(events, 0)  # what the dead sent before dying comes first
            for worker in dead:
                self._bury(worker, events)
        self._enforce_timeouts()
        return events

    def _bury(self, worker: _Worker, events: list[Event]) -> None:
        worker.process.join()
        exitcode = worker.process.exitcode
        self.exited.append(worker.pid)
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
                    status, message = "crashed", describe_exit(exitcode)
                    if worker.timed_out is not None and worker.timed_out[:2] == (batch_id, position):
                        timeout = self.context.recipe.tasks[fl.batch.task].timeout
                        status = "timeout"
                        message = f"the attempt ran longer than its timeout ({timeout:g}s) and was stopped"
                    lost = Lost(
                        position=position,
                        attempt=attempt,
                        status=status,
                        message=message,
                        worker=f"pid {worker.pid}",
                        started=time.time() - (time.monotonic() - started),
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

    def _enforce_timeouts(self) -> None:
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
                kill_group(w.pid, signal.SIGKILL)
        for w in self.pool:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + (0 if kill else self.context.grace)
        for w in everyone:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.exitcode is None:
                kill_group(w.pid, signal.SIGKILL)
                w.process.join(5)
            self.exited.append(w.pid)
            if w.conn is not None:
                w.conn.close()
        self.pool.clear()
        self.solo.clear()
        # whatever the tasks started in the workers' process groups goes too
        for pid in self.exited:
            kill_group_only(pid)
        self.exited.clear()
        if self.manager is not None:
            self.manager.shutdown()
            self.manager = None


def kill_group_only(pgid: int) -> None:
    import contextlib
    import os

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
