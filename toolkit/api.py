"""The Python API: ``toolkit.run``, ``toolkit.plan``, ``toolkit.validate``.

The command line is a thin layer over these functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from toolkit.errors import ExitCode, RunError, UsageError
from toolkit.manager import LoadSpec, Plugins, make_plugin_manager
from toolkit.records import FAILED_STATUSES, instance_key
from toolkit.store.rundir import RunDir, RunInfo, Summary, find_run, read_records

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
        return list(read_records(self.run_dir / "results.jsonl"))


def prepare(
    recipe: RecipeSource | Any,
    *,
    overrides: Sequence[str] = (),
    plugins: Plugins | None = None,
) -> tuple[Any, Plugins]:
    """Read, load the recipe's plugins, validate, let plugins configure."""
    from toolkit.recipe import check_recipe, read_recipe

    rec = recipe if hasattr(recipe, "tasks") and hasattr(recipe, "run") else read_recipe(recipe, overrides=overrides)
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


def recipe_digest(recipe: Any) -> str:
    """Identifies the instances a recipe makes: its tasks, resolved."""
    table = recipe.to_table().get("task", [])
    return hashlib.blake2b(json.dumps(table, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


def _task_runtimes(recipe: Any, plugins: Plugins) -> list[Any]:
    from toolkit.execution.api import TaskRuntime

    runtimes = []
    for spec in recipe.tasks:
        info = plugins.registries.tasks.get(spec.uses)
        runtimes.append(
            TaskRuntime(spec=spec, func=info.func, version=info.version,
                        takes_ctx=info.takes_ctx, takes_inputs=info.takes_inputs)
        )
    return runtimes


def _resume_todo(recipe: Any, runtimes: list[Any], run: RunDir, retry_failed: bool) -> tuple[dict, dict, dict]:
    """Which instances to run again, upstream values for ``needs``, and the counts of
    the instances left as they were."""
    run.repair_tail()
    latest: dict[str, dict[str, Any]] = {}
    for rec in run.records():
        if "key" in rec:
            latest[rec["key"]] = rec
    needed = {n for t in recipe.tasks for n in t.needs}
    todo: dict[str, list[int]] = {}
    values: dict[str, dict[int, dict[str, Any]]] = {}
    kept = dict.fromkeys(("ok", "failed", "timeout", "crashed", "skipped"), 0)
    for rt in runtimes:
        spec = rt.spec
        todo[spec.name] = []
        for index, combo in spec.iter_combos():
            params = spec.params_for(combo)
            rec = latest.get(instance_key(spec.name, spec.uses, rt.version, params))
            status = rec["status"] if rec else None
            again = status in FAILED_STATUSES or status == "skipped" if retry_failed else status != "ok"
            if again:
                todo[spec.name].append(index)
                continue
            if status is not None:
                kept[status] += 1
            if status == "ok" and spec.name in needed:
                values.setdefault(spec.name, {})[index] = {
                    "instance": rec["instance"], "params": rec["params"], "value": rec["value"],
                }
    return todo, values, kept


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
        raise UsageError(f"unknown executor {the_plan.executor!r} (known: {', '.join(registries.executors.names())})")
    runtimes = _task_runtimes(recipe, plugins)
    out = Path(output if output is not None else recipe.output.dir)
    digest = recipe_digest(recipe)

    todo = values = None
    kept = dict.fromkeys(("ok", "failed", "timeout", "crashed", "skipped"), 0)
    previous: dict[str, Any] = {}
    again = resume or retry_failed
    if again:
        run = find_run(out, recipe.name, again if isinstance(again, str) else None)
        previous = run.read_manifest()
        if previous.get("recipe_digest") != digest and not force:
            raise RunError(
                f"the recipe's tasks changed since run {run.run_id}, so its instances differ;"
                " start a new run, or pass --force to resume anyway"
            )
        if previous.get("status") == "running" and _alive(previous.get("pid")):
            raise RunError(f"run {run.run_id} is still running (pid {previous.get('pid')})")
        todo, values, kept = _resume_todo(recipe, runtimes, run, bool(retry_failed))
        run.point_latest()
    else:
        run = RunDir.create(out, recipe.name, os.environ.get("TOOLKIT_RUN_ID") or None)

    started = time.time()
    manifest: dict[str, Any] = {
        "run_id": run.run_id,
        "recipe": recipe.name,
        "recipe_path": str(recipe.path) if getattr(recipe, "path", None) else "",
        "status": "running",
        "started": previous.get("started", _iso(started)),
        "toolkit": _version(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "executor": the_plan.executor,
        "executor_reason": the_plan.reason,
        "workers": recipe.run.workers,
        "start_method": recipe.run.start_method or _default_start_method(),
        "plugins": plugins.versions(),
        "recipe_digest": digest,
        "counts": {"total": the_plan.total},
        "recipe_table": recipe.to_table(),
    }
    scheduled = os.environ.get("TOOLKIT_SCHEDULED_FOR")
    if scheduled:
        manifest["scheduled_for"] = scheduled
    elif previous.get("scheduled_for"):
        manifest["scheduled_for"] = previous["scheduled_for"]
    if again:
        manifest["resumed"] = [*previous.get("resumed", []), _iso(started)]
    run.write_manifest(_ordered(manifest))

    sinks = [registries.sinks.get("jsonl").factory(run.path, recipe)]
    for fmt in recipe.output.formats:
        if fmt != "jsonl":
            sinks.append(registries.sinks.get(fmt).factory(run.path, recipe))
    collector = Collector(sinks)
    info = RunInfo(run_id=run.run_id, run_dir=run.path, recipe=recipe,
                   executor=the_plan.executor, reason=the_plan.reason)
    plugins.hook.toolkit_run_start(run=info)

    setup = WorkerSetup.build(plugins.load.file_plugins(), runtimes, run.path)
    context = ExecutorContext(
        recipe=recipe, workers=recipe.run.workers, setup=setup,
        options=dict(recipe.executors.get(the_plan.executor, {})), run_dir=run.path,
        start_method=recipe.run.start_method, grace=grace,
    )
    ex = registries.executors.get(the_plan.executor).factory(context)
    to_run = sum(len(v) for v in todo.values()) if todo is not None else the_plan.total
    if reporter is not None:
        reporter.start(run.path, to_run, the_plan.executor, the_plan.reason, recipe.run.workers)
    scheduler = Scheduler(
        recipe, runtimes, ex, workers=recipe.run.workers, write=collector.write, plugins=plugins,
        reporter=reporter, todo=todo, previous_values=values, grace=grace,
    )
    status = "failed"
    try:
        status = scheduler.run()
    finally:
        collector.close(status)
        counts = {k: kept[k] + v for k, v in scheduler.counts().items()}
        not_run = scheduler.not_run()
        finished = time.time()
        manifest.update(
            status=status,
            finished=_iso(finished),
            duration_s=round(finished - started, 3),
            counts={"total": the_plan.total, **counts, "not_run": not_run},
        )
        manifest.pop("pid", None)
        run.write_manifest(_ordered(manifest))
    summary = Summary(status=status, counts=manifest["counts"], duration_s=manifest["duration_s"])
    plugins.hook.toolkit_run_finish(run=info, summary=summary)
    if reporter is not None:
        reporter.finish(status, counts, not_run, run.path, finished - started)
    return RunResult(status=status, run_dir=run.path, run_id=run.run_id, counts=manifest["counts"], not_run=not_run)


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


def _ordered(manifest: dict[str, Any]) -> dict[str, Any]:
    """Scalars first, then tables (TOML needs no order, but people read it)."""
    head = {k: v for k, v in manifest.items() if not isinstance(v, dict)}
    tail = {k: v for k, v in manifest.items() if isinstance(v, dict) and k != "recipe_table"}
    if "recipe_table" in manifest:
        tail["resolved"] = manifest["recipe_table"]
    return {**head, **tail}


def _iso(t: float) -> str:
    from toolkit.records import utc_iso

    return utc_iso(t)


def _version() -> str:
    from toolkit import __version__

    return __version__


def _default_start_method() -> str:
    import multiprocessing

    return multiprocessing.get_start_method(allow_none=False)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def iter_records(run_dir: str | os.PathLike) -> Iterator[dict[str, Any]]:
    return read_records(Path(run_dir) / "results.jsonl")


del sys
