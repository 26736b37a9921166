"""``toolkit schedule --next`` and ``--crontab``: what the schedule would do, as text."""

from __future__ import annotations

import shlex
from datetime import datetime

from toolkit.errors import ToolkitError
from toolkit.schedule.cron import expand
from toolkit.schedule.firing import Timetable
from toolkit.schedule.recipes import Scheduled
from toolkit.schedule.spec import format_duration


class NotExpressible(ToolkitError):
    """A schedule that cron cannot express."""


def format_time(t: datetime) -> str:
    """ISO 8601 with the offset; milliseconds only when there are some (jitter)."""
    return t.isoformat(timespec="milliseconds" if t.microsecond else "seconds")


def next_lines(recipes: list[Scheduled], n: int, now: datetime) -> list[str]:
    """The next ``n`` start times per recipe, in its timezone, one per line.

    With several recipes each block starts with ``==> FILE <==``, as ``head`` does.
    """
    lines: list[str] = []
    for i, r in enumerate(recipes):
        if len(recipes) > 1:
            if i:
                lines.append("")
            lines.append(f"==> {r.given} <==")
        lines += [format_time(t) for t in Timetable(r.schedule, r.name).upcoming(now, n)]
    return lines


# every = N minutes/hours is a crontab line only when N divides the hour/day evenly
_MINUTE_STEPS = {n: f"*/{n} * * * *" for n in (2, 3, 4, 5, 6, 10, 12, 15, 20, 30)} | {1: "* * * * *"}
_HOUR_STEPS = {n: f"0 */{n} * * *" for n in (2, 3, 4, 6, 8, 12)} | {1: "0 * * * *", 24: "0 0 * * *"}


def every_as_cron(seconds: float) -> str | None:
    """The cron fields that fire at the same times as ``every`` (slots are multiples of
    ``every`` since the epoch, in UTC), or None if cron cannot say it."""
    if seconds % 60:
        return None
    minutes = int(seconds // 60)
    if minutes in _MINUTE_STEPS:
        return _MINUTE_STEPS[minutes]
    if minutes % 60 == 0 and minutes // 60 in _HOUR_STEPS:
        return _HOUR_STEPS[minutes // 60]
    return None


def _cron_escape(command: str) -> str:
    return command.replace("%", "\\%")  # cron turns a bare % into a newline


def crontab_lines(
    recipes: list[Scheduled], *, python: str, cwd: str, plugins: tuple[str, ...] = ()
) -> tuple[list[str], list[str]]:
    """Crontab lines that run each recipe as ``toolkit schedule`` would.

    A ``CRON_TZ=`` line precedes a recipe whose timezone differs from the one in force
    (cron's own, assumed UTC, at the top). ``every`` runs on a UTC grid. Returns the
    lines and the recipes cron cannot express (their block is a comment saying why).
    """
    lines: list[str] = []
    current_tz = "UTC"
    impossible: list[str] = []
    plugin_args = "".join(f" -p {shlex.quote(p)}" for p in plugins)
    for r in recipes:
        spec = r.schedule
        lines.append(f"# {r.name}: {spec.describe()} from {r.path}")
        if spec.cron is not None:
            fields, tz = expand(spec.cron), spec.timezone  # not every cron knows @daily
        else:
            fields, tz = every_as_cron(spec.every or 0.0), "UTC"
            if fields is None:
                every = format_duration(spec.every or 0.0)
                lines.append(
                    f"# not expressible: cron fires at fixed minutes and hours, so every = {every!r}"
                    " has no crontab line; use toolkit schedule, or a systemd timer with"
                    f" OnUnitActiveSec={every} (see docs/schedule.md)"
                )
                impossible.append(r.given)
                continue
        if spec.jitter:
            lines.append(f"# note: cron does not apply jitter = {format_duration(spec.jitter)!r}")
        if tz != current_tz:
            lines.append(f"CRON_TZ={tz}")
            current_tz = tz
        sets = "".join(f" --set {shlex.quote(o)}" for o in r.overrides)
        command = (
            f"cd {shlex.quote(cwd)} && {shlex.quote(python)} -m toolkit run{plugin_args}"
            f" {shlex.quote(str(r.path))}{sets}"
        )
        lines.append(f"{fields} {_cron_escape(command)}")
    return lines, impossible
