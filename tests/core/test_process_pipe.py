"""Each process of the ``process`` executor reports through a pipe of its own (no
Manager): what it sends arrives whole, a crash is still its instance's alone, and the
isolated instances of ``pool`` still run in processes of their own."""

from __future__ import annotations

import multiprocessing
import os
import pickle

import pytest

from toolkit.execution.api import Batch, Records
from toolkit.execution.local import LocalExecutor, _InFlight, _Worker
from toolkit.execution.procs import FRAME_HEADER, Outbox

METHODS = [m for m in ("fork", "spawn") if m in multiprocessing.get_all_start_methods()]

TASKS = """
import os
import time

import toolkit


def big(i: int = 0):
    return "x" * 200_000 + str(i)


def pid(i: int = 0):
    return os.getpid()


def forks_then_dies(i: int = 0):
    if os.fork() == 0:  # a child of the task, which holds the inherited pipes a while
        time.sleep(0.5)
        os._exit(0)
    if i == 1:
        os.kill(os.getpid(), 9)
    return i


def sleep(seconds: float, i: int = 0):
    time.sleep(seconds)
    return i


def logs(ctx, i: int = 0):
    ctx.logger.info("line %d", i)
    return i


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    for func in (big, pid, forks_then_dies, sleep, logs):
        registry.add(func, name=f"pipe.{func.__name__}")
"""


def recipe(tasks: str, *, executor: str = "process", method: str = "fork") -> str:
    return (
        '[recipe]\nname = "pipe"\nplugins = ["tasks.py"]\n'
        f'[run]\nexecutor = "{executor}"\nworkers = 2\nstart_method = "{method}"\nkeep_going = true\n'
        f"{tasks}"
    )


@pytest.mark.parametrize("method", METHODS)
def test_records_larger_than_a_pipe_buffer_arrive_whole(run_recipe, method):
    tasks = '[[task]]\nname = "big"\nuses = "pipe.big"\nmatrix = { i = { range = [0, 4] } }\n'
    result = run_recipe(recipe(tasks, method=method), files={"tasks.py": TASKS})
    assert result.exit_code == 0, result.stdout + result.stderr
    records = result.by_instance()
    assert len(records) == 4
    for i in range(4):
        assert records[f"big[i={i}]"]["value"] == "x" * 200_000 + str(i)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the task forks")
def test_a_crash_is_its_instance_alone_while_its_child_holds_the_pipe(run_recipe):
    tasks = '[[task]]\nname = "f"\nuses = "pipe.forks_then_dies"\nmatrix = { i = { range = [0, 3] } }\n'
    result = run_recipe(recipe(tasks), files={"tasks.py": TASKS})
    records = result.by_instance()
    assert {k: r["status"] for k, r in records.items()} == {
        "f[i=0]": "ok",
        "f[i=1]": "crashed",
        "f[i=2]": "ok",
    }
    assert "SIGKILL" in records["f[i=1]"]["error"]["message"]


def test_isolated_instances_of_pool_run_apart_and_time_out_alone(run_recipe):
    tasks = (
        '[[task]]\nname = "p"\nuses = "pipe.pid"\nisolate = true\nmatrix = { i = { range = [0, 4] } }\n'
        '[[task]]\nname = "s"\nuses = "pipe.sleep"\nisolate = true\ntimeout = 0.3\n'
        "params = { seconds = 30.0 }\nmatrix = { i = { range = [0, 1] } }\n"
    )
    result = run_recipe(recipe(tasks, executor="pool"), files={"tasks.py": TASKS})
    records = result.by_instance()
    pids = {records[f"p[i={i}]"]["value"] for i in range(4)}
    assert len(pids) == 4 and os.getpid() not in pids
    assert records["s[i=0]"]["status"] == "timeout"


@pytest.mark.parametrize("method", METHODS)
def test_the_task_logger_writes_to_the_instance_log(run_recipe, method):
    tasks = '[[task]]\nname = "l"\nuses = "pipe.logs"\nmatrix = { i = { range = [0, 2] } }\n'
    result = run_recipe(recipe(tasks, method=method), files={"tasks.py": TASKS})
    assert result.exit_code == 0, result.stdout + result.stderr
    for i in range(2):
        text = (result.run_dir / "logs" / f"l[i={i}].log").read_text()
        assert text.rstrip().endswith(f"INFO line {i}"), text


def test_frames_split_across_reads_are_put_back_together():
    """The supervisor's side of the pipe: a note and a record, sent by an Outbox, read
    a few bytes at a time, give the slot and one event, in order."""
    executor = LocalExecutor.__new__(LocalExecutor)
    executor.watched, executor.poller, executor.inflight, executor.closing = {}, None, {}, False
    inbox, out = os.pipe()
    os.set_blocking(inbox, False)
    worker = _Worker(process=None, slot=[-1.0, 0.0, 0.0, 0.0], inbox=inbox, batches=[7])
    executor.inflight[7] = _InFlight(batch=Batch(id=7, task=0, indices=range(1)), worker=worker)
    outbox = Outbox(out)
    outbox[1], outbox[2], outbox[3] = 0, 1, 123.5
    outbox[0] = 7.0  # an attempt starts: the note goes
    outbox.send(("rec", 7, 1, 1, b"{}\n", (), True, 0.25))
    os.close(out)
    whole = os.read(inbox, 1 << 16)
    assert len(whole) > 2 * FRAME_HEADER
    assert (
        pickle.loads(whole[FRAME_HEADER : FRAME_HEADER + int.from_bytes(whole[:FRAME_HEADER], "little")])[0]
        == "go"
    )
    again, feed = os.pipe()
    os.set_blocking(again, False)
    worker.inbox = again
    events: list = []
    for start in range(0, len(whole), 5):
        os.write(feed, whole[start : start + 5])
        executor._read(worker, events)
        if start + 5 < FRAME_HEADER:
            assert worker.slot == [-1.0, 0.0, 0.0, 0.0]
    assert worker.slot == [7.0, 0, 1, 123.5]
    assert events == [Records(7, 1, 1, b"{}\n", (), True, 0.25)]
    assert worker.batches == [] and not executor.inflight and len(worker.received) == 0
    os.close(feed)
    executor._read(worker, events)
    assert worker.inbox == -1  # the end of the pipe closes it
    os.close(inbox)
