"""The engine as a user meets it: big sweeps, Ctrl-C, built-in tasks, the CLI path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import toolkit

SQUARES = """
[recipe]
name = "squares"
plugins = ["toolkit.conformance"]
[run]
executor = "pool"
workers = 2
[[task]]
name = "sq"
uses = "conformance.square"
matrix = { x = { range = [0, 2000] } }
"""


def test_a_2000_instance_sweep_records_every_instance_once(run_recipe):
    res = run_recipe(SQUARES)
    assert res.exit_code == 0, res.stderr
    records = res.records
    assert len(records) == 2000
    assert len({r["key"] for r in records}) == 2000
    assert sorted(r["value"] for r in records) == sorted(x * x for x in range(2000))
    assert res.manifest["counts"]["ok"] == 2000


NEEDS_GRAPH = """
[recipe]
name = "graph"
plugins = ["toolkit.conformance"]
[run]
executor = "pool"
workers = 2
keep_going = true
[[task]]
name = "d"
uses = "conformance.add_inputs"
needs = ["b", "c", "b"]
[[task]]
name = "c"
uses = "conformance.square"
params = { x = 3 }
needs = ["a"]
[[task]]
name = "b"
uses = "conformance.square"
params = { x = 2 }
needs = ["a"]
[[task]]
name = "a"
uses = "conformance.square"
matrix = { x = { range = [0, 5] } }
[[task]]
name = "h"
uses = "conformance.add_inputs"
needs = ["g"]
[[task]]
name = "g"
uses = "conformance.add_inputs"
needs = ["f"]
[[task]]
name = "f"
uses = "conformance.fail_on"
params = { bad = 0 }
matrix = { x = [0, 1] }
"""


def test_needs_in_any_order_start_after_every_need_and_skips_go_down_chains(run_recipe):
    res = run_recipe(NEEDS_GRAPH)
    assert res.exit_code == 1, res.stderr
    by_task: dict[str, list] = {}
    for r in res.records:
        by_task.setdefault(r["task"], []).append(r)
    assert sorted(r["status"] for r in by_task["f"]) == ["failed", "ok"]
    for name, need in (("g", "'f'"), ("h", "'g'")):
        (rec,) = by_task[name]
        assert rec["status"] == "skipped"
        assert need in rec["error"]["message"]
    (b,), (c,), (d,) = by_task["b"], by_task["c"], by_task["d"]
    assert d["value"] == {"total": 4 + 9, "order": [b["instance"], c["instance"]]}
    assert min(b["started"], c["started"]) >= max(r["finished"] for r in by_task["a"])
    assert d["started"] >= max(b["finished"], c["finished"])


def test_python_api_runs_a_dict_recipe(tmp_path):
    recipe = {
        "recipe": {"name": "api", "plugins": ["toolkit.conformance"]},
        "run": {"workers": 2},
        "task": [{"name": "sq", "uses": "conformance.square", "matrix": {"x": [1, 2, 3]}}],
    }
    result = toolkit.run(recipe, output=tmp_path / "runs")
    assert result.status == "succeeded"
    assert result.exit_code == 0
    assert sorted(r["value"] for r in result.records()) == [1, 4, 9]
    assert result.run_dir.parent.name == "api"


def test_shell_task_records_exit_code_and_output(run_recipe):
    res = run_recipe("""
        [recipe]
        name = "sh"
        [run]
        keep_going = true
        [[task]]
        name = "echo"
        uses = "shell"
        params = { cmd = "echo hello ${matrix.who}" }
        matrix = { who = ["a", "b c"] }
        [[task]]
        name = "fails"
        uses = "shell"
        params = { cmd = "sh -c 'echo oops >&2; exit 3'" }
        [[task]]
        name = "piped"
        uses = "shell"
        params = { cmd = "echo one two | wc -w", shell = true }
    """)
    by = {r["instance"]: r for r in res.records}
    assert by["echo[who=a]"]["value"]["stdout"] == "hello a\n"
    assert by["echo[who=b c]"]["value"]["stdout"] == "hello b c\n"
    assert by["fails"]["status"] == "failed"
    assert "exited with code 3" in by["fails"]["error"]["message"]
    assert "oops" in by["fails"]["error"]["message"]
    assert by["piped"]["value"]["stdout"].strip() == "2"
    assert res.exit_code == 1


def test_python_task_calls_module_function(run_recipe):
    res = run_recipe("""
        [recipe]
        name = "py"
        [[task]]
        name = "join"
        uses = "python"
        params = { function = "os.path:join", a = "x", b = "y" }
    """)
    assert res.exit_code == 1  # os.path.join takes positional args only
    res = run_recipe("""
        [recipe]
        name = "py"
        [[task]]
        name = "dumps"
        uses = "python"
        params = { function = "json:dumps", obj = [1, 2], sort_keys = true }
    """)
    assert res.exit_code == 0, res.stderr
    assert res.records[0]["value"] == "[1, 2]"


SLOW = """
[recipe]
name = "slow"
plugins = ["slow_tasks.py"]
[run]
executor = "{executor}"
workers = 2
[[task]]
name = "nap"
uses = "slow.nap"
matrix = {{ i = {{ range = [0, 40] }} }}
"""

SLOW_TASKS = '''
import os, subprocess, time
import toolkit

def nap(i: int) -> int:
    """Start a grandchild (as a shell task would), then sleep."""
    subprocess.Popen(["sleep", "300"])
    time.sleep(1.0)
    return i

@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(nap, name="slow.nap")
'''


def _processes_in_groups(pgids: set[int]) -> list[int]:
    """Pids of live processes whose process group is one of ``pgids`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgid = fields[0], int(fields[2])
        if pgid in pgids and state != "Z":
            found.append(int(entry.name))
    return found


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("executor", ["pool", "process"])
def test_sigint_stops_the_run_and_leaves_no_process(tmp_path, executor):
    (tmp_path / "slow_tasks.py").write_text(SLOW_TASKS)
    recipe = tmp_path / "slow.toml"
    recipe.write_text(SLOW.format(executor=executor))
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "run", str(recipe), "--output", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    results = None
    groups: set[int] = {proc.pid}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until some instances finished
        found = list((tmp_path / "runs" / "slow").glob("*/results.jsonl"))
        if found and found[0].read_text().count("\n") >= 2:
            results = found[0]
            break
        time.sleep(0.1)
    assert results is not None, "the run never got going"
    for pid in _descendants(proc.pid):  # every process group the run made
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    manifest = (results.parent / "manifest.toml").read_text()
    assert 'status = "interrupted"' in manifest
    lines = results.read_text().splitlines()
    assert 2 <= len(lines) < 40
    assert all(json.loads(line)["status"] == "ok" for line in lines)
    deadline = time.monotonic() + 10
    while _processes_in_groups(groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_in_groups(groups) == []
