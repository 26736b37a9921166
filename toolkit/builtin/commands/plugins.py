"""``toolkit plugins``: loaded plugins, where they come from, what they implement."""

from __future__ import annotations

from toolkit.hookspecs import hookimpl


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser(
        "plugins", help="list plugins: name, version, source, hooks; failed ones with why"
    )
    p.add_argument("--recipe", metavar="R", help="also load the plugins this recipe names")
    p.set_defaults(handler=plugins_command)


def plugins_command(args) -> int:
    plugins = args.plugin_manager
    if args.recipe:
        from toolkit.recipe import read_recipe

        plugins.load_recipe_plugins(read_recipe(args.recipe).plugins)
    plugins.registries  # noqa: B018 - a hook that fails while registering is reported too
    rows = [(i.name, i.version or "-", i.source, i) for i in plugins.infos]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    swidth = max(len(r[2]) for r in rows)
    for name, version, source, info in rows:
        if info.error:
            detail = f"FAILED: {info.error}"
        else:
            detail = ", ".join(h.removeprefix("toolkit_") for h in info.hooks) or "(no hooks)"
        print(f"{name:<{width}}  {version:<{vwidth}}  {source:<{swidth}}  {detail}")
    return 0
