"""What ``toolkit init --plugin NAME`` writes: an installable plugin distribution.

``toolkit-NAME/`` with ``pyproject.toml`` (the ``toolkit.plugins`` entry point named
NAME), the package ``toolkit_NAME`` (a task, ``NAME.greet``), ``py.typed``, a README,
and tests that use ``toolkit.testing`` and pass as written once the folder is installed.
"""

from __future__ import annotations

import re
from pathlib import Path

from toolkit.errors import UsageError

#: what NAME may be: it names the entry point, the task prefix and (with '-' as '_') the package
PLUGIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "toolkit-{name}"
version = "0.1.0"
description = "A toolkit plugin: {name}."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["toolkit>={version}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# the entry point's name is the plugin's name: `toolkit plugins` lists it as "{name}",
# and `toolkit -p no:{name} ...` leaves it out
[project.entry-points."toolkit.plugins"]
{name} = "{package}"

[tool.setuptools.packages.find]
include = ["{package}*"]

[tool.setuptools.package-data]
{package} = ["py.typed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

README = """\
# toolkit-{name}

A [toolkit](https://pypi.org/project/toolkit/) plugin. It registers the task
`{name}.greet`; a recipe uses it with `uses = "{name}.greet"`.

    pip install -e '.[test]'    # toolkit finds it through its entry point; pytest too
    toolkit plugins             # lists "{name}"
    toolkit tasks               # lists "{name}.greet"
    pytest                      # its tests, with toolkit's testing kit

Add tasks to `{package}/__init__.py`; sinks, executors and commands are added the same
way, through the other hooks (see toolkit's docs/plugins.md).
"""

PACKAGE = '''\
"""The toolkit plugin "{name}": the tasks it registers.

toolkit imports this module in its main process (to call the hook below) and in its
worker processes (to find the task functions by name): keep its imports light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import toolkit

if TYPE_CHECKING:
    from toolkit.plugin import TaskContext, TaskRegistry

__version__ = "0.1.0"


def greet(who: str, punctuation: str = "!", ctx: TaskContext | None = None) -> str:
    """Say hello to `who`: the recipe gives `who` (and may give `punctuation`)."""
    if ctx is not None:
        ctx.logger.info("greeting %s (attempt %d)", who, ctx.attempt)
    return f"hello, {{who}}{{punctuation}}"


@toolkit.hookimpl
def toolkit_register_tasks(registry: TaskRegistry) -> None:
    # `version` enters every instance's content key: bump it when the results change
    registry.add(greet, name="{name}.greet", version="1")
'''

CONFTEST = """\
# toolkit's testing kit: the run_recipe, toolkit_pm, register_plugin and hook_calls fixtures
pytest_plugins = ["toolkit.testing"]
"""

TESTS = '''\
"""Tests of the {name} plugin: its task alone, registered, and run from a recipe."""

from __future__ import annotations

import {package}
from toolkit.testing import Plugins, RegisterPlugin, RunRecipe

RECIPE = """
[recipe]
name = "{name}-demo"

[[task]]
name = "hello"
uses = "{name}.greet"
matrix = {{ who = ["world", "toolkit"] }}
"""


def test_greet() -> None:
    assert {package}.greet("you") == "hello, you!"


def test_the_task_is_registered_under_its_name(toolkit_pm: Plugins, register_plugin: RegisterPlugin) -> None:
    register_plugin({package}, "{name}")
    task = toolkit_pm.registries.tasks.get("{name}.greet")
    assert task.plugin == "{name}" and task.version == "1"


def test_a_recipe_runs_it_through_the_installed_entry_point(run_recipe: RunRecipe) -> None:
    result = run_recipe(RECIPE, autoload=True)
    assert result.exit_code == 0, result.stderr
    assert sorted(r["value"] for r in result.records) == ["hello, toolkit!", "hello, world!"]
'''


def plugin_files(name: str, path: str | None = None) -> dict[Path, str]:
    """``{path: text}`` of the distribution ``toolkit-NAME`` in ``path`` (default ``toolkit-NAME``)."""
    from toolkit import __version__

    if not PLUGIN_NAME.fullmatch(name):
        raise UsageError(f"plugin name {name!r}: use a letter, then letters, digits, '_' or '-' (at most 64)")
    package = "toolkit_" + name.replace("-", "_").lower()
    folder = Path(path) if path is not None else Path(f"toolkit-{name}")
    fields = {"name": name, "package": package, "version": __version__}
    return {
        folder / "pyproject.toml": PYPROJECT.format(**fields),
        folder / "README.md": README.format(**fields),
        folder / package / "__init__.py": PACKAGE.format(**fields),
        folder / package / "py.typed": "",
        folder / "tests" / "conftest.py": CONFTEST,
        folder / "tests" / f"test_{package}.py": TESTS.format(**fields),
    }
