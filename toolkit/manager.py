"""Building the plugin manager for one command: discovery, blocking, provenance.

There is no global plugin manager. :func:`make_plugin_manager` builds one per
command from a :class:`LoadSpec`, a small frozen description that can also be sent
to a worker, which then imports the same plugin modules by name.

Importing this module is cheap, since every start of the command line does: installed
plugins are found without importing ``importlib.metadata``
(:mod:`toolkit.entry_points`), the classes here are plain (no attrs), and pluggy, the
hook specifications and the registries are imported when a plugin manager is built.
Plugin files are imported by :mod:`toolkit.plugin_files`, which workers use too.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections import namedtuple
from types import FunctionType, MethodType, ModuleType

from toolkit.entry_points import entry_points
from toolkit.errors import PluginError, PluginLoadError, TaskRegistrationError, ToolkitError, UsageError
from toolkit.plugin_files import import_file_plugin, is_file_plugin, plugin_name

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    import pluggy

    from toolkit.registry import Registries

ENTRY_POINT_GROUP = "toolkit.plugins"
ENV_PLUGINS = "TOOLKIT_PLUGINS"
ENV_NO_AUTOLOAD = "TOOLKIT_DISABLE_PLUGIN_AUTOLOAD"

#: built-in plugin modules, registered first under their short names
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("builtin.tasks", "toolkit.builtin.tasks"),
    ("builtin.executors", "toolkit.builtin.executors"),
    ("builtin.sinks", "toolkit.builtin.sinks"),
    ("builtin.run", "toolkit.builtin.commands.run"),
    ("builtin.plan", "toolkit.builtin.commands.plan"),
    ("builtin.validate", "toolkit.builtin.commands.validate"),
    ("builtin.tasks-command", "toolkit.builtin.commands.tasks"),
    ("builtin.plugins-command", "toolkit.builtin.commands.plugins"),
    ("builtin.init", "toolkit.builtin.commands.init"),
    ("builtin.runs", "toolkit.builtin.commands.runs"),
    ("builtin.schema", "toolkit.builtin.commands.schema"),
    ("builtin.schedule", "toolkit.builtin.commands.schedule"),
    ("builtin.report", "toolkit.builtin.report"),
    ("builtin.notify", "toolkit.builtin.notify"),
    ("builtin.retention", "toolkit.builtin.retention"),
    ("builtin.report-command", "toolkit.builtin.commands.report"),
    ("builtin.ui", "toolkit.builtin.commands.ui"),
    ("builtin.cache", "toolkit.builtin.commands.cache"),
)


def _split_env(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


class LoadSpec(
    namedtuple("LoadSpec", "autoload options env recipe blocked", defaults=(True, (), (), (), ()))
):
    """Which plugins to load, in order. Picklable: workers rebuild from it.

    ``autoload`` (bool) loads the entry points; ``options`` come from ``-p``, ``env``
    from ``TOOLKIT_PLUGINS`` and ``recipe`` from ``recipe.plugins`` (tuples of module
    names or absolute ``.py`` paths); ``blocked`` holds the ``-p no:NAME`` names.
    """

    __slots__ = ()

    @classmethod
    def from_environment(cls, options: Iterable[str] = (), environ: dict[str, str] | None = None) -> LoadSpec:
        """Split ``-p`` values into loads and ``no:`` blocks; read the environment."""
        environ = os.environ if environ is None else environ
        loads, blocked = [], []
        for value in options:
            if value.startswith("no:"):
                blocked.append(value[3:])
            else:
                loads.append(value)
        return cls(
            autoload=environ.get(ENV_NO_AUTOLOAD, "") in ("", "0"),
            options=tuple(loads),
            env=_split_env(environ.get(ENV_PLUGINS)),
            blocked=tuple(blocked),
        )

    def with_recipe(self, plugins: Iterable[str]) -> LoadSpec:
        return self._replace(recipe=tuple(plugins))

    def file_plugins(self) -> tuple[str, ...]:
        """The ``.py`` files among the loads: workers import them before any task."""
        return tuple(p for p in (*self.options, *self.env, *self.recipe) if is_file_plugin(p))


class PluginInfo:
    """What ``toolkit plugins`` shows about one plugin."""

    __slots__ = ("distribution", "error", "file", "hooks", "module", "name", "source", "version")

    def __init__(
        self,
        name: str,
        source: str,  # builtin | entry point | -p | TOOLKIT_PLUGINS | recipe
        version: str | None = None,
        module: str | None = None,
        hooks: list[str] | None = None,
        error: str | None = None,
        distribution: str | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.version = version
        self.module = module
        self.hooks: list[str] = [] if hooks is None else hooks
        self.error = error
        #: the distribution that installed it (entry points), and the file it was read from
        self.distribution = distribution
        self.file: str | None = None

    def __repr__(self) -> str:
        return f"PluginInfo(name={self.name!r}, source={self.source!r}, error={self.error!r})"


def import_plugin(spec: str, *, replace: bool = False) -> object:
    if is_file_plugin(spec):
        return import_file_plugin(spec, replace=replace)
    return importlib.import_module(spec)


def _describe(exc: BaseException) -> str:
    from toolkit.records import describe

    return describe(exc)


_MISSING = object()
_WRAPPERS = (staticmethod, classmethod, MethodType)
_manager_class: type[pluggy.PluginManager] | None = None


def new_plugin_manager() -> pluggy.PluginManager:
    """A pluggy plugin manager for the ``toolkit`` hooks.

    When it registers a module, pluggy looks up every name of the module (statically,
    through ``inspect.getattr_static``) for a hook implementation: a non-callable value
    (a docstring, ``__spec__``, a constant) cannot be one, and is skipped before that
    lookup. That is half the cost of registering the built-in plugins at every start.
    A function that ``toolkit.hookimpl`` marked before pluggy was imported is marked
    by pluggy's marker on the way.
    """
    global _manager_class
    if _manager_class is None:
        from inspect import getattr_static

        import pluggy

        from toolkit.hookspecs import hookimpl

        class PluginManager(pluggy.PluginManager):
            def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
                if type(plugin) is ModuleType:
                    value = plugin.__dict__.get(name, _MISSING)
                    # what pluggy takes from a module is a function, a bound method or
                    # a static or class method wrapper; a plain function only if a marker
                    # set toolkit_impl (or toolkit_impl_pending) on it. Skipping the rest
                    # here spares pluggy's static lookup, ~40 % of registering a module.
                    if type(value) is FunctionType:
                        marks = value.__dict__
                        if "toolkit_impl" not in marks and "toolkit_impl_pending" not in marks:
                            return None
                    elif not (value is _MISSING or isinstance(value, _WRAPPERS)):
                        return None
                else:
                    value = getattr_static(plugin, name, None)
                # marked by toolkit.hookimpl before pluggy was imported: mark it now
                func = getattr(value, "__func__", value)  # a staticmethod's, a classmethod's
                pending = getattr(func, "toolkit_impl_pending", None)
                if pending is not None and not hasattr(func, "toolkit_impl"):
                    hookimpl(func, **pending)
                return super().parse_hookimpl_opts(plugin, name)

        _manager_class = PluginManager
    return _manager_class("toolkit")


class Plugins:
    """A plugin manager for one command, with the provenance of every plugin."""

    def __init__(self, load: LoadSpec, *, warn: bool = True) -> None:
        from toolkit import hookspecs

        self.load = load
        self.pm = new_plugin_manager()
        self.pm.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        #: every plugin name seen while loading (blocked ones too), and entry points'
        #: names by distribution: for the -p no:NAME check
        self._named: dict[str, None] = {}
        self._distributions: dict[str, str] = {}
        self._blocked_checked = False
        #: the subcommands of the command line, by the plugin that added each
        self.commands: dict[str, str] = {}
        self._warn = warn
        self._registries: Registries | None = None
        for name in load.blocked:
            self.pm.set_blocked(name)

    # -- loading -----------------------------------------------------------
    def warn(self, message: str) -> None:
        if self._warn:
            print(f"toolkit: warning: {message}", file=sys.stderr)

    def _fail(self, info: PluginInfo, exc: BaseException) -> None:
        info.error = exc.reason if isinstance(exc, PluginLoadError) else _describe(exc)
        self.infos.append(info)
        self.warn(f"plugin {info.name!r} ({info.source}) skipped: {info.error}")
        if os.environ.get("TOOLKIT_DEBUG"):
            import traceback

            traceback.print_exception(exc)

    def register(self, plugin: object, info: PluginInfo) -> None:
        """Register one plugin object; a bad one is recorded as failed, not raised."""
        if self.pm.is_blocked(info.name):
            return
        if self.pm.is_registered(plugin):
            return  # the same plugin found twice (a symlinked site-packages): keep the first
        if self.pm.has_plugin(info.name):
            self._fail(info, PluginLoadError(info.name, "another plugin of that name is already loaded"))
            return
        from pluggy import PluginValidationError

        try:
            self.pm.register(plugin, info.name)
            unknown = [
                hook.name
                for hook in self.pm.get_hookcallers(plugin) or []
                if hook.spec is None and hook.name.startswith("toolkit_")
            ]
            if unknown:
                self.pm.unregister(plugin)
                raise PluginLoadError(info.name, f"unknown hook {unknown[0]}")
        except (PluginValidationError, PluginLoadError, ValueError) as exc:
            self._fail(info, exc)
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        info.module = getattr(plugin, "__name__", None) or type(plugin).__module__
        info.file = getattr(plugin, "__file__", None) or getattr(
            sys.modules.get(info.module), "__file__", None
        )
        self.infos.append(info)

    def load_spec(self, spec: str, source: str) -> None:
        name = plugin_name(spec)
        self._named[name] = None
        info = PluginInfo(name=name, source=source)
        if self.pm.is_blocked(name):
            return
        try:
            module = import_plugin(spec, replace=not self.pm.has_plugin(name))
        except PluginLoadError as exc:
            self._fail(info, exc)
            return
        except Exception as exc:  # an import error of any kind: report, skip, go on
            self._fail(info, exc)
            return
        info.version = getattr(module, "__version__", None)
        self.register(module, info)

    def load_builtins(self) -> None:
        for name, module in BUILTIN_PLUGINS:
            try:
                plugin = importlib.import_module(module)
            except Exception as exc:  # a bug, but keep the command alive
                self._fail(PluginInfo(name=name, source="builtin"), exc)
                continue
            from toolkit import __version__

            self.register(plugin, PluginInfo(name=name, source="builtin", version=__version__))

    def load_entry_points(self) -> None:
        seen: set[str] = set()
        for ep in sorted(entry_points(ENTRY_POINT_GROUP), key=lambda e: e.name):
            self._named[ep.name] = None
            if ep.distribution:
                self._distributions.setdefault(ep.distribution, ep.name)
            if ep.name in seen or self.pm.is_blocked(ep.name):
                continue
            seen.add(ep.name)
            info = PluginInfo(
                name=ep.name, source="entry point", version=ep.version, distribution=ep.distribution
            )
            try:
                plugin = ep.load()
            except Exception as exc:
                self._fail(info, exc)
                continue
            self.register(plugin, info)

    def load_all(self) -> Plugins:
        self.load_builtins()
        if self.load.autoload:
            self.load_entry_points()
        for spec in self.load.options:
            self.load_spec(spec, "-p")
        for spec in self.load.env:
            self.load_spec(spec, ENV_PLUGINS)
        self.load_recipe_plugins(self.load.recipe)
        return self

    def _check_blocked(self) -> None:
        """Warn about ``-p no:NAME`` that blocks nothing (a typo, a distribution's name)."""
        named = {name: None for name, _ in BUILTIN_PLUGINS} | self._named
        unknown = [name for name in self.load.blocked if name not in named]
        if unknown and not self.load.autoload:  # the entry points were not looked at
            for ep in entry_points(ENTRY_POINT_GROUP):
                named[ep.name] = None
                if ep.distribution:
                    self._distributions.setdefault(ep.distribution, ep.name)
        for name in unknown:
            if name in named:
                continue
            dist = self._distributions.get(name) or self._distributions.get(name.replace("-", "_"))
            if dist is not None:
                hint = f"; {name!r} is a distribution: its plugin is named {dist!r} (-p no:{dist})"
            else:
                hint = "; `toolkit plugins` lists their names"
            self.warn(f"-p no:{name}: no plugin is named {name!r}{hint}")

    def load_options(self, specs: Iterable[str]) -> None:
        """Load ``-p`` plugins onto a manager already loaded (workers get their files too)."""
        specs = tuple(specs)
        for spec in specs:
            self.load_spec(spec, "-p")
        self.load = self.load._replace(options=(*self.load.options, *specs))
        self._registries = None

    def load_recipe_plugins(self, specs: Iterable[str]) -> None:
        specs = tuple(specs)
        for spec in specs:
            self.load_spec(spec, "recipe")
        if specs and self.load.recipe != specs:
            self.load = self.load.with_recipe(specs)
        self._registries = None

    # -- registries --------------------------------------------------------
    @property
    def registries(self) -> Registries:
        """Tasks, executors and sinks, collected once; a hook that raises is skipped."""
        if self._registries is None:
            from toolkit.registry import Registries

            if not self._blocked_checked:  # once the recipe's plugins are loaded too
                self._blocked_checked = True
                self._check_blocked()
            regs = Registries()
            self._register("toolkit_register_tasks", regs.tasks)
            self._register("toolkit_register_executors", regs.executors)
            self._register("toolkit_register_sinks", regs.sinks)
            self._registries = regs
        return self._registries

    def _register(self, hook_name: str, registry: Any) -> None:
        """Call a registration hook through pluggy; a plugin whose implementation raises,
        or registers a name taken without ``replace=True``, is named, and the hook is
        called again, from an empty registry, without it."""
        from toolkit.hookcalls import call_leaving_out, impl_codes

        registry.order = {info.name: i for i, info in enumerate(self.infos)}

        def call(caller: Any) -> dict[str, BaseException]:
            registry.clear()
            # registry.add finds the plugin that calls it among these (see Registry.add)
            registry.owners = impl_codes(self.pm, hook_name)
            try:
                caller(registry=registry)
            finally:
                registry.owners = {}
            return {
                c.loser: TaskRegistrationError(c.message) for c in registry.clashes if c.loser is not None
            }

        call_leaving_out(self.pm, hook_name, call, lambda name, exc: self.hook_failed(name, hook_name, exc))

    def hook_failed(self, plugin: str, hook_name: str, exc: BaseException) -> None:
        """Note that ``plugin`` failed in ``hook_name`` (``toolkit plugins`` shows it) and warn."""
        error = PluginError(plugin, hook_name, exc)
        info = self.info(plugin)
        if info is not None:
            info.error = error.failure
        self.warn(error.message)
        if os.environ.get("TOOLKIT_DEBUG"):
            import traceback

            traceback.print_exception(exc)

    def choose_executor(self, recipe: Any, plan: Any) -> tuple[str, str] | None:
        """``(executor, plugin)``: the first answer of ``toolkit_choose_executor``, asked
        plugin by plugin in pluggy's order so that the plan can say who chose; None when
        the built-in choice (``trylast``) is reached."""
        from toolkit.hookcalls import call_plugin, implementers

        for name in implementers(self.pm, "toolkit_choose_executor"):
            if name == "builtin.executors":
                break
            chosen = call_plugin(self.pm, "toolkit_choose_executor", name, recipe=recipe, plan=plan)
            if not chosen:
                continue
            known = self.registries.executors
            if chosen not in known:
                problem = UsageError(
                    f"it chose executor {chosen!r}, which no plugin registered"
                    f" (known: {', '.join(known.names())})"
                )
                raise PluginError(name, "toolkit_choose_executor", problem)
            return chosen, name
        return None

    def call(self, hook_name: str, /, **kwargs: Any) -> Any:
        """Call a hook through pluggy; a failure is a ``PluginError`` naming the plugin."""
        from toolkit.hookcalls import call_hook

        return call_hook(self.pm, hook_name, **kwargs)

    def info(self, name: str) -> PluginInfo | None:
        for info in self.infos:
            if info.name == name:
                return info
        return None

    def failed(self) -> list[PluginInfo]:
        return [i for i in self.infos if i.error]

    @property
    def hook(self) -> pluggy.HookRelay:
        return self.pm.hook

    def has_impls(self, hook_name: str) -> bool:
        return bool(getattr(self.pm.hook, hook_name).get_hookimpls())

    def versions(self) -> dict[str, str]:
        return {i.name: i.version or "" for i in self.infos if not i.error and i.source != "builtin"}


def make_plugin_manager(load: LoadSpec | None = None, *, warn: bool = True) -> Plugins:
    """Build a loaded plugin manager. Never called at import time."""
    return Plugins(load or LoadSpec(), warn=warn).load_all()


def require_loaded(plugins: Plugins, name: str) -> None:  # pragma: no cover - helper for messages
    info = plugins.info(name)
    if info is not None and info.error:
        raise ToolkitError(f"plugin {name!r} failed to load: {info.error}")


#: the positional arguments of each hook (``toolkit.hookspecs``, which imports pluggy; a
#: test keeps the two alike).
HOOK_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "toolkit_register_tasks": ("registry",),
    "toolkit_register_executors": ("registry",),
    "toolkit_register_sinks": ("registry",),
    "toolkit_configure": ("recipe",),
    "toolkit_choose_executor": ("recipe", "plan"),
    "toolkit_run_start": ("run",),
    "toolkit_task_start": ("instance",),
    "toolkit_task_finish": ("instance", "record"),
    "toolkit_run_finish": ("run", "summary"),
    "toolkit_add_commands": ("subparsers",),
}


def adds_no_commands(load: LoadSpec) -> bool:
    """Import the plugins ``load`` names besides the built-in ones, as
    :meth:`Plugins.load_all` would, and say whether none adds subcommands and pluggy
    would take each without a warning, from their hook marks alone (no pluggy, no
    ``inspect``): then ``toolkit --help`` lists the built-in commands only (``toolkit.cli``).

    False for anything it does not judge: a plugin that fails to import, two of one
    name, a plugin that is not a module, a hook it does not know, a wrapper, an argument
    the hook does not have. The plugin manager then loads them again, warning as it does
    (modules already imported are not imported twice)."""
    specs: list[tuple[str, str]] = []  # (name, spec), in Plugins.load_all's order
    if load.autoload:
        for ep in sorted(entry_points(ENTRY_POINT_GROUP), key=lambda e: e.name):
            specs.append((ep.name, ep))  # type: ignore[arg-type]
    specs += [(plugin_name(s), s) for s in (*load.options, *load.env, *load.recipe)]
    seen: set[str] = set()
    for name, spec in specs:
        if name in load.blocked:
            continue
        if name in seen:
            return False
        seen.add(name)
        try:
            plugin = import_plugin(spec, replace=True) if isinstance(spec, str) else spec.load()
        except Exception:
            return False
        if type(plugin) is not ModuleType or not _adds_no_commands(plugin):
            return False
    return True


def _adds_no_commands(module: ModuleType) -> bool:
    names = vars(module)
    if "__getattr__" in names or "__dir__" in names:  # pluggy would find names vars() has not
        return False
    for attr, value in list(names.items()):
        method = isinstance(value, _WRAPPERS)
        if method:
            value = value.__func__
        elif type(value) is not FunctionType:
            continue
        marks = getattr(value, "__dict__", None) or {}
        options = marks.get("toolkit_impl", marks.get("toolkit_impl_pending"))
        if options is None:
            continue  # not a hook implementation
        if method or not isinstance(options, dict) or not options.keys() <= _IMPL_OPTIONS:
            return False
        hook = options.get("specname") or attr
        if (
            hook not in HOOK_ARGUMENTS
            or hook == "toolkit_add_commands"
            or options.get("wrapper")
            or options.get("hookwrapper")
            or "__wrapped__" in marks  # pluggy reads the signature of what it wraps
            or "__signature__" in marks
            or "." in value.__qualname__  # pluggy leaves out a first "self"
        ):
            return False
        code = value.__code__
        arguments = code.co_varnames[: code.co_argcount]
        required = arguments[: len(arguments) - len(value.__defaults__ or ())]
        if not set(required) <= set(HOOK_ARGUMENTS[hook]):
            return False
    return True


_IMPL_OPTIONS = {"wrapper", "hookwrapper", "optionalhook", "tryfirst", "trylast", "specname"}
