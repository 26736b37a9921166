"""Per-task resources: ``cpus`` and ``memory`` pack what runs at once, a memory limit
stops the instance that goes over it, ``cpus`` reaches the instance's environment.
Real processes; when each instance ran is read from files the instances write."""

from __future__ import annotations

import json
import os

import pytest
from conftest import HUNGRY, linux_only, most_at_once, spans

from toolkit.recipe import read_recipe
from toolkit.recipe.schema import json_schema
from toolkit.sizes import exact_size, format_size, parse_size


def recipe(executor: str, tasks: str, *, workers: int, run: str = "") -> str:
    return f"""
        [recipe]
        name = "res"
        plugins = ["hungry.py"]
        [run]
        executor = "{executor}"
        workers = {workers}
        keep_going = true
        {run}
        {tasks}
    """


def test_sizes_read_as_slurm_and_docker_do():
    assert parse_size("512M") == 512 << 20
    assert parse_size("4G") == parse_size("4GB") == parse_size("4gib") == 4 << 30
    assert parse_size("1.5G") == 3 << 29
    assert parse_size(1000) == 1000
    for bad in ("lots", "-1G", "0", True, [1], "4 GiBs"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert format_size(301 << 20) == "301M" and format_size(3 << 29) == "1.5G"
    assert format_size((200 << 20) + (300 << 10)) == "200.3M"
    assert exact_size(512 << 20) == "512M" and exact_size(1000) == 1000


def test_the_keys_validate_and_write_back():
    spec = {
        "recipe": {"name": "r"},
        "run": {"memory": "8G"},
        "task": [{"name": "t", "uses": "shell", "params": {"cmd": "true"}, "cpus": 2, "memory": "512M"}],
    }
    r = read_recipe(spec)
    assert (r.run.memory, r.task("t").cpus, r.task("t").memory) == (8 << 30, 2, 512 << 20)
    assert r.task("t").for_worker().cpus == 2
    table = r.to_table()
    assert table["run"]["memory"] == "8G" and table["task"][0]["cpus"] == 2
    assert table["task"][0]["memory"] == "512M"
    plain = read_recipe(
        {"recipe": {"name": "r"}, "task": [{"name": "t", "uses": "shell", "params": {"cmd": "x"}}]}
    )
    assert (plain.task("t").cpus, plain.task("t").memory, plain.run.memory) == (1, None, None)
    assert "cpus" not in plain.to_table()["task"][0]
    schema = json_schema()
    assert {"cpus", "memory"} <= set(schema["$defs"]["task"]["properties"])
    assert "memory" in schema["properties"]["run"]["properties"]


@pytest.mark.parametrize(
    ("task_keys", "run_keys", "where", "problem"),
    [
        ("cpus = 0", "", "cpus", "must be >= 1"),
        ('cpus = "two"', "", "cpus", "must be an integer"),
        ('memory = "lots"', "", "memory", "is not a size"),
        (
            'memory = "2G"',
            'memory = "1G"',
            "memory",
            "2G is more than the run's memory budget, 1G (run.memory)",
        ),
        ('memory = "1000T"', "", "memory", "the memory available on this machine"),
        ("", 'memory = "big"', "run.memory", "is not a size"),
    ],
)
def test_bad_resources_are_one_clear_error_and_run_nothing(
    run_recipe, tmp_path, task_keys, run_keys, where, problem
):
    result = run_recipe(
        recipe(
            "process",
            f"""
            [[task]]
            name = "t"
            uses = "res.span"
            params = {{ folder = "{tmp_path}" }}
            matrix = {{ x = [1] }}
            {task_keys}
            """,
            workers=2,
            run=run_keys,
        ),
        files={"hungry.py": HUNGRY},
    )
    assert result.exit_code == 2
    assert "recipe.toml" in result.stderr and where in result.stderr and problem in result.stderr, (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("span-*"))


@pytest.mark.parametrize("executor", ["pool", "process"])
def test_cpus_never_add_up_to_more_than_workers(run_recipe, tmp_path, executor):
    """workers = 4: two instances of a `cpus = 2` task at once, at most, beside which
    `cpus = 1` instances fill what is left."""
    result = run_recipe(
        recipe(
            executor,
            f"""
            [[task]]
            name = "two"
            uses = "res.span"
            params = {{ folder = "{tmp_path}", tag = "two" }}
            matrix = {{ x = [0, 1, 2, 3, 4, 5] }}
            cpus = 2

            [[task]]
            name = "three"
            uses = "res.span"
            params = {{ folder = "{tmp_path}", tag = "three", seconds = 0.2 }}
            matrix = {{ x = [0, 1, 2, 3] }}
            cpus = 3

            [[task]]
            name = "one"
            uses = "res.span"
            params = {{ folder = "{tmp_path}", tag = "one", seconds = 0.2 }}
            matrix = {{ x = [0, 1, 2, 3, 4, 5] }}
            """,
            workers=4,
        ),
        files={"hungry.py": HUNGRY},
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    ran = spans(tmp_path)
    assert len(ran) == 16
    weight = {"two": 2, "three": 3, "one": 1}
    intervals = [(s, e, next(w for t, w in weight.items() if k.startswith(t))) for k, (s, e) in ran.items()]
    assert most_at_once(intervals) <= 4
    twos = [(s, e, 1) for k, (s, e) in ran.items() if k.startswith("two")]
    assert most_at_once(twos) == 2  # packed, not run one at a time


def test_a_big_instance_does_not_starve(run_recipe, tmp_path):
    """`big` (cpus = 3 of 3) becomes ready while `small` instances keep the workers busy:
    after a few of them pass it, room is kept for it, and it runs before they are done."""
    result = run_recipe(
        recipe(
            "pool",
            f"""
            [[task]]
            name = "first"
            uses = "res.span"
            params = {{ folder = "{tmp_path}", tag = "first", seconds = 0.05 }}
            matrix = {{ x = [0] }}

            [[task]]
            name = "big"
            uses = "res.span"
            needs = ["first"]
            params = {{ folder = "{tmp_path}", tag = "big", seconds = 0.1 }}
            matrix = {{ x = [0] }}
            cpus = 3

            [[task]]
            name = "small"
            uses = "res.span"
            params = {{ folder = "{tmp_path}", tag = "small", seconds = 0.15 }}
            matrix = {{ x = {{ range = [0, 40] }} }}
            """,
            workers=3,
        ),
        files={"hungry.py": HUNGRY},
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    ran = spans(tmp_path)
    big_start, big_end = ran["big0"]
    small = [v for k, v in ran.items() if k.startswith("small")]
    assert all(e <= big_start or s >= big_end for s, e in small)  # it ran alone
    assert sum(s >= big_end for s, _ in small) >= 10  # and long before the small ones ended


def test_the_memory_budget_packs_instances(run_recipe, tmp_path):
    """run.memory = 300M and tasks of 200M: never two at once, though workers = 3."""
    result = run_recipe(
        recipe(
            "pool",
            f"""
            [[task]]
            name = "t"
            uses = "res.span"
            params = {{ folder = "{tmp_path}", seconds = 0.2 }}
            matrix = {{ x = [0, 1, 2, 3] }}
            memory = "200M"
            """,
            workers=3,
            run='memory = "300M"',
        ),
        files={"hungry.py": HUNGRY},
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    ran = spans(tmp_path)
    assert len(ran) == 4
    assert most_at_once([(s, e, 1) for s, e in ran.values()]) == 1


@linux_only
@pytest.mark.parametrize("executor", ["pool", "process"])
def test_an_instance_over_its_memory_is_stopped_and_the_run_goes_on(run_recipe, tmp_path, executor):
    """A task that allocates 1 GiB/s with memory = "200M" is stopped before it doubles
    its limit (the sizes it wrote say how far it got), recorded failed with
    MemoryLimitExceeded naming the limit and the peak; the other instance runs on."""
    result = run_recipe(
        recipe(
            executor,
            f"""
            [[task]]
            name = "t"
            uses = "res.allocate"
            params = {{ folder = "{tmp_path}" }}
            matrix = {{ x = [0, 1] }}
            memory = "200M"

            [[task]]
            name = "calm"
            uses = "res.span"
            params = {{ folder = "{tmp_path}", seconds = 0.05 }}
            matrix = {{ x = [7] }}
            """,
            workers=2,
        ),
        files={"hungry.py": HUNGRY},
    )
    assert result.exit_code == 1, result.stdout + result.stderr
    records = {r["instance"]: r for r in result.records}
    for x in (0, 1):
        rec = records[f"t[x={x}]"]
        assert rec["status"] == "failed", rec
        assert rec["error"]["type"] == "MemoryLimitExceeded"
        assert "limit of 200M" in rec["error"]["message"] and "peak" in rec["error"]["message"]
        reached = int((tmp_path / f"allocated-{x}").read_text().split()[-1])  # MiB it had allocated
        # the process's own memory (the interpreter's pages it wrote to) counts too
        assert 100 <= reached < 400, (reached, rec["error"]["message"])
        peak = rec["error"]["message"].split("peak ")[1].split(")")[0]
        assert 200 << 20 <= parse_size(peak) < 400 << 20, peak
    assert records["calm[x=7]"]["status"] == "ok"


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
@pytest.mark.parametrize("executor", ["pool", "process"])
def test_cpus_reach_the_instance_as_thread_counts(run_recipe, tmp_path, executor, start_method):
    """Each instance gets its cpus; what the recipe's plugin files import (in toolkit
    run's process, and again in a spawned worker) starts with one thread, not one per
    core; what the user set stays."""
    result = run_recipe(
        recipe(
            executor,
            """
            [[task]]
            name = "three"
            uses = "res.threads"
            cpus = 3

            [[task]]
            name = "plain"
            uses = "res.threads"

            [[task]]
            name = "imported"
            uses = "res.threads_at_import"
            """,
            workers=4,
            run=f'start_method = "{start_method}"',
        ),
        "-q",
        files={"hungry.py": HUNGRY},
        via="cli",
        env={"MKL_NUM_THREADS": "7"},
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    values = {r["task"]: r["value"] for r in result.records}
    assert values["three"] == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "7", "OPENBLAS_NUM_THREADS": "3"}
    assert values["plain"] == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "7", "OPENBLAS_NUM_THREADS": "1"}
    assert values["imported"] == values["plain"]
    assert json.loads(json.dumps(values))  # plain strings


def test_a_run_in_process_leaves_the_callers_thread_variables_alone(run_recipe, monkeypatch):
    """toolkit.cli.main inside a caller's process (the testing kit, a user's script):
    the variables set while the recipe's plugin files load are gone afterwards, so a
    later run still sees what the user set, and nothing the run set."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    result = run_recipe(
        recipe("pool", '[[task]]\nname = "imported"\nuses = "res.threads_at_import"', workers=2),
        files={"hungry.py": HUNGRY},
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.records[0]["value"] == dict.fromkeys(
        ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"), "1"
    )
    assert not {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"} & set(os.environ)
