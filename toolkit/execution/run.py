"""A run, phase by phase: the heart of ``toolkit run`` and ``toolkit.run()``.

:func:`execute` calls the phases in order; each is a function of one
:class:`RunSession`, the state a run carries from one phase to the next:

``prepare_run``
    Check the options, plan, find (``--resume``) or create the run directory and
    read what an earlier session left. Nothing is written but the directory.
``start_run``
    Write the manifest (``running``), open the sinks, call ``toolkit_run_start``.
``run_tasks``
    Build the executor and let the scheduler run every instance to its record.
``finish_run``
    Always, however the run ended: close the sinks, write the final manifest.
``report_run``
    Always, after ``finish_run``: call ``toolkit_run_finish``, tell the reporter.

A plugin that fails during a run (a lifecycle hook, a sink) ends it: the error
(:class:`~toolkit.errors.PluginError`, exit 2) goes into the manifest as its
``reason``, the records written so far stay, and ``toolkit_run_finish`` is still
called. :meth:`RunSession.end_by` records how a run ended.

A phase that needs more state adds a field to :class:`RunSession`; a step inside a
phase is a function of the session too, called from its phase.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from toolkit.errors import ExitCode, PluginError, StorageError, ToolkitError, UsageError
from toolkit.records import STATUSES, describe

if TYPE_CHECKING:
    from collections.abc import Callable

    from toolkit.execution.plan import Plan
    from toolkit.execution.scheduler import Scheduler
    from toolkit.manager import Plugins
    from toolkit.recipe.model import Recipe
    from toolkit.store.rundir import RunDir, RunInfo
    from toolkit.store.sinks import Collector


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
            "incomplete": ExitCode.TASK_FAILED,
        }.get(self.status, ExitCode.TASK_FAILED)

    def records(self) -> list[dict[str, Any]]:
        """Every record of ``results.jsonl``: one per instance once the run has ended
        (while it runs, a record per result so far, in order of arrival)."""
        from toolkit.store.rundir import read_records

        return list(read_records(self.run_dir / "results.jsonl"))

    def to_pandas(self) -> Any:
        """The records as a ``pandas.DataFrame``: one row per record, the record's fields
        as columns (``started`` and ``finished`` as UTC datetimes), each param as a column
        of its own, typed (named ``params.NAME`` when NAME is also a record field), and
        ``value`` as the task returned it. Needs pandas (``pip install 'toolkit[pandas]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "RunResult.to_pandas() needs pandas: pip install pandas (or 'toolkit[pandas]')"
            ) from None
        rows = []
        params: dict[str, None] = {}
        for rec in self.records():
            row = {k: v for k, v in rec.items() if k != "params"}
            for name, value in (rec.get("params") or {}).items():
                column = f"params.{name}" if name in rec else name
                row[column] = value
                params[column] = None
            rows.append(row)
        frame = pd.DataFrame.from_records(rows)
        for column in params:  # nullable types: a task without the param leaves a gap
            frame[column] = frame[column].convert_dtypes()
        for column in ("started", "finished"):
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame


class RunSession:
    """One session of a run (a resume is a new session of an earlier run). A plain
    class: every run imports this module, and building an attrs class of this many
    fields costs ~1-2 ms at import (its methods are generated and compiled)."""

    def __init__(
        self,
        *,
        recipe: Recipe,
        plugins: Plugins,
        plan: Plan,
        runtimes: list[Any],
        digests: dict[str, str],
        run: RunDir,
        reporter: Any = None,
        grace: float = 5.0,
        resumed: bool = False,
        previous: dict[str, Any] | None = None,
        todo: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        kept: dict[str, int] | None = None,
        reconsider: dict[str, Any] | None = None,
        cache: Any = None,
        lock: Any = None,
    ) -> None:
        self.recipe = recipe
        self.plugins = plugins
        self.plan = plan
        #: the tasks as workers receive them (``TaskRuntime``), in recipe order
        self.runtimes = runtimes
        self.digests = digests
        self.run = run
        self.reporter = reporter
        self.grace = grace
        #: ``--resume`` or ``--retry-failed``
        self.resumed = resumed
        #: the manifest of the run this session resumes ({} for a new run)
        self.previous: dict[str, Any] = previous if previous is not None else {}
        #: per task, the indices this session runs (None: all of them)
        self.todo = todo
        #: per task, the values of the records kept from earlier sessions (for ``inputs``)
        self.values = values
        #: counts of the records kept from earlier sessions, and ``not_run``
        self.kept: dict[str, int] = kept if kept is not None else dict.fromkeys((*STATUSES, "not_run"), 0)
        #: per task that receives ``inputs``: (the digest of the inputs it received in the
        #: run resumed, the indices of its instances kept ok), to run again if its inputs changed
        self.reconsider: dict[str, Any] = reconsider if reconsider is not None else {}
        #: how this session uses the results cache (toolkit.store.incremental.CacheUse), if at all
        self.cache = cache
        #: the run's lock (store/lock.py), held from prepare_run to the end of finish_run
        self.lock = lock
        # -- set as the run goes
        self.started = 0.0
        self.finished = 0.0
        self.manifest: dict[str, Any] = {}
        self.info: RunInfo | None = None
        self.collector: Collector | None = None
        self.scheduler: Scheduler | None = None
        #: the run's status; "failed" until a phase says otherwise
        self.status = "failed"
        #: why the run did not succeed, when it did not (the manifest's ``reason``)
        self.reason: str | None = None
        #: the exception that ended the run, if one did
        self.error: BaseException | None = None
        self.counts: dict[str, int] = {}
        self.not_run = 0

    def end_by(self, exc: BaseException) -> None:
        """The run ends by ``exc`` (the first such exception is the one that counts)."""
        if self.error is not None:
            return
        self.error = exc
        if isinstance(exc, KeyboardInterrupt):
            self.status, self.reason = "interrupted", "interrupted"
        else:
            self.status = "failed"
            self.reason = exc.message if isinstance(exc, ToolkitError) else describe(exc)

    def result(self) -> RunResult:
        return RunResult(
            status=self.status,
            run_dir=self.run.path,
            run_id=self.run.run_id,
            counts=self.manifest["counts"],
            not_run=self.not_run,
        )


def task_runtimes(recipe: Recipe, plugins: Plugins) -> list[Any]:
    """Each task of the recipe with the function registered for it."""
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


def _known(names: list[str]) -> str:
    return ", ".join(names)


def prepare_run(
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
    rerun: Any = (),
) -> RunSession:
    """Check the options, plan, and find or create the run directory."""
    from toolkit.execution.plan import make_plan
    from toolkit.recipe.sources import pin_sources
    from toolkit.store.resume import changed_instances, check_resumable, plan_resume, task_digests
    from toolkit.store.rundir import RunDir, find_run
    from toolkit.store.runid import run_id_from_environment

    if workers is not None:
        if workers < 1:
            raise UsageError("-j/--workers must be at least 1")
        recipe = attrs.evolve(recipe, run=attrs.evolve(recipe.run, workers=workers))
    registries = plugins.registries
    if executor is not None and executor not in registries.executors:
        raise UsageError(f"unknown executor {executor!r} (known: {_known(registries.executors.names())})")
    the_plan = make_plan(recipe, plugins, executor=executor)
    if the_plan.executor not in registries.executors:
        raise UsageError(
            f"unknown executor {the_plan.executor!r} (known: {_known(registries.executors.names())})"
        )
    for fmt in recipe.output.formats:
        if fmt not in registries.sinks:
            raise UsageError(f"unknown output format {fmt!r} (known: {_known(registries.sinks.names())})")
    unknown = [name for name in rerun if name not in {t.name for t in recipe.tasks}]
    if unknown:
        known = ", ".join(t.name for t in recipe.tasks)
        raise UsageError(f"--rerun {unknown[0]}: no such task in the recipe (tasks: {known})")
    runtimes = task_runtimes(recipe, plugins)
    out = Path(output if output is not None else recipe.output.dir)
    digests = task_digests(recipe, runtimes)

    again = resume or retry_failed
    if not again:
        run = RunDir.create(out, recipe.name, run_id_from_environment())
        try:
            lock = lock_run(run)
            cache = cache_use(recipe, runtimes, out, run.run_id, digests, cache, rerun)
        except BaseException:
            run.remove()  # nothing started
            raise
        return RunSession(
            recipe=recipe,
            plugins=plugins,
            plan=the_plan,
            runtimes=runtimes,
            digests=digests,
            run=run,
            reporter=reporter,
            grace=grace,
            lock=lock,
            cache=cache,
        )
    run = find_run(out, recipe.name, again if isinstance(again, str) else None)
    # one process at a time: the manifest is read under the lock, so that of two
    # resumes started at once, the second sees the first holding the run
    lock = lock_run(run)
    try:
        previous = run.read_manifest()
        pinned = pin_sources(recipe, previous)
        if pinned is not recipe:  # matrix file sources: the values the run started with
            recipe = pinned
            the_plan = make_plan(recipe, plugins, executor=executor)
            runtimes = task_runtimes(recipe, plugins)
            digests = task_digests(recipe, runtimes)
        check_resumable(
            run,
            previous,
            recipe.name,
            digests,
            force=force,
            lock=lock,
            explain=lambda changed: changed_instances(recipe, runtimes, run, changed),
        )
        resumed = plan_resume(recipe, runtimes, run, retry_failed=bool(retry_failed))
        recorded = previous.get("inputs") or {}
        run.point_latest()
        cache = cache_use(recipe, runtimes, out, run.run_id, digests, cache, rerun)
    except BaseException:
        lock.release()
        raise
    return RunSession(
        recipe=recipe,
        plugins=plugins,
        plan=the_plan,
        runtimes=runtimes,
        digests=digests,
        run=run,
        reporter=reporter,
        grace=grace,
        resumed=True,
        lock=lock,
        previous=previous,
        todo=resumed.todo,
        values=resumed.values,
        kept=resumed.kept,
        reconsider={name: (recorded.get(name), idx) for name, idx in resumed.kept_ok.items()},
        cache=cache,
    )


def cache_tasks(recipe: Recipe, cache: bool | None = None) -> list[str]:
    """The tasks whose cache is on: a task's own ``cache`` key, else ``[run] cache``;
    ``cache`` True (``--cache``) turns it on for every task that does not say
    ``cache = false``, False (``--no-cache``) off for all."""
    if cache is False:
        return []
    on = []
    for spec in recipe.tasks:
        own = spec.cache
        if own is None:
            own = True if cache else recipe.run.cache
        if own:
            on.append(spec.name)
    return on


def cache_use(
    recipe: Recipe,
    runtimes: list[Any],
    out: Path,
    run_id: str,
    digests: dict[str, str],
    cache: bool | None,
    rerun: Any,
) -> Any:
    """How this run uses the recipe's cache (None: not at all)."""
    on = cache_tasks(recipe, cache)
    if not on:
        return None
    from toolkit.store.cache import CacheDB, cache_path
    from toolkit.store.incremental import CacheUse, RunCache

    db = CacheDB(cache_path(out, recipe.name))
    run_cache = RunCache(db, out / recipe.name, run_id, base_dir=recipe.base_dir)
    return CacheUse(run_cache, on, rerun, digests)


def lock_run(run: RunDir) -> Any:
    """Take the run's lock (RunLocked names who holds it)."""
    from toolkit.errors import StorageError
    from toolkit.store.lock import RunLock

    try:
        return RunLock(run.path).acquire()
    except OSError as exc:
        raise StorageError.from_os_error(exc, f"cannot lock the run directory {run.path}") from None


def write_start_manifest(session: RunSession) -> None:
    """The manifest of the session, ``running``, and space set aside for the final one.
    When it cannot be written, nothing has started: a new run directory is removed."""
    try:
        _write_start_manifest(session)
    except BaseException as exc:
        if not session.resumed:
            session.run.remove()
        else:
            session.run.release_space()
        release_lock(session)
        if isinstance(exc, OSError):
            raise StorageError.from_os_error(exc, f"cannot write {session.run.manifest_path}") from None
        raise


def _write_start_manifest(session: RunSession) -> None:
    from toolkit.store.manifest import start_manifest, to_write
    from toolkit.store.resume import recipe_digest

    session.started = time.time()
    session.manifest = start_manifest(
        run_id=session.run.run_id,
        recipe=session.recipe,
        plan=session.plan,
        plugin_versions=session.plugins.versions(),
        digests=session.digests,
        recipe_digest=recipe_digest(session.digests),
        started=session.started,
        previous=session.previous,
    )
    # the final manifest is about as big as this one; atomic_write needs room for both.
    # Set aside first: a disk without that room cannot hold the run (nothing starts)
    size = len(str(session.manifest))
    session.run.reserve_space(2 * size + 16384)
    session.run.check_file_size_limit(2 * size + 4096)
    session.run.write_manifest(to_write(session.manifest), spend_reserve=False)


def open_sinks(session: RunSession) -> None:
    """The sinks the recipe asks for (``jsonl`` first, always), fed by one collector."""
    from toolkit.store.sinks import Collector

    registries = session.plugins.registries
    recipe = session.recipe
    names = ["jsonl", *(f for f in dict.fromkeys(recipe.output.formats) if f != "jsonl")]
    infos = [registries.sinks.get(name) for name in names]
    sinks = []
    try:
        for info in infos:
            try:
                sinks.append(info.factory(session.run.path, recipe))
            except ToolkitError:
                raise
            except Exception as exc:
                raise PluginError(info.plugin, f"sink {info.name!r} (opening)", exc) from exc
    except BaseException:
        for sink in sinks:
            sink.close("failed")
        raise
    session.collector = Collector(
        sinks,
        names=names,
        plugins=[info.plugin for info in infos],
        logs=session.run.logs,
        warn=session.plugins.warn,
    )


def start_run(session: RunSession) -> None:
    """Open the sinks and tell the plugins (the manifest already says ``running``)."""
    open_sinks(session)
    session.plugins.call("toolkit_run_start", run=run_info(session))


def instances_to_run(session: RunSession) -> dict[str, int]:
    """Per task, how many instances this session runs."""
    todo, counts = session.todo, session.plan.counts
    return {
        rt.spec.name: len(todo[rt.spec.name]) if todo is not None else counts[rt.spec.name]
        for rt in session.runtimes
    }


def _executor_messages(reporter: Any) -> Callable[..., None]:
    """An executor's ``message`` (see ``ExecutorContext``) through the run's reporter."""
    from toolkit.execution.api import no_message

    if reporter is None:
        return no_message
    asked_verbose = getattr(reporter, "verbose", 0) > 0  # -v

    def message(text: str, *, verbose: bool = False) -> None:
        if asked_verbose or not verbose:
            reporter.message(text)

    return message


def run_tasks(session: RunSession) -> None:
    """Start the executor and run every instance to its record; sets ``status``."""
    from toolkit.execution.api import ExecutorContext, WorkerSetup
    from toolkit.execution.scheduler import Scheduler

    recipe, plan, plugins = session.recipe, session.plan, session.plugins
    assert session.collector is not None
    setup = WorkerSetup.build(
        plugins.load.file_plugins(),
        session.runtimes,
        session.run.path,
        workdir=session.recipe.workdir,
        recipe_dir=session.recipe.base_dir,
    )
    context = ExecutorContext(
        recipe=recipe,
        workers=recipe.run.workers,
        setup=setup,
        options=dict(recipe.executors.get(plan.executor, {})),
        run_dir=session.run.path,
        start_method=recipe.run.start_method,
        grace=session.grace,
        message=_executor_messages(session.reporter),
    )
    executor = plugins.registries.executors.get(plan.executor).factory(context)
    per_task = instances_to_run(session)
    if session.reporter is not None:
        session.reporter.start(
            session.run.path,
            sum(per_task.values()),
            plan.executor,
            plan.reason,
            recipe.run.workers,
            tasks=per_task,
            stages=plan.stages,
        )
    session.scheduler = Scheduler(
        recipe,
        session.runtimes,
        executor,
        workers=recipe.run.workers,
        write=session.collector.write,
        plugins=plugins,
        reporter=session.reporter,
        todo=session.todo,
        previous_values=session.values,
        grace=session.grace,
        cache=session.cache,
        reconsider=session.reconsider,
    )
    session.status = session.scheduler.run()


def live_instances(session: RunSession) -> dict[str, Any] | None:
    """After a forced resume of a changed recipe, per task, the ids of the instances it
    makes now (None: the task did not change); None when no task changed."""
    before = session.previous.get("task_digests")
    if not isinstance(before, dict) or before == session.digests:
        return None
    live: dict[str, Any] = {}
    for spec in session.recipe.tasks:
        if before.get(spec.name) == session.digests.get(spec.name):
            live[spec.name] = None
        else:
            live[spec.name] = {spec.instance_id(combo) for _index, combo in spec.iter_combos()}
    return live


def finish_run(session: RunSession) -> None:
    """Close the sinks and write the final manifest: called however the run ended."""
    from toolkit.store.manifest import finish_manifest, to_write

    try:
        try:
            if session.cache is not None:
                session.manifest["cache"] = session.cache.stats()
            if session.collector is not None:
                session.collector.close(session.status)
            if session.resumed:
                from toolkit.store.compact import compact

                # one line per instance; superseded ones to attempts.jsonl
                compact(session.run.path, live_instances(session))
            seal_results(session)
        finally:
            if session.cache is not None:
                session.cache.close()
    except OSError as exc:  # a full disk while the files are finished: the run failed
        error = StorageError.from_os_error(exc, "the run cannot finish its files")
        session.end_by(error)
        raise error from None
    except Exception as exc:  # a sink that could not finish its file, ...
        session.end_by(exc)
        raise
    finally:
        scheduler, kept = session.scheduler, session.kept
        this = scheduler.counts() if scheduler is not None else {}
        if scheduler is not None:
            kept["ok"] -= scheduler.rerun_kept  # kept ok, then run again: counted once
        session.counts = {k: kept.get(k, 0) + this.get(k, 0) for k in STATUSES}
        if scheduler is not None:
            session.not_run = kept["not_run"] + scheduler.not_run()
            inputs = {**(session.previous.get("inputs") or {}), **scheduler.input_digests}
            session.manifest["inputs"] = inputs
        else:  # it failed before anything ran
            session.not_run = session.plan.total - sum(session.counts.values())
        if session.status == "succeeded" and session.not_run:
            session.status = "incomplete"  # nothing failed, but instances were left not run
        session.finished = time.time()
        if session.reason is None and session.status != "succeeded":
            session.reason = _outcome(session)
        session.manifest = finish_manifest(
            session.manifest,
            status=session.status,
            counts=session.counts,
            not_run=session.not_run,
            total=session.plan.total,
            started=session.started,
            finished=session.finished,
            reason=session.reason,
        )
        try:
            write_final_manifest(session, to_write(session.manifest))
        finally:
            if session.reporter is not None and hasattr(session.reporter, "close"):
                session.reporter.close()


def seal_results(session: RunSession) -> None:
    """A new run whose ``results.jsonl`` holds one task's records, one per instance and
    every one ok, tells the cache so: the next run that takes them all copies the file
    whole (``sealed`` in toolkit.store.cache). Not after a resume: its file may still
    hold records of instances the recipe no longer has."""
    scheduler = session.scheduler
    if session.cache is None or scheduler is None or session.resumed or session.status != "succeeded":
        return
    having = [rt.spec for rt in session.runtimes if rt.spec.count()]
    counts = scheduler.counts()
    if len(having) == 1 and counts["ok"] == having[0].count() == sum(counts.values()):
        from toolkit.store.rundir import RESULTS

        session.cache.seal(session.run.path / RESULTS, having[0].name, counts["ok"])


def write_final_manifest(session: RunSession, manifest: dict[str, Any]) -> None:
    """The manifest as the run ended (on a full disk, in the space set aside)."""
    try:
        session.run.write_manifest(manifest)
    except OSError as exc:
        raise StorageError.from_os_error(exc, f"cannot write {session.run.manifest_path}") from None
    finally:
        session.run.release_space()


def release_lock(session: RunSession) -> None:
    if session.lock is not None:
        session.lock.release()


def _outcome(session: RunSession) -> str:
    """Why a run that no error ended did not succeed: ``2 failed, 1 skipped, 3 not run``."""
    if session.status == "interrupted":
        return "interrupted (Ctrl-C or SIGTERM)"
    parts = [f"{session.counts[s]} {s}" for s in STATUSES[1:] if session.counts.get(s)]
    if session.not_run:
        parts.append(f"{session.not_run} not run")
    return ", ".join(parts) or session.status


def run_info(session: RunSession) -> RunInfo:
    """What ``toolkit_run_start`` and ``toolkit_run_finish`` see of the run."""
    from toolkit.store.rundir import RunInfo

    if session.info is None:
        session.info = RunInfo(
            run_id=session.run.run_id,
            run_dir=session.run.path,
            recipe=session.recipe,
            executor=session.plan.executor,
            reason=session.plan.reason,
            resumed=session.resumed,
        )
    return session.info


def report_run(session: RunSession) -> None:
    """Tell the plugins and the reporter how the run ended (its manifest is final).

    A ``toolkit_run_finish`` that fails after a run that had no error of its own makes
    the run failed, with that reason in its manifest."""
    from toolkit.store.manifest import to_write, with_status
    from toolkit.store.rundir import Summary

    duration = session.finished - session.started
    summary = Summary(status=session.status, counts=session.manifest["counts"], duration_s=round(duration, 3))
    try:
        session.plugins.call("toolkit_run_finish", run=run_info(session), summary=summary)
    except Exception as exc:
        if session.error is None:
            session.end_by(exc)
            session.manifest = with_status(session.manifest, session.status, session.reason)
            session.run.write_manifest(to_write(session.manifest))
        raise
    if session.reporter is not None and session.error is None:
        counts = {**session.counts, "cached": session.manifest.get("cache", {}).get("hits", 0)}
        session.reporter.finish(session.status, counts, session.not_run, session.run.path, duration)


def end_run(session: RunSession) -> None:
    """``finish_run`` then ``report_run``, both always. An error of theirs is raised
    when the run had none of its own; else it is shown as a warning, and the error that
    ended the run goes on."""
    had_error = session.error is not None
    try:
        try:
            finish_run(session)
        finally:
            report_run(session)
    except Exception as exc:
        if not had_error:
            raise
        session.plugins.warn(exc.message if isinstance(exc, ToolkitError) else describe(exc))


def execute(recipe: Recipe, plugins: Plugins, **options: Any) -> RunResult:
    """Run a validated recipe: prepare -> start -> run -> finish (options: see
    :func:`prepare_run`)."""
    session = prepare_run(recipe, plugins, **options)
    write_start_manifest(session)
    # from here on the manifest says "running": whatever happens, it must end said otherwise
    try:
        start_run(session)
        run_tasks(session)
    except OSError as exc:  # the machine cannot hold the run (a full disk, ...)
        error = StorageError.from_os_error(exc, "the run cannot write its files")
        session.end_by(error)
        raise error from exc
    except BaseException as exc:
        session.end_by(exc)
        raise
    finally:
        try:
            end_run(session)
        finally:
            release_lock(session)  # last: another process may take the run from here on
    return session.result()
