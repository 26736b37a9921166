"""``toolkit plan``: what a run would do (instances, stages, executor and why); runs nothing."""

from __future__ import annotations

import itertools
from typing import Any

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl

#: above this many instances in all, JSON lists a sample per task instead of every one
LIST_LIMIT = 1000
SAMPLE = 10
#: instances shown per task in the table
TABLE_ROWS = 20


@hookimpl
def toolkit_add_commands(subparsers):
    from toolkit.builtin.commands.run import add_set_option

    p = subparsers.add_parser(
        "plan",
        help=HELP["plan"],
        description="Show what `toolkit run RECIPE` would do, without running anything: the stages,"
        " every task's instances (a sample of each above 1000 in all), the executor and why.",
    )
    p.add_argument("recipe", metavar="RECIPE", help="the recipe file (TOML)")
    add_set_option(p)
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format (default: table)"
    )
    p.add_argument("-j", "--workers", type=int, metavar="N", help="plan for N workers (as run -j N)")
    p.add_argument("--executor", metavar="NAME", help="plan for this executor (as run --executor)")
    p.add_argument("--output", metavar="DIR", help="where run directories are (as run --output)")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache", dest="cache", action="store_true", default=None, help="plan as run --cache would run"
    )
    cache.add_argument("--no-cache", dest="cache", action="store_false", help="plan as run --no-cache")
    p.add_argument(
        "--rerun", action="append", default=[], metavar="TASK", help="plan as run --rerun TASK would run"
    )
    p.set_defaults(handler=plan_command)


def plan_command(args) -> int:
    import attrs

    from toolkit.api import prepare
    from toolkit.errors import UsageError
    from toolkit.execution.plan import make_plan

    recipe, plugins = prepare(args.recipe, overrides=args.overrides, plugins=args.plugin_manager)
    if args.workers is not None:
        if args.workers < 1:
            raise UsageError("-j/--workers must be at least 1")
        recipe = attrs.evolve(recipe, run=attrs.evolve(recipe.run, workers=args.workers))
    if args.executor is not None and args.executor not in plugins.registries.executors:
        known = ", ".join(plugins.registries.executors.names())
        raise UsageError(f"unknown executor {args.executor!r} (known: {known})")
    plan = make_plan(recipe, plugins, executor=args.executor)
    from toolkit.builtin.commands.cache import explain_cache

    cached = explain_cache(recipe, plugins, output=args.output, cache=args.cache, rerun=args.rerun)
    if args.format == "json":
        import json

        print(json.dumps(plan_document(recipe, plan, cached), indent=2, default=str))
    else:
        print_table(recipe, plan, cached)
    return 0


def instances(
    spec: Any, limit: int | None, cached: Any = None, run_limit: int | None = None
) -> list[dict[str, Any]]:
    """The first ``limit`` instances of a task (all with None), without expanding the rest;
    secrets in params masked; with the cache on (``cached``: the task's :class:`TaskCache`),
    whether each is cached and, when it will run, why. Instances that will run come
    first (up to ``run_limit``, default ``limit``): one changed file among thousands is
    what a plan must show; then cached ones fill up to ``limit``; in instance order."""
    from toolkit.recipe.masking import mask

    combos = spec.iter_combos()
    if limit is not None and cached is not None and cached.why:
        chosen = set(sorted(cached.why)[: run_limit if run_limit is not None else limit])
        if len(chosen) < limit:
            for index, _combo in combos:
                if index not in chosen:
                    chosen.add(index)
                    if len(chosen) >= limit:
                        break
        combos = ((index, spec.combo(index)) for index in sorted(chosen))
    elif limit is not None:
        combos = itertools.islice(combos, limit)
    secrets = getattr(spec, "secrets", ())
    out = []
    for index, combo in combos:
        row: dict[str, Any] = {"id": spec.instance_id(combo), "params": mask(spec.params_for(combo), secrets)}
        if cached is not None:
            why = cached.why.get(index)
            row["cached"] = why is None
            row["why"] = why
        out.append(row)
    return out


def plan_document(recipe: Any, plan: Any, cached: dict[str, Any] | None = None) -> dict[str, Any]:
    sampled = plan.total > LIST_LIMIT
    cached = cached or {}
    tasks = []
    for spec in recipe.tasks:
        entry: dict[str, Any] = {
            "name": spec.name,
            "uses": spec.uses,
            "count": plan.counts[spec.name],
            "needs": list(spec.needs),
        }
        info = cached.get(spec.name)
        if info is not None:
            entry["run"] = info.run
            entry["cached"] = info.cached
            entry["why"] = info.reasons()
        if sampled:
            entry["sample"] = instances(spec, SAMPLE, info, run_limit=LIST_LIMIT)
        else:
            entry["instances"] = instances(spec, None, info)
        tasks.append(entry)
    return {
        "recipe": recipe.name,
        "path": str(recipe.path) if recipe.path else None,
        "executor": plan.executor,
        "reason": plan.reason,
        "workers": plan.workers,
        "total": plan.total,
        "stages": plan.stages,
        "tasks": tasks,
    }


def _params_text(params: dict[str, Any]) -> str:
    from toolkit.recipe.interpolate import render

    text = " ".join(f"{k}={render(v)}" for k, v in params.items())
    return text if len(text) <= 100 else text[:97] + "..."


def _cache_text(info: Any) -> str:
    """``: 1 to run, 15 cached (1 file changed: data/a.csv)``."""
    if info is None:
        return ""
    reasons = info.reasons()
    why = ", ".join(f"{n} {reason}" for reason, n in list(reasons.items())[:3])
    if len(reasons) > 3:
        why += ", ..."
    return f": {info.run} to run, {info.cached} cached" + (f" ({why})" if why else "")


def _row_text(row: dict[str, Any]) -> str:
    if "cached" not in row:
        return ""
    return "cached" if row["cached"] else f"run: {row['why']}"


def _more(count: int, rows: list[dict[str, Any]], info: Any) -> str:
    """``... and 180 more`` (``, 3 of them to run`` when some that run are not listed)."""
    text = f"... and {count - len(rows)} more"
    if info is not None:
        hidden = info.run - sum(1 for row in rows if not row["cached"])
        if hidden:
            text += f", {hidden} of them to run"
    return text


def print_table(recipe: Any, plan: Any, cached: dict[str, Any] | None = None) -> None:
    import sys

    cached = cached or {}
    if sys.stdout.isatty():
        try:
            return _print_rich(recipe, plan, cached)
        except ImportError:  # pragma: no cover - rich is a dependency
            pass
    where = f" ({recipe.path})" if recipe.path else ""
    print(f"recipe:   {recipe.name}{where}")
    print(f"executor: {plan.executor} ({plan.reason})")
    print(f"workers:  {plan.workers}")
    print(f"total:    {plan.total} instance{'s' if plan.total != 1 else ''}")
    for n, stage in enumerate(plan.stages, 1):
        print(f"stage {n}:  " + ", ".join(f"{t} ({plan.counts[t]})" for t in stage))
    for spec in recipe.tasks:
        count = plan.counts[spec.name]
        needs = f", after {', '.join(spec.needs)}" if spec.needs else ""
        info = cached.get(spec.name)
        print(
            f"\n{spec.name}: {spec.uses}, {count} instance{'s' if count != 1 else ''}{needs}"
            + _cache_text(info)
        )
        rows = instances(spec, TABLE_ROWS, info)
        width = max((len(r["id"]) for r in rows), default=0)
        state = max((len(_row_text(r)) for r in rows), default=0)
        for row in rows:
            if info is not None:
                print(
                    f"  {row['id']:<{width}}  {_row_text(row):<{state}}  {_params_text(row['params'])}".rstrip()
                )
            else:
                print(f"  {row['id']:<{width}}  {_params_text(row['params'])}".rstrip())
        if count > len(rows):
            print(f"  {_more(count, rows, info)}")


def _print_rich(recipe: Any, plan: Any, cached: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    console.print(f"[bold]{escape(recipe.name)}[/bold]  {escape(str(recipe.path or ''))}")
    console.print(
        f"executor [bold]{escape(plan.executor)}[/bold] ({escape(plan.reason)}), {plan.workers} workers,"
        f" {plan.total} instance{'s' if plan.total != 1 else ''}"
    )
    for n, stage in enumerate(plan.stages, 1):
        console.print(f"stage {n}: " + escape(", ".join(f"{t} ({plan.counts[t]})" for t in stage)))
    for spec in recipe.tasks:
        count = plan.counts[spec.name]
        needs = f", after {', '.join(spec.needs)}" if spec.needs else ""
        console.print()
        info = cached.get(spec.name)
        console.print(
            f"[bold]{escape(spec.name)}[/bold]: {escape(spec.uses)},"
            f" {count} instance{'s' if count != 1 else ''}{escape(needs)}{escape(_cache_text(info))}"
        )
        table = Table(show_edge=False, box=None, pad_edge=False)
        table.add_column("instance", no_wrap=True, style="cyan")
        if info is not None:
            table.add_column("cache")
        table.add_column("params")
        rows = instances(spec, TABLE_ROWS, info)
        for row in rows:
            cells = [escape(row["id"]), escape(_params_text(row["params"]))]
            if info is not None:
                cells.insert(1, escape(_row_text(row)))
            table.add_row(*cells)
        if count > len(rows):
            table.add_row(escape(_more(count, rows, info)), *([""] * (2 if info is not None else 1)))
        console.print(table)
