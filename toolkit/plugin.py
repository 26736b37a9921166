"""Everything a plugin author uses, in one place: ``from toolkit.plugin import ...``.

docs/plugins.md documents each name. They live in the modules the engine uses and are
imported from there when first asked for, so that this module costs nothing: a worker
process imports a plugin's module for its task functions, and should not pay for the
executor interface or the recipe model it never uses. Types a module needs only for
its annotations are best imported under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

#: typing.TYPE_CHECKING without importing typing: worker processes may import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from toolkit import hookimpl as hookimpl
    from toolkit.context import TaskContext as TaskContext
    from toolkit.errors import PluginError as PluginError
    from toolkit.errors import ToolkitError as ToolkitError
    from toolkit.execution.api import Batch as Batch
    from toolkit.execution.api import Event as Event
    from toolkit.execution.api import Executor as Executor
    from toolkit.execution.api import ExecutorContext as ExecutorContext
    from toolkit.execution.api import Lost as Lost
    from toolkit.execution.api import Records as Records
    from toolkit.execution.api import Unfinished as Unfinished
    from toolkit.execution.api import WorkerError as WorkerError
    from toolkit.execution.api import WorkerSetup as WorkerSetup
    from toolkit.execution.plan import Plan as Plan
    from toolkit.execution.subproc import BatchOutcome as BatchOutcome
    from toolkit.execution.subproc import BatchProcess as BatchProcess
    from toolkit.recipe.model import Recipe as Recipe
    from toolkit.recipe.model import TaskSpec as TaskSpec
    from toolkit.records import FAILED_STATUSES as FAILED_STATUSES
    from toolkit.records import RECORD_FIELDS as RECORD_FIELDS
    from toolkit.records import STATUSES as STATUSES
    from toolkit.records import Instance as Instance
    from toolkit.records import Status as Status
    from toolkit.registry import ExecutorInfo as ExecutorInfo
    from toolkit.registry import ExecutorRegistry as ExecutorRegistry
    from toolkit.registry import SinkInfo as SinkInfo
    from toolkit.registry import SinkRegistry as SinkRegistry
    from toolkit.registry import TaskInfo as TaskInfo
    from toolkit.registry import TaskRegistry as TaskRegistry
    from toolkit.store.rundir import RunInfo as RunInfo
    from toolkit.store.rundir import Summary as Summary
    from toolkit.store.sinks import RecordBatch as RecordBatch
    from toolkit.store.sinks import Sink as Sink
    from toolkit.store.sinks import atomic_output as atomic_output

#: each public name, by the module that defines it
_WHERE = {
    "hookimpl": "toolkit",
    "TaskContext": "toolkit.context",
    "PluginError": "toolkit.errors",
    "ToolkitError": "toolkit.errors",
    "Batch": "toolkit.execution.api",
    "Event": "toolkit.execution.api",
    "Executor": "toolkit.execution.api",
    "ExecutorContext": "toolkit.execution.api",
    "Lost": "toolkit.execution.api",
    "Records": "toolkit.execution.api",
    "Unfinished": "toolkit.execution.api",
    "WorkerError": "toolkit.execution.api",
    "WorkerSetup": "toolkit.execution.api",
    "Plan": "toolkit.execution.plan",
    "BatchOutcome": "toolkit.execution.subproc",
    "BatchProcess": "toolkit.execution.subproc",
    "Recipe": "toolkit.recipe.model",
    "TaskSpec": "toolkit.recipe.model",
    "FAILED_STATUSES": "toolkit.records",
    "RECORD_FIELDS": "toolkit.records",
    "STATUSES": "toolkit.records",
    "Instance": "toolkit.records",
    "Status": "toolkit.records",
    "ExecutorInfo": "toolkit.registry",
    "ExecutorRegistry": "toolkit.registry",
    "SinkInfo": "toolkit.registry",
    "SinkRegistry": "toolkit.registry",
    "TaskInfo": "toolkit.registry",
    "TaskRegistry": "toolkit.registry",
    "RunInfo": "toolkit.store.rundir",
    "Summary": "toolkit.store.rundir",
    "RecordBatch": "toolkit.store.sinks",
    "Sink": "toolkit.store.sinks",
    "atomic_output": "toolkit.store.sinks",
}


__all__ = [
    "FAILED_STATUSES",
    "RECORD_FIELDS",
    "STATUSES",
    "Batch",
    "BatchOutcome",
    "BatchProcess",
    "Event",
    "Executor",
    "ExecutorContext",
    "ExecutorInfo",
    "ExecutorRegistry",
    "Instance",
    "Lost",
    "Plan",
    "PluginError",
    "Recipe",
    "RecordBatch",
    "Records",
    "RunInfo",
    "Sink",
    "SinkInfo",
    "SinkRegistry",
    "Status",
    "Summary",
    "TaskContext",
    "TaskInfo",
    "TaskRegistry",
    "TaskSpec",
    "ToolkitError",
    "Unfinished",
    "WorkerError",
    "WorkerSetup",
    "atomic_output",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'toolkit.plugin' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
