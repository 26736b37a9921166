"""Compaction: ``results.jsonl`` keeps one line per instance, the final one, when a
run, resume or retry ends; the records it supersedes move to ``attempts.jsonl``.

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
from pathlib import Path

from toolkit.store.rundir import RESULTS, cut_torn_tail

ATTEMPTS = "attempts.jsonl"
_KEY = b'", "key": "'


def line_key(line: bytes) -> str | None:
    """The content key of a record line (found by its layout; decoded if unusual)."""
    i = line.find(_KEY)
    if i >= 0 and line[i + 31 : i + 32] == b'"':
        return line[i + 11 : i + 31].decode()
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    key = rec.get("key") if isinstance(rec, dict) else None
    return key if isinstance(key, str) else None


def compact(run_dir: Path) -> int:
    """Compact the results of ``run_dir``; returns how many lines moved to
    ``attempts.jsonl`` (0: nothing to do, and nothing was rewritten)."""
    run_dir = Path(run_dir)
    results = run_dir / RESULTS
    if not results.exists():
        return 0
    cut_torn_tail(results)
    last: dict[str, int] = {}
    keyed = 0
    with open(results, "rb") as f:
        for i, line in enumerate(f):
            key = line_key(line) if line.strip() else None
            if key is not None:
                last[key] = i
                keyed += 1
    if keyed == len(last):
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
                key = line_key(line)
                if key is not None and last[key] != i:
                    digest = hashlib.blake2b(line, digest_size=16).digest()
                    if digest not in seen:
                        seen.add(digest)
                        out.write(line)
                    moved += 1
    with _beside(results) as out, open(results, "rb") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            key = line_key(line)
            if key is None or last[key] == i:
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
