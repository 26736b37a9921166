"""The hooks a toolkit plugin can implement.

Every hook is prefixed ``toolkit_``. The built-in tasks, executors, sinks and
subcommands implement these same hooks (see ``toolkit.builtin``). Hooks run in the
main process, the one that runs ``toolkit``; workers never call hooks: they import
the task functions they need by name.

Arguments may be added to a hook over time, never removed or renamed: an
implementation only declares the arguments it uses. Every hook is called through
pluggy (``tryfirst``, ``trylast`` and ``wrapper=True`` work on each); an
implementation that raises is named (``plugin 'NAME' failed in toolkit_HOOK: ...``):
a registration hook or ``toolkit_add_commands`` leaves that plugin out with a warning,
any other ends the command (or the run) with exit code 2. docs/plugins.md is the
reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from toolkit.execution.plan import Plan
    from toolkit.recipe.model import Recipe
    from toolkit.records import Instance
    from toolkit.registry import ExecutorRegistry, SinkRegistry, TaskRegistry
    from toolkit.store.rundir import RunInfo, Summary

hookspec = pluggy.HookspecMarker("toolkit")
hookimpl = pluggy.HookimplMarker("toolkit")


@hookspec
def toolkit_register_tasks(registry: TaskRegistry) -> None:
    """Add tasks with ``registry.add(func, name="plugin.task", version="1")``.

    Called once per command that needs tasks (run, plan, validate, tasks), in the main
    process, after every plugin is registered. ``func`` must be a module-level function:
    workers import it by name. Its signature is what recipe params are checked against;
    it may also take ``ctx`` (a :class:`toolkit.TaskContext`) and, for tasks that
    ``need`` others, ``inputs``. ``version`` enters each instance's content key, so
    bumping it makes ``--resume`` run the task again. Returns nothing.
    """


@hookspec
def toolkit_register_executors(registry: ExecutorRegistry) -> None:
    """Add executors with ``registry.add(name, factory, check_options=...)``.

    Called once per command, in the main process. ``factory(context)`` receives a
    :class:`toolkit.execution.api.ExecutorContext` and returns an object with the
    executor interface (``start``, ``capacity``, ``submit``, ``poll``, ``shutdown``;
    see ``toolkit.execution.api.Executor``). ``check_options(table)`` returns a list of
    problems with the recipe's ``[executor.NAME]`` table. Returns nothing.
    """


@hookspec
def toolkit_register_sinks(registry: SinkRegistry) -> None:
    """Add result sinks with ``registry.add(name, factory)``.

    Called once per run, in the main process. ``factory(run_dir, recipe)`` returns a
    :class:`toolkit.store.sinks.Sink`: ``write(batch)`` for each batch of records as
    they arrive and ``close(status)`` at the end. A recipe selects sinks with
    ``[output] formats``; ``[output.NAME]`` holds a sink's options
    (``recipe.output.options_for(NAME)``, checked by ``check_options``). Returns nothing.
    """


@hookspec
def toolkit_configure(recipe: Recipe) -> Recipe | None:
    """See or adjust the validated recipe before it is planned.

    Called in the main process for run, plan and validate, after validation, plugin by
    plugin in pluggy's order (the last registered plugin first), each given the recipe
    as the plugins before it left it. Return a changed recipe (made with
    ``attrs.evolve``) to replace it, or None to keep it.
    """


@hookspec(firstresult=True)
def toolkit_choose_executor(recipe: Recipe, plan: Plan) -> str | None:
    """Name the executor to use instead of the scheduler's own choice.

    Called in the main process by run and plan when ``run.executor`` is ``auto``.
    ``plan`` tells the instance counts per task and stage. The first non-None answer
    wins; the built-in choice (process or pool) is made last. Return an executor name
    or None.
    """


@hookspec
def toolkit_run_start(run: RunInfo) -> None:
    """A run is starting: its directory and manifest exist, nothing has run yet.

    Called in the main process. ``run`` has ``run_id``, ``run_dir``, ``recipe`` and
    ``executor``. Returns nothing.
    """


@hookspec
def toolkit_task_start(instance: Instance) -> None:
    """An instance is handed to the executor.

    Called in the main process at dispatch (in a pool the instance may wait a little
    in its worker's batch before it starts). ``instance`` has ``task``, ``id``,
    ``key``, ``params``. Returns nothing. When no plugin implements this hook the
    scheduler skips building the instances, so it costs nothing unused.
    """


@hookspec
def toolkit_task_finish(instance: Instance, record: dict[str, Any]) -> None:
    """An instance finished for good (after its retries) and its record was written.

    Called in the main process, in order of arrival. ``record`` is the dict written to
    ``results.jsonl`` (``status`` is ok, failed, timeout, crashed or skipped). Returns
    nothing.
    """


@hookspec
def toolkit_run_finish(run: RunInfo, summary: Summary) -> None:
    """A run ended (succeeded, failed, incomplete or interrupted) and its manifest is final.

    Called in the main process, however the run ended (by an error too). ``summary`` has ``status`` and ``counts``. Returns
    nothing.
    """


@hookspec
def toolkit_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add subcommands to the ``toolkit`` command line.

    Called in the main process when the command line is built. Add a parser with
    ``p = subparsers.add_parser(NAME, help=...)`` and set its handler with
    ``p.set_defaults(handler=func)``; ``func(args) -> int`` returns the exit code and
    may raise ``toolkit.ToolkitError``. Keep imports inside the handler so that
    ``toolkit --help`` stays fast. Returns nothing.
    """
