"""``toolkit init``: write a commented starter recipe and the task module it uses;
``toolkit init --plugin NAME``: write an installable plugin distribution."""

from __future__ import annotations

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl

RECIPE = """\
# {name}: a starter recipe written by `toolkit init`.
#   toolkit validate {recipe}     check it (runs nothing)
#   toolkit plan {recipe}         the instances it would run, and how
#   toolkit run {recipe}          run it; results go to runs/{name}/<run-id>/
# Every key is described in toolkit's recipe reference (docs/recipe.md); `toolkit schema`
# prints a JSON Schema that editors can use to check this file as you type.

[recipe]
name = "{name}"                     # letters, digits, '.', '_', '-': names the run directory
description = "Random walks over a few seeds and step sizes, then a summary"
plugins = ["{module}.py"]           # the task module beside this file

[vars]                              # free values, used below as ${{vars.NAME}}
steps = 1000

[run]
executor = "auto"                   # auto | process | pool (or a plugin's, such as dask)
# workers = 4                       # default: the CPUs this process may use
retries = 1                         # run a failed instance once more
timeout = "1m"                      # per attempt: "250ms", "30s", "5m", "2h" or seconds

[output]
formats = ["jsonl", "csv"]          # results.jsonl is always written

[[task]]
name = "walk"
uses = "{name}.walk"                # registered by {module}.py
params = {{ steps = "${{vars.steps}}" }}
# one instance per combination: 4 seeds x 2 step sizes = 8 instances,
# with ids like walk[scale=0.5,seed=3]
matrix = {{ seed = {{ range = [0, 4] }}, scale = [0.5, 1.0] }}

[[task]]
name = "summary"
uses = "{name}.summarize"
needs = ["walk"]                    # runs once every walk succeeded, with their results as `inputs`
"""

MODULE = '''\
"""Tasks for {recipe}: a random walk, and a summary of many walks.

A task is a plain module-level function: its parameters are the recipe's params (and
matrix values); it returns a JSON-serialisable value. The hook at the bottom registers
the tasks under the names the recipe's `uses` refers to.
"""

import random

import toolkit


def walk(steps: int, seed: int, scale: float = 1.0) -> dict:
    """Walk `steps` random steps of size `scale`; report where it ended and how far it got."""
    rng = random.Random(seed)
    position = farthest = 0.0
    for _ in range(steps):
        position += rng.choice((-scale, scale))
        farthest = max(farthest, abs(position))
    return {{"end": position, "farthest": farthest}}


def summarize(inputs: list) -> dict:
    """Average the farthest distance per step size. `inputs` holds one entry per walk."""
    by_scale: dict = {{}}
    for item in inputs:
        by_scale.setdefault(item["params"]["scale"], []).append(item["value"]["farthest"])
    return {{str(scale): sum(v) / len(v) for scale, v in sorted(by_scale.items())}}


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(walk, name="{name}.walk")
    registry.add(summarize, name="{name}.summarize")
'''


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser(
        "init",
        help=HELP["init"],
        description="Write a starter recipe (default recipe.toml) and a task module beside it"
        " (<stem>_tasks.py) that run as written. With --plugin NAME, write instead an installable"
        " plugin distribution (default folder toolkit-NAME): pyproject.toml with the entry point,"
        " a task, and tests that use toolkit.testing. Refuses to overwrite existing files.",
    )
    p.add_argument(
        "path", nargs="?", default=None, metavar="PATH", help="the recipe (or plugin folder) to write"
    )
    p.add_argument("--plugin", metavar="NAME", help="write a plugin distribution named toolkit-NAME")
    p.set_defaults(handler=init_command)


def starter_files(path) -> dict:
    """``{path: text}`` of the recipe and its task module."""
    import re
    from pathlib import Path

    recipe = Path(path)
    if recipe.is_dir():
        recipe = recipe / "recipe.toml"
    stem = re.sub(r"[^A-Za-z0-9_]", "_", recipe.stem) or "recipe"
    if stem[0].isdigit():
        stem = f"r{stem}"
    name = re.sub(r"[^A-Za-z0-9._-]", "-", recipe.stem).strip("-._")
    if name in ("", "recipe"):
        name = "starter"
    module = f"{stem}_tasks"
    fields = {"name": name, "module": module, "recipe": str(recipe)}
    return {recipe: RECIPE.format(**fields), recipe.with_name(f"{module}.py"): MODULE.format(**fields)}


def init_command(args) -> int:
    from toolkit.errors import UsageError

    if args.plugin is not None:
        from toolkit.builtin.commands.init_plugin import plugin_files

        files = plugin_files(args.plugin, args.path)
    else:
        files = starter_files(args.path or "recipe.toml")
    existing = [str(p) for p in files if p.exists()]
    if existing:
        raise UsageError(
            f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; not overwriting"
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {path}")
    first = next(iter(files))
    if args.plugin is not None:
        folder = first.parent
        print(f"next: pip install -e '{folder}[test]' && pytest {folder / 'tests'}")
    else:
        print(f"next: toolkit run {first}")
    return 0
