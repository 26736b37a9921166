"""Case 10: incremental runs. A 100,000-instance sweep run once with the cache on, then
again fully cached; the cost of the cache on a cold run of case 1; planning a 10,000-file
glob; input files read once per run.

- fully cached: ``toolkit run --cache`` of a sweep whose every instance is in the cache
  (e2e against the first run's e2e, and cached instances per second in-run: from
  ``toolkit_run_start`` to ``toolkit_run_finish``, the lookup and every record copied
  into the new run's results.jsonl);
- cold: case 1's recipe (x*x, pool, 2 workers, fork) with ``--cache`` on an empty cache
  against the same run without it, repetitions interleaved;
- glob: ``toolkit plan`` of a task with ``matrix = { path = { glob = "data/*.txt" } }``
  over 10,000 files (e2e, a fresh process);
- reads: a run with the cache on over those files, then another after one file changed:
  the manifest's ``[cache] files_read`` (each changed file read once, others not at all).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

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


def run(cfg: Config) -> CaseResult:
    n_sweep, n_tiny, n_files = sizes(cfg)
    out = CaseResult(
        KEY, f"{TITLE}: sweep N = {n_sweep:,}, cold case 1 N = {n_tiny:,}, glob {n_files:,} files"
    )

    # -- a sweep, then the same sweep fully cached ----------------------------
    sweep = write_recipe(cfg, "bench-cache-sweep", SWEEP.format(n=n_sweep, loops=1000))
    firsts, cached = [], []
    for _ in range(cfg.reps):
        _clear(sweep)
        firsts.append(toolkit_run(cfg, sweep, "--cache"))
        res = toolkit_run(cfg, sweep, "--cache")
        m = _manifest(res["run_dir"])
        if m.get("cache", {}).get("hits") != n_sweep:
            raise RuntimeError(f"fully cached run took {m.get('cache')} from the cache, not {n_sweep}")
        cached.append(res)
    first_e2e = median([r["e2e_s"] for r in firsts])
    cached_e2e = median([r["e2e_s"] for r in cached])
    cached_in = median([r["in_run_s"] for r in cached])
    share = ratio(cached_e2e, first_e2e)
    rate = n_sweep / cached_in if cached_in else None

    # -- the cache's cost on a cold run of case 1 ---------------------------------
    tiny = write_recipe(cfg, "bench-cache-cold", TINY.format(n=n_tiny))
    off, on = [], []
    for _ in range(cfg.reps):
        _clear(tiny)
        off.append(toolkit_run(cfg, tiny))
        _clear(tiny)
        on.append(toolkit_run(cfg, tiny, "--cache"))
    off_e2e, on_e2e = median([r["e2e_s"] for r in off]), median([r["e2e_s"] for r in on])
    cold = ratio(on_e2e, off_e2e)

    # -- a 10,000-file glob: plan, and files read once ------------------------------
    globbed = write_recipe(cfg, "bench-cache-glob", GLOB.format())
    data = globbed.parent / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    for i in range(n_files):
        (data / f"f{i:05d}.txt").write_text(f"{i}\n")
    plans = []
    for _ in range(cfg.reps):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*toolkit_script(), "plan", str(globbed)], capture_output=True, text=True, cwd=globbed.parent
        )
        plans.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            out.notes.append(f"glob plan failed: {(proc.stdout + proc.stderr)[-300:]}")
            break
    else:
        plan_s = median(plans)
        _clear(globbed)
        first = _manifest(toolkit_run(cfg, globbed, "--cache")["run_dir"]).get("cache", {})
        (data / "f00000.txt").write_text("changed\n")
        second = _manifest(toolkit_run(cfg, globbed, "--cache")["run_dir"]).get("cache", {})
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
        [
            f"case 1 cold, {n_tiny:,} x*x, no cache: e2e s",
            f"{off_e2e:.3f}",
            spread([r["e2e_s"] for r in off]),
        ],
        ["case 1 cold, --cache on an empty cache: e2e s", f"{on_e2e:.3f}", spread([r["e2e_s"] for r in on])],
        [f"toolkit plan, glob of {n_files:,} files: e2e s", num(plan_s, ".3f"), spread(plans, ".3f")],
        [
            "files read: first run / after 1 changed",
            f"{first.get('files_read')} / {second.get('files_read')}",
            "",
        ],
    ]
    out.target("fully cached e2e / first run e2e", share, "<= 0.10", None if share is None else share <= 0.10)
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
        "cold_off": off_e2e,
        "cold_on": on_e2e,
        "plan_glob": plan_s,
        "files_read": [first.get("files_read"), second.get("files_read")],
    }
    return out
