"""``toolkit run``: run a recipe."""

from __future__ import annotations

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl


def add_set_option(parser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a recipe key before validation (repeatable); VALUE is TOML, else a string",
    )


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser("run", help=HELP["run"])
    p.add_argument("recipe", metavar="RECIPE", help="the recipe file (TOML)")
    add_set_option(p)
    p.add_argument("-j", "--workers", type=int, metavar="N", help="number of workers (default: run.workers)")
    p.add_argument("--executor", metavar="NAME", help="executor to use instead of run.executor")
    p.add_argument(
        "--keep-going",
        action="store_true",
        default=None,
        help="after a failure, run everything that does not depend on it",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="RUN",
        help="finish the latest (or the named) run of this recipe, skipping instances already ok",
    )
    p.add_argument(
        "--retry-failed",
        nargs="?",
        const=True,
        default=False,
        metavar="RUN",
        help="run again only the failed, timed-out or crashed instances of the latest (or named) run",
    )
    p.add_argument("--force", action="store_true", help="resume even if the recipe's tasks changed")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache",
        dest="cache",
        action="store_true",
        default=None,
        help="reuse the results of instances whose fingerprint ran ok before (as [run] cache = true)",
    )
    cache.add_argument(
        "--no-cache", dest="cache", action="store_false", help="run every instance; do not use the cache"
    )
    p.add_argument(
        "--rerun",
        action="append",
        default=[],
        metavar="TASK",
        help="run this task's instances even when the cache holds them (repeatable)",
    )
    p.add_argument("--output", metavar="DIR", help="where run directories go (default: output.dir)")
    p.add_argument(
        "--progress",
        choices=("auto", "on", "off"),
        default="auto",
        help="live progress: on a terminal (auto), always, or never",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    p.set_defaults(handler=run_command)


def run_command(args) -> int:
    import attrs

    from toolkit.api import execute, prepare
    from toolkit.errors import UsageError
    from toolkit.execution.procs import tune_allocator
    from toolkit.progress import make_reporter

    # this process is the command's own: its allocator may keep large blocks, as the
    # workers' does (the collector's messages of records; ~10 ms of a 200,000-instance
    # run). Not in toolkit.api, which may run inside a user's long-lived process.
    tune_allocator()

    if args.resume and args.retry_failed:
        raise UsageError("use --resume or --retry-failed, not both")
    overrides = list(args.overrides)
    again = args.resume or args.retry_failed
    if again:
        recorded = recorded_overrides(args, again)
        overrides = recorded + [o for o in overrides if o not in recorded]
    recipe, plugins = prepare(args.recipe, overrides=overrides, plugins=args.plugin_manager)
    if args.keep_going:
        recipe = attrs.evolve(recipe, run=attrs.evolve(recipe.run, keep_going=True))
    result = execute(
        recipe,
        plugins,
        executor=args.executor,
        workers=args.workers,
        output=args.output,
        resume=args.resume,
        retry_failed=args.retry_failed,
        force=args.force,
        reporter=make_reporter(args.progress, args.quiet, verbose=args.verbose),
        cache=args.cache,
        rerun=args.rerun,
    )
    return result.exit_code


def recorded_overrides(args, again) -> list[str]:
    """The ``--set`` overrides the run to resume was started with (read from its
    manifest), so that ``--resume`` makes the same instances; [] when there is none
    to find (the resume then says why)."""
    from pathlib import Path

    from toolkit.errors import ToolkitError
    from toolkit.recipe import read_recipe
    from toolkit.store.rundir import find_run

    try:
        recipe = read_recipe(args.recipe, overrides=args.overrides)
        out = Path(args.output if args.output is not None else recipe.output.dir)
        run = find_run(out, recipe.name, again if isinstance(again, str) else None)
        found = run.read_manifest().get("overrides") or []
    except ToolkitError:
        return []
    return [str(o) for o in found if isinstance(o, str)]
