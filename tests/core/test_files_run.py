"""Files and paths as a user meets them: real files, real worker processes.

A recipe gives the same records from any directory; instances run in ``run.workdir``
under every executor and start method (also after a task changed directory); the
``python`` built-in imports from the recipe's folder; ``shell`` keeps each value one
argument; a declared output that is missing fails the attempt (``MissingOutput``);
file sources give one instance per file, line or row.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import toolkit

NAMES = ["plain.csv", "with space.csv", "it's.csv", "ünï ✓.csv", 'dq"uote.csv']
#: fields that differ between two runs of the same instances
VOLATILE = ("started", "finished", "duration_s", "worker", "peak_rss_mib")

HELPERS = '''
import os


def where(n, hop=False):
    """The working directory this instance started in; ``hop`` wanders off after."""
    here = os.getcwd()
    if hop:
        os.chdir("/")
    return here


def measure(path, out):
    """Count the lines of ``path`` (relative to the working directory) into ``out``."""
    with open(path, encoding="utf-8") as f:
        n = sum(1 for _ in f)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(str(n))
    return n


def total(inputs, scale=1):
    """The sum of the upstream values, times ``scale``."""
    return scale * sum(item["value"] for item in inputs)


def sometimes(name, out, marker):
    """Write ``out`` only on the second attempt (attempts counted in ``marker``)."""
    with open(marker, "a") as f:
        f.write("x")
    with open(marker) as f:
        attempt = len(f.read())
    if name == "late" and attempt >= 2:
        with open(out, "w") as f:
            f.write("done")
    return attempt
'''


def make_job(folder: Path, recipe: str, data: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "helpers.py").write_text(HELPERS)
    for name, text in (data or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    path = folder / "job.toml"
    path.write_text(textwrap.dedent(recipe), encoding="utf-8")
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def stable(recs: list[dict]) -> list[dict]:
    return sorted(
        ({k: v for k, v in r.items() if k not in VOLATILE} for r in recs), key=lambda r: r["instance"]
    )


MEASURE = """
    [recipe]
    name = "measure"
    [run]
    workers = 2
    [[task]]
    name = "count"
    uses = "python"
    params = { function = "helpers:measure", path = "${matrix.path}", out = "out/${matrix.path}.n" }
    matrix = { path = { glob = "data/**/*.csv" } }
    outputs = ["out/${matrix.path}.n"]
    [[task]]
    name = "wc"
    uses = "shell"
    params = { cmd = "wc -l ${matrix.path}" }
    matrix = { path = { glob = "data/**/*.csv" } }
"""


def test_a_recipe_gives_the_same_records_from_any_directory(tmp_path):
    data = {f"data/{name}": "a\n" * (i + 1) for i, name in enumerate(NAMES)}
    job = make_job(tmp_path / "project" / "job", MEASURE, data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    runs = []
    for cwd, recipe in [
        (job.parent, "job.toml"),
        (tmp_path / "project", "job/job.toml"),
        (elsewhere, str(job)),
    ]:
        shutil.rmtree(job.parent / "out", ignore_errors=True)
        out = tmp_path / f"runs{len(runs)}"
        proc = cli("run", recipe, "-q", "--output", str(out), cwd=cwd)
        assert proc.returncode == 0, proc.stderr
        # the outputs land beside the recipe, whatever the current directory
        assert sorted(p.name for p in (job.parent / "out" / "data").iterdir()) == sorted(
            f"{n}.n" for n in NAMES
        )
        runs.append(records(out / "measure" / "latest"))
    assert len(runs[0]) == 2 * len(NAMES)
    assert stable(runs[0]) == stable(runs[1]) == stable(runs[2])
    by = {r["instance"]: r for r in runs[2]}
    for i, name in enumerate(NAMES):
        assert by[f"count[path=data/{name}]"]["value"] == i + 1
        # a value with spaces and quotes is one argument of wc
        assert by[f"wc[path=data/{name}]"]["value"]["stdout"] == f"{i + 1} data/{name}\n"


WHERE = """
    [recipe]
    name = "where"
    [run]
    workdir = "work/here"
    executor = "{executor}"
    start_method = "{method}"
    workers = 2
    [[task]]
    name = "w"
    uses = "python"
    params = {{ function = "helpers:where", hop = true }}
    matrix = {{ n = {{ range = [0, 6] }} }}
"""

EXECUTORS = [
    ("pool", "fork"),
    ("pool", "forkserver"),
    ("pool", "spawn"),
    ("process", "fork"),
    ("process", "spawn"),
]


@pytest.mark.parametrize(("executor", "method"), EXECUTORS, ids=[f"{e}-{m}" for e, m in EXECUTORS])
def test_every_instance_runs_in_the_workdir_and_python_imports_beside_the_recipe(
    tmp_path, monkeypatch, executor, method
):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    job = make_job(tmp_path / "job", WHERE.format(executor=executor, method=method))
    monkeypatch.chdir(tmp_path)  # not the recipe's folder, and not the workdir
    result = toolkit.run(job, output=tmp_path / "runs")
    assert result.status == "succeeded", [r["error"] for r in result.records()]
    values = [r["value"] for r in result.records()]
    # each instance wandered off to / after reading its cwd: the next still starts in the workdir
    assert values == [str(tmp_path / "job" / "work" / "here")] * 6
    assert os.getcwd() == str(tmp_path)


def test_shell_values_are_one_argument_in_both_modes(tmp_path):
    data = {f"data/{name}": f"content of {name}\n" for name in NAMES}
    job = make_job(
        tmp_path / "job",
        """
        [recipe]
        name = "quoting"
        [vars]
        extra = "data/it's.csv"
        [[task]]
        name = "words"
        uses = "shell"
        params = { cmd = "cat ${matrix.path} ${vars.extra}" }
        matrix = { path = { glob = "data/*.csv" } }
        [[task]]
        name = "shell"
        uses = "shell"
        params = { cmd = "cat ${matrix.path} ${vars.extra} | sed 's/^/> /'", shell = true }
        matrix = { path = { glob = "data/*.csv" } }
        """,
        data,
    )
    result = toolkit.run(job, output=tmp_path / "runs")
    assert result.status == "succeeded", [r["error"] for r in result.records()]
    by = {r["instance"]: r["value"]["stdout"] for r in result.records()}
    assert len(by) == 2 * len(NAMES)
    for name in NAMES:
        both = f"content of {name}\ncontent of it's.csv\n"
        assert by[f"words[path=data/{name}]"] == both
        assert by[f"shell[path=data/{name}]"] == f"> content of {name}\n> content of it's.csv\n"


def test_a_missing_declared_output_fails_the_attempt_and_retries_apply(tmp_path):
    job = make_job(
        tmp_path / "job",
        """
        [recipe]
        name = "outputs"
        [run]
        keep_going = true
        [[task]]
        name = "t"
        uses = "python"
        params = { function = "helpers:sometimes", out = "made/${matrix.name}.txt", marker = "tries/${matrix.name}" }
        matrix = { name = ["late", "never"] }
        outputs = ["made/${matrix.name}.txt"]
        retries = 1
        """,
        {"made/.keep": "", "tries/.keep": ""},
    )
    result = toolkit.run(job, output=tmp_path / "runs")
    assert result.status == "failed"
    by = {r["instance"]: r for r in result.records()}
    late, never = by["t[name=late]"], by["t[name=never]"]
    assert (late["status"], late["attempts"], late["value"]) == ("ok", 2, 2)
    assert never["status"] == "failed" and never["attempts"] == 2
    assert never["error"]["type"] == "MissingOutput"
    assert "made/never.txt" in never["error"]["message"]
    # the task itself ran twice for each (the attempts it counted in its own files)
    assert (tmp_path / "job" / "tries" / "late").read_text() == "xx"
    assert (tmp_path / "job" / "tries" / "never").read_text() == "xx"
    log = (result.run_dir / "logs" / "t[name=never].log").read_text()
    assert "MissingOutput" in log


def test_file_sources_give_one_instance_per_file_line_and_row(tmp_path):
    data = {f"data/{name}": "x\n" for name in NAMES}
    data["names.txt"] = "# one per line\n" + "\n".join(NAMES) + "\n\n"
    data["jobs.csv"] = 'name,size\n"with space.csv",3\n"it\'s.csv",0.5\nünï ✓.csv,true\n'
    data["jobs.jsonl"] = "\n".join(json.dumps({"name": n, "size": i}) for i, n in enumerate(NAMES)) + "\n"
    for kind in ("glob/data", "lines", "csv", "jsonl"):
        data[f"marks/{kind}/.keep"] = ""
    job = make_job(
        tmp_path / "job",
        """
        [recipe]
        name = "sources"
        [[task]]
        name = "glob"
        uses = "shell"
        params = { cmd = "touch marks/glob/${matrix.path}" }
        matrix = { path = { glob = "data/*.csv" } }
        [[task]]
        name = "lines"
        uses = "shell"
        params = { cmd = "touch marks/lines/${matrix.name}" }
        matrix = { name = { lines = "names.txt" } }
        [[task]]
        name = "csv"
        uses = "shell"
        params = { cmd = "touch marks/csv/${matrix.name}-${matrix.size}" }
        matrix.include = { csv = "jobs.csv" }
        [[task]]
        name = "jsonl"
        uses = "shell"
        params = { cmd = "touch marks/jsonl/${matrix.name}-${matrix.size}", shell = true }
        matrix.include = { jsonl = "jobs.jsonl" }
        """,
        data,
    )
    result = toolkit.run(job, output=tmp_path / "runs")
    assert result.status == "succeeded", [r["error"] for r in result.records()]
    assert len(result.records()) == 3 * len(NAMES) + 3

    def made(kind: str) -> set[str]:
        return {p.name for p in (tmp_path / "job" / "marks" / kind).iterdir()} - {".keep", "data"}

    assert made("glob/data") == set(NAMES)
    assert made("lines") == set(NAMES)
    assert made("csv") == {"with space.csv-3", "it's.csv-0.5", "ünï ✓.csv-true"}
    assert made("jsonl") == {f"{n}-{i}" for i, n in enumerate(NAMES)}


def test_resume_runs_the_instances_of_the_first_start_after_files_were_added(tmp_path):
    job = make_job(
        tmp_path / "job",
        """
        [recipe]
        name = "pinned"
        [run]
        keep_going = true
        [[task]]
        name = "t"
        uses = "shell"
        params = { cmd = "sh -c 'test ! -e $1.fail && touch done-$1' - ${matrix.path}" }
        matrix = { path = { glob = "*.csv" } }
        """,
        {"a.csv": "", "b.csv": "", "b.csv.fail": ""},
    )
    first = cli("run", "job.toml", "-q", "--output", "runs", cwd=job.parent)
    assert first.returncode == 1, first.stderr
    (job.parent / "b.csv.fail").unlink()
    (job.parent / "c.csv").write_text("")  # new since the first start: not part of that run
    again = cli("run", "job.toml", "-q", "--output", "runs", "--resume", cwd=job.parent)
    assert again.returncode == 0, again.stderr
    recs = records(job.parent / "runs" / "pinned" / "latest")
    assert sorted({r["instance"] for r in recs}) == ["t[path=a.csv]", "t[path=b.csv]"]
    assert sorted(p.name for p in job.parent.glob("done-*")) == ["done-a.csv", "done-b.csv"]
    # a new run reads the folder again
    new = cli("run", "job.toml", "-q", "--output", "runs", cwd=job.parent)
    assert new.returncode == 0, new.stderr
    assert (job.parent / "done-c.csv").exists()


def test_an_output_naming_a_key_the_instance_lacks_fails_that_instance_only(tmp_path):
    job = make_job(
        tmp_path / "job",
        """
        [recipe]
        name = "lacks"
        [run]
        keep_going = true
        [[task]]
        name = "t"
        uses = "shell"
        params = { cmd = "touch made-${matrix.n}" }
        matrix = { n = [1, 2], include = [{ n = 1, tag = "x" }] }
        outputs = ["made-${matrix.tag}"]
        """,
    )
    result = toolkit.run(job, output=tmp_path / "runs")
    by = {r["instance"]: r for r in result.records()}
    assert by["t[n=1,tag=x]"]["status"] == "failed"  # made-1 is not made-x
    assert by["t[n=1,tag=x]"]["error"]["type"] == "MissingOutput"
    assert by["t[n=2]"]["status"] == "failed"
    assert "no matrix value 'tag'" in by["t[n=2]"]["error"]["message"]


def test_a_python_task_that_needs_others_receives_inputs(tmp_path):
    job = make_job(
        tmp_path / "job",
        """
        [recipe]
        name = "agg"
        [[task]]
        name = "count"
        uses = "python"
        params = { function = "helpers:measure", out = "out/${matrix.path}.n" }
        matrix = { path = { glob = "data/*.csv" } }
        [[task]]
        name = "sum"
        uses = "python"
        params = { function = "helpers:total", scale = 10 }
        needs = ["count"]
        """,
        {"data/a.csv": "1\n", "data/b.csv": "1\n2\n"},
    )
    result = toolkit.run(job, output=tmp_path / "runs")
    assert result.status == "succeeded", [r["error"] for r in result.records()]
    by = {r["instance"]: r for r in result.records()}
    assert by["sum"]["value"] == 30
    assert "inputs" not in by["sum"]["params"]


def test_a_file_name_that_is_not_utf8_is_one_clear_error(tmp_path):
    job = make_job(
        tmp_path / "job",
        """
        [recipe]
        name = "names"
        [run]
        cache = true
        [[task]]
        name = "t"
        uses = "shell"
        params = { cmd = "true" }
        files = ["data/*.csv"]
        """,
        {"data/ok.csv": ""},
    )
    (job.parent / "data" / os.fsdecode(b"caf\xe9.csv")).write_text("")
    for command in ("plan", "run"):
        done = cli(command, str(job), "--output", str(tmp_path / "runs"), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "task.t.files: the file name data/caf\\xe9.csv is not valid UTF-8" in done.stderr
        assert "Traceback" not in done.stderr
