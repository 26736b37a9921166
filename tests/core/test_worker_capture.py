"""What a batch's instances print goes to each instance's own log, whatever the others do."""

from __future__ import annotations

import io
import json
import sys

from toolkit.execution.api import Batch, TaskRuntime, WorkerSetup
from toolkit.execution.worker import BatchRunner
from toolkit.recipe.model import TaskSpec

_replaced: list[io.StringIO] = []


def talk(i: int) -> int:
    if i % 3 == 0:
        print(f"out {i}")
        print(f"err {i}", file=sys.stderr)
    if i == 4:
        _replaced.append(io.StringIO())
        sys.stdout = _replaced[-1]  # a task that leaves stdout replaced
        print("into the replacement")
    if i == 7:
        print("before failing")
        raise ValueError("seven")
    return i


_calls: dict[int, int] = {}


def flaky(i: int) -> int:
    _calls[i] = _calls.get(i, 0) + 1
    print(f"try {_calls[i]} of {i}")
    if _calls[i] < 2 and i == 1:
        raise RuntimeError("again")
    return i


def run(tmp_path, func, n, retries=0):
    spec = TaskSpec(name="t", uses="cap.t", matrix={"i": {"range": [0, n]}}, retries=retries)
    runner = BatchRunner(WorkerSetup(run_dir=str(tmp_path)), (TaskRuntime(spec=spec, func=func),))
    out: list[tuple] = []
    stdout, stderr = sys.stdout, sys.stderr
    runner.run(Batch(id=0, task=0, indices=range(n)), out.append)
    assert (sys.stdout, sys.stderr) == (stdout, stderr), "the batch restores stdout and stderr"
    records = [json.loads(line) for msg in out for line in msg[4].splitlines()]
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    return records, logs


def test_each_instance_logs_only_what_it_printed(tmp_path):
    records, logs = run(tmp_path, talk, 10)
    assert [r["status"] for r in records] == ["ok"] * 7 + ["failed"] + ["ok"] * 2
    assert sorted(logs) == ["t[i=0].log", "t[i=3].log", "t[i=6].log", "t[i=7].log", "t[i=9].log"]
    for i in (0, 3, 6, 9):
        assert logs[f"t[i={i}].log"] == f"out {i}\nerr {i}\n"
    failed = logs["t[i=7].log"]
    assert failed.startswith("--- t[i=7] attempt 1 ---\nbefore failing\nTraceback")
    assert "ValueError: seven" in failed
    # what instance 4 printed into the stream it installed stayed there
    assert _replaced[-1].getvalue() == "into the replacement\n"


def test_retries_log_every_attempt(tmp_path):
    _calls.clear()
    records, logs = run(tmp_path, flaky, 3, retries=1)
    assert [(r["status"], r["attempts"]) for r in records] == [("ok", 1), ("ok", 2), ("ok", 1)]
    assert logs["t[i=0].log"] == "try 1 of 0\n"
    assert logs["t[i=1].log"].startswith("--- t[i=1] attempt 1 ---\ntry 1 of 1\nTraceback")
    assert logs["t[i=1].log"].endswith("RuntimeError: again\n--- t[i=1] attempt 2 ---\ntry 2 of 1\n")


_seen: list[list[float]] = []
_slot: list = []


def look(i: int) -> int:
    _seen.append(list(_slot[0]))
    return i


def test_the_slot_says_what_runs(tmp_path):
    from multiprocessing import RawArray

    slot = RawArray("d", [-1.0, 0.0, 0.0, 0.0])
    _slot[:] = [slot]
    _seen.clear()
    spec = TaskSpec(name="t", uses="cap.t", matrix={"i": {"range": [0, 3]}})
    runner = BatchRunner(WorkerSetup(run_dir=str(tmp_path)), (TaskRuntime(spec=spec, func=look),), slot)
    runner.run(Batch(id=7, task=0, indices=range(3), attempt=2), lambda msg: None)
    assert [s[:3] for s in _seen] == [[7.0, 0.0, 2.0], [7.0, 1.0, 2.0], [7.0, 2.0, 2.0]]
    assert all(s[3] > 0 for s in _seen)
    assert slot[0] == -1.0  # nothing runs now
