"""Case 1: tiny tasks. N instances of ``x*x`` through ``toolkit run`` (pool executor,
every record written to results.jsonl) against Pool.imap_unordered(chunksize=1024),
ProcessPoolExecutor.map(chunksize=1024), joblib Parallel(n_jobs=2) and mpire.

Every method runs in a fresh interpreter. ``e2e`` is that whole process, from exec to
exit (interpreter, imports, workers, the work, results in hand): what a user waits for.
``warm`` is the work alone: for the baselines, the map call on a warm pool; for the
toolkit, the run from the ``toolkit_run_start`` hook to ``toolkit_run_finish`` (workers
started, every instance run, every record written, workers stopped).
"""

from __future__ import annotations

from common import (
    CaseResult,
    Config,
    baseline,
    check_results,
    have_module,
    median,
    num,
    ratio,
    spread,
    sum_of_squares,
    toolkit_run,
    write_recipe,
)

KEY = "1"
TITLE = "tiny tasks: x*x, 2 workers, fork"

RECIPE = """
[run]
executor = "pool"
workers = 2
start_method = "fork"
[[task]]
name = "sq"
uses = "bench.square"
matrix = {{ x = {{ range = [0, {n}] }} }}
"""

METHODS = [  # label, baselines.py method, needs module
    ("Pool.imap_unordered cs=1024", "imap", None),
    ("ProcessPoolExecutor.map cs=1024", "ppe", None),
    ("joblib Parallel(n_jobs=2)", "joblib", "joblib"),
    ("mpire WorkerPool(2).map", "mpire", "mpire"),
]


def size(cfg: Config) -> int:
    return 2_000 if cfg.quick else 200_000


def toolkit_sample(cfg: Config, n: int, name: str = "bench-tiny") -> dict:
    recipe = write_recipe(cfg, name, RECIPE.format(n=n))
    res = toolkit_run(cfg, recipe)
    check_results(res["run_dir"], n, sum_of_squares(n), cleanup=not cfg.keep)
    return res


def run(cfg: Config) -> CaseResult:
    n = size(cfg)
    out = CaseResult(KEY, f"{TITLE}, N = {n:,}")
    methods = [(label, m) for label, m, mod in METHODS if mod is None or have_module(mod)]
    missing = [label for label, _, mod in METHODS if mod is not None and not have_module(mod)]
    samples: dict[str, list[dict]] = {"toolkit": []}
    for label, _ in methods:
        samples[label] = []
    for _ in range(cfg.reps):
        samples["toolkit"].append(toolkit_sample(cfg, n))
        for label, m in methods:
            samples[label].append(baseline("tiny", m, n=n))

    def figures(label: str) -> dict:
        s = samples[label]
        e2e = median([x["e2e_s"] for x in s])
        warm = median([x["in_run_s" if label == "toolkit" else "run_s"] for x in s])
        return dict(
            e2e=e2e,
            warm=warm,
            rate_e2e=n / e2e,
            rate_warm=n / warm,
            overhead=e2e - warm,
            rng=spread([n / x["e2e_s"] for x in s], ",.0f"),
        )

    fig = {label: figures(label) for label in samples}
    tk = fig["toolkit"]
    out.headers = [
        "method",
        "tasks/s e2e",
        "e2e s",
        "tasks/s warm",
        "warm s",
        "start+exit s",
        "toolkit/this e2e",
        "toolkit/this warm",
        "range tasks/s e2e",
    ]
    for label in samples:
        f = fig[label]
        name = "toolkit run (pool, writes results.jsonl)" if label == "toolkit" else label
        out.rows.append(
            [
                name,
                num(f["rate_e2e"]),
                f"{f['e2e']:.3f}",
                num(f["rate_warm"]),
                f"{f['warm']:.3f}",
                f"{f['overhead']:.3f}",
                num(ratio(tk["rate_e2e"], f["rate_e2e"]), ".2f"),
                num(ratio(tk["rate_warm"], f["rate_warm"]), ".2f"),
                f["rng"],
            ]
        )
    # goals: issue 16 (the toolkit writes every record; the raw pool writes nothing)
    for short, label, goal in (
        ("joblib", "joblib Parallel(n_jobs=2)", 2.5),
        ("mpire", "mpire WorkerPool(2).map", 2.0),
        ("raw Pool.imap_unordered", "Pool.imap_unordered cs=1024", 0.5),
    ):
        other = fig.get(label)
        r = ratio(tk["rate_e2e"], other["rate_e2e"]) if other else None
        out.target(
            f"toolkit / {short} throughput (e2e)",
            r,
            f">= {goal}x",
            None if r is None else r >= goal,
            num(r, ".2f") + "x" if r else "",
        )
    if missing:
        out.notes.append(f"not installed, skipped: {', '.join(missing)}")
    out.notes.append(
        "e2e = fresh process from exec to exit; warm = the work alone (baselines: map on a warm pool; "
        "toolkit: run start to run finish, workers started and stopped, every record written)."
    )
    out.data = {"n": n, "figures": fig}
    return out
