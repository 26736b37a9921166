"""Case 2: one process per task. N no-op instances with the ``process`` executor
(2 at a time) against raw ``multiprocessing.Process`` start/join with 2 in flight, for
each start method.

The toolkit's figure is its cost per instance at the margin: the in-run time (run start
to run finish hooks) of N instances minus that of N/10, over 0.9 N: what each extra
instance costs, without the run's fixed costs (the Manager process, the sinks, the
manifest), which the raw loop does not have. ``all-in`` divides the whole in-run time
by N instead. Raw: the loop's wall over N (the fork server is started before it).
"""

from __future__ import annotations

from common import (
    CaseResult,
    Config,
    baseline,
    check_results,
    median,
    num,
    ratio,
    spread,
    toolkit_run,
    write_recipe,
)

KEY = "2"
TITLE = "process per task: no-op instances, 2 at a time"
START_METHODS = ("fork", "forkserver", "spawn")

RECIPE = """
[run]
executor = "process"
workers = 2
start_method = "{method}"
[[task]]
name = "noop"
uses = "bench.noop"
matrix = {{ i = {{ range = [0, {n}] }} }}
"""


def run(cfg: Config) -> CaseResult:
    n = 4 if cfg.quick else 200
    small = 1 if cfg.quick else 20
    out = CaseResult(KEY, f"{TITLE}, N = {n} (margin over N = {small})")
    samples: dict[str, dict[str, list]] = {m: {"big": [], "small": [], "raw": []} for m in START_METHODS}
    for _ in range(cfg.reps):
        for m in START_METHODS:
            for label, count in (("big", n), ("small", small)):
                recipe = write_recipe(cfg, f"bench-proc-{m}-{label}", RECIPE.format(method=m, n=count))
                res = toolkit_run(cfg, recipe)
                check_results(res["run_dir"], count, cleanup=not cfg.keep)
                samples[m][label].append(res)
            samples[m]["raw"].append(baseline("processes", n=n, start_method=m))
    out.headers = [
        "start method",
        "raw ms/process",
        "toolkit ms/instance (margin)",
        "toolkit/raw",
        "toolkit all-in ms/instance",
        "toolkit e2e s",
        "range margin ms",
    ]
    fig = {}
    for m in START_METHODS:
        s = samples[m]
        raw = median([x["run_s"] / n * 1e3 for x in s["raw"]])
        margins = [
            (b["in_run_s"] - a["in_run_s"]) / (n - small) * 1e3
            for b, a in zip(s["big"], s["small"], strict=True)
        ]
        margin = median(margins)
        allin = median([x["in_run_s"] / n * 1e3 for x in s["big"]])
        e2e = median([x["e2e_s"] for x in s["big"]])
        r = ratio(margin, raw)
        fig[m] = dict(raw_ms=raw, margin_ms=margin, allin_ms=allin, e2e_s=e2e, ratio=r)
        out.rows.append(
            [m, f"{raw:.2f}", f"{margin:.2f}", num(r, ".2f"), f"{allin:.2f}", f"{e2e:.2f}", spread(margins)]
        )
        out.target(f"process executor / raw Process, {m}", r, "<= 1.25x", r <= 1.25, f"{r:.2f}x")
    out.data = {"n": n, "small": small, "figures": fig}
    return out
