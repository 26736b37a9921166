"""Reading a recipe: TOML files, ``recipe.include``, ``--set`` overrides, provenance.

The result of this module is one plain table, as if the user had written a single
file, plus a :class:`Sources` that says which file (and line) wrote each key, so
that every later message can point at the right place.
"""

from __future__ import annotations

import datetime
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from toolkit.errors import RecipeError, RecipeErrors, UsageError
from toolkit.recipe.lines import key_lines
from toolkit.recipe.model import Recipe
from toolkit.recipe.problems import Problems, did_you_mean, dotted, type_name

_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_SCALARS = (str, int, float, bool, datetime.datetime, datetime.date, datetime.time)


def read_recipe(
    source: str | os.PathLike | Mapping[str, Any],
    *,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Recipe:
    """Read, merge, override, resolve and validate a recipe; raise ``RecipeErrors``.

    ``source`` is a recipe file or a table shaped like the TOML (then relative paths
    are relative to the current directory).
    """
    from toolkit.recipe.build import build_recipe

    environ = os.environ if environ is None else environ
    sources = Sources()
    if isinstance(source, Mapping):
        path, display, base_dir = None, None, Path.cwd()
        problems = Problems(None)
        data = plain(source, (), problems)
        problems.raise_if_any()
        data = sources.expand(data, base_dir, None, ())
    else:
        given = Path(os.fspath(source))
        if not given.exists():
            raise UsageError(f"no such recipe file: {os.fspath(source)}")
        if given.is_dir():
            raise UsageError(f"{os.fspath(source)} is a directory, not a recipe file")
        path = given.resolve()
        display = os.fspath(source)
        base_dir = path.parent
        data = sources.load(given, display, ())
    sources.raise_if_any()
    apply_overrides(data, overrides, sources)
    recipe = build_recipe(
        data, path=path, display=display, base_dir=base_dir, locate=sources.locate, environ=environ
    )
    return attrs.evolve(recipe, overrides=tuple(overrides)) if overrides else recipe


def plain(value: Any, path: tuple, problems: Problems) -> Any:
    """A copy of a Python value as TOML would give it; problems for what TOML lacks."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.add((*path, str(key)), f"keys must be strings, got {type_name(key)}")
                continue
            out[key] = plain(item, (*path, key), problems)
        return out
    if isinstance(value, list | tuple):
        return [plain(item, (*path, i), problems) for i, item in enumerate(value)]
    if value is None:
        problems.add(path, "has no value (TOML has no null: leave the key out)")
        return value
    if not isinstance(value, _SCALARS):
        problems.add(path, f"is {type_name(value)}, which a TOML file cannot hold")
    return value


def merge(base: Any, top: Any, path: tuple = ()) -> Any:
    """Deep merge, ``top`` wins. Tables merge key by key; ``[[task]]`` tables merge by
    name; ``recipe.plugins`` lists are joined; other arrays are replaced."""
    if not isinstance(base, dict) or not isinstance(top, dict):
        if path == ("recipe", "plugins") and isinstance(base, list) and isinstance(top, list):
            return base + [p for p in top if p not in base]
        if path == ("task",) and isinstance(base, list) and isinstance(top, list):
            return _merge_tasks(base, top)
        return top
    out = dict(base)
    for key, value in top.items():
        out[key] = merge(out[key], value, (*path, key)) if key in out else value
    return out


def _merge_tasks(base: list, top: list) -> list:
    out = list(base)
    where = {
        t["name"]: i for i, t in enumerate(out) if isinstance(t, dict) and isinstance(t.get("name"), str)
    }
    for task in top:
        name = task.get("name") if isinstance(task, dict) else None
        if isinstance(name, str) and name in where:
            out[where[name]] = merge(out[where[name]], task, ("task", name))
        else:
            out.append(task)
    return out


class Sources:
    """The files (and overrides) a recipe came from, and where each key was written."""

    def __init__(self) -> None:
        self.maps: list[tuple[str | None, dict[tuple, int]]] = []  # in merge order
        self.problems = Problems(None)

    def raise_if_any(self) -> None:
        self.problems.raise_if_any()

    def locate(self, path: tuple) -> tuple[str | None, int | None]:
        """The file and line that wrote ``path`` (or its closest parent)."""
        best: tuple[int, str | None, int | None] = (0, None, None)
        for display, lines in reversed(self.maps):  # highest precedence first
            for n in range(len(path), best[0], -1):
                if path[:n] in lines:
                    best = (n, display, lines[path[:n]])
                    break
        if best[0] == 0:
            return (self.maps[-1][0] if self.maps else None), None
        return best[1], best[2]

    def load(self, file: Path, display: str, chain: tuple[Path, ...]) -> dict[str, Any]:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"cannot read recipe {display}: {reason}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            found = _TOML_LINE.search(str(exc))
            message = _TOML_LINE.sub("", str(exc)).strip()
            raise RecipeError(
                display, "", f"not valid TOML: {message}", int(found[1]) if found else None
            ) from None
        lines = _named_task_lines(key_lines(text), data)
        return self.expand(data, file.resolve().parent, display, (*chain, file.resolve()), lines)

    def expand(
        self,
        data: dict[str, Any],
        base_dir: Path,
        display: str | None,
        chain: tuple[Path, ...],
        lines: dict[tuple, int] | None = None,
    ) -> dict[str, Any]:
        """Resolve this file's plugin paths, merge its includes underneath it."""
        lines = lines or {}
        head = data.get("recipe")
        includes: Any = None
        if isinstance(head, dict):
            plugins = head.get("plugins")
            if isinstance(plugins, list):
                head["plugins"] = [resolve_plugin(p, base_dir) for p in plugins]
            includes = head.pop("include", None)
        merged: dict[str, Any] = {}
        if includes is not None:
            where = ("recipe", "include")
            if isinstance(includes, str):
                includes = [includes]
            if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
                self._problem(display, lines, where, "must be an array of file names")
                includes = []
            for i, name in enumerate(includes):
                file = (base_dir / name).resolve()
                if file in chain:
                    names = [_show_path(p) for p in chain[chain.index(file) :]] + [_show_path(file)]
                    self._problem(display, lines, (*where, i), f"include cycle: {' -> '.join(names)}")
                elif not file.is_file():
                    self._problem(display, lines, (*where, i), f"no such file: {_show_path(file)}")
                else:
                    try:
                        merged = merge(merged, self.load(file, _show_path(file), chain))
                    except (RecipeError, UsageError) as exc:
                        self.problems.errors.append(
                            exc
                            if isinstance(exc, RecipeError)
                            else RecipeError(display, dotted((*where, i)), exc.message)
                        )
                    except RecipeErrors as exc:
                        self.problems.extend(exc.errors)
        self.maps.append((display, lines))
        return merge(merged, data) if merged else data

    def _problem(self, display: str | None, lines: dict[tuple, int], path: tuple, problem: str) -> None:
        line = next((lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in lines), None)
        self.problems.errors.append(RecipeError(display, dotted(path), problem, line))


def resolve_plugin(spec: Any, base_dir: Path) -> Any:
    """A ``.py`` plugin as an absolute path (relative to ``base_dir``); module names as given."""
    if isinstance(spec, str) and spec.endswith(".py") and "${" not in spec:
        return str((base_dir / os.path.expanduser(spec)).resolve())
    return spec


def _show_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _named_task_lines(lines: dict[tuple, int], data: dict[str, Any]) -> dict[tuple, int]:
    """Add ``("task", NAME, ...)`` keys beside ``("task", INDEX, ...)``: errors use names."""
    tasks = data.get("task")
    if not isinstance(tasks, list):
        return lines
    out = dict(lines)
    for key, line in lines.items():
        if len(key) >= 2 and key[0] == "task" and isinstance(key[1], int) and key[1] < len(tasks):
            task = tasks[key[1]]
            name = task.get("name") if isinstance(task, dict) else None
            if isinstance(name, str):
                out.setdefault(("task", name, *key[2:]), line)
    return out


def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """``"run.workers=4"`` to ``(("run", "workers"), 4)``; VALUE is TOML, else a string."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError("expected PATH=VALUE, such as --set run.workers=4")
    parts = tuple(p.strip() for p in name.split("."))
    if not all(parts):
        raise ValueError(f"{name!r} is not a key path such as run.workers or task.NAME.params.X")
    try:
        parsed = tomllib.loads(f"v = {raw}")
    except tomllib.TOMLDecodeError:
        return parts, raw
    return (parts, parsed["v"]) if list(parsed) == ["v"] else (parts, raw)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], sources: Sources) -> None:
    """Apply ``--set`` overrides in order; ``task.NAME.…`` addresses a task by name."""
    problems = Problems(None)
    for text in overrides:
        label = f"--set {text}"

        def fail(problem: str, label: str = label) -> None:
            problems.errors.append(RecipeError(label, "", problem))

        try:
            parts, value = parse_override(text)
        except ValueError as exc:
            fail(str(exc))
            continue
        if parts[:2] == ("recipe", "include"):
            fail("recipe.include cannot be overridden: includes are read before --set applies")
            continue
        if parts[:2] == ("recipe", "plugins") and len(parts) == 2 and isinstance(value, list):
            value = [resolve_plugin(p, Path.cwd()) for p in value]
        node: Any = data
        walked: tuple = ()
        i = 0
        while i < len(parts) - 1:
            part = parts[i]
            if walked == () and part == "task":
                tasks = data.get("task")
                name = parts[1]
                found = (
                    [t for t in tasks if isinstance(t, dict) and t.get("name") == name]
                    if isinstance(tasks, list)
                    else []
                )
                if not found:
                    names = (
                        [t.get("name") for t in tasks or [] if isinstance(t, dict)]
                        if isinstance(tasks, list)
                        else []
                    )
                    names = [n for n in names if isinstance(n, str)]
                    hint = did_you_mean(name, names) or (f" (tasks: {', '.join(names)})" if names else "")
                    fail(f"no task named {name!r}{hint}")
                    node = None
                    break
                if len(parts) == 2:  # the whole task
                    tasks[tasks.index(found[0])] = value
                    sources.maps.append((label, {("task", name): None}))  # type: ignore[dict-item]
                    node = None
                    break
                node, walked, i = found[0], ("task", name), 2
                continue
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                fail(f"{dotted((*walked, part))} is {type_name(child)}, not a table")
                node = None
                break
            node, walked, i = child, (*walked, part), i + 1
        if node is None:
            continue
        node[parts[-1]] = value
        sources.maps.append((label, {(*walked, parts[-1]): None}))  # type: ignore[dict-item]
    problems.raise_if_any()
