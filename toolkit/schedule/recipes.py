"""Reading the recipes a scheduler fires, and noticing when their files change."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from toolkit.errors import RecipeError, RecipeErrors, UsageError
from toolkit.schedule.spec import ScheduleSpec


@attrs.frozen(kw_only=True)
class Scheduled:
    """A recipe as the scheduler sees it: its name, file and ``[schedule]``."""

    name: str
    path: Path  # absolute
    given: str  # as the user wrote it, for messages
    schedule: ScheduleSpec
    #: where its runs go (``<output.dir>/<name>``, absolute): the daemon reads how each ended
    runs: Path | None = None
    #: ``--set`` overrides of ``toolkit schedule``: applied when the recipe is read (they
    #: may change [schedule]) and passed on to each of its runs
    overrides: tuple[str, ...] = ()


def file_key(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is edited or replaced; None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def read_scheduled(given: str, overrides: tuple[str, ...] = ()) -> Scheduled:
    """Read and validate a recipe that must have a ``[schedule]`` table.

    Raises :class:`toolkit.errors.ToolkitError` (exit code 2) with a message naming the
    file and the key. Only the recipe is read: its plugins load in each ``toolkit run``.
    """
    from toolkit.recipe import read_recipe

    recipe = read_recipe(given, overrides=overrides)
    if recipe.schedule is None:
        raise RecipeError(given, "schedule", "the recipe has no [schedule] table (cron = ... or every = ...)")
    path = recipe.path if recipe.path is not None else Path(given).resolve()
    runs = (Path(recipe.output.dir) / recipe.name).absolute()
    return Scheduled(
        name=recipe.name,
        path=path,
        given=given,
        schedule=recipe.schedule,
        runs=runs,
        overrides=tuple(overrides),
    )


def read_all(given: list[str], overrides: tuple[str, ...] = ()) -> list[Scheduled]:
    """Read every recipe; report all problems together; refuse two recipes of one name."""
    recipes, errors = [], []
    for g in given:
        try:
            recipes.append(read_scheduled(g, overrides))
        except RecipeErrors as exc:
            errors.extend(exc.errors)
        except RecipeError as exc:
            errors.append(exc)
    if errors:
        raise RecipeErrors(errors)
    seen: dict[str, Scheduled] = {}
    for r in recipes:
        if r.name in seen:
            other = seen[r.name]
            if other.path == r.path:
                raise UsageError(f"{r.given} is given twice")
            raise UsageError(
                f"{other.given} and {r.given} are both named {r.name!r}: the scheduler keeps its state"
                " and the run store keeps runs by recipe name"
            )
        seen[r.name] = r
    return recipes
