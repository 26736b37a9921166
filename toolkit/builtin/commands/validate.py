"""``toolkit validate``: check recipes against the format and the loaded plugins."""

from __future__ import annotations

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl


@hookimpl
def toolkit_add_commands(subparsers):
    from toolkit.builtin.commands.run import add_set_option

    p = subparsers.add_parser(
        "validate",
        help=HELP["validate"],
        description="Validate each recipe: the format, references, and what its plugins register."
        " Prints 'RECIPE: ok' per valid recipe; exit 0 if all are valid, else 2. Runs nothing.",
    )
    p.add_argument("recipes", nargs="+", metavar="RECIPE", help="recipe files (TOML)")
    add_set_option(p)
    p.set_defaults(handler=validate_command)


def validate_command(args) -> int:
    import sys
    import traceback

    from toolkit.api import prepare
    from toolkit.errors import ExitCode, ToolkitError
    from toolkit.manager import Plugins

    code = ExitCode.OK
    for n, given in enumerate(args.recipes):
        # each recipe gets plugins of its own: two recipes may each have a tasks.py
        plugins = (
            args.plugin_manager
            if n == 0
            else Plugins(args.plugin_manager.load.with_recipe(()), warn=False).load_all()
        )
        try:
            recipe, _ = prepare(given, overrides=args.overrides, plugins=plugins)
        except ToolkitError as exc:
            if args.verbose:
                traceback.print_exc()
            print(f"toolkit: error: {exc.message}", file=sys.stderr)
            code = max(code, exc.exit_code)
            continue
        if args.verbose:
            counts = ", ".join(f"{t.name} x{t.count()}" for t in recipe.tasks)
            print(f"{given}: ok ({counts})")
        else:
            print(f"{given}: ok")
    return int(code)
