"""``toolkit markdown RUN_DIR``: a run's records as a Markdown table, on stdout."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

# Every toolkit command (--help included) adds this command: what only running it needs
# is imported when it runs.


def add_markdown_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("markdown", help="print a run's records as a Markdown table")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or its recipe's latest link)")
    p.add_argument("--columns", help="record fields, comma-separated (default: instance,status,value)")
    p.set_defaults(handler=markdown_command)


def markdown_command(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from toolkit.plugin import ToolkitError
    from toolkit_example.sink import DEFAULT_COLUMNS, cell

    if args.columns is None:
        args.columns = ",".join(DEFAULT_COLUMNS)
    results = Path(args.run_dir) / "results.jsonl"
    if not results.is_file():
        raise ToolkitError(f"{args.run_dir}: not a run directory (no results.jsonl)")
    columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    with open(results, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                print("| " + " | ".join(cell(record.get(c)) for c in columns) + " |")
    return 0
