"""Pytest fixtures for plugin authors (opt-in: ``pytest_plugins = ["toolkit.testing"]``).

- ``toolkit_pm``: a fresh plugin manager with the built-ins only (no entry points, no
  ``TOOLKIT_PLUGINS``), for testing hooks one by one.
- ``register_plugin``: register a plugin object (a module, a class instance) on
  ``toolkit_pm`` for one test; ``run_recipe`` runs in-process with it too.
- ``run_recipe``: run a recipe text in-process or through the command line, as a user
  would (installed plugins included unless ``autoload=False``); get the exit code, the
  records, the output and the run directory (:class:`RecipeResult`).
- ``hook_calls``: every hook call made through ``toolkit_pm``, as ``(name, kwargs)``.

The executor conformance suite is :class:`toolkit.conformance.ExecutorConformance`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import pytest

from toolkit.manager import Plugins

__all__ = [
    "HookCalls",
    "Plugins",
    "RecipeResult",
    "RegisterPlugin",
    "RunRecipe",
    "hook_calls",
    "register_plugin",
    "run_recipe",
    "toolkit_pm",
]

_T = TypeVar("_T")


@attrs.define
class RecipeResult:
    """How a ``run_recipe`` call ended: ``exit_code``, ``stdout``, ``stderr``, the
    ``output`` folder of the run (``--output``, given or the default), the ``recipe``
    file; ``run_dir``, ``records``, ``manifest`` read from the run directory."""

    exit_code: int
    stdout: str
    stderr: str
    output: Path  # the output dir of the run
    recipe: Path

    @property
    def run_dir(self) -> Path | None:
        """The run directory (the ``latest`` one of the output folder), if one was made."""
        latest = list(self.output.glob("*/latest"))
        if latest:
            return latest[0].resolve()
        runs = sorted(p for p in self.output.glob("*/*") if (p / "manifest.toml").exists())
        return runs[-1] if runs else None

    @property
    def records(self) -> list[dict[str, Any]]:
        """The lines of the run's ``results.jsonl`` (``[]`` when there is none)."""
        run_dir = self.run_dir
        if run_dir is None or not (run_dir / "results.jsonl").exists():
            return []
        return [
            json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line.strip()
        ]

    @property
    def manifest(self) -> dict[str, Any]:
        """The run's ``manifest.toml`` (``{}`` when there is none)."""
        import tomllib

        run_dir = self.run_dir
        if run_dir is None:
            return {}
        return tomllib.loads((run_dir / "manifest.toml").read_text())

    def by_instance(self) -> dict[str, dict[str, Any]]:
        """The last record of every instance."""
        return {r["instance"]: r for r in self.records}


class RunRecipe(Protocol):
    """The type of the ``run_recipe`` fixture."""

    def __call__(
        self,
        text: str,
        *args: str,
        via: str = "inprocess",
        files: Mapping[str, str] | None = None,
        env: Mapping[str, str | None] | None = None,
        command: str = "run",
        timeout: float = 120,
        autoload: bool | None = None,
    ) -> RecipeResult: ...


class RegisterPlugin(Protocol):
    """The type of the ``register_plugin`` fixture: ``register_plugin(obj, name=None)``
    returns ``obj``."""

    def __call__(self, obj: _T, name: str | None = None) -> _T: ...


#: the type of the ``hook_calls`` fixture: ``(hook name, kwargs)`` in call order
HookCalls = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def toolkit_pm() -> Plugins:
    """A fresh plugin manager: built-in plugins only, no entry points."""
    from toolkit.manager import LoadSpec, make_plugin_manager

    return make_plugin_manager(LoadSpec(autoload=False))


class _Registered:
    """The plugins ``register_plugin`` added in a test, for ``run_recipe`` to add too,
    and the ``hook_calls`` list, if the test asked for it, for its runs to add to."""

    def __init__(self) -> None:
        self.plugins: list[tuple[object, str]] = []
        self.calls: HookCalls | None = None


@pytest.fixture
def _toolkit_registered() -> _Registered:
    return _Registered()


@pytest.fixture
def register_plugin(toolkit_pm: Plugins, _toolkit_registered: _Registered) -> Iterator[RegisterPlugin]:
    """``register_plugin(obj, name=None)``: add a plugin to ``toolkit_pm`` for one test,
    and to the in-process runs of ``run_recipe``. Returns ``obj``."""
    from toolkit.manager import PluginInfo

    names: list[str] = []

    def add(obj: _T, name: str | None = None) -> _T:
        name = name or getattr(obj, "__name__", None) or f"plugin-{len(names)}"
        toolkit_pm.register(obj, PluginInfo(name=name, source="test"))
        toolkit_pm._registries = None
        names.append(name)
        _toolkit_registered.plugins.append((obj, name))
        return obj

    yield add
    for name in reversed(names):
        if toolkit_pm.pm.has_plugin(name):
            toolkit_pm.pm.unregister(name=name)


@pytest.fixture
def hook_calls(toolkit_pm: Plugins, _toolkit_registered: _Registered) -> Iterator[HookCalls]:
    """A list of ``(hook name, kwargs)`` for every hook called through ``toolkit_pm``
    and in the in-process runs of ``run_recipe`` (the ``toolkit_register_*`` hooks
    included: they are called when something first needs the registries)."""
    calls: HookCalls = []
    undo = _monitor(toolkit_pm, calls)
    toolkit_pm._registries = None  # so that the registration hooks are called (and seen)
    _toolkit_registered.calls = calls
    yield calls
    _toolkit_registered.calls = None
    undo()


def _monitor(plugins: Plugins, calls: HookCalls) -> Any:
    """Add every hook call through ``plugins`` to ``calls``; returns the undo."""
    return plugins.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append((name, dict(kwargs))), lambda *a: None
    )


def _option(args: tuple[str, ...], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``args``."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@contextlib.contextmanager
def _environment(changes: dict[str, str | None]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def run_recipe(tmp_path: Path, _toolkit_registered: _Registered) -> RunRecipe:
    """``run_recipe(text, *args, via="inprocess"|"cli", files={name: text}, env={},
    command="run", timeout=120, autoload=None) -> RecipeResult``.

    Writes the recipe (and any ``files`` beside it) to a new folder and runs ``toolkit
    COMMAND RECIPE *args`` in that folder, with ``--output`` in it unless ``args`` give
    one. Both ways run alike: in the recipe's folder, with the installed plugins
    (``autoload=False`` leaves them out, ``True`` loads them; None, the default, follows
    ``TOOLKIT_DISABLE_PLUGIN_AUTOLOAD`` as the command line does), never with the
    caller's ``TOOLKIT_PLUGINS`` (pass it in ``env`` to test it). In-process runs also have the plugins ``register_plugin``
    added; a run ``via="cli"`` cannot (a plugin object does not cross to another
    process: write it to a file with ``files=`` and load it with ``-p``)."""

    counter = iter(range(1_000_000))

    def run(
        text: str,
        *args: str,
        via: str = "inprocess",
        files: Mapping[str, str] | None = None,
        env: Mapping[str, str | None] | None = None,
        command: str = "run",
        timeout: float = 120,
        autoload: bool | None = None,
    ) -> RecipeResult:
        if via not in ("inprocess", "cli"):
            raise ValueError(f"via must be 'inprocess' or 'cli', not {via!r}")
        if via == "cli" and _toolkit_registered.plugins:
            names = ", ".join(repr(name) for _, name in _toolkit_registered.plugins)
            raise ValueError(
                f"run_recipe(via='cli') cannot use the plugins register_plugin added ({names}):"
                " write them to a file (files=...) and load it with -p, or run in-process"
            )
        folder = tmp_path / f"recipe{next(counter)}"
        folder.mkdir()
        for name, content in (files or {}).items():
            (folder / name).write_text(textwrap.dedent(content))
        recipe = folder / "recipe.toml"
        recipe.write_text(textwrap.dedent(text))
        argv = [command, str(recipe), *args]
        given = _option(args, "--output")
        output = (folder / given) if given is not None else folder / "runs"
        if command == "run" and given is None:
            argv += ["--output", str(output)]
        plugin_env: dict[str, str | None] = {"TOOLKIT_PLUGINS": None}
        if autoload is not None:
            plugin_env["TOOLKIT_DISABLE_PLUGIN_AUTOLOAD"] = None if autoload else "1"
        changes: dict[str, str | None] = {**plugin_env, **(env or {})}
        if via == "cli":
            child_env = {k: v for k, v in os.environ.items() if k not in changes}
            child_env.update({k: v for k, v in changes.items() if v is not None})
            proc = subprocess.run(
                [sys.executable, "-m", "toolkit", *argv],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=child_env,
                cwd=folder,
            )
            return RecipeResult(proc.returncode, proc.stdout, proc.stderr, output, recipe)
        from toolkit.cli import main
        from toolkit.manager import LoadSpec, PluginInfo

        out, err = io.StringIO(), io.StringIO()
        with _environment(changes), contextlib.chdir(folder):
            plugins = Plugins(LoadSpec.from_environment()).load_all()
            for obj, name in _toolkit_registered.plugins:
                plugins.register(obj, PluginInfo(name=name, source="test"))
            if _toolkit_registered.calls is not None:
                _monitor(plugins, _toolkit_registered.calls)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv, plugins=plugins)
        return RecipeResult(code, out.getvalue(), err.getvalue(), output, recipe)

    return run
