"""Printing is best effort: output that cannot be written never stops a run, loses a
record or changes the exit code (a pipe nobody reads, a full device, a closed stdout,
a scheduler whose output went away)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faults_helpers import manifest, marks, only_run, recipe_text, run_toolkit, strict_records, toolkit_cmd


def gone_reader() -> int:
    """The write end of a pipe whose reader has left (``| head -1``, ``| true``)."""
    read, write = os.pipe()
    os.close(read)
    return write


@pytest.mark.parametrize(
    ("args", "fail", "code"),
    [
        (("--progress", "off"), -1, 0),
        (("--progress", "on"), -1, 0),
        (("-q",), 7, 1),  # a failed task still exits 1
    ],
)
def test_a_pipe_nobody_reads_stops_nothing(folder, args, fail, code):
    (folder / "r.toml").write_text(
        recipe_text("r", marks(201, log="side", fail=fail), run="keep_going = true")
    )
    write = gone_reader()
    try:
        res = run_toolkit(folder, "run", "r.toml", *args, stdout=write, stderr=write)
    finally:
        os.close(write)
    assert res.returncode == code
    run = only_run(folder / "out", "r")
    assert len(strict_records(run / "results.jsonl")) == 201
    assert len((folder / "side").read_text().split()) == 201  # every instance ran
    assert manifest(run)["status"] == ("succeeded" if code == 0 else "failed")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_full_terminal_stops_nothing(folder):
    (folder / "r.toml").write_text(recipe_text("r", marks(30, fail=3), run="keep_going = true"))
    with open("/dev/full", "w") as full:
        res = run_toolkit(folder, "run", "r.toml", "--progress", "on", "-v", stdout=full, stderr=full)
    assert res.returncode == 1
    run = only_run(folder / "out", "r")
    assert len(strict_records(run / "results.jsonl")) == 30
    assert manifest(run)["status"] == "failed"
    with open("/dev/full", "w") as full:  # the read-only commands too
        assert run_toolkit(folder, "runs", "--output", "out", stdout=full, stderr=full).returncode == 0


def test_a_closed_stdout_takes_no_file_of_the_run(folder):
    """With descriptor 1 closed, the next file opened would take it, and what a task
    writes there would land in it: toolkit gives 0, 1 and 2 /dev/null first."""
    task = '[[task]]\nname = "w"\nuses = "faults.raw_stdout"\nmatrix = { i = { range = [0, 40] } }\n'
    (folder / "r.toml").write_text(recipe_text("r", task, run='executor = "pool"'))
    res = run_toolkit(folder, "run", "r.toml", stdout=None, stderr=None, pass_fds=(), preexec_fn=_close_stdio)
    assert res.returncode == 0
    run = only_run(folder / "out", "r")
    records = strict_records(run / "results.jsonl")
    assert sorted(r["value"] for r in records) == list(range(40))
    assert manifest(run)["status"] == "succeeded"


def _close_stdio() -> None:
    os.close(1)
    os.close(2)


@pytest.mark.slow
def test_scheduled_runs_run_when_the_scheduler_output_is_gone(folder):
    """A scheduled run's output goes where the scheduler's goes: a pipe nobody reads
    any more stops neither the scheduler nor its runs, and the exit codes it logs are
    those of runs that ran."""
    (folder / "r.toml").write_text(
        recipe_text("r", marks(20, log="side"), extra='[schedule]\nevery = "1s"\ncatchup = "none"\n')
    )
    write = gone_reader()
    try:
        daemon = subprocess.Popen(
            toolkit_cmd("schedule", "--state", "state", "r.toml"), cwd=folder, stdout=write, stderr=write
        )
    finally:
        os.close(write)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _finished(folder / "state" / "log.jsonl"):
            time.sleep(0.1)
        finished = _finished(folder / "state" / "log.jsonl")
        assert finished, "no run finished within 30 s"
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    assert finished[0]["exit_code"] == 0
    run = folder / "out" / "r" / finished[0]["run_id"]
    assert len(strict_records(run / "results.jsonl")) == 20
    assert manifest(run)["status"] == "succeeded"


def _finished(log: Path) -> list[dict]:
    import json

    if not log.exists():
        return []
    events = [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]
    return [e for e in events if e["event"] == "finished"]


def test_best_effort_stream_drops_output_after_the_first_failure(tmp_path):
    from toolkit.streams import BestEffort

    read, write = os.pipe()
    os.close(read)
    stream = BestEffort(os.fdopen(write, "w", buffering=1))
    assert stream.write("a line\n") == 7  # EPIPE: dropped, never raised
    assert stream.broken
    stream.write("more\n")
    stream.flush()
    assert not stream.isatty()
    stream.stream.close()  # its descriptor now points at /dev/null: closing flushes nothing that fails
    assert BestEffort(None).write("x") == 1
    assert sys.stdout is not None
