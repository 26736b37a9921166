"""``toolkit schedule``: fire recipes at their ``[schedule]`` times, or show those times."""

from __future__ import annotations

import argparse

from toolkit.builtin.commands import HELP
from toolkit.hookspecs import hookimpl

DESCRIPTION = """\
Run in the foreground and start `toolkit run RECIPE` at each recipe's [schedule] times
(cron or every, in its timezone). One scheduler per state directory. SIGTERM or Ctrl-C
stops firing, waits --grace for running runs, then stops them and exits 0.
With --next or --crontab, print and exit instead of running.
"""


@hookimpl
def toolkit_add_commands(subparsers: argparse._SubParsersAction) -> None:
    from toolkit.cli import RawDescriptionHelpFormatter  # argparse's, without importing shutil

    p = subparsers.add_parser(
        "schedule",
        help=HELP["schedule"],
        description=DESCRIPTION,
        formatter_class=RawDescriptionHelpFormatter,
    )
    p.add_argument("recipes", nargs="+", metavar="RECIPE", help="recipe files with a [schedule] table")
    from toolkit.builtin.commands.run import add_set_option

    add_set_option(p)  # applied to every recipe, and passed on to each of its runs
    p.add_argument(
        "--state",
        metavar="DIR",
        default=".toolkit-schedule",
        help="state directory: lock, per-recipe state, log.jsonl (default: .toolkit-schedule in the"
        " current directory)",
    )
    p.add_argument(
        "--grace",
        metavar="DURATION",
        default="30s",
        help="on SIGTERM/SIGINT, how long running runs may go on before they get SIGTERM (and SIGKILL"
        " 10 s later); default: 30s",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--next",
        metavar="N",
        type=int,
        dest="next_n",
        help="print the next N start times of each recipe and exit",
    )
    what.add_argument(
        "--crontab",
        action="store_true",
        help="print crontab lines for the recipes instead of scheduling them",
    )
    p.add_argument(
        "--now", metavar="ISO", help="with --next: count from this time instead of now (no offset means UTC)"
    )
    p.set_defaults(handler=schedule_command)


def schedule_command(args: argparse.Namespace) -> int:
    import os
    import sys
    from datetime import UTC, datetime

    from toolkit.errors import UsageError
    from toolkit.schedule.recipes import read_all
    from toolkit.schedule.spec import parse_duration

    if args.now is not None and args.next_n is None:
        raise UsageError("--now only applies to --next")
    if args.next_n is not None and args.next_n < 0:
        raise UsageError("--next needs a number >= 0")
    try:
        grace = parse_duration(args.grace)
    except ValueError as exc:
        raise UsageError(f"--grace: {exc}") from None
    recipes = read_all(args.recipes, tuple(args.overrides))
    plugins = tuple(args.plugins)

    if args.next_n is not None:
        from toolkit.schedule.preview import next_lines

        now = datetime.now(UTC)
        if args.now is not None:
            try:
                now = datetime.fromisoformat(args.now)
            except ValueError:
                raise UsageError(
                    f"--now: {args.now!r} is not an ISO 8601 time such as 2026-11-25T20:30:00+01:00"
                ) from None
            if now.tzinfo is None:
                now = now.replace(tzinfo=UTC)
        for line in next_lines(recipes, args.next_n, now):
            print(line)
        return 0

    if args.crontab:
        from toolkit.schedule.preview import NotExpressible, crontab_lines

        lines, impossible = crontab_lines(recipes, python=sys.executable, cwd=os.getcwd(), plugins=plugins)
        for line in lines:
            print(line)
        if impossible:
            raise NotExpressible(
                f"cron cannot express the schedule of {', '.join(impossible)} (see the comment above)"
            )
        return 0

    from toolkit.schedule.daemon import Daemon
    from toolkit.schedule.state import StateDir

    return Daemon(recipes, StateDir(args.state), grace=grace, plugins=plugins).run()
