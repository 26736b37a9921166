"""Case 5: scale. A 1,000,000-instance sweep of ``x*x`` end to end, against the same
recipe at 200,000 instances in the same repetitions: throughput (in-run and end to end)
and the main process's peak memory (``ru_maxrss`` of ``toolkit run`` itself, from exec
to exit, planning included). Cost must grow linearly: the 1M throughput within 15 % of
the 200k one, and the parent's peak under 150 MiB.
"""

from __future__ import annotations

from case_1_tiny import RECIPE
from common import (
    CaseResult,
    Config,
    check_results,
    median,
    num,
    spread,
    sum_of_squares,
    toolkit_run,
    write_recipe,
)

KEY = "5"
TITLE = "scale: a 1M-instance sweep vs 200k"


def run(cfg: Config) -> CaseResult:
    big, ref = (20_000, 4_000) if cfg.quick else (1_000_000, 200_000)
    out = CaseResult(KEY, f"{TITLE} (N = {big:,} vs {ref:,})")
    s: dict[int, list] = {big: [], ref: []}
    for _ in range(cfg.reps):
        for n in (big, ref):
            recipe = write_recipe(cfg, f"bench-scale-{n}", RECIPE.format(n=n))
            res = toolkit_run(cfg, recipe)
            check_results(res["run_dir"], n, sum_of_squares(n), cleanup=not cfg.keep)
            s[n].append(res)
    out.headers = ["N", "tasks/s in-run", "tasks/s e2e", "e2e s", "parent peak MiB", "range tasks/s in-run"]
    fig = {}
    for n in (ref, big):
        rate = median([n / x["in_run_s"] for x in s[n]])
        rate_e2e = median([n / x["e2e_s"] for x in s[n]])
        peak = median([x["maxrss_mib"] for x in s[n]])
        fig[n] = dict(rate=rate, rate_e2e=rate_e2e, peak=peak)
        out.rows.append(
            [
                f"{n:,}",
                num(rate),
                num(rate_e2e),
                f"{median([x['e2e_s'] for x in s[n]]):.2f}",
                f"{peak:.1f}",
                spread([n / x["in_run_s"] for x in s[n]], ",.0f"),
            ]
        )
    rel = fig[big]["rate"] / fig[ref]["rate"]
    out.target(f"throughput {big:,} / {ref:,} (in-run)", rel, ">= 0.85x", rel >= 0.85, f"{rel:.2f}x")
    peak = fig[big]["peak"]
    out.target(f"parent peak at {big:,}", peak, "< 150 MiB", peak < 150, f"{peak:.0f} MiB")
    out.data = {"big": big, "ref": ref, "figures": fig}
    return out
