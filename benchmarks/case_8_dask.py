"""Case 8: Dask (only when ``plugins/toolkit-dask`` is installed). Tiny tasks and
CPU-bound tasks through ``toolkit run --executor dask`` against raw per-item
``client.map`` + ``gather`` on the same ``LocalCluster`` (2 worker processes, 1 thread
each), started once by the harness; the toolkit connects to it through
``[executor.dask] address``.

First, a user's numeric sweep as a new user would run it: a few hundred small numpy
logistic-regression fits (10-100 ms each, see ``numpy_tasks.py``) and a summary, through
``toolkit run --executor dask`` on the LocalCluster the executor starts itself, against
``--executor pool``: both fresh processes, alternating, on the same 2 cores (wall time
and the CPU time of each process tree, which the load of a shared machine disturbs
less). Needs numpy; skipped without it.

Then two comparisons against raw Dask. *e2e*: ``toolkit run`` against a user's own script, both fresh
processes (the script imports distributed, connects a ``Client``, maps, gathers and
disconnects; see ``baselines.py dask``): what a user waits for either way. *warm*: the
toolkit's in-run time (run start to run finish hooks: distributed imported, client
connected, runners started, every instance run, every record written) against a map +
gather on the harness's connected client, which a command line can never have. Tiny
tasks are judged warm, CPU-bound tasks e2e.
"""

from __future__ import annotations

import logging
import resource
import shutil
import time
from importlib import metadata

from common import (
    HERE,
    CaseResult,
    Config,
    baseline,
    check_results,
    have_module,
    median,
    num,
    read_results,
    sum_of_squares,
    toolkit_run,
    write_recipe,
)

KEY = "8"
TITLE = "dask: a numpy sweep vs pool; --executor dask vs raw client.map, same LocalCluster"

RECIPE_TINY = """
[run]
executor = "dask"
workers = 2
[executor.dask]
address = "{address}"
[[task]]
name = "sq"
uses = "bench.square"
matrix = {{ x = {{ range = [0, {n}] }} }}
"""

RECIPE_CPU = """
[run]
executor = "dask"
workers = 2
[executor.dask]
address = "{address}"
[[task]]
name = "burn"
uses = "bench.burn"
params = {{ loops = {loops} }}
matrix = {{ i = {{ range = [0, {n}] }} }}
"""


RECIPE_SWEEP = """
[recipe]
name = "bench-dask-sweep"
plugins = ["bench_tasks.py", "numpy_tasks.py"]
[output]
dir = "{runs}"
[run]
workers = 2
[[task]]
name = "fit"
uses = "sweep.fit"
matrix = {{ seed = {{ range = [0, {n}] }} }}
[[task]]
name = "summary"
uses = "sweep.summary"
needs = ["fit"]
"""


#: the dask executor comes from the plugin's entry point: let it load even where the
#: caller disabled autoloading (the test suite does)
AUTOLOAD = {"TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": None}


def plugin_installed() -> bool:
    try:
        metadata.version("toolkit-dask")
    except metadata.PackageNotFoundError:
        return False
    return have_module("distributed")


def square(x: int) -> int:
    return x * x


def burn(loops: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    acc = 0
    for k in range(loops):
        acc = (acc + k * k) % 1_000_003
    return acc, time.perf_counter() - t0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sweep(cfg: Config, out: CaseResult) -> None:
    """The numpy sweep, ``--executor dask`` (its own LocalCluster) against ``pool``."""
    n = 30 if cfg.quick else 300
    folder = cfg.work / "bench-dask-sweep"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("bench_tasks.py", "numpy_tasks.py"):
        shutil.copy(HERE / name, folder / name)
    recipe = folder / "recipe.toml"
    recipe.write_text(RECIPE_SWEEP.format(runs=(folder / "runs").as_posix(), n=n))
    s: dict[str, list[float]] = {"pool": [], "dask": [], "pool_cpu": [], "dask_cpu": []}
    for _ in range(cfg.reps):
        for executor in ("pool", "dask"):
            cpu = _children_cpu()
            res = toolkit_run(cfg, recipe, "--executor", executor, env=AUTOLOAD)
            s[f"{executor}_cpu"].append(_children_cpu() - cpu)
            recs = read_results(res["run_dir"])
            assert len(recs) == n + 1 and all(r["status"] == "ok" for r in recs), executor
            s[executor].append(res["e2e_s"])
            if not cfg.keep:
                shutil.rmtree(res["run_dir"], ignore_errors=True)
    pool, dask = median(s["pool"]), median(s["dask"])
    out.rows.append(
        [
            f"numpy sweep ({n} fits + summary) wall s, e2e, vs pool",
            f"{dask:.3f}",
            f"{pool:.3f}",
            f"{dask / pool:.3f}",
        ]
    )
    pc, dc = median(s["pool_cpu"]), median(s["dask_cpu"])
    out.rows.append(
        ["numpy sweep CPU s (user+sys, process tree), vs pool", f"{dc:.2f}", f"{pc:.2f}", f"{dc / pc:.3f}"]
    )
    r = dask / pool
    out.target(
        "dask numpy sweep wall, --executor dask / pool (own LocalCluster)",
        r,
        "<= 1.3x",
        r <= 1.3,
        f"{r:.3f}x",
    )
    out.data["sweep"] = s


def run(cfg: Config) -> CaseResult:
    out = CaseResult(KEY, TITLE)
    if not plugin_installed():
        out.skipped = "toolkit-dask is not installed (pip install plugins/toolkit-dask)"
        return out
    from case_3_cpu import calibrate
    from dask.distributed import Client, LocalCluster

    out.headers = ["what", "toolkit", "baseline", "toolkit/baseline"]
    out.data = {}
    if have_module("numpy"):  # first: the harness's cluster below would idle beside it
        sweep(cfg, out)
    else:
        out.notes.append("numpy sweep skipped: numpy is not installed (benchmarks/requirements.txt)")

    n_tiny = 40 if cfg.quick else 10_000
    n_cpu, task_s = (2, 0.01) if cfg.quick else (16, 0.25)
    loops = calibrate(task_s)
    out.title = f"{TITLE}; tiny N = {n_tiny:,}, CPU-bound {n_cpu} x ~{task_s} s"
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    client = Client(cluster)
    try:
        client.gather(client.map(square, range(64), pure=False))
        s: dict[str, list[float]] = {
            "tk_tiny": [],
            "raw_tiny": [],
            "tk_cpu": [],
            "raw_cpu": [],
            "tk_cpu_e2e": [],
            "raw_cpu_e2e": [],
        }
        for _ in range(cfg.reps):
            recipe = write_recipe(
                cfg, "bench-dask-tiny", RECIPE_TINY.format(address=cluster.scheduler_address, n=n_tiny)
            )
            res = toolkit_run(cfg, recipe, env=AUTOLOAD)
            check_results(res["run_dir"], n_tiny, sum_of_squares(n_tiny), cleanup=not cfg.keep)
            s["tk_tiny"].append(res["in_run_s"])
            t0 = time.perf_counter()
            got = client.gather(client.map(square, range(n_tiny), pure=False))
            s["raw_tiny"].append(time.perf_counter() - t0)
            assert sum(got) == sum_of_squares(n_tiny)
            del got

            recipe = write_recipe(
                cfg,
                "bench-dask-cpu",
                RECIPE_CPU.format(address=cluster.scheduler_address, loops=loops, n=n_cpu),
            )
            res = toolkit_run(cfg, recipe, env=AUTOLOAD)
            recs = read_results(res["run_dir"])
            assert len(recs) == n_cpu and all(r["status"] == "ok" for r in recs)
            s["tk_cpu"].append(res["in_run_s"])
            s["tk_cpu_e2e"].append(res["e2e_s"])
            t0 = time.perf_counter()
            got = client.gather(client.map(burn, [loops] * n_cpu, pure=False))
            s["raw_cpu"].append(time.perf_counter() - t0)
            assert len(got) == n_cpu
            raw = baseline("dask", address=cluster.scheduler_address, loops=loops, n=n_cpu)
            s["raw_cpu_e2e"].append(raw["e2e_s"])
    finally:
        client.close()
        cluster.close()
    tk_rate = n_tiny / median(s["tk_tiny"])
    raw_rate = n_tiny / median(s["raw_tiny"])
    out.rows.append(
        ["tiny tasks/s, vs raw client.map", num(tk_rate), num(raw_rate), f"{tk_rate / raw_rate:.2f}"]
    )
    tw, rw = median(s["tk_cpu"]), median(s["raw_cpu"])
    te, re_ = median(s["tk_cpu_e2e"]), median(s["raw_cpu_e2e"])
    out.rows.append(
        [
            "CPU-bound wall s, e2e (fresh processes), vs raw script",
            f"{te:.3f}",
            f"{re_:.3f}",
            f"{te / re_:.3f}",
        ]
    )
    out.rows.append(
        [
            "CPU-bound wall s, warm (in-run vs map), vs raw client.map",
            f"{tw:.3f}",
            f"{rw:.3f}",
            f"{tw / rw:.3f}",
        ]
    )
    r = tk_rate / raw_rate
    out.target("dask tiny throughput, toolkit / raw per-item map", r, ">= 10x", r >= 10, f"{r:.1f}x")
    r = te / re_
    out.target("dask CPU-bound wall, toolkit / raw script (e2e)", r, "<= 1.1x", r <= 1.1, f"{r:.3f}x")
    out.data.update(s)
    return out
