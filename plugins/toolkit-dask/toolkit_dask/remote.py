"""Dask-worker side: :func:`run_piece` is what the executor submits.

A Dask worker thread cannot be stopped from outside, and a task that kills its process
would take the Dask worker (and everything else it runs) down. So the worker thread
never runs a task itself: it hands the batch to a *runner*, a child process of the
Dask worker (``toolkit_dask.runner``) that runs it with the toolkit's ``BatchRunner``,
and supervises it the way the pool executor supervises its workers:

- an attempt that outlives its timeout gets SIGTERM, then SIGKILL after a grace, sent
  to the runner's process group (what the task started goes too): ``timeout``;
- a runner that dies (SIGKILL, segfault, ``os._exit``) fails only the instance it was
  running: ``crashed``; the next batch gets a fresh runner;
- a piece whose Dask future is cancelled (Ctrl-C) kills its runner at once.

Runners are kept per run (one per busy worker thread) and reused across batches, so a
run pays the start and the plugin imports once per worker thread.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import attrs

from toolkit.execution.api import Batch
from toolkit.execution.procs import describe_exit, kill_group
from toolkit_dask.runner import IDLE_EXIT, SLOT_BYTES
from toolkit_dask.shipping import Payload, place_sources, shares_run_dir

#: seconds between two looks at the runner (messages, death, timeout, cancellation)
TICK = 0.05
#: what a runner sets to its task's ``cpus`` (toolkit.execution.procs.export_cpus)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: where runners keep what they need on this machine: sources, logs, scratch
BASE = Path(tempfile.gettempdir()) / f"toolkit-dask-{os.getuid()}"

_LOCK = threading.Lock()
_POOLS: dict[str, _Pool] = {}
_COUNTER = itertools.count()


@attrs.define(eq=False)
class Outcome:
    """What one runner did with one batch."""

    consumed: int = 0
    n: int = 0
    lines: list[bytes] = attrs.field(factory=list)
    bad: list[tuple[int, str]] = attrs.field(factory=list)
    final: bool = False
    elapsed: float = 0.0
    ended: bool = False  # the runner said "end": it finished or retired
    lost: tuple[int, int, str, str, float] | None = None  # position, attempt, status, message, started
    error: str | None = None
    cancelled: bool = False
    unstarted: bool = False

    def add(self, msg: tuple) -> None:
        _, _batch_id, consumed, n, lines, bad, final, elapsed = msg
        self.consumed = consumed
        self.n += n
        if lines:
            self.lines.append(lines)
        self.bad.extend(bad)
        self.final = self.final or final
        self.elapsed += elapsed


class _Runner:
    """One runner process and its pipes and slot."""

    def __init__(self, pool: _Pool, limit: int) -> None:
        self.number = next(_COUNTER)
        self.run_dir = pool.run_dir or str(pool.folder / f"runner-{self.number}")
        self.limit = limit
        self.retiring = False
        cmd_r, cmd_w = os.pipe()
        msg_r, msg_w = os.pipe()
        with tempfile.TemporaryFile() as slot_file:  # shared by mmap, gone with both processes
            slot_file.truncate(SLOT_BYTES)
            slot_fd = slot_file.fileno()
            try:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "toolkit_dask.runner", str(cmd_r), str(msg_w), str(slot_fd)],
                    pass_fds=(cmd_r, msg_w, slot_fd),
                    stdin=subprocess.DEVNULL,
                    process_group=0,  # a timeout kills what the task started too
                    env=pool.env,
                )
            except BaseException:
                os.close(cmd_w)
                os.close(msg_r)
                raise
            finally:
                os.close(cmd_r)
                os.close(msg_w)
            self.slot = memoryview(mmap.mmap(slot_fd, SLOT_BYTES)).cast("d")
        self.commands = Connection(cmd_w, readable=False)
        self.messages = Connection(msg_r, writable=False)
        self.slot[0] = -1.0
        self.ready = False
        setup = pool.setup._replace(run_dir=self.run_dir)
        self.commands.send((setup, limit))

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        kill_group(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def stop(self) -> None:
        """Ask an idle runner to exit; kill it if it does not."""
        with contextlib.suppress(OSError, ValueError):
            self.commands.send(None)
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            pass
        self.kill()
        self.close_pipes()

    def close_pipes(self) -> None:
        for conn in (self.commands, self.messages):
            with contextlib.suppress(OSError):
                conn.close()

    def run(self, batch: Batch, worker: str, timeout: float, grace: float, cancelled: Any) -> Outcome:
        out = Outcome()
        if self.ready:
            try:
                self.commands.send((batch, worker))
            except OSError:  # it exited while idle (IDLE_EXIT): the caller takes another
                out.unstarted = True
                return out
        term_sent = 0.0
        timed_out: tuple[int, int] | None = None
        eof = False
        while True:
            try:
                if not eof and self.messages.poll(TICK):
                    msg = self.messages.recv()
                    kind = msg[0]
                    if kind == "rec":
                        out.add(msg)
                    elif kind == "end":
                        out.ended = True
                        self.retiring = bool(self.limit and msg[1] >= self.limit)
                        return out
                    elif kind == "ready":
                        self.ready = True
                        self.commands.send((batch, worker))
                    elif kind == "err":
                        out.error = msg[1]
                        self.kill()
                        return out
            except (EOFError, OSError):
                eof = True  # the runner is gone (or going): what it sent has been read
            if eof or not self.alive:
                return self._dead(batch, out, timed_out, timeout)
            if cancelled():
                out.cancelled = True
                self.kill()
                return out
            now = time.monotonic()
            if term_sent:
                if now - term_sent > grace:
                    kill_group(self.proc.pid, signal.SIGKILL)
            elif timeout and self.slot[0] == batch.id and now - self.slot[3] > timeout:
                timed_out = (int(self.slot[1]), int(self.slot[2]))
                term_sent = now
                kill_group(self.proc.pid, signal.SIGTERM)

    def _dead(self, batch: Batch, out: Outcome, timed_out: tuple[int, int] | None, timeout: float) -> Outcome:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        kill_group(self.proc.pid, signal.SIGKILL)  # whatever the task started
        with contextlib.suppress(EOFError, OSError):
            while self.messages.poll(0):  # records flushed just before dying
                msg = self.messages.recv()
                if msg[0] == "rec":
                    out.add(msg)
        if not self.ready:
            out.error = (
                f"the runner process died while loading the plugins: {describe_exit(self.proc.returncode)}"
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
            out.lost = (position, int(slot[2]), status, message, started)
        return out

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

    def __init__(self, payload: Payload) -> None:
        self.key = payload.key
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
                runner.close_pipes()
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
            if runner.alive:
                runner.stop()
            else:
                runner.kill()
                runner.close_pipes()
        if last:  # closed while this runner was busy
            shutil.rmtree(self.folder, ignore_errors=True)

    def close(self, kill: bool) -> None:
        with _LOCK:
            self.closed = True
            idle, self.idle = self.idle, []
            busy = list(self.busy)
        for runner in idle:
            runner.stop()
        if kill:
            for runner in busy:
                kill_group(runner.proc.pid, signal.SIGKILL)
        if not busy:
            shutil.rmtree(self.folder, ignore_errors=True)


def runner_environment() -> dict[str, str]:
    """This process's environment for a runner, which sets the numeric libraries'
    threads to its task's ``cpus`` (1 by default) unless the user set them. A value of 1
    here is Dask's (its nanny sets 1 for every worker process,
    ``distributed.nanny.pre-spawn-environ``), not the user's: it would pin a task that
    asks for ``cpus = 4`` to one thread."""
    env = dict(os.environ)
    for name in THREAD_VARS:
        if env.get(name) == "1":
            del env[name]
    return env


def _pool(payload: Payload) -> _Pool:
    with _LOCK:
        pool = _POOLS.get(payload.key)
    if pool is None:
        _forget_abandoned()
        made = _Pool(payload)
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


def start_runners(payload: Payload, limit: int, wanted: int) -> int:
    """Start runners of this run until it has ``wanted`` on this machine, so that their
    start (a fresh interpreter importing the toolkit and the plugins) overlaps whatever
    the caller does next. Returns at once: they start in a thread, off the caller's
    event loop. Returns how many it starts."""
    pool = _pool(payload)
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
                runner.stop()
                return

    if missing:
        threading.Thread(target=start, name="toolkit-dask-prewarm", daemon=True).start()
    return missing


def prewarm(payload: Payload, limit: int, dask_worker: Any = None) -> int:
    """A runner per thread of this Dask worker, before the run's first batch arrives
    (``client.run`` calls it while the executor checks versions)."""
    return start_runners(payload, limit, dask_worker.state.nthreads)


def run_piece(payload: Payload, batch: Batch, timeout: float, grace: float, limit: int) -> tuple:
    """Run ``batch`` in a runner of this Dask worker; return what happened as a tuple:
    ``(consumed, n, lines, bad, final, elapsed, lost, error, logs, worker)``."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()

    def cancelled() -> bool:
        ts = worker.state.tasks.get(key)
        return ts is None or ts.state in ("cancelled", "released", "forgotten")

    total = Outcome()
    logs: list[tuple[str, str]] = []
    offset = 0
    todo = batch
    try:
        pool = _pool(payload)
    except Exception as exc:
        total.error = f"cannot prepare the plugin files on {worker.address}: {type(exc).__name__}: {exc}"
        return _as_tuple(total, logs, worker.address)
    unstarted = 0
    while True:
        runner = pool.take(limit)
        try:
            out = runner.run(todo, worker.address, timeout, grace, cancelled)
            runner.retiring = runner.retiring or batch.isolate  # isolate = true: a process of its own
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
            position, *rest = out.lost
            total.lost = (offset + position, *rest)
        total.error, total.cancelled = out.error, out.cancelled
        if out.final or not out.ended or out.consumed == 0:
            break
        # the runner retired (max_tasks_per_worker): go on with a fresh one
        offset += out.consumed
        todo = batch._replace(indices=batch.indices[offset:])
    return _as_tuple(total, logs, worker.address)


def _as_tuple(out: Outcome, logs: list[tuple[str, str]], worker: str) -> tuple:
    return (
        out.consumed,
        out.n,
        b"".join(out.lines),
        tuple(out.bad),
        out.final,
        out.elapsed,
        out.lost,
        out.error,
        tuple(logs),
        worker,
    )


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
