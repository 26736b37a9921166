"""What a type checker sees of toolkit's public API: no ``Any`` where the docs promise a
type. Not a test module: the plugins nox session runs ``mypy --strict`` on it against
the installed toolkit (each ``assert_type`` fails when the type is not exactly that)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, assert_type

from toolkit.plugin import (
    Batch,
    BatchOutcome,
    BatchProcess,
    Event,
    ExecutorContext,
    Instance,
    Lost,
    Plan,
    Recipe,
    RecordBatch,
    Records,
    RunInfo,
    Status,
    Summary,
    TaskContext,
    TaskInfo,
    TaskRegistry,
    TaskSpec,
)
from toolkit.testing import HookCalls, Plugins, RecipeResult, RegisterPlugin, RunRecipe


def task_side(ctx: TaskContext) -> None:
    assert_type(ctx.instance, str)
    assert_type(ctx.attempt, int)
    assert_type(ctx.key, str)
    assert_type(ctx.run_dir, Path)
    assert_type(ctx.scratch, Path)
    assert_type(ctx.logger, logging.Logger)


def hook_side(recipe: Recipe, plan: Plan, run: RunInfo, summary: Summary, instance: Instance) -> None:
    assert_type(recipe.name, str)
    assert_type(recipe.tasks, tuple[TaskSpec, ...])
    assert_type(recipe.tasks[0].timeout, float | None)
    assert_type(recipe.output.options_for("x"), dict[str, Any])  # a TOML table
    assert_type(plan.counts, dict[str, int])
    assert_type(plan.stages, list[list[str]])
    assert_type(run.recipe, Recipe)
    assert_type(run.run_dir, Path)
    assert_type(run.resumed, bool)
    assert_type(summary.status, str)
    assert_type(summary.counts, dict[str, int])
    assert_type(instance.params, dict[str, Any])
    assert_type(instance.index, int)
    assert_type(Status.OK, Status)


def registry_side(registry: TaskRegistry) -> None:
    assert_type(registry.get("x"), TaskInfo)
    assert_type(registry.get("x").plugin, str | None)


def sink_side(batch: RecordBatch) -> None:
    assert_type(batch.records, list[dict[str, Any]])
    assert_type(batch.jsonl, bytes)
    assert_type(batch.n, int)


def executor_side(context: ExecutorContext, batch: Batch, child: BatchProcess) -> None:
    assert_type(context.recipe, Recipe)
    assert_type(context.workers, int)
    assert_type(context.grace, float)
    assert_type(context.options, dict[str, Any])  # the [executor.NAME] table
    context.message("ready", verbose=True)
    assert_type(batch.id, int)
    assert_type(batch.task, int)
    assert_type(batch.attempt, int)
    assert_type(batch.isolate, bool)
    assert_type(batch.indices, range | tuple[int, ...])
    outcome = child.run(batch, timeout=context.recipe.tasks[batch.task].timeout, grace=context.grace)
    assert_type(outcome, BatchOutcome)
    assert_type(outcome.lost, Lost | None)
    assert_type(outcome.events(batch), list[Event])
    assert_type(outcome.records(batch), Records)
    assert_type(child.alive, bool)


class _Plugin:
    pass


def testing_side(
    toolkit_pm: Plugins, register_plugin: RegisterPlugin, run_recipe: RunRecipe, hook_calls: HookCalls
) -> None:
    assert_type(register_plugin(_Plugin(), "x"), _Plugin)  # gives back what it got
    result = run_recipe("", "--set", "a=1", via="cli", files={"a.py": ""}, env={"X": None})
    assert_type(result, RecipeResult)
    assert_type(result.records, list[dict[str, Any]])
    assert_type(result.run_dir, Path | None)
    assert_type(hook_calls, list[tuple[str, dict[str, Any]]])
    assert_type(toolkit_pm.registries.tasks.get("x"), TaskInfo)
