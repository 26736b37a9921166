"""``toolkit tasks``: the registered tasks."""

from __future__ import annotations

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser("tasks", help=HELP["tasks"])
    p.add_argument("--recipe", metavar="R", help="also load the plugins this recipe names")
    p.set_defaults(handler=tasks_command)


def tasks_command(args) -> int:
    plugins = args.plugin_manager
    if args.recipe:
        from toolkit.recipe import read_recipe

        plugins.load_recipe_plugins(read_recipe(args.recipe).plugins)
    rows = []
    for name in plugins.registries.tasks:
        info = plugins.registries.tasks.get(name)
        sig = str(info.signature)
        plugin = info.plugin or ""
        if info.replaces:
            plugin += f" (replaces {info.replaces})"
        rows.append((name, plugin, sig, info.doc))
    if not rows:
        print("no tasks registered")
        return 0
    width = max(len(r[0]) for r in rows)
    pwidth = max(len(r[1]) for r in rows)
    for name, plugin, sig, doc in rows:
        print(f"{name:<{width}}  {plugin:<{pwidth}}  {name.rsplit('.', 1)[-1]}{sig}")
        if doc:
            print(f"{'':<{width}}  {'':<{pwidth}}  {doc}")
    return 0
