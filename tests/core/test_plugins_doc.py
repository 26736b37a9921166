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
