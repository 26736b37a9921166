"""The plugin system: discovery order, blocking, broken plugins, provenance."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import toolkit
from toolkit import hookspecs
from toolkit.errors import TaskRegistrationError
from toolkit.manager import LoadSpec, make_plugin_manager
from toolkit.registry import TaskRegistry

ROOT = Path(__file__).resolve().parents[2]


def toolkit_cli(*args, env=None, cwd=None, timeout=60):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def make_dist(site: Path, name: str, module_src: str, version: str = "1.0") -> None:
    """An installed distribution, as pip leaves it: a module and its dist-info with an
    entry point in the group ``toolkit.plugins``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(module_src))
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[toolkit.plugins]\n{name} = {name}\n")
    (info / "RECORD").write_text("")


HELLO_PLUGIN = """
    import toolkit

    def hello(who: str = "world") -> str:
        '''Say hello.'''
        return f"hello {who}"

    @toolkit.hookimpl
    def toolkit_register_tasks(registry):
        registry.add(hello, name="hello.greet", version="2")
"""

HELLO_RECIPE = """
[recipe]
name = "hello"
[run]
workers = 1
[[task]]
name = "greet"
uses = "hello.greet"
params = { who = "plugin" }
"""


@pytest.fixture
def site_with_plugin(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "toolkit_hello", HELLO_PLUGIN)
    return {"PYTHONPATH": str(site), "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "0"}


def test_hook_toolkit_register_tasks_from_an_installed_distribution(site_with_plugin, tmp_path):
    out = toolkit_cli("plugins", env=site_with_plugin)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("toolkit_hello"))
    assert "1.0" in line and "entry point" in line and "register_tasks" in line

    recipe = tmp_path / "hello.toml"
    recipe.write_text(HELLO_RECIPE)
    run = toolkit_cli("run", str(recipe), "--output", str(tmp_path / "runs"), env=site_with_plugin)
    assert run.returncode == 0, run.stdout + run.stderr
    results = next((tmp_path / "runs" / "hello").glob("*/results.jsonl")).read_text()
    assert '"value": "hello plugin"' in results


def test_blocking_an_entry_point_plugin_hides_it(site_with_plugin, tmp_path):
    out = toolkit_cli("-p", "no:toolkit_hello", "plugins", env=site_with_plugin)
    assert out.returncode == 0
    assert "toolkit_hello" not in out.stdout
    tasks = toolkit_cli("tasks", "-p", "no:toolkit_hello", env=site_with_plugin)
    assert "hello.greet" not in tasks.stdout
    recipe = tmp_path / "hello.toml"
    recipe.write_text(HELLO_RECIPE)
    run = toolkit_cli("run", str(recipe), "-p", "no:toolkit_hello", env=site_with_plugin)
    assert run.returncode == 2
    assert "hello.greet" in run.stderr
    assert "Traceback" not in run.stderr


def test_autoload_off_skips_entry_points(site_with_plugin):
    env = {**site_with_plugin, "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = toolkit_cli("tasks", env=env)
    assert "hello.greet" not in out.stdout
    assert "shell" in out.stdout


def test_a_plugin_that_fails_to_import_is_named_and_skipped(tmp_path):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "fine_plugin.py").write_text(textwrap.dedent(HELLO_PLUGIN))
    env = {"TOOLKIT_PLUGINS": "broken_plugin,fine_plugin", "PYTHONPATH": str(tmp_path)}
    out = toolkit_cli("plugins", env=env)
    assert out.returncode == 0
    assert "broken_plugin" in out.stderr and "boom at import" in out.stderr  # the warning
    broken = next(line for line in out.stdout.splitlines() if line.startswith("broken_plugin"))
    assert "FAILED" in broken and "RuntimeError: boom at import" in broken
    assert "TOOLKIT_PLUGINS" in broken
    tasks = toolkit_cli("tasks", env=env)
    assert tasks.returncode == 0
    assert "hello.greet" in tasks.stdout


def test_a_hook_that_raises_while_registering_is_skipped(tmp_path, capsys):
    plugin = tmp_path / "raising_plugin.py"
    plugin.write_text(
        textwrap.dedent("""
        import toolkit
        def ok() -> int:
            return 1
        @toolkit.hookimpl
        def toolkit_register_tasks(registry):
            registry.add(ok, name="raising.ok")
            raise KeyError("halfway")
    """)
    )
    plugins = make_plugin_manager(LoadSpec(autoload=False, options=(str(plugin),)))
    assert "raising.ok" not in plugins.registries.tasks  # rolled back
    assert "shell" in plugins.registries.tasks
    assert plugins.info("raising_plugin").error == "KeyError: 'halfway'"
    assert "raising_plugin" in capsys.readouterr().err
    del sys.modules["raising_plugin"]


def test_load_order_builtins_entry_points_options_env_recipe(tmp_path, site_with_plugin, monkeypatch):
    for name in ("opt_plugin", "env_plugin"):
        (tmp_path / f"{name}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(site_with_plugin["PYTHONPATH"])
    import importlib

    importlib.invalidate_caches()
    load = LoadSpec(
        autoload=True, options=("opt_plugin",), env=("env_plugin",), recipe=(str(tmp_path / "opt_plugin.py"),)
    )
    plugins = make_plugin_manager(load, warn=False)
    ours = {"toolkit_hello", "opt_plugin", "env_plugin"}
    sources = [(i.name, i.source) for i in plugins.infos if i.name in ours]
    assert sources == [
        ("toolkit_hello", "entry point"),
        ("opt_plugin", "-p"),
        ("env_plugin", "TOOLKIT_PLUGINS"),
    ]
    kinds = [i.source for i in plugins.infos]
    assert kinds.index("entry point") == kinds.count("builtin")  # every built-in comes first
    for name in ("opt_plugin", "env_plugin", "toolkit_hello"):
        sys.modules.pop(name, None)


def test_lambdas_and_closures_are_refused_with_the_reason():
    registry = TaskRegistry()
    with pytest.raises(TaskRegistrationError, match="lambda"):
        registry.add(lambda: 1, name="x")

    def outer():
        def inner():
            return 1

        return inner

    with pytest.raises(TaskRegistrationError, match="closure"):
        registry.add(outer(), name="y")


def test_unknown_toolkit_hook_in_a_plugin_is_reported(tmp_path):
    plugin = tmp_path / "typo_plugin.py"
    plugin.write_text("import toolkit\n@toolkit.hookimpl\ndef toolkit_register_taks(registry):\n    pass\n")
    plugins = make_plugin_manager(LoadSpec(autoload=False, options=(str(plugin),)), warn=False)
    assert "unknown hook toolkit_register_taks" in plugins.info("typo_plugin").error
    sys.modules.pop("typo_plugin", None)


def test_every_hookspec_is_documented_and_tested():
    specs = [name for name in dir(hookspecs) if name.startswith("toolkit_")]
    assert len(specs) >= 10
    test_source = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    test_names = {node.name for node in ast.walk(ast.parse(test_source)) if isinstance(node, ast.FunctionDef)}
    for name in specs:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert len(doc.split()) >= 15, f"{name} needs a docstring saying when, where, args, return"
        assert "main process" in doc or "Called" in doc, name
        assert any(t.startswith(f"test_hook_{name}") for t in test_names), f"no test_hook_{name}*"


def test_help_does_not_import_rich_or_plugin_dependencies():
    code = (
        "import sys\nfrom toolkit.cli import main\nrc = main(['--help'])\n"
        "heavy = [m for m in ('rich', 'toolkit.execution.local', 'multiprocessing.managers', 'cronsim') "
        "if m in sys.modules]\nprint('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "run" in out.stdout and "schedule" in out.stdout


def test_hook_toolkit_add_commands(toolkit_pm, register_plugin, capsys):
    import argparse

    from toolkit.cli import build_parser

    class Plugin:
        @toolkit.hookimpl
        def toolkit_add_commands(self, subparsers):
            p = subparsers.add_parser("hello", help="say hello")
            p.set_defaults(handler=lambda args: print("hello from a plugin") or 0)

    register_plugin(Plugin(), "hello-cmd")
    parser = build_parser(toolkit_pm)
    args = parser.parse_args(["hello"])
    assert isinstance(parser, argparse.ArgumentParser)
    assert args.handler(args) == 0
    assert "hello from a plugin" in capsys.readouterr().out


def test_recipes_with_a_tasks_py_each_validate_and_run(tmp_path):
    """``tasks.py`` is the natural name for a task module: it must not clash with the
    built-ins, nor with another recipe's ``tasks.py`` in the same command."""
    recipes = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "tasks.py").write_text(
            "import toolkit\n"
            f"def {name}() -> str:\n    return {name!r}\n"
            "@toolkit.hookimpl\ndef toolkit_register_tasks(registry):\n"
            f"    registry.add({name}, name='{name}.go')\n"
        )
        recipe = folder / "recipe.toml"
        recipe.write_text(
            f'[recipe]\nname = "{name}"\nplugins = ["tasks.py"]\n[[task]]\nname = "go"\nuses = "{name}.go"\n'
        )
        recipes.append(recipe)
    out = toolkit_cli("validate", *map(str, recipes))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{recipes[0]}: ok", f"{recipes[1]}: ok"]
    run = toolkit_cli("run", str(recipes[1]), "--output", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stderr


def test_a_plugin_file_named_like_an_imported_module_is_refused(tmp_path):
    (tmp_path / "json.py").write_text("raise SystemExit('must not run')\n")
    plugins = make_plugin_manager(LoadSpec(autoload=False, options=(str(tmp_path / "json.py"),)), warn=False)
    assert "a module named 'json' is already imported" in plugins.info("json").error
