"""``toolkit plugins``: loaded plugins, where they come from, what they implement."""

from __future__ import annotations

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser("plugins", help=HELP["plugins"])
    p.add_argument("--recipe", metavar="R", help="also load the plugins this recipe names")
    p.set_defaults(handler=plugins_command)
    # -v (a common option) adds each plugin's module or file, distribution and registrations


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
            replaced = replacements(plugins, info.name)
            if replaced:
                detail += f"; replaces {', '.join(replaced)}"
        print(f"{name:<{width}}  {version:<{vwidth}}  {source:<{swidth}}  {detail}")
        if args.verbose:
            for line in details(plugins, info):
                print(f"    {line}")
    return 0


def replacements(plugins, name: str) -> list[str]:
    """``task 'shell' of builtin.tasks``: the entries plugin ``name`` replaced."""
    found = []
    registries = plugins.registries
    for registry in (registries.tasks, registries.executors, registries.sinks):
        for entry_name in registry:
            entry = registry.get(entry_name)
            if entry.plugin == name and entry.replaces:
                found.append(f"{registry.kind} {entry_name!r} of {entry.replaces}")
    return found


def details(plugins, info) -> list[str]:
    """What ``toolkit plugins -v`` adds for one plugin: where it comes from, what it
    registered (and whose entries it replaced)."""
    lines = []
    where = info.module or "-"
    if info.file:
        where += f" ({info.file})"
    lines.append(f"module: {where}")
    if info.distribution:
        # its name as pip and the package index write it (a .dist-info folder's has "_")
        name = info.distribution.replace("_", "-")
        lines.append(f"distribution: {name} {info.version or ''}".rstrip())
    registries = plugins.registries
    for kind, registry in (
        ("tasks", registries.tasks),
        ("executors", registries.executors),
        ("sinks", registries.sinks),
    ):
        mine = []
        for entry_name in registry:
            entry = registry.get(entry_name)
            if entry.plugin == info.name:
                mine.append(entry_name + (f" (replaces {entry.replaces})" if entry.replaces else ""))
        if mine:
            lines.append(f"{kind}: {', '.join(mine)}")
    commands = sorted(name for name, plugin in plugins.commands.items() if plugin == info.name)
    if commands:
        lines.append(f"commands: {', '.join(commands)}")
    return lines
