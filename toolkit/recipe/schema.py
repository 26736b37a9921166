"""The JSON Schema (draft 2020-12) of the recipe format, built from :mod:`toolkit.recipe.keys`.

Editors that validate TOML against a JSON Schema (Taplo, Even Better TOML) use it to
check and complete recipes. Any key that takes a number, a boolean or an array also
accepts a string that is one ``${...}`` reference, as the loader does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from toolkit.recipe import keys as K

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
REFERENCE = {"type": "string", "pattern": r"^\$\{[^}]+\}$", "description": "A ${...} reference."}


def _key(key: K.Key) -> dict[str, Any]:
    kind = key.kind
    if kind == "name":
        out: dict[str, Any] = {"type": "string", "pattern": f"^{K.NAME_RE.pattern}$"}
    elif kind == "string":
        out = {"type": "string"}
    elif kind == "integer":
        out = {"type": "integer"}
    elif kind == "boolean":
        out = {"type": "boolean"}
    elif kind == "duration":
        out = {"$ref": "#/$defs/duration"}
    elif kind == "size":
        out = {"$ref": "#/$defs/size"}
    elif kind == "array":
        items = {"type": "string"} if key.items == "string" else {"type": "object"}
        out = {"type": "array", "items": items}
    elif kind == "table":
        out = {"type": "object"}
    else:
        out = {}
    if key.enum:
        out["enum"] = list(key.enum)
    if key.minimum is not None:
        out["minimum"] = key.minimum
    if kind in ("integer", "boolean", "array", "duration") or key.enum:
        out = {"anyOf": [out, {"$ref": "#/$defs/reference"}]}
    out["description"] = key.doc
    if key.default is not None:
        out["default"] = key.default
    if key.examples:
        out["examples"] = list(key.examples)
    return out


def _table(keys: Mapping[str, K.Key], description: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "description": description,
        "properties": {name: _key(key) for name, key in keys.items()},
        "additionalProperties": False,
    }
    # a file may get keys from the files it includes, so only a task's name (by which
    # tasks merge) is required here; the loader checks the merged recipe
    required = [name for name, key in keys.items() if key.required and keys is K.TASK and name == "name"]
    if required:
        out["required"] = required
    for name, schema in extra.items():
        out["properties"][name] = {**schema, "description": keys[name].doc}
    return out


def _source(kind: str, description: str) -> dict[str, Any]:
    """A matrix file source: ``{ KIND = "file or pattern" }``."""
    return {
        "type": "object",
        "properties": {kind: {"type": "string", "description": description}},
        "required": [kind],
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """The schema as a JSON-able dict."""
    axis_entry = {
        "type": "object",
        "propertyNames": {"pattern": f"^{K.AXIS_RE.pattern}$"},
        "minProperties": 1,
    }
    matrix = {
        "type": "object",
        "properties": {
            "include": {
                "description": "Tables that extend matching combinations, or add instances of their own;"
                " or { csv = FILE } / { jsonl = FILE }: one table per row.",
                "anyOf": [
                    {"type": "array", "items": axis_entry},
                    _source("csv", "A CSV file: a header row of matrix keys, then one entry per row."),
                    _source("jsonl", "A JSON Lines file: one object of matrix values per line."),
                ],
            },
            "exclude": {
                "type": "array",
                "items": axis_entry,
                "description": "Tables: combinations that match one are left out.",
            },
        },
        "propertyNames": {"pattern": f"^{K.AXIS_RE.pattern}$"},
        "additionalProperties": {"$ref": "#/$defs/axis"},
    }
    task = _table(
        K.TASK,
        "One task: what it runs, with which params, over which matrix.",
        matrix={"$ref": "#/$defs/matrix"},
    )
    return {
        "$schema": SCHEMA_URI,
        "title": "toolkit recipe",
        "description": "A toolkit recipe: tasks from plugins, their params and sweeps, how and where they run.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "recipe": _table(K.RECIPE, K.TOP["recipe"].doc),
            "vars": {"type": "object", "description": K.TOP["vars"].doc},
            "run": _table(K.RUN, K.TOP["run"].doc),
            "output": {
                **_table(K.OUTPUT, K.TOP["output"].doc),
                # [output.NAME]: the options of sink NAME
                "additionalProperties": {"type": "object"},
            },
            "notify": _table(K.NOTIFY, K.TOP["notify"].doc),
            "executor": {
                "type": "object",
                "description": K.TOP["executor"].doc,
                "additionalProperties": {"type": "object"},
            },
            "schedule": _table(K.SCHEDULE, K.TOP["schedule"].doc),
            "task": {
                "type": "array",
                "description": K.TOP["task"].doc,
                "minItems": 1,
                "items": {"$ref": "#/$defs/task"},
            },
        },
        "$defs": {
            "reference": REFERENCE,
            "duration": {
                "description": "Seconds, or a string such as '250ms', '30s', '5m', '2h', '1h30m'.",
                "anyOf": [
                    {"type": "number", "minimum": 0},
                    {"type": "string", "pattern": K.DURATION_PATTERN},
                    REFERENCE,
                ],
            },
            "size": {
                "description": "Bytes, or a string such as '512M', '4G', '1.5G' (K, M, G, T: powers of 1024).",
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "string", "pattern": K.SIZE_PATTERN},
                    REFERENCE,
                ],
            },
            "axis": {
                "description": "The values of one matrix axis.",
                "anyOf": [
                    {"type": "array", "minItems": 1},
                    {
                        "type": "object",
                        "properties": {
                            "range": {
                                "type": "array",
                                "items": {"anyOf": [{"type": "integer"}, REFERENCE]},
                                "minItems": 2,
                                "maxItems": 3,
                                "description": "[start, stop] or [start, stop, step]; stop is exclusive.",
                            }
                        },
                        "required": ["range"],
                        "additionalProperties": False,
                    },
                    _source("glob", "The files matching this pattern (relative to the recipe), sorted."),
                    _source("lines", "One value per non-empty line of this file; '#' lines are comments."),
                    REFERENCE,
                ],
            },
            "matrix": matrix,
            "task": task,
        },
    }
