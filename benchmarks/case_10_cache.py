"""Case 10: incremental runs. A 100,000-instance sweep run once with the cache on, then
again fully cached; the cost of the cache on a cold run of case 1; planning a 10,000-file
glob; input files read once per run.

- fully cached: ``toolkit run --cache`` of a sweep whose every instance is in the cache
  (e2e against the first run's e2e, and cached instances per second in-run: from
  ``toolkit_run_start`` to ``toolkit_run_finish``, the lookup and every record copied
  into the new run's results.jsonl); ``toolkit plan --cache`` of it (the re-plan); and,
  steadier on a loaded machine, the CPU time of each (the toolkit process and its
  workers). A run whose report is written in the background (big results) is let finish
  it before the next run is timed: it would take a core from that run;
- cold: case 1's recipe (x*x, pool, 2 workers, fork) with ``--cache`` on an empty cache
  against the same run without it, repetitions interleaved;
- many tasks: 2,000 ``[[task]]`` tables of one instance each, run, then run fully cached
  (each task's lookup once read the whole source file: quadratic in the tasks);
- glob: ``toolkit plan`` of a task with ``matrix = { path = { glob = "data/*.txt" } }``
  over 10,000 files (e2e, a fresh process);
- reads: a run with the cache on over those files, then another after one file changed:
  the manifest's ``[cache] files_read`` (each changed file read once, others not at all).
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from common import CaseResult, Config, median, num, ratio, spread, toolkit_run, toolkit_script, write_recipe

KEY = "10"
TITLE = "incremental runs: the results cache"

SWEEP = """
[run]
executor = "pool"
workers = 2
start_method = "fork"
[[task]]
name = "work"
uses = "bench.burn"
params = {{ loops = {loops} }}
matrix = {{ i = {{ range = [0, {n}] }} }}
"""

TINY = """
[run]
executor = "pool"
workers = 2
start_method = "fork"
[[task]]
name = "sq"
uses = "bench.square"
matrix = {{ x = {{ range = [0, {n}] }} }}
"""

TASK = """
[[task]]
name = "t{i}"
uses = "bench.square"
params = {{ x = {i} }}
"""

GLOB = """
[run]
executor = "pool"
workers = 2
[[task]]
name = "size"
uses = "bench.size"
params = {{ root = "${{recipe.dir}}" }}
matrix = {{ path = {{ glob = "data/*.txt" }} }}
"""


def sizes(cfg: Config) -> tuple[int, int, int]:
    """(sweep, tiny, files)"""
    return (2_000, 2_000, 200) if cfg.quick else (100_000, 200_000, 10_000)


def _manifest(run_dir: str | Path) -> dict:
    return tomllib.loads((Path(run_dir) / "manifest.toml").read_text())


def _clear(recipe: Path) -> None:
    shutil.rmtree(recipe.parent / "runs", ignore_errors=True)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _report_written(run_dir: str | Path, timeout: float = 300) -> None:
    """Wait until the run's report, when a background process writes it, is there."""
    from toolkit.report.after_run import is_pending

    page = Path(run_dir) / "report.html"
    deadline = time.monotonic() + timeout
    while is_pending(page) and time.monotonic() < deadline:
        time.sleep(0.1)


def _run(cfg: Config, recipe: Path, *args: str) -> dict[str, Any]:
    """``toolkit_run`` plus ``cpu_s`` (the toolkit process and its workers), its report
    left to finish."""
    cpu = _children_cpu()
    res = toolkit_run(cfg, recipe, *args)
    res["cpu_s"] = _children_cpu() - cpu
    _report_written(res["run_dir"])
    return res


def _plan(recipe: Path, *args: str) -> dict[str, Any]:
    """``toolkit plan RECIPE`` in a fresh process: ``e2e_s``, ``cpu_s``, the process."""
    cpu = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*toolkit_script(), "plan", str(recipe), *args], capture_output=True, text=True, cwd=recipe.parent
    )
    return {"e2e_s": time.perf_counter() - t0, "cpu_s": _children_cpu() - cpu, "proc": proc}


def run(cfg: Config) -> CaseResult:
    n_sweep, n_tiny, n_files = sizes(cfg)
    out = CaseResult(
        KEY, f"{TITLE}: sweep N = {n_sweep:,}, cold case 1 N = {n_tiny:,}, glob {n_files:,} files"
    )

    # -- a sweep, then the same sweep fully cached ----------------------------
    sweep = write_recipe(cfg, "bench-cache-sweep", SWEEP.format(n=n_sweep, loops=1000))
    firsts, cached, replans = [], [], []
    for _ in range(cfg.reps):
        _clear(sweep)
        firsts.append(_run(cfg, sweep, "--cache"))
        replan = _plan(sweep, "--cache")
        if replan["proc"].returncode != 0 or "0 to run" not in replan["proc"].stdout:
            raise RuntimeError(f"plan of the fully cached sweep: {replan['proc'].stdout[-300:]}")
        replans.append(replan)
        res = _run(cfg, sweep, "--cache")
        m = _manifest(res["run_dir"])
        if m.get("cache", {}).get("hits") != n_sweep:
            raise RuntimeError(f"fully cached run took {m.get('cache')} from the cache, not {n_sweep}")
        cached.append(res)
    first_e2e = median([r["e2e_s"] for r in firsts])
    cached_e2e = median([r["e2e_s"] for r in cached])
    cached_in = median([r["in_run_s"] for r in cached])
    replan_e2e = median([r["e2e_s"] for r in replans])
    first_cpu = median([r["cpu_s"] for r in firsts])
    cached_cpu = median([r["cpu_s"] for r in cached])
    replan_cpu = median([r["cpu_s"] for r in replans])
    share = ratio(cached_e2e, first_e2e)
    replan_share = ratio(replan_e2e, first_e2e)
    rate = n_sweep / cached_in if cached_in else None
    cached_in_cpu = median([r.get("in_run_cpu_s") for r in cached])
    cpu_rate = n_sweep / cached_in_cpu if cached_in_cpu else None

    # -- the cache's cost on a cold run of case 1 ---------------------------------
    tiny = write_recipe(cfg, "bench-cache-cold", TINY.format(n=n_tiny))
    off, on = [], []
    for _ in range(cfg.reps):
        _clear(tiny)
        off.append(_run(cfg, tiny))
        _clear(tiny)
        on.append(_run(cfg, tiny, "--cache"))
    off_e2e, on_e2e = median([r["e2e_s"] for r in off]), median([r["e2e_s"] for r in on])
    off_cpu, on_cpu = median([r["cpu_s"] for r in off]), median([r["cpu_s"] for r in on])
    cold = ratio(on_e2e, off_e2e)

    # -- many tasks of one instance, fully cached ------------------------------------
    n_tasks = 200 if cfg.quick else 2_000
    many = write_recipe(
        cfg,
        "bench-cache-tasks",
        '[run]\nexecutor = "pool"\nworkers = 2\n' + "".join(TASK.format(i=i) for i in range(n_tasks)),
    )
    _clear(many)
    many_first = _run(cfg, many, "--cache")
    many_cached = _run(cfg, many, "--cache")
    if _manifest(many_cached["run_dir"]).get("cache", {}).get("hits") != n_tasks:
        raise RuntimeError(f"the fully cached run of {n_tasks} tasks did not take them all from the cache")

    # -- a 10,000-file glob: plan, and files read once ------------------------------
    globbed = write_recipe(cfg, "bench-cache-glob", GLOB.format())
    data = globbed.parent / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    for i in range(n_files):
        (data / f"f{i:05d}.txt").write_text(f"{i}\n")
    plans, plan_cpus = [], []
    for _ in range(cfg.reps):
        done = _plan(globbed)
        proc = done["proc"]
        plans.append(done["e2e_s"])
        plan_cpus.append(done["cpu_s"])
        if proc.returncode != 0:
            out.notes.append(f"glob plan failed: {(proc.stdout + proc.stderr)[-300:]}")
            break
    else:
        plan_s = median(plans)
        _clear(globbed)
        first = _manifest(_run(cfg, globbed, "--cache")["run_dir"]).get("cache", {})
        (data / "f00000.txt").write_text("changed\n")
        second = _manifest(_run(cfg, globbed, "--cache")["run_dir"]).get("cache", {})
    if len(plans) < cfg.reps or proc.returncode != 0:
        plan_s, first, second = None, {}, {}

    out.headers = ["what", "figure", "range"]
    out.rows = [
        [
            f"first run, {n_sweep:,} x burn(1000), cache on: e2e s",
            f"{first_e2e:.3f}",
            spread([r["e2e_s"] for r in firsts]),
        ],
        ["the same, fully cached: e2e s", f"{cached_e2e:.3f}", spread([r["e2e_s"] for r in cached])],
        ["fully cached: in-run s", f"{cached_in:.3f}", spread([r["in_run_s"] for r in cached], ".3f")],
        ["cached instances/s (in-run)", num(rate), ""],
        ["... per CPU second of the toolkit process (in-run)", num(cpu_rate), ""],
        [
            "toolkit plan --cache, fully cached: e2e s",
            f"{replan_e2e:.3f}",
            spread([r["e2e_s"] for r in replans]),
        ],
        [
            "CPU s: first run / fully cached run / plan",
            f"{first_cpu:.2f} / {cached_cpu:.2f} / {replan_cpu:.2f}",
            "",
        ],
        ["fully cached run / first run, CPU", num(ratio(cached_cpu, first_cpu), ".3f"), ""],
        [
            f"case 1 cold, {n_tiny:,} x*x, no cache: e2e s",
            f"{off_e2e:.3f}",
            spread([r["e2e_s"] for r in off]),
        ],
        ["case 1 cold, --cache on an empty cache: e2e s", f"{on_e2e:.3f}", spread([r["e2e_s"] for r in on])],
        ["case 1 cold, CPU s: without / with --cache", f"{off_cpu:.2f} / {on_cpu:.2f}", ""],
        [
            f"{n_tasks:,} tasks of 1 instance: first run / fully cached, in-run s",
            f"{many_first['in_run_s']:.2f} / {many_cached['in_run_s']:.2f}",
            "",
        ],
        [
            "... CPU s (process and workers)",
            f"{many_first['cpu_s']:.2f} / {many_cached['cpu_s']:.2f}",
            "",
        ],
        [f"toolkit plan, glob of {n_files:,} files: e2e s", num(plan_s, ".3f"), spread(plans, ".3f")],
        ["... its CPU s", num(median(plan_cpus), ".3f"), spread(plan_cpus, ".3f")],
        [
            "files read: first run / after 1 changed",
            f"{first.get('files_read')} / {second.get('files_read')}",
            "",
        ],
    ]
    out.target("fully cached e2e / first run e2e", share, "<= 0.10", None if share is None else share <= 0.10)
    out.target(
        "plan of it e2e / first run e2e",
        replan_share,
        "<= 0.10",
        None if replan_share is None else replan_share <= 0.10,
    )
    out.target(
        "cached instances/s in-run", rate, ">= 500,000", None if rate is None else rate >= 500_000, num(rate)
    )
    out.target("cold case 1 with --cache / without", cold, "<= 1.05x", None if cold is None else cold <= 1.05)
    out.target(
        f"plan of a {n_files:,}-file glob, s",
        plan_s,
        "< 1.0 s",
        None if plan_s is None else plan_s < 1.0,
        num(plan_s, ".3f"),
    )
    reads_ok = None if not first else first.get("files_read") == n_files and second.get("files_read") == 1
    out.target(
        "input files read once per run (first / after 1 changed)",
        None,
        f"{n_files} / 1",
        reads_ok,
        f"{first.get('files_read')} / {second.get('files_read')}",
    )
    out.notes.append(f"python {sys.version.split()[0]}; e2e = fresh `toolkit run` process, exec to exit")
    out.data = {
        "first_e2e": first_e2e,
        "cached_e2e": cached_e2e,
        "cached_in_run": cached_in,
        "cached_in_run_cpu": cached_in_cpu,
        "replan_e2e": replan_e2e,
        "cpu": {
            "first": first_cpu,
            "cached": cached_cpu,
            "replan": replan_cpu,
            "cold_off": off_cpu,
            "cold_on": on_cpu,
        },
        "cold_off": off_e2e,
        "cold_on": on_e2e,
        "plan_glob": plan_s,
        "files_read": [first.get("files_read"), second.get("files_read")],
    }
    return out
