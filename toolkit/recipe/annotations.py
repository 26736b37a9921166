"""Checking recipe values against a task's annotations, before anything runs.

``epochs: int`` given ``"ten"`` (a typo in ``--set vars.epochs=ten``, a bad CSV cell)
would fail every instance at run time; :func:`param_checks` turns a task function's
annotations into checks that validation applies to params and to every matrix value.

Understood: ``int``, ``float`` (an int is fine), ``str``, ``bool``, ``list``/``tuple``/
``set``/``Sequence`` (of X), ``dict``/``Mapping`` (of X), ``pathlib.Path`` and
``os.PathLike`` (a string), TOML's dates and times, ``Optional``/``Union``/``X | None``,
``Literal``, ``Annotated``, ``NewType``, and string annotations (``from __future__ import
annotations``). Anything else (a class of the task's own, a ``TypeVar``, ``Any``, an
annotation that cannot be resolved) accepts every value: the check never refuses what
the task might take.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import inspect
import os
import pathlib
import types
import typing
from collections.abc import Callable
from typing import Any

from toolkit.recipe.command import COMMAND, SHELL_TASK
from toolkit.recipe.interpolate import Ref, parse
from toolkit.recipe.masking import mask
from toolkit.recipe.problems import show, type_name

#: ``value -> True when it fits``, and how to say what fits ("an integer")
Check = tuple[Callable[[Any], bool], str]

_SEQUENCES = (list, tuple, set, frozenset, cabc.Sequence, cabc.MutableSequence, cabc.Iterable)
_SEQUENCES += (cabc.Collection, cabc.Set, cabc.MutableSet)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


def param_checks(func: Callable[..., Any]) -> dict[str, tuple[Check, str]]:
    """``{param name: (check, annotation as written)}`` for the params whose annotation
    says something checkable."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}
    hints = _hints(func)
    out = {}
    for name, p in params.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or name not in hints:
            continue
        check = _check(hints[name], 0)
        if check is not None:
            out[name] = (check, _spelling(p.annotation))
    return out


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The annotations, resolved; one that cannot be (a name imported only for type
    checkers) is left out, and the others still count."""
    try:
        return typing.get_type_hints(func)
    except Exception:
        pass
    target = inspect.unwrap(func)
    raw = getattr(target, "__annotations__", None) or {}
    scope = getattr(target, "__globals__", {})
    out = {}
    for name, ann in raw.items():
        try:
            out[name] = typing.get_type_hints(types.SimpleNamespace(__annotations__={name: ann}), scope)[name]
        except Exception:
            continue
    return out


def _spelling(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__qualname__
    return str(annotation).replace("typing.", "")


def _plain(kind: type, name: str) -> Check:
    return (lambda v: isinstance(v, kind) and not isinstance(v, bool), name)


_INT: Check = _plain(int, "an integer")
_FLOAT: Check = (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number")
_STR: Check = (lambda v: isinstance(v, str), "a string")
_BOOL: Check = (lambda v: isinstance(v, bool), "true or false")
_PATH: Check = (lambda v: isinstance(v, str), "a path (a string)")


def _check(tp: Any, depth: int) -> Check | None:
    """The check for a resolved annotation; None when anything fits (or it is not
    understood). ``depth`` bounds what a recursive annotation can make of it."""
    if depth > 8 or tp is Any or tp is object:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _check(args[0], depth + 1)
    if origin is typing.Union or origin is types.UnionType:
        members = [_check(a, depth + 1) for a in args if a is not type(None)]
        if not members or any(m is None for m in members):
            return None
        fits = [m[0] for m in members if m is not None]
        said = " or ".join(dict.fromkeys(m[1] for m in members if m is not None))
        return (lambda v: any(f(v) for f in fits), said)
    if origin is typing.Literal:
        options = args
        return (
            lambda v: any(v == o and type(v) is type(o) for o in options),
            "one of " + ", ".join(repr(o) for o in options),
        )
    supertype = getattr(tp, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return _check(supertype, depth + 1)
    if tp is bool:
        return _BOOL
    if tp is int:
        return _INT
    if tp is float:
        return _FLOAT
    if tp is str:
        return _STR
    if isinstance(tp, type) and (issubclass(tp, pathlib.PurePath) or tp is os.PathLike):
        return _PATH
    if origin is os.PathLike:
        return _PATH
    if tp in (datetime.datetime, datetime.date, datetime.time):
        return _plain(tp, f"a TOML {tp.__name__}")
    if tp in _SEQUENCES or origin in _SEQUENCES:
        return _sequence(origin or tp, args, depth)
    if tp in _MAPPINGS or origin in _MAPPINGS:
        value = _check(args[1], depth + 1) if len(args) == 2 else None
        if value is None:
            return (lambda v: isinstance(v, dict), "a table")
        fits = value[0]
        return (
            lambda v: isinstance(v, dict) and all(fits(x) for x in v.values()),
            f"a table of {_plural(value[1])}",
        )
    return None


def _sequence(kind: Any, args: tuple, depth: int) -> Check:
    """An array: TOML has no tuples or sets, a list stands for them (as it would in a
    call from Python code that converted it)."""
    if kind is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        items = [_check(a, depth + 1) for a in args]
        size = len(items)

        def fixed(v: Any) -> bool:
            return (
                isinstance(v, list)
                and len(v) == size
                and all(c is None or c[0](x) for c, x in zip(items, v, strict=True))
            )

        return (fixed, f"an array of {size} values")
    item = _check(args[0], depth + 1) if args else None
    if item is None:
        return (lambda v: isinstance(v, list), "an array")
    fits = item[0]
    return (lambda v: isinstance(v, list) and all(fits(x) for x in v), f"an array of {_plural(item[1])}")


def _plural(said: str) -> str:
    for one, many in (("an integer", "integers"), ("a number", "numbers"), ("a string", "strings")):
        said = said.replace(one, many)
    return said.replace("true or false", "booleans")


#: bad values reported per matrix axis (a file source may give thousands alike)
MAX_REPORTED = 5


def task_checks(uses: str, func: Callable[..., Any]) -> dict[str, tuple[Check, str]]:
    """:func:`param_checks` of the task registered as ``uses``, as :func:`check_values`
    applies them."""
    checks = param_checks(func)
    if uses == SHELL_TASK and COMMAND in checks:
        # the loader made the words of a shell task's cmd from the string written (see
        # toolkit.recipe.command), also when a plugin replaced the built-in: not checked
        checks = {k: v for k, v in checks.items() if k != COMMAND}
    return checks


def check_values(p: Any, spec: Any, checks: dict[str, tuple[Check, str]], path: tuple) -> None:
    """Report each param and matrix value of ``spec`` that its annotation refuses
    (``checks``: the task's :func:`task_checks`).

    A matrix axis stands in for the param of its name (its values replace it); a param
    that is exactly ``"${matrix.X}"`` takes the values of axis X; one that renders a
    matrix value into a longer string is a string.
    """
    if not checks:
        return
    matrix = spec.matrix
    if not matrix and not spec.templates:  # the usual task: its params only
        for name, value in spec.params.items():
            check = checks.get(name)
            if check is not None and not check[0][0](value):
                _report(p, spec, check, name, value, (*path, "params", name))
        return
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    templated: dict[str, list[tuple]] = {}
    for where in spec.templates:
        if where:
            templated.setdefault(where[0], []).append(where)
    sources = {key: next(iter(source.values())) for key, source in getattr(spec, "sources", ())}

    def verify(name: str, value: Any, where: tuple, note: str = "") -> bool:
        check = checks[name]
        if check[0][0](value):
            return True
        _report(p, spec, check, name, value, where, note)
        return False

    def verify_axis(axis: Any, check_as: str, where: tuple, note: str = "") -> None:
        if isinstance(axis, dict):  # a range: integers
            if axis.get("range"):
                verify(check_as, axis["range"][0], (*where, "range"), note)
            return
        bad = 0
        for i, value in enumerate(axis if isinstance(axis, list) else ()):
            if not verify(check_as, value, (*where, i), note):
                bad += 1
                if bad >= MAX_REPORTED:
                    return

    for name, value in spec.params.items():
        if name in axes or name not in checks:
            continue
        if name in templated:
            if templated[name] != [(name,)] or not isinstance(value, str):
                continue  # a template inside an array or table: not checked
            parts = parse(value)
            if len(parts) == 1 and isinstance(parts[0], Ref) and parts[0].path[0] in axes:
                axis = parts[0].path[0]
                verify_axis(axes[axis], name, (*path, "matrix", axis), f" (from params.{name})")
            else:
                verify(name, "", (*path, "params", name))  # rendered: always a string
            continue
        verify(name, value, (*path, "params", name))
    for axis, values in axes.items():
        if axis in checks:
            note = f" (from {sources[axis]})" if axis in sources else ""
            verify_axis(values, axis, (*path, "matrix", axis), note)
    entries = matrix.get("include")
    note = f" (from {sources['include']})" if "include" in sources else ""
    bad = 0
    for i, entry in enumerate(entries if isinstance(entries, list) else ()):
        for key, value in entry.items() if isinstance(entry, dict) else ():
            if key in checks and not verify(key, value, (*path, "matrix", "include", i, key), note):
                bad += 1
        if bad >= MAX_REPORTED:
            break


def _report(
    p: Any, spec: Any, check: tuple[Check, str], name: str, value: Any, where: tuple, note: str = ""
) -> None:
    (_, said), annotation = check
    shown = show(mask(value, spec.secrets)) if spec.secrets else show(value)
    p.add(
        where, f"task {spec.uses!r} takes {name}: {annotation} ({said}); got {type_name(value)} {shown}{note}"
    )
