"""Resume after SIGKILL and Ctrl-C, --retry-failed, and refusing a changed recipe.

The kill tests run the real CLI in a subprocess and send it real signals; every wait
is bounded (a hang guard), none is a timing assertion.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
from store_helpers import cli, descendants, start_cli, still_alive, wait_for

from toolkit.store.history import RunEntry
from toolkit.store.rundir import RunDir, find_run

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, uses signals")

MARKS = """
[[task]]
name = "m"
uses = "store.mark"
params = {{ log = "{log}", seconds = {seconds} }}
matrix = {{ i = {{ range = [0, {n}] }} }}
"""


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def ok_per_key(results: Path) -> Counter:
    return Counter(
        json.loads(line)["key"] for line in lines_of(results) if json.loads(line)["status"] == "ok"
    )


def test_sigkill_of_the_parent_then_resume_completes_each_instance_once(tmp_path, write_recipe):
    n = 60
    log = tmp_path / "marks.log"
    recipe = write_recipe(MARKS.format(log=log, seconds=0.08, n=n), run='executor = "pool"')
    out = tmp_path / "runs"
    proc = start_cli("run", str(recipe), "--output", str(out))
    try:
        results = wait_for(lambda: next((out / "r").glob("*/results.jsonl"), None), what="the run dir")
        wait_for(lambda: len(lines_of(results)) >= 6, what="some results")
        children = descendants(proc.pid)
        assert children, "the run has no worker processes"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()

    # nothing that the run started outlives it for long (PR_SET_PDEATHSIG)
    wait_for(
        lambda: not still_alive(children), timeout=15, what=f"the run's processes {sorted(children)} to die"
    )

    lines = lines_of(results)
    assert 6 <= len(lines) < n + 1
    for line in lines[:-1]:
        json.loads(line)  # all but possibly the last are whole
    run = RunDir(results.parent)
    assert run.read_manifest()["status"] == "running"
    assert RunEntry.read(run).status == "dead"  # what `toolkit runs` shows of it

    done = cli("run", str(recipe), "--output", str(out), "--resume")
    assert done.returncode == 0, done.stdout + done.stderr
    per_key = ok_per_key(results)
    assert len(per_key) == n
    assert set(per_key.values()) == {1}, "an instance succeeded twice"
    manifest = run.read_manifest()
    assert manifest["status"] == "succeeded"
    assert manifest["counts"]["ok"] == n and manifest["counts"]["not_run"] == 0
    assert len(manifest["resumed"]) == 1
    assert "pid" not in manifest
    assert find_run(out, "r").path.resolve() == run.path.resolve()


def test_sigint_then_resume_runs_no_finished_instance_twice(tmp_path, write_recipe):
    n = 30
    log = tmp_path / "marks.log"
    recipe = write_recipe(MARKS.format(log=log, seconds=0.15, n=n), run='executor = "pool"')
    out = tmp_path / "runs"
    proc = start_cli("run", str(recipe), "--output", str(out))
    try:
        results = wait_for(lambda: next((out / "r").glob("*/results.jsonl"), None), what="the run dir")
        wait_for(lambda: len(lines_of(results)) >= 4, what="some results")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    first = len(lines_of(results))
    assert first < n
    assert RunDir(results.parent).read_manifest()["status"] == "interrupted"

    done = cli("run", str(recipe), "--output", str(out), "--resume")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = Counter(lines_of(log))
    assert set(runs) == {str(i) for i in range(n)}
    assert [i for i, c in runs.items() if c > 1] == [], "a finished instance ran again"
    assert set(ok_per_key(results).values()) == {1}
    assert len(lines_of(results)) == n


FLAGGED = """
[[task]]
name = "f"
uses = "store.fail_if_flagged"
params = {{ flags = "{flags}", log = "{log}" }}
matrix = {{ i = {{ range = [0, 10] }} }}
[[task]]
name = "after"
uses = "store.mark"
needs = ["f"]
params = {{ i = 99, log = "{log}" }}
"""


def test_retry_failed_reruns_exactly_the_failed_instances(run_recipe, store_tasks, tmp_path):
    flags, log = tmp_path / "flags", tmp_path / "calls.log"
    flags.mkdir()
    for i in (2, 5, 7):
        (flags / str(i)).touch()
    text = (
        f'[recipe]\nname = "retry"\nplugins = ["{store_tasks}"]\n[run]\nworkers = 2\nkeep_going = true\n'
        + FLAGGED.format(flags=flags, log=log)
    )
    first = run_recipe(text)
    assert first.exit_code == 1
    by = first.by_instance()
    assert sorted(k for k, r in by.items() if r["status"] == "failed") == ["f[i=2]", "f[i=5]", "f[i=7]"]
    assert by["after"]["status"] == "skipped"

    for flag in flags.iterdir():
        flag.unlink()
    log.write_text("")
    output = first.output
    again = run_recipe(text, "--retry-failed", "--output", str(output))
    assert again.exit_code == 0, again.stdout + again.stderr
    assert sorted(lines_of(log)) == ["2", "5", "7", "99"]  # the failed, and the skipped after them
    # `first` reads the run directory afresh: the retry worked in the same one
    latest = first.by_instance()
    assert all(r["status"] == "ok" for r in latest.values())
    manifest = first.manifest
    assert manifest["status"] == "succeeded"
    assert manifest["counts"] == {
        "total": 11,
        "ok": 11,
        "failed": 0,
        "timeout": 0,
        "crashed": 0,
        "skipped": 0,
        "not_run": 0,
    }
    # one line per instance, the final one; the 4 records they superseded moved
    assert len(first.records) == 11
    attempts = (first.run_dir / "attempts.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["instance"] for line in attempts) == [
        "after",
        "f[i=2]",
        "f[i=5]",
        "f[i=7]",
    ]
    assert {json.loads(line)["status"] for line in attempts} == {"failed", "skipped"}


def test_retry_failed_with_nothing_failed_runs_nothing(run_recipe, store_tasks, tmp_path):
    log = tmp_path / "calls.log"
    text = f'[recipe]\nname = "nothing"\nplugins = ["{store_tasks}"]\n' + MARKS.format(
        log=log, seconds=0, n=3
    )
    first = run_recipe(text)
    assert first.exit_code == 0
    again = run_recipe(text, "--retry-failed", "--output", str(first.output))
    assert again.exit_code == 0, again.stderr
    assert len(lines_of(log)) == 3
    assert first.manifest["counts"]["ok"] == 3 and len(first.manifest["resumed"]) == 1


def test_resume_with_changed_instances_is_refused_unless_forced(run_recipe, store_tasks, tmp_path):
    log = tmp_path / "calls.log"
    text = f'[recipe]\nname = "changed"\nplugins = ["{store_tasks}"]\n' + MARKS.format(
        log=log, seconds=0, n=3
    )
    first = run_recipe(text)
    assert first.exit_code == 0
    out = str(first.output)

    refused = run_recipe(text, "--resume", "--output", out, "--set", "task.m.matrix.i=[0, 1, 5]")
    assert refused.exit_code == 2
    assert "instances changed" in refused.stderr and "m (changed)" in refused.stderr
    assert "--force" in refused.stderr
    assert "Traceback" not in refused.stderr

    # what does not change instances may change between sessions
    ok = run_recipe(text, "--resume", "--output", out, "--set", "task.m.timeout=30", "-j", "1")
    assert ok.exit_code == 0, ok.stderr

    forced = run_recipe(text, "--resume", "--output", out, "--force", "--set", "task.m.matrix.i=[0, 1, 5]")
    assert forced.exit_code == 0, forced.stderr
    assert sorted(lines_of(log)) == ["0", "1", "2", "5"]  # only the new instance ran


def test_resume_of_an_unknown_run_is_a_clear_error(run_recipe, store_tasks, tmp_path):
    text = f'[recipe]\nname = "none"\nplugins = ["{store_tasks}"]\n' + MARKS.format(
        log=tmp_path / "l", seconds=0, n=1
    )
    res = run_recipe(text, "--resume")
    assert res.exit_code == 2 and "no earlier run of recipe 'none'" in res.stderr
    res = run_recipe(text, "--resume", "20200101-000000-dead")
    assert res.exit_code == 2 and "no run '20200101-000000-dead'" in res.stderr


HOLD_LOCK = """
import sys, time
from toolkit.store.lock import RunLock
RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_run_that_is_still_going_is_not_resumed(tmp_path):
    """The run's lock, not its pid, says whether it still runs: a holder blocks even
    ``--force``; once the holder is gone, a pid given to another process blocks nothing."""
    import socket
    import subprocess
    import sys

    from toolkit.errors import RunError
    from toolkit.store.lock import RunLock, RunLocked, is_locked
    from toolkit.store.resume import check_resumable

    run = RunDir.create(tmp_path, "r")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run.path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        assert is_locked(run.path)
        with pytest.raises(RunLocked, match=rf"run {run.run_id} is in use by pid {holder.pid} on "):
            RunLock(run.path).acquire()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert is_locked(run.path) is False  # the kernel released it
    sleeper = subprocess.Popen(["sleep", "30"])  # the dead run's pid, given to another process
    try:
        here = {
            "status": "running",
            "host": socket.gethostname(),
            "pid": sleeper.pid,
            "recipe": "r",
            "task_digests": {},
        }
        with RunLock(run.path) as lock:
            check_resumable(run, here, "r", {}, force=False, lock=lock)
        # a run made before runs were locked is judged by its pid; --force overrides
        (run.path / ".lock").unlink()
        with RunLock(run.path) as lock:
            with pytest.raises(RunError, match=rf"pid {sleeper.pid} is alive.*pass --force"):
                check_resumable(run, here, "r", {}, force=False, lock=lock)
            check_resumable(run, here, "r", {}, force=True, lock=lock)
    finally:
        sleeper.kill()
        sleeper.wait()
    elsewhere = {**here, "host": "another-host"}
    with pytest.raises(RunError, match=r"marked running on host 'another-host'.*--force"):
        check_resumable(run, elsewhere, "r", {}, force=False)
    check_resumable(run, elsewhere, "r", {}, force=True)
    with pytest.raises(RunError, match="is a run of recipe 'r', not 'q'"):
        check_resumable(run, {"status": "failed", "recipe": "r"}, "q", {}, force=False)


def test_retry_failed_does_not_feed_partial_inputs_downstream(toolkit_pm, tmp_path):
    from toolkit.api import execute, prepare
    from toolkit.execution.run import task_runtimes
    from toolkit.store.resume import plan_resume

    recipe, plugins = prepare(
        {
            "recipe": {"name": "partial", "plugins": ["toolkit.conformance"]},
            "run": {"keep_going": True, "workers": 2},
            "task": [
                {
                    "name": "u",
                    "uses": "conformance.fail_on",
                    "params": {"bad": 1},
                    "matrix": {"x": [0, 1, 2]},
                },
                {"name": "d", "uses": "conformance.add_inputs", "needs": ["u"]},
            ],
        },
        plugins=toolkit_pm,
    )
    result = execute(recipe, plugins, output=tmp_path)
    assert result.counts["skipped"] == 1
    run = RunDir(result.run_dir)
    runtimes = task_runtimes(recipe, plugins)

    plan = plan_resume(recipe, runtimes, run, retry_failed=True)
    assert plan.todo == {"u": [1], "d": [0]}
    assert sorted(plan.values["u"]) == [0, 2]

    # as if u[x=2] had never run (a fail-fast run stops starting instances)
    kept = [line for line in lines_of(run.results_path) if '"u[x=2]"' not in line]
    run.results_path.write_text("".join(line + "\n" for line in kept))
    plan = plan_resume(recipe, runtimes, run, retry_failed=True)
    assert plan.todo == {"u": [1], "d": []}  # d would see only u[0] and u[1]
    assert plan.kept == {"ok": 1, "failed": 0, "timeout": 0, "crashed": 0, "skipped": 1, "not_run": 1}
    plan = plan_resume(recipe, runtimes, run, retry_failed=False)
    assert plan.todo == {"u": [1, 2], "d": [0]}
