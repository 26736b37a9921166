"""Worker-side code: run a batch of instances and emit their records as JSON lines.

Runs in worker processes (any start method) and, for remote executors, on other
machines. It imports task functions by name; it never sees a plugin manager.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import random
import socket
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.execution.api import Batch, TaskRuntime, WorkerSetup
from toolkit.records import instance_key, utc_iso

#: flush records to the collector after this many, or this many seconds
FLUSH_RECORDS = 2048
FLUSH_SECONDS = 0.1

try:
    import resource

    _RSS_DIV = 1024 * 1024 if sys.platform == "darwin" else 1024

    def peak_rss_mib() -> float:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _RSS_DIV, 1)

except ImportError:  # pragma: no cover - not POSIX

    def peak_rss_mib() -> float:
        return 0.0


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, capped, jittered."""
    return min(0.1 * 2 ** (attempt - 1), 10.0) * (1.0 + random.uniform(0, 0.1))


def _json_default(obj: Any) -> Any:
    isoformat = getattr(obj, "isoformat", None)
    if isoformat is not None:  # TOML dates and times
        return isoformat()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


_encode = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode


def safe_name(instance_id: str) -> str:
    """An instance id made safe as a file name (``/`` and NUL replaced)."""
    return instance_id.replace(os.sep, "_").replace("\0", "_")[:200]


def error_dict(exc: BaseException) -> dict[str, str]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def make_record(
    *,
    task: str,
    instance: str,
    key: str,
    params: dict[str, Any],
    status: str,
    value: Any = None,
    error: dict[str, str] | None = None,
    attempts: int = 1,
    started: float | None = None,
    finished: float | None = None,
    worker: str | None = None,
    peak_rss: float | None = None,
) -> dict[str, Any]:
    """A result record, in the field order of ``results.jsonl``."""
    return {
        "task": task,
        "instance": instance,
        "key": key,
        "params": params,
        "status": status,
        "value": value,
        "error": error,
        "attempts": attempts,
        "started": utc_iso(started) if started else None,
        "finished": utc_iso(finished) if finished else None,
        "duration_s": round(finished - started, 6) if started and finished else None,
        "worker": worker,
        "peak_rss_mib": peak_rss,
    }


def encode_record(record: dict[str, Any]) -> tuple[str, str]:
    """``(json line, status)``; a value that cannot be encoded makes the record a failure."""
    try:
        return _encode(record), record["status"]
    except (TypeError, ValueError) as exc:
        record = dict(record)
        record["value"] = None
        record["status"] = "failed"
        record["error"] = {
            "type": "UnserialisableResult",
            "message": f"the task returned a value that cannot be written as JSON: {exc}",
            "traceback": "",
        }
        return _encode(record), "failed"


class _CurrentStderr(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover
            self.handleError(record)


class TaskContext:
    """What a task receives as ``ctx``: its instance id, attempt, scratch dir, logger."""

    def __init__(self, instance: str, attempt: int, run_dir: str, key: str = "") -> None:
        self.instance = instance
        self.attempt = attempt
        self.key = key
        self.run_dir = Path(run_dir) if run_dir else Path.cwd()
        self._scratch: Path | None = None

    @property
    def scratch(self) -> Path:
        """A directory of this instance's own, kept with the run."""
        if self._scratch is None:
            self._scratch = self.run_dir / "scratch" / safe_name(self.instance)
            self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    @property
    def logger(self) -> logging.Logger:
        """A logger whose lines go to the instance's log file."""
        logger = logging.getLogger("toolkit.task")
        if not logger.handlers:
            handler = _CurrentStderr()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
        return logger

    def __repr__(self) -> str:
        return f"TaskContext(instance={self.instance!r}, attempt={self.attempt})"


def load_setup(setup: WorkerSetup) -> tuple[TaskRuntime, ...]:
    """Import the plugin files, then the task functions by name."""
    from toolkit.manager import import_file_plugin

    for path in setup.files:
        import_file_plugin(path)
    return pickle.loads(setup.tasks_blob)


class BatchRunner:
    """Runs batches in this process. ``slot`` (4 shared doubles) tells the supervisor
    which instance runs now: ``[batch id, position, attempt, start time]``."""

    def __init__(self, setup: WorkerSetup, tasks: tuple[TaskRuntime, ...], slot: Any = None) -> None:
        self.setup = setup
        self.tasks = tasks
        self.slot = slot
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.logs = Path(setup.run_dir) / "logs" if setup.run_dir else None
        self.instances_run = 0

    def _write_log(self, instance: str, text: str) -> None:
        if self.logs is None or not text:
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{safe_name(instance)}.log", "a", encoding="utf-8") as f:
            f.write(text)

    def run(self, batch: Batch, emit: Callable[[tuple], None], limit: int = 0) -> int:
        """Run ``batch``; ``emit(("rec", batch_id, consumed, n, lines, bad, final, elapsed))``.

        Stops early after ``limit`` instances (0: no limit); returns positions consumed.
        """
        rt = self.tasks[batch.task]
        spec = rt.spec
        func = rt.func
        name, uses, version = spec.name, spec.uses, rt.version
        retries = spec.retries
        capture = self.setup.capture
        slot = self.slot
        inputs = batch.inputs
        lines: list[str] = []
        bad: list[tuple[int, str]] = []
        n = 0
        consumed = 0
        t_batch = time.monotonic()
        last_flush = time.time()
        worker = self.worker
        combo_of, params_for, id_of = spec.combo, spec.params_for, spec.instance_id
        for position, index in enumerate(batch.indices):
            combo = combo_of(index)
            if combo is None:  # excluded from the matrix
                consumed = position + 1
                continue
            params = params_for(combo)
            iid = id_of(combo)
            key = instance_key(name, uses, version, params)
            kwargs = params
            if rt.takes_inputs or rt.takes_ctx:
                kwargs = dict(params)
                if rt.takes_inputs:
                    kwargs["inputs"] = inputs if inputs is not None else []
            attempt = batch.attempt
            log_parts: list[str] = []
            while True:
                if slot is not None:
                    slot[1] = position
                    slot[2] = attempt
                    slot[3] = time.monotonic()
                    slot[0] = batch.id
                if rt.takes_ctx:
                    kwargs["ctx"] = TaskContext(iid, attempt, self.setup.run_dir, key)
                error = None
                value = None
                if capture:
                    out = io.StringIO()
                    saved = sys.stdout, sys.stderr
                    sys.stdout = sys.stderr = out
                started = time.time()
                try:
                    value = func(**kwargs)
                    status = "ok"
                except BaseException as exc:  # a task's SystemExit is its failure too
                    status = "failed"
                    error = error_dict(exc)
                finished = time.time()
                if capture:
                    sys.stdout, sys.stderr = saved
                    text = out.getvalue()
                    if text or error:
                        if attempt > batch.attempt or error:
                            log_parts.append(f"--- {iid} attempt {attempt} ---\n")
                        log_parts.append(text)
                        if error:
                            log_parts.append(error["traceback"])
                if status == "ok" or attempt > retries:
                    break
                time.sleep(backoff(attempt))
                attempt += 1
            if slot is not None:
                slot[0] = -1.0
            record = make_record(
                task=name,
                instance=iid,
                key=key,
                params=params,
                status=status,
                value=value,
                error=error,
                attempts=attempt,
                started=started,
                finished=finished,
                worker=worker,
                peak_rss=peak_rss_mib(),
            )
            line, status = encode_record(record)
            if status != "ok":
                bad.append((index, status))
            if log_parts:
                self._write_log(iid, "".join(log_parts))
            lines.append(line)
            n += 1
            consumed = position + 1
            self.instances_run += 1
            if limit and self.instances_run >= limit and consumed < len(batch.indices):
                break
            if n >= FLUSH_RECORDS or finished - last_flush > FLUSH_SECONDS:
                emit(("rec", batch.id, consumed, n, _join(lines), tuple(bad), False, 0.0))
                lines, bad, n = [], [], 0
                last_flush = finished
        final = consumed >= len(batch.indices)
        emit(("rec", batch.id, consumed, n, _join(lines), tuple(bad), final, time.monotonic() - t_batch))
        return consumed


def _join(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode() if lines else b""
