"""The scheduler: turns a recipe into batches, feeds an executor, settles every instance.

It owns what is the same for every executor: the order of tasks (``needs``), batch
sizes, retries after a lost worker or a timeout, keep-going or fail-fast, skipping the
dependents of a failure, Ctrl-C, and handing every record to the collector as it
arrives. Executors only run batches (see ``toolkit.execution.api``).
"""

from __future__ import annotations

import heapq
import json
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from toolkit.errors import RunError
from toolkit.execution.api import Batch, Lost, Records, TaskRuntime, Unfinished, WorkerError
from toolkit.execution.resources import Packer, declares_resources, wants
from toolkit.execution.worker import backoff
from toolkit.records import (
    FAILED_STATUSES,
    STATUSES,
    Instance,
    Status,
    encode_record,
    instance_key,
    make_record,
)

if TYPE_CHECKING:
    from toolkit.execution.api import Executor
    from toolkit.manager import Plugins
    from toolkit.recipe.model import Recipe

#: a batch should keep a worker busy about this long once task durations are known
TARGET_BATCH_SECONDS = 0.05
MAX_BATCH = 20_000
#: batches at least this long are not queued ahead in a worker (see Scheduler._long)
LONG_BATCH_SECONDS = 0.1
POLL_SECONDS = 0.05


class TaskState:
    """A task's progress in this run. A plain class, as is ``_Sent``: the scheduler is
    imported by every run, and an attrs class costs ~2.7 M instructions to build at import
    (its methods are generated and compiled), about 1 ms each."""

    __slots__ = (
        "blockers",
        "counts",
        "dependents",
        "dispatched_once",
        "done",
        "inputs",
        "keep_values",
        "pending",
        "per_item",
        "pos",
        "rt",
        "runnable",
        "settled",
        "started",
        "total",
        "values",
    )

    def __init__(self, pos: int, rt: TaskRuntime, total: int) -> None:
        self.pos = pos
        self.rt = rt
        self.total = total  # instances to settle in this run
        self.pending: deque = deque()  # (range | tuple of indices, attempt)
        self.settled = 0
        self.counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self.started = False
        self.done = False
        self.keep_values = False
        self.values: dict[int, dict[str, Any]] = {}
        self.per_item: float | None = None
        self.dispatched_once = 0
        self.inputs: list[dict[str, Any]] | None = None
        self.blockers = 0  # needs not done yet
        self.dependents: list[TaskState] = []
        self.runnable = False  # its position is in Scheduler._runnable

    @property
    def spec(self) -> Any:
        return self.rt.spec

    @property
    def name(self) -> str:
        return self.rt.spec.name

    def failures(self) -> int:
        counts = self.counts
        return sum(counts[s] for s in FAILED_STATUSES) + counts[Status.SKIPPED]


class _Sent:
    """A batch in flight."""

    __slots__ = ("batch", "consumed", "held", "sent_at")

    def __init__(self, batch: Batch, sent_at: float = 0.0, held: tuple[int, int] | None = None) -> None:
        self.batch = batch
        self.consumed = 0
        self.sent_at = sent_at
        self.held = held  # (cpus, memory) it counts for, when packing


class Interrupt:
    """First Ctrl-C or SIGTERM: stop starting; second Ctrl-C: kill now."""

    def __init__(self) -> None:
        self.count = 0
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def compress(indices: Iterable[int]) -> list[range]:
    """Runs of consecutive indices as ranges: cheap to hold and to send."""
    out: list[range] = []
    start = prev = None
    for i in indices:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            out.append(range(start, prev + 1))
            start = prev = i
    if start is not None:
        out.append(range(start, prev + 1))
    return out


class Scheduler:
    def __init__(
        self,
        recipe: Recipe,
        tasks: list[TaskRuntime],
        executor: Executor,
        *,
        workers: int,
        write: Callable[[bytes, int, tuple[str, ...]], None],
        plugins: Plugins | None = None,
        reporter: Any = None,
        todo: dict[str, list[int] | None] | None = None,
        previous_values: dict[str, dict[int, dict[str, Any]]] | None = None,
        grace: float = 5.0,
        isolate_all: bool = False,
        cache: Any = None,
        reconsider: dict[str, tuple[str | None, list[int]]] | None = None,
    ) -> None:
        self.recipe = recipe
        self.executor = executor
        self._workers = max(1, workers)
        self.write = write
        self.plugins = plugins
        self.reporter = reporter
        self.grace = grace
        self.isolate_all = isolate_all
        # an executor that runs one process per instance says so (Executor.max_batch)
        self.one_per_batch = getattr(executor, "max_batch", 0) == 1
        # one whose dispatch costs more (a Dask task: milliseconds) asks for longer batches
        self.batch_seconds = getattr(executor, "batch_seconds", None) or TARGET_BATCH_SECONDS
        self.keep_going = recipe.run.keep_going
        self.states: list[TaskState] = []
        by_name: dict[str, TaskState] = {}
        needed = {n for rt in tasks for n in rt.spec.needs}
        for pos, rt in enumerate(tasks):
            wanted = (todo or {}).get(rt.spec.name)
            if wanted is None:
                state = TaskState(pos=pos, rt=rt, total=rt.spec.count())
                state.pending.append((range(rt.spec.space()), 1))
            else:
                state = TaskState(pos=pos, rt=rt, total=len(wanted))
                state.pending.extend((r, 1) for r in compress(wanted))
            state.keep_values = rt.spec.name in needed
            if previous_values and rt.spec.name in previous_values:
                state.values.update(previous_values[rt.spec.name])
            self.states.append(state)
            by_name[rt.spec.name] = state
        self.by_name = by_name
        # linear in the number of tasks (a recipe may have 10,000 [[task]] tables): a task
        # counts its needs not done yet and starts when that reaches 0; the loop looks
        # only at tasks that became ready, that settled records, or that have pending work
        self._ready: deque[TaskState] = deque()
        self._touched: list[TaskState] = []  # settled records since the last _refresh
        self._runnable: list[int] = []  # heap of positions of started tasks with pending work
        self._undone = len(self.states)
        for state in self.states:
            needs = set(state.spec.needs)
            state.blockers = len(needs)
            for need in needs:
                by_name[need].dependents.append(state)
            if not needs:
                self._ready.append(state)
        self.sent: dict[int, _Sent] = {}
        self.delayed: list[tuple[float, int, int, int]] = []  # ready at, task, index, attempt
        self.next_id = 0
        self.stopping = False
        self.worker_error: str | None = None
        # incremental runs: the results cache (a toolkit.store.incremental.CacheUse), and
        # on --resume the instances kept ok that run again when their inputs changed
        self.cache = cache
        self.reconsider = reconsider or {}
        self.input_digests: dict[str, str] = {}
        self.rerun_kept = 0
        # resources: packing only when a task declares them (see toolkit.execution.resources)
        self.packer: Packer | None = None
        if declares_resources(rt.spec for rt in tasks):
            self.packer = Packer(recipe.run.memory_budget(), lambda: self.workers)
        self.hook_start = plugins is not None and plugins.has_impls("toolkit_task_start")
        self.hook_finish = plugins is not None and plugins.has_impls("toolkit_task_finish")

    @property
    def workers(self) -> int:
        """How many batches run at once: the executor's ``workers`` when it says (a Dask
        cluster's threads, known once connected), else ``run.workers``."""
        n = getattr(self.executor, "workers", None)
        return n if isinstance(n, int) and n > 0 else self._workers

    # -- readiness ---------------------------------------------------------------
    def _upstream_failed(self, state: TaskState) -> bool:
        """Whether a need of ``state`` (all done) did not fully succeed."""
        return any(self.by_name[need].failures() for need in state.spec.needs)

    def _inputs(self, state: TaskState) -> list[dict[str, Any]] | None:
        if not state.rt.takes_inputs:
            return None
        inputs: list[dict[str, Any]] = []
        for need in state.spec.needs:
            values = self.by_name[need].values
            inputs.extend(values[i] for i in sorted(values))
        return inputs

    def _refresh(self) -> None:
        """Start or skip the tasks whose needs have settled; finish settled tasks."""
        while self._ready or self._touched:
            while self._ready:
                state = self._ready.popleft()
                state.started = True
                if self._upstream_failed(state):
                    if not self.stopping:
                        self._skip_all(state)
                    else:
                        state.pending.clear()
                else:
                    state.inputs = self._inputs(state)
                    self._on_start(state)
                    self._wake(state)
                self._touched.append(state)
            touched, self._touched = self._touched, []
            for state in touched:
                if state.started and not state.done and state.settled >= state.total:
                    state.done = True
                    self._undone -= 1
                    for down in state.dependents:
                        down.blockers -= 1
                        if down.blockers == 0:
                            self._ready.append(down)

    def _wake(self, state: TaskState) -> None:
        """``state`` has pending work: let _dispatch find it."""
        if state.pending and not state.runnable:
            state.runnable = True
            heapq.heappush(self._runnable, state.pos)

    def _on_start(self, state: TaskState) -> None:
        """A task is about to start, its upstream values known: run again the instances
        a resume kept whose inputs changed, and take what the cache holds."""
        upstream = ""
        if state.rt.takes_inputs and (state.spec.needs or state.name in self.reconsider):
            from toolkit.store.fingerprint import inputs_of

            upstream = self.input_digests[state.name] = inputs_of(state.inputs)
        again = self.reconsider.get(state.name)
        if again is not None and again[0] != upstream and again[1]:
            state.pending.extend((r, 1) for r in compress(again[1]))
            state.total += len(again[1])
            self.rerun_kept += len(again[1])
        if self.cache is None or not state.pending:
            return
        indices = (
            state.pending[0][0]
            if len(state.pending) == 1
            else [i for seq, _attempt in state.pending for i in seq]
        )
        found = self.cache.lookup(
            state.rt, upstream, indices, need_indices=state.keep_values or self.hook_finish
        )
        if not found.n:
            return
        state.pending.clear()
        state.pending.extend((r, 1) for r in compress(found.misses))
        for lines, n in found.parts():  # indices only come with one part
            self._accept(state, lines, n, (), found.indices)

    def _skip_all(self, state: TaskState) -> None:
        failed = [n for n in state.spec.needs if self.by_name[n].failures()]
        message = f"not run: it needs {', '.join(repr(n) for n in failed)}, which did not fully succeed"
        lines, n = [], 0
        for seq, _attempt in state.pending:
            for index in seq:
                rec = self._parent_record(state, index, Status.SKIPPED, message, attempts=0)
                if rec is None:
                    continue
                lines.append(rec)
                n += 1
                if n >= 4096:
                    self._settle_parent(state, lines, Status.SKIPPED)
                    lines, n = [], 0
        if lines:
            self._settle_parent(state, lines, Status.SKIPPED)
        state.pending.clear()

    # -- records -----------------------------------------------------------------
    def _instance(self, state: TaskState, index: int) -> Instance | None:
        spec = state.spec
        combo = spec.combo(index)
        if combo is None:
            return None
        params = spec.shown_params(spec.params_for(combo))
        return Instance(
            task=spec.name,
            index=index,
            id=spec.instance_id(combo),
            key=instance_key(spec.name, spec.uses, state.rt.version, params),
            params=params,
        )

    def _parent_record(
        self,
        state: TaskState,
        index: int,
        status: str,
        message: str,
        *,
        attempts: int,
        started: float | None = None,
        worker: str | None = None,
        error_type: str | None = None,
    ) -> str | None:
        inst = self._instance(state, index)
        if inst is None:
            return None
        error_type = error_type or {
            Status.SKIPPED: "Skipped",
            Status.TIMEOUT: "Timeout",
            Status.CRASHED: "WorkerDied",
        }.get(status, "Failed")
        record = make_record(
            task=inst.task,
            instance=inst.id,
            key=inst.key,
            params=inst.params,
            status=status,
            error={"type": error_type, "message": message, "traceback": ""},
            attempts=attempts,
            started=started,
            finished=time.time() if started else None,
            worker=worker,
        )
        return encode_record(record)[0]

    def _settle_parent(self, state: TaskState, lines: list[str], status: str) -> None:
        blob = ("\n".join(lines) + "\n").encode()
        self._accept(state, blob, len(lines), [(None, status)] * len(lines), positions=None)

    def _accept(
        self,
        state: TaskState,
        lines: bytes,
        n: int,
        bad: Iterable[tuple[Any, str]],
        positions: list[int] | None,
    ) -> None:
        """Write ``n`` records of ``state`` and count them."""
        if n == 0:
            return
        statuses = tuple(status for _index, status in bad)
        self.write(lines, n, statuses)
        for status in statuses:
            state.counts[status] += 1
            if status in FAILED_STATUSES and not self.keep_going and not self.stopping:
                self.stopping = True
        state.counts[Status.OK] += n - len(statuses)
        state.settled += n
        if state.settled >= state.total:
            self._touched.append(state)
        if state.keep_values or self.hook_finish:
            self._decode(state, lines, positions)
        if self.reporter is not None:
            self.reporter.records(state.name, n, list(statuses))

    def _decode(self, state: TaskState, lines: bytes, positions: list[int] | None) -> None:
        records = [json.loads(line) for line in lines.splitlines() if line]
        if positions is None:
            positions = [None] * len(records)  # type: ignore[list-item]
        for index, rec in zip(positions, records, strict=False):
            if state.keep_values and rec["status"] == Status.OK and index is not None:
                state.values[index] = {
                    "instance": rec["instance"],
                    "params": rec["params"],
                    "value": rec["value"],
                }
            if self.hook_finish:
                inst = Instance(
                    task=state.name,
                    index=index if index is not None else -1,
                    id=rec["instance"],
                    key=rec["key"],
                    params=rec["params"],
                )
                self.plugins.call("toolkit_task_finish", instance=inst, record=rec)

    def _positions(self, batch: Batch, start: int, stop: int, n: int, state: TaskState) -> list[int] | None:
        """The indices whose records arrived (excluded matrix entries leave none)."""
        if not (state.keep_values or self.hook_finish):
            return None
        spec = state.spec
        out = [i for i in batch.indices[start:stop] if spec.combo(i) is not None]
        return out[:n]

    def _on_records(self, ev: Records) -> None:
        sent = self.sent.get(ev.batch_id)
        if sent is None:
            return
        state = self.states[sent.batch.task]
        positions = self._positions(sent.batch, sent.consumed, ev.consumed, ev.n, state)
        sent.consumed = ev.consumed
        self._accept(state, ev.lines, ev.n, ev.bad, positions)
        if self.cache is not None and ev.n:
            self.cache.landed(state.name, ev.lines)
        if ev.final:
            del self.sent[ev.batch_id]
            if sent.held is not None:
                self.packer.release(sent.held)  # type: ignore[union-attr]
            if ev.elapsed and ev.consumed:
                per = ev.elapsed / ev.consumed
                state.per_item = per if state.per_item is None else 0.5 * (state.per_item + per)

    def _on_unfinished(self, ev: Unfinished) -> None:
        sent = self.sent.pop(ev.batch_id, None)
        if sent is None:
            return
        if sent.held is not None:
            self.packer.release(sent.held)  # type: ignore[union-attr]
        batch = sent.batch
        state = self.states[batch.task]
        lost = ev.lost
        rest = [
            i
            for p, i in enumerate(batch.indices)
            if p >= ev.consumed and (lost is None or p != lost.position)
        ]
        if rest and not self.stopping:
            state.pending.appendleft((tuple(rest), batch.attempt))
            self._wake(state)
        elif rest:
            pass  # stopping: they stay not run
        if lost is not None:
            self._on_lost(state, batch, lost)

    def _on_lost(self, state: TaskState, batch: Batch, lost: Lost) -> None:
        index = batch.indices[lost.position]
        if lost.attempt <= state.spec.retries and not self.stopping:
            ready = time.monotonic() + backoff(lost.attempt)
            heapq.heappush(self.delayed, (ready, state.pos, index, lost.attempt + 1))
            return
        line = self._parent_record(
            state,
            index,
            lost.status,
            lost.message,
            attempts=lost.attempt,
            started=lost.started,
            worker=lost.worker,
            error_type=lost.error_type,
        )
        if line is not None:
            self._accept(state, (line + "\n").encode(), 1, [(index, lost.status)], [index])

    # -- dispatch ----------------------------------------------------------------
    def _batch_size(self, state: TaskState) -> int:
        if self._isolated(state.spec) or self.isolate_all or self.one_per_batch:
            return 1
        remaining = state.total - state.settled
        spread = max(1, remaining // (self.workers * 4))
        if state.per_item is None:
            return 1 if state.dispatched_once < self.workers else min(spread, 64)
        return max(1, min(MAX_BATCH, spread, int(self.batch_seconds / max(state.per_item, 1e-7))))

    def _take(self, state: TaskState, size: int) -> tuple[Any, int] | None:
        while state.pending:
            seq, attempt = state.pending[0]
            if not len(seq):
                state.pending.popleft()
                continue
            if len(seq) <= size:
                state.pending.popleft()
                return seq, attempt
            state.pending[0] = (seq[size:], attempt)
            return seq[:size], attempt
        return None

    def _submit(self, state: TaskState, indices: Any, attempt: int) -> None:
        batch = Batch(
            id=self.next_id,
            task=state.pos,
            indices=indices,
            attempt=attempt,
            inputs=state.inputs,
            isolate=self._isolated(state.spec),
        )
        self.next_id += 1
        state.dispatched_once += 1
        if self.hook_start:
            for index in indices:
                inst = self._instance(state, index)
                if inst is not None:
                    self.plugins.call("toolkit_task_start", instance=inst)
        self.executor.submit(batch)
        held = None if self.packer is None else self.packer.hold(state.pos, wants(state.spec))
        self.sent[batch.id] = _Sent(batch=batch, sent_at=time.monotonic(), held=held)

    @staticmethod
    def _isolated(spec: Any) -> bool:
        """Whether each instance of ``spec`` runs in a process of its own: ``isolate``,
        or a ``memory`` limit (the process's memory is then the instance's own)."""
        return spec.isolate or getattr(spec, "memory", None) is not None

    def _room(self, state: TaskState) -> bool:
        """Whether the next batch of ``state`` fits beside those in flight (packing)."""
        return self.packer is None or self.packer.admit(state.pos, wants(state.spec))

    def _forget_waiting(self) -> None:
        """A task that waited for room but has nothing left to start waits no more."""
        packer = self.packer
        if packer is None or packer.waiting is None:
            return
        state = self.states[packer.waiting]
        if self.stopping or not (state.pending or any(pos == state.pos for _, pos, _, _ in self.delayed)):
            packer.waiting = None

    def _dispatch(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        self._forget_waiting()
        while self.delayed and self.delayed[0][0] <= now and self.executor.capacity() > 0:
            _, pos, index, attempt = self.delayed[0]
            if not self._room(self.states[pos]):
                break
            heapq.heappop(self.delayed)
            self._submit(self.states[pos], (index,), attempt)
        # the tasks with pending work, lowest position first, until the executor is full
        runnable, held_back = self._runnable, []
        while runnable and self.executor.capacity() > 0:
            state = self.states[heapq.heappop(runnable)]
            while self.executor.capacity() > 0:
                if not self._room(state):
                    break
                size = self._batch_size(state)
                if self._long(state, size) and len(self.sent) >= self.workers:
                    break
                taken = self._take(state, size)
                if taken is None:
                    break
                self._submit(state, *taken)
            if state.pending:
                held_back.append(state.pos)
            else:
                state.runnable = False
        for pos in held_back:
            heapq.heappush(runnable, pos)

    def _long(self, state: TaskState, size: int) -> bool:
        """Whether a batch of ``size`` instances of ``state`` takes long enough that
        giving a worker its next batch ahead of time gains nothing; it would only let the
        other workers run dry at the end while one still holds two (Pool's shared queue
        has no such tail), so such batches go out one per worker, as workers free up."""
        long = max(LONG_BATCH_SECONDS, 2 * self.batch_seconds)
        return state.per_item is not None and state.per_item * size >= long

    def _finished(self) -> bool:
        if self.sent:
            return False
        if self.stopping:
            return True
        if self.delayed:
            return False
        return self._undone == 0

    # -- the loop ----------------------------------------------------------------
    def run(self) -> str:
        """Run to the end; return ``succeeded``, ``failed`` or ``interrupted``."""
        interrupted = False
        deadline = None
        broken = True  # until the loop ends as it should: an error (a plugin's) kills the workers
        with Interrupt() as intr:
            # tasks ready now start here: those the cache holds whole settle at once, and
            # a run with nothing left to run never starts a worker
            self._refresh()
            started = not self._finished()
            if started:
                self.executor.start()
            try:
                while True:
                    if intr.count and not interrupted:
                        interrupted = True
                        self.stopping = True
                        deadline = time.monotonic() + self.grace
                        if self.reporter is not None:
                            self.reporter.message(
                                f"interrupted: waiting up to {self.grace:g}s for running instances"
                                " (Ctrl-C again to kill them now)"
                            )
                    if interrupted and (intr.count > 1 or time.monotonic() > deadline):
                        self.executor.shutdown(kill=True)
                        break
                    self._refresh()
                    self._dispatch()
                    if self._finished():
                        break
                    for ev in self.executor.poll(POLL_SECONDS):
                        if isinstance(ev, Records):
                            self._on_records(ev)
                        elif isinstance(ev, Unfinished):
                            self._on_unfinished(ev)
                        elif isinstance(ev, WorkerError):
                            self.worker_error = self.worker_error or ev.message
                            self.stopping = True
                    if self.reporter is not None:
                        self.reporter.tick()
                self._refresh()
                broken = False
            finally:
                if started:
                    self.executor.shutdown(kill=interrupted or broken)
        if self.worker_error:
            raise RunError(f"workers could not run the tasks: {self.worker_error}")
        if interrupted:
            return "interrupted"
        complete = self._undone == 0
        failures = sum(s.failures() for s in self.states)
        return "succeeded" if complete and not failures else "failed"

    def counts(self) -> dict[str, int]:
        total = dict.fromkeys(STATUSES, 0)
        for s in self.states:
            for k, v in s.counts.items():
                total[k] += v
        return total

    def not_run(self) -> int:
        return sum(max(0, s.total - s.settled) for s in self.states)
