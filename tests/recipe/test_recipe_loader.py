"""Reading recipes: interpolation, includes, overrides, defaults, write-back, pickling."""

from __future__ import annotations

import os
import pickle
import textwrap
import tomllib

import attrs
import pytest
import tomli_w

from toolkit.errors import RecipeErrors, ToolkitError, UsageError
from toolkit.manager import LoadSpec, make_plugin_manager
from toolkit.recipe import check_recipe, read_recipe
from toolkit.recipe.model import TaskSpec, default_workers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def recipe(**tables):
    tables.setdefault("recipe", {"name": "r"})
    tables.setdefault("task", [{"name": "t", "uses": "shell", "params": {"cmd": "true"}}])
    return tables


def problems(excinfo) -> str:
    return str(excinfo.value)


# -- interpolation -----------------------------------------------------------
def test_exact_reference_keeps_type_and_embedded_renders():
    r = read_recipe(
        recipe(
            vars={"n": 5, "flag": True, "list": [1, 2], "name": "x"},
            task=[
                {
                    "name": "t",
                    "uses": "shell",
                    "params": {
                        "n": "${vars.n}",
                        "flag": "${vars.flag}",
                        "list": "${vars.list}",
                        "text": "n=${vars.n} flag=${vars.flag} list=${vars.list}",
                        "lit": "$${vars.n}",
                        "dollar": "$5 $$ ${vars.name}$",
                    },
                }
            ],
        )
    )
    assert r.task("t").params == {
        "n": 5,
        "flag": True,
        "list": [1, 2],
        "text": "n=5 flag=true list=[1,2]",
        "lit": "${vars.n}",
        "dollar": "$5 $$ x$",
    }


def test_vars_chain_nest_and_reach_into_tables():
    r = read_recipe(
        recipe(
            vars={
                "base": "/data",
                "dir": "${vars.base}/in",
                "deep": {"a": {"b": "${vars.dir}"}},
                "alias": "${vars.deep}",
                "leaf": "${vars.alias.a.b}",
                "who": "${recipe.name}",
            }
        )
    )
    assert r.vars["dir"] == "/data/in"
    assert r.vars["deep"] == {"a": {"b": "/data/in"}}
    assert r.vars["leaf"] == "/data/in"
    assert r.vars["who"] == "r"


def test_env_with_and_without_default():
    env = {"HOME_DIR": "/h", "EMPTY": ""}
    r = read_recipe(
        recipe(
            vars={
                "a": "${env.HOME_DIR}",
                "b": "${env.NOPE:-fallback}",
                "c": "${env.EMPTY:-d}",
                "d": "${env.EMPTY}",
            }
        ),
        environ=env,
    )
    assert r.vars == {"a": "/h", "b": "fallback", "c": "d", "d": ""}
    with pytest.raises(RecipeErrors) as exc:
        read_recipe(recipe(vars={"a": "${env.NOPE}"}), environ={})
    assert "vars.a: environment variable NOPE is not set (give a default: ${env.NOPE:-VALUE})" in problems(
        exc
    )


def test_references_in_typed_keys_are_checked_after_resolution():
    r = read_recipe(recipe(vars={"w": 3, "t": "90s"}, run={"workers": "${vars.w}", "timeout": "${vars.t}"}))
    assert (r.run.workers, r.run.timeout) == (3, 90.0)
    with pytest.raises(RecipeErrors, match=r"run.workers: must be an integer >= 1, got a string '3'"):
        read_recipe(recipe(run={"workers": "${env.W}"}), environ={"W": "3"})


def test_matrix_reference_may_use_vars_in_the_same_string():
    r = read_recipe(
        recipe(
            vars={"pre": "a$${x"},
            task=[
                {
                    "name": "t",
                    "uses": "shell",
                    "params": {"line": "${vars.pre} ${matrix.i}"},
                    "matrix": {"i": [1]},
                }
            ],
        )
    )
    spec = r.task("t")
    assert spec.params_for(spec.combo(0))["line"] == "a${x 1"


def test_interpolation_problems_are_all_reported():
    with pytest.raises(RecipeErrors) as exc:
        read_recipe(recipe(vars={"a": "${vars.b}", "b": "${vars.a}", "c": "${foo}", "d": "${vars.zz}"}))
    text = problems(exc)
    assert "reference cycle: vars.a -> vars.b -> vars.a" in text
    assert "unknown reference ${foo}" in text
    assert "no vars.zz" in text


# -- defaults and durations --------------------------------------------------
def test_defaults():
    r = read_recipe(recipe())
    assert r.run.workers == default_workers()
    assert (r.run.executor, r.run.retries, r.run.timeout, r.run.keep_going) == ("auto", 0, None, False)
    assert r.output.formats == ("jsonl",) and r.output.dir == "runs"
    assert r.task("t").needs == () and r.task("t").isolate is False
    assert r.path is None and r.base_dir == type(r.base_dir).cwd()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        (45, 45.0),
        (1.5, 1.5),
        ("0", None),
        (0, None),
    ],
)
def test_durations(value, seconds):
    r = read_recipe(recipe(run={"timeout": value}))
    assert r.run.timeout == seconds
    assert r.task("t").timeout == seconds


def test_task_settings_override_run_defaults():
    r = read_recipe(
        recipe(
            run={"retries": 2, "timeout": "1m"},
            task=[
                {"name": "a", "uses": "shell", "params": {"cmd": "x"}},
                {
                    "name": "b",
                    "uses": "shell",
                    "params": {"cmd": "x"},
                    "retries": 0,
                    "timeout": "5s",
                    "isolate": True,
                },
            ],
        )
    )
    assert (r.task("a").retries, r.task("a").timeout) == (2, 60.0)
    assert (r.task("b").retries, r.task("b").timeout, r.task("b").isolate) == (0, 5.0, True)


def test_formats_always_include_jsonl_once():
    assert read_recipe(recipe(output={"formats": ["csv", "jsonl", "csv"]})).output.formats == ("jsonl", "csv")


# -- includes ----------------------------------------------------------------
def test_includes_merge_deep_with_tasks_by_name_and_paths_relative(tmp_path):
    write(
        tmp_path,
        "lib/common.toml",
        """
        [recipe]
        plugins = ["common_tasks.py", "toolkit.conformance"]
        [vars]
        word = "base"
        size = 1
        [run]
        workers = 3
        retries = 2
        [[task]]
        name = "a"
        uses = "shell"
        params = { line = "echo ${vars.word}", keep = 1 }
    """,
    )
    write(tmp_path, "lib/common_tasks.py", "")
    write(tmp_path, "mine_tasks.py", "")
    main = write(
        tmp_path,
        "main.toml",
        """
        [recipe]
        name = "main"
        include = ["lib/common.toml"]
        plugins = ["mine_tasks.py"]
        [vars]
        word = "top"
        [run]
        retries = 1
        [[task]]
        name = "a"
        params = { line = "echo ${vars.word} ${vars.size}" }
        [[task]]
        name = "b"
        uses = "shell"
        params = { cmd = "b" }
    """,
    )
    r = read_recipe(main)
    assert r.plugins == (
        str(tmp_path / "lib/common_tasks.py"),
        "toolkit.conformance",
        str(tmp_path / "mine_tasks.py"),
    )
    assert (r.run.workers, r.run.retries) == (3, 1)
    assert [t.name for t in r.tasks] == ["a", "b"]
    assert r.task("a").params == {"line": "echo top 1", "keep": 1}
    assert r.task("a").uses == "shell"
    assert "include" not in r.to_table()["recipe"]


def test_include_cycle_names_the_chain(tmp_path):
    write(tmp_path, "a.toml", '[recipe]\nname = "a"\ninclude = ["b.toml"]\n')
    write(tmp_path, "b.toml", '[recipe]\ninclude = ["a.toml"]\n')
    os.chdir(tmp_path)
    with pytest.raises(RecipeErrors) as exc:
        read_recipe(tmp_path / "a.toml")
    assert "b.toml:2: recipe.include[0]: include cycle: a.toml -> b.toml -> a.toml" in problems(exc)


def test_missing_include_and_bad_toml_in_include(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "broken.toml", "x = = 1\n")
    main = write(tmp_path, "main.toml", '[recipe]\nname = "a"\ninclude = ["nope.toml", "broken.toml"]\n')
    with pytest.raises(RecipeErrors) as exc:
        read_recipe(main)
    text = problems(exc)
    assert "main.toml:3: recipe.include[0]: no such file: nope.toml" in text
    assert "broken.toml:1: not valid TOML" in text


def test_error_in_an_included_file_points_at_that_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "base.toml", "[run]\n\nworkers = -1\n")
    main = write(
        tmp_path,
        "main.toml",
        """
        [recipe]
        name = "a"
        include = ["base.toml"]
        [[task]]
        name = "t"
        uses = "shell"
        retries = "x"
    """,
    )
    with pytest.raises(RecipeErrors) as exc:
        read_recipe(main)
    assert "base.toml:3: run.workers: must be >= 1" in problems(exc)
    assert "main.toml:8: task.t.retries" in problems(exc)


# -- overrides ---------------------------------------------------------------
def test_overrides_parse_toml_values_else_strings(tmp_path):
    r = read_recipe(
        recipe(
            task=[
                {
                    "name": "est",
                    "uses": "shell",
                    "params": {"cmd": "x ${vars.samples} ${vars.word} ${vars.quoted}"},
                    "matrix": {"seed": [0]},
                }
            ]
        ),
        overrides=[
            "vars.samples=1000",
            "run.executor=process",
            "task.est.matrix.seed=[1,2]",
            "vars.word=hello world",
            "vars.quoted='a=b'",
            "executor.dask.address=tcp://h:1",
            "run.timeout=1m",
            "vars.samples=2000",
        ],
    )
    assert r.vars == {"samples": 2000, "word": "hello world", "quoted": "a=b"}
    assert r.run.executor == "process" and r.run.timeout == 60.0
    assert r.task("est").count() == 2
    assert r.executors == {"dask": {"address": "tcp://h:1"}}


def test_override_of_a_whole_task_and_of_plugins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "p.py", "")
    r = read_recipe(
        recipe(),
        overrides=[
            'task.t={name = "t", uses = "python", params = {function = "json:dumps"}}',
            'recipe.plugins=["p.py"]',
        ],
    )
    assert r.task("t").uses == "python"
    assert r.plugins == (str(tmp_path / "p.py"),)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("foo", "--set foo: expected PATH=VALUE"),
        ("=1", "expected PATH=VALUE"),
        ("run..x=1", "is not a key path"),
        ("task.nope.retries=1", "--set task.nope.retries=1: no task named 'nope' (tasks: t)"),
        ("task.tt.retries=1", "did you mean 't'"),
        ("run.workers=2\nrun.retries=3", "run.workers: must be an integer"),
        ("run.wrkers=2", "--set run.wrkers=2: run.wrkers: unknown key (did you mean 'workers'?)"),
        ("run.retries.deep=1", "run.retries is an integer, not a table"),
        ("recipe.include=['x.toml']", "recipe.include cannot be overridden"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ToolkitError) as exc:
        read_recipe(recipe(run={"retries": 1}), overrides=[override])
    assert message in str(exc.value)


# -- sources -----------------------------------------------------------------
def test_missing_file_and_directory_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="no such recipe file"):
        read_recipe(tmp_path / "nope.toml")
    with pytest.raises(UsageError, match="is a directory"):
        read_recipe(tmp_path)


def test_mapping_source_rejects_what_toml_cannot_hold():
    with pytest.raises(RecipeErrors) as exc:
        read_recipe(recipe(vars={"a": None, "b": object(), 3: 1}))
    text = problems(exc)
    assert "vars.a: has no value" in text and "vars.b: is a object" in text and "keys must be strings" in text


def test_mapping_source_is_not_changed():
    table = recipe(vars={"x": "${vars.y}", "y": 1})
    before = repr(table)
    read_recipe(table, overrides=["vars.y=2"])
    assert repr(table) == before


# -- write-back and pickling -------------------------------------------------
def test_to_table_writes_toml_and_reads_back_equal(tmp_path):
    src = os.path.join(ROOT, "recipes", "pi.toml")
    r = read_recipe(src, overrides=["vars.samples=$${literal}", "run.start_method=spawn"])
    text = tomli_w.dumps(r.to_table())
    again_path = tmp_path / "again.toml"
    again_path.write_text(text)
    again = read_recipe(again_path)
    for field in (
        "name",
        "description",
        "plugins",
        "vars",
        "run",
        "output",
        "executors",
        "schedule",
        "tasks",
    ):
        assert getattr(again, field) == getattr(r, field), field
    assert tomllib.loads(text)["vars"]["samples"] == "$${literal}"


def test_to_table_keeps_matrix_templates_as_written():
    r = read_recipe(
        recipe(
            task=[
                {
                    "name": "t",
                    "uses": "shell",
                    "params": {"line": "a $${b} ${matrix.x}", "lit": "$${c}"},
                    "matrix": {"x": [1]},
                }
            ]
        )
    )
    assert r.task("t").to_table()["params"] == {"line": "a $${b} ${matrix.x}", "lit": "$${c}"}
    again = read_recipe({**r.to_table(), "recipe": {"name": "r"}})
    assert again.task("t").params_for({"x": 1})["line"] == "a ${b} 1"


def test_recipe_pickles():
    r = read_recipe(os.path.join(ROOT, "recipes", "pi.toml"))
    again = pickle.loads(pickle.dumps(r))
    assert again == r
    assert again.task("estimate").count() == 16


def test_tasks_read_are_the_tasks_their_class_makes(tmp_path):
    # the loader makes TaskSpecs without their __init__ (a big recipe has 100,000)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("")
    r = read_recipe(
        recipe(
            task=[
                {"name": "plain", "uses": "shell", "params": {"cmd": "true"}},
                {
                    "name": "full",
                    "uses": "shell",
                    "params": {"cmd": "cat ${matrix.x} > out/${matrix.x}", "shell": True},
                    "matrix": {"x": [1, 2], "f": {"glob": f"{tmp_path}/in/*"}},
                    "needs": ["plain", "plain"],
                    **{"retries": 2, "timeout": "1m", "isolate": True, "cpus": 2, "memory": "1 MiB"},
                    **{"files": ["in/${matrix.x}"], "outputs": ["out/${matrix.x}"], "cache": False},
                },
            ]
        )
    )
    for spec in r.tasks:
        made = TaskSpec(**{f.name: getattr(spec, f.name) for f in attrs.fields(TaskSpec) if f.init})
        assert made == spec
        assert pickle.loads(pickle.dumps(spec)) == spec
        combos = list(made.iter_combos())
        assert combos == list(spec.iter_combos())
        for _, combo in combos:
            assert made.params_for(combo) == spec.params_for(combo)
            assert made.output_files(made.params_for(combo)) == spec.output_files(spec.params_for(combo))
    assert r.task("full").params_for({"x": "a b", "f": ""})["cmd"] == "cat 'a b' > out/'a b'"
    assert r.task("full").needs == ("plain",)


def test_schedule_table_is_read(tmp_path):
    r = read_recipe(recipe(schedule={"every": "15m"}))
    assert r.schedule is not None and r.schedule.every == 900.0
    assert "schedule" in r.to_table()


# -- check_recipe --------------------------------------------------------------
def test_check_recipe_mentions_a_plugin_that_failed_to_load(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "broken_tasks_xyz.py", "raise ImportError('no numpy here')\n")
    main = write(
        tmp_path,
        "r.toml",
        """
        [recipe]
        name = "r"
        plugins = ["broken_tasks_xyz.py"]
        [[task]]
        name = "t"
        uses = "broken.task"
    """,
    )
    r = read_recipe(main)
    pm = make_plugin_manager(LoadSpec(autoload=False), warn=False)
    pm.load_recipe_plugins(r.plugins)
    with pytest.raises(RecipeErrors) as exc:
        check_recipe(r, pm)
    text = problems(exc)
    assert "r.toml:7: task.t.uses: unknown task 'broken.task'" in text
    assert "plugin 'broken_tasks_xyz' failed to load: ImportError: no numpy here" in text


def test_check_recipe_runs_executor_option_checks():
    r = read_recipe(recipe(executor={"pool": {"size": 3}}))
    pm = make_plugin_manager(LoadSpec(autoload=False), warn=False)
    with pytest.raises(RecipeErrors, match=r"executor.pool: "):
        check_recipe(r, pm)


def test_check_recipe_accepts_matrix_keys_as_params():
    r = read_recipe(
        recipe(
            recipe={"name": "r", "plugins": ["toolkit.conformance"]},
            task=[{"name": "t", "uses": "conformance.square", "matrix": {"x": [1, 2]}}],
        )
    )
    pm = make_plugin_manager(LoadSpec(autoload=False), warn=False)
    pm.load_recipe_plugins(r.plugins)
    check_recipe(r, pm)
