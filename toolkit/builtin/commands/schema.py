"""``toolkit schema``: the JSON Schema of the recipe format, for editors."""

from __future__ import annotations

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser(
        "schema",
        help=HELP["schema"],
        description="Print the JSON Schema (draft 2020-12) of the recipe format. Save it and point"
        " your editor at it, e.g. a '#:schema ./recipe.schema.json' first line (Taplo, Even Better TOML).",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(handler=schema_command)


def schema_command(args) -> int:
    import json

    from toolkit.recipe.schema import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        print(text, end="")
    return 0
