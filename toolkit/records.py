"""Instances and result records: the shapes that cross from workers to the run store.

The record schema lives here, once: :data:`RECORD_FIELDS` (the order of the fields of a
line of ``results.jsonl``), :class:`Status`, :func:`make_record`, :func:`encode_record`
and :func:`error_dict`. Worker processes import this module: it imports no ``typing``,
no attrs and no ``hashlib`` (see ``tests/core/test_worker_imports.py``).
"""

from __future__ import annotations

import json
import time

try:  # the hash itself, without hashlib, which loads OpenSSL (~2 ms and 0.6 MiB per worker)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b

#: typing.TYPE_CHECKING without importing typing: worker processes import this module
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, ClassVar


class Status(str):
    """The status of a record: :attr:`OK`, :attr:`FAILED`, :attr:`TIMEOUT`,
    :attr:`CRASHED` or :attr:`SKIPPED`; only ``ok`` counts as success.

    A ``str`` (``Status.OK == "ok"``), written as such to ``results.jsonl`` and read
    back as a plain ``str``. Not an ``enum.StrEnum``: defining one costs every spawned
    worker ~0.2 ms at import (measured on Python 3.11), this class ~0.02 ms."""

    __slots__ = ()

    OK: ClassVar[Status]
    FAILED: ClassVar[Status]
    TIMEOUT: ClassVar[Status]
    CRASHED: ClassVar[Status]
    SKIPPED: ClassVar[Status]


Status.OK = Status("ok")
Status.FAILED = Status("failed")
Status.TIMEOUT = Status("timeout")
Status.CRASHED = Status("crashed")
Status.SKIPPED = Status("skipped")

#: every record status, in the order counts are shown
STATUSES: tuple[Status, ...] = (Status.OK, Status.FAILED, Status.TIMEOUT, Status.CRASHED, Status.SKIPPED)
#: the statuses that count as a failure (``skipped``: a needed task failed, not this one)
FAILED_STATUSES: frozenset[str] = frozenset({Status.FAILED, Status.TIMEOUT, Status.CRASHED})

#: the fields of a record, in the order of a line of ``results.jsonl``
RECORD_FIELDS: tuple[str, ...] = (
    "task",
    "instance",
    "key",
    "params",
    "status",
    "value",
    "error",
    "attempts",
    "started",
    "finished",
    "duration_s",
    "worker",
    "peak_rss_mib",
    "cached",
)


def json_encoder(
    *,
    default: Any = None,
    separators: tuple[str, str] = (", ", ": "),
    sort_keys: bool = False,
    allow_nan: bool = True,
) -> Any:
    """``json.JSONEncoder(ensure_ascii=False, ...).encode``, byte for byte, minus the set-up
    that method repeats on every call (it builds a new C encoder each time): the C
    encoder is built once and reused. Circular structures still raise ``ValueError``,
    and so do NaN and infinities unless ``allow_nan``."""
    from json.encoder import c_make_encoder, encode_basestring

    slow = json.JSONEncoder(
        ensure_ascii=False, default=default, separators=separators, sort_keys=sort_keys, allow_nan=allow_nan
    ).encode
    if c_make_encoder is None:  # pragma: no cover - no C accelerator (PyPy)
        return slow
    item_sep, key_sep = separators
    markers: dict[int, Any] = {}
    try:
        c_encode = c_make_encoder(
            markers,
            default or slow.__self__.default,
            encode_basestring,
            None,
            key_sep,
            item_sep,
            sort_keys,
            False,
            allow_nan,
        )
    except TypeError:  # pragma: no cover - a C encoder with another signature
        return slow

    def encode(obj: Any) -> str:
        try:
            return "".join(c_encode(obj, 0))
        except BaseException:
            markers.clear()  # an error leaves the containers it was in marked
            raise

    return encode


_dumps = json_encoder(separators=(",", ":"), sort_keys=True)


def _json_default(obj: Any) -> Any:
    isoformat = getattr(obj, "isoformat", None)
    if isoformat is not None:  # TOML dates and times
        return isoformat()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


#: a record (or a value of one) as the JSON text of ``results.jsonl``: strict JSON, so
#: NaN and infinities raise ValueError (:func:`encode_record` writes them as strings)
encode_json = json_encoder(default=_json_default, allow_nan=False)

#: what ``results.jsonl`` writes for the floats JSON has no number for (as protobuf's
#: JSON mapping does); :func:`toolkit.records.strict_values` makes them
NON_FINITE = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _non_finite(x: float) -> str:
    return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")


def strict_values(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float (keys included) as the string strict JSON
    has for it: ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; sets and tuples as lists."""
    if isinstance(obj, float):
        return obj if obj - obj == 0.0 else _non_finite(obj)  # inf - inf and nan - nan are nan
    if isinstance(obj, dict):
        return {
            (_non_finite(k) if isinstance(k, float) and k - k != 0.0 else k): strict_values(v)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [strict_values(v) for v in obj]
    return obj


def _valid_text(obj: Any) -> Any:
    """``obj`` with every string UTF-8 cannot encode (a lone surrogate, as a task may
    make from undecodable bytes) escaped as text: ``"\\udcff"``."""
    if isinstance(obj, str):
        if obj.isascii():
            return obj
        return obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(obj, dict):
        return {_valid_text(k): _valid_text(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_valid_text(v) for v in obj]
    return obj


def _writable(line: str) -> str:
    """``line``, once UTF-8 is known to encode it (UnicodeEncodeError otherwise)."""
    if not line.isascii():
        line.encode()
    return line


#: what makes a value unwritable: not serialisable, a circular or (RecursionError) too
#: deeply nested structure, text UTF-8 cannot encode (UnicodeEncodeError, a ValueError)
UNWRITABLE = (TypeError, ValueError, RecursionError)


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"it is nested too deeply ({exc})"
    if isinstance(exc, UnicodeEncodeError):
        bad = exc.object[exc.start : exc.end]
        return f"it holds text that is not valid Unicode ({bad!a}: {exc.reason})"
    return describe(exc)


def exc_text(exc: BaseException) -> str:
    """``str(exc)``, or what the traceback module shows when the exception's own
    ``__str__`` raises: an exception a task or a plugin raises runs their code."""
    try:
        text = str(exc)
    except Exception:
        return "<exception str() failed>"
    return text


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception from code that is not toolkit's."""
    return f"{type(exc).__name__}: {exc_text(exc)}"


def error_dict(exc: BaseException) -> dict[str, str]:
    """The ``error`` field of a record for ``exc``: ``type``, ``message``, ``traceback``."""
    import traceback

    try:
        trace = "".join(traceback.format_exception(exc))
    except Exception:  # an exception whose attributes raise (traceback reads several)
        trace = describe(exc) + "\n"
    return {"type": type(exc).__name__, "message": exc_text(exc), "traceback": trace}


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
    """A result record, in the field order of ``results.jsonl`` (:data:`RECORD_FIELDS`)."""
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
        "cached": None,  # a run that copies the record from the cache names its run here
    }


def encode_record(record: dict[str, Any]) -> tuple[str, str]:
    """``(json line, status)`` of a record, in strict JSON that UTF-8 encodes.

    NaN and infinities are written as strings (:func:`strict_values`). A value that
    cannot be written (not JSON-serialisable, circular, nested deeper than the encoder
    goes, text with lone surrogates) makes an ok record a ``failed`` one, whose error
    (``UnserialisableResult``) says why; text elsewhere in the record that UTF-8 cannot
    encode (a task's error message) is escaped. One bad value fails one instance."""
    try:
        return _writable(encode_json(record)), record["status"]
    except UNWRITABLE:
        pass
    try:
        return _writable(encode_json(strict_values(record))), record["status"]
    except UNWRITABLE as exc:
        problem = exc
    record = dict(record)
    value, record["value"] = record["value"], None
    try:
        _writable(encode_json(strict_values(value)))
    except UNWRITABLE as exc:
        if record["status"] == Status.OK:
            record["status"] = Status.FAILED
            record["error"] = {
                "type": "UnserialisableResult",
                "message": f"the task returned a value that cannot be written as JSON: {_why(exc)}",
                "traceback": "",
            }
    else:
        record["value"] = value  # the value can be written: the problem is elsewhere
    try:
        return encode_json(_valid_text(strict_values(record))), record["status"]
    except UNWRITABLE:  # pragma: no cover - params and ids come from a validated recipe
        record.update(params={}, value=None, status=Status.FAILED)
        record["error"] = {"type": "UnserialisableRecord", "message": _why(problem), "traceback": ""}
        return encode_json(_valid_text(record)), Status.FAILED


class Instance:
    """One task instance: what ``toolkit_task_start`` and ``toolkit_task_finish`` see.
    Compared by task, index, id and key. (A plain class: workers import this module,
    and attrs costs a spawned worker ~10 ms to import.)"""

    __slots__ = ("id", "index", "key", "params", "task")

    def __init__(self, *, task: str, index: int, id: str, key: str, params: dict[str, Any]) -> None:
        self.task = task
        self.index = index
        self.id = id
        self.key = key
        self.params = params

    def _compared(self) -> tuple[str, int, str, str]:
        return (self.task, self.index, self.id, self.key)

    def __eq__(self, other: object) -> bool:
        if type(other) is not Instance:
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        return f"Instance(task={self.task!r}, index={self.index!r}, id={self.id!r}, key={self.key!r})"


def instance_key(task: str, uses: str, version: str | None, params: dict[str, Any]) -> str:
    """The content key of an instance: stable across runs while task and params are."""
    try:
        blob = _dumps([task, uses, version, params])
    except (TypeError, ValueError):
        blob = repr([task, uses, version, sorted(params.items())])
    return blake2b(blob.encode(), digest_size=10).hexdigest()


def key_maker(task: str, uses: str, version: str | None) -> Any:
    """``params -> instance_key(task, uses, version, params)``, faster: the part of the
    hashed text that is the same for every instance of the task is encoded once."""
    prefix = _dumps([task, uses, version])[:-1] + ","
    new_hash = blake2b

    def key(params: dict[str, Any]) -> str:
        try:
            blob = prefix + _dumps(params) + "]"
        except (TypeError, ValueError):
            blob = repr([task, uses, version, sorted(params.items())])
        return new_hash(blob.encode(), digest_size=10).hexdigest()

    return key


_second_cache: list[Any] = [None, ""]


def utc_iso(t: float) -> str:
    """``2026-11-25T20:30:00.123456Z`` for a ``time.time()`` value, fast."""
    sec = int(t)
    if _second_cache[0] != sec:
        _second_cache[0] = sec
        _second_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{_second_cache[1]}.{int((t - sec) * 1_000_000):06d}Z"


#: the types of the params values that a :class:`ParamsText` can stand for
_FLAT = (str, int, float, bool, type(None))


class ParamsText:
    """The JSON texts of params shaped ``dict(base)`` updated with values for ``names``
    (see ``TaskSpec.params_layout``), made by filling in the values' JSON: what
    ``encode(params)`` (``", "`` and ``": "``, insertion order) and the hashed text of
    ``key_maker`` (compact, sorted) would be, byte for byte, without encoding ``base``
    again for every instance.

    ``params`` and ``key`` are ``str.format`` templates with one field per name, by its
    position in ``names``; for one name, ``pieces`` is ``(params before, params after,
    key before, key after)`` as well. A value's JSON is its ``repr`` for an ``int`` and
    ``encode_basestring`` for a ``str``; other values go the general way.
    :meth:`make` returns None where the base is not plain scalars (a task could change a
    list or a dict in place) or does not encode."""

    __slots__ = ("key", "names", "params", "pieces")

    def __init__(self, names: tuple[str, ...], params: str, key: str, pieces: tuple[str, ...] | None) -> None:
        self.names = names
        self.params = params
        self.key = key
        self.pieces = pieces

    @classmethod
    def make(
        cls,
        task: str,
        uses: str,
        version: str | None,
        base: dict[str, Any],
        names: tuple[str, ...],
        encode: Any,
    ) -> ParamsText | None:
        from json.encoder import encode_basestring

        if not names or not all(type(v) in _FLAT for v in base.values()):
            return None
        marks = [f"\0toolkit-params-{i}\0" for i in range(len(names))]
        shape = dict(base)
        shape.update(zip(names, marks, strict=True))
        try:
            spaced = encode(shape)
            hashed = _dumps([task, uses, version])[:-1] + "," + _dumps(shape) + "]"
        except (TypeError, ValueError):
            return None
        texts = [encode_basestring(m) for m in marks]
        if any(spaced.count(t) != 1 or hashed.count(t) != 1 for t in texts):
            return None

        def split(text: str) -> tuple[list[str], str]:
            order = sorted(range(len(names)), key=lambda i: text.index(texts[i]))
            pieces, fmt, rest = [], [], text
            for i in order:
                before, rest = rest.split(texts[i], 1)
                pieces.append(before)
                fmt.append(before.replace("{", "{{").replace("}", "}}") + "{" + str(i) + "}")
            pieces.append(rest)
            fmt.append(rest.replace("{", "{{").replace("}", "}}"))
            return pieces, "".join(fmt)

        params_pieces, params_fmt = split(spaced)
        key_pieces, key_fmt = split(hashed)
        single = (*params_pieces, *key_pieces) if len(names) == 1 else None
        return cls(names, params_fmt, key_fmt, single)
