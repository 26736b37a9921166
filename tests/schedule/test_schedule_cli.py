"""``toolkit schedule --next`` and ``--crontab``: exact output; validation errors."""

from __future__ import annotations

import sys

import pytest

from toolkit.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(["schedule", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_next_in_the_recipes_timezone(write_recipe, capsys):
    r = write_recipe("nightly", 'cron = "@daily"\ntimezone = "Europe/Berlin"')
    code, out, _ = run_cli(capsys, str(r), "--next", "3", "--now", "2026-11-25T12:00:00Z")
    assert code == 0
    assert out == ["2026-11-26T00:00:00+01:00", "2026-11-27T00:00:00+01:00", "2026-11-28T00:00:00+01:00"]


def test_next_across_the_spring_gap_and_the_autumn_repeat(write_recipe, capsys):
    r = write_recipe("at0230", 'cron = "30 2 * * *"\ntimezone = "Europe/Berlin"')
    _, out, _ = run_cli(capsys, str(r), "--next", "3", "--now", "2026-03-28T12:00:00+01:00")
    assert out == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]
    _, out, _ = run_cli(capsys, str(r), "--next", "2", "--now", "2026-10-24T12:00:00")  # naive: UTC
    assert out == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_next_with_every_and_jitter_and_several_recipes(write_recipe, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_recipe("quarter", 'every = "15m"')
    write_recipe("spread", 'every = "1h"\njitter = "10m"')
    code, out, _ = run_cli(
        capsys, "quarter.toml", "spread.toml", "--next", "2", "--now", "2026-11-25T20:07:00Z"
    )
    assert code == 0
    # "spread" starts a fixed 5m38.891s (of its 10m jitter, derived from its name) after each hour;
    # at 20:07 the 20:05:38.891 start has passed
    assert out == [
        "==> quarter.toml <==",
        "2026-11-25T20:15:00+00:00",
        "2026-11-25T20:30:00+00:00",
        "",
        "==> spread.toml <==",
        "2026-11-25T21:05:38.891+00:00",
        "2026-11-25T22:05:38.891+00:00",
    ]


def test_next_zero_prints_nothing(write_recipe, capsys):
    r = write_recipe("x", 'every = "1s"')
    assert run_cli(capsys, str(r), "--next", "0")[:2] == (0, [])


def test_now_needs_next(write_recipe, capsys):
    r = write_recipe("x", 'every = "1s"')
    code, _, err = run_cli(capsys, str(r), "--now", "2026-01-01T00:00:00")
    assert code == 2
    assert "toolkit: error: --now only applies to --next" in err
    code, _, err = run_cli(capsys, str(r), "--next", "1", "--now", "yesterday")
    assert code == 2 and "--now: 'yesterday' is not an ISO 8601 time" in err


def test_crontab_lines(write_recipe, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    berlin = write_recipe("nightly", 'cron = "@daily"\ntimezone = "Europe/Berlin"')
    quarter = write_recipe("quarter", 'every = "15m"', folder=tmp_path / "my recipes")
    two_hours = write_recipe("twohours", 'every = "2h"\njitter = "1m"')
    code, out, err = run_cli(capsys, "--crontab", str(berlin), str(quarter), str(two_hours))
    assert code == 0, err
    py, cwd = sys.executable, str(tmp_path)
    assert out == [
        f"# nightly: cron '@daily' (Europe/Berlin) from {berlin}",
        "CRON_TZ=Europe/Berlin",
        f"0 0 * * * cd {cwd} && {py} -m toolkit run {berlin}",
        f"# quarter: every 15m from {quarter}",
        "CRON_TZ=UTC",
        f"*/15 * * * * cd {cwd} && {py} -m toolkit run '{quarter}'",
        f"# twohours: every 2h from {two_hours}",
        "# note: cron does not apply jitter = '1m'",
        f"0 */2 * * * cd {cwd} && {py} -m toolkit run {two_hours}",
    ]


def test_crontab_in_utc_needs_no_cron_tz(write_recipe, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = write_recipe("half", 'cron = "*/30 * * * *"')
    code, out, _ = run_cli(capsys, "--crontab", "half.toml", "-p", "my_plugin")
    assert code == 0
    assert out == [
        f"# half: cron '*/30 * * * *' (UTC) from {r}",
        f"*/30 * * * * cd {tmp_path} && {sys.executable} -m toolkit run -p my_plugin {r}",
    ]


def test_crontab_cannot_say_every_seven_minutes(write_recipe, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = write_recipe("odd", 'every = "7m"')
    code, out, err = run_cli(capsys, "--crontab", "odd.toml")
    assert code == 2
    assert out == [
        f"# odd: every 7m from {r}",
        "# not expressible: cron fires at fixed minutes and hours, so every = '7m' has no crontab line;"
        " use toolkit schedule, or a systemd timer with OnUnitActiveSec=7m (see docs/schedule.md)",
    ]
    assert "toolkit: error: cron cannot express the schedule of odd.toml (see the comment above)" in err


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            'cron = "61 * * * *"',
            "toolkit: error: bad.toml:5: schedule.cron: '61 * * * *' is not a valid cron"
            " expression: Bad minute",
        ),
        ('every = "soon"', "toolkit: error: bad.toml:5: schedule.every: 'soon' is not a duration"),
        (
            'cron = "@daily"\ntimezone = "Mars/Olympus"',
            "toolkit: error: bad.toml:6: schedule.timezone: unknown timezone 'Mars/Olympus'",
        ),
    ],
)
def test_invalid_schedules_exit_2_with_one_message(
    write_recipe, capsys, tmp_path, monkeypatch, schedule, message
):
    monkeypatch.chdir(tmp_path)
    write_recipe("bad", schedule)
    for extra in (["--next", "1"], ["--crontab"], ["--state", str(tmp_path / "st")]):
        code, out, err = run_cli(capsys, "bad.toml", *extra)
        assert code == 2 and out == []
        assert message in err
        assert "Traceback" not in err
    assert not (tmp_path / "st").exists()  # nothing started


def test_missing_file_and_missing_table(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "nope.toml", "--next", "1")
    assert code == 2 and "toolkit: error: no such recipe file: nope.toml" in err
    (tmp_path / "plain.toml").write_text('[recipe]\nname = "plain"\n\n[[task]]\nname = "t"\nuses = "x.y"\n')
    code, _, err = run_cli(capsys, "plain.toml", "--next", "1")
    assert code == 2 and "toolkit: error: plain.toml: schedule: the recipe has no [schedule] table" in err


def test_two_recipes_of_one_name(write_recipe, tmp_path, capsys):
    a = write_recipe("same", 'every = "1m"', folder=tmp_path / "a")
    b = write_recipe("same", 'every = "2m"', folder=tmp_path / "b")
    code, _, err = run_cli(capsys, str(a), str(b), "--next", "1")
    assert code == 2 and "are both named 'same'" in err
