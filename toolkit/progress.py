"""What a run prints while it runs: a live view on a terminal, plain lines elsewhere.

A reporter is called by the run, in the main process, as follows::

    start(run_dir, total, executor, reason, workers, tasks=..., stages=...)
    records(task, n, bad)       # n records of ``task`` arrived; ``bad``: their non-ok statuses
    message(text)               # something the user must see (an interruption)
    tick()                      # often (every poll of the executor): refresh, if it is time
    finish(status, counts, not_run, run_dir, duration)
    close()                     # always, last, also after an error: restore the terminal

``tasks`` maps each task to the number of its instances this session runs, in recipe
order; ``stages`` lists task names by level of ``needs``. Reporters never start
threads: worker pools fork replacement processes during the run, and forking a
process that runs threads is unsafe (Python 3.12+ warns about it).

Levels: ``-q`` prints the summary only; ``--progress off`` adds the start lines, a line
per task with failures and a line per finished task; the plain default (a pipe, a log
file) adds a progress line every :data:`PLAIN_EVERY` seconds; on a terminal (or with
``--progress on``) the rich live view of :mod:`toolkit.live` replaces all that.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from toolkit.records import STATUSES
from toolkit.tally import TaskTally, report_of, summary_line

__all__ = ["PlainReporter", "TaskTally", "make_reporter", "summary_line", "wants_live"]

#: plain mode prints a progress line at most this often
PLAIN_EVERY = 5.0


class PlainReporter:
    """No escape codes, ever: lines a log file or a pipe can take."""

    verbose = 0  # -v

    def __init__(
        self,
        stream: TextIO | None = None,
        quiet: bool = False,
        periodic: bool = True,
        every: float = PLAIN_EVERY,
    ) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.periodic = periodic and not quiet
        self.every = every
        self.total = 0
        self.done = 0
        self.not_ok = 0
        self.tally = TaskTally()
        self.t0 = self.last = time.monotonic()

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def start(
        self,
        run_dir: Any,
        total: int,
        executor: str,
        reason: str,
        workers: int,
        *,
        tasks: dict[str, int] | None = None,
        stages: list[list[str]] | None = None,
    ) -> None:
        self.total = total
        self.tally.expect(tasks)
        self.t0 = self.last = time.monotonic()
        self._print(f"run {run_dir}")
        self._print(f"{total} instances on {workers} workers, executor {executor} ({reason})")

    def message(self, text: str) -> None:
        self._print(text)

    def records(self, task: str, n: int, bad: list[str]) -> None:
        self.done += n
        self.not_ok += len(bad)
        counts = self.tally.add(task, n, bad)
        if bad:
            shown = ", ".join(f"{bad.count(s)} {s}" for s in STATUSES if s in bad)
            self._print(f"  {task}: {shown}")
        total = self.tally.totals.get(task)
        if total and self.tally.done(task) == total and total != self.total:
            parts = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
            self._print(f"  {task}: {total}/{total} done ({parts})")

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0.0
        return (
            f"  {self.done}/{self.total} done, {self.not_ok} not ok, {rate:,.1f}/s,"
            f" {elapsed:.1f}s elapsed" + (f", about {eta:.0f}s left" if eta else "")
        )

    def tick(self) -> None:
        if not self.periodic:
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._print(self.line())

    def finish(
        self, status: str, counts: dict[str, int], not_run: int, run_dir: Any, duration: float
    ) -> None:
        print(summary_line(status, counts, not_run, duration), file=self.stream)
        print(f"results: {run_dir}", file=self.stream, flush=True)
        report = report_of(run_dir)
        if report is not None:
            print(f"report: {report}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


def wants_live(progress: str, stream: TextIO) -> bool:
    if progress == "on":
        return True
    if progress == "off":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def make_reporter(
    progress: str = "auto", quiet: bool = False, stream: TextIO | None = None, verbose: int = 0
) -> Any:
    """The reporter for ``--progress``, ``-q`` and ``-v`` on ``stream`` (default: stdout).

    It prints through a best-effort stream: output that cannot be written (a closed
    pipe, a full disk) is dropped and never stops the run (see ``toolkit.streams``)."""
    from toolkit.streams import best_effort

    stream = best_effort(stream or sys.stdout)
    reporter: Any = None
    if quiet:
        reporter = PlainReporter(stream, quiet=True)
    elif wants_live(progress, stream):
        try:
            from toolkit.live import LiveReporter
        except ImportError:  # rich missing: plain lines do
            pass
        else:
            reporter = LiveReporter(stream)
    if reporter is None:
        reporter = PlainReporter(stream, periodic=progress != "off")
    reporter.verbose = verbose  # executors' verbose-only messages (ExecutorContext.message)
    return reporter
