"""The recipe language: reading, resolving and validating TOML recipes.

``read_recipe`` turns a file (or a table shaped like one) into a frozen
:class:`Recipe`, checking everything that needs no plugin; ``check_recipe`` checks
the rest against the registered tasks, executors and sinks.
"""

from __future__ import annotations

from toolkit.recipe.check import check_recipe
from toolkit.recipe.loader import read_recipe
from toolkit.recipe.model import OutputSettings, Recipe, RunSettings, TaskSpec

__all__ = ["OutputSettings", "Recipe", "RunSettings", "TaskSpec", "check_recipe", "read_recipe"]
