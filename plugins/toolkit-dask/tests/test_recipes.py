"""Recipes on the dask executor: same values as the pool, plugin files on remote
workers, records and logs in the run directory, the version check at connect."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from toolkit_dask import remote

import toolkit

TASKS = '''
"""Tasks of a recipe-relative plugin file; ``helpers`` is a neighbour module."""
import os
import helpers
import toolkit


def estimate(samples: int, seed: int, method: str = "plain") -> dict:
    return {"pi": helpers.estimate(samples, seed, method), "samples": samples}


def summarize(inputs: list) -> dict:
    values = [i["value"]["pi"] for i in inputs]
    return {"mean": sum(values) / len(values), "n": len(values), "order": [i["instance"] for i in inputs]}


def where(x: int, ctx) -> dict:
    print(f"hello from {x}")
    (ctx.scratch / "note.txt").write_text(str(x))
    return {"module_file": __file__, "pid": os.getpid(), "scratch_ok": (ctx.scratch / "note.txt").exists()}


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(estimate, name="demo.estimate")
    registry.add(summarize, name="demo.summarize")
    registry.add(where, name="demo.where")
'''

HELPERS = """
import random


def estimate(samples, seed, method):
    rng = random.Random(seed)
    inside = 0
    for _ in range(samples):
        x, y = rng.random(), rng.random()
        if method == "antithetic":
            x, y = 1 - x, 1 - y
        inside += x * x + y * y <= 1.0
    return 4.0 * inside / samples
"""

FILES = {"demo_tasks.py": TASKS, "helpers.py": HELPERS}

PI = """
[recipe]
name = "pi"
plugins = ["demo_tasks.py"]
[vars]
samples = 2000
[run]
executor = "pool"
workers = 2
[[task]]
name = "estimate"
uses = "demo.estimate"
params = { samples = "${vars.samples}" }
matrix = { seed = { range = [0, 12] }, method = ["plain", "antithetic"] }
[[task]]
name = "summary"
uses = "demo.summarize"
needs = ["estimate"]
"""


def _values(res):
    return {r["instance"]: r["value"] for r in res.records}


def test_a_pool_recipe_gives_the_same_values_on_a_cluster_and_a_local_cluster(run_recipe, cluster):
    pool = run_recipe(PI, via="cli", files=FILES)
    assert pool.exit_code == 0, pool.stderr
    assert pool.manifest["executor"] == "pool"
    remote = run_recipe(
        PI,
        "--executor",
        "dask",
        "--set",
        f"executor.dask.address={cluster.address}",
        via="cli",
        files=FILES,
    )
    assert remote.exit_code == 0, remote.stderr
    assert remote.manifest["executor"] == "dask"
    assert "Dask dashboard" not in remote.stdout  # a running cluster's: with -v only
    local = run_recipe(PI, "--executor", "dask", via="cli", files=FILES)
    assert local.exit_code == 0, local.stderr
    assert re.search(r"^Dask dashboard: http://127\.0\.0\.1:\d+/status", local.stdout, re.M), local.stdout
    assert len(_values(pool)) == 25
    assert _values(remote) == _values(pool)
    assert _values(local) == _values(pool)
    workers = set(cluster.client.nthreads())
    assert {r["worker"] for r in remote.records} <= workers
    # a LocalCluster's workers are threads of the toolkit: records name the runner process
    assert all(re.fullmatch(rf"{re.escape(socket.gethostname())}:\d+", r["worker"]) for r in local.records)


def test_plugin_files_reach_workers_that_cannot_see_them(run_recipe, cluster):
    res = run_recipe(
        f'''
        [recipe]
        name = "where"
        plugins = ["demo_tasks.py"]
        [run]
        executor = "dask"
        [executor.dask]
        address = "{cluster.address}"
        [[task]]
        name = "where"
        uses = "demo.where"
        matrix = {{ x = [1, 2, 3, 4] }}
        ''',
        files=FILES,
    )
    assert res.exit_code == 0, res.stdout + res.stderr
    client_file = str(res.recipe.parent / "demo_tasks.py")
    for rec in res.records:
        # the session's workers never use the client's paths: the source was uploaded
        assert rec["value"]["module_file"] != client_file
        assert rec["value"]["module_file"].endswith("demo_tasks.py")
        assert rec["value"]["scratch_ok"]
        assert rec["worker"] in cluster.client.nthreads()
        # and the instance's output came back into this run directory
        log = res.run_dir / "logs" / f"{rec['instance']}.log"
        assert f"hello from {rec['params']['x']}" in log.read_text()
    # the run's runners and its folder on the workers (sources, scratch) are gone
    cluster.wait_for_no_runners()
    assert not list(remote.BASE.glob(f"{res.run_dir.name}-*"))


@pytest.mark.parametrize(
    ("run", "task"), [("max_tasks_per_worker = 1", ""), ("", "isolate = true")], ids=["max_tasks", "isolate"]
)
def test_fresh_runners_when_asked(run_recipe, cluster, run, task):
    res = run_recipe(
        f'''
        [recipe]
        name = "fresh"
        plugins = ["demo_tasks.py"]
        [run]
        executor = "dask"
        {run}
        [executor.dask]
        address = "{cluster.address}"
        [[task]]
        name = "where"
        uses = "demo.where"
        {task}
        matrix = {{ x = {{ range = [0, 5] }} }}
        ''',
        files=FILES,
        via="cli",  # in-process, demo_tasks is already imported from elsewhere
    )
    assert res.exit_code == 0, res.stdout + res.stderr
    assert len({r["value"]["pid"] for r in res.records}) == 5


def test_a_cluster_with_other_versions_is_refused(run_recipe, cluster, monkeypatch):
    import distributed.versions

    real = distributed.versions.get_package_info

    def here(pkgs):
        info = real(pkgs)
        if "toolkit" in info:
            info["toolkit"] = "0.0.0+here"
        return info

    monkeypatch.setattr(distributed.versions, "get_package_info", here)
    res = run_recipe(
        f'''
        [recipe]
        name = "versions"
        plugins = ["toolkit.conformance"]
        [run]
        executor = "dask"
        [executor.dask]
        address = "{cluster.address}"
        [[task]]
        name = "sq"
        uses = "conformance.square"
        params = {{ x = 3 }}
        '''
    )
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "cannot run this recipe's tasks" in res.stderr
    assert f"scheduler: toolkit {toolkit.__version__} (here: 0.0.0+here)" in res.stderr
    cluster.wait_for_no_runners()  # the ones started while the versions were checked
    assert f"worker {sorted(cluster.client.nthreads())[0]}: toolkit" in res.stderr


def test_no_scheduler_there_is_a_clear_error(run_recipe):
    res = run_recipe(
        """
        [recipe]
        name = "nobody"
        plugins = ["toolkit.conformance"]
        [run]
        executor = "dask"
        [executor.dask]
        address = "tcp://127.0.0.1:9"
        timeout = "2s"
        [[task]]
        name = "sq"
        uses = "conformance.square"
        params = { x = 3 }
        """
    )
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "cannot connect to the Dask scheduler at tcp://127.0.0.1:9" in res.stderr


def test_the_repository_pi_recipe_runs_unchanged(cluster, tmp_path):
    recipe = Path(__file__).resolve().parents[3] / "recipes" / "pi.toml"
    if not recipe.exists():
        pytest.skip("not in a source checkout")
    out = tmp_path / "runs"
    args = [
        sys.executable,
        "-m",
        "toolkit",
        "run",
        str(recipe),
        "--output",
        str(out),
        "--set",
        "vars.samples=5000",
    ]
    pool = subprocess.run([*args, "--executor", "pool"], capture_output=True, text=True, timeout=120)
    dask = subprocess.run(
        [*args, "--executor", "dask", "--set", f"executor.dask.address={cluster.address}", "-v"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pool.returncode == 0, pool.stderr
    assert dask.returncode == 0, dask.stderr
    assert re.search(r"^Dask dashboard: http://127\.0\.0\.1:\d+/status$", dask.stdout, re.M), dask.stdout
    runs = sorted(p for p in (out / "pi").iterdir() if p.name != "latest")
    values = [
        {r["instance"]: r["value"] for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())}
        for run in runs
    ]
    assert len(values) == 2 and values[0] == values[1]


def test_a_plugin_file_that_fails_on_the_workers_stops_the_run(run_recipe, cluster):
    picky = """
import os
import toolkit

if os.environ.get("TOOLKIT_DASK_NO_SHARED_FS"):  # set on the session's workers only
    raise ImportError("this module cannot load on the workers")


def one(x: int) -> int:
    return x


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(one, name="picky.one")
"""
    res = run_recipe(
        f'''
        [recipe]
        name = "picky"
        plugins = ["picky.py"]
        [run]
        executor = "dask"
        [executor.dask]
        address = "{cluster.address}"
        [[task]]
        name = "one"
        uses = "picky.one"
        matrix = {{ x = [1, 2, 3] }}
        ''',
        files={"picky.py": picky},
    )
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "workers could not run the tasks" in res.stderr
    assert "ImportError: this module cannot load on the workers" in res.stderr
    assert res.manifest["counts"]["not_run"] == 3
