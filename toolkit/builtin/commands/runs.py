"""``toolkit runs`` (run history) and ``toolkit show RUN`` (one run's summary and failures).

Plain text: aligned columns that a pipe, ``grep`` and a log file take as they are. On a
terminal the status words are coloured, unless ``NO_COLOR`` is set.
"""

from __future__ import annotations

import os
import sys

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl

DEFAULT_OUTPUT = "runs"
#: failures `toolkit show` lists unless --all
SHOW_FAILURES = 20
_COLOURS = {
    "damaged": "31",
    "succeeded": "32",
    "failed": "31",
    "incomplete": "33",
    "interrupted": "33",
    "dead": "31",
    "running": "36",
}


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser("runs", help=HELP["runs"])
    p.add_argument(
        "--output",
        metavar="DIR",
        default=DEFAULT_OUTPUT,
        help=f"where run directories are (default: {DEFAULT_OUTPUT})",
    )
    p.add_argument("--recipe", metavar="NAME", help="only the runs of this recipe")
    p.add_argument("-n", "--limit", type=int, default=0, metavar="N", help="only the N newest runs")
    p.add_argument(
        "--prune",
        action="store_true",
        help="delete old run directories: keep the newest N per recipe (never a running run or latest)",
    )
    p.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="with --prune: runs to keep per recipe (default: each recipe's [output] keep)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="with --prune: say what would be deleted, delete nothing"
    )
    p.set_defaults(handler=runs_command)

    p = subparsers.add_parser("show", help=HELP["show"])
    p.add_argument(
        "run",
        metavar="RUN",
        help="a run id (or its start), RECIPE/RUN-ID, RECIPE/latest, latest, or a run directory",
    )
    p.add_argument(
        "--output",
        metavar="DIR",
        default=DEFAULT_OUTPUT,
        help=f"where run directories are (default: {DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--all", action="store_true", help=f"list every failure, not only the first {SHOW_FAILURES}"
    )
    p.set_defaults(handler=show_command)


def _colour(text: str, status: str, width: int = 0) -> str:
    padded = f"{text:<{width}}"
    code = _COLOURS.get(status)
    if code and sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return f"\x1b[{code}m{text}\x1b[0m" + padded[len(text) :]
    return padded


def _table(header: list[str], rows: list[list[str]], status_col: int) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {
        i for i, h in enumerate(header) if h in ("TOTAL", "OK", "FAILED", "SKIPPED", "NOT RUN", "DURATION")
    }
    out = []
    for n, row in enumerate([header, *rows]):
        cells = []
        for i, value in enumerate(row):
            if i in right:
                cells.append(f"{value:>{widths[i]}}")
            elif i == status_col and n > 0:
                cells.append(_colour(value, value, widths[i]))
            else:
                cells.append(f"{value:<{widths[i]}}")
        out.append("  ".join(cells).rstrip())
    return out


def runs_command(args) -> int:
    from pathlib import Path

    from toolkit.store.history import list_runs, show_duration, show_time

    if args.prune or args.keep is not None or args.dry_run:
        from toolkit.builtin.commands.prune import prune_command

        return prune_command(args)
    output = Path(args.output)
    entries = list_runs(output, args.recipe)
    if args.limit > 0:
        entries = entries[: args.limit]
    if not entries:
        where = output / args.recipe if args.recipe else output
        print(f"no runs in {where}")
        return 0
    header = [
        "RUN",
        "RECIPE",
        "STATUS",
        "TOTAL",
        "OK",
        "FAILED",
        "SKIPPED",
        "NOT RUN",
        "DURATION",
        "STARTED",
        "NOTE",
    ]
    rows = []
    for e in entries:
        c = e.counts
        rows.append(
            [
                e.run.run_id,
                e.recipe,
                e.status,
                str(c.get("total", "-")),
                str(c.get("ok", 0)),
                str(e.failed()),
                str(c.get("skipped", 0)),
                str(c.get("not_run", 0)),
                show_duration(e.duration),
                show_time(e.manifest.get("started")),
                e.note(),
            ]
        )
    print("\n".join(_table(header, rows, status_col=2)))
    return 0


def show_command(args) -> int:
    from pathlib import Path

    from toolkit.store.history import RunEntry, error_head, failures, resolve_run, show_duration, show_time

    run = resolve_run(args.run, Path(args.output))
    entry = RunEntry.read(run)
    m = entry.manifest
    c = entry.counts
    lines: list[tuple[str, str]] = [
        ("run", run.run_id),
        ("recipe", entry.recipe + (f"  ({m['recipe_path']})" if m.get("recipe_path") else "")),
        ("status", _colour(entry.status, entry.status)),
        ("started", show_time(m.get("started"))),
        ("finished", show_time(m.get("finished")) if m.get("finished") else "-"),
        ("duration", show_duration(entry.duration)),
    ]
    if entry.damaged:
        lines.append(("", f"{entry.problem} (what could be read is shown)"))
    if entry.status == "dead":
        lines.append(("", f"marked running, but its process (pid {m.get('pid')}) is gone: it was killed"))
    if m.get("resumed"):
        lines.append(("resumed", ", ".join(show_time(t) for t in m["resumed"])))
    if m.get("scheduled_for"):
        lines.append(("scheduled", show_time(m["scheduled_for"])))
    lines += [
        ("executor", f"{m.get('executor', '-')} ({m.get('executor_reason', '')})"),
        (
            "workers",
            f"{m.get('workers', '-')}" + (f" ({m['start_method']})" if m.get("start_method") else ""),
        ),
        ("host", str(m.get("host", "-"))),
        ("versions", _versions(m)),
        ("counts", _counts(c)),
        ("directory", str(run.path)),
    ]
    if entry.status in ("failed", "interrupted", "dead", "incomplete"):
        lines.append(("resume", resume_command(m, run.run_id, args.output)))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")

    bad, skipped = failures(run)
    if bad:
        shown = bad if args.all else bad[:SHOW_FAILURES]
        print()
        print(
            f"failures ({len(shown)} of {len(bad)}):" if len(shown) < len(bad) else f"failures ({len(bad)}):"
        )
        for rec in shown:
            attempts = rec.get("attempts") or 0
            print(
                f"  {rec.get('instance')}  {rec.get('status')}"
                f" after {attempts} attempt{'s' if attempts != 1 else ''}"
            )
            for text in error_head(rec.get("error")):
                print(f"    {text}")
            log = run.log_path(str(rec.get("instance")))
            if log.exists():
                print(f"    log: {log}")
        if len(shown) < len(bad):
            print(f"  ... {len(bad) - len(shown)} more (--all lists them)")
    if skipped:
        by_task: dict[str, int] = {}
        for rec in skipped:
            task = str(rec.get("task", "?"))
            by_task[task] = by_task.get(task, 0) + 1
        print()
        print("skipped: " + ", ".join(f"{n} of {task}" for task, n in by_task.items()))
        head = error_head(skipped[0].get("error"), lines=1)
        if head:
            print(f"  {head[0]}")
    return 0


def resume_command(m: dict, run_id: str, output: str) -> str:
    """The command that resumes the run: its recipe, its ``--set`` overrides, where it is."""
    import shlex
    from pathlib import Path

    words = ["toolkit", "run", str(m.get("recipe_path") or "RECIPE"), "--resume", run_id]
    for override in m.get("overrides") or []:
        words += ["--set", str(override)]
    if Path(output) != Path(DEFAULT_OUTPUT):
        words += ["--output", str(output)]
    return " ".join(w if w == "RECIPE" else shlex.quote(w) for w in words)


def _versions(m: dict) -> str:
    parts = [f"toolkit {m.get('toolkit', '?')}", f"Python {m.get('python', '?')}"]
    plugins = m.get("plugins") or {}
    if plugins:
        parts.append("plugins: " + ", ".join(f"{k} {v}".strip() for k, v in sorted(plugins.items())))
    return ", ".join(parts)


def _counts(c: dict) -> str:
    from toolkit.records import STATUSES

    parts = [f"{c[k]} {k}" for k in STATUSES if c.get(k)]
    if c.get("not_run"):
        parts.append(f"{c['not_run']} not run")
    total = c.get("total")
    return (f"{total} total: " if total is not None else "") + (", ".join(parts) or "nothing ran")
