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
from toolkit.recipe import limits
from toolkit.recipe.lines import key_lines
from toolkit.recipe.model import Recipe
from toolkit.recipe.problems import Problems, did_you_mean, dotted, type_name

_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_VAR_REF = re.compile(r"\$\{\s*vars\.([A-Za-z0-9_.-]+)")
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
    import gc

    # reading makes many small objects and no cycles: the collector's passes over a
    # growing heap cost a quarter of the time of a 100,000-task recipe
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _read_recipe(source, overrides, os.environ if environ is None else environ)
    finally:
        if collecting:
            gc.enable()


def _read_recipe(
    source: str | os.PathLike | Mapping[str, Any], overrides: Sequence[str], environ: Mapping[str, str]
) -> Recipe:
    from toolkit.recipe.build import build_recipe

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
        try:  # the manifest, records (${recipe.dir}) and cache hold the path as UTF-8 text
            os.fspath(path).encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"recipe {_printable(os.fspath(path))}: the path is not valid UTF-8 text;"
                " rename the file or directory (or run it from a path that is)"
            ) from None
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
    if isinstance(value, Mapping | list | tuple) and len(path) >= limits.MAX_NESTING:
        problems.add(path, f"tables and arrays nest more than {limits.MAX_NESTING} levels deep")
        return {}
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
    name; ``recipe.plugins`` lists are joined; other arrays are replaced. In
    ``[schedule]``, ``cron`` and ``every`` are one choice: the one ``top`` makes replaces
    the other in ``base``."""
    if path == ("schedule",) and isinstance(base, dict) and isinstance(top, dict):
        base = _without_other_timing(base, top)
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


#: the keys of [schedule] that say when: a recipe has one of them
_TIMING = ("cron", "every")


def _without_other_timing(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    chosen = [k for k in _TIMING if k in top]
    if len(chosen) != 1:
        return base  # none, or both (an error the schedule's check reports)
    return {k: v for k, v in base.items() if k not in _TIMING or k == chosen[0]}


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


class FileLines:
    """Line numbers of one file's keys, found only when a message needs one: scanning
    the text costs more than parsing it, and a valid recipe never asks."""

    __slots__ = ("_map", "names", "text")

    def __init__(self, text: str, names: list[Any]) -> None:
        self.text: str | None = text
        self.names = names  # the [[task]] names in file order, for ("task", NAME, ...) keys
        self._map: dict[tuple, int] | None = None

    def get(self) -> dict[tuple, int]:
        if self._map is None:
            self._map = _named_task_lines(key_lines(self.text or ""), self.names)
            self.text = None
        return self._map


def _lines_of(lines: FileLines | dict[tuple, int]) -> dict[tuple, int]:
    return lines.get() if isinstance(lines, FileLines) else lines


class Sources:
    """The files (and overrides) a recipe came from, and where each key was written."""

    def __init__(self) -> None:
        self.maps: list[tuple[str | None, FileLines | dict[tuple, int]]] = []  # in merge order
        self.problems = Problems(None)
        #: each included file is read and expanded once: a diamond of includes stays linear
        #: (None: it had problems, reported the first time)
        self._loaded: dict[Path, dict[str, Any] | None] = {}

    def raise_if_any(self) -> None:
        self.problems.raise_if_any()

    def locate(self, path: tuple) -> tuple[str | None, int | None]:
        """The file and line that wrote ``path`` (or its closest parent)."""
        best: tuple[int, str | None, int | None] = (0, None, None)
        for display, found in reversed(self.maps):  # highest precedence first
            lines = _lines_of(found)
            for n in range(len(path), best[0], -1):
                if path[:n] in lines:
                    best = (n, display, lines[path[:n]])
                    break
        if best[0] == 0:  # nobody wrote it (a required key): the recipe file, not a --set
            files = [display for display, found in self.maps if isinstance(found, FileLines)]
            return (files[-1] if files else self.maps[-1][0] if self.maps else None), None
        return best[1], best[2]

    def load(self, file: Path, display: str, chain: tuple[Path, ...]) -> dict[str, Any]:
        text = read_text(file, display)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            found = _TOML_LINE.search(str(exc))
            message = _TOML_LINE.sub("", str(exc)).strip()
            raise RecipeError(
                display, "", f"not valid TOML: {message}", int(found[1]) if found else None
            ) from None
        except RecursionError:
            data = None
        if data is None or limits.nesting(data) > limits.MAX_NESTING:
            raise RecipeError(
                display, "", f"tables and arrays nest more than {limits.MAX_NESTING} levels deep"
            )
        tasks = data.get("task")
        names = (
            [t.get("name") if isinstance(t, dict) else None for t in tasks] if isinstance(tasks, list) else []
        )
        lines = FileLines(text, names)
        return self.expand(data, file.resolve().parent, display, (*chain, file.resolve()), lines)

    def expand(
        self,
        data: dict[str, Any],
        base_dir: Path,
        display: str | None,
        chain: tuple[Path, ...],
        lines: FileLines | dict[tuple, int] | None = None,
    ) -> dict[str, Any]:
        """Resolve this file's plugin paths, merge its includes underneath it."""
        lines = lines if lines is not None else {}
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
                included = self._include(base_dir, name, display, lines, (*where, i), chain)
                if included is not None:
                    merged = merge(merged, included)
        self.maps.append((display, lines))
        return merge(merged, data) if merged else data

    def _include(
        self,
        base_dir: Path,
        name: str,
        display: str | None,
        lines: FileLines | dict[tuple, int],
        where: tuple,
        chain: tuple[Path, ...],
    ) -> dict[str, Any] | None:
        """One included file, expanded (read once per recipe); None after a problem."""
        file = (base_dir / name).resolve()
        if file in chain:
            names = [_show_path(p) for p in chain[chain.index(file) :]] + [_show_path(file)]
            self._problem(display, lines, where, f"include cycle: {' -> '.join(names)}")
            return None
        if file in self._loaded:
            return self._loaded[file]
        if len(chain) >= limits.MAX_INCLUDE_DEPTH:
            self._problem(
                display,
                lines,
                where,
                f"includes nest more than {limits.MAX_INCLUDE_DEPTH} files deep"
                f" ({_show_path(chain[0])} -> {_show_path(chain[1])} -> ...)",
            )
            return None
        if len(self._loaded) >= limits.MAX_INCLUDED_FILES:
            self._problem(
                display, lines, where, f"a recipe may include at most {limits.MAX_INCLUDED_FILES} files"
            )
            return None
        if not file.exists():
            self._problem(display, lines, where, f"no such file: {_show_path(file)}")
            return None
        if not file.is_file():
            self._problem(display, lines, where, f"not a regular file: {_show_path(file)}")
            return None
        self._loaded[file] = None
        try:
            loaded = self.load(file, _show_path(file), chain)
        except (RecipeError, UsageError) as exc:
            self.problems.errors.append(
                exc if isinstance(exc, RecipeError) else RecipeError(display, dotted(where), exc.message)
            )
            return None
        except RecipeErrors as exc:
            self.problems.extend(exc.errors)
            return None
        self._loaded[file] = loaded
        return loaded

    def _problem(
        self, display: str | None, found: FileLines | dict[tuple, int], path: tuple, problem: str
    ) -> None:
        lines = _lines_of(found)
        line = next((lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in lines), None)
        self.problems.errors.append(RecipeError(display, dotted(path), problem, line))


def read_text(file: Path, display: str) -> str:
    """A recipe file's text; ``UsageError`` if it cannot be read, is not UTF-8 or is huge."""
    try:
        with open(file, "rb") as f:
            raw = f.read(limits.MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read recipe {display}: {exc.strerror or exc}") from None
    if len(raw) > limits.MAX_FILE_BYTES:
        raise UsageError(
            f"recipe {display} is larger than {limits.show_bytes(limits.MAX_FILE_BYTES)}:"
            " a recipe is a small text file"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"cannot read recipe {display}: not UTF-8 text (line {line})") from None


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


def _named_task_lines(lines: dict[tuple, int], names: list[Any]) -> dict[tuple, int]:
    """Add ``("task", NAME, ...)`` keys beside ``("task", INDEX, ...)``: errors use names."""
    if not names:
        return lines
    out = dict(lines)
    for key, line in lines.items():
        if len(key) >= 2 and key[0] == "task" and isinstance(key[1], int) and key[1] < len(names):
            name = names[key[1]]
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
    except RecursionError:
        parsed = None
    if parsed is None or len(parts) + limits.nesting(parsed) - 1 > limits.MAX_NESTING:
        raise ValueError(f"the value nests more than {limits.MAX_NESTING} tables and arrays deep")
    return (parts, parsed["v"]) if list(parsed) == ["v"] else (parts, raw)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], sources: Sources) -> None:
    """Apply ``--set`` overrides in order; ``task.NAME.…`` addresses a task by name."""
    problems = Problems(None)
    new_vars: list[tuple[str, tuple[str, ...]]] = []  # (label, path) of vars --set created
    for text in overrides:
        label = f"--set {_printable(text)}"

        def fail(problem: str, label: str = label) -> None:
            problems.errors.append(RecipeError(label, "", problem))

        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            fail("not valid UTF-8 text (check the terminal's or the script's encoding)")
            continue
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
        if parts[0] == "vars" and parts[-1] not in node:
            new_vars.append((label, parts))
        if walked == ("schedule",) and parts[-1] in _TIMING:  # as an include does
            for other in _TIMING:
                node.pop(other, None)
        node[parts[-1]] = value
        sources.maps.append((label, {(*walked, parts[-1]): None}))  # type: ignore[dict-item]
    for label, parts in new_vars:
        problem = _unused_var(data, parts)
        if problem:
            problems.errors.append(RecipeError(label, "", problem))
    problems.raise_if_any()


def _printable(text: str) -> str:
    """``text`` as it can be printed: bytes that are not UTF-8 shown as ``\\xff``, and
    no longer than a line."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text if len(text) <= 100 else text[:97] + "..."


def _unused_var(data: dict[str, Any], parts: tuple[str, ...]) -> str | None:
    """Why a var that ``--set`` added changes nothing (a typo, as a rule); None if a
    reference uses it (or a table around it)."""
    used = set()
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and "${vars." in node:
            for found in _VAR_REF.finditer(node):
                used.add(tuple(found[1].split(".")))
    for ref in used:
        n = min(len(ref), len(parts) - 1)
        if ref[:n] == parts[1 : 1 + n]:
            return None
    name = ".".join(parts[1:])
    table = data.get("vars")
    for part in parts[1:-1]:
        table = table.get(part) if isinstance(table, dict) else None
    known = [k for k in table if k != parts[-1]] if isinstance(table, dict) else []
    hint = did_you_mean(parts[-1], known) or (f" (its vars: {', '.join(known)})" if known else "")
    return f"sets vars.{name}, which the recipe neither defines nor uses: it would change nothing{hint}"
