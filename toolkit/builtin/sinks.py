"""Built-in result sinks: ``jsonl`` (always written) and ``csv``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from toolkit.hookspecs import hookimpl
from toolkit.store.sinks import RecordBatch


class JsonlSink:
    """``results.jsonl``: one line per record, appended and flushed per batch, so that a
    killed run leaves every completed line intact."""

    def __init__(self, run_dir: Path, recipe: Any = None) -> None:
        self.file = open(Path(run_dir) / "results.jsonl", "ab")

    def write(self, batch: RecordBatch) -> None:
        self.file.write(batch.jsonl)
        self.file.flush()

    def close(self, status: str) -> None:
        self.file.close()


#: record fields written as columns before the flattened ``params.*`` and ``value.*``
CSV_FIELDS = ("task", "instance", "key", "status", "attempts", "started", "finished", "duration_s", "worker")


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        out[prefix] = json.dumps(value)
    else:
        out[prefix] = value


class CsvSink:
    """``results.csv``: the record's fields plus ``params.*`` and ``value.*`` flattened.

    The header comes from the first record; a later record with new keys does not
    change it: the new keys go to an ``extra`` column as JSON, so that the file stays
    rectangular while it grows."""

    def __init__(self, run_dir: Path, recipe: Any = None) -> None:
        path = Path(run_dir) / "results.csv"
        self.header: list[str] | None = None
        if path.exists() and path.stat().st_size:
            with open(path, newline="", encoding="utf-8") as f:
                self.header = next(csv.reader(f), None)
        self.file = open(path, "a", newline="", encoding="utf-8")

    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {k: record.get(k) for k in CSV_FIELDS}
        flatten("params", record.get("params") or {}, row)
        value = record.get("value")
        if isinstance(value, dict):
            flatten("value", value, row)
        else:
            flatten("value", value, row)
        error = record.get("error")
        row["error"] = f"{error['type']}: {error['message']}" if error else ""
        return row

    def write(self, batch: RecordBatch) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        for record in batch.records:
            row = self._row(record)
            if self.header is None:
                self.header = [*row, "extra"]
                writer.writerow(self.header)
            extra = {k: v for k, v in row.items() if k not in self.header}
            writer.writerow(
                [json.dumps(extra) if k == "extra" and extra else row.get(k, "") for k in self.header]
            )
        self.file.write(buf.getvalue())
        self.file.flush()

    def close(self, status: str) -> None:
        self.file.close()


@hookimpl
def toolkit_register_sinks(registry):
    registry.add("jsonl", JsonlSink)
    registry.add("csv", CsvSink)
