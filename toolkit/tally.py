"""Counting a run's records as they arrive, and the summary: shared by the plain
reporter (:mod:`toolkit.progress`) and the live view (:mod:`toolkit.live`)."""

from __future__ import annotations

import os
from typing import Any

from toolkit.records import STATUSES, Status


def summary_line(status: str, counts: dict[str, int], not_run: int, duration: float) -> str:
    """``failed: 15 ok, 1 failed, 1 skipped in 2.31s``."""
    parts = [f"{counts[k]} {k}" for k in STATUSES if counts.get(k)]
    if counts.get("cached") and counts.get("ok"):
        parts[0] += f" ({counts['cached']} from the cache)"
    if not_run:
        parts.append(f"{not_run} not run")
    return f"{status}: {', '.join(parts) or 'nothing to do'} in {duration:.2f}s"


def report_of(run_dir: Any) -> str | None:
    """The run's ``report.html`` as the summary names it, if the run wrote one (a plugin
    blocked with ``-p no:builtin.report`` writes none)."""
    path = os.path.join(str(run_dir), "report.html")
    return path if os.path.isfile(path) else None


class TaskTally:
    """Per-task counts of what arrived in this session."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.counts: dict[str, dict[str, int]] = {}

    def expect(self, tasks: dict[str, int] | None) -> None:
        for name, n in (tasks or {}).items():
            self.totals[name] = n
            self.counts.setdefault(name, dict.fromkeys(STATUSES, 0))

    def add(self, task: str, n: int, bad: list[str]) -> dict[str, int]:
        counts = self.counts.setdefault(task, dict.fromkeys(STATUSES, 0))
        counts[Status.OK] += n - len(bad)
        for status in bad:
            counts[status] = counts.get(status, 0) + 1
        return counts

    def done(self, task: str) -> int:
        return sum(self.counts.get(task, {}).values())
