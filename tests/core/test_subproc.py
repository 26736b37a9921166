"""The public building block of executors, ``toolkit.execution.subproc.BatchProcess``:
real child processes, real signals. An executor made of it alone passes the suite."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest

import toolkit
from toolkit.api import prepare
from toolkit.conformance import ExecutorConformance
from toolkit.execution.api import Batch, Event, ExecutorContext, Records, Unfinished, WorkerError, WorkerSetup
from toolkit.execution.run import task_runtimes
from toolkit.execution.subproc import BatchProcess


class ChildrenExecutor:
    """``workers`` children, a thread each: what a plugin writes on the building block."""

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
        for i in range(self.context.workers):
            thread = threading.Thread(target=self._work, args=(i,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _work(self, i: int) -> None:
        child = None
        while True:
            batch = self.todo.get()
            if batch is None or self.stopping:
                break
            if child is None or not child.alive:
                child = BatchProcess(self.context.setup)
                with self.lock:
                    self.children.append(child)
            timeout = self.context.recipe.tasks[batch.task].timeout
            outcome = child.run(
                batch,
                timeout=timeout,
                grace=self.context.grace,
                cancelled=lambda: self.stopping,
                on_records=self.events.put,
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
            child.close(kill=True)


class ChildrenPlugin:
    @toolkit.hookimpl
    def toolkit_register_executors(self, registry: Any) -> None:
        registry.add("children", ChildrenExecutor)


class TestChildren(ExecutorConformance):
    executor = "children"

    @pytest.fixture(autouse=True)
    def _register(self, register_plugin):
        register_plugin(ChildrenPlugin(), "children")


def _setup(tmp_path, toolkit_pm, task: dict) -> tuple[Any, WorkerSetup]:
    recipe, plugins = prepare(
        {"recipe": {"name": "bp", "plugins": ["toolkit.conformance"]}, "task": [task]}, plugins=toolkit_pm
    )
    return recipe, WorkerSetup.build([], task_runtimes(recipe, plugins), tmp_path)


def test_a_child_runs_batch_after_batch_and_reports_a_crash(tmp_path, toolkit_pm):
    task = {
        "name": "d",
        "uses": "conformance.die_on",
        "params": {"bad": 5},
        "matrix": {"x": {"range": [0, 8]}},
    }
    _recipe, setup = _setup(tmp_path, toolkit_pm, task)
    with BatchProcess(setup, worker="here") as child:
        first = child.run(Batch(id=1, task=0, indices=range(0, 3)))
        assert first.final and first.n == 3 and first.consumed == 3 and child.alive
        (records,) = first.events(Batch(id=1, task=0, indices=range(0, 3)))
        assert isinstance(records, Records) and records.lines.count(b'"worker": "here"') == 3
        batch = Batch(id=2, task=0, indices=range(3, 8))
        second = child.run(batch)
        # the records of x=3, 4 may not have been flushed before the child died: run again
        assert not second.final and second.consumed <= 2 and not child.alive
        assert second.lost.position == 2 and second.lost.status == "crashed"
        assert "SIGKILL" in second.lost.message
        events = second.events(batch)
        assert isinstance(events[-1], Unfinished) and events[-1].lost is second.lost


def test_a_child_stops_an_attempt_that_outlives_its_timeout(tmp_path, toolkit_pm):
    task = {"name": "h", "uses": "conformance.hang_on", "params": {"bad": 1}, "matrix": {"x": [0, 1, 2]}}
    _recipe, setup = _setup(tmp_path, toolkit_pm, task)
    child = BatchProcess(setup)
    try:
        out = child.run(Batch(id=7, task=0, indices=range(3)), timeout=0.5, grace=0.5)
    finally:
        child.close(kill=True)
    assert out.consumed <= 1 and out.lost.status == "timeout" and out.lost.position == 1


def test_a_child_that_cannot_load_the_plugins_says_why(tmp_path, toolkit_pm):
    _recipe, setup = _setup(
        tmp_path, toolkit_pm, {"name": "s", "uses": "conformance.square", "params": {"x": 1}}
    )
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('nope')\n")
    with BatchProcess(setup._replace(files=(str(broken),))) as child:
        out = child.run(Batch(id=1, task=0, indices=range(1)))
    assert out.error is not None and "nope" in out.error
    assert isinstance(out.events(Batch(id=1, task=0, indices=range(1)))[0], WorkerError)


def test_cancelled_kills_the_child_at_once(tmp_path, toolkit_pm):
    task = {"name": "s", "uses": "conformance.sleep_for", "params": {"seconds": 60}}
    _recipe, setup = _setup(tmp_path, toolkit_pm, task)
    calls = iter(range(1_000_000))
    with BatchProcess(setup) as child:
        out = child.run(Batch(id=1, task=0, indices=range(1)), cancelled=lambda: next(calls) > 20)
        assert out.cancelled and not out.final and not child.alive


def test_capability_flags_skip_what_an_executor_cannot_do():
    class InProcess(ExecutorConformance):
        executor = "inline"
        isolates_crashes = False
        enforces_timeouts = False

    suite = InProcess()
    for test in (
        suite.test_killed_worker_fails_only_its_instance,
        suite.test_worker_exit_and_segfault_are_crashes,
        suite.test_hanging_instance_times_out,
    ):
        with pytest.raises(pytest.skip.Exception, match=r"executor 'inline' says \w+ = False"):
            test(run_recipe=None)
