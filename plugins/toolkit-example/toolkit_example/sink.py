"""The ``markdown`` sink: ``results.md``, a table of the records, appended as they arrive.

Options, from the recipe's ``[output.markdown]`` table::

    [output.markdown]
    columns = ["instance", "status", "value"]   # record fields; this is the default
    title = "Results"                           # a heading, written once
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.plugin import RECORD_FIELDS

if TYPE_CHECKING:
    from toolkit.plugin import Recipe, RecordBatch

DEFAULT_COLUMNS = ("instance", "status", "value")
FILE = "results.md"


def check_options(options: Mapping[str, Any]) -> list[str]:
    """Problems with an ``[output.markdown]`` table (validation shows them with its line)."""
    problems = []
    for key in options:
        if key not in ("columns", "title"):
            problems.append(f"unknown option {key!r} (known: columns, title)")
    columns = options.get("columns", DEFAULT_COLUMNS)
    if not isinstance(columns, list | tuple) or not columns:
        problems.append("columns: must be a non-empty list of record fields")
    else:
        for column in columns:
            if column not in RECORD_FIELDS:
                problems.append(f"columns: {column!r} is not a record field ({', '.join(RECORD_FIELDS)})")
    if not isinstance(options.get("title", ""), str):
        problems.append("title: must be a string")
    return problems


def cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.replace("|", "\\|").replace("\n", " ")


class MarkdownSink:
    """Appends a row per record; on ``--resume`` it goes on with the same file."""

    def __init__(self, run_dir: Path, recipe: Recipe) -> None:
        options = recipe.output.options_for("markdown")
        self.columns = list(options.get("columns", DEFAULT_COLUMNS))
        self.path = Path(run_dir) / FILE
        if not self.path.exists():  # a new run: a resumed one keeps what is there
            head = f"# {options['title']}\n\n" if options.get("title") else ""
            head += "| " + " | ".join(self.columns) + " |\n"
            head += "|" + "---|" * len(self.columns) + "\n"
            self.path.write_text(head, encoding="utf-8")

    def write(self, batch: RecordBatch) -> None:
        rows = ["| " + " | ".join(cell(r.get(c)) for c in self.columns) + " |\n" for r in batch.records]
        with open(self.path, "a", encoding="utf-8") as f:
            f.writelines(rows)

    def close(self, status: str) -> None:
        """Nothing to finish: every row is written as it arrives."""
