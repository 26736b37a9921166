"""The results cache copying a whole task from an earlier run (the ``sealed`` shortcut of
toolkit.store.cache), with real runs and files: the copy is the source's records, marked,
whatever the pieces it is read in; a source changed since is not trusted; runs deleted
since do not hide an older one.

Executions are counted with a file each task appends to, not from toolkit's output.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sqlite3
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from toolkit.errors import RunError
from toolkit.store import cache as cache_module
from toolkit.store.cache import mark_cached, open_sealed, sealed_chunks

N = 30


class Recipe:
    """One recipe file, run in this process into one output folder."""

    def __init__(self, folder: Path, store_tasks: Path, body: str) -> None:
        self.log = folder / "calls.log"
        self.path = folder / "recipe.toml"
        self.out = folder / "runs"
        head = f'[recipe]\nname = "copy"\nplugins = ["{store_tasks}"]\n[run]\nworkers = 2\n'
        self.path.write_text(head + textwrap.dedent(body).format(log=self.log))

    def run(self, *args: str) -> int:
        from toolkit.cli import main

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return main(["run", str(self.path), "--output", str(self.out), "-q", *args])

    def latest(self) -> Path:
        return (self.out / "copy" / "latest").resolve()

    def calls(self) -> Counter:
        return Counter(self.log.read_text().splitlines()) if self.log.exists() else Counter()

    def sealed(self) -> dict[str, str]:
        db = sqlite3.connect(self.out / "copy" / "cache.db")
        try:
            return dict(db.execute("SELECT run, marks FROM sealed"))
        finally:
            db.close()


MARKS = f"""
[[task]]
name = "m"
uses = "store.mark"
params = {{{{ log = "{{log}}" }}}}
matrix = {{{{ i = {{{{ range = [0, {N}] }}}} }}}}
"""


@pytest.fixture
def marks(tmp_path, store_tasks) -> Recipe:
    return Recipe(tmp_path, store_tasks, MARKS)


@pytest.mark.parametrize(
    "chunk", [cache_module.CHUNK, 1000, 100], ids=["default", "lines-across", "long-lines"]
)
def test_a_whole_task_is_copied_as_its_source_wrote_it(marks, monkeypatch, chunk):
    # pieces smaller than the file (lines across two pieces), smaller than a line
    monkeypatch.setattr(cache_module, "CHUNK", chunk)
    assert marks.run("--cache") == 0
    first = marks.latest()
    assert marks.sealed() == {first.name: "null"}
    assert marks.run("--cache") == 0
    second = marks.latest()
    assert marks.run("--cache") == 0
    third = marks.latest()
    assert marks.calls().total() == N, "an instance ran again"

    # the copy is every line of the source, in its order, "cached" naming the first run
    source = (first / "results.jsonl").read_bytes().splitlines()
    named = json.dumps(first.name).encode()
    copied = (second / "results.jsonl").read_bytes()
    assert copied == b"".join(mark_cached(line, named) + b"\n" for line in source)
    # a copy of a copy still names the run that computed the records
    assert (third / "results.jsonl").read_bytes() == copied
    assert marks.sealed() == {first.name: "null", second.name: "named", third.name: "named"}
    manifest = (third / "manifest.toml").read_text()
    assert f"hits = {N}" in manifest and 'status = "succeeded"' in manifest


def test_a_source_changed_since_it_ended_is_read_record_by_record(marks):
    assert marks.run("--cache") == 0
    results = marks.latest() / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(b"".join(line for line in lines if b'"instance": "m[i=7]"' not in line))

    assert marks.run("--cache") == 0
    assert marks.calls() == Counter({**{str(i): 1 for i in range(N)}, "7": 2})
    records = [json.loads(line) for line in (marks.latest() / "results.jsonl").read_text().splitlines()]
    assert sorted(r["params"]["i"] for r in records) == list(range(N))
    assert [r["params"]["i"] for r in records if r["cached"] is None] == [7]


def test_runs_deleted_since_do_not_hide_an_older_one(marks):
    assert marks.run("--cache") == 0
    first = marks.latest()
    later = []
    for _ in range(cache_module.MAX_SOURCES + 1):
        assert marks.run("--cache") == 0
        later.append(marks.latest())
    for run_dir in later:
        shutil.rmtree(run_dir)
    assert marks.run("--cache") == 0
    assert marks.calls().total() == N, "the older run's records were not found"
    records = (marks.latest() / "results.jsonl").read_text().splitlines()
    assert {json.loads(line)["cached"] for line in records} == {first.name}


def test_only_a_run_of_one_task_with_every_instance_ok_is_sealed(tmp_path, store_tasks):
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "3").touch()
    failing = Recipe(
        tmp_path,
        store_tasks,
        f"""
        [[task]]
        name = "f"
        uses = "store.fail_if_flagged"
        params = {{{{ log = "{{log}}", flags = "{flags}" }}}}
        matrix = {{{{ i = {{{{ range = [0, 6] }}}} }}}}
        """,
    )
    assert failing.run("--cache", "--keep-going") == 1
    assert failing.sealed() == {}
    (flags / "3").unlink()
    assert failing.run("--cache") == 0  # the five ok ones copied, one by one
    assert failing.calls() == Counter({**{str(i): 1 for i in range(6)}, "3": 2})
    assert list(failing.sealed()) == [failing.latest().name]


def _sealed_file(path: Path, lines: list[bytes], marks: str) -> tuple:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    st = path.stat()
    return (len(lines), st.st_size, st.st_mtime_ns, st.st_ino, marks)


def _record(i: int, cached: str | None, value_size: int = 10) -> bytes:
    rec = {"task": "t", "instance": f"t[i={i}]", "key": f"{i:020x}", "params": {"i": i}, "status": "ok"}
    rec.update(value="x" * value_size, cached=cached)
    return json.dumps(rec).encode()


@pytest.mark.parametrize("marks", ["null", "named", ""])
@pytest.mark.parametrize("chunk", [64, 256, 1 << 16])
def test_sealed_pieces_are_whole_lines_marked(tmp_path, monkeypatch, marks, chunk):
    monkeypatch.setattr(cache_module, "CHUNK", chunk)
    cached = {"null": [None], "named": ["old-run"], "": [None, "old-run"]}[marks]
    lines = [_record(i, cached[i % len(cached)], value_size=(i * 37) % 300) for i in range(40)]
    path = tmp_path / "results.jsonl"
    seal = _sealed_file(path, lines, marks)
    f = open_sealed(path, seal)
    assert f is not None
    pieces = list(sealed_chunks(f, seal, b'"new-run"'))
    assert f.closed
    assert all(data.endswith(b"\n") and data.count(b"\n") == n for data, n in pieces)
    assert b"".join(data for data, _n in pieces) == b"".join(
        mark_cached(line, b'"new-run"') + b"\n" for line in lines
    )


def test_a_sealed_file_that_is_not_what_its_seal_says(tmp_path):
    path = tmp_path / "results.jsonl"
    seal = _sealed_file(path, [_record(i, None) for i in range(5)], "null")
    with open(path, "ab") as f:
        f.write(_record(5, None) + b"\n")
    assert open_sealed(path, seal) is None  # changed since: not trusted

    seal = _sealed_file(path, [_record(i, None) for i in range(5)], "null")
    wrong = (6, *seal[1:])  # a count that does not hold: the copy ends in an error
    with pytest.raises(RunError, match="changed while it was copied"):
        list(sealed_chunks(open_sealed(path, wrong), wrong, b'"new-run"'))


def test_plan_counts_a_whole_cached_task_and_what_changed_since(marks, capsys):
    from toolkit.cli import main

    def plan() -> dict:
        capsys.readouterr()
        assert main(["plan", str(marks.path), "--output", str(marks.out), "--cache", "--format", "json"]) == 0
        (task,) = json.loads(capsys.readouterr().out)["tasks"]
        return task

    assert marks.run("--cache") == 0
    task = plan()
    assert (task["run"], task["cached"], task["why"]) == (0, N, {})
    assert all(row["cached"] for row in task["instances"])

    results = marks.latest() / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(b"".join(line for line in lines if b'"instance": "m[i=0]"' not in line))
    task = plan()
    assert (task["run"], task["cached"]) == (1, N - 1)
    assert [row["cached"] for row in task["instances"][:2]] == [False, True]


def test_ok_records_of_each_task_in_a_file_of_many_tasks(tmp_path):
    from toolkit.store.cache import ok_lines, ok_lines_in, read_tasks

    def rec(task: str, i: int, status: str = "ok", **extra) -> dict:
        return {"task": task, "instance": f"{task}[i={i}]", "key": f"{task[0]}{i:019x}", "params": {"i": i},
                "status": status, **extra, "cached": None}  # fmt: skip

    records = [
        rec("a", 0),
        rec("b.x", 0),
        rec("a", 1, "failed"),
        rec("a", 2),
        rec("b.x", 1),
        rec("a", 1),  # ok after it failed: taken
        rec("a", 2, "failed"),  # failed after ok: the ok one is not
        rec("a", 3),
    ]
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in records]
    # a record laid out otherwise (fields in another order) is read as JSON
    lines.append(
        json.dumps({"status": "ok", "key": "a" + "4".zfill(19), "task": "a", "cached": None}).encode()
    )
    path = tmp_path / "results.jsonl"
    path.write_bytes(b"\n".join(lines) + b'\n{"task": "a", "instance": "a[i=5]", "ke')  # torn tail
    groups = read_tasks(path)
    expect_a = {r["key"] for r in records[:6] if r["task"] == "a"} - {"a" + "2".zfill(19)}
    expect_a |= {"a" + "3".zfill(19), "a" + "4".zfill(19)}
    assert set(ok_lines_in(groups, "a")) == set(ok_lines(path, "a")) == expect_a
    assert ok_lines_in(groups, "a")["a" + "1".zfill(19)] == lines[5]
    assert set(ok_lines_in(groups, "b.x")) == {"b" + "0".zfill(19), "b" + "1".zfill(19)}
    assert ok_lines_in(groups, "c") == {}
    # a file of one task, every record ok
    path.write_bytes(b"\n".join(json.dumps(rec("a", i)).encode() for i in range(5)) + b"\n")
    assert list(read_tasks(path)) == [b"a"]
    assert sorted(ok_lines(path, "a")) == ["a" + str(i).zfill(19) for i in range(5)]
