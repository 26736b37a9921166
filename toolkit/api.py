"""The Python API: ``toolkit.run``, ``toolkit.plan``, ``toolkit.validate``.

The command line is a thin layer over these functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.execution.run import RunResult
from toolkit.manager import LoadSpec, Plugins, make_plugin_manager

if TYPE_CHECKING:
    from toolkit.execution.plan import Plan
    from toolkit.recipe.model import Recipe

__all__ = [
    "RecipeSource",
    "RunResult",
    "execute",
    "iter_records",
    "open_run",
    "plan",
    "prepare",
    "run",
    "validate",
]

#: a recipe file's path, or a dict shaped like its TOML
RecipeSource = str | os.PathLike[str] | Mapping[str, Any]


def prepare(
    recipe: RecipeSource | Recipe,
    *,
    overrides: Sequence[str] = (),
    plugins: Plugins | None = None,
) -> tuple[Recipe, Plugins]:
    """Read, load the recipe's plugins, validate, let plugins configure."""
    from toolkit.recipe import check_recipe, read_recipe
    from toolkit.threads import one_thread_imports

    rec = (
        recipe
        if hasattr(recipe, "tasks") and hasattr(recipe, "run")
        else read_recipe(recipe, overrides=overrides)
    )
    if plugins is None:
        plugins = make_plugin_manager(LoadSpec.from_environment())
    with one_thread_imports():
        plugins.load_recipe_plugins(rec.plugins)
    check_recipe(rec, plugins)
    return configure(rec, plugins), plugins


def configure(recipe: Recipe, plugins: Plugins) -> Recipe:
    """Let plugins see or change the validated recipe (``toolkit_configure``), one
    plugin after the other in pluggy's order, each given the recipe as changed so far."""
    from toolkit.hookcalls import call_plugin, implementers

    for name in implementers(plugins.pm, "toolkit_configure"):
        answer = call_plugin(plugins.pm, "toolkit_configure", name, recipe=recipe)
        # a plugin's implementations give a list; a wrapper of its own may give a recipe
        for changed in answer if isinstance(answer, list) else [answer]:
            if changed is not None:
                recipe = changed
    return recipe


def validate(
    recipe: RecipeSource, *, overrides: Sequence[str] = (), plugins: Plugins | None = None
) -> Recipe:
    """Validate a recipe; return it resolved, or raise ``RecipeErrors``."""
    return prepare(recipe, overrides=overrides, plugins=plugins)[0]


def plan(
    recipe: RecipeSource,
    *,
    overrides: Sequence[str] = (),
    executor: str | None = None,
    plugins: Plugins | None = None,
) -> Plan:
    """The plan of a recipe: stages, counts, the executor chosen and why."""
    from toolkit.execution.plan import make_plan

    rec, plugins = prepare(recipe, overrides=overrides, plugins=plugins)
    return make_plan(rec, plugins, executor=executor)


def execute(
    recipe: Recipe,
    plugins: Plugins,
    *,
    executor: str | None = None,
    workers: int | None = None,
    output: str | os.PathLike[str] | None = None,
    resume: bool | str = False,
    retry_failed: bool | str = False,
    force: bool = False,
    reporter: Any = None,
    grace: float = 5.0,
    cache: bool | None = None,
    rerun: Sequence[str] = (),
) -> RunResult:
    """Run a validated recipe (from :func:`prepare`): the heart of ``toolkit run``.
    ``cache``: ``--cache`` (True) or ``--no-cache`` (False), None: as the recipe says;
    ``rerun``: tasks whose instances run whatever the cache holds.

    The phases are in :mod:`toolkit.execution.run`."""
    from toolkit.execution.run import execute as run_phases

    return run_phases(
        recipe,
        plugins,
        executor=executor,
        workers=workers,
        output=output,
        resume=resume,
        retry_failed=retry_failed,
        force=force,
        reporter=reporter,
        grace=grace,
        cache=cache,
        rerun=rerun,
    )


def run(
    recipe: RecipeSource,
    *,
    overrides: Sequence[str] | None = None,
    workers: int | None = None,
    executor: str | None = None,
    output: str | os.PathLike[str] | None = None,
    **options: Any,
) -> RunResult:
    """Run a recipe (a path, or a dict shaped like the TOML) in this process."""
    rec, plugins = prepare(recipe, overrides=overrides or ())
    return execute(rec, plugins, executor=executor, workers=workers, output=output, **options)


def open_run(path: str | os.PathLike[str]) -> RunResult:
    """The result of the run in directory ``path`` (or of the run a ``latest`` pointer
    names): ``status``, ``counts``, ``records()``, ``to_pandas()``, as :func:`run` returns."""
    from toolkit.store.history import RunEntry
    from toolkit.store.rundir import RunDir

    run = RunDir(Path(path).resolve())
    entry = RunEntry.read(run)
    counts = dict(entry.counts)
    return RunResult(
        status=entry.status,
        run_dir=run.path,
        run_id=str(entry.manifest.get("run_id") or run.run_id),
        counts=counts,
        not_run=int(counts.get("not_run") or 0),
    )


def iter_records(run_dir: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The records of a run directory's ``results.jsonl``, as they are on disk."""
    from toolkit.store.rundir import read_records

    return read_records(Path(run_dir) / "results.jsonl")
