"""The run directory: ``<output.dir>/<recipe>/<run-id>/`` with its manifest, results
and logs, a ``latest`` pointer beside it, and reading it back for resume and history.

Crash safety rests on two rules. Files that are rewritten (the manifest) are replaced
atomically (:func:`atomic_write`): a reader sees the old or the new file, never half of
one. Files that grow (``results.jsonl``, ``results.csv``) are only appended to, a whole
batch of lines at a time, so that a killed writer leaves at most one torn last line,
which readers skip and :func:`cut_torn_tail` removes before anything is appended again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import tomli_w

from toolkit.errors import RunError, StorageError
from toolkit.store.names import LOGS, log_name
from toolkit.store.runid import new_run_id

if TYPE_CHECKING:
    from toolkit.recipe.model import Recipe

MANIFEST = "manifest.toml"
RESULTS = "results.jsonl"
LATEST = "latest"
#: space set aside while a run runs, for the manifest that says how it ended
RESERVE = ".reserve"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` so that a reader sees the old or the new file, never a torn one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def cut_torn_tail(path: Path, terminator: bytes = b"\n") -> int:
    """Cut what follows the last ``terminator`` of ``path`` (a line a killed writer left
    half written), so that appending stays valid. Returns the number of bytes cut."""
    if not Path(path).exists():
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(max(0, size - len(terminator)))
        if f.read() == terminator:
            return 0
        pos, chunk = size, 65536
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            # overlap the chunks by the terminator's length so that one split across
            # two chunks is still found
            data = f.read(min(size, pos + len(terminator) - 1) - start)
            found = data.rfind(terminator)
            if found >= 0:
                keep = start + found + len(terminator)
                f.truncate(keep)
                return size - keep
            pos = start
        f.truncate(0)
        return size


def toml_safe(value: Any) -> Any:
    """TOML has no null: drop None values, recursively."""
    if isinstance(value, dict):
        return {str(k): toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [toml_safe(v) for v in value if v is not None]
    return value


@attrs.define
class RunInfo:
    """What ``toolkit_run_start`` and ``toolkit_run_finish`` see of a run."""

    run_id: str
    run_dir: Path
    recipe: Recipe
    executor: str = ""
    reason: str = ""
    #: True when this is ``--resume`` or ``--retry-failed`` of an earlier run
    resumed: bool = False


@attrs.define
class Summary:
    """How a run ended: ``status`` and ``counts`` as in the manifest (``total``, one
    count per record status, ``not_run``), and the duration of this session."""

    status: str
    counts: dict[str, int]
    duration_s: float = 0.0


@attrs.define
class RunDir:
    """One run directory. Creating one makes ``logs/`` and points ``latest`` at it."""

    path: Path

    def __attrs_post_init__(self) -> None:
        self.path = Path(self.path)
        if self.path.name == LATEST and self.path.is_symlink():
            # the run it points at now: its id, and the same run when latest moves on
            self.path = self.path.parent / os.readlink(self.path)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def recipe_name(self) -> str:
        return self.path.parent.name

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @property
    def logs(self) -> Path:
        return self.path / LOGS

    def log_path(self, instance: str) -> Path:
        """Where the worker writes the log of ``instance``."""
        return self.logs / log_name(instance)

    @classmethod
    def create(cls, output: Path, recipe_name: str, run_id: str | None = None) -> RunDir:
        """Make a new run directory (and its ``logs/``) and point ``latest`` at it.

        Raises :class:`StorageError` (exit 2) when the output directory cannot hold it,
        leaving no run directory behind."""
        if run_id is not None:
            check_run_id(run_id)
        base = Path(output) / recipe_name
        _check_base(Path(output), base)
        while True:
            rid = run_id or new_run_id()
            path = base / rid
            try:
                path.mkdir()
                break
            except FileExistsError:
                if run_id:
                    raise RunError(f"run directory {path} already exists") from None
            except OSError as exc:
                raise StorageError.from_os_error(exc, f"cannot make the run directory {path}") from None
        try:
            (path / LOGS).mkdir()
            run = cls(path)
            run.point_latest()
        except BaseException as exc:
            shutil.rmtree(path, ignore_errors=True)  # nothing started: leave nothing
            if isinstance(exc, OSError):
                raise StorageError.from_os_error(exc, f"cannot make the run directory {path}") from None
            raise
        return run

    def remove(self) -> None:
        """Delete the run directory (a run that never started); ``latest`` goes back to
        the newest run left, if it pointed here."""
        shutil.rmtree(self.path, ignore_errors=True)
        base = self.path.parent
        with contextlib.suppress(OSError, RunError):
            if _read_pointer(base) not in (None, self.path.resolve()):
                return
            left = runs_of(base)
            if left:
                RunDir(left[-1]).point_latest()
            else:
                (base / LATEST).unlink()

    def point_latest(self) -> None:
        """``latest`` -> this run (a relative symlink; a text file where symlinks fail)."""
        link = self.path.parent / LATEST
        tmp = self.path.parent / f".{LATEST}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            tmp.symlink_to(self.run_id, target_is_directory=True)
        except OSError:
            tmp.write_text(self.run_id + "\n")
        try:
            os.replace(tmp, link)
        except IsADirectoryError:
            tmp.unlink()
            raise StorageError(_latest_is_a_directory(link)) from None

    def write_manifest(self, manifest: dict[str, Any], *, spend_reserve: bool = True) -> None:
        """Replace the manifest atomically; on a full disk, with the space the run set
        aside (:meth:`reserve_space`), so that a run never stays ``running``."""
        data = tomli_w.dumps(toml_safe(manifest)).encode()
        try:
            atomic_write(self.manifest_path, data)
        except OSError as exc:
            if not spend_reserve or exc.errno not in _NO_SPACE or not self.release_space():
                raise
            atomic_write(self.manifest_path, data)

    def reserve_space(self, size: int) -> None:
        """Set aside ``size`` bytes (a file, ``.reserve``) that :meth:`write_manifest`
        frees when the disk fills up, to say how the run ended. OSError when the disk
        has not that much room (a run that starts there could not say how it ended);
        other problems (a file system that cannot preallocate) are passed over."""
        try:
            fd = os.open(self.path / RESERVE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise
            return
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, size)
            else:  # pragma: no cover - macOS
                os.write(fd, bytes(size))
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                self.release_space()
                raise
        finally:
            os.close(fd)

    def check_file_size_limit(self, size: int) -> None:
        """OSError (EFBIG) when the file size limit (``ulimit -f``) is below ``size``, the
        bytes a final manifest may need: the reserve frees room on a disk, not under a
        limit per file, and a run that cannot say how it ended must not start."""
        try:
            import resource
        except ImportError:  # pragma: no cover - not POSIX
            return
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and limit < size:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), os.fspath(self.manifest_path))

    def release_space(self) -> bool:
        """Free the space :meth:`reserve_space` set aside; whether there was any."""
        try:
            (self.path / RESERVE).unlink()
        except OSError:
            return False
        return True

    def read_manifest(self) -> dict[str, Any]:
        try:
            with open(self.manifest_path, "rb") as f:
                return tomllib.load(f)
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a run directory (no {MANIFEST})") from None
        except tomllib.TOMLDecodeError as exc:
            raise RunError(f"{self.manifest_path} is damaged: {exc}") from None

    def repair_tail(self) -> int:
        """Cut a torn last line of ``results.jsonl``; the number of bytes cut."""
        return cut_torn_tail(self.results_path)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record of ``results.jsonl``; a torn or garbled line is passed over."""
        return read_records(self.results_path)

    def latest_records(self) -> dict[str, dict[str, Any]]:
        """The last record of every instance (by content key), in order of first arrival."""
        latest: dict[str, dict[str, Any]] = {}
        for rec in self.records():
            key = rec.get("key")
            if key and isinstance(key, str):  # a line edited by hand may hold anything
                latest[key] = rec
        return latest


#: what a run id may be: one plain path component (TOOLKIT_RUN_ID comes from outside)
_RUN_ID = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"


def check_run_id(run_id: str) -> None:
    """Refuse a run id that is not one plain name (``../x``, ``/tmp/x``, ``.hidden``)."""
    if not re.fullmatch(_RUN_ID, run_id):  # compiled only when there is one to check
        raise RunError(
            f"invalid run id {run_id!r} (from TOOLKIT_RUN_ID): use letters, digits, '.', '_' and"
            " '-', at most 128, not starting with '.' or '-'"
        )


def _latest_is_a_directory(link: Path) -> str:
    return (
        f"{link} is a directory, not toolkit's pointer to the latest run; move it away (or use --output DIR)"
    )


def _check_base(output: Path, base: Path) -> None:
    """``<output>/<recipe>`` can hold a new run: make it, or say why not."""
    for path in (output, base):
        if path.exists() and not path.is_dir():
            raise StorageError(f"{path} is not a directory (use --output DIR elsewhere)")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError.from_os_error(exc, f"cannot make the output directory {base}") from None
    link = base / LATEST
    if link.is_dir() and not link.is_symlink():
        raise StorageError(_latest_is_a_directory(link))


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL file; blank, torn or garbled lines are passed over."""
    if not Path(path).exists():
        return
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec


def _read_pointer(base: Path) -> Path | None:
    latest = base / LATEST
    if latest.is_symlink() or latest.is_dir():
        return latest.resolve()
    if latest.is_file():
        return base / latest.read_text().strip()
    return None


def runs_of(base: Path) -> list[Path]:
    """The run directories in ``<output>/<recipe>``, oldest first (run ids sort by time)."""
    try:
        if not base.is_dir():
            return []
        return sorted(p for p in base.iterdir() if p.name != LATEST and _is_file(p / MANIFEST))
    except OSError:  # a directory we may not read (--output /proc): no runs in it
        return []


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def find_run(output: Path, recipe_name: str, run: str | None = None) -> RunDir:
    """The named run of a recipe (an id, or a path to a run directory) or its latest."""
    output = Path(output)
    base = output / recipe_name
    if run:
        candidate = Path(run)
        if (candidate / MANIFEST).is_file():
            return RunDir(candidate)
        path = base / run
        if not (path / MANIFEST).is_file():
            known = [p.name for p in runs_of(base)][-5:]
            hint = f" (latest runs: {', '.join(known)})" if known else ""
            raise RunError(f"no run {run!r} of recipe {recipe_name!r} in {base}{hint}")
        return RunDir(path)
    target = _read_pointer(base)
    if target is None or not (target / MANIFEST).is_file():
        runs = runs_of(base)  # no pointer, or it points at a run that was deleted
        if not runs:
            raise RunError(f"no earlier run of recipe {recipe_name!r} in {base}")
        target = runs[-1]
    return RunDir(target)
