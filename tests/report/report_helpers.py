"""Shared by the report, notify, retention and ui tests: recipes that run real tasks,
the command line in-process and in a subprocess, and bounded waits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from toolkit.cli import main

TASKS = '''
"""Tasks of the report tests."""
import os
import sys
import time

import toolkit


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(work, name="rt.work")
    registry.add(total, name="rt.total")
    registry.add(slow, name="rt.slow")


def work(n: int, size: str = "s") -> int:
    """Print, fail for n % 4 == 3."""
    print(f"working on {n}")
    print(f"warning about {n}", file=sys.stderr)
    if n % 4 == 3:
        raise ValueError(f"bad input {n}")
    return n * n


def total(inputs) -> int:
    """Sum what work returned."""
    return sum(x["value"] or 0 for x in inputs)


def slow(i: int, seconds: float = 0.2, gate: str = "") -> int:
    """Sleep; with `gate`, wait until that file exists (a run that stays live)."""
    if gate:
        while not os.path.exists(gate):
            time.sleep(0.02)
    time.sleep(seconds)
    return i
'''

MIXED = """
[recipe]
name = "mixed"
plugins = ["tasks.py"]
[run]
workers = 2
keep_going = true
[[task]]
name = "work"
uses = "rt.work"
matrix = {{ n = {{ range = [0, {n}] }}, size = ["s", "m"] }}
[[task]]
name = "total"
uses = "rt.total"
needs = ["work"]
"""

OK = """
[recipe]
name = "fine"
plugins = ["tasks.py"]
[run]
workers = 2
[[task]]
name = "work"
uses = "rt.work"
matrix = {{ n = [0, 1, 2, 4] }}
{extra}
"""


def project(tmp_path: Path, name: str, text: str) -> Path:
    """A recipe file and the task module beside it; returns the recipe's path."""
    (tmp_path / "tasks.py").write_text(TASKS)
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    return path


def run_cli(*args: str) -> int:
    """``toolkit ARGS`` in this process (real workers, real files)."""
    return main([*args])


def cli(*args: str, timeout: float = 90, env: dict[str, str] | None = None, **kwargs):
    """``python -m toolkit ARGS`` in a subprocess, to the end."""
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def start_cli(
    *args: str, env: dict[str, str] | None = None, stdout=subprocess.DEVNULL, **kwargs
) -> subprocess.Popen:
    """``python -m toolkit ARGS`` started in a session of its own (close its pipes)."""
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", *args],
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def wait_for(predicate, timeout: float = 60.0, what: str = "the condition"):
    """Poll until ``predicate()`` is true; a hang guard, not a timing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_dirs(out: Path, recipe: str) -> list[Path]:
    """The recipe's run directories, oldest first: by the manifest's ``started``, as
    toolkit orders them (two run ids of one second differ only in random digits)."""
    import tomllib

    def started(path: Path) -> tuple[str, str]:
        try:
            return (tomllib.loads((path / "manifest.toml").read_text())["started"], path.name)
        except (OSError, KeyError, ValueError):  # not written yet, or half
            return ("", path.name)

    base = out / recipe
    return sorted(
        (p for p in base.iterdir() if p.name != "latest" and not p.name.startswith(".")), key=started
    )


def started_run(out: Path, recipe: str) -> Path:
    """The one run of ``recipe`` under ``out``, once its directory is there (a run
    started in the background; a hang guard, not a timing)."""
    (run,) = wait_for(
        lambda: (out / recipe).is_dir() and run_dirs(out, recipe), what=f"the run of {recipe!r}"
    )
    return run
