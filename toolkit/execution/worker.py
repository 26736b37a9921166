"""Worker-side code: run a batch of instances and emit their records as JSON lines.

The shapes it works with are public and live elsewhere: ``ctx`` in
:mod:`toolkit.context`, the record schema in :mod:`toolkit.records`, instance log names
in :mod:`toolkit.store.names`. This module holds the batch loop and :func:`load_setup`.

Runs in worker processes (any start method) and, for remote executors, on other
machines. It imports task functions by name; it never sees a plugin manager.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import socket
import sys
import time
from collections.abc import Callable

# a worker under spawn is a fresh interpreter: what it imports here counts for every
# process of the ``process`` executor (no attrs, no hashlib and OpenSSL, and random
# and traceback only when an attempt fails)
from toolkit.context import TaskContext
from toolkit.recipe.masking import mask, mask_text
from toolkit.records import (
    ParamsText,
    Status,
    blake2b,
    encode_json,
    encode_record,
    error_dict,
    key_maker,
    make_record,
    utc_iso,
)
from toolkit.store.names import LOGS, log_name

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from toolkit.execution.payload import Batch, TaskRuntime, WorkerSetup

OK, FAILED = Status.OK, Status.FAILED

#: flush records to the collector after this many, or this many seconds
FLUSH_RECORDS = 2048
FLUSH_SECONDS = 0.1
#: a record's ``peak_rss_mib`` is read after its instance, except that instances shorter
#: than this share one reading taken at most this many seconds before they finished (a
#: syscall per instance was a fifth of the cost of a tiny task; a worker cannot touch
#: more than a few MiB of new memory in a millisecond)
RSS_EVERY = 0.001
#: an instance shorter than this started no process (a fork alone takes longer), so the
#: check for processes it left behind (a system call, a few µs: a tiny task's whole cost)
#: is skipped; the worker checks again after each batch anyway
END_AFTER = 0.0001

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
    import random

    return min(0.1 * 2 ** (attempt - 1), 10.0) * (1.0 + random.uniform(0, 0.1))


_encode = encode_json
_encode_str = json.encoder.encode_basestring  # what _encode does to a str, minus the call


#: tasks already loaded in this process, by their pickled form: a worker forked from a
#: process that loaded them (the supervisor does, before it forks) finds them here
_loaded: dict[bytes, tuple[TaskRuntime, ...]] = {}


def load_setup(setup: WorkerSetup) -> tuple[TaskRuntime, ...]:
    """Import the plugin files, then the task functions by name."""
    tasks = _loaded.get(setup.tasks_blob)
    if tasks is not None:
        return tasks
    from toolkit.plugin_files import import_file_plugin

    for path in setup.files:
        import_file_plugin(path)
    tasks = _loaded[setup.tasks_blob] = pickle.loads(setup.tasks_blob)
    return tasks


_host: list[str] = []


def _hostname() -> str:
    """This machine's name, asked once per process tree (forked workers inherit it)."""
    if not _host:
        _host.append(socket.gethostname())
    return _host[0]


#: set when this process changes its working directory (by the audit hook of
#: :func:`_watch_cwd`); the batch loop then moves back to the workdir before the next
#: attempt. Watching costs nothing per instance; asking the kernel (getcwd, or an
#: fchdir after every instance) would cost 0.5-0.9 us, a fifth of a tiny task.
_moved = [False]


def _watch_cwd() -> list[bool]:
    """``_moved``, once an audit hook sets it on ``os.chdir`` and ``os.fchdir`` (both
    raise the ``os.chdir`` event; ``contextlib.chdir`` calls them). Installed once per
    process, only where a workdir is set: an audit hook cannot be removed."""
    if not _watching:

        def hook(event: str, args: tuple, moved: list[bool] = _moved) -> None:
            if event == "os.chdir":
                moved[0] = True

        sys.addaudithook(hook)
        _watching.append(hook)
    return _moved


_watching: list[Any] = []


def missing_output(outputs_of: Any, params: dict[str, Any], root: str) -> dict[str, str] | None:
    """The error of an attempt that succeeded without making one of its declared
    outputs (``outputs_of(params)``, relative to ``root``, the recipe's directory);
    None when all exist."""
    try:
        paths = outputs_of(params)
    except Exception as exc:  # ${matrix.X} of a key this instance lacks
        return error_dict(exc)
    for path in paths:
        if not os.path.exists(os.path.join(root, path)):
            message = f"the task succeeded but its declared output {path} does not exist"
            return {"type": "MissingOutput", "message": message, "traceback": f"MissingOutput: {message}\n"}
    return None


#: the tasks' constants of every BatchRunner of this process, by the tasks (kept alive)
_per_task: dict[int, tuple[tuple[TaskRuntime, ...], dict[int, tuple[Any, ...]]]] = {}


class BatchRunner:
    """Runs batches in this process. ``slot`` (4 shared doubles) tells the supervisor
    which instance runs now: ``[batch id, position, attempt, start time]``; the batch id
    is set last when an attempt starts (a one-instance process's slot, a pipe, sends the
    four then), and to -1 when the instance is done."""

    def __init__(self, setup: WorkerSetup, tasks: tuple[TaskRuntime, ...], slot: Any = None) -> None:
        self.setup = setup
        self.tasks = tasks
        self.slot = slot
        self.worker = f"{_hostname()}:{os.getpid()}"
        self._logs: Path | None = None
        # the workdir, made if missing; moved to by name, not through a descriptor kept
        # open (a task may close every descriptor), and only per batch or after a task
        # moved away, so a lookup by name costs nothing that counts
        self._workdir: str | None = getattr(setup, "workdir", "") or None
        if self._workdir is not None:
            os.makedirs(self._workdir, exist_ok=True)
        self.instances_run = 0
        #: set by workers that contain their tasks: ends what an instance left running
        self.end_descendants: Callable[[], None] | None = None
        # the tasks' constants are shared by the runners of a process, so that a process
        # forked for one instance finds those its parent made (prepare)
        shared = _per_task.get(id(tasks))
        if shared is None or shared[0] is not tasks:
            shared = _per_task[id(tasks)] = (tasks, {})
        self._per_task: dict[int, tuple[Any, ...]] = shared[1]

    def prepare(self) -> None:
        """Make the constants of every task now: the supervisor does before it forks
        one-instance processes (so that each does not make them again)."""
        for task in range(len(self.tasks)):
            self._task_consts(task)

    @property
    def logs(self) -> Path | None:
        """The folder of the instances' log files (made when there is one to write)."""
        if self._logs is None and self.setup.run_dir:
            from pathlib import Path  # here: a spawned worker that writes no log needs none

            self._logs = Path(self.setup.run_dir) / LOGS
        return self._logs

    def _task_consts(self, task: int) -> tuple[Any, str, ParamsText | None]:
        """(key maker, the start of an ok record's line up to its instance, the params'
        texts when the spec says how its params are made) of a task."""
        consts = self._per_task.get(task)
        if consts is None:
            rt = self.tasks[task]
            spec = rt.spec
            head = '{"task": ' + _encode_str(spec.name) + ', "instance": '
            layout = getattr(spec, "params_layout", None)
            layout = layout() if layout is not None else None
            text = None
            if layout is not None:
                text = ParamsText.make(spec.name, spec.uses, rt.version, *layout, _encode)
            consts = self._per_task[task] = (key_maker(spec.name, spec.uses, rt.version), head, text)
        return consts

    def _write_log(self, instance: str, text: str) -> None:
        if not text or self.logs is None:
            return
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            # text UTF-8 cannot encode (a lone surrogate a task printed) written escaped
            with open(self.logs / log_name(instance), "a", encoding="utf-8", errors="backslashreplace") as f:
                f.write(text)
        except OSError:
            # a full disk or the file size limit: the log loses this text, the instance
            # keeps its record; the supervisor, whose writes fail too, ends the run
            pass

    def run(self, batch: Batch, emit: Callable[[tuple], None], limit: int = 0) -> int:
        """Run ``batch``; ``emit(("rec", batch_id, consumed, n, lines, bad, final, elapsed))``.

        Stops early after ``limit`` instances (0: no limit); returns positions consumed.

        This loop is the per-instance cost of every executor, so it is written for speed:
        an ok record's line is formatted directly, byte for byte what ``encode_record``
        makes of ``make_record(...)`` (which every other record still goes through; see
        tests/core/test_worker_encoding.py), with the per-task parts encoded once, the
        params' JSON and content key filled in from texts made once per task where the
        spec says how its params are made (``ParamsText``), and the output of the batch
        captured in one buffer that is read (and emptied) after each instance that wrote.
        """
        rt = self.tasks[batch.task]
        spec = rt.spec
        func = rt.func
        name = spec.name
        root = getattr(self.setup, "recipe_dir", "")
        outputs_of = spec.output_files if getattr(spec, "outputs", None) else None
        key_of, head, ptext = self._task_consts(batch.task)
        one = None
        # a task whose params hold a secret takes the general path, which masks it in
        # params, key, value, error and log (see shown_params); the fast path stays as it is
        secrets = getattr(spec, "secrets", ())
        if secrets:
            ptext = None
        if ptext is not None:
            pnames = ptext.names
            p_format, k_format = ptext.params.format, ptext.key.format
            # the content key's hash: a copy of a hasher set up once (and, for one name,
            # fed the text before the value) costs less than a new one
            if len(pnames) == 1:
                one = pnames[0]
                p_before, p_after, k_before, k_after = ptext.pieces
                key_hasher = blake2b(k_before.encode(), digest_size=10).copy
            else:
                key_hasher = blake2b(digest_size=10).copy
        retries = spec.retries
        status_ok, status_failed = OK, FAILED  # locals: the loop reads them per instance
        capture = self.setup.capture
        slot = _slot_view(self.slot)
        slot_attempt = slot[2]
        inputs = batch.inputs
        takes_ctx, takes_inputs = rt.takes_ctx, rt.takes_inputs
        lines: list[str] = []
        add_line = lines.append
        bad: list[tuple[int, str]] = []
        made = flushed = 0  # records made in this batch, and emitted
        ran = self.instances_run
        monotonic, now = time.monotonic, time.time
        t_batch = monotonic()
        flush_at, flush_time = FLUSH_RECORDS, now() + FLUSH_SECONDS
        worker = self.worker
        worker_js = _encode_str(worker)
        encode, encode_str = _encode, _encode_str
        rss_now, rss_every = peak_rss_mib, RSS_EVERY
        end_descendants = self.end_descendants
        peak, peak_js, rss_next = 0.0, "0.0", 0.0
        # the whole second formatted last, as floats (comparisons with floats cost less)
        day_lo, day_hi, day_text = 0.0, 0.0, ""
        durations = _durations
        first_attempt = batch.attempt
        batch_id = float(batch.id)
        total = len(batch.indices)
        consumed = 0
        # instances start in the workdir; the directory this batch started in is back
        # when it ends (a runner may run in a process that goes on, a test's say)
        workdir = self._workdir
        home = None
        moved = [False]
        if workdir is not None:
            moved = _watch_cwd()
            try:
                home = os.getcwd()
            except OSError:  # a directory since removed: nowhere to go back to
                home = None
            os.chdir(workdir)
            moved[0] = False
        if root and root not in sys.path:
            # after the installed packages: a file beside the recipe shadows none
            sys.path.append(root)
        if capture:
            out = io.StringIO()
            saved = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = out
        try:
            for position, index, params, iid in spec.instances(batch.indices):
                if params is None:  # excluded from the matrix
                    continue
                params_js = None
                if one is not None:  # the params' JSON and key from the task's texts
                    v = params[one]
                    kind = type(v)
                    if kind is int or kind is str:
                        v = repr(v) if kind is int else encode_str(v)
                        params_js = f"{p_before}{v}{p_after}"
                        hasher = key_hasher()
                        hasher.update(f"{v}{k_after}".encode())
                        key = hasher.hexdigest()
                elif ptext is not None:
                    vs = []
                    for pname in pnames:
                        v = params[pname]
                        kind = type(v)
                        if kind is int:
                            vs.append(repr(v))
                        elif kind is str:
                            vs.append(encode_str(v))
                        else:
                            break
                    else:
                        params_js = p_format(*vs)
                        hasher = key_hasher()
                        hasher.update(k_format(*vs).encode())
                        key = hasher.hexdigest()
                if params_js is None:
                    key = key_of(spec.shown_params(params) if secrets else params)
                kwargs = params
                if takes_inputs or takes_ctx:
                    kwargs = dict(params)
                    if takes_inputs:
                        kwargs["inputs"] = inputs if inputs is not None else []
                attempt = first_attempt
                log_parts: list[str] | None = None
                while True:
                    slot[1] = position
                    if attempt != slot_attempt:
                        slot[2] = slot_attempt = attempt
                    slot[3] = monotonic()
                    slot[0] = batch_id
                    if takes_ctx:
                        kwargs["ctx"] = TaskContext(iid, attempt, self.setup.run_dir, key)
                    started = now()
                    try:
                        value = func(**kwargs)
                    except BaseException as exc:  # a task's SystemExit is its failure too
                        value = None
                        status = status_failed
                        error = error_dict(exc)
                    else:
                        status = status_ok
                        error = None
                        if outputs_of is not None:
                            error = missing_output(outputs_of, params, root)
                            if error is not None:
                                value, status = None, FAILED
                    finished = now()
                    if moved[0]:  # the task changed directory: back to the workdir
                        os.chdir(workdir)  # type: ignore[arg-type]
                        moved[0] = False
                    if capture and (
                        out.tell() or error is not None or sys.stdout is not out or sys.stderr is not out
                    ):
                        text = ""
                        if out.tell():
                            text = out.getvalue()
                            out.seek(0)
                            out.truncate()
                        if sys.stdout is not out or sys.stderr is not out:  # the task replaced them
                            sys.stdout = sys.stderr = out
                        if text or error:
                            if log_parts is None:
                                log_parts = []
                            if attempt > first_attempt or error:
                                log_parts.append(f"--- {iid} attempt {attempt} ---\n")
                            log_parts.append(text)
                            if error:
                                log_parts.append(error["traceback"])
                    if error is None or attempt > retries:
                        break
                    time.sleep(backoff(attempt))
                    attempt += 1
                slot[0] = -1.0
                duration = finished - started
                if end_descendants is not None and duration >= END_AFTER:
                    end_descendants()
                if duration >= rss_every or finished >= rss_next:
                    peak = rss_now()
                    peak_js, rss_next = repr(peak), finished + rss_every
                line = None
                if error is None and not secrets:
                    # utc_iso(started) and utc_iso(finished), the same text, inline ("%06d"
                    # truncates as int() does, and costs less than an f-string's ":06d")
                    if not day_lo <= started < day_hi:
                        sec = int(started)
                        day_lo, day_hi, day_text = float(sec), float(sec + 1), utc_iso(sec)[:-8]
                    s_lo, s_text = day_lo, day_text
                    if not day_lo <= finished < day_hi:
                        sec = int(finished)
                        day_lo, day_hi, day_text = float(sec), float(sec + 1), utc_iso(sec)[:-8]
                    # repr(round(duration, 6)), remembered: a short duration is a multiple of
                    # the clock's step, so the same few values come again and again
                    duration_js = durations.get(duration)
                    if duration_js is None:
                        duration_js = repr(round(duration, 6))
                        if len(durations) < 4096:
                            durations[duration] = duration_js
                    # the JSON of an int or a finite float is its repr, of a str encode_str's
                    kind = type(value)
                    try:
                        if kind is int:
                            value_js = repr(value)
                        elif kind is str:
                            value_js = encode_str(value)
                            if not value.isascii():  # (a flag: no scan) a lone surrogate raises
                                value.encode()
                        elif kind is float and -_INF < value < _INF:
                            value_js = repr(value)
                        elif value is None:
                            value_js = "null"
                        else:  # NaN and infinities raise: the general path writes them
                            value_js = encode(value)
                            if not value_js.isascii():
                                value_js.encode()
                        if params_js is None:
                            params_js = encode(params)
                        line = (
                            f'{head}{encode_str(iid)}, "key": "{key}", "params": {params_js}, '
                            f'"status": "ok", "value": {value_js}, "error": null, "attempts": {attempt}, '
                            f'"started": "{s_text}.{"%06d" % ((started - s_lo) * 1e6)}Z", '  # noqa: UP031
                            f'"finished": "{day_text}.{"%06d" % ((finished - day_lo) * 1e6)}Z", '  # noqa: UP031
                            f'"duration_s": {duration_js}, "worker": {worker_js}, '
                            f'"peak_rss_mib": {peak_js}, "cached": null}}'
                        )
                    except (TypeError, ValueError, RecursionError):
                        line = None  # the general path below writes what it can (encode_record)
                if line is None:
                    if secrets:
                        params, value, error = _masked(spec, params, value, error)
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
                    if status != status_ok:
                        bad.append((index, status))
                if log_parts is not None:
                    text = "".join(log_parts)
                    self._write_log(iid, mask_text(text, secrets) if secrets else text)
                add_line(line)
                made += 1
                if limit and ran + made >= limit and position + 1 < total:
                    consumed = position + 1
                    break
                if made >= flush_at or finished > flush_time:
                    emit(
                        ("rec", batch.id, position + 1, made - flushed, _join(lines), tuple(bad), False, 0.0)
                    )
                    lines, bad = [], []
                    add_line = lines.append
                    flushed, flush_at, flush_time = made, made + FLUSH_RECORDS, finished + FLUSH_SECONDS
            else:
                consumed = total
        finally:
            self.instances_run = ran + made
            if capture:
                sys.stdout, sys.stderr = saved
            if home is not None:
                try:
                    os.chdir(home)
                except OSError:  # removed meanwhile: stay where we are
                    pass
                moved[0] = False
        emit(
            (
                "rec",
                batch.id,
                consumed,
                made - flushed,
                _join(lines),
                tuple(bad),
                consumed >= total,
                monotonic() - t_batch,
            )
        )
        return consumed


#: buffer formats of native doubles (ctypes spells them with the byte order)
_NATIVE_DOUBLES = ("d", "@d", "=d", "<d" if sys.byteorder == "little" else ">d")


def _slot_view(slot: Any) -> Any:
    """What ``BatchRunner.run`` writes the slot through: shared doubles (a ctypes array,
    a memoryview) as a memoryview of doubles, written faster than a ctypes array; any
    other slot as it is; a list nobody reads for none."""
    if slot is None:
        return [-1.0, 0.0, 0.0, 0.0]
    try:
        view = memoryview(slot)
    except TypeError:
        return slot
    if view.ndim == 1 and view.format in _NATIVE_DOUBLES:
        return view.cast("B").cast("d")
    return slot


#: ``repr(round(d, 6))`` of durations ``d`` seen (see ``BatchRunner.run``)
_durations: dict[float, str] = {}
_INF = float("inf")


def _masked(spec: Any, params: Any, value: Any, error: Any) -> tuple[Any, Any, Any]:
    """A record's params, value and error with the task's secrets shown as ``***``."""
    secrets = spec.secrets
    if error is not None:
        error = {k: mask_text(v, secrets) if isinstance(v, str) else v for k, v in error.items()}
    return spec.shown_params(params), mask(value, secrets), error


def _join(lines: list[str]) -> bytes:
    if not lines:
        return b""
    lines.append("")  # for the last newline: one string made, not two
    return "\n".join(lines).encode()
