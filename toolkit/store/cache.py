"""The results cache of a recipe: ``<output.dir>/<recipe.name>/cache.db`` (SQLite).

The cache is an index over the recipe's run directories, not a second copy of their
records: a record is written once, to its run's ``results.jsonl``, as it arrives, and
the cache says which runs hold the ok records of which task computed under which code
and upstream values. So writing it costs one row per task and run (plus one row per
instance for tasks that read or write files), whatever the number of instances, and a
crash loses nothing of it: the row is written before the task's first instance starts,
and the records are in ``results.jsonl`` as soon as they arrive.

Tables:

``sources``   (run, task, code, upstream, detail, identity, created): run ``run`` holds
              ok records of ``task``, computed with code digest ``code`` and upstream
              digest ``upstream``; ``detail`` says whether ``instances`` has rows for it;
              ``identity`` is the digest of what decides the task's instances (the
              manifest's task digest): with the same one, the same instances.
``instances`` (run, task, key, inputs, files, outputs): per instance of a task with input
              files or declared outputs: the digest of its input files, each file's
              digest (JSON ``{path: digest}``) and its outputs (JSON ``[[path, size,
              mtime_ns, digest], ...]``).
``files``     (path, size, mtime_ns, inode, digest, checked_ns): the digest cache of
              :class:`toolkit.store.fingerprint.FileDigests`.
``sealed``    (run, task, lines, size, mtime_ns, inode, marks): run ``run`` ended with
              a ``results.jsonl`` of ``lines`` ok records of ``task``, one per instance,
              and nothing else, and the file had that size, mtime and inode then;
              ``marks`` says whether every record's ``cached`` is ``null`` (``"null"``:
              all computed in that run) or a run's name (``"named"``: all copied). While
              it still has them, a run that takes every instance of the task from it
              copies the file as it is, without looking for a single key (the git index's
              technique again: a file's stat stands for its content).

An instance is a hit when a source of its task with the same code and upstream digests
holds an ok record with its content key (task, uses, version, params) and, for a task
with files, the same input digest and its outputs still there, unchanged. Sources are
tried newest first, so a run that was killed half way serves what it finished and an
older run the rest.

SQLite in WAL mode lets runs of one recipe read and write at once: one writer at a
time (each waits for the other, up to :data:`BUSY_MS`), transactions short, no fsync
per transaction (``synchronous = NORMAL``: a crash of the process loses nothing, a
power loss at most the last transactions).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from toolkit.errors import RunError

CACHE_FILE = "cache.db"
FORMAT = "1"
BUSY_MS = 60_000
#: sources of a task tried per lookup, newest first
MAX_SOURCES = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS sources (
    run TEXT NOT NULL, task TEXT NOT NULL, code TEXT NOT NULL, upstream TEXT NOT NULL,
    detail INTEGER NOT NULL, identity TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (run, task));
CREATE INDEX IF NOT EXISTS sources_task ON sources (task, created);
CREATE TABLE IF NOT EXISTS instances (
    run TEXT NOT NULL, task TEXT NOT NULL, key TEXT NOT NULL, inputs TEXT NOT NULL,
    files TEXT NOT NULL, outputs TEXT NOT NULL, PRIMARY KEY (run, task, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, digest TEXT,
    checked_ns INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sealed (
    run TEXT PRIMARY KEY, task TEXT NOT NULL, lines INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, marks TEXT NOT NULL) WITHOUT ROWID;
"""


def cache_path(output: Path, recipe_name: str) -> Path:
    return Path(output) / recipe_name / CACHE_FILE


class CacheDB:
    """The cache database of one recipe (see the module's docstring)."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            self._db = None
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(_SCHEMA)  # each statement is atomic and may run again
            db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (FORMAT,))
        except sqlite3.DatabaseError as exc:
            raise RunError(
                f"the cache {self.path} cannot be used: {exc}; run with --no-cache, or remove it"
                f" (and {self.path.name}-wal, -shm beside it) to start an empty cache"
            ) from None
        self._db = db

    @property
    def exists(self) -> bool:
        return self._db is not None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> CacheDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------
    def add_source(
        self, run: str, task: str, code: str, upstream: str, *, detail: bool, identity: str = ""
    ) -> None:
        """Run ``run`` holds (or is about to hold) ok records of ``task``."""
        with _transaction(self._db) as db:
            db.execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run, task, code, upstream, int(detail), identity, time.time()),
            )

    def add_instances(self, run: str, task: str, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Rows ``(key, inputs, files, outputs)`` of instances of ``task`` in ``run``."""
        rows = [(run, task, *row) for row in rows]
        if not rows:
            return
        with _transaction(self._db) as db:
            db.executemany("INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?, ?, ?)", rows)

    def save_files(self, entries: dict[str, tuple[int, int, int, str, int]]) -> None:
        if not entries:
            return
        with _transaction(self._db) as db:
            db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                [(path, *entry) for path, entry in entries.items()],
            )

    def seal(self, run: str, task: str, lines: int, st: os.stat_result, marks: str) -> None:
        """Run ``run``'s results file, whose stat is ``st``, is ``lines`` ok records of
        ``task``, one per instance, and nothing else."""
        with _transaction(self._db) as db:
            db.execute(
                "INSERT OR REPLACE INTO sealed VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run, task, lines, st.st_size, st.st_mtime_ns, st.st_ino, marks),
            )

    # -- reading ---------------------------------------------------------------
    def sealed(self, run: str, task: str) -> tuple[int, int, int, int, str] | None:
        """``(lines, size, mtime_ns, inode, marks)`` when ``run`` was sealed as ``task``'s alone."""
        if self._db is None:
            return None
        return self._db.execute(
            "SELECT lines, size, mtime_ns, inode, marks FROM sealed WHERE run = ? AND task = ?", (run, task)
        ).fetchone()

    def known_files(self) -> dict[str, tuple[int, int, int, str, int]]:
        if self._db is None:
            return {}
        return {row[0]: tuple(row[1:]) for row in self._db.execute("SELECT * FROM files")}

    def sources(self, task: str, code: str | None = None, upstream: str | None = None) -> list[tuple]:
        """``(run, code, upstream, detail, identity)`` of the sources of ``task``, newest
        first; only those with these digests when given."""
        if self._db is None:
            return []
        sql = "SELECT run, code, upstream, detail, identity FROM sources WHERE task = ?"
        args: list[Any] = [task]
        if code is not None:
            sql += " AND code = ?"
            args.append(code)
        if upstream is not None:
            sql += " AND upstream = ?"
            args.append(upstream)
        return self._db.execute(sql + " ORDER BY created DESC", args).fetchall()

    def instances(self, run: str, task: str) -> dict[str, tuple[str, str, str]]:
        """``{key: (inputs, files, outputs)}`` of a source with detail."""
        if self._db is None:
            return {}
        rows = self._db.execute(
            "SELECT key, inputs, files, outputs FROM instances WHERE run = ? AND task = ?", (run, task)
        )
        return {row[0]: row[1:] for row in rows}

    def forget_run(self, run: str) -> None:
        """Drop a run whose directory is gone."""
        with _transaction(self._db) as db:
            db.execute("DELETE FROM sources WHERE run = ?", (run,))
            db.execute("DELETE FROM instances WHERE run = ?", (run,))
            db.execute("DELETE FROM sealed WHERE run = ?", (run,))

    def summary(self) -> list[tuple[str, int, str | None]]:
        """``(task, runs, newest run)`` per task."""
        if self._db is None:
            return []
        return self._db.execute(
            "SELECT task, COUNT(*), (SELECT run FROM sources s2 WHERE s2.task = s.task"
            " ORDER BY created DESC LIMIT 1) FROM sources s GROUP BY task ORDER BY task"
        ).fetchall()

    def clear(self, task: str | None = None) -> int:
        """Forget every source (of ``task``); returns how many were forgotten."""
        if self._db is None:
            return 0
        with _transaction(self._db) as db:
            if task is None:
                n = db.execute("DELETE FROM sources").rowcount
                db.execute("DELETE FROM instances")
                db.execute("DELETE FROM files")
                db.execute("DELETE FROM sealed")
            else:
                n = db.execute("DELETE FROM sources WHERE task = ?", (task,)).rowcount
                db.execute("DELETE FROM instances WHERE task = ?", (task,))
                db.execute("DELETE FROM sealed WHERE task = ?", (task,))
        return n


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection | None):
    """``BEGIN IMMEDIATE`` (take the write lock now, waiting for another writer up to
    the busy timeout) ... ``COMMIT``, or ``ROLLBACK`` on an error."""
    if db is None:
        raise RunError("the cache database is not open")
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# -- the records a source holds --------------------------------------------------
_KEY = b'", "key": "'
_OK = b'}, "status": "ok", '
_CACHED_NULL = b'"cached": null}'
_KEYS = re.compile(rb'", "key": "([0-9a-f]{20})", "params": ')


def ok_lines(results: Path, task: str) -> dict[str, bytes]:
    """``{content key: line}`` of the ok records of ``task`` in a ``results.jsonl`` (the
    last record of a key wins; a torn last line is passed over)."""
    return ok_lines_in(read_tasks(results), task)


def read_tasks(results: Path) -> dict[bytes | None, list[bytes]]:
    """The whole lines of a ``results.jsonl`` (a torn last line is no record), grouped
    by task (the task's name as its JSON string holds it; None: lines not laid out as
    records are), each group in file order. Read once, it serves the lookups of every
    task of a recipe (a lookup per task reading the file again would make a recipe of
    many tasks quadratic). Lines are not decoded: a record starts with its task's name,
    a JSON string, in which ``", "`` cannot occur unescaped."""
    try:
        with open(results, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    end = data.rfind(b"\n") + 1
    data = data[:end] if end < len(data) else data
    lines = data.split(b"\n")
    lines.pop()  # what follows the last newline
    if not lines:
        return {}
    start = _TASK
    first = lines[0]
    cut = first.find(b'", ', len(start)) if first.startswith(start) else -1
    if cut > 0 and data.count(b"\n" + first[: cut + 3]) == len(lines) - 1:
        return {first[len(start) : cut]: lines}  # the usual file of a one-task recipe
    groups: dict[bytes | None, list[bytes]] = {}
    find, at = bytes.find, len(start)
    for line in lines:
        cut = find(line, b'", ', at) if line.startswith(start) else -1
        if cut > 0:
            name = line[at:cut]
        elif line.strip():
            name = None
        else:
            continue
        group = groups.get(name)
        if group is None:
            groups[name] = [line]
        else:
            group.append(line)
    return groups


_TASK = b'{"task": "'


def ok_lines_in(groups: dict[bytes | None, list[bytes]], task: str) -> dict[str, bytes]:
    """:func:`ok_lines` of lines grouped by :func:`read_tasks`."""
    lines = groups.get(json.dumps(task, ensure_ascii=False).encode()[1:-1], [])
    n = len(lines)
    out: dict[str, bytes] = {}
    if n:
        blob = b"\n".join(lines)
        if blob.count(_OK) == n and blob.count(_KEY) == n:
            # every record of the task ok (the usual case): the keys in one pass
            keys = _KEYS.findall(blob)
            if len(keys) == n:
                out = dict(zip(b" ".join(keys).decode().split(" "), lines, strict=True))
                lines = []
    find = bytes.find
    for line in lines:
        i = find(line, _KEY)
        if i < 0 or not line.endswith(b"}"):
            _slow_line(line, task, out)
            continue
        if find(line, _OK, i) >= 0:
            out[line[i + 11 : i + 31].decode()] = line
        else:
            out.pop(line[i + 11 : i + 31].decode(), None)
    for line in groups.get(None, ()):
        _slow_line(line, task, out)
    return out


def _slow_line(line: bytes, task: str, out: dict[str, bytes]) -> None:
    try:
        rec = json.loads(line)
        key = rec["key"]
    except (ValueError, KeyError, TypeError):
        return
    if rec.get("task") != task:
        return
    if rec.get("status") == "ok":
        out[key] = line
    else:
        out.pop(key, None)


def mark_all_cached(lines: list[bytes], run: bytes) -> bytes:
    """The lines, newline-terminated, each marked by :func:`mark_cached` (one pass over
    the joined text where every line says ``"cached": null``, as records of this
    version do)."""
    if not lines:
        return b""
    blob = b"\n".join(lines) + b"\n"
    nulls = blob.count(b'"cached": null}\n')
    if nulls == len(lines):
        return blob.replace(b'"cached": null}\n', b'"cached": ' + run + b"}\n")
    if nulls == 0 and blob.count(b'"}\n') == len(lines):
        return blob  # every line ends with a string: the run it was first computed in
    return b"\n".join([mark_cached(line, run) for line in lines]) + b"\n"


def mark_cached(line: bytes, run: bytes) -> bytes:
    """The record ``line`` with ``cached`` naming ``run`` (a JSON string, quoted), unless
    it already names the run it was first computed in."""
    if line.endswith(_CACHED_NULL):
        return line[:-5] + run + b"}"
    if b'"cached": ' in line[-120:]:
        return line
    return line[:-1] + b', "cached": ' + run + b"}"


#: a sealed file is copied in pieces of about this size: a piece stays in the CPU's
#: cache while it is marked, counted and written, and the copy never holds the file
CHUNK = 1 << 16


def open_sealed(path: Path, seal: tuple[int, int, int, int, str]) -> BinaryIO | None:
    """``path`` open for reading, if it still has the size, mtime and inode of ``seal``
    (compared on the open file: what is read is what was compared)."""
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by sealed_chunks, or here
    except OSError:
        return None
    st = os.fstat(f.fileno())
    if (st.st_size, st.st_mtime_ns, st.st_ino) != tuple(seal[1:4]):
        f.close()
        return None
    return f


def sealed_chunks(
    f: BinaryIO, seal: tuple[int, int, int, int, str], run: bytes
) -> Iterator[tuple[bytes, int]]:
    """The records of the open sealed file ``f``, each marked as :func:`mark_cached`
    does, as ``(whole lines, how many)`` pieces; ``f`` is closed at the end.

    Every line of a sealed file ends with ``"cached": null}`` or with the string that
    names the run it was computed in, which stays; where every line says null
    (``marks``), marking the lines counts them."""
    lines, size, _mtime_ns, _inode, marks = seal
    null, named = _CACHED_NULL + b"\n", b'"cached": ' + run + b"}\n"
    total = 0
    with f:
        left = size
        while left > 0:
            data = f.read(min(CHUNK, left))
            end = data.rfind(b"\n") + 1
            while not end and len(data) < left:  # a line longer than a piece
                more = f.read(min(CHUNK, left - len(data)))
                if not more:
                    break
                data += more
                end = data.rfind(b"\n") + 1
            if not end:
                break
            if end < len(data):  # the rest of the last line is read again with the next piece
                f.seek(end - len(data), os.SEEK_CUR)  # (cheaper than joining the two pieces)
                data = data[:end]
            left -= end
            if marks == "named":
                n = data.count(b"\n")
            else:  # split and join: faster than replace (measured), and counts the lines
                parts = data.split(null)
                n = len(parts) - 1 if marks == "null" else data.count(b"\n")
                data = named.join(parts)
            total += n
            yield data, n
    if left or total != lines:
        raise RunError(f"{f.name} changed while it was copied from the cache")


def outputs_unchanged(outputs: str, digests: Any) -> str | None:
    """None when every output of a cached instance is there as it was written; else the
    first path that is missing or changed, as ``"output missing: PATH"`` or
    ``"output changed: PATH"``."""
    if not outputs or outputs == "[]":
        return None
    for path, size, mtime_ns, digest in json.loads(outputs):
        try:
            st = os.stat(path)
        except OSError:
            return f"output missing: {path}"
        if st.st_size == size and st.st_mtime_ns == mtime_ns:
            continue
        if digests.digest(path, output=True) != digest:
            return f"output changed: {path}"
    return None
