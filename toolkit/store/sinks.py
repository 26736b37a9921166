"""The sink interface and the collector that feeds every sink as records arrive.

Writing a sink
--------------
A sink plugin registers a factory through ``toolkit_register_sinks``::

    @toolkit.hookimpl
    def toolkit_register_sinks(registry):
        registry.add("parquet", ParquetSink)

and a recipe asks for it with ``[output] formats = ["jsonl", "parquet"]``. The life of a
sink, all in the main process:

``factory(run_dir, recipe)`` (open)
    Called once per run session, before any record, with the run directory (it exists)
    and the validated recipe. On ``--resume`` / ``--retry-failed`` it is called again on
    the same directory: a sink must *add* to what an earlier session left (append, or
    write another part), never start over.
``write(batch)`` (write a batch)
    Called for every :class:`RecordBatch` in order of arrival; ``batch.records`` are the
    decoded dicts, ``batch.jsonl`` the encoded lines. The run waits while a sink
    writes: this is the back-pressure that keeps the result queue bounded, so a slow sink
    slows the workers instead of filling memory. Write through (or buffer a bounded
    amount); a killed run (SIGKILL) never calls ``close``.
``close(status)`` (close)
    Called once at the end with the run's status (succeeded, failed, interrupted), also
    after a Ctrl-C or an error in the run. Finish files here.

Finishing a file atomically: a format that cannot be appended to (Parquet, a JSON
array, a zip) writes what arrives to part files of its own in the run directory as it
goes, so that a killed run still leaves its records behind, and builds the final file
in ``close`` inside :func:`atomic_output`, which renames it into place only when it is
complete: a reader sees the previous file or the new one, never half of one. A sketch::

    class ParquetSink:
        def __init__(self, run_dir, recipe):
            self.parts = run_dir / "parquet-parts"      # kept across resumes
            self.parts.mkdir(exist_ok=True)
            self.final = run_dir / "results.parquet"

        def write(self, batch):
            table = pyarrow.Table.from_pylist(batch.records)
            n = len(list(self.parts.iterdir()))
            with atomic_output(self.parts / f"{n:06d}.parquet") as tmp:
                pyarrow.parquet.write_table(table, tmp)

        def close(self, status):
            with atomic_output(self.final) as tmp:
                pyarrow.parquet.write_table(
                    pyarrow.parquet.read_table(self.parts), tmp)

A sink that raises ends the run (exit 2) with ``plugin 'NAME' failed in sink 'FORMAT'
(writing): ...`` as the reason in the manifest; every record that arrived before is in
``results.jsonl``, and ``--resume`` goes on from there.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from toolkit.records import Status
from toolkit.store.names import log_name

#: errors of a file a sink writes that say the disk cannot hold it (full, over a quota or
#: the file size limit, read-only): any sink's, the run's surroundings, not its plugin
_SURROUNDINGS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


class RecordBatch:
    """Records as they arrived: ``jsonl`` (the encoded lines, newline-terminated), ``n``
    (how many) and, decoded once and only when a sink asks, ``records``."""

    __slots__ = ("__dict__", "jsonl", "n")

    def __init__(self, jsonl: bytes, n: int) -> None:
        self.jsonl = jsonl
        self.n = n

    @functools.cached_property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.jsonl.splitlines() if line.strip()]


class Sink(Protocol):
    """A result sink (see the module's docstring): made by ``factory(run_dir, recipe)``."""

    def write(self, batch: RecordBatch) -> None: ...

    def close(self, status: str) -> None: ...


SinkFactory = Callable[[Path, Any], Sink]


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success, rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class Collector:
    """Hands each batch of records to every sink, in order of arrival.

    The first sink is the primary one (``jsonl``), written first. Any sink that raises
    stops the run; another sink's error is a ``PluginError`` naming the plugin that
    registered it (``plugins``, by position).
    The collector also appends to ``logs/<instance>.log`` why an instance timed out or
    crashed, which its worker (killed) could not write.
    """

    def __init__(
        self,
        sinks: list[Sink],
        *,
        names: list[str] | None = None,
        plugins: list[str | None] | None = None,
        logs: Path | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.names = list(names) if names is not None else [type(s).__name__ for s in sinks]
        self.plugins = list(plugins) if plugins is not None else [None] * len(self.sinks)
        self.logs = Path(logs) if logs is not None else None
        self.warn = warn or _warn
        self.records = 0

    def write(self, lines: bytes, n: int, statuses: tuple[str, ...] = ()) -> None:
        """Hand ``n`` records (``lines``) to every sink. ``statuses`` are those of the
        records that are not ok: with neither a timeout nor a crash among them, the lines
        need no looking into (see ``_note_failures``)."""
        batch = RecordBatch(lines, n)
        self.sinks[0].write(batch)
        for i in range(1, len(self.sinks)):
            try:
                self.sinks[i].write(batch)
            except Exception as exc:
                raise self._failed(i, "writing", exc) from exc
        self.records += n
        if self.logs is not None and ("timeout" in statuses or "crashed" in statuses):
            self._note_failures(batch)

    def _failed(self, i: int, doing: str, exc: Exception) -> Exception:
        from toolkit.errors import PluginError, ToolkitError

        if isinstance(exc, ToolkitError):
            return exc
        if isinstance(exc, OSError) and exc.errno in _SURROUNDINGS:  # the disk's fault, not the plugin's
            from toolkit.errors import StorageError

            where = getattr(self.sinks[i], "path", None) if i < len(self.sinks) else None
            doing = f"cannot write {where}" if where else f"cannot write the {self.names[i]} results"
            return StorageError.from_os_error(exc, doing)
        return PluginError(self.plugins[i], f"sink {self.names[i]!r} ({doing})", exc)

    def _note_failures(self, batch: RecordBatch) -> None:
        for rec in batch.records:
            if rec.get("status") not in (Status.TIMEOUT, Status.CRASHED):
                continue
            error = rec.get("error") or {}
            note = (
                f"--- {rec.get('instance')} attempt {rec.get('attempts')}: {rec['status']}"
                f" (worker {rec.get('worker')}) ---\n{error.get('message', '')}\n"
            )
            with contextlib.suppress(OSError):
                self.logs.mkdir(parents=True, exist_ok=True)
                with open(self.logs / log_name(str(rec.get("instance"))), "a", encoding="utf-8") as f:
                    f.write(note)

    def close(self, status: str) -> None:
        """Close every sink, the primary last; raise the first error after closing all."""
        first: BaseException | None = None
        for i in range(len(self.sinks) - 1, -1, -1):
            try:
                self.sinks[i].close(status)
            except Exception as exc:
                if i == 0 or first is None:
                    first = exc if i == 0 else self._failed(i, "closing", exc)
        self.sinks.clear()
        if first is not None:
            raise first


def _warn(message: str) -> None:
    print(f"toolkit: warning: {message}", file=sys.stderr)


def results_path(run_dir: Path) -> Path:
    return Path(run_dir) / "results.jsonl"
