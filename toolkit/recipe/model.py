"""The recipe as frozen attrs objects: :class:`Recipe`, :class:`TaskSpec` and settings.

Build a recipe with :func:`toolkit.recipe.read_recipe` (a path, or a dict shaped like the TOML),
which validates everything first; write it back with ``tomli_w.dumps(r.to_table())``.
Every object here pickles. Worker processes receive each task as a plain
:class:`~toolkit.recipe.instances.TaskView` (:meth:`TaskSpec.for_worker`), which needs
neither attrs nor this module.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
from attrs import validators as av

from toolkit.durations import format_duration
from toolkit.recipe.command import COMMAND, command_mode
from toolkit.recipe.instances import TaskInstances, TaskView
from toolkit.recipe.interpolate import escape, escape_all
from toolkit.recipe.keys import NAME_RE, START_METHODS
from toolkit.recipe.masking import mask, mask_repr
from toolkit.recipe.matrix import Matrix, axis_values
from toolkit.recipe.params import ParamTemplate
from toolkit.recipe.paths import FilePaths
from toolkit.sizes import exact_size

if TYPE_CHECKING:
    from toolkit.schedule.spec import ScheduleSpec


def default_workers() -> int:
    """The CPUs this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    """``tuple(value)``, as a converter: for ``tuple`` itself attrs reads the signature of
    a builtin, which compiles the tokenize module's regular expressions (~5 ms)."""
    return tuple(value)


av_name = av.matches_re(NAME_RE)
_NO_MATRIX = Matrix({})
_NO_PATHS = FilePaths((), ())
_timeout = av.optional([av.instance_of(float), av.gt(0.0)])
_count = [av.instance_of(int), av.ge(0)]
_size = av.optional([av.instance_of(int), av.ge(1)])


def available_memory() -> int:
    """Bytes of memory available to new work on this machine (Linux: ``MemAvailable``;
    elsewhere: the physical memory)."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - unknown: no budget
        return 1 << 60


@attrs.frozen(kw_only=True)
class RunSettings:
    """The ``[run]`` table."""

    executor: str = attrs.field(default="auto", validator=av.instance_of(str))
    workers: int = attrs.field(factory=default_workers, validator=[av.instance_of(int), av.ge(1)])
    retries: int = attrs.field(default=0, validator=_count)
    timeout: float | None = attrs.field(default=None, validator=_timeout)
    keep_going: bool = attrs.field(default=False, validator=av.instance_of(bool))
    max_tasks_per_worker: int = attrs.field(default=0, validator=_count)
    start_method: str | None = attrs.field(default=None, validator=av.optional(av.in_(START_METHODS)))
    #: the instances' working directory, as written (relative to the recipe's directory)
    workdir: str = attrs.field(default=".", validator=av.instance_of(str))
    cache: bool = attrs.field(default=False, validator=av.instance_of(bool))
    #: bytes; None: the memory available when the run starts (:meth:`memory_budget`)
    memory: int | None = attrs.field(default=None, validator=_size)

    def memory_budget(self) -> int:
        """The bytes the instances running at once may ask for in all."""
        return self.memory if self.memory is not None else available_memory()

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "executor": self.executor,
            "workers": self.workers,
            "retries": self.retries,
            "keep_going": self.keep_going,
            "max_tasks_per_worker": self.max_tasks_per_worker,
        }
        if self.timeout is not None:
            table["timeout"] = format_duration(self.timeout)
        if self.start_method is not None:
            table["start_method"] = self.start_method
        table["workdir"] = self.workdir
        table["cache"] = self.cache
        if self.memory is not None:
            table["memory"] = exact_size(self.memory)
        return table


def _with_jsonl(formats: Any) -> tuple[str, ...]:
    out = ["jsonl"]
    for name in formats:
        if name not in out:
            out.append(name)
    return tuple(out)


@attrs.frozen(kw_only=True)
class OutputSettings:
    """The ``[output]`` table. ``formats`` always starts with ``jsonl``; ``options``
    holds the ``[output.NAME]`` tables, the options of sink NAME."""

    dir: str = attrs.field(default="runs", validator=av.instance_of(str))
    formats: tuple[str, ...] = attrs.field(default=("jsonl",), converter=_with_jsonl)
    keep: int = attrs.field(default=0, validator=_count)
    options: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def options_for(self, name: str) -> dict[str, Any]:
        """The ``[output.NAME]`` table of sink ``name`` ({} when the recipe has none)."""
        return dict(self.options.get(name, {}))

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {"dir": self.dir, "formats": list(self.formats), "keep": self.keep}
        table.update({name: escape_all(opts) for name, opts in self.options.items()})
        return table


@attrs.frozen(kw_only=True)
class NotifySettings:
    """The ``[notify]`` table (see :mod:`toolkit.notify`)."""

    on: tuple[str, ...] = attrs.field(default=("failure",), converter=_tuple)
    webhook: str | None = None
    command: str | None = None
    timeout: float = attrs.field(default=10.0, validator=[av.instance_of(float), av.gt(0.0)])
    retries: int = attrs.field(default=2, validator=_count)

    def to_table(self) -> dict[str, Any]:
        from toolkit.notify import mask_url

        table: dict[str, Any] = {"on": list(self.on)}
        if self.webhook:  # it authorises whoever holds it: never written out
            table["webhook"] = mask_url(self.webhook)
        if self.command:
            table["command"] = escape(self.command)
        table["timeout"] = format_duration(self.timeout)
        table["retries"] = self.retries
        return table


@attrs.frozen(kw_only=True)
class TaskSpec(TaskInstances):
    """One ``[[task]]``, resolved: its instances come from :meth:`combo` by index (the
    methods of :class:`~toolkit.recipe.instances.TaskInstances`).

    ``params`` holds the values with ``${vars...}``, ``${env...}`` and ``${recipe...}``
    resolved; strings that still use ``${matrix.NAME}`` are kept as written (with
    ``$${`` for a literal ``${``) and listed in ``templates`` by their path in params.
    ``matrix`` is the validated matrix table as in TOML, with its file sources read:
    ``sources`` keeps those as written (``(("path", {"glob": "data/*.csv"}),)``) while
    ``matrix`` holds the values they gave. ``files`` and ``outputs`` are in recipe
    spelling (``$${`` for a literal ``${``) and may use ``${matrix.NAME}``; ``cache`` is
    None when the task follows ``run.cache`` (see :meth:`Recipe.uses_cache`).
    """

    name: str = attrs.field(validator=av_name)
    uses: str = attrs.field(validator=av.instance_of(str))
    params: dict[str, Any] = attrs.field(factory=dict)
    matrix: dict[str, Any] = attrs.field(factory=dict)
    needs: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    retries: int = attrs.field(default=0, validator=_count)
    timeout: float | None = attrs.field(default=None, validator=_timeout)
    isolate: bool = attrs.field(default=False, validator=av.instance_of(bool))
    cpus: int = attrs.field(default=1, validator=[av.instance_of(int), av.ge(1)])
    memory: int | None = attrs.field(default=None, validator=_size)  # bytes
    templates: tuple[tuple[Any, ...], ...] = attrs.field(default=(), converter=_tuple)
    files: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    outputs: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    cache: bool | None = attrs.field(default=None, validator=av.optional(av.instance_of(bool)))
    sources: tuple[tuple[str, dict[str, str]], ...] = attrs.field(default=(), converter=_tuple)
    #: the secret values in ``params`` (``${secret.NAME}``), longest first: masked as
    #: ``***`` wherever params are written or printed
    secrets: tuple[str, ...] = attrs.field(default=(), converter=_tuple, repr=False)
    # derived, rebuilt from the fields above; small, so it simply pickles along
    _space: Matrix = attrs.field(init=False, eq=False, repr=False)
    _template: ParamTemplate = attrs.field(init=False, eq=False, repr=False)
    _paths: FilePaths = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.matrix:
            axes = {k: axis_values(v) for k, v in self.matrix.items() if k not in ("include", "exclude")}
            space = Matrix(axes, self.matrix.get("include", ()), self.matrix.get("exclude", ()))
        else:
            space = _NO_MATRIX  # immutable: one for every task without a matrix
        object.__setattr__(self, "_space", space)
        quoted = (
            _QUOTED_COMMAND
            if command_mode(self.uses, self.params, self.params.get("shell")) == "quoted"
            else ()
        )
        object.__setattr__(self, "_template", ParamTemplate(self.name, self.params, self.templates, quoted))
        globs = [key for key, source in self.sources if "glob" in source] if self.sources else ()
        paths = (
            FilePaths(self.files, self.outputs, globs) if self.files or self.outputs or globs else _NO_PATHS
        )
        object.__setattr__(self, "_paths", paths)

    def for_worker(self) -> TaskView:
        """This task as worker processes receive it: a plain :class:`TaskView`, which
        unpickles without attrs (or this module)."""
        return TaskView(self)

    @classmethod
    def from_view(cls, view: TaskView) -> TaskSpec:
        """The spec a :class:`TaskView` was made from (an equal one)."""
        return cls(
            name=view.name,
            uses=view.uses,
            params=view.params,
            matrix=view.matrix,
            needs=view.needs,
            retries=view.retries,
            timeout=view.timeout,
            isolate=view.isolate,
            cpus=view.cpus,
            memory=view.memory,
            templates=view.templates,
            files=view.files,
            outputs=view.outputs,
            cache=view.cache,
            sources=view.sources,
            secrets=view.secrets,
        )


_QUOTED_COMMAND = ((COMMAND,),)


def checked_task(
    *,
    name: str,
    uses: str,
    params: dict[str, Any],
    matrix: dict[str, Any],
    needs: tuple[str, ...],
    retries: int,
    timeout: float | None,
    isolate: bool,
    cpus: int,
    memory: int | None,
    templates: tuple[tuple[Any, ...], ...],
    files: tuple[str, ...],
    outputs: tuple[str, ...],
    cache: bool | None,
    sources: tuple[tuple[str, dict[str, str]], ...],
    secrets: tuple[str, ...],
) -> TaskSpec:
    """A TaskSpec of values already checked, a tuple for each field that converts to
    one. The recipe builder makes one per ``[[task]]`` table (100,000 in a big recipe):
    this costs under half of ``__init__``, which converts and (unless disabled)
    validates again."""
    spec = object.__new__(TaskSpec)
    values = (
        name, uses, params, matrix, needs, retries, timeout, isolate, cpus, memory,
        templates, files, outputs, cache, sources, secrets,
    )  # fmt: skip
    for put, value in zip(_PUT, values, strict=True):
        put(spec, value)
    spec.__attrs_post_init__()
    return spec


def _setters(make: Any) -> tuple[Any, ...]:
    """The slot setters of TaskSpec's fields in the order ``make`` takes them (which must
    be every field ``__init__`` takes, in order)."""
    fields = [f.name for f in attrs.fields(TaskSpec) if f.init]
    taken = list(make.__code__.co_varnames[: make.__code__.co_kwonlyargcount])
    if taken != fields:
        raise TypeError(f"{make.__name__} takes {taken}, TaskSpec has {fields}")
    return tuple(getattr(TaskSpec, f).__set__ for f in fields)


_PUT = _setters(checked_task)


@attrs.frozen(kw_only=True)
class Recipe:
    """A validated recipe with every reference resolved."""

    name: str = attrs.field(validator=av_name)
    description: str = ""
    path: pathlib.Path | None = None
    base_dir: pathlib.Path = attrs.field(factory=pathlib.Path.cwd)
    plugins: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    vars: dict[str, Any] = attrs.field(factory=dict)
    run: RunSettings = attrs.field(factory=RunSettings)
    output: OutputSettings = attrs.field(factory=OutputSettings)
    executors: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    notify: NotifySettings | None = None
    schedule: ScheduleSpec | None = None
    tasks: tuple[TaskSpec, ...] = attrs.field(default=(), converter=_tuple)
    #: the ``--set`` overrides applied (already part of the values above)
    overrides: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    #: every value read through ``${secret.NAME}``, longest first: :meth:`to_table` and
    #: everything that shows the recipe masks them as ``***``
    secrets: tuple[str, ...] = attrs.field(default=(), converter=_tuple, repr=False)

    @property
    def workdir(self) -> pathlib.Path:
        """The instances' working directory: ``run.workdir`` under the recipe's directory."""
        return pathlib.Path(os.path.normpath(self.base_dir / os.path.expanduser(self.run.workdir)))

    def uses_cache(self, spec: TaskSpec) -> bool:
        """Whether ``spec``'s instances use the results cache: its own ``cache``, else ``run.cache``."""
        return self.run.cache if spec.cache is None else spec.cache

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_table(self) -> dict[str, Any]:
        """The resolved recipe as TOML tables (no None anywhere: ``tomli_w`` writes it),
        secrets masked as ``***``."""
        head: dict[str, Any] = {"name": self.name}
        if self.description:
            head["description"] = escape(self.description)
        if self.plugins:
            head["plugins"] = list(self.plugins)
        table: dict[str, Any] = {"recipe": head}
        if self.vars:
            table["vars"] = escape_all(self.vars)
        table["run"] = self.run.to_table()
        table["output"] = self.output.to_table()
        if self.notify is not None:
            table["notify"] = self.notify.to_table()
        if self.executors:
            table["executor"] = escape_all(self.executors)
        if self.schedule is not None:
            table["schedule"] = self.schedule.to_table()
        table["task"] = [t.to_table() for t in self.tasks]
        return mask(table, self.secrets) if self.secrets else table


def _masked_repr(cls: type) -> None:
    """``repr`` of ``cls`` (an attrs class with ``secrets``) shows them as ``***``."""
    plain = cls.__repr__

    def __repr__(self: Any) -> str:
        text = plain(self)
        return mask_repr(text, self.secrets) if self.secrets else text

    cls.__repr__ = __repr__  # type: ignore[method-assign]


_masked_repr(TaskSpec)
_masked_repr(Recipe)
