#!/usr/bin/env python3
"""Where a tiny task's time goes in a worker: the per-instance cost of ``BatchRunner.run``.

Runs N instances of ``x*x`` (the recipe of case 1) through the worker's batch loop in
this process, with no pool and no queue around it, and prints the CPU microseconds per
instance (the best of a few runs) and a cProfile of one run, sorted by own time.

Usage: python benchmarks/profile_worker.py [--n 50000] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()

    from multiprocessing import RawArray

    import bench_tasks

    from toolkit.execution.api import Batch, TaskRuntime, WorkerSetup
    from toolkit.execution.worker import BatchRunner
    from toolkit.recipe.model import TaskSpec

    spec = TaskSpec(name="sq", uses="bench.square", matrix={"x": {"range": [0, args.n]}})
    runtime = TaskRuntime(spec=spec, func=bench_tasks.square)
    setup = WorkerSetup(run_dir="")

    def once() -> float:
        runner = BatchRunner(setup, (runtime,), RawArray("d", [-1.0, 0.0, 0.0, 0.0]))
        out: list = []
        t0 = time.process_time()
        runner.run(Batch(id=0, task=0, indices=range(args.n)), out.append)
        return time.process_time() - t0

    best = min(once() for _ in range(5))
    print(f"BatchRunner.run: {best / args.n * 1e6:.2f} us of CPU per instance (best of 5, N = {args.n:,})")
    prof = cProfile.Profile(time.process_time)
    prof.runcall(once)
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
