"""``toolkit runs`` and ``toolkit show``."""

from __future__ import annotations

import contextlib
import io

import pytest

from toolkit.cli import main
from toolkit.errors import RunError
from toolkit.store.history import error_head, resolve_run, show_duration
from toolkit.store.rundir import RunDir


def cmd(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def history(run_recipe, store_tasks, tmp_path, monkeypatch):
    """Three runs under one output dir: two of 'good' (one scheduled), one of 'bad'."""
    out = tmp_path / "history"
    good = """
        [recipe]
        name = "good"
        plugins = ["toolkit.conformance"]
        [[task]]
        name = "sq"
        uses = "conformance.square"
        matrix = { x = [1, 2, 3] }
    """
    bad = f"""
        [recipe]
        name = "bad"
        plugins = ["{store_tasks}"]
        [run]
        keep_going = true
        [[task]]
        name = "c"
        uses = "store.chatty"
        matrix = {{ i = [1, 2], fail = [true, false] }}
        [[task]]
        name = "later"
        uses = "store.chatty"
        needs = ["c"]
        params = {{ i = 0 }}
    """
    assert run_recipe(good, "--output", str(out)).exit_code == 0
    monkeypatch.setenv("TOOLKIT_SCHEDULED_FOR", "2026-11-25T20:30:00Z")
    assert run_recipe(good, "--output", str(out)).exit_code == 0
    monkeypatch.delenv("TOOLKIT_SCHEDULED_FOR")
    assert run_recipe(bad, "--output", str(out)).exit_code == 1
    return out


def test_runs_lists_every_run_newest_first(history):
    code, out, _ = cmd("runs", "--output", str(history))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["RUN", "RECIPE", "STATUS"]
    assert "DURATION" in lines[0] and "STARTED" in lines[0]
    rows = [line.split() for line in lines[1:]]
    assert [r[1] for r in rows] == ["bad", "good", "good"]
    assert [r[2] for r in rows] == ["failed", "succeeded", "succeeded"]
    # total, ok, failed, skipped, not run
    assert rows[0][3:8] == ["5", "2", "2", "1", "0"]
    assert rows[2][3:8] == ["3", "3", "0", "0", "0"]
    assert "scheduled for 2026-11-25 20:30:00Z" in lines[2]
    assert "scheduled" not in lines[3]
    assert "\x1b" not in out


def test_runs_filters_and_limits(history, tmp_path):
    code, out, _ = cmd("runs", "--output", str(history), "--recipe", "good", "-n", "1")
    assert code == 0 and len(out.splitlines()) == 2 and " good " in out
    code, out, _ = cmd("runs", "--output", str(tmp_path / "empty"))
    assert code == 0 and out.startswith("no runs in")


def test_show_prints_the_summary_and_the_failures(history):
    code, out, _ = cmd("show", "bad/latest", "--output", str(history))
    assert code == 0, out
    assert "status     failed" in out
    assert "5 total: 2 ok, 2 failed, 1 skipped" in out
    assert "executor" in out and "toolkit " in out and "Python " in out
    assert "failures (2):" in out
    assert "c[fail=true,i=1]  failed after 1 attempt" in out
    assert "ValueError: chatty 1 fails" in out
    assert "log: " in out and "c[fail=true,i=1].log" in out
    assert "skipped: 1 of later" in out
    assert "\x1b" not in out


def test_show_accepts_ids_prefixes_paths_and_latest(history):
    bad = RunDir((history / "bad" / "latest").resolve())
    for spec in (bad.run_id, str(bad.path), "bad", "bad/" + bad.run_id, "bad/latest"):
        assert resolve_run(spec, history).path.resolve() == bad.path.resolve(), spec
    assert resolve_run("latest", history).path.resolve() == bad.path.resolve()
    old = RunDir.create(history, "bad", "20200101-000000-0abc")
    old.write_manifest({"status": "failed", "started": "2020-01-01T00:00:00.000000Z"})
    assert resolve_run("20200101", history).path == old.path  # a unique start of an id
    code, _, err = cmd("show", "nope", "--output", str(history))
    assert code == 2 and "no run 'nope'" in err
    with pytest.raises(RunError, match="several runs"):
        resolve_run(bad.run_id[:2], history)  # every run id starts with the century


def test_show_of_a_scheduled_run_says_so(history):
    code, out, _ = cmd("show", "good/latest", "--output", str(history))
    assert code == 0
    assert "scheduled  2026-11-25 20:30:00Z" in out
    assert "failures" not in out


def test_helpers():
    assert show_duration(3.25) == "3.2s" and show_duration(125) == "2m05s" and show_duration(7300) == "2h01m"
    assert show_duration(None) == "-"
    assert error_head({"type": "E", "message": "a\nb\nc\nd\ne"}) == ["E: a", "b", "c", "... (2 more lines)"]
    assert error_head(None) == []
