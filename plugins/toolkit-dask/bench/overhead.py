#!/usr/bin/env python3
"""The dask executor's overhead against raw ``client.map`` on the same LocalCluster.

    python plugins/toolkit-dask/bench/overhead.py [--tiny 20000] [--cpu 16] [--cpu-seconds 0.25] [--reps 3]

One ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` for everything;
the toolkit connects to it through ``[executor.dask] address`` and runs in this process
(``toolkit.run``), repetitions interleaved with the raw runs. ``in-run`` is the time
between the ``toolkit_run_start`` and ``toolkit_run_finish`` hooks (connect, version
check, every instance run and written, runners stopped, disconnect); ``run()`` adds the
recipe's validation and plugin loading. Raw is ``client.gather(client.map(f, items))``,
one Dask task per item, and, for reference, 1,024-item chunks that return lists. Not
part of the tests: the numbers drift with the machine's load; compare the ratios.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TASKS = """
import time
import toolkit

STATE = {}


def square(x: int) -> int:
    return x * x


def burn(loops: int, i: int = 0) -> float:
    t0 = time.perf_counter()
    acc = 0
    for k in range(loops):
        acc = (acc + k * k) % 1_000_003
    return time.perf_counter() - t0


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(square, name="ovh.square")
    registry.add(burn, name="ovh.burn")


@toolkit.hookimpl
def toolkit_run_start(run):
    STATE["t0"] = time.perf_counter()


@toolkit.hookimpl
def toolkit_run_finish(run, summary):
    STATE["in_run"] = time.perf_counter() - STATE["t0"]
"""


def square(x: int) -> int:
    return x * x


def squares(xs: list[int]) -> list[int]:
    return [x * x for x in xs]


def burn(loops: int) -> float:
    t0 = time.perf_counter()
    acc = 0
    for k in range(loops):
        acc = (acc + k * k) % 1_000_003
    return time.perf_counter() - t0


def calibrate(seconds: float) -> int:
    loops = 100_000
    while burn(loops) < 0.05:
        loops *= 2
    return int(loops * seconds / burn(loops))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", type=int, default=20_000)
    ap.add_argument("--cpu", type=int, default=16)
    ap.add_argument("--cpu-seconds", type=float, default=0.25)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    import toolkit

    folder = Path(tempfile.mkdtemp(prefix="toolkit-dask-bench-"))
    (folder / "ovh_tasks.py").write_text(TASKS)
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
    )
    client = Client(cluster, set_as_default=False)
    loops = calibrate(args.cpu_seconds)

    def recipe(task: dict) -> dict:
        return {
            "recipe": {"name": "ovh", "plugins": [str(folder / "ovh_tasks.py")]},
            "run": {"executor": "dask", "workers": 2},
            "executor": {"dask": {"address": cluster.scheduler_address}},
            "task": [task],
        }

    tiny = recipe({"name": "sq", "uses": "ovh.square", "matrix": {"x": {"range": [0, args.tiny]}}})
    cpu = recipe(
        {
            "name": "burn",
            "uses": "ovh.burn",
            "params": {"loops": loops},
            "matrix": {"i": {"range": [0, args.cpu]}},
        }
    )
    times: dict[str, list[float]] = {
        k: []
        for k in ("tk_tiny_in", "tk_tiny_run", "raw_tiny", "chunk_tiny", "tk_cpu_in", "tk_cpu_run", "raw_cpu")
    }
    util: dict[str, list[float]] = {"tk": [], "raw": []}  # task seconds / (wall x 2 workers)
    try:
        client.gather(client.map(square, range(256), pure=False))  # warm the workers
        for rep in range(args.reps):
            t0 = time.perf_counter()
            res = toolkit.run(tiny, output=folder / "runs")
            times["tk_tiny_run"].append(time.perf_counter() - t0)
            times["tk_tiny_in"].append(sys.modules["ovh_tasks"].STATE["in_run"])
            got = sum(r["value"] for r in res.records())
            assert got == sum(x * x for x in range(args.tiny)), got

            t0 = time.perf_counter()
            raw = client.gather(client.map(square, range(args.tiny), pure=False))
            times["raw_tiny"].append(time.perf_counter() - t0)
            assert sum(raw) == got
            chunks = [list(range(i, min(i + 1024, args.tiny))) for i in range(0, args.tiny, 1024)]
            t0 = time.perf_counter()
            out = client.gather(client.map(squares, chunks, pure=False))
            times["chunk_tiny"].append(time.perf_counter() - t0)
            assert sum(map(sum, out)) == got

            t0 = time.perf_counter()
            res = toolkit.run(cpu, output=folder / "runs")
            times["tk_cpu_run"].append(time.perf_counter() - t0)
            times["tk_cpu_in"].append(sys.modules["ovh_tasks"].STATE["in_run"])
            assert res.status == "succeeded"
            util["tk"].append(sum(r["value"] for r in res.records()) / (times["tk_cpu_in"][-1] * 2))
            t0 = time.perf_counter()
            busy = client.gather(client.map(burn, [loops] * args.cpu, pure=False))
            times["raw_cpu"].append(time.perf_counter() - t0)
            util["raw"].append(sum(busy) / (times["raw_cpu"][-1] * 2))
            shown = ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items())
            print(
                f"rep {rep + 1}: {shown}, util tk {util['tk'][-1]:.1%} raw {util['raw'][-1]:.1%}",
                file=sys.stderr,
            )
    finally:
        client.close()
        cluster.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    n = args.tiny
    print(
        textwrap.dedent(f"""
        dask executor vs raw client.map, LocalCluster 2 workers x 1 thread, median of {args.reps}
        {n:,} tiny tasks (x*x):
          toolkit in-run        {med["tk_tiny_in"]:7.3f} s  {n / med["tk_tiny_in"]:10,.0f} tasks/s
          toolkit run()         {med["tk_tiny_run"]:7.3f} s  {n / med["tk_tiny_run"]:10,.0f} tasks/s
          raw client.map        {med["raw_tiny"]:7.3f} s  {n / med["raw_tiny"]:10,.0f} tasks/s
          raw, 1,024-item chunks{med["chunk_tiny"]:7.3f} s  {n / med["chunk_tiny"]:10,.0f} tasks/s
          toolkit in-run / raw client.map: {med["raw_tiny"] / med["tk_tiny_in"]:.1f}x faster
        {args.cpu} CPU-bound tasks of ~{args.cpu_seconds} s:
          toolkit in-run        {med["tk_cpu_in"]:7.3f} s
          toolkit run()         {med["tk_cpu_run"]:7.3f} s
          raw client.map        {med["raw_cpu"]:7.3f} s
          toolkit in-run / raw: {med["tk_cpu_in"] / med["raw_cpu"]:.3f}x
          core util, task seconds / (wall x 2): toolkit {statistics.median(util["tk"]):.1%}, raw {statistics.median(util["raw"]):.1%}
    """)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
