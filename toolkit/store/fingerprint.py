"""Fingerprints of task instances, for the results cache (:mod:`toolkit.store.cache`).

An instance's fingerprint has five parts:

- its task's name and ``uses``, the task's registered ``version`` and its resolved
  params: the instance's content key (:func:`toolkit.records.instance_key`), which every
  record carries;
- the **code** of the task (:func:`code_digest`): the ``version`` given at registration,
  else a digest of the function's source; for the built-in ``shell`` task the command as
  written, for ``python`` the source file of the module it calls;
- the content of its **input files** (:class:`FileDigests`);
- the **upstream values** it receives as ``inputs`` (:func:`value_digest`).

Input files are digested the way git's index avoids reading unchanged files: a digest
is remembered with the file's size, mtime (ns) and inode, and used again while those
stay the same, so a file is read at most once per run, and not at all when unchanged.
A digest taken less than :data:`RACY_NS` after the file's mtime is not trusted the next
time (git's "racily clean" entries): the file may have changed again within the same
timestamp tick. The kernel stamps files with a coarse clock (a few ms); a file system
whose times are whole seconds (FAT, some network mounts) gets :data:`RACY_COARSE_NS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from toolkit.records import ParamsText, blake2b, json_encoder, key_maker

#: digests are hex strings of this many bytes
DIGEST_SIZE = 16
#: a file whose mtime is this close to when it was digested is digested again next time
RACY_NS = 100_000_000
#: ... and on a file system whose times are whole seconds
RACY_COARSE_NS = 2_000_000_000
_CHUNK = 1 << 20

_canonical = json_encoder(separators=(",", ":"), sort_keys=True, default=str)


def text_digest(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return blake2b(data, digest_size=DIGEST_SIZE).hexdigest()


def value_digest(value: Any) -> str:
    """A digest of a JSON-like value (sorted keys): equal values, equal digests."""
    try:
        return text_digest(_canonical(value))
    except (TypeError, ValueError):
        return text_digest(repr(value))


def code_digest(
    uses: str, func: Any, version: str | None, params: dict[str, Any] | None = None, root: Any = None
) -> str:
    """The code part of a task's fingerprint (see the module's docstring); ``root`` is the
    recipe's directory, where ``python`` finds modules after the installed ones."""
    if version is not None:
        return text_digest(f"version:{version}")
    params = params or {}
    if uses == "shell":
        return text_digest(f"shell:{_canonical(params.get('cmd'))}")
    if uses == "python":
        function = params.get("function")
        return text_digest(f"python:{function}:{_module_file_digest(function, root)}")
    try:
        return _source_digests[func]
    except (KeyError, TypeError):  # TypeError: not hashable, or no weak reference to it
        pass
    digest = text_digest(f"source:{function_source(func)}")
    with contextlib.suppress(TypeError):
        _source_digests[func] = digest
    return digest


#: the source digest of each function met in this process: tasks that share a function
#: (many [[task]] tables of one plugin) read its source once (inspect tokenizes it); the
#: code a function object runs does not change, whatever its file says later
_source_digests: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def function_source(func: Any) -> str:
    """The source text of ``func``; its compiled code where the source is not at hand."""
    func = inspect.unwrap(func)
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        code = getattr(func, "__code__", None)
        if code is None:
            return repr(func)
        return repr((code.co_code, code.co_consts, code.co_names))


def _module_file_digest(function: Any, root: Any = None) -> str:
    """The digest of the file of the module that ``python``'s ``module:function`` names,
    found without importing it (only a top-level module can be found so), where workers
    find it: on ``sys.path``, then in the recipe's directory ``root``."""
    if not isinstance(function, str) or ":" not in function:
        return ""
    module = function.partition(":")[0]
    if "." in module:
        return ""
    import importlib.util
    from importlib.machinery import PathFinder

    try:
        spec = importlib.util.find_spec(module)
        if spec is None and root is not None:
            spec = PathFinder.find_spec(module, [str(root)])
    except (ImportError, ValueError):
        return ""
    origin = getattr(spec, "origin", None)
    if not origin or not os.path.isfile(origin):
        return ""
    try:
        return file_digest(origin)
    except OSError:
        return ""


def file_digest(path: str) -> str:
    """Read ``path`` and digest its content."""
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class FileDigests:
    """Content digests of files, read at most once per run and not at all while a file's
    size, mtime and inode are those remembered (``known``: ``{path: (size, mtime_ns,
    inode, digest, checked_ns)}``, as the cache database keeps them). ``changed`` holds
    the entries learnt in this run, for the database to keep."""

    def __init__(self, known: dict[str, tuple[int, int, int, str, int]] | None = None) -> None:
        self.known = known or {}
        self.changed: dict[str, tuple[int, int, int, str, int]] = {}
        self._run: dict[str, str | None] = {}
        self.reads = 0

    def digest(self, path: str, *, output: bool = False) -> str | None:
        """The digest of the file at ``path`` (absolute), or None when it is missing.
        ``reads`` counts the input files read (not the ``output`` ones)."""
        found = self._run.get(path, False)
        if found is not False:
            return found  # type: ignore[return-value]
        try:
            st = os.stat(path)
        except OSError:
            self._run[path] = None
            return None
        entry = self.known.get(path)
        if (
            entry is not None
            and entry[0] == st.st_size
            and entry[1] == st.st_mtime_ns
            and entry[2] == st.st_ino
            and st.st_mtime_ns + (RACY_COARSE_NS if st.st_mtime_ns % 1_000_000_000 == 0 else RACY_NS)
            < entry[4]
        ):
            digest = entry[3]
        else:
            checked = time.time_ns()
            try:
                digest = file_digest(path)
            except OSError:
                self._run[path] = None
                return None
            self.reads += not output
            self.changed[path] = (st.st_size, st.st_mtime_ns, st.st_ino, digest, checked)
        self._run[path] = digest
        return digest

    def stat_of(self, path: str) -> tuple[int, int] | None:
        """``(size, mtime_ns)`` of a file digested in this run."""
        entry = self.changed.get(path) or self.known.get(path)
        return (entry[0], entry[1]) if entry else None

    def forget(self, path: str) -> None:
        """Digest ``path`` again when next asked (a task wrote it since)."""
        self._run.pop(path, None)


def files_part(paths: Iterable[str], digests: FileDigests) -> tuple[str, dict[str, str | None]]:
    """``(digest of the files together, {path: digest or None when missing})``."""
    each = {p: digests.digest(p) for p in paths}
    if not each:
        return "", each
    return text_digest(_canonical(sorted(each.items(), key=lambda kv: kv[0]))), each


def instance_keys(spec: Any, version: str | None, indices: Iterable[int]) -> Iterator[tuple[int, str]]:
    """``(index, content key)`` of each instance of ``spec`` at ``indices`` (excluded
    ones left out): the keys the worker writes in the records, made the same way (the
    params' texts filled in where the spec says how they are made: ``ParamsText``)."""
    from json.encoder import encode_basestring

    key_of = key_maker(spec.name, spec.uses, version)
    if getattr(spec, "secrets", ()):  # keys are made from the params records show
        for _position, index, params, _iid in spec.instances(indices):
            if params is not None:
                yield index, key_of(spec.shown_params(params))
        return
    layout = spec.params_layout() if hasattr(spec, "params_layout") else None
    text = None
    if layout is not None:
        text = ParamsText.make(spec.name, spec.uses, version, *layout, json_encoder())
    if text is None:
        for _position, index, params, _iid in spec.instances(indices):
            if params is not None:
                yield index, key_of(params)
        return
    names = text.names
    k_format = text.key.format
    hasher = blake2b(digest_size=10).copy
    for _position, index, params, _iid in spec.instances(indices):
        if params is None:
            continue
        vs = []
        for name in names:
            v = params[name]
            kind = type(v)
            if kind is int:
                vs.append(repr(v))
            elif kind is str:
                vs.append(encode_basestring(v))
            else:
                break
        else:
            h = hasher()
            h.update(k_format(*vs).encode())
            yield index, h.hexdigest()
            continue
        yield index, key_of(params)


def inputs_of(inputs: list[dict[str, Any]] | None) -> str:
    """The upstream part of the fingerprint: a digest of the ``inputs`` a task receives."""
    if not inputs:
        return ""
    return value_digest(inputs)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
