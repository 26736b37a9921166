"""Fixtures of the run-store tests: a task module and recipes that use it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

TASKS = '''
"""Tasks for the run-store tests."""
import os
import sys
import time

import toolkit


def mark(i: int, log: str, seconds: float = 0.0) -> int:
    """Sleep, then append i to `log` (the instance finished)."""
    time.sleep(seconds)
    with open(log, "a") as f:
        f.write(f"{i}\\n")
    return i


def fail_if_flagged(i: int, flags: str, log: str) -> int:
    """Append i to `log`; fail while the file flags/<i> exists."""
    with open(log, "a") as f:
        f.write(f"{i}\\n")
    if os.path.exists(os.path.join(flags, str(i))):
        raise RuntimeError(f"flagged {i}\\nsecond line\\nthird line\\nfourth line")
    return i


def chatty(i: int, fail: bool = False) -> dict:
    """Print to stdout and stderr; fail on request."""
    print(f"stdout of {i}")
    print(f"stderr of {i}", file=sys.stderr)
    if fail:
        raise ValueError(f"chatty {i} fails")
    return {"i": i}


def shaped(i: int) -> object:
    """Values of varying shapes, for the csv sink."""
    if i == 0:
        raise ValueError("no value for 0")
    if i % 2:
        return {"a": i, "nested": {"b": i * 10}}
    return {"a": i, "c": [i, i], "flag": True}


def total(inputs: list, log: str) -> int:
    """Append "total" to `log`; the sum of the upstream values."""
    with open(log, "a") as f:
        f.write("total\\n")
    return sum(item["value"] for item in inputs)


def parity(i: int, log: str) -> int:
    """Append i to `log`; i % 2 (the same value for many i)."""
    with open(log, "a") as f:
        f.write(f"{i}\\n")
    return i % 2


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    for func in (mark, fail_if_flagged, chatty, shaped, total, parity):
        registry.add(func, name=f"store.{func.__name__}")
'''


@pytest.fixture(scope="session")
def store_tasks(tmp_path_factory) -> Path:
    """One task file for the whole session: in-process runs import it once, by name."""
    path = tmp_path_factory.mktemp("store-tasks") / "store_tasks.py"
    path.write_text(TASKS)
    return path


@pytest.fixture
def write_recipe(tmp_path, store_tasks):
    """``write_recipe(body, name="r", **run)``: a recipe file using the store tasks."""

    def write(body: str, *, name: str = "r", run: str = "", output: str = "") -> Path:
        text = textwrap.dedent(f"""\
            [recipe]
            name = "{name}"
            plugins = ["{store_tasks}"]
            [run]
            workers = 2
            {run}
            """)
        if output:
            text += f"[output]\n{output}\n"
        text += textwrap.dedent(body)
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        return path

    return write
