"""Building the plugin manager for one command: discovery, blocking, provenance.

There is no global plugin manager. :func:`make_plugin_manager` builds one per
command from a :class:`LoadSpec`, a small frozen description that can also be sent
to a worker, which then imports the same plugin modules by name.

Importing this module is cheap: workers import it for :func:`import_file_plugin`, and
every start of the command line for the rest. Installed plugins are found without
importing ``importlib.metadata`` (see :func:`entry_points`), the classes here are plain
(no attrs), and pluggy, the hook specifications and the registries are imported when
a plugin manager is built.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections import namedtuple
from types import ModuleType

from toolkit.errors import PluginLoadError, ToolkitError

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
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

    __slots__ = ("error", "hooks", "module", "name", "source", "version")

    def __init__(
        self,
        name: str,
        source: str,  # builtin | entry point | -p | TOOLKIT_PLUGINS | recipe
        version: str | None = None,
        module: str | None = None,
        hooks: list[str] | None = None,
        error: str | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.version = version
        self.module = module
        self.hooks: list[str] = [] if hooks is None else hooks
        self.error = error

    def __repr__(self) -> str:
        return f"PluginInfo(name={self.name!r}, source={self.source!r}, error={self.error!r})"


# -- installed plugins: entry points -------------------------------------------
#
# ``importlib.metadata`` costs ~15 ms to import (email, zipfile, ...), on every start of
# the command line. Finding the entry points of one group only takes reading the
# ``entry_points.txt`` of the distributions on ``sys.path``, in importlib.metadata's
# order and with its rule that the first distribution of a name wins. Anything this
# does not handle (a zip or egg on ``sys.path``, another finder of distributions, an
# ``entry_points.txt`` it cannot read) falls back to ``importlib.metadata`` itself.

#: ``module``, ``module:attr.attr``, with optional ``[extras]`` (importlib.metadata's)
_ENTRY_POINT_VALUE = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"
_INFO_SUFFIXES = (".dist-info", ".egg-info")


class _Unusual(Exception):
    """Something the scan leaves to ``importlib.metadata``."""


class EntryPoint:
    """An entry point: ``name = value`` of a group, and the version of its distribution."""

    __slots__ = ("_folder", "_version", "group", "name", "value")

    def __init__(
        self, name: str, value: str, group: str, folder: str | None = None, version: str | None = None
    ) -> None:
        self.name = name
        self.value = value
        self.group = group
        self._folder = folder
        self._version = version

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"

    @property
    def version(self) -> str | None:
        """The ``Version`` of the distribution's metadata (read when asked)."""
        if self._folder is not None:
            self._version = _metadata_version(self._folder)
            self._folder = None
        return self._version

    def load(self) -> Any:
        """Import the module and return it, or the attribute the value names."""
        import re

        match = re.match(_ENTRY_POINT_VALUE, self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r}: {self.value!r} is not 'module' or 'module:attr'")
        target = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            target = getattr(target, attr)
        return target


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unusual from exc


def _metadata_version(folder: str) -> str | None:
    """The ``Version:`` header of a distribution's METADATA (PKG-INFO for egg-info, or
    the file itself for an egg-info file), as importlib.metadata reads it."""
    for path in (os.path.join(folder, "METADATA"), os.path.join(folder, "PKG-INFO"), folder):
        try:
            with open(path, encoding="utf-8") as f:
                empty = True
                for line in f:
                    empty = False
                    if not line.rstrip("\r\n"):
                        break  # the end of the headers
                    if line[:8].lower() == "version:":
                        return line[8:].lstrip(" \t").rstrip("\r\n")
                if not empty:
                    return None
        except (OSError, UnicodeDecodeError):
            continue
    return None


def _normalized(name: str) -> str:
    """``re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")``, importlib.metadata's
    normalized distribution name, without compiling a pattern."""
    name = name.lower().replace("-", "_").replace(".", "_")
    while "__" in name:
        name = name.replace("__", "_")
    return name


def distribution_folders() -> Iterator[str]:
    """The metadata folders of the distributions on ``sys.path``, in importlib.metadata's
    order (``sys.path`` order, then each folder's listing), the first of each name only.

    Raises ``_Unusual`` for what only importlib.metadata knows how to read."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None) is not None:
            raise _Unusual(f"{finder!r} finds distributions")
    seen: set[str] = set()
    for entry in sys.path:
        if not isinstance(entry, str):
            raise _Unusual(f"{entry!r} on sys.path")
        try:
            children = os.listdir(entry or ".")
        except OSError:
            if os.path.exists(entry or "."):
                raise _Unusual(f"{entry!r} is not a folder") from None  # a zip file, say
            continue
        if os.path.basename(entry).lower().endswith(".egg"):
            raise _Unusual(f"{entry!r} is an egg")
        for child in children:
            low = child.lower()
            if not low.endswith(_INFO_SUFFIXES):
                continue
            if not child.endswith(_INFO_SUFFIXES):
                raise _Unusual(f"{child!r}: its name is read from its metadata")
            key = _normalized(low.rpartition(".")[0].partition("-")[0])
            if key not in seen:
                seen.add(key)
                yield os.path.join(entry, child)


def _parse_entry_points(text: str, group: str, folder: str) -> list[EntryPoint]:
    """The entry points of ``group`` in an ``entry_points.txt`` (importlib.metadata's
    reading: stripped lines, ``#`` comments, ``[group]`` sections, ``name = value``)."""
    found = []
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group:
            name, sep, value = line.partition("=")
            if not sep:
                raise _Unusual(f"{folder}: entry point line {line!r}")
            found.append(EntryPoint(name.strip(), value.strip(), group, folder))
    return found


def entry_points(group: str) -> list[EntryPoint]:
    """The installed entry points of ``group``, as ``importlib.metadata.entry_points(group=
    group)`` lists them, without importing it unless the environment needs it."""
    try:
        found = []
        for folder in distribution_folders():
            text = _read_text(os.path.join(folder, "entry_points.txt"))
            if text is not None and group in text:
                found += _parse_entry_points(text, group, folder)
        return found
    except _Unusual:
        from importlib import metadata

        return [
            EntryPoint(ep.name, ep.value, ep.group, version=ep.dist.version if ep.dist else None)
            for ep in metadata.entry_points(group=group)
        ]


# -- plugin files ----------------------------------------------------------------


def is_file_plugin(spec: str) -> bool:
    return spec.endswith(".py")


def _stem(path: str) -> str:
    """``pathlib.PurePath(path).stem`` of a path whose last part is a file name."""
    name = os.path.basename(path)
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def plugin_name(spec: str) -> str:
    """The name a plugin is registered (and blocked) under."""
    return _stem(spec) if is_file_plugin(spec) else spec


#: plugin files imported in this process: module name -> resolved path
_FILE_PLUGINS: dict[str, str] = {}


def import_file_plugin(path: str, *, replace: bool = False) -> object:
    """Import a plugin file as a top-level module named after its stem.

    Its folder is put on ``sys.path`` so that the file can import its neighbours, and
    so that workers (under any start method) import it under the same name. A module
    of that name imported from elsewhere is a conflict, unless it is a plugin file that
    an earlier plugin manager of this process loaded and ``replace`` is true (``toolkit
    validate`` of two recipes that each have a ``tasks.py``).
    """
    file = os.path.realpath(path)
    name = _stem(file)
    if name in sys.stdlib_module_names:  # its folder goes first on sys.path: it would shadow
        raise PluginLoadError(
            name, f"{os.path.basename(file)} has the name of a standard library module; rename the file"
        )
    existing = sys.modules.get(name)
    if existing is not None:
        if os.path.realpath(getattr(existing, "__file__", "") or "") == file:
            return existing
        if not (replace and _FILE_PLUGINS.get(name) is not None):
            raise PluginLoadError(
                name, f"a module named {name!r} is already imported from {existing.__file__}"
            )
    if not os.path.isfile(file):
        raise PluginLoadError(name, f"no such file: {file}")
    folder = os.path.dirname(file)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if existing is not None:
            sys.modules[name] = existing
        else:
            del sys.modules[name]
        raise
    _FILE_PLUGINS[name] = file
    return module


def import_plugin(spec: str, *, replace: bool = False) -> object:
    if is_file_plugin(spec):
        return import_file_plugin(spec, replace=replace)
    return importlib.import_module(spec)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


_MISSING = object()
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
                    if not (value is _MISSING or callable(value) or isinstance(value, classmethod)):
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
        info.module = getattr(plugin, "__name__", None)
        self.infos.append(info)

    def load_spec(self, spec: str, source: str) -> None:
        name = plugin_name(spec)
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
            if ep.name in seen or self.pm.is_blocked(ep.name):
                continue
            seen.add(ep.name)
            info = PluginInfo(name=ep.name, source="entry point", version=ep.version)
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

            regs = Registries()
            for hook, registry in (
                (self.pm.hook.toolkit_register_tasks, regs.tasks),
                (self.pm.hook.toolkit_register_executors, regs.executors),
                (self.pm.hook.toolkit_register_sinks, regs.sinks),
            ):
                for impl in hook.get_hookimpls():
                    before = dict(registry._entries)
                    registry.current_plugin = impl.plugin_name
                    try:
                        impl.function(registry=registry)
                    except Exception as exc:
                        registry._entries = before
                        info = self.info(impl.plugin_name)
                        if info is not None:
                            info.error = _describe(exc)
                        self.warn(f"plugin {impl.plugin_name!r} failed in {hook.name}: {_describe(exc)}")
                registry.current_plugin = None
            self._registries = regs
        return self._registries

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
