"""docs/plugins.md documents the plugin API that exists, all of it, and nothing else:
every hookspec (with its arguments), every public name of ``toolkit.plugin``, every
attribute of ``TaskContext``, the record fields, the executor protocol, the testing
kit's fixtures and the conformance suite's attributes, both ways."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import toolkit.plugin
import toolkit.testing
from toolkit import hookspecs
from toolkit.conformance import ExecutorConformance
from toolkit.context import TaskContext
from toolkit.execution.api import Executor
from toolkit.records import RECORD_FIELDS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()


def section(title: str) -> str:
    """The text under ``## title`` (or ``### title``), up to the next heading of its level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n(.*?)(?=^#{{1,%d}} |\Z)" % 2, DOC, re.M | re.S)
    assert match, f"no section {title!r} in docs/plugins.md"
    return match.group(2)


def table_names(text: str) -> list[str]:
    """The backticked names in the first column of the tables in ``text``."""
    names = []
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names += re.findall(r"`([A-Za-z_][\w.]*)", first)
    return names


def test_every_hookspec_is_documented_with_its_arguments_and_nothing_else():
    documented = dict(re.findall(r"^### `(toolkit_\w+)\(([^)]*)\)`$", DOC, re.M))
    specs = {
        name: ", ".join(inspect.signature(func).parameters)
        for name, func in vars(hookspecs).items()
        if name.startswith("toolkit_") and callable(func)
    }
    assert documented == specs


def test_every_public_name_is_documented_and_exists():
    documented = set(table_names(section("Types")))
    assert documented == set(toolkit.plugin.__all__)
    for name in documented:
        assert getattr(toolkit.plugin, name) is not None
    with pytest.raises(AttributeError):
        toolkit.plugin.nothing  # noqa: B018


def test_every_attribute_of_task_context_is_documented(tmp_path):
    ctx = TaskContext("t[x=1]", 1, tmp_path)
    public = {name for name in dir(ctx) if not name.startswith("_")}
    assert set(table_names(section("Tasks and `ctx`"))) == public


def test_the_record_fields_are_listed_in_order():
    listed = re.search(r"`RECORD_FIELDS`: (.*?)\.\n", section("Records"), re.S).group(1)
    assert re.findall(r"`(\w+)`", listed) == list(RECORD_FIELDS)


def test_the_executor_protocol_is_documented():
    methods = {
        name for name in vars(Executor) if not name.startswith("_") and callable(getattr(Executor, name))
    }
    assert set(table_names(section("Executors"))) == methods


def test_the_testing_kit_and_the_conformance_attributes_are_documented():
    fixtures = {name for name in toolkit.testing.__all__ if name.islower()}
    assert set(table_names(section("Testing kit: `toolkit.testing`"))) == fixtures
    attributes = {
        name
        for name, value in vars(ExecutorConformance).items()
        if not name.startswith("_") and not callable(value)
    }
    assert set(table_names(section("Conformance: `toolkit.conformance`"))) == attributes


def subsection(title: str) -> str:
    """The text under the heading ``title`` (any level), up to the next heading of its
    level or above."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", DOC, re.M)
    assert match, f"no section {title!r} in docs/plugins.md"
    level = len(match.group(1))
    rest = DOC[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def public_fields(cls: type) -> set[str]:
    """The fields, properties and methods of a public shape (attrs, named tuple, slots)."""
    import attrs

    if attrs.has(cls):
        names = {f.name for f in attrs.fields(cls)}
    elif hasattr(cls, "_fields"):
        names = set(cls._fields)
    else:
        names = set(getattr(cls, "__slots__", ())) | set(getattr(cls, "__annotations__", {}))
    names |= {n for n, v in vars(cls).items() if isinstance(v, property) or inspect.isfunction(v)}
    return {n for n in names if not n.startswith("_")}


#: where each shape a plugin receives or builds is described, field by field
SHAPES = {
    "ExecutorContext": "Executors",
    "Batch": "Executors",
    "Records": "Executors",
    "Unfinished": "Executors",
    "Lost": "Executors",
    "WorkerError": "Executors",
    "BatchProcess": "The building block: `BatchProcess`",
    "BatchOutcome": "The building block: `BatchProcess`",
    "RecordBatch": "Sinks",
    "Plan": "`toolkit_choose_executor(recipe, plan)`",
    "RunInfo": "`toolkit_run_start(run)`",
    "Instance": "`toolkit_task_start(instance)`",
    "Summary": "`toolkit_run_finish(run, summary)`",
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_field_of_a_public_shape_is_documented_where_it_is_described(name):
    text = subsection(SHAPES[name])
    assert f"`{name}`" in text or f"`{name}(" in text
    signature = re.search(rf"`{name}\(([^`]*)\)`", text)  # `Records(batch_id, consumed, ...)`
    listed = set(re.findall(r"\w+", signature.group(1))) if signature else set()
    fields = public_fields(getattr(toolkit.plugin, name))
    named = {field for field in fields if f"`{field}" in text or re.search(rf"\w\.{field}\b", text)}
    assert fields - listed - named == set()


def test_the_testing_kit_types_are_documented():
    types = {name for name in toolkit.testing.__all__ if not name.islower()}
    text = section("Types")
    assert {
        name for name in types if f"`{name}`" not in text and f"`toolkit.testing.{name}`" not in text
    } == set()
    for name in types:
        assert getattr(toolkit.testing, name) is not None


def test_the_user_documentation_stands_alone():
    """README, docs/ and the plugins' READMEs are the whole user documentation: they never
    send a reader to a specification or a folder users do not have."""
    root = Path(__file__).resolve().parents[2]
    pages = [
        root / "README.md",
        *sorted((root / "docs").rglob("*.md")),
        *sorted(root.glob("plugins/*/README.md")),
    ]
    pattern = re.compile(r"SPEC\.md|\bspecification\b|shared folder|\.\./shared\b", re.I)
    assert [
        f"{p.relative_to(root)}: {m.group(0)}" for p in pages for m in pattern.finditer(p.read_text())
    ] == []
