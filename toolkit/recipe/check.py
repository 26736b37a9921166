"""Validation against the plugins: task names, params, executors, sinks, options."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from toolkit.recipe.annotations import check_values, task_checks
from toolkit.recipe.problems import Locator, Problems, did_you_mean, dotted

if TYPE_CHECKING:
    from toolkit.manager import Plugins
    from toolkit.recipe.model import Recipe

_PARAM = re.compile(r"param '([^']+)'")


def check_recipe(recipe: Recipe, plugins: Plugins) -> None:
    """Raise ``RecipeErrors`` naming every reference the loaded plugins cannot satisfy."""
    registries = plugins.registries
    display = str(recipe.path) if recipe.path is not None else None
    p = Problems(_display(recipe), _locator(recipe) if display else None)
    failed = _failed_note(plugins)

    # tasks of one recipe tend to look alike: each shape of params is checked once, and
    # each task name looked up once (a big recipe has 100,000 tasks of a few kinds)
    checked: dict[tuple, list[str]] = {}
    kinds: dict[str, tuple[Any, Any] | None] = {}  # per task name: (info, annotation checks)
    for spec in recipe.tasks:
        path = ("task", spec.name)
        kind = kinds.get(spec.uses, _UNSEEN)
        if kind is _UNSEEN:
            kind = kinds[spec.uses] = _kind(registries.tasks, spec.uses)
        if kind is None:
            known = registries.tasks.names()
            hint = did_you_mean(spec.uses, known) or (
                f" (registered: {', '.join(known)})" if 0 < len(known) <= 12 else " (see `toolkit tasks`)"
            )
            p.add((*path, "uses"), f"unknown task {spec.uses!r}{hint}{failed}")
            continue
        info, checks = kind
        given = (
            tuple(dict.fromkeys([*spec.params, *spec.matrix_keys()])) if spec.matrix else tuple(spec.params)
        )
        shape = (spec.uses, *given)
        problems = checked.get(shape)
        if problems is None:
            problems = checked[shape] = info.check_params(dict.fromkeys(given))
        for problem in problems:
            found = _PARAM.search(problem)
            key = found[1] if found else None
            if key is None or "needs param" in problem:
                where: tuple = (*path, "params")
            elif key in spec.params:
                where = (*path, "params", key)
            else:
                where = (*path, "matrix", key)
            p.add(where, problem)
        if checks:
            check_values(p, spec, checks, path)

    executor = recipe.run.executor
    if executor != "auto" and executor not in registries.executors:
        known = ["auto", *registries.executors.names()]
        p.add(
            ("run", "executor"),
            f"unknown executor {executor!r}{did_you_mean(executor, known)}"
            f" (known: {', '.join(known)}){failed}",
        )
    for i, fmt in enumerate(recipe.output.formats):
        if fmt not in registries.sinks:
            known = registries.sinks.names()
            p.add(
                ("output", "formats", i),
                f"unknown result format {fmt!r}{did_you_mean(fmt, known)}"
                f" (known: {', '.join(known)}){failed}",
            )
    for sname, options in recipe.output.options.items():
        if sname in registries.sinks:
            check = registries.sinks.get(sname).check_options
            for problem in (check(options) or []) if check is not None else []:
                _add_option_problem(p, ("output", sname), options, problem)
    for ename, options in recipe.executors.items():
        if ename in registries.executors:
            check = registries.executors.get(ename).check_options
            for problem in (check(options) or []) if check is not None else []:
                _add_option_problem(p, ("executor", ename), options, problem)
    p.raise_if_any()


def _add_option_problem(p: Problems, table: tuple, options: Mapping[str, Any], problem: str) -> None:
    """A plugin's problem with its options table, located at the key it names first
    (``"address: ..."``, ``"unknown key 'adress'"``) when it names one: the line or
    ``--set`` that wrote that key, not whichever wrote the table last."""
    named = _NAMED_KEY.match(problem)
    key = next((k for k in named.groups() if k is not None), None) if named else None
    path = (*table, key) if key in options else table
    p.add(path, problem, where=dotted(table))


_NAMED_KEY = re.compile(r"(?:unknown key '([^']+)'|([\w.-]+)[:,])")


_UNSEEN: Any = object()


def _kind(tasks: Any, uses: str) -> tuple[Any, Any] | None:
    """The registered task ``uses`` and the checks of its annotations; None if unknown."""
    if uses not in tasks:
        return None
    info = tasks.get(uses)
    return info, task_checks(uses, info.func)


def _failed_note(plugins: Plugins) -> str:
    failed = plugins.failed()
    if not failed:
        return ""
    shown = "; ".join(f"plugin {i.name!r} failed to load: {i.error}" for i in failed[:3])
    return f"; note: {shown}"


def _display(recipe: Recipe) -> str | None:
    if recipe.path is None:
        return None
    import os

    try:
        rel = os.path.relpath(recipe.path)
    except ValueError:
        return str(recipe.path)
    return str(recipe.path) if rel.startswith("..") else rel


def _locator(recipe: Recipe) -> Locator:
    """Where keys were written: the recipe file is read again, only when a message
    needs a line (a valid recipe never does)."""
    found: list[Locator | None] = []
    display = _display(recipe)

    def locate(path: tuple) -> tuple[str | None, int | None]:
        if not found:
            found.append(_load_locator(recipe, display))
        return found[0](path) if found[0] is not None else (display, None)

    return locate


def _load_locator(recipe: Recipe, display: str | None) -> Locator | None:
    try:
        from toolkit.recipe.loader import Sources, apply_overrides

        sources = Sources()
        data = sources.load(recipe.path, display or "", ())  # type: ignore[arg-type]
        apply_overrides(data, recipe.overrides, sources)
        return sources.locate
    except Exception:  # a file changed or gone since: messages just lose their line
        return None


__all__: list[Any] = ["check_recipe"]
