"""Per-task resources (``cpus``, ``memory``) in the supervisor: which batches may start
now (:class:`Packer`), and how much memory an instance's processes use (:func:`tree_memory`).
Worker-side, the ``cpus`` of a task reaches the instance through its environment
(:func:`toolkit.threads.export_cpus`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolkit.execution.containment import children

#: a task whose next batch does not fit waits while at most this many times ``workers``
#: batches of other tasks start before it; then nothing else starts until it fits
PASSES_PER_WORKER = 2
#: seconds between two readings of a limited instance's memory: at 1 GiB/s, 20 MiB
MEMORY_SAMPLE = 0.02


def wants(spec: Any) -> tuple[int, int]:
    """``(cpus, memory bytes)`` an instance of ``spec`` asks for (0: no memory asked)."""
    return getattr(spec, "cpus", 1), getattr(spec, "memory", None) or 0


def declares_resources(specs: Any) -> bool:
    """Whether any task asks for more than one CPU or for memory: packing costs nothing
    otherwise (a pool keeps two batches per worker in flight, which packing would not)."""
    return any(wants(spec) != (1, 0) for spec in specs)


class Packer:
    """Counts the cpus and memory of the batches in flight; says whether one more fits.

    Greedy in instance order: a task whose batch does not fit lets later ones start
    beside what runs, but only ``PASSES_PER_WORKER * workers`` of them; then it is
    *waiting*, and nothing else starts until it fits, so a big instance never starves."""

    def __init__(self, budget: int, workers: Callable[[], int]) -> None:
        self.budget = budget
        self.workers = workers
        self.cpus = 0
        self.memory = 0
        self.waiting: int | None = None  # the task (its position) that waits for room
        self.passes = 0

    def fits(self, need: tuple[int, int]) -> bool:
        if not self.cpus and not self.memory:
            return True  # alone, anything runs (cpus above workers, a budget that shrank)
        workers = self.workers()
        return self.cpus + min(need[0], workers) <= workers and self.memory + need[1] <= self.budget

    def admit(self, task: int, need: tuple[int, int]) -> bool:
        """Whether a batch of ``task`` may start now (and if not, mark it waiting)."""
        if self.waiting is not None and self.waiting != task and self.passes >= self.limit():
            return False  # the waiting task's turn: room is kept for it
        if self.fits(need):
            return True
        if self.waiting is None or task < self.waiting:  # the first in instance order waits
            self.waiting, self.passes = task, 0
        return False

    def limit(self) -> int:
        return PASSES_PER_WORKER * self.workers()

    def hold(self, task: int, need: tuple[int, int]) -> tuple[int, int]:
        """Count a batch of ``task`` that starts; what to :meth:`release` when it ends."""
        held = (min(need[0], self.workers()), need[1])
        self.cpus += held[0]
        self.memory += held[1]
        if self.waiting == task:
            self.waiting = None
        elif self.waiting is not None:
            self.passes += 1
        return held

    def release(self, held: tuple[int, int]) -> None:
        self.cpus -= held[0]
        self.memory -= held[1]


def _private(pid: int) -> int:
    """Bytes of resident memory that belong to ``pid`` alone (``Private_*`` of
    smaps_rollup: pages shared with the supervisor it was forked from do not count)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return _anonymous(pid)
    except OSError:
        return 0
    total = 0
    for line in data.splitlines():
        if line.startswith(b"Private_"):
            total += int(line.split()[1])
    return total * 1024


def _anonymous(pid: int) -> int:  # pragma: no cover - a kernel older than 4.14
    import os

    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            fields = f.read().split()
        return (int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_memory(pid: int) -> int:
    """Bytes of private resident memory of ``pid`` and every process below it."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _private(p)
        todo.extend(children(p) or ())
    return total
