"""The state directory of ``toolkit schedule``: its lock, per-recipe state, its log.

Layout of ``--state DIR`` (default ``.toolkit-schedule``)::

    lock                 flock()ed by the running daemon; holds its pid
    recipes/NAME.json    per recipe: handled_until, last and next firing, queue, running run
    log.jsonl            one JSON object per event, appended

State files are replaced atomically (write a temporary file, fsync, ``os.replace``), so
a crash leaves the old or the new version, never half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from toolkit.errors import ToolkitError

DEFAULT_STATE_DIR = ".toolkit-schedule"


class SchedulerBusy(ToolkitError):
    """Another ``toolkit schedule`` holds the lock of this state directory."""


def iso(t: datetime) -> str:
    """``2026-11-25T20:30:00.000000Z``: UTC with microseconds, as the run store writes."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _opt_iso(t: datetime | None) -> str | None:
    return None if t is None else iso(t)


def _opt_parse(text: str | None) -> datetime | None:
    return None if text is None else parse_iso(text)


@attrs.define(kw_only=True)
class Running:
    """A run the daemon started and has not seen end yet."""

    run_id: str
    pid: int
    scheduled: datetime
    started: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pid": self.pid,
            "scheduled": iso(self.scheduled),
            "started": iso(self.started),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Running:
        return cls(
            run_id=str(data["run_id"]),
            pid=int(data["pid"]),
            scheduled=parse_iso(data["scheduled"]),
            started=parse_iso(data["started"]),
        )


@attrs.define(kw_only=True)
class RecipeState:
    """What survives a restart, per recipe."""

    handled_until: datetime  # every slot up to here was fired, queued or dropped
    last_firing: datetime | None = None  # the slot of the last run started
    last_run_id: str | None = None
    next_firing: datetime | None = None  # the next slot (before jitter), for people reading it
    queued: list[datetime] = attrs.field(factory=list)  # slots waiting for the previous run
    running: Running | None = None

    def to_json(self, name: str, path: str) -> dict[str, Any]:
        return {
            "recipe": name,
            "path": path,
            "handled_until": iso(self.handled_until),
            "last_firing": _opt_iso(self.last_firing),
            "last_run_id": self.last_run_id,
            "next_firing": _opt_iso(self.next_firing),
            "queued": [iso(t) for t in self.queued],
            "running": self.running.to_json() if self.running else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecipeState:
        return cls(
            handled_until=parse_iso(data["handled_until"]),
            last_firing=_opt_parse(data.get("last_firing")),
            last_run_id=data.get("last_run_id"),
            next_firing=_opt_parse(data.get("next_firing")),
            queued=[parse_iso(t) for t in data.get("queued") or []],
            running=Running.from_json(data["running"]) if data.get("running") else None,
        )


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class StateDir:
    """One state directory. :meth:`lock` before writing anything."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path / "lock"
        self.log_path = self.path / "log.jsonl"
        self.recipes_path = self.path / "recipes"
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Take the directory for this process; :class:`SchedulerBusy` if another has it.

        ``flock`` locks are released by the kernel when the holder dies, however it
        dies, so a stale lock file never blocks a restart.
        """
        try:
            self.recipes_path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ToolkitError(f"cannot use the state directory {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SchedulerBusy(
                f"another toolkit schedule (pid {holder}) is using the state directory {self.path};"
                " stop it first, or give this one its own --state"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def recipe_file(self, name: str) -> Path:
        return self.recipes_path / f"{_SAFE.sub('_', name)}.json"

    def load(self, name: str) -> RecipeState | None:
        """The saved state of a recipe; None if there is none; ValueError if unreadable."""
        file = self.recipe_file(name)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            return RecipeState.from_json(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot read {file}: {type(exc).__name__}: {exc}") from None

    def save(self, name: str, path: str, state: RecipeState) -> None:
        text = json.dumps(state.to_json(name, path), indent=2) + "\n"
        write_atomic(self.recipe_file(name), text)

    def log(self, event: dict[str, Any]) -> None:
        """Append one event to ``log.jsonl`` (opened per line: log rotation just works)."""
        line = json.dumps(event, separators=(",", ":")) + "\n"
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line)
