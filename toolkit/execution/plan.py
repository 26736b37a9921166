"""What a run will do, before it does it: stages, instance counts, the executor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs

if TYPE_CHECKING:
    from toolkit.recipe.model import Recipe

#: with at most this many instances per worker, auto starts one process per instance
FEW_PER_WORKER = 2


@attrs.frozen(kw_only=True)
class Plan:
    """Stages (task names that may run together), counts, and the executor chosen."""

    stages: list[list[str]]
    counts: dict[str, int]
    total: int
    workers: int
    executor: str = ""
    reason: str = ""


def stages_of(recipe: Recipe) -> list[list[str]]:
    """Tasks grouped in topological levels of ``needs``, in recipe order within a level."""
    tasks = {t.name: t for t in recipe.tasks}
    level: dict[str, int] = {}
    visiting: set[str] = set()  # the loader refuses cycles; be safe anyway
    for t in recipe.tasks:
        stack = [t.name]  # a stack of our own: a chain of 100,000 needs is no RecursionError
        while stack:
            name = stack[-1]
            if name in level:
                stack.pop()
                continue
            visiting.add(name)
            needs = [n for n in tasks[name].needs if n in tasks]
            todo = [n for n in needs if n not in level and n not in visiting]
            if todo:
                stack.extend(todo)
                continue
            level[name] = 1 + max((level.get(n, -1) for n in needs), default=-1)
            visiting.discard(name)
            stack.pop()
    out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for t in recipe.tasks:
        out[level[t.name]].append(t.name)
    return out


def auto_choice(recipe: Recipe, plan: Plan) -> tuple[str, str]:
    """The built-in choice between ``process`` and ``pool``, with the reason."""
    isolated = [t.name for t in recipe.tasks if t.isolate]
    if isolated:
        return "process", f"task {isolated[0]!r} asks for isolate = true"
    if plan.total <= FEW_PER_WORKER * plan.workers:
        return "process", f"few instances ({plan.total} for {plan.workers} workers): one process each"
    return "pool", f"{plan.total} instances for {plan.workers} workers: a pool with batched dispatch"


class ExecutorChooser(Protocol):
    """What :func:`make_plan` asks about plugins (``toolkit.manager.Plugins`` is one)."""

    def choose_executor(self, recipe: Recipe, plan: Plan) -> tuple[str, str] | None:
        """``(executor, plugin)`` of the plugin that chose, or None to let auto choose."""


def make_plan(recipe: Recipe, plugins: ExecutorChooser | None = None, *, executor: str | None = None) -> Plan:
    """Count instances per task (lazily) and choose the executor, stating why."""
    counts = {t.name: t.count() for t in recipe.tasks}
    plan = Plan(
        stages=stages_of(recipe),
        counts=counts,
        total=sum(counts.values()),
        workers=recipe.run.workers,
    )
    wanted = executor or recipe.run.executor
    if wanted != "auto":
        source = "--executor" if executor else "run.executor"
        return attrs.evolve(plan, executor=wanted, reason=f"{source} = {wanted!r}")
    chosen = plugins.choose_executor(recipe, plan) if plugins is not None else None
    if chosen is not None:
        name, plugin = chosen
        return attrs.evolve(plan, executor=name, reason=f"chosen by plugin {plugin!r}")
    name, reason = auto_choice(recipe, plan)
    return attrs.evolve(plan, executor=name, reason=f"auto: {reason}")
