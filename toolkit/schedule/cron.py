"""The one adapter over cronsim: parse a cron expression, step through its times.

cronsim is Healthchecks' parser; it matches Debian cron on both daylight-saving edges
(a fixed-time job in a skipped hour runs once, right after the gap; one in a repeated
hour runs once, in the first pass), which is why we use it. Only this module imports it.
We accept the five classic fields and the ``@`` aliases, which we expand ourselves.
All times that leave this module are aware datetimes in UTC: datetimes that share a
``tzinfo`` compare by wall time, ignoring ``fold``, which is wrong across a repeated hour.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo

import attrs

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELDS = "minute hour day-of-month month day-of-week"


class CronError(ValueError):
    """A cron expression that cannot be used; the message is for the user."""


def expand(expr: str) -> str:
    """The five fields of ``expr``, with an ``@`` alias replaced; raises :class:`CronError`."""
    text = " ".join(expr.split())
    if text.startswith("@"):
        alias = text.lower()
        if alias in ALIASES:
            return ALIASES[alias]
        if alias == "@reboot":
            raise CronError("@reboot is not supported: toolkit schedule fires at times, not at start-up")
        close = difflib.get_close_matches(alias, ALIASES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(ALIASES)})"
        raise CronError(f"unknown alias {expr.strip()!r}{hint}")
    n = len(text.split())
    if n != 5:
        raise CronError(f"{expr!r} has {n} fields; a cron expression has five ({FIELDS}) or is an @alias")
    return text


@attrs.frozen
class CronExpression:
    """A validated cron expression: ``expr`` as written, ``fields`` expanded."""

    expr: str
    fields: str

    @classmethod
    def parse(cls, expr: str) -> CronExpression:
        from cronsim import CronSim, CronSimError

        fields = expand(expr)
        try:
            sim = CronSim(fields, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as exc:  # cronsim says which field: "Bad day-of-week"
            raise CronError(f"{expr!r} is not a valid cron expression: {exc}") from None
        try:
            next(sim)
        except StopIteration:
            raise CronError(f"{expr!r} never fires") from None
        return cls(expr, fields)

    def _iterate(self, start: datetime, tz: tzinfo, *, reverse: bool) -> Iterator[datetime]:
        from cronsim import CronSim

        sim = CronSim(self.fields, start.astimezone(tz), reverse=reverse)
        while True:
            try:
                yield next(sim).astimezone(UTC)
            except StopIteration:  # no match within 50 years: as good as never
                return

    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        """The first firing strictly after ``after``, in UTC; None if there is none."""
        after = after.astimezone(UTC)
        for t in self._iterate(after, tz, reverse=False):
            # cronsim steps in wall time for fixed-time jobs, so from inside a repeated
            # hour it can answer a time that has already passed: step on.
            if t > after:
                return t
        return None

    def latest(self, until: datetime, tz: tzinfo, *, after: datetime, limit: int) -> list[datetime]:
        """Up to ``limit`` of the latest firings in ``(after, until]``, oldest first, in UTC.

        Walks backwards from ``until``, so the cost depends on ``limit``, not on how long
        ago ``after`` is.
        """
        until, after = until.astimezone(UTC), after.astimezone(UTC)
        found: list[datetime] = []
        if limit <= 0 or until <= after:
            return found
        # cronsim's reverse walk starts strictly before its start time
        for t in self._iterate(until + timedelta(seconds=1), tz, reverse=True):
            if t <= after:
                break
            if t <= until and (not found or t < found[-1]):
                found.append(t)
                if len(found) == limit:
                    break
        found.reverse()
        return found
