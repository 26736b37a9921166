"""The recipe language: reading, resolving and validating TOML recipes.

``read_recipe`` turns a file (or a table shaped like one) into a frozen
:class:`Recipe`, checking everything that needs no plugin; ``check_recipe`` checks
the rest against the registered tasks, executors and sinks.

The names below are imported on first use: a worker process imports a submodule
(``toolkit.recipe.instances``, what it unpickles), and this package with it, but
needs none of the loader (tomllib, the checks, difflib) nor the attrs model.
"""

from __future__ import annotations

__all__ = ["OutputSettings", "Recipe", "RunSettings", "TaskSpec", "check_recipe", "read_recipe"]

_LAZY = {
    "check_recipe": "toolkit.recipe.check",
    "read_recipe": "toolkit.recipe.loader",
    "OutputSettings": "toolkit.recipe.model",
    "Recipe": "toolkit.recipe.model",
    "RunSettings": "toolkit.recipe.model",
    "TaskSpec": "toolkit.recipe.model",
}

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from toolkit.recipe.check import check_recipe
    from toolkit.recipe.loader import read_recipe
    from toolkit.recipe.model import OutputSettings, Recipe, RunSettings, TaskSpec


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'toolkit.recipe' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
