"""What travels to the workers once per run: the task table and the plugin files' source.

The task table (``WorkerSetup.tasks_blob``) names task functions by module and name.
Functions of installed plugins import on the workers as they are. Functions of
recipe-relative plugin files (``pi_tasks.py``) live in modules that exist only where
the recipe is, so their source goes along: each file, with the other ``.py`` files of
its folder (a plugin file may import its neighbours, as it can on the client). A worker
that sees the same files at the same paths (the same machine, a shared file system)
imports them where they are; any other worker writes them to a folder of its own and
imports them from there, under the same module names. Either way it is the same
``import_file_plugin`` that ``toolkit run`` uses.

A worker started with ``TOOLKIT_DASK_NO_SHARED_FS=1`` never uses the client's paths,
as if it ran on another machine: for tests, and for file systems that lie.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import attrs

from toolkit.execution.api import WorkerSetup

#: set on a worker: behave as if no path of the client's machine were visible here
ENV_NO_SHARED_FS = "TOOLKIT_DASK_NO_SHARED_FS"
#: neighbours of a plugin file travel with it up to these limits (the file itself always)
MAX_NEIGHBOURS = 64
MAX_NEIGHBOUR_BYTES = 4 * 1024 * 1024


@attrs.frozen(kw_only=True)
class SourceFile:
    path: str  # absolute, on the client
    data: bytes
    digest: str

    @classmethod
    def read(cls, path: Path) -> SourceFile:
        data = path.read_bytes()
        return cls(path=str(path), data=data, digest=hashlib.sha256(data).hexdigest())


@attrs.frozen(kw_only=True)
class Payload:
    """Everything a worker needs to run this run's batches; sent with each of them."""

    key: str  # names this run's runner processes and folders on every worker
    setup: WorkerSetup
    sources: tuple[SourceFile, ...] = ()


def _neighbours(file: Path) -> list[Path]:
    picked, size = [], 0
    for other in sorted(file.parent.glob("*.py")):
        if other == file or not other.is_file():
            continue
        size += other.stat().st_size
        if len(picked) >= MAX_NEIGHBOURS or size > MAX_NEIGHBOUR_BYTES:
            break
        picked.append(other)
    return picked


def build_payload(setup: WorkerSetup, run_id: str) -> Payload:
    """Read the plugin files (and their neighbours) named by ``setup``."""
    files: dict[Path, SourceFile] = {}
    for name in setup.files:
        file = Path(name).resolve()
        for path in (file, *_neighbours(file)):
            if path not in files:
                files[path] = SourceFile.read(path)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(setup.tasks_blob)
    digest.update(setup.run_dir.encode())
    for source in files.values():
        digest.update(source.digest.encode())
    return Payload(key=f"{run_id}-{digest.hexdigest()}", setup=setup, sources=tuple(files.values()))


def no_shared_fs() -> bool:
    return os.environ.get(ENV_NO_SHARED_FS, "") not in ("", "0")


def _same_here(sources: Iterable[SourceFile]) -> bool:
    if no_shared_fs():
        return False
    for source in sources:
        try:
            data = Path(source.path).read_bytes()
        except OSError:
            return False
        if hashlib.sha256(data).hexdigest() != source.digest:
            return False
    return True


def place_sources(payload: Payload, folder: Path) -> dict[str, str]:
    """Make the payload's files importable on this machine: ``{client path: path here}``.

    Folder by folder: one whose files are all here, unchanged, is used in place;
    otherwise its files are written below ``folder`` (a fresh folder per run).
    """
    by_folder: dict[str, list[SourceFile]] = {}
    for source in payload.sources:
        by_folder.setdefault(os.path.dirname(source.path), []).append(source)
    where: dict[str, str] = {}
    for n, (_, sources) in enumerate(sorted(by_folder.items())):
        if _same_here(sources):
            where.update((s.path, s.path) for s in sources)
            continue
        here = folder / f"src{n}"
        here.mkdir(parents=True, exist_ok=True)
        for source in sources:
            target = here / os.path.basename(source.path)
            target.write_bytes(source.data)
            where[source.path] = str(target)
    return where


def shares_run_dir(run_dir: str) -> bool:
    """Whether this machine sees the client's run directory (same host or shared FS)."""
    return bool(run_dir) and not no_shared_fs() and (Path(run_dir) / "manifest.toml").is_file()
