"""Helpers of the fault tests: real `toolkit` processes on recipes in a temporary folder.

Each test sets up the surroundings a user could (a pipe nobody reads, /dev/full, a
small tmpfs, ``ulimit -f``, a second process on the same run) and checks what is left
on disk and the exit code, never toolkit's own account of it alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

TASKS = textwrap.dedent(
    '''
    """Tasks for the fault tests."""
    import os
    import sys
    import time

    import toolkit


    def mark(i: int, log: str = "", fail: int = -1, seconds: float = 0.0, stop: str = "") -> int:
        """Append i to ``log`` (a side effect counted by the tests); fail for i == fail,
        and (before writing) while the file ``stop`` exists."""
        time.sleep(seconds)
        if stop and os.path.exists(stop):
            raise RuntimeError(f"{stop} exists")
        if log:
            with open(log, "a") as f:
                f.write(f"{i}\\n")
        if i == fail:
            raise ValueError(f"instance {i} fails")
        return i


    def raw_stdout(i: int) -> int:
        """Write to file descriptor 1 behind Python's back, as a C library would."""
        os.write(1, b"not a record\\n")
        print("printed", i)
        return i


    def deep(n):
        value = []
        for _ in range(n):
            value = [value]
        return value


    class Unprintable(Exception):
        """An exception (or a value) whose str() and repr() raise."""

        def __str__(self):
            raise RuntimeError("no str")

        __repr__ = __str__


    def value_of(kind: str, i: int = 0):
        """A value of one kind: most of them JSON has no plain way to write."""
        if kind == "surrogate":
            return "caf\\udcff"
        if kind == "deep":
            return deep(100_000)
        if kind == "nan":
            return float("nan")
        if kind == "infinities":
            return {"up": float("inf"), "down": [float("-inf"), 1.5]}
        if kind == "object":
            return object()
        if kind == "raise_unprintable":
            raise Unprintable()
        if kind == "unprintable":
            return Unprintable()
        if kind == "raise_surrogate":
            raise ValueError("bad byte \\udcff")
        if kind == "print_surrogate":
            print("printed \\udcff")
            return "printed"
        if kind == "print":
            print(f"line of {i}")
            return i
        return i


    def chdir_away(i: int, ctx) -> str:
        """Change directory, then print and use the scratch directory."""
        os.chdir(os.path.dirname(os.path.abspath(ctx.run_dir.parent.parent.parent)))
        print(f"after chdir {i}")
        (ctx.scratch / "file").write_text(str(i))
        return os.getcwd()


    def echo(word: str, fail: bool = True) -> str:
        """Print ``word`` (into the instance's log); fail on request."""
        print(f"word: {word}")
        if fail:
            raise RuntimeError(f"failed on purpose ({len(word)} characters)")
        return word


    @toolkit.hookimpl
    def toolkit_register_tasks(registry):
        registry.add(echo, name="faults.echo")
        registry.add(mark, name="faults.mark")
        registry.add(raw_stdout, name="faults.raw_stdout")
        registry.add(value_of, name="faults.value_of")
        registry.add(chdir_away, name="faults.chdir_away")
    '''
)


def recipe_text(name: str, tasks: str, *, out: str = "out", run: str = "", extra: str = "") -> str:
    """A recipe named ``name`` with the task tables ``tasks``, using the fault tasks."""
    return (
        f'[recipe]\nname = "{name}"\nplugins = ["faults_tasks.py"]\n'
        f'[run]\nworkers = 2\n{run}\n[output]\ndir = "{out}"\n{extra}\n{tasks}'
    )


def marks(n: int, *, log: str = "", fail: int = -1, seconds: float = 0.0, stop: str = "") -> str:
    params = f'log = "{log}", fail = {fail}, seconds = {seconds}, stop = "{stop}"'
    task = f'[[task]]\nname = "m"\nuses = "faults.mark"\nparams = {{ {params} }}\n'
    task += f"matrix = {{ i = {{ range = [0, {n}] }} }}\n"
    return task


def toolkit_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "toolkit", *args]


def run_toolkit(folder: Path, *args: str, timeout: float = 60, **popen) -> subprocess.CompletedProcess:
    """``toolkit ARGS`` in ``folder`` (stdout and stderr captured unless ``popen`` says)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    env = {**os.environ, **popen.pop("env", {})}
    return subprocess.run(toolkit_cmd(*args), cwd=folder, timeout=timeout, env=env, **popen)


def strict_records(path: Path) -> list[dict]:
    """Every line of a results file, parsed as strict JSON (NaN and Infinity refused)."""

    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the last line is torn"
    return [json.loads(line, parse_constant=refuse) for line in lines[:-1]]


def manifest(run_dir: Path) -> dict:
    import tomllib

    return tomllib.loads((run_dir / "manifest.toml").read_text())


def only_run(out: Path, recipe: str) -> Path:
    runs = [p for p in (out / recipe).iterdir() if p.name != "latest" and not p.name.startswith(".")]
    assert len(runs) == 1, runs
    return runs[0]
