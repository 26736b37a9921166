"""Case 6: shell tasks. N ``true`` commands with the built-in ``shell`` task (pool
executor, 2 workers, stdout and stderr captured, a record each) against
``parallel -j2 true ::: 1 .. N`` (GNU parallel). Both timed end to end, as commands.
"""

from __future__ import annotations

import shutil
import subprocess
import time

from common import CaseResult, Config, check_results, median, num, spread, toolkit_run, write_recipe

KEY = "6"
TITLE = "shell tasks: `true`, 2 at a time"

RECIPE = """
[run]
executor = "pool"
workers = 2
[[task]]
name = "true"
uses = "shell"
params = {{ cmd = "true" }}
matrix = {{ i = {{ range = [0, {n}] }} }}
"""


def run(cfg: Config) -> CaseResult:
    n = 20 if cfg.quick else 2_000
    out = CaseResult(KEY, f"{TITLE}, N = {n:,}")
    parallel = shutil.which("parallel")
    tk, par = [], []
    for _ in range(cfg.reps):
        recipe = write_recipe(cfg, "bench-shell", RECIPE.format(n=n))
        res = toolkit_run(cfg, recipe)
        check_results(res["run_dir"], n, cleanup=not cfg.keep)
        tk.append(res)
        if parallel:
            t0 = time.perf_counter()
            subprocess.run(
                [parallel, "--will-cite", "-j2", "true", ":::", *map(str, range(n))],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
            par.append(time.perf_counter() - t0)
    t_rate = median([n / x["e2e_s"] for x in tk])
    out.headers = ["method", "commands/s", "e2e s", "range commands/s"]
    out.rows.append(
        [
            "toolkit run (shell task)",
            num(t_rate),
            f"{median([x['e2e_s'] for x in tk]):.2f}",
            spread([n / x["e2e_s"] for x in tk], ",.0f"),
        ]
    )
    if par:
        p_rate = median([n / w for w in par])
        out.rows.append(
            [
                "parallel -j2 true ::: ...",
                num(p_rate),
                f"{median(par):.2f}",
                spread([n / w for w in par], ",.0f"),
            ]
        )
        r = t_rate / p_rate
        out.target("shell throughput, toolkit / GNU parallel", r, ">= 1.0x", r >= 1.0, f"{r:.2f}x")
    else:
        out.notes.append("GNU parallel is not installed: baseline skipped (apt-get install parallel)")
        out.target("shell throughput, toolkit / GNU parallel", None, ">= 1.0x", None)
    out.data = {"n": n, "toolkit": tk, "parallel": par}
    return out
