"""Plugin files: a ``.py`` file named in ``recipe.plugins``, ``-p`` or
``TOOLKIT_PLUGINS``, imported as a top-level module named after its stem.

Workers import their tasks' plugin files with :func:`import_file_plugin` before they
unpickle the task table: this module imports next to nothing (a spawned worker is a
fresh interpreter).
"""

from __future__ import annotations

import os
import sys

from toolkit.errors import PluginLoadError


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
