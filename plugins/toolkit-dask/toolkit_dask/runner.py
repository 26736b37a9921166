"""The runner process: started by a Dask worker, it runs batches with the toolkit's
own :class:`~toolkit.execution.worker.BatchRunner`.

``python -m toolkit_dask.runner CMD_FD MSG_FD SLOT_FD``. It reads ``(setup, limit)``
and then ``(batch, worker)`` pairs from ``CMD_FD`` (``worker`` names the Dask worker in
the records), sends every message ``BatchRunner`` emits
(and ``("end", instances run)`` after each batch) to ``MSG_FD``, and keeps the
instance it runs now in the four doubles at ``SLOT_FD`` (the same slot the pool's
supervisor reads), so that the Dask worker can stop an attempt that outlives its
timeout by killing this process's group. It imports the task modules; the Dask
worker never does. It exits when told, when its parent dies, after ``limit``
instances (``max_tasks_per_worker``), or after :data:`IDLE_EXIT` seconds without work.
"""

from __future__ import annotations

import mmap
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

#: four doubles: [batch id or -1, position, attempt, monotonic start]
SLOT_BYTES = 32
#: a runner nobody sends work to exits after this many seconds
IDLE_EXIT = 600.0


def _watch_parent() -> None:
    """Exit when the Dask worker that started this runner is gone (SIGKILL, a crash)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.25)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="toolkit-dask-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    cmd_fd, msg_fd, slot_fd = (int(a) for a in (argv if argv is not None else sys.argv[1:]))
    # Ctrl-C is for the toolkit run to decide; a timeout's SIGTERM ends this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _watch_parent()
    commands = Connection(cmd_fd, writable=False)
    messages = Connection(msg_fd, readable=False)
    slot = memoryview(mmap.mmap(slot_fd, SLOT_BYTES)).cast("d")
    try:
        setup, limit = commands.recv()
        from toolkit.execution.procs import export_cpus
        from toolkit.execution.worker import BatchRunner, load_setup

        export_cpus(1)  # before the tasks' modules load; each batch sets its task's

        runner = BatchRunner(setup, load_setup(setup), slot)
    except BaseException as exc:
        messages.send(("err", f"{type(exc).__name__}: {exc}\n{''.join(traceback.format_exception(exc))}"))
        return 1
    messages.send(("ready",))
    while True:
        if not commands.poll(IDLE_EXIT):
            return 0
        try:
            work = commands.recv()
        except (EOFError, OSError):
            return 0
        if work is None:
            return 0
        batch, runner.worker = work
        export_cpus(getattr(runner.tasks[batch.task].spec, "cpus", 1))
        runner.run(batch, messages.send, limit)
        messages.send(("end", runner.instances_run))
        if limit and runner.instances_run >= limit:
            return 0  # retire: the next batch gets a fresh runner


if __name__ == "__main__":
    sys.exit(main())
