"""The daemon's decisions, in-process, on a fake clock and with fake runs (no processes, no sleeping)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from toolkit.schedule import children
from toolkit.schedule.daemon import Daemon
from toolkit.schedule.recipes import Scheduled
from toolkit.schedule.spec import ScheduleSpec
from toolkit.schedule.state import StateDir

T0 = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


@attrs.define
class FakeRun:
    pid: int
    slot: datetime
    run_id: str
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


class World:
    """A clock the test moves, and the runs the daemon 'started'."""

    def __init__(self, monkeypatch) -> None:
        self.now = T0
        self.runs: list[FakeRun] = []
        self.current: Daemon | None = None
        monkeypatch.setattr(children, "start_run", self.start_run)
        monkeypatch.setattr(children, "is_our_run", lambda pid, run_id: self.alive(pid))

    def start_run(self, recipe, *, slot, run_id, plugins=(), overrides=()) -> FakeRun:
        run = FakeRun(pid=1000 + len(self.runs), slot=slot, run_id=run_id)
        self.runs.append(run)
        return run

    def alive(self, pid: int) -> bool:
        return any(r.pid == pid and r.returncode is None for r in self.runs)

    def daemon(self, tmp_path, **schedule) -> Daemon:
        """A started daemon; the one before it, if any, "dies" (lets go of the lock)."""
        if self.current is not None:
            self.current.store.unlock()
        spec = ScheduleSpec(**schedule)
        recipe = Scheduled(name="job", path=tmp_path / "job.toml", given="job.toml", schedule=spec)
        d = Daemon([recipe], StateDir(tmp_path / "state"), out=io.StringIO(), clock=lambda: self.now)
        d.store.lock()
        d.start()
        self.current = d
        return d

    def at(self, d: Daemon, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)
        d.step()

    def slots(self) -> list[float]:
        return [(r.slot - T0).total_seconds() for r in self.runs]


@pytest.fixture
def world(monkeypatch):
    w = World(monkeypatch)
    yield w
    if w.current is not None:
        w.current.store.unlock()


def events(d: Daemon, kind: str) -> list[dict]:
    import json

    lines = (d.store.path / "log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def test_skip_drops_slots_while_a_run_goes_on(world, tmp_path):
    d = world.daemon(tmp_path, every="1s", overlap="skip")
    world.at(d, 0.5)
    assert world.runs == []  # started at T0 (no state): the T0 slot is not "missed", it is before us
    world.at(d, 1.0)
    world.at(d, 2.0)
    world.at(d, 3.0)
    assert world.slots() == [1.0]
    assert [e["scheduled"][17:19] for e in events(d, "skipped")] == ["02", "03"]
    world.runs[0].returncode = 0
    world.at(d, 3.5)  # the end is seen; the next run waits for its slot
    world.at(d, 4.0)
    assert world.slots() == [1.0, 4.0]
    (finished,) = events(d, "finished")
    assert finished["exit_code"] == 0 and finished["run_id"] == world.runs[0].run_id


def test_queue_runs_every_slot_back_to_back_up_to_its_bound(world, tmp_path):
    d = world.daemon(tmp_path, every="1s", overlap="queue", max_catchup=2)
    for t in (1, 2, 3, 4, 5):
        world.at(d, t)
    assert world.slots() == [1.0]
    assert len(events(d, "queued")) == 2  # slots 2 and 3 wait; 4 and 5 find the queue full
    assert [e["reason"] for e in events(d, "skipped")] == ["2 firing(s) already wait (the queue is full)"] * 2
    world.runs[0].returncode = 1
    world.at(d, 5.1)
    assert world.slots() == [1.0, 2.0]  # straight away, not at the next slot
    world.runs[1].returncode = 0
    world.at(d, 5.2)
    assert world.slots() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("catchup", "expected"),
    [("none", []), ("latest", [3600 * 4]), ("all", [3600 * 2, 3600 * 3, 3600 * 4])],
)
def test_restart_applies_catchup_and_runs_the_backlog_one_by_one(world, tmp_path, catchup, expected):
    d = world.daemon(tmp_path, cron="0 * * * *", catchup=catchup, max_catchup=3)
    world.at(d, 3600)
    assert world.slots() == [3600.0]
    world.runs[0].returncode = 0
    world.at(d, 3601)
    # the scheduler is down from 01:00:01 to 04:30; then a new one starts on the same state
    world.now = T0 + timedelta(hours=4, minutes=30)
    again = world.daemon(tmp_path, cron="0 * * * *", catchup=catchup, max_catchup=3)
    again.step()
    started = [3600.0]
    for slot in expected:
        started.append(float(slot))
        assert world.slots() == started  # one at a time
        world.runs[-1].returncode = 0
        again.step()
    assert world.slots() == started
    missed = events(again, "missed")
    if catchup == "all":
        assert missed == []
    else:
        assert missed[0]["count"] == 3 - len(expected)
        assert missed[0]["first"].startswith("2026-11-25T22:00")


def test_restart_adopts_a_run_that_still_goes_on(world, tmp_path):
    d = world.daemon(tmp_path, every="10s", overlap="skip")
    world.at(d, 10)
    assert world.slots() == [10.0]
    # the scheduler dies; its run goes on; a new scheduler starts 5 s later
    world.now = T0 + timedelta(seconds=15)
    again = world.daemon(tmp_path, every="10s", overlap="skip")
    assert events(again, "adopted")[0]["run_id"] == world.runs[0].run_id
    world.at(again, 20)
    assert world.slots() == [10.0] and len(events(again, "skipped")) == 1
    world.runs[0].returncode = 0  # it ends: the new scheduler cannot know its exit code
    world.at(again, 21)
    (finished,) = events(again, "finished")
    assert finished["exit_code"] is None
    world.at(again, 30)
    assert world.slots() == [10.0, 30.0]


def test_a_run_that_ended_while_the_scheduler_was_down(world, tmp_path):
    d = world.daemon(tmp_path, every="10s")
    world.at(d, 10)
    world.runs[0].returncode = 0
    world.now = T0 + timedelta(seconds=12)
    again = world.daemon(tmp_path, every="10s")
    (finished,) = events(again, "finished")
    assert finished["exit_code"] is None and finished["ended"] is None
    assert again.jobs[0].state.running is None


def test_stopping_starts_nothing_new(world, tmp_path):
    d = world.daemon(tmp_path, every="1s", overlap="queue")
    world.at(d, 1)
    world.at(d, 2)
    d.stop_requests = 1
    world.runs[0].returncode = 0
    world.at(d, 3)
    assert world.slots() == [1.0]
    assert [(t - T0).total_seconds() for t in d.jobs[0].state.queued] == [2.0, 3.0]  # kept for the restart
