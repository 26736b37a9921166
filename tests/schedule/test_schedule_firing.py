"""Which slots fire when, with the clock passed in: catch-up, restarts, DST days, jitter."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from toolkit.schedule.firing import ON_TIME, Missed, Timetable, decide, jitter_offset
from toolkit.schedule.spec import ScheduleSpec
from toolkit.schedule.state import RecipeState

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hourly(**kw) -> Timetable:
    return Timetable(ScheduleSpec(cron="0 * * * *", **kw), "pi")


# -- catch-up after a downtime: fired 08:00, down until 11:30 (09, 10, 11 missed) -------
DOWN = dict(handled_until=utc(2026, 11, 25, 8), now=utc(2026, 11, 25, 11, 30))


@pytest.mark.parametrize(
    ("catchup", "max_catchup", "fire", "missed"),
    [
        ("none", 10, [], (9, 11, 3)),
        ("latest", 10, [11], (9, 10, 2)),
        ("all", 10, [9, 10, 11], None),
        ("all", 2, [10, 11], (9, 9, 1)),
        ("all", 0, [], (9, 11, 3)),
    ],
)
def test_catchup_after_downtime(catchup, max_catchup, fire, missed):
    d = decide(hourly(catchup=catchup, max_catchup=max_catchup), DOWN["handled_until"], DOWN["now"])
    assert d.fire == tuple(utc(2026, 11, 25, h) for h in fire)
    assert d.on_time is None
    if missed is None:
        assert d.missed is None
    else:
        first, last, count = missed
        assert d.missed == Missed(first=utc(2026, 11, 25, first), last=utc(2026, 11, 25, last), count=count)
    assert d.handled_until == utc(2026, 11, 25, 11)
    assert d.next_slot == utc(2026, 11, 25, 12)


@pytest.mark.parametrize(
    ("catchup", "fire", "missed"),
    [
        ("none", [11], (9, 10, 2)),
        ("latest", [11], (9, 10, 2)),  # the on-time run is the latest: nothing to add
        ("all", [9, 10, 11], None),
    ],
)
def test_restart_just_after_a_slot_fires_it_on_time(catchup, fire, missed):
    now = utc(2026, 11, 25, 11) + ON_TIME - timedelta(seconds=1)
    d = decide(hourly(catchup=catchup), DOWN["handled_until"], now)
    assert d.fire == tuple(utc(2026, 11, 25, h) for h in fire)
    assert d.on_time == utc(2026, 11, 25, 11)
    if missed:
        assert (d.missed.first.hour, d.missed.last.hour, d.missed.count) == missed
    else:
        assert d.missed is None


def test_catchup_is_bounded_by_max_catchup_not_by_the_downtime():
    spec = ScheduleSpec(every="1s", catchup="all", max_catchup=5)
    table = Timetable(spec, "pi")
    now = utc(2026, 11, 25, 12)
    t0 = time.perf_counter()
    d = decide(table, now - timedelta(days=365), now + timedelta(milliseconds=500))
    # a hang guard: firing by firing, a year of seconds takes minutes
    assert time.perf_counter() - t0 < 20
    assert len(d.fire) == 6  # five missed ones and the one due now
    assert d.fire[-1] == d.on_time == now
    assert d.missed.count is None  # "more than COUNT_CAP"
    assert d.missed.first == now - timedelta(days=365) + timedelta(seconds=1)

    cron = Timetable(ScheduleSpec(cron="* * * * *", catchup="latest"), "pi")
    t0 = time.perf_counter()
    d = decide(cron, now - timedelta(days=365), now + timedelta(minutes=5))
    assert time.perf_counter() - t0 < 2
    assert d.fire == (now + timedelta(minutes=5),)


def test_nothing_due():
    d = decide(hourly(), utc(2026, 11, 25, 8), utc(2026, 11, 25, 8, 59, 59))
    assert d.fire == () and d.missed is None
    assert d.handled_until == utc(2026, 11, 25, 8)
    assert d.next_slot == utc(2026, 11, 25, 9)


def test_restart_from_state_does_not_repeat_a_firing():
    table = hourly(catchup="all")
    d = decide(table, utc(2026, 11, 25, 8), utc(2026, 11, 25, 9, 0, 1))
    assert d.fire == (utc(2026, 11, 25, 9),)
    # the daemon saves its state, dies, and comes back 10 s later
    saved = RecipeState(handled_until=d.handled_until, last_firing=d.fire[0]).to_json("pi", "pi.toml")
    restored = RecipeState.from_json(saved)
    again = decide(table, restored.handled_until, utc(2026, 11, 25, 9, 0, 11))
    assert again.fire == () and again.missed is None
    assert again.next_slot == utc(2026, 11, 25, 10)


def simulate(
    table: Timetable, start: datetime, end: datetime, step: timedelta, restart_at=None
) -> list[datetime]:
    """Run decide() as the daemon would, on a fake clock; "restart" through saved state."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)  # aware arithmetic in Berlin is wall time
    handled = start - table.offset
    fired: list[datetime] = []
    now = start
    while now < end:
        if restart_at is not None and restart_at <= now:
            handled = RecipeState.from_json(
                RecipeState(handled_until=handled).to_json("x", "x")
            ).handled_until
            restart_at = None
        d = decide(table, handled, now)
        fired += d.fire
        handled = d.handled_until
        now += step
    return fired


@pytest.mark.parametrize("restart", [False, True])
def test_dst_days_in_berlin_fire_each_slot_once(restart):
    fixed = Timetable(ScheduleSpec(cron="30 2 * * *", timezone="Europe/Berlin"), "pi")
    for day in (datetime(2026, 3, 28, 12, tzinfo=BERLIN), datetime(2026, 10, 24, 12, tzinfo=BERLIN)):
        restart_at = day + timedelta(hours=14, minutes=45) if restart else None
        fired = simulate(fixed, day, day + timedelta(days=2), timedelta(seconds=37), restart_at)
        local = [t.astimezone(BERLIN).isoformat() for t in fired]
        if day.month == 3:
            assert local == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
        else:
            assert local == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]

    half_hourly = Timetable(ScheduleSpec(cron="*/30 * * * *", timezone="Europe/Berlin"), "pi")
    start = datetime(2026, 10, 25, 1, 50, tzinfo=BERLIN)
    fired = simulate(half_hourly, start, start + timedelta(hours=2), timedelta(seconds=11))
    assert [t.astimezone(BERLIN).isoformat() for t in fired] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ]


def test_every_fires_on_an_epoch_grid():
    table = Timetable(ScheduleSpec(every="15m", timezone="Asia/Kolkata"), "pi")
    times = table.upcoming(utc(2026, 11, 25, 20, 7, 3), 3)
    assert [t.isoformat() for t in times] == [
        "2026-11-26T01:45:00+05:30",
        "2026-11-26T02:00:00+05:30",
        "2026-11-26T02:15:00+05:30",
    ]
    fired = simulate(
        Timetable(ScheduleSpec(every="250ms"), "pi"),
        utc(2026, 1, 1),
        utc(2026, 1, 1, 0, 0, 2),
        timedelta(milliseconds=100),
    )
    # the clock reads 0.0 .. 1.9 s: slots 0.25 .. 1.75 s, each once
    assert fired == [utc(2026, 1, 1) + timedelta(milliseconds=250 * k) for k in range(1, 8)]


def test_jitter_is_deterministic_per_recipe():
    a = jitter_offset("nightly-report", 600)
    assert a == jitter_offset("nightly-report", 600)
    assert timedelta(0) <= a <= timedelta(seconds=600)
    assert a.microseconds % 1000 == 0
    offsets = {jitter_offset(f"recipe-{i}", 600) for i in range(20)}
    assert len(offsets) == 20  # spread out
    assert jitter_offset("nightly-report", 0) == timedelta(0)


def test_jitter_shifts_start_times_and_due_times():
    spec = ScheduleSpec(cron="0 0 * * *", jitter=3600)
    table = Timetable(spec, "nightly-report")
    offset = jitter_offset("nightly-report", 3600)
    assert offset > timedelta(0)
    midnight = utc(2026, 11, 26)
    assert table.upcoming(utc(2026, 11, 25, 12), 1) == [midnight + offset]
    assert decide(table, utc(2026, 11, 25), midnight + offset - timedelta(milliseconds=1)).fire == ()
    d = decide(table, utc(2026, 11, 25), midnight + offset)
    assert d.fire == (midnight,) and d.on_time == midnight  # slots stay nominal; starts are shifted


def test_a_schedule_that_ends():
    table = Timetable(ScheduleSpec(cron="0 0 29 2 *"), "leap")
    assert table.next_slot(utc(2026, 3, 1)) == utc(2028, 2, 29)
