"""``toolkit schedule --set`` and how ``cron``/``every`` combine across includes."""

from __future__ import annotations

import signal

import pytest
from daemon_helpers import Daemon, wait_for

from toolkit.cli import main
from toolkit.recipe import read_recipe
from toolkit.recipe.loader import RecipeErrors

BASE_CRON = '[schedule]\ncron = "0 3 * * *"\ntimezone = "Europe/Berlin"\njitter = "1s"\n'
BASE_EVERY = '[schedule]\nevery = "15m"\ncatchup = "none"\n'
TASK = '[[task]]\nname = "t"\nuses = "shell"\nparams = { cmd = "echo ${vars.n}" }\n'


def recipe(tmp_path, base, schedule):
    (tmp_path / "base.toml").write_text(base)
    path = tmp_path / "r.toml"
    path.write_text(f'[recipe]\nname = "r"\ninclude = ["base.toml"]\n[vars]\nn = 1\n{schedule}\n{TASK}')
    return path


@pytest.mark.parametrize(
    ("base", "schedule", "expected"),
    [
        (BASE_CRON, '[schedule]\nevery = "5m"', {"every": 300.0, "cron": None, "timezone": "Europe/Berlin"}),
        (BASE_EVERY, '[schedule]\ncron = "@daily"', {"cron": "@daily", "every": None, "catchup": "none"}),
        (BASE_CRON, '[schedule]\ntimezone = "UTC"', {"cron": "0 3 * * *", "timezone": "UTC", "jitter": 1.0}),
    ],
    ids=["cron-to-every", "every-to-cron", "same-choice"],
)
def test_the_including_file_chooses_between_cron_and_every(tmp_path, base, schedule, expected):
    spec = read_recipe(recipe(tmp_path, base, schedule)).schedule
    for key, value in expected.items():
        assert getattr(spec, key) == value, key


def test_both_in_one_file_is_still_an_error(tmp_path):
    path = recipe(tmp_path, BASE_EVERY, '[schedule]\ncron = "@daily"\nevery = "1m"')
    with pytest.raises(RecipeErrors, match="give either cron or every, not both"):
        read_recipe(path)


def test_set_switches_between_cron_and_every_too(tmp_path):
    path = recipe(tmp_path, BASE_CRON, "")
    spec = read_recipe(path, overrides=["schedule.every=10m"]).schedule
    assert (spec.every, spec.cron) == (600.0, None)
    spec = read_recipe(path, overrides=["schedule.every=10m", "schedule.cron=@hourly"]).schedule
    assert (spec.every, spec.cron) == (None, "@hourly")


def test_schedule_set_applies_to_next_and_crontab(tmp_path, capsys):
    path = recipe(tmp_path, BASE_CRON, "")
    assert (
        main(
            [
                "schedule",
                str(path),
                "--next",
                "1",
                "--now",
                "2026-01-01T00:00:00Z",
                "--set",
                'schedule.cron="30 6 * * *"',
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("2026-01-01T06:30:00")  # (plus the jitter)
    assert main(["schedule", str(path), "--crontab", "--set", "vars.n=it's 7"]) == 0
    out = capsys.readouterr().out
    assert f"-m toolkit run {path} --set 'vars.n=it'\"'\"'s 7'" in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("vars.m=5", "--set vars.m=5: sets vars.m, which the recipe neither defines nor uses"),
        ("schedule.every=soon", "schedule.every: 'soon' is not a duration"),
        ("nothing", "--set nothing: expected PATH=VALUE"),
    ],
)
def test_a_bad_schedule_set_is_one_error(tmp_path, capsys, override, message):
    path = recipe(tmp_path, BASE_CRON, "")
    assert main(["schedule", str(path), "--next", "1", "--set", override]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_the_daemons_runs_get_the_overrides(tmp_path):
    # a real daemon firing the real `toolkit run` every second
    (tmp_path / "base.toml").write_text('[schedule]\ncron = "0 3 * * *"\n')
    path = tmp_path / "r.toml"
    path.write_text(
        '[recipe]\nname = "r"\ninclude = ["base.toml"]\n[vars]\nn = 1\n'
        '[[task]]\nname = "t"\nuses = "shell"\n'
        "params = { cmd = \"sh -c 'echo $0 >> fired.txt' ${vars.n}\" }\n"
    )
    daemon = Daemon(tmp_path, [path], "--set", "vars.n=7", "--set", 'schedule.every="1s"')
    try:
        fired = tmp_path / "fired.txt"
        wait_for(lambda: fired.exists() and fired.read_text().strip(), 30, "a run of the recipe")
        assert fired.read_text().split() == ["7"] * len(fired.read_text().split())
        assert daemon.stop(signal.SIGTERM) == 0
    finally:
        daemon.cleanup()
