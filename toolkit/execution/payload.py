"""What a worker receives: :class:`WorkerSetup` (with the task table), :class:`Batch`.

Part of the executor interface (:mod:`toolkit.execution.api` exports them); kept apart
so that a worker process, which unpickles these, imports neither attrs nor the rest of
the interface. They are named tuples: immutable, compared by value, picklable, and
changed with ``_replace`` (``copy.replace`` on Python 3.13). The task table holds each
task as a :class:`~toolkit.recipe.instances.TaskView` (``TaskSpec.for_worker()``).
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


class TaskRuntime(NamedTuple):
    """What a worker needs to run one recipe task. Pickled by reference: ``func`` by name."""

    spec: Any  # toolkit.recipe.model.TaskSpec (a TaskView in workers)
    func: Any
    version: str | None = None
    takes_ctx: bool = False
    takes_inputs: bool = False

    def for_worker(self) -> TaskRuntime:
        """This task as the task table holds it: its spec as ``spec.for_worker()`` gives it
        (a :class:`~toolkit.recipe.instances.TaskView` for a ``TaskSpec``), when it can."""
        to_view = getattr(self.spec, "for_worker", None)
        return self if to_view is None else self._replace(spec=to_view())


class WorkerSetup(NamedTuple):
    """Sent once to every worker. ``tasks`` is pickled separately: the plugin files that
    define the task functions must be imported (``files``) before it can be unpickled."""

    files: tuple[str, ...] = ()
    tasks_blob: bytes = b""
    run_dir: str = ""
    capture: bool = True

    @classmethod
    def build(cls, files: Sequence[str], tasks: Sequence[TaskRuntime], run_dir: Path | str) -> WorkerSetup:
        """The set-up of a run: ``tasks`` as workers receive them (``for_worker()``)."""
        table = tuple(rt.for_worker() if isinstance(rt, TaskRuntime) else rt for rt in tasks)
        return cls(files=tuple(files), tasks_blob=pickle.dumps(table), run_dir=str(run_dir))


class Batch(NamedTuple):
    """Instances of one task, by index, at one attempt number."""

    id: int
    task: int  # position of the task in the recipe
    indices: range | tuple[int, ...]
    attempt: int = 1
    inputs: list[dict[str, Any]] | None = None
    isolate: bool = False
