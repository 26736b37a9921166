"""``toolkit --help`` lists the built-in commands from their table, without pluggy, when
no other plugin adds commands: what it prints, warns and exits with is what the command
line built through every plugin's ``toolkit_add_commands`` gives. Real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from toolkit.builtin.commands import COMMANDS
from toolkit.cli import asks_for_help, build_parser
from toolkit.manager import HOOK_ARGUMENTS, LoadSpec, Plugins, adds_no_commands

#: runs the command line with argv[2:]; argv[1] "full" builds it through the hooks always
SCRIPT = """
import sys
from toolkit import cli
if sys.argv[1] == "full":
    cli.asks_for_help = lambda argv: False
code = cli.main(sys.argv[2:])
print("pluggy imported:", "pluggy" in sys.modules, file=sys.stderr)
sys.exit(code)
"""

TASK_PLUGIN = """
import toolkit

def echo(x: int = 0) -> int:
    return x

@toolkit.hookimpl(trylast=True)
def toolkit_register_tasks(registry):
    registry.add(echo, name="tasky.echo")
"""

COMMAND_PLUGIN = """
import toolkit

@toolkit.hookimpl
def toolkit_add_commands(subparsers):
    subparsers.add_parser("hello", help="say hello")
"""

BAD_ARGUMENT_PLUGIN = """
import toolkit

@toolkit.hookimpl
def toolkit_register_tasks(registry, nonsense):
    pass
"""


def cli(mode: str, argv: list[str], env: dict[str, str]) -> tuple[int, str, list[str], bool]:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "1", "COLUMNS": "100", **env},
    )
    *warnings, last = proc.stderr.splitlines()
    return proc.returncode, proc.stdout, warnings, last.endswith("True")


@pytest.fixture
def plugin_files(tmp_path):
    for name, text in (
        ("help_tasky", TASK_PLUGIN),
        ("help_hello", COMMAND_PLUGIN),
        ("help_bad", BAD_ARGUMENT_PLUGIN),
        ("help_broken", "raise RuntimeError('no import today')\n"),
    ):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "fast"),
    [
        (["--help"], True),
        ([], True),
        (["-h", "-v"], True),
        (["-p", "no:builtin.runs", "--verbose", "--help"], True),
        (["-p", "{dir}/help_tasky.py", "--help"], True),
        (["-p{dir}/help_tasky.py", "-p", "no:builtin.run"], True),
        (["-p", "{dir}/help_hello.py", "--help"], False),
        (["-p", "{dir}/help_bad.py", "--help"], False),
        (["-p", "{dir}/help_broken.py", "--help"], False),
        (["-p", "{dir}/help_tasky.py", "--help", "run"], False),
    ],
)
def test_help_is_what_the_command_line_built_through_the_hooks_prints(plugin_files, argv, fast):
    argv = [a.format(dir=plugin_files) for a in argv]
    code, out, warnings, pluggy = cli("quick", argv, {})
    assert (code, out, warnings) == cli("full", argv, {})[:3]
    assert code == (2 if "-h" not in argv and "--help" not in argv else 0)
    assert "usage: toolkit" in out and "validate" in out
    assert pluggy is not fast
    if "no:builtin.runs" in argv:
        assert "list earlier runs" not in out and "one run's summary" not in out
    if "help_hello.py" in " ".join(argv):
        assert "say hello" in out
    if "help_bad.py" in " ".join(argv) or "help_broken.py" in " ".join(argv):
        assert "warning: plugin 'help_" in warnings[0]


def test_help_lists_the_commands_of_installed_plugins(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    for name, text in (("help_ep_tasky", TASK_PLUGIN), ("help_ep_hello", COMMAND_PLUGIN)):
        (site / f"{name}.py").write_text(textwrap.dedent(text))
        info = site / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[toolkit.plugins]\n{name} = {name}\n")
    env = {"PYTHONPATH": str(site), "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD": "0"}
    # the plugins this venv has installed are blocked: they may add commands
    from importlib.metadata import entry_points

    argv = ["--help", *(f"-pno:{ep.name}" for ep in entry_points(group="toolkit.plugins"))]
    quick = cli("quick", argv, env)
    assert quick == cli("full", argv, env)
    assert "say hello" in quick[1] and quick[3]  # help_ep_hello adds a command: through pluggy
    blocked = cli("quick", [*argv, "-p", "no:help_ep_hello"], env)
    assert blocked[:3] == cli("full", [*argv, "-p", "no:help_ep_hello"], env)[:3]
    assert "say hello" not in blocked[1] and not blocked[3]


def test_the_table_of_builtin_commands_is_what_the_builtin_plugins_add():
    plugins = Plugins(LoadSpec(autoload=False)).load_all()
    build_parser(plugins)
    assert plugins.commands == {command: plugin for plugin, command, _ in COMMANDS}


def test_hook_arguments_are_the_hookspecs():
    """Every hook, with what its spec says: a hook missing from the table would send
    ``--help`` through pluggy for every plugin that implements it."""
    from pluggy._hooks import varnames

    from toolkit import hookspecs

    specs = {name: getattr(hookspecs, name) for name in dir(hookspecs) if name.startswith("toolkit_")}
    assert {hook: (arguments, ()) for hook, arguments in HOOK_ARGUMENTS.items()} == {
        name: varnames(spec) for name, spec in specs.items()
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("@toolkit.hookimpl\ndef toolkit_configure(recipe):\n    pass\n", True),
        ("@toolkit.hookimpl\ndef toolkit_configure(recipe, extra=1):\n    pass\n", True),
        ("def toolkit_add_commands(subparsers):\n    pass\n", True),  # not marked: no hook
        ("from random import randint\n", True),
        ("@toolkit.hookimpl(specname='toolkit_add_commands')\ndef add(subparsers):\n    pass\n", False),
        ("@toolkit.hookimpl\ndef toolkit_configure(recipe, extra):\n    pass\n", False),
        ("@toolkit.hookimpl\ndef toolkit_configur(recipe):\n    pass\n", False),
        ("@toolkit.hookimpl(wrapper=True)\ndef toolkit_configure(recipe):\n    return (yield)\n", False),
        ("@toolkit.hookimpl(tryfirst=True, bogus=1)\ndef toolkit_configure(recipe):\n    pass\n", False),
        ("def __getattr__(name):\n    raise AttributeError(name)\n", False),
    ],
)
def test_adds_no_commands_judges_from_the_marks_or_says_false(tmp_path, source, expected):
    plugin = tmp_path / "help_judged.py"
    plugin.write_text("import toolkit\n" + source)
    try:
        assert adds_no_commands(LoadSpec(autoload=False, options=(str(plugin),))) is expected
        assert adds_no_commands(LoadSpec(autoload=False, options=(str(plugin),), blocked=("help_judged",)))
    finally:
        sys.modules.pop("help_judged", None)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], True),
        ([], True),
        (["-vv", "-p", "x", "-px", "-h"], True),
        (["--hel"], False),  # argparse's abbreviation: left to argparse
        (["-p"], False),
        (["-p", "--help"], False),
        (["-p=x", "--help"], False),
        (["--", "--help"], False),
        (["run", "--help"], False),
        (["--version"], False),
    ],
)
def test_asks_for_help(argv, expected):
    assert asks_for_help(argv) is expected
