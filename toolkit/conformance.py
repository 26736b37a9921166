"""The executor conformance suite, and the tasks it runs.

Every executor, built in or from a plugin, runs the same behaviours::

    from toolkit.conformance import ExecutorConformance

    class TestMyExecutor(ExecutorConformance):
        executor = "mine"          # the name the plugin registers
        options = {"address": ...} # the [executor.mine] table, if any

``start_method`` may be set (or parametrised) for local executors. Each test writes a
recipe, runs it through ``toolkit run`` (in-process, or ``via = "cli"``) and checks
what a user sees: records, statuses, attempts, the exit code.

Capability flags say what an executor cannot do by design, and skip (with the reason
shown) the tests that need it: ``isolates_crashes = False`` for one that runs tasks in
the run's own process or threads (a task that kills its process takes the run down),
``enforces_timeouts = False`` for one that cannot stop a running attempt. This module is also a
plugin (``plugins = ["toolkit.conformance"]``) that registers the tasks the suite uses.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import toolkit

# -- tasks the suite runs (importable by name in any worker) --------------------


def square(x: int) -> int:
    """x * x"""
    return x * x


def add_inputs(inputs: list) -> dict:
    """Sum the values of the upstream instances, keeping their order."""
    return {"total": sum(i["value"] for i in inputs), "order": [i["instance"] for i in inputs]}


def die_on(x: int, bad: int = -1, how: str = "sigkill") -> int:
    """Kill the worker running it when x == bad."""
    if x == bad:
        if how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "exit":
            os._exit(3)
        elif how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
    return x


def hang_on(x: int, bad: int = -1, seconds: float = 600) -> int:
    """Sleep for a long time when x == bad."""
    if x == bad:
        time.sleep(seconds)
    return x


def fail_on(x: int, bad: int = -1) -> int:
    """Raise when x == bad."""
    if x == bad:
        raise ValueError(f"bad input {x}")
    return x


def flaky(x: int, fails: int, ctx: Any) -> dict:
    """Fail the first `fails` attempts, then succeed."""
    if ctx.attempt <= fails:
        raise RuntimeError(f"attempt {ctx.attempt} fails on purpose")
    return {"x": x, "attempt": ctx.attempt}


def flaky_crash(x: int, marker_dir: str) -> int:
    """Kill the worker on the first attempt (a marker file remembers), then succeed."""
    marker = Path(marker_dir) / f"crashed-{x}"
    if not marker.exists():
        marker.write_text("1")
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def unserialisable(x: int) -> Any:
    """Return something JSON cannot hold when x == 1."""
    return object() if x == 1 else x


class _Unpicklable(Exception):
    def __init__(self, a, b):  # pickling calls __init__ with one arg and fails
        super().__init__(a)
        self.b = b
        self.lock = __import__("threading").Lock()


def raise_unpicklable(x: int) -> int:
    """Raise an exception that cannot be pickled when x == 1."""
    if x == 1:
        raise _Unpicklable("cannot pickle me", 2)
    return x


def sleep_for(seconds: float, x: int = 0) -> int:
    """Sleep, then return x."""
    time.sleep(seconds)
    return x


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    for func in (
        square,
        add_inputs,
        die_on,
        hang_on,
        fail_on,
        flaky,
        flaky_crash,
        unserialisable,
        raise_unpicklable,
        sleep_for,
    ):
        registry.add(func, name=f"conformance.{func.__name__}")


# -- the suite --------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


class ExecutorConformance:
    """Behaviours every executor must have. Subclass and set ``executor``."""

    executor: str = "pool"
    options: dict[str, Any] = {}
    start_method: str | None = None
    workers: int = 2
    via: str = "inprocess"
    #: a worker that dies (SIGKILL, a segfault, os._exit) fails only its instance
    isolates_crashes: bool = True
    #: an attempt that outlives its task's timeout is stopped and recorded as ``timeout``
    enforces_timeouts: bool = True

    def require(self, capability: str) -> None:
        """Skip the calling test unless the executor has ``capability``."""
        import pytest

        if not getattr(self, capability):
            pytest.skip(f"executor {self.executor!r} says {capability} = False")

    def recipe(self, tasks: str, *, run: str = "", extra: str = "") -> str:
        lines = [
            "[recipe]",
            'name = "conformance"',
            'plugins = ["toolkit.conformance"]',
            "[run]",
            f'executor = "{self.executor}"',
        ]
        if "workers" not in run:
            lines.append(f"workers = {self.workers}")
        if self.start_method:
            lines.append(f'start_method = "{self.start_method}"')
        lines.append(run)
        if self.options:
            lines.append(f"[executor.{self.executor}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in self.options.items()]
        lines += [extra, tasks]
        return "\n".join(lines)

    def run(self, run_recipe: Any, text: str, *args: str) -> Any:
        return run_recipe(text, *args, via=self.via)

    def test_results_are_correct(self, run_recipe):
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "sq"\nuses = "conformance.square"\nmatrix = { x = { range = [0, 12] } }\n'
            ),
        )
        assert res.exit_code == 0, res.stderr
        values = {r["params"]["x"]: r["value"] for r in res.records}
        assert values == {x: x * x for x in range(12)}
        assert all(r["status"] == "ok" and r["attempts"] == 1 for r in res.records)
        assert res.manifest["status"] == "succeeded"

    def test_killed_worker_fails_only_its_instance(self, run_recipe):
        self.require("isolates_crashes")
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "d"\nuses = "conformance.die_on"\nparams = { bad = 3 }\n'
                "matrix = { x = { range = [0, 12] } }\n",
                run="keep_going = true",
            ),
        )
        assert res.exit_code == 1
        by = {r["params"]["x"]: r for r in res.records}
        assert sorted(by) == list(range(12))
        assert by[3]["status"] == "crashed"
        assert "SIGKILL" in by[3]["error"]["message"] or "killed" in by[3]["error"]["message"]
        assert all(by[x]["status"] == "ok" for x in by if x != 3)

    def test_hanging_instance_times_out(self, run_recipe):
        self.require("enforces_timeouts")
        t0 = time.monotonic()
        res = self.run(
            run_recipe,
            self.recipe(
                # 30 s, not forever: an executor that does not stop it fails here with
                # the instance's record ("ok" where "timeout" was due), not a hang
                '[[task]]\nname = "h"\nuses = "conformance.hang_on"\nparams = { bad = 1, seconds = 30 }\n'
                'timeout = "1s"\nmatrix = { x = [0, 1, 2, 3] }\n',
                run="keep_going = true",
            ),
        )
        took = time.monotonic() - t0
        by = {r["params"]["x"]: r for r in res.records}
        assert by[1]["status"] == "timeout", by[1]
        assert all(by[x]["status"] == "ok" for x in (0, 2, 3))
        assert res.exit_code == 1
        assert took < 60  # a hang guard, not a timing

    def test_flaky_instances_succeed_on_retry(self, run_recipe):
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "f"\nuses = "conformance.flaky"\nparams = { fails = 1 }\nretries = 2\n'
                "matrix = { x = [1, 2, 3] }\n"
            ),
        )
        assert res.exit_code == 0, res.stdout + res.stderr
        assert [r["attempts"] for r in res.records] == [2, 2, 2]
        assert all(r["value"]["attempt"] == 2 for r in res.records)

    def test_crash_is_retried(self, run_recipe, tmp_path):
        self.require("isolates_crashes")
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "c"\nuses = "conformance.flaky_crash"\n'
                f'params = {{ marker_dir = "{tmp_path}" }}\nretries = 1\nmatrix = {{ x = [1, 2] }}\n'
            ),
        )
        assert res.exit_code == 0, res.stdout + res.stderr
        assert sorted(r["attempts"] for r in res.records) == [2, 2]

    def test_retries_exhausted_is_failed_with_attempts(self, run_recipe):
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "f"\nuses = "conformance.flaky"\nparams = { fails = 5, x = 1 }\nretries = 1\n'
            ),
        )
        assert res.exit_code == 1
        (rec,) = res.records
        assert rec["status"] == "failed" and rec["attempts"] == 2
        assert rec["error"]["type"] == "RuntimeError"
        assert "fails on purpose" in rec["error"]["message"]

    def test_fail_fast_starts_nothing_after_a_failure(self, run_recipe):
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "a"\nuses = "conformance.fail_on"\nparams = { bad = 0 }\nmatrix = { x = [0] }\n'
                '[[task]]\nname = "b"\nuses = "conformance.sleep_for"\nneeds = ["a"]\nparams = { seconds = 0 }\n'
                '[[task]]\nname = "c"\nuses = "conformance.sleep_for"\nparams = { seconds = 0.3 }\n'
                "matrix = { x = { range = [0, 30] } }\n",
                run="keep_going = false\nworkers = 1",
            ),
        )
        assert res.exit_code == 1
        tasks = [r["task"] for r in res.records]
        assert "b" not in tasks  # its need failed
        assert tasks.count("c") < 30  # fail-fast stopped starting instances
        assert res.manifest["counts"]["not_run"] > 0

    def test_keep_going_runs_everything_else_and_skips_dependents(self, run_recipe):
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "a"\nuses = "conformance.fail_on"\nparams = { bad = 2 }\n'
                "matrix = { x = [1, 2, 3] }\n"
                '[[task]]\nname = "b"\nuses = "conformance.add_inputs"\nneeds = ["a"]\n'
                '[[task]]\nname = "c"\nuses = "conformance.square"\nmatrix = { x = { range = [0, 6] } }\n',
                run="keep_going = true",
            ),
        )
        assert res.exit_code == 1
        by_task: dict[str, list] = {}
        for r in res.records:
            by_task.setdefault(r["task"], []).append(r["status"])
        assert sorted(by_task["a"]) == ["failed", "ok", "ok"]
        assert by_task["b"] == ["skipped"]
        assert by_task["c"] == ["ok"] * 6

    def test_needs_receive_inputs_in_instance_order(self, run_recipe):
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "sq"\nuses = "conformance.square"\nmatrix = { x = { range = [0, 10] } }\n'
                '[[task]]\nname = "total"\nuses = "conformance.add_inputs"\nneeds = ["sq"]\n'
            ),
        )
        assert res.exit_code == 0, res.stderr
        total = next(r for r in res.records if r["task"] == "total")
        assert total["value"]["total"] == sum(x * x for x in range(10))
        assert total["value"]["order"] == [f"sq[x={x}]" for x in range(10)]

    def test_unserialisable_result_and_unpicklable_error_are_failed_records(self, run_recipe):
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "u"\nuses = "conformance.unserialisable"\nmatrix = { x = [0, 1, 2] }\n'
                '[[task]]\nname = "e"\nuses = "conformance.raise_unpicklable"\nmatrix = { x = [0, 1, 2] }\n',
                run="keep_going = true",
            ),
        )
        assert res.exit_code == 1
        by = {(r["task"], r["params"]["x"]): r for r in res.records}
        assert len(by) == 6
        assert by[("u", 1)]["status"] == "failed"
        assert "JSON" in by[("u", 1)]["error"]["message"]
        assert by[("e", 1)]["status"] == "failed"
        assert by[("e", 1)]["error"]["type"] == "_Unpicklable"
        assert all(by[(t, x)]["status"] == "ok" for t in "ue" for x in (0, 2))

    def test_worker_exit_and_segfault_are_crashes(self, run_recipe):
        self.require("isolates_crashes")
        res = self.run(
            run_recipe,
            self.recipe(
                '[[task]]\nname = "x"\nuses = "conformance.die_on"\nparams = { bad = 1, how = "exit" }\n'
                "matrix = { x = [0, 1, 2] }\n"
                '[[task]]\nname = "s"\nuses = "conformance.die_on"\nparams = { bad = 1, how = "segv" }\n'
                "matrix = { x = [0, 1, 2] }\n",
                run="keep_going = true",
            ),
        )
        by = {(r["task"], r["params"]["x"]): r["status"] for r in res.records}
        assert by == {
            ("x", 0): "ok",
            ("x", 1): "crashed",
            ("x", 2): "ok",
            ("s", 0): "ok",
            ("s", 1): "crashed",
            ("s", 2): "ok",
        }
