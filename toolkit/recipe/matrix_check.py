"""Validating a task's ``matrix`` table before it is expanded."""

from __future__ import annotations

from typing import Any

from toolkit.recipe.keys import AXIS_RE
from toolkit.recipe.matrix import id_text
from toolkit.recipe.problems import Problems, did_you_mean, show, type_name

RANGE_HINT = "{ range = [start, stop] } or { range = [start, stop, step] } of integers"
AXIS_TABLES = f"{RANGE_HINT}, {{ glob = PATTERN }} or {{ lines = FILE }}"
INCLUDE_HINT = "an array of tables, { csv = FILE } or { jsonl = FILE }"


def check_matrix(p: Problems, value: Any, path: tuple) -> dict[str, Any]:
    """The matrix table if it is valid; ``{}`` (after reporting) if not."""
    if not isinstance(value, dict):
        p.add(path, f"must be a table of axes, got {type_name(value)}")
        return {}
    before = len(p.errors)
    axes = [k for k in value if k not in ("include", "exclude")]
    for key in axes:
        where = (*path, key)
        if not AXIS_RE.fullmatch(key):
            p.add(where, "an axis name must be letters, digits and '_' (it is used as ${matrix.NAME})")
        _check_axis(p, value[key], where)
    for key in ("include", "exclude"):
        if key not in value:
            continue
        entries = value[key]
        if not isinstance(entries, list):
            if key == "include" and isinstance(entries, dict):
                hint = did_you_mean(next(iter(entries), ""), ("csv", "jsonl"))
                p.add((*path, key), f"must be {INCLUDE_HINT}{hint}")
            else:
                p.add((*path, key), f"must be an array of tables, got {type_name(entries)}")
            continue
        for i, entry in enumerate(entries):
            where = (*path, key, i)
            if not isinstance(entry, dict):
                p.add(
                    where, f"must be a table such as {{ method = 'plain', seed = 3 }}, got {type_name(entry)}"
                )
                continue
            if not entry:
                p.add(where, "must not be empty")
            for k in entry:
                if key == "exclude" and k not in axes:
                    hint = did_you_mean(k, axes) or (f" (axes: {', '.join(axes)})" if axes else "")
                    p.add((*where, k), f"exclude names {k!r}, which is not a matrix axis{hint}")
                elif not AXIS_RE.fullmatch(k):
                    p.add((*where, k), "a matrix key must be letters, digits and '_'")
    return value if len(p.errors) == before else {}


def _check_axis(p: Problems, axis: Any, where: tuple) -> None:
    if isinstance(axis, list):
        if not axis:
            p.add(where, "an axis must have at least one value")
            return
        seen: dict[str, Any] = {}
        for i, v in enumerate(axis):
            text = id_text(v)
            if text in seen:
                same = (
                    "is listed twice"
                    if seen[text] == v
                    else f"looks like {show(seen[text])} in an instance id"
                )
                p.add((*where, i), f"the value {show(v)} {same}: instance ids would clash")
            seen.setdefault(text, v)
        return
    if isinstance(axis, dict):
        if list(axis) != ["range"]:
            extra = [k for k in axis if k != "range"]
            hint = did_you_mean(extra[0], ["range", "glob", "lines"]) if extra else ""
            p.add(where, f"an axis table must be {AXIS_TABLES}{hint}")
            return
        bounds = axis["range"]
        if (
            not isinstance(bounds, list)
            or len(bounds) not in (2, 3)
            or not all(type(b) is int for b in bounds)
        ):
            p.add(
                (*where, "range"),
                f"must be [start, stop] or [start, stop, step] of integers, got {show(bounds)}",
            )
            return
        if len(bounds) == 3 and bounds[2] == 0:
            p.add((*where, "range"), "the step must not be 0")
            return
        if not range(*bounds):
            p.add((*where, "range"), f"{show(bounds)} is empty: stop is not past start (stop is exclusive)")
        return
    p.add(where, f"an axis must be an array of values, {AXIS_TABLES}, got {type_name(axis)} {show(axis)}")
