"""``ctx``, what a task function receives when it declares a ``ctx`` parameter.

Imported by worker processes, where the task runs: it imports no ``typing``, no attrs
and (until a task asks for ``ctx.logger``) no ``logging``.
"""

from __future__ import annotations

import os
import sys

from toolkit.store.names import SCRATCH, safe_name

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    import logging
    from pathlib import Path

__all__ = ["TaskContext"]


def _stderr_handler() -> logging.Handler:
    """A handler that writes to ``sys.stderr`` as it is when a line is logged (the
    instance's log). ``logging`` is imported here, by the first task that asks for
    ``ctx.logger``: the supervisor and every worker process are spared it (its memory
    makes every fork dearer, its import every spawned process slower)."""
    import logging

    class _CurrentStderr(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                sys.stderr.write(self.format(record) + "\n")
            except Exception:  # pragma: no cover
                self.handleError(record)

    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return handler


class TaskContext:
    """What a task receives as ``ctx``.

    ``instance`` (str)
        The instance id, e.g. ``fit[lr=0.1,seed=3]``: unique in the run.
    ``attempt`` (int)
        1 for the first attempt, 2 for the first retry, ...
    ``key`` (str)
        The instance's content key: the same for the same task, version and params
        in every run.
    ``run_dir`` (:class:`pathlib.Path`)
        The run directory (the current directory when the batch runs without one).
    ``scratch`` (:class:`pathlib.Path`)
        A directory of this instance's own, kept with the run (made when first used).
    ``logger`` (:class:`logging.Logger`)
        A logger whose lines go to the instance's log file, as its output does.
    """

    def __init__(self, instance: str, attempt: int, run_dir: str | Path, key: str = "") -> None:
        self.instance = instance
        self.attempt = attempt
        self.key = key
        self._run_dir = run_dir or os.getcwd()
        self._scratch: Path | None = None

    @property
    def run_dir(self) -> Path:
        """The run directory, as a path (made when asked: workers need no pathlib)."""
        from pathlib import Path

        if not isinstance(self._run_dir, Path):
            self._run_dir = Path(self._run_dir)
        return self._run_dir

    @property
    def scratch(self) -> Path:
        """A directory of this instance's own, kept with the run."""
        if self._scratch is None:
            self._scratch = self.run_dir / SCRATCH / safe_name(self.instance)
            self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    @property
    def logger(self) -> logging.Logger:
        """A logger whose lines go to the instance's log file."""
        import logging

        logger = logging.getLogger("toolkit.task")
        if not logger.handlers:
            logger.addHandler(_stderr_handler())
            logger.setLevel(logging.INFO)
            logger.propagate = False
        return logger

    def __repr__(self) -> str:
        return f"TaskContext(instance={self.instance!r}, attempt={self.attempt})"
