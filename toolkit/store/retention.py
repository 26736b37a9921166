"""Retention: keep the N newest runs of a recipe, delete older run directories.

Never deleted: a run that is still going (its run lock is held, or its manifest says
``running`` and it runs on another host), the run ``latest`` points to, and
anything that is not a run directory (no ``manifest.toml``) such as the recipe's cache.
A directory is renamed away before it is deleted, so that a reader never sees a run
half deleted, and a ``--resume`` of it fails cleanly instead of writing into it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import attrs

from toolkit.store.heads import read_head
from toolkit.store.history import effective_status, parse_time
from toolkit.store.lock import is_locked
from toolkit.store.rundir import LATEST, MANIFEST, runs_of


@attrs.define
class Pruned:
    """What :func:`prune` did to one recipe's runs (paths, newest first)."""

    deleted: list[Path] = attrs.field(factory=list)
    kept: list[Path] = attrs.field(factory=list)
    #: older than the newest N, kept anyway: (path, why)
    spared: list[tuple[Path, str]] = attrs.field(factory=list)
    failed: list[tuple[Path, str]] = attrs.field(factory=list)


def _latest(base: Path) -> Path | None:
    link = base / LATEST
    try:
        if link.is_symlink() or link.is_dir():
            return link.resolve()
        if link.is_file():
            return (base / link.read_text().strip()).resolve()
    except OSError:
        pass
    return None


def newest_first(base: Path) -> list[tuple[Path, dict]]:
    """The run directories of one recipe with their manifest heads, newest first (by
    start time, then run id: ids given with TOOLKIT_RUN_ID need not sort by time)."""
    runs = []
    for path in runs_of(base):
        head = read_head(path) or {}
        runs.append((path, head))
    runs.sort(key=lambda ph: (parse_time(ph[1].get("started")) or 0.0, ph[0].name), reverse=True)
    return runs


def prune(base: str | os.PathLike[str], keep: int, *, dry_run: bool = False) -> Pruned:
    """Keep the ``keep`` newest runs in ``base`` (``<output>/<recipe>``), delete the
    older ones that may go (see the module's docstring). ``keep`` < 1 keeps all."""
    base = Path(base)
    out = Pruned()
    if keep < 1:
        return out
    latest = _latest(base)
    for n, (path, head) in enumerate(newest_first(base)):
        if n < keep:
            out.kept.append(path)
            continue
        if latest is not None and path.resolve() == latest:
            out.spared.append((path, "latest points to it"))
            continue
        if _running(head, path):
            out.spared.append((path, "still running"))
            continue
        if dry_run:
            out.deleted.append(path)
            continue
        why = _delete(path)
        if why:
            out.failed.append((path, why))
        else:
            out.deleted.append(path)
    return out


def _running(head: dict, path: Path) -> bool:
    """Whether a run may be going: its manifest says so (and its process lives, or it
    runs on another host), or a process holds its lock, such as a ``--resume`` that has
    not yet written ``running`` into the manifest."""
    return is_locked(path) is True or effective_status(head, path) == "running"


def _delete(path: Path) -> str | None:
    """Delete one run directory; the reason when it could not be."""
    # read again just before: a --resume may have started since the listing
    head = read_head(path) or {}
    if _running(head, path):
        return "it started running again"
    gone = path.with_name(f".{path.name}.deleting")
    try:
        os.rename(path, gone)
    except FileNotFoundError:
        return None  # someone else deleted it
    except OSError as exc:
        return exc.strerror or str(exc)
    try:  # first the manifest: what is left, if anything, is no longer listed as a run
        (gone / MANIFEST).unlink()
    except OSError:
        pass
    shutil.rmtree(gone, ignore_errors=True)
    if gone.exists():
        return "could not remove every file"
    return None


def keep_of(base: Path) -> int:
    """The ``[output] keep`` of a recipe, as its newest run recorded it (0 = all)."""
    for path, _head in newest_first(base):
        try:
            import tomllib

            with open(path / MANIFEST, "rb") as f:
                resolved = tomllib.load(f).get("resolved") or {}
        except (OSError, ValueError):
            continue
        keep = (resolved.get("output") or {}).get("keep")
        return keep if isinstance(keep, int) and keep > 0 else 0
    return 0
