"""Case 4: the collector. N records through the Manager queue into results.jsonl, from
2 pool workers running a task that does nothing but return a float: records per
second over the in-run time (workers started, every record written, workers stopped),
and the main process's memory growth (VmHWM at the end minus VmRSS at run start).

Baselines (bench_4 of the baselines, re-measured): 2 forked workers send small dicts,
256 per put, through a ``Manager().Queue`` and through a ``SimpleQueue``; the parent
writes one JSON line per item. The toolkit's records are ~6x larger than those dicts
(every field of a record, timestamps, key, worker, memory).
"""

from __future__ import annotations

import tempfile

from common import CaseResult, Config, baseline, check_results, median, num, spread, toolkit_run, write_recipe

KEY = "4"
TITLE = "collector: records into results.jsonl"

RECIPE = """
[run]
executor = "pool"
workers = 2
start_method = "fork"
[[task]]
name = "item"
uses = "bench.item"
matrix = {{ i = {{ range = [0, {n}] }} }}
"""


def run(cfg: Config) -> CaseResult:
    n = 2_000 if cfg.quick else 100_000
    out = CaseResult(KEY, f"{TITLE}, N = {n:,}")
    tk, mgr, simple = [], [], []
    tmp = tempfile.mkdtemp(prefix="bench4-", dir=cfg.work)
    for _ in range(cfg.reps):
        recipe = write_recipe(cfg, "bench-collector", RECIPE.format(n=n))
        res = toolkit_run(cfg, recipe)
        res["growth_mib"] = res["hwm_end_mib"] - res["rss_start_mib"]
        check_results(res["run_dir"], n, cleanup=not cfg.keep)
        tk.append(res)
        mgr.append(baseline("transport", "manager", n=n, out_dir=tmp))
        simple.append(baseline("transport", "simple", n=n, out_dir=tmp))
    rate = median([n / x["in_run_s"] for x in tk])
    growth = median([x["growth_mib"] for x in tk])
    out.headers = ["method", "records/s", "wall s", "parent growth MiB", "range records/s"]
    out.rows.append(
        [
            "toolkit run (pool -> Manager queue -> results.jsonl)",
            num(rate),
            f"{median([x['in_run_s'] for x in tk]):.3f}",
            f"{growth:.1f}",
            spread([n / x["in_run_s"] for x in tk], ",.0f"),
        ]
    )
    for label, s in (("raw Manager().Queue, 256/put", mgr), ("raw SimpleQueue, 256/put", simple)):
        out.rows.append(
            [
                label,
                num(median([n / x["run_s"] for x in s])),
                f"{median([x['run_s'] for x in s]):.3f}",
                f"{median([x['growth_mib'] for x in s]):.1f}",
                spread([n / x["run_s"] for x in s], ",.0f"),
            ]
        )
    out.target("collector records/s", rate, ">= 150,000", rate >= 150_000, num(rate))
    per100k = growth * 100_000 / n
    out.target(
        "parent memory growth per 100k records", per100k, "< 10 MiB", per100k < 10, f"{per100k:.1f} MiB"
    )
    out.data = {"n": n, "toolkit": tk, "manager": mgr, "simple": simple}
    return out
