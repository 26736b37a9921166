"""Instances and result records: the shapes that cross from workers to the run store."""

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
    from typing import Any

#: statuses a record can have; only "ok" counts as success
STATUSES = ("ok", "failed", "timeout", "crashed", "skipped")
FAILED_STATUSES = frozenset({"failed", "timeout", "crashed"})


def json_encoder(
    *, default: Any = None, separators: tuple[str, str] = (", ", ": "), sort_keys: bool = False
) -> Any:
    """``json.JSONEncoder(ensure_ascii=False, ...).encode``, byte for byte, minus the set-up
    that method repeats on every call (it builds a new C encoder each time): the C
    encoder is built once and reused. Circular structures still raise ``ValueError``."""
    from json.encoder import c_make_encoder, encode_basestring

    slow = json.JSONEncoder(
        ensure_ascii=False, default=default, separators=separators, sort_keys=sort_keys
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
            True,
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
