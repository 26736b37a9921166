"""The [schedule] table: validation messages, durations, round trips."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit.errors import RecipeErrors
from toolkit.schedule.spec import ScheduleSpec, format_duration, parse_duration


def problems(table) -> list[str]:
    with pytest.raises(RecipeErrors) as info:
        ScheduleSpec.from_table(table, path="r.toml")
    return [e.message for e in info.value.errors]


def test_defaults():
    spec = ScheduleSpec.from_table({"cron": "*/30 * * * *"}, path="r.toml")
    assert spec == ScheduleSpec(cron="*/30 * * * *")
    assert (spec.every, spec.timezone, spec.catchup, spec.max_catchup, spec.overlap, spec.jitter) == (
        None,
        "UTC",
        "latest",
        10,
        "skip",
        0.0,
    )


def test_every_and_all_keys():
    spec = ScheduleSpec.from_table(
        {
            "every": "15m",
            "timezone": "Europe/Berlin",
            "catchup": "all",
            "max_catchup": 3,
            "overlap": "queue",
            "jitter": "250ms",
        },
        path="r.toml",
    )
    assert spec.every == 900.0 and spec.jitter == 0.25 and spec.max_catchup == 3
    assert spec.overlap == "queue" and spec.catchup == "all" and spec.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            {"cron": "61 * * * *"},
            "r.toml: schedule.cron: '61 * * * *' is not a valid cron expression: Bad minute",
        ),
        (
            {"cron": "* * * * MON-XYZ"},
            "r.toml: schedule.cron: '* * * * MON-XYZ' is not a valid cron expression",
        ),
        ({"cron": "* * *"}, "r.toml: schedule.cron: '* * *' has 3 fields; a cron expression has five"),
        ({"cron": "0 * * * * *"}, "has 6 fields"),
        ({"cron": "@dayly"}, "r.toml: schedule.cron: unknown alias '@dayly' (did you mean @daily?)"),
        ({"cron": "@reboot"}, "@reboot is not supported"),
        ({"cron": 5}, "r.toml: schedule.cron: must be a string"),
        ({"every": "7 minutes"}, "r.toml: schedule.every: '7 minutes' is not a duration"),
        ({"every": 0}, "r.toml: schedule.every: must be longer than 0s"),
        ({"every": -3}, "r.toml: schedule.every: must be a duration >= 0"),
        ({"every": True}, "r.toml: schedule.every: must be a duration"),
        (
            {"cron": "@daily", "timezone": "Europe/Berln"},
            "unknown timezone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
        ),
        ({"cron": "@daily", "timezone": "../etc/passwd"}, "r.toml: schedule.timezone: unknown timezone"),
        (
            {"cron": "@daily", "catchup": "lates"},
            "must be one of none | latest | all, got 'lates' (did you mean 'latest'?)",
        ),
        ({"cron": "@daily", "overlap": "parallel"}, "r.toml: schedule.overlap: must be one of skip | queue"),
        (
            {"cron": "@daily", "max_catchup": -1},
            "r.toml: schedule.max_catchup: must be an integer >= 0, got -1",
        ),
        ({"cron": "@daily", "max_catchup": True}, "schedule.max_catchup: must be an integer >= 0, got True"),
        ({"cron": "@daily", "jitter": "soon"}, "r.toml: schedule.jitter: 'soon' is not a duration"),
        ({"cron": "@daily", "every": "1h"}, "r.toml: schedule: give either cron or every, not both"),
        ({}, "r.toml: schedule: needs cron (a cron expression such as '0 3 * * *') or every"),
        (
            {"cron": "@daily", "tiemzone": "UTC"},
            "r.toml: schedule.tiemzone: unknown key; did you mean 'timezone'?",
        ),
        ({"cron": "@daily", "color": 1}, "r.toml: schedule.color: unknown key; known keys: cron, every"),
    ],
)
def test_one_problem(table, expected):
    (message,) = problems(table)
    assert expected in message


def test_all_problems_at_once():
    found = problems({"cron": "61 * * * *", "timezone": "Mars/Base", "catchup": "x", "max_catchp": 3})
    assert [m.split(":")[1].strip() for m in found] == [
        "schedule.max_catchp",
        "schedule.cron",
        "schedule.timezone",
        "schedule.catchup",
    ]


def test_where_prefix():
    with pytest.raises(RecipeErrors) as info:
        ScheduleSpec.from_table({"every": "x"}, path="base.toml", where="recipe.schedule")
    assert info.value.errors[0].where == "recipe.schedule.every"


def test_not_a_table():
    assert problems("every day") == ["r.toml: schedule: must be a table, got str"]


def test_direct_construction_validates():
    with pytest.raises(ValueError, match="exactly one of cron and every"):
        ScheduleSpec()
    with pytest.raises(ValueError):
        ScheduleSpec(cron="bad")
    with pytest.raises(ValueError):
        ScheduleSpec(every=60, catchup="sometimes")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("90", 90),
        (" 1.5s ", 1.5),
        (12, 12),
        (0.5, 0.5),
        ("0s", 0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "m", "5x", "1h-3m", "inf", "nan", float("inf"), [], None, "-1s"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@given(st.floats(min_value=0.001, max_value=1e7, allow_nan=False))
def test_format_duration_round_trips(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


specs = st.builds(
    ScheduleSpec,
    cron=st.sampled_from(["*/30 * * * *", "@daily", "0 3 * * MON-FRI", "30 2 * * *"]),
    timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
    catchup=st.sampled_from(["none", "latest", "all"]),
    max_catchup=st.integers(0, 1000),
    overlap=st.sampled_from(["skip", "queue"]),
    jitter=st.floats(0, 86400, allow_nan=False),
) | st.builds(ScheduleSpec, every=st.floats(0.001, 1e6, allow_nan=False))


@given(specs)
def test_to_table_round_trips_through_toml(spec):
    import tomllib

    import tomli_w

    table = spec.to_table()
    assert None not in table.values()
    assert ScheduleSpec.from_table(tomllib.loads(tomli_w.dumps(table)), path=None) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec
