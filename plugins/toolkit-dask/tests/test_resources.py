"""A task's ``cpus`` and ``memory`` become Dask worker resources on a cluster that
declares them: the session's first worker declares ``CPU=2,MEMORY=2e9``, the second
``CPU=1`` (see conftest.py)."""

from __future__ import annotations

THREADS = """
import os

import toolkit


def threads(x: int) -> str:
    return os.environ.get("OMP_NUM_THREADS", "")


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(threads, name="env.threads")
"""

RECIPE = """
[recipe]
name = "resources"
plugins = ["toolkit.conformance", "env_tasks.py"]
[run]
executor = "dask"
[executor.dask]
address = "{address}"
[[task]]
name = "wide"
uses = "conformance.sleep_for"
params = {{ seconds = 0.1 }}
cpus = {cpus}
matrix = {{ x = {{ range = [0, 8] }} }}
[[task]]
name = "narrow"
uses = "conformance.sleep_for"
params = {{ seconds = 0.1 }}
matrix = {{ x = {{ range = [0, 8] }} }}
[[task]]
name = "big"
uses = "conformance.sleep_for"
params = {{ seconds = 0.05 }}
memory = "1G"
matrix = {{ x = [0, 1] }}
[[task]]
name = "threads"
uses = "env.threads"
cpus = 2
matrix = {{ x = [0, 1] }}
"""


def _workers(res, task):
    return {r["worker"] for r in res.records if r["task"] == task}


def test_tasks_run_only_where_their_cpus_and_memory_are_declared(run_recipe, cluster):
    resources = {a: w["resources"] for a, w in cluster.client.scheduler_info()["workers"].items()}
    (roomy,) = [a for a, r in resources.items() if r.get("CPU") == 2]
    res = run_recipe(RECIPE.format(address=cluster.address, cpus=2), files={"env_tasks.py": THREADS})
    assert res.exit_code == 0, res.stdout + res.stderr
    assert all(r["status"] == "ok" for r in res.records) and len(res.records) == 20
    assert _workers(res, "wide") == {roomy}  # cpus = 2: only it has CPU=2
    assert _workers(res, "big") == {roomy}  # memory: only it declares MEMORY
    assert _workers(res, "narrow") <= set(resources)
    # and numeric libraries get the task's cpus, not the 1 Dask's nanny sets for workers
    assert [r["value"] for r in res.records if r["task"] == "threads"] == ["2", "2"]


def test_a_task_no_worker_can_hold_is_refused_before_it_runs(run_recipe, cluster):
    res = run_recipe(RECIPE.format(address=cluster.address, cpus=3), files={"env_tasks.py": THREADS})
    assert res.exit_code == 2, res.stdout + res.stderr
    assert (
        f"task 'wide' asks for cpus = 3, but no worker of the Dask cluster at {cluster.address}"
        " declares more than CPU=2"
    ) in res.stderr
    assert not res.records
