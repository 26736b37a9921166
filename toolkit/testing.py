"""Pytest fixtures for plugin authors (opt-in: ``pytest_plugins = ["toolkit.testing"]``).

- ``toolkit_pm``: a fresh plugin manager with the built-ins only (no entry points).
- ``register_plugin``: register a throwaway plugin object on ``toolkit_pm``.
- ``run_recipe``: run a recipe text in-process or through the CLI; get the exit code,
  the records, the output and the run directory.
- ``hook_calls``: record every hook call made through ``toolkit_pm``.

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
from pathlib import Path
from typing import Any

import attrs
import pytest


@attrs.define
class RecipeResult:
    exit_code: int
    stdout: str
    stderr: str
    output: Path  # the output dir given to the run
    recipe: Path

    @property
    def run_dir(self) -> Path | None:
        runs = sorted(p for p in self.output.glob("*/*") if (p / "manifest.toml").exists())
        latest = [p for p in self.output.glob("*/latest")]
        if latest:
            return latest[0].resolve()
        return runs[-1] if runs else None

    @property
    def records(self) -> list[dict[str, Any]]:
        run_dir = self.run_dir
        if run_dir is None or not (run_dir / "results.jsonl").exists():
            return []
        return [
            json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines() if line.strip()
        ]

    @property
    def manifest(self) -> dict[str, Any]:
        import tomllib

        run_dir = self.run_dir
        if run_dir is None:
            return {}
        return tomllib.loads((run_dir / "manifest.toml").read_text())

    def by_instance(self) -> dict[str, dict[str, Any]]:
        """The last record of every instance."""
        return {r["instance"]: r for r in self.records}


@pytest.fixture
def toolkit_pm():
    """A fresh plugin manager: built-in plugins only, no entry points."""
    from toolkit.manager import LoadSpec, make_plugin_manager

    return make_plugin_manager(LoadSpec(autoload=False))


@pytest.fixture
def register_plugin(toolkit_pm):
    """``register_plugin(obj, name=None)``: add a plugin to ``toolkit_pm`` for one test."""
    from toolkit.manager import PluginInfo

    names: list[str] = []

    def add(obj: object, name: str | None = None) -> object:
        name = name or getattr(obj, "__name__", None) or f"plugin-{len(names)}"
        toolkit_pm.register(obj, PluginInfo(name=name, source="test"))
        toolkit_pm._registries = None
        names.append(name)
        return obj

    yield add
    for name in reversed(names):
        if toolkit_pm.pm.has_plugin(name):
            toolkit_pm.pm.unregister(name=name)


@pytest.fixture
def hook_calls(toolkit_pm):
    """A list of ``(hook name, kwargs)`` for every hook called through ``toolkit_pm``."""
    calls: list[tuple[str, dict[str, Any]]] = []
    undo = toolkit_pm.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append((name, kwargs)), lambda *a: None
    )
    yield calls
    undo()


@pytest.fixture
def run_recipe(tmp_path):
    """``run_recipe(text, *args, via="inprocess"|"cli", files={name: text}, env={})``.

    Writes the recipe (and any ``files`` beside it) to a temporary folder and runs
    ``toolkit run`` on it with ``--output`` in that folder."""

    counter = iter(range(1_000_000))

    def run(
        text: str,
        *args: str,
        via: str = "inprocess",
        files: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        command: str = "run",
        timeout: float = 120,
    ) -> RecipeResult:
        folder = tmp_path / f"recipe{next(counter)}"
        folder.mkdir()
        for name, content in (files or {}).items():
            (folder / name).write_text(textwrap.dedent(content))
        recipe = folder / "recipe.toml"
        recipe.write_text(textwrap.dedent(text))
        output = folder / "runs"
        argv = [command, str(recipe), *args]
        if command == "run" and "--output" not in args:
            argv += ["--output", str(output)]
        if via == "cli":
            proc = subprocess.run(
                [sys.executable, "-m", "toolkit", *argv],
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, **(env or {})},
                cwd=folder,
            )
            return RecipeResult(proc.returncode, proc.stdout, proc.stderr, output, recipe)
        from toolkit.cli import main

        out, err = io.StringIO(), io.StringIO()
        saved = {k: os.environ.get(k) for k in (env or {})}
        os.environ.update(env or {})
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return RecipeResult(code, out.getvalue(), err.getvalue(), output, recipe)

    return run
