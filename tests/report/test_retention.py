"""Retention: [output] keep = N and `toolkit runs --prune`; never a running run or
`latest`. And what `toolkit schedule` does after each firing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from report_helpers import OK, project, run_cli, run_dirs, start_cli, started_run, wait_for

from toolkit.report import read_data


def ok_recipe(tmp_path, extra=""):
    return project(tmp_path, "fine", OK.format(extra=extra))


def test_keep_deletes_older_runs_when_a_run_ends(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = ok_recipe(tmp_path, "[output]\nkeep = 2\n")
    seen = []
    for _ in range(4):
        assert run_cli("run", str(recipe), "-q", "--progress", "off") == 0
        seen.append(os.readlink(tmp_path / "runs" / "fine" / "latest"))
    left = [p.name for p in run_dirs(tmp_path / "runs", "fine")]
    assert left == seen[-2:]  # the two newest, in the order they ran
    assert (tmp_path / "runs" / "fine" / "latest").resolve().name == seen[-1]


def fake_run(base, run_id, started, status="succeeded", pid=None):
    path = base / run_id
    path.mkdir(parents=True)
    lines = [f'run_id = "{run_id}"', 'recipe = "fine"', f'status = "{status}"', f'started = "{started}"']
    if pid:
        import socket

        lines += [f'host = "{socket.gethostname()}"', f"pid = {pid}"]
    (path / "manifest.toml").write_text("\n".join(lines) + "\n")
    return path


def test_prune_spares_running_runs_and_latest(tmp_path, capsys):
    base = tmp_path / "runs" / "fine"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        old_running = fake_run(base, "a-running", "2026-01-01T00:00:00.000000Z", "running", pid=sleeper.pid)
        dead = fake_run(base, "b-dead", "2026-01-02T00:00:00.000000Z", "running", pid=2**22 + 7)
        pointed = fake_run(base, "c-latest", "2026-01-03T00:00:00.000000Z")
        older = fake_run(base, "d-old", "2026-01-04T00:00:00.000000Z", "failed")
        newest = fake_run(base, "e-new", "2026-01-05T00:00:00.000000Z")
        (base / "latest").symlink_to("c-latest")
        (base / "cache.db").write_text("not a run")
        assert run_cli("runs", "--output", str(tmp_path / "runs"), "--prune", "--keep", "1", "--dry-run") == 0
        out = capsys.readouterr().out
        assert "would delete" in out and all(p.exists() for p in (dead, older))
        assert run_cli("runs", "--output", str(tmp_path / "runs"), "--prune", "--keep", "1") == 0
        out = capsys.readouterr().out
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not dead.exists() and not older.exists()
    assert old_running.exists() and pointed.exists() and newest.exists()
    assert (base / "cache.db").exists()
    assert f"kept {old_running}: still running" in out and f"kept {pointed}: latest points to it" in out
    assert "deleted 2 run directories, kept 3" in out
    assert not [p for p in base.iterdir() if p.name.endswith(".deleting")]


def test_prune_without_keep_uses_each_recipes_keep(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = ok_recipe(tmp_path)
    for _ in range(3):
        assert run_cli("run", str(recipe), "-q", "--progress", "off") == 0
    capsys.readouterr()
    assert run_cli("runs", "--prune") == 0
    assert "fine: keeps every run" in capsys.readouterr().out
    assert len(run_dirs(tmp_path / "runs", "fine")) == 3
    recipe = ok_recipe(tmp_path, "[output]\nkeep = 5\n")
    assert run_cli("run", str(recipe), "-q", "--progress", "off") == 0  # 4 runs: none deleted
    assert run_cli("runs", "--prune", "--recipe", "fine") == 0
    assert len(run_dirs(tmp_path / "runs", "fine")) == 4
    assert run_cli("runs", "--prune", "--keep", "0") == 2
    assert "--keep must be at least 1" in capsys.readouterr().err
    assert run_cli("runs", "--keep", "2") == 2


def test_prune_spares_a_real_running_run_and_a_run_being_resumed(tmp_path, monkeypatch, capsys):
    """Not a fake manifest: a `toolkit run` that is going, older than the runs kept."""
    from toolkit.store.lock import RunLock

    monkeypatch.chdir(tmp_path)
    gate = tmp_path / "gate"
    recipe = project(
        tmp_path,
        "gated",
        f"""
        [recipe]
        name = "gated"
        plugins = ["tasks.py"]
        [run]
        workers = 1
        [[task]]
        name = "s"
        uses = "rt.slow"
        params = {{ gate = "{gate}", seconds = 0 }}
        matrix = {{ i = [1, 2] }}
        """,
    )
    base = tmp_path / "runs" / "gated"
    running = start_cli("run", str(recipe), "-q", "--progress", "off", cwd=tmp_path)
    try:
        going = started_run(tmp_path / "runs", "gated")
        wait_for(lambda: (going / "manifest.toml").is_file(), what="its manifest")
        no_gate = ("--set", "task.s.params.gate=")
        done = []
        for _ in range(3):
            assert run_cli("run", str(recipe), *no_gate, "-q", "--progress", "off") == 0
            done.append(os.readlink(base / "latest"))
        resumed = base / done[0]
        with RunLock(resumed):  # a --resume took the lock, has not written `running` yet
            assert run_cli("runs", "--prune", "--keep", "1") == 0
        out = capsys.readouterr().out
        assert going.is_dir() and f"kept runs/gated/{going.name}: still running" in out
        assert resumed.is_dir() and f"kept runs/gated/{resumed.name}: still running" in out
        assert not (base / done[1]).exists() and (base / done[2]).is_dir()
        gate.write_text("go")
        assert running.wait(60) == 0
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
            running.wait()
    assert going.is_dir() and (going / "report.html").is_file()


@pytest.mark.slow
def test_the_scheduler_reports_and_notifies_a_killed_run(tmp_path):
    """A scheduled run killed with SIGKILL cannot write its report or notify: the
    scheduler does both after that firing, and applies [output] keep."""
    note = tmp_path / "notified.txt"
    recipe = project(
        tmp_path,
        "gated",
        f"""
        [recipe]
        name = "gated"
        plugins = ["tasks.py"]
        [run]
        workers = 1
        [output]
        keep = 1
        [notify]
        on = ["failure"]
        command = "echo $TOOLKIT_RUN_STATUS >> {note}"
        [schedule]
        every = "1h"
        catchup = "latest"
        [[task]]
        name = "s"
        uses = "rt.slow"
        params = {{ gate = "{tmp_path / "never"}", seconds = 0 }}
        matrix = {{ i = [1, 2] }}
        """,
    )
    state = tmp_path / "state"
    (state / "recipes").mkdir(parents=True)
    # a state that says the last hour's slot is due now
    from datetime import UTC, datetime, timedelta

    from toolkit.schedule.state import RecipeState, StateDir

    StateDir(state).save(
        "gated", str(recipe), RecipeState(handled_until=datetime.now(UTC) - timedelta(hours=2))
    )
    daemon = subprocess.Popen(
        # with --set: the scheduler's after-firing step reads the recipe as its runs do
        [
            sys.executable,
            "-m",
            "toolkit",
            "schedule",
            "--state",
            str(state),
            "--set",
            "output.dir=sched",
            str(recipe),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = state / "log.jsonl"

    def events(kind):
        if not log.exists():
            return []
        return [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == kind]

    try:
        (started,) = wait_for(lambda: events("started"), what="a firing")
        run = tmp_path / "sched" / "gated" / started["run_id"]
        wait_for(lambda: (run / "manifest.toml").exists(), what="the run directory")
        time.sleep(0.3)
        os.killpg(started["pid"], signal.SIGKILL)
        wait_for(lambda: events("after_run"), what="the scheduler's after-run")
        wait_for(lambda: note.exists(), what="the notification")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    data = read_data(run / "report.html")
    assert data["summary"]["status"] == "dead"
    assert note.read_text().split() == ["dead"]
    lines = [e["message"] for e in events("after_run")]
    assert any("was killed: wrote its report.html" in line for line in lines)
