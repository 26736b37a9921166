"""What a run prints while it runs: a live view on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

#: plain mode prints a progress line at most this often
PLAIN_EVERY = 5.0


class PlainReporter:
    """No escape codes: a line per failure and a progress line every few seconds."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.total = 0
        self.counts: dict[str, int] = {}
        self.done = 0
        self.t0 = time.monotonic()
        self.last = self.t0

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def start(self, run_dir: Any, total: int, executor: str, reason: str, workers: int) -> None:
        self.total = total
        self.t0 = self.last = time.monotonic()
        self._print(f"run {run_dir}")
        self._print(f"{total} instances on {workers} workers, executor {executor} ({reason})")

    def message(self, text: str) -> None:
        self._print(text)

    def records(self, task: str, n: int, bad: list[str]) -> None:
        self.done += n
        for status in bad:
            self.counts[status] = self.counts.get(status, 0) + 1
        if bad:
            shown = ", ".join(f"{bad.count(s)} {s}" for s in sorted(set(bad)))
            self._print(f"  {task}: {shown}")

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        bad = sum(self.counts.values())
        eta = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0.0
        return (
            f"  {self.done}/{self.total} done, {bad} not ok, {rate:,.0f}/s,"
            f" {elapsed:.1f}s elapsed" + (f", about {eta:.0f}s left" if eta else "")
        )

    def tick(self) -> None:
        now = time.monotonic()
        if now - self.last >= PLAIN_EVERY:
            self.last = now
            self._print(self.line())

    def finish(self, status: str, counts: dict[str, int], not_run: int, run_dir: Any, duration: float) -> None:
        parts = [f"{v} {k}" for k, v in counts.items() if v]
        if not_run:
            parts.append(f"{not_run} not run")
        print(f"{status}: {', '.join(parts) or 'nothing to do'} in {duration:.2f}s", file=self.stream)
        print(f"results: {run_dir}", file=self.stream, flush=True)


def make_reporter(progress: str = "auto", quiet: bool = False, stream: TextIO | None = None) -> Any:
    stream = stream or sys.stdout
    live = progress == "on" or (progress == "auto" and stream.isatty())
    if live and not quiet:
        try:
            from toolkit.live import LiveReporter
        except ImportError:
            pass
        else:
            return LiveReporter(stream)
    return PlainReporter(stream, quiet=quiet or progress == "off")
