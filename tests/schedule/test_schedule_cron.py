"""The cronsim adapter: aliases, steps across daylight-saving changes, backward walks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit.schedule.cron import ALIASES, CronError, CronExpression, expand

BERLIN = ZoneInfo("Europe/Berlin")


def walk(expr: str, start: datetime, n: int, tz=BERLIN) -> list[str]:
    cron, out, t = CronExpression.parse(expr), [], start
    for _ in range(n):
        t = cron.next_after(t, tz)
        assert t is not None and t.tzinfo is UTC
        out.append(t.astimezone(tz).isoformat())
    return out


@pytest.mark.parametrize(
    ("alias", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_aliases(alias, fields):
    assert expand(alias) == fields
    assert set(ALIASES) >= {alias.lower()}


def test_aliases_fire_like_their_fields():
    start = datetime(2026, 11, 25, 20, 30, tzinfo=UTC)
    assert walk("@weekly", start, 2, UTC) == ["2026-11-29T00:00:00+00:00", "2026-12-06T00:00:00+00:00"]
    assert walk("@monthly", start, 2, UTC) == ["2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"]
    assert walk("@yearly", start, 1, UTC) == ["2027-01-01T00:00:00+00:00"]
    assert walk("@hourly", start, 2, UTC) == ["2026-11-25T21:00:00+00:00", "2026-11-25T22:00:00+00:00"]


def test_expressions():
    start = datetime(2026, 11, 25, 20, 30, tzinfo=UTC)  # a Wednesday
    assert walk("*/20 * * * *", start, 3, UTC) == [
        "2026-11-25T20:40:00+00:00",
        "2026-11-25T21:00:00+00:00",
        "2026-11-25T21:20:00+00:00",
    ]
    assert walk("0 9 * * mon-fri", start, 3, UTC) == [
        "2026-11-26T09:00:00+00:00",
        "2026-11-27T09:00:00+00:00",
        "2026-11-30T09:00:00+00:00",
    ]
    # day-of-month and day-of-week both restricted: either matches (cron's OR rule)
    assert walk("0 0 1 * FRI", start, 3, UTC) == [
        "2026-11-27T00:00:00+00:00",
        "2026-12-01T00:00:00+00:00",
        "2026-12-04T00:00:00+00:00",
    ]
    # 7 is Sunday too; a timestamp exactly on a slot is not "after" it
    assert walk("0 0 * * 7", datetime(2026, 11, 29, tzinfo=UTC), 1, UTC) == ["2026-12-06T00:00:00+00:00"]


def test_spring_forward_gap_fires_once_right_after_it():
    # 2026-03-29: Berlin clocks jump from 02:00 to 03:00; 02:30 does not exist
    start = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    assert walk("30 2 * * *", start, 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]
    # an interval job just skips the hour that does not exist
    assert walk("*/30 * * * *", datetime(2026, 3, 29, 1, tzinfo=BERLIN), 3) == [
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
    ]


def test_fall_back_repeat_fires_a_fixed_time_job_once():
    # 2026-10-25: Berlin clocks go from 03:00 back to 02:00; 02:30 happens twice
    start = datetime(2026, 10, 24, 12, tzinfo=BERLIN)
    assert walk("30 2 * * *", start, 2) == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    # asked from inside the second pass of the hour, it does not answer the first one
    second_pass = datetime(2026, 10, 25, 2, 45, fold=1, tzinfo=BERLIN)
    assert walk("30 2 * * *", second_pass, 1) == ["2026-10-26T02:30:00+01:00"]
    between = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN)  # 02:30 (first pass) is over
    assert walk("30 2 * * *", between, 1) == ["2026-10-26T02:30:00+01:00"]


def test_fall_back_repeat_fires_an_interval_job_in_both_passes():
    start = datetime(2026, 10, 25, 1, 45, tzinfo=BERLIN)
    assert walk("*/30 * * * *", start, 5) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "'61 * * * *' is not a valid cron expression: Bad minute"),
        ("* 24 * * *", "Bad hour"),
        ("0 0 31 2 *", "Bad day-of-month"),
        ("0 0 * 13 *", "Bad month"),
        ("0 0 * * 8", "Bad day-of-week"),
        ("* * * *", "has 4 fields"),
        ("@every 5m", "unknown alias"),
    ],
)
def test_bad_expressions_say_why(expr, message):
    with pytest.raises(CronError, match=message.replace("*", r"\*")):
        CronExpression.parse(expr)


EXPRS = ["30 2 * * *", "*/30 * * * *", "0 2,3 * * *", "15 */4 * * 1-5", "0 0 1 * *", "*/7 1-3 * * *"]
ZONES = [BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe"), UTC]


@settings(max_examples=60, deadline=None)
@given(
    expr=st.sampled_from(EXPRS),
    tz=st.sampled_from(ZONES),
    start=st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1)),
    hours=st.integers(1, 24 * 40),
)
def test_backward_walk_matches_forward_walk(expr, tz, start, hours):
    cron = CronExpression.parse(expr)
    after = start.replace(tzinfo=UTC)
    until = after + timedelta(hours=hours)
    forward, t = [], cron.next_after(after, tz)
    while t is not None and t <= until:
        forward.append(t)
        t = cron.next_after(t, tz)
    assert cron.latest(until, tz, after=after, limit=10**6) == forward
    assert cron.latest(until, tz, after=after, limit=3) == forward[-3:]
