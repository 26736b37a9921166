"""Tasks for the benchmark recipes, and two lifecycle hooks that time the run.

The harness copies this file next to each recipe it writes (``plugins =
["bench_tasks.py"]``). The hooks run in the toolkit's main process: at
``toolkit_run_start`` they note the time and the process's resident memory, at
``toolkit_run_finish`` they write, to the file named by ``TOOLKIT_BENCH_STATS``, the
seconds between the two ("in-run": workers started, every instance run, every record
written, workers stopped) and the process's memory then (VmRSS, VmHWM).
"""

from __future__ import annotations

import json
import os
import time

import toolkit

_state: dict[str, float] = {}


def square(x: int) -> int:
    """x*x: a task with almost no work, to measure the per-instance overhead."""
    return x * x


def noop(i: int = 0) -> None:
    """Nothing at all."""
    return None


def burn(loops: int, i: int = 0) -> dict:
    """Pure-Python CPU work; returns a checksum and the seconds it took."""
    t0 = time.perf_counter()
    acc = 0
    for k in range(loops):
        acc = (acc + k * k) % 1_000_003
    return {"acc": acc, "task_s": time.perf_counter() - t0}


def item(i: int) -> float:
    """A small float, like the baselines' transport items."""
    return i * 1.2345


def size(path: str, root: str = "") -> int:
    """The size of a file (relative to ``root``): one instance per input file."""
    return os.path.getsize(os.path.join(root, path))


def _status_mib(field: str) -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    for func in (square, noop, burn, item, size):
        registry.add(func, name=f"bench.{func.__name__}")


@toolkit.hookimpl
def toolkit_run_start(run):
    _state["rss_start_mib"] = _status_mib("VmRSS")
    _state["hwm_start_mib"] = _status_mib("VmHWM")
    _state["t0"] = time.perf_counter()
    _state["cpu0"] = time.process_time()


@toolkit.hookimpl
def toolkit_run_finish(run, summary):
    in_run = time.perf_counter() - _state.get("t0", time.perf_counter())
    in_run_cpu = time.process_time() - _state.get("cpu0", time.process_time())
    path = os.environ.get("TOOLKIT_BENCH_STATS")
    if not path:
        return
    stats = {
        "in_run_s": in_run,
        # the main process's CPU in that time (not its workers'): steadier on a loaded machine
        "in_run_cpu_s": in_run_cpu,
        "rss_start_mib": _state.get("rss_start_mib", 0.0),
        "hwm_start_mib": _state.get("hwm_start_mib", 0.0),
        "rss_end_mib": _status_mib("VmRSS"),
        "hwm_end_mib": _status_mib("VmHWM"),
        "status": summary.status,
        "run_dir": str(run.run_dir),
    }
    with open(path, "w") as f:
        json.dump(stats, f)
