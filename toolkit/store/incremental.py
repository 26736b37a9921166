"""Incremental runs: what a run (or ``toolkit plan``) finds in the recipe's cache.

:class:`RunCache` is used by the scheduler, in the main process: when a task is about
to start (its upstream values known), :meth:`RunCache.lookup` splits its instances into
hits (records to copy into the new run, ``cached`` naming the run they came from) and
the instances to run, and registers the new run as a source of the task; as records
of a task with files arrive, :meth:`RunCache.landed` keeps their input and output
digests. ``toolkit plan`` asks :meth:`RunCache.explain` why each instance would run.

The per-instance work of a lookup is what cannot be avoided: the instance's content key
(made from texts prepared once per task, as the worker makes it), one dict lookup, and
for a hit the copy of its line. Records are not decoded.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from toolkit.store.cache import (
    MAX_SOURCES,
    CacheDB,
    mark_all_cached,
    ok_lines_in,
    open_sealed,
    outputs_unchanged,
    read_tasks,
    sealed_chunks,
)
from toolkit.store.fingerprint import (
    FileDigests,
    code_digest,
    files_part,
    instance_keys,
    text_digest,
)
from toolkit.store.rundir import RESULTS

#: ``(spec, params) -> (input paths, output paths)``, absolute
FilesOf = Callable[[Any, dict[str, Any]], tuple[Iterable[str], Iterable[str]]]


def instance_files(spec: Any, params: dict[str, Any], base_dir: Path | None = None) -> tuple[list, list]:
    """The input and output files of one instance, as absolute paths (relative ones are
    relative to the recipe's directory, ``base_dir``)."""
    if not has_files(spec):
        return [], []
    base = str(base_dir) if base_dir is not None else os.getcwd()
    inputs = spec.input_files(params, base)
    outputs = spec.output_files(params)
    return (
        [os.path.join(base, str(p)) for p in inputs],
        [os.path.join(base, str(p)) for p in outputs],
    )


def has_files(spec: Any) -> bool:
    """Whether instances of ``spec`` may have input files or declared outputs."""
    return bool(getattr(spec, "has_files", False))


class Found:
    """What a lookup found: ``lines``, the ``n`` records to copy (newline-terminated,
    ``cached`` set), ``indices`` their instance indices in that order (None when not
    asked for and not known), and ``misses``, the indices to run. A source copied whole
    comes as ``chunks`` instead of ``lines``: see :meth:`parts`."""

    __slots__ = ("chunks", "indices", "lines", "misses", "n", "source")

    def __init__(
        self,
        lines: bytes,
        n: int,
        indices: list[int] | None,
        misses: Sequence[int],
        chunks: Iterable[tuple[bytes, int]] | None = None,
    ) -> None:
        self.lines = lines
        self.n = n
        self.indices = indices
        self.misses = misses
        self.chunks = chunks
        #: the file ``chunks`` are read from (closed once they are all read)
        self.source: Any = None

    def parts(self) -> Iterable[tuple[bytes, int]]:
        """The records to copy as ``(lines, how many)`` pieces, in order (read as they
        are asked for: a copy of a whole source never holds all of it)."""
        return self.chunks if self.chunks is not None else [(self.lines, self.n)]

    def close(self) -> None:
        """Done with what was found, without copying it (``toolkit plan``)."""
        if self.source is not None:
            self.source.close()


def _none(indices: Any) -> Found:
    # a range stays a range: a cold run of 200,000 instances need not list them all
    return Found(b"", 0, [], indices if isinstance(indices, (range, list)) else list(indices))


class RunCache:
    """One run's (or one plan's) use of the recipe's cache ``db``.

    ``base`` is ``<output.dir>/<recipe.name>`` (where the runs are); ``run_id`` the new
    run (None for a plan: nothing is written); ``base_dir`` the recipe's directory
    (relative file paths start there)."""

    def __init__(
        self,
        db: CacheDB,
        base: Path,
        run_id: str | None,
        *,
        base_dir: Path | None = None,
        files_of: FilesOf | None = None,
    ) -> None:
        self.db = db
        self.base = Path(base)
        self.run_id = run_id
        self.base_dir = base_dir
        self.files_of = files_of or (lambda spec, params: instance_files(spec, params, base_dir))
        self._digests: FileDigests | None = None
        self._codes: dict[str, str] = {}
        #: per task with files: {key: (inputs digest, files JSON, output paths)}
        self.detail: dict[str, dict[str, tuple[str, str, list[str]]]] = {}
        self.hits = 0
        #: instances of each task taken from the cache
        self.task_hits: dict[str, int] = {}
        self._read: tuple[tuple, dict[bytes | None, list[bytes]]] | None = None

    @property
    def digests(self) -> FileDigests:
        if self._digests is None:
            self._digests = FileDigests(self.db.known_files())
        return self._digests

    def code(self, rt: Any) -> str:
        """The code digest of a task runtime (``spec``, ``func``, ``version``)."""
        name = rt.spec.name
        found = self._codes.get(name)
        if found is None:
            found = self._codes[name] = code_digest(
                rt.spec.uses, rt.func, rt.version, getattr(rt.spec, "params", None), self.base_dir
            )
        return found

    def _run_lines(self, run: str, task: str) -> dict[str, bytes] | None:
        """The ok lines of ``task`` in ``run`` (None when the run is gone)."""
        groups = self._run_tasks(run)
        return None if groups is None else ok_lines_in(groups, task)

    def _run_tasks(self, run: str) -> dict[bytes | None, list[bytes]] | None:
        """The lines of ``run``'s results by task (:func:`read_tasks`), None when the run
        is gone. The last file read is kept while its size and mtime stay: the tasks of
        a recipe are mostly found in one run, which is then read once, not once a task."""
        path = self.base / run / RESULTS
        try:
            st = os.stat(path)
        except OSError:
            if self.run_id is not None:
                self.db.forget_run(run)  # the run directory was deleted
            return None
        stamp = (run, st.st_size, st.st_mtime_ns, st.st_ino)
        if self._read is None or self._read[0] != stamp:
            self._read = (stamp, read_tasks(path))
        return self._read[1]

    def _took(self, task: str, n: int) -> None:
        self.hits += n
        self.task_hits[task] = self.task_hits.get(task, 0) + n

    def _sealed(self, run: str, spec: Any) -> Found | None:
        """Every record of ``run``'s file, when it was sealed as one ok record per
        instance of ``spec`` and is unchanged since (see ``sealed`` in the cache's
        tables): read, marked and written piece by piece, no key looked at."""
        seal = self.db.sealed(run, spec.name)
        if seal is None or seal[0] != spec.count():
            return None
        f = open_sealed(self.base / run / RESULTS, seal)
        if f is None:
            return None
        found = Found(b"", seal[0], None, [], chunks=sealed_chunks(f, seal, json.dumps(run).encode()))
        found.source = f
        return found

    def _detail_of(self, rt: Any, indices: Iterable[int]) -> dict[str, tuple[str, str, list[str]]]:
        """Input digests and output paths of every instance of a task with files."""
        spec, digests = rt.spec, self.digests
        out: dict[str, tuple[str, str, list[str]]] = {}
        keys = dict(instance_keys(spec, rt.version, indices))
        for _pos, index, params, _iid in spec.instances(indices):
            if params is None:
                continue
            inputs, outputs = self.files_of(spec, params)
            digest, each = files_part(inputs, digests)
            out[keys[index]] = (digest, json.dumps(each, sort_keys=True), list(outputs))
        return out

    # -- a run -------------------------------------------------------------------
    def lookup(
        self,
        rt: Any,
        upstream: str,
        indices: Iterable[int],
        *,
        use: bool = True,
        identity: str = "",
        need_indices: bool = False,
    ) -> Found:
        """Split ``indices`` of task ``rt`` into hits and misses; with ``use`` False
        (``--rerun``) every instance misses. Registers this run as a source of the task
        (before any of its records can arrive). ``identity``: the digest of what decides
        the task's instances; ``need_indices``: the caller needs the hits' indices."""
        spec = rt.spec
        code = self.code(rt)
        indices = indices if isinstance(indices, range) else list(indices)
        detail = has_files(spec)
        current = None
        if detail:
            current = self.detail[spec.name] = self._detail_of(rt, indices)
        if self.run_id is not None:
            self.db.add_source(self.run_id, spec.name, code, upstream, detail=detail, identity=identity)
        if not use:
            return _none(indices)
        # newest first; runs deleted since are forgotten as they are met, and do not
        # count against MAX_SOURCES (a source tried is one whose records were read)
        sources = [s for s in self.db.sources(spec.name, code, upstream) if s[0] != self.run_id]
        if not sources:
            return _none(indices)
        whole = isinstance(indices, range) and len(indices) == spec.space()
        remaining: list[tuple[int, str]] | None = None
        hits: list[bytes] = []
        hit_indices: list[int] = []
        copied: list[tuple[str, str, str, str]] = []
        tried = 0
        for run, _code, _up, source_detail, source_identity in sources:
            if detail and not source_detail:
                continue
            if tried == MAX_SOURCES:
                break
            if whole and not detail and not need_indices and identity and source_identity == identity:
                # the same instances: a source sealed as the task's alone is copied whole
                copy = self._sealed(run, spec)
                if copy is not None:
                    self._took(spec.name, copy.n)
                    return copy
            lines = self._run_lines(run, spec.name)
            if lines is None:
                continue
            tried += 1
            if not lines:
                continue
            source = json.dumps(run).encode()
            if (
                whole
                and not detail
                and not need_indices
                and identity
                and source_identity == identity
                and len(lines) == spec.count()
            ):
                # the same instances, every one of them ok in this source: all hits,
                # without making a key
                self._took(spec.name, len(lines))
                return Found(mark_all_cached(list(lines.values()), source), len(lines), None, [])
            if remaining is None:
                remaining = list(instance_keys(spec, rt.version, indices))
            rows = self.db.instances(run, spec.name) if detail else None
            still: list[tuple[int, str]] = []
            keep = still.append
            get = lines.get
            found: list[bytes] = []
            for item in remaining:
                line = get(item[1])
                if line is None:
                    keep(item)
                    continue
                if rows is not None:
                    row = rows.get(item[1])
                    if (
                        row is None
                        or row[0] != current[item[1]][0]
                        or outputs_unchanged(row[2], self.digests) is not None
                    ):
                        keep(item)
                        continue
                    copied.append((item[1], *row))
                found.append(line)
                hit_indices.append(item[0])
            if found:
                hits.append(mark_all_cached(found, source))
            remaining = still
            if not remaining:
                break
        if copied and self.run_id is not None:
            self.db.add_instances(self.run_id, spec.name, copied)
        if not hit_indices:
            return _none(indices)
        self._took(spec.name, len(hit_indices))
        hit = set(hit_indices)
        return Found(b"".join(hits), len(hit_indices), hit_indices, [i for i in indices if i not in hit])

    def landed(self, task: str, lines: bytes) -> None:
        """Records of ``task`` arrived: keep the input digests and the outputs of its ok
        instances (only tasks with files have anything to keep)."""
        detail = self.detail.get(task)
        if not detail or self.run_id is None:
            return
        digests = self.digests
        rows = []
        for key in _ok_keys(lines):
            entry = detail.get(key)
            if entry is None:
                continue
            outputs = []
            for path in entry[2]:
                digests.forget(path)
                digest = digests.digest(path, output=True)
                stat = digests.stat_of(path)
                if digest is not None and stat is not None:
                    outputs.append([path, stat[0], stat[1], digest])
            rows.append((key, entry[0], entry[1], json.dumps(outputs)))
        self.db.add_instances(self.run_id, task, rows)

    def seal(self, results: Path, task: str, lines: int) -> None:
        """This run's ``results`` are ``lines`` ok records of ``task``, one per instance,
        and nothing else (the run says so as it ends): the next run that takes all of
        them copies the file whole. Only a shortcut: a cache busy beyond its timeout
        leaves the file unsealed, and the next run finds its records one by one."""
        if self.run_id is None:
            return
        hits = self.task_hits.get(task, 0)
        marks = "null" if hits == 0 else "named" if hits == lines else ""
        try:
            st = os.stat(results)
            self.db.seal(self.run_id, task, lines, st, marks)
        except (OSError, sqlite3.Error):
            pass

    def close(self) -> None:
        """Keep the file digests learnt in this run."""
        if self._digests is not None and self._digests.changed:
            self.db.save_files(self._digests.changed)
            self._digests.changed = {}

    # -- a plan ------------------------------------------------------------------
    def explain(
        self,
        rt: Any,
        upstream: str | None,
        indices: Iterable[int],
        *,
        identity: str = "",
        need_indices: bool = True,
    ) -> tuple[Found, dict[int, str]]:
        """What a run would find for task ``rt``, and why each miss would run.
        ``upstream`` None: an upstream instance runs, so every instance runs
        (``upstream changed``) unless nothing of it was ever cached (``new``).
        ``identity`` and ``need_indices`` as for :meth:`lookup`; the records found are
        not read unless ``need_indices``."""
        spec = rt.spec
        indices = indices if isinstance(indices, range) else list(indices)
        found = (
            _none(indices)
            if upstream is None
            else self.lookup(rt, upstream, indices, identity=identity, need_indices=need_indices)
        )
        found.close()
        if not found.misses:
            return found, {}
        code = self.code(rt)
        previous = self._previous(spec.name)
        current = self.detail.get(spec.name) or self._detail_of(rt, found.misses) if has_files(spec) else None
        keys = dict(instance_keys(spec, rt.version, found.misses))
        why: dict[int, str] = {}
        for _pos, index, params, iid in spec.instances(found.misses):
            if params is None:
                continue
            why[index] = self._why(previous.get(iid), code, params, keys[index], upstream, current, spec.name)
        return found, why

    def _previous(self, task: str) -> dict[str, tuple[dict[str, Any], tuple]]:
        """``{instance id: (its newest record, its source)}`` over the task's sources."""
        out: dict[str, tuple[dict[str, Any], tuple]] = {}
        name = json.dumps(task, ensure_ascii=False).encode()[1:-1]
        for source in self.db.sources(task)[:MAX_SOURCES]:
            groups = self._run_tasks(source[0])
            if groups is None:
                continue
            found: dict[str, dict[str, Any]] = {}
            for line in groups.get(name, ()):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                found[rec.get("instance")] = rec
            for iid, rec in found.items():
                out.setdefault(iid, (rec, source))
        return out

    def _why(
        self,
        previous: tuple[dict[str, Any], tuple] | None,
        code: str,
        params: dict[str, Any],
        key: str,
        upstream: str | None,
        current: dict[str, tuple[str, str, list[str]]] | None,
        task: str,
    ) -> str:
        if previous is None:
            return "new"
        rec, (run, old_code, old_upstream, _detail, _identity) = previous
        if old_code != code:
            return "code changed"
        if rec.get("params") != json.loads(json.dumps(params, default=str)):
            return "params changed"
        if rec.get("status") != "ok":
            return f"{rec.get('status')} before"
        if current is not None and key in current:
            row = self.db.instances(run, task).get(rec.get("key"))
            if row is not None:
                old = json.loads(row[1])
                new = json.loads(current[key][1])
                for path in sorted(set(old) | set(new)):
                    if old.get(path) != new.get(path):
                        return f"file changed: {self.show_path(path)}"
                if upstream is not None and old_upstream != upstream:
                    return "upstream changed"
                problem = outputs_unchanged(row[2], self.digests)
                if problem is not None:
                    kind, _, path = problem.partition(": ")
                    return f"{kind}: {self.show_path(path)}"
        if upstream is None or old_upstream != upstream:
            return "upstream changed"
        return "new"

    def show_path(self, path: str) -> str:
        """``path`` relative to the recipe's directory when it is inside it."""
        if self.base_dir is not None:
            try:
                return str(Path(path).relative_to(self.base_dir))
            except ValueError:
                pass
        return path


def _ok_keys(lines: bytes) -> list[str]:
    out = []
    for line in lines.split(b"\n"):
        i = line.find(b'", "key": "')
        if i >= 0 and line.find(b'}, "status": "ok", ', i) >= 0:
            out.append(line[i + 11 : i + 31].decode())
    return out


def task_context(code: str, upstream: str) -> str:
    return text_digest(f"{code}:{upstream}")


class CacheUse:
    """How a run uses the cache: ``tasks`` whose cache is on, ``rerun`` those whose
    instances run whatever the cache holds (their records still go in), ``identities``
    the digests of what decides each task's instances (the manifest's task digests)."""

    def __init__(
        self, cache: RunCache, tasks: Iterable[str], rerun: Iterable[str], identities: dict[str, str]
    ) -> None:
        self.cache = cache
        self.tasks = frozenset(tasks)
        self.rerun = frozenset(rerun)
        self.identities = identities

    def lookup(self, rt: Any, upstream: str, indices: Iterable[int], *, need_indices: bool) -> Found:
        name = rt.spec.name
        if name not in self.tasks:
            return _none(indices)
        return self.cache.lookup(
            rt,
            upstream,
            indices,
            use=name not in self.rerun,
            identity=self.identities.get(name, ""),
            need_indices=need_indices,
        )

    def landed(self, task: str, lines: bytes) -> None:
        if task in self.tasks:
            self.cache.landed(task, lines)

    def seal(self, results: Path, task: str, lines: int) -> None:
        if task in self.tasks:
            self.cache.seal(results, task, lines)

    def stats(self) -> dict[str, int]:
        """For the manifest's ``[cache]``: instances taken from the cache, and input
        files read to digest them (each at most once per run)."""
        digests = self.cache._digests
        return {"hits": self.cache.hits, "files_read": digests.reads if digests is not None else 0}

    def close(self) -> None:
        self.cache.close()
        self.cache.db.close()
