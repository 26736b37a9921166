"""The ``dask`` executor, main-process side: batches become Dask futures.

Each batch the scheduler submits becomes one ``client.submit`` of
:func:`toolkit_dask.remote.run_piece`, which runs the batch in a runner process on a
Dask worker and returns its records as one JSON-lines blob. Futures report through a
done-callback into a queue that ``poll`` waits on; finished ones are gathered together.

A Dask worker that dies while running a batch is Dask's to handle: the scheduler runs
the task again elsewhere, up to its ``allowed-failures``, then the future fails with
``KilledWorker``. A failed batch of several instances is then split into one future per
instance, so that only the instance that takes workers down is charged: its
``KilledWorker`` becomes a ``crashed`` loss, which the toolkit's scheduler retries per
the task's ``retries`` like any other.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from toolkit.execution.api import Batch, Event, ExecutorContext, Lost, Records, Unfinished, WorkerError
from toolkit_dask.connect import connect_client, dashboard_url, start_local_cluster
from toolkit_dask.options import DaskOptions
from toolkit_dask.remote import close_runners, prewarm, run_piece, start_runners
from toolkit_dask.resources import declared, per_task
from toolkit_dask.shipping import Payload, build_payload

#: batches in flight per worker thread: the one it runs and the next
DEPTH = 2
#: how long a batch should run: a Dask task costs a few milliseconds of CPU between
#: client, scheduler and worker, which 0.05 s batches (the pool's) would pay 5-10% for
BATCH_SECONDS = 0.2
#: seconds between SIGTERM and SIGKILL for an attempt that ran out of time
KILL_GRACE = 2.0
#: seconds between two looks at the cluster's size and health
CHECK_EVERY = 2.0


@attrs.define(eq=False)
class _Piece:
    """Positions ``[start, stop)`` of a batch, running as one Dask future."""

    start: int
    stop: int
    future: Any
    submitted: float
    result: tuple | None = None
    failure: BaseException | None = None
    gather_failures: int = 0

    @property
    def settled(self) -> bool:
        return self.result is not None or self.failure is not None


@attrs.define(eq=False)
class _Flight:
    batch: Batch
    pieces: list[_Piece] = attrs.field(factory=list)
    next: int = 0  # the first piece not reported yet
    elapsed: float = 0.0


def _bounded(func: Callable[[], Any], seconds: float) -> bool:
    """Call ``func`` in a thread, for what it does only; stop waiting after ``seconds``.
    Cleaning up after a lost cluster fails in many ways, none of them the user's concern."""

    def call() -> None:
        try:
            func()
        except BaseException:
            pass

    thread = threading.Thread(target=call, name="toolkit-dask-cleanup", daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


class DaskExecutor:
    batch_seconds = BATCH_SECONDS

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context
        self.options = DaskOptions.from_table(context.options)
        self.timeouts = [float(t.timeout or 0) for t in context.recipe.tasks]
        #: per task, the Dask resources its batches ask for (see toolkit_dask.resources)
        self.resources: list[dict[str, float] | None] = [None] * len(context.recipe.tasks)
        self.limit = int(getattr(context.recipe.run, "max_tasks_per_worker", 0) or 0)
        self.run_id = Path(context.run_dir).name
        self.client: Any = None
        self.cluster: Any = None
        self.payload: Payload | None = None
        self.flights: dict[int, _Flight] = {}
        self.done: queue.Queue[tuple[int, _Piece]] = queue.Queue()
        self.threads = max(1, context.workers)
        self.closing = False
        self._keys = itertools.count()
        self._checked = 0.0
        self._no_workers_since: float | None = None
        self._log_level = logging.NOTSET

    # -- life cycle ----------------------------------------------------------
    @property
    def in_process(self) -> bool:
        """Whether the workers are threads of this process (a LocalCluster's default)."""
        return not self.options.external and not dict(self.options.local).get("processes")

    def start(self) -> None:
        try:
            self.payload = build_payload(self.context.setup, self.run_id)
            if self.in_process:
                # their runners will be children of this process: start them now, to
                # import the toolkit and the plugins on another core while Dask is imported
                per_worker = dict(self.options.local).get("threads_per_worker", 1)
                start_runners(self.payload, self.limit, max(1, self.context.workers) * per_worker)
            self._start_dask()
        except BaseException:
            self.shutdown(kill=True)  # the scheduler calls shutdown only once started
            raise

    def _start_dask(self) -> None:
        import distributed  # noqa: F401  (configures its loggers: before changing one)

        # what the client would log (a lost connection, a reconnect) the run reports itself
        client_log = logging.getLogger("distributed.client")
        self._log_level = client_log.level
        client_log.setLevel(logging.CRITICAL)
        if self.options.external:
            self.client = connect_client(self.options)
        else:
            self.cluster, self.client = start_local_cluster(self.options, self.context.workers)
        self._tell_dashboard()
        if not self.in_process:
            try:  # runners start while the versions are checked
                self.client.run(prewarm, self.payload, self.limit, on_error="ignore")
            except Exception:  # the first batches start them instead
                pass
        if self.options.external:
            from toolkit_dask.versions import check_cluster

            check_cluster(self.client, self._task_modules(), self.options.describe())
            self.resources = per_task(
                self.context.recipe.tasks, declared(self.client), self.options.describe()
            )
        self._check(force=True)

    def _tell_dashboard(self) -> None:
        """Say where the dashboard is: always for a LocalCluster (it lives as long as the
        run), with ``-v`` for a running cluster (its users know where it is)."""
        if self.cluster is not None and dict(self.options.local).get("dashboard_address") is None:
            return  # dashboard_address = false
        url = dashboard_url(self.cluster, self.client)
        if url is None:
            return
        if self.cluster is not None and importlib.util.find_spec("bokeh") is None:
            url += " (it needs bokeh: pip install bokeh)"
        self.context.message(f"Dask dashboard: {url}", verbose=self.options.external)

    def _task_modules(self) -> set[str]:
        """Modules of the recipe's task functions that workers must have installed."""
        from toolkit.execution.worker import load_setup

        shipped = {Path(f).stem for f in self.context.setup.files}
        runtimes = load_setup(self.context.setup._replace(files=()))  # imported here already
        return {rt.func.__module__ for rt in runtimes} - shipped

    # -- the executor interface ----------------------------------------------
    @property
    def workers(self) -> int:
        """How many batches the cluster runs at once: its threads, known once started
        and followed as workers come and go. The scheduler sizes batches by it."""
        return self.threads

    def capacity(self) -> int:
        if self.closing:
            return 0
        return max(0, DEPTH * self.threads - len(self.flights))

    def submit(self, batch: Batch) -> None:
        flight = _Flight(batch=batch)
        self.flights[batch.id] = flight
        flight.pieces.append(self._piece(batch, 0, len(batch.indices)))

    def _piece(self, batch: Batch, start: int, stop: int) -> _Piece:
        whole = start == 0 and stop == len(batch.indices)
        sub = batch if whole else batch._replace(indices=batch.indices[start:stop])
        if self.context.isolate_all and not sub.isolate:
            sub = sub._replace(isolate=True)
        future = self.client.submit(
            run_piece,
            self.payload,
            sub,
            self.timeouts[batch.task],
            KILL_GRACE,
            self.limit,
            key=f"toolkit-{self.payload.key}-{batch.id}-{start}-{next(self._keys)}",
            pure=False,
            resources=self.resources[batch.task],
        )
        piece = _Piece(start=start, stop=stop, future=future, submitted=time.time())
        self._listen(future, batch.id, piece)
        return piece

    def _listen(self, future: Any, batch_id: int, piece: _Piece) -> None:
        future.add_done_callback(lambda _f: self.done.put((batch_id, piece)))

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        settled: list[tuple[int, _Piece]] = []
        try:
            settled.append(self.done.get(timeout=timeout) if timeout > 0 else self.done.get_nowait())
            while True:
                settled.append(self.done.get_nowait())
        except queue.Empty:
            pass
        if settled:
            self._collect([(b, p) for b, p in settled if b in self.flights and not p.settled])
            for batch_id in dict.fromkeys(b for b, _p in settled):
                flight = self.flights.get(batch_id)
                if flight is not None:
                    self._report(flight, events)
        self._check(events=events)
        return events

    # -- results -------------------------------------------------------------
    def _collect(self, settled: list[tuple[int, _Piece]]) -> None:
        from distributed import CancelledError

        pieces = [p for _b, p in settled]
        finished = [p for p in pieces if p.future.status == "finished"]
        if finished:
            try:
                results = self.client.gather([p.future for p in finished])
            except Exception as exc:  # one was lost or cancelled meanwhile: its status says which
                results = [None] * len(finished)
                for p in finished:
                    p.gather_failures += 1
                    if p.gather_failures >= 3:  # not a passing loss: give up on it
                        p.failure = exc
            for p, result in zip(finished, results, strict=True):
                p.result = result
        for batch_id, p in settled:
            if p.settled:
                continue
            if p.future.status == "error":
                p.failure = p.future.exception()
            elif p.future.status == "cancelled":
                p.failure = CancelledError("the Dask scheduler dropped the task")
            else:  # its result was lost with a worker: Dask computes it again; hear of it then
                self._listen(p.future, batch_id, p)
        for p in pieces:
            if p.settled:
                p.future = None  # let Dask forget it

    def _report(self, flight: _Flight, events: list[Event]) -> None:
        """Events for the pieces settled in order from ``flight.next``."""
        from distributed import CancelledError

        batch = flight.batch
        while flight.next < len(flight.pieces):
            piece = flight.pieces[flight.next]
            if not piece.settled:
                return
            if piece.failure is not None:
                if isinstance(piece.failure, CancelledError) and self._check(force=True, events=events):
                    return  # not the task's fault: the scheduler is gone
                if self._killed(piece.failure) and piece.stop - piece.start > 1:
                    # find the instance that takes workers down: one future each
                    flight.pieces[flight.next : flight.next + 1] = [
                        self._piece(batch, i, i + 1) for i in range(piece.start, piece.stop)
                    ]
                    return
                self._end(flight, piece.start, self._lost(batch, piece), events)
                if not self._killed(piece.failure):
                    events.append(
                        WorkerError(f"a Dask task failed: {type(piece.failure).__name__}: {piece.failure}")
                    )
                    self.closing = True
                return
            consumed, n, lines, bad, final, elapsed, lost, error, logs, worker = piece.result
            self._write_logs(logs)
            flight.elapsed += elapsed
            last = flight.next == len(flight.pieces) - 1
            complete = final and last
            if n or complete:
                events.append(
                    Records(
                        batch.id,
                        piece.start + consumed,
                        n,
                        lines,
                        bad,
                        complete,
                        flight.elapsed if complete else 0.0,
                    )
                )
            if complete:
                del self.flights[batch.id]
                return
            if error is not None or lost is not None or not final:
                loss = None if lost is None else attrs.evolve(lost, position=piece.start + lost.position)
                self._end(flight, piece.start + consumed, loss, events)
                if error is not None:
                    events.append(WorkerError(f"on {worker}: {error}"))
                    self.closing = True
                return
            flight.next += 1

    @staticmethod
    def _killed(exc: BaseException) -> bool:
        from distributed import CancelledError
        from distributed.scheduler import KilledWorker

        return isinstance(exc, KilledWorker | CancelledError)

    def _lost(self, batch: Batch, piece: _Piece) -> Lost | None:
        exc = piece.failure
        if not self._killed(exc):
            return None
        worker = getattr(getattr(exc, "last_worker", None), "address", None) or "dask"
        name = type(exc).__name__
        return Lost(
            position=piece.start,
            attempt=batch.attempt,
            status="crashed",
            message=f"the Dask worker running it died ({name}: {exc})",
            worker=worker,
            started=piece.submitted,
        )

    def _end(self, flight: _Flight, consumed: int, lost: Lost | None, events: list[Event]) -> None:
        """The batch stops here: report it unfinished and drop its other futures."""
        events.append(Unfinished(flight.batch.id, consumed, lost))
        del self.flights[flight.batch.id]
        rest = [p.future for p in flight.pieces if p.future is not None]
        if rest:
            try:
                self.client.cancel(rest, force=True)
            except Exception:  # the scheduler is gone: so are they
                pass

    def _write_logs(self, logs: tuple[tuple[str, str], ...]) -> None:
        if not logs:
            return
        folder = Path(self.context.run_dir) / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in logs:
            with open(folder / name, "a", encoding="utf-8") as f:
                f.write(text)

    # -- the cluster's health ------------------------------------------------
    def _problem(self) -> str | None:
        """What makes the cluster unusable now, if anything."""
        where = self.options.describe()
        if self.client.status not in ("running", "newly-created"):
            return f"lost the connection to the Dask scheduler at {where} ({self.client.status})"
        try:
            threads = sum(self.client.nthreads().values())
        except Exception as exc:
            return f"lost the connection to the Dask scheduler at {where}: {exc}"
        now = time.monotonic()
        if threads:
            self.threads = threads
            self._no_workers_since = None
            return None
        self._no_workers_since = self._no_workers_since or now
        if now - self._no_workers_since > self.options.timeout:
            return f"the Dask cluster at {where} has had no workers for {self.options.timeout:g}s"
        return None

    def _check(self, *, force: bool = False, events: list[Event] | None = None) -> bool:
        """Look at the cluster now and then; give the run up if it is gone. True if gone."""
        now = time.monotonic()
        if not force and now - self._checked < CHECK_EVERY:
            return False
        self._checked = now
        problem = self._problem()
        if problem is None or events is None:
            return False
        events.append(WorkerError(problem))
        self.closing = True
        for flight in list(self.flights.values()):
            done = flight.pieces[flight.next].start if flight.next < len(flight.pieces) else 0
            self._end(flight, done, None, events)
        return True

    def shutdown(self, *, kill: bool = False) -> None:
        self.closing = True
        client, self.client = self.client, None
        if client is not None:
            self._release(client, kill)
        if self.in_process and self.payload is not None:
            close_runners(self.payload.key, kill)  # also those started before the cluster
        if self.cluster is not None:
            cluster, self.cluster = self.cluster, None
            _bounded(lambda: cluster.close(timeout=10), 15)
        logging.getLogger("distributed.client").setLevel(self._log_level)

    def _release(self, client: Any, kill: bool) -> None:
        """Cancel what is left, stop this run's runners on every worker, disconnect."""
        futures = [p.future for f in self.flights.values() for p in f.pieces if p.future is not None]
        self.flights.clear()
        if futures and not kill:
            from distributed import wait

            try:
                wait(futures, timeout=self.context.grace)
            except Exception:
                pass
        if futures:
            _bounded(lambda: client.cancel(futures, force=True), 10)
        if self.payload is not None and client.status == "running" and not self.in_process:
            key = self.payload.key
            _bounded(lambda: client.run(close_runners, key, kill, on_error="ignore"), 10)
        _bounded(lambda: client.close(timeout=10), 15)
