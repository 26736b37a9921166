"""Case 11: many tasks. A recipe of N ``[[task]]`` tables of one no-op instance each,
in chains (each task ``needs`` the one before it; a chain is ``CHAIN`` tasks long, the
chains run side by side): ``toolkit plan`` and ``toolkit run`` end to end, at 1,000 and
at 10,000 tables, repetitions interleaved.

Judged on linearity: (plan + run) of 10,000 tables within 12x that of 1,000. Beside it,
a raw dependency-driven ``Pool(2)`` (``apply_async`` of each task once the one it needs
has returned, in a fresh interpreter) gives the floor per task.
"""

from __future__ import annotations

import subprocess
import time

from common import (
    CaseResult,
    Config,
    baseline,
    check_results,
    median,
    spread,
    toolkit_run,
    toolkit_script,
    write_recipe,
)

KEY = "11"
TITLE = "many tasks: [[task]] tables in needs chains, no-op instances"
CHAIN = 10

HEAD = """
[run]
executor = "pool"
workers = 2
start_method = "fork"
"""


def recipe_text(n: int) -> str:
    parts = [HEAD]
    for i in range(n):
        parts.append(f'[[task]]\nname = "t{i}"\nuses = "bench.noop"\n')
        if i % CHAIN:
            parts.append(f'needs = ["t{i - 1}"]\n')
    return "".join(parts)


def plan_s(recipe) -> float:
    cmd = [*toolkit_script(), "plan", str(recipe)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return wall


def run(cfg: Config) -> CaseResult:
    small, big = (10, 100) if cfg.quick else (1_000, 10_000)
    out = CaseResult(KEY, f"{TITLE}, chains of {CHAIN}, N = {small:,} and {big:,}")
    recipes = {n: write_recipe(cfg, f"bench-chains-{n}", recipe_text(n)) for n in (small, big)}
    s: dict[int, dict[str, list[float]]] = {n: {"plan": [], "run": [], "raw": []} for n in (small, big)}
    for _ in range(cfg.reps):
        for n in (small, big):
            s[n]["plan"].append(plan_s(recipes[n]))
            res = toolkit_run(cfg, recipes[n])
            check_results(res["run_dir"], n, cleanup=not cfg.keep)
            s[n]["run"].append(res["e2e_s"])
            s[n]["raw"].append(baseline("chains", n=n, chain=CHAIN)["e2e_s"])
    out.headers = [
        "toolkit",
        "plan e2e s",
        "run e2e s",
        "plan + run s",
        "ms per table",
        "raw Pool(2) chains e2e s",
        "range plan + run s",
    ]
    fig = {}
    for n in (small, big):
        both = [p + r for p, r in zip(s[n]["plan"], s[n]["run"], strict=True)]
        fig[n] = dict(
            plan=median(s[n]["plan"]), run=median(s[n]["run"]), both=median(both), raw=median(s[n]["raw"])
        )
        out.rows.append(
            [
                f"toolkit, {n:,} tables",
                f"{fig[n]['plan']:.2f}",
                f"{fig[n]['run']:.2f}",
                f"{fig[n]['both']:.2f}",
                f"{fig[n]['both'] / n * 1e3:.2f}",
                f"{fig[n]['raw']:.2f}",
                spread(both),
            ]
        )
    grow = fig[big]["both"] / fig[small]["both"]
    times = big // small
    out.target(
        f"plan + run, {big:,} / {small:,} tables",
        grow,
        f"<= {1.2 * times:g}x",
        grow <= 1.2 * times,
        f"{grow:.2f}x",
    )
    out.notes.append(
        f"plan alone {fig[big]['plan'] / fig[small]['plan']:.2f}x, run alone {fig[big]['run'] / fig[small]['run']:.2f}x "
        f"for {times}x the tables; the raw pool {fig[big]['raw'] / fig[small]['raw']:.2f}x"
    )
    out.data = {"small": small, "big": big, "figures": fig, "samples": s}
    return out
