"""The plugin system: discovery order, blocking, broken plugins, provenance."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import warnings
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


def test_plugins_v_names_the_module_and_the_distribution_as_pip_does(tmp_path):
    site = tmp_path / "site"
    make_dist(site, "toolkit_greeter", HELLO_PLUGIN, version="2.5")
    entry_points = site / "toolkit_greeter-2.5.dist-info" / "entry_points.txt"
    entry_points.write_text("[toolkit.plugins]\ngreeter = toolkit_greeter\n")
    out = toolkit_cli("plugins", "-v", env={"PYTHONPATH": str(site), "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "0"})
    assert out.returncode == 0, out.stderr
    block = out.stdout.split("\ngreeter ", 1)[1].split("\n")
    assert block[0].split()[:2] == ["2.5", "entry"]
    assert block[1].strip() == f"module: toolkit_greeter ({site / 'toolkit_greeter.py'})"
    assert block[2].strip() == "distribution: toolkit-greeter 2.5"  # not the dist-info's toolkit_greeter
    assert block[3].strip() == "tasks: hello.greet"


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
    assert plugins.info("raising_plugin").error == "failed in toolkit_register_tasks: KeyError: 'halfway'"
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


#: modules ``toolkit --help`` must not import: plugin dependencies, what only a run needs,
#: and what made every start slow (importlib.metadata ~15 ms, attrs ~8 ms)
NOT_AT_START = (
    "rich",
    "toolkit.execution.local",
    "multiprocessing.managers",
    "cronsim",
    "importlib.metadata",
    "email",
    "zipfile",
    "attr",
    "attrs",
    "toolkit.store.rundir",
    "toolkit.registry",
    "subprocess",
    "shutil",
    "tomllib",
    "json",
    "hashlib",
)


def imported_by(code: str, env: dict[str, str] | None = None) -> tuple[list[str], str]:
    """The modules of NOT_AT_START that ``code`` imports in a fresh interpreter (not those
    the interpreter had at start: a .pth, coverage's subprocess measurement), and its
    stdout."""
    script = (
        "import sys\nbefore = set(sys.modules)\n"
        + code
        + "\nnew = {m.partition('.')[0] for m in sys.modules if m not in before} | "
        "{m for m in sys.modules if m not in before}\n"
        f"print('NEW', sorted(new & set({NOT_AT_START!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("NEW "))
    return ast.literal_eval(line[4:]), out.stdout


def test_help_does_not_import_rich_or_plugin_dependencies():
    # entry points are looked up (autoload on), but the plugins this venv has installed
    # are blocked: their own imports are theirs
    from importlib.metadata import entry_points

    blocks = ", ".join(repr(f"-pno:{ep.name}") for ep in entry_points(group="toolkit.plugins"))
    code = f"from toolkit.cli import main\nrc = main(['--help', {blocks}])\nassert rc == 0"
    heavy, stdout = imported_by(code, env={"TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "0"})
    assert heavy == [], stdout
    assert "run" in stdout and "schedule" in stdout


def test_loading_plugin_files_in_a_worker_imports_little(tmp_path):
    """Spawned and fork-server workers import ``import_file_plugin`` (and the plugin
    files): that must not cost importlib.metadata or attrs."""
    (tmp_path / "light_plugin.py").write_text("VALUE = 1\n")
    code = (
        "from toolkit.plugin_files import import_file_plugin\n"
        f"assert import_file_plugin({str(tmp_path / 'light_plugin.py')!r}).VALUE == 1"
    )
    heavy, stdout = imported_by(code)
    assert heavy == [], stdout


def _dist(site: Path, folder: str, entry_points: str | None, metadata: str | None = "Version: 1.0\n") -> None:
    info = site / folder
    info.mkdir(parents=True)
    if metadata is not None:
        (info / ("PKG-INFO" if folder.endswith(".egg-info") else "METADATA")).write_text(
            f"Metadata-Version: 2.1\nName: {folder.partition('-')[0]}\n{metadata}\nlong description\n"
        )
    if entry_points is not None:
        (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def _both(group: str) -> tuple[list[tuple], list[tuple]]:
    from importlib import metadata

    from toolkit.entry_points import entry_points

    ours = [(ep.name, ep.value, ep.group, ep.version) for ep in entry_points(group)]
    with warnings.catch_warnings():  # 3.12+: a missing Version is deprecated (None for now)
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = [
            (ep.name, ep.value, ep.group, ep.dist.version if ep.dist else None)
            for ep in metadata.entry_points(group=group)
        ]
    return ours, theirs


def test_entry_points_are_found_as_importlib_metadata_finds_them(tmp_path, monkeypatch):
    """The scan of ``*.dist-info/entry_points.txt`` that spares every start
    importlib.metadata finds what it finds, in its order: the first distribution of a
    (normalized) name on sys.path wins, egg-info too, comments and spaces ignored."""
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(first, "tk_one-1.0.dist-info", "[toolkit.plugins]\none = tk_one\n[other]\nx = y\n")
    _dist(second, "TK.One-2.0.dist-info", "[toolkit.plugins]\none = tk_one_v2\n")  # shadowed
    _dist(
        second,
        "tk_two-0.3.dist-info",
        """
        # a comment
        [console_scripts]
        tk-two = tk_two.cli:main

          [toolkit.plugins]
          two   =   tk_two.plugin : hooks [extra]
          also=tk_two.more
        """,
        metadata="Version:   0.3.post1  \nSummary: x",
    )
    _dist(second, "tk_three.egg-info", "[toolkit.plugins]\nthree = tk_three\n", metadata="Version: 3")
    _dist(second, "tk_four-4.dist-info", None)  # no entry points at all
    _dist(second, "tk_five-5.dist-info", "[toolkit.plugins]\nfive = tk_five\n", metadata=None)
    monkeypatch.setattr(sys, "path", [str(first), "", str(tmp_path / "missing"), str(second), *sys.path])
    monkeypatch.chdir(tmp_path)
    for group in ("toolkit.plugins", "console_scripts", "pytest11", "other"):
        ours, theirs = _both(group)
        assert ours == theirs, group
    ours, _ = _both("toolkit.plugins")
    assert ours.index(
        ("two", "tk_two.plugin : hooks [extra]", "toolkit.plugins", "0.3.post1  ")
    ) + 1 == ours.index(("also", "tk_two.more", "toolkit.plugins", "0.3.post1  "))
    found = {name: (value, version) for name, value, _, version in ours}
    assert found["one"] == ("tk_one", "1.0")  # the first on sys.path
    assert found["three"] == ("tk_three", "3") and found["five"] == ("tk_five", None)


def test_unusual_sys_path_entries_fall_back_to_importlib_metadata(tmp_path, monkeypatch):
    import zipfile

    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("tk_zipped-1.5.dist-info/METADATA", "Name: tk_zipped\nVersion: 1.5\n")
        zf.writestr("tk_zipped-1.5.dist-info/entry_points.txt", "[toolkit.plugins]\nzipped = tk_zipped\n")
    monkeypatch.setattr(sys, "path", [str(archive), *sys.path])
    ours, theirs = _both("toolkit.plugins")
    assert ours == theirs
    assert ("zipped", "tk_zipped", "toolkit.plugins", "1.5") in ours


def test_hooks_are_found_in_modules_as_pluggy_finds_them(tmp_path, monkeypatch):
    """The plugin manager skips a module's non-callable names before pluggy looks them
    up: what it registers is what a plain pluggy manager registers."""
    import importlib

    import pluggy

    from toolkit.manager import BUILTIN_PLUGINS, new_plugin_manager

    (tmp_path / "odd_hooks.py").write_text(
        textwrap.dedent("""
        import toolkit

        CONSTANT = {"toolkit_impl": {}}

        def task() -> int:
            return 1

        @toolkit.hookimpl(specname="toolkit_register_tasks")
        def register(registry):
            registry.add(task, name="odd.task")

        @toolkit.hookimpl(trylast=True)
        def toolkit_register_sinks(registry):
            pass
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = [(name, importlib.import_module(module)) for name, module in BUILTIN_PLUGINS]
    modules.append(("odd_hooks", importlib.import_module("odd_hooks")))

    def found(pm):
        pm.add_hookspecs(hookspecs)
        for name, module in modules:
            pm.register(module, name)
        return {
            name: sorted(
                (hook.name, impl.function.__name__, sorted(impl.opts.items()))
                for hook in pm.get_hookcallers(module)
                for impl in hook.get_hookimpls()
                if impl.plugin is module
            )
            for name, module in modules
        }

    ours = found(new_plugin_manager())
    assert ours == found(pluggy.PluginManager("toolkit"))
    assert [hook for hook, _, _ in ours["odd_hooks"]] == ["toolkit_register_sinks", "toolkit_register_tasks"]
    sys.modules.pop("odd_hooks", None)


def test_an_entry_point_loads_its_module_or_attribute(tmp_path, monkeypatch):
    from toolkit.entry_points import EntryPoint

    (tmp_path / "ep_target.py").write_text("class A:\n    class B:\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = EntryPoint("x", "ep_target", "g").load()
    assert module.__name__ == "ep_target"
    assert EntryPoint("x", "ep_target : A.B [extra]", "g").load() is module.A.B
    with pytest.raises(ValueError, match="not 'module'"):
        EntryPoint("x", "not a value!", "g").load()
    sys.modules.pop("ep_target", None)


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
    (tmp_path / "attrs.py").write_text("raise SystemExit('must not run')\n")
    plugins = make_plugin_manager(LoadSpec(autoload=False, options=(str(tmp_path / "attrs.py"),)), warn=False)
    assert "a module named 'attrs' is already imported" in plugins.info("attrs").error


def test_a_plugin_file_named_like_a_standard_module_is_refused_imported_or_not(tmp_path):
    """Its folder goes first on sys.path: ``csv.py`` would replace the csv module for
    everything the run imports later, whether or not csv was imported yet."""
    (tmp_path / "csv.py").write_text("raise SystemExit('must not run')\n")
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[recipe]\nname = "r"\nplugins = ["csv.py"]\n'
        '[[task]]\nname = "t"\nuses = "shell"\nparams = { cmd = "true" }\n'
    )
    out = toolkit_cli("validate", str(recipe))
    assert out.returncode == 0  # a broken plugin is skipped; this recipe needs nothing from it
    assert (
        "plugin 'csv' (recipe) skipped: csv.py has the name of a standard library module;"
        " rename the file" in out.stderr
    )
    assert "must not run" not in out.stdout + out.stderr
