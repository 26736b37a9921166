"""Resume and retry semantics: incomplete runs, one line per instance, overrides kept,
changed instances named, stale downstream results never kept."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from pathlib import Path

from store_helpers import cli

from toolkit.store.rundir import RunDir

FLAGGED = """
[recipe]
name = "{name}"
plugins = ["{tasks}"]
[run]
workers = 1
executor = "process"
keep_going = {keep_going}
[[task]]
name = "f"
uses = "store.fail_if_flagged"
params = {{ flags = "{flags}", log = "{log}" }}
matrix = {{ i = {{ range = [0, {n}] }} }}
"""

UP_DOWN = """
[[task]]
name = "sum"
uses = "store.total"
needs = ["f"]
params = {{ log = "{log}" }}
"""


def calls(log: Path) -> Counter:
    return Counter(log.read_text().splitlines()) if log.exists() else Counter()


def write(
    tmp_path: Path, store_tasks: Path, *, n: int, keep_going: bool, name: str, extra: str = ""
) -> tuple:
    flags, log = tmp_path / "flags", tmp_path / "calls.log"
    flags.mkdir(exist_ok=True)
    recipe = tmp_path / f"{name}.toml"
    text = FLAGGED.format(
        name=name, tasks=store_tasks, flags=flags, log=log, n=n, keep_going=str(keep_going).lower()
    )
    recipe.write_text(text + extra.format(log=log))
    return recipe, flags, log


def latest(out: Path, name: str) -> RunDir:
    return RunDir((out / name / "latest").resolve())


def test_retry_failed_with_instances_never_run_is_incomplete(tmp_path, store_tasks):
    recipe, flags, _log = write(tmp_path, store_tasks, n=8, keep_going=False, name="inc")
    (flags / "2").touch()
    out = tmp_path / "runs"
    first = cli("run", str(recipe), "--output", str(out))
    assert first.returncode == 1
    run = latest(out, "inc")
    assert run.read_manifest()["counts"]["not_run"] > 0  # fail-fast left some

    (flags / "2").unlink()
    retry = cli("run", str(recipe), "--output", str(out), "--retry-failed")
    assert retry.returncode == 1, retry.stdout + retry.stderr
    assert "incomplete" in retry.stdout + retry.stderr
    manifest = run.read_manifest()
    assert manifest["status"] == "incomplete"
    assert manifest["counts"]["failed"] == 0 and manifest["counts"]["not_run"] > 0
    shown = cli("show", run.run_id, "--output", str(out))
    assert "incomplete" in shown.stdout and "--resume" in shown.stdout
    listed = cli("runs", "--output", str(out))
    assert "incomplete" in listed.stdout

    # the resume finishes it: one line per instance, the superseded ones aside
    done = cli("run", str(recipe), "--output", str(out), "--resume")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in run.results_path.read_text().splitlines()]
    assert sorted(r["instance"] for r in lines) == sorted(f"f[i={i}]" for i in range(8))
    assert {r["status"] for r in lines} == {"ok"}
    attempts = [json.loads(line) for line in (run.path / "attempts.jsonl").read_text().splitlines()]
    assert [r["instance"] for r in attempts] == ["f[i=2]"] and attempts[0]["status"] == "failed"
    assert run.read_manifest()["status"] == "succeeded"


def test_resume_after_set_works_with_the_printed_command(tmp_path, store_tasks):
    recipe, flags, log = write(tmp_path, store_tasks, n=3, keep_going=True, name="over")
    (flags / "11").touch()
    out = tmp_path / "runs"
    first = cli("run", str(recipe), "--output", str(out), "--set", "task.f.matrix.i=[10, 11, 12]")
    assert first.returncode == 1
    run = latest(out, "over")
    assert run.read_manifest()["overrides"] == ["task.f.matrix.i=[10, 11, 12]"]

    shown = cli("show", run.run_id, "--output", str(out))
    command = next(line for line in shown.stdout.splitlines() if line.startswith("resume"))
    words = shlex.split(command.split(None, 1)[1])
    assert words[:2] == ["toolkit", "run"] and "--set" in words
    # shown through the latest pointer: the command names the run, not what latest is now
    by_pointer = cli("show", str(out / "over" / "latest"), "--output", str(out))
    assert by_pointer.stdout.splitlines()[0].split() == ["run", run.run_id]
    assert command in by_pointer.stdout
    (flags / "11").unlink()
    again = cli(*words[1:])
    assert again.returncode == 0, again.stdout + again.stderr
    assert calls(log) == Counter({"10": 1, "11": 2, "12": 1})

    # a bare --resume applies the run's overrides too
    (flags / "12").touch()
    bare = cli("run", str(recipe), "--output", str(out), "--resume")
    assert bare.returncode == 0, bare.stderr  # nothing left to do: the same instances


def test_the_refusal_names_the_changed_instances(tmp_path, store_tasks):
    recipe, _flags, _log = write(tmp_path, store_tasks, n=8, keep_going=True, name="named")
    out = tmp_path / "runs"
    assert cli("run", str(recipe), "--output", str(out)).returncode == 0
    refused = cli("run", str(recipe), "--output", str(out), "--resume", "--set", "task.f.params.log='other'")
    assert refused.returncode == 2
    message = refused.stderr
    assert "Traceback" not in message
    assert "f[i=0]: params changed (log)" in message
    assert message.count("params changed") == 5 and "and 3 more" in message


def test_forced_resume_reruns_the_downstream_of_a_changed_instance(tmp_path, store_tasks):
    recipe, _flags, log = write(tmp_path, store_tasks, n=3, keep_going=True, name="down", extra=UP_DOWN)
    out = tmp_path / "runs"
    assert cli("run", str(recipe), "--output", str(out)).returncode == 0
    run = latest(out, "down")
    assert {r["instance"]: r["value"] for r in run.records()}["sum"] == 3

    forced = cli(
        "run", str(recipe), "--output", str(out), "--resume", "--force", "--set", "task.f.matrix.i=[0, 1, 5]"
    )
    assert forced.returncode == 0, forced.stderr
    # the new instance ran, and the sum that received it: never the stale sum of 0+1+2
    assert calls(log) == Counter({"0": 1, "1": 1, "2": 1, "5": 1, "total": 2})
    final = {r["instance"]: r for r in run.records()}
    assert final["sum"]["value"] == 0 + 1 + 5
    # one line per instance of the recipe as it now is: f[i=2] is not one any more
    assert sorted(r["instance"] for r in run.records()) == ["f[i=0]", "f[i=1]", "f[i=5]", "sum"]
    assert run.read_manifest()["counts"]["ok"] == 4

    # resumed again with nothing changed: the sum is kept
    again = cli("run", str(recipe), "--output", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    assert calls(log)["total"] == 2


def test_forced_resume_with_changed_params_keeps_one_line_per_instance(tmp_path, store_tasks):
    # the instance ids stay, their params (so their keys) change: the new records replace
    # the old ones in results.jsonl, which move to attempts.jsonl
    recipe, flags, log = write(tmp_path, store_tasks, n=3, keep_going=True, name="same", extra=UP_DOWN)
    out = tmp_path / "runs"
    assert cli("run", str(recipe), "--output", str(out)).returncode == 0
    run = latest(out, "same")
    other = tmp_path / "other-flags"
    other.mkdir()
    change = f"task.f.params.flags='{other}'"
    forced = cli("run", str(recipe), "--output", str(out), "--resume", "--force", "--set", change)
    assert forced.returncode == 0, forced.stderr
    # inputs hold the upstream params: the sum runs again
    assert calls(log) == Counter({"0": 2, "1": 2, "2": 2, "total": 2})
    final = list(run.records())
    assert sorted(r["instance"] for r in final) == ["f[i=0]", "f[i=1]", "f[i=2]", "sum"]
    assert {r["params"]["flags"] for r in final if r["task"] == "f"} == {str(other)}
    attempts = [json.loads(line) for line in (run.path / "attempts.jsonl").read_text().splitlines()]
    assert sorted(r["instance"] for r in attempts) == ["f[i=0]", "f[i=1]", "f[i=2]", "sum"]
    assert {r["params"]["flags"] for r in attempts if r["task"] == "f"} == {str(flags)}
