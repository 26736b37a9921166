"""``toolkit markdown RUN_DIR``: a run's records as a Markdown table, on stdout."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from toolkit.plugin import ToolkitError
from toolkit_example.sink import DEFAULT_COLUMNS, cell


def add_markdown_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("markdown", help="print a run's records as a Markdown table")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or its recipe's latest link)")
    p.add_argument("--columns", default=",".join(DEFAULT_COLUMNS), help="record fields, comma-separated")
    p.set_defaults(handler=markdown_command)


def markdown_command(args: argparse.Namespace) -> int:
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
