"""The plugin contract as plugin authors rely on it: every hook through pluggy, failures
named and contained, name clashes refused unless ``replace=True`` (issue 14, bugs 1-6)."""

from __future__ import annotations

import textwrap

import pytest

import toolkit
from toolkit.api import execute, prepare
from toolkit.cli import main
from toolkit.errors import PluginError

SQUARES = """
[recipe]
name = "contract"
plugins = ["toolkit.conformance"{extra}]
[run]
workers = 1
executor = "{executor}"
[[task]]
name = "sq"
uses = "conformance.square"
matrix = {{ x = {{ range = [0, 4] }} }}
"""


def squares(*plugins: str, executor: str = "process") -> str:
    return SQUARES.format(extra="".join(f', "{p}"' for p in plugins), executor=executor)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def plugin_file(tmp_path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text("import toolkit\n" + textwrap.dedent(text))
    return str(path)


# -- bug 1: toolkit_add_commands -------------------------------------------------
def test_a_plugin_whose_add_commands_raises_is_skipped_and_every_command_works(tmp_path, capsys):
    bad = plugin_file(
        tmp_path,
        "bad_commands",
        """
        @toolkit.hookimpl
        def toolkit_add_commands(subparsers):
            subparsers.add_parser("half", help="added before the error")
            raise RuntimeError("no commands today")
        """,
    )
    warning = "plugin 'bad_commands' failed in toolkit_add_commands: RuntimeError: no commands today"
    for argv in (["--help"], ["--version"], ["plugins"], ["tasks"]):
        code, out, err = cli(capsys, "-p", bad, *argv)
        assert code == 0, (argv, err)
        assert warning in err and "Traceback" not in err
    code, out, err = cli(capsys, "-p", bad, "--help")
    assert "half" not in out  # nothing of the failed plugin is left
    code, out, err = cli(capsys, "-p", bad, "plugins")
    assert "bad_commands" in out and "FAILED: failed in toolkit_add_commands" in out


def test_a_subcommand_name_that_is_taken_is_refused_and_the_first_keeps_it(tmp_path, capsys):
    taker = plugin_file(
        tmp_path,
        "taker",
        """
        @toolkit.hookimpl
        def toolkit_add_commands(subparsers):
            p = subparsers.add_parser("run", help="not the real run")
            p.set_defaults(handler=lambda args: 99)
        """,
    )
    recipe = tmp_path / "r.toml"
    recipe.write_text(squares())
    code, _out, err = cli(capsys, "-p", taker, "run", str(recipe), "-q", "--output", str(tmp_path / "o"))
    assert code == 0, err
    assert (
        "plugin 'taker' failed in toolkit_add_commands: subcommand 'run' is already added by plugin 'builtin.run'"
        in err
    )


def test_a_handler_that_returns_none_succeeded(tmp_path, capsys):
    quiet = plugin_file(
        tmp_path,
        "quiet",
        """
        @toolkit.hookimpl
        def toolkit_add_commands(subparsers):
            p = subparsers.add_parser("hello", help="say hello")
            p.set_defaults(handler=hello)

        def hello(args):
            print("hello")
        """,
    )
    assert cli(capsys, "-p", quiet, "hello")[:2] == (0, "hello\n")


# -- bug 2: name clashes -------------------------------------------------------------
def test_a_sink_named_like_a_builtin_is_refused_and_results_jsonl_is_still_written(run_recipe):
    res = run_recipe(
        squares("fake_jsonl.py"),
        files={
            "fake_jsonl.py": """
                import toolkit

                class Nothing:
                    def __init__(self, run_dir, recipe):
                        pass
                    def write(self, batch):
                        pass
                    def close(self, status):
                        pass

                @toolkit.hookimpl
                def toolkit_register_sinks(registry):
                    registry.add("jsonl", Nothing)
            """
        },
    )
    assert res.exit_code == 0, res.stderr
    assert (
        "plugin 'fake_jsonl' failed in toolkit_register_sinks: sink 'jsonl' is already registered by"
        " plugin 'builtin.sinks'; pass replace=True to replace it" in res.stderr
    )
    assert sorted(r["value"] for r in res.records) == [0, 1, 4, 9]


SHELL = """
import toolkit

def shell(cmd: str = ""):
    return "mine"

@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(shell, name="shell"{replace})
"""


def test_a_recipe_task_named_like_a_builtin_is_refused_unless_it_replaces(run_recipe, capsys):
    recipe = """
        [recipe]
        name = "shells"
        plugins = ["local.py"]
        [[task]]
        name = "s"
        uses = "shell"
        params = { cmd = "true" }
    """
    refused = run_recipe(recipe, files={"local.py": SHELL.format(replace="")})
    assert (
        "plugin 'local' failed in toolkit_register_tasks: task 'shell' is already registered"
        in refused.stderr
    )
    assert refused.exit_code == 0 and refused.records[0]["value"] != "mine"  # the built-in ran

    replaced = run_recipe(recipe, files={"local.py": SHELL.format(replace=", replace=True")})
    assert replaced.exit_code == 0, replaced.stderr
    assert replaced.records[0]["value"] == "mine" and "warning" not in replaced.stderr
    code, out, _err = cli(capsys, "tasks", "--recipe", str(replaced.recipe))
    assert code == 0
    (line,) = [line for line in out.splitlines() if line.startswith("shell ")]
    assert "local" in line and "replaces builtin.tasks" in line


# -- bugs 3 and 4: hooks through pluggy, failures during a run -------------------------
@pytest.mark.parametrize(
    ("hook", "body"),
    [
        ("toolkit_configure", "def toolkit_configure(recipe):\n    raise ValueError('no')"),
        ("toolkit_choose_executor", "def toolkit_choose_executor(plan):\n    raise ValueError('no')"),
        ("toolkit_run_start", "def toolkit_run_start(run):\n    raise ValueError('no')"),
        ("toolkit_task_finish", "def toolkit_task_finish(record):\n    raise ValueError('no')"),
        ("toolkit_run_finish", "def toolkit_run_finish(summary):\n    raise ValueError('no')"),
    ],
)
def test_a_hook_that_raises_is_named_exit_2_and_the_reason_is_kept(run_recipe, hook, body):
    text = f"import toolkit\n\n@toolkit.hookimpl\n{body}\n"
    executor = "auto" if hook == "toolkit_choose_executor" else "process"
    res = run_recipe(squares("breaks.py", executor=executor), files={"breaks.py": text})
    message = f"plugin 'breaks' failed in {hook}: ValueError: no"
    assert res.exit_code == 2 and f"toolkit: error: {message}" in res.stderr
    assert "Traceback" not in res.stderr
    if hook in ("toolkit_configure", "toolkit_choose_executor"):
        assert res.run_dir is None  # nothing ran, nothing was written
        return
    manifest = res.manifest
    assert manifest["status"] == "failed" and manifest["reason"] == message
    if hook == "toolkit_run_finish":  # every record was written before it
        assert len(res.records) == 4


def test_run_finish_is_called_when_a_run_ends_by_an_error(toolkit_pm, register_plugin, tmp_path):
    ended = []

    class Plugin:
        @toolkit.hookimpl
        def toolkit_task_start(self, instance):
            raise KeyError(instance.id)

        @toolkit.hookimpl
        def toolkit_run_finish(self, run, summary):
            ended.append((summary.status, summary.counts["not_run"]))

    register_plugin(Plugin(), "flaky")
    recipe, plugins = prepare(squares_dict(), plugins=toolkit_pm)
    with pytest.raises(PluginError, match=r"plugin 'flaky' failed in toolkit_task_start: KeyError"):
        execute(recipe, plugins, output=tmp_path)
    assert ended == [("failed", 4)]


def squares_dict(**run):
    return {
        "recipe": {"name": "contract", "plugins": ["toolkit.conformance"]},
        "run": {"workers": 1, "executor": "process", **run},
        "task": [{"name": "sq", "uses": "conformance.square", "matrix": {"x": {"range": [0, 4]}}}],
    }


def test_registration_hooks_take_argument_subsets_wrappers_and_order(toolkit_pm, register_plugin):
    order = []

    class NoArgs:
        @toolkit.hookimpl
        def toolkit_register_tasks(self):  # declares nothing it does not use
            order.append("noargs")

    class Wrapper:
        @toolkit.hookimpl(wrapper=True)
        def toolkit_register_tasks(self, registry):
            order.append("wrapper before")
            result = yield
            registry.add(_double, name="wrapped.double")  # after every other plugin
            order.append(("wrapper after", "shell" in registry))
            return result

    class First:
        @toolkit.hookimpl(tryfirst=True)
        def toolkit_register_tasks(self, registry):
            order.append("first")

    for plugin, name in ((NoArgs(), "noargs"), (Wrapper(), "wrapper"), (First(), "first")):
        register_plugin(plugin, name)
    tasks = toolkit_pm.registries.tasks
    assert tasks.get("wrapped.double").plugin == "wrapper"
    assert order[:2] == ["wrapper before", "first"] and order[-1] == ("wrapper after", True)
    assert "noargs" in order


def _double(x: int) -> int:
    return 2 * x


def test_configure_wrappers_and_chaining(toolkit_pm, register_plugin):
    import attrs

    class Workers:
        @toolkit.hookimpl
        def toolkit_configure(self, recipe):
            return attrs.evolve(recipe, run=attrs.evolve(recipe.run, workers=recipe.run.workers + 1))

    class Wrapped:
        @toolkit.hookimpl(wrapper=True)
        def toolkit_configure(self, recipe):
            yield
            return attrs.evolve(recipe, description="configured")

    register_plugin(Workers(), "workers")
    register_plugin(Wrapped(), "wrapped")
    recipe, _ = prepare(squares_dict(), plugins=toolkit_pm)
    assert recipe.run.workers == 2 and recipe.description == "configured"


# -- bug 6: plan, -p no: ---------------------------------------------------------------
def test_plan_refuses_an_executor_a_plugin_chose_that_does_not_exist(run_recipe):
    chooser = "import toolkit\n\n@toolkit.hookimpl\ndef toolkit_choose_executor():\n    return 'warp'\n"
    for command in ("plan", "run"):
        res = run_recipe(
            squares("chooser.py", executor="auto"), files={"chooser.py": chooser}, command=command
        )
        assert res.exit_code == 2, res.stdout
        assert (
            "plugin 'chooser' failed in toolkit_choose_executor: it chose executor 'warp', which no"
            " plugin registered (known: pool, process)" in res.stderr
        )


def test_blocking_an_unknown_plugin_warns(tmp_path, capsys):
    code, _out, err = cli(capsys, "-p", "no:builtin.nothing", "tasks")
    assert code == 0
    assert "-p no:builtin.nothing: no plugin is named 'builtin.nothing'" in err
    code, _out, err = cli(capsys, "-p", "no:builtin.sinks", "tasks")
    assert "no plugin is named" not in err


# -- bug 5: the testing kit --------------------------------------------------------------
def test_hook_calls_sees_the_registration_hooks(toolkit_pm, hook_calls):
    prepare(squares_dict(), plugins=toolkit_pm)
    names = [name for name, _ in hook_calls]
    for hook in ("toolkit_register_tasks", "toolkit_register_executors", "toolkit_register_sinks"):
        assert hook in names


def test_hook_calls_sees_the_hooks_of_in_process_runs(hook_calls, register_plugin, run_recipe):
    class Watcher:  # toolkit calls toolkit_configure and toolkit_task_finish only if implemented
        @toolkit.hookimpl
        def toolkit_configure(self):
            pass

        @toolkit.hookimpl
        def toolkit_task_finish(self):
            pass

    register_plugin(Watcher(), "watcher")
    res = run_recipe(squares())
    assert res.exit_code == 0, res.stderr
    names = [name for name, _ in hook_calls]
    for hook in ("toolkit_add_commands", "toolkit_configure", "toolkit_run_start", "toolkit_run_finish"):
        assert names.count(hook) == 1, (hook, names)
    finished = [kwargs["record"]["instance"] for name, kwargs in hook_calls if name == "toolkit_task_finish"]
    assert sorted(finished) == [f"sq[x={x}]" for x in range(4)]


def test_register_plugin_reaches_run_recipe(register_plugin, run_recipe):
    seen = []

    class Watcher:
        @toolkit.hookimpl
        def toolkit_run_start(self, run):
            seen.append(run.run_id)

    register_plugin(Watcher(), "watcher")
    res = run_recipe(squares())
    assert res.exit_code == 0 and seen == [res.run_dir.name]
    with pytest.raises(ValueError, match="cannot use the plugins register_plugin added"):
        run_recipe(squares(), via="cli")


def test_run_recipe_runs_in_the_recipe_folder_and_honours_output(run_recipe, tmp_path):
    files = {
        "here.py": "import toolkit, os\n\ndef cwd():\n    return os.getcwd()\n\n"
        "@toolkit.hookimpl\ndef toolkit_register_tasks(registry):\n    registry.add(cwd, name='here.cwd')\n"
    }
    recipe = '[recipe]\nname = "cwd"\nplugins = ["here.py"]\n[run]\nexecutor = "process"\n[[task]]\nname = "c"\nuses = "here.cwd"\n'
    inproc = run_recipe(recipe, files=files)
    via_cli = run_recipe(recipe, files=files, via="cli")
    assert inproc.records[0]["value"] == str(inproc.recipe.parent)
    assert via_cli.records[0]["value"] == str(via_cli.recipe.parent)
    out = tmp_path / "elsewhere"
    res = run_recipe(recipe, "--output", str(out), files=files)
    assert res.output == out and len(res.records) == 1


def test_plugins_shows_what_a_plugin_replaced_and_verbose_shows_where_it_is_from(
    run_recipe, capsys, tmp_path
):
    local = tmp_path / "local.py"
    local.write_text(SHELL.format(replace=", replace=True"))
    code, out, _err = cli(capsys, "-p", str(local), "plugins")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("local ")]
    assert "register_tasks; replaces task 'shell' of builtin.tasks" in row
    code, out, _err = cli(capsys, "-p", str(local), "plugins", "-v")
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("local "))
    assert lines[at + 1] == f"    module: local ({local})"
    assert lines[at + 2] == "    tasks: shell (replaces builtin.tasks)"
    assert "    commands: run" in lines


def test_output_tables_are_the_options_of_their_sink(tmp_path, capsys):
    from toolkit.recipe import read_recipe

    recipe = tmp_path / "r.toml"
    text = squares().replace("[run]", '[output]\nformats = ["csv"]\n[output.csv]\nsep = ";"\n[run]')
    recipe.write_text(text)
    assert read_recipe(recipe).output.options_for("csv") == {"sep": ";"}
    assert read_recipe(recipe).output.options_for("jsonl") == {}
    recipe.write_text(text.replace("[output.csv]", "[output.parquet]"))
    assert main(["validate", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "r.toml:7: output.parquet: options for format 'parquet', which output.formats does not list" in err


def test_an_exception_whose_str_raises_is_still_named(tmp_path, capsys):
    """A plugin's exception is arbitrary code: one whose __str__ raises is named as the
    traceback module names it, never a traceback of toolkit's own (issue 13)."""
    unprintable = (
        "class Unprintable(Exception):\n    def __str__(self):\n        raise RuntimeError('no str')\n"
    )
    at_import = plugin_file(tmp_path, "at_import", unprintable + "raise Unprintable()\n")
    in_hook = plugin_file(
        tmp_path,
        "in_hook",
        unprintable + "@toolkit.hookimpl\ndef toolkit_register_tasks(registry):\n    raise Unprintable()\n",
    )
    code, _out, err = cli(capsys, "-p", at_import, "-p", in_hook, "plugins")
    assert code == 0 and "Traceback" not in err, err
    assert "plugin 'at_import' (-p) skipped: Unprintable: <exception str() failed>" in err
    assert "plugin 'in_hook' failed in toolkit_register_tasks: Unprintable: <exception str() failed>" in err


#: every hook, with the arguments its spec declares
EVERY_HOOK = {
    "toolkit_register_tasks": "registry",
    "toolkit_register_executors": "registry",
    "toolkit_register_sinks": "registry",
    "toolkit_configure": "recipe",
    "toolkit_choose_executor": "recipe, plan",
    "toolkit_run_start": "run",
    "toolkit_task_start": "instance",
    "toolkit_task_finish": "instance, record",
    "toolkit_run_finish": "run, summary",
    "toolkit_add_commands": "subparsers",
}


def test_wrapper_tryfirst_and_trylast_work_on_every_hook(run_recipe):
    """Three plugin files implement every hook, as a wrapper, tryfirst and trylast; one
    run of the command line calls each of them, in that order, around one another."""
    from toolkit import hookspecs

    assert set(EVERY_HOOK) == {name for name in vars(hookspecs) if name.startswith("toolkit_")}
    files = {}
    for kind, marker in (("wrap", "wrapper=True"), ("first", "tryfirst=True"), ("last", "trylast=True")):
        lines = [
            "import os, toolkit",
            "def log(text):",
            "    with open('calls.txt', 'a') as f:",
            "        f.write(text + '\\n')",
        ]
        for hook, args in EVERY_HOOK.items():
            lines += [f"@toolkit.hookimpl({marker})", f"def {hook}({args}):"]
            if kind == "wrap":
                lines += [
                    f"    log('wrap {hook}')",
                    "    result = yield",
                    f"    log('unwrap {hook}')",
                    "    return result",
                ]
            else:
                lines += [f"    log('{kind} {hook}')"]
        files[f"{kind}.py"] = "\n".join(lines) + "\n"
    res = run_recipe(
        squares(executor="auto"), "-p", "wrap.py", "-p", "first.py", "-p", "last.py", files=files
    )
    assert res.exit_code == 0, res.stderr
    calls = (res.recipe.parent / "calls.txt").read_text().splitlines()
    for hook in EVERY_HOOK:
        seen = [line.split()[0] for line in calls if line.split()[1] == hook]
        # per hook call: the wrapper around tryfirst, then trylast; the two hooks called
        # plugin by plugin have the wrapper around its own plugin's implementations only
        by_plugin = hook in ("toolkit_configure", "toolkit_choose_executor")
        expected = ["wrap", "unwrap", "first", "last"] if by_plugin else ["wrap", "first", "last", "unwrap"]
        if hook == "toolkit_choose_executor":  # the built-in (trylast, loaded first) answers before "last"
            expected = expected[:3]
        calls_of_hook = len(seen) // len(expected)
        assert seen == expected * calls_of_hook and calls_of_hook >= 1, (hook, seen)
