"""Case 8: Dask (only when ``plugins/toolkit-dask`` is installed). Tiny tasks and
CPU-bound tasks through ``toolkit run --executor dask`` against raw per-item
``client.map`` + ``gather`` on the same ``LocalCluster`` (2 worker processes, 1 thread
each), started once by the harness; the toolkit connects to it through
``[executor.dask] address``.

Two comparisons. *e2e*: ``toolkit run`` against a user's own script, both fresh
processes (the script imports distributed, connects a ``Client``, maps, gathers and
disconnects; see ``baselines.py dask``): what a user waits for either way. *warm*: the
toolkit's in-run time (run start to run finish hooks: distributed imported, client
connected, runners started, every instance run, every record written) against a map +
gather on the harness's connected client, which a command line can never have. Tiny
tasks are judged warm, CPU-bound tasks e2e.
"""

from __future__ import annotations

import logging
import time
from importlib import metadata

from common import (
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
TITLE = "dask: --executor dask vs raw client.map, same LocalCluster"

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


def run(cfg: Config) -> CaseResult:
    out = CaseResult(KEY, TITLE)
    if not plugin_installed():
        out.skipped = "toolkit-dask is not installed (pip install plugins/toolkit-dask)"
        return out
    from case_3_cpu import calibrate
    from dask.distributed import Client, LocalCluster

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
    out.headers = ["what", "toolkit", "raw client.map", "toolkit/raw"]
    out.rows.append(["tiny tasks/s", num(tk_rate), num(raw_rate), f"{tk_rate / raw_rate:.2f}"])
    tw, rw = median(s["tk_cpu"]), median(s["raw_cpu"])
    te, re_ = median(s["tk_cpu_e2e"]), median(s["raw_cpu_e2e"])
    out.rows.append(["CPU-bound wall s, e2e (fresh processes)", f"{te:.3f}", f"{re_:.3f}", f"{te / re_:.3f}"])
    out.rows.append(["CPU-bound wall s, warm (in-run vs map)", f"{tw:.3f}", f"{rw:.3f}", f"{tw / rw:.3f}"])
    r = tk_rate / raw_rate
    out.target("dask tiny throughput, toolkit / raw per-item map", r, ">= 10x", r >= 10, f"{r:.1f}x")
    r = te / re_
    out.target("dask CPU-bound wall, toolkit / raw script (e2e)", r, "<= 1.1x", r <= 1.1, f"{r:.3f}x")
    out.data = s
    return out
