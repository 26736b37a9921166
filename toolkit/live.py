"""The live view of a run on a terminal, drawn with rich.

The only module that imports rich; it is imported when a run starts on a terminal
(or with ``--progress on``), never by ``toolkit --help`` or the other commands.

The display never refreshes by itself (``auto_refresh=False``: rich would start a
thread for that); the run's loop calls :meth:`LiveReporter.tick` every few tens of
milliseconds and the view is redrawn at most every :data:`REFRESH` seconds. No thread
may run in the main process, because worker pools fork replacement workers during the
run. Nor does the view redirect ``sys.stdout``: forked workers inherit it.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from toolkit.records import STATUSES
from toolkit.tally import TaskTally, report_of, summary_line

#: seconds between two redraws
REFRESH = 0.1
#: a row per task up to this many tasks; beyond, the overall bar alone (a row per task
#: of a 1,000-task recipe fills no terminal, and redrawing them all made a run crawl)
MAX_ROWS = 20
_STATUS_STYLE = {"succeeded": "bold green", "failed": "bold red", "interrupted": "bold yellow"}


class RateColumn(ProgressColumn):
    """Instances per second."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f}/s" if speed else "", style="progress.data.speed")


class LiveReporter:
    """Per task (grouped by stage; up to :data:`MAX_ROWS` tasks) and overall: a bar,
    done/total, what is not ok, the state (waiting for its needs, running, done), the
    rate and the time left. Each record costs the same however many tasks there are."""

    verbose = 0  # -v

    def __init__(self, stream: TextIO | None = None, *, console: Console | None = None) -> None:
        self.console = console or Console(file=stream or sys.stdout, highlight=False)
        self.progress: Progress | None = None
        self.tally = TaskTally()
        self.rows: dict[str, TaskID] = {}
        self.stage_of: dict[str, int] = {}
        self.overall: TaskID | None = None
        self.last = 0.0
        self.all_counts = dict.fromkeys(STATUSES, 0)  # over every task, as records arrive

    # -- the reporter interface ------------------------------------------------
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
        self._print(f"run [bold]{escape(str(run_dir))}[/]")
        self._print(
            f"{total} instances on {workers} workers, executor [bold]{escape(executor)}[/]"
            f" [dim]({escape(reason)})[/]"
        )
        self.tally.expect(tasks)
        for level, names in enumerate(stages or [], start=1):
            for name in names:
                self.stage_of[name] = level
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TextColumn("{task.fields[bad]}"),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            transient=False,
        )
        self.overall = self.progress.add_task("[bold]all[/]", total=total, state="", bad="")
        if 1 < len(self.tally.totals) <= MAX_ROWS:
            for name, n in self.tally.totals.items():
                self._row(name, n)
        self._update_states()
        self.progress.start()
        self._refresh(force=True)

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)
        self._refresh(force=True)

    def records(self, task: str, n: int, bad: list[str]) -> None:
        counts = self.tally.add(task, n, bad)
        all_counts = self.all_counts
        all_counts["ok"] += n - len(bad)
        for status in bad:
            all_counts[status] = all_counts.get(status, 0) + 1
        if self.progress is None:
            return
        if self.overall is not None:
            self.progress.advance(self.overall, n)
            self.progress.update(self.overall, bad=_bad_text(all_counts))
        row = self.rows.get(task)
        if row is None and 1 < len(self.tally.totals) <= MAX_ROWS:
            row = self._row(task, self.tally.totals.get(task))
        if row is not None:
            self.progress.advance(row, n)
            self.progress.update(row, bad=_bad_text(counts))
            self._update_states()

    def tick(self) -> None:
        self._refresh()

    def finish(
        self, status: str, counts: dict[str, int], not_run: int, run_dir: Any, duration: float
    ) -> None:
        self.close()
        many = len(self.tally.counts) > MAX_ROWS
        if (len(self.tally.counts) > 1 and not many) or any(
            v for k, v in self.all_counts.items() if k != "ok"
        ):
            self._print(self._table(only_not_ok=many))
        style = _STATUS_STYLE.get(status, "bold")
        line = summary_line(status, counts, not_run, duration)
        head, _, rest = line.partition(":")
        self._print(f"[{style}]{escape(head)}[/]:{escape(rest)}")
        self._print(f"results: {escape(str(run_dir))}")
        report = report_of(run_dir)
        if report is not None:
            self._print(f"report: {escape(report)}")

    def close(self) -> None:
        if self.progress is not None:
            self._update_states()
            self.progress.stop()  # draws the final state, shows the cursor again
            self.progress = None

    # -- drawing -----------------------------------------------------------------
    def _print(self, renderable: Any) -> None:
        self.console.print(renderable, highlight=False)

    def _row(self, name: str, total: int | None) -> TaskID:
        assert self.progress is not None
        stage = self.stage_of.get(name)
        label = f"  {stage}. {escape(name)}" if stage else f"  {escape(name)}"
        row = self.progress.add_task(label, total=total, state="", bad="")
        self.rows[name] = row
        return row

    def _update_states(self) -> None:
        """waiting (an earlier stage is not done), running, or done."""
        if self.progress is None or not self.rows:
            return
        open_stages = [
            self.stage_of.get(name, 0)
            for name, total in self.tally.totals.items()
            if self.tally.done(name) < total
        ]
        current = min(open_stages, default=0)
        for name, row in self.rows.items():
            total = self.tally.totals.get(name)
            if total is not None and self.tally.done(name) >= total:
                state = "[green]done[/]"
            elif self.stage_of.get(name, 0) > current and not self.tally.done(name):
                state = "[dim]waiting[/]"
            else:
                state = "[cyan]running[/]"
            self.progress.update(row, state=state)

    def _refresh(self, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self.last >= REFRESH:
            self.last = now
            self.progress.refresh()

    def _table(self, only_not_ok: bool = False) -> Table:
        """Counts per task (with many tasks: of those with something not ok)."""
        table = Table(title=None, box=None, header_style="bold", pad_edge=False)
        table.add_column("task")
        for status in STATUSES:
            table.add_column(status, justify="right")
        for name, counts in self.tally.counts.items():
            if only_not_ok and not any(v for k, v in counts.items() if k != "ok"):
                continue
            table.add_row(escape(name), *(_count(counts.get(s, 0), s) for s in STATUSES))
        return table


def _count(n: int, status: str) -> str:
    if not n:
        return "[dim]0[/]"
    return f"[green]{n}[/]" if status == "ok" else f"[red]{n}[/]"


def _bad_text(counts: dict[str, int]) -> str:
    parts = [f"{counts[s]} {s}" for s in STATUSES[1:] if counts.get(s)]
    return f"[red]{', '.join(parts)}[/]" if parts else ""
