"""``${secret.NAME}``: the task gets the value; toolkit never writes or prints it.

Runs are real (worker processes, the process executor, resume); what a task really
received is counted with files the task writes outside the run directory.
"""

from __future__ import annotations

import json
import os
import tomllib

import pytest

from toolkit.recipe import read_recipe
from toolkit.recipe.loader import RecipeErrors

SECRET = 's3cr3t-Tok"en\\é'  # quotes, a backslash and non-ASCII: JSON escapes them all
SECOND = "other-pass"

TASKS = '''
import os
import toolkit


def use(token, header, n, seen, opts=None, fail=False):
    """Prints the secret, returns it, fails with it in the message when asked."""
    with open(os.path.join(seen, f"{n}.txt"), "w", encoding="utf-8") as f:
        f.write(token + "\\n" + header + "\\n" + (opts or {}).get("password", ""))
    print("the token is", token)
    if fail:
        raise RuntimeError(f"login refused for {token}")
    return {"echo": token, "n": n}


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(use, name="use")
'''

RECIPE = """
[recipe]
name = "sec"
plugins = ["tasks.py"]

[vars]
token = "${{secret.API_TOKEN}}"
opts = {{ password = "${{secret.DB_PASS}}" }}

[run]
executor = "{executor}"
workers = 2

[[task]]
name = "call"
uses = "use"
params = {{ token = "${{vars.token}}", header = "Bearer ${{secret.API_TOKEN}}", opts = "${{vars.opts}}", seen = "{seen}" }}
matrix = {{ n = [1, 2, 3], fail = [false] , include = [{{ n = 4, fail = true }}] }}
"""


def every_file(folder):
    for root, _, names in os.walk(folder):
        for name in names:
            yield os.path.join(root, name)


def assert_nowhere(folder, *values):
    for path in every_file(folder):
        with open(path, "rb") as f:
            data = f.read()
        for value in values:
            for form in (value.encode(), json.dumps(value)[1:-1].encode()):
                assert form not in data, path


@pytest.fixture
def seen(tmp_path):
    path = tmp_path / "seen"
    path.mkdir()
    return path


ENV = {"API_TOKEN": SECRET, "DB_PASS": SECOND}


@pytest.mark.parametrize("executor", ["process", "pool"])
def test_the_task_gets_the_secret_and_the_run_directory_never_holds_it(run_recipe, seen, executor):
    r = run_recipe(
        RECIPE.format(executor=executor, seen=seen), "--keep-going", files={"tasks.py": TASKS}, env=ENV
    )
    assert r.exit_code == 1, r.stderr
    # what the tasks really received: the secrets themselves
    for n in (1, 2, 3, 4):
        got = (seen / f"{n}.txt").read_text(encoding="utf-8").split("\n")
        assert got == [SECRET, f"Bearer {SECRET}", SECOND]
    # what toolkit wrote and printed: *** wherever they were
    assert_nowhere(r.run_dir, SECRET, SECOND)
    for text in (r.stdout, r.stderr):
        assert SECRET not in text and SECOND not in text
    recs = r.by_instance()
    ok = recs["call[fail=false,n=1]"]
    assert ok["status"] == "ok"
    assert ok["params"]["token"] == "***" and ok["params"]["header"] == "Bearer ***"
    assert ok["params"]["opts"] == {"password": "***"}
    assert ok["value"] == {"echo": "***", "n": 1}
    bad = recs["call[fail=true,n=4]"]
    assert bad["status"] == "failed"
    assert bad["error"]["message"] == "login refused for ***"
    assert "login refused for ***" in bad["error"]["traceback"]
    log = (r.run_dir / "logs").iterdir()
    texts = [p.read_text(encoding="utf-8") for p in log]
    assert any("the token is ***" in t for t in texts)
    manifest = tomllib.loads((r.run_dir / "manifest.toml").read_text(encoding="utf-8"))
    resolved = manifest["resolved"]
    assert resolved["vars"] == {"token": "***", "opts": {"password": "***"}}
    assert resolved["task"][0]["params"]["header"] == "Bearer ***"


def test_resume_finds_the_instances_of_a_run_with_secrets(run_recipe, seen, tmp_path):
    files = {"tasks.py": TASKS}
    text = RECIPE.format(executor="pool", seen=seen)
    out = str(tmp_path / "out")
    first = run_recipe(text, "--keep-going", "--output", out, files=files, env=ENV)
    assert first.exit_code == 1
    for path in seen.iterdir():
        path.unlink()
    run_id = os.readlink(tmp_path / "out" / "sec" / "latest")
    again = run_recipe(
        text, "--retry-failed", os.path.basename(run_id), "--output", out, files=files, env=ENV
    )
    assert again.exit_code == 1, again.stderr
    # only the failed instance ran again: the keys (made from masked params) matched
    assert sorted(p.name for p in seen.iterdir()) == ["4.txt"]


def test_plan_shows_stars(run_recipe, seen):
    text = RECIPE.format(executor="pool", seen=seen)
    for fmt in ("table", "json"):
        r = run_recipe(text, "--format", fmt, command="plan", files={"tasks.py": TASKS}, env=ENV)
        assert r.exit_code == 0, r.stderr
        assert SECRET not in r.stdout and json.dumps(SECRET)[1:-1] not in r.stdout
        assert "Bearer ***" in r.stdout


def test_a_rotated_secret_keeps_the_instances_keys(tmp_path):
    # a key made of the secret would change with it, and could be guessed back from it
    table = {
        "recipe": {"name": "r"},
        "task": [{"name": "t", "uses": "shell", "params": {"cmd": "echo ${secret.T}"}}],
    }
    specs = [read_recipe(table, environ={"T": v}).tasks[0] for v in ("one", "two")]
    shown = [s.shown_params(s.params_for({})) for s in specs]
    assert shown[0] == shown[1] == {"cmd": ["echo", "***"]}
    assert specs[0].params_for({}) == {"cmd": ["echo", "one"]}
    shown = repr(read_recipe(table, environ={"T": SECRET}))
    assert SECRET not in shown and repr(SECRET)[1:-1] not in shown and "'***'" in shown


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ('matrix = { k = ["${secret.T}"] }', "task.t.matrix: a secret cannot be a matrix value"),
        ('matrix = { k = ["${vars.v}"] }', "task.t.matrix: a secret cannot be a matrix value"),
        ('matrix = { include = [{ k = "${secret.T}" }] }', "task.t.matrix: a secret cannot be a matrix"),
        ('outputs = ["out/${secret.T}.txt"]', "task.t.outputs: a secret can only be used in task params"),
        ('timeout = "${secret.T}"', "task.t.timeout: a secret can only be used in task params"),
    ],
)
def test_where_a_secret_would_be_shown_it_is_refused(tmp_path, where, problem):
    path = tmp_path / "r.toml"
    path.write_text(
        f'[recipe]\nname = "r"\n[vars]\nv = "${{secret.T}}"\n'
        f'[[task]]\nname = "t"\nuses = "shell"\nparams = {{ cmd = "true" }}\n{where}\n'
    )
    with pytest.raises(RecipeErrors) as info:
        read_recipe(path, environ={"T": "hush-hush"})
    assert problem in str(info.value)
    assert "hush-hush" not in str(info.value)


@pytest.mark.parametrize(
    "table",
    [
        {"output": {"dir": "${secret.T}"}},
        {"recipe": {"name": "r", "description": "key ${secret.T}"}},
        {"run": {"executor": "${vars.v}"}},
    ],
)
def test_a_secret_outside_params_is_refused(table):
    data = {"recipe": {"name": "r"}, "vars": {"v": "${secret.T}"}, "task": [{"name": "t", "uses": "shell"}]}
    data.update(table)
    with pytest.raises(RecipeErrors) as info:
        read_recipe(data, environ={"T": "hush-hush"})
    assert "a secret can only be used in task params, [vars], [executor.NAME] and [notify]" in str(info.value)
    assert "hush-hush" not in str(info.value)


def test_secret_is_read_like_env(tmp_path):
    table = {
        "recipe": {"name": "r"},
        "executor": {"dask": {"address": "${secret.ADDR}"}},
        "task": [{"name": "t", "uses": "shell", "params": {"cmd": "echo ${secret.MISSING:-none}"}}],
    }
    r = read_recipe(table, environ={"ADDR": "tcp://user:pw@host:1"})
    assert r.executors == {"dask": {"address": "tcp://user:pw@host:1"}}  # the executor gets it
    assert r.to_table()["executor"] == {"dask": {"address": "***"}}
    assert r.task("t").params_for({}) == {"cmd": ["echo", "none"]}
    with pytest.raises(
        RecipeErrors, match=r"environment variable ADDR is not set \(give a default: \$\{secret"
    ):
        read_recipe(table, environ={})


def test_env_stays_plaintext(tmp_path):
    # env is the user's choice to show a value; only secret masks
    table = {
        "recipe": {"name": "r"},
        "task": [{"name": "t", "uses": "shell", "params": {"cmd": "echo ${env.T}"}}],
    }
    r = read_recipe(table, environ={"T": "visible"})
    assert r.to_table()["task"][0]["params"] == {"cmd": ["echo", "visible"]}


def test_the_cache_skips_what_ran_with_secrets(run_recipe, seen, tmp_path):
    files = {"tasks.py": TASKS}
    text = RECIPE.format(executor="pool", seen=seen).replace("workers = 2", "workers = 2\ncache = true")
    out = str(tmp_path / "out")
    first = run_recipe(text, "--keep-going", "--output", out, files=files, env=ENV)
    assert first.exit_code == 1, first.stderr
    for path in seen.iterdir():
        path.unlink()
    again = run_recipe(text, "--keep-going", "--output", out, files=files, env=ENV)
    assert again.exit_code == 1, again.stderr
    assert sorted(p.name for p in seen.iterdir()) == ["4.txt"]  # the ok ones came from the cache
    assert_nowhere(tmp_path / "out", SECRET, SECOND)
