"""The state directory: one daemon per directory, atomic state files, the log."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from toolkit.schedule.state import RecipeState, Running, SchedulerBusy, StateDir


def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    first = StateDir(tmp_path / "st")
    first.lock()
    try:
        assert (tmp_path / "st" / "lock").read_text().strip() == str(os.getpid())
        with pytest.raises(SchedulerBusy, match=rf"another toolkit schedule \(pid {os.getpid()}\) is using"):
            StateDir(tmp_path / "st").lock()
    finally:
        first.unlock()
    again = StateDir(tmp_path / "st")
    again.lock()  # released on unlock (and by the kernel when a holder dies)
    again.unlock()


def test_state_round_trips_and_is_replaced_atomically(tmp_path):
    store = StateDir(tmp_path)
    store.lock()
    t = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    state = RecipeState(
        handled_until=t,
        last_firing=t,
        last_run_id="20260329-010000-1a2b",
        next_firing=t.replace(hour=2),
        queued=[t.replace(minute=30)],
        running=Running(run_id="20260329-010000-1a2b", pid=123, scheduled=t, started=t.replace(second=1)),
    )
    store.save("my/recipe", "/x/r.toml", state)
    file = store.recipe_file("my/recipe")
    assert file.name == "my_recipe.json"
    assert store.load("my/recipe") == state
    data = json.loads(file.read_text())
    assert data["handled_until"] == "2026-03-29T01:00:00.000000Z" and data["path"] == "/x/r.toml"
    assert [p.name for p in file.parent.iterdir()] == [file.name]  # no temporary file left
    assert store.load("other") is None
    file.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        store.load("my/recipe")
    store.unlock()


def test_log_appends_json_lines(tmp_path):
    store = StateDir(tmp_path)
    store.log({"event": "a"})
    store.log({"event": "b", "n": 1})
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines == [{"event": "a"}, {"event": "b", "n": 1}]
