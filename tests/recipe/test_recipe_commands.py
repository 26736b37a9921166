"""``toolkit validate``, ``plan``, ``schema`` and ``init`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from toolkit.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PI = os.path.join(ROOT, "recipes", "pi.toml")

SWEEP = """
[recipe]
name = "sweep"
plugins = ["toolkit.conformance"]
[run]
workers = 4
[[task]]
name = "sq"
uses = "conformance.square"
matrix = {{ x = {{ range = [0, {n}] }} }}
[[task]]
name = "total"
uses = "conformance.add_inputs"
needs = ["sq"]
"""


def write(folder, name, text):
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_validate_prints_ok_per_recipe(tmp_path, capsys):
    other = write(tmp_path, "sweep.toml", SWEEP.format(n=3))
    assert main(["validate", PI, str(other)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{PI}: ok", f"{other}: ok"]


def test_validate_reports_each_bad_recipe_and_goes_on(tmp_path, capsys):
    good = write(tmp_path, "good.toml", SWEEP.format(n=3))
    bad = write(tmp_path, "bad.toml", SWEEP.format(n=3).replace("workers = 4", "workers = 0"))
    assert main(["validate", str(bad), str(good)]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{good}: ok"]
    assert err.startswith(f"toolkit: error: {bad}:6: run.workers: must be >= 1")


def test_validate_applies_overrides(tmp_path, capsys):
    recipe = write(tmp_path, "r.toml", SWEEP.format(n=3))
    assert main(["validate", str(recipe), "--set", "run.executor=nope"]) == 2
    assert "--set run.executor=nope: run.executor: unknown executor 'nope'" in capsys.readouterr().err


def test_plan_json_lists_instances_stages_and_executor(tmp_path, capsys):
    recipe = write(tmp_path, "r.toml", SWEEP.format(n=3))
    assert main(["plan", str(recipe), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["recipe"] == "sweep"
    assert doc["stages"] == [["sq"], ["total"]]
    assert doc["workers"] == 4 and doc["executor"] == "process" and doc["reason"].startswith("auto:")
    sq = doc["tasks"][0]
    assert sq["count"] == 3 and sq["uses"] == "conformance.square"
    assert sq["instances"] == [{"id": f"sq[x={i}]", "params": {"x": i}} for i in range(3)]
    assert doc["tasks"][1]["instances"] == [{"id": "total", "params": {}}]
    assert not (tmp_path / "runs").exists()


def test_plan_json_above_the_limit_gives_counts_and_a_sample(tmp_path, capsys):
    recipe = write(tmp_path, "r.toml", SWEEP.format(n=5000))
    assert main(["plan", str(recipe), "--format", "json", "--set", "run.executor=pool"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sq = doc["tasks"][0]
    assert sq["count"] == 5000 and "instances" not in sq
    assert [i["id"] for i in sq["sample"]] == [f"sq[x={i}]" for i in range(10)]
    assert doc["executor"] == "pool" and doc["reason"] == "run.executor = 'pool'"


def test_plan_table_is_plain_text_off_a_terminal(capsys):
    assert main(["plan", PI, "-j", "8"]) == 0
    out = capsys.readouterr().out
    assert "executor: pool" in out or "executor: process" in out
    assert "workers:  8" in out
    assert "estimate[method=antithetic,seed=7]  samples=200000 method=antithetic seed=7" in out
    assert "\x1b[" not in out


def test_plan_table_uses_rich_on_a_terminal(capsys, monkeypatch):
    import sys as _sys

    monkeypatch.setattr(_sys.stdout, "isatty", lambda: True)
    assert main(["plan", PI]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" in out  # styled
    assert ": pi.estimate, 16 instances" in out
    assert "estimate[method=plain,seed=0]" in out


def _plan_stats(recipe):
    code = (
        "import resource, sys, time; from toolkit.cli import main; t = time.perf_counter();"
        f" rc = main(['plan', {str(recipe)!r}, '--format', 'json']);"
        " print('STATS', rc, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
        " file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    rc, seconds, peak_kb = proc.stderr.split("STATS")[1].split()
    assert rc == "0", proc.stderr
    return json.loads(proc.stdout), float(seconds), int(peak_kb)


def test_plan_of_a_million_instances_is_quick_and_as_small_as_a_tiny_plan(tmp_path):
    doc, seconds, peak_kb = _plan_stats(write(tmp_path, "big.toml", SWEEP.format(n=1_000_000)))
    assert doc["total"] == 1_000_001 and len(doc["tasks"][0]["sample"]) == 10
    _, _, small_kb = _plan_stats(write(tmp_path, "small.toml", SWEEP.format(n=3)))
    assert peak_kb < small_kb + 10_000  # memory does not grow with the sweep
    print(
        f"plan of 1M instances: {seconds:.2f}s, peak RSS {peak_kb / 1024:.0f} MB ({small_kb / 1024:.0f} MB for 3)"
    )


def test_plan_and_validate_via_subprocess(tmp_path):
    env = {**os.environ, "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    bad = write(tmp_path, "bad.toml", SWEEP.format(n=3).replace('name = "sq"', 'name = "sq"\nretires = 1'))
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "validate", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"toolkit: error: {bad}:9: task.sq.retires: unknown key (did you mean 'retries'?)\n"
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "validate", str(bad), "-v"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "plan", PI], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0 and "estimate: pi.estimate, 16 instances" in proc.stdout


def test_schema_prints_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {
        "recipe",
        "vars",
        "run",
        "output",
        "notify",
        "executor",
        "schedule",
        "task",
    }


def test_schema_to_a_file(tmp_path, capsys):
    out = tmp_path / "recipe.schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["title"] == "toolkit recipe"


def test_init_writes_a_recipe_that_validates_and_plans(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    assert (tmp_path / "recipe.toml").is_file() and (tmp_path / "recipe_tasks.py").is_file()
    capsys.readouterr()
    assert main(["validate", "recipe.toml"]) == 0
    assert main(["plan", "recipe.toml", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert doc["total"] == 9 and doc["stages"] == [["walk"], ["summary"]]
    assert main(["init"]) == 2
    assert "already exist" in capsys.readouterr().err


def test_init_into_a_new_folder_runs_as_written(tmp_path):
    env = {**os.environ, "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "init", "exp/sweep.toml"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "exp" / "sweep_tasks.py").is_file()
    proc = subprocess.run(
        [sys.executable, "-m", "toolkit", "run", "exp/sweep.toml", "--progress", "off"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = [p for p in (tmp_path / "runs" / "sweep").glob("*/results.jsonl") if p.parent.name != "latest"]
    assert len(results) == 1
    lines = [json.loads(line) for line in results[0].read_text().splitlines()]
    assert len(lines) == 9 and all(r["status"] == "ok" for r in lines)


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_missing_recipe_file_is_exit_2(tmp_path, capsys, command):
    assert main([command, str(tmp_path / "nope.toml")]) == 2
    assert "no such recipe file" in capsys.readouterr().err
