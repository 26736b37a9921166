"""Compaction: ``results.jsonl`` keeps one line per instance, the final one, when a
run, resume or retry ends; the records it supersedes move to ``attempts.jsonl``.

An instance is its instance id, not its content key: after ``--resume --force`` an
instance whose params changed has a new key and the same id, and only its new record
is final. Records of instances the recipe no longer makes (``live``) move too.

While a run is going, lines are only appended (a crash loses none). Compaction then
rewrites both files, each atomically (written beside, fsynced, renamed): first
``attempts.jsonl`` with the superseded lines added, then ``results.jsonl`` without them.
A crash between the two leaves the superseded lines in both files, and the next
compaction does not add them to ``attempts.jsonl`` twice: nothing is lost, nothing
counted twice once it has run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Container, Mapping
from pathlib import Path

from toolkit.store.rundir import RESULTS, cut_torn_tail

ATTEMPTS = "attempts.jsonl"
_KEY = b'", "key": "'
_INSTANCE = b', "instance": "'


def line_instance(line: bytes) -> str | None:
    """The instance id of a record line (found by its layout; decoded if unusual). In a
    JSON string every quote is escaped, so ``", "key": "`` ends the id, whatever it holds."""
    start = line.find(_INSTANCE)
    end = line.find(_KEY, start)
    if 0 <= start < end:
        raw = line[start + len(_INSTANCE) : end]
        if b"\\" not in raw:
            return raw.decode("utf-8", "surrogateescape")
        try:
            return json.loads(b'"' + raw + b'"')
        except ValueError:
            pass
    rec = _record(line)
    iid = rec.get("instance") if rec is not None else None
    return iid if isinstance(iid, str) else None


def _record(line: bytes) -> dict | None:
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def compact(run_dir: Path, live: Mapping[str, Container[str] | None] | None = None) -> int:
    """Compact the results of ``run_dir``; returns how many lines moved to
    ``attempts.jsonl`` (0: nothing to do, and nothing was rewritten).

    ``live`` (after a forced resume of a changed recipe): per task of the recipe, its
    instance ids (None: all of its records are of live instances); the records of other
    instances and other tasks move to ``attempts.jsonl`` too."""
    run_dir = Path(run_dir)
    results = run_dir / RESULTS
    if not results.exists():
        return 0
    cut_torn_tail(results)

    def gone(iid: str) -> bool:
        if live is None:
            return False
        task = iid.partition("[")[0]
        if task not in live:
            return True
        ids = live[task]
        return ids is not None and iid not in ids

    last: dict[str, int] = {}
    keyed = 0
    with open(results, "rb") as f:
        for i, line in enumerate(f):
            iid = line_instance(line) if line.strip() else None
            if iid is not None:
                last[iid] = -1 if gone(iid) else i
                keyed += 1
    if keyed == len(last) and -1 not in last.values():
        return 0
    attempts = run_dir / ATTEMPTS
    moved = 0
    seen: set[bytes] = set()
    with _beside(attempts) as out:
        if attempts.exists():
            cut_torn_tail(attempts)
            with open(attempts, "rb") as f:
                for line in f:
                    seen.add(hashlib.blake2b(line, digest_size=16).digest())
                    out.write(line)
        with open(results, "rb") as f:
            for i, line in enumerate(f):
                if not line.strip():
                    continue
                iid = line_instance(line)
                if iid is not None and last[iid] != i:
                    digest = hashlib.blake2b(line, digest_size=16).digest()
                    if digest not in seen:
                        seen.add(digest)
                        out.write(line)
                    moved += 1
    with _beside(results) as out, open(results, "rb") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            iid = line_instance(line)
            if iid is None or last[iid] == i:
                out.write(line)
    return moved


@contextlib.contextmanager
def _beside(path: Path):
    """A file written beside ``path`` that replaces it, fsynced, when the block ends
    without an error (and is removed when it does not)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.compact")
    f = open(tmp, "wb")  # noqa: SIM115 - closed below, before the rename
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException:
        f.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
