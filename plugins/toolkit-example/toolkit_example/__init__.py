"""An example toolkit plugin, from the public API only (see docs/plugins.md).

This module is the entry point: the hook implementations. A worker process imports it
too (it defines no task function, but the tasks' module is imported by name), so it
imports what the hooks need only when they are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import toolkit

if TYPE_CHECKING:
    import argparse

    from toolkit.plugin import ExecutorRegistry, SinkRegistry, TaskRegistry

__version__ = "0.1.0"


@toolkit.hookimpl
def toolkit_register_tasks(registry: TaskRegistry) -> None:
    from toolkit_example.tasks import power

    registry.add(power, name="example.power", version="1")


@toolkit.hookimpl
def toolkit_register_sinks(registry: SinkRegistry) -> None:
    from toolkit_example.sink import MarkdownSink, check_options

    registry.add("markdown", MarkdownSink, check_options=check_options)


@toolkit.hookimpl
def toolkit_register_executors(registry: ExecutorRegistry) -> None:
    from toolkit_example.executor import ChildrenExecutor

    registry.add("children", ChildrenExecutor, doc="a thread per worker, each driving a BatchProcess")


@toolkit.hookimpl
def toolkit_add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from toolkit_example.command import add_markdown_command

    add_markdown_command(subparsers)
