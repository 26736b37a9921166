"""Incremental runs: the results cache, with real runs, files and processes.

Executions are counted with a file each task appends to, not from toolkit's output.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import sys
import textwrap
import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest
from store_helpers import cli, start_cli, wait_for

from toolkit.store.rundir import RunDir

MARKS = """
[[task]]
name = "m"
uses = "store.mark"
params = {{ log = "{log}", seconds = {seconds} }}
matrix = {{ i = {{ range = [0, {n}] }} }}
"""

UP_DOWN = """
[[task]]
name = "up"
uses = "store.parity"
params = {{ log = "{log}" }}
matrix = {{ i = {{ range = [0, {n}] }} }}

[[task]]
name = "down"
uses = "store.total"
needs = ["up"]
params = {{ log = "{log}" }}
"""


class Runs:
    """Runs of one recipe file, in this process, all into one output folder."""

    def __init__(self, recipe: Path, output: Path) -> None:
        self.recipe, self.output = recipe, output

    def __call__(self, *args: str) -> tuple[int, str]:
        from toolkit.cli import main

        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["run", str(self.recipe), "--output", str(self.output), *args])
        return code, err.getvalue()

    @property
    def latest(self) -> RunDir:
        name = tomllib.loads(self.recipe.read_text())["recipe"]["name"]
        return RunDir((self.output / name / "latest").resolve())

    def records(self) -> list[dict]:
        return list(self.latest.records())

    def by_instance(self) -> dict[str, dict]:
        return {r["instance"]: r for r in self.records()}


@pytest.fixture
def runs(tmp_path):
    def make(text: str) -> Runs:
        recipe = tmp_path / "recipe.toml"
        recipe.write_text(text)
        return Runs(recipe, tmp_path / "runs")

    return make


def calls(log: Path) -> Counter:
    """How many times each instance ran (the lines its task appended)."""
    return Counter(log.read_text().splitlines()) if log.exists() else Counter()


def recipe_text(store_tasks: Path, body: str, name: str = "c", cache: bool = True) -> str:
    head = f'[recipe]\nname = "{name}"\nplugins = ["{store_tasks}"]\n[run]\nworkers = 2\n'
    return head + textwrap.dedent(body)


def test_second_run_with_the_cache_runs_no_task(runs, store_tasks, tmp_path):
    log = tmp_path / "calls.log"
    run = runs(recipe_text(store_tasks, MARKS.format(log=log, seconds=0, n=20)))
    assert run("--cache") == (0, "")
    assert calls(log) == Counter(str(i) for i in range(20))
    first_id = run.latest.run_id
    assert all(r["cached"] is None for r in run.records())

    assert run("--cache") == (0, "")
    assert calls(log) == Counter(str(i) for i in range(20)), "an instance ran again"
    assert run.latest.run_id != first_id
    records = run.records()
    assert len(records) == 20
    assert {r["status"] for r in records} == {"ok"}
    assert {r["cached"] for r in records} == {first_id}
    assert sorted(r["value"] for r in records) == list(range(20))
    manifest = run.latest.read_manifest()
    assert manifest["status"] == "succeeded" and manifest["counts"]["ok"] == 20

    # a third run copies from the second, and still names the run that computed them
    assert run("--cache") == (0, "")
    assert {r["cached"] for r in run.records()} == {first_id}
    assert calls(log).total() == 20

    # without the cache, everything runs
    assert run() == (0, "")
    assert calls(log).total() == 40
    assert {r["cached"] for r in run.records()} == {None}


def test_a_changed_instance_and_its_dependents_run_again(runs, store_tasks, tmp_path):
    log = tmp_path / "calls.log"
    run = runs(recipe_text(store_tasks, UP_DOWN.format(log=log, n=4)))
    assert run("--cache") == (0, "")
    first_id = run.latest.run_id
    assert calls(log) == Counter({"0": 1, "1": 1, "2": 1, "3": 1, "total": 1})

    # one more instance upstream: it runs, and the aggregate sees a new input
    assert run("--cache", "--set", "task.up.matrix.i=[0, 1, 2, 3, 4]") == (0, "")
    assert calls(log) == Counter({"0": 1, "1": 1, "2": 1, "3": 1, "4": 1, "total": 2})
    by = run.by_instance()
    assert by["up[i=4]"]["cached"] is None and by["up[i=0]"]["cached"] == first_id
    assert by["down"]["cached"] is None and by["down"]["value"] == 2


def test_an_upstream_rerun_with_the_same_value_leaves_dependents_cached(runs, store_tasks, tmp_path):
    log = tmp_path / "calls.log"
    run = runs(recipe_text(store_tasks, UP_DOWN.format(log=log, n=4)))
    assert run("--cache") == (0, "")
    first_id = run.latest.run_id

    assert run("--cache", "--rerun", "up") == (0, "")
    # every upstream instance ran again and returned what it did: the aggregate did not
    assert calls(log) == Counter({"0": 2, "1": 2, "2": 2, "3": 2, "total": 1})
    by = run.by_instance()
    assert by["down"]["cached"] == first_id
    assert all(by[f"up[i={i}]"]["cached"] is None for i in range(4))

    # an upstream value that changes: the aggregate runs
    assert run("--cache", "--set", "task.up.matrix.i=[0, 1, 2, 5]") == (0, "")
    assert calls(log)["total"] == 2 and calls(log)["5"] == 1


def test_a_task_whose_code_changed_runs_again(tmp_path):
    module = tmp_path / "codetasks.py"
    log = tmp_path / "calls.log"
    source = textwrap.dedent("""
        import toolkit

        def work(i: int, log: str) -> int:
            with open(log, "a") as f:
                f.write(f"{i}\\n")
            return i * FACTOR

        @toolkit.hookimpl
        def toolkit_register_tasks(registry):
            registry.add(work, name="code.work")
        """)
    module.write_text("FACTOR = 1\n" + source)
    recipe = tmp_path / "code.toml"
    recipe.write_text(
        textwrap.dedent(f"""\
        [recipe]
        name = "code"
        plugins = ["{module}"]
        [[task]]
        name = "w"
        uses = "code.work"
        params = {{ log = "{log}" }}
        matrix = {{ i = [1, 2, 3] }}
        """)
    )
    out = tmp_path / "runs"
    assert cli("run", str(recipe), "--cache", "--output", str(out)).returncode == 0
    assert cli("run", str(recipe), "--cache", "--output", str(out)).returncode == 0
    assert calls(log).total() == 3
    # not the function's own source: still cached
    module.write_text("FACTOR = 1\n# a comment\n" + source)
    assert cli("run", str(recipe), "--cache", "--output", str(out)).returncode == 0
    assert calls(log).total() == 3
    # the function changed: every instance runs again
    module.write_text("FACTOR = 1\n" + source.replace("return i * FACTOR", "return i * FACTOR + 0"))
    done = cli("run", str(recipe), "--cache", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert calls(log) == Counter({"1": 2, "2": 2, "3": 2})


def test_a_python_task_whose_module_changed_runs_again(tmp_path):
    # the module sits beside the recipe, which is run from elsewhere: nothing puts its
    # folder on the main process's sys.path, yet its source is the task's code
    folder = tmp_path / "job"
    folder.mkdir()
    log = tmp_path / "calls.log"
    module = folder / "pyhelpers_cache.py"
    source = f"def f(i):\n    open({str(log)!r}, 'a').write(f'{{i}}\\n')\n    return i\n"
    module.write_text(source)
    recipe = folder / "py.toml"
    recipe.write_text(
        '[recipe]\nname = "py"\n[run]\ncache = true\n[[task]]\nname = "t"\nuses = "python"\n'
        'params = { function = "pyhelpers_cache:f" }\nmatrix = { i = [1, 2] }\n'
    )
    out = tmp_path / "runs"
    for _ in range(2):
        assert cli("run", str(recipe), "--output", str(out), cwd=tmp_path).returncode == 0
    assert calls(log).total() == 2
    module.write_text(source.replace("return i", "return i * 10"))
    plan = cli("plan", str(recipe), "--output", str(out), cwd=tmp_path)
    assert "2 to run, 0 cached (2 code changed)" in plan.stdout, plan.stdout + plan.stderr
    assert cli("run", str(recipe), "--output", str(out), cwd=tmp_path).returncode == 0
    assert calls(log) == Counter({"1": 2, "2": 2})


def test_two_runs_at_once_share_the_cache(tmp_path, store_tasks):
    log = tmp_path / "calls.log"
    recipe = tmp_path / "twice.toml"
    recipe.write_text(recipe_text(store_tasks, MARKS.format(log=log, seconds=0.01, n=60), name="twice"))
    out = tmp_path / "runs"
    procs = [start_cli("run", str(recipe), "--cache", "--output", str(out)) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        proc.stderr.close()
    db = sqlite3.connect(out / "twice" / "cache.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT COUNT(*) FROM sources").fetchone() == (2,)
    db.close()
    before = calls(log).total()
    assert 60 <= before <= 120
    third = cli("run", str(recipe), "--cache", "--output", str(out))
    assert third.returncode == 0, third.stderr
    assert calls(log).total() == before, "the cache the two runs wrote does not serve a third"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals, /proc")
def test_after_sigkill_a_cached_run_reuses_every_finished_instance(tmp_path, store_tasks):
    n = 40
    log = tmp_path / "calls.log"
    recipe = tmp_path / "killed.toml"
    recipe.write_text(
        recipe_text(store_tasks, MARKS.format(log=log, seconds=0.05, n=n), name="killed")
        + '\n[output]\nformats = ["jsonl"]\n'
    )
    out = tmp_path / "runs"
    proc = start_cli("run", str(recipe), "--cache", "--output", str(out), "--executor", "pool")
    try:
        results = wait_for(lambda: next((out / "killed").glob("*/results.jsonl"), None), what="the run")
        wait_for(lambda: len(results.read_text().splitlines()) >= 6, what="some results")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    finished = {
        json.loads(line)["params"]["i"]
        for line in results.read_text().splitlines()
        if line.endswith("}") and json.loads(line)["status"] == "ok"
    }
    assert 6 <= len(finished) < n
    ran_before = calls(log)

    done = cli("run", str(recipe), "--cache", "--output", str(out))
    assert done.returncode == 0, done.stderr
    ran_now = calls(log) - ran_before
    assert not {int(i) for i in ran_now} & finished, "a finished instance ran again"
    assert {int(i) for i in ran_now} | finished == set(range(n))
    latest = RunDir(out / "killed" / "latest")
    cached = [r for r in latest.records() if r["cached"]]
    assert {r["params"]["i"] for r in cached} == finished


def test_open_run_gives_records_and_a_typed_frame(runs, store_tasks, tmp_path):
    import toolkit

    log = tmp_path / "calls.log"
    run = runs(recipe_text(store_tasks, UP_DOWN.format(log=log, n=4)))
    assert run("--cache") == (0, "")
    result = toolkit.open_run(run.output / "c" / "latest")
    assert result.status == "succeeded" and result.exit_code == 0
    assert result.run_id == run.latest.run_id and result.counts["ok"] == 5
    assert sorted(r["instance"] for r in result.records()) == ["down", *(f"up[i={i}]" for i in range(4))]

    pd = pytest.importorskip("pandas")
    frame = result.to_pandas()
    assert len(frame) == 5
    assert str(frame["i"].dtype) == "Int64"  # a param, typed; the aggregate has none
    assert frame.set_index("instance").loc["up[i=3]", "i"] == 3
    assert pd.api.types.is_datetime64_any_dtype(frame["started"])
    assert frame.set_index("instance").loc["down", "value"] == 2
    assert "params.log" not in frame and "log" in frame


FILE_TASKS = """
from pathlib import Path

import toolkit


def measure(path: str, out: str, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"{path}\\n")
    size = len(Path(path).read_text())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(str(size))
    return size


def add(inputs: list, log: str) -> int:
    with open(log, "a") as f:
        f.write("add\\n")
    return sum(item["value"] for item in inputs)


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(measure, name="ft.measure")
    registry.add(add, name="ft.add")
"""

FILES_RECIPE = """
[recipe]
name = "ft"
plugins = ["ft_tasks.py"]
[run]
workers = 2
cache = true
[[task]]
name = "measure"
uses = "ft.measure"
matrix = {{ path = {{ glob = "data/*.txt" }} }}
params = {{ out = "${{recipe.dir}}/out/${{matrix.path}}.n", log = "{log}" }}
outputs = ["out/${{matrix.path}}.n"]
[[task]]
name = "add"
uses = "ft.add"
needs = ["measure"]
params = {{ log = "{log}" }}
"""


@pytest.fixture
def file_recipe(tmp_path, monkeypatch):
    """A recipe over data/*.txt with outputs; runs from its own folder (``cwd``)."""
    folder = tmp_path / "proj"
    (folder / "data").mkdir(parents=True)
    for name in ("a", "b", "c"):
        path = folder / "data" / f"{name}.txt"
        path.write_text(name * 3)
        os.utime(path, (time.time() - 60, time.time() - 60))  # files made a while ago
    (folder / "ft_tasks.py").write_text(FILE_TASKS)
    log = tmp_path / "calls.log"
    recipe = folder / "ft.toml"
    recipe.write_text(FILES_RECIPE.format(log=log))
    monkeypatch.chdir(folder)
    return Runs(recipe, tmp_path / "runs"), folder, log


def plan_json(run: Runs) -> dict:
    from toolkit.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["plan", str(run.recipe), "--output", str(run.output), "--format", "json"]) == 0
    return {t["name"]: t for t in json.loads(out.getvalue())["tasks"]}


def test_an_edited_input_file_runs_its_instance_and_dependents(file_recipe):
    run, folder, log = file_recipe
    assert run() == (0, "")
    assert calls(log) == Counter({"data/a.txt": 1, "data/b.txt": 1, "data/c.txt": 1, "add": 1})
    assert run() == (0, "")
    assert calls(log).total() == 4, "the second run ran something"
    manifest = run.latest.read_manifest()
    assert manifest["cache"] == {"hits": 4, "files_read": 0}  # unchanged files are not read

    # touched, not changed: still cached
    (folder / "data" / "a.txt").write_text("aaa")
    plan = plan_json(run)
    assert plan["measure"]["run"] == 0 and plan["measure"]["cached"] == 3
    (folder / "data" / "b.txt").write_text("bbbbbb")
    plan = plan_json(run)
    assert plan["measure"]["run"] == 1 and plan["measure"]["cached"] == 2
    why = {i["id"]: i["why"] for i in plan["measure"]["instances"]}
    assert why == {
        "measure[path=data/a.txt]": None,
        "measure[path=data/b.txt]": "file changed: data/b.txt",
        "measure[path=data/c.txt]": None,
    }
    assert plan["add"]["instances"][0]["why"] == "upstream changed"

    assert run() == (0, "")
    assert calls(log) == Counter({"data/a.txt": 1, "data/b.txt": 2, "data/c.txt": 1, "add": 2})
    assert run.by_instance()["add"]["value"] == 3 + 6 + 3
    assert run.latest.read_manifest()["cache"]["files_read"] == 2  # a.txt (touched) and b.txt, once


def test_a_deleted_output_runs_its_instance_again(file_recipe):
    run, folder, log = file_recipe
    assert run() == (0, "")
    (folder / "out" / "data" / "c.txt.n").unlink()
    plan = plan_json(run)
    why = {i["id"]: i["why"] for i in plan["measure"]["instances"]}
    assert why["measure[path=data/c.txt]"] == "output missing: out/data/c.txt.n"
    assert run() == (0, "")
    # c ran again and returned what it did: the sum is taken from the cache
    assert calls(log) == Counter({"data/a.txt": 1, "data/b.txt": 1, "data/c.txt": 2, "add": 1})
    assert (folder / "out" / "data" / "c.txt.n").read_text() == "3"
    # a new file: new instance, and the sum runs
    (folder / "data" / "d.txt").write_text("dd")
    why = {i["id"]: i["why"] for i in plan_json(run)["measure"]["instances"]}
    assert why["measure[path=data/d.txt]"] == "new"
    assert run() == (0, "")
    assert calls(log)["data/d.txt"] == 1 and calls(log)["add"] == 2


def test_cache_info_and_clear(file_recipe, capsys):
    from toolkit.cli import main

    run, _folder, log = file_recipe
    assert run() == (0, "")
    capsys.readouterr()
    assert main(["cache", "info", "--recipe", str(run.recipe), "--output", str(run.output)]) == 0
    text = capsys.readouterr().out
    assert "measure" in text and "add" in text and "file digests kept: 6" in text
    # TASK after the options, as the docs' usage line writes them
    assert main(["cache", "clear", "--recipe", str(run.recipe), "--output", str(run.output), "measure"]) == 0
    assert "cleared the cache of task 'measure'" in capsys.readouterr().out
    assert run() == (0, "")
    assert calls(log)["data/a.txt"] == 2 and calls(log)["add"] == 1  # same values: the sum stays cached
    assert main(["cache", "clear", "--output", str(run.output)]) == 0
    assert run() == (0, "")
    assert calls(log)["add"] == 2


def test_plan_lists_the_instances_that_will_run_first(file_recipe, capsys, monkeypatch):
    from toolkit.builtin.commands import plan as plan_command
    from toolkit.cli import main

    run, folder, _log = file_recipe
    assert run() == (0, "")
    (folder / "data" / "c.txt").write_text("changed")
    # a task with more instances than the table shows: the one that runs is listed, and why
    monkeypatch.setattr(plan_command, "TABLE_ROWS", 1)
    monkeypatch.setattr(plan_command, "SAMPLE", 1)
    monkeypatch.setattr(plan_command, "LIST_LIMIT", 1)
    capsys.readouterr()
    assert main(["plan", str(run.recipe), "--output", str(run.output)]) == 0
    text = capsys.readouterr().out
    assert "measure[path=data/c.txt]  run: file changed: data/c.txt" in text
    assert "measure[path=data/a.txt]" not in text and "... and 2 more" in text
    sample = plan_json(run)["measure"]["sample"]
    assert [(i["id"], i["why"]) for i in sample] == [("measure[path=data/c.txt]", "file changed: data/c.txt")]


def test_a_damaged_cache_is_one_error_that_says_how_to_go_on(runs, store_tasks, tmp_path):
    log = tmp_path / "calls.log"
    run = runs(recipe_text(store_tasks, MARKS.format(log=log, seconds=0, n=3)))
    assert run("--cache") == (0, "")
    db = run.output / "c" / "cache.db"
    for extra in db.parent.glob("cache.db-*"):
        extra.unlink()
    db.write_text("not a database\n")
    code, err = run("--cache")
    assert code == 2 and "Traceback" not in err
    assert f"the cache {db} cannot be used" in err and "--no-cache" in err and "remove" in err
    assert run("--no-cache") == (0, "")
    db.unlink()
    assert run("--cache") == (0, "")
