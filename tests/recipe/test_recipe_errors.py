"""Bad recipes: each exits 2 with one clear message naming the key, and runs nothing."""

from __future__ import annotations

import textwrap

import pytest

from toolkit.cli import main

GOOD_TASK = """
[[task]]
name = "sq"
uses = "conformance.square"
matrix = { x = [1, 2] }
"""

HEAD = """
[recipe]
name = "bad"
plugins = ["toolkit.conformance"]
"""

# (id, recipe text, fragments the message must contain)
CASES = [
    ("not-toml", "[recipe\nname = 1", ["bad.toml:1: not valid TOML"]),
    ("no-recipe-table", GOOD_TASK, ["recipe: required"]),
    ("no-name", '[recipe]\ndescription = "x"\n' + GOOD_TASK, ["recipe.name: required"]),
    ("unsafe-name", '[recipe]\nname = "../up"\n' + GOOD_TASK, ["bad.toml:2: recipe.name", "letters, digits"]),
    (
        "unknown-top",
        HEAD + "[rnu]\nworkers = 2\n" + GOOD_TASK,
        ["bad.toml:5: rnu: unknown key", "did you mean 'run'"],
    ),
    (
        "unknown-run-key",
        HEAD + "[run]\nwrokers = 2\n" + GOOD_TASK,
        ["bad.toml:6: run.wrokers", "did you mean 'workers'"],
    ),
    (
        "workers-type",
        HEAD + '[run]\nworkers = "two"\n' + GOOD_TASK,
        ["bad.toml:6: run.workers: must be an integer"],
    ),
    ("workers-range", HEAD + "[run]\nworkers = 0\n" + GOOD_TASK, ["run.workers: must be >= 1"]),
    ("retries-negative", HEAD + GOOD_TASK + "retries = -1\n", ["bad.toml:10: task.sq.retries: must be >= 0"]),
    ("bad-duration", HEAD + '[run]\ntimeout = "5 minutes"\n' + GOOD_TASK, ["run.timeout", "not a duration"]),
    (
        "bad-start-method",
        HEAD + '[run]\nstart_method = "forks"\n' + GOOD_TASK,
        ["run.start_method", "did you mean 'fork'"],
    ),
    (
        "keep-going-type",
        HEAD + '[run]\nkeep_going = "yes"\n' + GOOD_TASK,
        ["run.keep_going: must be true or false"],
    ),
    ("no-tasks", HEAD, ["task: the recipe has no [[task]]"]),
    (
        "task-unknown-key",
        HEAD + GOOD_TASK + "retires = 2\n",
        ["bad.toml:10: task.sq.retires", "did you mean 'retries'"],
    ),
    ("task-no-uses", HEAD + '[[task]]\nname = "t"\n', ["task.t.uses: required"]),
    ("task-bad-name", HEAD + '[[task]]\nname = "a b"\nuses = "shell"\n', ["task[0].name", "letters, digits"]),
    ("duplicate-task", HEAD + GOOD_TASK + GOOD_TASK, ["task[1].name: duplicate task name 'sq'"]),
    (
        "unknown-uses",
        HEAD + '[[task]]\nname = "t"\nuses = "conformance.sqaure"\nparams = { x = 1 }\n',
        ["task.t.uses: unknown task 'conformance.sqaure'", "did you mean 'conformance.square'"],
    ),
    (
        "param-not-accepted",
        HEAD + GOOD_TASK + "params = { y = 1 }\n",
        ["task.sq.params.y", "does not accept param 'y'"],
    ),
    (
        "param-missing",
        HEAD + '[[task]]\nname = "t"\nuses = "conformance.square"\n',
        ["task.t.params", "needs param 'x'"],
    ),
    (
        "needs-unknown",
        HEAD + GOOD_TASK + 'needs = ["sqq"]\n',
        ["task.sq.needs[0]: unknown task 'sqq'", "did you mean"],
    ),
    (
        "needs-cycle",
        HEAD + '[[task]]\nname = "a"\nuses = "conformance.add_inputs"\nneeds = ["b"]\n'
        '[[task]]\nname = "b"\nuses = "conformance.add_inputs"\nneeds = ["a"]\n',
        ["cycle: a -> b -> a"],
    ),
    ("needs-self", HEAD + GOOD_TASK + 'needs = ["sq"]\n', ["task.sq.needs[0]: a task cannot need itself"]),
    (
        "unknown-executor",
        HEAD + '[run]\nexecutor = "pol"\n' + GOOD_TASK,
        ["run.executor: unknown executor 'pol'", "did you mean 'pool'"],
    ),
    (
        "unknown-sink",
        HEAD + '[output]\nformats = ["jsonl", "cvs"]\n' + GOOD_TASK,
        ["output.formats[1]", "'cvs'", "did you mean 'csv'"],
    ),
    (
        "unknown-var",
        HEAD + GOOD_TASK + 'params = { x = "${vars.nope}" }\n'.replace("params", "timeout"),
        ["task.sq.timeout", "${vars.nope}: no vars.nope"],
    ),
    (
        "var-cycle",
        HEAD + '[vars]\na = "${vars.b}"\nb = "${vars.a}"\n' + GOOD_TASK,
        ["reference cycle: vars.a -> vars.b -> vars.a"],
    ),
    (
        "env-unset",
        HEAD + '[output]\ndir = "${env.TOOLKIT_TEST_SURELY_UNSET}"\n' + GOOD_TASK,
        ["output.dir", "TOOLKIT_TEST_SURELY_UNSET is not set"],
    ),
    (
        "bad-namespace",
        HEAD + '[output]\ndir = "${var.x}"\n' + GOOD_TASK,
        ["unknown reference ${var.x}", "did you mean 'vars'"],
    ),
    ("unterminated", HEAD + '[output]\ndir = "${vars.x"\n' + GOOD_TASK, ["output.dir", "unterminated"]),
    (
        "matrix-ref-outside-params",
        HEAD + '[output]\ndir = "${matrix.x}"\n' + GOOD_TASK,
        ["only available in task params"],
    ),
    (
        "matrix-ref-unknown",
        HEAD + GOOD_TASK + 'params = { y = "${matrix.z}" }\n',
        ["task.sq.params.y", "the matrix has no 'z'"],
    ),
    (
        "matrix-empty-axis",
        HEAD + '[[task]]\nname = "t"\nuses = "conformance.square"\nmatrix = { x = [] }\n',
        ["bad.toml:8: task.t.matrix.x: an axis must have at least one value"],
    ),
    (
        "matrix-bad-range",
        HEAD + '[[task]]\nname = "t"\nuses = "conformance.square"\nmatrix = { x = { range = [5, 1] } }\n',
        ["task.t.matrix.x.range", "is empty"],
    ),
    (
        "matrix-range-typo",
        HEAD + '[[task]]\nname = "t"\nuses = "conformance.square"\nmatrix = { x = { rnage = [0, 2] } }\n',
        ["task.t.matrix.x", "did you mean 'range'"],
    ),
    (
        "matrix-exclude-unknown",
        HEAD + '[[task]]\nname = "t"\nuses = "conformance.square"\n'
        "matrix = { x = [1, 2], exclude = [{ y = 1 }] }\n",
        ["task.t.matrix.exclude[0].y", "not a matrix axis"],
    ),
    (
        "schedule-bad-cron",
        HEAD + '[schedule]\ncron = "61 * * * *"\n' + GOOD_TASK,
        ["bad.toml:6: schedule.cron"],
    ),
    ("executor-not-table", HEAD + "[executor]\npool = 3\n" + GOOD_TASK, ["executor.pool: must be a table"]),
    (
        "plugin-file-missing",
        '[recipe]\nname = "bad"\nplugins = ["nothere.py"]\n' + GOOD_TASK,
        ["bad.toml:3: recipe.plugins[0]: no such plugin file"],
    ),
    ("params-not-table", HEAD + GOOD_TASK + "params = 3\n", ["task.sq.params: must be a table"]),
    ("task-not-array", HEAD + '[task]\nname = "t"\n', ["task: must be an array of tables"]),
]


@pytest.mark.parametrize(("text", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_recipe_exits_2_names_the_key_and_runs_nothing(tmp_path, monkeypatch, capsys, text, fragments):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TOOLKIT_TEST_SURELY_UNSET", raising=False)
    (tmp_path / "bad.toml").write_text(textwrap.dedent(text))
    for command in (["validate"], ["plan"], ["run", "--output", "runs"]):
        code = main([*command, "bad.toml"])
        out, err = capsys.readouterr()
        assert code == 2, (command, out, err)
        assert "Traceback" not in err
        assert err.startswith("toolkit: error: "), err
        for fragment in fragments:
            assert fragment in err, (command, fragment, err)
    assert not (tmp_path / "runs").exists()


def test_cases_cover_at_least_twenty_kinds():
    assert len(CASES) >= 20


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    recipe = tmp_path / "many.toml"
    recipe.write_text(HEAD + "[run]\nworkers = 0\nretries = -1\n" + GOOD_TASK + 'timeout = "soon"\n')
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "3 problems in the recipe" in err
    assert "run.workers" in err and "run.retries" in err and "task.sq.timeout" in err


PICKY_EXECUTOR = """
import toolkit

def check(table):
    return [f"{k}: must be an integer" for k, v in table.items() if not isinstance(v, int)]

@toolkit.hookimpl
def toolkit_register_executors(registry):
    registry.add("picky", lambda context: None, check_options=check)
"""


def test_a_plugins_option_problem_names_the_set_or_line_that_wrote_the_key(tmp_path, capsys):
    """Not whichever ``--set`` came last: the one that wrote the key the problem names."""
    (tmp_path / "picky.py").write_text(PICKY_EXECUTOR)
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[recipe]\nname = "r"\nplugins = ["picky.py"]\n\n[executor.picky]\nsize = "big"\n' + GOOD_TASK
    )
    cases = [
        (
            ["--set", "executor.picky.depth=x", "--set", "executor.picky.width=3"],
            "--set executor.picky.depth=x: ",
        ),
        ([], "r.toml:6: executor.picky: size: must be an integer"),
        (["--set", "executor.picky.width=3"], "r.toml:6: executor.picky: size"),
    ]
    for overrides, expected in cases:
        assert main(["validate", str(recipe), *overrides]) == 2
        err = capsys.readouterr().err
        assert expected in err, (overrides, err)


def test_a_missing_required_key_names_the_recipe_file_not_a_set(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text(GOOD_TASK)
    assert main(["validate", str(recipe), "--set", "run.workers=2"]) == 2
    err = capsys.readouterr().err
    assert "r.toml: recipe: required" in err and "--set" not in err, err
