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
from toolkit.records import json_encoder, key_maker, utc_iso

#: flush records to the collector after this many, or this many seconds
FLUSH_RECORDS = 2048
FLUSH_SECONDS = 0.1
#: a record's ``peak_rss_mib`` is read after its instance, except that instances shorter
#: than this share one reading taken at most this many seconds before they finished (a
#: syscall per instance was a fifth of the cost of a tiny task; a worker cannot touch
#: more than a few MiB of new memory in a millisecond)
RSS_EVERY = 0.001

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


_encode = json_encoder(default=_json_default)
_encode_str = json.encoder.encode_basestring  # what _encode does to a str, minus the call


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


#: tasks already loaded in this process, by their pickled form: a worker forked from a
#: process that loaded them (the supervisor does, before it forks) finds them here
_loaded: dict[bytes, tuple[TaskRuntime, ...]] = {}


def load_setup(setup: WorkerSetup) -> tuple[TaskRuntime, ...]:
    """Import the plugin files, then the task functions by name."""
    tasks = _loaded.get(setup.tasks_blob)
    if tasks is not None:
        return tasks
    from toolkit.manager import import_file_plugin

    for path in setup.files:
        import_file_plugin(path)
    tasks = _loaded[setup.tasks_blob] = pickle.loads(setup.tasks_blob)
    return tasks


def instances_of(spec: Any, indices: Any) -> Any:
    """``(position, index, params, instance id)`` for each of ``indices`` of a task, in
    order; an index the matrix excludes gives ``(position, index, None, None)``.

    A task spec with an ``instances(indices)`` method of that shape (a faster expansion
    of a whole batch) is used as it is; otherwise ``combo``, ``params_for`` and
    ``instance_id`` are called per index."""
    fast = getattr(spec, "instances", None)
    if fast is not None:
        return fast(indices)
    return _instances(spec, indices)


def _instances(spec: Any, indices: Any) -> Any:
    combo_of, params_for, id_of = spec.combo, spec.params_for, spec.instance_id
    for position, index in enumerate(indices):
        combo = combo_of(index)
        if combo is None:
            yield position, index, None, None
        else:
            yield position, index, params_for(combo), id_of(combo)


_host: list[str] = []


def _hostname() -> str:
    """This machine's name, asked once per process tree (forked workers inherit it)."""
    if not _host:
        _host.append(socket.gethostname())
    return _host[0]


class BatchRunner:
    """Runs batches in this process. ``slot`` (4 shared doubles) tells the supervisor
    which instance runs now: ``[batch id, position, attempt, start time]``."""

    def __init__(self, setup: WorkerSetup, tasks: tuple[TaskRuntime, ...], slot: Any = None) -> None:
        self.setup = setup
        self.tasks = tasks
        self.slot = slot
        self.worker = f"{_hostname()}:{os.getpid()}"
        self.logs = Path(setup.run_dir) / "logs" if setup.run_dir else None
        self.instances_run = 0
        self._per_task: dict[int, tuple[Any, str]] = {}

    def _task_consts(self, task: int) -> tuple[Any, str]:
        """(key maker, the start of an ok record's line up to its instance) of a task."""
        consts = self._per_task.get(task)
        if consts is None:
            rt = self.tasks[task]
            head = '{"task": ' + _encode_str(rt.spec.name) + ', "instance": '
            consts = self._per_task[task] = (key_maker(rt.spec.name, rt.spec.uses, rt.version), head)
        return consts

    def _write_log(self, instance: str, text: str) -> None:
        if self.logs is None or not text:
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{safe_name(instance)}.log", "a", encoding="utf-8") as f:
            f.write(text)

    def run(self, batch: Batch, emit: Callable[[tuple], None], limit: int = 0) -> int:
        """Run ``batch``; ``emit(("rec", batch_id, consumed, n, lines, bad, final, elapsed))``.

        Stops early after ``limit`` instances (0: no limit); returns positions consumed.

        This loop is the per-instance cost of every executor, so it is written for speed:
        an ok record's line is formatted directly, byte for byte what ``encode_record``
        makes of ``make_record(...)`` (which every other record still goes through; see
        tests/core/test_worker_encoding.py), with the per-task parts encoded once.
        """
        rt = self.tasks[batch.task]
        spec = rt.spec
        func = rt.func
        name = spec.name
        key_of, head = self._task_consts(batch.task)
        retries = spec.retries
        capture = self.setup.capture
        slot = self.slot
        inputs = batch.inputs
        takes_ctx, takes_inputs = rt.takes_ctx, rt.takes_inputs
        lines: list[str] = []
        bad: list[tuple[int, str]] = []
        n = 0
        consumed = 0
        monotonic, now = time.monotonic, time.time
        t_batch = monotonic()
        last_flush = now()
        worker = self.worker
        worker_js = _encode_str(worker)
        encode, encode_str = _encode, _encode_str
        rss_now = peak_rss_mib
        peak, peak_at = 0.0, -1.0
        day_sec, day_text = -1, ""  # the last whole second formatted, for utc_iso's work inline
        StringIO = io.StringIO
        batch_id = float(batch.id)
        total = len(batch.indices)
        for position, index, params, iid in instances_of(spec, batch.indices):
            if params is None:  # excluded from the matrix
                consumed = position + 1
                continue
            key = key_of(params)
            kwargs = params
            if takes_inputs or takes_ctx:
                kwargs = dict(params)
                if takes_inputs:
                    kwargs["inputs"] = inputs if inputs is not None else []
            attempt = batch.attempt
            log_parts: list[str] = []
            while True:
                if slot is not None:
                    slot[1] = position
                    slot[2] = attempt
                    slot[3] = monotonic()
                    slot[0] = batch_id
                if takes_ctx:
                    kwargs["ctx"] = TaskContext(iid, attempt, self.setup.run_dir, key)
                error = None
                value = None
                if capture:
                    out = StringIO()
                    saved = sys.stdout, sys.stderr
                    sys.stdout = sys.stderr = out
                started = now()
                try:
                    value = func(**kwargs)
                    status = "ok"
                except BaseException as exc:  # a task's SystemExit is its failure too
                    status = "failed"
                    error = error_dict(exc)
                finished = now()
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
            if finished - peak_at >= RSS_EVERY or finished - started >= RSS_EVERY:
                peak, peak_at = rss_now(), finished
            line = None
            if status == "ok":
                # utc_iso(started) and utc_iso(finished), the same text, inline
                sec_s = int(started)
                if sec_s != day_sec:
                    day_sec, day_text = sec_s, utc_iso(sec_s)[:-8]
                iso_s = f"{day_text}.{int((started - sec_s) * 1_000_000):06d}Z"
                sec_f = int(finished)
                if sec_f != day_sec:
                    day_sec, day_text = sec_f, utc_iso(sec_f)[:-8]
                iso_f = f"{day_text}.{int((finished - sec_f) * 1_000_000):06d}Z"
                try:
                    kind = type(value)  # the JSON of an int is its repr, of a str encode_str's
                    value_js = (
                        repr(value) if kind is int else encode_str(value) if kind is str else encode(value)
                    )
                    line = (
                        f'{head}{encode_str(iid)}, "key": "{key}", "params": {encode(params)}, '
                        f'"status": "ok", "value": {value_js}, "error": null, "attempts": {attempt}, '
                        f'"started": "{iso_s}", "finished": "{iso_f}", '
                        f'"duration_s": {round(finished - started, 6)!r}, "worker": {worker_js}, '
                        f'"peak_rss_mib": {peak!r}}}'
                    )
                except (TypeError, ValueError):
                    line = None  # the general path below makes it a failed record
            if line is None:
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
                    peak_rss=peak,
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
            if limit and self.instances_run >= limit and consumed < total:
                break
            if n >= FLUSH_RECORDS or finished - last_flush > FLUSH_SECONDS:
                emit(("rec", batch.id, consumed, n, _join(lines), tuple(bad), False, 0.0))
                lines, bad, n = [], [], 0
                last_flush = finished
        final = consumed >= total
        emit(("rec", batch.id, consumed, n, _join(lines), tuple(bad), final, monotonic() - t_batch))
        return consumed


def _join(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode() if lines else b""
