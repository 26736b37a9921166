"""``toolkit cache info|clear [TASK]``: the results cache of a recipe; and what
``toolkit plan`` says of it (:func:`explain_cache`)."""

from __future__ import annotations

from typing import Any

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl

DEFAULT_OUTPUT = "runs"


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser(
        "cache",
        help=HELP["cache"],
        description="The results cache of a recipe (<output>/<recipe>/cache.db): `info` shows what"
        " it holds per task, `clear` forgets it (all of it, or one task's). Without --recipe, every"
        " recipe's cache under --output.",
    )
    p.add_argument("action", choices=("info", "clear"), help="info: show; clear: forget")
    p.add_argument("task", nargs="?", metavar="TASK", help="only this task")
    p.add_argument(
        "--recipe", metavar="RECIPE", help="a recipe file, or a recipe's name (default: every recipe)"
    )
    p.add_argument(
        "--output",
        metavar="DIR",
        help=f"where run directories are (default: the recipe's output.dir, else {DEFAULT_OUTPUT})",
    )
    p.set_defaults(handler=cache_command)
    _intermixed(p)


def _intermixed(parser: Any) -> None:
    """``cache clear --recipe R TASK``: argparse gives a positional that may be absent
    (TASK) its value with the first positionals only, and calls a later one unrecognized;
    parsed intermixed, positionals may come anywhere, as the docs' usage lines put them."""
    plain = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        parser.parse_known_args = plain  # what parse_known_intermixed_args calls inside
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            parser.parse_known_args = parse_known_args

    parser.parse_known_args = parse_known_args


def _caches(args) -> list[tuple[str, Any]]:
    """``(recipe name, cache path)`` of the caches the command is about."""
    from pathlib import Path

    from toolkit.errors import UsageError
    from toolkit.store.cache import CACHE_FILE

    recipe = args.recipe
    task = args.task
    # `toolkit cache info recipe.toml` reads as a recipe, not a task
    if recipe is None and task and task.endswith(".toml") and Path(task).is_file():
        recipe, task = task, None
    args.task = task
    output = Path(args.output) if args.output else None
    if recipe is not None and (recipe.endswith(".toml") or Path(recipe).is_file()):
        from toolkit.recipe import read_recipe

        rec = read_recipe(recipe)
        base = (output or Path(rec.output.dir)) / rec.name
        return [(rec.name, base / CACHE_FILE)]
    output = output or Path(DEFAULT_OUTPUT)
    if recipe is not None:
        if not (output / recipe).is_dir():
            raise UsageError(f"no recipe {recipe!r} in {output}")
        return [(recipe, output / recipe / CACHE_FILE)]
    if not output.is_dir():
        return []
    return sorted(
        (p.name, p / CACHE_FILE) for p in output.iterdir() if p.is_dir() and (p / CACHE_FILE).is_file()
    )


def cache_command(args) -> int:
    from toolkit.store.cache import CacheDB

    caches = _caches(args)
    if not caches:
        print("no cache" + (f" for recipe {args.recipe!r}" if args.recipe else ""))
        return 0
    for name, path in caches:
        with CacheDB(path, create=False) as db:
            if args.action == "clear":
                n = db.clear(args.task)
                what = f"task {args.task!r} of recipe {name!r}" if args.task else f"recipe {name!r}"
                print(f"cleared the cache of {what}: {n} entr{'y' if n == 1 else 'ies'} forgotten")
            else:
                _info(name, path, db, args.task)
    return 0


def _info(name: str, path: Any, db: Any, task: str | None) -> None:
    from toolkit.store.cache import ok_lines
    from toolkit.store.rundir import RESULTS

    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    print(f"recipe {name}: {path} ({size / 1024:.0f} KiB)")
    rows = [r for r in db.summary() if task is None or r[0] == task]
    if not rows:
        print("  nothing cached" + (f" for task {task!r}" if task else ""))
        return
    table = [("TASK", "RUNS", "NEWEST RUN", "OK RECORDS")]
    for name_, runs, newest in rows:
        records = len(ok_lines(path.parent / str(newest) / RESULTS, name_)) if newest else 0
        table.append((name_, str(runs), str(newest or "-"), str(records)))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for row in table:
        print(f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]:>{widths[3]}}")
    files = len(db.known_files())
    if files:
        print(f"  file digests kept: {files} (inputs and outputs)")


class TaskCache:
    """What a run would find in the cache for one task: ``run`` instances to run,
    ``cached`` in the cache, and ``why`` each that runs does (by index)."""

    def __init__(self, run: int, cached: int, why: dict[int, str]) -> None:
        self.run = run
        self.cached = cached
        self.why = why

    def reasons(self) -> dict[str, int]:
        """How many instances run for each reason (``file changed: PATH`` counted as
        ``file changed``), most frequent first."""
        counts: dict[str, int] = {}
        for reason in self.why.values():
            head = reason.split(":", 1)[0]
            counts[head] = counts.get(head, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def explain_cache(
    recipe: Any, plugins: Any, *, output: Any = None, cache: bool | None = None, rerun: Any = ()
) -> dict[str, TaskCache]:
    """For each task whose cache is on: what a run would take from the cache, and why
    each other instance would run. Writes nothing."""
    import json
    from pathlib import Path

    from toolkit.execution.plan import stages_of
    from toolkit.execution.run import cache_tasks, task_runtimes
    from toolkit.store.cache import CacheDB, cache_path
    from toolkit.store.fingerprint import inputs_of
    from toolkit.store.incremental import RunCache
    from toolkit.store.resume import task_digests

    on = set(cache_tasks(recipe, cache))
    if not on:
        return {}
    out = Path(output if output is not None else recipe.output.dir)
    db = CacheDB(cache_path(out, recipe.name), create=False)
    run_cache = RunCache(db, out / recipe.name, None, base_dir=getattr(recipe, "base_dir", None))
    runtimes = {rt.spec.name: rt for rt in task_runtimes(recipe, plugins)}
    identities = task_digests(recipe, list(runtimes.values()))
    # the tasks whose values a dependent receives (its upstream digest is made of them)
    passed = {need for rt in runtimes.values() if rt.takes_inputs for need in rt.spec.needs}
    result: dict[str, TaskCache] = {}
    values: dict[str, dict[int, dict[str, Any]] | None] = {}  # None: some instance runs
    try:
        for stage in stages_of(recipe):
            for name in stage:
                rt = runtimes[name]
                spec = rt.spec
                indices = range(spec.space())
                upstream: str | None = ""
                if rt.takes_inputs and spec.needs:
                    ups = [values.get(n) for n in spec.needs]
                    if any(v is None for v in ups):
                        upstream = None
                    else:
                        inputs = [v[i] for v in ups for i in sorted(v)]  # type: ignore[union-attr]
                        upstream = inputs_of(inputs)
                if name not in on:
                    values[name] = None
                    continue
                if name in rerun:
                    why = {i: "--rerun" for i, _ in spec.iter_combos()}
                    result[name] = TaskCache(len(why), 0, why)
                    values[name] = None
                    continue
                found, why = run_cache.explain(
                    rt, upstream, indices, identity=identities[name], need_indices=name in passed
                )
                result[name] = TaskCache(spec.count() - found.n, found.n, why)
                if why or found.indices is None:
                    values[name] = None  # (no dependent receives them, or some instance runs)
                else:
                    kept = {}
                    lines = found.lines.splitlines()
                    for index, line in zip(found.indices, lines, strict=True):
                        rec = json.loads(line)
                        kept[index] = {
                            "instance": rec["instance"],
                            "params": rec["params"],
                            "value": rec["value"],
                        }
                    values[name] = kept
    finally:
        db.close()
    return result
