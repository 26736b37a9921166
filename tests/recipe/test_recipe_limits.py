"""A recipe cannot exhaust the machine: every oversized, overdeep or self-amplifying input
ends in one clear error (exit 2, no traceback), in bounded time and memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from toolkit.cli import main
from toolkit.recipe import limits, read_recipe
from toolkit.recipe.loader import RecipeErrors

TASK = '[[task]]\nname = "t"\nuses = "shell"\nparams = { cmd = "true" }\n'


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def head(name="r", extra=""):
    return f'[recipe]\nname = "{name}"\n{extra}\n'


def fails(capsys, *argv):
    """Run the command line; it must fail with exit 2 and one clear message."""
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("toolkit: error: ")
    return err


# -- files ----------------------------------------------------------------------------


def test_an_include_diamond_is_read_once_per_file(tmp_path, capsys):
    # 24 levels of two includes of the next level: 2**24 paths, 48 files
    depth = 24
    for i in range(depth):
        nxt = f'"d{i + 1}.toml", "e{i + 1}.toml"' if i < depth - 1 else ""
        body = f"[recipe]\ninclude = [{nxt}]\n[vars]\nv{i} = {i}\n"
        write(tmp_path, f"d{i}.toml", body)
        write(tmp_path, f"e{i}.toml", body)
    main_file = write(tmp_path, "main.toml", head(extra='include = ["d0.toml"]') + TASK)
    started = time.monotonic()
    assert main(["validate", str(main_file)]) == 0
    assert time.monotonic() - started < 20  # a hang guard: it takes well under a second
    assert read_recipe(main_file).vars[f"v{depth - 1}"] == depth - 1


@pytest.mark.parametrize("depth", [limits.MAX_INCLUDE_DEPTH + 1, 500])
def test_includes_nested_too_deep(tmp_path, capsys, depth):
    for i in range(depth):
        write(tmp_path, f"i{i}.toml", f'[recipe]\ninclude = ["i{i + 1}.toml"]\n' if i < depth - 1 else "")
    main_file = write(tmp_path, "main.toml", head(extra='include = ["i0.toml"]') + TASK)
    err = fails(capsys, "validate", str(main_file))
    assert f"includes nest more than {limits.MAX_INCLUDE_DEPTH} files deep" in err
    assert err.count("\n") == 1


def test_an_include_that_is_not_a_file(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    main_file = write(tmp_path, "main.toml", head(extra='include = ["sub"]') + TASK)
    err = fails(capsys, "validate", str(main_file))
    assert "recipe.include[0]: not a regular file: " in err


def test_a_recipe_that_never_ends(capsys):
    err = fails(capsys, "validate", "/dev/zero")
    assert "recipe /dev/zero is larger than 64 MiB" in err


def test_an_oversized_recipe_file_and_include(tmp_path, capsys):
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(limits.MAX_FILE_BYTES + 1)  # sparse: no disk used
    err = fails(capsys, "validate", str(big))
    assert "is larger than 64 MiB" in err
    main_file = write(tmp_path, "main.toml", head(extra='include = ["big.toml"]') + TASK)
    err = fails(capsys, "validate", str(main_file))
    assert "recipe.include[0]: recipe big.toml is larger than 64 MiB" in err.replace(str(tmp_path) + "/", "")


def test_a_recipe_that_is_not_utf8(tmp_path, capsys):
    path = tmp_path / "r.toml"
    path.write_bytes(b'[recipe]\nname = "r"\ndescription = "caf\xe9"\n')
    err = fails(capsys, "validate", str(path))
    assert "not UTF-8 text (line 3)" in err


@pytest.mark.parametrize(
    "value",
    [
        "[" * 5000 + "]" * 5000,  # arrays: tomllib itself runs out of stack
        "{ a = " * 400 + "1" + " }" * 400,  # inline tables
        "[" * (limits.MAX_NESTING + 1) + "]" * (limits.MAX_NESTING + 1),  # just past the limit
    ],
    ids=["arrays-5000", "tables-400", "just-past"],
)
def test_values_nested_too_deep(tmp_path, capsys, value):
    path = write(tmp_path, "r.toml", head() + f"[vars]\nx = {value}\n" + TASK)
    err = fails(capsys, "validate", str(path))
    assert f"nest more than {limits.MAX_NESTING} levels deep" in err


def test_tables_nested_too_deep_through_dotted_keys(tmp_path, capsys):
    dotted = ".".join(f"k{i}" for i in range(200))
    path = write(tmp_path, "r.toml", head() + f"[vars]\n{dotted} = 1\n" + TASK)
    err = fails(capsys, "validate", str(path))
    assert f"nest more than {limits.MAX_NESTING} levels deep" in err


def test_a_python_table_nested_too_deep():
    value: list = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(RecipeErrors, match="nest more than 64 levels deep"):
        read_recipe({"recipe": {"name": "r"}, "vars": {"x": value}, "task": []})


# -- references -----------------------------------------------------------------------


@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
def test_a_long_chain_of_vars(tmp_path, capsys, forward):
    n = 3000
    lines = [f'v{i} = "${{vars.v{i + 1 if forward else i - 1}}}"' for i in range(1, n)]
    lines.append(f"v{n if forward else 0} = 1")
    use = "v1" if forward else f"v{n - 1}"
    task = TASK.replace('cmd = "true"', f'cmd = "echo", n = "${{vars.{use}}}"')
    path = write(tmp_path, "r.toml", head() + "[vars]\n" + "\n".join(lines) + "\n" + task)
    if forward:
        err = fails(capsys, "validate", str(path))
        assert f"references nest more than {limits.MAX_REFERENCE_DEPTH} deep" in err
        assert err.count("\n") == 1  # said once, not once per 64 vars
    else:  # each var resolved from the one before it: never deep
        assert main(["validate", str(path)]) == 0


@pytest.mark.parametrize(
    ("first", "step", "message"),
    [
        ('"xx"', '"${{vars.v{p}}}${{vars.v{p}}}"', "expands to more than 1 MiB of text"),
        ('"x"', '"${{vars.v{p}}}-${{vars.v{p}}}-${{vars.v{p}}}"', "expands to more than 1 MiB of text"),
        ('["x", "y"]', '["${{vars.v{p}}}", "${{vars.v{p}}}"]', "expand to more than 16 MiB"),
        ("{ a = 1 }", '{{ a = "${{vars.v{p}}}", b = "${{vars.v{p}}}" }}', "expand to more than 16 MiB"),
        ("1", '[[[[[[[[[[ "${{vars.v{p}}}" ]]]]]]]]]]', "nests more than 64 tables and arrays deep"),
    ],
    ids=["strings", "strings-three", "arrays", "tables", "nesting"],
)
def test_vars_that_amplify_themselves(tmp_path, capsys, first, step, message):
    lines = [f"v0 = {first}"] + [f"v{i} = " + step.format(p=i - 1) for i in range(1, 41)]
    task = TASK.replace('cmd = "true"', 'cmd = "echo", x = "${vars.v40}"')
    path = write(tmp_path, "r.toml", head() + "[vars]\n" + "\n".join(lines) + "\n" + task)
    started = time.monotonic()
    err = fails(capsys, "validate", str(path))
    assert time.monotonic() - started < 30  # a hang guard: well under a second
    assert message in err
    assert err.count("\n") == 1


# -- size -----------------------------------------------------------------------------


def many_tasks(n, needs):
    parts = [head("many")]
    for i in range(n):
        parts.append(f'[[task]]\nname = "t{i}"\nuses = "shell"\nparams = {{ cmd = "true" }}\n')
        if needs and i < n - 1:
            parts.append(f'needs = ["t{i + 1}"]\n')
    return "".join(parts)


def test_many_tasks_validate_and_plan_in_linear_time(tmp_path, capsys):
    # 20,000 tables took 94 s when validation was quadratic, and a chain of needs this
    # long was a RecursionError. The benchmark (case 9) holds the figure for 100,000.
    path = write(tmp_path, "many.toml", many_tasks(10_000, needs=True))
    started = time.monotonic()
    assert main(["plan", str(path), "--format", "json"]) == 0
    assert time.monotonic() - started < 60  # a generous hang guard: ~2 s here
    out = capsys.readouterr().out
    assert '"total": 10000' in out


@pytest.mark.parametrize(
    "axis",
    [
        "{ range = [0, 9_000_000_000_000_000_000] }",
        "{ range = [-9_000_000_000_000_000_000, 9_000_000_000_000_000_000, 7] }",
    ],
)
def test_a_matrix_too_large_to_count(tmp_path, capsys, axis):
    task = TASK + f"matrix = {{ a = {axis}, b = {axis} }}\n"
    path = write(tmp_path, "r.toml", head() + task)
    for command in ("validate", "plan", "run"):
        err = fails(
            capsys, command, str(path), *(["--output", str(tmp_path / "runs")] if command == "run" else [])
        )
        assert "task.t.matrix: makes " in err and "a recipe may have at most" in err
    assert not (tmp_path / "runs").exists()


def test_a_float_range_bound(tmp_path, capsys):
    path = write(tmp_path, "r.toml", head() + TASK + "matrix = { a = { range = [0, 1e20] } }\n")
    err = fails(capsys, "validate", str(path))
    assert "must be [start, stop] or [start, stop, step] of integers" in err


@pytest.mark.parametrize("where", ["recipe", "task"])
def test_names_too_long_for_a_file_name(tmp_path, capsys, where):
    long = "n" * 300
    text = head(long if where == "recipe" else "r") + TASK.replace(
        'name = "t"', f'name = "{long}"' if where == "task" else 'name = "t"'
    )
    path = write(tmp_path, "r.toml", text)
    err = fails(capsys, "run", str(path), "--output", str(tmp_path / "runs"))
    assert ("recipe.name: " if where == "recipe" else "task[0].name: ") in err
    assert f"must be at most {limits.MAX_NAME} characters" in err
    assert not (tmp_path / "runs").exists()


# -- overrides and the environment ----------------------------------------------------

VARS = (
    head()
    + '[vars]\nepochs = 3\nlr = 0.1\n[vars.opt]\nname = "adam"\n'
    + TASK.replace('cmd = "true"', 'cmd = "echo ${vars.epochs} ${vars.lr}", opt = "${vars.opt}"')
)


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ("vars.epoch=10", "(did you mean 'epochs'?)"),
        ("vars.lrr=0.2", "(did you mean 'lr'?)"),
        ("vars.batch=64", "(its vars: epochs, lr, opt)"),
    ],
)
def test_an_override_that_changes_nothing(tmp_path, capsys, override, hint):
    path = write(tmp_path, "r.toml", VARS)
    for command in ("validate", "plan", "run"):
        output = ["--output", str(tmp_path / "runs")] if command == "run" else []
        err = fails(capsys, command, str(path), "--set", override, *output)[:-1]
        name = override.split("=")[0]
        assert err.endswith(
            f"--set {override}: sets {name}, which the recipe neither defines nor uses: it would change"
            f" nothing {hint}"
        )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("override", ["vars.epochs=10", "vars.opt.lr=0.5", "vars.opt.name=sgd"])
def test_an_override_that_changes_something(tmp_path, capsys, override):
    # vars.opt.lr is new, but ${vars.opt} hands the whole table to the task
    path = write(tmp_path, "r.toml", VARS)
    assert main(["validate", str(path), "--set", override]) == 0


def test_an_override_that_is_not_utf8(tmp_path, capsys):
    path = write(tmp_path, "r.toml", VARS)
    err = fails(capsys, "validate", str(path), "--set", "vars.epochs=\udcff")
    assert "--set vars.epochs=\\xff: not valid UTF-8 text" in err


def test_an_override_that_is_not_utf8_from_a_real_command_line(tmp_path):
    path = write(tmp_path, "r.toml", VARS)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit",
            "run",
            str(path),
            "--output",
            str(tmp_path / "runs"),
            "--set",
            b"vars.epochs=\xff",
        ],
        capture_output=True,
        env={**os.environ, "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert proc.returncode == 2
    assert (
        proc.stderr
        == b"toolkit: error: --set vars.epochs=\\xff: not valid UTF-8 text (check the terminal's or the script's encoding)\n"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kind", ["env", "secret"])
def test_an_environment_value_that_is_not_utf8(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.setenv("BAD", os.fsdecode(b"a\xffb"))
    path = write(tmp_path, "r.toml", head() + TASK.replace('cmd = "true"', f'cmd = "echo ${{{kind}.BAD}}"'))
    err = fails(capsys, "validate", str(path))
    assert f"${{{kind}.BAD}}: environment variable BAD is not valid UTF-8 text" in err


def test_an_override_nested_too_deep(tmp_path, capsys):
    path = write(tmp_path, "r.toml", VARS)
    err = fails(capsys, "validate", str(path), "--set", "vars.epochs=" + "[" * 3000 + "]" * 3000)
    assert f"the value nests more than {limits.MAX_NESTING} tables and arrays deep" in err
    assert len(err) < 300  # the --set is shown cut short


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ("schedule", "every", "1e300"),
        ("schedule", "every", '"99999999999999999999h"'),
        ("schedule", "jitter", '"9999999999999999d"'),
        ("task", "timeout", "1e300"),
    ],
)
def test_durations_too_long_for_a_clock(tmp_path, capsys, table, key, value):
    schedule = "[schedule]\n" + ('every = "1h"\n' if key != "every" else "")
    schedule += f"{key} = {value}\n" if table == "schedule" else ""
    task = TASK + (f"{key} = {value}\n" if table == "task" else "")
    path = write(tmp_path, "r.toml", head() + schedule + task)
    for argv in (["validate"], ["schedule", "--next", "1"]):
        err = fails(capsys, *argv, str(path))
        assert f"{table}{'.t' if table == 'task' else ''}.{key}: must be a duration of at most 3650d" in err
