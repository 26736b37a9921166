"""toolkit: batch compute from TOML recipes, with plugins.

The names below are imported lazily so that ``import toolkit`` (and the CLI's start)
stays cheap; a worker process imports this package too (it runs
``toolkit.execution.worker``, and the plugin files that define its task functions use
``toolkit.hookimpl``), and needs no pluggy there.
"""

from __future__ import annotations

import sys

__version__ = "0.1.0"

__all__ = [
    "TaskContext",
    "ToolkitError",
    "__version__",
    "hookimpl",
    "open_run",
    "plan",
    "run",
    "validate",
]

_LAZY = {
    "ToolkitError": "toolkit.errors",
    "TaskContext": "toolkit.context",
    "run": "toolkit.api",
    "open_run": "toolkit.api",
    "plan": "toolkit.api",
    "validate": "toolkit.api",
}

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from toolkit.api import open_run, plan, run, validate
    from toolkit.context import TaskContext
    from toolkit.errors import ToolkitError


class _HookimplMarker:
    """``toolkit.hookimpl``, the decorator of a plugin's hook implementations: pluggy's
    ``HookimplMarker("toolkit")`` (``toolkit.hookspecs.hookimpl``) once pluggy is
    imported, as it is in the main process before any plugin is.

    Before that, in a worker process (which imports plugin files for their task
    functions and never calls a hook), it only notes the options on the function
    (``toolkit_impl_pending``); the toolkit's plugin manager hands them to pluggy's
    marker if it ever registers that function. A spawned worker thus imports no pluggy
    (and its ``inspect``): ~5-8 ms of every process of the ``process`` executor."""

    def __call__(self, function: Callable[..., Any] | None = None, **options: Any) -> Any:
        if "pluggy" in sys.modules:
            from toolkit.hookspecs import hookimpl as pluggy_marker

            return pluggy_marker(function, **options)

        def mark(func: Any) -> Any:
            func.toolkit_impl_pending = options
            return func

        return mark if function is None else mark(function)

    def __repr__(self) -> str:
        return "toolkit.hookimpl"


hookimpl = _HookimplMarker()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
