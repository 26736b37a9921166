"""``toolkit run``: run a recipe."""

from __future__ import annotations

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
    p = subparsers.add_parser("run", help="run a recipe")
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
    from toolkit.progress import make_reporter

    if args.resume and args.retry_failed:
        raise UsageError("use --resume or --retry-failed, not both")
    recipe, plugins = prepare(args.recipe, overrides=args.overrides, plugins=args.plugin_manager)
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
        reporter=make_reporter(args.progress, args.quiet),
    )
    return result.exit_code
