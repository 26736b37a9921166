#!/usr/bin/env python3
"""The toolkit's performance suite: every case against its raw baselines, in one run.

A small script of our own (not pytest-benchmark): each case runs the toolkit through its
real entry point (``toolkit run`` in a fresh process) and the baselines in fresh
processes too, repetitions interleaved, and prints the medians, the ratios and PASS or
MISS for each target. See benchmarks/README.md.

Usage: python benchmarks/run.py [--reps 3] [--quick] [--only 1,4] [--json FILE]
                                [--markdown FILE] [--quiet-wait S] [--strict]
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CaseResult, Config, Noise, fmt_table, machine, md_table, wait_for_quiet

CASES = {
    "1": "case_1_tiny",
    "2": "case_2_process",
    "3": "case_3_cpu",
    "4": "case_4_collector",
    "5": "case_5_scale",
    "6": "case_6_shell",
    "7": "case_7_startup",
    "8": "case_8_dask",
    "9": "case_9_report",
    "10": "case_10_cache",
    "11": "case_11_chains",
    "12": "case_12_schedule",
    "13": "case_13_recipes",
}


def compile_toolkit() -> str:
    """Byte-compile the toolkit's modules where they live, as an install does: a source
    checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module at
    every start, which is not what users run (see BASELINES.md, start-up)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("toolkit")
    if spec is None or not spec.submodule_search_locations:
        return "toolkit not found"
    folder = next(iter(spec.submodule_search_locations))
    try:
        ok = compileall.compile_dir(folder, quiet=2)
    except OSError as exc:
        return f"could not byte-compile {folder}: {exc}"
    return f"byte-compiled {folder}" if ok else f"byte-compiling {folder} failed in part"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="repetitions; the median is reported (default 3)")
    ap.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks that every case runs, judges nothing"
    )
    ap.add_argument("--only", help="comma-separated case numbers, e.g. 1,4")
    ap.add_argument("--json", help="also write every figure to this JSON file")
    ap.add_argument("--markdown", help="also write the tables as Markdown to this file")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=0,
        metavar="S",
        help="before each case, wait up to S s for other load < 0.15 cores",
    )
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the work directory and run directories")
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.only.split(",")] if args.only else list(CASES)
    unknown = [k for k in keys if k not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")

    compiled = compile_toolkit()
    work = Path(tempfile.mkdtemp(prefix="toolkit-bench-"))
    cfg = Config(reps=max(1, args.reps), quick=args.quick, work=work, keep=args.keep)
    info = machine()
    head = (
        f"# toolkit benchmarks: python {info['python']}, {info['cpus']} cpus ({info['cpu_model']}), "
        f"{info['mem_gib']} GiB, kernel {info['kernel']}, toolkit {info['packages']['toolkit']} "
        f"({info['commit']}), reps={cfg.reps} (median){', QUICK sizes: targets not judged' if cfg.quick else ''}"
    )
    pk = ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v and k != "toolkit")
    print(
        head + f"\n# baselines: {pk or 'none installed'}; GNU parallel: {info['gnu_parallel'] or 'missing'}"
        f"\n# {compiled}",
        flush=True,
    )
    results: list[CaseResult] = []
    failed = 0
    md: list[str] = []
    t_all = time.perf_counter()
    try:
        for key in keys:
            mod = importlib.import_module(CASES[key])
            quiet = ""
            if args.quiet_wait:
                waited, busy = wait_for_quiet(args.quiet_wait)
                quiet = f" (waited {waited:.0f} s for quiet: other load {busy:.2f} cores)"
            print(f"\n== case {key}: {mod.TITLE}", flush=True)
            try:
                with Noise(probe=not cfg.quick) as noise:
                    res = mod.run(cfg)
            except Exception as exc:  # report, go on with the other cases
                failed += 1
                res = CaseResult(key, mod.TITLE, skipped=f"ERROR: {type(exc).__name__}: {exc}")
                traceback.print_exc()
                noise = None
            results.append(res)
            if res.skipped:
                print(f"skipped: {res.skipped}")
                md.append(f"### Case {key}: {res.title}\n\nskipped: {res.skipped}\n")
                continue
            print(res.title)
            print(fmt_table(res.headers, res.rows))
            for note in res.notes:
                print(f"  note: {note}")
            for t in res.targets:
                verdict = "(not judged)" if cfg.quick else t.verdict()
                print(f"  target: {t.name}: {t.shown} (goal {t.goal}) {verdict}")
            if noise is not None:
                print(f"  # {noise.line()}{quiet}", flush=True)
                res.data["noise"] = dict(
                    foreign_cores=noise.foreign, steal=noise.steal, probe=noise.probe, wall=noise.wall
                )
            md.append(f"### Case {key}: {res.title}\n\n{md_table(res.headers, res.rows)}\n")
    finally:
        if not cfg.keep:
            shutil.rmtree(work, ignore_errors=True)

    rows = []
    for r in results:
        if r.skipped:
            rows.append([r.key, r.skipped[:70], "", "", "-"])
        for t in r.targets:
            rows.append([r.key, t.name, t.shown, t.goal, "(quick)" if cfg.quick else t.verdict()])
    print("\n== summary")
    print(fmt_table(["case", "target", "measured", "goal", "verdict"], rows))
    print(f"# total {time.perf_counter() - t_all:.0f} s")
    if args.markdown:
        summary = md_table(["case", "target", "measured", "goal", "verdict"], rows)
        Path(args.markdown).write_text(f"{head}\n\n" + "\n".join(md) + f"\n### Summary\n\n{summary}\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": info,
                    "quick": cfg.quick,
                    "reps": cfg.reps,
                    "cases": [asdict(r) for r in results],
                },
                f,
                indent=1,
                default=str,
            )
    missed = any(t.ok is False for r in results for t in r.targets)
    if failed:
        return 2
    return 1 if (args.strict and missed and not cfg.quick) else 0


if __name__ == "__main__":
    sys.exit(main())
