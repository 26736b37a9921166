"""The ``children`` executor: ``workers`` threads, each driving a ``BatchProcess`` child.

The child runs the tasks; its thread waits for it. A child that dies (a crash, a
timeout) is replaced for the next batch; what it was running is reported to the
scheduler as lost (crashed or timeout), and the rest of its batch runs again.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

from toolkit.plugin import BatchProcess

if TYPE_CHECKING:
    from toolkit.plugin import Batch, Event, ExecutorContext


class ChildrenExecutor:
    """The executor protocol (``start``, ``capacity``, ``submit``, ``poll``, ``shutdown``)."""

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context
        self.todo: queue.Queue[Batch | None] = queue.Queue()
        self.events: queue.Queue[Event] = queue.Queue()
        self.idle = context.workers
        self.lock = threading.Lock()
        self.stopping = False
        self.threads: list[threading.Thread] = []
        self.children: list[BatchProcess] = []

    def start(self) -> None:
        for _ in range(self.context.workers):
            thread = threading.Thread(target=self._work, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _work(self) -> None:
        child: BatchProcess | None = None
        while True:
            batch = self.todo.get()
            if batch is None or self.stopping:
                break
            if child is None or not child.alive:
                child = BatchProcess(self.context.setup)
                with self.lock:
                    self.children.append(child)
            outcome = child.run(
                batch,
                timeout=self.context.recipe.tasks[batch.task].timeout,
                grace=self.context.grace,
                cancelled=lambda: self.stopping,
                on_records=self.events.put,  # records reach the run as they arrive
            )
            for event in outcome.events(batch):
                self.events.put(event)
            with self.lock:
                self.idle += 1
        if child is not None:
            child.close(kill=self.stopping)

    def capacity(self) -> int:
        with self.lock:
            return self.idle

    def submit(self, batch: Batch) -> None:
        with self.lock:
            self.idle -= 1
        self.todo.put(batch)

    def poll(self, timeout: float) -> list[Event]:
        out = []
        try:
            out.append(self.events.get(timeout=timeout))
            while True:
                out.append(self.events.get_nowait())
        except queue.Empty:
            return out

    def shutdown(self, *, kill: bool = False) -> None:
        self.stopping = self.stopping or kill
        for _ in self.threads:
            self.todo.put(None)
        for thread in self.threads:
            thread.join()
        with self.lock:
            children = list(self.children)
        for child in children:
            child.close(kill=True)  # no process outlives shutdown
