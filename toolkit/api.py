"""The Python API: ``toolkit.run``, ``toolkit.plan``, ``toolkit.validate``.

The command line is a thin layer over these functions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from toolkit.errors import ExitCode, UsageError
from toolkit.manager import LoadSpec, Plugins, make_plugin_manager

RecipeSource = str | os.PathLike | Mapping[str, Any]


@attrs.define
class RunResult:
    """What a run left: its status, directory and records."""

    status: str
    run_dir: Path
    run_id: str
    counts: dict[str, int]
    not_run: int = 0

    @property
    def exit_code(self) -> int:
        return {
            "succeeded": ExitCode.OK,
            "failed": ExitCode.TASK_FAILED,
            "interrupted": ExitCode.INTERRUPTED,
        }[self.status]

    def records(self) -> list[dict[str, Any]]:
        from toolkit.store.rundir import read_records

        return list(read_records(self.run_dir / "results.jsonl"))


def prepare(
    recipe: RecipeSource | Any,
    *,
    overrides: Sequence[str] = (),
    plugins: Plugins | None = None,
) -> tuple[Any, Plugins]:
    """Read, load the recipe's plugins, validate, let plugins configure."""
    from toolkit.recipe import check_recipe, read_recipe

    rec = (
        recipe
        if hasattr(recipe, "tasks") and hasattr(recipe, "run")
        else read_recipe(recipe, overrides=overrides)
    )
    if plugins is None:
        plugins = make_plugin_manager(LoadSpec.from_environment())
    plugins.load_recipe_plugins(rec.plugins)
    check_recipe(rec, plugins)
    for impl in reversed(plugins.hook.toolkit_configure.get_hookimpls()):
        changed = impl.function(recipe=rec)
        if changed is not None:
            rec = changed
    return rec, plugins


def validate(recipe: RecipeSource, *, overrides: Sequence[str] = (), plugins: Plugins | None = None) -> Any:
    """Validate a recipe; return it resolved, or raise ``RecipeErrors``."""
    return prepare(recipe, overrides=overrides, plugins=plugins)[0]


def plan(
    recipe: RecipeSource,
    *,
    overrides: Sequence[str] = (),
    executor: str | None = None,
    plugins: Plugins | None = None,
) -> Any:
    """The plan of a recipe: stages, counts, the executor chosen and why."""
    from toolkit.execution.plan import make_plan

    rec, plugins = prepare(recipe, overrides=overrides, plugins=plugins)
    return make_plan(rec, plugins, executor=executor)


def _task_runtimes(recipe: Any, plugins: Plugins) -> list[Any]:
    from toolkit.execution.api import TaskRuntime

    runtimes = []
    for spec in recipe.tasks:
        info = plugins.registries.tasks.get(spec.uses)
        runtimes.append(
            TaskRuntime(
                spec=spec,
                func=info.func,
                version=info.version,
                takes_ctx=info.takes_ctx,
                takes_inputs=info.takes_inputs,
            )
        )
    return runtimes


def execute(
    recipe: Any,
    plugins: Plugins,
    *,
    executor: str | None = None,
    workers: int | None = None,
    output: str | os.PathLike | None = None,
    resume: bool | str = False,
    retry_failed: bool | str = False,
    force: bool = False,
    reporter: Any = None,
    grace: float = 5.0,
) -> RunResult:
    """Run a validated recipe: the heart of ``toolkit run``."""
    from toolkit.execution.api import ExecutorContext, WorkerSetup
    from toolkit.execution.plan import make_plan
    from toolkit.execution.scheduler import Scheduler
    from toolkit.store.manifest import finish_manifest, start_manifest, to_write
    from toolkit.store.resume import check_resumable, plan_resume, recipe_digest, task_digests
    from toolkit.store.rundir import RunDir, RunInfo, Summary, find_run
    from toolkit.store.sinks import Collector

    if workers is not None:
        if workers < 1:
            raise UsageError("-j/--workers must be at least 1")
        recipe = attrs.evolve(recipe, run=attrs.evolve(recipe.run, workers=workers))
    registries = plugins.registries
    if executor is not None and executor not in registries.executors:
        known = ", ".join(registries.executors.names())
        raise UsageError(f"unknown executor {executor!r} (known: {known})")
    the_plan = make_plan(recipe, plugins, executor=executor)
    if the_plan.executor not in registries.executors:
        raise UsageError(
            f"unknown executor {the_plan.executor!r} (known: {', '.join(registries.executors.names())})"
        )
    for fmt in recipe.output.formats:
        if fmt not in registries.sinks:
            raise UsageError(f"unknown output format {fmt!r} (known: {', '.join(registries.sinks.names())})")
    runtimes = _task_runtimes(recipe, plugins)
    out = Path(output if output is not None else recipe.output.dir)
    digests = task_digests(recipe, runtimes)

    todo = values = None
    kept = dict.fromkeys(("ok", "failed", "timeout", "crashed", "skipped", "not_run"), 0)
    previous: dict[str, Any] = {}
    again = resume or retry_failed
    if again:
        run = find_run(out, recipe.name, again if isinstance(again, str) else None)
        previous = run.read_manifest()
        check_resumable(run, previous, recipe.name, digests, force=force)
        resumed = plan_resume(recipe, runtimes, run, retry_failed=bool(retry_failed))
        todo, values, kept = resumed.todo, resumed.values, resumed.kept
        run.point_latest()
    else:
        run = RunDir.create(out, recipe.name, os.environ.get("TOOLKIT_RUN_ID") or None)

    started = time.time()
    manifest = start_manifest(
        run_id=run.run_id,
        recipe=recipe,
        plan=the_plan,
        plugin_versions=plugins.versions(),
        digests=digests,
        recipe_digest=recipe_digest(digests),
        started=started,
        previous=previous,
    )
    run.write_manifest(to_write(manifest))

    # from here on the manifest says "running": whatever happens, it must end said otherwise
    status = "failed"
    collector = scheduler = None
    info = RunInfo(
        run_id=run.run_id,
        run_dir=run.path,
        recipe=recipe,
        executor=the_plan.executor,
        reason=the_plan.reason,
        resumed=bool(again),
    )
    try:
        names = ["jsonl", *(f for f in dict.fromkeys(recipe.output.formats) if f != "jsonl")]
        sinks = []
        try:
            for name in names:
                sinks.append(registries.sinks.get(name).factory(run.path, recipe))
        except BaseException:
            for sink in sinks:
                sink.close("failed")
            raise
        collector = Collector(sinks, names=names, logs=run.logs, warn=plugins.warn)
        plugins.hook.toolkit_run_start(run=info)

        setup = WorkerSetup.build(plugins.load.file_plugins(), runtimes, run.path)
        context = ExecutorContext(
            recipe=recipe,
            workers=recipe.run.workers,
            setup=setup,
            options=dict(recipe.executors.get(the_plan.executor, {})),
            run_dir=run.path,
            start_method=recipe.run.start_method,
            grace=grace,
        )
        ex = registries.executors.get(the_plan.executor).factory(context)
        per_task = {
            rt.spec.name: len(todo[rt.spec.name]) if todo is not None else the_plan.counts[rt.spec.name]
            for rt in runtimes
        }
        if reporter is not None:
            reporter.start(
                run.path,
                sum(per_task.values()),
                the_plan.executor,
                the_plan.reason,
                recipe.run.workers,
                tasks=per_task,
                stages=the_plan.stages,
            )
        scheduler = Scheduler(
            recipe,
            runtimes,
            ex,
            workers=recipe.run.workers,
            write=collector.write,
            plugins=plugins,
            reporter=reporter,
            todo=todo,
            previous_values=values,
            grace=grace,
        )
        status = scheduler.run()
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        try:
            if collector is not None:
                collector.close(status)
        finally:
            this = scheduler.counts() if scheduler is not None else {}
            counts = {
                k: kept.get(k, 0) + this.get(k, 0) for k in ("ok", "failed", "timeout", "crashed", "skipped")
            }
            if scheduler is not None:
                not_run = kept["not_run"] + scheduler.not_run()
            else:  # it failed before anything ran
                not_run = the_plan.total - sum(counts.values())
            finished = time.time()
            manifest = finish_manifest(
                manifest,
                status=status,
                counts=counts,
                not_run=not_run,
                total=the_plan.total,
                started=started,
                finished=finished,
            )
            run.write_manifest(to_write(manifest))
            if reporter is not None and hasattr(reporter, "close"):
                reporter.close()
    summary = Summary(status=status, counts=manifest["counts"], duration_s=round(finished - started, 3))
    plugins.hook.toolkit_run_finish(run=info, summary=summary)
    if reporter is not None:
        reporter.finish(status, counts, not_run, run.path, finished - started)
    return RunResult(
        status=status, run_dir=run.path, run_id=run.run_id, counts=manifest["counts"], not_run=not_run
    )


def run(
    recipe: RecipeSource,
    *,
    overrides: Sequence[str] | None = None,
    workers: int | None = None,
    executor: str | None = None,
    output: str | os.PathLike | None = None,
    **options: Any,
) -> RunResult:
    """Run a recipe (a path, or a dict shaped like the TOML) in this process."""
    rec, plugins = prepare(recipe, overrides=overrides or ())
    return execute(rec, plugins, executor=executor, workers=workers, output=output, **options)


def iter_records(run_dir: str | os.PathLike) -> Iterator[dict[str, Any]]:
    from toolkit.store.rundir import read_records

    return read_records(Path(run_dir) / "results.jsonl")
