"""From the merged table to a :class:`Recipe`: interpolation, then structural checks.

Structural means everything that needs no plugin: unknown keys, types, ranges,
durations, names, the matrix, ``needs``. Problems are gathered and raised together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolkit.durations import parse_duration
from toolkit.errors import RecipeError, RecipeErrors
from toolkit.recipe import keys as K
from toolkit.recipe import limits
from toolkit.recipe.command import COMMAND, command_mode, split_words
from toolkit.recipe.command import quote as shell_quote
from toolkit.recipe.interpolate import InterpolationError, Ref, Resolver, escape, parse
from toolkit.recipe.masking import ordered
from toolkit.recipe.matrix_check import check_matrix
from toolkit.recipe.model import (
    NotifySettings,
    OutputSettings,
    Recipe,
    RunSettings,
    TaskSpec,
    checked_task,
    default_workers,
)
from toolkit.recipe.problems import Locator, Problems, did_you_mean, show, type_name
from toolkit.recipe.sources import read_sources

_MISSING = object()


class Checker:
    """Typed reads from tables, each bad value reported once with its key path."""

    def __init__(self, problems: Problems) -> None:
        self.p = problems

    def table(self, value: Any, path: tuple, *, required: str | None = None) -> dict[str, Any] | None:
        if value is _MISSING or value is None:
            if required:
                self.p.add(path, required)
            return None
        if not isinstance(value, dict):
            self.p.add(path, f"must be a table, got {type_name(value)}")
            return None
        return value

    def unknown(self, table: Mapping[str, Any], path: tuple, known: Mapping[str, Any] | tuple) -> None:
        for key in table:
            if key not in known:
                hint = did_you_mean(key, known) or f" (known keys: {', '.join(known)})"
                self.p.add((*path, key), f"unknown key{hint}")

    def get(self, table: Mapping[str, Any], key: str, path: tuple, check, default: Any) -> Any:
        if key not in table:
            return default
        try:
            return check(table[key])
        except ValueError as exc:
            self.p.add((*path, key), str(exc))
            return default


def integer(minimum: int):
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer >= {minimum}, got {type_name(value)} {show(value)}")
        if value < minimum:
            raise ValueError(f"must be >= {minimum}, got {value}")
        return value

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {type_name(value)} {show(value)}")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {type_name(value)} {show(value)}")
    return value


def nonempty(value: Any) -> str:
    if not string(value).strip():
        raise ValueError("must not be empty")
    return value


def name(value: Any) -> str:
    if not isinstance(value, str) or not K.NAME_RE.fullmatch(value):
        got = f"{type_name(value)} {show(value)}" if not isinstance(value, str) else show(value)
        raise ValueError(
            f"must be letters, digits, '.', '_', '-' (starting with a letter or digit), got {got}"
        )
    if len(value) > limits.MAX_NAME:
        raise ValueError(
            f"must be at most {limits.MAX_NAME} characters (it names directories and files),"
            f" got {len(value)}: {show(value)}"
        )
    return value


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be an array of strings, got {show(value)}")
    return value


def memory_size(value: Any) -> int:
    from toolkit.sizes import parse_size

    return parse_size(value)


def timeout(value: Any) -> float | None:
    seconds = parse_duration(value)
    return seconds or None  # 0 means no time limit


def choice(options: tuple[str, ...]):
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(
                f"must be one of {' | '.join(options)}, got {show(value)}{did_you_mean(str(value), options)}"
            )
        return value

    return check


def start_method(value: Any) -> str:
    import multiprocessing

    choice(K.START_METHODS)(value)
    if value not in multiprocessing.get_all_start_methods():
        raise ValueError(f"start method {value!r} is not available on this platform")
    return value


def build_recipe(
    data: dict[str, Any],
    *,
    path: Path | None,
    display: str | None,
    base_dir: Path,
    locate: Locator,
    environ: Mapping[str, str],
) -> Recipe:
    p = Problems(display, locate)
    c = Checker(p)
    data, templates, secrets = interpolate(data, environ, p, base_dir)
    c.unknown(data, (), K.TOP)

    head = (
        c.table(data.get("recipe", _MISSING), ("recipe",), required="required: a [recipe] table with a name")
        or {}
    )
    c.unknown(head, ("recipe",), K.RECIPE)
    if "name" not in head and "recipe" in data:
        p.add(("recipe", "name"), "required: the recipe's name (letters, digits, '.', '_', '-')")
    rname = c.get(head, "name", ("recipe",), name, "recipe")
    description = c.get(head, "description", ("recipe",), string, "")
    plugins = c.get(head, "plugins", ("recipe",), strings, [])
    for i, spec in enumerate(plugins):
        if "${" in spec:
            p.add(("recipe", "plugins", i), "plugin names are not interpolated")
        elif not spec.strip():
            p.add(("recipe", "plugins", i), "must not be empty")
        elif spec.endswith(".py") and not Path(spec).is_file():
            p.add(("recipe", "plugins", i), f"no such plugin file: {spec}")

    variables = c.table(data.get("vars", {}), ("vars",)) or {}
    run = build_run(c, data.get("run", {}), base_dir)
    output = build_output(c, data.get("output", {}))
    notify = build_notify(c, data["notify"]) if "notify" in data else None
    executors = {}
    for ename, options in (c.table(data.get("executor", {}), ("executor",)) or {}).items():
        if c.table(options, ("executor", ename)) is not None:
            executors[ename] = options
    schedule = build_schedule(p, data["schedule"], display) if "schedule" in data else None
    tasks = build_tasks(c, data.get("task", _MISSING), run, templates, base_dir, secrets.of_task)

    p.raise_if_any()
    return Recipe(
        name=rname,
        description=description,
        path=path,
        base_dir=base_dir,
        plugins=tuple(plugins),
        vars=variables,
        run=run,
        output=output,
        notify=notify,
        executors=executors,
        schedule=schedule,
        tasks=tasks,
        secrets=ordered(secrets.all),
    )


#: where a value may hold a secret: it is never shown there, or shown masked
SECRET_PLACES = ("vars", "executor", "notify")
SECRET_HINT = "a secret can only be used in task params, [vars], [executor.NAME] and [notify]"


def interpolate(
    data: dict[str, Any], environ: Mapping[str, str], p: Problems, base_dir: Path | None = None
) -> tuple[dict, dict, Secrets]:
    """Resolve references everywhere; return the table; per task position, the paths in
    its params of strings that keep ``${matrix.NAME}`` (and, under ``(position, "files")``
    and ``(position, "outputs")``, those of its file lists); and the secrets read."""
    head = data.get("recipe") if isinstance(data.get("recipe"), dict) else {}
    variables = data.get("vars") if isinstance(data.get("vars"), dict) else {}
    resolver = Resolver(variables, head, environ, p.add, recipe_dir=str(base_dir or Path.cwd()))
    secrets = Secrets()
    try:
        out = _interpolate(data, resolver, secrets, p)
    except RecursionError:  # the limits on nesting and references should make this unreachable
        p.add((), "references and values nest too deeply to resolve")
        p.raise_if_any()
    secrets.all = resolver.secrets_read
    return out, secrets.templates, secrets


class Secrets:
    """What interpolation learnt on the way: secret values and ``${matrix.X}`` templates."""

    def __init__(self) -> None:
        self.all: list[str] = []
        self.of_task: dict[int, list[str]] = {}
        self.templates: dict[Any, list[tuple]] = {}


def _interpolate(data: dict[str, Any], resolver: Resolver, secrets: Secrets, p: Problems) -> dict:
    read = resolver.secrets_read
    templates = secrets.templates

    def public(value: Any, path: tuple, problem: str = SECRET_HINT, **how: Any) -> Any:
        """Resolve a value that is shown as it is: a secret in it is an error."""
        if isinstance(value, dict) and len(path) == 1:  # name the key, not the table
            return {k: public(v, (*path, k), problem) for k, v in value.items()}
        before = len(read)
        resolved = resolver.resolve(value, path, **how)
        if len(read) > before:
            p.add(path, problem)
            return value  # as written: later messages about it must not show the secret
        return resolved

    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "vars" and isinstance(value, dict):
            out[key] = resolver.resolve_vars()
        elif key == "recipe" and isinstance(value, dict):
            out[key] = {k: v if k == "plugins" else public(v, (key, k)) for k, v in value.items()}
        elif key == "task" and isinstance(value, list):
            tasks = []
            for i, task in enumerate(value):
                if not isinstance(task, dict) or _nothing_to_resolve(task):
                    tasks.append(task)  # (most tables of a big recipe: a third of the time)
                    continue
                label = task.get("name") if isinstance(task.get("name"), str) else i
                resolved = {}
                for k, v in task.items():
                    if type(v) is str and "$" not in v:  # (name, uses...): nothing to resolve
                        resolved[k] = v
                        continue
                    where = ("task", label, k)
                    if k == "params":
                        found: list[tuple] = []
                        before = len(read)
                        resolved[k] = resolve_params(resolver, task.get("uses"), v, where, found, p)
                        templates[i] = [t[3:] for t in found]
                        if len(read) > before:
                            secrets.of_task[i] = read[before:]
                    elif k in FILE_KEYS:
                        found = []
                        resolved[k] = public(v, where, templates=found)
                        templates[(i, k)] = [t[3:] for t in found]
                    elif k == "matrix":
                        resolved[k] = public(
                            v, where, "a secret cannot be a matrix value: matrix values name instances"
                        )
                    else:
                        resolved[k] = public(v, where)
                tasks.append(resolved)
            out[key] = tasks
        elif key in SECRET_PLACES:
            out[key] = resolver.resolve(value, (key,))
        else:
            out[key] = public(value, (key,))
    return out


def _nothing_to_resolve(task: dict[str, Any]) -> bool:
    """Whether a task table has no ``$`` in its strings and no tables or arrays but a
    flat ``params``: resolving it would give an equal table (no templates, no secrets)."""
    for key, value in task.items():
        if type(value) is str:
            if "$" in value:
                return False
        elif key == "params" and type(value) is dict:
            for item in value.values():
                if type(item) is str:
                    if "$" in item:
                        return False
                elif isinstance(item, (dict, list)):
                    return False
        elif isinstance(value, (dict, list)):
            return False
    return True


def resolve_params(
    resolver: Resolver, uses: Any, params: Any, where: tuple, found: list[tuple], p: Problems
) -> Any:
    """A task's params, resolved; a ``shell`` task's ``cmd`` split into words first (or,
    with ``shell = true``, its values shell-quoted): see :mod:`toolkit.recipe.command`."""
    mode = command_mode(
        uses, params, _quiet(resolver, params.get("shell") if isinstance(params, dict) else None)
    )
    if mode is None:
        return resolver.resolve(params, where, templates=found)
    cmd = params[COMMAND]
    if mode == "words":
        try:
            cmd = split_words(cmd)
        except InterpolationError:
            pass  # the resolver reports it
        except ValueError as exc:
            p.add((*where, COMMAND), f"cannot split the command into words: {exc}")
            return params
    quoted = shell_quote if mode == "quoted" else None
    return {
        k: resolver.resolve(v, (*where, k), templates=found, quote=quoted if k == COMMAND else None)
        for k, v in {**params, COMMAND: cmd}.items()
    }


def _quiet(resolver: Resolver, value: Any) -> Any:
    """``value`` resolved without reporting (it is resolved, and reported, again later)."""
    if not isinstance(value, str):
        return value
    saved, resolver.report = resolver.report, lambda path, problem: None
    try:
        return resolver.resolve(value, ())
    finally:
        resolver.report = saved


#: task keys that list files: ``${matrix.NAME}`` is allowed in them, as in params
FILE_KEYS = ("files", "outputs")


def workdir(base_dir: Path):
    def check(value: Any) -> str:
        nonempty(value)
        where = base_dir / os.path.expanduser(value)
        if where.exists() and not where.is_dir():
            raise ValueError(f"{value!r} is not a directory")
        return value

    return check


def build_run(c: Checker, value: Any, base_dir: Path | None = None) -> RunSettings:
    table = c.table(value, ("run",)) or {}
    path = ("run",)
    c.unknown(table, path, K.RUN)
    return RunSettings(
        workdir=c.get(table, "workdir", path, workdir(base_dir or Path.cwd()), "."),
        cache=c.get(table, "cache", path, boolean, False),
        executor=c.get(table, "executor", path, nonempty, "auto"),
        workers=c.get(table, "workers", path, integer(1), None) or default_workers(),
        retries=c.get(table, "retries", path, integer(0), 0),
        timeout=c.get(table, "timeout", path, timeout, None),
        keep_going=c.get(table, "keep_going", path, boolean, False),
        max_tasks_per_worker=c.get(table, "max_tasks_per_worker", path, integer(0), 0),
        start_method=c.get(table, "start_method", path, start_method, None),
        memory=c.get(table, "memory", path, memory_size, None),
    )


def build_output(c: Checker, value: Any) -> OutputSettings:
    table = c.table(value, ("output",)) or {}
    path = ("output",)
    # [output.NAME] tables: options of the sink NAME (checked by the sink, if it says how)
    options = {k: v for k, v in table.items() if isinstance(v, dict) and k not in K.OUTPUT}
    c.unknown({k: v for k, v in table.items() if k not in options}, path, K.OUTPUT)
    formats = c.get(table, "formats", path, strings, ["jsonl"])
    for i, fmt in enumerate(formats):
        if not fmt.strip():
            c.p.add((*path, "formats", i), "must not be empty")
    for name in options:
        if name not in formats and name != "jsonl":
            c.p.add((*path, name), f"options for format {name!r}, which output.formats does not list")
    return OutputSettings(
        dir=c.get(table, "dir", path, nonempty, "runs"),
        formats=formats,
        keep=c.get(table, "keep", path, integer(0), 0),
        options=options,
    )


def build_notify(c: Checker, value: Any) -> NotifySettings | None:
    from toolkit.notify import ON_CHOICES

    path = ("notify",)
    table = c.table(value, path)
    if table is None:
        return None
    c.unknown(table, path, K.NOTIFY)
    on = c.get(table, "on", path, strings, ["failure"])
    for i, item in enumerate(on):
        try:
            choice(ON_CHOICES)(item)
        except ValueError as exc:
            c.p.add((*path, "on", i), str(exc))
    webhook = c.get(table, "webhook", path, nonempty, None)
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        c.p.add((*path, "webhook"), "must be an http:// or https:// URL")  # never echo it
    return NotifySettings(
        on=tuple(on),
        webhook=webhook,
        command=c.get(table, "command", path, nonempty, None),
        timeout=c.get(table, "timeout", path, timeout, None) or 10.0,
        retries=c.get(table, "retries", path, integer(0), 2),
    )


def build_schedule(p: Problems, table: Any, display: str | None) -> Any:
    from toolkit.schedule.spec import ScheduleSpec

    try:
        return ScheduleSpec.from_table(table, path=display, where="schedule")
    except (RecipeError, RecipeErrors) as exc:
        errors = exc.errors if isinstance(exc, RecipeErrors) else [exc]
        for e in errors:  # add the line the schedule module cannot know
            p.add(tuple(e.where.split(".")) if e.where else ("schedule",), e.problem, where=e.where)
    except (TypeError, ValueError) as exc:
        p.add(("schedule",), str(exc))
    return None


def build_tasks(
    c: Checker,
    value: Any,
    run: RunSettings,
    templates: dict[Any, list[tuple]],
    base_dir: Path | None = None,
    secrets: dict[int, list[str]] | None = None,
) -> tuple[TaskSpec, ...]:
    p = c.p
    if value is _MISSING:
        p.add(("task",), "the recipe has no [[task]]: add at least one")
        return ()
    if not isinstance(value, list) or not value:
        p.add(("task",), "must be an array of tables: write each task as [[task]]")
        return ()
    specs: list[TaskSpec] = []
    first: dict[str, int] = {}
    needs_of: dict[str, list[str]] = {}
    total = 0  # instances so far (at most)
    # A big recipe is mostly tables of name, uses and params: each check below runs
    # only for a key the table has (a third of the time of 100,000 tables otherwise)
    known = K.TASK.keys()
    count_ok, cpus_ok = integer(0), integer(1)
    get = c.get
    for i, task in enumerate(value):
        if not isinstance(task, dict):
            p.add(("task", i), f"must be a table, got {type_name(task)}")
            continue
        tname = task.get("name")
        named = isinstance(tname, str) and len(tname) <= limits.MAX_NAME and K.NAME_RE.fullmatch(tname)
        label: Any = tname if named else i
        path = ("task", label)
        if not task.keys() <= known:
            c.unknown(task, path, K.TASK)
        if "name" not in task:
            p.add(("task", i, "name"), "required: every task needs a name")
        elif not named:
            get(task, "name", path, name, None)
        if isinstance(tname, str) and tname in first:
            p.add(("task", i, "name"), f"duplicate task name {tname!r} (task[{first[tname]}] has it too)")
        elif isinstance(tname, str):
            first[tname] = i
        if "uses" not in task:
            p.add((*path, "uses"), "required: the registered task to run, such as 'shell'")
        uses = task.get("uses")
        if not isinstance(uses, str) or not uses.strip():
            uses = get(task, "uses", path, nonempty, "")
        params = task.get("params", {})
        if not isinstance(params, dict):
            params = c.table(params, (*path, "params"))
        found = templates.get(i, ()) if params is not None else ()
        params = params or {}
        matrix, sources = {}, ()
        if "matrix" in task:
            before = len(p.errors)
            matrix, sources = read_sources(p, task["matrix"], (*path, "matrix"), base_dir or Path.cwd())
            matrix = check_matrix(p, matrix, (*path, "matrix")) if matrix is not None else {}
            if matrix:
                size = limits.matrix_size(matrix)
                total += size
                if total > limits.MAX_INSTANCES:
                    p.add(
                        (*path, "matrix"),
                        f"makes {size:,} instances: a recipe may have at most {limits.MAX_INSTANCES:,}",
                    )
                    total, matrix = total - size, {}
            matrix_ok = len(p.errors) == before  # else ${matrix.X} would be reported again
        else:
            matrix_ok = True
        files = (
            {k: tuple(file_list(c, task, k, path, templates.get((i, k), ()))) for k in FILE_KEYS if k in task}
            if "files" in task or "outputs" in task
            else {}
        )
        needs = list(dict.fromkeys(get(task, "needs", path, strings, []))) if "needs" in task else []
        if isinstance(tname, str):
            needs_of[tname] = needs
        try:
            spec = checked_task(
                name=tname if named else f"task{i}",
                uses=uses,
                params=params,
                matrix=matrix,
                needs=tuple(needs),
                retries=get(task, "retries", path, count_ok, run.retries)
                if "retries" in task
                else run.retries,
                timeout=get(task, "timeout", path, timeout, run.timeout)
                if "timeout" in task
                else run.timeout,
                isolate=get(task, "isolate", path, boolean, False) if "isolate" in task else False,
                cpus=get(task, "cpus", path, cpus_ok, 1) if "cpus" in task else 1,
                memory=get(task, "memory", path, memory_size, None) if "memory" in task else None,
                templates=tuple(found),
                files=files.get("files", ()),
                outputs=files.get("outputs", ()),
                cache=get(task, "cache", path, boolean, None) if "cache" in task else None,
                sources=tuple(sources),
                secrets=ordered(secrets[i]) if secrets and i in secrets else (),
            )
        except (TypeError, ValueError) as exc:  # the checks above should make this unreachable
            p.add(path, str(exc))
            continue
        if matrix_ok and (spec.templates or spec.files or spec.outputs):
            check_matrix_refs(p, spec, path)
        specs.append(spec)
    check_needs(p, needs_of)
    check_memory(p, specs, run)
    return tuple(specs)


def file_list(c: Checker, task: Mapping[str, Any], key: str, path: tuple, found: Any) -> list[str]:
    """A task's ``files`` or ``outputs`` in recipe spelling (``$${`` for a literal ``${``)."""
    entries = c.get(task, key, path, strings, [])
    templated = {t[0] if t else 0 for t in found}  # () when the key is one string
    out = []
    for i, entry in enumerate(entries):
        if not entry.strip():
            c.p.add((*path, key, i), "must not be empty")
        out.append(entry if i in templated else escape(entry))
    return out


def check_memory(p: Problems, specs: list[TaskSpec], run: RunSettings) -> None:
    """An instance that asks for more memory than all instances may have together
    could never start."""
    asked = [spec for spec in specs if spec.memory is not None]
    if not asked:
        return
    from toolkit.sizes import format_size

    budget = run.memory_budget()
    where = "run.memory" if run.memory is not None else "the memory available on this machine; set run.memory"
    for spec in asked:
        if spec.memory > budget:  # type: ignore[operator]
            p.add(
                ("task", spec.name, "memory"),
                f"{format_size(spec.memory)} is more than the run's memory budget, "  # type: ignore[arg-type]
                f"{format_size(budget)} ({where})",
            )


def check_matrix_refs(p: Problems, spec: TaskSpec, path: tuple) -> None:
    known = spec.matrix_keys()
    texts = [((*path, "params", *where), _get(spec.params, where)) for where in spec.templates]
    texts += [((*path, k, i), text) for k in FILE_KEYS for i, text in enumerate(getattr(spec, k))]
    for where, text in texts:
        for part in parse(text):
            if isinstance(part, Ref) and part.kind == "matrix" and part.path[0] not in known:
                hint = did_you_mean(part.path[0], known) or (
                    f" (its keys: {', '.join(sorted(known))})" if known else " (the task has no matrix)"
                )
                p.add(where, f"{part.text}: the matrix has no {part.path[0]!r}{hint}")


def _get(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value


def check_needs(p: Problems, needs_of: dict[str, list[str]]) -> None:
    for tname, needs in needs_of.items():
        for j, need in enumerate(needs):
            if need == tname:
                p.add(("task", tname, "needs", j), "a task cannot need itself")
            elif need not in needs_of:
                hint = did_you_mean(need, needs_of) or (
                    f" (tasks: {', '.join(needs_of)})" if len(needs_of) <= 12 else ""
                )
                p.add(("task", tname, "needs", j), f"unknown task {need!r}{hint}")
    # depth-first, with a stack of its own: a chain of 100,000 needs is no RecursionError
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for root, needs in needs_of.items():
        if not needs or root in state:  # a task that needs nothing is in no cycle
            continue
        state[root] = 1
        path = [root]
        stack = [iter(needs)]
        while stack:
            need = next(stack[-1], None)
            if need is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if need == path[-1] or need not in needs_of:
                continue
            if state.get(need) == 1:
                cycle = [*path[path.index(need) :], need]
                p.add(("task", need, "needs"), f"needs form a cycle: {' -> '.join(cycle)}")
            elif need not in state:
                state[need] = 1
                path.append(need)
                stack.append(iter(needs_of[need]))
