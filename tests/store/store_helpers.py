"""Helpers of the run-store tests: the CLI in a subprocess, bounded waits, /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None, **kwargs):
    """Run ``python -m toolkit ARGS`` to the end; a CompletedProcess with text output."""
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def start_cli(*args: str, **kwargs) -> subprocess.Popen:
    """Start ``python -m toolkit ARGS`` in a session of its own (as a shell job would be)."""
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **kwargs.pop("env", {})},
        **kwargs,
    )


def wait_for(predicate, timeout: float = 30.0, what: str = "the condition"):
    """Poll ``predicate`` until it returns something true; a hang guard, not a timing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> dict[int, str]:
    """``{pid: start time}`` of every live descendant of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            fields = _stat(child)
            if fields:
                out[child] = fields[19]
                todo.append(child)
    return out


def still_alive(procs: dict[int, str]) -> list[int]:
    """Those of ``procs`` (pid: start time) that still run: not gone, not a zombie,
    and not another process that reused the pid."""
    alive = []
    for pid, start in procs.items():
        fields = _stat(pid)
        if fields and fields[0] != "Z" and fields[19] == start:
            alive.append(pid)
    return alive
