"""Matrix values from files, read when the recipe is read.

An axis may be ``{ glob = "data/**/*.csv" }`` (the matching files, relative to the
recipe's directory, sorted) or ``{ lines = "list.txt" }`` (one value per non-empty
line; ``#`` starts a comment line), and ``matrix.include`` may be ``{ csv = "jobs.csv" }``
or ``{ jsonl = "jobs.jsonl" }`` (a row per include entry). The task's ``matrix`` then
holds the values (what the manifest's resolved recipe shows) and its ``sources`` what
was written; :func:`pin_sources` gives a resumed run the values of its first start.

Every problem is reported once, naming the source file and its line where there is one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolkit.errors import RecipeError
from toolkit.recipe.keys import AXIS_RE
from toolkit.recipe.paths import expand_glob
from toolkit.recipe.problems import Problems, did_you_mean, dotted, show, type_name

AXIS_SOURCES = ("glob", "lines")
INCLUDE_SOURCES = ("csv", "jsonl")

# CSV cells read as TOML would: decimal integers and simple floats without tomllib
_INT = re.compile(r"[+-]?(0|[1-9](_?[0-9])*)")
_MAYBE_NUMBER = re.compile(r"[+-]?[0-9]")


def read_sources(
    p: Problems, matrix: Any, path: tuple, base_dir: Path
) -> tuple[Any, tuple[tuple[str, dict[str, str]], ...]]:
    """``(matrix with its file sources replaced by their values, the sources as written)``;
    the matrix is None when a source was bad (reported here: nothing else is said about
    that matrix)."""
    if not isinstance(matrix, dict):
        return matrix, ()
    out = dict(matrix)
    bad = False
    sources: list[tuple[str, dict[str, str]]] = []
    for key, value in matrix.items():
        if not isinstance(value, dict):
            continue
        kinds = INCLUDE_SOURCES if key == "include" else () if key == "exclude" else AXIS_SOURCES
        named = [k for k in value if k in kinds]
        if not named:
            continue  # a range, or a shape check_matrix explains
        where = (*path, key)
        if len(value) != 1:
            extra = ", ".join(sorted(k for k in value if k != named[0]))
            p.add(where, f"a {named[0]} source takes only its file: remove {extra}")
            bad = True
            continue
        kind = named[0]
        arg = value[kind]
        if not isinstance(arg, str) or not arg.strip():
            what = "a glob pattern" if kind == "glob" else "a file name"
            p.add((*where, kind), f"must be {what} (a string), got {type_name(arg)} {show(arg)}")
            bad = True
            continue
        try:
            values = READERS[kind](arg, base_dir)
        except SourceProblem as exc:
            if exc.line is None:
                p.add((*where, kind), exc.problem)
            else:
                p.errors.append(RecipeError(exc.file, dotted((*where, kind)), exc.problem, exc.line))
            bad = True
            continue
        out[key] = values
        sources.append((key, {kind: arg}))
    return (None if bad else out), tuple(sources)


class SourceProblem(Exception):
    """A bad source: ``problem``, in ``file`` at ``line`` (None: the recipe's key)."""

    def __init__(self, problem: str, file: str | None = None, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.file = file
        self.line = line


def _show_path(path: Path) -> str:
    """A source file as messages name it: relative to the current directory if inside."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _open_text(name: str, base_dir: Path) -> tuple[Path, str]:
    file = base_dir / os.path.expanduser(name)
    try:
        with open(file, encoding="utf-8-sig", newline="") as f:  # -sig: spreadsheets write a BOM
            return file, f.read()
    except FileNotFoundError:
        raise SourceProblem(f"no such file: {_show_path(file)}") from None
    except IsADirectoryError:
        raise SourceProblem(f"{_show_path(file)} is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise SourceProblem(f"not UTF-8 text ({exc.reason})", _show_path(file), line) from None
    except OSError as exc:
        raise SourceProblem(f"cannot read {_show_path(file)}: {exc.strerror or exc}") from None


def read_glob(pattern: str, base_dir: Path) -> list[str]:
    found = expand_glob(pattern, base_dir)
    if not found:
        what = "directory" if pattern.endswith(("/", os.sep)) else "file"
        raise SourceProblem(f"the pattern {pattern!r} matches no {what} (in {_show_path(base_dir) or '.'})")
    for path in found:
        try:
            path.encode()
        except UnicodeEncodeError:  # bytes the file system gave as surrogates
            shown = repr(os.fsencode(path))[2:-1]
            raise SourceProblem(
                f"the file name {shown} is not valid UTF-8: a matrix value is text that records"
                " hold; rename the file (convmv converts names)"
            ) from None
    return found


def read_lines(name: str, base_dir: Path) -> list[str]:
    file, text = _open_text(name, base_dir)
    shown = _show_path(file)
    values: list[str] = []
    first: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if value in first:
            raise SourceProblem(
                f"{value!r} is listed twice (first on line {first[value]}): instance ids would clash",
                shown,
                number,
            )
        first[value] = number
        values.append(value)
    if not values:
        raise SourceProblem(f"{shown} has no values (only empty or '#' lines)")
    return values


def read_csv(name: str, base_dir: Path) -> list[dict[str, Any]]:
    file, text = _open_text(name, base_dir)
    shown = _show_path(file)
    reader = csv.reader(text.splitlines(keepends=True))
    header: list[str] | None = None
    rows: list[dict[str, Any]] = []
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if header is None:
                header = [h.strip() for h in row]
                _check_header(header, shown, line)
                continue
            if len(row) != len(header):
                raise SourceProblem(
                    f"this row has {len(row)} cell{'s' if len(row) != 1 else ''},"
                    f" the header has {len(header)}",
                    shown,
                    line,
                )
            rows.append({h: cell_value(c) for h, c in zip(header, row, strict=True)})
    except csv.Error as exc:
        raise SourceProblem(f"not valid CSV: {exc}", shown, reader.line_num) from None
    if header is None:
        raise SourceProblem(f"{shown} is empty: expected a header row of matrix keys, then one row per entry")
    if not rows:
        raise SourceProblem(f"{shown} has a header but no rows")
    return rows


def _check_header(header: list[str], shown: str, line: int) -> None:
    seen: set[str] = set()
    for i, name in enumerate(header, 1):
        if not AXIS_RE.fullmatch(name):
            raise SourceProblem(
                f"header cell {i} {name!r} is not a matrix key: use letters, digits and '_'"
                " (it is used as ${matrix.NAME})",
                shown,
                line,
            )
        if name in seen:
            raise SourceProblem(f"header cell {i} {name!r} is there twice", shown, line)
        seen.add(name)


def cell_value(cell: str) -> Any:
    """A CSV cell as TOML would read it: ``3`` an integer, ``0.5`` a float, ``true`` a
    boolean; anything else (dates, ``inf``, ``nan`` too) the string itself."""
    if cell == "true":
        return True
    if cell == "false":
        return False
    if not cell or not _MAYBE_NUMBER.match(cell) or "#" in cell or "\n" in cell:
        return cell
    if _INT.fullmatch(cell):
        return int(cell)
    import tomllib

    try:
        value = tomllib.loads(f"v = {cell}")["v"]
    except (tomllib.TOMLDecodeError, KeyError):
        return cell
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return value
    return cell


def read_jsonl(name: str, base_dir: Path) -> list[dict[str, Any]]:
    file, text = _open_text(name, base_dir)
    shown = _show_path(file)
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise SourceProblem(f"not valid JSON: {exc.msg} (column {exc.colno})", shown, number) from None
        except ValueError as exc:  # NaN, Infinity
            raise SourceProblem(f"not valid JSON: {exc}", shown, number) from None
        if not isinstance(row, dict) or not row:
            got = "an empty object" if isinstance(row, dict) else f"{type_name(row)} {show(row)}"
            raise SourceProblem(
                f'each line must be an object of matrix values such as {{"seed": 3}}, got {got}',
                shown,
                number,
            )
        for key, value in row.items():
            if not AXIS_RE.fullmatch(key):
                raise SourceProblem(
                    f"key {key!r} is not a matrix key: use letters, digits and '_'", shown, number
                )
            if _has_null(value):
                raise SourceProblem(f"{key}: null has no TOML form; leave the key out", shown, number)
        rows.append(row)
    if not rows:
        raise SourceProblem(f"{shown} has no lines")
    return rows


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    return False


READERS = {"glob": read_glob, "lines": read_lines, "csv": read_csv, "jsonl": read_jsonl}


def source_hint(key: str, table: Mapping[str, Any]) -> str:
    """A "did you mean" for an axis (or include) table with a misspelt source."""
    kinds = ("csv", "jsonl") if key == "include" else ("range", "glob", "lines")
    for k in table:
        hint = did_you_mean(k, kinds)
        if hint:
            return hint
    return ""


def pin_sources(recipe: Any, previous: Mapping[str, Any]) -> Any:
    """``recipe`` with each file source's values taken from ``previous`` (the manifest
    of a run it resumes) where that run read the same source as written: a resumed run
    runs exactly the instances of its first start, even after files were added."""
    import attrs

    pinned = previous.get("sources")
    resolved = previous.get("resolved")
    if not isinstance(pinned, dict) or not isinstance(resolved, dict):
        return recipe
    before = {t.get("name"): t for t in resolved.get("task", []) if isinstance(t, dict)}
    tasks = []
    changed = False
    for spec in recipe.tasks:
        table = before.get(spec.name, {})
        matrix = dict(spec.matrix)
        for key, source in spec.sources:
            old = table.get("matrix", {}).get(key) if isinstance(table.get("matrix"), dict) else None
            if pinned.get(f"{spec.name}.{key}") == source and isinstance(old, list):
                matrix[key] = _unescape(old)
        if matrix != spec.matrix:
            spec = attrs.evolve(spec, matrix=matrix)
            changed = True
        tasks.append(spec)
    return attrs.evolve(recipe, tasks=tasks) if changed else recipe


def _unescape(value: Any) -> Any:
    """A value of the manifest's resolved recipe (``$${`` for a literal ``${``) as it was."""
    if isinstance(value, str):
        return value.replace("$${", "${")
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    if isinstance(value, dict):
        return {k: _unescape(v) for k, v in value.items()}
    return value


def sources_table(recipe: Any) -> dict[str, dict[str, str]]:
    """The manifest's ``[sources]``: ``{"TASK.KEY": {"glob": "data/*.csv"}}`` as written."""
    return {f"{spec.name}.{key}": dict(source) for spec in recipe.tasks for key, source in spec.sources}
