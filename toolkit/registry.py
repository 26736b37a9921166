"""Registries of what a recipe can name: tasks, executors and result sinks.

Plugins fill them through the ``toolkit_register_*`` hooks. A registry remembers
which plugin added each entry, so that ``toolkit tasks`` and error messages can say
where a name comes from.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from toolkit.errors import TaskRegistrationError

if TYPE_CHECKING:
    from types import CodeType

#: parameters a task may declare that the toolkit fills in, not the recipe
RESERVED_PARAMS = frozenset({"ctx", "inputs"})


def _first_doc_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def unsendable_reason(func: Callable[..., Any]) -> str | None:
    """Why ``func`` cannot be sent to a worker by reference, or None if it can.

    Workers import tasks by module and qualified name (pickle's rule), so a task must
    be a module-level function that its module exposes under its own name.
    """
    if not callable(func):
        return f"{func!r} is not callable"
    name = getattr(func, "__name__", None)
    qualname = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if name == "<lambda>":
        return "a lambda cannot be sent to a worker; define a module-level function"
    if not qualname or not module:
        return f"{func!r} has no importable module and name"
    if "<locals>" in qualname:
        return f"{qualname} is defined inside a function (a closure); define it at module level"
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if target is not func:
        return f"{module}.{qualname} is not importable under that name"
    return None


class _Info:
    """A registered thing's record (plain slotted classes: attrs costs ~10 ms to import,
    and these are built at every start that loads plugins). ``plugin`` registered it;
    ``replace`` says it may replace an entry of the same name from a plugin loaded
    earlier, and ``replaces`` names that plugin when it did."""

    __slots__ = ("name", "plugin", "replace", "replaces")

    def __init__(self, name: str, plugin: str | None, replace: bool) -> None:
        self.name = name
        self.plugin = plugin
        self.replace = replace
        self.replaces: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, plugin={self.plugin!r})"


class TaskInfo(_Info):
    """A registered task: a plain function plus what the toolkit knows about it."""

    __slots__ = ("func", "version")

    def __init__(
        self,
        *,
        name: str,
        func: Callable[..., Any],
        plugin: str | None = None,
        version: str | None = None,
        replace: bool = False,
    ) -> None:
        super().__init__(name, plugin, replace)
        self.func = func
        self.version = version

    @property
    def signature(self) -> inspect.Signature:
        return inspect.signature(self.func)

    @property
    def doc(self) -> str:
        return _first_doc_line(self.func)

    @property
    def takes_ctx(self) -> bool:
        return "ctx" in self.signature.parameters

    @property
    def takes_inputs(self) -> bool:
        return "inputs" in self.signature.parameters

    def check_params(self, params: Mapping[str, object]) -> list[str]:
        """Problems binding ``params`` (plus the reserved ones) to the signature."""
        sig = self.signature
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        problems = []
        for key in params:
            if key in RESERVED_PARAMS:
                problems.append(f"param {key!r} is reserved: the toolkit passes it")
            elif key not in sig.parameters and not accepts_any:
                expected = [p for p in sig.parameters if p not in RESERVED_PARAMS]
                problems.append(
                    f"task {self.name!r} does not accept param {key!r}"
                    f" (it takes: {', '.join(expected) or 'no params'})"
                )
        for pname, p in sig.parameters.items():
            if pname in RESERVED_PARAMS or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            if p.default is p.empty and pname not in params:
                problems.append(f"task {self.name!r} needs param {pname!r}")
        return problems


class Clash:
    """A name registered by two plugins, neither replacing the other: ``loser`` (the
    one registered later, as plugins load) is refused."""

    __slots__ = ("kind", "loser", "name", "winner")

    def __init__(self, kind: str, name: str, winner: str | None, loser: str | None) -> None:
        self.kind = kind
        self.name = name
        self.winner = winner
        self.loser = loser

    @property
    def message(self) -> str:
        return (
            f"{self.kind} {self.name!r} is already registered by plugin {self.winner!r};"
            " pass replace=True to replace it"
        )


class _Registry:
    kind = "entry"

    def __init__(self) -> None:
        self._entries: dict[str, Any] = {}
        #: the plugin that adds entries now, when set (else found by :meth:`plugin_adding`)
        self.current_plugin: str | None = None
        #: the code of each implementation of the hook being called, by plugin name: set
        #: by the plugin manager for the call
        self.owners: dict[CodeType, str] = {}
        #: the plugins in the order they were loaded (built-ins first): on a clash, the
        #: earlier one keeps the name
        self.order: dict[str, int] = {}
        #: names two plugins registered without ``replace=True``
        self.clashes: list[Clash] = []

    def clear(self) -> None:
        self._entries.clear()
        self.clashes.clear()

    def plugin_adding(self) -> str | None:
        """The plugin whose hook implementation adds an entry now: the nearest caller
        that is one (an implementation may call helpers that call ``add``)."""
        if self.current_plugin is not None or not self.owners:
            return self.current_plugin
        frame = sys._getframe(2)
        while frame is not None:
            name = self.owners.get(frame.f_code)
            if name is not None:
                return name
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        return self._entries[name]

    def _put(self, name: str, entry: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TaskRegistrationError(f"{self.kind} names must be non-empty strings, got {name!r}")
        old = self._entries.get(name)
        if old is None or old.plugin == entry.plugin:
            self._entries[name] = entry
            return
        # pluggy calls the last loaded plugin first: who keeps the name depends on the
        # order the plugins were loaded in, not on the order of the calls
        late, early = (entry, old) if self._rank(entry.plugin) >= self._rank(old.plugin) else (old, entry)
        if late.replace:
            late.replaces = early.plugin
            self._entries[name] = late
        else:
            self._entries[name] = early
            self.clashes.append(Clash(self.kind, name, early.plugin, late.plugin))

    def _rank(self, plugin: str | None) -> int:
        return self.order.get(plugin or "", len(self.order))


class TaskRegistry(_Registry):
    """Tasks by name. ``registry.add(func, name="pi.estimate")``."""

    kind = "task"

    def add(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        version: str | None = None,
        replace: bool = False,
    ) -> Callable[..., Any]:
        """Register ``func`` as task ``name`` (default: its ``__name__``). ``version``
        enters every instance's content key; ``replace=True`` replaces a task of that
        name from a plugin loaded earlier (a built-in's included), which is otherwise
        an error. Returns ``func``."""
        reason = unsendable_reason(func)
        if reason is not None:
            shown = name or getattr(func, "__qualname__", repr(func))
            raise TaskRegistrationError(f"task {shown!r} refused: {reason}")
        name = name or func.__name__
        self._put(
            name,
            TaskInfo(name=name, func=func, plugin=self.plugin_adding(), version=version, replace=replace),
        )
        return func

    def get(self, name: str) -> TaskInfo:
        return self._entries[name]


class _FactoryInfo(_Info):
    """A factory that plugins register with options of its own in the recipe."""

    __slots__ = ("check_options", "doc", "factory")

    def __init__(
        self,
        *,
        name: str,
        factory: Callable[..., Any],
        check_options: Callable[[Mapping[str, Any]], list[str]] | None = None,
        doc: str = "",
        plugin: str | None = None,
        replace: bool = False,
    ) -> None:
        super().__init__(name, plugin, replace)
        self.factory = factory
        self.check_options = check_options
        self.doc = doc


class ExecutorInfo(_FactoryInfo):
    """An executor: ``factory(context) -> Executor``; ``check_options(table) -> [problems]``."""

    __slots__ = ()


class SinkInfo(_FactoryInfo):
    """A result sink: ``factory(run_dir, recipe) -> Sink``."""

    __slots__ = ()


class _FactoryRegistry(_Registry):
    info: type[_FactoryInfo]

    def _add(
        self,
        name: str,
        factory: Callable[..., Any],
        check_options: Callable[[Mapping[str, Any]], list[str]] | None,
        doc: str,
        replace: bool,
    ) -> None:
        self._put(
            name,
            self.info(
                name=name,
                factory=factory,
                check_options=check_options,
                doc=doc or _first_doc_line(factory),
                plugin=self.plugin_adding(),
                replace=replace,
            ),
        )


class ExecutorRegistry(_FactoryRegistry):
    kind = "executor"
    info = ExecutorInfo

    def add(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        check_options: Callable[[Mapping[str, Any]], list[str]] | None = None,
        doc: str = "",
        replace: bool = False,
    ) -> None:
        """Register executor ``name``: ``factory(context)`` returns an
        :class:`~toolkit.execution.api.Executor`; ``check_options(table)`` returns the
        problems of the recipe's ``[executor.NAME]`` table; ``doc`` (default: the
        factory's first doc line) is shown by ``toolkit plan``; ``replace``: see
        :meth:`TaskRegistry.add`."""
        self._add(name, factory, check_options, doc, replace)

    def get(self, name: str) -> ExecutorInfo:
        return self._entries[name]


class SinkRegistry(_FactoryRegistry):
    kind = "sink"
    info = SinkInfo

    def add(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        check_options: Callable[[Mapping[str, Any]], list[str]] | None = None,
        doc: str = "",
        replace: bool = False,
    ) -> None:
        """Register sink ``name``: ``factory(run_dir, recipe)`` returns a
        :class:`~toolkit.store.sinks.Sink`, which finds its options (the recipe's
        ``[output.NAME]`` table) in ``recipe.output.options_for(NAME)``;
        ``check_options(table)`` returns the problems of that table (validation reports
        them with the recipe's file and line); ``replace``: see :meth:`TaskRegistry.add`."""
        self._add(name, factory, check_options, doc, replace)

    def get(self, name: str) -> SinkInfo:
        return self._entries[name]


class Registries:
    """Everything plugins registered for one run."""

    __slots__ = ("executors", "sinks", "tasks")

    def __init__(self) -> None:
        self.tasks = TaskRegistry()
        self.executors = ExecutorRegistry()
        self.sinks = SinkRegistry()
