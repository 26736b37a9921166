"""Built-in result sinks: ``jsonl`` (always written) and ``csv``.

The sink interface is described in :mod:`toolkit.store.sinks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit.hookspecs import hookimpl

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from toolkit.store.sinks import RecordBatch

# csv, json, pathlib and toolkit.store are imported where they are used: this module
# is a built-in plugin, imported by every start of the command line

CSV_NAME = "results.csv"


class JsonlSink:
    """results.jsonl: one line per record, appended and flushed per batch."""

    def __init__(self, run_dir: Path, recipe: Any = None) -> None:
        from pathlib import Path

        from toolkit.store.rundir import RESULTS, cut_torn_tail

        self.path = path = Path(run_dir) / RESULTS
        cut_torn_tail(path)  # a killed session may have left half a line
        # unbuffered: each batch is one write of whole lines (see write)
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115 - open for the whole run, closed in close()
        self.size = self.file.seek(0, 2)

    def write(self, batch: RecordBatch) -> None:
        # one write of whole lines, at once: a SIGKILL of the toolkit can tear at most the
        # last line, and never loses a line written before; a write that fails (a full
        # disk, the file size limit) is cut off again, so that the file ends with a whole
        # line and --resume runs the batch again
        data = memoryview(batch.jsonl)
        done = 0
        try:
            while done < len(data):
                done += self.file.write(data[done:])
        except OSError as exc:
            from toolkit.errors import StorageError

            try:
                self.file.truncate(self.size)
            except OSError:
                pass  # cut_torn_tail does it when the run is resumed
            raise StorageError.from_os_error(exc, f"cannot write {self.path}") from None
        self.size += done

    def close(self, status: str) -> None:
        self.file.close()


#: record fields written as columns before the flattened ``params.*`` and ``value.*``
CSV_FIELDS = (
    "task",
    "instance",
    "key",
    "status",
    "attempts",
    "started",
    "finished",
    "duration_s",
    "worker",
    "peak_rss_mib",
    "cached",
)
#: the last column: fields that were not in the header when their record arrived
EXTRA = "extra"


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested dicts become dotted columns; lists stay whole, as JSON text."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    """A record as CSV columns: its fields, ``params.*``, ``value`` or ``value.*``, and
    ``error`` as ``Type: message`` (the traceback stays in results.jsonl and the log)."""
    row: dict[str, Any] = {k: record.get(k) for k in CSV_FIELDS}
    flatten("params", record.get("params") or {}, row)
    flatten("value", record.get("value"), row)
    error = record.get("error")
    row["error"] = f"{error.get('type')}: {error.get('message')}" if isinstance(error, dict) else None
    return row


def _group(column: str) -> int:
    if column in CSV_FIELDS:
        return 0
    if column.startswith("params."):
        return 1
    if column == "value" or column.startswith("value."):
        return 2
    return 3


def order_columns(columns: Iterable[str]) -> list[str]:
    """Record fields, then params, then value, then error; in order of first
    appearance within each group (and CSV_FIELDS in their own order)."""
    seen = list(dict.fromkeys(c for c in columns if c != EXTRA))
    fixed = [c for c in CSV_FIELDS if c in seen]
    rest = sorted((c for c in seen if c not in CSV_FIELDS), key=lambda c: (_group(c), seen.index(c)))
    return [*fixed, *rest]


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, ensure_ascii=False)
    return value


def rebuild_csv(jsonl: Path, path: Path) -> list[str] | None:
    """Write ``path`` anew from the records of ``jsonl``, with every column any record
    has; atomically. Returns the header, or None when there is no record."""
    import csv

    from toolkit.store.rundir import read_records
    from toolkit.store.sinks import atomic_output

    columns: dict[str, None] = {}
    for rec in read_records(jsonl):
        # a column that only ever holds nothing (the value of failed records) is left out
        columns.update(dict.fromkeys(k for k, v in csv_row(rec).items() if v is not None or _group(k) == 0))
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        if not columns:
            return None
        header = [*order_columns(columns), EXTRA]
        writer = csv.writer(f)
        writer.writerow(header)
        for rec in read_records(jsonl):
            row = csv_row(rec)
            writer.writerow([cell(row.get(c)) for c in header])
    return header


class CsvSink:
    """results.csv: the record's fields, params.* and value.* flattened, error.

    The header comes from the first record and the rows are appended as records
    arrive. Fields that a later record brings and the header lacks (a task whose value
    has other keys, a first record that failed and had no value) go, as a JSON object,
    to the last column, ``extra``, so that the file stays rectangular while it grows
    and a killed run loses nothing. When the run ends, if that happened, the file is
    rebuilt from results.jsonl with every column and replaced atomically, which leaves
    ``extra`` empty. A resumed run rebuilds it too before appending (results.jsonl is
    the reference: a killed run may have written a batch there and not here)."""

    def __init__(self, run_dir: Path, recipe: Any = None) -> None:
        from pathlib import Path

        from toolkit.store.rundir import RESULTS

        run_dir = Path(run_dir)
        self.path = run_dir / CSV_NAME
        self.jsonl = run_dir / RESULTS
        self.widened = False
        self.header: list[str] | None = None
        if self.path.exists() or (self.jsonl.exists() and self.jsonl.stat().st_size):
            self.header = rebuild_csv(self.jsonl, self.path)
        self.file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - as above

    def write(self, batch: RecordBatch) -> None:
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf)
        for record in batch.records:
            row = csv_row(record)
            if self.header is None:
                self.header = [*order_columns(row), EXTRA]
                writer.writerow(self.header)
            known = self.header
            extra = {k: v for k, v in row.items() if k not in known and v is not None}
            if extra:
                self.widened = True
                row[EXTRA] = extra
            writer.writerow([cell(row.get(c)) for c in known])
        self.file.write(buf.getvalue())
        self.file.flush()

    def close(self, status: str) -> None:
        self.file.close()
        if self.widened:
            self.header = rebuild_csv(self.jsonl, self.path)
            self.widened = False


@hookimpl
def toolkit_register_sinks(registry):
    registry.add("jsonl", JsonlSink)
    registry.add("csv", CsvSink)
