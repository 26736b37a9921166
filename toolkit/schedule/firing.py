"""When a recipe fires: pure functions of a :class:`ScheduleSpec` and a given time.

Nothing here reads the clock; the daemon passes ``now`` in, and so do the tests.
Vocabulary:

- a *slot* is a time the schedule names (a cron time, or a multiple of ``every``
  since the Unix epoch), an aware datetime in UTC;
- a recipe's runs start ``offset`` after their slot: its deterministic jitter;
- ``handled_until``: every slot up to it has been fired, queued or deliberately
  dropped; the daemon keeps it in its state directory, so a restart neither repeats
  a slot nor forgets one.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import attrs

from toolkit.schedule.cron import CronExpression
from toolkit.schedule.spec import ScheduleSpec, load_timezone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

#: a slot noticed at most this late still fires as on time (a quick restart, a busy
#: machine); older slots were missed while the scheduler was down: ``catchup`` decides.
ON_TIME = timedelta(seconds=60)

#: how far :meth:`Timetable.count` walks before it stops counting
COUNT_CAP = 10_000


def jitter_offset(name: str, jitter: float) -> timedelta:
    """A fixed delay in ``[0, jitter]``, whole milliseconds, derived from the recipe name.

    The same recipe always gets the same delay (so ``--next`` can show it and restarts
    keep it); different recipes on one schedule spread out.
    """
    if jitter <= 0:
        return timedelta(0)
    digest = hashlib.sha256(name.encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(milliseconds=int(fraction * jitter * 1000))


class Timetable:
    """The slots of one recipe's schedule, and its jitter offset."""

    def __init__(self, spec: ScheduleSpec, name: str) -> None:
        self.spec = spec
        self.name = name
        self.tz = load_timezone(spec.timezone)
        self.offset = jitter_offset(name, spec.jitter)
        self._cron = CronExpression.parse(spec.cron) if spec.cron is not None else None
        self._every_us = round(spec.every * 1_000_000) if spec.every is not None else 0

    def _grid(self, t: datetime) -> int:
        """The index of the last ``every`` slot at or before ``t``."""
        return ((t - EPOCH) // _US) // self._every_us

    def _slot(self, k: int) -> datetime:
        return EPOCH + k * self._every_us * _US

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``; None if the schedule never fires again."""
        if self._cron is not None:
            return self._cron.next_after(after, self.tz)
        return self._slot(self._grid(after.astimezone(UTC)) + 1)

    def latest(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Up to ``limit`` of the latest slots in ``(after, until]``, oldest first."""
        if self._cron is not None:
            return self._cron.latest(until, self.tz, after=after, limit=limit)
        first, last = self._grid(after) + 1, self._grid(until)
        return [self._slot(k) for k in range(max(first, last - limit + 1), last + 1)]

    def count(self, after: datetime, until: datetime) -> int | None:
        """How many slots lie in ``(after, until]``; None if more than :data:`COUNT_CAP`."""
        if self._cron is None:
            n = max(0, self._grid(until) - self._grid(after))
            return n if n <= COUNT_CAP else None
        n, t = 0, self.next_slot(after)
        while t is not None and t <= until:
            n += 1
            if n > COUNT_CAP:
                return None
            t = self.next_slot(t)
        return n

    def upcoming(self, now: datetime, n: int) -> list[datetime]:
        """The start times (slot + jitter) of the next ``n`` runs after ``now``, local time."""
        times: list[datetime] = []
        t: datetime | None = now.astimezone(UTC) - self.offset
        while len(times) < n:
            t = self.next_slot(t)
            if t is None:
                break
            times.append((t + self.offset).astimezone(self.tz))
        return times


@attrs.frozen(kw_only=True)
class Missed:
    """Slots not run because the scheduler was down (or stalled) and ``catchup`` said so."""

    first: datetime
    last: datetime
    count: int | None  # None: more than COUNT_CAP


@attrs.frozen(kw_only=True)
class Decision:
    """What to do at ``now``: fire these slots, drop those, and where to look next."""

    fire: tuple[datetime, ...] = ()  # oldest first; catch-up slots, then the on-time one
    on_time: datetime | None = None  # the slot among ``fire`` that is due right now
    missed: Missed | None = None
    handled_until: datetime
    next_slot: datetime | None


def decide(table: Timetable, handled_until: datetime, now: datetime) -> Decision:
    """Which slots in ``(handled_until, now - offset]`` fire now, following ``catchup``.

    The latest due slot fires if it is at most :data:`ON_TIME` late. Older slots were
    missed: ``none`` drops them, ``latest`` runs the most recent one unless an on-time
    slot fires anyway, ``all`` runs up to ``max_catchup`` of the most recent ones.
    Work is bounded by ``max_catchup``, not by the length of the downtime.
    """
    spec = table.spec
    until = now.astimezone(UTC) - table.offset
    keep = spec.max_catchup + 1 if spec.catchup == "all" else 2
    due = table.latest(handled_until, until, keep)
    if not due:
        return Decision(handled_until=handled_until, next_slot=table.next_slot(max(handled_until, until)))

    on_time = due[-1] if until - due[-1] <= ON_TIME else None
    missed = due[:-1] if on_time is not None else due
    if spec.catchup == "none":
        run: list[datetime] = []
    elif spec.catchup == "latest":
        run = missed[-1:] if on_time is None else []
    else:
        run = missed[-spec.max_catchup :] if spec.max_catchup else []

    fire = (*run, on_time) if on_time is not None else tuple(run)
    # every slot before the first one fired was dropped (some may precede ``due``)
    last_dropped = table.latest(handled_until, fire[0] - _US, 1) if fire else due[-1:]
    dropped = None
    if last_dropped:
        first = table.next_slot(handled_until)
        assert first is not None
        count = table.count(handled_until, last_dropped[0])
        dropped = Missed(first=first, last=last_dropped[0], count=count)

    return Decision(
        fire=fire,
        on_time=on_time,
        missed=dropped,
        handled_until=due[-1],
        next_slot=table.next_slot(due[-1]),
    )
