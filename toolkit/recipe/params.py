"""Task params per instance: ``${matrix.NAME}`` filled in, matrix values merged over."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from toolkit.errors import RecipeError
from toolkit.recipe.interpolate import Ref, escape_all, parse, render
from toolkit.recipe.problems import dotted

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


_NONE: frozenset = frozenset()


class ParamTemplate:
    """Params of one task, with the matrix references parsed once, ahead of time."""

    __slots__ = ("compiled", "params", "quoted", "task")

    def __init__(
        self, task: str, params: Mapping[str, Any], templates: Sequence[tuple], quoted: Sequence[tuple] = ()
    ) -> None:
        self.task = task
        self.params = dict(params)
        #: paths whose filled-in values are shell-quoted (a ``shell = true`` task's cmd)
        self.quoted = frozenset(map(tuple, quoted)) if quoted else _NONE
        if not templates:  # most tasks (one per [[task]] table of a big recipe)
            self.compiled: tuple[tuple[tuple, tuple], ...] = ()
            return
        compiled = []
        for path in templates:
            text = _get(self.params, path)
            if isinstance(text, str):
                compiled.append((tuple(path), tuple(parse(text))))
        self.compiled = tuple(compiled)

    def fill(self, combo: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(self.params)
        for path, parts in self.compiled:
            if self.quoted and path in self.quoted:
                from shlex import quote

                value = "".join(
                    quote(render(self._value(p, combo, path))) if isinstance(p, Ref) else p for p in parts
                )
            elif len(parts) == 1 and isinstance(parts[0], Ref):
                value = self._value(parts[0], combo, path)
            else:
                value = "".join(
                    render(self._value(p, combo, path)) if isinstance(p, Ref) else p for p in parts
                )
            _set(out, path, value)
        if combo:
            out.update(combo)
        return out

    def _value(self, ref: Ref, combo: Mapping[str, Any], path: tuple) -> Any:
        try:
            return combo[ref.path[0]]
        except KeyError:
            raise RecipeError(
                None,
                dotted(("task", self.task, "params", *path)),
                f"{ref.text}: this instance has no matrix value {ref.path[0]!r}",
            ) from None

    def to_table(self) -> dict[str, Any]:
        table = escape_all(self.params)
        for path, _ in self.compiled:
            _set(table, path, _get(self.params, path), copy=False)
        return table


def _get(value: Any, path: Sequence) -> Any:
    for part in path:
        value = value[part]
    return value


def _set(root: dict[str, Any], path: Sequence, value: Any, *, copy: bool = True) -> None:
    """Set ``root[path] = value``, copying the containers on the way (they are shared)."""
    if len(path) == 1:
        root[path[0]] = value
        return
    node: Any = root
    for part in path[:-1]:
        child = node[part]
        if copy:
            child = dict(child) if isinstance(child, dict) else list(child)
            node[part] = child
        node = child
    node[path[-1]] = value
