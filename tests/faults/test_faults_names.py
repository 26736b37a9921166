"""Nothing an instance id holds makes toolkit write outside the run directory: log (and
scratch) names are safe, unique and at most 255 bytes on every file system, and a task
that changes directory moves neither its log nor its scratch directory."""

from __future__ import annotations

import json

from faults_helpers import only_run, recipe_text, run_toolkit, strict_records
from hypothesis import given
from hypothesis import strategies as st

from toolkit.store.names import log_name, safe_name

WORDS = [
    "a/b",
    "a_b",
    "x" * 300 + "1",
    "x" * 300 + "2",
    "Upper",
    "upper",
    "../../escape",
    "é",
    "e\u0301",
    " ",
]


@given(st.lists(st.text(min_size=1, max_size=400), min_size=2, max_size=5, unique=True))
def test_log_names_are_safe_unique_and_short(ids):
    names = [log_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert len({n.lower() for n in names}) == len(ids)  # unique where case folds too
    for name in names:
        assert len(name.encode()) <= 255 and name.isascii()
        assert "/" not in name and "\0" not in name and not name.startswith((".", "-"))


def test_plain_ids_are_their_own_names():
    assert safe_name("estimate[seed=0,method=plain]") == "estimate[seed=0,method=plain]"
    assert safe_name("a/b") != safe_name("a_b") and safe_name("a/b").startswith("a_b~")


def test_every_failure_has_its_own_log_and_show_names_it(folder):
    task = f'[[task]]\nname = "t"\nuses = "faults.echo"\nmatrix = {{ word = {json.dumps(WORDS)}, fail = [true, false] }}\n'
    (folder / "r.toml").write_text(recipe_text("r", task, run='executor = "pool"\nkeep_going = true'))
    res = run_toolkit(folder, "run", "r.toml", "-q")
    assert res.returncode == 1, res.stderr
    run = only_run(folder / "out", "r")
    assert [p.name for p in folder.iterdir() if p.name not in ("out", "r.toml", "faults_tasks.py")] == []
    logs = sorted((run / "logs").iterdir())
    assert len(logs) == 2 * len(WORDS)  # no two instances share a log
    records = strict_records(run / "results.jsonl")
    assert sorted(r["status"] for r in records) == ["failed"] * len(WORDS) + ["ok"] * len(WORDS)
    for rec in records:
        text = (run / "logs" / log_name(rec["instance"])).read_text()
        assert f"word: {rec['params']['word']}\n" in text
    shown = run_toolkit(folder, "show", str(run)).stdout.decode()
    named = [line.split("log: ", 1)[1] for line in shown.splitlines() if "log: " in line]
    failed = [run / "logs" / log_name(r["instance"]) for r in records if r["status"] == "failed"]
    assert sorted(named) == sorted(str(p) for p in failed)


def test_a_task_that_changes_directory_keeps_its_log_and_scratch(folder):
    task = '[[task]]\nname = "c"\nuses = "faults.chdir_away"\nmatrix = { i = { range = [0, 6] } }\n'
    (folder / "r.toml").write_text(recipe_text("r", task, run='executor = "pool"'))
    res = run_toolkit(folder, "run", "r.toml", "-q", "-j", "1", "--output", "out")  # a relative output dir
    assert res.returncode == 0, res.stderr
    run = only_run(folder / "out", "r")
    assert len(list((run / "logs").iterdir())) == 6
    assert sorted((run / "scratch").iterdir()) and all(
        (d / "file").exists() for d in (run / "scratch").iterdir()
    )
    assert not (folder.parent / "out").exists() and not (folder.parent / "logs").exists()
