"""What a worker receives: :class:`WorkerSetup` (with the task table), :class:`Batch`.

Part of the executor interface (:mod:`toolkit.execution.api` exports them); kept apart
so that a worker process, which unpickles these, imports neither attrs nor the rest of
the interface. They are named tuples (``collections.namedtuple``: ``typing`` is not imported
in a worker): immutable, compared by value, picklable, and changed with ``_replace``
(``copy.replace`` on Python 3.13). The task table holds each
task as a :class:`~toolkit.recipe.instances.TaskView` (``TaskSpec.for_worker()``).
"""

from __future__ import annotations

import os
import pickle
from collections import namedtuple

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any, NamedTuple

    # what type checkers see of the named tuples below (plugins' executors use them):
    # the same fields, typed; at run time they are collections.namedtuple classes
    class _WorkerSetupFields(NamedTuple):
        files: tuple[str, ...] = ()
        tasks_blob: bytes = b""
        run_dir: str = ""
        capture: bool = True
        workdir: str = ""
        recipe_dir: str = ""

    class _BatchFields(NamedTuple):
        id: int
        task: int
        indices: range | tuple[int, ...]
        attempt: int = 1
        inputs: list[dict[str, Any]] | None = None
        isolate: bool = False

else:
    _WorkerSetupFields = namedtuple(
        "WorkerSetup",
        "files tasks_blob run_dir capture workdir recipe_dir",
        defaults=((), b"", "", True, "", ""),
    )
    _BatchFields = namedtuple("Batch", "id task indices attempt inputs isolate", defaults=(1, None, False))


class TaskRuntime(
    namedtuple("TaskRuntime", "spec func version takes_ctx takes_inputs", defaults=(None, False, False))
):
    """What a worker needs to run one recipe task: ``spec`` (a ``TaskSpec``, a
    ``TaskView`` in workers), ``func`` (pickled by reference), ``version`` (str or
    None), whether ``func`` takes ``ctx`` and ``inputs``."""

    __slots__ = ()

    def for_worker(self) -> TaskRuntime:
        """This task as the task table holds it: its spec as ``spec.for_worker()`` gives it
        (a :class:`~toolkit.recipe.instances.TaskView` for a ``TaskSpec``), when it can."""
        to_view = getattr(self.spec, "for_worker", None)
        return self if to_view is None else self._replace(spec=to_view())


class WorkerSetup(_WorkerSetupFields):
    """Sent once to every worker: the plugin ``files`` to import, the task table
    (``tasks_blob``: pickled apart, since the files that define the task functions must
    be imported before it can be unpickled), ``run_dir`` (str), ``capture`` (bool),
    ``workdir`` (the directory every instance starts in; "" for the worker's own) and
    ``recipe_dir`` (the recipe's directory: declared files are relative to it, and
    the ``python`` task imports from it; "" for none). Paths are absolute."""

    __slots__ = ()

    @classmethod
    def build(
        cls,
        files: Sequence[str],
        tasks: Sequence[TaskRuntime],
        run_dir: Path | str,
        *,
        workdir: Path | str = "",
        recipe_dir: Path | str = "",
    ) -> WorkerSetup:
        """The set-up of a run: ``tasks`` as workers receive them (``for_worker()``).
        Relative paths are made absolute here, against the current directory, so that a
        task that changes directory moves nothing."""

        def absolute(path: Path | str) -> str:
            return os.path.abspath(path) if str(path) else ""

        table = tuple(rt.for_worker() if isinstance(rt, TaskRuntime) else rt for rt in tasks)
        return cls(
            files=tuple(files),
            tasks_blob=pickle.dumps(table),
            run_dir=absolute(run_dir),
            workdir=absolute(workdir),
            recipe_dir=absolute(recipe_dir),
        )


class Batch(_BatchFields):
    """Instances of one task, by index (``indices``: a range or a tuple), at one
    ``attempt``: ``id`` (int), ``task`` (its position in the recipe), ``inputs`` (the
    values of the tasks it needs, or None), ``isolate`` (bool)."""

    __slots__ = ()
