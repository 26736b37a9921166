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
    level: dict[str, int] = {}
    tasks = {t.name: t for t in recipe.tasks}

    def depth(name: str, seen: tuple[str, ...] = ()) -> int:
        if name in level:
            return level[name]
        if name in seen:  # the loader refuses cycles; be safe anyway
            return 0
        d = 1 + max((depth(n, (*seen, name)) for n in tasks[name].needs if n in tasks), default=-1)
        level[name] = d
        return d

    for t in recipe.tasks:
        depth(t.name)
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
