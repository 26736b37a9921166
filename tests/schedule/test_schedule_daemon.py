"""The daemon as a real process: overlap, queueing, SIGTERM, crash and restart, edits, the lock.

The acceptance tests fire the real ``toolkit run`` on a recipe whose task sleeps 2.5 s
with ``every = "1s"``. The tests of the daemon's own mechanics (a crash and restart,
a run that ignores SIGTERM, edited recipes) use a stand-in run command that records
what it does, which is quicker and can misbehave on purpose.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from daemon_helpers import Daemon, alive, read_jsonl, session_members, wait_for

pytestmark = pytest.mark.slow

TASKS = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path

    import toolkit

    @toolkit.hookimpl
    def toolkit_register_tasks(registry):
        registry.add(nap, name="sleepy.nap")

    def nap(seconds: float) -> dict:
        log = Path(__file__).with_name("naps.jsonl")
        def note(event):
            line = dict(event=event, t=time.time(), pid=os.getpid(), sid=os.getsid(0),
                        run_id=os.environ.get("TOOLKIT_RUN_ID"), scheduled=os.environ.get("TOOLKIT_SCHEDULED_FOR"))
            with open(log, "a") as f:
                f.write(json.dumps(line) + "\\n")
        note("start")
        time.sleep(seconds)
        note("end")
        return {"slept": seconds}
    """
)


@pytest.fixture
def sleepy(tmp_path):
    """``sleepy(overlap=..., **schedule) -> Path``: a recipe whose one task sleeps 2.5 s."""

    def make(**schedule) -> Path:
        (tmp_path / "sleepy_tasks.py").write_text(TASKS)
        table = {"every": "1s", "catchup": "none", **schedule}
        lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in table.items())
        recipe = tmp_path / "sleepy.toml"
        recipe.write_text(
            '[recipe]\nname = "sleepy"\nplugins = ["sleepy_tasks.py"]\n\n'
            '[run]\nexecutor = "process"\n\n[output]\ndir = "runs"\n\n'
            f"[schedule]\n{lines}\n\n"
            '[[task]]\nname = "nap"\nuses = "sleepy.nap"\nparams = { seconds = 2.5 }\n'
        )
        return recipe

    return make


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(*args, **kwargs) -> Daemon:
        d = Daemon(*args, **kwargs)
        started.append(d)
        return d

    yield start
    for d in started:
        d.cleanup()


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def spans(events: list[dict]) -> list[tuple[float, float]]:
    """(start, end) of each run from the daemon's log, in order of start."""
    ends = {e["run_id"]: ts(e["ended"]) for e in events if e["event"] == "finished"}
    return [
        (ts(e["started"]), ends[e["run_id"]])
        for e in events
        if e["event"] == "started" and e["run_id"] in ends
    ]


def nap_spans(folder: Path) -> list[tuple[float, float]]:
    """(start, end) of each task, as the task itself recorded them."""
    starts = {}
    out = []
    for line in read_jsonl(folder / "naps.jsonl"):
        if line["event"] == "start":
            starts[line["run_id"]] = line["t"]
        elif line["run_id"] in starts:
            out.append((starts[line["run_id"]], line["t"]))
    return sorted(out)


def assert_nothing_left(d: Daemon) -> None:
    """Judge by the OS: every run process and everything in its session is gone."""
    pids = [e["pid"] for e in d.events("started")]
    assert pids
    for pid in pids:
        wait_for(
            lambda pid=pid: not alive(pid) and not session_members(pid),
            5,
            f"run {pid} and its session to end",
        )


# -- acceptance: the real `toolkit run` -------------------------------------------------
def test_overlap_skip_never_overlaps_and_sigterm_leaves_nothing(sleepy, daemons, tmp_path):
    d = daemons(tmp_path, [sleepy(overlap="skip")], "--grace", "0.5")
    d.wait_events("finished", 2, timeout=15)
    d.wait_events("started", 3, timeout=5)  # a third run is going: SIGTERM must stop it
    assert d.stop() == 0

    events = d.events()
    finished = [e for e in events if e["event"] == "finished"]
    assert [e["exit_code"] for e in finished[:2]] == [0, 0], d.output()
    assert len([e for e in events if e["event"] == "skipped"]) >= 2
    for runs in (spans(events), nap_spans(tmp_path)):
        assert len(runs) >= 2
        for (_, end), (start, _) in itertools.pairwise(runs):
            assert start >= end  # no overlap
    # each run got its own slot and its run id, and the run store named the run after it
    started = [e for e in events if e["event"] == "started"]
    assert len({e["scheduled"] for e in started}) == len(started)
    naps = {n["run_id"]: n for n in read_jsonl(tmp_path / "naps.jsonl") if n["event"] == "start"}
    for e in started[:2]:
        assert naps[e["run_id"]]["scheduled"] == e["scheduled"]
        assert (tmp_path / "runs" / "sleepy" / e["run_id"]).is_dir()
    assert_nothing_left(d)
    assert "stopping on SIGTERM" in d.output()


def test_overlap_queue_runs_back_to_back(sleepy, daemons, tmp_path):
    d = daemons(tmp_path, [sleepy(overlap="queue")], "--grace", "0.5")
    d.wait_events("started", 3, timeout=20)
    assert d.stop() == 0

    events = d.events()
    assert not [e for e in events if e["event"] == "skipped"]
    assert [e for e in events if e["event"] == "queued"]
    started = [e for e in events if e["event"] == "started"]
    finished = {e["run_id"]: e for e in events if e["event"] == "finished"}
    assert [finished[e["run_id"]]["exit_code"] for e in started[:2]] == [0, 0], d.output()
    for before, after in itertools.pairwise(started[:3]):
        gap = ts(after["started"]) - ts(finished[before["run_id"]]["ended"])
        assert 0 <= gap < 1.0  # the next one starts as soon as the previous one ends (in ms, unloaded)
    naps = nap_spans(tmp_path)
    assert len(naps) >= 2
    for (_, end), (start, _) in itertools.pairwise(naps):
        assert start >= end
    slots = [ts(e["scheduled"]) for e in started]
    assert slots == sorted(slots) and len(set(slots)) == len(slots)
    assert slots[1] - slots[0] == 1.0 and slots[2] - slots[1] == 1.0  # every slot runs, late
    assert_nothing_left(d)


# -- the daemon's own mechanics, with a stand-in run command ------------------------------
def test_restart_after_a_crash_adopts_the_run_and_repeats_no_slot(sleepy, daemons, tmp_path):
    recipe = sleepy(overlap="skip", catchup="latest")
    (tmp_path / "fake.json").write_text(json.dumps({"sleep": 20}))  # until the test creates "release"
    first = daemons(tmp_path, [recipe], "--grace", "0.5", fake=True)
    (run,) = first.wait_events("started", 1)
    first.stop(signal.SIGKILL)  # a crash: the run, in its own session, goes on
    assert alive(run["pid"])

    second = daemons(tmp_path, [recipe], "--grace", "0.5", fake=True)
    second.wait_events("adopted", 1)
    second.wait_events("skipped", 1)  # overlap = "skip" holds for the adopted run
    (tmp_path / "release").touch()
    wait_for(
        lambda: len([e for e in second.events("started") if e["run_id"] != run["run_id"]]) >= 1,
        10,
        "a new run",
    )
    assert second.stop() == 0

    events = second.events()  # both daemons log to the same state directory
    adopted = [e for e in events if e["event"] == "adopted"]
    assert adopted[0]["run_id"] == run["run_id"]
    ended = [e for e in events if e["event"] == "finished" and e["run_id"] == run["run_id"]]
    assert ended and ended[0]["exit_code"] is None  # not our child any more: exit code unknown
    started = [e for e in events if e["event"] == "started"]
    assert len({e["scheduled"] for e in started}) == len(started)
    assert ts(started[1]["started"]) >= ts(ended[0]["ended"])  # skip held across the restart
    runs = read_jsonl(tmp_path / "runs.jsonl")
    assert next(r["run_id"] for r in runs if r["event"] == "end") == run["run_id"]
    assert_nothing_left(second)


def test_sigterm_escalates_to_sigkill_for_the_whole_session(sleepy, daemons, tmp_path):
    (tmp_path / "fake.json").write_text(json.dumps({"ignore_term": True, "grandchild": True, "sleep": 30}))
    d = daemons(tmp_path, [sleepy()], "--grace", "0.3", fake=True)
    start = wait_for(lambda: read_jsonl(tmp_path / "runs.jsonl"), 10, "a run to start")[0]
    assert alive(start["grandchild"])
    assert d.stop(timeout=10) == 0
    signals = [e["signal"] for e in d.events("signalled") if "signal" in e]
    assert signals == ["SIGTERM", "SIGKILL"]
    (finished,) = d.events("finished")
    assert finished["exit_code"] == -signal.SIGKILL
    for pid in (start["pid"], start["grandchild"]):
        wait_for(lambda pid=pid: not alive(pid), 5, f"pid {pid} to be gone")
    assert_nothing_left(d)


def test_edited_recipes_are_reread_and_a_bad_edit_keeps_the_last_good_one(sleepy, daemons, tmp_path):
    (tmp_path / "fake.json").write_text(json.dumps({"sleep": 0.1}))
    recipe = sleepy(every="1s")
    good = recipe.read_text()
    d = daemons(tmp_path, [recipe], fake=True)
    d.wait_events("started", 1)
    recipe.write_text(good.replace('every = "1s"', 'cron = "61 * * * *"'))
    (error,) = d.wait_events("error", 1)
    assert "schedule.cron: '61 * * * *' is not a valid cron expression" in error["message"]
    n = len(d.events("started"))
    d.wait_events("started", n + 1)  # still firing every second on the last good schedule
    recipe.write_text(good.replace('every = "1s"', 'cron = "0 0 1 1 *"'))
    (reloaded,) = d.wait_events("reloaded", 1)
    assert reloaded["schedule"]["cron"] == "0 0 1 1 *"
    assert d.stop() == 0
    state = json.loads((d.state / "recipes" / "sleepy.json").read_text())
    assert state["next_firing"].endswith("-01-01T00:00:00.000000Z")


def test_one_daemon_per_state_directory(sleepy, daemons, tmp_path):
    recipe = sleepy(every="1h")
    first = daemons(tmp_path, [recipe], fake=True)
    first.wait_events("daemon_started", 1)
    second = subprocess.run(
        [sys.executable, "-m", "toolkit", "schedule", "--state", str(first.state), str(recipe)],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=tmp_path,
    )
    assert second.returncode == 2
    assert (
        f"toolkit: error: another toolkit schedule (pid {first.pid}) is using the state directory"
        in second.stderr
    )
    assert first.stop() == 0
    assert "stopped" in first.events()[-1]["event"]
