"""Instances and result records: the shapes that cross from workers to the run store."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import attrs

#: statuses a record can have; only "ok" counts as success
STATUSES = ("ok", "failed", "timeout", "crashed", "skipped")
FAILED_STATUSES = frozenset({"failed", "timeout", "crashed"})

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


@attrs.frozen(kw_only=True)
class Instance:
    """One task instance: what ``toolkit_task_start`` and ``toolkit_task_finish`` see."""

    task: str
    index: int
    id: str
    key: str
    params: dict[str, Any] = attrs.field(eq=False)


def instance_key(task: str, uses: str, version: str | None, params: dict[str, Any]) -> str:
    """The content key of an instance: stable across runs while task and params are."""
    try:
        blob = _dumps([task, uses, version, params])
    except (TypeError, ValueError):
        blob = repr([task, uses, version, sorted(params.items())])
    return hashlib.blake2b(blob.encode(), digest_size=10).hexdigest()


_second_cache: list[Any] = [None, ""]


def utc_iso(t: float) -> str:
    """``2026-11-25T20:30:00.123456Z`` for a ``time.time()`` value, fast."""
    sec = int(t)
    if _second_cache[0] != sec:
        _second_cache[0] = sec
        _second_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_second_cache[1]}.{int((t - sec) * 1_000_000):06d}Z"
