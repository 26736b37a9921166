"""Matrix values from files (glob, lines, csv, jsonl), ``files``/``outputs``, paths.

Real files in a temporary folder; every bad source is one error naming the source file
(and line), exit code 2, through the command line.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from toolkit.cli import main
from toolkit.recipe import read_recipe
from toolkit.recipe.model import TaskSpec
from toolkit.recipe.sources import cell_value, pin_sources, sources_table

NAMES = ["plain.csv", "with space.csv", "it's.csv", "ünïcode ✓.csv", 'dq"uote.csv']


def write(folder, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def recipe_at(folder, matrix: str, extra: str = "", *, head: str = "", params: str = '{ cmd = "echo" }'):
    """``recipe.toml`` in ``folder``: one shell task ``t`` (its matrix on line 8)."""
    text = f"""\
[recipe]
name = "src"
{head}
[[task]]
name = "t"
uses = "shell"
params = {params}
matrix = {matrix}
{extra}
"""
    (folder / "recipe.toml").parent.mkdir(parents=True, exist_ok=True)
    (folder / "recipe.toml").write_text(text, encoding="utf-8")
    return folder / "recipe.toml"


def instances(spec) -> list[dict]:
    return [c for _, c in spec.iter_combos()]


def test_glob_gives_one_instance_per_file_sorted_relative_to_the_recipe(tmp_path, monkeypatch):
    job = tmp_path / "job"
    write(job, {f"data/{n}": "x\n" for n in NAMES})
    write(job, {"data/deep/er/z.csv": "", "data/not-a-csv.txt": "", "data/.hidden.csv": ""})
    (job / "data" / "dir.csv").mkdir()  # a directory is not a file
    path = recipe_at(job, '{ path = { glob = "data/**/*.csv" } }')
    monkeypatch.chdir(tmp_path)  # the recipe is read from its parent folder
    spec = read_recipe(os.path.relpath(path)).task("t")
    expected = sorted([*(f"data/{n}" for n in NAMES), "data/deep/er/z.csv"])
    assert [c["path"] for c in instances(spec)] == expected
    assert spec.sources == (("path", {"glob": "data/**/*.csv"}),)
    assert spec.file_axes == ("path",)


def test_glob_of_directories_ends_with_a_slash(tmp_path):
    write(tmp_path, {"s/a/x": "", "s/b/x": "", "s/file": ""})
    spec = read_recipe(recipe_at(tmp_path, '{ sample = { glob = "s/*/" } }')).task("t")
    assert [c["sample"] for c in instances(spec)] == ["s/a", "s/b"]


def test_lines_skip_blank_and_comment_lines_and_keep_order(tmp_path):
    write(tmp_path, {"list.txt": "# names\nzeta\n\n  it's here  \n   # indented comment\nalpha ✓\n"})
    spec = read_recipe(recipe_at(tmp_path, '{ name = { lines = "list.txt" } }')).task("t")
    assert [c["name"] for c in instances(spec)] == ["zeta", "it's here", "alpha ✓"]


def test_csv_rows_are_include_entries_typed_as_toml_reads_them(tmp_path):
    write(
        tmp_path,
        {
            "jobs.csv": """\
            seed,rate,big,flag,name,when,code
            3,0.5,1_000,true,"my file's.csv",2024-01-02,007
            -4,1e3,+7,false,"a,b",x,inf
            """
        },
    )
    spec = read_recipe(recipe_at(tmp_path, '{ include = { csv = "jobs.csv" } }')).task("t")
    rows = instances(spec)
    assert rows == [
        {
            "seed": 3,
            "rate": 0.5,
            "big": 1000,
            "flag": True,
            "name": "my file's.csv",
            "when": "2024-01-02",
            "code": "007",
        },
        {"seed": -4, "rate": 1000.0, "big": 7, "flag": False, "name": "a,b", "when": "x", "code": "inf"},
    ]
    assert type(rows[0]["seed"]) is int and type(rows[1]["rate"]) is float


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("3", 3),
        ("0.5", 0.5),
        ("true", True),
        ("True", "True"),
        ("", ""),
        ("nan", "nan"),
        ("3 # x", "3 # x"),
        ("1e2", 100.0),
    ],
)
def test_cell_values(cell, value):
    assert cell_value(cell) == value and type(cell_value(cell)) is type(value)


def test_jsonl_lines_are_include_entries_beside_axes(tmp_path):
    write(tmp_path, {"jobs.jsonl": '{"seed": 1, "tag": "x"}\n\n{"seed": 9, "opts": {"a": [1, 2]}}\n'})
    spec = read_recipe(recipe_at(tmp_path, '{ seed = [1, 2], include = { jsonl = "jobs.jsonl" } }')).task("t")
    assert instances(spec) == [{"seed": 1, "tag": "x"}, {"seed": 2}, {"seed": 9, "opts": {"a": [1, 2]}}]


def test_sources_are_resolved_in_the_manifest_table_and_pinned_on_resume(tmp_path):
    write(tmp_path, {"data/a.csv": "", "data/b.csv": ""})
    path = recipe_at(tmp_path, '{ path = { glob = "data/*.csv" } }')
    first = read_recipe(path)
    manifest = {"resolved": first.to_table(), "sources": sources_table(first)}
    assert manifest["resolved"]["task"][0]["matrix"] == {"path": ["data/a.csv", "data/b.csv"]}
    assert manifest["sources"] == {"t.path": {"glob": "data/*.csv"}}
    write(tmp_path, {"data/c.csv": ""})  # added since the first start
    again = read_recipe(path)
    assert again.task("t").count() == 3
    pinned = pin_sources(again, manifest)
    assert pinned.task("t").matrix == first.task("t").matrix
    assert pinned.task("t").count() == 2
    # a source written differently is not pinned: the run's instances changed
    changed = read_recipe(recipe_at(tmp_path, '{ path = { glob = "data/[ac].csv" } }'))
    assert pin_sources(changed, manifest).task("t").matrix == {"path": ["data/a.csv", "data/c.csv"]}


# -- files, outputs, ${recipe.dir}, workdir -------------------------------------------


def test_files_and_outputs_per_instance(tmp_path):
    write(tmp_path, {"data/a.csv": "", "data/b.csv": "", "ref/x.txt": "", "ref/y.txt": ""})
    path = recipe_at(
        tmp_path,
        '{ path = { glob = "data/*.csv" } }',
        'files = ["ref/*.txt", "./config.toml", "${recipe.dir}/ref/x.txt", "$${literal}"]\n'
        'outputs = ["out/${matrix.path}.json", "log/done"]',
    )
    recipe = read_recipe(path)
    spec = recipe.task("t")
    params = spec.params_for({"path": "data/a.csv"})
    assert spec.has_files
    assert spec.input_files(params, recipe.base_dir) == (
        "ref/x.txt",
        "ref/y.txt",
        "config.toml",  # kept although missing: the fingerprint says so
        str(tmp_path / "ref" / "x.txt"),
        "${literal}",
        "data/a.csv",  # the glob axis' value
    )
    assert spec.output_files(params) == ("out/data/a.csv.json", "log/done")
    view = spec.for_worker()
    assert view.output_files(params) == spec.output_files(params)
    assert TaskSpec.from_view(view) == spec


def test_a_matrix_value_in_files_is_a_name_not_a_pattern(tmp_path):
    # a file named x[1].csv: as a pattern it would match x1.csv, and edits to it go unseen
    write(tmp_path, {"data/x[1].csv": "", "data/x1.csv": "", "data/y*.csv": "", "data/yz.csv": ""})
    write(tmp_path, {"names.txt": "x[1].csv\ny*.csv\n"})
    path = recipe_at(
        tmp_path,
        '{ name = { lines = "names.txt" } }',
        'files = ["data/${matrix.name}", "data/${matrix.name}*"]',
    )
    recipe = read_recipe(path)
    spec = recipe.task("t")
    inputs = [spec.input_files(spec.params_for({"name": n}), recipe.base_dir) for n in ("x[1].csv", "y*.csv")]
    assert inputs == [("data/x[1].csv",), ("data/y*.csv",)]


def test_recipe_dir_and_workdir(tmp_path, monkeypatch):
    write(tmp_path, {"job/sub/.keep": ""})
    recipe_at(
        tmp_path / "job",
        "{ x = [1] }",
        head='[run]\nworkdir = "sub"\ncache = true',
        params='{ cmd = "echo", where = "${recipe.dir}" }',
    )
    monkeypatch.chdir(tmp_path)
    recipe = read_recipe("job/recipe.toml")
    assert recipe.base_dir == tmp_path / "job"
    assert recipe.workdir == tmp_path / "job" / "sub"
    assert recipe.run.cache is True and recipe.uses_cache(recipe.task("t")) is True
    assert recipe.task("t").params["where"] == str(tmp_path / "job")


def test_a_task_cache_key_wins_over_the_run(tmp_path):
    recipe = read_recipe(recipe_at(tmp_path, "{ x = [1] }", "cache = false"))
    assert recipe.run.cache is False and recipe.task("t").cache is False
    assert recipe.uses_cache(recipe.task("t")) is False


def test_shell_cmd_is_split_into_words_before_values_are_filled_in(tmp_path):
    path = recipe_at(
        tmp_path,
        '{ path = ["my file\'s.csv"] }',
        head='[vars]\nv = "a b"',
        params="{ cmd = \"wc -l '${matrix.path}' ${vars.v} x\\\\ y $${HOME}\" }",
    )
    spec = read_recipe(path).task("t")
    params = spec.params_for({"path": "my file's.csv"})
    assert params["cmd"] == ["wc", "-l", "my file's.csv", "a b", "x y", "${HOME}"]


# -- every bad source: one error, with file and line, exit 2 ---------------------------

BAD = [
    (
        "glob-no-match",
        '{ p = { glob = "nothing/*.csv" } }',
        {},
        ["recipe.toml:8:", "'nothing/*.csv' matches no file"],
    ),
    ("lines-missing", '{ p = { lines = "gone.txt" } }', {}, ["recipe.toml:8:", "no such file", "gone.txt"]),
    (
        "lines-dup",
        '{ p = { lines = "l.txt" } }',
        {"l.txt": "a\nb\n\na\n"},
        ["l.txt:4:", "'a' is listed twice (first on line 1)"],
    ),
    ("lines-empty", '{ p = { lines = "l.txt" } }', {"l.txt": "# only\n\n"}, ["l.txt has no values"]),
    ("lines-not-utf8", '{ p = { lines = "l.txt" } }', {"l.txt": b"ok\n\xff\n"}, ["l.txt:2:", "not UTF-8"]),
    (
        "csv-row",
        '{ include = { csv = "j.csv" } }',
        {"j.csv": "a,b\n1,2\n3\n"},
        ["j.csv:3:", "this row has 1 cell, the header has 2"],
    ),
    (
        "csv-header",
        '{ include = { csv = "j.csv" } }',
        {"j.csv": "a,my key\n1,2\n"},
        ["j.csv:1:", "'my key' is not a matrix key"],
    ),
    (
        "csv-header-twice",
        '{ include = { csv = "j.csv" } }',
        {"j.csv": "a,a\n1,2\n"},
        ["j.csv:1:", "'a' is there twice"],
    ),
    ("csv-empty", '{ include = { csv = "j.csv" } }', {"j.csv": ""}, ["j.csv is empty"]),
    ("csv-no-rows", '{ include = { csv = "j.csv" } }', {"j.csv": "a,b\n"}, ["has a header but no rows"]),
    ("csv-missing", '{ include = { csv = "j.csv" } }', {}, ["recipe.toml:8:", "no such file"]),
    (
        "jsonl-bad",
        '{ include = { jsonl = "j.jsonl" } }',
        {"j.jsonl": '{"a": 1}\n{oops\n'},
        ["j.jsonl:2:", "not valid JSON"],
    ),
    (
        "jsonl-array",
        '{ include = { jsonl = "j.jsonl" } }',
        {"j.jsonl": "[1]\n"},
        ["j.jsonl:1:", "must be an object"],
    ),
    (
        "jsonl-key",
        '{ include = { jsonl = "j.jsonl" } }',
        {"j.jsonl": '{"a-b": 1}\n'},
        ["j.jsonl:1:", "'a-b' is not a matrix key"],
    ),
    (
        "jsonl-null",
        '{ include = { jsonl = "j.jsonl" } }',
        {"j.jsonl": '{"a": [null]}\n'},
        ["j.jsonl:1:", "null has no TOML form"],
    ),
    ("jsonl-nan", '{ include = { jsonl = "j.jsonl" } }', {"j.jsonl": '{"a": NaN}\n'}, ["j.jsonl:1:", "NaN"]),
    ("misspelt-source", '{ p = { glb = "x" } }', {}, ["task.t.matrix.p", "did you mean 'glob'"]),
    ("misspelt-include", '{ include = { cvs = "x" } }', {}, ["task.t.matrix.include", "did you mean 'csv'"]),
    ("source-type", "{ p = { lines = 3 } }", {}, ["task.t.matrix.p.lines: must be a file name"]),
    ("two-sources", '{ p = { glob = "*", lines = "x" } }', {}, ["a glob source takes only its file"]),
    (
        "glob-name-not-utf8",  # a file name in another encoding: a value no record can hold
        '{ p = { glob = "*.csv" } }',
        {"ok.csv": "", "caf\udce9.csv": ""},
        ["recipe.toml:", "task.t.matrix.p.glob", "caf\\xe9.csv", "not valid UTF-8"],
    ),
]


@pytest.mark.parametrize(("matrix", "files", "fragments"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_every_bad_source_is_one_error_with_file_and_line(
    tmp_path, monkeypatch, capsys, matrix, files, fragments
):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    recipe_at(tmp_path, matrix, 'files = ["${matrix.p}"]' if "p =" in matrix else "")
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "recipe.toml"]) == 2
    err = capsys.readouterr().err
    assert err.count("toolkit: error:") == 1 and "problems" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err


def test_files_errors(tmp_path, monkeypatch, capsys):
    recipe_at(tmp_path, "{ x = [1] }", 'files = ["${matrix.y}", ""]\noutputs = 3')
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "recipe.toml"]) == 2
    err = capsys.readouterr().err
    assert "task.t.files[0]: ${matrix.y}: the matrix has no 'y'" in err
    assert "task.t.files[1]: must not be empty" in err
    assert "task.t.outputs: must be an array of strings" in err


def test_workdir_that_is_a_file_is_an_error(tmp_path, monkeypatch, capsys):
    write(tmp_path, {"afile": ""})
    recipe_at(tmp_path, "{ x = [1] }", head='[run]\nworkdir = "afile"')
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "recipe.toml"]) == 2
    assert "run.workdir: 'afile' is not a directory" in capsys.readouterr().err


def test_paths_in_an_included_file_belong_to_the_recipe_that_is_run(tmp_path):
    write(
        tmp_path,
        {
            "lib/base.toml": """
            [[task]]
            name = "t"
            uses = "shell"
            params = { cmd = "echo", home = "${recipe.dir}" }
            matrix = { path = { glob = "data/*.csv" } }
            """,
            "lib/data/wrong.csv": "",
            "job/data/right.csv": "",
            "job/recipe.toml": '[recipe]\nname = "inc"\ninclude = ["../lib/base.toml"]\n',
        },
    )
    spec = read_recipe(tmp_path / "job" / "recipe.toml").task("t")
    assert [c["path"] for c in instances(spec)] == ["data/right.csv"]
    assert spec.params["home"] == str(tmp_path / "job")
