"""toolkit: batch compute from TOML recipes, with plugins.

The names below are imported lazily so that ``import toolkit`` (and the CLI's start)
stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from toolkit.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "TaskContext",
    "ToolkitError",
    "__version__",
    "hookimpl",
    "plan",
    "run",
    "validate",
]

_LAZY = {
    "ToolkitError": "toolkit.errors",
    "TaskContext": "toolkit.execution.worker",
    "run": "toolkit.api",
    "plan": "toolkit.api",
    "validate": "toolkit.api",
}

if TYPE_CHECKING:
    from toolkit.api import plan, run, validate
    from toolkit.errors import ToolkitError
    from toolkit.execution.worker import TaskContext


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
