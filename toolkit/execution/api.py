"""The executor interface: what the scheduler asks of every executor, built in or not.

The scheduler owns the plan: which instances run, in what batches, with which retries.
An executor owns workers: it runs the batches it is given, reports their records as
they arrive, and reports a batch it could not finish (a worker that died, an attempt
that ran out of time). Worker code is shared: :func:`toolkit.execution.worker.run_batch`
runs a batch anywhere and emits ready-encoded JSON lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

# what workers receive: plain classes of their own module, which a worker imports
# without this one (and attrs)
from toolkit.execution.payload import Batch, TaskRuntime, WorkerSetup

if TYPE_CHECKING:
    from toolkit.recipe.model import Recipe

__all__ = [
    "Batch",
    "Event",
    "Executor",
    "ExecutorContext",
    "Lost",
    "Records",
    "TaskRuntime",
    "Unfinished",
    "WorkerError",
    "WorkerSetup",
]


@attrs.frozen
class Records:
    """Records of a batch: ``lines`` (JSONL bytes) for ``n`` instances; ``consumed``
    positions of the batch are now done; ``bad`` lists ``(index, status)`` of the records
    that are not ok. ``final`` once the batch is complete; ``elapsed`` is its busy time."""

    batch_id: int
    consumed: int
    n: int
    lines: bytes
    bad: tuple[tuple[int, str], ...] = ()
    final: bool = False
    elapsed: float = 0.0


@attrs.frozen
class Lost:
    """The instance at ``position`` of a batch died with its worker (or timed out)."""

    position: int
    attempt: int
    status: str  # crashed | timeout | failed
    message: str
    worker: str
    started: float
    error_type: str | None = None  # the record's error type, when not the status's own


@attrs.frozen
class Unfinished:
    """A batch stopped early: positions from ``consumed`` on (except ``lost``) must run again."""

    batch_id: int
    consumed: int
    lost: Lost | None = None


@attrs.frozen
class WorkerError:
    """A worker could not start (a plugin file that fails to import there, ...)."""

    message: str


Event = Records | Unfinished | WorkerError


class Message(Protocol):
    """``message(text, verbose=False)``: what ``ExecutorContext.message`` is."""

    def __call__(self, text: str, *, verbose: bool = False) -> None: ...


def no_message(text: str, *, verbose: bool = False) -> None:
    """Where an executor's messages go when nobody reports the run (the Python API)."""


@attrs.frozen(kw_only=True)
class ExecutorContext:
    """What an executor factory receives."""

    recipe: Recipe
    workers: int
    setup: WorkerSetup
    options: dict[str, Any] = attrs.field(factory=dict)  # the [executor.NAME] table
    run_dir: Path
    start_method: str | None = None
    grace: float = 5.0
    isolate_all: bool = False
    #: ``message(text, verbose=False)`` prints a line among the run's own (not with
    #: ``-q``); ``verbose=True``: only with ``-v`` (a dashboard's address, say)
    message: Message = no_message


class Executor(Protocol):
    """What the scheduler calls. All methods run in the main process.

    An executor may also have an attribute ``max_batch``: 1 asks the scheduler for
    batches of one instance each (the ``process`` executor: one process per instance);
    absent or 0, the scheduler sizes batches itself. An attribute ``workers`` says how many
    batches it runs at once (a cluster's threads, which may change); absent, the scheduler
    uses ``run.workers``. An attribute ``batch_seconds`` says how long a batch should run
    once instance durations are known (default 0.05 s): longer for an executor whose
    dispatch costs more (a Dask task costs milliseconds)."""

    def start(self) -> None:
        """Start workers (or connect to them)."""

    def capacity(self) -> int:
        """How many more batches the executor wants now."""

    def submit(self, batch: Batch) -> None:
        """Run ``batch``; report it through ``poll``."""

    def poll(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds; return what happened since the last call.

        Also the executor's chance to enforce per-attempt timeouts and replace workers."""

    def shutdown(self, *, kill: bool = False) -> None:
        """Stop every worker: at once if ``kill``, else after their current batches.
        No process may outlive this call."""
