"""``toolkit report RUN [-o FILE]``: (re)write a run's ``report.html``, also while it runs."""

from __future__ import annotations

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl

DEFAULT_OUTPUT = "runs"


@hookimpl
def toolkit_add_commands(subparsers):
    p = subparsers.add_parser(
        "report",
        help=HELP["report"],
        description="Write the report of a run: one self-contained HTML file (it fetches nothing) with the"
        " summary, per-task durations, a timeline of every instance on its worker, histograms, the task"
        " graph, failures and a table of every instance. Works on a run that is still going.",
    )
    p.add_argument(
        "run",
        metavar="RUN",
        help="a run id (or its start), RECIPE/RUN-ID, RECIPE/latest, latest, or a run directory",
    )
    p.add_argument(
        "-o",
        dest="file",
        metavar="FILE",
        help="write the report to FILE instead of the run's report.html",
    )
    p.add_argument(
        "--output",
        metavar="DIR",
        default=DEFAULT_OUTPUT,
        help=f"where run directories are (default: {DEFAULT_OUTPUT})",
    )
    p.set_defaults(handler=report_command)


def report_command(args) -> int:
    from pathlib import Path

    from toolkit.errors import ToolkitError
    from toolkit.report import write_report
    from toolkit.store.history import DAMAGED, effective_status, read_checked, resolve_run

    run = resolve_run(args.run, Path(args.output))
    manifest, damage = read_checked(run)  # a damaged manifest still gets a report of what can be read
    status = DAMAGED if damage else effective_status(manifest, run.path)
    try:
        path = write_report(run.path, args.file, status=status)
    except OSError as exc:
        target = args.file or run.path / "report.html"
        raise ToolkitError(f"cannot write {target}: {exc.strerror or exc}") from None
    print(path)
    return 0
