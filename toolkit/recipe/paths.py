"""A task's declared files: ``files`` (inputs, globs allowed), ``outputs``, and the
values of its ``glob`` matrix axes, per instance.

Paths are kept as the recipe wrote them: relative to the recipe's directory (or
absolute), normalised (``./data//a.csv`` is ``data/a.csv``). ``${matrix.X}`` is filled
from the instance's params (matrix values are merged into them). Workers import this
module (the ``MissingOutput`` check), so it imports next to nothing; ``glob`` only when
a pattern needs it.
"""

from __future__ import annotations

import os

from toolkit.recipe.interpolate import Ref, parse, render

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any


def has_magic(path: str) -> bool:
    """Whether ``path`` is a glob pattern (``*``, ``?`` or ``[``), as ``glob`` decides."""
    return "*" in path or "?" in path or "[" in path


def expand_glob(pattern: str, root: str | os.PathLike) -> list[str]:
    """The paths matching ``pattern`` relative to ``root`` (absolute for an absolute
    pattern), sorted; ``**`` matches any depth. Files only, except that a pattern ending
    in ``/`` matches directories only. Hidden names match only a pattern that names them,
    as in a shell."""
    import glob

    dirs = pattern.endswith(("/", os.sep))
    found = glob.glob(pattern, root_dir=root, recursive=True)
    join, isdir, isfile = os.path.join, os.path.isdir, os.path.isfile
    keep = isdir if dirs else isfile
    return sorted(os.path.normpath(m) for m in found if keep(join(root, m)))


class FilePaths:
    """The ``files`` and ``outputs`` of one task, parsed once, and its glob axes."""

    __slots__ = ("axes", "files", "outputs")

    def __init__(self, files: Sequence[str], outputs: Sequence[str], axes: Sequence[str] = ()) -> None:
        # each entry in recipe spelling ($${ for a literal ${), parsed into its parts
        self.files = tuple(tuple(parse(f)) for f in files)
        self.outputs = tuple(tuple(parse(o)) for o in outputs)
        self.axes = tuple(axes)

    def __bool__(self) -> bool:
        return bool(self.files or self.outputs or self.axes)

    def inputs(self, task: str, params: Mapping[str, Any], root: str | os.PathLike) -> tuple[str, ...]:
        out: dict[str, None] = {}
        for parts in self.files:
            # a pattern is what the recipe writes: a value filled in (x[1].csv) is a name
            if any(type(part) is str and has_magic(part) for part in parts):
                found = expand_glob(_fill(task, "files", parts, params, _escape_magic), root)
                _check_names(task, found)
                out.update(dict.fromkeys(found))
            else:
                out[os.path.normpath(_fill(task, "files", parts, params))] = None
        for axis in self.axes:
            value = params.get(axis)
            if isinstance(value, str):
                out[value] = None
        return tuple(out)

    def produced(self, task: str, params: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(os.path.normpath(_fill(task, "outputs", p, params)) for p in self.outputs))


def _check_names(task: str, paths: list[str]) -> None:
    """Refuse a file name that is not UTF-8 (the file system gives its bytes as
    surrogates): digests, the cache and records hold paths as text."""
    for path in paths:
        if not path.isascii():
            try:
                path.encode()
            except UnicodeEncodeError:
                from toolkit.errors import RecipeError

                shown = repr(os.fsencode(path))[2:-1]
                raise RecipeError(
                    None,
                    f"task.{task}.files",
                    f"the file name {shown} is not valid UTF-8; rename the file (convmv converts names)",
                ) from None


def _escape_magic(text: str) -> str:
    """``text`` matched as itself in a glob pattern (as glob.escape, without importing glob)."""
    return text.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")


def _fill(task: str, key: str, parts: tuple, params: Mapping[str, Any], escape: Any = None) -> str:
    if len(parts) == 1 and type(parts[0]) is str:
        return parts[0]
    out = []
    for part in parts:
        if isinstance(part, Ref):
            try:
                value = render(params[part.path[0]])
            except KeyError:
                from toolkit.errors import RecipeError

                raise RecipeError(
                    None,
                    f"task.{task}.{key}",
                    f"{part.text}: this instance has no matrix value {part.path[0]!r}",
                ) from None
            part = escape(value) if escape is not None else value
        out.append(part)
    return "".join(out)
