"""The manifest, the run lifecycle hooks, per-instance logs, and what records carry."""

from __future__ import annotations

import platform
import socket
import tomllib

import pytest

import toolkit
from toolkit.api import execute, prepare
from toolkit.errors import PluginError


def squares(**run):
    return {
        "recipe": {"name": "life", "plugins": ["toolkit.conformance"]},
        "run": {"workers": 2, **run},
        "task": [{"name": "sq", "uses": "conformance.square", "matrix": {"x": {"range": [0, 6]}}}],
    }


def test_manifest_has_every_field_of_the_spec(run_recipe, monkeypatch):
    monkeypatch.setenv("TOOLKIT_SCHEDULED_FOR", "2026-11-25T20:30:00Z")
    res = run_recipe("""
        [recipe]
        name = "fields"
        plugins = ["toolkit.conformance"]
        [vars]
        n = 3
        [run]
        workers = 2
        [[task]]
        name = "sq"
        uses = "conformance.square"
        matrix = { x = { range = [0, "${vars.n}"] } }
    """)
    assert res.exit_code == 0, res.stderr
    m = res.manifest
    assert m["run_id"] == res.run_dir.name and m["recipe"] == "fields"
    assert m["status"] == "succeeded"
    assert m["started"].endswith("Z") and m["finished"].endswith("Z") and m["started"] <= m["finished"]
    assert m["duration_s"] >= 0
    assert m["toolkit"] == toolkit.__version__
    assert m["python"] == platform.python_version()
    if platform.processor() in ("", "unknown", platform.machine()):  # what the manifest leaves out
        assert m["platform"] == platform.platform(terse=True)
    assert isinstance(m["plugins"], dict)
    assert m["host"] == socket.gethostname()
    assert m["executor"] in ("process", "pool") and m["executor_reason"].startswith("auto:")
    assert m["workers"] == 2 and m["start_method"]
    assert m["counts"] == {
        "total": 3,
        "ok": 3,
        "failed": 0,
        "timeout": 0,
        "crashed": 0,
        "skipped": 0,
        "not_run": 0,
    }
    assert m["resolved"]["task"][0]["matrix"] == {"x": {"range": [0, 3]}}  # resolved
    assert m["resolved"]["recipe"]["name"] == "fields"
    assert m["scheduled_for"] == "2026-11-25T20:30:00Z"
    assert set(m["task_digests"]) == {"sq"}
    assert "pid" not in m and "resumed" not in m


def test_hook_toolkit_run_start(toolkit_pm, register_plugin, tmp_path):
    seen = {}

    class Watcher:
        @toolkit.hookimpl
        def toolkit_run_start(self, run):
            seen["run"] = run
            seen["manifest"] = tomllib.loads((run.run_dir / "manifest.toml").read_text())
            results = run.run_dir / "results.jsonl"
            seen["results"] = results.read_text() if results.exists() else ""

    register_plugin(Watcher(), "watcher")
    recipe, plugins = prepare(squares(), plugins=toolkit_pm)
    result = execute(recipe, plugins, output=tmp_path)
    info = seen["run"]
    assert info.run_id == result.run_id and info.run_dir == result.run_dir
    assert info.recipe.name == "life" and info.executor in ("pool", "process") and info.reason
    assert info.resumed is False
    assert seen["manifest"]["status"] == "running"  # written before anything runs
    assert seen["manifest"]["pid"] > 0
    assert seen["results"] == ""


def test_hook_toolkit_run_finish(toolkit_pm, register_plugin, tmp_path):
    seen = []

    class Watcher:
        @toolkit.hookimpl
        def toolkit_run_finish(self, run, summary):
            manifest = tomllib.loads((run.run_dir / "manifest.toml").read_text())
            seen.append((run.run_id, summary.status, dict(summary.counts), manifest["status"], run.resumed))

    register_plugin(Watcher(), "watcher")
    recipe, plugins = prepare(squares(keep_going=True), plugins=toolkit_pm)
    first = execute(recipe, plugins, output=tmp_path)
    execute(recipe, plugins, output=tmp_path, resume=True)
    run_id, status, counts, on_disk, resumed = seen[0]
    assert (run_id, status, on_disk, resumed) == (first.run_id, "succeeded", "succeeded", False)
    assert counts["ok"] == 6 and counts["total"] == 6
    assert seen[1][0] == first.run_id and seen[1][4] is True  # the resume, of the same run
    assert seen[1][2]["ok"] == 6


def test_manifest_says_failed_when_the_run_breaks(toolkit_pm, register_plugin, tmp_path):
    class Breaks:
        @toolkit.hookimpl
        def toolkit_run_start(self, run):
            raise RuntimeError("plugin bug")

    register_plugin(Breaks(), "breaks")
    recipe, plugins = prepare(squares(), plugins=toolkit_pm)
    with pytest.raises(
        PluginError, match="plugin 'breaks' failed in toolkit_run_start: RuntimeError: plugin bug"
    ):
        execute(recipe, plugins, output=tmp_path)
    (run_dir,) = [p for p in (tmp_path / "life").iterdir() if p.name != "latest"]
    manifest = tomllib.loads((run_dir / "manifest.toml").read_text())
    assert manifest["status"] == "failed" and manifest["counts"]["not_run"] == 6


def test_logs_capture_each_instance_and_records_carry_worker_and_memory(run_recipe, store_tasks):
    res = run_recipe(f"""
        [recipe]
        name = "logs"
        plugins = ["{store_tasks}"]
        [run]
        executor = "pool"
        workers = 2
        keep_going = true
        [[task]]
        name = "c"
        uses = "store.chatty"
        matrix = {{ i = {{ range = [0, 8] }}, include = [{{ i = 8, fail = true }}] }}
    """)
    assert res.exit_code == 1
    logs = res.run_dir / "logs"
    for i in range(8):
        text = (logs / f"c[i={i}].log").read_text()
        assert f"stdout of {i}" in text and f"stderr of {i}" in text
        others = [f"of {j}\n" for j in range(9) if j != i]
        assert not any(o in text for o in others), "logs of instances are interleaved"
    failed = (logs / "c[fail=true,i=8].log").read_text()
    assert "stdout of 8" in failed and "Traceback" in failed and "ValueError: chatty 8 fails" in failed
    host = socket.gethostname()
    for rec in res.records:
        assert rec["peak_rss_mib"] > 0
        assert rec["worker"].startswith(f"{host}:")
