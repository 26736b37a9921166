"""Dask-worker side: :func:`run_piece` is what the executor submits.

A Dask worker thread cannot be stopped from outside, and a task that kills its process
would take the Dask worker (and everything else it runs) down. So the worker thread
never runs a task itself: it hands the batch to a *runner*, the toolkit's
:class:`~toolkit.execution.subproc.BatchProcess` (a child process of the Dask worker
that runs batches with the toolkit's batch loop), which supervises it the way the pool
executor supervises its workers:

- an attempt that outlives its timeout gets SIGTERM, then SIGKILL after a grace, sent
  to the runner's process group (what the task started goes too): ``timeout``;
- a runner that dies (SIGKILL, segfault, ``os._exit``) fails only the instance it was
  running: ``crashed``; the next batch gets a fresh runner;
- a piece whose Dask future is cancelled (Ctrl-C) kills its runner at once.

Runners are kept per run (one per busy worker thread) and reused across batches, so a
run pays the start and the plugin imports once per worker thread. This module keeps
them: which are idle, the run's files on this machine, its logs when the run directory
is elsewhere.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import attrs

from toolkit.execution.api import Batch
from toolkit.execution.subproc import IDLE_EXIT, BatchProcess
from toolkit_dask.shipping import Payload, place_sources, shares_run_dir

#: what a runner sets to its task's ``cpus`` (toolkit.threads.export_cpus)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: where runners keep what they need on this machine: sources, logs, scratch
BASE = Path(tempfile.gettempdir()) / f"toolkit-dask-{os.getuid()}"

_LOCK = threading.Lock()
_POOLS: dict[str, _Pool] = {}
_COUNTER = itertools.count()


class _Runner:
    """A :class:`BatchProcess` and where it writes logs when the run directory is not
    visible here."""

    def __init__(self, pool: _Pool, limit: int) -> None:
        self.run_dir = pool.run_dir or str(pool.folder / f"runner-{next(_COUNTER)}")
        self.process = BatchProcess(
            pool.setup, worker=pool.worker, limit=limit, env=pool.env, run_dir=self.run_dir
        )
        self.worker = pool.worker or f"{socket.gethostname()}:{self.process.pid}"
        self.retiring = False

    @property
    def alive(self) -> bool:
        return self.process.alive

    def take_logs(self) -> list[tuple[str, str]]:
        """The instance logs this runner wrote (when the run directory is not shared)."""
        logs = []
        folder = Path(self.run_dir) / "logs"
        for file in sorted(folder.glob("*.log")) if folder.is_dir() else ():
            with contextlib.suppress(OSError):
                logs.append((file.name, file.read_text(encoding="utf-8", errors="replace")))
                file.unlink()
        return logs


class _Pool:
    """The runners of one run on this Dask worker."""

    def __init__(self, payload: Payload, worker: str | None) -> None:
        self.key = payload.key
        #: what records say ran them: the Dask worker's address (None: each runner's
        #: host:pid, for a LocalCluster's threads, which share this process's runners)
        self.worker = worker
        self.folder = BASE / payload.key
        where = place_sources(payload, self.folder) if payload.sources else {}
        self.shared = shares_run_dir(payload.setup.run_dir)
        self.run_dir = payload.setup.run_dir if self.shared else None
        files = tuple(where.get(f, f) for f in payload.setup.files)
        self.setup = payload.setup._replace(files=files)
        self.env = runner_environment()
        self.idle: list[_Runner] = []
        self.busy: set[_Runner] = set()
        self.closed = False
        self.used = time.monotonic()

    def take(self, limit: int) -> _Runner:
        with _LOCK:
            self.used = time.monotonic()
            while self.idle:
                runner = self.idle.pop()
                if runner.alive:
                    self.busy.add(runner)
                    return runner
                runner.process.close(kill=True)
        runner = _Runner(self, limit)
        with _LOCK:
            self.busy.add(runner)
        return runner

    def give_back(self, runner: _Runner) -> None:
        with _LOCK:
            self.busy.discard(runner)
            keep = not self.closed and runner.alive and not runner.retiring
            if keep:
                self.idle.append(runner)
            last = self.closed and not self.busy
        if not keep:
            runner.process.close()
        if last:  # closed while this runner was busy
            shutil.rmtree(self.folder, ignore_errors=True)

    def close(self, kill: bool) -> None:
        with _LOCK:
            self.closed = True
            idle, self.idle = self.idle, []
            busy = list(self.busy)
        for runner in idle:
            runner.process.close()
        if kill:  # their Dask threads close them when run() returns
            for runner in busy:
                runner.process.kill()
        if not busy:
            shutil.rmtree(self.folder, ignore_errors=True)


def runner_environment() -> dict[str, str | None]:
    """What to change in this process's environment for a runner, which sets the numeric libraries'
    threads to its task's ``cpus`` (1 by default) unless the user set them. A value of 1
    here is Dask's (its nanny sets 1 for every worker process,
    ``distributed.nanny.pre-spawn-environ``), not the user's: it would pin a task that
    asks for ``cpus = 4`` to one thread."""
    return {name: None for name in THREAD_VARS if os.environ.get(name) == "1"}


def _pool(payload: Payload, worker: str | None) -> _Pool:
    with _LOCK:
        pool = _POOLS.get(payload.key)
    if pool is None:
        _forget_abandoned()
        made = _Pool(payload, worker)
        with _LOCK:
            pool = _POOLS.setdefault(payload.key, made)
    return pool


def _forget_abandoned() -> None:
    """Drop the runners and files of runs that ended without closing them (a client
    that was SIGKILLed): their runners have exited on their own after IDLE_EXIT."""
    now = time.monotonic()
    with _LOCK:
        stale = [k for k, p in _POOLS.items() if not p.busy and now - p.used > IDLE_EXIT]
        pools = [_POOLS.pop(k) for k in stale]
    for pool in pools:
        pool.close(kill=True)


def start_runners(payload: Payload, limit: int, wanted: int, worker: str | None = None) -> int:
    """Start runners of this run until it has ``wanted`` on this machine, so that their
    start (a fresh interpreter importing the toolkit and the plugins) overlaps whatever
    the caller does next. Returns at once: they start in a thread, off the caller's
    event loop. Returns how many it starts."""
    pool = _pool(payload, worker)
    with _LOCK:
        missing = max(0, wanted - len(pool.idle) - len(pool.busy))

    def start() -> None:
        for _ in range(missing):
            try:
                runner = _Runner(pool, limit)
            except Exception:  # the first batch will start one, and say what fails
                return
            with _LOCK:
                closed = pool.closed
                if not closed:
                    pool.idle.append(runner)
            if closed:  # the run ended already
                runner.process.close()
                return

    if missing:
        threading.Thread(target=start, name="toolkit-dask-prewarm", daemon=True).start()
    return missing


def prewarm(payload: Payload, limit: int, dask_worker: Any = None) -> int:
    """A runner per thread of this Dask worker, before the run's first batch arrives
    (``client.run`` calls it while the executor checks versions)."""
    return start_runners(payload, limit, dask_worker.state.nthreads, dask_worker.address)


@attrs.define(eq=False)
class _Total:
    """What the runners of one piece did with it, in the executor's terms."""

    consumed: int = 0
    n: int = 0
    lines: list[bytes] = attrs.field(factory=list)
    bad: list[tuple[int, str]] = attrs.field(factory=list)
    final: bool = False
    elapsed: float = 0.0
    lost: Any = None  # a toolkit Lost, its position in the piece
    error: str | None = None

    def as_tuple(self, logs: list[tuple[str, str]], worker: str) -> tuple:
        return (
            self.consumed,
            self.n,
            b"".join(self.lines),
            tuple(self.bad),
            self.final,
            self.elapsed,
            self.lost,
            self.error,
            tuple(logs),
            worker,
        )


def run_piece(payload: Payload, batch: Batch, timeout: float, grace: float, limit: int) -> tuple:
    """Run ``batch`` in a runner of this Dask worker; return what happened as a tuple:
    ``(consumed, n, lines, bad, final, elapsed, lost, error, logs, worker)``."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()

    def cancelled() -> bool:
        ts = worker.state.tasks.get(key)
        return ts is None or ts.state in ("cancelled", "released", "forgotten")

    total = _Total()
    logs: list[tuple[str, str]] = []
    try:
        pool = _pool(payload, worker.address)
    except Exception as exc:
        total.error = f"cannot prepare the plugin files on {worker.address}: {type(exc).__name__}: {exc}"
        return total.as_tuple(logs, worker.address)
    offset = 0
    todo = batch
    unstarted = 0
    while True:
        runner = pool.take(limit)
        try:
            out = runner.process.run(todo, timeout=timeout or None, grace=grace, cancelled=cancelled)
            runner.retiring = out.retired or batch.isolate  # isolate = true: a process of its own
        finally:
            if not pool.shared:
                logs.extend(runner.take_logs())
            pool.give_back(runner)
        if out.unstarted and unstarted < 3:
            unstarted += 1
            continue
        total.consumed = offset + out.consumed
        total.n += out.n
        total.lines.extend(out.lines)
        total.bad.extend(out.bad)
        total.elapsed += out.elapsed
        total.final = out.final
        if out.lost is not None:
            total.lost = attrs.evolve(out.lost, position=offset + out.lost.position, worker=runner.worker)
        total.error = out.error
        if out.final or not out.retired or out.consumed == 0:
            break
        # the runner retired (max_tasks_per_worker): go on with a fresh one
        offset += out.consumed
        todo = batch._replace(indices=batch.indices[offset:])
    return total.as_tuple(logs, pool.worker or runner.worker)


def close_runners(key: str, kill: bool = False) -> int:
    """Stop this run's runners on this worker (``client.run`` calls it at shutdown)."""
    with _LOCK:
        pool = _POOLS.pop(key, None)
    if pool is None:
        shutil.rmtree(BASE / key, ignore_errors=True)
        return 0
    n = len(pool.idle) + len(pool.busy)
    pool.close(kill)
    return n


def module_versions(names: list[str]) -> dict[str, str | None]:
    """``__version__`` of each module on this worker (``client.run`` calls it)."""
    import importlib

    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = str(getattr(importlib.import_module(name), "__version__", None))
        except Exception as exc:
            found[name] = f"not importable ({type(exc).__name__}: {exc})"
    return found
