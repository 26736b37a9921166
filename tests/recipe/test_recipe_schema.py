"""``toolkit schema``: the JSON Schema accepts every example recipe and rejects wrong types.

jsonschema is not a dependency, so a small validator for exactly the keywords the
schema uses runs here; a meta-test keeps the schema inside that subset.
"""

from __future__ import annotations

import glob
import os
import re
import tomllib

import pytest

from toolkit.recipe import keys as K
from toolkit.recipe.schema import json_schema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPES = sorted(glob.glob(os.path.join(ROOT, "recipes", "*.toml")))

ANNOTATIONS = {"$schema", "title", "description", "default", "examples"}
KEYWORDS = {
    "type",
    "properties",
    "additionalProperties",
    "required",
    "items",
    "enum",
    "minimum",
    "pattern",
    "anyOf",
    "$ref",
    "minItems",
    "maxItems",
    "propertyNames",
    "minProperties",
    "$defs",
} | ANNOTATIONS


def _type_ok(kind: str, value) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
    }[kind]


def errors(schema, value, root=None, path="") -> list[str]:
    """Every way ``value`` breaks ``schema`` (the subset of draft 2020-12 in KEYWORDS)."""
    root = root if root is not None else schema
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return errors(target, value, root, path)
    out = []
    if "type" in schema and not _type_ok(schema["type"], value):
        return [f"{path}: not {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: not one of {schema['enum']}")
    if "minimum" in schema and _type_ok("number", value) and value < schema["minimum"]:
        out.append(f"{path}: below {schema['minimum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{path}: does not match {schema['pattern']}")
    if "anyOf" in schema and all(errors(s, value, root, path) for s in schema["anyOf"]):
        out.append(f"{path}: matches none of anyOf")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            out.append(f"{path}: wrong length")
        if "items" in schema:
            for i, item in enumerate(value):
                out += errors(schema["items"], item, root, f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{path}.{name}: required")
        if len(value) < schema.get("minProperties", 0):
            out.append(f"{path}: too few keys")
        for key, item in value.items():
            if "propertyNames" in schema:
                out += errors(schema["propertyNames"], key, root, f"{path}.{key} (name)")
            if key in props:
                out += errors(props[key], item, root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}.{key}: not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(schema["additionalProperties"], item, root, f"{path}.{key}")
    return out


def _keywords(schema, found):
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    _keywords(sub, found)
            elif key not in ANNOTATIONS | {"enum", "required", "pattern"}:
                _keywords(value, found)
    elif isinstance(schema, list):
        for item in schema:
            _keywords(item, found)
    return found


def test_schema_uses_only_what_the_test_validator_understands():
    assert _keywords(json_schema(), set()) <= KEYWORDS


def test_there_are_example_recipes():
    assert RECIPES


@pytest.mark.parametrize("path", RECIPES, ids=os.path.basename)
def test_every_example_recipe_validates(path):
    with open(path, "rb") as f:
        assert errors(json_schema(), tomllib.load(f)) == []


def test_the_starter_recipe_validates(tmp_path):
    from toolkit.builtin.commands.init import starter_files

    text = next(iter(starter_files(tmp_path / "x.toml").values()))
    assert errors(json_schema(), tomllib.loads(text)) == []


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        ('[run]\nworkers = "two"', ".run.workers"),
        ("[run]\nworkers = 0", ".run.workers"),
        ('[run]\nstart_method = "forks"', ".run.start_method"),
        ('[run]\ntimeout = "5 minutes"', ".run.timeout"),
        ("[run]\nwrokers = 2", ".run.wrokers"),
        ("[rnu]\nworkers = 2", ".rnu"),
        ('[recipe]\nname = "a/b"', ".recipe.name"),
        ('[[task]]\nname = "t"\nretries = "x"', ".task[0].retries"),
        ('[[task]]\nname = "t"\nmatrix = { x = [] }', ".task[0].matrix.x"),
        ('[[task]]\nname = "t"\nmatrix = { x = { range = [1] } }', ".task[0].matrix.x"),
        ('[[task]]\nuses = "shell"', ".task[0].name"),
        ('[[task]]\nname = "t"\nmatrix = { x = { glob = 3 } }', ".task[0].matrix.x"),
        ('[[task]]\nname = "t"\nmatrix = { x = { glob = "*", lines = "l" } }', ".task[0].matrix.x"),
        ('[[task]]\nname = "t"\nmatrix.include = { tsv = "j.tsv" }', ".task[0].matrix.include"),
        ('[[task]]\nname = "t"\nfiles = "a.csv"', ".task[0].files"),
        ('[run]\ncache = "yes"', ".run.cache"),
        ('[schedule]\ncatchup = "some"', ".schedule.catchup"),
    ],
)
def test_wrong_types_and_keys_are_rejected(toml, where):
    found = errors(json_schema(), tomllib.loads(toml))
    assert found and all(e.startswith(where) for e in found), found


def test_references_are_accepted_where_the_loader_resolves_them():
    toml = (
        '[run]\nworkers = "${vars.w}"\nkeep_going = "${env.KG}"\n[[task]]\nname = "t"\nuses = "x"\n'
        'matrix = { x = { range = [0, "${vars.n}"] }, y = "${vars.ys}" }'
    )
    assert errors(json_schema(), tomllib.loads(toml)) == []


def test_file_sources_and_file_keys_are_accepted():
    toml = (
        '[run]\nworkdir = "work"\ncache = true\n[[task]]\nname = "t"\nuses = "x"\ncache = false\n'
        'matrix = { path = { glob = "data/**/*.csv" }, w = { lines = "words.txt" }, include = { csv = "j.csv" } }\n'
        'files = ["data/${matrix.path}"]\noutputs = ["out/x"]\n'
        '[[task]]\nname = "u"\nuses = "x"\nmatrix.include = { jsonl = "j.jsonl" }'
    )
    assert errors(json_schema(), tomllib.loads(toml)) == []


def test_schema_describes_every_key_the_loader_knows():
    schema = json_schema()
    props = schema["properties"]
    assert set(props) == set(K.TOP)
    for table, keys in (("recipe", K.RECIPE), ("run", K.RUN), ("output", K.OUTPUT), ("schedule", K.SCHEDULE)):
        assert set(props[table]["properties"]) == set(keys)
        assert all(p["description"] for p in props[table]["properties"].values())
    assert set(schema["$defs"]["task"]["properties"]) == set(K.TASK)


def test_schedule_keys_match_the_schedule_module():
    from toolkit.schedule.spec import KEYS

    assert set(KEYS) == set(K.SCHEDULE)
